"""`make install` as CMake's install rules do it (cmake --install with
DESTDIR, from the build that made $FEDGATE): every file lands where the
unit and the configuration say it does, the installed program runs and
reads /etc/fedgate/fedgate.conf (SYSCONFDIR) when given no -c, the example
configuration is accepted by that program, the man pages render without a
warning and `systemd-analyze verify` finds nothing in the unit.
"""
import configparser
import os
import re
import shutil
import subprocess
import tempfile

import pytest

from fgtest import FEDGATE

SRC = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
BUILD = os.path.dirname(os.path.abspath(shutil.which(FEDGATE) or FEDGATE))


def cache(name):
    """A value from the build's CMakeCache.txt."""
    with open(os.path.join(BUILD, "CMakeCache.txt")) as f:
        for line in f:
            m = re.match(rf"^{re.escape(name)}:[A-Z]+=(.*)$", line.rstrip("\n"))
            if m:
                return m.group(1)
    raise AssertionError(f"{name} is not in {BUILD}/CMakeCache.txt")


def full(dirvar):
    """A GNUInstallDirs folder as an absolute path (CMAKE_INSTALL_FULL_*)."""
    value = cache(dirvar)
    if value == "" and dirvar == "CMAKE_INSTALL_MANDIR":  # left empty: DATAROOTDIR/man
        value = os.path.join(cache("CMAKE_INSTALL_DATAROOTDIR"), "man")
    return value if value.startswith("/") else os.path.join(cache("CMAKE_INSTALL_PREFIX"), value)


@pytest.fixture(scope="module")
def dest():
    """The installed tree, below a DESTDIR of its own."""
    d = tempfile.mkdtemp(prefix="fginstall-")
    env = dict(os.environ, DESTDIR=d)
    r = subprocess.run(["cmake", "--install", BUILD], env=env, capture_output=True, text=True,
                       timeout=60)
    assert r.returncode == 0, r.stdout + r.stderr
    yield d
    shutil.rmtree(d)


def installed(dest, path):
    return os.path.join(dest, path.lstrip("/"))


def paths():
    confdir = os.path.join(full("CMAKE_INSTALL_SYSCONFDIR"), "fedgate")
    return {
        "binary": os.path.join(full("CMAKE_INSTALL_SBINDIR"), "fedgate"),
        "man8": os.path.join(full("CMAKE_INSTALL_MANDIR"), "man8", "fedgate.8"),
        "man5": os.path.join(full("CMAKE_INSTALL_MANDIR"), "man5", "fedgate.conf.5"),
        "unit": os.path.join(cache("FG_UNITDIR"), "fedgate.service"),
        "sysusers": os.path.join(cache("CMAKE_INSTALL_PREFIX"), "lib", "sysusers.d",
                                 "fedgate.conf"),
        "tmpfiles": os.path.join(cache("CMAKE_INSTALL_PREFIX"), "lib", "tmpfiles.d",
                                 "fedgate.conf"),
        "conf": os.path.join(confdir, "fedgate.conf"),
    }


def test_every_file_is_installed(dest):
    p = paths()
    # Where systemd looks for units: under the prefix, or Debian 12's
    # /lib/systemd/system for /usr.
    prefix = cache("CMAKE_INSTALL_PREFIX")
    assert os.path.dirname(p["unit"]) in (prefix + "/lib/systemd/system", "/lib/systemd/system")
    for what, path in p.items():
        assert os.path.isfile(installed(dest, path)), f"{what}: {path} not installed"
    assert os.access(installed(dest, p["binary"]), os.X_OK)
    # Nothing else: a file the rules install that this test does not know
    # of is a file no one checks.
    found = sorted("/" + os.path.relpath(os.path.join(d, f), dest)
                   for d, _, files in os.walk(dest) for f in files)
    assert found == sorted(p.values())


def test_installed_binary_runs(dest):
    r = subprocess.run([installed(dest, paths()["binary"]), "version"], capture_output=True,
                       text=True, timeout=30)
    assert r.returncode == 0, r.stderr
    assert f"fedgate {cache('CMAKE_PROJECT_VERSION')}" in r.stdout


def check_config(binary, *conf_args, cwd=None):
    """`fedgate check --config`: the effective configuration, or every error."""
    env = {k: v for k, v in os.environ.items() if k != "FEDGATE_CONF"}
    return subprocess.run([binary, "check", "--config", *conf_args], capture_output=True,
                          text=True, timeout=30, env=env, cwd=cwd)


def test_default_configuration_is_the_installed_one(dest):
    """Without -c and $FEDGATE_CONF the installed program reads
    SYSCONFDIR/fedgate/fedgate.conf (/etc/fedgate/fedgate.conf), not a file
    in the current folder."""
    p = paths()
    if cache("CMAKE_INSTALL_SYSCONFDIR") == "/etc":
        assert p["conf"] == "/etc/fedgate/fedgate.conf"
    cwd = tempfile.mkdtemp(prefix="fginstall-cwd-")
    try:
        with open(os.path.join(cwd, "fedgate.conf"), "w") as f:
            f.write("this is not the file to read\n")
        r = check_config(installed(dest, p["binary"]), cwd=cwd)
    finally:
        shutil.rmtree(cwd)
    out = r.stdout + r.stderr
    assert p["conf"] in out, out
    assert "this is not the file" not in out and "./fedgate.conf" not in out, out


def test_example_configuration_is_accepted(dest):
    """The installed configuration, with its certificate and key made for
    the test in place of /etc/fedgate/certs (which the package makes), is
    valid; every path in it is absolute."""
    p = paths()
    text = open(installed(dest, p["conf"])).read()
    ini = configparser.ConfigParser(inline_comment_prefixes=None, comment_prefixes=(";", "#"))
    ini.read_string(text)
    assert ini["server"]["domains"] == "localhost"
    for section, key in (("tls", "certificate"), ("tls", "key"), ("listen", "control"),
                         ("dns", "resolv_conf"), ("store", "path")):
        assert ini[section][key].startswith("/"), f"[{section}] {key} is not absolute"
    assert ini["store"]["path"].startswith("/var/lib/fedgate/")
    assert ini["listen"]["control"].startswith("/run/fedgate/")
    certdir = os.path.join(os.path.dirname(p["conf"]), "certs")
    assert os.path.dirname(ini["tls"]["certificate"]) == certdir
    assert os.path.dirname(ini["tls"]["key"]) == certdir

    work = tempfile.mkdtemp(prefix="fginstall-conf-")
    try:
        r = subprocess.run([FEDGATE, "init", "--domain", "localhost", "--dir", work],
                           capture_output=True, text=True, timeout=30)
        assert r.returncode == 0, r.stderr
        conf = os.path.join(work, "installed.conf")
        with open(conf, "w") as f:
            f.write(text.replace(certdir + "/", os.path.join(work, "certs") + "/"))
        r = check_config(installed(dest, p["binary"]), "-c", conf)
        assert r.returncode == 0, r.stdout + r.stderr
        assert "/var/lib/fedgate/fedgate.db" in r.stdout
        # The same file with a key it cannot read is refused, naming it:
        # the check above did look at the certificate paths.
        with open(conf, "w") as f:
            f.write(text.replace(certdir + "/", "/nonexistent/"))
        r = check_config(installed(dest, p["binary"]), "-c", conf)
        assert r.returncode == 1 and "/nonexistent/localhost.key" in r.stderr, r.stderr
    finally:
        shutil.rmtree(work)


@pytest.mark.parametrize("page", ["man8", "man5"])
def test_man_pages_render_without_warnings(dest, page):
    path = installed(dest, paths()[page])
    env = dict(os.environ, LC_ALL="C.UTF-8", MANWIDTH="80")
    r = subprocess.run(["man", "--warnings", "-E", "UTF-8", "-l", path], capture_output=True,
                       text=True, env=env, timeout=30)
    assert r.returncode == 0 and r.stderr == "", r.stderr
    assert "FILES" in r.stdout and "/etc/fedgate/fedgate.conf" in r.stdout


def test_unit_runs_the_installed_program(dest):
    p = paths()
    unit = open(installed(dest, p["unit"])).read()
    exec_start = re.search(r"(?m)^ExecStart=(.*)$", unit).group(1).split()
    assert exec_start == [p["binary"], "serve", "-c", p["conf"]]
    exec_reload = re.search(r"(?m)^ExecReload=(.*)$", unit).group(1).split()
    assert exec_reload == [p["binary"], "reload", "-c", p["conf"]]
    for line in ("Type=notify", "NotifyAccess=main", "User=fedgate", "Group=fedgate",
                 "StateDirectory=fedgate",
                 "RuntimeDirectory=fedgate", "NoNewPrivileges=yes", "ProtectSystem=strict",
                 "CapabilityBoundingSet=CAP_NET_BIND_SERVICE"):
        assert f"\n{line}\n" in unit, f"{line} missing from the unit"
    # The daemon's user and folders, as systemd-sysusers and
    # systemd-tmpfiles read them.
    assert re.search(r"(?m)^u fedgate - .* /var/lib/fedgate$",
                     open(installed(dest, p["sysusers"])).read())
    assert re.search(r"(?m)^d /var/lib/fedgate 0750 fedgate fedgate -$",
                     open(installed(dest, p["tmpfiles"])).read())


def test_systemd_analyze_verify(dest):
    """The unit as systemd reads it, with ExecStart and ExecReload pointing into DESTDIR
    (verify requires the program to exist) and the man pages of
    Documentation= looked up there too."""
    p = paths()
    unit = open(installed(dest, p["unit"])).read()
    d = tempfile.mkdtemp(prefix="fginstall-unit-")
    try:
        path = os.path.join(d, "fedgate.service")
        with open(path, "w") as f:
            for key in ("ExecStart=", "ExecReload="):
                unit = unit.replace(key + p["binary"], key + installed(dest, p["binary"]))
            f.write(unit)
        env = dict(os.environ, MANPATH=installed(dest, full("CMAKE_INSTALL_MANDIR")),
                   SYSTEMD_LOG_LEVEL="notice")
        r = subprocess.run(["systemd-analyze", "verify", path], capture_output=True, text=True,
                           env=env, timeout=60)
        assert r.returncode == 0 and r.stdout + r.stderr == "", r.stdout + r.stderr
    finally:
        shutil.rmtree(d)


def test_debian_version_is_the_cmake_version():
    first = open(os.path.join(SRC, "debian", "changelog")).readline()
    assert first.startswith(f"fedgate ({cache('CMAKE_PROJECT_VERSION')})"), first

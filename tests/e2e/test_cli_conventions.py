"""CLI conventions an operator brings from other daemons (issue 12, item 7):
-c FILE before or after the command, "did you mean" for misspelt commands,
subcommands and flags, `partner new DOMAIN`, argument errors before any
password prompt, messages that name the real cause (permission denied,
missing file, which path was tried), `fedgate version` with the libraries'
versions, and a fedgate(8) that says what the program does."""
import json
import os
import pty
import re
import select
import shutil
import subprocess
import tempfile
import time

from fgtest import FEDGATE

HERE = os.path.dirname(os.path.abspath(__file__))
MAN = os.path.join(HERE, "..", "..", "man", "fedgate.8")


def run(*args, input=None, env=None, cwd=None, prefix=()):
    return subprocess.run([*prefix, FEDGATE, *args], capture_output=True, text=True,
                          input=input, timeout=60, env=env, cwd=cwd)


def plain_env():
    env = dict(os.environ)
    env.pop("FEDGATE_CONF", None)
    return env


def partners(fg):
    r = run("-c", fg.conf, "partner", "get", "--json")
    assert r.returncode == 0, r.stderr
    return sorted(p["domain"] for p in json.loads(r.stdout))


# ---- -c before or after the command ----

def test_config_before_the_command_in_every_spelling(fg):
    fg.start()
    for spelling in (["-c", fg.conf], ["--config", fg.conf], ["--config=" + fg.conf],
                     ["-c" + fg.conf]):
        r = run(*spelling, "status")
        assert r.returncode == 0, (spelling, r.stderr)
        assert "no streams" in r.stdout, r.stdout
    after = run("status", "-c", fg.conf)
    assert after.returncode == 0 and after.stdout == r.stdout, after.stderr
    # Before a two-word command and its own arguments too.
    r = run("-c", fg.conf, "partner", "new", "--domain", "fabrikam.test")
    assert r.returncode == 0, r.stderr
    assert partners(fg) == ["fabrikam.test"]


def test_config_before_serve_check_and_init(daemons):
    d = tempfile.mkdtemp(prefix="fgcli-")
    try:
        conf = os.path.join(d, "other.conf")
        r = run("-c", conf, "init", "--domain", "contoso.test", "--dir", d)
        assert r.returncode == 0, r.stderr
        assert os.path.exists(conf)
        before = run("-c", conf, "check")
        after = run("check", "-c", conf)
        assert "unknown command" not in before.stderr, before.stderr
        assert before.returncode == after.returncode
        # serve with -c before the command reads that file: a missing one
        # is named in the refusal.
        r = run("-c", os.path.join(d, "missing.conf"), "serve")
        assert r.returncode != 0 and "missing.conf" in r.stderr, r.stderr
        assert "unknown command" not in r.stderr
    finally:
        shutil.rmtree(d)


def test_config_given_twice_with_different_values_is_a_usage_error(fg):
    other = fg.conf + ".other"
    shutil.copy(fg.conf, other)
    for args in (["-c", other, "partner", "new", "x.test", "-c", fg.conf],
                 ["-c", other, "status", "--config=" + fg.conf],
                 ["-c", other, "serve", "-c", fg.conf],
                 ["-c", other, "-c", fg.conf, "status"]):
        r = run(*args)
        assert r.returncode == 2, (args, r.stdout, r.stderr)
        assert fg.conf in r.stderr and other in r.stderr, r.stderr
    assert partners(fg) == []
    # The same file twice is no conflict.
    r = run("-c", fg.conf, "partner", "new", "x.test", "-c", fg.conf)
    assert r.returncode == 0, r.stderr


def test_option_before_the_command_that_is_not_global(fg):
    r = run("--json", "status", "-c", fg.conf)
    assert r.returncode == 2
    assert "--json" in r.stderr and "after the command" in r.stderr, r.stderr
    r = run("--confg", fg.conf, "status")
    assert r.returncode == 2 and "did you mean '--config'" in r.stderr, r.stderr
    r = run("-c")
    assert r.returncode == 2 and "needs a file" in r.stderr, r.stderr
    r = run("-c", fg.conf)
    assert r.returncode == 2 and "command" in r.stderr, r.stderr


# ---- did you mean ----

def test_did_you_mean_for_commands_subcommands_and_flags(fg):
    cases = [
        (["stauts"], "did you mean 'status'?"),
        (["partnr", "get"], "did you mean 'partner'?"),
        (["verison"], "did you mean 'version'?"),
        (["partner", "nwe", "x.test"], "did you mean 'partner new'?"),
        (["user", "lsit"], "did you mean 'user list'?"),
        (["partner", "new", "--domian", "x.test"], "did you mean '--domain'?"),
        (["partner", "get", "--jsn"], "did you mean '--json'?"),
        (["gateway", "set", "--conection-limit", "5"], "did you mean '--connection-limit'?"),
        (["init", "--domian", "x.test", "--dir", "/nonexistent"], "did you mean '--domain'?"),
        (["backup", "--cofnig", "x"], "did you mean '--config'?"),
    ]
    for args, hint in cases:
        r = run(*args, "-c", fg.conf)
        assert r.returncode == 2, (args, r.stderr)
        assert hint in r.stderr, (args, r.stderr)
    # Nothing close: no guess, and still a pointer to the list.
    r = run("frobnicate", "-c", fg.conf)
    assert r.returncode == 2 and "did you mean" not in r.stderr
    assert "unknown command 'frobnicate'" in r.stderr and "fedgate help" in r.stderr
    r = run("partner", "frobnicate", "-c", fg.conf)
    assert r.returncode == 2 and "did you mean" not in r.stderr
    assert "new" in r.stderr and "import" in r.stderr, r.stderr  # lists the subcommands
    assert partners(fg) == []


def test_group_without_subcommand_lists_them(fg):
    r = run("partner", "-c", fg.conf)
    assert r.returncode == 2
    for sub in ("new", "set", "get", "remove", "export", "import"):
        assert sub in r.stderr, r.stderr
    r = run("partner", "--help")
    assert r.returncode == 0 and "export" in r.stdout, r.stderr
    for args in (["status", "--help"], ["admin", "add", "-h"], ["-c", fg.conf, "user", "add",
                                                                "--help"]):
        r = run(*args)
        assert r.returncode == 0 and r.stdout.startswith("fedgate "), (args, r.stderr)


# ---- partner new DOMAIN ----

def test_partner_new_takes_the_domain_as_an_argument(fg):
    r = fg.cli("partner", "new", "fabrikam.test", "--tls", "optional")
    assert r.returncode == 0, r.stderr
    assert fg.cli_json("partner", "get", "fabrikam.test")["tls"] == "optional"
    # --domain still works, and both with the same value too.
    assert fg.cli("partner", "new", "--domain", "a.test").returncode == 0
    assert fg.cli("partner", "new", "b.test", "--domain", "b.test").returncode == 0
    r = fg.cli("partner", "new", "c.test", "--domain", "d.test")
    assert r.returncode == 2, r.stderr
    assert "c.test" in r.stderr and "d.test" in r.stderr
    r = fg.cli("partner", "new")
    assert r.returncode == 2 and "DOMAIN" in r.stderr, r.stderr
    assert partners(fg) == ["a.test", "b.test", "fabrikam.test"]
    r = fg.cli("partner", "new", "--help")
    assert r.returncode == 0 and "DOMAIN" in r.stdout, (r.stdout, r.stderr)


# ---- argument errors before any prompt ----

PROMPT = b"assword for"  # "Password for", "Retype the password for"


def run_tty(fg, args):
    """Runs the CLI with a terminal as standard input and types nothing.
    Returns (status, stderr); status None when it sat at a prompt."""
    master, slave = pty.openpty()
    proc = subprocess.Popen([FEDGATE, *args, "-c", fg.conf], stdin=slave,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    os.close(slave)
    err = b""
    deadline = time.time() + 10
    while proc.poll() is None and time.time() < deadline and PROMPT not in err:
        ready, _, _ = select.select([proc.stderr, master], [], [], 0.2)
        if proc.stderr in ready:
            err += os.read(proc.stderr.fileno(), 4096)
        if master in ready:
            try:
                os.read(master, 4096)
            except OSError:  # the terminal's other end closed: the CLI is gone
                pass
    if proc.poll() is None:
        proc.kill()
        proc.wait()
        os.close(master)
        return None, err.decode() + proc.stderr.read().decode()
    err += proc.stderr.read()
    os.close(master)
    return proc.returncode, err.decode()


def test_argument_errors_come_before_the_password_prompt(fg):
    rc, err = run_tty(fg, ("admin", "add", "bob", "--role", "root"))
    assert "Password for" not in err, "asked for a password before refusing the role: " + err
    assert rc == 1 and "role: 'root' is not a role" in err, (rc, err)
    rc, err = run_tty(fg, ("admin", "add", "bad name!", "--role", "viewer"))
    assert "Password for" not in err and rc == 1 and "name" in err, (rc, err)
    rc, err = run_tty(fg, ("user", "add", "alice@fabrikam.test"))
    assert "Password for" not in err and rc == 1, (rc, err)
    assert "not a local domain" in err, err
    rc, err = run_tty(fg, ("user", "add", "not a jid@@"))
    assert "Password for" not in err and rc == 1 and "not a valid JID" in err, (rc, err)
    rc, err = run_tty(fg, ("user", "passwd", "nobody@contoso.test"))
    assert "Password for" not in err and rc == 3 and "no user" in err, (rc, err)
    # An account that exists already: refused before the prompt too.
    assert fg.cli("user", "add", "alice@contoso.test", input="Pw-long-enough\n").returncode == 0
    rc, err = run_tty(fg, ("user", "add", "alice@contoso.test"))
    assert "Password for" not in err and rc == 1 and "already exists" in err, (rc, err)
    rc, err = run_tty(fg, ("admin", "passwd", "nobody"))
    assert "Password for" not in err and rc == 3, (rc, err)
    assert "no admin account is named nobody" in err, err
    r = fg.cli("admin", "add", "carol", "--role", "viewer", input="Pw-long-enough\n")
    assert r.returncode == 0, r.stderr
    rc, err = run_tty(fg, ("admin", "add", "carol", "--role", "administrator"))
    assert "Password for" not in err and rc == 1 and "exists already" in err, (rc, err)
    # Good arguments still get the prompt.
    rc, err = run_tty(fg, ("admin", "add", "bob", "--role", "viewer"))
    assert rc is None and "Password for bob" in err, (rc, err)
    rc, err = run_tty(fg, ("admin", "passwd", "carol"))
    assert rc is None and "Password for carol" in err, (rc, err)


def test_what_if_of_admin_commands_reads_the_store(fg):
    r = fg.cli("admin", "add", "carol", "--role", "viewer", input="Pw-long-enough\n")
    assert r.returncode == 0, r.stderr
    r = fg.cli("admin", "add", "carol", "--role", "viewer", "--what-if",
               input="Pw-long-enough\n")
    assert r.returncode == 1 and "exists already" in r.stderr, r.stderr
    r = fg.cli("admin", "remove", "nobody", "--what-if")
    assert r.returncode == 3, r.stderr
    r = fg.cli("admin", "remove", "carol", "--what-if")
    assert r.returncode == 0 and "what if: the account would be removed" in r.stdout
    r = fg.cli("admin", "token", "nobody", "--what-if")
    assert r.returncode == 3, r.stderr
    assert [a["name"] for a in fg.cli_json("admin", "list")] == ["carol"]


def test_argument_errors_before_reading_standard_input(fg):
    # A script's password line is not consumed by a command that is refused.
    r = fg.cli("admin", "add", "bob", "--role", "root", input="Pw-long-enough\n")
    assert r.returncode == 1 and "is not a role" in r.stderr
    r = fg.cli("admin", "list", "--json")
    assert json.loads(r.stdout) == []


# ---- messages that name the real cause ----

def test_unreadable_config_says_permission_denied(fg):
    os.chmod(fg.conf, 0o600)
    os.chmod(fg.dir, 0o755)
    for args in (["status", "-c", fg.conf], ["-c", fg.conf, "partner", "get"]):
        r = run(*args, prefix=("setpriv", "--reuid=65534", "--regid=65534", "--clear-groups"))
        assert r.returncode == 1, r.stderr
        assert "permission denied" in r.stderr.lower(), r.stderr
        assert fg.conf in r.stderr
        assert "fedgate init" not in r.stderr, r.stderr


def test_missing_config_names_the_path_and_how_to_point_elsewhere():
    d = tempfile.mkdtemp(prefix="fgcli-")
    try:
        # A private mount namespace hides an installed configuration, so
        # the compiled-in default is missing whatever it is.
        script = ('mount -t tmpfs none /etc/fedgate 2>/dev/null; cd "$1"; shift; '
                  'exec "$@"')
        r = subprocess.run(["unshare", "--mount", "sh", "-c", script, "sh", d, FEDGATE,
                            "partner", "get"], capture_output=True, text=True, timeout=60,
                           env=plain_env())
        assert r.returncode == 1, r.stderr
        m = re.search(r"^(\S+): cannot open: No such file or directory", r.stderr, re.M)
        assert m, r.stderr
        assert m.group(1).endswith("fedgate.conf")
        assert "-c FILE" in r.stderr and "$FEDGATE_CONF" in r.stderr, r.stderr
        assert "fix " not in r.stderr  # nothing to fix in a file that is not there
    finally:
        shutil.rmtree(d)


def test_import_names_the_file_problem(fg):
    r = fg.cli("partner", "import", "/nonexistent.json")
    assert r.returncode == 1
    assert "cannot open /nonexistent.json: No such file or directory" in r.stderr, r.stderr
    assert "line -1" not in r.stderr and "column" not in r.stderr
    r = fg.cli("partner", "import", fg.dir)
    assert r.returncode == 1 and "Is a directory" in r.stderr, r.stderr
    assert "line" not in r.stderr
    bad = os.path.join(fg.dir, "bad.json")
    with open(bad, "w") as f:
        f.write('{"partners": [\n  {"domain": "x.test",}\n]}\n')
    r = fg.cli("partner", "import", bad)
    assert r.returncode == 1 and "line 2" in r.stderr and "column" in r.stderr, r.stderr


# ---- fedgate version ----

def test_version_names_every_library_with_its_version():
    r = run("version")
    assert r.returncode == 0, r.stderr
    out = r.stdout
    assert re.match(r"fedgate \d+\.\d+\.\d+\n", out), out
    for lib in ("libevent", "OpenSSL", "SQLite", "libpq", "hiredis", "jansson", "expat",
                "GNU SASL", "libidn2", "libidn", "libunbound", "libsodium"):
        assert re.search(rf"^  {re.escape(lib)} +\S*\d+\.\d+", out, re.M), (lib, out)
    assert run("--version").stdout == out


# ---- help and fedgate(8) ----

def test_help_and_man_page_show_the_global_option():
    r = run("help")
    assert r.returncode == 0
    assert r.stdout.startswith("usage: fedgate [-c FILE] COMMAND"), r.stdout
    man = open(MAN).read()
    synopsis = man.split(".SH SYNOPSIS", 1)[1].split(".SH", 1)[0]
    assert ".RB [ \\-c\n.IR FILE ]\n.I COMMAND" in synopsis, synopsis
    assert "later versions" not in man
    assert "SPEC" not in man
    assert "did you mean" in man
    # Every command help lists is documented.
    for m in re.finditer(r"^  ([a-z][a-z-]*)", r.stdout, re.M):
        assert f".B {m.group(1)}".replace("-", "\\-") in man, m.group(1)

"""Running as a user ([server] user, group, run_as_root; issue 12 item 4).

Started as root, `fedgate serve` opens its ports, the store, the key files
and the log file, then becomes [server] user; started as root without a
user it refuses unless run_as_root = yes. The daemon runs as root in these
tests, as `fedgate init` run by root sets it up (run_as_root = yes)."""
import os
import pwd
import re
import socket
import subprocess
import time

from fgtest import FEDGATE, Peer

NOBODY = pwd.getpwnam("nobody")


def ids(pid, key):
    """The four ids of /proc/PID/status's Uid: or Gid: line."""
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith(key + ":"):
                return [int(v) for v in line.split()[1:]]
    raise AssertionError(f"no {key} in /proc/{pid}/status")


def set_server(fg, **kv):
    """Rewrites [server] of fg's configuration: run_as_root=None removes it."""
    text = open(fg.conf).read()
    for k, v in kv.items():
        text = re.sub(rf"(?m)^{k} = .*\n", "", text)
        if v is not None:
            text = text.replace("[server]\n", f"[server]\n{k} = {v}\n", 1)
    open(fg.conf, "w").write(text)


def give_state_to_nobody(fg):
    """What an operator does (fedgate.conf(5)): the state folder (here the
    one `fedgate init --dir` made, holding the store and the control
    socket) and the store belong to the account; the configuration and the
    keys stay root's."""
    os.chown(fg.dir, NOBODY.pw_uid, NOBODY.pw_gid)
    for n in os.listdir(fg.dir):
        if n.startswith("fedgate.db"):
            os.chown(os.path.join(fg.dir, n), NOBODY.pw_uid, NOBODY.pw_gid)


def serve_refused(fg):
    """Runs `fedgate serve`, which must exit 1 at once; returns its stderr."""
    p = subprocess.run([FEDGATE, "serve", "-c", fg.conf], capture_output=True, text=True,
                       timeout=20)
    assert p.returncode == 1, (p.returncode, p.stderr)
    return p.stderr


def nothing_bound(fg):
    for port in (5269, 5222, 5280):
        with socket.socket() as s:
            assert s.connect_ex(("127.0.0.1", port)) != 0, f"port {port} is bound"
    assert not os.path.exists(os.path.join(fg.dir, "fedgate.sock"))


def test_drops_to_user_after_binding(daemons):
    fg = daemons.fedgate(users={"alice@contoso.test": "pw-alice-1"})
    set_server(fg, user="nobody")
    give_state_to_nobody(fg)
    key = os.path.join(fg.dir, "certs", "contoso.test.key")
    assert os.stat(key).st_uid == 0 and os.stat(key).st_mode & 0o077 == 0
    fg.start()
    assert re.search(r"privs: running as nobody:\S+", fg.read_log()), fg.read_log()
    pid = fg.proc.pid
    assert ids(pid, "Uid") == [NOBODY.pw_uid] * 4
    assert ids(pid, "Gid") == [NOBODY.pw_gid] * 4
    with open(f"/proc/{pid}/status") as f:
        status = f.read()
    groups = re.search(r"(?m)^Groups:(.*)$", status).group(1).split()
    assert 0 not in [int(g) for g in groups], groups
    # No capability is left over from root either.
    for cap in ("CapPrm", "CapEff", "CapAmb"):
        assert int(re.search(rf"(?m)^{cap}:\s*(\w+)$", status).group(1), 16) == 0, status

    # Streams still work: a peer gets its header, and STARTTLS with the key
    # read as root.
    p = Peer()
    p.open()
    assert p.wait_header() is not None
    p.features()
    p.starttls()
    p.open()
    assert p.wait_header() is not None
    p.close()

    # The CLI, as root, through the control socket; a change through it is
    # written by the daemon's store thread, now as nobody.
    r = fg.cli("status")
    assert r.returncode == 0, r.stderr
    r = fg.cli("user", "add", "bob@contoso.test", input="pw-bob-12\n")
    assert r.returncode == 0, r.stderr
    assert "bob@contoso.test" in fg.cli("user", "list").stdout
    sock = os.path.join(fg.dir, "fedgate.sock")
    assert os.stat(sock).st_uid == NOBODY.pw_uid
    fg.stop()
    # The daemon, no longer root, still cleaned up after itself.
    assert not os.path.exists(sock)


def test_root_without_user_is_refused(daemons):
    fg = daemons.fedgate()
    set_server(fg, run_as_root=None)
    err = serve_refused(fg)
    assert "started as root and [server] user is not set" in err, err
    assert "user = NAME" in err and "run_as_root = yes" in err, err
    nothing_bound(fg)
    # The file init wrote said yes; and so does `fedgate check` accept both.
    set_server(fg, run_as_root="yes")
    fg.start()
    assert "running as root ([server] run_as_root = yes)" in fg.read_log()
    fg.stop()


def test_unknown_user_is_refused(daemons):
    fg = daemons.fedgate()
    set_server(fg, user="no-such-account-fg")
    err = serve_refused(fg)
    assert "[server] user = no-such-account-fg: no such account" in err, err
    nothing_bound(fg)


def test_unknown_group_is_refused(daemons):
    fg = daemons.fedgate()
    set_server(fg, user="nobody", group="no-such-group-fg")
    err = serve_refused(fg)
    assert "[server] group = no-such-group-fg: no such group" in err, err
    nothing_bound(fg)


def test_store_the_user_cannot_write_is_refused(daemons):
    fg = daemons.fedgate(users={"alice@contoso.test": "pw-alice-1"})
    set_server(fg, user="nobody")
    # The store's folder is root's: the chown to run is named.
    err = serve_refused(fg)
    assert (f"the store's folder {fg.dir} is not writable by nobody, whom [server] user "
            f"names; give it to that account: chown nobody:nogroup {fg.dir}") in err, err
    # The folder is the account's, the store (made by the CLI as root) not.
    os.chown(fg.dir, NOBODY.pw_uid, NOBODY.pw_gid)
    db = os.path.join(fg.dir, "fedgate.db")
    err = serve_refused(fg)
    assert f"the store file {db} is not writable by nobody" in err, err
    assert f"chown nobody:nogroup {db}" in err, err
    nothing_bound(fg)


def test_closed_folder_above_the_store_is_named(daemons):
    fg = daemons.fedgate()
    var = os.path.join(fg.dir, "var")
    os.mkdir(var)
    os.chown(var, NOBODY.pw_uid, NOBODY.pw_gid)
    os.chmod(fg.dir, 0o700)  # as mkdtemp made it
    text = re.sub(r"(?m)^path = .*$", "path = var/fedgate.db", open(fg.conf).read())
    open(fg.conf, "w").write(text)
    set_server(fg, user="nobody")
    err = serve_refused(fg)
    assert f"the folder {fg.dir} is closed to it; open it (chmod o+x {fg.dir})" in err, err
    nothing_bound(fg)
    assert not os.path.exists(os.path.join(var, "fedgate.db"))


def test_non_root_cannot_switch(daemons):
    fg = daemons.fedgate()
    set_server(fg, user="daemon")
    subprocess.run(["chmod", "-R", "a+rwX", fg.dir], check=True)
    p = subprocess.run(["setpriv", f"--reuid={NOBODY.pw_uid}", f"--regid={NOBODY.pw_gid}",
                        "--clear-groups", FEDGATE, "serve", "-c", fg.conf],
                       capture_output=True, text=True, timeout=20)
    assert p.returncode == 1, p.stderr
    assert "[server] user = daemon, but fedgate was started as uid 65534" in p.stderr
    assert "cannot switch accounts" in p.stderr
    nothing_bound(fg)
    # Named as itself, a non-root start is fine.
    set_server(fg, user="nobody")
    proc = subprocess.Popen(["setpriv", f"--reuid={NOBODY.pw_uid}",
                             f"--regid={NOBODY.pw_gid}", "--clear-groups", FEDGATE, "serve",
                             "-c", fg.conf], stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.time() + 15
        while time.time() < deadline:
            with socket.socket() as s:
                if s.connect_ex(("127.0.0.1", 5269)) == 0:
                    break
            assert proc.poll() is None, proc.stderr.read()
            time.sleep(0.05)
        assert ids(proc.pid, "Uid") == [NOBODY.pw_uid] * 4
    finally:
        proc.terminate()
        assert proc.wait(timeout=15) == 0, proc.stderr.read()


def test_root_without_setuid_capability_says_why(daemons):
    # As under a systemd unit whose CapabilityBoundingSet= keeps only
    # CAP_NET_BIND_SERVICE: root, but unable to switch.
    fg = daemons.fedgate()
    set_server(fg, user="nobody")
    give_state_to_nobody(fg)
    p = subprocess.run(["setpriv", "--bounding-set", "-setuid,-setgid", "--inh-caps",
                        "-setuid,-setgid", FEDGATE, "serve", "-c", fg.conf],
                       capture_output=True, text=True, timeout=20)
    assert p.returncode == 1, p.stderr
    assert "Operation not permitted (root without the capabilities CAP_SETUID and " \
           "CAP_SETGID; under systemd start it as the account instead: User= with " \
           "AmbientCapabilities=CAP_NET_BIND_SERVICE)" in p.stderr, p.stderr
    nothing_bound(fg)

"""Local users through the CLI: add (password from standard input or a
terminal), list, get, passwd, set, remove; validation with messages that say
how to fix; the same through the running daemon's control socket and
without it. The password is never stored, logged, audited or printed: only
SCRAM keys are, and they must match the password given."""
import base64
import hashlib
import hmac
import os
import pty
import re
import secrets
import select
import sqlite3
import subprocess
import time

import pytest

from fgtest import FEDGATE

CREATED = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")


def new_password():
    return "Pw-" + secrets.token_hex(12)


def add(fg, jid, password, *extra):
    return fg.cli("user", "add", jid, *extra, input=password + "\n")


def db_path(fg):
    return os.path.join(fg.dir, "fedgate.db")


def credentials(fg, jid):
    con = sqlite3.connect(db_path(fg))
    row = con.execute("SELECT credentials FROM users WHERE jid = ?", (jid,)).fetchone()
    con.close()
    return row[0] if row else None


def scram_matches(line, password):
    """Whether the stored line holds the SCRAM keys (RFC 5802 §3) of
    password, for SHA-1 and SHA-256 alike."""
    tag, iters, salt, sk1, sv1, sk256, sv256 = line.split(":")
    assert tag == "scram1"
    salt = base64.b64decode(salt)
    for name, sk, sv in (("sha1", sk1, sv1), ("sha256", sk256, sv256)):
        salted = hashlib.pbkdf2_hmac(name, password.encode(), salt, int(iters))
        client_key = hmac.new(salted, b"Client Key", name).digest()
        stored_key = hashlib.new(name, client_key).digest()
        server_key = hmac.new(salted, b"Server Key", name).digest()
        if (stored_key, server_key) != (base64.b64decode(sk), base64.b64decode(sv)):
            return False
    return True


def users(fg):
    return fg.cli_json("user", "list")


def store_bytes(fg):
    """The database and its WAL, as a thief would copy them."""
    data = b""
    for name in os.listdir(fg.dir):
        if name.startswith("fedgate.db"):
            with open(os.path.join(fg.dir, name), "rb") as f:
                data += f.read()
    return data


def test_add_from_stdin_then_list_and_get(fg):
    pw = new_password()
    r = add(fg, "Alice@Contoso.TEST", pw)
    assert r.returncode == 0, r.stderr
    assert pw not in r.stdout + r.stderr
    got = users(fg)
    assert [u["jid"] for u in got] == ["alice@contoso.test"]  # stored prepared
    u = fg.cli_json("user", "get", "alice@contoso.test")
    assert set(u) == {"jid", "xmpp_access", "created"}  # never credentials
    assert u["jid"] == "alice@contoso.test" and u["xmpp_access"] is True
    assert CREATED.match(u["created"]), u
    assert u == got[0]
    # The newline ended the password; it is not part of it.
    line = credentials(fg, "alice@contoso.test")
    assert line.startswith("scram1:4096:")
    assert scram_matches(line, pw)
    assert not scram_matches(line, pw + "\n")
    # Tables for people.
    r = fg.cli("user", "list")
    assert r.returncode == 0 and "alice@contoso.test" in r.stdout and "XMPP-ACCESS" in r.stdout
    r = fg.cli("user", "get", "alice@contoso.test")
    assert r.returncode == 0 and "xmpp access:  true" in r.stdout
    # A second user, and the filter.
    assert add(fg, "bob@contoso.test", new_password()).returncode == 0
    assert [u["jid"] for u in fg.cli_json("user", "list", "--filter", "b*")] == \
        ["bob@contoso.test"]
    assert [u["jid"] for u in users(fg)] == ["alice@contoso.test", "bob@contoso.test"]
    r = fg.cli("user", "list", "--filter", "zed*")
    assert r.returncode == 0 and "no user has a JID matching 'zed*'" in r.stdout


def test_duplicate_refused_and_nothing_changes(fg):
    pw = new_password()
    assert add(fg, "alice@contoso.test", pw).returncode == 0
    before = (users(fg), credentials(fg, "alice@contoso.test"), fg.cli_json("audit"))
    r = add(fg, "ALICE@contoso.test", new_password())
    assert r.returncode == 1, r.stderr
    assert "alice@contoso.test already exists; use 'fedgate user passwd" in r.stderr
    assert (users(fg), credentials(fg, "alice@contoso.test"), fg.cli_json("audit")) == before
    assert scram_matches(credentials(fg, "alice@contoso.test"), pw)


def test_bad_jids_refused_naming_the_local_domain(fg):
    cases = [
        ("alice@fabrikam.test", ["fabrikam.test is not a local domain", "contoso.test"]),
        ("contoso.test", ["has no user part", "alice@contoso.test"]),
        ("alice@contoso.test/phone", ["has a resource", "alice@contoso.test"]),
        ("al ice@contoso.test", ["is not a valid JID", "node part"]),
        ("alice@", ["is not a valid JID"]),
    ]
    for jid, texts in cases:
        r = add(fg, jid, new_password())
        assert r.returncode == 1, (jid, r.stderr)
        for text in texts:
            assert text in r.stderr, (jid, r.stderr)
    r = fg.cli("user", "add", input="whatever1\n")
    assert r.returncode == 2 and "the JID is required" in r.stderr
    assert users(fg) == []


def test_password_rules(fg):
    for given, text in (("", "password: empty"), ("abc1234", "at least 8 characters"),
                        ("x" * 1024, "at most 1023 bytes"),
                        ("tab\there-and-more", "control character")):
        r = fg.cli("user", "add", "alice@contoso.test", input=given + "\n")
        assert r.returncode == 1, (given, r.stderr)
        assert text in r.stderr, (given, r.stderr)
        assert given == "" or given not in r.stderr  # never quoted back
    r = fg.cli("user", "add", "alice@contoso.test", input="")  # no input at all
    assert r.returncode == 1 and "password: empty" in r.stderr
    assert users(fg) == []
    # Eight characters, counted as characters: "pässwört" is 10 bytes.
    assert add(fg, "alice@contoso.test", "pässwört").returncode == 0
    # A CRLF line end is a line end, too.
    r = fg.cli("user", "passwd", "alice@contoso.test", input="windows-line\r\n")
    assert r.returncode == 0, r.stderr
    assert scram_matches(credentials(fg, "alice@contoso.test"), "windows-line")


def test_passwd_set_remove(fg):
    pw1, pw2 = new_password(), new_password()
    assert add(fg, "alice@contoso.test", pw1).returncode == 0
    created = fg.cli_json("user", "get", "alice@contoso.test")["created"]
    old_line = credentials(fg, "alice@contoso.test")

    r = fg.cli("user", "passwd", "alice@contoso.test", input=pw2 + "\n")
    assert r.returncode == 0, r.stderr
    line = credentials(fg, "alice@contoso.test")
    assert line != old_line and line.split(":")[2] != old_line.split(":")[2]  # new salt
    assert scram_matches(line, pw2) and not scram_matches(line, pw1)
    assert fg.cli_json("user", "get", "alice@contoso.test")["created"] == created

    r = fg.cli("user", "set", "alice@contoso.test", "--xmpp-access", "false")
    assert r.returncode == 0, r.stderr
    assert fg.cli_json("user", "get", "alice@contoso.test")["xmpp_access"] is False
    assert credentials(fg, "alice@contoso.test") == line  # untouched
    r = fg.cli("user", "set", "alice@contoso.test", "--xmpp-access", "$false")
    assert r.returncode == 0 and "no change" in r.stdout
    r = fg.cli("user", "set", "alice@contoso.test", "--xmpp-access", "maybe")
    assert r.returncode == 1 and "xmpp_access: 'maybe' is not true or false" in r.stderr
    assert fg.cli_json("user", "set", "alice@contoso.test", "--xmpp-access", "TRUE")[
        "xmpp_access"] is True

    # --what-if saves nothing.
    assert fg.cli("user", "remove", "alice@contoso.test", "--what-if").returncode == 0
    assert add(fg, "bob@contoso.test", new_password(), "--what-if").returncode == 0
    assert [u["jid"] for u in users(fg)] == ["alice@contoso.test"]

    r = fg.cli("user", "remove", "alice@contoso.test")
    assert r.returncode == 0, r.stderr
    for args in (("user", "get", "alice@contoso.test"), ("user", "remove", "alice@contoso.test"),
                 ("user", "set", "alice@contoso.test", "--xmpp-access", "false")):
        r = fg.cli(*args)
        assert r.returncode == 3, (args, r.stderr)
        assert "there is no user alice@contoso.test" in r.stderr
    r = fg.cli("user", "passwd", "alice@contoso.test", input=pw1 + "\n")
    assert r.returncode == 3
    assert users(fg) == [] and credentials(fg, "alice@contoso.test") is None

    actions = [(a["action"], a["target"]) for a in fg.cli_json("audit")
               if a["action"].startswith("user ")]
    assert actions == [("user add", "alice@contoso.test"), ("user passwd", "alice@contoso.test"),
                       ("user set", "alice@contoso.test"), ("user set", "alice@contoso.test"),
                       ("user remove", "alice@contoso.test")]


def run_tty(fg, args, typed):
    """Runs the CLI with a terminal as standard input; types each line of
    typed after the prompt for it. Returns (status, stderr, what the
    terminal echoed)."""
    master, slave = pty.openpty()
    proc = subprocess.Popen([FEDGATE, *args, "-c", fg.conf], stdin=slave,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    os.close(slave)
    err, echoed = b"", b""
    for line in typed:
        prompts = err.count(b"assword for")
        deadline = time.time() + 10
        while err.count(b"assword for") == prompts and time.time() < deadline:
            ready, _, _ = select.select([proc.stderr, master], [], [], 0.2)
            if proc.stderr in ready:
                err += os.read(proc.stderr.fileno(), 4096)
            if master in ready:
                echoed += os.read(master, 4096)
        assert err.count(b"assword for") > prompts, err
        os.write(master, line.encode() + b"\n")
    out, rest = proc.communicate(timeout=30)
    err += rest
    try:
        while select.select([master], [], [], 0.2)[0]:
            echoed += os.read(master, 4096)
    except OSError:
        pass
    os.close(master)
    return proc.returncode, err.decode(), echoed.decode(errors="replace")


def test_terminal_asks_twice_without_echo(fg):
    pw = new_password()
    rc, err, echoed = run_tty(fg, ("user", "add", "alice@contoso.test"), [pw, pw + "x"])
    assert rc == 1 and "the two passwords differ" in err
    assert pw not in echoed
    assert users(fg) == []
    rc, err, echoed = run_tty(fg, ("user", "add", "alice@contoso.test"), [pw, pw])
    assert rc == 0, err
    assert "Password for alice@contoso.test: " in err
    assert "Retype the password for alice@contoso.test: " in err
    assert pw not in echoed and pw not in err
    assert scram_matches(credentials(fg, "alice@contoso.test"), pw)


def test_through_the_daemon_and_without(fg):
    pw = new_password()
    assert add(fg, "carol@contoso.test", pw).returncode == 0  # no daemon yet
    fg.start()
    # Through the control socket: the daemon's own set changes at once.
    r = add(fg, "alice@contoso.test", new_password())
    assert r.returncode == 0, r.stderr
    fg.wait_log(r"runs 'user add'")
    r = add(fg, "alice@contoso.test", new_password())
    assert r.returncode == 1 and "already exists" in r.stderr
    assert [u["jid"] for u in users(fg)] == ["alice@contoso.test", "carol@contoso.test"]
    r = fg.cli("user", "set", "alice@contoso.test", "--xmpp-access", "false")
    assert r.returncode == 0, r.stderr
    assert fg.cli_json("user", "get", "alice@contoso.test")["xmpp_access"] is False
    pw2 = new_password()
    assert fg.cli("user", "passwd", "carol@contoso.test", input=pw2 + "\n").returncode == 0
    assert scram_matches(credentials(fg, "carol@contoso.test"), pw2)
    r = add(fg, "alice@fabrikam.test", new_password())
    assert r.returncode == 1 and "not a local domain" in r.stderr and "contoso.test" in r.stderr
    r = fg.cli("user", "remove", "alice@contoso.test")
    assert r.returncode == 0, r.stderr
    r = fg.cli("user", "get", "alice@contoso.test")
    assert r.returncode == 3
    assert fg.cli("user", "remove", "alice@contoso.test").returncode == 3
    rows = [a for a in fg.cli_json("audit") if a["action"].startswith("user ")]
    assert [a["action"] for a in rows] == ["user add", "user add", "user set", "user passwd",
                                           "user remove"]
    fg.stop()
    # What the daemon saved is there without it.
    got = users(fg)
    assert [u["jid"] for u in got] == ["carol@contoso.test"]
    assert scram_matches(credentials(fg, "carol@contoso.test"), pw2)


@pytest.mark.parametrize("with_daemon", [False, True])
def test_password_never_leaks(fg, with_daemon):
    if with_daemon:
        fg.start()
    pw1, pw2 = new_password(), new_password()
    outputs = []
    for args, pw in ((("user", "add", "alice@contoso.test"), pw1),
                     (("user", "passwd", "alice@contoso.test"), pw2)):
        r = fg.cli(*args, "--json", input=pw + "\n")
        assert r.returncode == 0, r.stderr
        outputs.append(r.stdout + r.stderr)
    for args in (("user", "list", "--json"), ("user", "get", "alice@contoso.test"),
                 ("audit",), ("audit", "--json")):
        r = fg.cli(*args)
        assert r.returncode == 0, r.stderr
        outputs.append(r.stdout + r.stderr)
    rows = [a for a in fg.cli_json("audit") if a["action"].startswith("user ")]
    assert rows[0]["before"] is None and rows[0]["after"]["credentials"] == "(set)"
    assert rows[1]["before"]["credentials"] == "(set)"
    assert rows[1]["after"]["credentials"] == "(changed)"
    line = credentials(fg, "alice@contoso.test")
    if with_daemon:
        fg.stop()
        outputs.append(fg.read_log())
        assert "runs 'user passwd'" in outputs[-1]
    raw = store_bytes(fg)
    for pw in (pw1, pw2):
        for text in outputs:
            assert pw not in text
        assert pw.encode() not in raw
        # Nor the keys themselves in anything printed.
        for text in outputs:
            assert line.split(":")[3] not in text
    assert scram_matches(line, pw2)

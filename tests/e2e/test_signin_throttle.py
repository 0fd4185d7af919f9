"""Password guessing is slowed, never turned into a lockout: failed client
logins (c2s SASL) and panel sign-ins are answered after a delay that grows
per address, an address that keeps guessing is refused for itself only,
the right password from an address that did nothing wrong always works,
and an unknown account fails exactly like a wrong password. Every
127.x.y.z is loopback, so each client connects from an address of its own
(source=). The delays are read from the log, never timed."""
import base64
import re
import xml.etree.ElementTree as ET

from c2sclient import NS_SASL, Client
from webclient import Client as Web

USERS = {"alice": "alice-secret-1", "dave": "dave-secret-22"}
ADMIN_PW = "correct horse battery"
PANEL = "http://127.0.0.1:5280"


def fedgate(daemons, c2s=None, admin=None, users=None):
    extra = {"c2s": c2s or {}, "admin": admin or {}, "users": users or {}}
    return daemons.fedgate(extra=extra,
                           users={f"{u}@contoso.test": pw for u, pw in USERS.items()},
                           admins={"root": ("administrator", ADMIN_PW)}).start()


def plain(source, user, password):
    """One login on a fresh stream from source: (answer, condition)."""
    c = Client(source=source)
    c.begin()
    kind, el = c.plain(user, password)
    cond = c.failure_condition(el) if kind == "failure" else None
    c.close()
    return kind, cond


def delays(fg, who):
    """The delays the log says failures for who were answered after, in ms."""
    return [int(ms) for ms in re.findall(
        rf"authentication failed \(not-authorized\) for {re.escape(who)}; answered in (\d+) ms",
        fg.read_log())]


def test_guessing_from_one_address_does_not_lock_out_another(daemons):
    fedgate(daemons, c2s={"auth_delay_max": "1s"})
    for _ in range(5):
        assert plain("127.4.0.1", "alice", "guess") == ("failure", "not-authorized")
    assert plain("127.4.0.2", "alice", USERS["alice"]) == ("success", None)


def test_guessing_spread_over_addresses_does_not_lock_out(daemons):
    """30 addresses guess at once; each is slowed on its own, and alice
    still signs in from a clean address."""
    fg = fedgate(daemons)
    clients = [Client(source=f"127.4.1.{i + 1}") for i in range(30)]
    for c in clients:
        c.begin()
    raw = base64.b64encode(b"\0alice\0guess").decode()
    for c in clients:
        c.send(f"<auth xmlns='{NS_SASL}' mechanism='PLAIN'>{raw}</auth>")
    for c in clients:
        el = c.next_element(timeout=10)
        assert c.failure_condition(el) == "not-authorized"
        c.close()
    # The first failure of each address: the first delay, never more.
    assert delays(fg, "alice@contoso.test") == [1000] * 30
    assert plain("127.4.0.2", "alice", USERS["alice"]) == ("success", None)


def test_delays_grow_and_the_right_password_still_works(daemons):
    fg = fedgate(daemons, c2s={"auth_delay_max": "4s"})
    for _ in range(3):
        assert plain("127.4.0.3", "alice", "guess") == ("failure", "not-authorized")
    # 1 s, 2 s, then 8 s (one more doubling for the same account) capped.
    assert delays(fg, "alice@contoso.test") == [1000, 2000, 4000]
    # Slowed, not refused: the address that mistyped gets in.
    assert plain("127.4.0.3", "alice", USERS["alice"]) == ("success", None)


def test_a_parallel_attempt_waits_its_turn_then_signs_in(daemons):
    """A second connection from an address inside its delay is held, not
    refused; its success comes from the timer and the stream then restarts
    and binds as usual."""
    fg = fedgate(daemons, c2s={"auth_delay_max": "1s"})
    guesser = Client(source="127.4.0.4")
    guesser.begin()
    raw = base64.b64encode(b"\0alice\0guess").decode()
    guesser.send(f"<auth xmlns='{NS_SASL}' mechanism='PLAIN'>{raw}</auth>")
    fg.wait_log(r"for alice@contoso.test; answered in 1000 ms")
    user = Client(source="127.4.0.4")
    assert user.login("alice", USERS["alice"], resource="held") == "alice@contoso.test/held"
    assert "login attempt held" in fg.read_log()
    assert guesser.failure_condition(guesser.next_element()) == "not-authorized"
    guesser.close()
    user.close()


def test_an_address_that_keeps_guessing_is_refused_alone(daemons):
    fg = fedgate(daemons, c2s={"auth_failures": "3", "auth_delay_max": "0"})
    for _ in range(3):
        assert plain("127.4.0.5", "alice", "guess") == ("failure", "not-authorized")
    c = Client(source="127.4.0.5")
    c.begin()
    kind, el = c.plain("alice", USERS["alice"])
    assert (kind, c.failure_condition(el)) == ("failure", "temporary-auth-failure")
    assert re.search(r"try again in \d+ seconds", el.findtext(f"{{{NS_SASL}}}text"))
    c.close()
    assert plain("127.4.0.6", "alice", USERS["alice"]) == ("success", None)
    r = fg.cli("admin", "token", "root")
    metrics = Web(PANEL, token=r.stdout.strip()).get("/metrics").text
    assert 'fedgate_auth_failures_total{reason="c2s-rate-limited"} 1' in metrics
    assert 'fedgate_auth_failures_total{reason="c2s-not-authorized"} 3' in metrics


def scram_first(source, user):
    """(salt, iterations) of the server-first-message for user."""
    c = Client(source=source)
    c.begin()
    first = base64.b64encode(f"n,,n={user},r=abcdefghijklmnop".encode()).decode()
    c.send(f"<auth xmlns='{NS_SASL}' mechanism='SCRAM-SHA-256'>{first}</auth>")
    el = c.next_element()
    assert el.tag == f"{{{NS_SASL}}}challenge", ET.tostring(el)
    attrs = dict(a.split("=", 1) for a in base64.b64decode(el.text).decode().split(","))
    c.close()
    return attrs["s"], attrs["i"]


def test_an_unknown_account_fails_exactly_like_a_wrong_password(daemons):
    """The same answer, the same delay, the same SCRAM parameters; the same
    PBKDF2 work is checked in tests/unit/test_sasl.c."""
    fg = fedgate(daemons, c2s={"auth_delay_max": "4s"}, users={"scram_iterations": "5000"})
    answers = []
    for source, user in (("127.4.0.7", "alice"), ("127.4.0.8", "nobody")):
        c = Client(source=source)
        c.begin()
        kind, el = c.plain(user, "guess")
        answers.append((kind, ET.tostring(el)))
        c.close()
    assert answers[0] == answers[1]
    assert delays(fg, "alice@contoso.test") == delays(fg, "nobody@contoso.test") == [1000]
    alice_salt, alice_iter = scram_first("127.4.0.9", "alice")
    salt, iterations = scram_first("127.4.0.9", "nobody")
    assert (salt, iterations) == scram_first("127.4.0.10", "nobody")
    assert iterations == alice_iter == "5000"
    assert len(base64.b64decode(salt)) == len(base64.b64decode(alice_salt))


def test_panel_signin_after_wrong_passwords_is_not_refused(daemons):
    fg = fedgate(daemons, admin={"signin_delay_max": "1s"})
    web = Web(PANEL, source="127.4.0.1")
    for _ in range(5):
        assert web.signin("root", "wrong password").status == 401
    r = web.signin("root", ADMIN_PW)
    assert r.status == 303, (r.status, r.text)
    assert "(5 recent failures from this address); answered in 1000 ms" in fg.read_log()


def test_panel_address_that_keeps_guessing_gets_429_alone(daemons):
    fg = fedgate(daemons, admin={"signin_attempts": "3", "signin_delay_max": "0"})
    web = Web(PANEL, source="127.4.0.1")
    wrong = web.signin("root", "wrong password")
    unknown = web.signin("nobody", "wrong password")
    assert (wrong.status, unknown.status) == (401, 401)
    assert "Wrong name or password." in wrong.text and "Wrong name or password." in unknown.text
    assert web.signin("root", "wrong password").status == 401
    r = web.signin("root", ADMIN_PW)
    assert r.status == 429 and "Too many failed sign-ins" in r.text
    assert 0 < int(r.headers["Retry-After"]) <= 300
    assert Web(PANEL, source="127.4.0.2").signin("root", ADMIN_PW).status == 303
    assert ADMIN_PW not in fg.read_log() and "wrong password" not in fg.read_log()


def test_stopping_with_answers_held(daemons):
    """SIGTERM while a login failure and a panel sign-in are held: the
    client's stream gets system-shutdown, the panel's request ends (its
    401 is written, but the loop may be gone before it is sent, as for any
    reply still due), nothing hangs, and the daemon exits cleanly (no leak,
    no sanitizer report: Fedgate.stop checks)."""
    import threading
    fg = fedgate(daemons, c2s={"auth_delay_max": "30s"}, admin={"signin_delay_max": "10s"})
    web = Web(PANEL, source="127.4.0.12")
    for _ in range(2):
        assert web.signin("root", "wrong password").status == 401
    answers = []

    def held_signin():
        try:
            answers.append(web.signin("root", "wrong password").status)
        except OSError:
            answers.append("closed")

    t = threading.Thread(target=held_signin)
    t.start()
    fg.wait_log(r"from 127.4.0.12 \(3 recent failures from this address\); answered in 8000 ms")
    # 8 s from now: the client's 1 s and 2 s fit in, its 8 s is held.
    for _ in range(2):
        assert plain("127.4.0.11", "alice", "guess") == ("failure", "not-authorized")
    c = Client(source="127.4.0.11")
    c.begin()
    raw = base64.b64encode(b"\0alice\0guess").decode()
    c.send(f"<auth xmlns='{NS_SASL}' mechanism='PLAIN'>{raw}</auth>")
    fg.wait_log(r"for alice@contoso.test; answered in 8000 ms")
    fg.stop()
    t.join(10)
    assert answers in ([401], ["closed"])
    assert c.stream_error()[0] == "system-shutdown"

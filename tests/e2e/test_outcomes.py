"""No stanza disappears (issue 11, part 4): every stanza that leaves a
sender's hands is delivered, stored offline, answered with an error, or,
when it must not be answered, dropped with a counted and logged reason;
/metrics counts each outcome. An unresponsive partner's full queue and a
shutdown both answer every waiting sender."""
import re
import signal
import socket
import time

import pytest

from c2sclient import Client
from fgtest import Counter, metrics

USERS = {"alice": "alice-secret-1", "dave": "dave-secret-22", "erin": "erin-secret-333"}
SILENT_PORT = 5999


@pytest.fixture
def silent():
    """A partner's server that accepts connections and never says a word."""
    s = socket.socket()
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind(("127.0.0.1", SILENT_PORT))
    s.listen(64)
    yield s
    s.close()


@pytest.fixture
def fg(daemons, silent):
    return daemons.fedgate(
        users={f"{u}@contoso.test": pw for u, pw in USERS.items()},
        admins={"mon": ("viewer", "monitoring password")},
        partners=[("silent.test", "--proxy-fqdn", f"127.0.0.1:{SILENT_PORT}")],
        gateway=("--stream-establishment-timeout", "5"),
        extra={"c2s": {"auth_failures": "1000"}}).start()


def delta(before, after):
    return {k: after.get(k, 0) - before.get(k, 0) for k in set(before) | set(after)
            if after.get(k, 0) != before.get(k, 0)}


def conditions(raw):
    return re.findall(rb"<(resource-constraint|remote-server-timeout|remote-server-not-found|"
                      rb"service-unavailable)", raw)


def test_every_message_to_an_unresponsive_partner_is_answered(fg):
    """100,000 messages to a partner whose server never answers: the
    queue keeps 1000 (bounced when stream_establishment_timeout ends an
    attempt), every other one is answered at once with
    resource-constraint. The old fedgate freed 99,000 without a word."""
    n = 100000
    before = metrics(fg)
    alice = Client()
    alice.login("alice", USERS["alice"], resource="flood")
    rec = Counter(alice.sock, keep=True)
    alice.sock.settimeout(None)
    for i in range(n):
        alice.sock.sendall(f"<message to='bob@silent.test' id='m{i}' type='chat'>"
                           f"<body>{i}</body></message>".encode())
    deadline = time.time() + 120
    while rec.errors < n and time.time() < deadline:
        time.sleep(0.5)
    d = delta(before, metrics(fg))
    assert rec.errors == n, f"{rec.errors} of {n} answered; counters {d}"
    conds = conditions(bytes(rec.raw))
    assert len(conds) == n
    assert set(conds) <= {b"resource-constraint", b"remote-server-timeout",
                          b"remote-server-not-found"}, set(conds)
    # each attempt (one at once, then after each retry delay) bounces the
    # 1000 it kept; everything past them was answered at once
    assert conds.count(b"resource-constraint") >= n - 10 * 1000
    assert d.get("bounced") == n and d.get("delivered") == n, d  # the bounces reached alice
    assert "dropped" not in d, d
    assert "the queue to silent.test is full (1000 stanzas" in fg.read_log()


def test_shutdown_answers_what_waits_for_a_partner(fg):
    """SIGTERM while messages wait for a partner's stream: each sender gets
    its error before <system-shutdown/>."""
    alice = Client()
    alice.login("alice", USERS["alice"], resource="desk")
    for i in range(10):
        alice.send(f"<message to='bob@silent.test' id='w{i}' type='chat'><body>{i}</body>"
                   "</message>")
    # All ten must wait in the route's queue before the signal: the log's
    # "connected" can come while the last ones are still in the socket,
    # unread, and a stanza never read is never the server's to answer.
    deadline = time.time() + 10
    while True:
        rows = [r for r in fg.cli_json("status") if r.get("remote") == "silent.test"]
        if any(r.get("queued") == 10 for r in rows):
            break
        assert time.time() < deadline, rows
        time.sleep(0.05)
    fg.proc.send_signal(signal.SIGTERM)
    got = []
    while True:
        el = alice.next_element(timeout=10)
        if el is None or el == "close":
            break
        got.append(el)
    errors = [e for e in got if e.tag.endswith("message") and e.get("type") == "error"]
    assert [e.get("id") for e in errors] == [f"w{i}" for i in range(10)], got
    text = errors[0].find("{jabber:client}error")
    assert text is not None and \
        text.find("{urn:ietf:params:xml:ns:xmpp-stanzas}service-unavailable") is not None
    assert got[-1].tag.endswith("error") and "system-shutdown" in \
        "".join(c.tag for c in got[-1]), got[-1]
    assert fg.proc.wait(15) == 0


def test_each_outcome_is_counted(fg):
    """One stanza of each kind, and what /metrics says about it."""
    alice, dave = Client(), Client()
    alice.login("alice", USERS["alice"], resource="a")
    dave.login("dave", USERS["dave"], resource="d")
    for c in (alice, dave):  # available, so bare-JID messages reach them
        c.send("<presence/>")
        c.next_element()

    def step(stanza, reader=None):
        before = metrics(fg)
        alice.send(stanza)
        got = reader.next_element(timeout=5) if reader else None
        time.sleep(0.3)
        return delta(before, metrics(fg)), got

    d, got = step("<message to='dave@contoso.test' type='chat' id='1'><body>hi</body></message>",
                  dave)
    assert d == {"delivered": 1}, d
    assert got.get("id") == "1"
    d, _ = step("<message to='erin@contoso.test' type='chat' id='2'><body>later</body>"
                "</message>")
    assert d == {"offline": 1}, d
    d, got = step("<message to='nobody@contoso.test' type='chat' id='3'><body>?</body>"
                  "</message>", alice)
    assert d == {"bounced": 1, "delivered": 1}, d  # the error reached alice
    assert got.get("type") == "error" and got.get("id") == "3"
    d, _ = step("<message to='dave@contoso.test' type='error' id='4'><error type='cancel'>"
                "<item-not-found xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/></error>"
                "</message>")
    assert d == {"dropped": 1, "dropped:error-to-bare-address": 1}, d
    assert re.search(r"message from alice@contoso\.test/a to dave@contoso\.test dropped "
                     r"\(error-to-bare-address\)", fg.read_log())

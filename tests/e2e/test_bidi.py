"""Bidirectional server-to-server streams (XEP-0288) between fedgate
(contoso.test) and a real Prosody 0.12 with mod_s2s_bidi (fabrikam.test):
whichever side opens the stream, messages go both ways over that ONE TCP
connection and `fedgate status` says bidi on it. A partner whose record has
bidi off, and a Prosody without mod_s2s_bidi, still federate over two
streams. Users on both sides are real clients (slixmpp)."""
import asyncio
import re
import socket
import subprocess
import threading
import time

import pytest

from clients import User, run
from c2sclient import Client
from fgtest import FEDGATE, NS_STREAM, Peer

FG = "127.0.0.11"
PROSODY = "127.0.0.12"


def world(daemons, bidi=True, partner=("--partner-type", "federated"), direct_tls=False):
    """direct_tls: both sides also have Direct TLS (XEP-0368) listeners and
    _xmpps-server records, which both prefer."""
    srv = [("_xmpp-server._tcp.fabrikam.test", "fabrikam.test", 5269),
           ("_xmpp-server._tcp.contoso.test", "contoso.test", 5269)]
    if direct_tls:
        srv += [("_xmpps-server._tcp.fabrikam.test", "fabrikam.test", 5270),
                ("_xmpps-server._tcp.contoso.test", "contoso.test", 5270)]
    bed = daemons.bed({"fabrikam.test": PROSODY}, srv=srv)
    prosody = daemons.prosody(bed, "fabrikam", PROSODY, ["fabrikam.test"], bidi=bidi,
                              users={"bob@fabrikam.test": "bob-pass"},
                              extra="s2s_direct_tls_ports = { 5270 }" if direct_tls else "")
    fg = daemons.fedgate(bed=bed, addr=FG, users={"alice@contoso.test": "alice-secret-1"},
                         partners=[("fabrikam.test", *partner)],
                         extra={"listen": {"s2s_tls": f"{FG}:5270"}} if direct_tls else None
                         ).start()
    return bed, prosody, fg


class Person(User):
    def __init__(self, jid, password, cafile, addr):
        super().__init__(jid, password, cafile)
        self.addr = addr
        self.chats = asyncio.Queue()
        self.add_event_handler("message", lambda m: m["type"] != "error" and
                               self.chats.put_nowait(m))

    async def up(self):
        self.connect((self.addr, 5222))
        await asyncio.wait_for(self.online.wait(), 20)
        return self

    async def down(self):
        self.disconnect()
        await asyncio.wait_for(self.disconnected, 10)


async def chat(bed, first):
    """alice (fedgate) and bob (Prosody) online; first ("alice" or "bob")
    writes, the other answers; returns the two bodies received."""
    alice = await Person("alice@contoso.test/desk", "alice-secret-1", bed.ca.cert, FG).up()
    bob = await Person("bob@fabrikam.test/desk", "bob-pass", bed.ca.cert, PROSODY).up()
    a, b = (alice, bob) if first == "alice" else (bob, alice)
    a_jid, b_jid = ("alice@contoso.test", "bob@fabrikam.test")[::1 if first == "alice" else -1]
    a.send_message(mto=b_jid, mbody=f"hello from {a_jid}", mtype="chat")
    got_b = await asyncio.wait_for(b.chats.get(), 20)
    b.send_message(mto=a_jid, mbody=f"hello back from {b_jid}", mtype="chat")
    got_a = await asyncio.wait_for(a.chats.get(), 20)
    await alice.down()
    await bob.down()
    return str(got_b["body"]), str(got_a["body"])


def s2s_rows(fg):
    return [r for r in fg.cli_json("status")
            if r["direction"] in ("in", "out") and r["remote"] == "fabrikam.test"
            and r["state"] == "ready"]


def tcp_connections():
    """Established TCP connections to port 5269 or 5270 (Direct TLS) in
    this test's namespace: each appears once with the server's port as its
    destination."""
    out = subprocess.run(["ss", "-Htn", "state", "established", "( dport = :5269 or "
                          "dport = :5270 )"], capture_output=True, text=True, check=True).stdout
    return [line for line in out.splitlines() if line.strip()]


def settle(fg, want, timeout=10):
    """The ready s2s rows once there are want of them (streams may still
    be closing or opening a moment after the messages arrived)."""
    deadline = time.time() + timeout
    rows = s2s_rows(fg)
    while len(rows) != want and time.time() < deadline:
        time.sleep(0.3)
        rows = s2s_rows(fg)
    return rows


def test_prosody_opens_one_stream_that_carries_both_directions(daemons):
    bed, prosody, fg = world(daemons)
    to_alice, to_bob = run(chat(bed, "bob"))
    assert to_alice == "hello from bob@fabrikam.test"
    assert to_bob == "hello back from alice@contoso.test"
    rows = settle(fg, 1)
    assert len(rows) == 1, rows
    (row,) = rows
    assert row["direction"] == "in" and row["bidi"] is True, row
    assert row["method"] == "SASL over TLS", row
    assert row["stanzas_out"] >= 1 and row["stanzas_in"] >= 1, row
    assert len(tcp_connections()) == 1, tcp_connections()
    text = fg.cli("status").stdout
    assert re.search(r"^in +contoso\.test +fabrikam\.test +ready", text, re.M), text
    assert "bidi: this stream carries stanzas both ways (XEP-0288)" in text, text
    log = fg.read_log()
    assert "the peer asked for a bidirectional stream (XEP-0288)" in log
    assert "s2s-out contoso.test->fabrikam.test" not in log, "an outbound stream was opened"


def test_fedgate_opens_one_stream_that_carries_both_directions(daemons):
    bed, prosody, fg = world(daemons)
    to_bob, to_alice = run(chat(bed, "alice"))
    assert to_bob == "hello from alice@contoso.test"
    assert to_alice == "hello back from bob@fabrikam.test"
    rows = settle(fg, 1)
    assert len(rows) == 1, rows
    (row,) = rows
    assert row["direction"] == "out" and row["bidi"] is True, row
    assert row["stanzas_in"] >= 1 and row["stanzas_out"] >= 1, row
    assert len(tcp_connections()) == 1, tcp_connections()
    assert "bidi: this stream carries stanzas both ways" in fg.cli("status").stdout
    assert "asked fabrikam.test for a bidirectional stream (XEP-0288)" in fg.read_log()
    # Prosody took our stream for its own traffic to contoso.test.
    assert "Setting up to handle route from fabrikam.test to contoso.test" in prosody.read_log()
    # The probe names the feature Prosody offers once TLS is up.
    probe = fg.cli("probe", "fabrikam.test")
    assert re.search(r"stream features after TLS: .*bidi \(XEP-0288\)", probe.stdout), \
        probe.stdout + probe.stderr


@pytest.mark.parametrize("first", ["alice", "bob"])
def test_one_direct_tls_stream_carries_both_directions(daemons, first):
    """Direct TLS (XEP-0368) and bidi together, whichever side connects:
    status says direct-tls and bidi on the one stream."""
    bed, prosody, fg = world(daemons, direct_tls=True)
    to_second, to_first = run(chat(bed, first))
    assert to_second.startswith("hello from ") and to_first.startswith("hello back from ")
    rows = settle(fg, 1)
    assert len(rows) == 1, rows
    (row,) = rows
    assert row["direction"] == ("out" if first == "alice" else "in"), row
    assert row["bidi"] is True and row["tls_mode"] == "direct", row
    assert len(tcp_connections()) == 1, tcp_connections()
    text = fg.cli("status").stdout
    assert "tls: direct-tls" in text and "bidi: this stream carries stanzas both ways" in text, \
        text


def test_the_route_falls_back_to_its_own_stream_when_the_bidi_one_closes(daemons):
    """The partner's bidirectional stream goes away: the next stanza to it
    opens a stream of fedgate's own, as without XEP-0288."""
    bed, prosody, fg = world(daemons)
    run(chat(bed, "bob"))
    assert [r["direction"] for r in settle(fg, 1)] == ["in"]
    # An admin's change of the record closes the partner's streams.
    r = fg.cli("partner", "set", "fabrikam.test", "--description", "closes its streams")
    assert r.returncode == 0, r.stderr
    deadline = time.time() + 10
    while s2s_rows(fg) and time.time() < deadline:
        time.sleep(0.3)
    to_bob, to_alice = run(chat(bed, "alice"))
    assert to_bob == "hello from alice@contoso.test"
    assert to_alice == "hello back from bob@fabrikam.test"
    rows = settle(fg, 1)
    assert [r["direction"] for r in rows] == ["out"], rows


def test_a_bidi_stream_we_write_to_is_not_idle(daemons):
    """Prosody's stream carries only our stanzas after bob's first one (bob
    never answers): with keepalive_interval 10 the inbound stream would be
    idle after 20 s of silence from Prosody, but our traffic keeps it, so
    no second stream is opened."""
    bed, prosody, fg = world(daemons)
    r = fg.cli("gateway", "set", "--keepalive-interval", "10")
    assert r.returncode == 0, r.stderr

    async def scenario():
        alice = await Person("alice@contoso.test/desk", "alice-secret-1", bed.ca.cert, FG).up()
        bob = await Person("bob@fabrikam.test/desk", "bob-pass", bed.ca.cert, PROSODY).up()
        bob.send_message(mto="alice@contoso.test", mbody="hi", mtype="chat")
        await asyncio.wait_for(alice.chats.get(), 20)
        for i in range(10):
            alice.send_message(mto="bob@fabrikam.test", mbody=f"{i}", mtype="chat")
            await asyncio.wait_for(bob.chats.get(), 20)
            await asyncio.sleep(3)
        await alice.down()
        await bob.down()

    run(scenario())
    rows = s2s_rows(fg)
    assert [(r["direction"], r["bidi"]) for r in rows] == [("in", True)], rows
    assert rows[0]["age"] >= 30 and rows[0]["stanzas_out"] >= 10, rows[0]
    assert "no traffic for" not in fg.read_log()


def test_a_failing_route_recovers_through_the_partners_bidi_stream(daemons):
    """fabrikam.test is down when alice writes: the route fails and waits
    to retry. Then Prosody comes up and bob writes: alice's answer goes at
    once over his server's bidirectional stream, and the route's record
    says recovered."""
    bed = daemons.bed({"fabrikam.test": PROSODY},
                      srv=[("_xmpp-server._tcp.fabrikam.test", "fabrikam.test", 5269),
                           ("_xmpp-server._tcp.contoso.test", "contoso.test", 5269)])
    prosody = bed.prosody("fabrikam", PROSODY, ["fabrikam.test"], bidi=True)
    prosody.register("bob", "fabrikam.test", "bob-pass")
    fg = daemons.fedgate(bed=bed, addr=FG, users={"alice@contoso.test": "alice-secret-1"},
                         partners=[("fabrikam.test", "--partner-type", "federated")]).start()

    async def down():
        alice = await Person("alice@contoso.test/desk", "alice-secret-1", bed.ca.cert, FG).up()
        alice.send_message(mto="bob@fabrikam.test", mbody="anyone there?", mtype="chat")
        await asyncio.sleep(1.5)
        await alice.down()

    run(down())
    (route,) = [r for r in fg.cli_json("status") if r["remote"] == "fabrikam.test"]
    assert route["direction"] == "route" and route["state"] == "retry-wait", route
    prosody.start()
    to_alice, to_bob = run(chat(bed, "bob"))
    assert (to_alice, to_bob) == ("hello from bob@fabrikam.test",
                                  "hello back from alice@contoso.test")
    rows = [r for r in fg.cli_json("status") if r["remote"] == "fabrikam.test"]
    assert [r["direction"] for r in rows if r["direction"] != "route"] == ["in"], rows
    (route,) = [r for r in rows if r["direction"] == "route"]
    assert route["state"] == "recovered", route
    assert len(tcp_connections()) == 1, tcp_connections()


def test_partner_with_bidi_off_uses_two_streams(daemons):
    bed, prosody, fg = world(daemons, partner=("--partner-type", "federated", "--bidi",
                                               "false"))
    to_alice, to_bob = run(chat(bed, "bob"))
    assert (to_alice, to_bob) == ("hello from bob@fabrikam.test",
                                  "hello back from alice@contoso.test")
    rows = settle(fg, 2)
    assert sorted(r["direction"] for r in rows) == ["in", "out"], rows
    assert not any(r["bidi"] for r in rows), rows
    assert len(tcp_connections()) == 2, tcp_connections()
    assert "bidi:" not in fg.cli("status").stdout


def test_prosody_without_bidi_still_federates_over_two_streams(daemons):
    bed, prosody, fg = world(daemons, bidi=False)
    to_bob, to_alice = run(chat(bed, "alice"))
    assert (to_bob, to_alice) == ("hello from alice@contoso.test",
                                  "hello back from bob@fabrikam.test")
    rows = settle(fg, 2)
    assert sorted(r["direction"] for r in rows) == ["in", "out"], rows
    assert not any(r["bidi"] for r in rows), rows
    assert len(tcp_connections()) == 2, tcp_connections()
    assert "asked fabrikam.test for a bidirectional stream" not in fg.read_log()


def test_tls_dialback_partner_with_bidi(daemons):
    """TLS Dialback only (row 13): Prosody's stream is bidirectional for the
    pair it proved (XEP-0288 §2.2: the inverse of a dialback pair); fedgate
    verifies the key over a stream of its own, as XEP-0220 needs, so two
    connections, and messages flow both ways."""
    bed, prosody, fg = world(daemons, partner=("--partner-type", "federated", "--sasl",
                                               "not-supported"))
    to_alice, to_bob = run(chat(bed, "bob"))
    assert (to_alice, to_bob) == ("hello from bob@fabrikam.test",
                                  "hello back from alice@contoso.test")
    rows = s2s_rows(fg)
    assert "bidirectional (XEP-0288): stanzas from contoso.test to fabrikam.test use this " \
        "stream" in fg.read_log()
    inbound = [r for r in rows if r["direction"] == "in"]
    assert inbound and inbound[0]["bidi"] is True and inbound[0]["method"] == "TLS Dialback", rows


# ---- our outbound stream against a scripted peer: what the inbound path checks ----

FAKE = "127.0.0.13"
NS_DB = "jabber:server:dialback"


class FakePeer:
    """A server for fake.test that fedgate connects to (proxy_fqdn): TCP
    Dialback, the bidi feature when asked to offer it, then whatever the
    test sends."""

    def __init__(self):
        self.lsock = socket.socket()
        self.lsock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.lsock.bind((FAKE, 5269))
        self.lsock.listen(4)
        self.lsock.settimeout(15)

    def accept(self, offer_bidi):
        sock, _ = self.lsock.accept()
        p = Peer.__new__(Peer)
        p.sock = sock
        p.closed = False
        p.reset_parser()
        header = p.wait_header()
        assert header is not None and header.get("from") == "contoso.test", header
        p.send(f"<?xml version='1.0'?><stream:stream xmlns='jabber:server' "
               f"xmlns:stream='{NS_STREAM}' xmlns:db='{NS_DB}' from='fake.test' "
               f"to='contoso.test' id='fake-stream-1' version='1.0'>"
               "<stream:features>" +
               ("<bidi xmlns='urn:xmpp:features:bidi'/>" if offer_bidi else "") +
               "<dialback xmlns='urn:xmpp:features:dialback'><errors/></dialback>"
               "</stream:features>")
        return p

    def close(self):
        self.lsock.close()


def fake_world(daemons, bidi="true", **kw):
    fg = daemons.fedgate(partners=[("fake.test", "--tls", "not-supported", "--sasl",
                                    "not-supported", "--dialback", "true", "--proxy-fqdn",
                                    f"{FAKE}:5269", "--partner-type", "federated", "--bidi",
                                    bidi)], **kw).start()
    peer = FakePeer()
    testim = subprocess.Popen([FEDGATE, "test-im", "--wait", "0", "--to", "x@fake.test",
                               "-c", fg.conf], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                              text=True)
    return fg, peer, testim


def dialback_valid(p):
    el = p.next_element()
    assert el is not None and el != "close" and el.tag == f"{{{NS_DB}}}result", el
    assert el.get("from") == "contoso.test" and el.get("to") == "fake.test"
    p.send("<db:result from='fake.test' to='contoso.test' type='valid'/>")
    el = p.next_element()  # test-im's message, now that the stream is ready
    assert el is not None and el != "close" and el.tag == "{jabber:server}message", el


def test_outbound_bidi_stream_takes_the_inbound_checks(daemons):
    fg, peer, testim = fake_world(daemons)
    try:
        p = peer.accept(offer_bidi=True)
        el = p.next_element()
        assert el is not None and el != "close" and el.tag == "{urn:xmpp:bidi}bidi", el
        dialback_valid(p)
        (row,) = [r for r in fg.cli_json("status") if r["remote"] == "fake.test"]
        assert row["direction"] == "out" and row["bidi"] is True, row
        # The peer's stanza on our stream is routed like an inbound one:
        # contoso.test answers the ping over this same stream.
        p.send("<iq type='get' id='bidi-ping' from='fake.test' to='contoso.test'>"
               "<ping xmlns='urn:xmpp:ping'/></iq>")
        el = p.next_element()
        assert el is not None and el != "close" and el.tag == "{jabber:server}iq", el
        assert el.get("type") == "result" and el.get("id") == "bidi-ping", el
        # A from it did not authenticate ends the stream, as inbound.
        p.send("<message from='mallory@evil.test' to='contoso.test'><body>x</body></message>")
        cond, text = p.stream_error()
        assert cond == "invalid-from", (cond, text)
        assert "sent a stanza this stream may not carry: <invalid-from/>" in fg.read_log()
    finally:
        peer.close()
        testim.wait(timeout=30)


def test_outbound_without_bidi_in_the_record_does_not_ask(daemons):
    fg, peer, testim = fake_world(daemons, bidi="false")
    try:
        p = peer.accept(offer_bidi=True)
        dialback_valid(p)  # db:result came first: no <bidi/>
        (row,) = [r for r in fg.cli_json("status") if r["remote"] == "fake.test"]
        assert row["bidi"] is False, row
        # Not bidirectional: a stanza of the peer's has no place here.
        p.send("<iq type='get' id='x' from='fake.test' to='contoso.test'>"
               "<ping xmlns='urn:xmpp:ping'/></iq>")
        el = p.next_element()
        assert el == "close", el
        assert "unexpected <iq/> from fake.test in state ready" in fg.read_log()
    finally:
        peer.close()
        testim.wait(timeout=30)


def test_a_full_recipient_holds_our_outbound_bidi_stream(daemons):
    """The peer floods alice, whose client reads nothing, over our
    bidirectional stream: fedgate stops reading that stream (status says
    held), as it does an inbound stream, instead of buffering the flood."""
    fg, peer, testim = fake_world(daemons, users={"alice@contoso.test": "alice-secret-1"},
                                  extra={"timeouts": {"stalled_output": "30s"}})
    try:
        p = peer.accept(offer_bidi=True)
        assert p.next_element().tag == "{urn:xmpp:bidi}bidi"
        dialback_valid(p)
        alice = Client()
        jid = alice.login("alice", "alice-secret-1", resource="slow")
        alice.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        sent = [0]

        def flood():
            body = "x" * 1000
            try:
                for i in range(20000):
                    p.sock.sendall(f"<message from='bob@fake.test' to='{jid}' type='chat' "
                                   f"id='f{i}'><body>{body}</body></message>".encode())
                    sent[0] += 1
            except OSError:
                pass

        threading.Thread(target=flood, daemon=True).start()
        held = None
        deadline = time.time() + 15
        while held is None and time.time() < deadline:
            rows = [r for r in fg.cli_json("status") if r["remote"] == "fake.test"]
            held = next((r for r in rows if r.get("reading") == "held"), None)
            time.sleep(0.3)
        assert held is not None and held["direction"] == "out" and held["bidi"], rows
        time.sleep(1)
        assert sent[0] < 20000 / 2, f"the peer was never slowed: {sent[0]} sent"
        alice.close()
    finally:
        peer.close()
        p.close()
        testim.wait(timeout=30)

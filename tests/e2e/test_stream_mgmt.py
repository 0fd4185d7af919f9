"""XEP-0198 stream management, XEP-0352 client state and XEP-0199 pings
to idle clients, on the wire: a raw client (c2sclient.py) for the exact
elements and the edge cases, slixmpp's xep_0198 plugin for a real
client's resumption."""
import asyncio
import time

import pytest

from c2sclient import Client, NS_BIND
from clients import User, run

USERS = {"alice@contoso.test": "alice's long password",
         "bob@contoso.test": "bob's long password",
         "carol@contoso.test": "carol's long password"}
NS_SM = "urn:xmpp:sm:3"
NS_CSI = "urn:xmpp:csi:0"
NS_C = "{jabber:client}"
NS_STANZAS = "urn:ietf:params:xml:ns:xmpp-stanzas"
NS_DELAY = "urn:xmpp:delay"
NS_PING = "urn:xmpp:ping"
NS_CHATSTATES = "http://jabber.org/protocol/chatstates"


def daemon(daemons, **users):
    return daemons.fedgate(users=USERS, extra={"users": users}).start()


@pytest.fixture
def fg(daemons):
    return daemon(daemons, resumption_window="300s", ping_interval="0")


def password(user):
    return USERS[f"{user}@contoso.test"]


def signin(user, resource, host="127.0.0.1"):
    """An authenticated raw client, not bound yet; and its features."""
    c = Client(host=host)
    f = c.authenticate(user, password(user))
    return c, f


def bind(c, resource):
    c.send(f"<iq type='set' id='b1'><bind xmlns='{NS_BIND}'>"
           f"<resource>{resource}</resource></bind></iq>")
    iq = c.next_element()
    assert iq is not None and iq != "close" and iq.get("type") == "result", iq
    return iq


def login(user, resource):
    c = Client()
    c.login(user, password(user), resource=resource)
    return c


def expect(c, tag, timeout=10):
    """The next element, which must be tag (Clark notation)."""
    el = c.next_element(timeout)
    assert el is not None and el != "close", f"expected {tag}, got {el!r}"
    assert el.tag == tag, f"expected {tag}, got {el.tag} {dict(el.attrib)}"
    return el


def enable(c, resume=True):
    c.send(f"<enable xmlns='{NS_SM}'" + (" resume='true'" if resume else "") + "/>")
    return expect(c, f"{{{NS_SM}}}enabled")


def ack_count(c):
    """Asks for the server's count of what it handled from us."""
    c.send(f"<r xmlns='{NS_SM}'/>")
    return int(expect(c, f"{{{NS_SM}}}a").get("h"))


def chat(frm, to, body, mid):
    frm.send(f"<message to='{to}' type='chat' id='{mid}'><body>{body}</body></message>")


def server_ping(c, iq_id="p1"):
    c.send(f"<iq type='get' id='{iq_id}' to='contoso.test'><ping xmlns='{NS_PING}'/></iq>")


def next_stanza(c, timeout=10):
    """The next element that is not an SM one (<r/> is answered with the
    count given by the caller's stanzas: see received)."""
    while True:
        el = c.next_element(timeout)
        assert el is not None and el != "close", f"no stanza came ({el!r})"
        if not el.tag.startswith(f"{{{NS_SM}}}"):
            return el


def closes(c, timeout=10):
    """Whether the server closes c's stream next (an <r/> it asked before
    may come first)."""
    while True:
        el = c.next_element(timeout)
        if el is None or el == "close" or not el.tag.startswith(f"{{{NS_SM}}}"):
            return el == "close"


def test_features_enable_and_acks(fg):
    alice, f = signin("alice", "a")
    assert f.find(f"{{{NS_SM}}}sm") is not None, "no <sm/> feature after authentication"
    assert f.find(f"{{{NS_CSI}}}csi") is not None, "no <csi/> feature after authentication"
    # Before binding there is no session to manage.
    alice.send(f"<enable xmlns='{NS_SM}' resume='true'/>")
    failed = expect(alice, f"{{{NS_SM}}}failed")
    assert failed.find(f"{{{NS_STANZAS}}}unexpected-request") is not None
    bind(alice, "a")
    en = enable(alice)
    assert en.get("resume") == "true" and len(en.get("id", "")) == 22, en.attrib
    assert en.get("max") == "300"
    # Twice is refused; the first stays on.
    alice.send(f"<enable xmlns='{NS_SM}'/>")
    assert expect(alice, f"{{{NS_SM}}}failed").find(
        f"{{{NS_STANZAS}}}unexpected-request") is not None
    assert ack_count(alice) == 0
    server_ping(alice)
    assert expect(alice, NS_C + "iq").get("type") == "result"
    assert ack_count(alice) == 1
    # A message with a body is followed by an <r/> at once, so that a
    # client signing out cleanly has acknowledged what it read.
    bob = login("bob", "b")
    chat(bob, "alice@contoso.test/a", "n0", "m0")
    assert expect(alice, NS_C + "message").get("id") == "m0"
    expect(alice, f"{{{NS_SM}}}r")
    # While that one is unanswered, the next comes after eight more
    # stanzas (every stanza the server sends is counted).
    for i in range(1, 9):
        chat(bob, "alice@contoso.test/a", f"n{i}", f"m{i}")
    got = []
    while True:
        el = alice.next_element(10)
        assert el is not None and el != "close", f"no <r/> after {got}"
        if el.tag == f"{{{NS_SM}}}r":
            break
        got.append(el.get("id"))
    assert got == [f"m{i}" for i in range(1, 9)]
    # 1 iq result + 9 messages sent; acknowledging them all is fine, and
    # answers the <r/>: the next message is asked about at once again.
    alice.send(f"<a xmlns='{NS_SM}' h='10'/>")
    assert ack_count(alice) == 1
    chat(bob, "alice@contoso.test/a", "n9", "m9")
    assert expect(alice, NS_C + "message").get("id") == "m9"
    expect(alice, f"{{{NS_SM}}}r")
    # Acknowledging more than was sent is a stream error
    # (handled-count-too-high).
    alice.send(f"<a xmlns='{NS_SM}' h='12'/>")
    cond, text = alice.stream_error()
    assert cond == "undefined-condition" and "never sent" in text
    bob.close()


def test_resume_after_the_connection_is_cut(fg):
    alice, _ = signin("alice", "a")
    bind(alice, "a")
    sm_id = enable(alice).get("id")
    bob = login("bob", "b")
    chat(bob, "alice@contoso.test/a", "before the cut", "m1")
    assert next_stanza(alice).get("id") == "m1"
    # Alice got m1 but never acknowledged it; the TCP connection dies
    # without </stream:stream> (nor a TLS close_notify).
    alice.sock.close()
    fg.wait_log(r"session of alice@contoso.test/a hibernates")
    chat(bob, "alice@contoso.test/a", "while cut", "m2")
    server_ping(bob)
    expect(bob, NS_C + "iq")  # m2 was handled before this answer
    # Another account cannot take alice's session with her token.
    carol, _ = signin("carol", "c")
    carol.send(f"<resume xmlns='{NS_SM}' previd='{sm_id}' h='0'/>")
    assert expect(carol, f"{{{NS_SM}}}failed").find(
        f"{{{NS_STANZAS}}}item-not-found") is not None
    carol.close()
    alice2, _ = signin("alice", "a")
    alice2.send(f"<resume xmlns='{NS_SM}' previd='{sm_id}' h='0'/>")
    resumed = expect(alice2, f"{{{NS_SM}}}resumed")
    assert resumed.get("previd") == sm_id and resumed.get("h") == "0"
    # What she had not acknowledged comes again, then what came meanwhile.
    m1, m2 = next_stanza(alice2), next_stanza(alice2)
    assert (m1.get("id"), m2.get("id")) == ("m1", "m2")
    assert m2.findtext(NS_C + "body") == "while cut"
    assert m2.get("to") == "alice@contoso.test/a"
    # The session goes on under the same address, counting on.
    chat(alice2, "bob@contoso.test/b", "back", "m3")
    assert next_stanza(bob).get("from") == "alice@contoso.test/a"
    alice2.send(f"<a xmlns='{NS_SM}' h='2'/>")
    assert ack_count(alice2) == 1
    # The token is used up by a clean close.
    alice2.send("</stream:stream>")
    assert closes(alice2)
    alice3, _ = signin("alice", "a")
    alice3.send(f"<resume xmlns='{NS_SM}' previd='{sm_id}' h='2'/>")
    assert expect(alice3, f"{{{NS_SM}}}failed").find(
        f"{{{NS_STANZAS}}}item-not-found") is not None
    alice3.close()
    bob.close()


def test_resume_takes_over_a_live_connection(fg):
    """The client finds its connection dead before the server does."""
    alice, _ = signin("alice", "a")
    bind(alice, "a")
    sm_id = enable(alice).get("id")
    alice2, _ = signin("alice", "a")
    alice2.send(f"<resume xmlns='{NS_SM}' previd='{sm_id}' h='0'/>")
    expect(alice2, f"{{{NS_SM}}}resumed")
    cond, _ = alice.stream_error()
    assert cond == "conflict"
    bob = login("bob", "b")
    chat(bob, "alice@contoso.test/a", "to the new one", "m1")
    assert next_stanza(alice2).get("id") == "m1"
    bob.close()
    alice2.close()


def test_window_expiry_sends_messages_offline(daemons):
    fg = daemon(daemons, resumption_window="3s", ping_interval="0")
    bob = login("bob", "b")
    alice, _ = signin("alice", "a")
    bind(alice, "a")
    enable(alice)
    # Alice is seen by Bob (directed presence), who writes to her.
    alice.send("<presence to='bob@contoso.test/b'/>")
    p = next_stanza(bob)
    assert p.tag == NS_C + "presence" and p.get("type") is None
    chat(bob, "alice@contoso.test/a", "unacknowledged", "m1")
    assert next_stanza(alice).get("id") == "m1"
    alice.sock.close()
    fg.wait_log(r"session of alice@contoso.test/a hibernates")
    chat(bob, "alice@contoso.test/a", "while cut", "m2")
    # The window passes: Bob sees her go, both messages go offline.
    p = next_stanza(bob, timeout=20)
    assert p.tag == NS_C + "presence" and p.get("type") == "unavailable"
    assert p.get("from") == "alice@contoso.test/a"
    # (m2 is among them unless it came after the window: offline then too)
    fg.wait_log(r"stanza\(s\) alice@contoso.test/a had not acknowledged routed again")
    # At her next login, with initial presence, they come with a delay
    # stamp, in order.
    alice2 = login("alice", "a2")
    alice2.send("<presence/>")
    got = {}
    while len(got) < 2:
        el = next_stanza(alice2)
        if el.tag == NS_C + "message":
            got[el.get("id")] = el
    assert [got[k].findtext(NS_C + "body") for k in ("m1", "m2")] == \
        ["unacknowledged", "while cut"]
    assert got["m2"].find(f"{{{NS_DELAY}}}delay") is not None
    alice2.close()
    bob.close()


def test_clean_close_without_acks_keeps_messages(fg):
    bob = login("bob", "b")
    alice, _ = signin("alice", "a")
    bind(alice, "a")
    enable(alice)
    chat(bob, "alice@contoso.test/a", "not acknowledged", "m1")
    assert next_stanza(alice).get("id") == "m1"
    alice.send("</stream:stream>")
    assert closes(alice)
    fg.wait_log(r"1 stanza\(s\) alice@contoso.test/a had not acknowledged routed again")
    alice2 = login("alice", "a2")
    alice2.send("<presence/>")
    while True:
        el = next_stanza(alice2)
        if el.tag == NS_C + "message":
            break
    assert el.get("id") == "m1" and el.find(f"{{{NS_DELAY}}}delay") is not None
    alice2.close()
    bob.close()


def test_bind_replaces_a_hibernating_session(fg):
    bob = login("bob", "b")
    alice, _ = signin("alice", "a")
    bind(alice, "a")
    sm_id = enable(alice).get("id")
    chat(bob, "alice@contoso.test/a", "unacknowledged", "m1")
    assert next_stanza(alice).get("id") == "m1"
    alice.sock.close()
    fg.wait_log(r"session of alice@contoso.test/a hibernates")
    # A plain bind of the same resource ends it: its message is kept.
    alice2 = login("alice", "a")
    fg.wait_log(r"1 stanza\(s\) alice@contoso.test/a had not acknowledged routed again")
    alice2.send("<presence/>")
    while True:
        el = next_stanza(alice2)
        if el.tag == NS_C + "message":
            break
    assert el.get("id") == "m1"
    alice3, _ = signin("alice", "a3")
    alice3.send(f"<resume xmlns='{NS_SM}' previd='{sm_id}' h='0'/>")
    assert expect(alice3, f"{{{NS_SM}}}failed").find(
        f"{{{NS_STANZAS}}}item-not-found") is not None
    for c in (alice2, alice3, bob):
        c.close()


def test_unacknowledged_queue_is_bounded(daemons):
    fg = daemon(daemons, resumption_queue="10", ping_interval="0")
    bob = login("bob", "b")
    alice, _ = signin("alice", "a")
    bind(alice, "a")
    enable(alice)
    for i in range(12):
        chat(bob, "alice@contoso.test/a", f"n{i}", f"m{i}")
    server_ping(bob)
    expect(bob, NS_C + "iq")  # all twelve were handled
    # Ten copies wait for her acknowledgement; the last two went offline
    # instead of to her (they would come before this <a/>).
    alice.send(f"<r xmlns='{NS_SM}'/>")
    got = []
    while True:
        el = alice.next_element(10)
        assert el is not None and el != "close", got
        if el.tag == f"{{{NS_SM}}}a":
            break
        if el.tag == NS_C + "message":
            got.append(el.get("id"))
    assert got == [f"m{i}" for i in range(10)]
    alice.send(f"<a xmlns='{NS_SM}' h='10'/>")
    alice.send("</stream:stream>")
    assert closes(alice)
    alice2 = login("alice", "a2")
    alice2.send("<presence/>")
    got = []
    while len(got) < 2:
        el = next_stanza(alice2)
        if el.tag == NS_C + "message":
            got.append(el.get("id"))
    assert got == ["m10", "m11"]
    alice2.close()
    bob.close()


def test_unknown_or_malformed_resume_then_bind(fg):
    alice, _ = signin("alice", "a")
    alice.send(f"<resume xmlns='{NS_SM}' previd='AAAAAAAAAAAAAAAAAAAAAA' h='0'/>")
    assert expect(alice, f"{{{NS_SM}}}failed").find(
        f"{{{NS_STANZAS}}}item-not-found") is not None
    alice.send(f"<resume xmlns='{NS_SM}' previd='x' h='-1'/>")
    assert expect(alice, f"{{{NS_SM}}}failed").find(
        f"{{{NS_STANZAS}}}bad-request") is not None
    # The stream goes on to a normal session.
    bind(alice, "a")
    enable(alice, resume=False)
    # Acknowledgements without enabling are refused, not fatal.
    bob = login("bob", "b")
    bob.send(f"<r xmlns='{NS_SM}'/>")
    assert expect(bob, f"{{{NS_SM}}}failed").find(
        f"{{{NS_STANZAS}}}unexpected-request") is not None
    # A session without resumption ends when its connection dies.
    alice.sock.close()
    fg.wait_log(r"session of alice@contoso.test/a ended")
    bob.close()


def test_no_resumption_when_the_window_is_zero(daemons):
    fg = daemon(daemons, resumption_window="0", ping_interval="0")
    alice, _ = signin("alice", "a")
    bind(alice, "a")
    en = enable(alice)
    assert en.get("resume") is None and en.get("id") is None
    assert fg.alive()


def test_csi_holds_presence_and_chat_states(fg):
    alice = login("alice", "a")
    bob = login("bob", "b")
    alice.send(f"<inactive xmlns='{NS_CSI}'/>")
    server_ping(alice)
    expect(alice, NS_C + "iq")  # <inactive/> was handled
    bob.send("<presence to='alice@contoso.test/a'><show>away</show></presence>")
    bob.send(f"<message to='alice@contoso.test/a' type='chat' id='cs1'>"
             f"<composing xmlns='{NS_CHATSTATES}'/></message>")
    bob.send("<presence to='alice@contoso.test/a'><show>xa</show></presence>")
    chat(bob, "alice@contoso.test/a", "hello", "m1")
    # The message with a body flushes what waited, in order, with only
    # Bob's latest presence.
    first, second, third = next_stanza(alice), next_stanza(alice), next_stanza(alice)
    assert first.tag == NS_C + "message" and first.get("id") == "cs1"
    assert second.tag == NS_C + "presence" and second.findtext(NS_C + "show") == "xa"
    assert third.get("id") == "m1"
    # Held again; <active/> flushes.
    bob.send("<presence to='alice@contoso.test/a'><show>dnd</show></presence>")
    server_ping(bob)
    expect(bob, NS_C + "iq")  # the presence was handled: held for alice
    alice.send(f"<active xmlns='{NS_CSI}'/>")
    p = next_stanza(alice)
    assert p.tag == NS_C + "presence" and p.findtext(NS_C + "show") == "dnd"
    # Active: presence comes at once.
    bob.send("<presence to='alice@contoso.test/a'><show>chat</show></presence>")
    assert next_stanza(alice).findtext(NS_C + "show") == "chat"
    alice.close()
    bob.close()


def test_server_pings_idle_clients(daemons):
    fg = daemon(daemons, ping_interval="2s", ping_timeout="2s", resumption_window="300s")
    alice = login("alice", "a")
    ping = expect(alice, NS_C + "iq", timeout=15)
    assert ping.get("type") == "get" and ping.find(f"{{{NS_PING}}}ping") is not None
    alice.send(f"<iq type='result' id='{ping.get('id')}' to='contoso.test'/>")
    # Answered: pinged again later, not closed.
    ping = expect(alice, NS_C + "iq", timeout=15)
    assert ping.find(f"{{{NS_PING}}}ping") is not None
    # Not answered: the stream is taken as dead.
    cond, _ = alice.stream_error(timeout=15)
    assert cond == "connection-timeout"
    fg.wait_log(r"session of alice@contoso.test/a ended")
    # With resumption the session hibernates instead, and can be resumed.
    bob, _ = signin("bob", "b")
    bind(bob, "b")
    sm_id = enable(bob).get("id")
    ping = next_stanza(bob, timeout=15)
    assert ping.find(f"{{{NS_PING}}}ping") is not None
    assert expect(bob, f"{{{NS_SM}}}r").tag  # it asks for the count too
    cond, _ = bob.stream_error(timeout=15)
    assert cond == "connection-timeout"
    fg.wait_log(r"session of bob@contoso.test/b hibernates")
    bob2, _ = signin("bob", "b")
    bob2.send(f"<resume xmlns='{NS_SM}' previd='{sm_id}' h='0'/>")
    expect(bob2, f"{{{NS_SM}}}resumed")
    # The unanswered ping is sent again.
    assert next_stanza(bob2).find(f"{{{NS_PING}}}ping") is not None
    bob2.close()


def test_idle_timeout_hibernates_without_pings(daemons):
    """With pings off, the gateway's idle timeout (30 s at least) is what
    finds a dead connection: a resumable session hibernates then too."""
    fg = daemons.fedgate(users=USERS, extra={"users": {"ping_interval": "0"}},
                         gateway=("--stream-inactivity-timeout", "30")).start()
    alice, _ = signin("alice", "a")
    bind(alice, "a")
    sm_id = enable(alice).get("id")
    cond, _ = alice.stream_error(timeout=60)
    assert cond == "connection-timeout"
    fg.wait_log(r"session of alice@contoso.test/a hibernates")
    alice2, _ = signin("alice", "a")
    alice2.send(f"<resume xmlns='{NS_SM}' previd='{sm_id}' h='0'/>")
    expect(alice2, f"{{{NS_SM}}}resumed")
    alice2.close()


def test_slixmpp_resumes_and_gets_what_came_while_cut(fg):
    """A real client's XEP-0198: slixmpp enables resumption, its TCP
    connection is cut, it reconnects, resumes and gets Bob's message."""
    async def scenario():
        alice = User("alice@contoso.test/phone", password("alice"), fg.cert)
        alice.register_plugin("xep_0198")
        resumed, enabled, gone = asyncio.Event(), asyncio.Event(), asyncio.Event()
        alice.add_event_handler("session_resumed", lambda _: resumed.set())
        alice.add_event_handler("sm_enabled", lambda _: enabled.set())
        alice.add_event_handler("disconnected", lambda _: gone.set())
        bob = User("bob@contoso.test/b", password("bob"), fg.cert)
        for u in (alice, bob):
            u.connect(("127.0.0.1", 5222))
        await asyncio.wait_for(asyncio.gather(alice.online.wait(), bob.online.wait(),
                                              enabled.wait()), 20)
        assert alice.plugin["xep_0198"].sm_id
        # The connection dies under slixmpp: no </stream>, no close_notify.
        alice.transport.abort()
        await asyncio.wait_for(gone.wait(), 10)
        await asyncio.get_running_loop().run_in_executor(
            None, fg.wait_log, r"session of alice@contoso.test/phone hibernates", 10)
        bob.send_message(mto="alice@contoso.test/phone", mbody="sent while cut",
                         mtype="chat")
        alice.connect(("127.0.0.1", 5222))
        await asyncio.wait_for(resumed.wait(), 30)
        msg = await asyncio.wait_for(alice.inbox.get(), 20)
        assert msg["body"] == "sent while cut"
        assert "resumed" in fg.read_log()
        alice.disconnect()
        bob.disconnect()
    run(scenario())

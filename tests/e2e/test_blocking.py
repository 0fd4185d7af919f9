"""XEP-0191 blocking on fedgate (contoso.test), with real clients (slixmpp
and its xep_0191 plugin) on both sides and a real Prosody (fabrikam.test)
as the partner: a blocked remote user's messages come back as errors and
its presence stops, it sees the blocking user go offline, and all of it
works again after unblocking; blocking a local user and a whole domain;
the user's own stanzas to a blocked address are refused with the blocked
error; pushes to the resources that asked for the blocklist; the
blocklist survives a restart of fedgate.

No timed assertions: "nothing arrived" is shown after an answer that the
same stream carried later (an error to the sender, a round trip of the
recipient to its server)."""
import asyncio

import pytest
from slixmpp.exceptions import IqError

from clients import User, run
from fgtest import metrics

FG = "127.0.0.11"
PROSODY = "127.0.0.12"
LOCAL = ["alice", "ann", "amy", "abe", "ada"]
REMOTE = ["bob", "ben", "bea", "bix"]
BLOCKED = "{urn:xmpp:blocking:errors}blocked"
CA = {}


@pytest.fixture(scope="module")
def world(module_daemons):
    bed, prosody, fg = module_daemons.federation(
        {f"{u}@fabrikam.test": f"{u}-pass" for u in REMOTE},
        {f"{u}@contoso.test": f"{u}-secret-1" for u in LOCAL},
        partner=("--partner-type", "federated"), admins={"mon": ("viewer", "mon-password-1")})
    fg.start()
    CA["cert"] = bed.ca.cert
    CA["bed"] = bed.ca.cert
    fg.metrics_base = f"http://{FG}:5280"
    return bed, prosody, fg


class Person(User):
    """A user with a roster, every presence recorded (available ones in
    presences, unavailable ones in gone), subscriptions approved, and the
    blocking pushes it gets in pushes."""

    def __init__(self, jid, password, cafile, addr, interests=()):
        super().__init__(jid, password, cafile)
        self.addr = addr
        self.auto_authorize = True
        self.auto_subscribe = True
        self.presences = asyncio.Queue()
        self.gone = asyncio.Queue()
        self.pushes = asyncio.Queue()
        self.register_plugin("xep_0191")
        self.register_plugin("xep_0199")
        self.add_event_handler("presence", self.on_presence)
        self.chats = asyncio.Queue()  # messages that are not errors
        self.add_event_handler("message", lambda m: m["type"] != "error" and
                               self.chats.put_nowait(m))
        self.add_event_handler("blocked", lambda iq: self.pushes.put_nowait(("block", iq)))
        self.add_event_handler("unblocked", lambda iq: self.pushes.put_nowait(("unblock", iq)))
        # PEP (XEP-0163): +notify in its entity capabilities for interests.
        for p in ("xep_0004", "xep_0030", "xep_0060", "xep_0115", "xep_0163"):
            self.register_plugin(p)
        self.events = asyncio.Queue()
        self.add_event_handler("pubsub_publish", lambda m: self.events.put_nowait(
            (m["pubsub_event"]["items"]["node"], m["pubsub_event"]["items"]["item"]["id"])))
        for ns in interests:
            self["xep_0163"].add_interest(ns)

    def on_presence(self, p):
        # slixmpp's type is the <show/> when there is one.
        if p["type"] in ("available", "away", "chat", "dnd", "xa"):
            self.presences.put_nowait(p)
        elif p["type"] == "unavailable":
            self.gone.put_nowait(p)

    async def on_start(self, _):
        await self.get_roster()
        await super().on_start(_)

    async def up(self):
        self.connect((self.addr, 5222))
        await asyncio.wait_for(self.online.wait(), 20)
        return self

    async def down(self):
        self.disconnect()
        await asyncio.wait_for(self.disconnected, 10)

    async def sync(self):
        """A round trip to the user's own server: whatever the server put
        on this stream before has been read once it returns."""
        await self["xep_0199"].send_ping(self.boundjid.domain, timeout=15)


def local(name, resource="desk"):
    return Person(f"{name}@contoso.test/{resource}", f"{name}-secret-1", CA["cert"], FG)


def remote(name, **kw):
    return Person(f"{name}@fabrikam.test/desk", f"{name}-pass", CA["bed"], PROSODY, **kw)


async def next_from(queue, jid, timeout=20):
    while True:
        item = await asyncio.wait_for(queue.get(), timeout)
        if str(item["from"]).split("/")[0] == jid:
            return item


def drain(queue, jid=None):
    out = []
    while not queue.empty():
        item = queue.get_nowait()
        if jid is None or str(item["from"]).split("/")[0] == jid:
            out.append(item)
    return out


async def befriend(lname, rname, **kw):
    loc = await local(lname).up()
    rem = await remote(rname, **kw).up()
    loc.send_presence_subscription(pto=f"{rname}@fabrikam.test")
    await next_from(loc.presences, f"{rname}@fabrikam.test")
    await next_from(rem.presences, f"{lname}@contoso.test")
    return loc, rem


async def blocklist(user):
    iq = await user["xep_0191"].get_blocked(timeout=15)
    return sorted(str(j) for j in iq["blocklist"]["items"])


def test_blocking_a_remote_user_stops_messages_and_presence_until_unblocked(world):
    bed, prosody, fg = world
    dropped = metrics(fg).get("dropped:blocked", 0)

    async def scenario():
        alice, bob = await befriend("alice", "bob")
        phone = await local("alice", "phone").up()
        assert await blocklist(phone) == []  # the phone now gets pushes
        drain(alice.presences)
        drain(bob.gone)

        await alice["xep_0191"].block("bob@fabrikam.test", timeout=15)
        kind, push = await asyncio.wait_for(phone.pushes.get(), 15)
        pushed = (kind, sorted(str(j) for j in push["block"]["items"]))
        # bob sees alice (both resources) go offline.
        gone = await next_from(bob.gone, "alice@contoso.test")
        drain(bob.presences)  # the phone's, from before the block

        # bob's presence change and message: the message comes back as an
        # error; the presence, sent before it on the same streams, is gone.
        bob.send_presence(pshow="dnd", pstatus="busy")
        bob.send_message(mto="alice@contoso.test", mbody="are you there", mtype="chat")
        err_in = await next_from(bob.errors, "alice@contoso.test")
        await alice.sync()
        leaked_msgs = drain(alice.chats, "bob@fabrikam.test")
        # (An earlier presence of bob's, answering the phone's probe, may
        # still be on its way: only the one sent while blocked counts.)
        leaked_pres = [p for p in drain(alice.presences, "bob@fabrikam.test")
                       if p["show"] == "dnd"]
        # An iq request is answered like a message.
        try:
            await bob["xep_0199"].send_ping("alice@contoso.test", timeout=15)
            ping = "result"
        except IqError as e:
            ping = e.iq["error"]["condition"]

        # alice's own message to bob is refused with the blocked error.
        alice.send_message(mto="bob@fabrikam.test", mbody="hi bob", mtype="chat")
        err_out = await next_from(alice.errors, "bob@fabrikam.test")
        listed = await blocklist(alice)

        await alice["xep_0191"].unblock("bob@fabrikam.test", timeout=15)
        kind2, push2 = await asyncio.wait_for(phone.pushes.get(), 15)
        pushed2 = (kind2, sorted(str(j) for j in push2["unblock"]["items"]))
        # bob sees alice again, alice sees bob again (her server probes).
        back = await next_from(bob.presences, "alice@contoso.test")
        again = await next_from(alice.presences, "bob@fabrikam.test")
        while again["show"] != "dnd":
            again = await next_from(alice.presences, "bob@fabrikam.test")
        bob.send_message(mto="alice@contoso.test", mbody="after", mtype="chat")
        after = await next_from(alice.chats, "bob@fabrikam.test")
        alice.send_message(mto="bob@fabrikam.test", mbody="hello again", mtype="chat")
        to_bob = await next_from(bob.chats, "alice@contoso.test")
        for u in (alice, phone, bob):
            await u.down()
        return (pushed, gone, err_in, leaked_msgs, leaked_pres, ping, err_out, listed, pushed2,
                back, again, after, to_bob)

    (pushed, gone, err_in, leaked_msgs, leaked_pres, ping, err_out, listed, pushed2, back,
     again, after, to_bob) = run(scenario())
    # bob's presence went without a word, and was counted.
    assert metrics(fg).get("dropped:blocked", 0) > dropped
    assert pushed == ("block", ["bob@fabrikam.test"])
    assert gone["type"] == "unavailable"
    assert err_in["error"]["condition"] == "service-unavailable"
    assert leaked_msgs == [] and leaked_pres == []
    assert ping == "service-unavailable"
    assert err_out["error"]["condition"] == "not-acceptable"
    assert err_out.xml.find("{jabber:client}error/" + BLOCKED) is not None
    assert listed == ["bob@fabrikam.test"]
    assert pushed2 == ("unblock", ["bob@fabrikam.test"])
    assert back["type"] in ("available", "away", "chat", "dnd", "xa")
    assert again["show"] == "dnd"
    assert after["body"] == "after"
    assert to_bob["body"] == "hello again"


def test_blocking_a_local_user_and_a_whole_domain_survives_a_restart(world):
    bed, prosody, fg = world

    async def before():
        ann = await local("ann").up()
        amy = await local("amy").up()
        ben = await remote("ben").up()
        await ann["xep_0191"].block(["amy@contoso.test", "fabrikam.test"], timeout=15)
        amy.send_message(mto="ann@contoso.test", mbody="from amy", mtype="chat")
        amy_err = await next_from(amy.errors, "ann@contoso.test")
        ben.send_message(mto="ann@contoso.test", mbody="from ben", mtype="chat")
        ben_err = await next_from(ben.errors, "ann@contoso.test")
        await ann.sync()
        leaked = drain(ann.chats)
        ann.send_message(mto="amy@contoso.test", mbody="to amy", mtype="chat")
        out_local = await next_from(ann.errors, "amy@contoso.test")
        ann.send_message(mto="bea@fabrikam.test", mbody="to bea", mtype="chat")
        out_domain = await next_from(ann.errors, "bea@fabrikam.test")
        for u in (ann, amy, ben):
            await u.down()
        return amy_err, ben_err, leaked, out_local, out_domain

    amy_err, ben_err, leaked, out_local, out_domain = run(before())
    assert amy_err["error"]["condition"] == "service-unavailable"
    assert ben_err["error"]["condition"] == "service-unavailable"
    assert leaked == []
    for e in (out_local, out_domain):
        assert e["error"]["condition"] == "not-acceptable"
        assert e.xml.find("{jabber:client}error/" + BLOCKED) is not None

    fg.stop()
    fg.start()

    async def after():
        ann = await local("ann").up()
        amy = await local("amy").up()
        listed = await blocklist(ann)
        amy.send_message(mto="ann@contoso.test", mbody="still?", mtype="chat")
        still = await next_from(amy.errors, "ann@contoso.test")
        # Unblock everything: an <unblock/> without items.
        await ann["xep_0191"].unblock([], timeout=15)
        emptied = await blocklist(ann)
        amy.send_message(mto="ann@contoso.test", mbody="now", mtype="chat")
        now = await next_from(ann.chats, "amy@contoso.test")
        for u in (ann, amy):
            await u.down()
        return listed, still, emptied, now

    listed, still, emptied, now = run(after())
    assert listed == ["amy@contoso.test", "fabrikam.test"]
    assert still["error"]["condition"] == "service-unavailable"
    assert emptied == []
    assert now["body"] == "now"


def test_bad_block_requests_get_the_right_errors(world):
    async def scenario():
        abe = await local("abe").up()
        out = []
        for payload in ("<block xmlns='urn:xmpp:blocking'/>",
                        "<block xmlns='urn:xmpp:blocking'><item jid='a@@b'/></block>",
                        "<blocklist xmlns='urn:xmpp:blocking'/>"):
            iq = abe.make_iq_set()
            iq.append(__import__("xml.etree.ElementTree", fromlist=["x"]).fromstring(payload))
            try:
                await iq.send(timeout=15)
                out.append("result")
            except IqError as e:
                out.append(e.iq["error"]["condition"])
        await abe.down()
        return out

    assert run(scenario()) == ["bad-request", "jid-malformed", "bad-request"]


def test_user_remove_takes_the_blocklist(world):
    bed, prosody, fg = world

    async def block():
        amy = await local("amy").up()
        await amy["xep_0191"].block("bea@fabrikam.test", timeout=15)
        listed = await blocklist(amy)
        await amy.down()
        return listed

    assert run(block()) == ["bea@fabrikam.test"]
    assert fg.cli("user", "remove", "amy@contoso.test").returncode == 0
    r = fg.cli("user", "add", "amy@contoso.test", input="amy-secret-1\n")
    assert r.returncode == 0, r.stderr

    async def again():
        amy = await local("amy").up()
        listed = await blocklist(amy)
        bea = await remote("bea").up()
        bea.send_message(mto="amy@contoso.test", mbody="hello again", mtype="chat")
        got = await next_from(amy.chats, "bea@fabrikam.test")
        for u in (amy, bea):
            await u.down()
        return listed, got

    listed, got = run(again())
    assert listed == []
    assert got["body"] == "hello again"


NICK = "http://jabber.org/protocol/nick"


def test_a_blocked_contact_gets_no_pep_notifications(world):
    """ada's nick (XEP-0172 over PEP) reaches bix, whose client asks for
    its notifications, until ada blocks him; back after unblocking."""
    import xml.etree.ElementTree as ET

    def nick(text):
        return ET.fromstring(f"<nick xmlns='{NICK}'>{text}</nick>")

    async def publish(user, item):
        await user["xep_0060"].publish(None, NICK, id=item, payload=nick(item), timeout=15)

    async def next_event(user, item):
        while True:
            ev = await asyncio.wait_for(user.events.get(), 20)
            if ev == (NICK, item):
                return ev

    async def scenario():
        ada, bix = await befriend("ada", "bix", interests=[NICK])
        ben = await remote("ben").up()
        await publish(ada, "n0")
        before = await next_event(bix, "n0")
        await ada["xep_0191"].block("bix@fabrikam.test", timeout=15)
        # fedgate sends the notifications before the publisher's result,
        # and the message to ben after it, over the same stream.
        await publish(ada, "n1")
        ada.send_message(mto="ben@fabrikam.test", mbody="after n1", mtype="chat")
        await next_from(ben.chats, "ada@contoso.test")
        await bix.sync()
        leaked = [ev for ev in drain_events(bix) if ev == (NICK, "n1")]
        await ada["xep_0191"].unblock("bix@fabrikam.test", timeout=15)
        await publish(ada, "n2")
        after = await next_event(bix, "n2")
        for u in (ada, bix, ben):
            await u.down()
        return before, leaked, after

    def drain_events(user):
        out = []
        while not user.events.empty():
            out.append(user.events.get_nowait())
        return out

    before, leaked, after = run(scenario())
    assert before == (NICK, "n0")
    assert leaked == []
    assert after == (NICK, "n2")

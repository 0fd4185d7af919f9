"""Local users of fedgate (contoso.test) and users of a real Prosody
(fabrikam.test), both on real clients (slixmpp): subscriptions, presence,
chat both ways, offline messages, SPEC §4's partner types switched live
with `fedgate partner set`, the per-user xmpp_access switch, and
`fedgate test-im --from`."""
import asyncio
import time

import pytest

from clients import User, cli, run

FG = "127.0.0.11"
PROSODY = "127.0.0.12"
LOCAL = ["alice", "amy", "ann", "abe", "al", "ada", "ace"]
REMOTE = ["bob", "ben", "bea", "bo", "bud", "bix", "bex"]


@pytest.fixture(scope="module")
def world(module_daemons):
    bed, prosody, fg = module_daemons.federation(
        {f"{u}@fabrikam.test": f"{u}-pass" for u in REMOTE},
        {f"{u}@contoso.test": f"{u}-secret-1" for u in LOCAL})
    fg.start()
    CA["cert"] = bed.ca.cert
    return bed, prosody, fg


class Person(User):
    """A user with a roster (so it gets pushes), every presence and
    subscription event recorded, and receipts answered (XEP-0184)."""

    def __init__(self, jid, password, cafile, addr, approve=True):
        super().__init__(jid, password, cafile)
        self.addr = addr
        self.auto_authorize = approve
        self.auto_subscribe = approve
        self.presences = asyncio.Queue()
        self.requests = asyncio.Queue()
        self.answers = asyncio.Queue()
        self.register_plugin("xep_0184")
        self.register_plugin("xep_0199")
        self.add_event_handler("presence", self.on_presence)
        self.chats = asyncio.Queue()  # messages that are not errors
        self.add_event_handler("message", lambda m: m["type"] != "error" and
                               self.chats.put_nowait(m))
        self.add_event_handler("presence_subscribe", lambda p: self.requests.put_nowait(p))
        for ev in ("presence_subscribed", "presence_unsubscribed"):
            self.add_event_handler(ev, lambda p: self.answers.put_nowait(p))

    async def on_start(self, _):
        await self.get_roster()
        await super().on_start(_)

    def on_presence(self, p):
        if p["type"] in ("available", "away", "chat", "dnd", "xa"):
            self.presences.put_nowait(p)

    async def up(self):
        self.connect((self.addr, 5222))
        await asyncio.wait_for(self.online.wait(), 20)
        return self

    async def down(self):
        self.disconnect()
        await asyncio.wait_for(self.disconnected, 10)


CA = {}


def local(name, approve=True):
    return Person(f"{name}@contoso.test/desk", f"{name}-secret-1", CA["cert"], FG, approve)


def remote(bed, name, approve=True):
    return Person(f"{name}@fabrikam.test/desk", f"{name}-pass", bed.ca.cert, PROSODY, approve)


async def next_from(queue, jid, timeout=15):
    deadline = time.time() + timeout
    while True:
        left = deadline - time.time()
        if left <= 0:
            raise asyncio.TimeoutError(f"nothing from {jid}")
        item = await asyncio.wait_for(queue.get(), left)
        if str(item["from"]).split("/")[0] == jid:
            return item


async def nothing_from(queue, jid, wait=2):
    try:
        return await next_from(queue, jid, wait)
    except asyncio.TimeoutError:
        return None


async def befriend(bed, lname, rname):
    """Both online; the local user adds the remote one, whose client
    approves and adds back; returns once each has seen the other."""
    loc = await local(lname).up()
    rem = await remote(bed, rname).up()
    loc.send_presence_subscription(pto=f"{rname}@fabrikam.test")
    await next_from(loc.presences, f"{rname}@fabrikam.test", 20)
    await next_from(rem.presences, f"{lname}@contoso.test", 20)
    return loc, rem


def set_type(fg, ptype):
    r = fg.cli("partner", "set", "fabrikam.test", "--partner-type", ptype)
    assert r.returncode == 0, r.stderr


def test_add_each_other_see_presence_chat_and_offline_messages(world):
    bed, prosody, fg = world
    set_type(fg, "federated")

    async def scenario():
        alice, bob = await befriend(bed, "alice", "bob")
        alice.send_message(mto="bob@fabrikam.test", mbody="hello bob", mtype="chat")
        to_bob = await next_from(bob.inbox, "alice@contoso.test")
        bob.send_message(mto="alice@contoso.test", mbody="hello alice", mtype="chat")
        to_alice = await next_from(alice.inbox, "bob@fabrikam.test")
        subs = (alice.client_roster["bob@fabrikam.test"]["subscription"],
                bob.client_roster["alice@contoso.test"]["subscription"])
        # XEP-0199 across the federation, both ways.
        pongs = (await alice["xep_0199"].send_ping("fabrikam.test", timeout=15),
                 await bob["xep_0199"].send_ping("contoso.test", timeout=15))
        await alice.down()
        await asyncio.sleep(0.5)
        bob.send_message(mto="alice@contoso.test", mbody="while you were away", mtype="chat")
        await asyncio.sleep(2)
        alice2 = await local("alice").up()
        later = await next_from(alice2.inbox, "bob@fabrikam.test")
        await alice2.down()
        await bob.down()
        return subs, pongs, to_bob, to_alice, later

    subs, pongs, to_bob, to_alice, later = run(scenario())
    assert subs == ("both", "both")
    assert [p["type"] for p in pongs] == ["result", "result"]
    assert str(pongs[0]["from"]) == "fabrikam.test"
    assert to_bob["body"] == "hello bob"
    assert to_alice["body"] == "hello alice"
    assert later["body"] == "while you were away"
    assert later.xml.find("{urn:xmpp:delay}delay") is not None


def spec_row(bed, fg, ptype, lname, rname):
    """One row of SPEC §4's table, observed: does the remote user's
    subscription get approved without the local user (whose client does
    not approve anything), does an unsolicited message arrive, and does
    the status text reach the remote user."""
    set_type(fg, ptype)

    async def scenario():
        loc = await local(lname, approve=False).up()
        rem = await remote(bed, rname).up()
        # Subscription request from the partner's user.
        rem.send_presence_subscription(pto=f"{lname}@contoso.test")
        answer = await next_from(rem.answers, f"{lname}@contoso.test", 15)
        asked = await nothing_from(loc.requests, f"{rname}@fabrikam.test", 1)
        # Unsolicited message.
        rem.send_message(mto=f"{lname}@contoso.test", mbody="unsolicited", mtype="chat")
        got = await nothing_from(loc.inbox, f"{rname}@fabrikam.test", 3)
        bounced = await nothing_from(rem.errors, f"{lname}@contoso.test", 1)
        # Status notes: the remote user needs a subscription to see them.
        if answer["type"] != "subscribed":
            loc.send_presence_subscription(pto=f"{rname}@fabrikam.test")  # adds them
            await asyncio.sleep(1)
            rem.send_presence_subscription(pto=f"{lname}@contoso.test")
            await next_from(loc.requests, f"{rname}@fabrikam.test", 15)
            loc.send_presence(pto=f"{rname}@fabrikam.test", ptype="subscribed")
        # Marked with <show>dnd</show>, so that the earlier presence is
        # not taken for this one.
        loc.send_presence(pshow="dnd", pstatus="in a meeting until 3")
        while True:
            p = await next_from(rem.presences, f"{lname}@contoso.test", 15)
            if p["show"] == "dnd":
                seen = p["status"]
                break
        await loc.down()
        await rem.down()
        return answer["type"], asked is not None, got is not None, bounced, seen

    return run(scenario())


def test_partner_types_follow_the_spec_table(world):
    bed, prosody, fg = world
    rows = {}
    for (ptype, ln, rn) in (("federated", "amy", "ben"), ("public-verified", "ann", "bea"),
                            ("public-unverified", "abe", "bo")):
        answer, asked, got, bounced, seen = spec_row(bed, fg, ptype, ln, rn)
        rows[ptype] = (answer == "subscribed" and not asked, got, seen)
        if ptype == "public-unverified":
            assert answer == "unsubscribed"
            assert bounced is not None and bounced["error"]["condition"] == "forbidden"
            assert "only from contacts they have added" in bounced["error"]["text"]
    print("\npartner type        | subscribe w/o approval | unsolicited message | status")
    for k, v in rows.items():
        print(f"{k:19} | {str(v[0]):22} | {str(v[1]):19} | {v[2]!r}")
    assert rows == {
        "federated": (True, True, "in a meeting until 3"),
        "public-verified": (True, True, ""),
        "public-unverified": (False, False, ""),
    }


def test_public_unverified_opens_up_once_the_local_user_adds_the_contact(world):
    bed, prosody, fg = world
    set_type(fg, "public-unverified")

    async def scenario():
        al = await local("al", approve=True).up()
        bud = await remote(bed, "bud").up()
        bud.send_message(mto="al@contoso.test", mbody="first try", mtype="chat")
        refused = await next_from(bud.errors, "al@contoso.test")
        al.send_presence_subscription(pto="bud@fabrikam.test")
        # bud's client approves and asks back; al's client approves.
        await next_from(al.presences, "bud@fabrikam.test", 20)
        await next_from(bud.presences, "al@contoso.test", 20)
        bud.send_message(mto="al@contoso.test", mbody="second try", mtype="chat")
        got = await next_from(al.inbox, "bud@fabrikam.test")
        await al.down()
        await bud.down()
        return refused, got

    refused, got = run(scenario())
    assert refused["error"]["condition"] == "forbidden"
    assert got["body"] == "second try"


def test_xmpp_access_off_blocks_federation_for_that_user_only(world):
    bed, prosody, fg = world
    set_type(fg, "federated")
    assert fg.cli("user", "set", "ada@contoso.test", "--xmpp-access", "false").returncode == 0

    async def scenario():
        ada = await local("ada").up()
        abe = await local("abe").up()
        bix = await remote(bed, "bix").up()
        ada.send_message(mto="bix@fabrikam.test", mbody="out", mtype="chat")
        out_err = await next_from(ada.errors, "bix@fabrikam.test")
        bix.send_message(mto="ada@contoso.test", mbody="in", mtype="chat")
        in_err = await next_from(bix.errors, "ada@contoso.test")
        got_in = await nothing_from(ada.chats, "bix@fabrikam.test", 1)
        # Local chat still works for ada, federation still works for abe.
        ada.send_message(mto="abe@contoso.test", mbody="local", mtype="chat")
        local_msg = await next_from(abe.inbox, "ada@contoso.test")
        bix.send_message(mto="abe@contoso.test", mbody="to abe", mtype="chat")
        abe_msg = await next_from(abe.inbox, "bix@fabrikam.test")
        for u in (ada, abe, bix):
            await u.down()
        return out_err, in_err, got_in, local_msg, abe_msg

    out_err, in_err, got_in, local_msg, abe_msg = run(scenario())
    assert out_err["error"]["condition"] == "forbidden"
    assert "xmpp_access" in out_err["error"]["text"]
    assert in_err["error"]["condition"] == "forbidden"
    assert got_in is None
    assert local_msg["body"] == "local" and abe_msg["body"] == "to abe"


def test_test_im_from_a_local_user_gets_a_receipt_then_names_the_failing_step(world):
    bed, prosody, fg = world
    set_type(fg, "federated")

    async def scenario():
        bob = await remote(bed, "bob").up()
        rc, out, err = await cli(fg, "test-im", "--from", "alice@contoso.test",
                                 "--to", "bob@fabrikam.test/desk", "--body", "receipt please")
        msg = await next_from(bob.inbox, "alice@contoso.test")
        await bob.down()
        return rc, out + err, msg

    rc, out, msg = run(scenario())
    assert rc == 0, out
    assert "sending as alice@contoso.test/fedgate-test-im-" in out
    assert "message handed to fabrikam.test's server" in out
    assert "delivery receipt from bob@fabrikam.test/desk" in out
    assert msg["body"] == "receipt please"

    assert fg.cli("partner", "remove", "fabrikam.test").returncode == 0
    try:
        r = fg.cli("test-im", "--from", "alice@contoso.test", "--to", "bob@fabrikam.test")
        assert r.returncode == 1
        assert "fabrikam.test is not an allowed federation partner" in r.stdout + r.stderr
    finally:
        assert fg.cli("partner", "new", "--domain", "fabrikam.test").returncode == 0


def test_remote_contacts_are_probed_again_every_refresh_interval(world):
    """subscription_refresh_interval (60 s at the least): fedgate probes the
    remote contacts of online users again, and their servers answer with
    the current presence, which reaches the user's client once more."""
    bed, prosody, fg = world
    set_type(fg, "federated")

    async def scenario():
        ace, bex = await befriend(bed, "ace", "bex")
        rc, out, err = await cli(fg, "gateway", "set", "--subscription-refresh-interval", "60")
        assert rc == 0, err
        started = time.time()
        # What the subscription itself brought is not what this is about.
        await asyncio.sleep(3)
        while not ace.presences.empty():
            ace.presences.get_nowait()
        # Nothing changes at bex's end, yet the presence comes again.
        again = await next_from(ace.presences, "bex@fabrikam.test", 90)
        waited = time.time() - started
        await ace.down()
        await bex.down()
        return again, waited

    try:
        again, waited = run(scenario())
    finally:
        fg.cli("gateway", "set", "--subscription-refresh-interval", "28800")
    assert again["show"] == ""
    assert 55 <= waited <= 90, waited

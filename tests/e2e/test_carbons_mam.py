"""Message Carbons (XEP-0280) and the message archive (XEP-0313 with
XEP-0059 paging and XEP-0359 stanza-ids) on real slixmpp clients: two
resources of alice see each other's conversations, forged carbons are taken
out, the archive pages in order, keeps what a partner's user (the bed's
Prosody) exchanged, obeys preferences, shares its ids with offline
delivery, and goes with `fedgate user remove`.

Where a test shows that something did NOT arrive, it sends a second stanza
that must arrive after it, and looks at what came first: no timeouts
decide a result."""
import asyncio
import xml.etree.ElementTree as ET

import pytest
from slixmpp.xmlstream.handler import Callback
from slixmpp.xmlstream.matcher import MatchXPath

from clients import User, cli, run

FG = "127.0.0.11"
PROSODY = "127.0.0.12"
LOCAL = ["alice", "bob", "carol", "dave", "erin", "frank", "gina", "hank"]
CARBONS = "urn:xmpp:carbons:2"
MAM = "urn:xmpp:mam:2"
SID = "urn:xmpp:sid:0"
CA = {}


@pytest.fixture(scope="module")
def world(module_daemons):
    bed, prosody, fg = module_daemons.federation(
        {"zoe@fabrikam.test": "zoe-pass"},
        {f"{u}@contoso.test": f"{u}-secret-1" for u in LOCAL},
        partner=("--partner-type", "federated"))
    fg.start()
    CA["cert"] = bed.ca.cert
    return bed, prosody, fg


class Client(User):
    """A slixmpp user with carbons, MAM and RSM, recording carbons apart."""

    def __init__(self, jid, password, addr=FG):
        super().__init__(jid, password, CA["cert"])
        self.addr = addr
        for p in ("xep_0030", "xep_0059", "xep_0199", "xep_0280", "xep_0297", "xep_0313",
                  "xep_0334"):
            self.register_plugin(p)
        self.carbons = asyncio.Queue()
        self.results = asyncio.Queue()  # archive results, which have no body
        self.register_handler(Callback("mam results", MatchXPath(
            f"{{jabber:client}}message/{{{MAM}}}result"), self.results.put_nowait))
        self.add_event_handler("carbon_received", lambda m: self.carbons.put_nowait(
            ("received", m["carbon_received"])))
        self.add_event_handler("carbon_sent", lambda m: self.carbons.put_nowait(
            ("sent", m["carbon_sent"])))

    async def up(self, carbons=True):
        self.connect((self.addr, 5222))
        await asyncio.wait_for(self.online.wait(), 20)
        if carbons:
            await self["xep_0280"].enable(timeout=10)
        return self

    async def down(self):
        self.disconnect()
        await asyncio.wait_for(self.disconnected, 10)

    async def chat_from(self, jid):
        """The next chat message (not an archive result) from jid's bare."""
        while True:
            m = await asyncio.wait_for(self.inbox.get(), 20)
            if m["type"] != "error" and m["from"].bare == jid and m["body"]:
                return m

    async def page(self, with_jid=None, **rsm):
        """One archive query; returns (bodies, ids, fin element)."""
        iq = await self["xep_0313"].retrieve(jid=self.boundjid.bare, rsm=rsm or None,
                                             with_jid=with_jid, timeout=20)
        results = iq["mam"]["results"]
        bodies = [r["mam_result"]["forwarded"]["stanza"]["body"] for r in results]
        ids = [r["mam_result"]["id"] for r in results]
        return bodies, ids, iq.xml.find(f"{{{MAM}}}fin")

    async def page_back(self, max_, before=True):
        """A query paging backwards (RSM <before/>, empty = the last page),
        which slixmpp's retrieve() cannot ask for; the results are in the
        inbox once the answer is, since stanzas are handled in order."""
        self.nq = getattr(self, "nq", 0) + 1
        qid = f"back{self.nq}"
        iq = self.make_iq_set(ito=self.boundjid.bare)
        iq["mam"]["queryid"] = qid
        iq["mam"]["rsm"]["max"] = str(max_)
        iq["mam"]["rsm"]["before"] = before
        answer = await iq.send(timeout=20)
        got = []
        while not self.results.empty():
            m = self.results.get_nowait()
            if m["mam_result"]["queryid"] == qid:
                got.append(m["mam_result"])
        return ([r["forwarded"]["stanza"]["body"] for r in got], [r["id"] for r in got],
                answer.xml.find(f"{{{MAM}}}fin"))


def local(name, res="desk"):
    return Client(f"{name}@contoso.test/{res}", f"{name}-secret-1")


def test_carbons_between_two_resources(world):
    async def scenario():
        one = await local("alice", "one").up()
        two = await local("alice", "two").up()
        bob = await local("bob").up(carbons=False)
        one.send_message(mto="bob@contoso.test", mbody="from one", mtype="chat")
        at_bob = await bob.chat_from("alice@contoso.test")
        sent = await asyncio.wait_for(two.carbons.get(), 20)
        bob.send_message(mto="alice@contoso.test/one", mbody="to one", mtype="chat")
        at_one = await one.chat_from("bob@contoso.test")
        received = await asyncio.wait_for(two.carbons.get(), 20)
        # To the bare JID both resources get it themselves: no carbon.
        bob.send_message(mto="alice@contoso.test", mbody="to both", mtype="chat")
        both = (await one.chat_from("bob@contoso.test"), await two.chat_from("bob@contoso.test"))
        # Private messages are not copied either.
        priv = one.make_message(mto="bob@contoso.test", mbody="private", mtype="chat")
        priv.append(ET.Element(f"{{{CARBONS}}}private"))
        priv.append(ET.Element("{urn:xmpp:hints}no-copy"))
        priv.send()
        await bob.chat_from("alice@contoso.test")
        one.send_message(mto="bob@contoso.test", mbody="after private", mtype="chat")
        await bob.chat_from("alice@contoso.test")
        next_carbon = await asyncio.wait_for(two.carbons.get(), 20)
        for c in (one, two, bob):
            await c.down()
        return at_bob, sent, at_one, received, both, next_carbon

    at_bob, sent, at_one, received, both, next_carbon = run(scenario())
    assert at_bob["body"] == "from one"
    assert sent[0] == "sent" and sent[1]["body"] == "from one"
    assert sent[1]["to"].bare == "bob@contoso.test"
    assert at_one["body"] == "to one"
    assert received[0] == "received" and received[1]["body"] == "to one"
    assert [m["body"] for m in both] == ["to both", "to both"]
    # The bare message and the private one made no carbon: the next one
    # at two is the message after them.
    assert next_carbon[0] == "sent" and next_carbon[1]["body"] == "after private"


def test_carbons_of_chat_states_wait_while_inactive(world):
    """XEP-0352: a resource that said it is inactive gets the carbon of
    its other resource's typing notification only with the next stanza
    that matters. Seen through presence: held presence from one sender
    keeps only the latest, and a stanza that cannot wait delivers what
    was held first; so when the carbon waits, bob's first presence is
    replaced before anything is delivered, and never arrives."""
    async def scenario():
        phone = await local("carol", "phone").up()
        desk = await local("carol", "desk2").up()
        bob = await local("bob", "csi").up(carbons=False)
        seen = []
        phone.register_handler(Callback("order", MatchXPath("{jabber:client}presence"),
                                        lambda p: seen.append(("presence", p["status"]))))
        phone.add_event_handler("carbon_sent", lambda m: seen.append(
            ("carbon", m["carbon_sent"]["body"] or "composing")))
        phone.send_raw("<inactive xmlns='urn:xmpp:csi:0'/>")
        await phone["xep_0199"].send_ping("contoso.test", timeout=10)
        seen.clear()
        bob.send_presence(pto="carol@contoso.test/phone", pstatus="first")
        await bob["xep_0199"].send_ping("contoso.test", timeout=10)
        typing = desk.make_message(mto="bob@contoso.test", mtype="chat")
        typing.append(ET.Element("{http://jabber.org/protocol/chatstates}composing"))
        typing.send()
        await desk["xep_0199"].send_ping("contoso.test", timeout=10)
        bob.send_presence(pto="carol@contoso.test/phone", pstatus="second")
        await bob["xep_0199"].send_ping("contoso.test", timeout=10)
        desk.send_message(mto="bob@contoso.test", mbody="now it matters", mtype="chat")
        await bob.chat_from("carol@contoso.test")
        await phone["xep_0199"].send_ping("contoso.test", timeout=10)
        for c in (phone, desk, bob):
            await c.down()
        return seen

    seen = run(scenario())
    assert seen == [("carbon", "composing"), ("presence", "second"),
                    ("carbon", "now it matters")], seen


def test_forged_carbon_is_taken_out(world):
    async def scenario():
        carol = await local("carol").up()
        dave = await local("dave").up(carbons=False)
        forged = dave.make_message(mto="carol@contoso.test", mbody="outer", mtype="chat")
        rec = ET.SubElement(forged.xml, f"{{{CARBONS}}}received")
        fw = ET.SubElement(rec, "{urn:xmpp:forward:0}forwarded")
        inner = ET.SubElement(fw, "{jabber:client}message",
                              {"from": "mallory@contoso.test/x", "to": "carol@contoso.test",
                               "type": "chat"})
        ET.SubElement(inner, "{jabber:client}body").text = "forged"
        forged.send()
        got = await carol.chat_from("dave@contoso.test")
        await carol.down()
        await dave.down()
        return got

    got = run(scenario())
    assert got["body"] == "outer"
    assert got.xml.find(f"{{{CARBONS}}}received") is None


def test_paging_25_messages_in_pages_of_10(world):
    async def scenario():
        erin = await local("erin").up()
        frank = await local("frank").up(carbons=False)
        for i in range(25):
            erin.send_message(mto="frank@contoso.test", mbody=f"m{i:02}", mtype="chat")
        for i in range(25):
            await frank.chat_from("erin@contoso.test")
        pages, after = [], None
        for _ in range(3):
            rsm = {"max": 10}
            if after:
                rsm["after"] = after
            bodies, ids, fin = await erin.page(**rsm)
            pages.append((bodies, fin.get("complete"),
                          fin.find("{http://jabber.org/protocol/rsm}set")
                          .findtext("{http://jabber.org/protocol/rsm}count")))
            after = ids[-1]
        # profanity's way: the last page, backwards from an empty <before/>.
        last, last_ids, last_fin = await erin.page_back(10)
        # and the page before it, and the first one
        prev, prev_ids, prev_fin = await erin.page_back(10, last_ids[0])
        first, _, first_fin = await erin.page_back(10, prev_ids[0])
        # frank has them too, as received messages with erin
        fbodies, _, _ = await frank.page(max=100)
        await erin.down()
        await frank.down()
        return pages, last, last_fin, prev, prev_fin, first, first_fin, fbodies

    pages, last, last_fin, prev, prev_fin, first, first_fin, fbodies = run(scenario())
    want = [f"m{i:02}" for i in range(25)]
    assert [p[0] for p in pages] == [want[0:10], want[10:20], want[20:25]]
    assert [p[1] for p in pages] == [None, None, "true"]
    assert all(p[2] == "25" for p in pages)
    assert last == want[15:25] and last_fin.get("complete") is None
    assert prev == want[5:15] and prev_fin.get("complete") is None
    assert first == want[0:5] and first_fin.get("complete") == "true"
    assert fbodies == want


def test_partner_user_carbons_archive_and_offline_ids(world):
    async def scenario():
        gina = await local("gina").up()
        phone = await local("gina", "phone").up()
        zoe = Client("zoe@fabrikam.test/desk", "zoe-pass", PROSODY)
        await zoe.up(carbons=False)
        gina.send_message(mto="zoe@fabrikam.test", mbody="hi zoe", mtype="chat")
        await zoe.chat_from("gina@contoso.test")
        sent = await asyncio.wait_for(phone.carbons.get(), 20)
        zoe.send_message(mto="gina@contoso.test/desk", mbody="hi gina", mtype="chat")
        live = await gina.chat_from("zoe@fabrikam.test")
        received = await asyncio.wait_for(phone.carbons.get(), 20)
        carbons.extend([(sent[0], sent[1]["body"]), (received[0], received[1]["body"])])
        await phone.down()
        await gina.down()
        zoe.send_message(mto="gina@contoso.test", mbody="while away", mtype="chat")
        gina2 = local("gina")
        await gina2.up()
        later = await gina2.chat_from("zoe@fabrikam.test")
        bodies, ids, fin = await gina2.page(with_jid="zoe@fabrikam.test", max=50)
        await gina2.down()
        await zoe.down()
        return live, later, bodies, ids, fin

    carbons = []
    live, later, bodies, ids, fin = run(scenario())
    # Carbons work with a partner's user too.
    assert carbons == [("sent", "hi zoe"), ("received", "hi gina")]
    assert bodies == ["hi zoe", "hi gina", "while away"]
    assert fin.get("complete") == "true"
    sid = live.xml.find(f"{{{SID}}}stanza-id")
    assert sid is not None and sid.get("by") == "gina@contoso.test"
    assert sid.get("id") == ids[1]
    # The message kept offline carries the id the archive gives it.
    later_sid = later.xml.find(f"{{{SID}}}stanza-id")
    assert later["body"] == "while away"
    assert later_sid is not None and later_sid.get("id") == ids[2]


def test_prefs_never_stops_archiving(world):
    async def scenario():
        hank = await local("hank").up()
        bob = await local("bob", "prefs").up(carbons=False)
        hank.send_message(mto="bob@contoso.test", mbody="kept", mtype="chat")
        await bob.chat_from("hank@contoso.test")
        iq = hank.make_iq_set()
        iq.append(ET.fromstring(f"<prefs xmlns='{MAM}' default='never'/>"))
        answer = await iq.send(timeout=10)
        hank.send_message(mto="bob@contoso.test", mbody="not kept", mtype="chat")
        await bob.chat_from("hank@contoso.test")
        bodies, _, _ = await hank.page(max=50)
        get = hank.make_iq_get()
        get.append(ET.fromstring(f"<prefs xmlns='{MAM}'/>"))
        now = await get.send(timeout=10)
        await hank.down()
        await bob.down()
        return answer, bodies, now

    answer, bodies, now = run(scenario())
    assert answer["type"] == "result"
    assert bodies == ["kept"]
    assert now.xml.find(f"{{{MAM}}}prefs").get("default") == "never"


def test_disco_lists_carbons_mam_and_stanza_ids(world):
    async def scenario():
        a = await local("alice", "disco").up(carbons=False)
        server = await a["xep_0030"].get_info(jid="contoso.test", timeout=10)
        account = await a["xep_0030"].get_info(jid="alice@contoso.test", timeout=10)
        await a.down()
        return (set(server["disco_info"]["features"]),
                set(account["disco_info"]["features"]))

    server, account = run(scenario())
    assert {CARBONS, MAM} <= server  # MAM for profanity, which asks only here
    assert {MAM, SID} <= account


def test_user_remove_takes_the_archive(world):
    fg = world[2]

    async def scenario():
        alice = await local("alice", "rm").up(carbons=False)
        dave = await local("dave", "rm").up(carbons=False)
        dave.send_message(mto="alice@contoso.test/rm", mbody="to forget", mtype="chat")
        await alice.chat_from("dave@contoso.test")
        before, _, _ = await dave.page(max=50)
        await alice.down()
        await dave.down()
        rc, out, err = await cli(fg, "user", "remove", "dave@contoso.test")
        assert rc == 0, err
        proc = await asyncio.create_subprocess_exec(
            *fg_cmd(fg, "user", "add", "dave@contoso.test"), stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
        _, err = await proc.communicate(b"dave-secret-1\n")
        assert proc.returncode == 0, err
        again = await local("dave", "rm2").up(carbons=False)
        after, _, fin = await again.page(max=50)
        await again.down()
        return before, after, fin

    before, after, fin = run(scenario())
    assert "to forget" in before
    assert after == [] and fin.get("complete") == "true"


def fg_cmd(fg, *args):
    from fgtest import FEDGATE
    return [FEDGATE, *args, "-c", fg.conf]

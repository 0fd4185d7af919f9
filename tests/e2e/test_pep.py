"""Personal eventing (XEP-0163) with persistent items (XEP-0223) on
fedgate's accounts, with real slixmpp clients: avatars (XEP-0084), nicks
(XEP-0172), OMEMO device lists and bundles (XEP-0384) and bookmarks
(XEP-0402) published with publish-options, notifications by entity
capabilities' +notify, the last item on presence, persistence across a
restart, and SPEC §4's partner types for the users of a real Prosody
(fabrikam.test) reading alice's nodes over federation."""
import asyncio
import time
import xml.etree.ElementTree as ET

import pytest
from slixmpp.exceptions import IqError

from clients import User, run

FG = "127.0.0.11"
PROSODY = "127.0.0.12"
LOCAL = ["alice", "carol"]
REMOTE = ["bob", "ben", "bea"]

AVATAR_DATA = "urn:xmpp:avatar:data"
AVATAR_META = "urn:xmpp:avatar:metadata"
NICK = "http://jabber.org/protocol/nick"
DEVICES = "eu.siacs.conversations.axolotl.devicelist"
BUNDLE = "eu.siacs.conversations.axolotl.bundles:4223"
BOOKMARKS = "urn:xmpp:bookmarks:1"
PS_ERR = "{http://jabber.org/protocol/pubsub#errors}"
EVENT = "{http://jabber.org/protocol/pubsub#event}"

CA = {}


@pytest.fixture(scope="module")
def world(module_daemons):
    bed, prosody, fg = module_daemons.federation(
        {f"{u}@fabrikam.test": f"{u}-pass" for u in REMOTE},
        {f"{u}@contoso.test": f"{u}-secret-1" for u in LOCAL})
    fg.start()
    CA["cert"] = bed.ca.cert
    return bed, prosody, fg


class Pep(User):
    """A client with the pubsub plugins; interests (+notify features in its
    entity capabilities) given before it connects; every event recorded as
    (node, item id, payload element)."""

    def __init__(self, jid, password, cafile, addr, interests=(), approve=True):
        super().__init__(jid, password, cafile)
        self.addr = addr
        self.auto_authorize = approve
        self.auto_subscribe = approve
        for p in ("xep_0030", "xep_0004", "xep_0060", "xep_0115", "xep_0163"):
            self.register_plugin(p)
        self.events = asyncio.Queue()
        self.presences = asyncio.Queue()
        self.add_event_handler("pubsub_publish", self.on_publish)
        self.add_event_handler("pubsub_retract", self.on_retract)
        self.add_event_handler("presence_available", lambda p: self.presences.put_nowait(p))
        for ns in interests:
            self["xep_0163"].add_interest(ns)

    def on_publish(self, msg):
        items = msg["pubsub_event"]["items"]
        it = items["item"]
        self.events.put_nowait((items["node"], it["id"], it["payload"], str(msg["from"])))

    def on_retract(self, msg):
        items = msg["pubsub_event"]["items"]
        self.events.put_nowait((items["node"], "retract:" + items["retract"]["id"], None,
                                str(msg["from"])))

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

    def options(self, **fields):
        form = self["xep_0004"].make_form(ftype="submit")
        form.add_field(var="FORM_TYPE", ftype="hidden",
                       value="http://jabber.org/protocol/pubsub#publish-options")
        for k, v in fields.items():
            form.add_field(var=f"pubsub#{k}", value=v)
        return form

    async def publish(self, node, item_id, payload, **opts):
        return await self["xep_0060"].publish(None, node, id=item_id, payload=payload,
                                              options=self.options(**opts) if opts else None,
                                              timeout=15)

    async def items(self, owner, node, **kw):
        iq = await self["xep_0060"].get_items(owner, node, timeout=15, **kw)
        return [(it["id"], it["payload"]) for it in iq["pubsub"]["items"]]


def el(xml):
    return ET.fromstring(xml)


def avatar_meta(sha):
    return el(f'<metadata xmlns="{AVATAR_META}"><info id="{sha}" bytes="4" type="image/png" '
              'width="1" height="1"/></metadata>')


def nick(name):
    return el(f'<nick xmlns="{NICK}">{name}</nick>')


def devicelist(*ids):
    return el('<list xmlns="eu.siacs.conversations.axolotl">'
              + "".join(f'<device id="{i}"/>' for i in ids) + "</list>")


def bundle():
    return el('<bundle xmlns="eu.siacs.conversations.axolotl">'
              '<signedPreKeyPublic signedPreKeyId="1">BQ==</signedPreKeyPublic>'
              '<signedPreKeySignature>c2ln</signedPreKeySignature>'
              '<identityKey>BWlk</identityKey><prekeys>'
              + "".join(f'<preKeyPublic preKeyId="{i}">BQ{i}=</preKeyPublic>' for i in range(1, 4))
              + "</prekeys></bundle>")


def local(name, **kw):
    return Pep(f"{name}@contoso.test/desk", f"{name}-secret-1", CA["cert"], FG, **kw)


def remote(bed, name, **kw):
    return Pep(f"{name}@fabrikam.test/desk", f"{name}-pass", bed.ca.cert, PROSODY, **kw)


async def next_event(q, node, timeout=20):
    deadline = time.time() + timeout
    while True:
        left = deadline - time.time()
        if left <= 0:
            raise asyncio.TimeoutError(f"no event of {node}")
        ev = await asyncio.wait_for(q.get(), left)
        if ev[0] == node:
            return ev


def refusal(exc):
    """(condition, the pubsub#errors condition or None) of an IqError."""
    err = exc.iq["error"]
    ps = [c.tag[len(PS_ERR):] for c in err.xml if c.tag.startswith(PS_ERR)]
    return err["condition"], (ps[0] if ps else None)


async def refused(coro):
    with pytest.raises(IqError) as e:
        await coro
    return refusal(e.value)


def set_type(fg, ptype):
    r = fg.cli("partner", "set", "fabrikam.test", "--partner-type", ptype)
    assert r.returncode == 0, r.stderr


def test_disco_shows_pep_on_the_account_and_the_server(world):
    async def scenario():
        alice = await local("alice").up()
        acct = await alice["xep_0030"].get_info(jid="alice@contoso.test", timeout=15)
        server = await alice["xep_0030"].get_info(jid="contoso.test", timeout=15)
        await alice.down()
        return acct, server

    acct, server = run(scenario())
    for info in (acct, server):
        q = info["disco_info"]
        assert ("pubsub", "pep", None, None) in q["identities"]
        for f in ("publish", "publish-options", "persistent-items", "retract-items",
                  "retrieve-items", "auto-create", "last-published"):
            assert f"http://jabber.org/protocol/pubsub#{f}" in q["features"]


def test_publish_notify_last_item_and_restart(world):
    bed, prosody, fg = world
    interests = [AVATAR_META, NICK, DEVICES]

    async def publish_all():
        alice = await local("alice").up()
        # Her other resource asks for three nodes' notifications.
        other = await Pep("alice@contoso.test/phone", "alice-secret-1", CA["cert"], FG,
                          interests=interests).up()
        # Its first nick comes live, or as the last item once fedgate
        # has its capabilities: either way they are known after it.
        await alice.publish(NICK, "current", nick("Alice"))
        first = await next_event(other.events, NICK)
        assert first[1] == "current"
        await alice.publish(AVATAR_DATA, "abc1", el(f'<data xmlns="{AVATAR_DATA}">iVBO</data>'))
        await alice.publish(AVATAR_META, "abc1", avatar_meta("abc1"))
        await alice.publish(DEVICES, "current", devicelist(4223), access_model="open")
        await alice.publish(BUNDLE, "current", bundle(), access_model="open")
        await alice.publish(BOOKMARKS, "room@conf.contoso.test",
                            el('<conference xmlns="urn:xmpp:bookmarks:1" autojoin="true"/>'),
                            persist_items="true", max_items="max", access_model="whitelist")
        # Then a marker: notifications go out in order, so what came
        # before it is all that was sent.
        await alice.publish(NICK, "marker", nick("Alice"))
        seen = []
        while not seen or seen[-1][:2] != (NICK, "marker"):
            ev = await asyncio.wait_for(other.events.get(), 20)
            seen.append((ev[0], ev[1], ev[3]))
        # (The first nick may come twice: live, and as the last item when
        # the capabilities came while it was being stored.)
        got = {n: (i, f) for n, i, f in seen[:-1] if n != NICK}
        rest = {n for n, _, _ in seen}
        # A resource that comes later gets the last item of what it asks.
        late = await Pep("alice@contoso.test/late", "alice-secret-1", CA["cert"], FG,
                         interests=[NICK]).up()
        last = await next_event(late.events, NICK)
        for c in (alice, other, late):
            await c.down()
        return got, rest, last

    got, rest, last = run(publish_all())
    assert got == {AVATAR_META: ("abc1", "alice@contoso.test"),
                   DEVICES: ("current", "alice@contoso.test")}
    assert rest == {AVATAR_META, DEVICES, NICK}
    assert last[1] == "marker" and last[2].text == "Alice"

    fg.stop()
    fg.start()

    async def read_back():
        alice = await local("alice").up()
        out = {n: await alice.items("alice@contoso.test", n)
               for n in (AVATAR_DATA, AVATAR_META, NICK, DEVICES, BUNDLE, BOOKMARKS)}
        await alice.down()
        return out

    out = run(read_back())
    assert [i for i, _ in out[AVATAR_DATA]] == ["abc1"]
    assert out[AVATAR_DATA][0][1].text == "iVBO"
    assert [i for i, _ in out[NICK]] == ["marker"] and out[NICK][0][1].text == "Alice"
    assert out[DEVICES][0][1].find("{eu.siacs.conversations.axolotl}device").get("id") == "4223"
    assert len(out[BUNDLE][0][1].findall(".//{eu.siacs.conversations.axolotl}preKeyPublic")) == 3
    assert out[BOOKMARKS][0][0] == "room@conf.contoso.test"


def test_items_retract_and_preconditions(world):
    async def scenario():
        carol = await local("carol").up()
        for i in range(5):
            await carol.publish("urn:example:notes", f"n{i}", el(f'<n xmlns="urn:example">{i}</n>'),
                                max_items="3", access_model="open")
        newest = await carol.items("carol@contoso.test", "urn:example:notes")
        two = await carol.items("carol@contoso.test", "urn:example:notes", max_items=2)
        one = await carol.items("carol@contoso.test", "urn:example:notes", item_ids=["n3"])
        # publish-options that the node's configuration does not match
        mismatch = await refused(carol.publish("urn:example:notes", "n9",
                                               el('<n xmlns="urn:example">9</n>'),
                                               access_model="presence"))
        mismatch_max = await refused(carol.publish("urn:example:notes", "n9",
                                                   el('<n xmlns="urn:example">9</n>'),
                                                   max_items="7"))
        await carol["xep_0060"].retract(None, "urn:example:notes", "n4", notify=True, timeout=15)
        after = await carol.items("carol@contoso.test", "urn:example:notes")
        gone = await refused(carol["xep_0060"].retract(None, "urn:example:notes", "n4",
                                                       timeout=15))
        no_node = await refused(carol.items("carol@contoso.test", "urn:example:none"))
        # Another account of ours may not publish to carol's nodes.
        alice = await local("alice").up()
        other = await refused(alice["xep_0060"].publish("carol@contoso.test", "urn:example:notes",
                                                       id="x", payload=el('<n xmlns="urn:example"/>'),
                                                       timeout=15))
        # The owner reads and changes the configuration (XEP-0060 §8.2).
        conf = await carol["xep_0060"].get_node_config(None, "urn:example:notes", timeout=15)
        form = conf["pubsub_owner"]["configure"]["form"]
        before_conf = {k: form["values"][k] for k in
                       ("pubsub#access_model", "pubsub#max_items", "pubsub#persist_items")}
        new_form = carol["xep_0004"].make_form(ftype="submit")
        new_form.add_field(var="FORM_TYPE", ftype="hidden",
                           value="http://jabber.org/protocol/pubsub#node_config")
        new_form.add_field(var="pubsub#max_items", value="1")
        await carol["xep_0060"].set_node_config(None, "urn:example:notes", new_form, timeout=15)
        trimmed = await carol.items("carol@contoso.test", "urn:example:notes")
        # An item larger than [pep] item_bytes (64 KiB) is refused.
        big = await refused(carol.publish("urn:example:big", "b",
                                          el(f'<b xmlns="urn:example">{"x" * 70000}</b>')))
        await carol["xep_0060"].delete_node(None, "urn:example:notes", timeout=15)
        deleted = await refused(carol.items("carol@contoso.test", "urn:example:notes"))
        await alice.down()
        await carol.down()
        return (newest, two, one, mismatch, mismatch_max, after, gone, no_node, other, deleted,
                before_conf, trimmed, big)

    (newest, two, one, mismatch, mismatch_max, after, gone, no_node, other, deleted,
     before_conf, trimmed, big) = run(scenario())
    assert before_conf == {"pubsub#access_model": "open", "pubsub#max_items": "3",
                           "pubsub#persist_items": True}
    assert [i for i, _ in trimmed] == ["n3"]
    assert big == ("not-acceptable", "payload-too-big")
    assert [i for i, _ in newest] == ["n4", "n3", "n2"]
    assert [i for i, _ in two] == ["n4", "n3"]
    assert [i for i, _ in one] == ["n3"]
    assert mismatch == ("conflict", "precondition-not-met")
    assert mismatch_max == ("conflict", "precondition-not-met")
    assert [i for i, _ in after] == ["n3", "n2"]
    assert gone == ("item-not-found", None)
    assert no_node == ("item-not-found", None)
    assert other == ("forbidden", None)
    assert deleted == ("item-not-found", None)


async def next_presence(q, jid, timeout=20):
    deadline = time.time() + timeout
    while True:
        left = deadline - time.time()
        if left <= 0:
            raise asyncio.TimeoutError(f"no presence of {jid}")
        p = await asyncio.wait_for(q.get(), left)
        if str(p["from"]).split("/")[0] == jid:
            return p


async def nodes_of(client, jid):
    items = await client["xep_0030"].get_items(jid=jid, timeout=15)
    return {node for _, node, _ in items["disco_items"]["items"]}


async def publish_public_and_private(alice):
    await alice.publish(BUNDLE, "current", bundle(), access_model="open")
    await alice.publish(AVATAR_META, "abc1", avatar_meta("abc1"))


def test_public_unverified_partner_reads_only_once_added(world):
    bed, prosody, fg = world
    set_type(fg, "public-unverified")

    async def scenario():
        alice = await local("alice").up()
        await publish_public_and_private(alice)
        bob = await remote(bed, "bob").up()
        before = (await refused(bob.items("alice@contoso.test", BUNDLE)),
                  await refused(bob.items("alice@contoso.test", AVATAR_META)))
        # alice adds bob, without any subscription yet (SPEC §4).
        await alice.update_roster("bob@fabrikam.test", name="Bob", timeout=15)
        open_node = await bob.items("alice@contoso.test", BUNDLE)
        presence_node = await refused(bob.items("alice@contoso.test", AVATAR_META))
        # Once bob is subscribed to alice's presence (her client approves),
        # the presence-model avatar is his to read too.
        bob.send_presence_subscription(pto="alice@contoso.test")
        await next_presence(bob.presences, "alice@contoso.test")
        avatar = await bob.items("alice@contoso.test", AVATAR_META)
        await bob.down()
        await alice.down()
        return before, open_node, presence_node, avatar

    before, open_node, presence_node, avatar = run(scenario())
    assert before == (("forbidden", None), ("forbidden", None))
    assert [i for i, _ in open_node] == ["current"]
    assert presence_node == ("not-authorized", "presence-subscription-required")
    assert [i for i, _ in avatar] == ["abc1"]


def test_federated_partner_reads_open_nodes_and_gets_notifications(world):
    bed, prosody, fg = world
    set_type(fg, "federated")

    async def scenario():
        alice = await local("alice").up()
        await publish_public_and_private(alice)
        await alice.publish(NICK, "current", nick("Alice"))
        ben = await remote(bed, "ben", interests=[NICK]).up()
        # Not a contact: the open bundle yes, the presence-model avatar no.
        open_node = await ben.items("alice@contoso.test", BUNDLE)
        denied = await refused(ben.items("alice@contoso.test", AVATAR_META))
        nodes_before = await nodes_of(ben, "alice@contoso.test")
        # Contacts both ways (the federated partner's request is approved
        # by fedgate, alice's by ben's client): alice's server sees ben's
        # capabilities and sends him her last nick, then each new one.
        ben.send_presence_subscription(pto="alice@contoso.test")
        await next_presence(ben.presences, "alice@contoso.test")
        alice.send_presence_subscription(pto="ben@fabrikam.test")
        await next_presence(alice.presences, "ben@fabrikam.test")
        avatar = await ben.items("alice@contoso.test", AVATAR_META)
        nodes_after = await nodes_of(ben, "alice@contoso.test")
        # and a node's items by disco#items (XEP-0060 §5.5)
        r = await ben["xep_0030"].get_items(jid="alice@contoso.test", node=AVATAR_META,
                                            timeout=15)
        meta_ids = [name for _, _, name in r["disco_items"]["items"]]
        last = await next_event(ben.events, NICK)
        await alice.publish(NICK, "current", nick("Alice Liddell"))
        new = await next_event(ben.events, NICK)
        # A retraction with notify reaches him too.
        await alice["xep_0060"].retract(None, NICK, "current", notify=True, timeout=15)
        retracted = await next_event(ben.events, NICK)
        await ben.down()
        await alice.down()
        return (open_node, denied, avatar, last, new, retracted, nodes_before, nodes_after,
                meta_ids)

    (open_node, denied, avatar, last, new, retracted, nodes_before, nodes_after,
     meta_ids) = run(scenario())
    assert meta_ids == ["abc1"]
    # disco#items lists the nodes he may read: open ones, then the
    # presence-model ones once subscribed; never the whitelisted bookmarks.
    assert BUNDLE in nodes_before and AVATAR_META not in nodes_before
    assert {BUNDLE, AVATAR_META, NICK} <= nodes_after and BOOKMARKS not in nodes_after
    assert [i for i, _ in open_node] == ["current"]
    assert denied == ("not-authorized", "presence-subscription-required")
    assert [i for i, _ in avatar] == ["abc1"]
    assert last[2].text == "Alice" and last[3] == "alice@contoso.test"
    assert new[2].text == "Alice Liddell"
    assert retracted[1] == "retract:current"


def test_public_unverified_contact_not_added_gets_no_notifications(world):
    """bea subscribed while fabrikam was federated; alice then removes her
    from the roster and the partner becomes public-unverified: bea's
    resource with +notify is sent nothing of alice's open node."""
    bed, prosody, fg = world
    set_type(fg, "federated")

    async def scenario():
        alice = await local("alice").up()
        bea = await remote(bed, "bea", interests=[DEVICES]).up()
        await alice.publish(DEVICES, "current", devicelist(1), access_model="open")
        alice.send_presence_subscription(pto="bea@fabrikam.test")
        await next_presence(alice.presences, "bea@fabrikam.test")
        first = await next_event(bea.events, DEVICES)
        set_type(fg, "public-unverified")
        await alice.del_roster_item("bea@fabrikam.test")
        await alice.publish(DEVICES, "current", devicelist(1, 2), access_model="open")
        # alice's own message goes out (outbound is not gated) on the same
        # stream after anything sent for that publish: once bea has it,
        # whatever was sent to her before is in too.
        alice.send_message(mto="bea@fabrikam.test/desk", mbody="marker", mtype="chat")
        while True:
            m = await asyncio.wait_for(bea.inbox.get(), 20)
            if m["body"] == "marker":
                break
        later = []
        while not bea.events.empty():
            later.append(bea.events.get_nowait())
        await bea.down()
        await alice.down()
        return first, later

    first, later = run(scenario())
    assert first[1] == "current"
    assert later == []

"""What the server and an account say they do (XEP-0030), asked by a real
client (slixmpp): every feature issue 16 asks for, each where its XEP puts
it -- the server: ping, version, vCard, offline messages, blocking,
carbons; the account: ping, vCard, the message archive and PEP with its
identity -- and the stream features (roster versioning, stream
management, client state indication). XEP-0199 pings to the server and to
the user's own bare JID; XEP-0092 on by default, with its <os/> as
[users] software_version_os says."""
import pytest

from c2sclient import Client
from clients import User, run

USERS = {"alice": "alice-secret-1", "dave": "dave-secret-22"}

SERVER = {
    "http://jabber.org/protocol/disco#info",
    "http://jabber.org/protocol/disco#items",
    "urn:xmpp:ping",                 # XEP-0199
    "jabber:iq:version",             # XEP-0092, on by default
    "vcard-temp",                    # XEP-0054
    "msgoffline",                    # XEP-0160
    "urn:xmpp:blocking",             # XEP-0191
    "urn:xmpp:carbons:2",            # XEP-0280
}
ACCOUNT = {
    "http://jabber.org/protocol/disco#info",
    "http://jabber.org/protocol/disco#items",
    "urn:xmpp:ping",
    "vcard-temp",
    "urn:xmpp:mam:2",                # XEP-0313 (on the account, §6)
    "urn:xmpp:sid:0",                # XEP-0359, the archive's stanza ids
    "http://jabber.org/protocol/pubsub#publish",          # XEP-0163 PEP
    "http://jabber.org/protocol/pubsub#publish-options",
    "http://jabber.org/protocol/pubsub#persistent-items",  # XEP-0223
    "http://jabber.org/protocol/pubsub#retract-items",
    "http://jabber.org/protocol/pubsub#retrieve-items",
    "http://jabber.org/protocol/pubsub#auto-create",
    "http://jabber.org/protocol/pubsub#last-published",
}
ACCOUNT_IDENTITIES = {("account", "registered"), ("pubsub", "pep")}
STREAM = {
    "{urn:xmpp:features:rosterver}ver",  # RFC 6121 §2.6
    "{urn:xmpp:sm:3}sm",                 # XEP-0198
    "{urn:xmpp:csi:0}csi",               # XEP-0352
}
@pytest.fixture(scope="module")
def fg(module_daemons):
    return module_daemons.fedgate(
        users={f"{u}@contoso.test": pw for u, pw in USERS.items()}).start()


class Asker(User):
    def __init__(self, jid, password, cafile):
        super().__init__(jid, password, cafile)
        self.register_plugin("xep_0030")
        self.register_plugin("xep_0092")
        self.register_plugin("xep_0199")


def ask(fg, *what):
    """Signs alice in with slixmpp and runs each (kind, target): "info" and
    "items" (disco), "version", "ping"; returns the answers."""
    async def scenario():
        u = Asker("alice@contoso.test/disco", USERS["alice"], fg.cert)
        u.connect((fg.addr, 5222))
        await u.online.wait()
        out = []
        for kind, target in what:
            if kind == "info":
                r = await u["xep_0030"].get_info(jid=target, timeout=15)
                q = r["disco_info"]
                out.append(({f for f in q["features"]},
                            {(i[0], i[1]) for i in q["identities"]}))
            elif kind == "items":
                r = await u["xep_0030"].get_items(jid=target, timeout=15)
                out.append(list(r["disco_items"]["items"]))
            elif kind == "version":
                r = await u["xep_0092"].get_version(target, timeout=15)
                out.append(dict(r["software_version"].values))
            else:
                r = await u["xep_0199"].send_ping(target, timeout=15)
                out.append((r["type"], str(r["from"])))
        u.disconnect()
        await u.disconnected
        return out
    return run(scenario())


@pytest.fixture(scope="module")
def answers(fg):
    info_srv, info_own, info_other, items_srv = ask(
        fg, ("info", "contoso.test"), ("info", "alice@contoso.test"),
        ("info", "dave@contoso.test"), ("items", "contoso.test"))
    c = Client()
    # The features of the stream after SASL, where a client binds.
    stream = {el.tag for el in c.authenticate("alice", USERS["alice"])}
    c.close()
    return {"server": info_srv, "own": info_own, "other": info_other,
            "items": items_srv, "stream": stream}


@pytest.mark.parametrize("feature", sorted(SERVER))
def test_the_server_lists(answers, feature):
    assert feature in answers["server"][0]


# The archive is the account's (XEP-0313 §7), but profanity asks only the
# server's disco#info before it queries, so the server lists it too; and
# clients look for PEP at the server as well as at the account.
SERVER_TOO = {"urn:xmpp:mam:2", "urn:xmpp:sid:0"} | {
    f for f in ACCOUNT if f.startswith("http://jabber.org/protocol/pubsub#")}


def test_the_server_is_a_server_and_lists_nothing_else_of_the_accounts(answers):
    features, identities = answers["server"]
    assert ("server", "im") in identities
    assert identities <= {("server", "im"), ("pubsub", "pep")}
    assert ("account", "registered") not in identities
    assert not (features & (ACCOUNT - SERVER - SERVER_TOO))


@pytest.mark.parametrize("feature", sorted(ACCOUNT))
def test_an_account_lists(answers, feature):
    assert feature in answers["own"][0]
    assert feature in answers["other"][0]


@pytest.mark.parametrize("identity", sorted(ACCOUNT_IDENTITIES))
def test_an_account_is(answers, identity):
    assert identity in answers["own"][1]
    assert identity in answers["other"][1]


def test_an_account_lists_nothing_only_the_server_does(answers):
    for who in ("own", "other"):
        assert not (answers[who][0] & (SERVER - ACCOUNT))


def test_the_server_has_no_items(answers):
    assert answers["items"] == []


@pytest.mark.parametrize("feature", sorted(STREAM))
def test_the_stream_offers(answers, feature):
    assert feature in answers["stream"]


def test_pings_to_the_server_and_to_the_own_bare_jid_are_answered(fg):
    assert ask(fg, ("ping", "contoso.test"), ("ping", "alice@contoso.test")) == [
        ("result", "contoso.test"), ("result", "alice@contoso.test")]


def test_version_is_on_by_default_with_the_kernel_name(fg):
    import os
    [v] = ask(fg, ("version", "contoso.test"))
    assert v["name"] == "fedgate" and v["version"]
    assert v["os"] == os.uname().sysname


@pytest.mark.parametrize("setting, os_text",
                         [("no", None), ("Debian GNU/Linux", "Debian GNU/Linux")])
def test_version_os_is_configurable(daemons, setting, os_text):
    fg = daemons.fedgate(addr="127.0.0.21", extra={"users": {"software_version_os": setting}},
                         users={f"{u}@contoso.test": pw for u, pw in USERS.items()}).start()
    [v] = ask(fg, ("version", "contoso.test"))
    assert v["name"] == "fedgate"
    assert (v.get("os") or None) == os_text


def test_version_can_be_turned_off(daemons):
    fg = daemons.fedgate(addr="127.0.0.22", extra={"users": {"software_version": "no"}},
                         users={f"{u}@contoso.test": pw for u, pw in USERS.items()}).start()
    [(features, _)] = ask(fg, ("info", "contoso.test"))
    assert "jabber:iq:version" not in features

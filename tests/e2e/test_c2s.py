"""Local users on client streams: SASL (SCRAM-SHA-256, SCRAM-SHA-1, PLAIN
over TLS only), binding with resource conflicts, the from check, rosters,
presence and chat between two local users with real clients (slixmpp),
offline messages, and what the server answers itself (disco, ping,
version, vCard)."""
import asyncio
import time

import pytest
import slixmpp

from c2sclient import Client
from clients import User, run

USERS = {"alice": "alice-secret-1", "dave": "dave-secret-22", "erin": "erin-secret-333"}


def make_fedgate(daemons, addr="127.0.0.1", **c2s):
    """A fedgate with USERS, and c2s in its [c2s] section."""
    return daemons.fedgate(addr=addr, extra={"c2s": c2s},
                           users={f"{u}@contoso.test": pw for u, pw in USERS.items()})


@pytest.fixture(scope="module")
def fg(module_daemons):
    # Failed logins in these tests are answered at once, whatever came
    # before them; test_signin_throttle.py is about the throttle.
    return make_fedgate(module_daemons, auth_delay_max="0", auth_failures=1000).start()


class Roster(User):
    """A user that asks for the roster, as real clients do, so it gets
    roster pushes; and keeps every presence it sees."""

    def __init__(self, jid, password, cafile, auto_authorize=True):
        super().__init__(jid, password, cafile)
        self.auto_authorize = auto_authorize
        self.auto_subscribe = auto_authorize
        self.presences = asyncio.Queue()
        self.add_event_handler("presence", lambda p: self.presences.put_nowait(p))

    async def on_start(self, _):
        await self.get_roster()
        await super().on_start(_)


async def online(*users):
    for u in users:
        u.connect(("127.0.0.1", 5222))
    for u in users:
        await asyncio.wait_for(u.online.wait(), 15)


async def offline(*users):
    for u in users:
        u.disconnect()
        await asyncio.wait_for(u.disconnected, 5)


async def presence_from(user, jid, timeout=10):
    deadline = time.time() + timeout
    while True:
        p = await asyncio.wait_for(user.presences.get(), max(0.1, deadline - time.time()))
        if str(p["from"]).startswith(jid) and p["type"] in ("available", "chat", "away",
                                                            "dnd", "xa"):
            return p


def test_features_offer_scram_and_plain_only_over_tls(fg):
    c = Client()
    f = c.begin(tls=False)
    assert f.find("{urn:ietf:params:xml:ns:xmpp-tls}starttls/"
                  "{urn:ietf:params:xml:ns:xmpp-tls}required") is not None
    assert c.mechanisms(f) == []
    c.starttls()
    c.open(to="contoso.test", ns="jabber:client")
    assert c.mechanisms(c.features()) == ["SCRAM-SHA-256", "SCRAM-SHA-1", "PLAIN"]
    c.close()


def starttls_and_login(c, user):
    """After a refusal in the clear, the same stream goes on: STARTTLS and a
    login that succeeds."""
    c.starttls()
    c.open(to="contoso.test", ns="jabber:client")
    c.features()
    assert c.plain(user, USERS[user])[0] == "success"
    c.close()


def test_auth_before_tls_gets_encryption_required(fg):
    """RFC 6120 §6.4.4: a SASL failure, not a stream error; the stream
    stays open for STARTTLS."""
    c = Client()
    c.begin(tls=False)
    kind, el = c.plain("alice", USERS["alice"])
    assert (kind, c.failure_condition(el)) == ("failure", "encryption-required")
    assert "STARTTLS" in el.findtext("{urn:ietf:params:xml:ns:xmpp-sasl}text")
    starttls_and_login(c, "alice")


def test_wrong_password_and_unknown_user_fail_alike(fg):
    c = Client()
    c.begin()
    kind, el = c.plain("alice", "not-her-password")
    assert kind == "failure" and c.failure_condition(el) == "not-authorized"
    kind, el = c.plain("nobody", "whatever")
    assert kind == "failure" and c.failure_condition(el) == "not-authorized"
    # RFC 6120 §6.4.5: retries are allowed; the right password works.
    kind, _ = c.plain("alice", USERS["alice"])
    assert kind == "success"
    c.close()


def test_scram_logins_with_slixmpp(fg):
    async def scenario():
        results = {}
        for mech in ("SCRAM-SHA-256", "SCRAM-SHA-1"):
            u = User("dave@contoso.test/scram", USERS["dave"], fg.cert)
            u["feature_mechanisms"].use_mech = mech
            await online(u)
            results[mech] = u.boundjid.full
            await offline(u)
        bad = User("dave@contoso.test/bad", "wrong-password", fg.cert)
        failed = asyncio.Event()
        bad.add_event_handler("failed_all_auth", lambda _: failed.set())
        bad.connect(("127.0.0.1", 5222))
        await asyncio.wait_for(failed.wait(), 15)
        bad.disconnect()
        return results

    results = run(scenario())
    assert results == {"SCRAM-SHA-256": "dave@contoso.test/scram",
                       "SCRAM-SHA-1": "dave@contoso.test/scram"}
    log = fg.read_log()
    assert "dave-secret-22" not in log and "wrong-password" not in log


def test_authzid_of_another_user_is_refused(fg):
    c = Client()
    c.begin()
    kind, el = c.plain("alice", USERS["alice"], authzid="dave@contoso.test")
    assert kind == "failure" and c.failure_condition(el) == "invalid-authzid"
    c.close()


def test_plain_without_tls_is_refused_when_tls_is_optional(daemons):
    """A downgrade: with TLS optional, SCRAM is offered in the clear but
    PLAIN never is, and asking for it anyway is refused."""
    make_fedgate(daemons, addr="127.0.0.2", require_tls="false").start()
    c = Client("127.0.0.2")
    f = c.begin(tls=False)
    assert f.find("{urn:ietf:params:xml:ns:xmpp-tls}starttls/"
                  "{urn:ietf:params:xml:ns:xmpp-tls}required") is None
    assert c.mechanisms(f) == ["SCRAM-SHA-256", "SCRAM-SHA-1"]
    kind, el = c.plain("alice", USERS["alice"])
    assert kind == "failure" and c.failure_condition(el) == "encryption-required"
    starttls_and_login(c, "alice")


def test_bind_generates_a_resource_and_a_conflict_replaces_the_old_session(fg):
    c = Client()
    c.authenticate("erin", USERS["erin"])
    c.send("<iq type='set' id='b'><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'/></iq>")
    iq = c.next_element()
    jid = iq.find("{urn:ietf:params:xml:ns:xmpp-bind}bind/"
                  "{urn:ietf:params:xml:ns:xmpp-bind}jid").text
    assert jid.startswith("erin@contoso.test/") and len(jid) > len("erin@contoso.test/")
    c.close()

    first = Client()
    assert first.login("erin", USERS["erin"], resource="desk") == "erin@contoso.test/desk"
    second = Client()
    assert second.login("erin", USERS["erin"], resource="desk") == "erin@contoso.test/desk"
    cond, text = first.stream_error()
    assert cond == "conflict" and "replaced" in text
    second.close()


def test_forged_from_closes_the_stream_with_invalid_from(fg):
    c = Client()
    c.login("erin", USERS["erin"], resource="forger")
    # Its own bare JID is allowed and gets stamped...
    c.send("<iq type='get' id='p1' from='erin@contoso.test'>"
           "<ping xmlns='urn:xmpp:ping'/></iq>")
    assert c.next_element().get("type") == "result"
    # ...anybody else's is not.
    c.send("<message from='alice@contoso.test/desk' to='dave@contoso.test' type='chat'>"
           "<body>it was alice</body></message>")
    cond, _ = c.stream_error()
    assert cond == "invalid-from"


def test_stanza_before_bind_is_refused(fg):
    c = Client()
    c.authenticate("erin", USERS["erin"])
    c.send("<message to='dave@contoso.test'><body>x</body></message>")
    assert c.stream_error()[0] == "not-authorized"


def test_server_answers_disco_ping_and_version_by_default(fg):
    c = Client()
    c.login("erin", USERS["erin"], resource="disco")
    c.send("<iq type='get' id='d1' to='contoso.test'>"
           "<query xmlns='http://jabber.org/protocol/disco#info'/></iq>")
    r = c.next_element()
    assert r.get("type") == "result" and r.get("from") == "contoso.test"
    q = r.find("{http://jabber.org/protocol/disco#info}query")
    features = {f.get("var") for f in q if f.tag.endswith("feature")}
    assert {"urn:xmpp:ping", "http://jabber.org/protocol/disco#info",
            "msgoffline", "jabber:iq:version"} <= features
    c.send("<iq type='get' id='p' to='contoso.test'><ping xmlns='urn:xmpp:ping'/></iq>")
    assert c.next_element().get("type") == "result"
    c.send("<iq type='get' id='v' to='contoso.test'><query xmlns='jabber:iq:version'/></iq>")
    r = c.next_element()
    assert r.get("type") == "result"
    assert r.find("{jabber:iq:version}query/{jabber:iq:version}name").text == "fedgate"
    c.send("<iq type='get' id='a' to='dave@contoso.test'>"
           "<query xmlns='http://jabber.org/protocol/disco#info'/></iq>")
    r = c.next_element()
    ident = r.find("{http://jabber.org/protocol/disco#info}query/"
                   "{http://jabber.org/protocol/disco#info}identity")
    assert (ident.get("category"), ident.get("type")) == ("account", "registered")
    c.send("<message to='nobody@contoso.test' type='chat' id='m'><body>x</body></message>")
    r = c.next_element()
    assert r.tag == "{jabber:client}message" and r.get("type") == "error"
    assert r.find("{jabber:client}error/"
                  "{urn:ietf:params:xml:ns:xmpp-stanzas}service-unavailable") is not None
    c.close()


def test_vcard_is_stored_and_read_back_by_others(fg):
    c = Client()
    c.login("erin", USERS["erin"], resource="vcard")
    c.send("<iq type='set' id='v1'><vCard xmlns='vcard-temp'><FN>Erin Example</FN>"
           "</vCard></iq>")
    assert c.next_element().get("type") == "result"
    c.close()
    d = Client()
    d.login("dave", USERS["dave"], resource="vcard")
    d.send("<iq type='get' id='v2' to='erin@contoso.test'><vCard xmlns='vcard-temp'/></iq>")
    r = d.next_element()
    assert r.get("type") == "result"
    assert r.findtext("{vcard-temp}vCard/{vcard-temp}FN") == "Erin Example"
    d.close()


def test_roster_presence_chat_and_offline_messages_between_local_users(fg):
    async def scenario():
        alice = Roster("alice@contoso.test/desk", USERS["alice"], fg.cert)
        dave = Roster("dave@contoso.test/desk", USERS["dave"], fg.cert)
        await online(alice, dave)
        alice.send_presence_subscription(pto="dave@contoso.test")
        await presence_from(alice, "dave@contoso.test", 10)
        await presence_from(dave, "alice@contoso.test", 10)
        subs = (alice.client_roster["dave@contoso.test"]["subscription"],
                dave.client_roster["alice@contoso.test"]["subscription"])
        # slixmpp versions its roster (RFC 6121 §2.6): asked again, the
        # server answers "nothing new", and the roster is what it keeps.
        await alice.get_roster()
        items = {str(j): alice.client_roster[j]["subscription"]
                 for j in alice.client_roster.keys() if j != "alice@contoso.test"}
        alice.send_message(mto="dave@contoso.test", mbody="hi dave", mtype="chat")
        got = await asyncio.wait_for(dave.inbox.get(), 10)
        await offline(dave)
        alice.send_message(mto="dave@contoso.test", mbody="while you were out", mtype="chat")
        await asyncio.sleep(0.5)
        dave2 = Roster("dave@contoso.test/laptop", USERS["dave"], fg.cert)
        await online(dave2)
        later = await asyncio.wait_for(dave2.inbox.get(), 10)
        await offline(alice, dave2)
        return subs, items, got, later

    subs, items, got, later = run(scenario())
    assert subs == ("both", "both")
    assert items == {"dave@contoso.test": "both"}
    assert got["body"] == "hi dave" and str(got["from"]) == "alice@contoso.test/desk"
    assert later["body"] == "while you were out"
    delay = later.xml.find("{urn:xmpp:delay}delay")
    assert delay is not None and delay.get("from") == "contoso.test"
    assert delay.get("stamp").endswith("Z")


def test_removed_user_is_signed_out(fg):
    r = fg.cli("user", "add", "frank@contoso.test", input="frank-secret-9\n")
    assert r.returncode == 0, r.stderr
    c = Client()
    c.login("frank", "frank-secret-9", resource="x")
    assert fg.cli("user", "remove", "frank@contoso.test").returncode == 0
    cond, text = c.stream_error()
    assert cond == "not-authorized" and "removed" in text
    c2 = Client()
    c2.begin()
    kind, el = c2.plain("frank", "frank-secret-9")
    assert kind == "failure" and c2.failure_condition(el) == "not-authorized"
    c2.close()


def test_slixmpp_is_importable():
    assert slixmpp.__version__


def test_go_sendxmpp_signs_in_and_sends(fg):
    """Debian's go-sendxmpp sends a newline after <starttls/>; it must get
    through STARTTLS, SASL and binding, and deliver its message."""
    import subprocess
    r = subprocess.run(["go-sendxmpp", "-n", "-u", "alice@contoso.test", "-p", USERS["alice"],
                        "-j", "127.0.0.1:5222", "--timeout", "10", "dave@contoso.test"],
                       input="hello from go-sendxmpp\n", capture_output=True, text=True,
                       timeout=60)
    assert r.returncode == 0, r.stdout + r.stderr + fg.read_log()[-3000:]
    # dave is offline: the message waits for him.
    fg.wait_log(r"offline.*dave@contoso\.test|dave@contoso\.test.*offline")

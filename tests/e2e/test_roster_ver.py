"""Roster versioning (RFC 6121 §2.6) on raw client streams: the stream
feature, a roster get with the current version answered by an empty
result, with any other version by the whole roster and the new version,
pushes that carry the version, and the version kept over a restart.
Then slixmpp, which uses versioning when the feature is there."""
import pytest

from c2sclient import Client
from clients import User, run

NS_ROSTER = "jabber:iq:roster"
NS_VER = "urn:xmpp:features:rosterver"
USERS = {"alice": "alice-secret-1", "dave": "dave-secret-22"}


@pytest.fixture(scope="module")
def fg(module_daemons):
    return module_daemons.fedgate(
        extra={"c2s": {"auth_delay_max": "0"}},
        users={f"{u}@contoso.test": pw for u, pw in USERS.items()}).start()


def signed_in(user, resource):
    c = Client()
    features = c.authenticate(user, USERS[user])
    c.send("<iq type='set' id='b1'><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'>"
           f"<resource>{resource}</resource></bind></iq>")
    assert c.next_element().get("type") == "result"
    return c, features


def answer(c, iq_id):
    """The answer to iq_id; roster pushes that come first are collected."""
    pushes = []
    while True:
        el = c.next_element()
        assert el is not None and el != "close", "no answer"
        if el.get("id") == iq_id:
            return el, pushes
        if el.get("type") == "set" and el.find(f"{{{NS_ROSTER}}}query") is not None:
            pushes.append(el)


def get(c, iq_id, ver=None):
    v = "" if ver is None else f" ver='{ver}'"
    c.send(f"<iq type='get' id='{iq_id}'><query xmlns='{NS_ROSTER}'{v}/></iq>")
    el, _ = answer(c, iq_id)
    assert el.get("type") == "result", el
    return el.find(f"{{{NS_ROSTER}}}query")


def items(q):
    return sorted(i.get("jid") for i in q.findall(f"{{{NS_ROSTER}}}item"))


def test_versions_answer_empty_when_current_and_pushes_carry_the_new_one(fg):
    desk, features = signed_in("alice", "desk")
    assert features.find(f"{{{NS_VER}}}ver") is not None
    q = get(desk, "g1", ver="")
    v0 = q.get("ver")
    assert v0 and items(q) == []
    # The current version: an empty result, nothing else.
    assert get(desk, "g2", ver=v0) is None
    # Without ver the client is not versioning: the roster, no version.
    plain = get(desk, "g3")
    assert plain is not None and plain.get("ver") is None

    phone, _ = signed_in("alice", "phone")
    assert get(phone, "p1", ver=v0) is None  # up to date, now gets pushes
    desk.send(f"<iq type='set' id='s1'><query xmlns='{NS_ROSTER}'>"
              "<item jid='dave@contoso.test' name='Dave'/></query></iq>")
    res, pushes = answer(desk, "s1")
    assert res.get("type") == "result"
    assert len(pushes) == 1
    v1 = pushes[0].find(f"{{{NS_ROSTER}}}query").get("ver")
    assert v1 and v1 != v0
    push = phone.next_element()
    assert push.get("type") == "set"
    assert push.find(f"{{{NS_ROSTER}}}query").get("ver") == v1

    # A client holding the old version gets the roster and the new one.
    q = get(phone, "p2", ver=v0)
    assert q.get("ver") == v1 and items(q) == ["dave@contoso.test"]
    assert get(phone, "p3", ver=v1) is None
    desk.close()
    phone.close()

    fg.stop()
    fg.start()
    desk, _ = signed_in("alice", "desk")
    assert get(desk, "r1", ver=v1) is None  # kept over the restart
    desk.send(f"<iq type='set' id='s2'><query xmlns='{NS_ROSTER}'>"
              "<item jid='dave@contoso.test' subscription='remove'/></query></iq>")
    res, pushes = answer(desk, "s2")
    assert res.get("type") == "result" and len(pushes) == 1
    v2 = pushes[0].find(f"{{{NS_ROSTER}}}query").get("ver")
    assert v2 not in (v0, v1)
    q = get(desk, "r2", ver=v1)
    assert q.get("ver") == v2 and items(q) == []
    desk.close()


def test_slixmpp_keeps_the_version_it_is_given(fg):
    async def scenario():
        u = User("dave@contoso.test/desk", USERS["dave"], fg.cert)
        u.connect(("127.0.0.1", 5222))
        await u.online.wait()
        await u.get_roster()
        ver = u.client_roster.version
        u.disconnect()
        await u.disconnected
        return ver

    assert run(scenario())

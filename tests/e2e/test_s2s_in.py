"""Inbound server-to-server streams follow each partner's settings (SPEC §3):
which features are offered before and after TLS, what is refused before the
stream is secured as the partner requires, and that domains which are no
partner's are turned away. Raw sockets, real daemon."""
import pytest

from fgtest import NS_TLS, Peer

NS_DBF = "urn:xmpp:features:dialback"

PARTNERS = {
    # domain: (tls, sasl, dialback)        row: allowed methods
    "fabrikam.test": ("required", "required", "true"),            # 1: SASL over TLS
    "tlsdb.test": ("required", "not-supported", "true"),          # 13: TLS Dialback
    "either.test": ("optional", "not-supported", "true"),         # 15: TLS + TCP Dialback
    "plain.test": ("not-supported", "not-supported", "true"),     # 17: TCP Dialback
}


@pytest.fixture(scope="module")
def server(module_daemons):
    fg = module_daemons.fedgate(partners=[(d, "--tls", tls, "--sasl", sasl, "--dialback", db)
                                          for d, (tls, sasl, db) in PARTNERS.items()])
    assert fg.cli("partner", "set", "fabrikam.test", "--add-domain",
                  "corp.fabrikam.test").returncode == 0
    return fg.start()


def features_of(frm, secure=False):
    p = Peer()
    p.open(frm=frm)
    f = p.features()
    if secure:
        p.starttls()
        p.open(frm=frm)
        f = p.features()
    tls = f.find(f"{{{NS_TLS}}}starttls")
    return {
        "starttls": tls is not None,
        "required": tls is not None and tls.find(f"{{{NS_TLS}}}required") is not None,
        "dialback": f.find(f"{{{NS_DBF}}}dialback") is not None,
    }, p


@pytest.mark.parametrize("frm,plain,after_tls", [
    ("fabrikam.test", dict(starttls=True, required=True, dialback=False), dict(dialback=False)),
    ("corp.fabrikam.test", dict(starttls=True, required=True, dialback=False),
     dict(dialback=False)),
    ("tlsdb.test", dict(starttls=True, required=True, dialback=False), dict(dialback=True)),
    ("either.test", dict(starttls=True, required=False, dialback=True), dict(dialback=True)),
    ("plain.test", dict(starttls=False, required=False, dialback=True), None),
    (None, dict(starttls=True, required=False, dialback=True), dict(dialback=True)),
])
def test_features_follow_partner_settings(server, frm, plain, after_tls):
    got, p = features_of(frm)
    assert got == plain
    p.close()
    if after_tls is not None:
        got, p = features_of(frm, secure=True)
        assert got == dict(starttls=False, required=False, **after_tls)
        p.close()


def test_not_a_partner(server):
    p = Peer()
    p.open(frm="stranger.test")
    cond, text = p.stream_error()
    assert cond == "policy-violation"
    assert "stranger.test is not an allowed federation partner of contoso.test" in text
    server.wait_log(r"stranger\.test is not an allowed federation partner")


def test_starttls_refused_when_partner_has_no_tls(server):
    p = Peer()
    p.open(frm="plain.test")
    p.features()
    p.send(f"<starttls xmlns='{NS_TLS}'/>")
    cond, text = p.stream_error()
    assert cond == "policy-violation" and "do not support TLS" in text


@pytest.mark.parametrize("frm,element,words", [
    ("fabrikam.test", "<message to='a@contoso.test'/>", "require TLS before anything else"),
    ("fabrikam.test", "<db:result from='fabrikam.test' to='contoso.test'>k</db:result>",
     "do not allow dialback"),
    ("tlsdb.test", "<db:result from='tlsdb.test' to='contoso.test'>k</db:result>",
     "require TLS before dialback"),
    ("plain.test", "<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='EXTERNAL'/>",
     "SASL needs TLS"),
])
def test_refused_before_secured_as_required(server, frm, element, words):
    p = Peer()
    p.open(frm=frm)
    p.features()
    p.send(element)
    cond, text = p.stream_error()
    assert cond == "policy-violation" and words in text, text


def test_dialback_refused_after_tls_when_not_allowed(server):
    p = Peer()
    p.open(frm="fabrikam.test")
    p.features()
    p.starttls()
    p.open(frm="fabrikam.test")
    p.features()
    p.send("<db:result from='fabrikam.test' to='contoso.test'>k</db:result>")
    cond, text = p.stream_error()
    assert cond == "policy-violation" and "do not allow dialback over TLS" in text


def test_federation_off_without_partners(daemons):
    """No partners: a stream without from opens and can be secured (an admin
    checking TLS with openssl s_client), but no domain can authenticate."""
    daemons.fedgate(domain="litware.test", addr="127.0.0.3").start()
    p = Peer(host="127.0.0.3")
    p.open(to="litware.test")
    feats = p.features()
    tls = feats.find(f"{{{NS_TLS}}}starttls")
    assert tls is not None and feats.find(f"{{{NS_DBF}}}dialback") is None
    p.starttls(server_hostname="litware.test")
    p.open(to="litware.test")
    assert len(p.features()) == 0  # nothing to authenticate with
    p.send("<db:result from='fabrikam.test' to='litware.test'>k</db:result>")
    cond, text = p.stream_error()
    assert cond == "policy-violation", text
    q = Peer(host="127.0.0.3")
    q.open(to="litware.test", frm="fabrikam.test")
    cond, text = q.stream_error()
    assert "fabrikam.test is not an allowed federation partner of litware.test" in text


def test_limits_count_authenticated_streams_only(server):
    """Streams that only name a partner in their header do not use up its
    connection limit or the gateway's (issue 11): with both at 1, three
    such streams all get their features. tests/e2e/test_preauth.py shows
    the limits refusing authenticated streams, with a real Prosody."""
    assert server.cli("partner", "set", "either.test", "--connection-limit", "1").returncode == 0
    assert server.cli("gateway", "set", "--connection-limit", "1",
                      "--partner-connection-limit", "1").returncode == 0
    held = []
    try:
        for _ in range(3):
            p = Peer()
            p.open(frm="either.test")
            assert p.features() is not None
            held.append(p)
    finally:
        for p in held:
            p.close()
        assert server.cli("partner", "set", "either.test", "--connection-limit",
                          "0").returncode == 0
        assert server.cli("gateway", "set", "--connection-limit", "1000",
                          "--partner-connection-limit", "20").returncode == 0

"""TLS session resumption on server-to-server streams ([tls] session_tickets),
both directions. Inbound: a partner that comes back with its ticket skips the
full handshake, yet SASL EXTERNAL is decided as on a full one: the
certificate from the session is matched against the stream's domain, the
chain verdict of the first handshake is kept, and the partner's settings of
now apply. Outbound: fedgate keeps the ticket another fedgate gives it and
resumes the next stream to that domain, the certificate verdict running
again; a reload forgets the tickets. Real daemons, real TLS on loopback."""
import ssl
import time
import xml.etree.ElementTree as ET

import pytest

from bed import CA
from fgtest import NS_TLS, Peer

NS_SASL = "urn:ietf:params:xml:ns:xmpp-sasl"
FG = "127.0.0.11"      # contoso.test, the bed's address for fedgate
OTHER = "127.0.0.12"   # fabrikam.test, a second fedgate
PROSODY = "127.0.0.13"  # northwind.test, the bed's Prosody, tickets on


@pytest.fixture(scope="module")
def world(module_daemons):
    bed = module_daemons.bed({"fabrikam.test": OTHER, "northwind.test": PROSODY})
    d = f"{bed.root}/prosody-northwind"
    module_daemons.prosody(bed, "northwind", PROSODY, ["northwind.test"], extra=(
        f'ssl = {{ certificate = "{d}/cert.pem"; key = "{d}/key.pem"; cafile = "{d}/ca.pem"; '
        'capath = false; options = { no_ticket = false } }'))
    fg = module_daemons.fedgate(bed=bed, partners=["fabrikam.test", "litware.test",
                                                   "northwind.test"]).start()
    other = module_daemons.fedgate(bed=bed, domain="fabrikam.test", addr=OTHER,
                                   partners=["contoso.test"]).start()
    return bed, fg, other


def peer_context(cert, key):
    """One context per peer, as a server has: Python resumes only sessions
    of the context that made them."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    ctx.load_cert_chain(cert, key)
    return ctx


def external(ctx, frm, session=None):
    """An inbound stream from frm: STARTTLS (offering session), SASL
    EXTERNAL, a clean close. Returns (resumed, the answer: "success",
    "failure: TEXT" or "stream error: TEXT", the session for next time)."""
    p = Peer(host=FG)
    p.open(frm=frm)
    p.features()
    p.send(f"<starttls xmlns='{NS_TLS}'/>")
    assert p.next_element().tag == f"{{{NS_TLS}}}proceed"
    p.sock.settimeout(10)
    p.sock = ctx.wrap_socket(p.sock, server_hostname="contoso.test", session=session)
    p.reset_parser()
    p.open(frm=frm)
    p.features()
    p.send(f"<auth xmlns='{NS_SASL}' mechanism='EXTERNAL'>=</auth>")
    el = p.next_element()
    if el is None or el == "close":
        answer = "closed"
    elif el.tag == f"{{{NS_SASL}}}success":
        answer = "success"
    elif el.tag == f"{{{NS_SASL}}}failure":
        answer = "failure: " + (el.findtext(f"{{{NS_SASL}}}text") or "")
    else:
        answer = "stream error: " + ET.tostring(el, encoding="unicode")
    resumed, session = p.sock.session_reused, p.sock.session
    try:
        p.send("</stream:stream>")
        p.sock.unwrap()  # close_notify: the session stays resumable
    except (OSError, ssl.SSLError):
        pass
    p.close()
    return resumed, answer, session


def test_inbound_resumed_stream_authenticates_with_the_sessions_certificate(world):
    bed, fg, _ = world
    ctx = peer_context(*bed.ca.issue("fabrikam.test", ["fabrikam.test"]))
    resumed, answer, s1 = external(ctx, "fabrikam.test")
    assert (resumed, answer) == (False, "success")
    resumed, answer, s2 = external(ctx, "fabrikam.test", s1)
    assert resumed, "the partner's second stream did a full handshake"
    assert answer == "success"
    resumed, answer, _ = external(ctx, "fabrikam.test", s2)
    assert (resumed, answer) == (True, "success")
    fg.wait_log(r"TLS established: TLSv1\.3 \S+ \(resumed\), peer certificate: valid")


def test_inbound_resumption_keeps_an_untrusted_chain_untrusted(world):
    """Would pass EXTERNAL if a resumed session skipped the chain check."""
    bed, fg, _ = world
    stranger = CA(bed.root, "stranger-ca-resume")
    ctx = peer_context(*stranger.issue("fabrikam.test", ["fabrikam.test"]))
    resumed, full, s1 = external(ctx, "fabrikam.test")
    assert not resumed
    assert full.startswith("failure: certificate refused for fabrikam.test: the certificate's "
                           "issuer is not trusted here"), full
    resumed, answer, _ = external(ctx, "fabrikam.test", s1)
    assert resumed, "no resumption: this test would prove nothing"
    assert answer == full


def test_inbound_resumed_session_proves_only_its_certificates_domain(world):
    """A session made by fabrikam.test, resumed on a stream that claims
    litware.test (also a partner): the certificate is matched again."""
    bed, fg, _ = world
    ctx = peer_context(*bed.ca.issue("fabrikam.test", ["fabrikam.test"]))
    resumed, answer, s1 = external(ctx, "fabrikam.test")
    assert (resumed, answer) == (False, "success")
    resumed, answer, _ = external(ctx, "litware.test", s1)
    assert resumed
    assert answer.startswith("failure: certificate refused for litware.test"), answer
    assert "fabrikam.test" in answer  # the names the certificate does carry


def test_inbound_resumed_stream_meets_the_partners_settings_of_now(world):
    """A session made while SASL was allowed, resumed after the admin
    allowed only dialback: no EXTERNAL."""
    bed, fg, _ = world
    ctx = peer_context(*bed.ca.issue("fabrikam.test", ["fabrikam.test"]))
    resumed, answer, s1 = external(ctx, "fabrikam.test")
    assert (resumed, answer) == (False, "success")
    r = fg.cli("partner", "set", "fabrikam.test", "--sasl", "not-supported", "--dialback",
               "true")
    assert r.returncode == 0, r.stderr
    try:
        resumed, answer, _ = external(ctx, "fabrikam.test", s1)
        assert resumed
        assert answer != "success"
        assert "do not allow SASL" in answer, answer
    finally:
        r = fg.cli("partner", "set", "fabrikam.test", "--sasl", "required", "--dialback",
                   "false")
        assert r.returncode == 0, r.stderr


def send_test_im(fg):
    r = fg.cli("test-im", "--to", "bob@fabrikam.test", "--wait", "0")
    assert r.returncode == 0, r.stdout + r.stderr
    return r.stdout


def close_route(fg):
    """An admin's change ends the partner's streams; the next message makes
    a new one."""
    r = fg.cli("partner", "set", "fabrikam.test", "--description", f"t{time.time()}")
    assert r.returncode == 0, r.stderr


TLS_LINE = (r"TLS: TLSv1\.3 \S+{} certificate of fabrikam\.test: the certificate chain is "
            r"trusted; the certificate names fabrikam\.test as DNS-ID")


def test_outbound_resumes_the_next_stream_to_the_same_domain(world):
    import re
    _, fg, other = world
    close_route(fg)
    out = send_test_im(fg)
    assert "SASL EXTERNAL accepted by fabrikam.test" in out, out
    close_route(fg)
    out = send_test_im(fg)
    # The verdict on fabrikam.test's certificate runs on the resumed
    # stream too, and fabrikam.test accepts ours from the session.
    assert re.search(TLS_LINE.format(r" \(resumed\);"), out), out
    assert "SASL EXTERNAL accepted by fabrikam.test" in out, out
    assert "stream ready: authenticated with SASL over TLS" in out, out
    other.wait_log(r"TLS established: TLSv1\.3 \S+ \(resumed\), peer certificate: valid")
    # status shows it on both sides, with the certificate verdict.
    out = [r for r in fg.cli_json("status")
           if r["direction"] == "out" and r["remote"] == "fabrikam.test"]
    assert out and out[0]["tls"].endswith(" (resumed)"), out
    assert out[0]["state"] == "ready" and "chain is trusted" in out[0]["certificate"], out
    inb = [r for r in other.cli_json("status")
           if r["direction"] == "in" and r["remote"] == "contoso.test" and r["state"] == "ready"]
    assert inb and inb[-1]["tls"].endswith(" (resumed)"), inb
    assert "DNS-ID contoso.test" in inb[-1]["certificate"], inb
    # Used once, replaced by the ticket the resumption brought: again.
    close_route(fg)
    assert re.search(TLS_LINE.format(r" \(resumed\);"), send_test_im(fg))

    # A reload makes a new client context: no ticket is kept across it.
    r = fg.cli("reload")
    assert r.returncode == 0, r.stderr
    close_route(fg)
    out = send_test_im(fg)
    assert re.search(TLS_LINE.format(";"), out), out
    close_route(fg)
    assert re.search(TLS_LINE.format(r" \(resumed\);"), send_test_im(fg))


def test_outbound_to_a_prosody_that_cannot_resume(world):
    """Prosody with tickets on (no_ticket = false) issues them but refuses
    to resume them: it asks for client certificates without a session id
    context, and OpenSSL then fails the handshake. fedgate retries that
    stream at once with a full handshake, and does full handshakes with
    that domain from then on: no message is lost to resumption."""
    import re
    _, fg, _ = world
    outs = []
    for _ in range(3):
        r = fg.cli("partner", "set", "northwind.test", "--description", f"t{time.time()}")
        assert r.returncode == 0, r.stderr
        r = fg.cli("test-im", "--to", "bob@northwind.test", "--wait", "0")
        assert r.returncode == 0, r.stdout + r.stderr
        assert "stream ready: authenticated with SASL over TLS" in r.stdout, r.stdout
        outs.append(r.stdout)
    assert "TLS failed with a resumed session" not in outs[0]
    assert re.search(r"TLS failed with a resumed session \(.*\); again with a full handshake",
                     outs[1]), outs[1]
    for out in outs:
        assert "(resumed)" not in out, out
    assert "TLS failed" not in outs[2], outs[2]

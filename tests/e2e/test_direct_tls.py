"""Direct TLS (XEP-0368) with a real Prosody: fedgate (contoso.test) finds
fabrikam.test's _xmpps-server._tcp SRV record beside _xmpp-server, connects
with TLS at once (SNI fabrikam.test, ALPN xmpp-server) and authenticates
with SASL EXTERNAL; Prosody finds contoso.test's _xmpps-server record and
comes in on fedgate's [listen] s2s_tls. A message goes each way, `status`
says direct-tls for both streams, a client signs in on c2s_tls, a handshake
that offers another ALPN protocol is refused, and a Prosody without Direct
TLS still federates over STARTTLS."""
import asyncio
import re
import socket
import ssl

import pytest

from clients import User, cli, run
from fgtest import NS_STREAM, NS_TLS, Fedgate, Peer

FG_ADDR = "127.0.0.11"
FAB = "127.0.0.12"    # Prosody with s2s_direct_tls_ports
PLAIN = "127.0.0.13"  # Prosody without Direct TLS
ADMIN_PW = "direct tls admin"


@pytest.fixture(scope="module")
def world(module_daemons):
    bed = module_daemons.bed(
        {"fabrikam.test": FAB, "xmpp.fabrikam.test": FAB,
         "plain.test": PLAIN, "xmpp.plain.test": PLAIN},
        srv=[
            # At equal priority fedgate prefers Direct TLS; the STARTTLS
            # record is there to show that it did choose.
            ("_xmpp-server._tcp.fabrikam.test", "xmpp.fabrikam.test", 5269, 10, 0),
            ("_xmpps-server._tcp.fabrikam.test", "xmpp.fabrikam.test", 5270, 10, 0),
            ("_xmpp-server._tcp.plain.test", "xmpp.plain.test", 5269),
            # Direct TLS only, for a partner that allows no TLS
            ("_xmpps-server._tcp.tlsonly.test", "xmpp.fabrikam.test", 5270),
            ("_xmpp-server._tcp.contoso.test", "contoso.test", 5269),
            ("_xmpps-server._tcp.contoso.test", "contoso.test", 5270),
            ("_xmpps-client._tcp.contoso.test", "contoso.test", 5223),
        ])
    fab = module_daemons.prosody(
        bed, "fabrikam", FAB, ["fabrikam.test"], users={"bob@fabrikam.test": "bobpass"},
        extra="s2s_direct_tls_ports = { 5270 }")
    plain = module_daemons.prosody(
        bed, "plain", PLAIN, ["plain.test"], users={"carol@plain.test": "carolpass"})
    fg = module_daemons.fedgate(
        bed=bed, users={"alice@contoso.test": "alicepass"},
        admins={"root": ("administrator", ADMIN_PW)},
        # federated: messages need no roster entry first
        partners=[("fabrikam.test", "--partner-type", "federated"), "plain.test",
                  ("tlsonly.test", "--tls", "not-supported", "--sasl", "not-supported")],
        extra={"listen": {"s2s_tls": f"{FG_ADDR}:5270", "c2s_tls": f"{FG_ADDR}:5223"}},
        gateway=("--stream-establishment-timeout", "15"))
    return bed, fab, plain, fg.start()


def rows(fg, direction, remote):
    return [r for r in fg.cli_json("status")
            if r["direction"] == direction and r["remote"] == remote and r["state"] == "ready"]


def test_listeners_are_announced(world):
    _, _, _, fg = world
    log = fg.read_log()
    assert f"listening for servers (s2s) on {FG_ADDR}:5270 with Direct TLS (XEP-0368)" in log
    assert f"listening for clients (c2s) on {FG_ADDR}:5223 with Direct TLS (XEP-0368)" in log


def test_fedgate_to_prosody_over_direct_tls(world):
    bed, fab, _, fg = world

    async def scenario():
        bob = User("bob@fabrikam.test/desk", "bobpass", bed.ca.cert)
        bob.connect((FAB, 5222))
        await asyncio.wait_for(bob.online.wait(), 20)
        rc, out, err = await cli(fg, "test-im", "--wait", "0", "--to", "bob@fabrikam.test",
                                 "--body", "over direct tls")
        msg = await asyncio.wait_for(bob.inbox.get(), 15) if rc == 0 else None
        bob.disconnect()
        await asyncio.wait_for(bob.disconnected, 5)
        return rc, out + err, msg

    rc, out, msg = run(scenario())
    assert rc == 0, out
    # Both records found; the Direct TLS one first at equal priority.
    dns = [l for l in out.splitlines() if "DNS: xmpp.fabrikam.test" in l]
    assert dns[0].endswith(":5270 (Direct TLS, _xmpps-server)"), out
    assert "connected to xmpp.fabrikam.test [127.0.0.12]:5270 (Direct TLS)" in out
    assert "Direct TLS (XEP-0368) with fabrikam.test" in out
    assert re.search(r"TLS: TLSv1\.[23] .*the certificate chain is trusted", out), out
    assert "SASL EXTERNAL accepted by fabrikam.test" in out
    assert "<starttls" not in out
    assert msg["body"] == "over direct tls"
    out_rows = rows(fg, "out", "fabrikam.test")
    assert out_rows and out_rows[0]["tls_mode"] == "direct", out_rows
    assert out_rows[0]["method"] == "SASL over TLS"
    text = fg.cli("status").stdout
    assert "direct-tls" in text, text


def test_api_and_panel_show_direct_tls(world):
    """The outbound stream of the test above, as the API and the panel's
    Federation status page show it."""
    from webclient import Client
    _, _, _, fg = world
    base = f"http://{FG_ADDR}:5280"
    tok = fg.cli("admin", "token", "root").stdout.strip()
    rows_api = Client(base, token=tok).get("/api/v1/status").json()
    rows_api = rows_api.get("result", rows_api) if isinstance(rows_api, dict) else rows_api
    out = [r for r in rows_api if r["direction"] == "out" and r["remote"] == "fabrikam.test"]
    assert out and out[0]["tls_mode"] == "direct", rows_api
    # Prosody 0.12 agrees on no ALPN protocol; one that does says xmpp-server.
    assert out[0].get("alpn", "xmpp-server") == "xmpp-server", out
    web = Client(base)
    assert web.signin("root", ADMIN_PW).status in (200, 302, 303)
    page = web.get("/status")
    assert page.status == 200
    assert "direct-tls" in page.text, page.text


def test_prosody_to_fedgate_over_direct_tls_and_c2s_tls(world):
    """bob writes to alice, who signed in on c2s_tls: Prosody looks up
    _xmpps-server._tcp.contoso.test itself and comes in on s2s_tls."""
    bed, fab, _, fg = world

    async def scenario():
        alice = User("alice@contoso.test/tls", "alicepass", bed.ca.cert)
        # Direct TLS to the c2s_tls port: no STARTTLS at all.
        alice.connect((FG_ADDR, 5223), use_ssl=True, disable_starttls=True)
        await asyncio.wait_for(alice.online.wait(), 20)
        c2s = [r for r in fg.cli_json("status") if r["direction"] == "c2s"]
        bob = User("bob@fabrikam.test/phone", "bobpass", bed.ca.cert)
        bob.connect((FAB, 5222))
        await asyncio.wait_for(bob.online.wait(), 20)
        bob.send_message(mto="alice@contoso.test", mbody="hi alice, directly", mtype="chat")
        msg = await asyncio.wait_for(alice.inbox.get(), 30)
        for u in (bob, alice):
            u.disconnect()
            await asyncio.wait_for(u.disconnected, 5)
        return c2s, msg

    c2s, msg = run(scenario())
    assert c2s and all(r["tls_mode"] == "direct" for r in c2s), c2s
    assert msg["body"] == "hi alice, directly"
    assert str(msg["from"]).startswith("bob@fabrikam.test")
    in_rows = rows(fg, "in", "fabrikam.test")
    assert in_rows and in_rows[0]["tls_mode"] == "direct", in_rows
    assert in_rows[0]["method"] == "SASL over TLS", in_rows
    assert re.search(r"s2s-in #\d+ \S+: connected \(Direct TLS\)", fg.read_log())
    text = fg.cli("status").stdout
    assert text.count("direct-tls") >= 2, text


def raw_tls(port, alpn, hostname="contoso.test", cafile=None, cert=None):
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    if cert:
        ctx.load_cert_chain(*cert)
    if cafile:
        ctx.load_verify_locations(cafile)
    else:
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
    if alpn:
        ctx.set_alpn_protocols(alpn)
    sock = socket.create_connection((FG_ADDR, port), timeout=10)
    return ctx.wrap_socket(sock, server_hostname=hostname)


@pytest.mark.parametrize("port,wrong", [(5270, ["h2"]), (5270, ["xmpp-client"]),
                                        (5223, ["xmpp-server", "http/1.1"])])
def test_wrong_alpn_is_refused(world, port, wrong):
    """RFC 7301 §3.2: the no_application_protocol alert, and a log line
    that says why."""
    _, _, _, fg = world
    with pytest.raises(ssl.SSLError) as e:
        raw_tls(port, wrong).close()
    assert re.search(r"no.application.protocol", str(e.value), re.I), e.value
    want = "xmpp-server" if port == 5270 else "xmpp-client"
    fg.wait_log(r"TLS handshake refused: the client offered ALPN without " + want)
    assert fg.alive()


@pytest.mark.parametrize("port,alpn,ns", [(5270, ["h2", "xmpp-server"], "jabber:server"),
                                          (5270, None, "jabber:server"),
                                          (5223, ["xmpp-client"], "jabber:client")])
def test_right_or_no_alpn_gets_a_secure_stream(world, port, alpn, ns):
    """The stream starts secure: no <starttls/> offered; SASL EXTERNAL (s2s,
    for a certificate that proves fabrikam.test, as after STARTTLS) or the
    client mechanisms (c2s) straight away."""
    bed, _, _, fg = world
    s2s = ns == "jabber:server"
    cert = bed.ca.issue("raw-fabrikam", ["fabrikam.test"]) if s2s else None
    s = raw_tls(port, alpn, cafile=bed.ca.cert, cert=cert)
    assert s.selected_alpn_protocol() == (alpn[-1] if alpn else None)
    p = Peer.__new__(Peer)
    p.sock = s
    p.closed = False
    p.reset_parser()
    p.open(ns=ns, frm="fabrikam.test" if ns == "jabber:server" else None)
    feats = p.features()
    assert feats.find(f"{{{NS_TLS}}}starttls") is None
    mechs = [m.text for m in feats.iter("{urn:ietf:params:xml:ns:xmpp-sasl}mechanism")]
    if s2s:
        assert mechs == ["EXTERNAL"], mechs
    else:
        assert "SCRAM-SHA-256" in mechs or "PLAIN" in mechs, mechs
    p.close()


def test_prosody_without_direct_tls_still_uses_starttls(world):
    bed, _, plain, fg = world

    async def scenario():
        carol = User("carol@plain.test/desk", "carolpass", bed.ca.cert)
        carol.connect((PLAIN, 5222))
        await asyncio.wait_for(carol.online.wait(), 20)
        rc, out, err = await cli(fg, "test-im", "--wait", "0", "--to", "carol@plain.test",
                                 "--body", "over starttls")
        msg = await asyncio.wait_for(carol.inbox.get(), 15) if rc == 0 else None
        carol.disconnect()
        await asyncio.wait_for(carol.disconnected, 5)
        return rc, out + err, msg

    rc, out, msg = run(scenario())
    assert rc == 0, out
    assert "Direct TLS" not in out
    assert "connected to xmpp.plain.test [127.0.0.13]:5269" in out
    assert msg["body"] == "over starttls"
    out_rows = rows(fg, "out", "plain.test")
    assert out_rows and out_rows[0]["tls_mode"] == "starttls", out_rows


def test_probe_reports_both_srv_names_and_direct_tls(world):
    _, _, _, fg = world
    r = fg.cli("probe", "fabrikam.test")
    out = r.stdout + r.stderr
    assert "DNS: _xmpps-server._tcp.fabrikam.test SRV: 10 0 5270 xmpp.fabrikam.test" in out, out
    assert "DNS: _xmpp-server._tcp.fabrikam.test SRV: 10 0 5269 xmpp.fabrikam.test" in out, out
    assert "connected to xmpp.fabrikam.test [127.0.0.12]:5270 (Direct TLS)" in out, out
    assert "Direct TLS (XEP-0368): TLS at once, ALPN xmpp-server, no STARTTLS" in out, out
    assert r.returncode == 0, out
    j = fg.cli_json("probe", "fabrikam.test")
    res = j.get("result", j)
    assert res["direct_tls"] is True, j
    assert res["dns"]["xmpps_server"][0]["port"] == 5270


def test_check_validates_the_new_listen_keys(daemons):
    fg = Fedgate(extra={"listen": {"s2s_tls": "not-an-address", "c2s_tls": "127.0.0.1:5269"}})
    r = fg.cli("check")
    out = r.stdout + r.stderr
    assert r.returncode != 0
    assert re.search(r"s2s_tls.*'not-an-address' is not an address:port", out), out
    assert re.search(r"c2s_tls.*'127\.0\.0\.1:5269' is also a listener of \[listen\] s2s", out), out


def test_check_compares_xmpps_srv_with_s2s_tls(world):
    """`fedgate check` reads _xmpps-server._tcp.contoso.test against
    [listen] s2s_tls instead of calling it a mistake."""
    _, _, _, fg = world
    r = fg.cli("check")
    out = r.stdout + r.stderr
    assert "_xmpps-server._tcp.contoso.test: SRV 0 0 5270 contoso.test -> 127.0.0.11" in out, out
    assert "s2s_tls (Direct TLS, XEP-0368) is off" not in out, out
    # The same for clients: _xmpps-client against [listen] c2s_tls.
    assert "_xmpps-client._tcp.contoso.test: SRV 0 0 5223 contoso.test -> 127.0.0.11" in out, out


def test_partner_without_tls_skips_direct_tls_targets(world):
    """tls = not-supported means no TLS at all: a Direct TLS target cannot
    serve it, and with nothing else published the stream fails saying so."""
    _, _, _, fg = world
    rc, out, err = run(cli(fg, "test-im", "--to", "x@tlsonly.test"))
    assert rc == 1
    assert ("tlsonly.test publishes only Direct TLS (_xmpps-server) targets, and its partner "
            "settings allow no TLS (tls = not-supported)") in out + err, out + err
    assert "connected to" not in out + err

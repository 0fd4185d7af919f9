"""fedgate (contoso.test) federating with a real Prosody (fabrikam.test):
the outbound stream found through DNS SRV, secured with STARTTLS, the
partner's certificate checked (RFC 6125), authenticated with SASL EXTERNAL,
and a test message delivered to a real user (slixmpp). Failures are reported
in words an admin can act on."""
import asyncio
import os
import re

import pytest

from clients import User, cli, run
from fgtest import NS_STREAM, Fedgate


@pytest.fixture(scope="module")
def world(module_daemons):
    bed = module_daemons.bed(
        {name: "127.0.0.12" for name in ("fabrikam.test", "xmpp.fabrikam.test",
                                         "corp.fabrikam.test", "wrong.test")},
        srv=[("_xmpp-server._tcp.fabrikam.test", "xmpp.fabrikam.test", 5269),
             ("_xmpp-server._tcp.contoso.test", "contoso.test", 5269)])
    prosody = module_daemons.prosody(
        bed, "fabrikam", "127.0.0.12", ["fabrikam.test", "corp.fabrikam.test"],
        users={"bob@fabrikam.test": "bobpass", "carol@corp.fabrikam.test": "carolpass"})
    fg = module_daemons.fedgate(bed=bed, partners=[
        "fabrikam.test",
        # row 13: TLS Dialback is the only method
        ("corp.fabrikam.test", "--sasl", "not-supported"),
        "wrong.test",
        ("closed.test", "--proxy-fqdn", "127.0.0.12:5999"),
        ("silent.test", "--proxy-fqdn", "127.0.0.12:5998"),
        # dialback only, with 20 domains nobody serves: the pending cap
        ("bulk.test", "--sasl", "not-supported", "--additional-domains",
         ",".join(f"d{i}.bulk.test" for i in range(20)))],
        gateway=("--stream-establishment-timeout", "5"))
    return bed, prosody, fg.start()


def test_test_im_reaches_a_prosody_user_over_sasl_external(world):
    bed, prosody, fg = world

    async def scenario():
        bob = User("bob@fabrikam.test/desk", "bobpass", bed.ca.cert)
        bob.connect(("127.0.0.12", 5222))
        await asyncio.wait_for(bob.online.wait(), 20)
        rc, out, err = await cli(fg, "test-im", "--wait", "0", "--to", "bob@fabrikam.test",
                                 "--body", "hello from contoso")
        msg = await asyncio.wait_for(bob.inbox.get(), 15) if rc == 0 else None
        bob.disconnect()
        await asyncio.wait_for(bob.disconnected, 5)
        return rc, out, err, msg

    rc, out, err, msg = run(scenario())
    assert rc == 0, out + err
    assert "DNS: xmpp.fabrikam.test [127.0.0.12]:5269" in out
    assert re.search(r"TLS: TLSv1\.[23] .*certificate of fabrikam\.test: the certificate chain "
                     r"is trusted; the certificate names fabrikam\.test as DNS-ID", out), out
    assert "SASL EXTERNAL accepted by fabrikam.test" in out
    assert "stream ready: authenticated with SASL over TLS" in out
    assert msg["body"] == "hello from contoso"
    assert str(msg["from"]).startswith("fedgate-test@contoso.test/fedgate-test-im-")
    # Prosody saw the same thing from its side.
    assert "Accepting SASL EXTERNAL identity from contoso.test" in prosody.read_log()


def test_not_a_partner_is_refused_at_once(world):
    _, _, fg = world
    rc, out, err = run(cli(fg, "test-im", "--to", "someone@stranger.test"))
    assert rc == 1
    assert "stranger.test is not an allowed federation partner" in err


def test_unreachable_partner_reports_why(world):
    _, _, fg = world
    rc, out, err = run(cli(fg, "test-im", "--to", "x@closed.test"))
    assert rc == 1
    assert "cannot connect to closed.test" in err and "refused" in err.lower(), err
    assert "not sent" in err or "not sent" in out


def test_retry_waits_after_a_failure(world):
    """Right after the failure above, closed.test is not tried again: the
    message fails at once with the reason and when the next attempt may be;
    changing the partner's record allows a fresh attempt."""
    _, _, fg = world
    rc, out, err = run(cli(fg, "test-im", "--to", "x@closed.test"))
    assert rc == 1
    assert re.search(r"closed\.test failed \d+s ago \(cannot connect.*\); next attempt in "
                     r"\d+s", err), err
    assert fg.cli("partner", "set", "closed.test", "--description", "retry").returncode == 0
    rc, out, err = run(cli(fg, "test-im", "--to", "x@closed.test"))
    assert rc == 1 and "cannot connect to closed.test" in err, err


def test_peer_that_does_not_host_the_domain(world):
    """wrong.test resolves to the Prosody, which does not serve it: its
    stream error comes back in the report instead of a silent loss."""
    _, _, fg = world
    rc, out, err = run(cli(fg, "test-im", "--to", "x@wrong.test"))
    assert rc == 1
    assert "wrong.test closed the stream; the peer said: <host-unknown/>" in err, out + err


def test_prosody_user_to_contoso_gets_an_answer_both_ways(world):
    """bob@fabrikam.test writes to alice@contoso.test: Prosody authenticates
    to fedgate with SASL EXTERNAL, fedgate (alice has no account there) answers
    service-unavailable over its own outbound stream, and bob's client gets
    the error; bob's ping of contoso.test gets a result the same way."""
    bed, prosody, fg = world

    async def scenario():
        bob = User("bob@fabrikam.test/phone", "bobpass", bed.ca.cert)
        bob.register_plugin("xep_0199")
        errors = asyncio.Queue()
        bob.add_event_handler("message_error", lambda m: errors.put_nowait(m))
        bob.connect(("127.0.0.12", 5222))
        await asyncio.wait_for(bob.online.wait(), 20)
        bob.send_message(mto="alice@contoso.test", mbody="hi alice", mtype="chat")
        err = await asyncio.wait_for(errors.get(), 20)
        pong = await bob["xep_0199"].send_ping("contoso.test", timeout=20)
        bob.disconnect()
        await asyncio.wait_for(bob.disconnected, 5)
        return err, pong

    err, pong = run(scenario())
    assert err["error"]["condition"] == "service-unavailable"
    assert str(err["from"]) == "alice@contoso.test"
    assert pong["type"] == "result"
    log = fg.read_log()
    assert re.search(r"s2s-in #\d+ .*fabrikam\.test->contoso\.test: authenticated fabrikam\.test "
                     r"with SASL EXTERNAL", log), log
    assert "message to alice@contoso.test answered with service-unavailable" in log


def authenticated_peer(bed, fg, frm="fabrikam.test"):
    """A raw s2s peer that proves fabrikam.test with a certificate of the
    bed's CA and SASL EXTERNAL, as Prosody would."""
    p, feats = tls_peer(bed, frm, cert=bed.ca.issue(f"raw-{frm}", [frm]))
    mechs = [m.text for m in feats.iter("{urn:ietf:params:xml:ns:xmpp-sasl}mechanism")]
    assert mechs == ["EXTERNAL"], mechs
    p.send("<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='EXTERNAL'>=</auth>")
    assert p.next_element().tag == "{urn:ietf:params:xml:ns:xmpp-sasl}success"
    p.reset_parser()
    p.open(frm=frm)
    f = p.features()
    assert f.tag == f"{{{NS_STREAM}}}features" and len(f) == 0
    return p


@pytest.mark.parametrize("stanza,condition", [
    ("<message from='eve@litware.test' to='alice@contoso.test'><body>x</body></message>",
     "invalid-from"),
    ("<message from='bob@fabrikam.test' to='alice@elsewhere.test'><body>x</body></message>",
     "host-unknown"),
    ("<thing from='bob@fabrikam.test' to='alice@contoso.test'/>", "unsupported-stanza-type"),
])
def test_authenticated_stream_checks_every_stanza(world, stanza, condition):
    bed, _, fg = world
    p = authenticated_peer(bed, fg)
    p.send(stanza)
    cond, text = p.stream_error()
    assert cond == condition, text


def test_sasl_external_refused_for_a_domain_the_certificate_does_not_prove(world):
    bed, _, fg = world
    p, feats = tls_peer(bed, "fabrikam.test",
                        cert=bed.ca.issue("raw-corp", ["corp.fabrikam.test"]))
    assert not list(feats.iter("{urn:ietf:params:xml:ns:xmpp-sasl}mechanism"))
    p.send("<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='EXTERNAL'>=</auth>")
    fail = p.next_element()
    assert fail.tag == "{urn:ietf:params:xml:ns:xmpp-sasl}failure"
    assert fail[0].tag == "{urn:ietf:params:xml:ns:xmpp-sasl}not-authorized"
    fg.wait_log(r"no SASL EXTERNAL for fabrikam\.test: .*corp\.fabrikam\.test")


def test_status_shows_both_directions(world):
    """After the exchanges above: the outbound stream to fabrikam.test and
    Prosody's inbound one, with method, TLS, certificate and counters."""
    _, _, fg = world
    rows = fg.cli_json("status")
    out = [r for r in rows if r["direction"] == "out" and r["remote"] == "fabrikam.test"]
    inb = [r for r in rows if r["direction"] == "in" and r["remote"] == "fabrikam.test"
           and r["state"] == "ready"]
    assert out and inb, rows
    o, i = out[0], inb[0]
    assert (o["state"], o["method"], o["local"]) == ("ready", "SASL over TLS", "contoso.test")
    assert o["tls"].startswith("TLSv1.") and "chain is trusted" in o["certificate"]
    assert o["stanzas_out"] >= 1 and o["bytes_out"] > 0
    assert i["method"] == "SASL over TLS" and i["stanzas_in"] >= 1
    assert "DNS-ID fabrikam.test" in i["certificate"]
    r = fg.cli("status")
    assert r.returncode == 0 and "SASL over TLS" in r.stdout and "fabrikam.test" in r.stdout


def test_silent_partner_bounces_within_establishment_timeout(world):
    """A partner server that accepts TCP and then says nothing: the message
    is reported undeliverable after stream_establishment_timeout (5 s here),
    not lost and not waited for forever."""
    import socket
    import threading
    import time
    _, _, fg = world
    lsock = socket.socket()
    lsock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    lsock.bind(("127.0.0.12", 5998))
    lsock.listen(4)
    held = []
    threading.Thread(target=lambda: held.append(lsock.accept()), daemon=True).start()
    t0 = time.time()
    rc, out, err = run(cli(fg, "test-im", "--to", "x@silent.test"))
    took = time.time() - t0
    lsock.close()
    for conn, _ in held:
        conn.close()
    assert rc == 1
    assert "no authenticated stream to silent.test within 5 seconds" in err, out + err
    assert 4 <= took <= 15
    rows = fg.cli_json("status")
    # No stream is left over; the route keeps what went wrong for status.
    assert not [r for r in rows if r["remote"] == "silent.test" and r["direction"] == "out"
                and r["state"] != "failed"]
    route = [r for r in rows if r["remote"] == "silent.test" and r["direction"] == "route"]
    assert len(route) == 1, rows
    failure = route[0]["last_failure"]
    assert "no authenticated stream to silent.test within 5 seconds" in failure["reason"]
    assert failure["attempts"] == 1 and route[0]["state"] == "retry-wait"
    assert 0 < failure["retry_in"] <= 5


def test_status_needs_the_daemon():
    f = Fedgate(domain="contoso.test", addr="127.0.0.13")
    r = f.cli("status")
    assert r.returncode == 1 and "start 'fedgate serve' first" in r.stderr


def test_dialback_both_ways_with_prosody(world):
    """corp.fabrikam.test allows only TLS Dialback (row 13). Out: fedgate
    sends its XEP-0185 key and Prosody accepts it; carol gets the message.
    In: Prosody sends its key, fedgate asks Prosody's authoritative side
    with db:verify over its own stream, accepts, and answers carol's
    message with service-unavailable, which reaches her."""
    bed, prosody, fg = world

    async def scenario():
        carol = User("carol@corp.fabrikam.test/desk", "carolpass", bed.ca.cert)
        errors = asyncio.Queue()
        carol.add_event_handler("message_error", lambda m: errors.put_nowait(m))
        carol.connect(("127.0.0.12", 5222))
        await asyncio.wait_for(carol.online.wait(), 20)
        rc, out, err = await cli(fg, "test-im", "--wait", "0", "--to", "carol@corp.fabrikam.test",
                                 "--body", "dialback works")
        msg = await asyncio.wait_for(carol.inbox.get(), 15) if rc == 0 else None
        carol.send_message(mto="alice@contoso.test", mbody="hi", mtype="chat")
        bounce = await asyncio.wait_for(errors.get(), 20)
        carol.disconnect()
        await asyncio.wait_for(carol.disconnected, 5)
        return rc, out, err, msg, bounce

    rc, out, err, msg, bounce = run(scenario())
    assert rc == 0, out + err
    assert "partner corp.fabrikam.test allows TLS Dialback" in out
    assert "dialback key sent to corp.fabrikam.test (TLS Dialback)" in out
    assert "corp.fabrikam.test accepted our dialback key" in out
    assert "stream ready: authenticated with TLS Dialback" in out
    assert "SASL EXTERNAL" not in out  # never a method the settings do not allow
    assert msg["body"] == "dialback works"
    assert bounce["error"]["condition"] == "service-unavailable"
    log = fg.read_log()
    assert "authenticated corp.fabrikam.test with TLS Dialback" in log, log
    rows = fg.cli_json("status")
    assert any(r["direction"] == "in" and r["remote"] == "corp.fabrikam.test"
               and r["method"] == "TLS Dialback" for r in rows), rows


def dialback_key(secret, receiving, originating, stream_id):
    """XEP-0185, written independently of fedgate's C code."""
    import hashlib
    import hmac
    k = hashlib.sha256(secret.encode()).hexdigest().encode()
    return hmac.new(k, f"{receiving} {originating} {stream_id}".encode(),
                    hashlib.sha256).hexdigest()


def test_authoritative_role_answers_db_verify(world):
    import sqlite3
    _, _, fg = world
    con = sqlite3.connect(os.path.join(fg.dir, "fedgate.db"))
    secret = con.execute("SELECT value FROM gateway WHERE key = 'dialback_secret'").fetchone()[0]
    con.close()
    p, feats = tls_peer(world[0], "corp.fabrikam.test")
    assert feats.find("{urn:xmpp:features:dialback}dialback") is not None
    good = dialback_key(secret, "corp.fabrikam.test", "contoso.test", "S1")
    for sid, key, want in (("S1", good, "valid"), ("S1", "0" * 64, "invalid"),
                           ("S2", good, "invalid")):
        p.send(f"<db:verify from='corp.fabrikam.test' to='contoso.test' id='{sid}'>"
               f"{key}</db:verify>")
        ans = p.next_element()
        assert ans.tag == "{jabber:server:dialback}verify", ans
        assert (ans.get("type"), ans.get("id")) == (want, sid)


def test_dialback_refused_where_settings_do_not_allow_it(world):
    """fabrikam.test is row 1 (SASL over TLS only): its db:result is refused
    with a dialback error and authenticates nothing (seed: "it will be
    ignored")."""
    _, _, fg = world
    p, _ = tls_peer(world[0], "fabrikam.test")
    p.send("<db:result from='fabrikam.test' to='contoso.test'>abc</db:result>")
    cond, text = p.stream_error()
    assert cond == "policy-violation" and "do not allow dialback" in text


def tls_peer(bed, frm, cert=None):
    """A raw s2s peer from frm over STARTTLS, optionally showing a client
    certificate, past the restart: returns (peer, features)."""
    import ssl
    from fgtest import Peer
    p = Peer(host="127.0.0.11")
    p.open(frm=frm)
    p.features()
    p.send("<starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'/>")
    assert p.next_element().tag.endswith("proceed")
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.load_verify_locations(bed.ca.cert)
    if cert:
        ctx.load_cert_chain(*cert)
    p.sock = ctx.wrap_socket(p.sock, server_hostname="contoso.test")
    p.reset_parser()
    p.open(frm=frm)
    return p, p.features()


def test_dialback_with_a_wrong_key(world):
    """corp.fabrikam.test's real server (Prosody) says the key is not
    its own: fedgate answers invalid, closes, and routes nothing."""
    bed, _, fg = world
    p, feats = tls_peer(bed, "corp.fabrikam.test")
    p.send("<db:result from='corp.fabrikam.test' to='contoso.test'>" + "0" * 64 +
           "</db:result>")
    ans = p.next_element(timeout=15)
    assert ans.tag == "{jabber:server:dialback}result" and ans.get("type") == "invalid", ans
    cond, _ = p.stream_error()
    assert cond == "not-authorized"
    fg.wait_log(r"dialback key of corp\.fabrikam\.test is invalid")


def test_unsolicited_dialback_replies_authenticate_nothing(world):
    bed, _, fg = world
    p, _ = tls_peer(bed, "corp.fabrikam.test")
    p.send("<db:result from='corp.fabrikam.test' to='contoso.test' type='valid'/>"
           "<db:verify from='corp.fabrikam.test' to='contoso.test' id='x' type='valid'/>")
    p.send("<message from='carol@corp.fabrikam.test' to='alice@contoso.test'><body>x</body>"
           "</message>")
    cond, _ = p.stream_error()
    assert cond == "not-authorized"  # the stanza: nothing was authenticated
    fg.wait_log(r"unsolicited dialback answer from corp\.fabrikam\.test dropped")


def test_dialback_for_a_partner_that_does_not_allow_it_says_why(world):
    """On a stream from corp.fabrikam.test (TLS Dialback allowed), a
    db:result for fabrikam.test (SASL over TLS only) gets a dialback error
    whose text tells the peer's admin why, and the stream stays up."""
    bed, _, fg = world
    p, _ = tls_peer(bed, "corp.fabrikam.test")
    p.send("<db:result from='fabrikam.test' to='contoso.test'>abc</db:result>")
    ans = p.next_element()
    assert ans.tag == "{jabber:server:dialback}result" and ans.get("type") == "error", ans
    err = ans.find("{jabber:server}error")
    assert err is not None and err.find(
        "{urn:ietf:params:xml:ns:xmpp-stanzas}policy-violation") is not None
    text = err.findtext("{urn:ietf:params:xml:ns:xmpp-stanzas}text")
    assert text == ("the partner settings of fabrikam.test on contoso.test do not allow "
                    "dialback on this stream (it is encrypted)"), text
    p.send(" ")
    assert not p.closed


def test_dialback_to_an_unknown_local_domain(world):
    bed, _, fg = world
    p, _ = tls_peer(bed, "corp.fabrikam.test")
    p.send("<db:result from='corp.fabrikam.test' to='unknown.test'>abc</db:result>")
    ans = p.next_element()
    assert ans.tag == "{jabber:server:dialback}result" and ans.get("type") == "error"
    conds = [c.tag.split("}")[1] for c in ans.iter() if "xmpp-stanzas" in c.tag]
    assert "item-not-found" in conds, conds
    # The stream stays usable (XEP-0220 §2.4): a ping of the stream works.
    p.send(" ")
    assert not p.closed


def test_expired_certificate_gets_no_sasl_external(world):
    bed, _, fg = world
    p, feats = tls_peer(bed, "fabrikam.test",
                        cert=bed.ca.issue_expired("old-fabrikam", ["fabrikam.test"]))
    assert not list(feats.iter("{urn:ietf:params:xml:ns:xmpp-sasl}mechanism"))
    p.send("<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='EXTERNAL'>=</auth>")
    fail = p.next_element()
    assert fail.tag == "{urn:ietf:params:xml:ns:xmpp-sasl}failure"
    fg.wait_log(r"no SASL EXTERNAL for fabrikam\.test: .*expired")


def test_too_many_pending_dialback_requests(world):
    """Seventeen requests at once from bulk.test's domains: the cap of 16
    pending verifications closes the stream with policy-violation."""
    bed, _, fg = world
    p, _ = tls_peer(bed, "bulk.test")
    p.send("".join(f"<db:result from='d{i}.bulk.test' to='contoso.test'>k{i}</db:result>"
                   for i in range(17)))
    cond, text = p.stream_error()
    assert cond == "policy-violation" and "too many dialback requests" in text


def test_whitespace_keepalive_on_an_idle_outbound_stream(world):
    """keepalive_interval 10 s: an idle outbound stream to fabrikam.test
    (keepalive on by default) sends whitespace, no stanza."""
    import time
    _, _, fg = world
    assert fg.cli("gateway", "set", "--keepalive-interval", "10").returncode == 0
    rc, out, err = run(cli(fg, "test-im", "--wait", "0", "--to", "bob@fabrikam.test"))
    assert rc == 0, out + err

    def out_row():
        return [r for r in fg.cli_json("status") if r["direction"] == "out"
                and r["remote"] == "fabrikam.test" and r["state"] == "ready"][0]
    before = out_row()
    time.sleep(11.5)
    after = out_row()
    assert after["stanzas_out"] == before["stanzas_out"]
    assert after["bytes_out"] >= before["bytes_out"] + 1
    assert fg.cli("gateway", "set", "--keepalive-interval", "300").returncode == 0

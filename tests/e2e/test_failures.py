"""Failing partners, seen by an admin (issue 13): a peer whose socket
dies, a peer that ends the stream with its own stream error, partners that
cannot be reached (refused connection, NXDOMAIN), the failure records
`fedgate status` and /metrics show, `partner retry`. Real peers: python
sockets on loopback and the bed's DNS."""
import socket
import struct
import time

import pytest

from fgtest import Peer


def reset(sock):
    """Ends the connection with a TCP RST, as a crashed or cut peer does."""
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    sock.close()


@pytest.mark.parametrize("tls,end,expect", [
    (False, "reset", "Connection reset by peer"),
    (True, "reset", "Connection reset by peer"),
    # A killed peer: its kernel closes the TCP connection, without TLS's
    # close_notify. The old fedgate said "Resource temporarily unavailable".
    (True, "fin", "the connection ended without TLS close_notify"),
])
def test_a_dying_peer_socket_reports_the_real_error(daemons, tls, end, expect):
    fg = daemons.fedgate(partners=["fabrikam.test"]).start()
    p = Peer()
    p.open(frm="fabrikam.test")
    p.features()
    if tls:
        p.starttls()
        p.open(frm="fabrikam.test")
        p.features()
    time.sleep(0.2)
    if end == "reset":
        reset(p.sock)
    else:
        socket.socket(fileno=p.sock.detach()).close()  # FIN, no close_notify
    fg.wait_log(r"closed: ")
    log = fg.read_log()
    assert "Resource temporarily unavailable" not in log, log
    line = [ln for ln in log.splitlines() if "closed: " in ln][0]
    assert expect in line, line
    # a partner's stream that dies is worth a warning, not an info line
    assert " warning s2s-in " in line, line


def serve_once(port, script):
    """A partner's server on 127.0.0.1:port that runs script(conn) for
    each connection, in a thread."""
    import threading
    s = socket.socket()
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind(("127.0.0.1", port))
    s.listen(16)

    def loop():
        while True:
            try:
                c, _ = s.accept()
            except OSError:
                return
            try:
                script(c)
            except OSError:
                pass
    threading.Thread(target=loop, daemon=True).start()
    return s


def test_outbound_reset_reports_the_real_error(daemons):
    def script(c):
        c.recv(4096)
        time.sleep(0.2)
        reset(c)
    srv = serve_once(5998, script)
    try:
        fg = daemons.fedgate(partners=[("dying.test", "--proxy-fqdn", "127.0.0.1:5998")]).start()
        r = fg.cli("test-im", "--to", "bob@dying.test", "--wait", "0")
        log = fg.read_log()
        assert "Resource temporarily unavailable" not in log + r.stdout, log
        assert "Connection reset by peer" in log, log
    finally:
        srv.close()


def peer_header(frm, features):
    return (f"<?xml version='1.0'?><stream:stream xmlns='jabber:server' "
            f"xmlns:stream='http://etherx.jabber.org/streams' xmlns:db='jabber:server:dialback' "
            f"from='{frm}' id='j2-1' version='1.0'><stream:features>{features}"
            f"</stream:features>").encode()


def test_peer_without_sasl_on_s2s_gets_the_right_hint(daemons):
    """jabberd2 offers STARTTLS, then dialback and no SASL at all on s2s:
    the hint must say so and what to change, not ask whether the peer
    trusts our certificate."""
    import ssl
    bed = daemons.bed({})
    cert, key = bed.ca.issue("jabberd.test", ["jabberd.test"])
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(cert, key)

    def script(c):
        c.settimeout(10)
        c.recv(4096)
        c.sendall(peer_header("jabberd.test", "<starttls xmlns='urn:ietf:params:xml:ns:"
                                              "xmpp-tls'><required/></starttls>"))
        c.recv(4096)
        c.sendall(b"<proceed xmlns='urn:ietf:params:xml:ns:xmpp-tls'/>")
        t = ctx.wrap_socket(c, server_side=True)
        t.recv(4096)
        t.sendall(peer_header("jabberd.test", "<dialback xmlns='urn:xmpp:features:dialback'/>"))
        while t.recv(4096):
            pass
    srv = serve_once(5997, script)
    try:
        fg = daemons.fedgate(bed=bed, partners=[
            ("jabberd.test", "--proxy-fqdn", "127.0.0.1:5997")]).start()
        r = fg.cli("test-im", "--to", "bob@jabberd.test", "--wait", "0")
        out = r.stdout + r.stderr
        assert r.returncode == 1, out
        assert "trust our certificate?" not in out, out
        assert "jabberd.test offers no SASL EXTERNAL on this server-to-server stream" in out, out
        assert "fedgate partner set jabberd.test --sasl optional --dialback true" in out, out
    finally:
        srv.close()


def metrics_text(fg):
    import urllib.request
    if not hasattr(fg, "mon_token"):
        r = fg.cli("admin", "token", "mon")
        assert r.returncode == 0, r.stderr
        fg.mon_token = r.stdout.strip()
    req = urllib.request.Request("http://127.0.0.1:5280/metrics",
                                 headers={"Authorization": f"Bearer {fg.mon_token}"})
    return urllib.request.urlopen(req, timeout=10).read().decode()


def api_get(fg, path):
    import json
    import urllib.request
    metrics_text(fg)  # makes the token
    req = urllib.request.Request("http://127.0.0.1:5280/api/v1/" + path,
                                 headers={"Authorization": f"Bearer {fg.mon_token}"})
    return json.loads(urllib.request.urlopen(req, timeout=10).read().decode())


def failing_rows(fg):
    return [r for r in fg.cli_json("status", "--failing")
            if r["remote"] in ("down.test", "nx.test")]


def test_failing_partners_have_a_failure_record(daemons):
    """A partner whose server refuses connections and one whose domain
    does not exist: status --failing, the API and /metrics show them with
    the reason, the attempts and the next retry; partner retry forgets the
    retry delay so the next stanza tries at once."""
    bed = daemons.bed({})  # the bed's DNS: nx.test does not exist
    fg = daemons.fedgate(
        admins={"mon": ("viewer", "monitoring password"),
                "boss": ("administrator", "boss password 1")},
        partners=[("down.test", "--proxy-fqdn", "127.0.0.1:5996"), "nx.test",
                  "idle.test"]).start()
    r = fg.cli("test-im", "--to", "bob@down.test", "--wait", "0")
    assert r.returncode == 1 and "Connection refused" in r.stdout + r.stderr, r
    r = fg.cli("test-im", "--to", "bob@nx.test", "--wait", "0")
    assert r.returncode == 1, r

    rows = {r["remote"]: r for r in failing_rows(fg)}
    assert set(rows) == {"down.test", "nx.test"}, rows
    f = rows["down.test"]["last_failure"]
    assert f["state"] == "failing" and f["attempts"] == 1 and not f["by_peer"], f
    assert "Connection refused" in f["reason"], f
    assert f["first"] == f["at"] and f["retry_in"] > 0 and f["bounced"] == 1, f
    assert rows["down.test"]["state"] == "retry-wait", rows
    assert rows["nx.test"]["last_failure"]["attempts"] == 1, rows
    # only failing routes: idle.test never failed, and nothing else is listed
    assert all(r["last_failure"]["state"] == "failing" for r in fg.cli_json("status", "--failing"))

    text = fg.cli("status", "--failing").stdout
    assert "failing since " in text and "Connection refused" in text, text
    assert "next attempt: " in text and "(in " in text and "1 bounced" in text, text

    api = api_get(fg, "status?failing=true")["result"]
    assert {r["remote"] for r in api} == {"down.test", "nx.test"}, api

    m = metrics_text(fg)
    assert 'fedgate_partner_state{partner="down.test",state="failing"} 1' in m, m
    assert 'fedgate_partner_state{partner="down.test",state="connected"} 0' in m, m
    assert 'fedgate_partner_state{partner="idle.test",state="idle"} 1' in m, m
    assert 'fedgate_partner_failures_total{partner="down.test",reason="connect"} 1' in m, m
    assert 'fedgate_partner_failures_total{partner="nx.test",reason="dns"} 1' in m, m
    assert 'partner="bob' not in m and "stranger" not in m

    # During the retry delay a new attempt is not made...
    r = fg.cli("test-im", "--to", "bob@down.test", "--wait", "0")
    assert "next attempt in" in r.stdout + r.stderr, r
    assert failing_rows(fg)[0]["last_failure"]["attempts"] == 1
    # ...until the admin says so.
    r = fg.cli("partner", "retry", "down.test")
    assert r.returncode == 0, r.stderr
    assert r.stdout.startswith("no stanza waits for down.test"), r  # only the message
    f = {r["remote"]: r for r in failing_rows(fg)}["down.test"]["last_failure"]
    assert f["retry_in"] == 0 and f["attempts"] == 1, f
    assert "next attempt: with the next stanza" in fg.cli("status", "--failing").stdout
    r = fg.cli("test-im", "--to", "bob@down.test", "--wait", "0")
    assert "connect failed: Connection refused" in r.stdout + r.stderr, r
    f = {r["remote"]: r for r in failing_rows(fg)}["down.test"]["last_failure"]
    assert f["attempts"] == 2 and f["first"] <= f["at"], f
    assert 'reason="connect"} 2' in metrics_text(fg)

    # The API: a viewer may not, an administrator may.
    import json
    import urllib.error
    import urllib.request

    def post_retry(token, domain):
        req = urllib.request.Request(
            f"http://127.0.0.1:5280/api/v1/partners/{domain}/retry", data=b"",
            method="POST", headers={"Authorization": f"Bearer {token}"})
        try:
            with urllib.request.urlopen(req, timeout=10) as resp:
                return resp.status, json.loads(resp.read())
        except urllib.error.HTTPError as e:
            return e.code, json.loads(e.read())
    boss = fg.cli("admin", "token", "boss").stdout.strip()
    assert post_retry(fg.mon_token, "down.test")[0] == 403
    code, body = post_retry(boss, "down.test")
    assert code == 200 and body["result"] == {"domain": "down.test", "started": 0}, body
    assert post_retry(boss, "nobody.test")[0] == 404

    r = fg.cli("status", "--failing", "--refused")
    assert r.returncode == 2 and "give one" in r.stderr, r
    r = fg.cli("partner", "retry", "nobody.test")
    assert r.returncode != 0 and "no partner 'nobody.test'" in r.stderr, r


def test_suspended_partner(daemons):
    """partner set --enabled false: the partner's streams are refused with
    a clear stream error, nothing is sent to it and no connection is
    tried, senders get service-unavailable with the reason, status and
    /metrics say suspended, the change is audited and exported; --enabled
    true resumes."""
    from c2sclient import Client
    tries = []

    def script(c):
        tries.append(1)
        c.close()
    srv = serve_once(5995, script)
    try:
        fg = daemons.fedgate(
            users={"alice@contoso.test": "alice-secret-1"},
            admins={"mon": ("viewer", "monitoring password")},
            partners=[("fabrikam.test", "--proxy-fqdn", "127.0.0.1:5995")]).start()
        r = fg.cli("partner", "set", "fabrikam.test", "--enabled", "false")
        assert r.returncode == 0, r.stderr
        assert fg.cli_json("partner", "get", "fabrikam.test")["enabled"] is False
        assert "suspended" in fg.cli("partner", "get", "fabrikam.test").stdout
        audit = fg.cli("audit").stdout
        assert "enabled: true -> false" in audit, audit
        exported = fg.export()
        assert '"enabled": false' in exported.replace('":false', '": false')
        import os
        path = os.path.join(fg.dir, "partners.json")
        with open(path, "w") as f:
            f.write(exported)
        r = fg.cli("partner", "import", path)
        assert r.returncode == 0, r.stderr
        assert fg.cli_json("partner", "get", "fabrikam.test")["enabled"] is False

        why = "federation with fabrikam.test is suspended by the administrator"
        p = Peer()
        p.open(frm="fabrikam.test")
        assert p.stream_error() == ("policy-violation", why)
        # a partner the admin suspended is no stranger "who tried to federate"
        assert all(r.get("domain") != "fabrikam.test" for r in fg.cli_json("status", "--refused"))

        alice = Client()
        alice.login("alice", "alice-secret-1")
        alice.send("<message to='bob@fabrikam.test' id='m1' type='chat'><body>hi</body>"
                   "</message>")
        err = alice.next_element(10)
        assert err.get("type") == "error" and err.get("id") == "m1", err
        e = err.find("{jabber:client}error")
        assert e.find("{urn:ietf:params:xml:ns:xmpp-stanzas}service-unavailable") is not None
        assert e.findtext("{urn:ietf:params:xml:ns:xmpp-stanzas}text") == why
        r = fg.cli("test-im", "--to", "bob@fabrikam.test", "--wait", "0")
        assert r.returncode == 1 and why in r.stdout + r.stderr, r
        assert tries == [], "a suspended partner was connected to"

        rows = [r for r in fg.cli_json("status") if r["remote"] == "fabrikam.test"]
        assert [r["state"] for r in rows] == ["suspended"], rows
        assert "suspended" in fg.cli("status").stdout
        m = metrics_text(fg)
        assert 'fedgate_partner_state{partner="fabrikam.test",state="suspended"} 1' in m, m
        assert 'fedgate_partner_state{partner="fabrikam.test",state="idle"} 0' in m, m

        r = fg.cli("partner", "set", "fabrikam.test", "--enabled", "true")
        assert r.returncode == 0, r.stderr
        p = Peer()
        p.open(frm="fabrikam.test")
        assert p.features() is not None
        p.close()
        fg.cli("test-im", "--to", "bob@fabrikam.test", "--wait", "0")
        assert tries, "no attempt after resuming"
    finally:
        srv.close()


def self_signed(dirname, name):
    import os
    import subprocess
    cert, key = os.path.join(dirname, "ss.pem"), os.path.join(dirname, "ss.key")
    subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt",
                    "ec_paramgen_curve:P-256", "-nodes", "-keyout", key, "-out", cert,
                    "-days", "30", "-subj", f"/CN={name}",
                    "-addext", f"subjectAltName=DNS:{name}"],
                   check=True, capture_output=True)
    return cert, key


@pytest.fixture
def cert_world(daemons):
    # Per test: a bed's DNS holds 127.0.0.53, so no other test may make a
    # bed while one lives.
    bed = daemons.bed({})
    fg = daemons.fedgate(bed=bed, partners=["fabrikam.test"]).start()
    return bed, fg


@pytest.mark.parametrize("kind,expect", [
    ("self-signed", "the certificate is self-signed"),
    ("expired", "the certificate has expired"),
    ("other-name", "the certificate is not valid for this name"),
    ("untrusted", "the certificate's issuer is not trusted here"),
])
def test_refused_certificate_says_why_to_the_peer(cert_world, kind, expect):
    """A peer that tries SASL EXTERNAL with a certificate fedgate cannot
    accept hears why in the SASL failure's text, in the words of
    fedgate's own certificate check (names included)."""
    import ssl
    import xml.etree.ElementTree as ET
    from bed import CA
    bed, fg = cert_world
    if kind == "self-signed":
        cert, key = self_signed(bed.root, "fabrikam.test")
    elif kind == "expired":
        cert, key = bed.ca.issue_expired("fabrikam.test", ["fabrikam.test"])
    elif kind == "other-name":
        cert, key = bed.ca.issue("litware.test", ["litware.test", "www.litware.test"])
    else:
        cert, key = CA(bed.root, "stranger-ca").issue("fabrikam.test", ["fabrikam.test"])
    p = Peer(host="127.0.0.11")
    p.open(frm="fabrikam.test")
    p.features()
    p.send("<starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'/>")
    assert p.next_element().tag.endswith("proceed")
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    ctx.load_cert_chain(cert, key)
    p.sock = ctx.wrap_socket(p.sock, server_hostname="contoso.test")
    p.reset_parser()
    p.open(frm="fabrikam.test")
    p.features()
    p.send("<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='EXTERNAL'>=</auth>")
    el = p.next_element()
    assert el.tag == "{urn:ietf:params:xml:ns:xmpp-sasl}failure", ET.tostring(el)
    assert el.find("{urn:ietf:params:xml:ns:xmpp-sasl}not-authorized") is not None
    text = el.findtext("{urn:ietf:params:xml:ns:xmpp-sasl}text")
    assert text and text.startswith("certificate refused for fabrikam.test: " + expect), text
    if kind == "other-name":
        assert "litware.test" in text, text  # the names it has
    assert "PRIVATE KEY" not in text and "secret" not in text
    # What our own admin could change here is for our log, not the peer.
    for ours in ("ca_file", "trust anchors", "this host's clock"):
        assert ours not in text, text
    p.close()
    log = fg.read_log()
    assert "SASL EXTERNAL refused (not-authorized): certificate refused for fabrikam.test" \
        in log
    if kind in ("self-signed", "untrusted"):
        assert "[tls] ca_file" in log  # the advice stays with our admin


def test_outbound_peer_hears_why_its_certificate_is_refused(daemons):
    """fedgate connects to a partner that allows only SASL over TLS and
    shows a self-signed certificate: the partner's server gets a stream
    error whose text says why, not a bare close."""
    import ssl
    bed = daemons.bed({})
    cert, key = self_signed(bed.root, "selfie.test")
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(cert, key)
    heard = []

    def script(c):
        c.settimeout(10)
        c.recv(4096)
        c.sendall(peer_header("selfie.test", "<starttls xmlns='urn:ietf:params:xml:ns:"
                                             "xmpp-tls'><required/></starttls>"))
        c.recv(4096)
        c.sendall(b"<proceed xmlns='urn:ietf:params:xml:ns:xmpp-tls'/>")
        t = ctx.wrap_socket(c, server_side=True)
        t.recv(4096)
        t.sendall(peer_header("selfie.test", "<mechanisms xmlns='urn:ietf:params:xml:ns:"
                                             "xmpp-sasl'><mechanism>EXTERNAL</mechanism>"
                                             "</mechanisms>"))
        data = b""
        while True:
            chunk = t.recv(4096)
            if not chunk:
                break
            data += chunk
        heard.append(data.decode())
    srv = serve_once(5994, script)
    try:
        fg = daemons.fedgate(bed=bed, partners=[
            ("selfie.test", "--proxy-fqdn", "127.0.0.1:5994")]).start()
        r = fg.cli("test-im", "--to", "bob@selfie.test", "--wait", "0")
        assert r.returncode == 1, r
        deadline = time.time() + 5
        while not heard and time.time() < deadline:
            time.sleep(0.05)
        assert heard, "the peer heard nothing"
        assert "<policy-violation" in heard[0], heard
        assert ("certificate refused for selfie.test: the certificate is self-signed"
                in heard[0]), heard
        assert heard[0].endswith("</stream:stream>"), heard
        assert "ca_file" not in heard[0], heard
    finally:
        srv.close()

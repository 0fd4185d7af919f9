"""How fedgate ends a TLS connection: after its last bytes (the stream
close) it sends a TLS close_notify before it closes the socket (RFC 8446
§6.1), so that clients and monitoring tools can tell a clean end from a
truncation. Checked with real tools: openssl s_client and Debian's
check_xmppng (nagios-check-xmppng), on the s2s and the c2s port."""
import subprocess

import pytest

CHECK_XMPPNG = "/usr/lib/nagios/plugins/check_xmppng"


@pytest.fixture(scope="module")
def server(module_daemons):
    return module_daemons.fedgate(partners=["fabrikam.test"]).start()


@pytest.mark.parametrize("port,starttls,ns", [
    (5269, "xmpp-server", "jabber:server"),
    (5222, "xmpp", "jabber:client"),
])
def test_s_client_sees_close_notify(server, port, starttls, ns):
    # After STARTTLS s_client sends what it reads: a new stream and its
    # end; fedgate answers, closes the stream and then the connection.
    stream = (f"<?xml version='1.0'?><stream:stream xmlns='{ns}' "
              "xmlns:stream='http://etherx.jabber.org/streams' "
              "to='contoso.test' version='1.0'></stream:stream>\n")
    r = subprocess.run(["openssl", "s_client", "-starttls", starttls, "-xmpphost",
                        "contoso.test", "-connect", f"127.0.0.1:{port}", "-ign_eof"],
                       input=stream, capture_output=True, text=True, timeout=30)
    out = r.stdout + r.stderr
    assert "</stream:stream>" in r.stdout, out
    assert "unexpected eof" not in out, out
    assert r.returncode == 0, out


@pytest.mark.parametrize("kind,port", [("--s2s", 5269), ("--c2s", 5222)])
def test_check_xmppng_is_ok(server, kind, port):
    r = subprocess.run(["/usr/bin/python3", CHECK_XMPPNG, "-H", "127.0.0.1", "-p", str(port),
                        kind, "--servername", "contoso.test", "--starttls",
                        "-r", server.cert],
                       capture_output=True, text=True, timeout=30)
    out = r.stdout + r.stderr
    assert "UNEXPECTED_EOF" not in out, out
    assert r.stdout.startswith("XMPP OK"), out
    assert r.returncode == 0, out

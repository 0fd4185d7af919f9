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

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

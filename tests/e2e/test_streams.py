"""fedgate serve over real sockets: stream headers, features, STARTTLS, and
the stream errors RFC 6120 prescribes for bad input, each closing only the
offending stream while the server goes on serving others."""
import re
import signal
import socket
import ssl
import time

import pytest

from fgtest import NS_STREAM, NS_TLS, Peer


@pytest.fixture(scope="module")
def server(module_daemons):
    # Federation is an allow-list: one partner (defaults: SASL over TLS only,
    # so TLS is required) lets streams be opened at all.
    fg = module_daemons.fedgate(extra={"timeouts": {"stream_header": "2s"},
                                       "limits": {"connections_per_ip": "20",
                                                  "preauth_streams_per_ip": "64"}},
                                partners=["fabrikam.test"]).start()
    # A stream that stays open through every test: the server must keep
    # serving it while other peers misbehave.
    bystander = Peer()
    bystander.open()
    bystander.features()
    fg.bystander = bystander
    yield fg
    bystander.close()


def assert_still_serving(fg):
    assert fg.alive()
    p = Peer()
    p.open()
    feats = p.features()
    assert feats.find(f"{{{NS_TLS}}}starttls") is not None
    p.close()


def test_header_and_features(server):
    p = Peer()
    p.open(frm="fabrikam.test")
    hdr = p.wait_header()
    assert hdr.tag == f"{{{NS_STREAM}}}stream"
    assert hdr.get("from") == "contoso.test"
    assert hdr.get("to") == "fabrikam.test"
    assert hdr.get("version") == "1.0"
    assert len(hdr.get("id")) >= 16
    feats = p.features()
    tls = feats.find(f"{{{NS_TLS}}}starttls")
    assert tls is not None and tls.find(f"{{{NS_TLS}}}required") is not None
    p.send("</stream:stream>")
    assert p.next_element() == "close"
    p.wait_closed()


def test_starttls_upgrade_and_restart(server):
    p = Peer()
    p.open(frm="fabrikam.test")
    p.features()
    tls = p.starttls(cafile=server.cert)  # the certificate fedgate init made verifies
    assert tls.version() in ("TLSv1.2", "TLSv1.3")
    p.open(frm="fabrikam.test")
    hdr = p.wait_header()
    assert hdr.get("from") == "contoso.test"
    feats = p.features()
    assert feats.find(f"{{{NS_TLS}}}starttls") is None  # offered once only
    # Authentication comes with later work: a stanza now is refused.
    p.send("<message from='bob@fabrikam.test' to='alice@contoso.test'><body>hi</body></message>")
    assert p.stream_error()[0] == "not-authorized"
    server.wait_log(r"TLS established: TLSv1\.[23]")


def test_tls_below_1_2_refused(server):
    p = Peer()
    p.open()
    p.features()
    p.send(f"<starttls xmlns='{NS_TLS}'/>")
    assert p.next_element().tag == f"{{{NS_TLS}}}proceed"
    import ssl
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    import warnings
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        ctx.minimum_version = ssl.TLSVersion.TLSv1
        ctx.maximum_version = ssl.TLSVersion.TLSv1_1
    try:
        ctx.set_ciphers("ALL:@SECLEVEL=0")
    except ssl.SSLError:
        pass
    with pytest.raises((ssl.SSLError, ConnectionResetError, OSError)):
        ctx.wrap_socket(p.sock, server_hostname="contoso.test")
    server.wait_log(r"TLS handshake failed")
    assert_still_serving(server)


BAD_INPUT = [
    ("doctype", "<?xml version='1.0'?><!DOCTYPE stream:stream [<!ENTITY x 'y'>]>", False,
     "restricted-xml"),
    ("comment", "<!-- hello -->", True, "restricted-xml"),
    ("processing-instruction", "<?evil data?>", True, "restricted-xml"),
    ("invalid-utf8", "<message><body>\xc3\x28</body></message>", True, "not-well-formed"),
    ("overlong-utf8", "<message><body>\xc0\xaf</body></message>", True, "not-well-formed"),
    ("control-char", "<message><body>&#1;</body></message>", True, "not-well-formed"),
    ("mismatched-tag", "<message></presence>", True, "not-well-formed"),
    ("undeclared-prefix", "<x:message/>", True, "bad-namespace-prefix"),
    ("text-between-stanzas", "hello", True, "bad-format"),
    ("before-tls", "<message to='a@contoso.test'/>", True, "policy-violation"),
]


@pytest.mark.parametrize("name,data,after_header,condition", BAD_INPUT,
                         ids=[b[0] for b in BAD_INPUT])
def test_bad_input_gets_stream_error(server, name, data, after_header, condition):
    p = Peer()
    raw = data.encode("latin-1")  # send the exact bytes, invalid UTF-8 included
    if after_header:
        p.open()
        p.features()
        p.send(raw)
    else:
        p.send(raw)
    cond, text = p.stream_error()
    assert cond == condition, text
    assert text  # every error says why
    assert_still_serving(server)


def test_oversized_stanza_before_auth(server):
    """preauth_stanza_size (10 KiB): one byte over is refused while the stanza
    is still arriving; it never has to be complete."""
    p = Peer()
    p.open()
    p.features()
    p.send("<message><body>" + "x" * (10 * 1024))
    cond, text = p.stream_error()
    assert cond == "policy-violation"
    assert "size limit" in text
    assert_still_serving(server)


def test_oversized_stanza_after_tls(server):
    p = Peer()
    p.open()
    p.features()
    p.starttls()
    p.open()
    p.features()
    p.send("<message><body>" + "y" * (11 * 1024) + "</body></message>")
    cond, text = p.stream_error()
    assert cond == "policy-violation" and "size limit" in text


def test_deep_nesting(server):
    p = Peer()
    p.open()
    p.features()
    p.send("<a>" * 40)
    cond, text = p.stream_error()
    assert cond == "policy-violation" and "deeper" in text


def test_plaintext_after_starttls_is_discarded(server):
    """Bytes pipelined after <starttls/> are never parsed: here they hold a
    comment, which would give restricted-xml if they were."""
    p = Peer()
    p.open()
    p.features()
    p.send(f"<starttls xmlns='{NS_TLS}'/><!-- injected --><message/>")
    cond, text = p.stream_error()
    assert cond == "policy-violation"
    assert "after <starttls/>" in text and "discarded" in text
    assert_still_serving(server)


@pytest.mark.parametrize("kwargs,port,condition", [
    ({"to": "unknown.test"}, 5269, "host-unknown"),
    ({"to": None}, 5269, "host-unknown"),
    ({"to": "not a domain!"}, 5269, "host-unknown"),
    ({"version": None}, 5269, "unsupported-version"),
    ({"version": "0.9"}, 5269, "unsupported-version"),
    ({"version": "one"}, 5269, "unsupported-version"),
    ({"ns": "jabber:client"}, 5269, "invalid-namespace"),
    ({"ns": "jabber:server"}, 5222, "invalid-namespace"),
    ({"frm": "bad..domain"}, 5269, "invalid-from"),
], ids=["unknown-to", "no-to", "bad-to", "no-version", "old-version", "bad-version",
        "client-ns-on-s2s", "server-ns-on-c2s", "bad-from"])
def test_header_errors(server, kwargs, port, condition):
    p = Peer(port=port)
    p.open(**kwargs)
    hdr = p.wait_header()
    assert hdr is not None  # our header always comes first (RFC 6120 4.9.1.1)
    cond, text = p.stream_error()
    assert cond == condition, text


def test_wrong_stream_namespace(server):
    p = Peer()
    p.send("<stream:stream xmlns='jabber:server' xmlns:stream='http://example.com/streams' "
           "to='contoso.test' version='1.0'>")
    assert p.stream_error()[0] == "invalid-namespace"


def test_c2s_port(server):
    p = Peer(port=5222)
    p.open(ns="jabber:client")
    feats = p.features()
    assert feats.find(f"{{{NS_TLS}}}starttls/{{{NS_TLS}}}required") is not None
    p.starttls()
    p.open(ns="jabber:client")
    assert p.wait_header().get("from") == "contoso.test"
    p.features()
    p.send("</stream:stream>")
    assert p.next_element() == "close"


def test_version_2_gets_ours(server):
    p = Peer()
    p.open(version="2.0")
    assert p.wait_header().get("version") == "1.0"
    p.features()


def test_header_timeout(server):
    p = Peer()
    t0 = time.time()
    cond, text = p.stream_error(timeout=6)
    assert cond == "connection-timeout"
    assert 1.5 <= time.time() - t0 <= 5


def test_connections_per_ip(server):
    peers = []
    # The bystander holds one; fill up to the cap of 20.
    for _ in range(19):
        q = Peer()
        q.open()
        q.features()
        peers.append(q)
    extra = Peer()
    cond, text = extra.stream_error()
    assert cond == "policy-violation" and "connections_per_ip" in text
    for q in peers:
        q.close()
    time.sleep(0.3)
    assert_still_serving(server)


def test_bystander_survived(server):
    """The stream opened before every bad peer above is still open."""
    b = server.bystander
    b.send(" ")  # whitespace keepalive
    b.send("</stream:stream>")
    assert b.next_element() == "close"


def test_shutdown_sends_system_shutdown(daemons):
    fg = daemons.fedgate(domain="litware.test", addr="127.0.0.2", partners=["fabrikam.test"])
    fg.start()
    p = Peer(host="127.0.0.2")
    p.open(to="litware.test")
    p.features()
    fg.proc.send_signal(signal.SIGTERM)
    cond, _ = p.stream_error()
    assert cond == "system-shutdown"
    assert fg.proc.wait(timeout=10) == 0
    fg.proc = None
    log = fg.read_log()
    assert "Sanitizer" not in log
    with pytest.raises(OSError):
        socket.create_connection(("127.0.0.2", 5269), timeout=2)


def test_openssl_s_client_upgrades_a_fresh_install(daemons):
    """What `make run` promises: with the configuration `fedgate init`
    writes (no partners yet), openssl s_client opens a stream and upgrades
    it to TLS."""
    import subprocess
    daemons.fedgate(domain="localhost", addr="127.0.0.4").start()
    r = subprocess.run(["openssl", "s_client", "-starttls", "xmpp-server", "-connect",
                        "127.0.0.4:5269", "-xmpphost", "localhost"],
                       input="Q\n", capture_output=True, text=True, timeout=20)
    assert re.search(r"New, TLSv1\.[23], Cipher is TLS_", r.stdout), r.stdout + r.stderr
    assert "CN = localhost" in r.stdout


@pytest.mark.parametrize("port,ns", [(5269, "jabber:server"), (5222, "jabber:client")])
@pytest.mark.parametrize("ws", ["\n", "\r\n", " \t "])
def test_whitespace_after_starttls_is_allowed(server, port, ns, ws):
    """go-sendxmpp sends a newline after <starttls/>: whitespace between
    top-level elements is not data (RFC 6120 §11.7), so TLS starts; Prosody
    and ejabberd take it too."""
    p = Peer(port=port)
    p.open(ns=ns)
    p.features()
    p.send(f"<starttls xmlns='{NS_TLS}'/>{ws}")
    el = p.next_element()
    assert el is not None and el != "close" and el.tag == f"{{{NS_TLS}}}proceed", el
    ctx = ssl.create_default_context(cafile=server.cert)
    p.sock = ctx.wrap_socket(p.sock, server_hostname="contoso.test")
    p.reset_parser()
    p.open(ns=ns)
    assert p.wait_header().get("from") == "contoso.test"
    feats = p.features()
    assert feats.find(f"{{{NS_TLS}}}starttls") is None
    p.send("</stream:stream>")
    assert p.next_element() == "close"


@pytest.mark.parametrize("port,ns", [(5269, "jabber:server"), (5222, "jabber:client")])
def test_anything_but_whitespace_after_starttls_is_refused(server, port, ns):
    p = Peer(port=port)
    p.open(ns=ns)
    p.features()
    p.send(f"<starttls xmlns='{NS_TLS}'/>\n x")
    cond, text = p.stream_error()
    assert cond == "policy-violation"
    assert text.startswith("3 bytes were sent after <starttls/>"), text

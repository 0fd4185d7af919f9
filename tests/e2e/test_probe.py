"""`fedgate probe DOMAIN` against the bed's real Prosody servers and a few
sockets: a good certificate, a CA fedgate does not trust, a certificate for
another name, no STARTTLS, a closed port, NXDOMAIN and a server that never
answers. Each report is checked for its key lines and each probe for its
time (stream_establishment_timeout is 5 s here). A probe saves nothing (the
audit log and the partners stay as they were) and leaves no route or stream
in `status`.

  fabrikam.test   127.0.0.12  Prosody, bed CA, SRV via xmpp.fabrikam.test
  untrusted.test  127.0.0.16  Prosody, certificate from another CA
  othername.test  127.0.0.18  Prosody, certificate for elsewhere.test
  notls.test      127.0.0.15  Prosody without TLS (a partner: TCP Dialback)
  closed.test     127.0.0.13  nothing listens
  silent.test     127.0.0.17  SRV to port 5998: accepts and says nothing
  two.test        SRV 0 to 127.0.0.19:5997 (SYNs dropped), SRV 10 to fabrikam's
"""
import json
import os
import re
import socket
import threading
import time
import urllib.request

import pytest

from bed import CA, Prosody
from clients import cli, run

TIMEOUT = 5


@pytest.fixture(scope="module")
def world(module_daemons):
    peers = {"fabrikam.test": "127.0.0.12", "xmpp.fabrikam.test": "127.0.0.12",
             "untrusted.test": "127.0.0.16", "othername.test": "127.0.0.18",
             "notls.test": "127.0.0.15", "closed.test": "127.0.0.13",
             "silent-host.test": "127.0.0.17", "blackhole.test": "127.0.0.19"}
    bed = module_daemons.bed(
        peers, srv=[("_xmpp-server._tcp.fabrikam.test", "xmpp.fabrikam.test", 5269),
                    ("_xmpp-server._tcp.silent.test", "silent-host.test", 5998),
                    ("_xmpp-server._tcp.two.test", "blackhole.test", 5997, 0),
                    ("_xmpp-server._tcp.two.test", "xmpp.fabrikam.test", 5269, 10)])
    module_daemons.prosody(bed, "fabrikam", "127.0.0.12", ["fabrikam.test"])
    module_daemons.prosody(bed, "untrusted", "127.0.0.16", ["untrusted.test"],
                           ca=CA(bed.root, "other-ca"))
    module_daemons.prosody(bed, "notls", "127.0.0.15", ["notls.test"], tls=False)
    # A certificate of the bed's CA, but for another name.
    cert, key = bed.ca.issue("othername", ["elsewhere.test"])
    other = Prosody(bed.root, "othername", "127.0.0.18", ["othername.test"], bed.ca.cert,
                    cert, key)
    bed.servers.append(other)
    other.start()
    fg = module_daemons.fedgate(
        bed=bed, partners=[("notls.test", "--tls", "not-supported", "--sasl",
                            "not-supported"),
                           ("proxied.test", "--proxy-fqdn", "127.0.0.15:5269")],
        admins={"alice": ("administrator", "correct horse battery"),
                "victor": ("viewer", "viewer password")},
        gateway=("--stream-establishment-timeout", str(TIMEOUT)))
    return bed, fg.start()


def probe(fg, *args):
    """(rc, report, stderr, seconds)"""
    t0 = time.monotonic()
    rc, out, err = run(cli(fg, "probe", *args))
    return rc, out, err, time.monotonic() - t0


def untouched(fg):
    """What a probe must leave as it was: the audit log, the partners."""
    return (fg.cli("audit").stdout, fg.cli("partner", "export").stdout)


def no_trace(fg, domain):
    rows = fg.cli_json("status")
    assert not [r for r in rows if r["remote"] == domain], rows


def test_good_certificate_sasl_external_accepted(world):
    _, fg = world
    before = untouched(fg)
    rc, out, err, took = probe(fg, "fabrikam.test")
    assert rc == 0, out + err
    assert "DNS: _xmpp-server._tcp.fabrikam.test SRV: 0 0 5269 xmpp.fabrikam.test; " \
           "DNSSEC: not validated" in out, out
    assert "DNS: _xmpps-server._tcp.fabrikam.test SRV: no" in out, out
    assert "DNS: xmpp.fabrikam.test [127.0.0.12]:5269" in out
    # The bed's zone is unsigned and the resolver has no trust anchor for it.
    assert "DNS: addresses not validated by DNSSEC" in out, out
    assert "connected to xmpp.fabrikam.test [127.0.0.12]:5269" in out
    assert "STARTTLS: offered and required" in out, out
    # test-im's words for TLS and the certificate
    assert re.search(r"TLS: TLSv1\.[23] \S+; certificate of fabrikam\.test: the certificate "
                     r"chain is trusted; the certificate names fabrikam\.test as DNS-ID", out), out
    assert re.search(r"certificate of fabrikam\.test: valid from \d{4}-\d\d-\d\d to "
                     r"\d{4}-\d\d-\d\d \(in \d+ days\); extended key usage: TLS server, "
                     r"TLS client", out), out
    assert re.search(r"stream features after TLS: .*SASL mechanisms EXTERNAL", out), out
    assert "SASL EXTERNAL accepted by fabrikam.test" in out
    assert "  SASL over TLS: works" in out
    assert "with a new partner's default settings (tls required, sasl required, dialback " \
           "true: row 1, allows SASL over TLS): would authenticate with SASL over TLS" in out
    rows = re.findall(r"  row (\d+): .* -> (.+)", out)
    assert rows and rows[0][1] == "SASL over TLS", out
    assert [m for _, m in rows] == sorted((m for _, m in rows),
                                          key=["SASL over TLS", "TLS Dialback",
                                               "TCP Dialback"].index), out
    assert "probe of fabrikam.test: the settings probed would work" in out
    assert took < TIMEOUT
    assert untouched(fg) == before
    no_trace(fg, "fabrikam.test")


def test_json_report_and_settings_from_flags(world):
    _, fg = world
    r = fg.cli("probe", "fabrikam.test", "--tls", "required", "--sasl", "not-supported",
               "--dialback", "true", "--json")
    rep = json.loads(r.stdout)
    assert rep["domain"] == "fabrikam.test"
    assert rep["starttls"] == "required" and rep["sasl_external"] == "accepted"
    assert rep["certificate"]["trusted"] is True
    assert rep["dns"]["targets"] == [{"host": "xmpp.fabrikam.test", "address": "127.0.0.12",
                                      "port": 5269, "direct_tls": False}]
    assert rep["dns"]["dnssec"] is False
    assert rep["tcp"][0]["outcome"] == "connected"
    s = rep["settings"]
    assert (s["from"], s["tls"], s["sasl"], s["dialback"], s["row"]) == (
        "the settings given", "required", "not-supported", True, 13)
    # Prosody offers dialback after TLS: row 13 is TLS Dialback.
    assert rep["dialback"] == "offered"
    assert s["method"] == "TLS Dialback" and r.returncode == 0, rep
    assert rep["rows"][0]["method"] == "SASL over TLS"
    assert rep["complete"] is True and rep["elapsed_ms"] < TIMEOUT * 1000


def test_bad_settings_are_refused(world):
    _, fg = world
    r = fg.cli("probe", "fabrikam.test", "--tls", "not-supported")
    assert r.returncode == 1 and "not a valid row of the negotiation matrix" in r.stderr
    r = fg.cli("probe", "fabrikam.test", "--tls", "sometimes")
    assert r.returncode == 1 and "tls must be required, optional or not-supported" in r.stderr
    r = fg.cli("probe", "contoso.test")
    assert r.returncode == 1 and "one of our own domains" in r.stderr


def test_untrusted_ca(world):
    _, fg = world
    rc, out, err, took = probe(fg, "untrusted.test")
    assert rc == 1, out + err
    assert re.search(r"TLS: TLSv1\.[23] \S+; certificate of untrusted\.test: .*not trusted",
                     out), out
    # Prosody trusts us, so EXTERNAL is offered and accepted; we cannot use it.
    assert "SASL EXTERNAL accepted by untrusted.test" in out
    assert "SASL over TLS: the certificate cannot be trusted for SASL EXTERNAL" in out, out
    assert "would fail: the certificate cannot be trusted" in out, out
    # Dialback over TLS does not depend on the peer's chain.
    assert re.search(r"row 13: tls required, sasl not-supported, dialback true -> TLS Dialback",
                     out), out
    assert took < TIMEOUT


def test_certificate_for_another_name(world):
    _, fg = world
    rc, out, err, took = probe(fg, "othername.test")
    assert rc == 1, out + err
    assert re.search(r"certificate of othername\.test: the certificate chain is trusted; .*"
                     r"elsewhere\.test", out), out
    assert "would fail: the certificate cannot be trusted for SASL EXTERNAL" in out, out
    assert took < TIMEOUT


def test_no_starttls_partner_settings(world):
    _, fg = world
    rc, out, err, took = probe(fg, "notls.test")
    assert "STARTTLS: not offered" in out, out
    assert "dialback: offered" in out
    assert "with the partner's settings (tls not-supported, sasl not-supported, dialback " \
           "true: row 17, allows TCP Dialback): would authenticate with TCP Dialback" in out, out
    assert rc == 0, out + err
    assert "SASL over TLS: no STARTTLS offered but the settings require TLS" in out, out
    rc, out, err, took = probe(fg, "notls.test", "--tls", "required", "--sasl", "required")
    assert rc == 1
    assert "would fail: no STARTTLS offered but the settings require TLS" in out, out
    assert took < TIMEOUT


def test_partner_proxy_fqdn_replaces_srv(world):
    _, fg = world
    rc, out, err, took = probe(fg, "proxied.test")
    assert "the partner's proxy_fqdn 127.0.0.15:5269 replaces the SRV targets" in out, out
    assert "connected to 127.0.0.15 [127.0.0.15]:5269" in out, out
    assert "DNS: addresses" not in out, out  # an address is not a lookup
    # The notls Prosody does not serve proxied.test.
    assert "proxied.test closed the stream with <host-unknown/>" in out, out
    assert rc == 1 and took < TIMEOUT


def test_closed_port(world):
    _, fg = world
    rc, out, err, took = probe(fg, "closed.test")
    assert rc == 1
    assert "DNS: closed.test [127.0.0.13]:5269" in out, out
    assert re.search(r"connect failed: Connection refused \(closed\.test \[127\.0\.0\.13\]:5269\)",
                     out), out
    assert "cannot connect to closed.test" in out
    assert "methods with this server: unknown" in out
    assert took < TIMEOUT
    no_trace(fg, "closed.test")


def test_nxdomain(world):
    _, fg = world
    rc, out, err, took = probe(fg, "nxdomain.test")
    assert rc == 1
    assert "DNS: _xmpp-server._tcp.nxdomain.test SRV: no such domain (NXDOMAIN)" in out, out
    assert re.search(r"DNS: .*nxdomain\.test", out.split("SRV:")[-1]), out
    assert "connected to" not in out
    assert took < TIMEOUT


def test_each_target_gets_its_share_of_the_time(world):
    """A first target whose SYNs go unanswered (a full accept queue) times
    out after its share of the 5 s, and the next target is still tried."""
    _, fg = world
    lsock = socket.socket()
    lsock.bind(("127.0.0.19", 5997))
    lsock.listen(0)
    filler = socket.create_connection(("127.0.0.19", 5997))  # fills the queue
    try:
        rc, out, err, took = probe(fg, "two.test")
    finally:
        filler.close()
        lsock.close()
    # SRV records as answered; the targets in RFC 2782 order
    assert re.search(r"DNS: _xmpp-server\._tcp\.two\.test SRV: .*0 0 5997 blackhole\.test",
                     out), out
    assert "DNS: blackhole.test [127.0.0.19]:5997\n  DNS: xmpp.fabrikam.test [127.0.0.12]:5269" \
        in out, out
    assert "connect timed out after 2 s (blackhole.test [127.0.0.19]:5997)" in out, out
    assert "connected to xmpp.fabrikam.test [127.0.0.12]:5269" in out, out
    # Prosody does not serve two.test: its stream error is the report's end.
    assert "two.test closed the stream with <host-unknown/>" in out, out
    assert rc == 1 and 2 <= took < TIMEOUT, took


def test_silent_server_stops_at_the_establishment_timeout(world):
    _, fg = world
    lsock = socket.socket()
    lsock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    lsock.bind(("127.0.0.17", 5998))
    lsock.listen(4)
    held = []
    threading.Thread(target=lambda: held.append(lsock.accept()), daemon=True).start()
    try:
        rc, out, err, took = probe(fg, "silent.test")
    finally:
        lsock.close()
        for conn, _ in held:
            conn.close()
    assert rc == 1
    assert "connected to silent-host.test [127.0.0.17]:5998" in out, out
    assert f"no answer within {TIMEOUT} seconds (stream_establishment_timeout) while waiting " \
           "for the stream header; the report stops here" in out, out
    assert TIMEOUT - 0.5 <= took <= TIMEOUT + 2, took
    no_trace(fg, "silent.test")


def test_api_probe_and_the_viewer_role(world):
    _, fg = world
    def post(who, pw, body):
        tok = fg.cli("admin", "token", who).stdout.strip()
        req = urllib.request.Request(f"http://{fg.addr}:5280/api/v1/probe",
                                     data=json.dumps(body).encode(), method="POST",
                                     headers={"Authorization": f"Bearer {tok}",
                                              "Content-Type": "application/json"})
        try:
            with urllib.request.urlopen(req, timeout=30) as r:
                return r.status, json.load(r)
        except urllib.error.HTTPError as e:
            return e.code, json.load(e)
    before = untouched(fg)
    status, body = post("alice", None, {"domain": "fabrikam.test", "sasl": "not-supported",
                                        "tls": "required", "dialback": True})
    assert status == 200, body
    assert body["result"]["settings"]["method"] == "TLS Dialback"
    assert any("SASL EXTERNAL accepted" in s for s in body["result"]["steps"])
    # Settings that would not work: 422 with the whole report.
    status, body = post("alice", None, {"domain": "untrusted.test"})
    assert status == 422, body
    assert body["result"]["settings"]["works"] is False
    assert body["result"]["certificate"]["trusted"] is False
    status, body = post("alice", None, {"domain": "fabrikam.test", "tls": 3})
    assert status == 422 and body["errors"][0]["field"] == "tls", body
    status, body = post("victor", None, {"domain": "fabrikam.test"})
    assert status == 403, body
    # A probe changes no configuration: the refusal says what it does.
    assert body["errors"][0]["message"] == \
        "probe acts on the running daemon; your role (viewer) may only read", body
    assert untouched(fg)[1] == before[1]


def test_without_the_daemon_says_to_start_it(daemons):
    fg = daemons.fedgate()  # not started
    r = fg.cli("probe", "fabrikam.test")
    assert r.returncode == 1
    assert "start 'fedgate serve' first" in r.stderr, r.stderr
    r = fg.cli("probe", "fabrikam.test", "--what-if")
    assert r.returncode == 2 and "saves nothing" in r.stderr, r.stderr


def test_stopping_daemon_answers_a_running_probe(world):
    """Last in this module: it stops the daemon. A probe under way is
    answered with what it has, and the daemon exits cleanly (no sanitizer
    report, status 0: Fedgate.stop checks)."""
    _, fg = world
    lsock = socket.socket()
    lsock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    lsock.bind(("127.0.0.17", 5998))
    lsock.listen(4)

    async def scenario():
        import asyncio
        task = asyncio.ensure_future(cli(fg, "probe", "silent.test"))
        await asyncio.sleep(1)
        await asyncio.get_running_loop().run_in_executor(None, fg.stop)
        return await task
    try:
        rc, out, err = run(scenario())
    finally:
        lsock.close()
    assert rc == 1, out + err
    assert "connected to silent-host.test [127.0.0.17]:5998" in out, out + err
    assert "the daemon is stopping" in out, out + err

"""DANE (RFC 7673) on fedgate's outbound streams to a real Prosody: the
partners' zones are served by unbound from auth-zone (tests/bed SignedDNS),
three signed with ldns-signzone and one not, and fedgate validates with
[dns] trust_anchor = the DS records of the signed ones.

  fabrikam.test   signed, TLSA 3 1 1 = Prosody's key        dane required
  tailspin.test   signed, TLSA 3 1 1 = some other key       dane required
  northwind.test  unsigned, TLSA 3 1 1 = Prosody's key      dane required
  adatum.test     signed, no TLSA                           dane opportunistic
  litware.test    signed, two SRV targets: the first's TLSA   dane required
                  is wrong, the second's is Prosody's key
  woodgrove.test  signed, but the trust anchor is another    dane required
                  key's: every answer is bogus
  fourthcoffee.test  signed, only _xmpps-server (Direct TLS,  dane required
                  port 5270), TLSA at _5270._tcp = Prosody's key
"""
import asyncio
import hashlib
import os
import re
import subprocess

import pytest

from bed import SignedDNS, spki_sha256
from clients import User, cli, run
from fgtest import FEDGATE

PROSODY_ADDR = "127.0.0.12"
PROSODY_ADDR2 = "127.0.0.13"  # the same Prosody, litware.test's second target
DOMAINS = ("fabrikam.test", "tailspin.test", "northwind.test", "adatum.test", "litware.test",
           "woodgrove.test", "fourthcoffee.test")


def zone(domain, tlsa=None):
    records = [f"@ IN A {PROSODY_ADDR}", f"xmpp IN A {PROSODY_ADDR}",
               f"_xmpp-server._tcp IN SRV 0 0 5269 xmpp.{domain}."]
    if tlsa:
        records.append(f"_5269._tcp.xmpp IN TLSA 3 1 1 {tlsa}")
    return records


@pytest.fixture(scope="module")
def world(module_daemons):
    bed = module_daemons.bed({d: PROSODY_ADDR for d in DOMAINS})
    prosody = module_daemons.prosody(bed, "dane", PROSODY_ADDR, list(DOMAINS),
                                     extra=f'interfaces = {{ "{PROSODY_ADDR}", '
                                           f'"{PROSODY_ADDR2}" }}\n'
                                           's2s_direct_tls_ports = { 5270 }',
                                     users={"bob@fabrikam.test": "bobpass",
                                            "dave@adatum.test": "davepass"})
    key = spki_sha256(os.path.join(bed.ca.dir, "dane.pem"))
    wrong = hashlib.sha256(b"not the key of tailspin.test").hexdigest()
    dns = SignedDNS(bed.root)
    dns.add_zone("fabrikam.test", zone("fabrikam.test", key))
    dns.add_zone("tailspin.test", zone("tailspin.test", wrong))
    dns.add_zone("northwind.test", zone("northwind.test", key), signed=False)
    dns.add_zone("adatum.test", zone("adatum.test"))
    dns.add_zone("litware.test", [
        f"@ IN A {PROSODY_ADDR}", f"xmpp1 IN A {PROSODY_ADDR}", f"xmpp2 IN A {PROSODY_ADDR2}",
        "_xmpp-server._tcp IN SRV 0 0 5269 xmpp1.litware.test.",
        "_xmpp-server._tcp IN SRV 10 0 5269 xmpp2.litware.test.",
        f"_5269._tcp.xmpp1 IN TLSA 3 1 1 {wrong}", f"_5269._tcp.xmpp2 IN TLSA 3 1 1 {key}"])
    dns.add_zone("woodgrove.test", zone("woodgrove.test", key), bogus=True)
    dns.add_zone("fourthcoffee.test", [
        f"@ IN A {PROSODY_ADDR}", f"xmpp IN A {PROSODY_ADDR}",
        "_xmpps-server._tcp IN SRV 0 0 5270 xmpp.fourthcoffee.test.",
        f"_5270._tcp.xmpp IN TLSA 3 1 1 {key}"])
    # The bed stops its servers in reverse order; unbound goes with them.
    bed.servers.append(dns)
    dns.start()
    fg = module_daemons.fedgate(bed=bed, gateway=("--stream-establishment-timeout", "10"))
    text = open(fg.conf).read()
    text = re.sub(r"(?m)^resolv_conf = .*$",
                  f"resolv_conf = {dns.resolv_conf}\ntrust_anchor = {dns.anchors}", text)
    open(fg.conf, "w").write(text)
    for domain, mode in (("fabrikam.test", "required"), ("tailspin.test", "required"),
                         ("northwind.test", "required"), ("adatum.test", "opportunistic"),
                         ("litware.test", "required"), ("woodgrove.test", "required"),
                         ("fourthcoffee.test", "required")):
        r = fg.cli("partner", "new", "--domain", domain, "--dane", mode)
        assert r.returncode == 0, r.stderr
    return bed, prosody, fg.start(), key, wrong


def outbound_row(fg, remote):
    rows = fg.cli_json("status")
    rows = rows.get("streams", rows) if isinstance(rows, dict) else rows
    return next((r for r in rows if r.get("direction") == "out" and r.get("remote") == remote
                 and r.get("state") == "ready"), None)


def test_matching_tlsa_lets_a_required_partner_federate(world):
    bed, prosody, fg, key, _ = world

    async def scenario():
        bob = User("bob@fabrikam.test/desk", "bobpass", bed.ca.cert)
        bob.connect((PROSODY_ADDR, 5222))
        await asyncio.wait_for(bob.online.wait(), 20)
        rc, out, err = await cli(fg, "test-im", "--wait", "0", "--to", "bob@fabrikam.test",
                                 "--body", "hello over DANE")
        msg = await asyncio.wait_for(bob.inbox.get(), 15) if rc == 0 else None
        bob.disconnect()
        await asyncio.wait_for(bob.disconnected, 5)
        return rc, out, err, msg

    rc, out, err, msg = run(scenario())
    assert rc == 0, out + err
    assert ("DANE (dane = required): SRV _xmpp-server._tcp.fabrikam.test: DNSSEC-secure"
            in out), out
    assert (f"DANE: TLSA _5269._tcp.xmpp.fabrikam.test: DNSSEC-secure, 1 record: 3 1 1 "
            f"{key[:64]}" in out), out
    assert "DANE: the certificate matches a TLSA record at _5269._tcp.xmpp.fabrikam.test" in out
    assert "DANE-EE(3)" in out
    assert "SASL EXTERNAL accepted by fabrikam.test" in out, out
    assert msg["body"] == "hello over DANE"
    row = outbound_row(fg, "fabrikam.test")
    assert row is not None and row["dane"] == "verified", row
    text = fg.cli("status").stdout
    assert re.search(r"out +contoso\.test +fabrikam\.test .*\n(?:      .*\n)*?      dane: "
                     r"verified", text), text


def test_wrong_tlsa_refuses_with_the_key_to_publish(world):
    _, _, fg, key, wrong = world
    rc, out, err = run(cli(fg, "test-im", "--to", "x@tailspin.test"))
    assert rc == 1, out + err
    assert "DANE mismatch (dane = required)" in err, out + err
    assert f"has SPKI SHA-256 {key}" in err, err
    assert "_5269._tcp.xmpp.tailspin.test" in err
    # The route's failure record carries it to status...
    text = fg.cli("status").stdout
    assert re.search(r"reason: .*DANE mismatch .*" + key, text), text
    # ...and probe shows the lookup and the mismatch.
    r = fg.cli("probe", "tailspin.test")
    assert ("DANE: TLSA _5269._tcp.xmpp.tailspin.test: DNSSEC-secure, 1 record: 3 1 1 "
            + wrong[:64]) in r.stdout, r.stdout + r.stderr
    assert "DANE mismatch: no TLSA record at _5269._tcp.xmpp.tailspin.test" in r.stdout
    assert f"SPKI SHA-256 is {key}" in r.stdout


def test_a_mismatch_moves_on_to_the_next_target(world):
    """RFC 7672 2.2.2: a host whose certificate matches none of its TLSA
    records is left for the next SRV target, which may pass."""
    _, _, fg, key, _ = world
    rc, out, err = run(cli(fg, "test-im", "--wait", "0", "--to", "x@litware.test"))
    assert rc == 0, out + err
    assert re.search(r"DANE mismatch \(dane = required\): the certificate of litware\.test at "
                     r"xmpp1\.litware\.test:5269 has SPKI SHA-256 " + key, out), out
    assert "connected to xmpp2.litware.test [127.0.0.13]:5269" in out, out
    assert "DANE: the certificate matches a TLSA record at _5269._tcp.xmpp2.litware.test" in out
    assert "SASL EXTERNAL accepted by litware.test" in out, out
    row = outbound_row(fg, "litware.test")
    assert row is not None and row["dane"] == "verified", row


def test_dane_off_looks_nothing_up(world):
    """The same wrong TLSA record, with the partner's dane off: no TLSA
    lookup, the CA-signed certificate is what counts, and probe reports the
    records without letting them decide its verdict."""
    _, _, fg, _, _ = world
    r = fg.cli("partner", "set", "tailspin.test", "--dane", "off")
    assert r.returncode == 0, r.stderr
    try:
        rc, out, err = run(cli(fg, "test-im", "--wait", "0", "--to", "x@tailspin.test"))
        assert rc == 0, out + err
        assert "DANE" not in out + err, out + err
        assert "SASL EXTERNAL accepted by tailspin.test" in out, out
        r = fg.cli("probe", "tailspin.test")
        assert r.returncode == 0, r.stdout + r.stderr
        assert "DANE: TLSA _5269._tcp.xmpp.tailspin.test: DNSSEC-secure, 1 record" in r.stdout
        assert "DANE: not checked against the certificate (dane = off" in r.stdout, r.stdout
        assert "DANE mismatch" not in r.stdout
    finally:
        r = fg.cli("partner", "set", "tailspin.test", "--dane", "required")
        assert r.returncode == 0, r.stderr


def test_unsigned_zone_refuses_a_required_partner(world):
    _, _, fg, _, _ = world
    rc, out, err = run(cli(fg, "test-im", "--to", "x@northwind.test"))
    assert rc == 1, out + err
    assert "refused by the partner setting dane = required" in err, err
    assert "the zone is not signed" in err, err
    assert "connected to" not in out + err  # never tried
    # The partner's history has the refusal in the route's words.
    h = fg.cli_json("partner", "history", "northwind.test")
    failed = [e for e in h["events"] if e["event"] == "failed"]
    assert failed and "the zone is not signed" in failed[-1]["reason"], h["events"]
    r = fg.cli("probe", "northwind.test")
    assert "DANE: SRV _xmpp-server._tcp.northwind.test: not DNSSEC-secure" in r.stdout, r.stdout
    assert "DANE: TLSA _5269._tcp.xmpp.northwind.test: not DNSSEC-signed" in r.stdout, r.stdout


def test_opportunistic_without_tlsa_still_federates(world):
    _, _, fg, _, _ = world
    rc, out, err = run(cli(fg, "test-im", "--wait", "0", "--to", "dave@adatum.test"))
    assert rc == 0, out + err
    assert "DANE: TLSA _5269._tcp.xmpp.adatum.test: DNSSEC-secure, no TLSA records" in out, out
    assert "going on without DANE (dane = opportunistic)" in out, out
    assert "SASL EXTERNAL accepted by adatum.test" in out, out
    row = outbound_row(fg, "adatum.test")
    assert row is not None and row["dane"] == "none", row


def test_required_without_tlsa_refuses(world):
    """The same signed zone without TLSA records, now with dane required."""
    _, _, fg, _, _ = world
    r = fg.cli("partner", "set", "adatum.test", "--dane", "required")
    assert r.returncode == 0, r.stderr
    rc, out, err = run(cli(fg, "test-im", "--to", "dave@adatum.test"))
    assert rc == 1, out + err
    assert ("no TLSA records at _5269._tcp.xmpp.adatum.test (DNSSEC-secure denial)"
            in err), out + err


def test_check_reports_the_trust_anchor(world):
    _, _, fg, _, _ = world
    r = fg.cli("check")
    assert re.search(r"ok +DNSSEC trust anchor for DANE: \[dns\] trust_anchor \S+anchors\.ds",
                     r.stdout), r.stdout
    text = open(fg.conf).read()
    missing = re.sub(r"(?m)^trust_anchor = .*$", "trust_anchor = /nonexistent/root.key", text)
    path = fg.conf + ".missing"
    open(path, "w").write(missing)
    r = subprocess.run([FEDGATE, "check", "-c", path], capture_output=True, text=True,
                       timeout=60)
    assert re.search(r"warning +cannot read the DNSSEC trust anchor /nonexistent/root\.key",
                     r.stdout), r.stdout


def test_bogus_answers_refuse_required_but_not_opportunistic(world):
    """A zone whose signatures do not validate: required refuses and says
    so; opportunistic takes it for a path without DNSSEC (not even the SRV
    answer validates) and federates without DANE."""
    _, _, fg, _, _ = world
    rc, out, err = run(cli(fg, "test-im", "--to", "x@woodgrove.test"))
    assert rc == 1, out + err
    assert re.search(r"refused by the partner setting dane = required: DANE: DNSSEC bogus: SRV "
                     r"_xmpp-server\._tcp\.woodgrove\.test \(.+\)", err), err
    r = fg.cli("partner", "set", "woodgrove.test", "--dane", "opportunistic")
    assert r.returncode == 0, r.stderr
    rc, out, err = run(cli(fg, "test-im", "--wait", "0", "--to", "x@woodgrove.test"))
    assert rc == 0, out + err
    assert "going on without DANE (dane = opportunistic)" in out, out
    assert "SASL EXTERNAL accepted by woodgrove.test" in out, out


def test_direct_tls_target_verified_with_its_own_port(world):
    """XEP-0368 and RFC 7673 together: the _xmpps-server target's TLSA
    records are at its own port, and its SRV answer is the one that must be
    secure."""
    _, _, fg, _, _ = world
    rc, out, err = run(cli(fg, "test-im", "--wait", "0", "--to", "x@fourthcoffee.test"))
    assert rc == 0, out + err
    assert "DANE: SRV _xmpps-server._tcp.fourthcoffee.test: DNSSEC-secure" in out, out
    assert "DANE: TLSA _5270._tcp.xmpp.fourthcoffee.test: DNSSEC-secure, 1 record" in out, out
    assert "Direct TLS (XEP-0368) with fourthcoffee.test" in out, out
    assert ("DANE: the certificate matches a TLSA record at _5270._tcp.xmpp.fourthcoffee.test"
            in out), out
    assert "SASL EXTERNAL accepted by fourthcoffee.test" in out, out
    row = outbound_row(fg, "fourthcoffee.test")
    assert row is not None and row["dane"] == "verified", row

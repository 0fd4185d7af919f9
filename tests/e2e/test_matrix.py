"""SPEC §2 against a real Prosody, both directions: for each of the 11
saveable rows set on fedgate's side, a message crosses the federation each
way and `fedgate status` reports the method the row prefers. Where the peer
cannot meet the row, nothing weaker is used and the sender gets an error.

Peers (all Prosody 0.12, certificates from the bed's CA unless said):
  fabrikam.test   127.0.0.12  TLS, strict (s2s_secure_auth)
  plain.test      127.0.0.14  TLS for clients, but s2s encryption optional
  notls.test      127.0.0.15  no TLS at all
  untrusted.test  127.0.0.16  certificate from a CA fedgate does not trust
"""
import re

import pytest

from bed import CA
from clients import cli, round_trip, run

SASL, TLSDB, TCPDB = "SASL over TLS", "TLS Dialback", "TCP Dialback"

# row: (tls, sasl, dialback, method expected in both directions)
ROWS = {
    1: ("required", "required", "true", SASL),
    2: ("required", "required", "false", SASL),
    3: ("optional", "required", "true", SASL),
    4: ("optional", "required", "false", SASL),
    7: ("required", "optional", "true", SASL),
    8: ("required", "optional", "false", SASL),
    9: ("optional", "optional", "true", SASL),
    10: ("optional", "optional", "false", SASL),
    13: ("required", "not-supported", "true", TLSDB),
    15: ("optional", "not-supported", "true", TLSDB),
    17: ("not-supported", "not-supported", "true", TCPDB),
}


@pytest.fixture(scope="module")
def world(module_daemons):
    peers = {"fabrikam.test": "127.0.0.12", "plain.test": "127.0.0.14",
             "notls.test": "127.0.0.15", "untrusted.test": "127.0.0.16"}
    bed = module_daemons.bed(peers)
    lax = "s2s_require_encryption = false\ns2s_secure_auth = false\n"

    def peer(domain, **kw):
        """The Prosody serving domain, named after it, with bob on it."""
        return module_daemons.prosody(bed, domain.split(".")[0], peers[domain], [domain],
                                      users={f"bob@{domain}": "bobpass"}, **kw)
    servers = {
        "fabrikam.test": peer("fabrikam.test"),
        "plain.test": peer("plain.test", extra=lax),
        "notls.test": peer("notls.test", tls=False),
        "untrusted.test": peer("untrusted.test", ca=CA(bed.root, "other-ca")),
    }
    fg = module_daemons.fedgate(bed=bed, partners=list(peers),
                                gateway=("--stream-establishment-timeout", "10"))
    return bed, servers, fg.start()


def methods(fg, domain):
    rows = fg.cli_json("status")
    out = {r["method"] for r in rows if r["direction"] == "out" and r["remote"] == domain
           and r["state"] == "ready"}
    inb = {r["method"] for r in rows if r["direction"] == "in" and r["remote"] == domain
           and r["state"] == "ready"}
    return out, inb


@pytest.mark.parametrize("row", sorted(ROWS))
def test_row_both_directions(world, row):
    bed, servers, fg = world
    tls, sasl, db, want = ROWS[row]
    domain = "plain.test" if row == 17 else "fabrikam.test"
    r = fg.cli("partner", "set", domain, "--tls", tls, "--sasl", sasl, "--dialback", db)
    assert r.returncode == 0, r.stderr
    if "no change" not in r.stdout:
        fg.wait_log(rf"applying partner {re.escape(domain)}: .*tls={tls} sasl={sasl} "
                rf"dialback={db}")
    p = fg.cli_json("partner", "get", domain)
    assert (p["tls"], p["sasl"], p["dialback"]) == (tls, sasl, db == "true")
    rc, report, got, bounce = round_trip(fg, bed.ca.cert, f"bob@{domain}", "bobpass",
                                         servers[domain].addr, body="matrix")
    assert rc == 0, report
    assert f"authenticated with {want}" in report, report
    assert got["body"] == "matrix"
    assert bounce["error"]["condition"] == "service-unavailable"
    out, inb = methods(fg, domain)
    assert out == {want}, (out, report)
    assert inb == {want}, (inb, fg.read_log()[-3000:])
    # What was done, not what was allowed: one authentication, the preferred.
    done = re.findall(r"authenticated with (.+)", report)
    assert done == [want], report
    if want == SASL:
        assert "dialback key sent" not in report


def test_tls_required_but_peer_offers_none(world):
    """Row 1 with notls.test, a Prosody without TLS: no stream, nothing
    weaker, the sender told why."""
    _, _, fg = world
    rc, out, err = run(cli(fg, "test-im", "--to", "bob@notls.test"))
    assert rc == 1
    assert "notls.test offers no STARTTLS but its partner settings require TLS" in err
    out_m, _ = methods(fg, "notls.test")
    assert out_m == set()


def test_untrusted_certificate_with_dialback_off(world):
    """untrusted.test shows a certificate of a CA fedgate does not trust:
    with dialback off (row 2) nothing can succeed and nothing weaker runs."""
    _, _, fg = world
    assert fg.cli("partner", "set", "untrusted.test", "--dialback", "false").returncode == 0
    rc, out, err = run(cli(fg, "test-im", "--to", "bob@untrusted.test"))
    assert rc == 1
    assert "certificate of untrusted.test cannot be trusted" in err, err
    assert "allow no other method" in err


def test_untrusted_certificate_with_dialback_on_uses_tls_dialback(world):
    """Row 7 with the same peer: SASL is impossible (certificate), so TLS
    Dialback, never TCP Dialback."""
    bed, servers, fg = world
    assert fg.cli("partner", "set", "untrusted.test", "--tls", "required", "--sasl", "optional",
                  "--dialback", "true").returncode == 0
    rc, out, err = run(cli(fg, "test-im", "--to", "bob@untrusted.test"))
    assert rc == 0, out + err
    assert "authenticated with TLS Dialback" in out
    assert "TCP Dialback" not in out + err

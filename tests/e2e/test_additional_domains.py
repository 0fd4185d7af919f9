"""An additional domain federates under its partner's settings, and only
while it is listed: corp.fabrikam.test (served by the same Prosody as
fabrikam.test) is refused both ways until `partner set fabrikam.test
--add-domain corp.fabrikam.test`, then uses fabrikam's method, and follows
fabrikam's settings when they change."""
import os
import sys

import pytest

sys.path.insert(0, os.path.dirname(__file__))
sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "bed"))
from bed import Bed  # noqa: E402
from fgtest import Fedgate  # noqa: E402
from clients import round_trip  # noqa: E402


@pytest.fixture(scope="module")
def world():
    bed = Bed()
    for d in ("fabrikam.test", "corp.fabrikam.test"):
        bed.dns.add_a(d, "127.0.0.12")
    bed.dns.add_a("contoso.test", "127.0.0.11")
    bed.dns.start()
    prosody = bed.prosody("fabrikam", "127.0.0.12", ["fabrikam.test", "corp.fabrikam.test"])
    prosody.register("carol", "corp.fabrikam.test", "carolpass")
    prosody.start()
    fg = Fedgate(domain="contoso.test", addr="127.0.0.11").use_bed_certificate(bed)
    assert fg.cli("partner", "new", "--domain", "fabrikam.test").returncode == 0
    assert fg.cli("gateway", "set", "--stream-establishment-timeout", "10").returncode == 0
    fg.start()
    yield bed, fg
    fg.stop()
    bed.stop()


def carol_round(bed, fg):
    return round_trip(fg, bed.ca.cert, "carol@corp.fabrikam.test", "carolpass", "127.0.0.12")


def test_unlisted_additional_domain_is_refused_both_ways(world):
    bed, fg = world
    rc, report, got, back = carol_round(bed, fg)
    assert rc == 1 and "corp.fabrikam.test is not an allowed federation partner" in report
    assert got is None
    # Prosody could not get a stream to contoso.test accepted: carol hears so.
    assert back["type"] == "error"
    fg.wait_log(r"corp\.fabrikam\.test is not an allowed federation partner of contoso\.test")


def test_listed_additional_domain_uses_the_partners_settings(world):
    bed, fg = world
    assert fg.cli("partner", "set", "fabrikam.test", "--add-domain",
                  "corp.fabrikam.test").returncode == 0
    rc, report, got, back = carol_round(bed, fg)
    assert rc == 0, report
    assert "authenticated with SASL over TLS" in report  # fabrikam's row 1
    assert got is not None
    assert back["error"]["condition"] == "service-unavailable"
    # fabrikam's settings change: corp follows (row 13: TLS Dialback only).
    assert fg.cli("partner", "set", "fabrikam.test", "--sasl", "not-supported").returncode == 0
    rc, report, got, back = carol_round(bed, fg)
    assert rc == 0, report
    assert "authenticated with TLS Dialback" in report
    rows = fg.cli_json("status")
    assert any(r["direction"] == "in" and r["remote"] == "corp.fabrikam.test" and
               r["method"] == "TLS Dialback" and r["state"] == "ready" for r in rows), rows

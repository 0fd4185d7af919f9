"""An additional domain federates under its partner's settings, and only
while it is listed: corp.fabrikam.test (served by the same Prosody as
fabrikam.test) is refused both ways until `partner set fabrikam.test
--add-domain corp.fabrikam.test`, then uses fabrikam's method, and follows
fabrikam's settings when they change."""
import pytest

from clients import round_trip


@pytest.fixture(scope="module")
def world(module_daemons):
    bed = module_daemons.bed({"fabrikam.test": "127.0.0.12", "corp.fabrikam.test": "127.0.0.12"})
    module_daemons.prosody(bed, "fabrikam", "127.0.0.12", ["fabrikam.test", "corp.fabrikam.test"],
                           users={"carol@corp.fabrikam.test": "carolpass"})
    fg = module_daemons.fedgate(bed=bed, partners=["fabrikam.test"],
                                gateway=("--stream-establishment-timeout", "10"))
    return bed, fg.start()


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

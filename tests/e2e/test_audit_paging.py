"""The audit log in pages: `audit --filter --limit --offset` from the CLI
(with and without the daemon) and GET /api/v1/audit?filter=&limit=&offset=,
the filter applied before the page, pages counted from the newest change,
"total" for a pager, and counts that are not counts refused with how to
write one."""
import pytest

from webclient import Client

BASE = "http://127.0.0.1:5280"


@pytest.fixture
def fg(daemons):
    return daemons.fedgate(admins={"alice": ("administrator", "correct horse battery")})


def make_partners(fg, n):
    for i in range(n):
        kind = "odd" if i % 2 else "even"
        r = fg.cli("partner", "new", f"p{i:02d}.{kind}.test")
        assert r.returncode == 0, r.stderr


def targets(rows):
    return [r["target"] for r in rows]


def test_audit_pages_from_the_cli(fg):
    make_partners(fg, 12)
    everything = fg.cli_json("audit")
    base = len(everything) - 12  # the admin account's own row
    assert targets(everything)[base:] == [f"p{i:02d}.{'odd' if i % 2 else 'even'}.test"
                                          for i in range(12)]
    # Page 1 is the newest five, in the order they happened.
    assert targets(fg.cli_json("audit", "--limit", "5")) == [
        "p07.odd.test", "p08.even.test", "p09.odd.test", "p10.even.test", "p11.odd.test"]
    assert targets(fg.cli_json("audit", "--limit", "5", "--offset", "5")) == [
        "p02.even.test", "p03.odd.test", "p04.even.test", "p05.odd.test", "p06.even.test"]
    # The filter first: page 2 of the odd ones is the older odd ones.
    assert targets(fg.cli_json("audit", "--filter", "ODD.test", "--limit", "4",
                               "--offset", "4")) == ["p01.odd.test", "p03.odd.test"]
    # For people: the table, then how many were left out and how to see them.
    r = fg.cli("audit", "--limit", "2")
    assert r.returncode == 0, r.stderr
    assert r.stdout.count(" via cli: partner new ") == 2
    assert f"2 of {base + 12} change(s) shown (0 newer skipped)" in r.stdout
    assert "--offset" in r.stdout
    # Not a count: refused with what to write instead, exit status 2.
    for args, needle in ((("--limit", "ten"), "--limit takes a number"),
                         (("--offset", "-3"), "--offset takes how many"),
                         (("--limit",), "--limit")):
        r = fg.cli("audit", *args)
        assert r.returncode != 0 and needle in r.stderr, (args, r.stderr)


def test_audit_pages_from_the_api_and_the_daemon(fg):
    fg.start()
    make_partners(fg, 7)
    token = fg.cli("admin", "token", "alice").stdout.strip()
    api = Client(BASE, token=token)
    r = api.get("/api/v1/audit?filter=even&limit=2&offset=2")
    assert r.status == 200, r.text
    body = r.json()
    assert targets(body["result"]) == ["p00.even.test", "p02.even.test"]
    assert body["total"] == 4
    assert "2 of 4 change(s) shown" in body["message"]
    # The token just made is the newest change.
    r = api.get("/api/v1/audit?limit=3")
    assert targets(r.json()["result"]) == ["p05.odd.test", "p06.even.test", "alice"]
    assert api.get("/api/v1/audit?limit=many").status == 400
    assert "--limit takes a number" in api.get("/api/v1/audit?limit=many").text
    # The CLI through the control socket agrees with the API.
    assert targets(fg.cli_json("audit", "--filter", "even", "--limit", "2",
                               "--offset", "2")) == ["p00.even.test", "p02.even.test"]

"""Who tried to federate with us (issue 13, item 4): a server that opens a
stream as a domain that is not a partner, and a local user's stanza to such
a domain, are both refused (as before) and now counted per domain, for
`fedgate status --refused` and GET /api/v1/status?refused=1; once the domain
becomes a partner it leaves the list."""
import json
import re

import pytest

from c2sclient import Client as C2S
from fgtest import Peer
from webclient import Client as Web

PW = "alice's password"


@pytest.fixture
def fg(daemons):
    return daemons.fedgate(users={"alice@contoso.test": PW},
                           admins={"mon": ("viewer", "monitoring password")}).start()


def refused(fg):
    r = fg.cli("status", "--refused", "--json")
    assert r.returncode == 0, r.stderr
    return {row["domain"]: row for row in json.loads(r.stdout)}


def knock(domain):
    """A server that says it is domain: refused at its header, as before."""
    p = Peer()
    p.open(to="contoso.test", frm=domain)
    assert p.wait_header() is not None
    cond, text = p.stream_error()
    assert cond == "policy-violation" and "not an allowed federation partner" in text, text


def test_inbound_and_outbound_refusals_are_counted_per_domain(fg):
    assert refused(fg) == {}
    r = fg.cli("status", "--refused")
    assert "no domain that is not a partner has tried to federate" in r.stdout, r.stdout
    knock("stranger.test")
    knock("stranger.test")
    knock("other.test")
    alice = C2S()
    alice.login("alice", PW, resource="r")
    alice.send("<message to='bob@faraway.test' id='m1' type='chat'><body>hi</body></message>")
    el = alice.next_element()
    assert el is not None and el != "close" and el.get("type") == "error", el
    rows = refused(fg)
    assert set(rows) == {"stranger.test", "other.test", "faraway.test"}, rows
    assert rows["stranger.test"]["inbound"] == 2 and rows["stranger.test"]["outbound"] == 0
    assert rows["stranger.test"]["last_from"] == "127.0.0.1", rows
    assert rows["faraway.test"]["outbound"] == 1 and rows["faraway.test"]["inbound"] == 0
    assert rows["faraway.test"]["last_from"] == "alice@contoso.test", rows
    for row in rows.values():
        assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", row["last"]), row
    # The table for admins, with the way to add one.
    text = fg.cli("status", "--refused").stdout
    assert re.search(r"(?m)^stranger\.test +2 +0 ", text), text
    assert "fedgate partner new DOMAIN" in text
    # The API, to a viewer too (it reads nothing secret).
    token = fg.cli("admin", "token", "mon").stdout.strip()
    api = Web("http://127.0.0.1:5280", token=token)
    resp = api.get("/api/v1/status?refused=1")
    assert resp.status == 200, resp.body
    assert {row["domain"] for row in json.loads(resp.body)["result"]} == set(rows)
    # Plain status is unchanged.
    assert all("domain" not in row for row in json.loads(api.get("/api/v1/status").body)
               ["result"])
    # Once a partner, no longer refused.
    assert fg.cli("partner", "new", "stranger.test").returncode == 0
    assert set(refused(fg)) == {"other.test", "faraway.test"}
    alice.close()


def test_the_table_is_bounded(fg):
    """A peer cannot grow it without limit: 500 domains at most, the least
    recently refused go first."""
    for i in range(510):
        # Each waits for its refusal: a peer that hangs up at once may
        # still count against the per-address limit of unauthenticated
        # streams when the next one comes, and be refused for that.
        knock(f"d{i}.test")
    rows = refused(fg)
    assert len(rows) == 500, len(rows)
    assert "d509.test" in rows and "d0.test" not in rows

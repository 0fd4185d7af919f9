"""A partner's last 24 hours (issue 13, the partner page): real traffic
with the bed's Prosody both ways, then `partner history --json` counts it
and shows the connected events, the API answers the same, a partner whose
server is down shows a "failed" event in the failure record's words, an
unknown domain is refused, and without the daemon the CLI says it must
run."""
import json
import urllib.error
import urllib.request

from clients import round_trip


def api(fg, token, path):
    req = urllib.request.Request(f"http://{fg.addr}:5280/api/v1/" + path,
                                 headers={"Authorization": f"Bearer {token}"})
    try:
        with urllib.request.urlopen(req, timeout=10) as resp:
            return resp.status, json.loads(resp.read())
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read())


def test_history_counts_real_traffic_and_events(daemons):
    bed = daemons.bed({"fabrikam.test": "127.0.0.12", "xmpp.fabrikam.test": "127.0.0.12"},
                      srv=[("_xmpp-server._tcp.fabrikam.test", "xmpp.fabrikam.test", 5269),
                           ("_xmpp-server._tcp.contoso.test", "contoso.test", 5269)])
    daemons.prosody(bed, "fabrikam", "127.0.0.12", ["fabrikam.test"],
                    users={"bob@fabrikam.test": "bobpass"})
    fg = daemons.fedgate(bed=bed, admins={"mon": ("viewer", "monitoring password")},
                         partners=["fabrikam.test",
                                   ("down.test", "--proxy-fqdn", "127.0.0.1:5994")])

    # No daemon yet: the CLI says where the history lives.
    r = fg.cli("partner", "history", "fabrikam.test")
    assert r.returncode != 0 and "start 'fedgate serve' first" in r.stderr, r
    fg.start()
    empty = fg.cli_json("partner", "history", "fabrikam.test")
    assert sum(empty["stanzas_in"]) == 0 and sum(empty["stanzas_out"]) == 0, empty
    assert empty["events"] == [], empty

    rc, report, got, back = round_trip(fg, bed.ca.cert, "bob@fabrikam.test", "bobpass",
                                       "127.0.0.12")
    assert rc == 0 and got is not None, report
    assert back is not None  # bob's message came in, our error went out

    h = fg.cli_json("partner", "history", "fabrikam.test")
    assert h["domain"] == "fabrikam.test" and h["minute_seconds"] == 60, h
    assert len(h["stanzas_in"]) == 1440 and len(h["stanzas_out"]) == 1440
    # in: bob's message (and whatever presence Prosody sent); out: the
    # test message and the error answering bob, at least.
    assert sum(h["stanzas_in"]) >= 1, h["stanzas_in"][-3:]
    assert sum(h["stanzas_out"]) >= 2, h["stanzas_out"][-3:]
    # counted in the last minutes, not spread over the day
    assert sum(h["stanzas_out"][-3:]) == sum(h["stanzas_out"])
    assert h["now"].endswith("Z") and h["since"] < h["now"], h
    ev = h["events"]
    out_up = [e for e in ev if e["event"] == "connected" and e["direction"] == "out"]
    in_up = [e for e in ev if e["event"] == "connected" and e["direction"] == "in"]
    assert out_up and out_up[0]["method"] == "SASL over TLS", ev
    assert out_up[0]["local"] == "contoso.test" and out_up[0]["remote"] == "fabrikam.test"
    assert in_up and in_up[0]["remote"] == "fabrikam.test", ev
    assert [e["at"] for e in ev] == sorted(e["at"] for e in ev)  # oldest first

    text = fg.cli("partner", "history", "fabrikam.test").stdout
    assert "last hour" in text and "last 24 h" in text and "connected" in text, text
    assert "SASL over TLS" in text, text

    # The API: the same result, for a viewer too (it only reads).
    token = fg.cli("admin", "token", "mon").stdout.strip()
    code, body = api(fg, token, "partners/fabrikam.test/history")
    assert code == 200, body
    again = fg.cli_json("partner", "history", "fabrikam.test")
    assert body["result"]["events"] == again["events"], (body, again)
    assert sum(body["result"]["stanzas_in"]) == sum(again["stanzas_in"])
    assert sum(body["result"]["stanzas_out"]) == sum(again["stanzas_out"])

    # A partner whose server is down: a failed event with the record's words.
    r = fg.cli("test-im", "--to", "bob@down.test", "--wait", "0")
    assert r.returncode == 1, r
    h = fg.cli_json("partner", "history", "down.test")
    failed = [e for e in h["events"] if e["event"] == "failed"]
    assert len(failed) == 1 and failed[0]["direction"] == "out", h["events"]
    row = [r for r in fg.cli_json("status", "--failing") if r["remote"] == "down.test"][0]
    assert failed[0]["reason"] == row["last_failure"]["reason"], (failed, row)
    assert "Connection refused" in failed[0]["reason"]
    assert sum(h["stanzas_out"]) == 0  # nothing went out to it

    # Unknown domains: refused, with the closest partner when there is one.
    r = fg.cli("partner", "history", "fabrikan.test")
    assert r.returncode == 3, r
    assert "no partner has the domain 'fabrikan.test'; did you mean 'fabrikam.test'?" \
        in r.stderr, r.stderr
    code, body = api(fg, token, "partners/nobody.test/history")
    assert code == 404 and "no partner has the domain 'nobody.test'" in \
        body["errors"][0]["message"], body
    # A removed partner's history goes with it.
    assert fg.cli("partner", "remove", "down.test").returncode == 0
    assert fg.cli("partner", "history", "down.test").returncode == 3

"""Partners through the CLI: create, read, change, remove, the matrix's
verdicts, domain ownership, --what-if, import/export, the audit log, and
live apply in a running daemon. A refused change must leave the store
byte-for-byte as it was: every refusal compares an export before and after."""
import json
import os
import random
import signal
import stat
import subprocess
import time

import pytest

from fgtest import FEDGATE, Peer

ROW1_WARNING = "Dialback will not operate when both TLS and SASL are required"
OPTIONAL_WARNING = "SASL needs TLS; TLS optional may fail negotiation"
NO_TLS_ERROR = "SASL must have TLS support"
NO_METHOD_ERROR = "SASL or Dialback must be enabled"


def test_defaults_when_flags_are_omitted(fg):
    r = fg.cli("partner", "new", "--domain", "Fabrikam.TEST")
    assert r.returncode == 0, r.stderr
    assert ROW1_WARNING in r.stderr  # the defaults are row 1
    p = fg.cli_json("partner", "get", "fabrikam.test")
    assert p == {
        "domain": "fabrikam.test", "description": "", "additional_domains": [],
        "partner_type": "public-unverified", "tls": "required", "sasl": "required",
        "dialback": True, "keepalive": True, "connection_limit": 20,
        "connection_limit_default": True, "proxy_fqdn": "", "enabled": True,
        "bidi": True, "dane": "off", "pins": [],
        "allowed_methods": ["SASL over TLS"],
        "warnings": [p["warnings"][0]],
    }
    assert p["warnings"][0].startswith(ROW1_WARNING)
    # The table for people names it too.
    r = fg.cli("partner", "get")
    assert r.returncode == 0 and "fabrikam.test" in r.stdout and "SASL over TLS" in r.stdout


def test_create_read_change_remove(fg):
    r = fg.cli("partner", "new", "--domain", "fabrikam.test", "--description", "Fabrikam Inc.",
               "--additional-domains", "corp.fabrikam.test, it.fabrikam.test",
               "--partner-type", "federated", "--tls", "required", "--sasl", "optional",
               "--dialback", "true", "--keepalive", "false", "--connection-limit", "5",
               "--proxy-fqdn", "xmpp.fabrikam.test:5270")
    assert r.returncode == 0, r.stderr
    assert r.stderr == ""  # row 7: no warning
    p = fg.cli_json("partner", "get", "fabrikam.test")
    assert p["additional_domains"] == ["corp.fabrikam.test", "it.fabrikam.test"]
    assert (p["partner_type"], p["tls"], p["sasl"], p["dialback"], p["keepalive"]) == \
        ("federated", "required", "optional", True, False)
    assert p["connection_limit"] == 5 and p["connection_limit_default"] is False
    assert p["proxy_fqdn"] == "xmpp.fabrikam.test:5270"
    assert p["allowed_methods"] == ["SASL over TLS", "TLS Dialback"]
    # An additional domain finds the partner too.
    assert fg.cli_json("partner", "get", "corp.fabrikam.test")["domain"] == "fabrikam.test"

    r = fg.cli("partner", "set", "fabrikam.test", "--tls", "optional", "--dialback", "false")
    assert r.returncode == 0, r.stderr
    assert OPTIONAL_WARNING in r.stderr  # row 10
    p = fg.cli_json("partner", "get", "fabrikam.test")
    assert (p["tls"], p["sasl"], p["dialback"]) == ("optional", "optional", False)
    assert p["allowed_methods"] == ["SASL over TLS"]
    assert p["description"] == "Fabrikam Inc."  # untouched fields stay

    r = fg.cli("partner", "remove", "fabrikam.test")
    assert r.returncode == 0, r.stderr
    r = fg.cli("partner", "get", "fabrikam.test")
    assert r.returncode == 3 and "no partner" in r.stderr
    assert fg.cli_json("partner", "get") == []


def test_lync_spellings(fg):
    r = fg.cli("partner", "new", "--domain", "litware.test", "--partner-type", "PublicVerified",
               "--tls", "Optional", "--sasl", "NotSupported", "--dialback", "$true",
               "--keepalive", "$FALSE")
    assert r.returncode == 0, r.stderr
    p = fg.cli_json("partner", "get", "litware.test")
    assert (p["partner_type"], p["tls"], p["sasl"], p["dialback"], p["keepalive"]) == \
        ("public-verified", "optional", "not-supported", True, False)
    assert p["allowed_methods"] == ["TLS Dialback", "TCP Dialback"]  # row 15
    r = fg.cli("partner", "set", "litware.test", "--tls", "REQUIRED")
    assert r.returncode == 0
    assert fg.cli_json("partner", "get", "litware.test")["tls"] == "required"
    r = fg.cli("partner", "set", "litware.test", "--tls", "sometimes")
    assert r.returncode == 1 and "tls: 'sometimes'" in r.stderr and "not-supported" in r.stderr


def test_additional_domains_add_remove_clear(fg):
    assert fg.cli("partner", "new", "--domain", "fabrikam.test").returncode == 0
    assert fg.cli("partner", "set", "fabrikam.test", "--add-domain", "corp.fabrikam.test",
                  "--add-domain", "it.fabrikam.test").returncode == 0
    assert fg.cli_json("partner", "get", "fabrikam.test")["additional_domains"] == \
        ["corp.fabrikam.test", "it.fabrikam.test"]
    assert fg.cli("partner", "set", "fabrikam.test", "--remove-domain",
                  "corp.fabrikam.test").returncode == 0
    assert fg.cli_json("partner", "get", "fabrikam.test")["additional_domains"] == \
        ["it.fabrikam.test"]
    before = fg.export()
    r = fg.cli("partner", "set", "fabrikam.test", "--remove-domain", "nope.fabrikam.test")
    assert r.returncode == 1 and "not an additional domain" in r.stderr
    assert fg.export() == before
    assert fg.cli("partner", "set", "fabrikam.test", "--clear-domains").returncode == 0
    assert fg.cli_json("partner", "get", "fabrikam.test")["additional_domains"] == []
    r = fg.cli("partner", "get", "it.fabrikam.test")
    assert r.returncode == 3


def test_duplicates_and_ownership_refused(fg):
    assert fg.cli("partner", "new", "--domain", "fabrikam.test", "--additional-domains",
                  "corp.fabrikam.test").returncode == 0
    before = fg.export()
    cases = [
        (("partner", "new", "--domain", "FABRIKAM.test"), "already exists"),
        (("partner", "new", "--domain", "corp.fabrikam.test"), "fabrikam.test"),
        (("partner", "new", "--domain", "litware.test", "--additional-domains",
          "corp.fabrikam.test"), "already belongs to partner fabrikam.test"),
        (("partner", "new", "--domain", "contoso.test"), "local"),
        (("partner", "new", "--domain", "bad..domain"), "not a valid domain name"),
        (("partner", "set", "fabrikam.test", "--add-domain", "contoso.test"), "local"),
        (("partner", "new", "--domain", "x.test", "--connection-limit", "-1"),
         "connection_limit"),
        (("partner", "new", "--domain", "x.test", "--proxy-fqdn", "host:99999"), "proxy_fqdn"),
    ]
    for args, text in cases:
        r = fg.cli(*args)
        assert r.returncode == 1, (args, r.stderr)
        assert text in r.stderr, (args, r.stderr)
        assert fg.export() == before, args


MATRIX = [
    # tls, sasl, dialback, verdict, methods
    ("required", "required", "true", "warning", ["SASL over TLS"]),
    ("required", "required", "false", "saved", ["SASL over TLS"]),
    ("optional", "required", "true", "warning", ["SASL over TLS", "TLS Dialback", "TCP Dialback"]),
    ("optional", "required", "false", "warning", ["SASL over TLS"]),
    ("not-supported", "required", "true", "tls", None),
    ("not-supported", "required", "false", "tls", None),
    ("required", "optional", "true", "saved", ["SASL over TLS", "TLS Dialback"]),
    ("required", "optional", "false", "saved", ["SASL over TLS"]),
    ("optional", "optional", "true", "warning", ["SASL over TLS", "TLS Dialback", "TCP Dialback"]),
    ("optional", "optional", "false", "warning", ["SASL over TLS"]),
    ("not-supported", "optional", "true", "tls", None),
    ("not-supported", "optional", "false", "tls", None),
    ("required", "not-supported", "true", "saved", ["TLS Dialback"]),
    ("required", "not-supported", "false", "method", None),
    ("optional", "not-supported", "true", "saved", ["TLS Dialback", "TCP Dialback"]),
    ("optional", "not-supported", "false", "method", None),
    ("not-supported", "not-supported", "true", "saved", ["TCP Dialback"]),
    ("not-supported", "not-supported", "false", "method", None),
]


@pytest.mark.parametrize("row", range(1, 19))
def test_matrix_row_through_cli(fg, row):
    tls, sasl, dialback, verdict, methods = MATRIX[row - 1]
    assert fg.cli("partner", "new", "--domain", "keep.test").returncode == 0
    before = fg.export()
    args = ("--tls", tls, "--sasl", sasl, "--dialback", dialback)
    what_if = fg.cli("partner", "new", "--domain", "row.test", *args, "--what-if")
    r = fg.cli("partner", "new", "--domain", "row.test", *args)
    if verdict in ("tls", "method"):
        text = NO_TLS_ERROR if verdict == "tls" else NO_METHOD_ERROR
        for res in (what_if, r):
            assert res.returncode == 1 and text in res.stderr, res.stderr
            assert "nothing was saved" in res.stderr
        assert fg.export() == before  # byte for byte
        # The same refusal when an existing partner is changed into this row.
        r = fg.cli("partner", "set", "keep.test", *args)
        assert r.returncode == 1 and text in r.stderr
        assert fg.export() == before
        return
    assert what_if.returncode == 0 and "nothing was saved" in what_if.stdout
    assert r.returncode == 0, r.stderr
    if verdict == "warning":
        assert "warning:" in r.stderr
    else:
        assert r.stderr == ""
    assert fg.cli_json("partner", "get", "row.test")["allowed_methods"] == methods


def test_what_if_saves_nothing(fg):
    before = fg.export()
    r = fg.cli("partner", "new", "--domain", "fabrikam.test", "--what-if", "--json")
    assert r.returncode == 0
    assert json.loads(r.stdout)["domain"] == "fabrikam.test"
    assert fg.export() == before
    assert fg.cli("partner", "new", "--domain", "fabrikam.test").returncode == 0
    before = fg.export()
    for args in (("partner", "set", "fabrikam.test", "--tls", "optional", "--what-if"),
                 ("partner", "remove", "fabrikam.test", "--what-if"),
                 ("gateway", "set", "--keepalive-interval", "60", "--what-if")):
        r = fg.cli(*args)
        assert r.returncode == 0, r.stderr
        assert "nothing was saved" in r.stdout
        assert fg.export() == before
    assert fg.cli_json("gateway", "get")["keepalive_interval"] == 300


def test_usage_and_not_found_statuses(fg):
    assert fg.cli("partner", "new").returncode == 2
    assert fg.cli("partner", "new", "--domain", "a.test", "--bogus", "1").returncode == 2
    assert fg.cli("partner", "frobnicate").returncode == 2
    assert fg.cli("partner", "get", "--what-if").returncode == 2
    assert fg.cli("partner", "set", "nobody.test", "--tls", "optional").returncode == 3
    assert fg.cli("partner", "remove", "nobody.test").returncode == 3
    assert fg.cli("audit", "--since", "yesterday-ish").returncode == 2


def test_gateway_settings(fg):
    g = fg.cli_json("gateway", "get")
    assert g == {"connection_limit": 1000, "partner_connection_limit": 20,
                 "keepalive_interval": 300, "stream_establishment_timeout": 60,
                 "stream_inactivity_timeout": 600, "subscription_refresh_interval": 28800,
                 "log_message_bodies": False, "dialback_secret": "(set)"}
    assert fg.cli("gateway", "set", "--partner-connection-limit", "7").returncode == 0
    assert fg.cli("partner", "new", "--domain", "fabrikam.test").returncode == 0
    assert fg.cli_json("partner", "get", "fabrikam.test")["connection_limit"] == 7
    before = fg.export()
    r = fg.cli("gateway", "set", "--keepalive-interval", "5")
    assert r.returncode == 1 and "keepalive_interval" in r.stderr
    assert fg.cli_json("gateway", "get")["keepalive_interval"] == 300
    assert fg.export() == before


def test_import_export_round_trip(fg):
    for d in ("a.test", "b.test"):
        assert fg.cli("partner", "new", "--domain", d, "--tls", "optional").returncode == 0
    exported = fg.export()
    doc = json.loads(exported)
    assert [p["domain"] for p in doc["partners"]] == ["a.test", "b.test"]
    path = os.path.join(fg.dir, "partners.json")
    # A new set: one changed, one removed, one added.
    doc["partners"][0]["sasl"] = "not-supported"
    doc["partners"] = [doc["partners"][0],
                       {"domain": "c.test", "partner_type": "Federated", "tls": "NotSupported",
                        "sasl": "NotSupported", "dialback": True}]
    open(path, "w").write(json.dumps(doc))
    r = fg.cli("partner", "import", path, "--what-if")
    assert r.returncode == 0 and fg.export() == exported
    r = fg.cli("partner", "import", path)
    assert r.returncode == 0, r.stderr
    got = json.loads(fg.export())
    assert [p["domain"] for p in got["partners"]] == ["a.test", "c.test"]
    assert got["partners"][0]["sasl"] == "not-supported"
    assert got["partners"][1]["partner_type"] == "federated"
    # Exported, imported, exported again: the same bytes.
    again = fg.export()
    open(path, "w").write(again)
    assert fg.cli("partner", "import", path).returncode == 0
    assert fg.export() == again


def test_one_bad_record_refuses_the_whole_import(fg):
    assert fg.cli("partner", "new", "--domain", "keep.test").returncode == 0
    before = fg.export()
    path = os.path.join(fg.dir, "bad.json")
    partners = [{"domain": f"ok{i}.test"} for i in range(5)]
    partners.insert(3, {"domain": "bad.test", "tls": "not-supported", "sasl": "required"})
    open(path, "w").write(json.dumps({"partners": partners}))
    r = fg.cli("partner", "import", path)
    assert r.returncode == 1
    assert "record 4 (bad.test)" in r.stderr and NO_TLS_ERROR in r.stderr
    assert fg.export() == before
    open(path, "w").write(json.dumps({"partners": [{"domain": "x.test", "colour": "red"}]}))
    r = fg.cli("partner", "import", path)
    assert r.returncode == 1 and "record 1 (x.test): colour" in r.stderr
    open(path, "w").write("{not json")
    r = fg.cli("partner", "import", path)
    assert r.returncode == 1 and "cannot read" in r.stderr
    assert fg.export() == before


def test_audit_records_who_what_before_after(fg):
    assert fg.cli("partner", "new", "--domain", "fabrikam.test").returncode == 0
    assert fg.cli("partner", "set", "fabrikam.test", "--tls", "optional").returncode == 0
    assert fg.cli("gateway", "set", "--regenerate-dialback-secret").returncode == 0
    rows = fg.cli_json("audit")
    mine = [r for r in rows if r["interface"] == "cli"]
    assert [r["action"] for r in mine] == ["partner new", "partner set", "gateway set"]
    new, change, gw = mine
    assert new["before"] is None and new["after"]["domain"] == "fabrikam.test"
    assert change["before"]["tls"] == "required" and change["after"]["tls"] == "optional"
    assert change["who"] == "root" and change["target"] == "fabrikam.test"
    # The secret is in the store, but never in the audit log or the output.
    import sqlite3
    con = sqlite3.connect(os.path.join(fg.dir, "fedgate.db"))
    secret = con.execute("SELECT value FROM gateway WHERE key = 'dialback_secret'").fetchone()[0]
    con.close()
    assert len(secret) >= 32
    assert gw["after"]["dialback_secret"] == "(regenerated)"
    assert secret not in json.dumps(rows)
    assert secret not in fg.cli("gateway", "get").stdout
    r = fg.cli("audit")
    assert 'tls: "required" -> "optional"' in r.stdout
    assert secret not in r.stdout
    assert len(fg.cli_json("audit", "--since", "1h")) == len(rows)
    assert fg.cli_json("audit", "--since", "2999-01-01") == []


def test_live_apply_in_running_daemon(fg):
    assert fg.cli("partner", "new", "--domain", "fabrikam.test").returncode == 0
    fg.start()
    sock = os.path.join(fg.dir, "fedgate.sock")
    mode = stat.S_IMODE(os.stat(sock).st_mode)
    assert mode & 0o007 == 0, oct(mode)  # owner and group only
    fg.wait_log(r"partner fabrikam\.test: type=public-unverified tls=required")
    # A stream from the partner, open before the change.
    p = Peer()
    p.open(frm="fabrikam.test")
    p.features()
    r = fg.cli("partner", "set", "fabrikam.test", "--tls", "optional", "--sasl", "optional")
    assert r.returncode == 0, r.stderr
    fg.wait_log(r"applying partner fabrikam\.test: type=public-unverified tls=optional "
                r"sasl=optional dialback=true")
    cond, text = p.stream_error()
    assert cond == "policy-violation" and "fabrikam.test changed" in text
    # The daemon answered: the store and its view agree.
    assert fg.cli_json("partner", "get", "fabrikam.test")["tls"] == "optional"
    rows = fg.cli_json("audit")
    assert rows[-1]["action"] == "partner set"
    assert rows[-1]["before"]["tls"] == "required" and rows[-1]["after"]["tls"] == "optional"
    # Refusals are the same through the daemon.
    before = fg.export()
    r = fg.cli("partner", "set", "fabrikam.test", "--tls", "not-supported")
    assert r.returncode == 1 and NO_TLS_ERROR in r.stderr
    assert fg.export() == before
    r = fg.cli("partner", "remove", "fabrikam.test")
    assert r.returncode == 0
    fg.wait_log(r"partner fabrikam\.test removed")
    fg.stop()
    # And what the daemon saved is there without it.
    assert fg.cli_json("partner", "get") == []


def test_kill_during_import_loop_leaves_old_or_new(fg):
    """kill -9 the CLI while it imports, again and again: the store always
    opens and holds one whole set, never a mix."""
    sets = {}
    for name, tls in (("A", "required"), ("B", "optional")):
        partners = [{"domain": f"p{i}.{name.lower()}.test", "tls": tls,
                     "additional_domains": [f"x{i}.{name.lower()}.test"]} for i in range(20000)]
        path = os.path.join(fg.dir, f"{name}.json")
        open(path, "w").write(json.dumps({"partners": partners}))
        assert fg.cli("partner", "import", path).returncode == 0
        sets[name] = fg.export()
    seen = {"A": 0, "B": 0, "torn": 0, "killed while running": 0}
    rng = random.Random(1234)
    for i in range(12):
        target = "A" if i % 2 else "B"
        proc = subprocess.Popen([FEDGATE, "partner", "import",
                                 os.path.join(fg.dir, f"{target}.json"), "-c", fg.conf],
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        time.sleep(rng.uniform(0.05, 1.5))
        if proc.poll() is None:
            seen["killed while running"] += 1
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        now = fg.export()
        if now == sets["A"]:
            seen["A"] += 1
        elif now == sets["B"]:
            seen["B"] += 1
        else:
            seen["torn"] += 1
    print("after kill -9:", seen)
    assert seen["torn"] == 0
    assert seen["A"] + seen["B"] == 12
    assert seen["killed while running"] >= 3  # the kills did land mid-import


def test_get_with_filter(fg):
    for d, extra in (("fabrikam.org", "corp.fabrikam.org"), ("litware.test", "litware.org"),
                     ("contoso-partner.test", None)):
        args = ["partner", "new", "--domain", d]
        if extra:
            args += ["--additional-domains", extra]
        assert fg.cli(*args).returncode == 0
    got = [p["domain"] for p in fg.cli_json("partner", "get", "--filter", "*.org")]
    assert got == ["fabrikam.org", "litware.test"]  # litware.test by its additional domain
    assert fg.cli_json("partner", "get", "--filter", "*.example") == []
    r = fg.cli("partner", "get", "--filter", "*.example")
    assert r.returncode == 0 and "no partner has a domain matching '*.example'" in r.stdout


def test_import_refuses_duplicate_keys(fg):
    assert fg.cli("partner", "new", "--domain", "keep.test").returncode == 0
    before = fg.export()
    path = os.path.join(fg.dir, "dup.json")
    open(path, "w").write('{"partners": [\n {"domain": "a.test", "tls": "optional",\n'
                          '  "tls": "required"}]}')
    r = fg.cli("partner", "import", path)
    assert r.returncode == 1
    assert f'cannot read {path}: the key "tls" is given twice (the second at line 3, ' \
           'column 3)' in r.stderr, r.stderr
    assert fg.export() == before

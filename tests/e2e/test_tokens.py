"""Named API tokens and admin roles (issue 13, item 6): several tokens per
admin, each withdrawn alone (before, a new token revoked the old one, so a
Prometheus token broke any script); labels and last use listed, never the
token; an old store's token still works after the upgrade to schema 5;
backup and restore carry the labels; `admin set --role` and the last
administrator, from the CLI and the API."""
import hashlib
import json
import os
import re
import sqlite3

import pytest

from webclient import Client

BASE = "http://127.0.0.1:5280"
ADMIN_PW = "correct horse battery"
VIEWER_PW = "viewer password"


@pytest.fixture
def fg(daemons):
    return daemons.fedgate(admins={"alice": ("administrator", ADMIN_PW),
                                   "victor": ("viewer", VIEWER_PW)})


def make_token(fg, name, *args):
    r = fg.cli("admin", "token", name, *args)
    assert r.returncode == 0, r.stderr
    t = r.stdout.strip()
    assert re.fullmatch(r"fgt_[0-9a-f]{64}", t), t
    return t, r.stderr


def works(token):
    return Client(BASE, token=token).get("/api/v1/partners").status == 200


def store_path(fg):
    return os.path.join(fg.dir, "fedgate.db")


def test_two_tokens_both_work_and_revoking_one_leaves_the_other(fg):
    fg.start()
    script, _ = make_token(fg, "alice")
    prometheus, msg = make_token(fg, "alice", "--label", "prometheus")
    assert "'prometheus'" in msg and "shown only now" in msg
    assert works(script) and works(prometheus)
    # Withdrawing one leaves the other working.
    r = fg.cli("admin", "token", "alice", "--revoke", "--label", "default")
    assert r.returncode == 0, r.stderr
    assert "other tokens still work" in r.stdout
    assert not works(script)
    assert works(prometheus)
    # A new token with a label replaces only that label's, and says so.
    again, msg = make_token(fg, "alice", "--label", "prometheus")
    assert "replaces the earlier token with this label" in msg, msg
    assert not works(prometheus) and works(again)
    # An unknown label is refused with where to look.
    r = fg.cli("admin", "token", "alice", "--revoke", "--label", "nope")
    assert r.returncode == 3 and "admin tokens alice" in r.stderr, r.stderr
    r = fg.cli("admin", "token", "alice", "--label", "no spaces")
    assert r.returncode == 1 and "not a token label" in r.stderr, r.stderr
    # --revoke alone withdraws every token of the account, and counts them.
    make_token(fg, "alice", "--label", "ci")
    r = fg.cli("admin", "token", "alice", "--revoke")
    assert r.returncode == 0 and "2 API tokens of alice withdrawn" in r.stdout, r.stdout
    assert not works(again)


def test_labels_listed_never_the_token(fg):
    fg.start()
    t1, _ = make_token(fg, "alice", "--label", "prometheus")
    t2, _ = make_token(fg, "alice", "--label", "deploy")
    t3, _ = make_token(fg, "victor")
    assert works(t1)
    rows = fg.cli_json("admin", "tokens")
    assert [(r["name"], r["label"]) for r in rows] == [
        ("alice", "deploy"), ("alice", "prometheus"), ("victor", "default")]
    used = {r["label"]: r["last_used"] for r in rows if r["name"] == "alice"}
    assert used["prometheus"] and used["deploy"] is None
    assert all(re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", r["created"]) for r in rows)
    text = fg.cli("admin", "tokens", "alice").stdout
    assert "LAST USED" in text and "never" in text and "prometheus" in text
    assert "victor" not in text
    # `admin list`: the old boolean stays, the count is added.
    accounts = {a["name"]: a for a in fg.cli_json("admin", "list")}
    assert accounts["alice"]["api_token"] is True and accounts["alice"]["tokens"] == 2
    assert accounts["victor"]["tokens"] == 1
    assert re.search(r"(?m)^alice\s+administrator\s+\S+\s+2$", fg.cli("admin", "list").stdout)
    # No token anywhere but where it was printed once; the audit names
    # the labels.
    audit = fg.cli("audit").stdout
    assert "prometheus" in audit and "deploy" in audit
    db = open(store_path(fg), "rb").read()
    for t in (t1, t2, t3):
        assert t not in audit and t not in fg.read_log() and t.encode() not in db
        assert t not in json.dumps(rows)


def test_tokens_through_the_api(fg):
    fg.start()
    boot, _ = make_token(fg, "alice")
    api = Client(BASE, token=boot)
    r = api.post("/api/v1/admins/alice/tokens", {"label": "grafana"})
    assert r.status == 201, r.text
    made = r.json()["result"]
    assert made["label"] == "grafana" and made["replaced"] is False
    assert works(made["token"]) and works(boot)
    r = api.get("/api/v1/admins/alice/tokens")
    assert r.status == 200
    assert sorted(x["label"] for x in r.json()["result"]) == ["default", "grafana"]
    assert made["token"] not in r.text
    r = api.get("/api/v1/admins")
    assert {a["name"]: a["tokens"] for a in r.json()["result"]} == {"alice": 2, "victor": 0}
    # Withdraw the one by its label: the other still works.
    r = api.request("DELETE", "/api/v1/admins/alice/tokens/grafana")
    assert r.status == 200, r.text
    assert not works(made["token"]) and works(boot)
    assert api.request("DELETE", "/api/v1/admins/alice/tokens/grafana").status == 404
    assert api.post("/api/v1/admins/alice/tokens", {"label": "a b"}).status == 422
    assert api.get("/api/v1/admins/nobody/tokens").status == 404
    assert api.get("/api/v1/admins/alice/nothing").status == 404
    # A viewer reads but makes no token.
    v, _ = make_token(fg, "victor")
    viewer = Client(BASE, token=v)
    assert viewer.get("/api/v1/admins/victor/tokens").status == 200
    assert viewer.post("/api/v1/admins/victor/tokens", {"label": "x"}).status == 403
    assert viewer.request("DELETE", "/api/v1/admins/alice/tokens").status == 403
    # Admin accounts through the API: add, role, password, remove.
    r = api.post("/api/v1/admins", {"name": "carol", "role": "viewer",
                                     "password": "carol password"})
    assert r.status == 201, r.text
    r = api.request("PATCH", "/api/v1/admins/carol", {"role": "administrator"})
    assert r.status == 200 and "now an administrator" in r.json()["message"], r.text
    r = api.request("PUT", "/api/v1/admins/carol/password", {"password": "short"})
    assert r.status == 422 and "too short" in r.text
    r = api.request("PUT", "/api/v1/admins/carol/password", {"password": "new carol pw"})
    assert r.status == 200, r.text
    assert Client(BASE).signin("carol", "new carol pw").status == 303
    assert api.request("DELETE", "/api/v1/admins/carol").status == 200
    # Revoke all of the account's tokens, the one asking included.
    r = api.request("DELETE", "/api/v1/admins/alice/tokens")
    assert r.status == 200 and r.json()["result"]["revoked"] == 1, r.text
    assert not works(boot)


def test_last_administrator_cannot_be_demoted_or_removed(fg):
    fg.start()
    before = fg.cli_json("admin", "list")
    r = fg.cli("admin", "set", "alice", "--role", "viewer")
    assert r.returncode == 1 and "last administrator" in r.stderr, r.stderr
    assert "admin set NAME --role administrator" in r.stderr
    r = fg.cli("admin", "remove", "alice")
    assert r.returncode == 1 and "last administrator" in r.stderr, r.stderr
    assert fg.cli_json("admin", "list") == before
    # Through the API, alice demoting herself is the same refusal.
    t, _ = make_token(fg, "alice")
    api = Client(BASE, token=t)
    r = api.request("PATCH", "/api/v1/admins/alice", {"role": "viewer"})
    assert r.status == 422 and "last administrator" in r.text
    assert api.request("DELETE", "/api/v1/admins/alice").status == 422
    r = fg.cli("admin", "set", "victor", "--role", "superuser")
    assert r.returncode == 1 and "not a role" in r.stderr
    r = fg.cli("admin", "set", "nobody", "--role", "viewer")
    assert r.returncode == 3 and "admin list" in r.stderr
    # With another administrator, alice may step down herself.
    r = fg.cli("admin", "set", "victor", "--role", "administrator")
    assert r.returncode == 0 and "victor is now an administrator (was viewer)" in r.stdout
    r = api.request("PATCH", "/api/v1/admins/alice", {"role": "viewer"})
    assert r.status == 200, r.text
    # Her token now only reads: the role is looked up on every request.
    assert api.get("/api/v1/partners").status == 200
    assert api.post("/api/v1/partners", {"domain": "fabrikam.test"}).status == 403
    r = fg.cli("admin", "set", "victor", "--role", "viewer")
    assert r.returncode == 1 and "last administrator" in r.stderr
    r = fg.cli("admin", "set", "alice", "--role", "viewer")
    assert r.returncode == 0 and "no change" in r.stdout
    audit = fg.cli("audit").stdout
    assert audit.count("admin set") == 2, audit


def test_old_store_token_still_works_after_upgrade(fg):
    """A token made by a schema-4 fedgate (one per account, no label)."""
    fg.start()
    fg.stop()
    token = "fgt_" + "5a" * 32
    digest = hashlib.sha256(token.encode()).hexdigest()
    db = sqlite3.connect(store_path(fg))
    db.executescript(
        "DROP TABLE admin_tokens;"
        "CREATE TABLE admin_tokens ("
        " admin TEXT PRIMARY KEY REFERENCES admins(name) ON DELETE CASCADE,"
        " token_sha256 TEXT NOT NULL UNIQUE,"
        " created_ms INTEGER NOT NULL);"
        f"INSERT INTO admin_tokens VALUES ('alice', '{digest}', 1000);"
        # Nor had the partners what schema 6 added.
        "ALTER TABLE partners DROP COLUMN bidi;"
        "ALTER TABLE partners DROP COLUMN dane;"
        "ALTER TABLE partners DROP COLUMN pins;"
        "DROP TABLE IF EXISTS archive;"
        "DROP TABLE IF EXISTS archive_prefs;"
        "DROP TABLE IF EXISTS blocklist;"
        "DROP TABLE IF EXISTS roster_versions;"
        "DROP TABLE IF EXISTS pep_items;"
        "DROP TABLE IF EXISTS pep_nodes;"
        "PRAGMA user_version = 4;")
    db.close()
    fg.start()
    assert "schema upgraded to version 5" in fg.read_log()
    assert works(token)
    rows = fg.cli_json("admin", "tokens", "alice")
    assert [(r["label"], r["created"]) for r in rows] == [("default", "1970-01-01T00:00:01Z")]
    # The old spelling replaces that one, as it always did.
    new, _ = make_token(fg, "alice")
    assert not works(token) and works(new)


def test_backup_and_restore_carry_labelled_tokens(fg):
    fg.start()
    t1, _ = make_token(fg, "alice", "--label", "prometheus")
    t2, _ = make_token(fg, "victor", "--label", "deploy")
    backup = os.path.join(fg.dir, "backup.db")
    r = fg.cli("backup", backup)
    assert r.returncode == 0, r.stderr
    assert fg.cli("admin", "token", "alice", "--revoke").returncode == 0
    assert not works(t1)
    fg.stop()
    r = fg.cli("restore", backup)
    assert r.returncode == 0, r.stderr
    fg.start()
    assert works(t1) and works(t2)
    assert [(x["name"], x["label"]) for x in fg.cli_json("admin", "tokens")] == [
        ("alice", "prometheus"), ("victor", "deploy")]

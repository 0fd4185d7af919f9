"""`fedgate backup` and `fedgate restore` (issue 12 item 9): an online
backup that stays consistent while the daemon writes, and a restore that
refuses a running daemon, foreign files and newer schemas."""
import os
import re
import sqlite3
import threading

import pytest

PASSWORD = "pw-correct-horse"


def users_in(path):
    db = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        return {r[0] for r in db.execute("SELECT jid FROM users")}
    finally:
        db.close()


def info(out):
    m = re.search(r"schema version (\d+), (\d+) partners, (\d+) users, (\d+) admins, "
                  r"(\d+) pages", out)
    assert m, out
    return tuple(int(x) for x in m.groups())


@pytest.fixture
def fg(daemons):
    fg = daemons.fedgate(users={"alice@contoso.test": PASSWORD},
                         partners=["fabrikam.test", "northwind.test"])
    fg.store = os.path.join(fg.dir, "fedgate.db")
    # Some bulk, so that the copy takes many steps: audit rows (written
    # before the daemon runs; the daemon never reads them back).
    db = sqlite3.connect(fg.store)
    db.executemany("INSERT INTO audit (at_ms, who, iface, action, target, before, after) "
                   "VALUES (?, 'test', 'cli', 'padding', 'x', NULL, ?)",
                   [(i, "p" * 2000) for i in range(1500)])
    db.commit()
    db.close()
    return fg


def test_backup_while_writing_then_restore(fg):
    fg.start()
    backup = os.path.join(fg.dir, "backup.db")
    added, stop = [], threading.Event()

    def writer():
        # Through the daemon: its store thread writes while we copy.
        i = 0
        while not stop.is_set():
            jid = f"w{i}@contoso.test"
            r = fg.cli("user", "add", jid, input=PASSWORD + "\n")
            assert r.returncode == 0, r.stderr
            added.append(jid)
            i += 1

    t = threading.Thread(target=writer)
    t.start()
    try:
        while len(added) < 3:
            t.join(0.05)
        r = fg.cli("backup", backup)
        more = len(added) + 3
        while len(added) < more:
            t.join(0.05)
    finally:
        stop.set()
        t.join()
    assert r.returncode == 0, r.stderr
    schema, partners, nusers, admins, pages = info(r.stdout)
    assert f"backed up the store to {backup}" in r.stdout
    assert pages > 64 * 4, "the copy should have taken several steps"
    assert partners == 2
    assert not os.path.exists(backup + ".tmp")
    assert oct(os.stat(backup).st_mode & 0o777) == "0o600"

    # Consistent: what it says it holds, whole, and a prefix of the writes.
    db = sqlite3.connect(f"file:{backup}?mode=ro", uri=True)
    assert db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    assert db.execute("PRAGMA journal_mode").fetchone()[0] == "delete"
    assert db.execute("SELECT count(*) FROM partners").fetchone()[0] == 2
    db.close()
    in_backup = users_in(backup)
    assert len(in_backup) == nusers
    written = [j for j in added if j in in_backup]
    assert written == added[:len(written)], "the backup is not one point in time"
    assert 3 <= len(written) < len(added), (len(written), len(added))

    # No restore under a running daemon.
    r = fg.cli("restore", backup)
    assert r.returncode == 1
    assert "a fedgate daemon answers on the control socket" in r.stderr, r.stderr
    assert "stop it first" in r.stderr
    fg.stop()
    after = users_in(fg.store)
    assert after > in_backup

    # Nor under any other process that has the store open.
    other = sqlite3.connect(fg.store)
    other.execute("SELECT count(*) FROM users").fetchone()
    r = fg.cli("restore", backup)
    other.close()
    assert r.returncode == 1
    assert f"the store {fg.store} is in use by another process" in r.stderr, r.stderr
    assert users_in(fg.store) == after

    r = fg.cli("restore", backup)
    assert r.returncode == 0, r.stderr
    m = re.search(r"the store it replaced is kept as (\S+before-restore-\d{8}T\d{6}Z)",
                  r.stdout)
    assert m, r.stdout
    assert users_in(m.group(1)) == after
    assert users_in(fg.store) == in_backup
    assert oct(os.stat(fg.store).st_mode & 0o777) == "0o600"

    fg.start()
    listed = fg.cli_json("user", "list")
    assert {u["jid"] for u in listed} == in_backup
    assert len(fg.cli_json("partner", "get")) == 2
    # And it writes: the restored store is a working one.
    r = fg.cli("user", "add", "new@contoso.test", input=PASSWORD + "\n")
    assert r.returncode == 0, r.stderr


def test_backup_never_overwrites(fg):
    target = os.path.join(fg.dir, "exists.db")
    open(target, "w").write("precious")
    r = fg.cli("backup", target)
    assert r.returncode == 1
    assert f"{target} already exists" in r.stderr, r.stderr
    assert open(target).read() == "precious"
    assert not os.path.exists(target + ".tmp")


def test_restore_refuses_newer_schema(fg):
    backup = os.path.join(fg.dir, "b.db")
    r = fg.cli("backup", backup)
    assert r.returncode == 0, r.stderr
    latest = info(r.stdout)[0]
    db = sqlite3.connect(backup)
    db.execute(f"PRAGMA user_version = {latest + 1}")
    db.commit()
    db.close()
    before = users_in(fg.store)
    r = fg.cli("restore", backup)
    assert r.returncode == 1
    assert (f"{backup} is a store of schema version {latest + 1}, newer than this "
            f"fedgate") in r.stderr, r.stderr
    assert f"knows (schema version {latest})" in r.stderr
    assert users_in(fg.store) == before
    assert not [n for n in os.listdir(fg.dir) if "before-restore" in n or "restore-tmp" in n]


def test_restore_refuses_what_is_no_store(fg):
    text = os.path.join(fg.dir, "notes.txt")
    open(text, "w").write("these are not the partners you are looking for\n" * 100)
    r = fg.cli("restore", text)
    assert r.returncode == 1
    assert f"{text} is not an SQLite database, so not a fedgate store" in r.stderr, r.stderr

    other = os.path.join(fg.dir, "other.db")
    db = sqlite3.connect(other)
    db.execute("CREATE TABLE t (x)")
    db.commit()
    db.close()
    r = fg.cli("restore", other)
    assert r.returncode == 1
    assert f"{other} is an SQLite database but not a fedgate store" in r.stderr, r.stderr
    assert not [n for n in os.listdir(fg.dir) if "before-restore" in n]


def test_restore_refuses_a_damaged_backup(fg):
    backup = os.path.join(fg.dir, "b.db")
    assert fg.cli("backup", backup).returncode == 0
    db = sqlite3.connect(backup)
    # Index entries that no longer match their table: what integrity_check
    # finds (the cells sit at the end of the index's root page).
    root = db.execute("SELECT rootpage FROM sqlite_master "
                      "WHERE name = 'audit_at_ms'").fetchone()[0]
    page = db.execute("PRAGMA page_size").fetchone()[0]
    db.close()
    with open(backup, "r+b") as f:
        f.seek(root * page - 400)
        f.write(b"\x7f" * 380)
    r = fg.cli("restore", backup)
    assert r.returncode == 1
    assert f"{backup} is damaged (integrity check:" in r.stderr, r.stderr


def test_restore_on_a_new_machine(fg, daemons):
    backup = os.path.join(fg.dir, "b.db")
    assert fg.cli("backup", backup).returncode == 0
    new = daemons.fedgate()  # no store yet
    assert not os.path.exists(os.path.join(new.dir, "fedgate.db"))
    os.chown(new.dir, 65534, 65534)  # the state folder of the account
    r = new.cli("restore", backup)
    assert r.returncode == 0, r.stderr
    assert "kept as" not in r.stdout
    st = os.stat(os.path.join(new.dir, "fedgate.db"))
    assert (st.st_uid, st.st_gid, st.st_mode & 0o777) == (65534, 65534, 0o600)
    assert users_in(os.path.join(new.dir, "fedgate.db")) == users_in(fg.store)
    new.start()
    assert len(new.cli_json("partner", "get")) == 2

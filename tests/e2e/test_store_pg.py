"""The daemon and the commands on a PostgreSQL store (issue 17, part 1):
`fedgate check` says which store and whether it is reachable, never showing
the dsn's password; a daemon whose PostgreSQL stops refuses changes with a
clear sentence, keeps serving what it holds, and takes changes again once
PostgreSQL is back, without a restart; backup and restore wrap pg_dump and
pg_restore. The server is a throwaway one (cluster.Postgres)."""
import os
import stat

import pytest

from cluster import Postgres
from fgtest import Fedgate

SECRET = "hunter2-never-shown"


@pytest.fixture
def pg():
    p = Postgres().start()
    try:
        yield p
    finally:
        p.remove()


def make(pg):
    # trust authentication ignores the password: it is there to be hidden.
    return Fedgate(extra={"store": {"backend": "postgresql",
                                    "dsn": f"{pg.dsn} password={SECRET}",
                                    "pool_size": "3"}})


def store_lines(r):
    return [line for line in (r.stdout + r.stderr).splitlines() if "store PostgreSQL" in line]


def test_check_reports_postgresql(pg):
    fg = make(pg)
    r = fg.cli("check")
    print("\n".join(store_lines(r)))
    assert SECRET not in r.stdout + r.stderr
    assert any("is reachable and empty; the first start creates the schema" in line
               for line in store_lines(r)), r.stdout
    assert any("password=***" in line for line in store_lines(r)), r.stdout
    fg.start()
    try:
        r = fg.cli("check")
        assert any("is reachable, schema version 10 (this fedgate: 10)" in line
                   for line in store_lines(r)), r.stdout
        pg.stop()
        r = fg.cli("check")
        print("\n".join(store_lines(r)))
        assert any("cannot be reached" in line for line in store_lines(r)), r.stdout
        pg.start()
    finally:
        fg.stop()
    r = fg.cli("check", "--config")
    assert "password=***" in r.stdout and SECRET not in r.stdout + r.stderr
    assert SECRET not in fg.read_log()


def test_postgresql_stops_and_comes_back(pg):
    fg = make(pg).start()
    try:
        assert "4 connections" not in fg.read_log()
        fg.wait_log(r"store: 3 connections")
        r = fg.cli("partner", "new", "fabrikam.test", "--description", "Fabrikam one")
        assert r.returncode == 0, r.stderr
        pg.stop()
        r = fg.cli("partner", "set", "fabrikam.test", "--description", "Fabrikam two")
        print(r.stdout + r.stderr)
        assert r.returncode != 0
        assert "the store (PostgreSQL) cannot be reached:" in r.stderr, r.stderr
        assert "nothing was saved" in r.stderr and SECRET not in r.stderr
        # What the daemon holds is still served.
        r = fg.cli("partner", "get", "fabrikam.test")
        assert r.returncode == 0 and "Fabrikam one" in r.stdout, r.stdout + r.stderr
        pg.start()
        # No restart: the next job connects again.
        r = fg.cli("partner", "set", "fabrikam.test", "--description", "Fabrikam three")
        assert r.returncode == 0, r.stderr
        assert pg.psql("SELECT description FROM partners").strip() == "Fabrikam three"
        # The refused change was not audited; the two others were.
        assert pg.psql("SELECT count(*) FROM audit WHERE target = 'fabrikam.test'").strip() \
            == "2"
    finally:
        fg.stop()
    assert SECRET not in fg.read_log()


def test_backup_and_restore(pg):
    fg = make(pg)
    assert fg.cli("partner", "new", "fabrikam.test").returncode == 0
    dump = os.path.join(fg.dir, "store.dump")
    r = fg.cli("backup", dump)
    print(r.stdout + r.stderr)
    assert r.returncode == 0, r.stderr
    assert "with pg_dump --format=custom" in r.stdout and SECRET not in r.stdout + r.stderr
    assert stat.S_IMODE(os.stat(dump).st_mode) == 0o600
    assert fg.cli("backup", dump).returncode == 1  # never overwritten
    assert fg.cli("partner", "remove", "fabrikam.test").returncode == 0
    assert pg.psql("SELECT count(*) FROM partners").strip() == "0"
    r = fg.cli("restore", dump)
    print(r.stdout + r.stderr)
    assert r.returncode == 0, r.stderr
    assert "pg_restore --clean --if-exists --single-transaction" in r.stdout
    assert pg.psql("SELECT domain FROM partners").strip() == "fabrikam.test"
    r = fg.cli("partner", "get", "fabrikam.test")
    assert r.returncode == 0, r.stderr

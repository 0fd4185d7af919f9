/* What the store tests share: a fresh folder per test (cmocka setup and
 * teardown), opening the store in it, and raw SQL from a connection of its
 * own, as another process would see the file. Include after cmocka.h.
 *
 * With FG_TEST_PG set (a libpq connection string to a throwaway server,
 * tests/unit/pg_run.sh), the same tests run on PostgreSQL: each test gets
 * a database of its own, created in setup and dropped in teardown, and the
 * raw SQL goes to it. */
#ifndef FG_TEST_STORE_TESTDIR_H
#define FG_TEST_STORE_TESTDIR_H

#include "fg.h"
#include "store_sqlite.h"

#include <dirent.h>
#include <libpq-fe.h>
#include <sqlite3.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

struct tdir {
	char dir[64];
	char path[128];
	char dbname[48]; /* PostgreSQL */
	char dsn[400];
};

/* The test being run, for raw_int() and raw_exec(), which name the store
 * by its path. */
static struct tdir *tdir_current;

static inline bool test_pg(void)
{
	const char *e = getenv("FG_TEST_PG");

	return e != NULL && e[0] != '\0';
}

/* A command on the server's maintenance database. */
static inline void pg_admin(const char *sql)
{
	char dsn[400];
	PGconn *c;
	PGresult *r;

	snprintf(dsn, sizeof(dsn), "%s dbname=postgres", getenv("FG_TEST_PG"));
	c = PQconnectdb(dsn);
	if (PQstatus(c) != CONNECTION_OK)
		fail_msg("cannot reach the test PostgreSQL: %s", PQerrorMessage(c));
	r = PQexec(c, sql);
	if (PQresultStatus(r) != PGRES_COMMAND_OK)
		fail_msg("%s: %s", sql, PQerrorMessage(c));
	PQclear(r);
	PQfinish(c);
}

/* The store of test t, on the backend under test. */
static inline struct store_target test_target(const struct tdir *t)
{
	struct store_target tg = {.backend = STORE_SQLITE, .path = t->path, .node = "test"};

	if (test_pg()) {
		tg.backend = STORE_POSTGRESQL;
		tg.dsn = t->dsn;
		tg.pool_size = 2;
	}
	return tg;
}

static inline int test_open(const struct tdir *t, struct store_db **db, char *err, size_t errlen)
{
	struct store_target tg = test_target(t);

	return store_open(&tg, db, err, errlen);
}

static inline int setup(void **state)
{
	struct tdir *t = calloc(1, sizeof(*t));

	if (t == NULL)
		return -1;
	snprintf(t->dir, sizeof(t->dir), "/tmp/fg-test-store.XXXXXX");
	if (mkdtemp(t->dir) == NULL) {
		free(t);
		return -1;
	}
	snprintf(t->path, sizeof(t->path), "%s/fedgate.db", t->dir);
	if (test_pg()) {
		static unsigned n;
		char sql[96];

		snprintf(t->dbname, sizeof(t->dbname), "fgt_%d_%u", (int)getpid(), ++n);
		snprintf(t->dsn, sizeof(t->dsn), "%s dbname=%s", getenv("FG_TEST_PG"), t->dbname);
		snprintf(sql, sizeof(sql), "CREATE DATABASE %s", t->dbname);
		pg_admin(sql);
	}
	tdir_current = t;
	*state = t;
	return 0;
}

static inline int teardown(void **state)
{
	struct tdir *t = *state;
	DIR *d = opendir(t->dir);
	struct dirent *e;

	while (d != NULL && (e = readdir(d)) != NULL) {
		char p[400];

		if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
			continue;
		snprintf(p, sizeof(p), "%s/%s", t->dir, e->d_name);
		unlink(p);
	}
	if (d != NULL)
		closedir(d);
	rmdir(t->dir);
	if (t->dbname[0] != '\0') {
		char sql[96];

		snprintf(sql, sizeof(sql), "DROP DATABASE %s WITH (FORCE)", t->dbname);
		pg_admin(sql);
	}
	if (tdir_current == t)
		tdir_current = NULL;
	free(t);
	return 0;
}

static inline struct store_db *open_ok(const struct tdir *t)
{
	struct store_db *db = NULL;
	char err[512] = "";

	if (test_open(t, &db, err, sizeof(err)) != FG_OK)
		fail_msg("store_open: %s", err);
	assert_non_null(db);
	return db;
}

/* PostgreSQL: a connection of its own to the current test's database. */
static inline PGconn *raw_pg(void)
{
	PGconn *c;

	assert_non_null(tdir_current);
	c = PQconnectdb(tdir_current->dsn);
	if (PQstatus(c) != CONNECTION_OK)
		fail_msg("cannot reach the test database: %s", PQerrorMessage(c));
	return c;
}

static inline long long raw_pg_int(const char *sql)
{
	PGconn *c = raw_pg();
	PGresult *r = PQexec(c, sql);
	long long v = -1;

	if (PQresultStatus(r) != PGRES_TUPLES_OK)
		fail_msg("%s: %s", sql, PQerrorMessage(c));
	if (PQntuples(r) > 0 && !PQgetisnull(r, 0, 0)) {
		const char *x = PQgetvalue(r, 0, 0);

		v = strcmp(x, "t") == 0 ? 1 : strcmp(x, "f") == 0 ? 0 : strtoll(x, NULL, 10);
	}
	PQclear(r);
	PQfinish(c);
	return v;
}

static inline void raw_pg_exec(const char *sql)
{
	PGconn *c = raw_pg();
	PGresult *r = PQexec(c, sql);

	if (PQresultStatus(r) != PGRES_COMMAND_OK && PQresultStatus(r) != PGRES_TUPLES_OK)
		fail_msg("%s: %s", sql, PQerrorMessage(c));
	PQclear(r);
	PQfinish(c);
}

/* One integer from a separate connection, as another process sees it. */
static inline long long raw_int(const char *path, const char *sql)
{
	sqlite3 *h = NULL;
	sqlite3_stmt *s = NULL;
	long long v = -1;

	if (test_pg() && tdir_current != NULL && strcmp(path, tdir_current->path) == 0)
		return raw_pg_int(sql);
	assert_int_equal(sqlite3_open_v2(path, &h, SQLITE_OPEN_READWRITE, NULL), SQLITE_OK);
	assert_int_equal(sqlite3_prepare_v2(h, sql, -1, &s, NULL), SQLITE_OK);
	if (sqlite3_step(s) == SQLITE_ROW)
		v = sqlite3_column_int64(s, 0);
	sqlite3_finalize(s);
	sqlite3_close(h);
	return v;
}

static inline void raw_exec(const char *path, const char *sql)
{
	sqlite3 *h = NULL;
	char *msg = NULL;

	if (test_pg() && tdir_current != NULL && strcmp(path, tdir_current->path) == 0) {
		raw_pg_exec(sql);
		return;
	}
	assert_int_equal(
		sqlite3_open_v2(path, &h, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE, NULL),
		SQLITE_OK);
	if (sqlite3_exec(h, sql, NULL, NULL, &msg) != SQLITE_OK) {
		char copy[256];

		snprintf(copy, sizeof(copy), "%s", msg != NULL ? msg : "?");
		sqlite3_free(msg);
		sqlite3_close(h);
		fail_msg("%s: %s", sql, copy);
	}
	sqlite3_close(h);
}

#endif

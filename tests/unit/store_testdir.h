/* What the store tests share: a fresh folder per test (cmocka setup and
 * teardown), opening the store in it, and raw SQL from a connection of its
 * own, as another process would see the file. Include after cmocka.h. */
#ifndef FG_TEST_STORE_TESTDIR_H
#define FG_TEST_STORE_TESTDIR_H

#include "fg.h"
#include "store_sqlite.h"

#include <dirent.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

struct tdir {
	char dir[64];
	char path[128];
};

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
	free(t);
	return 0;
}

static inline struct store_db *open_ok(const struct tdir *t)
{
	struct store_db *db = NULL;
	char err[512] = "";

	if (store_db_open(t->path, &db, err, sizeof(err)) != FG_OK)
		fail_msg("store_db_open: %s", err);
	assert_non_null(db);
	return db;
}

/* One integer from a separate connection, as another process sees it. */
static inline long long raw_int(const char *path, const char *sql)
{
	sqlite3 *h = NULL;
	sqlite3_stmt *s = NULL;
	long long v = -1;

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

/* The statement layer: one set of calls (prepare with ?N placeholders,
 * bind text, integers and NULL, step, read columns, reset) over SQLite and
 * over PostgreSQL (store_pg.c), so that every store_*.c file is written
 * once. Results keep SQLite's names (enum store_src); PostgreSQL's
 * SQLSTATEs are mapped onto them. */
#include "store_sqlite.h"

#include "store_db_int.h"

#include "fg.h"

#include <stdlib.h>
#include <string.h>

int store_src_from_sqlite(int src)
{
	switch (src) {
	case SQLITE_OK: return SDB_OK;
	case SQLITE_ROW: return SDB_ROW;
	case SQLITE_DONE: return SDB_DONE;
	case SQLITE_CONSTRAINT_PRIMARYKEY: return SDB_CONSTRAINT_PRIMARYKEY;
	case SQLITE_CONSTRAINT_UNIQUE: return SDB_CONSTRAINT_UNIQUE;
	case SQLITE_CONSTRAINT_FOREIGNKEY: return SDB_CONSTRAINT_FOREIGNKEY;
	case SQLITE_CONSTRAINT_TRIGGER: return SDB_CONSTRAINT_TRIGGER;
	}
	switch (src & 0xff) {
	case SQLITE_CONSTRAINT: return SDB_CONSTRAINT;
	case SQLITE_NOMEM: return SDB_NOMEM;
	case SQLITE_BUSY:
	case SQLITE_LOCKED: return SDB_BUSY;
	default: return SDB_ERROR;
	}
}

enum store_backend store_db_backend(const struct store_db *db)
{
	return db->backend;
}

struct store_stmt *store_stmt_new(struct store_db *db, const char *sql, char *err, size_t errlen)
{
	struct store_stmt *s = calloc(1, sizeof(*s));
	int rc;

	if (s == NULL) {
		store_db_set_err(err, errlen, "out of memory");
		return NULL;
	}
	s->db = db;
	if (db->backend == STORE_POSTGRESQL) {
		rc = store_pg_prepare(s, sql, err, errlen);
		if (rc != FG_OK) {
			store_stmt_free(s);
			return NULL;
		}
		return s;
	}
	if (sqlite3_prepare_v3(db->h, sql, -1, SQLITE_PREPARE_PERSISTENT, &s->lite, NULL) !=
	    SQLITE_OK) {
		store_db_set_err(err, errlen, "the store %s cannot prepare a statement: %s",
				 db->path, sqlite3_errmsg(db->h));
		free(s);
		return NULL;
	}
	return s;
}

void store_stmt_free(struct store_stmt *s)
{
	if (s == NULL)
		return;
	if (s->db->backend == STORE_POSTGRESQL)
		store_pg_reset(s);
	sqlite3_finalize(s->lite);
	free(s->pgsql);
	free(s);
}

static int bind_copy(struct store_stmt *s, int i, char *copy)
{
	if (i < 1 || i > STMT_MAXP) {
		free(copy);
		return SDB_ERROR;
	}
	free(s->val[i - 1]);
	s->val[i - 1] = copy;
	return SDB_OK;
}

int store_db_bind_text(struct store_stmt *s, int i, const char *v)
{
	char *copy;

	if (s->lite != NULL) {
		if (v == NULL)
			return store_src_from_sqlite(sqlite3_bind_null(s->lite, i));
		return store_src_from_sqlite(
			sqlite3_bind_text(s->lite, i, v, -1, SQLITE_TRANSIENT));
	}
	if (v == NULL)
		return bind_copy(s, i, NULL);
	copy = strdup(v);
	if (copy == NULL)
		return SDB_NOMEM;
	return bind_copy(s, i, copy);
}

int store_bind_int64(struct store_stmt *s, int i, long long v)
{
	char num[24];

	if (s->lite != NULL)
		return store_src_from_sqlite(sqlite3_bind_int64(s->lite, i, v));
	snprintf(num, sizeof(num), "%lld", v);
	return store_db_bind_text(s, i, num);
}

int store_bind_null(struct store_stmt *s, int i)
{
	return store_db_bind_text(s, i, NULL);
}

int store_step(struct store_stmt *s)
{
	if (s->lite != NULL)
		return store_src_from_sqlite(sqlite3_step(s->lite));
	return store_pg_step(s);
}

void store_reset(struct store_stmt *s)
{
	if (s->lite != NULL) {
		sqlite3_reset(s->lite);
		sqlite3_clear_bindings(s->lite);
		return;
	}
	store_pg_reset(s);
}

int store_db_run(struct store_stmt *s)
{
	int src = store_step(s);

	store_reset(s);
	return src;
}

const char *store_db_col_text(struct store_stmt *s, int i)
{
	if (s->lite != NULL)
		return (const char *)sqlite3_column_text(s->lite, i);
	return store_pg_col(s, i);
}

long long store_col_int64(struct store_stmt *s, int i)
{
	const char *v;

	if (s->lite != NULL)
		return sqlite3_column_int64(s->lite, i);
	v = store_pg_col(s, i);
	if (v == NULL)
		return 0;
	/* EXISTS and comparisons answer booleans. */
	if (strcmp(v, "t") == 0)
		return 1;
	if (strcmp(v, "f") == 0)
		return 0;
	return strtoll(v, NULL, 10);
}

int store_col_null(struct store_stmt *s, int i)
{
	if (s->lite != NULL)
		return sqlite3_column_type(s->lite, i) == SQLITE_NULL;
	return store_pg_isnull(s, i);
}

long long store_db_changes(struct store_db *db)
{
	if (db->backend == STORE_POSTGRESQL)
		return store_pg_changes(db);
	return sqlite3_changes(db->h);
}

const char *store_db_errmsg(struct store_db *db)
{
	if (db->backend == STORE_POSTGRESQL)
		return store_pg_errmsg(db);
	return sqlite3_errmsg(db->h);
}

const char *store_db_path(const struct store_db *db)
{
	return db->path;
}

struct store_stmt *store_db_stmt2(struct store_db *db, const char *sql, const char *pg, char *err,
				  size_t errlen)
{
	struct store_stmt *s;

	for (size_t i = 0; i < db->next; i++)
		if (db->ext[i].sql == sql)
			return db->ext[i].st;
	if (db->next == EXT_STMT_MAX) {
		store_db_set_err(err, errlen,
				 "the store %s has no room for another statement (raise "
				 "EXT_STMT_MAX in store_db_int.h)",
				 db->path);
		return NULL;
	}
	s = store_stmt_new(db, db->backend == STORE_POSTGRESQL && pg != NULL ? pg : sql, err,
			   errlen);
	if (s == NULL)
		return NULL;
	db->ext[db->next].sql = sql;
	db->ext[db->next].st = s;
	db->next++;
	return s;
}

struct store_stmt *store_db_stmt(struct store_db *db, const char *sql, char *err, size_t errlen)
{
	return store_db_stmt2(db, sql, NULL, err, errlen);
}

/* XEP-0191 blocklists in SQLite (migration 9 in store_sqlite.c). Same
 * rules as store_users.c: bound parameters of cached statements only. */
#include "store_block.h"

#include "fg.h"

#include <stdio.h>

static const char SQL_BLOCK_LOAD[] = "SELECT owner, jid FROM blocklist ORDER BY owner, jid";
static const char SQL_BLOCK_ADD[] =
	"INSERT INTO blocklist (owner, jid) VALUES (?1, ?2) ON CONFLICT (owner, jid) DO NOTHING";
static const char SQL_BLOCK_REMOVE[] = "DELETE FROM blocklist WHERE owner = ?1 AND jid = ?2";
static const char SQL_BLOCK_CLEAR[] = "DELETE FROM blocklist WHERE owner = ?1";

int store_db_block_load(struct store_db *db, store_block_cb cb, void *ud, char *err, size_t errlen)
{
	struct store_stmt *s = store_db_stmt(db, SQL_BLOCK_LOAD, err, errlen);
	int src, rc = FG_OK;

	if (s == NULL)
		return FG_ERR;
	while ((src = store_step(s)) == SDB_ROW) {
		const char *owner = store_db_col_text(s, 0), *jid = store_db_col_text(s, 1);

		if (owner == NULL || jid == NULL) {
			store_db_set_err(err, errlen, "out of memory reading the blocklists of %s",
					 store_db_path(db));
			rc = FG_NOMEM;
			break;
		}
		if (cb(ud, owner, jid) != 0)
			break;
	}
	if (rc == FG_OK && src != SDB_ROW && src != SDB_DONE)
		rc = store_db_fail(db, src, err, errlen, "read the blocklists");
	store_reset(s);
	return rc;
}

/* One statement per JID (or one for the whole list) inside a transaction:
 * a request is stored whole or not at all. */
static int change(struct store_db *db, const char *sql, const char *owner, const char *const *jids,
		  size_t n, char *err, size_t errlen, const char *what)
{
	int rc = store_db_begin(db, err, errlen);

	if (rc != FG_OK)
		return rc;
	struct store_stmt *s = store_db_stmt(db, sql, err, errlen);
	if (s == NULL)
		return store_db_end(db, FG_ERR, err, errlen);
	for (size_t i = 0; rc == FG_OK && i < (n ? n : 1); i++) {
		int src = store_db_bind_text(s, 1, owner);

		if (src == SDB_OK && n)
			src = store_db_bind_text(s, 2, jids[i]);
		if (src == SDB_OK)
			src = store_db_run(s);
		if (src == SDB_CONSTRAINT_FOREIGNKEY) {
			store_db_set_err(err, errlen, "there is no user %s; nothing was saved",
					 owner);
			rc = FG_NOTFOUND;
		} else if (src != SDB_DONE) {
			char buf[400];

			snprintf(buf, sizeof(buf), "%s of %.300s", what, owner);
			rc = store_db_fail(db, src, err, errlen, buf);
		}
	}
	return store_db_end(db, rc, err, errlen);
}

int store_db_block_add(struct store_db *db, const char *owner, const char *const *jids, size_t n,
		       char *err, size_t errlen)
{
	if (owner == NULL || n == 0) {
		store_db_set_err(err, errlen, "no blocklist items given to save");
		return FG_INVAL;
	}
	return change(db, SQL_BLOCK_ADD, owner, jids, n, err, errlen, "save the blocklist");
}

int store_db_block_remove(struct store_db *db, const char *owner, const char *const *jids, size_t n,
			  char *err, size_t errlen)
{
	if (owner == NULL) {
		store_db_set_err(err, errlen, "no user given to unblock for");
		return FG_INVAL;
	}
	return change(db, n ? SQL_BLOCK_REMOVE : SQL_BLOCK_CLEAR, owner, jids, n, err, errlen,
		      "change the blocklist");
}

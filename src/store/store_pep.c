/* Personal eventing nodes and items (migration 8 in store_sqlite.c); the
 * rules of store_sqlite.c hold: bound parameters of cached statements,
 * rows this program cannot read back are errors that name them. */
#include "store_pep.h"

#include "fg.h"

#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char SQL_NODE_GET[] =
	"SELECT access_model, max_items, persist FROM pep_nodes WHERE owner = ?1 AND node = ?2";
static const char SQL_NODE_PUT[] =
	"INSERT INTO pep_nodes (owner, node, access_model, max_items, persist, created_ms)"
	" VALUES (?1, ?2, ?3, ?4, ?5, ?6) ON CONFLICT (owner, node) DO UPDATE SET"
	" access_model = excluded.access_model, max_items = excluded.max_items,"
	" persist = excluded.persist";
static const char SQL_NODE_COUNT[] = "SELECT count(*) FROM pep_nodes WHERE owner = ?1";
static const char SQL_NODE_DELETE[] = "DELETE FROM pep_nodes WHERE owner = ?1 AND node = ?2";
static const char SQL_PURGE[] = "DELETE FROM pep_items WHERE owner = ?1 AND node = ?2";
/* The newest row is the highest rowid: a replaced item is deleted and
 * inserted again, so it becomes the newest, as XEP-0060 §7.1.2 wants. */
static const char SQL_ITEM_PUT[] = "INSERT OR REPLACE INTO pep_items (owner, node, id, xml, at_ms)"
				   " VALUES (?1, ?2, ?3, ?4, ?5)";
/* PostgreSQL's rowid is a column of ours (store_pg.c): a replaced item
 * takes the next number, which makes it the newest the same way. */
static const char PG_ITEM_PUT[] =
	"INSERT INTO pep_items (owner, node, id, xml, at_ms) VALUES (?1, ?2, ?3, ?4, ?5)"
	" ON CONFLICT (owner, node, id) DO UPDATE SET xml = excluded.xml, at_ms = excluded.at_ms,"
	" rowid = nextval(pg_get_serial_sequence('pep_items', 'rowid'))";
static const char SQL_TRIM[] =
	"DELETE FROM pep_items WHERE owner = ?1 AND node = ?2 AND rowid NOT IN"
	" (SELECT rowid FROM pep_items WHERE owner = ?1 AND node = ?2 ORDER BY rowid DESC"
	" LIMIT ?3)";
static const char SQL_RETRACT[] =
	"DELETE FROM pep_items WHERE owner = ?1 AND node = ?2 AND id = ?3";
static const char SQL_ITEMS[] = "SELECT id, xml, at_ms FROM pep_items WHERE owner = ?1 AND"
				" node = ?2 ORDER BY rowid DESC LIMIT ?3";
static const char SQL_ITEM_BY_ID[] =
	"SELECT id, xml, at_ms FROM pep_items WHERE owner = ?1 AND node = ?2 AND id = ?3";
static const char SQL_NODES[] =
	"SELECT n.node, n.access_model, n.max_items, n.persist, i.id, i.xml FROM pep_nodes n"
	" LEFT JOIN pep_items i ON i.rowid = (SELECT rowid FROM pep_items WHERE owner = n.owner"
	" AND node = n.node ORDER BY rowid DESC LIMIT 1) WHERE n.owner = ?1 ORDER BY n.node";

static void done_reading(struct store_stmt *s)
{
	store_reset(s);
}

static int bind2(struct store_stmt *s, const char *owner, const char *node)
{
	int src = store_db_bind_text(s, 1, owner);
	if (src == SDB_OK && node)
		src = store_db_bind_text(s, 2, node);
	return src;
}

/* A configuration row into c; false when the row makes no sense. */
static bool read_conf(struct store_stmt *s, int col, struct pubsub_conf *c)
{
	const char *a = store_db_col_text(s, col);
	c->max_items = (long)store_col_int64(s, col + 1);
	c->persist = store_col_int64(s, col + 2) != 0;
	return pubsub_access_parse(a, &c->access) == 0 && c->max_items >= 1;
}

int store_db_pep_node_get(struct store_db *db, const char *owner, const char *node,
			  struct pubsub_conf *c, bool *found, char *err, size_t errlen)
{
	struct store_stmt *s = store_db_stmt(db, SQL_NODE_GET, err, errlen);
	int rc = FG_OK;
	*found = false;
	if (!s)
		return FG_ERR;
	int src = bind2(s, owner, node);
	if (src == SDB_OK)
		src = store_step(s);
	if (src == SDB_ROW) {
		*found = true;
		if (!read_conf(s, 0, c)) {
			store_db_set_err(err, errlen,
					 "the store %s has a bad node %.200s of %.200s",
					 store_db_path(db), node, owner);
			rc = FG_INVAL;
		}
	} else if (src != SDB_DONE) {
		rc = store_db_fail(db, src, err, errlen, "read a personal eventing node");
	}
	done_reading(s);
	return rc;
}

static int trim(struct store_db *db, const char *owner, const char *node, long keep, char *err,
		size_t errlen)
{
	struct store_stmt *s = store_db_stmt(db, SQL_TRIM, err, errlen);
	if (!s)
		return FG_ERR;
	int src = bind2(s, owner, node);
	if (src == SDB_OK)
		src = store_bind_int64(s, 3, keep);
	if (src == SDB_OK)
		src = store_db_run(s);
	if (src != SDB_DONE)
		return store_db_fail(db, src, err, errlen, "trim a personal eventing node");
	return FG_OK;
}

int store_db_pep_node_put(struct store_db *db, const char *owner, const char *node,
			  const struct pubsub_conf *c, char *err, size_t errlen)
{
	struct store_stmt *s = store_db_stmt(db, SQL_NODE_PUT, err, errlen);
	if (!s)
		return FG_ERR;
	int src = bind2(s, owner, node);
	if (src == SDB_OK)
		src = store_db_bind_text(s, 3, pubsub_access_name(c->access));
	if (src == SDB_OK)
		src = store_bind_int64(s, 4, c->max_items);
	if (src == SDB_OK)
		src = store_bind_int64(s, 5, c->persist);
	if (src == SDB_OK)
		src = store_bind_int64(s, 6, fg_now_ms());
	if (src == SDB_OK)
		src = store_db_run(s);
	if (src != SDB_DONE)
		return store_db_fail(db, src, err, errlen, "save a personal eventing node");
	return trim(db, owner, node, c->persist ? c->max_items : 1, err, errlen);
}

int store_db_pep_node_count(struct store_db *db, const char *owner, long *n, char *err,
			    size_t errlen)
{
	struct store_stmt *s = store_db_stmt(db, SQL_NODE_COUNT, err, errlen);
	int rc = FG_OK;
	*n = 0;
	if (!s)
		return FG_ERR;
	int src = bind2(s, owner, NULL);
	if (src == SDB_OK)
		src = store_step(s);
	if (src == SDB_ROW)
		*n = (long)store_col_int64(s, 0);
	else
		rc = store_db_fail(db, src, err, errlen, "count personal eventing nodes");
	done_reading(s);
	return rc;
}

static int delete2(struct store_db *db, const char *sql, const char *owner, const char *node,
		   const char *id, bool *found, char *err, size_t errlen)
{
	struct store_stmt *s = store_db_stmt(db, sql, err, errlen);
	if (!s)
		return FG_ERR;
	int src = bind2(s, owner, node);
	if (src == SDB_OK && id)
		src = store_db_bind_text(s, 3, id);
	if (src == SDB_OK)
		src = store_db_run(s);
	if (src != SDB_DONE)
		return store_db_fail(db, src, err, errlen, "delete from a personal eventing node");
	if (found)
		*found = store_db_changes(db) > 0;
	return FG_OK;
}

int store_db_pep_node_delete(struct store_db *db, const char *owner, const char *node, bool *found,
			     char *err, size_t errlen)
{
	return delete2(db, SQL_NODE_DELETE, owner, node, NULL, found, err, errlen);
}

int store_db_pep_purge(struct store_db *db, const char *owner, const char *node, char *err,
		       size_t errlen)
{
	return delete2(db, SQL_PURGE, owner, node, NULL, NULL, err, errlen);
}

int store_db_pep_retract(struct store_db *db, const char *owner, const char *node, const char *id,
			 bool *found, char *err, size_t errlen)
{
	return delete2(db, SQL_RETRACT, owner, node, id, found, err, errlen);
}

int store_db_pep_item_put(struct store_db *db, const char *owner, const char *node, const char *id,
			  const char *xml, long long at_ms, long keep, char *err, size_t errlen)
{
	struct store_stmt *s = store_db_stmt2(db, SQL_ITEM_PUT, PG_ITEM_PUT, err, errlen);
	if (!s)
		return FG_ERR;
	int src = bind2(s, owner, node);
	if (src == SDB_OK)
		src = store_db_bind_text(s, 3, id);
	if (src == SDB_OK)
		src = store_db_bind_text(s, 4, xml);
	if (src == SDB_OK)
		src = store_bind_int64(s, 5, at_ms);
	if (src == SDB_OK)
		src = store_db_run(s);
	if (src != SDB_DONE)
		return store_db_fail(db, src, err, errlen, "save a personal eventing item");
	return trim(db, owner, node, keep < 1 ? 1 : keep, err, errlen);
}

static int read_items(struct store_db *db, struct store_stmt *s, store_pep_item_cb cb, void *ud,
		      char *err, size_t errlen)
{
	int src, rc = FG_OK;
	while ((src = store_step(s)) == SDB_ROW) {
		const char *id = store_db_col_text(s, 0), *xml = store_db_col_text(s, 1);
		if (!id || !xml) {
			store_db_set_err(err, errlen, "the store %s has an item without id or xml",
					 store_db_path(db));
			rc = FG_INVAL;
			break;
		}
		if (cb(ud, id, xml, store_col_int64(s, 2)) != 0)
			break;
	}
	if (rc == FG_OK && src != SDB_ROW && src != SDB_DONE)
		rc = store_db_fail(db, src, err, errlen, "read personal eventing items");
	done_reading(s);
	return rc;
}

int store_db_pep_items(struct store_db *db, const char *owner, const char *node,
		       const char *const *ids, size_t nids, long max, store_pep_item_cb cb,
		       void *ud, char *err, size_t errlen)
{
	if (nids == 0) {
		struct store_stmt *s = store_db_stmt(db, SQL_ITEMS, err, errlen);
		if (!s)
			return FG_ERR;
		int src = bind2(s, owner, node);
		if (src == SDB_OK)
			/* No limit: SQLite takes -1, PostgreSQL does not. */
			src = store_bind_int64(s, 3, max > 0 ? max : LLONG_MAX);
		if (src != SDB_OK) {
			done_reading(s);
			return store_db_fail(db, src, err, errlen, "read personal eventing items");
		}
		return read_items(db, s, cb, ud, err, errlen);
	}
	for (size_t i = 0; i < nids; i++) {
		struct store_stmt *s = store_db_stmt(db, SQL_ITEM_BY_ID, err, errlen);
		if (!s)
			return FG_ERR;
		int src = bind2(s, owner, node);
		if (src == SDB_OK)
			src = store_db_bind_text(s, 3, ids[i]);
		if (src != SDB_OK) {
			done_reading(s);
			return store_db_fail(db, src, err, errlen, "read personal eventing items");
		}
		int rc = read_items(db, s, cb, ud, err, errlen);
		if (rc != FG_OK)
			return rc;
	}
	return FG_OK;
}

int store_db_pep_nodes(struct store_db *db, const char *owner, store_pep_node_cb cb, void *ud,
		       char *err, size_t errlen)
{
	struct store_stmt *s = store_db_stmt(db, SQL_NODES, err, errlen);
	int src, rc = FG_OK;
	if (!s)
		return FG_ERR;
	src = bind2(s, owner, NULL);
	while (src == SDB_OK && (src = store_step(s)) == SDB_ROW) {
		struct pubsub_conf c;
		const char *node = store_db_col_text(s, 0);
		if (!node || !read_conf(s, 1, &c)) {
			store_db_set_err(err, errlen, "the store %s has a bad node of %.200s",
					 store_db_path(db), owner);
			rc = FG_INVAL;
			break;
		}
		if (cb(ud, node, &c, store_db_col_text(s, 4), store_db_col_text(s, 5)) != 0)
			break;
		src = SDB_OK;
	}
	if (rc == FG_OK && src != SDB_ROW && src != SDB_DONE && src != SDB_OK)
		rc = store_db_fail(db, src, err, errlen, "read personal eventing nodes");
	done_reading(s);
	return rc;
}

/* The message archive's SQL (schema migration 7 in store_sqlite.c).
 *
 * Same rules as store_sqlite.c: every value is a bound parameter of a
 * statement kept in the handle's cache. Message text is kept as it was
 * serialized and never put into an error sentence. */
#include "store_archive.h"

#include "fg.h"

#include <assert.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

/* ---- statements (the cache is keyed by these arrays' addresses) ---- */

/* DO NOTHING: a repeated stanza-id. The owner was found in the same
 * transaction (owner_lookup), so the foreign key holds. */
static const char SQL_INSERT[] =
	"INSERT INTO archive (owner, with_jid, ts_ms, stanza_id, outgoing, xml)"
	" VALUES (?1, ?2, ?3, ?4, ?5, ?6) ON CONFLICT (owner, stanza_id) DO NOTHING";
/* ids grow across owners, so an owner whose newest and oldest ids are
 * closer than the limit cannot be over it: two index lookups spare the
 * scan of the limit's length that the trim itself costs. */
static const char SQL_SPAN[] = "SELECT (SELECT max(id) FROM archive WHERE owner = ?1) -"
			       " (SELECT min(id) FROM archive WHERE owner = ?1)";
static const char SQL_TRIM[] =
	"DELETE FROM archive WHERE owner = ?1 AND id <= (SELECT id FROM archive WHERE owner = ?1"
	" ORDER BY id DESC LIMIT 1 OFFSET ?2)";
static const char SQL_IN_ROSTER[] =
	"SELECT EXISTS (SELECT 1 FROM roster WHERE \"user\" = ?1 AND contact = ?2 AND hidden = 0)";
static const char SQL_ID_OF[] = "SELECT id FROM archive WHERE owner = ?1 AND stanza_id = ?2";
#define FILTERS                                                       \
	" owner = ?1 AND (CAST(?2 AS TEXT) IS NULL OR with_jid = ?2)" \
	" AND (CAST(?3 AS BIGINT) IS NULL OR ts_ms >= ?3)"            \
	" AND (CAST(?4 AS BIGINT) IS NULL OR ts_ms <= ?4)"
static const char SQL_PAGE_FWD[] = "SELECT stanza_id, ts_ms, xml FROM archive WHERE" FILTERS
				   " AND id > ?5 AND id < ?6 ORDER BY id LIMIT ?7";
static const char SQL_PAGE_BACK[] = "SELECT stanza_id, ts_ms, xml FROM archive WHERE" FILTERS
				    " AND id > ?5 AND id < ?6 ORDER BY id DESC LIMIT ?7";
static const char SQL_COUNT[] = "SELECT count(*) FROM archive WHERE" FILTERS;
static const char SQL_EXPIRE[] = "DELETE FROM archive WHERE ts_ms < ?1";
static const char SQL_PREFS_GET[] =
	"SELECT mode, always, never FROM archive_prefs WHERE owner = ?1";
static const char SQL_PREFS_PUT[] =
	"INSERT INTO archive_prefs (owner, mode, always, never) VALUES (?1, ?2, ?3, ?4)"
	" ON CONFLICT (owner) DO UPDATE SET mode = excluded.mode, always = excluded.always,"
	" never = excluded.never";
static const char SQL_USER_EXISTS[] = "SELECT EXISTS (SELECT 1 FROM users WHERE jid = ?1)";

static const char *const mode_names[] = {"always", "roster", "never"};

int archive_mode_parse(const char *s)
{
	for (size_t i = 0; s && i < FG_ARRAY_LEN(mode_names); i++)
		if (strcmp(s, mode_names[i]) == 0)
			return (int)i;
	return -1;
}

const char *archive_mode_name(enum archive_mode m)
{
	assert((size_t)m < FG_ARRAY_LEN(mode_names));
	return mode_names[m];
}

static void done_with(struct store_stmt *s)
{
	store_reset(s);
}

/* Is jid a whole line of list? */
static bool in_list(const char *list, const char *jid)
{
	size_t n = strlen(jid);
	for (const char *p = list; p && *p;) {
		const char *nl = strchr(p, '\n');
		size_t len = nl ? (size_t)(nl - p) : strlen(p);
		if (len == n && memcmp(p, jid, n) == 0)
			return true;
		p = nl ? nl + 1 : NULL;
	}
	return false;
}

/* What a batch learned about an owner, read once per batch: most batches
 * hold a few conversations, and a lookup per row cost a third of the
 * batch. */
struct owner_info {
	char *owner;
	bool exists, has_prefs;
	enum archive_mode mode;
	char *always, *never;
};

#define OWNER_CACHE 32

struct owner_cache {
	struct owner_info v[OWNER_CACHE];
	size_t n, next; /* next: the slot reused when full */
};

static void owner_info_clear(struct owner_info *o)
{
	free(o->owner);
	free(o->always);
	free(o->never);
	memset(o, 0, sizeof(*o));
}

static int owner_lookup(struct store_db *db, struct owner_cache *c, const char *owner,
			const struct owner_info **out, char *err, size_t errlen)
{
	for (size_t i = 0; i < c->n; i++)
		if (strcmp(c->v[i].owner, owner) == 0) {
			*out = &c->v[i];
			return FG_OK;
		}
	struct owner_info got = {0};
	struct store_stmt *e = store_db_stmt(db, SQL_USER_EXISTS, err, errlen);
	if (e == NULL)
		return FG_ERR;
	int src = store_db_bind_text(e, 1, owner);
	if (src == SDB_OK)
		src = store_step(e);
	got.exists = src == SDB_ROW && store_col_int64(e, 0) != 0;
	done_with(e);
	if (src != SDB_ROW)
		return store_db_fail(db, src, err, errlen, "look up a user");
	int rc = store_db_archive_prefs_get(db, owner, &got.has_prefs, &got.mode, &got.always,
					    &got.never, err, errlen);
	if (rc == FG_OK && !(got.owner = strdup(owner))) {
		store_db_set_err(err, errlen, "out of memory archiving messages");
		rc = FG_NOMEM;
	}
	if (rc != FG_OK) {
		owner_info_clear(&got);
		return rc;
	}
	struct owner_info *o;
	if (c->n < OWNER_CACHE) {
		o = &c->v[c->n++];
	} else {
		o = &c->v[c->next];
		c->next = (c->next + 1) % OWNER_CACHE;
		owner_info_clear(o);
	}
	*o = got;
	*out = o;
	return FG_OK;
}

/* XEP-0313 §6.1: never beats always beats the default. */
static int wanted(struct store_db *db, const struct owner_info *o, const struct archive_row *r,
		  enum archive_mode def, bool *yes, char *err, size_t errlen)
{
	enum archive_mode mode = def;
	if (o->has_prefs) {
		if (in_list(o->never, r->with_jid)) {
			*yes = false;
			return FG_OK;
		}
		if (in_list(o->always, r->with_jid)) {
			*yes = true;
			return FG_OK;
		}
		mode = o->mode;
	}
	if (mode != ARCHIVE_ROSTER) {
		*yes = mode == ARCHIVE_ALWAYS;
		return FG_OK;
	}
	struct store_stmt *q = store_db_stmt(db, SQL_IN_ROSTER, err, errlen);
	if (q == NULL)
		return FG_ERR;
	int src = store_db_bind_text(q, 1, r->owner);
	if (src == SDB_OK)
		src = store_db_bind_text(q, 2, r->with_jid);
	if (src == SDB_OK)
		src = store_step(q);
	*yes = src == SDB_ROW && store_col_int64(q, 0) != 0;
	done_with(q);
	if (src != SDB_ROW)
		return store_db_fail(db, src, err, errlen, "read a roster");
	return FG_OK;
}

static int add_one(struct store_db *db, struct owner_cache *c, const struct archive_row *r,
		   enum archive_mode def, unsigned *stored, char *err, size_t errlen)
{
	if (!r->owner || !r->with_jid || !r->stanza_id || !r->xml) {
		store_db_set_err(err, errlen, "an archive row without owner, peer, id or text");
		return FG_INVAL;
	}
	const struct owner_info *o = NULL;
	int rc = owner_lookup(db, c, r->owner, &o, err, errlen);
	if (rc != FG_OK || !o->exists)
		return rc; /* no such user (any more): nothing to keep */
	bool yes = false;
	rc = wanted(db, o, r, def, &yes, err, errlen);
	if (rc != FG_OK || !yes)
		return rc;
	struct store_stmt *s = store_db_stmt(db, SQL_INSERT, err, errlen);
	if (s == NULL)
		return FG_ERR;
	int src = store_db_bind_text(s, 1, r->owner);
	if (src == SDB_OK)
		src = store_db_bind_text(s, 2, r->with_jid);
	if (src == SDB_OK)
		src = store_bind_int64(s, 3, r->ts_ms);
	if (src == SDB_OK)
		src = store_db_bind_text(s, 4, r->stanza_id);
	if (src == SDB_OK)
		src = store_bind_int64(s, 5, r->outgoing ? 1 : 0);
	if (src == SDB_OK)
		src = store_db_bind_text(s, 6, r->xml);
	if (src == SDB_OK)
		src = store_db_run(s);
	if (src != SDB_DONE)
		return store_db_fail(db, src, err, errlen, "archive a message");
	if (store_db_changes(db) == 0)
		return FG_OK; /* a repeated id */
	if (stored)
		(*stored)++;
	return FG_OK;
}

/* The oldest messages of owner beyond max go. */
static int trim(struct store_db *db, const char *owner, unsigned max, char *err, size_t errlen)
{
	struct store_stmt *s = store_db_stmt(db, SQL_SPAN, err, errlen);
	struct store_stmt *t = store_db_stmt(db, SQL_TRIM, err, errlen);
	if (s == NULL || t == NULL)
		return FG_ERR;
	int src = store_db_bind_text(s, 1, owner);
	if (src == SDB_OK)
		src = store_step(s);
	bool maybe_over =
		src == SDB_ROW && !store_col_null(s, 0) && store_col_int64(s, 0) >= (long long)max;
	done_with(s);
	if (src != SDB_ROW)
		return store_db_fail(db, src, err, errlen, "measure an archive");
	if (!maybe_over)
		return FG_OK;
	src = store_db_bind_text(t, 1, owner);
	if (src == SDB_OK)
		src = store_bind_int64(t, 2, max);
	if (src == SDB_OK)
		src = store_db_run(t);
	if (src != SDB_DONE)
		return store_db_fail(db, src, err, errlen, "trim an archive to its limit");
	return FG_OK;
}

static int by_owner(const void *a, const void *b)
{
	return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* Each owner of the batch once. */
static int trim_all(struct store_db *db, const struct archive_row *rows, size_t n, unsigned max,
		    char *err, size_t errlen)
{
	const char **owners = malloc((n ? n : 1) * sizeof(*owners));
	if (!owners) {
		store_db_set_err(err, errlen, "out of memory trimming archives");
		return FG_NOMEM;
	}
	size_t k = 0;
	for (size_t i = 0; i < n; i++)
		if (rows[i].trim)
			owners[k++] = rows[i].owner;
	qsort(owners, k, sizeof(*owners), by_owner);
	int rc = FG_OK;
	for (size_t i = 0; i < k && rc == FG_OK; i++)
		if (i == 0 || strcmp(owners[i], owners[i - 1]) != 0)
			rc = trim(db, owners[i], max, err, errlen);
	free(owners);
	return rc;
}

int store_db_archive_add(struct store_db *db, const struct archive_row *rows, size_t n,
			 enum archive_mode def, unsigned max_per_user, unsigned *stored, char *err,
			 size_t errlen)
{
	if (stored)
		*stored = 0;
	if (n == 0)
		return FG_OK;
	/* One transaction for the batch: one fsync for many messages. */
	int rc = store_db_begin(db, err, errlen);
	if (rc != FG_OK)
		return rc;
	struct owner_cache *c = calloc(1, sizeof(*c));
	if (!c) {
		store_db_end(db, FG_NOMEM, err, errlen);
		store_db_set_err(err, errlen, "out of memory archiving messages");
		return FG_NOMEM;
	}
	for (size_t i = 0; i < n && rc == FG_OK; i++)
		rc = add_one(db, c, &rows[i], def, stored, err, errlen);
	for (size_t i = 0; i < c->n; i++)
		owner_info_clear(&c->v[i]);
	free(c);
	if (rc == FG_OK && max_per_user > 0)
		rc = trim_all(db, rows, n, max_per_user, err, errlen);
	if (rc != FG_OK && stored)
		*stored = 0;
	return store_db_end(db, rc, err, errlen);
}

/* The rowid of a stanza-id in owner's archive: FG_NOTFOUND when none. */
static int id_of(struct store_db *db, const char *owner, const char *sid, long long *id, char *err,
		 size_t errlen)
{
	struct store_stmt *s = store_db_stmt(db, SQL_ID_OF, err, errlen);
	if (s == NULL)
		return FG_ERR;
	int src = store_db_bind_text(s, 1, owner);
	if (src == SDB_OK)
		src = store_db_bind_text(s, 2, sid);
	if (src == SDB_OK)
		src = store_step(s);
	if (src == SDB_ROW)
		*id = store_col_int64(s, 0);
	done_with(s);
	if (src == SDB_DONE) {
		store_db_set_err(err, errlen, "there is no message %.100s in the archive", sid);
		return FG_NOTFOUND;
	}
	if (src != SDB_ROW)
		return store_db_fail(db, src, err, errlen, "look up an archived message");
	return FG_OK;
}

static int bind_filters(struct store_stmt *s, const struct archive_query *q)
{
	int src = store_db_bind_text(s, 1, q->owner);
	if (src == SDB_OK)
		src = store_db_bind_text(s, 2, q->with);
	if (src == SDB_OK)
		src = q->start_ms >= 0 ? store_bind_int64(s, 3, q->start_ms)
				       : store_bind_null(s, 3);
	if (src == SDB_OK)
		src = q->end_ms >= 0 ? store_bind_int64(s, 4, q->end_ms) : store_bind_null(s, 4);
	return src;
}

struct held_row {
	char *sid, *xml;
	long long ts;
};

int store_db_archive_query(struct store_db *db, const struct archive_query *q, archive_cb cb,
			   void *ud, bool *complete, unsigned *count, char *err, size_t errlen)
{
	long long lo = 0, hi = INT64_MAX;
	int rc = FG_OK, src;
	*complete = false;
	*count = 0;
	if (!q->owner) {
		store_db_set_err(err, errlen, "an archive query without owner");
		return FG_INVAL;
	}
	if (q->after_id && (rc = id_of(db, q->owner, q->after_id, &lo, err, errlen)) != FG_OK)
		return rc;
	if (q->before_id && (rc = id_of(db, q->owner, q->before_id, &hi, err, errlen)) != FG_OK)
		return rc;

	struct store_stmt *c = store_db_stmt(db, SQL_COUNT, err, errlen);
	if (c == NULL)
		return FG_ERR;
	src = bind_filters(c, q);
	if (src == SDB_OK)
		src = store_step(c);
	if (src == SDB_ROW)
		*count = (unsigned)store_col_int64(c, 0);
	done_with(c);
	if (src != SDB_ROW)
		return store_db_fail(db, src, err, errlen, "count archived messages");

	struct store_stmt *s =
		store_db_stmt(db, q->backward ? SQL_PAGE_BACK : SQL_PAGE_FWD, err, errlen);
	if (s == NULL)
		return FG_ERR;
	/* One more than asked: whether it comes tells if the page is the
	 * last in this direction. */
	src = bind_filters(s, q);
	if (src == SDB_OK)
		src = store_bind_int64(s, 5, lo);
	if (src == SDB_OK)
		src = store_bind_int64(s, 6, hi);
	if (src == SDB_OK)
		src = store_bind_int64(s, 7, (long long)q->max + 1);
	struct held_row *held = NULL;
	size_t n = 0;
	if (q->backward && q->max > 0 && !(held = calloc(q->max, sizeof(*held)))) {
		done_with(s);
		store_db_set_err(err, errlen, "out of memory reading the archive");
		return FG_NOMEM;
	}
	while (src == SDB_OK || src == SDB_ROW) {
		src = store_step(s);
		if (src != SDB_ROW)
			break;
		if (n == q->max) {
			n++; /* the one more */
			break;
		}
		const char *sid = store_db_col_text(s, 0), *xml = store_db_col_text(s, 2);
		long long ts = store_col_int64(s, 1);
		if (!sid || !xml) {
			rc = FG_NOMEM;
			break;
		}
		if (!q->backward) {
			if (cb(ud, sid, ts, xml) != 0) {
				rc = FG_ERR;
				break;
			}
		} else if (!(held[n].sid = strdup(sid)) || !(held[n].xml = strdup(xml))) {
			rc = FG_NOMEM;
			n++;
			break;
		} else {
			held[n].ts = ts;
		}
		n++;
	}
	done_with(s);
	if (rc == FG_OK && src != SDB_ROW && src != SDB_DONE)
		rc = store_db_fail(db, src, err, errlen, "read the archive");
	else if (rc == FG_NOMEM)
		store_db_set_err(err, errlen, "out of memory reading the archive");
	else if (rc == FG_ERR)
		store_db_set_err(err, errlen, "the archive's reader stopped");
	if (rc == FG_OK)
		*complete = n <= q->max;
	size_t kept = n > q->max ? q->max : n;
	/* Newest first from the database; oldest first to the reader. */
	for (size_t i = kept; q->backward && i-- > 0;) {
		if (rc == FG_OK && cb(ud, held[i].sid, held[i].ts, held[i].xml) != 0) {
			store_db_set_err(err, errlen, "the archive's reader stopped");
			rc = FG_ERR;
		}
	}
	for (size_t i = 0; held && i < q->max; i++) {
		free(held[i].sid);
		free(held[i].xml);
	}
	free(held);
	return rc;
}

int store_db_archive_expire(struct store_db *db, long long before_ms, unsigned *deleted, char *err,
			    size_t errlen)
{
	struct store_stmt *s = store_db_stmt(db, SQL_EXPIRE, err, errlen);
	if (s == NULL)
		return FG_ERR;
	int src = store_bind_int64(s, 1, before_ms);
	if (src == SDB_OK)
		src = store_db_run(s);
	if (src != SDB_DONE)
		return store_db_fail(db, src, err, errlen, "expire archived messages");
	if (deleted)
		*deleted = (unsigned)store_db_changes(db);
	return FG_OK;
}

int store_db_archive_prefs_get(struct store_db *db, const char *owner, bool *found,
			       enum archive_mode *mode, char **always, char **never, char *err,
			       size_t errlen)
{
	struct store_stmt *s = store_db_stmt(db, SQL_PREFS_GET, err, errlen);
	*found = false;
	if (s == NULL)
		return FG_ERR;
	int rc = FG_OK, src = store_db_bind_text(s, 1, owner);
	if (src == SDB_OK)
		src = store_step(s);
	if (src == SDB_ROW) {
		int m = archive_mode_parse(store_db_col_text(s, 0));
		const char *a = store_db_col_text(s, 1), *nv = store_db_col_text(s, 2);
		*always = strdup(a ? a : "");
		*never = strdup(nv ? nv : "");
		if (!*always || !*never) {
			free(*always);
			free(*never);
			*always = *never = NULL;
			store_db_set_err(err, errlen, "out of memory reading the store");
			rc = FG_NOMEM;
		} else {
			*found = true;
			*mode = m >= 0 ? (enum archive_mode)m : ARCHIVE_ALWAYS;
		}
	} else if (src != SDB_DONE) {
		rc = store_db_fail(db, src, err, errlen, "read archiving preferences");
	}
	done_with(s);
	return rc;
}

int store_db_archive_prefs_put(struct store_db *db, const char *owner, enum archive_mode mode,
			       const char *always, const char *never, char *err, size_t errlen)
{
	struct store_stmt *e = store_db_stmt(db, SQL_USER_EXISTS, err, errlen);
	struct store_stmt *s = store_db_stmt(db, SQL_PREFS_PUT, err, errlen);
	if (e == NULL || s == NULL)
		return FG_ERR;
	int src = store_db_bind_text(e, 1, owner);
	if (src == SDB_OK)
		src = store_step(e);
	bool exists = src == SDB_ROW && store_col_int64(e, 0) != 0;
	done_with(e);
	if (src != SDB_ROW)
		return store_db_fail(db, src, err, errlen, "look up a user");
	if (!exists) {
		store_db_set_err(err, errlen, "there is no user %s; nothing was saved", owner);
		return FG_NOTFOUND;
	}
	src = store_db_bind_text(s, 1, owner);
	if (src == SDB_OK)
		src = store_db_bind_text(s, 2, archive_mode_name(mode));
	if (src == SDB_OK)
		src = store_db_bind_text(s, 3, always ? always : "");
	if (src == SDB_OK)
		src = store_db_bind_text(s, 4, never ? never : "");
	if (src == SDB_OK)
		src = store_db_run(s);
	if (src != SDB_DONE)
		return store_db_fail(db, src, err, errlen, "save archiving preferences");
	return FG_OK;
}

/* The store's part for local users: accounts, rosters, offline messages,
 * vCards (schema migration 2 in store_sqlite.c).
 *
 * Same rules as store_sqlite.c: every value is a bound parameter of a
 * statement kept in the handle's cache, rows are trusted but a row this
 * program cannot read back is an error that names it. Credentials are
 * SCRAM keys (sasl_creds_encode), never a password, and are never put in a
 * message. */
#include "store_users.h"

#include "fg.h"

#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- statements (the cache is keyed by these arrays' addresses) ---- */

static const char SQL_USER_PUT[] =
	"INSERT INTO users (jid, credentials, xmpp_access, created_ms) VALUES (?1, ?2, ?3, ?4)"
	/* An update, not INSERT OR REPLACE: replacing deletes the row first,
	 * and the cascade would take the user's roster, offline messages and
	 * vCard with it on every password change. */
	" ON CONFLICT (jid) DO UPDATE SET credentials = excluded.credentials,"
	" xmpp_access = excluded.xmpp_access, created_ms = excluded.created_ms";
static const char SQL_USER_DELETE[] = "DELETE FROM users WHERE jid = ?1";
static const char SQL_USERS_LOAD[] =
	"SELECT jid, credentials, xmpp_access, created_ms FROM users ORDER BY jid";
static const char SQL_ROSTER_PUT[] =
	"INSERT INTO roster (\"user\", contact, name, groups, sub_to, sub_from, ask_out, "
	"pending_in,"
	" approved, pending_in_xml, hidden) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)"
	" ON CONFLICT (\"user\", contact) DO UPDATE SET name = excluded.name,"
	" groups = excluded.groups, sub_to = excluded.sub_to, sub_from = excluded.sub_from,"
	" ask_out = excluded.ask_out, pending_in = excluded.pending_in,"
	" approved = excluded.approved, pending_in_xml = excluded.pending_in_xml,"
	" hidden = excluded.hidden";
static const char SQL_ROSTER_DELETE[] = "DELETE FROM roster WHERE \"user\" = ?1 AND contact = ?2";
static const char SQL_ROSTER_LOAD[] =
	"SELECT \"user\", contact, name, groups, sub_to, sub_from, ask_out, pending_in, approved,"
	" pending_in_xml, hidden FROM roster ORDER BY \"user\", contact";
static const char SQL_ROSTER_LOAD_USER[] =
	"SELECT \"user\", contact, name, groups, sub_to, sub_from, ask_out, pending_in, approved,"
	" pending_in_xml, hidden FROM roster WHERE \"user\" = ?1 ORDER BY contact";
static const char SQL_ROSTER_VER_LOAD[] = "SELECT \"user\", ver FROM roster_versions";
static const char SQL_ROSTER_VER_USER[] = "SELECT ver FROM roster_versions WHERE \"user\" = ?1";
static const char SQL_ROSTER_VER_PUT[] =
	"INSERT INTO roster_versions (\"user\", ver) VALUES (?1, ?2)"
	" ON CONFLICT (\"user\") DO UPDATE SET ver = excluded.ver";
static const char SQL_OFFLINE_STATE[] = "SELECT EXISTS (SELECT 1 FROM users WHERE jid = ?1),"
					" (SELECT count(*) FROM offline WHERE \"user\" = ?1)";
static const char SQL_OFFLINE_INSERT[] =
	"INSERT INTO offline (\"user\", at_ms, xml) VALUES (?1, ?2, ?3)";
static const char SQL_OFFLINE_SELECT[] =
	"SELECT id, at_ms, xml FROM offline WHERE \"user\" = ?1 ORDER BY id LIMIT ?2";
/* By id: on PostgreSQL (read committed) a row another node's take deleted
 * meanwhile changes nothing here, and one stored since the select is not
 * touched. */
static const char SQL_OFFLINE_DELETE[] = "DELETE FROM offline WHERE id = ?1";
static const char SQL_OFFLINE_COUNT[] = "SELECT count(*) FROM offline WHERE \"user\" = ?1";
static const char SQL_VCARD_PUT[] = "INSERT INTO vcards (\"user\", xml) VALUES (?1, ?2)"
				    " ON CONFLICT (\"user\") DO UPDATE SET xml = excluded.xml";
static const char SQL_VCARD_DELETE[] = "DELETE FROM vcards WHERE \"user\" = ?1";
static const char SQL_VCARD_GET[] = "SELECT xml FROM vcards WHERE \"user\" = ?1";

/* ---- helpers ---- */

static void done_reading(struct store_stmt *s)
{
	store_reset(s);
}

static int oom(struct store_db *db, char *err, size_t errlen)
{
	store_db_set_err(err, errlen, "out of memory reading the store %s", store_db_path(db));
	return FG_NOMEM;
}

/* A write that failed: FG_NOTFOUND when it named a user that does not
 * exist (the foreign key), else the store's sentence. */
static int write_failed(struct store_db *db, int src, const char *user, char *err, size_t errlen,
			const char *what)
{
	char buf[400];

	if (src == SDB_CONSTRAINT_FOREIGNKEY) {
		store_db_set_err(err, errlen, "there is no user %s; nothing was saved", user);
		return FG_NOTFOUND;
	}
	snprintf(buf, sizeof(buf), "%s of %.300s", what, user);
	return store_db_fail(db, src, err, errlen, buf);
}

/* ---- users ---- */

static int put_user(struct store_db *db, const struct account *a, char *err, size_t errlen)
{
	struct store_stmt *s = store_db_stmt(db, SQL_USER_PUT, err, errlen);
	char *creds;
	int src;

	if (s == NULL)
		return FG_ERR;
	if (a == NULL || a->jid == NULL) {
		store_db_set_err(err, errlen, "no user given to save");
		return FG_INVAL;
	}
	creds = sasl_creds_encode(&a->creds);
	if (creds == NULL) {
		store_db_set_err(err, errlen, "out of memory saving user %s", a->jid);
		return FG_NOMEM;
	}
	src = store_db_bind_text(s, 1, a->jid);
	if (src == SDB_OK)
		src = store_db_bind_text(s, 2, creds);
	if (src == SDB_OK)
		src = store_bind_int64(s, 3, a->xmpp_access ? 1 : 0);
	if (src == SDB_OK)
		src = store_bind_int64(s, 4, a->created_ms);
	if (src == SDB_OK)
		src = store_step(s);
	store_reset(s);
	explicit_bzero(creds, strlen(creds));
	free(creds);
	if (src != SDB_DONE)
		return write_failed(db, src, a->jid, err, errlen, "save the account");
	return FG_OK;
}

static int delete_user(struct store_db *db, const char *jid, char *err, size_t errlen)
{
	struct store_stmt *s = store_db_stmt(db, SQL_USER_DELETE, err, errlen);
	int src;

	if (s == NULL)
		return FG_ERR;
	if (jid == NULL) {
		store_db_set_err(err, errlen, "no user given to delete");
		return FG_INVAL;
	}
	src = store_db_bind_text(s, 1, jid);
	if (src == SDB_OK)
		src = store_db_run(s);
	if (src != SDB_DONE)
		return write_failed(db, src, jid, err, errlen, "delete the account");
	/* changes() counts the user's row only, not the cascade. */
	if (store_db_changes(db) == 0) {
		store_db_set_err(err, errlen, "there is no user %s; nothing was saved", jid);
		return FG_NOTFOUND;
	}
	return FG_OK;
}

static int op_put_user(struct store_db *db, const void *arg, char *err, size_t errlen)
{
	return put_user(db, arg, err, errlen);
}

static int op_delete_user(struct store_db *db, const void *arg, char *err, size_t errlen)
{
	return delete_user(db, arg, err, errlen);
}

struct store_op store_op_put_user(const struct account *a)
{
	return (struct store_op){.kind = STORE_CUSTOM, .custom = op_put_user, .custom_arg = a};
}

struct store_op store_op_delete_user(const char *jid)
{
	return (struct store_op){.kind = STORE_CUSTOM, .custom = op_delete_user, .custom_arg = jid};
}

static int account_from_row(struct store_db *db, struct store_stmt *s, struct account **out,
			    char *err, size_t errlen)
{
	const char *jid = store_db_col_text(s, 0), *creds = store_db_col_text(s, 1);
	long long access = store_col_int64(s, 2);
	struct account *a;

	*out = NULL;
	/* NOT NULL columns read as NULL only when the copy ran out of memory. */
	if (jid == NULL || creds == NULL)
		return oom(db, err, errlen);
	a = account_new(jid);
	if (a == NULL)
		return oom(db, err, errlen);
	a->created_ms = store_col_int64(s, 3);
	a->xmpp_access = access != 0;
	if (access != 0 && access != 1) {
		store_db_set_err(
			err, errlen,
			"the store %s holds user %s with xmpp_access = %lld, which this fedgate "
			"cannot read; correct that row or restore a backup",
			store_db_path(db), jid, access);
		account_free(&a);
		return FG_INVAL;
	}
	/* The value is not quoted: it is what a password guesser needs. */
	if (sasl_creds_decode(creds, &a->creds) != FG_OK) {
		store_db_set_err(
			err, errlen,
			"the store %s holds user %s with credentials this fedgate cannot read; "
			"restore a backup, or remove the user and add it again",
			store_db_path(db), jid);
		account_free(&a);
		return FG_INVAL;
	}
	*out = a;
	return FG_OK;
}

int store_db_users_load(struct store_db *db, struct accounts **out, char *err, size_t errlen)
{
	struct store_stmt *s = store_db_stmt(db, SQL_USERS_LOAD, err, errlen);
	struct accounts *set;
	int src, rc = FG_OK;

	*out = NULL;
	if (s == NULL)
		return FG_ERR;
	set = accounts_new();
	if (set == NULL)
		return oom(db, err, errlen);
	while ((src = store_step(s)) == SDB_ROW) {
		struct account *a = NULL;

		rc = account_from_row(db, s, &a, err, errlen);
		if (rc != FG_OK)
			break;
		rc = accounts_put(set, a);
		if (rc != FG_OK) {
			oom(db, err, errlen);
			break;
		}
	}
	if (rc == FG_OK && src != SDB_DONE)
		rc = store_db_fail(db, src, err, errlen, "read its users");
	done_reading(s);
	if (rc != FG_OK) {
		accounts_free(&set);
		return rc;
	}
	*out = set;
	return FG_OK;
}

/* ---- rosters ---- */

/* The rows of a prepared (and bound) roster SELECT, to cb. */
static int roster_rows(struct store_db *db, struct store_stmt *s, store_roster_cb cb, void *ud,
		       char *err, size_t errlen)
{
	int src, rc = FG_OK;

	while ((src = store_step(s)) == SDB_ROW) {
		struct roster_row r = {
			.user = store_db_col_text(s, 0),
			.contact = store_db_col_text(s, 1),
			.name = store_db_col_text(s, 2),
			.groups = store_db_col_text(s, 3),
			.sub_to = store_col_int64(s, 4) != 0,
			.sub_from = store_col_int64(s, 5) != 0,
			.ask_out = store_col_int64(s, 6) != 0,
			.pending_in = store_col_int64(s, 7) != 0,
			.approved = store_col_int64(s, 8) != 0,
			.pending_in_xml = store_db_col_text(s, 9),
			.hidden = store_col_int64(s, 10) != 0,
		};

		if (r.user == NULL || r.contact == NULL || r.groups == NULL ||
		    (r.name == NULL && !store_col_null(s, 2)) ||
		    (r.pending_in_xml == NULL && !store_col_null(s, 9))) {
			rc = oom(db, err, errlen);
			break;
		}
		if (cb(ud, &r) != 0)
			break;
	}
	if (rc == FG_OK && src != SDB_ROW && src != SDB_DONE)
		rc = store_db_fail(db, src, err, errlen, "read the rosters");
	done_reading(s);
	return rc;
}

int store_db_roster_load(struct store_db *db, store_roster_cb cb, void *ud, char *err,
			 size_t errlen)
{
	struct store_stmt *s = store_db_stmt(db, SQL_ROSTER_LOAD, err, errlen);

	if (s == NULL)
		return FG_ERR;
	return roster_rows(db, s, cb, ud, err, errlen);
}

int store_db_roster_load_user(struct store_db *db, const char *user, store_roster_cb cb, void *ud,
			      unsigned long long *ver, bool *has_ver, char *err, size_t errlen)
{
	struct store_stmt *s = store_db_stmt(db, SQL_ROSTER_LOAD_USER, err, errlen);
	int src, rc;

	if (s == NULL)
		return FG_ERR;
	if (user == NULL) {
		store_db_set_err(err, errlen, "no user given to read the roster of");
		return FG_INVAL;
	}
	src = store_db_bind_text(s, 1, user);
	if (src != SDB_OK) {
		done_reading(s);
		return store_db_fail(db, src, err, errlen, "read a roster");
	}
	rc = roster_rows(db, s, cb, ud, err, errlen);
	if (rc != FG_OK)
		return rc;
	s = store_db_stmt(db, SQL_ROSTER_VER_USER, err, errlen);
	if (s == NULL)
		return FG_ERR;
	*ver = 0;
	*has_ver = false;
	src = store_db_bind_text(s, 1, user);
	if (src == SDB_OK)
		src = store_step(s);
	if (src == SDB_ROW) {
		long long v = store_col_int64(s, 0);
		*ver = v < 0 ? 0 : (unsigned long long)v;
		*has_ver = true;
		src = SDB_DONE;
	}
	done_reading(s);
	if (src != SDB_DONE)
		return store_db_fail(db, src, err, errlen, "read a roster version");
	return FG_OK;
}

int store_db_roster_put(struct store_db *db, const struct roster_row *r, char *err, size_t errlen)
{
	struct store_stmt *s = store_db_stmt(db, SQL_ROSTER_PUT, err, errlen);
	int src;

	if (s == NULL)
		return FG_ERR;
	if (r == NULL || r->user == NULL || r->contact == NULL) {
		store_db_set_err(err, errlen, "no roster item given to save");
		return FG_INVAL;
	}
	src = store_db_bind_text(s, 1, r->user);
	if (src == SDB_OK)
		src = store_db_bind_text(s, 2, r->contact);
	if (src == SDB_OK)
		src = store_db_bind_text(s, 3, r->name);
	if (src == SDB_OK)
		src = store_db_bind_text(s, 4, r->groups != NULL ? r->groups : "[]");
	if (src == SDB_OK)
		src = store_bind_int64(s, 5, r->sub_to);
	if (src == SDB_OK)
		src = store_bind_int64(s, 6, r->sub_from);
	if (src == SDB_OK)
		src = store_bind_int64(s, 7, r->ask_out);
	if (src == SDB_OK)
		src = store_bind_int64(s, 8, r->pending_in);
	if (src == SDB_OK)
		src = store_bind_int64(s, 9, r->approved);
	if (src == SDB_OK)
		src = store_db_bind_text(s, 10, r->pending_in_xml);
	if (src == SDB_OK)
		src = store_bind_int64(s, 11, r->hidden);
	if (src == SDB_OK)
		src = store_db_run(s);
	if (src != SDB_DONE)
		return write_failed(db, src, r->user, err, errlen, "save a roster item");
	return FG_OK;
}

int store_db_roster_delete(struct store_db *db, const char *user, const char *contact, char *err,
			   size_t errlen)
{
	struct store_stmt *s = store_db_stmt(db, SQL_ROSTER_DELETE, err, errlen);
	int src;

	if (s == NULL)
		return FG_ERR;
	if (user == NULL || contact == NULL) {
		store_db_set_err(err, errlen, "no roster item given to delete");
		return FG_INVAL;
	}
	src = store_db_bind_text(s, 1, user);
	if (src == SDB_OK)
		src = store_db_bind_text(s, 2, contact);
	if (src == SDB_OK)
		src = store_db_run(s);
	if (src != SDB_DONE)
		return write_failed(db, src, user, err, errlen, "delete a roster item");
	return FG_OK;
}

int store_db_roster_ver_load(struct store_db *db, store_roster_ver_cb cb, void *ud, char *err,
			     size_t errlen)
{
	struct store_stmt *s = store_db_stmt(db, SQL_ROSTER_VER_LOAD, err, errlen);
	int src, rc = FG_OK;

	if (s == NULL)
		return FG_ERR;
	while ((src = store_step(s)) == SDB_ROW) {
		const char *user = store_db_col_text(s, 0);
		long long ver = store_col_int64(s, 1);

		if (user == NULL) {
			rc = oom(db, err, errlen);
			break;
		}
		if (cb(ud, user, ver < 0 ? 0 : (unsigned long long)ver) != 0)
			break;
	}
	if (rc == FG_OK && src != SDB_ROW && src != SDB_DONE)
		rc = store_db_fail(db, src, err, errlen, "read the roster versions");
	done_reading(s);
	return rc;
}

int store_db_roster_ver_put(struct store_db *db, const char *user, unsigned long long ver,
			    char *err, size_t errlen)
{
	struct store_stmt *s = store_db_stmt(db, SQL_ROSTER_VER_PUT, err, errlen);
	int src;

	if (s == NULL)
		return FG_ERR;
	if (user == NULL) {
		store_db_set_err(err, errlen, "no user given to save a roster version for");
		return FG_INVAL;
	}
	src = store_db_bind_text(s, 1, user);
	if (src == SDB_OK)
		src = store_bind_int64(s, 2, (long long)ver);
	if (src == SDB_OK)
		src = store_db_run(s);
	if (src != SDB_DONE)
		return write_failed(db, src, user, err, errlen, "save the roster version");
	return FG_OK;
}

/* ---- offline messages ---- */

int store_db_offline_add(struct store_db *db, const char *user, long long at_ms, const char *xml,
			 unsigned limit, char *err, size_t errlen)
{
	struct store_stmt *st = store_db_stmt(db, SQL_OFFLINE_STATE, err, errlen);
	struct store_stmt *ins = store_db_stmt(db, SQL_OFFLINE_INSERT, err, errlen);
	long long exists = 0, n = 0;
	int src, rc;

	if (st == NULL || ins == NULL)
		return FG_ERR;
	if (user == NULL || xml == NULL) {
		store_db_set_err(err, errlen, "no offline message given to save");
		return FG_INVAL;
	}
	/* The count and the insert under one write lock, so two writers
	 * cannot both take the last place. */
	rc = store_db_begin(db, err, errlen);
	if (rc != FG_OK)
		return rc;
	src = store_db_bind_text(st, 1, user);
	if (src == SDB_OK)
		src = store_step(st);
	if (src == SDB_ROW) {
		exists = store_col_int64(st, 0);
		n = store_col_int64(st, 1);
	} else {
		rc = write_failed(db, src, user, err, errlen, "count the offline messages");
	}
	done_reading(st);
	if (rc == FG_OK && !exists) {
		store_db_set_err(err, errlen, "there is no user %s; nothing was saved", user);
		rc = FG_NOTFOUND;
	}
	if (rc == FG_OK && n >= (long long)limit) {
		store_db_set_err(err, errlen,
				 "%s already has %lld offline messages waiting (the limit is %u)",
				 user, n, limit);
		rc = FG_LIMIT;
	}
	if (rc == FG_OK) {
		src = store_db_bind_text(ins, 1, user);
		if (src == SDB_OK)
			src = store_bind_int64(ins, 2, at_ms);
		if (src == SDB_OK)
			src = store_db_bind_text(ins, 3, xml);
		if (src == SDB_OK)
			src = store_db_run(ins);
		if (src != SDB_DONE)
			rc = write_failed(db, src, user, err, errlen, "save an offline message");
	}
	return store_db_end(db, rc, err, errlen);
}

struct taken_row {
	long long id, at_ms;
	char *xml;
};

static void taken_free(struct taken_row *rows, size_t n)
{
	for (size_t i = 0; i < n; i++)
		free(rows[i].xml);
	free(rows);
}

/* The oldest max rows of user (every one for 0), copied out. */
static int offline_select(struct store_db *db, const char *user, unsigned max,
			  struct taken_row **out, size_t *nout, char *err, size_t errlen)
{
	struct store_stmt *sel = store_db_stmt(db, SQL_OFFLINE_SELECT, err, errlen);
	struct taken_row *rows = NULL;
	size_t n = 0, cap = 0;
	int src, rc = FG_OK;

	if (sel == NULL)
		return FG_ERR;
	src = store_db_bind_text(sel, 1, user);
	if (src == SDB_OK)
		src = store_bind_int64(sel, 2, max ? (long long)max : LLONG_MAX);
	while (src == SDB_OK || src == SDB_ROW) {
		const char *xml;

		src = store_step(sel);
		if (src != SDB_ROW)
			break;
		if (n == cap) {
			size_t ncap = cap ? cap * 2 : 16;
			struct taken_row *p = realloc(rows, ncap * sizeof(*p));
			if (p == NULL) {
				rc = oom(db, err, errlen);
				break;
			}
			rows = p;
			cap = ncap;
		}
		xml = store_db_col_text(sel, 2);
		rows[n].xml = xml != NULL ? strdup(xml) : NULL;
		if (rows[n].xml == NULL) {
			rc = oom(db, err, errlen);
			break;
		}
		rows[n].id = store_col_int64(sel, 0);
		rows[n].at_ms = store_col_int64(sel, 1);
		n++;
	}
	if (rc == FG_OK && src != SDB_DONE)
		rc = store_db_fail(db, src, err, errlen, "read the offline messages");
	done_reading(sel);
	if (rc != FG_OK) {
		taken_free(rows, n);
		return rc;
	}
	*out = rows;
	*nout = n;
	return FG_OK;
}

int store_db_offline_take(struct store_db *db, const char *user, unsigned max, store_offline_cb cb,
			  void *ud, char *err, size_t errlen)
{
	struct store_stmt *del = store_db_stmt(db, SQL_OFFLINE_DELETE, err, errlen);
	struct taken_row *rows = NULL;
	size_t n = 0;
	int src, rc;

	if (del == NULL)
		return FG_ERR;
	if (user == NULL || cb == NULL) {
		store_db_set_err(err, errlen, "no user given to take offline messages of");
		return FG_INVAL;
	}
	rc = store_db_begin(db, err, errlen);
	if (rc != FG_OK)
		return rc;
	rc = offline_select(db, user, max, &rows, &n, err, errlen);
	for (size_t i = 0; rc == FG_OK && i < n; i++) {
		src = store_bind_int64(del, 1, rows[i].id);
		if (src == SDB_OK)
			src = store_db_run(del);
		if (src != SDB_DONE) {
			rc = store_db_fail(db, src, err, errlen, "delete the offline messages");
			break;
		}
		/* Taken by another node's take since the select: its. */
		if (store_db_changes(db) != 1)
			continue;
		if (cb(ud, rows[i].at_ms, rows[i].xml) != 0) {
			store_db_set_err(
				err, errlen,
				"the offline messages of %s were not taken; they stay stored",
				user);
			rc = FG_ERR;
		}
	}
	taken_free(rows, n);
	return store_db_end(db, rc, err, errlen);
}

int store_db_offline_count(struct store_db *db, const char *user, unsigned *n, char *err,
			   size_t errlen)
{
	struct store_stmt *s = store_db_stmt(db, SQL_OFFLINE_COUNT, err, errlen);
	int src, rc = FG_OK;

	*n = 0;
	if (s == NULL)
		return FG_ERR;
	if (user == NULL) {
		store_db_set_err(err, errlen, "no user given to count offline messages of");
		return FG_INVAL;
	}
	src = store_db_bind_text(s, 1, user);
	if (src == SDB_OK)
		src = store_step(s);
	if (src == SDB_ROW)
		*n = (unsigned)store_col_int64(s, 0);
	else
		rc = store_db_fail(db, src, err, errlen, "count the offline messages");
	done_reading(s);
	return rc;
}

/* ---- vCards ---- */

int store_db_vcard_put(struct store_db *db, const char *user, const char *xml, char *err,
		       size_t errlen)
{
	struct store_stmt *s =
		store_db_stmt(db, xml != NULL ? SQL_VCARD_PUT : SQL_VCARD_DELETE, err, errlen);
	int src;

	if (s == NULL)
		return FG_ERR;
	if (user == NULL) {
		store_db_set_err(err, errlen, "no user given to save a vCard for");
		return FG_INVAL;
	}
	src = store_db_bind_text(s, 1, user);
	if (src == SDB_OK && xml != NULL)
		src = store_db_bind_text(s, 2, xml);
	if (src == SDB_OK)
		src = store_db_run(s);
	if (src != SDB_DONE)
		return write_failed(db, src, user, err, errlen, "save the vCard");
	return FG_OK;
}

int store_db_vcard_get(struct store_db *db, const char *user, char **xml, char *err, size_t errlen)
{
	struct store_stmt *s = store_db_stmt(db, SQL_VCARD_GET, err, errlen);
	int src, rc = FG_OK;

	*xml = NULL;
	if (s == NULL)
		return FG_ERR;
	if (user == NULL) {
		store_db_set_err(err, errlen, "no user given to read a vCard of");
		return FG_INVAL;
	}
	src = store_db_bind_text(s, 1, user);
	if (src == SDB_OK)
		src = store_step(s);
	if (src == SDB_ROW) {
		const char *v = store_db_col_text(s, 0);

		if (v == NULL || (*xml = strdup(v)) == NULL)
			rc = oom(db, err, errlen);
	} else if (src != SDB_DONE) {
		rc = store_db_fail(db, src, err, errlen, "read the vCard");
	}
	done_reading(s);
	return rc;
}

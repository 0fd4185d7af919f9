#include "store_admins.h"

#include "fg.h"

#include <stdio.h>
#include <strings.h>

#define SQL_ADMIN_GET "SELECT role, password_hash FROM admins WHERE name = ?1"
#define SQL_ADMIN_BY_TOKEN                                                         \
	"SELECT a.name, a.role, t.id, t.last_used_ms FROM admin_tokens AS t JOIN " \
	"admins AS a ON a.name = t.admin WHERE t.token_sha256 = ?1"
#define SQL_ADMIN_COUNT "SELECT count(*) FROM admins WHERE role = 'administrator'"
#define SQL_ADMIN_INSERT \
	"INSERT INTO admins (name, role, password_hash, created_ms) VALUES (?1, ?2, ?3, ?4)"
#define SQL_ADMIN_PASSWD     "UPDATE admins SET password_hash = ?2 WHERE name = ?1"
#define SQL_ADMIN_ROLE	     "UPDATE admins SET role = ?2 WHERE name = ?1"
#define SQL_ADMIN_DELETE     "DELETE FROM admins WHERE name = ?1"
#define SQL_TOKEN_DELETE     "DELETE FROM admin_tokens WHERE admin = ?1 AND label = ?2"
#define SQL_TOKEN_DELETE_ALL "DELETE FROM admin_tokens WHERE admin = ?1"
#define SQL_TOKEN_INSERT                                                                     \
	"INSERT INTO admin_tokens (admin, label, token_sha256, created_ms) VALUES (?1, ?2, " \
	"?3, ?4)"
#define SQL_TOKEN_USED "UPDATE admin_tokens SET last_used_ms = ?2 WHERE id = ?1"
#define SQL_TOKEN_COUNT                                                                        \
	"SELECT count(*) FROM admin_tokens WHERE admin = ?1 AND (CAST(?2 AS TEXT) IS NULL OR " \
	"label = "                                                                             \
	"?2)"
#define SQL_TOKEN_LIST                                                                            \
	"SELECT admin, label, created_ms, last_used_ms FROM admin_tokens WHERE CAST(?1 AS TEXT) " \
	"IS "                                                                                     \
	"NULL OR admin = ?1 ORDER BY admin, label"
#define SQL_ADMIN_LIST                                                                  \
	"SELECT a.name, a.role, a.created_ms, (SELECT count(*) FROM admin_tokens AS t " \
	"WHERE t.admin = a.name) FROM admins AS a ORDER BY a.name"

const char *admin_role_name(enum admin_role r)
{
	switch (r) {
	case ADMIN_ADMINISTRATOR: return "administrator";
	case ADMIN_VIEWER: return "viewer";
	default: return "none";
	}
}

enum admin_role admin_role_parse(const char *s)
{
	if (s && strcasecmp(s, "administrator") == 0)
		return ADMIN_ADMINISTRATOR;
	if (s && strcasecmp(s, "viewer") == 0)
		return ADMIN_VIEWER;
	return ADMIN_NONE;
}

/* A statement whose rows were read is reset for its next use. */
static void done_reading(struct store_stmt *s)
{
	store_reset(s);
}

int store_db_admin_get(struct store_db *db, const char *name, enum admin_role *role, char *hash,
		       size_t hashlen, char *err, size_t errlen)
{
	struct store_stmt *s = store_db_stmt(db, SQL_ADMIN_GET, err, errlen);
	if (!s)
		return FG_ERR;
	store_db_bind_text(s, 1, name);
	int src = store_step(s), rc = FG_OK;
	if (src == SDB_ROW) {
		*role = admin_role_parse(store_db_col_text(s, 0));
		if (hash) {
			const char *h = store_db_col_text(s, 1);
			snprintf(hash, hashlen, "%s", h ? h : "");
		}
	} else {
		rc = src == SDB_DONE
			     ? FG_NOTFOUND
			     : store_db_fail(db, src, err, errlen, "read the admin accounts");
	}
	done_reading(s);
	return rc;
}

int store_db_admin_by_token(struct store_db *db, const char *token_sha256,
			    struct admin_token_hit *hit, char *err, size_t errlen)
{
	struct store_stmt *s = store_db_stmt(db, SQL_ADMIN_BY_TOKEN, err, errlen);
	if (!s)
		return FG_ERR;
	store_db_bind_text(s, 1, token_sha256);
	int src = store_step(s), rc = FG_OK;
	if (src == SDB_ROW) {
		const char *n = store_db_col_text(s, 0);
		snprintf(hit->name, sizeof(hit->name), "%s", n ? n : "");
		hit->role = admin_role_parse(store_db_col_text(s, 1));
		hit->token_id = store_col_int64(s, 2);
		hit->last_used_ms = store_col_null(s, 3) ? 0 : store_col_int64(s, 3);
		if (hit->role == ADMIN_NONE)
			rc = FG_NOTFOUND;
	} else {
		rc = src == SDB_DONE ? FG_NOTFOUND
				     : store_db_fail(db, src, err, errlen, "read the API tokens");
	}
	done_reading(s);
	return rc;
}

int store_db_admin_token_used(struct store_db *db, long long token_id, long long now_ms, char *err,
			      size_t errlen)
{
	struct store_stmt *s = store_db_stmt(db, SQL_TOKEN_USED, err, errlen);
	if (!s)
		return FG_ERR;
	store_bind_int64(s, 1, token_id);
	store_bind_int64(s, 2, now_ms);
	int src = store_db_run(s);
	return src == SDB_DONE ? FG_OK
			       : store_db_fail(db, src, err, errlen, "note the token's use");
}

int store_db_admin_count_administrators(struct store_db *db, long long *n, char *err, size_t errlen)
{
	struct store_stmt *s = store_db_stmt(db, SQL_ADMIN_COUNT, err, errlen);
	if (!s)
		return FG_ERR;
	int src = store_step(s), rc = FG_OK;
	if (src == SDB_ROW)
		*n = store_col_int64(s, 0);
	else
		rc = store_db_fail(db, src, err, errlen, "count the administrators");
	done_reading(s);
	return rc;
}

/* Runs a change bound to name (?1) and maybe a second text (?2); with
 * must_change, no row changed is FG_NOTFOUND. */
static int change(struct store_db *db, const char *sql, const char *name, const char *second,
		  bool must_change, const char *what, char *err, size_t errlen)
{
	struct store_stmt *s = store_db_stmt(db, sql, err, errlen);
	if (!s)
		return FG_ERR;
	store_db_bind_text(s, 1, name);
	if (second)
		store_db_bind_text(s, 2, second);
	int src = store_db_run(s);
	if (src != SDB_DONE)
		return store_db_fail(db, src, err, errlen, what);
	if (must_change && store_db_changes(db) == 0)
		return FG_NOTFOUND;
	return FG_OK;
}

int store_db_admin_insert(struct store_db *db, const char *name, enum admin_role role,
			  const char *hash, char *err, size_t errlen)
{
	struct store_stmt *s = store_db_stmt(db, SQL_ADMIN_INSERT, err, errlen);
	if (!s)
		return FG_ERR;
	store_db_bind_text(s, 1, name);
	store_db_bind_text(s, 2, admin_role_name(role));
	store_db_bind_text(s, 3, hash);
	store_bind_int64(s, 4, fg_now_ms());
	int src = store_db_run(s);
	return src == SDB_DONE ? FG_OK
			       : store_db_fail(db, src, err, errlen, "add the admin account");
}

int store_db_admin_set_password(struct store_db *db, const char *name, const char *hash, char *err,
				size_t errlen)
{
	return change(db, SQL_ADMIN_PASSWD, name, hash, true, "change the password", err, errlen);
}

int store_db_admin_delete(struct store_db *db, const char *name, char *err, size_t errlen)
{
	return change(db, SQL_ADMIN_DELETE, name, NULL, true, "remove the admin account", err,
		      errlen);
}

int store_db_admin_set_role(struct store_db *db, const char *name, enum admin_role role, char *err,
			    size_t errlen)
{
	return change(db, SQL_ADMIN_ROLE, name, admin_role_name(role), true, "change the role", err,
		      errlen);
}

int store_db_admin_token_count(struct store_db *db, const char *name, const char *label,
			       long long *n, char *err, size_t errlen)
{
	struct store_stmt *s = store_db_stmt(db, SQL_TOKEN_COUNT, err, errlen);
	if (!s)
		return FG_ERR;
	store_db_bind_text(s, 1, name);
	if (label)
		store_db_bind_text(s, 2, label);
	int src = store_step(s), rc = FG_OK;
	if (src == SDB_ROW)
		*n = store_col_int64(s, 0);
	else
		rc = store_db_fail(db, src, err, errlen, "count the API tokens");
	done_reading(s);
	return rc;
}

int store_db_admin_token_put(struct store_db *db, const char *name, const char *label,
			     const char *token_sha256, char *err, size_t errlen)
{
	int rc = change(db, SQL_TOKEN_DELETE, name, label, false, "replace the token", err, errlen);
	if (rc != FG_OK)
		return rc;
	struct store_stmt *s = store_db_stmt(db, SQL_TOKEN_INSERT, err, errlen);
	if (!s)
		return FG_ERR;
	store_db_bind_text(s, 1, name);
	store_db_bind_text(s, 2, label);
	store_db_bind_text(s, 3, token_sha256);
	store_bind_int64(s, 4, fg_now_ms());
	int src = store_db_run(s);
	return src == SDB_DONE ? FG_OK : store_db_fail(db, src, err, errlen, "save the token");
}

int store_db_admin_token_delete(struct store_db *db, const char *name, const char *label, char *err,
				size_t errlen)
{
	return change(db, label ? SQL_TOKEN_DELETE : SQL_TOKEN_DELETE_ALL, name, label,
		      label != NULL, "withdraw the token", err, errlen);
}

int store_db_admin_tokens(struct store_db *db, const char *name, store_token_cb cb, void *ud,
			  char *err, size_t errlen)
{
	struct store_stmt *s = store_db_stmt(db, SQL_TOKEN_LIST, err, errlen);
	if (!s)
		return FG_ERR;
	if (name)
		store_db_bind_text(s, 1, name);
	int src = SDB_DONE, rc = FG_OK;
	while (rc == FG_OK && (src = store_step(s)) == SDB_ROW) {
		struct admin_token_row r = {
			.name = store_db_col_text(s, 0),
			.label = store_db_col_text(s, 1),
			.created_ms = store_col_int64(s, 2),
			.last_used_ms = store_col_null(s, 3) ? 0 : store_col_int64(s, 3),
		};
		rc = cb(ud, &r);
	}
	if (rc == FG_OK && src != SDB_DONE)
		rc = store_db_fail(db, src, err, errlen, "read the API tokens");
	done_reading(s);
	return rc;
}

int store_db_admin_list(struct store_db *db, store_admin_cb cb, void *ud, char *err, size_t errlen)
{
	struct store_stmt *s = store_db_stmt(db, SQL_ADMIN_LIST, err, errlen);
	if (!s)
		return FG_ERR;
	int src = SDB_DONE, rc = FG_OK;
	while (rc == FG_OK && (src = store_step(s)) == SDB_ROW) {
		struct admin_row r = {
			.name = store_db_col_text(s, 0),
			.role = store_db_col_text(s, 1),
			.created_ms = store_col_int64(s, 2),
			.tokens = store_col_int64(s, 3),
		};
		rc = cb(ud, &r);
	}
	if (rc == FG_OK && src != SDB_DONE)
		rc = store_db_fail(db, src, err, errlen, "read the admin accounts");
	done_reading(s);
	return rc;
}

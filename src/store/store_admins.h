/* The store's part for admin accounts of the HTTP side (migrations 1, 3
 * and 5): the `admins` and `admin_tokens` tables. An account has any
 * number of API tokens, each with a label unique for the account. Password hashes and token digests are
 * made and checked by the command layer (cmd/admin.c); here they are only
 * stored and found. Every function runs on the thread that owns db, and
 * the changes run inside store_db_commit's transaction (STORE_CUSTOM ops). */
#ifndef FG_STORE_ADMINS_H
#define FG_STORE_ADMINS_H

#include "store_sqlite.h"

#include <stdbool.h>
#include <stddef.h>

enum admin_role { ADMIN_NONE = 0, ADMIN_ADMINISTRATOR, ADMIN_VIEWER };

const char *admin_role_name(enum admin_role r);
/* "administrator" / "viewer" (any case) -> the role; else ADMIN_NONE. */
enum admin_role admin_role_parse(const char *s);

/* FG_OK with the role and (hash not NULL) the password hash; FG_NOTFOUND
 * when there is no such account; FG_ERR with err. */
int store_db_admin_get(struct store_db *db, const char *name, enum admin_role *role, char *hash,
		       size_t hashlen, char *err, size_t errlen);
/* What a token's SHA-256 (hex) found: its account, and the token's row
 * (for store_db_admin_token_used). */
struct admin_token_hit {
	char name[65];
	enum admin_role role;
	long long token_id;
	long long last_used_ms; /* 0: never */
};
/* FG_OK with hit, FG_NOTFOUND, or FG_ERR. */
int store_db_admin_by_token(struct store_db *db, const char *token_sha256,
			    struct admin_token_hit *hit, char *err, size_t errlen);
/* Notes that the token was used at now_ms; a write, so the caller does it
 * only when last_used_ms is stale (once a minute), outside any change. */
int store_db_admin_token_used(struct store_db *db, long long token_id, long long now_ms, char *err,
			      size_t errlen);
/* Accounts whose role is administrator, into *n. */
int store_db_admin_count_administrators(struct store_db *db, long long *n, char *err,
					size_t errlen);

/* Changes: FG_OK, FG_NOTFOUND when the account is not there (passwd,
 * remove), FG_ERR with err. */
int store_db_admin_insert(struct store_db *db, const char *name, enum admin_role role,
			  const char *hash, char *err, size_t errlen);
int store_db_admin_set_password(struct store_db *db, const char *name, const char *hash, char *err,
				size_t errlen);
int store_db_admin_delete(struct store_db *db, const char *name, char *err, size_t errlen);
int store_db_admin_set_role(struct store_db *db, const char *name, enum admin_role role, char *err,
			    size_t errlen);

/* Tokens of name with this label (NULL: any label), into *n. */
int store_db_admin_token_count(struct store_db *db, const char *name, const char *label,
			       long long *n, char *err, size_t errlen);
/* Saves the token labelled label of name, replacing one with that label. */
int store_db_admin_token_put(struct store_db *db, const char *name, const char *label,
			     const char *token_sha256, char *err, size_t errlen);
/* Withdraws name's token labelled label (FG_NOTFOUND when none), or every
 * token of name (label NULL; none is not an error). */
int store_db_admin_token_delete(struct store_db *db, const char *name, const char *label, char *err,
				size_t errlen);

struct admin_token_row {
	const char *name, *label;
	long long created_ms, last_used_ms; /* last_used_ms 0: never */
};
typedef int (*store_token_cb)(void *ud, const struct admin_token_row *r);
/* The tokens of name (NULL: of every account), by account and label. */
int store_db_admin_tokens(struct store_db *db, const char *name, store_token_cb cb, void *ud,
			  char *err, size_t errlen);

struct admin_row {
	const char *name, *role;
	long long created_ms;
	long long tokens; /* how many API tokens */
};
/* Every account, by name; cb's non-FG_OK return stops and is returned. */
typedef int (*store_admin_cb)(void *ud, const struct admin_row *r);
int store_db_admin_list(struct store_db *db, store_admin_cb cb, void *ud, char *err, size_t errlen);

#endif

/* The store's part for admin accounts of the HTTP side (migration 3): the
 * `admins` and `admin_tokens` tables. Password hashes and token digests are
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
/* The account whose token has this SHA-256 (hex): FG_OK with its name and
 * role, FG_NOTFOUND, or FG_ERR. */
int store_db_admin_by_token(struct store_db *db, const char *token_sha256, char *name,
			    size_t namelen, enum admin_role *role, char *err, size_t errlen);
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
/* Replaces the account's token by token_sha256, or withdraws it (NULL). */
int store_db_admin_set_token(struct store_db *db, const char *name, const char *token_sha256,
			     char *err, size_t errlen);

struct admin_row {
	const char *name, *role;
	long long created_ms;
	bool api_token;
};
/* Every account, by name; cb's non-FG_OK return stops and is returned. */
typedef int (*store_admin_cb)(void *ud, const struct admin_row *r);
int store_db_admin_list(struct store_db *db, store_admin_cb cb, void *ud, char *err, size_t errlen);

#endif

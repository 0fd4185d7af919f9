/* Admin accounts of the HTTP API and the control panel: a name, a role
 * (administrator or viewer), an argon2id password hash (libsodium) and
 * any number of labelled API bearer tokens, of which only the SHA-256 is
 * stored. The `admin add|passwd|set|remove|list|token|tokens` commands live
 * here too, so they run in the daemon or, without one, on the store. */
#ifndef FG_ADMIN_H
#define FG_ADMIN_H

#include "cmd_types.h"
#include "store_admins.h"

#include <stdbool.h>
#include <stddef.h>

struct store_db;

#define ADMIN_NAME_MAX	   64
#define ADMIN_PASSWORD_MIN 8
#define ADMIN_PASSWORD_MAX 1024
#define ADMIN_LABEL_MAX	   40

/* libsodium's sodium_init(), once; FG_ERR when it cannot start. */
int admin_init(void);

/* ---- reads on the store (store thread in the daemon) ---- */

/* FG_OK with *role when name exists and password is its password;
 * FG_NOTFOUND when either is wrong (the same time is spent for an unknown
 * name, so a name cannot be probed by timing); FG_ERR with err. */
int admin_db_check_password(struct store_db *db, const char *name, const char *password,
			    enum admin_role *role, char *err, size_t errlen);
/* FG_OK with the account's name and role when token is a live one. */
int admin_db_by_token(struct store_db *db, const char *token, char *name, size_t namelen,
		      enum admin_role *role, char *err, size_t errlen);
/* FG_OK with *role; FG_NOTFOUND when no such account. */
int admin_db_role(struct store_db *db, const char *name, enum admin_role *role, char *err,
		  size_t errlen);

/* ---- the commands (cmd.c's table points here) ---- */

extern const struct cmd_param admin_params_add[];
extern const struct cmd_param admin_params_name[];
extern const struct cmd_param admin_params_token[];
extern const struct cmd_param admin_params_tokens[];
extern const struct cmd_param admin_params_set[];
extern const struct cmd_param admin_params_none[];

void admin_cmd_add(struct cmd_env *env, const struct cmd_request *req, cmd_reply_fn reply,
		   void *ud);
void admin_cmd_passwd(struct cmd_env *env, const struct cmd_request *req, cmd_reply_fn reply,
		      void *ud);
void admin_cmd_remove(struct cmd_env *env, const struct cmd_request *req, cmd_reply_fn reply,
		      void *ud);
void admin_cmd_list(struct cmd_env *env, const struct cmd_request *req, cmd_reply_fn reply,
		    void *ud);
void admin_cmd_token(struct cmd_env *env, const struct cmd_request *req, cmd_reply_fn reply,
		     void *ud);
void admin_cmd_tokens(struct cmd_env *env, const struct cmd_request *req, cmd_reply_fn reply,
		      void *ud);
void admin_cmd_set(struct cmd_env *env, const struct cmd_request *req, cmd_reply_fn reply,
		   void *ud);

#endif

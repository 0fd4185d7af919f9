/* Inside the command layer: the transaction machinery that the command
 * files (cmd.c, cmd_user.c, admin.c) share: a change's store ops and audit
 * rows committed in one transaction, then installed in the live state.
 * Not for front-ends: they use cmd.h. */
#ifndef FG_CMD_TXN_H
#define FG_CMD_TXN_H

#include "cmd_types.h"
#include "store_sqlite.h"
#include "users.h"

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>

/* One change on its way to the store: its ops and audit rows, the reply
 * to send once it commits, and what to install in the env then. */
struct cmd_txn {
	struct cmd_env *env;
	cmd_reply_fn reply;
	void *reply_ud;
	json_t *body; /* the reply when the commit succeeds */

	struct store_op ops[2];
	size_t nops;
	struct audit_entry *audit;
	size_t naudit;
	char **strings; /* audit texts to free */
	size_t nstrings, cap_strings;
	size_t cap_audit;
	const struct partner **list; /* REPLACE_PARTNERS */

	/* What to install once committed. */
	struct partner *put;	/* owned until installed */
	char *removed;		/* primary domain */
	struct policy *new_set; /* import */
	struct gateway_settings new_gw;
	bool gw_changed;
	struct account *put_user; /* owned until installed */
	char *removed_user;	  /* bare JID */
	/* A new password: the job turns it into SCRAM keys in put_user, off
	 * the loop (PBKDF2 with many iterations takes seconds), then wipes
	 * it. */
	char *password;
	unsigned iterations;
	json_t *audit_rows; /* reads */
	long long since_ms;
	/* audit: the changes matching audit_filter (kept in strings; NULL:
	 * all), then audit_offset newest skipped and audit_limit kept (0:
	 * all). */
	const char *audit_filter;
	unsigned long audit_limit, audit_offset;
};

/* Appends {"field": field or null, "message": msg} to body's "errors":
 * field is the parameter the error is about, so front-ends can show the
 * message beside it (the API's field, the panel's form field). */
void cmd_add_error(json_t *body, const char *field, const char *msg);
/* {"result": null, "warnings": [], "errors": []} */
json_t *cmd_body_new(void);
/* Answers with status and one error message. */
void cmd_reply_error(cmd_reply_fn reply, void *ud, int status, const char *field, const char *msg);
struct cmd_txn *cmd_txn_new(struct cmd_env *env, cmd_reply_fn reply, void *ud);
void cmd_txn_free(struct cmd_txn *t);
/* s (malloc'd, may be NULL) freed with t; NULL when s is or when out of
 * memory (s then freed). */
char *cmd_txn_keep(struct cmd_txn *t, char *s);
/* Adds an audit row for req; before/after (JSON texts, may be NULL) are
 * taken. FG_OK / FG_NOMEM. */
int cmd_txn_audit(struct cmd_txn *t, const struct cmd_request *req, const char *action,
		  const char *target, char *before, char *after);
/* Runs the txn through env->run; replies and frees it when done. */
void cmd_txn_commit(struct cmd_txn *t);
/* params[name] as a string, NULL when absent or not a string. */
const char *cmd_param_str(json_t *params, const char *name);
/* "2026-11-21T10:00:00.000Z" */
void cmd_format_ms(long long ms, char *buf, size_t len);

#endif

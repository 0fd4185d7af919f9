/* The command layer: one table of commands shared by the CLI, the control
 * socket and (later) the HTTP API, so validation and messages are the same
 * whichever way an admin comes in.
 *
 * A command takes its parameters as a JSON object (the CLI turns argv into
 * one with the same table) and answers with an exit status and a JSON body:
 *   {"result": ..., "warnings": [...], "errors": [{"field", "message"}...],
 *    "message": "...",
 *    "what_if": true}
 * Status: 0 done, 1 refused by validation (nothing saved), 2 usage error,
 * 3 not found. */
#ifndef FG_CMD_H
#define FG_CMD_H

#include "cmd_types.h"

/* Runs a command; reply is called exactly once, maybe before this returns. */
void cmd_exec(struct cmd_env *env, const struct cmd_request *req, cmd_reply_fn reply, void *ud);

const struct cmd_def *cmd_find(const char *name);
const struct cmd_def *cmd_table(size_t *n);
/* argv after the command words ("--domain", "x", ...) -> params object.
 * Unknown flags and missing values are usage errors (FG_INVAL, err set);
 * front-end flags the caller handles (--json, --what-if) must be removed
 * first. */
int cmd_parse_argv(const struct cmd_def *def, int argc, char **argv, json_t **params, char *err,
		   size_t errlen);

/* What a positional parameter is called in messages and help: "DOMAIN",
 * "JID", "NAME", "FILE". */
const char *cmd_arg_label(const struct cmd_param *p);

/* Loads partners, settings and users from db into a fresh env (CLI and
 * daemon start), generating the dialback secret if none was saved yet. */
int cmd_env_load(struct cmd_env *env, struct store_db *db, char *err, size_t errlen);
void cmd_env_clear(struct cmd_env *env);
/* The synchronous runner (CLI without a daemon). */
int cmd_run_sync(struct cmd_env *env, cmd_store_job job, cmd_store_done done, void *ud);

#endif

/* The command layer's vocabulary: statuses, the env commands run against,
 * a request, the reply callback, and the table's row types. Handlers and
 * the transaction machinery include this, not cmd.h, so that the table
 * (cmd.c) can point at every handler without an include circle. */
#ifndef FG_CMD_TYPES_H
#define FG_CMD_TYPES_H

#include "live.h"
#include "policy.h"

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>

enum { CMD_OK = 0, CMD_REFUSED = 1, CMD_USAGE = 2, CMD_NOT_FOUND = 3 };

struct account;
struct accounts;
struct fg_conf;
struct store_db;
struct cmd_env;
struct cmd_request;

typedef void (*cmd_reply_fn)(void *ud, int status, json_t *body /* owned by the callee */);

/* A change ready to be made durable: the store ops and audit entries of
 * one transaction, and the in-memory state to install once it commits. */
struct cmd_txn;

/* Runs the job of a txn or a read against the store: synchronously in the
 * CLI (no daemon), on the store thread in the daemon. The runner calls
 * done(txn_ud, rc, err) when finished, on the caller's thread. */
typedef int (*cmd_store_job)(struct store_db *db, void *ud, char *err, size_t errlen);
typedef void (*cmd_store_done)(void *ud, int rc, const char *err);
typedef int (*cmd_run_fn)(struct cmd_env *env, cmd_store_job job, cmd_store_done done, void *ud);

/* What commands run against. The env owns the live state (partners, gw,
 * users); the daemon's XMPP layer reads it through a pointer to `live`. */
struct cmd_env {
	struct live live;
	cmd_run_fn run;
	/* After a change is committed and installed: the daemon logs what it
	 * applies and closes streams that no longer match. NULL in the CLI.
	 * old/new are NULL for a partner that did not exist / was removed. */
	void (*partner_changed)(struct cmd_env *env, const struct partner *old,
				const struct partner *new_p);
	void (*gateway_changed)(struct cmd_env *env);
	/* The same for a local account (user add/passwd/set/remove), called
	 * once env->live.users holds the committed state; NULL in the CLI. old is
	 * a copy (NULL for a new account), new_a the installed account (NULL
	 * once removed); both are valid during the call only. The daemon
	 * closes a removed user's sessions here. */
	void (*user_changed)(struct cmd_env *env, const struct account *old,
			     const struct account *new_a);
	/* `status`: the daemon's live streams; NULL in the CLI. */
	json_t *(*status)(struct cmd_env *env);
	/* `status`'s "cluster" object (xmpp/cluster.h, cluster_status); NULL
	 * in the CLI. */
	json_t *(*cluster)(struct cmd_env *env);
	/* `partner retry`: the routes to p's domains forget their retry delay
	 * and those with stanzas waiting try at once; returns how many
	 * started an attempt. NULL in the CLI. */
	unsigned (*retry)(struct cmd_env *env, const struct partner *p);
	/* `partner history`: p's last 24 hours (history.h's shape), or NULL
	 * when the daemon keeps none for it; NULL in the CLI. */
	json_t *(*history)(struct cmd_env *env, const struct partner *p);
	/* `status --refused`: non-partner domains that tried to federate,
	 * most recent first; NULL in the CLI. */
	json_t *(*refused)(struct cmd_env *env);
	/* `test-im`: only the daemon can send; NULL in the CLI. */
	void (*test_im)(struct cmd_env *env, const struct cmd_request *req, cmd_reply_fn reply,
			void *ud);
	/* `probe`: only the daemon has the event loop, resolver and client
	 * TLS context a probe needs; NULL in the CLI. */
	void (*probe)(struct cmd_env *env, const struct cmd_request *req, cmd_reply_fn reply,
		      void *ud);
	/* `reload`: the daemon reads its configuration file again and fills
	 * body (made by cmd_body_new) with what changed, what needs a restart,
	 * and every error; returns CMD_OK or CMD_REFUSED (the file has errors:
	 * nothing changed). NULL in the CLI. */
	int (*reload)(struct cmd_env *env, json_t *body);
	/* `stop`: the daemon shuts down once the reply has gone out; returns
	 * its process id for the CLI to wait on. NULL in the CLI. */
	long (*stop)(struct cmd_env *env);
	void *ud;
	struct store_db *db; /* for the synchronous runner */
};

/* Installs (cmd_txn.c) a committed state read from the store (a change another node of
 * a cluster made) exactly as a local commit installs it: *set replaces the
 * partners (partner_changed for each partner that differs, then *set is
 * NULL); *gw replaces the gateway settings (gateway_changed, then *gw is
 * zeroed). Nothing is audited: the node that committed did. */
void cmd_env_install_partners(struct cmd_env *env, struct policy **set);
void cmd_env_install_gateway(struct cmd_env *env, struct gateway_settings *gw);

struct cmd_request {
	const char *name; /* "partner new" */
	json_t *params;	  /* borrowed */
	bool what_if;
	const char *who;   /* OS user or admin account */
	const char *iface; /* "cli", "api", "web" */
	bool read_only;	   /* the caller may only read (viewer role) */
};

/* ---- the table, for front-ends ---- */

enum cmd_param_type {
	CP_STRING, /* --x VALUE */
	CP_BOOL,   /* --x true|false|$true|... */
	CP_UINT,   /* --x N */
	CP_LIST,   /* --x a,b,c  -> JSON array */
	CP_REPEAT, /* --x A --x B -> JSON array */
	CP_FLAG,   /* --x        -> true */
	CP_SECRET, /* never from argv (it would show in ps): the front-end asks for it */
};

struct cmd_param {
	const char *name; /* JSON key, "additional_domains" */
	const char *flag; /* "--additional-domains"; NULL for a positional one */
	enum cmd_param_type type;
	bool required;
	const char *help;
};

typedef void (*cmd_handler)(struct cmd_env *env, const struct cmd_request *req, cmd_reply_fn reply,
			    void *ud);

/* A row of the table: the command, its parameters and the handler that
 * runs it. */
/* What a command may do, and so who may run it: reads are for every role;
 * changes (true in the table) and actions are refused to viewers. An
 * action (test-im, probe, retry, reload, stop) works on the running daemon
 * and saves nothing, so --what-if does not apply to it. */
enum { CMD_READS = 0, CMD_CHANGES = 1, CMD_ACTS = 2 };

struct cmd_def {
	const char *name; /* "partner new" */
	int writes;	  /* CMD_READS (false), CMD_CHANGES (true) or CMD_ACTS */
	const char *summary;
	const struct cmd_param *params; /* terminated by name == NULL */
	cmd_handler run;
};

#endif

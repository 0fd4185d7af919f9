/* The SQLite store, synchronous: partners, gateway settings, admin accounts,
 * local users (their SQL is in store_users.c), the audit log. Used directly
 * by the CLI when no daemon runs, and by the daemon only from its store
 * thread (store.c). */
#ifndef FG_STORE_SQLITE_H
#define FG_STORE_SQLITE_H

#include "policy.h"

#include <stddef.h>

struct account;
struct store_db;

/* Opens (creating if needed) the database at path: WAL mode, synchronous
 * FULL, foreign keys on, busy timeout, then runs the numbered migrations up
 * to the current schema (PRAGMA user_version). On failure returns FG_ERR
 * and a sentence an admin can act on in err. A database whose
 * user_version is newer than this program knows is refused. */
int store_db_open(const char *path, struct store_db **out, char *err, size_t errlen);

enum store_backend { STORE_SQLITE, STORE_POSTGRESQL };

/* Where the store is: [store] backend, path, dsn, pool_size, and the name
 * of this node ([cluster] node, or the host name) for the change
 * notifications PostgreSQL sends. */
struct store_target {
	enum store_backend backend;
	const char *path;   /* SQLite */
	const char *dsn;    /* PostgreSQL: a libpq connection string */
	unsigned pool_size; /* PostgreSQL connections of the daemon's store */
	const char *node;
};

/* Opens the store the target names. PostgreSQL: connects (with a connect
 * timeout and TCP keepalives, so a dead server fails a job in seconds),
 * then migrates under pg_advisory_xact_lock, so nodes opening one fresh
 * database together do not race; the schema version is kept in the table
 * fedgate_schema, and a database newer than this program is refused as on
 * SQLite. Messages never show the dsn's password. */
int store_open(const struct store_target *t, struct store_db **out, char *err, size_t errlen);
/* PostgreSQL, for `fedgate check`: connects and reads the schema version
 * (0 for a database fedgate never opened) without changing anything. */
int store_pg_probe(const char *dsn, int *version, char *err, size_t errlen);

struct fg_conf;
/* The target [store] and [cluster] describe; strings point into conf. */
struct store_target store_target_of(const struct fg_conf *conf);

/* Another handle on the same database (a connection of the pool); SQLite
 * gets a handle on the same file. */
int store_db_open_again(struct store_db *db, struct store_db **out, char *err, size_t errlen);
/* Connections the daemon's store should keep: [store] pool_size on
 * PostgreSQL, 1 on SQLite. */
unsigned store_db_pool_size(const struct store_db *db);
/* The target's dsn with the value of password= replaced by "***", into buf. */
void store_dsn_masked(const char *dsn, char *buf, size_t len);
/* The dsn without its password into buf, the password (percent-encoding
 * of a URI left as it is; "" when none) into pw: for the tools (pg_dump)
 * that get the password from PGPASSWORD instead of their command line. */
void store_dsn_split(const char *dsn, char *buf, size_t len, char *pw, size_t pwlen);
void store_db_close(struct store_db **db);
int store_db_schema_version(struct store_db *db);
/* The schema version this program migrates to (the number of migrations). */
int store_db_schema_latest(void);
/* Loads every partner into a new set (policy_new + policy_put) and the
 * gateway settings (defaults for keys never saved; dialback_secret NULL
 * when never set), both from one snapshot. Either may be NULL to load only
 * the other. A row this program cannot read fails the load (FG_INVAL) with
 * a message naming it; on failure *partners is NULL and *gw the defaults. */
int store_db_load(struct store_db *db, struct policy **partners, struct gateway_settings *gw,
		  char *err, size_t errlen);

/* One change; a commit applies a list of them in one transaction. */
enum store_op_kind {
	STORE_PUT_PARTNER,	/* insert or replace by primary domain */
	STORE_NEW_PARTNER,	/* insert; a partner with that primary domain is a conflict */
	STORE_DELETE_PARTNER,	/* by primary domain */
	STORE_REPLACE_PARTNERS, /* delete all partners, insert these (import) */
	STORE_PUT_GATEWAY,	/* every gateway setting */
	STORE_CUSTOM,		/* custom(db, custom_arg): another subsystem's tables */
};

struct store_op {
	enum store_op_kind kind;
	const struct partner *partner;	       /* PUT_PARTNER */
	const char *domain;		       /* DELETE_PARTNER */
	const struct partner *const *partners; /* REPLACE_PARTNERS */
	size_t npartners;
	const struct gateway_settings *gw; /* PUT_GATEWAY */
	/* CUSTOM: runs inside the transaction; FG_OK or an error with err set. */
	int (*custom)(struct store_db *db, const void *arg, char *err, size_t errlen);
	const void *custom_arg;
};

/* An audit record: written in the same transaction as the change it
 * describes. before/after are JSON texts (NULL when there is none) that
 * must not hold secrets; the caller redacts them. */
struct audit_entry {
	long long at_ms;    /* 0 = now */
	const char *who;    /* OS user ("root") or admin account */
	const char *iface;  /* "cli", "control", "api", "web", "import" */
	const char *action; /* "partner new", "partner set", "gateway set", ... */
	const char *target; /* "fabrikam.test", "gateway" */
	const char *before;
	const char *after;
};

/* The target as a person reads it after the action: NULL when the action
 * already names it ("gateway set" on target "gateway" would read "gateway
 * set gateway"). The record keeps the target, so filters by it still work. */
const char *audit_target_shown(const char *action, const char *target);

/* All ops and audit entries in one transaction: on any failure nothing of
 * it is kept (ROLLBACK) and err says why. A crash or kill -9 at any point
 * leaves the old or the new state, never a mix. Returns FG_OK; FG_INVAL
 * when the change conflicts with the stored data (a domain of another
 * partner, a duplicate); FG_NOTFOUND when DELETE_PARTNER names no partner
 * or DELETE_USER no user; FG_NOMEM; FG_ERR for anything else (I/O, busy,
 * PostgreSQL unreachable: "the store (PostgreSQL) cannot be reached: ...;
 * nothing was saved"). On PostgreSQL, when an op changes partners or
 * gateway settings, the transaction also sends NOTIFY fedgate_config
 * {"node":NODE,"at_ms":MS,"actions":["partner set fabrikam.test",...]}
 * (the audit records' action and target as audit_target_shown() gives it),
 * delivered on COMMIT only. */
int store_db_commit(struct store_db *db, const struct store_op *ops, size_t nops,
		    const struct audit_entry *audit, size_t naudit, char *err, size_t errlen);

/* The dialback secret every node uses: candidate is saved (with the audit
 * record a) only when no secret is saved yet, and *out gets the one saved,
 * ours or the one another node saved first. */
int store_db_dialback_secret(struct store_db *db, const char *candidate,
			     const struct audit_entry *a, char **out, char *err, size_t errlen);

/* Audit rows at or after since_ms (0 = all), oldest first; strings are
 * valid during the callback only. Return non-zero from cb to stop. */
typedef int (*store_audit_cb)(void *ud, long long id, const struct audit_entry *e);
int store_db_audit(struct store_db *db, long long since_ms, store_audit_cb cb, void *ud, char *err,
		   size_t errlen);

/* ---- for the store's own files only ----
 * The rest of the store's SQL lives beside the tables it serves
 * (store_users.c, store_admins.c, ...); it shares the handle, the
 * statement cache and the error wording through these, and nothing else
 * should use them. The statement layer below runs the same SQL on SQLite
 * and on PostgreSQL: parameters are written ?1, ?2, ... (PostgreSQL gets
 * $1, $2, ...), text and integers only. */
struct store_stmt;

/* Results of the statement layer, SQLite's names for them. */
enum store_src {
	SDB_OK = 0,
	SDB_ROW,
	SDB_DONE,
	SDB_CONSTRAINT_PRIMARYKEY,
	SDB_CONSTRAINT_UNIQUE,
	SDB_CONSTRAINT_FOREIGNKEY,
	SDB_CONSTRAINT_TRIGGER, /* a trigger of the schema refused the row */
	SDB_CONSTRAINT,		/* another constraint (NOT NULL, CHECK) */
	SDB_NOMEM,
	SDB_BUSY,
	SDB_UNREACHABLE, /* PostgreSQL: the connection is gone */
	SDB_ERROR,
};

enum store_backend store_db_backend(const struct store_db *db);
/* err = the formatted sentence (err may be NULL). */
void store_db_set_err(char *err, size_t errlen, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
/* Steps a statement that returns no rows and makes it reusable: the
 * statement's own result, or SDB_DONE. */
int store_db_run(struct store_stmt *s);
/* Binds a copy of the text, or NULL. */
int store_db_bind_text(struct store_stmt *s, int i, const char *v);
int store_bind_int64(struct store_stmt *s, int i, long long v);
int store_bind_null(struct store_stmt *s, int i);
/* SDB_ROW, SDB_DONE or an error (the message in store_db_errmsg()). */
int store_step(struct store_stmt *s);
/* Forgets the result and the bindings: the statement can run again. */
void store_reset(struct store_stmt *s);
/* Column i of the current row as text, NULL for NULL; valid until the
 * next step or reset. */
const char *store_db_col_text(struct store_stmt *s, int i);
/* Column i as an integer (0 for NULL; PostgreSQL's booleans are 0 or 1). */
long long store_col_int64(struct store_stmt *s, int i);
int store_col_null(struct store_stmt *s, int i);
/* Rows changed by the last INSERT, UPDATE or DELETE (not its cascade). */
long long store_db_changes(struct store_db *db);
/* The database's message about the last failure. */
const char *store_db_errmsg(struct store_db *db);
/* The store as messages name it: the file, or "PostgreSQL (dsn without
 * its password)". */
const char *store_db_path(const struct store_db *db);
/* The statement for sql, prepared on first use and kept until close; sql
 * must be a string constant (the cache is keyed by its address). NULL with
 * err set when it cannot be prepared. */
struct store_stmt *store_db_stmt(struct store_db *db, const char *sql, char *err, size_t errlen);
/* The same, with a text of its own for each backend where the SQL has to
 * differ (pg is used on PostgreSQL, keyed by sql). */
struct store_stmt *store_db_stmt2(struct store_db *db, const char *sql, const char *pg, char *err,
				  size_t errlen);
/* err = "the store PATH could not WHAT: the database's message"; the FG_
 * code for the result src (never FG_OK). An unreachable PostgreSQL gets a
 * sentence of its own that says nothing was saved. */
int store_db_fail(struct store_db *db, int src, char *err, size_t errlen, const char *what);
/* Starts a write transaction (SQLite: BEGIN IMMEDIATE, the write lock,
 * waiting up to the busy timeout). */
int store_db_begin(struct store_db *db, char *err, size_t errlen);
/* COMMIT when rc is FG_OK, else ROLLBACK; the result of the whole. */
int store_db_end(struct store_db *db, int rc, char *err, size_t errlen);

#endif

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

/* All ops and audit entries in one transaction: on any failure nothing of
 * it is kept (ROLLBACK) and err says why. A crash or kill -9 at any point
 * leaves the old or the new state, never a mix. Returns FG_OK; FG_INVAL
 * when the change conflicts with the stored data (a domain of another
 * partner, a duplicate); FG_NOTFOUND when DELETE_PARTNER names no partner
 * or DELETE_USER no user; FG_NOMEM; FG_ERR for anything else (I/O, busy). */
int store_db_commit(struct store_db *db, const struct store_op *ops, size_t nops,
		    const struct audit_entry *audit, size_t naudit, char *err, size_t errlen);

/* Audit rows at or after since_ms (0 = all), oldest first; strings are
 * valid during the callback only. Return non-zero from cb to stop. */
typedef int (*store_audit_cb)(void *ud, long long id, const struct audit_entry *e);
int store_db_audit(struct store_db *db, long long since_ms, store_audit_cb cb, void *ud, char *err,
		   size_t errlen);

/* ---- for store_users.c only ----
 * The rest of the store's SQL lives beside the tables it serves; it shares
 * the handle, the statement cache and the error wording through these, and
 * nothing else should use them. */
struct sqlite3;
struct sqlite3_stmt;

/* The SQLite handle, only on the thread that owns db. */
struct sqlite3 *store_db_handle(struct store_db *db);
/* err = the formatted sentence (err may be NULL). */
void store_db_set_err(char *err, size_t errlen, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
/* Steps a statement that returns no rows and makes it reusable: the
 * statement's own result, or SQLITE_DONE. */
int store_db_run(struct sqlite3_stmt *s);
/* Binds text or NULL without copying: every statement is reset before the
 * strings it was bound to can go away. */
int store_db_bind_text(struct sqlite3_stmt *s, int i, const char *v);
/* Column i as text, NULL for NULL; valid until the next step or reset. */
const char *store_db_col_text(struct sqlite3_stmt *s, int i);
const char *store_db_path(const struct store_db *db);
/* The statement for sql, prepared on first use and kept until close; sql
 * must be a string constant (the cache is keyed by its address). NULL with
 * err set when it cannot be prepared. */
struct sqlite3_stmt *store_db_stmt(struct store_db *db, const char *sql, char *err, size_t errlen);
/* err = "the store PATH could not WHAT: sqlite's message"; the FG_ code for
 * the sqlite result src (never FG_OK). */
int store_db_fail(struct store_db *db, int src, char *err, size_t errlen, const char *what);
/* BEGIN IMMEDIATE (the write lock, waiting up to the busy timeout). */
int store_db_begin(struct store_db *db, char *err, size_t errlen);
/* COMMIT when rc is FG_OK, else ROLLBACK; the result of the whole. */
int store_db_end(struct store_db *db, int rc, char *err, size_t errlen);

#endif

/* Inside the store only: the handle both backends share, and the two
 * drivers of the statement layer (store_stmt.c for SQLite and the
 * dispatch, store_pg.c for PostgreSQL). */
#ifndef FG_STORE_DB_INT_H
#define FG_STORE_DB_INT_H

#include <sqlite3.h>

#include <stdbool.h>

/* The generic statements of store_sqlite.c, cached by index. */
#define STORE_ST_MAX 24
/* Room for the other files' statements; store_db_stmt() says when it is
 * too small, at the first use of the statement that does not fit. */
#define EXT_STMT_MAX 64
/* The most parameters a statement may have (?1 .. ?N). */
#define STMT_MAXP 16

struct pg_conn;
struct store_db;

struct store_stmt {
	struct store_db *db;
	sqlite3_stmt *lite;
	/* PostgreSQL */
	char *pgsql;   /* ?N turned into $N */
	char name[16]; /* the prepared statement's name on the connection */
	unsigned gen;  /* the connection it was prepared on (0 = none) */
	int nparams;   /* the highest N of ?N: PQexecPrepared wants them all */
	bool write;    /* INSERT, UPDATE, DELETE: a savepoint in a transaction */
	int txn;       /* 0, or 'B', 'R' (read), 'C', 'X' (rollback) */
	char *val[STMT_MAXP];
	void *res; /* PGresult */
	int row, nrows;
};

struct store_db {
	int backend; /* enum store_backend (store_sqlite.h) */
	char *path;  /* SQLite: the file; PostgreSQL: "PostgreSQL (masked dsn)" */
	char *dsn;   /* PostgreSQL */
	char *node;
	unsigned pool_size;
	int version;
	sqlite3 *h;
	struct pg_conn *pg;
	struct store_stmt *st[STORE_ST_MAX];
	struct {
		const char *sql; /* a string constant: compared by address */
		struct store_stmt *st;
	} ext[EXT_STMT_MAX];
	size_t next;
};

/* SQLite: prepares sql into s->lite. */
struct store_stmt *store_stmt_new(struct store_db *db, const char *sql, char *err, size_t errlen);
void store_stmt_free(struct store_stmt *s);
/* The SQLite result as the layer's. */
int store_src_from_sqlite(int src);

/* ---- store_lite.c ---- */
int store_lite_open(struct store_db *db, const char *path, char *err, size_t errlen);
void store_lite_close(struct store_db *db);

/* ---- store_pg.c ---- */
int store_pg_open(struct store_db *db, char *err, size_t errlen);
void store_pg_close(struct store_db *db);
int store_pg_prepare(struct store_stmt *s, const char *sql, char *err, size_t errlen);
int store_pg_step(struct store_stmt *s);
void store_pg_reset(struct store_stmt *s);
const char *store_pg_col(struct store_stmt *s, int i);
int store_pg_isnull(struct store_stmt *s, int i);
long long store_pg_changes(struct store_db *db);
const char *store_pg_errmsg(struct store_db *db);
bool store_pg_in_txn(struct store_db *db);
/* store_db_fail() on PostgreSQL. */
int store_pg_fail(struct store_db *db, int src, char *err, size_t errlen, const char *what);
/* SELECT pg_notify(channel, payload) in the open transaction. */
int store_pg_notify(struct store_db *db, const char *channel, const char *payload, char *err,
		    size_t errlen);

#endif

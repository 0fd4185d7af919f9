/* The SQLite store.
 *
 * The schema grows only by numbered migrations (PRAGMA user_version is the
 * number of the last one applied), each in a transaction of its own, so a
 * crash during an upgrade leaves a database at some whole version. Every
 * value goes in through a bound parameter of a statement prepared once and
 * kept in the handle; SQL text is never assembled from values.
 *
 * The store writes what the command layer already validated: loading
 * trusts the rows (no policy_check), but a row that this program cannot
 * read back is an error that names it, never a silent default. */
#include "store_sqlite.h"

#include "fg.h"
#include "log.h"
#include "pin.h"

#include <sqlite3.h>

#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <limits.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

/* ---- schema ---- */

static const char *const migrations[] = {
	/* 1: partners, gateway settings, admin accounts, audit log */
	"CREATE TABLE partners ("
	" domain TEXT PRIMARY KEY,"
	" description TEXT NOT NULL,"
	" partner_type TEXT NOT NULL,"
	" tls TEXT NOT NULL,"
	" sasl TEXT NOT NULL,"
	" dialback INTEGER NOT NULL,"
	" keepalive INTEGER NOT NULL,"
	" connection_limit INTEGER NOT NULL,"
	" proxy_fqdn TEXT);"
	"CREATE TABLE partner_domains ("
	" domain TEXT PRIMARY KEY,"
	" partner TEXT NOT NULL REFERENCES partners(domain) ON DELETE CASCADE);"
	/* Without it every deleted partner scans partner_domains for the
	 * cascade. */
	"CREATE INDEX partner_domains_partner ON partner_domains(partner);"
	/* The primary keys keep primaries and additional domains unique among
	 * themselves; these keep the two apart, so that every domain belongs
	 * to one partner and whatever was committed can be loaded. */
	"CREATE TRIGGER partner_domains_not_primary BEFORE INSERT ON partner_domains"
	" WHEN EXISTS (SELECT 1 FROM partners WHERE domain = NEW.domain)"
	" BEGIN SELECT RAISE(ABORT, 'domain is a primary domain'); END;"
	"CREATE TRIGGER partners_not_additional BEFORE INSERT ON partners"
	" WHEN EXISTS (SELECT 1 FROM partner_domains WHERE domain = NEW.domain)"
	" BEGIN SELECT RAISE(ABORT, 'domain is an additional domain'); END;"
	"CREATE TABLE gateway ("
	" key TEXT PRIMARY KEY,"
	" value TEXT NOT NULL);"
	"CREATE TABLE admins ("
	" name TEXT PRIMARY KEY,"
	" role TEXT NOT NULL CHECK(role IN ('administrator','viewer')),"
	" password_hash TEXT NOT NULL,"
	" created_ms INTEGER NOT NULL);"
	"CREATE TABLE audit ("
	" id INTEGER PRIMARY KEY AUTOINCREMENT,"
	" at_ms INTEGER NOT NULL,"
	" who TEXT NOT NULL,"
	" iface TEXT NOT NULL,"
	" action TEXT NOT NULL,"
	" target TEXT NOT NULL,"
	" before TEXT,"
	" after TEXT);"
	"CREATE INDEX audit_at_ms ON audit(at_ms);",
	/* 2: local users and what belongs to each (store_users.c). Rows of a
	 * user go with the user. The roster's primary key starts with user,
	 * so the cascade needs no index of its own; offline does. */
	"CREATE TABLE users ("
	" jid TEXT PRIMARY KEY,"
	" credentials TEXT NOT NULL,"
	" xmpp_access INTEGER NOT NULL,"
	" created_ms INTEGER NOT NULL);"
	"CREATE TABLE roster ("
	" user TEXT NOT NULL REFERENCES users(jid) ON DELETE CASCADE,"
	" contact TEXT NOT NULL,"
	" name TEXT,"
	" groups TEXT NOT NULL,"
	" sub_to INTEGER NOT NULL,"
	" sub_from INTEGER NOT NULL,"
	" ask_out INTEGER NOT NULL,"
	" pending_in INTEGER NOT NULL,"
	" approved INTEGER NOT NULL,"
	" pending_in_xml TEXT,"
	" hidden INTEGER NOT NULL DEFAULT 0,"
	" PRIMARY KEY (user, contact));"
	"CREATE TABLE offline ("
	" id INTEGER PRIMARY KEY AUTOINCREMENT,"
	" user TEXT NOT NULL REFERENCES users(jid) ON DELETE CASCADE,"
	" at_ms INTEGER NOT NULL,"
	" xml TEXT NOT NULL);"
	"CREATE INDEX offline_user ON offline(user, id);"
	"CREATE TABLE vcards ("
	" user TEXT PRIMARY KEY REFERENCES users(jid) ON DELETE CASCADE,"
	" xml TEXT NOT NULL);",
	/* 3: API bearer tokens of admin accounts, one per account; only the
	 * SHA-256 of a token is kept, so a copy of the database signs no one
	 * in. */
	"CREATE TABLE admin_tokens ("
	" admin TEXT PRIMARY KEY REFERENCES admins(name) ON DELETE CASCADE,"
	" token_sha256 TEXT NOT NULL UNIQUE,"
	" created_ms INTEGER NOT NULL);",
	/* 4: a partner can be suspended without deleting it (`partner set
	 * --enabled false`); every partner saved before was enabled. */
	"ALTER TABLE partners ADD COLUMN enabled INTEGER NOT NULL DEFAULT 1;",
	/* 5: named API tokens, several per account, each revocable alone
	 * (store_admins.c): a Prometheus token no longer dies when a script
	 * gets one. The one token an account had becomes "default", which is
	 * the label `admin token NAME` replaces, as it always did. last_used_ms
	 * is written at most once a minute per token. */
	"CREATE TABLE admin_tokens_5 ("
	" id INTEGER PRIMARY KEY AUTOINCREMENT,"
	" admin TEXT NOT NULL REFERENCES admins(name) ON DELETE CASCADE,"
	" label TEXT NOT NULL,"
	" token_sha256 TEXT NOT NULL UNIQUE,"
	" created_ms INTEGER NOT NULL,"
	" last_used_ms INTEGER,"
	" UNIQUE (admin, label));"
	"INSERT INTO admin_tokens_5 (admin, label, token_sha256, created_ms)"
	" SELECT admin, 'default', token_sha256, created_ms FROM admin_tokens;"
	"DROP TABLE admin_tokens;"
	"ALTER TABLE admin_tokens_5 RENAME TO admin_tokens;",
	/* 6: issue 15's per-partner choices: XEP-0288 bidirectional streams
	 * (on for every partner saved before, as for new ones), DANE (off)
	 * and public-key pins, kept as their base64 forms separated by
	 * spaces (base64 has none; policy_check() normalized them). */
	"ALTER TABLE partners ADD COLUMN bidi INTEGER NOT NULL DEFAULT 1;"
	"ALTER TABLE partners ADD COLUMN dane TEXT NOT NULL DEFAULT 'off';"
	"ALTER TABLE partners ADD COLUMN pins TEXT NOT NULL DEFAULT '';",
	/* 7: the message archive (XEP-0313, store_archive.c): each user's
	 * messages with the stanza-id (XEP-0359) they were given, and their
	 * archiving preferences; both go with the user. (owner, id) serves
	 * paging and the cascade, ts_ms the retention expiry. */
	"CREATE TABLE archive ("
	" id INTEGER PRIMARY KEY,"
	" owner TEXT NOT NULL REFERENCES users(jid) ON DELETE CASCADE,"
	" with_jid TEXT NOT NULL,"
	" ts_ms INTEGER NOT NULL,"
	" stanza_id TEXT NOT NULL,"
	" outgoing INTEGER NOT NULL,"
	" xml TEXT NOT NULL);"
	"CREATE UNIQUE INDEX archive_owner_sid ON archive(owner, stanza_id);"
	"CREATE INDEX archive_owner_id ON archive(owner, id);"
	"CREATE INDEX archive_ts ON archive(ts_ms);"
	"CREATE TABLE archive_prefs ("
	" owner TEXT PRIMARY KEY REFERENCES users(jid) ON DELETE CASCADE,"
	" mode TEXT NOT NULL CHECK(mode IN ('always','roster','never')),"
	" always TEXT NOT NULL,"
	" never TEXT NOT NULL);",
	/* 8: personal eventing (XEP-0163, XEP-0223; store_pep.c): each
	 * account's nodes with their configuration, and their items as
	 * serialized payloads. The newest item is the highest rowid. */
	"CREATE TABLE pep_nodes ("
	" owner TEXT NOT NULL REFERENCES users(jid) ON DELETE CASCADE,"
	" node TEXT NOT NULL,"
	" access_model TEXT NOT NULL,"
	" max_items INTEGER NOT NULL,"
	" persist INTEGER NOT NULL,"
	" created_ms INTEGER NOT NULL,"
	" PRIMARY KEY (owner, node));"
	"CREATE TABLE pep_items ("
	" owner TEXT NOT NULL,"
	" node TEXT NOT NULL,"
	" id TEXT NOT NULL,"
	" xml TEXT NOT NULL,"
	" at_ms INTEGER NOT NULL,"
	" PRIMARY KEY (owner, node, id),"
	" FOREIGN KEY (owner, node) REFERENCES pep_nodes(owner, node) ON DELETE CASCADE);",
	/* 9: XEP-0191 blocklists (store_block.c): what each user blocked, as
	 * prepared JID text; the primary key starts with owner, so the
	 * cascade needs no index of its own. */
	"CREATE TABLE blocklist ("
	" owner TEXT NOT NULL REFERENCES users(jid) ON DELETE CASCADE,"
	" jid TEXT NOT NULL,"
	" PRIMARY KEY (owner, jid));",
	/* 10: roster versions (RFC 6121 §2.6, store_users.c): a counter per
	 * user, raised with every change a roster push announces. A user
	 * without a row is at version 0. */
	"CREATE TABLE roster_versions ("
	" user TEXT PRIMARY KEY REFERENCES users(jid) ON DELETE CASCADE,"
	" ver INTEGER NOT NULL);",
};

#define SCHEMA_LATEST ((int)FG_ARRAY_LEN(migrations))

/* ---- cached statements ---- */

enum stmt_id {
	ST_BEGIN,
	ST_BEGIN_READ,
	ST_COMMIT,
	ST_ROLLBACK,
	ST_PARTNER_DELETE,
	ST_PARTNER_DELETE_ALL,
	ST_PARTNER_INSERT,
	ST_DOMAIN_INSERT,
	ST_DOMAIN_OWNER,
	ST_GATEWAY_PUT,
	ST_GATEWAY_DELETE,
	ST_AUDIT_INSERT,
	ST_LOAD_PARTNERS,
	ST_LOAD_GATEWAY,
	ST_AUDIT_SELECT,
	ST_COUNT
};

static const char *const stmt_sql[ST_COUNT] = {
	[ST_BEGIN] = "BEGIN IMMEDIATE",
	[ST_BEGIN_READ] = "BEGIN",
	[ST_COMMIT] = "COMMIT",
	[ST_ROLLBACK] = "ROLLBACK",
	[ST_PARTNER_DELETE] = "DELETE FROM partners WHERE domain = ?1",
	[ST_PARTNER_DELETE_ALL] = "DELETE FROM partners",
	[ST_PARTNER_INSERT] = "INSERT INTO partners (domain, description, partner_type, tls, sasl,"
			      " dialback, keepalive, connection_limit, proxy_fqdn, enabled, bidi,"
			      " dane, pins)"
			      " VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13)",
	[ST_DOMAIN_INSERT] = "INSERT INTO partner_domains (domain, partner) VALUES (?1, ?2)",
	[ST_DOMAIN_OWNER] = "SELECT partner FROM partner_domains WHERE domain = ?1",
	[ST_GATEWAY_PUT] = "INSERT INTO gateway (key, value) VALUES (?1, ?2)"
			   " ON CONFLICT (key) DO UPDATE SET value = excluded.value",
	[ST_GATEWAY_DELETE] = "DELETE FROM gateway WHERE key = ?1",
	[ST_AUDIT_INSERT] = "INSERT INTO audit (at_ms, who, iface, action, target, before, after)"
			    " VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
	/* One pass: a partner's rows are adjacent, its additional domains
	 * (NULL when it has none) in the last column. */
	[ST_LOAD_PARTNERS] = "SELECT p.domain, p.description, p.partner_type, p.tls, p.sasl,"
			     " p.dialback, p.keepalive, p.connection_limit, p.proxy_fqdn, d.domain,"
			     " p.enabled, p.bidi, p.dane, p.pins"
			     " FROM partners AS p"
			     " LEFT JOIN partner_domains AS d ON d.partner = p.domain"
			     " ORDER BY p.domain, d.domain",
	[ST_LOAD_GATEWAY] = "SELECT key, value FROM gateway ORDER BY key",
	[ST_AUDIT_SELECT] = "SELECT id, at_ms, who, iface, action, target, before, after"
			    " FROM audit WHERE at_ms >= ?1 ORDER BY id",
};

/* Room for store_users.c's statements; store_db_stmt() says when it is
 * too small, at the first use of the statement that does not fit. */
#define EXT_STMT_MAX 40

struct store_db {
	sqlite3 *h;
	char *path;
	int version;
	sqlite3_stmt *st[ST_COUNT];
	struct {
		const char *sql; /* a string constant: compared by address */
		sqlite3_stmt *st;
	} ext[EXT_STMT_MAX];
	size_t next;
};

/* ---- gateway settings as key/value rows ---- */

enum gw_type { GW_UNSIGNED, GW_BOOL, GW_SECRET };

struct gw_key {
	const char *name; /* the field name of struct gateway_settings */
	enum gw_type type;
	size_t off;
};

/* The key is the field's name, spelled once. */
#define GW(field, type) #field, type, offsetof(struct gateway_settings, field)

static const struct gw_key gw_keys[] = {
	{GW(connection_limit, GW_UNSIGNED)},
	{GW(partner_connection_limit, GW_UNSIGNED)},
	{GW(keepalive_interval, GW_UNSIGNED)},
	{GW(stream_establishment_timeout, GW_UNSIGNED)},
	{GW(stream_inactivity_timeout, GW_UNSIGNED)},
	{GW(subscription_refresh_interval, GW_UNSIGNED)},
	{GW(log_message_bodies, GW_BOOL)},
	{GW(dialback_secret, GW_SECRET)},
};

/* ---- helpers ---- */

void store_db_set_err(char *err, size_t errlen, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

void store_db_set_err(char *err, size_t errlen, const char *fmt, ...)
{
	va_list ap;

	if (err == NULL || errlen == 0)
		return;
	va_start(ap, fmt);
	vsnprintf(err, errlen, fmt, ap);
	va_end(ap);
}

static int rc_from_sqlite(int src)
{
	switch (src & 0xff) {
	case SQLITE_OK:
	case SQLITE_DONE:
	case SQLITE_ROW: return FG_OK;
	case SQLITE_NOMEM: return FG_NOMEM;
	case SQLITE_CONSTRAINT: return FG_INVAL;
	default: return FG_ERR;
	}
}

/* The cached statement, prepared on first use. */
static sqlite3_stmt *stmt(struct store_db *db, enum stmt_id id, char *err, size_t errlen)
{
	if (db->st[id] == NULL) {
		int src = sqlite3_prepare_v3(db->h, stmt_sql[id], -1, SQLITE_PREPARE_PERSISTENT,
					     &db->st[id], NULL);
		if (src != SQLITE_OK) {
			store_db_set_err(err, errlen, "the store %s cannot prepare a statement: %s",
					 db->path, sqlite3_errmsg(db->h));
			return NULL;
		}
	}
	return db->st[id];
}

/* Runs a statement that returns no rows and makes it reusable. The
 * statement's own error code, or SQLITE_DONE. */
int store_db_run(sqlite3_stmt *s)
{
	int src = sqlite3_step(s);

	sqlite3_reset(s);
	sqlite3_clear_bindings(s);
	return src;
}

/* Text or NULL, never copied: every statement is reset before the strings
 * it was bound to can go away. */
int store_db_bind_text(sqlite3_stmt *s, int i, const char *v)
{
	if (v == NULL)
		return sqlite3_bind_null(s, i);
	return sqlite3_bind_text(s, i, v, -1, SQLITE_STATIC);
}

/* Statement errors look like "UNIQUE constraint failed: ..."; turn them into
 * a sentence with what was being done. */
static int fail(struct store_db *db, int src, char *err, size_t errlen, const char *what)
{
	int rc = rc_from_sqlite(src);

	store_db_set_err(err, errlen, "the store %s could not %s: %s", db->path, what,
			 sqlite3_errmsg(db->h));
	return rc == FG_OK ? FG_ERR : rc;
}

static int run_cached(struct store_db *db, enum stmt_id id, char *err, size_t errlen,
		      const char *what)
{
	sqlite3_stmt *s = stmt(db, id, err, errlen);
	int src;

	if (s == NULL)
		return FG_ERR;
	src = store_db_run(s);
	if (src != SQLITE_DONE)
		return fail(db, src, err, errlen, what);
	return FG_OK;
}

static int exec_simple(struct store_db *db, const char *sql, char *err, size_t errlen,
		       const char *what)
{
	int src = sqlite3_exec(db->h, sql, NULL, NULL, NULL);

	if (src != SQLITE_OK)
		return fail(db, src, err, errlen, what);
	return FG_OK;
}

/* A pragma (or query) whose single result is an integer. */
static int pragma_int(struct store_db *db, const char *sql, long long *out, char *err,
		      size_t errlen)
{
	sqlite3_stmt *s = NULL;
	int src = sqlite3_prepare_v2(db->h, sql, -1, &s, NULL);

	if (src == SQLITE_OK)
		src = sqlite3_step(s);
	if (src != SQLITE_ROW) {
		int rc = fail(db, src, err, errlen, "be read");

		sqlite3_finalize(s);
		return rc;
	}
	*out = sqlite3_column_int64(s, 0);
	sqlite3_finalize(s);
	return FG_OK;
}

static void rollback(struct store_db *db)
{
	sqlite3_stmt *s;

	/* Some errors (I/O, disk full, out of memory) already rolled the
	 * transaction back; ROLLBACK would only fail. */
	if (sqlite3_get_autocommit(db->h))
		return;
	s = stmt(db, ST_ROLLBACK, NULL, 0);
	if (s == NULL || store_db_run(s) != SQLITE_DONE)
		log_error("store", "%s: ROLLBACK failed: %s", db->path, sqlite3_errmsg(db->h));
}

/* ---- open, migrate, close ---- */

static int check_folder(const char *path, char *err, size_t errlen)
{
	struct stat sb;
	char *copy = strdup(path);
	const char *dir;
	int rc = FG_OK;

	if (copy == NULL) {
		store_db_set_err(err, errlen, "out of memory");
		return FG_NOMEM;
	}
	dir = dirname(copy);
	if (stat(dir, &sb) != 0 || !S_ISDIR(sb.st_mode)) {
		store_db_set_err(
			err, errlen,
			"the folder %s of the store %s does not exist; create it (fedgate init "
			"does) or point the store path elsewhere",
			dir, path);
		rc = FG_ERR;
	}
	free(copy);
	return rc;
}

/* SQLite creates files with 0644 less the umask, and its -wal and -shm files
 * copy the mode of the database; the database holds the dialback secret and
 * password hashes, so it is made 0600 before SQLite first sees it. */
static int create_private(const char *path, char *err, size_t errlen)
{
	int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);

	if (fd < 0) {
		store_db_set_err(err, errlen, "cannot open the store %s: %s", path,
				 strerror(errno));
		return FG_ERR;
	}
	close(fd);
	return FG_OK;
}

static int migrate_one(struct store_db *db, int n, char *err, size_t errlen)
{
	char what[64];
	char sql[64];
	long long v = 0;
	int rc;

	rc = exec_simple(db, "BEGIN IMMEDIATE", err, errlen, "start the schema upgrade");
	if (rc != FG_OK)
		return rc;
	/* Another process may have migrated between our check and our lock. */
	rc = pragma_int(db, "PRAGMA user_version", &v, err, errlen);
	if (rc == FG_OK && v < n) {
		snprintf(what, sizeof(what), "upgrade its schema to version %d", n);
		rc = exec_simple(db, migrations[n - 1], err, errlen, what);
		/* A pragma takes no parameters; n is our own counter, no value. */
		snprintf(sql, sizeof(sql), "PRAGMA user_version = %d", n);
		if (rc == FG_OK)
			rc = exec_simple(db, sql, err, errlen, what);
	}
	if (rc == FG_OK)
		rc = exec_simple(db, "COMMIT", err, errlen, "finish the schema upgrade");
	if (rc != FG_OK)
		rollback(db);
	return rc;
}

/* The pragma answers with the mode in effect, which stays the old one where
 * WAL cannot work (some network file systems). */
static int use_wal(struct store_db *db, char *err, size_t errlen)
{
	sqlite3_stmt *s = NULL;
	const char *mode = NULL;
	int src, rc = FG_OK;

	src = sqlite3_prepare_v2(db->h, "PRAGMA journal_mode = WAL", -1, &s, NULL);
	if (src == SQLITE_OK)
		src = sqlite3_step(s);
	if (src == SQLITE_ROW)
		mode = (const char *)sqlite3_column_text(s, 0);
	if (src != SQLITE_ROW) {
		rc = fail(db, src, err, errlen, "switch to write-ahead logging");
	} else if (mode == NULL || strcmp(mode, "wal") != 0) {
		store_db_set_err(
			err, errlen,
			"the store %s cannot use write-ahead logging (journal mode stays %s); put "
			"it on a local file system",
			db->path, mode != NULL ? mode : "unknown");
		rc = FG_ERR;
	}
	sqlite3_finalize(s);
	return rc;
}

static int check_version(struct store_db *db, long long v, char *err, size_t errlen)
{
	if (v > SCHEMA_LATEST) {
		store_db_set_err(
			err, errlen,
			"the store %s was written by a newer fedgate (schema %lld, this one knows "
			"%d); run that version or restore a backup",
			db->path, v, SCHEMA_LATEST);
		return FG_ERR;
	}
	if (v < 0) {
		store_db_set_err(err, errlen, "the store %s has an invalid schema version %lld",
				 db->path, v);
		return FG_ERR;
	}
	return FG_OK;
}

int store_db_open(const char *path, struct store_db **out, char *err, size_t errlen)
{
	struct store_db *db = NULL;
	long long v = 0;
	int src, rc;

	*out = NULL;
	if (path == NULL || path[0] == '\0') {
		store_db_set_err(err, errlen, "no path given for the store");
		return FG_INVAL;
	}
	rc = check_folder(path, err, errlen);
	if (rc != FG_OK)
		return rc;
	rc = create_private(path, err, errlen);
	if (rc != FG_OK)
		return rc;
	db = calloc(1, sizeof(*db));
	if (db == NULL || (db->path = strdup(path)) == NULL) {
		store_db_set_err(err, errlen, "out of memory");
		rc = FG_NOMEM;
		goto out;
	}
	src = sqlite3_open_v2(path, &db->h,
			      SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX,
			      NULL);
	if (src != SQLITE_OK) {
		store_db_set_err(err, errlen, "cannot open the store %s: %s", path,
				 db->h != NULL ? sqlite3_errmsg(db->h) : sqlite3_errstr(src));
		rc = rc_from_sqlite(src) == FG_NOMEM ? FG_NOMEM : FG_ERR;
		goto out;
	}
	sqlite3_extended_result_codes(db->h, 1);
	sqlite3_busy_timeout(db->h, 5000);

	/* Read the version before writing anything (WAL mode is written to
	 * the file): a newer program's database is left exactly as it is. */
	rc = pragma_int(db, "PRAGMA user_version", &v, err, errlen);
	if (rc == FG_OK)
		rc = check_version(db, v, err, errlen);
	if (rc != FG_OK)
		goto out;

	rc = use_wal(db, err, errlen);
	if (rc != FG_OK)
		goto out;
	rc = exec_simple(db, "PRAGMA synchronous = FULL", err, errlen, "be configured");
	if (rc == FG_OK)
		rc = exec_simple(db, "PRAGMA foreign_keys = ON", err, errlen, "be configured");
	if (rc != FG_OK)
		goto out;

	for (int n = (int)v + 1; n <= SCHEMA_LATEST; n++) {
		rc = migrate_one(db, n, err, errlen);
		if (rc != FG_OK)
			goto out;
		log_info("store", "%s: schema upgraded to version %d", path, n);
	}
	/* A newer fedgate may have upgraded it while we waited for the lock. */
	rc = pragma_int(db, "PRAGMA user_version", &v, err, errlen);
	if (rc == FG_OK)
		rc = check_version(db, v, err, errlen);
	if (rc != FG_OK)
		goto out;
	db->version = (int)v;
	*out = db;
	db = NULL;
out:
	store_db_close(&db);
	return rc;
}

void store_db_close(struct store_db **pdb)
{
	struct store_db *db = *pdb;

	if (db == NULL)
		return;
	for (size_t i = 0; i < ST_COUNT; i++)
		sqlite3_finalize(db->st[i]);
	for (size_t i = 0; i < db->next; i++)
		sqlite3_finalize(db->ext[i].st);
	/* Every statement is finalized, so close cannot be refused as busy. */
	if (sqlite3_close(db->h) != SQLITE_OK)
		log_error("store", "%s: close failed: %s", db->path, sqlite3_errmsg(db->h));
	free(db->path);
	free(db);
	*pdb = NULL;
}

int store_db_schema_version(struct store_db *db)
{
	return db->version;
}

int store_db_schema_latest(void)
{
	return SCHEMA_LATEST;
}

/* ---- load ---- */

const char *store_db_col_text(sqlite3_stmt *s, int i)
{
	return (const char *)sqlite3_column_text(s, i);
}

static int pins_from_text(struct partner *p, const char *text)
{
	char pin[64];

	while (*text != '\0') {
		size_t n = strcspn(text, " ");
		/* A word too long to be a pin stays one that pins_valid()
		 * refuses, rather than a cut that might parse. */
		if (n >= sizeof(pin))
			snprintf(pin, sizeof(pin), "%s", "(too long)");
		else
			snprintf(pin, sizeof(pin), "%.*s", (int)n, text);
		if (n > 0 && partner_add_pin(p, pin) != FG_OK)
			return FG_NOMEM;
		text += n;
		text += strspn(text, " ");
	}
	return FG_OK;
}

static bool pins_valid(const struct partner *p)
{
	char norm[PIN_B64_LEN + 1];

	for (size_t i = 0; i < p->pins.n; i++)
		if (pin_normalize(p->pins.v[i], norm) != FG_OK || strcmp(norm, p->pins.v[i]) != 0)
			return false;
	return true;
}

static char *pins_to_text(const struct partner *p)
{
	char *t = malloc(p->pins.n * (PIN_B64_LEN + 1) + 1);
	size_t o = 0;

	if (t == NULL)
		return NULL;
	for (size_t i = 0; i < p->pins.n; i++)
		o += (size_t)sprintf(t + o, "%s%s", i ? " " : "", p->pins.v[i]);
	t[o] = '\0';
	return t;
}

/* Builds one partner from the first row of its group. */
static int partner_from_row(struct store_db *db, sqlite3_stmt *s, struct partner **out, char *err,
			    size_t errlen)
{
	const char *domain = store_db_col_text(s, 0), *desc = store_db_col_text(s, 1);
	const char *type = store_db_col_text(s, 2), *tls = store_db_col_text(s, 3),
		   *sasl = store_db_col_text(s, 4);
	const char *proxy = store_db_col_text(s, 8);
	long long dialback = sqlite3_column_int64(s, 5), keepalive = sqlite3_column_int64(s, 6);
	long long limit = sqlite3_column_int64(s, 7);
	long long enabled = sqlite3_column_int64(s, 10), bidi = sqlite3_column_int64(s, 11);
	const char *dane = store_db_col_text(s, 12), *pins = store_db_col_text(s, 13);
	struct partner *p;

	*out = NULL;
	/* NOT NULL columns read as NULL only when the copy ran out of memory. */
	if (domain == NULL || desc == NULL || type == NULL || tls == NULL || sasl == NULL ||
	    dane == NULL || pins == NULL ||
	    (proxy == NULL && sqlite3_column_type(s, 8) != SQLITE_NULL)) {
		store_db_set_err(err, errlen, "out of memory reading the store %s", db->path);
		return FG_NOMEM;
	}
	p = partner_new(domain);
	if (p == NULL) {
		store_db_set_err(err, errlen, "out of memory reading the store %s", db->path);
		return FG_NOMEM;
	}
	free(p->description);
	p->description = strdup(desc);
	p->proxy_fqdn = proxy != NULL ? strdup(proxy) : NULL;
	if (p->description == NULL || (proxy != NULL && p->proxy_fqdn == NULL)) {
		partner_free(&p);
		store_db_set_err(err, errlen, "out of memory reading the store %s", db->path);
		return FG_NOMEM;
	}
	p->dialback = dialback != 0;
	p->keepalive = keepalive != 0;
	p->connection_limit = (unsigned)limit;
	p->enabled = enabled != 0;
	p->bidi = bidi != 0;
	if (pins_from_text(p, pins) != FG_OK) {
		partner_free(&p);
		store_db_set_err(err, errlen, "out of memory reading the store %s", db->path);
		return FG_NOMEM;
	}

	const char *bad = NULL, *badval = NULL;
	long long badnum = 0;

	if (policy_parse_partner_type(type, &p->type) != FG_OK) {
		bad = "partner_type";
		badval = type;
	} else if (policy_parse_negotiation(tls, &p->tls) != FG_OK) {
		bad = "tls";
		badval = tls;
	} else if (policy_parse_negotiation(sasl, &p->sasl) != FG_OK) {
		bad = "sasl";
		badval = sasl;
	} else if (dialback != 0 && dialback != 1) {
		bad = "dialback";
		badnum = dialback;
	} else if (keepalive != 0 && keepalive != 1) {
		bad = "keepalive";
		badnum = keepalive;
	} else if (enabled != 0 && enabled != 1) {
		bad = "enabled";
		badnum = enabled;
	} else if (bidi != 0 && bidi != 1) {
		bad = "bidi";
		badnum = bidi;
	} else if (policy_parse_dane(dane, &p->dane) != FG_OK) {
		bad = "dane";
		badval = dane;
	} else if (!pins_valid(p)) {
		bad = "pins";
		badval = pins;
	} else if (limit < 0 || limit > UINT_MAX) {
		bad = "connection_limit";
		badnum = limit;
	}
	if (bad != NULL) {
		char num[24];

		if (badval == NULL) {
			snprintf(num, sizeof(num), "%lld", badnum);
			badval = num;
		}
		store_db_set_err(
			err, errlen,
			"the store %s holds partner %s with %s = \"%s\", which this fedgate "
			"cannot read; correct that row or restore a backup",
			db->path, domain, bad, badval);
		partner_free(&p);
		return FG_INVAL;
	}
	*out = p;
	return FG_OK;
}

/* policy_put() owns the partner from the call on, also when it fails. */
static int put_loaded(struct store_db *db, struct policy *pol, struct partner **p, char *err,
		      size_t errlen)
{
	char name[256];
	int rc;

	snprintf(name, sizeof(name), "%s", (*p)->domain);
	rc = policy_put(pol, *p);
	*p = NULL;
	if (rc == FG_NOMEM)
		store_db_set_err(err, errlen, "out of memory reading the store %s", db->path);
	else if (rc != FG_OK)
		store_db_set_err(
			err, errlen,
			"the store %s holds partner %s with a domain of another partner; correct "
			"those rows or restore a backup",
			db->path, name);
	return rc == FG_NOMEM ? rc : rc != FG_OK ? FG_INVAL : FG_OK;
}

static int load_partners(struct store_db *db, struct policy **out, char *err, size_t errlen)
{
	sqlite3_stmt *s = stmt(db, ST_LOAD_PARTNERS, err, errlen);
	struct policy *pol = NULL;
	struct partner *cur = NULL;
	int src, rc = FG_OK;

	*out = NULL;
	if (s == NULL)
		return FG_ERR;
	pol = policy_new();
	if (pol == NULL) {
		store_db_set_err(err, errlen, "out of memory reading the store %s", db->path);
		return FG_NOMEM;
	}
	while ((src = sqlite3_step(s)) == SQLITE_ROW) {
		const char *domain = store_db_col_text(s, 0), *extra = store_db_col_text(s, 9);

		if (domain == NULL) {
			store_db_set_err(err, errlen, "out of memory reading the store %s",
					 db->path);
			rc = FG_NOMEM;
			break;
		}
		if (cur == NULL || strcmp(cur->domain, domain) != 0) {
			if (cur != NULL) {
				rc = put_loaded(db, pol, &cur, err, errlen);
				if (rc != FG_OK)
					break;
			}
			rc = partner_from_row(db, s, &cur, err, errlen);
			if (rc != FG_OK)
				break;
		}
		if (extra != NULL) {
			rc = partner_add_domain(cur, extra);
			if (rc != FG_OK) {
				store_db_set_err(err, errlen, "out of memory reading the store %s",
						 db->path);
				break;
			}
		} else if (sqlite3_column_type(s, 9) != SQLITE_NULL) {
			store_db_set_err(err, errlen, "out of memory reading the store %s",
					 db->path);
			rc = FG_NOMEM;
			break;
		}
	}
	if (rc == FG_OK && src != SQLITE_DONE)
		rc = fail(db, src, err, errlen, "read its partners");
	if (rc == FG_OK && cur != NULL)
		rc = put_loaded(db, pol, &cur, err, errlen);
	sqlite3_reset(s);
	partner_free(&cur);
	if (rc != FG_OK) {
		policy_free(&pol);
		return rc;
	}
	*out = pol;
	return FG_OK;
}

static bool parse_unsigned(const char *s, unsigned *out)
{
	unsigned long long v = 0;

	if (*s == '\0')
		return false;
	for (; *s != '\0'; s++) {
		if (*s < '0' || *s > '9')
			return false;
		v = v * 10 + (unsigned)(*s - '0');
		if (v > UINT_MAX)
			return false;
	}
	*out = (unsigned)v;
	return true;
}

static int load_gateway(struct store_db *db, struct gateway_settings *gw, char *err, size_t errlen)
{
	sqlite3_stmt *s = stmt(db, ST_LOAD_GATEWAY, err, errlen);
	int src, rc = FG_OK;

	if (s == NULL)
		return FG_ERR;
	while ((src = sqlite3_step(s)) == SQLITE_ROW) {
		const char *key = store_db_col_text(s, 0), *val = store_db_col_text(s, 1);
		const struct gw_key *k = NULL;

		if (key == NULL || val == NULL) {
			store_db_set_err(err, errlen, "out of memory reading the store %s",
					 db->path);
			rc = FG_NOMEM;
			break;
		}
		for (size_t i = 0; i < FG_ARRAY_LEN(gw_keys); i++) {
			if (strcmp(gw_keys[i].name, key) == 0)
				k = &gw_keys[i];
		}
		if (k == NULL) {
			/* Not ours to judge: a later fedgate may have written it.
			 * The value is not printed, it could be a secret. */
			log_warn("store", "%s: unknown gateway setting %s ignored", db->path, key);
			continue;
		}
		void *field = (char *)gw + k->off;
		bool ok = true;

		switch (k->type) {
		case GW_UNSIGNED: ok = parse_unsigned(val, field); break;
		case GW_BOOL: ok = policy_parse_bool(val, field) == FG_OK; break;
		case GW_SECRET: {
			char *copy = strdup(val);

			if (copy == NULL) {
				store_db_set_err(err, errlen, "out of memory reading the store %s",
						 db->path);
				rc = FG_NOMEM;
				break;
			}
			free(*(char **)field);
			*(char **)field = copy;
			break;
		}
		}
		if (rc != FG_OK)
			break;
		if (!ok) {
			store_db_set_err(
				err, errlen,
				"the store %s holds gateway setting %s = \"%s\", which this "
				"fedgate cannot read; correct that row or restore a backup",
				db->path, key, val);
			rc = FG_INVAL;
			break;
		}
	}
	if (rc == FG_OK && src != SQLITE_DONE)
		rc = fail(db, src, err, errlen, "read its gateway settings");
	sqlite3_reset(s);
	return rc;
}

int store_db_load(struct store_db *db, struct policy **partners, struct gateway_settings *gw,
		  char *err, size_t errlen)
{
	int rc;

	/* Defined contents from here on, so every exit may clear them. */
	if (partners != NULL)
		*partners = NULL;
	if (gw != NULL)
		gateway_defaults(gw);
	/* One read transaction: partners and settings from the same commit. */
	rc = run_cached(db, ST_BEGIN_READ, err, errlen, "start reading");
	if (rc != FG_OK)
		return rc;
	if (partners != NULL)
		rc = load_partners(db, partners, err, errlen);
	if (rc == FG_OK && gw != NULL)
		rc = load_gateway(db, gw, err, errlen);
	if (rc == FG_OK)
		rc = run_cached(db, ST_COMMIT, err, errlen, "finish reading");
	if (rc != FG_OK) {
		rollback(db);
		if (partners != NULL)
			policy_free(partners);
		if (gw != NULL) {
			gateway_clear(gw);
			gateway_defaults(gw);
		}
	}
	return rc;
}

/* ---- commit ---- */

/* "partner X" for the partner that holds `domain` as an additional domain
 * (with *self set when X is `self`), to name it in a message. */
static void domain_owner(struct store_db *db, const char *domain, const char *self, bool *is_self,
			 char *buf, size_t len)
{
	sqlite3_stmt *o = stmt(db, ST_DOMAIN_OWNER, NULL, 0);
	const char *owner;

	snprintf(buf, len, "another partner");
	*is_self = false;
	if (o == NULL)
		return;
	if (store_db_bind_text(o, 1, domain) == SQLITE_OK && sqlite3_step(o) == SQLITE_ROW &&
	    (owner = store_db_col_text(o, 0)) != NULL) {
		snprintf(buf, len, "partner %s", owner);
		*is_self = self != NULL && strcmp(owner, self) == 0;
	}
	sqlite3_reset(o);
	sqlite3_clear_bindings(o);
}

static int insert_partner(struct store_db *db, const struct partner *p, char *err, size_t errlen)
{
	sqlite3_stmt *s = stmt(db, ST_PARTNER_INSERT, err, errlen);
	sqlite3_stmt *d = stmt(db, ST_DOMAIN_INSERT, err, errlen);
	char what[600];
	int src;

	if (s == NULL || d == NULL)
		return FG_ERR;
	if (p == NULL || p->domain == NULL || p->description == NULL) {
		store_db_set_err(err, errlen, "a partner to save has no domain or no description");
		return FG_INVAL;
	}
	src = store_db_bind_text(s, 1, p->domain);
	if (src == SQLITE_OK)
		src = store_db_bind_text(s, 2, p->description);
	if (src == SQLITE_OK)
		src = store_db_bind_text(s, 3, policy_partner_type_name(p->type));
	if (src == SQLITE_OK)
		src = store_db_bind_text(s, 4, policy_negotiation_name(p->tls));
	if (src == SQLITE_OK)
		src = store_db_bind_text(s, 5, policy_negotiation_name(p->sasl));
	if (src == SQLITE_OK)
		src = sqlite3_bind_int(s, 6, p->dialback);
	if (src == SQLITE_OK)
		src = sqlite3_bind_int(s, 7, p->keepalive);
	if (src == SQLITE_OK)
		src = sqlite3_bind_int64(s, 8, p->connection_limit);
	if (src == SQLITE_OK)
		src = store_db_bind_text(s, 9, p->proxy_fqdn);
	if (src == SQLITE_OK)
		src = sqlite3_bind_int(s, 10, p->enabled);
	if (src == SQLITE_OK)
		src = sqlite3_bind_int(s, 11, p->bidi);
	if (src == SQLITE_OK)
		src = store_db_bind_text(s, 12, policy_dane_name(p->dane));
	if (src == SQLITE_OK) {
		char *pins = pins_to_text(p);
		src = pins != NULL ? sqlite3_bind_text(s, 13, pins, -1, free) : SQLITE_NOMEM;
	}
	if (src == SQLITE_OK)
		src = sqlite3_step(s);
	sqlite3_reset(s);
	sqlite3_clear_bindings(s);
	if (src == SQLITE_CONSTRAINT_PRIMARYKEY) {
		store_db_set_err(err, errlen,
				 "partner %s already exists (saved by another change meanwhile, or "
				 "listed twice in this one); nothing was saved",
				 p->domain);
		return FG_INVAL;
	}
	if (src == SQLITE_CONSTRAINT_TRIGGER) {
		char owner[300];
		bool self;

		domain_owner(db, p->domain, NULL, &self, owner, sizeof(owner));
		store_db_set_err(
			err, errlen,
			"the domain %s is already an additional domain of %s (a domain may belong "
			"to one partner only); nothing was saved",
			p->domain, owner);
		return FG_INVAL;
	}
	if (src != SQLITE_DONE) {
		snprintf(what, sizeof(what), "save partner %.253s", p->domain);
		return fail(db, src, err, errlen, what);
	}

	for (size_t i = 0; i < p->additional_domains.n; i++) {
		const char *x = p->additional_domains.v[i];

		src = store_db_bind_text(d, 1, x);
		if (src == SQLITE_OK)
			src = store_db_bind_text(d, 2, p->domain);
		if (src == SQLITE_OK)
			src = sqlite3_step(d);
		sqlite3_reset(d);
		sqlite3_clear_bindings(d);
		if (src == SQLITE_DONE)
			continue;
		if (src == SQLITE_CONSTRAINT_TRIGGER && strcmp(x, p->domain) == 0) {
			store_db_set_err(
				err, errlen,
				"partner %s lists its primary domain as an additional domain; "
				"nothing was saved",
				p->domain);
			return FG_INVAL;
		}
		if (src == SQLITE_CONSTRAINT_TRIGGER) {
			store_db_set_err(
				err, errlen,
				"the additional domain %s of partner %s is the primary domain of "
				"partner %s (a domain may belong to one partner only); nothing was "
				"saved",
				x, p->domain, x);
			return FG_INVAL;
		}
		if (src == SQLITE_CONSTRAINT_PRIMARYKEY) {
			char owner[300];
			bool self;

			domain_owner(db, x, p->domain, &self, owner, sizeof(owner));
			if (self)
				store_db_set_err(err, errlen,
						 "partner %s lists the additional domain %s twice; "
						 "nothing was saved",
						 p->domain, x);
			else
				store_db_set_err(
					err, errlen,
					"the additional domain %s of partner %s already belongs to "
					"%s (a domain may belong to one partner only); nothing was "
					"saved",
					x, p->domain, owner);
			return FG_INVAL;
		}
		snprintf(what, sizeof(what), "save the additional domain %.253s of partner %.253s",
			 x, p->domain);
		return fail(db, src, err, errlen, what);
	}
	return FG_OK;
}

static int delete_partner(struct store_db *db, const char *domain, bool must_exist, char *err,
			  size_t errlen)
{
	sqlite3_stmt *s = stmt(db, ST_PARTNER_DELETE, err, errlen);
	char what[320];
	int src = SQLITE_OK;

	if (s == NULL)
		return FG_ERR;
	if (domain == NULL) {
		store_db_set_err(err, errlen, "no partner domain given to delete");
		return FG_INVAL;
	}
	src = store_db_bind_text(s, 1, domain);
	if (src == SQLITE_OK)
		src = store_db_run(s);
	if (src != SQLITE_DONE) {
		snprintf(what, sizeof(what), "delete partner %.253s", domain);
		return fail(db, src, err, errlen, what);
	}
	/* changes() counts the partner row only, not the cascade. */
	if (must_exist && sqlite3_changes(db->h) == 0) {
		store_db_set_err(err, errlen, "there is no partner %s; nothing was saved", domain);
		return FG_NOTFOUND;
	}
	return FG_OK;
}

static int put_gateway(struct store_db *db, const struct gateway_settings *gw, char *err,
		       size_t errlen)
{
	sqlite3_stmt *put = stmt(db, ST_GATEWAY_PUT, err, errlen);
	sqlite3_stmt *del = stmt(db, ST_GATEWAY_DELETE, err, errlen);

	if (put == NULL || del == NULL)
		return FG_ERR;
	if (gw == NULL) {
		store_db_set_err(err, errlen, "no gateway settings given to save");
		return FG_INVAL;
	}
	for (size_t i = 0; i < FG_ARRAY_LEN(gw_keys); i++) {
		const struct gw_key *k = &gw_keys[i];
		const void *field = (const char *)gw + k->off;
		char num[24];
		const char *val = NULL;
		sqlite3_stmt *s = put;
		int src;

		switch (k->type) {
		case GW_UNSIGNED:
			snprintf(num, sizeof(num), "%u", *(const unsigned *)field);
			val = num;
			break;
		case GW_BOOL: val = *(const bool *)field ? "true" : "false"; break;
		case GW_SECRET: val = *(char *const *)field; break;
		}
		/* An unset secret is no row, so it loads back as NULL. */
		if (val == NULL)
			s = del;
		src = store_db_bind_text(s, 1, k->name);
		if (src == SQLITE_OK && val != NULL)
			src = store_db_bind_text(s, 2, val);
		if (src == SQLITE_OK)
			src = store_db_run(s);
		if (src != SQLITE_DONE) {
			char what[96];

			snprintf(what, sizeof(what), "save gateway setting %s", k->name);
			return fail(db, src, err, errlen, what);
		}
	}
	return FG_OK;
}

static int apply_op(struct store_db *db, const struct store_op *op, char *err, size_t errlen)
{
	int rc;

	switch (op->kind) {
	case STORE_PUT_PARTNER:
		if (op->partner == NULL || op->partner->domain == NULL) {
			store_db_set_err(err, errlen, "no partner given to save");
			return FG_INVAL;
		}
		rc = delete_partner(db, op->partner->domain, false, err, errlen);
		if (rc == FG_OK)
			rc = insert_partner(db, op->partner, err, errlen);
		return rc;
	case STORE_NEW_PARTNER:
		/* Another writer (a second CLI, say) may have made it since this
		 * one loaded: refused by the primary key, never overwritten. */
		if (op->partner == NULL || op->partner->domain == NULL) {
			store_db_set_err(err, errlen, "no partner given to save");
			return FG_INVAL;
		}
		return insert_partner(db, op->partner, err, errlen);
	case STORE_DELETE_PARTNER: return delete_partner(db, op->domain, true, err, errlen);
	case STORE_REPLACE_PARTNERS: {
		sqlite3_stmt *s = stmt(db, ST_PARTNER_DELETE_ALL, err, errlen);
		int src;

		if (s == NULL)
			return FG_ERR;
		if (op->npartners > 0 && op->partners == NULL) {
			store_db_set_err(err, errlen, "no partners given to save");
			return FG_INVAL;
		}
		src = store_db_run(s);
		if (src != SQLITE_DONE)
			return fail(db, src, err, errlen, "delete the partners");
		for (size_t i = 0; i < op->npartners; i++) {
			rc = insert_partner(db, op->partners[i], err, errlen);
			if (rc != FG_OK)
				return rc;
		}
		return FG_OK;
	}
	case STORE_PUT_GATEWAY: return put_gateway(db, op->gw, err, errlen);
	case STORE_CUSTOM:
		if (op->custom == NULL) {
			store_db_set_err(err, errlen, "no change given to save");
			return FG_INVAL;
		}
		return op->custom(db, op->custom_arg, err, errlen);
	}
	store_db_set_err(err, errlen, "unknown store operation %d", (int)op->kind);
	return FG_INVAL;
}

static int insert_audit(struct store_db *db, const struct audit_entry *e, char *err, size_t errlen)
{
	sqlite3_stmt *s = stmt(db, ST_AUDIT_INSERT, err, errlen);
	int src;

	if (s == NULL)
		return FG_ERR;
	if (e->who == NULL || e->iface == NULL || e->action == NULL || e->target == NULL) {
		store_db_set_err(err, errlen,
				 "an audit record lacks who, interface, action or target");
		return FG_INVAL;
	}
	src = sqlite3_bind_int64(s, 1, e->at_ms != 0 ? e->at_ms : fg_now_ms());
	if (src == SQLITE_OK)
		src = store_db_bind_text(s, 2, e->who);
	if (src == SQLITE_OK)
		src = store_db_bind_text(s, 3, e->iface);
	if (src == SQLITE_OK)
		src = store_db_bind_text(s, 4, e->action);
	if (src == SQLITE_OK)
		src = store_db_bind_text(s, 5, e->target);
	if (src == SQLITE_OK)
		src = store_db_bind_text(s, 6, e->before);
	if (src == SQLITE_OK)
		src = store_db_bind_text(s, 7, e->after);
	if (src == SQLITE_OK)
		src = store_db_run(s);
	if (src != SQLITE_DONE)
		return fail(db, src, err, errlen, "write the audit log");
	return FG_OK;
}

int store_db_commit(struct store_db *db, const struct store_op *ops, size_t nops,
		    const struct audit_entry *audit, size_t naudit, char *err, size_t errlen)
{
	int rc;

	if ((nops > 0 && ops == NULL) || (naudit > 0 && audit == NULL)) {
		store_db_set_err(err, errlen, "nothing given to save");
		return FG_INVAL;
	}
	/* IMMEDIATE takes the write lock now (waiting up to busy_timeout for
	 * another writer), so no statement inside can fail as busy. */
	rc = run_cached(db, ST_BEGIN, err, errlen, "start a transaction");
	if (rc != FG_OK)
		return rc;
	for (size_t i = 0; i < nops && rc == FG_OK; i++)
		rc = apply_op(db, &ops[i], err, errlen);
	for (size_t i = 0; i < naudit && rc == FG_OK; i++)
		rc = insert_audit(db, &audit[i], err, errlen);
	if (rc == FG_OK)
		rc = run_cached(db, ST_COMMIT, err, errlen, "commit the change");
	if (rc != FG_OK)
		rollback(db);
	return rc;
}

/* ---- for store_users.c ---- */

sqlite3 *store_db_handle(struct store_db *db)
{
	return db->h;
}

const char *store_db_path(const struct store_db *db)
{
	return db->path;
}

sqlite3_stmt *store_db_stmt(struct store_db *db, const char *sql, char *err, size_t errlen)
{
	sqlite3_stmt *s = NULL;
	int src;

	for (size_t i = 0; i < db->next; i++)
		if (db->ext[i].sql == sql)
			return db->ext[i].st;
	if (db->next == EXT_STMT_MAX) {
		store_db_set_err(err, errlen,
				 "the store %s has no room for another statement (raise "
				 "EXT_STMT_MAX in store_sqlite.c)",
				 db->path);
		return NULL;
	}
	src = sqlite3_prepare_v3(db->h, sql, -1, SQLITE_PREPARE_PERSISTENT, &s, NULL);
	if (src != SQLITE_OK) {
		store_db_set_err(err, errlen, "the store %s cannot prepare a statement: %s",
				 db->path, sqlite3_errmsg(db->h));
		return NULL;
	}
	db->ext[db->next].sql = sql;
	db->ext[db->next].st = s;
	db->next++;
	return s;
}

int store_db_fail(struct store_db *db, int src, char *err, size_t errlen, const char *what)
{
	return fail(db, src, err, errlen, what);
}

int store_db_begin(struct store_db *db, char *err, size_t errlen)
{
	return run_cached(db, ST_BEGIN, err, errlen, "start a transaction");
}

int store_db_end(struct store_db *db, int rc, char *err, size_t errlen)
{
	if (rc == FG_OK)
		rc = run_cached(db, ST_COMMIT, err, errlen, "commit the change");
	if (rc != FG_OK)
		rollback(db);
	return rc;
}

/* ---- audit ---- */

int store_db_audit(struct store_db *db, long long since_ms, store_audit_cb cb, void *ud, char *err,
		   size_t errlen)
{
	sqlite3_stmt *s = stmt(db, ST_AUDIT_SELECT, err, errlen);
	int src, rc = FG_OK;

	if (s == NULL)
		return FG_ERR;
	src = sqlite3_bind_int64(s, 1, since_ms);
	if (src != SQLITE_OK)
		return fail(db, src, err, errlen, "read the audit log");
	while ((src = sqlite3_step(s)) == SQLITE_ROW) {
		struct audit_entry e = {
			.at_ms = sqlite3_column_int64(s, 1),
			.who = store_db_col_text(s, 2),
			.iface = store_db_col_text(s, 3),
			.action = store_db_col_text(s, 4),
			.target = store_db_col_text(s, 5),
			.before = store_db_col_text(s, 6),
			.after = store_db_col_text(s, 7),
		};

		if (e.who == NULL || e.iface == NULL || e.action == NULL || e.target == NULL) {
			store_db_set_err(err, errlen, "out of memory reading the audit log of %s",
					 db->path);
			rc = FG_NOMEM;
			break;
		}
		if (cb(ud, sqlite3_column_int64(s, 0), &e) != 0)
			break;
	}
	if (rc == FG_OK && src != SQLITE_ROW && src != SQLITE_DONE)
		rc = fail(db, src, err, errlen, "read the audit log");
	sqlite3_reset(s);
	sqlite3_clear_bindings(s);
	return rc;
}

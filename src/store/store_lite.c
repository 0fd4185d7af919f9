/* The SQLite side of opening the store: the file (created 0600), WAL,
 * synchronous FULL, foreign keys, and the numbered migrations.
 *
 * The schema grows only by numbered migrations (PRAGMA user_version is the
 * number of the last one applied), each in a transaction of its own, so a
 * crash during an upgrade leaves a database at some whole version. The same
 * numbers hold on PostgreSQL (store_pg.c keeps its list beside). */
#include "store_sqlite.h"

#include "store_db_int.h"

#include "fg.h"
#include "log.h"

#include <sqlite3.h>

#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
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

static int fail(struct store_db *db, int src, char *err, size_t errlen, const char *what)
{
	return store_db_fail(db, store_src_from_sqlite(src), err, errlen, what);
}

static void rollback(struct store_db *db)
{
	if (!sqlite3_get_autocommit(db->h))
		sqlite3_exec(db->h, "ROLLBACK", NULL, NULL, NULL);
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

int store_lite_open(struct store_db *db, const char *path, char *err, size_t errlen)
{
	long long v = 0;
	int src, rc;

	rc = check_folder(path, err, errlen);
	if (rc != FG_OK)
		return rc;
	rc = create_private(path, err, errlen);
	if (rc != FG_OK)
		return rc;
	src = sqlite3_open_v2(path, &db->h,
			      SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX,
			      NULL);
	if (src != SQLITE_OK) {
		store_db_set_err(err, errlen, "cannot open the store %s: %s", path,
				 db->h != NULL ? sqlite3_errmsg(db->h) : sqlite3_errstr(src));
		return (src & 0xff) == SQLITE_NOMEM ? FG_NOMEM : FG_ERR;
	}
	sqlite3_extended_result_codes(db->h, 1);
	sqlite3_busy_timeout(db->h, 5000);

	/* Read the version before writing anything (WAL mode is written to
	 * the file): a newer program's database is left exactly as it is. */
	rc = pragma_int(db, "PRAGMA user_version", &v, err, errlen);
	if (rc == FG_OK)
		rc = check_version(db, v, err, errlen);
	if (rc != FG_OK)
		return rc;

	rc = use_wal(db, err, errlen);
	if (rc != FG_OK)
		return rc;
	rc = exec_simple(db, "PRAGMA synchronous = FULL", err, errlen, "be configured");
	if (rc == FG_OK)
		rc = exec_simple(db, "PRAGMA foreign_keys = ON", err, errlen, "be configured");
	if (rc != FG_OK)
		return rc;

	for (int n = (int)v + 1; n <= SCHEMA_LATEST; n++) {
		rc = migrate_one(db, n, err, errlen);
		if (rc != FG_OK)
			return rc;
		log_info("store", "%s: schema upgraded to version %d", path, n);
	}
	/* A newer fedgate may have upgraded it while we waited for the lock. */
	rc = pragma_int(db, "PRAGMA user_version", &v, err, errlen);
	if (rc == FG_OK)
		rc = check_version(db, v, err, errlen);
	if (rc != FG_OK)
		return rc;
	db->version = (int)v;
	return FG_OK;
}

void store_lite_close(struct store_db *db)
{
	/* Every statement is finalized, so close cannot be refused as busy. */
	if (db->h != NULL && sqlite3_close(db->h) != SQLITE_OK)
		log_error("store", "%s: close failed: %s", db->path, sqlite3_errmsg(db->h));
	db->h = NULL;
}

int store_db_schema_latest(void)
{
	return SCHEMA_LATEST;
}

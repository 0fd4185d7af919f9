/* Unit tests for src/store/store_admins.c and the token checks of
 * src/cmd/admin.c: the upgrade of a schema 4 store (its one token becomes
 * the one labelled "default" and still signs in), several tokens per
 * account each withdrawn alone, the list, the last-use note written at
 * most once a minute, and role changes. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "admin.h"
#include "fg.h"
#include "store_admins.h"
#include "store_sqlite.h"
#include "store_testdir.h"

#include <openssl/evp.h>
#include <sqlite3.h>
#include <stdio.h>

/* Tokens as admin.c makes them, and the SHA-256 (hex) the store keeps. */
#define TOKEN_A "fgt_aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
#define TOKEN_B "fgt_bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb"
#define TOKEN_C "fgt_cccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccc"

static void sha256_hex(const char *s, char out[65])
{
	unsigned char md[32];
	unsigned int n = 0;

	assert_int_equal(EVP_Digest(s, strlen(s), md, &n, EVP_sha256(), NULL), 1);
	for (unsigned i = 0; i < 32; i++)
		snprintf(out + 2 * i, 3, "%02x", md[i]);
}

static void ok(int rc, const char *err)
{
	if (rc != FG_OK)
		fail_msg("rc %d: %s", rc, err);
}

static void add_admin(struct store_db *db, const char *name, enum admin_role role)
{
	char err[300] = "";

	ok(store_db_admin_insert(db, name, role, "$argon2id$not-a-real-hash", err, sizeof(err)),
	   err);
}

static void put_token(struct store_db *db, const char *name, const char *label, const char *tok)
{
	char err[300] = "", h[65];

	sha256_hex(tok, h);
	ok(store_db_admin_token_put(db, name, label, h, err, sizeof(err)), err);
}

/* Who the token signs in, "" when nobody. */
static const char *who(struct store_db *db, const char *tok)
{
	static char name[ADMIN_NAME_MAX + 1];
	char err[300] = "";
	enum admin_role role = ADMIN_NONE;
	int rc = admin_db_by_token(db, tok, name, sizeof(name), &role, err, sizeof(err));

	if (rc == FG_NOTFOUND)
		return "";
	ok(rc, err);
	return name;
}

static long long count(struct store_db *db, const char *name, const char *label)
{
	char err[300] = "";
	long long n = -1;

	ok(store_db_admin_token_count(db, name, label, &n, err, sizeof(err)), err);
	return n;
}

static int collect(void *ud, const struct admin_token_row *r)
{
	char *out = ud;
	size_t n = strlen(out);

	snprintf(out + n, 400 - n, "%s/%s%s ", r->name, r->label, r->last_used_ms ? "*" : "");
	return FG_OK;
}

/* The labels as "name/label[*] ..." (* once used). */
static const char *labels(struct store_db *db, const char *name)
{
	static char out[400];
	char err[300] = "";

	out[0] = '\0';
	ok(store_db_admin_tokens(db, name, collect, out, err, sizeof(err)), err);
	return out;
}

static void test_migration_from_v4(void **state)
{
	struct tdir *t = *state;
	char old_hash[65];
	char sql[800];

	/* SQLite's upgrade path: a PostgreSQL store was never at an older
	 * schema (store_pg.c creates the latest at once). */
	if (test_pg())
		skip();

	/* A store of today, taken back to schema 4: the token table as
	 * migration 3 made it (one token per account, no label), and the
	 * partners without what migration 6 added. */
	struct store_db *db = open_ok(t);
	add_admin(db, "alice", ADMIN_ADMINISTRATOR);
	add_admin(db, "bob", ADMIN_VIEWER);
	store_db_close(&db);
	sha256_hex(TOKEN_A, old_hash);
	snprintf(sql, sizeof(sql),
		 "DROP TABLE admin_tokens;"
		 "CREATE TABLE admin_tokens ("
		 " admin TEXT PRIMARY KEY REFERENCES admins(name) ON DELETE CASCADE,"
		 " token_sha256 TEXT NOT NULL UNIQUE,"
		 " created_ms INTEGER NOT NULL);"
		 "INSERT INTO admin_tokens VALUES ('alice', '%s', 1234);"
		 "ALTER TABLE partners DROP COLUMN bidi;"
		 "ALTER TABLE partners DROP COLUMN dane;"
		 "ALTER TABLE partners DROP COLUMN pins;"
		 "DROP TABLE IF EXISTS archive;"
		 "DROP TABLE IF EXISTS archive_prefs;"
		 "DROP TABLE IF EXISTS blocklist;"
		 "DROP TABLE IF EXISTS roster_versions;"
		 "DROP TABLE IF EXISTS pep_items;"
		 "DROP TABLE IF EXISTS pep_nodes;"
		 "PRAGMA user_version = 4;",
		 old_hash);
	raw_exec(t->path, sql);
	assert_int_equal(raw_int(t->path, "PRAGMA user_version"), 4);

	db = open_ok(t);
	assert_int_equal(store_db_schema_version(db), store_db_schema_latest());
	assert_int_equal(store_db_schema_latest(), 10);
	/* The old token still signs alice in, and is the one named default. */
	assert_string_equal(who(db, TOKEN_A), "alice");
	assert_int_equal(count(db, "alice", "default"), 1);
	assert_int_equal(count(db, "bob", NULL), 0);
	assert_int_equal(raw_int(t->path, "SELECT created_ms FROM admin_tokens WHERE label = "
					  "'default'"),
			 1234);
	/* A second one beside it: both work. */
	put_token(db, "alice", "prometheus", TOKEN_B);
	assert_string_equal(who(db, TOKEN_A), "alice");
	assert_string_equal(who(db, TOKEN_B), "alice");
	store_db_close(&db);
	/* Removing the account still takes its tokens (the cascade survived
	 * the table's rebuild). */
	raw_exec(t->path, "PRAGMA foreign_keys = ON; DELETE FROM admins WHERE name = 'alice';");
	assert_int_equal(raw_int(t->path, "SELECT count(*) FROM admin_tokens"), 0);
}

static void test_tokens_by_label(void **state)
{
	struct tdir *t = *state;
	char err[300] = "";
	struct store_db *db = open_ok(t);

	add_admin(db, "alice", ADMIN_ADMINISTRATOR);
	add_admin(db, "bob", ADMIN_VIEWER);
	put_token(db, "alice", "default", TOKEN_A);
	put_token(db, "alice", "prometheus", TOKEN_B);
	put_token(db, "bob", "default", TOKEN_C);
	assert_int_equal(count(db, "alice", NULL), 2);
	assert_string_equal(labels(db, NULL), "alice/default alice/prometheus bob/default ");
	assert_string_equal(labels(db, "bob"), "bob/default ");

	/* Withdrawing one leaves the other. */
	ok(store_db_admin_token_delete(db, "alice", "default", err, sizeof(err)), err);
	assert_string_equal(who(db, TOKEN_A), "");
	assert_string_equal(who(db, TOKEN_B), "alice");
	assert_int_equal(store_db_admin_token_delete(db, "alice", "default", err, sizeof(err)),
			 FG_NOTFOUND);

	/* A new token with a label replaces only that label's. */
	put_token(db, "alice", "prometheus", TOKEN_A);
	assert_string_equal(who(db, TOKEN_B), "");
	assert_string_equal(who(db, TOKEN_A), "alice");
	assert_string_equal(who(db, TOKEN_C), "bob");

	/* One token, one account: the same token cannot be saved twice. */
	char h[65];
	sha256_hex(TOKEN_C, h);
	assert_int_not_equal(store_db_admin_token_put(db, "alice", "other", h, err, sizeof(err)),
			     FG_OK);

	/* Without a label: every token of the account, nobody else's. */
	put_token(db, "alice", "ci", TOKEN_B);
	ok(store_db_admin_token_delete(db, "alice", NULL, err, sizeof(err)), err);
	assert_int_equal(count(db, "alice", NULL), 0);
	assert_string_equal(who(db, TOKEN_C), "bob");
	ok(store_db_admin_token_delete(db, "alice", NULL, err, sizeof(err)), err);
	store_db_close(&db);
}

static void test_last_used_once_a_minute(void **state)
{
	struct tdir *t = *state;
	struct store_db *db = open_ok(t);

	add_admin(db, "alice", ADMIN_ADMINISTRATOR);
	put_token(db, "alice", "default", TOKEN_A);
	assert_string_equal(labels(db, "alice"), "alice/default ");
	assert_string_equal(who(db, TOKEN_A), "alice");
	assert_string_equal(labels(db, "alice"), "alice/default* ");
	long long first = raw_int(t->path, "SELECT last_used_ms FROM admin_tokens");
	assert_true(first > 0);
	/* Used again within the minute: no write. Set it back a little to
	 * see that nothing rewrites it. */
	raw_exec(t->path, "UPDATE admin_tokens SET last_used_ms = last_used_ms - 30000");
	assert_string_equal(who(db, TOKEN_A), "alice");
	assert_int_equal(raw_int(t->path, "SELECT last_used_ms FROM admin_tokens"), first - 30000);
	/* Older than a minute: noted again. */
	raw_exec(t->path, "UPDATE admin_tokens SET last_used_ms = last_used_ms - 31000");
	assert_string_equal(who(db, TOKEN_A), "alice");
	assert_true(raw_int(t->path, "SELECT last_used_ms FROM admin_tokens") >= first);
	store_db_close(&db);
}

static void test_set_role(void **state)
{
	struct tdir *t = *state;
	char err[300] = "";
	enum admin_role r = ADMIN_NONE;
	long long n = 0;
	struct store_db *db = open_ok(t);

	add_admin(db, "alice", ADMIN_ADMINISTRATOR);
	add_admin(db, "bob", ADMIN_VIEWER);
	ok(store_db_admin_count_administrators(db, &n, err, sizeof(err)), err);
	assert_int_equal(n, 1);
	ok(store_db_admin_set_role(db, "bob", ADMIN_ADMINISTRATOR, err, sizeof(err)), err);
	ok(admin_db_role(db, "bob", &r, err, sizeof(err)), err);
	assert_int_equal(r, ADMIN_ADMINISTRATOR);
	ok(store_db_admin_count_administrators(db, &n, err, sizeof(err)), err);
	assert_int_equal(n, 2);
	assert_int_equal(store_db_admin_set_role(db, "carol", ADMIN_VIEWER, err, sizeof(err)),
			 FG_NOTFOUND);
	store_db_close(&db);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_migration_from_v4, setup, teardown),
		cmocka_unit_test_setup_teardown(test_tokens_by_label, setup, teardown),
		cmocka_unit_test_setup_teardown(test_last_used_once_a_minute, setup, teardown),
		cmocka_unit_test_setup_teardown(test_set_role, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}

/* Unit tests for src/store_users.c and src/users.c: the upgrade of a
 * version 1 store, accounts through store_db_commit (update keeps the
 * user's rows, delete takes them), rosters, offline messages with their
 * limit, vCards, and the in-memory account set. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "fg.h"
#include "policy.h"
#include "sasl.h"
#include "store_sqlite.h"
#include "store_testdir.h"
#include "store_users.h"
#include "users.h"

#include <dirent.h>
#include <sqlite3.h>
#include <stdio.h>
#include <unistd.h>

#define PASSWORD "correct horse battery"

static void commit_ok(struct store_db *db, const struct store_op *ops, size_t nops)
{
	char err[512] = "";
	struct audit_entry a = {.who = "test", .iface = "cli", .action = "user", .target = "t"};

	if (store_db_commit(db, ops, nops, &a, 1, err, sizeof(err)) != FG_OK)
		fail_msg("store_db_commit: %s", err);
}

static struct account *mk_account(const char *jid, bool access, long long created)
{
	struct account *a = account_new(jid);

	assert_non_null(a);
	assert_int_equal(sasl_creds_from_password(PASSWORD, 4096, &a->creds), FG_OK);
	a->xmpp_access = access;
	a->created_ms = created;
	return a;
}

static void put_user(struct store_db *db, const struct account *a)
{
	struct store_op op = store_op_put_user(a);

	commit_ok(db, &op, 1);
}

static struct accounts *load_users(struct store_db *db)
{
	struct accounts *set = NULL;
	char err[512] = "";

	if (store_db_users_load(db, &set, err, sizeof(err)) != FG_OK)
		fail_msg("store_db_users_load: %s", err);
	assert_non_null(set);
	return set;
}

static void expect_same_account(const struct account *got, const struct account *want)
{
	assert_non_null(got);
	assert_string_equal(got->jid, want->jid);
	assert_int_equal(got->xmpp_access, want->xmpp_access);
	assert_int_equal(got->created_ms, want->created_ms);
	assert_int_equal(got->creds.iterations, want->creds.iterations);
	assert_int_equal(got->creds.salt_len, want->creds.salt_len);
	assert_memory_equal(got->creds.salt, want->creds.salt, want->creds.salt_len);
	assert_memory_equal(got->creds.stored_sha1, want->creds.stored_sha1, 20);
	assert_memory_equal(got->creds.server_sha1, want->creds.server_sha1, 20);
	assert_memory_equal(got->creds.stored_sha256, want->creds.stored_sha256, 32);
	assert_memory_equal(got->creds.server_sha256, want->creds.server_sha256, 32);
}

/* ---- migration ---- */

/* Schema 1 as fedgate 0.1.0 wrote it: migrations never change once
 * released, so this copy stays what a user's old database holds. */
static const char *const schema_v1 =
	"CREATE TABLE partners (domain TEXT PRIMARY KEY, description TEXT NOT NULL,"
	" partner_type TEXT NOT NULL, tls TEXT NOT NULL, sasl TEXT NOT NULL,"
	" dialback INTEGER NOT NULL, keepalive INTEGER NOT NULL,"
	" connection_limit INTEGER NOT NULL, proxy_fqdn TEXT);"
	"CREATE TABLE partner_domains (domain TEXT PRIMARY KEY,"
	" partner TEXT NOT NULL REFERENCES partners(domain) ON DELETE CASCADE);"
	"CREATE INDEX partner_domains_partner ON partner_domains(partner);"
	"CREATE TRIGGER partner_domains_not_primary BEFORE INSERT ON partner_domains"
	" WHEN EXISTS (SELECT 1 FROM partners WHERE domain = NEW.domain)"
	" BEGIN SELECT RAISE(ABORT, 'domain is a primary domain'); END;"
	"CREATE TRIGGER partners_not_additional BEFORE INSERT ON partners"
	" WHEN EXISTS (SELECT 1 FROM partner_domains WHERE domain = NEW.domain)"
	" BEGIN SELECT RAISE(ABORT, 'domain is an additional domain'); END;"
	"CREATE TABLE gateway (key TEXT PRIMARY KEY, value TEXT NOT NULL);"
	"CREATE TABLE admins (name TEXT PRIMARY KEY,"
	" role TEXT NOT NULL CHECK(role IN ('administrator','viewer')),"
	" password_hash TEXT NOT NULL, created_ms INTEGER NOT NULL);"
	"CREATE TABLE audit (id INTEGER PRIMARY KEY AUTOINCREMENT, at_ms INTEGER NOT NULL,"
	" who TEXT NOT NULL, iface TEXT NOT NULL, action TEXT NOT NULL, target TEXT NOT NULL,"
	" before TEXT, after TEXT);"
	"CREATE INDEX audit_at_ms ON audit(at_ms);"
	"INSERT INTO partners VALUES ('fabrikam.test', 'Fabrikam', 'federated', 'required',"
	" 'optional', 1, 0, 7, NULL);"
	"INSERT INTO partner_domains VALUES ('corp.fabrikam.test', 'fabrikam.test');"
	"INSERT INTO gateway VALUES ('connection_limit', '321');"
	"INSERT INTO audit (at_ms, who, iface, action, target) VALUES (1, 'root', 'cli',"
	" 'partner new', 'fabrikam.test');"
	"PRAGMA user_version = 1;";

static void test_migration_from_v1(void **state)
{
	struct tdir *t = *state;
	struct policy *pol = NULL;
	struct gateway_settings gw;
	struct accounts *users;
	const struct partner *p;
	struct store_db *db;
	char err[512] = "";

	/* SQLite's upgrade path: a PostgreSQL store was never at an older
	 * schema (store_pg.c creates the latest at once). */
	if (test_pg())
		skip();

	raw_exec(t->path, schema_v1);
	assert_int_equal(raw_int(t->path, "PRAGMA user_version"), 1);
	db = open_ok(t);
	/* Later migrations (3: admin tokens) run too. */
	assert_true(store_db_schema_latest() >= 2);
	assert_int_equal(store_db_schema_version(db), store_db_schema_latest());

	/* What version 1 held is all there. */
	if (store_db_load(db, &pol, &gw, err, sizeof(err)) != FG_OK)
		fail_msg("store_db_load: %s", err);
	assert_int_equal(policy_count(pol), 1);
	p = policy_get(pol, "fabrikam.test");
	assert_non_null(p);
	assert_string_equal(p->description, "Fabrikam");
	assert_int_equal(p->connection_limit, 7);
	/* Partners saved before suspension existed are enabled (schema 4). */
	assert_true(p->enabled);
	/* And use one stream both ways, without DANE or pins (schema 6). */
	assert_true(p->bidi);
	assert_int_equal(p->dane, DANE_OFF);
	assert_int_equal(p->pins.n, 0);
	assert_int_equal(p->additional_domains.n, 1);
	assert_string_equal(p->additional_domains.v[0], "corp.fabrikam.test");
	assert_ptr_equal(policy_lookup(pol, "corp.fabrikam.test"), p);
	assert_int_equal(gw.connection_limit, 321);
	policy_free(&pol);
	gateway_clear(&gw);

	/* And version 2 works on it. */
	users = load_users(db);
	assert_int_equal(accounts_count(users), 0);
	accounts_free(&users);
	struct account *a = mk_account("alice@contoso.test", true, 42);
	put_user(db, a);
	users = load_users(db);
	expect_same_account(accounts_get(users, "alice@contoso.test"), a);
	accounts_free(&users);
	account_free(&a);
	store_db_close(&db);

	assert_int_equal(raw_int(t->path, "PRAGMA user_version"), store_db_schema_latest());
	assert_int_equal(raw_int(t->path, "SELECT count(*) FROM sqlite_master WHERE type = 'table'"
					  " AND name IN ('users', 'roster', 'offline', 'vcards')"),
			 4);
	assert_int_equal(raw_int(t->path, "SELECT count(*) FROM sqlite_master WHERE type = 'index'"
					  " AND name = 'offline_user'"),
			 1);
	assert_int_equal(raw_int(t->path, "SELECT count(*) FROM audit"), 2);
	/* Opening again migrates nothing more. */
	db = open_ok(t);
	assert_int_equal(store_db_schema_version(db), store_db_schema_latest());
	store_db_close(&db);
}

/* ---- accounts ---- */

struct roster_seen {
	size_t n;
	char rows[16][400];
};

static int collect_roster(void *ud, const struct roster_row *r)
{
	struct roster_seen *s = ud;

	assert_true(s->n < FG_ARRAY_LEN(s->rows));
	snprintf(s->rows[s->n++], sizeof(s->rows[0]), "%s|%s|%s|%s|%d%d%d%d%d|%s", r->user,
		 r->contact, r->name != NULL ? r->name : "(null)", r->groups, r->sub_to,
		 r->sub_from, r->ask_out, r->pending_in, r->approved,
		 r->pending_in_xml != NULL ? r->pending_in_xml : "(null)");
	return 0;
}

static void roster_put_ok(struct store_db *db, const struct roster_row *r)
{
	char err[512] = "";

	if (store_db_roster_put(db, r, err, sizeof(err)) != FG_OK)
		fail_msg("store_db_roster_put: %s", err);
}

static void offline_add_ok(struct store_db *db, const char *user, long long at, const char *xml,
			   unsigned limit)
{
	char err[512] = "";

	if (store_db_offline_add(db, user, at, xml, limit, err, sizeof(err)) != FG_OK)
		fail_msg("store_db_offline_add: %s", err);
}

static unsigned offline_count(struct store_db *db, const char *user)
{
	unsigned n = 99;
	char err[512] = "";

	if (store_db_offline_count(db, user, &n, err, sizeof(err)) != FG_OK)
		fail_msg("store_db_offline_count: %s", err);
	return n;
}

static void test_users_put_load_delete(void **state)
{
	struct tdir *t = *state;
	struct store_db *db = open_ok(t);
	struct account *alice = mk_account("alice@contoso.test", true, 1700000000123LL);
	struct account *bob = mk_account("bob@contoso.test", false, 1700000000456LL);
	struct store_op ops[2] = {store_op_put_user(alice), store_op_put_user(bob)};
	struct roster_row item = {.user = "alice@contoso.test",
				  .contact = "carol@fabrikam.test",
				  .groups = "[\"Friends\"]",
				  .sub_to = true};
	struct accounts *users;
	char err[512] = "";

	commit_ok(db, ops, 2);
	users = load_users(db);
	assert_int_equal(accounts_count(users), 2);
	expect_same_account(accounts_get(users, "alice@contoso.test"), alice);
	expect_same_account(accounts_get(users, "bob@contoso.test"), bob);
	assert_true(
		sasl_check_password(&accounts_get(users, "alice@contoso.test")->creds, PASSWORD));
	accounts_free(&users);
	/* Keys, never the password. */
	assert_int_equal(raw_int(t->path, "SELECT count(*) FROM users WHERE credentials LIKE "
					  "'scram1:4096:%'"),
			 2);
	assert_int_equal(raw_int(t->path, "SELECT count(*) FROM users WHERE credentials LIKE "
					  "'%" PASSWORD "%'"),
			 0);

	/* Things that belong to alice. */
	roster_put_ok(db, &item);
	offline_add_ok(db, "alice@contoso.test", 1, "<message/>", 10);
	offline_add_ok(db, "bob@contoso.test", 1, "<message/>", 10);
	if (store_db_vcard_put(db, "alice@contoso.test", "<vCard xmlns='vcard-temp'/>", err,
			       sizeof(err)) != FG_OK)
		fail_msg("store_db_vcard_put: %s", err);

	/* A new password and access is an update: her rows stay. */
	assert_int_equal(sasl_creds_from_password("another password", 4096, &alice->creds), FG_OK);
	alice->xmpp_access = false;
	put_user(db, alice);
	users = load_users(db);
	expect_same_account(accounts_get(users, "alice@contoso.test"), alice);
	assert_false(
		sasl_check_password(&accounts_get(users, "alice@contoso.test")->creds, PASSWORD));
	accounts_free(&users);
	assert_int_equal(raw_int(t->path, "SELECT count(*) FROM roster"), 1);
	assert_int_equal(raw_int(t->path, "SELECT count(*) FROM vcards"), 1);
	assert_int_equal(offline_count(db, "alice@contoso.test"), 1);

	/* Deleting her takes them, and nothing of bob's. */
	struct store_op del = store_op_delete_user("alice@contoso.test");
	commit_ok(db, &del, 1);
	users = load_users(db);
	assert_int_equal(accounts_count(users), 1);
	assert_null(accounts_get(users, "alice@contoso.test"));
	accounts_free(&users);
	assert_int_equal(raw_int(t->path, "SELECT count(*) FROM roster"), 0);
	assert_int_equal(raw_int(t->path, "SELECT count(*) FROM vcards"), 0);
	assert_int_equal(raw_int(t->path, "SELECT count(*) FROM offline"), 1);
	assert_int_equal(offline_count(db, "alice@contoso.test"), 0);
	assert_int_equal(offline_count(db, "bob@contoso.test"), 1);

	/* Again: not found, and the whole transaction with it. */
	struct account *carol = mk_account("carol@contoso.test", true, 5);
	struct store_op both[2] = {store_op_put_user(carol), del};
	struct audit_entry a = {.who = "t", .iface = "cli", .action = "x", .target = "y"};
	long long audits = raw_int(t->path, "SELECT count(*) FROM audit");
	assert_int_equal(store_db_commit(db, both, 2, &a, 1, err, sizeof(err)), FG_NOTFOUND);
	assert_non_null(strstr(err, "there is no user alice@contoso.test"));
	assert_int_equal(raw_int(t->path, "SELECT count(*) FROM users"), 1);
	assert_int_equal(raw_int(t->path, "SELECT count(*) FROM audit"), audits);

	/* An account without a JID is refused, not half-saved. */
	struct account nojid = {0};
	struct store_op bad = store_op_put_user(&nojid);
	assert_int_equal(store_db_commit(db, &bad, 1, NULL, 0, err, sizeof(err)), FG_INVAL);

	account_free(&alice);
	account_free(&bob);
	account_free(&carol);
	store_db_close(&db);
}

static void test_unreadable_user_row(void **state)
{
	struct tdir *t = *state;
	struct store_db *db = open_ok(t);
	struct account *a = mk_account("alice@contoso.test", true, 1);
	struct accounts *users = NULL;
	char err[512] = "";

	put_user(db, a);
	account_free(&a);
	raw_exec(t->path, "UPDATE users SET credentials = 'scram1:4096:not-base64!'");
	assert_int_equal(store_db_users_load(db, &users, err, sizeof(err)), FG_INVAL);
	assert_null(users);
	assert_non_null(strstr(err, "holds user alice@contoso.test with credentials"));
	assert_null(strstr(err, "not-base64")); /* the value is not shown */

	raw_exec(t->path, "UPDATE users SET xmpp_access = 7");
	assert_int_equal(store_db_users_load(db, &users, err, sizeof(err)), FG_INVAL);
	assert_non_null(strstr(err, "xmpp_access = 7"));
	store_db_close(&db);
}

/* ---- rosters ---- */

static void test_roster(void **state)
{
	struct tdir *t = *state;
	struct store_db *db = open_ok(t);
	struct account *alice = mk_account("alice@contoso.test", true, 1);
	struct account *bob = mk_account("bob@contoso.test", true, 2);
	struct roster_seen seen = {0};
	char err[512] = "";

	put_user(db, alice);
	put_user(db, bob);
	roster_put_ok(db, &(struct roster_row){.user = "bob@contoso.test",
					       .contact = "dave@fabrikam.test",
					       .groups = "[]",
					       .sub_from = true});
	roster_put_ok(db, &(struct roster_row){.user = "alice@contoso.test",
					       .contact = "carol@fabrikam.test",
					       .name = "Carol",
					       .groups = "[\"Work\",\"Friends\"]",
					       .ask_out = true});
	/* groups NULL is stored as no groups. */
	roster_put_ok(db, &(struct roster_row){.user = "alice@contoso.test",
					       .contact = "eve@fabrikam.test",
					       .pending_in = true,
					       .pending_in_xml = "<presence type='subscribe'/>"});
	assert_int_equal(store_db_roster_load(db, collect_roster, &seen, err, sizeof(err)), FG_OK);
	assert_int_equal(seen.n, 3);
	/* Ordered by user, then contact. */
	assert_string_equal(seen.rows[0], "alice@contoso.test|carol@fabrikam.test|Carol|"
					  "[\"Work\",\"Friends\"]|00100|(null)");
	assert_string_equal(seen.rows[1], "alice@contoso.test|eve@fabrikam.test|(null)|[]|00010|"
					  "<presence type='subscribe'/>");
	assert_string_equal(seen.rows[2],
			    "bob@contoso.test|dave@fabrikam.test|(null)|[]|01000|(null)");

	/* One user's items only, ordered by contact; no version row yet. */
	unsigned long long ver = 7;
	bool has_ver = true;
	memset(&seen, 0, sizeof(seen));
	assert_int_equal(store_db_roster_load_user(db, "alice@contoso.test", collect_roster, &seen,
						   &ver, &has_ver, err, sizeof(err)),
			 FG_OK);
	assert_int_equal(seen.n, 2);
	assert_non_null(strstr(seen.rows[0], "alice@contoso.test|carol@fabrikam.test|"));
	assert_non_null(strstr(seen.rows[1], "alice@contoso.test|eve@fabrikam.test|"));
	assert_false(has_ver);
	assert_int_equal(ver, 0);
	assert_int_equal(store_db_roster_ver_put(db, "alice@contoso.test", 42, err, sizeof(err)),
			 FG_OK);
	assert_int_equal(store_db_roster_ver_put(db, "bob@contoso.test", 9, err, sizeof(err)),
			 FG_OK);
	memset(&seen, 0, sizeof(seen));
	assert_int_equal(store_db_roster_load_user(db, "bob@contoso.test", collect_roster, &seen,
						   &ver, &has_ver, err, sizeof(err)),
			 FG_OK);
	assert_int_equal(seen.n, 1);
	assert_non_null(strstr(seen.rows[0], "bob@contoso.test|dave@fabrikam.test|"));
	assert_true(has_ver);
	assert_int_equal(ver, 9);
	memset(&seen, 0, sizeof(seen));
	assert_int_equal(store_db_roster_load_user(db, "nobody@contoso.test", collect_roster, &seen,
						   &ver, &has_ver, err, sizeof(err)),
			 FG_OK);
	assert_int_equal(seen.n, 0);
	assert_false(has_ver);

	/* Put again: replaced in place, not added. */
	roster_put_ok(db, &(struct roster_row){.user = "alice@contoso.test",
					       .contact = "carol@fabrikam.test",
					       .name = "",
					       .groups = "[]",
					       .sub_to = true,
					       .sub_from = true,
					       .approved = true});
	memset(&seen, 0, sizeof(seen));
	assert_int_equal(store_db_roster_load(db, collect_roster, &seen, err, sizeof(err)), FG_OK);
	assert_int_equal(seen.n, 3);
	assert_string_equal(seen.rows[0],
			    "alice@contoso.test|carol@fabrikam.test||[]|11001|(null)");

	/* Delete one; deleting what is not there is fine. */
	assert_int_equal(store_db_roster_delete(db, "alice@contoso.test", "eve@fabrikam.test", err,
						sizeof(err)),
			 FG_OK);
	assert_int_equal(store_db_roster_delete(db, "alice@contoso.test", "nobody@fabrikam.test",
						err, sizeof(err)),
			 FG_OK);
	memset(&seen, 0, sizeof(seen));
	assert_int_equal(store_db_roster_load(db, collect_roster, &seen, err, sizeof(err)), FG_OK);
	assert_int_equal(seen.n, 2);
	assert_non_null(strstr(seen.rows[1], "bob@contoso.test|dave"));

	/* An item of a user that does not exist. */
	assert_int_equal(store_db_roster_put(db,
					     &(struct roster_row){.user = "zed@contoso.test",
								  .contact = "x@fabrikam.test"},
					     err, sizeof(err)),
			 FG_NOTFOUND);
	assert_non_null(strstr(err, "there is no user zed@contoso.test"));
	assert_int_equal(raw_int(t->path, "SELECT count(*) FROM roster"), 2);

	account_free(&alice);
	account_free(&bob);
	store_db_close(&db);
}

/* ---- offline messages ---- */

struct taken {
	size_t n;
	long long at[8];
	char xml[8][64];
	int stop_at; /* refuse at this call (1-based); 0 = never */
};

static int take_cb(void *ud, long long at_ms, const char *xml)
{
	struct taken *tk = ud;

	if (tk->stop_at != 0 && (int)tk->n + 1 == tk->stop_at)
		return 1;
	assert_true(tk->n < FG_ARRAY_LEN(tk->at));
	tk->at[tk->n] = at_ms;
	snprintf(tk->xml[tk->n], sizeof(tk->xml[0]), "%s", xml);
	tk->n++;
	return 0;
}

static void test_offline(void **state)
{
	struct tdir *t = *state;
	struct store_db *db = open_ok(t);
	struct account *alice = mk_account("alice@contoso.test", true, 1);
	struct taken tk = {0};
	char err[512] = "";

	put_user(db, alice);
	assert_int_equal(offline_count(db, "alice@contoso.test"), 0);
	/* The stamp is the caller's: order is arrival, even when a clock
	 * went back. */
	offline_add_ok(db, "alice@contoso.test", 300, "<message id='1'/>", 3);
	offline_add_ok(db, "alice@contoso.test", 100, "<message id='2'/>", 3);
	offline_add_ok(db, "alice@contoso.test", 200, "<message id='3'/>", 3);
	assert_int_equal(offline_count(db, "alice@contoso.test"), 3);
	assert_int_equal(store_db_offline_add(db, "alice@contoso.test", 400, "<message id='4'/>", 3,
					      err, sizeof(err)),
			 FG_LIMIT);
	assert_non_null(strstr(err, "the limit is 3"));
	assert_int_equal(offline_count(db, "alice@contoso.test"), 3);
	/* 0 is offline storage off. */
	assert_int_equal(
		store_db_offline_add(db, "alice@contoso.test", 400, "<m/>", 0, err, sizeof(err)),
		FG_LIMIT);
	assert_int_equal(
		store_db_offline_add(db, "zed@contoso.test", 400, "<m/>", 10, err, sizeof(err)),
		FG_NOTFOUND);
	assert_int_equal(raw_int(t->path, "SELECT count(*) FROM offline"), 3);

	/* A consumer that gives up keeps every message stored. */
	tk.stop_at = 2;
	assert_int_equal(
		store_db_offline_take(db, "alice@contoso.test", 0, take_cb, &tk, err, sizeof(err)),
		FG_ERR);
	assert_int_equal(offline_count(db, "alice@contoso.test"), 3);

	memset(&tk, 0, sizeof(tk));
	assert_int_equal(
		store_db_offline_take(db, "alice@contoso.test", 0, take_cb, &tk, err, sizeof(err)),
		FG_OK);
	assert_int_equal(tk.n, 3);
	assert_string_equal(tk.xml[0], "<message id='1'/>");
	assert_string_equal(tk.xml[1], "<message id='2'/>");
	assert_string_equal(tk.xml[2], "<message id='3'/>");
	assert_int_equal(tk.at[0], 300);
	assert_int_equal(tk.at[1], 100);
	assert_int_equal(offline_count(db, "alice@contoso.test"), 0);

	/* Empty now; and there is room again. */
	memset(&tk, 0, sizeof(tk));
	assert_int_equal(
		store_db_offline_take(db, "alice@contoso.test", 0, take_cb, &tk, err, sizeof(err)),
		FG_OK);
	assert_int_equal(tk.n, 0);
	offline_add_ok(db, "alice@contoso.test", 500, "<message id='5'/>", 3);
	assert_int_equal(offline_count(db, "alice@contoso.test"), 1);

	/* A batch: the oldest ones up to max, the rest stays for the next
	 * take, in order; a refused batch keeps its messages too. */
	offline_add_ok(db, "alice@contoso.test", 600, "<message id='6'/>", 3);
	offline_add_ok(db, "alice@contoso.test", 700, "<message id='7'/>", 3);
	memset(&tk, 0, sizeof(tk));
	tk.stop_at = 2;
	assert_int_equal(
		store_db_offline_take(db, "alice@contoso.test", 2, take_cb, &tk, err, sizeof(err)),
		FG_ERR);
	assert_int_equal(offline_count(db, "alice@contoso.test"), 3);
	memset(&tk, 0, sizeof(tk));
	assert_int_equal(
		store_db_offline_take(db, "alice@contoso.test", 2, take_cb, &tk, err, sizeof(err)),
		FG_OK);
	assert_int_equal(tk.n, 2);
	assert_string_equal(tk.xml[0], "<message id='5'/>");
	assert_string_equal(tk.xml[1], "<message id='6'/>");
	assert_int_equal(offline_count(db, "alice@contoso.test"), 1);
	memset(&tk, 0, sizeof(tk));
	assert_int_equal(
		store_db_offline_take(db, "alice@contoso.test", 2, take_cb, &tk, err, sizeof(err)),
		FG_OK);
	assert_int_equal(tk.n, 1);
	assert_string_equal(tk.xml[0], "<message id='7'/>");
	assert_int_equal(offline_count(db, "alice@contoso.test"), 0);

	account_free(&alice);
	store_db_close(&db);
}

/* A take on PostgreSQL (read committed) beside another node's store: a
 * message committed between the take's select and its deletes is neither
 * handed over nor deleted by it (the old DELETE by user removed it unread);
 * the next take gets it. On SQLite the take holds the write lock, so no
 * other writer can come between: the case does not arise. */
struct beside {
	struct store_db *other;
	struct taken tk;
	bool added;
};

static int take_beside_cb(void *ud, long long at_ms, const char *xml)
{
	struct beside *b = ud;

	if (!b->added) {
		offline_add_ok(b->other, "alice@contoso.test", 900, "<message id='9'/>", 10);
		b->added = true;
	}
	return take_cb(&b->tk, at_ms, xml);
}

static void test_offline_take_beside_a_writer(void **state)
{
	struct tdir *t = *state;
	struct store_db *db, *other;
	struct account *alice;
	struct beside b = {0};
	char err[512] = "";

	if (!test_pg())
		skip();
	alice = mk_account("alice@contoso.test", true, 1);
	db = open_ok(t);
	other = open_ok(t);
	put_user(db, alice);
	offline_add_ok(db, "alice@contoso.test", 100, "<message id='1'/>", 10);
	offline_add_ok(db, "alice@contoso.test", 200, "<message id='2'/>", 10);
	b.other = other;
	assert_int_equal(store_db_offline_take(db, "alice@contoso.test", 0, take_beside_cb, &b, err,
					       sizeof(err)),
			 FG_OK);
	assert_true(b.added);
	assert_int_equal(b.tk.n, 2);
	assert_string_equal(b.tk.xml[1], "<message id='2'/>");
	assert_int_equal(offline_count(db, "alice@contoso.test"), 1);
	memset(&b.tk, 0, sizeof(b.tk));
	assert_int_equal(store_db_offline_take(other, "alice@contoso.test", 0, take_cb, &b.tk, err,
					       sizeof(err)),
			 FG_OK);
	assert_int_equal(b.tk.n, 1);
	assert_string_equal(b.tk.xml[0], "<message id='9'/>");
	account_free(&alice);
	store_db_close(&other);
	store_db_close(&db);
}

/* ---- vCards ---- */

static void test_vcard(void **state)
{
	struct tdir *t = *state;
	struct store_db *db = open_ok(t);
	struct account *alice = mk_account("alice@contoso.test", true, 1);
	char err[512] = "", *xml = (char *)"untouched";

	put_user(db, alice);
	assert_int_equal(store_db_vcard_get(db, "alice@contoso.test", &xml, err, sizeof(err)),
			 FG_OK);
	assert_null(xml);
	assert_int_equal(store_db_vcard_put(db, "alice@contoso.test",
					    "<vCard xmlns='vcard-temp'><FN>Alice</FN></vCard>", err,
					    sizeof(err)),
			 FG_OK);
	assert_int_equal(store_db_vcard_get(db, "alice@contoso.test", &xml, err, sizeof(err)),
			 FG_OK);
	assert_string_equal(xml, "<vCard xmlns='vcard-temp'><FN>Alice</FN></vCard>");
	free(xml);
	assert_int_equal(store_db_vcard_put(db, "alice@contoso.test",
					    "<vCard xmlns='vcard-temp'><FN>A.</FN></vCard>", err,
					    sizeof(err)),
			 FG_OK);
	assert_int_equal(store_db_vcard_get(db, "alice@contoso.test", &xml, err, sizeof(err)),
			 FG_OK);
	assert_string_equal(xml, "<vCard xmlns='vcard-temp'><FN>A.</FN></vCard>");
	free(xml);
	assert_int_equal(raw_int(t->path, "SELECT count(*) FROM vcards"), 1);

	assert_int_equal(store_db_vcard_put(db, "alice@contoso.test", NULL, err, sizeof(err)),
			 FG_OK);
	assert_int_equal(store_db_vcard_get(db, "alice@contoso.test", &xml, err, sizeof(err)),
			 FG_OK);
	assert_null(xml);
	assert_int_equal(store_db_vcard_put(db, "zed@contoso.test", "<vCard/>", err, sizeof(err)),
			 FG_NOTFOUND);
	assert_int_equal(raw_int(t->path, "SELECT count(*) FROM vcards"), 0);

	account_free(&alice);
	store_db_close(&db);
}

/* ---- the in-memory set ---- */

static void test_accounts_set(void **state)
{
	enum { N = 2000 };
	struct accounts *set = accounts_new();
	char jid[64];

	(void)state;
	assert_non_null(set);
	assert_int_equal(accounts_count(set), 0);
	assert_null(accounts_get(set, "nobody@contoso.test"));
	assert_null(accounts_at(set, 0));
	/* Inserted in a scrambled order (7919 is prime to N), found sorted. */
	for (unsigned i = 0; i < N; i++) {
		unsigned k = (i * 7919u) % N;
		struct account *a;

		snprintf(jid, sizeof(jid), "user%05u@contoso.test", k);
		a = account_new(jid);
		assert_non_null(a);
		a->created_ms = k;
		assert_int_equal(accounts_put(set, a), FG_OK);
	}
	assert_int_equal(accounts_count(set), N);
	for (unsigned k = 0; k < N; k++) {
		const struct account *a = accounts_at(set, k);

		snprintf(jid, sizeof(jid), "user%05u@contoso.test", k);
		assert_string_equal(a->jid, jid);
		assert_ptr_equal(accounts_get(set, jid), a);
		assert_true(a->xmpp_access); /* the default */
	}

	/* Replacing keeps one account per JID. */
	struct account *r = account_new("user00042@contoso.test");
	r->xmpp_access = false;
	r->created_ms = 4242;
	assert_int_equal(accounts_put(set, r), FG_OK);
	assert_int_equal(accounts_count(set), N);
	assert_int_equal(accounts_get(set, "user00042@contoso.test")->created_ms, 4242);
	assert_false(accounts_get(set, "user00042@contoso.test")->xmpp_access);

	/* Remove every other one: the rest stay reachable both ways. */
	for (unsigned k = 0; k < N; k += 2) {
		snprintf(jid, sizeof(jid), "user%05u@contoso.test", k);
		assert_true(accounts_remove(set, jid));
		assert_false(accounts_remove(set, jid));
	}
	assert_int_equal(accounts_count(set), N / 2);
	for (unsigned k = 0; k < N; k++) {
		const struct account *a;

		snprintf(jid, sizeof(jid), "user%05u@contoso.test", k);
		a = accounts_get(set, jid);
		if (k % 2 == 0) {
			assert_null(a);
		} else {
			assert_non_null(a);
			assert_ptr_equal(accounts_at(set, k / 2), a);
		}
	}
	assert_false(accounts_remove(set, "nobody@contoso.test"));
	assert_int_equal(accounts_put(set, NULL), FG_INVAL);

	/* A clone is equal and separate. */
	const struct account *orig = accounts_get(set, "user00001@contoso.test");
	struct account *c = account_clone(orig);
	assert_non_null(c);
	assert_ptr_not_equal(c->jid, orig->jid);
	assert_string_equal(c->jid, orig->jid);
	assert_int_equal(c->created_ms, orig->created_ms);
	assert_memory_equal(&c->creds, &orig->creds, sizeof(c->creds));
	account_free(&c);
	assert_null(c);
	account_free(&c); /* NULL is accepted */

	accounts_free(&set);
	assert_null(set);
	accounts_free(&set);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_migration_from_v1, setup, teardown),
		cmocka_unit_test_setup_teardown(test_users_put_load_delete, setup, teardown),
		cmocka_unit_test_setup_teardown(test_unreadable_user_row, setup, teardown),
		cmocka_unit_test_setup_teardown(test_roster, setup, teardown),
		cmocka_unit_test_setup_teardown(test_offline, setup, teardown),
		cmocka_unit_test_setup_teardown(test_offline_take_beside_a_writer, setup, teardown),
		cmocka_unit_test_setup_teardown(test_vcard, setup, teardown),
		cmocka_unit_test(test_accounts_set),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}

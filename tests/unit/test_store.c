/* Unit tests for src/store_sqlite.c and src/store.c: schema and migrations,
 * partners and gateway settings round trips, all-or-nothing commits, the
 * audit log, and the store thread with its completions on the loop. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "fg.h"
#include "log.h"
#include "policy.h"
#include "store.h"
#include "store_sqlite.h"
#include "store_testdir.h"

#include <dirent.h>
#include <event2/event.h>
#include <limits.h>
#include <pthread.h>
#include <sqlite3.h>
#include <stdio.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

static void commit_ok(struct store_db *db, const struct store_op *ops, size_t nops,
		      const struct audit_entry *audit, size_t naudit)
{
	char err[512] = "";

	if (store_db_commit(db, ops, nops, audit, naudit, err, sizeof(err)) != FG_OK)
		fail_msg("store_db_commit: %s", err);
}

static struct policy *load_ok(struct store_db *db)
{
	struct policy *pol = NULL;
	char err[512] = "";

	if (store_db_load(db, &pol, NULL, err, sizeof(err)) != FG_OK)
		fail_msg("store_db_load: %s", err);
	assert_non_null(pol);
	return pol;
}

/* A partner with every field away from its default, varied by v, and the
 * additional domains given (NULL-terminated). */
static struct partner *mk(const char *domain, unsigned v, const char *const *extra)
{
	struct partner *p = partner_new(domain);

	assert_non_null(p);
	free(p->description);
	p->description = NULL;
	if (v % 3 == 0)
		p->description = strdup("");
	else
		p->description = strdup("Fabrikam \"IT\", ops@fabrikam.test; 日本語 'quotes'");
	assert_non_null(p->description);
	p->type = (enum partner_type)(v % 3);
	p->tls = (enum negotiation)((v + 1) % 3);
	p->sasl = (enum negotiation)((v / 3) % 3);
	p->dialback = v % 2 == 0;
	p->keepalive = v % 4 < 2;
	p->connection_limit = v % 5 == 4 ? UINT_MAX : v * 7;
	free(p->proxy_fqdn);
	p->proxy_fqdn = NULL;
	if (v % 3 == 1)
		p->proxy_fqdn = strdup("xmpp.example.test:5270");
	else if (v % 3 == 2)
		p->proxy_fqdn = strdup("");
	p->bidi = v % 2 == 1;
	p->dane = (enum dane_mode)(v % 3);
	/* v % 3 == 2: two pins, in an order the load must keep as a set. */
	static const char *const pins[] = {"ungWv48Bz+pBQUDeXa4iI7ADYaOWF3qctBD/YfIAFa0=",
					   "47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU="};
	for (unsigned i = 0; i < v % 3; i++)
		assert_int_equal(partner_add_pin(p, pins[(i + v) % 2]), FG_OK);
	for (size_t i = 0; extra != NULL && extra[i] != NULL; i++)
		assert_int_equal(partner_add_domain(p, extra[i]), FG_OK);
	return p;
}

static void expect_same(const struct policy *pol, const struct partner *want)
{
	const struct partner *got = policy_get(pol, want->domain);

	if (got == NULL)
		fail_msg("partner %s was not loaded", want->domain);
	if (!partner_equal(got, want))
		fail_msg("partner %s came back different", want->domain);
}

/* ---- schema ---- */

static void test_open_creates_schema(void **state)
{
	struct tdir *t = *state;
	struct store_db *db = open_ok(t);
	struct stat sb;

	assert_true(store_db_schema_latest() >= 1);
	assert_int_equal(store_db_schema_version(db), store_db_schema_latest());
	store_db_close(&db);
	assert_null(db);
	store_db_close(&db); /* NULL is accepted */

	if (test_pg()) {
		/* The version in a table of its own; every table there. */
		assert_int_equal(raw_int(t->path, "SELECT version FROM fedgate_schema"),
				 store_db_schema_latest());
		assert_int_equal(raw_int(t->path, "SELECT count(*) FROM pg_tables WHERE"
						  " schemaname = 'public' AND tablename IN"
						  " ('partners', 'partner_domains', 'gateway',"
						  " 'admins', 'audit')"),
				 5);
		assert_int_equal(raw_int(t->path,
					 "SELECT count(*) FROM pg_indexes WHERE"
					 " tablename = 'audit' AND indexdef LIKE '%at_ms%'"),
				 1);
		/* Opening again migrates nothing. */
		db = open_ok(t);
		assert_int_equal(raw_int(t->path, "SELECT count(*) FROM fedgate_schema"), 1);
		store_db_close(&db);
		return;
	}
	assert_int_equal(raw_int(t->path, "PRAGMA user_version"), store_db_schema_latest());
	assert_int_equal(raw_int(t->path, "SELECT count(*) FROM sqlite_master WHERE type = 'table'"
					  " AND name IN ('partners', 'partner_domains', 'gateway',"
					  " 'admins', 'audit')"),
			 5);
	assert_int_equal(raw_int(t->path, "SELECT count(*) FROM sqlite_master WHERE type = 'index'"
					  " AND tbl_name = 'audit' AND sql LIKE '%at_ms%'"),
			 1);
	/* WAL is a property of the file: a second connection sees it. */
	assert_int_equal(raw_int(t->path, "SELECT journal_mode = 'wal' FROM pragma_journal_mode"),
			 1);
	/* Holds the dialback secret and password hashes. */
	assert_int_equal(stat(t->path, &sb), 0);
	assert_int_equal(sb.st_mode & 0777, 0600);
}

static void test_reopen_keeps_data(void **state)
{
	struct tdir *t = *state;
	struct store_db *db = open_ok(t);
	const char *extra[] = {"corp.fabrikam.test", NULL};
	struct partner *p = mk("fabrikam.test", 1, extra);
	struct store_op op = {.kind = STORE_PUT_PARTNER, .partner = p};
	struct policy *pol;

	commit_ok(db, &op, 1, NULL, 0);
	store_db_close(&db);

	db = open_ok(t);
	assert_int_equal(store_db_schema_version(db), store_db_schema_latest());
	pol = load_ok(db);
	assert_int_equal(policy_count(pol), 1);
	expect_same(pol, p);
	policy_free(&pol);
	store_db_close(&db);
	partner_free(&p);
}

static void test_newer_schema_refused(void **state)
{
	struct tdir *t = *state;
	struct store_db *db = NULL;
	char err[512] = "", want[128];

	if (test_pg())
		raw_exec(t->path, "CREATE TABLE future (x int); CREATE TABLE fedgate_schema"
				  " (version int); INSERT INTO fedgate_schema VALUES (999)");
	else
		raw_exec(t->path, "CREATE TABLE future (x); PRAGMA user_version = 999;");
	assert_int_equal(test_open(t, &db, err, sizeof(err)), FG_ERR);
	assert_null(db);
	snprintf(want, sizeof(want),
		 "was written by a newer fedgate (schema 999, this one knows %d)",
		 store_db_schema_latest());
	if (strstr(err, want) == NULL)
		fail_msg("unexpected message: %s", err);
	/* Left as it was: no tables of ours, version untouched. */
	if (test_pg()) {
		assert_int_equal(raw_int(t->path, "SELECT version FROM fedgate_schema"), 999);
		assert_int_equal(raw_int(t->path, "SELECT count(*) FROM pg_tables"
						  " WHERE tablename = 'partners'"),
				 0);
		return;
	}
	assert_int_equal(raw_int(t->path, "PRAGMA user_version"), 999);
	assert_int_equal(raw_int(t->path, "SELECT count(*) FROM sqlite_master"
					  " WHERE name = 'partners'"),
			 0);
}

static void test_missing_folder_refused(void **state)
{
	struct tdir *t = *state;
	struct store_db *db = NULL;
	char err[512] = "", path[200];

	snprintf(path, sizeof(path), "%s/missing/fedgate.db", t->dir);
	assert_int_equal(store_db_open(path, &db, err, sizeof(err)), FG_ERR);
	assert_null(db);
	if (strstr(err, "does not exist") == NULL || strstr(err, "/missing") == NULL)
		fail_msg("unexpected message: %s", err);
	assert_int_not_equal(access(path, F_OK), 0);

	assert_int_equal(store_db_open("", &db, err, sizeof(err)), FG_INVAL);
}

static void test_not_a_database_refused(void **state)
{
	struct tdir *t = *state;
	struct store_db *db = NULL;
	char err[512] = "";
	FILE *f;

	if (test_pg()) {
		/* No such database, and a password that must not be shown. */
		char dsn[600];
		struct store_target tg = test_target(t);

		snprintf(dsn, sizeof(dsn), "%s password=s3cr3t dbname=nosuchdb",
			 getenv("FG_TEST_PG"));
		tg.dsn = dsn;
		assert_int_equal(store_open(&tg, &db, err, sizeof(err)), FG_ERR);
		assert_null(db);
		if (strstr(err, "cannot be reached") == NULL || strstr(err, "nosuchdb") == NULL ||
		    strstr(err, "s3cr3t") != NULL)
			fail_msg("unexpected message: %s", err);
		return;
	}
	f = fopen(t->path, "w");
	assert_non_null(f);
	for (int i = 0; i < 200; i++)
		fputs("this is not a database. ", f);
	fclose(f);
	assert_int_equal(test_open(t, &db, err, sizeof(err)), FG_ERR);
	assert_null(db);
	if (strstr(err, t->path) == NULL || strstr(err, "not a database") == NULL)
		fail_msg("unexpected message: %s", err);
}

/* ---- partners ---- */

static void test_partner_round_trip(void **state)
{
	struct tdir *t = *state;
	struct store_db *db = open_ok(t);
	const char *e1[] = {"corp.fabrikam.test", NULL};
	const char *e3[] = {"a.litware.test", "b.litware.test", "xn--bcher-kva.test", NULL};
	struct partner *p[9];
	struct store_op ops[9];
	struct policy *pol;
	struct gateway_settings gw;
	char err[256];

	/* Nine variants cover every value of every enum and both booleans. */
	for (unsigned i = 0; i < 9; i++) {
		char d[64];

		snprintf(d, sizeof(d), "partner%u.test", i);
		p[i] = mk(d, i, i == 1 ? e1 : i == 5 ? e3 : NULL);
		ops[i] = (struct store_op){.kind = STORE_PUT_PARTNER, .partner = p[i]};
	}
	commit_ok(db, ops, 9, NULL, 0);

	pol = load_ok(db);
	assert_int_equal(policy_count(pol), 9);
	for (unsigned i = 0; i < 9; i++)
		expect_same(pol, p[i]);
	assert_null(policy_get(pol, "corp.fabrikam.test"));
	policy_free(&pol);

	/* Both at once, from one snapshot. */
	assert_int_equal(store_db_load(db, &pol, &gw, err, sizeof(err)), FG_OK);
	assert_int_equal(policy_count(pol), 9);
	assert_int_equal(gw.connection_limit, 1000);
	policy_free(&pol);
	gateway_clear(&gw);

	store_db_close(&db);
	for (unsigned i = 0; i < 9; i++)
		partner_free(&p[i]);
}

static void test_partner_replace(void **state)
{
	struct tdir *t = *state;
	struct store_db *db = open_ok(t);
	const char *old_extra[] = {"x.fabrikam.test", "y.fabrikam.test", NULL};
	const char *new_extra[] = {"z.fabrikam.test", NULL};
	const char *other_extra[] = {"x.fabrikam.test", NULL};
	struct partner *p1 = mk("fabrikam.test", 0, old_extra);
	struct partner *p2 = mk("fabrikam.test", 7, new_extra);
	struct partner *q = mk("litware.test", 2, other_extra);
	struct store_op op = {.kind = STORE_PUT_PARTNER, .partner = p1};
	struct policy *pol;

	commit_ok(db, &op, 1, NULL, 0);
	op.partner = p2;
	commit_ok(db, &op, 1, NULL, 0);
	pol = load_ok(db);
	assert_int_equal(policy_count(pol), 1);
	expect_same(pol, p2);
	policy_free(&pol);
	assert_int_equal(raw_int(t->path, "SELECT count(*) FROM partner_domains"), 1);

	/* The replaced version's domains are free for another partner. */
	op.partner = q;
	commit_ok(db, &op, 1, NULL, 0);
	pol = load_ok(db);
	assert_int_equal(policy_count(pol), 2);
	expect_same(pol, p2);
	expect_same(pol, q);
	policy_free(&pol);

	store_db_close(&db);
	partner_free(&p1);
	partner_free(&p2);
	partner_free(&q);
}

static void test_partner_delete(void **state)
{
	struct tdir *t = *state;
	struct store_db *db = open_ok(t);
	const char *extra[] = {"x.fabrikam.test", "y.fabrikam.test", NULL};
	struct partner *p = mk("fabrikam.test", 4, extra);
	struct partner *q = mk("litware.test", 5, NULL);
	struct store_op put[2] = {{.kind = STORE_PUT_PARTNER, .partner = p},
				  {.kind = STORE_PUT_PARTNER, .partner = q}};
	struct store_op del = {.kind = STORE_DELETE_PARTNER, .domain = "fabrikam.test"};
	struct policy *pol;
	char err[512] = "";

	commit_ok(db, put, 2, NULL, 0);
	assert_int_equal(raw_int(t->path, "SELECT count(*) FROM partner_domains"), 2);
	commit_ok(db, &del, 1, NULL, 0);
	pol = load_ok(db);
	assert_int_equal(policy_count(pol), 1);
	assert_null(policy_get(pol, "fabrikam.test"));
	expect_same(pol, q);
	policy_free(&pol);
	/* ON DELETE CASCADE took the additional domains with the partner. */
	assert_int_equal(raw_int(t->path, "SELECT count(*) FROM partner_domains"), 0);

	/* Deleting what is not there refuses the whole commit. */
	assert_int_equal(store_db_commit(db, &del, 1, NULL, 0, err, sizeof(err)), FG_NOTFOUND);
	if (strstr(err, "fabrikam.test") == NULL)
		fail_msg("unexpected message: %s", err);

	store_db_close(&db);
	partner_free(&p);
	partner_free(&q);
}

static void test_replace_partners(void **state)
{
	struct tdir *t = *state;
	struct store_db *db = open_ok(t);
	const char *e1[] = {"shared.test", NULL};
	struct partner *a = mk("a.test", 1, e1);
	struct partner *b = mk("b.test", 2, NULL);
	struct partner *c = mk("c.test", 3, e1); /* takes a's domain over */
	struct partner *d = mk("b.test", 8, NULL);
	const struct partner *first[] = {a, b};
	const struct partner *second[] = {c, d};
	struct store_op op = {.kind = STORE_REPLACE_PARTNERS, .partners = first, .npartners = 2};
	struct policy *pol;

	commit_ok(db, &op, 1, NULL, 0);
	pol = load_ok(db);
	assert_int_equal(policy_count(pol), 2);
	expect_same(pol, a);
	expect_same(pol, b);
	policy_free(&pol);

	op.partners = second;
	commit_ok(db, &op, 1, NULL, 0);
	pol = load_ok(db);
	assert_int_equal(policy_count(pol), 2);
	assert_null(policy_get(pol, "a.test"));
	expect_same(pol, c);
	expect_same(pol, d);
	policy_free(&pol);

	/* An empty import removes every partner: federation off. */
	op.partners = NULL;
	op.npartners = 0;
	commit_ok(db, &op, 1, NULL, 0);
	pol = load_ok(db);
	assert_int_equal(policy_count(pol), 0);
	policy_free(&pol);
	assert_int_equal(raw_int(t->path, "SELECT count(*) FROM partner_domains"), 0);

	store_db_close(&db);
	partner_free(&a);
	partner_free(&b);
	partner_free(&c);
	partner_free(&d);
}

/* ---- gateway settings ---- */

static void test_gateway_round_trip(void **state)
{
	struct tdir *t = *state;
	struct store_db *db = open_ok(t);
	struct gateway_settings def, gw, got;
	struct store_op op = {.kind = STORE_PUT_GATEWAY, .gw = &gw};
	char err[256];

	gateway_defaults(&def);
	assert_int_equal(store_db_load(db, NULL, &got, err, sizeof(err)), FG_OK);
	assert_int_equal(got.connection_limit, def.connection_limit);
	assert_int_equal(got.subscription_refresh_interval, def.subscription_refresh_interval);
	assert_false(got.log_message_bodies);
	assert_null(got.dialback_secret);
	gateway_clear(&got);

	gw = (struct gateway_settings){
		.connection_limit = 5000,
		.partner_connection_limit = 0,
		.keepalive_interval = 45,
		.stream_establishment_timeout = 12,
		.stream_inactivity_timeout = UINT_MAX,
		.subscription_refresh_interval = 3600,
		.log_message_bodies = true,
		.dialback_secret = strdup("c2VjcmV0IHNlY3JldCBzZWNyZXQ="),
	};
	assert_non_null(gw.dialback_secret);
	commit_ok(db, &op, 1, NULL, 0);
	store_db_close(&db);

	db = open_ok(t);
	assert_int_equal(store_db_load(db, NULL, &got, err, sizeof(err)), FG_OK);
	assert_int_equal(got.connection_limit, 5000);
	assert_int_equal(got.partner_connection_limit, 0);
	assert_int_equal(got.keepalive_interval, 45);
	assert_int_equal(got.stream_establishment_timeout, 12);
	assert_int_equal(got.stream_inactivity_timeout, UINT_MAX);
	assert_int_equal(got.subscription_refresh_interval, 3600);
	assert_true(got.log_message_bodies);
	assert_non_null(got.dialback_secret);
	assert_string_equal(got.dialback_secret, gw.dialback_secret);
	gateway_clear(&got);

	/* Unsetting the secret removes its row; it loads back as NULL. */
	free(gw.dialback_secret);
	gw.dialback_secret = NULL;
	gw.log_message_bodies = false;
	commit_ok(db, &op, 1, NULL, 0);
	assert_int_equal(store_db_load(db, NULL, &got, err, sizeof(err)), FG_OK);
	assert_null(got.dialback_secret);
	assert_false(got.log_message_bodies);
	assert_int_equal(got.connection_limit, 5000);
	gateway_clear(&got);
	assert_int_equal(raw_int(t->path, "SELECT count(*) FROM gateway"
					  " WHERE key = 'dialback_secret'"),
			 0);
	store_db_close(&db);
}

/* ---- atomicity and unreadable rows ---- */

static void test_commit_all_or_nothing(void **state)
{
	struct tdir *t = *state;
	struct store_db *db = open_ok(t);
	const char *shared[] = {"shared.test", NULL};
	struct partner *owner = mk("owner.test", 1, shared);
	struct partner *a = mk("a.test", 2, NULL);
	struct partner *b = mk("b.test", 3, shared);
	struct store_op first = {.kind = STORE_PUT_PARTNER, .partner = owner};
	struct store_op ops[2] = {{.kind = STORE_PUT_PARTNER, .partner = a},
				  {.kind = STORE_PUT_PARTNER, .partner = b}};
	struct audit_entry au = {
		.who = "root", .iface = "cli", .action = "partner new", .target = "b.test"};
	struct gateway_settings gw, got;
	struct store_op gwops[2] = {{.kind = STORE_PUT_GATEWAY, .gw = &gw},
				    {.kind = STORE_DELETE_PARTNER, .domain = "nobody.test"}};
	struct policy *pol;
	char err[512] = "";

	commit_ok(db, &first, 1, NULL, 0);
	assert_int_equal(store_db_commit(db, ops, 2, &au, 1, err, sizeof(err)), FG_INVAL);
	if (strstr(err, "shared.test") == NULL || strstr(err, "owner.test") == NULL ||
	    strstr(err, "b.test") == NULL)
		fail_msg("unexpected message: %s", err);
	pol = load_ok(db);
	assert_int_equal(policy_count(pol), 1);
	assert_null(policy_get(pol, "a.test"));
	expect_same(pol, owner);
	policy_free(&pol);
	assert_int_equal(raw_int(t->path, "SELECT count(*) FROM audit"), 0);

	/* The handle is usable after a rollback. */
	commit_ok(db, ops, 1, &au, 1);

	/* Settings changed first, then a delete that fails: old settings. */
	gateway_defaults(&gw);
	gw.connection_limit = 1;
	err[0] = '\0';
	assert_int_equal(store_db_commit(db, gwops, 2, NULL, 0, err, sizeof(err)), FG_NOTFOUND);
	assert_true(err[0] != '\0');
	assert_int_equal(store_db_load(db, NULL, &got, err, sizeof(err)), FG_OK);
	assert_int_equal(got.connection_limit, 1000);
	gateway_clear(&got);

	/* An audit record without its required fields fails the change too. */
	au.who = NULL;
	assert_int_equal(store_db_commit(db, &first, 1, &au, 1, err, sizeof(err)), FG_INVAL);
	assert_int_equal(raw_int(t->path, "SELECT count(*) FROM audit"), 1);

	store_db_close(&db);
	partner_free(&owner);
	partner_free(&a);
	partner_free(&b);
}

static void test_load_unreadable_row(void **state)
{
	struct tdir *t = *state;
	struct store_db *db = open_ok(t);
	struct policy *pol = NULL;
	struct gateway_settings gw;
	char err[512] = "";

	raw_exec(t->path, "INSERT INTO partners (domain, description, partner_type, tls, sasl,"
			  " dialback, keepalive, connection_limit, proxy_fqdn) VALUES ('odd.test',"
			  " '', 'federated', 'sometimes', 'required', 1, 1, 0, NULL)");
	assert_int_equal(store_db_load(db, &pol, &gw, err, sizeof(err)), FG_INVAL);
	assert_null(pol);
	assert_null(gw.dialback_secret);
	if (strstr(err, "odd.test") == NULL || strstr(err, "tls") == NULL ||
	    strstr(err, "sometimes") == NULL)
		fail_msg("unexpected message: %s", err);

	raw_exec(t->path, "UPDATE partners SET tls = 'Optional', dialback = 7");
	assert_int_equal(store_db_load(db, &pol, NULL, err, sizeof(err)), FG_INVAL);
	if (strstr(err, "odd.test") == NULL || strstr(err, "dialback") == NULL)
		fail_msg("unexpected message: %s", err);

	raw_exec(t->path, "DELETE FROM partners;"
			  "INSERT INTO gateway VALUES ('dialback_secret', 's3cr3t');"
			  "INSERT INTO gateway VALUES ('keepalive_interval', '-5')");
	assert_int_equal(store_db_load(db, &pol, &gw, err, sizeof(err)), FG_INVAL);
	assert_null(pol);
	assert_null(gw.dialback_secret); /* nothing half-loaded is left */
	if (strstr(err, "keepalive_interval") == NULL)
		fail_msg("unexpected message: %s", err);

	raw_exec(t->path, "DELETE FROM gateway; DELETE FROM partners;"
			  "INSERT INTO partners (domain, description, partner_type, tls, sasl,"
			  " dialback, keepalive, connection_limit, proxy_fqdn, dane) VALUES"
			  " ('odd.test', '', 'federated', 'required', 'required', 1, 1, 0, NULL,"
			  " 'maybe')");
	assert_int_equal(store_db_load(db, &pol, NULL, err, sizeof(err)), FG_INVAL);
	if (strstr(err, "odd.test") == NULL || strstr(err, "dane") == NULL ||
	    strstr(err, "maybe") == NULL)
		fail_msg("unexpected message: %s", err);
	raw_exec(t->path, "UPDATE partners SET dane = 'off', pins = 'short'");
	assert_int_equal(store_db_load(db, &pol, NULL, err, sizeof(err)), FG_INVAL);
	if (strstr(err, "pins") == NULL)
		fail_msg("unexpected message: %s", err);
	raw_exec(t->path, "DELETE FROM partners");

	/* A key from a later version is skipped, not fatal. */
	raw_exec(t->path, "DELETE FROM gateway; INSERT INTO gateway VALUES ('future_knob', 'x')");
	assert_int_equal(store_db_load(db, &pol, &gw, err, sizeof(err)), FG_OK);
	assert_int_equal(policy_count(pol), 0);
	policy_free(&pol);
	gateway_clear(&gw);
	store_db_close(&db);
}

/* Appends without partner_add_domain(), which would merge the duplicate. */
static void push_domain(struct partner *p, const char *d)
{
	char **v = realloc(p->additional_domains.v, (p->additional_domains.n + 1) * sizeof(*v));

	assert_non_null(v);
	p->additional_domains.v = v;
	v[p->additional_domains.n] = strdup(d);
	assert_non_null(v[p->additional_domains.n]);
	p->additional_domains.n++;
}

static void expect_refused(struct store_db *db, const struct store_op *ops, size_t nops,
			   const char *const *words)
{
	char err[512] = "";

	assert_int_equal(store_db_commit(db, ops, nops, NULL, 0, err, sizeof(err)), FG_INVAL);
	for (size_t i = 0; words[i] != NULL; i++) {
		if (strstr(err, words[i]) == NULL)
			fail_msg("\"%s\" not in: %s", words[i], err);
	}
}

/* The database keeps every domain to one partner even when the caller's
 * checks were bypassed, so a commit that succeeds can always be loaded. */
static void test_domain_conflicts(void **state)
{
	struct tdir *t = *state;
	struct store_db *db = open_ok(t);
	const char *e_owner[] = {"corp.owner.test", NULL};
	const char *e_primary[] = {"owner.test", NULL};
	const char *e_self[] = {"self.test", NULL};
	struct partner *owner = mk("owner.test", 1, e_owner);
	struct partner *steals_primary = mk("thief.test", 2, e_primary);
	struct partner *is_additional = mk("corp.owner.test", 3, NULL);
	struct partner *self = mk("self.test", 4, e_self);
	struct partner *twice = mk("twice.test", 5, NULL);
	const struct partner *dup[] = {owner, owner};
	struct store_op op = {.kind = STORE_PUT_PARTNER, .partner = owner};
	struct store_op rep = {.kind = STORE_REPLACE_PARTNERS, .partners = dup, .npartners = 2};
	struct policy *pol;

	commit_ok(db, &op, 1, NULL, 0);
	op.partner = steals_primary;
	expect_refused(db, &op, 1,
		       (const char *[]){"owner.test", "thief.test", "primary domain", NULL});
	op.partner = is_additional;
	expect_refused(db, &op, 1, (const char *[]){"corp.owner.test", "partner owner.test", NULL});
	op.partner = self;
	expect_refused(db, &op, 1, (const char *[]){"self.test", "its primary domain", NULL});
	push_domain(twice, "x.twice.test");
	push_domain(twice, "x.twice.test");
	op.partner = twice;
	expect_refused(db, &op, 1, (const char *[]){"twice.test", "x.twice.test", "twice;", NULL});
	expect_refused(db, &rep, 1, (const char *[]){"owner.test", "twice", NULL});

	pol = load_ok(db);
	assert_int_equal(policy_count(pol), 1);
	expect_same(pol, owner);
	policy_free(&pol);

	store_db_close(&db);
	partner_free(&owner);
	partner_free(&steals_primary);
	partner_free(&is_additional);
	partner_free(&self);
	partner_free(&twice);
}

/* ---- audit ---- */

struct audit_seen {
	size_t n, stop_after;
	long long ids[8], at[8];
	char action[8][32], target[8][32];
	bool before_null[8], after_null[8];
};

static int collect(void *ud, long long id, const struct audit_entry *e)
{
	struct audit_seen *s = ud;

	if (s->n < 8) {
		s->ids[s->n] = id;
		s->at[s->n] = e->at_ms;
		snprintf(s->action[s->n], sizeof(s->action[0]), "%s", e->action);
		snprintf(s->target[s->n], sizeof(s->target[0]), "%s", e->target);
		s->before_null[s->n] = e->before == NULL;
		s->after_null[s->n] = e->after == NULL;
	}
	s->n++;
	return s->stop_after != 0 && s->n >= s->stop_after;
}

static void test_audit(void **state)
{
	struct tdir *t = *state;
	struct store_db *db = open_ok(t);
	struct partner *p = mk("fabrikam.test", 1, NULL);
	struct store_op op = {.kind = STORE_PUT_PARTNER, .partner = p};
	struct audit_entry au[3] = {
		{.at_ms = 1000,
		 .who = "root",
		 .iface = "cli",
		 .action = "partner new",
		 .target = "fabrikam.test",
		 .after = "{\"domain\":\"fabrikam.test\"}"},
		{.at_ms = 3000,
		 .who = "alice",
		 .iface = "api",
		 .action = "partner set",
		 .target = "fabrikam.test",
		 .before = "{}",
		 .after = "{\"tls\":\"optional\"}"},
		{.at_ms = 2000,
		 .who = "bob",
		 .iface = "web",
		 .action = "gateway set",
		 .target = "gateway"},
	};
	struct audit_entry now = {.who = "root",
				  .iface = "control",
				  .action = "partner remove",
				  .target = "fabrikam.test",
				  .before = "{}"};
	struct store_op del = {.kind = STORE_DELETE_PARTNER, .domain = "fabrikam.test"};
	struct audit_seen s = {0};
	long long t0 = (long long)time(NULL) * 1000 - 1000;
	char err[256];

	commit_ok(db, &op, 1, au, 3);
	commit_ok(db, &del, 1, &now, 1);

	assert_int_equal(store_db_audit(db, 0, collect, &s, err, sizeof(err)), FG_OK);
	assert_int_equal(s.n, 4);
	for (size_t i = 1; i < 4; i++)
		assert_true(s.ids[i] > s.ids[i - 1]);
	/* Listed in the order written, whatever their timestamps. */
	assert_int_equal(s.at[0], 1000);
	assert_int_equal(s.at[1], 3000);
	assert_int_equal(s.at[2], 2000);
	assert_true(s.at[3] >= t0 && s.at[3] <= t0 + 60000);
	assert_string_equal(s.action[0], "partner new");
	assert_string_equal(s.target[2], "gateway");
	/* Kept in the record, left out where it is read after its action. */
	assert_null(audit_target_shown(s.action[2], s.target[2]));
	assert_string_equal(audit_target_shown(s.action[0], s.target[0]), "fabrikam.test");
	assert_string_equal(audit_target_shown("gateways set", "gateway"), "gateway");
	assert_true(s.before_null[0] && !s.after_null[0]);
	assert_true(!s.before_null[1] && !s.after_null[1]);
	assert_true(s.before_null[2] && s.after_null[2]);
	assert_string_equal(s.action[3], "partner remove");

	memset(&s, 0, sizeof(s));
	assert_int_equal(store_db_audit(db, 2000, collect, &s, err, sizeof(err)), FG_OK);
	assert_int_equal(s.n, 3);
	assert_int_equal(s.at[0], 3000);
	assert_int_equal(s.at[1], 2000);
	assert_string_equal(s.action[2], "partner remove");

	memset(&s, 0, sizeof(s));
	assert_int_equal(store_db_audit(db, t0 + 120000, collect, &s, err, sizeof(err)), FG_OK);
	assert_int_equal(s.n, 0);

	/* The callback stops the listing, and the statement stays reusable. */
	memset(&s, 0, sizeof(s));
	s.stop_after = 2;
	assert_int_equal(store_db_audit(db, 0, collect, &s, err, sizeof(err)), FG_OK);
	assert_int_equal(s.n, 2);
	memset(&s, 0, sizeof(s));
	assert_int_equal(store_db_audit(db, 0, collect, &s, err, sizeof(err)), FG_OK);
	assert_int_equal(s.n, 4);

	store_db_close(&db);
	partner_free(&p);
}

/* ---- the store thread ---- */

#define NJOBS 40

struct async_ctx {
	pthread_t main;
	struct event_base *base;
	struct store *st;
	int ran[NJOBS]; /* written on the store thread */
	int nran;
	bool job_on_main; /* a job ran on the loop thread */
	int load_rc;
	int done_order[NJOBS];
	int done_rc[NJOBS];
	char done_err[NJOBS][64];
	int ndone;
	int wrong_thread;
	int resubmit_rc;
	size_t loaded;
	bool timed_out;
};

struct job {
	struct async_ctx *ctx;
	int i;
	struct partner *p;
};

static int job_fn(struct store_db *db, void *ud, char *err, size_t errlen)
{
	struct job *j = ud;
	struct store_op op = {.kind = STORE_PUT_PARTNER, .partner = j->p};

	j->ctx->ran[j->ctx->nran++] = j->i;
	if (pthread_equal(pthread_self(), j->ctx->main))
		j->ctx->job_on_main = true;
	if (j->i % 5 == 4) {
		snprintf(err, errlen, "job %d refused", j->i);
		return FG_INVAL;
	}
	return store_db_commit(db, &op, 1, NULL, 0, err, errlen);
}

static int load_fn(struct store_db *db, void *ud, char *err, size_t errlen)
{
	struct async_ctx *ctx = ud;
	struct policy *pol = NULL;
	int rc = store_db_load(db, &pol, NULL, err, errlen);

	if (rc == FG_OK)
		ctx->loaded = policy_count(pol);
	policy_free(&pol);
	return rc;
}

static void done_fn(void *ud, int rc, const char *err)
{
	struct job *j = ud;
	struct async_ctx *ctx = j->ctx;

	if (!pthread_equal(pthread_self(), ctx->main))
		ctx->wrong_thread++;
	ctx->done_order[ctx->ndone] = j->i;
	ctx->done_rc[ctx->ndone] = rc;
	snprintf(ctx->done_err[ctx->ndone], sizeof(ctx->done_err[0]), "%s", err);
	ctx->ndone++;
}

static void load_done(void *ud, int rc, const char *err)
{
	struct async_ctx *ctx = ud;

	FG_UNUSED(err);
	if (!pthread_equal(pthread_self(), ctx->main))
		ctx->wrong_thread++;
	ctx->load_rc = rc;
	event_base_loopexit(ctx->base, NULL);
}

static struct job jobs[NJOBS];

static void submit_all(evutil_socket_t fd, short what, void *arg)
{
	struct async_ctx *ctx = arg;

	FG_UNUSED(fd);
	FG_UNUSED(what);
	for (int i = 0; i < NJOBS; i++)
		assert_int_equal(store_submit(ctx->st, job_fn, done_fn, &jobs[i]), FG_OK);
	assert_int_equal(store_submit(ctx->st, load_fn, load_done, ctx), FG_OK);
}

static void on_timeout(evutil_socket_t fd, short what, void *arg)
{
	struct async_ctx *ctx = arg;

	FG_UNUSED(fd);
	FG_UNUSED(what);
	ctx->timed_out = true;
	event_base_loopexit(ctx->base, NULL);
}

static void make_jobs(struct async_ctx *ctx)
{
	for (int i = 0; i < NJOBS; i++) {
		char d[32];

		snprintf(d, sizeof(d), "p%02d.test", i);
		jobs[i] = (struct job){.ctx = ctx, .i = i, .p = mk(d, (unsigned)i, NULL)};
	}
}

static void free_jobs(void)
{
	for (int i = 0; i < NJOBS; i++)
		partner_free(&jobs[i].p);
}

static void test_async_jobs(void **state)
{
	struct tdir *t = *state;
	static struct async_ctx ctx;
	struct timeval zero = {0, 0}, limit = {20, 0};

	memset(&ctx, 0, sizeof(ctx));
	ctx.main = pthread_self();
	ctx.base = event_base_new();
	assert_non_null(ctx.base);
	ctx.st = store_start(ctx.base, open_ok(t));
	assert_non_null(ctx.st);
	make_jobs(&ctx);

	assert_int_equal(event_base_once(ctx.base, -1, EV_TIMEOUT, submit_all, &ctx, &zero), 0);
	assert_int_equal(event_base_once(ctx.base, -1, EV_TIMEOUT, on_timeout, &ctx, &limit), 0);
	assert_int_equal(event_base_dispatch(ctx.base), 0);
	assert_false(ctx.timed_out);

	assert_int_equal(ctx.nran, NJOBS);
	assert_int_equal(ctx.ndone, NJOBS);
	assert_int_equal(ctx.wrong_thread, 0);
	for (int i = 0; i < NJOBS; i++) {
		assert_int_equal(ctx.ran[i], i);
		assert_int_equal(ctx.done_order[i], i);
		if (i % 5 == 4) {
			char want[32];

			snprintf(want, sizeof(want), "job %d refused", i);
			assert_int_equal(ctx.done_rc[i], FG_INVAL);
			assert_string_equal(ctx.done_err[i], want);
		} else {
			assert_int_equal(ctx.done_rc[i], FG_OK);
			assert_string_equal(ctx.done_err[i], "");
		}
	}
	assert_false(ctx.job_on_main);
	assert_int_equal(ctx.load_rc, FG_OK);
	assert_int_equal(ctx.loaded, NJOBS - NJOBS / 5);

	store_stop(&ctx.st);
	assert_null(ctx.st);
	store_stop(&ctx.st); /* NULL is accepted */
	event_base_free(ctx.base);
	free_jobs();
}

static int slow_fn(struct store_db *db, void *ud, char *err, size_t errlen)
{
	struct job *j = ud;
	struct timespec ts = {0, 2 * 1000 * 1000};

	FG_UNUSED(db);
	FG_UNUSED(err);
	FG_UNUSED(errlen);
	nanosleep(&ts, NULL);
	j->ctx->ran[j->ctx->nran++] = j->i;
	return FG_OK;
}

static void stop_done(void *ud, int rc, const char *err)
{
	struct job *j = ud;

	done_fn(ud, rc, err);
	/* Too late to queue more: the thread is stopping. */
	if (j->i == 0)
		j->ctx->resubmit_rc = store_submit(j->ctx->st, slow_fn, NULL, ud);
}

/* ---- keyed jobs (the pool) ---- */

#define NKEYED 141

struct kjob {
	struct kctx *ctx;
	int i;
	const char *key; /* NULL: store_submit */
	bool rendezvous; /* waits, bounded, until its partner job has started */
	int partner;
	bool met;
};

struct kctx {
	struct event_base *base;
	struct store *st;
	pthread_mutex_t mu;
	pthread_cond_t cv;
	struct kjob jobs[NKEYED];
	bool started[NKEYED], finished[NKEYED];
	int running, max_running;
	int bad; /* order violations seen by jobs */
	char why[200];
	int done_order[NKEYED], ndone;
	bool rendezvous;
};

static int noop_audit(void *ud, long long id, const struct audit_entry *e)
{
	FG_UNUSED(ud);
	FG_UNUSED(id);
	FG_UNUSED(e);
	return 0;
}

static int kjob_fn(struct store_db *db, void *ud, char *err, size_t errlen)
{
	struct kjob *j = ud;
	struct kctx *c = j->ctx;

	pthread_mutex_lock(&c->mu);
	/* Everything it may depend on finished: each earlier job of its key,
	 * each earlier barrier; a barrier, every earlier job, alone. */
	for (int k = 0; k < j->i; k++) {
		const struct kjob *e = &c->jobs[k];
		bool dep = j->key == NULL || e->key == NULL || strcmp(e->key, j->key) == 0;

		if (dep && !c->finished[k]) {
			c->bad++;
			snprintf(c->why, sizeof(c->why), "job %d started before job %d finished",
				 j->i, k);
		}
	}
	if (j->key == NULL && c->running != 0) {
		c->bad++;
		snprintf(c->why, sizeof(c->why), "barrier %d ran beside another job", j->i);
	}
	c->started[j->i] = true;
	c->running++;
	if (c->running > c->max_running)
		c->max_running = c->running;
	pthread_cond_broadcast(&c->cv);
	if (j->rendezvous) {
		struct timespec until;

		clock_gettime(CLOCK_REALTIME, &until);
		until.tv_sec += 10; /* a bound, not a measurement */
		while (!c->started[j->partner] &&
		       pthread_cond_timedwait(&c->cv, &c->mu, &until) == 0)
			;
		j->met = c->started[j->partner];
	}
	pthread_mutex_unlock(&c->mu);

	int rc = store_db_audit(db, 0, noop_audit, NULL, err, errlen);

	pthread_mutex_lock(&c->mu);
	c->running--;
	c->finished[j->i] = true;
	pthread_mutex_unlock(&c->mu);
	return rc;
}

static void kjob_done(void *ud, int rc, const char *err)
{
	struct kjob *j = ud;
	struct kctx *c = j->ctx;

	if (rc != FG_OK)
		fail_msg("job %d: %s", j->i, err);
	c->done_order[c->ndone++] = j->i;
	if (c->ndone == NKEYED)
		event_base_loopexit(c->base, NULL);
}

static void ksubmit(evutil_socket_t fd, short what, void *arg)
{
	struct kctx *c = arg;
	static const char *const keys[] = {"alice@contoso.test", "bob@contoso.test",
					   "carol@contoso.test"};

	FG_UNUSED(fd);
	FG_UNUSED(what);
	for (int i = 0; i < NKEYED; i++) {
		struct kjob *j = &c->jobs[i];

		*j = (struct kjob){.ctx = c, .i = i, .key = i % 10 == 9 ? NULL : keys[i % 3]};
		/* A run of one user's jobs longer than a worker looks ahead. */
		if (i >= 20 && i < 100)
			j->key = keys[0];
		/* The first two jobs of two keys meet: proof of two at once. */
		if (c->rendezvous && i < 2) {
			j->rendezvous = true;
			j->partner = 1 - i;
		}
		if (j->key == NULL)
			assert_int_equal(store_submit(c->st, kjob_fn, kjob_done, j), FG_OK);
		else
			assert_int_equal(store_submit_keyed(c->st, j->key, kjob_fn, kjob_done, j),
					 FG_OK);
	}
}

static void test_keyed_jobs(void **state)
{
	struct tdir *t = *state;
	static struct kctx c;
	struct timeval zero = {0, 0};

	memset(&c, 0, sizeof(c));
	pthread_mutex_init(&c.mu, NULL);
	pthread_cond_init(&c.cv, NULL);
	c.base = event_base_new();
	assert_non_null(c.base);
	c.st = store_start(c.base, open_ok(t));
	assert_non_null(c.st);
	/* SQLite: one worker; PostgreSQL: pool_size (2 in these tests). */
	assert_int_equal(store_workers(c.st), test_pg() ? 2 : 1);
	c.rendezvous = store_workers(c.st) > 1;
	assert_int_equal(event_base_once(c.base, -1, EV_TIMEOUT, ksubmit, &c, &zero), 0);
	assert_int_equal(event_base_dispatch(c.base), 0);
	assert_int_equal(c.ndone, NKEYED);
	if (c.bad != 0)
		fail_msg("%d order violations, e.g. %s", c.bad, c.why);
	for (int i = 0; i < NKEYED; i++)
		assert_int_equal(c.done_order[i], i);
	if (c.rendezvous) {
		assert_true(c.jobs[0].met && c.jobs[1].met);
		assert_int_equal(c.max_running, 2);
	} else {
		assert_int_equal(c.max_running, 1);
	}
	printf("%d keyed jobs and barriers on %u worker(s): at most %d at once, order kept\n",
	       NKEYED, store_workers(c.st), c.max_running);
	store_stop(&c.st);
	event_base_free(c.base);
	pthread_cond_destroy(&c.cv);
	pthread_mutex_destroy(&c.mu);
}

static void test_stop_runs_pending(void **state)
{
	struct tdir *t = *state;
	static struct async_ctx ctx;

	memset(&ctx, 0, sizeof(ctx));
	ctx.main = pthread_self();
	ctx.base = event_base_new();
	assert_non_null(ctx.base);
	ctx.st = store_start(ctx.base, open_ok(t));
	assert_non_null(ctx.st);
	make_jobs(&ctx);
	for (int i = 0; i < NJOBS; i++)
		assert_int_equal(store_submit(ctx.st, slow_fn, stop_done, &jobs[i]), FG_OK);
	/* No loop ever runs: store_stop itself must finish everything. */
	store_stop(&ctx.st);
	assert_null(ctx.st);

	assert_int_equal(ctx.nran, NJOBS);
	assert_int_equal(ctx.ndone, NJOBS);
	assert_int_equal(ctx.wrong_thread, 0);
	for (int i = 0; i < NJOBS; i++) {
		assert_int_equal(ctx.ran[i], i);
		assert_int_equal(ctx.done_order[i], i);
	}
	assert_int_equal(ctx.resubmit_rc, FG_ERR);
	event_base_free(ctx.base);
	free_jobs();
}

/* With no file descriptor left for the wake-up pipe, store_start fails
 * cleanly and the database is still the caller's. */
static void test_start_failure(void **state)
{
	struct tdir *t = *state;
	struct store_db *db = open_ok(t);
	struct event_base *base = event_base_new();
	struct partner *p = mk("fabrikam.test", 1, NULL);
	struct store_op op = {.kind = STORE_PUT_PARTNER, .partner = p};
	struct rlimit old, low;
	struct store *st;
	int lowest = dup(0);

	assert_non_null(base);
	assert_true(lowest >= 0);
	close(lowest);
	assert_int_equal(getrlimit(RLIMIT_NOFILE, &old), 0);
	low = old;
	low.rlim_cur = (rlim_t)lowest;
	assert_int_equal(setrlimit(RLIMIT_NOFILE, &low), 0);
	st = store_start(base, db);
	assert_int_equal(setrlimit(RLIMIT_NOFILE, &old), 0);
	assert_null(st);

	commit_ok(db, &op, 1, NULL, 0);
	store_db_close(&db);
	event_base_free(base);
	partner_free(&p);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_open_creates_schema, setup, teardown),
		cmocka_unit_test_setup_teardown(test_reopen_keeps_data, setup, teardown),
		cmocka_unit_test_setup_teardown(test_newer_schema_refused, setup, teardown),
		cmocka_unit_test_setup_teardown(test_missing_folder_refused, setup, teardown),
		cmocka_unit_test_setup_teardown(test_not_a_database_refused, setup, teardown),
		cmocka_unit_test_setup_teardown(test_partner_round_trip, setup, teardown),
		cmocka_unit_test_setup_teardown(test_partner_replace, setup, teardown),
		cmocka_unit_test_setup_teardown(test_partner_delete, setup, teardown),
		cmocka_unit_test_setup_teardown(test_replace_partners, setup, teardown),
		cmocka_unit_test_setup_teardown(test_gateway_round_trip, setup, teardown),
		cmocka_unit_test_setup_teardown(test_commit_all_or_nothing, setup, teardown),
		cmocka_unit_test_setup_teardown(test_domain_conflicts, setup, teardown),
		cmocka_unit_test_setup_teardown(test_load_unreadable_row, setup, teardown),
		cmocka_unit_test_setup_teardown(test_audit, setup, teardown),
		cmocka_unit_test_setup_teardown(test_async_jobs, setup, teardown),
		cmocka_unit_test_setup_teardown(test_keyed_jobs, setup, teardown),
		cmocka_unit_test_setup_teardown(test_stop_runs_pending, setup, teardown),
		cmocka_unit_test_setup_teardown(test_start_failure, setup, teardown),
	};

	log_set_level(LOG_WARNING);
	return cmocka_run_group_tests(tests, NULL, NULL);
}

/* The store on PostgreSQL only (run as unit.test_store_pg.pg, under
 * tests/unit/pg_run.sh): a refused change leaves every table as it was,
 * a commit of partners or gateway settings notifies fedgate_config once
 * (and a refused one never), nodes opening one fresh database together
 * migrate it once and agree on one dialback secret, a dead connection
 * fails a commit with a clear sentence and the next one reconnects, and
 * the dsn's password is never shown. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "fg.h"
#include "policy.h"
#include "store_sqlite.h"
#include "store_testdir.h"

#include <jansson.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>

static struct partner *mk(const char *domain, const char *extra)
{
	struct partner *p = partner_new(domain);

	assert_non_null(p);
	if (extra != NULL)
		assert_int_equal(partner_add_domain(p, extra), FG_OK);
	return p;
}

/* Every row of the tables a partner change touches, as one text. */
static char *snapshot(void)
{
	PGconn *c = raw_pg();
	PGresult *r = PQexec(
		c, "SELECT concat_ws('|',"
		   " (SELECT string_agg(concat_ws(',', domain, description, tls, connection_limit,"
		   " enabled), ';' ORDER BY domain) FROM partners),"
		   " (SELECT string_agg(domain || '>' || partner, ';' ORDER BY domain)"
		   " FROM partner_domains),"
		   " (SELECT string_agg(key || '=' || value, ';' ORDER BY key) FROM gateway),"
		   " (SELECT string_agg(concat_ws(',', id, who, action, target, after), ';'"
		   " ORDER BY id) FROM audit))");
	char *s;

	if (PQresultStatus(r) != PGRES_TUPLES_OK)
		fail_msg("snapshot: %s", PQerrorMessage(c));
	s = strdup(PQgetvalue(r, 0, 0));
	PQclear(r);
	PQfinish(c);
	assert_non_null(s);
	return s;
}

static int fail_custom(struct store_db *db, const void *arg, char *err, size_t errlen)
{
	(void)db;
	(void)arg;
	snprintf(err, errlen, "refused by the custom op");
	return FG_INVAL;
}

static void test_refused_change_untouched(void **state)
{
	struct store_db *db = open_ok(*state);
	struct partner *a = mk("fabrikam.test", "corp.fabrikam.test"), *b = mk("adatum.test", NULL);
	struct partner *c = mk("corp.fabrikam.test", NULL), *d = mk("litware.test", NULL);
	struct gateway_settings gw;
	struct store_op ops[3];
	struct audit_entry au = {.who = "root",
				 .iface = "cli",
				 .action = "partner set",
				 .target = "x",
				 .after = "{}"};
	char err[512] = "", *before, *after;

	gateway_defaults(&gw);
	ops[0] = (struct store_op){.kind = STORE_PUT_PARTNER, .partner = a};
	ops[1] = (struct store_op){.kind = STORE_PUT_PARTNER, .partner = b};
	assert_int_equal(store_db_commit(db, ops, 2, &au, 1, err, sizeof(err)), FG_OK);
	before = snapshot();

	/* A new partner first (fine), then a domain of another partner. */
	gw.connection_limit = 7;
	ops[0] = (struct store_op){.kind = STORE_PUT_PARTNER, .partner = d};
	ops[1] = (struct store_op){.kind = STORE_PUT_GATEWAY, .gw = &gw};
	ops[2] = (struct store_op){.kind = STORE_NEW_PARTNER, .partner = c};
	assert_int_equal(store_db_commit(db, ops, 3, &au, 1, err, sizeof(err)), FG_INVAL);
	if (strstr(err, "already an additional domain of partner fabrikam.test") == NULL ||
	    strstr(err, "nothing was saved") == NULL)
		fail_msg("unexpected message: %s", err);
	after = snapshot();
	assert_string_equal(after, before);
	free(after);

	/* A custom op failing after partner and gateway writes. */
	ops[2] = (struct store_op){.kind = STORE_CUSTOM, .custom = fail_custom};
	assert_int_equal(store_db_commit(db, ops, 3, &au, 1, err, sizeof(err)), FG_INVAL);
	assert_string_equal(err, "refused by the custom op");
	after = snapshot();
	assert_string_equal(after, before);
	printf("refused changes left PostgreSQL untouched: %s\n", after);
	free(after);
	free(before);

	/* And the handle goes on working. */
	assert_int_equal(store_db_commit(db, ops, 2, &au, 1, err, sizeof(err)), FG_OK);
	assert_int_equal(raw_int((*(struct tdir **)state)->path, "SELECT count(*) FROM partners"),
			 3);
	partner_free(&a);
	partner_free(&b);
	partner_free(&c);
	partner_free(&d);
	store_db_close(&db);
}

/* The notifications that arrive on c by the time one with "last" in its
 * actions is there (the test commits that one last). */
static size_t collect(PGconn *c, char **got, size_t max)
{
	size_t n = 0;
	bool last = false;

	while (!last) {
		struct pollfd p = {.fd = PQsocket(c), .events = POLLIN};
		PGnotify *nt;

		/* Bounded, not timed: a missing notification fails here. */
		if (poll(&p, 1, 10000) != 1)
			fail_msg("no notification within 10 s");
		assert_int_equal(PQconsumeInput(c), 1);
		while ((nt = PQnotifies(c)) != NULL) {
			assert_string_equal(nt->relname, "fedgate_config");
			if (strstr(nt->extra, "partner delete last.test") != NULL)
				last = true;
			else if (n < max)
				got[n++] = strdup(nt->extra);
			PQfreemem(nt);
		}
	}
	return n;
}

static void test_commit_notifies_once(void **state)
{
	struct store_db *db = open_ok(*state);
	PGconn *l = raw_pg();
	PGresult *r = PQexec(l, "LISTEN fedgate_config");
	struct partner *a = mk("fabrikam.test", "corp.fabrikam.test");
	struct partner *bad = mk("corp.fabrikam.test", NULL), *last = mk("last.test", NULL);
	struct audit_entry au = {
		.who = "root", .iface = "cli", .action = "partner set", .target = "fabrikam.test"};
	struct store_op op = {.kind = STORE_PUT_PARTNER, .partner = a};
	char err[512] = "", *got[8];
	json_error_t je;
	json_t *j;
	size_t n;

	assert_int_equal(PQresultStatus(r), PGRES_COMMAND_OK);
	PQclear(r);
	assert_int_equal(store_db_commit(db, &op, 1, &au, 1, err, sizeof(err)), FG_OK);
	/* Refused: rolled back, so never delivered. */
	op = (struct store_op){.kind = STORE_NEW_PARTNER, .partner = bad};
	assert_int_equal(store_db_commit(db, &op, 1, NULL, 0, err, sizeof(err)), FG_INVAL);
	/* No partner or gateway op: no notification either. */
	assert_int_equal(store_db_commit(db, NULL, 0, &au, 1, err, sizeof(err)), FG_OK);
	op = (struct store_op){.kind = STORE_PUT_PARTNER, .partner = last};
	assert_int_equal(store_db_commit(db, &op, 1, NULL, 0, err, sizeof(err)), FG_OK);
	op = (struct store_op){.kind = STORE_DELETE_PARTNER, .domain = "last.test"};
	assert_int_equal(store_db_commit(db, &op, 1, NULL, 0, err, sizeof(err)), FG_OK);

	n = collect(l, got, 8);
	assert_int_equal(n, 2);
	printf("notification: %s\n", got[0]);
	j = json_loads(got[0], 0, &je);
	assert_non_null(j);
	assert_string_equal(json_string_value(json_object_get(j, "node")), "test");
	assert_true(json_integer_value(json_object_get(j, "at_ms")) > 1700000000000LL);
	assert_int_equal(json_array_size(json_object_get(j, "actions")), 1);
	assert_string_equal(json_string_value(json_array_get(json_object_get(j, "actions"), 0)),
			    "partner set fabrikam.test");
	json_decref(j);
	assert_non_null(strstr(got[1], "\"actions\":[\"partner set last.test\"]"));
	for (size_t i = 0; i < n; i++)
		free(got[i]);
	PQfinish(l);
	partner_free(&a);
	partner_free(&bad);
	partner_free(&last);
	store_db_close(&db);
}

struct racer {
	const struct tdir *t;
	pthread_barrier_t *go;
	char secret[16];
	char *kept;
	int rc_open, rc_secret;
	char err[512];
};

static void *race(void *arg)
{
	struct racer *r = arg;
	struct store_db *db = NULL;
	struct audit_entry a = {
		.who = "fedgate", .iface = "startup", .action = "gateway set", .target = "gateway"};

	pthread_barrier_wait(r->go);
	r->rc_open = test_open(r->t, &db, r->err, sizeof(r->err));
	if (r->rc_open == FG_OK)
		r->rc_secret = store_db_dialback_secret(db, r->secret, &a, &r->kept, r->err,
							sizeof(r->err));
	store_db_close(&db);
	return NULL;
}

/* Four nodes start on one fresh database at once. */
/* An import of many partners: PostgreSQL refuses a payload of 8000 bytes or
 * more (and with it the commit), so the actions that do not fit are
 * counted instead. */
static void test_big_import_notifies(void **state)
{
	enum { N = 400 };
	struct store_db *db = open_ok(*state);
	PGconn *l = raw_pg();
	PGresult *r = PQexec(l, "LISTEN fedgate_config");
	struct partner *p[N];
	struct audit_entry au[N];
	char names[N][48], err[512] = "";
	struct store_op op = {.kind = STORE_REPLACE_PARTNERS, .npartners = N};
	struct partner *last = mk("last.test", NULL);
	char *got[2];
	json_error_t je;
	json_t *j;

	PQclear(r);
	for (int i = 0; i < N; i++) {
		snprintf(names[i], sizeof(names[i]), "partner-number-%03d.example.test", i);
		p[i] = mk(names[i], NULL);
		au[i] = (struct audit_entry){.who = "root",
					     .iface = "import",
					     .action = "partner set",
					     .target = names[i]};
	}
	op.partners = (const struct partner *const *)p;
	assert_int_equal(store_db_commit(db, &op, 1, au, N, err, sizeof(err)), FG_OK);
	op = (struct store_op){.kind = STORE_PUT_PARTNER, .partner = last};
	assert_int_equal(store_db_commit(db, &op, 1, NULL, 0, err, sizeof(err)), FG_OK);
	op = (struct store_op){.kind = STORE_DELETE_PARTNER, .domain = "last.test"};
	assert_int_equal(store_db_commit(db, &op, 1, NULL, 0, err, sizeof(err)), FG_OK);
	assert_int_equal(collect(l, got, 2), 2);
	assert_true(strlen(got[0]) < 8000);
	j = json_loads(got[0], 0, &je);
	assert_non_null(j);
	size_t n = json_array_size(json_object_get(j, "actions"));
	json_int_t more = json_integer_value(json_object_get(j, "more"));
	printf("import of %d partners: one notification of %zu bytes, %zu actions + %lld more\n", N,
	       strlen(got[0]), n, (long long)more);
	assert_true(n > 0 && more > 0);
	assert_int_equal(n + (size_t)more, N);
	json_decref(j);
	free(got[0]);
	free(got[1]);
	for (int i = 0; i < N; i++)
		partner_free(&p[i]);
	partner_free(&last);
	PQfinish(l);
	store_db_close(&db);
}

static void test_nodes_start_together(void **state)
{
	struct tdir *t = *state;
	enum { N = 4 };
	struct racer r[N];
	pthread_t th[N];
	pthread_barrier_t go;

	pthread_barrier_init(&go, NULL, N);
	for (int i = 0; i < N; i++) {
		r[i] = (struct racer){.t = t, .go = &go};
		snprintf(r[i].secret, sizeof(r[i].secret), "secret-%d", i);
		assert_int_equal(pthread_create(&th[i], NULL, race, &r[i]), 0);
	}
	for (int i = 0; i < N; i++)
		pthread_join(th[i], NULL);
	pthread_barrier_destroy(&go);
	for (int i = 0; i < N; i++) {
		if (r[i].rc_open != FG_OK || r[i].rc_secret != FG_OK)
			fail_msg("node %d: %s", i, r[i].err);
		assert_string_equal(r[i].kept, r[0].kept);
	}
	printf("%d nodes agree on the dialback secret %s\n", N, r[0].kept);
	assert_int_equal(raw_int(t->path, "SELECT count(*) FROM fedgate_schema"), 1);
	assert_int_equal(raw_int(t->path, "SELECT count(*) FROM audit"), 1);
	for (int i = 0; i < N; i++)
		free(r[i].kept);
}

static int kill_me(struct store_db *db, const void *arg, char *err, size_t errlen)
{
	(void)db;
	(void)err;
	(void)errlen;
	/* The store's own connection dies in the middle of the transaction. */
	raw_exec(((const struct tdir *)arg)->path,
		 "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
		 " WHERE application_name = 'fedgate' AND pid <> pg_backend_pid()");
	return FG_OK;
}

static int count_audit(void *ud, long long id, const struct audit_entry *e)
{
	(void)id;
	(void)e;
	(*(int *)ud)++;
	return 0;
}

static void test_lost_connection(void **state)
{
	struct tdir *t = *state;
	struct store_db *db = open_ok(t);
	struct partner *a = mk("fabrikam.test", NULL), *b = mk("adatum.test", NULL);
	struct store_op ops[3] = {
		{.kind = STORE_PUT_PARTNER, .partner = a},
		{.kind = STORE_CUSTOM, .custom = kill_me, .custom_arg = t},
		{.kind = STORE_PUT_PARTNER, .partner = b},
	};
	struct policy *pol = NULL;
	char err[512] = "";
	int n = 0;

	assert_int_equal(store_db_commit(db, ops, 3, NULL, 0, err, sizeof(err)), FG_ERR);
	printf("%s\n", err);
	assert_non_null(strstr(err, "the store (PostgreSQL) cannot be reached: "));
	assert_non_null(strstr(err, "; nothing was saved"));
	assert_int_equal(raw_int(t->path, "SELECT count(*) FROM partners"), 0);
	/* The next job reconnects by itself. */
	assert_int_equal(store_db_commit(db, ops, 1, NULL, 0, err, sizeof(err)), FG_OK);
	assert_int_equal(store_db_load(db, &pol, NULL, err, sizeof(err)), FG_OK);
	assert_int_equal(policy_count(pol), 1);
	policy_free(&pol);
	/* Killed between jobs: the next one reconnects before it starts. */
	raw_exec(t->path, "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
			  " WHERE application_name = 'fedgate'");
	ops[0].partner = b;
	assert_int_equal(store_db_commit(db, ops, 1, NULL, 0, err, sizeof(err)), FG_OK);
	assert_int_equal(raw_int(t->path, "SELECT count(*) FROM partners"), 2);
	/* A read outside a transaction is asked again on a new connection. */
	raw_exec(t->path, "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
			  " WHERE application_name = 'fedgate'");
	assert_int_equal(store_db_audit(db, 0, count_audit, &n, err, sizeof(err)), FG_OK);
	assert_int_equal(n, 0);
	partner_free(&a);
	partner_free(&b);
	store_db_close(&db);
}

static void test_dsn_masked(void **state)
{
	char buf[300], pw[64];

	(void)state;
	store_dsn_masked("host=db1 password=s3cr3t dbname=fg", buf, sizeof(buf));
	assert_string_equal(buf, "host=db1 password=*** dbname=fg");
	store_dsn_masked("host=db1 password = 'a b\\'c' user=x", buf, sizeof(buf));
	assert_string_equal(buf, "host=db1 password=*** user=x");
	store_dsn_masked("postgresql://fg:s3cr3t@db1:5432/fg", buf, sizeof(buf));
	assert_string_equal(buf, "postgresql://fg:***@db1:5432/fg");
	store_dsn_masked("postgresql://fg@db1:5432/fg", buf, sizeof(buf));
	assert_string_equal(buf, "postgresql://fg@db1:5432/fg");
	store_dsn_split("host=db1 password='a b\\'c' user=x", buf, sizeof(buf), pw, sizeof(pw));
	assert_string_equal(buf, "host=db1 user=x");
	assert_string_equal(pw, "a b'c");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_refused_change_untouched, setup, teardown),
		cmocka_unit_test_setup_teardown(test_commit_notifies_once, setup, teardown),
		cmocka_unit_test_setup_teardown(test_big_import_notifies, setup, teardown),
		cmocka_unit_test_setup_teardown(test_nodes_start_together, setup, teardown),
		cmocka_unit_test_setup_teardown(test_lost_connection, setup, teardown),
		cmocka_unit_test(test_dsn_masked),
	};

	if (!test_pg()) {
		fprintf(stderr,
			"test_store_pg: set FG_TEST_PG (run it under tests/unit/pg_run.sh)\n");
		return 1;
	}
	return cmocka_run_group_tests(tests, NULL, NULL);
}

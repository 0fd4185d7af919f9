/* Unit tests for src/store/store_pep.c: nodes with their configuration,
 * items newest first with replacement and trimming to max_items (one kept
 * when the node does not persist), retract, purge, delete, the list of
 * nodes with their newest item, and a user's removal taking them all. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "fg.h"
#include "sasl.h"
#include "store_pep.h"
#include "store_sqlite.h"
#include "store_testdir.h"
#include "store_users.h"
#include "users.h"

#define ALICE "alice@contoso.test"

static void add_user(struct store_db *db, const char *jid)
{
	char err[512] = "";
	struct account *a = account_new(jid);
	assert_non_null(a);
	assert_int_equal(sasl_creds_from_password("pw-pw-pw-pw", 4096, &a->creds), FG_OK);
	struct store_op op = store_op_put_user(a);
	struct audit_entry au = {.who = "test", .iface = "cli", .action = "user", .target = jid};
	if (store_db_commit(db, &op, 1, &au, 1, err, sizeof(err)) != FG_OK)
		fail_msg("commit: %s", err);
	account_free(&a);
}

struct got {
	char ids[16][32];
	size_t n;
};

static int got_item(void *ud, const char *id, const char *xml, long long at_ms)
{
	struct got *g = ud;
	(void)at_ms;
	assert_non_null(xml);
	snprintf(g->ids[g->n++], sizeof(g->ids[0]), "%s", id);
	return 0;
}

static struct got items(struct store_db *db, const char *node, const char *const *ids, size_t nids,
			long max)
{
	struct got g = {0};
	char err[512] = "";
	if (store_db_pep_items(db, ALICE, node, ids, nids, max, got_item, &g, err, sizeof(err)) !=
	    FG_OK)
		fail_msg("items: %s", err);
	return g;
}

static void put(struct store_db *db, const char *node, const char *id, long keep)
{
	char err[512] = "";
	if (store_db_pep_item_put(db, ALICE, node, id, "<message xmlns='jabber:server'/>", 1, keep,
				  err, sizeof(err)) != FG_OK)
		fail_msg("item put: %s", err);
}

static int got_node(void *ud, const char *node, const struct pubsub_conf *c, const char *id,
		    const char *xml)
{
	struct got *g = ud;
	(void)c;
	(void)xml;
	snprintf(g->ids[g->n++], sizeof(g->ids[0]), "%s=%s", node, id ? id : "-");
	return 0;
}

static void test_nodes_and_items(void **state)
{
	struct tdir *t = *state;
	char err[512] = "";
	struct store_db *db = open_ok(t);
	add_user(db, ALICE);

	struct pubsub_conf c = {PUBSUB_OPEN, 3, true}, back;
	bool found = true;
	assert_int_equal(store_db_pep_node_get(db, ALICE, "n", &back, &found, err, sizeof(err)),
			 FG_OK);
	assert_false(found);
	assert_int_equal(store_db_pep_node_put(db, ALICE, "n", &c, err, sizeof(err)), FG_OK);
	assert_int_equal(store_db_pep_node_get(db, ALICE, "n", &back, &found, err, sizeof(err)),
			 FG_OK);
	assert_true(found);
	assert_int_equal(back.access, PUBSUB_OPEN);
	assert_int_equal(back.max_items, 3);
	assert_true(back.persist);

	for (int i = 0; i < 5; i++) {
		char id[8];
		snprintf(id, sizeof(id), "i%d", i);
		put(db, "n", id, 3);
	}
	struct got g = items(db, "n", NULL, 0, 0);
	assert_int_equal(g.n, 3);
	assert_string_equal(g.ids[0], "i4");
	assert_string_equal(g.ids[2], "i2");
	/* the same id again is the newest */
	put(db, "n", "i2", 3);
	g = items(db, "n", NULL, 0, 2);
	assert_int_equal(g.n, 2);
	assert_string_equal(g.ids[0], "i2");
	assert_string_equal(g.ids[1], "i4");
	const char *ids[] = {"i3", "nope"};
	g = items(db, "n", ids, 2, 0);
	assert_int_equal(g.n, 1);
	assert_string_equal(g.ids[0], "i3");

	assert_int_equal(store_db_pep_retract(db, ALICE, "n", "i3", &found, err, sizeof(err)),
			 FG_OK);
	assert_true(found);
	assert_int_equal(store_db_pep_retract(db, ALICE, "n", "i3", &found, err, sizeof(err)),
			 FG_OK);
	assert_false(found);

	/* no longer persistent: the newest alone stays */
	c.persist = false;
	assert_int_equal(store_db_pep_node_put(db, ALICE, "n", &c, err, sizeof(err)), FG_OK);
	g = items(db, "n", NULL, 0, 0);
	assert_int_equal(g.n, 1);
	assert_string_equal(g.ids[0], "i2");

	struct pubsub_conf d = {PUBSUB_PRESENCE, 1, true};
	assert_int_equal(store_db_pep_node_put(db, ALICE, "m", &d, err, sizeof(err)), FG_OK);
	long n = 0;
	assert_int_equal(store_db_pep_node_count(db, ALICE, &n, err, sizeof(err)), FG_OK);
	assert_int_equal(n, 2);
	g = (struct got){0};
	assert_int_equal(store_db_pep_nodes(db, ALICE, got_node, &g, err, sizeof(err)), FG_OK);
	assert_int_equal(g.n, 2);
	assert_string_equal(g.ids[0], "m=-");
	assert_string_equal(g.ids[1], "n=i2");

	assert_int_equal(store_db_pep_purge(db, ALICE, "n", err, sizeof(err)), FG_OK);
	assert_int_equal(items(db, "n", NULL, 0, 0).n, 0);
	put(db, "n", "x", 3);
	assert_int_equal(store_db_pep_node_delete(db, ALICE, "n", &found, err, sizeof(err)), FG_OK);
	assert_true(found);
	assert_int_equal(raw_int(t->path, "SELECT count(*) FROM pep_items"), 0);
	assert_int_equal(store_db_pep_node_delete(db, ALICE, "n", &found, err, sizeof(err)), FG_OK);
	assert_false(found);

	/* a node for no user is refused (the foreign key) */
	assert_int_not_equal(
		store_db_pep_node_put(db, "nobody@contoso.test", "n", &c, err, sizeof(err)), FG_OK);
	store_db_close(&db);
}

static void test_user_removal_takes_nodes(void **state)
{
	struct tdir *t = *state;
	char err[512] = "";
	struct store_db *db = open_ok(t);
	add_user(db, ALICE);
	struct pubsub_conf c = {PUBSUB_PRESENCE, 5, true};
	assert_int_equal(store_db_pep_node_put(db, ALICE, "n", &c, err, sizeof(err)), FG_OK);
	put(db, "n", "a", 5);
	struct store_op op = store_op_delete_user(ALICE);
	struct audit_entry au = {.who = "test", .iface = "cli", .action = "user", .target = ALICE};
	assert_int_equal(store_db_commit(db, &op, 1, &au, 1, err, sizeof(err)), FG_OK);
	assert_int_equal(raw_int(t->path, "SELECT count(*) FROM pep_nodes"), 0);
	assert_int_equal(raw_int(t->path, "SELECT count(*) FROM pep_items"), 0);
	store_db_close(&db);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_nodes_and_items, setup, teardown),
		cmocka_unit_test_setup_teardown(test_user_removal_takes_nodes, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}

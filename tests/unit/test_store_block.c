/* Unit tests for src/store/store_block.c (XEP-0191 blocklists, migration
 * 9) and the roster versions of store_users.c (migration 10): saved,
 * loaded back, removed one by one or all at once, refused for a user that
 * does not exist, and gone with their user (`fedgate user remove`). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "fg.h"
#include "sasl.h"
#include "store_block.h"
#include "store_sqlite.h"
#include "store_testdir.h"
#include "store_users.h"
#include "users.h"

static void commit_ok(struct store_db *db, const struct store_op *ops, size_t nops)
{
	char err[512] = "";
	struct audit_entry a = {.who = "test", .iface = "cli", .action = "user", .target = "t"};

	if (store_db_commit(db, ops, nops, &a, 1, err, sizeof(err)) != FG_OK)
		fail_msg("store_db_commit: %s", err);
}

static void add_user(struct store_db *db, const char *jid)
{
	struct account *a = account_new(jid);

	assert_non_null(a);
	assert_int_equal(sasl_creds_from_password("pw-pw-pw-pw", 4096, &a->creds), FG_OK);
	a->created_ms = 1;
	struct store_op op = store_op_put_user(a);
	commit_ok(db, &op, 1);
	account_free(&a);
}

struct seen {
	char text[1024];
};

static int collect(void *ud, const char *owner, const char *jid)
{
	struct seen *s = ud;
	size_t n = strlen(s->text);

	snprintf(s->text + n, sizeof(s->text) - n, "%s>%s;", owner, jid);
	return 0;
}

static const char *loaded(struct store_db *db, struct seen *s)
{
	char err[512] = "";

	s->text[0] = '\0';
	if (store_db_block_load(db, collect, s, err, sizeof(err)) != FG_OK)
		fail_msg("store_db_block_load: %s", err);
	return s->text;
}

static void test_blocklists_are_saved_removed_and_go_with_their_user(void **state)
{
	struct tdir *t = *state;
	struct store_db *db = open_ok(t);
	struct seen s;
	char err[512] = "";
	const char *two[] = {"bob@fabrikam.test", "fabrikam.test"};
	const char *one[] = {"carol@contoso.test"};

	add_user(db, "alice@contoso.test");
	add_user(db, "dave@contoso.test");
	assert_string_equal(loaded(db, &s), "");
	assert_int_equal(store_db_block_add(db, "alice@contoso.test", two, 2, err, sizeof(err)),
			 FG_OK);
	/* Blocking again what is there changes nothing. */
	assert_int_equal(store_db_block_add(db, "alice@contoso.test", two, 1, err, sizeof(err)),
			 FG_OK);
	assert_int_equal(store_db_block_add(db, "dave@contoso.test", one, 1, err, sizeof(err)),
			 FG_OK);
	assert_string_equal(loaded(db, &s), "alice@contoso.test>bob@fabrikam.test;"
					    "alice@contoso.test>fabrikam.test;"
					    "dave@contoso.test>carol@contoso.test;");
	/* Nobody's list for a user that does not exist, and nothing of it. */
	assert_int_equal(store_db_block_add(db, "nobody@contoso.test", two, 2, err, sizeof(err)),
			 FG_NOTFOUND);
	assert_non_null(strstr(err, "nobody@contoso.test"));
	assert_int_equal(raw_int(t->path, "SELECT count(*) FROM blocklist"), 3);

	assert_int_equal(
		store_db_block_remove(db, "alice@contoso.test", two + 1, 1, err, sizeof(err)),
		FG_OK);
	assert_string_equal(loaded(db, &s), "alice@contoso.test>bob@fabrikam.test;"
					    "dave@contoso.test>carol@contoso.test;");
	assert_int_equal(store_db_block_add(db, "alice@contoso.test", two, 2, err, sizeof(err)),
			 FG_OK);
	/* Unblock everything: alice's only. */
	assert_int_equal(store_db_block_remove(db, "alice@contoso.test", NULL, 0, err, sizeof(err)),
			 FG_OK);
	assert_string_equal(loaded(db, &s), "dave@contoso.test>carol@contoso.test;");

	/* `fedgate user remove`: the blocklist goes with the user. */
	struct store_op del = store_op_delete_user("dave@contoso.test");
	commit_ok(db, &del, 1);
	assert_string_equal(loaded(db, &s), "");
	store_db_close(&db);
}

static int collect_ver(void *ud, const char *user, unsigned long long ver)
{
	struct seen *s = ud;
	size_t n = strlen(s->text);

	snprintf(s->text + n, sizeof(s->text) - n, "%s=%llu;", user, ver);
	return 0;
}

static void test_roster_versions_are_kept_and_go_with_their_user(void **state)
{
	struct tdir *t = *state;
	struct store_db *db = open_ok(t);
	struct seen s = {.text = ""};
	char err[512] = "";

	add_user(db, "alice@contoso.test");
	assert_int_equal(store_db_roster_ver_put(db, "alice@contoso.test", 1, err, sizeof(err)),
			 FG_OK);
	assert_int_equal(store_db_roster_ver_put(db, "alice@contoso.test", 7, err, sizeof(err)),
			 FG_OK);
	assert_int_equal(store_db_roster_ver_put(db, "nobody@contoso.test", 1, err, sizeof(err)),
			 FG_NOTFOUND);
	assert_int_equal(store_db_roster_ver_load(db, collect_ver, &s, err, sizeof(err)), FG_OK);
	assert_string_equal(s.text, "alice@contoso.test=7;");
	struct store_op del = store_op_delete_user("alice@contoso.test");
	commit_ok(db, &del, 1);
	assert_int_equal(raw_int(t->path, "SELECT count(*) FROM roster_versions"), 0);
	store_db_close(&db);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(
			test_blocklists_are_saved_removed_and_go_with_their_user, setup, teardown),
		cmocka_unit_test_setup_teardown(
			test_roster_versions_are_kept_and_go_with_their_user, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}

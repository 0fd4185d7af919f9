/* Unit tests for src/store/store_archive.c: rows in and out, filters by
 * peer and time, paging forwards and backwards (XEP-0059), unknown ids,
 * preferences (always/never lists, roster default), retention expiry,
 * max_per_user, and the archive going with `fedgate user remove`
 * (store_op_delete_user). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "fg.h"
#include "sasl.h"
#include "store_archive.h"
#include "store_sqlite.h"
#include "store_testdir.h"
#include "store_users.h"
#include "users.h"

#define ALICE "alice@contoso.test"
#define BOB   "bob@fabrikam.test"
#define CAROL "carol@contoso.test"

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
	assert_int_equal(sasl_creds_from_password("correct horse battery", 4096, &a->creds), FG_OK);
	a->xmpp_access = true;
	struct store_op op = store_op_put_user(a);
	commit_ok(db, &op, 1);
	account_free(&a);
}

/* Message i of owner with peer at ts i*1000, id "owner-peer-i". */
static unsigned put(struct store_db *db, const char *owner, const char *peer, int from, int to,
		    enum archive_mode def, unsigned max)
{
	struct archive_row rows[64];
	char ids[64][64], xml[64][128];
	size_t n = 0;
	assert_true(to - from <= 64);
	for (int i = from; i < to; i++, n++) {
		snprintf(ids[n], sizeof(ids[n]), "%c%c-%d", owner[0], peer[0], i);
		snprintf(xml[n], sizeof(xml[n]),
			 "<message from='%s' to='%s' type='chat'><body>%d</body></message>", peer,
			 owner, i);
		rows[n] = (struct archive_row){.owner = owner,
					       .with_jid = peer,
					       .ts_ms = (long long)i * 1000,
					       .stanza_id = ids[n],
					       .outgoing = false,
					       .trim = true,
					       .xml = xml[n]};
	}
	unsigned stored = 0;
	char err[512] = "";
	if (store_db_archive_add(db, rows, n, def, max, &stored, err, sizeof(err)) != FG_OK)
		fail_msg("store_db_archive_add: %s", err);
	return stored;
}

struct page {
	char ids[128][64];
	size_t n;
	bool complete;
	unsigned count;
	int rc;
};

static int collect(void *ud, const char *sid, long long ts, const char *xml)
{
	struct page *p = ud;
	(void)ts;
	assert_non_null(strstr(xml, "<body>"));
	assert_true(p->n < 128);
	snprintf(p->ids[p->n++], sizeof(p->ids[0]), "%s", sid);
	return 0;
}

static struct page query(struct store_db *db, struct archive_query q)
{
	struct page p = {0};
	char err[512] = "";
	p.rc = store_db_archive_query(db, &q, collect, &p, &p.complete, &p.count, err, sizeof(err));
	return p;
}

static void test_insert_and_filters(void **state)
{
	struct store_db *db = open_ok(*state);
	add_user(db, ALICE);
	assert_int_equal(put(db, ALICE, BOB, 0, 10, ARCHIVE_ALWAYS, 0), 10);
	assert_int_equal(put(db, ALICE, CAROL, 10, 15, ARCHIVE_ALWAYS, 0), 5);
	/* Not a user: nothing kept, nothing failed. */
	assert_int_equal(put(db, "nobody@contoso.test", BOB, 0, 3, ARCHIVE_ALWAYS, 0), 0);

	struct archive_query q = {.owner = ALICE, .start_ms = -1, .end_ms = -1, .max = 100};
	struct page p = query(db, q);
	assert_int_equal(p.rc, FG_OK);
	assert_int_equal(p.n, 15);
	assert_int_equal(p.count, 15);
	assert_true(p.complete);
	assert_string_equal(p.ids[0], "ab-0");
	assert_string_equal(p.ids[14], "ac-14");

	q.with = CAROL;
	p = query(db, q);
	assert_int_equal(p.n, 5);
	assert_int_equal(p.count, 5);
	assert_string_equal(p.ids[0], "ac-10");

	q.with = BOB;
	q.start_ms = 3000;
	q.end_ms = 6000;
	p = query(db, q);
	assert_int_equal(p.n, 4);
	assert_string_equal(p.ids[0], "ab-3");
	assert_string_equal(p.ids[3], "ab-6");
	store_db_close(&db);
}

static void test_paging_both_ways(void **state)
{
	struct store_db *db = open_ok(*state);
	add_user(db, ALICE);
	put(db, ALICE, BOB, 0, 25, ARCHIVE_ALWAYS, 0);

	/* Forwards: 10, 10, 5, complete only at the end. */
	struct archive_query q = {.owner = ALICE, .start_ms = -1, .end_ms = -1, .max = 10};
	struct page p = query(db, q);
	assert_int_equal(p.n, 10);
	assert_false(p.complete);
	assert_int_equal(p.count, 25);
	char after[64];
	snprintf(after, sizeof(after), "%s", p.ids[9]);
	q.after_id = after;
	p = query(db, q);
	assert_int_equal(p.n, 10);
	assert_string_equal(p.ids[0], "ab-10");
	assert_false(p.complete);
	snprintf(after, sizeof(after), "%s", p.ids[9]);
	p = query(db, q);
	assert_int_equal(p.n, 5);
	assert_string_equal(p.ids[4], "ab-24");
	assert_true(p.complete);

	/* Backwards: the last page (empty <before/>), oldest first. */
	q = (struct archive_query){
		.owner = ALICE, .start_ms = -1, .end_ms = -1, .max = 10, .backward = true};
	p = query(db, q);
	assert_int_equal(p.n, 10);
	assert_string_equal(p.ids[0], "ab-15");
	assert_string_equal(p.ids[9], "ab-24");
	assert_false(p.complete);
	char before[64];
	snprintf(before, sizeof(before), "%s", p.ids[0]);
	q.before_id = before;
	p = query(db, q);
	assert_string_equal(p.ids[0], "ab-5");
	assert_false(p.complete);
	snprintf(before, sizeof(before), "%s", p.ids[0]);
	p = query(db, q);
	assert_int_equal(p.n, 5);
	assert_string_equal(p.ids[0], "ab-0");
	assert_true(p.complete);

	/* max 0: the count alone. */
	q = (struct archive_query){.owner = ALICE, .start_ms = -1, .end_ms = -1, .max = 0};
	p = query(db, q);
	assert_int_equal(p.n, 0);
	assert_int_equal(p.count, 25);

	/* An id that is not in this archive. */
	q.max = 10;
	q.after_id = "no-such-id";
	p = query(db, q);
	assert_int_equal(p.rc, FG_NOTFOUND);
	store_db_close(&db);
}

static void test_prefs(void **state)
{
	struct store_db *db = open_ok(*state);
	char err[512] = "";
	add_user(db, ALICE);
	bool found = true;
	enum archive_mode mode;
	char *always = NULL, *never = NULL;
	assert_int_equal(store_db_archive_prefs_get(db, ALICE, &found, &mode, &always, &never, err,
						    sizeof(err)),
			 FG_OK);
	assert_false(found);
	assert_int_equal(store_db_archive_prefs_put(db, "nobody@contoso.test", ARCHIVE_NEVER, "",
						    "", err, sizeof(err)),
			 FG_NOTFOUND);

	/* never: nothing but the always list. */
	assert_int_equal(
		store_db_archive_prefs_put(db, ALICE, ARCHIVE_NEVER, CAROL, "", err, sizeof(err)),
		FG_OK);
	assert_int_equal(put(db, ALICE, BOB, 0, 3, ARCHIVE_ALWAYS, 0), 0);
	assert_int_equal(put(db, ALICE, CAROL, 3, 5, ARCHIVE_ALWAYS, 0), 2);
	assert_int_equal(store_db_archive_prefs_get(db, ALICE, &found, &mode, &always, &never, err,
						    sizeof(err)),
			 FG_OK);
	assert_true(found);
	assert_int_equal(mode, ARCHIVE_NEVER);
	assert_string_equal(always, CAROL);
	assert_string_equal(never, "");
	free(always);
	free(never);

	/* always, but never with bob; the never list wins. */
	assert_int_equal(store_db_archive_prefs_put(db, ALICE, ARCHIVE_ALWAYS, BOB, CAROL "\n" BOB,
						    err, sizeof(err)),
			 FG_OK);
	assert_int_equal(put(db, ALICE, BOB, 10, 12, ARCHIVE_ALWAYS, 0), 0);
	assert_int_equal(put(db, ALICE, CAROL, 12, 13, ARCHIVE_ALWAYS, 0), 0);
	assert_int_equal(put(db, ALICE, "dave@contoso.test", 13, 14, ARCHIVE_NEVER, 0), 1);

	/* roster (the server's default here): contacts only. */
	add_user(db, CAROL);
	struct roster_row r = {.user = CAROL, .contact = BOB, .groups = "[]", .sub_to = true};
	assert_int_equal(store_db_roster_put(db, &r, err, sizeof(err)), FG_OK);
	assert_int_equal(put(db, CAROL, BOB, 0, 2, ARCHIVE_ROSTER, 0), 2);
	assert_int_equal(put(db, CAROL, ALICE, 2, 4, ARCHIVE_ROSTER, 0), 0);
	store_db_close(&db);
}

static void test_retention_and_limit(void **state)
{
	struct store_db *db = open_ok(*state);
	char err[512] = "";
	add_user(db, ALICE);
	add_user(db, CAROL);
	put(db, ALICE, BOB, 0, 20, ARCHIVE_ALWAYS, 0);
	put(db, CAROL, BOB, 0, 20, ARCHIVE_ALWAYS, 0);
	unsigned deleted = 0;
	/* ts are i*1000: before 5000 means 0..4 of each owner. */
	assert_int_equal(store_db_archive_expire(db, 5000, &deleted, err, sizeof(err)), FG_OK);
	assert_int_equal(deleted, 10);
	struct archive_query q = {.owner = ALICE, .start_ms = -1, .end_ms = -1, .max = 100};
	struct page p = query(db, q);
	assert_int_equal(p.n, 15);
	assert_string_equal(p.ids[0], "ab-5");

	/* A limit of 8: after more messages, the 8 newest stay. */
	put(db, ALICE, BOB, 20, 23, ARCHIVE_ALWAYS, 8);
	p = query(db, q);
	assert_int_equal(p.n, 8);
	assert_string_equal(p.ids[0], "ab-15");
	assert_string_equal(p.ids[7], "ab-22");
	/* carol's archive was not touched. */
	q.owner = CAROL;
	assert_int_equal(query(db, q).n, 15);
	store_db_close(&db);
}

static void test_user_remove_takes_archive(void **state)
{
	struct tdir *t = *state;
	struct store_db *db = open_ok(t);
	char err[512] = "";
	add_user(db, ALICE);
	add_user(db, CAROL);
	put(db, ALICE, BOB, 0, 5, ARCHIVE_ALWAYS, 0);
	put(db, CAROL, BOB, 0, 5, ARCHIVE_ALWAYS, 0);
	assert_int_equal(
		store_db_archive_prefs_put(db, ALICE, ARCHIVE_ROSTER, "", "", err, sizeof(err)),
		FG_OK);
	struct store_op op = store_op_delete_user(ALICE);
	commit_ok(db, &op, 1);
	store_db_close(&db);
	assert_int_equal(raw_int(t->path, "SELECT count(*) FROM archive WHERE owner = '" ALICE "'"),
			 0);
	assert_int_equal(
		raw_int(t->path, "SELECT count(*) FROM archive_prefs WHERE owner = '" ALICE "'"),
		0);
	assert_int_equal(raw_int(t->path, "SELECT count(*) FROM archive WHERE owner = '" CAROL "'"),
			 5);
	/* Added again, alice starts with an empty archive. */
	db = open_ok(t);
	add_user(db, ALICE);
	struct archive_query q = {.owner = ALICE, .start_ms = -1, .end_ms = -1, .max = 100};
	struct page p = query(db, q);
	assert_int_equal(p.n, 0);
	assert_int_equal(p.count, 0);
	assert_true(p.complete);
	store_db_close(&db);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_insert_and_filters, setup, teardown),
		cmocka_unit_test_setup_teardown(test_paging_both_ways, setup, teardown),
		cmocka_unit_test_setup_teardown(test_prefs, setup, teardown),
		cmocka_unit_test_setup_teardown(test_retention_and_limit, setup, teardown),
		cmocka_unit_test_setup_teardown(test_user_remove_takes_archive, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}

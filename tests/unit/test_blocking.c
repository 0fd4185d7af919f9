/* Unit tests for src/xmpp/blocking.c's pure parts and roster versions:
 * the XEP-0191 matcher over every form of item, the parsing of blocklist,
 * block and unblock requests with their errors, and the roster version
 * of src/xmpp/roster.c, which moves with every pushed change and only
 * then. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "blocking.h"
#include "fg.h"
#include "jid.h"
#include "log.h"
#include "roster.h"
#include "xml.h"
#include "xmlstream.h"
#include "xmpp.h"

static bool matches(const char *item, const char *jid)
{
	struct jid i, j;

	if (jid_parse(item, strlen(item), &i) != JID_OK ||
	    jid_parse(jid, strlen(jid), &j) != JID_OK)
		fail_msg("not JIDs: %s, %s", item, jid);
	bool m = blocking_matches(&i, &j);
	jid_clear(&i);
	jid_clear(&j);
	return m;
}

static void test_full_jid_item_matches_only_itself(void **state)
{
	(void)state;
	assert_true(matches("bob@fabrikam.test/desk", "bob@fabrikam.test/desk"));
	assert_false(matches("bob@fabrikam.test/desk", "bob@fabrikam.test/phone"));
	assert_false(matches("bob@fabrikam.test/desk", "bob@fabrikam.test"));
	assert_false(matches("bob@fabrikam.test/desk", "fabrikam.test/desk"));
	assert_false(matches("bob@fabrikam.test/desk", "eve@fabrikam.test/desk"));
}

static void test_bare_jid_item_matches_every_resource(void **state)
{
	(void)state;
	assert_true(matches("bob@fabrikam.test", "bob@fabrikam.test"));
	assert_true(matches("bob@fabrikam.test", "bob@fabrikam.test/desk"));
	assert_false(matches("bob@fabrikam.test", "eve@fabrikam.test"));
	assert_false(matches("bob@fabrikam.test", "fabrikam.test"));
	assert_false(matches("bob@fabrikam.test", "bob@contoso.test"));
	/* Prepared forms compare: case of node and domain does not matter. */
	assert_true(matches("Bob@Fabrikam.TEST", "bob@fabrikam.test/x"));
}

static void test_domain_item_matches_everyone_there(void **state)
{
	(void)state;
	assert_true(matches("fabrikam.test", "fabrikam.test"));
	assert_true(matches("fabrikam.test", "bob@fabrikam.test"));
	assert_true(matches("fabrikam.test", "bob@fabrikam.test/desk"));
	assert_true(matches("fabrikam.test", "fabrikam.test/admin"));
	assert_false(matches("fabrikam.test", "corp.fabrikam.test"));
	assert_false(matches("fabrikam.test", "bob@contoso.test"));
}

static void test_domain_resource_item_matches_only_that(void **state)
{
	(void)state;
	assert_true(matches("fabrikam.test/bot", "fabrikam.test/bot"));
	assert_false(matches("fabrikam.test/bot", "fabrikam.test"));
	assert_false(matches("fabrikam.test/bot", "bob@fabrikam.test/bot"));
	assert_false(matches("fabrikam.test/bot", "fabrikam.test/other"));
}

static struct xml_node *iq(const char *type, const char *payload)
{
	char buf[4096];

	snprintf(buf, sizeof(buf), "<iq xmlns='jabber:server' type='%s' id='x'>%s</iq>", type,
		 payload);
	struct xml_node *n = xmlstream_parse_one(buf);
	if (!n)
		fail_msg("not parsed: %s", buf);
	return n;
}

static int parse(const char *type, const char *payload, struct blocking_req *req, const char **cond)
{
	const char *t, *text;
	struct xml_node *n = iq(type, payload);
	int rc = blocking_parse(n, req, &t, cond, &text);

	xml_free(&n);
	if (rc != FG_OK) {
		assert_non_null(t);
		assert_non_null(text);
	}
	return rc;
}

static void test_parse_get_block_unblock(void **state)
{
	struct blocking_req r;
	const char *cond = NULL;
	(void)state;

	assert_int_equal(parse("get", "<blocklist xmlns='urn:xmpp:blocking'/>", &r, &cond), FG_OK);
	assert_int_equal(r.op, BLOCKING_GET);
	blocking_req_clear(&r);

	assert_int_equal(parse("set",
			       "<block xmlns='urn:xmpp:blocking'><item jid='Bob@Fabrikam.test'/>"
			       "<item jid='fabrikam.test/bot'/><item jid='bob@fabrikam.test'/>"
			       "</block>",
			       &r, &cond),
			 FG_OK);
	assert_int_equal(r.op, BLOCKING_BLOCK);
	/* Prepared, and the same JID twice is one item. */
	assert_int_equal(r.n, 2);
	assert_string_equal(r.jids[0], "bob@fabrikam.test");
	assert_string_equal(r.jids[1], "fabrikam.test/bot");
	blocking_req_clear(&r);

	assert_int_equal(parse("set", "<unblock xmlns='urn:xmpp:blocking'/>", &r, &cond), FG_OK);
	assert_int_equal(r.op, BLOCKING_UNBLOCK);
	assert_int_equal(r.n, 0); /* everything */
	blocking_req_clear(&r);
}

static void test_parse_refuses_what_the_xep_refuses(void **state)
{
	struct blocking_req r;
	const char *cond = NULL;
	(void)state;

	/* §3.3: a block without items. */
	assert_int_equal(parse("set", "<block xmlns='urn:xmpp:blocking'/>", &r, &cond), FG_INVAL);
	assert_string_equal(cond, "bad-request");
	assert_int_equal(
		parse("set", "<block xmlns='urn:xmpp:blocking'><item/></block>", &r, &cond),
		FG_INVAL);
	assert_string_equal(cond, "jid-malformed");
	assert_int_equal(parse("set",
			       "<block xmlns='urn:xmpp:blocking'><item jid='a@b'/>"
			       "<item jid='@@'/></block>",
			       &r, &cond),
			 FG_INVAL);
	assert_string_equal(cond, "jid-malformed");
	assert_null(r.jids);
	/* Read with get, changed with set. */
	assert_int_equal(parse("set", "<blocklist xmlns='urn:xmpp:blocking'/>", &r, &cond),
			 FG_INVAL);
	assert_string_equal(cond, "bad-request");
	assert_int_equal(parse("get", "<block xmlns='urn:xmpp:blocking'><item jid='a@b'/></block>",
			       &r, &cond),
			 FG_INVAL);
	assert_string_equal(cond, "bad-request");
	assert_int_equal(parse("set", "<other xmlns='urn:xmpp:blocking'/>", &r, &cond), FG_INVAL);
	assert_string_equal(cond, "bad-request");
}

static void test_parse_caps_the_items(void **state)
{
	size_t len = (BLOCKING_MAX_ITEMS + 1) * 40 + 100;
	char *payload = malloc(len), *buf = malloc(len + 100), *p = payload;
	struct blocking_req r;
	const char *t, *cond, *text;
	(void)state;

	assert_non_null(payload);
	assert_non_null(buf);
	p += sprintf(p, "<block xmlns='urn:xmpp:blocking'>");
	for (int i = 0; i <= BLOCKING_MAX_ITEMS; i++)
		p += sprintf(p, "<item jid='u%d@x.test'/>", i);
	sprintf(p, "</block>");
	snprintf(buf, len + 100, "<iq xmlns='jabber:server' type='set'>%s</iq>", payload);
	struct xml_node *n = xmlstream_parse_one(buf);
	assert_non_null(n);
	assert_int_equal(blocking_parse(n, &r, &t, &cond, &text), FG_INVAL);
	assert_string_equal(cond, "not-acceptable");
	xml_free(&n);
	free(payload);
	free(buf);
}

static void test_roster_version_moves_with_pushed_changes_only(void **state)
{
	struct xmpp_server srv;
	char v0[ROSTER_VER_LEN], v1[ROSTER_VER_LEN], v2[ROSTER_VER_LEN], v3[ROSTER_VER_LEN];
	const char *user = "alice@contoso.test";
	(void)state;

	memset(&srv, 0, sizeof(srv));
	roster_version(&srv, user, v0, sizeof(v0));
	struct roster *r = roster_of(&srv, user, true);
	assert_non_null(r);

	/* An inbound request waiting in a hidden item: not the user's roster. */
	struct roster_item *hidden = roster_add(r, "eve@fabrikam.test");
	assert_non_null(hidden);
	roster_set_hidden(hidden, true);
	hidden->pending_in = true;
	roster_changed(&srv, user, hidden);
	roster_version(&srv, user, v1, sizeof(v1));
	assert_string_equal(v0, v1);

	struct roster_item *it = roster_add(r, "bob@fabrikam.test");
	assert_non_null(it);
	roster_changed(&srv, user, it);
	roster_version(&srv, user, v2, sizeof(v2));
	assert_string_not_equal(v1, v2);

	roster_remove(&srv, user, "eve@fabrikam.test"); /* hidden: no change */
	roster_version(&srv, user, v3, sizeof(v3));
	assert_string_equal(v2, v3);
	roster_remove(&srv, user, "bob@fabrikam.test");
	roster_version(&srv, user, v3, sizeof(v3));
	assert_string_not_equal(v2, v3);
	assert_string_not_equal(v0, v3);
	roster_free_all(&srv);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_full_jid_item_matches_only_itself),
		cmocka_unit_test(test_bare_jid_item_matches_every_resource),
		cmocka_unit_test(test_domain_item_matches_everyone_there),
		cmocka_unit_test(test_domain_resource_item_matches_only_that),
		cmocka_unit_test(test_parse_get_block_unblock),
		cmocka_unit_test(test_parse_refuses_what_the_xep_refuses),
		cmocka_unit_test(test_parse_caps_the_items),
		cmocka_unit_test(test_roster_version_moves_with_pushed_changes_only),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}

/* Unit tests for src/core/pubsub.c: the access decision (access model,
 * subscription, partner type, in the roster) with the condition of each
 * refusal; publish-options as preconditions; the request parser. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "fg.h"
#include "pubsub.h"
#include "xml.h"
#include "xmlstream.h"

struct ruling {
	bool ok;
	const char *cond, *ps_cond;
};

static struct ruling decide(enum pubsub_access m, bool local, enum partner_type pt, bool in_roster,
			    bool sub_from)
{
	struct pubsub_asker a = {
		.local = local, .partner = pt, .in_roster = in_roster, .sub_from = sub_from};
	struct pubsub_err e = {0};
	struct ruling v = {pubsub_may_read(m, &a, &e), e.cond, e.ps_cond};
	if (!v.ok)
		assert_non_null(e.text);
	return v;
}

static void expect(struct ruling v, bool ok, const char *cond, const char *ps_cond)
{
	assert_int_equal(v.ok, ok);
	if (ok)
		return;
	assert_string_equal(v.cond, cond);
	if (ps_cond)
		assert_string_equal(v.ps_cond, ps_cond);
	else
		assert_null(v.ps_cond);
}

static void test_access_decision(void **state)
{
	(void)state;
	const enum partner_type F = PT_FEDERATED, V = PT_PUBLIC_VERIFIED, U = PT_PUBLIC_UNVERIFIED;
	/* The owner reads everything. */
	struct pubsub_asker owner = {.owner = true, .partner = U};
	struct pubsub_err e;
	for (int m = PUBSUB_PRESENCE; m <= PUBSUB_WHITELIST; m++)
		assert_true(pubsub_may_read((enum pubsub_access)m, &owner, &e));
	/* open: anyone of a federated or verified partner, and local users */
	expect(decide(PUBSUB_OPEN, false, F, false, false), true, NULL, NULL);
	expect(decide(PUBSUB_OPEN, false, V, false, false), true, NULL, NULL);
	expect(decide(PUBSUB_OPEN, true, U, false, false), true, NULL, NULL);
	/* SPEC §4: public-unverified and not added: nothing, whatever the model */
	expect(decide(PUBSUB_OPEN, false, U, false, false), false, "forbidden", NULL);
	expect(decide(PUBSUB_PRESENCE, false, U, false, true), false, "forbidden", NULL);
	/* ... and once added, the model decides */
	expect(decide(PUBSUB_OPEN, false, U, true, false), true, NULL, NULL);
	expect(decide(PUBSUB_PRESENCE, false, U, true, false), false, "not-authorized",
	       "presence-subscription-required");
	expect(decide(PUBSUB_PRESENCE, false, U, true, true), true, NULL, NULL);
	/* presence: subscribed (from or both) */
	expect(decide(PUBSUB_PRESENCE, false, F, false, false), false, "not-authorized",
	       "presence-subscription-required");
	expect(decide(PUBSUB_PRESENCE, false, F, true, false), false, "not-authorized",
	       "presence-subscription-required");
	expect(decide(PUBSUB_PRESENCE, false, F, true, true), true, NULL, NULL);
	expect(decide(PUBSUB_PRESENCE, true, F, true, true), true, NULL, NULL);
	/* roster */
	expect(decide(PUBSUB_ROSTER, false, F, false, false), false, "not-authorized",
	       "not-in-roster-group");
	expect(decide(PUBSUB_ROSTER, false, V, true, true), true, NULL, NULL);
	/* whitelist: the owner alone */
	expect(decide(PUBSUB_WHITELIST, true, F, true, true), false, "not-allowed", "closed-node");
	expect(decide(PUBSUB_WHITELIST, false, F, true, true), false, "not-allowed", "closed-node");
}

static struct xml_node *parse(const char *xml)
{
	struct xml_node *n = xmlstream_parse_one(xml);
	assert_non_null(n);
	return n;
}

#define PS  "xmlns='http://jabber.org/protocol/pubsub'"
#define OWN "xmlns='http://jabber.org/protocol/pubsub#owner'"
#define OPTS(fields)                                                                      \
	"<publish-options><x xmlns='jabber:x:data' type='submit'><field var='FORM_TYPE'>" \
	"<value>http://jabber.org/protocol/pubsub#publish-options</value></field>" fields \
	"</x></publish-options>"
#define F(var, v) "<field var='pubsub#" var "'><value>" v "</value></field>"

static void test_parse_publish_with_options(void **state)
{
	(void)state;
	struct xml_node *iq = parse(
		"<iq type='set' id='1'><pubsub " PS "><publish node='urn:xmpp:bookmarks:1'>"
		"<item id='r@muc'><conference xmlns='urn:xmpp:bookmarks:1'/></item></publish>" OPTS(
			F("persist_items", "true") F("max_items", "max")
				F("access_model", "whitelist")
					F("send_last_published_item", "never")) "</pubsub></iq>");
	struct pubsub_req r;
	struct pubsub_err e;
	assert_int_equal(pubsub_parse(iq, 100, &r, &e), FG_OK);
	assert_int_equal(r.op, PUBSUB_OP_PUBLISH);
	assert_true(r.owner_only);
	assert_string_equal(r.node, "urn:xmpp:bookmarks:1");
	assert_string_equal(r.item_id, "r@muc");
	assert_true(xml_is(r.payload, "urn:xmpp:bookmarks:1", "conference"));
	assert_int_equal(r.opts_set, PUBSUB_SET_ACCESS | PUBSUB_SET_MAX | PUBSUB_SET_PERSIST);
	assert_int_equal(r.opts.access, PUBSUB_WHITELIST);
	assert_int_equal(r.opts.max_items, 100); /* max = the cap */
	assert_true(r.opts.persist);

	/* preconditions against an existing node */
	struct pubsub_conf node = {PUBSUB_WHITELIST, 100, true};
	assert_true(pubsub_preconditions_met(&r.opts, r.opts_set, &node));
	node.access = PUBSUB_OPEN;
	assert_false(pubsub_preconditions_met(&r.opts, r.opts_set, &node));
	node.access = PUBSUB_WHITELIST;
	node.max_items = 5;
	assert_false(pubsub_preconditions_met(&r.opts, r.opts_set, &node));
	/* fields not given are no precondition */
	assert_true(pubsub_preconditions_met(&r.opts, 0, &node));
	xml_free(&iq);

	/* an access model we do not offer cannot be met */
	iq = parse("<iq type='set'><pubsub " PS "><publish node='n'><item><x xmlns='y'/></item>"
		   "</publish>" OPTS(F("access_model", "authorize")) "</pubsub></iq>");
	assert_int_equal(pubsub_parse(iq, 100, &r, &e), FG_INVAL);
	assert_string_equal(e.cond, "conflict");
	assert_string_equal(e.ps_cond, "precondition-not-met");
	xml_free(&iq);
}

static void expect_refused(const char *xml, const char *cond, const char *ps_cond)
{
	struct xml_node *iq = parse(xml);
	struct pubsub_req r;
	struct pubsub_err e;
	assert_int_equal(pubsub_parse(iq, 10, &r, &e), FG_INVAL);
	assert_string_equal(e.cond, cond);
	if (ps_cond)
		assert_string_equal(e.ps_cond, ps_cond);
	assert_non_null(e.type);
	assert_non_null(e.text);
	xml_free(&iq);
}

static void test_parse_refusals(void **state)
{
	(void)state;
	expect_refused("<iq type='set'><pubsub " PS "><publish node='n'/></pubsub></iq>",
		       "bad-request", "item-required");
	expect_refused("<iq type='set'><pubsub " PS "><publish node='n'><item id='a'/></publish>"
		       "</pubsub></iq>",
		       "bad-request", "payload-required");
	expect_refused("<iq type='set'><pubsub " PS "><publish node='n'><item><a xmlns='x'/>"
		       "<b xmlns='x'/></item></publish></pubsub></iq>",
		       "bad-request", "invalid-payload");
	expect_refused("<iq type='get'><pubsub " PS "><items/></pubsub></iq>", "bad-request",
		       "nodeid-required");
	expect_refused("<iq type='get'><pubsub " PS
		       "><items node='n' max_items='0'/></pubsub></iq>",
		       "bad-request", NULL);
	expect_refused("<iq type='set'><pubsub " PS "><retract node='n'/></pubsub></iq>",
		       "bad-request", "item-required");
	expect_refused("<iq type='set'><pubsub " PS
		       "><subscribe node='n' jid='a@b'/></pubsub></iq>",
		       "feature-not-implemented", "unsupported");
	expect_refused("<iq type='get'><pubsub " PS "><items node='n'/><items node='m'/></pubsub>"
		       "</iq>",
		       "bad-request", NULL);
	/* a publish is a set */
	expect_refused("<iq type='get'><pubsub " PS "><publish node='n'><item><a xmlns='x'/></item>"
		       "</publish></pubsub></iq>",
		       "feature-not-implemented", NULL);
}

static void test_parse_reads_and_owner_requests(void **state)
{
	(void)state;
	struct pubsub_req r;
	struct pubsub_err e;
	struct xml_node *iq = parse("<iq type='get'><pubsub " PS "><items node='n' max_items='2'>"
				    "<item id='a'/><item id='b'/></items></pubsub></iq>");
	assert_int_equal(pubsub_parse(iq, 10, &r, &e), FG_OK);
	assert_int_equal(r.op, PUBSUB_OP_ITEMS);
	assert_false(r.owner_only);
	assert_int_equal(r.max_items, 2);
	assert_int_equal(r.nids, 2);
	assert_string_equal(r.ids[1], "b");
	xml_free(&iq);

	iq = parse("<iq type='set'><pubsub " PS "><retract node='n' notify='1'><item id='a'/>"
		   "</retract></pubsub></iq>");
	assert_int_equal(pubsub_parse(iq, 10, &r, &e), FG_OK);
	assert_int_equal(r.op, PUBSUB_OP_RETRACT);
	assert_true(r.notify && r.owner_only);
	xml_free(&iq);

	iq = parse("<iq type='set'><pubsub " OWN "><purge node='n'/></pubsub></iq>");
	assert_int_equal(pubsub_parse(iq, 10, &r, &e), FG_OK);
	assert_int_equal(r.op, PUBSUB_OP_PURGE);
	xml_free(&iq);

	iq = parse("<iq type='set'><pubsub " OWN "><configure node='n'><x xmlns='jabber:x:data' "
		   "type='submit'>" F("max_items", "50")
			   F("access_model", "open") "</x>"
						     "</configure></pubsub></iq>");
	assert_int_equal(pubsub_parse(iq, 10, &r, &e), FG_OK);
	assert_int_equal(r.op, PUBSUB_OP_CONFIGURE_SET);
	assert_int_equal(r.opts.max_items, 10); /* clamped to the cap */
	assert_int_equal(r.opts.access, PUBSUB_OPEN);
	assert_int_equal(r.opts_set, PUBSUB_SET_MAX | PUBSUB_SET_ACCESS);
	xml_free(&iq);
}

static void test_notify_node(void **state)
{
	(void)state;
	assert_int_equal(pubsub_notify_node("urn:xmpp:avatar:metadata+notify"),
			 strlen("urn:xmpp:avatar:metadata"));
	assert_int_equal(pubsub_notify_node("+notify"), 0);
	assert_int_equal(pubsub_notify_node("urn:xmpp:avatar:metadata"), 0);
	assert_int_equal(pubsub_notify_node(NULL), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_access_decision),
		cmocka_unit_test(test_parse_publish_with_options),
		cmocka_unit_test(test_parse_refusals),
		cmocka_unit_test(test_parse_reads_and_owner_requests),
		cmocka_unit_test(test_notify_node),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}

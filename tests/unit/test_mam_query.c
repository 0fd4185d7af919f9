/* Unit tests for src/xmpp/mam_query.c: XEP-0082 times, the query form
 * (XEP-0004) with XEP-0059 paging as slixmpp and profanity send them, the
 * server's cap on <max/>, what is refused, and preferences. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "fg.h"
#include "mam_query.h"
#include "xml.h"
#include "xmlstream.h"

/* The first element child of the iq text's root in ns. */
static struct xml_node *iq_of(const char *text)
{
	struct xml_node *iq = xmlstream_parse_one(text);
	assert_non_null(iq);
	return iq;
}

static const char *parse(const char *iq_text, struct mam_query *q, unsigned cap)
{
	struct xml_node *iq = iq_of(iq_text);
	const struct xml_node *qn = xml_child(iq, XML_NS_MAM, "query");
	assert_non_null(qn);
	const char *why = mam_query_parse(qn, cap, q);
	/* The ids point into the tree: copy what the test looks at. */
	static char after[64], before[64], qid[64];
	snprintf(after, sizeof(after), "%s", q->after_id ? q->after_id : "");
	snprintf(before, sizeof(before), "%s", q->before_id ? q->before_id : "");
	snprintf(qid, sizeof(qid), "%s", q->queryid ? q->queryid : "");
	q->after_id = q->after_id ? after : NULL;
	q->before_id = q->before_id ? before : NULL;
	q->queryid = q->queryid ? qid : NULL;
	xml_free(&iq);
	return why;
}

#define IQ(body)                                                                      \
	"<iq xmlns='jabber:server' type='set' id='q1'><query xmlns='urn:xmpp:mam:2' " \
	"queryid='f27'>" body "</query></iq>"
#define FORM(fields)                                                                   \
	"<x xmlns='jabber:x:data' type='submit'><field var='FORM_TYPE' type='hidden'>" \
	"<value>urn:xmpp:mam:2</value></field>" fields "</x>"
#define FIELD(var, v) "<field var='" var "'><value>" v "</value></field>"
#define RSM(x)	      "<set xmlns='http://jabber.org/protocol/rsm'>" x "</set>"

static void test_times(void **state)
{
	(void)state;
	assert_int_equal(mam_parse_time("1970-01-01T00:00:00Z"), 0);
	assert_int_equal(mam_parse_time("2010-07-10T23:08:25Z"), 1278803305000LL);
	assert_int_equal(mam_parse_time("2010-07-10T23:08:25.123Z"), 1278803305123LL);
	assert_int_equal(mam_parse_time("2010-07-10T23:08:25.123456Z"), 1278803305123LL);
	assert_int_equal(mam_parse_time("2010-07-11T01:08:25+02:00"), 1278803305000LL);
	assert_int_equal(mam_parse_time("2010-07-10T18:08:25-05:00"), 1278803305000LL);
	assert_int_equal(mam_parse_time("2024-02-29T00:00:00Z"), 1709164800000LL);
	assert_int_equal(mam_parse_time("2023-02-29T00:00:00Z"), -1);
	assert_int_equal(mam_parse_time("2010-07-10 23:08:25Z"), -1);
	assert_int_equal(mam_parse_time("2010-07-10T23:08:25"), -1);
	assert_int_equal(mam_parse_time("2010-13-10T23:08:25Z"), -1);
	assert_int_equal(mam_parse_time("2010-07-10T23:08:25.Z"), -1);
	assert_int_equal(mam_parse_time("2010-07-10T23:08:25Zjunk"), -1);
	assert_int_equal(mam_parse_time(""), -1);
	assert_int_equal(mam_parse_time(NULL), -1);
}

static void test_form_and_paging(void **state)
{
	(void)state;
	struct mam_query q;
	/* profanity: with, start, then the last page of 10. */
	assert_null(parse(IQ(FORM(FIELD("with", "Bob@Fabrikam.test/phone") FIELD(
				  "start", "2026-12-01T00:00:00Z")) RSM("<max>10</max><before/>")),
			  &q, 100));
	assert_string_equal(q.with, "bob@fabrikam.test");
	assert_int_equal(q.start_ms, mam_parse_time("2026-12-01T00:00:00Z"));
	assert_int_equal(q.end_ms, -1);
	assert_true(q.backward);
	assert_null(q.before_id);
	assert_int_equal(q.max, 10);
	assert_string_equal(q.queryid, "f27");
	mam_query_clear(&q);

	/* After an id, max over the cap. */
	assert_null(parse(IQ(RSM("<max>5000</max><after>abc</after>")), &q, 100));
	assert_null(q.with);
	assert_false(q.backward);
	assert_string_equal(q.after_id, "abc");
	assert_int_equal(q.max, 100);
	mam_query_clear(&q);

	/* No paging at all: the cap; the extended ids. */
	assert_null(parse(IQ(FORM(FIELD("before-id", "x9") FIELD("end", "2026-12-01T00:00:00Z"))),
			  &q, 50));
	assert_int_equal(q.max, 50);
	assert_string_equal(q.before_id, "x9");
	assert_false(q.backward);
	mam_query_clear(&q);

	/* An empty field filters nothing. */
	assert_null(parse(IQ(FORM("<field var='with'/>")), &q, 50));
	assert_null(q.with);
	mam_query_clear(&q);
}

static void test_refused(void **state)
{
	(void)state;
	struct mam_query q;
	static const char *const bad[] = {
		IQ(FORM(FIELD("with", "@@"))),
		IQ(FORM(FIELD("start", "yesterday"))),
		IQ(FORM(FIELD("end", "2026-12-01"))),
		IQ(FORM(FIELD("start", "2026-12-02T00:00:00Z")
				FIELD("end", "2026-12-01T00:00:00Z"))),
		IQ(FORM(FIELD("full-text", "secret"))),
		IQ("<x xmlns='jabber:x:data' type='submit'><field var='FORM_TYPE'>"
		   "<value>urn:xmpp:mam:1</value></field></x>"),
		IQ("<x xmlns='jabber:x:data' type='form'/>"),
		IQ(RSM("<max>-1</max>")),
		IQ(RSM("<max>ten</max>")),
		IQ(RSM("<after/>")),
		IQ(RSM("<index>3</index>")),
	};
	for (size_t i = 0; i < FG_ARRAY_LEN(bad); i++) {
		const char *why = parse(bad[i], &q, 100);
		if (!why)
			fail_msg("accepted: %s", bad[i]);
		assert_null(q.with);
	}
}

static void test_prefs(void **state)
{
	(void)state;
	struct mam_prefs p;
	struct xml_node *iq = iq_of("<iq xmlns='jabber:server' type='set'><prefs "
				    "xmlns='urn:xmpp:mam:2' default='roster'>"
				    "<always><jid>Romeo@Montague.lit</jid><jid>juliet@capulet.lit/"
				    "balcony</jid></always>"
				    "<never><jid>montague.lit</jid></never></prefs></iq>");
	assert_null(mam_prefs_parse(xml_child(iq, XML_NS_MAM, "prefs"), &p));
	assert_int_equal(p.mode, 1);
	assert_string_equal(p.always, "romeo@montague.lit\njuliet@capulet.lit");
	assert_string_equal(p.never, "montague.lit");
	mam_prefs_clear(&p);
	xml_free(&iq);

	iq = iq_of("<iq xmlns='jabber:server' type='set'><prefs xmlns='urn:xmpp:mam:2' "
		   "default='never'/></iq>");
	assert_null(mam_prefs_parse(xml_child(iq, XML_NS_MAM, "prefs"), &p));
	assert_int_equal(p.mode, 2);
	assert_string_equal(p.always, "");
	assert_string_equal(p.never, "");
	mam_prefs_clear(&p);
	xml_free(&iq);

	iq = iq_of("<iq xmlns='jabber:server' type='set'><prefs xmlns='urn:xmpp:mam:2' "
		   "default='sometimes'/></iq>");
	assert_non_null(mam_prefs_parse(xml_child(iq, XML_NS_MAM, "prefs"), &p));
	xml_free(&iq);
	iq = iq_of("<iq xmlns='jabber:server' type='set'><prefs xmlns='urn:xmpp:mam:2' "
		   "default='always'><never><jid>@bad</jid></never></prefs></iq>");
	assert_non_null(mam_prefs_parse(xml_child(iq, XML_NS_MAM, "prefs"), &p));
	assert_null(p.always);
	xml_free(&iq);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_times),
		cmocka_unit_test(test_form_and_paging),
		cmocka_unit_test(test_refused),
		cmocka_unit_test(test_prefs),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}

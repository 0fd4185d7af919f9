/* sm: XEP-0198's counters (mod 2^32), the acknowledgement queue, the
 * attribute parsers and resumption tokens. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fg.h"
#include "sm.h"
#include "xml.h"

static struct xml_node *stanza(unsigned i)
{
	char id[16];
	struct xml_node *m = xml_new(XML_NS_SERVER, "message");
	snprintf(id, sizeof(id), "m%u", i);
	assert_non_null(m);
	xml_set_attr(m, NULL, "id", id);
	return m;
}

static void test_ack_count(void **state)
{
	unsigned drop = 99;
	(void)state;
	/* 10 sent, the last 4 queued (6 acknowledged before). */
	assert_int_equal(sm_ack_count(10, 4, 6, &drop), SM_ACK_OK);
	assert_int_equal(drop, 0);
	assert_int_equal(sm_ack_count(10, 4, 8, &drop), SM_ACK_OK);
	assert_int_equal(drop, 2);
	assert_int_equal(sm_ack_count(10, 4, 10, &drop), SM_ACK_OK);
	assert_int_equal(drop, 4);
	assert_int_equal(sm_ack_count(10, 4, 11, &drop), SM_ACK_TOO_HIGH);
	assert_int_equal(drop, 0);
	assert_int_equal(sm_ack_count(10, 4, 5, &drop), SM_ACK_STALE);
	assert_int_equal(sm_ack_count(0, 0, 0, &drop), SM_ACK_OK);
	assert_int_equal(sm_ack_count(0, 0, 1, &drop), SM_ACK_TOO_HIGH);
}

static void test_ack_count_wraps(void **state)
{
	unsigned drop = 0;
	(void)state;
	/* Sent counter wrapped to 3; 6 queued: numbers 2^32-3 .. 3. */
	assert_int_equal(sm_ack_count(3, 6, UINT32_MAX - 2, &drop), SM_ACK_OK);
	assert_int_equal(drop, 0);
	assert_int_equal(sm_ack_count(3, 6, UINT32_MAX, &drop), SM_ACK_OK);
	assert_int_equal(drop, 2);
	assert_int_equal(sm_ack_count(3, 6, 0, &drop), SM_ACK_OK);
	assert_int_equal(drop, 3);
	assert_int_equal(sm_ack_count(3, 6, 3, &drop), SM_ACK_OK);
	assert_int_equal(drop, 6);
	assert_int_equal(sm_ack_count(3, 6, 4, &drop), SM_ACK_TOO_HIGH);
	assert_int_equal(sm_ack_count(3, 6, UINT32_MAX - 3, &drop), SM_ACK_STALE);
}

static void test_queue_push_ack_pop(void **state)
{
	struct sm *sm = sm_new(100, true);
	(void)state;
	assert_non_null(sm);
	/* Start near the wrap so that it is crossed. */
	sm->out_h = UINT32_MAX - 1;
	for (unsigned i = 0; i < 5; i++)
		assert_int_equal(sm_push(sm, stanza(i)), FG_OK);
	assert_int_equal(sm->out_h, 3);
	assert_int_equal(sm->n, 5);
	sm->asked = true; /* an <r/> went out: any <a/> answers it */
	assert_int_equal(sm_ack(sm, UINT32_MAX), SM_ACK_OK);
	assert_false(sm->asked);
	assert_int_equal(sm->n, 4);
	assert_string_equal(xml_attr(sm->head->st, "id"), "m1");
	/* The same h again changes nothing; an older one is stale. */
	assert_int_equal(sm_ack(sm, UINT32_MAX), SM_ACK_OK);
	assert_int_equal(sm->n, 4);
	assert_int_equal(sm_ack(sm, UINT32_MAX - 1), SM_ACK_STALE);
	assert_int_equal(sm_ack(sm, 4), SM_ACK_TOO_HIGH);
	assert_int_equal(sm->n, 4);
	/* The last push taken back (the stream refused it). */
	struct xml_node *last = sm_unpush(sm);
	assert_string_equal(xml_attr(last, "id"), "m4");
	xml_free(&last);
	assert_int_equal(sm->out_h, 2);
	assert_int_equal(sm->n, 3);
	assert_int_equal(sm_ack(sm, 1), SM_ACK_OK);
	assert_int_equal(sm->n, 1);
	struct xml_node *st = sm_pop(sm);
	assert_string_equal(xml_attr(st, "id"), "m3");
	xml_free(&st);
	assert_null(sm_pop(sm));
	assert_null(sm_unpush(sm));
	/* Pushing after the queue emptied appends at the right place. */
	assert_int_equal(sm_push(sm, stanza(9)), FG_OK);
	assert_string_equal(xml_attr(sm->head->st, "id"), "m9");
	sm_free(&sm);
	assert_null(sm);
	sm_free(&sm);
}

static void test_parse_h(void **state)
{
	uint32_t h = 7;
	(void)state;
	assert_true(sm_parse_h("0", &h));
	assert_int_equal(h, 0);
	assert_true(sm_parse_h("4294967295", &h));
	assert_int_equal(h, UINT32_MAX);
	assert_true(sm_parse_h("00012", &h));
	assert_int_equal(h, 12);
	assert_false(sm_parse_h("4294967296", &h));
	assert_false(sm_parse_h("99999999999999999999999", &h));
	assert_false(sm_parse_h("", &h));
	assert_false(sm_parse_h(NULL, &h));
	assert_false(sm_parse_h("-1", &h));
	assert_false(sm_parse_h("+1", &h));
	assert_false(sm_parse_h(" 1", &h));
	assert_false(sm_parse_h("1x", &h));
	assert_int_equal(h, 12);
}

static void test_parse_bool(void **state)
{
	(void)state;
	assert_true(sm_parse_bool("true"));
	assert_true(sm_parse_bool("1"));
	assert_false(sm_parse_bool("false"));
	assert_false(sm_parse_bool("0"));
	assert_false(sm_parse_bool("yes"));
	assert_false(sm_parse_bool(NULL));
}

static void test_ids(void **state)
{
	struct sm *a = sm_new(10, true), *b = sm_new(10, true);
	(void)state;
	assert_int_equal(sm_make_id(a), FG_OK);
	assert_int_equal(sm_make_id(b), FG_OK);
	assert_int_equal(strlen(a->id), SM_ID_LEN);
	assert_true(sm_id_valid(a->id));
	assert_string_not_equal(a->id, b->id);
	assert_false(sm_id_valid(NULL));
	assert_false(sm_id_valid(""));
	assert_false(sm_id_valid("AAAAAAAAAAAAAAAAAAAAA"));   /* 21 */
	assert_false(sm_id_valid("AAAAAAAAAAAAAAAAAAAAAAA")); /* 23 */
	assert_false(sm_id_valid("AAAAAAAAAAAAAAAAAAAAA="));
	assert_false(sm_id_valid("AAAAAAAAAAAAAAAAAAAAA/"));
	assert_true(sm_id_valid("AAAAAAAAAAAAAAAAAAAA-_"));
	sm_free(&a);
	sm_free(&b);
}

static void test_elements(void **state)
{
	struct xml_node *a = sm_element_h("a", UINT32_MAX);
	(void)state;
	assert_non_null(a);
	assert_true(xml_is(a, XML_NS_SM, "a"));
	assert_string_equal(xml_attr(a, "h"), "4294967295");
	xml_free(&a);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_ack_count),	   cmocka_unit_test(test_ack_count_wraps),
		cmocka_unit_test(test_queue_push_ack_pop), cmocka_unit_test(test_parse_h),
		cmocka_unit_test(test_parse_bool),	   cmocka_unit_test(test_ids),
		cmocka_unit_test(test_elements),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}

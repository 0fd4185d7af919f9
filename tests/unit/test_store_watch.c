/* store_watch: the payload another node's commit sends on fedgate_config,
 * read defensively -- what it holds, and each way it is refused. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>
#include <stdio.h>
#include <string.h>

#include "fg.h"
#include "store_watch.h"

static char said[300];

static int parse(const char *s, struct store_watch_note *n)
{
	return store_watch_parse(s, strlen(s), n, said, sizeof(said));
}

static void test_payload_read(void **state)
{
	(void)state;
	struct store_watch_note n;
	assert_int_equal(parse("{\"node\":\"n2\",\"at_ms\":1796000000123,\"actions\":"
			       "[\"partner set fabrikam.test\",\"gateway set\"]}",
			       &n),
			 FG_OK);
	assert_string_equal(n.node, "n2");
	assert_true(n.at_ms == 1796000000123LL);
	assert_int_equal(n.nactions, 2);
	assert_string_equal(n.actions[0], "partner set fabrikam.test");
	char text[64];
	store_watch_actions_text(&n, text, sizeof(text));
	assert_string_equal(text, "partner set fabrikam.test, gateway set");
	/* Cut, never overrun, always saying how many were left out. */
	char small[40];
	store_watch_actions_text(&n, small, sizeof(small));
	assert_string_equal(small, "2 actions");
	char mid[52];
	store_watch_actions_text(&n, mid, sizeof(mid));
	assert_string_equal(mid, "partner set fabrikam.test, gateway set");
	store_watch_note_clear(&n);
	/* A big import: as many actions as fit, and how many did not. */
	static char many[8000];
	strcpy(many,
	       "{\"node\":\"n1\",\"at_ms\":5,\"more\":231,\"actions\":[\"partner import a.test\"");
	for (int i = 1; i < 169; i++)
		strcat(many, ",\"partner import b.test\"");
	strcat(many, "]}");
	assert_int_equal(parse(many, &n), FG_OK);
	assert_int_equal(n.nactions, 169);
	assert_true(n.more == 231);
	store_watch_note_clear(&n);
	assert_int_equal(
		parse("{\"node\":\"n1\",\"at_ms\":5,\"more\":2,\"actions\":[\"gateway set\"]}", &n),
		FG_OK);
	store_watch_actions_text(&n, text, sizeof(text));
	assert_string_equal(text, "gateway set and 2 more");
	store_watch_note_clear(&n);
	/* No actions is a change nobody named: still a note. */
	assert_int_equal(parse("{\"node\":\"n1\",\"at_ms\":0,\"actions\":[]}", &n), FG_OK);
	assert_int_equal(n.nactions, 0);
	store_watch_note_clear(&n);
}

static void refused(const char *payload, const char *why)
{
	struct store_watch_note n;
	assert_int_equal(parse(payload, &n), FG_INVAL);
	assert_non_null(strstr(said, why));
	assert_null(n.node);
	assert_null(n.actions);
}

static void test_payload_refused(void **state)
{
	(void)state;
	refused("", "not JSON");
	refused("[1]", "not a JSON object");
	refused("{\"node\":\"n1\",\"node\":\"n2\",\"at_ms\":1,\"actions\":[]}", "not JSON");
	refused("{\"at_ms\":1,\"actions\":[]}", "\"node\"");
	refused("{\"node\":\"\",\"at_ms\":1,\"actions\":[]}", "\"node\"");
	refused("{\"node\":\"n\\u001b[31m\",\"at_ms\":1,\"actions\":[]}", "\"node\"");
	refused("{\"node\":\"n\\u0000x\",\"at_ms\":1,\"actions\":[]}", "not JSON");
	refused("{\"node\":\"n1\",\"at_ms\":-1,\"actions\":[]}", "\"at_ms\"");
	refused("{\"node\":\"n1\",\"at_ms\":1.5,\"actions\":[]}", "\"at_ms\"");
	refused("{\"node\":\"n1\",\"at_ms\":1}", "\"actions\"");
	refused("{\"node\":\"n1\",\"at_ms\":1,\"actions\":[\"a\",7]}", "action 2");
	refused("{\"node\":\"n1\",\"at_ms\":1,\"actions\":[\"line\\nbreak\"]}", "action 1");
	refused("{\"node\":\"n1\",\"at_ms\":1,\"actions\":[],\"more\":-2}", "\"more\"");
	static char big[STORE_WATCH_MAX_PAYLOAD + 2];
	memset(big, ' ', sizeof(big) - 1);
	refused(big, "longer than");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_payload_read),
		cmocka_unit_test(test_payload_refused),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}

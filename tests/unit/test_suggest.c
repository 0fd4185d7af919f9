/* suggest: "did you mean" for misspelt commands and flags. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fg.h"
#include "suggest.h"

static void test_distance(void **state)
{
	(void)state;
	assert_int_equal(suggest_distance("status", "status"), 0);
	assert_int_equal(suggest_distance("", "new"), 3);
	assert_int_equal(suggest_distance("new", ""), 3);
	assert_int_equal(suggest_distance("stauts", "status"), 1); /* a swap is one edit */
	assert_int_equal(suggest_distance("nwe", "new"), 1);
	assert_int_equal(suggest_distance("--domian", "--domain"), 1);
	assert_int_equal(suggest_distance("statuss", "status"), 1);
	assert_int_equal(suggest_distance("satus", "status"), 1);
	assert_int_equal(suggest_distance("stetus", "status"), 1);
	assert_int_equal(suggest_distance("kitten", "sitting"), 3);
	/* OSA, not full Damerau: "ca" -> "abc" edits a swapped pair again. */
	assert_int_equal(suggest_distance("ca", "abc"), 3);
	/* Symmetric. */
	assert_int_equal(suggest_distance("gateway", "getaway"),
			 suggest_distance("getaway", "gateway"));
}

static void test_long_words_are_far(void **state)
{
	(void)state;
	char a[300], b[300];
	memset(a, 'a', sizeof(a) - 1);
	a[sizeof(a) - 1] = '\0';
	memcpy(b, a, sizeof(b));
	assert_true(suggest_distance(a, "status") >= 6);
	assert_int_equal(suggest_distance(a, b), sizeof(a) - 1); /* not compared: far */
}

static const char *const commands[] = {"init",	"serve", "check",   "partner", "gateway", "user",
				       "admin", "audit", "test-im", "status",  "version", "help"};

static void test_closest(void **state)
{
	(void)state;
	size_t n = FG_ARRAY_LEN(commands);
	assert_string_equal(suggest_closest("stauts", commands, n), "status");
	assert_string_equal(suggest_closest("partnr", commands, n), "partner");
	assert_string_equal(suggest_closest("verison", commands, n), "version");
	assert_string_equal(suggest_closest("serv", commands, n), "serve");
	/* Two slips in a five-letter word are too many to guess from. */
	assert_null(suggest_closest("sever", commands, n));
	assert_string_equal(suggest_closest("status", commands, n), "status");
	/* Far from everything: no guess. */
	assert_null(suggest_closest("frobnicate", commands, n));
	assert_null(suggest_closest("x", commands, n));
	/* Two edits in a three-letter word is a different word. */
	assert_null(suggest_closest("usr", (const char *const[]){"ask"}, 1));
	/* One edit in a short word is a typo. */
	assert_string_equal(suggest_closest("nwe", (const char *const[]){"new", "set"}, 2), "new");
	/* A unique prefix of three or more letters. */
	assert_string_equal(suggest_closest("stat", commands, n), "status");
	assert_string_equal(suggest_closest("ad", (const char *const[]){"admin", "add"}, 2), "add");
	/* A prefix of two candidates names neither. */
	assert_null(suggest_closest("adm", (const char *const[]){"admin", "admit"}, 2));
}

static void test_flags_and_nulls(void **state)
{
	(void)state;
	const char *const flags[] = {"--domain", NULL, "--description", "--dialback", "--json"};
	size_t n = FG_ARRAY_LEN(flags);
	assert_string_equal(suggest_closest("--domian", flags, n), "--domain");
	assert_string_equal(suggest_closest("--jsn", flags, n), "--json");
	assert_string_equal(suggest_closest("--dialbak", flags, n), "--dialback");
	assert_null(suggest_closest("--verbose", flags, n));
	assert_null(suggest_closest("--domain", flags, 0));
	/* Ties go to the first candidate. */
	assert_string_equal(suggest_closest("--xyz1", (const char *const[]){"--xyz2", "--xyz3"}, 2),
			    "--xyz2");
}

static char *option_message(const char *bad)
{
	static const char *const known[] = {"--config", "--help", "-c"};
	char *text = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&text, &len);
	assert_non_null(f);
	suggest_unknown_option(f, "fedgate backup", bad, known, 3);
	assert_int_equal(fclose(f), 0);
	return text;
}

static void test_unknown_option_message(void **state)
{
	(void)state;
	char *m = option_message("--cofnig");
	assert_string_equal(
		m, "fedgate backup: unknown option '--cofnig'; did you mean '--config'?\n");
	free(m);
	m = option_message("--frobnicate");
	assert_string_equal(m, "fedgate backup: unknown option '--frobnicate'\n");
	free(m);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_distance),
		cmocka_unit_test(test_long_words_are_far),
		cmocka_unit_test(test_closest),
		cmocka_unit_test(test_flags_and_nulls),
		cmocka_unit_test(test_unknown_option_message),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}

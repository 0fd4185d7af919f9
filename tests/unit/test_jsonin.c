/* jsonin: JSON people write, read strictly -- a key given twice is refused
 * with the key and where its second use starts. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>
#include <stdio.h>
#include <string.h>

#include "jsonin.h"

static char said[700];

/* Parses s; expects a refusal and returns its sentence. */
static const char *refusal(const char *s, struct jsonin_error *e)
{
	json_t *j = jsonin_load(s, strlen(s), e);
	assert_null(j);
	jsonin_describe(e, said, sizeof(said));
	return said;
}

static void test_duplicate_key_named_with_its_place(void **state)
{
	(void)state;
	struct jsonin_error e;
	assert_string_equal(refusal("{\"domain\":\"a\",\"domain\":\"b\"}", &e),
			    "the key \"domain\" is given twice (the second at line 1, column 15)");
	assert_string_equal(e.key, "domain");
	assert_int_equal(e.position, 14);
	/* In a nested object, on a later line, after a multi-byte character
	 * (columns count characters). */
	refusal("{\"p\": [{\"d\": \"\xc3\xa9\xc3\xa9\",\n  \"x\": 1, \"x\": 2}]}", &e);
	assert_string_equal(e.key, "x");
	assert_int_equal(e.line, 2);
	assert_int_equal(e.column, 11);
	/* Escapes: the key as decoded, a quote inside it included. */
	refusal("{\"t\\\"ls\": 1, \"t\\u0022ls\": 2}", &e);
	assert_string_equal(e.key, "t\"ls");
	assert_int_equal(e.column, 14);
	refusal("{\"a\\\\\": 1, \"a\\\\\": 2}", &e);
	assert_string_equal(e.key, "a\\");
}

static void test_malformed_and_well_formed(void **state)
{
	(void)state;
	struct jsonin_error e;
	const char *s = refusal("{\"domain\": }", &e);
	assert_string_equal(e.key, "");
	assert_int_equal(strncmp(s, "malformed JSON at line 1, column 12 (byte 12): ", 47), 0);
	/* The same key in two objects is fine. */
	const char *ok = "[{\"domain\":\"a\"},{\"domain\":\"b\"}]";
	json_t *j = jsonin_load(ok, strlen(ok), &e);
	assert_non_null(j);
	assert_int_equal(json_array_size(j), 2);
	json_decref(j);
}

static void test_load_file(void **state)
{
	(void)state;
	struct jsonin_error e;
	char text[] = "{\"partners\": [\n {\"tls\": \"optional\",\n  \"tls\": \"required\"}]}";
	FILE *f = fmemopen(text, strlen(text), "r");
	assert_non_null(f);
	assert_null(jsonin_load_file(f, &e));
	fclose(f);
	assert_string_equal(e.key, "tls");
	assert_int_equal(e.line, 3);
	assert_int_equal(e.column, 3);
	char good[] = "{\"partners\": []}";
	f = fmemopen(good, strlen(good), "r");
	json_t *j = jsonin_load_file(f, &e);
	fclose(f);
	assert_true(json_is_array(json_object_get(j, "partners")));
	json_decref(j);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_duplicate_key_named_with_its_place),
		cmocka_unit_test(test_malformed_and_well_formed),
		cmocka_unit_test(test_load_file),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}

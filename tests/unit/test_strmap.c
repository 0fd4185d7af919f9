/* strmap: the map behind sessions, rosters and login-failure counts. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fg.h"
#include "strmap.h"

static int count_cb(void *ud, const char *key, void *value)
{
	(void)key;
	*(size_t *)ud += (size_t)(uintptr_t)value;
	return 0;
}

static int remove_cb(void *ud, const char *key, void *value)
{
	(void)value;
	/* Removing the entry being visited is allowed. */
	if (key[0] == 'k' && atoi(key + 1) % 2 == 0)
		strmap_remove(ud, key);
	return 0;
}

static void test_put_get_replace_remove(void **state)
{
	(void)state;
	struct strmap *m = strmap_new();
	void *old = (void *)1;
	assert_non_null(m);
	assert_null(strmap_get(m, "alice@contoso.test"));
	assert_int_equal(strmap_put(m, "alice@contoso.test", (void *)10, &old), FG_OK);
	assert_null(old);
	assert_int_equal(strmap_put(m, "alice@contoso.test", (void *)11, &old), FG_OK);
	assert_ptr_equal(old, (void *)10);
	assert_ptr_equal(strmap_get(m, "alice@contoso.test"), (void *)11);
	assert_null(strmap_get(m, "alice@contoso.tes"));
	assert_int_equal(strmap_count(m), 1);
	assert_ptr_equal(strmap_remove(m, "alice@contoso.test"), (void *)11);
	assert_null(strmap_remove(m, "alice@contoso.test"));
	assert_int_equal(strmap_count(m), 0);
	strmap_free(&m, NULL);
	assert_null(m);
}

static void test_growth_keeps_every_entry(void **state)
{
	(void)state;
	struct strmap *m = strmap_new();
	char key[32];
	for (uintptr_t i = 1; i <= 5000; i++) {
		snprintf(key, sizeof(key), "k%lu", (unsigned long)i);
		assert_int_equal(strmap_put(m, key, (void *)i, NULL), FG_OK);
	}
	assert_int_equal(strmap_count(m), 5000);
	for (uintptr_t i = 1; i <= 5000; i++) {
		snprintf(key, sizeof(key), "k%lu", (unsigned long)i);
		assert_ptr_equal(strmap_get(m, key), (void *)i);
	}
	size_t sum = 0;
	strmap_each(m, count_cb, &sum);
	assert_int_equal(sum, 5000u * 5001u / 2);
	strmap_each(m, remove_cb, m);
	assert_int_equal(strmap_count(m), 2500);
	assert_null(strmap_get(m, "k2"));
	assert_ptr_equal(strmap_get(m, "k3"), (void *)3);
	strmap_free(&m, NULL);
}

static void test_free_releases_values(void **state)
{
	(void)state;
	struct strmap *m = strmap_new();
	for (int i = 0; i < 100; i++) {
		char key[16];
		snprintf(key, sizeof(key), "v%d", i);
		assert_int_equal(strmap_put(m, key, malloc(8), NULL), FG_OK);
	}
	strmap_free(&m, free); /* LeakSanitizer checks the values went */
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_put_get_replace_remove),
		cmocka_unit_test(test_growth_keeps_every_entry),
		cmocka_unit_test(test_free_releases_values),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}

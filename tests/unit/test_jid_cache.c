/* jid_cache: prepared addresses by their text, shared until put back. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>
#include <stdio.h>
#include <string.h>

#include "fg.h"
#include "jid.h"
#include "jid_cache.h"

static const struct jid_entry *get(struct jid_cache *c, const char *s, enum jid_err *err)
{
	return jid_cache_get(c, s, strlen(s), err);
}

/* The entry is the full preparation's result, and the second lookup of the
 * same text finds it without preparing again. */
static void test_prepared_once(void **state)
{
	(void)state;
	struct jid_cache *c = jid_cache_new(64);
	enum jid_err err;
	const struct jid_entry *a = get(c, "Alice@Contoso.TEST/Laptop", &err);
	assert_non_null(a);
	assert_string_equal(a->j.node, "alice");
	assert_string_equal(a->j.domain, "contoso.test");
	assert_string_equal(a->j.resource, "Laptop");
	assert_string_equal(a->bare, "alice@contoso.test");
	const struct jid_entry *b = get(c, "Alice@Contoso.TEST/Laptop", &err);
	assert_ptr_equal(a, b);
	unsigned long long hits, misses;
	jid_cache_stats(c, &hits, &misses);
	assert_int_equal(hits, 1);
	assert_int_equal(misses, 1);
	/* Another spelling of the same JID is its own text. */
	const struct jid_entry *d = get(c, "alice@contoso.test/Laptop", &err);
	assert_non_null(d);
	assert_true(jid_equal(&a->j, &d->j));
	jid_cache_put(c, a);
	jid_cache_put(c, b);
	jid_cache_put(c, d);
	jid_cache_free(&c);
	assert_null(c);
}

/* Bad addresses say why and are never kept. */
static void test_bad_addresses(void **state)
{
	(void)state;
	struct jid_cache *c = jid_cache_new(64);
	enum jid_err err = JID_OK;
	assert_null(get(c, "a@b@c", &err));
	assert_int_equal(err, JID_ERR_DOMAIN);
	assert_null(get(c, "@contoso.test", &err));
	assert_int_equal(err, JID_ERR_EMPTY);
	assert_null(get(c, "a@b@c", &err));
	unsigned long long hits, misses;
	jid_cache_stats(c, &hits, &misses);
	assert_int_equal(hits, 0);
	jid_cache_free(&c);
}

/* With one slot every new text wants the same place: a held entry is never
 * taken from its holder (its strings stay valid), the newcomer lives apart
 * until put back, and an entry nobody holds makes room. Under ASan a freed
 * entry still in use would show here. */
static void test_held_entries_survive_collisions(void **state)
{
	(void)state;
	struct jid_cache *c = jid_cache_new(1);
	enum jid_err err;
	const struct jid_entry *a = get(c, "a@one.test", &err);
	const struct jid_entry *b = get(c, "b@two.test/r", &err);
	assert_non_null(a);
	assert_non_null(b);
	assert_ptr_not_equal(a, b);
	assert_string_equal(a->bare, "a@one.test");
	assert_string_equal(b->bare, "b@two.test");
	jid_cache_put(c, b); /* apart: freed now */
	const struct jid_entry *a2 = get(c, "a@one.test", &err);
	assert_ptr_equal(a, a2); /* still in its slot */
	jid_cache_put(c, a);
	jid_cache_put(c, a2);
	/* Nobody holds a: the next text takes the slot. */
	const struct jid_entry *e = get(c, "c@three.test", &err);
	assert_string_equal(e->j.domain, "three.test");
	jid_cache_put(c, e);
	const struct jid_entry *again = get(c, "c@three.test", &err);
	assert_ptr_equal(e, again);
	jid_cache_put(c, again);
	unsigned long long hits, misses;
	jid_cache_stats(c, &hits, &misses);
	assert_int_equal(hits, 2);
	assert_int_equal(misses, 3);
	jid_cache_free(&c);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_prepared_once),
		cmocka_unit_test(test_bad_addresses),
		cmocka_unit_test(test_held_entries_survive_collisions),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}

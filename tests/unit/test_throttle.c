/* throttle: growing delays per address, turns for parallel attempts,
 * refusal of the guessing address only, expiry and the memory cap. Time is
 * a parameter, so nothing here waits. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>
#include <stdio.h>

#include "throttle.h"

#define T0 1000000u /* any start: the clock is monotonic, not the epoch */

static struct throttle *make(unsigned refuse_after, unsigned delay_max_ms, size_t max_entries)
{
	struct throttle_limits lim = {.refuse_after = refuse_after,
				      .window_s = 300,
				      .delay_max_ms = delay_max_ms,
				      .max_entries = max_entries};
	struct throttle *t = throttle_new(&lim);
	assert_non_null(t);
	return t;
}

/* 1 s, 2 s, 4 s ... for failures spread over accounts; the same account
 * again adds a doubling every second failure; the cap holds. */
static void test_delays_grow_per_address(void **state)
{
	(void)state;
	struct throttle *t = make(1000, 30000, 100);
	const uint64_t spread[] = {1000, 2000, 4000, 8000, 16000, 30000, 30000};
	char name[32];
	for (unsigned i = 0; i < 7; i++) {
		snprintf(name, sizeof(name), "user%u@contoso.test", i);
		assert_int_equal(throttle_failed(t, "127.4.0.1", name, T0), spread[i]);
	}
	const uint64_t same[] = {1000, 2000, 8000, 16000, 30000};
	for (unsigned i = 0; i < 5; i++)
		assert_int_equal(throttle_failed(t, "127.4.0.2", "alice@contoso.test", T0),
				 same[i]);
	/* Another address starts from nothing, whatever alice's history. */
	assert_int_equal(throttle_failed(t, "127.4.0.3", "alice@contoso.test", T0), 1000);
	throttle_free(&t);
	assert_null(t);
}

/* The address that failed nothing is checked at once, always; the one
 * that failed waits its turn, and parallel attempts queue one delay
 * apart. */
static void test_turns(void **state)
{
	(void)state;
	struct throttle *t = make(1000, 30000, 100);
	uint64_t wait = 99;
	assert_int_equal(throttle_admit(t, "127.4.0.2", T0, &wait), THROTTLE_NOW);
	assert_int_equal(wait, 0);
	assert_int_equal(throttle_failed(t, "127.4.0.1", "alice@contoso.test", T0), 1000);
	assert_int_equal(throttle_failed(t, "127.4.0.1", "alice@contoso.test", T0), 2000);
	/* Inside the delay of the last failure: wait for it, then one more
	 * delay for each further parallel attempt. */
	assert_int_equal(throttle_admit(t, "127.4.0.1", T0 + 500, &wait), THROTTLE_WAIT);
	assert_int_equal(wait, 1500);
	assert_int_equal(throttle_admit(t, "127.4.0.1", T0 + 500, &wait), THROTTLE_WAIT);
	assert_int_equal(wait, 3500);
	/* A client that waited for its failure's answer goes on at once. */
	struct throttle *u = make(1000, 30000, 100);
	assert_int_equal(throttle_failed(u, "127.4.0.1", "alice@contoso.test", T0), 1000);
	assert_int_equal(throttle_admit(u, "127.4.0.1", T0 + 1000, &wait), THROTTLE_NOW);
	/* Others are never touched. */
	assert_int_equal(throttle_admit(t, "127.4.0.2", T0 + 500, &wait), THROTTLE_NOW);
	assert_int_equal(throttle_admit(t, "127.4.0.2", T0 + 500, &wait), THROTTLE_NOW);
	throttle_free(&t);
	throttle_free(&u);
}

/* refuse_after failures refuse that address until the window has passed
 * since its last failure; no other address is refused. */
static void test_refusal_is_per_address(void **state)
{
	(void)state;
	struct throttle *t = make(3, 0, 100);
	uint64_t wait = 0;
	for (int i = 0; i < 3; i++) {
		assert_int_equal(throttle_admit(t, "127.4.0.1", T0, &wait), THROTTLE_NOW);
		/* No delays configured: answered at once. */
		assert_int_equal(throttle_failed(t, "127.4.0.1", "alice@contoso.test", T0), 0);
	}
	assert_int_equal(throttle_admit(t, "127.4.0.1", T0 + 1000, &wait), THROTTLE_REFUSE);
	assert_int_equal(wait, 299000);
	assert_int_equal(throttle_admit(t, "127.4.0.2", T0 + 1000, &wait), THROTTLE_NOW);
	assert_int_equal(throttle_failures(t, "127.4.0.1", T0 + 1000), 3);
	/* The window passes: forgotten. */
	assert_int_equal(throttle_admit(t, "127.4.0.1", T0 + 300000, &wait), THROTTLE_NOW);
	assert_int_equal(throttle_failures(t, "127.4.0.1", T0 + 300000), 0);
	assert_int_equal(throttle_size(t), 0);
	throttle_free(&t);
}

/* Signing in forgets the pair, not the address. */
static void test_success_forgets_the_pair_only(void **state)
{
	(void)state;
	struct throttle *t = make(1000, 60000, 100);
	for (int i = 0; i < 3; i++)
		throttle_failed(t, "127.4.0.1", "alice@contoso.test", T0);
	assert_int_equal(throttle_size(t), 2);
	throttle_succeeded(t, "127.4.0.1", "alice@contoso.test");
	assert_int_equal(throttle_size(t), 1);
	assert_int_equal(throttle_failures(t, "127.4.0.1", T0), 3);
	/* The fourth failure: the address's three doublings, no pair's. */
	assert_int_equal(throttle_failed(t, "127.4.0.1", "alice@contoso.test", T0), 8000);
	throttle_free(&t);
}

/* Any peer makes entries: the table stays at its cap, the least recently
 * failed go first, the one being counted never. */
static void test_cap_evicts_oldest(void **state)
{
	(void)state;
	struct throttle *t = make(1000, 30000, 8);
	char addr[32];
	for (unsigned i = 0; i < 100; i++) {
		snprintf(addr, sizeof(addr), "127.5.0.%u", i);
		throttle_failed(t, addr, "", T0 + i);
		assert_true(throttle_size(t) <= 8);
	}
	assert_int_equal(throttle_failures(t, "127.5.0.99", T0 + 100), 1);
	assert_int_equal(throttle_failures(t, "127.5.0.92", T0 + 100), 1);
	assert_int_equal(throttle_failures(t, "127.5.0.91", T0 + 100), 0);
	/* Pairs count against the cap too. */
	for (unsigned i = 0; i < 100; i++) {
		snprintf(addr, sizeof(addr), "name%u", i);
		throttle_failed(t, "127.6.0.1", addr, T0 + 200);
		assert_true(throttle_size(t) <= 8);
	}
	assert_int_equal(throttle_failures(t, "127.6.0.1", T0 + 200), 100);
	/* A cap of one: the pair evicts its own address, nothing breaks. */
	struct throttle *one = make(1000, 30000, 1);
	assert_int_equal(throttle_failed(one, "127.4.0.1", "alice", T0), 1000);
	assert_int_equal(throttle_size(one), 1);
	throttle_free(&one);
	throttle_free(&t);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_delays_grow_per_address),
		cmocka_unit_test(test_turns),
		cmocka_unit_test(test_refusal_is_per_address),
		cmocka_unit_test(test_success_forgets_the_pair_only),
		cmocka_unit_test(test_cap_evicts_oldest),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}

/* history: each partner's 24 hours of stanzas per minute and its last
 * connection events, with time as a parameter. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>
#include <stdio.h>
#include <string.h>

#include "fg.h"
#include "history.h"
#include "policy.h"

/* 2026-12-06T10:00:00Z, a minute boundary. */
#define T0 ((time_t)1796551200)

static json_int_t at(json_t *r, const char *key, size_t i)
{
	return json_integer_value(json_array_get(json_object_get(r, key), i));
}

static json_int_t sum(json_t *r, const char *key)
{
	json_int_t n = 0;
	size_t i;
	json_t *v;
	json_array_foreach(json_object_get(r, key), i, v) n += json_integer_value(v);
	return n;
}

static void test_minutes_roll_over(void **state)
{
	(void)state;
	struct history *h = history_new();
	assert_non_null(h);
	assert_int_equal(history_partner_add(h, "fabrikam.test"), FG_OK);
	history_stanza(h, NULL, "fabrikam.test", true, T0 + 5);
	history_stanza(h, NULL, "fabrikam.test", true, T0 + 59);
	history_stanza(h, NULL, "fabrikam.test", false, T0 + 60); /* the next minute */
	history_stanza(h, NULL, "nobody.test", true, T0);	  /* no partner: not kept */

	json_t *r = history_json(h, "fabrikam.test", T0 + 61);
	assert_non_null(r);
	assert_int_equal(json_array_size(json_object_get(r, "stanzas_in")), HISTORY_MINUTES);
	assert_int_equal(json_array_size(json_object_get(r, "stanzas_out")), HISTORY_MINUTES);
	assert_int_equal(json_integer_value(json_object_get(r, "minute_seconds")), 60);
	/* Oldest first: the last bucket is the current minute (T0+60). */
	assert_int_equal(at(r, "stanzas_in", HISTORY_MINUTES - 2), 2);
	assert_int_equal(at(r, "stanzas_out", HISTORY_MINUTES - 1), 1);
	assert_int_equal(sum(r, "stanzas_in"), 2);
	assert_string_equal(json_string_value(json_object_get(r, "now")), "2026-12-06T10:01:01Z");
	/* since: the start of the first of the 1440 minutes. */
	assert_string_equal(json_string_value(json_object_get(r, "since")), "2026-12-05T10:02:00Z");
	json_decref(r);

	/* 23 h 59 min later the first minute is the oldest still shown... */
	r = history_json(h, "fabrikam.test", T0 + (HISTORY_MINUTES - 1) * 60);
	assert_int_equal(at(r, "stanzas_in", 0), 2);
	assert_int_equal(sum(r, "stanzas_out"), 1);
	json_decref(r);
	/* ...and a minute on, it is gone, whether or not anything was counted. */
	r = history_json(h, "fabrikam.test", T0 + HISTORY_MINUTES * 60);
	assert_int_equal(sum(r, "stanzas_in"), 0);
	assert_int_equal(at(r, "stanzas_out", 0), 1);
	json_decref(r);

	/* A stanza a day and a half later: the ring moves on and nothing of
	 * the old day is counted again in the bucket it reuses. */
	history_stanza(h, NULL, "fabrikam.test", true, T0 + 36 * 3600 + 5);
	r = history_json(h, "fabrikam.test", T0 + 36 * 3600 + 30);
	assert_int_equal(sum(r, "stanzas_in"), 1);
	assert_int_equal(sum(r, "stanzas_out"), 0);
	assert_int_equal(at(r, "stanzas_in", HISTORY_MINUTES - 1), 1);
	json_decref(r);
	/* Two days after T0+60 its bucket index is reused: only the new
	 * stanza is in it; the one of 12 hours before is still counted. */
	history_stanza(h, NULL, "fabrikam.test", false, T0 + 60 + 2 * HISTORY_SPAN_S);
	r = history_json(h, "fabrikam.test", T0 + 60 + 2 * HISTORY_SPAN_S);
	assert_int_equal(sum(r, "stanzas_out"), 1);
	assert_int_equal(at(r, "stanzas_out", HISTORY_MINUTES - 1), 1);
	assert_int_equal(sum(r, "stanzas_in"), 1);
	json_decref(r);
	history_free(&h);
	assert_null(h);
}

static void test_events_bounded_and_expire(void **state)
{
	(void)state;
	struct history *h = history_new();
	assert_int_equal(history_partner_add(h, "fabrikam.test"), FG_OK);
	char reason[32];
	for (int i = 0; i < HISTORY_EVENTS + 30; i++) {
		snprintf(reason, sizeof(reason), "attempt %d", i);
		history_event(h, NULL, HISTORY_FAILED, false, "contoso.test", "fabrikam.test", NULL,
			      reason, T0 + i);
	}
	json_t *r = history_json(h, "fabrikam.test", T0 + 200);
	json_t *ev = json_object_get(r, "events");
	assert_int_equal(json_array_size(ev), HISTORY_EVENTS);
	/* The oldest went: the first kept is attempt 30, the last attempt 129. */
	assert_string_equal(json_string_value(json_object_get(json_array_get(ev, 0), "reason")),
			    "attempt 30");
	json_t *last = json_array_get(ev, HISTORY_EVENTS - 1);
	assert_string_equal(json_string_value(json_object_get(last, "reason")), "attempt 129");
	assert_string_equal(json_string_value(json_object_get(last, "event")), "failed");
	assert_string_equal(json_string_value(json_object_get(last, "direction")), "out");
	assert_null(json_object_get(last, "method"));
	json_decref(r);

	/* A day later, the events of its first 100 seconds are past 24 h. */
	r = history_json(h, "fabrikam.test", T0 + HISTORY_SPAN_S + 100);
	assert_int_equal(json_array_size(json_object_get(r, "events")), 30);
	json_decref(r);
	/* A connected event after all of them are: it alone is left. */
	history_event(h, NULL, HISTORY_CONNECTED, true, "contoso.test", "fabrikam.test",
		      "SASL over TLS", NULL, T0 + HISTORY_SPAN_S + 200);
	r = history_json(h, "fabrikam.test", T0 + HISTORY_SPAN_S + 200);
	ev = json_object_get(r, "events");
	assert_int_equal(json_array_size(ev), 1);
	json_t *e = json_array_get(ev, 0);
	assert_string_equal(json_string_value(json_object_get(e, "event")), "connected");
	assert_string_equal(json_string_value(json_object_get(e, "direction")), "in");
	assert_string_equal(json_string_value(json_object_get(e, "method")), "SASL over TLS");
	assert_null(json_object_get(e, "reason"));
	json_decref(r);
	/* Shown later still, it is gone too. */
	r = history_json(h, "fabrikam.test", T0 + 2 * HISTORY_SPAN_S + 201);
	assert_int_equal(json_array_size(json_object_get(r, "events")), 0);
	json_decref(r);
	history_free(&h);
}

/* A partner's additional domain counts for the partner; a partner kept
 * across a change keeps its history; a removed one loses it. */
static void test_additional_domains_and_lifetime(void **state)
{
	(void)state;
	struct policy *pol = policy_new();
	struct partner *p = partner_new("fabrikam.test");
	assert_non_null(pol);
	assert_non_null(p);
	assert_int_equal(partner_add_domain(p, "chat.fabrikam.test"), FG_OK);
	assert_int_equal(policy_put(pol, p), FG_OK);
	struct history *h = history_new();
	assert_int_equal(history_partner_add(h, "fabrikam.test"), FG_OK);
	history_stanza(h, pol, "chat.fabrikam.test", true, T0);
	history_stanza(h, pol, "fabrikam.test", true, T0);
	history_stanza(h, pol, "other.test", true, T0);
	history_event(h, pol, HISTORY_CLOSED, false, "contoso.test", "chat.fabrikam.test",
		      "TLS Dialback", "idle", T0);
	assert_null(history_json(h, "chat.fabrikam.test", T0)); /* the primary is the key */
	json_t *r = history_json(h, "fabrikam.test", T0);
	assert_int_equal(at(r, "stanzas_in", HISTORY_MINUTES - 1), 2);
	json_t *e = json_array_get(json_object_get(r, "events"), 0);
	assert_string_equal(json_string_value(json_object_get(e, "remote")), "chat.fabrikam.test");
	assert_string_equal(json_string_value(json_object_get(e, "reason")), "idle");
	json_decref(r);

	/* Added again (a `partner set`): nothing is lost. */
	assert_int_equal(history_partner_add(h, "fabrikam.test"), FG_OK);
	assert_int_equal(history_partners(h), 1);
	r = history_json(h, "fabrikam.test", T0);
	assert_int_equal(sum(r, "stanzas_in"), 2);
	json_decref(r);
	history_partner_remove(h, "fabrikam.test");
	assert_int_equal(history_partners(h), 0);
	assert_null(history_json(h, "fabrikam.test", T0));
	history_stanza(h, pol, "fabrikam.test", true, T0); /* no history: nothing */
	assert_int_equal(history_partners(h), 0);
	history_free(&h);
	policy_free(&pol);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_minutes_roll_over),
		cmocka_unit_test(test_events_bounded_and_expire),
		cmocka_unit_test(test_additional_domains_and_lifetime),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}

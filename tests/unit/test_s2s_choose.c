/* s2s_out_choose: the one rule by which outbound streams pick their next
 * step and the probe predicts them (SPEC §3: the most preferred allowed
 * method the offer permits, never a weaker one). */
#include "fg.h"
#include "policy.h"
#include "s2s_out.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

enum { SASL = AUTH_SASL_TLS, TLSDB = AUTH_TLS_DIALBACK, TCPDB = AUTH_TCP_DIALBACK };

static void test_choices(void **state)
{
	(void)state;
	static const struct {
		unsigned methods;
		bool secure, tls_offered, cert_ok, external;
		enum s2s_out_next want;
	} cases[] = {
		/* before TLS: STARTTLS whenever a TLS method is allowed and offered */
		{SASL, false, true, false, false, S2S_NEXT_STARTTLS},
		{TLSDB, false, true, false, false, S2S_NEXT_STARTTLS},
		{SASL | TLSDB | TCPDB, false, true, false, false, S2S_NEXT_STARTTLS},
		/* ... never dialback without TLS when TLS is offered and allowed */
		{TLSDB | TCPDB, false, true, false, false, S2S_NEXT_STARTTLS},
		{TCPDB, false, true, false, false, S2S_NEXT_DIALBACK},
		{SASL | TCPDB, false, false, false, false, S2S_NEXT_DIALBACK},
		{SASL | TLSDB, false, false, false, false, S2S_NEXT_FAIL_NO_TLS},
		{0, false, true, false, false, S2S_NEXT_FAIL_NO_TLS},
		/* after TLS: SASL EXTERNAL first, only with a good certificate */
		{SASL | TLSDB, true, false, true, true, S2S_NEXT_SASL},
		{SASL | TLSDB, true, false, false, true, S2S_NEXT_DIALBACK},
		{SASL | TLSDB, true, false, true, false, S2S_NEXT_DIALBACK},
		{SASL, true, false, false, true, S2S_NEXT_FAIL_CERT},
		{SASL, true, false, true, false, S2S_NEXT_FAIL_NO_EXTERNAL},
		{SASL | TCPDB, true, false, true, false, S2S_NEXT_FAIL_NO_EXTERNAL},
		{TLSDB, true, false, true, true, S2S_NEXT_DIALBACK},
	};
	for (size_t i = 0; i < FG_ARRAY_LEN(cases); i++) {
		enum s2s_out_next got =
			s2s_out_choose(cases[i].methods, cases[i].secure, cases[i].tls_offered,
				       cases[i].cert_ok, cases[i].external);
		if (got != cases[i].want)
			fail_msg("case %zu: got %d, want %d", i, (int)got, (int)cases[i].want);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_choices),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}

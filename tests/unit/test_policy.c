/* Unit tests for src/policy.c: the 18-row matrix, value spellings, defaults,
 * validation messages, the partner set and its lookups, gateway ranges. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "fg.h"
#include "pin.h"
#include "policy.h"

#define SASL_TLS_ERR                                                                              \
	"SASL must have TLS support: tls is not-supported while sasl is %s; set tls to required " \
	"or optional, or set sasl to not-supported."
#define NO_AUTH_ERR                                                                        \
	"SASL or Dialback must be enabled: with sasl not-supported and dialback false no " \
	"authentication method is left; set dialback to true, or set sasl to required or " \
	"optional (with tls required or optional)."
#define ROW1_WARN                                                                               \
	"Dialback will not operate when both TLS and SASL are required: streams with this "     \
	"partner use SASL over TLS only; set tls or sasl to optional to let dialback operate, " \
	"or set dialback to false."
#define TLS_OPT_WARN                                                                            \
	"SASL needs TLS; TLS optional may fail negotiation: if the partner's server offers no " \
	"STARTTLS, SASL over TLS cannot be used; set tls to required to make sure it can."

#define REQ NEG_REQUIRED
#define OPT NEG_OPTIONAL
#define NS  NEG_NOT_SUPPORTED
#define S   AUTH_SASL_TLS
#define TD  AUTH_TLS_DIALBACK
#define CD  AUTH_TCP_DIALBACK

/* SPEC §2, transcribed from the table (not from the rule), so that the
 * implementation of the rule is checked against the table. */
static const struct matrix_row {
	enum negotiation tls, sasl;
	bool dialback;
	int row;
	unsigned methods;
	const char *methods_text;
	enum verdict verdict;
	const char *message; /* substring of the error or warning; NULL for none */
} matrix[] = {
	{REQ, REQ, true, 1, S, "SASL over TLS", VERDICT_WARNING, "Dialback will not operate"},
	{REQ, REQ, false, 2, S, "SASL over TLS", VERDICT_SAVED, NULL},
	{OPT, REQ, true, 3, S | TD | CD, "SASL over TLS, TLS Dialback, TCP Dialback",
	 VERDICT_WARNING, "SASL needs TLS; TLS optional may fail negotiation"},
	{OPT, REQ, false, 4, S, "SASL over TLS", VERDICT_WARNING,
	 "SASL needs TLS; TLS optional may fail negotiation"},
	{NS, REQ, true, 5, CD, "TCP Dialback", VERDICT_REJECTED,
	 "SASL must have TLS support: tls is not-supported while sasl is required"},
	{NS, REQ, false, 6, 0, "none", VERDICT_REJECTED,
	 "SASL must have TLS support: tls is not-supported while sasl is required"},
	{REQ, OPT, true, 7, S | TD, "SASL over TLS, TLS Dialback", VERDICT_SAVED, NULL},
	{REQ, OPT, false, 8, S, "SASL over TLS", VERDICT_SAVED, NULL},
	{OPT, OPT, true, 9, S | TD | CD, "SASL over TLS, TLS Dialback, TCP Dialback",
	 VERDICT_WARNING, "SASL needs TLS; TLS optional may fail negotiation"},
	{OPT, OPT, false, 10, S, "SASL over TLS", VERDICT_WARNING,
	 "SASL needs TLS; TLS optional may fail negotiation"},
	{NS, OPT, true, 11, CD, "TCP Dialback", VERDICT_REJECTED,
	 "SASL must have TLS support: tls is not-supported while sasl is optional"},
	{NS, OPT, false, 12, 0, "none", VERDICT_REJECTED,
	 "SASL must have TLS support: tls is not-supported while sasl is optional"},
	{REQ, NS, true, 13, TD, "TLS Dialback", VERDICT_SAVED, NULL},
	{REQ, NS, false, 14, 0, "none", VERDICT_REJECTED, "SASL or Dialback must be enabled"},
	{OPT, NS, true, 15, TD | CD, "TLS Dialback, TCP Dialback", VERDICT_SAVED, NULL},
	{OPT, NS, false, 16, 0, "none", VERDICT_REJECTED, "SASL or Dialback must be enabled"},
	{NS, NS, true, 17, CD, "TCP Dialback", VERDICT_SAVED, NULL},
	{NS, NS, false, 18, 0, "none", VERDICT_REJECTED, "SASL or Dialback must be enabled"},
};

/* ---- helpers ---- */

static struct partner *mkpartner(const char *domain)
{
	struct partner *p = partner_new(domain);

	assert_non_null(p);
	return p;
}

static bool has_message(const char (*msgs)[320], size_t n, const char *sub)
{
	for (size_t i = 0; i < n; i++)
		if (strstr(msgs[i], sub) != NULL)
			return true;
	return false;
}

static void dump_verdict(const struct policy_verdict *v)
{
	for (size_t i = 0; i < v->nerrors; i++)
		print_message("  error: %s\n", v->errors[i]);
	for (size_t i = 0; i < v->nwarnings; i++)
		print_message("  warning: %s\n", v->warnings[i]);
}

/* Checks p (new) against pol and expects rejection with one error that
 * contains `sub`. */
static void expect_error(const struct policy *pol, struct partner *p,
			 const struct domain_list *local, const char *sub)
{
	struct policy_verdict v;
	int rc = policy_check(pol, p, true, local, &v);

	if (rc != FG_INVAL || v.verdict != VERDICT_REJECTED ||
	    !has_message((const char(*)[320])v.errors, v.nerrors, sub)) {
		dump_verdict(&v);
		fail_msg("%s (proxy %s): expected an error containing \"%s\" (rc %d)", p->domain,
			 p->proxy_fqdn != NULL ? p->proxy_fqdn : "none", sub, rc);
	}
	/* Every error names the field it is about, and a message that starts
	 * with a field's name is about that field. */
	for (size_t i = 0; i < v.nerrors && i < POLICY_MAX_MESSAGES; i++) {
		const char *f = v.error_fields[i];
		size_t n = strcspn(v.errors[i], ":");
		assert_non_null(f);
		if (strncmp(v.errors[i], "tls_negotiation:", 16) == 0)
			assert_string_equal(f, "tls");
		else if (strncmp(v.errors[i], "sasl_negotiation:", 17) == 0)
			assert_string_equal(f, "sasl");
		else if (strspn(v.errors[i], "abcdefghijklmnopqrstuvwxyz_") == n)
			assert_true(strlen(f) == n && strncmp(v.errors[i], f, n) == 0);
	}
}

/* The matrix's two refusals name their rule, not a field, first; the
 * field they are about is the one an admin changes to fix them. */
static void test_error_fields_of_matrix_refusals(void **state)
{
	struct policy *pol = policy_new();
	struct partner *p = mkpartner("fabrikam.test");
	struct policy_verdict v;

	(void)state;
	p->tls = NEG_NOT_SUPPORTED;
	p->sasl = NEG_OPTIONAL;
	p->dialback = true;
	assert_int_equal(policy_check(pol, p, true, NULL, &v), FG_INVAL);
	assert_int_equal(v.nerrors, 1);
	assert_string_equal(v.error_fields[0], "sasl");
	p->tls = NEG_REQUIRED;
	p->sasl = NEG_NOT_SUPPORTED;
	p->dialback = false;
	assert_int_equal(policy_check(pol, p, true, NULL, &v), FG_INVAL);
	assert_int_equal(v.nerrors, 1);
	assert_string_equal(v.error_fields[0], "dialback");
	partner_free(&p);
	policy_free(&pol);
}

static void expect_ok(const struct policy *pol, struct partner *p, bool is_new,
		      const struct domain_list *local)
{
	struct policy_verdict v;
	int rc = policy_check(pol, p, is_new, local, &v);

	if (rc != FG_OK || v.nerrors != 0) {
		dump_verdict(&v);
		fail_msg("expected %s to pass (rc %d)", p->domain, rc);
	}
}

/* Puts a checked partner with the given additional domains (NULL-ended). */
static void put_partner(struct policy *pol, const char *domain, const char *const *extra)
{
	struct partner *p = mkpartner(domain);

	for (; extra != NULL && *extra != NULL; extra++)
		assert_int_equal(partner_add_domain(p, *extra), FG_OK);
	expect_ok(pol, p, true, NULL);
	assert_int_equal(policy_put(pol, p), FG_OK);
}

/* ---- the matrix ---- */

static void test_matrix_rows(void **state)
{
	(void)state;
	assert_int_equal(FG_ARRAY_LEN(matrix), 18);
	for (size_t i = 0; i < FG_ARRAY_LEN(matrix); i++) {
		const struct matrix_row *m = &matrix[i];
		struct policy *pol = policy_new();
		struct partner *p = mkpartner("fabrikam.test");
		struct policy_verdict v;
		char buf[128];
		int rc;

		assert_non_null(pol);
		p->tls = m->tls;
		p->sasl = m->sasl;
		p->dialback = m->dialback;
		assert_int_equal(m->row, (int)i + 1);
		assert_int_equal(policy_matrix_row(p), m->row);
		assert_int_equal(policy_allowed_methods(p), m->methods);
		policy_methods_string(policy_allowed_methods(p), buf, sizeof(buf));
		assert_string_equal(buf, m->methods_text);

		rc = policy_check(pol, p, true, NULL, &v);
		assert_int_equal(v.verdict, m->verdict);
		assert_int_equal(v.allowed_methods, m->methods);
		assert_int_equal(rc, m->verdict == VERDICT_REJECTED ? FG_INVAL : FG_OK);
		switch (m->verdict) {
		case VERDICT_SAVED:
			assert_int_equal(v.nerrors, 0);
			assert_int_equal(v.nwarnings, 0);
			break;
		case VERDICT_WARNING:
			assert_int_equal(v.nerrors, 0);
			assert_int_equal(v.nwarnings, 1);
			assert_non_null(strstr(v.warnings[0], m->message));
			break;
		case VERDICT_REJECTED:
			assert_int_equal(v.nerrors, 1);
			assert_int_equal(v.nwarnings, 0);
			assert_non_null(strstr(v.errors[0], m->message));
			break;
		}
		partner_free(&p);
		assert_null(p);
		policy_free(&pol);
		assert_null(pol);
	}
}

/* The exact sentences, as the CLI, the API and the web form show them. */
static void test_matrix_messages(void **state)
{
	static const struct {
		int row;
		const char *error, *warning;
	} want[] = {
		{1, NULL, ROW1_WARN},	 {3, NULL, TLS_OPT_WARN},  {4, NULL, TLS_OPT_WARN},
		{9, NULL, TLS_OPT_WARN}, {10, NULL, TLS_OPT_WARN}, {14, NO_AUTH_ERR, NULL},
		{16, NO_AUTH_ERR, NULL}, {18, NO_AUTH_ERR, NULL},
	};
	char expect[320];
	struct policy_verdict v;
	struct partner *p;

	(void)state;
	for (size_t i = 0; i < FG_ARRAY_LEN(want); i++) {
		const struct matrix_row *m = &matrix[want[i].row - 1];

		p = mkpartner("fabrikam.test");
		p->tls = m->tls;
		p->sasl = m->sasl;
		p->dialback = m->dialback;
		policy_check(NULL, p, true, NULL, &v);
		if (want[i].error != NULL) {
			assert_int_equal(v.nerrors, 1);
			assert_string_equal(v.errors[0], want[i].error);
		} else {
			assert_int_equal(v.nwarnings, 1);
			assert_string_equal(v.warnings[0], want[i].warning);
		}
		partner_free(&p);
	}
	for (int row = 5; row <= 12; row += 6) {
		for (int k = 0; k < 2; k++) {
			const struct matrix_row *m = &matrix[row - 1 + k];

			p = mkpartner("fabrikam.test");
			p->tls = m->tls;
			p->sasl = m->sasl;
			p->dialback = m->dialback;
			policy_check(NULL, p, true, NULL, &v);
			snprintf(expect, sizeof(expect), SASL_TLS_ERR,
				 m->sasl == REQ ? "required" : "optional");
			assert_int_equal(v.nerrors, 1);
			assert_string_equal(v.errors[0], expect);
			partner_free(&p);
		}
	}
}

/* The rule of policy.h, restated, agrees with every combination. */
static void test_matrix_rule(void **state)
{
	(void)state;
	for (int t = 0; t < 3; t++) {
		for (int s = 0; s < 3; s++) {
			for (int d = 0; d < 2; d++) {
				struct partner p = {.tls = (enum negotiation)t,
						    .sasl = (enum negotiation)s,
						    .dialback = d != 0};
				unsigned want = 0;

				if (t != NS && s != NS)
					want |= S;
				if (t != NS && d && !(t == REQ && s == REQ))
					want |= TD;
				if (t != REQ && d)
					want |= CD;
				assert_int_equal(policy_allowed_methods(&p), want);
				assert_int_equal(matrix[policy_matrix_row(&p) - 1].tls, t);
				assert_int_equal(matrix[policy_matrix_row(&p) - 1].sasl, s);
				assert_int_equal(matrix[policy_matrix_row(&p) - 1].dialback, d);
			}
		}
	}
}

static void test_preferred(void **state)
{
	(void)state;
	assert_int_equal(policy_preferred(0), 0);
	assert_int_equal(policy_preferred(S | TD | CD), S);
	assert_int_equal(policy_preferred(TD | CD), TD);
	assert_int_equal(policy_preferred(CD), CD);
	assert_int_equal(policy_preferred(S | CD), S);
	assert_int_equal(policy_preferred(TD), TD);
}

static void test_methods_string(void **state)
{
	char buf[64];
	char small[8];

	(void)state;
	policy_methods_string(0, buf, sizeof(buf));
	assert_string_equal(buf, "none");
	policy_methods_string(CD | S, buf, sizeof(buf));
	assert_string_equal(buf, "SASL over TLS, TCP Dialback");
	/* A short buffer is cut, never overrun, and stays terminated. */
	memset(small, 'x', sizeof(small));
	policy_methods_string(S | TD | CD, small, sizeof(small));
	assert_true(memchr(small, '\0', sizeof(small)) != NULL);
	policy_methods_string(S, buf, 0);
	assert_string_equal(policy_method_name(AUTH_SASL_TLS), "SASL over TLS");
	assert_string_equal(policy_method_name(AUTH_TLS_DIALBACK), "TLS Dialback");
	assert_string_equal(policy_method_name(AUTH_TCP_DIALBACK), "TCP Dialback");
}

/* ---- values ---- */

static void test_parse_negotiation(void **state)
{
	static const struct {
		const char *s;
		enum negotiation n;
	} ok[] = {
		{"required", REQ},     {"Required", REQ},     {"REQUIRED", REQ},
		{"optional", OPT},     {"Optional", OPT},     {"oPtIoNaL", OPT},
		{"not-supported", NS}, {"NotSupported", NS},  {"notsupported", NS},
		{"not_supported", NS}, {"NOT-SUPPORTED", NS}, {"Not_Supported", NS},
	};
	static const char *const bad[] = {
		"",
		"require",
		"requiredx",
		" required",
		"required ",
		"not supported",
		"not--supported",
		"yes",
		"true",
		"none",
		"0",
	};
	enum negotiation n;

	(void)state;
	for (size_t i = 0; i < FG_ARRAY_LEN(ok); i++) {
		n = (enum negotiation)99;
		assert_int_equal(policy_parse_negotiation(ok[i].s, &n), FG_OK);
		assert_int_equal(n, ok[i].n);
	}
	for (size_t i = 0; i < FG_ARRAY_LEN(bad); i++) {
		n = OPT;
		if (policy_parse_negotiation(bad[i], &n) != FG_INVAL)
			fail_msg("\"%s\" accepted", bad[i]);
		assert_int_equal(n, OPT); /* untouched on failure */
	}
	assert_int_equal(policy_parse_negotiation(NULL, &n), FG_INVAL);
	assert_string_equal(policy_negotiation_name(REQ), "required");
	assert_string_equal(policy_negotiation_name(OPT), "optional");
	assert_string_equal(policy_negotiation_name(NS), "not-supported");
}

static void test_parse_partner_type(void **state)
{
	static const struct {
		const char *s;
		enum partner_type t;
	} ok[] = {
		{"federated", PT_FEDERATED},
		{"Federated", PT_FEDERATED},
		{"FEDERATED", PT_FEDERATED},
		{"public-verified", PT_PUBLIC_VERIFIED},
		{"PublicVerified", PT_PUBLIC_VERIFIED},
		{"publicverified", PT_PUBLIC_VERIFIED},
		{"public_verified", PT_PUBLIC_VERIFIED},
		{"Public-Verified", PT_PUBLIC_VERIFIED},
		{"public-unverified", PT_PUBLIC_UNVERIFIED},
		{"PublicUnverified", PT_PUBLIC_UNVERIFIED},
		{"publicunverified", PT_PUBLIC_UNVERIFIED},
		{"public_unverified", PT_PUBLIC_UNVERIFIED},
		{"PUBLIC_UNVERIFIED", PT_PUBLIC_UNVERIFIED},
	};
	static const char *const bad[] = {
		"",	      "federate",	 "public",
		"verified",   "public verified", "public--verified",
		"unverified", "publicverifiedx", "1",
	};
	enum partner_type t;

	(void)state;
	for (size_t i = 0; i < FG_ARRAY_LEN(ok); i++) {
		t = (enum partner_type)99;
		assert_int_equal(policy_parse_partner_type(ok[i].s, &t), FG_OK);
		assert_int_equal(t, ok[i].t);
	}
	for (size_t i = 0; i < FG_ARRAY_LEN(bad); i++) {
		t = PT_FEDERATED;
		if (policy_parse_partner_type(bad[i], &t) != FG_INVAL)
			fail_msg("\"%s\" accepted", bad[i]);
		assert_int_equal(t, PT_FEDERATED);
	}
	assert_int_equal(policy_parse_partner_type(NULL, &t), FG_INVAL);
	assert_string_equal(policy_partner_type_name(PT_FEDERATED), "federated");
	assert_string_equal(policy_partner_type_name(PT_PUBLIC_VERIFIED), "public-verified");
	assert_string_equal(policy_partner_type_name(PT_PUBLIC_UNVERIFIED), "public-unverified");
}

static void test_parse_bool(void **state)
{
	static const struct {
		const char *s;
		bool b;
	} ok[] = {
		{"true", true},	   {"True", true},    {"TRUE", true},	{"$true", true},
		{"$True", true},   {"yes", true},     {"Yes", true},	{"1", true},
		{"on", true},	   {"ON", true},      {"false", false}, {"False", false},
		{"$false", false}, {"$FALSE", false}, {"no", false},	{"NO", false},
		{"0", false},	   {"off", false},    {"Off", false},
	};
	static const char *const bad[] = {
		"", "t", "f", "y", "n", "2", "-1", "truex", " true", "$yes", "enabled", "10",
	};
	bool b;

	(void)state;
	for (size_t i = 0; i < FG_ARRAY_LEN(ok); i++) {
		b = !ok[i].b;
		assert_int_equal(policy_parse_bool(ok[i].s, &b), FG_OK);
		assert_int_equal(b, ok[i].b);
	}
	for (size_t i = 0; i < FG_ARRAY_LEN(bad); i++) {
		b = true;
		if (policy_parse_bool(bad[i], &b) != FG_INVAL)
			fail_msg("\"%s\" accepted", bad[i]);
		assert_true(b);
	}
	assert_int_equal(policy_parse_bool(NULL, &b), FG_INVAL);
}

/* ---- records ---- */

static void test_defaults(void **state)
{
	struct gateway_settings gw;
	struct partner *p = mkpartner("fabrikam.test");

	(void)state;
	assert_string_equal(p->domain, "fabrikam.test");
	assert_non_null(p->description);
	assert_string_equal(p->description, "");
	assert_int_equal(p->additional_domains.n, 0);
	assert_int_equal(p->type, PT_PUBLIC_UNVERIFIED);
	assert_int_equal(p->tls, NEG_REQUIRED);
	assert_int_equal(p->sasl, NEG_REQUIRED);
	assert_true(p->dialback);
	assert_true(p->keepalive);
	assert_int_equal(p->connection_limit, 0);
	assert_null(p->proxy_fqdn);
	assert_int_equal(policy_matrix_row(p), 1);

	memset(&gw, 0xa5, sizeof(gw));
	gateway_defaults(&gw);
	assert_int_equal(gw.connection_limit, 1000);
	assert_int_equal(gw.partner_connection_limit, 20);
	assert_int_equal(gw.keepalive_interval, 300);
	assert_int_equal(gw.stream_establishment_timeout, 60);
	assert_int_equal(gw.stream_inactivity_timeout, 600);
	assert_int_equal(gw.subscription_refresh_interval, 28800);
	assert_false(gw.log_message_bodies);
	assert_null(gw.dialback_secret);

	assert_int_equal(partner_connection_limit(p, &gw), 20);
	p->connection_limit = 5;
	assert_int_equal(partner_connection_limit(p, &gw), 5);
	partner_free(&p);
	partner_free(&p); /* NULL is accepted */
	partner_free(NULL);
}

static void test_partner_domains_and_equal(void **state)
{
	struct partner *p = mkpartner("fabrikam.test"), *c;

	(void)state;
	assert_int_equal(partner_add_domain(p, "corp.fabrikam.test"), FG_OK);
	assert_int_equal(partner_add_domain(p, "it.fabrikam.test"), FG_OK);
	/* Adding one already there, in any spelling, changes nothing. */
	assert_int_equal(partner_add_domain(p, "Corp.Fabrikam.TEST"), FG_OK);
	assert_int_equal(p->additional_domains.n, 2);

	c = partner_clone(p);
	assert_non_null(c);
	assert_true(partner_equal(p, c));
	assert_ptr_not_equal(c->domain, p->domain);
	assert_ptr_not_equal(c->additional_domains.v, p->additional_domains.v);
	assert_ptr_not_equal(c->additional_domains.v[0], p->additional_domains.v[0]);

	/* Order of additional domains does not matter. */
	assert_true(partner_remove_domain(c, "corp.fabrikam.test"));
	assert_false(partner_equal(p, c));
	assert_int_equal(partner_add_domain(c, "corp.fabrikam.test"), FG_OK);
	assert_string_equal(c->additional_domains.v[0], "it.fabrikam.test");
	assert_true(partner_equal(p, c));

	assert_true(partner_remove_domain(c, "IT.fabrikam.test"));
	assert_false(partner_remove_domain(c, "it.fabrikam.test"));
	assert_int_equal(c->additional_domains.n, 1);
	partner_clear_domains(c);
	assert_int_equal(c->additional_domains.n, 0);
	assert_false(partner_equal(p, c));
	partner_free(&c);

	static const char *const fields[] = {"description", "type",  "tls",   "sasl",	"dialback",
					     "keepalive",   "limit", "proxy", "domain", "enabled"};
	for (size_t i = 0; i < FG_ARRAY_LEN(fields); i++) {
		c = partner_clone(p);
		assert_non_null(c);
		switch (i) {
		case 0:
			free(c->description);
			c->description = strdup("x");
			break;
		case 1: c->type = PT_FEDERATED; break;
		case 2: c->tls = NEG_OPTIONAL; break;
		case 3: c->sasl = NEG_OPTIONAL; break;
		case 4: c->dialback = false; break;
		case 5: c->keepalive = false; break;
		case 6: c->connection_limit = 3; break;
		case 7: c->proxy_fqdn = strdup("proxy.test"); break;
		case 8:
			free(c->domain);
			c->domain = strdup("litware.test");
			break;
		case 9: c->enabled = false; break;
		}
		if (partner_equal(p, c))
			fail_msg("a different %s compared equal", fields[i]);
		partner_free(&c);
	}
	/* NULL and "" proxy both mean "use SRV". */
	c = partner_clone(p);
	c->proxy_fqdn = strdup("");
	assert_true(partner_equal(p, c));
	partner_free(&c);
	partner_free(&p);
}

/* ---- validation ---- */

static void test_check_prepares(void **state)
{
	struct partner *p = mkpartner("Fabrikam.TEST.");
	struct policy *pol = policy_new();

	(void)state;
	assert_int_equal(partner_add_domain(p, "CORP.Fabrikam.test"), FG_OK);
	assert_int_equal(partner_add_domain(p, "b\xc3\xbc"
					       "cher.test"),
			 FG_OK);
	p->proxy_fqdn = strdup("Proxy.Fabrikam.TEST:05269");
	expect_ok(pol, p, true, NULL);
	assert_string_equal(p->domain, "fabrikam.test");
	assert_string_equal(p->additional_domains.v[0], "corp.fabrikam.test");
	assert_string_equal(p->additional_domains.v[1], "xn--bcher-kva.test");
	assert_string_equal(p->proxy_fqdn, "proxy.fabrikam.test:5269");
	assert_int_equal(policy_put(pol, p), FG_OK);

	/* Now a new partner "FABRIKAM.test" is the same one. */
	p = mkpartner("FABRIKAM.test");
	expect_error(pol, p, NULL, "domain: a partner for fabrikam.test already exists");
	partner_free(&p);
	policy_free(&pol);
}

static void test_check_primary_errors(void **state)
{
	static const char *const bad[] = {
		"bad domain",	  "-fabrikam.test", "fabrikam-.test", "fab..test",
		"fab_rikam.test", "192.0.2.1",	    "[2001:db8::1]",  "10.0.0",
		"a@b.test",	  "x/y.test",	    "\x01.test",      "\xff.test",
	};
	struct domain_list local;
	char *locals[] = {"Contoso.test", "fabrikam-local.test"};
	struct policy *pol = policy_new();
	struct partner *p;
	struct policy_verdict v;
	static const char *const extra[] = {"corp.fabrikam.test", NULL};

	(void)state;
	local.v = locals;
	local.n = 2;

	p = mkpartner("x");
	free(p->domain);
	p->domain = strdup("bad domain");
	policy_check(pol, p, true, NULL, &v);
	assert_int_equal(v.verdict, VERDICT_REJECTED);
	assert_int_equal(v.nerrors, 1);
	assert_string_equal(v.errors[0], "domain: 'bad domain' is not a valid domain name; use a "
					 "DNS name such as fabrikam.com.");
	partner_free(&p);

	for (size_t i = 0; i < FG_ARRAY_LEN(bad); i++) {
		p = mkpartner(bad[i]);
		expect_error(pol, p, NULL, "is not a valid domain name");
		partner_free(&p);
	}
	p = mkpartner("");
	expect_error(pol, p, NULL, "domain: a primary domain is required");
	partner_free(&p);

	/* A control byte is not echoed back raw. */
	p = mkpartner("a\nb");
	policy_check(pol, p, true, NULL, &v);
	assert_string_equal(v.errors[0], "domain: 'a?b' is not a valid domain name; use a DNS "
					 "name such as fabrikam.com.");
	partner_free(&p);

	p = mkpartner("CONTOSO.test");
	expect_error(pol, p, &local, "domain: contoso.test is a local domain");
	partner_free(&p);

	put_partner(pol, "fabrikam.test", extra);
	p = mkpartner("fabrikam.test");
	policy_check(pol, p, true, NULL, &v);
	assert_int_equal(v.nerrors, 1);
	assert_string_equal(v.errors[0], "domain: a partner for fabrikam.test already exists; use "
					 "'partner set fabrikam.test' to change it.");
	/* As the new version of the same partner it is fine. */
	expect_ok(pol, p, false, NULL);
	partner_free(&p);

	p = mkpartner("corp.fabrikam.test");
	expect_error(pol, p, NULL,
		     "domain: corp.fabrikam.test already belongs to partner fabrikam.test");
	partner_free(&p);
	policy_free(&pol);
}

static void test_check_additional_errors(void **state)
{
	struct domain_list local;
	char *locals[] = {"contoso.test"};
	struct policy *pol = policy_new();
	struct partner *p;
	struct policy_verdict v;
	static const char *const fab[] = {"corp.fabrikam.test", "it.fabrikam.test", NULL};

	(void)state;
	local.v = locals;
	local.n = 1;
	put_partner(pol, "fabrikam.test", fab);

	p = mkpartner("litware.test");
	assert_int_equal(partner_add_domain(p, "corp.fabrikam.test"), FG_OK);
	policy_check(pol, p, true, &local, &v);
	assert_int_equal(v.nerrors, 1);
	assert_string_equal(v.errors[0],
			    "additional_domains: corp.fabrikam.test already belongs to "
			    "partner fabrikam.test; remove it there first.");
	partner_free(&p);

	p = mkpartner("litware.test");
	assert_int_equal(partner_add_domain(p, "Fabrikam.test"), FG_OK);
	expect_error(pol, p, NULL,
		     "additional_domains: fabrikam.test is the primary domain of partner "
		     "fabrikam.test");
	partner_free(&p);

	p = mkpartner("litware.test");
	assert_int_equal(partner_add_domain(p, "not a domain"), FG_OK);
	expect_error(pol, p, NULL, "additional_domains: 'not a domain' is not a valid domain name");
	partner_free(&p);

	p = mkpartner("litware.test");
	assert_int_equal(partner_add_domain(p, "LITWARE.test"), FG_OK);
	expect_error(pol, p, NULL, "additional_domains: litware.test is the primary domain;");
	partner_free(&p);

	/* Repeats are found after preparation, and reported once. */
	p = mkpartner("litware.test");
	assert_int_equal(partner_add_domain(p, "eu.litware.test"), FG_OK);
	assert_int_equal(partner_add_domain(p, "us.litware.test"), FG_OK);
	free(p->additional_domains.v[1]);
	p->additional_domains.v[1] = strdup("EU.litware.test");
	assert_int_equal(partner_add_domain(p, "x.litware.test"), FG_OK);
	free(p->additional_domains.v[2]);
	p->additional_domains.v[2] = strdup("eu.litware.test.");
	policy_check(pol, p, true, NULL, &v);
	assert_int_equal(v.nerrors, 1);
	assert_string_equal(v.errors[0], "additional_domains: eu.litware.test is listed more than "
					 "once; list each domain once.");
	partner_free(&p);

	p = mkpartner("litware.test");
	assert_int_equal(partner_add_domain(p, "contoso.test"), FG_OK);
	expect_error(pol, p, &local, "additional_domains: contoso.test is a local domain");
	partner_free(&p);

	/* The partner's own old version holding the domain is no conflict. */
	p = mkpartner("fabrikam.test");
	assert_int_equal(partner_add_domain(p, "corp.fabrikam.test"), FG_OK);
	expect_ok(pol, p, false, &local);
	partner_free(&p);
	policy_free(&pol);
}

static void test_check_other_fields(void **state)
{
	static const char *const proxy_ok[][2] = {
		{"proxy.fabrikam.test", "proxy.fabrikam.test"},
		{"Proxy.Fabrikam.test:5269", "proxy.fabrikam.test:5269"},
		{"proxy:1", "proxy:1"},
		{"proxy.test:65535", "proxy.test:65535"},
		{"192.0.2.7", "192.0.2.7"},
		{"192.0.2.7:5270", "192.0.2.7:5270"},
		{"[2001:db8::7]", "[2001:db8::7]"},
		{"[2001:db8::7]:5269", "[2001:db8::7]:5269"},
		{"2001:db8::7", "[2001:db8::7]"},
		{"", ""},
	};
	static const char *const proxy_bad[] = {
		"proxy.test:0",	     "proxy.test:65536", "proxy.test:", ":5269",
		"proxy.test:52a",    "proxy.test:-1",	 "proxy test",	"[2001:db8::7",
		"[2001:db8::7]x",    "[nope]:5269",	 "10.0.0",	"a:b:c",
		"proxy.test:123456", "proxy_.test",
	};
	struct partner *p;
	struct policy_verdict v;
	char desc[1100];

	(void)state;
	for (size_t i = 0; i < FG_ARRAY_LEN(proxy_ok); i++) {
		p = mkpartner("fabrikam.test");
		p->proxy_fqdn = strdup(proxy_ok[i][0]);
		expect_ok(NULL, p, true, NULL);
		assert_string_equal(p->proxy_fqdn, proxy_ok[i][1]);
		partner_free(&p);
	}
	for (size_t i = 0; i < FG_ARRAY_LEN(proxy_bad); i++) {
		p = mkpartner("fabrikam.test");
		p->proxy_fqdn = strdup(proxy_bad[i]);
		expect_error(NULL, p, NULL, "proxy_fqdn: '");
		assert_string_equal(p->proxy_fqdn, proxy_bad[i]); /* left as typed */
		partner_free(&p);
	}

	p = mkpartner("fabrikam.test");
	p->connection_limit = 100000;
	expect_ok(NULL, p, true, NULL);
	p->connection_limit = 100001;
	expect_error(NULL, p, NULL, "connection_limit: 100001 is out of range");
	partner_free(&p);

	p = mkpartner("fabrikam.test");
	memset(desc, 'a', 1024);
	desc[1024] = '\0';
	free(p->description);
	p->description = strdup(desc);
	expect_ok(NULL, p, true, NULL);
	desc[1024] = 'a';
	desc[1025] = '\0';
	free(p->description);
	p->description = strdup(desc);
	expect_error(NULL, p, NULL, "description: 1025 bytes is too long");
	free(p->description);
	p->description = strdup("Contact:\tops@fabrikam.test, caf\xc3\xa9");
	expect_ok(NULL, p, true, NULL);
	free(p->description);
	p->description = strdup("two\nlines");
	expect_error(NULL, p, NULL, "description: the text contains a control character");
	free(p->description);
	p->description = strdup("bell\a");
	expect_error(NULL, p, NULL, "description: the text contains a control character");
	free(p->description);
	p->description = strdup("broken \xc3");
	expect_error(NULL, p, NULL, "description: the text is not valid UTF-8");
	partner_free(&p);

	/* Out-of-range enum values from a careless front-end. */
	p = mkpartner("fabrikam.test");
	p->tls = (enum negotiation)7;
	p->type = (enum partner_type)9;
	policy_check(NULL, p, true, NULL, &v);
	assert_int_equal(v.verdict, VERDICT_REJECTED);
	assert_true(has_message((const char(*)[320])v.errors, v.nerrors, "tls_negotiation: 7"));
	assert_true(has_message((const char(*)[320])v.errors, v.nerrors, "partner_type: 9"));
	assert_int_equal(policy_matrix_row(p), 0);
	partner_free(&p);
}

/* Every problem is reported at once, each starting with its field. */
static void test_check_collects_all(void **state)
{
	static const char *const fields[] = {"domain:", "additional_domains:", "connection_limit:",
					     "proxy_fqdn:", "description:"};
	struct partner *p = mkpartner("bad domain");
	struct policy_verdict v;

	(void)state;
	assert_int_equal(partner_add_domain(p, "also bad"), FG_OK);
	p->connection_limit = 200000;
	p->proxy_fqdn = strdup("proxy:0");
	free(p->description);
	p->description = strdup("a\rb");
	p->tls = NEG_NOT_SUPPORTED;
	p->dialback = false;
	assert_int_equal(policy_check(NULL, p, true, NULL, &v), FG_INVAL);
	assert_int_equal(v.nerrors, 6);
	for (size_t i = 0; i < FG_ARRAY_LEN(fields); i++)
		if (!has_message((const char(*)[320])v.errors, v.nerrors, fields[i]))
			fail_msg("no %s error", fields[i]);
	assert_true(
		has_message((const char(*)[320])v.errors, v.nerrors, "SASL must have TLS support"));
	for (size_t i = 0; i < v.nerrors; i++) {
		const char *colon = strchr(v.errors[i], ':');

		assert_non_null(colon);
		assert_true(v.errors[i][strlen(v.errors[i]) - 1] == '.');
	}
	partner_free(&p);

	/* Past the cap the verdict still holds; the array does not overflow. */
	p = mkpartner("fabrikam.test");
	for (int i = 0; i < 3 * POLICY_MAX_MESSAGES; i++) {
		char d[32];

		snprintf(d, sizeof(d), "bad domain %d", i);
		assert_int_equal(partner_add_domain(p, d), FG_OK);
	}
	assert_int_equal(policy_check(NULL, p, true, NULL, &v), FG_INVAL);
	assert_int_equal(v.nerrors, POLICY_MAX_MESSAGES);
	assert_int_equal(v.verdict, VERDICT_REJECTED);
	partner_free(&p);
}

/* A refused check leaves the set exactly as it was. */
static void test_rejected_leaves_set(void **state)
{
	static const char *const fab[] = {"corp.fabrikam.test", NULL};
	struct policy *pol = policy_new(), *before;
	struct partner *p;
	struct policy_verdict v;

	(void)state;
	put_partner(pol, "fabrikam.test", fab);
	put_partner(pol, "litware.test", NULL);
	before = policy_clone(pol);
	assert_non_null(before);

	p = mkpartner("Fabrikam.test");
	assert_int_equal(partner_add_domain(p, "new.fabrikam.test"), FG_OK);
	p->tls = NEG_NOT_SUPPORTED;
	assert_int_equal(policy_check(pol, p, false, NULL, &v), FG_INVAL);
	partner_free(&p);

	p = mkpartner("adatum.test");
	assert_int_equal(partner_add_domain(p, "corp.fabrikam.test"), FG_OK);
	assert_int_equal(policy_check(pol, p, true, NULL, &v), FG_INVAL);
	/* Even if a caller ignores the verdict, the set refuses the clash. */
	assert_int_equal(policy_put(pol, p), FG_INVAL);

	assert_int_equal(policy_count(pol), policy_count(before));
	for (size_t i = 0; i < policy_count(pol); i++)
		assert_true(partner_equal(policy_at(pol, i), policy_at(before, i)));
	assert_string_equal(policy_lookup(pol, "corp.fabrikam.test")->domain, "fabrikam.test");
	assert_null(policy_lookup(pol, "new.fabrikam.test"));
	assert_null(policy_lookup(pol, "adatum.test"));
	policy_free(&before);
	policy_free(&pol);
}

/* ---- the set ---- */

static void test_lookup_put_replace_remove(void **state)
{
	static const char *const fab[] = {"corp.fabrikam.test", "it.fabrikam.test", NULL};
	static const char *const lit[] = {"eu.litware.test", NULL};
	struct policy *pol = policy_new();
	struct partner *p;

	(void)state;
	assert_int_equal(policy_count(pol), 0);
	assert_null(policy_lookup(pol, "fabrikam.test"));
	assert_null(policy_at(pol, 0));

	put_partner(pol, "litware.test", lit);
	put_partner(pol, "fabrikam.test", fab);
	put_partner(pol, "adatum.test", NULL);
	assert_int_equal(policy_count(pol), 3);
	assert_string_equal(policy_at(pol, 0)->domain, "adatum.test");
	assert_string_equal(policy_at(pol, 1)->domain, "fabrikam.test");
	assert_string_equal(policy_at(pol, 2)->domain, "litware.test");
	assert_null(policy_at(pol, 3));

	assert_string_equal(policy_lookup(pol, "fabrikam.test")->domain, "fabrikam.test");
	assert_string_equal(policy_lookup(pol, "corp.fabrikam.test")->domain, "fabrikam.test");
	assert_string_equal(policy_lookup(pol, "it.fabrikam.test")->domain, "fabrikam.test");
	assert_string_equal(policy_lookup(pol, "eu.litware.test")->domain, "litware.test");
	assert_null(policy_lookup(pol, "us.litware.test"));
	assert_null(policy_lookup(pol, "contoso.test"));
	assert_null(policy_lookup(pol, "Fabrikam.test")); /* prepared input only */
	assert_null(policy_lookup(pol, NULL));
	assert_ptr_equal(policy_get(pol, "fabrikam.test"), policy_lookup(pol, "fabrikam.test"));
	assert_null(policy_get(pol, "corp.fabrikam.test"));

	/* Replace: corp dropped, hr added, settings changed. */
	p = mkpartner("fabrikam.test");
	assert_int_equal(partner_add_domain(p, "it.fabrikam.test"), FG_OK);
	assert_int_equal(partner_add_domain(p, "hr.fabrikam.test"), FG_OK);
	p->type = PT_FEDERATED;
	expect_ok(pol, p, false, NULL);
	assert_int_equal(policy_put(pol, p), FG_OK);
	assert_int_equal(policy_count(pol), 3);
	assert_null(policy_lookup(pol, "corp.fabrikam.test"));
	assert_ptr_equal(policy_lookup(pol, "hr.fabrikam.test"), p);
	assert_ptr_equal(policy_lookup(pol, "it.fabrikam.test"), p);
	assert_ptr_equal(policy_lookup(pol, "fabrikam.test"), p);
	assert_int_equal(policy_lookup(pol, "fabrikam.test")->type, PT_FEDERATED);
	assert_ptr_equal(policy_at(pol, 1), p);

	/* The dropped domain is free for another partner now. */
	p = mkpartner("corp.fabrikam.test");
	expect_ok(pol, p, true, NULL);
	assert_int_equal(policy_put(pol, p), FG_OK);
	assert_ptr_equal(policy_lookup(pol, "corp.fabrikam.test"), p);

	assert_int_equal(policy_remove(pol, "fabrikam.test"), FG_OK);
	assert_null(policy_lookup(pol, "fabrikam.test"));
	assert_null(policy_lookup(pol, "hr.fabrikam.test"));
	assert_null(policy_lookup(pol, "it.fabrikam.test"));
	assert_non_null(policy_lookup(pol, "corp.fabrikam.test"));
	assert_int_equal(policy_remove(pol, "fabrikam.test"), FG_NOTFOUND);
	/* remove works by primary domain only */
	assert_int_equal(policy_remove(pol, "eu.litware.test"), FG_NOTFOUND);
	assert_int_equal(policy_count(pol), 3);
	assert_string_equal(policy_at(pol, 0)->domain, "adatum.test");
	assert_string_equal(policy_at(pol, 1)->domain, "corp.fabrikam.test");
	assert_string_equal(policy_at(pol, 2)->domain, "litware.test");

	assert_int_equal(policy_remove(pol, "adatum.test"), FG_OK);
	assert_int_equal(policy_remove(pol, "litware.test"), FG_OK);
	assert_int_equal(policy_remove(pol, "corp.fabrikam.test"), FG_OK);
	assert_int_equal(policy_count(pol), 0);
	assert_null(policy_lookup(pol, "eu.litware.test"));
	policy_free(&pol);
	assert_null(pol);
	policy_free(&pol);
	policy_free(NULL);
}

#define BIG 10000

static void big_name(char *buf, size_t len, unsigned i, int which)
{
	static const char *const pre[] = {"", "corp.", "it."};

	snprintf(buf, len, "%spartner%05u.test", pre[which], i);
}

/* Many partners, inserted in scrambled order, removed in part: every
 * domain maps to its partner, absent ones to nothing, order stays sorted. */
static void test_large_set(void **state)
{
	struct policy *pol = policy_new();
	char name[64];
	unsigned order[BIG];
	uint32_t seed = 12345;

	(void)state;
	for (unsigned i = 0; i < BIG; i++)
		order[i] = i;
	for (unsigned i = BIG - 1; i > 0; i--) {
		unsigned j, t;

		seed = seed * 1103515245u + 12345u;
		j = (seed >> 8) % (i + 1);
		t = order[i];
		order[i] = order[j];
		order[j] = t;
	}
	for (unsigned k = 0; k < BIG; k++) {
		struct partner *p;

		big_name(name, sizeof(name), order[k], 0);
		p = mkpartner(name);
		big_name(name, sizeof(name), order[k], 1);
		assert_int_equal(partner_add_domain(p, name), FG_OK);
		big_name(name, sizeof(name), order[k], 2);
		assert_int_equal(partner_add_domain(p, name), FG_OK);
		assert_int_equal(policy_put(pol, p), FG_OK);
	}
	assert_int_equal(policy_count(pol), BIG);
	for (unsigned i = 0; i < BIG; i++) {
		char primary[64];

		big_name(primary, sizeof(primary), i, 0);
		assert_string_equal(policy_at(pol, i)->domain, primary);
		for (int w = 0; w < 3; w++) {
			const struct partner *q;

			big_name(name, sizeof(name), i, w);
			q = policy_lookup(pol, name);
			if (q == NULL || strcmp(q->domain, primary) != 0)
				fail_msg("%s not found as %s", name, primary);
		}
		snprintf(name, sizeof(name), "hr.partner%05u.test", i);
		assert_null(policy_lookup(pol, name));
	}
	/* Remove the even ones (many deletions exercise backward shifts). */
	for (unsigned i = 0; i < BIG; i += 2) {
		big_name(name, sizeof(name), i, 0);
		assert_int_equal(policy_remove(pol, name), FG_OK);
	}
	assert_int_equal(policy_count(pol), BIG / 2);
	for (unsigned i = 0; i < BIG; i++) {
		for (int w = 0; w < 3; w++) {
			const struct partner *q;

			big_name(name, sizeof(name), i, w);
			q = policy_lookup(pol, name);
			if ((i % 2 == 0) != (q == NULL))
				fail_msg("%s: wrong presence after removals", name);
		}
	}
	for (size_t i = 0; i + 1 < policy_count(pol); i++)
		assert_true(strcmp(policy_at(pol, i)->domain, policy_at(pol, i + 1)->domain) < 0);
	policy_free(&pol);
}

static void test_clone_independence(void **state)
{
	static const char *const fab[] = {"corp.fabrikam.test", NULL};
	struct policy *pol = policy_new(), *c;
	struct partner *p;

	(void)state;
	put_partner(pol, "fabrikam.test", fab);
	put_partner(pol, "litware.test", NULL);
	c = policy_clone(pol);
	assert_non_null(c);
	assert_int_equal(policy_count(c), 2);
	for (size_t i = 0; i < 2; i++) {
		assert_ptr_not_equal(policy_at(c, i), policy_at(pol, i));
		assert_true(partner_equal(policy_at(c, i), policy_at(pol, i)));
	}
	assert_ptr_equal(policy_lookup(c, "corp.fabrikam.test"), policy_at(c, 0));

	/* Change the original: the clone keeps its state. */
	assert_int_equal(policy_remove(pol, "litware.test"), FG_OK);
	p = mkpartner("fabrikam.test");
	p->keepalive = false;
	expect_ok(pol, p, false, NULL);
	assert_int_equal(policy_put(pol, p), FG_OK);
	assert_null(policy_lookup(pol, "corp.fabrikam.test"));
	assert_int_equal(policy_count(c), 2);
	assert_non_null(policy_lookup(c, "litware.test"));
	assert_true(policy_lookup(c, "fabrikam.test")->keepalive);
	assert_ptr_equal(policy_lookup(c, "corp.fabrikam.test"), policy_get(c, "fabrikam.test"));

	/* And the other way round; freeing one leaves the other whole. */
	assert_int_equal(policy_remove(c, "fabrikam.test"), FG_OK);
	assert_non_null(policy_lookup(pol, "fabrikam.test"));
	policy_free(&pol);
	assert_non_null(policy_lookup(c, "litware.test"));
	assert_null(policy_lookup(c, "fabrikam.test"));
	policy_free(&c);
}

/* ---- gateway ---- */

static void test_gateway_ranges(void **state)
{
	static const struct {
		const char *name;
		size_t off;
		unsigned min, max;
	} r[] = {
		{"connection_limit", offsetof(struct gateway_settings, connection_limit), 1,
		 100000},
		{"partner_connection_limit",
		 offsetof(struct gateway_settings, partner_connection_limit), 1, 10000},
		{"keepalive_interval", offsetof(struct gateway_settings, keepalive_interval), 10,
		 3600},
		{"stream_establishment_timeout",
		 offsetof(struct gateway_settings, stream_establishment_timeout), 5, 3600},
		{"stream_inactivity_timeout",
		 offsetof(struct gateway_settings, stream_inactivity_timeout), 30, 86400},
		{"subscription_refresh_interval",
		 offsetof(struct gateway_settings, subscription_refresh_interval), 60, 604800},
	};
	struct gateway_settings gw;
	struct policy_verdict v;

	(void)state;
	gateway_defaults(&gw);
	assert_int_equal(gateway_check(&gw, &v), FG_OK);
	assert_int_equal(v.verdict, VERDICT_SAVED);
	assert_int_equal(v.nerrors, 0);

	for (size_t i = 0; i < FG_ARRAY_LEN(r); i++) {
		const unsigned vals[4] = {r[i].min, r[i].min - 1, r[i].max, r[i].max + 1};

		for (int k = 0; k < 4; k++) {
			char field[64];
			int rc;

			gateway_defaults(&gw);
			/* Room for partner_connection_limit up to its max. */
			gw.connection_limit = 100000;
			gw.partner_connection_limit = 1;
			memcpy((char *)&gw + r[i].off, &vals[k], sizeof(unsigned));
			rc = gateway_check(&gw, &v);
			if (k % 2 == 0) {
				if (rc != FG_OK)
					fail_msg("%s = %u refused: %s", r[i].name, vals[k],
						 v.errors[0]);
				assert_int_equal(v.nerrors, 0);
			} else {
				if (rc != FG_INVAL || v.nerrors != 1)
					fail_msg("%s = %u accepted", r[i].name, vals[k]);
				snprintf(field, sizeof(field), "%s: %u is out of range", r[i].name,
					 vals[k]);
				assert_non_null(strstr(v.errors[0], field));
				/* The API and the panel place it by this, not the text. */
				assert_string_equal(v.error_fields[0], r[i].name);
				assert_int_equal(v.verdict, VERDICT_REJECTED);
			}
		}
	}

	gateway_defaults(&gw);
	gw.keepalive_interval = 5;
	gateway_check(&gw, &v);
	assert_string_equal(v.errors[0], "keepalive_interval: 5 is out of range; use a number of "
					 "seconds from 10 to 3600.");

	gateway_defaults(&gw);
	gw.connection_limit = 10;
	gw.partner_connection_limit = 11;
	assert_int_equal(gateway_check(&gw, &v), FG_INVAL);
	assert_non_null(strstr(v.errors[0], "partner_connection_limit: 11 is above "
					    "connection_limit (10)"));
	gw.partner_connection_limit = 10;
	assert_int_equal(gateway_check(&gw, &v), FG_OK);

	/* All range errors at once. */
	memset(&gw, 0, sizeof(gw));
	assert_int_equal(gateway_check(&gw, &v), FG_INVAL);
	assert_int_equal(v.nerrors, 6);
}

static void test_gateway_secret(void **state)
{
	struct gateway_settings gw, copy;
	struct policy_verdict v;
	const char *shortsecret = "s3cr3t-s3cr3t-1"; /* 15 bytes */

	(void)state;
	gateway_defaults(&gw);
	gw.dialback_secret = strdup(shortsecret);
	assert_int_equal(gateway_check(&gw, &v), FG_INVAL);
	assert_int_equal(v.nerrors, 1);
	assert_non_null(strstr(v.errors[0], "dialback_secret:"));
	assert_null(strstr(v.errors[0], shortsecret));
	assert_null(strstr(v.errors[0], "s3cr3t"));
	free(gw.dialback_secret);
	gw.dialback_secret = strdup("0123456789abcdef"); /* 16 bytes */
	assert_int_equal(gateway_check(&gw, &v), FG_OK);

	gw.keepalive_interval = 42;
	assert_int_equal(gateway_copy(&copy, &gw), FG_OK);
	assert_ptr_not_equal(copy.dialback_secret, gw.dialback_secret);
	assert_string_equal(copy.dialback_secret, "0123456789abcdef");
	assert_int_equal(copy.keepalive_interval, 42);
	gateway_clear(&gw);
	assert_null(gw.dialback_secret);
	assert_string_equal(copy.dialback_secret, "0123456789abcdef");
	gateway_clear(&copy);
	gateway_clear(&copy);
}

/* SPEC §4, the three columns of the table. */
static void test_partner_type_rules(void **state)
{
	(void)state;
	assert_true(policy_auto_approves(PT_FEDERATED));
	assert_true(policy_auto_approves(PT_PUBLIC_VERIFIED));
	assert_false(policy_auto_approves(PT_PUBLIC_UNVERIFIED));
	assert_false(policy_needs_contact(PT_FEDERATED));
	assert_false(policy_needs_contact(PT_PUBLIC_VERIFIED));
	assert_true(policy_needs_contact(PT_PUBLIC_UNVERIFIED));
	assert_false(policy_strips_status(PT_FEDERATED));
	assert_true(policy_strips_status(PT_PUBLIC_VERIFIED));
	assert_true(policy_strips_status(PT_PUBLIC_UNVERIFIED));
}

/* Every spelling of one digest stores as one pin, and nothing else
 * passes: a pin that parsed wrongly would lock a partner out. */
static void test_pin_spellings(void **state)
{
	/* SHA-256 of "abc". */
	static const char *const same[] = {
		"ungWv48Bz+pBQUDeXa4iI7ADYaOWF3qctBD/YfIAFa0=",
		"sha256//ungWv48Bz+pBQUDeXa4iI7ADYaOWF3qctBD/YfIAFa0=",
		"sha256/ungWv48Bz+pBQUDeXa4iI7ADYaOWF3qctBD/YfIAFa0=",
		"ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad",
		"BA:78:16:BF:8F:01:CF:EA:41:41:40:DE:5D:AE:22:23:B0:03:61:A3:96:17:7A:9C:B4:10:FF:"
		"61:"
		"F2:00:15:AD",
	};
	static const char *const bad[] = {
		"",
		"ungWv48Bz+pBQUDeXa4iI7ADYaOWF3qctBD/YfIAFa0",	 /* no padding */
		"ungWv48Bz+pBQUDeXa4iI7ADYaOWF3qctBD/YfIAFa1=",	 /* stray low bits */
		"ungWv48Bz+pBQUDeXa4iI7ADYaOWF3qctBD/YfIAF a0=", /* space */
		"ungWv48Bz+pBQUDeXa4iI7ADYaOWF3qctBD/YfIAFa0==", /* 45 */
		"ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015a", /* 63 */
		"ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ag",
		"BA:78:16:BF:8F:01:CF:EA:41:41:40:DE:5D:AE:22:23:B0:03:61:A3:96:17:7A:9C:B4:10:FF:"
		"61:"
		"F2:00-15:AD",
		"sha1//ungWv48Bz+pBQUDeXa4iI7ADYaOWF3qctBD/YfIAFa0=",
	};
	static const unsigned char digest[PIN_DIGEST_LEN] = {
		0xba, 0x78, 0x16, 0xbf, 0x8f, 0x01, 0xcf, 0xea, 0x41, 0x41, 0x40,
		0xde, 0x5d, 0xae, 0x22, 0x23, 0xb0, 0x03, 0x61, 0xa3, 0x96, 0x17,
		0x7a, 0x9c, 0xb4, 0x10, 0xff, 0x61, 0xf2, 0x00, 0x15, 0xad};
	char out[PIN_B64_LEN + 1];

	(void)state;
	pin_from_digest(digest, out);
	assert_string_equal(out, same[0]);
	for (size_t i = 0; i < FG_ARRAY_LEN(same); i++) {
		memset(out, 0, sizeof(out));
		if (pin_normalize(same[i], out) != FG_OK)
			fail_msg("refused: %s", same[i]);
		assert_string_equal(out, same[0]);
	}
	for (size_t i = 0; i < FG_ARRAY_LEN(bad); i++)
		if (pin_normalize(bad[i], out) != FG_INVAL)
			fail_msg("accepted: %s", bad[i]);

	/* The record compares pins by digest, not by spelling. */
	struct partner *p = mkpartner("fabrikam.test");
	assert_int_equal(partner_add_pin(p, same[3]), FG_OK);
	assert_int_equal(partner_add_pin(p, same[1]), FG_OK);
	assert_int_equal(p->pins.n, 1);
	assert_true(partner_remove_pin(p, same[4]));
	assert_int_equal(p->pins.n, 0);
	assert_false(partner_remove_pin(p, same[0]));
	partner_free(&p);
}

static void test_check_keys(void **state)
{
	struct partner *p, *c;
	enum dane_mode d;

	(void)state;
	p = mkpartner("fabrikam.test");
	assert_true(p->bidi);
	assert_int_equal(p->dane, DANE_OFF);
	assert_int_equal(p->pins.n, 0);
	for (int i = DANE_OFF; i <= DANE_REQUIRED; i++) {
		assert_int_equal(policy_parse_dane(policy_dane_name((enum dane_mode)i), &d), FG_OK);
		assert_int_equal(d, i);
	}
	assert_int_equal(policy_parse_dane("Required", &d), FG_OK);
	assert_int_equal(policy_parse_dane("yes", &d), FG_INVAL);

	/* Pins are stored normalized; the clone and equality see them. */
	assert_int_equal(
		partner_add_pin(p,
				"ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"),
		FG_OK);
	p->dane = DANE_REQUIRED;
	p->bidi = false;
	expect_ok(NULL, p, true, NULL);
	assert_string_equal(p->pins.v[0], "ungWv48Bz+pBQUDeXa4iI7ADYaOWF3qctBD/YfIAFa0=");
	assert_true(partner_has_pin(p, "ungWv48Bz+pBQUDeXa4iI7ADYaOWF3qctBD/YfIAFa0="));
	c = partner_clone(p);
	assert_non_null(c);
	assert_true(partner_equal(p, c));
	c->bidi = true;
	assert_false(partner_equal(p, c));
	c->bidi = false;
	c->dane = DANE_OPPORTUNISTIC;
	assert_false(partner_equal(p, c));
	c->dane = DANE_REQUIRED;
	partner_clear_pins(c);
	assert_false(partner_equal(p, c));
	partner_free(&c);

	/* Both speak of a certificate: no TLS, no pins and no DANE. */
	p->tls = NEG_NOT_SUPPORTED;
	p->sasl = NEG_NOT_SUPPORTED;
	expect_error(NULL, p, NULL, "pins: keys are pinned, but tls is not-supported");
	expect_error(NULL, p, NULL, "dane: required needs TLS");
	partner_free(&p);

	p = mkpartner("fabrikam.test");
	assert_int_equal(partner_add_pin(p, "not-a-pin"), FG_OK);
	expect_error(NULL, p, NULL, "pins: 'not-a-pin' is not a SHA-256 public-key pin");
	partner_free(&p);

	p = mkpartner("fabrikam.test");
	p->dane = (enum dane_mode)7;
	expect_error(NULL, p, NULL, "dane: 7 is not a valid value");
	partner_free(&p);

	p = mkpartner("fabrikam.test");
	for (unsigned i = 0; i <= POLICY_MAX_PINS; i++) {
		unsigned char dg[PIN_DIGEST_LEN] = {(unsigned char)i};
		char pin[PIN_B64_LEN + 1];
		pin_from_digest(dg, pin);
		assert_int_equal(partner_add_pin(p, pin), FG_OK);
	}
	expect_error(NULL, p, NULL, "pins: 9 pins are listed; at most 8");
	partner_free(&p);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_matrix_rows),
		cmocka_unit_test(test_matrix_messages),
		cmocka_unit_test(test_matrix_rule),
		cmocka_unit_test(test_preferred),
		cmocka_unit_test(test_methods_string),
		cmocka_unit_test(test_parse_negotiation),
		cmocka_unit_test(test_parse_partner_type),
		cmocka_unit_test(test_parse_bool),
		cmocka_unit_test(test_defaults),
		cmocka_unit_test(test_partner_domains_and_equal),
		cmocka_unit_test(test_check_prepares),
		cmocka_unit_test(test_check_primary_errors),
		cmocka_unit_test(test_check_additional_errors),
		cmocka_unit_test(test_check_other_fields),
		cmocka_unit_test(test_check_collects_all),
		cmocka_unit_test(test_rejected_leaves_set),
		cmocka_unit_test(test_lookup_put_replace_remove),
		cmocka_unit_test(test_large_set),
		cmocka_unit_test(test_clone_independence),
		cmocka_unit_test(test_gateway_ranges),
		cmocka_unit_test(test_gateway_secret),
		cmocka_unit_test(test_partner_type_rules),
		cmocka_unit_test(test_error_fields_of_matrix_refusals),
		cmocka_unit_test(test_pin_spellings),
		cmocka_unit_test(test_check_keys),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}

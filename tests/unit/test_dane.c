/* dane: the parts that need no resolver and no peer. The TLSA reader on
 * hand-made replies (sound, truncated, capped, odd records), the text of
 * records, and the rule of each `dane` setting for every lookup outcome. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "dane.h"
#include "fg.h"

#include <stdio.h>
#include <string.h>

/* ---- replies ---- */

struct pkt {
	uint8_t b[4096];
	size_t len;
	size_t an_off; /* where the answer count is */
};

static void put(struct pkt *p, const void *d, size_t n)
{
	assert_true(p->len + n <= sizeof(p->b));
	memcpy(p->b + p->len, d, n);
	p->len += n;
}

static void put16(struct pkt *p, uint16_t v)
{
	uint8_t b[2] = {(uint8_t)(v >> 8), (uint8_t)v};
	put(p, b, 2);
}

static void put_name(struct pkt *p, const char *name)
{
	while (*name) {
		const char *dot = strchr(name, '.');
		size_t l = dot ? (size_t)(dot - name) : strlen(name);
		uint8_t lb = (uint8_t)l;
		put(p, &lb, 1);
		put(p, name, l);
		name += l + (dot ? 1 : 0);
	}
	put(p, "", 1);
}

static void start(struct pkt *p)
{
	memset(p, 0, sizeof(*p));
	static const uint8_t hdr[12] = {0x12, 0x34, 0x81, 0x80, 0, 1, 0, 0, 0, 0, 0, 0};
	put(p, hdr, sizeof(hdr));
	put_name(p, "_5269._tcp.xmpp.fabrikam.test");
	put16(p, 52);
	put16(p, 1);
}

/* One answer record with a compressed owner name (the question's). */
static void add_rr(struct pkt *p, uint16_t type, uint16_t cls, const uint8_t *rd, uint16_t rdlen)
{
	static const uint8_t ptr[2] = {0xc0, 0x0c}, ttl[4] = {0, 0, 0, 60};
	put(p, ptr, 2);
	put16(p, type);
	put16(p, cls);
	put(p, ttl, 4);
	put16(p, rdlen);
	put(p, rd, rdlen);
	uint16_t an = (uint16_t)(p->b[6] << 8 | p->b[7]) + 1;
	p->b[6] = (uint8_t)(an >> 8);
	p->b[7] = (uint8_t)an;
}

static void add_tlsa(struct pkt *p, uint8_t u, uint8_t s, uint8_t m, size_t dlen, uint8_t fill)
{
	uint8_t rd[2048];
	assert_true(dlen + 3 <= sizeof(rd));
	rd[0] = u;
	rd[1] = s;
	rd[2] = m;
	memset(rd + 3, fill, dlen);
	add_rr(p, 52, 1, rd, (uint16_t)(dlen + 3));
}

static struct dane_tlsa recs[DANE_MAX_RECORDS];

static void test_parse_records(void **state)
{
	(void)state;
	struct pkt p;
	size_t skipped;
	start(&p);
	add_tlsa(&p, 3, 1, 1, 32, 0xab);
	add_tlsa(&p, 2, 0, 2, 64, 0xcd);
	assert_int_equal(dane_parse_tlsa(p.b, p.len, recs, DANE_MAX_RECORDS, &skipped), 2);
	assert_int_equal(skipped, 0);
	assert_int_equal(recs[0].usage, 3);
	assert_int_equal(recs[0].selector, 1);
	assert_int_equal(recs[0].mtype, 1);
	assert_int_equal(recs[0].len, 32);
	assert_int_equal(recs[0].data[31], 0xab);
	assert_int_equal(recs[1].usage, 2);
	assert_int_equal(recs[1].mtype, 2);
	assert_int_equal(recs[1].len, 64);
	char text[200];
	dane_tlsa_text(&recs[0], text, sizeof(text));
	assert_string_equal(text, "3 1 1 abababababababababababababababababababababababababababab"
				  "abababab");
	dane_tlsa_text(&recs[1], text, sizeof(text));
	assert_non_null(strstr(text, "2 0 2 cdcd"));
	assert_non_null(strstr(text, "..."));
}

static void test_parse_skips_what_cannot_be_used(void **state)
{
	(void)state;
	struct pkt p;
	size_t skipped;
	uint8_t rd[40] = {3, 1, 1};
	start(&p);
	add_tlsa(&p, 3, 1, 1, 0, 0);		     /* no data: skipped */
	add_tlsa(&p, 3, 0, 0, DANE_DATA_MAX + 1, 1); /* too long: skipped */
	add_rr(&p, 52, 3, rd, sizeof(rd));	     /* class CH: not counted */
	add_rr(&p, 5, 1, rd, sizeof(rd));	     /* a CNAME: not counted */
	for (int i = 0; i < 3; i++)
		add_tlsa(&p, 3, 1, 1, 32, (uint8_t)i);
	assert_int_equal(dane_parse_tlsa(p.b, p.len, recs, 2, &skipped), 2);
	assert_int_equal(skipped, 3); /* the two unusable and one past the cap */
	assert_int_equal(recs[1].data[0], 1);
	/* What dns.c counts for the same reply. */
	struct dns_answer a;
	dns_parse_answer(p.b, p.len, 0, DNS_QTYPE_TLSA, &a, NULL, 0);
	assert_int_equal(a.st, DNS_ST_DATA);
	assert_int_equal(a.n, 5);
}

static void test_parse_malformed(void **state)
{
	(void)state;
	struct pkt p;
	size_t skipped;
	start(&p);
	add_tlsa(&p, 3, 1, 1, 32, 0xab);
	/* Cut anywhere: malformed, or (inside the question) never a read
	 * past the end. */
	for (size_t cut = 0; cut < p.len; cut++) {
		int n = dane_parse_tlsa(p.b, cut, recs, DANE_MAX_RECORDS, &skipped);
		assert_true(n == -1 || n == 0);
	}
	assert_int_equal(dane_parse_tlsa(NULL, 0, recs, DANE_MAX_RECORDS, &skipped), -1);
	/* A record longer than the reply. */
	p.b[p.len - 35 - 2] = 0xff; /* rdlen high byte */
	assert_int_equal(dane_parse_tlsa(p.b, p.len, recs, DANE_MAX_RECORDS, &skipped), -1);
	/* No answer: none, not an error. */
	start(&p);
	assert_int_equal(dane_parse_tlsa(p.b, p.len, recs, DANE_MAX_RECORDS, &skipped), 0);
}

/* ---- the rule ---- */

static struct dane_result res;

static void set_result(enum dane_st srv, enum dane_st host, size_t n)
{
	memset(&res, 0, sizeof(res));
	res.srv = srv;
	snprintf(res.srv_why, sizeof(res.srv_why), "SRV _xmpp-server._tcp.fabrikam.test");
	res.nhosts = 1;
	struct dane_host *h = &res.hosts[0];
	snprintf(h->name, sizeof(h->name), "xmpp.fabrikam.test");
	snprintf(h->qname, sizeof(h->qname), "_5269._tcp.xmpp.fabrikam.test");
	h->port = 5269;
	h->st = host;
	h->n = n;
	snprintf(h->why, sizeof(h->why), "SERVFAIL");
}

static enum dane_use decide(enum dane_mode mode, char *why, size_t len)
{
	const struct dane_host *h = (const void *)1;
	enum dane_use u = dane_decide(mode, &res, "xmpp.fabrikam.test", 5269, &h, why, len);
	assert_true(u == DANE_USE_VERIFY ? h == &res.hosts[0] : h == NULL);
	return u;
}

static void test_decide(void **state)
{
	(void)state;
	char why[600];
	static const struct {
		enum dane_st srv, host;
		size_t n;
		enum dane_use opp, req;
		const char *words; /* in the required refusal */
	} cases[] = {
		{DANE_ST_RECORDS, DANE_ST_RECORDS, 1, DANE_USE_VERIFY, DANE_USE_VERIFY, NULL},
		{DANE_ST_NONE, DANE_ST_RECORDS, 1, DANE_USE_VERIFY, DANE_USE_VERIFY, NULL},
		{DANE_ST_RECORDS, DANE_ST_RECORDS, 0, DANE_USE_NONE, DANE_USE_REFUSE,
		 "can be used"},
		{DANE_ST_RECORDS, DANE_ST_NONE, 0, DANE_USE_NONE, DANE_USE_REFUSE,
		 "no TLSA records at _5269._tcp.xmpp.fabrikam.test"},
		{DANE_ST_RECORDS, DANE_ST_INSECURE, 0, DANE_USE_NONE, DANE_USE_REFUSE,
		 "the zone is not signed"},
		{DANE_ST_RECORDS, DANE_ST_BOGUS, 0, DANE_USE_REFUSE, DANE_USE_REFUSE, "bogus"},
		{DANE_ST_RECORDS, DANE_ST_FAIL, 0, DANE_USE_REFUSE, DANE_USE_REFUSE, "SERVFAIL"},
		/* Without a secure SRV answer the TLSA records do not count. */
		{DANE_ST_INSECURE, DANE_ST_RECORDS, 1, DANE_USE_NONE, DANE_USE_REFUSE,
		 "the zone is not signed"},
		/* Bogus already at the SRV answer: the path cannot validate. */
		{DANE_ST_BOGUS, DANE_ST_RECORDS, 1, DANE_USE_NONE, DANE_USE_REFUSE, "bogus"},
		{DANE_ST_FAIL, DANE_ST_RECORDS, 1, DANE_USE_NONE, DANE_USE_REFUSE, "DANE: SRV"},
	};
	for (size_t i = 0; i < FG_ARRAY_LEN(cases); i++) {
		set_result(cases[i].srv, cases[i].host, cases[i].n);
		assert_int_equal(decide(DANE_OFF, why, sizeof(why)), DANE_USE_NONE);
		assert_int_equal(decide(DANE_OPPORTUNISTIC, why, sizeof(why)), cases[i].opp);
		assert_int_equal(decide(DANE_REQUIRED, why, sizeof(why)), cases[i].req);
		if (cases[i].words) {
			if (!strstr(why, cases[i].words))
				fail_msg("case %zu: \"%s\" lacks \"%s\"", i, why, cases[i].words);
		} else {
			assert_string_equal(why, "");
		}
	}
	/* A target that was not looked up (past the cap). */
	set_result(DANE_ST_RECORDS, DANE_ST_RECORDS, 1);
	const struct dane_host *h;
	assert_int_equal(
		dane_decide(DANE_REQUIRED, &res, "other.fabrikam.test", 5269, &h, why, sizeof(why)),
		DANE_USE_REFUSE);
	assert_int_equal(dane_decide(DANE_OPPORTUNISTIC, &res, "xmpp.fabrikam.test", 5270, &h, why,
				     sizeof(why)),
			 DANE_USE_NONE);
	/* A Direct TLS target is judged by the _xmpps-server answer. */
	set_result(DANE_ST_RECORDS, DANE_ST_RECORDS, 1);
	res.hosts[0].direct = true;
	res.srvs = DANE_ST_INSECURE;
	snprintf(res.srvs_why, sizeof(res.srvs_why), "SRV _xmpps-server._tcp.fabrikam.test");
	assert_int_equal(decide(DANE_REQUIRED, why, sizeof(why)), DANE_USE_REFUSE);
	assert_non_null(strstr(why, "_xmpps-server._tcp.fabrikam.test is not DNSSEC-secure"));
	res.srvs = DANE_ST_RECORDS;
	assert_int_equal(decide(DANE_REQUIRED, why, sizeof(why)), DANE_USE_VERIFY);
	/* No lookup at all. */
	assert_int_equal(dane_decide(DANE_REQUIRED, NULL, "x", 1, &h, why, sizeof(why)),
			 DANE_USE_REFUSE);
	assert_int_equal(dane_decide(DANE_OPPORTUNISTIC, NULL, "x", 1, &h, why, sizeof(why)),
			 DANE_USE_NONE);
}

/* RFC 7673 §3.2: a host's TLSA records count only under secure addresses. */
static void test_host_finish(void **state)
{
	(void)state;
	static const struct {
		enum dane_st a, aaaa, want;
		size_t n;
	} cases[] = {
		{DANE_ST_RECORDS, DANE_ST_NONE, DANE_ST_RECORDS, 1},
		{DANE_ST_NONE, DANE_ST_RECORDS, DANE_ST_RECORDS, 1},
		{DANE_ST_RECORDS, DANE_ST_FAIL, DANE_ST_RECORDS, 1}, /* one family fails */
		{DANE_ST_RECORDS, DANE_ST_INSECURE, DANE_ST_INSECURE, 0},
		{DANE_ST_INSECURE, DANE_ST_NONE, DANE_ST_INSECURE, 0},
		{DANE_ST_RECORDS, DANE_ST_BOGUS, DANE_ST_BOGUS, 0},
		{DANE_ST_BOGUS, DANE_ST_INSECURE, DANE_ST_BOGUS, 0},
		{DANE_ST_NONE, DANE_ST_NONE, DANE_ST_FAIL, 0},
		{DANE_ST_FAIL, DANE_ST_FAIL, DANE_ST_FAIL, 0},
	};
	char why[600];
	for (size_t i = 0; i < FG_ARRAY_LEN(cases); i++) {
		set_result(DANE_ST_RECORDS, DANE_ST_RECORDS, 1);
		struct dane_host *h = &res.hosts[0];
		h->why[0] = '\0';
		h->addr_st[0] = cases[i].a;
		h->addr_st[1] = cases[i].aaaa;
		snprintf(h->addr_why, sizeof(h->addr_why), "xmpp.fabrikam.test A: SERVFAIL");
		dane_host_finish(h);
		if (h->st != cases[i].want || h->n != cases[i].n)
			fail_msg("case %zu: status %d with %zu records", i, h->st, h->n);
	}
	/* What required says of a host with insecure addresses. */
	set_result(DANE_ST_RECORDS, DANE_ST_RECORDS, 1);
	res.hosts[0].addr_st[0] = DANE_ST_INSECURE;
	dane_host_finish(&res.hosts[0]);
	assert_int_equal(decide(DANE_REQUIRED, why, sizeof(why)), DANE_USE_REFUSE);
	assert_string_equal(why, "DANE: the zone is not signed: xmpp.fabrikam.test has address "
				 "records that are not DNSSEC-secure");
}

static void test_host_text(void **state)
{
	(void)state;
	char text[64];
	set_result(DANE_ST_RECORDS, DANE_ST_RECORDS, 2);
	memset(res.hosts[0].recs, 0, sizeof(res.hosts[0].recs));
	res.hosts[0].recs[0].usage = 3;
	res.hosts[0].recs[0].len = 32;
	/* Cut, never overrun. */
	dane_host_text(&res.hosts[0], text, sizeof(text));
	assert_true(strlen(text) < sizeof(text));
	assert_non_null(strstr(text, "DNSSEC-secure, 2 records: 3 0 0 0000"));
	res.hosts[0].st = DANE_ST_NONE;
	dane_host_text(&res.hosts[0], text, sizeof(text));
	assert_string_equal(text, "DNSSEC-secure, no TLSA records");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_parse_records),
		cmocka_unit_test(test_parse_skips_what_cannot_be_used),
		cmocka_unit_test(test_parse_malformed),
		cmocka_unit_test(test_decide),
		cmocka_unit_test(test_host_finish),
		cmocka_unit_test(test_host_text),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}

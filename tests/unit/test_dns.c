/* dns: the parts that need no resolver. SRV ordering (RFC 2782) with a
 * scripted or seeded RNG, the "." rule, proxy_fqdn parsing, the wire
 * parser on hand-made replies, target lists and the admin's sentences. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "dns.h"
#include "fg.h"

#include <arpa/inet.h>
#include <stdio.h>
#include <string.h>

/* ---- RNGs ---- */

struct script {
	const uint32_t *vals;
	size_t n, next;
	uint32_t bounds[16]; /* what dns_srv_order asked for */
};

static uint32_t scripted(void *ud, uint32_t bound)
{
	struct script *s = ud;
	assert_true(s->next < s->n);
	s->bounds[s->next] = bound;
	uint32_t v = s->vals[s->next++];
	assert_true(v < bound);
	return v;
}

static uint32_t lcg(void *ud, uint32_t bound)
{
	uint64_t *state = ud;
	*state = *state * 6364136223846793005ull + 1442695040888963407ull;
	return (uint32_t)((*state >> 33) % bound);
}

static void set_srv(struct dns_srv *r, uint16_t prio, uint16_t weight, uint16_t port,
		    const char *target)
{
	memset(r, 0, sizeof(*r));
	r->prio = prio;
	r->weight = weight;
	r->port = port;
	snprintf(r->target, sizeof(r->target), "%s", target);
}

static void test_srv_priority_order(void **state)
{
	(void)state;
	struct dns_srv r[4];
	uint64_t seed = 1;
	set_srv(&r[0], 30, 0, 1, "c");
	set_srv(&r[1], 10, 0, 2, "a");
	set_srv(&r[2], 20, 5, 3, "b");
	set_srv(&r[3], 65535, 0, 4, "d");
	dns_srv_order(r, 4, lcg, &seed);
	assert_string_equal(r[0].target, "a");
	assert_string_equal(r[1].target, "b");
	assert_string_equal(r[2].target, "c");
	assert_string_equal(r[3].target, "d");
}

static void test_srv_weighted_selection_scripted(void **state)
{
	(void)state;
	struct dns_srv r[3];
	/* Same priority; weight 0 goes first in the running sum: z=0,
	 * x=10, y=40. 11 selects y; then z=0, x=10 and 0 selects z. */
	set_srv(&r[0], 5, 10, 1, "x");
	set_srv(&r[1], 5, 30, 2, "y");
	set_srv(&r[2], 5, 0, 3, "z");
	uint32_t vals[] = {11, 0};
	struct script s = {vals, 2, 0, {0}};
	dns_srv_order(r, 3, scripted, &s);
	assert_int_equal(s.next, 2);
	assert_int_equal(s.bounds[0], 41); /* uniform in [0, sum] */
	assert_int_equal(s.bounds[1], 11);
	assert_string_equal(r[0].target, "y");
	assert_string_equal(r[1].target, "z");
	assert_string_equal(r[2].target, "x");

	/* Boundaries: the first record whose running sum >= r. */
	set_srv(&r[0], 5, 10, 1, "x");
	set_srv(&r[1], 5, 30, 2, "y");
	uint32_t ten[] = {10};
	struct script s2 = {ten, 1, 0, {0}};
	dns_srv_order(r, 2, scripted, &s2);
	assert_string_equal(r[0].target, "x");
	set_srv(&r[0], 5, 10, 1, "x");
	set_srv(&r[1], 5, 30, 2, "y");
	uint32_t eleven[] = {11};
	struct script s3 = {eleven, 1, 0, {0}};
	dns_srv_order(r, 2, scripted, &s3);
	assert_string_equal(r[0].target, "y");
}

static void test_srv_weights_statistics(void **state)
{
	(void)state;
	uint64_t seed = 42;
	int first_heavy = 0, first_zero = 0;
	const int runs = 8000;
	for (int i = 0; i < runs; i++) {
		struct dns_srv r[3];
		set_srv(&r[0], 1, 1, 1, "light");
		set_srv(&r[1], 1, 3, 2, "heavy");
		set_srv(&r[2], 1, 0, 3, "zero");
		/* A lower priority never comes first, whatever the weights. */
		struct dns_srv all[4];
		memcpy(all, r, sizeof(r));
		set_srv(&all[3], 0, 0, 4, "primary");
		dns_srv_order(all, 4, lcg, &seed);
		assert_string_equal(all[0].target, "primary");
		if (strcmp(all[1].target, "heavy") == 0)
			first_heavy++;
		if (strcmp(all[1].target, "zero") == 0)
			first_zero++;
	}
	/* P(heavy first) = 3/5, P(zero first) = 1/5 (r == 0 of 0..4). */
	assert_in_range(first_heavy, runs * 55 / 100, runs * 65 / 100);
	assert_in_range(first_zero, runs * 17 / 100, runs * 23 / 100);
}

static void test_srv_all_zero_keeps_answer_order(void **state)
{
	(void)state;
	struct dns_srv r[3];
	uint64_t seed = 7;
	set_srv(&r[0], 1, 0, 1, "one");
	set_srv(&r[1], 1, 0, 2, "two");
	set_srv(&r[2], 1, 0, 3, "three");
	dns_srv_order(r, 3, lcg, &seed);
	assert_string_equal(r[0].target, "one");
	assert_string_equal(r[1].target, "two");
	assert_string_equal(r[2].target, "three");
}

static void test_srv_no_service(void **state)
{
	(void)state;
	struct dns_srv r[2];
	set_srv(&r[0], 0, 0, 0, "");
	assert_int_equal(dns_srv_no_service(r, 1), 1);
	set_srv(&r[1], 10, 0, 5269, "xmpp.fabrikam.test");
	assert_int_equal(dns_srv_no_service(r, 2), 0);
	assert_int_equal(dns_srv_no_service(&r[1], 1), 0);
	assert_int_equal(dns_srv_no_service(r, 0), 0);
}

/* ---- XEP-0368: _xmpp-server and _xmpps-server merged ---- */

static void answer_with(struct dns_answer *a, enum dns_status st, size_t n)
{
	memset(a, 0, sizeof(*a));
	a->st = st;
	a->n = n;
}

static void test_merge_priority_then_direct_first(void **state)
{
	(void)state;
	struct dns_srv plain[2], direct[2], out[8];
	struct dns_answer pa, da;
	char why[300];
	size_t n = 99;
	uint64_t seed = 3;
	/* _xmpp: 10 a:5269, 20 c:5269; _xmpps: 10 b:5270, 5 d:5270 */
	set_srv(&plain[0], 10, 0, 5269, "a");
	set_srv(&plain[1], 20, 0, 5269, "c");
	set_srv(&direct[0], 10, 0, 5270, "b");
	set_srv(&direct[1], 5, 0, 5270, "d");
	answer_with(&pa, DNS_ST_DATA, 2);
	answer_with(&da, DNS_ST_DATA, 2);
	assert_int_equal(dns_srv_merge("f.test", &pa, plain, &da, direct, out, 8, &n, lcg, &seed,
				       why, sizeof(why)),
			 DNS_PLAN_SRV);
	assert_int_equal(n, 4);
	/* lowest priority first whatever the kind; at 10, Direct TLS first */
	assert_string_equal(out[0].target, "d");
	assert_true(out[0].direct_tls);
	assert_string_equal(out[1].target, "b");
	assert_true(out[1].direct_tls);
	assert_string_equal(out[2].target, "a");
	assert_false(out[2].direct_tls);
	assert_string_equal(out[3].target, "c");
	assert_false(out[3].direct_tls);
}

static void test_merge_weights_within_kind(void **state)
{
	(void)state;
	/* Same priority, both kinds: a Direct TLS record always comes
	 * before the STARTTLS ones, and the weights pick among each kind. */
	uint64_t seed = 11;
	int heavy_first = 0;
	const int runs = 4000;
	for (int i = 0; i < runs; i++) {
		struct dns_srv plain[1], direct[2], out[4];
		struct dns_answer pa, da;
		char why[300];
		size_t n = 0;
		set_srv(&plain[0], 1, 1000, 5269, "plain");
		set_srv(&direct[0], 1, 1, 5270, "light");
		set_srv(&direct[1], 1, 3, 5270, "heavy");
		answer_with(&pa, DNS_ST_DATA, 1);
		answer_with(&da, DNS_ST_DATA, 2);
		assert_int_equal(dns_srv_merge("f.test", &pa, plain, &da, direct, out, 4, &n, lcg,
					       &seed, why, sizeof(why)),
				 DNS_PLAN_SRV);
		assert_int_equal(n, 3);
		assert_string_equal(out[2].target, "plain");
		heavy_first += strcmp(out[0].target, "heavy") == 0;
	}
	/* r uniform in [0, 4]: light takes 0 and 1, heavy 2 to 4 */
	assert_in_range(heavy_first, runs * 55 / 100, runs * 65 / 100);
}

static void test_merge_one_kind_and_fallbacks(void **state)
{
	(void)state;
	struct dns_srv plain[2] = {{0}}, direct[2] = {{0}}, out[8];
	struct dns_answer pa, da;
	char why[400];
	size_t n = 0;
	uint64_t seed = 5;

	/* Only _xmpps: its records, no fallback. */
	set_srv(&direct[0], 0, 0, 5270, "tls.f.test");
	answer_with(&pa, DNS_ST_NXDOMAIN, 0);
	answer_with(&da, DNS_ST_DATA, 1);
	assert_int_equal(dns_srv_merge("f.test", &pa, plain, &da, direct, out, 8, &n, lcg, &seed,
				       why, sizeof(why)),
			 DNS_PLAN_SRV);
	assert_int_equal(n, 1);
	assert_true(out[0].direct_tls);

	/* Only _xmpp, _xmpps failing (SERVFAIL): the standard records. */
	set_srv(&plain[0], 0, 0, 5269, "x.f.test");
	answer_with(&pa, DNS_ST_DATA, 1);
	answer_with(&da, DNS_ST_FAIL, 0);
	assert_int_equal(dns_srv_merge("f.test", &pa, plain, &da, direct, out, 8, &n, lcg, &seed,
				       why, sizeof(why)),
			 DNS_PLAN_SRV);
	assert_int_equal(n, 1);
	assert_false(out[0].direct_tls);

	/* _xmpp failing: no way around it, whatever _xmpps says. */
	answer_with(&pa, DNS_ST_FAIL, 0);
	snprintf(pa.why, sizeof(pa.why), "SERVFAIL");
	answer_with(&da, DNS_ST_DATA, 1);
	assert_int_equal(dns_srv_merge("f.test", &pa, plain, &da, direct, out, 8, &n, lcg, &seed,
				       why, sizeof(why)),
			 DNS_PLAN_FAIL);
	assert_non_null(strstr(why, "SERVFAIL"));

	/* Neither: the domain itself. */
	answer_with(&pa, DNS_ST_NODATA, 0);
	answer_with(&da, DNS_ST_NXDOMAIN, 0);
	assert_int_equal(dns_srv_merge("f.test", &pa, plain, &da, direct, out, 8, &n, lcg, &seed,
				       why, sizeof(why)),
			 DNS_PLAN_FALLBACK);

	/* "." for _xmpps alone: no Direct TLS, and no A/AAAA fallback. */
	set_srv(&direct[0], 0, 0, 0, "");
	answer_with(&da, DNS_ST_DATA, 1);
	assert_int_equal(dns_srv_merge("f.test", &pa, plain, &da, direct, out, 8, &n, lcg, &seed,
				       why, sizeof(why)),
			 DNS_PLAN_FAIL);
	assert_non_null(strstr(why, "no Direct TLS"));

	/* ... but _xmpp records are used then. */
	answer_with(&pa, DNS_ST_DATA, 1);
	assert_int_equal(dns_srv_merge("f.test", &pa, plain, &da, direct, out, 8, &n, lcg, &seed,
				       why, sizeof(why)),
			 DNS_PLAN_SRV);
	assert_int_equal(n, 1);
	assert_false(out[0].direct_tls);

	/* "." for _xmpp alone with Direct TLS records: Direct TLS only. */
	set_srv(&plain[0], 0, 0, 0, "");
	set_srv(&direct[0], 0, 0, 5270, "tls.f.test");
	assert_int_equal(dns_srv_merge("f.test", &pa, plain, &da, direct, out, 8, &n, lcg, &seed,
				       why, sizeof(why)),
			 DNS_PLAN_SRV);
	assert_int_equal(n, 1);
	assert_true(out[0].direct_tls);

	/* "." for _xmpp and nothing else: no service. */
	answer_with(&da, DNS_ST_NODATA, 0);
	assert_int_equal(dns_srv_merge("f.test", &pa, plain, &da, direct, out, 8, &n, lcg, &seed,
				       why, sizeof(why)),
			 DNS_PLAN_FAIL);
	assert_non_null(strstr(why, "offers no XMPP server service"));

	/* The cap on out holds. */
	struct dns_srv many[DNS_MAX_SRV_PARSE];
	for (size_t i = 0; i < DNS_MAX_SRV_PARSE; i++)
		set_srv(&many[i], (uint16_t)i, 0, 5269, "h");
	answer_with(&pa, DNS_ST_DATA, DNS_MAX_SRV_PARSE);
	answer_with(&da, DNS_ST_DATA, DNS_MAX_SRV_PARSE);
	assert_int_equal(dns_srv_merge("f.test", &pa, many, &da, many, out, 8, &n, lcg, &seed, why,
				       sizeof(why)),
			 DNS_PLAN_SRV);
	assert_int_equal(n, 8);
}

/* ---- proxy_fqdn and names ---- */

static void test_parse_hostport(void **state)
{
	(void)state;
	static const struct {
		const char *in;
		int rc;
		const char *host;
		uint16_t port;
		int is_ip;
	} cases[] = {
		{"proxy.fabrikam.test", FG_OK, "proxy.fabrikam.test", 5269, 0},
		{"Proxy.Fabrikam.TEST.", FG_OK, "proxy.fabrikam.test", 5269, 0},
		{"proxy.fabrikam.test:5270", FG_OK, "proxy.fabrikam.test", 5270, 0},
		{"localhost", FG_OK, "localhost", 5269, 0},
		{"192.0.2.7", FG_OK, "192.0.2.7", 5269, 1},
		{"192.0.2.7:1", FG_OK, "192.0.2.7", 1, 1},
		{"[2001:db8::7]:5271", FG_OK, "2001:db8::7", 5271, 1},
		{"[::1]", FG_OK, "::1", 5269, 1},
		{"2001:db8::7", FG_OK, "2001:db8::7", 5269, 1},
		{"::ffff:192.0.2.1", FG_OK, "::ffff:192.0.2.1", 5269, 1},
		{"", FG_INVAL, NULL, 0, 0},
		{":5269", FG_INVAL, NULL, 0, 0},
		{"host:", FG_INVAL, NULL, 0, 0},
		{"host:0", FG_INVAL, NULL, 0, 0},
		{"host:65536", FG_INVAL, NULL, 0, 0},
		{"host:052690", FG_INVAL, NULL, 0, 0},
		{"host:+5", FG_INVAL, NULL, 0, 0},
		{"host:52 ", FG_INVAL, NULL, 0, 0},
		{"[2001:db8::7]5270", FG_INVAL, NULL, 0, 0},
		{"[2001:db8::7", FG_INVAL, NULL, 0, 0},
		{"[proxy.test]:5269", FG_INVAL, NULL, 0, 0},
		{"[192.0.2.1]", FG_INVAL, NULL, 0, 0},
		{"2001:db8::7:5270x", FG_INVAL, NULL, 0, 0},
		{"bad host", FG_INVAL, NULL, 0, 0},
		{"a..b", FG_INVAL, NULL, 0, 0},
		{".a", FG_INVAL, NULL, 0, 0},
		{"..", FG_INVAL, NULL, 0, 0},
		/* An address with a final dot is the address, as policy.c's
		 * proxy_fqdn check reads it: no top-level label is all
		 * digits, so as a name it could only give NXDOMAIN. */
		{"192.0.2.7.", FG_OK, "192.0.2.7", 5269, 1},
		{"192.0.2.7.:5270", FG_OK, "192.0.2.7", 5270, 1},
		{"caf\xc3\xa9.test", FG_INVAL, NULL, 0, 0}, /* must arrive as A-labels */
		{"xn--caf-dma.test", FG_OK, "xn--caf-dma.test", 5269, 0},
	};
	for (size_t i = 0; i < FG_ARRAY_LEN(cases); i++) {
		char host[DNS_NAME_MAX + 1] = "";
		uint16_t port = 0;
		int is_ip = -1;
		int rc = dns_parse_hostport(cases[i].in, 5269, host, sizeof(host), &port, &is_ip);
		if (rc != cases[i].rc)
			fail_msg("\"%s\": rc %d, want %d", cases[i].in, rc, cases[i].rc);
		if (rc != FG_OK)
			continue;
		assert_string_equal(host, cases[i].host);
		assert_int_equal(port, cases[i].port);
		assert_int_equal(is_ip, cases[i].is_ip);
	}
	/* The caller's buffer is respected. */
	char small[4];
	uint16_t port;
	int is_ip;
	assert_int_equal(
		dns_parse_hostport("proxy.test", 5269, small, sizeof(small), &port, &is_ip),
		FG_INVAL);
}

static void test_name_valid(void **state)
{
	(void)state;
	char label63[64], label64[65], name254[256];
	memset(label63, 'a', 63);
	label63[63] = '\0';
	memset(label64, 'a', 64);
	label64[64] = '\0';
	assert_true(dns_name_valid(label63));
	assert_false(dns_name_valid(label64));
	assert_true(dns_name_valid("_xmpp-server._tcp.fabrikam.test"));
	assert_false(dns_name_valid(""));
	assert_false(dns_name_valid("a."));
	assert_false(dns_name_valid("a/b"));
	memset(name254, 'a', 254);
	for (int i = 63; i < 254; i += 64)
		name254[i] = '.';
	name254[253] = '\0';
	assert_true(dns_name_valid(name254));
	name254[253] = 'a';
	name254[254] = '\0';
	assert_false(dns_name_valid(name254));
}

/* ---- wire parser ---- */

struct pkt {
	uint8_t b[1024];
	size_t n;
};

static void put8(struct pkt *p, unsigned v)
{
	p->b[p->n++] = (uint8_t)v;
}
static void put16(struct pkt *p, unsigned v)
{
	put8(p, v >> 8);
	put8(p, v & 0xff);
}
static void put32(struct pkt *p, uint32_t v)
{
	put16(p, v >> 16);
	put16(p, v & 0xffff);
}
static void put_name(struct pkt *p, const char *name)
{
	while (*name) {
		const char *dot = strchr(name, '.');
		size_t l = dot ? (size_t)(dot - name) : strlen(name);
		put8(p, (unsigned)l);
		memcpy(p->b + p->n, name, l);
		p->n += l;
		name += l + (dot ? 1 : 0);
	}
	put8(p, 0);
}

/* Header + question; qname is at offset 12, useful for pointers. */
static void start(struct pkt *p, unsigned rcode, unsigned ancount, const char *qname,
		  unsigned qtype)
{
	memset(p, 0, sizeof(*p));
	put16(p, 0);
	put16(p, 0x8180 | rcode);
	put16(p, 1);
	put16(p, ancount);
	put16(p, 0);
	put16(p, 0);
	put_name(p, qname);
	put16(p, qtype);
	put16(p, 1);
}

static void rr_head(struct pkt *p, unsigned type, uint32_t ttl, unsigned rdlen)
{
	put16(p, 0xc00c); /* owner: the question's name */
	put16(p, type);
	put16(p, 1);
	put32(p, ttl);
	put16(p, rdlen);
}

static void test_parse_srv(void **state)
{
	(void)state;
	struct pkt p;
	struct dns_answer a;
	struct dns_srv srv[4];

	start(&p, 0, 3, "_xmpp-server._tcp.fabrikam.test", 33);
	rr_head(&p, 33, 300, 6 + 21);
	put16(&p, 10);
	put16(&p, 0);
	put16(&p, 5269);
	put_name(&p, "xmpp1.fabrikam.test"); /* 21 bytes */
	/* Target compressed: "xmpp2" + pointer to "fabrikam.test" in the
	 * question (offset 12 + 1 + 12 + 1 + 4 = 30). */
	rr_head(&p, 33, 120, 6 + 6 + 2);
	put16(&p, 20);
	put16(&p, 5);
	put16(&p, 5270);
	put8(&p, 5);
	memcpy(p.b + p.n, "XMPP2", 5);
	p.n += 5;
	put16(&p, 0xc000 | 30);
	/* A record of another type in the answer is ignored. */
	rr_head(&p, 5, 1, 2);
	put16(&p, 0xc00c);
	dns_parse_answer(p.b, p.n, 0, 33, &a, srv, 4);
	assert_int_equal(a.st, DNS_ST_DATA);
	assert_int_equal(a.n, 2);
	assert_int_equal(a.ttl, 120);
	assert_int_equal(srv[0].prio, 10);
	assert_int_equal(srv[0].port, 5269);
	assert_string_equal(srv[0].target, "xmpp1.fabrikam.test");
	assert_int_equal(srv[1].weight, 5);
	assert_string_equal(srv[1].target, "xmpp2.fabrikam.test");

	/* The "." record. */
	start(&p, 0, 1, "_xmpp-server._tcp.dot.test", 33);
	rr_head(&p, 33, 60, 7);
	put16(&p, 0);
	put16(&p, 0);
	put16(&p, 0);
	put8(&p, 0);
	dns_parse_answer(p.b, p.n, 0, 33, &a, srv, 4);
	assert_int_equal(a.st, DNS_ST_DATA);
	assert_int_equal(a.n, 1);
	assert_string_equal(srv[0].target, "");
	assert_true(dns_srv_no_service(srv, a.n));

	/* More records than the cap: kept up to it, the rest counted. */
	start(&p, 0, 3, "_x._tcp.t", 33);
	for (int i = 0; i < 3; i++) {
		rr_head(&p, 33, 60, 9);
		put16(&p, 0);
		put16(&p, 0);
		put16(&p, 1);
		put_name(&p, "h");
	}
	dns_parse_answer(p.b, p.n, 0, 33, &a, srv, 2);
	assert_int_equal(a.n, 2);
	assert_int_equal(a.dropped, 1);
}

static void test_parse_hostile(void **state)
{
	(void)state;
	struct pkt p;
	struct dns_answer a;
	struct dns_srv srv[2];

	/* A compression loop in the target: that record is unusable. */
	start(&p, 0, 1, "_x._tcp.t", 33);
	rr_head(&p, 33, 60, 8);
	put16(&p, 0);
	put16(&p, 0);
	put16(&p, 1);
	put16(&p, 0xc000 | (unsigned)(p.n));
	dns_parse_answer(p.b, p.n, 0, 33, &a, srv, 2);
	assert_int_equal(a.st, DNS_ST_NODATA);

	/* A label with a byte no host name has. */
	start(&p, 0, 1, "_x._tcp.t", 33);
	rr_head(&p, 33, 60, 6 + 5);
	put16(&p, 0);
	put16(&p, 0);
	put16(&p, 1);
	put8(&p, 3);
	put8(&p, 'a');
	put8(&p, '\n');
	put8(&p, 'b');
	put8(&p, 0);
	dns_parse_answer(p.b, p.n, 0, 33, &a, srv, 2);
	assert_int_equal(a.st, DNS_ST_NODATA);

	/* rdlength past the end. */
	start(&p, 0, 1, "h.t", 1);
	rr_head(&p, 1, 60, 40);
	put32(&p, 0x7f000001);
	dns_parse_answer(p.b, p.n, 0, 1, &a, NULL, 0);
	assert_int_equal(a.st, DNS_ST_FAIL);
	assert_string_equal(a.why, "malformed reply");

	/* Fewer answer records than the header claims. */
	start(&p, 0, 2, "h.t", 1);
	rr_head(&p, 1, 60, 4);
	put32(&p, 0x7f000001);
	dns_parse_answer(p.b, p.n, 0, 1, &a, NULL, 0);
	assert_int_equal(a.st, DNS_ST_FAIL);

	/* Too short for a header; no packet at all. */
	dns_parse_answer(p.b, 5, 0, 1, &a, NULL, 0);
	assert_int_equal(a.st, DNS_ST_FAIL);
	dns_parse_answer(NULL, 0, 0, 1, &a, NULL, 0);
	assert_int_equal(a.st, DNS_ST_FAIL);
}

static void test_parse_addresses_and_rcodes(void **state)
{
	(void)state;
	struct pkt p;
	struct dns_answer a;

	start(&p, 0, 10, "h.t", 1);
	for (unsigned i = 0; i < 10; i++) {
		rr_head(&p, 1, i == 3 ? 0x80000000u : 100 + i, 4);
		put32(&p, 0x7f000001 + i);
	}
	dns_parse_answer(p.b, p.n, 0, 1, &a, NULL, 0);
	assert_int_equal(a.st, DNS_ST_DATA);
	assert_int_equal(a.n, DNS_MAX_ADDRS);
	assert_int_equal(a.dropped, 10 - DNS_MAX_ADDRS);
	assert_int_equal(a.ttl, 0); /* top bit set means 0 (RFC 2181) */
	assert_memory_equal(a.addr[1], "\x7f\x00\x00\x02", 4);

	start(&p, 0, 1, "h.t", 28);
	rr_head(&p, 28, 30, 16);
	for (int i = 0; i < 15; i++)
		put8(&p, 0);
	put8(&p, 1);
	dns_parse_answer(p.b, p.n, 0, 28, &a, NULL, 0);
	assert_int_equal(a.st, DNS_ST_DATA);
	assert_int_equal(a.ttl, 30);
	assert_memory_equal(a.addr[0], "\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\1", 16);

	/* An A record of the wrong size is not an address. */
	start(&p, 0, 1, "h.t", 1);
	rr_head(&p, 1, 30, 3);
	put8(&p, 1);
	put8(&p, 2);
	put8(&p, 3);
	dns_parse_answer(p.b, p.n, 0, 1, &a, NULL, 0);
	assert_int_equal(a.st, DNS_ST_NODATA);

	start(&p, 3, 0, "nope.t", 1);
	dns_parse_answer(p.b, p.n, 0, 1, &a, NULL, 0);
	assert_int_equal(a.st, DNS_ST_NXDOMAIN);
	start(&p, 0, 0, "nope.t", 1);
	dns_parse_answer(p.b, p.n, 0, 1, &a, NULL, 0);
	assert_int_equal(a.st, DNS_ST_NODATA);
	start(&p, 5, 0, "nope.t", 1);
	dns_parse_answer(p.b, p.n, 0, 1, &a, NULL, 0);
	assert_int_equal(a.st, DNS_ST_FAIL);
	assert_string_equal(a.why, "REFUSED");
	/* libunbound's rcode wins over the packet's. */
	start(&p, 0, 0, "nope.t", 1);
	dns_parse_answer(p.b, p.n, 2, 1, &a, NULL, 0);
	assert_int_equal(a.st, DNS_ST_FAIL);
	assert_string_equal(a.why, "SERVFAIL");
	dns_parse_answer(NULL, 0, 9, 1, &a, NULL, 0);
	assert_string_equal(a.why, "RCODE 9");
}

/* ---- targets ---- */

static void add_addr(struct dns_answer *a, int family, const char *text, uint32_t ttl)
{
	a->st = DNS_ST_DATA;
	assert_int_equal(inet_pton(family, text, a->addr[a->n]), 1);
	a->n++;
	if (a->ttl == 0 || ttl < a->ttl)
		a->ttl = ttl;
}

static void test_build_targets(void **state)
{
	(void)state;
	struct dns_host h[2];
	struct dns_target t[8];
	uint32_t ttl;

	memset(h, 0, sizeof(h));
	snprintf(h[0].name, sizeof(h[0].name), "xmpp1.fabrikam.test");
	h[0].port = 5269;
	add_addr(&h[0].a4, AF_INET, "127.0.0.2", 300);
	add_addr(&h[0].a4, AF_INET, "127.0.0.5", 300);
	add_addr(&h[0].a6, AF_INET6, "fd00::2", 200);
	h[0].a6.n = 1;
	snprintf(h[1].name, sizeof(h[1].name), "xmpp2.fabrikam.test");
	h[1].port = 5270;
	h[1].a6.st = DNS_ST_NODATA;
	add_addr(&h[1].a4, AF_INET, "127.0.0.3", 100);
	add_addr(&h[1].a4, AF_INET, "127.0.0.3", 100); /* duplicate answer */

	size_t n = dns_build_targets(h, 2, t, 8, &ttl);
	assert_int_equal(n, 4);
	assert_int_equal(ttl, 100);
	assert_string_equal(t[0].addr_text, "fd00::2");
	assert_int_equal(t[0].addr.ss_family, AF_INET6);
	assert_int_equal(ntohs(((struct sockaddr_in6 *)&t[0].addr)->sin6_port), 5269);
	assert_int_equal(t[0].addrlen, sizeof(struct sockaddr_in6));
	assert_string_equal(t[1].addr_text, "127.0.0.2");
	assert_string_equal(t[2].addr_text, "127.0.0.5");
	assert_string_equal(t[3].addr_text, "127.0.0.3");
	assert_string_equal(t[3].host, "xmpp2.fabrikam.test");
	assert_int_equal(t[3].port, 5270);
	assert_int_equal(ntohs(((struct sockaddr_in *)&t[3].addr)->sin_port), 5270);

	/* The same address on another port is another target. */
	h[1].a4.n = 1;
	snprintf(h[1].name, sizeof(h[1].name), "xmpp1.fabrikam.test");
	memcpy(h[1].a4.addr[0], h[0].a4.addr[0], 4);
	assert_int_equal(dns_build_targets(h, 2, t, 8, &ttl), 4);
	h[1].port = 5269;
	assert_int_equal(dns_build_targets(h, 2, t, 8, &ttl), 3);

	/* The cap holds. */
	assert_int_equal(dns_build_targets(h, 2, t, 2, &ttl), 2);

	/* Nothing usable. */
	h[0].a4.st = DNS_ST_NXDOMAIN;
	h[0].a6.st = DNS_ST_NXDOMAIN;
	assert_int_equal(dns_build_targets(h, 1, t, 8, &ttl), 0);
	assert_int_equal(ttl, 0);
}

/* RFC 8305 §4: families alternate within a host, IPv6 first, so that
 * the second attempt of a race is of the other family; hosts keep their
 * SRV order. */
static void test_build_targets_interleaved(void **state)
{
	(void)state;
	struct dns_host h[2];
	struct dns_target t[8];
	uint32_t ttl;
	static const char *const want[] = {"fd00::1",	"127.0.0.1", "fd00::2",	 "127.0.0.2",
					   "127.0.0.3", "fd00::9",   "127.0.0.9"};

	memset(h, 0, sizeof(h));
	snprintf(h[0].name, sizeof(h[0].name), "xmpp.fabrikam.test");
	h[0].port = 5269;
	add_addr(&h[0].a4, AF_INET, "127.0.0.1", 300);
	add_addr(&h[0].a4, AF_INET, "127.0.0.2", 300);
	add_addr(&h[0].a4, AF_INET, "127.0.0.3", 300);
	add_addr(&h[0].a6, AF_INET6, "fd00::1", 300);
	add_addr(&h[0].a6, AF_INET6, "fd00::2", 300);
	/* The second host has fewer IPv6 addresses than IPv4 ones too, and
	 * its IPv6 comes after the first host's IPv4 all the same. */
	snprintf(h[1].name, sizeof(h[1].name), "backup.fabrikam.test");
	h[1].port = 5269;
	add_addr(&h[1].a6, AF_INET6, "fd00::9", 300);
	add_addr(&h[1].a4, AF_INET, "127.0.0.9", 300);
	size_t n = dns_build_targets(h, 2, t, 8, &ttl);
	assert_int_equal(n, 7);
	for (size_t i = 0; i < n; i++)
		assert_string_equal(t[i].addr_text, want[i]);
	assert_string_equal(t[6].host, "backup.fabrikam.test");
}

/* ---- sentences ---- */

static void test_explain(void **state)
{
	(void)state;
	struct dns_host h[2];
	char buf[512];

	memset(h, 0, sizeof(h));
	snprintf(h[0].name, sizeof(h[0].name), "fabrikam.test");
	h[0].a6.st = DNS_ST_NXDOMAIN;
	h[0].a4.st = DNS_ST_NXDOMAIN;
	dns_explain(buf, sizeof(buf), DNS_VIA_FALLBACK, "fabrikam.test", "127.0.0.53", h, 1);
	assert_string_equal(buf, "no DNS records for fabrikam.test: NXDOMAIN from 127.0.0.53");

	h[0].a6.st = DNS_ST_NODATA;
	h[0].a4.st = DNS_ST_NODATA;
	dns_explain(buf, sizeof(buf), DNS_VIA_FALLBACK, "fabrikam.test", "127.0.0.53", h, 1);
	assert_string_equal(buf, "no DNS records for fabrikam.test: no _xmpp-server._tcp SRV and "
				 "no A or AAAA records, answer from 127.0.0.53");

	h[0].a4.st = DNS_ST_FAIL;
	snprintf(h[0].a4.why, sizeof(h[0].a4.why), "SERVFAIL");
	dns_explain(buf, sizeof(buf), DNS_VIA_FALLBACK, "fabrikam.test", "127.0.0.53", h, 1);
	assert_string_equal(buf, "DNS lookup of fabrikam.test failed: SERVFAIL from 127.0.0.53");

	snprintf(h[0].name, sizeof(h[0].name), "proxy.fabrikam.test");
	dns_explain(buf, sizeof(buf), DNS_VIA_PROXY, "fabrikam.test", "127.0.0.53", h, 1);
	assert_string_equal(buf, "DNS lookup of proxy_fqdn host proxy.fabrikam.test for "
				 "fabrikam.test failed: SERVFAIL from 127.0.0.53");
	h[0].a4.st = DNS_ST_NXDOMAIN;
	dns_explain(buf, sizeof(buf), DNS_VIA_PROXY, "fabrikam.test", "127.0.0.53", h, 1);
	assert_string_equal(buf, "proxy_fqdn host proxy.fabrikam.test for fabrikam.test has no "
				 "address: NXDOMAIN from 127.0.0.53");

	snprintf(h[0].name, sizeof(h[0].name), "xmpp1.fabrikam.test");
	snprintf(h[1].name, sizeof(h[1].name), "xmpp2.fabrikam.test");
	h[1].a6.st = DNS_ST_NODATA;
	h[1].a4.st = DNS_ST_NODATA;
	dns_explain(buf, sizeof(buf), DNS_VIA_SRV, "fabrikam.test", "127.0.0.53", h, 2);
	assert_string_equal(buf, "no SRV target of fabrikam.test has an address: "
				 "xmpp1.fabrikam.test: NXDOMAIN; xmpp2.fabrikam.test: no A or "
				 "AAAA records (from 127.0.0.53)");

	/* A short buffer truncates, never overflows. */
	char tiny[16];
	dns_explain(tiny, sizeof(tiny), DNS_VIA_SRV, "fabrikam.test", "127.0.0.53", h, 2);
	assert_int_equal(strlen(tiny), sizeof(tiny) - 1);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_srv_priority_order),
		cmocka_unit_test(test_srv_weighted_selection_scripted),
		cmocka_unit_test(test_srv_weights_statistics),
		cmocka_unit_test(test_srv_all_zero_keeps_answer_order),
		cmocka_unit_test(test_srv_no_service),
		cmocka_unit_test(test_merge_priority_then_direct_first),
		cmocka_unit_test(test_merge_weights_within_kind),
		cmocka_unit_test(test_merge_one_kind_and_fallbacks),
		cmocka_unit_test(test_parse_hostport),
		cmocka_unit_test(test_name_valid),
		cmocka_unit_test(test_parse_srv),
		cmocka_unit_test(test_parse_hostile),
		cmocka_unit_test(test_parse_addresses_and_rcodes),
		cmocka_unit_test(test_build_targets),
		cmocka_unit_test(test_build_targets_interleaved),
		cmocka_unit_test(test_explain),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}

/* libFuzzer target for what a DNS server's answer reaches: the wire-format
 * parser (dns_parse_answer), the RFC 2782 ordering of the SRV records it
 * yields, the flattening of A/AAAA answers into connection targets, the
 * sentence an admin reads when nothing is left, the XEP-0368 merge of
 * _xmpp-server and _xmpps-server records, and the proxy_fqdn parser.
 * The first byte picks the query type and libunbound's rcode, the rest is
 * the reply, as libunbound hands it over (answer_packet). */
#include <arpa/inet.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz.h"
#include "dns.h"
#include "fg.h"

#define SRV_CAP 8 /* below DNS_MAX_SRV_PARSE, so the cap is reached too */

static bool lower_name(const char *s)
{
	for (; *s; s++)
		if (*s >= 'A' && *s <= 'Z')
			return false;
	return true;
}

static uint32_t rng(void *ud, uint32_t bound)
{
	uint32_t *state = ud;

	CHECK(bound > 0);
	*state = *state * 1103515245u + 12345u;
	return (*state >> 8) % bound;
}

static bool same_srv(const struct dns_srv *a, const struct dns_srv *b)
{
	return a->prio == b->prio && a->weight == b->weight && a->port == b->port &&
	       strcmp(a->target, b->target) == 0;
}

/* Ordering is a permutation, ascending by priority. */
static void check_order(const struct dns_srv *srv, size_t n, uint32_t seed)
{
	struct dns_srv o[SRV_CAP];
	bool used[SRV_CAP] = {false};

	memcpy(o, srv, n * sizeof(*o));
	dns_srv_order(o, n, rng, &seed);
	for (size_t i = 0; i < n; i++) {
		size_t j = 0;

		if (i > 0)
			CHECK(o[i - 1].prio <= o[i].prio);
		while (j < n && (used[j] || !same_srv(&o[i], &srv[j])))
			j++;
		CHECK(j < n);
		used[j] = true;
	}
}

static void check_answer(const struct dns_answer *a, const struct dns_srv *srv, uint16_t qtype)
{
	CHECK(a->st >= DNS_ST_DATA && a->st <= DNS_ST_FAIL);
	CHECK(memchr(a->why, '\0', sizeof(a->why)) != NULL);
	CHECK((a->st == DNS_ST_DATA) == (a->n > 0));
	CHECK(a->st != DNS_ST_FAIL || a->why[0] != '\0');
	if (a->n == 0)
		return;
	/* RFC 2181 §8: a TTL with the top bit set counts as zero. */
	CHECK(a->ttl < 0x80000000u);
	if (qtype != 33) {
		CHECK(a->n <= DNS_MAX_ADDRS);
		return;
	}
	CHECK(a->n <= SRV_CAP);
	for (size_t i = 0; i < a->n; i++) {
		/* Nothing odd may reach a log line or the next lookup. */
		CHECK(srv[i].target[0] == '\0' || dns_name_valid(srv[i].target));
		CHECK(lower_name(srv[i].target));
	}
	CHECK(dns_srv_no_service(srv, a->n) == (a->n == 1 && srv[0].target[0] == '\0'));
}

/* XEP-0368: the answer as both _xmpp-server and _xmpps-server records
 * (halves of it), each side's status from ctl: the merge keeps only usable
 * records, by priority, Direct TLS first at equal priority, within max. */
static void check_merge(const struct dns_answer *a, const struct dns_srv *srv, uint8_t ctl)
{
	static const enum dns_status sts[4] = {DNS_ST_DATA, DNS_ST_NODATA, DNS_ST_NXDOMAIN,
					       DNS_ST_FAIL};
	struct dns_answer pa = *a, da = *a;
	struct dns_srv out[SRV_CAP];
	size_t half = a->n / 2, n = 0, max = (ctl & 1) ? SRV_CAP : 3;
	uint32_t seed = ctl;
	char why[400];

	pa.n = half;
	da.n = a->n - half;
	pa.st = pa.n ? sts[(ctl >> 1) & 3] : DNS_ST_NODATA;
	da.st = da.n ? sts[(ctl >> 3) & 3] : DNS_ST_NXDOMAIN;
	if (pa.st != DNS_ST_DATA)
		pa.n = 0;
	if (da.st != DNS_ST_DATA)
		da.n = 0;
	enum dns_srv_plan plan = dns_srv_merge("fabrikam.test", &pa, srv, &da, srv + half, out, max,
					       &n, rng, &seed, why, sizeof(why));
	CHECK(n <= max);
	CHECK(memchr(why, '\0', sizeof(why)) != NULL);
	CHECK((plan == DNS_PLAN_SRV) == (n > 0));
	CHECK(plan != DNS_PLAN_FAIL || why[0] != '\0');
	CHECK(pa.st != DNS_ST_FAIL || plan == DNS_PLAN_FAIL);
	for (size_t i = 0; i < n; i++) {
		CHECK(out[i].target[0] != '\0' && out[i].port != 0);
		if (i > 0) {
			CHECK(out[i - 1].prio <= out[i].prio);
			CHECK(out[i - 1].prio < out[i].prio || out[i - 1].direct_tls ||
			      !out[i].direct_tls);
		}
	}
}

static bool same_target(const struct dns_target *a, const struct dns_target *b)
{
	return a->port == b->port && a->addrlen == b->addrlen &&
	       memcmp(&a->addr, &b->addr, a->addrlen) == 0;
}

/* Two hosts with the same answers and port: the second adds nothing. */
static void check_targets(const struct dns_answer *a, uint16_t qtype, uint16_t port)
{
	static struct dns_host hosts[2];
	static struct dns_target out[DNS_MAX_TARGETS];
	uint32_t ttl;
	char why[512];

	memset(hosts, 0, sizeof(hosts));
	for (int h = 0; h < 2; h++) {
		strcpy(hosts[h].name, "xmpp.fabrikam.test");
		hosts[h].port = port;
		if (qtype == 28)
			hosts[h].a6 = *a;
		else
			hosts[h].a4 = *a;
	}
	size_t n = dns_build_targets(hosts, 2, out, DNS_MAX_TARGETS, &ttl);

	CHECK(n <= DNS_MAX_TARGETS);
	CHECK(n <= (a->st == DNS_ST_DATA ? a->n : 0));
	CHECK(n == 0 ? ttl == 0 : ttl == a->ttl);
	for (size_t i = 0; i < n; i++) {
		CHECK(out[i].port == port);
		CHECK(strcmp(out[i].host, "xmpp.fabrikam.test") == 0);
		CHECK(memchr(out[i].addr_text, '\0', sizeof(out[i].addr_text)) != NULL);
		for (size_t j = 0; j < i; j++)
			CHECK(!same_target(&out[i], &out[j]));
	}
	/* Every distinct address of the answer is there. */
	for (size_t i = 0; a->st == DNS_ST_DATA && i < a->n; i++) {
		bool found = false;

		for (size_t j = 0; j < n && !found; j++) {
			const uint8_t *p =
				qtype == 28 ? (const uint8_t *)&(
						      (const struct sockaddr_in6 *)&out[j].addr)
						      ->sin6_addr
					    : (const uint8_t *)&(
						      (const struct sockaddr_in *)&out[j].addr)
						      ->sin_addr;

			found = memcmp(p, a->addr[i], qtype == 28 ? 16 : 4) == 0;
		}
		CHECK(found);
	}
	dns_explain(why, sizeof(why), DNS_VIA_SRV, "fabrikam.test", "127.0.0.53", hosts, 2);
	CHECK(memchr(why, '\0', sizeof(why)) != NULL);
	dns_explain(why, 16, DNS_VIA_FALLBACK, "fabrikam.test", "127.0.0.53", hosts, 2);
	CHECK(strlen(why) < 16);
}

/* proxy_fqdn: accepted means a clean host and a usable port. */
static void check_hostport(const uint8_t *data, size_t size)
{
	char *s = malloc(size + 1);
	char host[DNS_NAME_MAX + 1];
	uint16_t port;
	int is_ip;

	if (s == NULL)
		return;
	memcpy(s, data, size);
	s[size] = '\0';
	if (dns_parse_hostport(s, 5269, host, sizeof(host), &port, &is_ip) == FG_OK) {
		unsigned char bin[16];

		CHECK(port != 0);
		if (is_ip)
			CHECK(inet_pton(AF_INET, host, bin) == 1 ||
			      inet_pton(AF_INET6, host, bin) == 1);
		else
			CHECK(dns_name_valid(host) && lower_name(host));
		/* The host alone parses to itself (IPv6 needs its brackets
		 * only when a port follows, and it has none here). */
		char again[DNS_NAME_MAX + 1];
		uint16_t p2;
		int ip2;

		CHECK(dns_parse_hostport(host, 5269, again, sizeof(again), &p2, &ip2) == FG_OK);
		CHECK(strcmp(again, host) == 0 && p2 == 5269 && ip2 == is_ip);
	}
	free(s);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const uint16_t qtypes[4] = {33, 1, 28, 0};

	if (size < 1)
		return 0;
	uint8_t ctl = data[0];
	uint16_t qtype = qtypes[ctl & 3];
	/* libunbound's rcode is mostly 0 (the packet's own then counts). */
	int rcode = (ctl >> 2) & 7;

	rcode = rcode > 5 ? 0 : rcode;
	data++;
	size--;
	if (qtype == 0) {
		check_hostport(data, size);
		return 0;
	}
	struct dns_answer a;
	struct dns_srv srv[SRV_CAP];

	dns_parse_answer(size ? data : NULL, size, rcode, qtype, &a, srv, SRV_CAP);
	check_answer(&a, srv, qtype);
	if (qtype == 33 && a.st == DNS_ST_DATA) {
		check_order(srv, a.n, (uint32_t)size * 2654435761u);
		check_merge(&a, srv, ctl);
	} else
		check_targets(&a, qtype, (uint16_t)(ctl << 3 | 1));
	return 0;
}

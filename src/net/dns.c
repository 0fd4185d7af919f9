/* Where to connect for a partner domain: proxy_fqdn, or RFC 6120 §3.2 SRV
 * with its fallback, resolved by libunbound on the caller's libevent loop.
 *
 * A query runs in at most two stages: the SRV lookup, then AAAA and A for
 * every host to try, all in parallel. libunbound's callbacks only record
 * answers; one libevent event per query advances the stages and delivers
 * the result, so the caller's callback never runs inside dns_resolve_server
 * (libunbound answers local data such as "localhost" synchronously). */
#include "dns.h"

#include "fg.h"
#include "log.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <event2/event.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unbound.h>
#include <unbound-event.h>

#define LOGCTX "dns"

enum { T_A = 1, T_AAAA = 28, T_SRV = 33, T_TLSA = 52, C_IN = 1 };

/* libunbound serves these RFC 6761-style names from built-in local zones
 * (NXDOMAIN for test. and home.arpa.), which hides a site's own records for
 * them; SPEC §6 wants them resolved through resolv_conf like any other name.
 * local. and internal. have no built-in zone in libunbound 1.17, but are
 * listed so that a later version adding one cannot silently break them.
 * localhost., invalid. and onion. keep their built-in answers on purpose. */
static const char *const transparent_zones[] = {"test.", "home.arpa.", "local.", "internal."};

struct dns {
	struct event_base *base;
	struct ub_ctx *ctx;
	/* DNSSEC-validating twin of ctx for DANE (dns_lookup_secure), made
	 * by dns_set_trust_anchor; NULL without a trust anchor. A separate
	 * context, so that a resolver path that cannot carry DNSSEC (a
	 * stripping forwarder, a test DNS without the root's keys) makes
	 * only DANE lookups fail, never the plain ones every stream needs. */
	struct ub_ctx *vctx;
	char *resolv_path, *fwd;   /* how ctx was told its servers, for vctx */
	char anchor[256];	   /* the trust anchor file, for sentences */
	char servers[160];	   /* the resolvers asked, for error sentences */
	struct dns_query *queries; /* pending ones, so dns_free can cancel them */
};

enum stage { STAGE_SRV, STAGE_ADDR, STAGE_DONE, STAGE_LOOKUP /* dns_lookup: one sub, no stages */ };

/* SRV answers of both kinds for one stage: 2 subs; then 2 per host. */

/* One libunbound lookup of a query. */
struct dns_sub {
	struct dns_query *q;
	const char *name;
	uint16_t type;
	int id;	     /* libunbound's async id, for ub_cancel */
	int pending; /* answer not yet recorded */
	struct dns_answer *ans;
	struct dns_srv *srv;
	size_t srv_cap;
};

struct dns_query {
	struct dns *d;
	struct dns_query *next, **pprev;
	struct dns_query **qp; /* the caller's handle, cleared before cb */
	dns_cb cb;
	dns_lookup_cb lookup_cb; /* instead of cb, for dns_lookup */
	dns_secure_cb secure_cb; /* instead of cb, for dns_lookup_secure (on vctx) */
	uint8_t *raw;		 /* the reply for secure_cb */
	size_t rawlen;
	void *ud;
	struct event *ev; /* advances stages and delivers, always from the loop */
	enum stage stage;
	enum dns_via via;
	int pending;
	char domain[DNS_NAME_MAX + 1];
	char srv_name[DNS_NAME_MAX + 1];
	struct dns_answer srv_ans;
	struct dns_srv srv[DNS_MAX_SRV_PARSE];
	/* _xmpps-server._tcp (XEP-0368), asked beside srv_name */
	char srvs_name[DNS_NAME_MAX + 1];
	struct dns_answer srvs_ans;
	struct dns_srv srvs[DNS_MAX_SRV_PARSE];
	bool used_direct; /* a target came from srvs */
	struct dns_host hosts[DNS_MAX_HOSTS];
	size_t nhosts;
	struct dns_sub subs[2 * DNS_MAX_HOSTS + 2];
	size_t nsubs;
	struct dns_target *targets;
	size_t ntargets;
	uint32_t ttl;
	char err[768];
};

/* ---- Pure parts ---- */

/* Spelled out rather than isalnum(), which follows the locale. */
static int label_char(unsigned char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
	       c == '-' || c == '_';
}

int dns_name_valid(const char *s)
{
	size_t len = strlen(s), label = 0;

	if (len == 0 || len > DNS_NAME_MAX)
		return 0;
	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)s[i];
		if (c == '.') {
			if (label == 0)
				return 0;
			label = 0;
			continue;
		}
		if (!label_char(c) || ++label > 63)
			return 0;
	}
	return label > 0;
}

static int parse_port(const char *s, uint16_t *port)
{
	unsigned long v = 0;
	size_t n = 0;

	for (; s[n] != '\0'; n++) {
		if (s[n] < '0' || s[n] > '9' || n >= 5)
			return FG_INVAL;
		v = v * 10 + (unsigned long)(s[n] - '0');
	}
	if (n == 0 || v == 0 || v > 65535)
		return FG_INVAL;
	*port = (uint16_t)v;
	return FG_OK;
}

static int copy_out(char *dst, size_t dstlen, const char *src, size_t n)
{
	if (n + 1 > dstlen)
		return FG_INVAL;
	memcpy(dst, src, n);
	dst[n] = '\0';
	return FG_OK;
}

int dns_parse_hostport(const char *s, uint16_t default_port, char *host, size_t hostlen,
		       uint16_t *port, int *is_ip)
{
	unsigned char bin[16];
	char tmp[DNS_NAME_MAX + 2];
	const char *colon;
	size_t hlen;

	*port = default_port;
	*is_ip = 0;
	if (s == NULL || *s == '\0')
		return FG_INVAL;
	if (s[0] == '[') {
		const char *close = strchr(s, ']');
		if (close == NULL || (size_t)(close - s - 1) >= sizeof(tmp))
			return FG_INVAL;
		memcpy(tmp, s + 1, (size_t)(close - s - 1));
		tmp[close - s - 1] = '\0';
		if (inet_pton(AF_INET6, tmp, bin) != 1)
			return FG_INVAL;
		if (close[1] != '\0' && (close[1] != ':' || parse_port(close + 2, port) != FG_OK))
			return FG_INVAL;
		*is_ip = 1;
		return copy_out(host, hostlen, tmp, strlen(tmp));
	}
	colon = strchr(s, ':');
	if (colon != NULL && strchr(colon + 1, ':') != NULL) {
		/* Two colons and no brackets: only a bare IPv6 address makes
		 * sense, and it cannot carry a port. */
		if (inet_pton(AF_INET6, s, bin) != 1)
			return FG_INVAL;
		*is_ip = 1;
		return copy_out(host, hostlen, s, strlen(s));
	}
	hlen = colon != NULL ? (size_t)(colon - s) : strlen(s);
	if (colon != NULL && parse_port(colon + 1, port) != FG_OK)
		return FG_INVAL;
	if (hlen == 0 || hlen >= sizeof(tmp))
		return FG_INVAL;
	memcpy(tmp, s, hlen);
	tmp[hlen] = '\0';
	if (inet_pton(AF_INET, tmp, bin) == 1) {
		*is_ip = 1;
		return copy_out(host, hostlen, tmp, hlen);
	}
	if (tmp[hlen - 1] == '.') {
		tmp[--hlen] = '\0';
		/* "192.0.2.7." is the address, as policy.c reads proxy_fqdn:
		 * no top-level label is all digits, so as a name it could
		 * only end in NXDOMAIN. */
		if (hlen > 0 && inet_pton(AF_INET, tmp, bin) == 1) {
			*is_ip = 1;
			return copy_out(host, hostlen, tmp, hlen);
		}
	}
	for (size_t i = 0; i < hlen; i++)
		tmp[i] = (char)tolower((unsigned char)tmp[i]);
	if (!dns_name_valid(tmp))
		return FG_INVAL;
	return copy_out(host, hostlen, tmp, hlen);
}

int dns_srv_no_service(const struct dns_srv *recs, size_t n)
{
	return n == 1 && recs[0].target[0] == '\0';
}

/* a goes strictly before b: lower priority, then Direct TLS first. */
static bool srv_before(const struct dns_srv *a, const struct dns_srv *b)
{
	if (a->prio != b->prio)
		return a->prio < b->prio;
	return a->direct_tls && !b->direct_tls;
}

void dns_srv_order(struct dns_srv *recs, size_t n, dns_rng_fn rng, void *rng_ud)
{
	/* Stable insertion sort by priority: n is small (capped at parse)
	 * and stability keeps the answer's order as the tie-break. */
	for (size_t i = 1; i < n; i++) {
		struct dns_srv tmp = recs[i];
		size_t j = i;
		for (; j > 0 && srv_before(&tmp, &recs[j - 1]); j--)
			recs[j] = recs[j - 1];
		recs[j] = tmp;
	}
	for (size_t lo = 0; lo < n;) {
		size_t hi = lo;
		while (hi < n && recs[hi].prio == recs[lo].prio &&
		       recs[hi].direct_tls == recs[lo].direct_tls)
			hi++;
		for (size_t k = lo; k + 1 < hi; k++) {
			uint32_t sum = 0, r, run = 0;
			size_t pick = k, z = k;
			/* RFC 2782: weight-0 records go first in the running sum,
			 * so they win only when the random number is 0. */
			for (size_t i = k; i < hi; i++) {
				sum += recs[i].weight;
				if (recs[i].weight == 0) {
					struct dns_srv tmp = recs[i];
					memmove(&recs[z + 1], &recs[z], (i - z) * sizeof(*recs));
					recs[z++] = tmp;
				}
			}
			r = rng(rng_ud, sum + 1);
			for (size_t i = k; i < hi; i++) {
				run += recs[i].weight;
				if (run >= r) {
					pick = i;
					break;
				}
			}
			if (pick != k) {
				struct dns_srv tmp = recs[pick];
				memmove(&recs[k + 1], &recs[k], (pick - k) * sizeof(*recs));
				recs[k] = tmp;
			}
		}
		lo = hi;
	}
}

/* Copies the usable records of one answer (not ".", not port 0). */
static size_t srv_take(const struct dns_answer *a, const struct dns_srv *recs, bool direct,
		       struct dns_srv *out, size_t n, size_t max)
{
	if (a->st != DNS_ST_DATA || dns_srv_no_service(recs, a->n))
		return n;
	for (size_t i = 0; i < a->n && n < max; i++) {
		if (recs[i].target[0] == '\0' || recs[i].port == 0)
			continue;
		out[n] = recs[i];
		out[n].direct_tls = direct;
		n++;
	}
	return n;
}

enum dns_srv_plan dns_srv_merge(const char *domain, const struct dns_answer *starttls,
				const struct dns_srv *s_recs, const struct dns_answer *direct,
				const struct dns_srv *d_recs, struct dns_srv *out, size_t max,
				size_t *nout, dns_rng_fn rng, void *rng_ud, char *why,
				size_t whylen)
{
	why[0] = '\0';
	*nout = 0;
	if (starttls->st == DNS_ST_FAIL) {
		/* No fallback on failure: an attacker or a broken server
		 * must not be able to steer us away from the SRV targets. */
		snprintf(why, whylen, "DNS lookup of _xmpp-server._tcp.%s SRV failed: %s", domain,
			 starttls->why);
		return DNS_PLAN_FAIL;
	}
	bool s_data = starttls->st == DNS_ST_DATA, d_data = direct->st == DNS_ST_DATA;
	bool s_none = s_data && dns_srv_no_service(s_recs, starttls->n);
	bool d_none = d_data && dns_srv_no_service(d_recs, direct->n);
	size_t n = srv_take(direct, d_recs, true, out, 0, max);
	n = srv_take(starttls, s_recs, false, out, n, max);
	if (n > 0) {
		dns_srv_order(out, n, rng, rng_ud);
		*nout = n;
		return DNS_PLAN_SRV;
	}
	if (s_none) {
		snprintf(why, whylen,
			 "domain %s says it offers no XMPP server service (SRV target .)", domain);
		return DNS_PLAN_FAIL;
	}
	if ((s_data && !s_none) || (d_data && !d_none)) {
		snprintf(why, whylen, "domain %s publishes %s SRV records but none names a host",
			 domain, s_data ? "_xmpp-server._tcp" : "_xmpps-server._tcp");
		return DNS_PLAN_FAIL;
	}
	if (d_none) {
		/* XEP-0368 §5: "." says no Direct TLS, and that SRV is in use:
		 * no A/AAAA fallback. */
		snprintf(why, whylen,
			 "domain %s says it offers no Direct TLS (_xmpps-server._tcp SRV target .) "
			 "and publishes no _xmpp-server._tcp SRV records; with SRV in use there is "
			 "no fallback to its own address (XEP-0368)",
			 domain);
		return DNS_PLAN_FAIL;
	}
	return DNS_PLAN_FALLBACK;
}

uint16_t dns_get16(const uint8_t *p)
{
	return (uint16_t)(p[0] << 8 | p[1]);
}

int dns_skip_name(const uint8_t *p, size_t len, size_t *off)
{
	size_t o = *off;

	while (o < len) {
		uint8_t l = p[o];
		if ((l & 0xc0) == 0xc0) {
			if (o + 2 > len)
				return -1;
			*off = o + 2;
			return 0;
		}
		if (l & 0xc0)
			return -1;
		o += 1 + (size_t)l;
		if (l == 0) {
			*off = o;
			return 0;
		}
	}
	return -1;
}

/* Reads the name at off (following compression) into out, lower case, no
 * final dot, "" for the root. Refuses labels a host name cannot have, so
 * that nothing odd reaches a log line or a later lookup. */
static int read_name(const uint8_t *p, size_t len, size_t off, char *out, size_t outlen)
{
	size_t n = 0;
	int jumps = 0;

	for (;;) {
		if (off >= len)
			return -1;
		uint8_t l = p[off];
		if ((l & 0xc0) == 0xc0) {
			if (off + 2 > len || ++jumps > 32)
				return -1;
			off = (size_t)(dns_get16(p + off) & 0x3fff);
			continue;
		}
		if (l & 0xc0)
			return -1;
		if (l == 0)
			break;
		if (off + 1 + l > len || n + l + 2 > outlen)
			return -1;
		if (n > 0)
			out[n++] = '.';
		for (size_t i = 0; i < l; i++) {
			unsigned char c = p[off + 1 + i];
			if (!label_char(c))
				return -1;
			out[n++] = (char)tolower(c);
		}
		off += 1 + (size_t)l;
	}
	out[n] = '\0';
	return n <= DNS_NAME_MAX ? 0 : -1;
}

static const char *rcode_name(int rcode)
{
	switch (rcode) {
	case 1: return "FORMERR";
	case 2: return "SERVFAIL";
	case 3: return "NXDOMAIN";
	case 4: return "NOTIMP";
	case 5: return "REFUSED";
	default: return NULL;
	}
}

static void answer_fail(struct dns_answer *ans, const char *why)
{
	ans->st = DNS_ST_FAIL;
	ans->n = 0;
	snprintf(ans->why, sizeof(ans->why), "%s", why);
}

void dns_parse_answer(const uint8_t *pkt, size_t len, int rcode, uint16_t qtype,
		      struct dns_answer *ans, struct dns_srv *srv, size_t srv_cap)
{
	size_t off = 12;
	unsigned qd, an;

	memset(ans, 0, sizeof(*ans));
	ans->ttl = UINT32_MAX;
	if (rcode == 0 && (pkt == NULL || len < 12)) {
		answer_fail(ans, "no usable reply");
		return;
	}
	if (rcode == 0)
		rcode = pkt[3] & 0x0f;
	if (rcode == 3) {
		ans->st = DNS_ST_NXDOMAIN;
		return;
	}
	if (rcode != 0) {
		const char *name = rcode_name(rcode);
		char why[32];
		snprintf(why, sizeof(why), "RCODE %d", rcode);
		answer_fail(ans, name != NULL ? name : why);
		return;
	}
	qd = dns_get16(pkt + 4);
	an = dns_get16(pkt + 6);
	for (unsigned i = 0; i < qd; i++) {
		if (dns_skip_name(pkt, len, &off) != 0 || off + 4 > len) {
			answer_fail(ans, "malformed reply");
			return;
		}
		off += 4;
	}
	for (unsigned i = 0; i < an; i++) {
		uint16_t type, cls, rdlen;
		uint32_t ttl;
		if (dns_skip_name(pkt, len, &off) != 0 || off + 10 > len) {
			answer_fail(ans, "malformed reply");
			return;
		}
		type = dns_get16(pkt + off);
		cls = dns_get16(pkt + off + 2);
		ttl = (uint32_t)dns_get16(pkt + off + 4) << 16 | dns_get16(pkt + off + 6);
		rdlen = dns_get16(pkt + off + 8);
		off += 10;
		if (off + rdlen > len) {
			answer_fail(ans, "malformed reply");
			return;
		}
		/* RFC 2181 §8: a TTL with the top bit set means zero. */
		if (ttl & 0x80000000u)
			ttl = 0;
		if (cls == C_IN && type == qtype) {
			int ok = 0;
			if (type == T_SRV && rdlen >= 7) {
				if (ans->n < srv_cap) {
					struct dns_srv *r = &srv[ans->n];
					r->prio = dns_get16(pkt + off);
					r->weight = dns_get16(pkt + off + 2);
					r->port = dns_get16(pkt + off + 4);
					r->direct_tls = false; /* the caller's to say */
					ok = read_name(pkt, len, off + 6, r->target,
						       sizeof(r->target)) == 0;
				} else {
					ans->dropped++;
				}
			} else if (type == T_TLSA) {
				/* Only counted: dane.c reads the records from
				 * the reply itself (dns_lookup_secure). */
				ok = 1;
			} else if ((type == T_A && rdlen == 4) || (type == T_AAAA && rdlen == 16)) {
				if (ans->n < DNS_MAX_ADDRS) {
					memset(ans->addr[ans->n], 0, 16);
					memcpy(ans->addr[ans->n], pkt + off, rdlen);
					ok = 1;
				} else {
					ans->dropped++;
				}
			}
			if (ok) {
				ans->n++;
				if (ttl < ans->ttl)
					ans->ttl = ttl;
			}
		}
		off += rdlen;
	}
	ans->st = ans->n > 0 ? DNS_ST_DATA : DNS_ST_NODATA;
	if (ans->n == 0)
		ans->ttl = 0;
}

static void fill_target(struct dns_target *t, const char *host, uint16_t port, int family,
			const uint8_t *addr)
{
	memset(t, 0, sizeof(*t));
	snprintf(t->host, sizeof(t->host), "%s", host);
	t->port = port;
	if (family == AF_INET6) {
		struct sockaddr_in6 *sa = (struct sockaddr_in6 *)&t->addr;
		sa->sin6_family = AF_INET6;
		sa->sin6_port = htons(port);
		memcpy(&sa->sin6_addr, addr, 16);
		t->addrlen = sizeof(*sa);
	} else {
		struct sockaddr_in *sa = (struct sockaddr_in *)&t->addr;
		sa->sin_family = AF_INET;
		sa->sin_port = htons(port);
		memcpy(&sa->sin_addr, addr, 4);
		t->addrlen = sizeof(*sa);
	}
	inet_ntop(family, addr, t->addr_text, sizeof(t->addr_text));
}

static int target_seen(const struct dns_target *out, size_t n, const struct dns_target *t)
{
	for (size_t i = 0; i < n; i++)
		if (out[i].addrlen == t->addrlen && memcmp(&out[i].addr, &t->addr, t->addrlen) == 0)
			return 1;
	return 0;
}

size_t dns_build_targets(const struct dns_host *hosts, size_t nhosts, struct dns_target *out,
			 size_t max, uint32_t *ttl)
{
	size_t n = 0;

	*ttl = UINT32_MAX;
	/* Within a host the families alternate, IPv6 first (RFC 8305 §4,
	 * RFC 6724's default preference), so that Happy Eyeballs reaches an
	 * address of the other family with the second attempt; the answer's
	 * order is kept within a family, since a server rotating its records
	 * is spreading load on purpose. */
	for (size_t h = 0; h < nhosts; h++) {
		const struct dns_answer *fam[2] = {&hosts[h].a6, &hosts[h].a4};
		size_t left[2], k[2] = {0, 0};
		for (int f = 0; f < 2; f++)
			left[f] = fam[f]->st == DNS_ST_DATA ? fam[f]->n : 0;
		for (int f = 0; (k[0] < left[0] || k[1] < left[1]) && n < max; f ^= 1) {
			if (k[f] >= left[f])
				continue;
			fill_target(&out[n], hosts[h].name, hosts[h].port,
				    f == 0 ? AF_INET6 : AF_INET, fam[f]->addr[k[f]++]);
			out[n].direct_tls = hosts[h].direct_tls;
			if (target_seen(out, n, &out[n]))
				continue;
			n++;
			if (fam[f]->ttl < *ttl)
				*ttl = fam[f]->ttl;
		}
	}
	if (n == 0)
		*ttl = 0;
	return n;
}

/* Why one host gave no address, in a few words. A failure outranks
 * NODATA: the admin must learn that a server failed, not that records
 * are missing. */
static const char *host_problem(const struct dns_host *h)
{
	if (h->a6.st == DNS_ST_NXDOMAIN || h->a4.st == DNS_ST_NXDOMAIN)
		return "NXDOMAIN";
	if (h->a4.st == DNS_ST_FAIL)
		return h->a4.why;
	if (h->a6.st == DNS_ST_FAIL)
		return h->a6.why;
	return "no A or AAAA records";
}

static int host_failed(const struct dns_host *h)
{
	return h->a6.st == DNS_ST_FAIL || h->a4.st == DNS_ST_FAIL;
}

void dns_explain(char *buf, size_t len, enum dns_via via, const char *domain, const char *servers,
		 const struct dns_host *hosts, size_t nhosts)
{
	const char *problem = nhosts > 0 ? host_problem(&hosts[0]) : "nothing to look up";
	int nx = nhosts > 0 && strcmp(problem, "NXDOMAIN") == 0;
	int failed = nhosts > 0 && host_failed(&hosts[0]) && !nx;

	buf[0] = '\0';
	switch (via) {
	case DNS_VIA_PROXY:
		if (failed)
			snprintf(buf, len,
				 "DNS lookup of proxy_fqdn host %s for %s failed: %s from %s",
				 hosts[0].name, domain, problem, servers);
		else
			snprintf(buf, len, "proxy_fqdn host %s for %s has no address: %s from %s",
				 nhosts > 0 ? hosts[0].name : "?", domain, problem, servers);
		break;
	case DNS_VIA_FALLBACK:
	case DNS_VIA_LITERAL:
		if (failed)
			snprintf(buf, len, "DNS lookup of %s failed: %s from %s", domain, problem,
				 servers);
		else if (nx)
			snprintf(buf, len, "no DNS records for %s: NXDOMAIN from %s", domain,
				 servers);
		else
			snprintf(buf, len,
				 "no DNS records for %s: no _xmpp-server._tcp SRV and no A or "
				 "AAAA records, answer from %s",
				 domain, servers);
		break;
	case DNS_VIA_SRV:
		snprintf(buf, len, "no SRV target of %s has an address:", domain);
		for (size_t i = 0; i < nhosts; i++)
			fg_appendf(buf, len, "%s %s: %s", i > 0 ? ";" : "", hosts[i].name,
				   host_problem(&hosts[i]));
		fg_appendf(buf, len, " (from %s)", servers);
		break;
	}
}

/* ---- The resolver ---- */

static uint32_t rng_default(void *ud, uint32_t bound)
{
	(void)ud;
	return arc4random_uniform(bound);
}

static int set_zones(struct ub_ctx *ctx, char *err, size_t errlen)
{
	for (size_t i = 0; i < FG_ARRAY_LEN(transparent_zones); i++) {
		char val[64];
		int rc;
		snprintf(val, sizeof(val), "%s transparent", transparent_zones[i]);
		rc = ub_ctx_set_option(ctx, "local-zone:", val);
		if (rc != 0) {
			snprintf(err, errlen, "cannot set libunbound local-zone %s: %s", val,
				 ub_strerror(rc));
			return FG_ERR;
		}
	}
	return FG_OK;
}

static struct dns *dns_create(struct event_base *base, char *err, size_t errlen)
{
	struct dns *d = calloc(1, sizeof(*d));

	if (d == NULL) {
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	d->base = base;
	d->ctx = ub_ctx_create_event(base);
	if (d->ctx == NULL) {
		snprintf(err, errlen, "cannot create the libunbound resolver: %s", strerror(errno));
		free(d);
		return NULL;
	}
	if (set_zones(d->ctx, err, errlen) != FG_OK) {
		ub_ctx_delete(d->ctx);
		free(d);
		return NULL;
	}
	return d;
}

/* libunbound does not say which server answered, so sentences name the
 * configured ones, read the way ub_ctx_resolvconf reads them. */
static void servers_from(const char *path, char *out, size_t outlen)
{
	FILE *f = fopen(path, "r");
	char line[512];
	int n = 0;

	out[0] = '\0';
	if (f == NULL)
		return;
	while (fgets(line, sizeof(line), f) != NULL) {
		char *p = line, *end;
		while (*p == ' ' || *p == '\t')
			p++;
		if (strncmp(p, "nameserver", 10) != 0 || (p[10] != ' ' && p[10] != '\t'))
			continue;
		p += 10;
		while (*p == ' ' || *p == '\t')
			p++;
		end = p;
		while (*end != '\0' && !isspace((unsigned char)*end))
			end++;
		*end = '\0';
		if (*p == '\0')
			continue;
		fg_appendf(out, outlen, "%s%s", n++ > 0 ? ", " : "", p);
	}
	fclose(f);
}

struct dns *dns_new(struct event_base *base, const char *resolv_conf, char *err, size_t errlen)
{
	const char *path = resolv_conf != NULL && *resolv_conf ? resolv_conf : "/etc/resolv.conf";
	struct dns *d = dns_create(base, err, errlen);
	int rc;

	if (d == NULL)
		return NULL;
	errno = 0;
	rc = ub_ctx_resolvconf(d->ctx, path);
	if (rc != 0) {
		int e = errno;
		snprintf(err, errlen, "cannot read nameservers from %s: %s%s%s", path,
			 ub_strerror(rc), e != 0 ? ": " : "", e != 0 ? strerror(e) : "");
		dns_free(&d);
		return NULL;
	}
	d->resolv_path = strdup(path);
	if (d->resolv_path == NULL) {
		snprintf(err, errlen, "out of memory");
		dns_free(&d);
		return NULL;
	}
	servers_from(path, d->servers, sizeof(d->servers));
	if (d->servers[0] == '\0')
		/* What libunbound falls back to when the file names none. */
		snprintf(d->servers, sizeof(d->servers), "127.0.0.1 (%s names no nameserver)",
			 path);
	log_debug(LOGCTX, "resolver ready, nameservers %s (from %s)", d->servers, path);
	return d;
}

struct dns *dns_new_fwd(struct event_base *base, const char *fwd, char *err, size_t errlen)
{
	struct dns *d = dns_create(base, err, errlen);
	int rc;

	if (d == NULL)
		return NULL;
	rc = fwd != NULL ? ub_ctx_set_fwd(d->ctx, fwd) : UB_SYNTAX;
	if (rc != 0) {
		snprintf(err, errlen, "bad DNS forwarder \"%s\": %s", fwd ? fwd : "",
			 ub_strerror(rc));
		dns_free(&d);
		return NULL;
	}
	d->fwd = strdup(fwd);
	if (d->fwd == NULL) {
		snprintf(err, errlen, "out of memory");
		dns_free(&d);
		return NULL;
	}
	snprintf(d->servers, sizeof(d->servers), "%s", fwd);
	log_debug(LOGCTX, "resolver ready, forwarding to %s", d->servers);
	return d;
}

static struct ub_ctx *query_ctx(const struct dns_query *q)
{
	return q->secure_cb != NULL ? q->d->vctx : q->d->ctx;
}

static void query_destroy(struct dns_query *q)
{
	for (size_t i = 0; i < q->nsubs; i++)
		if (q->subs[i].pending && q->subs[i].id != 0)
			ub_cancel(query_ctx(q), q->subs[i].id);
	if (q->pprev != NULL) {
		*q->pprev = q->next;
		if (q->next != NULL)
			q->next->pprev = q->pprev;
	}
	if (q->ev != NULL)
		event_free(q->ev);
	free(q->targets);
	free(q->raw);
	free(q);
}

void dns_free(struct dns **dp)
{
	struct dns *d;

	if (dp == NULL || *dp == NULL)
		return;
	d = *dp;
	/* Before ub_ctx_delete: tearing down libunbound's mesh calls the
	 * callbacks of queries still in flight, which must find nothing. */
	while (d->queries != NULL) {
		struct dns_query *q = d->queries;
		if (q->qp != NULL)
			*q->qp = NULL;
		query_destroy(q);
	}
	ub_ctx_delete(d->ctx);
	if (d->vctx != NULL)
		ub_ctx_delete(d->vctx);
	free(d->resolv_path);
	free(d->fwd);
	free(d);
	*dp = NULL;
}

void dns_cancel(struct dns_query **qp)
{
	if (qp == NULL || *qp == NULL)
		return;
	struct dns_query *q = *qp;
	*qp = NULL;
	log_debug(LOGCTX, "lookup for %s cancelled", q->domain);
	query_destroy(q);
}

static const char *type_name(uint16_t type)
{
	return type == T_SRV ? "SRV" : type == T_AAAA ? "AAAA" : type == T_TLSA ? "TLSA" : "A";
}

static void describe(const struct dns_sub *s, char *buf, size_t len)
{
	const struct dns_answer *a = s->ans;

	buf[0] = '\0';
	switch (a->st) {
	case DNS_ST_NXDOMAIN: snprintf(buf, len, "NXDOMAIN"); return;
	case DNS_ST_NODATA: snprintf(buf, len, "no records"); return;
	case DNS_ST_FAIL: snprintf(buf, len, "%s", a->why); return;
	case DNS_ST_PENDING: snprintf(buf, len, "pending"); return;
	case DNS_ST_DATA: break;
	}
	for (size_t i = 0; i < a->n; i++) {
		char text[INET6_ADDRSTRLEN];
		if (s->type == T_SRV)
			fg_appendf(buf, len, "%s%u %u %u %s", i ? ", " : "", s->srv[i].prio,
				   s->srv[i].weight, s->srv[i].port,
				   s->srv[i].target[0] ? s->srv[i].target : ".");
		else if (inet_ntop(s->type == T_A ? AF_INET : AF_INET6, a->addr[i], text,
				   sizeof(text)) != NULL)
			fg_appendf(buf, len, "%s%s", i ? ", " : "", text);
	}
	fg_appendf(buf, len, " (ttl %u%s)", a->ttl, a->dropped ? ", more records ignored" : "");
}

static void on_answer(void *arg, int rcode, void *pkt, int len, int sec, char *why_bogus,
		      int ratelimited)
{
	struct dns_sub *s = arg;
	struct dns_query *q = s->q;

	(void)ratelimited;
	dns_parse_answer(pkt, len > 0 ? (size_t)len : 0, rcode, s->type, s->ans, s->srv,
			 s->srv_cap);
	if (sec == 1) {
		char why[sizeof(s->ans->why)];
		/* libunbound's "validation failure <NAME TYPE CLASS>: reason":
		 * the name is the caller's already; the reason is what fits. */
		const char *reason = why_bogus ? why_bogus : "?", *gt = strstr(reason, ">: ");
		snprintf(why, sizeof(why), "DNSSEC bogus: %s", gt ? gt + 3 : reason);
		answer_fail(s->ans, why);
	}
	s->ans->dnssec = sec;
	if (q->secure_cb != NULL && pkt != NULL && len > 0 && q->raw == NULL) {
		q->raw = malloc((size_t)len);
		if (q->raw != NULL) {
			memcpy(q->raw, pkt, (size_t)len);
			q->rawlen = (size_t)len;
		}
	}
	if (log_enabled(LOG_DEBUG)) {
		char text[1024];
		describe(s, text, sizeof(text));
		log_debug(LOGCTX, "%s %s: %s", s->name, type_name(s->type), text);
	}
	s->pending = 0;
	if (--q->pending == 0)
		event_active(q->ev, EV_TIMEOUT, 0);
}

static void sub_start(struct dns_query *q, const char *name, uint16_t type, struct dns_answer *ans,
		      struct dns_srv *srv, size_t srv_cap)
{
	struct dns_sub *s = &q->subs[q->nsubs++];
	int rc;

	memset(s, 0, sizeof(*s));
	memset(ans, 0, sizeof(*ans));
	s->q = q;
	s->name = name;
	s->type = type;
	s->ans = ans;
	s->srv = srv;
	s->srv_cap = srv_cap;
	s->pending = 1;
	q->pending++;
	/* May call on_answer before returning (libunbound's local data). */
	rc = ub_resolve_event(query_ctx(q), name, type, C_IN, s, on_answer, &s->id);
	if (rc != 0 && s->pending) {
		char why[sizeof(ans->why)];
		snprintf(why, sizeof(why), "resolver error: %s", ub_strerror(rc));
		answer_fail(ans, why);
		log_debug(LOGCTX, "%s %s: %s", name, type_name(type), why);
		s->pending = 0;
		q->pending--;
	}
}

static void fail(struct dns_query *q, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void fail(struct dns_query *q, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(q->err, sizeof(q->err), fmt, ap);
	va_end(ap);
	q->stage = STAGE_DONE;
}

static void start_addr(struct dns_query *q)
{
	q->stage = STAGE_ADDR;
	q->nsubs = 0;
	for (size_t i = 0; i < q->nhosts; i++) {
		struct dns_host *h = &q->hosts[i];
		if (h->a6.st == DNS_ST_DATA || h->a4.st == DNS_ST_DATA)
			continue; /* an IP literal, already "answered" */
		sub_start(q, h->name, T_AAAA, &h->a6, NULL, 0);
		sub_start(q, h->name, T_A, &h->a4, NULL, 0);
	}
}

static void add_host(struct dns_query *q, const char *name, uint16_t port)
{
	struct dns_host *h = &q->hosts[q->nhosts++];

	memset(h, 0, sizeof(*h));
	snprintf(h->name, sizeof(h->name), "%s", name);
	h->port = port;
}

/* An IP literal becomes a host whose lookups already "answered". */
static void add_literal(struct dns_query *q, const char *text, uint16_t port)
{
	struct dns_host *h = &q->hosts[q->nhosts];
	uint8_t bin[16] = {0};

	add_host(q, text, port);
	if (inet_pton(AF_INET6, text, bin) == 1) {
		h->a6.st = DNS_ST_DATA;
		h->a6.n = 1;
		memcpy(h->a6.addr[0], bin, 16);
	} else if (inet_pton(AF_INET, text, bin) == 1) {
		h->a4.st = DNS_ST_DATA;
		h->a4.n = 1;
		memcpy(h->a4.addr[0], bin, 4);
	}
}

static void srv_done(struct dns_query *q)
{
	struct dns_srv merged[2 * DNS_MAX_SRV_PARSE];
	size_t n = 0, skipped = 0;
	char why[sizeof(q->err) - 64];

	if (q->srvs_ans.st == DNS_ST_FAIL)
		log_debug(LOGCTX, "%s SRV failed (%s): Direct TLS targets left out", q->srvs_name,
			  q->srvs_ans.why);
	switch (dns_srv_merge(q->domain, &q->srv_ans, q->srv, &q->srvs_ans, q->srvs, merged,
			      FG_ARRAY_LEN(merged), &n, rng_default, NULL, why, sizeof(why))) {
	case DNS_PLAN_FAIL:
		/* A server's failure names the servers asked; a domain's own
		 * records speak for themselves. */
		if (q->srv_ans.st == DNS_ST_FAIL)
			fail(q, "%s from %s", why, q->d->servers);
		else
			fail(q, "%s", why);
		return;
	case DNS_PLAN_FALLBACK:
		/* RFC 6120 §3.2.2: no SRV records, so the domain itself. */
		log_debug(LOGCTX, "no SRV records for %s, falling back to %s:%d", q->domain,
			  q->domain, DNS_XMPP_SERVER_PORT);
		q->via = DNS_VIA_FALLBACK;
		add_host(q, q->domain, DNS_XMPP_SERVER_PORT);
		start_addr(q);
		return;
	case DNS_PLAN_SRV: break;
	}
	q->via = DNS_VIA_SRV;
	for (size_t i = 0; i < n; i++) {
		if (q->nhosts == DNS_MAX_HOSTS) {
			skipped++;
			continue;
		}
		add_host(q, merged[i].target, merged[i].port);
		q->hosts[q->nhosts - 1].direct_tls = merged[i].direct_tls;
		q->used_direct |= merged[i].direct_tls;
	}
	if (skipped > 0)
		log_debug(LOGCTX, "%s: %zu SRV records skipped (over %d)", q->srv_name, skipped,
			  DNS_MAX_HOSTS);
	start_addr(q);
}

static void addr_done(struct dns_query *q)
{
	uint32_t ttl;

	q->targets = calloc(DNS_MAX_TARGETS, sizeof(*q->targets));
	if (q->targets == NULL) {
		fail(q, "out of memory resolving %s", q->domain);
		return;
	}
	q->ntargets = dns_build_targets(q->hosts, q->nhosts, q->targets, DNS_MAX_TARGETS, &ttl);
	if (q->ntargets == 0) {
		dns_explain(q->err, sizeof(q->err), q->via, q->domain, q->d->servers, q->hosts,
			    q->nhosts);
		q->stage = STAGE_DONE;
		return;
	}
	if (q->via == DNS_VIA_SRV && q->srv_ans.st == DNS_ST_DATA && q->srv_ans.ttl < ttl)
		ttl = q->srv_ans.ttl;
	if (q->via == DNS_VIA_SRV && q->used_direct && q->srvs_ans.ttl < ttl)
		ttl = q->srvs_ans.ttl;
	q->ttl = ttl;
	q->stage = STAGE_DONE;
}

static const char *via_name(enum dns_via via)
{
	switch (via) {
	case DNS_VIA_PROXY: return "proxy_fqdn";
	case DNS_VIA_SRV: return "SRV";
	case DNS_VIA_FALLBACK: return "fallback";
	case DNS_VIA_LITERAL: return "IP literal";
	}
	return "?";
}

static void deliver(struct dns_query *q)
{
	struct dns_result res = {q->via, q->ntargets, q->targets, q->ttl, q->nhosts > 0, 0};

	/* Validated only when every answer that gave a target was. */
	if (q->via == DNS_VIA_SRV && q->srv_ans.st == DNS_ST_DATA && q->srv_ans.dnssec != 2)
		res.dnssec = false;
	if (q->via == DNS_VIA_SRV && q->used_direct && q->srvs_ans.dnssec != 2)
		res.dnssec = false;
	for (size_t i = 0; i < q->ntargets; i++)
		res.n_direct += q->targets[i].direct_tls;
	for (size_t i = 0; i < q->nhosts; i++) {
		const struct dns_answer *a[] = {&q->hosts[i].a6, &q->hosts[i].a4};
		for (size_t j = 0; j < 2; j++)
			if (a[j]->st == DNS_ST_DATA && a[j]->dnssec != 2)
				res.dnssec = false;
	}

	/* Unlinked first: cb may start new lookups or even free d. */
	*q->pprev = q->next;
	if (q->next != NULL)
		q->next->pprev = q->pprev;
	q->pprev = NULL;
	if (q->qp != NULL)
		*q->qp = NULL;
	if (q->err[0] != '\0') {
		log_debug(LOGCTX, "%s: %s", q->domain, q->err);
		q->cb(q->ud, NULL, q->err);
	} else {
		if (log_enabled(LOG_DEBUG)) {
			char text[1024] = "";
			for (size_t i = 0; i < q->ntargets; i++) {
				const struct dns_target *t = &q->targets[i];
				fg_appendf(text, sizeof(text), "%s%s %s%s%s:%u%s", i ? ", " : "",
					   t->host, t->addr.ss_family == AF_INET6 ? "[" : "",
					   t->addr_text, t->addr.ss_family == AF_INET6 ? "]" : "",
					   t->port, t->direct_tls ? " (Direct TLS)" : "");
			}
			log_debug(LOGCTX, "%s via %s: %s (ttl %u)", q->domain, via_name(q->via),
				  text, q->ttl);
		}
		q->cb(q->ud, &res, NULL);
	}
	q->nsubs = 0; /* nothing pending, nothing to cancel */
	query_destroy(q);
}

static void deliver_lookup(struct dns_query *q)
{
	*q->pprev = q->next;
	if (q->next != NULL)
		q->next->pprev = q->pprev;
	q->pprev = NULL;
	if (q->qp != NULL)
		*q->qp = NULL;
	if (q->secure_cb != NULL)
		q->secure_cb(q->ud, &q->srv_ans, q->srv, q->raw, q->rawlen);
	else
		q->lookup_cb(q->ud, &q->srv_ans, q->srv);
	q->nsubs = 0;
	query_destroy(q);
}

static void on_step(evutil_socket_t fd, short what, void *arg)
{
	struct dns_query *q = arg;

	(void)fd;
	(void)what;
	if (q->pending > 0)
		return;
	if (q->stage == STAGE_LOOKUP) {
		deliver_lookup(q);
		return;
	}
	if (q->stage == STAGE_SRV)
		srv_done(q);
	else if (q->stage == STAGE_ADDR)
		addr_done(q);
	if (q->stage == STAGE_DONE)
		deliver(q);
	else if (q->pending == 0)
		/* Every lookup of the new stage ended inside the call. */
		event_active(q->ev, EV_TIMEOUT, 0);
}

static void start_proxy(struct dns_query *q, const char *proxy)
{
	char host[DNS_NAME_MAX + 1];
	uint16_t port;
	int is_ip;

	q->via = DNS_VIA_PROXY;
	q->stage = STAGE_ADDR;
	if (dns_parse_hostport(proxy, DNS_XMPP_SERVER_PORT, host, sizeof(host), &port, &is_ip) !=
	    FG_OK) {
		fail(q,
		     "proxy_fqdn \"%s\" for %s is not host, host:port, an IP address or "
		     "[IPv6]:port",
		     proxy, q->domain);
		return;
	}
	log_debug(LOGCTX, "%s: using proxy_fqdn %s port %u, no SRV lookup", q->domain, host, port);
	if (is_ip)
		add_literal(q, host, port);
	else
		add_host(q, host, port);
	start_addr(q);
}

static int domain_literal(const char *domain, char *addr, size_t addrlen)
{
	uint8_t bin[16];
	uint16_t port;
	int is_ip;

	if (domain[0] == '[') {
		/* A JID domain may be "[v6]" but never carries a port. */
		const char *close = strchr(domain, ']');
		return close != NULL && close[1] == '\0' &&
		       dns_parse_hostport(domain, 0, addr, addrlen, &port, &is_ip) == FG_OK;
	}
	if (inet_pton(AF_INET, domain, bin) == 1)
		return copy_out(addr, addrlen, domain, strlen(domain)) == FG_OK;
	return 0;
}

/* A query on d's list, its step event made, *qp (may be NULL) pointing at
 * it; the name lives in the query, since libunbound and describe() read it
 * after the caller's copy is gone. NULL when out of memory. */
static struct dns_query *query_new(struct dns *d, const char *name, void *ud, struct dns_query **qp)
{
	struct dns_query *q = calloc(1, sizeof(*q));

	if (q == NULL)
		return NULL;
	q->ev = event_new(d->base, -1, 0, on_step, q);
	if (q->ev == NULL) {
		free(q);
		return NULL;
	}
	q->d = d;
	q->ud = ud;
	q->qp = qp;
	q->next = d->queries;
	if (q->next != NULL)
		q->next->pprev = &q->next;
	q->pprev = &d->queries;
	d->queries = q;
	if (qp != NULL)
		*qp = q;
	snprintf(q->domain, sizeof(q->domain), "%s", name);
	return q;
}

int dns_resolve_server(struct dns *d, const char *domain, const char *proxy_fqdn, dns_cb cb,
		       void *ud, struct dns_query **qp)
{
	static const char srv_prefix[] = "_xmpp-server._tcp.";
	static const char srvs_prefix[] = "_xmpps-server._tcp.";
	struct dns_query *q;
	char addr[INET6_ADDRSTRLEN];

	if (qp != NULL)
		*qp = NULL;
	if (d == NULL || domain == NULL || cb == NULL)
		return FG_INVAL;
	q = query_new(d, domain, ud, qp);
	if (q == NULL)
		return FG_NOMEM;
	q->cb = cb;

	if (strlen(domain) > DNS_NAME_MAX) {
		fail(q, "cannot look up \"%.64s...\": longer than a DNS name can be", domain);
	} else if (proxy_fqdn != NULL && proxy_fqdn[0] != '\0') {
		start_proxy(q, proxy_fqdn);
	} else if (domain_literal(domain, addr, sizeof(addr))) {
		q->via = DNS_VIA_LITERAL;
		add_literal(q, addr, DNS_XMPP_SERVER_PORT);
		start_addr(q);
	} else if (!dns_name_valid(domain)) {
		fail(q, "cannot look up \"%s\": not a valid DNS name", domain);
	} else {
		/* Both kinds at once (XEP-0368): one more lookup, no more
		 * waiting. No SRV record can exist at a name too long. */
		q->stage = STAGE_SRV;
		q->srv_ans.st = DNS_ST_NXDOMAIN;
		q->srvs_ans.st = DNS_ST_NXDOMAIN;
		if (sizeof(srv_prefix) - 1 + strlen(domain) <= DNS_NAME_MAX) {
			snprintf(q->srv_name, sizeof(q->srv_name), "%s%s", srv_prefix, domain);
			sub_start(q, q->srv_name, T_SRV, &q->srv_ans, q->srv, DNS_MAX_SRV_PARSE);
		}
		if (sizeof(srvs_prefix) - 1 + strlen(domain) <= DNS_NAME_MAX) {
			snprintf(q->srvs_name, sizeof(q->srvs_name), "%s%s", srvs_prefix, domain);
			sub_start(q, q->srvs_name, T_SRV, &q->srvs_ans, q->srvs, DNS_MAX_SRV_PARSE);
		}
	}
	if (q->pending == 0)
		event_active(q->ev, EV_TIMEOUT, 0);
	return FG_OK;
}

int dns_lookup(struct dns *d, const char *name, enum dns_qtype qtype, dns_lookup_cb cb, void *ud,
	       struct dns_query **qp)
{
	struct dns_query *q;

	if (qp != NULL)
		*qp = NULL;
	if (d == NULL || name == NULL || cb == NULL ||
	    (qtype != DNS_QTYPE_A && qtype != DNS_QTYPE_AAAA && qtype != DNS_QTYPE_SRV))
		return FG_INVAL;
	q = query_new(d, name, ud, qp);
	if (q == NULL)
		return FG_NOMEM;
	q->lookup_cb = cb;
	q->stage = STAGE_LOOKUP;
	if (!dns_name_valid(name))
		answer_fail(&q->srv_ans, "not a valid DNS name");
	else
		sub_start(q, q->domain, (uint16_t)qtype, &q->srv_ans, q->srv, DNS_MAX_SRV_PARSE);
	if (q->pending == 0)
		event_active(q->ev, EV_TIMEOUT, 0);
	return FG_OK;
}

int dns_set_trust_anchor(struct dns *d, const char *path, char *err, size_t errlen)
{
	struct ub_ctx *v;
	FILE *f;
	int rc;

	if (d == NULL || d->vctx != NULL)
		return FG_INVAL;
	if (path == NULL || *path == '\0')
		return FG_OK;
	/* libunbound reads the file only at the first query and then fails
	 * every one of them; a sentence now is more use. */
	f = fopen(path, "r");
	if (f == NULL) {
		snprintf(err, errlen,
			 "cannot read the DNSSEC trust anchor %s: %s (set [dns] trust_anchor to a "
			 "file of DS or DNSKEY records; Debian's dns-root-data has "
			 "/usr/share/dns/root.key)",
			 path, strerror(errno));
		return FG_ERR;
	}
	fclose(f);
	v = ub_ctx_create_event(d->base);
	if (v == NULL) {
		snprintf(err, errlen, "cannot create the validating resolver: %s", strerror(errno));
		return FG_ERR;
	}
	if (set_zones(v, err, errlen) != FG_OK)
		goto fail;
	rc = d->fwd != NULL ? ub_ctx_set_fwd(v, d->fwd) : ub_ctx_resolvconf(v, d->resolv_path);
	if (rc == 0)
		rc = ub_ctx_add_ta_file(v, path);
	if (rc != 0) {
		snprintf(err, errlen, "cannot set up DNSSEC validation with %s: %s", path,
			 ub_strerror(rc));
		goto fail;
	}
	d->vctx = v;
	snprintf(d->anchor, sizeof(d->anchor), "%s", path);
	log_debug(LOGCTX, "DNSSEC validation for DANE with trust anchor %s", path);
	return FG_OK;
fail:
	ub_ctx_delete(v);
	return FG_ERR;
}

bool dns_has_trust_anchor(const struct dns *d)
{
	return d != NULL && d->vctx != NULL;
}

int dns_lookup_secure(struct dns *d, const char *name, uint16_t qtype, dns_secure_cb cb, void *ud,
		      struct dns_query **qp)
{
	struct dns_query *q;

	if (qp != NULL)
		*qp = NULL;
	if (d == NULL || name == NULL || cb == NULL ||
	    (qtype != T_A && qtype != T_AAAA && qtype != T_SRV && qtype != T_TLSA))
		return FG_INVAL;
	q = query_new(d, name, ud, qp);
	if (q == NULL)
		return FG_NOMEM;
	q->secure_cb = cb;
	q->stage = STAGE_LOOKUP;
	if (d->vctx == NULL)
		answer_fail(&q->srv_ans, "no DNSSEC trust anchor ([dns] trust_anchor)");
	else if (!dns_name_valid(name))
		answer_fail(&q->srv_ans, "not a valid DNS name");
	else
		sub_start(q, q->domain, qtype, &q->srv_ans, q->srv, DNS_MAX_SRV_PARSE);
	if (q->pending == 0)
		event_active(q->ev, EV_TIMEOUT, 0);
	return FG_OK;
}

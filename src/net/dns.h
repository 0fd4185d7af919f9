/* DNS for outbound s2s: where to connect for a partner domain (SPEC §3).
 *
 * Everything runs on the caller's libevent loop through libunbound's event
 * API; nothing blocks. A lookup ends in one callback with an ordered list of
 * (host, address, port) to try, or with one sentence an admin can act on. */
#ifndef FG_DNS_H
#define FG_DNS_H

#include <netinet/in.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

struct event_base;
struct dns;
struct dns_query;

#define DNS_XMPP_SERVER_PORT 5269
#define DNS_NAME_MAX	     253 /* presentation form, no final dot */

/* Caps on what a (possibly hostile) DNS answer can make us hold or query. */
#define DNS_MAX_SRV_PARSE 32 /* SRV records read from one answer */
#define DNS_MAX_HOSTS	  16 /* SRV targets resolved, in SRV order */
#define DNS_MAX_ADDRS	  8  /* addresses kept per host and family */
#define DNS_MAX_TARGETS	  64 /* entries in one result */

/* How the result was found; s2s_out logs it and TLS checks may differ. */
enum dns_via {
	DNS_VIA_PROXY,	  /* the partner's proxy_fqdn */
	DNS_VIA_SRV,	  /* _xmpp-server._tcp / _xmpps-server._tcp SRV targets */
	DNS_VIA_FALLBACK, /* no SRV: the domain's own A/AAAA, port 5269 */
	DNS_VIA_LITERAL,  /* the domain is an IP literal */
};

struct dns_target {
	char host[DNS_NAME_MAX + 1];	  /* name resolved (SRV target, proxy, domain) */
	char addr_text[INET6_ADDRSTRLEN]; /* for logs */
	uint16_t port;
	struct sockaddr_storage addr; /* ready for connect(), port included */
	socklen_t addrlen;
	bool direct_tls; /* from _xmpps-server (XEP-0368): TLS at connect, no STARTTLS */
};

struct dns_result {
	enum dns_via via;
	size_t n; /* >= 1 */
	const struct dns_target *targets;
	uint32_t ttl;	 /* smallest TTL of the records used; 0 for literals */
	bool dnssec;	 /* every record used was validated by DNSSEC (libunbound) */
	size_t n_direct; /* targets with direct_tls */
};

/* Exactly one of res and err is non-NULL; both live only during the call.
 * Runs on the loop, never inside dns_resolve_server. */
typedef void (*dns_cb)(void *ud, const struct dns_result *res, const char *err);

/* Production: nameservers from resolv_conf (NULL: /etc/resolv.conf). */
struct dns *dns_new(struct event_base *base, const char *resolv_conf, char *err, size_t errlen);
/* Tests and odd setups: one forwarder, "IP" or "IP@PORT" (libunbound syntax),
 * because resolv.conf cannot name a port. */
struct dns *dns_new_fwd(struct event_base *base, const char *fwd, char *err, size_t errlen);
/* Cancels every query still pending (their callbacks never run, their
 * handles are cleared) and frees the resolver. */
void dns_free(struct dns **d);

/* Starts the lookup for an outbound stream to domain (a prepared JID
 * domain: A-labels, or an IP literal): _xmpp-server._tcp and
 * _xmpps-server._tcp SRV together, merged in XEP-0368 order
 * (dns_srv_order), then the hosts' addresses. A non-empty proxy_fqdn ("host",
 * "host:port", "[v6]:port" or an IP literal) replaces SRV entirely.
 * *qp (may be NULL) receives a handle for dns_cancel; it is set to NULL
 * before cb runs, so *qp must stay valid until then or until cancelled.
 * Returns FG_OK, or FG_NOMEM/FG_ERR when nothing was started (cb will not
 * run). Bad input is reported through cb like any other failure. */
int dns_resolve_server(struct dns *d, const char *domain, const char *proxy_fqdn, dns_cb cb,
		       void *ud, struct dns_query **qp);
/* Record types dns_lookup() asks for. */
enum dns_qtype { DNS_QTYPE_A = 1, DNS_QTYPE_AAAA = 28, DNS_QTYPE_SRV = 33 };

struct dns_answer;
struct dns_srv;
/* ans says how the lookup ended and holds A/AAAA addresses; for SRV the
 * records are srv[0..ans->n), in answer order. Both live only during the
 * call, which runs on the loop, never inside dns_lookup. */
typedef void (*dns_lookup_cb)(void *ud, const struct dns_answer *ans, const struct dns_srv *srv);

/* One plain lookup of name's records of type qtype, with none of
 * dns_resolve_server's policy (no fallback, no ordering, no follow-up
 * address lookups): what `fedgate check` reports on. Handle and return
 * codes as for dns_resolve_server; an invalid name is reported through cb
 * as DNS_ST_FAIL. */
int dns_lookup(struct dns *d, const char *name, enum dns_qtype qtype, dns_lookup_cb cb, void *ud,
	       struct dns_query **qp);
/* DNSSEC for DANE: a second, validating resolver with the same servers,
 * trusting the DS or DNSKEY records in path (zone-file form; Debian's
 * /usr/share/dns/root.key). Plain lookups stay unvalidated, so a path that
 * cannot carry DNSSEC breaks only DANE. NULL or "" path: none (FG_OK).
 * FG_ERR with a sentence in err when the file cannot be read. */
int dns_set_trust_anchor(struct dns *d, const char *path, char *err, size_t errlen);
bool dns_has_trust_anchor(const struct dns *d);

#define DNS_QTYPE_TLSA 52
/* As dns_lookup_cb, plus the reply itself (pkt, len; NULL, 0 when there
 * was none) for record types dns.c does not parse (TLSA). */
typedef void (*dns_secure_cb)(void *ud, const struct dns_answer *ans, const struct dns_srv *srv,
			      const uint8_t *pkt, size_t len);
/* One lookup through the validating resolver: ans->dnssec is 2 when the
 * answer (or the denial) is DNSSEC-secure, 0 when insecure; a bogus one
 * is DNS_ST_FAIL "DNSSEC bogus: ...", no trust anchor DNS_ST_FAIL "no
 * DNSSEC trust anchor". qtype: A, AAAA, SRV or TLSA. Handle and return
 * codes as for dns_lookup. */
int dns_lookup_secure(struct dns *d, const char *name, uint16_t qtype, dns_secure_cb cb, void *ud,
		      struct dns_query **qp);
/* Cancels a pending query; its callback never runs. NULL-safe. */
void dns_cancel(struct dns_query **qp);

/* ---- Pure parts, exposed for unit tests. ---- */

struct dns_srv {
	uint16_t prio, weight, port;
	char target[DNS_NAME_MAX + 1]; /* "" is the root, "." in the zone */
	bool direct_tls;	       /* an _xmpps- record (set by the caller) */
};

/* Uniform random number in [0, bound). */
typedef uint32_t (*dns_rng_fn)(void *ud, uint32_t bound);

/* RFC 2782 order: ascending priority; within a priority, weighted random
 * selection with weight-0 records first in the running sum. With records
 * of both XEP-0368 kinds merged, at equal priority the direct_tls ones come
 * first (the XEP lets the initiator prefer one kind), each kind ordered by
 * its weights. */
void dns_srv_order(struct dns_srv *recs, size_t n, dns_rng_fn rng, void *rng_ud);
/* 1 when the answer is the single "." record that means "no service". */
int dns_srv_no_service(const struct dns_srv *recs, size_t n);

/* How the two SRV answers of an outbound lookup combine (XEP-0368 §3 and
 * its implementation notes). */
enum dns_srv_plan {
	DNS_PLAN_SRV,	   /* connect to the merged records in *out */
	DNS_PLAN_FALLBACK, /* neither name has records: the domain on 5269 */
	DNS_PLAN_FAIL,	   /* why says why */
};
/* starttls/direct: the _xmpp-server and _xmpps-server answers and their
 * records; out receives the usable records of both (direct_tls set),
 * ordered, at most max; *nout their number. A failed _xmpps lookup is
 * ignored (Direct TLS is an addition; the standard records decide); a
 * failed _xmpp lookup fails the whole (no fallback an attacker could
 * steer to). "." for _xmpps alone means no Direct TLS, and then no A/AAAA
 * fallback either. */
enum dns_srv_plan dns_srv_merge(const char *domain, const struct dns_answer *starttls,
				const struct dns_srv *s_recs, const struct dns_answer *direct,
				const struct dns_srv *d_recs, struct dns_srv *out, size_t max,
				size_t *nout, dns_rng_fn rng, void *rng_ud, char *why,
				size_t whylen);

/* Splits "host", "host:port", "[v6]", "[v6]:port" or a bare IPv4/IPv6
 * literal. host receives the name (lower case, final dot stripped) or the
 * address text without brackets; *is_ip says which. FG_OK or FG_INVAL. */
int dns_parse_hostport(const char *s, uint16_t default_port, char *host, size_t hostlen,
		       uint16_t *port, int *is_ip);
/* 1 when s is an ASCII host name DNS can look up (LDH and '_' labels). */
int dns_name_valid(const char *s);

/* What the lookups for one name ended with. */
enum dns_status { DNS_ST_PENDING = 0, DNS_ST_DATA, DNS_ST_NODATA, DNS_ST_NXDOMAIN, DNS_ST_FAIL };

/* One parsed reply: the records of the asked type. */
struct dns_answer {
	enum dns_status st;
	char why[160];	/* for DNS_ST_FAIL: "SERVFAIL", "malformed reply", ... */
	uint32_t ttl;	/* smallest TTL of the records kept */
	size_t n;	/* records kept (in addr, or in the caller's srv array) */
	size_t dropped; /* records beyond the caps */
	/* libunbound's verdict: 2 = validated by DNSSEC, 0 = not validated
	 * (unsigned, or no trust anchor); bogus answers are DNS_ST_FAIL. */
	int dnssec;
	/* A records use the first 4 bytes. */
	uint8_t addr[DNS_MAX_ADDRS][16];
};

/* Parses a wire-format reply; rcode is libunbound's (non-zero wins over the
 * packet's). Only answer records of qtype count (the resolver has followed
 * CNAMEs). SRV records go to srv[0..srv_cap). Never fails: problems become
 * DNS_ST_FAIL with a reason. */
void dns_parse_answer(const uint8_t *pkt, size_t len, int rcode, uint16_t qtype,
		      struct dns_answer *ans, struct dns_srv *srv, size_t srv_cap);

/* A name to connect to and what its AAAA and A lookups returned. */
struct dns_host {
	char name[DNS_NAME_MAX + 1];
	uint16_t port;
	bool direct_tls; /* an _xmpps-server target */
	struct dns_answer a6, a4;
};

/* Flattens hosts in order into targets: each host's IPv6 addresses, then its
 * IPv4 ones, in answer order; an (address, port) seen before is skipped.
 * Returns the number written (at most max); *ttl gets the smallest TTL. */
size_t dns_build_targets(const struct dns_host *hosts, size_t nhosts, struct dns_target *out,
			 size_t max, uint32_t *ttl);

/* The sentence for a lookup whose hosts gave no address. servers names the
 * resolvers asked ("127.0.0.53"). */
void dns_explain(char *buf, size_t len, enum dns_via via, const char *domain, const char *servers,
		 const struct dns_host *hosts, size_t nhosts);

/* DNS wire format, for the readers of replies (dns.c, dane.c). */
uint16_t dns_get16(const uint8_t *p);
/* Moves *off past the name there, without following compression; 0, or
 * -1 when the name runs past len. */
int dns_skip_name(const uint8_t *p, size_t len, size_t *off);

#endif

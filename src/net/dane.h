/* DANE for outbound s2s (RFC 7673 over RFC 6698/7671): DNSSEC-secure TLSA
 * lookups for the SRV targets of a partner domain, what a partner's `dane`
 * setting makes of them, and OpenSSL's DANE verification on the SSL.
 *
 * The lookups run on the validating resolver of dns.c (dns_lookup_secure),
 * on the caller's loop; the verdict on a peer certificate comes from
 * OpenSSL (SSL_get0_dane_authority) and is read by tls_peer_verify. */
#ifndef FG_DANE_H
#define FG_DANE_H

#include "dns.h"
#include "policy.h"

#include <openssl/ssl.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define DANE_MAX_RECORDS 8    /* TLSA records kept per host */
#define DANE_DATA_MAX	 1024 /* longest association data kept (a full RSA-4096 SPKI is 550) */
#define DANE_MAX_HOSTS	 8    /* SRV targets whose TLSA records are looked up */

struct dane_tlsa {
	uint8_t usage, selector, mtype;
	uint16_t len;
	uint8_t data[DANE_DATA_MAX];
};

/* What the lookups for one name found. */
enum dane_st {
	DANE_ST_PENDING = 0,
	DANE_ST_RECORDS,  /* DNSSEC-secure TLSA records */
	DANE_ST_NONE,	  /* DNSSEC-secure: there are none */
	DANE_ST_INSECURE, /* the zone is not signed (or not under our trust anchor) */
	DANE_ST_BOGUS,	  /* DNSSEC validation failed */
	DANE_ST_FAIL,	  /* the lookup failed, or there is no trust anchor */
};

struct dane_host {
	char name[DNS_NAME_MAX + 1]; /* SRV target, or the domain on fallback */
	uint16_t port;
	bool direct;		      /* a Direct TLS target (_xmpps-server, XEP-0368) */
	char qname[DNS_NAME_MAX + 1]; /* _PORT._tcp.name */
	enum dane_st st;
	char why[160]; /* BOGUS, FAIL: the resolver's words; INSECURE: why, or "" */
	size_t n, skipped;
	struct dane_tlsa recs[DANE_MAX_RECORDS];
	/* The validated A and AAAA answers for name: RFC 7673 §3.2 trusts the
	 * TLSA records of a host only when its addresses are secure. */
	enum dane_st addr_st[2];
	char addr_why[160];
};

struct dane_result {
	/* Whether the answer that named the hosts was DNSSEC-secure: RFC
	 * 7673 looks up TLSA only then. RECORDS: secure SRV records; NONE:
	 * a secure denial (fallback to the domain); the rest as for hosts. */
	enum dane_st srv;
	char srv_why[480];
	/* The same for _xmpps-server._tcp, which named the Direct TLS
	 * targets (asked only when there are some). */
	enum dane_st srvs;
	char srvs_why[480];
	size_t nhosts;
	struct dane_host hosts[DANE_MAX_HOSTS];
};

struct dane_lookup;
/* r lives only during the call, which runs on the loop, never inside
 * dane_lookup_start. */
typedef void (*dane_cb)(void *ud, const struct dane_result *r);

/* The TLSA lookups for an outbound stream to domain whose targets dns.c
 * found (res): the SRV name again through the validating resolver, and
 * _PORT._tcp.HOST TLSA for each distinct target host (the domain itself
 * on fallback), all at once. proxy_fqdn and IP literals get no TLSA
 * lookup (srv = FAIL with the reason). *lp is cleared before cb runs.
 * FG_OK, or FG_NOMEM (cb will not run). */
int dane_lookup_start(struct dns *d, const char *domain, const struct dns_result *res, dane_cb cb,
		      void *ud, struct dane_lookup **lp);
/* Cancels a pending lookup; its callback never runs. NULL-safe. */
void dane_lookup_cancel(struct dane_lookup **lp);

/* What to do with one target. */
enum dane_use {
	DANE_USE_NONE,	 /* connect with the usual certificate checks */
	DANE_USE_VERIFY, /* connect and verify with h's TLSA records */
	DANE_USE_REFUSE, /* do not connect: why says so */
};

/* The rule of a partner's `dane` setting for the target host:port, given
 * what the lookups found (r NULL: none were made). off: NONE.
 * opportunistic: VERIFY with secure records; NONE when DNSSEC says there
 * are none, the zone is unsigned, there is no trust anchor or not even the
 * SRV answer validates (a resolver path without DNSSEC); REFUSE when, under
 * a secure SRV answer, the TLSA answer is bogus or its lookup failed (RFC
 * 7672 §2.2).
 * required: VERIFY with secure records, REFUSE otherwise. *h receives the
 * host's record set for VERIFY. */
enum dane_use dane_decide(enum dane_mode mode, const struct dane_result *r, const char *host,
			  uint16_t port, const struct dane_host **h, char *why, size_t whylen);

/* "DNSSEC-secure" (RECORDS, NONE), "not DNSSEC-secure", "DNSSEC bogus",
 * "no DNSSEC verdict" (FAIL), "not looked up". */
const char *dane_st_word(enum dane_st st);
/* Folds the address verdicts into h's: bogus addresses make the host
 * BOGUS, insecure ones INSECURE (its TLSA records then prove nothing),
 * no secure address at all FAIL; secure addresses leave the TLSA verdict. */
void dane_host_finish(struct dane_host *h);
/* "DNSSEC-secure, 2 records: 3 1 1 ...", "not DNSSEC-signed", ... */
void dane_host_text(const struct dane_host *h, char *buf, size_t len);

/* ---- TLS ---- */

/* Arms ctx: the next tls_client_prepare() on it adds h's records to the
 * SSL (SSL_dane_enable with the target host as base domain, the service
 * domain as a second reference identifier, DANE-EE without name checks,
 * RFC 7671 §5.1). NULLs disarm. ctx must have had SSL_CTX_dane_enable. */
void dane_client_arm(SSL_CTX *ctx, const struct dane_host *h, const char *domain);
/* For tls.c: applies the armed records to ssl. FG_OK when none are armed. */
int dane_client_apply(SSL *ssl);
/* Records OpenSSL could use on ssl; -1 when DANE was not armed on it. */
int dane_ssl_usable(const SSL *ssl);
/* True when OpenSSL verified the peer with a TLSA record; *usage (may be
 * NULL) gets its usage (3 = DANE-EE: no name checks). */
bool dane_ssl_verified(SSL *ssl, int *usage);
/* The SHA-256 of cert's SubjectPublicKeyInfo, hex: what a "3 1 1" TLSA
 * record holds. "" when it cannot be computed. */
void dane_spki_sha256_hex(X509 *cert, char *out, size_t outlen);

/* ---- Pure parts, exposed for unit tests and the fuzzer. ---- */

/* Reads the IN TLSA records of a wire-format DNS reply into
 * recs[0..cap); records beyond cap, with no data or with more than
 * DANE_DATA_MAX bytes of it count in *skipped. Returns the number read,
 * -1 for a malformed reply. */
int dane_parse_tlsa(const uint8_t *pkt, size_t len, struct dane_tlsa *recs, size_t cap,
		    size_t *skipped);
/* "3 1 1 0a1b2c...": data in hex, cut after 32 bytes with "...". */
void dane_tlsa_text(const struct dane_tlsa *r, char *buf, size_t len);

#endif

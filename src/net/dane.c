/* DANE for outbound s2s: RFC 7673's TLSA lookups, the partner's rule,
 * and OpenSSL's DANE verification (see dane.h). */
#include "dane.h"

#include "fg.h"
#include "log.h"

#include <assert.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/x509.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define LOGCTX "dane"

enum { T_TLSA = 52, C_IN = 1 };

/* ---- Pure parts ---- */

int dane_parse_tlsa(const uint8_t *pkt, size_t len, struct dane_tlsa *recs, size_t cap,
		    size_t *skipped)
{
	size_t off = 12, n = 0;
	unsigned qd, an;

	*skipped = 0;
	if (pkt == NULL || len < 12)
		return -1;
	qd = dns_get16(pkt + 4);
	an = dns_get16(pkt + 6);
	for (unsigned i = 0; i < qd; i++) {
		if (dns_skip_name(pkt, len, &off) != 0 || off + 4 > len)
			return -1;
		off += 4;
	}
	for (unsigned i = 0; i < an; i++) {
		uint16_t type, cls, rdlen;
		if (dns_skip_name(pkt, len, &off) != 0 || off + 10 > len)
			return -1;
		type = dns_get16(pkt + off);
		cls = dns_get16(pkt + off + 2);
		rdlen = dns_get16(pkt + off + 8);
		off += 10;
		if (off + rdlen > len)
			return -1;
		if (type == T_TLSA && cls == C_IN) {
			/* RFC 6698 §2.1: usage, selector, matching type, then
			 * the association data, which is never empty. */
			if (rdlen < 4 || rdlen - 3 > DANE_DATA_MAX || n >= cap) {
				(*skipped)++;
			} else {
				struct dane_tlsa *r = &recs[n++];
				r->usage = pkt[off];
				r->selector = pkt[off + 1];
				r->mtype = pkt[off + 2];
				r->len = (uint16_t)(rdlen - 3);
				memcpy(r->data, pkt + off + 3, r->len);
			}
		}
		off += rdlen;
	}
	return (int)n;
}

void dane_tlsa_text(const struct dane_tlsa *r, char *buf, size_t len)
{
	size_t show = r->len > 32 ? 32 : r->len;

	snprintf(buf, len, "%u %u %u ", r->usage, r->selector, r->mtype);
	for (size_t i = 0; i < show; i++)
		fg_appendf(buf, len, "%02x", r->data[i]);
	if (show < r->len)
		fg_appendf(buf, len, "...");
}

const char *dane_st_word(enum dane_st st)
{
	switch (st) {
	case DANE_ST_RECORDS:
	case DANE_ST_NONE: return "DNSSEC-secure";
	case DANE_ST_INSECURE: return "not DNSSEC-secure";
	case DANE_ST_BOGUS: return "DNSSEC bogus";
	case DANE_ST_FAIL: return "no DNSSEC verdict";
	case DANE_ST_PENDING: break;
	}
	return "not looked up";
}

void dane_host_text(const struct dane_host *h, char *buf, size_t len)
{
	switch (h->st) {
	case DANE_ST_RECORDS:
		snprintf(buf, len, "DNSSEC-secure, %zu record%s", h->n, h->n == 1 ? "" : "s");
		for (size_t i = 0; i < h->n; i++) {
			char t[120];
			dane_tlsa_text(&h->recs[i], t, sizeof(t));
			fg_appendf(buf, len, "%s%s", i ? "; " : ": ", t);
		}
		if (h->skipped)
			fg_appendf(buf, len, " (%zu more not used)", h->skipped);
		return;
	case DANE_ST_NONE: snprintf(buf, len, "DNSSEC-secure, no TLSA records"); return;
	case DANE_ST_INSECURE:
		snprintf(buf, len, "not DNSSEC-signed (insecure)%s%s", h->why[0] ? ": " : "",
			 h->why);
		return;
	case DANE_ST_BOGUS: snprintf(buf, len, "DNSSEC bogus: %s", h->why); return;
	case DANE_ST_FAIL: snprintf(buf, len, "lookup failed: %s", h->why); return;
	case DANE_ST_PENDING: snprintf(buf, len, "not looked up"); return;
	}
}

void dane_host_finish(struct dane_host *h)
{
	enum dane_st a = h->addr_st[0], b = h->addr_st[1];

	if (a == DANE_ST_BOGUS || b == DANE_ST_BOGUS) {
		h->st = DANE_ST_BOGUS;
		snprintf(h->why, sizeof(h->why), "%s", h->addr_why);
	} else if (a == DANE_ST_INSECURE || b == DANE_ST_INSECURE) {
		h->st = DANE_ST_INSECURE;
		snprintf(h->why, sizeof(h->why), "has address records that are not DNSSEC-secure");
	} else if (a != DANE_ST_RECORDS && b != DANE_ST_RECORDS) {
		h->st = DANE_ST_FAIL;
		/* Cut at the end if need be (fg_appendf). */
		h->why[0] = '\0';
		fg_appendf(h->why, sizeof(h->why), "no DNSSEC-secure address for %s%s%s", h->name,
			   h->addr_why[0] ? ": " : "", h->addr_why);
	} else {
		return;
	}
	h->n = 0;
}

static bool secure_st(enum dane_st st)
{
	return st == DANE_ST_RECORDS || st == DANE_ST_NONE;
}

enum dane_use dane_decide(enum dane_mode mode, const struct dane_result *r, const char *host,
			  uint16_t port, const struct dane_host **hp, char *why, size_t whylen)
{
	bool req = mode == DANE_REQUIRED;
	const struct dane_host *h = NULL;

	*hp = NULL;
	why[0] = '\0';
	if (mode == DANE_OFF)
		return DANE_USE_NONE;
	if (r == NULL) {
		snprintf(why, whylen, "DANE: no TLSA lookup was made");
		return req ? DANE_USE_REFUSE : DANE_USE_NONE;
	}
	for (size_t i = 0; i < r->nhosts; i++)
		if (r->hosts[i].port == port && strcmp(r->hosts[i].name, host) == 0)
			h = &r->hosts[i];
	/* The SRV answer that named this target. */
	enum dane_st srv = h != NULL && h->direct ? r->srvs : r->srv;
	const char *srv_why = h != NULL && h->direct ? r->srvs_why : r->srv_why;
	if (!secure_st(srv)) {
		/* RFC 7673 §3.1: without a secure SRV answer the target names
		 * may be an attacker's, so their TLSA records prove nothing. */
		switch (srv) {
		case DANE_ST_INSECURE:
			snprintf(
				why, whylen,
				"DANE: the zone is not signed: %s is not DNSSEC-secure, so no TLSA "
				"records can be trusted",
				srv_why);
			return req ? DANE_USE_REFUSE : DANE_USE_NONE;
		case DANE_ST_BOGUS:
			/* Not even the SRV answer validates: a resolver path that
			 * cannot carry DNSSEC looks just like this, and
			 * opportunistic must not cost federation there. */
			snprintf(why, whylen, "DANE: DNSSEC bogus: %s", srv_why);
			return req ? DANE_USE_REFUSE : DANE_USE_NONE;
		default:
			snprintf(why, whylen, "DANE: %s", srv_why);
			return req ? DANE_USE_REFUSE : DANE_USE_NONE;
		}
	}
	if (h == NULL) {
		snprintf(why, whylen, "DANE: no TLSA lookup for %s:%u (only the first %d targets)",
			 host, port, DANE_MAX_HOSTS);
		return req ? DANE_USE_REFUSE : DANE_USE_NONE;
	}
	switch (h->st) {
	case DANE_ST_RECORDS:
		if (h->n > 0) {
			*hp = h;
			return DANE_USE_VERIFY;
		}
		snprintf(why, whylen,
			 "DANE: none of the TLSA records at %s can be used (%zu skipped)", h->qname,
			 h->skipped);
		return req ? DANE_USE_REFUSE : DANE_USE_NONE;
	case DANE_ST_NONE:
		snprintf(why, whylen, "DANE: no TLSA records at %s (DNSSEC-secure denial)",
			 h->qname);
		return req ? DANE_USE_REFUSE : DANE_USE_NONE;
	case DANE_ST_INSECURE:
		if (h->why[0])
			snprintf(why, whylen, "DANE: the zone is not signed: %s %s", h->name,
				 h->why);
		else
			snprintf(why, whylen,
				 "DANE: the zone is not signed: TLSA %s is not DNSSEC-secure",
				 h->qname);
		return req ? DANE_USE_REFUSE : DANE_USE_NONE;
	case DANE_ST_BOGUS:
		snprintf(why, whylen, "DANE: TLSA %s is DNSSEC bogus: %s", h->qname, h->why);
		return DANE_USE_REFUSE;
	case DANE_ST_FAIL:
	case DANE_ST_PENDING:
		/* RFC 7672 §2.2: a failed lookup under a signed zone may be
		 * an attacker's doing; not connecting is the safe answer. */
		snprintf(why, whylen, "DANE: TLSA lookup of %s failed: %s", h->qname, h->why);
		return DANE_USE_REFUSE;
	}
	return DANE_USE_REFUSE;
}

/* ---- Lookups ---- */

struct dane_sub {
	struct dane_lookup *l;
	struct dns_query *q;
	struct dane_host *h; /* NULL: the SRV lookup */
	int addr;	     /* for h: -1 its TLSA lookup, 0 its A, 1 its AAAA; without h:
		     0 _xmpp-server, 1 _xmpps-server */
};

struct dane_lookup {
	struct dane_lookup **lp;
	dane_cb cb;
	void *ud;
	size_t pending;
	bool no_srv; /* proxy_fqdn or an IP literal: r.srv stays FAIL */
	char srv_name[DNS_NAME_MAX + 1], srvs_name[DNS_NAME_MAX + 1];
	struct dane_sub subs[3 * DANE_MAX_HOSTS + 2];
	size_t nsubs;
	struct dane_result r;
};

static void lookup_free(struct dane_lookup *l)
{
	for (size_t i = 0; i < l->nsubs; i++)
		dns_cancel(&l->subs[i].q);
	free(l);
}

void dane_lookup_cancel(struct dane_lookup **lp)
{
	if (lp == NULL || *lp == NULL)
		return;
	struct dane_lookup *l = *lp;
	*lp = NULL;
	lookup_free(l);
}

/* The status of a validated answer; ok_st for a secure one with data. */
static enum dane_st answer_st(const struct dns_answer *a, char *why, size_t whylen)
{
	why[0] = '\0';
	static const char bogus[] = "DNSSEC bogus: ";
	if (a->st == DNS_ST_FAIL) {
		bool b = strncmp(a->why, bogus, sizeof(bogus) - 1) == 0;
		snprintf(why, whylen, "%s", b ? a->why + sizeof(bogus) - 1 : a->why);
		return b ? DANE_ST_BOGUS : DANE_ST_FAIL;
	}
	if (a->dnssec != 2)
		return DANE_ST_INSECURE;
	return a->st == DNS_ST_DATA ? DANE_ST_RECORDS : DANE_ST_NONE;
}

static void on_sub(void *ud, const struct dns_answer *ans, const struct dns_srv *srv,
		   const uint8_t *pkt, size_t len)
{
	struct dane_sub *s = ud;
	struct dane_lookup *l = s->l;

	(void)srv;
	s->q = NULL;
	if (s->h == NULL && !l->no_srv) {
		char why[160];
		bool direct = s->addr == 1;
		char *out = direct ? l->r.srvs_why : l->r.srv_why;
		const char *name = direct ? l->srvs_name : l->srv_name;
		*(direct ? &l->r.srvs : &l->r.srv) = answer_st(ans, why, sizeof(why));
		if (why[0] != '\0')
			snprintf(out, sizeof(l->r.srv_why), "SRV %s (%s)", name, why);
		else
			snprintf(out, sizeof(l->r.srv_why), "SRV %s", name);
	} else if (s->h != NULL && s->addr >= 0) {
		char why[160];
		s->h->addr_st[s->addr] = answer_st(ans, why, sizeof(why));
		if (why[0] != '\0') {
			s->h->addr_why[0] = '\0';
			fg_appendf(s->h->addr_why, sizeof(s->h->addr_why), "%s %s: %s", s->h->name,
				   s->addr ? "AAAA" : "A", why);
		}
	} else if (s->h != NULL) {
		struct dane_host *h = s->h;
		h->st = answer_st(ans, h->why, sizeof(h->why));
		if (h->st == DANE_ST_RECORDS) {
			int n = dane_parse_tlsa(pkt, len, h->recs, DANE_MAX_RECORDS, &h->skipped);
			if (n < 0) {
				h->st = DANE_ST_FAIL;
				snprintf(h->why, sizeof(h->why), "malformed reply");
			} else {
				h->n = (size_t)n;
			}
		}
		if (log_enabled(LOG_DEBUG)) {
			char text[600];
			dane_host_text(h, text, sizeof(text));
			log_debug(LOGCTX, "%s TLSA: %s", h->qname, text);
		}
	}
	assert(l->pending > 0);
	if (--l->pending > 0)
		return;
	for (size_t i = 0; i < l->r.nhosts; i++)
		dane_host_finish(&l->r.hosts[i]);
	if (l->lp != NULL)
		*l->lp = NULL;
	l->cb(l->ud, &l->r);
	lookup_free(l);
}

static int sub_start(struct dns *d, struct dane_lookup *l, const char *name, uint16_t type,
		     struct dane_host *h, int addr)
{
	struct dane_sub *s = &l->subs[l->nsubs++];

	assert(l->nsubs <= FG_ARRAY_LEN(l->subs));
	s->l = l;
	s->h = h;
	s->addr = addr;
	l->pending++;
	if (dns_lookup_secure(d, name, type, on_sub, s, &s->q) != FG_OK) {
		l->pending--;
		l->nsubs--;
		return FG_NOMEM;
	}
	return FG_OK;
}

static struct dane_host *add_host(struct dane_lookup *l, const char *name, uint16_t port,
				  bool direct)
{
	for (size_t i = 0; i < l->r.nhosts; i++)
		if (l->r.hosts[i].port == port && strcmp(l->r.hosts[i].name, name) == 0)
			return NULL; /* looked up already */
	if (l->r.nhosts == DANE_MAX_HOSTS)
		return NULL;
	struct dane_host *h = &l->r.hosts[l->r.nhosts];
	int n = snprintf(h->qname, sizeof(h->qname), "_%u._tcp.%s", port, name);
	if (n < 0 || (size_t)n >= sizeof(h->qname) || !dns_name_valid(h->qname))
		return NULL;
	snprintf(h->name, sizeof(h->name), "%s", name);
	h->port = port;
	h->direct = direct;
	l->r.nhosts++;
	return h;
}

int dane_lookup_start(struct dns *d, const char *domain, const struct dns_result *res, dane_cb cb,
		      void *ud, struct dane_lookup **lp)
{
	struct dane_lookup *l;

	if (lp != NULL)
		*lp = NULL;
	l = calloc(1, sizeof(*l));
	if (l == NULL)
		return FG_NOMEM;
	l->cb = cb;
	l->ud = ud;
	l->lp = lp;
	snprintf(l->srv_name, sizeof(l->srv_name), "_xmpp-server._tcp.%s", domain);
	snprintf(l->srvs_name, sizeof(l->srvs_name), "_xmpps-server._tcp.%s", domain);
	bool any_direct = false;
	if (res->via == DNS_VIA_PROXY || res->via == DNS_VIA_LITERAL) {
		/* Nothing DNSSEC could have vouched for names these targets;
		 * the SRV lookup still runs, so cb comes from the loop. */
		l->no_srv = true;
		l->r.srv = l->r.srvs = DANE_ST_FAIL;
		snprintf(l->r.srv_why, sizeof(l->r.srv_why),
			 "%s replaces the SRV lookup, so no name is DNSSEC-secure",
			 res->via == DNS_VIA_PROXY ? "proxy_fqdn" : "an IP address");
		snprintf(l->r.srvs_why, sizeof(l->r.srvs_why), "%s", l->r.srv_why);
	} else {
		for (size_t i = 0; i < res->n; i++) {
			add_host(l, res->targets[i].host, res->targets[i].port,
				 res->targets[i].direct_tls);
			any_direct |= res->targets[i].direct_tls;
		}
	}
	if (sub_start(d, l, l->srv_name, DNS_QTYPE_SRV, NULL, 0) != FG_OK ||
	    (any_direct && sub_start(d, l, l->srvs_name, DNS_QTYPE_SRV, NULL, 1) != FG_OK))
		goto fail;
	/* The address lookups run beside the TLSA one rather than before it
	 * (RFC 7673 §3.2 orders them): the TLSA answer of a host whose
	 * addresses turn out insecure is dropped (dane_host_finish), and the
	 * stream waits one round trip less. */
	for (size_t i = 0; i < l->r.nhosts; i++) {
		struct dane_host *h = &l->r.hosts[i];
		if (sub_start(d, l, h->qname, DNS_QTYPE_TLSA, h, -1) != FG_OK ||
		    sub_start(d, l, h->name, DNS_QTYPE_A, h, 0) != FG_OK ||
		    sub_start(d, l, h->name, DNS_QTYPE_AAAA, h, 1) != FG_OK)
			goto fail;
	}
	if (lp != NULL)
		*lp = l;
	return FG_OK;
fail:
	lookup_free(l);
	return FG_NOMEM;
}

/* ---- TLS ---- */

static struct {
	SSL_CTX *ctx;
	const struct dane_host *h;
	const char *domain;
} armed;

static int usable_idx = -1;
static pthread_once_t usable_once = PTHREAD_ONCE_INIT;

static void usable_init(void)
{
	usable_idx = SSL_get_ex_new_index(0, NULL, NULL, NULL, NULL);
}

void dane_client_arm(SSL_CTX *ctx, const struct dane_host *h, const char *domain)
{
	armed.ctx = h != NULL ? ctx : NULL;
	armed.h = h;
	armed.domain = domain;
}

int dane_client_apply(SSL *ssl)
{
	const struct dane_host *h = armed.h;
	int usable = 0;

	if (armed.ctx == NULL || SSL_get_SSL_CTX(ssl) != armed.ctx)
		return FG_OK;
	pthread_once(&usable_once, usable_init);
	if (usable_idx < 0 || SSL_dane_enable(ssl, h->name) <= 0)
		goto fail;
	if (armed.domain != NULL && strcmp(armed.domain, h->name) != 0 &&
	    SSL_add1_host(ssl, armed.domain) != 1)
		goto fail;
	SSL_dane_set_flags(ssl, DANE_FLAG_NO_DANE_EE_NAMECHECKS);
	for (size_t i = 0; i < h->n; i++) {
		const struct dane_tlsa *r = &h->recs[i];
		/* 0: a record OpenSSL cannot use (an unknown usage or
		 * matching type), which RFC 6698 says to ignore. */
		int rc = SSL_dane_tlsa_add(ssl, r->usage, r->selector, r->mtype, r->data, r->len);
		if (rc > 0)
			usable++;
		else if (rc < 0)
			goto fail;
		ERR_clear_error();
	}
	/* +1: a NULL slot means "not armed". */
	if (SSL_set_ex_data(ssl, usable_idx, (void *)(intptr_t)(usable + 1)) != 1)
		goto fail;
	return FG_OK;
fail:
	ERR_clear_error();
	return FG_NOMEM;
}

int dane_ssl_usable(const SSL *ssl)
{
	if (ssl == NULL || usable_idx < 0)
		return -1;
	return (int)(intptr_t)SSL_get_ex_data(ssl, usable_idx) - 1;
}

bool dane_ssl_verified(SSL *ssl, int *usage)
{
	uint8_t u = 0;

	if (dane_ssl_usable(ssl) <= 0 || SSL_get0_dane_authority(ssl, NULL, NULL) < 0)
		return false;
	if (SSL_get_verify_result(ssl) != X509_V_OK)
		return false;
	if (SSL_get0_dane_tlsa(ssl, &u, NULL, NULL, NULL, NULL) < 0)
		return false;
	if (usage != NULL)
		*usage = u;
	return true;
}

void dane_spki_sha256_hex(X509 *cert, char *out, size_t outlen)
{
	unsigned char *der = NULL, md[EVP_MAX_MD_SIZE];
	unsigned int mdlen = 0;
	int n;

	out[0] = '\0';
	if (cert == NULL)
		return;
	n = i2d_X509_PUBKEY(X509_get_X509_PUBKEY(cert), &der);
	if (n <= 0)
		return;
	if (EVP_Digest(der, (size_t)n, md, &mdlen, EVP_sha256(), NULL) == 1)
		for (unsigned i = 0; i < mdlen; i++)
			fg_appendf(out, outlen, "%02x", md[i]);
	OPENSSL_free(der);
}

/* XMPP federated partners: records, the negotiation matrix (SPEC §2), value
 * parsing, validation verdicts, and the set of partners.
 *
 * The set keeps two views of the same partners: an array sorted by primary
 * domain, because listings must be stable and the admin expects them in
 * order, and a strmap from every domain (primary and additional) to its
 * partner, because every inbound stream header and every outbound stanza
 * asks "is this domain a partner?" and that must not cost more as the
 * allow-list grows. */
#include "policy.h"

#include "fg.h"
#include "jid.h"
#include "pin.h"
#include "strmap.h"

#include <assert.h>
#include <arpa/inet.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define CONNECTION_LIMIT_MAX 100000u
#define DESCRIPTION_MAX	     1024u
#define SHOW_MAX	     64u /* bytes of a user's value quoted in a message */

/* ---- small helpers ---- */

/* ASCII-only on purpose: strcasecmp follows the locale, and in a Turkish
 * locale "REQUIRED" would not match "required". */
static int ascii_casecmp(const char *a, const char *b)
{
	for (;; a++, b++) {
		unsigned char ca = (unsigned char)*a, cb = (unsigned char)*b;

		if (ca >= 'A' && ca <= 'Z')
			ca = (unsigned char)(ca - 'A' + 'a');
		if (cb >= 'A' && cb <= 'Z')
			cb = (unsigned char)(cb - 'A' + 'a');
		if (ca != cb || ca == '\0')
			return ca - cb;
	}
}

static char *xstrdup(const char *s)
{
	return strdup(s != NULL ? s : "");
}

/* Length of the well-formed UTF-8 sequence at s[0..len) and its code point,
 * or 0 when the bytes are not one (overlong, surrogate, truncated). */
static size_t utf8_next(const unsigned char *s, size_t len, uint32_t *cp)
{
	size_t n;
	uint32_t c;

	if (s[0] < 0x80) {
		*cp = s[0];
		return 1;
	}
	if (s[0] >= 0xc2 && s[0] <= 0xdf) {
		n = 2;
		c = s[0] & 0x1fu;
	} else if (s[0] >= 0xe0 && s[0] <= 0xef) {
		n = 3;
		c = s[0] & 0x0fu;
	} else if (s[0] >= 0xf0 && s[0] <= 0xf4) {
		n = 4;
		c = s[0] & 0x07u;
	} else {
		return 0;
	}
	if (len < n)
		return 0;
	for (size_t i = 1; i < n; i++) {
		if ((s[i] & 0xc0u) != 0x80u)
			return 0;
		c = (c << 6) | (s[i] & 0x3fu);
	}
	if ((n == 3 && c < 0x800) || (n == 4 && (c < 0x10000 || c > 0x10ffff)) ||
	    (c >= 0xd800 && c <= 0xdfff))
		return 0;
	*cp = c;
	return n;
}

static bool is_control(uint32_t c)
{
	return c < 0x20 || (c >= 0x7f && c <= 0x9f);
}

/* A user's value made safe to quote in a message that ends up in a terminal,
 * a JSON body and the audit log: at most SHOW_MAX bytes, cut on a character
 * boundary, control characters and broken UTF-8 shown as '?'. */
static const char *show(const char *s, char *buf, size_t size)
{
	const unsigned char *u = (const unsigned char *)(s != NULL ? s : "");
	size_t len = strlen((const char *)u), i = 0, o = 0;

	while (i < len) {
		uint32_t cp;
		size_t n = utf8_next(u + i, len - i, &cp);

		if (n == 0 || is_control(cp)) {
			n = n == 0 ? 1 : n;
			if (o + 1 > SHOW_MAX || o + 1 >= size)
				break;
			buf[o++] = '?';
		} else {
			if (o + n > SHOW_MAX || o + n >= size)
				break;
			memcpy(buf + o, u + i, n);
			o += n;
		}
		i += n;
	}
	if (i < len && o + 3 < size) {
		memcpy(buf + o, "...", 3);
		o += 3;
	}
	buf[o] = '\0';
	return buf;
}

/* ---- records ---- */

struct partner *partner_new(const char *domain)
{
	struct partner *p = calloc(1, sizeof(*p));

	if (p == NULL)
		return NULL;
	p->domain = xstrdup(domain);
	p->description = xstrdup("");
	if (p->domain == NULL || p->description == NULL) {
		partner_free(&p);
		return NULL;
	}
	p->type = PT_PUBLIC_UNVERIFIED;
	p->tls = NEG_REQUIRED;
	p->sasl = NEG_REQUIRED;
	p->dialback = true;
	p->keepalive = true;
	p->enabled = true;
	p->bidi = true;
	p->dane = DANE_OFF;
	p->connection_limit = 0;
	p->proxy_fqdn = NULL;
	return p;
}

/* Copies src's strings into dst, which holds none. On failure dst keeps
 * what was copied so far (n counts only those), for the caller to free. */
static int list_copy(struct domain_list *dst, const struct domain_list *src)
{
	dst->v = NULL;
	dst->n = 0;
	if (src->n == 0)
		return FG_OK;
	dst->v = calloc(src->n, sizeof(char *));
	if (dst->v == NULL)
		return FG_NOMEM;
	for (size_t i = 0; i < src->n; i++) {
		dst->v[i] = xstrdup(src->v[i]);
		if (dst->v[i] == NULL)
			return FG_NOMEM;
		dst->n++;
	}
	return FG_OK;
}

static void list_clear(struct domain_list *l)
{
	for (size_t i = 0; i < l->n; i++)
		free(l->v[i]);
	free(l->v);
	l->v = NULL;
	l->n = 0;
}

struct partner *partner_clone(const struct partner *p)
{
	struct partner *c;

	if (p == NULL)
		return NULL;
	c = calloc(1, sizeof(*c));
	if (c == NULL)
		return NULL;
	*c = *p;
	c->domain = NULL;
	c->description = NULL;
	c->additional_domains = (struct domain_list){0};
	c->pins = (struct domain_list){0};
	c->proxy_fqdn = NULL;

	c->domain = xstrdup(p->domain);
	c->description = xstrdup(p->description);
	if (c->domain == NULL || c->description == NULL)
		goto fail;
	if (p->proxy_fqdn != NULL && (c->proxy_fqdn = strdup(p->proxy_fqdn)) == NULL)
		goto fail;
	if (list_copy(&c->additional_domains, &p->additional_domains) != FG_OK ||
	    list_copy(&c->pins, &p->pins) != FG_OK)
		goto fail;
	return c;
fail:
	partner_free(&c);
	return NULL;
}

void partner_free(struct partner **pp)
{
	struct partner *p;

	if (pp == NULL || *pp == NULL)
		return;
	p = *pp;
	free(p->domain);
	free(p->description);
	list_clear(&p->additional_domains);
	list_clear(&p->pins);
	free(p->proxy_fqdn);
	free(p);
	*pp = NULL;
}

static bool list_contains(const struct domain_list *l, const char *d)
{
	for (size_t i = 0; i < l->n; i++)
		if (strcmp(l->v[i], d) == 0)
			return true;
	return false;
}

bool policy_owns(const struct partner *p, const char *domain)
{
	if (!p || !domain)
		return false;
	return strcmp(p->domain, domain) == 0 || list_contains(&p->additional_domains, domain);
}

/* Both directions, so that {x, x} and {x, y} differ. */
static bool same_set(const struct domain_list *a, const struct domain_list *b)
{
	for (size_t i = 0; i < a->n; i++)
		if (!list_contains(b, a->v[i]))
			return false;
	for (size_t i = 0; i < b->n; i++)
		if (!list_contains(a, b->v[i]))
			return false;
	return true;
}

static bool str_equal(const char *a, const char *b)
{
	return strcmp(a != NULL ? a : "", b != NULL ? b : "") == 0;
}

/* NULL and "" compare equal for description and proxy_fqdn because the
 * header gives them one meaning; an audit "no change" must not depend on
 * which spelling of "empty" a front-end used. */
bool partner_equal(const struct partner *a, const struct partner *b)
{
	if (a == b)
		return true;
	if (a == NULL || b == NULL)
		return false;
	if (!str_equal(a->domain, b->domain) || !str_equal(a->description, b->description) ||
	    !str_equal(a->proxy_fqdn, b->proxy_fqdn) || a->type != b->type || a->tls != b->tls ||
	    a->sasl != b->sasl || a->dialback != b->dialback || a->keepalive != b->keepalive ||
	    a->connection_limit != b->connection_limit || a->enabled != b->enabled ||
	    a->bidi != b->bidi || a->dane != b->dane)
		return false;
	return same_set(&a->additional_domains, &b->additional_domains) &&
	       same_set(&a->pins, &b->pins);
}

/* Whether a and b name the same domain as policy_check() would see them:
 * prepared when both prepare, byte-equal otherwise. */
static bool same_domain(const char *a, const char *b)
{
	char *pa = NULL, *pb = NULL;
	bool eq;

	if (strcmp(a, b) == 0)
		return true;
	if (jid_domain_prep(a, strlen(a), &pa) != JID_OK ||
	    jid_domain_prep(b, strlen(b), &pb) != JID_OK) {
		free(pa);
		free(pb);
		return false;
	}
	eq = strcmp(pa, pb) == 0;
	free(pa);
	free(pb);
	return eq;
}

static int list_add(struct domain_list *l, const char *x, bool (*same)(const char *, const char *))
{
	char **v;
	char *d;

	for (size_t i = 0; i < l->n; i++)
		if (same(l->v[i], x))
			return FG_OK;
	d = strdup(x);
	if (d == NULL)
		return FG_NOMEM;
	v = realloc(l->v, (l->n + 1) * sizeof(*v));
	if (v == NULL) {
		free(d);
		return FG_NOMEM;
	}
	v[l->n++] = d;
	l->v = v;
	return FG_OK;
}

static bool list_remove(struct domain_list *l, const char *x,
			bool (*same)(const char *, const char *))
{
	size_t o = 0;
	bool removed = false;

	for (size_t i = 0; i < l->n; i++) {
		if (same(l->v[i], x)) {
			free(l->v[i]);
			removed = true;
		} else {
			l->v[o++] = l->v[i];
		}
	}
	l->n = o;
	if (o == 0) {
		free(l->v);
		l->v = NULL;
	}
	return removed;
}

/* Adding a domain that is already there (in any spelling that prepares to
 * the same name) is a no-op, so that `partner set --add-domain` is
 * idempotent rather than a way to make a record policy_check() refuses. */
int partner_add_domain(struct partner *p, const char *domain)
{
	if (p == NULL || domain == NULL)
		return FG_INVAL;
	return list_add(&p->additional_domains, domain, same_domain);
}

/* Matches in any spelling that prepares to the same name, because the admin
 * types "Corp.Fabrikam.test" to remove what is stored prepared. */
bool partner_remove_domain(struct partner *p, const char *domain)
{
	if (p == NULL || domain == NULL)
		return false;
	return list_remove(&p->additional_domains, domain, same_domain);
}

void partner_clear_domains(struct partner *p)
{
	if (p != NULL)
		list_clear(&p->additional_domains);
}

/* Pins match in any spelling of the same digest (hex pasted from openssl,
 * base64 from probe); one that does not parse matches only itself, so
 * policy_check() can name it. */
static bool same_pin(const char *a, const char *b)
{
	char na[PIN_B64_LEN + 1], nb[PIN_B64_LEN + 1];

	if (strcmp(a, b) == 0)
		return true;
	return pin_normalize(a, na) == FG_OK && pin_normalize(b, nb) == FG_OK &&
	       strcmp(na, nb) == 0;
}

int partner_add_pin(struct partner *p, const char *pin)
{
	if (p == NULL || pin == NULL)
		return FG_INVAL;
	return list_add(&p->pins, pin, same_pin);
}

bool partner_remove_pin(struct partner *p, const char *pin)
{
	if (p == NULL || pin == NULL)
		return false;
	return list_remove(&p->pins, pin, same_pin);
}

void partner_clear_pins(struct partner *p)
{
	if (p != NULL)
		list_clear(&p->pins);
}

bool partner_has_pin(const struct partner *p, const char *b64)
{
	return p != NULL && b64 != NULL && list_contains(&p->pins, b64);
}

unsigned partner_connection_limit(const struct partner *p, const struct gateway_settings *gw)
{
	if (p != NULL && p->connection_limit != 0)
		return p->connection_limit;
	return gw != NULL ? gw->partner_connection_limit : 20;
}

/* ---- gateway settings ---- */

void gateway_defaults(struct gateway_settings *gw)
{
	gw->connection_limit = 1000;
	gw->partner_connection_limit = 20;
	gw->keepalive_interval = 300;
	gw->stream_establishment_timeout = 60;
	gw->stream_inactivity_timeout = 600;
	gw->subscription_refresh_interval = 28800;
	gw->log_message_bodies = false;
	gw->dialback_secret = NULL;
}

/* dst is overwritten, not cleared first: it may be uninitialised. */
int gateway_copy(struct gateway_settings *dst, const struct gateway_settings *src)
{
	char *secret = NULL;

	if (dst == src)
		return FG_OK;
	if (src->dialback_secret != NULL && (secret = strdup(src->dialback_secret)) == NULL)
		return FG_NOMEM;
	*dst = *src;
	dst->dialback_secret = secret;
	return FG_OK;
}

void gateway_clear(struct gateway_settings *gw)
{
	if (gw == NULL)
		return;
	/* The secret forges dialback keys for every local domain; do not
	 * leave it in freed heap memory. */
	if (gw->dialback_secret != NULL) {
		explicit_bzero(gw->dialback_secret, strlen(gw->dialback_secret));
		free(gw->dialback_secret);
	}
	memset(gw, 0, sizeof(*gw));
}

/* ---- values ---- */

struct spelling {
	const char *s;
	int v;
};

static const struct spelling negotiation_spellings[] = {
	{"required", NEG_REQUIRED},	      {"optional", NEG_OPTIONAL},
	{"not-supported", NEG_NOT_SUPPORTED}, {"notsupported", NEG_NOT_SUPPORTED},
	{"not_supported", NEG_NOT_SUPPORTED},
};

static const struct spelling partner_type_spellings[] = {
	{"federated", PT_FEDERATED},
	{"public-verified", PT_PUBLIC_VERIFIED},
	{"publicverified", PT_PUBLIC_VERIFIED},
	{"public_verified", PT_PUBLIC_VERIFIED},
	{"public-unverified", PT_PUBLIC_UNVERIFIED},
	{"publicunverified", PT_PUBLIC_UNVERIFIED},
	{"public_unverified", PT_PUBLIC_UNVERIFIED},
};

static const struct spelling bool_spellings[] = {
	{"true", 1},  {"$true", 1},  {"yes", 1}, {"1", 1}, {"on", 1},
	{"false", 0}, {"$false", 0}, {"no", 0},	 {"0", 0}, {"off", 0},
};

static const struct spelling dane_spellings[] = {
	{"off", DANE_OFF},
	{"opportunistic", DANE_OPPORTUNISTIC},
	{"required", DANE_REQUIRED},
};

static int lookup_spelling(const struct spelling *t, size_t n, const char *s, int *out)
{
	if (s == NULL)
		return FG_INVAL;
	for (size_t i = 0; i < n; i++) {
		if (ascii_casecmp(t[i].s, s) == 0) {
			*out = t[i].v;
			return FG_OK;
		}
	}
	return FG_INVAL;
}

int policy_parse_negotiation(const char *s, enum negotiation *out)
{
	int v;
	int rc = lookup_spelling(negotiation_spellings, FG_ARRAY_LEN(negotiation_spellings), s, &v);

	if (rc == FG_OK)
		*out = (enum negotiation)v;
	return rc;
}

int policy_parse_partner_type(const char *s, enum partner_type *out)
{
	int v;
	int rc = lookup_spelling(partner_type_spellings, FG_ARRAY_LEN(partner_type_spellings), s,
				 &v);

	if (rc == FG_OK)
		*out = (enum partner_type)v;
	return rc;
}

int policy_parse_bool(const char *s, bool *out)
{
	int v;
	int rc = lookup_spelling(bool_spellings, FG_ARRAY_LEN(bool_spellings), s, &v);

	if (rc == FG_OK)
		*out = v != 0;
	return rc;
}

int policy_parse_dane(const char *s, enum dane_mode *out)
{
	int v;
	int rc = lookup_spelling(dane_spellings, FG_ARRAY_LEN(dane_spellings), s, &v);

	if (rc == FG_OK)
		*out = (enum dane_mode)v;
	return rc;
}

const char *policy_dane_name(enum dane_mode d)
{
	switch (d) {
	case DANE_OFF: return "off";
	case DANE_OPPORTUNISTIC: return "opportunistic";
	case DANE_REQUIRED: return "required";
	}
	return "?";
}

const char *policy_negotiation_name(enum negotiation n)
{
	switch (n) {
	case NEG_REQUIRED: return "required";
	case NEG_OPTIONAL: return "optional";
	case NEG_NOT_SUPPORTED: return "not-supported";
	}
	return "unknown";
}

const char *policy_partner_type_name(enum partner_type t)
{
	switch (t) {
	case PT_FEDERATED: return "federated";
	case PT_PUBLIC_VERIFIED: return "public-verified";
	case PT_PUBLIC_UNVERIFIED: return "public-unverified";
	}
	return "unknown";
}

const char *policy_method_name(enum auth_method m)
{
	switch (m) {
	case AUTH_SASL_TLS: return "SASL over TLS";
	case AUTH_TLS_DIALBACK: return "TLS Dialback";
	case AUTH_TCP_DIALBACK: return "TCP Dialback";
	}
	return "unknown";
}

static const enum auth_method preference[] = {AUTH_SASL_TLS, AUTH_TLS_DIALBACK, AUTH_TCP_DIALBACK};

void policy_methods_string(unsigned methods, char *buf, size_t len)
{
	size_t o = 0;

	if (buf == NULL || len == 0)
		return;
	buf[0] = '\0';
	for (size_t i = 0; i < FG_ARRAY_LEN(preference); i++) {
		int n;

		if (!(methods & (unsigned)preference[i]))
			continue;
		n = snprintf(buf + o, len - o, "%s%s", o > 0 ? ", " : "",
			     policy_method_name(preference[i]));
		if (n < 0 || (size_t)n >= len - o)
			return; /* truncated, still NUL-terminated */
		o += (size_t)n;
	}
	if (o == 0)
		snprintf(buf, len, "none");
}

/* ---- the matrix ---- */

unsigned policy_allowed_methods(const struct partner *p)
{
	unsigned m = 0;

	if (p->tls != NEG_NOT_SUPPORTED && p->sasl != NEG_NOT_SUPPORTED)
		m |= AUTH_SASL_TLS;
	if (p->tls != NEG_NOT_SUPPORTED && p->dialback &&
	    !(p->tls == NEG_REQUIRED && p->sasl == NEG_REQUIRED))
		m |= AUTH_TLS_DIALBACK;
	if (p->tls != NEG_REQUIRED && p->dialback)
		m |= AUTH_TCP_DIALBACK;
	return m;
}

enum auth_method policy_preferred(unsigned methods)
{
	for (size_t i = 0; i < FG_ARRAY_LEN(preference); i++)
		if (methods & (unsigned)preference[i])
			return preference[i];
	return (enum auth_method)0;
}

static bool negotiation_valid(enum negotiation n)
{
	return n == NEG_REQUIRED || n == NEG_OPTIONAL || n == NEG_NOT_SUPPORTED;
}

/* The table is ordered by SASL, then TLS, then dialback true before false,
 * each in the enum's order; 0 for a record with an out-of-range value. */
int policy_matrix_row(const struct partner *p)
{
	if (!negotiation_valid(p->tls) || !negotiation_valid(p->sasl))
		return 0;
	return (int)p->sasl * 6 + (int)p->tls * 2 + (p->dialback ? 0 : 1) + 1;
}

/* ---- verdicts ---- */

static void vadd(char (*msgs)[320], size_t *n, const char *fmt, va_list ap)
{
	/* Past the cap further messages are dropped, not the verdict: the
	 * caller still gets REJECTED and the first POLICY_MAX_MESSAGES. */
	if (*n >= POLICY_MAX_MESSAGES)
		return;
	vsnprintf(msgs[*n], sizeof(msgs[*n]), fmt, ap);
	(*n)++;
}

/* field: the record's field (or setting) the error is about, a string
 * with static storage, so front-ends place the message beside it. */
__attribute__((format(printf, 3, 4), nonnull(2, 3))) static void
add_error(struct policy_verdict *v, const char *field, const char *fmt, ...)
{
	va_list ap;

	assert(field);
	if (v->nerrors < POLICY_MAX_MESSAGES)
		v->error_fields[v->nerrors] = field;
	va_start(ap, fmt);
	vadd(v->errors, &v->nerrors, fmt, ap);
	va_end(ap);
	v->verdict = VERDICT_REJECTED;
}

__attribute__((format(printf, 2, 3))) static void add_warning(struct policy_verdict *v,
							      const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vadd(v->warnings, &v->nwarnings, fmt, ap);
	va_end(ap);
}

static void verdict_init(struct policy_verdict *v)
{
	memset(v, 0, sizeof(*v));
	v->verdict = VERDICT_SAVED;
}

static void verdict_finish(struct policy_verdict *v)
{
	if (v->nerrors > 0)
		v->verdict = VERDICT_REJECTED;
	else if (v->nwarnings > 0)
		v->verdict = VERDICT_WARNING;
	else
		v->verdict = VERDICT_SAVED;
}

/* ---- domain checks ---- */

/* A name whose last label is all digits is an address in getaddrinfo's eyes
 * ("10.0.0" is 10.0.0.0), and no TLD is numeric (RFC 3696 §2). */
static bool numeric_last_label(const char *d)
{
	const char *dot = strrchr(d, '.');
	const char *l = dot != NULL ? dot + 1 : d;

	if (*l == '\0')
		return false;
	for (; *l != '\0'; l++)
		if (*l < '0' || *l > '9')
			return false;
	return true;
}

enum prep_rc { PREP_OK, PREP_INVALID, PREP_NOMEM };

/* Replaces *d by its prepared form. Partners are DNS names only: an IP
 * literal has no SRV record, cannot be a certificate's DNS-ID, and would
 * let a partner be pinned to an address instead of a domain. */
static enum prep_rc prepare_partner_domain(char **d)
{
	char *out = NULL;
	enum jid_err rc;

	if (*d == NULL || (*d)[0] == '\0')
		return PREP_INVALID;
	rc = jid_domain_prep(*d, strlen(*d), &out);
	if (rc == JID_ERR_NOMEM)
		return PREP_NOMEM;
	if (rc != JID_OK)
		return PREP_INVALID;
	if (out[0] == '[' || numeric_last_label(out)) {
		free(out);
		return PREP_INVALID;
	}
	free(*d);
	*d = out;
	return PREP_OK;
}

/* Local domains prepared once per check, so that "Contoso.TEST" in the
 * configuration still matches; a local name that does not prepare is kept
 * as given (it can then only match byte for byte). */
struct locals {
	char **v;
	size_t n;
};

static void locals_free(struct locals *l)
{
	for (size_t i = 0; i < l->n; i++)
		free(l->v[i]);
	free(l->v);
	l->v = NULL;
	l->n = 0;
}

static int locals_prepare(const struct domain_list *local, struct locals *out)
{
	out->v = NULL;
	out->n = 0;
	if (local == NULL || local->n == 0)
		return FG_OK;
	out->v = calloc(local->n, sizeof(char *));
	if (out->v == NULL)
		return FG_NOMEM;
	for (size_t i = 0; i < local->n; i++) {
		const char *s = local->v[i] != NULL ? local->v[i] : "";
		char *d = NULL;
		enum jid_err rc = jid_domain_prep(s, strlen(s), &d);

		if (rc == JID_ERR_NOMEM || (rc != JID_OK && (d = strdup(s)) == NULL)) {
			locals_free(out);
			return FG_NOMEM;
		}
		out->v[out->n++] = d;
	}
	return FG_OK;
}

static bool locals_contain(const struct locals *l, const char *d)
{
	for (size_t i = 0; i < l->n; i++)
		if (strcmp(l->v[i], d) == 0)
			return true;
	return false;
}

/* Returns whether the primary domain is valid (prepared) so that the checks
 * of additional domains know whether comparing with it means anything. */
static bool check_primary(const struct policy *pol, struct partner *p, bool is_new,
			  const struct locals *locals, struct policy_verdict *v, bool *nomem)
{
	char shown[SHOW_MAX + 8];
	const struct partner *q;
	enum prep_rc rc;

	if (p->domain == NULL || p->domain[0] == '\0') {
		add_error(v, "domain",
			  "domain: a primary domain is required; use a DNS name such as "
			  "fabrikam.com.");
		return false;
	}
	rc = prepare_partner_domain(&p->domain);
	if (rc == PREP_NOMEM) {
		*nomem = true;
		return false;
	}
	if (rc == PREP_INVALID) {
		add_error(v, "domain",
			  "domain: '%s' is not a valid domain name; use a DNS name such as "
			  "fabrikam.com.",
			  show(p->domain, shown, sizeof(shown)));
		return false;
	}
	if (locals_contain(locals, p->domain))
		add_error(v, "domain",
			  "domain: %s is a local domain of this gateway; a partner must be a "
			  "remote domain, so use the partner's own domain.",
			  p->domain);
	q = policy_lookup(pol, p->domain);
	if (q != NULL && strcmp(q->domain, p->domain) == 0) {
		if (is_new)
			add_error(v, "domain",
				  "domain: a partner for %s already exists; use 'partner set %s' "
				  "to change it.",
				  p->domain, p->domain);
	} else if (q != NULL) {
		add_error(v, "domain",
			  "domain: %s already belongs to partner %s as an additional domain; "
			  "remove it there first.",
			  p->domain, q->domain);
	}
	return true;
}

static void check_additional(const struct policy *pol, struct partner *p, bool primary_ok,
			     const struct locals *locals, struct policy_verdict *v, bool *nomem)
{
	struct domain_list *l = &p->additional_domains;
	char shown[SHOW_MAX + 8];
	bool *ok;

	if (l->n == 0)
		return;
	ok = calloc(l->n, sizeof(*ok));
	if (ok == NULL) {
		*nomem = true;
		return;
	}
	for (size_t i = 0; i < l->n; i++) {
		const struct partner *q;
		enum prep_rc rc = prepare_partner_domain(&l->v[i]);
		size_t earlier = 0;

		if (rc == PREP_NOMEM) {
			*nomem = true;
			break;
		}
		if (rc == PREP_INVALID) {
			add_error(v, "additional_domains",
				  "additional_domains: '%s' is not a valid domain name; use a DNS "
				  "name such as corp.fabrikam.com.",
				  show(l->v[i], shown, sizeof(shown)));
			continue;
		}
		ok[i] = true;
		if (primary_ok && strcmp(l->v[i], p->domain) == 0) {
			add_error(v, "additional_domains",
				  "additional_domains: %s is the primary domain; list only further "
				  "domains of the partner in additional_domains.",
				  l->v[i]);
			continue;
		}
		for (size_t j = 0; j < i; j++)
			if (ok[j] && strcmp(l->v[j], l->v[i]) == 0)
				earlier++;
		if (earlier > 0) {
			/* One message per repeated domain, however often. */
			if (earlier == 1)
				add_error(v, "additional_domains",
					  "additional_domains: %s is listed more than once; list "
					  "each domain once.",
					  l->v[i]);
			continue;
		}
		if (locals_contain(locals, l->v[i])) {
			add_error(
				v, "additional_domains",
				"additional_domains: %s is a local domain of this gateway; remove "
				"it from additional_domains.",
				l->v[i]);
			continue;
		}
		q = policy_lookup(pol, l->v[i]);
		/* The old version of this same partner may hold it: that is
		 * no conflict. */
		if (q == NULL || (p->domain != NULL && strcmp(q->domain, p->domain) == 0))
			continue;
		if (strcmp(q->domain, l->v[i]) == 0)
			add_error(v, "additional_domains",
				  "additional_domains: %s is the primary domain of partner %s; "
				  "remove it from additional_domains.",
				  l->v[i], q->domain);
		else
			add_error(v, "additional_domains",
				  "additional_domains: %s already belongs to partner %s; remove "
				  "it there first.",
				  l->v[i], q->domain);
	}
	free(ok);
}

static void check_matrix(const struct partner *p, struct policy_verdict *v)
{
	bool valid = true;

	if (!negotiation_valid(p->tls)) {
		add_error(v, "tls",
			  "tls_negotiation: %d is not a valid value; use required, optional or "
			  "not-supported.",
			  (int)p->tls);
		valid = false;
	}
	if (!negotiation_valid(p->sasl)) {
		add_error(v, "sasl",
			  "sasl_negotiation: %d is not a valid value; use required, optional or "
			  "not-supported.",
			  (int)p->sasl);
		valid = false;
	}
	if (!valid)
		return;
	if (p->tls == NEG_NOT_SUPPORTED && p->sasl != NEG_NOT_SUPPORTED)
		add_error(v, "sasl",
			  "SASL must have TLS support: tls is not-supported while sasl is %s; set "
			  "tls to required or optional, or set sasl to not-supported.",
			  policy_negotiation_name(p->sasl));
	else if (p->sasl == NEG_NOT_SUPPORTED && !p->dialback)
		add_error(v, "dialback",
			  "SASL or Dialback must be enabled: with sasl not-supported and "
			  "dialback false no authentication method is left; set dialback to "
			  "true, or set sasl to required or optional (with tls required or "
			  "optional).");
	if (p->tls == NEG_REQUIRED && p->sasl == NEG_REQUIRED && p->dialback)
		add_warning(v, "Dialback will not operate when both TLS and SASL are required: "
			       "streams with this partner use SASL over TLS only; set tls or "
			       "sasl to optional to let dialback operate, or set dialback to "
			       "false.");
	if (p->tls == NEG_OPTIONAL && p->sasl != NEG_NOT_SUPPORTED)
		add_warning(v, "SASL needs TLS; TLS optional may fail negotiation: if the "
			       "partner's server offers no STARTTLS, SASL over TLS cannot be "
			       "used; set tls to required to make sure it can.");
}

/* Parses "host", "host:port", "[v6]", "[v6]:port" or a bare IPv6 address
 * into the normalised "host[:port]" (host prepared, IPv6 bracketed, port
 * without leading zeros) that the connector can split at the last ':'. */
static enum prep_rc proxy_normalize(const char *s, char **out)
{
	const char *colon, *port = NULL;
	char host[JID_PART_MAX + 3];
	unsigned char bin[16];
	size_t hlen;
	unsigned long pn = 0;
	char *ph = NULL;
	enum jid_err rc;
	int n;

	*out = NULL;
	if (s[0] == '[') {
		const char *close = strchr(s, ']');

		if (close == NULL)
			return PREP_INVALID;
		hlen = (size_t)(close - s) + 1;
		if (close[1] == ':')
			port = close + 2;
		else if (close[1] != '\0')
			return PREP_INVALID;
	} else if ((colon = strchr(s, ':')) != NULL && strchr(colon + 1, ':') != NULL) {
		/* Two colons or more: only a bare IPv6 address fits. */
		if (strlen(s) > 64 || inet_pton(AF_INET6, s, bin) != 1)
			return PREP_INVALID;
		n = snprintf(host, sizeof(host), "[%s]", s);
		hlen = (size_t)n;
		s = host;
	} else {
		hlen = colon != NULL ? (size_t)(colon - s) : strlen(s);
		if (colon != NULL)
			port = colon + 1;
	}
	if (port != NULL) {
		size_t digits = strspn(port, "0123456789");

		if (digits == 0 || digits > 5 || port[digits] != '\0')
			return PREP_INVALID;
		pn = strtoul(port, NULL, 10);
		if (pn < 1 || pn > 65535)
			return PREP_INVALID;
	}
	if (hlen == 0 || hlen > JID_PART_MAX)
		return PREP_INVALID;
	rc = jid_domain_prep(s, hlen, &ph);
	if (rc == JID_ERR_NOMEM)
		return PREP_NOMEM;
	if (rc != JID_OK)
		return PREP_INVALID;
	if (ph[0] != '[' && numeric_last_label(ph) && inet_pton(AF_INET, ph, bin) != 1) {
		free(ph);
		return PREP_INVALID;
	}
	if (port == NULL) {
		*out = ph;
		return PREP_OK;
	}
	n = snprintf(NULL, 0, "%s:%lu", ph, pn);
	*out = malloc((size_t)n + 1);
	if (*out != NULL)
		snprintf(*out, (size_t)n + 1, "%s:%lu", ph, pn);
	free(ph);
	return *out != NULL ? PREP_OK : PREP_NOMEM;
}

static void check_proxy(struct partner *p, struct policy_verdict *v, bool *nomem)
{
	char shown[SHOW_MAX + 8];
	char *norm = NULL;
	enum prep_rc rc;

	if (p->proxy_fqdn == NULL || p->proxy_fqdn[0] == '\0')
		return;
	rc = proxy_normalize(p->proxy_fqdn, &norm);
	if (rc == PREP_NOMEM) {
		*nomem = true;
		return;
	}
	if (rc == PREP_INVALID) {
		add_error(v, "proxy_fqdn",
			  "proxy_fqdn: '%s' is not a valid host or host:port; use a DNS name or "
			  "IP address, optionally with a port from 1 to 65535, such as "
			  "proxy.fabrikam.com:5269.",
			  show(p->proxy_fqdn, shown, sizeof(shown)));
		return;
	}
	free(p->proxy_fqdn);
	p->proxy_fqdn = norm;
}

/* Pins and DANE both speak of the certificate a stream shows, so both need
 * a row that has TLS. Pins are rewritten in their stored spelling. */
static void check_keys(struct partner *p, struct policy_verdict *v, bool *nomem)
{
	char shown[SHOW_MAX + 8], norm[PIN_B64_LEN + 1];
	size_t bad = 0;

	if (p->dane != DANE_OFF && p->dane != DANE_OPPORTUNISTIC && p->dane != DANE_REQUIRED)
		add_error(v, "dane",
			  "dane: %d is not a valid value; use off, opportunistic or required.",
			  (int)p->dane);
	else if (p->dane != DANE_OFF && p->tls == NEG_NOT_SUPPORTED)
		add_error(v, "dane",
			  "dane: %s needs TLS, but tls is not-supported; set tls to optional or "
			  "required, or set dane to off.",
			  policy_dane_name(p->dane));
	if (p->pins.n > POLICY_MAX_PINS)
		add_error(v, "pins",
			  "pins: %zu pins are listed; at most %d are allowed (one per key the "
			  "partner uses, with the next one during a key change).",
			  p->pins.n, POLICY_MAX_PINS);
	for (size_t i = 0; i < p->pins.n; i++) {
		if (pin_normalize(p->pins.v[i], norm) != FG_OK) {
			if (bad++ == 0)
				add_error(v, "pins",
					  "pins: '%s' is not a SHA-256 public-key pin; give the 44 "
					  "base64 characters or 64 hex digits that 'fedgate probe "
					  "%s' prints as the key to pin.",
					  show(p->pins.v[i], shown, sizeof(shown)), p->domain);
			continue;
		}
		if (strcmp(norm, p->pins.v[i]) != 0) {
			char *d = xstrdup(norm);
			if (d == NULL) {
				*nomem = true;
				return;
			}
			free(p->pins.v[i]);
			p->pins.v[i] = d;
		}
	}
	if (p->pins.n > 0 && p->tls == NEG_NOT_SUPPORTED)
		add_error(v, "pins",
			  "pins: keys are pinned, but tls is not-supported, so no stream shows a "
			  "key; set tls to optional or required, or remove the pins.");
	else if (p->pins.n > 0 && p->tls == NEG_OPTIONAL)
		add_warning(v,
			    "Keys are pinned and TLS is optional: a stream from or to %s "
			    "without TLS shows no key and will be refused.",
			    p->domain);
}

static void check_description(struct partner *p, struct policy_verdict *v, bool *nomem)
{
	const unsigned char *s;
	size_t len;

	if (p->description == NULL) {
		p->description = xstrdup("");
		if (p->description == NULL)
			*nomem = true;
		return;
	}
	len = strlen(p->description);
	if (len > DESCRIPTION_MAX) {
		add_error(v, "description",
			  "description: %zu bytes is too long; shorten it to at most %u bytes.",
			  len, DESCRIPTION_MAX);
		return;
	}
	s = (const unsigned char *)p->description;
	for (size_t i = 0; i < len;) {
		uint32_t cp;
		size_t n = utf8_next(s + i, len - i, &cp);

		if (n == 0) {
			add_error(v, "description",
				  "description: the text is not valid UTF-8; enter it again "
				  "as UTF-8 text.");
			return;
		}
		if (is_control(cp) && cp != '\t') {
			add_error(v, "description",
				  "description: the text contains a control character (such as a "
				  "line break) at byte %zu; use a single line of text, where only "
				  "tabs are allowed.",
				  i);
			return;
		}
		i += n;
	}
}

int policy_check(const struct policy *pol, struct partner *p, bool is_new,
		 const struct domain_list *local, struct policy_verdict *v)
{
	struct locals locals;
	bool nomem = false, primary_ok;

	verdict_init(v);
	if (p == NULL) {
		add_error(v, "domain", "domain: no partner was given; give at least a domain.");
		return FG_INVAL;
	}
	if (locals_prepare(local, &locals) != FG_OK) {
		add_error(v, "policy", "policy: out of memory while checking; nothing was saved.");
		return FG_NOMEM;
	}
	/* SPEC §1 field order, so that messages read like the form. */
	primary_ok = check_primary(pol, p, is_new, &locals, v, &nomem);
	if (!nomem)
		check_description(p, v, &nomem);
	if (!nomem)
		check_additional(pol, p, primary_ok, &locals, v, &nomem);
	if (p->type != PT_FEDERATED && p->type != PT_PUBLIC_VERIFIED &&
	    p->type != PT_PUBLIC_UNVERIFIED)
		add_error(v, "partner_type",
			  "partner_type: %d is not a valid value; use federated, public-verified "
			  "or public-unverified.",
			  (int)p->type);
	check_matrix(p, v);
	if (p->connection_limit > CONNECTION_LIMIT_MAX)
		add_error(v, "connection_limit",
			  "connection_limit: %u is out of range; use 0 for the gateway's "
			  "partner_connection_limit, or a number from 1 to %u.",
			  p->connection_limit, CONNECTION_LIMIT_MAX);
	if (!nomem)
		check_proxy(p, v, &nomem);
	if (!nomem)
		check_keys(p, v, &nomem);
	locals_free(&locals);
	v->allowed_methods = policy_allowed_methods(p);
	if (nomem) {
		add_error(v, "policy", "policy: out of memory while checking; nothing was saved.");
		return FG_NOMEM;
	}
	verdict_finish(v);
	return v->verdict == VERDICT_REJECTED ? FG_INVAL : FG_OK;
}

/* ---- the set ---- */

struct policy {
	struct partner **v; /* sorted by primary domain */
	size_t n, cap;
	struct strmap *by_domain; /* every domain, primary or additional -> partner */
};

/* The domains of p, primary first: i in [0, 1 + additional). */
static const char *domain_at(const struct partner *p, size_t i)
{
	return i == 0 ? p->domain : p->additional_domains.v[i - 1];
}

static size_t ndomains(const struct partner *p)
{
	return 1 + p->additional_domains.n;
}

/* Points every domain of p at p. Only keys that are not in the map yet
 * allocate; when one cannot, the keys added here are taken out again and
 * the map is as it was (FG_NOMEM). Replacing a present key allocates
 * nothing, so that part cannot fail. */
static int map_add_partner(struct strmap *m, struct partner *p)
{
	size_t added = 0;
	for (size_t i = 0; i < ndomains(p); i++) {
		const char *d = domain_at(p, i);
		if (strmap_get(m, d))
			continue;
		if (strmap_put(m, d, p, NULL) != FG_OK) {
			for (size_t k = 0; k < i && added; k++) {
				const char *dk = domain_at(p, k);
				if (strmap_get(m, dk) == p) {
					strmap_remove(m, dk);
					added--;
				}
			}
			return FG_NOMEM;
		}
		added++;
	}
	for (size_t i = 0; i < ndomains(p); i++)
		strmap_put(m, domain_at(p, i), p, NULL);
	return FG_OK;
}

/* Takes out the domains that still point at p (a replacement may have
 * taken some over already). */
static void map_remove_partner(struct strmap *m, const struct partner *p)
{
	for (size_t i = 0; i < ndomains(p); i++)
		if (strmap_get(m, domain_at(p, i)) == p)
			strmap_remove(m, domain_at(p, i));
}

struct policy *policy_new(void)
{
	struct policy *pol = calloc(1, sizeof(*pol));

	if (pol == NULL)
		return NULL;
	pol->by_domain = strmap_new();
	if (pol->by_domain == NULL) {
		free(pol);
		return NULL;
	}
	return pol;
}

void policy_free(struct policy **ppol)
{
	struct policy *pol;

	if (ppol == NULL || *ppol == NULL)
		return;
	pol = *ppol;
	for (size_t i = 0; i < pol->n; i++)
		partner_free(&pol->v[i]);
	free(pol->v);
	strmap_free(&pol->by_domain, NULL);
	free(pol);
	*ppol = NULL;
}

size_t policy_count(const struct policy *pol)
{
	return pol != NULL ? pol->n : 0;
}

const struct partner *policy_at(const struct policy *pol, size_t i)
{
	return pol != NULL && i < pol->n ? pol->v[i] : NULL;
}

const struct partner *policy_lookup(const struct policy *pol, const char *domain)
{
	if (pol == NULL || domain == NULL)
		return NULL;
	return strmap_get(pol->by_domain, domain);
}

const struct partner *policy_get(const struct policy *pol, const char *domain)
{
	const struct partner *p = policy_lookup(pol, domain);

	return p != NULL && strcmp(p->domain, domain) == 0 ? p : NULL;
}

/* Index of the partner with primary `domain`, or where it would go. */
static size_t array_search(const struct policy *pol, const char *domain, bool *found)
{
	size_t lo = 0, hi = pol->n;

	*found = false;
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		int c = strcmp(pol->v[mid]->domain, domain);

		if (c == 0) {
			*found = true;
			return mid;
		}
		if (c < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

/* All allocation happens before the set is touched, so a failure leaves it
 * exactly as it was. p is owned by the set afterwards, or freed on failure:
 * ownership passes either way, so callers never free it after the call. */
int policy_put(struct policy *pol, struct partner *p)
{
	size_t pos;
	bool found;
	int rc;

	if (pol == NULL || p == NULL || p->domain == NULL) {
		partner_free(&p);
		return FG_INVAL;
	}
	/* A domain of another partner would make lookups ambiguous and the
	 * table inconsistent on removal; policy_check() refuses it, and
	 * this keeps a bypassed check from corrupting the set. */
	for (size_t i = 0; i <= p->additional_domains.n; i++) {
		const char *d = i == 0 ? p->domain : p->additional_domains.v[i - 1];
		const struct partner *q = policy_lookup(pol, d);

		if (d == NULL || (q != NULL && strcmp(q->domain, p->domain) != 0)) {
			partner_free(&p);
			return FG_INVAL;
		}
	}
	pos = array_search(pol, p->domain, &found);
	if (!found && pol->n == pol->cap) {
		size_t cap = pol->cap != 0 ? pol->cap * 2 : 16;
		struct partner **v = realloc(pol->v, cap * sizeof(*v));

		if (v == NULL) {
			partner_free(&p);
			return FG_NOMEM;
		}
		pol->v = v;
		pol->cap = cap;
	}
	/* The only step that can fail comes first and undoes itself. */
	rc = map_add_partner(pol->by_domain, p);
	if (rc != FG_OK) {
		partner_free(&p);
		return rc;
	}
	if (found) {
		struct partner *old = pol->v[pos];

		map_remove_partner(pol->by_domain, old);
		pol->v[pos] = p;
		partner_free(&old);
	} else {
		memmove(pol->v + pos + 1, pol->v + pos, (pol->n - pos) * sizeof(*pol->v));
		pol->v[pos] = p;
		pol->n++;
	}
	assert(policy_lookup(pol, p->domain) == p);
	return FG_OK;
}

int policy_remove(struct policy *pol, const char *domain)
{
	struct partner *old;
	size_t pos;
	bool found;

	if (pol == NULL || domain == NULL)
		return FG_NOTFOUND;
	pos = array_search(pol, domain, &found);
	if (!found)
		return FG_NOTFOUND;
	old = pol->v[pos];
	map_remove_partner(pol->by_domain, old);
	memmove(pol->v + pos, pol->v + pos + 1, (pol->n - pos - 1) * sizeof(*pol->v));
	pol->n--;
	partner_free(&old);
	return FG_OK;
}

struct policy *policy_clone(const struct policy *pol)
{
	struct policy *c;

	if (pol == NULL)
		return NULL;
	c = policy_new();
	if (c == NULL)
		return NULL;
	c->cap = pol->n != 0 ? pol->n : 16;
	c->v = calloc(c->cap, sizeof(*c->v));
	if (c->v == NULL)
		goto fail;
	for (size_t i = 0; i < pol->n; i++) {
		struct partner *p = partner_clone(pol->v[i]);

		if (p == NULL)
			goto fail;
		c->v[c->n++] = p;
		if (map_add_partner(c->by_domain, p) != FG_OK)
			goto fail;
	}
	return c;
fail:
	policy_free(&c);
	return NULL;
}

/* ---- gateway validation ---- */

struct gw_range {
	const char *name;
	size_t off;
	unsigned min, max;
	const char *unit; /* "a number" or "a number of seconds" */
};

static const struct gw_range gw_ranges[] = {
	{"connection_limit", offsetof(struct gateway_settings, connection_limit), 1, 100000,
	 "a number"},
	{"partner_connection_limit", offsetof(struct gateway_settings, partner_connection_limit), 1,
	 10000, "a number"},
	{"keepalive_interval", offsetof(struct gateway_settings, keepalive_interval), 10, 3600,
	 "a number of seconds"},
	{"stream_establishment_timeout",
	 offsetof(struct gateway_settings, stream_establishment_timeout), 5, 3600,
	 "a number of seconds"},
	{"stream_inactivity_timeout", offsetof(struct gateway_settings, stream_inactivity_timeout),
	 30, 86400, "a number of seconds"},
	{"subscription_refresh_interval",
	 offsetof(struct gateway_settings, subscription_refresh_interval), 60, 604800,
	 "a number of seconds"},
};

#define DIALBACK_SECRET_MIN 16u

int gateway_check(const struct gateway_settings *gw, struct policy_verdict *v)
{
	verdict_init(v);
	for (size_t i = 0; i < FG_ARRAY_LEN(gw_ranges); i++) {
		const struct gw_range *r = &gw_ranges[i];
		unsigned val;

		memcpy(&val, (const char *)gw + r->off, sizeof(val));
		if (val < r->min || val > r->max)
			add_error(v, r->name, "%s: %u is out of range; use %s from %u to %u.",
				  r->name, val, r->unit, r->min, r->max);
	}
	/* Only when both are in range: otherwise the range message already
	 * says what to fix, and a second one about the same value confuses. */
	if (gw->connection_limit >= 1 && gw->connection_limit <= 100000 &&
	    gw->partner_connection_limit >= 1 && gw->partner_connection_limit <= 10000 &&
	    gw->partner_connection_limit > gw->connection_limit)
		add_error(v, "partner_connection_limit",
			  "partner_connection_limit: %u is above connection_limit (%u); lower "
			  "partner_connection_limit or raise connection_limit.",
			  gw->partner_connection_limit, gw->connection_limit);
	/* Neither the value nor its length: messages reach logs and the audit
	 * trail, and the length narrows a guess. */
	if (gw->dialback_secret != NULL && strlen(gw->dialback_secret) < DIALBACK_SECRET_MIN)
		add_error(v, "dialback_secret",
			  "dialback_secret: the secret is too short; use at least %u bytes, or "
			  "leave it unset to have one generated.",
			  DIALBACK_SECRET_MIN);
	verdict_finish(v);
	return v->verdict == VERDICT_REJECTED ? FG_INVAL : FG_OK;
}

bool policy_auto_approves(enum partner_type t)
{
	return t == PT_FEDERATED || t == PT_PUBLIC_VERIFIED;
}

bool policy_needs_contact(enum partner_type t)
{
	return t == PT_PUBLIC_UNVERIFIED;
}

bool policy_strips_status(enum partner_type t)
{
	return t != PT_FEDERATED;
}

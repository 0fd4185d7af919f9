/* XMPP federated partners: the record, the negotiation matrix (SPEC §2),
 * value parsing, validation verdicts, and the set of partners with O(1)
 * lookup of a remote domain. Pure logic: no I/O, no store, no JSON. */
#ifndef FG_POLICY_H
#define FG_POLICY_H

#include <stdbool.h>
#include <stddef.h>

enum negotiation { NEG_REQUIRED = 0, NEG_OPTIONAL = 1, NEG_NOT_SUPPORTED = 2 };
enum partner_type { PT_FEDERATED = 0, PT_PUBLIC_VERIFIED = 1, PT_PUBLIC_UNVERIFIED = 2 };
/* DANE (RFC 7672/7673) for a partner's streams: off never looks up TLSA;
 * opportunistic uses DNSSEC-secure TLSA records when there are some;
 * required refuses a stream without secure, matching ones. */
enum dane_mode { DANE_OFF = 0, DANE_OPPORTUNISTIC = 1, DANE_REQUIRED = 2 };

/* Authentication methods of a server-to-server stream (bit set). */
enum auth_method {
	AUTH_SASL_TLS = 1 << 0,	    /* STARTTLS, then SASL EXTERNAL (XEP-0178) */
	AUTH_TLS_DIALBACK = 1 << 1, /* STARTTLS, then Server Dialback */
	AUTH_TCP_DIALBACK = 1 << 2, /* Server Dialback without TLS */
};

struct domain_list {
	char **v;
	size_t n;
};

/* One partner. Strings are malloc'ed and owned by the record; domains are
 * stored prepared (lower case, A-labels), as jid_domain_prep gives them. */
struct partner {
	char *domain;
	char *description; /* never NULL; "" when empty */
	struct domain_list additional_domains;
	enum partner_type type;
	enum negotiation tls;
	enum negotiation sasl;
	bool dialback;
	bool keepalive;
	unsigned connection_limit; /* 0 = the gateway's partner_connection_limit */
	char *proxy_fqdn;	   /* NULL or "" = DNS SRV lookup; "host" or "host:port" */
	bool enabled;		   /* false: suspended by the admin, no federation either way */
	bool bidi;		   /* XEP-0288: one stream may carry both directions */
	enum dane_mode dane;
	/* SPKI pins: when non-empty, only a certificate whose public key's
	 * SHA-256 (base64, 44 characters, as pin_normalize() gives it) is
	 * listed here proves this partner, whatever the CAs say. */
	struct domain_list pins;
};

/* What a suspended partner (enabled false) is told, and the senders of
 * stanzas to it: a printf format taking the partner's domain. */
#define PARTNER_SUSPENDED_FMT "federation with %s is suspended by the administrator"

/* Gateway-wide settings (SPEC §3, Lync's CsXmppGatewayConfiguration). */
struct gateway_settings {
	unsigned connection_limit;		/* 1000 */
	unsigned partner_connection_limit;	/* 20 */
	unsigned keepalive_interval;		/* seconds, 300 */
	unsigned stream_establishment_timeout;	/* seconds, 60 */
	unsigned stream_inactivity_timeout;	/* seconds, 600 */
	unsigned subscription_refresh_interval; /* seconds, 28800 */
	bool log_message_bodies;		/* false */
	char *dialback_secret;			/* NULL until generated; never printed */
};

/* ---- records ---- */

/* A partner with the SPEC §1 defaults and a copy of domain (not prepared:
 * policy_check() prepares and validates). NULL when out of memory. */
struct partner *partner_new(const char *domain);
struct partner *partner_clone(const struct partner *p);
void partner_free(struct partner **p);
/* Field-by-field equality (additional domains compared as sets). */
bool partner_equal(const struct partner *a, const struct partner *b);
/* Whether domain (prepared) is p's primary or one of its additional
 * domains. NULL p or domain: false. The one answer to "does this partner
 * own that domain" for streams, routes and partner changes. */
bool policy_owns(const struct partner *p, const char *domain);
int partner_add_domain(struct partner *p, const char *domain);	   /* FG_OK / FG_NOMEM */
bool partner_remove_domain(struct partner *p, const char *domain); /* false: not there */
void partner_clear_domains(struct partner *p);
/* Pins are compared in their normalized form; adding one that is there is
 * a no-op. p's pins are normalized by policy_check(). */
int partner_add_pin(struct partner *p, const char *pin);     /* FG_OK / FG_NOMEM */
bool partner_remove_pin(struct partner *p, const char *pin); /* false: not there */
void partner_clear_pins(struct partner *p);
/* Whether b64 (normalized) is among p's pins. */
bool partner_has_pin(const struct partner *p, const char *b64);
/* The effective per-partner stream limit. */
unsigned partner_connection_limit(const struct partner *p, const struct gateway_settings *gw);

void gateway_defaults(struct gateway_settings *gw);
int gateway_copy(struct gateway_settings *dst, const struct gateway_settings *src);
void gateway_clear(struct gateway_settings *gw);

/* ---- values: accepted case-insensitively, kebab or Lync spelling;
 * printed always in kebab form. Return FG_OK or FG_INVAL. ---- */
int policy_parse_negotiation(const char *s,
			     enum negotiation *out); /* Required, NotSupported, not-supported */
int policy_parse_partner_type(const char *s,
			      enum partner_type *out); /* PublicVerified, public-verified */
int policy_parse_bool(const char *s, bool *out); /* true/false, $true/$false, yes/no, 1/0, on/off */
int policy_parse_dane(const char *s, enum dane_mode *out); /* off, opportunistic, required */
const char *policy_dane_name(enum dane_mode d);
const char *policy_negotiation_name(enum negotiation n);
const char *policy_partner_type_name(enum partner_type t);
/* "SASL over TLS", "TLS Dialback", "TCP Dialback" */
const char *policy_method_name(enum auth_method m);
/* Comma-separated names in preference order into buf, "none" when empty. */
void policy_methods_string(unsigned methods, char *buf, size_t len);

/* ---- partner types (SPEC §4): what a partner's users may do ---- */

/* A subscription request from the partner's users is approved without
 * asking the local user (federated, public-verified). */
bool policy_auto_approves(enum partner_type t);
/* A subscription request or message reaches a local user only from
 * contacts that user added (public-unverified). */
bool policy_needs_contact(enum partner_type t);
/* Presence sent to the partner's users loses its <status/> notes
 * (public-verified, public-unverified). */
bool policy_strips_status(enum partner_type t);

/* ---- the matrix ---- */

/* SPEC §2:
 *  SASL over TLS iff tls != not-supported and sasl != not-supported;
 *  TLS Dialback iff tls != not-supported and dialback and
 *                   not (tls = required and sasl = required);
 *  TCP Dialback iff tls != required and dialback. */
unsigned policy_allowed_methods(const struct partner *p);
/* The most preferred method among `methods` (SASL over TLS, then TLS
 * Dialback, then TCP Dialback); 0 when none. */
enum auth_method policy_preferred(unsigned methods);
/* 1..18: the row of SPEC §2's table this partner's tls/sasl/dialback are. */
int policy_matrix_row(const struct partner *p);

enum verdict { VERDICT_SAVED = 0, VERDICT_WARNING = 1, VERDICT_REJECTED = 2 };

#define POLICY_MAX_MESSAGES 8
#define POLICY_MAX_PINS	    8
/* What a save would do. Messages are whole sentences that name the field(s)
 * and say how to resolve the problem. */
struct policy_verdict {
	enum verdict verdict;
	unsigned allowed_methods;
	size_t nerrors, nwarnings;
	char errors[POLICY_MAX_MESSAGES][320];
	/* errors[i] is about error_fields[i]: a partner field ("domain",
	 * "tls", "sasl", "dialback", ...) or a gateway setting's name;
	 * static strings. */
	const char *error_fields[POLICY_MAX_MESSAGES];
	char warnings[POLICY_MAX_MESSAGES][320];
};

/* ---- the set of partners ---- */

struct policy; /* all partners, with O(1) lookup by any of their domains */

struct policy *policy_new(void);
void policy_free(struct policy **pol);
size_t policy_count(const struct policy *pol);
/* Partners in primary-domain order (stable for listings); i < count. */
const struct partner *policy_at(const struct policy *pol, size_t i);
/* The partner whose primary or additional domain is `domain` (prepared,
 * exact bytes), or NULL. O(1) expected. */
const struct partner *policy_lookup(const struct policy *pol, const char *domain);
/* The partner whose PRIMARY domain is `domain`, or NULL. */
const struct partner *policy_get(const struct policy *pol, const char *domain);

/* Validates p as a new partner (is_new) or as the new version of the
 * partner with the same primary domain, against the set and the local
 * domains: prepares every domain in place (p is modified: domains become
 * prepared), checks the matrix, domain syntax, uniqueness (a primary is no
 * other partner's primary or additional domain; an additional domain belongs
 * to one partner only; no domain is local; no duplicates within p),
 * description/proxy_fqdn syntax and connection_limit range (0..100000).
 * Fills v; returns FG_OK when the verdict is SAVED or WARNING, FG_INVAL when
 * REJECTED. `local` may be NULL. */
int policy_check(const struct policy *pol, struct partner *p, bool is_new,
		 const struct domain_list *local, struct policy_verdict *v);

/* Mutations take ownership of p. They assume policy_check() passed. */
int policy_put(struct policy *pol, struct partner *p);	   /* insert or replace by primary */
int policy_remove(struct policy *pol, const char *domain); /* FG_OK / FG_NOTFOUND */
/* A deep copy (for building a new set to swap in atomically). */
struct policy *policy_clone(const struct policy *pol);

/* Gateway settings validation: ranges, with messages naming the field and
 * the allowed range. Returns FG_OK or FG_INVAL. */
int gateway_check(const struct gateway_settings *gw, struct policy_verdict *v);

#endif

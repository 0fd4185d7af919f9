/* The last 24 hours of each partner, for its panel page and `fedgate
 * partner history`: stanzas in and out per minute (a ring of 1440 buckets
 * per direction) and the last connection events (stream up, stream closed,
 * attempt failed; at most HISTORY_EVENTS, none older than 24 h).
 *
 * Only partners have a history: it is made when a partner is added (or at
 * start for those in the store), kept across a change of its record, and
 * freed when it is removed, so a stranger cannot grow it. Traffic to or
 * from a partner's additional domain counts for the partner (its primary
 * domain is the key). Counting a stanza allocates nothing. Kept in memory
 * only: a restart starts empty.
 *
 * Time is a parameter of the functions that take `now`, so that a test can
 * roll the ring over minutes and days; the *_note wrappers use the clock. */
#ifndef FG_HISTORY_H
#define FG_HISTORY_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <time.h>

struct history;
struct policy;
struct xmpp_server;

#define HISTORY_MINUTES	   1440 /* one bucket per minute: 24 hours */
#define HISTORY_MINUTE_S   60
#define HISTORY_SPAN_S	   (HISTORY_MINUTES * HISTORY_MINUTE_S)
#define HISTORY_EVENTS	   100 /* connection events kept per partner */
#define HISTORY_TEXT_MAX   600 /* a reason longer than this is cut */
#define HISTORY_DOMAIN_MAX 1023

enum history_kind {
	HISTORY_CONNECTED, /* a stream authenticated */
	HISTORY_CLOSED,	   /* an authenticated stream ended */
	HISTORY_FAILED,	   /* an outbound attempt failed */
};

struct history *history_new(void);
void history_free(struct history **h);

/* domain (a partner's primary domain) gets a history; one it has already
 * is kept. FG_OK / FG_NOMEM. */
int history_partner_add(struct history *h, const char *domain);
void history_partner_remove(struct history *h, const char *domain);
size_t history_partners(const struct history *h);

/* One stanza to (in false) or from (in true) remote, a domain of a partner
 * in partners (NULL: remote is the key itself). Nothing happens for a
 * domain of no partner. */
void history_stanza(struct history *h, const struct policy *partners, const char *remote, bool in,
		    time_t now);
/* A connection event of the stream between local and remote; method
 * ("SASL over TLS", "TLS Dialback"...) and reason may be NULL. */
void history_event(struct history *h, const struct policy *partners, enum history_kind kind,
		   bool in, const char *local, const char *remote, const char *method,
		   const char *reason, time_t now);

/* The `partner history` result of the partner whose primary domain is
 * domain, as of now: {"domain", "now", "since", "minute_seconds",
 * "stanzas_in": [1440], "stanzas_out": [1440], "events": [...]} (oldest
 * first); NULL when it has no history (or out of memory). */
json_t *history_json(const struct history *h, const char *domain, time_t now);

/* The same, on the daemon's history (srv->history, srv->live->partners)
 * at the current time; nothing when the daemon keeps none. */
void history_note_stanza(struct xmpp_server *srv, const char *remote, bool in);
void history_note_event(struct xmpp_server *srv, enum history_kind kind, bool in, const char *local,
			const char *remote, const char *method, const char *reason);

#endif

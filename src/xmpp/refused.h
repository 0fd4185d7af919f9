/* Who tried to federate with us: domains that are not partners, seen
 * authenticating on an inbound stream or as the destination of a local
 * user's stanza, counted per domain so that an admin can see who knocks and
 * add them as partners (issue 13's "who tried to federate"). Kept in memory
 * only, at most REFUSED_MAX domains (the least recent goes first). */
#ifndef FG_REFUSED_H
#define FG_REFUSED_H

#include <jansson.h>

struct xmpp_server;

#define REFUSED_MAX 500

enum refused_dir {
	REFUSED_INBOUND,  /* a server authenticated (or tried to) as domain */
	REFUSED_OUTBOUND, /* a local user sent a stanza to domain */
};

/* Counts one refusal of domain (a prepared domain name); who is the peer's
 * address (inbound) or the local sender's bare JID (outbound), kept as the
 * last one seen. */
void refused_note(struct xmpp_server *srv, const char *domain, enum refused_dir dir,
		  const char *who);
/* Appends one row per domain, most recent first: {"domain", "inbound",
 * "outbound", "first", "last", "last_from"} (times as UTC text). */
void refused_rows(struct xmpp_server *srv, json_t *rows);
/* domain became a partner: it is no longer refused. */
void refused_forget(struct xmpp_server *srv, const char *domain);
void refused_free_all(struct xmpp_server *srv);

#endif

/* Where a stanza goes. For now: stanzas that arrived from an authenticated
 * partner stream and are addressed to a local domain. Local users come
 * with client sessions; until then every one of them is answered as RFC
 * 6120/6121 prescribe for an address with no account, so nothing is lost
 * silently. */
#ifndef FG_ROUTER_H
#define FG_ROUTER_H

#include "xml.h"

#include <stdbool.h>

struct server;

/* stanza (taken) came from remote_domain, authenticated on its stream;
 * its from and to were checked by the stream. */
void router_from_partner(struct server *srv, struct xml_node *stanza);

/* A stanza (taken) from a local address to a remote one: over the
 * authenticated outbound stream for that domain pair when the domain is a
 * partner's, else refused at once with the reason (SPEC §3: federation is
 * an allow-list). done (may be NULL) learns the outcome with a report. */
typedef void (*router_done)(void *ud, bool ok, const char *report);
void router_to_partner(struct server *srv, struct xml_node *stanza, router_done done, void *ud);

/* Answers stanza (taken) to its sender with a stanza error (RFC 6120 §8.3):
 * from/to swapped, type='error', the original's children kept, then
 * <error type=TYPE><CONDITION/><text/></error>. Error stanzas are never
 * answered (no loops). */
void router_bounce(struct server *srv, struct xml_node *stanza, const char *type,
		   const char *condition, const char *text);

#endif

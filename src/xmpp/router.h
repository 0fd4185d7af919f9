/* Where a stanza goes (RFC 6120 §10, RFC 6121 §8). Every stanza inside the
 * daemon is in jabber:server with a stamped from: c2s.c moves a client's
 * stanzas there, and c2s_deliver moves them back.
 *
 * Local addresses: the server itself (service.c), an account on its
 * behalf, a bound resource, or offline storage. Remote addresses: only a
 * partner's domains, over the outbound stream for that pair (SPEC §3).
 * Stanzas between a partner's users and local users pass SPEC §4's
 * partner-type rules and the per-user xmpp_access switch here. */
#ifndef FG_ROUTER_H
#define FG_ROUTER_H

#include "xml.h"

#include <stdbool.h>

struct xmpp_server;
struct session;

/* A stanza (taken) from an authenticated partner stream; its from and to
 * were checked by the stream. */
void router_from_partner(struct xmpp_server *srv, struct xml_node *stanza);

/* A stanza (taken) from the client session c, from stamped. */
void router_from_client(struct xmpp_server *srv, struct session *c, struct xml_node *stanza);

/* A stanza (taken) with from and to set, from a local address: delivered
 * locally or sent to a partner; undeliverable ones bounce. */
void router_route(struct xmpp_server *srv, struct xml_node *stanza);

/* A stanza (taken) from a local address to a remote one: over the
 * authenticated outbound stream for that domain pair when the domain is a
 * partner's, else refused at once with the reason (SPEC §3: federation is
 * an allow-list). done (may be NULL) learns the outcome with a report; when
 * it is NULL a refused stanza bounces to its sender. */
typedef void (*router_done)(void *ud, bool ok, const char *report);
void router_to_partner(struct xmpp_server *srv, struct xml_node *stanza, router_done done,
		       void *ud);

/* A stanza (taken) another node of the cluster forwarded here
 * (cluster.c): local_only, for this node's sessions of the bare JID
 * only; else routed here as if it had arrived here, never forwarded
 * again. */
void router_from_cluster(struct xmpp_server *srv, struct xml_node *st, bool local_only);

/* Answers stanza (taken) to its sender with a stanza error (RFC 6120 §8.3):
 * from/to swapped, type='error', the original's children kept, then
 * <error type=TYPE><CONDITION/><text/></error>. Error stanzas are never
 * answered (no loops). */
void router_bounce(struct xmpp_server *srv, struct xml_node *stanza, const char *type,
		   const char *condition, const char *text);

/* Hook for `fedgate test-im`: consulted for every stanza addressed to a
 * local full JID before delivery; returns true when it took the stanza. */
typedef bool (*router_tap_fn)(struct xmpp_server *srv, struct xml_node *stanza);
void router_set_tap(router_tap_fn fn);

#endif

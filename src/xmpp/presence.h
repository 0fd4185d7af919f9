/* Presence and subscriptions (RFC 6121 §3-§4) with SPEC §4's partner-type
 * rules: a client's broadcasts, directed presence, probes (local and over
 * s2s, with the periodic refresh of remote contacts), the subscription
 * state machine on both sides, and unavailable presence when a session
 * ends. Stanzas here are in jabber:server and carry a stamped from. */
#ifndef FG_PRESENCE_H
#define FG_PRESENCE_H

#include "xml.h"

struct xmpp_server;
struct session;

/* A presence stanza (taken) sent by the client session c. */
void presence_from_client(struct xmpp_server *srv, struct session *c, struct xml_node *st);
/* A presence stanza (taken) addressed to a local account (bare or full
 * JID), from a local user or a partner's (whose stanzas already passed the
 * partner-type gate of the router). */
void presence_to_account(struct xmpp_server *srv, struct xml_node *st);
/* The session is going away: unavailable to everyone who saw it.
 * presence_start registers it as the session-end observer (xmpp.h). */
void presence_session_end(struct xmpp_server *srv, struct session *c);
/* A session of another node ended without a word (the node died,
 * cluster.c): its unavailable presence, from full, to each contact with a
 * subscription from the user. Directed presence is lost with the node. */
void presence_gone_elsewhere(struct xmpp_server *srv, const char *full);
/* Starts the periodic re-probe of remote contacts
 * (subscription_refresh_interval). */
int presence_start(struct xmpp_server *srv);
void presence_stop(struct xmpp_server *srv);
/* subscription_refresh_interval changed: the next re-probe is one new
 * interval from now. */
int presence_reschedule(struct xmpp_server *srv);

#endif

/* Client sessions (RFC 6120 §6-§7): SASL on a client stream, resource
 * binding, the registry of bound sessions by bare JID, and the intake of
 * a client's stanzas (from checked and stamped) before the router. */
#ifndef FG_C2S_H
#define FG_C2S_H

#include "xml.h"

#include <stdbool.h>

struct xmpp_server;
struct stream;
struct c2s;

#define XML_NS_BIND    "urn:ietf:params:xml:ns:xmpp-bind"
#define XML_NS_SESSION "urn:ietf:params:xml:ns:xmpp-session"

/* Per-stream state; stream.c creates it with the stream and frees it when
 * the stream is gone (which ends the session: unavailable presence). */
struct c2s *c2s_new(struct xmpp_server *srv, struct stream *s);
void c2s_free(struct c2s **c);
/* The stream is closing: the session leaves the registry and its
 * unavailable presence goes out. Safe to call more than once. */
void c2s_end(struct c2s *c);
/* Stream features for the state of the stream. FG_OK / FG_NOMEM. */
int c2s_features(struct c2s *c, struct xml_node *features, bool secure, bool authed);
/* A SASL element (<auth/>, <response/>, <abort/>) before authentication. */
void c2s_negotiate(struct c2s *c, const struct xml_node *el);
/* A stanza (taken) on an authenticated client stream. */
void c2s_stanza(struct c2s *c, struct xml_node *st);

/* ---- the registry of bound sessions ---- */

/* The first bound session of a user (bare JID), or NULL; then c2s_next. */
struct c2s *c2s_first(struct xmpp_server *srv, const char *bare);
struct c2s *c2s_next(const struct c2s *c);
struct c2s *c2s_find(struct xmpp_server *srv, const char *bare, const char *resource);
unsigned c2s_count(const struct xmpp_server *srv);
/* Sends stanza (taken) to the client, in the client namespace. */
void c2s_deliver(struct c2s *c, struct xml_node *st);
const char *c2s_full(const struct c2s *c);
const char *c2s_bare(const struct c2s *c);
/* Presence state, kept by presence.c. */
struct c2s_presence {
	bool initial;	 /* it has sent its initial presence */
	bool interested; /* it asked for the roster: gets roster pushes */
	int priority;
	struct xml_node *last;	 /* its available presence; NULL while unavailable */
	struct strmap *directed; /* full JIDs it sent directed presence to */
};
struct c2s_presence *c2s_presence(struct c2s *c);
/* Ends a session with a stream error (conflict, policy-violation...). */
void c2s_close(struct c2s *c, const char *condition, const char *text);
/* Every session (for the subscription refresh and status). */
void c2s_each(struct xmpp_server *srv, void (*fn)(void *ud, struct c2s *c), void *ud);

#endif

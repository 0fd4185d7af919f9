/* The client role of a stream (RFC 6120 §6-§7): SASL on a client stream,
 * resource binding (which makes a session, session.h), and the intake of a
 * client's stanzas (from checked and stamped) before the router. */
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
 * the stream is gone (which ends its session: unavailable presence). */
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

#endif

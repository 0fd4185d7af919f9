/* The client role of a stream (RFC 6120 §6-§7): SASL on a client stream,
 * resource binding (which makes a session, session.h), and the intake of a
 * client's stanzas (from checked and stamped) before the router. */
#ifndef FG_C2S_H
#define FG_C2S_H

#include "stream.h"

#define XML_NS_BIND    "urn:ietf:params:xml:ns:xmpp-bind"
#define XML_NS_SESSION "urn:ietf:params:xml:ns:xmpp-session"

/* The role serve.c gives the c2s listeners' streams. Per stream it keeps
 * the SASL exchange, the login-failure counts and, once bound, the
 * session; when the stream closes, the session ends (unavailable
 * presence through the session-end observer). */
extern const struct stream_role c2s_role;

/* Stops pinging idle clients (XEP-0199; the sweep starts with the first
 * bound session): at exit. */
void c2s_stop(struct xmpp_server *srv);

#endif

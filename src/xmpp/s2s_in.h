/* Inbound server-to-server streams (SPEC §3): the s2s-in role of the
 * stream core -- what a partner's settings let the stream do, SASL
 * EXTERNAL (XEP-0178), Server Dialback in the receiving and authoritative
 * roles (XEP-0220), and the partner's stanzas checked (from, to) before
 * the router. The verdict functions below are pure decisions over the
 * partner set; the role acts on them. */
#ifndef FG_S2S_IN_H
#define FG_S2S_IN_H

#include "policy.h"
#include "xml.h"

#include "stream.h"

#include <stdbool.h>
#include <stddef.h>

/* The authentication methods an inbound stream may use. With remote (the
 * header's from), the methods of the partner owning that domain; without,
 * the union over every partner, since the domain is only known when it
 * authenticates (0 when there are no partners at all: the stream opens,
 * STARTTLS is offered, and every authentication attempt is refused). FG_OK,
 * or FG_NOTFOUND with a sentence for the peer in why (no such partner, or
 * one the admin suspended). */
int s2s_in_methods(const struct policy *partners, const char *remote, const char *local,
		   unsigned *methods, char *why, size_t whylen);

/* XEP-0178 §3: whether the authorization identity of <auth
 * mechanism='EXTERNAL'/> (its base64 text; "" or "=" for none) is absent or
 * names remote, the prepared domain the certificate was checked for. */
bool s2s_in_external_authzid_ok(const char *b64, const char *remote);

/* Adds the features for a stream in this state to `features`:
 * STARTTLS iff a TLS method is allowed, <required/> iff no method works
 * without TLS; the dialback feature iff an allowed dialback method matches
 * the stream's state; SASL EXTERNAL iff offer_external (the caller checked
 * that SASL over TLS is allowed and the certificate is valid for the
 * domain). */
int s2s_in_features(unsigned methods, bool secure, bool offer_external, struct xml_node *features);

/* Whether el may come on a stream in this state. When not, *condition and
 * why say what to answer (policy-violation: "secure it first" or "that
 * method is not allowed"). */
bool s2s_in_allows(unsigned methods, bool secure, const struct xml_node *el, const char *remote,
		   const char **condition, char *why, size_t whylen);

/* The checks every stanza from a partner passes, whichever stream brings
 * it (RFC 6120 §8.1.1-2): message, presence or iq in jabber:server, 'to'
 * a domain served here, 'from' a domain that ok(arg, to's domain or NULL
 * when to is not ours, from's domain) says the stream proved; then
 * counted for the partner's history and handed to the router (SPEC §4's
 * partner-type rules are there). st is taken. false: refused, with the
 * stream error to end that stream with in *condition and *text. */
struct xmpp_server;
typedef bool (*s2s_in_authorized)(const void *arg, const char *local, const char *remote);
bool s2s_in_partner_stanza(struct xmpp_server *srv, struct xml_node *st, s2s_in_authorized ok,
			   const void *arg, const char **condition, const char **text);
/* The same for a stanza on our outbound stream (local -> remote) that the
 * peer made bidirectional (XEP-0288): from remote, to local only. The
 * program registers it as xmpp_server.partner_stanza for s2s_out.c. */
bool s2s_in_from_outbound(struct xmpp_server *srv, const char *local, const char *remote,
			  struct xml_node *st, const char **condition, const char **text);

/* The role serve.c gives the s2s listeners' streams. */
extern const struct stream_role s2s_in_role;

#endif

/* The one verdict on a server-to-server peer's certificate for a partner
 * domain: the chain and names (tls_peer_verify), then the partner's
 * pinned keys. SASL EXTERNAL, dialback, status and probe all ask here, so
 * they cannot disagree about a pinned partner. */
#ifndef FG_S2S_CERT_H
#define FG_S2S_CERT_H

#include <openssl/ssl.h>
#include <stdbool.h>
#include <stddef.h>

#include "tls.h"

struct xmpp_server;

/* tls_peer_verify(ssl, domain, v), then the pins of domain's partner.
 * FG_OK when the certificate proves domain; ssl may be NULL (v says the
 * stream is not encrypted). */
int s2s_cert_verify(const struct xmpp_server *srv, SSL *ssl, const char *domain,
		    struct tls_verdict *v);
/* Whether a stream must not carry domain at all, by any method: its
 * partner has pinned keys and the stream shows none of them, or is not
 * encrypted. why (may be NULL) gets the reason, both fingerprints in it. */
bool s2s_cert_refused(const struct xmpp_server *srv, SSL *ssl, const char *domain, char *why,
		      size_t len);

#endif

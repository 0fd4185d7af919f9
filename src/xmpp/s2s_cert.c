#include "s2s_cert.h"

#include "fg.h"
#include "live.h"
#include "policy.h"
#include "xmpp.h"

#include <stdio.h>

static const struct domain_list *pins_of(const struct xmpp_server *srv, const char *domain)
{
	const struct partner *p =
		domain != NULL ? policy_lookup(srv->live->partners, domain) : NULL;
	return p != NULL && p->pins.n > 0 ? &p->pins : NULL;
}

int s2s_cert_verify(const struct xmpp_server *srv, SSL *ssl, const char *domain,
		    struct tls_verdict *v)
{
	int rc = tls_peer_verify(ssl, domain, v);
	const struct domain_list *pins = pins_of(srv, domain);

	if (ssl == NULL || domain == NULL || pins == NULL)
		return rc;
	return tls_verdict_pins(v, domain, pins);
}

bool s2s_cert_refused(const struct xmpp_server *srv, SSL *ssl, const char *domain, char *why,
		      size_t len)
{
	struct tls_verdict v;
	char sink[8];

	if (why == NULL) {
		why = sink;
		len = sizeof(sink);
	}
	if (pins_of(srv, domain) == NULL)
		return false;
	if (ssl == NULL) {
		snprintf(why, len,
			 "public keys are pinned for %s, and this stream is not encrypted, so it "
			 "shows none",
			 domain);
		return true;
	}
	s2s_cert_verify(srv, ssl, domain, &v);
	if (v.pin != TLS_PIN_MISMATCH)
		return false;
	snprintf(why, len, "%s", v.text);
	return true;
}

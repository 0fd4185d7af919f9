#include "s2s_in.h"

#include "fg.h"

#include <stdio.h>
#include <string.h>

#define TLS_METHODS (AUTH_SASL_TLS | AUTH_TLS_DIALBACK)

int s2s_in_methods(const struct policy *partners, const char *remote, const char *local,
		   unsigned *methods, char *why, size_t whylen)
{
	*methods = 0;
	if (remote) {
		const struct partner *p = policy_lookup(partners, remote);
		if (!p) {
			snprintf(why, whylen, "%s is not an allowed federation partner of %s",
				 remote, local ? local : "this server");
			return FG_NOTFOUND;
		}
		*methods = policy_allowed_methods(p);
		return FG_OK;
	}
	/* Rows that allow nothing are refused on save, so the union is empty
	 * only when there are no partners. The stream is still opened (and
	 * may be secured): SPEC §3 enforces the rules when a domain tries to
	 * authenticate, and then no domain is a partner. */
	for (size_t i = 0; i < policy_count(partners); i++)
		*methods |= policy_allowed_methods(policy_at(partners, i));
	(void)why;
	(void)whylen;
	(void)local;
	return FG_OK;
}

static unsigned dialback_here(unsigned methods, bool secure)
{
	return methods & (secure ? AUTH_TLS_DIALBACK : AUTH_TCP_DIALBACK);
}

int s2s_in_features(unsigned methods, bool secure, bool offer_external, struct xml_node *features)
{
	if (secure && offer_external && (methods & AUTH_SASL_TLS)) {
		struct xml_node *m = xml_add_child(features, XML_NS_SASL, "mechanisms");
		struct xml_node *e = m ? xml_add_child(m, XML_NS_SASL, "mechanism") : NULL;
		if (!e || xml_add_text(e, "EXTERNAL", 8) != FG_OK)
			return FG_NOMEM;
	}
	/* methods == 0: no partners at all; TLS costs nothing and a peer
	 * (or an admin with openssl s_client) may still want it. */
	if (!secure && ((methods & TLS_METHODS) || methods == 0)) {
		struct xml_node *tls = xml_add_child(features, XML_NS_TLS, "starttls");
		if (!tls)
			return FG_NOMEM;
		if (methods && !(methods & AUTH_TCP_DIALBACK) &&
		    !xml_add_child(tls, XML_NS_TLS, "required"))
			return FG_NOMEM;
	}
	if (dialback_here(methods, secure)) {
		/* <errors/>: we send dialback errors as XEP-0220 §2.4 says. */
		struct xml_node *db = xml_add_child(features, XML_NS_DIALBACK_FEATURE, "dialback");
		if (!db || !xml_add_child(db, XML_NS_DIALBACK_FEATURE, "errors"))
			return FG_NOMEM;
	}
	return FG_OK;
}

bool s2s_in_allows(unsigned methods, bool secure, const struct xml_node *el, const char *remote,
		   const char **condition, char *why, size_t whylen)
{
	const char *who = remote ? remote : "the peer";
	*condition = "policy-violation";
	if (xml_is(el, XML_NS_TLS, "starttls")) {
		if (secure || (methods & TLS_METHODS) || methods == 0)
			return true; /* twice is the stream's to answer */
		snprintf(why, whylen, "the partner settings for %s do not support TLS", who);
		return false;
	}
	if (xml_is(el, XML_NS_DIALBACK, NULL)) {
		if (dialback_here(methods, secure))
			return true;
		if (!secure && (methods & AUTH_TLS_DIALBACK))
			snprintf(why, whylen,
				 "the partner settings for %s require TLS before dialback: send "
				 "<starttls/> first",
				 who);
		else
			snprintf(why, whylen, "the partner settings for %s do not allow dialback%s",
				 who, secure ? " over TLS" : " without TLS");
		return false;
	}
	if (xml_is(el, XML_NS_SASL, NULL)) {
		if (secure && (methods & AUTH_SASL_TLS))
			return true;
		snprintf(
			why, whylen,
			secure ? "the partner settings for %s do not allow SASL"
			       : "SASL needs TLS: send <starttls/> first (partner settings for %s)",
			who);
		return false;
	}
	if (!secure && (methods & TLS_METHODS) && !(methods & AUTH_TCP_DIALBACK)) {
		snprintf(why, whylen,
			 "the partner settings for %s require TLS before anything else: send "
			 "<starttls/> first",
			 who);
		return false;
	}
	/* Stanzas on an unauthenticated stream: the stream answers that. */
	*condition = "not-authorized";
	snprintf(why, whylen, "the stream is not authenticated; no stanza is accepted before that");
	return false;
}

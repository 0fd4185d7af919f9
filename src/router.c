#include "router.h"

#include "conf.h"
#include "fg.h"
#include "jid.h"
#include "log.h"
#include "s2s_out.h"
#include "s2s_out.h"
#include "serve.h"

#include <stdlib.h>
#include <string.h>

#define XML_NS_PING "urn:xmpp:ping"

static char *domain_of(const char *addr)
{
	struct jid j = {0};
	if (!addr || jid_parse(addr, strlen(addr), &j) != JID_OK)
		return NULL;
	char *d = j.domain;
	j.domain = NULL;
	jid_clear(&j);
	return d;
}

static void send_to_partner(struct server *srv, struct xml_node *st)
{
	char *from = domain_of(xml_attr(st, "from"));
	char *to = domain_of(xml_attr(st, "to"));
	if (from && to && conf_is_local_domain(srv->conf, from) &&
	    !conf_is_local_domain(srv->conf, to)) {
		if (s2s_out_send(srv, from, to, st, NULL, NULL) != FG_OK)
			log_warn("router", "queue to %s full: reply dropped", to);
	} else {
		log_warn("router", "cannot route a reply from %s to %s", from ? from : "?",
			 to ? to : "?");
		xml_free(&st);
	}
	free(from);
	free(to);
}

void router_bounce(struct server *srv, struct xml_node *stanza, const char *type,
		   const char *condition, const char *text)
{
	const char *t = xml_attr(stanza, "type");
	if ((t && strcmp(t, "error") == 0) ||
	    (xml_is(stanza, NULL, "iq") && t && strcmp(t, "result") == 0)) {
		xml_free(&stanza);
		return;
	}
	struct xml_node *e = xml_clone(stanza);
	xml_free(&stanza);
	if (!e)
		return;
	const char *from = xml_attr(e, "from"), *to = xml_attr(e, "to");
	char *nf = to ? strdup(to) : NULL, *nt = from ? strdup(from) : NULL;
	if (nf)
		xml_set_attr(e, NULL, "from", nf);
	else
		xml_remove_attr(e, NULL, "from");
	if (nt)
		xml_set_attr(e, NULL, "to", nt);
	free(nf);
	free(nt);
	xml_set_attr(e, NULL, "type", "error");
	struct xml_node *err = xml_add_child(e, NULL, "error");
	if (err) {
		xml_set_attr(err, NULL, "type", type);
		xml_add_child(err, XML_NS_STANZAS_ERR, condition);
		struct xml_node *tx = xml_add_child(err, XML_NS_STANZAS_ERR, "text");
		if (tx) {
			xml_set_attr(tx, XML_NS_XML, "lang", "en");
			xml_add_text(tx, text, strlen(text));
		}
	}
	send_to_partner(srv, e);
}

void router_to_partner(struct server *srv, struct xml_node *st, router_done done, void *ud)
{
	char *from = domain_of(xml_attr(st, "from"));
	char *to = domain_of(xml_attr(st, "to"));
	char why[400];
	if (!from || !to || !conf_is_local_domain(srv->conf, from)) {
		snprintf(why, sizeof(why), "the stanza has no valid local sender and recipient");
	} else if (conf_is_local_domain(srv->conf, to)) {
		snprintf(why, sizeof(why), "%s is a local domain", to);
	} else if (!policy_lookup(srv->env.partners, to)) {
		snprintf(why, sizeof(why), "%s is not an allowed federation partner", to);
	} else {
		int rc = s2s_out_send(srv, from, to, st, done, ud);
		if (rc != FG_OK && done)
			done(ud, false,
			     rc == FG_LIMIT ? "the queue for that domain is full"
					    : "out of memory");
		free(from);
		free(to);
		return;
	}
	log_info("router", "%s to %s refused: %s", st->name, to ? to : "?", why);
	xml_free(&st);
	free(from);
	free(to);
	if (done)
		done(ud, false, why);
}

/* XEP-0199: a partner pinging this server gets an answer. */
static bool answer_domain_iq(struct server *srv, struct xml_node *st)
{
	const char *type = xml_attr(st, "type");
	if (!type || strcmp(type, "get") != 0 || !xml_child(st, XML_NS_PING, "ping"))
		return false;
	struct xml_node *r = xml_new(XML_NS_SERVER, "iq");
	if (!r)
		return false;
	xml_set_attr(r, NULL, "type", "result");
	xml_set_attr(r, NULL, "from", xml_attr(st, "to"));
	xml_set_attr(r, NULL, "to", xml_attr(st, "from"));
	if (xml_attr(st, "id"))
		xml_set_attr(r, NULL, "id", xml_attr(st, "id"));
	send_to_partner(srv, r);
	xml_free(&st);
	return true;
}

void router_from_partner(struct server *srv, struct xml_node *st)
{
	struct jid to = {0};
	const char *to_s = xml_attr(st, "to");
	if (!to_s || jid_parse(to_s, strlen(to_s), &to) != JID_OK) {
		xml_free(&st);
		return;
	}
	bool to_domain = to.node == NULL && to.resource == NULL;
	jid_clear(&to);
	if (xml_is(st, NULL, "iq") && to_domain && answer_domain_iq(srv, st))
		return;
	if (xml_is(st, NULL, "presence")) {
		/* RFC 6121 §4.3, §3.1.3: presence to an address without an
		 * account is ignored (no error, no presence leak). */
		log_debug("router", "presence to %s ignored: no such account", to_s);
		xml_free(&st);
		return;
	}
	/* RFC 6121 §8.5.2.2.1 / §8.5.3.2.1: no account at that address. */
	log_info("router", "%s to %s answered with service-unavailable: no local accounts yet",
		 st->name, to_s);
	router_bounce(srv, st, "cancel", "service-unavailable",
		      "there is no account at this address");
}

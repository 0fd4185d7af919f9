#include "carbons.h"

#include "session.h"
#include "counters.h"
#include "log.h"
#include "mam_query.h"
#include "xmpp.h"

#include <string.h>

static bool is_type(const struct xml_node *st, const char *t)
{
	const char *v = xml_attr(st, "type");
	return strcmp(v ? v : "", t) == 0;
}

bool carbons_iq(struct xmpp_server *srv, struct session *own, struct xml_node *iq)
{
	bool on = xml_child(iq, XML_NS_CARBONS, "enable") != NULL;
	if (!on && !xml_child(iq, XML_NS_CARBONS, "disable"))
		return false;
	if (!is_type(iq, "set")) {
		if (!xml_attr(iq, "to"))
			xml_set_attr(iq, NULL, "to", session_bare(own));
		srv->bounce(srv, iq, "modify", "bad-request",
			    "carbons are turned on and off by set");
		return true;
	}
	session_set_carbons(own, on);
	log_info("carbons", "%s turned carbons %s", session_full(own), on ? "on" : "off");
	session_reply(own, iq, NULL);
	return true;
}

/* XEP-0280 §6 (rev 0.13, as Prosody does): chat messages, and normal ones
 * with a body; never what asks not to be copied, nor a carbon itself. */
static bool eligible(const struct xml_node *m)
{
	if (xml_child(m, XML_NS_CARBONS, "private") || xml_child(m, XML_NS_HINTS, "no-copy") ||
	    xml_child(m, XML_NS_CARBONS, "sent") || xml_child(m, XML_NS_CARBONS, "received"))
		return false;
	if (is_type(m, "chat"))
		return true;
	return (is_type(m, "normal") || is_type(m, "")) && xml_child(m, NULL, "body");
}

/* <message from=bare to=full><KIND><forwarded><msg/></forwarded></KIND> */
static void copy_to(struct session *s, const struct xml_node *msg, const char *kind)
{
	struct xml_node *w = xml_new(XML_NS_SERVER, "message");
	struct xml_node *k = w ? xml_add_child(w, XML_NS_CARBONS, kind) : NULL;
	struct xml_node *f = k ? xml_add_child(k, XML_NS_FORWARD, "forwarded") : NULL;
	if (!f || xml_set_attr(w, NULL, "from", session_bare(s)) != 0 ||
	    xml_set_attr(w, NULL, "to", session_full(s)) != 0 ||
	    xml_set_attr(w, NULL, "type", is_type(msg, "chat") ? "chat" : "normal") != 0 ||
	    xml_append_copy(f, msg) != 0) {
		log_error("carbons", "out of memory: no %s carbon for %s", kind, session_full(s));
		xml_free(&w);
		return;
	}
	counters_stanza(STANZA_DELIVERED, NULL);
	session_deliver(s, w);
}

void carbons_sent(struct xmpp_server *srv, struct session *c, const struct xml_node *msg)
{
	if (!eligible(msg))
		return;
	for (struct session *s = session_first(srv, session_bare(c)); s; s = session_next(s))
		if (s != c && session_carbons(s))
			copy_to(s, msg, "sent");
	if (srv->cluster_carbons)
		srv->cluster_carbons(srv, msg, session_bare(c), "sent", session_full(c), false);
}

/* Takes out the children of el in ns named name. */
static unsigned strip(struct xml_node *el, const char *ns, const char *name)
{
	unsigned n = 0;
	struct xml_node *prev = NULL;
	for (struct xml_node **p = &el->children; *p;) {
		if ((*p)->type == XML_ELEMENT && xml_is(*p, ns, name)) {
			if (el->last_child == *p)
				el->last_child = prev;
			*p = (*p)->next;
			n++;
		} else {
			prev = *p;
			p = &(*p)->next;
		}
	}
	return n;
}

void carbons_received(struct xmpp_server *srv, struct xml_node *msg, const char *to_bare,
		      const char *to_resource, bool fresh)
{
	const char *from = xml_attr(msg, "from");
	/* XEP-0280 §11: only the user's own server, from the bare JID, makes
	 * carbons; ours never pass here. */
	if (!from || strcmp(from, to_bare) != 0) {
		unsigned n =
			strip(msg, XML_NS_CARBONS, "sent") + strip(msg, XML_NS_CARBONS, "received");
		if (n)
			log_info("carbons", "a forged carbon from %s to %s taken out",
				 from ? from : "-", to_bare);
	}
	if (!fresh || !eligible(msg))
		return;
	struct session *direct = to_resource ? session_find(srv, to_bare, to_resource) : NULL;
	for (struct session *s = session_first(srv, to_bare); s; s = session_next(s)) {
		if (!session_carbons(s) || s == direct)
			continue;
		/* A message to the bare JID reaches every available resource
		 * of non-negative priority (router.c) already. */
		struct session_presence *p = session_presence(s);
		if (!direct && p->last && p->priority >= 0)
			continue;
		copy_to(s, msg, "received");
	}
	if (srv->cluster_carbons) {
		char except[3200];
		snprintf(except, sizeof(except), "%s/%s", to_bare, to_resource ? to_resource : "");
		srv->cluster_carbons(srv, msg, to_bare, "received", to_resource ? except : NULL,
				     !to_resource || !direct);
	}
}

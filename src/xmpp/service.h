/* What the server answers itself (RFC 6120 §10.5.3.2 / §10.5.4): iq to
 * its domain and to an account's bare JID on the account's behalf --
 * service discovery (XEP-0030), ping (XEP-0199), software version
 * (XEP-0092, when turned on), vCard-temp (XEP-0054, when turned on). */
#ifndef FG_SERVICE_H
#define FG_SERVICE_H

#include "xml.h"

struct xmpp_server;
struct session;

#define XML_NS_DISCO_INFO  "http://jabber.org/protocol/disco#info"
#define XML_NS_DISCO_ITEMS "http://jabber.org/protocol/disco#items"
#define XML_NS_PING	   "urn:xmpp:ping"
#define XML_NS_VERSION	   "jabber:iq:version"
#define XML_NS_VCARD	   "vcard-temp"

/* A stanza (taken) to one of the local domains. */
void service_domain(struct xmpp_server *srv, struct xml_node *st);
/* An iq (taken) to an account's bare JID; own is the account's own
 * session when the account asks about itself, else NULL. */
void service_account(struct xmpp_server *srv, struct session *own, struct xml_node *st);

#endif

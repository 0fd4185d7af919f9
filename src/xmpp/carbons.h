/* XEP-0280 Message Carbons: a user's resources that asked for it see what
 * their other resources send (<sent/>) and receive (<received/>), wrapped
 * in a forwarded copy (XEP-0297) from the user's bare JID. Copies go
 * straight to the sessions, never through the router, so a carbon that
 * reaches the router was made by someone else and is taken out. */
#ifndef FG_CARBONS_H
#define FG_CARBONS_H

#include "xml.h"

#include <stdbool.h>

#define XML_NS_CARBONS "urn:xmpp:carbons:2"
#define XML_NS_HINTS   "urn:xmpp:hints"

struct xmpp_server;
struct session;

/* An iq (taken on true) from own to its own account: <enable/> or
 * <disable/>, answered here. false: not a carbons iq. */
bool carbons_iq(struct xmpp_server *srv, struct session *own, struct xml_node *iq);
/* Client c sent msg (not taken, from stamped): a <sent/> copy to each
 * other resource of the user with carbons on. */
void carbons_sent(struct xmpp_server *srv, struct session *c, const struct xml_node *msg);
/* msg (not taken) is about to be delivered to local user to_bare, to
 * to_resource (NULL for the bare JID): forged <sent/>/<received/> inside
 * go, then, when fresh (not coming back from offline storage or a session
 * that timed out, whose copies went out the first time), a <received/>
 * copy to each resource of the user with carbons on that does not get msg
 * itself. */
void carbons_received(struct xmpp_server *srv, struct xml_node *msg, const char *to_bare,
		      const char *to_resource, bool fresh);

#endif

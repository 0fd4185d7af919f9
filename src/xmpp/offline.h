/* Offline messages (XEP-0160): chat and normal messages for an account
 * with no available resource are kept in the store, up to [users]
 * offline_limit each, and handed over with a delay stamp (XEP-0203) when
 * the user next sends initial presence. Over the limit they bounce. */
#ifndef FG_OFFLINE_H
#define FG_OFFLINE_H

#include "xml.h"

struct xmpp_server;
struct session;

/* Keeps message (taken) for user (bare JID) or bounces it. */
void offline_store(struct xmpp_server *srv, struct xml_node *msg, const char *user);
/* Delivers what waits for c's user to c, oldest first. */
void offline_deliver(struct xmpp_server *srv, struct session *c);

#endif

/* Offline messages (XEP-0160): chat and normal messages for an account
 * with no available resource are kept in the store, up to [users]
 * offline_limit each, and handed over with a delay stamp (XEP-0203) when
 * the user next sends initial presence, paced to what its client can take.
 * Over the limit they bounce. */
#ifndef FG_OFFLINE_H
#define FG_OFFLINE_H

#include "xml.h"

struct xmpp_server;
struct session;

/* Keeps message (taken) for user (bare JID) or bounces it. */
void offline_store(struct xmpp_server *srv, struct xml_node *msg, const char *user);
/* Delivers what waits for c's user to c, oldest first, in batches that
 * fit c's room (session_room): the next when the client has room again
 * (offline_room), until storage is empty. */
void offline_deliver(struct xmpp_server *srv, struct session *c);
/* c has room again (an acknowledgement, its output drained, a resumption):
 * the next batch, if storage may hold more for it. */
void offline_room(struct xmpp_server *srv, struct session *c);
/* Something was stored for user (here, or on another node: cluster.c):
 * an available session of user on this node takes it now. */
void offline_wake(struct xmpp_server *srv, const char *user);

#endif

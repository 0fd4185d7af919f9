/* XEP-0313 Message Archive Management with XEP-0359 stanza-ids: each
 * local user's chat and normal messages with a body, sent or received,
 * with local users and partners' users alike, go to the archive in the
 * store (store_archive.h) in batches on the store thread; the user's
 * clients page through it (XEP-0059) and set what is kept.
 *
 * The router archives a message where it is delivered or leaves for a
 * partner, so what the partner gate or federation refuses is never kept.
 * A message archived for a local recipient carries <stanza-id by=bare/>,
 * also when it waits offline: the copy delivered at sign-in and the
 * archived one share that id. */
#ifndef FG_MAM_H
#define FG_MAM_H

#include "xml.h"

#include <stdbool.h>

struct xmpp_server;
struct session;

/* msg (not taken, from and to set) is being delivered to a local user or
 * sent to a partner: archived for its local sender and recipient, if any,
 * whose accounts exist. Nothing happens for messages archived before
 * (back from offline storage or from a session that timed out), and then
 * it returns false; true otherwise. */
bool mam_archive(struct xmpp_server *srv, struct xml_node *msg);
/* A message (not taken) from a client or a partner: <stanza-id/>s that
 * claim to be by one of our JIDs are forged and go (XEP-0359 §5). */
void mam_strip_ids(struct xmpp_server *srv, struct xml_node *msg);
/* An iq (taken on true) from own to its own account: a query, the query
 * form, preferences. false: not for the archive. */
bool mam_iq(struct xmpp_server *srv, struct session *own, struct xml_node *iq);
/* Whether the archive is on ([archive] enabled and a store): disco. */
bool mam_enabled(const struct xmpp_server *srv);

/* The retention timer; mam_stop hands what waits to the store (before
 * store_stop) and frees the state. */
int mam_start(struct xmpp_server *srv);
void mam_stop(struct xmpp_server *srv);

#endif

/* Personal eventing (XEP-0163) on every account's bare JID, with
 * XEP-0223's persistent items in the store (store_pep.c): publish with
 * publish-options, items, retract, create, and for the owner delete,
 * purge and configure (XEP-0060); notifications to the owner's resources
 * and to contacts by their entity capabilities' "+notify" (caps.c), the
 * last item of each such node when one becomes available; who may read
 * decided by pubsub_may_read (the access model, SPEC §4 on top) on every
 * read and every notification.
 *
 * Nothing of an account's nodes is held in memory: each request is one
 * store job. What is held is who of each account's contacts is online
 * with which capabilities (one shared pointer each), learnt from their
 * presence. */
#ifndef FG_PEP_H
#define FG_PEP_H

#include "xml.h"

#include <stdbool.h>

struct xmpp_server;
struct session;

/* Whether iq is a pubsub request (get or set with a pubsub or
 * pubsub#owner child): pep_iq's. */
bool pep_is_request(const struct xml_node *iq);
/* A pubsub request (taken) to an account's bare JID; own is the account's
 * own session when it asks itself, else NULL. */
void pep_iq(struct xmpp_server *srv, struct session *own, struct xml_node *iq);
/* disco#items (taken) of an account: the nodes the asker may read. */
void pep_disco_items(struct xmpp_server *srv, struct session *own, struct xml_node *iq);
/* PEP's identity and features in a disco#info answer q (XEP-0163 §6). */
void pep_disco_info(struct xml_node *q);
/* An iq result or error (taken on true) to one of our domains: the
 * answers to our capability queries. */
bool pep_domain_iq(struct xmpp_server *srv, struct xml_node *iq);
/* Broadcast presence of the account's own session c (available or
 * unavailable; st not taken). */
void pep_own_presence(struct xmpp_server *srv, struct session *c, const struct xml_node *st);
/* Presence (available or unavailable; st not taken) of someone to account
 * user: a contact's resource with capabilities is notified from now on. */
void pep_contact_presence(struct xmpp_server *srv, const char *user, const struct xml_node *st);
/* Final exit: forgets every contact (before caps_free_all). */
void pep_free_all(struct xmpp_server *srv);

#endif

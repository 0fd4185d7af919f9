/* Rosters (RFC 6121 §2): every local user's contacts with their
 * subscription state, held in memory (loaded at start), written through to
 * the store thread, and the roster get/set protocol with pushes to the
 * user's interested resources. */
#ifndef FG_ROSTER_H
#define FG_ROSTER_H

#include "xml.h"

#include <stdbool.h>
#include <stddef.h>

struct xmpp_server;
struct session;
struct store_db;

#define XML_NS_ROSTER "jabber:iq:roster"

struct roster_item {
	char *contact; /* bare JID */
	char *name;    /* NULL when none */
	char **groups;
	size_t ngroups;
	bool sub_to, sub_from, ask_out, pending_in, approved;
	char *pending_in_xml; /* the subscribe request to show at login */
};

struct roster;

/* Loads every roster from db into srv->rosters (daemon start). */
int roster_load_all(struct xmpp_server *srv, struct store_db *db, char *err, size_t errlen);
void roster_free_all(struct xmpp_server *srv);
/* The roster of user, NULL when it has none (and create is false). */
struct roster *roster_of(struct xmpp_server *srv, const char *user, bool create);
struct roster_item *roster_find(struct roster *r, const char *contact);
/* Adds an empty item (subscription none); NULL when out of memory. */
struct roster_item *roster_add(struct roster *r, const char *contact);
size_t roster_count(const struct roster *r);
struct roster_item *roster_at(struct roster *r, size_t i);
/* Forgets a removed user's roster (the store cascades on its own). */
void roster_drop_user(struct xmpp_server *srv, const char *user);
/* Reads user's roster from the store again, replacing this node's copy
 * (another node of a cluster changed it; cluster.c). */
void roster_reload(struct xmpp_server *srv, const char *user);

/* An item that only holds a pending inbound request is kept out of the
 * roster the user sees (RFC 6121 §3.1.3) until the user adds the contact. */
void roster_set_hidden(struct roster_item *it, bool hidden);
bool roster_hidden(const struct roster_item *it);

/* "none", "to", "from", "both" */
const char *roster_subscription(const struct roster_item *it);
/* Whether user has contact in the roster in any state (SPEC §4). */
bool roster_has(struct xmpp_server *srv, const char *user, const char *contact);

/* An item changed: written to the store and pushed to the user's
 * interested resources (RFC 6121 §2.1.6). */
void roster_changed(struct xmpp_server *srv, const char *user, struct roster_item *it);
/* Removes contact from user's roster, stores and pushes the removal. */
void roster_remove(struct xmpp_server *srv, const char *user, const char *contact);

/* RFC 6121 §2.6: user's current roster version as the opaque text
 * clients get (len >= ROSTER_VER_LEN); it changes with every change that
 * is pushed, and only then. */
#define ROSTER_VER_LEN 48
void roster_version(struct xmpp_server *srv, const char *user, char *buf, size_t len);

/* A roster get or set (iq, taken) from the user's own session c. */
void roster_iq(struct xmpp_server *srv, struct session *c, struct xml_node *iq);

#endif

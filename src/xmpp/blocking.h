/* XEP-0191 Blocking Command: each local user's blocklist, held in memory
 * for every user who blocks someone (loaded at start, like rosters, so that
 * stanzas for users who are offline are gated too), written through to the
 * store thread (store_block.c), and the protocol: blocklist get, block,
 * unblock (some or all), with pushes to the user's resources that asked for
 * the blocklist.
 *
 * The router applies it (router.c): nothing from a blocked entity reaches
 * the user, offline storage or anything after them; what the user sends to
 * a blocked entity is refused with <not-acceptable/> and
 * <blocked xmlns='urn:xmpp:blocking:errors'/>. presence.c keeps the user's
 * presence from blocked contacts. */
#ifndef FG_BLOCKING_H
#define FG_BLOCKING_H

#include "xml.h"

#include <stdbool.h>
#include <stddef.h>

struct jid;
struct session;
struct store_db;
struct xmpp_server;

#define XML_NS_BLOCKING	       "urn:xmpp:blocking"
#define XML_NS_BLOCKING_ERRORS "urn:xmpp:blocking:errors"

/* Items one user may block; a request past it is refused. */
#define BLOCKING_MAX_ITEMS 1000

/* XEP-0191 §3.5 with XEP-0016 §2.1's forms of item: a full JID matches
 * only itself; a bare JID (user@domain) that user at any or no resource;
 * domain/resource only that JID; a domain every JID at that domain. Both
 * are prepared (jid_parse), so parts compare as bytes. */
bool blocking_matches(const struct jid *item, const struct jid *j);

enum blocking_op { BLOCKING_GET, BLOCKING_BLOCK, BLOCKING_UNBLOCK };

/* A parsed request: jids are prepared, without duplicates; n == 0 for an
 * unblock means everything. */
struct blocking_req {
	enum blocking_op op;
	char **jids;
	size_t n;
};

/* Reads the blocking payload of iq (a client's, any content): FG_OK, or
 * FG_INVAL with the stanza error's type, condition and text (XEP-0191
 * §3.2-§3.4: a block without items is bad-request, an item that is no
 * JID jid-malformed), or FG_NOMEM. */
int blocking_parse(const struct xml_node *iq, struct blocking_req *req, const char **type,
		   const char **cond, const char **text);
void blocking_req_clear(struct blocking_req *req);

/* Whether iq carries a blocking payload (blocklist, block or unblock). */
bool blocking_is_request(const struct xml_node *iq);

/* Whether user (a local bare JID) blocked the entity j. */
bool blocking_blocks(struct xmpp_server *srv, const char *user, const struct jid *j);
/* Whether user blocks anything at all (the router's fast path). */
bool blocking_any(struct xmpp_server *srv, const char *user);

/* A blocking iq (taken) from the user's own session c. */
void blocking_iq(struct xmpp_server *srv, struct session *c, struct xml_node *iq);

/* Every blocklist from db (daemon start). */
int blocking_load_all(struct xmpp_server *srv, struct store_db *db, char *err, size_t errlen);
void blocking_free_all(struct xmpp_server *srv);
/* A removed user's blocklist goes (the store cascades on its own). */
void blocking_drop_user(struct xmpp_server *srv, const char *user);

#endif

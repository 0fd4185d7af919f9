/* Entity capabilities (XEP-0115) as the personal eventing service needs
 * them: which nodes an entity wants notifications of (its "+notify"
 * features). One shared, reference-counted entry per verification string,
 * so that a session or a contact's resource holds one pointer; an entry
 * not known yet is asked for once with disco#info (XEP-0030) to the first
 * entity that showed it, and the answer fills it for everyone.
 *
 * An answer is shared by everyone showing the ver only when it hashes to
 * it (SHA-1, XEP-0115 §5); an entity whose answer does not gets an entry
 * of its own. Either way capabilities decide only which notifications an
 * entity wants, never who may read a node (pubsub_may_read does, on every
 * send). */
#ifndef FG_CAPS_H
#define FG_CAPS_H

#include "xml.h"

#include <stdbool.h>
#include <stddef.h>

struct xmpp_server;

struct caps {
	char *key;     /* the hash and ver, "sha-1 VER" */
	unsigned refs; /* holders; the cache keeps unheld ones while it has room */
	bool known;    /* the answer came (an error counts: no +notify) */
	bool asked;    /* a disco#info query is out */
	char **notify; /* node names, sorted */
	size_t nnotify;
};

/* The entry for a <c xmlns='http://jabber.org/protocol/caps'/> element
 * of presence sent by full, with a reference for the caller; NULL when
 * there is none or no memory. An unknown entry is asked for from the
 * domain of asker (one of ours) to full: caps_answer later. */
struct caps *caps_of_presence(struct xmpp_server *srv, const struct xml_node *presence,
			      const char *full, const char *asker_domain);
/* Another reference to c. */
struct caps *caps_ref(struct caps *c);
/* Drops a reference; accepts NULL, clears the pointer. */
void caps_put(struct caps **c);
/* Whether c asks for notifications of node. */
bool caps_wants(const struct caps *c, const char *node);
/* An iq result or error to one of our domains: when it answers one of our
 * queries, true, the iq freed, and *filled the entry it filled (borrowed;
 * NULL when out of memory). An answer that does not hash to its ver
 * (XEP-0115 §5.4) fills an entry of the answering entity's own, which
 * replaces for it the one it holds: *shared names that one (else NULL). */
bool caps_answer(struct xmpp_server *srv, struct xml_node *iq, struct caps **filled,
		 struct caps **shared);
/* Whether a disco#info answer q hashes to ver (XEP-0115 §5.1, extended
 * forms as §5.4); hashes other than sha-1 are taken unchecked. */
bool caps_verify(const struct xml_node *q, const char *hash, const char *ver);
/* Frees the cache (final exit); entries still held stay with holders. */
void caps_free_all(struct xmpp_server *srv);

#endif

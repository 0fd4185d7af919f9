/* The store's part for personal eventing (XEP-0163 with XEP-0223's
 * persistent items; schema migration 8): each account's nodes with their
 * configuration, and their items as serialized payloads, newest last.
 * Synchronous like store_sqlite.c; the daemon calls it only from the store
 * thread. Nodes and items go with their account (ON DELETE CASCADE), so
 * `fedgate user remove` takes them. */
#ifndef FG_STORE_PEP_H
#define FG_STORE_PEP_H

#include "pubsub.h"
#include "store_sqlite.h"

#include <stdbool.h>
#include <stddef.h>

/* The configuration of owner's node; *found false when there is none. */
int store_db_pep_node_get(struct store_db *db, const char *owner, const char *node,
			  struct pubsub_conf *c, bool *found, char *err, size_t errlen);
/* Creates or reconfigures the node; items beyond max_items (oldest first)
 * go, and all but the last one when it no longer persists. */
int store_db_pep_node_put(struct store_db *db, const char *owner, const char *node,
			  const struct pubsub_conf *c, char *err, size_t errlen);
/* How many nodes owner has. */
int store_db_pep_node_count(struct store_db *db, const char *owner, long *n, char *err,
			    size_t errlen);
/* Deletes the node with its items (*found false when there was none). */
int store_db_pep_node_delete(struct store_db *db, const char *owner, const char *node, bool *found,
			     char *err, size_t errlen);
/* Deletes every item of the node. */
int store_db_pep_purge(struct store_db *db, const char *owner, const char *node, char *err,
		       size_t errlen);
/* Adds the item as the newest (replacing one of the same id) and keeps
 * the newest keep items. */
int store_db_pep_item_put(struct store_db *db, const char *owner, const char *node, const char *id,
			  const char *xml, long long at_ms, long keep, char *err, size_t errlen);
/* Deletes one item (*found false when the node has none of that id). */
int store_db_pep_retract(struct store_db *db, const char *owner, const char *node, const char *id,
			 bool *found, char *err, size_t errlen);

/* One item; strings valid during the callback only. Non-zero stops. */
typedef int (*store_pep_item_cb)(void *ud, const char *id, const char *xml, long long at_ms);
/* The node's items, newest first: those named (nids > 0), else the newest
 * max (0 = all). */
int store_db_pep_items(struct store_db *db, const char *owner, const char *node,
		       const char *const *ids, size_t nids, long max, store_pep_item_cb cb,
		       void *ud, char *err, size_t errlen);

/* One node with its newest item (id and xml NULL when it has none). */
typedef int (*store_pep_node_cb)(void *ud, const char *node, const struct pubsub_conf *c,
				 const char *id, const char *xml);
/* Every node of owner, by name. */
int store_db_pep_nodes(struct store_db *db, const char *owner, store_pep_node_cb cb, void *ud,
		       char *err, size_t errlen);

#endif

/* The store's part for XEP-0191 blocklists (schema migration 9): each
 * local user's blocked JIDs, as prepared JID text (a full or bare JID, a
 * domain, or domain/resource). Synchronous like store_users.c: the daemon
 * calls it only from the store thread. Rows go with their user (ON DELETE
 * CASCADE), so `fedgate user remove` takes the blocklist too. */
#ifndef FG_STORE_BLOCK_H
#define FG_STORE_BLOCK_H

#include "store_sqlite.h"

#include <stddef.h>

/* Every blocked JID of every user, owner by owner; strings valid during cb
 * only. A non-zero return from cb stops the walk. */
typedef int (*store_block_cb)(void *ud, const char *owner, const char *jid);
int store_db_block_load(struct store_db *db, store_block_cb cb, void *ud, char *err, size_t errlen);
/* Adds jids[0..n) to owner's blocklist (those already there stay), in one
 * transaction. FG_NOTFOUND when there is no such user. */
int store_db_block_add(struct store_db *db, const char *owner, const char *const *jids, size_t n,
		       char *err, size_t errlen);
/* Removes jids[0..n) from owner's blocklist, or all of it when n is 0. */
int store_db_block_remove(struct store_db *db, const char *owner, const char *const *jids, size_t n,
			  char *err, size_t errlen);

#endif

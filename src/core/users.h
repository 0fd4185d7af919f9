/* Local user accounts held in memory: the bare JID, the stored SCRAM
 * credentials and the per-user federation switch (SPEC §4 xmpp_access).
 * Loaded from the store at start (CLI and daemon) and changed through the
 * command layer, like partners. O(1) lookup by bare JID. */
#ifndef FG_USERS_H
#define FG_USERS_H

#include "sasl.h"

#include <stdbool.h>
#include <stddef.h>

struct account {
	char *jid; /* bare, prepared: "alice@contoso.test" */
	struct scram_creds creds;
	bool xmpp_access; /* may federate (default true) */
	long long created_ms;
};

struct accounts;

struct accounts *accounts_new(void);
void accounts_free(struct accounts **a);
/* Takes acc; replaces an account with the same jid. FG_OK, FG_NOMEM, or
 * FG_INVAL for a NULL acc. */
int accounts_put(struct accounts *a, struct account *acc);
/* false when there was none. */
bool accounts_remove(struct accounts *a, const char *jid);
/* NULL when there is no such account; jid must be bare and prepared. */
struct account *accounts_get(const struct accounts *a, const char *jid);
size_t accounts_count(const struct accounts *a);
/* Sorted by jid; index < accounts_count(). Valid until the next change. */
struct account *accounts_at(const struct accounts *a, size_t i);
struct account *account_new(const char *jid);
struct account *account_clone(const struct account *acc);
void account_free(struct account **acc);

#endif

/* Local accounts in memory: a strmap from the bare JID for the lookup
 * every login and every stanza to a local user makes, and a sorted list
 * made only when someone lists the accounts (the CLI, the API). */
#include "users.h"

#include "fg.h"
#include "strmap.h"

#include <stdlib.h>
#include <string.h>

struct accounts {
	struct strmap *map;	 /* jid -> account */
	struct account **sorted; /* listing order; NULL after a change */
	size_t nsorted;
};

/* ---- one account ---- */

struct account *account_new(const char *jid)
{
	struct account *a;

	if (jid == NULL)
		return NULL;
	a = calloc(1, sizeof(*a));
	if (a == NULL)
		return NULL;
	a->jid = strdup(jid);
	if (a->jid == NULL) {
		free(a);
		return NULL;
	}
	a->xmpp_access = true; /* SPEC §4: allowed unless denied */
	return a;
}

struct account *account_clone(const struct account *acc)
{
	struct account *c;

	if (acc == NULL)
		return NULL;
	c = account_new(acc->jid);
	if (c == NULL)
		return NULL;
	c->creds = acc->creds;
	c->xmpp_access = acc->xmpp_access;
	c->created_ms = acc->created_ms;
	return c;
}

void account_free(struct account **pacc)
{
	struct account *a;

	if (pacc == NULL || *pacc == NULL)
		return;
	a = *pacc;
	/* StoredKey and ServerKey let whoever reads them impersonate the
	 * server to the user, or the user to a server that sees one exchange;
	 * freed memory may be handed out again, so they go first. */
	explicit_bzero(&a->creds, sizeof(a->creds));
	free(a->jid);
	free(a);
	*pacc = NULL;
}

/* ---- the set ---- */

struct accounts *accounts_new(void)
{
	struct accounts *a = calloc(1, sizeof(*a));
	if (a && !(a->map = strmap_new())) {
		free(a);
		return NULL;
	}
	return a;
}

static void free_value(void *v)
{
	struct account *acc = v;
	account_free(&acc);
}

static void forget_order(struct accounts *a)
{
	free(a->sorted);
	a->sorted = NULL;
	a->nsorted = 0;
}

void accounts_free(struct accounts **pa)
{
	struct accounts *a = *pa;
	if (!a)
		return;
	strmap_free(&a->map, free_value);
	forget_order(a);
	free(a);
	*pa = NULL;
}

int accounts_put(struct accounts *a, struct account *acc)
{
	void *old = NULL;
	if (!acc)
		return FG_INVAL;
	if (!a) {
		account_free(&acc);
		return FG_INVAL;
	}
	if (strmap_put(a->map, acc->jid, acc, &old) != FG_OK) {
		account_free(&acc);
		return FG_NOMEM;
	}
	free_value(old);
	forget_order(a);
	return FG_OK;
}

bool accounts_remove(struct accounts *a, const char *jid)
{
	struct account *old = a && jid ? strmap_remove(a->map, jid) : NULL;
	if (!old)
		return false;
	account_free(&old);
	forget_order(a);
	return true;
}

struct account *accounts_get(const struct accounts *a, const char *jid)
{
	return a && jid ? strmap_get(a->map, jid) : NULL;
}

size_t accounts_count(const struct accounts *a)
{
	return a ? strmap_count(a->map) : 0;
}

static int collect(void *ud, const char *key, void *value)
{
	struct accounts *a = ud;
	(void)key;
	a->sorted[a->nsorted++] = value;
	return 0;
}

static int by_jid(const void *x, const void *y)
{
	const struct account *const *p = x, *const *q = y;
	return strcmp((*p)->jid, (*q)->jid);
}

struct account *accounts_at(const struct accounts *ca, size_t i)
{
	/* The order is a cache: building it does not change the set. */
	struct accounts *a = (struct accounts *)ca;
	size_t n = accounts_count(a);
	if (i >= n)
		return NULL;
	if (!a->sorted) {
		a->sorted = calloc(n, sizeof(*a->sorted));
		if (!a->sorted)
			return NULL;
		a->nsorted = 0;
		strmap_each(a->map, collect, a);
		qsort(a->sorted, a->nsorted, sizeof(*a->sorted), by_jid);
	}
	return a->sorted[i];
}

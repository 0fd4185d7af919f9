/* Local accounts in memory.
 *
 * Two views of the same accounts, as in policy.c: an array sorted by JID
 * for listing, and an open-addressing table (linear probing, load at most
 * 1/2, backward-shift deletion) for the lookup every login and every
 * stanza to a local user makes. The table's keys are the accounts' own jid
 * strings, so both views change together or not at all. */
#include "users.h"

#include "fg.h"

#include <assert.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define TABLE_MIN 16

struct slot {
	const char *key; /* NULL: empty; else the jid of acc */
	struct account *acc;
	uint64_t hash;
};

struct accounts {
	struct account **v; /* sorted by jid */
	size_t n, cap;
	struct slot *tab; /* capacity a power of two */
	size_t tcap, tused;
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

/* ---- the table ---- */

static uint64_t fnv1a(const char *s)
{
	uint64_t h = 0xcbf29ce484222325ull;

	for (; *s != '\0'; s++) {
		h ^= (unsigned char)*s;
		h *= 0x100000001b3ull;
	}
	return h;
}

static size_t tab_find(const struct accounts *a, const char *key, uint64_t h)
{
	size_t mask = a->tcap - 1;

	for (size_t i = (size_t)h & mask;; i = (i + 1) & mask) {
		const struct slot *s = &a->tab[i];

		if (s->key == NULL)
			return SIZE_MAX;
		if (s->hash == h && strcmp(s->key, key) == 0)
			return i;
	}
}

/* Capacity is ensured beforehand, and the key is known to be absent. */
static void tab_insert(struct accounts *a, struct account *acc)
{
	uint64_t h = fnv1a(acc->jid);
	size_t mask = a->tcap - 1;
	size_t i = (size_t)h & mask;

	while (a->tab[i].key != NULL)
		i = (i + 1) & mask;
	a->tab[i].key = acc->jid;
	a->tab[i].acc = acc;
	a->tab[i].hash = h;
	a->tused++;
}

/* No tombstones, so a lookup of an unknown JID (every failed login) stays
 * short however many accounts were removed. */
static void tab_delete_at(struct accounts *a, size_t i)
{
	size_t mask = a->tcap - 1;
	size_t j = i;

	a->tab[i].key = NULL;
	a->tused--;
	for (;;) {
		size_t home;

		j = (j + 1) & mask;
		if (a->tab[j].key == NULL)
			return;
		home = (size_t)a->tab[j].hash & mask;
		/* The entry at j may fill the hole at i only if its home is not
		 * cyclically within (i, j]. */
		if (i <= j ? (home > i && home <= j) : (home > i || home <= j))
			continue;
		a->tab[i] = a->tab[j];
		a->tab[j].key = NULL;
		i = j;
	}
}

/* The account is in the table whenever it is in the array. */
static void tab_remove(struct accounts *a, const struct account *acc)
{
	size_t i = tab_find(a, acc->jid, fnv1a(acc->jid));

	assert(i != SIZE_MAX && a->tab[i].acc == acc);
	tab_delete_at(a, i);
}

static int tab_reserve(struct accounts *a, size_t more)
{
	size_t need = a->tused + more, cap = a->tcap != 0 ? a->tcap : TABLE_MIN;
	struct slot *old = a->tab;
	size_t ocap = a->tcap;

	if (need > SIZE_MAX / 4)
		return FG_NOMEM;
	while (cap < 2 * need)
		cap *= 2;
	if (cap == a->tcap)
		return FG_OK;
	a->tab = calloc(cap, sizeof(*a->tab));
	if (a->tab == NULL) {
		a->tab = old;
		return FG_NOMEM;
	}
	a->tcap = cap;
	a->tused = 0;
	for (size_t i = 0; i < ocap; i++)
		if (old[i].key != NULL)
			tab_insert(a, old[i].acc);
	free(old);
	return FG_OK;
}

/* ---- the set ---- */

struct accounts *accounts_new(void)
{
	struct accounts *a = calloc(1, sizeof(*a));

	if (a == NULL)
		return NULL;
	if (tab_reserve(a, 0) != FG_OK) {
		free(a);
		return NULL;
	}
	return a;
}

void accounts_free(struct accounts **pa)
{
	struct accounts *a;

	if (pa == NULL || *pa == NULL)
		return;
	a = *pa;
	for (size_t i = 0; i < a->n; i++)
		account_free(&a->v[i]);
	free(a->v);
	free(a->tab);
	free(a);
	*pa = NULL;
}

/* Index of the account with jid, or where it would go. */
static size_t array_search(const struct accounts *a, const char *jid, bool *found)
{
	size_t lo = 0, hi = a->n;

	*found = false;
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		int c = strcmp(a->v[mid]->jid, jid);

		if (c == 0) {
			*found = true;
			return mid;
		}
		if (c < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

/* Every allocation comes before the set is touched, so a failure leaves it
 * as it was. acc belongs to the set afterwards, or is freed on failure, so
 * callers never free it after the call (as policy_put). */
int accounts_put(struct accounts *a, struct account *acc)
{
	size_t pos;
	bool found;

	if (a == NULL || acc == NULL || acc->jid == NULL) {
		account_free(&acc);
		return FG_INVAL;
	}
	pos = array_search(a, acc->jid, &found);
	if (!found && a->n == a->cap) {
		size_t cap = a->cap != 0 ? a->cap * 2 : 16;
		struct account **v = realloc(a->v, cap * sizeof(*v));

		if (v == NULL) {
			account_free(&acc);
			return FG_NOMEM;
		}
		a->v = v;
		a->cap = cap;
	}
	if (tab_reserve(a, 1) != FG_OK) {
		account_free(&acc);
		return FG_NOMEM;
	}
	if (found) {
		struct account *old = a->v[pos];

		tab_remove(a, old);
		a->v[pos] = acc;
		account_free(&old);
	} else {
		memmove(a->v + pos + 1, a->v + pos, (a->n - pos) * sizeof(*a->v));
		a->v[pos] = acc;
		a->n++;
	}
	tab_insert(a, acc);
	return FG_OK;
}

bool accounts_remove(struct accounts *a, const char *jid)
{
	struct account *old;
	size_t pos;
	bool found;

	if (a == NULL || jid == NULL)
		return false;
	pos = array_search(a, jid, &found);
	if (!found)
		return false;
	old = a->v[pos];
	tab_remove(a, old);
	memmove(a->v + pos, a->v + pos + 1, (a->n - pos - 1) * sizeof(*a->v));
	a->n--;
	account_free(&old);
	return true;
}

struct account *accounts_get(const struct accounts *a, const char *jid)
{
	size_t i;

	if (a == NULL || jid == NULL)
		return NULL;
	i = tab_find(a, jid, fnv1a(jid));
	return i != SIZE_MAX ? a->tab[i].acc : NULL;
}

size_t accounts_count(const struct accounts *a)
{
	return a != NULL ? a->n : 0;
}

struct account *accounts_at(const struct accounts *a, size_t i)
{
	return a != NULL && i < a->n ? a->v[i] : NULL;
}

#include "throttle.h"

#include "fg.h"
#include "strmap.h"

#include <assert.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/queue.h>
#include <time.h>

/* The first delay; each further failure of the address doubles it. */
#define DELAY_FIRST_MS 1000u
/* Past this many doublings the cap has long been reached; also keeps the
 * shift defined. */
#define DOUBLINGS_MAX 20u
/* An account name in a pair key; longer ones are cut (still one key per
 * name an attacker can choose, and memory stays bounded). */
#define KEY_MAX 600

/* One address ("127.0.0.1") or pair ("127.0.0.1\nalice@contoso.test": an
 * address never holds a newline). */
struct entry {
	TAILQ_ENTRY(entry) link; /* least recently failed first */
	char *key;
	unsigned fails;
	uint64_t last_ms; /* the last failure */
	uint64_t next_ms; /* addresses: the earliest the next attempt is checked */
};

TAILQ_HEAD(entry_list, entry);

struct throttle {
	struct throttle_limits lim;
	struct strmap *map; /* key -> entry */
	struct entry_list order;
	size_t n;
};

uint64_t throttle_now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

struct throttle *throttle_new(const struct throttle_limits *lim)
{
	struct throttle *t = calloc(1, sizeof(*t));
	if (!t)
		return NULL;
	t->lim = *lim;
	if (t->lim.max_entries == 0)
		t->lim.max_entries = 1;
	t->map = strmap_new();
	if (!t->map) {
		free(t);
		return NULL;
	}
	TAILQ_INIT(&t->order);
	return t;
}

void throttle_set_limits(struct throttle *t, const struct throttle_limits *lim)
{
	/* Entries already counted keep their counts and are judged by the
	 * new limits from the next attempt on. */
	size_t keep = t->lim.max_entries;
	t->lim = *lim;
	t->lim.max_entries = keep;
}

static void drop(struct throttle *t, struct entry *e)
{
	TAILQ_REMOVE(&t->order, e, link);
	void *was = strmap_remove(t->map, e->key);
	assert(was == e);
	(void)was;
	t->n--;
	free(e->key);
	free(e);
}

void throttle_free(struct throttle **pt)
{
	struct throttle *t = *pt;
	if (!t)
		return;
	while (!TAILQ_EMPTY(&t->order))
		drop(t, TAILQ_FIRST(&t->order));
	strmap_free(&t->map, NULL);
	free(t);
	*pt = NULL;
}

/* The list is in the order of last failures, so the forgotten ones are at
 * its head. */
static void expire(struct throttle *t, uint64_t now_ms)
{
	uint64_t window = (uint64_t)t->lim.window_s * 1000u;
	struct entry *e;
	while ((e = TAILQ_FIRST(&t->order)) && now_ms - e->last_ms >= window)
		drop(t, e);
}

static void pair_key(char *key, size_t len, const char *addr, const char *account)
{
	snprintf(key, len, "%s\n%s", addr, account);
}

static struct entry *find(struct throttle *t, const char *key, uint64_t now_ms)
{
	expire(t, now_ms);
	return strmap_get(t->map, key);
}

/* Counts a failure for key, making the entry if need be (NULL when out of
 * memory: that failure is not counted, nothing else is lost). */
static struct entry *count(struct throttle *t, const char *key, uint64_t now_ms)
{
	struct entry *e = find(t, key, now_ms);
	if (!e) {
		e = calloc(1, sizeof(*e));
		if (!e || !(e->key = strdup(key)) || strmap_put(t->map, key, e, NULL) != FG_OK) {
			if (e)
				free(e->key);
			free(e);
			return NULL;
		}
		t->n++;
	} else {
		TAILQ_REMOVE(&t->order, e, link);
	}
	TAILQ_INSERT_TAIL(&t->order, e, link);
	e->fails++;
	e->last_ms = now_ms;
	/* Anyone can make entries (a new pair per name guessed): the least
	 * recently failed are forgotten first, never the one just counted. */
	while (t->n > t->lim.max_entries && TAILQ_FIRST(&t->order) != e)
		drop(t, TAILQ_FIRST(&t->order));
	return e;
}

/* 1 s, 2 s, 4 s ... for the address's failures, one more doubling for
 * every second failure for the same account, up to the cap. */
static uint64_t delay_ms(const struct throttle *t, unsigned addr_fails, unsigned pair_fails)
{
	if (t->lim.delay_max_ms == 0 || addr_fails == 0)
		return 0;
	unsigned doublings = addr_fails - 1 + (pair_fails ? (pair_fails - 1) / 2 : 0);
	if (doublings > DOUBLINGS_MAX)
		doublings = DOUBLINGS_MAX;
	uint64_t d = (uint64_t)DELAY_FIRST_MS << doublings;
	return d < t->lim.delay_max_ms ? d : t->lim.delay_max_ms;
}

enum throttle_verdict throttle_admit(struct throttle *t, const char *addr, uint64_t now_ms,
				     uint64_t *wait_ms)
{
	*wait_ms = 0;
	struct entry *e = find(t, addr, now_ms);
	if (!e)
		return THROTTLE_NOW;
	if (e->fails >= t->lim.refuse_after) {
		*wait_ms = e->last_ms + (uint64_t)t->lim.window_s * 1000u - now_ms;
		return THROTTLE_REFUSE;
	}
	uint64_t step = delay_ms(t, e->fails, 0);
	if (now_ms >= e->next_ms) {
		/* Checked now; a parallel attempt waits a turn after it. */
		e->next_ms = now_ms + step;
		return THROTTLE_NOW;
	}
	*wait_ms = e->next_ms - now_ms;
	e->next_ms += step;
	return THROTTLE_WAIT;
}

uint64_t throttle_failed(struct throttle *t, const char *addr, const char *account, uint64_t now_ms)
{
	struct entry *a = count(t, addr, now_ms);
	if (!a)
		return delay_ms(t, 1, 0);
	unsigned pair_fails = 0;
	if (account && *account) {
		char key[KEY_MAX];
		pair_key(key, sizeof(key), addr, account);
		struct entry *p = count(t, key, now_ms);
		pair_fails = p ? p->fails : 0;
		/* Making the pair may have evicted the address (a cap of one
		 * entry); look it up again rather than trust a. */
		a = strmap_get(t->map, addr);
		if (!a)
			return delay_ms(t, 1, pair_fails);
	}
	uint64_t d = delay_ms(t, a->fails, pair_fails);
	if (a->next_ms < now_ms + d)
		a->next_ms = now_ms + d;
	return d;
}

void throttle_succeeded(struct throttle *t, const char *addr, const char *account)
{
	if (!account || !*account)
		return;
	char key[KEY_MAX];
	pair_key(key, sizeof(key), addr, account);
	struct entry *p = strmap_get(t->map, key);
	if (p)
		drop(t, p);
}

unsigned throttle_failures(struct throttle *t, const char *addr, uint64_t now_ms)
{
	struct entry *e = find(t, addr, now_ms);
	return e ? e->fails : 0;
}

size_t throttle_size(const struct throttle *t)
{
	return t->n;
}

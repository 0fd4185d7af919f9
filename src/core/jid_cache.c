/* A direct-mapped table: one entry per slot, chosen by a hash of the text.
 * A new address takes its slot from whatever was there unless that entry
 * is still held, in which case it gets an entry of its own that goes when
 * its last holder puts it back. Entries never change once made, so a
 * holder's pointers stay valid whatever the table does meanwhile. */
#include "jid_cache.h"

#include "fg.h"

#include <assert.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

struct entry {
	struct jid_entry pub; /* first: holders see only this */
	char *text;	      /* the address as it was written */
	size_t len;
	unsigned refs;
	bool in_table;
};

struct jid_cache {
	struct entry **slot;
	size_t mask;
	unsigned long long hits, misses;
};

struct jid_cache *jid_cache_new(size_t slots)
{
	assert(slots && (slots & (slots - 1)) == 0);
	struct jid_cache *c = calloc(1, sizeof(*c));
	if (!c || !(c->slot = calloc(slots, sizeof(*c->slot)))) {
		free(c);
		return NULL;
	}
	c->mask = slots - 1;
	return c;
}

static void entry_free(struct entry *e)
{
	jid_clear(&e->pub.j);
	free(e->pub.bare);
	free(e->text);
	free(e);
}

void jid_cache_free(struct jid_cache **cp)
{
	if (!cp || !*cp)
		return;
	struct jid_cache *c = *cp;
	for (size_t i = 0; i <= c->mask; i++) {
		/* Every holder must have put its entries back by now. */
		assert(!c->slot[i] || c->slot[i]->refs == 0);
		if (c->slot[i])
			entry_free(c->slot[i]);
	}
	free(c->slot);
	free(c);
	*cp = NULL;
}

static size_t hash(const char *s, size_t len)
{
	uint64_t h = 1469598103934665603ULL; /* FNV-1a */
	for (size_t i = 0; i < len; i++)
		h = (h ^ (unsigned char)s[i]) * 1099511628211ULL;
	return (size_t)(h ^ (h >> 29));
}

const struct jid_entry *jid_cache_get(struct jid_cache *c, const char *s, size_t len,
				      enum jid_err *err)
{
	struct entry **slot = &c->slot[hash(s, len) & c->mask];
	struct entry *e = *slot;
	if (e && e->len == len && memcmp(e->text, s, len) == 0) {
		c->hits++;
		e->refs++;
		return &e->pub;
	}
	c->misses++;
	struct entry *n = calloc(1, sizeof(*n));
	if (!n) {
		*err = JID_ERR_NOMEM;
		return NULL;
	}
	enum jid_err rc = jid_parse(s, len, &n->pub.j);
	if (rc != JID_OK) {
		/* Bad addresses are not kept: a peer must not be able to
		 * fill the table with them. */
		free(n);
		*err = rc;
		return NULL;
	}
	n->pub.bare = jid_to_string(&n->pub.j, true);
	n->text = malloc(len + 1);
	if (!n->pub.bare || !n->text) {
		entry_free(n);
		*err = JID_ERR_NOMEM;
		return NULL;
	}
	memcpy(n->text, s, len);
	n->text[len] = '\0';
	n->len = len;
	n->refs = 1;
	if (!e || e->refs == 0) {
		if (e)
			entry_free(e);
		*slot = n;
		n->in_table = true;
	}
	/* Otherwise the slot's entry is still held: this one lives apart. */
	return &n->pub;
}

void jid_cache_put(struct jid_cache *c, const struct jid_entry *pub)
{
	(void)c;
	if (!pub)
		return;
	struct entry *e = (struct entry *)pub; /* pub is the first member */
	assert(e->refs > 0);
	if (--e->refs == 0 && !e->in_table)
		entry_free(e);
}

void jid_cache_stats(const struct jid_cache *c, unsigned long long *hits,
		     unsigned long long *misses)
{
	*hits = c->hits;
	*misses = c->misses;
}

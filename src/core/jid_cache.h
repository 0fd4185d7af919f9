/* Prepared JIDs by their text: a stanza's addresses are mostly the same few
 * strings over and over (a conversation's two JIDs), and preparing one costs
 * more than routing the stanza does. Loop thread only. */
#ifndef FG_JID_CACHE_H
#define FG_JID_CACHE_H

#include "jid.h"

#include <stddef.h>

struct jid_cache;

/* One prepared address: the JID and its bare form, shared by every holder
 * until the last one lets go (jid_cache_put). Read-only. */
struct jid_entry {
	struct jid j;
	char *bare;
};

/* slots: a power of two; NULL when out of memory. */
struct jid_cache *jid_cache_new(size_t slots);
void jid_cache_free(struct jid_cache **c);
/* The prepared form of s[0..len), prepared now or earlier; *err tells why
 * when NULL (JID_ERR_NOMEM included). Each entry returned must be put back. */
const struct jid_entry *jid_cache_get(struct jid_cache *c, const char *s, size_t len,
				      enum jid_err *err);
void jid_cache_put(struct jid_cache *c, const struct jid_entry *e);
/* Lookups that found the prepared form, and those that prepared it. */
void jid_cache_stats(const struct jid_cache *c, unsigned long long *hits,
		     unsigned long long *misses);

#endif

/* A map from strings to pointers (chained hash, grows with its load). The
 * keys are copied; the values belong to the caller. Used for what is keyed
 * by a JID or an address: online sessions, rosters, login-failure counts. */
#ifndef FG_STRMAP_H
#define FG_STRMAP_H

#include <stddef.h>

struct strmap;

struct strmap *strmap_new(void);
/* Frees the map and its keys; free_value (may be NULL) for each value. */
void strmap_free(struct strmap **m, void (*free_value)(void *));
void *strmap_get(const struct strmap *m, const char *key);
/* Sets or replaces; the old value is returned through *old (may be NULL).
 * FG_OK / FG_NOMEM. */
int strmap_put(struct strmap *m, const char *key, void *value, void **old);
/* Removes and returns the value (NULL when there was none). */
void *strmap_remove(struct strmap *m, const char *key);
size_t strmap_count(const struct strmap *m);
/* Calls fn for every entry until it returns non-zero; fn must not change
 * the map except by removing the entry it was given. */
int strmap_each(struct strmap *m, int (*fn)(void *ud, const char *key, void *value), void *ud);

#endif

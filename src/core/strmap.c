#include "strmap.h"

#include "fg.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

struct entry {
	char *key;
	void *value;
	uint64_t hash;
	struct entry *next;
};

struct strmap {
	struct entry **b;
	size_t nb, n;
};

static uint64_t hash_of(const char *s)
{
	uint64_t h = 1469598103934665603ULL;
	for (; *s; s++) {
		h ^= (unsigned char)*s;
		h *= 1099511628211ULL;
	}
	return h;
}

struct strmap *strmap_new(void)
{
	struct strmap *m = calloc(1, sizeof(*m));
	if (!m)
		return NULL;
	m->nb = 64;
	m->b = calloc(m->nb, sizeof(*m->b));
	if (!m->b) {
		free(m);
		return NULL;
	}
	return m;
}

void strmap_free(struct strmap **pm, void (*free_value)(void *))
{
	struct strmap *m = *pm;
	if (!m)
		return;
	for (size_t i = 0; i < m->nb; i++) {
		for (struct entry *e = m->b[i], *nx; e; e = nx) {
			nx = e->next;
			if (free_value)
				free_value(e->value);
			free(e->key);
			free(e);
		}
	}
	free(m->b);
	free(m);
	*pm = NULL;
}

static struct entry **slot(const struct strmap *m, const char *key, uint64_t h)
{
	struct entry **p = &m->b[h & (m->nb - 1)];
	while (*p && ((*p)->hash != h || strcmp((*p)->key, key) != 0))
		p = &(*p)->next;
	return p;
}

void *strmap_get(const struct strmap *m, const char *key)
{
	struct entry *e = *slot(m, key, hash_of(key));
	return e ? e->value : NULL;
}

/* Doubling keeps chains short; a failed grow just leaves them longer. */
static void grow(struct strmap *m)
{
	size_t nb = m->nb * 2;
	struct entry **b = calloc(nb, sizeof(*b));
	if (!b)
		return;
	for (size_t i = 0; i < m->nb; i++) {
		for (struct entry *e = m->b[i], *nx; e; e = nx) {
			nx = e->next;
			e->next = b[e->hash & (nb - 1)];
			b[e->hash & (nb - 1)] = e;
		}
	}
	free(m->b);
	m->b = b;
	m->nb = nb;
}

int strmap_put(struct strmap *m, const char *key, void *value, void **old)
{
	uint64_t h = hash_of(key);
	struct entry **p = slot(m, key, h);
	if (old)
		*old = NULL;
	if (*p) {
		if (old)
			*old = (*p)->value;
		(*p)->value = value;
		return FG_OK;
	}
	struct entry *e = calloc(1, sizeof(*e));
	if (!e || !(e->key = strdup(key))) {
		free(e);
		return FG_NOMEM;
	}
	e->value = value;
	e->hash = h;
	*p = e;
	if (++m->n > m->nb)
		grow(m);
	return FG_OK;
}

void *strmap_remove(struct strmap *m, const char *key)
{
	struct entry **p = slot(m, key, hash_of(key));
	struct entry *e = *p;
	if (!e)
		return NULL;
	void *v = e->value;
	*p = e->next;
	free(e->key);
	free(e);
	m->n--;
	return v;
}

size_t strmap_count(const struct strmap *m)
{
	return m->n;
}

int strmap_each(struct strmap *m, int (*fn)(void *ud, const char *key, void *value), void *ud)
{
	for (size_t i = 0; i < m->nb; i++) {
		for (struct entry *e = m->b[i], *nx; e; e = nx) {
			nx = e->next;
			int rc = fn(ud, e->key, e->value);
			if (rc)
				return rc;
		}
	}
	return 0;
}

#include "caps.h"

#include "fg.h"
#include "log.h"
#include "pubsub.h"
#include "strmap.h"
#include "xmpp.h"

#include <assert.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Unheld entries kept for entities that come back; past this many the
 * unheld ones are dropped. */
#define CAPS_KEEP 512
/* Queries out at once; the oldest is forgotten for a new one. */
#define CAPS_PENDING 64
/* Most +notify features kept of one entity. */
#define CAPS_NOTIFY_MAX 64

struct caps_query {
	unsigned long long id;
	char *to;
	struct caps *c;
};

struct caps_cache {
	struct strmap *by_key;
	struct caps_query q[CAPS_PENDING];
	unsigned long long next_id;
};

static void entry_free(struct caps *c)
{
	for (size_t i = 0; i < c->nnotify; i++)
		free(c->notify[i]);
	free(c->notify);
	free(c->key);
	free(c);
}

static struct caps_cache *cache(struct xmpp_server *srv)
{
	if (!srv->caps) {
		struct caps_cache *cc = calloc(1, sizeof(*cc));
		if (!cc || !(cc->by_key = strmap_new())) {
			free(cc);
			return NULL;
		}
		srv->caps = cc;
	}
	return srv->caps;
}

struct caps *caps_ref(struct caps *c)
{
	if (c)
		c->refs++;
	return c;
}

void caps_put(struct caps **pc)
{
	struct caps *c = *pc;
	if (!c)
		return;
	assert(c->refs > 0);
	c->refs--;
	*pc = NULL;
}

static int drop_unheld(void *ud, const char *key, void *value)
{
	struct caps_cache *cc = ud;
	struct caps *c = value;
	if (c->refs == 0) {
		strmap_remove(cc->by_key, key);
		entry_free(c);
	}
	return 0;
}

static void query_clear(struct caps_query *q)
{
	free(q->to);
	if (q->c)
		q->c->asked = false;
	caps_put(&q->c);
	memset(q, 0, sizeof(*q));
}

static void ask(struct xmpp_server *srv, struct caps_cache *cc, struct caps *c,
		const char *node_ver, const char *full, const char *from)
{
	struct caps_query *q = &cc->q[cc->next_id % CAPS_PENDING];
	query_clear(q);
	q->id = ++cc->next_id;
	if (!(q->to = strdup(full)))
		return;
	q->c = caps_ref(c);
	c->asked = true;
	char id[40];
	snprintf(id, sizeof(id), "fgcaps-%llu", q->id);
	struct xml_node *iq = xml_new(XML_NS_SERVER, "iq");
	struct xml_node *qq =
		iq ? xml_add_child(iq, "http://jabber.org/protocol/disco#info", "query") : NULL;
	if (!qq) {
		xml_free(&iq);
		query_clear(q);
		return;
	}
	xml_set_attr(iq, NULL, "type", "get");
	xml_set_attr(iq, NULL, "id", id);
	xml_set_attr(iq, NULL, "from", from);
	xml_set_attr(iq, NULL, "to", full);
	xml_set_attr(qq, NULL, "node", node_ver);
	srv->route(srv, iq);
}

struct caps *caps_of_presence(struct xmpp_server *srv, const struct xml_node *presence,
			      const char *full, const char *asker_domain)
{
	const struct xml_node *el = xml_child(presence, XML_NS_CAPS, "c");
	const char *hash = el ? xml_attr(el, "hash") : NULL, *ver = el ? xml_attr(el, "ver") : NULL;
	const char *node = el ? xml_attr(el, "node") : NULL;
	/* Legacy capabilities (no hash) name no fixed feature set. */
	if (!hash || !ver || !node || strlen(ver) > 128 || strlen(node) > 512 || strlen(hash) > 32)
		return NULL;
	struct caps_cache *cc = cache(srv);
	if (!cc)
		return NULL;
	char key[200], node_ver[700];
	snprintf(key, sizeof(key), "%s %s", hash, ver);
	snprintf(node_ver, sizeof(node_ver), "%s#%s", node, ver);
	struct caps *c = strmap_get(cc->by_key, key);
	if (!c) {
		if (strmap_count(cc->by_key) >= CAPS_KEEP)
			strmap_each(cc->by_key, drop_unheld, cc);
		if (strmap_count(cc->by_key) >= CAPS_KEEP)
			return NULL;
		c = calloc(1, sizeof(*c));
		if (!c || !(c->key = strdup(key)) ||
		    strmap_put(cc->by_key, key, c, NULL) != FG_OK) {
			if (c)
				free(c->key);
			free(c);
			return NULL;
		}
	}
	if (!c->known && !c->asked)
		ask(srv, cc, c, node_ver, full, asker_domain);
	return caps_ref(c);
}

bool caps_wants(const struct caps *c, const char *node)
{
	if (!c || !c->known)
		return false;
	for (size_t i = 0; i < c->nnotify; i++)
		if (!strcmp(c->notify[i], node))
			return true;
	return false;
}

static int cmp_str(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

static void fill(struct caps *c, const struct xml_node *q)
{
	size_t n = 0;
	for (const struct xml_node *f = q ? xml_first_element(q) : NULL; f; f = xml_next_element(f))
		if (xml_is(f, NULL, "feature") && pubsub_notify_node(xml_attr(f, "var")))
			n++;
	if (n > CAPS_NOTIFY_MAX)
		n = CAPS_NOTIFY_MAX;
	c->notify = n ? calloc(n, sizeof(char *)) : NULL;
	c->nnotify = 0;
	for (const struct xml_node *f = q && c->notify ? xml_first_element(q) : NULL;
	     f && c->nnotify < n; f = xml_next_element(f)) {
		const char *var = xml_attr(f, "var");
		size_t len = xml_is(f, NULL, "feature") ? pubsub_notify_node(var) : 0;
		if (len && (c->notify[c->nnotify] = strndup(var, len)))
			c->nnotify++;
	}
	if (c->nnotify)
		qsort(c->notify, c->nnotify, sizeof(char *), cmp_str);
	c->known = true;
}

bool caps_answer(struct xmpp_server *srv, struct xml_node *iq, struct caps **filled)
{
	const char *id = xml_attr(iq, "id"), *from = xml_attr(iq, "from");
	struct caps_cache *cc = srv->caps;
	*filled = NULL;
	if (!cc || !id || !from || strncmp(id, "fgcaps-", 7) != 0)
		return false;
	unsigned long long n = strtoull(id + 7, NULL, 10);
	struct caps_query *q = &cc->q[(n - 1) % CAPS_PENDING];
	/* Only the entity asked answers: an id alone is guessable. */
	if (n == 0 || q->id != n || !q->to || strcmp(q->to, from) != 0)
		return false;
	struct caps *c = q->c;
	const char *type = xml_attr(iq, "type");
	if (!c->known) {
		if (type && !strcmp(type, "result"))
			fill(c, xml_child(iq, "http://jabber.org/protocol/disco#info", "query"));
		else
			c->known = true; /* no features: no notifications */
		log_debug("caps", "%s: %zu +notify nodes", c->key, c->nnotify);
	}
	*filled = c;
	query_clear(q);
	xml_free(&iq);
	return true;
}

static int free_entry(void *ud, const char *key, void *value)
{
	(void)ud;
	(void)key;
	struct caps *c = value;
	/* Holders keep theirs: a session freed after the cache still puts. */
	if (c->refs == 0)
		entry_free(c);
	return 0;
}

void caps_free_all(struct xmpp_server *srv)
{
	struct caps_cache *cc = srv->caps;
	if (!cc)
		return;
	for (size_t i = 0; i < CAPS_PENDING; i++)
		query_clear(&cc->q[i]);
	strmap_each(cc->by_key, free_entry, NULL);
	strmap_free(&cc->by_key, NULL);
	free(cc);
	srv->caps = NULL;
}

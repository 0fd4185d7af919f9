#include "caps.h"

#include "fg.h"
#include "log.h"
#include "pubsub.h"
#include "strmap.h"
#include "xmpp.h"

#include <openssl/evp.h>
#include <openssl/sha.h>

#include <assert.h>
#include <stddef.h>
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

static struct caps_query *q_of(struct caps_cache *cc, unsigned long long id)
{
	return &cc->q[(id - 1) % CAPS_PENDING];
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

/* ---- the verification string (XEP-0115 §5.1, with forms as §5.4) ---- */

struct strs {
	char **v;
	size_t n;
	bool oom;
};

static void strs_add(struct strs *a, char *s)
{
	char **n = s ? realloc(a->v, (a->n + 1) * sizeof(char *)) : NULL;
	if (!n) {
		free(s);
		a->oom = true;
		return;
	}
	a->v = n;
	a->v[a->n++] = s;
}

static void strs_free(struct strs *a)
{
	for (size_t i = 0; i < a->n; i++)
		free(a->v[i]);
	free(a->v);
	memset(a, 0, sizeof(*a));
}

/* Sorted by octets (i;octet), each followed by '<' when sep (a field's
 * text ends with its own). */
static void strs_out(struct strs *a, struct xml_buf *b, bool sep)
{
	if (a->n)
		qsort(a->v, a->n, sizeof(char *), cmp_str);
	for (size_t i = 0; i < a->n; i++) {
		xml_buf_puts(b, a->v[i]);
		if (sep)
			xml_buf_puts(b, "<");
	}
}

static char *field_text(const struct xml_node *f)
{
	struct strs vals = {0};
	struct xml_buf b = {0};
	xml_buf_puts(&b, xml_attr(f, "var"));
	xml_buf_puts(&b, "<");
	for (const struct xml_node *v = xml_first_element(f); v; v = xml_next_element(v))
		if (xml_is(v, NULL, "value"))
			strs_add(&vals, strdup(xml_text(v)));
	strs_out(&vals, &b, true);
	char *out = vals.oom || b.oom ? NULL : strndup(b.data, b.len);
	strs_free(&vals);
	xml_buf_free(&b);
	return out;
}

/* One extended form (XEP-0128): its FORM_TYPE, then its fields. NULL with
 * *bad when it cannot be hashed (no FORM_TYPE: the answer is refused). */
static char *form_text(const struct xml_node *x, bool *bad)
{
	struct strs fields = {0};
	const char *type = NULL;
	for (const struct xml_node *f = xml_first_element(x); f; f = xml_next_element(f)) {
		if (!xml_is(f, NULL, "field") || !xml_attr(f, "var"))
			continue;
		if (!strcmp(xml_attr(f, "var"), "FORM_TYPE")) {
			const struct xml_node *v = xml_child(f, NULL, "value");
			type = v ? xml_text(v) : "";
		} else {
			strs_add(&fields, field_text(f));
		}
	}
	struct xml_buf b = {0};
	char *out = NULL;
	if (!type) {
		*bad = true;
	} else {
		xml_buf_puts(&b, type);
		xml_buf_puts(&b, "<");
		strs_out(&fields, &b, false);
		out = fields.oom || b.oom ? NULL : strndup(b.data, b.len);
	}
	strs_free(&fields);
	xml_buf_free(&b);
	return out;
}

bool caps_verify(const struct xml_node *q, const char *hash, const char *ver)
{
	if (strcmp(hash, "sha-1") != 0)
		return true;
	struct strs ids = {0}, feats = {0}, forms = {0};
	bool bad = false;
	for (const struct xml_node *c = q ? xml_first_element(q) : NULL; c;
	     c = xml_next_element(c)) {
		if (xml_is(c, NULL, "identity")) {
			const char *lang = xml_attr_ns(c, XML_NS_XML, "lang");
			const char *cat = xml_attr(c, "category"), *type = xml_attr(c, "type");
			const char *name = xml_attr(c, "name");
			char *t = NULL;
			if (asprintf(&t, "%s/%s/%s/%s", cat ? cat : "", type ? type : "",
				     lang ? lang : "", name ? name : "") < 0)
				t = NULL;
			strs_add(&ids, t);
		} else if (xml_is(c, NULL, "feature") && xml_attr(c, "var")) {
			strs_add(&feats, strdup(xml_attr(c, "var")));
		} else if (xml_is(c, XML_NS_DATA, "x")) {
			char *t = form_text(c, &bad);
			if (t)
				strs_add(&forms, t);
		}
	}
	struct xml_buf b = {0};
	strs_out(&ids, &b, true);
	strs_out(&feats, &b, true);
	strs_out(&forms, &b, false);
	bool ok = false;
	if (!bad && !ids.oom && !feats.oom && !forms.oom && !b.oom) {
		unsigned char md[SHA_DIGEST_LENGTH];
		unsigned char b64[4 * ((SHA_DIGEST_LENGTH + 2) / 3) + 1];
		SHA1((const unsigned char *)(b.data ? b.data : ""), b.len, md);
		EVP_EncodeBlock(b64, md, SHA_DIGEST_LENGTH);
		ok = !strcmp((const char *)b64, ver);
	}
	strs_free(&ids);
	strs_free(&feats);
	strs_free(&forms);
	xml_buf_free(&b);
	return ok;
}

bool caps_answer(struct xmpp_server *srv, struct xml_node *iq, struct caps **filled,
		 struct caps **shared)
{
	const char *id = xml_attr(iq, "id"), *from = xml_attr(iq, "from");
	struct caps_cache *cc = srv->caps;
	*filled = *shared = NULL;
	if (!cc || !id || !from || strncmp(id, "fgcaps-", 7) != 0)
		return false;
	unsigned long long n = strtoull(id + 7, NULL, 10);
	struct caps_query *pq = n ? q_of(cc, n) : NULL;
	/* Only the entity asked answers: an id alone is guessable. */
	if (!pq || pq->id != n || !pq->to || strcmp(pq->to, from) != 0)
		return false;
	struct caps *c = pq->c;
	const char *type = xml_attr(iq, "type");
	const struct xml_node *q = xml_child(iq, "http://jabber.org/protocol/disco#info", "query");
	const char *sp = strchr(c->key, ' ');
	char hash[40];
	assert(sp && sp - c->key < (ptrdiff_t)sizeof(hash));
	snprintf(hash, sizeof(hash), "%.*s", (int)(sp - c->key), c->key);
	if (!c->known && type && !strcmp(type, "result") && !caps_verify(q, hash, sp + 1)) {
		/* An answer that does not hash to the ver it was asked for is
		 * that entity's alone (clients do send stale vers): an entry
		 * of its own, and the next entity showing the ver is asked
		 * again. */
		char key[80];
		snprintf(key, sizeof(key), "own %llu", n);
		struct caps *own = calloc(1, sizeof(*own));
		if (own && (own->key = strdup(key)) &&
		    strmap_put(cc->by_key, key, own, NULL) == FG_OK) {
			fill(own, q);
			*filled = own;
			*shared = c;
		} else if (own) {
			free(own->key);
			free(own);
		}
		log_debug("caps", "%s answered for %s what does not hash to it", from, c->key);
		query_clear(pq);
		xml_free(&iq);
		return true;
	}
	if (!c->known) {
		if (type && !strcmp(type, "result"))
			fill(c, q);
		else
			c->known = true; /* no features: no notifications */
		log_debug("caps", "%s: %zu +notify nodes", c->key, c->nnotify);
	}
	*filled = c;
	query_clear(pq);
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

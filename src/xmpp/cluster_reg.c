#include "cluster_reg.h"

#include "fg.h"
#include "jid.h"
#include "strmap.h"
#include "xmlstream.h"

#include <assert.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* node@domain and node@domain/resource (jid.h: each part at most
 * JID_PART_MAX bytes) */
#define BARE_MAX (2 * JID_PART_MAX + 2)
#define FULL_MAX (3 * JID_PART_MAX + 3)

bool creg_node_valid(const char *name)
{
	size_t n = name ? strlen(name) : 0;
	if (n == 0 || n >= CREG_NODE_MAX)
		return false;
	for (size_t i = 0; i < n; i++) {
		char ch = name[i];
		bool ok = (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') ||
			  (ch >= '0' && ch <= '9') || ch == '-' || ch == '_' || ch == '.';
		if (!ok)
			return false;
	}
	return true;
}

bool creg_encode(const struct creg_rec *r, char *buf, size_t len)
{
	if (!creg_node_valid(r->node))
		return false;
	int n = snprintf(buf, len, "%s %d %d", r->node, r->priority, r->available ? 1 : 0);
	return n > 0 && (size_t)n < len;
}

bool creg_decode(const char *s, size_t len, struct creg_rec *r)
{
	char tmp[CREG_NODE_MAX + 32];
	if (!s || len == 0 || len >= sizeof(tmp) || memchr(s, '\0', len))
		return false;
	memcpy(tmp, s, len);
	tmp[len] = '\0';
	char *sp1 = strchr(tmp, ' ');
	if (!sp1)
		return false;
	*sp1 = '\0';
	if (!creg_node_valid(tmp))
		return false;
	char *end;
	long prio = strtol(sp1 + 1, &end, 10);
	/* RFC 6121 §4.7.2.3: a priority is -128..127 */
	if (end == sp1 + 1 || *end != ' ' || prio < -128 || prio > 127)
		return false;
	if (strcmp(end + 1, "0") != 0 && strcmp(end + 1, "1") != 0)
		return false;
	memcpy(r->node, tmp, strlen(tmp) + 1); /* creg_node_valid: it fits */
	r->priority = (int)prio;
	r->available = end[1] == '1';
	/* Only the form creg_encode writes ("+5", " 5", "05" are not). */
	char back[CREG_NODE_MAX + 32];
	return creg_encode(r, back, sizeof(back)) && strlen(back) == len &&
	       memcmp(back, s, len) == 0;
}

/* One user's sessions on every node. */
struct cuser {
	size_t n, cap;
	struct centry {
		char *resource;
		struct creg_rec r;
	} * v;
};

struct creg {
	struct strmap *users; /* bare -> struct cuser */
};

static void cuser_free(void *p)
{
	struct cuser *u = p;
	for (size_t i = 0; i < u->n; i++)
		free(u->v[i].resource);
	free(u->v);
	free(u);
}

struct creg *creg_new(void)
{
	struct creg *c = calloc(1, sizeof(*c));
	if (c && !(c->users = strmap_new())) {
		free(c);
		return NULL;
	}
	return c;
}

void creg_free(struct creg **pc)
{
	if (!*pc)
		return;
	strmap_free(&(*pc)->users, cuser_free);
	free(*pc);
	*pc = NULL;
}

void creg_clear(struct creg *c)
{
	strmap_free(&c->users, cuser_free);
	c->users = strmap_new();
}

/* Splits full into bare (into buf) and resource; false when not full. */
static bool split(const char *full, char *buf, size_t len, const char **res)
{
	const char *slash = full ? strchr(full, '/') : NULL;
	if (!slash || slash == full || !slash[1] || (size_t)(slash - full) >= len)
		return false;
	memcpy(buf, full, (size_t)(slash - full));
	buf[slash - full] = '\0';
	*res = slash + 1;
	return true;
}

int creg_set(struct creg *c, const char *full, const struct creg_rec *r)
{
	char bare[BARE_MAX];
	const char *res;
	if (!c->users || !split(full, bare, sizeof(bare), &res))
		return c->users ? FG_ERR : FG_NOMEM;
	struct cuser *u = strmap_get(c->users, bare);
	if (!u) {
		u = calloc(1, sizeof(*u));
		if (!u || strmap_put(c->users, bare, u, NULL) != FG_OK) {
			free(u);
			return FG_NOMEM;
		}
	}
	for (size_t i = 0; i < u->n; i++)
		if (strcmp(u->v[i].resource, res) == 0) {
			u->v[i].r = *r;
			return FG_OK;
		}
	if (u->n == u->cap) {
		size_t cap = u->cap ? u->cap * 2 : 2;
		struct centry *v = realloc(u->v, cap * sizeof(*v));
		if (!v)
			return FG_NOMEM;
		u->v = v;
		u->cap = cap;
	}
	char *rs = strdup(res);
	if (!rs)
		return FG_NOMEM;
	u->v[u->n++] = (struct centry){rs, *r};
	return FG_OK;
}

void creg_del(struct creg *c, const char *full)
{
	char bare[BARE_MAX];
	const char *res;
	if (!c->users || !split(full, bare, sizeof(bare), &res))
		return;
	struct cuser *u = strmap_get(c->users, bare);
	if (!u)
		return;
	for (size_t i = 0; i < u->n; i++)
		if (strcmp(u->v[i].resource, res) == 0) {
			free(u->v[i].resource);
			u->v[i] = u->v[--u->n];
			break;
		}
	if (u->n == 0)
		cuser_free(strmap_remove(c->users, bare));
}

static int drop_in_user(void *ud, const char *bare, void *value)
{
	const char *node = ud;
	struct cuser *u = value;
	(void)bare;
	for (size_t i = 0; i < u->n;) {
		if (strcmp(u->v[i].r.node, node) == 0) {
			free(u->v[i].resource);
			u->v[i] = u->v[--u->n];
		} else {
			i++;
		}
	}
	return 0;
}

static int collect_empty(void *ud, const char *bare, void *value)
{
	struct cuser *u = value;
	char ***list = ud;
	if (u->n == 0) {
		char *b = strdup(bare);
		if (b)
			*(*list)++ = b;
	}
	return 0;
}

void creg_drop_node(struct creg *c, const char *node)
{
	if (!c->users)
		return;
	strmap_each(c->users, drop_in_user, (void *)node);
	/* users left without sessions go too (not while iterating) */
	size_t n = strmap_count(c->users);
	char **all = calloc(n + 1, sizeof(*all)), **end = all;
	if (!all)
		return;
	strmap_each(c->users, collect_empty, &end);
	for (char **p = all; p < end; p++) {
		cuser_free(strmap_remove(c->users, *p));
		free(*p);
	}
	free(all);
}

const struct creg_rec *creg_get(const struct creg *c, const char *full)
{
	char bare[BARE_MAX];
	const char *res;
	if (!c->users || !split(full, bare, sizeof(bare), &res))
		return NULL;
	struct cuser *u = strmap_get(c->users, bare);
	for (size_t i = 0; u && i < u->n; i++)
		if (strcmp(u->v[i].resource, res) == 0)
			return &u->v[i].r;
	return NULL;
}

void creg_each_of(const struct creg *c, const char *bare,
		  void (*fn)(void *ud, const char *resource, const struct creg_rec *r), void *ud)
{
	struct cuser *u = c->users ? strmap_get(c->users, bare) : NULL;
	for (size_t i = 0; u && i < u->n; i++)
		fn(ud, u->v[i].resource, &u->v[i].r);
}

struct each_ctx {
	void (*fn)(void *ud, const char *full, const struct creg_rec *r);
	void *ud;
	const char *node;
	size_t count;
};

static int each_user(void *ud, const char *bare, void *value)
{
	struct each_ctx *e = ud;
	struct cuser *u = value;
	for (size_t i = 0; i < u->n; i++) {
		if (e->node) {
			e->count += strcmp(u->v[i].r.node, e->node) == 0;
			continue;
		}
		char full[FULL_MAX];
		snprintf(full, sizeof(full), "%s/%s", bare, u->v[i].resource);
		e->fn(e->ud, full, &u->v[i].r);
	}
	return 0;
}

void creg_each(const struct creg *c,
	       void (*fn)(void *ud, const char *full, const struct creg_rec *r), void *ud)
{
	struct each_ctx e = {fn, ud, NULL, 0};
	if (c->users)
		strmap_each(c->users, each_user, &e);
}

size_t creg_count_node(const struct creg *c, const char *node)
{
	struct each_ctx e = {NULL, NULL, node, 0};
	if (c->users)
		strmap_each(c->users, each_user, &e);
	return e.count;
}

size_t creg_nodes_for(const struct creg *c, const char *bare, const char *self, bool message,
		      char out[][CREG_NODE_MAX], size_t max)
{
	struct cuser *u = c->users ? strmap_get(c->users, bare) : NULL;
	size_t n = 0;
	for (size_t i = 0; u && i < u->n; i++) {
		const struct creg_rec *r = &u->v[i].r;
		if (!r->available || (message && r->priority < 0) || strcmp(r->node, self) == 0)
			continue;
		bool seen = false;
		for (size_t k = 0; k < n && !seen; k++)
			seen = strcmp(out[k], r->node) == 0;
		if (!seen && n < max)
			snprintf(out[n++], CREG_NODE_MAX, "%s", r->node);
	}
	return n;
}

static bool field_is(const char *name, size_t len, const char *want)
{
	return len == strlen(want) && memcmp(name, want, len) == 0;
}

bool cluster_env_parse(const char *const *names, const size_t *nlens, const char *const *values,
		       const size_t *vlens, size_t n, struct cluster_env *e, char *why,
		       size_t whylen)
{
	memset(e, 0, sizeof(*e));
	const char *st = NULL;
	size_t stlen = 0;
	int mode = -1;
	for (size_t i = 0; i < n; i++) {
		if (!names[i] || !values[i])
			continue;
		if (field_is(names[i], nlens[i], "o")) {
			if (vlens[i] == 0 || vlens[i] >= CREG_NODE_MAX)
				break;
			memcpy(e->origin, values[i], vlens[i]);
			e->origin[vlens[i]] = '\0';
		} else if (field_is(names[i], nlens[i], "m")) {
			mode = field_is(values[i], vlens[i], "l")   ? 1
			       : field_is(values[i], vlens[i], "r") ? 0
								    : -1;
		} else if (field_is(names[i], nlens[i], "s")) {
			st = values[i];
			stlen = vlens[i];
		}
	}
	if (!creg_node_valid(e->origin) || mode < 0 || !st) {
		snprintf(why, whylen, "the entry lacks a valid origin, mode or stanza");
		return false;
	}
	/* xmlstream_parse_one wants a string; a NUL inside is not a stanza */
	if (stlen == 0 || memchr(st, '\0', stlen)) {
		snprintf(why, whylen, "the stanza is empty or holds a NUL");
		return false;
	}
	char *copy = strndup(st, stlen);
	if (!copy) {
		snprintf(why, whylen, "out of memory");
		return false;
	}
	e->stanza = xmlstream_parse_one(copy);
	free(copy);
	if (!e->stanza) {
		snprintf(why, whylen, "the stanza does not parse");
		return false;
	}
	bool kind = xml_is(e->stanza, XML_NS_SERVER, "message") ||
		    xml_is(e->stanza, XML_NS_SERVER, "presence") ||
		    xml_is(e->stanza, XML_NS_SERVER, "iq");
	if (!kind || !xml_attr(e->stanza, "to") || !xml_attr(e->stanza, "from")) {
		xml_free(&e->stanza);
		snprintf(why, whylen, "not a message, presence or iq with from and to");
		return false;
	}
	e->local_only = mode == 1;
	return true;
}

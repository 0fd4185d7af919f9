#include "xml.h"

#include "fg.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- buffers ---- */

static bool buf_reserve(struct xml_buf *b, size_t extra)
{
	if (b->oom)
		return false;
	if (b->len + extra + 1 <= b->cap)
		return true;
	size_t cap = b->cap ? b->cap : 256;
	while (cap < b->len + extra + 1) {
		if (cap > SIZE_MAX / 2) {
			b->oom = true;
			return false;
		}
		cap *= 2;
	}
	char *p = realloc(b->data, cap);
	if (!p) {
		b->oom = true;
		return false;
	}
	b->data = p;
	b->cap = cap;
	return true;
}

void xml_buf_append(struct xml_buf *b, const char *s, size_t n)
{
	if (!buf_reserve(b, n))
		return;
	memcpy(b->data + b->len, s, n);
	b->len += n;
	b->data[b->len] = '\0';
}

void xml_buf_puts(struct xml_buf *b, const char *s)
{
	xml_buf_append(b, s, strlen(s));
}

void xml_buf_reset(struct xml_buf *b)
{
	b->len = 0;
	b->oom = false;
	if (b->data)
		b->data[0] = '\0';
}

void xml_buf_free(struct xml_buf *b)
{
	free(b->data);
	memset(b, 0, sizeof(*b));
}

/* ---- arena ---- */

struct arena_chunk {
	struct arena_chunk *next;
	size_t used;
	size_t cap;
	max_align_t data[]; /* aligned for any node type */
};

/* The first chunk comes in the same allocation as the arena: a stanza of
 * ordinary size costs one malloc and one free. */
#define FIRST_CHUNK 1024

struct xml_arena {
	struct arena_chunk *head;
	size_t total;
	struct arena_chunk first; /* FIRST_CHUNK bytes of data follow */
};

struct xml_arena *xml_arena_new(void)
{
	struct xml_arena *a = malloc(sizeof(*a) + FIRST_CHUNK);
	if (!a)
		return NULL;
	a->first.next = NULL;
	a->first.used = 0;
	a->first.cap = FIRST_CHUNK;
	a->head = &a->first;
	a->total = sizeof(*a) + FIRST_CHUNK;
	return a;
}

void xml_arena_free(struct xml_arena **ap)
{
	if (!ap || !*ap)
		return;
	struct arena_chunk *c = (*ap)->head;
	while (c != &(*ap)->first) {
		struct arena_chunk *n = c->next;
		free(c);
		c = n;
	}
	free(*ap);
	*ap = NULL;
}

size_t xml_arena_size(const struct xml_arena *a)
{
	return a ? a->total : 0;
}

/* n bytes at an offset that is a multiple of align (a power of two). */
static void *arena_take(struct xml_arena *a, size_t n, size_t align)
{
	struct arena_chunk *c = a->head;
	size_t at = (c->used + align - 1) & ~(align - 1);
	if (at > c->cap || c->cap - at < n) {
		/* Chunks double up to 64 KiB so small stanzas take one malloc
		 * and large ones few. */
		size_t cap = c->cap * 2;
		if (cap > 65536)
			cap = 65536;
		if (cap < n)
			cap = n;
		c = malloc(sizeof(*c) + cap);
		if (!c)
			return NULL;
		c->used = 0;
		c->cap = cap;
		c->next = a->head;
		a->head = c;
		a->total += sizeof(*c) + cap;
		at = 0;
	}
	c->used = at + n;
	return (char *)c->data + at;
}

void *xml_arena_alloc(struct xml_arena *a, size_t n)
{
	return arena_take(a, n, sizeof(max_align_t));
}

char *xml_arena_strndup(struct xml_arena *a, const char *s, size_t n)
{
	/* Strings need no alignment: they pack between the nodes. */
	char *p = arena_take(a, n + 1, 1);
	if (!p)
		return NULL;
	memcpy(p, s, n);
	p[n] = '\0';
	return p;
}

/* ---- building ---- */

static struct xml_node *node_alloc(struct xml_arena *a)
{
	struct xml_node *n = xml_arena_alloc(a, sizeof(*n));
	if (n) {
		memset(n, 0, sizeof(*n));
		n->arena = a;
	}
	return n;
}

struct xml_node *xml_new_in(struct xml_arena *a, const char *ns, size_t ns_len, const char *name,
			    size_t name_len)
{
	struct xml_node *n = node_alloc(a);
	if (!n)
		return NULL;
	n->type = XML_ELEMENT;
	n->ns = xml_arena_strndup(a, ns ? ns : "", ns ? ns_len : 0);
	n->name = xml_arena_strndup(a, name, name_len);
	return (n->ns && n->name) ? n : NULL;
}

struct xml_node *xml_new(const char *ns, const char *name)
{
	struct xml_arena *a = xml_arena_new();
	if (!a)
		return NULL;
	struct xml_node *n = xml_new_in(a, ns, ns ? strlen(ns) : 0, name, strlen(name));
	if (!n)
		xml_arena_free(&a);
	return n;
}

void xml_free(struct xml_node **node)
{
	if (!node || !*node)
		return;
	struct xml_arena *a = (*node)->arena;
	xml_arena_free(&a);
	*node = NULL;
}

static void link_child(struct xml_node *parent, struct xml_node *child)
{
	child->parent = parent;
	if (parent->last_child)
		parent->last_child->next = child;
	else
		parent->children = child;
	parent->last_child = child;
}

struct xml_node *xml_add_child(struct xml_node *parent, const char *ns, const char *name)
{
	struct xml_arena *a = parent->arena;
	struct xml_node *n = node_alloc(a);
	if (!n)
		return NULL;
	n->type = XML_ELEMENT;
	n->ns = ns ? xml_arena_strndup(a, ns, strlen(ns)) : parent->ns;
	n->name = xml_arena_strndup(a, name, strlen(name));
	if (!n->ns || !n->name)
		return NULL;
	link_child(parent, n);
	return n;
}

int xml_add_text(struct xml_node *parent, const char *text, size_t len)
{
	struct xml_arena *a = parent->arena;
	struct xml_node *last = parent->last_child;
	if (len == 0)
		return FG_OK;
	if (last && last->type == XML_TEXT) {
		/* Adjacent texts are merged so that trees compare exactly. */
		char *t = xml_arena_alloc(a, last->text_len + len + 1);
		if (!t)
			return FG_NOMEM;
		memcpy(t, last->text, last->text_len);
		memcpy(t + last->text_len, text, len);
		last->text_len += len;
		t[last->text_len] = '\0';
		last->text = t;
		return FG_OK;
	}
	/* The node and its text in one piece. */
	struct xml_node *n = xml_arena_alloc(a, sizeof(*n) + len + 1);
	if (!n)
		return FG_NOMEM;
	char *t = (char *)(n + 1);
	memcpy(t, text, len);
	t[len] = '\0';
	*n = (struct xml_node){.type = XML_TEXT, .arena = a, .text = t, .text_len = len};
	link_child(parent, n);
	return FG_OK;
}

static bool ns_match(const char *want, const char *have)
{
	return want == NULL || strcmp(want, have) == 0;
}

int xml_set_attr(struct xml_node *el, const char *ns, const char *name, const char *value)
{
	struct xml_arena *a = el->arena;
	const char *ans = ns ? ns : "";
	char *v = xml_arena_strndup(a, value, strlen(value));
	if (!v)
		return FG_NOMEM;
	for (struct xml_attr *at = el->attrs; at; at = at->next) {
		if (strcmp(at->ns, ans) == 0 && strcmp(at->name, name) == 0) {
			at->value = v;
			return FG_OK;
		}
	}
	struct xml_attr *at = xml_arena_alloc(a, sizeof(*at));
	if (!at)
		return FG_NOMEM;
	at->ns = ns ? xml_arena_strndup(a, ns, strlen(ns)) : "";
	at->name = xml_arena_strndup(a, name, strlen(name));
	if (!at->ns || !at->name)
		return FG_NOMEM;
	at->value = v;
	/* Appended, so attributes serialize in the order they were set. */
	at->next = NULL;
	struct xml_attr **pp = &el->attrs;
	while (*pp)
		pp = &(*pp)->next;
	*pp = at;
	return FG_OK;
}

void xml_remove_attr(struct xml_node *el, const char *ns, const char *name)
{
	const char *ans = ns ? ns : "";
	for (struct xml_attr **pp = &el->attrs; *pp; pp = &(*pp)->next) {
		if (strcmp((*pp)->ns, ans) == 0 && strcmp((*pp)->name, name) == 0) {
			*pp = (*pp)->next;
			return;
		}
	}
}

static int copy_into(struct xml_node *parent, const struct xml_node *src)
{
	if (src->type == XML_TEXT)
		return xml_add_text(parent, src->text, src->text_len);
	struct xml_node *n = xml_add_child(parent, src->ns, src->name);
	if (!n)
		return FG_NOMEM;
	for (const struct xml_attr *at = src->attrs; at; at = at->next)
		if (xml_set_attr(n, at->ns, at->name, at->value) != FG_OK)
			return FG_NOMEM;
	for (const struct xml_node *c = src->children; c; c = c->next)
		if (copy_into(n, c) != FG_OK)
			return FG_NOMEM;
	return FG_OK;
}

int xml_append_copy(struct xml_node *parent, const struct xml_node *child)
{
	return copy_into(parent, child);
}

struct xml_node *xml_clone(const struct xml_node *node)
{
	if (node->type != XML_ELEMENT)
		return NULL;
	struct xml_node *n = xml_new(node->ns, node->name);
	if (!n)
		return NULL;
	for (const struct xml_attr *at = node->attrs; at; at = at->next)
		if (xml_set_attr(n, at->ns, at->name, at->value) != FG_OK)
			goto fail;
	for (const struct xml_node *c = node->children; c; c = c->next)
		if (copy_into(n, c) != FG_OK)
			goto fail;
	return n;
fail:
	xml_free(&n);
	return NULL;
}

/* ---- queries ---- */

const char *xml_attr_ns(const struct xml_node *el, const char *ns, const char *name)
{
	const char *ans = ns ? ns : "";
	for (const struct xml_attr *at = el->attrs; at; at = at->next)
		if (strcmp(at->ns, ans) == 0 && strcmp(at->name, name) == 0)
			return at->value;
	return NULL;
}

const char *xml_attr(const struct xml_node *el, const char *name)
{
	return xml_attr_ns(el, NULL, name);
}

bool xml_is(const struct xml_node *el, const char *ns, const char *name)
{
	return el && el->type == XML_ELEMENT && ns_match(ns, el->ns) &&
	       (name == NULL || strcmp(el->name, name) == 0);
}

void xml_set_ns_deep(struct xml_node *el, const char *from, const char *to)
{
	if (!el || el->type != XML_ELEMENT)
		return;
	if (strcmp(el->ns, from) == 0)
		el->ns = to; /* a static string outlives the arena */
	for (struct xml_node *c = el->children; c; c = c->next)
		xml_set_ns_deep(c, from, to);
}

struct xml_node *xml_child(const struct xml_node *el, const char *ns, const char *name)
{
	for (struct xml_node *c = el->children; c; c = c->next)
		if (xml_is(c, ns, name))
			return c;
	return NULL;
}

struct xml_node *xml_first_element(const struct xml_node *el)
{
	for (struct xml_node *c = el->children; c; c = c->next)
		if (c->type == XML_ELEMENT)
			return c;
	return NULL;
}

struct xml_node *xml_next_element(const struct xml_node *el)
{
	for (struct xml_node *c = el->next; c; c = c->next)
		if (c->type == XML_ELEMENT)
			return c;
	return NULL;
}

const char *xml_text(const struct xml_node *el)
{
	/* Texts are merged, so an element has at most one text run between
	 * elements; mixed content is rare in XMPP and gets concatenated. */
	const struct xml_node *only = NULL;
	size_t total = 0, runs = 0;
	for (const struct xml_node *c = el->children; c; c = c->next)
		if (c->type == XML_TEXT) {
			only = c;
			total += c->text_len;
			runs++;
		}
	if (runs == 0)
		return "";
	if (runs == 1)
		return only->text;
	char *t = xml_arena_alloc(el->arena, total + 1);
	if (!t)
		return "";
	size_t off = 0;
	for (const struct xml_node *c = el->children; c; c = c->next)
		if (c->type == XML_TEXT) {
			memcpy(t + off, c->text, c->text_len);
			off += c->text_len;
		}
	t[off] = '\0';
	return t;
}

static size_t attr_count(const struct xml_node *el)
{
	size_t n = 0;
	for (const struct xml_attr *at = el->attrs; at; at = at->next)
		n++;
	return n;
}

bool xml_equal(const struct xml_node *a, const struct xml_node *b)
{
	if (a->type != b->type)
		return false;
	if (a->type == XML_TEXT)
		return a->text_len == b->text_len && memcmp(a->text, b->text, a->text_len) == 0;
	if (strcmp(a->ns, b->ns) != 0 || strcmp(a->name, b->name) != 0)
		return false;
	if (attr_count(a) != attr_count(b))
		return false;
	for (const struct xml_attr *at = a->attrs; at; at = at->next) {
		const char *v = xml_attr_ns(b, at->ns, at->name);
		if (!v || strcmp(v, at->value) != 0)
			return false;
	}
	const struct xml_node *ca = a->children, *cb = b->children;
	for (; ca && cb; ca = ca->next, cb = cb->next)
		if (!xml_equal(ca, cb))
			return false;
	return ca == NULL && cb == NULL;
}

/* ---- serializer ---- */

/* Decodes one UTF-8 sequence; returns its length, or 0 if invalid
 * (overlong, surrogate, beyond U+10FFFF, truncated). */
static size_t utf8_decode(const unsigned char *s, size_t n, uint32_t *cp)
{
	unsigned char c = s[0];
	if (c < 0x80) {
		*cp = c;
		return 1;
	}
	size_t len;
	uint32_t min;
	if (c >= 0xc2 && c <= 0xdf) {
		len = 2;
		*cp = c & 0x1f;
		min = 0x80;
	} else if (c >= 0xe0 && c <= 0xef) {
		len = 3;
		*cp = c & 0x0f;
		min = 0x800;
	} else if (c >= 0xf0 && c <= 0xf4) {
		len = 4;
		*cp = c & 0x07;
		min = 0x10000;
	} else {
		return 0;
	}
	if (n < len)
		return 0;
	for (size_t i = 1; i < len; i++) {
		if ((s[i] & 0xc0) != 0x80)
			return 0;
		*cp = (*cp << 6) | (s[i] & 0x3f);
	}
	if (*cp < min || *cp > 0x10ffff || (*cp >= 0xd800 && *cp <= 0xdfff))
		return 0;
	return len;
}

static bool xml_char_ok(uint32_t cp)
{
	return cp == 0x9 || cp == 0xa || cp == 0xd || (cp >= 0x20 && cp <= 0xd7ff) ||
	       (cp >= 0xe000 && cp <= 0xfffd) || (cp >= 0x10000 && cp <= 0x10ffff);
}

void xml_escape(struct xml_buf *out, const char *s, size_t len, bool attr)
{
	const unsigned char *p = (const unsigned char *)s;
	size_t run = 0; /* start of the pending run of bytes that need no escaping */
	size_t i = 0;
	while (i < len) {
		const char *rep = NULL;
		size_t adv = 1;
		switch (p[i]) {
		case '&': rep = "&amp;"; break;
		case '<': rep = "&lt;"; break;
		case '>': rep = "&gt;"; break; /* also keeps "]]>" out of text */
		case '"': rep = attr ? "&quot;" : NULL; break;
		case '\'': rep = attr ? "&apos;" : NULL; break;
		case '\t': rep = attr ? "&#9;" : NULL; break;
		case '\n': rep = attr ? "&#10;" : NULL; break;
		case '\r': rep = "&#13;"; break; /* line-end normalization eats raw CR */
		default:
			if (p[i] < 0x20) {
				rep = "\xef\xbf\xbd";
			} else if (p[i] >= 0x80) {
				uint32_t cp;
				adv = utf8_decode(p + i, len - i, &cp);
				if (adv == 0 || !xml_char_ok(cp)) {
					rep = "\xef\xbf\xbd";
					adv = adv ? adv : 1;
				}
			}
		}
		if (rep) {
			xml_buf_append(out, s + run, i - run);
			xml_buf_puts(out, rep);
			run = i + adv;
		}
		i += adv;
	}
	xml_buf_append(out, s + run, len - run);
}

/* The prefixes XMPP peers expect on stream-level elements. */
static const char *well_known_prefix(const char *ns)
{
	if (strcmp(ns, XML_NS_STREAM) == 0)
		return "stream";
	if (strcmp(ns, XML_NS_DIALBACK) == 0)
		return "db";
	return NULL;
}

static void serialize(const struct xml_node *el, struct xml_ctx ctx, struct xml_buf *out)
{
	if (el->type == XML_TEXT) {
		xml_escape(out, el->text, el->text_len, false);
		return;
	}
	const char *prefix = well_known_prefix(el->ns);
	bool declare_prefix = false, declare_default = false;
	if (prefix && strcmp(prefix, "stream") == 0) {
		declare_prefix = !ctx.stream_prefix;
		ctx.stream_prefix = true;
	} else if (prefix) {
		declare_prefix = !ctx.db_prefix;
		ctx.db_prefix = true;
	} else if (strcmp(el->ns, ctx.default_ns ? ctx.default_ns : "") != 0) {
		declare_default = true;
		ctx.default_ns = el->ns;
	}

	xml_buf_append(out, "<", 1);
	if (prefix) {
		xml_buf_puts(out, prefix);
		xml_buf_append(out, ":", 1);
	}
	xml_buf_puts(out, el->name);
	if (declare_prefix) {
		xml_buf_puts(out, " xmlns:");
		xml_buf_puts(out, prefix);
		xml_buf_puts(out, "='");
		xml_escape(out, el->ns, strlen(el->ns), true);
		xml_buf_append(out, "'", 1);
	}
	if (declare_default) {
		xml_buf_puts(out, " xmlns='");
		xml_escape(out, el->ns, strlen(el->ns), true);
		xml_buf_append(out, "'", 1);
	}
	unsigned nsn = 0;
	for (const struct xml_attr *at = el->attrs; at; at = at->next) {
		xml_buf_append(out, " ", 1);
		if (at->ns[0] == '\0') {
			/* no prefix */
		} else if (strcmp(at->ns, XML_NS_XML) == 0) {
			xml_buf_puts(out, "xml:");
		} else {
			/* Foreign attribute namespaces are rare; each gets a
			 * prefix declared right here. */
			char pfx[16];
			int pl = snprintf(pfx, sizeof(pfx), "a%u", nsn++);
			xml_buf_puts(out, "xmlns:");
			xml_buf_append(out, pfx, (size_t)pl);
			xml_buf_puts(out, "='");
			xml_escape(out, at->ns, strlen(at->ns), true);
			xml_buf_puts(out, "' ");
			xml_buf_append(out, pfx, (size_t)pl);
			xml_buf_append(out, ":", 1);
		}
		xml_buf_puts(out, at->name);
		xml_buf_puts(out, "='");
		xml_escape(out, at->value, strlen(at->value), true);
		xml_buf_append(out, "'", 1);
	}
	if (!el->children) {
		xml_buf_puts(out, "/>");
		return;
	}
	xml_buf_append(out, ">", 1);
	for (const struct xml_node *c = el->children; c; c = c->next)
		serialize(c, ctx, out);
	xml_buf_puts(out, "</");
	if (prefix) {
		xml_buf_puts(out, prefix);
		xml_buf_append(out, ":", 1);
	}
	xml_buf_puts(out, el->name);
	xml_buf_append(out, ">", 1);
}

void xml_serialize(const struct xml_node *el, const struct xml_ctx *ctx, struct xml_buf *out)
{
	struct xml_ctx c = {0};
	if (ctx)
		c = *ctx;
	serialize(el, c, out);
}

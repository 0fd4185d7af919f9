#include "xmlstream.h"

#include "fg.h"

#include <assert.h>
#include <expat.h>
#include <stdio.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* Expat joins namespace URI and local name with this byte. 0x01 cannot
 * occur in XML 1.0 text, not even as a character reference, so no URI can
 * contain it. */
#define NS_SEP	   '\x01'
#define NS_SEP_STR "\x01"

/* Expat's memory for one parser, in one block of the heap: the pieces it
 * asks for are carved from the block in order, and the block goes back
 * whole when the parser is freed. Spread over the heap among the
 * session's other allocations, the same 11 KiB left only holes smaller
 * than a page when an idle stream freed its parser (xmlstream_sleep), and
 * RSS did not move; one block leaves whole pages that malloc_trim can
 * give back. Pieces that do not fit (a big stanza's buffer) come from
 * malloc as before. */
#define PARSER_BLOCK (16 * 1024)
#define PIECE_HDR    16 /* the piece's size, for realloc, keeping 16-byte alignment */

struct parser_mem {
	char *block;
	size_t used;
	char *last; /* the newest piece, which can grow or shrink in place */
};

struct xmlstream {
	XML_Parser parser;
	struct parser_mem mem;
	struct xs_limits lim;
	xs_callback cb;
	void *ud;

	unsigned level; /* open elements: 1 = inside <stream:stream> */
	bool opened;	/* the header was seen */
	bool dead;	/* an error was reported */
	bool stopped;	/* the callback asked to stop */
	bool restarted; /* reset: whitespace before the first byte is skipped */
	const char *err_condition;
	const char *err_text;

	/* Absolute byte offsets since the last reset. */
	unsigned long long fed; /* bytes given to expat */
	unsigned long long stanza_start;
	unsigned long long boundary;	   /* end of the last complete top-level item */
	unsigned long long last_start_end; /* end of the most recent start tag */
	unsigned long long stop_pos;
	/* Added to expat's byte index: a parser made again after
	 * xmlstream_sleep counts from the start of the replayed header. */
	long long index_shift;
	bool reviving; /* the replayed header's events are not the peer's */

	/* The header's namespace declarations, seen before its start event. */
	char *content_ns;
	bool db_declared;
	unsigned ns_decls; /* declarations on the element being opened */
	/* The header's declarations again, as attributes (" xmlns:p='uri'"),
	 * and how many of them bind the streams namespace: what a new parser
	 * must be told before it can read the rest of this stream. */
	char *decls;
	size_t decls_len;
	unsigned stream_bindings;
	char stream_prefix[64]; /* "" when the default namespace is the streams one */

	struct xml_arena *arena; /* the stanza under construction */
	struct xml_node *root;
	struct xml_node *cur;
	char *text; /* character data not yet attached */
	size_t text_len, text_cap;
};

/* The parser whose expat call is running: expat's memory functions take
 * no argument. Set around every call into expat (enter/leave), nested
 * when a callback parses something else (xmlstream_parse_one). */
static _Thread_local struct parser_mem *cur_mem;

static size_t piece_size(size_t n)
{
	return PIECE_HDR + ((n + 15) & ~(size_t)15);
}

static bool mem_owns(const struct parser_mem *m, const void *p)
{
	return m && m->block && (const char *)p >= m->block &&
	       (const char *)p < m->block + PARSER_BLOCK;
}

static void *mem_malloc(size_t n)
{
	struct parser_mem *m = cur_mem;
	if (m && m->block && n < PARSER_BLOCK && m->used + piece_size(n) <= PARSER_BLOCK) {
		char *p = m->block + m->used;
		memcpy(p, &n, sizeof(n));
		m->used += piece_size(n);
		m->last = p + PIECE_HDR;
		return m->last;
	}
	return malloc(n);
}

static void mem_free(void *p)
{
	struct parser_mem *m = cur_mem;
	if (!mem_owns(m, p)) {
		free(p);
		return;
	}
	/* Inside the block only the newest piece's room comes back. */
	if (p == m->last) {
		m->used = (size_t)((char *)p - PIECE_HDR - m->block);
		m->last = NULL;
	}
}

static void *mem_realloc(void *p, size_t n)
{
	struct parser_mem *m = cur_mem;
	if (!p)
		return mem_malloc(n);
	if (!mem_owns(m, p))
		return realloc(p, n);
	size_t old;
	memcpy(&old, (char *)p - PIECE_HDR, sizeof(old));
	size_t at = (size_t)((char *)p - PIECE_HDR - m->block);
	if (p == m->last && n < PARSER_BLOCK && at + piece_size(n) <= PARSER_BLOCK) {
		memcpy((char *)p - PIECE_HDR, &n, sizeof(n));
		m->used = at + piece_size(n);
		return p;
	}
	void *q = mem_malloc(n);
	if (q) {
		memcpy(q, p, old < n ? old : n);
		mem_free(p);
	}
	return q;
}

static const XML_Memory_Handling_Suite mem_suite = {mem_malloc, mem_realloc, mem_free};

static struct parser_mem *enter(struct xmlstream *xs)
{
	struct parser_mem *outer = cur_mem;
	cur_mem = &xs->mem;
	return outer;
}

static void leave(struct parser_mem *outer)
{
	cur_mem = outer;
}

/* A parser with a block of its own; false when out of memory. */
static bool parser_new(struct xmlstream *xs)
{
	assert(!xs->parser && !xs->mem.block);
	xs->mem = (struct parser_mem){.block = malloc(PARSER_BLOCK)};
	if (!xs->mem.block)
		return false;
	struct parser_mem *outer = enter(xs);
	/* The encoding is fixed: XMPP streams are UTF-8 whatever a
	 * declaration says (a declaration that says otherwise is refused). */
	xs->parser = XML_ParserCreate_MM("UTF-8", &mem_suite, NS_SEP_STR);
	leave(outer);
	if (!xs->parser) {
		free(xs->mem.block);
		xs->mem.block = NULL;
		return false;
	}
	return true;
}

static void parser_free(struct xmlstream *xs)
{
	if (xs->parser) {
		struct parser_mem *outer = enter(xs);
		XML_ParserFree(xs->parser);
		leave(outer);
		xs->parser = NULL;
	}
	free(xs->mem.block);
	xs->mem = (struct parser_mem){0};
}

static enum XML_Status parse(struct xmlstream *xs, const char *buf, int len)
{
	struct parser_mem *outer = enter(xs);
	enum XML_Status st = XML_Parse(xs->parser, buf, len, XML_FALSE);
	leave(outer);
	return st;
}

static void fail(struct xmlstream *xs, const char *condition, const char *text)
{
	if (!xs->err_condition) {
		xs->err_condition = condition;
		xs->err_text = text;
	}
	XML_StopParser(xs->parser, XML_FALSE);
}

static unsigned long long event_start(struct xmlstream *xs)
{
	return (unsigned long long)(XML_GetCurrentByteIndex(xs->parser) + xs->index_shift);
}

static unsigned long long event_end(struct xmlstream *xs)
{
	return event_start(xs) + (unsigned long long)XML_GetCurrentByteCount(xs->parser);
}

static bool over_stanza_limit(struct xmlstream *xs, unsigned long long end)
{
	if (end - xs->stanza_start > xs->lim.stanza_bytes) {
		fail(xs, "policy-violation", "stanza exceeds the size limit");
		return true;
	}
	return false;
}

static void drop_stanza(struct xmlstream *xs)
{
	xml_arena_free(&xs->arena);
	xs->root = xs->cur = NULL;
	xs->text_len = 0;
}

static bool flush_text(struct xmlstream *xs)
{
	if (xs->text_len == 0 || !xs->cur)
		return true;
	int rc = xml_add_text(xs->cur, xs->text, xs->text_len);
	xs->text_len = 0;
	if (rc != FG_OK) {
		fail(xs, "resource-constraint", "out of memory");
		return false;
	}
	return true;
}

/* Namespaces most stanzas use, as static strings (a tree's strings are
 * const; static ones outlive any arena): a stanza's namespaces then cost
 * a lookup instead of a copy each. */
#define NS(s)                    \
	{                        \
		s, sizeof(s) - 1 \
	}
static const struct {
	const char *s;
	size_t len;
} common_ns[] = {
	NS(XML_NS_CLIENT),
	NS(XML_NS_SERVER),
	NS(XML_NS_XML),
	NS(XML_NS_STANZAS_ERR),
	NS("http://jabber.org/protocol/chatstates"),
	NS("urn:xmpp:receipts"),
	NS("urn:xmpp:delay"),
	NS("urn:xmpp:sid:0"),
	NS("urn:xmpp:hints"),
	NS("urn:xmpp:chat-markers:0"),
	NS("urn:xmpp:carbons:2"),
	NS("urn:xmpp:mam:2"),
	NS("jabber:iq:roster"),
	NS("http://jabber.org/protocol/caps"),
	NS("http://jabber.org/protocol/disco#info"),
	NS("urn:xmpp:ping"),
};
#undef NS

static const char *keep_ns(struct xml_arena *a, const char *ns, size_t len)
{
	if (len == 0)
		return "";
	for (size_t i = 0; i < FG_ARRAY_LEN(common_ns); i++)
		if (common_ns[i].len == len && memcmp(common_ns[i].s, ns, len) == 0)
			return common_ns[i].s;
	return xml_arena_strndup(a, ns, len);
}

/* Splits expat's "uri<SEP>local" into its parts. */
static void split_name(const char *full, const char **ns, size_t *ns_len, const char **local)
{
	const char *sep = strchr(full, NS_SEP);
	if (sep) {
		*ns = full;
		*ns_len = (size_t)(sep - full);
		*local = sep + 1;
	} else {
		*ns = "";
		*ns_len = 0;
		*local = full;
	}
}

static void emit(struct xmlstream *xs, struct xs_event *ev)
{
	if (xs->cb(xs->ud, ev) == XS_STOP && !xs->dead) {
		xs->stopped = true;
		XML_StopParser(xs->parser, XML_FALSE);
	}
}

static void on_header(struct xmlstream *xs, const char *name, const char **atts)
{
	const char *ns, *local;
	size_t ns_len;
	split_name(name, &ns, &ns_len, &local);
	if (ns_len != strlen(XML_NS_STREAM) || memcmp(ns, XML_NS_STREAM, ns_len) != 0) {
		fail(xs, "invalid-namespace",
		     "the stream element is not in the http://etherx.jabber.org/streams namespace");
		return;
	}
	if (strcmp(local, "stream") != 0) {
		fail(xs, "invalid-xml", "the first element is not <stream:stream>");
		return;
	}
	struct xml_arena *a = xml_arena_new();
	struct xml_node *hdr = a ? xml_new_in(a, ns, ns_len, local, strlen(local)) : NULL;
	if (!hdr) {
		xml_arena_free(&a);
		fail(xs, "resource-constraint", "out of memory");
		return;
	}
	unsigned n = 0;
	for (const char **at = atts; *at; at += 2) {
		const char *ans, *alocal;
		size_t ans_len;
		if (++n > xs->lim.attributes) {
			xml_arena_free(&a);
			fail(xs, "policy-violation", "too many attributes on the stream header");
			return;
		}
		split_name(at[0], &ans, &ans_len, &alocal);
		char *nsdup = xml_arena_strndup(a, ans, ans_len);
		if (!nsdup || xml_set_attr(hdr, nsdup[0] ? nsdup : NULL, alocal, at[1]) != FG_OK) {
			xml_arena_free(&a);
			fail(xs, "resource-constraint", "out of memory");
			return;
		}
	}
	xs->opened = true;
	xs->boundary = xs->stop_pos = event_end(xs);
	struct xs_event ev = {
		.type = XS_EV_OPEN,
		.node = hdr,
		.content_ns = xs->content_ns ? xs->content_ns : "",
		.dialback_declared = xs->db_declared,
	};
	emit(xs, &ev);
	xml_arena_free(&a);
}

static void XMLCALL on_start(void *ud, const char *name, const char **atts)
{
	struct xmlstream *xs = ud;
	if (xs->err_condition || xs->stopped)
		return; /* expat may still call us for the rest of this token */
	unsigned decls = xs->ns_decls;
	xs->ns_decls = 0;
	if (xs->level == 0) {
		xs->level = 1;
		if (!xs->reviving)
			on_header(xs, name, atts);
		return;
	}
	xs->level++;
	if (xs->level == 2) {
		xs->stanza_start = event_start(xs);
		xs->text_len = 0;
	} else if (!flush_text(xs)) {
		return;
	}
	xs->last_start_end = event_end(xs);
	if (over_stanza_limit(xs, xs->last_start_end))
		return;
	if (xs->level - 1 > xs->lim.depth) {
		fail(xs, "policy-violation", "elements nested deeper than the limit");
		return;
	}
	if (decls > xs->lim.attributes) {
		fail(xs, "policy-violation", "too many namespace declarations on one element");
		return;
	}

	const char *ns, *local;
	size_t ns_len;
	split_name(name, &ns, &ns_len, &local);
	struct xml_node *parent = xs->level == 2 ? NULL : xs->cur;
	if (!parent && !(xs->arena = xml_arena_new())) {
		fail(xs, "resource-constraint", "out of memory");
		return;
	}
	struct xml_arena *a = parent ? parent->arena : xs->arena;
	/* The node and its name in one piece of the arena. */
	size_t local_len = strlen(local);
	struct xml_node *el = xml_arena_alloc(a, sizeof(*el) + local_len + 1);
	if (el) {
		char *copy = (char *)(el + 1);
		memcpy(copy, local, local_len + 1);
		*el = (struct xml_node){.type = XML_ELEMENT, .arena = a, .name = copy};
		/* Children usually share the parent's namespace: point at its
		 * copy instead of copying again. */
		if (parent && strncmp(parent->ns, ns, ns_len) == 0 && parent->ns[ns_len] == '\0')
			el->ns = parent->ns;
		else
			el->ns = keep_ns(a, ns, ns_len);
		if (!el->ns) {
			el = NULL;
		} else if (!parent) {
			xs->root = el;
		} else {
			el->parent = parent;
			if (parent->last_child)
				parent->last_child->next = el;
			else
				parent->children = el;
			parent->last_child = el;
		}
	}
	if (!el) {
		fail(xs, "resource-constraint", "out of memory");
		return;
	}
	xs->cur = el;

	struct xml_attr **tail = &el->attrs;
	unsigned n = 0;
	for (const char **at = atts; *at; at += 2) {
		if (++n > xs->lim.attributes) {
			fail(xs, "policy-violation", "too many attributes on one element");
			return;
		}
		const char *ans, *alocal;
		size_t ans_len;
		split_name(at[0], &ans, &ans_len, &alocal);
		/* The attribute, its name and its value in one piece. */
		size_t name_len = strlen(alocal), value_len = strlen(at[1]);
		struct xml_attr *attr =
			xml_arena_alloc(el->arena, sizeof(*attr) + name_len + 1 + value_len + 1);
		if (!attr) {
			fail(xs, "resource-constraint", "out of memory");
			return;
		}
		char *aname = (char *)(attr + 1), *avalue = aname + name_len + 1;
		memcpy(aname, alocal, name_len + 1);
		memcpy(avalue, at[1], value_len + 1);
		attr->name = aname;
		attr->value = avalue;
		attr->ns = ans_len ? keep_ns(el->arena, ans, ans_len) : "";
		attr->next = NULL;
		if (!attr->ns) {
			fail(xs, "resource-constraint", "out of memory");
			return;
		}
		*tail = attr;
		tail = &attr->next;
	}
}

static void XMLCALL on_end(void *ud, const char *name)
{
	struct xmlstream *xs = ud;
	FG_UNUSED(name);
	if (xs->err_condition || xs->stopped)
		return;
	if (xs->level == 1) {
		xs->level = 0;
		xs->boundary = xs->stop_pos = event_end(xs);
		struct xs_event ev = {.type = XS_EV_CLOSE};
		emit(xs, &ev);
		return;
	}
	if (!flush_text(xs))
		return;
	/* The end of an empty-element tag (<a/>) has no bytes of its own:
	 * it ends where its start tag ended. */
	unsigned long long end =
		XML_GetCurrentByteCount(xs->parser) ? event_end(xs) : xs->last_start_end;
	if (over_stanza_limit(xs, end))
		return;
	xs->level--;
	if (xs->level > 1) {
		xs->cur = xs->cur->parent;
		return;
	}
	xs->boundary = end;
	xs->stop_pos = end;
	struct xs_event ev = {.type = XS_EV_STANZA, .node = xs->root};
	/* Ownership of the tree passes to the receiver. */
	xs->arena = NULL;
	xs->root = xs->cur = NULL;
	emit(xs, &ev);
}

static bool all_space(const char *s, int len)
{
	for (int i = 0; i < len; i++)
		if (s[i] != ' ' && s[i] != '\t' && s[i] != '\n' && s[i] != '\r')
			return false;
	return true;
}

static void XMLCALL on_chars(void *ud, const char *s, int len)
{
	struct xmlstream *xs = ud;
	if (xs->err_condition || xs->stopped)
		return;
	if (xs->level < 2) {
		/* Between stanzas only whitespace (keepalives) is allowed. */
		if (!all_space(s, len)) {
			fail(xs, "bad-format", "text outside any stanza");
			return;
		}
		xs->boundary = event_end(xs);
		return;
	}
	if (over_stanza_limit(xs, event_end(xs)))
		return;
	size_t need = xs->text_len + (size_t)len;
	if (need > xs->text_cap) {
		size_t cap = xs->text_cap ? xs->text_cap : 256;
		while (cap < need)
			cap *= 2;
		char *t = realloc(xs->text, cap);
		if (!t) {
			fail(xs, "resource-constraint", "out of memory");
			return;
		}
		xs->text = t;
		xs->text_cap = cap;
	}
	memcpy(xs->text + xs->text_len, s, (size_t)len);
	xs->text_len = need;
}

/* Appends " xmlns[:prefix]='uri'" to the header's declarations, the URI
 * escaped so that a parser reads back exactly the same string (attribute
 * value normalisation would turn a raw tab or newline into a space). */
static bool keep_decl(struct xmlstream *xs, const char *prefix, const char *uri)
{
	size_t need = xs->decls_len + 16 + (prefix ? strlen(prefix) : 0) + 6 * strlen(uri);
	char *d = realloc(xs->decls, need);
	if (!d)
		return false;
	xs->decls = d;
	size_t n = xs->decls_len;
	n += (size_t)sprintf(d + n, prefix ? " xmlns:%s='" : " xmlns='", prefix);
	for (const char *u = uri; *u; u++) {
		switch (*u) {
		case '&': n += (size_t)sprintf(d + n, "&amp;"); break;
		case '<': n += (size_t)sprintf(d + n, "&lt;"); break;
		case '\'': n += (size_t)sprintf(d + n, "&apos;"); break;
		case '\t':
		case '\n':
		case '\r': n += (size_t)sprintf(d + n, "&#%d;", *u); break;
		default: d[n++] = *u;
		}
	}
	d[n++] = '\'';
	d[n] = '\0';
	assert(n < need);
	xs->decls_len = n;
	if (strcmp(uri, XML_NS_STREAM) == 0) {
		xs->stream_bindings++;
		snprintf(xs->stream_prefix, sizeof(xs->stream_prefix), "%s", prefix ? prefix : "");
		/* A prefix too long to keep cannot be replayed: the stream
		 * never sleeps (see xmlstream_sleep). */
		if (prefix && strlen(prefix) >= sizeof(xs->stream_prefix))
			xs->stream_bindings++;
	}
	return true;
}

static void XMLCALL on_ns_start(void *ud, const char *prefix, const char *uri)
{
	struct xmlstream *xs = ud;
	xs->ns_decls++;
	if (xs->level != 0 || xs->reviving)
		return;
	if (!keep_decl(xs, prefix, uri ? uri : "")) {
		fail(xs, "resource-constraint", "out of memory");
		return;
	}
	if (!prefix) {
		free(xs->content_ns);
		xs->content_ns = strdup(uri ? uri : "");
		if (!xs->content_ns)
			fail(xs, "resource-constraint", "out of memory");
	} else if (strcmp(prefix, "db") == 0 && uri && strcmp(uri, XML_NS_DIALBACK) == 0) {
		xs->db_declared = true;
	}
}

static void XMLCALL on_comment(void *ud, const char *data)
{
	FG_UNUSED(data);
	fail(ud, "restricted-xml", "XML comments are not allowed in XMPP streams");
}

static void XMLCALL on_pi(void *ud, const char *target, const char *data)
{
	FG_UNUSED(target);
	FG_UNUSED(data);
	fail(ud, "restricted-xml", "processing instructions are not allowed in XMPP streams");
}

static void XMLCALL on_doctype(void *ud, const char *name, const char *sysid, const char *pubid,
			       int has_internal_subset)
{
	FG_UNUSED(name);
	FG_UNUSED(sysid);
	FG_UNUSED(pubid);
	FG_UNUSED(has_internal_subset);
	fail(ud, "restricted-xml", "document type declarations are not allowed in XMPP streams");
}

static void XMLCALL on_entity_decl(void *ud, const char *name, int is_param, const char *value,
				   int value_len, const char *base, const char *sysid,
				   const char *pubid, const char *notation)
{
	FG_UNUSED(name);
	FG_UNUSED(is_param);
	FG_UNUSED(value);
	FG_UNUSED(value_len);
	FG_UNUSED(base);
	FG_UNUSED(sysid);
	FG_UNUSED(pubid);
	FG_UNUSED(notation);
	fail(ud, "restricted-xml", "entity declarations are not allowed in XMPP streams");
}

static void XMLCALL on_xml_decl(void *ud, const char *version, const char *encoding, int standalone)
{
	struct xmlstream *xs = ud;
	FG_UNUSED(standalone);
	if (version && strcmp(version, "1.0") != 0)
		fail(xs, "unsupported-version", "only XML version 1.0 is supported");
	else if (encoding && strcasecmp(encoding, "UTF-8") != 0)
		fail(xs, "unsupported-encoding", "only the UTF-8 encoding is supported");
}

static int setup_parser(struct xmlstream *xs)
{
	XML_Parser p = xs->parser;
	XML_SetUserData(p, xs);
	XML_SetElementHandler(p, on_start, on_end);
	XML_SetCharacterDataHandler(p, on_chars);
	XML_SetStartNamespaceDeclHandler(p, on_ns_start);
	XML_SetCommentHandler(p, on_comment);
	XML_SetProcessingInstructionHandler(p, on_pi);
	XML_SetStartDoctypeDeclHandler(p, on_doctype);
	XML_SetEntityDeclHandler(p, on_entity_decl);
	XML_SetXmlDeclHandler(p, on_xml_decl);
	XML_SetParamEntityParsing(p, XML_PARAM_ENTITY_PARSING_NEVER);
#if XML_MAJOR_VERSION > 2 || (XML_MAJOR_VERSION == 2 && XML_MINOR_VERSION >= 6)
	/* Deferral trades latency for CPU; a stream needs every stanza now. */
	XML_SetReparseDeferralEnabled(p, XML_FALSE);
#endif
	return FG_OK;
}

struct xmlstream *xmlstream_new(const struct xs_limits *lim, xs_callback cb, void *ud)
{
	struct xmlstream *xs = calloc(1, sizeof(*xs));
	if (!xs)
		return NULL;
	xs->lim = *lim;
	xs->cb = cb;
	xs->ud = ud;
	if (!parser_new(xs)) {
		free(xs);
		return NULL;
	}
	setup_parser(xs);
	return xs;
}

void xmlstream_free(struct xmlstream **xsp)
{
	if (!xsp || !*xsp)
		return;
	struct xmlstream *xs = *xsp;
	drop_stanza(xs);
	parser_free(xs);
	free(xs->content_ns);
	free(xs->decls);
	free(xs->text);
	free(xs);
	*xsp = NULL;
}

void xmlstream_set_limits(struct xmlstream *xs, const struct xs_limits *lim)
{
	xs->lim = *lim;
}

int xmlstream_reset(struct xmlstream *xs)
{
	drop_stanza(xs);
	/* A new parser rather than XML_ParserReset: a fresh block, where
	 * a reset parser would leave the old stream's pieces in its block. */
	parser_free(xs);
	if (!parser_new(xs))
		return FG_ERR;
	setup_parser(xs);
	free(xs->content_ns);
	xs->content_ns = NULL;
	free(xs->decls);
	xs->decls = NULL;
	xs->decls_len = 0;
	xs->stream_bindings = 0;
	xs->stream_prefix[0] = '\0';
	xs->index_shift = 0;
	xs->db_declared = false;
	xs->ns_decls = 0;
	xs->level = 0;
	xs->opened = xs->dead = xs->stopped = false;
	xs->restarted = true;
	xs->err_condition = xs->err_text = NULL;
	xs->fed = xs->stanza_start = xs->boundary = xs->last_start_end = xs->stop_pos = 0;
	return FG_OK;
}

bool xmlstream_sleep(struct xmlstream *xs)
{
	/* Only between top-level items, with every byte given to expat
	 * reported back (boundary == fed), is the stream's whole state the
	 * header's bindings; and the header's name must be knowable. */
	if (!xs->parser || !xs->opened || xs->dead || xs->stopped || xs->level != 1 || xs->arena ||
	    xs->boundary != xs->fed || xs->stream_bindings != 1)
		return false;
	parser_free(xs);
	free(xs->text);
	xs->text = NULL;
	xs->text_len = xs->text_cap = 0;
	return true;
}

bool xmlstream_asleep(const struct xmlstream *xs)
{
	return !xs->parser;
}

/* A new parser, told the sleeping stream's header again without telling
 * the receiver: afterwards it reads the peer's next bytes exactly as the
 * old one would have. */
static int revive(struct xmlstream *xs)
{
	assert(!xs->parser && xs->level == 1 && xs->stream_bindings == 1);
	size_t plen = strlen(xs->stream_prefix);
	size_t n = 1 + plen + 1 + strlen("stream") + xs->decls_len + 1;
	char *hdr = malloc(n + 1);
	if (!hdr || !parser_new(xs)) {
		free(hdr);
		return FG_ERR;
	}
	setup_parser(xs);
	int len = snprintf(hdr, n + 1, "<%s%sstream%s>", xs->stream_prefix, plen ? ":" : "",
			   xs->decls ? xs->decls : "");
	assert(len > 0 && (size_t)len <= n);
	xs->reviving = true;
	xs->level = 0;
	enum XML_Status st = parse(xs, hdr, len);
	xs->reviving = false;
	free(hdr);
	xs->index_shift = (long long)xs->fed - len;
	if (st != XML_STATUS_OK || xs->level != 1 || xs->err_condition) {
		if (!xs->err_condition) {
			xs->err_condition = "resource-constraint";
			xs->err_text = "out of memory";
		}
		return FG_ERR;
	}
	return FG_OK;
}

static const char *map_expat_error(enum XML_Error e, const char **text)
{
	switch (e) {
	case XML_ERROR_NO_MEMORY: *text = "out of memory"; return "resource-constraint";
	case XML_ERROR_UNBOUND_PREFIX:
		*text = "a namespace prefix is used without being declared";
		return "bad-namespace-prefix";
	case XML_ERROR_UNKNOWN_ENCODING:
	case XML_ERROR_INCORRECT_ENCODING:
		*text = "only the UTF-8 encoding is supported";
		return "unsupported-encoding";
	case XML_ERROR_UNDEFINED_ENTITY:
		*text = "reference to an undefined entity";
		return "restricted-xml";
	case XML_ERROR_INVALID_TOKEN:
		*text = "invalid UTF-8 or a character XML does not allow";
		return "not-well-formed";
	default: *text = XML_ErrorString(e); return "not-well-formed";
	}
}

int xmlstream_feed(struct xmlstream *xs, const char *buf, size_t len, size_t *consumed)
{
	if (consumed)
		*consumed = 0;
	if (xs->dead || xs->stopped)
		return FG_ERR;
	/* Whitespace a peer put after the last element of the old stream
	 * (go-sendxmpp: a newline after </auth>) may reach the new one; as the
	 * document's first bytes it would make its XML declaration an error.
	 * Skipped bytes are consumed but never reach expat. */
	size_t skipped = 0;
	if (xs->restarted && xs->fed == 0)
		while (skipped < len && (buf[skipped] == ' ' || buf[skipped] == '\t' ||
					 buf[skipped] == '\r' || buf[skipped] == '\n'))
			skipped++;
	unsigned long long base = xs->fed;
	int rc = FG_OK;
	if (!xs->parser && len > 0 && revive(xs) != FG_OK) {
		rc = FG_ERR;
		skipped = len; /* nothing reaches the dead parser */
	}
	/* Expat takes an int length; feed large buffers in slices so that
	 * the size checks below run between them. */
	size_t off = skipped;
	while (off < len) {
		size_t n = len - off;
		if (n > 65536)
			n = 65536;
		xs->fed += n;
		enum XML_Status st = parse(xs, buf + off, (int)n);
		off += n;
		if (st == XML_STATUS_ERROR) {
			if (xs->stopped && !xs->err_condition) {
				if (consumed)
					*consumed = skipped + (size_t)(xs->stop_pos - base);
				return FG_AGAIN;
			}
			if (!xs->err_condition)
				xs->err_condition = map_expat_error(XML_GetErrorCode(xs->parser),
								    &xs->err_text);
			rc = FG_ERR;
			break;
		}
		/* Expat holds an unfinished token in its own buffer without
		 * calling us; bound that too. */
		unsigned long long from = xs->level >= 2 ? xs->stanza_start : xs->boundary;
		if (xs->fed - from > xs->lim.stanza_bytes) {
			xs->err_condition = "policy-violation";
			xs->err_text = xs->level >= 2 ? "stanza exceeds the size limit"
						      : "element exceeds the size limit";
			rc = FG_ERR;
			break;
		}
	}
	if (rc == FG_ERR) {
		xs->dead = true;
		drop_stanza(xs);
		struct xs_event ev = {
			.type = XS_EV_ERROR,
			.condition = xs->err_condition,
			.text = xs->err_text,
		};
		xs->cb(xs->ud, &ev);
		return FG_ERR;
	}
	if (consumed)
		*consumed = len;
	return FG_OK;
}

size_t xmlstream_memory(const struct xmlstream *xs)
{
	return sizeof(*xs) + xml_arena_size(xs->arena) + xs->text_cap;
}

/* ---- one stanza from text ---- */

struct parse_ctx {
	struct xml_node *st;
};

static int on_parsed(void *ud, struct xs_event *ev)
{
	struct parse_ctx *p = ud;
	if (ev->type == XS_EV_STANZA && !p->st) {
		p->st = ev->node;
		return XS_STOP;
	}
	if (ev->type == XS_EV_STANZA)
		xml_free(&ev->node);
	return XS_CONTINUE;
}

struct xml_node *xmlstream_parse_one(const char *xml)
{
	static const char head[] = "<stream:stream xmlns='jabber:server' "
				   "xmlns:stream='http://etherx.jabber.org/streams'>";
	struct xs_limits lim = {.stanza_bytes = 1024 * 1024, .depth = 64, .attributes = 256};
	struct parse_ctx p = {0};
	struct xmlstream *xs = xmlstream_new(&lim, on_parsed, &p);
	if (!xs)
		return NULL;
	if (xmlstream_feed(xs, head, strlen(head), NULL) != FG_ERR)
		xmlstream_feed(xs, xml, strlen(xml), NULL);
	xmlstream_free(&xs);
	return p.st;
}

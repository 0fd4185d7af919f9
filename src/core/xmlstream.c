#include "xmlstream.h"

#include "fg.h"

#include <expat.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* Expat joins namespace URI and local name with this byte. 0x01 cannot
 * occur in XML 1.0 text, not even as a character reference, so no URI can
 * contain it. */
#define NS_SEP	   '\x01'
#define NS_SEP_STR "\x01"

struct xmlstream {
	XML_Parser parser;
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

	/* The header's namespace declarations, seen before its start event. */
	char *content_ns;
	bool db_declared;
	unsigned ns_decls; /* declarations on the element being opened */

	struct xml_arena *arena; /* the stanza under construction */
	struct xml_node *root;
	struct xml_node *cur;
	char *text; /* character data not yet attached */
	size_t text_len, text_cap;
};

static void fail(struct xmlstream *xs, const char *condition, const char *text)
{
	if (!xs->err_condition) {
		xs->err_condition = condition;
		xs->err_text = text;
	}
	XML_StopParser(xs->parser, XML_FALSE);
}

static unsigned long long event_end(struct xmlstream *xs)
{
	return (unsigned long long)XML_GetCurrentByteIndex(xs->parser) +
	       (unsigned long long)XML_GetCurrentByteCount(xs->parser);
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
		on_header(xs, name, atts);
		return;
	}
	xs->level++;
	if (xs->level == 2) {
		xs->stanza_start = (unsigned long long)XML_GetCurrentByteIndex(xs->parser);
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
	struct xml_node *el;
	if (xs->level == 2) {
		xs->arena = xml_arena_new();
		el = xs->arena ? xml_new_in(xs->arena, ns, ns_len, local, strlen(local)) : NULL;
		xs->root = el;
	} else {
		struct xml_node *parent = xs->cur;
		struct xml_arena *a = parent->arena;
		el = xml_arena_alloc(a, sizeof(*el));
		if (el) {
			memset(el, 0, sizeof(*el));
			el->arena = a;
			el->type = XML_ELEMENT;
			/* Children usually share the parent's namespace:
			 * point at its copy instead of copying again. */
			if (strlen(parent->ns) == ns_len && memcmp(parent->ns, ns, ns_len) == 0)
				el->ns = parent->ns;
			else
				el->ns = xml_arena_strndup(a, ns, ns_len);
			el->name = xml_arena_strndup(a, local, strlen(local));
			if (!el->ns || !el->name) {
				el = NULL;
			} else {
				el->parent = parent;
				if (parent->last_child)
					parent->last_child->next = el;
				else
					parent->children = el;
				parent->last_child = el;
			}
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
		struct xml_attr *a = xml_arena_alloc(el->arena, sizeof(*a));
		if (!a) {
			fail(xs, "resource-constraint", "out of memory");
			return;
		}
		a->ns = ans_len ? xml_arena_strndup(el->arena, ans, ans_len) : "";
		a->name = xml_arena_strndup(el->arena, alocal, strlen(alocal));
		a->value = xml_arena_strndup(el->arena, at[1], strlen(at[1]));
		a->next = NULL;
		if (!a->ns || !a->name || !a->value) {
			fail(xs, "resource-constraint", "out of memory");
			return;
		}
		*tail = a;
		tail = &a->next;
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

static void XMLCALL on_ns_start(void *ud, const char *prefix, const char *uri)
{
	struct xmlstream *xs = ud;
	xs->ns_decls++;
	if (xs->level != 0)
		return;
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
	/* The encoding is fixed: XMPP streams are UTF-8 whatever a
	 * declaration says (a declaration that says otherwise is refused). */
	xs->parser = XML_ParserCreateNS("UTF-8", NS_SEP);
	if (!xs->parser) {
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
	XML_ParserFree(xs->parser);
	free(xs->content_ns);
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
	if (!XML_ParserReset(xs->parser, "UTF-8"))
		return FG_ERR;
	setup_parser(xs);
	free(xs->content_ns);
	xs->content_ns = NULL;
	xs->db_declared = false;
	xs->ns_decls = 0;
	xs->level = 0;
	xs->opened = xs->dead = xs->stopped = false;
	xs->restarted = true;
	xs->err_condition = xs->err_text = NULL;
	xs->fed = xs->stanza_start = xs->boundary = xs->last_start_end = xs->stop_pos = 0;
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
	/* Expat takes an int length; feed large buffers in slices so that
	 * the size checks below run between them. */
	size_t off = skipped;
	while (off < len) {
		size_t n = len - off;
		if (n > 65536)
			n = 65536;
		xs->fed += n;
		enum XML_Status st = XML_Parse(xs->parser, buf + off, (int)n, XML_FALSE);
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

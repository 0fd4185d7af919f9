/* Stanza trees: elements, attributes, text; a serializer with strict escaping. */
#ifndef FG_XML_H
#define FG_XML_H

#include <stdbool.h>
#include <stddef.h>

#define XML_NS_STREAM		"http://etherx.jabber.org/streams"
#define XML_NS_SERVER		"jabber:server"
#define XML_NS_CLIENT		"jabber:client"
#define XML_NS_DIALBACK		"jabber:server:dialback"
#define XML_NS_DIALBACK_FEATURE "urn:xmpp:features:dialback"
#define XML_NS_BIDI		"urn:xmpp:bidi"
#define XML_NS_BIDI_FEATURE	"urn:xmpp:features:bidi"
#define XML_NS_STREAMS_ERR	"urn:ietf:params:xml:ns:xmpp-streams"
#define XML_NS_STANZAS_ERR	"urn:ietf:params:xml:ns:xmpp-stanzas"
#define XML_NS_TLS		"urn:ietf:params:xml:ns:xmpp-tls"
#define XML_NS_SASL		"urn:ietf:params:xml:ns:xmpp-sasl"
#define XML_NS_XML		"http://www.w3.org/XML/1998/namespace"

/* A growable byte buffer; the serializer's output. */
struct xml_buf {
	char *data;
	size_t len;
	size_t cap;
	bool oom; /* an allocation failed; data holds what fit */
};

void xml_buf_append(struct xml_buf *b, const char *s, size_t n);
void xml_buf_puts(struct xml_buf *b, const char *s);
void xml_buf_reset(struct xml_buf *b);
void xml_buf_free(struct xml_buf *b);

struct xml_arena;

struct xml_attr {
	const char *ns; /* "" when in no namespace (the usual case) */
	const char *name;
	const char *value;
	struct xml_attr *next;
};

enum xml_type { XML_ELEMENT, XML_TEXT };

/* All nodes of one tree live in one arena owned by the root, so a stanza is
 * built with few allocations and released with one call. */
struct xml_node {
	enum xml_type type;
	const char *ns;	  /* element namespace URI, "" if none */
	const char *name; /* local name */
	struct xml_attr *attrs;
	struct xml_node *parent;
	struct xml_node *children;
	struct xml_node *last_child;
	struct xml_node *next;
	char *text; /* XML_TEXT: the characters (UTF-8, unescaped), NUL-terminated */
	size_t text_len;
	struct xml_arena *arena;
};

/* A new root element; NULL when out of memory. */
struct xml_node *xml_new(const char *ns, const char *name);
/* Releases the whole tree; node must be a root. Accepts NULL, clears *node. */
void xml_free(struct xml_node **node);
/* Copies any node into a new tree of its own. */
struct xml_node *xml_clone(const struct xml_node *node);

/* Builders: strings are copied into the tree's arena. ns NULL inherits the
 * parent's namespace. Return NULL (or FG_NOMEM) when out of memory. */
struct xml_node *xml_add_child(struct xml_node *parent, const char *ns, const char *name);
int xml_add_text(struct xml_node *parent, const char *text, size_t len);
/* Sets (replaces) an attribute in no namespace, or in ns if not NULL. */
int xml_set_attr(struct xml_node *el, const char *ns, const char *name, const char *value);
void xml_remove_attr(struct xml_node *el, const char *ns, const char *name);
/* Appends an element of another tree (copying it) as the last child. */
int xml_append_copy(struct xml_node *parent, const struct xml_node *child);

/* Queries. ns NULL matches any namespace. */
const char *xml_attr(const struct xml_node *el, const char *name);
const char *xml_attr_ns(const struct xml_node *el, const char *ns, const char *name);
struct xml_node *xml_child(const struct xml_node *el, const char *ns, const char *name);
/* First element child, skipping text. */
struct xml_node *xml_first_element(const struct xml_node *el);
struct xml_node *xml_next_element(const struct xml_node *el);
/* Concatenated text of the element's direct text children; arena-owned. */
const char *xml_text(const struct xml_node *el);
bool xml_is(const struct xml_node *el, const char *ns, const char *name);

/* Moves el and its descendants from namespace `from` to `to` (a string
 * that outlives the tree, e.g. XML_NS_CLIENT): stanzas cross between
 * jabber:client and jabber:server streams (RFC 6120 §4.8.3). */
void xml_set_ns_deep(struct xml_node *el, const char *from, const char *to);

/* Deep comparison: names, namespaces, attribute sets (order ignored), and
 * children in order (adjacent texts are always merged, so this is exact). */
bool xml_equal(const struct xml_node *a, const struct xml_node *b);

/* Serialization context: the default namespace in scope and which of the
 * well-known prefixes (stream:, db:) the enclosing stream header declared. */
struct xml_ctx {
	const char *default_ns;
	bool stream_prefix;
	bool db_prefix;
};

/* Serializes el as it must appear inside ctx (NULL = a standalone document).
 * Text and attribute values are escaped so that parsing the output gives the
 * same tree back: & < > " ' always, and \t \n \r as character references
 * where XML would normalize them. Characters XML 1.0 cannot carry and
 * invalid UTF-8 become U+FFFD, so the output is always well-formed. */
void xml_serialize(const struct xml_node *el, const struct xml_ctx *ctx, struct xml_buf *out);
/* Escapes s for use in text (attr=false) or an attribute value (attr=true). */
void xml_escape(struct xml_buf *out, const char *s, size_t len, bool attr);

/* Arena used by the parser to build trees in place. */
struct xml_arena *xml_arena_new(void);
void xml_arena_free(struct xml_arena **a);
void *xml_arena_alloc(struct xml_arena *a, size_t n);
char *xml_arena_strndup(struct xml_arena *a, const char *s, size_t n);
/* Bytes the arena holds (for memory accounting). */
size_t xml_arena_size(const struct xml_arena *a);
/* A root element inside an existing arena (the arena then belongs to it). */
struct xml_node *xml_new_in(struct xml_arena *a, const char *ns, size_t ns_len, const char *name,
			    size_t name_len);

#endif

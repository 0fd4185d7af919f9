/* The XML stream core: bytes in, events out. Never touches sockets.
 *
 * One xmlstream parses one direction of one XMPP stream: the stream header,
 * then one tree per top-level child (a stanza or a stream-level element such
 * as <starttls/>), then the closing tag. Restricted XML (RFC 6120 §11) and
 * every peer-controlled size are enforced here, so no other layer has to. */
#ifndef FG_XMLSTREAM_H
#define FG_XMLSTREAM_H

#include "xml.h"

#include <stdbool.h>
#include <stddef.h>

enum xs_event_type {
	XS_EV_OPEN,   /* stream header: ev->node holds its attributes */
	XS_EV_STANZA, /* one top-level child: ev->node, owned by the receiver */
	XS_EV_CLOSE,  /* </stream:stream> */
	XS_EV_ERROR,  /* fatal: ev->condition is an RFC 6120 stream error */
};

struct xs_event {
	enum xs_event_type type;
	/* OPEN: the stream element (attributes only; to, from, version, id,
	 * xml:lang as xml_attr_ns(node, XML_NS_XML, "lang")), valid during the
	 * callback. STANZA: the tree; the callback takes ownership and must
	 * xml_free() it or keep it. */
	struct xml_node *node;
	/* OPEN: the default namespace the header declared ("" if none): the
	 * content namespace, jabber:server or jabber:client. */
	const char *content_ns;
	/* OPEN: whether xmlns:db='jabber:server:dialback' was declared. */
	int dialback_declared;
	/* ERROR: condition element name (e.g. "not-well-formed") and a
	 * sentence for logs and the stream error's <text/>. */
	const char *condition;
	const char *text;
};

/* Return XS_CONTINUE to go on parsing, XS_STOP to stop at once: the bytes
 * after the current event are left unparsed (used after <starttls/>, whose
 * trailing bytes must never be parsed). */
enum { XS_CONTINUE = 0, XS_STOP = 1 };
typedef int (*xs_callback)(void *ud, struct xs_event *ev);

struct xs_limits {
	size_t stanza_bytes; /* one top-level child, start tag to end tag */
	unsigned depth;	     /* element nesting, the stanza being depth 1 */
	unsigned attributes; /* attributes (and, separately, namespace
				  declarations) per element */
};

struct xmlstream;

/* NULL when out of memory. */
struct xmlstream *xmlstream_new(const struct xs_limits *lim, xs_callback cb, void *ud);
void xmlstream_free(struct xmlstream **xs);
/* Limits apply from the next element on (raise them after authentication). */
void xmlstream_set_limits(struct xmlstream *xs, const struct xs_limits *lim);
/* Forgets everything and expects a new stream header (after STARTTLS or
 * SASL success, RFC 6120 §4.3.3). */
int xmlstream_reset(struct xmlstream *xs);

/* Parses len bytes. Returns FG_OK when all were consumed, XS_STOP-ed
 * streams return FG_AGAIN with *consumed telling how many bytes were parsed,
 * and FG_ERR after an XS_EV_ERROR (the stream is dead; later feeds return
 * FG_ERR at once). consumed may be NULL. */
int xmlstream_feed(struct xmlstream *xs, const char *buf, size_t len, size_t *consumed);

/* Frees the XML parser of a stream that sits between stanzas, most of
 * what an idle stream holds (about 11 KiB); the next xmlstream_feed makes
 * a new one, replaying the header's namespace bindings to it first, and
 * parses on exactly as before (fuzz_xmlstream compares the two). Returns
 * false, changing nothing, when the stream is in the middle of something
 * (a stanza, an unfinished token, a reset) or already asleep. */
bool xmlstream_sleep(struct xmlstream *xs);
bool xmlstream_asleep(const struct xmlstream *xs);

/* Bytes held by the parser and the stanza under construction. */
size_t xmlstream_memory(const struct xmlstream *xs);

/* Parses one stanza that xml_serialize wrote (in jabber:server) back into
 * a tree, for what the store keeps as text; NULL when it is not one. */
struct xml_node *xmlstream_parse_one(const char *xml);

#endif

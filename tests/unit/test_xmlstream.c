/* The stream core: events, restricted XML, limits, restart, round trips. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "fg.h"
#include "xml.h"
#include "xmlstream.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const struct xs_limits big = {.stanza_bytes = 512 * 1024, .depth = 32, .attributes = 64};

/* Every event is written to a trace so that runs can be compared. */
struct trace {
	struct xml_buf log;
	int stanzas;
	int errors;
	const char *condition;
	int stop_on; /* stop after this many stanzas (0 = never) */
	struct xml_node *last;
};

static int record(void *ud, struct xs_event *ev)
{
	struct trace *t = ud;
	switch (ev->type) {
	case XS_EV_OPEN:
		xml_buf_puts(&t->log, "OPEN ns=");
		xml_buf_puts(&t->log, ev->content_ns);
		xml_buf_puts(&t->log, ev->dialback_declared ? " db" : " nodb");
		for (struct xml_attr *a = ev->node->attrs; a; a = a->next) {
			xml_buf_puts(&t->log, " {");
			xml_buf_puts(&t->log, a->ns);
			xml_buf_puts(&t->log, "}");
			xml_buf_puts(&t->log, a->name);
			xml_buf_puts(&t->log, "=");
			xml_buf_puts(&t->log, a->value);
		}
		xml_buf_puts(&t->log, "\n");
		break;
	case XS_EV_STANZA:
		t->stanzas++;
		xml_buf_puts(&t->log, "STANZA ");
		xml_serialize(ev->node, NULL, &t->log);
		xml_buf_puts(&t->log, "\n");
		xml_free(&t->last);
		t->last = ev->node;
		if (t->stop_on && t->stanzas == t->stop_on)
			return XS_STOP;
		break;
	case XS_EV_CLOSE: xml_buf_puts(&t->log, "CLOSE\n"); break;
	case XS_EV_ERROR:
		t->errors++;
		t->condition = ev->condition;
		xml_buf_puts(&t->log, "ERROR ");
		xml_buf_puts(&t->log, ev->condition);
		xml_buf_puts(&t->log, "\n");
		break;
	}
	return XS_CONTINUE;
}

static void trace_free(struct trace *t)
{
	xml_buf_free(&t->log);
	xml_free(&t->last);
}

static char *slurp(const char *name, size_t *len)
{
	char path[1024];
	const char *dir = getenv("FG_TESTDATA");
	snprintf(path, sizeof(path), "%s/streams/%s", dir ? dir : "tests/data", name);
	FILE *f = fopen(path, "rb");
	assert_non_null(f);
	fseek(f, 0, SEEK_END);
	long n = ftell(f);
	fseek(f, 0, SEEK_SET);
	char *buf = malloc((size_t)n + 1);
	assert_non_null(buf);
	assert_int_equal(fread(buf, 1, (size_t)n, f), (size_t)n);
	buf[n] = '\0';
	fclose(f);
	*len = (size_t)n;
	return buf;
}

/* Feeds data in pieces cut at the given offsets (sorted, may be empty). */
static void run_split(const char *data, size_t len, const size_t *cuts, size_t ncuts,
		      struct trace *t)
{
	struct xmlstream *xs = xmlstream_new(&big, record, t);
	assert_non_null(xs);
	size_t pos = 0;
	for (size_t i = 0; i <= ncuts; i++) {
		size_t end = i < ncuts ? cuts[i] : len;
		int rc = xmlstream_feed(xs, data + pos, end - pos, NULL);
		if (rc != FG_OK)
			break;
		pos = end;
	}
	xmlstream_free(&xs);
}

static void run_all(const char *data, size_t len, struct trace *t)
{
	run_split(data, len, NULL, 0, t);
}

static const char *condition_of(const char *data)
{
	static char cond[64];
	struct trace t = {0};
	run_all(data, strlen(data), &t);
	snprintf(cond, sizeof(cond), "%s", t.condition ? t.condition : "none");
	assert_true(t.errors <= 1);
	trace_free(&t);
	return cond;
}

static void test_recorded_stream_splits(void **state)
{
	(void)state;
	size_t len;
	char *data = slurp("s2s-chat.xml", &len);
	struct trace whole = {0};
	run_all(data, len, &whole);
	assert_int_equal(whole.errors, 0);
	assert_int_equal(whole.stanzas, 8);
	assert_non_null(strstr(whole.log.data, "CLOSE\n"));
	assert_non_null(strstr(whole.log.data, "OPEN ns=jabber:server db"));

	/* Split into two at every offset. */
	for (size_t cut = 0; cut <= len; cut++) {
		struct trace t = {0};
		run_split(data, len, &cut, 1, &t);
		if (strcmp(t.log.data, whole.log.data) != 0)
			fail_msg("split at %zu differs:\n%s\nvs\n%s", cut, t.log.data,
				 whole.log.data);
		trace_free(&t);
	}
	/* One byte at a time. */
	size_t *cuts = malloc(len * sizeof(*cuts));
	for (size_t i = 0; i < len; i++)
		cuts[i] = i + 1;
	struct trace bytes = {0};
	run_split(data, len, cuts, len, &bytes);
	assert_string_equal(bytes.log.data, whole.log.data);
	trace_free(&bytes);
	free(cuts);
	trace_free(&whole);
	free(data);
}

static void test_stanza_content(void **state)
{
	(void)state;
	size_t len;
	char *data = slurp("s2s-chat.xml", &len);
	struct trace t = {.stop_on = 5};
	struct xmlstream *xs = xmlstream_new(&big, record, &t);
	size_t used = 0;
	assert_int_equal(xmlstream_feed(xs, data, len, &used), FG_AGAIN);
	/* The fifth stanza is the CDATA message; we stopped right after it. */
	assert_true(xml_is(t.last, XML_NS_SERVER, "message"));
	assert_string_equal(xml_attr(t.last, "id"), "m3");
	struct xml_node *body = xml_child(t.last, XML_NS_SERVER, "body");
	assert_non_null(body);
	assert_string_equal(xml_text(body), "if (a < b && c > d) { return \"]]\"; }");
	const char *after = data + used;
	assert_memory_equal(after, "\n<iq type='get'", 15);
	/* A stopped stream takes no more bytes until it is reset. */
	assert_int_equal(xmlstream_feed(xs, after, 3, NULL), FG_ERR);
	xmlstream_free(&xs);
	trace_free(&t);
	free(data);
}

#define HDR                                                                                     \
	"<stream:stream xmlns='jabber:server' xmlns:stream='http://etherx.jabber.org/streams' " \
	"to='contoso.test' version='1.0'>"

static void test_restricted_xml(void **state)
{
	(void)state;
	assert_string_equal(
		condition_of("<?xml version='1.0'?><!DOCTYPE foo [<!ENTITY x 'y'>]>" HDR),
		"restricted-xml");
	assert_string_equal(condition_of("<!DOCTYPE stream:stream SYSTEM 'x.dtd'>" HDR),
			    "restricted-xml");
	assert_string_equal(condition_of("<!-- hi -->" HDR), "restricted-xml");
	assert_string_equal(condition_of(HDR "<!-- between stanzas -->"), "restricted-xml");
	assert_string_equal(condition_of(HDR "<message><!-- inside --></message>"),
			    "restricted-xml");
	assert_string_equal(condition_of(HDR "<?php echo 1; ?>"), "restricted-xml");
	assert_string_equal(condition_of("<?xml-stylesheet href='a'?>" HDR), "restricted-xml");
	assert_string_equal(condition_of(HDR "<message>&foo;</message>"), "restricted-xml");
	/* The XML declaration: only 1.0 and UTF-8. */
	assert_string_equal(condition_of("<?xml version='1.0' encoding='UTF-8'?>" HDR "<a/>"),
			    "none");
	assert_string_equal(condition_of("<?xml version='1.0' encoding='utf-8'?>" HDR "<a/>"),
			    "none");
	assert_string_equal(condition_of("<?xml version='1.0' encoding='ISO-8859-1'?>" HDR),
			    "unsupported-encoding");
	assert_string_equal(condition_of("<?xml version='1.0' encoding='UTF-16'?>" HDR),
			    "unsupported-encoding");
	const char *v11 = condition_of("<?xml version='1.1'?>" HDR);
	assert_true(strcmp(v11, "unsupported-version") == 0 || strcmp(v11, "not-well-formed") == 0);
	/* A second declaration mid-stream is not well-formed. */
	assert_string_equal(condition_of(HDR "<?xml version='1.0'?>"), "not-well-formed");
}

static void test_bad_utf8_and_chars(void **state)
{
	(void)state;
	static const char *const bad[] = {
		"\xc3\x28",	    /* bad continuation */
		"\xc0\xaf",	    /* overlong '/' */
		"\xe0\x80\xaf",	    /* overlong, 3 bytes */
		"\xed\xa0\x80",	    /* UTF-16 surrogate */
		"\xf4\x90\x80\x80", /* beyond U+10FFFF */
		"\x80",		    /* lone continuation byte */
		"\xff",		    /* never valid */
		"\x01",		    /* control character */
		"&#1;",		    /* control character by reference */
		"&#xFFFE;",	    /* non-character */
		"\xef\xbf\xbe",	    /* U+FFFE raw */
		"&#0;",
	};
	for (size_t i = 0; i < FG_ARRAY_LEN(bad); i++) {
		char doc[256];
		snprintf(doc, sizeof(doc), HDR "<message><body>x%sy</body></message>", bad[i]);
		const char *c = condition_of(doc);
		if (strcmp(c, "not-well-formed") != 0)
			fail_msg("case %zu gave %s", i, c);
		snprintf(doc, sizeof(doc), HDR "<message id='a%sb'/>", bad[i]);
		c = condition_of(doc);
		if (strcmp(c, "not-well-formed") != 0)
			fail_msg("attribute case %zu gave %s", i, c);
	}
	/* Truncated multi-byte sequence followed by ASCII. */
	assert_string_equal(condition_of(HDR "<a>\xe2\x82</a>"), "not-well-formed");
	/* Valid multi-byte characters pass. */
	assert_string_equal(condition_of(HDR "<a>\xe2\x82\xac \xf0\x9f\x8e\x89</a>"), "none");
}

static void test_stream_header_errors(void **state)
{
	(void)state;
	assert_string_equal(condition_of("<stream:stream xmlns:stream='http://example.com/streams' "
					 "xmlns='jabber:server'>"),
			    "invalid-namespace");
	assert_string_equal(condition_of("<stream xmlns='jabber:server'>"), "invalid-namespace");
	assert_string_equal(condition_of("<stream:features xmlns:stream='" XML_NS_STREAM "'>"),
			    "invalid-xml");
	assert_string_equal(condition_of("<foo:stream>"), "bad-namespace-prefix");
	assert_string_equal(condition_of(HDR "hello"), "bad-format");
	assert_string_equal(condition_of(HDR "<x:message/>"), "bad-namespace-prefix");
	assert_string_equal(condition_of(HDR "<a></b>"), "not-well-formed");
	assert_string_equal(condition_of(HDR " \n\t <a/> \r\n "), "none");
	assert_string_equal(condition_of(HDR "<a/></stream:stream><b/>"), "not-well-formed");
	/* Header attributes are reported with their namespaces. */
	struct trace t = {0};
	const char *doc = "<stream:stream xmlns='jabber:client' xmlns:stream='" XML_NS_STREAM
			  "' to='x.test' version='1.0' xml:lang='de'>";
	run_all(doc, strlen(doc), &t);
	assert_string_equal(t.log.data, "OPEN ns=jabber:client nodb {}to=x.test {}version=1.0 "
					"{http://www.w3.org/XML/1998/namespace}lang=de\n");
	trace_free(&t);
}

/* A stanza of exactly n bytes: <message><body>xxx</body></message> */
static char *stanza_of_size(size_t n)
{
	const char *pre = "<message><body>", *post = "</body></message>";
	size_t fixed = strlen(pre) + strlen(post);
	assert_true(n >= fixed);
	char *s = malloc(n + 1);
	strcpy(s, pre);
	memset(s + strlen(pre), 'x', n - fixed);
	strcpy(s + n - strlen(post), post);
	assert_int_equal(strlen(s), n);
	return s;
}

static const char *feed_with_limits(const struct xs_limits *lim, const char *body, size_t chunk)
{
	static char cond[64];
	struct trace t = {0};
	struct xmlstream *xs = xmlstream_new(lim, record, &t);
	const char *h = HDR;
	assert_int_equal(xmlstream_feed(xs, h, strlen(h), NULL), FG_OK);
	size_t len = strlen(body);
	for (size_t off = 0; off < len; off += chunk) {
		size_t n = len - off < chunk ? len - off : chunk;
		if (xmlstream_feed(xs, body + off, n, NULL) != FG_OK)
			break;
	}
	snprintf(cond, sizeof(cond), "%s", t.condition ? t.condition : "none");
	if (!t.condition)
		assert_true(t.stanzas >= 1);
	xmlstream_free(&xs);
	trace_free(&t);
	return cond;
}

static void test_stanza_size_limit(void **state)
{
	(void)state;
	const size_t limits[] = {10 * 1024, 256 * 1024, 512 * 1024};
	const size_t chunks[] = {1, 1000, 4096, 1 << 20};
	for (size_t i = 0; i < FG_ARRAY_LEN(limits); i++) {
		struct xs_limits lim = {.stanza_bytes = limits[i], .depth = 32, .attributes = 64};
		for (size_t c = 0; c < FG_ARRAY_LEN(chunks); c++) {
			if (chunks[c] == 1 && limits[i] > 10 * 1024)
				continue; /* byte-at-a-time is covered by the small limit */
			for (long d = -1; d <= 1; d++) {
				char *s = stanza_of_size(limits[i] + (size_t)d);
				const char *cond = feed_with_limits(&lim, s, chunks[c]);
				const char *want = d <= 0 ? "none" : "policy-violation";
				if (strcmp(cond, want) != 0)
					fail_msg("limit %zu size %+ld chunk %zu: %s", limits[i], d,
						 chunks[c], cond);
				free(s);
			}
		}
	}
	/* An unfinished tag expat would buffer forever is cut off too. */
	struct xs_limits lim = {.stanza_bytes = 10 * 1024, .depth = 32, .attributes = 64};
	char *open = malloc(64 * 1024);
	strcpy(open, "<message id='");
	memset(open + 13, 'a', 64 * 1024 - 14);
	open[64 * 1024 - 1] = '\0';
	assert_string_equal(feed_with_limits(&lim, open, 4096), "policy-violation");
	free(open);
}

static void test_depth_and_attribute_limits(void **state)
{
	(void)state;
	struct xs_limits lim = {.stanza_bytes = 64 * 1024, .depth = 8, .attributes = 5};
	for (unsigned depth = 7; depth <= 9; depth++) {
		struct xml_buf b = {0};
		for (unsigned i = 0; i < depth; i++)
			xml_buf_puts(&b, "<a>");
		for (unsigned i = 0; i < depth; i++)
			xml_buf_puts(&b, "</a>");
		const char *cond = feed_with_limits(&lim, b.data, 4096);
		assert_string_equal(cond, depth <= 8 ? "none" : "policy-violation");
		xml_buf_free(&b);
	}
	for (unsigned n = 4; n <= 6; n++) {
		struct xml_buf b = {0};
		xml_buf_puts(&b, "<message><x");
		for (unsigned i = 0; i < n; i++) {
			char at[32];
			snprintf(at, sizeof(at), " a%u='v'", i);
			xml_buf_puts(&b, at);
		}
		xml_buf_puts(&b, "/></message>");
		assert_string_equal(feed_with_limits(&lim, b.data, 4096),
				    n <= 5 ? "none" : "policy-violation");
		xml_buf_free(&b);
	}
	/* Namespace declarations are capped the same way. */
	assert_string_equal(feed_with_limits(&lim,
					     "<m xmlns:a='1' xmlns:b='2' xmlns:c='3' xmlns:d='4' "
					     "xmlns:e='5' xmlns:f='6'/>",
					     4096),
			    "policy-violation");
}

static void test_stop_and_restart(void **state)
{
	(void)state;
	/* After <starttls/> the bytes that follow are never parsed. */
	struct trace t = {.stop_on = 1};
	struct xmlstream *xs = xmlstream_new(&big, record, &t);
	const char *in = HDR "<starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'/><!-- evil --><a>";
	size_t used = 0;
	assert_int_equal(xmlstream_feed(xs, in, strlen(in), &used), FG_AGAIN);
	assert_string_equal(in + used, "<!-- evil --><a>");
	assert_int_equal(t.errors, 0);
	assert_true(xml_is(t.last, XML_NS_TLS, "starttls"));

	/* A reset stream expects a new header and forgets the old one. */
	assert_int_equal(xmlstream_reset(xs), FG_OK);
	t.stop_on = 0;
	xml_buf_reset(&t.log);
	const char *again = "<?xml version='1.0'?><stream:stream xmlns='jabber:server' "
			    "xmlns:stream='" XML_NS_STREAM "' to='b.test'><iq/></stream:stream>";
	assert_int_equal(xmlstream_feed(xs, again, strlen(again), &used), FG_OK);
	assert_int_equal(used, strlen(again));
	assert_string_equal(t.log.data, "OPEN ns=jabber:server nodb {}to=b.test\nSTANZA <iq "
					"xmlns='jabber:server'/>\nCLOSE\n");
	/* Raising limits after authentication takes effect. */
	xmlstream_free(&xs);
	trace_free(&t);

	struct xs_limits small = {.stanza_bytes = 1024, .depth = 8, .attributes = 8};
	struct trace u = {0};
	xs = xmlstream_new(&small, record, &u);
	assert_int_equal(xmlstream_feed(xs, HDR, strlen(HDR), NULL), FG_OK);
	xmlstream_set_limits(xs, &big);
	char *s = stanza_of_size(4096);
	assert_int_equal(xmlstream_feed(xs, s, strlen(s), NULL), FG_OK);
	assert_int_equal(u.stanzas, 1);
	free(s);
	xmlstream_free(&xs);
	trace_free(&u);
}

static struct xml_node *parse_one(const char *doc)
{
	struct trace t = {0};
	run_all(doc, strlen(doc), &t);
	assert_int_equal(t.errors, 0);
	struct xml_node *n = t.last;
	t.last = NULL;
	trace_free(&t);
	return n;
}

static void test_serializer_round_trip(void **state)
{
	(void)state;
	static const char *const hostile[] = {
		"<",
		"&",
		"]]>",
		"'\"",
		"a<b>c&d;e",
		"&amp;",
		"\t\n\r",
		"\r\n",
		" lead and trail ",
		"\xc3\xa9\xe2\x82\xac\xf0\x9f\x8e\x89",
		"]]]]>>",
		"<![CDATA[x]]>",
		"&#65;",
		"\"'\"'",
		"x\xc2\xa0y",
	};
	for (size_t i = 0; i < FG_ARRAY_LEN(hostile); i++) {
		struct xml_node *m = xml_new(XML_NS_SERVER, "message");
		xml_set_attr(m, NULL, "id", hostile[i]);
		xml_set_attr(m, XML_NS_XML, "lang", hostile[i]);
		xml_set_attr(m, "urn:example:x", "attr", hostile[i]);
		struct xml_node *body = xml_add_child(m, NULL, "body");
		xml_add_text(body, hostile[i], strlen(hostile[i]));
		struct xml_node *ext = xml_add_child(m, "urn:example:ext", "ext");
		xml_add_child(ext, "", "nons");
		struct xml_buf out = {0};
		xml_buf_puts(&out, HDR);
		xml_serialize(m,
			      &(struct xml_ctx){.default_ns = XML_NS_SERVER, .stream_prefix = true},
			      &out);
		struct xml_node *back = parse_one(out.data);
		assert_non_null(back);
		if (!xml_equal(m, back))
			fail_msg("round trip %zu failed: %s", i, out.data);
		assert_string_equal(xml_attr(back, "id"), hostile[i]);
		assert_string_equal(xml_text(xml_child(back, NULL, "body")), hostile[i]);
		/* And serialize(parse(serialize(x))) is stable. */
		struct xml_buf again = {0};
		xml_buf_puts(&again, HDR);
		xml_serialize(back,
			      &(struct xml_ctx){.default_ns = XML_NS_SERVER, .stream_prefix = true},
			      &again);
		assert_string_equal(out.data, again.data);
		xml_buf_free(&again);
		xml_buf_free(&out);
		xml_free(&back);
		xml_free(&m);
	}
}

static void test_serializer_illegal_chars(void **state)
{
	(void)state;
	/* Characters XML cannot carry never reach the wire: they become
	 * U+FFFD (one per maximal invalid subpart, as Unicode recommends, so
	 * a surrogate's three bytes give three), and the output parses. */
	const char bad[] = "a\x01"
			   "b\x1f"
			   "c\xc3(d\xed\xa0\x80"
			   "e\xef\xbf\xbe"
			   "f\xff";
	struct xml_node *m = xml_new(XML_NS_SERVER, "message");
	xml_set_attr(m, NULL, "id", bad);
	xml_add_text(xml_add_child(m, NULL, "body"), bad, strlen(bad));
	struct xml_buf out = {0};
	xml_buf_puts(&out, HDR);
	xml_serialize(m, &(struct xml_ctx){.default_ns = XML_NS_SERVER, .stream_prefix = true},
		      &out);
	struct xml_node *back = parse_one(out.data);
	const char *want = "a\xef\xbf\xbd"
			   "b\xef\xbf\xbd"
			   "c\xef\xbf\xbd(d\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd"
			   "e\xef\xbf\xbd"
			   "f\xef\xbf\xbd";
	assert_string_equal(xml_attr(back, "id"), want);
	assert_string_equal(xml_text(xml_child(back, NULL, "body")), want);
	xml_buf_free(&out);
	xml_free(&back);
	xml_free(&m);
}

static void test_prefixes(void **state)
{
	(void)state;
	struct xml_node *r = xml_new(XML_NS_DIALBACK, "result");
	xml_set_attr(r, NULL, "from", "a.test");
	xml_add_text(r, "key", 3);
	struct xml_buf out = {0};
	xml_serialize(r, &(struct xml_ctx){.default_ns = XML_NS_SERVER, .db_prefix = true}, &out);
	assert_string_equal(out.data, "<db:result from='a.test'>key</db:result>");
	xml_buf_reset(&out);
	xml_serialize(r, NULL, &out);
	assert_string_equal(
		out.data,
		"<db:result xmlns:db='jabber:server:dialback' from='a.test'>key</db:result>");
	xml_buf_free(&out);
	xml_free(&r);

	struct xml_node *f = xml_new(XML_NS_STREAM, "features");
	xml_add_child(xml_add_child(f, XML_NS_TLS, "starttls"), XML_NS_TLS, "required");
	xml_serialize(f, &(struct xml_ctx){.default_ns = XML_NS_SERVER, .stream_prefix = true},
		      &out);
	assert_string_equal(out.data,
			    "<stream:features><starttls "
			    "xmlns='urn:ietf:params:xml:ns:xmpp-tls'><required/></starttls>"
			    "</stream:features>");
	xml_buf_free(&out);
	xml_free(&f);
}

/* After a restart (SASL success, TLS) the whitespace a client put after
 * its last element of the old stream (go-sendxmpp: a newline after
 * </auth>) may come first; it is no part of the new stream's document. A
 * stop right after the new header is reported at its true offset. */
static void test_whitespace_before_restarted_header(void **state)
{
	(void)state;
	struct trace t = {.stop_on = 1};
	struct xmlstream *xs = xmlstream_new(&big, record, &t);
	assert_int_equal(xmlstream_feed(xs, HDR, strlen(HDR), NULL), FG_OK);
	assert_int_equal(xmlstream_reset(xs), FG_OK);
	xml_buf_reset(&t.log);
	size_t used = 0;
	assert_int_equal(xmlstream_feed(xs, "\n", 1, &used), FG_OK);
	assert_int_equal(used, 1);
	const char *again = " \r\n<?xml version='1.0'?><stream:stream xmlns='jabber:server' "
			    "xmlns:stream='" XML_NS_STREAM "' to='b.test'><iq/><iq/>";
	assert_int_equal(xmlstream_feed(xs, again, strlen(again), &used), FG_AGAIN);
	assert_string_equal(again + used, "<iq/>");
	assert_int_equal(t.errors, 0);
	assert_string_equal(t.log.data, "OPEN ns=jabber:server nodb {}to=b.test\nSTANZA <iq "
					"xmlns='jabber:server'/>\n");
	xmlstream_free(&xs);
	trace_free(&t);
}

/* Feeds one byte at a time and puts the stream to sleep after every byte
 * where it may sleep; returns how many times it slept. */
static int run_sleepy(const char *data, size_t len, const struct xs_limits *lim, struct trace *t)
{
	struct xmlstream *xs = xmlstream_new(lim, record, t);
	assert_non_null(xs);
	int slept = 0;
	for (size_t i = 0; i < len; i++) {
		if (xmlstream_feed(xs, data + i, 1, NULL) != FG_OK)
			break;
		if (xmlstream_sleep(xs)) {
			assert_true(xmlstream_asleep(xs));
			assert_false(xmlstream_sleep(xs));
			slept++;
		}
	}
	xmlstream_free(&xs);
	return slept;
}

static void expect_same_asleep(const char *data, const struct xs_limits *lim, int min_sleeps)
{
	struct trace awake = {0}, sleepy = {0};
	struct xmlstream *xs = xmlstream_new(lim, record, &awake);
	xmlstream_feed(xs, data, strlen(data), NULL);
	xmlstream_free(&xs);
	int slept = run_sleepy(data, strlen(data), lim, &sleepy);
	if (strcmp(awake.log.data, sleepy.log.data) != 0)
		fail_msg("asleep between stanzas:\n%s\nawake:\n%s", sleepy.log.data,
			 awake.log.data);
	if (slept < min_sleeps)
		fail_msg("slept %d times, expected at least %d", slept, min_sleeps);
	trace_free(&awake);
	trace_free(&sleepy);
}

/* An idle stream gives its parser back (xmlstream_sleep); what follows is
 * read exactly as if it had kept it: bindings the header made (an odd
 * prefix for the streams namespace, a prefix only stanzas use, a URI
 * with characters that must be escaped to be replayed), the closing tag,
 * errors, and the stanza size limit at the same byte. */
static void test_sleep_between_stanzas(void **state)
{
	(void)state;
	expect_same_asleep("<s:stream xmlns='jabber:client' xmlns:s='" XML_NS_STREAM "' "
			   "xmlns:x='urn:a&amp;b&#10;c&apos;d&lt;' to='a.test'>\n"
			   "<message to='b@a.test'><body>one</body></message> \n"
			   "<x:ping id='1'/><iq type='get'><x:q/></iq>\n"
			   "</s:stream>",
			   &big, 4);
	/* The default namespace is the streams one: the name has no prefix. */
	expect_same_asleep("<stream xmlns='" XML_NS_STREAM "' xmlns:c='jabber:client'>"
			   "<c:message/><c:presence/></stream>",
			   &big, 2);
	/* A prefix the header did not bind, and text outside any stanza, are
	 * the same errors after a sleep. */
	expect_same_asleep(HDR "<iq/><y:iq/>", &big, 1);
	expect_same_asleep(HDR "<iq/>text", &big, 1);
	expect_same_asleep(HDR "<iq/></stream:stream><iq/>", &big, 1);
	/* The size limit counts from the stanza's first byte after a sleep
	 * too: this one is refused at the same byte. */
	struct xs_limits small = big;
	small.stanza_bytes = strlen(HDR) + 1; /* fed a byte at a time, the header counts too */
	expect_same_asleep(HDR "<iq id='1'/><message><body>0123456789012345678901234567890"
			       "0123456789012345678901234567890123456789012345678901234567890"
			       "0123456789012345678901234567890123456789012345678901234567890"
			       "</body></message><iq/>",
			   &small, 1);

	/* A header much longer than its replay: a limit counted from the
	 * wrong byte would refuse the second stanza. */
	char hdr_long[512], stream[1024];
	snprintf(hdr_long, sizeof(hdr_long),
		 "<stream:stream xmlns='jabber:client' xmlns:stream='" XML_NS_STREAM
		 "' id='%0300d'>",
		 7);
	snprintf(stream, sizeof(stream), "%s<iq/><message><body>%0120d</body></message><presence/>",
		 hdr_long, 1);
	small.stanza_bytes = strlen(hdr_long) + 8;
	expect_same_asleep(stream, &small, 3);

	/* Never in the middle of a stanza or of a token. */
	struct trace t = {0};
	struct xmlstream *xs = xmlstream_new(&big, record, &t);
	assert_false(xmlstream_sleep(xs)); /* no header yet */
	assert_int_equal(xmlstream_feed(xs, HDR "<message><bo", strlen(HDR) + 12, NULL), FG_OK);
	assert_false(xmlstream_sleep(xs));
	assert_int_equal(xmlstream_feed(xs, "dy/></message><pres", 19, NULL), FG_OK);
	assert_false(xmlstream_sleep(xs));
	assert_int_equal(xmlstream_feed(xs, "ence/>", 6, NULL), FG_OK);
	assert_true(xmlstream_sleep(xs));
	assert_int_equal(t.stanzas, 2);
	/* A reset while asleep expects a new header as usual. */
	assert_int_equal(xmlstream_reset(xs), FG_OK);
	assert_false(xmlstream_asleep(xs));
	assert_int_equal(xmlstream_feed(xs, HDR "<iq/>", strlen(HDR) + 5, NULL), FG_OK);
	assert_int_equal(t.stanzas, 3);
	assert_int_equal(t.errors, 0);
	xmlstream_free(&xs);
	trace_free(&t);

	/* Two prefixes for the streams namespace: which one the closing tag
	 * uses cannot be known, so the stream keeps its parser. */
	struct trace two = {0};
	const char *both = "<a:stream xmlns:a='" XML_NS_STREAM "' xmlns:b='" XML_NS_STREAM
			   "' xmlns='jabber:client'><iq/>";
	assert_int_equal(run_sleepy(both, strlen(both), &big, &two), 0);
	assert_int_equal(two.stanzas, 1);
	trace_free(&two);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_recorded_stream_splits),
		cmocka_unit_test(test_stanza_content),
		cmocka_unit_test(test_restricted_xml),
		cmocka_unit_test(test_bad_utf8_and_chars),
		cmocka_unit_test(test_stream_header_errors),
		cmocka_unit_test(test_stanza_size_limit),
		cmocka_unit_test(test_depth_and_attribute_limits),
		cmocka_unit_test(test_stop_and_restart),
		cmocka_unit_test(test_whitespace_before_restarted_header),
		cmocka_unit_test(test_serializer_round_trip),
		cmocka_unit_test(test_serializer_illegal_chars),
		cmocka_unit_test(test_prefixes),
		cmocka_unit_test(test_sleep_between_stanzas),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}

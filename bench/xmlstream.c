/* Throughput of the stream core against raw expat on the same bytes.
 *
 * The input is an s2s stream of chat messages like the recorded one in
 * tests/data/streams/s2s-chat.xml, repeated with varying bodies. Both sides
 * parse it in 16 KiB reads, as the connection layer does; raw expat runs
 * with namespace processing and no handlers, the floor of what any tree
 * builder on expat can cost. Prints the best of several rounds. */
#include "fg.h"
#include "xml.h"
#include "xmlstream.h"

#include <expat.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define CHUNK 16384

static const char *const bodies[] = {
	"Hi Alice! Are we still on for lunch?",
	"Grüße aus Köln — 日本語のテキスト 🎉",
	"The build is green again &amp; the release notes are in the wiki.",
	"ok",
	"Could you send me the slides from this morning's meeting? Thanks a lot, Bob",
};

static char *make_stream(size_t target, size_t *len, size_t *stanzas)
{
	struct xml_buf b = {0};
	xml_buf_puts(&b, "<?xml version='1.0'?><stream:stream xmlns='jabber:server' "
			 "xmlns:stream='http://etherx.jabber.org/streams' "
			 "xmlns:db='jabber:server:dialback' from='fabrikam.test' "
			 "to='contoso.test' version='1.0'>");
	size_t n = 0;
	char tmp[1024];
	while (b.len < target) {
		snprintf(tmp, sizeof(tmp),
			 "<message from='bob@fabrikam.test/laptop' to='alice@contoso.test' "
			 "type='chat' id='m%zu' xml:lang='en'><body>%s</body>"
			 "<active xmlns='http://jabber.org/protocol/chatstates'/>"
			 "<request xmlns='urn:xmpp:receipts'/></message>\n",
			 n, bodies[n % FG_ARRAY_LEN(bodies)]);
		xml_buf_puts(&b, tmp);
		n++;
	}
	xml_buf_puts(&b, "</stream:stream>");
	*len = b.len;
	*stanzas = n;
	return b.data;
}

static double now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static double run_expat(const char *data, size_t len)
{
	XML_Parser p = XML_ParserCreateNS("UTF-8", '\x01');
	double t0 = now();
	for (size_t off = 0; off < len; off += CHUNK) {
		size_t n = len - off < CHUNK ? len - off : CHUNK;
		if (XML_Parse(p, data + off, (int)n, XML_FALSE) != XML_STATUS_OK) {
			fprintf(stderr, "expat: %s\n", XML_ErrorString(XML_GetErrorCode(p)));
			exit(1);
		}
	}
	double t = now() - t0;
	XML_ParserFree(p);
	return t;
}

struct count {
	size_t stanzas;
	int errors;
};

static int on_event(void *ud, struct xs_event *ev)
{
	struct count *c = ud;
	if (ev->type == XS_EV_STANZA) {
		c->stanzas++;
		xml_free(&ev->node);
	} else if (ev->type == XS_EV_ERROR) {
		c->errors++;
		fprintf(stderr, "xmlstream: %s\n", ev->condition);
	}
	return XS_CONTINUE;
}

static double run_core(const char *data, size_t len, size_t *stanzas)
{
	struct xs_limits lim = {.stanza_bytes = 512 * 1024, .depth = 32, .attributes = 64};
	struct count c = {0};
	struct xmlstream *xs = xmlstream_new(&lim, on_event, &c);
	double t0 = now();
	for (size_t off = 0; off < len; off += CHUNK) {
		size_t n = len - off < CHUNK ? len - off : CHUNK;
		if (xmlstream_feed(xs, data + off, n, NULL) != FG_OK)
			exit(1);
	}
	double t = now() - t0;
	xmlstream_free(&xs);
	*stanzas = c.stanzas;
	return t;
}

int main(int argc, char **argv)
{
	size_t mb = argc > 1 ? (size_t)atoi(argv[1]) : 32;
	int rounds = argc > 2 ? atoi(argv[2]) : 5;
	size_t len, stanzas, seen = 0;
	char *data = make_stream(mb << 20, &len, &stanzas);
	double best_x = 1e9, best_c = 1e9;
	for (int r = 0; r < rounds; r++) {
		double tx = run_expat(data, len);
		double tc = run_core(data, len, &seen);
		if (tx < best_x)
			best_x = tx;
		if (tc < best_c)
			best_c = tc;
	}
	if (seen != stanzas) {
		fprintf(stderr, "stanza count mismatch: %zu != %zu\n", seen, stanzas);
		return 1;
	}
	double mbytes = (double)len / (1 << 20);
	printf("input: %.1f MiB, %zu chat stanzas, %d rounds, best of each\n", mbytes, stanzas,
	       rounds);
	printf("raw expat (namespaces, no handlers): %8.1f MB/s  %10.0f stanzas/s\n",
	       mbytes / best_x, (double)stanzas / best_x);
	printf("xmlstream (trees, limits, checks):   %8.1f MB/s  %10.0f stanzas/s\n",
	       mbytes / best_c, (double)stanzas / best_c);
	printf("ratio xmlstream/expat: %.0f%% (target >= 85%%)\n", 100.0 * best_x / best_c);
	free(data);
	return 0;
}

/* Fuzzes the stream core: any bytes, split anywhere, must give events or one
 * error, never a crash or a leak; every stanza it yields must survive
 * serialize -> parse unchanged; and a stream put to sleep wherever it
 * allows (xmlstream_sleep) must give exactly the events of one that never
 * slept. */
#include "fuzz.h"
#include "fg.h"
#include "xml.h"
#include "xmlstream.h"

#include <stdbool.h>
#include <stdint.h>
#include <string.h>

static const char hdr[] = "<stream:stream xmlns='jabber:server' "
			  "xmlns:stream='http://etherx.jabber.org/streams' "
			  "xmlns:db='jabber:server:dialback'>";

struct state {
	struct xml_node *again;
	int errors;
};

static int reparse_cb(void *ud, struct xs_event *ev)
{
	struct state *st = ud;
	if (ev->type == XS_EV_STANZA) {
		xml_free(&st->again);
		st->again = ev->node;
	} else if (ev->type == XS_EV_ERROR) {
		st->errors++;
	}
	return XS_CONTINUE;
}

static void check_round_trip(const struct xml_node *stanza)
{
	static const struct xs_limits lim = {
		.stanza_bytes = 16 << 20, .depth = 1000, .attributes = 1000};
	struct xml_buf out = {0};
	xml_buf_puts(&out, hdr);
	struct xml_ctx ctx = {
		.default_ns = XML_NS_SERVER, .stream_prefix = true, .db_prefix = true};
	xml_serialize(stanza, &ctx, &out);
	struct state st = {0};
	struct xmlstream *xs = xmlstream_new(&lim, reparse_cb, &st);
	xmlstream_feed(xs, out.data, out.len, NULL);
	if (st.errors || !st.again || !xml_equal(stanza, st.again))
		__builtin_trap();
	xml_free(&st.again);
	xmlstream_free(&xs);
	xml_buf_free(&out);
}

static int on_event(void *ud, struct xs_event *ev)
{
	FG_UNUSED(ud);
	if (ev->type == XS_EV_STANZA) {
		check_round_trip(ev->node);
		xml_free(&ev->node);
	} else if (ev->type == XS_EV_ERROR && !ev->condition) {
		__builtin_trap();
	}
	return XS_CONTINUE;
}

/* Every event as text, so that two runs can be compared. */
static int trace_cb(void *ud, struct xs_event *ev)
{
	struct xml_buf *log = ud;
	switch (ev->type) {
	case XS_EV_OPEN:
		xml_buf_puts(log, "OPEN ");
		xml_buf_puts(log, ev->content_ns);
		xml_buf_puts(log, ev->dialback_declared ? " db\n" : "\n");
		break;
	case XS_EV_STANZA:
		xml_serialize(ev->node, NULL, log);
		xml_buf_puts(log, "\n");
		xml_free(&ev->node);
		break;
	case XS_EV_CLOSE: xml_buf_puts(log, "CLOSE\n"); break;
	case XS_EV_ERROR:
		xml_buf_puts(log, "ERROR ");
		xml_buf_puts(log, ev->condition);
		xml_buf_puts(log, ev->text ? ev->text : "");
		xml_buf_puts(log, "\n");
		break;
	}
	return XS_CONTINUE;
}

/* Feeds the input in pieces of `step` bytes, sleeping after each piece
 * when `sleepy` and the stream allows it. */
static void run_pieces(const uint8_t *data, size_t size, const struct xs_limits *lim, size_t step,
		       bool sleepy, struct xml_buf *log)
{
	struct xmlstream *xs = xmlstream_new(lim, trace_cb, log);
	for (size_t off = 0; off < size; off += step) {
		size_t n = size - off < step ? size - off : step;
		if (xmlstream_feed(xs, (const char *)data + off, n, NULL) != FG_OK)
			break;
		if (sleepy && xmlstream_sleep(xs) && !xmlstream_asleep(xs))
			__builtin_trap();
	}
	xmlstream_free(&xs);
}

static void check_sleep(const uint8_t *data, size_t size, const struct xs_limits *lim, unsigned ctl)
{
	size_t step = 1 + ((ctl >> 3) % 8) * 3;
	struct xml_buf awake = {0}, sleepy = {0};
	run_pieces(data, size, lim, step, false, &awake);
	run_pieces(data, size, lim, step, true, &sleepy);
	if (awake.len != sleepy.len || (awake.len && memcmp(awake.data, sleepy.data, awake.len)))
		__builtin_trap();
	xml_buf_free(&awake);
	xml_buf_free(&sleepy);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size < 1)
		return 0;
	/* The first byte picks the split point and small limits, so both
	 * chunking and every cap are explored. */
	unsigned ctl = data[0];
	data++;
	size--;
	struct xs_limits lim = {
		.stanza_bytes = (ctl & 1) ? 256 : 64 * 1024,
		.depth = (ctl & 2) ? 4 : 64,
		.attributes = (ctl & 4) ? 3 : 64,
	};
	struct xmlstream *xs = xmlstream_new(&lim, on_event, NULL);
	size_t cut = size ? (ctl * 7u) % (size + 1) : 0;
	int rc = xmlstream_feed(xs, (const char *)data, cut, NULL);
	if (rc == FG_OK)
		xmlstream_feed(xs, (const char *)data + cut, size - cut, NULL);
	xmlstream_free(&xs);
	check_sleep(data, size, &lim, ctl);
	return 0;
}

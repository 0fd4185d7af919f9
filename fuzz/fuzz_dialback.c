/* libFuzzer target for Server Dialback as a peer sends it: stanzas out of a
 * stream (the real stream core parses the bytes) go to dialback_parse, the
 * per-stream trackers of both roles, key checking and the authoritative
 * answer. Invariants: an accepted element holds prepared domains and a
 * bounded, trimmed key; rebuilding it with the builders, serializing and
 * parsing again gives the same message; a key checks iff it is the one we
 * issue (case aside); a tracker never exceeds its caps, never authorizes
 * a pair without a valid answer to a request of ours, and the
 * authoritative answer is valid iff the key is. */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "fuzz.h"
#include "dialback.h"
#include "fg.h"
#include "jid.h"
#include "xml.h"
#include "xmlstream.h"

#define SECRET	"fuzz-dialback-secret"
#define MAX_PEN 3

static const char hdr[] = "<stream:stream xmlns='jabber:server' "
			  "xmlns:stream='http://etherx.jabber.org/streams' "
			  "xmlns:db='jabber:server:dialback'>";

struct run {
	struct db_tracker *in, *out;
	struct xml_node *again; /* for the round trip */
	int stanzas;
};

static bool prepared(const char *d)
{
	char *p = NULL;
	bool ok = d != NULL && jid_domain_prep(d, strlen(d), &p) == JID_OK && strcmp(p, d) == 0;

	free(p);
	return ok;
}

static bool str_eq(const char *a, const char *b)
{
	return (a == NULL && b == NULL) || (a && b && strcmp(a, b) == 0);
}

static bool msg_eq(const struct db_msg *a, const struct db_msg *b)
{
	return a->elem == b->elem && a->type == b->type && str_eq(a->from, b->from) &&
	       str_eq(a->to, b->to) && str_eq(a->id, b->id) && str_eq(a->key, b->key) &&
	       (a->type != DB_ERROR || a->cond == b->cond);
}

static int again_cb(void *ud, struct xs_event *ev)
{
	struct run *r = ud;

	if (ev->type == XS_EV_STANZA) {
		xml_free(&r->again);
		r->again = ev->node;
	}
	return XS_CONTINUE;
}

/* What we would send, through the wire and back. */
static void check_wire(const struct xml_node *el, const struct db_msg *want)
{
	static const struct xs_limits lim = {
		.stanza_bytes = 1 << 20, .depth = 64, .attributes = 64};
	struct xml_buf out = {0};
	struct xml_ctx ctx = {
		.default_ns = XML_NS_SERVER, .stream_prefix = true, .db_prefix = true};
	struct run r = {0};
	struct db_msg m;

	xml_buf_puts(&out, hdr);
	xml_serialize(el, &ctx, &out);
	struct xmlstream *xs = xmlstream_new(&lim, again_cb, &r);

	CHECK(xs != NULL);
	CHECK(xmlstream_feed(xs, out.data, out.len, NULL) == FG_OK);
	CHECK(r.again != NULL);
	CHECK(dialback_parse(r.again, &m) == DB_PERR_OK);
	CHECK(msg_eq(&m, want));
	dialback_msg_clear(&m);
	xml_free(&r.again);
	xmlstream_free(&xs);
	xml_buf_free(&out);
}

static struct xml_node *rebuild(const struct db_msg *m)
{
	bool valid = m->type == DB_VALID;

	if (m->type == DB_ERROR)
		return dialback_error(m->elem, m->from, m->to, m->id, m->cond);
	if (m->elem == DB_RESULT)
		return m->type == DB_REQUEST ? dialback_result_request(m->from, m->to, m->key)
					     : dialback_result_answer(m->from, m->to, valid);
	return m->type == DB_REQUEST ? dialback_verify_request(m->from, m->to, m->id, m->key)
				     : dialback_verify_answer(m->from, m->to, m->id, valid);
}

static bool is_local(void *arg, const char *domain)
{
	(void)arg;
	return strcmp(domain, "contoso.test") == 0;
}

static void check_keys(const struct db_msg *m)
{
	char mine[DIALBACK_KEY_HEX_LEN + 1];
	const char *id = m->id ? m->id : "stream-id";

	/* receiving = to, originating = from, as in a db:result request. */
	CHECK(dialback_key(SECRET, m->to, m->from, id, mine) == FG_OK);
	CHECK(strlen(mine) == DIALBACK_KEY_HEX_LEN);
	CHECK(dialback_key_check(SECRET, m->to, m->from, id, mine));
	bool same = strcasecmp(m->key, mine) == 0;

	CHECK(dialback_key_check(SECRET, m->to, m->from, id, m->key) == same);
	CHECK(!dialback_key_check("", m->to, m->from, id, m->key));
	if (m->elem != DB_VERIFY)
		return;
	enum db_type verdict = DB_REQUEST;
	struct xml_node *ans = dialback_authoritative(SECRET, m, is_local, NULL, &verdict);

	CHECK(ans != NULL);
	struct db_msg a;

	CHECK(dialback_parse(ans, &a) == DB_PERR_OK);
	/* The answer goes back to where the request came from. */
	CHECK(a.elem == DB_VERIFY && str_eq(a.from, m->to) && str_eq(a.to, m->from) &&
	      str_eq(a.id, m->id) && a.type == verdict);
	if (!is_local(NULL, m->to))
		CHECK(verdict == DB_ERROR && a.cond == DB_COND_ITEM_NOT_FOUND);
	else
		CHECK(verdict == (dialback_key_check(SECRET, m->from, m->to, m->id, m->key)
					  ? DB_VALID
					  : DB_INVALID));
	dialback_msg_clear(&a);
	xml_free(&ans);
}

static void check_trackers(struct run *r, const struct db_msg *m)
{
	bool was_auth = dialback_tracker_is_authorized(r->out, m->to, m->from);
	int rc;

	if (m->type == DB_REQUEST) {
		if (m->elem == DB_RESULT) {
			rc = dialback_tracker_request(r->in, m);
			CHECK(rc == FG_OK || rc == FG_AGAIN || rc == FG_LIMIT || rc == FG_INVAL);
			if (rc == FG_OK)
				CHECK(!dialback_tracker_is_authorized(r->in, m->to, m->from));
			/* Settle by the key, as the authoritative server would. */
			if (rc == FG_OK && (r->stanzas & 1))
				dialback_tracker_settle(r->in, m->to, m->from,
							dialback_key_check(SECRET, m->to, m->from,
									   "stream-id", m->key)
								? DB_VALID
								: DB_INVALID);
		}
		/* We send the same kind of request on our outbound stream. */
		rc = dialback_tracker_sent(r->out, m->elem, m->to, m->from, m->id);
		CHECK(rc == FG_OK || rc == FG_AGAIN || rc == FG_LIMIT || rc == FG_INVAL);
		CHECK(dialback_tracker_answer(r->out, m) == FG_INVAL);
	} else {
		rc = dialback_tracker_answer(r->out, m);
		CHECK(rc == FG_OK || rc == FG_NOTFOUND);
		/* An unsolicited answer authorizes nothing. */
		if (rc == FG_NOTFOUND)
			CHECK(dialback_tracker_is_authorized(r->out, m->to, m->from) == was_auth);
		CHECK(dialback_tracker_answer(r->in, m) == FG_NOTFOUND);
	}
	CHECK(dialback_tracker_pending(r->in) <= MAX_PEN);
	CHECK(dialback_tracker_pending(r->out) <= MAX_PEN);
}

static void on_stanza(struct run *r, const struct xml_node *el)
{
	struct db_msg m;
	enum db_perr e = dialback_parse(el, &m);

	r->stanzas++;
	CHECK(dialback_perr_str(e) != NULL);
	if (e != DB_PERR_OK) {
		CHECK(m.from == NULL && m.to == NULL && m.id == NULL && m.key == NULL);
		return;
	}
	CHECK(prepared(m.from) && prepared(m.to));
	CHECK((m.elem == DB_VERIFY) == (m.id != NULL));
	CHECK(m.id == NULL || (m.id[0] != '\0' && strlen(m.id) <= DIALBACK_ID_MAX));
	CHECK((m.type == DB_REQUEST) == (m.key != NULL));
	if (m.key) {
		size_t n = strlen(m.key);

		CHECK(n > 0 && n <= DIALBACK_KEY_MAX);
		for (size_t i = 0; i < n; i++)
			CHECK((unsigned char)m.key[i] > ' ' && m.key[i] != 0x7f);
		check_keys(&m);
	}
	CHECK((m.type == DB_ERROR) == (m.cond != DB_COND_NONE));
	CHECK(m.cond == DB_COND_NONE || m.cond == DB_COND_OTHER || dialback_cond_name(m.cond));

	struct xml_node *el2 = rebuild(&m);

	CHECK(el2 != NULL);
	check_wire(el2, &m);
	xml_free(&el2);
	check_trackers(r, &m);
	dialback_msg_clear(&m);
}

static int on_event(void *ud, struct xs_event *ev)
{
	if (ev->type == XS_EV_STANZA) {
		on_stanza(ud, ev->node);
		xml_free(&ev->node);
	}
	return XS_CONTINUE;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const struct xs_limits lim = {
		.stanza_bytes = 64 << 10, .depth = 16, .attributes = 16};
	struct db_tracker_limits tl = {.max_pending = MAX_PEN, .max_pairs = 8};
	struct run r = {
		.in = dialback_tracker_new(DB_ROLE_IN, &tl),
		.out = dialback_tracker_new(DB_ROLE_OUT, &tl),
	};
	struct xmlstream *xs = xmlstream_new(&lim, on_event, &r);

	if (r.in && r.out && xs && xmlstream_feed(xs, hdr, sizeof(hdr) - 1, NULL) == FG_OK)
		xmlstream_feed(xs, (const char *)data, size, NULL);
	xmlstream_free(&xs);
	dialback_tracker_free(&r.in);
	dialback_tracker_free(&r.out);
	return 0;
}

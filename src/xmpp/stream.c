#include "stream.h"

#include "conf.h"
#include "conn.h"
#include "counters.h"
#include "fg.h"
#include "jid.h"
#include "live.h"
#include "log.h"
#include "policy.h"
#include "s2s_cert.h"
#include "tls.h"
#include "xml.h"
#include "xmlstream.h"
#include "xmpp.h"

#include <assert.h>
#include <event2/event.h>
#include <jansson.h>
#include <openssl/rand.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

struct stream {
	struct xmpp_server *srv;
	struct conn *conn;
	struct xmlstream *xs;
	const struct stream_role *role;
	void *rs; /* the role's state */
	enum stream_state state;
	unsigned flags; /* SF_* */
	time_t started;
	char id[33];
	char *local;	    /* the local domain the peer addressed (to) */
	char *remote;	    /* the peer's from, prepared; s2s only, may be NULL */
	char *authed;	    /* what SASL authenticated: a domain, a bare JID */
	const char *method; /* how it authenticated, for status */
	char *last_error;   /* why the peer ended it (its stream error), for status */
	bool parsing;	    /* inside on_data: the parser is running */
	bool heard;	    /* bytes came since the last stream_doze */
	time_t heard_at;    /* when bytes last came (c2s pings, XEP-0199) */
	bool conn_gone;	    /* on_closed: conn is freed already, never to be used */

	/* Stanzas waiting for room in the connection (stream_offer): while
	 * any wait, the senders that fed them are held. */
	struct outq_item {
		struct xml_node *st; /* in jabber:server */
		size_t bytes;	     /* serialized */
		struct outq_item *next;
	} * outq, **outq_tail;
	size_t outq_bytes;
	struct event *stall;	       /* closes a peer that leaves the queue full */
	unsigned long long stall_mark; /* conn_flushed() when the clock started */
	const void *held_by;	       /* the recipient this stream waits for, or NULL */
	struct stream *prev, *next;
};

static const char *const state_names[] = {
	[STREAM_WAIT_HEADER] = "wait-header",
	[STREAM_NEGOTIATING] = "negotiating",
	[STREAM_TLS_HANDSHAKE] = "tls-handshake",
	[STREAM_READY] = "ready",
	[STREAM_CLOSING] = "closing",
};

const char *stream_state_name(enum stream_state st)
{
	return state_names[st];
}
enum stream_state stream_state(const struct stream *s)
{
	return s->state;
}
const char *stream_peer(const struct stream *s)
{
	return conn_peer(s->conn);
}
bool stream_is_s2s(const struct stream *s)
{
	return s->role->s2s;
}

const char *stream_remote(const struct stream *s)
{
	return s->remote;
}
struct stream *stream_next(const struct stream *s)
{
	return s->next;
}

void stream_list_add(struct stream **head, struct stream *s)
{
	s->prev = NULL;
	s->next = *head;
	if (*head)
		(*head)->prev = s;
	*head = s;
}

void stream_list_remove(struct stream **head, struct stream *s)
{
	if (s->prev)
		s->prev->next = s->next;
	else
		*head = s->next;
	if (s->next)
		s->next->prev = s->prev;
	s->prev = s->next = NULL;
}

static const char *content_ns(const struct stream *s)
{
	return s->role->content_ns;
}

/* An authenticated stream that stays silent this long is closed; the role
 * knows (a partner with keepalives promises whitespace, SPEC §3). */
static unsigned idle_timeout(const struct stream *s)
{
	return s->role->idle_timeout(s, s->rs);
}

static void hand_back_queue(struct stream *s, bool final);

/* The transitions the state machine above allows; anything else is a bug. */
static inline bool may_enter(enum stream_state from, enum stream_state to)
{
	switch (to) {
	case STREAM_WAIT_HEADER:
		/* accept, TLS up, SASL restart */
		return from == STREAM_WAIT_HEADER || from == STREAM_TLS_HANDSHAKE ||
		       from == STREAM_NEGOTIATING;
	case STREAM_NEGOTIATING: return from == STREAM_WAIT_HEADER;
	case STREAM_TLS_HANDSHAKE:
		/* STARTTLS, or Direct TLS at accept (stream_accept_tls) */
		return from == STREAM_NEGOTIATING || from == STREAM_WAIT_HEADER;
	case STREAM_READY: return from == STREAM_WAIT_HEADER || from == STREAM_NEGOTIATING;
	case STREAM_CLOSING: return from != STREAM_CLOSING;
	}
	return false;
}

/* The one place where a stream changes state, so every transition is
 * logged and the per-state timer is always re-armed. */
static void enter(struct stream *s, enum stream_state st)
{
	const struct fg_conf *cf = s->srv->conf;
	assert(may_enter(s->state, st));
	/* Only a Direct TLS stream starts TLS before any header, once. */
	assert(st != STREAM_TLS_HANDSHAKE || s->state == STREAM_NEGOTIATING ||
	       ((s->flags & SF_DIRECT_TLS) && !(s->flags & SF_SECURE)));
	log_debug(conn_ctx(s->conn), "%s -> %s", state_names[s->state], state_names[st]);
	s->state = st;
	if (st == STREAM_CLOSING) {
		if (s->role->closing)
			s->role->closing(s, s->rs);
		hand_back_queue(s, false);
	}
	unsigned t = 0;
	switch (st) {
	case STREAM_WAIT_HEADER: t = cf->timeout_stream_header; break;
	case STREAM_TLS_HANDSHAKE: t = cf->timeout_tls_handshake; break;
	case STREAM_NEGOTIATING: t = cf->timeout_authentication; break;
	case STREAM_READY: t = idle_timeout(s); break;
	case STREAM_CLOSING: t = 0; break;
	}
	/* No state may outlast the deadline for becoming authenticated. */
	if (t && st != STREAM_READY) {
		time_t left = s->started + (time_t)cf->timeout_authentication - time(NULL);
		if (left < 1)
			left = 1;
		if ((time_t)t > left)
			t = (unsigned)left;
	}
	conn_set_timer(s->conn, t);
	if (st == STREAM_READY && s->role->ready)
		s->role->ready(s, s->rs);
}

static void send_raw(struct stream *s, const char *data, size_t len)
{
	conn_write(s->conn, data, len);
}

static void send_node(struct stream *s, const struct xml_node *n);

void stream_send(struct stream *s, const struct xml_node *n)
{
	if (s->state != STREAM_CLOSING)
		send_node(s, n);
}

void stream_send_raw(struct stream *s, const char *data, size_t len)
{
	if (s->state != STREAM_CLOSING)
		send_raw(s, data, len);
}

bool stream_secure(const struct stream *s)
{
	return s->flags & SF_SECURE;
}

const char *stream_ctx(const struct stream *s)
{
	return conn_ctx(s->conn);
}

const char *stream_local(const struct stream *s)
{
	return s->local;
}

void stream_count_stanza(struct stream *s, bool in)
{
	conn_count_stanza(s->conn, in);
}

unsigned stream_flags(const struct stream *s)
{
	return s->flags;
}

const char *stream_id(const struct stream *s)
{
	return s->id;
}

struct conn *stream_conn(const struct stream *s)
{
	return s->conn;
}

struct xmpp_server *stream_server(const struct stream *s)
{
	return s->srv;
}

void *stream_role_state(const struct stream *s)
{
	return s->rs;
}

const char *stream_authed(const struct stream *s)
{
	return s->authed;
}

const char *stream_method(const struct stream *s)
{
	return s->method;
}

void stream_ready(struct stream *s, const char *method)
{
	s->method = method;
	if (s->state == STREAM_NEGOTIATING)
		enter(s, STREAM_READY);
}

struct stream *stream_by_conn_id(struct xmpp_server *srv, unsigned id)
{
	for (struct stream *s = srv->streams; s; s = s->next)
		if (s->conn && conn_id(s->conn) == id && s->state != STREAM_CLOSING)
			return s;
	return NULL;
}

/* RFC 6120 §6.4.6: after SASL success both sides start over; an
 * authenticated peer may send full-size stanzas. */
static void restart(struct stream *s)
{
	s->flags &= ~SF_RESTART;
	xmlstream_reset(s->xs);
	const struct fg_conf *cf = s->srv->conf;
	struct xs_limits lim = {.stanza_bytes = s->role->stanza_limit(cf),
				.depth = cf->element_depth,
				.attributes = cf->element_attributes};
	xmlstream_set_limits(s->xs, &lim);
	s->flags &= ~SF_HEADER_SENT;
	enter(s, STREAM_WAIT_HEADER);
}

void stream_authenticated(struct stream *s, const char *who, const char *method)
{
	free(s->authed);
	s->authed = strdup(who);
	if (!s->authed) {
		stream_error(s, "resource-constraint", "out of memory");
		return;
	}
	s->method = method;
	s->flags |= SF_AUTHED | SF_RESTART;
	/* Success answered later, from a role's timer (a held login): the
	 * parser is idle, and the peer can only send the new header once it
	 * has read <success/>, so the old stream ends here. */
	if (!s->parsing)
		restart(s);
}

static void send_node(struct stream *s, const struct xml_node *n)
{
	struct xml_buf b = {0};
	struct xml_ctx ctx = {
		.default_ns = content_ns(s),
		.stream_prefix = true,
		.db_prefix = s->role->s2s,
	};
	xml_serialize(n, &ctx, &b);
	if (!b.oom)
		send_raw(s, b.data, b.len);
	xml_buf_free(&b);
}

/* ---- stanzas to the peer, with back-pressure ---- */

static size_t serialize(const struct stream *s, const struct xml_node *n, struct xml_buf *b)
{
	struct xml_ctx ctx = {
		.default_ns = content_ns(s),
		.stream_prefix = true,
		.db_prefix = s->role->s2s,
	};
	xml_serialize(n, &ctx, b);
	return b->oom ? 0 : b->len;
}

/* Writes a stanza of the queue's kind (jabber:server) in the stream's
 * namespace; the stanza is freed. */
static void write_stanza(struct stream *s, struct xml_node *st)
{
	if (strcmp(content_ns(s), XML_NS_SERVER) != 0)
		xml_set_ns_deep(st, XML_NS_SERVER, content_ns(s));
	struct xml_buf b = {0};
	if (serialize(s, st, &b) && conn_write(s->conn, b.data, b.len) == FG_OK) {
		conn_count_stanza(s->conn, false);
		counters_stanza(STANZA_DELIVERED, NULL);
	} else {
		log_warn(conn_ctx(s->conn), "out of memory writing a stanza: dropped");
		counters_stanza(STANZA_DROPPED, "out-of-memory");
	}
	xml_buf_free(&b);
	xml_free(&st);
}

static bool conn_has_room(const struct stream *s)
{
	return conn_output_pending(s->conn) < s->srv->conf->output_queue / 2;
}

/* The stall clock measures progress: it fires stalled_output after the
 * peer last took a byte of ours. */
static void arm_stall(struct stream *s)
{
	struct timeval tv = {(time_t)s->srv->conf->timeout_stalled_output, 0};
	s->stall_mark = conn_flushed(s->conn);
	evtimer_add(s->stall, &tv);
}

/* Moves what waits into the connection while it has room; when nothing
 * waits any more, the senders held for this stream go on. */
static void flush_queue(struct stream *s)
{
	while (s->outq && conn_has_room(s) && s->state != STREAM_CLOSING) {
		struct outq_item *it = s->outq;
		s->outq = it->next;
		if (!s->outq)
			s->outq_tail = &s->outq;
		assert(s->outq_bytes >= it->bytes);
		s->outq_bytes -= it->bytes;
		write_stanza(s, it->st);
		free(it);
	}
	if (!s->outq) {
		assert(s->outq_bytes == 0);
		evtimer_del(s->stall);
		xmpp_release_held(s->srv, s);
	} else if (!evtimer_pending(s->stall, NULL)) {
		arm_stall(s);
	}
}

bool stream_offer(struct stream *s, struct xml_node *st)
{
	if (s->state == STREAM_CLOSING)
		return false;
	if (!s->outq && conn_has_room(s)) {
		write_stanza(s, st);
		return true;
	}
	struct xml_buf b = {0};
	size_t bytes = serialize(s, st, &b);
	xml_buf_free(&b);
	if (bytes == 0 ||
	    conn_output_pending(s->conn) + s->outq_bytes + bytes > s->srv->conf->output_queue) {
		/* Full: the sender that fed it is already held; what comes
		 * meanwhile is the caller's to divert (offline, a bounce). */
		xmpp_hold_feeder(s->srv, s);
		return false;
	}
	struct outq_item *it = malloc(sizeof(*it));
	if (!it)
		return false;
	*it = (struct outq_item){.st = st, .bytes = bytes};
	if (!s->outq)
		arm_stall(s);
	*s->outq_tail = it;
	s->outq_tail = &it->next;
	s->outq_bytes += bytes;
	xmpp_hold_feeder(s->srv, s);
	return true;
}

void stream_discard_queue(struct stream *s)
{
	while (s->outq) {
		struct outq_item *it = s->outq;
		s->outq = it->next;
		xml_free(&it->st);
		free(it);
	}
	s->outq_tail = &s->outq;
	s->outq_bytes = 0;
}

time_t stream_heard_at(const struct stream *s)
{
	return s->heard_at;
}

size_t stream_queued_bytes(const struct stream *s)
{
	return s->outq_bytes;
}

/* The stream ends with stanzas still waiting: they go back to the router,
 * which finds the recipient gone (the session ended first) and delivers to
 * another resource, stores offline or answers the sender. At the final
 * exit (route NULL) they can only be counted. */
static void hand_back_queue(struct stream *s, bool final)
{
	size_t n = 0;
	while (s->outq) {
		struct outq_item *it = s->outq;
		s->outq = it->next;
		n++;
		if (final || !s->srv->route) {
			counters_stanza(STANZA_DROPPED, "shutdown");
			xml_free(&it->st);
		} else {
			s->srv->route(s->srv, it->st);
		}
		free(it);
	}
	s->outq_tail = &s->outq;
	s->outq_bytes = 0;
	if (n)
		log_info(s->conn_gone ? "stream" : conn_ctx(s->conn),
			 "%zu stanza(s) waiting for the peer %s", n,
			 final ? "dropped at exit" : "handed back to the router");
	evtimer_del(s->stall);
	xmpp_release_held(s->srv, s);
}

static void on_stall(evutil_socket_t fd, short what, void *arg)
{
	struct stream *s = arg;
	(void)fd;
	(void)what;
	if (conn_flushed(s->conn) != s->stall_mark) {
		arm_stall(s); /* slow, not stalled */
		return;
	}
	char text[200];
	snprintf(text, sizeof(text),
		 "nothing was read for %u seconds while %zu bytes waited ([timeouts] "
		 "stalled_output)",
		 s->srv->conf->timeout_stalled_output,
		 conn_output_pending(s->conn) + s->outq_bytes);
	stream_error(s, "resource-constraint", text);
}

bool stream_has_room(const struct stream *s)
{
	return s->state == STREAM_READY && !s->outq && conn_has_room(s);
}

void stream_touch(struct stream *s)
{
	if (s->state == STREAM_READY)
		conn_set_timer(s->conn, idle_timeout(s));
}

static void on_drained(void *ud)
{
	struct stream *s = ud;
	flush_queue(s);
	if (s->role->drained && stream_has_room(s))
		s->role->drained(s, s->rs);
}

static void send_header(struct stream *s, const char *to)
{
	struct xml_buf b = {0};
	xml_buf_puts(&b, "<?xml version='1.0'?><stream:stream xmlns='");
	xml_buf_puts(&b, content_ns(s));
	xml_buf_puts(&b, "' xmlns:stream='" XML_NS_STREAM "'");
	if (s->role->s2s)
		xml_buf_puts(&b, " xmlns:db='" XML_NS_DIALBACK "'");
	if (s->local) {
		xml_buf_puts(&b, " from='");
		xml_escape(&b, s->local, strlen(s->local), true);
		xml_buf_puts(&b, "'");
	}
	if (to) {
		xml_buf_puts(&b, " to='");
		xml_escape(&b, to, strlen(to), true);
		xml_buf_puts(&b, "'");
	}
	xml_buf_puts(&b, " id='");
	xml_buf_puts(&b, s->id);
	xml_buf_puts(&b, "' version='1.0' xml:lang='en'>");
	if (!b.oom)
		send_raw(s, b.data, b.len);
	xml_buf_free(&b);
	s->flags |= SF_HEADER_SENT;
}

void stream_error(struct stream *s, const char *condition, const char *text)
{
	if (s->state == STREAM_CLOSING)
		return;
	char reason[300];
	snprintf(reason, sizeof(reason), "stream error <%s/>: %s", condition, text);
	log_info(conn_ctx(s->conn), "sending %s", reason);
	/* Before TLS is up nothing can be sent in the clear once the
	 * handshake started: just cut the connection. */
	if (s->state != STREAM_TLS_HANDSHAKE) {
		if (!(s->flags & SF_HEADER_SENT))
			send_header(s, NULL);
		struct xml_node *e = xml_new(XML_NS_STREAM, "error");
		if (e) {
			xml_add_child(e, XML_NS_STREAMS_ERR, condition);
			struct xml_node *t = xml_add_child(e, XML_NS_STREAMS_ERR, "text");
			if (t) {
				xml_set_attr(t, XML_NS_XML, "lang", "en");
				xml_add_text(t, text, strlen(text));
			}
			send_node(s, e);
			xml_free(&e);
		}
		send_raw(s, "</stream:stream>", 16);
	}
	enter(s, STREAM_CLOSING);
	conn_close(s->conn, reason);
}

static void send_features(struct stream *s)
{
	struct xml_node *f = xml_new(XML_NS_STREAM, "features");
	int rc = f ? s->role->features(s, s->rs, f) : FG_NOMEM;
	if (rc != FG_OK) {
		xml_free(&f);
		stream_error(s, "resource-constraint", "out of memory");
		return;
	}
	send_node(s, f);
	xml_free(&f);
}

/* Parses "major.minor"; false when malformed. */
static bool parse_version(const char *v, unsigned long *major, unsigned long *minor)
{
	char *end;
	if (!v || *v < '0' || *v > '9')
		return false;
	*major = strtoul(v, &end, 10);
	if (*end != '.' || end[1] < '0' || end[1] > '9')
		return false;
	*minor = strtoul(end + 1, &end, 10);
	return *end == '\0';
}

static void on_header(struct stream *s, struct xs_event *ev)
{
	const struct fg_conf *cf = s->srv->conf;
	const char *to = xml_attr(ev->node, "to");
	const char *from = xml_attr(ev->node, "from");
	const char *version = xml_attr(ev->node, "version");

	free(s->local);
	s->local = NULL;
	free(s->remote);
	s->remote = NULL;
	if (to) {
		char *prep = NULL;
		if (jid_domain_prep(to, strlen(to), &prep) == JID_OK &&
		    conf_is_local_domain(cf, prep))
			s->local = prep;
		else
			free(prep);
	}
	char *peer_from = NULL;
	if (s->role->s2s && from && jid_domain_prep(from, strlen(from), &peer_from) == JID_OK)
		s->remote = peer_from;

	char label[300];
	snprintf(label, sizeof(label), "%s->%s", s->remote ? s->remote : "",
		 s->local ? s->local : (to ? "?" : ""));
	conn_set_label(s->conn, label);

	/* Errors are reported in RFC 6120 §4.9.1 order: our header goes out
	 * first (stream_error sends it), then the condition. */
	if (strcmp(ev->content_ns, content_ns(s)) != 0) {
		char text[200];
		snprintf(text, sizeof(text),
			 "this port expects the content namespace %s, not '%.80s'", content_ns(s),
			 ev->content_ns);
		stream_error(s, "invalid-namespace", text);
		return;
	}
	unsigned long major = 0, minor = 0;
	if (!version) {
		stream_error(
			s, "unsupported-version",
			"the stream header has no version; XMPP 1.0 (version='1.0') is required");
		return;
	}
	if (!parse_version(version, &major, &minor) || major < 1) {
		stream_error(
			s, "unsupported-version",
			"the stream header's version is not 1.0 or later; XMPP 1.0 is required");
		return;
	}
	if (!to) {
		stream_error(s, "host-unknown", "the stream header names no domain (to)");
		return;
	}
	if (!s->local) {
		stream_error(s, "host-unknown", "the domain in 'to' is not served here");
		return;
	}
	if (s->role->s2s && from && !s->remote) {
		stream_error(s, "invalid-from", "the domain in 'from' is not a valid domain name");
		return;
	}
	if (!s->role->on_header(s, s->rs))
		return;
	/* A peer announcing a later major version gets ours; it decides
	 * whether to go on (RFC 6120 §4.7.5). */
	send_header(s, s->remote);
	log_info(conn_ctx(s->conn), "stream opened (version %lu.%lu, %s)", major, minor,
		 (s->flags & SF_SECURE) ? "TLS" : "plaintext");
	if ((s->flags & SF_AUTHED) && s->remote && strcmp(s->remote, s->authed) != 0) {
		stream_error(s, "invalid-from", "the stream was authenticated for another domain");
		return;
	}
	send_features(s);
	enter(s, (s->flags & SF_AUTHED) ? STREAM_READY : STREAM_NEGOTIATING);
}

void stream_status(const struct stream *s, void *json_row)
{
	json_t *r = json_row;
	SSL *ssl = conn_ssl(s->conn);
	const char *verdict = "none";
	struct tls_verdict v;
	v.eku[0] = v.spki[0] = '\0';
	if (ssl && s->remote) {
		if (stream_is_s2s(s))
			s2s_cert_verify(s->srv, ssl, s->remote, &v);
		else
			tls_peer_verify(ssl, s->remote, &v);
		verdict = v.text;
	} else if (ssl) {
		verdict = tls_peer_verdict(ssl);
	}
	conn_status(s->conn, r);
	json_object_set_new(r, "direction", json_string(s->role->direction));
	json_object_set_new(r, "local", json_string(s->local ? s->local : ""));
	json_object_set_new(r, "remote",
			    json_string(s->authed   ? s->authed
					: s->remote ? s->remote
						    : ""));
	json_object_set_new(r, "state", json_string(state_names[s->state]));
	json_object_set_new(r, "method", json_string(s->method ? s->method : "none"));
	json_object_set_new(r, "certificate", json_string(verdict));
	json_object_set_new(r, "certificate_eku", json_string(v.eku));
	json_object_set_new(r, "certificate_key", json_string(v.spki));
	json_object_set_new(r, "age", json_integer((json_int_t)(time(NULL) - s->started)));
	json_object_set_new(r, "last_error", json_string(s->last_error ? s->last_error : ""));
	json_object_set_new(
		r, "output_pending",
		json_integer((json_int_t)(conn_output_pending(s->conn) + s->outq_bytes)));
	if (s->role->status)
		s->role->status(s, s->rs, r);
}

/* An element before the stream is authenticated: the role's check first
 * (a partner's settings), STARTTLS here, anything else the role's. */
static void on_element(struct stream *s, struct xml_node *el)
{
	bool secure = s->flags & SF_SECURE;
	assert(s->state == STREAM_NEGOTIATING);
	if (s->role->allows && !s->role->allows(s, s->rs, el))
		return;
	if (xml_is(el, XML_NS_TLS, "starttls")) {
		if (secure) {
			/* RFC 6120 §5.4.2.2: <failure/>, then close. */
			log_info(conn_ctx(s->conn), "STARTTLS on a stream that is already secure");
			send_raw(s, "<failure xmlns='" XML_NS_TLS "'/></stream:stream>",
				 strlen("<failure xmlns='" XML_NS_TLS "'/></stream:stream>"));
			enter(s, STREAM_CLOSING);
			conn_close(s->conn, "STARTTLS requested twice");
			return;
		}
		s->flags |= SF_STARTTLS;
		return;
	}
	if (s->role->negotiate(s, s->rs, el))
		return;
	if (s->state == STREAM_CLOSING)
		return;
	if (!secure && (!s->role->tls_required || s->role->tls_required(s, s->rs))) {
		stream_error(s, "policy-violation",
			     "TLS is required before anything else: send <starttls/> first");
		return;
	}
	stream_error(s, "not-authorized",
		     "the stream is not authenticated; no stanza is accepted before that");
}

/* RFC 6120 §4.9.1.1: a stream error ends the stream and is never answered
 * with one: the peer's condition and text are logged and given to the role
 * (s2s keeps them as the route's last failure), and our side closes. */
void stream_peer_said(const struct xml_node *err, char *buf, size_t len)
{
	const struct xml_node *cond = NULL;
	for (const struct xml_node *c = xml_first_element(err); c && !cond; c = xml_next_element(c))
		if (xml_is(c, XML_NS_STREAMS_ERR, NULL) && strcmp(c->name, "text") != 0)
			cond = c;
	const struct xml_node *t = xml_child(err, XML_NS_STREAMS_ERR, "text");
	const char *text = t ? xml_text(t) : NULL;
	snprintf(buf, len, "the peer said: <%s/>%s%s%s", cond ? cond->name : "undefined-condition",
		 text && *text ? " '" : "", text && *text ? text : "", text && *text ? "'" : "");
}

void stream_cert_problem(const struct tls_verdict *v, const char *domain, bool for_peer, char *buf,
			 size_t len)
{
	const char *what;
	if (v->pin == TLS_PIN_MISMATCH)
		what = v->has_cert ? "its public key is not one pinned for this partner"
				   : "no certificate was presented, and keys are pinned";
	else if (!v->has_cert)
		what = "no certificate was presented";
	else if (v->chain_error == X509_V_ERR_CERT_HAS_EXPIRED)
		what = "the certificate has expired";
	else if (v->chain_error == X509_V_ERR_CERT_NOT_YET_VALID)
		what = "the certificate is not valid yet";
	else if (v->chain_error == X509_V_ERR_DEPTH_ZERO_SELF_SIGNED_CERT ||
		 v->chain_error == X509_V_ERR_SELF_SIGNED_CERT_IN_CHAIN)
		what = "the certificate is self-signed";
	else if (v->chain_error == X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT ||
		 v->chain_error == X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT_LOCALLY ||
		 v->chain_error == X509_V_ERR_UNABLE_TO_VERIFY_LEAF_SIGNATURE)
		what = "the certificate's issuer is not trusted here";
	else if (!v->chain_ok)
		what = "the certificate chain is not trusted";
	else if (v->id == TLS_ID_NO_MATCH)
		what = "the certificate is not valid for this name";
	else
		what = "the certificate was not accepted";
	if (!for_peer)
		snprintf(buf, len, "certificate refused for %s: %s (%s)", domain, what, v->text);
	else if (v->id_text[0])
		snprintf(buf, len, "certificate refused for %s: %s; %s", domain, what, v->id_text);
	else
		snprintf(buf, len, "certificate refused for %s: %s", domain, what);
}

static void on_peer_error(struct stream *s, const struct xml_node *el)
{
	const char *who = s->remote ? s->remote : s->authed ? s->authed : "the peer";
	char said[560], why[600];
	stream_peer_said(el, said, sizeof(said));
	snprintf(why, sizeof(why), "%s closed the stream; %s", who, said);
	free(s->last_error);
	s->last_error = strdup(why); /* NULL when out of memory: status shows none */
	log_warn(conn_ctx(s->conn), "%s", why);
	if (s->role->peer_error)
		s->role->peer_error(s, s->rs, why);
	send_raw(s, "</stream:stream>", 16);
	enter(s, STREAM_CLOSING);
	conn_close(s->conn, why);
}

static int on_event(void *ud, struct xs_event *ev)
{
	struct stream *s = ud;
	if (s->state == STREAM_CLOSING) {
		if (ev->type == XS_EV_STANZA)
			xml_free(&ev->node);
		return XS_STOP;
	}
	switch (ev->type) {
	case XS_EV_OPEN: on_header(s, ev); break;
	case XS_EV_STANZA:
		if (xml_is(ev->node, XML_NS_STREAM, "error")) {
			on_peer_error(s, ev->node);
			xml_free(&ev->node);
			break;
		}
		if (s->state == STREAM_READY) {
			/* A recipient that is full holds this stream
			 * (xmpp_hold_feeder). */
			assert(s->srv->feeding == NULL);
			s->srv->feeding = s;
			s->role->stanza(s, s->rs, ev->node);
			s->srv->feeding = NULL;
			break;
		}
		if (s->state != STREAM_NEGOTIATING) {
			xml_free(&ev->node);
			stream_error(s, "not-authorized", "stanza before the stream was set up");
			break;
		}
		on_element(s, ev->node);
		xml_free(&ev->node);
		/* Nothing after <starttls/> may be parsed; after SASL
		 * success what follows is a new stream. */
		if (s->flags & (SF_STARTTLS | SF_RESTART))
			return XS_STOP;
		break;
	case XS_EV_CLOSE:
		log_info(conn_ctx(s->conn), "peer closed the stream");
		send_raw(s, "</stream:stream>", 16);
		enter(s, STREAM_CLOSING);
		conn_close(s->conn, "peer closed the stream");
		return XS_STOP;
	case XS_EV_ERROR: stream_error(s, ev->condition, ev->text); break;
	}
	return s->state == STREAM_CLOSING ? XS_STOP : XS_CONTINUE;
}

/* XML's whitespace (S): what may stand between top-level elements. */
static bool only_whitespace(const char *p, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (p[i] != ' ' && p[i] != '\t' && p[i] != '\r' && p[i] != '\n')
			return false;
	return true;
}

/* rest: what the peer sent after <starttls/>, before our <proceed/>. */
static void start_tls(struct stream *s, const char *rest, size_t trailing)
{
	s->flags &= ~SF_STARTTLS;
	/* Whitespace there is no data (RFC 6120 §11.7): go-sendxmpp ends
	 * <starttls/> with a newline, and Prosody and ejabberd take it. It
	 * is dropped with the plaintext buffer all the same. */
	if (trailing > 0 && !only_whitespace(rest, trailing)) {
		/* A well-behaved peer waits for <proceed/>; bytes sent
		 * before it are an attempt to get something parsed as if it
		 * had come over TLS. They are dropped unread. */
		char text[160];
		snprintf(text, sizeof(text),
			 "%zu bytes were sent after <starttls/> before <proceed/>; they were "
			 "discarded unread",
			 trailing);
		stream_error(s, "policy-violation", text);
		return;
	}
	send_raw(s, "<proceed xmlns='" XML_NS_TLS "'/>",
		 strlen("<proceed xmlns='" XML_NS_TLS "'/>"));
	size_t discarded = 0;
	if (conn_start_tls(s->conn, s->srv->tls, &discarded) != FG_OK) {
		stream_error(s, "internal-server-error", "cannot start TLS");
		return;
	}
	enter(s, STREAM_TLS_HANDSHAKE);
}

static size_t on_data(void *ud, const char *data, size_t len)
{
	struct stream *s = ud;
	size_t off = 0;
	s->heard = true;
	s->heard_at = time(NULL);
	while (off < len && s->state != STREAM_TLS_HANDSHAKE && s->state != STREAM_CLOSING) {
		size_t used = 0;
		s->parsing = true;
		int rc = xmlstream_feed(s->xs, data + off, len - off, &used);
		s->parsing = false;
		off += used;
		if (rc != FG_AGAIN)
			break;
		if ((s->flags & SF_STARTTLS) && s->state == STREAM_NEGOTIATING) {
			start_tls(s, data + off, len - off);
			break;
		}
		if (!(s->flags & SF_RESTART))
			break;
		restart(s);
	}
	if (s->state == STREAM_READY)
		conn_set_timer(s->conn, idle_timeout(s));
	/* Bytes that came with the end of the TLS handshake belong to the
	 * new stream: left for on_tls. (Plaintext after <starttls/> never
	 * gets here: conn drops it when it switches to TLS.) */
	return s->state == STREAM_TLS_HANDSHAKE ? off : len;
}

static void on_tls(void *ud)
{
	struct stream *s = ud;
	s->flags |= SF_SECURE;
	s->flags &= ~SF_HEADER_SENT;
	/* RFC 6120 §5.4.3.3: both sides forget the old stream; the peer
	 * sends a new header, over TLS. */
	xmlstream_reset(s->xs);
	enter(s, STREAM_WAIT_HEADER);
}

static void on_timer(void *ud)
{
	struct stream *s = ud;
	const struct fg_conf *cf = s->srv->conf;
	char text[160];
	switch (s->state) {
	case STREAM_WAIT_HEADER:
		snprintf(text, sizeof(text), "no stream header within %u seconds",
			 cf->timeout_stream_header);
		break;
	case STREAM_TLS_HANDSHAKE:
		snprintf(text, sizeof(text), "TLS handshake not finished within %u seconds",
			 cf->timeout_tls_handshake);
		break;
	case STREAM_READY:
		snprintf(text, sizeof(text), "no traffic for %u seconds", idle_timeout(s));
		s->flags |= SF_IDLE_TIMEOUT;
		break;
	default:
		snprintf(text, sizeof(text), "stream not authenticated within %u seconds",
			 cf->timeout_authentication);
		break;
	}
	stream_error(s, "connection-timeout", text);
}

static void stream_destroy(struct stream *s, bool final)
{
	if (s->rs)
		s->role->detach(s->rs);
	hand_back_queue(s, final);
	if (s->stall)
		event_free(s->stall);
	xmlstream_free(&s->xs);
	free(s->local);
	free(s->remote);
	free(s->authed);
	free(s->last_error);
	free(s);
}

static void on_closed(void *ud, const char *reason)
{
	struct stream *s = ud;
	s->conn_gone = true; /* conn.c freed it before telling us */
	if (s->role->closed)
		s->role->closed(s, s->rs, reason);
	xmpp_stream_gone(s->srv, s);
	stream_destroy(s, false);
}

void stream_free_now(struct stream *s)
{
	struct conn *c = s->conn; /* its log context is used to the end */
	stream_destroy(s, true);
	conn_free_now(&c);
}

static const struct conn_ops stream_conn_ops = {
	.on_data = on_data,
	.on_tls = on_tls,
	.on_timer = on_timer,
	.on_closed = on_closed,
	.on_drained = on_drained,
};

static struct stream *accept_common(struct xmpp_server *srv, const struct stream_role *role, int fd,
				    const struct sockaddr *peer, socklen_t peerlen, bool direct_tls)
{
	const struct fg_conf *cf = srv->conf;
	assert(role && role->attach && role->detach && role->on_header && role->features &&
	       role->negotiate && role->stanza && role->idle_timeout && role->stanza_limit);
	struct stream *s = calloc(1, sizeof(*s));
	if (!s) {
		close(fd);
		return NULL;
	}
	s->srv = srv;
	s->role = role;
	s->state = STREAM_WAIT_HEADER;
	s->outq_tail = &s->outq;
	s->started = time(NULL);
	s->heard_at = s->started;
	unsigned char rnd[16];
	if (RAND_bytes(rnd, sizeof(rnd)) != 1)
		memset(rnd, 0, sizeof(rnd));
	for (size_t i = 0; i < sizeof(rnd); i++)
		snprintf(s->id + 2 * i, 3, "%02x", rnd[i]);

	/* Unauthenticated peers get the small stanza cap. */
	struct xs_limits lim = {
		.stanza_bytes = cf->preauth_stanza_size,
		.depth = cf->element_depth,
		.attributes = cf->element_attributes,
	};
	s->xs = xmlstream_new(&lim, on_event, s);
	s->rs = role->attach(srv, s);
	struct conn_limits cl = {
		.output_queue = cf->output_queue,
		.input_buffer = 64 * 1024,
	};
	s->stall = evtimer_new(srv->base, on_stall, s);
	if (!s->xs || !s->rs || !s->stall) {
		close(fd);
		stream_destroy(s, true);
		return NULL;
	}
	s->conn = conn_new(srv->base, fd, peer, peerlen, role->name, &cl, &stream_conn_ops, s);
	if (!s->conn) {
		stream_destroy(s, true);
		return NULL;
	}
	log_info(conn_ctx(s->conn), "connected%s", direct_tls ? " (Direct TLS)" : "");
	enter(s, STREAM_WAIT_HEADER);
	if (direct_tls) {
		/* XEP-0368: TLS before any XML; the peer's first header comes
		 * over TLS (on_tls), so no <starttls/> is ever offered. */
		const char *alpn = role->s2s ? "xmpp-server" : "xmpp-client";
		s->flags |= SF_DIRECT_TLS;
		if (conn_accept_tls(s->conn, srv->tls, alpn) != FG_OK) {
			enter(s, STREAM_CLOSING);
			conn_close(s->conn, "cannot start TLS (out of memory)");
			return s;
		}
		enter(s, STREAM_TLS_HANDSHAKE);
	}
	return s;
}

struct stream *stream_accept(struct xmpp_server *srv, const struct stream_role *role, int fd,
			     const struct sockaddr *peer, socklen_t peerlen)
{
	return accept_common(srv, role, fd, peer, peerlen, false);
}

struct stream *stream_accept_tls(struct xmpp_server *srv, const struct stream_role *role, int fd,
				 const struct sockaddr *peer, socklen_t peerlen)
{
	return accept_common(srv, role, fd, peer, peerlen, true);
}

/* ---- the layer's list of inbound streams (xmpp.h) ---- */

void xmpp_stream_added(struct xmpp_server *srv, struct stream *s)
{
	stream_list_add(&srv->streams, s);
	srv->nstreams++;
}

void xmpp_stream_gone(struct xmpp_server *srv, struct stream *s)
{
	assert(srv->nstreams > 0);
	stream_list_remove(&srv->streams, s);
	srv->nstreams--;
	xmpp_check_drained(srv);
}

void xmpp_check_drained(struct xmpp_server *srv)
{
	if (srv->stopping && srv->nstreams == 0 && srv->nouts == 0 && srv->drained)
		srv->drained(srv);
}

unsigned xmpp_s2s_in_count(const struct xmpp_server *srv, const struct partner *p)
{
	unsigned n = 0;
	for (const struct stream *s = srv->streams; s; s = stream_next(s)) {
		if (!stream_is_s2s(s) || stream_state(s) != STREAM_READY)
			continue;
		if (!p || (stream_remote(s) && policy_owns(p, stream_remote(s))))
			n++;
	}
	return n;
}

unsigned xmpp_streams_from(const struct xmpp_server *srv, const char *peer)
{
	unsigned n = 0;
	for (const struct stream *s = srv->streams; s; s = stream_next(s))
		if (strcmp(stream_peer(s), peer) == 0)
			n++;
	return n;
}

static bool preauth(const struct stream *s, const struct stream_role *role, const char *peer)
{
	return s->role == role && s->state != STREAM_READY && s->state != STREAM_CLOSING &&
	       (!peer || strcmp(stream_peer(s), peer) == 0);
}

unsigned xmpp_preauth_count(const struct xmpp_server *srv, const struct stream_role *role,
			    const char *peer)
{
	unsigned n = 0;
	for (const struct stream *s = srv->streams; s; s = s->next)
		n += preauth(s, role, peer);
	return n;
}

struct stream *xmpp_oldest_preauth(struct xmpp_server *srv, const struct stream_role *role)
{
	struct stream *oldest = NULL;
	for (struct stream *s = srv->streams; s; s = s->next)
		if (preauth(s, role, NULL))
			oldest = s; /* the list is newest first */
	return oldest;
}

void xmpp_free_streams(struct xmpp_server *srv)
{
	while (srv->streams) {
		struct stream *s = srv->streams;
		stream_list_remove(&srv->streams, s);
		srv->nstreams--;
		stream_free_now(s);
	}
}

/* ---- back-pressure (xmpp.h) ---- */

void xmpp_hold_feeder(struct xmpp_server *srv, const void *by)
{
	if (srv->feeding_out) {
		/* A stanza from our bidirectional outbound stream (XEP-0288). */
		if (srv->hold_out)
			srv->hold_out(srv->feeding_out, by);
		return;
	}
	/* by may be the feeder itself: a peer that does not read the answers
	 * to what it sends is not read either. */
	struct stream *f = srv->feeding;
	if (!f || f->state == STREAM_CLOSING || f->held_by == by)
		return;
	if (!f->held_by)
		log_debug(conn_ctx(f->conn), "held: a recipient it feeds is full");
	f->held_by = by;
	conn_hold_input(f->conn, true);
}

void xmpp_release_held(struct xmpp_server *srv, const void *by)
{
	for (struct stream *s = srv->streams; s; s = s->next) {
		if (s->held_by != by)
			continue;
		s->held_by = NULL;
		log_debug(conn_ctx(s->conn), "released: the recipient it fed has room");
		conn_hold_input(s->conn, false);
	}
	if (srv->release_out)
		srv->release_out(srv, by);
}

void stream_doze(struct xmpp_server *srv)
{
	for (struct stream *s = srv->streams; s; s = s->next) {
		if (s->heard || s->state != STREAM_READY || s->parsing) {
			s->heard = false;
			continue;
		}
		if (xmlstream_sleep(s->xs))
			counters_stream_dozed();
	}
}

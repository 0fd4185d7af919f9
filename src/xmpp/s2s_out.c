#include "s2s_out.h"

#include "conf.h"
#include "conn.h"
#include "dane.h"
#include "dialback.h"
#include "dns.h"
#include "happy.h"
#include "fg.h"
#include "live.h"
#include "log.h"
#include "counters.h"
#include "policy.h"
#include "s2s_cert.h"
#include "stream.h"
#include "xmpp.h"
#include "tls.h"
#include "xmlstream.h"

#include <assert.h>
#include <event2/event.h>
#include <jansson.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum out_state {
	OUT_RESOLVING,
	OUT_CONNECTING,
	OUT_WAIT_HEADER,
	OUT_WAIT_FEATURES,
	OUT_STARTTLS, /* <starttls/> sent */
	OUT_TLS,      /* handshaking */
	OUT_SASL,     /* <auth mechanism='EXTERNAL'/> sent */
	OUT_DIALBACK, /* <db:result/> sent, waiting for the verdict */
	OUT_READY,
	OUT_FAILED,
};

static const char *const out_state_names[] = {
	[OUT_RESOLVING] = "resolving",
	[OUT_CONNECTING] = "connecting",
	[OUT_WAIT_HEADER] = "wait-header",
	[OUT_WAIT_FEATURES] = "wait-features",
	[OUT_STARTTLS] = "starttls",
	[OUT_TLS] = "tls-handshake",
	[OUT_SASL] = "sasl-external",
	[OUT_DIALBACK] = "dialback",
	[OUT_READY] = "ready",
	[OUT_FAILED] = "failed",
};

struct out_verify {
	char *id, *key;
	bool sent;
	s2s_out_verified cb;
	void *ud;
	struct out_verify *next;
};

struct s2s_out {
	struct xmpp_server *srv;
	char *local, *remote;
	char ctx[300];
	enum out_state state;
	unsigned methods;
	bool secure, authed, restart;
	bool heard;	     /* bytes came since the last s2s_out_doze */
	bool bidi_on;	     /* the partner's record allows XEP-0288 */
	bool bidi;	     /* we asked for it: the peer may send its stanzas here */
	const void *held_by; /* the full recipient its stanzas wait for, or NULL */
	const char *method;  /* how it authenticated, for logs */

	struct dns_query *q;
	/* DANE (dane.c): the partner's setting, the TLSA lookups and what
	 * they found, and the records of the target being tried when its
	 * certificate is to be verified with them. */
	enum dane_mode dane;
	struct dane_lookup *dl;
	struct dane_result *dane_res;
	const struct dane_host *dane_host;
	bool dane_refused; /* the last target was not tried because of DANE */
	bool dane_next;	   /* its certificate failed DANE: on to the next target */
	struct dns_target *targets;
	/* targets[next_target..] are not tried yet; cur is the one
	 * connected. A race (happy.c) runs over race_idx[0..nrace): the
	 * targets DANE lets us try, each with its records in tdane. */
	size_t ntargets, next_target, cur;
	size_t *race_idx, nrace;
	struct target_dane {
		unsigned char st; /* TD_UNKNOWN, TD_ALLOWED, TD_REFUSED */
		const struct dane_host *host;
	} * tdane;
	struct happy *race;
	char last_connect_error[580];
	char last_error[600];
	enum db_cond fail_cond; /* what a failure means for senders */
	const char *fail_kind;	/* s2s_out_fail_kind; NULL: from the state */
	time_t started;

	struct conn *conn;
	struct xmlstream *xs;
	struct event *deadline;

	const struct s2s_out_ops *ops; /* the route that owns this stream */
	void *owner;
	struct out_verify *verifies; /* db:verify requests for the receiving role */
	bool can_send;		     /* the stream is where db:verify may go out */
	char *stream_id;	     /* the peer's, for our dialback key */
	bool attempted;		     /* DNS or network was tried: failures count
					for the retry delay */
	struct xml_buf report;
	struct s2s_out *prev, *next; /* srv->outs */
};

static void arm_idle(struct s2s_out *o);

static void step(struct s2s_out *o, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void step(struct s2s_out *o, const char *fmt, ...)
{
	char line[600];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(line, sizeof(line), fmt, ap);
	va_end(ap);
	log_info(o->ctx, "%s", line);
	xml_buf_puts(&o->report, line);
	xml_buf_puts(&o->report, "\n");
}

/* The transitions of the outbound state machine (docs/internals.md); any
 * other is a bug. */
static inline bool may_enter(enum out_state from, enum out_state to)
{
	switch (to) {
	case OUT_RESOLVING: return from == OUT_RESOLVING; /* the first state */
	case OUT_CONNECTING: /* OUT_TLS: a failed resumption, once more in full */
		return from == OUT_RESOLVING || from == OUT_CONNECTING || from == OUT_TLS;
	case OUT_WAIT_HEADER: return from == OUT_CONNECTING || from == OUT_TLS || from == OUT_SASL;
	case OUT_WAIT_FEATURES: return from == OUT_WAIT_HEADER;
	case OUT_STARTTLS: return from == OUT_WAIT_FEATURES;
	case OUT_TLS: /* after <proceed/>, or at connect to a Direct TLS target */
		return from == OUT_STARTTLS || from == OUT_CONNECTING;
	case OUT_SASL: return from == OUT_WAIT_FEATURES;
	case OUT_DIALBACK: return from == OUT_WAIT_FEATURES;
	case OUT_READY: return from == OUT_WAIT_FEATURES || from == OUT_DIALBACK;
	case OUT_FAILED: return from != OUT_FAILED;
	}
	return false;
}

static void enter(struct s2s_out *o, enum out_state st)
{
	assert(may_enter(o->state, st));
	log_debug(o->ctx, "%s -> %s", out_state_names[o->state], out_state_names[st]);
	o->state = st;
}

/* Every waiting db:verify request learns why it will get no answer. */
static void drop_verifies(struct s2s_out *o, enum db_cond cond, const char *why)
{
	while (o->verifies) {
		struct out_verify *v = o->verifies;
		o->verifies = v->next;
		if (v->cb)
			v->cb(v->ud, DB_ERROR, cond, why);
		free(v->id);
		free(v->key);
		free(v);
	}
}

static void out_free(struct s2s_out *o)
{
	dns_cancel(&o->q);
	happy_cancel(&o->race);
	dane_lookup_cancel(&o->dl);
	free(o->dane_res);
	free(o->race_idx);
	free(o->tdane);
	if (o->deadline)
		event_free(o->deadline);
	xmlstream_free(&o->xs);
	drop_verifies(o, DB_COND_REMOTE_SERVER_NOT_FOUND,
		      "the stream to the authoritative server went away");
	free(o->stream_id);
	xml_buf_free(&o->report);
	free(o->targets);
	free(o->local);
	free(o->remote);
	struct xmpp_server *srv = o->srv;
	if (o->prev)
		o->prev->next = o->next;
	else
		srv->outs = o->next;
	if (o->next)
		o->next->prev = o->prev;
	assert(srv->nouts > 0);
	srv->nouts--;
	free(o);
	xmpp_check_drained(srv);
}

void s2s_out_free_all(struct xmpp_server *srv)
{
	while (srv->outs)
		s2s_out_free_now(srv->outs);
}

/* A failure's kind from the step it happened in: a short word for
 * metrics labels (a fixed set, never the peer's words). */
static const char *kind_of_state(enum out_state st)
{
	switch (st) {
	case OUT_RESOLVING: return "dns";
	case OUT_CONNECTING: return "connect";
	case OUT_STARTTLS:
	case OUT_TLS: return "tls";
	case OUT_SASL:
	case OUT_DIALBACK: return "auth";
	default: return "stream";
	}
}

const char *s2s_out_fail_kind(const struct s2s_out *o)
{
	return o->fail_kind ? o->fail_kind : kind_of_state(o->state);
}

/* The owning route learns why (and reports every stanza it queued), then
 * the stream goes: its last words, the close, and on_closed frees it. */
static void fail(struct s2s_out *o, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void fail(struct s2s_out *o, const char *fmt, ...)
{
	if (o->state == OUT_FAILED)
		return;
	char why[600];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(why, sizeof(why), fmt, ap);
	va_end(ap);
	log_warn(o->ctx, "failed: %s", why);
	/* A stream that never got ready may have failed over its TLS
	 * session: the next one starts with a full handshake. One that was
	 * ready (an admin's change, a stall, the peer's close) proved it. */
	if (o->state != OUT_READY)
		tls_client_forget(o->srv->tls_client, o->local, o->remote);
	snprintf(o->last_error, sizeof(o->last_error), "%s", why);
	if (!o->fail_kind)
		o->fail_kind = kind_of_state(o->state);
	xml_buf_puts(&o->report, "failed: ");
	xml_buf_puts(&o->report, why);
	xml_buf_puts(&o->report, "\n");
	enter(o, OUT_FAILED);
	const struct s2s_out_ops *ops = o->ops;
	o->ops = NULL; /* the owner forgets this stream now */
	if (ops)
		ops->failed(o->owner, o->fail_cond, why, o->report.data ? o->report.data : why,
			    o->attempted);
	drop_verifies(o, o->fail_cond, why);
	if (o->conn) {
		conn_write(o->conn, "</stream:stream>", 16);
		conn_close(o->conn, why); /* on_closed frees o */
	} else {
		out_free(o);
	}
}

static void send_raw(struct s2s_out *o, const char *s)
{
	conn_write(o->conn, s, strlen(s));
}

void s2s_out_write_header(struct conn *c, const char *local, const char *remote)
{
	struct xml_buf b = {0};
	xml_buf_puts(&b, "<?xml version='1.0'?><stream:stream xmlns='jabber:server' "
			 "xmlns:stream='" XML_NS_STREAM "' xmlns:db='" XML_NS_DIALBACK "' from='");
	xml_escape(&b, local, strlen(local), true);
	xml_buf_puts(&b, "' to='");
	xml_escape(&b, remote, strlen(remote), true);
	xml_buf_puts(&b, "' version='1.0'>");
	if (!b.oom)
		conn_write(c, b.data, b.len);
	xml_buf_free(&b);
}

static void send_header(struct s2s_out *o)
{
	o->can_send = false;
	s2s_out_write_header(o->conn, o->local, o->remote);
	enter(o, OUT_WAIT_HEADER);
}

static void send_node(struct s2s_out *o, const struct xml_node *n)
{
	struct xml_ctx ctx = {
		.default_ns = XML_NS_SERVER, .stream_prefix = true, .db_prefix = true};
	struct xml_buf b = {0};
	xml_serialize(n, &ctx, &b);
	if (!b.oom)
		conn_write(o->conn, b.data, b.len);
	xml_buf_free(&b);
}

/* XEP-0220 lets db:verify go out on any stream to the authoritative
 * server once it is set up, authenticated or not. */
static void send_verifies(struct s2s_out *o)
{
	o->can_send = true;
	for (struct out_verify *v = o->verifies; v; v = v->next) {
		if (v->sent)
			continue;
		struct xml_node *n = dialback_verify_request(o->local, o->remote, v->id, v->key);
		if (n)
			send_node(o, n);
		xml_free(&n);
		v->sent = true;
		log_info(o->ctx, "db:verify sent for stream %s", v->id);
	}
}

static void start_dialback(struct s2s_out *o)
{
	char key[DIALBACK_KEY_HEX_LEN + 1];
	const char *secret = o->srv->live->gw.dialback_secret;
	if (!o->stream_id || !secret ||
	    dialback_key(secret, o->remote, o->local, o->stream_id, key) != FG_OK) {
		fail(o, "%s sent no stream id, so no dialback key can be made", o->remote);
		return;
	}
	struct xml_node *n = dialback_result_request(o->local, o->remote, key);
	if (!n) {
		fail(o, "out of memory");
		return;
	}
	send_node(o, n);
	xml_free(&n);
	o->method = o->secure ? "TLS Dialback" : "TCP Dialback";
	step(o, "dialback key sent to %s (%s)", o->remote, o->method);
	enter(o, OUT_DIALBACK);
}

static void ready(struct s2s_out *o)
{
	enter(o, OUT_READY);
	/* The TLSA records did their work in the handshake (OpenSSL keeps
	 * its own copy); up to 64 KiB need not live as long as the stream. */
	o->dane_host = NULL;
	free(o->dane_res);
	o->dane_res = NULL;
	evtimer_del(o->deadline);
	arm_idle(o);
	step(o, "stream ready: authenticated with %s", o->method);
	/* Once authenticated the peer may send full-size stanzas. */
	const struct fg_conf *cf = o->srv->conf;
	struct xs_limits lim = {.stanza_bytes = cf->s2s_stanza_size,
				.depth = cf->element_depth,
				.attributes = cf->element_attributes};
	xmlstream_set_limits(o->xs, &lim);
	send_verifies(o);
	if (o->ops)
		o->ops->ready(o->owner); /* the route writes its queue */
}

enum s2s_out_next s2s_out_choose(unsigned methods, bool secure, bool tls_offered, bool cert_ok,
				 bool external)
{
	if (!secure) {
		if ((methods & (AUTH_SASL_TLS | AUTH_TLS_DIALBACK)) && tls_offered)
			return S2S_NEXT_STARTTLS;
		return (methods & AUTH_TCP_DIALBACK) ? S2S_NEXT_DIALBACK : S2S_NEXT_FAIL_NO_TLS;
	}
	if ((methods & AUTH_SASL_TLS) && cert_ok && external)
		return S2S_NEXT_SASL;
	if (methods & AUTH_TLS_DIALBACK)
		return S2S_NEXT_DIALBACK;
	return cert_ok ? S2S_NEXT_FAIL_NO_EXTERNAL : S2S_NEXT_FAIL_CERT;
}

/* SPEC §3: the most preferred allowed method the peer offers, never a
 * weaker one; when none can succeed, say why in words an admin can use. */
static void on_features(struct s2s_out *o, const struct xml_node *f)
{
	bool tls_offered = xml_child(f, XML_NS_TLS, "starttls") != NULL;
	bool db_offered = xml_child(f, XML_NS_DIALBACK_FEATURE, "dialback") != NULL;
	const struct xml_node *mechs = xml_child(f, XML_NS_SASL, "mechanisms");
	bool external = false;
	for (const struct xml_node *m = mechs ? xml_first_element(mechs) : NULL; m;
	     m = xml_next_element(m))
		if (xml_is(m, XML_NS_SASL, "mechanism") && strcmp(xml_text(m), "EXTERNAL") == 0)
			external = true;

	if (o->authed) {
		ready(o);
		return;
	}
	SSL *ssl = o->secure ? conn_ssl(o->conn) : NULL;
	struct tls_verdict v;
	bool cert_ok = ssl && s2s_cert_verify(o->srv, ssl, o->remote, &v) == FG_OK;
	enum s2s_out_next next =
		s2s_out_choose(o->methods, o->secure, tls_offered, cert_ok, external);
	char pinned[600];
	if (next != S2S_NEXT_STARTTLS &&
	    s2s_cert_refused(o->srv, ssl, o->remote, pinned, sizeof(pinned))) {
		o->fail_kind = "tls";
		fail(o, "%s", pinned);
		return;
	}
	if (next == S2S_NEXT_STARTTLS) {
		send_raw(o, "<starttls xmlns='" XML_NS_TLS "'/>");
		enter(o, OUT_STARTTLS);
		return;
	}
	if (next == S2S_NEXT_FAIL_NO_TLS) {
		fail(o, "%s offers no STARTTLS but its partner settings require TLS", o->remote);
		return;
	}
	if ((next == S2S_NEXT_SASL || next == S2S_NEXT_DIALBACK) && o->bidi_on && !o->bidi &&
	    xml_child(f, XML_NS_BIDI_FEATURE, "bidi")) {
		/* XEP-0288 §2.2: before authenticating; no answer comes. */
		send_raw(o, "<bidi xmlns='" XML_NS_BIDI "'/>");
		o->bidi = true;
		step(o, "asked %s for a bidirectional stream (XEP-0288)", o->remote);
	}
	send_verifies(o);
	if (next == S2S_NEXT_SASL) {
		/* XEP-0178: "=" is an empty authorization identity: the
		 * one our certificate shows. */
		send_raw(o, "<auth xmlns='" XML_NS_SASL "' mechanism='EXTERNAL'>=</auth>");
		enter(o, OUT_SASL);
		return;
	}
	if (next == S2S_NEXT_DIALBACK) {
		(void)db_offered; /* servers before XEP-0220 §2.4 do not say */
		start_dialback(o);
		return;
	}
	if (!cert_ok && ssl) {
		/* The peer's admin learns why from their own log. */
		char why[1400];
		stream_cert_problem(&v, o->remote, true, why, sizeof(why));
		struct xml_buf b = {0};
		xml_buf_puts(&b, "<stream:error><policy-violation xmlns='" XML_NS_STREAMS_ERR
				 "'/><text xmlns='" XML_NS_STREAMS_ERR "' xml:lang='en'>");
		xml_escape(&b, why, strlen(why), false);
		xml_buf_puts(&b, "</text></stream:error>");
		if (!b.oom)
			conn_write(o->conn, b.data, b.len);
		xml_buf_free(&b);
	}
	if (next == S2S_NEXT_FAIL_CERT)
		fail(o,
		     "the certificate of %s cannot be trusted for SASL EXTERNAL and its partner "
		     "settings allow no other method: %s",
		     o->remote, ssl ? v.text : "no TLS");
	else
		fail(o,
		     "%s offers no SASL EXTERNAL on this server-to-server stream (jabberd2 never "
		     "does; others leave it out when they do not trust our certificate for %s) "
		     "and its partner settings allow no other method; to federate with it, allow "
		     "TLS Dialback: fedgate partner set %s --sasl optional --dialback true",
		     o->remote, o->local, o->remote);
}

static bool is_local(void *arg, const char *domain)
{
	return conf_is_local_domain(arg, domain);
}

/* A stream error of ours, then the failure (reason for the route). */
static void send_stream_error(struct s2s_out *o, const char *condition, const char *text)
{
	struct xml_buf b = {0};
	xml_buf_puts(&b, "<stream:error><");
	xml_buf_puts(&b, condition);
	xml_buf_puts(&b, " xmlns='" XML_NS_STREAMS_ERR "'/><text xmlns='" XML_NS_STREAMS_ERR
			 "' xml:lang='en'>");
	xml_escape(&b, text, strlen(text), false);
	xml_buf_puts(&b, "</text></stream:error>");
	if (!b.oom)
		conn_write(o->conn, b.data, b.len);
	xml_buf_free(&b);
}

/* XEP-0288: a stanza of the peer's on our bidirectional stream takes the
 * inbound path (s2s_in.c, through the program's hook): the same from and
 * to checks, partner-type rules and counts. */
static void peer_stanza(struct s2s_out *o, struct xml_node *st)
{
	const char *condition = "internal-server-error", *text = "no path for partner stanzas";
	struct xmpp_server *srv = o->srv;
	assert(!srv->feeding && !srv->feeding_out);
	/* A full recipient holds this stream as it would an inbound one. */
	srv->feeding_out = o;
	bool ok = srv->partner_stanza &&
		  srv->partner_stanza(srv, o->local, o->remote, st, &condition, &text);
	srv->feeding_out = NULL;
	if (ok) {
		conn_count_stanza(o->conn, true);
		arm_idle(o);
		return;
	}
	if (!o->srv->partner_stanza)
		xml_free(&st);
	send_stream_error(o, condition, text);
	fail(o, "%s sent a stanza this stream may not carry: <%s/> %s", o->remote, condition, text);
}

/* A db:verify answer for one of our requests, or a dialback verdict. */
static bool on_dialback(struct s2s_out *o, const struct xml_node *el)
{
	struct db_msg m;
	if (dialback_parse(el, &m) != DB_PERR_OK)
		return false;
	bool handled = false;
	if (m.elem == DB_VERIFY && m.type != DB_REQUEST) {
		struct out_verify **pp = &o->verifies;
		while (*pp && !(m.id && strcmp((*pp)->id, m.id) == 0 && (*pp)->sent))
			pp = &(*pp)->next;
		if (*pp && strcmp(m.from, o->remote) == 0 && strcmp(m.to, o->local) == 0) {
			struct out_verify *v = *pp;
			*pp = v->next;
			log_info(o->ctx, "db:verify for stream %s: %s", v->id,
				 m.type == DB_VALID	? "valid"
				 : m.type == DB_INVALID ? "invalid"
							: dialback_cond_name(m.cond));
			if (v->cb)
				v->cb(v->ud, m.type,
				      m.type == DB_ERROR ? DB_COND_REMOTE_SERVER_NOT_FOUND
							 : DB_COND_NONE,
				      m.type == DB_ERROR ? dialback_cond_name(m.cond) : "");
			free(v->id);
			free(v->key);
			free(v);
		} else {
			log_info(o->ctx, "unsolicited db:verify answer dropped");
		}
		handled = true;
	} else if (m.elem == DB_VERIFY && o->bidi && o->state == OUT_READY &&
		   strcmp(m.from, o->remote) == 0 && strcmp(m.to, o->local) == 0) {
		/* XEP-0288 §4: on a bidirectional stream the peer, as a
		 * receiving server, may ask us as the authoritative one. */
		enum db_type verdict;
		struct xml_node *answer =
			dialback_authoritative(o->srv->live->gw.dialback_secret, &m, is_local,
					       (void *)o->srv->conf, &verdict);
		log_info(o->ctx, "db:verify from %s for stream %s: %s", m.from, m.id,
			 verdict == DB_VALID ? "valid" : "invalid");
		if (answer)
			send_node(o, answer);
		xml_free(&answer);
		handled = true;
	} else if (m.elem == DB_RESULT && o->state == OUT_DIALBACK &&
		   strcmp(m.from, o->remote) == 0 && strcmp(m.to, o->local) == 0) {
		handled = true;
		if (m.type == DB_VALID) {
			o->authed = true;
			step(o, "%s accepted our dialback key", o->remote);
			dialback_msg_clear(&m);
			ready(o);
			return true;
		}
		fail(o, "%s refused our dialback key (%s)", o->remote,
		     m.type == DB_INVALID ? "invalid" : dialback_cond_name(m.cond));
	}
	dialback_msg_clear(&m);
	return handled;
}

static void on_element(struct s2s_out *o, struct xml_node *el)
{
	if (xml_is(el, XML_NS_STREAM, "error")) {
		char said[560];
		stream_peer_said(el, said, sizeof(said));
		o->fail_kind = "peer-error";
		fail(o, "%s closed the stream; %s", o->remote, said);
		return;
	}
	if (xml_is(el, XML_NS_DIALBACK, NULL) && on_dialback(o, el))
		return;
	switch (o->state) {
	case OUT_WAIT_FEATURES:
		if (xml_is(el, XML_NS_STREAM, "features")) {
			on_features(o, el);
			return;
		}
		break;
	case OUT_STARTTLS:
		if (xml_is(el, XML_NS_TLS, "proceed")) {
			/* Offers the session of our last stream of this pair,
			 * if any; the certificate checks run all the same. A
			 * stream verified with DANE does a full handshake
			 * instead: OpenSSL checks TLSA records against a chain. */
			if (o->dane_host)
				dane_client_arm(o->srv->tls_client, o->dane_host, o->remote);
			else
				tls_client_resume_for(o->srv->tls_client, o->local, o->remote);
			int rc = conn_start_tls_client(o->conn, o->srv->tls_client, o->remote);
			tls_client_resume_for(o->srv->tls_client, NULL, NULL);
			dane_client_arm(o->srv->tls_client, NULL, NULL);
			if (rc != FG_OK) {
				fail(o, "cannot start TLS");
				return;
			}
			enter(o, OUT_TLS);
			return;
		}
		if (xml_is(el, XML_NS_TLS, "failure")) {
			fail(o, "%s refused STARTTLS", o->remote);
			return;
		}
		break;
	case OUT_SASL:
		if (xml_is(el, XML_NS_SASL, "success")) {
			o->authed = true;
			o->method = "SASL over TLS";
			o->restart = true; /* RFC 6120 §6.4.6: a new stream */
			step(o, "SASL EXTERNAL accepted by %s", o->remote);
			return;
		}
		if (xml_is(el, XML_NS_SASL, "failure")) {
			const struct xml_node *c = xml_first_element(el);
			fail(o, "%s refused SASL EXTERNAL: <%s/>", o->remote, c ? c->name : "?");
			return;
		}
		break;
	default: break;
	}
	fail(o, "unexpected <%s/> from %s in state %s", el->name, o->remote,
	     out_state_names[o->state]);
}

static int on_event(void *ud, struct xs_event *ev)
{
	struct s2s_out *o = ud;
	if (o->state == OUT_FAILED) {
		if (ev->type == XS_EV_STANZA)
			xml_free(&ev->node);
		return XS_STOP;
	}
	switch (ev->type) {
	case XS_EV_OPEN:
		if (strcmp(ev->content_ns, XML_NS_SERVER) != 0) {
			fail(o, "%s answered with the content namespace '%s'", o->remote,
			     ev->content_ns);
			break;
		}
		free(o->stream_id);
		o->stream_id = xml_attr(ev->node, "id") ? strdup(xml_attr(ev->node, "id")) : NULL;
		enter(o, OUT_WAIT_FEATURES);
		break;
	case XS_EV_STANZA:
		if (o->state == OUT_READY && o->bidi && !xml_is(ev->node, XML_NS_STREAM, NULL) &&
		    !xml_is(ev->node, XML_NS_DIALBACK, NULL)) {
			struct xml_node *st = ev->node;
			ev->node = NULL;
			peer_stanza(o, st);
			break;
		}
		on_element(o, ev->node);
		xml_free(&ev->node);
		/* After <proceed/> and <success/> the next bytes belong to a
		 * new layer or a new stream. */
		if (o->state == OUT_TLS || o->restart)
			return XS_STOP;
		break;
	case XS_EV_CLOSE: fail(o, "%s closed the stream", o->remote); break;
	case XS_EV_ERROR:
		fail(o, "%s sent bad XML: <%s/> %s", o->remote, ev->condition, ev->text);
		break;
	}
	return o->state == OUT_FAILED ? XS_STOP : XS_CONTINUE;
}

static size_t on_data(void *ud, const char *data, size_t len)
{
	struct s2s_out *o = ud;
	size_t off = 0;
	o->heard = true;
	while (off < len && o->state != OUT_FAILED && o->state != OUT_TLS) {
		size_t used = 0;
		int rc = xmlstream_feed(o->xs, data + off, len - off, &used);
		off += used;
		if (rc != FG_AGAIN)
			break;
		if (o->restart) {
			o->restart = false;
			xmlstream_reset(o->xs);
			send_header(o);
			continue;
		}
		break;
	}
	return len;
}

/* The certificate against the target's DNSSEC-secure TLSA records: a
 * secure set that does not match refuses the target whatever the mode
 * (RFC 7672 §2.2); the reason names the key to publish. */
static bool dane_check(struct s2s_out *o, SSL *ssl, const struct tls_verdict *v)
{
	const struct dane_host *h = o->dane_host;
	int usable = dane_ssl_usable(ssl);
	char spki[2 * 32 + 1], recs[600];

	if (v->dane_ok) {
		step(o, "DANE: the certificate matches a TLSA record at %s", h->qname);
		return true;
	}
	if (usable == 0 && o->dane != DANE_REQUIRED) {
		step(o, "DANE: no TLSA record at %s is usable; going on without DANE", h->qname);
		return true;
	}
	dane_spki_sha256_hex(SSL_get0_peer_certificate(ssl), spki, sizeof(spki));
	dane_host_text(h, recs, sizeof(recs));
	/* Cut at the buffer's end if need be: the key comes first. */
	o->last_connect_error[0] = '\0';
	if (usable == 0)
		fg_appendf(o->last_connect_error, sizeof(o->last_connect_error),
			   "DANE (dane = required): no TLSA record at %s is usable (%s); the "
			   "certificate of %s has SPKI SHA-256 %s (TLSA 3 1 1 %s)",
			   h->qname, recs, o->remote, spki[0] ? spki : "?", spki[0] ? spki : "?");
	else
		fg_appendf(o->last_connect_error, sizeof(o->last_connect_error),
			   "DANE mismatch (dane = %s): the certificate of %s at %s:%u has SPKI "
			   "SHA-256 %s, which no TLSA record at %s matches (%s)",
			   policy_dane_name(o->dane), o->remote, h->name, h->port,
			   spki[0] ? spki : "?", h->qname, recs);
	/* RFC 7672 §2.2.2: this host failed; the next target may pass.
	 * on_closed goes on with connect_next. */
	step(o, "%s", o->last_connect_error);
	o->dane_next = true;
	conn_close(o->conn, "DANE: the certificate matches no TLSA record");
	return false;
}

static void on_tls(void *ud)
{
	struct s2s_out *o = ud;
	o->secure = true;
	SSL *ssl = conn_ssl(o->conn);
	char desc[128];
	tls_describe(ssl, desc, sizeof(desc));
	struct tls_verdict v;
	s2s_cert_verify(o->srv, ssl, o->remote, &v);
	step(o, "TLS: %s; certificate of %s: %s", desc, o->remote, v.text);
	if (o->dane_host && !dane_check(o, ssl, &v))
		return;
	xmlstream_reset(o->xs);
	send_header(o);
}

/* In READY the connection timer is the idle timer: partners with
 * keepalive get a whitespace ping every keepalive_interval (SPEC §3);
 * the others are closed after stream_inactivity_timeout without traffic. */
static bool keepalive_on(const struct s2s_out *o)
{
	const struct partner *p = policy_lookup(o->srv->live->partners, o->remote);
	return p && p->keepalive;
}

static void arm_idle(struct s2s_out *o)
{
	const struct gateway_settings *gw = &o->srv->live->gw;
	conn_set_timer(o->conn,
		       keepalive_on(o) ? gw->keepalive_interval : gw->stream_inactivity_timeout);
}

static void on_timer(void *ud)
{
	struct s2s_out *o = ud;
	if (o->state == OUT_READY) {
		if (keepalive_on(o)) {
			conn_write(o->conn, " ", 1);
			log_debug(o->ctx, "whitespace keepalive sent");
			arm_idle(o);
			return;
		}
		log_info(o->ctx, "closing: idle for %u seconds (stream_inactivity_timeout)",
			 o->srv->live->gw.stream_inactivity_timeout);
		conn_write(o->conn, "</stream:stream>", 16);
		conn_close(o->conn, "idle");
		return;
	}
	/* Connecting, TLS, the stream header, authentication: each step's
	 * timer is a timeout for the senders too (RFC 6120 §8.3.3.16). */
	o->fail_cond = DB_COND_REMOTE_SERVER_TIMEOUT;
	o->fail_kind = "timeout";
	fail(o, "%s did not answer in time (state %s)", o->remote, out_state_names[o->state]);
}

static void connect_next(struct s2s_out *o);

static void on_connected(void *ud)
{
	struct s2s_out *o = ud;
	const struct dns_target *t = &o->targets[o->cur];
	step(o, "connected to %s [%s]:%u%s", t->host, t->addr_text, t->port,
	     t->direct_tls ? " (Direct TLS)" : "");
	const struct fg_conf *cf = o->srv->conf;
	struct xs_limits lim = {.stanza_bytes = cf->preauth_stanza_size,
				.depth = cf->element_depth,
				.attributes = cf->element_attributes};
	o->xs = xmlstream_new(&lim, on_event, o);
	if (!o->xs) {
		fail(o, "out of memory");
		return;
	}
	conn_set_timer(o->conn, cf->timeout_authentication);
	if (t->direct_tls) {
		/* XEP-0368: TLS at once, SNI = the partner's domain, ALPN
		 * xmpp-server; the certificate is judged as after STARTTLS
		 * (on_tls, on_features), and no STARTTLS follows. */
		if (o->dane_host) /* as after STARTTLS (on_element) */
			dane_client_arm(o->srv->tls_client, o->dane_host, o->remote);
		else
			tls_client_resume_for(o->srv->tls_client, o->local, o->remote);
		int rc = conn_connect_tls(o->conn, o->srv->tls_client, o->remote, "xmpp-server");
		tls_client_resume_for(o->srv->tls_client, NULL, NULL);
		dane_client_arm(o->srv->tls_client, NULL, NULL);
		if (rc != FG_OK) {
			fail(o, "cannot start TLS");
			return;
		}
		step(o, "Direct TLS (XEP-0368) with %s", o->remote);
		enter(o, OUT_TLS);
		return;
	}
	send_header(o);
}

static void on_closed(void *ud, const char *reason)
{
	struct s2s_out *o = ud;
	o->conn = NULL;
	xmlstream_free(&o->xs);
	if (o->state == OUT_TLS && o->dane_next) {
		o->dane_next = false;
		o->secure = false;	/* on_tls had set it: a new connection */
		o->dane_refused = true; /* the reason, if no target is left */
		connect_next(o);
		return;
	}
	if (o->state == OUT_TLS && tls_client_forget(o->srv->tls_client, o->local, o->remote)) {
		/* We offered the session of our last stream and the
		 * handshake failed: maybe over the resumption itself, so the
		 * same target once more, with a full handshake. */
		step(o, "TLS failed with a resumed session (%s); again with a full handshake",
		     reason);
		o->next_target = o->cur;
		connect_next(o);
		return;
	}
	if (o->state == OUT_TLS && o->targets[o->cur].direct_tls) {
		/* A Direct TLS handshake failing is part of reaching the
		 * server (a port that does not speak it, an ALPN refusal):
		 * the next target may do, as after a refused connect. */
		snprintf(o->last_connect_error, sizeof(o->last_connect_error), "%s", reason);
		step(o, "%s", reason);
		connect_next(o);
		return;
	}
	if (o->state != OUT_FAILED && o->state != OUT_READY) {
		fail(o, "%s", reason);
		return;
	}
	if (o->state == OUT_READY) {
		log_info(o->ctx, "stream closed: %s", reason);
		if (o->ops)
			o->ops->closed(o->owner, reason);
	}
	out_free(o);
}

static void on_drained(void *ud)
{
	struct s2s_out *o = ud;
	if (o->state == OUT_READY && o->ops && o->ops->drained)
		o->ops->drained(o->owner);
}

static const struct conn_ops out_ops = {
	.on_data = on_data,
	.on_tls = on_tls,
	.on_timer = on_timer,
	.on_connected = on_connected,
	.on_closed = on_closed,
	.on_drained = on_drained,
};

/* ---- connecting: the targets raced (RFC 8305, net/happy.c) ---- */

enum { TD_UNKNOWN, TD_ALLOWED, TD_REFUSED };

static const struct dns_target *race_target(const struct s2s_out *o, size_t i)
{
	assert(i < o->nrace);
	return &o->targets[o->race_idx[i]];
}

static void race_addr(void *ud, size_t i, const struct sockaddr **sa, socklen_t *salen)
{
	const struct dns_target *t = race_target(ud, i);
	*sa = (const struct sockaddr *)&t->addr;
	*salen = t->addrlen;
}

static void race_started(void *ud, size_t i, struct conn *c)
{
	struct s2s_out *o = ud;
	const struct dns_target *t = race_target(o, i);
	char label[300];
	snprintf(label, sizeof(label), "%s->%s", o->local, o->remote);
	conn_set_label(c, label);
	if (i > 0)
		step(o, "also trying %s [%s]:%u (Happy Eyeballs: no answer yet from the %s)",
		     t->host, t->addr_text, t->port, i == 1 ? "first" : "others");
}

static void race_failed(void *ud, size_t i, const char *why)
{
	struct s2s_out *o = ud;
	const struct dns_target *t = race_target(o, i);
	snprintf(o->last_connect_error, sizeof(o->last_connect_error), "%s", why);
	step(o, "[%s]:%u: %s", t->addr_text, t->port, why);
}

static void race_won(void *ud, size_t i, struct conn *c)
{
	struct s2s_out *o = ud;
	o->race = NULL;
	o->conn = c;
	o->cur = o->race_idx[i];
	o->dane_host = o->tdane[o->cur].host;
	/* A later fallback (a Direct TLS handshake that fails, a
	 * certificate DANE refuses) goes on after the winner; the losers
	 * are candidates again. */
	o->next_target = o->cur + 1;
	on_connected(o);
}

static void race_lost(void *ud, const char *why)
{
	struct s2s_out *o = ud;
	o->race = NULL;
	o->next_target = o->ntargets;
	fail(o, "cannot connect to %s: %s", o->remote, why);
}

static const struct happy_ops race_ops = {
	.addr = race_addr,
	.started = race_started,
	.failed = race_failed,
	.won = race_won,
	.lost = race_lost,
};

/* Whether the partner's `dane` lets us try target j, and with which
 * records; decided once per target, so a second race says nothing twice. */
static bool dane_allows(struct s2s_out *o, size_t j)
{
	const struct dns_target *t = &o->targets[j];
	struct target_dane *td = &o->tdane[j];
	if (td->st != TD_UNKNOWN)
		return td->st == TD_ALLOWED;
	char why[sizeof(o->last_connect_error)];
	enum dane_use use =
		dane_decide(o->dane, o->dane_res, t->host, t->port, &td->host, why, sizeof(why));
	if (use != DANE_USE_REFUSE) {
		if (use == DANE_USE_NONE && why[0])
			step(o, "%s; going on without DANE (dane = %s)", why,
			     policy_dane_name(o->dane));
		td->st = TD_ALLOWED;
		return true;
	}
	step(o, "%s [%s]:%u not tried: %s", t->host, t->addr_text, t->port, why);
	snprintf(o->last_connect_error, sizeof(o->last_connect_error), "%s", why);
	td->st = TD_REFUSED;
	td->host = NULL;
	return false;
}

/* Races every target from next_target on that DANE allows. */
static void connect_next(struct s2s_out *o)
{
	o->nrace = 0;
	o->dane_host = NULL;
	for (size_t j = o->next_target; j < o->ntargets; j++) {
		if (dane_allows(o, j))
			o->race_idx[o->nrace++] = j;
		else
			o->dane_refused = true;
	}
	o->next_target = o->ntargets;
	if (o->nrace == 0) {
		if (o->dane_refused) {
			o->fail_kind = "tls";
			fail(o, "refused by the partner setting dane = %s: %s",
			     policy_dane_name(o->dane), o->last_connect_error);
			return;
		}
		fail(o, "cannot connect to %s: %s", o->remote,
		     o->last_connect_error[0] ? o->last_connect_error : "no address");
		return;
	}
	o->dane_refused = false;
	enter(o, OUT_CONNECTING);
	struct conn_limits cl = {.output_queue = o->srv->conf->output_queue,
				 .input_buffer = 64 * 1024};
	struct happy_params hp = {.ctx_prefix = "s2s-out",
				  .limits = &cl,
				  .connect_timeout = o->srv->conf->timeout_tls_handshake,
				  .owner_ops = &out_ops,
				  .owner_ud = o};
	o->race = happy_start(o->srv->base, o->nrace, &hp, &race_ops, o);
	if (!o->race)
		fail(o, "out of memory");
}

static void on_dane(void *ud, const struct dane_result *r)
{
	struct s2s_out *o = ud;
	o->dane_res = malloc(sizeof(*o->dane_res));
	if (!o->dane_res) {
		fail(o, "out of memory");
		return;
	}
	*o->dane_res = *r;
	step(o, "DANE (dane = %s): %s: %s", policy_dane_name(o->dane), r->srv_why,
	     dane_st_word(r->srv));
	for (size_t i = 0; i < r->nhosts; i++)
		if (r->hosts[i].direct) {
			step(o, "DANE: %s: %s", r->srvs_why, dane_st_word(r->srvs));
			break;
		}
	for (size_t i = 0; i < r->nhosts; i++) {
		char text[700];
		dane_host_text(&r->hosts[i], text, sizeof(text));
		step(o, "DANE: TLSA %s: %s", r->hosts[i].qname, text);
	}
	connect_next(o);
}

static void on_dns(void *ud, const struct dns_result *res, const char *err)
{
	struct s2s_out *o = ud;
	if (!res) {
		fail(o, "%s", err);
		return;
	}
	o->targets = calloc(res->n, sizeof(*o->targets));
	o->race_idx = calloc(res->n, sizeof(*o->race_idx));
	o->tdane = calloc(res->n, sizeof(*o->tdane));
	if (!o->targets || !o->race_idx || !o->tdane) {
		fail(o, "out of memory");
		return;
	}
	/* Without a TLS method (tls = not-supported) a Direct TLS target
	 * cannot serve: it has no plaintext. */
	bool tls_ok = o->methods & (AUTH_SASL_TLS | AUTH_TLS_DIALBACK);
	size_t skipped = 0;
	for (size_t i = 0; i < res->n; i++) {
		const struct dns_target *t = &res->targets[i];
		if (t->direct_tls && !tls_ok) {
			skipped++;
			continue;
		}
		o->targets[o->ntargets++] = *t;
		step(o, "DNS: %s [%s]:%u%s", t->host, t->addr_text, t->port,
		     t->direct_tls ? " (Direct TLS, _xmpps-server)" : "");
	}
	if (skipped)
		step(o, "DNS: %zu Direct TLS target(s) left out: the partner settings allow no TLS",
		     skipped);
	if (o->ntargets == 0) {
		fail(o,
		     "%s publishes only Direct TLS (_xmpps-server) targets, and its partner "
		     "settings allow no TLS (tls = not-supported)",
		     o->remote);
		return;
	}
	if (o->dane != DANE_OFF) {
		/* The TLSA lookups for the targets kept. */
		struct dns_result kept = *res;
		kept.targets = o->targets;
		kept.n = o->ntargets;
		if (dane_lookup_start(o->srv->dns, o->remote, &kept, on_dane, o, &o->dl) != FG_OK)
			fail(o, "out of memory");
		return;
	}
	connect_next(o);
}

static void on_deadline(evutil_socket_t fd, short what, void *arg)
{
	struct s2s_out *o = arg;
	(void)fd;
	(void)what;
	o->fail_cond = DB_COND_REMOTE_SERVER_TIMEOUT;
	o->fail_kind = "timeout";
	fail(o, "no authenticated stream to %s within %u seconds (stream_establishment_timeout)",
	     o->remote, o->srv->live->gw.stream_establishment_timeout);
}

/* Back-pressure for the peer's stanzas on a bidirectional stream (the
 * hooks of xmpp_hold_feeder and xmpp_release_held). */
static void hold_out(struct s2s_out *o, const void *by)
{
	if (!o->conn || o->state != OUT_READY || o->held_by == by)
		return;
	if (!o->held_by)
		log_debug(o->ctx, "held: a recipient it feeds is full");
	o->held_by = by;
	conn_hold_input(o->conn, true);
}

static void release_out(struct xmpp_server *srv, const void *by)
{
	for (struct s2s_out *o = srv->outs; o; o = o->next) {
		if (!o->held_by || o->held_by != by)
			continue;
		o->held_by = NULL;
		log_debug(o->ctx, "released: the recipient it fed has room");
		if (o->conn)
			conn_hold_input(o->conn, false);
	}
}

struct s2s_out *s2s_out_new(struct xmpp_server *srv, const char *local, const char *remote,
			    const struct s2s_out_ops *ops, void *owner)
{
	assert(ops && ops->ready && ops->failed && ops->closed);
	srv->hold_out = hold_out;
	srv->release_out = release_out;
	struct s2s_out *o = calloc(1, sizeof(*o));
	if (!o)
		return NULL;
	o->srv = srv;
	o->next = srv->outs;
	if (srv->outs)
		srv->outs->prev = o;
	srv->outs = o;
	srv->nouts++;
	o->local = strdup(local);
	o->remote = strdup(remote);
	o->deadline = evtimer_new(srv->base, on_deadline, o);
	snprintf(o->ctx, sizeof(o->ctx), "s2s-out %s->%s", local, remote);
	o->started = time(NULL);
	o->fail_cond = DB_COND_REMOTE_SERVER_NOT_FOUND;
	if (!o->local || !o->remote || !o->deadline) {
		out_free(o);
		return NULL;
	}
	o->ops = ops;
	o->owner = owner;
	enter(o, OUT_RESOLVING);
	return o;
}

void s2s_out_begin(struct s2s_out *o, const struct partner *p)
{
	assert(o->state == OUT_RESOLVING && !o->attempted);
	if (!p) {
		/* The router checks first; a partner removed meanwhile lands here. */
		fail(o, "%s is not an allowed federation partner", o->remote);
		return;
	}
	o->methods = policy_allowed_methods(p);
	o->bidi_on = p->bidi;
	o->dane = p->dane;
	char names[128];
	policy_methods_string(o->methods, names, sizeof(names));
	step(o, "partner %s allows %s", p->domain, names);
	struct timeval tv = {(time_t)o->srv->live->gw.stream_establishment_timeout, 0};
	evtimer_add(o->deadline, &tv);
	o->attempted = true;
	if (dns_resolve_server(o->srv->dns, o->remote, p->proxy_fqdn, on_dns, o, &o->q) != FG_OK)
		fail(o, "cannot start the DNS lookup for %s", o->remote);
}

void s2s_out_fail(struct s2s_out *o, const char *reason)
{
	fail(o, "%s", reason);
}

bool s2s_out_write(struct s2s_out *o, const struct xml_node *stanza)
{
	assert(o->state == OUT_READY);
	struct xml_ctx ctx = {
		.default_ns = XML_NS_SERVER, .stream_prefix = true, .db_prefix = true};
	struct xml_buf b = {0};
	xml_serialize(stanza, &ctx, &b);
	bool ok = !b.oom && conn_write(o->conn, b.data, b.len) == FG_OK;
	if (ok) {
		conn_count_stanza(o->conn, false);
		arm_idle(o); /* traffic: the idle clock starts again */
	}
	xml_buf_free(&b);
	return ok;
}

size_t s2s_out_pending(const struct s2s_out *o)
{
	return o->conn ? conn_output_pending(o->conn) : 0;
}

unsigned long long s2s_out_flushed(const struct s2s_out *o)
{
	return o->conn ? conn_flushed(o->conn) : 0;
}

bool s2s_out_has_room(const struct s2s_out *o)
{
	return o->state == OUT_READY && o->conn &&
	       conn_output_pending(o->conn) < o->srv->conf->output_queue / 2;
}

const char *s2s_out_method(const struct s2s_out *o)
{
	return o->state == OUT_READY ? o->method : NULL;
}

bool s2s_out_is_ready(const struct s2s_out *o)
{
	return o->state == OUT_READY;
}

const char *s2s_out_report(const struct s2s_out *o)
{
	return o->report.data && !o->report.oom ? o->report.data : "";
}

int s2s_out_verify(struct s2s_out *o, const char *id, const char *key, s2s_out_verified cb,
		   void *ud)
{
	struct out_verify *v = calloc(1, sizeof(*v));
	if (v) {
		v->id = strdup(id);
		v->key = strdup(key);
	}
	if (!v || !v->id || !v->key) {
		if (v) {
			free(v->id);
			free(v->key);
		}
		free(v);
		return FG_NOMEM;
	}
	v->cb = cb;
	v->ud = ud;
	v->next = o->verifies;
	o->verifies = v;
	if (o->can_send)
		send_verifies(o);
	return FG_OK;
}

void s2s_out_status(const struct s2s_out *o, void *json_row)
{
	json_t *r = json_row;
	if (o->conn) {
		conn_status(o->conn, r);
	} else {
		json_object_set_new(r, "peer", json_string(""));
		json_object_set_new(r, "tls", json_string("plaintext"));
		json_object_set_new(r, "tls_mode", json_string("none"));
	}
	const char *cert = "none";
	struct tls_verdict v;
	SSL *ssl = o->conn ? conn_ssl(o->conn) : NULL;
	v.eku[0] = v.spki[0] = '\0';
	if (ssl) {
		s2s_cert_verify(o->srv, ssl, o->remote, &v);
		cert = v.text;
	}
	json_object_set_new(r, "direction", json_string("out"));
	json_object_set_new(r, "local", json_string(o->local));
	json_object_set_new(r, "remote", json_string(o->remote));
	json_object_set_new(r, "state", json_string(out_state_names[o->state]));
	json_object_set_new(r, "method", json_string(o->method ? o->method : "none"));
	json_object_set_new(r, "certificate", json_string(cert));
	json_object_set_new(r, "certificate_eku", json_string(v.eku));
	json_object_set_new(r, "certificate_key", json_string(v.spki));
	json_object_set_new(r, "dane", json_string(ssl && v.dane_ok ? "verified" : "none"));
	json_object_set_new(r, "age", json_integer((json_int_t)(time(NULL) - o->started)));
	json_object_set_new(r, "last_error", json_string(o->last_error));
	json_object_set_new(r, "bidi", json_boolean(o->bidi));
}

void s2s_out_free_now(struct s2s_out *o)
{
	if (!o)
		return;
	o->ops = NULL;
	conn_free_now(&o->conn);
	out_free(o);
}

void s2s_out_doze(struct xmpp_server *srv)
{
	for (struct s2s_out *o = srv->outs; o; o = o->next) {
		if (o->heard || o->state != OUT_READY) {
			o->heard = false;
			continue;
		}
		if (xmlstream_sleep(o->xs))
			counters_stream_dozed();
	}
}

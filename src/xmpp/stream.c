#include "stream.h"

#include "c2s.h"
#include "conf.h"
#include "conn.h"
#include "dialback.h"
#include "fg.h"
#include "jid.h"
#include "live.h"
#include "log.h"
#include "counters.h"
#include "router.h"
#include "route.h"
#include "tls.h"
#include "s2s_in.h"
#include "xmpp.h"
#include "xml.h"
#include "xmlstream.h"

#include <assert.h>
#include <jansson.h>
#include <openssl/evp.h>
#include <openssl/rand.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

/* Stream flags, kept apart from the state: they accumulate. */
enum {
	SF_SECURE = 1 << 0,	 /* TLS is up */
	SF_HEADER_SENT = 1 << 1, /* our <stream:stream> went out */
	SF_AUTHED = 1 << 2,	 /* s2s: `authed` proved itself (SASL EXTERNAL) */
};

struct stream {
	struct xmpp_server *srv;
	struct conn *conn;
	struct xmlstream *xs;
	enum stream_kind kind;
	enum stream_state state;
	unsigned flags;
	time_t started;
	char id[33];
	char *local;  /* the local domain the peer addressed (to) */
	char *remote; /* the peer's from, prepared; s2s only, may be NULL */
	bool starttls_requested;
	bool restart;	       /* SASL success: the next bytes are a new stream */
	char *authed;	       /* s2s: the domain this stream is authenticated for */
	const char *method;    /* how it authenticated, for status */
	struct db_tracker *db; /* s2s: dialback pairs on this stream */
	unsigned methods;      /* s2s: what the partner's settings allow (enum auth_method) */
	struct c2s *c2s;       /* c2s: SASL, binding, the session */
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
	return s->kind == STREAM_S2S_IN;
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
	return s->kind == STREAM_C2S ? XML_NS_CLIENT : XML_NS_SERVER;
}

/* An authenticated stream that stays silent this long is closed: the
 * keepalive interval for partners with keepalives (they promise to send
 * whitespace), the inactivity timeout otherwise (SPEC §3). */
static unsigned idle_timeout(const struct stream *s)
{
	const struct gateway_settings *gw = &s->srv->live->gw;
	const struct partner *p =
		s->authed ? policy_lookup(s->srv->live->partners, s->authed) : NULL;
	if (p && p->keepalive)
		return 2 * gw->keepalive_interval;
	return gw->stream_inactivity_timeout;
}

/* The one place where a stream changes state, so every transition is
 * logged and the per-state timer is always re-armed. */
static void enter(struct stream *s, enum stream_state st)
{
	const struct fg_conf *cf = s->srv->conf;
	log_debug(conn_ctx(s->conn), "%s -> %s", state_names[s->state], state_names[st]);
	s->state = st;
	if (st == STREAM_CLOSING)
		c2s_end(s->c2s);
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

void stream_authenticated(struct stream *s, const char *who, const char *method)
{
	free(s->authed);
	s->authed = strdup(who);
	if (!s->authed) {
		stream_error(s, "resource-constraint", "out of memory");
		return;
	}
	s->method = method;
	s->flags |= SF_AUTHED;
	s->restart = true;
}

static void send_node(struct stream *s, const struct xml_node *n)
{
	struct xml_buf b = {0};
	struct xml_ctx ctx = {
		.default_ns = content_ns(s),
		.stream_prefix = true,
		.db_prefix = s->kind == STREAM_S2S_IN,
	};
	xml_serialize(n, &ctx, &b);
	if (!b.oom)
		send_raw(s, b.data, b.len);
	xml_buf_free(&b);
}

static void send_header(struct stream *s, const char *to)
{
	struct xml_buf b = {0};
	xml_buf_puts(&b, "<?xml version='1.0'?><stream:stream xmlns='");
	xml_buf_puts(&b, content_ns(s));
	xml_buf_puts(&b, "' xmlns:stream='" XML_NS_STREAM "'");
	if (s->kind == STREAM_S2S_IN)
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

/* XEP-0178: EXTERNAL only for a domain the certificate proves. */
static bool external_ok(struct stream *s)
{
	SSL *ssl = conn_ssl(s->conn);
	struct tls_verdict v;
	if (!ssl || !s->remote || !(s->methods & AUTH_SASL_TLS))
		return false;
	if (tls_peer_verify(ssl, s->remote, &v) != FG_OK) {
		log_info(conn_ctx(s->conn), "no SASL EXTERNAL for %s: %s", s->remote, v.text);
		return false;
	}
	return true;
}

static void send_features(struct stream *s)
{
	struct xml_node *f = xml_new(XML_NS_STREAM, "features");
	int rc = f ? FG_OK : FG_NOMEM;
	if (rc == FG_OK && s->kind == STREAM_S2S_IN && (s->flags & SF_AUTHED)) {
		/* Nothing left to negotiate. */
	} else if (rc == FG_OK && s->kind == STREAM_S2S_IN) {
		rc = s2s_in_features(s->methods, s->flags & SF_SECURE, external_ok(s), f);
	} else if (rc == FG_OK) {
		rc = c2s_features(s->c2s, f, s->flags & SF_SECURE, s->flags & SF_AUTHED);
	}
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
	if (s->kind == STREAM_S2S_IN && from &&
	    jid_domain_prep(from, strlen(from), &peer_from) == JID_OK)
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
	if (s->kind == STREAM_S2S_IN && from && !s->remote) {
		stream_error(s, "invalid-from", "the domain in 'from' is not a valid domain name");
		return;
	}
	if (s->kind == STREAM_S2S_IN) {
		char why[300], names[128];
		if (s2s_in_methods(s->srv->live->partners, s->remote, s->local, &s->methods, why,
				   sizeof(why)) != FG_OK) {
			counters_auth_failure("not-a-partner");
			stream_error(s, "policy-violation", why);
			return;
		}
		const struct gateway_settings *gw = &s->srv->live->gw;
		const struct partner *p =
			s->remote ? policy_lookup(s->srv->live->partners, s->remote) : NULL;
		if (p && xmpp_s2s_in_count(s->srv, p) + routes_stream_count(s->srv, p) >
				 partner_connection_limit(p, gw)) {
			snprintf(why, sizeof(why),
				 "the limit of streams with partner %s (%u) is reached", p->domain,
				 partner_connection_limit(p, gw));
			stream_error(s, "policy-violation", why);
			return;
		}
		policy_methods_string(s->methods, names, sizeof(names));
		log_info(conn_ctx(s->conn), "%s: allowed methods %s",
			 s->remote ? "partner settings" : "no 'from' yet, any partner's", names);
	}
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

static void sasl_failure(struct stream *s, const char *condition, const char *why)
{
	char buf[200];
	log_info(conn_ctx(s->conn), "SASL EXTERNAL refused (%s): %s", condition, why);
	snprintf(buf, sizeof(buf), "<failure xmlns='" XML_NS_SASL "'><%s/></failure>", condition);
	send_raw(s, buf, strlen(buf));
}

/* XEP-0178 §3, receiving side. The authorization identity, when given,
 * must be the domain the certificate was checked for. */
static void sasl_external(struct stream *s, const struct xml_node *el)
{
	const char *mech = xml_attr(el, "mechanism");
	if (!mech || strcmp(mech, "EXTERNAL") != 0) {
		sasl_failure(s, "invalid-mechanism", "only EXTERNAL is offered");
		return;
	}
	if (!external_ok(s)) {
		counters_auth_failure("sasl-certificate");
		sasl_failure(s, "not-authorized", "the certificate does not prove the domain");
		return;
	}
	const char *b64 = xml_text(el);
	if (*b64 && strcmp(b64, "=") != 0) {
		unsigned char authzid[1100];
		size_t n = strlen(b64);
		int len = n < 1400 ? EVP_DecodeBlock(authzid, (const unsigned char *)b64, (int)n)
				   : -1;
		while (len > 0 && n && b64[--n] == '=')
			len--; /* EVP_DecodeBlock counts padding as bytes */
		char *prep = NULL;
		bool same = len > 0 &&
			    jid_domain_prep((const char *)authzid, (size_t)len, &prep) == JID_OK &&
			    strcmp(prep, s->remote) == 0;
		free(prep);
		if (!same) {
			sasl_failure(s, "invalid-authzid",
				     "the authorization identity is not the "
				     "domain of the stream");
			return;
		}
	}
	stream_authenticated(s, s->remote, "SASL over TLS");
	if (s->state == STREAM_CLOSING)
		return;
	send_raw(s, "<success xmlns='" XML_NS_SASL "'/>",
		 strlen("<success xmlns='" XML_NS_SASL "'/>"));
	log_info(conn_ctx(s->conn), "authenticated %s with SASL EXTERNAL (SASL over TLS)",
		 s->authed);
}

/* Finds a live stream by its connection id: a dialback verdict may come
 * back after the stream that asked for it is gone. */
static struct stream *stream_by_id(struct xmpp_server *srv, unsigned id)
{
	for (struct stream *s = srv->streams; s; s = s->next)
		if (s->conn && conn_id(s->conn) == id && s->state != STREAM_CLOSING)
			return s;
	return NULL;
}

struct db_wait {
	struct xmpp_server *srv;
	unsigned conn;
	char local[256], remote[256];
};

static void send_db(struct stream *s, struct xml_node *n)
{
	if (n)
		send_node(s, n);
	xml_free(&n);
}

/* The authoritative server answered (XEP-0220 §2.1.2 step 4 -> §2.1.3). */
static void on_verified(void *ud, int verdict, const char *why)
{
	struct db_wait *w = ud;
	struct stream *s = stream_by_id(w->srv, w->conn);
	if (!s) {
		free(w);
		return;
	}
	if (verdict == DB_VALID) {
		dialback_tracker_settle(s->db, w->local, w->remote, DB_VALID);
		send_db(s, dialback_result_answer(w->local, w->remote, true));
		s->method = (s->flags & SF_SECURE) ? "TLS Dialback" : "TCP Dialback";
		log_info(conn_ctx(s->conn), "authenticated %s with %s", w->remote, s->method);
		if (s->state == STREAM_NEGOTIATING)
			enter(s, STREAM_READY);
	} else if (verdict == DB_INVALID) {
		dialback_tracker_settle(s->db, w->local, w->remote, DB_INVALID);
		send_db(s, dialback_result_answer(w->local, w->remote, false));
		log_info(conn_ctx(s->conn), "dialback key of %s is invalid", w->remote);
		counters_auth_failure("dialback-key-invalid");
		stream_error(s, "not-authorized", "the dialback key was not valid");
	} else {
		dialback_tracker_settle(s->db, w->local, w->remote, DB_ERROR);
		log_info(conn_ctx(s->conn), "dialback for %s could not be verified: %s", w->remote,
			 why);
		send_db(s, dialback_error(DB_RESULT, w->local, w->remote, NULL,
					  DB_COND_REMOTE_SERVER_NOT_FOUND));
	}
	free(w);
}

static bool is_local(void *arg, const char *domain)
{
	return conf_is_local_domain(arg, domain);
}

/* Server Dialback on an inbound stream: the receiving role (db:result
 * requests) and the authoritative role (db:verify requests). SPEC §3: a
 * request the partner's settings do not allow authenticates nothing. */
static void on_dialback(struct stream *s, const struct xml_node *el)
{
	struct db_msg m;
	enum db_perr pe = dialback_parse(el, &m);
	if (pe != DB_PERR_OK) {
		stream_error(s, "invalid-xml", dialback_perr_str(pe));
		return;
	}
	const struct gateway_settings *gw = &s->srv->live->gw;
	const struct partner *p = policy_lookup(s->srv->live->partners, m.from);
	unsigned here = (s->flags & SF_SECURE) ? AUTH_TLS_DIALBACK : AUTH_TCP_DIALBACK;
	if (m.type != DB_REQUEST) {
		log_info(conn_ctx(s->conn), "unsolicited dialback answer from %s dropped", m.from);
	} else if (!conf_is_local_domain(s->srv->conf, m.to)) {
		send_db(s, dialback_error(m.elem, m.to, m.from, m.id, DB_COND_ITEM_NOT_FOUND));
	} else if (!p) {
		char why[300];
		snprintf(why, sizeof(why), "%s is not an allowed federation partner of %s", m.from,
			 m.to);
		counters_auth_failure("not-a-partner");
		stream_error(s, "policy-violation", why);
	} else if (!(policy_allowed_methods(p) & here)) {
		log_info(conn_ctx(s->conn),
			 "dialback from %s refused: its partner settings do not "
			 "allow it on this stream",
			 m.from);
		counters_auth_failure("method-not-allowed");
		send_db(s, dialback_error(m.elem, m.to, m.from, m.id, DB_COND_POLICY_VIOLATION));
	} else if (m.elem == DB_VERIFY) {
		enum db_type verdict;
		struct xml_node *answer = dialback_authoritative(gw->dialback_secret, &m, is_local,
								 (void *)s->srv->conf, &verdict);
		log_info(conn_ctx(s->conn), "db:verify from %s for stream %s: %s", m.from, m.id,
			 verdict == DB_VALID ? "valid" : "invalid");
		send_db(s, answer);
	} else {
		int rc = dialback_tracker_request(s->db, &m);
		struct db_wait *w = rc == FG_OK ? calloc(1, sizeof(*w)) : NULL;
		if (rc == FG_LIMIT) {
			stream_error(s, "policy-violation", "too many dialback requests pending");
		} else if (w) {
			w->srv = s->srv;
			w->conn = conn_id(s->conn);
			snprintf(w->local, sizeof(w->local), "%s", m.to);
			snprintf(w->remote, sizeof(w->remote), "%s", m.from);
			log_info(conn_ctx(s->conn), "dialback key from %s: asking its server",
				 m.from);
			if (route_verify(s->srv, m.to, m.from, s->id, m.key, on_verified, w) !=
			    FG_OK) {
				free(w);
				dialback_tracker_settle(s->db, m.to, m.from, DB_ERROR);
				send_db(s, dialback_error(DB_RESULT, m.to, m.from, NULL,
							  DB_COND_INTERNAL_SERVER_ERROR));
			}
		}
	}
	dialback_msg_clear(&m);
}

/* A stanza on an authenticated s2s stream: its from must be the domain
 * the stream proved, its to one of ours (RFC 6120 §8.1.1, §8.1.2). */
static void on_stanza(struct stream *s, struct xml_node *st)
{
	if (!xml_is(st, XML_NS_SERVER, "message") && !xml_is(st, XML_NS_SERVER, "presence") &&
	    !xml_is(st, XML_NS_SERVER, "iq")) {
		xml_free(&st);
		stream_error(s, "unsupported-stanza-type",
			     "only message, presence and iq in jabber:server are stanzas here");
		return;
	}
	const char *from = xml_attr(st, "from"), *to = xml_attr(st, "to");
	struct jid fj = {0}, tj = {0};
	bool from_parsed = from && jid_parse(from, strlen(from), &fj) == JID_OK;
	bool to_ok = to && jid_parse(to, strlen(to), &tj) == JID_OK &&
		     conf_is_local_domain(s->srv->conf, tj.domain);
	/* SASL authenticates the stream's domain; dialback one pair at a
	 * time (XEP-0220 §2.1.3), so each stanza is checked against both. */
	bool from_ok = from_parsed &&
		       ((s->authed && strcmp(fj.domain, s->authed) == 0) ||
			(to_ok && dialback_tracker_is_authorized(s->db, tj.domain, fj.domain)));
	jid_clear(&fj);
	jid_clear(&tj);
	if (!from_ok) {
		xml_free(&st);
		stream_error(s, "invalid-from",
			     "the stanza's from is not the domain this stream authenticated");
		return;
	}
	if (!to_ok) {
		xml_free(&st);
		stream_error(s, "host-unknown", "the stanza's to is not a domain served here");
		return;
	}
	conn_count_stanza(s->conn, true);
	router_from_partner(s->srv, st);
}

void stream_status(const struct stream *s, void *json_row)
{
	json_t *r = json_row;
	SSL *ssl = conn_ssl(s->conn);
	const char *verdict = "none";
	struct tls_verdict v;
	if (ssl && s->remote) {
		tls_peer_verify(ssl, s->remote, &v);
		verdict = v.text;
	} else if (ssl) {
		verdict = tls_peer_verdict(ssl);
	}
	conn_status(s->conn, r);
	json_object_set_new(r, "direction", json_string(s->kind == STREAM_C2S ? "c2s" : "in"));
	json_object_set_new(r, "local", json_string(s->local ? s->local : ""));
	json_object_set_new(r, "remote",
			    json_string(s->authed   ? s->authed
					: s->remote ? s->remote
						    : ""));
	json_object_set_new(r, "state", json_string(state_names[s->state]));
	json_object_set_new(r, "method", json_string(s->method ? s->method : "none"));
	json_object_set_new(r, "certificate", json_string(verdict));
	json_object_set_new(r, "age", json_integer((json_int_t)(time(NULL) - s->started)));
	json_object_set_new(r, "last_error", json_string(""));
}

static void on_element(struct stream *s, struct xml_node *el)
{
	bool secure = s->flags & SF_SECURE;
	if (s->kind == STREAM_S2S_IN) {
		const char *condition;
		char why[300];
		if (!s2s_in_allows(s->methods, secure, el, s->remote, &condition, why,
				   sizeof(why))) {
			stream_error(s, condition, why);
			return;
		}
	}
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
		s->starttls_requested = true;
		return;
	}
	if (s->kind == STREAM_S2S_IN && xml_is(el, XML_NS_SASL, "auth")) {
		sasl_external(s, el);
		return;
	}
	if (s->kind == STREAM_S2S_IN && xml_is(el, XML_NS_DIALBACK, NULL)) {
		on_dialback(s, el);
		return;
	}
	if (s->kind == STREAM_C2S && (secure || !s->srv->conf->c2s_require_tls) &&
	    !(s->flags & SF_AUTHED) && xml_is(el, XML_NS_SASL, NULL)) {
		c2s_negotiate(s->c2s, el);
		return;
	}
	if (!secure) {
		stream_error(s, "policy-violation",
			     "TLS is required before anything else: send <starttls/> first");
		return;
	}
	stream_error(s, "not-authorized",
		     "the stream is not authenticated; no stanza is accepted before that");
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
		if (s->state == STREAM_READY && s->kind == STREAM_C2S) {
			c2s_stanza(s->c2s, ev->node);
			break;
		}
		if (s->state == STREAM_READY) {
			if (xml_is(ev->node, XML_NS_DIALBACK, NULL)) {
				/* More pairs on the same stream (additional domains). */
				on_element(s, ev->node);
				xml_free(&ev->node);
			} else {
				on_stanza(s, ev->node);
			}
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
		if (s->starttls_requested || s->restart)
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

static void start_tls(struct stream *s, size_t trailing)
{
	s->starttls_requested = false;
	if (trailing > 0) {
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
	while (off < len && s->state != STREAM_TLS_HANDSHAKE && s->state != STREAM_CLOSING) {
		size_t used = 0;
		int rc = xmlstream_feed(s->xs, data + off, len - off, &used);
		off += used;
		if (rc != FG_AGAIN)
			break;
		if (s->starttls_requested && s->state == STREAM_NEGOTIATING) {
			start_tls(s, len - off);
			break;
		}
		if (!s->restart)
			break;
		/* RFC 6120 §6.4.6: after SASL success both sides start over;
		 * an authenticated peer may send full-size stanzas. */
		s->restart = false;
		xmlstream_reset(s->xs);
		const struct fg_conf *cf = s->srv->conf;
		struct xs_limits lim = {.stanza_bytes = s->kind == STREAM_C2S ? cf->c2s_stanza_size
									      : cf->s2s_stanza_size,
					.depth = cf->element_depth,
					.attributes = cf->element_attributes};
		xmlstream_set_limits(s->xs, &lim);
		s->flags &= ~SF_HEADER_SENT;
		enter(s, STREAM_WAIT_HEADER);
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
		break;
	default:
		snprintf(text, sizeof(text), "stream not authenticated within %u seconds",
			 cf->timeout_authentication);
		break;
	}
	stream_error(s, "connection-timeout", text);
}

static void on_closed(void *ud, const char *reason)
{
	struct stream *s = ud;
	(void)reason;
	xmpp_stream_gone(s->srv, s);
	c2s_free(&s->c2s);
	xmlstream_free(&s->xs);
	free(s->local);
	free(s->remote);
	free(s->authed);
	dialback_tracker_free(&s->db);
	free(s);
}

void stream_free_now(struct stream *s)
{
	c2s_free(&s->c2s);
	conn_free_now(&s->conn);
	xmlstream_free(&s->xs);
	free(s->local);
	free(s->remote);
	free(s->authed);
	dialback_tracker_free(&s->db);
	free(s);
}

static const struct conn_ops stream_conn_ops = {
	.on_data = on_data,
	.on_tls = on_tls,
	.on_timer = on_timer,
	.on_closed = on_closed,
};

struct stream *stream_accept(struct xmpp_server *srv, enum stream_kind kind, int fd,
			     const struct sockaddr *peer, socklen_t peerlen)
{
	const struct fg_conf *cf = srv->conf;
	struct stream *s = calloc(1, sizeof(*s));
	if (!s) {
		close(fd);
		return NULL;
	}
	s->srv = srv;
	s->kind = kind;
	s->state = STREAM_WAIT_HEADER;
	s->started = time(NULL);
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
	if (kind == STREAM_S2S_IN)
		s->db = dialback_tracker_new(DB_ROLE_IN, NULL);
	else
		s->c2s = c2s_new(srv, s);
	struct conn_limits cl = {
		.output_queue = cf->output_queue,
		.input_buffer = 64 * 1024,
	};
	if (!s->xs || (kind == STREAM_C2S && !s->c2s)) {
		close(fd);
		xmlstream_free(&s->xs);
		c2s_free(&s->c2s);
		free(s);
		return NULL;
	}
	s->conn = conn_new(srv->base, fd, peer, peerlen, kind == STREAM_C2S ? "c2s" : "s2s-in", &cl,
			   &stream_conn_ops, s);
	if (!s->conn) {
		c2s_free(&s->c2s);
		xmlstream_free(&s->xs);
		free(s);
		return NULL;
	}
	log_info(conn_ctx(s->conn), "connected");
	enter(s, STREAM_WAIT_HEADER);
	return s;
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
	if (srv->stopping && srv->nstreams == 0 && srv->drained)
		srv->drained(srv);
}

unsigned xmpp_s2s_in_count(const struct xmpp_server *srv, const struct partner *p)
{
	unsigned n = 0;
	for (const struct stream *s = srv->streams; s; s = stream_next(s)) {
		if (!stream_is_s2s(s) || stream_state(s) == STREAM_CLOSING)
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

void xmpp_free_streams(struct xmpp_server *srv)
{
	while (srv->streams) {
		struct stream *s = srv->streams;
		stream_list_remove(&srv->streams, s);
		srv->nstreams--;
		stream_free_now(s);
	}
}

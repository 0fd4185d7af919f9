#include "s2s_in.h"
#include "refused.h"

#include "conf.h"
#include "conn.h"
#include "counters.h"
#include "dialback.h"
#include "fg.h"
#include "history.h"
#include "jid.h"
#include "live.h"
#include "log.h"
#include "route.h"
#include "s2s_cert.h"
#include "router.h"
#include "stream.h"
#include "tls.h"
#include "xmpp.h"

#include <assert.h>
#include <jansson.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The role's state on one inbound s2s stream. */
struct s2s_in {
	struct xmpp_server *srv;
	struct stream *s;
	unsigned methods;      /* what the partner's settings allow (enum auth_method) */
	struct db_tracker *db; /* dialback pairs on this stream */
	bool bidi;	       /* XEP-0288: the peer asked for our stanzas on it too */
};

#define TLS_METHODS (AUTH_SASL_TLS | AUTH_TLS_DIALBACK)

int s2s_in_methods(const struct policy *partners, const char *remote, const char *local,
		   unsigned *methods, char *why, size_t whylen)
{
	*methods = 0;
	if (remote) {
		const struct partner *p = policy_lookup(partners, remote);
		if (!p) {
			snprintf(why, whylen, "%s is not an allowed federation partner of %s",
				 remote, local ? local : "this server");
			return FG_NOTFOUND;
		}
		if (!p->enabled) {
			snprintf(why, whylen, PARTNER_SUSPENDED_FMT, p->domain);
			return FG_NOTFOUND;
		}
		*methods = policy_allowed_methods(p);
		return FG_OK;
	}
	/* Rows that allow nothing are refused on save, so the union is empty
	 * only when there are no partners. The stream is still opened (and
	 * may be secured): SPEC §3 enforces the rules when a domain tries to
	 * authenticate, and then no domain is a partner. */
	for (size_t i = 0; i < policy_count(partners); i++)
		*methods |= policy_allowed_methods(policy_at(partners, i));
	(void)why;
	(void)whylen;
	(void)local;
	return FG_OK;
}

static unsigned dialback_here(unsigned methods, bool secure)
{
	return methods & (secure ? AUTH_TLS_DIALBACK : AUTH_TCP_DIALBACK);
}

int s2s_in_features(unsigned methods, bool secure, bool offer_external, struct xml_node *features)
{
	if (secure && offer_external && (methods & AUTH_SASL_TLS)) {
		struct xml_node *m = xml_add_child(features, XML_NS_SASL, "mechanisms");
		struct xml_node *e = m ? xml_add_child(m, XML_NS_SASL, "mechanism") : NULL;
		if (!e || xml_add_text(e, "EXTERNAL", 8) != FG_OK)
			return FG_NOMEM;
	}
	/* methods == 0: no partners at all; TLS costs nothing and a peer
	 * (or an admin with openssl s_client) may still want it. */
	if (!secure && ((methods & TLS_METHODS) || methods == 0)) {
		struct xml_node *tls = xml_add_child(features, XML_NS_TLS, "starttls");
		if (!tls)
			return FG_NOMEM;
		if (methods && !(methods & AUTH_TCP_DIALBACK) &&
		    !xml_add_child(tls, XML_NS_TLS, "required"))
			return FG_NOMEM;
	}
	if (dialback_here(methods, secure)) {
		/* <errors/>: we send dialback errors as XEP-0220 §2.4 says. */
		struct xml_node *db = xml_add_child(features, XML_NS_DIALBACK_FEATURE, "dialback");
		if (!db || !xml_add_child(db, XML_NS_DIALBACK_FEATURE, "errors"))
			return FG_NOMEM;
	}
	return FG_OK;
}

bool s2s_in_allows(unsigned methods, bool secure, const struct xml_node *el, const char *remote,
		   const char **condition, char *why, size_t whylen)
{
	const char *who = remote ? remote : "the peer";
	*condition = "policy-violation";
	if (xml_is(el, XML_NS_TLS, "starttls")) {
		if (secure || (methods & TLS_METHODS) || methods == 0)
			return true; /* twice is the stream's to answer */
		snprintf(why, whylen, "the partner settings for %s do not support TLS", who);
		return false;
	}
	if (xml_is(el, XML_NS_DIALBACK, NULL)) {
		if (dialback_here(methods, secure))
			return true;
		if (!secure && (methods & AUTH_TLS_DIALBACK))
			snprintf(why, whylen,
				 "the partner settings for %s require TLS before dialback: send "
				 "<starttls/> first",
				 who);
		else
			snprintf(why, whylen, "the partner settings for %s do not allow dialback%s",
				 who, secure ? " over TLS" : " without TLS");
		return false;
	}
	if (xml_is(el, XML_NS_SASL, NULL)) {
		if (secure && (methods & AUTH_SASL_TLS))
			return true;
		snprintf(
			why, whylen,
			secure ? "the partner settings for %s do not allow SASL"
			       : "SASL needs TLS: send <starttls/> first (partner settings for %s)",
			who);
		return false;
	}
	if (!secure && (methods & TLS_METHODS) && !(methods & AUTH_TCP_DIALBACK)) {
		snprintf(why, whylen,
			 "the partner settings for %s require TLS before anything else: send "
			 "<starttls/> first",
			 who);
		return false;
	}
	/* Stanzas on an unauthenticated stream: the stream answers that. */
	*condition = "not-authorized";
	snprintf(why, whylen, "the stream is not authenticated; no stanza is accepted before that");
	return false;
}

/* ---- authentication on the stream: SASL EXTERNAL, Server Dialback ---- */

/* XEP-0178: EXTERNAL only for a domain the certificate proves. */
static bool external_ok(struct s2s_in *in)
{
	struct stream *s = in->s;
	const char *remote = stream_remote(s);
	SSL *ssl = conn_ssl(stream_conn(s));
	struct tls_verdict v;
	if (!ssl || !remote || !(in->methods & AUTH_SASL_TLS))
		return false;
	if (s2s_cert_verify(in->srv, ssl, remote, &v) != FG_OK) {
		log_info(stream_ctx(s), "no SASL EXTERNAL for %s: %s", remote, v.text);
		return false;
	}
	return true;
}

/* A partner with pinned keys is not let in by any method over a stream
 * that shows none of them: the stream is closed, both fingerprints in the
 * stream error and our log. */
static bool refused_by_pins(struct s2s_in *in, const char *domain)
{
	struct stream *s = in->s;
	char why[1400];

	if (!s2s_cert_refused(in->srv, conn_ssl(stream_conn(s)), domain, why, sizeof(why)))
		return false;
	counters_auth_failure("pinned-key");
	stream_error(s, "policy-violation", why);
	return true;
}

/* RFC 6120 §6.4.5: the failure carries why in its <text/>, so the peer's
 * admin reads the reason in their own log; ours (log_why, NULL: the same)
 * may say more, such as what our admin could change. */
static void sasl_failure(struct stream *s, const char *condition, const char *why,
			 const char *log_why)
{
	log_info(stream_ctx(s), "SASL EXTERNAL refused (%s): %s", condition,
		 log_why ? log_why : why);
	struct xml_buf b = {0};
	xml_buf_puts(&b, "<failure xmlns='" XML_NS_SASL "'><");
	xml_buf_puts(&b, condition);
	xml_buf_puts(&b, "/><text xml:lang='en'>");
	xml_escape(&b, why, strlen(why), false);
	xml_buf_puts(&b, "</text></failure>");
	if (!b.oom)
		stream_send_raw(s, b.data, b.len);
	xml_buf_free(&b);
}

/* A stream that authenticates counts against the limits from now on; the
 * limits count authenticated streams only, so that streams which merely
 * name a partner in their header cannot use up its share. False (the
 * stream refused) when domain's partner or the gateway is at its limit. */
static bool admit(struct stream *s, struct xmpp_server *srv, const char *domain)
{
	if (stream_state(s) == STREAM_READY)
		return true; /* counted already: another domain on the same stream */
	const struct gateway_settings *gw = &srv->live->gw;
	const struct partner *p = policy_lookup(srv->live->partners, domain);
	char why[300];
	if (p && !p->enabled) {
		/* Suspended after this stream opened, or named only now. */
		counters_auth_failure("suspended");
		snprintf(why, sizeof(why), PARTNER_SUSPENDED_FMT, p->domain);
	} else if (xmpp_s2s_in_count(srv, NULL) + routes_stream_count(srv, NULL) +
			   (srv->cluster_s2s ? srv->cluster_s2s(srv, NULL) : 0) + 1 >
		   gw->connection_limit) {
		snprintf(why, sizeof(why),
			 "this gateway's limit of server-to-server streams (%u) is reached",
			 gw->connection_limit);
	} else if (p && xmpp_s2s_in_count(srv, p) + routes_stream_count(srv, p) +
					(srv->cluster_s2s ? srv->cluster_s2s(srv, p) : 0) + 1 >
				partner_connection_limit(p, gw)) {
		snprintf(why, sizeof(why), "the limit of streams with partner %s (%u) is reached",
			 p->domain, partner_connection_limit(p, gw));
	} else {
		return true;
	}
	stream_error(s, "policy-violation", why);
	return false;
}

bool s2s_in_external_authzid_ok(const char *b64, const char *remote)
{
	if (!*b64 || strcmp(b64, "=") == 0)
		return true;
	unsigned char authzid[1100];
	size_t n = strlen(b64);
	int len = n < 1400 ? EVP_DecodeBlock(authzid, (const unsigned char *)b64, (int)n) : -1;
	while (len > 0 && n && b64[--n] == '=')
		len--; /* EVP_DecodeBlock counts padding as bytes */
	char *prep = NULL;
	bool same = len > 0 &&
		    jid_domain_prep((const char *)authzid, (size_t)len, &prep) == JID_OK &&
		    strcmp(prep, remote) == 0;
	free(prep);
	return same;
}

/* XEP-0178 §3, receiving side. The authorization identity, when given,
 * must be the domain the certificate was checked for. */
static void sasl_external(struct s2s_in *in, const struct xml_node *el)
{
	struct stream *s = in->s;
	const char *remote = stream_remote(s);
	const char *mech = xml_attr(el, "mechanism");
	if (!mech || strcmp(mech, "EXTERNAL") != 0) {
		sasl_failure(s, "invalid-mechanism", "only EXTERNAL is offered", NULL);
		return;
	}
	if (!external_ok(in)) {
		counters_auth_failure("sasl-certificate");
		char why[1400], ours[1400] = "";
		SSL *ssl = conn_ssl(stream_conn(s));
		struct tls_verdict v;
		if (refused_by_pins(in, remote))
			return;
		if (ssl && remote && (in->methods & AUTH_SASL_TLS)) {
			s2s_cert_verify(in->srv, ssl, remote, &v);
			stream_cert_problem(&v, remote, true, why, sizeof(why));
			stream_cert_problem(&v, remote, false, ours, sizeof(ours));
		} else {
			snprintf(why, sizeof(why),
				 "SASL EXTERNAL is not offered on this stream (%s)",
				 !ssl	   ? "it is not encrypted"
				 : !remote ? "the stream header names no 'from' domain"
					   : "the partner settings do not allow SASL over TLS");
		}
		sasl_failure(s, "not-authorized", why, ours[0] ? ours : NULL);
		return;
	}
	if (!s2s_in_external_authzid_ok(xml_text(el), remote)) {
		sasl_failure(s, "invalid-authzid",
			     "the authorization identity is not the domain of the stream", NULL);
		return;
	}
	if (!admit(s, in->srv, remote))
		return;
	stream_authenticated(s, remote, "SASL over TLS");
	if (stream_state(s) == STREAM_CLOSING)
		return;
	history_note_event(in->srv, HISTORY_CONNECTED, true, stream_local(s), remote,
			   "SASL over TLS", NULL);
	stream_send_raw(s, "<success xmlns='" XML_NS_SASL "'/>",
			strlen("<success xmlns='" XML_NS_SASL "'/>"));
	log_info(stream_ctx(s), "authenticated %s with SASL EXTERNAL (SASL over TLS)",
		 stream_authed(s));
}

static void bidi_attach(struct s2s_in *in, const char *local, const char *remote);

struct db_wait {
	struct xmpp_server *srv;
	unsigned conn;
	char local[256], remote[256];
};

static void send_db(struct stream *s, struct xml_node *n)
{
	if (n)
		stream_send(s, n);
	xml_free(&n);
}

/* The authoritative server answered (XEP-0220 §2.1.2 step 4 -> §2.1.3). */
static void on_verified(void *ud, int verdict, enum db_cond cond, const char *why)
{
	struct db_wait *w = ud;
	struct stream *s = stream_by_conn_id(w->srv, w->conn);
	struct s2s_in *in = s ? stream_role_state(s) : NULL;
	if (!s) {
		free(w);
		return;
	}
	assert(stream_is_s2s(s) && in && in->s == s);
	if (verdict == DB_VALID && !admit(s, w->srv, w->remote)) {
		dialback_tracker_settle(in->db, w->local, w->remote, DB_ERROR);
	} else if (verdict == DB_VALID) {
		dialback_tracker_settle(in->db, w->local, w->remote, DB_VALID);
		send_db(s, dialback_result_answer(w->local, w->remote, true));
		const char *method = stream_secure(s) ? "TLS Dialback" : "TCP Dialback";
		log_info(stream_ctx(s), "authenticated %s with %s", w->remote, method);
		history_note_event(w->srv, HISTORY_CONNECTED, true, w->local, w->remote, method,
				   NULL);
		stream_ready(s, method);
		bidi_attach(in, w->local, w->remote);
	} else if (verdict == DB_INVALID) {
		dialback_tracker_settle(in->db, w->local, w->remote, DB_INVALID);
		send_db(s, dialback_result_answer(w->local, w->remote, false));
		log_info(stream_ctx(s), "dialback key of %s is invalid", w->remote);
		counters_auth_failure("dialback-key-invalid");
		stream_error(s, "not-authorized", "the dialback key was not valid");
	} else {
		dialback_tracker_settle(in->db, w->local, w->remote, DB_ERROR);
		log_info(stream_ctx(s), "dialback for %s could not be verified: %s", w->remote,
			 why);
		send_db(s, dialback_error(DB_RESULT, w->local, w->remote, NULL, cond));
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
static void on_dialback(struct s2s_in *in, const struct xml_node *el)
{
	struct stream *s = in->s;
	struct xmpp_server *srv = in->srv;
	struct db_msg m;
	enum db_perr pe = dialback_parse(el, &m);
	if (pe != DB_PERR_OK) {
		stream_error(s, "invalid-xml", dialback_perr_str(pe));
		return;
	}
	const struct gateway_settings *gw = &srv->live->gw;
	const struct partner *p = policy_lookup(srv->live->partners, m.from);
	unsigned here = stream_secure(s) ? AUTH_TLS_DIALBACK : AUTH_TCP_DIALBACK;
	if (m.type != DB_REQUEST) {
		log_info(stream_ctx(s), "unsolicited dialback answer from %s dropped", m.from);
	} else if (!conf_is_local_domain(srv->conf, m.to)) {
		send_db(s, dialback_error(m.elem, m.to, m.from, m.id, DB_COND_ITEM_NOT_FOUND));
	} else if (!p) {
		char why[300];
		snprintf(why, sizeof(why), "%s is not an allowed federation partner of %s", m.from,
			 m.to);
		counters_auth_failure("not-a-partner");
		refused_note(srv, m.from, REFUSED_INBOUND, stream_peer(s));
		stream_error(s, "policy-violation", why);
	} else if (!p->enabled) {
		char why[300];
		snprintf(why, sizeof(why), PARTNER_SUSPENDED_FMT, p->domain);
		counters_auth_failure("suspended");
		stream_error(s, "policy-violation", why);
	} else if (m.elem == DB_RESULT && refused_by_pins(in, m.from)) {
		/* closed: no method lets this stream carry that partner */
	} else if (!(policy_allowed_methods(p) & here)) {
		char why[400];
		snprintf(why, sizeof(why),
			 "the partner settings of %s on %s do not allow dialback on this stream "
			 "(%s)",
			 m.from, m.to,
			 here == AUTH_TLS_DIALBACK ? "it is encrypted" : "it is not encrypted");
		log_info(stream_ctx(s), "dialback refused: %s", why);
		counters_auth_failure("method-not-allowed");
		send_db(s, dialback_error_why(m.elem, m.to, m.from, m.id, DB_COND_POLICY_VIOLATION,
					      why));
	} else if (m.elem == DB_VERIFY) {
		enum db_type verdict;
		struct xml_node *answer = dialback_authoritative(gw->dialback_secret, &m, is_local,
								 (void *)srv->conf, &verdict);
		log_info(stream_ctx(s), "db:verify from %s for stream %s: %s", m.from, m.id,
			 verdict == DB_VALID ? "valid" : "invalid");
		send_db(s, answer);
	} else {
		int rc = dialback_tracker_request(in->db, &m);
		struct db_wait *w = rc == FG_OK ? calloc(1, sizeof(*w)) : NULL;
		if (rc == FG_LIMIT) {
			stream_error(s, "policy-violation", "too many dialback requests pending");
		} else if (w) {
			w->srv = srv;
			w->conn = conn_id(stream_conn(s));
			snprintf(w->local, sizeof(w->local), "%s", m.to);
			snprintf(w->remote, sizeof(w->remote), "%s", m.from);
			log_info(stream_ctx(s), "dialback key from %s: asking its server", m.from);
			if (route_verify(srv, m.to, m.from, stream_id(s), m.key, on_verified, w) !=
			    FG_OK) {
				free(w);
				dialback_tracker_settle(in->db, m.to, m.from, DB_ERROR);
				send_db(s, dialback_error(DB_RESULT, m.to, m.from, NULL,
							  DB_COND_INTERNAL_SERVER_ERROR));
			}
		}
	}
	dialback_msg_clear(&m);
}

bool s2s_in_partner_stanza(struct xmpp_server *srv, struct xml_node *st, s2s_in_authorized ok,
			   const void *arg, const char **condition, const char **text)
{
	if (!xml_is(st, XML_NS_SERVER, "message") && !xml_is(st, XML_NS_SERVER, "presence") &&
	    !xml_is(st, XML_NS_SERVER, "iq")) {
		xml_free(&st);
		*condition = "unsupported-stanza-type";
		*text = "only message, presence and iq in jabber:server are stanzas here";
		return false;
	}
	const char *from = xml_attr(st, "from"), *to = xml_attr(st, "to");
	struct jid fj = {0}, tj = {0};
	bool from_parsed = from && jid_parse(from, strlen(from), &fj) == JID_OK;
	bool to_ok = to && jid_parse(to, strlen(to), &tj) == JID_OK &&
		     conf_is_local_domain(srv->conf, tj.domain);
	bool from_ok = from_parsed && ok(arg, to_ok ? tj.domain : NULL, fj.domain);
	jid_clear(&tj);
	if (!from_ok || !to_ok) {
		jid_clear(&fj);
		xml_free(&st);
		*condition = !from_ok ? "invalid-from" : "host-unknown";
		*text = !from_ok ? "the stanza's from is not the domain this stream authenticated"
				 : "the stanza's to is not a domain served here";
		return false;
	}
	history_note_stanza(srv, fj.domain, true);
	jid_clear(&fj);
	router_from_partner(srv, st);
	return true;
}

/* SASL authenticates the stream's domain; dialback one pair at a time
 * (XEP-0220 §2.1.3), so each stanza is checked against both. */
static bool in_authorized(const void *arg, const char *local, const char *remote)
{
	const struct s2s_in *in = arg;
	const char *authed = stream_authed(in->s);
	return (authed && strcmp(remote, authed) == 0) ||
	       (local && dialback_tracker_is_authorized(in->db, local, remote));
}

/* A stanza on an authenticated s2s stream: its from must be the domain
 * the stream proved, its to one of ours (RFC 6120 §8.1.1, §8.1.2). */
static void on_stanza(struct s2s_in *in, struct xml_node *st)
{
	const char *condition, *text;
	if (s2s_in_partner_stanza(in->srv, st, in_authorized, in, &condition, &text))
		stream_count_stanza(in->s, true);
	else
		stream_error(in->s, condition, text);
}

struct out_pair {
	const char *local, *remote;
};

/* XEP-0288 §2.2 on our outbound stream: the peer sends for the pair it
 * authenticated us for, reversed: from remote, to local (with SASL the
 * stream's 'to', with dialback the inverse of our pair). */
static bool out_authorized(const void *arg, const char *local, const char *remote)
{
	const struct out_pair *pair = arg;
	return local && strcmp(local, pair->local) == 0 && strcmp(remote, pair->remote) == 0;
}

bool s2s_in_from_outbound(struct xmpp_server *srv, const char *local, const char *remote,
			  struct xml_node *st, const char **condition, const char **text)
{
	struct out_pair pair = {local, remote};
	return s2s_in_partner_stanza(srv, st, out_authorized, &pair, condition, text);
}

/* ---- XEP-0288, the receiving side ---- */

/* Offered (and honoured) when the partner's record has bidi on, after TLS
 * when its row needs TLS; never to a domain that is not a partner. */
static bool bidi_allowed(const struct s2s_in *in)
{
	const char *remote = stream_remote(in->s);
	const struct partner *p = remote ? policy_lookup(in->srv->live->partners, remote) : NULL;
	if (!p || !p->enabled || !p->bidi)
		return false;
	return stream_secure(in->s) || (in->methods & AUTH_TCP_DIALBACK);
}

/* The peer proved remote for local on this stream: if it asked for
 * bidirectionality, the route (local, remote) may write here (XEP-0288
 * §2.2: with SASL for the stream's domains, with dialback the inverse of
 * each pair). */
static void bidi_attach(struct s2s_in *in, const char *local, const char *remote)
{
	struct stream *s = in->s;
	if (!in->bidi || stream_state(s) != STREAM_READY)
		return;
	const struct partner *p = policy_lookup(in->srv->live->partners, remote);
	if (!p || !p->bidi)
		return;
	log_info(stream_ctx(s), "bidirectional (XEP-0288): stanzas from %s to %s use this stream",
		 local, remote);
	route_bidi_attach(in->srv, local, remote, s);
}

/* ---- the s2s-in role of the stream core ---- */

static void *in_attach(struct xmpp_server *srv, struct stream *s)
{
	struct s2s_in *in = calloc(1, sizeof(*in));
	if (!in)
		return NULL;
	in->srv = srv;
	in->s = s;
	in->db = dialback_tracker_new(DB_ROLE_IN, NULL);
	if (!in->db) {
		free(in);
		return NULL;
	}
	return in;
}

static void in_detach(void *rs)
{
	struct s2s_in *in = rs;
	if (in->bidi)
		routes_bidi_gone(in->srv, in->s); /* a stream that ended without CLOSING */
	dialback_tracker_free(&in->db);
	free(in);
}

/* The header's from picks the partner: its settings say what this stream
 * may do; its connection limit counts this stream. */
static bool in_header(struct stream *s, void *rs)
{
	struct s2s_in *in = rs;
	struct xmpp_server *srv = in->srv;
	const char *remote = stream_remote(s);
	char why[300], names[128];
	if (s2s_in_methods(srv->live->partners, remote, stream_local(s), &in->methods, why,
			   sizeof(why)) != FG_OK) {
		const struct partner *p = policy_lookup(srv->live->partners, remote);
		counters_auth_failure(p ? "suspended" : "not-a-partner");
		if (!p)
			refused_note(srv, remote, REFUSED_INBOUND, stream_peer(s));
		stream_error(s, "policy-violation", why);
		return false;
	}
	/* After TLS the key is known: a pinned partner showing another one
	 * learns it now, not after trying every method. */
	if (remote && stream_secure(s) && refused_by_pins(in, remote))
		return false;
	policy_methods_string(in->methods, names, sizeof(names));
	log_info(stream_ctx(s), "%s: allowed methods %s",
		 remote ? "partner settings" : "no 'from' yet, any partner's", names);
	return true;
}

static int in_features(struct stream *s, void *rs, struct xml_node *f)
{
	struct s2s_in *in = rs;
	if (stream_flags(s) & SF_AUTHED)
		return FG_OK; /* nothing left to negotiate */
	int rc = s2s_in_features(in->methods, stream_secure(s), external_ok(in), f);
	if (rc == FG_OK && bidi_allowed(in) && !in->bidi &&
	    !xml_add_child(f, XML_NS_BIDI_FEATURE, "bidi"))
		rc = FG_NOMEM;
	return rc;
}

static bool in_allows(struct stream *s, void *rs, const struct xml_node *el)
{
	struct s2s_in *in = rs;
	const char *condition;
	char why[300];
	if (xml_is(el, XML_NS_BIDI, "bidi"))
		return true; /* in_negotiate decides */
	if (s2s_in_allows(in->methods, stream_secure(s), el, stream_remote(s), &condition, why,
			  sizeof(why)))
		return true;
	stream_error(s, condition, why);
	return false;
}

static bool in_negotiate(struct stream *s, void *rs, const struct xml_node *el)
{
	struct s2s_in *in = rs;
	(void)s;
	if (xml_is(el, XML_NS_SASL, "auth")) {
		sasl_external(in, el);
		return true;
	}
	if (xml_is(el, XML_NS_DIALBACK, NULL)) {
		on_dialback(in, el);
		return true;
	}
	if (xml_is(el, XML_NS_BIDI, "bidi")) {
		/* No answer is defined (XEP-0288 §2.2); a request we did not
		 * offer is left unused: the route opens its own stream. */
		if (bidi_allowed(in)) {
			in->bidi = true;
			log_info(stream_ctx(s),
				 "the peer asked for a bidirectional stream (XEP-0288)");
		} else {
			log_info(stream_ctx(s),
				 "bidirectional stream requested but not offered (partner record "
				 "or TLS): ignored");
		}
		return true;
	}
	return false;
}

static void in_stanza(struct stream *s, void *rs, struct xml_node *st)
{
	struct s2s_in *in = rs;
	if (xml_is(st, XML_NS_DIALBACK, NULL)) {
		/* More pairs on the same stream (additional domains). */
		if (in_allows(s, rs, st))
			on_dialback(in, st);
		xml_free(&st);
		return;
	}
	if (xml_is(st, XML_NS_BIDI, "bidi")) {
		/* XEP-0288 §2.2: asked before authentication or not at all. */
		log_info(stream_ctx(s), "bidirectional stream requested after authentication: "
					"ignored");
		xml_free(&st);
		return;
	}
	on_stanza(in, st);
}

/* SASL EXTERNAL: READY after the restart, for the stream's pair. */
static void in_ready(struct stream *s, void *rs)
{
	struct s2s_in *in = rs;
	if ((stream_flags(s) & SF_AUTHED) && stream_local(s) && stream_authed(s))
		bidi_attach(in, stream_local(s), stream_authed(s));
}

static void in_closing(struct stream *s, void *rs)
{
	struct s2s_in *in = rs;
	if (in->bidi)
		routes_bidi_gone(in->srv, s);
}

static void in_drained(struct stream *s, void *rs)
{
	struct s2s_in *in = rs;
	if (in->bidi)
		routes_bidi_drained(in->srv, s);
}

static void in_status(const struct stream *s, const void *rs, void *json_row)
{
	const struct s2s_in *in = rs;
	(void)s;
	json_object_set_new(json_row, "bidi", json_boolean(in->bidi));
}

/* Partners with keepalives promise whitespace: silent for twice the
 * interval means gone; the others get the inactivity timeout (SPEC §3). */
static unsigned in_idle_timeout(const struct stream *s, const void *rs)
{
	const struct s2s_in *in = rs;
	const struct gateway_settings *gw = &in->srv->live->gw;
	const char *authed = stream_authed(s);
	const struct partner *p = authed ? policy_lookup(in->srv->live->partners, authed) : NULL;
	if (p && p->keepalive)
		return 2 * gw->keepalive_interval;
	return gw->stream_inactivity_timeout;
}

static unsigned in_stanza_limit(const struct fg_conf *conf)
{
	return conf->s2s_stanza_size;
}

/* What a partner's server objects to is what an admin needs to see next
 * to the route (`fedgate status`), even after the stream is gone. */
static void in_peer_error(struct stream *s, void *rs, const char *why)
{
	(void)rs;
	if (stream_local(s) && stream_remote(s))
		route_note_peer_error(stream_server(s), stream_local(s), stream_remote(s), why);
}

/* An authenticated stream's end is an event of the partner's day. */
static void in_closed(struct stream *s, void *rs, const char *reason)
{
	(void)rs;
	const char *who = stream_authed(s) ? stream_authed(s) : stream_remote(s);
	if (stream_method(s) && who)
		history_note_event(stream_server(s), HISTORY_CLOSED, true, stream_local(s), who,
				   stream_method(s), reason);
}

const struct stream_role s2s_in_role = {
	.name = "s2s-in",
	.direction = "in",
	.content_ns = XML_NS_SERVER,
	.s2s = true,
	.attach = in_attach,
	.detach = in_detach,
	.on_header = in_header,
	.features = in_features,
	.allows = in_allows,
	.negotiate = in_negotiate,
	.stanza = in_stanza,
	.idle_timeout = in_idle_timeout,
	.stanza_limit = in_stanza_limit,
	.peer_error = in_peer_error,
	.closed = in_closed,
	.ready = in_ready,
	.closing = in_closing,
	.drained = in_drained,
	.status = in_status,
};

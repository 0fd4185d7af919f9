#include "c2s.h"

#include "live.h"
#include "conf.h"
#include "fg.h"
#include "jid.h"
#include "log.h"
#include "counters.h"
#include "offline.h"
#include "router.h"
#include "session.h"
#include "sasl.h"
#include "sm.h"
#include "xmpp.h"
#include "stream.h"
#include "throttle.h"
#include "users.h"

#include <assert.h>
#include <event2/event.h>
#include <openssl/evp.h>
#include <openssl/rand.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* RFC 6120 §6.4.5: a client may retry after a failed attempt; after this
 * many on one stream it is cut off. */
#define SASL_ATTEMPTS_PER_STREAM 3
/* SASL elements a client may send while its last one waits for an answer
 * (a held failure or a held attempt); a client that waits for answers never
 * has more than one. */
#define HELD_ELEMENTS_MAX 4
/* Addresses and (address, account) pairs the login throttle keeps: any
 * peer can make entries, so the table has a cap (core/throttle.h). */
#define THROTTLE_ENTRIES_MAX 20000

#define XML_NS_CSI  "urn:xmpp:csi:0"
#define XML_NS_PING "urn:xmpp:ping"
/* The id of our pings (XEP-0199): their answers stop here. */
#define PING_ID "fg-ping"

/* The client's progress on its stream (the stream core keeps its own
 * states for header, TLS and the restart):
 *   SASL --(success)--> BIND --(resource bound)--> BOUND
 *   any  --(the stream closes)--> ENDED */
enum c2s_state { C2S_SASL, C2S_BIND, C2S_BOUND, C2S_ENDED };

/* What the hold timer is holding: a failure's answer (the throttle's
 * delay), or an attempt from an address whose turn has not come. */
enum c2s_hold { HOLD_NONE, HOLD_FAILURE, HOLD_ATTEMPT };

struct c2s {
	struct xmpp_server *srv;
	struct stream *s;
	enum c2s_state state;
	struct sasl_server *sasl;
	char *attempt_user; /* the account the current attempt names, or NULL */
	unsigned failures;
	char *bare;	      /* once SASL succeeded */
	struct session *sess; /* once a resource is bound */
	struct event *hold_ev;
	enum c2s_hold hold;
	const char *held_condition; /* HOLD_FAILURE: string literals */
	const char *held_text;
	bool admitted;				  /* the held <auth/> at held[0] has had its turn */
	struct xml_node *held[HELD_ELEMENTS_MAX]; /* came while holding, in order */
	unsigned nheld;
	bool gone;	  /* the connection was lost, not closed: a resumable
			     session hibernates (XEP-0198) */
	time_t ping_sent; /* our unanswered ping (XEP-0199), or 0 */
};

/* Made on the first login attempt with the configuration's limits; NULL
 * when out of memory, and then logins are simply not throttled. */
static struct throttle *throttle_of(struct xmpp_server *srv)
{
	if (!srv->auth_throttle) {
		const struct fg_conf *cf = srv->conf;
		struct throttle_limits lim = {.refuse_after = cf->c2s_auth_failures,
					      .window_s = cf->c2s_auth_failure_window,
					      .delay_max_ms = cf->c2s_auth_delay_max * 1000u,
					      .max_entries = THROTTLE_ENTRIES_MAX};
		srv->auth_throttle = throttle_new(&lim);
	}
	return srv->auth_throttle;
}

/* ---- the registry ---- */

/* ---- life ---- */

static struct c2s *c2s_new(struct xmpp_server *srv, struct stream *s)
{
	struct c2s *c = calloc(1, sizeof(*c));
	if (!c)
		return NULL;
	c->srv = srv;
	c->s = s;
	return c;
}

/* The one place the client's state changes. */
static void c2s_enter(struct c2s *c, enum c2s_state st)
{
	assert(st == C2S_ENDED || (int)st == (int)c->state + 1);
	/* A bound client has a session; no other has. */
	assert((st == C2S_BOUND) == (c->sess != NULL) || st == C2S_ENDED);
	c->state = st;
}

static void drop_held(struct c2s *c)
{
	if (c->hold_ev)
		evtimer_del(c->hold_ev);
	c->hold = HOLD_NONE;
	while (c->nheld)
		xml_free(&c->held[--c->nheld]);
}

/* The stream closes. With stream management the session's copies of
 * what the client did not acknowledge are all that counts (what still
 * waits in the stream is among them); a lost connection leaves a
 * resumable session hibernating, anything else ends it and its copies are
 * routed anew (session.c). */
static void c2s_end(struct c2s *c)
{
	if (!c || c->state == C2S_ENDED)
		return;
	c2s_enter(c, C2S_ENDED);
	drop_held(c);
	struct sm *sm = c->sess ? session_sm(c->sess) : NULL;
	if (sm)
		stream_discard_queue(c->s);
	/* Silence past the idle timeout is a connection that may be dead
	 * (with pings off, nothing else finds out). */
	bool gone = c->gone || (stream_flags(c->s) & SF_IDLE_TIMEOUT);
	if (sm && sm->resumable && gone && !c->srv->stopping &&
	    c->srv->conf->users_resumption_window > 0) {
		struct session *sess = c->sess;
		c->sess = NULL; /* it owns itself now */
		session_detach(sess);
		return;
	}
	session_end(c->sess);
}

static void c2s_free(struct c2s **pc)
{
	struct c2s *c = *pc;
	if (!c)
		return;
	drop_held(c);
	if (c->hold_ev)
		event_free(c->hold_ev);
	session_free(&c->sess);
	sasl_server_free(&c->sasl);
	free(c->bare);
	free(c->attempt_user);
	free(c);
	*pc = NULL;
}

/* ---- features and SASL ---- */

static int c2s_features(struct c2s *c, struct xml_node *f, bool secure, bool authed)
{
	const struct fg_conf *cf = c->srv->conf;
	if (authed) {
		if (!xml_add_child(f, XML_NS_BIND, "bind"))
			return FG_NOMEM;
		/* RFC 3921 sessions: old clients ask; say it is not needed. */
		struct xml_node *sess = xml_add_child(f, XML_NS_SESSION, "session");
		if (!sess || !xml_add_child(sess, XML_NS_SESSION, "optional"))
			return FG_NOMEM;
		/* RFC 6121 §2.6: roster versioning (roster.c). */
		if (!xml_add_child(f, "urn:xmpp:features:rosterver", "ver"))
			return FG_NOMEM;
		/* XEP-0198 and XEP-0352 are stream features, not disco ones. */
		if (!xml_add_child(f, XML_NS_SM, "sm") || !xml_add_child(f, XML_NS_CSI, "csi"))
			return FG_NOMEM;
		return FG_OK;
	}
	if (!secure) {
		struct xml_node *tls = xml_add_child(f, XML_NS_TLS, "starttls");
		if (!tls || (cf->c2s_require_tls && !xml_add_child(tls, XML_NS_TLS, "required")))
			return FG_NOMEM;
		if (cf->c2s_require_tls)
			return FG_OK;
	}
	struct xml_node *mechs = xml_add_child(f, XML_NS_SASL, "mechanisms");
	if (!mechs)
		return FG_NOMEM;
	for (const char *const *m = sasl_mechanisms(secure); *m; m++) {
		struct xml_node *n = xml_add_child(mechs, XML_NS_SASL, "mechanism");
		if (!n || xml_add_text(n, *m, strlen(*m)) != FG_OK)
			return FG_NOMEM;
	}
	return FG_OK;
}

/* The account an authentication identity names on this stream's domain:
 * "alice" on contoso.test is alice@contoso.test. */
static int account_jid(struct c2s *c, const char *authcid, char *out, size_t len)
{
	char buf[1100];
	struct jid j = {0};
	const char *domain = stream_local(c->s);
	if (!domain || strchr(authcid, '@') || strchr(authcid, '/'))
		return FG_NOTFOUND;
	snprintf(buf, sizeof(buf), "%s@%s", authcid, domain);
	if (jid_parse(buf, strlen(buf), &j) != JID_OK || !j.node)
		return FG_NOTFOUND;
	snprintf(out, len, "%s@%s", j.node, j.domain);
	jid_clear(&j);
	return FG_OK;
}

static int lookup(void *ud, const char *authcid, struct scram_creds *out)
{
	struct c2s *c = ud;
	char bare[1100];
	if (account_jid(c, authcid, bare, sizeof(bare)) != FG_OK)
		return FG_NOTFOUND;
	const struct account *a = accounts_get(c->srv->live->users, bare);
	if (!a)
		return FG_NOTFOUND;
	*out = a->creds;
	return FG_OK;
}

/* The authentication identity an initial response names, for counting
 * failures per account: PLAIN is authzid NUL authcid NUL password, SCRAM's
 * client-first-message carries n=NAME after the GS2 header. */
static void attempted_user(struct c2s *c, const char *mech, const char *b64)
{
	unsigned char raw[1600];
	size_t n = strlen(b64);
	free(c->attempt_user);
	c->attempt_user = NULL;
	if (n == 0 || n > 2000)
		return;
	int len = EVP_DecodeBlock(raw, (const unsigned char *)b64, (int)n);
	if (len <= 0)
		return;
	while (len > 0 && n && b64[--n] == '=')
		len--;
	raw[len] = '\0';
	char name[256] = "";
	if (strcmp(mech, "PLAIN") == 0) {
		const char *a = memchr(raw, '\0', (size_t)len);
		if (a && a + 1 < (const char *)raw + len)
			snprintf(name, sizeof(name), "%s", a + 1);
	} else {
		const char *a = strstr((const char *)raw, ",n=");
		if (a) {
			snprintf(name, sizeof(name), "%s", a + 3);
			name[strcspn(name, ",")] = '\0';
		}
	}
	char jid[512];
	if (*name && account_jid(c, name, jid, sizeof(jid)) == FG_OK)
		c->attempt_user =
			strdup(jid); /* NULL when out of memory: not counted per account */
}

static void send_failure(struct c2s *c, const char *condition, const char *text)
{
	struct xml_node *f = xml_new(XML_NS_SASL, "failure");
	if (f) {
		xml_add_child(f, XML_NS_SASL, condition);
		if (text) {
			struct xml_node *t = xml_add_child(f, XML_NS_SASL, "text");
			xml_set_attr(t, XML_NS_XML, "lang", "en");
			xml_add_text(t, text, strlen(text));
		}
		stream_send(c->s, f);
		xml_free(&f);
	}
}

/* The answer to a failed attempt, now or when its hold is over; the
 * stream's last allowed failure ends it. */
static void answer_failure(struct c2s *c, const char *condition, const char *text)
{
	send_failure(c, condition, text);
	if (++c->failures >= SASL_ATTEMPTS_PER_STREAM)
		stream_error(c->s, "policy-violation", "too many failed authentication attempts");
}

static void hold_for(struct c2s *c, enum c2s_hold what, uint64_t ms);

/* guessed: the credentials were checked and were wrong (or named no
 * account: the same thing, on purpose). Those count for the throttle and
 * are answered after its delay; condition and text are then string
 * literals. */
static void sasl_failed(struct c2s *c, const char *condition, const char *text, bool guessed)
{
	uint64_t delay = 0;
	sasl_server_free(&c->sasl);
	if (guessed) {
		struct throttle *t = throttle_of(c->srv);
		if (t)
			delay = throttle_failed(t, stream_peer(c->s),
						c->attempt_user ? c->attempt_user : "",
						throttle_now_ms());
		counters_auth_failure("c2s-not-authorized");
	}
	log_info(stream_ctx(c->s), "client authentication failed (%s)%s%s; answered in %llu ms",
		 condition, c->attempt_user ? " for " : "", c->attempt_user ? c->attempt_user : "",
		 (unsigned long long)delay);
	if (delay) {
		c->held_condition = condition;
		c->held_text = text;
		hold_for(c, HOLD_FAILURE, delay);
		return;
	}
	answer_failure(c, condition, text);
}

static void send_sasl(struct c2s *c, const char *name, const char *b64)
{
	struct xml_node *n = xml_new(XML_NS_SASL, name);
	if (n && b64 && *b64)
		xml_add_text(n, b64, strlen(b64));
	if (n)
		stream_send(c->s, n);
	xml_free(&n);
}

static void sasl_succeeded(struct c2s *c, const char *extra)
{
	char bare[1100];
	const char *authcid = sasl_server_authcid(c->sasl);
	const char *authzid = sasl_server_authzid(c->sasl);
	if (!authcid || account_jid(c, authcid, bare, sizeof(bare)) != FG_OK) {
		sasl_failed(c, "not-authorized", NULL, true);
		return;
	}
	/* A user may act only as themself. */
	if (authzid && *authzid && strcmp(authzid, bare) != 0) {
		sasl_failed(c, "invalid-authzid", "you may only authorize as your own account",
			    true);
		return;
	}
	if (c->srv->auth_throttle)
		throttle_succeeded(c->srv->auth_throttle, stream_peer(c->s), bare);
	sasl_server_free(&c->sasl);
	/* Nothing a client sent before reading <success/> belongs to the
	 * new stream. */
	drop_held(c);
	free(c->attempt_user);
	c->attempt_user = NULL;
	free(c->bare);
	c->bare = strdup(bare);
	if (!c->bare) {
		stream_error(c->s, "resource-constraint", "out of memory");
		return;
	}
	c2s_enter(c, C2S_BIND);
	send_sasl(c, "success", extra);
	log_info(stream_ctx(c->s), "authenticated %s", bare);
	stream_authenticated(c->s, bare, "SASL");
}

static void sasl_result(struct c2s *c, enum sasl_result r, char *out, const char *failure)
{
	if (r == SASL_CONTINUE)
		send_sasl(c, "challenge", out);
	else if (r == SASL_SUCCESS)
		sasl_succeeded(c, out);
	else if (failure && strcmp(failure, "temporary-auth-failure") == 0)
		sasl_failed(c, failure, "the account store cannot be read now; try again", false);
	else
		sasl_failed(c, failure ? failure : "not-authorized", NULL, true);
	free(out);
}

static void c2s_negotiate(struct c2s *c, const struct xml_node *el);

static void hold_fired(evutil_socket_t fd, short what, void *arg)
{
	struct c2s *c = arg;
	enum c2s_hold was = c->hold;
	(void)fd;
	(void)what;
	assert(was != HOLD_NONE);
	c->hold = HOLD_NONE;
	if (c->state != C2S_SASL || stream_state(c->s) == STREAM_CLOSING)
		return;
	if (was == HOLD_FAILURE)
		answer_failure(c, c->held_condition, c->held_text);
	else
		c->admitted = true;
	/* What came meanwhile, in order, until something is held again. */
	while (c->nheld && c->hold == HOLD_NONE && c->state == C2S_SASL &&
	       stream_state(c->s) != STREAM_CLOSING) {
		struct xml_node *el = c->held[0];
		memmove(c->held, c->held + 1, --c->nheld * sizeof(c->held[0]));
		c2s_negotiate(c, el);
		xml_free(&el);
	}
	c->admitted = false;
}

static void hold_for(struct c2s *c, enum c2s_hold what, uint64_t ms)
{
	assert(c->hold == HOLD_NONE && what != HOLD_NONE);
	if (!c->hold_ev)
		c->hold_ev = evtimer_new(c->srv->base, hold_fired, c);
	if (!c->hold_ev) {
		stream_error(c->s, "resource-constraint", "out of memory");
		return;
	}
	struct timeval tv = {(time_t)(ms / 1000u), (suseconds_t)(ms % 1000u) * 1000};
	c->hold = what;
	evtimer_add(c->hold_ev, &tv);
}

/* A SASL element while an answer is held waits its turn. first: the
 * <auth/> being held itself, which goes before anything that came after
 * it. */
static void keep(struct c2s *c, const struct xml_node *el, bool first)
{
	if (c->nheld == HELD_ELEMENTS_MAX) {
		stream_error(c->s, "policy-violation",
			     "too many SASL elements sent before the last one was answered");
		return;
	}
	struct xml_node *copy = xml_clone(el);
	if (!copy) {
		stream_error(c->s, "resource-constraint", "out of memory");
		return;
	}
	if (first) {
		memmove(c->held + 1, c->held, c->nheld * sizeof(c->held[0]));
		c->held[0] = copy;
	} else {
		c->held[c->nheld] = copy;
	}
	c->nheld++;
}

/* The throttle's word on a new attempt: true when it may be checked now;
 * otherwise it was refused or is held (and kept for its turn). */
static bool admitted(struct c2s *c, const struct xml_node *auth)
{
	struct throttle *t = throttle_of(c->srv);
	uint64_t wait = 0;
	if (c->admitted || !t) {
		c->admitted = false;
		return true;
	}
	switch (throttle_admit(t, stream_peer(c->s), throttle_now_ms(), &wait)) {
	case THROTTLE_NOW: return true;
	case THROTTLE_WAIT:
		log_info(stream_ctx(c->s),
			 "login attempt held %llu ms: its address failed %u times recently",
			 (unsigned long long)wait,
			 throttle_failures(t, stream_peer(c->s), throttle_now_ms()));
		keep(c, auth, true);
		if (stream_state(c->s) != STREAM_CLOSING)
			hold_for(c, HOLD_ATTEMPT, wait);
		return false;
	case THROTTLE_REFUSE: break;
	}
	char text[200];
	snprintf(text, sizeof(text),
		 "too many failed logins from your address; try again in %llu seconds",
		 (unsigned long long)(wait + 999) / 1000u);
	counters_auth_failure("c2s-rate-limited");
	log_info(stream_ctx(c->s), "login refused: %u failures from this address",
		 throttle_failures(t, stream_peer(c->s), throttle_now_ms()));
	sasl_failed(c, "temporary-auth-failure", text, false);
	return false;
}

/* RFC 6120 §6.4.4: a mechanism the stream is not secure enough for gets
 * <encryption-required/>, and the stream stays open for STARTTLS. No
 * password was checked, so the throttle does not count it. */
static void needs_tls(struct c2s *c, const char *mech)
{
	bool plain = mech && strcmp(mech, "PLAIN") == 0;
	counters_auth_failure(plain ? "c2s-plain-without-tls" : "c2s-without-tls");
	sasl_failed(c, "encryption-required",
		    plain ? "PLAIN needs TLS; use STARTTLS or a SCRAM mechanism"
			  : "TLS is required first; use STARTTLS",
		    false);
}

static void c2s_negotiate(struct c2s *c, const struct xml_node *el)
{
	const char *failure = NULL;
	char *out = NULL;
	if (c->hold != HOLD_NONE) {
		keep(c, el, false);
		return;
	}
	if (xml_is(el, XML_NS_SASL, "auth")) {
		const char *mech = xml_attr(el, "mechanism");
		if (c->sasl) {
			sasl_failed(c, "aborted", "a new <auth/> replaced the exchange", false);
			if (stream_state(c->s) == STREAM_CLOSING)
				return;
		}
		if (!mech) {
			sasl_failed(c, "invalid-mechanism", "<auth/> names no mechanism", false);
			return;
		}
		attempted_user(c, mech, xml_text(el));
		if (!stream_secure(c->s) && c->srv->conf->c2s_require_tls) {
			needs_tls(c, mech);
			return;
		}
		c->sasl = sasl_server_new(mech, stream_secure(c->s), lookup, c, &failure);
		if (!c->sasl) {
			if (failure && strcmp(failure, "encryption-required") == 0)
				needs_tls(c, mech);
			else
				sasl_failed(c, failure ? failure : "invalid-mechanism", NULL,
					    false);
			return;
		}
		if (!admitted(c, el)) {
			sasl_server_free(&c->sasl);
			return;
		}
		const char *in = xml_text(el);
		enum sasl_result r = sasl_server_step(c->sasl, in, &out, &failure);
		sasl_result(c, r, out, failure);
	} else if (xml_is(el, XML_NS_SASL, "response")) {
		if (!c->sasl) {
			sasl_failed(c, "malformed-request", "no exchange is under way", false);
			return;
		}
		enum sasl_result r = sasl_server_step(c->sasl, xml_text(el), &out, &failure);
		sasl_result(c, r, out, failure);
	} else if (xml_is(el, XML_NS_SASL, "abort")) {
		sasl_server_free(&c->sasl);
		send_failure(c, "aborted", NULL);
	} else {
		stream_error(c->s, "unsupported-stanza-type",
			     "only SASL elements are expected before authentication");
	}
}

/* ---- binding and stanzas ---- */

/* A stanza of ours (taken, in jabber:client) to the client: once stream
 * management is on it is counted and kept like any other (session.c). */
static void send_stanza(struct c2s *c, struct xml_node *st)
{
	if (c->sess && session_sm(c->sess)) {
		xml_set_ns_deep(st, XML_NS_CLIENT, XML_NS_SERVER);
		session_deliver(c->sess, st);
		return;
	}
	stream_send(c->s, st);
	xml_free(&st);
}

static void iq_reply(struct c2s *c, const struct xml_node *iq, struct xml_node *payload)
{
	struct xml_node *r = xml_new(XML_NS_CLIENT, "iq");
	if (!r) {
		xml_free(&payload);
		return;
	}
	xml_set_attr(r, NULL, "type", "result");
	if (xml_attr(iq, "id"))
		xml_set_attr(r, NULL, "id", xml_attr(iq, "id"));
	if (c->sess)
		xml_set_attr(r, NULL, "to", session_full(c->sess));
	if (payload)
		xml_append_copy(r, payload);
	xml_free(&payload);
	send_stanza(c, r);
}

static void iq_error(struct c2s *c, struct xml_node *iq, const char *type, const char *cond,
		     const char *text)
{
	struct xml_node *e = xml_clone(iq);
	if (!e)
		return;
	xml_remove_attr(e, NULL, "from");
	if (c->sess)
		xml_set_attr(e, NULL, "to", session_full(c->sess));
	xml_set_attr(e, NULL, "type", "error");
	struct xml_node *err = xml_add_child(e, XML_NS_CLIENT, "error");
	if (err) {
		xml_set_attr(err, NULL, "type", type);
		xml_add_child(err, XML_NS_STANZAS_ERR, cond);
		struct xml_node *t = xml_add_child(err, XML_NS_STANZAS_ERR, "text");
		if (t) {
			xml_set_attr(t, XML_NS_XML, "lang", "en");
			xml_add_text(t, text, strlen(text));
		}
	}
	send_stanza(c, e);
}

/* ---- pings to idle clients (XEP-0199) ---- */

/* Seconds of silence before a ping: less than the idle timeout, which
 * would otherwise close the stream first. 0: off. */
static unsigned ping_interval(const struct xmpp_server *srv)
{
	unsigned iv = srv->conf->users_ping_interval;
	unsigned idle = srv->live->gw.stream_inactivity_timeout;
	if (iv && idle && iv >= idle)
		iv = idle / 2 ? idle / 2 : 1;
	return iv;
}

static void ping_send(struct c2s *c)
{
	struct xml_node *iq = xml_new(XML_NS_CLIENT, "iq");
	if (!iq || !xml_add_child(iq, XML_NS_PING, "ping")) {
		xml_free(&iq);
		return;
	}
	xml_set_attr(iq, NULL, "type", "get");
	xml_set_attr(iq, NULL, "id", PING_ID);
	xml_set_attr(iq, NULL, "from", stream_local(c->s));
	xml_set_attr(iq, NULL, "to", session_full(c->sess));
	c->ping_sent = time(NULL);
	send_stanza(c, iq);
	/* An idle moment is a good one to trim the acknowledgement queue. */
	struct sm *sm = session_sm(c->sess);
	if (sm && sm->n)
		session_sm_request(c->sess);
}

/* One sweep over the client streams instead of a timer each: an idle
 * session pays a few bytes for being pinged, not a timer. */
static void ping_sweep(evutil_socket_t fd, short what, void *arg)
{
	struct xmpp_server *srv = arg;
	unsigned iv = ping_interval(srv), timeout = srv->conf->users_ping_timeout;
	time_t now = time(NULL);
	(void)fd;
	(void)what;
	if (!iv)
		return;
	for (struct stream *s = srv->streams, *nx; s; s = nx) {
		nx = stream_next(s);
		if (stream_is_s2s(s) || stream_state(s) != STREAM_READY)
			continue;
		struct c2s *c = stream_role_state(s);
		if (c->state != C2S_BOUND)
			continue;
		time_t heard = stream_heard_at(s);
		if (c->ping_sent && heard >= c->ping_sent) {
			c->ping_sent = 0; /* it spoke: alive */
		} else if (c->ping_sent && now - c->ping_sent >= (time_t)timeout) {
			log_info(stream_ctx(s), "%s did not answer a ping in %u seconds",
				 session_full(c->sess), timeout);
			c->gone = true; /* as if the connection broke */
			stream_error(s, "connection-timeout", "no answer to a ping");
			continue;
		}
		if (!c->ping_sent && now - heard >= (time_t)iv)
			ping_send(c);
	}
}

/* The sweep starts with the first bound session. */
static void ping_start(struct xmpp_server *srv)
{
	unsigned iv = ping_interval(srv), timeout = srv->conf->users_ping_timeout;
	if (!iv || srv->c2s_ping)
		return;
	unsigned period = (iv < timeout ? iv : timeout) / 2;
	if (period < 1)
		period = 1;
	if (period > 30)
		period = 30;
	srv->c2s_ping = event_new(srv->base, -1, EV_PERSIST, ping_sweep, srv);
	struct timeval tv = {(time_t)period, 0};
	if (!srv->c2s_ping || event_add(srv->c2s_ping, &tv) != 0)
		log_warn("c2s", "cannot start pinging idle clients (out of memory)");
}

void c2s_stop(struct xmpp_server *srv)
{
	if (srv->c2s_ping)
		event_free(srv->c2s_ping);
	srv->c2s_ping = NULL;
}

/* ---- stream management (XEP-0198) and client state (XEP-0352) ---- */

static void sm_send(struct c2s *c, struct xml_node *n)
{
	if (n)
		stream_send(c->s, n);
	xml_free(&n);
}

/* <failed/> with a stanza error condition (XEP-0198 §3, §5). */
static void sm_failed(struct c2s *c, const char *condition, const char *text)
{
	struct xml_node *f = sm_element("failed");
	if (f && !xml_add_child(f, XML_NS_STANZAS_ERR, condition))
		xml_free(&f);
	if (f && text) {
		struct xml_node *t = xml_add_child(f, XML_NS_STANZAS_ERR, "text");
		if (t) {
			xml_set_attr(t, XML_NS_XML, "lang", "en");
			xml_add_text(t, text, strlen(text));
		}
	}
	log_info(stream_ctx(c->s), "stream management refused (%s): %s", condition,
		 text ? text : "");
	sm_send(c, f);
}

static void sm_enable(struct c2s *c, const struct xml_node *el)
{
	const struct fg_conf *cf = c->srv->conf;
	if (c->state != C2S_BOUND) {
		sm_failed(c, "unexpected-request", "bind a resource before enabling");
		return;
	}
	if (session_sm(c->sess)) {
		sm_failed(c, "unexpected-request", "stream management is already enabled");
		return;
	}
	bool resume = sm_parse_bool(xml_attr(el, "resume")) && cf->users_resumption_window > 0;
	if (session_sm_enable(c->sess, cf->users_resumption_queue, resume) != FG_OK) {
		sm_failed(c, "resource-constraint", "out of memory");
		return;
	}
	const struct sm *sm = session_sm(c->sess);
	struct xml_node *e = sm_element("enabled");
	if (e && sm->resumable) {
		char max[16];
		snprintf(max, sizeof(max), "%u", cf->users_resumption_window);
		xml_set_attr(e, NULL, "id", sm->id);
		xml_set_attr(e, NULL, "resume", "true");
		xml_set_attr(e, NULL, "max", max);
	}
	log_info(stream_ctx(c->s), "stream management enabled for %s%s", session_full(c->sess),
		 sm->resumable ? ", resumable" : "");
	sm_send(c, e);
}

static void sm_ack_in(struct c2s *c, const struct xml_node *el)
{
	struct sm *sm = session_sm(c->sess);
	uint32_t h = 0;
	if (!sm_parse_h(xml_attr(el, "h"), &h)) {
		stream_error(c->s, "invalid-xml", "<a/> needs h, a count from 0 to 4294967295");
		return;
	}
	if (sm_ack(sm, h) == SM_ACK_TOO_HIGH) {
		/* XEP-0198 §4 (handled-count-too-high) */
		char text[160];
		snprintf(text, sizeof(text), "h='%u' acknowledges stanzas never sent (sent: %u)",
			 (unsigned)h, (unsigned)sm->out_h);
		stream_error(c->s, "undefined-condition", text);
		return;
	}
	/* Room again: offline messages that did not fit come now. */
	if (sm->n < sm->cap / 2)
		offline_room(c->srv, c->sess);
}

/* XEP-0198 §5: a new stream of the same account takes over a session
 * (hibernating, or still on a connection not yet found dead). */
static void sm_resume(struct c2s *c, const struct xml_node *el)
{
	uint32_t h = 0;
	if (c->state != C2S_BIND) {
		sm_failed(c, "unexpected-request",
			  "resume comes after authentication, instead of bind");
		return;
	}
	if (!sm_parse_h(xml_attr(el, "h"), &h)) {
		sm_failed(c, "bad-request", "<resume/> needs h, a count from 0 to 4294967295");
		return;
	}
	struct session *sess = session_by_sm_id(c->srv, xml_attr(el, "previd"));
	/* A token of another account is as unknown as a made-up one. */
	if (!sess || strcmp(session_bare(sess), c->bare) != 0) {
		sm_failed(c, "item-not-found", "no session to resume with that id");
		return;
	}
	struct sm *sm = session_sm(sess);
	if (sm_ack(sm, h) == SM_ACK_TOO_HIGH) {
		sm_failed(c, "undefined-condition", "h acknowledges stanzas never sent");
		return;
	}
	struct stream *old = session_stream(sess);
	if (old) {
		struct c2s *oc = stream_role_state(old);
		assert(oc->sess == sess);
		oc->sess = NULL; /* the old stream closes without ending it */
		stream_discard_queue(old);
		stream_error(old, "conflict", "the session was resumed on another connection");
	}
	session_attach(sess, c->s);
	c->sess = sess;
	c2s_enter(c, C2S_BOUND);
	ping_start(c->srv);
	struct xml_node *r = sm_element_h("resumed", sm->in_h);
	if (r)
		xml_set_attr(r, NULL, "previd", sm->id);
	sm_send(c, r);
	log_info(stream_ctx(c->s),
		 "session %s resumed (the client had %u stanzas, %u to send again)",
		 session_full(sess), (unsigned)h, sm->n);
	/* A new connection starts active (XEP-0352 §4). */
	session_csi(sess, true);
	session_sm_resend(sess);
	offline_room(c->srv, sess);
}

/* Stream-level elements of SM and CSI: true when el was one. */
static bool c2s_nonza(struct c2s *c, const struct xml_node *el)
{
	if (xml_is(el, XML_NS_CSI, NULL)) {
		bool active = strcmp(el->name, "active") == 0;
		if (!active && strcmp(el->name, "inactive") != 0)
			return false;
		/* Before binding there is nothing to hold: it is ignored. */
		if (c->state == C2S_BOUND && session_csi(c->sess, active) != FG_OK)
			stream_error(c->s, "resource-constraint", "out of memory");
		return true;
	}
	if (!xml_is(el, XML_NS_SM, NULL))
		return false;
	const char *n = el->name;
	if (strcmp(n, "enable") == 0) {
		sm_enable(c, el);
	} else if (strcmp(n, "resume") == 0) {
		sm_resume(c, el);
	} else if (strcmp(n, "r") == 0 || strcmp(n, "a") == 0) {
		struct sm *sm = c->state == C2S_BOUND ? session_sm(c->sess) : NULL;
		if (!sm)
			sm_failed(c, "unexpected-request", "stream management is not enabled");
		else if (n[0] == 'r')
			sm_send(c, sm_element_h("a", sm->in_h));
		else
			sm_ack_in(c, el);
	} else {
		return false;
	}
	return true;
}

/* RFC 6120 §7: the client asks for a resource (or gets one made up); a
 * session already bound to it is replaced (§7.7.2.2). */
static void bind_resource(struct c2s *c, struct xml_node *iq)
{
	const struct xml_node *b = xml_child(iq, XML_NS_BIND, "bind");
	const struct xml_node *rn = b ? xml_child(b, XML_NS_BIND, "resource") : NULL;
	const char *want = rn ? xml_text(rn) : "";
	char res[1100], full[2200];
	if (!*want) {
		unsigned char rnd[8];
		if (RAND_bytes(rnd, sizeof(rnd)) != 1)
			memset(rnd, 7, sizeof(rnd));
		snprintf(res, sizeof(res), "fedgate-");
		for (size_t i = 0; i < sizeof(rnd); i++)
			snprintf(res + strlen(res), sizeof(res) - strlen(res), "%02x", rnd[i]);
		want = res;
	}
	struct jid j = {0};
	snprintf(full, sizeof(full), "%s/%s", c->bare, want);
	if (strlen(want) > 1023 || jid_parse(full, strlen(full), &j) != JID_OK || !j.resource) {
		iq_error(c, iq, "modify", "bad-request",
			 "the resource is not valid (RFC 7622 resourceprep)");
		jid_clear(&j);
		return;
	}
	struct session *old = session_find(c->srv, c->bare, j.resource);
	if (old) {
		log_info(stream_ctx(c->s), "resource %s taken over by a new session",
			 session_full(old));
		session_end(old);
		session_close(old, "conflict", "replaced by a new session for the same resource");
	}
	char *fulls = jid_to_string(&j, false);
	c->sess = fulls ? session_new(c->srv, c->s, c->bare, j.resource, fulls) : NULL;
	free(fulls);
	jid_clear(&j);
	if (!c->sess || session_register(c->sess) != FG_OK) {
		session_free(&c->sess);
		stream_error(c->s, "resource-constraint", "out of memory");
		return;
	}
	c2s_enter(c, C2S_BOUND);
	ping_start(c->srv);
	const char *me = session_full(c->sess);
	struct xml_node *rb = xml_new(XML_NS_BIND, "bind");
	struct xml_node *jn = rb ? xml_add_child(rb, XML_NS_BIND, "jid") : NULL;
	if (jn)
		xml_add_text(jn, me, strlen(me));
	iq_reply(c, iq, rb);
	log_info(stream_ctx(c->s), "session bound: %s", me);
}

/* RFC 6120 §8.1.2.1: the server stamps from; a client may name its own
 * full or bare JID, anything else is a forgery. */
static bool stamp_from(struct c2s *c, struct xml_node *st)
{
	const char *from = xml_attr(st, "from");
	if (from && *from) {
		struct jid j = {0};
		bool ok = jid_parse(from, strlen(from), &j) == JID_OK;
		char *bare = ok ? jid_to_string(&j, true) : NULL;
		ok = bare && strcmp(bare, c->bare) == 0 &&
		     (!j.resource || strcmp(j.resource, session_resource(c->sess)) == 0);
		free(bare);
		jid_clear(&j);
		if (!ok)
			return false;
	}
	xml_set_attr(st, NULL, "from", session_full(c->sess));
	return true;
}

static void c2s_stanza(struct c2s *c, struct xml_node *st)
{
	if (c2s_nonza(c, st)) {
		xml_free(&st);
		return;
	}
	bool is_iq = xml_is(st, XML_NS_CLIENT, "iq");
	if (!is_iq && !xml_is(st, XML_NS_CLIENT, "message") &&
	    !xml_is(st, XML_NS_CLIENT, "presence")) {
		xml_free(&st);
		stream_error(c->s, "unsupported-stanza-type",
			     "only message, presence and iq in jabber:client are stanzas here");
		return;
	}
	stream_count_stanza(c->s, true);
	struct sm *sm = c->sess ? session_sm(c->sess) : NULL;
	if (sm)
		sm->in_h++; /* mod 2^32 */
	const char *type = xml_attr(st, "type");
	if (is_iq && type && strcmp(type, "set") == 0 && xml_child(st, XML_NS_BIND, "bind")) {
		if (c->state != C2S_BIND)
			iq_error(c, st, "cancel", "not-allowed", "this stream is already bound");
		else
			bind_resource(c, st);
		xml_free(&st);
		return;
	}
	if (c->state != C2S_BOUND) {
		xml_free(&st);
		stream_error(c->s, "not-authorized", "bind a resource before sending stanzas");
		return;
	}
	if (is_iq && type && strcmp(type, "set") == 0 && xml_child(st, XML_NS_SESSION, "session")) {
		iq_reply(c, st, NULL);
		xml_free(&st);
		return;
	}
	/* The answer to our ping is ours: it only showed the client alive. */
	const char *id = xml_attr(st, "id"), *to = xml_attr(st, "to");
	if (is_iq && type && (strcmp(type, "result") == 0 || strcmp(type, "error") == 0) && id &&
	    strcmp(id, PING_ID) == 0 && (!to || strcmp(to, stream_local(c->s)) == 0)) {
		c->ping_sent = 0;
		xml_free(&st);
		return;
	}
	if (!stamp_from(c, st)) {
		xml_free(&st);
		stream_error(c->s, "invalid-from",
			     "the stanza's from is not your own address; leave it out and the "
			     "server sets it");
		return;
	}
	xml_set_ns_deep(st, XML_NS_CLIENT, XML_NS_SERVER);
	router_from_client(c->srv, c->sess, st);
}

/* ---- the c2s role of the stream core ---- */

static void *role_attach(struct xmpp_server *srv, struct stream *s)
{
	return c2s_new(srv, s);
}

static void role_detach(void *rs)
{
	struct c2s *c = rs;
	c2s_free(&c);
}

static bool role_header(struct stream *s, void *rs)
{
	(void)s;
	(void)rs;
	return true;
}

static int role_features(struct stream *s, void *rs, struct xml_node *f)
{
	return c2s_features(rs, f, stream_secure(s), stream_flags(s) & SF_AUTHED);
}

/* SASL before authentication (over plaintext with require_tls on, an
 * <auth/> gets <encryption-required/>); everything else is the stream
 * core's to refuse. */
static bool role_negotiate(struct stream *s, void *rs, const struct xml_node *el)
{
	struct c2s *c = rs;
	if (!(stream_flags(s) & SF_AUTHED) && xml_is(el, XML_NS_SASL, NULL)) {
		c2s_negotiate(c, el);
		return true;
	}
	return false;
}

static bool role_tls_required(const struct stream *s, const void *rs)
{
	const struct c2s *c = rs;
	(void)s;
	return c->srv->conf->c2s_require_tls;
}

static void role_stanza(struct stream *s, void *rs, struct xml_node *st)
{
	(void)s;
	c2s_stanza(rs, st);
}

static void role_closing(struct stream *s, void *rs)
{
	(void)s;
	c2s_end(rs);
}

/* The client read what waited: offline messages that did not fit come. */
static void role_drained(struct stream *s, void *rs)
{
	struct c2s *c = rs;
	(void)s;
	if (c->state == C2S_BOUND && c->sess)
		offline_room(c->srv, c->sess);
}

/* The connection went without a close from either side. */
static void role_closed(struct stream *s, void *rs, const char *reason)
{
	struct c2s *c = rs;
	(void)s;
	(void)reason;
	if (c->state != C2S_ENDED) {
		c->gone = true;
		c2s_end(c);
	}
}

static unsigned role_idle_timeout(const struct stream *s, const void *rs)
{
	const struct c2s *c = rs;
	(void)s;
	return c->srv->live->gw.stream_inactivity_timeout;
}

static unsigned role_stanza_limit(const struct fg_conf *conf)
{
	return conf->c2s_stanza_size;
}

const struct stream_role c2s_role = {
	.name = "c2s",
	.direction = "c2s",
	.content_ns = XML_NS_CLIENT,
	.s2s = false,
	.attach = role_attach,
	.detach = role_detach,
	.on_header = role_header,
	.features = role_features,
	.negotiate = role_negotiate,
	.tls_required = role_tls_required,
	.stanza = role_stanza,
	.closing = role_closing,
	.closed = role_closed,
	.drained = role_drained,
	.idle_timeout = role_idle_timeout,
	.stanza_limit = role_stanza_limit,
};

#include "probe.h"

#include "conf.h"
#include "conn.h"
#include "dane.h"
#include "dns.h"
#include "fg.h"
#include "jid.h"
#include "live.h"
#include "log.h"
#include "policy.h"
#include "s2s_out.h"
#include "tls.h"
#include "xml.h"
#include "xmlstream.h"
#include "xmpp.h"

#include <assert.h>
#include <event2/event.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

enum probe_state {
	P_DNS,
	P_CONNECT,
	P_HEADER,	/* our header sent, waiting for theirs */
	P_FEATURES,	/* before TLS */
	P_STARTTLS,	/* <starttls/> sent */
	P_TLS,		/* handshaking */
	P_HEADER_TLS,	/* header sent again over TLS */
	P_FEATURES_TLS, /* after TLS */
	P_SASL,		/* <auth mechanism='EXTERNAL'/> sent */
	P_DONE,		/* answered; only the close is left */
};

static const char *const state_words[] = {
	[P_DNS] = "looking up DNS",
	[P_CONNECT] = "connecting",
	[P_HEADER] = "waiting for the stream header",
	[P_FEATURES] = "waiting for the stream features",
	[P_STARTTLS] = "waiting for the answer to STARTTLS",
	[P_TLS] = "in the TLS handshake",
	[P_HEADER_TLS] = "waiting for the stream header after TLS",
	[P_FEATURES_TLS] = "waiting for the stream features after TLS",
	[P_SASL] = "waiting for the answer to SASL EXTERNAL",
	[P_DONE] = "finished",
};

/* What a finding is, once the probe got that far. */
enum seen { SEEN_UNKNOWN = 0, SEEN_NO, SEEN_YES };

struct probe {
	struct xmpp_server *srv;
	probe_reply_fn reply;
	void *ud;
	char domain[DNS_NAME_MAX + 1], local[DNS_NAME_MAX + 1];
	struct partner *settings; /* what the verdict is for */
	const char *settings_from;
	struct timespec t0;
	enum probe_state state;
	bool answered;

	struct xml_buf steps;
	json_t *result;
	struct event *deadline;

	/* DNS: both SRV names reported, then the targets to connect to */
	struct dns_query *q_srv, *q_srvs, *q_res;
	unsigned dns_pending;
	char line_srv[800], line_srvs[800], res_err[800];
	struct dns_target *targets;
	size_t ntargets, next_target;
	bool targets_dnssec;
	bool direct; /* the current target is Direct TLS (XEP-0368) */
	enum dns_via via;
	/* DANE: the TLSA lookups for the targets, and the records of the
	 * target being tried, which its certificate is checked against */
	struct dane_lookup *dl;
	struct dane_result *dane;
	const struct dane_host *dane_host;

	struct conn *conn;
	struct xmlstream *xs;

	/* findings */
	enum seen features, tls_offered, tls_required, tls_ok, cert_ok, db_before;
	enum seen features_tls, external, sasl_ok, db_after;
	unsigned connect_s; /* the current target's share of the time left */
	char sasl_failure[64];
	struct probe *next;
};

static struct probe *running;

static void step(struct probe *p, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void step(struct probe *p, const char *fmt, ...)
{
	char line[1600];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(line, sizeof(line), fmt, ap);
	va_end(ap);
	log_info("probe", "%s: %s", p->domain, line);
	if (p->steps.len)
		xml_buf_puts(&p->steps, "\n");
	xml_buf_puts(&p->steps, line);
}

static void enter(struct probe *p, enum probe_state st)
{
	log_debug("probe", "%s: %s -> %s", p->domain, state_words[p->state], state_words[st]);
	p->state = st;
}

static void unlink_probe(struct probe *p)
{
	for (struct probe **pp = &running; *pp; pp = &(*pp)->next) {
		if (*pp == p) {
			*pp = p->next;
			return;
		}
	}
}

static void probe_free(struct probe *p)
{
	unlink_probe(p);
	dns_cancel(&p->q_srv);
	dns_cancel(&p->q_srvs);
	dns_cancel(&p->q_res);
	dane_lookup_cancel(&p->dl);
	free(p->dane);
	if (p->deadline)
		event_free(p->deadline);
	xmlstream_free(&p->xs);
	xml_buf_free(&p->steps);
	json_decref(p->result);
	partner_free(&p->settings);
	free(p->targets);
	free(p);
}

/* ---- the verdict ---- */

static const char *seen_word(enum seen s, const char *yes, const char *no)
{
	return s == SEEN_YES ? yes : s == SEEN_NO ? no : "unknown (the probe did not get that far)";
}

/* What s2s_out would do with these allowed methods against what the probe
 * saw (its on_features, step by step): the method that would authenticate,
 * or 0 with why in buf. A finding the probe never reached makes the answer
 * unknown, said so in buf. */
static enum auth_method simulate(const struct probe *p, unsigned methods, char *buf, size_t len)
{
	if (p->features != SEEN_YES) {
		snprintf(buf, len, "unknown: the probe got no stream features");
		return 0;
	}
	/* Over Direct TLS the plaintext features were never seen: s2s_out
	 * takes the same TLS path, or, without a TLS method, leaves the
	 * Direct TLS targets out. */
	if (p->direct && !(methods & (AUTH_SASL_TLS | AUTH_TLS_DIALBACK))) {
		snprintf(buf, len,
			 "unknown: the probe used Direct TLS; without TLS the _xmpp-server "
			 "targets would be used");
		return 0;
	}
	enum s2s_out_next next =
		p->direct
			? S2S_NEXT_STARTTLS
			: s2s_out_choose(methods, false, p->tls_offered == SEEN_YES, false, false);
	bool secure = next == S2S_NEXT_STARTTLS;
	if (secure) {
		if (p->tls_ok != SEEN_YES || p->features_tls != SEEN_YES) {
			snprintf(buf, len, "%s",
				 p->tls_ok == SEEN_NO ? "TLS failed"
						      : "unknown: TLS was not finished");
			return 0;
		}
		next = s2s_out_choose(methods, true, true, p->cert_ok == SEEN_YES,
				      p->external == SEEN_YES);
	}
	switch (next) {
	case S2S_NEXT_SASL:
		/* s2s_out does not fall back to dialback after a refusal */
		if (p->sasl_ok == SEEN_YES)
			return AUTH_SASL_TLS;
		snprintf(buf, len, "%s",
			 p->sasl_ok == SEEN_NO ? "SASL EXTERNAL is offered but refused our "
						 "certificate"
					       : "unknown: SASL EXTERNAL got no answer");
		return 0;
	case S2S_NEXT_DIALBACK:
		/* Beyond s2s_out's choice: what the offer says of the outcome. */
		if (secure) {
			if (p->db_after == SEEN_YES)
				return AUTH_TLS_DIALBACK;
			snprintf(buf, len,
				 "dialback is not offered after TLS (a server older than "
				 "XEP-0220 2.4 may accept it without saying so)");
			return 0;
		}
		if (p->tls_required == SEEN_YES) {
			snprintf(buf, len, "the server requires STARTTLS");
			return 0;
		}
		if (p->db_before == SEEN_YES)
			return AUTH_TCP_DIALBACK;
		snprintf(buf, len, "dialback is not offered without TLS");
		return 0;
	case S2S_NEXT_FAIL_CERT:
		snprintf(buf, len,
			 "the certificate cannot be trusted for SASL EXTERNAL and no "
			 "other method is allowed");
		return 0;
	case S2S_NEXT_FAIL_NO_EXTERNAL:
		snprintf(buf, len, "SASL EXTERNAL is not offered and no other method is allowed");
		return 0;
	case S2S_NEXT_FAIL_NO_TLS:
		snprintf(buf, len, "no STARTTLS offered but the settings require TLS");
		return 0;
	case S2S_NEXT_STARTTLS: break;
	}
	assert(!"s2s_out_choose asks for STARTTLS on a secure stream");
	return 0;
}

/* Lower is more secure: the method used, then the weakest fallback the
 * row allows (a row that allows less is the safer one to choose). */
static int rank(enum auth_method used, unsigned methods)
{
	int weakest = (methods & AUTH_TCP_DIALBACK) ? 2 : (methods & AUTH_TLS_DIALBACK) ? 1 : 0;
	int m = used == AUTH_SASL_TLS ? 0 : used == AUTH_TLS_DIALBACK ? 1 : 2;
	return m * 3 + weakest;
}

static void verdict(struct probe *p, bool *works)
{
	json_t *r = p->result;
	/* The three methods on their own. */
	char why[200];
	json_t *methods = json_object();
	static const enum auth_method all[] = {AUTH_SASL_TLS, AUTH_TLS_DIALBACK, AUTH_TCP_DIALBACK};
	if (p->features != SEEN_YES) {
		step(p, "methods with this server: unknown (the probe got no stream features)");
		*works = false;
		json_object_set_new(r, "methods", methods);
		json_object_set_new(r, "rows", json_array());
		json_object_set_new(r, "settings",
				    json_pack("{s:s, s:b}", "from", p->settings_from, "works", 0));
		return;
	}
	step(p, "methods with this server:");
	for (size_t i = 0; i < FG_ARRAY_LEN(all); i++) {
		enum auth_method got = simulate(p, all[i], why, sizeof(why));
		const char *word =
			got ? (all[i] == AUTH_SASL_TLS ? "works"
						       : "offered (the key itself is not "
							 "checked by a probe)")
			    : why;
		step(p, "  %s: %s", policy_method_name(all[i]), word);
		json_object_set_new(methods, policy_method_name(all[i]), json_string(word));
	}
	json_object_set_new(r, "methods", methods);

	/* The settings asked about. */
	const struct partner *s = p->settings;
	unsigned allowed = policy_allowed_methods(s);
	char names[128];
	policy_methods_string(allowed, names, sizeof(names));
	enum auth_method got = simulate(p, allowed, why, sizeof(why));
	*works = got != 0;
	if (got)
		step(p,
		     "with %s (tls %s, sasl %s, dialback %s: row %d, allows %s): would "
		     "authenticate with %s",
		     p->settings_from, policy_negotiation_name(s->tls),
		     policy_negotiation_name(s->sasl), s->dialback ? "true" : "false",
		     policy_matrix_row(s), names, policy_method_name(got));
	else
		step(p, "with %s (tls %s, sasl %s, dialback %s: row %d, allows %s): would fail: %s",
		     p->settings_from, policy_negotiation_name(s->tls),
		     policy_negotiation_name(s->sasl), s->dialback ? "true" : "false",
		     policy_matrix_row(s), names, why);
	json_object_set_new(r, "settings",
			    json_pack("{s:s, s:s, s:s, s:b, s:i, s:s, s:b}", "from",
				      p->settings_from, "tls", policy_negotiation_name(s->tls),
				      "sasl", policy_negotiation_name(s->sasl), "dialback",
				      s->dialback, "row", policy_matrix_row(s), "method",
				      got ? policy_method_name(got) : "none", "works", got != 0));
	if (!got)
		json_object_set_new(json_object_get(r, "settings"), "why", json_string(why));

	/* Every valid row of the matrix, the working ones most secure first. */
	struct row {
		int row, rank;
		enum auth_method used;
		struct partner q;
	} rows[18];
	size_t n = 0;
	for (int sasl = NEG_REQUIRED; sasl <= NEG_NOT_SUPPORTED; sasl++)
		for (int tls = NEG_REQUIRED; tls <= NEG_NOT_SUPPORTED; tls++)
			for (int db = 1; db >= 0; db--) {
				struct partner q = {.tls = (enum negotiation)tls,
						    .sasl = (enum negotiation)sasl,
						    .dialback = db};
				unsigned m = policy_allowed_methods(&q);
				/* the rows policy_check rejects */
				if (!m || (tls == NEG_NOT_SUPPORTED && sasl != NEG_NOT_SUPPORTED))
					continue;
				enum auth_method u = simulate(p, m, why, sizeof(why));
				if (!u)
					continue;
				assert(n < FG_ARRAY_LEN(rows));
				rows[n++] = (struct row){policy_matrix_row(&q), rank(u, m), u, q};
			}
	for (size_t i = 1; i < n; i++) /* stable insertion sort by rank */
		for (size_t j = i; j > 0 && rows[j].rank < rows[j - 1].rank; j--) {
			struct row t = rows[j];
			rows[j] = rows[j - 1];
			rows[j - 1] = t;
		}
	json_t *jr = json_array();
	if (n == 0)
		step(p, "no row of the negotiation matrix would work with %s", p->domain);
	else
		step(p, "matrix rows that would work with %s, most secure first:", p->domain);
	for (size_t i = 0; i < n; i++) {
		const struct partner *q = &rows[i].q;
		step(p, "  row %d: tls %s, sasl %s, dialback %s -> %s", rows[i].row,
		     policy_negotiation_name(q->tls), policy_negotiation_name(q->sasl),
		     q->dialback ? "true" : "false", policy_method_name(rows[i].used));
		json_array_append_new(jr, json_pack("{s:i, s:s, s:s, s:b, s:s}", "row", rows[i].row,
						    "tls", policy_negotiation_name(q->tls), "sasl",
						    policy_negotiation_name(q->sasl), "dialback",
						    q->dialback, "method",
						    policy_method_name(rows[i].used)));
	}
	json_object_set_new(r, "rows", jr);
}

/* Answers the caller once; the connection, if any, closes politely and
 * frees the probe from on_closed. */
static void finish(struct probe *p)
{
	if (p->answered)
		return;
	p->answered = true;
	dns_cancel(&p->q_srv);
	dns_cancel(&p->q_srvs);
	dns_cancel(&p->q_res);
	dane_lookup_cancel(&p->dl);
	if (p->deadline)
		evtimer_del(p->deadline);
	bool complete = p->state == P_DONE;
	enter(p, P_DONE);
	json_t *r0 = p->result;
	json_object_set_new(r0, "starttls",
			    json_string(p->direct
						? "not used (Direct TLS)"
						: seen_word(p->tls_offered,
							    p->tls_required == SEEN_YES ? "required"
											: "offered",
							    "not offered")));
	json_object_set_new(
		r0, "sasl_external",
		json_string(p->sasl_ok != SEEN_UNKNOWN
				    ? seen_word(p->sasl_ok, "accepted", "refused")
				    : seen_word(p->features_tls == SEEN_YES ? p->external
									    : SEEN_UNKNOWN,
						"offered", "not offered")));
	json_object_set_new(
		r0, "dialback",
		json_string(seen_word(p->features_tls == SEEN_YES ? p->db_after : p->db_before,
				      "offered", "not offered")));
	bool works = false;
	verdict(p, &works);

	struct timespec t1;
	clock_gettime(CLOCK_MONOTONIC, &t1);
	long ms = (t1.tv_sec - p->t0.tv_sec) * 1000 + (t1.tv_nsec - p->t0.tv_nsec) / 1000000;
	json_t *r = p->result, *steps = json_array();
	p->result = NULL;
	json_object_set_new(r, "elapsed_ms", json_integer(ms));
	json_object_set_new(r, "complete", json_boolean(complete));
	char *copy = p->steps.data && !p->steps.oom ? strndup(p->steps.data, p->steps.len) : NULL;
	char *save = NULL;
	for (char *l = copy ? strtok_r(copy, "\n", &save) : NULL; l;
	     l = strtok_r(NULL, "\n", &save))
		json_array_append_new(steps, json_string(l));
	free(copy);
	json_object_set_new(r, "steps", steps);
	json_t *body = json_object();
	json_object_set_new(body, "result", r);
	json_object_set_new(body, "errors", json_array());
	json_object_set_new(body, "warnings", json_array());
	char msg[600];
	snprintf(msg, sizeof(msg),
		 works ? "probe of %s: the settings probed would work (%ld ms)"
		       : "probe of %s: the settings probed would not work (%ld ms)",
		 p->domain, ms);
	json_object_set_new(body, "message", json_string(msg));
	p->reply(p->ud, works ? PROBE_OK : PROBE_FAILED, body);
	if (p->conn) {
		if (p->xs)
			conn_write(p->conn, "</stream:stream>", 16);
		conn_close(p->conn, "probe finished"); /* on_closed frees p */
	} else {
		probe_free(p);
	}
}

/* ---- the stream ---- */

static void send_str(struct probe *p, const char *s)
{
	conn_write(p->conn, s, strlen(s));
}

static void send_header(struct probe *p, enum probe_state next)
{
	s2s_out_write_header(p->conn, p->local, p->domain);
	enter(p, next);
}

/* "starttls (required), SASL mechanisms EXTERNAL, dialback" */
static void describe_features(const struct xml_node *f, char *buf, size_t len, json_t *list)
{
	buf[0] = '\0';
	for (const struct xml_node *c = xml_first_element(f); c; c = xml_next_element(c)) {
		char one[300];
		if (xml_is(c, XML_NS_TLS, "starttls")) {
			snprintf(one, sizeof(one), "starttls%s",
				 xml_child(c, XML_NS_TLS, "required") ? " (required)" : "");
		} else if (xml_is(c, XML_NS_SASL, "mechanisms")) {
			snprintf(one, sizeof(one), "SASL mechanisms");
			for (const struct xml_node *m = xml_first_element(c); m;
			     m = xml_next_element(m))
				fg_appendf(one, sizeof(one), " %s", xml_text(m));
		} else if (xml_is(c, XML_NS_DIALBACK_FEATURE, "dialback")) {
			snprintf(one, sizeof(one), "dialback");
		} else if (xml_is(c, XML_NS_BIDI_FEATURE, "bidi")) {
			snprintf(one, sizeof(one), "bidi (XEP-0288)");
		} else {
			snprintf(one, sizeof(one), "%s", c->name);
		}
		fg_appendf(buf, len, "%s%s", buf[0] ? ", " : "", one);
		json_array_append_new(list, json_string(one));
	}
	if (!buf[0])
		snprintf(buf, len, "none");
}

static bool offers_external(const struct xml_node *f)
{
	const struct xml_node *mechs = xml_child(f, XML_NS_SASL, "mechanisms");
	for (const struct xml_node *m = mechs ? xml_first_element(mechs) : NULL; m;
	     m = xml_next_element(m))
		if (xml_is(m, XML_NS_SASL, "mechanism") && strcmp(xml_text(m), "EXTERNAL") == 0)
			return true;
	return false;
}

static void on_features(struct probe *p, const struct xml_node *f)
{
	char text[1000];
	json_t *list = json_array();
	bool tls = p->state == P_FEATURES_TLS;
	describe_features(f, text, sizeof(text), list);
	json_object_set_new(p->result, tls ? "features_after_tls" : "features_before_tls", list);
	step(p, "stream features %s: %s", tls ? "after TLS" : "before TLS", text);
	bool db = xml_child(f, XML_NS_DIALBACK_FEATURE, "dialback") != NULL;
	if (!tls) {
		p->features = SEEN_YES;
		const struct xml_node *st = xml_child(f, XML_NS_TLS, "starttls");
		p->tls_offered = st ? SEEN_YES : SEEN_NO;
		p->tls_required = st && xml_child(st, XML_NS_TLS, "required") ? SEEN_YES : SEEN_NO;
		p->db_before = db ? SEEN_YES : SEEN_NO;
		p->external = offers_external(f) ? SEEN_YES : SEEN_NO; /* until TLS */
		step(p, "STARTTLS: %s",
		     !st			   ? "not offered"
		     : p->tls_required == SEEN_YES ? "offered and required"
						   : "offered (optional)");
		if (!st) {
			p->tls_ok = SEEN_NO;
			step(p, "dialback: %s", db ? "offered" : "not offered");
			enter(p, P_DONE);
			finish(p);
			return;
		}
		send_str(p, "<starttls xmlns='" XML_NS_TLS "'/>");
		enter(p, P_STARTTLS);
		return;
	}
	p->features_tls = SEEN_YES;
	p->db_after = db ? SEEN_YES : SEEN_NO;
	p->external = offers_external(f) ? SEEN_YES : SEEN_NO;
	step(p, "dialback: %s", db ? "offered" : "not offered");
	if (p->external == SEEN_NO) {
		step(p,
		     "SASL EXTERNAL: not offered after TLS (the server does not accept our "
		     "certificate for %s, or offers no SASL on server-to-server streams)",
		     p->local);
		enter(p, P_DONE);
		finish(p);
		return;
	}
	/* XEP-0178: "=" asks for the identity our certificate shows. */
	send_str(p, "<auth xmlns='" XML_NS_SASL "' mechanism='EXTERNAL'>=</auth>");
	step(p, "SASL EXTERNAL: offered; trying it with our certificate for %s", p->local);
	enter(p, P_SASL);
}

static void on_element(struct probe *p, struct xml_node *el)
{
	if (xml_is(el, XML_NS_STREAM, "error")) {
		const struct xml_node *c = xml_first_element(el);
		const struct xml_node *t = xml_child(el, XML_NS_STREAMS_ERR, "text");
		step(p, "%s closed the stream with <%s/>%s%s", p->domain, c ? c->name : "?",
		     t ? ": " : "", t ? xml_text(t) : "");
		finish(p);
		return;
	}
	switch (p->state) {
	case P_FEATURES:
	case P_FEATURES_TLS:
		if (xml_is(el, XML_NS_STREAM, "features")) {
			on_features(p, el);
			return;
		}
		break;
	case P_STARTTLS:
		if (xml_is(el, XML_NS_TLS, "proceed")) {
			dane_client_arm(p->srv->tls_client, p->dane_host, p->domain);
			int rc = conn_start_tls_client(p->conn, p->srv->tls_client, p->domain);
			dane_client_arm(p->srv->tls_client, NULL, NULL);
			if (rc != FG_OK) {
				p->tls_ok = SEEN_NO;
				step(p, "cannot start TLS");
				finish(p);
				return;
			}
			enter(p, P_TLS);
			conn_set_timer(p->conn, p->srv->conf->timeout_tls_handshake);
			return;
		}
		if (xml_is(el, XML_NS_TLS, "failure")) {
			p->tls_ok = SEEN_NO;
			step(p, "%s refused STARTTLS", p->domain);
			finish(p);
			return;
		}
		break;
	case P_SASL:
		if (xml_is(el, XML_NS_SASL, "success")) {
			p->sasl_ok = SEEN_YES;
			step(p, "SASL EXTERNAL accepted by %s", p->domain);
			enter(p, P_DONE);
			finish(p);
			return;
		}
		if (xml_is(el, XML_NS_SASL, "failure")) {
			const struct xml_node *c = xml_first_element(el);
			const struct xml_node *t = xml_child(el, XML_NS_SASL, "text");
			p->sasl_ok = SEEN_NO;
			step(p, "%s refused SASL EXTERNAL: <%s/>%s%s", p->domain, c ? c->name : "?",
			     t ? ": " : "", t ? xml_text(t) : "");
			enter(p, P_DONE);
			finish(p);
			return;
		}
		break;
	default: break;
	}
	step(p, "unexpected <%s/> from %s while %s", el->name, p->domain, state_words[p->state]);
	finish(p);
}

static int on_event(void *ud, struct xs_event *ev)
{
	struct probe *p = ud;
	if (p->answered) {
		if (ev->type == XS_EV_STANZA)
			xml_free(&ev->node);
		return XS_STOP;
	}
	switch (ev->type) {
	case XS_EV_OPEN:
		if (strcmp(ev->content_ns, XML_NS_SERVER) != 0) {
			step(p, "%s answered with the content namespace '%s'", p->domain,
			     ev->content_ns);
			finish(p);
			break;
		}
		enter(p, p->state == P_HEADER ? P_FEATURES : P_FEATURES_TLS);
		break;
	case XS_EV_STANZA:
		on_element(p, ev->node);
		xml_free(&ev->node);
		if (p->state == P_TLS)
			return XS_STOP; /* the next bytes are TLS */
		break;
	case XS_EV_CLOSE:
		step(p, "%s closed the stream", p->domain);
		finish(p);
		break;
	case XS_EV_ERROR:
		step(p, "%s sent bad XML: <%s/> %s", p->domain, ev->condition, ev->text);
		finish(p);
		break;
	}
	return p->answered ? XS_STOP : XS_CONTINUE;
}

static size_t on_data(void *ud, const char *data, size_t len)
{
	struct probe *p = ud;
	size_t used = 0;
	if (!p->answered && p->state != P_TLS && p->xs)
		xmlstream_feed(p->xs, data, len, &used);
	return len;
}

/* The certificate against the TLSA records, in s2s_out's terms. */
static void dane_report_tls(struct probe *p, SSL *ssl, const struct tls_verdict *v)
{
	char spki[2 * 32 + 1];
	dane_spki_sha256_hex(SSL_get0_peer_certificate(ssl), spki, sizeof(spki));
	json_t *dj = json_object_get(p->result, "dane");
	if (spki[0])
		step(p, "DANE: the certificate's SPKI SHA-256 is %s (TLSA record: 3 1 1 %s)", spki,
		     spki);
	if (!p->dane_host)
		return;
	int usable = dane_ssl_usable(ssl);
	const char *match = v->dane_ok ? "yes" : usable == 0 ? "no usable records" : "no";
	if (v->dane_ok)
		step(p, "DANE: the certificate matches a TLSA record at %s", p->dane_host->qname);
	else if (usable == 0)
		step(p, "DANE: no TLSA record at %s is usable", p->dane_host->qname);
	else
		step(p,
		     "DANE mismatch: no TLSA record at %s matches the certificate (SPKI SHA-256 "
		     "%s); outbound streams to %s with dane opportunistic or required are refused",
		     p->dane_host->qname, spki[0] ? spki : "?", p->domain);
	if (dj)
		json_object_set_new(dj, "match", json_string(match));
}

static void on_tls(void *ud)
{
	struct probe *p = ud;
	SSL *ssl = conn_ssl(p->conn);
	char desc[128], details[300];
	struct tls_verdict v;
	tls_describe(ssl, desc, sizeof(desc));
	p->tls_ok = SEEN_YES;
	int ok = tls_peer_verify(ssl, p->domain, &v);
	/* The pins being tried, as a stream with these settings would. */
	if (p->settings && p->settings->pins.n > 0)
		ok = tls_verdict_pins(&v, p->domain, &p->settings->pins);
	p->cert_ok = ok == FG_OK ? SEEN_YES : SEEN_NO;
	tls_peer_details(ssl, details, sizeof(details));
	/* test-im's words (s2s_out.c on_tls), then what only a probe adds */
	step(p, "TLS: %s; certificate of %s: %s", desc, p->domain, v.text);
	step(p, "certificate of %s: %s", p->domain, details);
	json_object_set_new(p->result, "tls", json_string(desc));
	json_object_set_new(p->result, "certificate",
			    json_pack("{s:s, s:b, s:s, s:s, s:s, s:s}", "verdict", v.text,
				      "trusted", p->cert_ok == SEEN_YES, "details", details, "pin",
				      v.spki, "eku", v.eku, "pinned",
				      v.pin == TLS_PIN_MATCH	  ? "match"
				      : v.pin == TLS_PIN_MISMATCH ? "mismatch"
								  : "no pins"));
	dane_report_tls(p, ssl, &v);
	xmlstream_reset(p->xs);
	conn_set_timer(p->conn, p->srv->conf->timeout_authentication);
	send_header(p, P_HEADER_TLS);
}

static void on_timer(void *ud)
{
	struct probe *p = ud;
	if (p->state == P_CONNECT) {
		/* on_closed reports this target and tries the next */
		char why[80];
		snprintf(why, sizeof(why), "connect timed out after %u s", p->connect_s);
		conn_close(p->conn, why);
		return;
	}
	step(p, "%s did not answer in time (while %s)", p->domain, state_words[p->state]);
	finish(p);
}

static void connect_next(struct probe *p);

static void on_connected(void *ud)
{
	struct probe *p = ud;
	const struct dns_target *t = &p->targets[p->next_target - 1];
	step(p, "connected to %s [%s]:%u%s", t->host, t->addr_text, t->port,
	     t->direct_tls ? " (Direct TLS)" : "");
	json_array_append_new(json_object_get(p->result, "tcp"),
			      json_pack("{s:s, s:s, s:i, s:s, s:b}", "host", t->host, "address",
					t->addr_text, "port", t->port, "outcome", "connected",
					"direct_tls", t->direct_tls));
	const struct fg_conf *cf = p->srv->conf;
	struct xs_limits lim = {.stanza_bytes = cf->preauth_stanza_size,
				.depth = cf->element_depth,
				.attributes = cf->element_attributes};
	p->xs = xmlstream_new(&lim, on_event, p);
	if (!p->xs) {
		step(p, "out of memory");
		finish(p);
		return;
	}
	conn_set_timer(p->conn, cf->timeout_authentication);
	p->direct = t->direct_tls;
	json_object_set_new(p->result, "direct_tls", json_boolean(p->direct));
	if (p->direct) {
		/* As s2s_out does: TLS at once, SNI and ALPN, no STARTTLS. */
		dane_client_arm(p->srv->tls_client, p->dane_host, p->domain);
		int rc = conn_connect_tls(p->conn, p->srv->tls_client, p->domain, "xmpp-server");
		dane_client_arm(p->srv->tls_client, NULL, NULL);
		if (rc != FG_OK) {
			p->tls_ok = SEEN_NO;
			step(p, "cannot start TLS");
			finish(p);
			return;
		}
		step(p, "Direct TLS (XEP-0368): TLS at once, ALPN xmpp-server, no STARTTLS");
		/* What STARTTLS would have told: TLS is the only way in. */
		p->features = SEEN_YES;
		p->tls_offered = SEEN_YES;
		p->tls_required = SEEN_YES;
		p->db_before = SEEN_NO;
		enter(p, P_TLS);
		conn_set_timer(p->conn, cf->timeout_tls_handshake);
		return;
	}
	send_header(p, P_HEADER);
}

static void on_closed(void *ud, const char *reason)
{
	struct probe *p = ud;
	p->conn = NULL;
	if (p->answered) {
		probe_free(p);
		return;
	}
	if (p->state == P_CONNECT || (p->state == P_TLS && p->direct)) {
		/* A Direct TLS handshake that fails is part of reaching the
		 * server, as in s2s_out: the next target may do. */
		const struct dns_target *t = &p->targets[p->next_target - 1];
		if (p->direct) {
			p->direct = false;
			p->features = p->tls_offered = p->tls_required = SEEN_UNKNOWN;
			p->db_before = SEEN_UNKNOWN;
		}
		step(p, "%s (%s [%s]:%u)", reason, t->host, t->addr_text, t->port);
		json_array_append_new(json_object_get(p->result, "tcp"),
				      json_pack("{s:s, s:s, s:i, s:s}", "host", t->host, "address",
						t->addr_text, "port", t->port, "outcome", reason));
		xmlstream_free(&p->xs);
		connect_next(p);
		return;
	}
	if (p->state == P_TLS)
		p->tls_ok = SEEN_NO;
	step(p, "the connection ended %s: %s", state_words[p->state], reason);
	finish(p); /* no conn: frees p */
}

static const struct conn_ops probe_conn_ops = {
	.on_data = on_data,
	.on_tls = on_tls,
	.on_timer = on_timer,
	.on_connected = on_connected,
	.on_closed = on_closed,
};

/* Which TLSA records the target's certificate is checked against, and
 * what the partner's dane setting would make of the target. */
static void dane_for_target(struct probe *p, const struct dns_target *t)
{
	p->dane_host = NULL;
	if (!p->dane)
		return;
	if (p->settings->dane == DANE_OFF) {
		/* Armed, the records would decide the chain verdict, and the
		 * verdict below must be the one a stream with dane off meets. */
		step(p, "DANE: not checked against the certificate (dane = off for %s)", p->domain);
		return;
	}
	for (size_t i = 0; i < p->dane->nhosts; i++) {
		const struct dane_host *h = &p->dane->hosts[i];
		if (h->st == DANE_ST_RECORDS && h->n > 0 && h->port == t->port &&
		    strcmp(h->name, t->host) == 0 &&
		    (p->dane->srv == DANE_ST_RECORDS || p->dane->srv == DANE_ST_NONE))
			p->dane_host = h;
	}
	const struct dane_host *h;
	char why[600];
	enum dane_use use =
		dane_decide(p->settings->dane, p->dane, t->host, t->port, &h, why, sizeof(why));
	step(p, "DANE (dane = %s) for %s:%u: %s%s", policy_dane_name(p->settings->dane), t->host,
	     t->port,
	     use == DANE_USE_VERIFY ? "the certificate must match the TLSA records"
	     : use == DANE_USE_NONE ? "no DANE; "
				    : "outbound streams would not try this target: ",
	     use == DANE_USE_VERIFY ? "" : why);
}

static void connect_next(struct probe *p)
{
	if (p->next_target >= p->ntargets) {
		step(p, "cannot connect to %s: no target answered", p->domain);
		finish(p);
		return;
	}
	const struct dns_target *t = &p->targets[p->next_target++];
	dane_for_target(p, t);
	enter(p, P_CONNECT);
	struct conn_limits cl = {.output_queue = p->srv->conf->output_queue,
				 .input_buffer = 64 * 1024};
	p->conn = conn_connect(p->srv->base, (const struct sockaddr *)&t->addr, t->addrlen, "probe",
			       &cl, &probe_conn_ops, p);
	if (!p->conn) {
		step(p, "out of memory");
		finish(p);
		return;
	}
	conn_set_label(p->conn, p->domain);
	/* Each target left gets an equal share of the time left, so that a
	 * target that swallows SYNs does not hide the ones after it. */
	struct timespec now;
	clock_gettime(CLOCK_MONOTONIC, &now);
	long left = (long)p->srv->live->gw.stream_establishment_timeout -
		    (long)(now.tv_sec - p->t0.tv_sec);
	long share = left / (long)(p->ntargets - p->next_target + 1);
	p->connect_s = share < 1 ? 1 : (unsigned)share;
	if (p->connect_s > p->srv->conf->timeout_tls_handshake)
		p->connect_s = p->srv->conf->timeout_tls_handshake;
	conn_set_timer(p->conn, p->connect_s);
}

/* ---- DNS ---- */

static void srv_line(char *buf, size_t len, const char *name, const struct dns_answer *a,
		     const struct dns_srv *srv, json_t *out)
{
	snprintf(buf, len, "DNS: %s SRV: ", name);
	switch (a->st) {
	case DNS_ST_NXDOMAIN: fg_appendf(buf, len, "no such domain (NXDOMAIN)"); break;
	case DNS_ST_NODATA: fg_appendf(buf, len, "no records"); break;
	case DNS_ST_FAIL: fg_appendf(buf, len, "lookup failed: %s", a->why); break;
	case DNS_ST_PENDING: fg_appendf(buf, len, "no answer"); break;
	case DNS_ST_DATA:
		if (dns_srv_no_service(srv, a->n)) {
			fg_appendf(buf, len, "\".\": the domain says it offers no such service");
			break;
		}
		for (size_t i = 0; i < a->n; i++) {
			fg_appendf(buf, len, "%s%u %u %u %s", i ? ", " : "", srv[i].prio,
				   srv[i].weight, srv[i].port, srv[i].target);
			json_array_append_new(out, json_pack("{s:i, s:i, s:i, s:s}", "priority",
							     srv[i].prio, "weight", srv[i].weight,
							     "port", srv[i].port, "target",
							     srv[i].target));
		}
		break;
	}
	if (a->st == DNS_ST_DATA || a->st == DNS_ST_NODATA || a->st == DNS_ST_NXDOMAIN)
		fg_appendf(buf, len, "; DNSSEC: %s",
			   a->dnssec == 2 ? "validated"
					  : "not validated (unsigned, or no trust anchor)");
}

/* The targets in s2s_out's words come last, when every lookup is in. */
static void report_targets(struct probe *p)
{
	bool looked_up = false; /* an IP literal (domain or proxy_fqdn) is not */
	for (size_t i = 0; i < p->ntargets; i++) {
		step(p, "DNS: %s [%s]:%u%s", p->targets[i].host, p->targets[i].addr_text,
		     p->targets[i].port, p->targets[i].direct_tls ? " (Direct TLS)" : "");
		looked_up |= strcmp(p->targets[i].host, p->targets[i].addr_text) != 0;
	}
	if (looked_up)
		step(p, "DNS: addresses %s",
		     p->targets_dnssec ? "validated by DNSSEC"
				       : "not validated by DNSSEC (unsigned, or no trust "
					 "anchor)");
}

static void on_dane(void *ud, const struct dane_result *r)
{
	struct probe *p = ud;
	const char *srv_word = dane_st_word(r->srv);
	json_t *hosts = json_array();
	step(p, "DANE: %s: %s%s", r->srv_why, srv_word,
	     r->srv == DANE_ST_RECORDS || r->srv == DANE_ST_NONE
		     ? ""
		     : "; RFC 7673 trusts TLSA records only under a secure SRV answer");
	for (size_t i = 0; i < r->nhosts; i++)
		if (r->hosts[i].direct) {
			step(p, "DANE: %s: %s", r->srvs_why, dane_st_word(r->srvs));
			break;
		}
	for (size_t i = 0; i < r->nhosts; i++) {
		char text[700];
		dane_host_text(&r->hosts[i], text, sizeof(text));
		step(p, "DANE: TLSA %s: %s", r->hosts[i].qname, text);
		json_array_append_new(hosts,
				      json_pack("{s:s, s:b, s:i, s:s}", "name", r->hosts[i].qname,
						"secure",
						r->hosts[i].st == DANE_ST_RECORDS ||
							r->hosts[i].st == DANE_ST_NONE,
						"records", (int)r->hosts[i].n, "status", text));
	}
	json_object_set_new(p->result, "dane",
			    json_pack("{s:s, s:b, s:o}", "srv", r->srv_why, "srv_secure",
				      r->srv == DANE_ST_RECORDS || r->srv == DANE_ST_NONE, "tlsa",
				      hosts));
	p->dane = malloc(sizeof(*p->dane));
	if (p->dane)
		*p->dane = *r;
	connect_next(p);
}

static void dns_done(struct probe *p)
{
	assert(p->dns_pending > 0);
	if (--p->dns_pending > 0)
		return;
	step(p, "%s", p->line_srv);
	step(p, "%s", p->line_srvs);
	if (json_array_size(json_object_get(json_object_get(p->result, "dns"), "xmpps_server")))
		step(p, "DNS: _xmpps-server targets (Direct TLS, XEP-0368) are tried with the "
			"_xmpp-server ones, by priority, Direct TLS first at equal priority");
	if (!p->targets) {
		step(p, "DNS: %s", p->res_err[0] ? p->res_err : "no address to connect to");
		finish(p);
		return;
	}
	report_targets(p);
	struct dns_result res = {.via = p->via,
				 .n = p->ntargets,
				 .targets = p->targets,
				 .dnssec = p->targets_dnssec};
	if (dane_lookup_start(p->srv->dns, p->domain, &res, on_dane, p, &p->dl) != FG_OK)
		connect_next(p);
}

static void on_srv(struct probe *p, bool direct, const struct dns_answer *a,
		   const struct dns_srv *srv)
{
	char name[DNS_NAME_MAX + 32];
	snprintf(name, sizeof(name), "%s.%s", direct ? "_xmpps-server._tcp" : "_xmpp-server._tcp",
		 p->domain);
	json_t *out = json_array();
	srv_line(direct ? p->line_srvs : p->line_srv, sizeof(p->line_srv), name, a, srv, out);
	json_object_set_new(json_object_get(p->result, "dns"),
			    direct ? "xmpps_server" : "xmpp_server", out);
	dns_done(p);
}

static void on_srv_starttls(void *ud, const struct dns_answer *a, const struct dns_srv *srv)
{
	on_srv(ud, false, a, srv);
}

static void on_srv_direct(void *ud, const struct dns_answer *a, const struct dns_srv *srv)
{
	on_srv(ud, true, a, srv);
}

static void on_resolved(void *ud, const struct dns_result *res, const char *err)
{
	struct probe *p = ud;
	json_t *tj = json_array();
	if (res) {
		p->targets = calloc(res->n, sizeof(*p->targets));
		/* s2s_out's choice: without a TLS method no Direct TLS target. */
		bool tls_ok =
			policy_allowed_methods(p->settings) & (AUTH_SASL_TLS | AUTH_TLS_DIALBACK);
		for (size_t i = 0; p->targets && i < res->n; i++)
			if (tls_ok || !res->targets[i].direct_tls)
				p->targets[p->ntargets++] = res->targets[i];
		p->targets_dnssec = res->dnssec;
		p->via = res->via;
		json_object_set_new(json_object_get(p->result, "dns"), "dnssec",
				    json_boolean(res->dnssec));
		for (size_t i = 0; i < res->n; i++) {
			const struct dns_target *t = &res->targets[i];
			json_array_append_new(tj, json_pack("{s:s, s:s, s:i, s:b}", "host", t->host,
							    "address", t->addr_text, "port",
							    t->port, "direct_tls", t->direct_tls));
		}
	} else {
		snprintf(p->res_err, sizeof(p->res_err), "%s", err);
	}
	json_object_set_new(json_object_get(p->result, "dns"), "targets", tj);
	dns_done(p);
}

static void on_deadline(evutil_socket_t fd, short what, void *arg)
{
	struct probe *p = arg;
	(void)fd;
	(void)what;
	step(p,
	     "no answer within %u seconds (stream_establishment_timeout) while %s; the report "
	     "stops here",
	     p->srv->live->gw.stream_establishment_timeout, state_words[p->state]);
	finish(p);
}

/* ---- the command ---- */

static void refuse(probe_reply_fn reply, void *ud, const char *field, const char *msg)
{
	json_t *b = json_object(), *e = json_array();
	json_array_append_new(e, json_pack("{s:s?, s:s}", "field", field, "message", msg));
	json_object_set_new(b, "errors", e);
	json_object_set_new(b, "warnings", json_array());
	reply(ud, PROBE_FAILED, b);
}

/* flags > the partner's settings > a new partner's defaults */
static int settings(struct probe *p, json_t *params, char *err, size_t errlen, const char **field)
{
	const struct partner *cur = policy_lookup(p->srv->live->partners, p->domain);
	p->settings = cur ? partner_clone(cur) : partner_new(p->domain);
	if (!p->settings) {
		snprintf(err, errlen, "out of memory");
		return FG_NOMEM;
	}
	p->settings_from = cur ? "the partner's settings" : "a new partner's default settings";
	bool flags = false;
	static const char *const negs[] = {"tls", "sasl"};
	for (size_t i = 0; i < FG_ARRAY_LEN(negs); i++) {
		json_t *v = json_object_get(params, negs[i]);
		if (!v || json_is_null(v))
			continue;
		enum negotiation n;
		if (!json_is_string(v) ||
		    policy_parse_negotiation(json_string_value(v), &n) != FG_OK) {
			*field = negs[i];
			snprintf(err, errlen,
				 "probe: %s must be required, optional or not-supported", negs[i]);
			return FG_INVAL;
		}
		*(i == 0 ? &p->settings->tls : &p->settings->sasl) = n;
		flags = true;
	}
	json_t *db = json_object_get(params, "dialback");
	if (db && !json_is_null(db)) {
		bool b;
		if (json_is_boolean(db))
			b = json_is_true(db);
		else if (!json_is_string(db) ||
			 policy_parse_bool(json_string_value(db), &b) != FG_OK) {
			*field = "dialback";
			snprintf(err, errlen, "probe: dialback must be true or false");
			return FG_INVAL;
		}
		p->settings->dialback = b;
		flags = true;
	}
	if (flags)
		p->settings_from = "the settings given";
	if (!policy_allowed_methods(p->settings) ||
	    (p->settings->tls == NEG_NOT_SUPPORTED && p->settings->sasl != NEG_NOT_SUPPORTED)) {
		*field = "sasl";
		snprintf(err, errlen,
			 "probe: tls %s, sasl %s, dialback %s is not a valid row of the "
			 "negotiation matrix (see 'fedgate partner new --help'); SASL needs TLS, "
			 "and without SASL dialback must be true",
			 policy_negotiation_name(p->settings->tls),
			 policy_negotiation_name(p->settings->sasl),
			 p->settings->dialback ? "true" : "false");
		return FG_INVAL;
	}
	return FG_OK;
}

void probe_run(struct xmpp_server *srv, json_t *params, const char *who, probe_reply_fn reply,
	       void *ud)
{
	const char *d = json_string_value(json_object_get(params, "domain"));
	char *prep = NULL, err[600];
	const char *field = "domain";
	if (!d || jid_domain_prep(d, strlen(d), &prep) != JID_OK || strlen(prep) > DNS_NAME_MAX) {
		free(prep);
		refuse(reply, ud, "domain",
		       "probe: DOMAIN must be a server domain, e.g. 'fedgate probe fabrikam.com'");
		return;
	}
	if (conf_is_local_domain(srv->conf, prep)) {
		snprintf(err, sizeof(err), "probe: %s is one of our own domains; probe a partner's",
			 prep);
		free(prep);
		refuse(reply, ud, "domain", err);
		return;
	}
	struct probe *p = calloc(1, sizeof(*p));
	if (!p) {
		free(prep);
		refuse(reply, ud, NULL, "out of memory");
		return;
	}
	p->srv = srv;
	p->reply = reply;
	p->ud = ud;
	snprintf(p->domain, sizeof(p->domain), "%s", prep);
	free(prep);
	snprintf(p->local, sizeof(p->local), "%s", srv->conf->domains.v[0]);
	clock_gettime(CLOCK_MONOTONIC, &p->t0);
	p->next = running;
	running = p;
	if (settings(p, params, err, sizeof(err), &field) != FG_OK) {
		refuse(reply, ud, field, err);
		probe_free(p);
		return;
	}
	p->result = json_pack("{s:s, s:{}, s:[]}", "domain", p->domain, "dns", "tcp");
	p->deadline = evtimer_new(srv->base, on_deadline, p);
	if (!p->result || !p->deadline) {
		refuse(reply, ud, NULL, "out of memory");
		probe_free(p);
		return;
	}
	log_info("probe", "%s probes %s", who ? who : "?", p->domain);
	unsigned limit = srv->live->gw.stream_establishment_timeout;
	step(p, "probing %s as %s (nothing is saved, no stanza is sent; at most %u s)", p->domain,
	     p->local, limit);
	struct timeval tv = {(time_t)limit, 0};
	evtimer_add(p->deadline, &tv);
	char srv_name[DNS_NAME_MAX + 32], srvs_name[DNS_NAME_MAX + 32];
	snprintf(srv_name, sizeof(srv_name), "_xmpp-server._tcp.%s", p->domain);
	snprintf(srvs_name, sizeof(srvs_name), "_xmpps-server._tcp.%s", p->domain);
	const struct partner *cur = policy_lookup(srv->live->partners, p->domain);
	const char *proxy = cur && cur->proxy_fqdn && cur->proxy_fqdn[0] ? cur->proxy_fqdn : NULL;
	if (proxy)
		step(p, "the partner's proxy_fqdn %s replaces the SRV targets", proxy);
	p->dns_pending = 3;
	snprintf(p->line_srv, sizeof(p->line_srv), "DNS: %s SRV: no answer", srv_name);
	snprintf(p->line_srvs, sizeof(p->line_srvs), "DNS: %s SRV: no answer", srvs_name);
	/* A lookup that cannot start is reported like a failed one. */
	if (dns_lookup(srv->dns, srv_name, DNS_QTYPE_SRV, on_srv_starttls, p, &p->q_srv) != FG_OK)
		p->dns_pending--;
	if (dns_lookup(srv->dns, srvs_name, DNS_QTYPE_SRV, on_srv_direct, p, &p->q_srvs) != FG_OK)
		p->dns_pending--;
	if (dns_resolve_server(srv->dns, p->domain, proxy, on_resolved, p, &p->q_res) != FG_OK) {
		snprintf(p->res_err, sizeof(p->res_err), "cannot start the DNS lookup for %s",
			 p->domain);
		p->dns_pending--;
	}
	if (p->dns_pending == 0) {
		p->dns_pending = 1;
		dns_done(p);
	}
}

void probe_stop(struct xmpp_server *srv)
{
	(void)srv;
	while (running) {
		struct probe *p = running;
		if (!p->answered) {
			step(p, "the daemon is stopping");
			finish(p);
		}
		/* finish left the close to the loop, which is ending */
		if (running == p) {
			conn_free_now(&p->conn);
			probe_free(p);
		}
	}
}

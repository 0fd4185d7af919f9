/* The HTTP admin listener: evhttp on the daemon's loop, who is asking,
 * sessions, CSRF, the sign-in throttle, security headers, routing.
 *
 * Request lifetime: gencb makes an hreq, authenticates it (a store job:
 * the token's hash or the session's account is looked up, so a removed
 * account or a withdrawn token stops working at once), checks the CSRF
 * token of a cookie-authenticated change, then hands it to api.c, web.c
 * or metrics.c. Those answer exactly once through http_send*(), which
 * frees the hreq. Command replies may come later from the store thread's
 * completion; the evhttp request stays valid until we answer it: if the
 * client went away meanwhile, libevent has detached the request from its
 * connection and our answer only frees it. Shutdown frees the evhttp
 * server only after the store has delivered every reply. */
#include "admin_http.h"

#include "api.h"
#include "conf.h"
#include "counters.h"
#include "fg.h"
#include "http_server.h"
#include "log.h"
#include "metrics.h"
#include "throttle.h"
#include "tls.h"
#include "web.h"

#include <event2/bufferevent.h>
#include <event2/bufferevent_ssl.h>
#include <event2/event.h>
#include <event2/listener.h>
#include <openssl/crypto.h>
#include <openssl/rand.h>
#include <openssl/ssl.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/queue.h>
#include <time.h>

/* ---- sign-in ---- */

/* Addresses and (address, name) pairs the sign-in throttle keeps; any
 * visitor can make entries, so the table has a cap. */
#define SIGNIN_TRACKED_MAX 10000

/* A sign-in the throttle holds on a timer: a failure whose 401 waits for
 * its delay, or an attempt waiting for its address's turn. The request
 * stays open meanwhile. */
struct held {
	struct admin_http *ah;
	struct event *ev;
	struct hreq *h;
	struct signin_job *job; /* an attempt; NULL for a failure */
	struct held *next;
};

struct signin_job {
	struct hreq *h;
	char name[ADMIN_NAME_MAX + 1];
	char *password;
	enum admin_role role;
};

static void job_free(struct signin_job *j)
{
	if (!j)
		return;
	if (j->password) {
		OPENSSL_cleanse(j->password, strlen(j->password));
		free(j->password);
	}
	free(j);
}

static bool is_token(const char *s)
{
	return strlen(s) == 64 && strspn(s, "0123456789abcdef") == 64;
}

/* The browser's sign-in token is kept while it has one, so that a second
 * tab or a request the browser makes on its own (a favicon that ends on
 * this page) does not invalidate the form already shown. */
static void signin_page(struct hreq *h, int code, const char *error)
{
	char token[80];
	http_cookie_get(h, COOKIE_SIGNIN, token, sizeof(token));
	if (!is_token(token))
		http_random_hex(token, 32);
	http_set_cookie(h, COOKIE_SIGNIN, token, "/signin", -1);
	web_signin(h, code, error, token);
}

static int signin_run(struct store_db *db, void *ud, char *err, size_t errlen)
{
	struct signin_job *j = ud;
	return admin_db_check_password(db, j->name, j->password, &j->role, err, errlen);
}

static void signin_wrong(struct hreq *h)
{
	signin_page(h, 401, "Wrong name or password.");
}

static void signin_check(struct signin_job *j);

static void held_fire(evutil_socket_t fd, short what, void *arg)
{
	struct held *x = arg;
	struct admin_http *ah = x->ah;
	(void)fd;
	(void)what;
	for (struct held **pp = &ah->held; *pp; pp = &(*pp)->next)
		if (*pp == x) {
			*pp = x->next;
			break;
		}
	struct hreq *h = x->h;
	struct signin_job *j = x->job;
	event_free(x->ev);
	free(x);
	if (j)
		signin_check(j);
	else
		signin_wrong(h);
}

/* Holds h (and its job, for an attempt) ms; answers at once when no timer
 * can be made. */
static void hold(struct hreq *h, struct signin_job *j, uint64_t ms)
{
	struct held *x = calloc(1, sizeof(*x));
	struct event *ev = x ? evtimer_new(h->ah->base, held_fire, x) : NULL;
	if (!ev) {
		free(x);
		if (j)
			signin_check(j);
		else
			signin_wrong(h);
		return;
	}
	*x = (struct held){.ah = h->ah, .ev = ev, .h = h, .job = j, .next = h->ah->held};
	h->ah->held = x;
	struct timeval tv = {(time_t)(ms / 1000u), (suseconds_t)(ms % 1000u) * 1000};
	evtimer_add(ev, &tv);
}

static void signin_done(void *ud, int rc, const char *err)
{
	struct signin_job *j = ud;
	struct hreq *h = j->h;
	char name[ADMIN_NAME_MAX + 1];
	enum admin_role role = j->role;
	snprintf(name, sizeof(name), "%s", j->name);
	job_free(j);
	struct throttle *t = h->ah->signin;
	if (rc == FG_NOTFOUND) {
		/* An unknown name gets here exactly like a wrong password
		 * (admin_db_check_password hashes a dummy), and is counted
		 * and delayed the same. */
		uint64_t now = throttle_now_ms();
		uint64_t delay = t ? throttle_failed(t, h->ip, name, now) : 0;
		counters_auth_failure("panel-wrong-password");
		log_warn("http",
			 "failed sign-in as '%s' from %s (%u recent failures from this address); "
			 "answered in %llu ms",
			 name, h->ip, t ? throttle_failures(t, h->ip, now) : 1,
			 (unsigned long long)delay);
		if (delay)
			hold(h, NULL, delay);
		else
			signin_wrong(h);
		return;
	}
	if (rc != FG_OK) {
		log_error("http", "sign-in check failed: %s", err ? err : "?");
		signin_page(h, 503, "The account store cannot be read now; try again.");
		return;
	}
	if (t)
		throttle_succeeded(t, h->ip, name);
	struct panel_session *s = http_session_new(h->ah, name);
	if (!s) {
		signin_page(h, 503, "Out of memory; try again.");
		return;
	}
	log_info("http", "%s (%s) signed in from %s", name, admin_role_name(role), h->ip);
	http_set_cookie(h, COOKIE_SESSION, s->id, "/", -1);
	http_set_cookie(h, COOKIE_SIGNIN, "", "/signin", 0);
	http_redirect(h, "/partners");
}

/* The password check itself: a store job (argon2id takes a while). */
static void signin_check(struct signin_job *j)
{
	struct hreq *h = j->h;
	if (h->env->run(h->env, signin_run, signin_done, j) != FG_OK)
		signin_done(j, FG_ERR, "cannot queue the check");
}

/* 429 for an address that kept guessing, and for it alone, without
 * looking at the password. */
static void signin_refused(struct hreq *h, uint64_t wait_ms)
{
	unsigned long long secs = (wait_ms + 999) / 1000;
	char msg[200], after[24];
	snprintf(after, sizeof(after), "%llu", secs);
	evhttp_add_header(evhttp_request_get_output_headers(h->req), "Retry-After", after);
	snprintf(msg, sizeof(msg),
		 "Too many failed sign-ins from your address; wait %llu seconds and try again.",
		 secs);
	counters_auth_failure("panel-refused");
	log_warn("http", "sign-in from %s refused: %u recent failures from this address", h->ip,
		 throttle_failures(h->ah->signin, h->ip, throttle_now_ms()));
	signin_page(h, 429, msg);
}

static void signin_post(struct hreq *h)
{
	char pre[80];
	http_cookie_get(h, COOKIE_SIGNIN, pre, sizeof(pre));
	if (!http_same_secret(pre, http_form(h, "csrf"))) {
		signin_page(h, 403,
			    "The sign-in form had expired or did not come from this panel (CSRF "
			    "token missing or wrong). Sign in again.");
		return;
	}
	const char *name = http_form(h, "name"), *pw = http_form(h, "password");
	struct signin_job *j = calloc(1, sizeof(*j));
	if (!j || !name || !pw || strlen(name) > ADMIN_NAME_MAX || !(j->password = strdup(pw))) {
		free(j);
		signin_page(h, 400, "Give a name and a password.");
		return;
	}
	j->h = h;
	snprintf(j->name, sizeof(j->name), "%s", name);
	uint64_t wait = 0;
	enum throttle_verdict v =
		h->ah->signin ? throttle_admit(h->ah->signin, h->ip, throttle_now_ms(), &wait)
			      : THROTTLE_NOW;
	if (v == THROTTLE_REFUSE) {
		job_free(j);
		signin_refused(h, wait);
	} else if (v == THROTTLE_WAIT) {
		hold(h, j, wait);
	} else {
		signin_check(j);
	}
}

/* ---- who is asking ---- */

struct auth_job {
	struct hreq *h;
	char token[256];
	char name[ADMIN_NAME_MAX + 1];
	enum admin_role role;
};

static void dispatch(struct hreq *h);

static int auth_run(struct store_db *db, void *ud, char *err, size_t errlen)
{
	struct auth_job *a = ud;
	if (a->token[0])
		return admin_db_by_token(db, a->token, a->name, sizeof(a->name), &a->role, err,
					 errlen);
	return admin_db_role(db, a->name, &a->role, err, errlen);
}

static bool wants_json(struct hreq *h)
{
	return http_has_prefix(h->path, "/api/") || strcmp(h->path, "/metrics") == 0;
}

static void unauthenticated(struct hreq *h, const char *why)
{
	if (wants_json(h)) {
		evhttp_add_header(evhttp_request_get_output_headers(h->req), "WWW-Authenticate",
				  "Bearer realm=\"fedgate\"");
		http_send_error(h, 401, NULL, why);
	} else {
		http_redirect(h, "/signin");
	}
}

static void auth_done(void *ud, int rc, const char *err)
{
	struct auth_job *a = ud;
	struct hreq *h = a->h;
	bool by_token = a->token[0] != '\0';
	OPENSSL_cleanse(a->token, sizeof(a->token));
	if (rc != FG_OK) {
		if (rc != FG_NOTFOUND)
			log_error("http", "cannot check credentials: %s", err ? err : "?");
		if (!by_token && h->sid[0])
			http_session_drop(h->ah, h->sid);
		free(a);
		if (rc != FG_NOTFOUND)
			http_send_error(h, 503, NULL, "the account store cannot be read now");
		else
			unauthenticated(h, by_token
						   ? "the bearer token is not valid (make one with "
						     "'fedgate admin token NAME')"
						   : "the session ended; sign in again");
		return;
	}
	snprintf(h->who, sizeof(h->who), "%s", a->name);
	h->role = a->role;
	h->read_only = a->role != ADMIN_ADMINISTRATOR;
	h->by_token = by_token;
	free(a);
	dispatch(h);
}

static void authenticate(struct hreq *h)
{
	struct auth_job *a = calloc(1, sizeof(*a));
	if (!a) {
		http_send_error(h, 503, NULL, "out of memory");
		return;
	}
	a->h = h;
	const char *auth = http_header(h, "Authorization");
	if (auth) {
		if (strncasecmp(auth, "Bearer ", 7) != 0 || strlen(auth + 7) >= sizeof(a->token)) {
			free(a);
			unauthenticated(h, "use 'Authorization: Bearer TOKEN' with a token from "
					   "'fedgate admin token NAME'");
			return;
		}
		snprintf(a->token, sizeof(a->token), "%s", auth + 7);
	} else {
		char sid[HTTP_SID_MAX];
		http_cookie_get(h, COOKIE_SESSION, sid, sizeof(sid));
		struct panel_session *s = http_session_find(h->ah, sid);
		if (!s) {
			free(a);
			unauthenticated(h, "sign in first: send 'Authorization: Bearer TOKEN' (a "
					   "token from 'fedgate admin token NAME')");
			return;
		}
		s->last_used = time(NULL);
		snprintf(h->sid, sizeof(h->sid), "%s", s->id);
		snprintf(a->name, sizeof(a->name), "%s", s->name);
	}
	if (h->env->run(h->env, auth_run, auth_done, a) != FG_OK)
		auth_done(a, FG_ERR, "cannot queue the check");
}

static bool unsafe(const struct hreq *h)
{
	return h->method != EVHTTP_REQ_GET && h->method != EVHTTP_REQ_HEAD;
}

static void dispatch(struct hreq *h)
{
	bool api = http_has_prefix(h->path, "/api/");
	h->iface = api ? "api" : "web";
	if (unsafe(h) && !h->by_token) {
		struct panel_session *s = http_hreq_session(h);
		const char *given = api ? http_header(h, "X-CSRF-Token") : http_form(h, "csrf");
		if (!s || !http_same_secret(s->csrf, given)) {
			log_warn("http", "%s from %s: CSRF token missing or wrong", h->path, h->ip);
			const char *msg = "the CSRF token is missing or wrong: reload the page and "
					  "try again";
			if (api)
				http_send_error(h, 403, "csrf", msg);
			else
				web_error(h, 403, msg);
			return;
		}
	}
	if (api) {
		api_handle(h);
	} else if (strcmp(h->path, "/metrics") == 0) {
		metrics_handle(h);
	} else if (strcmp(h->path, "/signout") == 0 && h->method == EVHTTP_REQ_POST) {
		log_info("http", "%s signed out", h->who);
		if (h->sid[0])
			http_session_drop(h->ah, h->sid);
		h->sid[0] = '\0';
		http_set_cookie(h, COOKIE_SESSION, "", "/", 0);
		http_redirect(h, "/signin");
	} else {
		web_handle(h);
	}
}

/* ---- the server ---- */

static void gencb(struct evhttp_request *req, void *arg)
{
	struct admin_http *ah = arg;
	struct hreq *h = calloc(1, sizeof(*h));
	if (!h) {
		evhttp_send_error(req, 503, NULL);
		return;
	}
	TAILQ_INIT(&h->query);
	TAILQ_INIT(&h->form);
	h->ah = ah;
	h->req = req;
	h->xs = ah->xs;
	h->env = ah->env;
	h->method = evhttp_request_get_command(req);
	h->tls = ah->tls != NULL;
	h->iface = "web";
	struct evhttp_connection *con = evhttp_request_get_connection(req);
	char *peer = NULL;
	ev_uint16_t port = 0;
	if (con)
		evhttp_connection_get_peer(con, &peer, &port);
	snprintf(h->ip, sizeof(h->ip), "%s", peer ? peer : "?");
	if (http_target_decode(evhttp_request_get_evhttp_uri(req), h->path, sizeof(h->path),
			       &h->query) != FG_OK) {
		http_send_error(h, 400, NULL, "the path is malformed or too long");
		return;
	}
	struct evbuffer *in = evhttp_request_get_input_buffer(req);
	h->body_len = evbuffer_get_length(in);
	h->body = malloc(h->body_len + 1);
	if (!h->body) {
		http_send_error(h, 503, NULL, "out of memory");
		return;
	}
	evbuffer_remove(in, h->body, h->body_len);
	h->body[h->body_len] = '\0';

	if (strcmp(h->path, "/static/fedgate.css") == 0) {
		size_t len;
		const char *css = web_css(&len);
		struct evbuffer *b = evbuffer_new();
		if (b)
			evbuffer_add_reference(b, css, len, NULL, NULL);
		http_send(h, 200, "text/css; charset=utf-8", b);
		return;
	}
	if (strcmp(h->path, "/favicon.ico") == 0) {
		http_send(h, 404, NULL, NULL);
		return;
	}
	if (strcmp(h->path, "/signin") == 0) {
		if (h->method == EVHTTP_REQ_POST)
			signin_post(h);
		else
			signin_page(h, 200, NULL);
		return;
	}
	authenticate(h);
}

/* TLS: every accepted connection gets an OpenSSL filter in accepting
 * state. */
static struct bufferevent *bev_tls(struct event_base *base, void *arg)
{
	struct admin_http *ah = arg;
	SSL *ssl = SSL_new(ah->tls);
	if (!ssl)
		return NULL;
	return bufferevent_openssl_socket_new(base, -1, ssl, BUFFEREVENT_SSL_ACCEPTING,
					      BEV_OPT_CLOSE_ON_FREE);
}

static bool admin_tls_wanted(const struct fg_conf *c)
{
	return c->admin_certificate && *c->admin_certificate;
}

int admin_http_tls_load(const struct fg_conf *c, SSL_CTX **out, char *err, size_t errlen)
{
	*out = NULL;
	if (!admin_tls_wanted(c))
		return FG_OK;
	*out = tls_server_ctx_new(c->admin_certificate, c->admin_key, NULL, err, errlen);
	if (!*out)
		return FG_ERR;
	/* Browsers present no certificate. */
	SSL_CTX_set_verify(*out, SSL_VERIFY_NONE, NULL);
	return FG_OK;
}

void admin_http_reconfigure(struct admin_http *ah, const struct fg_conf *conf, SSL_CTX *tls)
{
	ah->conf = conf;
	if (!ah->http) { /* no [listen] admin: nothing else runs */
		tls_ctx_free(&tls);
		return;
	}
	/* Connections already open keep the context they were made with
	 * (SSL_new took a reference); new ones get the new one. */
	tls_ctx_free(&ah->tls);
	ah->tls = tls;
	evhttp_set_bevcb(ah->http, ah->tls ? bev_tls : NULL, ah->tls ? ah : NULL);
	evhttp_set_max_body_size(ah->http, (ev_ssize_t)conf->admin_max_body);
	struct throttle_limits lim = {.refuse_after = conf->admin_signin_attempts,
				      .window_s = conf->admin_signin_window,
				      .delay_max_ms = conf->admin_signin_delay_max * 1000u};
	throttle_set_limits(ah->signin, &lim);
}

struct admin_http *admin_http_start(struct event_base *base, const struct fg_conf *conf,
				    struct cmd_env *env, struct xmpp_server *xs, char *err,
				    size_t errlen)
{
	const struct fg_conf *c = conf;
	struct admin_http *ah = calloc(1, sizeof(*ah));
	if (!ah) {
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	ah->base = base;
	ah->conf = conf;
	ah->env = env;
	ah->xs = xs;
	if (c->listen_admin.n == 0)
		return ah;
	struct throttle_limits lim = {.refuse_after = c->admin_signin_attempts,
				      .window_s = c->admin_signin_window,
				      .delay_max_ms = c->admin_signin_delay_max * 1000u,
				      .max_entries = SIGNIN_TRACKED_MAX};
	ah->signin = throttle_new(&lim);
	if (!ah->signin) {
		snprintf(err, errlen, "out of memory");
		goto fail;
	}
	if (admin_init() != FG_OK) {
		snprintf(err, errlen, "libsodium cannot start");
		goto fail;
	}
	if (admin_http_tls_load(c, &ah->tls, err, errlen) != FG_OK)
		goto fail;
	ah->http = evhttp_new(base);
	if (!ah->http) {
		snprintf(err, errlen, "cannot create the HTTP server");
		goto fail;
	}
	evhttp_set_max_body_size(ah->http, (ev_ssize_t)c->admin_max_body);
	evhttp_set_max_headers_size(ah->http, HEADERS_MAX);
	evhttp_set_timeout(ah->http, HTTP_TIMEOUT_S);
	evhttp_set_allowed_methods(ah->http, EVHTTP_REQ_GET | EVHTTP_REQ_HEAD | EVHTTP_REQ_POST |
						     EVHTTP_REQ_PUT | EVHTTP_REQ_PATCH |
						     EVHTTP_REQ_DELETE);
	evhttp_set_gencb(ah->http, gencb, ah);
	if (ah->tls)
		evhttp_set_bevcb(ah->http, bev_tls, ah);
	for (size_t i = 0; i < c->listen_admin.n; i++) {
		const char *addr = c->listen_admin.v[i];
		struct sockaddr_storage ss;
		int sslen = sizeof(ss);
		if (evutil_parse_sockaddr_port(addr, (struct sockaddr *)&ss, &sslen) != 0) {
			snprintf(err, errlen, "cannot parse the admin address '%s'", addr);
			goto fail;
		}
		unsigned flags = LEV_OPT_CLOSE_ON_FREE | LEV_OPT_REUSEABLE | LEV_OPT_CLOSE_ON_EXEC;
		if (ss.ss_family == AF_INET6)
			flags |= LEV_OPT_BIND_IPV6ONLY; /* beside 0.0.0.0, as serve.c's */
		struct evconnlistener *lev = evconnlistener_new_bind(base, NULL, NULL, flags, 128,
								     (struct sockaddr *)&ss, sslen);
		if (!lev || !evhttp_bind_listener(ah->http, lev)) {
			int e = EVUTIL_SOCKET_ERROR();
			if (lev)
				evconnlistener_free(lev);
			snprintf(err, errlen, "cannot listen on %s for the admin API: %s", addr,
				 evutil_socket_error_to_string(e));
			goto fail;
		}
		log_info("serve", "listening for the admin API and control panel on %s://%s/",
			 ah->tls ? "https" : "http", addr);
	}
	return ah;
fail:
	admin_http_stop(&ah);
	return NULL;
}

void admin_http_stop(struct admin_http **pah)
{
	if (!pah || !*pah)
		return;
	struct admin_http *ah = *pah;
	/* Held sign-ins are answered now, before their requests go: a held
	 * failure gets its 401, a held attempt is not checked any more. */
	while (ah->held) {
		struct held *x = ah->held;
		ah->held = x->next;
		event_free(x->ev);
		if (x->job) {
			job_free(x->job);
			signin_page(x->h, 503, "The server is stopping; try again later.");
		} else {
			signin_wrong(x->h);
		}
		free(x);
	}
	throttle_free(&ah->signin);
	if (ah->http)
		evhttp_free(ah->http);
	while (ah->sessions)
		http_session_drop(ah, ah->sessions->id);
	tls_ctx_free(&ah->tls);
	free(ah);
	*pah = NULL;
}

/* The HTTP toolkit: escaping, inputs, answers with the security headers,
 * commands run as the request's admin, and the panel's sessions.
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
#include "http.h"

#include "conf.h"
#include "fg.h"
#include "http_server.h"
#include "log.h"
#include "cluster.h"
#include "live.h"

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/queue.h>
#include <time.h>

/* ---- small helpers ---- */

void http_random_hex(char *out, size_t bytes)
{
	unsigned char r[32];
	if (bytes > sizeof(r))
		bytes = sizeof(r);
	if (RAND_bytes(r, (int)bytes) != 1)
		abort(); /* no randomness: nothing secure can be made */
	for (size_t i = 0; i < bytes; i++)
		snprintf(out + 2 * i, 3, "%02x", r[i]);
}

bool http_same_secret(const char *a, const char *b)
{
	size_t la = a ? strlen(a) : 0, lb = b ? strlen(b) : 0;
	return la > 0 && la == lb && CRYPTO_memcmp(a, b, la) == 0;
}

bool http_has_prefix(const char *s, const char *p)
{
	return strncmp(s, p, strlen(p)) == 0;
}

void http_html(struct evbuffer *b, const char *s)
{
	if (!s)
		return;
	const char *run = s;
	for (; *s; s++) {
		const char *rep = NULL;
		switch (*s) {
		case '&': rep = "&amp;"; break;
		case '<': rep = "&lt;"; break;
		case '>': rep = "&gt;"; break;
		case '"': rep = "&quot;"; break;
		case '\'': rep = "&#39;"; break;
		default: continue;
		}
		evbuffer_add(b, run, (size_t)(s - run));
		evbuffer_add(b, rep, strlen(rep));
		run = s + 1;
	}
	evbuffer_add(b, run, (size_t)(s - run));
}

void http_url(struct evbuffer *b, const char *s)
{
	char *e = evhttp_uriencode(s ? s : "", -1, 0);
	if (e) {
		evbuffer_add(b, e, strlen(e));
		free(e);
	}
}

const char *http_header(struct hreq *h, const char *name)
{
	return evhttp_find_header(evhttp_request_get_input_headers(h->req), name);
}

const char *http_query(struct hreq *h, const char *key)
{
	return evhttp_find_header(&h->query, key);
}

const char *http_form(struct hreq *h, const char *key)
{
	if (!h->form_parsed) {
		h->form_parsed = true;
		const char *ct = http_header(h, "Content-Type");
		if (h->body && ct && http_has_prefix(ct, "application/x-www-form-urlencoded"))
			evhttp_parse_query_str(h->body, &h->form);
	}
	return evhttp_find_header(&h->form, key);
}

/* At most outlen-1 bytes: longer values are not ours. */
void http_cookie_value(const char *c, const char *name, char *out, size_t outlen)
{
	out[0] = '\0';
	size_t nl = strlen(name);
	while (c && *c) {
		while (*c == ' ' || *c == ';')
			c++;
		const char *end = strchr(c, ';');
		size_t len = end ? (size_t)(end - c) : strlen(c);
		if (len > nl && strncmp(c, name, nl) == 0 && c[nl] == '=') {
			size_t vl = len - nl - 1;
			if (vl < outlen) {
				memcpy(out, c + nl + 1, vl);
				out[vl] = '\0';
			}
			return;
		}
		c = end;
	}
}

void http_cookie_get(struct hreq *h, const char *name, char *out, size_t outlen)
{
	http_cookie_value(http_header(h, "Cookie"), name, out, outlen);
}

int http_target_decode(const struct evhttp_uri *uri, char *path, size_t pathlen,
		       struct evkeyvalq *query)
{
	const char *raw = uri ? evhttp_uri_get_path(uri) : NULL;
	size_t plen = 0;
	char *dec = raw ? evhttp_uridecode(raw, 0, &plen) : NULL;
	if (!dec || plen >= pathlen || strlen(dec) != plen) {
		free(dec);
		snprintf(path, pathlen, "/");
		return FG_INVAL;
	}
	snprintf(path, pathlen, "%s", dec);
	free(dec);
	const char *q = uri ? evhttp_uri_get_query(uri) : NULL;
	if (q)
		evhttp_parse_query_str(q, query);
	return FG_OK;
}

/* ---- answering ---- */

void http_hreq_free(struct hreq *h)
{
	evhttp_clear_headers(&h->query);
	evhttp_clear_headers(&h->form);
	free(h->body);
	json_decref(h->keep);
	free(h->state);
	free(h);
}

static void security_headers(struct hreq *h)
{
	struct evkeyvalq *o = evhttp_request_get_output_headers(h->req);
	evhttp_add_header(o, "Content-Security-Policy",
			  "default-src 'none'; style-src 'self'; img-src 'self'; form-action "
			  "'self'; frame-ancestors 'none'; base-uri 'none'");
	evhttp_add_header(o, "X-Frame-Options", "DENY");
	evhttp_add_header(o, "X-Content-Type-Options", "nosniff");
	evhttp_add_header(o, "Referrer-Policy", "no-referrer");
	evhttp_add_header(o, "Cache-Control", "no-store");
	if (h->tls)
		evhttp_add_header(o, "Strict-Transport-Security", "max-age=31536000");
}

static const char *reason(int code)
{
	switch (code) {
	case 200: return "OK";
	case 201: return "Created";
	case 303: return "See Other";
	case 400: return "Bad Request";
	case 401: return "Unauthorized";
	case 403: return "Forbidden";
	case 404: return "Not Found";
	case 405: return "Method Not Allowed";
	case 413: return "Payload Too Large";
	case 422: return "Unprocessable Entity";
	case 429: return "Too Many Requests";
	case 503: return "Service Unavailable";
	default: return code < 400 ? "OK" : "Error";
	}
}

void http_send(struct hreq *h, int code, const char *ctype, struct evbuffer *body)
{
	security_headers(h);
	if (ctype)
		evhttp_add_header(evhttp_request_get_output_headers(h->req), "Content-Type", ctype);
	log_debug("http", "%s %s %s -> %d", h->ip,
		  h->method == EVHTTP_REQ_GET	 ? "GET"
		  : h->method == EVHTTP_REQ_POST ? "POST"
						 : "other",
		  h->path, code);
	evhttp_send_reply(h->req, code, reason(code), body);
	if (body)
		evbuffer_free(body);
	http_hreq_free(h);
}

void http_send_json(struct hreq *h, int code, json_t *j)
{
	struct evbuffer *b = evbuffer_new();
	char *text = json_dumps(j, JSON_INDENT(2) | JSON_ENCODE_ANY);
	if (b && text) {
		evbuffer_add(b, text, strlen(text));
		evbuffer_add(b, "\n", 1);
	}
	free(text);
	json_decref(j);
	http_send(h, code, "application/json", b);
}

void http_send_error(struct hreq *h, int code, const char *field, const char *msg)
{
	json_t *e = json_object(), *errs = json_array(), *b = json_object();
	json_object_set_new(e, "field", field ? json_string(field) : json_null());
	json_object_set_new(e, "message", json_string(msg));
	json_array_append_new(errs, e);
	json_object_set_new(b, "errors", errs);
	http_send_json(h, code, b);
}

void http_redirect(struct hreq *h, const char *location)
{
	evhttp_add_header(evhttp_request_get_output_headers(h->req), "Location", location);
	http_send(h, 303, NULL, NULL);
}

/* ---- commands ---- */

static void cmd_reply_cb(void *ud, int status, json_t *body)
{
	struct hreq *h = ud;
	http_cmd_done d = h->done;
	h->done = NULL;
	d(h, status, body);
}

void http_cmd(struct hreq *h, const char *name, json_t *params, bool what_if, http_cmd_done done)
{
	const struct cmd_def *def = cmd_find(name);
	if (def && def->writes)
		log_info("http", "%s (%s, %s) runs '%s'%s", h->who, admin_role_name(h->role),
			 h->iface, name, what_if ? " --what-if" : "");
	struct cmd_request r = {
		.name = name,
		.params = params,
		.what_if = what_if,
		.who = h->who,
		.iface = h->iface,
		.read_only = h->read_only,
	};
	h->done = done;
	/* h may be gone when this returns: the reply may come at once. */
	cmd_exec(h->env, &r, cmd_reply_cb, h);
	json_decref(params);
}

/* ---- sessions ---- */

/* ---- sessions any node of a cluster knows ----
 *
 * On a single node a session is a random id in this process's memory. On
 * a cluster the browser may reach any node, so the id is a token every
 * node can check: "c." NAME "." ISSUED (16 hex digits, unix seconds) "."
 * MAC (32 hex digits, HMAC-SHA256 truncated), keyed with a key derived
 * from the dialback secret all nodes share through the store. A node that
 * has not seen the session makes it from the token, with the same CSRF
 * token (derived from the id); each request still checks the account in
 * the store. Signing out ends it on this node and in the browser; another
 * node accepts a copied cookie until [admin] session_lifetime after it was
 * issued (regenerating the dialback secret ends every such session). */

#define TOKEN_PREFIX "c."
#define ISSUED_HEX   16
#define MAC_HEX	     32

static bool cluster_key(struct admin_http *ah, unsigned char key[32])
{
	const char *secret = ah->env ? ah->env->live.gw.dialback_secret : NULL;
	if (!ah->xs || !cluster_on(ah->xs) || !secret || !*secret)
		return false;
	static const char label[] = "fedgate panel session v1";
	unsigned len = 32;
	return HMAC(EVP_sha256(), secret, (int)strlen(secret), (const unsigned char *)label,
		    sizeof(label) - 1, key, &len) != NULL;
}

static void mac_hex(const unsigned char key[32], const char *what, size_t n, char *out,
		    size_t hexlen)
{
	unsigned char mac[32];
	unsigned len = sizeof(mac);
	HMAC(EVP_sha256(), key, 32, (const unsigned char *)what, n, mac, &len);
	for (size_t i = 0; i < hexlen / 2; i++)
		snprintf(out + 2 * i, 3, "%02x", mac[i]);
	OPENSSL_cleanse(mac, sizeof(mac));
}

/* The token for name issued at `issued` into id (HTTP_SID_MAX). */
static void token_make(const unsigned char key[32], const char *name, long long issued, char *id)
{
	int n = snprintf(id, HTTP_SID_MAX, TOKEN_PREFIX "%s.%016llx.", name,
			 (unsigned long long)issued);
	mac_hex(key, id, (size_t)n, id + n, MAC_HEX);
}

/* The name in a valid, unexpired token, into name (ADMIN_NAME_MAX + 1). */
static bool token_check(struct admin_http *ah, const unsigned char key[32], const char *id,
			char *name)
{
	size_t n = strlen(id), fixed = strlen(TOKEN_PREFIX) + 1 + ISSUED_HEX + 1 + MAC_HEX;
	if (n <= fixed || n - fixed > ADMIN_NAME_MAX || strncmp(id, TOKEN_PREFIX, 2) != 0)
		return false;
	const char *mac = id + n - MAC_HEX, *issued = mac - 1 - ISSUED_HEX;
	if (mac[-1] != '.' || issued[-1] != '.')
		return false;
	char want[MAC_HEX + 1];
	mac_hex(key, id, (size_t)(mac - id), want, MAC_HEX);
	if (!http_same_secret(want, mac))
		return false;
	char *end;
	long long at = strtoll(issued, &end, 16);
	time_t now = time(NULL);
	if (end != mac - 1 || at > (long long)now + 60 ||
	    (long long)now - at > (long long)ah->conf->admin_session_lifetime)
		return false;
	size_t nl = (size_t)(issued - 1 - (id + 2));
	memcpy(name, id + 2, nl);
	name[nl] = '\0';
	return true;
}

static struct panel_session *session_add(struct admin_http *ah, const char *name, const char *id,
					 const unsigned char *key);
static struct panel_session *session_find_local(struct admin_http *ah, const char *id);

struct panel_session *http_session_find(struct admin_http *ah, const char *id)
{
	struct panel_session *s = session_find_local(ah, id);
	unsigned char key[32];
	char name[ADMIN_NAME_MAX + 1];
	if (s || !id || !*id || !cluster_key(ah, key))
		return s;
	if (token_check(ah, key, id, name))
		s = session_add(ah, name, id, key); /* signed in on another node */
	OPENSSL_cleanse(key, sizeof(key));
	return s;
}

static struct panel_session *session_find_local(struct admin_http *ah, const char *id)
{
	time_t now = time(NULL);
	unsigned life = ah->conf->admin_session_lifetime;
	struct panel_session **pp = &ah->sessions;
	struct panel_session *found = NULL;
	while (*pp) {
		struct panel_session *s = *pp;
		if (now - s->last_used > (time_t)life) {
			*pp = s->next;
			json_decref(s->flash);
			free(s);
			ah->nsessions--;
			continue;
		}
		if (id && *id && http_same_secret(s->id, id))
			found = s;
		pp = &s->next;
	}
	return found;
}

void http_session_drop(struct admin_http *ah, const char *id)
{
	for (struct panel_session **pp = &ah->sessions; *pp; pp = &(*pp)->next) {
		if (strcmp((*pp)->id, id) == 0) {
			struct panel_session *s = *pp;
			*pp = s->next;
			json_decref(s->flash);
			free(s);
			ah->nsessions--;
			return;
		}
	}
}

struct panel_session *http_session_new(struct admin_http *ah, const char *name)
{
	unsigned char key[32];
	char id[HTTP_SID_MAX];
	if (!cluster_key(ah, key))
		return session_add(ah, name, NULL, NULL);
	token_make(key, name, (long long)time(NULL), id);
	struct panel_session *s = session_add(ah, name, id, key);
	OPENSSL_cleanse(key, sizeof(key));
	return s;
}

/* A session in this node's memory: id NULL for a random one (a single
 * node), else the token, whose CSRF token is derived with key. */
static struct panel_session *session_add(struct admin_http *ah, const char *name, const char *id,
					 const unsigned char *key)
{
	session_find_local(ah, NULL); /* expire old ones */
	if (ah->nsessions >= SESSIONS_MAX) {
		/* The oldest used goes. */
		struct panel_session *old = ah->sessions;
		for (struct panel_session *s = ah->sessions; s; s = s->next)
			if (s->last_used < old->last_used)
				old = s;
		http_session_drop(ah, old->id);
	}
	struct panel_session *s = calloc(1, sizeof(*s));
	if (!s)
		return NULL;
	if (id) {
		snprintf(s->id, sizeof(s->id), "%s", id);
		char what[HTTP_SID_MAX + 8];
		int n = snprintf(what, sizeof(what), "csrf|%s", id);
		mac_hex(key, what, (size_t)n, s->csrf, 64);
	} else {
		http_random_hex(s->id, 32);
		http_random_hex(s->csrf, 32);
	}
	snprintf(s->name, sizeof(s->name), "%s", name);
	s->last_used = time(NULL);
	s->next = ah->sessions;
	ah->sessions = s;
	ah->nsessions++;
	return s;
}

struct panel_session *http_hreq_session(struct hreq *h)
{
	return h->sid[0] ? http_session_find(h->ah, h->sid) : NULL;
}

const char *http_csrf(struct hreq *h)
{
	struct panel_session *s = http_hreq_session(h);
	return s ? s->csrf : "";
}

void http_flash_set(struct hreq *h, json_t *flash)
{
	struct panel_session *s = http_hreq_session(h);
	if (!s) {
		json_decref(flash);
		return;
	}
	json_decref(s->flash);
	s->flash = flash;
}

json_t *http_flash_take(struct hreq *h)
{
	struct panel_session *s = http_hreq_session(h);
	if (!s)
		return NULL;
	json_t *f = s->flash;
	s->flash = NULL;
	return f;
}

void http_set_cookie(struct hreq *h, const char *name, const char *value, const char *path,
		     long max_age)
{
	char c[300];
	snprintf(c, sizeof(c), "%s=%s; Path=%s; HttpOnly; SameSite=Strict%s%s", name, value, path,
		 h->tls ? "; Secure" : "", max_age == 0 ? "; Max-Age=0" : "");
	evhttp_add_header(evhttp_request_get_output_headers(h->req), "Set-Cookie", c);
}

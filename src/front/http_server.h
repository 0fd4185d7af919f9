/* What the HTTP toolkit (http.c) and the listener (admin_http.c) share:
 * the listener's state, the panel's sessions and the sign-in throttle.
 * Private to those two files. */
#ifndef FG_HTTP_SERVER_H
#define FG_HTTP_SERVER_H

#include "admin.h"

#include <event2/http.h>
#include <event2/keyvalq_struct.h>

#include <jansson.h>
#include <openssl/ssl.h>
#include <stdbool.h>
#include <stddef.h>
#include <time.h>

#define SESSIONS_MAX   1000
#define HEADERS_MAX    16384
#define HTTP_TIMEOUT_S 30
#define COOKIE_SESSION "fg_session"
#define COOKIE_SIGNIN  "fg_signin"

struct cmd_env;
struct evhttp;
struct fg_conf;
struct held;
struct hreq;
struct throttle;
struct xmpp_server;

struct panel_session {
	char id[HTTP_SID_MAX];
	char csrf[65];
	char name[ADMIN_NAME_MAX + 1];
	time_t last_used;
	json_t *flash;
	struct panel_session *next;
};

struct admin_http {
	struct event_base *base;
	const struct fg_conf *conf;
	struct cmd_env *env;
	struct xmpp_server *xs;
	struct evhttp *http;
	SSL_CTX *tls;
	struct panel_session *sessions;
	unsigned nsessions;
	struct throttle *signin; /* failed sign-ins by address (core/throttle.h) */
	struct held *held;	 /* sign-ins the throttle holds, answered later */
};

/* Random bytes as lowercase hex into out (2 * bytes + 1 long). */
void http_random_hex(char *out, size_t bytes);
/* Constant-time equality of two secrets. */
bool http_same_secret(const char *a, const char *b);
bool http_has_prefix(const char *s, const char *p);
/* The value of cookie name, "" when absent: of h's Cookie header, or of
 * the header's value c (NULL for none). */
void http_cookie_get(struct hreq *h, const char *name, char *out, size_t outlen);
void http_cookie_value(const char *c, const char *name, char *out, size_t outlen);
/* A request's URI as handlers see it: the percent-decoded path (shorter
 * than pathlen, no NUL inside) and the query's fields appended to query.
 * FG_INVAL, with path "/", for a missing, malformed or too long path. */
int http_target_decode(const struct evhttp_uri *uri, char *path, size_t pathlen,
		       struct evkeyvalq *query);
void http_set_cookie(struct hreq *h, const char *name, const char *value, const char *path,
		     long max_age);
void http_hreq_free(struct hreq *h);
struct panel_session *http_session_find(struct admin_http *ah, const char *id);
void http_session_drop(struct admin_http *ah, const char *id);
struct panel_session *http_session_new(struct admin_http *ah, const char *name);
/* The session of a request signed in by cookie, NULL when none. */
struct panel_session *http_hreq_session(struct hreq *h);

#endif

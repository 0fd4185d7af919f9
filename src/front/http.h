/* The HTTP toolkit of the admin side: one request being answered (`struct
 * hreq`), the ways to answer it, its inputs, running a command of the
 * command layer as the request's admin, the panel's session data, and
 * strict escaping. api.c, web.c and metrics.c build on this alone; the
 * listener that makes hreqs (admin_http.c) is above them. Handlers answer
 * exactly once with http_send*() or http_redirect(), which free the hreq. */
#ifndef FG_HTTP_H
#define FG_HTTP_H

/* A panel session id: 64 hex digits on a single node; on a cluster a
 * token any node can check (http.c, "c.NAME.ISSUED.MAC"). */
#define HTTP_SID_MAX 160

#include "admin.h"
#include "cmd.h"

#include <event2/buffer.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>
#include <jansson.h>
#include <stdbool.h>

struct admin_http;
struct xmpp_server;

struct hreq;
typedef void (*http_cmd_done)(struct hreq *h, int status, json_t *body /* owned */);

/* One request being answered. */
struct hreq {
	struct admin_http *ah;
	struct evhttp_request *req;
	struct xmpp_server *xs; /* the live streams and sessions (read only) */
	struct cmd_env *env;
	enum evhttp_cmd_type method;
	char path[512];		/* percent-decoded */
	struct evkeyvalq query; /* of the URI */
	struct evkeyvalq form;	/* an urlencoded body, parsed on first use */
	bool form_parsed;
	char *body; /* NUL-terminated copy of the request body */
	size_t body_len;
	char ip[64]; /* the client's address */
	bool tls;

	/* who asks, once authenticated */
	char who[ADMIN_NAME_MAX + 1];
	enum admin_role role;
	bool read_only;
	bool by_token;		/* Authorization: Bearer */
	char sid[HTTP_SID_MAX]; /* the session, when signed in by cookie */
	const char *iface;	/* "api" or "web" */

	http_cmd_done done; /* the command under way */
	json_t *keep;	    /* results a handler keeps between commands */
	void *state;	    /* handler data; freed with free() */
};

/* ---- answering ---- */

/* Sends code with body (NULL = empty) and the security headers, then frees
 * h. ctype NULL = no Content-Type. */
void http_send(struct hreq *h, int code, const char *ctype, struct evbuffer *body);
/* Steals j. */
void http_send_json(struct hreq *h, int code, json_t *j);
/* 303 See Other to location (a path of this server). */
void http_redirect(struct hreq *h, const char *location);
/* A JSON error body {"errors": [{"field": field, "message": msg}]}. */
void http_send_error(struct hreq *h, int code, const char *field, const char *msg);

/* ---- inputs ---- */

const char *http_query(struct hreq *h, const char *key);
/* A field of an application/x-www-form-urlencoded body; NULL if absent. */
const char *http_form(struct hreq *h, const char *key);
const char *http_header(struct hreq *h, const char *name);

/* ---- commands ---- */

/* Runs a command of the command layer as h's admin (who, iface, read
 * only for viewers); done(h, status, body) follows, maybe at once. params
 * is stolen. */
void http_cmd(struct hreq *h, const char *name, json_t *params, bool what_if, http_cmd_done done);

/* ---- sessions (the control panel) ---- */

/* The CSRF token of h's session ("" when none). */
const char *http_csrf(struct hreq *h);
/* A message for the next page of this session (after a redirect): a JSON
 * object the page renders, e.g. {"message": ..., "warnings": [...]}.
 * Stolen. */
void http_flash_set(struct hreq *h, json_t *flash);
/* The flash message, removed from the session; NULL when none. */
json_t *http_flash_take(struct hreq *h);

/* ---- strict escaping ---- */

/* Appends s to b with & < > " ' escaped for HTML text and attributes. */
void http_html(struct evbuffer *b, const char *s);
/* Appends s percent-encoded for a URL query value or path segment. */
void http_url(struct evbuffer *b, const char *s);

#endif

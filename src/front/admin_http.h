/* The HTTP admin listener ([listen] admin) on the daemon's event loop:
 * libevent's evhttp, optionally over TLS ([admin] certificate), serving the
 * JSON API (api.c), the control panel (web.c) and /metrics (metrics.c).
 *
 * This file owns what every request goes through: routing by prefix, who
 * is asking (a bearer token of an admin account, or a session cookie),
 * sessions with their CSRF tokens, the sign-in throttle, the body cap and
 * the security headers. Handlers get a `struct hreq`, run commands of the
 * command layer through http_cmd() and answer exactly once with
 * http_send*() or http_redirect(), which free the hreq. */
#ifndef FG_ADMIN_HTTP_H
#define FG_ADMIN_HTTP_H

#include <event2/event.h>
#include <openssl/ssl.h>
#include <stddef.h>

struct admin_http;
struct cmd_env;
struct fg_conf;
struct xmpp_server;

/* Opens every [listen] admin address; NULL with err on failure. With no
 * address configured, returns a handle that serves nothing. Commands run
 * against env; /metrics reads the live streams of xs. */
struct admin_http *admin_http_start(struct event_base *base, const struct fg_conf *conf,
				    struct cmd_env *env, struct xmpp_server *xs, char *err,
				    size_t errlen);
/* A reload, in two steps so that nothing changes when a step fails: the
 * [admin] certificate and key read into *out (NULL, FG_OK, when the
 * listener is plain HTTP; FG_ERR with err when they cannot be loaded)... */
int admin_http_tls_load(const struct fg_conf *c, SSL_CTX **out, char *err, size_t errlen);
/* ...then installed with the rest of conf: new connections get tls (owned
 * from here; open ones keep theirs), max_body and the sign-in limits change.
 * conf replaces the one given before and must live as long. The listeners
 * themselves stay (a restart moves them). */
void admin_http_reconfigure(struct admin_http *ah, const struct fg_conf *conf, SSL_CTX *tls);
/* After store_stop(), so that no command reply is still to come. Accepts
 * NULL, clears the pointer. */
void admin_http_stop(struct admin_http **ah);

#endif

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
/* After store_stop(), so that no command reply is still to come. Accepts
 * NULL, clears the pointer. */
void admin_http_stop(struct admin_http **ah);

#endif

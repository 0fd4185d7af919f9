/* The running daemon's state, shared by serve.c (which builds it) and
 * reload.c (which replaces its configuration). */
#ifndef FG_SERVER_H
#define FG_SERVER_H

#include "cmd.h"
#include "xmpp.h"

/* The running daemon: the XMPP layer's context, the command layer's env
 * (which owns the live state the XMPP layer reads), and the admin ways in. */
struct server {
	struct xmpp_server x;
	struct cmd_env env;
	struct control *control;   /* the CLI's way in */
	struct admin_http *http;   /* [listen] admin: the API and control panel */
	struct fg_conf *conf;	   /* owned; x.conf and env.live.conf borrow it; a
				    reload replaces it (reload.c) */
	struct notify *notify;	   /* the service manager, when one listens */
	struct cluster_sync *sync; /* other nodes' changes (PostgreSQL only) */
};

#endif

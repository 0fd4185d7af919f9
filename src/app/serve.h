/* `fedgate serve`: the daemon: loads config, opens listeners, runs the loop. */
#ifndef FG_SERVE_H
#define FG_SERVE_H

#include "cmd.h"
#include "xmpp.h"

/* The running daemon: the XMPP layer's context, the command layer's env
 * (which owns the live state the XMPP layer reads), and the admin ways in. */
struct server {
	struct xmpp_server x;
	struct cmd_env env;
	struct control *control; /* the CLI's way in */
	struct admin_http *http; /* [listen] admin: the API and control panel */
	struct fg_conf *conf;	 /* owned; x.conf and env.live.conf borrow it; a
				    reload replaces it (reload.c) */
	struct notify *notify;	 /* the service manager, when one listens */
};

/* Returns the process exit status. */
int serve_main(const char *conf_path);

#endif

/* `fedgate serve`: the daemon: loads config, opens listeners, runs the loop. */
#ifndef FG_SERVE_H
#define FG_SERVE_H

#include "cmd.h"

#include <event2/event.h>
#include <openssl/ssl.h>
#include <stdbool.h>

struct fg_conf;
struct stream;

/* What every stream can reach of the running daemon. */
struct server {
	struct event_base *base;
	struct fg_conf *conf;
	SSL_CTX *tls;
	struct stream *streams; /* all live streams, newest first */
	unsigned nstreams;
	bool stopping;
	struct cmd_env env;	 /* partners and gateway settings, live */
	struct store *store;	 /* the store thread */
	struct control *control; /* the CLI's way in */
	struct dns *dns;	 /* SRV and address lookups for s2s-out */
	SSL_CTX *tls_client;	 /* outbound s2s: our certificate as client */
	struct admin_http *http; /* [listen] admin: the API and control panel */
	/* Local users (c2s.c, roster.c, presence.c). */
	struct strmap *sessions; /* bare JID -> bound sessions */
	unsigned nsessions;
	struct strmap *auth_failures; /* "ip:ADDR" / "user:JID" -> recent failures */
	struct strmap *rosters;	      /* bare JID -> roster */
	struct event *refresh;	      /* re-probes remote contacts */
};

/* Returns the process exit status. */
int serve_main(const char *conf_path);

/* Called by a stream when it is gone, so the server forgets it. */
void server_stream_gone(struct server *srv, struct stream *s);
/* Inbound s2s streams in all (p NULL) or from one partner's domains. */
struct partner;
unsigned server_s2s_in_count(const struct server *srv, const struct partner *p);
/* Live streams whose peer has this address. */
unsigned server_streams_from(const struct server *srv, const char *peer);

#endif

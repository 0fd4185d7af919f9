/* `fedgate probe DOMAIN`: what a server-to-server stream to DOMAIN would
 * meet, before (or without) DOMAIN being a partner. DNS (both SRV names,
 * addresses, DNSSEC where the resolver knows), TCP to each target until one
 * answers, the stream features before and after STARTTLS, the TLS session
 * and the certificate (in test-im's words), SASL EXTERNAL actually tried
 * with our certificate, dialback offered or not; then which methods and
 * which rows of the negotiation matrix would work, most secure first.
 *
 * A probe has its own connection, outside the routes: it never routes a
 * stanza, never shows in `status`, never touches the store. It ends within
 * stream_establishment_timeout with whatever it learnt so far. */
#ifndef FG_PROBE_H
#define FG_PROBE_H

#include <jansson.h>

struct xmpp_server;

/* The command layer's statuses "done" (the settings probed would work) and
 * "refused" (bad input, or they would not). */
enum { PROBE_OK = 0, PROBE_FAILED = 1 };
typedef void (*probe_reply_fn)(void *ud, int status, json_t *body /* owned by the callee */);

/* params: {"domain", "tls"?, "sasl"?, "dialback"?} (strings or, from the
 * API, a boolean dialback); who is the admin asking (for the log). reply
 * runs exactly once, maybe before this returns. */
void probe_run(struct xmpp_server *srv, json_t *params, const char *who, probe_reply_fn reply,
	       void *ud);
/* Answers every probe still running with what it has (the daemon is
 * stopping) and frees their connections. */
void probe_stop(struct xmpp_server *srv);

#endif

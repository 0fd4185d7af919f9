/* `fedgate test-im` (the successor of Lync's Test-CsXmppIM): a message
 * from a local user (or the server's own test address) to a partner user
 * over the real outbound path, with a XEP-0184 receipt requested, and
 * every step reported: DNS, connect, TLS, authentication, the stanza
 * handed over, then the receipt or the error that came back. */
#ifndef FG_TESTIM_H
#define FG_TESTIM_H

#include <jansson.h>

struct xmpp_server;

/* The outcome, with the command layer's body shape ({"result": {"sent",
 * "delivered", "from", "steps"}, "errors", "warnings", "message"}); the
 * status values are the command layer's "done" and "refused". */
enum { TESTIM_OK = 0, TESTIM_FAILED = 1 };
typedef void (*testim_reply_fn)(void *ud, int status, json_t *body /* owned by the callee */);

/* params: {"to", "from"?, "body"?, "wait"?}; who is the admin asking (for
 * the log). reply runs exactly once, maybe before this returns. */
void testim_run(struct xmpp_server *srv, json_t *params, const char *who, testim_reply_fn reply,
		void *ud);
/* Installs the router tap that catches the answers. */
void testim_start(struct xmpp_server *srv);
/* Answers every test still waiting (the daemon is stopping). */
void testim_stop(struct xmpp_server *srv);

#endif

/* `fedgate test-im` (the successor of Lync's Test-CsXmppIM): a message
 * from a local user (or the server's own test address) to a partner user
 * over the real outbound path, with a XEP-0184 receipt requested, and
 * every step reported: DNS, connect, TLS, authentication, the stanza
 * handed over, then the receipt or the error that came back. */
#ifndef FG_TESTIM_H
#define FG_TESTIM_H

#include "cmd.h"

struct server;

void testim_run(struct cmd_env *env, const struct cmd_request *req, cmd_reply_fn reply, void *ud);
/* Installs the router tap that catches the answers. */
void testim_start(struct server *srv);
/* Answers every test still waiting (the daemon is stopping). */
void testim_stop(struct server *srv);

#endif

/* The live state the command layer changes and the XMPP layer reads: the
 * partner set, the gateway settings, the local accounts and the loaded
 * configuration. It sits in the pure layer so that both can see it without
 * seeing each other; the command layer owns it (cmd_env_load/clear) and
 * changes it only on the loop thread after a commit. */
#ifndef FG_LIVE_H
#define FG_LIVE_H

#include "policy.h"

struct accounts;
struct fg_conf;

struct live {
	struct policy *partners;
	struct gateway_settings gw;
	struct accounts *users; /* local accounts (users.h) */
	const struct fg_conf *conf;
};

#endif

/* An asynchronous Redis client on the daemon's event loop (hiredis async
 * with its libevent adapter), over TCP ("HOST:PORT") or a unix socket
 * ("unix:PATH"). It reconnects by itself with a growing delay (100 ms
 * doubling to 2 s) and tells its user when the link goes up or down; a
 * command never blocks the loop. A subscriber or a blocking reader needs a
 * connection of its own: make one struct redis per use. */
#ifndef FG_REDIS_H
#define FG_REDIS_H

#include <event2/event.h>
#include <hiredis/hiredis.h>
#include <stdbool.h>
#include <stddef.h>

struct redis;

/* The link came up (after a connect) or went down (once per loss; why
 * says how, for the user's one log line about it). */
typedef void (*redis_state_fn)(void *ud, bool up, const char *why);
/* A command's answer; r is NULL when the link went down before it came
 * (the command may or may not have run). r is freed after the call. rd is
 * NULL (and r too) when the client is being freed: then only let go of
 * ud, nothing else. */
typedef void (*redis_reply_fn)(struct redis *rd, void *ud, redisReply *r);

/* Checks addr ("HOST:PORT", "unix:PATH"): FG_OK, or FG_ERR with why. */
int redis_addr_check(const char *addr, char *err, size_t errlen);
/* A client for addr, connecting at once; name is for the log. NULL with
 * err when addr is invalid or out of memory. */
struct redis *redis_new(struct event_base *base, const char *addr, const char *name,
			redis_state_fn state, void *ud, char *err, size_t errlen);
/* Closes the link; the callbacks of pending commands run at once with
 * rd NULL (to free what they hold), no state callback runs. */
void redis_free(struct redis **rd);
bool redis_up(const struct redis *rd);
/* Sends a command (argv, binary-safe); cb (may be NULL) gets its answer.
 * FG_ERR at once when the link is down: cb is then never called. */
int redis_cmdv(struct redis *rd, redis_reply_fn cb, void *ud, int argc, const char **argv,
	       const size_t *lens);
/* The same with printf-like hiredis formatting (%s, %b, %d...). */
int redis_cmd(struct redis *rd, redis_reply_fn cb, void *ud, const char *fmt, ...);
/* Subscribes to channel (this client then does nothing else): cb gets
 * every message as hiredis gives it (["message", channel, payload], first
 * ["subscribe", channel, 1]) and NULL when the link goes; subscribe again
 * after the state callback says up. */
int redis_subscribe(struct redis *rd, const char *channel, redis_reply_fn cb, void *ud);
/* A blocking connection to addr with a timeout, for what runs outside the
 * loop (`fedgate check`, a node's last words at shutdown): NULL, or a
 * context whose err says why; the caller frees it (redisFree). */
redisContext *redis_connect_sync(const char *addr, unsigned timeout_ms);
/* Drops the link now (as if the server went away) and reconnects later:
 * for a reply that shows the connection cannot be trusted. */
void redis_reset(struct redis *rd);

#endif

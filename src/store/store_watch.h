/* Configuration changes made by other nodes of a cluster: a connection to
 * PostgreSQL of its own, on the daemon's event loop, that LISTENs on the
 * channel the store notifies when a commit changes partners or gateway
 * settings (store_db_commit sends pg_notify inside the transaction, so a
 * notification means the change is committed and readable).
 *
 * The connection never blocks the loop: each connect (libpq's blocking
 * getaddrinfo for a host name in the dsn, TCP, TLS, authentication) runs
 * on a short thread of its own that hands the connection to the loop,
 * which then uses libpq's non-blocking input. It reconnects with backoff
 * when PostgreSQL goes away, and, since notifications sent while it was
 * away are lost, asks its user to read everything again each time it is
 * listening anew. */
#ifndef FG_STORE_WATCH_H
#define FG_STORE_WATCH_H

#include <stdbool.h>
#include <stddef.h>

struct event_base;

/* The channel and the payload the store's commit sends:
 * {"node":"NODE","at_ms":MS_SINCE_EPOCH,"actions":["partner set x", ...],
 *  "more":N}, "more" (optional) counting the actions that did not fit. */
#define STORE_WATCH_CHANNEL "fedgate_config"
/* Bounds on what a payload may hold (PostgreSQL caps a payload at 8000
 * bytes anyway): more is refused, not truncated. */
#define STORE_WATCH_MAX_NODE	255
#define STORE_WATCH_MAX_ACTIONS 2000 /* "a", is 4 bytes: the payload cap holds fewer */
#define STORE_WATCH_MAX_ACTION	512
#define STORE_WATCH_MAX_PAYLOAD 8000

/* One notification, parsed: every string is NUL-free, printable UTF-8
 * without control characters (safe to log). */
struct store_watch_note {
	char *node;
	long long at_ms;
	char **actions;
	size_t nactions;
	long long more; /* actions the payload had no room for */
};

/* Parses a payload; FG_OK and *n filled, or FG_INVAL / FG_NOMEM with err
 * saying what is wrong (*n then empty). */
int store_watch_parse(const char *payload, size_t len, struct store_watch_note *n, char *err,
		      size_t errlen);
void store_watch_note_clear(struct store_watch_note *n);
/* "partner set a, partner remove b" into buf, then " and N more" when the
 * payload counted more (cut with "..." when long). */
void store_watch_actions_text(const struct store_watch_note *n, char *buf, size_t len);

struct store_watch_hooks {
	/* A notification, parsed (borrowed for the call). */
	void (*note)(void *ud, const struct store_watch_note *n);
	/* Listening (again): what others changed before may have been
	 * missed; read everything once. reconnected is false the first
	 * time. Also called after a payload that cannot be parsed: something
	 * changed, what is unknown. */
	void (*resync)(void *ud, bool reconnected);
	void *ud;
};

struct store_watch;

/* Starts connecting to dsn (a libpq connection string, never logged: it may
 * hold a password); NULL when out of memory. hooks is copied. */
struct store_watch *store_watch_start(struct event_base *base, const char *dsn,
				      const struct store_watch_hooks *hooks);
/* Whether it is listening now. */
bool store_watch_listening(const struct store_watch *w);
void store_watch_free(struct store_watch **w);

#endif

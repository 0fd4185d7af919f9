/* Happy Eyeballs (RFC 8305) for outbound connections: the addresses of a
 * destination raced rather than tried one after another, so that an
 * address family that is broken on the way (an IPv6 route that drops
 * packets, a firewall that never answers) costs a quarter of a second,
 * not a connect timeout per address.
 *
 * The caller gives the addresses in the order to try (families
 * interleaved, IPv6 first: dns.c). The first starts at once; another
 * starts every HAPPY_ATTEMPT_DELAY_MS while none has connected, and at
 * once when one fails. The first to connect wins: it becomes the owner's
 * connection, with the owner's conn_ops, and every other attempt is
 * closed. */
#ifndef FG_HAPPY_H
#define FG_HAPPY_H

#include "conn.h"

#include <stddef.h>
#include <sys/socket.h>

#define HAPPY_ATTEMPT_DELAY_MS 250 /* RFC 8305 §5's recommended Connection Attempt Delay */
#define HAPPY_MAX_RACING       4   /* attempts connecting at once, at most */

struct happy;

struct happy_ops {
	/* The i-th address of the list (i < n). */
	void (*addr)(void *ud, size_t i, const struct sockaddr **sa, socklen_t *salen);
	/* Attempt i started on c (the owner may label it); for step logs. */
	void (*started)(void *ud, size_t i, struct conn *c);
	/* Attempt i failed; others may still win. */
	void (*failed)(void *ud, size_t i, const char *why);
	/* Attempt i connected first. The race is over and freed before this
	 * is called: the owner drops its pointer to it. c is the owner's now,
	 * calling the owner's ops. */
	void (*won)(void *ud, size_t i, struct conn *c);
	/* Every attempt failed (last_why: the last failure). Freed too. */
	void (*lost)(void *ud, const char *last_why);
};

struct happy_params {
	const char *ctx_prefix;		  /* conn_connect's */
	const struct conn_limits *limits; /* conn_connect's */
	unsigned connect_timeout;	  /* seconds per attempt */
	unsigned attempt_delay_ms;	  /* 0: HAPPY_ATTEMPT_DELAY_MS */
	const struct conn_ops *owner_ops; /* what the winner calls */
	void *owner_ud;
};

/* Starts the race over addresses [0, n), n >= 1. NULL when out of memory
 * (nothing was started, no callback follows). */
struct happy *happy_start(struct event_base *base, size_t n, const struct happy_params *p,
			  const struct happy_ops *ops, void *ud);
/* Ends a race before it ends by itself: every attempt is closed, no
 * callback follows. NULL is fine. */
void happy_cancel(struct happy **h);

#endif

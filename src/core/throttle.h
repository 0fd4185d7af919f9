/* Password-guessing throttle, shared by client logins (c2s SASL) and the
 * control panel's sign-in: it slows guessing without ever locking an
 * account.
 *
 * Failures are counted per client address and per (address, account).
 * Each failure is answered after a delay that doubles with the address's
 * failures (and, more gently, with its failures for that account); an
 * attempt from an address still inside its delay waits for its turn, so
 * parallel connections do not multiply the guessing rate; an address with
 * refuse_after failures is refused, and only that address. Nothing is ever
 * counted against an account as such, so failures elsewhere never refuse
 * or delay the right password from an address that has not failed.
 *
 * Pure: the caller passes the time (monotonic milliseconds) and holds the
 * answers with its own timers. Memory is bounded: an entry is forgotten
 * window seconds after its last failure, and beyond max_entries the one
 * least recently failed goes first. */
#ifndef FG_THROTTLE_H
#define FG_THROTTLE_H

#include <stddef.h>
#include <stdint.h>

struct throttle_limits {
	unsigned refuse_after; /* failures of one address before it is refused */
	unsigned window_s;     /* an entry is forgotten this long after its last failure */
	unsigned delay_max_ms; /* the cap of the delays; 0 = no delays */
	size_t max_entries;    /* addresses and pairs kept at most */
};

enum throttle_verdict {
	THROTTLE_NOW,	 /* check the password at once */
	THROTTLE_WAIT,	 /* hold the attempt *wait_ms, then check it */
	THROTTLE_REFUSE, /* answer "try later" without checking; *wait_ms until
			    the address is forgotten */
};

struct throttle;

/* NULL when out of memory. */
struct throttle *throttle_new(const struct throttle_limits *lim);
void throttle_free(struct throttle **t);
/* A reload: new refuse_after, window and delay cap (max_entries stays). */
void throttle_set_limits(struct throttle *t, const struct throttle_limits *lim);

/* Before an attempt from addr is checked. A WAIT reserves the address's
 * next turn, so the attempt must be checked when the wait is over. */
enum throttle_verdict throttle_admit(struct throttle *t, const char *addr, uint64_t now_ms,
				     uint64_t *wait_ms);
/* A wrong password from addr for account (NULL or "" when the attempt
 * named none): counted; returns how long to hold the answer. Unknown
 * accounts are counted exactly like known ones. */
uint64_t throttle_failed(struct throttle *t, const char *addr, const char *account,
			 uint64_t now_ms);
/* The right password: the address's failures for that account are
 * forgotten (the address's own count stays: a guesser who owns one account
 * must not reset itself by signing in). */
void throttle_succeeded(struct throttle *t, const char *addr, const char *account);
/* Failures counted for addr now. */
unsigned throttle_failures(struct throttle *t, const char *addr, uint64_t now_ms);
/* Entries held (addresses and pairs). */
size_t throttle_size(const struct throttle *t);

/* CLOCK_MONOTONIC in milliseconds: what the callers pass as now_ms. */
uint64_t throttle_now_ms(void);

#endif

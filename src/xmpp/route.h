/* A route per destination: one (local domain, remote domain) pair that
 * owns what outbound traffic to that pair needs across streams -- the
 * queue of stanzas waiting for an authenticated stream, the current
 * outbound stream (s2s_out.c), the retry delay after a failure, and the
 * last failure in an admin's words (when, why, how many attempts in a row,
 * when the next one is). A route outlives its streams, so `fedgate status`
 * and the panel can show a partner that keeps failing and why.
 *
 * Stanzas sent while the route waits to retry stay in its queue (bounded)
 * and go out with the next attempt, instead of each one starting a stream;
 * the retry timer starts that attempt. Callers that want an answer at once
 * (`fedgate test-im`, dialback verification) are answered with the last
 * failure instead of waiting. */
#ifndef FG_ROUTE_H
#define FG_ROUTE_H

#include "dialback.h"
#include "xml.h"

#include <stdbool.h>
#include <stddef.h>
#include <time.h>

struct partner;
struct route;
struct xmpp_server;

/* Stanzas waiting for one route; beyond this, or beyond [limits]
 * output_queue bytes, they are refused with resource-constraint. */
#define ROUTE_QUEUE_MAX 1000
/* After a failure the next attempt waits 5 s, doubling up to 10 minutes,
 * so a partner that is down is not hammered. */
#define ROUTE_BACKOFF_FIRST_S 5
#define ROUTE_BACKOFF_MAX_S   600

/* Called once per stanza: sent (ok) or not, with the steps taken so far,
 * one per line, and on failure the reason an admin can act on last. */
typedef void (*route_done)(void *ud, bool ok, const char *report);

/* Queues stanza (taken) for remote from local. With the route's stream
 * ready and room in it, it goes out at once; with none it starts one; while
 * the route waits to retry it waits in the queue (or, with a done callback,
 * is answered at once with the last failure). Whatever happens the sender
 * learns it exactly once: done(ok) when given, else a stanza error through
 * the router's bounce (a full queue: resource-constraint; a stream that
 * failed: remote-server-not-found, or remote-server-timeout when it
 * stalled; shutdown: service-unavailable). A ready stream without room
 * holds the inbound stream feeding it (xmpp_hold_feeder); a route still
 * connecting or waiting to retry does not (that may take minutes), its
 * full queue answers at once. FG_OK, or FG_NOMEM (answered as well). */
int route_send(struct xmpp_server *srv, const char *local, const char *remote,
	       struct xml_node *stanza, route_done done, void *ud);

/* The receiving role of Server Dialback (XEP-0220): asks remote's
 * authoritative server whether key is valid for (local, remote, id), over
 * the route's outbound stream. cb runs exactly once with DB_VALID,
 * DB_INVALID or DB_ERROR (cond the condition to answer with, why what went
 * wrong). FG_OK / FG_NOMEM. */
typedef void (*route_verified)(void *ud, int verdict, enum db_cond cond, const char *why);
int route_verify(struct xmpp_server *srv, const char *local, const char *remote, const char *id,
		 const char *key, route_verified cb, void *ud);

/* XEP-0288: the inbound stream s, authenticated for remote -> local, is
 * bidirectional: the route (local, remote) writes to it while it is READY
 * instead of opening a stream of its own (one stream a route uses at a
 * time; its own outbound one when that is up). What the route queued goes
 * out now. */
struct stream;
void route_bidi_attach(struct xmpp_server *srv, const char *local, const char *remote,
		       struct stream *s);
/* s is closing or gone: every route that used it forgets it, and one with
 * stanzas waiting opens its own outbound stream as without XEP-0288 (or
 * waits for its retry delay), so nothing queued is lost. */
void routes_bidi_gone(struct xmpp_server *srv, const struct stream *s);
/* s has room again: the routes using it write what waits. */
void routes_bidi_drained(struct xmpp_server *srv, const struct stream *s);

/* The partner's server ended an inbound stream with a stream error: why
 * becomes the route's last failure, shown by `fedgate status`; it sets no
 * retry delay (no attempt of ours failed). */
void route_note_peer_error(struct xmpp_server *srv, const char *local, const char *remote,
			   const char *why);
/* Closes the streams of every route to domain (NULL: all, at shutdown);
 * what is queued is reported to its senders with reason. Not a failure of
 * the partner: no retry delay is set. */
void routes_close_domain(struct xmpp_server *srv, const char *domain, const char *reason);
/* The partner's record changed: the routes to domain forget their retry
 * delay and last failure, so the next stanza tries at once. */
void routes_reset(struct xmpp_server *srv, const char *domain);
/* `fedgate partner retry`: the routes to domain forget their retry delay;
 * those with stanzas waiting try at once, the others keep their record
 * (marked for an immediate next attempt). Returns how many routes started
 * an attempt. */
unsigned routes_retry(struct xmpp_server *srv, const char *domain);
/* Failures counted since start for each remote domain with any, into obj
 * (a json_t object): {remote: {kind: n}} (kinds: route_fail_kinds). */
void routes_failure_counts(const struct xmpp_server *srv, void *obj);
/* Outbound streams under way or up, in all (p NULL) or to any of p's
 * domains. */
unsigned routes_stream_count(const struct xmpp_server *srv, const struct partner *p);
/* Appends `fedgate status` rows (json_t objects) to rows (a json_t
 * array): one per suspended partner (direction "partner", state
 * "suspended"), one per outbound stream (direction "out", with the route's last
 * failure when it has one) and one per route that has no stream but a
 * failure on record (direction "route", state "retry-wait" or "failed"). */
void routes_status(const struct xmpp_server *srv, void *rows);
/* Frees every route and stream at once, without callbacks (final exit;
 * queued stanzas are still reported to senders that asked). */
void routes_free_all(struct xmpp_server *srv);

/* ---- for tests and diagnostics ---- */

/* A failure record: kept while the route fails and for
 * ROUTE_FAILURE_KEEP_S after a stream comes up again, so an admin who
 * looks later still sees what happened. */
#define ROUTE_FAILURE_KEEP_S 3600

struct route_failure {
	time_t at;	       /* the last failure; 0: none on record */
	time_t first;	       /* when this run of failures began */
	char reason[600];      /* the last failure in an admin's words */
	bool peer;	       /* reason is the peer's own stream error */
	enum db_cond cond;     /* remote-server-timeout or -not-found */
	unsigned attempts;     /* failed attempts of ours in a row */
	time_t next_retry;     /* not before; 0: at once */
	unsigned delay;	       /* seconds between the last failure and next_retry */
	unsigned long bounced; /* stanzas answered undelivered since first */
	time_t recovered;      /* a stream came up since; 0: still failing */
};

/* The kinds of failure counted per route for /metrics (s2s_out_fail_kind
 * and the peer's stream errors): a fixed set, so labels stay bounded. */
#define ROUTE_FAIL_KINDS 7
extern const char *const route_fail_kinds[ROUTE_FAIL_KINDS];

struct route *route_find(const struct xmpp_server *srv, const char *local, const char *remote);
const struct route_failure *route_last_failure(const struct route *r);
/* Still failing: a failure on record and no stream up since. */
bool route_failing(const struct route *r);
size_t route_queued(const struct route *r);
bool route_has_stream(const struct route *r);
/* The inbound bidirectional stream the route writes to, or NULL. */
const struct stream *route_bidi(const struct route *r);

#endif

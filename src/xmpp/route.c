#include "route.h"

#include "conf.h"
#include "conn.h"
#include "counters.h"
#include "fg.h"
#include "history.h"
#include "live.h"
#include "log.h"
#include "policy.h"
#include "s2s_out.h"
#include "dialback.h"
#include "stream.h"
#include "strmap.h"
#include "xmpp.h"

#include <assert.h>
#include <event2/event.h>
#include <jansson.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct route_item {
	struct xml_node *stanza;
	size_t bytes; /* serialized, for the queue's byte cap */
	route_done done;
	void *ud;
	struct route_item *next;
};

struct route {
	struct xmpp_server *srv;
	char *local, *remote;
	char key[2200]; /* "local remote": no domain has a space */
	char ctx[300];

	struct route_item *queue, **tail;
	size_t queued, queued_bytes;
	struct event *stall;	       /* the ready stream took nothing for too long */
	unsigned long long stall_mark; /* s2s_out_flushed() when it started */
	/* The stanza error condition for what is queued when the stream
	 * fails now: set by whoever ends it (a stall, an admin, shutdown). */
	const char *fail_condition;

	struct s2s_out *out; /* the current stream; NULL when none */
	/* XEP-0288: an inbound stream from remote that carries our stanzas
	 * too (route_bidi_attach), used while out is not ready; NULL when
	 * none. Never used for db:verify (XEP-0288 §2.2: not on the stream
	 * whose key is being verified). */
	struct stream *bidi;
	struct route_failure last;
	unsigned long fails[ROUTE_FAIL_KINDS]; /* since start, by kind */
	struct event *retry;		       /* starts the next attempt for what is queued */

	struct route *prev, *next;
};

struct routes {
	struct strmap *by_key;
	struct route *list; /* newest first */
};

static struct routes *routes_of(struct xmpp_server *srv)
{
	if (!srv->routes) {
		struct routes *rs = calloc(1, sizeof(*rs));
		if (!rs)
			return NULL;
		rs->by_key = strmap_new();
		if (!rs->by_key) {
			free(rs);
			return NULL;
		}
		srv->routes = rs;
	}
	return srv->routes;
}

static void make_key(char *buf, size_t len, const char *local, const char *remote)
{
	snprintf(buf, len, "%s %s", local, remote);
}

struct route *route_find(const struct xmpp_server *srv, const char *local, const char *remote)
{
	char key[2200];
	if (!srv->routes)
		return NULL;
	make_key(key, sizeof(key), local, remote);
	return strmap_get(srv->routes->by_key, key);
}

const char *const route_fail_kinds[ROUTE_FAIL_KINDS] = {
	"dns", "connect", "tls", "auth", "timeout", "peer-error", "stream",
};

static void count_failure(struct route *r, const char *kind)
{
	size_t i = 0;
	while (i < ROUTE_FAIL_KINDS - 1 && strcmp(route_fail_kinds[i], kind) != 0)
		i++; /* anything unknown counts as the last, "stream" */
	r->fails[i]++;
}

const struct route_failure *route_last_failure(const struct route *r)
{
	return &r->last;
}

bool route_failing(const struct route *r)
{
	return r->last.at && !r->last.recovered;
}

/* A record that recovered long enough ago is no longer shown. */
static bool has_record(const struct route *r)
{
	return r->last.at &&
	       (!r->last.recovered || time(NULL) - r->last.recovered <= ROUTE_FAILURE_KEEP_S);
}

/* A failure now: it continues the record of a route still failing, or
 * starts a new one. */
static struct route_failure *record_failure(struct route *r, const char *why, bool peer)
{
	struct route_failure *f = &r->last;
	time_t now = time(NULL);
	if (!route_failing(r)) {
		*f = (struct route_failure){0};
		f->first = now;
	}
	f->at = now;
	f->peer = peer;
	snprintf(f->reason, sizeof(f->reason), "%s", why);
	return f;
}

size_t route_queued(const struct route *r)
{
	return r->queued;
}

bool route_has_stream(const struct route *r)
{
	return r->out != NULL;
}

static bool out_ready_(const struct route *r)
{
	return r->out && s2s_out_is_ready(r->out);
}

/* The bidirectional inbound stream is what the route writes to: its own
 * stream, when up, comes first. */
static bool via_bidi(const struct route *r)
{
	return !out_ready_(r) && r->bidi && stream_state(r->bidi) == STREAM_READY;
}

/* A stream is up that stanzas can be written to now. */
static bool route_ready(const struct route *r)
{
	return out_ready_(r) || via_bidi(r);
}

static bool has_room(const struct route *r)
{
	return via_bidi(r) ? stream_has_room(r->bidi) : s2s_out_has_room(r->out);
}

static unsigned long long flushed(const struct route *r)
{
	return via_bidi(r) ? conn_flushed(stream_conn(r->bidi)) : s2s_out_flushed(r->out);
}

const struct stream *route_bidi(const struct route *r)
{
	return r->bidi;
}

static void on_retry(evutil_socket_t fd, short what, void *arg);
static void on_stall(evutil_socket_t fd, short what, void *arg);
static void start(struct route *r);

static struct route *route_get(struct xmpp_server *srv, const char *local, const char *remote)
{
	struct route *r = route_find(srv, local, remote);
	if (r)
		return r;
	struct routes *rs = routes_of(srv);
	if (!rs || !(r = calloc(1, sizeof(*r))))
		return NULL;
	r->srv = srv;
	r->local = strdup(local);
	r->remote = strdup(remote);
	r->tail = &r->queue;
	r->retry = evtimer_new(srv->base, on_retry, r);
	r->stall = evtimer_new(srv->base, on_stall, r);
	make_key(r->key, sizeof(r->key), local, remote);
	snprintf(r->ctx, sizeof(r->ctx), "route %s->%s", local, remote);
	if (!r->local || !r->remote || !r->retry || !r->stall ||
	    strmap_put(rs->by_key, r->key, r, NULL) != FG_OK) {
		if (r->retry)
			event_free(r->retry);
		if (r->stall)
			event_free(r->stall);
		free(r->local);
		free(r->remote);
		free(r);
		return NULL;
	}
	r->next = rs->list;
	if (rs->list)
		rs->list->prev = r;
	rs->list = r;
	return r;
}

static struct route_item *pop(struct route *r)
{
	struct route_item *it = r->queue;
	assert(it && r->queued > 0 && r->queued_bytes >= it->bytes);
	r->queue = it->next;
	if (!r->queue)
		r->tail = &r->queue;
	r->queued--;
	r->queued_bytes -= it->bytes;
	return it;
}

/* The sender of a stanza that will not be sent learns why: the report to a
 * caller that asked (test-im, which reads report), a stanza error to anyone
 * else (RFC 6120 §8.3.3), through the router. */
static void undeliverable(struct route *r, struct xml_node *st, route_done done, void *ud,
			  const char *condition, const char *why, const char *report)
{
	log_info(r->ctx, "undeliverable stanza to %s: %s", r->remote, why);
	if (route_failing(r))
		r->last.bounced++;
	if (done) {
		done(ud, false, report ? report : why);
		xml_free(&st);
		return;
	}
	bool wait = strcmp(condition, "resource-constraint") == 0 ||
		    strcmp(condition, "remote-server-timeout") == 0 ||
		    strcmp(condition, "service-unavailable") == 0;
	r->srv->bounce(r->srv, st, wait ? "wait" : "cancel", condition, why);
}

static void write_one(struct route *r, struct xml_node *st, route_done done, void *ud)
{
	if (via_bidi(r)) {
		/* stream_offer counts it delivered and takes it. */
		if (stream_offer(r->bidi, st)) {
			stream_touch(r->bidi); /* in use: not idle */
			history_note_stanza(r->srv, r->remote, false);
			if (done)
				done(ud, true, "sent over the partner's bidirectional stream\n");
		} else {
			undeliverable(r, st, done, ud, "resource-constraint",
				      "the bidirectional stream to it has no room", NULL);
		}
		return;
	}
	if (s2s_out_write(r->out, st)) {
		counters_stanza(STANZA_DELIVERED, NULL);
		history_note_stanza(r->srv, r->remote, false);
		if (done)
			done(ud, true, s2s_out_report(r->out));
		xml_free(&st);
	} else {
		undeliverable(r, st, done, ud, "internal-server-error",
			      "out of memory writing to the stream", NULL);
	}
}

/* The stall clock measures progress: it fires stalled_output after the
 * partner last took a byte of ours. */
static void arm_stall(struct route *r)
{
	struct timeval tv = {(time_t)r->srv->conf->timeout_stalled_output, 0};
	r->stall_mark = flushed(r);
	evtimer_add(r->stall, &tv);
}

/* Writes what the ready stream has room for. What stays waits for the
 * stream to drain, and the sender feeding it is held meanwhile; a stream
 * that takes nothing for [timeouts] stalled_output fails (on_stall). */
static void flush(struct route *r)
{
	while (r->queue && route_ready(r) && has_room(r)) {
		struct route_item *it = pop(r);
		write_one(r, it->stanza, it->done, it->ud);
		free(it);
	}
	if (!r->queue) {
		evtimer_del(r->stall);
		xmpp_release_held(r->srv, r);
	} else if (route_ready(r)) {
		if (!evtimer_pending(r->stall, NULL))
			arm_stall(r);
		xmpp_hold_feeder(r->srv, r);
	}
}

/* Everything queued learns why it will not be sent. */
static void fail_all(struct route *r, const char *condition, const char *why, const char *report)
{
	while (r->queue) {
		struct route_item *it = pop(r);
		undeliverable(r, it->stanza, it->done, it->ud, condition, why, report);
		free(it);
	}
	assert(r->queued == 0 && r->queued_bytes == 0 && r->tail == &r->queue);
	evtimer_del(r->stall);
	xmpp_release_held(r->srv, r);
}

static void on_stall(evutil_socket_t fd, short what, void *arg)
{
	struct route *r = arg;
	(void)fd;
	(void)what;
	if (!route_ready(r))
		return;
	if (flushed(r) != r->stall_mark) {
		arm_stall(r); /* slow, not stalled */
		return;
	}
	char why[300];
	snprintf(why, sizeof(why),
		 "%s read nothing for %u seconds while %zu bytes waited for it ([timeouts] "
		 "stalled_output)",
		 r->remote, r->srv->conf->timeout_stalled_output,
		 (via_bidi(r) ? conn_output_pending(stream_conn(r->bidi))
			      : s2s_out_pending(r->out)) +
			 r->queued_bytes);
	if (via_bidi(r)) {
		/* The partner's stream goes; what waits tries a stream of our
		 * own (routes_bidi_gone). */
		stream_error(r->bidi, "resource-constraint", why);
		return;
	}
	r->fail_condition = "remote-server-timeout";
	s2s_out_fail(r->out, why);
}

static void out_drained(void *owner)
{
	flush(owner);
}

static void out_ready(void *owner)
{
	struct route *r = owner;
	/* Authenticated: the partner works again; the record stays a while
	 * for the admin, without its retry delay. */
	if (route_failing(r)) {
		log_info(r->ctx, "%s works again after %u failed attempt(s) since %lds ago",
			 r->remote, r->last.attempts, (long)(time(NULL) - r->last.first));
		r->last.recovered = time(NULL);
	}
	r->last.delay = 0;
	r->last.next_retry = 0;
	evtimer_del(r->retry);
	history_note_event(r->srv, HISTORY_CONNECTED, false, r->local, r->remote,
			   r->out ? s2s_out_method(r->out) : NULL, NULL);
	flush(r);
}

static void out_failed(void *owner, enum db_cond cond, const char *why, const char *report,
		       bool attempted)
{
	struct route *r = owner;
	const char *kind =
		r->fail_condition && strcmp(r->fail_condition, "remote-server-timeout") == 0
			? "timeout"
		: r->out ? s2s_out_fail_kind(r->out)
			 : "stream";
	r->out = NULL;
	/* An admin's change or the shutdown (routes_close_domain) is no
	 * failure of the partner's. */
	bool ours = r->fail_condition && strcmp(r->fail_condition, "service-unavailable") == 0;
	if (attempted && !ours) {
		/* Only a real attempt counts: a refusal before DNS (limits, no
		 * partner) says nothing about the partner's server. */
		struct route_failure *f = record_failure(r, why, strcmp(kind, "peer-error") == 0);
		f->delay = f->delay ? f->delay * 2 : ROUTE_BACKOFF_FIRST_S;
		if (f->delay > ROUTE_BACKOFF_MAX_S)
			f->delay = ROUTE_BACKOFF_MAX_S;
		f->next_retry = f->at + (time_t)f->delay;
		f->attempts++;
		f->cond = cond;
		count_failure(r, kind);
		history_note_event(r->srv, HISTORY_FAILED, false, r->local, r->remote, NULL,
				   f->reason);
	}
	const char *c = r->fail_condition      ? r->fail_condition
			: cond != DB_COND_NONE ? dialback_cond_name(cond)
					       : "remote-server-not-found";
	r->fail_condition = NULL;
	if (via_bidi(r) && strcmp(c, "service-unavailable") != 0) {
		/* Our own stream failed (say one opened for a dialback
		 * verification) but the partner's bidirectional one is up:
		 * what waits goes there. */
		flush(r);
		return;
	}
	fail_all(r, c, why, report);
}

static void out_closed(void *owner, const char *reason)
{
	struct route *r = owner;
	history_note_event(r->srv, HISTORY_CLOSED, false, r->local, r->remote,
			   r->out ? s2s_out_method(r->out) : NULL, reason);
	r->out = NULL;
	/* What still waits (for room on a bidirectional stream, or for this
	 * one) goes on another stream. */
	if (r->queued && !r->srv->stopping)
		start(r);
}

static const struct s2s_out_ops route_out_ops = {
	.ready = out_ready,
	.failed = out_failed,
	.closed = out_closed,
	.drained = out_drained,
};

/* A refusal before any stream exists: everything queued learns why. */
static void refuse(struct route *r, const char *condition, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static void refuse(struct route *r, const char *condition, const char *fmt, ...)
{
	char why[700];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(why, sizeof(why), fmt, ap);
	va_end(ap);
	log_warn(r->ctx, "failed: %s", why);
	char report[720];
	snprintf(report, sizeof(report), "failed: %s\n", why);
	fail_all(r, condition, why, report);
}

/* Starts a stream for the route when none is under way and the retry
 * delay allows; the limits are checked here, where all routes are seen.
 * start_out even beside a bidirectional stream (dialback verification
 * needs a stream of our own). */
/* Streams the other nodes of a cluster hold (none on a single node). */
static unsigned elsewhere(const struct xmpp_server *srv, const struct partner *p)
{
	return srv->cluster_s2s ? srv->cluster_s2s(srv, p) : 0;
}

static void start_out(struct route *r)
{
	struct xmpp_server *srv = r->srv;
	if (r->out)
		return;
	const struct partner *p = policy_lookup(srv->live->partners, r->remote);
	const struct gateway_settings *gw = &srv->live->gw;
	if (!p) {
		refuse(r, "not-allowed", "%s is not an allowed federation partner", r->remote);
		return;
	}
	if (!p->enabled) {
		refuse(r, "service-unavailable", PARTNER_SUSPENDED_FMT, p->domain);
		return;
	}
	if (routes_stream_count(srv, NULL) + xmpp_s2s_in_count(srv, NULL) + elsewhere(srv, NULL) +
		    1 >
	    gw->connection_limit) {
		refuse(r, "resource-constraint",
		       "the gateway's connection_limit (%u streams) is reached",
		       gw->connection_limit);
		return;
	}
	if (routes_stream_count(srv, p) + xmpp_s2s_in_count(srv, p) + elsewhere(srv, p) + 1 >
	    partner_connection_limit(p, gw)) {
		refuse(r, "resource-constraint",
		       "the connection limit for partner %s (%u streams) is reached", p->domain,
		       partner_connection_limit(p, gw));
		return;
	}
	r->out = s2s_out_new(srv, r->local, r->remote, &route_out_ops, r);
	if (!r->out) {
		refuse(r, "resource-constraint", "out of memory");
		return;
	}
	/* May fail at once: out_failed then clears r->out. */
	s2s_out_begin(r->out, p);
}

static void start(struct route *r)
{
	if (via_bidi(r))
		flush(r);
	else
		start_out(r);
}

static long waiting_s(const struct route *r)
{
	time_t now = time(NULL);
	return r->last.next_retry > now ? (long)(r->last.next_retry - now) : 0;
}

static void on_retry(evutil_socket_t fd, short what, void *arg)
{
	struct route *r = arg;
	(void)fd;
	(void)what;
	if (r->queued && !r->srv->stopping) {
		log_info(r->ctx, "retrying %s for %zu queued stanza(s)", r->remote, r->queued);
		start(r);
	}
}

static void backoff_message(const struct route *r, char *buf, size_t len)
{
	long wait = waiting_s(r);
	snprintf(buf, len, "%s failed %lds ago (%s); next attempt in %lds", r->remote,
		 (long)(time(NULL) - r->last.at), r->last.reason, wait);
}

static size_t stanza_bytes(const struct xml_node *st)
{
	struct xml_ctx ctx = {
		.default_ns = XML_NS_SERVER, .stream_prefix = true, .db_prefix = true};
	struct xml_buf b = {0};
	xml_serialize(st, &ctx, &b);
	size_t n = b.oom ? 0 : b.len;
	xml_buf_free(&b);
	return n;
}

int route_send(struct xmpp_server *srv, const char *local, const char *remote,
	       struct xml_node *stanza, route_done done, void *ud)
{
	if (srv->stopping) {
		/* Nothing new starts; the sender still learns it. */
		struct route tmp = {.srv = srv, .remote = (char *)remote};
		snprintf(tmp.ctx, sizeof(tmp.ctx), "route %s->%s", local, remote);
		undeliverable(&tmp, stanza, done, ud, "service-unavailable",
			      "the server is shutting down", NULL);
		return FG_OK;
	}
	const struct partner *p = policy_lookup(srv->live->partners, remote);
	if (p && !p->enabled) {
		/* No attempt, no queue: the sender learns it at once. */
		struct route tmp = {.srv = srv, .remote = (char *)remote};
		char why[400];
		snprintf(tmp.ctx, sizeof(tmp.ctx), "route %s->%s", local, remote);
		snprintf(why, sizeof(why), PARTNER_SUSPENDED_FMT, p->domain);
		undeliverable(&tmp, stanza, done, ud, "service-unavailable", why, NULL);
		return FG_OK;
	}
	struct route *r = route_get(srv, local, remote);
	if (!r) {
		if (done)
			done(ud, false, "out of memory");
		xml_free(&stanza);
		counters_stanza(STANZA_DROPPED, "out-of-memory");
		return FG_NOMEM;
	}
	long wait = r->out || via_bidi(r) ? 0 : waiting_s(r);
	if (wait > 0 && done) {
		/* A caller that asked for the outcome (test-im) is answered now
		 * rather than after the retry delay. */
		char why[900], report[920];
		backoff_message(r, why, sizeof(why));
		snprintf(report, sizeof(report), "failed: %s\n", why);
		undeliverable(r, stanza, done, ud, "remote-server-not-found", why, report);
		return FG_OK;
	}
	if (!r->queue && route_ready(r) && has_room(r)) {
		write_one(r, stanza, done, ud); /* the common case: straight out */
		return FG_OK;
	}
	size_t bytes = stanza_bytes(stanza);
	size_t cap = srv->conf->output_queue;
	if (r->queued >= ROUTE_QUEUE_MAX || r->queued_bytes + bytes > cap) {
		/* RFC 6120 §8.3.3.18: the condition says to try later. */
		char why[300];
		snprintf(why, sizeof(why),
			 "the queue to %s is full (%zu stanzas, %zu bytes wait; [limits] "
			 "output_queue); try again later",
			 remote, r->queued, r->queued_bytes);
		/* A stream that is up but slow holds the sender; one still
		 * connecting or waiting to retry may take minutes, and holding
		 * would stop the sender's other conversations too. */
		if (route_ready(r))
			xmpp_hold_feeder(srv, r);
		undeliverable(r, stanza, done, ud, "resource-constraint", why, NULL);
		return FG_OK;
	}
	struct route_item *it = calloc(1, sizeof(*it));
	if (!it) {
		undeliverable(r, stanza, done, ud, "resource-constraint", "out of memory", NULL);
		return FG_OK;
	}
	it->stanza = stanza;
	it->bytes = bytes;
	it->done = done;
	it->ud = ud;
	*r->tail = it;
	r->tail = &it->next;
	r->queued++;
	r->queued_bytes += bytes;
	if (wait > 0) {
		/* The partner failed a moment ago: the stanza waits for the next
		 * attempt instead of starting a stream of its own. */
		if (!evtimer_pending(r->retry, NULL)) {
			struct timeval tv = {(time_t)wait, 0};
			evtimer_add(r->retry, &tv);
		}
	} else if (!r->out && !via_bidi(r)) {
		start(r);
	} else {
		flush(r);
	}
	return FG_OK;
}

int route_verify(struct xmpp_server *srv, const char *local, const char *remote, const char *id,
		 const char *key, route_verified cb, void *ud)
{
	struct route *r = route_get(srv, local, remote);
	if (!r)
		return FG_NOMEM;
	if (!r->out && waiting_s(r) > 0) {
		char why[900];
		backoff_message(r, why, sizeof(why));
		cb(ud, DB_ERROR, r->last.cond, why);
		return FG_OK;
	}
	if (!r->out)
		start_out(r);
	if (!r->out) {
		/* Refused at once (limits, partner gone, or failed before any
		 * network step): the reason is on record or was logged. */
		cb(ud, DB_ERROR, r->last.at ? r->last.cond : DB_COND_REMOTE_SERVER_NOT_FOUND,
		   r->last.at ? r->last.reason : "no stream to the authoritative server");
		return FG_OK;
	}
	return s2s_out_verify(r->out, id, key, cb, ud);
}

void route_bidi_attach(struct xmpp_server *srv, const char *local, const char *remote,
		       struct stream *s)
{
	assert(stream_state(s) == STREAM_READY);
	struct route *r = route_get(srv, local, remote);
	if (!r)
		return; /* out of memory: the route opens its own stream later */
	if (r->bidi && r->bidi != s && stream_state(r->bidi) == STREAM_READY)
		return; /* the first one stays; one stream at a time */
	r->bidi = s;
	log_info(r->ctx, "%s opened a bidirectional stream (XEP-0288): stanzas to it use that one",
		 remote);
	/* The partner is up: as out_ready, the record recovers and what
	 * waits goes now rather than at the next retry. */
	if (route_failing(r))
		r->last.recovered = time(NULL);
	r->last.delay = 0;
	r->last.next_retry = 0;
	evtimer_del(r->retry);
	if (route_ready(r))
		flush(r);
}

void routes_bidi_gone(struct xmpp_server *srv, const struct stream *s)
{
	if (!srv->routes)
		return;
	for (struct route *r = srv->routes->list; r; r = r->next) {
		if (r->bidi != s)
			continue;
		r->bidi = NULL;
		log_info(r->ctx, "the bidirectional stream from %s is gone%s", r->remote,
			 r->queued ? ": what waits gets a stream of our own" : "");
		evtimer_del(r->stall);
		xmpp_release_held(srv, r);
		if (r->queued && !r->out && !srv->stopping) {
			long wait = waiting_s(r);
			if (wait > 0) {
				struct timeval tv = {(time_t)wait, 0};
				evtimer_add(r->retry, &tv);
			} else {
				start_out(r);
			}
		}
	}
}

void routes_bidi_drained(struct xmpp_server *srv, const struct stream *s)
{
	if (!srv->routes)
		return;
	for (struct route *r = srv->routes->list; r; r = r->next)
		if (r->bidi == s && r->queue)
			flush(r);
}

void route_note_peer_error(struct xmpp_server *srv, const char *local, const char *remote,
			   const char *why)
{
	struct route *r = route_get(srv, local, remote);
	if (!r)
		return;
	record_failure(r, why, true);
	count_failure(r, "peer-error");
}

void routes_close_domain(struct xmpp_server *srv, const char *domain, const char *reason)
{
	if (!srv->routes)
		return;
	for (struct route *r = srv->routes->list; r; r = r->next) {
		if (domain && strcmp(r->remote, domain) != 0)
			continue;
		evtimer_del(r->retry);
		if (r->out) {
			/* An admin's change or the shutdown, not the partner's
			 * fault: what the failure set is forgotten again. */
			struct route_failure keep = r->last;
			r->fail_condition = "service-unavailable";
			s2s_out_fail(r->out, reason);
			r->last = keep;
		} else if (r->queued) {
			refuse(r, "service-unavailable", "%s", reason);
		}
	}
}

void routes_reset(struct xmpp_server *srv, const char *domain)
{
	if (!srv->routes)
		return;
	for (struct route *r = srv->routes->list; r; r = r->next) {
		if (strcmp(r->remote, domain) != 0)
			continue;
		r->last = (struct route_failure){0};
		if (r->queued && !r->out && !srv->stopping) {
			evtimer_del(r->retry);
			start(r);
		}
	}
}

unsigned routes_retry(struct xmpp_server *srv, const char *domain)
{
	unsigned started = 0;
	if (!srv->routes)
		return 0;
	for (struct route *r = srv->routes->list; r; r = r->next) {
		if (strcmp(r->remote, domain) != 0)
			continue;
		evtimer_del(r->retry);
		r->last.next_retry = 0;
		r->last.delay = 0;
		if (r->queued && !r->out && !srv->stopping) {
			log_info(r->ctx, "retrying %s now for %zu queued stanza(s) (partner retry)",
				 r->remote, r->queued);
			start(r);
			started++;
		}
	}
	return started;
}

void routes_failure_counts(const struct xmpp_server *srv, void *obj)
{
	if (!srv->routes)
		return;
	for (const struct route *r = srv->routes->list; r; r = r->next) {
		json_t *by_kind = json_object_get(obj, r->remote);
		for (size_t i = 0; i < ROUTE_FAIL_KINDS; i++) {
			if (!r->fails[i])
				continue;
			if (!by_kind) {
				by_kind = json_object();
				json_object_set_new(obj, r->remote, by_kind);
			}
			json_int_t n =
				json_integer_value(json_object_get(by_kind, route_fail_kinds[i]));
			json_object_set_new(by_kind, route_fail_kinds[i],
					    json_integer(n + (json_int_t)r->fails[i]));
		}
	}
}

unsigned routes_stream_count(const struct xmpp_server *srv, const struct partner *p)
{
	unsigned n = 0;
	if (!srv->routes)
		return 0;
	for (const struct route *r = srv->routes->list; r; r = r->next)
		if (r->out && (!p || policy_owns(p, r->remote)))
			n++;
	return n;
}

static json_t *time_text(time_t t)
{
	char buf[FG_UTC_LEN];
	return json_string(fg_utc(t, buf));
}

static json_t *failure_json(const struct route *r)
{
	const struct route_failure *f = &r->last;
	json_t *o = json_object();
	json_object_set_new(o, "state", json_string(route_failing(r) ? "failing" : "recovered"));
	json_object_set_new(o, "first", time_text(f->first));
	json_object_set_new(o, "at", time_text(f->at));
	json_object_set_new(o, "reason", json_string(f->reason));
	json_object_set_new(o, "by_peer", json_boolean(f->peer));
	json_object_set_new(o, "attempts", json_integer(f->attempts));
	json_object_set_new(o, "next_retry", time_text(f->next_retry));
	json_object_set_new(o, "retry_in", json_integer(waiting_s(r)));
	json_object_set_new(o, "queued", json_integer((json_int_t)r->queued));
	json_object_set_new(o, "bounced", json_integer((json_int_t)f->bounced));
	if (f->recovered)
		json_object_set_new(o, "recovered", time_text(f->recovered));
	return o;
}

/* A suspended partner has no streams and no route that tries: one row
 * says so, so that status shows why nothing happens. */
static void suspended_rows(const struct xmpp_server *srv, json_t *rows)
{
	const struct policy *partners = srv->live ? srv->live->partners : NULL;
	for (size_t i = 0; partners && i < policy_count(partners); i++) {
		const struct partner *p = policy_at(partners, i);
		if (p->enabled)
			continue;
		char why[400];
		snprintf(why, sizeof(why), PARTNER_SUSPENDED_FMT, p->domain);
		json_t *row = json_object();
		json_object_set_new(row, "direction", json_string("partner"));
		json_object_set_new(row, "local", json_string(""));
		json_object_set_new(row, "remote", json_string(p->domain));
		json_object_set_new(row, "state", json_string("suspended"));
		json_object_set_new(row, "method", json_string("none"));
		json_object_set_new(row, "tls", json_string("none"));
		json_object_set_new(row, "peer", json_string(""));
		json_object_set_new(row, "last_error", json_string(why));
		json_object_set_new(row, "age", json_integer(0));
		json_array_append_new(rows, row);
	}
}

void routes_status(const struct xmpp_server *srv, void *rows)
{
	suspended_rows(srv, rows);
	if (!srv->routes)
		return;
	for (const struct route *r = srv->routes->list; r; r = r->next) {
		if (!r->out && !has_record(r))
			continue;
		json_t *row = json_object();
		if (r->out) {
			s2s_out_status(r->out, row);
		} else {
			json_object_set_new(row, "direction", json_string("route"));
			json_object_set_new(row, "local", json_string(r->local));
			json_object_set_new(row, "remote", json_string(r->remote));
			json_object_set_new(row, "state",
					    json_string(!route_failing(r)  ? "recovered"
							: waiting_s(r) > 0 ? "retry-wait"
									   : "failed"));
			json_object_set_new(row, "method", json_string("none"));
			json_object_set_new(row, "tls", json_string("none"));
			json_object_set_new(row, "peer", json_string(""));
			json_object_set_new(row, "last_error", json_string(r->last.reason));
			json_object_set_new(row, "age",
					    json_integer((json_int_t)(time(NULL) - r->last.at)));
		}
		json_object_set_new(row, "queued", json_integer((json_int_t)r->queued));
		if (has_record(r))
			json_object_set_new(row, "last_failure", failure_json(r));
		json_array_append_new(rows, row);
	}
}

void routes_free_all(struct xmpp_server *srv)
{
	struct routes *rs = srv->routes;
	if (!rs)
		return;
	while (rs->list) {
		struct route *r = rs->list;
		rs->list = r->next;
		s2s_out_free_now(r->out);
		r->out = NULL;
		/* The signal's routes_close_domain bounced what was queued then;
		 * nothing can be routed any more, so what came since is counted. */
		while (r->queue) {
			struct route_item *it = pop(r);
			if (it->done)
				it->done(it->ud, false, "the server is shutting down");
			else
				counters_stanza(STANZA_DROPPED, "shutdown");
			xml_free(&it->stanza);
			free(it);
		}
		event_free(r->retry);
		event_free(r->stall);
		free(r->local);
		free(r->remote);
		free(r);
	}
	strmap_free(&rs->by_key, NULL);
	free(rs);
	srv->routes = NULL;
}

#include "route.h"

#include "fg.h"
#include "live.h"
#include "log.h"
#include "policy.h"
#include "s2s_out.h"
#include "dialback.h"
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
	size_t queued;

	struct s2s_out *out; /* the current stream; NULL when none */
	struct route_failure last;
	struct event *retry; /* starts the next attempt for what is queued */

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

const struct route_failure *route_last_failure(const struct route *r)
{
	return &r->last;
}

size_t route_queued(const struct route *r)
{
	return r->queued;
}

bool route_has_stream(const struct route *r)
{
	return r->out != NULL;
}

static bool route_ready(const struct route *r)
{
	return r->out && s2s_out_is_ready(r->out);
}

static void on_retry(evutil_socket_t fd, short what, void *arg);

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
	make_key(r->key, sizeof(r->key), local, remote);
	snprintf(r->ctx, sizeof(r->ctx), "route %s->%s", local, remote);
	if (!r->local || !r->remote || !r->retry ||
	    strmap_put(rs->by_key, r->key, r, NULL) != FG_OK) {
		if (r->retry)
			event_free(r->retry);
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

/* Empties the queue: each stanza is written when the stream is ready,
 * else its sender learns why (the report to a caller that asked, a
 * bounce with cond to anyone else: RFC 6120 §8.3.3.15-16). */
static void drain(struct route *r, enum db_cond cond, const char *why, const char *report)
{
	bool send = route_ready(r) && why == NULL;
	while (r->queue) {
		struct route_item *it = r->queue;
		r->queue = it->next;
		if (!r->queue)
			r->tail = &r->queue;
		assert(r->queued > 0);
		r->queued--;
		bool ok = send && s2s_out_write(r->out, it->stanza);
		const char *rep = send ? s2s_out_report(r->out) : report;
		if (!ok && !why)
			why = "the stream could not take the stanza";
		if (!ok)
			log_info(r->ctx, "undeliverable stanza to %s: %s", r->remote, why);
		if (it->done)
			it->done(it->ud, ok, rep);
		else if (!ok && r->srv->bounce && !r->srv->stopping) {
			r->srv->bounce(r->srv, it->stanza, dialback_cond_type(cond),
				       dialback_cond_name(cond), why);
			it->stanza = NULL;
		}
		xml_free(&it->stanza);
		free(it);
	}
	assert(r->queued == 0 && r->tail == &r->queue);
}

static void out_ready(void *owner)
{
	struct route *r = owner;
	/* Authenticated: the partner works again. */
	r->last = (struct route_failure){0};
	evtimer_del(r->retry);
	drain(r, DB_COND_NONE, NULL, NULL);
}

static void out_failed(void *owner, enum db_cond cond, const char *why, const char *report,
		       bool attempted)
{
	struct route *r = owner;
	r->out = NULL;
	if (attempted) {
		/* Only a real attempt counts: a refusal before DNS (limits, no
		 * partner) says nothing about the partner's server. */
		struct route_failure *f = &r->last;
		f->delay = f->delay ? f->delay * 2 : ROUTE_BACKOFF_FIRST_S;
		if (f->delay > ROUTE_BACKOFF_MAX_S)
			f->delay = ROUTE_BACKOFF_MAX_S;
		f->at = time(NULL);
		f->next_retry = f->at + (time_t)f->delay;
		f->attempts++;
		snprintf(f->reason, sizeof(f->reason), "%s", why);
		f->cond = cond;
	}
	drain(r, cond, why, report);
}

static void out_closed(void *owner)
{
	struct route *r = owner;
	r->out = NULL;
	/* A ready stream had sent everything; nothing can be waiting. */
	assert(r->queued == 0);
}

static const struct s2s_out_ops route_out_ops = {
	.ready = out_ready,
	.failed = out_failed,
	.closed = out_closed,
};

/* A refusal before any stream exists: everything queued learns why. */
static void refuse(struct route *r, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void refuse(struct route *r, const char *fmt, ...)
{
	char why[700];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(why, sizeof(why), fmt, ap);
	va_end(ap);
	log_warn(r->ctx, "failed: %s", why);
	char report[720];
	snprintf(report, sizeof(report), "failed: %s\n", why);
	drain(r, DB_COND_REMOTE_SERVER_NOT_FOUND, why, report);
}

/* Starts a stream for the route when none is under way and the retry
 * delay allows; the limits are checked here, where all routes are seen. */
static void start(struct route *r)
{
	struct xmpp_server *srv = r->srv;
	if (r->out)
		return;
	const struct partner *p = policy_lookup(srv->live->partners, r->remote);
	const struct gateway_settings *gw = &srv->live->gw;
	if (!p) {
		refuse(r, "%s is not an allowed federation partner", r->remote);
		return;
	}
	if (routes_stream_count(srv, NULL) + xmpp_s2s_in_count(srv, NULL) + 1 >
	    gw->connection_limit) {
		refuse(r, "the gateway's connection_limit (%u streams) is reached",
		       gw->connection_limit);
		return;
	}
	if (routes_stream_count(srv, p) + xmpp_s2s_in_count(srv, p) + 1 >
	    partner_connection_limit(p, gw)) {
		refuse(r, "the connection limit for partner %s (%u streams) is reached", p->domain,
		       partner_connection_limit(p, gw));
		return;
	}
	r->out = s2s_out_new(srv, r->local, r->remote, &route_out_ops, r);
	if (!r->out) {
		refuse(r, "out of memory");
		return;
	}
	/* May fail at once: out_failed then clears r->out. */
	s2s_out_begin(r->out, p);
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

int route_send(struct xmpp_server *srv, const char *local, const char *remote,
	       struct xml_node *stanza, route_done done, void *ud)
{
	struct route *r = route_get(srv, local, remote);
	if (!r) {
		xml_free(&stanza);
		return FG_NOMEM;
	}
	long wait = r->out ? 0 : waiting_s(r);
	if (wait > 0 && done) {
		/* A caller that asked for the outcome (test-im) is answered now
		 * rather than after the retry delay. */
		char why[900], report[920];
		backoff_message(r, why, sizeof(why));
		snprintf(report, sizeof(report), "failed: %s\n", why);
		log_info(r->ctx, "undeliverable stanza to %s: %s", remote, why);
		done(ud, false, report);
		xml_free(&stanza);
		return FG_OK;
	}
	if (r->queued >= ROUTE_QUEUE_MAX) {
		xml_free(&stanza);
		return FG_LIMIT;
	}
	struct route_item *it = calloc(1, sizeof(*it));
	if (!it) {
		xml_free(&stanza);
		return FG_NOMEM;
	}
	it->stanza = stanza;
	it->done = done;
	it->ud = ud;
	*r->tail = it;
	r->tail = &it->next;
	r->queued++;
	if (wait > 0) {
		/* The partner failed a moment ago: the stanza waits for the next
		 * attempt instead of starting a stream of its own. */
		if (!evtimer_pending(r->retry, NULL)) {
			struct timeval tv = {(time_t)wait, 0};
			evtimer_add(r->retry, &tv);
		}
		return FG_OK;
	}
	if (!r->out)
		start(r);
	else if (route_ready(r))
		drain(r, DB_COND_NONE, NULL, NULL);
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
		start(r);
	if (!r->out) {
		/* Refused at once (limits, partner gone, or failed before any
		 * network step): the reason is on record or was logged. */
		cb(ud, DB_ERROR, r->last.at ? r->last.cond : DB_COND_REMOTE_SERVER_NOT_FOUND,
		   r->last.at ? r->last.reason : "no stream to the authoritative server");
		return FG_OK;
	}
	return s2s_out_verify(r->out, id, key, cb, ud);
}

void route_note_peer_error(struct xmpp_server *srv, const char *local, const char *remote,
			   const char *why)
{
	struct route *r = route_get(srv, local, remote);
	if (!r)
		return;
	r->last.at = time(NULL);
	snprintf(r->last.reason, sizeof(r->last.reason), "%s", why);
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
			s2s_out_fail(r->out, reason);
			r->last = keep;
		} else if (r->queued) {
			refuse(r, "%s", reason);
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
	json_object_set_new(o, "at", time_text(f->at));
	json_object_set_new(o, "reason", json_string(f->reason));
	json_object_set_new(o, "attempts", json_integer(f->attempts));
	json_object_set_new(o, "next_retry", time_text(f->next_retry));
	json_object_set_new(o, "retry_in", json_integer(waiting_s(r)));
	return o;
}

void routes_status(const struct xmpp_server *srv, void *rows)
{
	if (!srv->routes)
		return;
	for (const struct route *r = srv->routes->list; r; r = r->next) {
		if (!r->out && !r->last.at)
			continue;
		json_t *row = json_object();
		if (r->out) {
			s2s_out_status(r->out, row);
		} else {
			json_object_set_new(row, "direction", json_string("route"));
			json_object_set_new(row, "local", json_string(r->local));
			json_object_set_new(row, "remote", json_string(r->remote));
			json_object_set_new(
				row, "state",
				json_string(waiting_s(r) > 0 ? "retry-wait" : "failed"));
			json_object_set_new(row, "method", json_string("none"));
			json_object_set_new(row, "tls", json_string("none"));
			json_object_set_new(row, "peer", json_string(""));
			json_object_set_new(row, "last_error", json_string(r->last.reason));
			json_object_set_new(row, "age",
					    json_integer((json_int_t)(time(NULL) - r->last.at)));
		}
		json_object_set_new(row, "queued", json_integer((json_int_t)r->queued));
		if (r->last.at)
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
		/* Their senders still learn it; nothing is routed any more. */
		drain(r, DB_COND_REMOTE_SERVER_NOT_FOUND, "the server is shutting down",
		      "the server is shutting down");
		event_free(r->retry);
		free(r->local);
		free(r->remote);
		free(r);
	}
	strmap_free(&rs->by_key, NULL);
	free(rs);
	srv->routes = NULL;
}

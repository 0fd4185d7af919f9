#include "history.h"

#include "fg.h"
#include "live.h"
#include "policy.h"
#include "strmap.h"
#include "xmpp.h"

#include <assert.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct history_ev {
	time_t at;
	enum history_kind kind;
	bool in;
	char *local, *remote, *method, *reason; /* method, reason may be NULL */
};

/* One partner's day. in/out[m % HISTORY_MINUTES] holds minute m (seconds
 * since the epoch / 60) for the HISTORY_MINUTES minutes up to newest;
 * older buckets are zeroed as the ring moves on. */
struct partner_history {
	uint32_t in[HISTORY_MINUTES], out[HISTORY_MINUTES];
	long long newest; /* the minute of the newest bucket */
	/* A ring of events: head is the next slot, the oldest is n back. */
	struct history_ev ev[HISTORY_EVENTS];
	unsigned head, n;
};

struct history {
	struct strmap *by_domain; /* primary domain -> struct partner_history */
};

static void ev_clear(struct history_ev *e)
{
	free(e->local);
	free(e->remote);
	free(e->method);
	free(e->reason);
	*e = (struct history_ev){0};
}

static void partner_history_free(void *v)
{
	struct partner_history *p = v;
	if (!p)
		return;
	for (unsigned i = 0; i < HISTORY_EVENTS; i++)
		ev_clear(&p->ev[i]);
	free(p);
}

struct history *history_new(void)
{
	struct history *h = calloc(1, sizeof(*h));
	if (!h)
		return NULL;
	h->by_domain = strmap_new();
	if (!h->by_domain) {
		free(h);
		return NULL;
	}
	return h;
}

void history_free(struct history **h)
{
	if (!h || !*h)
		return;
	strmap_free(&(*h)->by_domain, partner_history_free);
	free(*h);
	*h = NULL;
}

int history_partner_add(struct history *h, const char *domain)
{
	if (!h || !domain)
		return FG_OK;
	if (strmap_get(h->by_domain, domain))
		return FG_OK;
	struct partner_history *p = calloc(1, sizeof(*p));
	if (!p)
		return FG_NOMEM;
	if (strmap_put(h->by_domain, domain, p, NULL) != FG_OK) {
		free(p);
		return FG_NOMEM;
	}
	return FG_OK;
}

void history_partner_remove(struct history *h, const char *domain)
{
	if (h && domain)
		partner_history_free(strmap_remove(h->by_domain, domain));
}

size_t history_partners(const struct history *h)
{
	return h ? strmap_count(h->by_domain) : 0;
}

/* The partner remote belongs to: its primary domain keys the history. */
static struct partner_history *find(const struct history *h, const struct policy *partners,
				    const char *remote)
{
	if (!h || !remote)
		return NULL;
	if (!partners)
		return strmap_get(h->by_domain, remote);
	const struct partner *p = policy_lookup(partners, remote);
	return p ? strmap_get(h->by_domain, p->domain) : NULL;
}

static long long minute_of(time_t t)
{
	return t < 0 ? 0 : (long long)t / HISTORY_MINUTE_S;
}

/* Moves the ring on to minute m: the buckets of the minutes between the
 * newest and m are zeroed (all of them after a day or more of silence). */
static void roll(struct partner_history *p, long long m)
{
	if (m <= p->newest)
		return;
	long long gap = m - p->newest;
	if (gap > HISTORY_MINUTES)
		gap = HISTORY_MINUTES;
	for (long long k = 1; k <= gap; k++) {
		size_t i = (size_t)((p->newest + k) % HISTORY_MINUTES);
		p->in[i] = p->out[i] = 0;
	}
	p->newest = m;
}

void history_stanza(struct history *h, const struct policy *partners, const char *remote, bool in,
		    time_t now)
{
	struct partner_history *p = find(h, partners, remote);
	if (!p)
		return;
	long long m = minute_of(now);
	roll(p, m);
	if (m <= p->newest - HISTORY_MINUTES)
		return; /* the clock went back more than a day: nowhere to count it */
	uint32_t *b = in ? &p->in[m % HISTORY_MINUTES] : &p->out[m % HISTORY_MINUTES];
	if (*b < UINT32_MAX)
		(*b)++;
}

static char *copy(const char *s, size_t max)
{
	if (!s)
		return NULL;
	size_t n = strlen(s);
	return strndup(s, n > max ? max : n);
}

/* Events older than a day go first. */
static void expire(struct partner_history *p, time_t now)
{
	while (p->n) {
		struct history_ev *e = &p->ev[(p->head + HISTORY_EVENTS - p->n) % HISTORY_EVENTS];
		if (e->at >= now - HISTORY_SPAN_S)
			break;
		ev_clear(e);
		p->n--;
	}
}

void history_event(struct history *h, const struct policy *partners, enum history_kind kind,
		   bool in, const char *local, const char *remote, const char *method,
		   const char *reason, time_t now)
{
	struct partner_history *p = find(h, partners, remote);
	if (!p)
		return;
	expire(p, now);
	/* A full ring drops its oldest: the slot at head. */
	struct history_ev *e = &p->ev[p->head];
	ev_clear(e);
	e->at = now;
	e->kind = kind;
	e->in = in;
	e->local = copy(local ? local : "", HISTORY_DOMAIN_MAX);
	e->remote = copy(remote, HISTORY_DOMAIN_MAX);
	e->method = copy(method, 100);
	e->reason = copy(reason, HISTORY_TEXT_MAX);
	if (!e->local || !e->remote || (method && !e->method) || (reason && !e->reason)) {
		ev_clear(e); /* out of memory: this event is not kept */
		return;
	}
	p->head = (p->head + 1) % HISTORY_EVENTS;
	if (p->n < HISTORY_EVENTS)
		p->n++;
	assert(p->n <= HISTORY_EVENTS);
}

static json_t *iso(time_t t)
{
	struct tm tm;
	char buf[32];
	gmtime_r(&t, &tm);
	strftime(buf, sizeof(buf), "%Y-%m-%dT%H:%M:%SZ", &tm);
	return json_string(buf);
}

static const char *const kind_names[] = {
	[HISTORY_CONNECTED] = "connected",
	[HISTORY_CLOSED] = "closed",
	[HISTORY_FAILED] = "failed",
};

json_t *history_json(const struct history *h, const char *domain, time_t now)
{
	const struct partner_history *p = find(h, NULL, domain);
	if (!p)
		return NULL;
	long long m = minute_of(now), first = m - (HISTORY_MINUTES - 1);
	json_t *in = json_array(), *out = json_array(), *events = json_array();
	json_t *r = json_object();
	if (!in || !out || !events || !r)
		goto nomem;
	for (long long mm = first; mm <= m; mm++) {
		/* Only minutes the ring still holds; the rest were silent. */
		bool held = mm >= 0 && mm <= p->newest && mm > p->newest - HISTORY_MINUTES;
		size_t i = held ? (size_t)(mm % HISTORY_MINUTES) : 0;
		json_array_append_new(in, json_integer(held ? p->in[i] : 0));
		json_array_append_new(out, json_integer(held ? p->out[i] : 0));
	}
	for (unsigned k = p->n; k > 0; k--) {
		const struct history_ev *e =
			&p->ev[(p->head + HISTORY_EVENTS - k) % HISTORY_EVENTS];
		if (e->at < now - HISTORY_SPAN_S)
			continue;
		json_t *o = json_object();
		json_object_set_new(o, "at", iso(e->at));
		json_object_set_new(o, "event", json_string(kind_names[e->kind]));
		json_object_set_new(o, "direction", json_string(e->in ? "in" : "out"));
		json_object_set_new(o, "local", json_string(e->local));
		json_object_set_new(o, "remote", json_string(e->remote));
		if (e->method)
			json_object_set_new(o, "method", json_string(e->method));
		if (e->reason)
			json_object_set_new(o, "reason", json_string(e->reason));
		json_array_append_new(events, o);
	}
	json_object_set_new(r, "domain", json_string(domain));
	json_object_set_new(r, "now", iso(now));
	json_object_set_new(r, "since", iso((time_t)(first * HISTORY_MINUTE_S)));
	json_object_set_new(r, "minute_seconds", json_integer(HISTORY_MINUTE_S));
	json_object_set_new(r, "stanzas_in", in);
	json_object_set_new(r, "stanzas_out", out);
	json_object_set_new(r, "events", events);
	return r;
nomem:
	json_decref(in);
	json_decref(out);
	json_decref(events);
	json_decref(r);
	return NULL;
}

void history_note_stanza(struct xmpp_server *srv, const char *remote, bool in)
{
	if (srv->history && srv->live)
		history_stanza(srv->history, srv->live->partners, remote, in, time(NULL));
}

void history_note_event(struct xmpp_server *srv, enum history_kind kind, bool in, const char *local,
			const char *remote, const char *method, const char *reason)
{
	if (srv->history && srv->live)
		history_event(srv->history, srv->live->partners, kind, in, local, remote, method,
			      reason, time(NULL));
}

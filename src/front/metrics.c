/* GET /metrics in the Prometheus text format (version 0.0.4).
 *
 * Counters (_total) are monotonic: the totals of closed connections kept
 * here plus those of the connections open now. Gauges are read from the
 * live streams (the `status` command's rows) when scraped, so nothing is
 * counted twice and no lock is needed: all of it runs on the loop. */
#include "metrics.h"

#include "session.h"
#include "conn.h"
#include "fg.h"
#include "policy.h"
#include "counters.h"
#include "route.h"
#include "xmpp.h"
#include "stream.h"

#include <stdio.h>
#include <string.h>

/* A label value: \ " and newline escaped as the format says. */
static void label(struct evbuffer *b, const char *s)
{
	for (; s && *s; s++) {
		if (*s == '\\' || *s == '"')
			evbuffer_add_printf(b, "\\%c", *s);
		else if (*s == '\n')
			evbuffer_add_printf(b, "\\n");
		else
			evbuffer_add(b, s, 1);
	}
}

static void help(struct evbuffer *b, const char *name, const char *type, const char *text)
{
	evbuffer_add_printf(b, "# HELP %s %s\n# TYPE %s %s\n", name, text, name, type);
}

static long long num(json_t *row, const char *key)
{
	return (long long)json_integer_value(json_object_get(row, key));
}

/* What a partner is doing now: connected (a ready stream either way),
 * failing (a route to it fails and none is ready), suspended (the admin
 * said so), idle. */
static const char *const partner_states[] = {"connected", "failing", "idle", "suspended"};

static const char *partner_state(const struct partner *p, json_t *rows)
{
	if (!p->enabled)
		return "suspended";
	bool ready = false, failing = false;
	size_t i;
	json_t *r;
	json_array_foreach(rows, i, r)
	{
		const char *remote = json_string_value(json_object_get(r, "remote"));
		if (!remote || !policy_owns(p, remote))
			continue;
		const char *dir = json_string_value(json_object_get(r, "direction"));
		const char *st = json_string_value(json_object_get(r, "state"));
		if (dir && strcmp(dir, "route") != 0 && st && strcmp(st, "ready") == 0)
			ready = true;
		json_t *lf = json_object_get(r, "last_failure");
		const char *fs = json_string_value(json_object_get(lf, "state"));
		if (fs && strcmp(fs, "failing") == 0)
			failing = true;
	}
	return ready ? "connected" : failing ? "failing" : "idle";
}

/* Per partner only (never a domain a stranger chose), so the label sets
 * stay bounded by the partner list. */
static void partner_health(struct evbuffer *b, const struct policy *partners, json_t *rows,
			   const struct xmpp_server *xs)
{
	help(b, "fedgate_partner_state", "gauge",
	     "each partner's state: connected, failing, idle or suspended (1 for the current one)");
	for (size_t k = 0; k < policy_count(partners); k++) {
		const struct partner *p = policy_at(partners, k);
		const char *now = partner_state(p, rows);
		for (size_t s = 0; s < FG_ARRAY_LEN(partner_states); s++) {
			evbuffer_add_printf(b, "fedgate_partner_state{partner=\"");
			label(b, p->domain);
			evbuffer_add_printf(b, "\",state=\"%s\"} %d\n", partner_states[s],
					    strcmp(now, partner_states[s]) == 0);
		}
	}
	help(b, "fedgate_partner_failures_total", "counter",
	     "failed attempts to reach each partner since start, by reason: dns, connect, tls, "
	     "auth, timeout, peer-error (its own stream error), stream");
	json_t *counts = json_object();
	if (xs)
		routes_failure_counts(xs, counts);
	for (size_t k = 0; k < policy_count(partners); k++) {
		const struct partner *p = policy_at(partners, k);
		for (size_t i = 0; i < ROUTE_FAIL_KINDS; i++) {
			json_int_t n = 0;
			const char *remote;
			json_t *by_kind;
			json_object_foreach(counts, remote, by_kind)
			{
				if (policy_owns(p, remote))
					n += json_integer_value(
						json_object_get(by_kind, route_fail_kinds[i]));
			}
			evbuffer_add_printf(b, "fedgate_partner_failures_total{partner=\"");
			label(b, p->domain);
			evbuffer_add_printf(b, "\",reason=\"%s\"} %lld\n", route_fail_kinds[i],
					    (long long)n);
		}
	}
	json_decref(counts);
}

/* A node of a cluster (status's "cluster" object, xmpp/cluster.h): the
 * Redis link, each node's heartbeat age and sessions, what crossed
 * between nodes. Nothing on a single node. */
static void cluster_metrics(struct evbuffer *b, json_t *c)
{
	const char *redis = json_string_value(json_object_get(c, "redis"));
	if (!redis || strcmp(redis, "off") == 0)
		return;
	help(b, "fedgate_cluster_redis_up", "gauge",
	     "1 while this node's link to the cluster's Redis is up");
	evbuffer_add_printf(b, "fedgate_cluster_redis_up{node=\"");
	label(b, json_string_value(json_object_get(c, "node")));
	evbuffer_add_printf(b, "\"} %d\n", strcmp(redis, "up") == 0);
	help(b, "fedgate_cluster_node_heartbeat_age_seconds", "gauge",
	     "seconds since each node of the cluster last heartbeated");
	size_t i;
	json_t *n;
	json_array_foreach(json_object_get(c, "nodes"), i, n)
	{
		evbuffer_add_printf(b, "fedgate_cluster_node_heartbeat_age_seconds{node=\"");
		label(b, json_string_value(json_object_get(n, "name")));
		evbuffer_add_printf(b, "\"} %.3f\n", (double)num(n, "heartbeat_age_ms") / 1000.0);
	}
	help(b, "fedgate_cluster_node_sessions", "gauge", "client sessions on each node");
	json_array_foreach(json_object_get(c, "nodes"), i, n)
	{
		evbuffer_add_printf(b, "fedgate_cluster_node_sessions{node=\"");
		label(b, json_string_value(json_object_get(n, "name")));
		evbuffer_add_printf(b, "\"} %lld\n", (long long)num(n, "sessions"));
	}
	help(b, "fedgate_cluster_forwarded_total", "counter",
	     "stanzas forwarded to other nodes (out) and from them (in)");
	evbuffer_add_printf(b, "fedgate_cluster_forwarded_total{direction=\"out\"} %lld\n",
			    (long long)num(c, "forwarded_out"));
	evbuffer_add_printf(b, "fedgate_cluster_forwarded_total{direction=\"in\"} %lld\n",
			    (long long)num(c, "forwarded_in"));
	help(b, "fedgate_cluster_rerouted_total", "counter",
	     "stanzas forwarded to a node that died, routed again by this node");
	evbuffer_add_printf(b, "fedgate_cluster_rerouted_total %lld\n",
			    (long long)num(c, "rerouted"));
	help(b, "fedgate_cluster_link_down_refused_total", "counter",
	     "stanzas for another node refused (or copies dropped) while the cluster link was "
	     "down");
	evbuffer_add_printf(b, "fedgate_cluster_link_down_refused_total %lld\n",
			    (long long)num(c, "bounced_link_down"));
}

static void status_done(struct hreq *h, int status, json_t *body)
{
	struct evbuffer *b = evbuffer_new();
	json_t *rows = status == 0 ? json_object_get(body, "result") : NULL;
	/* This node's figures: other nodes' failing routes (a cluster's
	 * status shows them with "node") are theirs to export. */
	for (size_t k = json_array_size(rows); k-- > 0;)
		if (json_object_get(json_array_get(rows, k), "node"))
			json_array_remove(rows, k);
	const struct policy *partners = h->env->live.partners;
	const struct counters *totals = counters_get();
	unsigned long long bin = totals->bytes_in, bout = totals->bytes_out;
	unsigned long long sin = totals->stanzas_in, sout = totals->stanzas_out;
	size_t i;
	json_t *r;
	/* streams by direction, partner, method: counted into an object keyed
	 * by the label set */
	json_t *groups = json_object(), *queues = json_object();
	json_array_foreach(rows, i, r)
	{
		bin += (unsigned long long)num(r, "bytes_in");
		bout += (unsigned long long)num(r, "bytes_out");
		sin += (unsigned long long)num(r, "stanzas_in");
		sout += (unsigned long long)num(r, "stanzas_out");
		const char *dir = json_string_value(json_object_get(r, "direction"));
		/* Routes without a stream (direction "route") are no streams. */
		if (!dir || (strcmp(dir, "in") != 0 && strcmp(dir, "out") != 0))
			continue;
		const char *remote = json_string_value(json_object_get(r, "remote"));
		const struct partner *p = remote ? policy_lookup(partners, remote) : NULL;
		const char *method = json_string_value(json_object_get(r, "method"));
		char key[600];
		snprintf(key, sizeof(key), "%s\x1f%s\x1f%s", dir, p ? p->domain : "none",
			 method ? method : "none");
		json_object_set_new(
			groups, key,
			json_integer(json_integer_value(json_object_get(groups, key)) + 1));
		if (strcmp(dir, "out") == 0 && p) {
			json_int_t q = json_integer_value(json_object_get(queues, p->domain));
			json_object_set_new(queues, p->domain, json_integer(q + num(r, "queued")));
		}
	}
	help(b, "fedgate_s2s_streams", "gauge",
	     "server-to-server streams open now, by direction, partner and method");
	const char *key;
	json_t *v;
	json_object_foreach(groups, key, v)
	{
		char copy[600];
		snprintf(copy, sizeof(copy), "%s", key);
		char *partner = strchr(copy, '\x1f'), *method;
		*partner++ = '\0';
		method = strchr(partner, '\x1f');
		*method++ = '\0';
		evbuffer_add_printf(b, "fedgate_s2s_streams{direction=\"");
		label(b, copy);
		evbuffer_add_printf(b, "\",partner=\"");
		label(b, partner);
		evbuffer_add_printf(b, "\",method=\"");
		label(b, method);
		evbuffer_add_printf(b, "\"} %lld\n", (long long)json_integer_value(v));
	}
	help(b, "fedgate_streams_dozed_total", "counter",
	     "times an idle stream gave its XML parser back until its next bytes");
	evbuffer_add_printf(b, "fedgate_streams_dozed_total %llu\n", totals->streams_dozed);
	help(b, "fedgate_stanzas_total", "counter", "stanzas received and sent on every stream");
	evbuffer_add_printf(b, "fedgate_stanzas_total{direction=\"in\"} %llu\n", sin);
	evbuffer_add_printf(b, "fedgate_stanzas_total{direction=\"out\"} %llu\n", sout);
	help(b, "fedgate_bytes_total", "counter", "bytes received and sent on every connection");
	evbuffer_add_printf(b, "fedgate_bytes_total{direction=\"in\"} %llu\n", bin);
	evbuffer_add_printf(b, "fedgate_bytes_total{direction=\"out\"} %llu\n", bout);
	help(b, "fedgate_auth_failures_total", "counter",
	     "peers that failed to authenticate, by reason");
	for (size_t k = 0; k < COUNTERS_REASONS_MAX && totals->auth[k].reason; k++)
		evbuffer_add_printf(b, "fedgate_auth_failures_total{reason=\"%s\"} %llu\n",
				    totals->auth[k].reason, totals->auth[k].n);
	help(b, "fedgate_bounces_total", "counter", "stanzas returned to their sender undelivered");
	evbuffer_add_printf(b, "fedgate_bounces_total %llu\n", totals->stanzas[STANZA_BOUNCED]);
	static const char *const outcome[STANZA_OUTCOMES] = {
		[STANZA_DELIVERED] = "delivered",
		[STANZA_OFFLINE] = "offline",
		[STANZA_BOUNCED] = "bounced",
		[STANZA_DROPPED] = "dropped",
	};
	help(b, "fedgate_stanza_outcomes_total", "counter",
	     "what became of each stanza routed: delivered, stored offline, bounced to its sender "
	     "or dropped (one that must not be answered)");
	for (size_t k = 0; k < STANZA_OUTCOMES; k++)
		evbuffer_add_printf(b, "fedgate_stanza_outcomes_total{outcome=\"%s\"} %llu\n",
				    outcome[k], totals->stanzas[k]);
	help(b, "fedgate_stanzas_dropped_total", "counter",
	     "stanzas dropped without an answer to their sender, by reason");
	for (size_t k = 0; k < COUNTERS_REASONS_MAX && totals->dropped[k].reason; k++)
		evbuffer_add_printf(b, "fedgate_stanzas_dropped_total{reason=\"%s\"} %llu\n",
				    totals->dropped[k].reason, totals->dropped[k].n);
	help(b, "fedgate_queue_stanzas", "gauge",
	     "stanzas waiting for an outbound stream, by partner");
	json_object_foreach(queues, key, v)
	{
		evbuffer_add_printf(b, "fedgate_queue_stanzas{partner=\"");
		label(b, key);
		evbuffer_add_printf(b, "\"} %lld\n", (long long)json_integer_value(v));
	}
	partner_health(b, partners, rows, h->xs);
	help(b, "fedgate_c2s_sessions", "gauge", "client sessions open now");
	evbuffer_add_printf(b, "fedgate_c2s_sessions %u\n", session_count(h->xs));
	help(b, "fedgate_partners", "gauge", "XMPP federated partners configured");
	evbuffer_add_printf(b, "fedgate_partners %zu\n", policy_count(partners));
	cluster_metrics(b, status == 0 ? json_object_get(body, "cluster") : NULL);
	json_decref(groups);
	json_decref(queues);
	json_decref(body);
	http_send(h, 200, "text/plain; version=0.0.4; charset=utf-8", b);
}

void metrics_handle(struct hreq *h)
{
	if (h->method != EVHTTP_REQ_GET && h->method != EVHTTP_REQ_HEAD) {
		http_send_error(h, 405, NULL, "/metrics takes GET");
		return;
	}
	http_cmd(h, "status", json_object(), false, status_done);
}

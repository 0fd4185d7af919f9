#include "cluster.h"

#include "carbons.h"
#include "conf.h"
#include "counters.h"
#include "fg.h"
#include "live.h"
#include "log.h"
#include "mam_query.h"
#include "offline.h"
#include "policy.h"
#include "presence.h"
#include "roster.h"
#include "route.h"
#include "redis.h"
#include "session.h"
#include "xmpp.h"

#include <assert.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define NODES_MAX   64
#define READ_COUNT  "64"
#define READ_BLOCK  "2000" /* ms a stream read waits for entries */
#define STREAM_MAXQ "1000000"

/* The sender's half of a forward: adds the entry only while the target is
 * a member of the cluster, so that nothing is added to a stream the reaper
 * has taken (it removes the node in the same script). */
static const char *const XADD_LUA =
	"if redis.call('SISMEMBER', KEYS[2], ARGV[1]) == 0 then return 0 end "
	"redis.call('XADD', KEYS[1], 'MAXLEN', '~', ARGV[5], '*', 'o', ARGV[2], 'm', ARGV[3], "
	"'s', ARGV[4]) return 1";
/* The reaper's take: every entry left in a dead node's stream (unread or
 * read and not settled: settled ones are deleted), then the stream and the
 * node's membership go, atomically with respect to XADD_LUA. */
static const char *const TAKE_LUA =
	"local r = redis.call('XRANGE', KEYS[1], '-', '+') redis.call('DEL', KEYS[1]) "
	"redis.call('SREM', KEYS[2], ARGV[1]) redis.call('DEL', KEYS[3], KEYS[4], KEYS[5]) "
	"return r";

struct node_seen {
	char name[CREG_NODE_MAX];
	long long heartbeat_ms; /* its own clock, at its last heartbeat */
	unsigned sessions;
	json_t *s2s;	  /* its s2s streams by partner ("*": all), as read last */
	json_t *failures; /* its failing routes (status rows), as read last */
};

struct cluster {
	struct xmpp_server *srv;
	char self[CREG_NODE_MAX];
	char q_self[CREG_NODE_MAX + 8]; /* fg:q:SELF */
	struct redis *cmd;		/* commands */
	struct redis *sub;		/* the registry channel */
	struct redis *rd;		/* the blocking stream reader */
	struct creg *reg;
	struct event *tick;
	long long down_since_ms; /* 0 while the command link is up */
	bool was_up;		 /* the link was up once (a loss is worth a warning) */
	bool reading;		 /* an XREADGROUP is out */
	bool pending_first;	 /* read our own unsettled entries before new ones */
	struct node_seen nodes[NODES_MAX];
	size_t nnodes;
	char asked[NODES_MAX][CREG_NODE_MAX]; /* the names of the last MGET */
	size_t nasked;
	unsigned long forwarded_out, forwarded_in, rerouted, bounced_link_down;
};

static void (*arrival)(struct xmpp_server *srv, struct xml_node *st, bool local_only);

void cluster_set_arrival(void (*fn)(struct xmpp_server *srv, struct xml_node *st, bool local_only))
{
	arrival = fn;
}

bool cluster_on(const struct xmpp_server *srv)
{
	return srv && srv->cluster;
}

bool cluster_link_up(const struct xmpp_server *srv)
{
	return srv && srv->cluster && redis_up(srv->cluster->cmd);
}

static bool is_str(const redisReply *r)
{
	return r && (r->type == REDIS_REPLY_STRING || r->type == REDIS_REPLY_STATUS);
}

/* ---- the registry ---- */

static void publish_set(struct cluster *cl, const char *full, const struct creg_rec *rec)
{
	char v[CREG_NODE_MAX + 16];
	if (!creg_encode(rec, v, sizeof(v)))
		return;
	redis_cmd(cl->cmd, NULL, NULL, "HSET fg:sessions %s %s", full, v);
	char msg[3200];
	int n = snprintf(msg, sizeof(msg), "set %s %s", full, v);
	if (n > 0 && (size_t)n < sizeof(msg))
		redis_cmd(cl->cmd, NULL, NULL, "PUBLISH fg:reg %s", msg);
}

static void publish_del(struct cluster *cl, const char *full)
{
	redis_cmd(cl->cmd, NULL, NULL, "HDEL fg:sessions %s", full);
	char msg[3200];
	int n = snprintf(msg, sizeof(msg), "del %s", full);
	if (n > 0 && (size_t)n < sizeof(msg))
		redis_cmd(cl->cmd, NULL, NULL, "PUBLISH fg:reg %s", msg);
}

static void record_of(struct cluster *cl, struct session *s, struct creg_rec *rec)
{
	struct session_presence *p = session_presence(s);
	memset(rec, 0, sizeof(*rec));
	snprintf(rec->node, sizeof(rec->node), "%s", cl->self);
	rec->priority = p->priority;
	rec->available = p->last != NULL;
}

void cluster_session_changed(struct xmpp_server *srv, struct session *s)
{
	struct cluster *cl = srv->cluster;
	if (!cl)
		return;
	struct creg_rec rec;
	record_of(cl, s, &rec);
	const struct creg_rec *old = creg_get(cl->reg, session_full(s));
	if (old && strcmp(old->node, rec.node) == 0 && old->priority == rec.priority &&
	    old->available == rec.available)
		return;
	creg_set(cl->reg, session_full(s), &rec);
	/* While the link is down the cache alone knows; the resync after it
	 * comes back writes every local session again. */
	publish_set(cl, session_full(s), &rec);
}

void cluster_session_gone(struct xmpp_server *srv, struct session *s)
{
	struct cluster *cl = srv->cluster;
	if (!cl)
		return;
	const struct creg_rec *old = creg_get(cl->reg, session_full(s));
	if (old && strcmp(old->node, cl->self) != 0)
		return; /* another node took the resource meanwhile */
	creg_del(cl->reg, session_full(s));
	publish_del(cl, session_full(s));
}

static void session_hook(struct xmpp_server *srv, struct session *s, bool gone)
{
	if (gone)
		cluster_session_gone(srv, s);
	else
		cluster_session_changed(srv, s);
}

/* "KIND NODE USER" on fg:reg: this node did KIND for USER. */
static void publish_note(struct xmpp_server *srv, const char *kind, const char *user)
{
	struct cluster *cl = srv->cluster;
	char msg[3200];
	int n = snprintf(msg, sizeof(msg), "%s %s %s", kind, cl->self, user);
	if (n > 0 && (size_t)n < sizeof(msg))
		redis_cmd(cl->cmd, NULL, NULL, "PUBLISH fg:reg %s", msg);
}

static void roster_hook(struct xmpp_server *srv, const char *user)
{
	publish_note(srv, "roster", user);
}

/* "offline NODE USER": NODE stored a message for USER; a node where USER
 * is available takes it (the registry's window, docs/internals.md). */
static void offline_hook(struct xmpp_server *srv, const char *user)
{
	publish_note(srv, "offline", user);
}

struct own_ctx {
	struct xmpp_server *srv;
	const struct xml_node *st;
	const char *from, *bare;
};

static void to_own(void *ud, const char *resource, const struct creg_rec *r)
{
	struct own_ctx *o = ud;
	struct cluster *cl = o->srv->cluster;
	if (!r->available || strcmp(r->node, cl->self) == 0)
		return;
	char to[3200];
	struct xml_node *copy = xml_clone(o->st);
	if (!copy || snprintf(to, sizeof(to), "%s/%s", o->bare, resource) >= (int)sizeof(to)) {
		xml_free(&copy);
		return;
	}
	xml_set_attr(copy, NULL, "from", o->from);
	xml_set_attr(copy, NULL, "to", to);
	/* routed there to the full JID; presence is not bounced */
	cluster_forward(o->srv, r->node, copy, false, o->bare, true);
}

/* RFC 6121 §4.2.2, §4.4.2: the user's own resources on other nodes see
 * its presence too (srv->cluster_to_own). */
static void own_hook(struct xmpp_server *srv, const struct xml_node *st, const char *from,
		     const char *bare)
{
	struct own_ctx o = {srv, st, from, bare};
	creg_each_of(srv->cluster->reg, bare, to_own, &o);
}

static void forward_mode(struct xmpp_server *srv, const char *node, struct xml_node *st,
			 const char *mode, const char *user, bool copy);

struct carbon_ctx {
	struct xmpp_server *srv;
	const struct xml_node *msg;
	const char *bare, *kind, *except;
	bool bare_delivery;
};

static void carbon_to(void *ud, const char *resource, const struct creg_rec *r)
{
	struct carbon_ctx *c = ud;
	struct cluster *cl = c->srv->cluster;
	char full[3200];
	snprintf(full, sizeof(full), "%s/%s", c->bare, resource);
	if (strcmp(r->node, cl->self) == 0 || (c->except && strcmp(full, c->except) == 0) ||
	    (c->bare_delivery && r->available && r->priority >= 0))
		return;
	/* <message from=bare to=full><KIND><forwarded><msg/></forwarded></KIND> */
	struct xml_node *w = xml_new(XML_NS_SERVER, "message");
	struct xml_node *k = w ? xml_add_child(w, XML_NS_CARBONS, c->kind) : NULL;
	struct xml_node *f = k ? xml_add_child(k, XML_NS_FORWARD, "forwarded") : NULL;
	const char *type = xml_attr(c->msg, "type");
	if (!f || xml_set_attr(w, NULL, "from", c->bare) != 0 ||
	    xml_set_attr(w, NULL, "to", full) != 0 ||
	    xml_set_attr(w, NULL, "type", type && !strcmp(type, "chat") ? "chat" : "normal") != 0 ||
	    xml_append_copy(f, c->msg) != 0) {
		xml_free(&w);
		return;
	}
	forward_mode(c->srv, r->node, w, "c", c->bare, true);
}

static void carbons_hook(struct xmpp_server *srv, const struct xml_node *msg, const char *bare,
			 const char *kind, const char *except, bool bare_delivery)
{
	struct carbon_ctx c = {srv, msg, bare, kind, except, bare_delivery};
	creg_each_of(srv->cluster->reg, bare, carbon_to, &c);
}

static bool elsewhere_hook(struct xmpp_server *srv, const char *bare)
{
	char one[1][CREG_NODE_MAX];
	return cluster_nodes_for(srv, bare, false, one, 1) > 0;
}

/* A registry change from the channel: "set FULL RECORD" or "del FULL". */
/* The USER of a "KIND NODE USER" note (buf, cut) that another node
 * published, or NULL. */
static const char *note_user(struct cluster *cl, char *buf, const char *kind)
{
	size_t k = strlen(kind);
	if (strncmp(buf, kind, k) != 0)
		return NULL;
	char *node = buf + k, *user = strchr(node, ' ');
	if (!user)
		return NULL;
	*user++ = '\0';
	return strcmp(node, cl->self) != 0 && *user ? user : NULL;
}

static void on_reg_message(struct cluster *cl, const char *m, size_t len)
{
	char buf[3200];
	if (len >= sizeof(buf) || memchr(m, '\0', len))
		return;
	memcpy(buf, m, len);
	buf[len] = '\0';
	if (strncmp(buf, "del ", 4) == 0) {
		const struct creg_rec *old = creg_get(cl->reg, buf + 4);
		/* Our own sessions are ours to say. */
		if (old && strcmp(old->node, cl->self) != 0)
			creg_del(cl->reg, buf + 4);
		return;
	}
	const char *user;
	if ((user = note_user(cl, buf, "roster "))) {
		/* another node changed a roster */
		roster_reload(cl->srv, user);
		return;
	}
	if ((user = note_user(cl, buf, "offline "))) {
		offline_wake(cl->srv, user);
		return;
	}
	if (strncmp(buf, "set ", 4) != 0)
		return;
	char *full = buf + 4, *sp = strchr(full, ' ');
	struct creg_rec rec;
	if (!sp)
		return;
	*sp = '\0';
	if (!creg_decode(sp + 1, strlen(sp + 1), &rec) || strcmp(rec.node, cl->self) == 0)
		return;
	creg_set(cl->reg, full, &rec);
}

static void write_own(void *ud, struct session *s)
{
	struct cluster *cl = ud;
	struct creg_rec rec;
	record_of(cl, s, &rec);
	creg_set(cl->reg, session_full(s), &rec);
	publish_set(cl, session_full(s), &rec);
}

/* The whole registry, read again: the cache is replaced by it, then this
 * node's sessions are written (a restart of Redis lost them) and what the
 * registry says of this node that is not true any more is removed. */
static void on_hgetall(struct redis *rd, void *ud, redisReply *r)
{
	struct cluster *cl = ud;
	if (!rd)
		return;
	if (!r || r->type != REDIS_REPLY_ARRAY)
		return;
	creg_clear(cl->reg);
	for (size_t i = 0; i + 1 < r->elements; i += 2) {
		redisReply *k = r->element[i], *v = r->element[i + 1];
		struct creg_rec rec;
		if (!is_str(k) || !is_str(v) || memchr(k->str, '\0', (size_t)k->len) ||
		    !creg_decode(v->str, (size_t)v->len, &rec))
			continue;
		if (strcmp(rec.node, cl->self) == 0) {
			char full[3200];
			snprintf(full, sizeof(full), "%.*s", (int)k->len, k->str);
			struct session *s = NULL;
			char *slash = strchr(full, '/');
			if (slash) {
				*slash = '\0';
				s = session_find(cl->srv, full, slash + 1);
				*slash = '/';
			}
			if (!s)
				publish_del(cl, full); /* from this node's earlier life */
			continue;
		}
		creg_set(cl->reg, k->str, &rec);
	}
	session_each(cl->srv, write_own, cl);
}

static void resync(struct cluster *cl)
{
	redis_cmd(cl->cmd, on_hgetall, cl, "HGETALL fg:sessions");
}

/* ---- heartbeat, the other nodes, the reaper ---- */

static void reap(struct cluster *cl, const char *node);

/* What another node says of its s2s streams and failing routes, kept for
 * the connection limits and status until its next heartbeat. */
struct node_read {
	struct cluster *cl;
	char node[CREG_NODE_MAX];
	bool failures;
};

static struct node_seen *seen(struct cluster *cl, const char *name)
{
	for (size_t i = 0; i < cl->nnodes; i++)
		if (strcmp(cl->nodes[i].name, name) == 0)
			return &cl->nodes[i];
	return NULL;
}

static void on_node_read(struct redis *rd, void *ud, redisReply *r)
{
	struct node_read *nr = ud;
	if (!rd) {
		free(nr);
		return;
	}
	struct node_seen *n = seen(nr->cl, nr->node);
	if (n && r && nr->failures) {
		json_t *rows = is_str(r) ? json_loadb(r->str, (size_t)r->len, 0, NULL) : NULL;
		json_decref(n->failures);
		n->failures = json_is_array(rows) ? rows : NULL;
		if (!n->failures)
			json_decref(rows);
	} else if (n && r && r->type == REDIS_REPLY_ARRAY) {
		json_t *o = json_object();
		for (size_t i = 0; o && i + 1 < r->elements; i += 2) {
			redisReply *k = r->element[i], *v = r->element[i + 1];
			if (!is_str(k) || !is_str(v) || memchr(k->str, '\0', (size_t)k->len))
				continue;
			json_object_set_new(o, k->str, json_integer(strtol(v->str, NULL, 10)));
		}
		json_decref(n->s2s);
		n->s2s = o;
	}
	free(nr);
}

static void read_node(struct cluster *cl, const char *node, bool failures)
{
	struct node_read *nr = calloc(1, sizeof(*nr));
	if (!nr)
		return;
	nr->cl = cl;
	nr->failures = failures;
	snprintf(nr->node, sizeof(nr->node), "%s", node);
	int rc = failures ? redis_cmd(cl->cmd, on_node_read, nr, "GET fg:failures:%s", node)
			  : redis_cmd(cl->cmd, on_node_read, nr, "HGETALL fg:s2s:%s", node);
	if (rc != FG_OK)
		free(nr);
}

static void node_forget(struct node_seen *n)
{
	json_decref(n->s2s);
	json_decref(n->failures);
	n->s2s = n->failures = NULL;
}

static int by_name(const void *a, const void *b)
{
	return strcmp(((const struct node_seen *)a)->name, ((const struct node_seen *)b)->name);
}

static void on_mget(struct redis *rd, void *ud, redisReply *r)
{
	struct cluster *cl = ud;
	if (!rd)
		return;
	if (!r || r->type != REDIS_REPLY_ARRAY || r->elements != cl->nasked)
		return;
	/* The table is rebuilt from the answer; what is read of each node
	 * (s2s counts, failures) moves along with it. */
	struct node_seen old[NODES_MAX];
	size_t nold = cl->nnodes;
	memcpy(old, cl->nodes, nold * sizeof(old[0]));
	size_t keep = 0;
	for (size_t i = 0; i < r->elements; i++) {
		redisReply *v = r->element[i];
		struct node_seen n = {0};
		snprintf(n.name, sizeof(n.name), "%s", cl->asked[i]);
		for (size_t k = 0; k < nold; k++)
			if (strcmp(old[k].name, n.name) == 0) {
				n.s2s = old[k].s2s;
				n.failures = old[k].failures;
				old[k].s2s = old[k].failures = NULL;
			}
		if (!is_str(v)) {
			node_forget(&n);
			if (strcmp(n.name, cl->self) != 0)
				reap(cl, n.name);
			continue;
		}
		char buf[64];
		snprintf(buf, sizeof(buf), "%.*s", (int)(v->len < 63 ? v->len : 63), v->str);
		long long ms = 0;
		unsigned sessions = 0;
		if (sscanf(buf, "%lld %u", &ms, &sessions) != 2)
			continue;
		n.heartbeat_ms = ms;
		n.sessions = sessions;
		cl->nodes[keep++] = n;
		if (strcmp(n.name, cl->self) != 0) {
			read_node(cl, n.name, false);
			read_node(cl, n.name, true);
		}
	}
	for (size_t k = 0; k < nold; k++)
		node_forget(&old[k]);
	cl->nnodes = keep;
	/* status lists them in name order, not Redis's set order */
	qsort(cl->nodes, keep, sizeof(cl->nodes[0]), by_name);
}

static void on_members(struct redis *rd, void *ud, redisReply *r)
{
	struct cluster *cl = ud;
	if (!rd || !r || r->type != REDIS_REPLY_ARRAY)
		return;
	const char *argv[NODES_MAX + 1];
	size_t lens[NODES_MAX + 1];
	char keys[NODES_MAX][CREG_NODE_MAX + 10];
	size_t n = 0;
	argv[0] = "MGET";
	lens[0] = 4;
	for (size_t i = 0; i < r->elements && n < NODES_MAX; i++) {
		redisReply *e = r->element[i];
		char name[CREG_NODE_MAX];
		if (!is_str(e) || (size_t)e->len >= sizeof(name))
			continue;
		memcpy(name, e->str, (size_t)e->len);
		name[e->len] = '\0';
		if (!creg_node_valid(name))
			continue;
		snprintf(cl->asked[n], sizeof(cl->asked[n]), "%s", name);
		int k = snprintf(keys[n], sizeof(keys[n]), "fg:alive:%s", name);
		argv[n + 1] = keys[n];
		lens[n + 1] = (size_t)k;
		n++;
	}
	cl->nasked = n;
	if (n > 0)
		redis_cmdv(rd, on_mget, cl, (int)n + 1, argv, lens);
}

/* This node's s2s streams per partner (and "*": all of them), which the
 * other nodes add to theirs for the connection limits, and its failing
 * routes, which their status shows; both as of this heartbeat. */
static void publish_s2s(struct cluster *cl)
{
	struct xmpp_server *srv = cl->srv;
	const struct policy *pol = srv->live->partners;
	size_t np = policy_count(pol);
	const char **argv = calloc(2 * np + 4, sizeof(*argv));
	char(*nums)[16] = calloc(np + 1, sizeof(*nums));
	char key[CREG_NODE_MAX + 8];
	if (!argv || !nums) {
		free(argv);
		free(nums);
		return;
	}
	snprintf(key, sizeof(key), "fg:s2s:%s", cl->self);
	int n = 0;
	argv[n++] = "HSET";
	argv[n++] = key;
	argv[n++] = "*";
	snprintf(nums[np], sizeof(nums[np]), "%u",
		 routes_stream_count(srv, NULL) + xmpp_s2s_in_count(srv, NULL));
	argv[n++] = nums[np];
	for (size_t i = 0; i < np; i++) {
		const struct partner *p = policy_at(pol, i);
		snprintf(nums[i], sizeof(nums[i]), "%u",
			 routes_stream_count(srv, p) + xmpp_s2s_in_count(srv, p));
		argv[n++] = p->domain;
		argv[n++] = nums[i];
	}
	redis_cmdv(cl->cmd, NULL, NULL, n, argv, NULL);
	free(argv);
	free(nums);

	json_t *rows = json_array(), *failing = json_array();
	routes_status(srv, rows);
	size_t i;
	json_t *r;
	json_array_foreach(rows, i, r)
	{
		json_t *lf = json_object_get(r, "last_failure");
		const char *st = json_string_value(json_object_get(lf, "state"));
		if (st && strcmp(st, "failing") == 0)
			json_array_append(failing, r);
	}
	char *text = json_dumps(failing, JSON_COMPACT);
	if (text)
		redis_cmd(cl->cmd, NULL, NULL, "SET fg:failures:%s %s PX %u", cl->self, text,
			  srv->conf->cluster_node_timeout * 1000);
	free(text);
	json_decref(rows);
	json_decref(failing);
}

/* srv->cluster_s2s: streams with partner p (NULL: all) on the other live
 * nodes, as they said at their last heartbeat. */
static unsigned s2s_hook(const struct xmpp_server *srv, const struct partner *p)
{
	const struct cluster *cl = srv->cluster;
	unsigned n = 0;
	for (size_t i = 0; cl && i < cl->nnodes; i++) {
		const struct node_seen *s = &cl->nodes[i];
		if (strcmp(s->name, cl->self) == 0 || !s->s2s)
			continue;
		n += (unsigned)json_integer_value(json_object_get(s->s2s, p ? p->domain : "*"));
	}
	return n;
}

static void heartbeat(struct cluster *cl)
{
	if (!redis_up(cl->cmd))
		return;
	char v[64];
	snprintf(v, sizeof(v), "%lld %u", fg_now_ms(), session_count(cl->srv));
	const struct fg_conf *c = cl->srv->conf;
	redis_cmd(cl->cmd, NULL, NULL, "SET fg:alive:%s %s PX %u", cl->self, v,
		  c->cluster_node_timeout * 1000);
	redis_cmd(cl->cmd, NULL, NULL, "SADD fg:nodes %s", cl->self);
	publish_s2s(cl);
	redis_cmd(cl->cmd, on_members, cl, "SMEMBERS fg:nodes");
}

static void tick_cb(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	heartbeat(arg);
}

/* What a dead node left: its sessions are gone (their contacts learn it),
 * then what was forwarded to it is routed again here. */
struct reap_ctx {
	struct cluster *cl;
	char node[CREG_NODE_MAX];
	unsigned sessions;
};

static void route_entry(struct cluster *cl, redisReply *entry, bool again);

static void on_take(struct redis *rd, void *ud, redisReply *r)
{
	struct reap_ctx *rc = ud;
	if (!rd) {
		free(rc); /* the node stays in Redis: another survivor reaps it */
		return;
	}
	struct cluster *cl = rc->cl;
	size_t n = 0;
	if (r && r->type == REDIS_REPLY_ARRAY) {
		for (size_t i = 0; i < r->elements; i++)
			route_entry(cl, r->element[i], true);
		n = r->elements;
	}
	log_info("cluster",
		 "node %s forgotten: %u sessions ended, %zu forwarded stanzas routed again",
		 rc->node, rc->sessions, n);
	free(rc);
}

static void on_reap_sessions(struct redis *rd, void *ud, redisReply *r)
{
	struct reap_ctx *rc = ud;
	struct cluster *cl = rc->cl;
	if (!rd || !r || r->type != REDIS_REPLY_ARRAY) {
		free(rc);
		return;
	}
	for (size_t i = 0; i + 1 < r->elements; i += 2) {
		redisReply *k = r->element[i], *v = r->element[i + 1];
		struct creg_rec rec;
		if (!is_str(k) || !is_str(v) || memchr(k->str, '\0', (size_t)k->len) ||
		    !creg_decode(v->str, (size_t)v->len, &rec) || strcmp(rec.node, rc->node) != 0)
			continue;
		creg_del(cl->reg, k->str);
		publish_del(cl, k->str);
		rc->sessions++;
		/* RFC 6121 §4.5.2's unavailable presence, which the dead node
		 * cannot send any more (the roster is in the shared store). */
		if (rec.available)
			presence_gone_elsewhere(cl->srv, k->str);
	}
	char q[CREG_NODE_MAX + 8], alive[CREG_NODE_MAX + 10], s2s[CREG_NODE_MAX + 8],
		fail[CREG_NODE_MAX + 16];
	snprintf(q, sizeof(q), "fg:q:%s", rc->node);
	snprintf(alive, sizeof(alive), "fg:alive:%s", rc->node);
	snprintf(s2s, sizeof(s2s), "fg:s2s:%s", rc->node);
	snprintf(fail, sizeof(fail), "fg:failures:%s", rc->node);
	if (redis_cmd(rd, on_take, rc, "EVAL %s 5 %s fg:nodes %s %s %s %s", TAKE_LUA, q, alive, s2s,
		      fail, rc->node) != FG_OK)
		free(rc);
}

static void on_lock(struct redis *rd, void *ud, redisReply *r)
{
	struct reap_ctx *rc = ud;
	if (!rd || !is_str(r) || strcmp(r->str, "OK") != 0) {
		free(rc); /* another node reaps it */
		return;
	}
	log_warn("cluster", "node %s stopped heartbeating: forgetting it", rc->node);
	if (redis_cmd(rd, on_reap_sessions, rc, "HGETALL fg:sessions") != FG_OK)
		free(rc);
}

static void reap(struct cluster *cl, const char *node)
{
	struct reap_ctx *rc = calloc(1, sizeof(*rc));
	if (!rc)
		return;
	rc->cl = cl;
	snprintf(rc->node, sizeof(rc->node), "%s", node);
	unsigned lock_ms = cl->srv->conf->cluster_node_timeout * 1000 * 2;
	if (redis_cmd(cl->cmd, on_lock, rc, "SET fg:reap:%s %s NX PX %u", node, cl->self,
		      lock_ms) != FG_OK)
		free(rc);
}

/* ---- forwarding ---- */

struct fwd {
	struct cluster *cl;
	struct xml_node *st; /* kept until Redis has it, to bounce it otherwise */
	char node[CREG_NODE_MAX];
	bool copy;
	char *user;
};

/* One line when the link is down, not one per stanza: the link's state
 * change is logged once (on_cmd_state), each refusal only counted. */
static void fail_forward(struct cluster *cl, struct xml_node *st, const char *user, const char *why,
			 bool copy)
{
	cl->bounced_link_down++;
	char text[400];
	snprintf(text, sizeof(text), "%s: %s is on another node", why,
		 user ? user : "the recipient");
	const char *type = xml_attr(st, "type");
	if (copy || xml_is(st, NULL, "presence") || (type && !strcmp(type, "error"))) {
		log_debug("cluster", "%s to %s dropped: %s", st->name, user ? user : "-", text);
		counters_stanza(STANZA_DROPPED, "cluster-link-down");
		xml_free(&st);
		return;
	}
	cl->srv->bounce(cl->srv, st, "cancel", "service-unavailable", text);
}

static void on_xadd(struct redis *rd, void *ud, redisReply *r)
{
	struct fwd *f = ud;
	struct cluster *cl = f->cl;
	if (!rd) { /* shutting down: it stays with the sender */
		counters_stanza(STANZA_DROPPED, "shutdown");
		xml_free(&f->st);
		free(f->user);
		free(f);
		return;
	}
	if (r && r->type == REDIS_REPLY_INTEGER && r->integer == 1) {
		cl->forwarded_out++;
		xml_free(&f->st);
	} else if (r && r->type == REDIS_REPLY_INTEGER && r->integer == 0 && arrival) {
		/* The node was forgotten meanwhile: its sessions left the
		 * registry, so the router finds where the stanza goes now. */
		log_info("cluster", "node %s is gone: a stanza for it is routed again", f->node);
		/* Forgotten here too at once, so the stanza does not go back
		 * to it before the registry channel says so. */
		creg_drop_node(cl->reg, f->node);
		cl->rerouted++;
		cl->srv->route(cl->srv, f->st);
		f->st = NULL;
	} else {
		fail_forward(cl, f->st, f->user,
			     r ? "the cluster link refused the forward"
			       : "the cluster link is down",
			     f->copy);
		f->st = NULL;
	}
	free(f->user);
	free(f);
}

void cluster_forward(struct xmpp_server *srv, const char *node, struct xml_node *st,
		     bool local_only, const char *user, bool copy)
{
	forward_mode(srv, node, st, local_only ? "l" : "r", user, copy);
}

static void forward_mode(struct xmpp_server *srv, const char *node, struct xml_node *st,
			 const char *mode, const char *user, bool copy)
{
	struct cluster *cl = srv->cluster;
	assert(cl);
	if (!redis_up(cl->cmd)) {
		fail_forward(cl, st, user, "the cluster link is down", copy);
		return;
	}
	struct xml_buf b = {0};
	xml_serialize(st, NULL, &b);
	struct fwd *f = calloc(1, sizeof(*f));
	if (!f || b.oom || !(f->user = strdup(user ? user : ""))) {
		xml_buf_free(&b);
		free(f);
		fail_forward(cl, st, user, "out of memory", copy);
		return;
	}
	f->cl = cl;
	f->st = st;
	f->copy = copy;
	snprintf(f->node, sizeof(f->node), "%s", node);
	char q[CREG_NODE_MAX + 8];
	snprintf(q, sizeof(q), "fg:q:%s", node);
	const char *argv[] = {"EVAL", XADD_LUA, "2",  q,      "fg:nodes",
			      node,   cl->self, mode, b.data, STREAM_MAXQ};
	size_t lens[FG_ARRAY_LEN(argv)];
	for (size_t i = 0; i < FG_ARRAY_LEN(argv); i++)
		lens[i] = argv[i] == b.data ? b.len : strlen(argv[i]);
	int rc = redis_cmdv(cl->cmd, on_xadd, f, (int)FG_ARRAY_LEN(argv), argv, lens);
	xml_buf_free(&b);
	if (rc != FG_OK) {
		free(f->user);
		free(f);
		fail_forward(cl, st, user, "the cluster link is down", copy);
	}
}

struct any_ctx {
	const char *self;
	const char *node;
	bool available;
};

static void any_of(void *ud, const char *resource, const struct creg_rec *r)
{
	struct any_ctx *a = ud;
	(void)resource;
	if (strcmp(r->node, a->self) == 0 || (a->node && (a->available || !r->available)))
		return;
	a->node = r->node;
	a->available = r->available;
}

const char *cluster_user_node(struct xmpp_server *srv, const char *bare)
{
	struct cluster *cl = srv->cluster;
	if (!cl)
		return NULL;
	struct any_ctx a = {cl->self, NULL, false};
	creg_each_of(cl->reg, bare, any_of, &a);
	return a.node;
}

const char *cluster_node_of(struct xmpp_server *srv, const char *full)
{
	struct cluster *cl = srv->cluster;
	if (!cl)
		return NULL;
	const struct creg_rec *r = creg_get(cl->reg, full);
	return r && strcmp(r->node, cl->self) != 0 ? r->node : NULL;
}

size_t cluster_nodes_for(struct xmpp_server *srv, const char *bare, bool message,
			 char out[][CREG_NODE_MAX], size_t max)
{
	struct cluster *cl = srv->cluster;
	return cl ? creg_nodes_for(cl->reg, bare, cl->self, message, out, max) : 0;
}

/* ---- the stream of stanzas forwarded to this node ---- */

/* A carbon another node made for a session here (XEP-0280): delivered
 * only if the session is here and asked for carbons. */
static void carbon_arrived(struct xmpp_server *srv, struct xml_node *st)
{
	const char *to = xml_attr(st, "to");
	const char *slash = strchr(to, '/');
	char bare[3200];
	snprintf(bare, sizeof(bare), "%.*s", (int)(slash - to), to);
	struct session *s = session_find(srv, bare, slash + 1);
	if (!s || !session_carbons(s)) {
		counters_stanza(STANZA_DROPPED, "carbon-not-wanted");
		xml_free(&st);
		return;
	}
	counters_stanza(STANZA_DELIVERED, NULL);
	session_deliver(s, st);
}

/* The entry is done with here: routed, stored, bounced, dropped, or its
 * copy acknowledged by the client. */
static void settle(struct cluster *cl, const char *id, size_t len)
{
	redis_cmd(cl->cmd, NULL, NULL, "XACK %s g %b", cl->q_self, id, len);
	redis_cmd(cl->cmd, NULL, NULL, "XDEL %s %b", cl->q_self, id, len);
}

static void settled_hook(struct xmpp_server *srv, const char *entry)
{
	if (srv->cluster)
		settle(srv->cluster, entry, strlen(entry));
}

/* One stream entry [id, [field, value, ...]]: parsed and routed; again:
 * the reaper's, from a dead node (routed afresh, not acknowledged). */
static void route_entry(struct cluster *cl, redisReply *entry, bool again)
{
	if (!entry || entry->type != REDIS_REPLY_ARRAY || entry->elements != 2 ||
	    !is_str(entry->element[0]))
		return;
	redisReply *id = entry->element[0], *kv = entry->element[1];
	const char *names[16], *values[16];
	size_t nl[16], vl[16], n = 0;
	for (size_t i = 0; kv && kv->type == REDIS_REPLY_ARRAY && i + 1 < kv->elements && n < 16;
	     i += 2) {
		if (!is_str(kv->element[i]) || !is_str(kv->element[i + 1]))
			continue;
		names[n] = kv->element[i]->str;
		nl[n] = (size_t)kv->element[i]->len;
		values[n] = kv->element[i + 1]->str;
		vl[n] = (size_t)kv->element[i + 1]->len;
		n++;
	}
	struct cluster_env e;
	char why[200];
	if (!cluster_env_parse(names, nl, values, vl, n, &e, why, sizeof(why))) {
		log_warn("cluster", "a forwarded entry %.*s is not a stanza (%s): dropped",
			 (int)(id->len < 40 ? id->len : 40), id->str, why);
		counters_stanza(STANZA_DROPPED, "cluster-garbage");
	} else if (again) {
		cl->rerouted++;
		/* Local-only copies were for the dead node's sessions, which
		 * are gone: the stanza takes its normal way now. */
		cl->srv->route(cl->srv, e.stanza);
	} else {
		cl->forwarded_in++;
		char eid[64];
		snprintf(eid, sizeof(eid), "%.*s", (int)(id->len < 63 ? id->len : 63), id->str);
		unsigned held = cl->srv->cluster_held;
		cl->srv->cluster_entry = eid;
		if (e.carbon)
			carbon_arrived(cl->srv, e.stanza);
		else if (arrival)
			arrival(cl->srv, e.stanza, e.local_only);
		else
			xml_free(&e.stanza);
		cl->srv->cluster_entry = NULL;
		/* A client with stream management has it only once it says so
		 * (settled_hook); what else happened to it is final. */
		if (cl->srv->cluster_held != held)
			return;
	}
	if (!again)
		settle(cl, id->str, (size_t)id->len);
}

static void read_more(struct cluster *cl);

static void on_read(struct redis *rd, void *ud, redisReply *r)
{
	struct cluster *cl = ud;
	if (!rd)
		return;
	cl->reading = false;
	if (!r)
		return; /* the reader's link is down; it starts again when up */
	size_t got = 0;
	if (r->type == REDIS_REPLY_ARRAY) {
		for (size_t s = 0; s < r->elements; s++) {
			redisReply *str = r->element[s];
			if (!str || str->type != REDIS_REPLY_ARRAY || str->elements != 2 ||
			    str->element[1]->type != REDIS_REPLY_ARRAY)
				continue;
			redisReply *entries = str->element[1];
			for (size_t i = 0; i < entries->elements; i++)
				route_entry(cl, entries->element[i], false);
			got += entries->elements;
		}
	} else if (r->type == REDIS_REPLY_ERROR) {
		/* NOGROUP: the stream was deleted (this node was taken for
		 * dead); make it again */
		log_warn("cluster", "reading %s: %s", cl->q_self, r->str);
		redis_cmd(cl->rd, NULL, NULL, "XGROUP CREATE %s g 0 MKSTREAM", cl->q_self);
	}
	if (cl->pending_first && got == 0)
		cl->pending_first = false;
	read_more(cl);
}

static void read_more(struct cluster *cl)
{
	if (cl->reading || !redis_up(cl->rd) || cl->srv->stopping)
		return;
	if (redis_cmd(cl->rd, on_read, cl,
		      "XREADGROUP GROUP g %s COUNT " READ_COUNT " BLOCK " READ_BLOCK
		      " STREAMS %s %s",
		      cl->self, cl->q_self, cl->pending_first ? "0" : ">") == FG_OK)
		cl->reading = true;
}

/* ---- the links ---- */

static void on_cmd_state(void *ud, bool up, const char *why)
{
	struct cluster *cl = ud;
	if (up) {
		if (cl->was_up)
			log_info("cluster",
				 "the cluster link is back after %lld ms: registering "
				 "%u sessions again",
				 fg_now_ms() - cl->down_since_ms, session_count(cl->srv));
		cl->down_since_ms = 0;
		cl->was_up = true;
		heartbeat(cl);
		resync(cl);
	} else {
		cl->down_since_ms = fg_now_ms();
		if (!cl->was_up) {
			log_warn(
				"cluster",
				"cannot reach Redis at %s yet (%s): this node serves its own users "
				"and partners alone until it can",
				cl->srv->conf->cluster_redis, why);
			return;
		}
		log_warn(
			"cluster",
			"the cluster link is down (Redis at %s: %s): this node serves its own "
			"users "
			"and partners; stanzas for users on other nodes are refused until Redis is "
			"back",
			cl->srv->conf->cluster_redis, why);
	}
}

static void on_sub_msg(struct redis *rd, void *ud, redisReply *r)
{
	struct cluster *cl = ud;
	if (!rd)
		return;
	if (!r || r->type != REDIS_REPLY_ARRAY || r->elements != 3 || !is_str(r->element[0]))
		return;
	if (strcmp(r->element[0]->str, "message") == 0 && is_str(r->element[2]))
		on_reg_message(cl, r->element[2]->str, (size_t)r->element[2]->len);
	else if (strcmp(r->element[0]->str, "subscribe") == 0 && redis_up(cl->cmd))
		resync(cl); /* what changed while this link was down */
}

static void on_sub_state(void *ud, bool up, const char *why)
{
	(void)why;
	struct cluster *cl = ud;
	if (up)
		redis_subscribe(cl->sub, "fg:reg", on_sub_msg, cl);
}

static void on_rd_state(void *ud, bool up, const char *why)
{
	(void)why;
	struct cluster *cl = ud;
	cl->reading = false;
	if (!up)
		return;
	redis_cmd(cl->rd, NULL, NULL, "XGROUP CREATE %s g 0 MKSTREAM", cl->q_self);
	/* What this node's earlier life read and never settled is read first,
	 * once per start (after a mere reconnect it is still held here). */
	read_more(cl);
}

int cluster_start(struct xmpp_server *srv, char *err, size_t errlen)
{
	const struct fg_conf *c = srv->conf;
	if (!c->cluster_redis || !*c->cluster_redis)
		return FG_OK;
	struct cluster *cl = calloc(1, sizeof(*cl));
	if (!cl) {
		snprintf(err, errlen, "out of memory");
		return FG_ERR;
	}
	cl->srv = srv;
	if (c->cluster_node && *c->cluster_node) {
		snprintf(cl->self, sizeof(cl->self), "%s", c->cluster_node);
	} else if (gethostname(cl->self, sizeof(cl->self)) != 0) {
		cl->self[0] = '\0';
	}
	cl->self[sizeof(cl->self) - 1] = '\0';
	if (!creg_node_valid(cl->self)) {
		snprintf(err, errlen,
			 "[cluster] node '%.64s' is not a node name: use letters, digits, '-', '_' "
			 "and '.' (at most 63)",
			 cl->self);
		free(cl);
		return FG_ERR;
	}
	snprintf(cl->q_self, sizeof(cl->q_self), "fg:q:%s", cl->self);
	cl->pending_first = true;
	cl->down_since_ms = fg_now_ms();
	srv->cluster = cl;
	srv->cluster_session = session_hook;
	srv->cluster_elsewhere = elsewhere_hook;
	srv->cluster_s2s = s2s_hook;
	srv->cluster_settled = settled_hook;
	srv->roster_saved = roster_hook;
	srv->offline_stored = offline_hook;
	srv->cluster_to_own = own_hook;
	srv->cluster_carbons = carbons_hook;
	cl->reg = creg_new();
	cl->tick = event_new(srv->base, -1, EV_PERSIST, tick_cb, cl);
	struct timeval tv = {(time_t)c->cluster_heartbeat, 0};
	if (!cl->reg || !cl->tick || event_add(cl->tick, &tv) != 0 ||
	    !(cl->cmd = redis_new(srv->base, c->cluster_redis, "redis", on_cmd_state, cl, err,
				  errlen)) ||
	    !(cl->sub = redis_new(srv->base, c->cluster_redis, "redis-sub", on_sub_state, cl, err,
				  errlen)) ||
	    !(cl->rd = redis_new(srv->base, c->cluster_redis, "redis-read", on_rd_state, cl, err,
				 errlen))) {
		cluster_stop(srv);
		return FG_ERR;
	}
	log_info("cluster", "node %s joins the cluster at %s (heartbeat %us, node timeout %us)",
		 cl->self, c->cluster_redis, c->cluster_heartbeat, c->cluster_node_timeout);
	return FG_OK;
}

void cluster_stop(struct xmpp_server *srv)
{
	struct cluster *cl = srv->cluster;
	if (!cl)
		return;
	/* Last words, when the link is up: this node's heartbeat key goes, so
	 * a survivor forgets it at its next tick (within a heartbeat, not
	 * node_timeout) and routes what is still in its stream. */
	if (redis_up(cl->cmd)) {
		redisContext *rc = redis_connect_sync(srv->conf->cluster_redis, 1000);
		redisReply *r =
			rc && !rc->err ? redisCommand(rc, "DEL fg:alive:%s", cl->self) : NULL;
		if (r)
			log_info("cluster", "node %s leaves the cluster", cl->self);
		freeReplyObject(r);
		redisFree(rc);
	}
	srv->cluster = NULL;
	srv->cluster_session = NULL;
	srv->cluster_elsewhere = NULL;
	srv->cluster_s2s = NULL;
	srv->cluster_settled = NULL;
	srv->roster_saved = NULL;
	srv->offline_stored = NULL;
	srv->cluster_to_own = NULL;
	srv->cluster_carbons = NULL;
	redis_free(&cl->rd);
	redis_free(&cl->sub);
	redis_free(&cl->cmd);
	if (cl->tick)
		event_free(cl->tick);
	creg_free(&cl->reg);
	for (size_t i = 0; i < cl->nnodes; i++)
		node_forget(&cl->nodes[i]);
	free(cl);
}

json_t *cluster_failures(struct xmpp_server *srv)
{
	struct cluster *cl = srv->cluster;
	json_t *out = json_array();
	for (size_t i = 0; cl && i < cl->nnodes; i++) {
		const struct node_seen *n = &cl->nodes[i];
		size_t k;
		json_t *r;
		json_array_foreach(n->failures, k, r)
		{
			json_t *c = json_deep_copy(r);
			json_object_set_new(c, "node", json_string(n->name));
			json_array_append_new(out, c);
		}
	}
	return out;
}

json_t *cluster_status(struct xmpp_server *srv)
{
	struct cluster *cl = srv->cluster;
	json_t *nodes = json_array();
	if (!cl) {
		char host[CREG_NODE_MAX] = "";
		const char *name = srv->conf->cluster_node;
		if (!name || !*name)
			name = gethostname(host, sizeof(host) - 1) == 0 ? host : "";
		return json_pack("{s:s,s:s,s:i,s:o,s:i,s:i,s:i,s:i}", "node", name, "redis", "off",
				 "redis_down_since_ms", 0, "nodes", nodes, "forwarded_out", 0,
				 "forwarded_in", 0, "rerouted", 0, "bounced_link_down", 0);
	}
	long long now = fg_now_ms();
	for (size_t i = 0; i < cl->nnodes; i++) {
		const struct node_seen *n = &cl->nodes[i];
		bool self = strcmp(n->name, cl->self) == 0;
		long long age = now - n->heartbeat_ms;
		json_array_append_new(nodes,
				      json_pack("{s:s,s:b,s:I,s:i}", "name", n->name, "self", self,
						"heartbeat_age_ms", (json_int_t)(age < 0 ? 0 : age),
						"sessions",
						self ? (int)session_count(srv) : (int)n->sessions));
	}
	bool up = redis_up(cl->cmd);
	return json_pack("{s:s,s:s,s:I,s:o,s:I,s:I,s:I,s:I}", "node", cl->self, "redis",
			 up ? "up" : "down", "redis_down_since_ms",
			 (json_int_t)(up ? 0 : cl->down_since_ms), "nodes", nodes, "forwarded_out",
			 (json_int_t)cl->forwarded_out, "forwarded_in",
			 (json_int_t)cl->forwarded_in, "rerouted", (json_int_t)cl->rerouted,
			 "bounced_link_down", (json_int_t)cl->bounced_link_down);
}

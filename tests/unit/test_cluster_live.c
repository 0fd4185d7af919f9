/* The cluster link against a real redis-server (started here, on a unix
 * socket in a temporary folder): this process is node n1 (the XMPP layer
 * of xmpp_fixture.h with cluster.c running), and the test plays the other
 * nodes by writing to Redis what their cluster.c would write, with a
 * plain synchronous hiredis connection.
 *
 * Sessions are made without a client stream: a session with stream
 * management and no stream keeps what it is given in its queue (as while
 * hibernating), which is where the test reads what reached the user. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>

#include <cmocka.h>

#include "xmpp_fixture.h"

#include "cluster.h"
#include "sm.h"
#include "xmlstream.h"

#include <hiredis/hiredis.h>
#include <signal.h>
#include <sys/wait.h>

struct cl_state {
	struct xfx fx;
	char dir[64];
	char sock[128];
	pid_t redis;
	redisContext *rc; /* the test's own connection: the other nodes */
	struct session *alice;
};

static void redis_start(struct cl_state *st)
{
	char sockarg[160];
	snprintf(sockarg, sizeof(sockarg), "%s", st->sock);
	pid_t pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		int devnull = open("/dev/null", O_WRONLY);
		if (devnull >= 0) {
			dup2(devnull, 1);
			dup2(devnull, 2);
		}
		execlp("redis-server", "redis-server", "--port", "0", "--unixsocket", sockarg,
		       "--save", "", "--appendonly", "no", "--dir", st->dir, (char *)NULL);
		_exit(127);
	}
	st->redis = pid;
	/* Ready when the socket answers PING. */
	for (int i = 0; i < 500; i++) {
		redisContext *c = redisConnectUnix(st->sock);
		if (c && !c->err) {
			redisReply *r = redisCommand(c, "PING");
			bool ok = r && r->type == REDIS_REPLY_STATUS;
			freeReplyObject(r);
			if (ok) {
				redisFree(st->rc);
				st->rc = c;
				return;
			}
		}
		if (c)
			redisFree(c);
		usleep(10000);
	}
	fail_msg("redis-server did not start on %s", st->sock);
}

static void redis_kill(struct cl_state *st)
{
	if (st->redis > 0) {
		kill(st->redis, SIGKILL);
		waitpid(st->redis, NULL, 0);
		st->redis = 0;
	}
	redisFree(st->rc);
	st->rc = NULL;
	unlink(st->sock);
}

static redisReply *cmd(struct cl_state *st, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	redisReply *r = redisvCommand(st->rc, fmt, ap);
	va_end(ap);
	assert_non_null(r);
	return r;
}

/* A string reply's text into buf ("" for nil). */
static const char *cmd_str(struct cl_state *st, char *buf, size_t len, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	redisReply *r = redisvCommand(st->rc, fmt, ap);
	va_end(ap);
	assert_non_null(r);
	snprintf(buf, len, "%s", r->type == REDIS_REPLY_STRING ? r->str : "");
	freeReplyObject(r);
	return buf;
}

static long long cmd_int(struct cl_state *st, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	redisReply *r = redisvCommand(st->rc, fmt, ap);
	va_end(ap);
	assert_non_null(r);
	long long v = r->type == REDIS_REPLY_INTEGER ? r->integer : -1;
	freeReplyObject(r);
	return v;
}

/* A session of user/resource on this node, available with priority prio
 * (prio < -200: bound, no presence yet). */
static struct session *local_session(struct cl_state *st, const char *bare, const char *res,
				     int prio)
{
	char full[256];
	snprintf(full, sizeof(full), "%s/%s", bare, res);
	struct session *s = session_new(&st->fx.srv, NULL, bare, res, full);
	assert_non_null(s);
	assert_int_equal(session_sm_enable(s, 1000, false), FG_OK);
	assert_int_equal(session_register(s), FG_OK);
	if (prio > -200) {
		struct session_presence *p = session_presence(s);
		p->initial = true;
		p->priority = prio;
		p->last = xml_new(XML_NS_SERVER, "presence");
		assert_non_null(p->last);
		cluster_session_changed(&st->fx.srv, s);
	}
	return s;
}

struct known {
	struct cl_state *st;
	const char *full, *node;
};

static bool node_known(void *arg)
{
	struct known *k = arg;
	const char *n = cluster_node_of(&k->st->fx.srv, k->full);
	return k->node ? n && strcmp(n, k->node) == 0 : n == NULL;
}

/* What the test's node `node` would do for a session of its own; returns
 * once this node's cache has it. */
static void remote_session(struct cl_state *st, const char *node, const char *full, int prio)
{
	char rec[64];
	snprintf(rec, sizeof(rec), "%s %d 1", node, prio);
	freeReplyObject(cmd(st, "SADD fg:nodes %s", node));
	freeReplyObject(cmd(st, "SET fg:alive:%s %s PX 600000", node, "1 1"));
	freeReplyObject(cmd(st, "HSET fg:sessions %s %s", full, rec));
	char msg[300];
	snprintf(msg, sizeof(msg), "set %s %s", full, rec);
	freeReplyObject(cmd(st, "PUBLISH fg:reg %s", msg));
	struct known k = {st, full, node};
	assert_true(xfx_run_until(&st->fx, node_known, &k, XFX_WAIT_MS));
}

static bool redis_has(struct cl_state *st, const char *key, const char *field, const char *want)
{
	char buf[256];
	cmd_str(st, buf, sizeof(buf), "HGET %s %s", key, field);
	return strcmp(buf, want) == 0;
}

struct hwait {
	struct cl_state *st;
	const char *key, *field, *want;
};

static bool hget_is(void *arg)
{
	struct hwait *w = arg;
	return redis_has(w->st, w->key, w->field, w->want);
}

static bool link_is(struct cl_state *st, const char *want)
{
	json_t *j = cluster_status(&st->fx.srv);
	bool ok = strcmp(json_string_value(json_object_get(j, "redis")), want) == 0;
	json_decref(j);
	return ok;
}

static bool link_up(void *arg)
{
	return link_is(arg, "up");
}

static bool link_down(void *arg)
{
	return link_is(arg, "down");
}

static long long status_num(struct cl_state *st, const char *name)
{
	json_t *j = cluster_status(&st->fx.srv);
	long long v = json_integer_value(json_object_get(j, name));
	json_decref(j);
	return v;
}

struct numwait {
	struct cl_state *st;
	const char *name;
	long long want;
};

static bool num_is(void *arg)
{
	struct numwait *w = arg;
	return status_num(w->st, w->name) == w->want;
}

/* The oldest stanza alice's session was given, serialized, or "". */
static char *alice_got(struct cl_state *st)
{
	struct xml_node *x = sm_pop(session_sm(st->alice));
	if (!x)
		return strdup("");
	struct xml_buf b = {0};
	xml_serialize(x, NULL, &b);
	xml_free(&x);
	xml_buf_append(&b, "", 1);
	return b.data;
}

struct qwait {
	struct cl_state *st;
	const char *key;
	long long n;
};

static bool xlen_is(void *arg)
{
	struct qwait *w = arg;
	return cmd_int(w->st, "XLEN %s", w->key) == w->n;
}

static bool alice_has(void *arg)
{
	struct cl_state *st = arg;
	return session_sm(st->alice)->n > 0;
}

static int setup(void **state)
{
	struct cl_state *st = calloc(1, sizeof(*st));
	assert_non_null(st);
	snprintf(st->dir, sizeof(st->dir), "/tmp/fgcluster-XXXXXX");
	assert_non_null(mkdtemp(st->dir));
	snprintf(st->sock, sizeof(st->sock), "%s/redis.sock", st->dir);
	redis_start(st);
	xfx_init(&st->fx);
	xfx_account(&st->fx, "alice@contoso.test", "pw-alice");
	xfx_account(&st->fx, "bob@contoso.test", "pw-bob");
	xfx_account(&st->fx, "carol@contoso.test", "pw-carol");
	/* alice and bob see each other's presence */
	struct roster_item *it =
		roster_add(roster_of(&st->fx.srv, "alice@contoso.test", true), "bob@contoso.test");
	it->sub_to = it->sub_from = true;
	it = roster_add(roster_of(&st->fx.srv, "bob@contoso.test", true), "alice@contoso.test");
	it->sub_to = it->sub_from = true;

	char addr[160];
	snprintf(addr, sizeof(addr), "unix:%s", st->sock);
	free(st->fx.conf->cluster_redis);
	free(st->fx.conf->cluster_node);
	st->fx.conf->cluster_redis = strdup(addr);
	st->fx.conf->cluster_node = strdup("n1");
	st->fx.conf->cluster_heartbeat = 1;
	st->fx.conf->cluster_node_timeout = 2;
	cluster_set_arrival(router_from_cluster);
	char err[300];
	assert_int_equal(cluster_start(&st->fx.srv, err, sizeof(err)), FG_OK);
	assert_true(xfx_run_until(&st->fx, link_up, st, XFX_WAIT_MS));
	st->alice = local_session(st, "alice@contoso.test", "a", 5);
	*state = st;
	return 0;
}

static int teardown(void **state)
{
	struct cl_state *st = *state;
	cluster_stop(&st->fx.srv);
	session_free(&st->alice);
	xfx_free(&st->fx);
	redis_kill(st);
	char path[128];
	snprintf(path, sizeof(path), "%s/dump.rdb", st->dir);
	unlink(path);
	rmdir(st->dir);
	free(st);
	return 0;
}

/* A bound session is in Redis with its priority and availability, and
 * this node heartbeats. */
static void test_registry_and_heartbeat(void **state)
{
	struct cl_state *st = *state;
	struct hwait w = {st, "fg:sessions", "alice@contoso.test/a", "n1 5 1"};
	assert_true(xfx_run_until(&st->fx, hget_is, &w, XFX_WAIT_MS));
	char buf[64];
	assert_int_equal(cmd_int(st, "SISMEMBER fg:nodes n1"), 1);
	assert_true(cmd_str(st, buf, sizeof(buf), "GET fg:alive:n1")[0] != '\0');
	long long ttl = cmd_int(st, "PTTL fg:alive:n1");
	assert_true(ttl > 0 && ttl <= 2000);
	/* A session that ends leaves the registry. */
	struct session *s = local_session(st, "carol@contoso.test", "c", 0);
	struct hwait wc = {st, "fg:sessions", "carol@contoso.test/c", "n1 0 1"};
	assert_true(xfx_run_until(&st->fx, hget_is, &wc, XFX_WAIT_MS));
	session_free(&s);
	wc.want = "";
	assert_true(xfx_run_until(&st->fx, hget_is, &wc, XFX_WAIT_MS));
	/* A node that stops says so: its heartbeat key goes at once. */
	cluster_stop(&st->fx.srv);
	assert_string_equal(cmd_str(st, buf, sizeof(buf), "GET fg:alive:n1"), "");
}

/* A message for a full JID on another node goes into that node's stream
 * to be routed there; one for the bare JID, whose only available resource
 * is there, goes as a local-only copy. */
static void test_forward_out(void **state)
{
	struct cl_state *st = *state;
	remote_session(st, "n2", "bob@contoso.test/b", 1);
	const char *msgs[] = {
		"<message xmlns='jabber:server' from='alice@contoso.test/a' "
		"to='bob@contoso.test/b' type='chat' id='f1'><body>to the full "
		"JID</body></message>",
		"<message xmlns='jabber:server' from='alice@contoso.test/a' "
		"to='bob@contoso.test' type='chat' id='f2'><body>to the bare JID</body></message>",
	};
	for (size_t i = 0; i < 2; i++)
		router_route(&st->fx.srv, xmlstream_parse_one(msgs[i]));
	/* a subscription request is handled where bob is signed in */
	router_route(&st->fx.srv,
		     xmlstream_parse_one("<presence xmlns='jabber:server' "
					 "from='alice@contoso.test' to='bob@contoso.test' "
					 "type='subscribe' id='f3'/>"));
	struct qwait q = {st, "fg:q:n2", 3};
	assert_true(xfx_run_until(&st->fx, xlen_is, &q, XFX_WAIT_MS));
	redisReply *r = cmd(st, "XRANGE fg:q:n2 - +");
	assert_int_equal(r->type, REDIS_REPLY_ARRAY);
	assert_int_equal(r->elements, 3);
	const char *mode[] = {"r", "l", "r"}, *id[] = {"id='f1'", "id='f2'", "id='f3'"};
	for (size_t i = 0; i < 3; i++) {
		redisReply *kv = r->element[i]->element[1];
		assert_int_equal(kv->elements, 6);
		assert_string_equal(kv->element[0]->str, "o");
		assert_string_equal(kv->element[1]->str, "n1");
		assert_string_equal(kv->element[3]->str, mode[i]);
		assert_non_null(strstr(kv->element[5]->str, id[i]));
	}
	freeReplyObject(r);
	struct numwait nw = {st, "forwarded_out", 3};
	assert_true(xfx_run_until(&st->fx, num_is, &nw, XFX_WAIT_MS));
	/* nothing reached alice (no error) */
	assert_int_equal(session_sm(st->alice)->n, 0);
}

/* What another node forwards here reaches the session, and the entry is
 * gone from the stream once it is settled. */
static void test_forward_in(void **state)
{
	struct cl_state *st = *state;
	freeReplyObject(cmd(st, "XADD fg:q:n1 * o n2 m r s %s",
			    "<message xmlns='jabber:server' from='bob@contoso.test/b' "
			    "to='alice@contoso.test/a' type='chat' id='in1'><body>hello from n2"
			    "</body></message>"));
	/* garbage from another process is dropped with a warning */
	freeReplyObject(cmd(st, "XADD fg:q:n1 * o n2 m r s %s", "<message"));
	assert_true(xfx_run_until(&st->fx, alice_has, st, XFX_WAIT_MS));
	/* alice's client has not acknowledged it (stream management): the
	 * entry stays until it does (here: the copy leaves her queue) */
	struct qwait q = {st, "fg:q:n1", 1};
	assert_true(xfx_run_until(&st->fx, xlen_is, &q, XFX_WAIT_MS));
	char *got = alice_got(st);
	assert_non_null(strstr(got, "hello from n2"));
	free(got);
	q.n = 0;
	assert_true(xfx_run_until(&st->fx, xlen_is, &q, XFX_WAIT_MS));
	assert_int_equal(status_num(st, "forwarded_in"), 1);
}

/* A node that stops heartbeating is forgotten: its sessions leave the
 * registry, their contacts get unavailable presence, and what was
 * forwarded to it and never settled is routed again (here: an iq for its
 * resource, now offline, bounces to alice). */
static void test_reaper(void **state)
{
	struct cl_state *st = *state;
	remote_session(st, "n2", "bob@contoso.test/b", 1);
	router_route(&st->fx.srv,
		     xmlstream_parse_one("<iq xmlns='jabber:server' from='alice@contoso.test/a' "
					 "to='bob@contoso.test/b' type='get' id='q1'>"
					 "<ping xmlns='urn:xmpp:ping'/></iq>"));
	struct qwait q = {st, "fg:q:n2", 1};
	assert_true(xfx_run_until(&st->fx, xlen_is, &q, XFX_WAIT_MS));
	/* n2 dies: its heartbeat key goes */
	freeReplyObject(cmd(st, "DEL fg:alive:n2"));
	struct known k = {st, "bob@contoso.test/b", NULL};
	assert_true(xfx_run_until(&st->fx, node_known, &k, 3 * XFX_WAIT_MS));
	q.n = 0;
	assert_true(xfx_run_until(&st->fx, xlen_is, &q, XFX_WAIT_MS));
	assert_int_equal(cmd_int(st, "SISMEMBER fg:nodes n2"), 0);
	assert_int_equal(cmd_int(st, "HEXISTS fg:sessions bob@contoso.test/b"), 0);
	bool unavailable = false, bounced = false;
	for (int i = 0; i < 4 && xfx_run_until(&st->fx, alice_has, st, XFX_WAIT_MS); i++) {
		char *got = alice_got(st);
		unavailable |= strstr(got, "from='bob@contoso.test/b'") &&
			       strstr(got, "type='unavailable'");
		bounced |= strstr(got, "id='q1'") && strstr(got, "type='error'") &&
			   strstr(got, "service-unavailable");
		free(got);
		if (unavailable && bounced)
			break;
	}
	assert_true(unavailable);
	assert_true(bounced);
	assert_int_equal(status_num(st, "rerouted"), 1);
}

/* Redis goes away: the node says so, refuses what needs another node
 * with the reason, and when Redis is back registers its sessions again. */
static void test_redis_down_and_back(void **state)
{
	struct cl_state *st = *state;
	remote_session(st, "n3", "carol@contoso.test/c", 0);
	redis_kill(st);
	assert_true(xfx_run_until(&st->fx, link_down, st, XFX_WAIT_MS));
	router_route(&st->fx.srv,
		     xmlstream_parse_one("<message xmlns='jabber:server' "
					 "from='alice@contoso.test/a' to='carol@contoso.test/c' "
					 "type='chat' id='d1'><body>while down</body></message>"));
	assert_true(xfx_run_until(&st->fx, alice_has, st, XFX_WAIT_MS));
	char *got = alice_got(st);
	assert_non_null(strstr(got, "type='error'"));
	assert_non_null(strstr(got, "service-unavailable"));
	assert_non_null(
		strstr(got, "the cluster link is down: carol@contoso.test is on another node"));
	free(got);
	assert_int_equal(status_num(st, "bounced_link_down"), 1);
	json_t *j = cluster_status(&st->fx.srv);
	assert_true(json_integer_value(json_object_get(j, "redis_down_since_ms")) > 0);
	json_decref(j);

	/* An empty Redis comes back: the node writes itself in again. */
	redis_start(st);
	assert_true(xfx_run_until(&st->fx, link_up, st, 3 * XFX_WAIT_MS));
	struct hwait w = {st, "fg:sessions", "alice@contoso.test/a", "n1 5 1"};
	assert_true(xfx_run_until(&st->fx, hget_is, &w, XFX_WAIT_MS));
	/* and reads its stream again */
	freeReplyObject(cmd(st, "XADD fg:q:n1 * o n3 m r s %s",
			    "<message xmlns='jabber:server' from='carol@contoso.test/c' "
			    "to='alice@contoso.test/a' type='chat' id='back1'><body>after"
			    "</body></message>"));
	assert_true(xfx_run_until(&st->fx, alice_has, st, 3 * XFX_WAIT_MS));
	got = alice_got(st);
	assert_non_null(strstr(got, "id='back1'"));
	free(got);
}

struct s2swait {
	struct cl_state *st;
	const struct partner *p;
	unsigned want;
};

static bool s2s_is(void *arg)
{
	struct s2swait *w = arg;
	return w->st->fx.srv.cluster_s2s(&w->st->fx.srv, w->p) == w->want;
}

static bool failures_seen(void *arg)
{
	struct cl_state *st = arg;
	json_t *f = cluster_failures(&st->fx.srv);
	bool ok = json_array_size(f) == 1;
	json_decref(f);
	return ok;
}

/* Each node says how many s2s streams it holds per partner; the others
 * add them to theirs for the connection limits, and show each other's
 * failing routes. */
static void test_s2s_counts_and_failures(void **state)
{
	struct cl_state *st = *state;
	xfx_partner(&st->fx, "fabrikam.test", NEG_OPTIONAL, NEG_OPTIONAL, true, NULL);
	struct hwait w = {st, "fg:s2s:n1", "fabrikam.test", "0"};
	assert_true(xfx_run_until(&st->fx, hget_is, &w, 3 * XFX_WAIT_MS));
	w.field = "*";
	assert_true(hget_is(&w));
	remote_session(st, "n2", "bob@contoso.test/b", 1);
	freeReplyObject(cmd(st, "HSET fg:s2s:n2 fabrikam.test 3 * 4"));
	freeReplyObject(cmd(st, "SET fg:failures:n2 %s",
			    "[{\"direction\":\"route\",\"remote\":\"fabrikam.test\","
			    "\"last_failure\":{\"state\":\"failing\"}}]"));
	struct s2swait sw = {st, policy_lookup(st->fx.live.partners, "fabrikam.test"), 3};
	assert_true(xfx_run_until(&st->fx, s2s_is, &sw, 3 * XFX_WAIT_MS));
	sw.p = NULL;
	sw.want = 4;
	assert_true(s2s_is(&sw));
	assert_true(xfx_run_until(&st->fx, failures_seen, st, 3 * XFX_WAIT_MS));
	json_t *f = cluster_failures(&st->fx.srv);
	assert_string_equal(json_string_value(json_object_get(json_array_get(f, 0), "node")), "n2");
	json_decref(f);
}

/* The user's own resources on other nodes see its presence (RFC 6121
 * §4.2.2): a copy for each goes to its node, to be routed there. */
static void test_own_resources_elsewhere(void **state)
{
	struct cl_state *st = *state;
	remote_session(st, "n2", "alice@contoso.test/b", 0);
	presence_from_client(&st->fx.srv, st->alice,
			     xmlstream_parse_one("<presence xmlns='jabber:server' "
						 "from='alice@contoso.test/a'><show>away</show>"
						 "</presence>"));
	struct qwait q = {st, "fg:q:n2", 1};
	assert_true(xfx_run_until(&st->fx, xlen_is, &q, XFX_WAIT_MS));
	redisReply *r = cmd(st, "XRANGE fg:q:n2 - +");
	assert_int_equal(r->elements, 1);
	const char *xml = r->element[0]->element[1]->element[5]->str;
	assert_non_null(strstr(xml, "to='alice@contoso.test/b'"));
	assert_non_null(strstr(xml, "from='alice@contoso.test/a'"));
	assert_non_null(strstr(xml, "<show>away</show>"));
	freeReplyObject(r);
}

int main(void)
{
	/* as serve.c: a write to a Redis that went away is an error, not
	 * the end of the process */
	signal(SIGPIPE, SIG_IGN);
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_registry_and_heartbeat, setup, teardown),
		cmocka_unit_test_setup_teardown(test_forward_out, setup, teardown),
		cmocka_unit_test_setup_teardown(test_forward_in, setup, teardown),
		cmocka_unit_test_setup_teardown(test_reaper, setup, teardown),
		cmocka_unit_test_setup_teardown(test_redis_down_and_back, setup, teardown),
		cmocka_unit_test_setup_teardown(test_s2s_counts_and_failures, setup, teardown),
		cmocka_unit_test_setup_teardown(test_own_resources_elsewhere, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}

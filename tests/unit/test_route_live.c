/* Routes without a daemon (xmpp_fixture.h), over loopback in a network
 * namespace of their own: a partner whose proxy_fqdn is a closed port on
 * 127.0.0.1 (the failure on record, the retry delay and its doubling, the
 * queue while waiting, the bounce when the retry fails too, the reset, the
 * queue cap) and one whose proxy_fqdn is a socket the test listens on and
 * never answers (a stream exists until stream_establishment_timeout ends
 * it); and an inbound dialback request whose authoritative server is the
 * closed port. The retry test waits for the real 5 s retry delay: route.c
 * reads the wall clock. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "dialback.h"
#include "s2s_in.h"
#include "xml.h"
#include "xmpp_fixture.h"

#include <arpa/inet.h>
#include <jansson.h>

#define LOCAL	    "contoso.test"
#define DOWN	    "fabrikam.test"  /* proxy_fqdn: a closed port */
#define SILENT	    "northwind.test" /* proxy_fqdn: a socket that never answers */
#define SILENT_ADDR "127.0.0.2"

struct done_rec {
	int calls;
	bool ok;
	char report[4000];
};

struct bounce_rec {
	int n;
	char type[32], condition[64], text[700], id[64], to[128];
};

struct rstate {
	struct xfx fx;
	unsigned short closed_port, silent_port;
	int listen_fd;
	char down_reason[300]; /* the failure to connect, as route.c records it */
	struct bounce_rec bounce;
};

/* The bounce hook's record (srv.bounce has no user pointer). */
static struct rstate *g_st;

static void record_bounce(struct xmpp_server *srv, struct xml_node *st, const char *type,
			  const char *condition, const char *text)
{
	(void)srv;
	struct bounce_rec *b = &g_st->bounce;
	b->n++;
	snprintf(b->type, sizeof(b->type), "%s", type);
	snprintf(b->condition, sizeof(b->condition), "%s", condition);
	snprintf(b->text, sizeof(b->text), "%s", text);
	snprintf(b->id, sizeof(b->id), "%s", xml_attr(st, "id") ? xml_attr(st, "id") : "");
	snprintf(b->to, sizeof(b->to), "%s", xml_attr(st, "to") ? xml_attr(st, "to") : "");
	xml_free(&st);
}

static int tcp_socket(const char *addr, unsigned short *port)
{
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
	struct sockaddr_in sin = {.sin_family = AF_INET};
	socklen_t len = sizeof(sin);
	if (fd < 0 || inet_pton(AF_INET, addr, &sin.sin_addr) != 1 ||
	    bind(fd, (struct sockaddr *)&sin, sizeof(sin)) != 0 ||
	    getsockname(fd, (struct sockaddr *)&sin, &len) != 0) {
		if (fd >= 0)
			close(fd);
		return -1;
	}
	*port = ntohs(sin.sin_port);
	return fd;
}

static int setup(void **state)
{
	struct rstate *st = calloc(1, sizeof(*st));
	char proxy[64];
	if (!st)
		return -1;
	g_st = st;
	xfx_init(&st->fx);
	xfx_use_dns(&st->fx);
	st->fx.srv.bounce = record_bounce;

	/* A port nobody listens on: bound once, then let go. */
	int fd = tcp_socket("127.0.0.1", &st->closed_port);
	if (fd < 0)
		return -1;
	close(fd);
	snprintf(proxy, sizeof(proxy), "127.0.0.1:%u", st->closed_port);
	xfx_partner(&st->fx, DOWN, NEG_NOT_SUPPORTED, NEG_NOT_SUPPORTED, true, proxy);
	snprintf(st->down_reason, sizeof(st->down_reason),
		 "cannot connect to " DOWN ": connect failed: Connection refused");

	/* One that accepts (the kernel does) and answers nothing. */
	st->listen_fd = tcp_socket(SILENT_ADDR, &st->silent_port);
	if (st->listen_fd < 0 || listen(st->listen_fd, 4) != 0)
		return -1;
	snprintf(proxy, sizeof(proxy), SILENT_ADDR ":%u", st->silent_port);
	xfx_partner(&st->fx, SILENT, NEG_NOT_SUPPORTED, NEG_NOT_SUPPORTED, true, proxy);
	*state = st;
	return 0;
}

static int teardown(void **state)
{
	struct rstate *st = *state;
	xfx_free(&st->fx);
	if (st->listen_fd >= 0)
		close(st->listen_fd);
	free(st);
	g_st = NULL;
	return 0;
}

static void on_done(void *ud, bool ok, const char *report)
{
	struct done_rec *d = ud;
	d->calls++;
	d->ok = ok;
	snprintf(d->report, sizeof(d->report), "%s", report);
}

static struct xml_node *message(const char *to, const char *id)
{
	struct xml_node *m = xml_new(XML_NS_SERVER, "message");
	assert_non_null(m);
	xml_set_attr(m, NULL, "from", "alice@" LOCAL "/balcony");
	xml_set_attr(m, NULL, "to", to);
	xml_set_attr(m, NULL, "id", id);
	struct xml_node *b = xml_add_child(m, XML_NS_SERVER, "body");
	assert_non_null(b);
	xml_add_text(b, "hello", 5);
	return m;
}

static bool done_called(void *arg)
{
	return ((struct done_rec *)arg)->calls > 0;
}

static bool bounced(void *arg)
{
	return ((struct rstate *)arg)->bounce.n > 0;
}

static struct route *route(struct rstate *st, const char *remote)
{
	struct route *r = route_find(&st->fx.srv, LOCAL, remote);
	assert_non_null(r);
	return r;
}

/* The first attempt to DOWN: refused, reported to the caller with every
 * step, and on record with a 5 s retry delay. */
static void fail_once(struct rstate *st, struct done_rec *d)
{
	time_t t0 = time(NULL);
	assert_int_equal(
		route_send(&st->fx.srv, LOCAL, DOWN, message("bob@" DOWN, "m1"), on_done, d),
		FG_OK);
	/* Under way: DNS (an IP literal, answered from the loop) first. */
	assert_int_equal(d->calls, 0);
	assert_true(route_has_stream(route(st, DOWN)));
	assert_int_equal(route_queued(route(st, DOWN)), 1);
	assert_true(xfx_run_until(&st->fx, done_called, d, XFX_WAIT_MS));
	assert_int_equal(d->calls, 1);
	assert_false(d->ok);
	char want[1200];
	snprintf(want, sizeof(want),
		 "partner " DOWN " allows TCP Dialback\n"
		 "DNS: 127.0.0.1 [127.0.0.1]:%u\n"
		 "[127.0.0.1]:%u: connect failed: Connection refused\n"
		 "failed: %s\n",
		 st->closed_port, st->closed_port, st->down_reason);
	assert_string_equal(d->report, want);

	struct route *r = route(st, DOWN);
	const struct route_failure *f = route_last_failure(r);
	assert_string_equal(f->reason, st->down_reason);
	assert_int_equal(f->attempts, 1);
	assert_int_equal(f->delay, ROUTE_BACKOFF_FIRST_S);
	assert_true(f->at >= t0 && f->at <= time(NULL));
	assert_int_equal(f->next_retry, f->at + ROUTE_BACKOFF_FIRST_S);
	assert_false(route_has_stream(r));
	assert_int_equal(route_queued(r), 0);
	assert_int_equal(routes_stream_count(&st->fx.srv, NULL), 0);
}

static json_t *status_rows(struct rstate *st)
{
	json_t *rows = json_array();
	assert_non_null(rows);
	routes_status(&st->fx.srv, rows);
	return rows;
}

static void test_connect_failure_on_record(void **state)
{
	struct rstate *st = *state;
	struct done_rec d = {0};
	fail_once(st, &d);

	/* `fedgate status`: a row for the route, waiting to retry. */
	json_t *rows = status_rows(st);
	assert_int_equal(json_array_size(rows), 1);
	json_t *row = json_array_get(rows, 0);
	assert_string_equal(json_string_value(json_object_get(row, "direction")), "route");
	assert_string_equal(json_string_value(json_object_get(row, "local")), LOCAL);
	assert_string_equal(json_string_value(json_object_get(row, "remote")), DOWN);
	assert_string_equal(json_string_value(json_object_get(row, "state")), "retry-wait");
	assert_string_equal(json_string_value(json_object_get(row, "last_error")), st->down_reason);
	assert_int_equal(json_integer_value(json_object_get(row, "queued")), 0);
	json_t *lf = json_object_get(row, "last_failure");
	assert_non_null(lf);
	assert_string_equal(json_string_value(json_object_get(lf, "reason")), st->down_reason);
	assert_int_equal(json_integer_value(json_object_get(lf, "attempts")), 1);
	json_int_t retry_in = json_integer_value(json_object_get(lf, "retry_in"));
	assert_true(retry_in >= 1 && retry_in <= ROUTE_BACKOFF_FIRST_S);
	json_decref(rows);
}

/* During the delay a caller that wants the outcome is answered at once
 * with the failure on record; no stream is started. */
static void test_send_during_backoff_answered_at_once(void **state)
{
	struct rstate *st = *state;
	struct done_rec d1 = {0}, d2 = {0};
	fail_once(st, &d1);

	assert_int_equal(
		route_send(&st->fx.srv, LOCAL, DOWN, message("bob@" DOWN, "m2"), on_done, &d2),
		FG_OK);
	assert_int_equal(d2.calls, 1);
	assert_false(d2.ok);
	/* "failed: fabrikam.test failed 0s ago (REASON); next attempt in 5s" */
	char reason[400], want[900];
	long ago = -1, wait = -1;
	assert_int_equal(sscanf(d2.report,
				"failed: " DOWN " failed %lds ago (%399[^)]); next attempt in %lds",
				&ago, reason, &wait),
			 3);
	assert_true(ago >= 0 && ago <= 1);
	assert_true(wait >= ROUTE_BACKOFF_FIRST_S - 1 && wait <= ROUTE_BACKOFF_FIRST_S);
	snprintf(want, sizeof(want),
		 "failed: " DOWN " failed %lds ago (%s); next attempt in %lds\n", ago,
		 st->down_reason, wait);
	assert_string_equal(d2.report, want);

	struct route *r = route(st, DOWN);
	assert_false(route_has_stream(r));
	assert_int_equal(route_queued(r), 0);
	assert_int_equal(route_last_failure(r)->attempts, 1);
}

/* A stanza nobody waits for stays queued during the delay, and goes with
 * the retry; that attempt fails too, so it bounces (remote-server-not-
 * found, RFC 6120 §8.3.3.15) and the delay doubles. */
static void test_queued_stanza_retried_then_bounced(void **state)
{
	struct rstate *st = *state;
	struct done_rec d = {0};
	fail_once(st, &d);
	const struct route_failure first = *route_last_failure(route(st, DOWN));

	assert_int_equal(
		route_send(&st->fx.srv, LOCAL, DOWN, message("bob@" DOWN, "queued-1"), NULL, NULL),
		FG_OK);
	struct route *r = route(st, DOWN);
	assert_int_equal(route_queued(r), 1);
	assert_false(route_has_stream(r));
	assert_int_equal(routes_stream_count(&st->fx.srv, NULL), 0);
	assert_int_equal(st->bounce.n, 0);

	/* The retry comes after the delay, not before. */
	assert_true(xfx_run_until(&st->fx, bounced, st, (ROUTE_BACKOFF_FIRST_S + 5) * 1000));
	assert_int_equal(st->bounce.n, 1);
	assert_string_equal(st->bounce.id, "queued-1");
	assert_string_equal(st->bounce.to, "bob@" DOWN);
	assert_string_equal(st->bounce.type, "cancel");
	assert_string_equal(st->bounce.condition, "remote-server-not-found");
	assert_string_equal(st->bounce.text, st->down_reason);

	const struct route_failure *f = route_last_failure(r);
	assert_int_equal(f->attempts, 2);
	assert_int_equal(f->delay, 2 * ROUTE_BACKOFF_FIRST_S);
	assert_int_equal(f->next_retry, f->at + 2 * ROUTE_BACKOFF_FIRST_S);
	assert_true(f->at >= first.next_retry);
	assert_string_equal(f->reason, st->down_reason);
	assert_int_equal(route_queued(r), 0);
	assert_false(route_has_stream(r));
	assert_int_equal(d.calls, 1); /* the first caller heard once */
}

/* A changed partner record clears the delay and the failure: the next
 * stanza tries at once, and a new failure starts the delay from 5 s. */
static void test_reset_clears_failure(void **state)
{
	struct rstate *st = *state;
	struct done_rec d1 = {0}, d2 = {0};
	fail_once(st, &d1);

	routes_reset(&st->fx.srv, DOWN);
	struct route *r = route(st, DOWN);
	const struct route_failure *f = route_last_failure(r);
	assert_int_equal(f->at, 0);
	assert_int_equal(f->attempts, 0);
	assert_int_equal(f->delay, 0);
	assert_int_equal(f->next_retry, 0);
	assert_string_equal(f->reason, "");
	json_t *rows = status_rows(st);
	assert_int_equal(json_array_size(rows), 0);
	json_decref(rows);

	/* Tried at once again, and on record afresh. */
	fail_once(st, &d2);
	assert_int_equal(d2.calls, 1);
}

/* What waits for one route is bounded. */
static void test_queue_cap(void **state)
{
	struct rstate *st = *state;
	struct done_rec d = {0};
	fail_once(st, &d);
	for (int i = 0; i < ROUTE_QUEUE_MAX; i++) {
		char id[32];
		snprintf(id, sizeof(id), "q%d", i);
		assert_int_equal(
			route_send(&st->fx.srv, LOCAL, DOWN, message("bob@" DOWN, id), NULL, NULL),
			FG_OK);
	}
	struct route *r = route(st, DOWN);
	assert_int_equal(route_queued(r), ROUTE_QUEUE_MAX);
	assert_int_equal(st->bounce.n, 0);
	/* One more is not freed unseen (issue 11): its sender gets
	 * resource-constraint at once, the queue stays as it was. */
	assert_int_equal(
		route_send(&st->fx.srv, LOCAL, DOWN, message("bob@" DOWN, "one-more"), NULL, NULL),
		FG_OK);
	assert_int_equal(route_queued(r), ROUTE_QUEUE_MAX);
	assert_false(route_has_stream(r));
	assert_int_equal(st->bounce.n, 1);
	assert_string_equal(st->bounce.id, "one-more");
	assert_string_equal(st->bounce.type, "wait");
	assert_string_equal(st->bounce.condition, "resource-constraint");
	assert_non_null(strstr(st->bounce.text, "the queue to " DOWN " is full (1000 stanzas"));
}

/* The same bound while a stream is under way (stanzas wait for it to be
 * authenticated); the router tells a caller that asked. */
static void test_queue_cap_while_connecting(void **state)
{
	struct rstate *st = *state;
	for (int i = 0; i < ROUTE_QUEUE_MAX; i++) {
		char id[32];
		snprintf(id, sizeof(id), "q%d", i);
		assert_int_equal(route_send(&st->fx.srv, LOCAL, SILENT,
					    message("carol@" SILENT, id), NULL, NULL),
				 FG_OK);
	}
	struct route *r = route(st, SILENT);
	assert_true(route_has_stream(r));
	assert_int_equal(route_queued(r), ROUTE_QUEUE_MAX);
	struct done_rec full = {0};
	router_to_partner(&st->fx.srv, message("carol@" SILENT, "via-router"), on_done, &full);
	assert_int_equal(full.calls, 1);
	assert_false(full.ok);
	assert_non_null(strstr(full.report, "the queue to " SILENT " is full"));
	assert_int_equal(route_queued(r), ROUTE_QUEUE_MAX);
	assert_int_equal(routes_stream_count(&st->fx.srv, NULL), 1);
	assert_int_equal(st->bounce.n, 0);
}

/* Accepts the route's connection on the test's listening socket. */
struct accepted {
	struct rstate *st;
	int fd;
	char in[4096];
	size_t len;
	bool eof;
};

static bool got_bytes(void *arg)
{
	struct accepted *a = arg;
	if (a->fd < 0) {
		a->fd = accept4(a->st->listen_fd, NULL, NULL, SOCK_NONBLOCK);
		if (a->fd < 0)
			return false;
	}
	ssize_t n;
	while ((n = read(a->fd, a->in + a->len, sizeof(a->in) - a->len - 1)) > 0) {
		a->len += (size_t)n;
		a->in[a->len] = '\0';
	}
	if (n == 0)
		a->eof = true;
	return strstr(a->in, "version='1.0'>") != NULL;
}

static bool got_eof(void *arg)
{
	struct accepted *a = arg;
	got_bytes(a);
	return a->eof;
}

/* A server that takes the connection and never answers: the route has a
 * stream (it counts against the limits) until stream_establishment_timeout
 * fails it; then the stanza's sender hears why. */
static void test_stream_until_establishment_timeout(void **state)
{
	struct rstate *st = *state;
	st->fx.live.gw.stream_establishment_timeout = 1;
	struct done_rec d = {0};
	struct accepted a = {.st = st, .fd = -1};
	assert_int_equal(
		route_send(&st->fx.srv, LOCAL, SILENT, message("carol@" SILENT, "s1"), on_done, &d),
		FG_OK);
	assert_true(xfx_run_until(&st->fx, got_bytes, &a, XFX_WAIT_MS));
	/* Our stream header, and then we wait for theirs. */
	assert_string_equal(a.in, "<?xml version='1.0'?><stream:stream xmlns='jabber:server' "
				  "xmlns:stream='http://etherx.jabber.org/streams' "
				  "xmlns:db='jabber:server:dialback' from='" LOCAL "' to='" SILENT
				  "' version='1.0'>");
	struct route *r = route(st, SILENT);
	assert_true(route_has_stream(r));
	assert_int_equal(route_queued(r), 1);
	assert_int_equal(routes_stream_count(&st->fx.srv, NULL), 1);
	assert_int_equal(
		routes_stream_count(&st->fx.srv, policy_lookup(st->fx.live.partners, SILENT)), 1);
	assert_int_equal(
		routes_stream_count(&st->fx.srv, policy_lookup(st->fx.live.partners, DOWN)), 0);
	assert_int_equal(d.calls, 0);
	json_t *rows = status_rows(st);
	assert_int_equal(json_array_size(rows), 1);
	json_t *row = json_array_get(rows, 0);
	assert_string_equal(json_string_value(json_object_get(row, "direction")), "out");
	assert_string_equal(json_string_value(json_object_get(row, "remote")), SILENT);
	assert_string_equal(json_string_value(json_object_get(row, "state")), "wait-header");
	assert_int_equal(json_integer_value(json_object_get(row, "queued")), 1);
	assert_null(json_object_get(row, "last_failure"));
	json_decref(rows);

	assert_true(xfx_run_until(&st->fx, done_called, &d, XFX_WAIT_MS));
	assert_false(d.ok);
	char want[600];
	snprintf(want, sizeof(want),
		 "partner " SILENT " allows TCP Dialback\n"
		 "DNS: " SILENT_ADDR " [" SILENT_ADDR "]:%u\n"
		 "connected to " SILENT_ADDR " [" SILENT_ADDR "]:%u\n"
		 "failed: no authenticated stream to " SILENT
		 " within 1 seconds (stream_establishment_timeout)\n",
		 st->silent_port, st->silent_port);
	assert_string_equal(d.report, want);
	assert_false(route_has_stream(r));
	assert_int_equal(routes_stream_count(&st->fx.srv, NULL), 0);
	assert_int_equal(route_queued(r), 0);
	const struct route_failure *f = route_last_failure(r);
	assert_int_equal(f->attempts, 1);
	assert_string_equal(f->reason, "no authenticated stream to " SILENT
				       " within 1 seconds (stream_establishment_timeout)");

	/* Our side closed the stream: its end, then the connection. */
	assert_true(xfx_run_until(&st->fx, got_eof, &a, XFX_WAIT_MS));
	const char *end = "</stream:stream>";
	assert_true(a.len > strlen(end));
	assert_string_equal(a.in + a.len - strlen(end), end);
	close(a.fd);
}

/* The receiving role of dialback (XEP-0220 §2.1.2) on an inbound stream:
 * the partner's authoritative server is DOWN's closed port, so the key
 * cannot be verified; the peer gets a dialback error, the stream stays
 * unauthenticated, and the route records the failure. */
static void test_dialback_with_authoritative_server_down(void **state)
{
	struct rstate *st = *state;
	struct xfx_peer *p = xfx_connect(&st->fx, &s2s_in_role);
	xfx_send_str(p, "<?xml version='1.0'?><stream:stream xmlns='jabber:server' "
			"xmlns:stream='http://etherx.jabber.org/streams' "
			"xmlns:db='jabber:server:dialback' from='" DOWN "' to='" LOCAL
			"' version='1.0'><db:result from='" DOWN "' to='" LOCAL
			"'>b4835385f37fe2895af6c196b59097b16862406db80559900d96bf6fa7d23df3"
			"</db:result>");
	const char *want = "<db:result from='" LOCAL "' to='" DOWN
			   "' type='error'><error type='cancel'><remote-server-not-found "
			   "xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/></error></db:result>";
	assert_true(xfx_wait_for(p, want));
	const char *tail = strstr(p->out, "</stream:features>");
	assert_non_null(tail);
	assert_string_equal(tail + strlen("</stream:features>"), want);
	assert_non_null(xfx_stream(p));
	assert_int_equal(stream_state(p->s), STREAM_NEGOTIATING);
	const struct route_failure *f = route_last_failure(route(st, DOWN));
	assert_int_equal(f->attempts, 1);
	assert_string_equal(f->reason, st->down_reason);
	assert_int_equal(st->bounce.n, 0);
}

/* A stanza nobody waits for, to SILENT, which never answers: it bounces
 * with remote-server-timeout (type wait, RFC 6120 §8.3.3.16), not
 * remote-server-not-found, and text says which timer ran out. */
static void expect_timeout_bounce(struct rstate *st, const char *text)
{
	struct accepted a = {.st = st, .fd = -1};
	assert_int_equal(
		route_send(&st->fx.srv, LOCAL, SILENT, message("carol@" SILENT, "t1"), NULL, NULL),
		FG_OK);
	assert_true(xfx_run_until(&st->fx, got_bytes, &a, XFX_WAIT_MS));
	assert_true(xfx_run_until(&st->fx, bounced, st, XFX_WAIT_MS));
	assert_int_equal(st->bounce.n, 1);
	assert_string_equal(st->bounce.id, "t1");
	assert_string_equal(st->bounce.type, "wait");
	assert_string_equal(st->bounce.condition, "remote-server-timeout");
	assert_string_equal(st->bounce.text, text);
	/* Our side closes: the loop frees the stream before teardown. */
	assert_true(xfx_run_until(&st->fx, got_eof, &a, XFX_WAIT_MS));
	close(a.fd);
}

static void test_establishment_timeout_bounces_timeout(void **state)
{
	struct rstate *st = *state;
	st->fx.live.gw.stream_establishment_timeout = 1;
	expect_timeout_bounce(st, "no authenticated stream to " SILENT
				  " within 1 seconds (stream_establishment_timeout)");
}

/* The per-step timer (here timeout_authentication while waiting for the
 * peer's stream header) is a timeout too. */
static void test_step_timeout_bounces_timeout(void **state)
{
	struct rstate *st = *state;
	st->fx.conf->timeout_authentication = 1;
	expect_timeout_bounce(st, SILENT " did not answer in time (state wait-header)");
}

/* The receiving role of dialback whose authoritative server never answers:
 * the peer hears remote-server-timeout (XEP-0220 §2.4), not that the server
 * does not exist. */
static void test_dialback_with_authoritative_server_silent(void **state)
{
	struct rstate *st = *state;
	st->fx.live.gw.stream_establishment_timeout = 1;
	struct accepted a = {.st = st, .fd = -1};
	struct xfx_peer *p = xfx_connect(&st->fx, &s2s_in_role);
	xfx_send_str(p, "<?xml version='1.0'?><stream:stream xmlns='jabber:server' "
			"xmlns:stream='http://etherx.jabber.org/streams' "
			"xmlns:db='jabber:server:dialback' from='" SILENT "' to='" LOCAL
			"' version='1.0'><db:result from='" SILENT "' to='" LOCAL
			"'>b4835385f37fe2895af6c196b59097b16862406db80559900d96bf6fa7d23df3"
			"</db:result>");
	assert_true(xfx_run_until(&st->fx, got_bytes, &a, XFX_WAIT_MS));
	const char *want = "<db:result from='" LOCAL "' to='" SILENT
			   "' type='error'><error type='wait'><remote-server-timeout "
			   "xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/></error></db:result>";
	assert_true(xfx_wait_for(p, want));
	assert_int_equal(st->bounce.n, 0);
	/* Our side closes: the loop frees the stream before teardown. */
	assert_true(xfx_run_until(&st->fx, got_eof, &a, XFX_WAIT_MS));
	close(a.fd);
}

/* An outbound stream the peer ends with a stream error (ejabberd when it
 * wants TLS): its condition and text are the route's last failure, and we
 * only close our side -- no stream error of ours in reply. */
static void test_peer_stream_error_on_outbound(void **state)
{
	struct rstate *st = *state;
	struct done_rec d = {0};
	struct accepted a = {.st = st, .fd = -1};
	assert_int_equal(
		route_send(&st->fx.srv, LOCAL, SILENT, message("carol@" SILENT, "e1"), on_done, &d),
		FG_OK);
	assert_true(xfx_run_until(&st->fx, got_bytes, &a, XFX_WAIT_MS));
	const char *peer = "<?xml version='1.0'?><stream:stream xmlns='jabber:server' "
			   "xmlns:stream='http://etherx.jabber.org/streams' from='" SILENT
			   "' to='" LOCAL "' id='x1' version='1.0'>"
			   "<stream:error><policy-violation "
			   "xmlns='urn:ietf:params:xml:ns:xmpp-streams'/><text "
			   "xmlns='urn:ietf:params:xml:ns:xmpp-streams' xml:lang='en'>Use of "
			   "STARTTLS required</text></stream:error></stream:stream>";
	assert_int_equal(write(a.fd, peer, strlen(peer)), (ssize_t)strlen(peer));
	assert_true(xfx_run_until(&st->fx, done_called, &d, XFX_WAIT_MS));
	assert_false(d.ok);
	const char *why = SILENT " closed the stream; the peer said: <policy-violation/> 'Use of "
				 "STARTTLS required'";
	assert_string_equal(route_last_failure(route(st, SILENT))->reason, why);
	json_t *rows = status_rows(st);
	json_t *lf = json_object_get(json_array_get(rows, 0), "last_failure");
	assert_string_equal(json_string_value(json_object_get(lf, "reason")), why);
	json_decref(rows);
	assert_true(xfx_run_until(&st->fx, got_eof, &a, XFX_WAIT_MS));
	assert_null(strstr(a.in, "<stream:error"));
	const char *end = "</stream:stream>";
	assert_string_equal(a.in + a.len - strlen(end), end);
	close(a.fd);
}

/* The accepted connection has sent marker. */
struct accepted_marker {
	struct accepted *a;
	const char *marker;
};

static bool got_marker(void *arg)
{
	struct accepted_marker *m = arg;
	got_bytes(m->a);
	return strstr(m->a->in, m->marker) != NULL;
}

/* A failure record runs from the first failure until a stream comes up:
 * `partner retry` (routes_retry) forgets the retry delay but keeps the
 * record; the stream that authenticates marks it recovered, and status
 * still shows it, as recovered. */
static void test_failure_record_until_recovered(void **state)
{
	struct rstate *st = *state;
	struct done_rec d = {0};
	struct accepted a = {.st = st, .fd = -1};
	assert_int_equal(
		route_send(&st->fx.srv, LOCAL, SILENT, message("carol@" SILENT, "r1"), on_done, &d),
		FG_OK);
	assert_true(xfx_run_until(&st->fx, got_bytes, &a, XFX_WAIT_MS));
	const char *header = "<?xml version='1.0'?><stream:stream xmlns='jabber:server' "
			     "xmlns:stream='http://etherx.jabber.org/streams' "
			     "xmlns:db='jabber:server:dialback' from='" SILENT "' to='" LOCAL
			     "' id='x1' version='1.0'>";
	char peer[1000];
	snprintf(peer, sizeof(peer),
		 "%s<stream:error><host-unknown xmlns='urn:ietf:params:xml:ns:xmpp-streams'/>"
		 "</stream:error></stream:stream>",
		 header);
	assert_int_equal(write(a.fd, peer, strlen(peer)), (ssize_t)strlen(peer));
	assert_true(xfx_run_until(&st->fx, done_called, &d, XFX_WAIT_MS));
	assert_false(d.ok);
	struct route *r = route(st, SILENT);
	const struct route_failure *f = route_last_failure(r);
	assert_true(route_failing(r));
	assert_true(f->peer);
	assert_int_equal(f->attempts, 1);
	assert_int_equal(f->first, f->at);
	assert_int_equal(f->bounced, 1);
	assert_true(f->next_retry > 0);
	assert_true(xfx_run_until(&st->fx, got_eof, &a, XFX_WAIT_MS));
	close(a.fd);

	/* Nothing waits: the delay is forgotten, the record is kept. */
	assert_int_equal(routes_retry(&st->fx.srv, SILENT), 0);
	assert_int_equal(f->next_retry, 0);
	assert_true(route_failing(r));
	assert_int_equal(f->attempts, 1);

	/* The next stanza tries at once, and this time dialback works. */
	struct done_rec d2 = {0};
	struct accepted b = {.st = st, .fd = -1};
	assert_int_equal(route_send(&st->fx.srv, LOCAL, SILENT, message("carol@" SILENT, "r2"),
				    on_done, &d2),
			 FG_OK);
	assert_int_equal(d2.calls, 0); /* not answered with the last failure */
	assert_true(xfx_run_until(&st->fx, got_bytes, &b, XFX_WAIT_MS));
	snprintf(peer, sizeof(peer),
		 "%s<stream:features><dialback xmlns='urn:xmpp:features:dialback'/>"
		 "</stream:features>",
		 header);
	assert_int_equal(write(b.fd, peer, strlen(peer)), (ssize_t)strlen(peer));
	struct accepted_marker m = {&b, "</db:result>"};
	assert_true(xfx_run_until(&st->fx, got_marker, &m, XFX_WAIT_MS));
	const char *valid = "<db:result from='" SILENT "' to='" LOCAL "' type='valid'/>";
	assert_int_equal(write(b.fd, valid, strlen(valid)), (ssize_t)strlen(valid));
	assert_true(xfx_run_until(&st->fx, done_called, &d2, XFX_WAIT_MS));
	assert_true(d2.ok);
	assert_false(route_failing(r));
	assert_true(f->recovered >= f->at);
	assert_int_equal(f->attempts, 1);
	json_t *rows = status_rows(st);
	json_t *lf = json_object_get(json_array_get(rows, 0), "last_failure");
	assert_string_equal(json_string_value(json_object_get(lf, "state")), "recovered");
	assert_true(json_is_true(json_object_get(lf, "by_peer")));
	json_decref(rows);
	close(b.fd);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_connect_failure_on_record, setup, teardown),
		cmocka_unit_test_setup_teardown(test_send_during_backoff_answered_at_once, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_queued_stanza_retried_then_bounced, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_reset_clears_failure, setup, teardown),
		cmocka_unit_test_setup_teardown(test_queue_cap, setup, teardown),
		cmocka_unit_test_setup_teardown(test_queue_cap_while_connecting, setup, teardown),
		cmocka_unit_test_setup_teardown(test_stream_until_establishment_timeout, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_dialback_with_authoritative_server_down, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_establishment_timeout_bounces_timeout, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_step_timeout_bounces_timeout, setup, teardown),
		cmocka_unit_test_setup_teardown(test_dialback_with_authoritative_server_silent,
						setup, teardown),
		cmocka_unit_test_setup_teardown(test_peer_stream_error_on_outbound, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_failure_record_until_recovered, setup,
						teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}

/* Happy Eyeballs (net/happy.c) over real TCP on loopback, in a network
 * namespace of its own (tests/e2e/netns.sh), IPv4 and IPv6 (::1):
 * - an address that never answers (a listener whose accept queue is full
 *   drops further SYNs) does not hold up the next one: it starts after the
 *   attempt delay and wins, and the silent attempt is closed;
 * - a refused address starts the next one at once;
 * - every address failing ends in lost, with the last reason;
 * - a race cancelled calls nothing back, and leaves nothing behind (ASan);
 * - the winner's callbacks go to the owner's ops. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "conn.h"
#include "happy.h"

#include <arpa/inet.h>
#include <event2/event.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

struct addr {
	struct sockaddr_storage ss;
	socklen_t len;
};

struct race {
	struct event_base *base;
	struct addr addrs[4];
	char log[2000];
	int won, lost, owner_connected, owner_closed;
	size_t winner;
	struct conn *c;
	char lost_why[300];
};

static void note(struct race *r, const char *fmt, size_t i)
{
	size_t n = strlen(r->log);
	snprintf(r->log + n, sizeof(r->log) - n, fmt, i);
}

static void race_addr(void *ud, size_t i, const struct sockaddr **sa, socklen_t *salen)
{
	struct race *r = ud;
	*sa = (const struct sockaddr *)&r->addrs[i].ss;
	*salen = r->addrs[i].len;
}

static void race_started(void *ud, size_t i, struct conn *c)
{
	assert_non_null(c);
	note(ud, "start %zu;", i);
}

static void race_failed(void *ud, size_t i, const char *why)
{
	(void)why;
	note(ud, "fail %zu;", i);
}

static void race_won(void *ud, size_t i, struct conn *c)
{
	struct race *r = ud;
	note(r, "won %zu;", i);
	r->won++;
	r->winner = i;
	r->c = c;
	event_base_loopbreak(r->base);
}

static void race_lost(void *ud, const char *why)
{
	struct race *r = ud;
	r->lost++;
	snprintf(r->lost_why, sizeof(r->lost_why), "%s", why);
	event_base_loopbreak(r->base);
}

static const struct happy_ops hops = {race_addr, race_started, race_failed, race_won, race_lost};

static size_t o_data(void *ud, const char *d, size_t n)
{
	(void)ud;
	(void)d;
	return n;
}
static void o_tls(void *ud)
{
	(void)ud;
}
static void o_connected(void *ud)
{
	((struct race *)ud)->owner_connected++;
}
static void o_timer(void *ud)
{
	(void)ud;
}
static void o_closed(void *ud, const char *why)
{
	(void)why;
	((struct race *)ud)->owner_closed++;
}

static const struct conn_ops owner_ops = {o_data, o_tls, o_connected, o_timer, o_closed, NULL};

static struct addr make(int family, const char *ip, uint16_t port)
{
	struct addr a = {0};
	if (family == AF_INET) {
		struct sockaddr_in *s = (struct sockaddr_in *)&a.ss;
		s->sin_family = AF_INET;
		s->sin_port = htons(port);
		assert_int_equal(inet_pton(AF_INET, ip, &s->sin_addr), 1);
		a.len = sizeof(*s);
	} else {
		struct sockaddr_in6 *s = (struct sockaddr_in6 *)&a.ss;
		s->sin6_family = AF_INET6;
		s->sin6_port = htons(port);
		assert_int_equal(inet_pton(AF_INET6, ip, &s->sin6_addr), 1);
		a.len = sizeof(*s);
	}
	return a;
}

/* A listener on ip; *port gets its port. */
static int listener(int family, const char *ip, uint16_t *port, int backlog)
{
	int fd = socket(family, SOCK_STREAM, 0);
	assert_true(fd >= 0);
	struct addr a = make(family, ip, 0);
	assert_int_equal(bind(fd, (struct sockaddr *)&a.ss, a.len), 0);
	assert_int_equal(listen(fd, backlog), 0);
	assert_int_equal(getsockname(fd, (struct sockaddr *)&a.ss, &a.len), 0);
	*port = ntohs(family == AF_INET ? ((struct sockaddr_in *)&a.ss)->sin_port
					: ((struct sockaddr_in6 *)&a.ss)->sin6_port);
	return fd;
}

/* A listener that never answers a new connection: its accept queue (of
 * backlog 0: one) is filled by a connection nobody accepts, and Linux
 * drops further SYNs while it is full. *filler must be closed after. */
static int silent(int family, const char *ip, uint16_t *port, int *filler)
{
	int fd = listener(family, ip, port, 0);
	struct addr a = make(family, ip, *port);
	*filler = socket(family, SOCK_STREAM, 0);
	assert_int_equal(connect(*filler, (struct sockaddr *)&a.ss, a.len), 0);
	return fd;
}

static uint16_t closed_port(int family, const char *ip)
{
	uint16_t port;
	int fd = listener(family, ip, &port, 1);
	close(fd); /* nothing listens there now: connections are refused */
	return port;
}

static struct happy *start(struct race *r, size_t n, unsigned timeout)
{
	struct conn_limits lim = {.output_queue = 1 << 16, .input_buffer = 1 << 16};
	struct happy_params p = {.ctx_prefix = "test",
				 .limits = &lim,
				 .connect_timeout = timeout,
				 .owner_ops = &owner_ops,
				 .owner_ud = r};
	struct happy *h = happy_start(r->base, n, &p, &hops, r);
	assert_non_null(h);
	return h;
}

/* Lets closed losers report in, so nothing is left for LSan. */
static void settle(struct race *r)
{
	struct timeval tv = {0, 200 * 1000};
	event_base_loopexit(r->base, &tv);
	event_base_dispatch(r->base);
}

static void test_silent_address_does_not_hold_up_the_next(void **state)
{
	(void)state;
	struct race r = {.base = event_base_new()};
	uint16_t sp, gp;
	int filler, s6 = silent(AF_INET6, "::1", &sp, &filler);
	int good = listener(AF_INET, "127.0.0.1", &gp, 8);
	r.addrs[0] = make(AF_INET6, "::1", sp);
	r.addrs[1] = make(AF_INET, "127.0.0.1", gp);
	start(&r, 2, 30);
	event_base_dispatch(r.base);
	assert_int_equal(r.won, 1);
	assert_int_equal(r.winner, 1);
	/* The silent one was still trying when the second started and won:
	 * no failure of 0 before it. */
	assert_string_equal(r.log, "start 0;start 1;won 1;");
	/* The winner is the owner's now: its close reaches owner_ops. */
	assert_int_equal(r.owner_connected, 0);
	conn_close(r.c, "done");
	settle(&r);
	assert_int_equal(r.owner_closed, 1);
	close(filler);
	close(s6);
	close(good);
	event_base_free(r.base);
}

static void test_refused_address_starts_the_next_at_once(void **state)
{
	(void)state;
	struct race r = {.base = event_base_new()};
	uint16_t gp;
	int good = listener(AF_INET6, "::1", &gp, 8);
	r.addrs[0] = make(AF_INET, "127.0.0.1", closed_port(AF_INET, "127.0.0.1"));
	r.addrs[1] = make(AF_INET6, "::1", gp);
	/* An attempt delay longer than the test: only the failure can
	 * start the second. */
	struct conn_limits lim = {.output_queue = 1 << 16, .input_buffer = 1 << 16};
	struct happy_params p = {.ctx_prefix = "test",
				 .limits = &lim,
				 .connect_timeout = 30,
				 .attempt_delay_ms = 60 * 1000,
				 .owner_ops = &owner_ops,
				 .owner_ud = &r};
	assert_non_null(happy_start(r.base, 2, &p, &hops, &r));
	event_base_dispatch(r.base);
	assert_string_equal(r.log, "start 0;fail 0;start 1;won 1;");
	conn_close(r.c, "done");
	settle(&r);
	close(good);
	event_base_free(r.base);
}

static void test_all_failing_is_lost(void **state)
{
	(void)state;
	struct race r = {.base = event_base_new()};
	uint16_t sp;
	int filler, s4 = silent(AF_INET, "127.0.0.1", &sp, &filler);
	r.addrs[0] = make(AF_INET6, "::1", closed_port(AF_INET6, "::1"));
	r.addrs[1] = make(AF_INET, "127.0.0.1", sp);
	start(&r, 2, 1);
	event_base_dispatch(r.base);
	assert_int_equal(r.won, 0);
	assert_int_equal(r.lost, 1);
	assert_string_equal(r.log, "start 0;fail 0;start 1;fail 1;");
	/* The last failure: the silent one's timeout. */
	assert_string_equal(r.lost_why, "connect timed out after 1 s");
	close(filler);
	close(s4);
	event_base_free(r.base);
}

static void test_cancel_calls_nothing(void **state)
{
	(void)state;
	struct race r = {.base = event_base_new()};
	uint16_t sp;
	int filler, s4 = silent(AF_INET, "127.0.0.1", &sp, &filler);
	for (int i = 0; i < 3; i++)
		r.addrs[i] = make(AF_INET, "127.0.0.1", sp);
	struct happy *h = start(&r, 3, 30);
	struct timeval tv = {0, 600 * 1000};
	event_base_loopexit(r.base, &tv);
	event_base_dispatch(r.base);
	/* All three racing by now, none answered. */
	assert_string_equal(r.log, "start 0;start 1;start 2;");
	happy_cancel(&h);
	assert_null(h);
	settle(&r);
	assert_string_equal(r.log, "start 0;start 1;start 2;");
	assert_int_equal(r.won + r.lost + r.owner_closed, 0);
	happy_cancel(&h); /* NULL is fine */
	close(filler);
	close(s4);
	event_base_free(r.base);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_silent_address_does_not_hold_up_the_next),
		cmocka_unit_test(test_refused_address_starts_the_next_at_once),
		cmocka_unit_test(test_all_failing_is_lost),
		cmocka_unit_test(test_cancel_calls_nothing),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}

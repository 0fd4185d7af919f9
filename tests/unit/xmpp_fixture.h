/* The XMPP layer without a daemon, for the role and route tests: a struct
 * xmpp_server put together the way app/serve.c does it (an event loop, the
 * configuration, the live partners, settings and accounts, the router's
 * hooks, the session-end observer), and streams accepted on one end of a
 * socket pair whose other end the test writes recorded peer bytes into and
 * reads our answers from. A real conn.c connection over a socket pair is
 * the fake connection: no network.
 *
 * The configuration is conf_defaults_for(): every default of the key table
 * conf_load() applies to a file, without writing one; the fields a test
 * needs are then changed in the struct, e.g. [c2s] require_tls = false so
 * a client can authenticate in the clear.
 *
 * There is no store (srv.store NULL): the stanzas these tests send reach
 * neither offline storage nor roster writes, and both return early without
 * a store. No DNS either, unless a test asks (xfx_use_dns).
 *
 * Include after cmocka.h. Everything is static inline so that a test may
 * use only part of it. */
#ifndef FG_TEST_XMPP_FIXTURE_H
#define FG_TEST_XMPP_FIXTURE_H

#include "blocking.h"
#include "c2s.h"
#include "caps.h"
#include "conf.h"
#include "conn.h"
#include "dns.h"
#include "fg.h"
#include "live.h"
#include "pep.h"
#include "log.h"
#include "policy.h"
#include "presence.h"
#include "refused.h"
#include "roster.h"
#include "route.h"
#include "session.h"
#include "router.h"
#include "sasl.h"
#include "stream.h"
#include "strmap.h"
#include "jid_cache.h"
#include "throttle.h"
#include "users.h"
#include "xmpp.h"

#include <errno.h>
#include <event2/event.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define XFX_DOMAIN "contoso.test"
/* The gateway's dialback secret (live.gw.dialback_secret). */
#define XFX_SECRET "fixture-dialback-secret-3f9a"
/* How long a wait for our output may take before the test fails. Only a
 * bound for a broken build: nothing below sleeps. */
#define XFX_WAIT_MS 5000
#define XFX_PEERS   8

struct xfx;

/* The test's end of one inbound stream. */
struct xfx_peer {
	struct xfx *fx;
	int fd;		  /* ours, non-blocking */
	int server_fd;	  /* the stream's (its connection owns and closes it) */
	unsigned conn;	  /* the stream's connection id (stream_by_conn_id) */
	struct stream *s; /* valid while stream_by_conn_id finds it */
	size_t sent;	  /* bytes we wrote to the stream */
	char *out;	  /* everything the stream sent us, NUL-terminated */
	size_t len, cap;
	bool eof; /* the stream closed the connection */
};

struct xfx {
	struct event_base *base;
	struct fg_conf *conf;
	struct live live;
	struct xmpp_server srv;
	struct event *tick; /* bounds one blocking loop pass */
	char dir[64];	    /* a temporary folder (resolv.conf), "" when none */
	struct xfx_peer *peers[XFX_PEERS];
	unsigned npeers;
};

static inline void xfx_tick_cb(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	(void)arg;
}

/* Everything but DNS; asserts on failure. */
static inline void xfx_init(struct xfx *fx)
{
	memset(fx, 0, sizeof(*fx));
	/* FG_TEST_LOG=info (or debug) shows what the layer logs. */
	const char *lvl = getenv("FG_TEST_LOG");
	log_set_level(lvl && log_level_parse(lvl) >= 0 ? (enum log_level)log_level_parse(lvl)
						       : LOG_ERROR);
	assert_int_equal(sasl_global_init(), FG_OK);
	fx->base = event_base_new();
	assert_non_null(fx->base);
	/* Relative default paths (store, control socket) resolve under a
	 * folder that does not exist: nothing here opens them. */
	assert_int_equal(conf_defaults_for("/nonexistent-fedgate-test", XFX_DOMAIN, &fx->conf),
			 FG_OK);
	fx->conf->c2s_require_tls = 0;
	/* Failed logins answered at once; a test of the throttle's delays
	 * turns them on. */
	fx->conf->c2s_auth_delay_max = 0;

	fx->live.partners = policy_new();
	fx->live.users = accounts_new();
	assert_non_null(fx->live.partners);
	assert_non_null(fx->live.users);
	gateway_defaults(&fx->live.gw);
	fx->live.gw.dialback_secret = strdup(XFX_SECRET);
	assert_non_null(fx->live.gw.dialback_secret);
	fx->live.conf = fx->conf;

	/* As serve_main wires it. */
	fx->srv.base = fx->base;
	fx->srv.conf = fx->conf;
	fx->srv.live = &fx->live;
	fx->srv.route = router_route;
	fx->srv.bounce = router_bounce;
	assert_int_equal(presence_start(&fx->srv), FG_OK);

	fx->tick = evtimer_new(fx->base, xfx_tick_cb, NULL);
	assert_non_null(fx->tick);
}

/* A resolver for s2s-out (routes): a resolv.conf of the test's own naming
 * 127.0.0.1, where nothing answers; partners reached through an IP literal
 * in proxy_fqdn never ask it. */
static inline void xfx_use_dns(struct xfx *fx)
{
	char path[128], err[256];
	snprintf(fx->dir, sizeof(fx->dir), "/tmp/fg-test-xmpp.XXXXXX");
	assert_non_null(mkdtemp(fx->dir));
	snprintf(path, sizeof(path), "%s/resolv.conf", fx->dir);
	FILE *f = fopen(path, "w");
	assert_non_null(f);
	fputs("nameserver 127.0.0.1\n", f);
	assert_int_equal(fclose(f), 0);
	fx->srv.dns = dns_new(fx->base, path, err, sizeof(err));
	if (!fx->srv.dns)
		fail_msg("dns_new: %s", err);
}

/* A partner as `fedgate partner new` would save it (policy_check first). */
static inline void xfx_partner(struct xfx *fx, const char *domain, enum negotiation tls,
			       enum negotiation sasl, bool dialback, const char *proxy_fqdn)
{
	struct partner *p = partner_new(domain);
	assert_non_null(p);
	p->tls = tls;
	p->sasl = sasl;
	p->dialback = dialback;
	if (proxy_fqdn) {
		p->proxy_fqdn = strdup(proxy_fqdn);
		assert_non_null(p->proxy_fqdn);
	}
	struct domain_list local = {fx->conf->domains.v, fx->conf->domains.n};
	struct policy_verdict v;
	if (policy_check(fx->live.partners, p, true, &local, &v) != FG_OK) {
		partner_free(&p);
		fail_msg("partner %s refused: %s", domain, v.nerrors ? v.errors[0] : "?");
	}
	assert_int_equal(policy_put(fx->live.partners, p), FG_OK);
}

/* A local account with SCRAM credentials made from password, with
 * [users] scram_iterations at its default, 4096, the least it allows. */
static inline const struct account *xfx_account(struct xfx *fx, const char *jid,
						const char *password)
{
	struct account *a = account_new(jid);
	assert_non_null(a);
	assert_int_equal(
		sasl_creds_from_password(password, fx->conf->users_scram_iterations, &a->creds),
		FG_OK);
	assert_int_equal(accounts_put(fx->live.users, a), FG_OK);
	return accounts_get(fx->live.users, jid);
}

/* The stream behind p, or NULL once it is closing or gone. */
static inline struct stream *xfx_stream(const struct xfx_peer *p)
{
	return stream_by_conn_id(&p->fx->srv, p->conn);
}

/* A new inbound stream with role on a socket pair, added to the server's
 * list as serve.c's accept_cb does. Every stream comes "from" 127.0.0.1
 * (what c2s counts login failures by); the port only tells them apart in
 * the log. */
static inline struct xfx_peer *xfx_connect(struct xfx *fx, const struct stream_role *role)
{
	int sv[2];
	assert_true(fx->npeers < XFX_PEERS);
	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
	assert_int_equal(fcntl(sv[1], F_SETFL, O_NONBLOCK), 0);
	struct xfx_peer *p = calloc(1, sizeof(*p));
	assert_non_null(p);
	p->fx = fx;
	p->fd = sv[1];
	p->server_fd = sv[0];
	p->cap = 4096;
	p->out = calloc(1, p->cap);
	assert_non_null(p->out);
	fx->peers[fx->npeers++] = p;
	struct sockaddr_in sin = {.sin_family = AF_INET,
				  .sin_port = htons((uint16_t)(40000 + fx->npeers)),
				  .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	p->s = stream_accept(&fx->srv, role, sv[0], (const struct sockaddr *)&sin, sizeof(sin));
	assert_non_null(p->s);
	xmpp_stream_added(&fx->srv, p->s);
	p->conn = conn_id(stream_conn(p->s));
	return p;
}

/* Takes whatever the stream sent, without blocking. */
static inline void xfx_read(struct xfx_peer *p)
{
	for (;;) {
		if (p->cap - p->len < 2048) {
			p->cap *= 2;
			p->out = realloc(p->out, p->cap);
			assert_non_null(p->out);
		}
		ssize_t n = read(p->fd, p->out + p->len, p->cap - p->len - 1);
		if (n > 0) {
			p->len += (size_t)n;
			p->out[p->len] = '\0';
			continue;
		}
		if (n == 0)
			p->eof = true;
		else
			assert_true(errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR);
		return;
	}
}

static inline long long xfx_now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* One pass of the loop that waits at most 10 ms for something to happen. */
static inline void xfx_turn(struct xfx *fx)
{
	struct timeval tv = {0, 10 * 1000};
	evtimer_add(fx->tick, &tv);
	event_base_loop(fx->base, EVLOOP_ONCE);
}

/* Runs the loop until cond(arg) or ms passed; returns cond(arg). */
static inline bool xfx_run_until(struct xfx *fx, bool (*cond)(void *arg), void *arg, int ms)
{
	long long end = xfx_now_ms() + ms;
	while (!cond(arg)) {
		if (xfx_now_ms() > end)
			return false;
		xfx_turn(fx);
	}
	return true;
}

/* Writes data to the stream, then runs the loop until the stream's
 * connection has read all of it (nothing left in the socket) and handed
 * it to the stream core, so that the next write arrives as a chunk of its
 * own; a stream that closes meanwhile stops reading, and the wait ends
 * there. */
static inline void xfx_send(struct xfx_peer *p, const char *data, size_t len)
{
	long long end = xfx_now_ms() + XFX_WAIT_MS;
	size_t off = 0;
	while (off < len) {
		ssize_t n = send(p->fd, data + off, len - off, MSG_NOSIGNAL);
		if (n > 0) {
			off += (size_t)n;
			p->sent += (size_t)n;
			continue;
		}
		if (n < 0 && errno == EPIPE)
			return; /* gone: what it said is in p->out */
		assert_true(n < 0 && (errno == EAGAIN || errno == EINTR));
		assert_true(xfx_now_ms() < end);
		xfx_turn(p->fx);
		xfx_read(p);
	}
	for (;;) {
		int queued = 0;
		if (!xfx_stream(p))
			break;
		assert_int_equal(ioctl(p->server_fd, FIONREAD, &queued), 0);
		if (queued == 0)
			break;
		assert_true(xfx_now_ms() < end);
		event_base_loop(p->fx->base, EVLOOP_NONBLOCK);
	}
	/* The stream core took every byte so far (a stream that is closing
	 * reads no more). */
	if (xfx_stream(p))
		assert_int_equal(conn_stats(stream_conn(p->s))->bytes_in, p->sent);
	/* Answers that need no further input go out now. */
	event_base_loop(p->fx->base, EVLOOP_NONBLOCK);
	xfx_read(p);
}

static inline void xfx_send_str(struct xfx_peer *p, const char *s)
{
	xfx_send(p, s, strlen(s));
}

struct xfx_wait {
	struct xfx_peer *p;
	const char *marker;
};

static inline bool xfx_has_marker(void *arg)
{
	struct xfx_wait *w = arg;
	xfx_read(w->p);
	return strstr(w->p->out, w->marker) != NULL || w->p->eof;
}

/* Runs the loop until our output holds marker (true) or the stream closed
 * or the wait timed out without it (false). */
static inline bool xfx_wait_for(struct xfx_peer *p, const char *marker)
{
	struct xfx_wait w = {p, marker};
	xfx_run_until(p->fx, xfx_has_marker, &w, XFX_WAIT_MS);
	return strstr(p->out, marker) != NULL;
}

static inline bool xfx_is_gone(void *arg)
{
	struct xfx_peer *p = arg;
	xfx_read(p);
	if (!p->eof)
		return false;
	/* Closed on our side too: the stream left the server's list. */
	for (struct stream *s = p->fx->srv.streams; s; s = stream_next(s))
		if (s == p->s)
			return false;
	return true;
}

/* Runs the loop until the stream closed the connection and is gone. */
static inline bool xfx_wait_closed(struct xfx_peer *p)
{
	return xfx_run_until(p->fx, xfx_is_gone, p, XFX_WAIT_MS);
}

static inline void xfx_peer_free(struct xfx_peer *p)
{
	if (!p)
		return;
	struct xfx *fx = p->fx;
	for (unsigned i = 0; i < fx->npeers; i++)
		if (fx->peers[i] == p)
			fx->peers[i] = fx->peers[--fx->npeers];
	if (p->fd >= 0)
		close(p->fd);
	free(p->out);
	free(p);
}

/* Frees everything, streams still open included, in serve_main's order. */
static inline void xfx_free(struct xfx *fx)
{
	fx->srv.stopping = true;
	presence_stop(&fx->srv);
	routes_free_all(&fx->srv);
	dns_free(&fx->srv.dns);
	xmpp_free_streams(&fx->srv);
	session_drop_hibernating(&fx->srv);
	c2s_stop(&fx->srv);
	while (fx->npeers)
		xfx_peer_free(fx->peers[0]);
	if (fx->tick)
		event_free(fx->tick);
	if (fx->base)
		event_base_free(fx->base);
	roster_free_all(&fx->srv);
	blocking_free_all(&fx->srv);
	pep_free_all(&fx->srv);
	caps_free_all(&fx->srv);
	refused_free_all(&fx->srv);
	strmap_free(&fx->srv.sessions, NULL);
	strmap_free(&fx->srv.sm_ids, NULL);
	jid_cache_free(&fx->srv.jids);
	throttle_free(&fx->srv.auth_throttle);
	policy_free(&fx->live.partners);
	gateway_clear(&fx->live.gw);
	accounts_free(&fx->live.users);
	conf_free(&fx->conf);
	sasl_global_done();
	if (fx->dir[0]) {
		char path[128];
		snprintf(path, sizeof(path), "%s/resolv.conf", fx->dir);
		unlink(path);
		rmdir(fx->dir);
	}
	memset(fx, 0, sizeof(*fx));
}

#endif

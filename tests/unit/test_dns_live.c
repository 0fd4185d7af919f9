/* dns against a real DNS server: the test starts dnsmasq on 127.0.0.1 at a
 * free high port (loopback only, no traffic leaves the machine), serving
 * the records below, and drives the real libunbound resolver through
 * dns_new_fwd on a real libevent loop. Nothing is skipped: without
 * dnsmasq the test fails (scripts/deps.sh installs dnsmasq-base). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "dns.h"
#include "fg.h"
#include "log.h"

#include <arpa/inet.h>
#include <errno.h>
#include <event2/event.h>
#include <fcntl.h>
#include <grp.h>
#include <netinet/in.h>
#include <pwd.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static const char records[] =
	"local=/test/\n"
	"local-ttl=300\n"
	"srv-host=_xmpp-server._tcp.fabrikam.test,xmpp1.fabrikam.test,5269,10,0\n"
	"srv-host=_xmpp-server._tcp.fabrikam.test,xmpp2.fabrikam.test,5270,20,0\n"
	"host-record=xmpp1.fabrikam.test,127.0.0.2\n"
	"host-record=xmpp2.fabrikam.test,127.0.0.3,fd00::3\n"
	"host-record=nosrv.test,127.0.0.4\n"
	"srv-host=_xmpp-server._tcp.dot.test\n"
	"host-record=dot.test,127.0.0.5\n"
	"srv-host=_xmpp-server._tcp.proxied.test,wrong.proxied.test,5269,0,0\n"
	"host-record=wrong.proxied.test,127.0.0.9\n"
	"host-record=gw.proxied.test,127.0.0.8\n"
	"cname=alias.proxied.test,gw.proxied.test\n"
	"srv-host=_xmpp-server._tcp.dangling.test,gone1.dangling.test,5269,0,0\n"
	"srv-host=_xmpp-server._tcp.dangling.test,gone2.dangling.test,5269,1,0\n"
	/* XEP-0368: both kinds, one priority apart and one shared */
	"srv-host=_xmpp-server._tcp.mixed.test,plain.mixed.test,5269,10,0\n"
	"srv-host=_xmpp-server._tcp.mixed.test,low.mixed.test,5269,5,0\n"
	"srv-host=_xmpps-server._tcp.mixed.test,tls.mixed.test,5270,10,0\n"
	"host-record=plain.mixed.test,127.0.0.21\n"
	"host-record=low.mixed.test,127.0.0.22\n"
	"host-record=tls.mixed.test,127.0.0.23\n"
	/* only Direct TLS */
	"srv-host=_xmpps-server._tcp.tlsonly.test,tls.tlsonly.test,5270,0,0\n"
	"host-record=tls.tlsonly.test,127.0.0.24\n"
	"host-record=tlsonly.test,127.0.0.25\n"
	/* "." for Direct TLS, nothing else: no A fallback (XEP-0368) */
	"srv-host=_xmpps-server._tcp.nodirect.test\n"
	"host-record=nodirect.test,127.0.0.26\n";

static struct {
	char dir[64];
	char log[128];
	char fwd[64];
	pid_t pid;
} srv;

static const char *dnsmasq_path(void)
{
	const char *env = getenv("FG_DNSMASQ");
	if (env != NULL && *env)
		return env;
	/* /usr/sbin is not on every user's PATH. */
	return access("/usr/sbin/dnsmasq", X_OK) == 0 ? "/usr/sbin/dnsmasq" : "dnsmasq";
}

static int free_port(void)
{
	struct sockaddr_in sa = {.sin_family = AF_INET};
	socklen_t len = sizeof(sa);
	int fd = socket(AF_INET, SOCK_DGRAM, 0), port;

	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	assert_true(fd >= 0);
	assert_int_equal(bind(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	assert_int_equal(getsockname(fd, (struct sockaddr *)&sa, &len), 0);
	port = ntohs(sa.sin_port);
	close(fd);
	return port;
}

static char *slurp(const char *path)
{
	FILE *f = fopen(path, "r");
	char *buf = calloc(1, 1 << 20);
	assert_non_null(buf);
	if (f != NULL) {
		size_t n = fread(buf, 1, (1 << 20) - 1, f);
		buf[n] = '\0';
		fclose(f);
	}
	return buf;
}

static int log_has(const char *needle)
{
	char *text = slurp(srv.log);
	int found = strstr(text, needle) != NULL;
	free(text);
	return found;
}

/* Ready once its TCP socket accepts (it opens UDP and TCP together). */
static int wait_ready(int port)
{
	for (int i = 0; i < 500; i++) {
		struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
		int fd = socket(AF_INET, SOCK_STREAM, 0), rc;
		sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
		rc = connect(fd, (struct sockaddr *)&sa, sizeof(sa));
		close(fd);
		if (rc == 0)
			return 1;
		if (waitpid(srv.pid, NULL, WNOHANG) == srv.pid) {
			srv.pid = 0;
			return 0;
		}
		usleep(10000);
	}
	return 0;
}

static int start_server(void)
{
	const char *tmp = getenv("TMPDIR");
	struct passwd *pw = getpwuid(geteuid());
	struct group *gr = getgrgid(getegid());
	char conf[128], out[128];

	snprintf(srv.dir, sizeof(srv.dir), "%s/fgdns-XXXXXX", tmp && *tmp ? tmp : "/tmp");
	if (mkdtemp(srv.dir) == NULL || pw == NULL || gr == NULL)
		return -1;
	snprintf(conf, sizeof(conf), "%s/dnsmasq.conf", srv.dir);
	snprintf(out, sizeof(out), "%s/dnsmasq.out", srv.dir);
	snprintf(srv.log, sizeof(srv.log), "%s/dnsmasq.log", srv.dir);
	/* The port is free when picked but could be taken before dnsmasq
	 * binds it; a few tries make that race harmless. */
	for (int attempt = 0; attempt < 5; attempt++) {
		int port = free_port();
		FILE *f = fopen(conf, "w");
		if (f == NULL)
			return -1;
		/* user/group: stay who we are, so the log in our 0700 folder
		 * stays writable (as root dnsmasq would become nobody). */
		fprintf(f,
			"port=%d\nlisten-address=127.0.0.1\nbind-interfaces\nno-resolv\nno-hosts\n"
			"keep-in-foreground\nlog-queries\nlog-facility=%s\npid-file=\nuser=%s\n"
			"group=%s\n%s",
			port, srv.log, pw->pw_name, gr->gr_name, records);
		fclose(f);
		srv.pid = fork();
		if (srv.pid < 0)
			return -1;
		if (srv.pid == 0) {
			char arg[160];
			int fd = open(out, O_WRONLY | O_CREAT | O_APPEND, 0600);
			if (fd >= 0) {
				dup2(fd, 1);
				dup2(fd, 2);
			}
			snprintf(arg, sizeof(arg), "--conf-file=%s", conf);
			execlp(dnsmasq_path(), "dnsmasq", arg, (char *)NULL);
			fprintf(stderr, "cannot run %s: %s\n", dnsmasq_path(), strerror(errno));
			_exit(127);
		}
		if (wait_ready(port)) {
			snprintf(srv.fwd, sizeof(srv.fwd), "127.0.0.1@%d", port);
			return 0;
		}
		if (srv.pid > 0) {
			kill(srv.pid, SIGKILL);
			waitpid(srv.pid, NULL, 0);
			srv.pid = 0;
		}
	}
	char *text = slurp(out);
	fprintf(stderr, "dnsmasq did not start (install dnsmasq-base, see scripts/deps.sh):\n%s\n",
		text);
	free(text);
	return -1;
}

static void remove_dir(void)
{
	const char *names[] = {"dnsmasq.conf", "dnsmasq.out", "dnsmasq.log", "resolv.conf"};
	for (size_t i = 0; i < FG_ARRAY_LEN(names); i++) {
		char p[160];
		snprintf(p, sizeof(p), "%s/%s", srv.dir, names[i]);
		unlink(p);
	}
	rmdir(srv.dir);
}

static int group_setup(void **state)
{
	(void)state;
	/* Debug level runs the formatting of every lookup's log line. */
	log_set_level(LOG_DEBUG);
	if (start_server() != 0) {
		remove_dir();
		return -1;
	}
	return 0;
}

static int group_teardown(void **state)
{
	(void)state;
	if (srv.pid > 0) {
		kill(srv.pid, SIGTERM);
		waitpid(srv.pid, NULL, 0);
		srv.pid = 0;
	}
	remove_dir();
	return 0;
}

/* ---- one resolver per test, so libunbound's cache cannot mix them ---- */

struct fixture {
	struct event_base *base;
	struct dns *d;
};

static int setup(void **state)
{
	struct fixture *fx = calloc(1, sizeof(*fx));
	char err[256] = "";
	assert_non_null(fx);
	fx->base = event_base_new();
	assert_non_null(fx->base);
	fx->d = dns_new_fwd(fx->base, srv.fwd, err, sizeof(err));
	if (fx->d == NULL)
		fail_msg("dns_new_fwd: %s", err);
	*state = fx;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *fx = *state;
	dns_free(&fx->d);
	assert_null(fx->d);
	event_base_free(fx->base);
	free(fx);
	return 0;
}

struct got {
	int calls;
	int in_call; /* set while dns_resolve_server runs */
	int called_inside;
	enum dns_via via;
	uint32_t ttl;
	size_t n;
	char host[8][DNS_NAME_MAX + 1];
	char addr[8][INET6_ADDRSTRLEN];
	uint16_t port[8];
	int family[8];
	bool direct[8];
	size_t n_direct;
	char err[1024];
	struct dns_query *q;
	/* for the cancel-from-a-callback test */
	struct dns_query **cancel_other;
};

static void on_result(void *ud, const struct dns_result *res, const char *err)
{
	struct got *g = ud;
	g->calls++;
	if (g->in_call)
		g->called_inside = 1;
	assert_true((res == NULL) != (err == NULL));
	/* The handle is gone before the callback runs. */
	assert_null(g->q);
	if (err != NULL) {
		snprintf(g->err, sizeof(g->err), "%s", err);
	} else {
		g->via = res->via;
		g->ttl = res->ttl;
		g->n = res->n;
		g->n_direct = res->n_direct;
		assert_true(res->n >= 1);
		for (size_t i = 0; i < res->n && i < 8; i++) {
			const struct dns_target *t = &res->targets[i];
			snprintf(g->host[i], sizeof(g->host[i]), "%s", t->host);
			snprintf(g->addr[i], sizeof(g->addr[i]), "%s", t->addr_text);
			g->port[i] = t->port;
			g->family[i] = t->addr.ss_family;
			g->direct[i] = t->direct_tls;
		}
	}
	if (g->cancel_other != NULL)
		dns_cancel(g->cancel_other);
}

static void on_timeout(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	*(int *)arg = 1;
}

/* Runs the loop until every got in gs has its answer, or 15 s pass. */
static void wait_all(struct fixture *fx, struct got **gs, size_t n)
{
	int timed_out = 0;
	struct event *t = evtimer_new(fx->base, on_timeout, &timed_out);
	struct timeval tv = {15, 0};
	evtimer_add(t, &tv);
	for (;;) {
		size_t done = 0;
		for (size_t i = 0; i < n; i++)
			done += gs[i]->calls > 0;
		if (done == n || timed_out)
			break;
		event_base_loop(fx->base, EVLOOP_ONCE);
	}
	event_free(t);
	assert_false(timed_out);
}

static void start(struct fixture *fx, struct got *g, const char *domain, const char *proxy)
{
	memset(g, 0, sizeof(*g));
	g->in_call = 1;
	assert_int_equal(dns_resolve_server(fx->d, domain, proxy, on_result, g, &g->q), FG_OK);
	g->in_call = 0;
	assert_non_null(g->q);
}

static void resolve(struct fixture *fx, struct got *g, const char *domain, const char *proxy)
{
	start(fx, g, domain, proxy);
	wait_all(fx, &g, 1);
	assert_int_equal(g->calls, 1);
	assert_false(g->called_inside);
}

/* Spins the loop for a while, for things that must NOT happen. */
static void spin(struct fixture *fx, int ms)
{
	struct timeval tv = {0, ms * 1000};
	event_base_loopexit(fx->base, &tv);
	event_base_dispatch(fx->base);
}

static void test_srv_order(void **state)
{
	struct fixture *fx = *state;
	struct got g;
	resolve(fx, &g, "fabrikam.test", NULL);
	assert_string_equal(g.err, "");
	assert_int_equal(g.via, DNS_VIA_SRV);
	assert_int_equal(g.n, 3);
	/* Priority 10 first; then xmpp2, IPv6 before IPv4. */
	assert_string_equal(g.host[0], "xmpp1.fabrikam.test");
	assert_string_equal(g.addr[0], "127.0.0.2");
	assert_int_equal(g.port[0], 5269);
	assert_string_equal(g.host[1], "xmpp2.fabrikam.test");
	assert_string_equal(g.addr[1], "fd00::3");
	assert_int_equal(g.family[1], AF_INET6);
	assert_int_equal(g.port[1], 5270);
	assert_string_equal(g.addr[2], "127.0.0.3");
	assert_int_equal(g.port[2], 5270);
	/* dnsmasq serves its records with local-ttl=300. */
	assert_in_range(g.ttl, 1, 300);
	assert_true(log_has("query[SRV] _xmpp-server._tcp.fabrikam.test"));
}

static void test_xmpps_merged_in_xep0368_order(void **state)
{
	struct fixture *fx = *state;
	struct got g;
	resolve(fx, &g, "mixed.test", NULL);
	assert_string_equal(g.err, "");
	assert_int_equal(g.via, DNS_VIA_SRV);
	assert_int_equal(g.n, 3);
	assert_int_equal(g.n_direct, 1);
	/* priority 5 first whatever its kind, then at 10 Direct TLS first */
	assert_string_equal(g.host[0], "low.mixed.test");
	assert_false(g.direct[0]);
	assert_string_equal(g.host[1], "tls.mixed.test");
	assert_int_equal(g.port[1], 5270);
	assert_true(g.direct[1]);
	assert_string_equal(g.host[2], "plain.mixed.test");
	assert_false(g.direct[2]);
	/* Both asked, in the same stage. */
	assert_true(log_has("query[SRV] _xmpp-server._tcp.mixed.test"));
	assert_true(log_has("query[SRV] _xmpps-server._tcp.mixed.test"));

	resolve(fx, &g, "tlsonly.test", NULL);
	assert_string_equal(g.err, "");
	assert_int_equal(g.via, DNS_VIA_SRV);
	assert_int_equal(g.n, 1);
	assert_string_equal(g.addr[0], "127.0.0.24");
	assert_true(g.direct[0]);

	resolve(fx, &g, "nodirect.test", NULL);
	assert_non_null(strstr(g.err, "offers no Direct TLS"));
	assert_int_equal(g.n, 0);

	/* A partner with proxy_fqdn asks no SRV at all. */
	resolve(fx, &g, "mixed.test", "127.0.0.30:5999");
	assert_int_equal(g.via, DNS_VIA_PROXY);
	assert_int_equal(g.n, 1);
	assert_false(g.direct[0]);
}

static void test_fallback_without_srv(void **state)
{
	struct fixture *fx = *state;
	struct got g;
	resolve(fx, &g, "nosrv.test", NULL);
	assert_string_equal(g.err, "");
	assert_int_equal(g.via, DNS_VIA_FALLBACK);
	assert_int_equal(g.n, 1);
	assert_string_equal(g.host[0], "nosrv.test");
	assert_string_equal(g.addr[0], "127.0.0.4");
	assert_int_equal(g.port[0], 5269);
}

static void test_dot_means_no_service(void **state)
{
	struct fixture *fx = *state;
	struct got g;
	/* dot.test has an A record: "." must not fall back to it. */
	resolve(fx, &g, "dot.test", NULL);
	assert_string_equal(g.err,
			    "domain dot.test says it offers no XMPP server service (SRV target .)");
}

static void test_nxdomain_text(void **state)
{
	struct fixture *fx = *state;
	struct got g;
	char want[256];
	resolve(fx, &g, "nosuch.test", NULL);
	snprintf(want, sizeof(want), "no DNS records for nosuch.test: NXDOMAIN from %s", srv.fwd);
	assert_string_equal(g.err, want);
}

static void test_srv_targets_without_address(void **state)
{
	struct fixture *fx = *state;
	struct got g;
	char want[512];
	resolve(fx, &g, "dangling.test", NULL);
	snprintf(want, sizeof(want),
		 "no SRV target of dangling.test has an address: gone1.dangling.test: "
		 "NXDOMAIN; gone2.dangling.test: NXDOMAIN (from %s)",
		 srv.fwd);
	assert_string_equal(g.err, want);
}

static void test_server_failure_does_not_fall_back(void **state)
{
	struct fixture *fx = *state;
	struct got g;
	char want[256];
	/* Outside local=/test/ and with no upstream, dnsmasq refuses;
	 * libunbound reports that as SERVFAIL. */
	resolve(fx, &g, "fabrikam.example", NULL);
	snprintf(want, sizeof(want),
		 "DNS lookup of _xmpp-server._tcp.fabrikam.example SRV failed: SERVFAIL from %s",
		 srv.fwd);
	assert_string_equal(g.err, want);
}

static void test_proxy_overrides_srv(void **state)
{
	struct fixture *fx = *state;
	struct got g;
	resolve(fx, &g, "proxied.test", "gw.proxied.test:5999");
	assert_string_equal(g.err, "");
	assert_int_equal(g.via, DNS_VIA_PROXY);
	assert_int_equal(g.n, 1);
	assert_string_equal(g.host[0], "gw.proxied.test");
	assert_string_equal(g.addr[0], "127.0.0.8");
	assert_int_equal(g.port[0], 5999);

	/* A marker query after ours: once dnsmasq has logged it, it has
	 * logged everything we sent before, and there was no SRV query. */
	resolve(fx, &g, "unqueried.test", "alias.proxied.test");
	assert_string_equal(g.addr[0], "127.0.0.8"); /* through the CNAME */
	assert_int_equal(g.port[0], 5269);
	for (int i = 0; i < 200 && !log_has("alias.proxied.test"); i++)
		usleep(10000);
	assert_true(log_has("query[A] gw.proxied.test"));
	assert_true(log_has("query[A] alias.proxied.test"));
	assert_false(log_has("_xmpp-server._tcp.proxied.test"));
	assert_false(log_has("_xmpp-server._tcp.unqueried.test"));
}

static void test_proxy_literals_and_errors(void **state)
{
	struct fixture *fx = *state;
	struct got g;
	char want[256];

	resolve(fx, &g, "fabrikam.test", "[::1]:5270");
	assert_int_equal(g.via, DNS_VIA_PROXY);
	assert_int_equal(g.n, 1);
	assert_string_equal(g.addr[0], "::1");
	assert_int_equal(g.port[0], 5270);
	assert_int_equal(g.ttl, 0);

	resolve(fx, &g, "fabrikam.test", "192.0.2.10");
	assert_string_equal(g.addr[0], "192.0.2.10");
	assert_int_equal(g.port[0], 5269);

	resolve(fx, &g, "fabrikam.test", "gw.proxied.test:99999");
	assert_string_equal(g.err, "proxy_fqdn \"gw.proxied.test:99999\" for fabrikam.test is "
				   "not host, host:port, an IP address or [IPv6]:port");

	resolve(fx, &g, "fabrikam.test", "nothere.test");
	snprintf(want, sizeof(want),
		 "proxy_fqdn host nothere.test for fabrikam.test has no address: NXDOMAIN from %s",
		 srv.fwd);
	assert_string_equal(g.err, want);

	/* libunbound answers "localhost" itself, inside ub_resolve_event;
	 * the callback must still come from the loop. */
	resolve(fx, &g, "fabrikam.test", "localhost:5300");
	assert_int_equal(g.via, DNS_VIA_PROXY);
	assert_int_equal(g.n, 2);
	assert_string_equal(g.addr[0], "::1");
	assert_string_equal(g.addr[1], "127.0.0.1");
	assert_int_equal(g.port[1], 5300);
}

static void test_domain_literal_and_bad_domain(void **state)
{
	struct fixture *fx = *state;
	struct got g;

	resolve(fx, &g, "[::1]", NULL);
	assert_int_equal(g.via, DNS_VIA_LITERAL);
	assert_string_equal(g.addr[0], "::1");
	assert_int_equal(g.port[0], 5269);
	resolve(fx, &g, "127.0.0.7", NULL);
	assert_int_equal(g.via, DNS_VIA_LITERAL);
	assert_string_equal(g.addr[0], "127.0.0.7");

	resolve(fx, &g, "bad domain.test", NULL);
	assert_string_equal(g.err, "cannot look up \"bad domain.test\": not a valid DNS name");
}

static void test_cancel(void **state)
{
	struct fixture *fx = *state;
	struct got a, b, c;

	/* Cancelled at once: never called, handle cleared. */
	start(fx, &a, "fabrikam.test", NULL);
	dns_cancel(&a.q);
	assert_null(a.q);
	dns_cancel(&a.q); /* harmless twice */
	dns_cancel(NULL);

	/* Started together; b's callback cancels c, whose answers are in
	 * flight or even complete but not yet delivered. */
	start(fx, &b, "fabrikam.test", NULL);
	start(fx, &c, "fabrikam.test", NULL);
	b.cancel_other = &c.q;
	struct got *gs[] = {&b};
	wait_all(fx, gs, 1);
	assert_int_equal(b.calls, 1);
	assert_int_equal(b.n, 3);
	assert_null(c.q);

	/* Let every late answer arrive; the cancelled ones stay silent. */
	spin(fx, 300);
	assert_int_equal(a.calls, 0);
	assert_int_equal(c.calls, 0);
}

static void test_free_with_pending(void **state)
{
	struct fixture *fx = *state;
	struct got a, b;

	start(fx, &a, "fabrikam.test", NULL);
	start(fx, &b, "nosrv.test", "localhost"); /* already answered, not delivered */
	dns_free(&fx->d);
	assert_null(a.q);
	assert_null(b.q);
	spin(fx, 200);
	assert_int_equal(a.calls, 0);
	assert_int_equal(b.calls, 0);
}

static void test_many_in_parallel(void **state)
{
	struct fixture *fx = *state;
	struct got g[6];
	const char *domains[] = {"fabrikam.test", "nosrv.test",	 "dot.test",
				 "fabrikam.test", "nosuch.test", "dangling.test"};
	struct got *gs[6];
	for (int i = 0; i < 6; i++) {
		start(fx, &g[i], domains[i], NULL);
		gs[i] = &g[i];
	}
	wait_all(fx, gs, 6);
	for (int i = 0; i < 6; i++) {
		assert_int_equal(g[i].calls, 1);
		assert_false(g[i].called_inside);
	}
	assert_int_equal(g[0].n, 3);
	assert_int_equal(g[3].n, 3);
	assert_string_equal(g[1].addr[0], "127.0.0.4");
	assert_string_not_equal(g[2].err, "");
	assert_string_not_equal(g[4].err, "");
	assert_string_not_equal(g[5].err, "");
}

static void test_new_from_resolv_conf(void **state)
{
	(void)state;
	struct event_base *base = event_base_new();
	char path[160], err[256] = "";
	struct dns *d;
	struct got g;
	struct fixture fx;

	snprintf(path, sizeof(path), "%s/missing.conf", srv.dir);
	assert_null(dns_new(base, path, err, sizeof(err)));
	assert_non_null(strstr(err, "cannot read nameservers from "));
	assert_non_null(strstr(err, path));

	assert_null(dns_new_fwd(base, "not an address", err, sizeof(err)));
	assert_non_null(strstr(err, "bad DNS forwarder \"not an address\""));

	/* A real file; only lookups that need no server are made, since
	 * resolv.conf cannot name our port. */
	snprintf(path, sizeof(path), "%s/resolv.conf", srv.dir);
	FILE *f = fopen(path, "w");
	assert_non_null(f);
	fputs("# test\nsearch example.test\nnameserver 127.0.0.1\n  nameserver\t::1 \n", f);
	fclose(f);
	d = dns_new(base, path, err, sizeof(err));
	if (d == NULL)
		fail_msg("dns_new: %s", err);
	fx.base = base;
	fx.d = d;
	resolve(&fx, &g, "fabrikam.test", "localhost");
	assert_int_equal(g.n, 2);
	assert_string_equal(g.addr[1], "127.0.0.1");
	dns_free(&d);
	dns_free(&d); /* NULL-safe */
	event_base_free(base);
}

/* ---- dns_lookup: one plain lookup, no policy ---- */

struct got_lookup {
	int calls;
	int in_call;
	int called_inside;
	struct dns_query *q;
	struct dns_answer ans;
	struct dns_srv srv[4];
};

static void on_lookup(void *ud, const struct dns_answer *ans, const struct dns_srv *recs)
{
	struct got_lookup *g = ud;
	g->calls++;
	if (g->in_call)
		g->called_inside = 1;
	assert_null(g->q);
	g->ans = *ans;
	for (size_t i = 0; recs != NULL && i < ans->n && i < 4; i++)
		g->srv[i] = recs[i];
}

static void lookup(struct fixture *fx, struct got_lookup *g, const char *name, enum dns_qtype type)
{
	int timed_out = 0;
	struct event *t = evtimer_new(fx->base, on_timeout, &timed_out);
	struct timeval tv = {15, 0};

	memset(g, 0, sizeof(*g));
	g->in_call = 1;
	assert_int_equal(dns_lookup(fx->d, name, type, on_lookup, g, &g->q), FG_OK);
	g->in_call = 0;
	assert_non_null(g->q);
	evtimer_add(t, &tv);
	while (g->calls == 0 && !timed_out)
		event_base_loop(fx->base, EVLOOP_ONCE);
	event_free(t);
	assert_false(timed_out);
	assert_int_equal(g->calls, 1);
	assert_false(g->called_inside);
}

static void test_lookup_records_as_served(void **state)
{
	struct fixture *fx = *state;
	struct got_lookup g;
	char text[INET6_ADDRSTRLEN];

	/* Both records, as served: no ordering, no address lookups. */
	lookup(fx, &g, "_xmpp-server._tcp.fabrikam.test", DNS_QTYPE_SRV);
	assert_int_equal(g.ans.st, DNS_ST_DATA);
	assert_int_equal(g.ans.n, 2);
	int first = g.srv[0].prio == 10 ? 0 : 1;
	assert_string_equal(g.srv[first].target, "xmpp1.fabrikam.test");
	assert_int_equal(g.srv[first].port, 5269);
	assert_string_equal(g.srv[1 - first].target, "xmpp2.fabrikam.test");
	assert_int_equal(g.srv[1 - first].prio, 20);
	assert_int_equal(g.srv[1 - first].port, 5270);

	lookup(fx, &g, "xmpp2.fabrikam.test", DNS_QTYPE_AAAA);
	assert_int_equal(g.ans.st, DNS_ST_DATA);
	assert_int_equal(g.ans.n, 1);
	assert_non_null(inet_ntop(AF_INET6, g.ans.addr[0], text, sizeof(text)));
	assert_string_equal(text, "fd00::3");
	lookup(fx, &g, "xmpp2.fabrikam.test", DNS_QTYPE_A);
	assert_int_equal(g.ans.n, 1);
	assert_non_null(inet_ntop(AF_INET, g.ans.addr[0], text, sizeof(text)));
	assert_string_equal(text, "127.0.0.3");

	/* No fallback: the missing SRV record is reported as such. */
	lookup(fx, &g, "_xmpp-server._tcp.nosrv.test", DNS_QTYPE_SRV);
	assert_int_equal(g.ans.st, DNS_ST_NXDOMAIN);
	lookup(fx, &g, "nosrv.test", DNS_QTYPE_AAAA);
	assert_int_equal(g.ans.st, DNS_ST_NODATA);

	/* "." is a record like any other here; the caller tells. */
	lookup(fx, &g, "_xmpp-server._tcp.dot.test", DNS_QTYPE_SRV);
	assert_int_equal(g.ans.st, DNS_ST_DATA);
	assert_true(dns_srv_no_service(g.srv, g.ans.n));

	/* A bad name is answered from the loop too. */
	lookup(fx, &g, "bad name.test", DNS_QTYPE_A);
	assert_int_equal(g.ans.st, DNS_ST_FAIL);
	assert_string_equal(g.ans.why, "not a valid DNS name");
	assert_int_equal(dns_lookup(fx->d, "x.test", (enum dns_qtype)15, on_lookup, &g, NULL),
			 FG_INVAL);
}

static void test_lookup_cancel_and_free(void **state)
{
	struct fixture *fx = *state;
	struct got_lookup a, b;

	memset(&a, 0, sizeof(a));
	memset(&b, 0, sizeof(b));
	assert_int_equal(dns_lookup(fx->d, "_xmpp-server._tcp.fabrikam.test", DNS_QTYPE_SRV,
				    on_lookup, &a, &a.q),
			 FG_OK);
	assert_int_equal(dns_lookup(fx->d, "xmpp1.fabrikam.test", DNS_QTYPE_A, on_lookup, &b, &b.q),
			 FG_OK);
	dns_cancel(&a.q);
	assert_null(a.q);
	dns_free(&fx->d);
	assert_null(b.q);
	spin(fx, 200);
	assert_int_equal(a.calls, 0);
	assert_int_equal(b.calls, 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_srv_order, setup, teardown),
		cmocka_unit_test_setup_teardown(test_xmpps_merged_in_xep0368_order, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_fallback_without_srv, setup, teardown),
		cmocka_unit_test_setup_teardown(test_dot_means_no_service, setup, teardown),
		cmocka_unit_test_setup_teardown(test_nxdomain_text, setup, teardown),
		cmocka_unit_test_setup_teardown(test_srv_targets_without_address, setup, teardown),
		cmocka_unit_test_setup_teardown(test_server_failure_does_not_fall_back, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_proxy_overrides_srv, setup, teardown),
		cmocka_unit_test_setup_teardown(test_proxy_literals_and_errors, setup, teardown),
		cmocka_unit_test_setup_teardown(test_domain_literal_and_bad_domain, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_cancel, setup, teardown),
		cmocka_unit_test_setup_teardown(test_free_with_pending, setup, teardown),
		cmocka_unit_test_setup_teardown(test_many_in_parallel, setup, teardown),
		cmocka_unit_test(test_new_from_resolv_conf),
		cmocka_unit_test_setup_teardown(test_lookup_records_as_served, setup, teardown),
		cmocka_unit_test_setup_teardown(test_lookup_cancel_and_free, setup, teardown),
	};
	return cmocka_run_group_tests(tests, group_setup, group_teardown);
}

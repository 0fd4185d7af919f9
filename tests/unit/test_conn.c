/* conn over a real socket pair and a real libevent loop: back-pressure,
 * the flush-then-close path, and the discard of plaintext at STARTTLS. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "conn.h"
#include <event2/event.h>
#include "fg.h"
#include "log.h"

#include <errno.h>
#include <stdbool.h>
#include <fcntl.h>
#include <signal.h>
#include <openssl/evp.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

struct owner {
	size_t received;
	int hold; /* leave what arrives in the buffer, unused */
	int closed;
	char reason[256];
};

static size_t on_data(void *ud, const char *data, size_t len)
{
	struct owner *o = ud;
	(void)data;
	if (o->hold)
		return 0;
	o->received += len;
	return len;
}

static void on_tls(void *ud)
{
	(void)ud;
}
static void on_timer(void *ud)
{
	(void)ud;
}

static void on_closed(void *ud, const char *reason)
{
	struct owner *o = ud;
	o->closed++;
	snprintf(o->reason, sizeof(o->reason), "%s", reason);
}

static const struct conn_ops ops = {
	.on_data = on_data, .on_tls = on_tls, .on_timer = on_timer, .on_closed = on_closed};

static void spin(struct event_base *base, int rounds)
{
	for (int i = 0; i < rounds; i++)
		event_base_loop(base, EVLOOP_NONBLOCK);
}

/* Reads whatever the peer end has, without blocking. */
static size_t drain_peer(int fd)
{
	char buf[65536];
	size_t total = 0;
	ssize_t n;
	while ((n = read(fd, buf, sizeof(buf))) > 0)
		total += (size_t)n;
	return total;
}

static struct conn *make(struct event_base *base, int *peer_fd, struct owner *o, size_t queue)
{
	int sv[2];
	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
	/* Small kernel buffers, so our own queue is what fills up. */
	int sz = 16384;
	setsockopt(sv[0], SOL_SOCKET, SO_SNDBUF, &sz, sizeof(sz));
	setsockopt(sv[1], SOL_SOCKET, SO_RCVBUF, &sz, sizeof(sz));
	fcntl(sv[1], F_SETFL, O_NONBLOCK);
	struct sockaddr_storage ss = {.ss_family = AF_UNIX};
	struct conn_limits lim = {.output_queue = queue, .input_buffer = 65536};
	struct conn *c = conn_new(base, sv[0], (struct sockaddr *)&ss, sizeof(sa_family_t), "test",
				  &lim, &ops, o);
	assert_non_null(c);
	*peer_fd = sv[1];
	return c;
}

static void test_back_pressure(void **state)
{
	(void)state;
	struct event_base *base = event_base_new();
	struct owner o = {0};
	int peer;
	struct conn *c = make(base, &peer, &o, 64 * 1024);

	/* The peer sends; we read. */
	assert_int_equal(write(peer, "hello", 5), 5);
	spin(base, 5);
	assert_int_equal(o.received, 5);

	/* We queue far more than the cap while the peer reads nothing. */
	static char block[8192];
	memset(block, 'x', sizeof(block));
	size_t queued = 0;
	for (int i = 0; i < 64; i++) {
		conn_write(c, block, sizeof(block));
		queued += sizeof(block);
	}
	spin(base, 10);
	assert_true(conn_output_pending(c) > 64 * 1024);
	assert_int_equal(conn_stats(c)->read_pauses, 1);

	/* While paused, what the peer sends stays unread. */
	assert_int_equal(write(peer, "more", 4), 4);
	spin(base, 10);
	assert_int_equal(o.received, 5);

	/* The peer catches up; reading resumes and the bytes arrive. */
	size_t got = 0;
	for (int i = 0; i < 2000 && got < queued; i++) {
		got += drain_peer(peer);
		spin(base, 2);
	}
	assert_int_equal(got, queued);
	spin(base, 5);
	assert_int_equal(o.received, 9);
	assert_int_equal(conn_stats(c)->read_pauses, 1);

	conn_close(c, "test done");
	spin(base, 10);
	assert_int_equal(o.closed, 1);
	assert_string_equal(o.reason, "test done");
	close(peer);
	event_base_free(base);
}

static void test_close_flushes_output(void **state)
{
	(void)state;
	struct event_base *base = event_base_new();
	struct owner o = {0};
	int peer;
	struct conn *c = make(base, &peer, &o, 1 << 20);
	static char block[100000];
	memset(block, 'y', sizeof(block));
	conn_write(c, block, sizeof(block));
	conn_write(c, "</stream:stream>", 16);
	conn_close(c, "bye");
	conn_close(c, "twice is harmless");
	size_t got = 0;
	for (int i = 0; i < 2000 && !o.closed; i++) {
		got += drain_peer(peer);
		spin(base, 1);
		usleep(1000); /* the close path polls every 10 ms */
	}
	got += drain_peer(peer);
	assert_int_equal(o.closed, 1);
	assert_string_equal(o.reason, "bye");
	assert_int_equal(got, sizeof(block) + 16);
	/* And the socket is closed: the peer sees end of file. */
	char b;
	fcntl(peer, F_SETFL, 0);
	assert_int_equal(read(peer, &b, 1), 0);
	close(peer);
	event_base_free(base);
}

static void test_starttls_discards_plaintext(void **state)
{
	(void)state;
	struct event_base *base = event_base_new();
	struct owner o = {0};
	int peer;
	struct conn *c = make(base, &peer, &o, 1 << 20);
	/* Bytes sit unparsed in our input buffer when TLS starts: they
	 * must be dropped, never handed to anyone. */
	o.hold = 1;
	assert_int_equal(write(peer, "<evil/>", 7), 7);
	spin(base, 5);
	assert_int_equal(o.received, 0);
	SSL_CTX *ctx = SSL_CTX_new(TLS_server_method());
	size_t discarded = 0;
	assert_int_equal(conn_start_tls(c, ctx, &discarded), FG_OK);
	assert_int_equal(discarded, 7);
	assert_int_equal(conn_stats(c)->discarded_after_starttls, 7);
	assert_int_equal(conn_start_tls(c, ctx, &discarded), FG_ERR); /* only once */
	/* What comes next is TLS: the owner sees nothing of it either way. */
	o.hold = 0;
	spin(base, 5);
	assert_int_equal(o.received, 0);
	conn_close(c, "done");
	spin(base, 10);
	assert_int_equal(o.closed, 1);
	SSL_CTX_free(ctx);
	close(peer);
	event_base_free(base);
}

/* A server context with a throwaway self-signed certificate. */
static SSL_CTX *server_ctx(void)
{
	EVP_PKEY *key = EVP_EC_gen("P-256");
	X509 *x = X509_new();
	assert_non_null(key);
	assert_non_null(x);
	ASN1_INTEGER_set(X509_get_serialNumber(x), 1);
	X509_gmtime_adj(X509_getm_notBefore(x), 0);
	X509_gmtime_adj(X509_getm_notAfter(x), 3600);
	X509_set_pubkey(x, key);
	X509_NAME_add_entry_by_txt(X509_get_subject_name(x), "CN", MBSTRING_ASC,
				   (const unsigned char *)"conn.test", -1, -1, 0);
	X509_set_issuer_name(x, X509_get_subject_name(x));
	assert_true(X509_sign(x, key, EVP_sha256()) > 0);
	SSL_CTX *ctx = SSL_CTX_new(TLS_server_method());
	assert_int_equal(SSL_CTX_use_certificate(ctx, x), 1);
	assert_int_equal(SSL_CTX_use_PrivateKey(ctx, key), 1);
	X509_free(x);
	EVP_PKEY_free(key);
	return ctx;
}

/* conn as the TLS server over a socket pair, the test as its client. */
struct tls_fx {
	struct event_base *base;
	struct owner o;
	int peer;
	struct conn *c;
	SSL_CTX *sctx, *cctx;
	SSL *ssl;
};

static void tls_begin(struct tls_fx *t)
{
	memset(t, 0, sizeof(*t));
	t->base = event_base_new();
	t->c = make(t->base, &t->peer, &t->o, 1 << 20);
	t->sctx = server_ctx();
	t->cctx = SSL_CTX_new(TLS_client_method());
	assert_int_equal(conn_start_tls(t->c, t->sctx, NULL), FG_OK);
	t->ssl = SSL_new(t->cctx);
	assert_non_null(t->ssl);
	SSL_set_fd(t->ssl, t->peer);
	int rc = 0;
	for (int i = 0; i < 2000 && rc != 1; i++) {
		rc = SSL_connect(t->ssl);
		spin(t->base, 1);
	}
	assert_int_equal(rc, 1);
	spin(t->base, 5);
	assert_true(conn_secure(t->c));
}

/* Runs the loop until the owner heard of the close; then frees it all. */
static void tls_end(struct tls_fx *t)
{
	for (int i = 0; i < 2000 && !t->o.closed; i++) {
		spin(t->base, 1);
		usleep(1000);
	}
	assert_int_equal(t->o.closed, 1);
	SSL_free(t->ssl);
	SSL_CTX_free(t->sctx);
	SSL_CTX_free(t->cctx);
	close(t->peer);
	event_base_free(t->base);
}

/* Our close ends TLS with close_notify after the last bytes (RFC 8446
 * §6.1): the client reads them, then a clean end, not "unexpected eof". */
static void test_tls_close_sends_close_notify(void **state)
{
	(void)state;
	struct tls_fx t;
	tls_begin(&t);
	conn_write(t.c, "</stream:stream>", 16);
	conn_close(t.c, "bye");
	char buf[64];
	size_t got = 0;
	int err = SSL_ERROR_WANT_READ;
	for (int i = 0; i < 2000 && err == SSL_ERROR_WANT_READ; i++) {
		spin(t.base, 1);
		int rc = SSL_read(t.ssl, buf + got, (int)(sizeof(buf) - got));
		if (rc > 0) {
			got += (size_t)rc;
			continue;
		}
		err = SSL_get_error(t.ssl, rc);
		if (err == SSL_ERROR_WANT_READ)
			usleep(1000);
	}
	assert_int_equal(got, 16);
	assert_memory_equal(buf, "</stream:stream>", 16);
	assert_int_equal(err, SSL_ERROR_ZERO_RETURN);
	tls_end(&t);
}

/* A peer's last words and its close_notify in one read (a stream error,
 * then the end of TLS): the owner gets the words before the close. */
static void test_tls_last_words_before_close(void **state)
{
	(void)state;
	struct tls_fx t;
	tls_begin(&t);
	assert_int_equal(SSL_write(t.ssl, "<stream:error/>", 15), 15);
	SSL_shutdown(t.ssl);
	shutdown(t.peer, SHUT_WR);
	tls_end(&t);
	assert_int_equal(t.o.received, 15);
}

static void count_event(evutil_socket_t fd, short what, void *arg)
{
	(void)fd, (void)what;
	(*(int *)arg)++;
}

/* The descriptor records are made for free numbers only: descriptors in
 * use (a pipe with a byte in it, on either side of a gap) are the same
 * files afterwards, nothing new stays open, and the loop still watches a
 * socket on a number that was reserved. */
static void test_reserve_fd_slots(void **state)
{
	(void)state;
	struct event_base *base = event_base_new();
	int p[2], q[2];
	assert_int_equal(pipe(p), 0);
	assert_int_equal(pipe(q), 0);
	close(q[0]); /* a gap below open descriptors */
	assert_int_equal(write(p[1], "x", 1), 1);
	bool open_before[64];
	for (int fd = 0; fd < 64; fd++)
		open_before[fd] = fcntl(fd, F_GETFD) != -1;
	int made = conn_reserve_fd_slots(base, 64);
	assert_true(made > 32);
	char c = 0;
	assert_int_equal(read(p[0], &c, 1), 1);
	assert_int_equal(c, 'x');
	int fresh = dup(p[0]); /* the lowest free number: the gap */
	assert_int_equal(fresh, q[0]);
	close(fresh);
	for (int fd = 0; fd < 64; fd++)
		assert_int_equal(fcntl(fd, F_GETFD) != -1, open_before[fd]);
	/* A socket on a reserved number is watched as any other. */
	int sv[2];
	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
	int fired = 0;
	struct event *ev = event_new(base, sv[0], EV_READ, count_event, &fired);
	assert_int_equal(event_add(ev, NULL), 0);
	assert_int_equal(write(sv[1], "y", 1), 1);
	event_base_loop(base, EVLOOP_ONCE);
	assert_int_equal(fired, 1);
	event_free(ev);
	close(sv[0]);
	close(sv[1]);
	close(p[0]);
	close(p[1]);
	close(q[1]);
	event_base_free(base);
}

int main(void)
{
	log_set_level(LOG_WARNING);
	/* As the daemon does: a write to a peer that is gone is an error, not
	 * the end of the process. */
	signal(SIGPIPE, SIG_IGN);
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_back_pressure),
		cmocka_unit_test(test_close_flushes_output),
		cmocka_unit_test(test_starttls_discards_plaintext),
		cmocka_unit_test(test_tls_close_sends_close_notify),
		cmocka_unit_test(test_tls_last_words_before_close),
		cmocka_unit_test(test_reserve_fd_slots),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}

/* The load client of the side-by-side benchmark (bench/compare.py,
 * docs/benchmarks.md): real XMPP clients over STARTTLS, TLS 1.3 with one
 * forced cipher, SCRAM-SHA-1 and resource binding, against any server.
 * One thread and one epoll loop drive every connection, so that one core
 * can keep a server busy; `sink` is a trivial TLS server that answers just
 * enough XMPP for the other modes, to print the client's own ceiling.
 *
 *   bench_load msgs    --from SPEC --to SPEC [-n N] [--window W] [--settle-ms MS]
 *   bench_load latency --from SPEC --to SPEC [--rate R] [--seconds T]
 *   bench_load logins  --login SPEC [--conns C] [--seconds T]
 *   bench_load idle    --login SPEC... [-n N] [--checkpoints A,B] [--sources 127.0.1.1:K]
 *   bench_load sink    --listen ADDR:PORT --cert PEM --key PEM
 *
 * SPEC is ADDR:PORT,DOMAIN,USER,PASSWORD. Figures go to stdout, one line
 * each, in a form compare.py parses; it asserts nothing about them. */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>
#include <openssl/sha.h>
#include <openssl/ssl.h>
#include <assert.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define CIPHER "TLS_AES_256_GCM_SHA384"
#define RBUF   (256 * 1024)

struct spec {
	struct sockaddr_in addr;
	char domain[256], user[128], password[128];
};

enum state {
	ST_CONNECTING,
	ST_FEAT_PLAIN, /* header sent, waiting for the features with <starttls/> */
	ST_PROCEED,
	ST_HANDSHAKE,
	ST_FEAT_SASL,
	ST_CHALLENGE,
	ST_SUCCESS,
	ST_FEAT_BIND,
	ST_BIND,
	ST_READY,
	/* the sink's side */
	ST_SINK_PLAIN,
	ST_SINK_HANDSHAKE,
	ST_SINK_TLS,
	ST_LISTEN,
};

enum role { R_SENDER, R_RECEIVER, R_LOGIN, R_IDLE, R_SINK, R_LISTENER };

/* Kept small on purpose: `idle` holds 100,000 of these. Input and output
 * buffers exist only while a partial stanza or unsent bytes wait. */
struct conn {
	int fd;
	uint8_t state, role;
	uint8_t depth;	  /* XML depth at the start of `in` (0 before the header) */
	uint8_t features; /* the sink's stream restarts so far */
	SSL *ssl;
	const struct spec *spec;
	char *in;
	size_t inlen;
	char *out;
	size_t outlen, outcap;
	char *scram; /* client-first-bare while SCRAM runs */
	char resource[24];
	uint32_t account;  /* with --accounts K: logs in as USER<account> */
	struct conn *next; /* the sink's bound sessions */
};

static struct {
	int ep;
	SSL_CTX *ctx;
	const char *mode;
	unsigned long n, window, conns, rate, seconds, sources, accounts;
	double settle;	   /* s to wait once both are ready (--settle-ms) */
	double both_ready; /* when sender and receiver were first both ready */
	struct in_addr source0;
	unsigned long checkpoints[16];
	int ncheckpoints;
	struct spec from, to, logins[16];
	int nlogins;
	/* progress */
	unsigned long sent, received, errors, logins_done, ready, started, failed;
	double t_first, t_last, t_start;
	struct conn *sender, *receiver;
	double *lat;
	size_t nlat;
	int tls_printed;
	struct conn *sink_sessions;
	unsigned long serial;
} g;

static char rbuf[RBUF];

static double now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* The client's own user+system CPU, printed beside each figure so that
 * its ceiling is known: a server cannot be measured faster than this. */
static double cpu_s(void)
{
	struct rusage ru;
	getrusage(RUSAGE_SELF, &ru);
	return (double)ru.ru_utime.tv_sec + (double)ru.ru_utime.tv_usec / 1e6 +
	       (double)ru.ru_stime.tv_sec + (double)ru.ru_stime.tv_usec / 1e6;
}

static void die(const char *what)
{
	fprintf(stderr, "bench_load: %s\n", what);
	ERR_print_errors_fp(stderr);
	exit(1);
}

static void *xrealloc(void *p, size_t n)
{
	p = realloc(p, n);
	if (p == NULL)
		die("out of memory");
	return p;
}

/* ---- SCRAM-SHA-1 (RFC 5802) ---- */

static size_t b64_encode(const unsigned char *in, size_t n, char *out)
{
	return (size_t)EVP_EncodeBlock((unsigned char *)out, in, (int)n);
}

static int b64_decode(const char *in, size_t n, unsigned char *out)
{
	while (n > 0 && (in[n - 1] == ' ' || in[n - 1] == '\n'))
		n--;
	if (n % 4 != 0)
		return -1;
	int len = EVP_DecodeBlock(out, (const unsigned char *)in, (int)n);
	if (len < 0)
		return -1;
	/* EVP_DecodeBlock counts the padding as zero bytes. */
	for (size_t i = n; i > 0 && in[i - 1] == '='; i--)
		len--;
	return len;
}

/* PBKDF2 is the one expensive step of a login on the client's side and
 * the same for every login of an account, so it is done once per account
 * (salt) and password: the server still does its full share every time. */
static struct {
	char key[512];
	unsigned char salted[SHA_DIGEST_LENGTH];
} scram_cache[1024];

static const unsigned char *salted_password(const char *pw, const unsigned char *salt, int saltlen,
					    int iter)
{
	char key[512];
	char s64[256];
	if (saltlen > 180)
		return NULL;
	b64_encode(salt, (size_t)saltlen, s64);
	snprintf(key, sizeof(key), "%d,%s,%s", iter, s64, pw);
	for (size_t i = 0; i < sizeof(scram_cache) / sizeof(scram_cache[0]); i++) {
		if (strcmp(scram_cache[i].key, key) == 0)
			return scram_cache[i].salted;
		if (scram_cache[i].key[0] == '\0') {
			if (!PKCS5_PBKDF2_HMAC(pw, (int)strlen(pw), salt, saltlen, iter, EVP_sha1(),
					       SHA_DIGEST_LENGTH, scram_cache[i].salted))
				return NULL;
			snprintf(scram_cache[i].key, sizeof(scram_cache[i].key), "%s", key);
			return scram_cache[i].salted;
		}
	}
	return NULL;
}

static const char *scram_attr(const char *msg, char name, size_t *len)
{
	for (const char *p = msg; p != NULL && *p != '\0';) {
		if (p[0] == name && p[1] == '=') {
			const char *end = strchr(p, ',');
			*len = end ? (size_t)(end - p - 2) : strlen(p + 2);
			return p + 2;
		}
		p = strchr(p, ',');
		if (p != NULL)
			p++;
	}
	return NULL;
}

/* Builds client-final from the server-first message; 0 on success. */
static int scram_final(struct conn *c, const char *server_first, char *out, size_t outlen)
{
	size_t rlen, slen, ilen;
	const char *r = scram_attr(server_first, 'r', &rlen);
	const char *s = scram_attr(server_first, 's', &slen);
	const char *i = scram_attr(server_first, 'i', &ilen);
	if (r == NULL || s == NULL || i == NULL || slen > 240 || rlen > 200)
		return -1;
	unsigned char salt[200];
	int saltlen = b64_decode(s, slen, salt);
	if (saltlen <= 0)
		return -1;
	const unsigned char *sp = salted_password(c->spec->password, salt, saltlen, atoi(i));
	if (sp == NULL)
		return -1;
	char without_proof[256];
	snprintf(without_proof, sizeof(without_proof), "c=biws,r=%.*s", (int)rlen, r);
	char auth[1024];
	int alen = snprintf(auth, sizeof(auth), "%s,%s,%s", c->scram, server_first, without_proof);
	if (alen < 0 || (size_t)alen >= sizeof(auth))
		return -1;
	unsigned char ckey[SHA_DIGEST_LENGTH], stored[SHA_DIGEST_LENGTH];
	unsigned char sig[SHA_DIGEST_LENGTH], proof[SHA_DIGEST_LENGTH];
	unsigned int l = 0;
	HMAC(EVP_sha1(), sp, SHA_DIGEST_LENGTH, (const unsigned char *)"Client Key", 10, ckey, &l);
	SHA1(ckey, sizeof(ckey), stored);
	HMAC(EVP_sha1(), stored, sizeof(stored), (unsigned char *)auth, (size_t)alen, sig, &l);
	for (int k = 0; k < SHA_DIGEST_LENGTH; k++)
		proof[k] = ckey[k] ^ sig[k];
	char p64[64];
	b64_encode(proof, sizeof(proof), p64);
	char final[512];
	int flen = snprintf(final, sizeof(final), "%s,p=%s", without_proof, p64);
	if (flen < 0 || (size_t)flen >= sizeof(final) || (size_t)(flen / 3 + 2) * 4 >= outlen)
		return -1;
	b64_encode((unsigned char *) final, (size_t)flen, out);
	return 0;
}

/* ---- connections ---- */

static void conn_events(struct conn *c)
{
	struct epoll_event ev = {.events = EPOLLIN, .data.ptr = c};
	if (c->outlen > 0 || c->state == ST_CONNECTING)
		ev.events |= EPOLLOUT;
	if (c->ssl != NULL && (c->state == ST_HANDSHAKE || c->state == ST_SINK_HANDSHAKE) &&
	    SSL_want_write(c->ssl))
		ev.events |= EPOLLOUT;
	epoll_ctl(g.ep, EPOLL_CTL_MOD, c->fd, &ev);
}

static void conn_free(struct conn **cp)
{
	struct conn *c = *cp;
	if (c == NULL)
		return;
	if (c->role == R_SINK) {
		for (struct conn **p = &g.sink_sessions; *p != NULL; p = &(*p)->next)
			if (*p == c) {
				*p = c->next;
				break;
			}
	}
	if (c->ssl != NULL)
		SSL_free(c->ssl);
	close(c->fd);
	free(c->in);
	free(c->out);
	free(c->scram);
	free(c);
	*cp = NULL;
}

/* Writes what it can now and keeps the rest; -1 when the peer is gone. */
static int conn_flush(struct conn *c)
{
	size_t off = 0;
	while (off < c->outlen) {
		ssize_t n;
		if (c->ssl != NULL && c->state != ST_PROCEED) {
			ERR_clear_error();
			int r = SSL_write(c->ssl, c->out + off, (int)(c->outlen - off));
			if (r <= 0) {
				int e = SSL_get_error(c->ssl, r);
				if (e == SSL_ERROR_WANT_WRITE || e == SSL_ERROR_WANT_READ)
					break;
				return -1;
			}
			n = r;
		} else {
			n = write(c->fd, c->out + off, c->outlen - off);
			if (n < 0) {
				if (errno == EAGAIN || errno == EINTR)
					break;
				return -1;
			}
		}
		off += (size_t)n;
	}
	if (off == 0)
		return 0;
	memmove(c->out, c->out + off, c->outlen - off);
	c->outlen -= off;
	/* Nothing waits: no buffer kept, idle sessions hold none. */
	if (c->outlen == 0) {
		free(c->out);
		c->out = NULL;
		c->outcap = 0;
	}
	return 0;
}

static void conn_queue(struct conn *c, const char *s, size_t n)
{
	if (c->outlen + n > c->outcap) {
		c->outcap = (c->outlen + n) * 2;
		c->out = xrealloc(c->out, c->outcap);
	}
	memcpy(c->out + c->outlen, s, n);
	c->outlen += n;
}

static void conn_send(struct conn *c, const char *s)
{
	conn_queue(c, s, strlen(s));
}

static void send_header(struct conn *c)
{
	char h[512];
	snprintf(h, sizeof(h),
		 "<?xml version='1.0'?><stream:stream xmlns='jabber:client' "
		 "xmlns:stream='http://etherx.jabber.org/streams' to='%s' version='1.0'>",
		 c->spec->domain);
	conn_send(c, h);
}

static struct conn *conn_new(int fd, int role, int state)
{
	struct conn *c = calloc(1, sizeof(*c));
	if (c == NULL)
		die("out of memory");
	c->fd = fd;
	c->role = (uint8_t)role;
	c->state = (uint8_t)state;
	struct epoll_event ev = {.events = EPOLLIN | EPOLLOUT, .data.ptr = c};
	if (epoll_ctl(g.ep, EPOLL_CTL_ADD, fd, &ev) < 0)
		die("epoll_ctl");
	return c;
}

static struct conn *conn_connect(const struct spec *sp, int role, unsigned long seq)
{
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
	if (fd < 0) {
		perror("bench_load: socket");
		return NULL;
	}
	int one = 1;
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	if (g.sources > 0) {
		/* Many sources get past the ephemeral port range; the kernel picks
		 * the port at connect time, per destination. */
		setsockopt(fd, IPPROTO_IP, IP_BIND_ADDRESS_NO_PORT, &one, sizeof(one));
		struct sockaddr_in src = {.sin_family = AF_INET};
		src.sin_addr.s_addr = htonl(ntohl(g.source0.s_addr) + (uint32_t)(seq % g.sources));
		if (bind(fd, (struct sockaddr *)&src, sizeof(src)) < 0) {
			perror("bench_load: bind");
			close(fd);
			return NULL;
		}
	}
	if (connect(fd, (const struct sockaddr *)&sp->addr, sizeof(sp->addr)) < 0 &&
	    errno != EINPROGRESS) {
		perror("bench_load: connect");
		close(fd);
		return NULL;
	}
	struct conn *c = conn_new(fd, role, ST_CONNECTING);
	c->spec = sp;
	snprintf(c->resource, sizeof(c->resource), "%c%lu", "srlid"[role], seq);
	if (g.accounts > 0)
		c->account = (uint32_t)(seq % g.accounts);
	g.started++;
	return c;
}

/* ---- protocol steps ---- */

static int has(const char *s, size_t n, const char *needle)
{
	return memmem(s, n, needle, strlen(needle)) != NULL;
}

static int is(const char *s, size_t n, const char *name)
{
	size_t l = strlen(name);
	return n > l + 1 && s[0] == '<' && memcmp(s + 1, name, l) == 0 &&
	       (s[l + 1] == ' ' || s[l + 1] == '>' || s[l + 1] == '/');
}

static void start_tls(struct conn *c, int server)
{
	c->ssl = SSL_new(g.ctx);
	if (c->ssl == NULL)
		die("SSL_new");
	SSL_set_fd(c->ssl, c->fd);
	if (server) {
		SSL_set_accept_state(c->ssl);
	} else {
		SSL_set_connect_state(c->ssl);
		SSL_set_tlsext_host_name(c->ssl, c->spec->domain);
	}
	c->state = server ? ST_SINK_HANDSHAKE : ST_HANDSHAKE;
	c->depth = 0;
	free(c->in);
	c->in = NULL;
	c->inlen = 0;
}

static void send_auth(struct conn *c)
{
	unsigned char nonce[18];
	char n64[32];
	RAND_bytes(nonce, sizeof(nonce));
	b64_encode(nonce, sizeof(nonce), n64);
	char bare[256];
	if (g.accounts > 0)
		snprintf(bare, sizeof(bare), "n=%s%u,r=%s", c->spec->user, c->account, n64);
	else
		snprintf(bare, sizeof(bare), "n=%s,r=%s", c->spec->user, n64);
	c->scram = strdup(bare);
	char first[300], f64[420], out[600];
	int n = snprintf(first, sizeof(first), "n,,%s", bare);
	b64_encode((unsigned char *)first, (size_t)n, f64);
	snprintf(out, sizeof(out),
		 "<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='SCRAM-SHA-1'>%s</auth>",
		 f64);
	conn_send(c, out);
	c->state = ST_CHALLENGE;
}

/* The text content of a one-level element such as <challenge>...</challenge>. */
static int element_text(const char *s, size_t n, char *out, size_t outlen)
{
	const char *gt = memchr(s, '>', n);
	if (gt == NULL || gt[-1] == '/') {
		out[0] = '\0';
		return 0;
	}
	const char *lt = memchr(gt, '<', n - (size_t)(gt - s));
	if (lt == NULL || (size_t)(lt - gt - 1) >= outlen)
		return -1;
	memcpy(out, gt + 1, (size_t)(lt - gt - 1));
	out[lt - gt - 1] = '\0';
	return 0;
}

static void on_ready(struct conn *c);
static void on_message(struct conn *c, const char *s, size_t n);
static void client_done(struct conn **cp, const char *why);

static void client_stanza(struct conn **cp, const char *s, size_t n)
{
	struct conn *c = *cp;
	char text[1024], dec[800], out[900];
	if (is(s, n, "stream:error")) {
		fprintf(stderr, "bench_load: %.*s\n", (int)(n < 400 ? n : 400), s);
		return client_done(cp, "stream error");
	}
	switch (c->state) {
	case ST_FEAT_PLAIN:
		if (!is(s, n, "stream:features") || !has(s, n, "starttls"))
			return client_done(cp, "no STARTTLS offered");
		conn_send(c, "<starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'/>");
		c->state = ST_PROCEED;
		return;
	case ST_PROCEED:
		if (!is(s, n, "proceed"))
			return client_done(cp, "STARTTLS refused");
		start_tls(c, 0);
		return;
	case ST_FEAT_SASL:
		if (!is(s, n, "stream:features") || !has(s, n, "SCRAM-SHA-1"))
			return client_done(cp, "no SCRAM-SHA-1 offered");
		send_auth(c);
		return;
	case ST_CHALLENGE: {
		int len;
		if (!is(s, n, "challenge") || element_text(s, n, text, sizeof(text)) < 0 ||
		    (len = b64_decode(text, strlen(text), (unsigned char *)dec)) <= 0 ||
		    len >= (int)sizeof(dec))
			return client_done(cp, "SASL: no challenge");
		dec[len] = '\0';
		char f64[700];
		if (scram_final(c, dec, f64, sizeof(f64)) < 0)
			return client_done(cp, "SASL: bad challenge");
		snprintf(out, sizeof(out),
			 "<response xmlns='urn:ietf:params:xml:ns:xmpp-sasl'>%s</response>", f64);
		conn_send(c, out);
		c->state = ST_SUCCESS;
		return;
	}
	case ST_SUCCESS:
		if (!is(s, n, "success"))
			return client_done(cp, "SASL failed (wrong account or password?)");
		free(c->scram);
		c->scram = NULL;
		c->depth = 0;
		send_header(c);
		c->state = ST_FEAT_BIND;
		return;
	case ST_FEAT_BIND:
		if (!is(s, n, "stream:features") || !has(s, n, "bind"))
			return client_done(cp, "no bind offered");
		snprintf(out, sizeof(out),
			 "<iq type='set' id='bind'><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'>"
			 "<resource>%s</resource></bind></iq>",
			 c->resource);
		conn_send(c, out);
		c->state = ST_BIND;
		return;
	case ST_BIND:
		if (!is(s, n, "iq"))
			return; /* anything a server sends before the result */
		if (!has(s, n, "'result'") && !has(s, n, "\"result\""))
			return client_done(cp, "bind refused");
		c->state = ST_READY;
		on_ready(c);
		return;
	case ST_READY:
		if (is(s, n, "message")) {
			on_message(c, s, n);
		} else if (is(s, n, "iq") &&
			   (has(s, n, "type='get'") || has(s, n, "type=\"get\""))) {
			/* a server's ping (XEP-0199) keeps an idle session open */
			const char *id = memmem(s, n, "id=", 3);
			if (id != NULL) {
				char q = id[3];
				const char *e = memchr(id + 4, q, n - (size_t)(id + 4 - s));
				if (e != NULL && e - id < 200) {
					snprintf(out, sizeof(out), "<iq type='result' id=%.*s/>",
						 (int)(e - id - 2), id + 3);
					conn_send(c, out);
				}
			}
		}
		return;
	default: return;
	}
}

/* ---- the sink: just enough of a server ---- */

static void sink_header(struct conn *c)
{
	static const char *features[] = {
		"<stream:features><starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'><required/>"
		"</starttls></stream:features>",
		"<stream:features><mechanisms xmlns='urn:ietf:params:xml:ns:xmpp-sasl'>"
		"<mechanism>SCRAM-SHA-1</mechanism></mechanisms></stream:features>",
		"<stream:features><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'/>"
		"</stream:features>",
	};
	conn_send(c, "<?xml version='1.0'?><stream:stream xmlns='jabber:client' "
		     "xmlns:stream='http://etherx.jabber.org/streams' from='sink' id='s' "
		     "version='1.0'>");
	conn_send(c, features[c->features < 2 ? c->features : 2]);
}

static void sink_stanza(struct conn *c, const char *s, size_t n)
{
	char text[600], dec[600], out[900];
	if (is(s, n, "starttls")) {
		conn_send(c, "<proceed xmlns='urn:ietf:params:xml:ns:xmpp-tls'/>");
		conn_flush(c);
		c->features = 1;
		start_tls(c, 1);
	} else if (is(s, n, "auth")) {
		int len;
		const char *r;
		size_t rlen;
		if (element_text(s, n, text, sizeof(text)) < 0 ||
		    (len = b64_decode(text, strlen(text), (unsigned char *)dec)) <= 0)
			return;
		dec[len] = '\0';
		if ((r = scram_attr(dec, 'r', &rlen)) == NULL || rlen > 100)
			return;
		char first[300], f64[420];
		int fl = snprintf(first, sizeof(first), "r=%.*ssink,s=c2lua3NhbHQ=,i=4096",
				  (int)rlen, r);
		b64_encode((unsigned char *)first, (size_t)fl, f64);
		snprintf(out, sizeof(out),
			 "<challenge xmlns='urn:ietf:params:xml:ns:xmpp-sasl'>%s</challenge>", f64);
		conn_send(c, out);
	} else if (is(s, n, "response")) {
		conn_send(c, "<success xmlns='urn:ietf:params:xml:ns:xmpp-sasl'/>");
		c->features = 2;
		c->depth = 0;
	} else if (is(s, n, "iq")) {
		const char *r = memmem(s, n, "<resource>", 10);
		const char *e = r ? memmem(r, n - (size_t)(r - s), "</resource>", 11) : NULL;
		if (r != NULL && e != NULL && (size_t)(e - r - 10) < sizeof(c->resource))
			snprintf(c->resource, sizeof(c->resource), "%.*s", (int)(e - r - 10),
				 r + 10);
		snprintf(out, sizeof(out),
			 "<iq type='result' id='bind'><bind "
			 "xmlns='urn:ietf:params:xml:ns:xmpp-bind'>"
			 "<jid>u@sink/%s</jid></bind></iq>",
			 c->resource);
		conn_send(c, out);
		c->next = g.sink_sessions;
		g.sink_sessions = c;
	} else if (is(s, n, "message")) {
		/* to='user@domain/resource': to the session bound to that resource */
		const char *t = memmem(s, n, "to='", 4);
		const char *slash = t ? memchr(t, '/', n - (size_t)(t - s)) : NULL;
		const char *q = slash ? memchr(slash, '\'', n - (size_t)(slash - s)) : NULL;
		struct conn *to = c;
		if (q != NULL)
			for (struct conn *x = g.sink_sessions; x != NULL; x = x->next)
				if (strlen(x->resource) == (size_t)(q - slash - 1) &&
				    memcmp(x->resource, slash + 1, (size_t)(q - slash - 1)) == 0)
					to = x;
		conn_queue(to, s, n);
		if (to != c)
			conn_events(to);
	}
}

/* ---- the modes ---- */

static void pump_sender(void)
{
	struct conn *c = g.sender;
	if (c == NULL || g.receiver == NULL || g.receiver->state != ST_READY ||
	    c->state != ST_READY)
		return;
	/* On a cluster the receiver's session reaches the sender's node a
	 * moment after it is bound (the registry travels through Redis). */
	if (g.both_ready == 0)
		g.both_ready = now();
	if (now() - g.both_ready < g.settle)
		return;
	char m[512];
	if (strcmp(g.mode, "msgs") == 0) {
		if (g.t_first == 0)
			g.t_first = now();
		while (g.sent < g.n && g.sent - g.received < g.window && c->outlen < 65536) {
			int l = snprintf(m, sizeof(m),
					 "<message to='%s@%s/%s' type='chat' id='m%lu'>"
					 "<body>hello</body></message>",
					 g.to.user, g.to.domain, g.receiver->resource, g.sent);
			conn_queue(c, m, (size_t)l);
			g.sent++;
		}
	} else {
		double t = now();
		if (g.t_first == 0)
			g.t_first = t;
		unsigned long due = (unsigned long)((t - g.t_first) * (double)g.rate) + 1;
		if (due > g.n)
			due = g.n;
		while (g.sent < due) {
			int l = snprintf(m, sizeof(m),
					 "<message to='%s@%s/%s' type='chat' id='l%lu'>"
					 "<body>%.0f</body></message>",
					 g.to.user, g.to.domain, g.receiver->resource, g.sent,
					 (now() - g.t_start) * 1e6);
			conn_queue(c, m, (size_t)l);
			g.sent++;
		}
	}
	if (conn_flush(c) < 0)
		die("the sender's connection broke");
	conn_events(c);
}

static void on_ready(struct conn *c)
{
	if (!g.tls_printed && c->ssl != NULL) {
		g.tls_printed = 1;
		printf("tls: %s %s\n", SSL_get_version(c->ssl),
		       SSL_CIPHER_get_name(SSL_get_current_cipher(c->ssl)));
		fflush(stdout);
	}
	g.ready++;
	if (c->role == R_SENDER || c->role == R_RECEIVER)
		pump_sender();
}

static void on_message(struct conn *c, const char *s, size_t n)
{
	if (c->role != R_RECEIVER)
		return;
	if (has(s, n, "type='error'") || has(s, n, "type=\"error\"")) {
		g.errors++;
		return;
	}
	g.received++;
	g.t_last = now();
	if (g.lat != NULL) {
		const char *b = memmem(s, n, "<body>", 6);
		if (b != NULL && g.nlat < g.n)
			g.lat[g.nlat++] = (now() - g.t_start) * 1e3 - strtod(b + 6, NULL) / 1e3;
	}
}

static void client_done(struct conn **cp, const char *why)
{
	struct conn *c = *cp;
	if (c->role == R_SINK || (c->role == R_LOGIN && c->state == ST_READY)) {
		conn_free(cp);
		return;
	}
	fprintf(stderr, "bench_load: %s/%s (state %d): %s\n", c->spec ? c->spec->user : "?",
		c->resource, c->state, why);
	g.failed++;
	if (c->role == R_SENDER || c->role == R_RECEIVER)
		exit(1);
	conn_free(cp);
}

/* ---- I/O ---- */

/* Splits the stream into its header and top-level elements by counting
 * tags (enough for what servers send: no CDATA, '>' in text escaped).
 * Returns how many bytes were consumed; the rest waits for more. */
static size_t split(struct conn **cp, char *buf, size_t len)
{
	struct conn *c = *cp;
	size_t pos = 0, start = 0;
	int depth = c->depth;
	while (pos < len) {
		char *lt = memchr(buf + pos, '<', len - pos);
		if (lt == NULL)
			return depth <= 1 ? len : start;
		size_t i = (size_t)(lt - buf);
		if (depth <= 1)
			start = i;
		char quote = 0;
		size_t j = i + 1;
		for (; j < len; j++) {
			if (quote) {
				if (buf[j] == quote)
					quote = 0;
			} else if (buf[j] == '\'' || buf[j] == '"') {
				quote = buf[j];
			} else if (buf[j] == '>') {
				break;
			}
		}
		if (j >= len)
			return start;
		pos = j + 1;
		if (buf[i + 1] == '?' || buf[i + 1] == '!')
			continue;
		if (buf[i + 1] == '/') {
			depth--;
			if (depth == 0) {
				client_done(cp, "the server closed the stream");
				return len;
			}
		} else if (buf[j - 1] != '/') {
			if (depth == 0) {
				depth = 1;
				c->depth = 1;
				if (c->role == R_SINK)
					sink_header(c);
				start = pos;
				continue;
			}
			depth++;
		}
		if (depth == 1) {
			c->depth = 1;
			if (c->role == R_SINK)
				sink_stanza(c, buf + start, pos - start);
			else
				client_stanza(cp, buf + start, pos - start);
			c = *cp;
			if (c == NULL)
				return len;
			/* A stream restart or TLS: what follows belongs to a new
			 * stream, and servers send nothing before it starts. */
			if (c->depth == 0 || c->state == ST_HANDSHAKE ||
			    c->state == ST_SINK_HANDSHAKE)
				return len;
			depth = 1;
			start = pos;
		}
	}
	c->depth = (uint8_t)(depth > 1 ? 1 : depth);
	return depth <= 1 ? len : start;
}

static void feed(struct conn **cp, char *data, size_t n)
{
	struct conn *c = *cp;
	if (c->inlen == 0) {
		size_t used = split(cp, data, n);
		if (*cp != NULL && used < n) {
			c->in = xrealloc(NULL, n - used);
			memcpy(c->in, data + used, n - used);
			c->inlen = n - used;
		}
		return;
	}
	c->in = xrealloc(c->in, c->inlen + n);
	memcpy(c->in + c->inlen, data, n);
	c->inlen += n;
	char *in = c->in;
	size_t total = c->inlen;
	c->in = NULL;
	c->inlen = 0;
	size_t used = split(cp, in, total);
	if (*cp != NULL && used < total && (*cp)->state != ST_HANDSHAKE &&
	    (*cp)->state != ST_SINK_HANDSHAKE) {
		memmove(in, in + used, total - used);
		(*cp)->in = in;
		(*cp)->inlen = total - used;
	} else {
		free(in);
	}
}

static void handshake(struct conn **cp)
{
	struct conn *c = *cp;
	ERR_clear_error();
	int r = SSL_do_handshake(c->ssl);
	if (r == 1) {
		if (c->role == R_SINK) {
			c->state = ST_SINK_TLS;
		} else {
			send_header(c);
			c->state = ST_FEAT_SASL;
		}
		return;
	}
	int e = SSL_get_error(c->ssl, r);
	if (e != SSL_ERROR_WANT_READ && e != SSL_ERROR_WANT_WRITE) {
		if (c->role != R_SINK)
			ERR_print_errors_fp(stderr);
		ERR_clear_error();
		client_done(cp, "TLS handshake failed");
	}
}

static void on_event(struct conn **cp, uint32_t events)
{
	struct conn *c = *cp;
	if (c->state == ST_CONNECTING) {
		int err = 0;
		socklen_t l = sizeof(err);
		getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &err, &l);
		if (err != 0) {
			errno = err;
			perror("bench_load: connect");
			return client_done(cp, "cannot connect");
		}
		send_header(c);
		c->state = ST_FEAT_PLAIN;
	}
	(void)events;
	for (;;) {
		c = *cp;
		if (c->state == ST_HANDSHAKE || c->state == ST_SINK_HANDSHAKE) {
			handshake(cp);
			if (*cp == NULL)
				return;
			c = *cp;
			if (c->state == ST_HANDSHAKE || c->state == ST_SINK_HANDSHAKE)
				break;
		}
		if (conn_flush(c) < 0)
			return client_done(cp, "the connection broke");
		ssize_t n;
		if (c->ssl != NULL) {
			ERR_clear_error();
			int r = SSL_read(c->ssl, rbuf, sizeof(rbuf));
			if (r <= 0) {
				int e = SSL_get_error(c->ssl, r);
				if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE)
					break;
				return client_done(cp, "the server closed the connection");
			}
			n = r;
		} else {
			n = read(c->fd, rbuf, sizeof(rbuf));
			if (n < 0 && (errno == EAGAIN || errno == EINTR))
				break;
			if (n <= 0)
				return client_done(cp, "the server closed the connection");
		}
		feed(cp, rbuf, (size_t)n);
		if (*cp == NULL)
			return;
	}
	c = *cp;
	if (conn_flush(c) < 0)
		return client_done(cp, "the connection broke");
	conn_events(c);
}

static void loop_once(int timeout_ms)
{
	struct epoll_event evs[256];
	int n = epoll_wait(g.ep, evs, 256, timeout_ms);
	for (int i = 0; i < n; i++) {
		struct conn *c = evs[i].data.ptr;
		if (c->state == ST_LISTEN) {
			for (;;) {
				int fd = accept4(c->fd, NULL, NULL, SOCK_NONBLOCK);
				if (fd < 0)
					break;
				int one = 1;
				setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
				conn_new(fd, R_SINK, ST_SINK_PLAIN);
			}
			continue;
		}
		int role = c->role;
		on_event(&c, evs[i].events);
		if (c == NULL && role == R_SINK)
			continue;
		if (role == R_RECEIVER)
			pump_sender();
	}
}

/* ---- setup ---- */

static int parse_addr(const char *s, struct sockaddr_in *a)
{
	char host[64];
	const char *colon = strrchr(s, ':');
	if (colon == NULL || (size_t)(colon - s) >= sizeof(host))
		return -1;
	memcpy(host, s, (size_t)(colon - s));
	host[colon - s] = '\0';
	memset(a, 0, sizeof(*a));
	a->sin_family = AF_INET;
	a->sin_port = htons((uint16_t)atoi(colon + 1));
	return inet_pton(AF_INET, host, &a->sin_addr) == 1 ? 0 : -1;
}

static void parse_spec(const char *s, struct spec *sp)
{
	char addr[80];
	if (sscanf(s, "%79[^,],%255[^,],%127[^,],%127s", addr, sp->domain, sp->user,
		   sp->password) != 4 ||
	    parse_addr(addr, &sp->addr) < 0) {
		fprintf(stderr, "bench_load: %s: expected ADDR:PORT,DOMAIN,USER,PASSWORD\n", s);
		exit(2);
	}
}

static void raise_nofile(unsigned long want)
{
	struct rlimit rl;
	getrlimit(RLIMIT_NOFILE, &rl);
	if (rl.rlim_cur >= want)
		return;
	rl.rlim_cur = want;
	if (rl.rlim_max < want)
		rl.rlim_max = want; /* allowed as root */
	if (setrlimit(RLIMIT_NOFILE, &rl) < 0) {
		getrlimit(RLIMIT_NOFILE, &rl);
		rl.rlim_cur = rl.rlim_max;
		setrlimit(RLIMIT_NOFILE, &rl);
		fprintf(stderr, "bench_load: open files limited to %lu\n",
			(unsigned long)rl.rlim_cur);
	}
}

static void tls_init(const char *cert, const char *key, int server)
{
	g.ctx = SSL_CTX_new(server ? TLS_server_method() : TLS_client_method());
	if (g.ctx == NULL)
		die("SSL_CTX_new");
	/* TLS 1.3 with one suite, so every server runs the same cipher. */
	SSL_CTX_set_min_proto_version(g.ctx, TLS1_3_VERSION);
	if (!SSL_CTX_set_ciphersuites(g.ctx, CIPHER))
		die("SSL_CTX_set_ciphersuites");
	/* Buffers are given back while a connection is idle: `idle` holds
	 * 100,000 connections; full handshakes every time (no tickets kept). */
	SSL_CTX_set_mode(g.ctx, SSL_MODE_RELEASE_BUFFERS | SSL_MODE_ENABLE_PARTIAL_WRITE |
					SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
	SSL_CTX_set_session_cache_mode(g.ctx, SSL_SESS_CACHE_OFF);
	SSL_CTX_set_options(g.ctx, SSL_OP_NO_TICKET);
	if (server && (SSL_CTX_use_certificate_chain_file(g.ctx, cert) != 1 ||
		       SSL_CTX_use_PrivateKey_file(g.ctx, key, SSL_FILETYPE_PEM) != 1))
		die("cannot load the sink's certificate or key");
}

static void wait_line(void)
{
	char line[64];
	fflush(stdout);
	if (fgets(line, sizeof(line), stdin) == NULL)
		return;
}

static void usage(void)
{
	fprintf(stderr,
		"usage: bench_load msgs|latency|logins|idle|sink [options]\n"
		"  --from SPEC --to SPEC   sender and receiver (SPEC: "
		"ADDR:PORT,DOMAIN,USER,PASSWORD)\n"
		"  --login SPEC            account for logins/idle (repeat: spread over servers)\n"
		"  -n N                    messages (msgs) or sessions (idle)\n"
		"  --window W              messages in flight (msgs; default 1000)\n"
		"  --settle-ms MS          msgs: wait MS once both are signed in (a cluster's\n"
		"                          registry needs a moment to reach the sender's node)\n"
		"  --rate R --seconds T    messages/s for latency; length of latency and logins\n"
		"  --conns C               parallel connections (logins, idle; default 16, 200)\n"
		"  --accounts K            logins, idle: log in as USER0..USER<K-1> in turn\n"
		"  --checkpoints A,B,...   idle: print 'idle: A open', wait for a line on stdin\n"
		"  --sources ADDR:K        connect from ADDR and the K-1 addresses after it\n"
		"  --listen ADDR:PORT --cert PEM --key PEM   sink\n");
	exit(2);
}

/* Sender and receiver logged in, then the loop runs until g.n messages
 * were answered; paced: the sender is driven by the clock (latency). A run
 * that hears nothing for 15 s has stalled. */
static void run_pair(const char *mode, int tick_ms, bool paced)
{
	g.receiver = conn_connect(&g.to, R_RECEIVER, 0);
	g.sender = conn_connect(&g.from, R_SENDER, 0);
	if (g.receiver == NULL || g.sender == NULL)
		exit(1);
	double last = now();
	unsigned long last_count = 0;
	while (g.received + g.errors < g.n) {
		loop_once(tick_ms);
		if (paced || g.settle > 0)
			pump_sender();
		if (g.received + g.errors != last_count) {
			last_count = g.received + g.errors;
			last = now();
		} else if (now() - last > 15) {
			printf("%s: stalled: %lu sent, %lu received\n", mode, g.sent, g.received);
			exit(1);
		}
	}
}

static void run_msgs(void)
{
	run_pair("msgs", 100, false);
	double dt = g.t_last - g.t_first;
	printf("msgs: %lu sent, %lu received, %lu errors in %.3f s: %.0f msg/s, "
	       "client CPU %.2f s per 100k\n",
	       g.sent, g.received, g.errors, dt, (double)g.received / dt,
	       cpu_s() * 1e5 / (double)g.received);
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return (x > y) - (x < y);
}

static void run_latency(void)
{
	g.n = g.rate * g.seconds;
	g.lat = calloc(g.n + 1, sizeof(double));
	if (g.lat == NULL)
		die("out of memory");
	run_pair("latency", 1, true);
	qsort(g.lat, g.nlat, sizeof(double), cmp_double);
	double p50 = g.lat[g.nlat / 2], p99 = g.lat[g.nlat * 99 / 100], max = g.lat[g.nlat - 1];
	printf("latency: %lu messages at %lu/s, %lu errors: p50 %.3f ms, p99 %.3f ms, max %.3f "
	       "ms\n",
	       g.nlat, g.rate, g.errors, p50, p99, max);
}

static void run_logins(void)
{
	unsigned long seq = 0;
	double end = now() + (double)g.seconds;
	struct conn **slots = calloc(g.conns, sizeof(*slots));
	double t0 = now();
	while (now() < end) {
		for (unsigned long i = 0; i < g.conns; i++) {
			if (slots[i] != NULL && slots[i]->state == ST_READY) {
				/* A login is connect, STARTTLS, SCRAM and bind; close at once. */
				conn_send(slots[i], "</stream:stream>");
				conn_flush(slots[i]);
				conn_free(&slots[i]);
				g.logins_done++;
			}
			if (slots[i] == NULL) {
				slots[i] = conn_connect(&g.logins[seq % (unsigned long)g.nlogins],
							R_LOGIN, seq);
				seq++;
			}
		}
		struct epoll_event evs[256];
		int n = epoll_wait(g.ep, evs, 256, 50);
		for (int k = 0; k < n; k++) {
			struct conn *c = evs[k].data.ptr;
			unsigned long i = 0;
			for (; i < g.conns && slots[i] != c; i++)
				;
			on_event(&c, evs[k].events);
			if (c == NULL && i < g.conns)
				slots[i] = NULL;
		}
		if (g.failed > 100)
			die("too many failed logins");
	}
	double dt = now() - t0;
	for (unsigned long i = 0; i < g.conns; i++)
		conn_free(&slots[i]);
	printf("logins: %lu in %.2f s with %lu connections, %lu failed: %.1f logins/s, "
	       "client CPU %.2f ms per login\n",
	       g.logins_done, dt, g.conns, g.failed, (double)g.logins_done / dt,
	       cpu_s() * 1e3 / (double)(g.logins_done ? g.logins_done : 1));
	free(slots);
}

static void run_idle(void)
{
	raise_nofile(g.n + 1024);
	struct conn **all = calloc(g.n, sizeof(*all));
	if (all == NULL)
		die("out of memory");
	unsigned long opened = 0;
	int cp = 0;
	double t0 = now();
	while (opened < g.n || g.ready < g.n) {
		/* Exactly as many sessions as the next checkpoint says. */
		unsigned long upto = cp < g.ncheckpoints ? g.checkpoints[cp] : g.n;
		while (opened < upto && opened - g.ready - g.failed < g.conns) {
			all[opened] = conn_connect(&g.logins[opened % (unsigned long)g.nlogins],
						   R_IDLE, opened);
			opened++;
		}
		loop_once(50);
		if (g.failed > 0)
			die("an idle session failed to log in");
		while (cp < g.ncheckpoints && g.ready >= g.checkpoints[cp]) {
			printf("idle: %lu open (%.1f s)\n", g.ready, now() - t0);
			wait_line();
			cp++;
		}
	}
	if (cp == 0 || g.checkpoints[cp - 1] != g.n) {
		printf("idle: %lu open (%.1f s)\n", g.ready, now() - t0);
		wait_line();
	}
	for (unsigned long i = 0; i < g.n; i++)
		conn_free(&all[i]);
	printf("idle: closed\n");
	fflush(stdout);
	free(all);
}

static void run_sink(const char *listen_at)
{
	struct sockaddr_in a;
	if (listen_at == NULL || parse_addr(listen_at, &a) < 0)
		usage();
	raise_nofile(16384);
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
	int one = 1;
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (bind(fd, (struct sockaddr *)&a, sizeof(a)) < 0 || listen(fd, 1024) < 0)
		die("sink: cannot listen");
	struct conn *l = conn_new(fd, R_LISTENER, ST_LISTEN);
	struct epoll_event ev = {.events = EPOLLIN, .data.ptr = l};
	epoll_ctl(g.ep, EPOLL_CTL_MOD, fd, &ev);
	printf("sink: listening on %s\n", listen_at);
	fflush(stdout);
	for (;;)
		loop_once(-1);
}

int main(int argc, char **argv)
{
	if (argc < 2)
		usage();
	g.mode = argv[1];
	g.n = 100000;
	g.window = 1000;
	g.conns = 0;
	g.rate = 1000;
	g.seconds = 10;
	const char *listen_at = NULL, *cert = NULL, *key = NULL;
	int have_from = 0, have_to = 0;
	for (int i = 2; i < argc; i++) {
		const char *o = argv[i];
		const char *v = i + 1 < argc ? argv[i + 1] : NULL;
		if (v == NULL)
			usage();
		i++;
		if (strcmp(o, "--from") == 0) {
			parse_spec(v, &g.from);
			have_from = 1;
		} else if (strcmp(o, "--to") == 0) {
			parse_spec(v, &g.to);
			have_to = 1;
		} else if (strcmp(o, "--login") == 0 && g.nlogins < 16) {
			parse_spec(v, &g.logins[g.nlogins++]);
		} else if (strcmp(o, "-n") == 0) {
			g.n = strtoul(v, NULL, 10);
		} else if (strcmp(o, "--settle-ms") == 0) {
			g.settle = strtod(v, NULL) / 1000;
		} else if (strcmp(o, "--window") == 0) {
			g.window = strtoul(v, NULL, 10);
		} else if (strcmp(o, "--rate") == 0) {
			g.rate = strtoul(v, NULL, 10);
		} else if (strcmp(o, "--seconds") == 0) {
			g.seconds = strtoul(v, NULL, 10);
		} else if (strcmp(o, "--accounts") == 0) {
			g.accounts = strtoul(v, NULL, 10);
		} else if (strcmp(o, "--conns") == 0) {
			g.conns = strtoul(v, NULL, 10);
		} else if (strcmp(o, "--checkpoints") == 0) {
			for (char *p = (char *)v; *p != '\0' && g.ncheckpoints < 16;) {
				g.checkpoints[g.ncheckpoints++] = strtoul(p, &p, 10);
				if (*p == ',')
					p++;
				else
					break;
			}
		} else if (strcmp(o, "--sources") == 0) {
			char a[64];
			if (sscanf(v, "%63[^:]:%lu", a, &g.sources) != 2 ||
			    inet_pton(AF_INET, a, &g.source0) != 1)
				usage();
		} else if (strcmp(o, "--listen") == 0) {
			listen_at = v;
		} else if (strcmp(o, "--cert") == 0) {
			cert = v;
		} else if (strcmp(o, "--key") == 0) {
			key = v;
		} else {
			usage();
		}
	}
	signal(SIGPIPE, SIG_IGN);
	g.ep = epoll_create1(0);
	g.t_start = now();
	tls_init(cert, key, strcmp(g.mode, "sink") == 0);
	if (strcmp(g.mode, "msgs") == 0 || strcmp(g.mode, "latency") == 0) {
		if (!have_from || !have_to)
			usage();
		if (strcmp(g.mode, "msgs") == 0)
			run_msgs();
		else
			run_latency();
	} else if (strcmp(g.mode, "logins") == 0 && g.nlogins > 0) {
		if (g.conns == 0)
			g.conns = 16;
		run_logins();
	} else if (strcmp(g.mode, "idle") == 0 && g.nlogins > 0) {
		if (g.conns == 0)
			g.conns = 200;
		run_idle();
	} else if (strcmp(g.mode, "sink") == 0) {
		run_sink(listen_at);
	} else {
		usage();
	}
	SSL_CTX_free(g.ctx);
	return 0;
}

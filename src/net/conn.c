#include "conn.h"

#include "fg.h"
#include "log.h"
#include "counters.h"
#include "tls.h"

#include <jansson.h>

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <assert.h>
#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/bufferevent_ssl.h>
#include <netdb.h>
#include <openssl/err.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* How long a closing connection may take to hand its last bytes (the
 * stream error, </stream:stream>) to the kernel before it is cut. */
#define CLOSE_GRACE_MS 5000
#define CLOSE_POLL_MS  10

struct conn {
	struct event_base *base;
	struct bufferevent *bev; /* top of the stack: the socket, or TLS over it */
	SSL *ssl;
	bool tls_up;
	bool direct_tls; /* TLS from the first byte (XEP-0368), not STARTTLS */
	const struct conn_ops *ops;
	void *ud;
	struct conn_limits lim;

	unsigned id;
	char prefix[16];
	char peer[INET6_ADDRSTRLEN];
	unsigned port;
	char *ctx; /* the log prefix (conn_set_label); never NULL once made */

	struct event *timer;  /* the owner's per-state timeout */
	struct event *closer; /* polls the output while closing */
	struct event *reaper; /* frees the connection from the loop */
	/* Work for the loop's next turn (SOON_*): flushing the cork, handing
	 * buffered input to on_data after a hold, telling the owner the
	 * output has room again. One event for the three. */
	struct event *soon;
	unsigned soon_what;
	/* Stanzas written under TLS during one turn of the loop, handed to
	 * TLS together at its end: one record for many stanzas. */
	struct evbuffer *cork;
	unsigned close_waited_ms;
	bool connecting; /* conn_connect: waiting for the TCP handshake */
	bool closing;
	bool broken; /* EOF or an error: nothing more can be sent */
	bool reaped;
	bool failed;  /* the network or TLS ended it, not either side's choice */
	bool paused;  /* our output to the peer is over output_queue */
	bool held;    /* the owner holds the input (conn_hold_input) */
	bool over;    /* the output passed half of output_queue since it last
			had room: the owner waits for on_drained */
	char *reason; /* conn_close's; NULL when out of memory (reason_of) */
	struct conn_stats st;
};

static unsigned next_id = 1;

static const char *reason_of(const struct conn *c)
{
	return c->reason ? c->reason : "closed";
}

enum { SOON_FLUSH = 1, SOON_KICK = 2, SOON_DRAIN = 4 };

static void soon(struct conn *c, unsigned what)
{
	c->soon_what |= what;
	event_active(c->soon, EV_TIMEOUT, 0);
}

/* What one TLS record carries at most. */
#define TLS_RECORD 16384

/* The cork goes to TLS in pieces of one record: bufferevent_openssl
 * calls SSL_write once per contiguous piece of its output. */
static void flush_cork(struct conn *c)
{
	size_t len;
	while (c->cork && c->bev && (len = evbuffer_get_length(c->cork)) > 0) {
		size_t n = len < TLS_RECORD ? len : TLS_RECORD;
		const unsigned char *p = evbuffer_pullup(c->cork, (ev_ssize_t)n);
		if (!p || bufferevent_write(c->bev, p, n) != 0)
			break; /* out of memory: left corked for the next turn */
		evbuffer_drain(c->cork, n);
	}
}

const char *conn_ctx(const struct conn *c)
{
	return c->ctx;
}
unsigned conn_id(const struct conn *c)
{
	return c->id;
}
const char *conn_peer(const struct conn *c)
{
	return c->peer;
}
SSL *conn_ssl(const struct conn *c)
{
	return c->tls_up ? c->ssl : NULL;
}
bool conn_secure(const struct conn *c)
{
	return c->tls_up;
}
bool conn_closing(const struct conn *c)
{
	return c->closing;
}
const struct conn_stats *conn_stats(const struct conn *c)
{
	return &c->st;
}

void conn_count_stanza(struct conn *c, bool in)
{
	if (in)
		c->st.stanzas_in++;
	else
		c->st.stanzas_out++;
}

void conn_set_label(struct conn *c, const char *label)
{
	const char *fmt = strchr(c->peer, ':') ? "%s #%u [%s]:%u%s%s" : "%s #%u %s:%u%s%s";
	char buf[512];
	snprintf(buf, sizeof(buf), fmt, c->prefix, c->id, c->peer, c->port,
		 label && label[0] ? " " : "", label ? label : "");
	/* Sized to the label: an idle session keeps it for its whole life. */
	char *ctx = strdup(buf);
	if (!ctx && c->ctx)
		return; /* out of memory: the old label stays */
	free(c->ctx);
	c->ctx = ctx;
}

size_t conn_output_pending(const struct conn *c)
{
	if (!c->bev)
		return 0;
	size_t n = evbuffer_get_length(bufferevent_get_output(c->bev));
	if (c->cork)
		n += evbuffer_get_length(c->cork);
	struct bufferevent *under = bufferevent_get_underlying(c->bev);
	if (under)
		n += evbuffer_get_length(bufferevent_get_output(under));
	return n;
}

unsigned long long conn_flushed(const struct conn *c)
{
	return c->st.bytes_out - conn_output_pending(c);
}

static void reap_cb(evutil_socket_t fd, short what, void *arg)
{
	struct conn *c = arg;
	(void)fd;
	(void)what;
	/* A partner's server whose connection dies is worth an admin's
	 * attention; a client's dropping out of a café's network is not. */
	enum log_level lvl =
		c->failed && strncmp(c->prefix, "s2s", 3) == 0 ? LOG_WARNING : LOG_INFO;
	log_msg(lvl, c->ctx, "closed: %s (in %llu bytes, out %llu bytes)", reason_of(c),
		c->st.bytes_in, c->st.bytes_out);
	counters_conn_closed(c->st.bytes_in, c->st.bytes_out, c->st.stanzas_in, c->st.stanzas_out);
	if (c->bev)
		bufferevent_free(c->bev); /* frees the SSL and closes the socket */
	c->bev = NULL;
	event_free(c->timer);
	event_free(c->closer);
	event_free(c->reaper);
	event_free(c->soon);
	if (c->cork)
		evbuffer_free(c->cork);
	const struct conn_ops *ops = c->ops;
	void *ud = c->ud;
	char *reason = c->reason;
	free(c->ctx);
	free(c);
	ops->on_closed(ud, reason ? reason : "closed");
	free(reason);
}

static void setup_bev(struct conn *c);

/* Puts a TLS filter over the socket: accepting when domain is NULL,
 * connecting with SNI = domain otherwise. */
/* What bufferevent_openssl reads at once: the smallest chain libevent
 * allocates (1 KiB with its header; see stack_tls). */
#define TLS_READ_PIECE (1024 - 128)

static int stack_tls(struct conn *c, SSL_CTX *ctx, const char *domain, const char *alpn)
{
	SSL *ssl = SSL_new(ctx);
	if (!ssl)
		return FG_NOMEM;
	if (domain && tls_client_prepare(ssl, domain) != FG_OK) {
		SSL_free(ssl);
		return FG_INVAL;
	}
	if (alpn && (domain ? tls_client_alpn(ssl, alpn) : tls_server_alpn(ssl, alpn)) != FG_OK) {
		SSL_free(ssl);
		return FG_NOMEM;
	}
	struct bufferevent *tls = bufferevent_openssl_filter_new(c->base, c->bev, ssl,
								 domain ? BUFFEREVENT_SSL_CONNECTING
									: BUFFEREVENT_SSL_ACCEPTING,
								 BEV_OPT_CLOSE_ON_FREE);
	if (!tls) {
		SSL_free(ssl);
		return FG_NOMEM;
	}
	c->ssl = ssl;
	c->bev = tls;
	/* bufferevent_openssl reserves max_single_read bytes of its input
	 * buffer before each SSL_read, and the attempt that finds nothing
	 * (the last one, on every idle stream) leaves that chain allocated:
	 * 16 KiB by default, a 32 KiB allocation. A 4 KiB chain took 21.7
	 * KiB off each idle TLS session (bench/idle_sessions.py: 57.7 ->
	 * 36.0 KiB), the smallest one (1 KiB) 3 KiB more. OpenSSL still
	 * decrypts whole records; they are only handed over in pieces. */
	int rc = bufferevent_set_max_single_read(tls, TLS_READ_PIECE);
	assert(rc == 0); /* fails only for a size above EV_SSIZE_MAX */
	(void)rc;
	setup_bev(c);
	return FG_OK;
}

void conn_free_now(struct conn **cp)
{
	if (!cp || !*cp)
		return;
	struct conn *c = *cp;
	if (c->bev)
		bufferevent_free(c->bev); /* frees the SSL and closes the socket */
	event_free(c->timer);
	event_free(c->closer);
	event_free(c->reaper);
	event_free(c->soon);
	if (c->cork)
		evbuffer_free(c->cork);
	free(c->reason);
	free(c->ctx);
	free(c);
	*cp = NULL;
}

static void reap(struct conn *c)
{
	if (c->reaped)
		return;
	c->reaped = true;
	evtimer_del(c->closer);
	evtimer_del(c->timer);
	event_del(c->soon);
	c->soon_what = 0;
	if (c->bev)
		bufferevent_disable(c->bev, EV_READ | EV_WRITE);
	event_active(c->reaper, EV_TIMEOUT, 0);
}

static void closer_cb(evutil_socket_t fd, short what, void *arg)
{
	struct conn *c = arg;
	(void)fd;
	(void)what;
	c->close_waited_ms += CLOSE_POLL_MS;
	/* Once our last bytes are through the TLS layer, close_notify tells the
	 * peer the end is not a truncation (openssl and check_xmppng report
	 * "unexpected eof" otherwise); it then leaves with the rest. */
	if (c->tls_up && !c->broken && c->bev &&
	    evbuffer_get_length(bufferevent_get_output(c->bev)) == 0)
		tls_close_notify(c->ssl);
	if (conn_output_pending(c) == 0 || c->close_waited_ms >= CLOSE_GRACE_MS) {
		if (conn_output_pending(c))
			log_debug(c->ctx, "dropping %zu unsent bytes at close",
				  conn_output_pending(c));
		reap(c);
		return;
	}
	struct timeval tv = {0, CLOSE_POLL_MS * 1000};
	evtimer_add(c->closer, &tv);
}

void conn_close(struct conn *c, const char *reason)
{
	if (c->closing)
		return;
	/* What was corked goes before the last words (written directly
	 * from now on). */
	flush_cork(c);
	c->closing = true;
	c->reason = strdup(reason ? reason : "closed");
	evtimer_del(c->timer);
	if (c->bev)
		bufferevent_disable(c->bev, EV_READ);
	closer_cb(-1, 0, c);
}

/* Reading runs while neither our full output nor the owner holds it. */
static void apply_reading(struct conn *c)
{
	if (c->closing || !c->bev)
		return;
	if (c->paused || c->held)
		bufferevent_disable(c->bev, EV_READ);
	else
		bufferevent_enable(c->bev, EV_READ);
}

static void set_paused(struct conn *c, bool paused)
{
	if (paused == c->paused || c->closing)
		return;
	c->paused = paused;
	if (paused) {
		c->st.read_pauses++;
		log_debug(c->ctx, "output queue over %zu bytes: reading paused",
			  c->lim.output_queue);
	} else {
		log_debug(c->ctx, "output queue drained: reading resumed");
	}
	apply_reading(c);
}

void conn_hold_input(struct conn *c, bool hold)
{
	if (hold == c->held || c->closing)
		return;
	c->held = hold;
	if (hold)
		c->st.holds++;
	apply_reading(c);
	/* What was read before the hold waits in the input buffer; no read
	 * event will announce it again. */
	if (!hold && c->bev && evbuffer_get_length(bufferevent_get_input(c->bev)) > 0)
		soon(c, SOON_KICK);
}

bool conn_input_held(const struct conn *c)
{
	return c->held;
}

int conn_write(struct conn *c, const char *data, size_t len)
{
	if (c->closing && c->reaped)
		return FG_ERR;
	if (c->tls_up && !c->closing) {
		/* Under TLS each SSL_write is a record, and OpenSSL's cost per
		 * record is most of a small stanza's: a turn of the loop that
		 * routes fifty messages to one client now seals them in one
		 * record instead of fifty. */
		if (!c->cork && !(c->cork = evbuffer_new()))
			return FG_NOMEM;
		if (evbuffer_add(c->cork, data, len) != 0)
			return FG_NOMEM;
		if (!(c->soon_what & SOON_FLUSH))
			soon(c, SOON_FLUSH);
	} else if (bufferevent_write(c->bev, data, len) != 0) {
		return FG_NOMEM;
	}
	c->st.bytes_out += len;
	size_t pending = conn_output_pending(c);
	if (pending >= c->lim.output_queue / 2)
		c->over = true;
	if (pending > c->lim.output_queue)
		set_paused(c, true);
	return FG_OK;
}

static void read_cb(struct bufferevent *bev, void *arg)
{
	struct conn *c = arg;
	struct evbuffer *in = bufferevent_get_input(bev);
	size_t len = evbuffer_get_length(in);
	if (c->closing) {
		evbuffer_drain(in, len);
		return;
	}
	if (len == 0 || c->held)
		return; /* a hold's end hands it over (soon_cb) */
	const char *data = (const char *)evbuffer_pullup(in, -1);
	size_t used = c->ops->on_data(c->ud, data, len);
	/* on_data may have started TLS, which already threw away the rest of
	 * the plaintext input, or closed us. */
	if (c->bev != bev)
		return;
	if (used > len)
		used = len;
	c->st.bytes_in += used;
	evbuffer_drain(in, used);
}

/* The output is back to half of output_queue: a paused reader resumes,
 * the owner may write again. From the loop, never from inside a write. */
static void drained(struct conn *c)
{
	if (c->closing || !c->over || conn_output_pending(c) > c->lim.output_queue / 2)
		return;
	c->over = false;
	if (c->paused)
		set_paused(c, false);
	if (c->ops->on_drained)
		c->ops->on_drained(c->ud);
}

/* Watches the socket's own output buffer, under TLS too: the bufferevent's
 * write callback sees only the top of the stack, which TLS empties at once
 * into the socket's buffer, so it never tells when the peer took bytes. */
static void socket_out_cb(struct evbuffer *buf, const struct evbuffer_cb_info *info, void *arg)
{
	struct conn *c = arg;
	(void)buf;
	if (info->n_deleted > 0 && c->over && !c->closing &&
	    conn_output_pending(c) <= c->lim.output_queue / 2)
		soon(c, SOON_DRAIN);
}

static void soon_cb(evutil_socket_t fd, short what, void *arg)
{
	struct conn *c = arg;
	(void)fd;
	(void)what;
	unsigned w = c->soon_what;
	c->soon_what = 0;
	if ((w & SOON_FLUSH) && !c->closing)
		flush_cork(c);
	/* The connection outlives what on_data does here: only reap_cb,
	 * later in the loop, frees it. */
	if ((w & SOON_KICK) && !c->closing && !c->held && c->bev)
		read_cb(c->bev, c);
	if (w & SOON_DRAIN)
		drained(c);
}

/* Why the socket failed. libevent reports BEV_EVENT_ERROR after the
 * fact: errno may be a later call's (EAGAIN from the read that found the
 * end), and the TLS filter turns a plain end without close_notify into an
 * error with no errno at all. The socket's own pending error comes first;
 * an errno that cannot end a connection is no answer. 0: none known. */
static int socket_error(const struct conn *c)
{
	int saved = EVUTIL_SOCKET_ERROR();
	struct bufferevent *under = bufferevent_get_underlying(c->bev);
	evutil_socket_t fd = bufferevent_getfd(under ? under : c->bev);
	int err = 0;
	socklen_t len = sizeof(err);
	if (fd >= 0 && getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len) == 0 && err)
		return err;
	if (saved == EAGAIN || saved == EWOULDBLOCK || saved == EINTR || saved == EINPROGRESS)
		return 0;
	return saved;
}

static void event_cb(struct bufferevent *bev, short what, void *arg)
{
	struct conn *c = arg;
	if (what & BEV_EVENT_CONNECTED) {
		if (c->connecting) {
			c->connecting = false;
			log_info(c->ctx, "connected");
			if (!c->closing && c->ops->on_connected)
				c->ops->on_connected(c->ud);
			return;
		}
		if (c->ssl && !c->tls_up) {
			c->tls_up = true;
			char desc[128];
			tls_describe(c->ssl, desc, sizeof(desc));
			log_info(c->ctx, "TLS established: %s, peer certificate: %s", desc,
				 tls_peer_verdict(c->ssl));
			if (!c->closing)
				c->ops->on_tls(c->ud);
			/* The peer's first bytes over TLS may have come in
			 * with the end of the handshake; no further read
			 * event announces them. */
			if (c->bev == bev && !c->closing &&
			    evbuffer_get_length(bufferevent_get_input(bev)) > 0)
				read_cb(bev, c);
		}
		return;
	}
	char why[256];
	unsigned long e, last = 0;
	while ((e = bufferevent_get_openssl_error(bev)) != 0)
		last = e; /* the last one is the most specific */
	if (what & BEV_EVENT_EOF) {
		snprintf(why, sizeof(why), "peer closed the connection");
	} else if (c->ssl && !c->tls_up && tls_alpn_refused(c->ssl)) {
		snprintf(why, sizeof(why),
			 "TLS handshake refused: the client offered ALPN without %s (RFC 7301 "
			 "no_application_protocol, XEP-0368)",
			 tls_alpn_refused(c->ssl));
	} else if (c->ssl && last) {
		char ossl[200];
		ERR_error_string_n(last, ossl, sizeof(ossl));
		snprintf(why, sizeof(why), "%s: %s",
			 c->tls_up ? "TLS error" : "TLS handshake failed", ossl);
	} else if (what & BEV_EVENT_ERROR) {
		int err = socket_error(c);
		const char *step = c->connecting	  ? "connect failed: "
				   : c->ssl && !c->tls_up ? "TLS handshake failed: "
							  : "socket error: ";
		if (err)
			snprintf(why, sizeof(why), "%s%s", step,
				 evutil_socket_error_to_string(err));
		else if (c->tls_up)
			snprintf(why, sizeof(why),
				 "the connection ended without TLS close_notify (the peer's "
				 "process died or the connection was cut)");
		else
			snprintf(why, sizeof(why), "%sthe connection was lost", step);
	} else {
		return;
	}
	c->failed = true;
	c->broken = true;
	/* A handshake we refused ends with OpenSSL's alert (7 bytes) waiting
	 * in the socket's buffer, which the reap below would drop: the peer
	 * would see a bare EOF instead of the reason. One try, never
	 * blocking; the buffer is the socket bufferevent's own (its front is
	 * frozen for others), so it is read in place and the bufferevent
	 * stops writing. */
	struct bufferevent *under = c->ssl ? bufferevent_get_underlying(c->bev) : NULL;
	if (under && !c->tls_up && !(what & BEV_EVENT_EOF)) {
		struct evbuffer *out = bufferevent_get_output(under);
		struct evbuffer_iovec v[1];
		if (evbuffer_get_length(out) > 0 && evbuffer_peek(out, -1, NULL, v, 1) == 1) {
			bufferevent_disable(under, EV_WRITE);
			(void)send(bufferevent_getfd(under), v[0].iov_base, v[0].iov_len,
				   MSG_DONTWAIT | MSG_NOSIGNAL);
		}
	}
	/* bufferevent_openssl reports the end without a read callback for
	 * what came in the same read (a stream error, then close_notify):
	 * the owner gets those last words first. */
	if ((what & BEV_EVENT_EOF) && !c->closing && c->bev == bev &&
	    evbuffer_get_length(bufferevent_get_input(bev)) > 0)
		read_cb(bev, c);
	if (!c->closing)
		conn_close(c, why);
	/* Nothing more can be sent on a broken connection. */
	reap(c);
}

static void timer_cb(evutil_socket_t fd, short what, void *arg)
{
	struct conn *c = arg;
	(void)fd;
	(void)what;
	if (!c->closing)
		c->ops->on_timer(c->ud);
}

void conn_set_timer(struct conn *c, unsigned seconds)
{
	evtimer_del(c->timer);
	if (seconds && !c->closing) {
		struct timeval tv = {(time_t)seconds, 0};
		evtimer_add(c->timer, &tv);
	}
}

static void setup_bev(struct conn *c)
{
	bufferevent_setcb(c->bev, read_cb, NULL, event_cb, c);
	bufferevent_setwatermark(c->bev, EV_READ, 0, c->lim.input_buffer);
	bufferevent_enable(c->bev, EV_WRITE);
	apply_reading(c);
}

/* Everything but the bufferevent; NULL when out of memory. */
static struct conn *conn_alloc(struct event_base *base, const struct sockaddr *peer,
			       socklen_t peerlen, const char *ctx_prefix,
			       const struct conn_limits *lim, const struct conn_ops *ops, void *ud)
{
	struct conn *c = calloc(1, sizeof(*c));
	if (!c)
		return NULL;
	c->base = base;
	c->ops = ops;
	c->ud = ud;
	c->lim = *lim;
	c->id = next_id++;
	snprintf(c->prefix, sizeof(c->prefix), "%s", ctx_prefix);
	char port[16] = "0";
	if (getnameinfo(peer, peerlen, c->peer, sizeof(c->peer), port, sizeof(port),
			NI_NUMERICHOST | NI_NUMERICSERV) != 0)
		snprintf(c->peer, sizeof(c->peer), "?");
	c->port = (unsigned)atoi(port);
	conn_set_label(c, NULL);
	c->timer = evtimer_new(base, timer_cb, c);
	c->closer = evtimer_new(base, closer_cb, c);
	c->reaper = event_new(base, -1, 0, reap_cb, c);
	c->soon = event_new(base, -1, 0, soon_cb, c);
	if (!c->ctx || !c->timer || !c->closer || !c->reaper || !c->soon) {
		struct event *evs[] = {c->timer, c->closer, c->reaper, c->soon};
		for (size_t i = 0; i < FG_ARRAY_LEN(evs); i++)
			if (evs[i])
				event_free(evs[i]);
		free(c->ctx);
		free(c);
		return NULL;
	}
	return c;
}

static void conn_discard(struct conn *c)
{
	conn_free_now(&c);
}

static void no_event(evutil_socket_t fd, short what, void *arg)
{
	(void)fd, (void)what, (void)arg;
}

/* libevent keeps a small record for every descriptor number it has ever
 * watched and frees none before the loop ends. Made as connections came,
 * one per session, they landed among each session's allocations and each
 * kept a page of the heap from going back when the sessions closed: RSS
 * stayed 36 MB above the start after 10,000 idle sessions ended
 * (bench/compare.py --metrics idle), with 0.3 MB of live data. They are
 * now made ahead, FD_BLOCK numbers at a time, together: a socket is
 * duplicated onto each free number (F_DUPFD never takes one in use, so
 * other threads may open files meanwhile), watched once and closed. */
#define FD_BLOCK 4096

static struct {
	struct event_base *base;
	int upto; /* numbers below have their record */
} reserved;

int conn_reserve_fd_slots(struct event_base *base, int upto)
{
	if (reserved.base != base)
		reserved.base = base, reserved.upto = 3;
	if (upto <= reserved.upto)
		return 0;
	int sv[2];
	if (socketpair(AF_UNIX, SOCK_STREAM, 0, sv) != 0)
		return 0;
	struct event *ev = event_new(base, -1, 0, no_event, NULL);
	int made = 0, want = reserved.upto;
	while (ev && want < upto) {
		int fd = fcntl(sv[0], F_DUPFD, want);
		if (fd < 0)
			break; /* the open-files limit */
		if (fd < upto && event_assign(ev, base, fd, EV_READ, no_event, NULL) == 0 &&
		    event_add(ev, NULL) == 0) {
			event_del(ev);
			made++;
		}
		close(fd);
		want = fd + 1;
	}
	reserved.upto = want > upto ? want : upto;
	if (ev)
		event_free(ev);
	close(sv[0]);
	close(sv[1]);
	return made;
}

/* Called with each new connection's descriptor. */
static void reserve_ahead(struct event_base *base, int fd)
{
	if (reserved.base != base || fd + FD_BLOCK / 4 >= reserved.upto)
		conn_reserve_fd_slots(base, fd + FD_BLOCK);
}

struct conn *conn_new(struct event_base *base, int fd, const struct sockaddr *peer,
		      socklen_t peerlen, const char *ctx_prefix, const struct conn_limits *lim,
		      const struct conn_ops *ops, void *ud)
{
	reserve_ahead(base, fd);
	struct conn *c = conn_alloc(base, peer, peerlen, ctx_prefix, lim, ops, ud);
	if (!c) {
		close(fd);
		return NULL;
	}
	evutil_make_socket_nonblocking(fd);
	int one = 1;
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	c->bev = bufferevent_socket_new(base, fd, BEV_OPT_CLOSE_ON_FREE);
	if (!c->bev || !evbuffer_add_cb(bufferevent_get_output(c->bev), socket_out_cb, c)) {
		if (!c->bev)
			close(fd);
		conn_discard(c);
		return NULL;
	}
	setup_bev(c);
	return c;
}

struct conn *conn_connect(struct event_base *base, const struct sockaddr *sa, socklen_t salen,
			  const char *ctx_prefix, const struct conn_limits *lim,
			  const struct conn_ops *ops, void *ud)
{
	struct conn *c = conn_alloc(base, sa, salen, ctx_prefix, lim, ops, ud);
	if (!c)
		return NULL;
	c->bev = bufferevent_socket_new(base, -1, BEV_OPT_CLOSE_ON_FREE);
	if (!c->bev || !evbuffer_add_cb(bufferevent_get_output(c->bev), socket_out_cb, c)) {
		conn_discard(c);
		return NULL;
	}
	c->connecting = true;
	setup_bev(c);
	/* Errors, immediate ones included, arrive through event_cb. */
	bufferevent_socket_connect(c->bev, sa, (int)salen);
	evutil_socket_t fd = bufferevent_getfd(c->bev);
	if (fd >= 0) {
		reserve_ahead(base, fd);
		int one = 1;
		setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	}
	return c;
}

void conn_set_ops(struct conn *c, const struct conn_ops *ops, void *ud)
{
	assert(ops != NULL && ops->on_closed != NULL);
	c->ops = ops;
	c->ud = ud;
}

/* Throws away what is buffered from the plaintext side; returns how much. */
static size_t drain_plaintext(struct conn *c)
{
	struct evbuffer *in = bufferevent_get_input(c->bev);
	size_t n = evbuffer_get_length(in);
	evbuffer_drain(in, n);
	c->st.bytes_in += n;
	c->st.discarded_after_starttls += n;
	return n;
}

int conn_start_tls(struct conn *c, SSL_CTX *ctx, size_t *discarded)
{
	if (c->ssl || c->closing)
		return FG_ERR;
	/* Anything the peer sent after <starttls/> is thrown away unread:
	 * it was sent before the peer could know TLS was agreed, so it can
	 * only be an injection (cf. CVE-2011-0411). */
	size_t n = drain_plaintext(c);
	if (discarded)
		*discarded = n;
	return stack_tls(c, ctx, NULL, NULL);
}

int conn_accept_tls(struct conn *c, SSL_CTX *ctx, const char *alpn)
{
	if (c->ssl || c->closing || c->connecting)
		return FG_ERR;
	/* Nothing may have come in the clear yet: the owner calls this at
	 * accept, before the first read. */
	assert(evbuffer_get_length(bufferevent_get_input(c->bev)) == 0);
	c->direct_tls = true;
	return stack_tls(c, ctx, NULL, alpn);
}

int conn_connect_tls(struct conn *c, SSL_CTX *ctx, const char *domain, const char *alpn)
{
	if (c->ssl || c->closing || c->connecting)
		return FG_ERR;
	drain_plaintext(c); /* nothing: we speak first */
	c->direct_tls = true;
	return stack_tls(c, ctx, domain, alpn);
}

bool conn_direct_tls(const struct conn *c)
{
	return c->direct_tls;
}

int conn_start_tls_client(struct conn *c, SSL_CTX *ctx, const char *domain)
{
	if (c->ssl || c->closing)
		return FG_ERR;
	/* Whatever came after <proceed/> in the clear is not TLS: drop it. */
	drain_plaintext(c);
	return stack_tls(c, ctx, domain, NULL);
}

void conn_status(const struct conn *c, void *json_row)
{
	json_t *r = json_row;
	char desc[160];
	tls_describe(conn_ssl(c), desc, sizeof(desc));
	char peer[INET6_ADDRSTRLEN + 16];
	snprintf(peer, sizeof(peer), strchr(c->peer, ':') ? "[%s]:%u" : "%s:%u", c->peer, c->port);
	json_object_set_new(r, "id", json_integer(c->id));
	json_object_set_new(r, "peer", json_string(peer));
	json_object_set_new(r, "tls", json_string(desc));
	/* How TLS came: at connect (XEP-0368 Direct TLS), or by STARTTLS. */
	json_object_set_new(r, "tls_mode",
			    json_string(!c->tls_up	? "none"
					: c->direct_tls ? "direct"
							: "starttls"));
	char alpn[64];
	if (tls_alpn_selected(conn_ssl(c), alpn, sizeof(alpn)))
		json_object_set_new(r, "alpn", json_string(alpn));
	json_object_set_new(r, "bytes_in", json_integer((json_int_t)c->st.bytes_in));
	json_object_set_new(r, "bytes_out", json_integer((json_int_t)c->st.bytes_out));
	json_object_set_new(r, "stanzas_in", json_integer((json_int_t)c->st.stanzas_in));
	json_object_set_new(r, "stanzas_out", json_integer((json_int_t)c->st.stanzas_out));
	/* Back-pressure at a glance: what waits for the peer, and whether we
	 * stopped reading it (its own output full, or a recipient it feeds). */
	json_object_set_new(r, "output_pending", json_integer((json_int_t)conn_output_pending(c)));
	json_object_set_new(r, "reading",
			    json_string(c->held	    ? "held"
					: c->paused ? "paused"
						    : "yes"));
}

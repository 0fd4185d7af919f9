/* A connection: socket, TLS, buffers, timers, back-pressure, one close path.
 *
 * conn knows nothing of XMPP. Its owner (a stream) gets the bytes that
 * arrived, tells it what to send, when to start TLS and when to close. */
#ifndef FG_CONN_H
#define FG_CONN_H

#include <event2/event.h>
#include <openssl/ssl.h>
#include <stdbool.h>
#include <stddef.h>
#include <sys/socket.h>

struct conn;

struct conn_ops {
	/* Bytes that arrived (all that is buffered, contiguous). Returns how
	 * many it used; the rest stays buffered. Not called while closing. */
	size_t (*on_data)(void *ud, const char *data, size_t len);
	/* The TLS handshake finished. */
	void (*on_tls)(void *ud);
	/* An outbound connection (conn_connect) is established. May be NULL
	 * for inbound connections. */
	void (*on_connected)(void *ud);
	/* The timer set with conn_set_timer() fired. */
	void (*on_timer)(void *ud);
	/* The connection is gone; the owner must drop its pointer. reason
	 * is for the log. Called once, from the loop, never from inside a
	 * conn_* call the owner made. */
	void (*on_closed)(void *ud, const char *reason);
	/* The output fell to half of output_queue: room for more. May be NULL.
	 * Not called while closing. */
	void (*on_drained)(void *ud);
};

struct conn_limits {
	size_t output_queue; /* stop reading the peer above this many queued bytes */
	size_t input_buffer; /* read at most this much ahead of the parser */
};

/* Takes ownership of fd. ctx_prefix names the kind ("s2s-in", "c2s"). */
struct conn *conn_new(struct event_base *base, int fd, const struct sockaddr *peer,
		      socklen_t peerlen, const char *ctx_prefix, const struct conn_limits *lim,
		      const struct conn_ops *ops, void *ud);

/* The log context of every line about this connection:
 * "s2s-in #42 [127.0.0.1]:40122" plus whatever conn_set_label() added. */
const char *conn_ctx(const struct conn *c);
void conn_set_label(struct conn *c, const char *label);
unsigned conn_id(const struct conn *c);
const char *conn_peer(const struct conn *c); /* "127.0.0.1" */

/* Starts a non-blocking connect to sa; on_connected or on_closed (with the
 * reason, e.g. "connect failed: Connection refused") follows. */
struct conn *conn_connect(struct event_base *base, const struct sockaddr *sa, socklen_t salen,
			  const char *ctx_prefix, const struct conn_limits *lim,
			  const struct conn_ops *ops, void *ud);

/* Hands c to another owner: its callbacks go to ops and ud from now on
 * (happy.c gives the connection that won a race to the stream). */
void conn_set_ops(struct conn *c, const struct conn_ops *ops, void *ud);

int conn_write(struct conn *c, const char *data, size_t len);

/* Switches to TLS as the server. Bytes already buffered from the plaintext
 * side are discarded unread (returned in *discarded); data written before
 * this call still goes out in plaintext first (the <proceed/>). */
int conn_start_tls(struct conn *c, SSL_CTX *ctx, size_t *discarded);
/* Switches to TLS as the client, with SNI = domain (tls_client_prepare). */
int conn_start_tls_client(struct conn *c, SSL_CTX *ctx, const char *domain);
/* Direct TLS (XEP-0368): TLS from the first byte, no STARTTLS. As the
 * server, right after conn_new (before anything was read), accepting only
 * ALPN alpn when the client offers ALPN (tls_server_alpn); as the client,
 * from on_connected, with SNI = domain and ALPN alpn offered. on_tls
 * follows, or on_closed with the handshake's failure. */
int conn_accept_tls(struct conn *c, SSL_CTX *ctx, const char *alpn);
int conn_connect_tls(struct conn *c, SSL_CTX *ctx, const char *domain, const char *alpn);
bool conn_direct_tls(const struct conn *c);
SSL *conn_ssl(const struct conn *c); /* NULL until TLS is up */
bool conn_secure(const struct conn *c);

/* One timer per connection; a new call replaces the old one. 0 stops it. */
void conn_set_timer(struct conn *c, unsigned seconds);

/* Stops reading, sends what is queued (up to a grace period), then closes
 * the socket and calls on_closed. Safe to call more than once and from any
 * callback. */
void conn_close(struct conn *c, const char *reason);
bool conn_closing(const struct conn *c);
/* Frees at once, without callbacks: only for the daemon's final exit. */
void conn_free_now(struct conn **c);

/* Stops (hold true) or resumes reading the peer for a reason of the
 * owner's (a recipient this peer feeds is full), apart from the pause the
 * connection's own full output causes; reading runs when neither holds.
 * Bytes already read are handed to on_data again, from the loop, when the
 * hold ends. */
void conn_hold_input(struct conn *c, bool hold);
bool conn_input_held(const struct conn *c);

/* Bytes queued to the peer, in our buffers and the TLS layer's. */
size_t conn_output_pending(const struct conn *c);
/* Bytes the peer has taken so far (written minus pending): progress. */
unsigned long long conn_flushed(const struct conn *c);
/* Counters for status and tests. */
struct conn_stats {
	unsigned long long bytes_in, bytes_out;
	unsigned long long discarded_after_starttls;
	unsigned read_pauses;			    /* times back-pressure stopped reading */
	unsigned holds;				    /* times the owner held the input */
	unsigned long long stanzas_in, stanzas_out; /* counted by the owner */
};
const struct conn_stats *conn_stats(const struct conn *c);
void conn_count_stanza(struct conn *c, bool in);

/* The connection's part of a `fedgate status` row: peer, TLS version and
 * cipher, bytes and stanzas, into a jansson object (json_t *). */
void conn_status(const struct conn *c, void *json_row);

/* Has libevent make its per-descriptor records for the free numbers below
 * upto now, together, rather than one per session among the sessions'
 * memory (see conn.c); conn_new and conn_connect call it a block ahead.
 * Never touches a descriptor in use. Returns how many were made. */
int conn_reserve_fd_slots(struct event_base *base, int upto);

#endif

/* An inbound XMPP stream: the stream core shared by every role -- header
 * exchange, stream features, STARTTLS, the SASL restart, stream errors,
 * timers and the close, as RFC 6120 §4-§5 describe -- and the operations a
 * role registers to do the rest. Two roles take inbound streams: c2s (a
 * client: SASL, binding, its stanzas; c2s.c) and s2s-in (a partner's
 * server: SASL EXTERNAL, Server Dialback, the partner's stanzas; s2s_in.c).
 * The core never looks at what kind of peer it talks to; it asks the role. */
#ifndef FG_STREAM_H
#define FG_STREAM_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/socket.h>
#include <time.h>

struct conn;
struct fg_conf;
struct xml_node;
struct xmpp_server;
struct stream;

enum stream_state {
	STREAM_WAIT_HEADER, /* connected, or restarted: waiting for <stream:stream> */
	STREAM_NEGOTIATING, /* our header and features sent */
	STREAM_TLS_HANDSHAKE,
	STREAM_READY, /* authenticated: stanzas flow */
	STREAM_CLOSING,
};

/* Flags, kept apart from the state: they accumulate. */
enum {
	SF_SECURE = 1 << 0,	   /* TLS is up */
	SF_HEADER_SENT = 1 << 1,   /* our <stream:stream> went out */
	SF_AUTHED = 1 << 2,	   /* SASL succeeded (stream_authenticated) */
	SF_STARTTLS = 1 << 3,	   /* <starttls/> came: nothing after it is parsed */
	SF_RESTART = 1 << 4,	   /* SASL success: the next bytes are a new stream */
	SF_DIRECT_TLS = 1 << 9,	   /* TLS from the first byte (XEP-0368), never STARTTLS */
	SF_IDLE_TIMEOUT = 1 << 10, /* closing because the peer went silent: maybe gone */
};

/* What a role does on the streams it takes. Every function gets the
 * stream and the role's own state (what attach returned). */
struct stream_role {
	const char *name;	/* the connection's label: "c2s", "s2s-in" */
	const char *direction;	/* the `fedgate status` row's: "c2s", "in" */
	const char *content_ns; /* jabber:client, jabber:server */
	bool s2s;		/* a server peer: the header's from names its domain,
				   dialback's db: prefix is declared */
	/* Per-stream state; NULL when out of memory. */
	void *(*attach)(struct xmpp_server *srv, struct stream *s);
	void (*detach)(void *rs);
	/* After the core's header checks, before our header goes out: the
	 * role may refuse (it calls stream_error and returns false). */
	bool (*on_header)(struct stream *s, void *rs);
	/* Features for the stream's state into f: FG_OK / FG_NOMEM. */
	int (*features)(struct stream *s, void *rs, struct xml_node *f);
	/* Before authentication, every element (starttls too): false when the
	 * role refused it with a stream error. May be NULL. */
	bool (*allows)(struct stream *s, void *rs, const struct xml_node *el);
	/* An element before authentication that is not <starttls/>: true
	 * when the role handled it. el stays the caller's. */
	bool (*negotiate)(struct stream *s, void *rs, const struct xml_node *el);
	/* A stanza (taken) on an authenticated stream. */
	void (*stanza)(struct stream *s, void *rs, struct xml_node *st);
	/* Whether the peer must secure the stream before anything else, so
	 * that what the role did not take gets policy-violation ("send
	 * <starttls/> first") instead of not-authorized. NULL: always. */
	bool (*tls_required)(const struct stream *s, const void *rs);
	/* The stream enters CLOSING (nothing more is routed to it). May be
	 * NULL. */
	void (*closing)(struct stream *s, void *rs);
	/* Seconds an authenticated stream may stay silent. */
	unsigned (*idle_timeout)(const struct stream *s, const void *rs);
	/* The stanza size limit once authenticated. */
	unsigned (*stanza_limit)(const struct fg_conf *conf);
	/* The peer ended the stream with a <stream:error/>; why has its
	 * condition and text. Called before the stream closes. May be NULL. */
	void (*peer_error)(struct stream *s, void *rs, const char *why);
	/* The connection is gone (reason: why), just before the stream is
	 * freed. May be NULL. */
	void (*closed)(struct stream *s, void *rs, const char *reason);
	/* The stream became READY (authenticated; after a SASL restart, once
	 * the new header came). May be NULL. */
	void (*ready)(struct stream *s, void *rs);
	/* A READY stream's output fell below half of [limits] output_queue
	 * with nothing of its own waiting: others may write (a route using
	 * a bidirectional stream, XEP-0288). May be NULL. */
	void (*drained)(struct stream *s, void *rs);
	/* The role's fields of the `fedgate status` row (a json_t object).
	 * May be NULL. */
	void (*status)(const struct stream *s, const void *rs, void *json_row);
};

/* Takes ownership of fd. On allocation failure closes fd and returns NULL. */
struct stream *stream_accept(struct xmpp_server *srv, const struct stream_role *role, int fd,
			     const struct sockaddr *peer, socklen_t peerlen);
/* The same on a Direct TLS listener (XEP-0368): the TLS handshake comes
 * first (ALPN xmpp-server for s2s roles, xmpp-client for c2s), then the
 * stream, already secure. */
struct stream *stream_accept_tls(struct xmpp_server *srv, const struct stream_role *role, int fd,
				 const struct sockaddr *peer, socklen_t peerlen);
/* Sends a stream error (our header first if we have not sent it yet) and
 * closes. condition is an RFC 6120 §4.9.3 element name. */
void stream_error(struct stream *s, const char *condition, const char *text);
/* A peer's <stream:error/> (err) in an admin's words, the same for both
 * directions: "the peer said: <condition/> 'text'". */
void stream_peer_said(const struct xml_node *err, char *buf, size_t len);
struct tls_verdict;
/* Why we refuse a peer's certificate for domain: self-signed, expired, not
 * valid for this name, untrusted issuer, then, for our log (for_peer
 * false), tls_peer_verify's whole verdict with its advice to our admin,
 * or, for the peer (a SASL failure's or a stream error's text), only what
 * it says of the certificate itself (the names it carries). Public facts
 * only: no secret. */
void stream_cert_problem(const struct tls_verdict *v, const char *domain, bool for_peer, char *buf,
			 size_t len);
/* Frees at once, without callbacks: only for the daemon's final exit. */
void stream_free_now(struct stream *s);
const char *stream_state_name(enum stream_state st);
enum stream_state stream_state(const struct stream *s);
const char *stream_peer(const struct stream *s);
bool stream_is_s2s(const struct stream *s);
/* The prepared domain the peer named in 'from' (s2s), or NULL. */
const char *stream_remote(const struct stream *s);
/* This stream's `fedgate status` row (a json_t object). */
void stream_status(const struct stream *s, void *json_row);
/* The server's list of live streams. */
struct stream *stream_next(const struct stream *s);
void stream_list_add(struct stream **head, struct stream *s);
void stream_list_remove(struct stream **head, struct stream *s);

/* ---- for the roles ---- */

void stream_send(struct stream *s, const struct xml_node *n);
/* Hands a stanza (in jabber:server; taken on true) to the peer: written
 * while the connection has room ([limits] output_queue / 2 pending), else
 * queued, holding the sender that fed it (xmpp_hold_feeder) until the peer
 * reads. false, not taken, when the stream is closing or its pending
 * output would pass output_queue: the caller diverts it (offline, a
 * bounce). A peer that leaves stanzas waiting for [timeouts]
 * stalled_output is closed; what waits goes back to the router. */
bool stream_offer(struct stream *s, struct xml_node *st);
size_t stream_queued_bytes(const struct stream *s);
/* Frees what waits for room without handing it back: for a role that
 * keeps copies of it elsewhere (XEP-0198's unacknowledged queue). */
void stream_discard_queue(struct stream *s);
/* When the peer last sent a byte. */
time_t stream_heard_at(const struct stream *s);
/* READY, nothing of its own waiting and room in the connection: a stanza
 * offered now is written at once. */
bool stream_has_room(const struct stream *s);
/* Traffic of ours on a READY stream: its idle clock starts again (a
 * bidirectional s2s stream that carries mostly our stanzas is in use). */
void stream_touch(struct stream *s);
void stream_send_raw(struct stream *s, const char *data, size_t len);
bool stream_secure(const struct stream *s);
unsigned stream_flags(const struct stream *s);
const char *stream_ctx(const struct stream *s);
const char *stream_local(const struct stream *s);
/* The stream id we sent in our header (dialback keys are made over it). */
const char *stream_id(const struct stream *s);
struct conn *stream_conn(const struct stream *s);
struct xmpp_server *stream_server(const struct stream *s);
/* The role's state (what its attach returned). */
void *stream_role_state(const struct stream *s);
void stream_count_stanza(struct stream *s, bool in);
/* SASL succeeded for who (a domain on s2s, a bare JID on c2s): the stream
 * restarts (RFC 6120 §6.4.6) and is then authenticated. */
void stream_authenticated(struct stream *s, const char *who, const char *method);
/* How the stream authenticated ("SASL over TLS", "TLS Dialback"...), or
 * NULL before. */
const char *stream_method(const struct stream *s);
/* What SASL authenticated (a domain, a bare JID), or NULL. */
const char *stream_authed(const struct stream *s);
/* Authenticated without a restart (dialback, XEP-0220): READY now, if the
 * stream is still negotiating. method is a string literal, for status. */
void stream_ready(struct stream *s, const char *method);
/* A live stream by its connection id (conn_id), or NULL: answers that
 * come back later must not reach a stream that is gone. */
struct stream *stream_by_conn_id(struct xmpp_server *srv, unsigned id);

/* Every inbound stream that heard nothing since the last call gives its
 * XML parser back until its next bytes (xmlstream_sleep): most of what an
 * idle session holds. Called from a timer (the program's memory keeper). */
void stream_doze(struct xmpp_server *srv);

#endif

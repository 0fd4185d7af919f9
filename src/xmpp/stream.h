/* An inbound XMPP stream (s2s or c2s): header exchange, stream features,
 * STARTTLS, stream errors and the close, as RFC 6120 §4-§5 describe.
 * Authentication (SASL, dialback) and stanza routing build on it. */
#ifndef FG_STREAM_H
#define FG_STREAM_H

#include <stdbool.h>
#include <sys/socket.h>

struct xml_node;

struct xmpp_server;

enum stream_kind { STREAM_S2S_IN, STREAM_C2S };

enum stream_state {
	STREAM_WAIT_HEADER, /* connected, or restarted: waiting for <stream:stream> */
	STREAM_NEGOTIATING, /* our header and features sent */
	STREAM_TLS_HANDSHAKE,
	STREAM_READY, /* authenticated: stanzas flow */
	STREAM_CLOSING,
};

struct stream;

/* Takes ownership of fd. On allocation failure closes fd and returns NULL. */
struct stream *stream_accept(struct xmpp_server *srv, enum stream_kind kind, int fd,
			     const struct sockaddr *peer, socklen_t peerlen);
/* Sends a stream error (our header first if we have not sent it yet) and
 * closes. condition is an RFC 6120 §4.9.3 element name. */
void stream_error(struct stream *s, const char *condition, const char *text);
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
/* For c2s.c: what a client stream's session needs of its stream. */
void stream_send(struct stream *s, const struct xml_node *n);
void stream_send_raw(struct stream *s, const char *data, size_t len);
bool stream_secure(const struct stream *s);
const char *stream_ctx(const struct stream *s);
const char *stream_local(const struct stream *s);
void stream_count_stanza(struct stream *s, bool in);
/* SASL succeeded for who (a domain on s2s, a bare JID on c2s): the stream
 * restarts (RFC 6120 §6.4.6) and is then authenticated. */
void stream_authenticated(struct stream *s, const char *who, const char *method);
/* The server's list of live streams. */
struct stream *stream_next(const struct stream *s);
void stream_list_add(struct stream **head, struct stream *s);
void stream_list_remove(struct stream **head, struct stream *s);

#endif

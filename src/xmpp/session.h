/* The registry of bound client sessions (RFC 6120 §7): who is online, by
 * bare JID, each resource with its presence state, and the way to hand a
 * stanza to one. c2s.c creates a session when a client binds a resource;
 * the router, presence, roster, offline storage and services find sessions
 * here without knowing about client streams, SASL or binding.
 *
 * When a session ends (its stream closes, or a new session takes its
 * resource) it leaves the registry at once, so what is routed afterwards
 * goes to other resources or to offline storage, and the session-end
 * observer the presence code registered (xmpp.h) sends its unavailable
 * presence. */
#ifndef FG_SESSION_H
#define FG_SESSION_H

#include "xml.h"

#include <stdbool.h>

struct caps;
struct stream;
struct strmap;
struct xmpp_server;
struct session;

/* Presence state, kept by presence.c. */
struct session_presence {
	bool initial;	 /* it has sent its initial presence */
	bool interested; /* it asked for the roster: gets roster pushes */
	int priority;
	struct xml_node *last;	 /* its available presence; NULL while unavailable */
	struct strmap *directed; /* full JIDs it sent directed presence to */
};

/* offline.c's pacing of stored messages to this session: a take is out
 * (busy), storage may hold more for it once it has room (more), and what
 * the last take handed over that the client had no room for yet (held[next
 * .. n-1], in jabber:server, oldest first: routed anew if the session
 * ends before). */
struct session_offline {
	bool busy;
	bool more;
	unsigned long take; /* the take out (busy), among all the sessions' */
	struct xml_node **held;
	size_t n, next;
};

/* A session for full (bare/resource) on stream s, not yet registered;
 * NULL when out of memory. */
struct session *session_new(struct xmpp_server *srv, struct stream *s, const char *bare,
			    const char *resource, const char *full);
/* Into the registry: FG_OK / FG_NOMEM. */
int session_register(struct session *sess);
/* Leaves the registry and tells the session-end observer; safe to call
 * more than once. */
void session_end(struct session *sess);
/* Ends (if not yet) and frees; accepts NULL, clears the pointer. */
void session_free(struct session **sess);

/* The first bound session of a user (bare JID), or NULL; then
 * session_next. */
struct session *session_first(struct xmpp_server *srv, const char *bare);
struct session *session_next(const struct session *sess);
struct session *session_find(struct xmpp_server *srv, const char *bare, const char *resource);
unsigned session_count(const struct xmpp_server *srv);
/* Every session (the subscription refresh, status). fn may end the
 * session it is given. */
void session_each(struct xmpp_server *srv, void (*fn)(void *ud, struct session *sess), void *ud);

const char *session_full(const struct session *sess);
const char *session_bare(const struct session *sess);
const char *session_resource(const struct session *sess);
struct session_presence *session_presence(struct session *sess);
/* XEP-0191 §3.2: a session that asked for the blocklist gets its pushes
 * (blocking.c). */
bool session_wants_blocklist(const struct session *sess);
void session_set_wants_blocklist(struct session *sess);
/* XEP-0280: whether the client asked for carbon copies (carbons.c). */
bool session_carbons(const struct session *sess);
void session_set_carbons(struct session *sess, bool on);
/* The entity capabilities its presence showed (caps.h), NULL when none;
 * set takes the reference given and drops the one held. */
struct caps *session_caps(const struct session *sess);
void session_set_caps(struct session *sess, struct caps *c);
/* offline.c's state of the session. */
struct session_offline *session_offline(struct session *sess);
/* How many stanzas the session can take now without a full queue: 0 while
 * hibernating or while its stream's output waits; with stream management
 * what its unacknowledged queue has left; else at most batch. */
unsigned session_room(const struct session *sess, unsigned batch);
/* Hands stanza (in jabber:server; taken on true) to the client's stream
 * (stream_offer): false when the client's output queue is full. */
bool session_offer(struct session *sess, struct xml_node *st);
/* The same, answering the sender (resource-constraint) or counting the
 * drop when the queue is full: for what has no better place to go. */
void session_deliver(struct session *sess, struct xml_node *st);
/* Answers the session's own iq (taken) with a result carrying payload
 * (taken, may be NULL), from the account's bare JID. */
void session_reply(struct session *sess, struct xml_node *iq, struct xml_node *payload);
/* Ends the session's stream with a stream error (conflict,
 * not-authorized...); a hibernating session just ends (and is freed). */
void session_close(struct session *sess, const char *condition, const char *text);

/* XEP-0352 client state: inactive holds presence updates and chat states
 * (bounded, the latest presence per sender) until active or until
 * something else comes. FG_OK / FG_NOMEM. */
int session_csi(struct session *sess, bool active);

/* XEP-0198 stream management. A session with SM enabled keeps a copy of
 * what it sends until the client acknowledges it; a resumable one may
 * outlive its stream: detached, it hibernates in the registry for [users]
 * resumption_window, keeping what comes for it (up to cap), until a new
 * stream of the same account resumes it (attach) or the window passes.
 * When it ends, what the client did not acknowledge is routed anew. */
struct sm;
/* The session's SM state, NULL before <enable/>. */
struct sm *session_sm(const struct session *sess);
/* The session's stream, NULL while hibernating. */
struct stream *session_stream(const struct session *sess);
/* Turns SM on (once): FG_OK / FG_NOMEM. resumable: a token is made and
 * registered (resumption quietly off when that fails). */
int session_sm_enable(struct session *sess, unsigned cap, bool resumable);
/* Sends <r/> now. */
void session_sm_request(struct session *sess);
/* The session a resumption token names, or NULL. */
struct session *session_by_sm_id(struct xmpp_server *srv, const char *id);
bool session_hibernating(const struct session *sess);
/* The stream is gone without a clean close: the session hibernates (it
 * then owns itself). May end and free it at once when out of memory. */
void session_detach(struct session *sess);
/* A new stream resumes the session (hibernating, or taken from its old
 * stream, which the caller closes). */
void session_attach(struct session *sess, struct stream *s);
/* After <resumed/>: sends again what is still unacknowledged. */
void session_sm_resend(struct session *sess);
/* Ends every hibernating session (shutdown). */
void session_drop_hibernating(struct xmpp_server *srv);

#endif

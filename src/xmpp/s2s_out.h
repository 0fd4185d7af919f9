/* One outbound server-to-server stream (SPEC §3, outbound) for a (local,
 * remote) domain pair, owned by that pair's route (route.c): connected
 * through proxy_fqdn or the SRV targets, secured and authenticated with the
 * most preferred method the partner's settings allow and the peer offers,
 * never anything weaker. Every step goes into a report an admin can read.
 *
 * The stream tells its route what happened through the ops the route gave
 * it; it never sees the route's queue or retry delay. */
#ifndef FG_S2S_OUT_H
#define FG_S2S_OUT_H

#include "dialback.h"
#include "policy.h"
#include "xml.h"

#include <stdbool.h>

struct conn;
struct xmpp_server;
struct s2s_out;

struct s2s_out_ops {
	/* Authenticated: the owner may write stanzas now. */
	void (*ready)(void *owner);
	/* The stream failed and goes away: the owner forgets it during this
	 * call. why is the reason an admin can act on, report every step so
	 * far (one per line, the failure last); attempted says whether DNS or
	 * the network was tried (a failure that counts for the retry delay);
	 * cond is the stanza error it means for senders: remote-server-timeout
	 * when the peer did not finish in time, remote-server-not-found for
	 * everything else (RFC 6120 §8.3.3.15-16). */
	void (*failed)(void *owner, enum db_cond cond, const char *why, const char *report,
		       bool attempted);
	/* A stream that was ready closed (idle, or the peer ended it);
	 * reason says why. */
	void (*closed)(void *owner, const char *reason);
	/* A ready stream's output fell to half of [limits] output_queue:
	 * room to write more. */
	void (*drained)(void *owner);
};

/* A stream in its first state; nothing happens until s2s_out_begin. NULL
 * when out of memory. */
struct s2s_out *s2s_out_new(struct xmpp_server *srv, const char *local, const char *remote,
			    const struct s2s_out_ops *ops, void *owner);
/* Starts DNS and the connection for partner p (NULL: refused). May fail at
 * once, calling ops->failed before it returns. */
void s2s_out_begin(struct s2s_out *o, const struct partner *p);
/* Ends the stream as failed with reason (ops->failed is called). */
void s2s_out_fail(struct s2s_out *o, const char *reason);
/* Writes stanza on a ready stream; false when it could not be queued. */
bool s2s_out_write(struct s2s_out *o, const struct xml_node *stanza);
/* A ready stream with room: less than half of [limits] output_queue
 * waits for the peer. */
bool s2s_out_has_room(const struct s2s_out *o);
/* Bytes written that the peer has not taken yet, and those it took. */
size_t s2s_out_pending(const struct s2s_out *o);
unsigned long long s2s_out_flushed(const struct s2s_out *o);
/* Authenticated: stanzas may be written. */
bool s2s_out_is_ready(const struct s2s_out *o);
/* What kind of failure ended the stream, a word from a fixed set for
 * metrics: dns, connect, tls, auth, timeout, peer-error (its stream
 * error), stream (anything later or else). */
const char *s2s_out_fail_kind(const struct s2s_out *o);
/* The steps so far, one per line. */
const char *s2s_out_report(const struct s2s_out *o);
/* How a ready stream authenticated ("SASL over TLS", "TLS Dialback",
 * "TCP Dialback"), or NULL before. */
const char *s2s_out_method(const struct s2s_out *o);

/* The receiving role of Server Dialback (XEP-0220): asks the peer, as
 * remote's authoritative server, whether key is valid for (local, remote,
 * id). cb runs exactly once, with DB_VALID, DB_INVALID or DB_ERROR (cond
 * the condition to answer with, why says what went wrong). FG_OK /
 * FG_NOMEM. */
typedef void (*s2s_out_verified)(void *ud, int verdict, enum db_cond cond, const char *why);
int s2s_out_verify(struct s2s_out *o, const char *id, const char *key, s2s_out_verified cb,
		   void *ud);

/* This stream's `fedgate status` fields into a json_t object. */
void s2s_out_status(const struct s2s_out *o, void *json_row);
/* Frees at once, without telling the owner (final exit). Accepts NULL. */
void s2s_out_free_now(struct s2s_out *o);
/* The same for every outbound stream still alive, those whose route has
 * forgotten them while they close too (final exit, after the routes). */
void s2s_out_free_all(struct xmpp_server *srv);

/* SPEC §3, the choice an outbound stream makes on each <features/>: the
 * most preferred method its allowed methods (AUTH_* bits) and the offer
 * permit, never a weaker one. Pure, so that the probe predicts with the
 * very rule the streams follow. */
enum s2s_out_next {
	S2S_NEXT_STARTTLS,	   /* ask for TLS */
	S2S_NEXT_SASL,		   /* SASL EXTERNAL with our certificate */
	S2S_NEXT_DIALBACK,	   /* TCP or TLS Dialback, as the stream is */
	S2S_NEXT_FAIL_NO_TLS,	   /* no STARTTLS offered; the settings need TLS */
	S2S_NEXT_FAIL_CERT,	   /* the peer's certificate rules SASL out */
	S2S_NEXT_FAIL_NO_EXTERNAL, /* no SASL EXTERNAL offered, nothing else allowed */
};
enum s2s_out_next s2s_out_choose(unsigned methods, bool secure, bool tls_offered, bool cert_ok,
				 bool external);

/* Writes the header of an outbound server-to-server stream (jabber:server,
 * dialback declared, version 1.0) from local to remote on c: what every
 * outbound stream and the probe send first, and after each restart. */
void s2s_out_write_header(struct conn *c, const char *local, const char *remote);

/* stream_doze for outbound streams (stream.h). */
void s2s_out_doze(struct xmpp_server *srv);

#endif

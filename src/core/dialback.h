/* Server Dialback (XEP-0220) with XEP-0185 keys, without I/O.
 *
 * The stream code owns sockets, timers and routing; this file owns the
 * decisions that are easy to get subtly wrong and are security relevant:
 * how a key is made and checked, which elements are well formed, and which
 * answers match a request we really sent on that very stream. Keeping it
 * free of I/O lets every rule be tested with plain function calls.
 *
 * Vocabulary: "local" is always one of our domains, "remote" the peer's,
 * whatever the direction. Domains handed to the tracker must be prepared
 * (struct db_msg and struct jid hold prepared domains), because matching is
 * byte comparison. */
#ifndef FG_DIALBACK_H
#define FG_DIALBACK_H

#include <stdbool.h>
#include <stddef.h>

#include "xml.h"

#define DIALBACK_KEY_HEX_LEN 64 /* our keys: hex of an HMAC-SHA256 */
/* Keys from peers are opaque: XEP-0185 is only a recommendation, so another
 * server's keys may have another length or alphabet. This bounds them. */
#define DIALBACK_KEY_MAX     256
#define DIALBACK_ID_MAX	     256 /* stream ids in db:verify */
#define DIALBACK_MAX_PENDING 16	 /* default cap on open verifications per stream */
#define DIALBACK_MAX_PAIRS   256 /* default cap on domain pairs per stream */

/* ---- Keys (XEP-0185) ---- */

/* key = hex(HMAC-SHA256(hex(SHA-256(secret)), receiving ' ' originating ' '
 * stream_id)), lower case, NUL-terminated. The HMAC key is the hex text of
 * the digest, not its 32 bytes: that is what the XEP's own example computes
 * and what other servers do, so keys interoperate in both directions.
 * FG_INVAL for NULL arguments or an empty secret (anyone could forge keys
 * made with it), FG_ERR if OpenSSL fails. */
int dialback_key(const char *secret, const char *receiving, const char *originating,
		 const char *stream_id, char out_hex[DIALBACK_KEY_HEX_LEN + 1]);

/* True iff key is the key dialback_key() gives for these inputs. Hex of
 * either case is accepted. The time taken depends only on the key's length,
 * never on which characters are wrong or whether one is not hex, so a peer
 * cannot guess a valid key byte by byte. */
bool dialback_key_check(const char *secret, const char *receiving, const char *originating,
			const char *stream_id, const char *key);

/* ---- Elements ---- */

enum db_elem { DB_RESULT, DB_VERIFY };

/* A request carries a key and no type; answers carry one of the others. */
enum db_type { DB_REQUEST, DB_VALID, DB_INVALID, DB_ERROR };

/* Stanza error conditions a dialback error may carry (XEP-0220 §2.4, plus
 * internal-server-error for our own failures). DB_COND_OTHER stands for any
 * other or missing condition a peer sends. */
enum db_cond {
	DB_COND_NONE,
	DB_COND_ITEM_NOT_FOUND,		  /* the 'to' domain is not hosted here */
	DB_COND_REMOTE_CONNECTION_FAILED, /* could not connect to the authoritative server */
	DB_COND_REMOTE_SERVER_NOT_FOUND,  /* it does not exist, or failed in step 3 */
	DB_COND_REMOTE_SERVER_TIMEOUT,	  /* it went away without answering */
	DB_COND_POLICY_VIOLATION,	  /* e.g. dialback before required TLS */
	DB_COND_NOT_AUTHORIZED,		  /* a certificate or other proof is required */
	DB_COND_FORBIDDEN,		  /* the authoritative server said invalid */
	DB_COND_NOT_ACCEPTABLE,		  /* the identity could not be established */
	DB_COND_INTERNAL_SERVER_ERROR,
	DB_COND_OTHER,
};

/* A parsed dialback element. All strings are malloc'ed and owned here. */
struct db_msg {
	enum db_elem elem;
	enum db_type type;
	char *from;	   /* prepared domain */
	char *to;	   /* prepared domain */
	char *id;	   /* DB_VERIFY only: the stream id, as sent */
	char *key;	   /* DB_REQUEST only: the key, surrounding white space removed */
	enum db_cond cond; /* DB_ERROR only */
};

/* Why dialback_parse() refused an element. */
enum db_perr {
	DB_PERR_OK = 0,
	DB_PERR_NOT_DIALBACK, /* not <result/> or <verify/> in jabber:server:dialback */
	DB_PERR_BAD_TYPE,     /* 'type' other than valid, invalid, error */
	DB_PERR_NO_FROM,
	DB_PERR_BAD_FROM, /* 'from' is no valid domain */
	DB_PERR_NO_TO,
	DB_PERR_BAD_TO,
	DB_PERR_NO_ID, /* db:verify without 'id' */
	DB_PERR_BAD_ID,
	DB_PERR_NO_KEY,	 /* a request without a key */
	DB_PERR_BAD_KEY, /* too long, inner white space, control characters */
	DB_PERR_NOMEM,
};

/* Classifies el and fills *out (zeroed first, cleared again on refusal).
 * Accepts any tree, including NULL and text nodes. A dialback error with a
 * missing or unknown condition is accepted as DB_COND_OTHER: it can only
 * make a verification fail, so being strict would gain nothing and would
 * leave the request hanging until a timeout. */
enum db_perr dialback_parse(const struct xml_node *el, struct db_msg *out);
void dialback_msg_clear(struct db_msg *m);
const char *dialback_perr_str(enum db_perr e);
/* "item-not-found", ...; NULL for DB_COND_NONE. */
const char *dialback_cond_name(enum db_cond c);
/* Its error type as RFC 6120 §8.3.3 assigns it ("cancel", "wait", ...). */
const char *dialback_cond_type(enum db_cond c);

/* Builders; NULL when out of memory or an argument is missing. Elements are
 * in the dialback namespace, so they serialize with the db: prefix. */
struct xml_node *dialback_result_request(const char *from, const char *to, const char *key);
struct xml_node *dialback_result_answer(const char *from, const char *to, bool valid);
struct xml_node *dialback_verify_request(const char *from, const char *to, const char *id,
					 const char *key);
struct xml_node *dialback_verify_answer(const char *from, const char *to, const char *id,
					bool valid);
/* <db:result|verify from to [id] type='error'><error type=...><cond/></error>;
 * the error type (cancel, modify, auth, wait) follows from the condition as
 * RFC 6120 §8.3.3 assigns it. id is used for DB_VERIFY only. */
struct xml_node *dialback_error(enum db_elem elem, const char *from, const char *to, const char *id,
				enum db_cond cond);
/* The same with <text xml:lang='en'>why</text> after the condition
 * (RFC 6120 §8.3.2), so that the peer's admin reads the reason. */
struct xml_node *dialback_error_why(enum db_elem elem, const char *from, const char *to,
				    const char *id, enum db_cond cond, const char *why);

/* ---- Per-stream tracker ----
 *
 * Dialback authorizes domain pairs, not streams: one stream can carry a
 * partner's primary and additional domains, each verified on its own, and an
 * answer is only meaningful for a request sent on the same stream. The
 * tracker remembers which requests are open so that anything else is
 * reported as unsolicited (the 2012 dialback attacks sent answers nobody
 * asked for), and it caps open requests because each one costs us an
 * outbound connection. */

enum db_role {
	DB_ROLE_IN,  /* a stream the peer opened: it asks us to authorize its pairs */
	DB_ROLE_OUT, /* a stream we opened: we ask, and send db:verify requests */
};

struct db_tracker_limits {
	size_t max_pending; /* open requests; 0 = DIALBACK_MAX_PENDING */
	size_t max_pairs;   /* all entries, settled ones too; 0 = DIALBACK_MAX_PAIRS */
};

struct db_tracker;

/* lim NULL takes the defaults. NULL when out of memory. */
struct db_tracker *dialback_tracker_new(enum db_role role, const struct db_tracker_limits *lim);
void dialback_tracker_free(struct db_tracker **t);

/* DB_ROLE_IN: the peer sent a db:result request (m->to local, m->from
 * remote). A new request for a pair starts it over, unauthorized until
 * verified again, since the peer asked anew.
 *   FG_OK      the pair is pending: verify the key
 *   FG_AGAIN   already pending: drop this copy, one verification is enough
 *   FG_LIMIT   too many open requests: answer policy-violation or close
 *   FG_INVAL   not a result request, wrong role, or the pair was found
 *              invalid (the stream should have been closed)
 *   FG_NOMEM */
int dialback_tracker_request(struct db_tracker *t, const struct db_msg *m);

/* The verification of a pending pair ended: on DB_ROLE_IN with the
 * authoritative server's verdict, on DB_ROLE_OUT when the caller gives up
 * waiting (DB_ERROR). DB_VALID and DB_INVALID settle the pair; DB_ERROR
 * forgets it (a dialback error is not fatal and the pair may be tried
 * again). FG_NOTFOUND when the pair was not pending: a late or unsolicited
 * outcome the caller drops. */
int dialback_tracker_settle(struct db_tracker *t, const char *local, const char *remote,
			    enum db_type outcome);

/* DB_ROLE_OUT: we sent a request. DB_RESULT: from local to remote, id NULL.
 * DB_VERIFY: from local to remote with the id of the inbound stream the key
 * came on. Return codes as dialback_tracker_request(). */
int dialback_tracker_sent(struct db_tracker *t, enum db_elem elem, const char *local,
			  const char *remote, const char *id);

/* An answer arrived on this stream (m->to local, m->from remote, and m->id
 * for db:verify). FG_OK when it answers an open request of ours: a db:result
 * answer settles the pair as dialback_tracker_settle() does, a db:verify
 * answer closes the entry and the caller relays the outcome to the inbound
 * stream named by m->id. FG_NOTFOUND for anything else, on either role:
 * unsolicited, drop it. FG_INVAL when m is a request. */
int dialback_tracker_answer(struct db_tracker *t, const struct db_msg *m);

/* May stanzas flow from remote to local (DB_ROLE_IN) or from local to remote
 * (DB_ROLE_OUT) on this stream? */
bool dialback_tracker_is_authorized(const struct db_tracker *t, const char *local,
				    const char *remote);
size_t dialback_tracker_pending(const struct db_tracker *t);

/* Calls fn for every open request, e.g. to fail them when the stream closes
 * (XEP-0220 treats that as an error answer). id is NULL for DB_RESULT. fn
 * must not change the tracker. */
typedef void (*db_pending_fn)(void *arg, enum db_elem elem, const char *local, const char *remote,
			      const char *id);
void dialback_tracker_foreach_pending(const struct db_tracker *t, db_pending_fn fn, void *arg);

/* ---- Authoritative role ---- */

typedef bool (*db_is_local_fn)(void *arg, const char *domain);

/* Answers a db:verify request received on a stream. The key names its
 * originating domain in 'to'; we vouch only for keys of our own domains,
 * so any other 'to' gets the item-not-found dialback error, which XEP-0220
 * makes non-fatal for the stream. Otherwise the answer is valid iff the key
 * is the one we issue for (from, to, id). *verdict (may be NULL) gets
 * DB_VALID, DB_INVALID or DB_ERROR. NULL when req is not a db:verify
 * request or memory ran out. */
struct xml_node *dialback_authoritative(const char *secret, const struct db_msg *req,
					db_is_local_fn is_local, void *arg, enum db_type *verdict);

#endif

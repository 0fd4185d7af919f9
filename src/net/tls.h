/* OpenSSL contexts and what a stream reports about its TLS session. */
#ifndef FG_TLS_H
#define FG_TLS_H

#include <openssl/ssl.h>
#include <stdbool.h>
#include <stddef.h>
#include <time.h>

#include "pin.h"
#include "policy.h"

/* A server-side context for inbound streams: our certificate and key, TLS
 * 1.2 and newer only, a client certificate requested but not required (its
 * verdict is recorded for SASL EXTERNAL, never a reason to fail the
 * handshake), trust anchors from ca_file or the system store. On failure
 * returns NULL and writes a sentence an admin can act on into err. */
SSL_CTX *tls_server_ctx_new(const char *cert, const char *key, const char *ca_file, char *err,
			    size_t errlen);
void tls_ctx_free(SSL_CTX **ctx);
/* Session resumption for the clients and peers of a server context
 * (tls_tickets.c): stateless tickets sealed with keys that rotate every
 * lifetime seconds, in memory only (a restart or reload ends every
 * ticket); a ticket is honoured while its key is current or previous and
 * its session younger than lifetime. lifetime 0: no resumption, every
 * connection does a full handshake (also what a context has without this
 * call). FG_OK, or FG_ERR with err set. */
int tls_server_tickets(SSL_CTX *ctx, long lifetime, char *err, size_t errlen);
/* The same with a clock of the caller's (NULL: time()), for tests. */
int tls_server_tickets_clock(SSL_CTX *ctx, long lifetime, time_t (*clock)(void), char *err,
			     size_t errlen);
/* Outbound resumption (tls_tickets.c): a cache in the client context of
 * one session per (local domain, remote domain), kept from the ticket a
 * peer sends after the handshake, offered on the next stream of the same
 * pair, used once with TLS 1.3, dropped when older than lifetime seconds,
 * when the peer's certificate has expired, when the stream fails, and with
 * the context (a reload). At most max sessions (0: a default of 1000), the
 * oldest dropped first. A resumed stream gets the certificate verdict of
 * the full handshake it descends from: the peer's certificate is matched
 * against the domain again, its chain verdict is kept. lifetime 0: no
 * cache, every outbound stream does a full handshake. FG_OK, or FG_ERR
 * with err set. */
int tls_client_tickets(SSL_CTX *ctx, long lifetime, char *err, size_t errlen);
int tls_client_tickets_clock(SSL_CTX *ctx, long lifetime, size_t max, time_t (*clock)(void),
			     char *err, size_t errlen);
/* Arms ctx: the next tls_client_prepare() on it for remote offers the
 * session cached for (local, remote) and keeps what that connection gets
 * under the same pair; NULLs disarm. Connections prepared without it
 * (probe) neither resume nor fill the cache. */
void tls_client_resume_for(SSL_CTX *ctx, const char *local, const char *remote);
/* Forgets the session of (local, remote): its stream failed before it
 * was ready. True when that stream had offered a session (TLS 1.3) and
 * got no new ticket: the failure may be the resumption's (a server that
 * issues tickets it cannot resume), so the pair does full handshakes for
 * lifetime seconds and the caller may retry at once. */
bool tls_client_forget(SSL_CTX *ctx, const char *local, const char *remote);
/* Sessions in ctx's cache. */
size_t tls_client_cached(SSL_CTX *ctx);
/* For tls.c: offers the armed session to ssl before its handshake. */
int tls_client_offer(SSL *ssl, const char *host);
/* For tls.c, on a resumed connection: the chain verdict of the full
 * handshake (X509_V_OK or an X509_V_ERR_*), and its words in why (may be
 * NULL); X509_V_ERR_UNSPECIFIED when the session carries none. */
long tls_resumed_verdict(const SSL *ssl, char *why, size_t whylen);
/* For tls_tickets.c: the first chain error met in this handshake
 * (X509_V_OK if none) and its explanation (NULL if none). */
long tls_first_error(const SSL *ssl, const char **why);

/* Sends our close_notify (RFC 8446 §6.1) on an established session
 * without waiting for the peer's; a no-op once sent or after a fatal
 * error. The alert goes to ssl's write BIO; the caller flushes it. */
void tls_close_notify(SSL *ssl);

/* A client-side context for outbound streams, set up like the server one:
 * our certificate and key go out as the client certificate (the peer needs
 * it for SASL EXTERNAL), and the peer's chain is verified but never fails the
 * handshake, because dialback may still be allowed; tls_peer_verify() reads
 * the verdict afterwards. */
SSL_CTX *tls_client_ctx_new(const char *cert, const char *key, const char *ca_file, char *err,
			    size_t errlen);
/* Before SSL_connect(): sends domain (a lower-case A-label domain, as jid.c
 * prepares it) as SNI and remembers it as the name the peer's certificate
 * must prove. FG_OK, FG_INVAL for a name that cannot be an SNI host name,
 * FG_NOMEM. */
int tls_client_prepare(SSL *ssl, const char *domain);
/* Direct TLS (XEP-0368), before the handshake. Server side: proto (a
 * string literal, "xmpp-server" or "xmpp-client") is the only ALPN
 * protocol this connection accepts; a client offering ALPN without it is
 * refused with no_application_protocol (RFC 7301 §3.2), one offering no
 * ALPN is served. Client side: offers proto. FG_OK or FG_NOMEM. */
int tls_server_alpn(SSL *ssl, const char *proto);
int tls_client_alpn(SSL *ssl, const char *proto);
/* The protocol a Direct TLS handshake was refused for (the client offered
 * ALPN without it), or NULL. */
const char *tls_alpn_refused(const SSL *ssl);
/* The ALPN protocol the handshake agreed on, into buf; NULL if none. */
const char *tls_alpn_selected(const SSL *ssl, char *buf, size_t len);
/* The domain given to tls_client_prepare(), or NULL. */
const char *tls_expected_host(const SSL *ssl);

/* Which RFC 6125 identifier in the certificate matched an XMPP server
 * domain (RFC 6120 13.7.1.2); the Subject CN never counts. */
enum tls_id_result {
	TLS_ID_NO_MATCH = 0,
	TLS_ID_MATCH_DNS_ID,   /* subjectAltName dNSName, maybe "*.domain" */
	TLS_ID_MATCH_SRV_ID,   /* otherName id-on-dnsSRV "_xmpp-server.domain" */
	TLS_ID_MATCH_XMPPADDR, /* otherName id-on-xmppAddr "domain" */
};

/* "DNS-ID", "SRV-ID", "XmppAddr" or "no match". */
const char *tls_id_name(enum tls_id_result r);
/* Checks whether cert names domain (an A-label domain) as an XMPP server,
 * with no regard to its chain or dates. why (may be NULL) receives a sentence
 * an admin can act on: the name that matched, or the names the certificate
 * does carry and why none of them fits. */
enum tls_id_result tls_cert_matches(X509 *cert, const char *domain, char *why, size_t whylen);

/* All we know about a peer's certificate after the handshake; what SASL
 * EXTERNAL (XEP-0178) decides on and what `status` shows. */
struct tls_verdict {
	bool has_cert;	       /* the peer presented a certificate */
	bool chain_ok;	       /* it chains to one of our trust anchors, in date */
	long chain_error;      /* X509_V_OK or the first X509_V_ERR_* met */
	enum tls_id_result id; /* how it names the domain, if it does */
	/* OpenSSL verified it with a DNSSEC-secure TLSA record (dane.c); it
	 * then counts as chain_ok, and with dane_usage 3 (DANE-EE) as proving
	 * the domain whatever its names. */
	bool dane_ok;
	int dane_usage;	 /* the matching record's usage; -1 without DANE */
	char text[1024]; /* chain and identity verdicts in words */
	/* The identity verdict alone: it speaks only of the certificate, so
	 * the peer may hear it, unlike the chain advice in text, which tells
	 * our own admin what to change here. */
	char id_text[512];
	/* The peer key's pin (pin.h; "" without a certificate) and its
	 * extended key usage in words, for status and probe. */
	char spki[PIN_B64_LEN + 1];
	char eku[48];
	/* What the partner's pins said: tls_verdict_pins(). */
	enum tls_pin { TLS_PIN_NONE, TLS_PIN_MATCH, TLS_PIN_MISMATCH } pin;
};

/* Fills v for the peer of ssl (either side) against domain; domain NULL
 * means the one given to tls_client_prepare(). Returns FG_OK only when the
 * certificate proves domain (present, chain_ok and an identity match),
 * FG_ERR when it does not, FG_INVAL without a session or a domain; v is
 * filled in every case. */
int tls_peer_verify(SSL *ssl, const char *domain, struct tls_verdict *v);

/* "TLSv1.3 TLS_AES_256_GCM_SHA384" */
void tls_describe(const SSL *ssl, char *buf, size_t len);
/* The peer certificate's validity period and extended key usage, for
 * `fedgate probe`: "valid from 2026-01-01 to 2027-01-01 (in 390 days);
 * extended key usage: TLS server, TLS client". "no certificate" without
 * one. A server certificate without TLS client in its EKU cannot
 * authenticate an outbound stream at peers that check it. */
void tls_peer_details(const SSL *ssl, char *buf, size_t len);
/* The verdict on the peer's certificate: "none", "valid" or OpenSSL's reason. */
const char *tls_peer_verdict(const SSL *ssl);
/* The newest OpenSSL error as text (and clears the queue). */
void tls_last_error(char *buf, size_t len);

/* ---- keys and purposes (tls_keys.c) ---- */

/* The pin of cert's public key: SHA-256 of its DER SubjectPublicKeyInfo,
 * as `openssl pkey -pubin -outform der | openssl dgst -sha256` gives it.
 * False (out "") when it cannot be encoded. */
bool tls_cert_pin(X509 *cert, char out[PIN_B64_LEN + 1]);
/* "TLS server, TLS client", "TLS server only", "any (no extension)",
 * "neither TLS server nor TLS client". */
void tls_cert_eku(X509 *cert, char *buf, size_t len);
/* Whether cert may stand for a server on an s2s stream in either
 * direction: no extendedKeyUsage, or one that includes serverAuth,
 * clientAuth or anyExtendedKeyUsage. Since 2026 public CAs issue
 * serverAuth alone, which a TLS client certificate check would refuse. */
bool tls_cert_eku_s2s(X509 *cert);
/* Applies a partner's pins to v (filled by tls_peer_verify for domain):
 * no pins leave v as it is (TLS_PIN_NONE); a listed key makes the chain
 * count as trusted whatever the CAs say (TLS_PIN_MATCH); any other key,
 * or none, is TLS_PIN_MISMATCH, with both fingerprints in v->text. FG_OK
 * when v proves domain afterwards. */
int tls_verdict_pins(struct tls_verdict *v, const char *domain, const struct domain_list *pins);

#endif

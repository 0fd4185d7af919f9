/* OpenSSL contexts and what a stream reports about its TLS session. */
#ifndef FG_TLS_H
#define FG_TLS_H

#include <openssl/ssl.h>
#include <stddef.h>

/* A server-side context for inbound streams: our certificate and key, TLS
 * 1.2 and newer only, a client certificate requested but not required (its
 * verdict is recorded for SASL EXTERNAL, never a reason to fail the
 * handshake), trust anchors from ca_file or the system store. On failure
 * returns NULL and writes a sentence an admin can act on into err. */
SSL_CTX *tls_server_ctx_new(const char *cert, const char *key, const char *ca_file, char *err,
			    size_t errlen);
void tls_ctx_free(SSL_CTX **ctx);

/* "TLSv1.3 TLS_AES_256_GCM_SHA384" */
void tls_describe(const SSL *ssl, char *buf, size_t len);
/* The verdict on the peer's certificate: "none", "valid" or OpenSSL's reason. */
const char *tls_peer_verdict(const SSL *ssl);
/* The newest OpenSSL error as text (and clears the queue). */
void tls_last_error(char *buf, size_t len);

#endif

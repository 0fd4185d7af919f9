#include "tls.h"

#include <openssl/err.h>
#include <openssl/x509v3.h>
#include <stdio.h>
#include <string.h>

void tls_last_error(char *buf, size_t len)
{
	unsigned long e = ERR_get_error();
	unsigned long next;
	/* The last queued error is the most specific one. */
	while ((next = ERR_get_error()) != 0)
		e = next;
	if (e == 0)
		snprintf(buf, len, "unknown TLS error");
	else
		ERR_error_string_n(e, buf, len);
}

/* Accept any client certificate during the handshake: a bad certificate
 * only rules out SASL EXTERNAL later, while dialback may still be allowed.
 * The verdict stays available through SSL_get_verify_result(). */
static int accept_any(int preverify_ok, X509_STORE_CTX *x509)
{
	(void)preverify_ok;
	(void)x509;
	return 1;
}

SSL_CTX *tls_server_ctx_new(const char *cert, const char *key, const char *ca_file, char *err,
			    size_t errlen)
{
	char why[256];
	SSL_CTX *ctx = SSL_CTX_new(TLS_server_method());
	if (!ctx) {
		tls_last_error(why, sizeof(why));
		snprintf(err, errlen, "cannot create a TLS context: %s", why);
		return NULL;
	}
	SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
	SSL_CTX_set_options(ctx, SSL_OP_NO_COMPRESSION | SSL_OP_NO_RENEGOTIATION |
					 SSL_OP_CIPHER_SERVER_PREFERENCE);
	/* Idle streams are the common case; let OpenSSL drop its 34 KiB of
	 * record buffers between reads. */
	SSL_CTX_set_mode(ctx, SSL_MODE_RELEASE_BUFFERS);
	if (SSL_CTX_set_cipher_list(ctx, "HIGH:!aNULL:!eNULL:!MD5:!RC4:!3DES:!CAMELLIA:!ARIA") != 1)
		goto fail_ssl;
	if (SSL_CTX_use_certificate_chain_file(ctx, cert) != 1) {
		tls_last_error(why, sizeof(why));
		snprintf(err, errlen,
			 "cannot load the certificate %s: %s (set [tls] certificate to a PEM file, "
			 "or run 'fedgate init' to make one)",
			 cert, why);
		goto fail;
	}
	if (SSL_CTX_use_PrivateKey_file(ctx, key, SSL_FILETYPE_PEM) != 1) {
		tls_last_error(why, sizeof(why));
		snprintf(err, errlen, "cannot load the private key %s: %s (set [tls] key)", key,
			 why);
		goto fail;
	}
	if (SSL_CTX_check_private_key(ctx) != 1) {
		snprintf(err, errlen, "the key %s does not match the certificate %s", key, cert);
		goto fail;
	}
	if (ca_file && ca_file[0]) {
		if (SSL_CTX_load_verify_locations(ctx, ca_file, NULL) != 1) {
			tls_last_error(why, sizeof(why));
			snprintf(err, errlen, "cannot load the CA file %s: %s (set [tls] ca_file)",
				 ca_file, why);
			goto fail;
		}
	} else if (SSL_CTX_set_default_verify_paths(ctx) != 1) {
		goto fail_ssl;
	}
	SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, accept_any);
	/* Sessions are not resumed across streams: each stream is verified
	 * afresh, which keeps certificate verdicts simple and current. */
	SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_OFF);
	SSL_CTX_set_num_tickets(ctx, 0);
	SSL_CTX_set_options(ctx, SSL_OP_NO_TICKET);
	ERR_clear_error();
	return ctx;
fail_ssl:
	tls_last_error(why, sizeof(why));
	snprintf(err, errlen, "TLS setup failed: %s", why);
fail:
	SSL_CTX_free(ctx);
	ERR_clear_error();
	return NULL;
}

void tls_ctx_free(SSL_CTX **ctx)
{
	if (!ctx || !*ctx)
		return;
	SSL_CTX_free(*ctx);
	*ctx = NULL;
}

void tls_describe(const SSL *ssl, char *buf, size_t len)
{
	if (!ssl) {
		snprintf(buf, len, "plaintext");
		return;
	}
	snprintf(buf, len, "%s %s", SSL_get_version(ssl), SSL_get_cipher_name(ssl));
}

const char *tls_peer_verdict(const SSL *ssl)
{
	if (!ssl)
		return "none";
	X509 *peer = SSL_get0_peer_certificate(ssl);
	if (!peer)
		return "none";
	long v = SSL_get_verify_result(ssl);
	return v == X509_V_OK ? "valid" : X509_verify_cert_error_string(v);
}

/* TLS session resumption for our clients and peers: stateless tickets
 * (RFC 8446 §4.6.1; RFC 5077 for TLS 1.2) sealed with keys of our own.
 *
 * OpenSSL's own ticket keys are made once per context and never change, so
 * a key that leaked would open every ticket until the next restart. Ours
 * rotate: a new key every `lifetime` seconds, the previous one still
 * accepted, anything
 * older refused, which makes the client do a full handshake. OpenSSL also
 * refuses a session older than the context's timeout, set to lifetime.
 * The keys live in memory only, in the context: a restart or a reload (a
 * new context, maybe a new CA file) ends every ticket, so no resumed
 * session outlives the trust settings its certificate verdict was made
 * under. */
#include "tls.h"

#include "fg.h"

#include <assert.h>
#include <openssl/core_names.h>
#include <openssl/evp.h>
#include <openssl/rand.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

struct ticket_key {
	unsigned char name[16];
	unsigned char aes[32];
	unsigned char hmac[32];
	time_t born; /* 0: no key */
};

struct ticket_ring {
	struct ticket_key key[2]; /* [0] current, [1] previous */
	long lifetime;		  /* seconds */
	time_t (*clock)(void);	  /* time, or a test's clock */
};

static int ring_idx = -1;
static pthread_once_t ring_once = PTHREAD_ONCE_INIT;

static void ring_free(void *parent, void *ptr, CRYPTO_EX_DATA *ad, int idx, long argl, void *argp)
{
	(void)parent, (void)ad, (void)idx, (void)argl, (void)argp;
	if (ptr)
		OPENSSL_clear_free(ptr, sizeof(struct ticket_ring));
}

static void ring_index(void)
{
	ring_idx = CRYPTO_get_ex_new_index(CRYPTO_EX_INDEX_SSL_CTX, 0, NULL, NULL, NULL, ring_free);
}

static time_t wall_clock(void)
{
	return time(NULL);
}

static bool key_make(struct ticket_key *k, time_t now)
{
	if (RAND_bytes(k->name, sizeof(k->name)) != 1 ||
	    RAND_priv_bytes(k->aes, sizeof(k->aes)) != 1 ||
	    RAND_priv_bytes(k->hmac, sizeof(k->hmac)) != 1)
		return false;
	k->born = now;
	return true;
}

/* The current key made young enough: rotated once per lifetime. */
static bool ring_rotate(struct ticket_ring *r, time_t now)
{
	if (r->key[0].born && now - r->key[0].born < r->lifetime)
		return true;
	struct ticket_key fresh;
	if (!key_make(&fresh, now))
		return false;
	/* After a long idle time the old current key is too old to keep. */
	if (r->key[0].born && now - r->key[0].born < 2 * r->lifetime)
		r->key[1] = r->key[0];
	else
		OPENSSL_cleanse(&r->key[1], sizeof(r->key[1]));
	r->key[0] = fresh;
	OPENSSL_cleanse(&fresh, sizeof(fresh));
	return true;
}

static int hmac_key(EVP_MAC_CTX *hctx, const struct ticket_key *k)
{
	OSSL_PARAM params[] = {
		OSSL_PARAM_construct_octet_string(OSSL_MAC_PARAM_KEY, (void *)k->hmac,
						  sizeof(k->hmac)),
		OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST, (char *)"SHA256", 0),
		OSSL_PARAM_construct_end(),
	};
	return EVP_MAC_CTX_set_params(hctx, params) == 1;
}

/* SSL_CTX_set_tlsext_ticket_key_evp_cb: enc 1 seals a new ticket with the
 * current key; enc 0 finds the key a ticket names: 2 use it and issue a
 * new ticket, 0 unknown (full handshake), -1 error. A new ticket every
 * time, because a TLS 1.3 client uses each ticket once (RFC 8446 C.4) and
 * would otherwise have none left for its next connection. */
static int ticket_cb(SSL *ssl, unsigned char name[16], unsigned char *iv, EVP_CIPHER_CTX *cctx,
		     EVP_MAC_CTX *hctx, int enc)
{
	struct ticket_ring *r = SSL_CTX_get_ex_data(SSL_get_SSL_CTX(ssl), ring_idx);
	if (!r)
		return -1;
	time_t now = r->clock();
	if (!ring_rotate(r, now))
		return -1;
	const EVP_CIPHER *aes = EVP_aes_256_cbc();
	assert(EVP_CIPHER_get_iv_length(aes) <= EVP_MAX_IV_LENGTH);
	if (enc) {
		const struct ticket_key *k = &r->key[0];
		memcpy(name, k->name, sizeof(k->name));
		if (RAND_bytes(iv, EVP_CIPHER_get_iv_length(aes)) != 1 ||
		    EVP_EncryptInit_ex(cctx, aes, NULL, k->aes, iv) != 1 || !hmac_key(hctx, k))
			return -1;
		return 1;
	}
	for (int i = 0; i < 2; i++) {
		const struct ticket_key *k = &r->key[i];
		if (!k->born || memcmp(name, k->name, sizeof(k->name)) != 0)
			continue;
		if (EVP_DecryptInit_ex(cctx, aes, NULL, k->aes, iv) != 1 || !hmac_key(hctx, k))
			return -1;
		return 2;
	}
	return 0;
}

int tls_server_tickets_clock(SSL_CTX *ctx, long lifetime, time_t (*clock)(void), char *err,
			     size_t errlen)
{
	assert(ctx);
	if (lifetime <= 0) {
		/* Every connection does a full handshake. */
		SSL_CTX_set_num_tickets(ctx, 0);
		SSL_CTX_set_options(ctx, SSL_OP_NO_TICKET);
		return FG_OK;
	}
	pthread_once(&ring_once, ring_index);
	struct ticket_ring *r = OPENSSL_zalloc(sizeof(*r));
	if (ring_idx < 0 || !r) {
		OPENSSL_free(r);
		snprintf(err, errlen, "out of memory for the TLS ticket keys");
		return FG_ERR;
	}
	r->lifetime = lifetime;
	r->clock = clock ? clock : wall_clock;
	if (!ring_rotate(r, r->clock()) || SSL_CTX_set_ex_data(ctx, ring_idx, r) != 1) {
		OPENSSL_clear_free(r, sizeof(*r));
		snprintf(err, errlen, "cannot make TLS ticket keys (no randomness?)");
		return FG_ERR;
	}
	/* The session a ticket carries is bound to this service; OpenSSL
	 * refuses to resume without it when client certificates are asked
	 * for, as they are from peers. */
	static const unsigned char sid_ctx[] = "fedgate";
	if (SSL_CTX_set_session_id_context(ctx, sid_ctx, sizeof(sid_ctx) - 1) != 1 ||
	    SSL_CTX_set_tlsext_ticket_key_evp_cb(ctx, ticket_cb) != 1) {
		tls_last_error(err, errlen);
		return FG_ERR;
	}
	SSL_CTX_clear_options(ctx, SSL_OP_NO_TICKET);
	/* Stateless: the server keeps nothing per session. */
	SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_SERVER | SSL_SESS_CACHE_NO_INTERNAL);
	SSL_CTX_set_num_tickets(ctx, 1);
	SSL_CTX_set_timeout(ctx, lifetime);
	return FG_OK;
}

int tls_server_tickets(SSL_CTX *ctx, long lifetime, char *err, size_t errlen)
{
	return tls_server_tickets_clock(ctx, lifetime, NULL, err, errlen);
}

/* TLS session resumption for our clients and peers: stateless tickets
 * (RFC 8446 §4.6.1; RFC 5077 for TLS 1.2) sealed with keys of our own,
 * and, for outbound streams, a cache of the sessions peers give us.
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
 * under.
 *
 * A resumed connection sends no certificates: the peer's certificate comes
 * from the session, and so must the verdict on its chain. Each session
 * carries "facts" (in the ticket we seal, or beside the session in the
 * client cache): when the full handshake verified the chain, its verdict
 * and words, and the SNI it was made for. They decide whether a session may
 * resume at all: not for another SNI (TLS 1.3 does not bind one; 1.2 keeps
 * the first), not once the verdict is older than lifetime (a new ticket at
 * each resumption would otherwise carry it on for ever), not once the
 * certificate has expired; a full handshake verifies again. The identity
 * (which domain the certificate names) and the partner's rules are never
 * part of them: they are checked on every stream, resumed or not. */
#include "tls.h"

#include "fg.h"
#include "strmap.h"

#include <assert.h>
#include <openssl/core_names.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/rand.h>
#include <openssl/x509.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
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

/* ---- the facts a session carries ---- */

#define FACTS_MAGIC "fgv1"

struct facts {
	int64_t verified_at; /* the full handshake, by the ring's clock */
	long code;	     /* X509_V_OK or the first X509_V_ERR_* met */
	char sni[256];	     /* "" without one */
	char why[512];	     /* the explanation of code, "" if none */
};

static void put_u64(unsigned char *p, uint64_t v)
{
	for (int i = 7; i >= 0; i--, v >>= 8)
		p[i] = (unsigned char)(v & 0xff);
}

static uint64_t get_u64(const unsigned char *p)
{
	uint64_t v = 0;
	for (int i = 0; i < 8; i++)
		v = v << 8 | p[i];
	return v;
}

/* magic, verified_at, code, SNI length and bytes, why length and bytes */
#define FACTS_MAX (4 + 8 + 8 + 1 + 255 + 2 + 511)

static size_t facts_encode(const struct facts *f, unsigned char *out)
{
	size_t sni = strnlen(f->sni, 255), why = strnlen(f->why, 511), n = 0;
	memcpy(out, FACTS_MAGIC, 4);
	n += 4;
	put_u64(out + n, (uint64_t)f->verified_at);
	n += 8;
	put_u64(out + n, (uint64_t)(int64_t)f->code);
	n += 8;
	out[n++] = (unsigned char)sni;
	memcpy(out + n, f->sni, sni);
	n += sni;
	out[n++] = (unsigned char)(why >> 8);
	out[n++] = (unsigned char)(why & 0xff);
	memcpy(out + n, f->why, why);
	n += why;
	assert(n <= FACTS_MAX);
	return n;
}

static bool facts_decode(const unsigned char *p, size_t len, struct facts *f)
{
	if (!p || len < 4 + 8 + 8 + 1 + 2 || memcmp(p, FACTS_MAGIC, 4) != 0)
		return false;
	size_t n = 4;
	f->verified_at = (int64_t)get_u64(p + n);
	n += 8;
	f->code = (long)(int64_t)get_u64(p + n);
	n += 8;
	size_t sni = p[n++];
	if (n + sni + 2 > len)
		return false;
	memcpy(f->sni, p + n, sni);
	f->sni[sni] = '\0';
	n += sni;
	size_t why = (size_t)p[n] << 8 | p[n + 1];
	n += 2;
	if (why >= sizeof(f->why) || n + why != len || memchr(f->sni, '\0', sni))
		return false;
	memcpy(f->why, p + n, why);
	f->why[why] = '\0';
	return true;
}

static bool session_facts(const SSL_SESSION *sess, struct facts *f)
{
	void *data = NULL;
	size_t len = 0;
	if (!sess || SSL_SESSION_get0_ticket_appdata((SSL_SESSION *)sess, &data, &len) != 1)
		return false;
	return facts_decode(data, len, f);
}

/* What ssl's session should carry: the facts it resumed with, or those of
 * the full handshake it just made. False for a resumed session without
 * facts, which must then not be carried on. */
static bool facts_of(const SSL *ssl, time_t now, const char *sni, struct facts *f)
{
	memset(f, 0, sizeof(*f));
	if (SSL_session_reused(ssl))
		return session_facts(SSL_get0_session(ssl), f);
	const char *why = NULL;
	f->verified_at = now;
	f->code = tls_first_error(ssl, &why);
	if (f->code == X509_V_OK)
		f->code = SSL_get_verify_result(ssl);
	snprintf(f->sni, sizeof(f->sni), "%s", sni ? sni : "");
	snprintf(f->why, sizeof(f->why), "%s", why ? why : "");
	return true;
}

long tls_resumed_verdict(const SSL *ssl, char *why, size_t whylen)
{
	struct facts f;
	if (!session_facts(SSL_get0_session(ssl), &f)) {
		if (why && whylen)
			snprintf(why, whylen,
				 "the resumed TLS session carries no verdict on the peer's "
				 "certificate");
		return X509_V_ERR_UNSPECIFIED;
	}
	if (why && whylen)
		snprintf(why, whylen, "%s", f.why);
	return f.code;
}

/* May a session with facts f and peer certificate peer resume at now?
 * lifetime bounds how old a verdict may be. */
static bool facts_fresh(const struct facts *f, X509 *peer, time_t now, long lifetime)
{
	if (f->verified_at > (int64_t)now || (int64_t)now - f->verified_at >= lifetime)
		return false;
	/* A chain verdict made before the certificate expired says nothing
	 * about it now; a full handshake finds the expiry. */
	return !peer || X509_cmp_time(X509_get0_notAfter(peer), &now) > 0;
}

/* The SNI of a ClientHello, for ticket_dec(), which runs before OpenSSL
 * publishes it: SSL_client_hello_cb_fn, reading the raw server_name
 * extension (RFC 6066 §3). No name, or one we cannot read, stays NULL:
 * it then matches only tickets made without a name. */
static int sni_idx = -1;
static pthread_once_t sni_once = PTHREAD_ONCE_INIT;

static void sni_free(void *parent, void *ptr, CRYPTO_EX_DATA *ad, int idx, long argl, void *argp)
{
	(void)parent, (void)ad, (void)idx, (void)argl, (void)argp;
	OPENSSL_free(ptr);
}

static int sni_dup(CRYPTO_EX_DATA *to, const CRYPTO_EX_DATA *from, void **from_d, int idx,
		   long argl, void *argp)
{
	(void)to, (void)from, (void)idx, (void)argl, (void)argp;
	*from_d = NULL; /* SSL_dup() must not share it */
	return 1;
}

static void sni_index(void)
{
	sni_idx = SSL_get_ex_new_index(0, NULL, NULL, sni_dup, sni_free);
}

static int hello_sni(SSL *ssl, int *alert, void *arg)
{
	(void)alert, (void)arg;
	const unsigned char *p;
	size_t len;
	if (sni_idx < 0 || SSL_client_hello_get0_ext(ssl, TLSEXT_TYPE_server_name, &p, &len) != 1)
		return SSL_CLIENT_HELLO_SUCCESS;
	/* server_name_list length, then name_type 0 (host_name), its length */
	if (len < 5 || (size_t)(p[0] << 8 | p[1]) != len - 2 || p[2] != TLSEXT_NAMETYPE_host_name)
		return SSL_CLIENT_HELLO_SUCCESS;
	size_t n = (size_t)(p[3] << 8 | p[4]);
	if (n == 0 || n > 255 || 5 + n > len || memchr(p + 5, '\0', n))
		return SSL_CLIENT_HELLO_SUCCESS;
	char *name = OPENSSL_strndup((const char *)p + 5, n);
	char *old = SSL_get_ex_data(ssl, sni_idx);
	if (SSL_set_ex_data(ssl, sni_idx, name) == 1)
		OPENSSL_free(old);
	else
		OPENSSL_free(name);
	return SSL_CLIENT_HELLO_SUCCESS;
}

/* SSL_CTX_set_session_ticket_cb: the facts go into every ticket we seal. */
static int ticket_gen(SSL *ssl, void *arg)
{
	struct ticket_ring *r = arg;
	struct facts f;
	unsigned char buf[FACTS_MAX];
	SSL_SESSION *sess = SSL_get0_session(ssl);
	/* A ticket without facts is refused when it comes back; no need to
	 * fail the connection over it. */
	if (sess &&
	    facts_of(ssl, r->clock(), SSL_get_servername(ssl, TLSEXT_NAMETYPE_host_name), &f) &&
	    SSL_SESSION_set1_ticket_appdata(sess, buf, facts_encode(&f, buf)) != 1)
		ERR_clear_error();
	/* ticket_dec() has run by now: an idle stream need not keep it. */
	if (sni_idx >= 0 && SSL_get_ex_data(ssl, sni_idx)) {
		OPENSSL_free(SSL_get_ex_data(ssl, sni_idx));
		SSL_set_ex_data(ssl, sni_idx, NULL);
	}
	return 1;
}

/* A ticket opened with our keys resumes only with its facts fresh and, in
 * TLS 1.3, for the SNI it was sealed for; otherwise a full handshake (and a
 * new ticket). TLS 1.2 reads tickets before the SNI; there the session
 * keeps the name it was made for. */
static SSL_TICKET_RETURN ticket_dec(SSL *ssl, SSL_SESSION *sess, const unsigned char *keyname,
				    size_t keyname_len, SSL_TICKET_STATUS status, void *arg)
{
	struct ticket_ring *r = arg;
	(void)keyname, (void)keyname_len;
	if (status == SSL_TICKET_FATAL_ERR_MALLOC || status == SSL_TICKET_FATAL_ERR_OTHER)
		return SSL_TICKET_RETURN_ABORT;
	if (status != SSL_TICKET_SUCCESS && status != SSL_TICKET_SUCCESS_RENEW)
		return SSL_TICKET_RETURN_IGNORE_RENEW;
	struct facts f;
	if (!session_facts(sess, &f) ||
	    !facts_fresh(&f, SSL_SESSION_get0_peer(sess), r->clock(), r->lifetime))
		return SSL_TICKET_RETURN_IGNORE_RENEW;
	if (SSL_version(ssl) >= TLS1_3_VERSION) {
		/* SSL_get_servername() knows the name only once the
		 * extensions are final, after this; hello_sni() kept it. */
		const char *sni = sni_idx >= 0 ? SSL_get_ex_data(ssl, sni_idx) : NULL;
		if (strcmp(sni ? sni : "", f.sni) != 0)
			return SSL_TICKET_RETURN_IGNORE_RENEW;
	}
	return SSL_TICKET_RETURN_USE_RENEW;
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
	pthread_once(&sni_once, sni_index);
	SSL_CTX_set_client_hello_cb(ctx, hello_sni, NULL);
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
	    SSL_CTX_set_tlsext_ticket_key_evp_cb(ctx, ticket_cb) != 1 ||
	    SSL_CTX_set_session_ticket_cb(ctx, ticket_gen, ticket_dec, r) != 1) {
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

/* ---- outbound: the sessions peers give us ---- */

#define CACHE_DEFAULT_MAX 1000

/* A pair's entry: a session to offer, or one of two marks (sess NULL).
 * "Offered": a TLS 1.3 session went out on the pair's last stream, and
 * its ticket replaces the mark once the resumption works. "Refused": that
 * stream failed before it was ready, maybe over the resumption itself
 * (a server that issues tickets but cannot resume them, as OpenSSL
 * servers that ask for client certificates without a session id context
 * do, such as Prosody with tickets on); the pair then does full
 * handshakes until the mark is lifetime old, rather than fail every other
 * stream. */
enum cached_kind { CACHED_SESSION, CACHED_OFFERED, CACHED_REFUSED };

struct cached {
	enum cached_kind kind;
	SSL_SESSION *sess; /* CACHED_SESSION: its ticket appdata holds the facts */
	time_t stored;
};

struct client_cache {
	struct strmap *map; /* "local remote" -> struct cached */
	size_t max;
	long lifetime;
	time_t (*clock)(void);
	/* tls_client_resume_for() until the tls_client_prepare() it arms */
	char armed_local[256], armed_remote[256];
};

static int cache_idx = -1, key_idx = -1;
static pthread_once_t cache_once = PTHREAD_ONCE_INIT;

static void cached_free(void *v)
{
	struct cached *c = v;
	if (!c)
		return;
	SSL_SESSION_free(c->sess);
	free(c);
}

static void cache_free(void *parent, void *ptr, CRYPTO_EX_DATA *ad, int idx, long argl, void *argp)
{
	struct client_cache *c = ptr;
	(void)parent, (void)ad, (void)idx, (void)argl, (void)argp;
	if (!c)
		return;
	strmap_free(&c->map, cached_free);
	OPENSSL_free(c);
}

static void key_free(void *parent, void *ptr, CRYPTO_EX_DATA *ad, int idx, long argl, void *argp)
{
	(void)parent, (void)ad, (void)idx, (void)argl, (void)argp;
	OPENSSL_free(ptr);
}

/* SSL_dup() would otherwise share the key and free it twice. */
static int key_dup(CRYPTO_EX_DATA *to, const CRYPTO_EX_DATA *from, void **from_d, int idx,
		   long argl, void *argp)
{
	(void)to, (void)from, (void)idx, (void)argl, (void)argp;
	*from_d = NULL;
	return 1;
}

static void cache_index(void)
{
	cache_idx =
		CRYPTO_get_ex_new_index(CRYPTO_EX_INDEX_SSL_CTX, 0, NULL, NULL, NULL, cache_free);
	key_idx = SSL_get_ex_new_index(0, NULL, NULL, key_dup, key_free);
}

static struct client_cache *cache_of(SSL_CTX *ctx)
{
	pthread_once(&cache_once, cache_index);
	return ctx && cache_idx >= 0 ? SSL_CTX_get_ex_data(ctx, cache_idx) : NULL;
}

/* Domains carry no space, so "local remote" keys no other pair. */
static bool cache_key(char *out, size_t outlen, const char *local, const char *remote)
{
	int n = snprintf(out, outlen, "%s %s", local, remote);
	return n > 0 && (size_t)n < outlen && !strchr(local, ' ') && !strchr(remote, ' ');
}

static void cache_drop(struct client_cache *c, const char *key)
{
	cached_free(strmap_remove(c->map, key));
}

struct oldest {
	const char *key;
	time_t stored;
};

static int find_oldest(void *ud, const char *key, void *value)
{
	struct oldest *o = ud;
	const struct cached *c = value;
	if (!o->key || c->stored < o->stored) {
		o->key = key;
		o->stored = c->stored;
	}
	return 0;
}

/* SSL_CTX_sess_set_new_cb: a session (with TLS 1.3, from a ticket after
 * the handshake) for an armed connection; 1 when we keep it. */
static int session_new(SSL *ssl, SSL_SESSION *sess)
{
	struct client_cache *c = cache_of(SSL_get_SSL_CTX(ssl));
	const char *key = key_idx >= 0 ? SSL_get_ex_data(ssl, key_idx) : NULL;
	struct facts f;
	unsigned char buf[FACTS_MAX];
	if (!c || !key || !SSL_SESSION_is_resumable(sess) ||
	    !facts_of(ssl, c->clock(), tls_expected_host(ssl), &f))
		return 0;
	const struct cached *had = strmap_get(c->map, key);
	if (had && had->kind == CACHED_REFUSED && c->clock() - had->stored < c->lifetime)
		return 0;
	struct cached *e = calloc(1, sizeof(*e));
	if (!e || SSL_SESSION_set1_ticket_appdata(sess, buf, facts_encode(&f, buf)) != 1) {
		free(e);
		ERR_clear_error();
		return 0;
	}
	e->sess = sess;
	e->stored = c->clock();
	void *old = NULL;
	if (strmap_put(c->map, key, e, &old) != FG_OK) {
		free(e);
		return 0;
	}
	cached_free(old);
	/* One ticket is all the next stream needs (servers often send two):
	 * an idle stream need not keep its key. */
	OPENSSL_free(SSL_get_ex_data(ssl, key_idx));
	SSL_set_ex_data(ssl, key_idx, NULL);
	while (strmap_count(c->map) > c->max) {
		struct oldest o = {0};
		strmap_each(c->map, find_oldest, &o);
		assert(o.key);
		char victim[sizeof(c->armed_local) + sizeof(c->armed_remote)];
		snprintf(victim, sizeof(victim), "%s", o.key);
		cache_drop(c, victim);
	}
	return 1;
}

int tls_client_offer(SSL *ssl, const char *host)
{
	struct client_cache *c = cache_of(SSL_get_SSL_CTX(ssl));
	if (!c || !c->armed_remote[0])
		return FG_OK;
	char key[sizeof(c->armed_local) + sizeof(c->armed_remote)];
	bool mine = strcmp(c->armed_remote, host) == 0 &&
		    cache_key(key, sizeof(key), c->armed_local, host);
	c->armed_local[0] = c->armed_remote[0] = '\0';
	if (!mine)
		return FG_OK;
	char *k = OPENSSL_strdup(key);
	if (!k || SSL_set_ex_data(ssl, key_idx, k) != 1) {
		OPENSSL_free(k);
		return FG_OK; /* a full handshake, and nothing kept */
	}
	struct cached *e = strmap_get(c->map, key);
	if (!e)
		return FG_OK;
	struct facts f;
	time_t now = c->clock();
	if (e->kind == CACHED_REFUSED) {
		if (now - e->stored >= c->lifetime)
			cache_drop(c, key);
		return FG_OK;
	}
	if (e->kind == CACHED_OFFERED) {
		/* The last resumption brought no ticket: start afresh. */
		cache_drop(c, key);
		return FG_OK;
	}
	if (!SSL_SESSION_is_resumable(e->sess) || !session_facts(e->sess, &f) ||
	    !facts_fresh(&f, SSL_SESSION_get0_peer(e->sess), now, c->lifetime) ||
	    strcmp(f.sni, host) != 0) {
		cache_drop(c, key);
		return FG_OK;
	}
	if (SSL_set_session(ssl, e->sess) != 1) {
		ERR_clear_error();
		cache_drop(c, key);
		return FG_OK;
	}
	/* RFC 8446 C.4: a TLS 1.3 ticket is used once; this connection
	 * brings the next. A TLS 1.2 session may be offered again. */
	if (SSL_SESSION_get_protocol_version(e->sess) >= TLS1_3_VERSION) {
		SSL_SESSION_free(e->sess);
		e->sess = NULL;
		e->kind = CACHED_OFFERED;
		e->stored = now;
	}
	return FG_OK;
}

void tls_client_resume_for(SSL_CTX *ctx, const char *local, const char *remote)
{
	struct client_cache *c = cache_of(ctx);
	if (!c)
		return;
	c->armed_local[0] = c->armed_remote[0] = '\0';
	if (!local || !remote || strlen(local) >= sizeof(c->armed_local) ||
	    strlen(remote) >= sizeof(c->armed_remote))
		return;
	memcpy(c->armed_local, local, strlen(local) + 1);
	memcpy(c->armed_remote, remote, strlen(remote) + 1);
}

bool tls_client_forget(SSL_CTX *ctx, const char *local, const char *remote)
{
	struct client_cache *c = cache_of(ctx);
	char key[sizeof(c->armed_local) + sizeof(c->armed_remote)];
	if (!c || !local || !remote || !cache_key(key, sizeof(key), local, remote))
		return false;
	struct cached *e = strmap_get(c->map, key);
	if (e && e->kind == CACHED_OFFERED) {
		e->kind = CACHED_REFUSED;
		e->stored = c->clock();
		return true;
	}
	if (e && e->kind == CACHED_SESSION)
		cache_drop(c, key);
	return false;
}

static int count_session(void *ud, const char *key, void *value)
{
	(void)key;
	*(size_t *)ud += ((const struct cached *)value)->kind == CACHED_SESSION;
	return 0;
}

size_t tls_client_cached(SSL_CTX *ctx)
{
	struct client_cache *c = cache_of(ctx);
	size_t n = 0;
	if (c)
		strmap_each(c->map, count_session, &n);
	return n;
}

int tls_client_tickets_clock(SSL_CTX *ctx, long lifetime, size_t max, time_t (*clock)(void),
			     char *err, size_t errlen)
{
	assert(ctx);
	if (lifetime <= 0)
		return FG_OK; /* tls.c left tickets off and the cache off */
	/* Once per context: a second cache would leak the first. */
	struct client_cache *had = cache_of(ctx);
	assert(!had);
	(void)had;
	struct client_cache *c = OPENSSL_zalloc(sizeof(*c));
	if (!c || cache_idx < 0 || key_idx < 0 || !(c->map = strmap_new())) {
		OPENSSL_free(c);
		snprintf(err, errlen, "out of memory for the TLS session cache");
		return FG_ERR;
	}
	c->max = max ? max : CACHE_DEFAULT_MAX;
	c->lifetime = lifetime;
	c->clock = clock ? clock : wall_clock;
	if (SSL_CTX_set_ex_data(ctx, cache_idx, c) != 1) {
		strmap_free(&c->map, NULL);
		OPENSSL_free(c);
		tls_last_error(err, errlen);
		return FG_ERR;
	}
	SSL_CTX_clear_options(ctx, SSL_OP_NO_TICKET);
	/* OpenSSL's own client cache would key by host and port alone: we
	 * keep the sessions ourselves, per pair of domains. */
	SSL_CTX_set_session_cache_mode(ctx,
				       SSL_SESS_CACHE_CLIENT | SSL_SESS_CACHE_NO_INTERNAL_STORE);
	SSL_CTX_sess_set_new_cb(ctx, session_new);
	return FG_OK;
}

int tls_client_tickets(SSL_CTX *ctx, long lifetime, char *err, size_t errlen)
{
	return tls_client_tickets_clock(ctx, lifetime, 0, NULL, err, errlen);
}

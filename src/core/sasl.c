/* Client SASL (RFC 6120 §6) on GNU SASL: gsasl runs the mechanisms, this
 * file answers its callbacks from stored SCRAM keys, hides unknown
 * accounts, and turns gsasl's results into RFC 6120 §6.5 conditions. */
#include "sasl.h"

#include <limits.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <gsasl.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>

#include "fg.h"

#define SALT_LEN 16
#define ITER_MIN 4096u
/* A corrupt or hostile store line must not make one PLAIN login cost
 * minutes of CPU on the only thread. */
#define ITER_MAX 10000000u
/* SCRAM takes three inputs at most (empty <auth/>, client-first,
 * client-final), PLAIN two; anything beyond is a client going round in
 * circles. */
#define STEPS_MAX   4
#define SECRET_LEN  32
#define SHA1_LEN    20
#define SHA256_LEN  32
#define ENCODED_MAX 256

static Gsasl *g_ctx;
/* Keys the fake credentials of unknown accounts: random per process, so
 * a fake salt is stable for a name while the process lives but says
 * nothing about whether the account exists. */
static unsigned char g_secret[SECRET_LEN];
/* Fake credentials carry the iteration count new passwords get ([users]
 * scram_iterations), so that an unknown name shows the same count as the
 * accounts made under this configuration and PLAIN spends the same PBKDF2
 * work on it. Fixed, not learnt from the last real login: that would make
 * the count of a fake depend on who signed in last. */
static unsigned g_fake_iter = ITER_MIN;
/* PBKDF2 iterations run so far (loop thread only): the work a login cost,
 * which tests compare for known and unknown accounts. */
static unsigned long long g_pbkdf2_iterations;

/* ---- base64 (RFC 4648 §4, no line breaks, padding required) ---- */

static char *b64_encode(const unsigned char *in, size_t n)
{
	char *out;

	if (n > INT_MAX / 2) /* EVP_EncodeBlock counts in int */
		return NULL;
	out = malloc(4 * ((n + 2) / 3) + 1);
	if (!out)
		return NULL;
	EVP_EncodeBlock((unsigned char *)out, in, (int)n);
	return out;
}

static int b64_val(unsigned char c)
{
	if (c >= 'A' && c <= 'Z')
		return c - 'A';
	if (c >= 'a' && c <= 'z')
		return c - 'a' + 26;
	if (c >= '0' && c <= '9')
		return c - '0' + 52;
	if (c == '+')
		return 62;
	if (c == '/')
		return 63;
	return -1;
}

/* Strict on purpose (RFC 6120 §6.4.2 allows no whitespace, and a stored
 * line has exactly one spelling): length a multiple of 4, padding only at
 * the end, unused bits zero. FG_INVAL, or FG_LIMIT when out is too small. */
static int b64_decode(const char *in, size_t len, unsigned char *out, size_t cap, size_t *outlen)
{
	size_t o = 0;

	*outlen = 0;
	if (len % 4 != 0)
		return FG_INVAL;
	for (size_t i = 0; i < len; i += 4) {
		int v[4];
		size_t pad = 0;

		for (size_t j = 0; j < 4; j++) {
			unsigned char c = (unsigned char)in[i + j];

			if (c == '=' && i + 4 == len && j >= 2) {
				v[j] = 0;
				pad++;
				continue;
			}
			if (pad)
				return FG_INVAL; /* data after '=' */
			v[j] = b64_val(c);
			if (v[j] < 0)
				return FG_INVAL;
		}
		if ((pad == 1 && (v[2] & 0x3)) || (pad == 2 && (v[1] & 0xf)))
			return FG_INVAL;
		if (o + 3 - pad > cap)
			return FG_LIMIT;
		out[o++] = (unsigned char)(v[0] << 2 | v[1] >> 4);
		if (pad < 2)
			out[o++] = (unsigned char)((v[1] & 0xf) << 4 | v[2] >> 2);
		if (pad < 1)
			out[o++] = (unsigned char)((v[2] & 0x3) << 6 | v[3]);
	}
	*outlen = o;
	return FG_OK;
}

/* ---- keys ---- */

/* RFC 5802 §3 from a password already SASLprep'ed: StoredKey and
 * ServerKey for one hash. */
static int scram_keys(const EVP_MD *md, const char *prepped, const unsigned char *salt,
		      size_t salt_len, unsigned iter, unsigned char *stored, unsigned char *server)
{
	unsigned char salted[EVP_MAX_MD_SIZE], client[EVP_MAX_MD_SIZE];
	int n = EVP_MD_get_size(md);
	int rc = FG_ERR;

	if (n <= 0 || iter == 0 || iter > ITER_MAX || salt_len == 0 || salt_len > SASL_SALT_MAX)
		return FG_INVAL;
	g_pbkdf2_iterations += iter;
	if (PKCS5_PBKDF2_HMAC(prepped, (int)strlen(prepped), salt, (int)salt_len, (int)iter, md, n,
			      salted) != 1)
		goto out;
	if (!HMAC(md, salted, n, (const unsigned char *)"Client Key", 10, client, NULL) ||
	    !HMAC(md, salted, n, (const unsigned char *)"Server Key", 10, server, NULL) ||
	    !EVP_Digest(client, (size_t)n, stored, NULL, md, NULL))
		goto out;
	rc = FG_OK;
out:
	OPENSSL_cleanse(salted, sizeof(salted));
	OPENSSL_cleanse(client, sizeof(client));
	return rc;
}

/* SCRAM clients SASLprep the password before hashing (RFC 5802 §2.2) and
 * gsasl's PLAIN does it to the offered one, so keys must be made the same
 * way or non-ASCII passwords would work with one mechanism only.
 * *out is gsasl-allocated; wipe and gsasl_free it. */
static int prep_password(const char *password, char **out)
{
	*out = NULL;
	if (!password || password[0] == '\0')
		return FG_INVAL;
	if (gsasl_saslprep(password, GSASL_ALLOW_UNASSIGNED, out, NULL) != GSASL_OK)
		return FG_INVAL;
	if ((*out)[0] == '\0') {
		gsasl_free(*out);
		*out = NULL;
		return FG_INVAL;
	}
	return FG_OK;
}

static void free_prepped(char **p)
{
	if (*p) {
		OPENSSL_cleanse(*p, strlen(*p));
		gsasl_free(*p);
		*p = NULL;
	}
}

static bool creds_sane(const struct scram_creds *c)
{
	return c->iterations > 0 && c->iterations <= ITER_MAX && c->salt_len > 0 &&
	       c->salt_len <= SASL_SALT_MAX;
}

int sasl_creds_from_password(const char *password, unsigned iterations, struct scram_creds *out)
{
	char *prep = NULL;
	int rc;

	if (!out)
		return FG_INVAL;
	memset(out, 0, sizeof(*out));
	if (iterations < ITER_MIN || iterations > ITER_MAX)
		return FG_INVAL;
	rc = prep_password(password, &prep);
	if (rc != FG_OK)
		return rc;
	out->iterations = iterations;
	out->salt_len = SALT_LEN;
	if (RAND_bytes(out->salt, SALT_LEN) != 1) {
		rc = FG_ERR;
		goto out;
	}
	rc = scram_keys(EVP_sha1(), prep, out->salt, out->salt_len, iterations, out->stored_sha1,
			out->server_sha1);
	if (rc == FG_OK)
		rc = scram_keys(EVP_sha256(), prep, out->salt, out->salt_len, iterations,
				out->stored_sha256, out->server_sha256);
out:
	free_prepped(&prep);
	if (rc != FG_OK)
		OPENSSL_cleanse(out, sizeof(*out));
	return rc;
}

bool sasl_check_password(const struct scram_creds *c, const char *password)
{
	unsigned char stored[SHA256_LEN], server[SHA256_LEN];
	char *prep = NULL;
	bool ok = false;

	if (!c || !creds_sane(c) || prep_password(password, &prep) != FG_OK)
		return false;
	if (scram_keys(EVP_sha256(), prep, c->salt, c->salt_len, c->iterations, stored, server) ==
	    FG_OK)
		ok = (CRYPTO_memcmp(stored, c->stored_sha256, SHA256_LEN) |
		      CRYPTO_memcmp(server, c->server_sha256, SHA256_LEN)) == 0;
	free_prepped(&prep);
	OPENSSL_cleanse(stored, sizeof(stored));
	OPENSSL_cleanse(server, sizeof(server));
	return ok;
}

/* ---- the store line ---- */

char *sasl_creds_encode(const struct scram_creds *c)
{
	const unsigned char *bin[] = {c->salt, c->stored_sha1, c->server_sha1, c->stored_sha256,
				      c->server_sha256};
	const size_t len[] = {c->salt_len, SHA1_LEN, SHA1_LEN, SHA256_LEN, SHA256_LEN};
	char *f[FG_ARRAY_LEN(bin)] = {NULL};
	char *line = NULL;

	if (c->salt_len > SASL_SALT_MAX)
		return NULL;
	for (size_t i = 0; i < FG_ARRAY_LEN(bin); i++)
		if (!(f[i] = b64_encode(bin[i], len[i])))
			goto out;
	if (asprintf(&line, "scram1:%u:%s:%s:%s:%s:%s", c->iterations, f[0], f[1], f[2], f[3],
		     f[4]) < 0)
		line = NULL;
out:
	for (size_t i = 0; i < FG_ARRAY_LEN(f); i++)
		free(f[i]);
	return line;
}

/* One base64 field of the store line, decoded to exactly want bytes
 * (want 0: anything from 1 to cap). */
static int field_decode(const char *s, size_t len, unsigned char *out, size_t cap, size_t want,
			size_t *got)
{
	int rc = b64_decode(s, len, out, cap, got);

	if (rc != FG_OK || *got == 0 || (want && *got != want))
		return FG_INVAL;
	return FG_OK;
}

int sasl_creds_decode(const char *s, struct scram_creds *out)
{
	const char *f[7];
	size_t fl[7], nf = 0, got;
	struct scram_creds c;
	unsigned long iter = 0;
	int rc = FG_INVAL;

	if (!out)
		return FG_INVAL;
	memset(out, 0, sizeof(*out));
	memset(&c, 0, sizeof(c));
	if (!s || strlen(s) > ENCODED_MAX)
		return FG_INVAL;
	for (const char *p = s;; p++) {
		if (*p == ':' || *p == '\0') {
			if (nf == FG_ARRAY_LEN(f))
				return FG_INVAL;
			fl[nf] = (size_t)(p - s);
			f[nf++] = s;
			s = p + 1;
			if (*p == '\0')
				break;
		}
	}
	if (nf != FG_ARRAY_LEN(f) || fl[0] != 6 || memcmp(f[0], "scram1", 6) != 0)
		return FG_INVAL;
	/* Digits only: strtoul would take signs, spaces and "0x". */
	if (fl[1] == 0 || fl[1] > 8 || f[1][0] == '0')
		return FG_INVAL;
	for (size_t i = 0; i < fl[1]; i++) {
		if (f[1][i] < '0' || f[1][i] > '9')
			return FG_INVAL;
		iter = iter * 10 + (unsigned long)(f[1][i] - '0');
	}
	if (iter == 0 || iter > ITER_MAX)
		return FG_INVAL;
	c.iterations = (unsigned)iter;
	if (field_decode(f[2], fl[2], c.salt, SASL_SALT_MAX, 0, &c.salt_len) != FG_OK ||
	    field_decode(f[3], fl[3], c.stored_sha1, SHA1_LEN, SHA1_LEN, &got) != FG_OK ||
	    field_decode(f[4], fl[4], c.server_sha1, SHA1_LEN, SHA1_LEN, &got) != FG_OK ||
	    field_decode(f[5], fl[5], c.stored_sha256, SHA256_LEN, SHA256_LEN, &got) != FG_OK ||
	    field_decode(f[6], fl[6], c.server_sha256, SHA256_LEN, SHA256_LEN, &got) != FG_OK)
		goto out;
	memcpy(out, &c, sizeof(c));
	rc = FG_OK;
out:
	OPENSSL_cleanse(&c, sizeof(c));
	return rc;
}

/* ---- mechanisms ---- */

enum mech { MECH_SCRAM_SHA256, MECH_SCRAM_SHA1, MECH_PLAIN };

static const char *const mech_names[] = {
	[MECH_SCRAM_SHA256] = "SCRAM-SHA-256",
	[MECH_SCRAM_SHA1] = "SCRAM-SHA-1",
	[MECH_PLAIN] = "PLAIN",
};

const char *const *sasl_mechanisms(bool secure)
{
	/* No -PLUS: channel binding is not offered (see sasl_server_step). */
	static const char *const with_plain[] = {"SCRAM-SHA-256", "SCRAM-SHA-1", "PLAIN", NULL};
	static const char *const without_plain[] = {"SCRAM-SHA-256", "SCRAM-SHA-1", NULL};

	return secure ? with_plain : without_plain;
}

/* ---- server ---- */

struct sasl_server {
	Gsasl_session *gs;
	enum mech mech;
	sasl_lookup_fn lookup;
	void *ud;
	struct scram_creds creds; /* the account's, or fake ones */
	char *authcid;		  /* SASLprep'ed, as given to lookup */
	unsigned steps;
	bool looked_up;
	bool known;	      /* lookup found the account */
	bool tempfail;	      /* lookup failed for another reason */
	bool plain_authzid;   /* PLAIN carried a non-empty authzid */
	bool scram_first;     /* client-first-message seen */
	bool done, succeeded; /* no step after either */
};

/* Stable per name and process, unrelated to any real account. */
static void fake_bytes(const char *label, const char *name, unsigned char *out, size_t n)
{
	size_t ll = strlen(label) + 1, nl = strlen(name);
	unsigned char mac[SHA256_LEN];
	unsigned char *msg = malloc(ll + nl);

	if (msg) {
		memcpy(msg, label, ll); /* with its NUL: "ab"+"c" != "a"+"bc" */
		memcpy(msg + ll, name, nl);
	}
	if (!msg || !HMAC(EVP_sha256(), g_secret, SECRET_LEN, msg, ll + nl, mac, NULL))
		RAND_bytes(mac, sizeof(mac)); /* still fails; only loses stability */
	free(msg);
	memcpy(out, mac, n < sizeof(mac) ? n : sizeof(mac));
	OPENSSL_cleanse(mac, sizeof(mac));
}

static void fake_creds(const char *name, struct scram_creds *c)
{
	memset(c, 0, sizeof(*c));
	c->iterations = g_fake_iter;
	c->salt_len = SALT_LEN;
	fake_bytes("salt", name, c->salt, SALT_LEN);
	fake_bytes("stored-sha1", name, c->stored_sha1, SHA1_LEN);
	fake_bytes("server-sha1", name, c->server_sha1, SHA1_LEN);
	fake_bytes("stored-sha256", name, c->stored_sha256, SHA256_LEN);
	fake_bytes("server-sha256", name, c->server_sha256, SHA256_LEN);
}

/* Once per exchange, at the first callback that needs the account. An
 * unknown (or unusable) name gets fake credentials so that the exchange
 * goes on exactly as far as with a wrong password. */
static void server_lookup(struct sasl_server *s)
{
	const char *authid;
	char *prep = NULL;
	int rc = FG_NOTFOUND;

	if (s->looked_up)
		return;
	s->looked_up = true;
	authid = gsasl_property_fast(s->gs, GSASL_AUTHID);
	if (!authid)
		authid = "";
	/* gsasl's SCRAM hands over the name unprepared, its PLAIN prepared;
	 * prepare both so the lookup sees one form (RFC 5802 §5.1). */
	if (gsasl_saslprep(authid, GSASL_ALLOW_UNASSIGNED, &prep, NULL) != GSASL_OK)
		prep = NULL;
	s->authcid = strdup(prep ? prep : authid);
	if (prep)
		gsasl_free(prep);
	if (!s->authcid) {
		s->tempfail = true;
		fake_creds(authid, &s->creds);
		return;
	}
	if (s->authcid[0] != '\0')
		rc = s->lookup(s->ud, s->authcid, &s->creds);
	if (rc == FG_OK && creds_sane(&s->creds)) {
		s->known = true;
		return;
	}
	/* A store error or a broken record is the operator's problem, not a
	 * wrong password: say so (temporary-auth-failure) rather than hide it. */
	if (rc != FG_NOTFOUND)
		s->tempfail = true;
	fake_creds(s->authcid, &s->creds);
}

static int set_b64(Gsasl_session *gs, Gsasl_property prop, const unsigned char *bin, size_t n)
{
	char *b = b64_encode(bin, n);
	int rc;

	if (!b)
		return GSASL_MALLOC_ERROR;
	rc = gsasl_property_set(gs, prop, b);
	free(b);
	return rc;
}

/* gsasl asks for what it needs. Note that gsasl ignores the return value
 * for the SCRAM properties (a missing one just falls back to a default),
 * which is why trouble is also recorded in s->tempfail. Despite what
 * gsasl.h says, gsasl 2.2 reads STOREDKEY and SERVERKEY as base64, not hex
 * (the salt is base64 too); a wrong encoding fails every login as
 * not-authorized, which the unit tests would catch. */
static int server_cb(Gsasl *ctx, Gsasl_session *gs, Gsasl_property prop)
{
	struct sasl_server *s = gsasl_session_hook_get(gs);
	bool sha1;
	char num[16];

	(void)ctx;
	if (!s)
		return GSASL_NO_CALLBACK;
	sha1 = s->mech == MECH_SCRAM_SHA1;
	switch (prop) {
	case GSASL_SCRAM_ITER:
		server_lookup(s);
		snprintf(num, sizeof(num), "%u", s->creds.iterations);
		return gsasl_property_set(gs, prop, num);
	case GSASL_SCRAM_SALT:
		server_lookup(s);
		return set_b64(gs, prop, s->creds.salt, s->creds.salt_len);
	case GSASL_SCRAM_STOREDKEY:
		server_lookup(s);
		return sha1 ? set_b64(gs, prop, s->creds.stored_sha1, SHA1_LEN)
			    : set_b64(gs, prop, s->creds.stored_sha256, SHA256_LEN);
	case GSASL_SCRAM_SERVERKEY:
		server_lookup(s);
		return sha1 ? set_b64(gs, prop, s->creds.server_sha1, SHA1_LEN)
			    : set_b64(gs, prop, s->creds.server_sha256, SHA256_LEN);
	case GSASL_VALIDATE_SIMPLE: {
		const char *pw = gsasl_property_fast(gs, GSASL_PASSWORD);
		bool ok;

		server_lookup(s);
		/* Checked against the fake credentials too: the same PBKDF2
		 * cost, so timing does not tell unknown accounts apart. */
		ok = pw && sasl_check_password(&s->creds, pw) && s->known && !s->tempfail;
		/* gsasl would keep its copy until the session ends. */
		if (pw)
			OPENSSL_cleanse((char *)pw, strlen(pw));
		gsasl_property_set(gs, GSASL_PASSWORD, NULL);
		return ok ? GSASL_OK : GSASL_AUTHENTICATION_ERROR;
	}
	default:
		/* Never GSASL_PASSWORD: there is none to give. */
		return GSASL_NO_CALLBACK;
	}
}

int sasl_global_init(void)
{
	if (g_ctx)
		return FG_OK;
	if (RAND_bytes(g_secret, SECRET_LEN) != 1)
		return FG_ERR;
	if (gsasl_init(&g_ctx) != GSASL_OK) {
		g_ctx = NULL;
		return FG_ERR;
	}
	for (size_t i = 0; i < FG_ARRAY_LEN(mech_names); i++)
		if (!gsasl_server_support_p(g_ctx, mech_names[i])) {
			sasl_global_done();
			return FG_ERR;
		}
	gsasl_callback_set(g_ctx, server_cb);
	return FG_OK;
}

int sasl_set_fake_iterations(unsigned iterations)
{
	if (iterations < ITER_MIN || iterations > ITER_MAX)
		return FG_INVAL;
	g_fake_iter = iterations;
	return FG_OK;
}

unsigned long long sasl_pbkdf2_iterations(void)
{
	return g_pbkdf2_iterations;
}

void sasl_global_done(void)
{
	if (g_ctx)
		gsasl_done(g_ctx);
	g_ctx = NULL;
	OPENSSL_cleanse(g_secret, SECRET_LEN);
}

struct sasl_server *sasl_server_new(const char *mech, bool secure, sasl_lookup_fn lookup, void *ud,
				    const char **failure)
{
	const char *dummy;
	struct sasl_server *s;
	size_t m;

	if (!failure)
		failure = &dummy;
	*failure = NULL;
	for (m = 0; m < FG_ARRAY_LEN(mech_names); m++)
		if (mech && strcmp(mech, mech_names[m]) == 0)
			break;
	if (m == FG_ARRAY_LEN(mech_names)) {
		*failure = "invalid-mechanism";
		return NULL;
	}
	if (m == MECH_PLAIN && !secure) {
		*failure = "encryption-required";
		return NULL;
	}
	if (!g_ctx || !lookup || !(s = calloc(1, sizeof(*s)))) {
		*failure = "temporary-auth-failure";
		return NULL;
	}
	s->mech = (enum mech)m;
	s->lookup = lookup;
	s->ud = ud;
	if (gsasl_server_start(g_ctx, mech_names[m], &s->gs) != GSASL_OK) {
		free(s);
		*failure = "temporary-auth-failure";
		return NULL;
	}
	gsasl_session_hook_set(s->gs, s);
	return s;
}

/* RFC 6120 §6.5 for what gsasl said. Its own base64 errors concern fields
 * inside the mechanism's message (the outer base64 is ours), so they are
 * a malformed request, not incorrect-encoding. */
static const char *condition_of(int grc)
{
	switch (grc) {
	case GSASL_MALLOC_ERROR:
	case GSASL_CRYPTO_ERROR: return "temporary-auth-failure";
	case GSASL_MECHANISM_PARSE_ERROR:
	case GSASL_BASE64_ERROR:
	case GSASL_SASLPREP_ERROR:
	case GSASL_MECHANISM_CALLED_TOO_MANY_TIMES: return "malformed-request";
	default: return "not-authorized";
	}
}

static enum sasl_result fail(struct sasl_server *s, const char **failure, const char *cond)
{
	s->done = true;
	*failure = cond;
	return SASL_FAILURE;
}

enum sasl_result sasl_server_step(struct sasl_server *s, const char *in, char **out,
				  const char **failure)
{
	unsigned char *raw = NULL;
	size_t len, rawlen = 0;
	char *gout = NULL;
	size_t goutlen = 0;
	const char *dummy;
	int grc, rc;

	if (!failure)
		failure = &dummy;
	*failure = NULL;
	if (out)
		*out = NULL;
	if (!s || !out)
		return SASL_FAILURE;
	if (s->done || ++s->steps > STEPS_MAX)
		return fail(s, failure, "malformed-request");
	if (!in)
		in = "";
	len = strlen(in);
	if (len == 1 && in[0] == '=') /* RFC 6120 §6.4.2: zero-length data */
		len = 0;
	raw = malloc(len / 4 * 3 + 1);
	if (!raw)
		return fail(s, failure, "temporary-auth-failure");
	rc = b64_decode(in, len, raw, len / 4 * 3, &rawlen);
	if (rc != FG_OK) {
		free(raw);
		return fail(s, failure, "incorrect-encoding");
	}
	if (s->mech != MECH_PLAIN && rawlen > 0) {
		/* SCRAM text never holds NUL, and gsasl's parser leans on C
		 * strings in places. */
		if (memchr(raw, '\0', rawlen)) {
			free(raw);
			return fail(s, failure, "malformed-request");
		}
		/* gsasl would accept "p" on a non-PLUS mechanism when the
		 * client's binding data is empty; we offer no binding at all
		 * (RFC 5802 §6: the server MUST fail), as Prosody does. */
		if (!s->scram_first && raw[0] == 'p') {
			free(raw);
			return fail(s, failure, "malformed-request");
		}
		s->scram_first = true;
	}
	if (s->mech == MECH_PLAIN && rawlen > 0)
		/* gsasl reports the authcid as authzid when none was given;
		 * remember whether the client really asked for one. */
		s->plain_authzid = raw[0] != '\0';
	grc = gsasl_step(s->gs, (const char *)raw, rawlen, &gout, &goutlen);
	OPENSSL_cleanse(raw, rawlen); /* PLAIN: the password */
	free(raw);

	if (s->tempfail) {
		gsasl_free(gout);
		return fail(s, failure, "temporary-auth-failure");
	}
	if (grc == GSASL_NEEDS_MORE || grc == GSASL_OK) {
		/* Belt and braces: a fake account can never succeed. */
		if (grc == GSASL_OK && !s->known) {
			gsasl_free(gout);
			return fail(s, failure, "not-authorized");
		}
		*out = b64_encode((const unsigned char *)(gout ? gout : ""), gout ? goutlen : 0);
		gsasl_free(gout);
		if (!*out)
			return fail(s, failure, "temporary-auth-failure");
		if (grc == GSASL_NEEDS_MORE)
			return SASL_CONTINUE;
		s->done = s->succeeded = true;
		return SASL_SUCCESS;
	}
	gsasl_free(gout);
	return fail(s, failure, condition_of(grc));
}

const char *sasl_server_authcid(const struct sasl_server *s)
{
	return s && s->succeeded ? s->authcid : NULL;
}

const char *sasl_server_authzid(const struct sasl_server *s)
{
	if (!s || (s->mech == MECH_PLAIN && !s->plain_authzid))
		return NULL;
	return gsasl_property_fast(s->gs, GSASL_AUTHZID);
}

void sasl_server_free(struct sasl_server **sp)
{
	struct sasl_server *s;

	if (!sp || !*sp)
		return;
	s = *sp;
	*sp = NULL;
	if (s->gs)
		gsasl_finish(s->gs);
	free(s->authcid);
	OPENSSL_cleanse(&s->creds, sizeof(s->creds));
	free(s);
}

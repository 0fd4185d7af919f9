/* libFuzzer target for client authentication as a client sends it: the
 * base64 text of <auth/> and <response/> to sasl_server_step for
 * SCRAM-SHA-256, SCRAM-SHA-1 (client-first, client-final) and PLAIN, the
 * stored-credentials line (sasl_creds_decode), and the SASL EXTERNAL
 * authorization identity of an inbound server stream.
 *
 * Input: a control byte (mechanism, secure stream, raw mode), then up to
 * three messages separated by 0xff. Unless raw, the harness base64-encodes
 * each message, and in a SCRAM client-final replaces "%N" by the server's
 * nonce and "%P" by the proof the password gives, so that the fuzzer gets
 * past the random nonce into proof checking. Invariants: SCRAM succeeds
 * only with exactly the proof RFC 5802 gives for this exchange, and then
 * signs with the right ServerSignature; PLAIN succeeds only for the
 * account's password; failures use RFC 6120 §6.5 conditions; nothing runs
 * after the end. */
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz.h"
#include "fg.h"
#include "jid.h"
#include "s2s_in.h"
#include "sasl.h"

#define USER	 "user"
#define PASSWORD "pencil"
#define MSG_MAX	 3

static struct scram_creds g_creds;
static unsigned char g_salted1[20], g_salted256[32];

static int lookup(void *ud, const char *authcid, struct scram_creds *out)
{
	(void)ud;
	if (strcmp(authcid, "tempfail") == 0)
		return FG_ERR;
	if (strcmp(authcid, USER) != 0)
		return FG_NOTFOUND;
	*out = g_creds;
	return FG_OK;
}

static void setup(void)
{
	static bool done;

	if (done)
		return;
	done = true;
	CHECK(sasl_global_init() == FG_OK);
	CHECK(sasl_creds_from_password(PASSWORD, 4096, &g_creds) == FG_OK);
	CHECK(PKCS5_PBKDF2_HMAC(PASSWORD, strlen(PASSWORD), g_creds.salt, (int)g_creds.salt_len,
				(int)g_creds.iterations, EVP_sha1(), 20, g_salted1) == 1);
	CHECK(PKCS5_PBKDF2_HMAC(PASSWORD, strlen(PASSWORD), g_creds.salt, (int)g_creds.salt_len,
				(int)g_creds.iterations, EVP_sha256(), 32, g_salted256) == 1);
}

static char *b64(const void *p, size_t n)
{
	char *o = malloc(4 * ((n + 2) / 3) + 1);

	if (o)
		EVP_EncodeBlock((unsigned char *)o, p, (int)n);
	return o;
}

/* Decodes text the server produced: it must be strict base64. */
static char *unb64(const char *s, size_t *n)
{
	size_t len = strlen(s);
	char *o = malloc(len / 4 * 3 + 1);

	CHECK(o != NULL && len % 4 == 0);
	int r = EVP_DecodeBlock((unsigned char *)o, (const unsigned char *)s, (int)len);

	CHECK(r >= 0);
	*n = (size_t)r;
	while (len > 0 && s[len - 1] == '=') {
		len--;
		(*n)--;
	}
	o[*n] = '\0';
	return o;
}

static bool allowed_failure(const char *f)
{
	static const char *const ok[] = {"not-authorized",     "malformed-request",
					 "incorrect-encoding", "temporary-auth-failure",
					 "invalid-mechanism",  "encryption-required"};

	for (size_t i = 0; i < FG_ARRAY_LEN(ok); i++)
		if (f && strcmp(f, ok[i]) == 0)
			return true;
	return false;
}

/* Replaces every "%N" and "%P"; the proof is filled in later (it depends on
 * the final message itself), so "%P" stays a marker here. */
static char *subst_nonce(const char *m, const char *nonce)
{
	size_t cap = strlen(m) * (strlen(nonce) + 1) + 1;
	char *o = malloc(cap), *w = o;

	CHECK(o != NULL);
	for (const char *p = m; *p;) {
		if (p[0] == '%' && p[1] == 'N') {
			w += sprintf(w, "%s", nonce);
			p += 2;
		} else {
			*w++ = *p++;
		}
	}
	*w = '\0';
	return o;
}

struct scram {
	const EVP_MD *md;
	size_t hlen;
	const unsigned char *salted;
	char *client_first_bare;
	char *server_first;
	char *nonce;
	unsigned char server_sig[32];
	char *want_proof; /* base64 of the right proof for the final message */
};

static void hmac(const struct scram *x, const void *key, size_t klen, const void *msg, size_t n,
		 unsigned char *out)
{
	unsigned int olen = 0;

	CHECK(HMAC(x->md, key, (int)klen, msg, n, out, &olen) != NULL && olen == x->hlen);
}

/* RFC 5802 §3 over AuthMessage = client-first-bare "," server-first ","
 * client-final-without-proof; fills the proof in for "%P". */
static char *final_with_proof(struct scram *x, const char *final)
{
	const char *p = strstr(final, ",p=");
	size_t wlen = p ? (size_t)(p - final) : strlen(final);
	size_t alen = strlen(x->client_first_bare) + strlen(x->server_first) + wlen + 3;
	char *auth = malloc(alen);
	unsigned char ck[32], sk[32], csig[32], proof[32], svk[32];
	unsigned int n = 0;

	CHECK(auth != NULL);
	snprintf(auth, alen, "%s,%s,%.*s", x->client_first_bare, x->server_first, (int)wlen, final);
	hmac(x, x->salted, x->hlen, "Client Key", 10, ck);
	CHECK(EVP_Digest(ck, x->hlen, sk, &n, x->md, NULL) == 1);
	hmac(x, sk, x->hlen, auth, strlen(auth), csig);
	for (size_t i = 0; i < x->hlen; i++)
		proof[i] = ck[i] ^ csig[i];
	hmac(x, x->salted, x->hlen, "Server Key", 10, svk);
	hmac(x, svk, x->hlen, auth, strlen(auth), x->server_sig);
	free(auth);
	x->want_proof = b64(proof, x->hlen);
	CHECK(x->want_proof != NULL);

	const char *mark = strstr(final, "%P");
	char *o = malloc(strlen(final) + strlen(x->want_proof) + 1);

	CHECK(o != NULL);
	if (!mark) {
		strcpy(o, final);
		return o;
	}
	sprintf(o, "%.*s%s%s", (int)(mark - final), final, x->want_proof, mark + 2);
	return o;
}

/* The proof the final message carries: its last ",p=" attribute. */
static const char *proof_of(const char *final)
{
	const char *p = NULL;

	for (const char *q = strstr(final, ",p="); q; q = strstr(q + 1, ",p="))
		p = q + 3;
	return p;
}

static void run_exchange(const char *mech, bool secure, bool raw, char **msgs, size_t *lens,
			 size_t nmsg)
{
	const char *failure = NULL;
	struct sasl_server *s = sasl_server_new(mech, secure, lookup, NULL, &failure);
	bool plain = strcmp(mech, "PLAIN") == 0;
	struct scram x = {0};

	if (!s) {
		CHECK(plain && !secure && strcmp(failure, "encryption-required") == 0);
		return;
	}
	x.md = strcmp(mech, "SCRAM-SHA-1") == 0 ? EVP_sha1() : EVP_sha256();
	x.hlen = x.md == EVP_sha1() ? 20 : 32;
	x.salted = x.md == EVP_sha1() ? g_salted1 : g_salted256;

	enum sasl_result res = SASL_CONTINUE;
	char *final = NULL;

	for (size_t i = 0; i < nmsg && res == SASL_CONTINUE; i++) {
		char *text = msgs[i], *in, *out = NULL;

		if (!plain && x.server_first && !final) {
			char *t = subst_nonce(text, x.nonce);

			final = final_with_proof(&x, t);
			free(t);
			text = final;
		}
		if (!plain && !x.server_first && !x.client_first_bare)
			/* after the gs2 header "n,," or "y,a=...," */
			for (const char *c = text, *first = NULL; *c; c++)
				if (*c == ',') {
					if (first) {
						x.client_first_bare = strdup(c + 1);
						break;
					}
					first = c;
				}
		in = raw ? strndup(text, text == msgs[i] ? lens[i] : strlen(text))
			 : b64(text, text == msgs[i] ? lens[i] : strlen(text));
		CHECK(in != NULL);
		res = sasl_server_step(s, in, &out, &failure);
		free(in);
		if (res == SASL_FAILURE) {
			CHECK(out == NULL && allowed_failure(failure));
			CHECK(sasl_server_authcid(s) == NULL);
			break;
		}
		CHECK(out != NULL && failure == NULL);
		size_t n;
		char *dec = unb64(out, &n);

		if (res == SASL_CONTINUE && !plain && !x.server_first && n > 0) {
			/* server-first: r=NONCE,s=SALT,i=ITER */
			x.server_first = strdup(dec);
			CHECK(x.server_first && strncmp(dec, "r=", 2) == 0);
			const char *e = strchr(dec + 2, ',');

			CHECK(e != NULL);
			x.nonce = strndup(dec + 2, (size_t)(e - dec - 2));
			CHECK(x.nonce != NULL);
		}
		if (res == SASL_SUCCESS) {
			CHECK(strcmp(sasl_server_authcid(s), USER) == 0);
			if (plain) {
				/* authzid NUL authcid NUL password */
				size_t ml = lens[i];
				char *dm = raw ? unb64(strcmp(msgs[i], "=") ? msgs[i] : "", &ml)
					       : NULL;
				const char *m = raw ? dm : msgs[i];
				const char *a = memchr(m, '\0', ml);
				const char *b =
					a ? memchr(a + 1, '\0', ml - (size_t)(a + 1 - m)) : NULL;

				CHECK(b != NULL);
				char *pw = strndup(b + 1, ml - (size_t)(b + 1 - m));

				CHECK(pw && sasl_check_password(&g_creds, pw));
				free(pw);
				free(dm);
				CHECK(n == 0);
			} else {
				/* Only the right proof opens the account, and the
				 * server proves it knows the key too. */
				CHECK(final && x.want_proof && proof_of(final) &&
				      strcmp(proof_of(final), x.want_proof) == 0);
				char *v = b64(x.server_sig, x.hlen);

				CHECK(v && strncmp(dec, "v=", 2) == 0 && strcmp(dec + 2, v) == 0);
				free(v);
			}
		}
		free(dec);
		free(out);
	}
	if (res != SASL_CONTINUE) {
		char *out = (char *)"x";

		/* Nothing after the end. */
		CHECK(sasl_server_step(s, "", &out, &failure) == SASL_FAILURE);
		CHECK(out == NULL && strcmp(failure, "malformed-request") == 0);
		if (res == SASL_FAILURE)
			CHECK(sasl_server_authcid(s) == NULL);
	}
	free(final);
	free(x.client_first_bare);
	free(x.server_first);
	free(x.nonce);
	free(x.want_proof);
	sasl_server_free(&s);
	CHECK(s == NULL);
}

/* The stored line: what decodes encodes back to the same credentials. */
static void check_creds(const char *line)
{
	struct scram_creds c, d;

	if (sasl_creds_decode(line, &c) != FG_OK)
		return;
	CHECK(c.iterations > 0 && c.salt_len > 0 && c.salt_len <= SASL_SALT_MAX);
	char *e = sasl_creds_encode(&c);

	CHECK(e != NULL);
	CHECK(sasl_creds_decode(e, &d) == FG_OK && memcmp(&c, &d, sizeof(c)) == 0);
	/* One spelling per value: the decoder is strict. */
	CHECK(strcmp(e, line) == 0);
	free(e);
}

/* XEP-0178: an authzid is accepted only when it names the domain. */
static void check_external(const char *text)
{
	static const char *const remote[] = {"fabrikam.test", "xn--bcher-kva.test"};

	for (size_t r = 0; r < FG_ARRAY_LEN(remote); r++) {
		bool ok = s2s_in_external_authzid_ok(text, remote[r]);

		if (!*text || strcmp(text, "=") == 0)
			CHECK(ok);
		/* Its own name, encoded, always is. */
		char *enc = b64(remote[r], strlen(remote[r]));

		CHECK(enc && s2s_in_external_authzid_ok(enc, remote[r]));
		free(enc);
		if (!ok)
			continue;
		/* Then it cannot name the other domain too. */
		if (*text && strcmp(text, "=") != 0)
			CHECK(!s2s_in_external_authzid_ok(text, remote[1 - r]));
	}
	/* The text as an authzid itself (the harness encodes it): accepted
	 * means it prepares to the domain. */
	char *enc = b64(text, strlen(text)), *prep = NULL;

	CHECK(enc != NULL);
	if (s2s_in_external_authzid_ok(enc, "fabrikam.test") && *text)
		CHECK(jid_domain_prep(text, strlen(text), &prep) == JID_OK &&
		      strcmp(prep, "fabrikam.test") == 0);
	free(prep);
	free(enc);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const char *const mechs[] = {"SCRAM-SHA-256", "SCRAM-SHA-1", "PLAIN"};
	char *msgs[MSG_MAX] = {NULL};
	size_t lens[MSG_MAX] = {0}, nmsg = 0;

	if (size < 1)
		return 0;
	setup();
	uint8_t ctl = data[0];
	const uint8_t *p = data + 1, *end = data + size;

	while (nmsg < MSG_MAX && p <= end) {
		const uint8_t *sep = memchr(p, 0xff, (size_t)(end - p));
		size_t n = sep ? (size_t)(sep - p) : (size_t)(end - p);

		msgs[nmsg] = malloc(n + 1);
		CHECK(msgs[nmsg] != NULL);
		memcpy(msgs[nmsg], p, n);
		msgs[nmsg][n] = '\0';
		lens[nmsg++] = n;
		if (!sep)
			break;
		p = sep + 1;
	}
	switch (ctl & 7) {
	case 0:
	case 1:
	case 2: run_exchange(mechs[ctl & 3], ctl & 8, ctl & 16, msgs, lens, nmsg); break;
	case 3: check_external(msgs[0]); break;
	case 4: check_creds(msgs[0]); break;
	default: run_exchange("PLAIN", true, ctl & 16, msgs, lens, nmsg); break;
	}
	for (size_t i = 0; i < nmsg; i++)
		free(msgs[i]);
	return 0;
}

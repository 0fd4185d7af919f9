/* Unit tests for src/sasl.c: whole exchanges driven by a real GNU SASL
 * client (base64 in and out, as on the wire), the RFC 5802 and RFC 7677
 * vectors, unknown accounts, channel binding flags, malformed input, and
 * the stored credential line. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <gsasl.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>

#include "fg.h"
#include "sasl.h"

#define PW_ALICE "correct horse battery"

/* ---- the account directory behind the lookup callback ---- */

struct entry {
	const char *name;
	struct scram_creds creds;
};

struct directory {
	struct entry *e;
	size_t n;
	int force_rc; /* FG_OK: answer from e[] */
	unsigned calls;
	char last[64]; /* the authcid of the last lookup */
};

static int lookup(void *ud, const char *authcid, struct scram_creds *out)
{
	struct directory *d = ud;

	d->calls++;
	snprintf(d->last, sizeof(d->last), "%s", authcid);
	if (d->force_rc != FG_OK)
		return d->force_rc;
	for (size_t i = 0; i < d->n; i++)
		if (strcmp(d->e[i].name, authcid) == 0) {
			*out = d->e[i].creds;
			return FG_OK;
		}
	return FG_NOTFOUND;
}

static struct entry g_entries[2];
static struct directory g_dir;
static Gsasl *g_cli; /* the client side, a gsasl context of its own */

static int group_setup(void **state)
{
	(void)state;
	if (sasl_global_init() != FG_OK || gsasl_init(&g_cli) != GSASL_OK)
		return -1;
	g_entries[0].name = "alice";
	g_entries[1].name = "bob";
	if (sasl_creds_from_password(PW_ALICE, 4096, &g_entries[0].creds) != FG_OK ||
	    sasl_creds_from_password("bob's secret", 4096, &g_entries[1].creds) != FG_OK)
		return -1;
	return 0;
}

static int group_teardown(void **state)
{
	(void)state;
	gsasl_done(g_cli);
	sasl_global_done();
	return 0;
}

static int setup(void **state)
{
	(void)state;
	g_dir = (struct directory){g_entries, FG_ARRAY_LEN(g_entries), FG_OK, 0, ""};
	return 0;
}

/* ---- the client ---- */

struct client {
	const char *authid, *password, *authzid;
};

static int client_cb(Gsasl *ctx, Gsasl_session *gs, Gsasl_property prop)
{
	const struct client *c = gsasl_session_hook_get(gs);
	const char *v = NULL;

	(void)ctx;
	switch (prop) {
	case GSASL_AUTHID: v = c->authid; break;
	case GSASL_PASSWORD: v = c->password; break;
	case GSASL_AUTHZID: v = c->authzid; break;
	default: break;
	}
	return v ? gsasl_property_set(gs, prop, v) : GSASL_NO_CALLBACK;
}

/* Decodes base64 with gsasl's decoder (not the one under test) into a C
 * string; "" for "". */
static void b64dec(const char *b64, char *buf, size_t cap)
{
	char *bin = NULL;
	size_t n = 0;

	assert_int_equal(gsasl_base64_from(b64, strlen(b64), &bin, &n), GSASL_OK);
	assert_true(n < cap);
	memcpy(buf, bin ? bin : "", n);
	buf[n] = '\0';
	gsasl_free(bin);
}

static char *b64enc(const void *raw, size_t n)
{
	char *out = NULL;

	assert_int_equal(gsasl_base64_to(raw, n, &out, NULL), GSASL_OK);
	return out;
}

struct outcome {
	enum sasl_result res;
	const char *failure;
	unsigned steps;	      /* server steps taken, the last one included */
	bool client_verified; /* the client accepted <success/>'s data */
	char authcid[64];
	char authzid[64];
	bool has_authzid;
	char client_first[256]; /* the first non-empty client message */
	char challenge[256];	/* the first non-empty server challenge */
	char success_data[128];
};

/* One exchange between a gsasl client and sasl_server_*, with or without
 * an initial response in <auth/>. */
static void exchange(struct directory *d, const char *mech, bool secure, const struct client *c,
		     bool initial_response, struct outcome *o)
{
	struct sasl_server *s;
	Gsasl_session *cs;
	const char *failure = "unset";
	char *to_client = NULL, *to_server = NULL, *out = NULL;
	int crc = GSASL_NEEDS_MORE;

	memset(o, 0, sizeof(*o));
	gsasl_callback_set(g_cli, client_cb);
	s = sasl_server_new(mech, secure, lookup, d, &failure);
	assert_non_null(s);
	assert_null(failure);
	assert_int_equal(gsasl_client_start(g_cli, mech, &cs), GSASL_OK);
	gsasl_session_hook_set(cs, (void *)c);

	if (!initial_response) {
		/* <auth/> with no data: an empty challenge asks for it. */
		o->res = sasl_server_step(s, "", &out, &failure);
		o->steps++;
		assert_int_equal(o->res, SASL_CONTINUE);
		assert_string_equal(out, "");
		to_client = out;
	}
	for (;;) {
		crc = gsasl_step64(cs, to_client ? to_client : "", &to_server);
		free(to_client);
		to_client = NULL;
		assert_true(crc == GSASL_NEEDS_MORE || crc == GSASL_OK);
		if (o->client_first[0] == '\0')
			b64dec(to_server, o->client_first, sizeof(o->client_first));
		o->res = sasl_server_step(s, to_server, &out, &failure);
		o->steps++;
		gsasl_free(to_server);
		to_server = NULL;
		if (o->res != SASL_CONTINUE)
			break;
		assert_null(failure);
		assert_non_null(out);
		if (o->challenge[0] == '\0')
			b64dec(out, o->challenge, sizeof(o->challenge));
		to_client = out;
		assert_true(o->steps < 10);
	}
	o->failure = failure;
	if (o->res == SASL_SUCCESS) {
		assert_null(failure);
		assert_non_null(out);
		b64dec(out, o->success_data, sizeof(o->success_data));
		if (crc == GSASL_OK) {
			/* PLAIN: the client was done already; nothing extra. */
			o->client_verified = out[0] == '\0';
		} else {
			/* SCRAM: the client checks the server's signature. */
			crc = gsasl_step64(cs, out, &to_server);
			o->client_verified = crc == GSASL_OK;
			gsasl_free(to_server);
		}
		free(out);
		assert_non_null(sasl_server_authcid(s));
		snprintf(o->authcid, sizeof(o->authcid), "%s", sasl_server_authcid(s));
	} else {
		assert_int_equal(o->res, SASL_FAILURE);
		assert_null(out);
		assert_non_null(failure);
		/* No account is named after a failure. */
		assert_null(sasl_server_authcid(s));
	}
	const char *az = sasl_server_authzid(s);
	if (az && az[0]) {
		o->has_authzid = true;
		snprintf(o->authzid, sizeof(o->authzid), "%s", az);
	}
	gsasl_finish(cs);
	sasl_server_free(&s);
	assert_null(s);
}

/* The value of key ("s=", "i=") in a SCRAM message, into buf. */
static void scram_attr(const char *msg, const char *key, char *buf, size_t cap)
{
	size_t kl = strlen(key);
	const char *p = msg;

	for (;;) {
		if (strncmp(p, key, kl) == 0)
			break;
		p = strchr(p, ',');
		assert_non_null(p);
		p++;
	}
	p += kl;
	size_t n = strcspn(p, ",");
	assert_true(n < cap);
	memcpy(buf, p, n);
	buf[n] = '\0';
}

/* ---- mechanisms and refusals ---- */

static void test_mechanisms(void **state)
{
	const char *const *m;

	(void)state;
	m = sasl_mechanisms(true);
	assert_string_equal(m[0], "SCRAM-SHA-256");
	assert_string_equal(m[1], "SCRAM-SHA-1");
	assert_string_equal(m[2], "PLAIN");
	assert_null(m[3]);
	m = sasl_mechanisms(false);
	assert_string_equal(m[0], "SCRAM-SHA-256");
	assert_string_equal(m[1], "SCRAM-SHA-1");
	assert_null(m[2]);
}

static void test_server_new_refusals(void **state)
{
	const char *bad[] = {"DIGEST-MD5", "SCRAM-SHA-1-PLUS", "SCRAM-SHA-256-PLUS", "scram-sha-1",
			     "",	   "EXTERNAL",	       "ANONYMOUS",	     "PLAIN ",
			     "CRAM-MD5"};
	const char *failure = NULL;
	struct sasl_server *s;

	(void)state;
	assert_null(sasl_server_new("PLAIN", false, lookup, &g_dir, &failure));
	assert_string_equal(failure, "encryption-required");
	for (size_t i = 0; i < FG_ARRAY_LEN(bad); i++) {
		failure = NULL;
		assert_null(sasl_server_new(bad[i], true, lookup, &g_dir, &failure));
		assert_string_equal(failure, "invalid-mechanism");
	}
	failure = NULL;
	assert_null(sasl_server_new(NULL, true, lookup, &g_dir, &failure));
	assert_string_equal(failure, "invalid-mechanism");
	/* SCRAM is fine on a plaintext stream. */
	s = sasl_server_new("SCRAM-SHA-1", false, lookup, &g_dir, &failure);
	assert_non_null(s);
	assert_null(failure);
	sasl_server_free(&s);
	sasl_server_free(&s); /* NULL is fine */
	sasl_server_free(NULL);
	assert_int_equal(g_dir.calls, 0);
}

/* ---- SCRAM ---- */

static void scram_ok(const char *mech, bool ir)
{
	const struct client c = {"alice", PW_ALICE, NULL};
	struct outcome o;
	char salt[64], iter[16], *want;

	exchange(&g_dir, mech, false, &c, ir, &o);
	assert_int_equal(o.res, SASL_SUCCESS);
	assert_true(o.client_verified);
	assert_string_equal(o.authcid, "alice");
	assert_false(o.has_authzid);
	assert_int_equal(o.steps, ir ? 2 : 3);
	/* The final server message rides on <success/>. */
	assert_true(strncmp(o.success_data, "v=", 2) == 0);
	assert_true(strncmp(o.client_first, "n,,n=alice,r=", 13) == 0);
	/* The challenge carries the stored salt and count. */
	scram_attr(o.challenge, "s=", salt, sizeof(salt));
	scram_attr(o.challenge, "i=", iter, sizeof(iter));
	want = b64enc(g_entries[0].creds.salt, g_entries[0].creds.salt_len);
	assert_string_equal(salt, want);
	gsasl_free(want);
	assert_string_equal(iter, "4096");
	assert_int_equal(g_dir.calls, 1);
	assert_string_equal(g_dir.last, "alice");
}

static void test_scram_sha256_ok(void **state)
{
	(void)state;
	scram_ok("SCRAM-SHA-256", true);
}

static void test_scram_sha1_ok(void **state)
{
	(void)state;
	scram_ok("SCRAM-SHA-1", true);
}

static void test_scram_without_initial_response(void **state)
{
	(void)state;
	scram_ok("SCRAM-SHA-256", false);
	g_dir.calls = 0;
	scram_ok("SCRAM-SHA-1", false);
}

/* A wrong password and an unknown account fail at the same step with the
 * same condition, and the unknown one gets a plausible, stable salt. */
static void scram_refused(const char *mech)
{
	const struct client wrong = {"alice", "correct horse batterz", NULL};
	const struct client ghost = {"mallory", PW_ALICE, NULL};
	const struct client ghost2 = {"trudy", PW_ALICE, NULL};
	struct outcome ow, ou, ou2, ov;
	char s1[64], s2[64], s3[64], i1[16], i2[16];
	size_t n = 0;
	char *bin = NULL;

	exchange(&g_dir, mech, true, &wrong, true, &ow);
	assert_int_equal(ow.res, SASL_FAILURE);
	assert_string_equal(ow.failure, "not-authorized");
	assert_int_equal(ow.steps, 2);

	exchange(&g_dir, mech, true, &ghost, true, &ou);
	assert_int_equal(ou.res, SASL_FAILURE);
	assert_string_equal(ou.failure, ow.failure);
	assert_int_equal(ou.steps, ow.steps);
	assert_string_equal(g_dir.last, "mallory");

	scram_attr(ow.challenge, "i=", i1, sizeof(i1));
	scram_attr(ou.challenge, "i=", i2, sizeof(i2));
	assert_string_equal(i1, i2);
	scram_attr(ou.challenge, "s=", s1, sizeof(s1));
	assert_int_equal(gsasl_base64_from(s1, strlen(s1), &bin, &n), GSASL_OK);
	gsasl_free(bin);
	assert_int_equal(n, g_entries[0].creds.salt_len);

	/* Same name, same salt; another name, another salt. */
	exchange(&g_dir, mech, true, &ghost, true, &ov);
	scram_attr(ov.challenge, "s=", s2, sizeof(s2));
	assert_string_equal(s1, s2);
	exchange(&g_dir, mech, true, &ghost2, true, &ou2);
	assert_string_equal(ou2.failure, "not-authorized");
	scram_attr(ou2.challenge, "s=", s3, sizeof(s3));
	assert_string_not_equal(s1, s3);

	/* Even the right password of another account does not help. */
	exchange(&g_dir, mech, true, &(const struct client){"bob", PW_ALICE, NULL}, true, &ov);
	assert_string_equal(ov.failure, "not-authorized");
}

static void test_scram_sha256_refused(void **state)
{
	(void)state;
	scram_refused("SCRAM-SHA-256");
}

static void test_scram_sha1_refused(void **state)
{
	(void)state;
	scram_refused("SCRAM-SHA-1");
}

/* Unknown accounts show the configured count ([users] scram_iterations),
 * whoever signed in last: learning it from real logins would make a
 * fake's count depend on them. */
static void test_scram_fake_uses_configured_iterations(void **state)
{
	struct entry e[1] = {{"carol", {0}}};
	struct directory d = {e, 1, FG_OK, 0, ""};
	struct outcome o;
	char it[16];

	(void)state;
	assert_int_equal(sasl_set_fake_iterations(4095), FG_INVAL);
	assert_int_equal(sasl_set_fake_iterations(5000), FG_OK);
	assert_int_equal(sasl_creds_from_password("carol pw", 6000, &e[0].creds), FG_OK);
	exchange(&d, "SCRAM-SHA-256", true, &(const struct client){"carol", "carol pw", NULL}, true,
		 &o);
	assert_int_equal(o.res, SASL_SUCCESS);
	exchange(&d, "SCRAM-SHA-256", true, &(const struct client){"dave", "x", NULL}, true, &o);
	assert_string_equal(o.failure, "not-authorized");
	scram_attr(o.challenge, "i=", it, sizeof(it));
	assert_string_equal(it, "5000");
	/* Back to the usual count for the other tests. */
	assert_int_equal(sasl_set_fake_iterations(4096), FG_OK);
}

/* The same answer and the same work for an unknown account as for a wrong
 * password: the same condition at the same step, the same PBKDF2 cost for
 * PLAIN, and for SCRAM a salt that is stable per name (a random one per
 * attempt would give the game away) with the configured count. */
static void test_unknown_account_costs_the_same(void **state)
{
	struct outcome wrong, unknown;
	char salt1[64], salt2[64], it[16];

	(void)state;
	unsigned long long before = sasl_pbkdf2_iterations();
	exchange(&g_dir, "PLAIN", true, &(const struct client){"alice", "not her password", NULL},
		 true, &wrong);
	unsigned long long wrong_cost = sasl_pbkdf2_iterations() - before;
	before = sasl_pbkdf2_iterations();
	exchange(&g_dir, "PLAIN", true, &(const struct client){"nobody", "not her password", NULL},
		 true, &unknown);
	unsigned long long unknown_cost = sasl_pbkdf2_iterations() - before;
	assert_int_equal(wrong.res, SASL_FAILURE);
	assert_int_equal(unknown.res, SASL_FAILURE);
	assert_string_equal(wrong.failure, unknown.failure);
	assert_int_equal(wrong.steps, unknown.steps);
	assert_true(wrong_cost >= 4096);
	assert_int_equal(wrong_cost, unknown_cost);

	for (int m = 0; m < 2; m++) {
		const char *mech = m ? "SCRAM-SHA-1" : "SCRAM-SHA-256";
		exchange(&g_dir, mech, true, &(const struct client){"alice", "nope", NULL}, true,
			 &wrong);
		before = sasl_pbkdf2_iterations();
		exchange(&g_dir, mech, true, &(const struct client){"nobody", "nope", NULL}, true,
			 &unknown);
		/* The server derives nothing from a password in SCRAM. */
		assert_int_equal(sasl_pbkdf2_iterations(), before);
		assert_string_equal(wrong.failure, unknown.failure);
		assert_int_equal(wrong.steps, unknown.steps);
		scram_attr(unknown.challenge, "s=", salt1, sizeof(salt1));
		scram_attr(unknown.challenge, "i=", it, sizeof(it));
		assert_string_equal(it, "4096");
		exchange(&g_dir, mech, true, &(const struct client){"nobody", "other", NULL}, true,
			 &unknown);
		scram_attr(unknown.challenge, "s=", salt2, sizeof(salt2));
		assert_string_equal(salt1, salt2);
		assert_int_equal(strlen(salt1), 24); /* 16 bytes, like a real salt */
	}
}

static void test_scram_authzid(void **state)
{
	const struct client c = {"alice", PW_ALICE, "alice@contoso.test"};
	struct outcome o;

	(void)state;
	exchange(&g_dir, "SCRAM-SHA-256", false, &c, true, &o);
	assert_int_equal(o.res, SASL_SUCCESS);
	assert_true(strncmp(o.client_first, "n,a=alice@contoso.test,", 23) == 0);
	assert_true(o.has_authzid);
	assert_string_equal(o.authzid, "alice@contoso.test");
	assert_string_equal(o.authcid, "alice");
}

/* A SCRAM client of our own (RFC 5802 §3, on OpenSSL), for what gsasl's
 * client will not send: gsasl 2.2 cannot even build a "y" message (its
 * client fails when given binding data for a non-PLUS mechanism). Returns
 * the server's verdict; *steps counts the server steps taken. */
static enum sasl_result manual_scram(const char *mech, const char *gs2, const char *user,
				     const char *pw, const char **failure, unsigned *steps)
{
	const EVP_MD *md = strcmp(mech, "SCRAM-SHA-1") == 0 ? EVP_sha1() : EVP_sha256();
	int n = EVP_MD_get_size(md);
	unsigned char salt[64], salted[32], ck[32], sk[32], svk[32], sig[32];
	char cfb[128], msg[512], sf[256], nonce[128], salt_b64[128], iter[16], am[1024], got[128];
	char *b, *out = NULL, *gs2_b64, *proof_b64, *v_b64;
	size_t salt_len = 0;
	enum sasl_result r;
	struct sasl_server *s = sasl_server_new(mech, true, lookup, &g_dir, failure);

	assert_non_null(s);
	*steps = 0;
	snprintf(cfb, sizeof(cfb), "n=%s,r=c5b7a1e0d2f4", user);
	snprintf(msg, sizeof(msg), "%s%s", gs2, cfb);
	b = b64enc(msg, strlen(msg));
	r = sasl_server_step(s, b, &out, failure);
	++*steps;
	gsasl_free(b);
	if (r != SASL_CONTINUE)
		goto out;
	b64dec(out, sf, sizeof(sf));
	free(out);
	out = NULL;
	scram_attr(sf, "r=", nonce, sizeof(nonce));
	scram_attr(sf, "s=", salt_b64, sizeof(salt_b64));
	scram_attr(sf, "i=", iter, sizeof(iter));
	assert_true(strncmp(nonce, "c5b7a1e0d2f4", 12) == 0 && strlen(nonce) > 12);

	b = NULL;
	assert_int_equal(gsasl_base64_from(salt_b64, strlen(salt_b64), &b, &salt_len), GSASL_OK);
	assert_true(salt_len <= sizeof(salt));
	memcpy(salt, b, salt_len);
	gsasl_free(b);
	assert_int_equal(PKCS5_PBKDF2_HMAC(pw, (int)strlen(pw), salt, (int)salt_len, atoi(iter), md,
					   n, salted),
			 1);
	assert_non_null(HMAC(md, salted, n, (const unsigned char *)"Client Key", 10, ck, NULL));
	assert_non_null(HMAC(md, salted, n, (const unsigned char *)"Server Key", 10, svk, NULL));
	assert_true(EVP_Digest(ck, (size_t)n, sk, NULL, md, NULL));
	gs2_b64 = b64enc(gs2, strlen(gs2));
	snprintf(msg, sizeof(msg), "c=%s,r=%s", gs2_b64, nonce);
	gsasl_free(gs2_b64);
	snprintf(am, sizeof(am), "%s,%s,%s", cfb, sf, msg);
	assert_non_null(HMAC(md, sk, n, (unsigned char *)am, strlen(am), sig, NULL));
	for (int i = 0; i < n; i++)
		sig[i] ^= ck[i];
	proof_b64 = b64enc(sig, (size_t)n);
	snprintf(msg + strlen(msg), sizeof(msg) - strlen(msg), ",p=%s", proof_b64);
	gsasl_free(proof_b64);
	b = b64enc(msg, strlen(msg));
	r = sasl_server_step(s, b, &out, failure);
	++*steps;
	gsasl_free(b);
	if (r == SASL_SUCCESS) {
		/* The server proves it holds ServerKey. */
		assert_non_null(HMAC(md, svk, n, (unsigned char *)am, strlen(am), sig, NULL));
		v_b64 = b64enc(sig, (size_t)n);
		b64dec(out, got, sizeof(got));
		assert_true(strncmp(got, "v=", 2) == 0);
		assert_string_equal(got + 2, v_b64);
		gsasl_free(v_b64);
		assert_string_equal(sasl_server_authcid(s), user);
	}
out:
	free(out);
	sasl_server_free(&s);
	return r;
}

/* "n" and "y" (the client could bind but we offered no -PLUS) must work;
 * "p" (the client wants binding we do not do) must fail. */
static void test_scram_channel_binding_flags(void **state)
{
	const char *mechs[] = {"SCRAM-SHA-256", "SCRAM-SHA-1"};
	const char *p_msgs[] = {
		"p=tls-exporter,,n=alice,r=abcdefghijklmnop",
		"p=tls-unique,,n=alice,r=abcdefghijklmnop",
		"p=,,n=alice,r=abcdefghijklmnop",
	};
	const char *failure;
	unsigned steps;

	(void)state;
	for (size_t m = 0; m < FG_ARRAY_LEN(mechs); m++) {
		failure = "unset";
		assert_int_equal(manual_scram(mechs[m], "n,,", "alice", PW_ALICE, &failure, &steps),
				 SASL_SUCCESS);
		assert_null(failure);
		assert_int_equal(manual_scram(mechs[m], "y,,", "alice", PW_ALICE, &failure, &steps),
				 SASL_SUCCESS);
		assert_int_equal(manual_scram(mechs[m], "y,a=alice@contoso.test,", "alice",
					      PW_ALICE, &failure, &steps),
				 SASL_SUCCESS);
		assert_int_equal(manual_scram(mechs[m], "y,,", "alice", "wrong", &failure, &steps),
				 SASL_FAILURE);
		assert_string_equal(failure, "not-authorized");
		assert_int_equal(steps, 2);
		/* gsasl alone would let this through: "p" with a c= that
		 * carries the gs2 header and no binding data. */
		assert_int_equal(manual_scram(mechs[m], "p=tls-exporter,,", "alice", PW_ALICE,
					      &failure, &steps),
				 SASL_FAILURE);
		assert_string_equal(failure, "malformed-request");
		assert_int_equal(steps, 1);
	}

	for (size_t i = 0; i < FG_ARRAY_LEN(p_msgs); i++) {
		char *out = (char *)1, *b = b64enc(p_msgs[i], strlen(p_msgs[i]));
		struct sasl_server *s =
			sasl_server_new("SCRAM-SHA-256", true, lookup, &g_dir, &failure);

		assert_non_null(s);
		assert_int_equal(sasl_server_step(s, b, &out, &failure), SASL_FAILURE);
		assert_null(out);
		assert_string_equal(failure, "malformed-request");
		gsasl_free(b);
		sasl_server_free(&s);
	}
}

/* ---- RFC vectors ---- */

/* RFC 5802 §5 and RFC 7677 §3: user "user", password "pencil", 4096
 * iterations. StoredKey and ServerKey are not printed in the RFCs; the
 * values below were derived from the password and are checked here
 * against the RFCs' published proof and server signature, so they cannot
 * be wrong without this test saying so. */
struct vector {
	const char *mech, *salt_b64, *stored_b64, *server_b64;
	const char *client_first_bare, *server_first, *client_final_bare, *proof, *verifier;
};

static const struct vector rfc5802 = {
	"SCRAM-SHA-1",
	"QSXCR+Q6sek8bf92",
	"6dlGYMOdZcOPutkcNY8U2g7vK9Y=",
	"D+CSWLOshSulAsxiupA+qs2/fTE=",
	"n=user,r=fyko+d2lbbFgONRv9qkxdawL",
	"r=fyko+d2lbbFgONRv9qkxdawL3rfcNHYJY1ZVvWVs7j,s=QSXCR+Q6sek8bf92,i=4096",
	"c=biws,r=fyko+d2lbbFgONRv9qkxdawL3rfcNHYJY1ZVvWVs7j",
	"v0X8v3Bz2T0CJGbJQyF0X+HI4Ts=",
	"rmF9pqV8S7suAoZWja4dJRkFsKQ=",
};

static const struct vector rfc7677 = {
	"SCRAM-SHA-256",
	"W22ZaJ0SNY7soEsUEjb6gQ==",
	"WG5d8oPm3OtcPnkdi4Uo7BkeZkBFzpcXkuLmtbsT4qY=",
	"wfPLwcE6nTWhTAmQ7tl2KeoiWGPlZqQxSrmfPwDl2dU=",
	"n=user,r=rOprNGfwEbeRWgbNEkqO",
	"r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096",
	"c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0",
	"dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=",
	"6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4=",
};

static size_t unb64(const char *b64, unsigned char *out, size_t cap)
{
	char *bin = NULL;
	size_t n = 0;

	assert_int_equal(gsasl_base64_from(b64, strlen(b64), &bin, &n), GSASL_OK);
	assert_true(n <= cap);
	memcpy(out, bin, n);
	gsasl_free(bin);
	return n;
}

/* H(ClientProof XOR HMAC(StoredKey, AuthMessage)) == StoredKey and
 * HMAC(ServerKey, AuthMessage) == the server signature (RFC 5802 §3). */
static void check_vector_keys(const struct vector *v, const EVP_MD *md)
{
	unsigned char stored[32], server[32], proof[32], verifier[32], sig[32], h[32];
	char am[512];
	size_t n = (size_t)EVP_MD_get_size(md);

	assert_int_equal(unb64(v->stored_b64, stored, sizeof(stored)), n);
	assert_int_equal(unb64(v->server_b64, server, sizeof(server)), n);
	assert_int_equal(unb64(v->proof, proof, sizeof(proof)), n);
	assert_int_equal(unb64(v->verifier, verifier, sizeof(verifier)), n);
	snprintf(am, sizeof(am), "%s,%s,%s", v->client_first_bare, v->server_first,
		 v->client_final_bare);
	assert_non_null(HMAC(md, stored, (int)n, (unsigned char *)am, strlen(am), sig, NULL));
	for (size_t i = 0; i < n; i++)
		sig[i] ^= proof[i];
	assert_true(EVP_Digest(sig, n, h, NULL, md, NULL));
	assert_memory_equal(h, stored, n);
	assert_non_null(HMAC(md, server, (int)n, (unsigned char *)am, strlen(am), sig, NULL));
	assert_memory_equal(sig, verifier, n);
}

static void vector_creds(struct scram_creds *c)
{
	memset(c, 0, sizeof(*c));
	c->iterations = 4096;
	c->salt_len = unb64(rfc7677.salt_b64, c->salt, sizeof(c->salt));
	unb64(rfc7677.stored_b64, c->stored_sha256, 32);
	unb64(rfc7677.server_b64, c->server_sha256, 32);
}

static void test_rfc_vectors(void **state)
{
	struct entry e[1] = {{"user", {0}}};
	struct directory d = {e, 1, FG_OK, 0, ""};
	const struct client pencil = {"user", "pencil", NULL};
	struct outcome o;
	char salt[64];

	(void)state;
	check_vector_keys(&rfc5802, EVP_sha1());
	check_vector_keys(&rfc7677, EVP_sha256());

	/* Our PBKDF2 path gives RFC 7677's keys. */
	vector_creds(&e[0].creds);
	assert_true(sasl_check_password(&e[0].creds, "pencil"));
	assert_false(sasl_check_password(&e[0].creds, "pencil "));
	assert_false(sasl_check_password(&e[0].creds, "Pencil"));

	/* And the server speaks them to a real client, salt as published. */
	exchange(&d, "SCRAM-SHA-256", true, &pencil, true, &o);
	assert_int_equal(o.res, SASL_SUCCESS);
	assert_true(o.client_verified);
	scram_attr(o.challenge, "s=", salt, sizeof(salt));
	assert_string_equal(salt, rfc7677.salt_b64);

	memset(&e[0].creds, 0, sizeof(e[0].creds));
	e[0].creds.iterations = 4096;
	e[0].creds.salt_len = unb64(rfc5802.salt_b64, e[0].creds.salt, sizeof(e[0].creds.salt));
	unb64(rfc5802.stored_b64, e[0].creds.stored_sha1, 20);
	unb64(rfc5802.server_b64, e[0].creds.server_sha1, 20);
	exchange(&d, "SCRAM-SHA-1", true, &pencil, true, &o);
	assert_int_equal(o.res, SASL_SUCCESS);
	assert_true(o.client_verified);
	scram_attr(o.challenge, "s=", salt, sizeof(salt));
	assert_string_equal(salt, rfc5802.salt_b64);
	exchange(&d, "SCRAM-SHA-1", true, &(const struct client){"user", "pencil2", NULL}, true,
		 &o);
	assert_string_equal(o.failure, "not-authorized");
}

/* ---- PLAIN ---- */

/* One PLAIN message, as a client would put it in <auth/>. */
static enum sasl_result plain_raw(const char *msg, size_t len, const char **failure,
				  char authzid[64])
{
	struct sasl_server *s;
	enum sasl_result r;
	char *b = b64enc(msg, len), *out = NULL;

	s = sasl_server_new("PLAIN", true, lookup, &g_dir, failure);
	assert_non_null(s);
	r = sasl_server_step(s, b, &out, failure);
	gsasl_free(b);
	if (r == SASL_SUCCESS) {
		assert_string_equal(out, ""); /* <success/> with no data */
		assert_string_equal(sasl_server_authcid(s), "alice");
	} else {
		assert_null(out);
	}
	free(out);
	const char *az = sasl_server_authzid(s);
	snprintf(authzid, 64, "%s", az ? az : "(none)");
	sasl_server_free(&s);
	return r;
}

#define PLAIN(lit, f, az) plain_raw(lit, sizeof(lit) - 1, f, az)

static void test_plain(void **state)
{
	const char *failure = NULL;
	char az[64];
	struct outcome o;

	(void)state;
	assert_int_equal(PLAIN("\0alice\0" PW_ALICE, &failure, az), SASL_SUCCESS);
	assert_null(failure);
	assert_string_equal(az, "(none)"); /* not gsasl's stand-in authcid */
	assert_string_equal(g_dir.last, "alice");

	assert_int_equal(PLAIN("alice@contoso.test\0alice\0" PW_ALICE, &failure, az), SASL_SUCCESS);
	assert_string_equal(az, "alice@contoso.test");

	assert_int_equal(PLAIN("\0alice\0correct horse", &failure, az), SASL_FAILURE);
	assert_string_equal(failure, "not-authorized");
	assert_int_equal(PLAIN("\0mallory\0" PW_ALICE, &failure, az), SASL_FAILURE);
	assert_string_equal(failure, "not-authorized");
	assert_string_equal(g_dir.last, "mallory");
	assert_int_equal(PLAIN("\0bob\0" PW_ALICE, &failure, az), SASL_FAILURE);
	assert_string_equal(failure, "not-authorized");
	assert_int_equal(PLAIN("\0\0" PW_ALICE, &failure, az), SASL_FAILURE);
	assert_string_equal(failure, "not-authorized");
	assert_int_equal(PLAIN("\0alice\0", &failure, az), SASL_FAILURE);
	assert_string_equal(failure, "not-authorized");

	/* Through a real client too, with and without an initial response. */
	exchange(&g_dir, "PLAIN", true, &(const struct client){"alice", PW_ALICE, NULL}, true, &o);
	assert_int_equal(o.res, SASL_SUCCESS);
	assert_true(o.client_verified);
	assert_string_equal(o.authcid, "alice");
	assert_int_equal(o.steps, 1);
	exchange(&g_dir, "PLAIN", true, &(const struct client){"alice", PW_ALICE, NULL}, false, &o);
	assert_int_equal(o.res, SASL_SUCCESS);
	assert_int_equal(o.steps, 2);
	exchange(&g_dir, "PLAIN", true, &(const struct client){"alice", "nope", NULL}, true, &o);
	assert_string_equal(o.failure, "not-authorized");
	assert_int_equal(o.steps, 1);
	exchange(&g_dir, "PLAIN", true, &(const struct client){"zed", "nope", NULL}, true, &o);
	assert_string_equal(o.failure, "not-authorized");
	assert_int_equal(o.steps, 1);
}

static void test_plain_malformed(void **state)
{
	const char *failure = NULL;
	char az[64];

	(void)state;
	/* Fields missing, or a NUL inside the password. */
	assert_int_equal(PLAIN("alice", &failure, az), SASL_FAILURE);
	assert_string_equal(failure, "malformed-request");
	assert_int_equal(PLAIN("\0alice", &failure, az), SASL_FAILURE);
	assert_string_equal(failure, "malformed-request");
	assert_int_equal(PLAIN("\0alice\0pass\0word", &failure, az), SASL_FAILURE);
	assert_string_equal(failure, "malformed-request");
}

/* ---- lookups ---- */

static void test_lookup_errors(void **state)
{
	struct outcome o;

	(void)state;
	/* A store failure is not a wrong password. */
	g_dir.force_rc = FG_ERR;
	exchange(&g_dir, "SCRAM-SHA-256", true, &(const struct client){"alice", PW_ALICE, NULL},
		 true, &o);
	assert_int_equal(o.res, SASL_FAILURE);
	assert_string_equal(o.failure, "temporary-auth-failure");
	exchange(&g_dir, "PLAIN", true, &(const struct client){"alice", PW_ALICE, NULL}, true, &o);
	assert_string_equal(o.failure, "temporary-auth-failure");

	/* A record that cannot be used is not taken either. */
	struct entry broken[1] = {{"alice", {0}}};
	struct directory d = {broken, 1, FG_OK, 0, ""};
	exchange(&d, "SCRAM-SHA-1", true, &(const struct client){"alice", PW_ALICE, NULL}, true,
		 &o);
	assert_int_equal(o.res, SASL_FAILURE);
	assert_string_equal(o.failure, "temporary-auth-failure");
}

/* SCRAM escapes ',' and '=' in the name (RFC 5802 §5.1); the lookup sees
 * the name itself, once. */
static void test_scram_name_escaping(void **state)
{
	struct outcome o;

	(void)state;
	exchange(&g_dir, "SCRAM-SHA-256", true, &(const struct client){"a,b=c", PW_ALICE, NULL},
		 true, &o);
	assert_true(strncmp(o.client_first, "n,,n=a=2Cb=3Dc,", 15) == 0);
	assert_string_equal(o.failure, "not-authorized");
	assert_string_equal(g_dir.last, "a,b=c");
	assert_int_equal(g_dir.calls, 1);
}

/* ---- malformed input ---- */

static void step_fails(const char *mech, const char *const *before, const char *in,
		       const char *want)
{
	const char *failure = NULL;
	char *out = NULL;
	struct sasl_server *s = sasl_server_new(mech, true, lookup, &g_dir, &failure);

	assert_non_null(s);
	for (; before && *before; before++) {
		assert_int_equal(sasl_server_step(s, *before, &out, &failure), SASL_CONTINUE);
		free(out);
		out = NULL;
	}
	if (sasl_server_step(s, in, &out, &failure) != SASL_FAILURE)
		fail_msg("%s: \"%s\" was not refused", mech, in);
	assert_null(out);
	if (strcmp(failure, want) != 0)
		fail_msg("%s: \"%s\": got %s, want %s", mech, in, failure, want);
	/* And nothing after a failure. */
	assert_int_equal(sasl_server_step(s, "", &out, &failure), SASL_FAILURE);
	assert_null(out);
	sasl_server_free(&s);
}

static void test_bad_base64(void **state)
{
	const char *bad[] = {"!!!!",
			     "bixuPWFsaWNl\n",
			     " bixu",
			     "bix",
			     "bi=u",
			     "b===",
			     "bixuPWFsaWNlLHI9YWJj=",
			     "bg==bg==",
			     "bh==",
			     "bixuPQ=A",
			     "YWJj\x80",
			     "YW Jj",
			     "YW J"};

	(void)state;
	for (size_t i = 0; i < FG_ARRAY_LEN(bad); i++) {
		step_fails("SCRAM-SHA-256", NULL, bad[i], "incorrect-encoding");
		step_fails("SCRAM-SHA-1", NULL, bad[i], "incorrect-encoding");
		step_fails("PLAIN", NULL, bad[i], "incorrect-encoding");
	}
}

static void test_bad_scram_messages(void **state)
{
	const char *first[] = {"hello",	   "n,,",	 "n,,n=alice", "x,,n=alice,r=abc",
			       "n,,r=abc", "n,,n=,r=abc"};
	char *b, *out = NULL, cf[256];
	const char *failure = NULL;
	struct sasl_server *s;

	(void)state;
	for (size_t i = 0; i < FG_ARRAY_LEN(first); i++) {
		const char *failure_i = NULL;
		b = b64enc(first[i], strlen(first[i]));
		s = sasl_server_new("SCRAM-SHA-256", true, lookup, &g_dir, &failure_i);
		assert_int_equal(sasl_server_step(s, b, &out, &failure_i), SASL_FAILURE);
		assert_null(out);
		if (strcmp(failure_i, "malformed-request") != 0 &&
		    strcmp(failure_i, "not-authorized") != 0)
			fail_msg("\"%s\": %s", first[i], failure_i);
		gsasl_free(b);
		sasl_server_free(&s);
	}
	/* A NUL inside a SCRAM message. */
	b = b64enc("n,,n=al\0ice,r=abc", 17);
	step_fails("SCRAM-SHA-256", NULL, b, "malformed-request");
	gsasl_free(b);

	/* A good first message, then garbage as the final one. */
	const char *finals[] = {"garbage", "c=biws,r=wrongnonce,p=AAAA", "c=biws", ""};
	snprintf(cf, sizeof(cf), "n,,n=alice,r=abcdefghijkl");
	b = b64enc(cf, strlen(cf));
	for (size_t i = 0; i < FG_ARRAY_LEN(finals); i++) {
		char *f = b64enc(finals[i], strlen(finals[i]));

		s = sasl_server_new("SCRAM-SHA-256", true, lookup, &g_dir, &failure);
		assert_int_equal(sasl_server_step(s, b, &out, &failure), SASL_CONTINUE);
		free(out);
		out = NULL;
		enum sasl_result r = sasl_server_step(s, f, &out, &failure);
		assert_int_equal(r, SASL_FAILURE);
		assert_null(out);
		assert_true(strcmp(failure, "malformed-request") == 0 ||
			    strcmp(failure, "not-authorized") == 0);
		sasl_server_free(&s);
		gsasl_free(f);
	}
	/* Undecodable base64 at the second step is incorrect-encoding. */
	const char *before[] = {b, NULL};
	step_fails("SCRAM-SHA-256", before, "c=biws", "incorrect-encoding");
	gsasl_free(b);
}

/* A client that keeps sending empty responses is stopped. */
static void test_step_cap(void **state)
{
	const char *failure = NULL;
	char *out = NULL;
	struct sasl_server *s = sasl_server_new("SCRAM-SHA-1", true, lookup, &g_dir, &failure);
	int i;

	(void)state;
	for (i = 0; i < 20; i++) {
		enum sasl_result r = sasl_server_step(s, i % 2 ? "=" : "", &out, &failure);
		if (r == SASL_FAILURE)
			break;
		assert_int_equal(r, SASL_CONTINUE);
		assert_string_equal(out, "");
		free(out);
		out = NULL;
	}
	assert_true(i >= 2 && i < 20);
	assert_string_equal(failure, "malformed-request");
	assert_null(out);
	sasl_server_free(&s);
}

/* No second run on a finished exchange. */
static void test_no_step_after_success(void **state)
{
	const char *failure = NULL;
	char *out = NULL, *b = b64enc("\0alice\0" PW_ALICE, 7 + strlen(PW_ALICE));
	struct sasl_server *s = sasl_server_new("PLAIN", true, lookup, &g_dir, &failure);

	(void)state;
	assert_int_equal(sasl_server_step(s, b, &out, &failure), SASL_SUCCESS);
	free(out);
	out = NULL;
	assert_int_equal(sasl_server_step(s, b, &out, &failure), SASL_FAILURE);
	assert_null(out);
	assert_string_equal(failure, "malformed-request");
	/* The outcome of the exchange stands. */
	assert_string_equal(sasl_server_authcid(s), "alice");
	gsasl_free(b);
	sasl_server_free(&s);
}

/* ---- credentials ---- */

static void test_creds_from_password(void **state)
{
	struct scram_creds a, b;

	(void)state;
	assert_int_equal(sasl_creds_from_password("pw", 4095, &a), FG_INVAL);
	assert_int_equal(sasl_creds_from_password("pw", 0, &a), FG_INVAL);
	assert_int_equal(sasl_creds_from_password("", 4096, &a), FG_INVAL);
	assert_int_equal(sasl_creds_from_password(NULL, 4096, &a), FG_INVAL);
	assert_int_equal(sasl_creds_from_password("pw", 4096, NULL), FG_INVAL);

	assert_int_equal(sasl_creds_from_password("pw", 4096, &a), FG_OK);
	assert_int_equal(sasl_creds_from_password("pw", 4096, &b), FG_OK);
	assert_int_equal(a.iterations, 4096);
	assert_int_equal(a.salt_len, 16);
	assert_memory_not_equal(a.salt, b.salt, 16);
	assert_memory_not_equal(a.stored_sha256, b.stored_sha256, 32);
	assert_memory_not_equal(a.stored_sha1, a.server_sha1, 20);

	assert_true(sasl_check_password(&a, "pw"));
	assert_true(sasl_check_password(&b, "pw"));
	assert_false(sasl_check_password(&a, "pW"));
	assert_false(sasl_check_password(&a, "pw "));
	assert_false(sasl_check_password(&a, ""));
	assert_false(sasl_check_password(&a, NULL));
	assert_false(sasl_check_password(NULL, "pw"));
	/* A tampered key is noticed. */
	b = a;
	b.server_sha256[31] ^= 1;
	assert_false(sasl_check_password(&b, "pw"));

	/* SASLprep (RFC 4013 §3): a soft hyphen maps to nothing, so both
	 * spellings are one password, as a SCRAM client would see it. */
	assert_int_equal(sasl_creds_from_password("I\xc2\xadX", 4096, &a), FG_OK);
	assert_true(sasl_check_password(&a, "IX"));
	assert_false(sasl_check_password(&a, "I X"));
}

static void expect_creds_equal(const struct scram_creds *a, const struct scram_creds *b)
{
	assert_int_equal(a->iterations, b->iterations);
	assert_int_equal(a->salt_len, b->salt_len);
	assert_memory_equal(a->salt, b->salt, a->salt_len);
	assert_memory_equal(a->stored_sha1, b->stored_sha1, 20);
	assert_memory_equal(a->server_sha1, b->server_sha1, 20);
	assert_memory_equal(a->stored_sha256, b->stored_sha256, 32);
	assert_memory_equal(a->server_sha256, b->server_sha256, 32);
}

static void test_creds_encode_decode(void **state)
{
	struct scram_creds c, d;
	char *line, *again;

	(void)state;
	vector_creds(&c);
	memset(c.stored_sha1, 0x11, 20);
	memset(c.server_sha1, 0xfe, 20);
	line = sasl_creds_encode(&c);
	assert_non_null(line);
	assert_string_equal(line, "scram1:4096:W22ZaJ0SNY7soEsUEjb6gQ==:"
				  "ERERERERERERERERERERERERERE=:/v7+/v7+/v7+/v7+/v7+/v7+/v4=:"
				  "WG5d8oPm3OtcPnkdi4Uo7BkeZkBFzpcXkuLmtbsT4qY=:"
				  "wfPLwcE6nTWhTAmQ7tl2KeoiWGPlZqQxSrmfPwDl2dU=");
	assert_int_equal(sasl_creds_decode(line, &d), FG_OK);
	expect_creds_equal(&c, &d);
	again = sasl_creds_encode(&d);
	assert_string_equal(line, again);
	free(again);
	free(line);

	/* Fresh ones survive the trip and still check. */
	assert_int_equal(sasl_creds_from_password("round trip", 10000, &c), FG_OK);
	line = sasl_creds_encode(&c);
	assert_int_equal(sasl_creds_decode(line, &d), FG_OK);
	free(line);
	assert_int_equal(d.iterations, 10000);
	assert_true(sasl_check_password(&d, "round trip"));
}

static void test_creds_decode_rejects(void **state)
{
#define K1  "ERERERERERERERERERERERERERE="
#define K32 "WG5d8oPm3OtcPnkdi4Uo7BkeZkBFzpcXkuLmtbsT4qY="
#define S16 "W22ZaJ0SNY7soEsUEjb6gQ=="
#define S33 "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"
	const char *bad[] = {
		"",
		"scram1",
		"scram2:4096:" S16 ":" K1 ":" K1 ":" K32 ":" K32,
		"SCRAM1:4096:" S16 ":" K1 ":" K1 ":" K32 ":" K32,
		"xscram1:4096:" S16 ":" K1 ":" K1 ":" K32 ":" K32,
		"scram1:0:" S16 ":" K1 ":" K1 ":" K32 ":" K32,
		"scram1::" S16 ":" K1 ":" K1 ":" K32 ":" K32,
		"scram1:-1:" S16 ":" K1 ":" K1 ":" K32 ":" K32,
		"scram1:+4096:" S16 ":" K1 ":" K1 ":" K32 ":" K32,
		"scram1: 4096:" S16 ":" K1 ":" K1 ":" K32 ":" K32,
		"scram1:04096:" S16 ":" K1 ":" K1 ":" K32 ":" K32,
		"scram1:4096x:" S16 ":" K1 ":" K1 ":" K32 ":" K32,
		"scram1:0x1000:" S16 ":" K1 ":" K1 ":" K32 ":" K32,
		"scram1:99999999999:" S16 ":" K1 ":" K1 ":" K32 ":" K32,
		"scram1:4096::" K1 ":" K1 ":" K32 ":" K32,	   /* empty salt */
		"scram1:4096:" S33 ":" K1 ":" K1 ":" K32 ":" K32,  /* salt too long */
		"scram1:4096:" S16 ":" K32 ":" K1 ":" K32 ":" K32, /* wrong lengths */
		"scram1:4096:" S16 ":" K1 ":" K32 ":" K32 ":" K32,
		"scram1:4096:" S16 ":" K1 ":" K1 ":" K1 ":" K32,
		"scram1:4096:" S16 ":" K1 ":" K1 ":" K32 ":" K1,
		"scram1:4096:" S16 ":" K1 ":" K1 ":" K32,	      /* a field short */
		"scram1:4096:" S16 ":" K1 ":" K1 ":" K32 ":" K32 ":", /* one too many */
		"scram1:4096:" S16 ":" K1 ":" K1 ":" K32 ":" K32 ":" K32,
		"scram1:4096:" S16 ":" K1 ":" K1 ":" K32 ":" K32 "\n",
		"scram1:4096:W22ZaJ0SNY7soEsUEjb6gQ:" K1 ":" K1 ":" K32 ":" K32, /* no padding */
		"scram1:4096:W22ZaJ0SNY7soEsUEjb6g!==:" K1 ":" K1 ":" K32 ":" K32,
		"scram1:4096:" S16 ":ERERERERERERERERERERERERERF=:" K1 ":" K32 ":" K32,
		"scram1:4096:" S16 ":" K1 ":" K1 ":" K32
		":WG5d8oPm3OtcPnkdi4Uo7BkeZkBFzpcXkuLmtbsT4qY",
		"scram1:4096:" S16 ": " K1 ":" K1 ":" K32 ":" K32,
	};
	struct scram_creds c;

	(void)state;
	assert_int_equal(sasl_creds_decode("scram1:4096:" S16 ":" K1 ":" K1 ":" K32 ":" K32, &c),
			 FG_OK);
	for (size_t i = 0; i < FG_ARRAY_LEN(bad); i++) {
		memset(&c, 0x5a, sizeof(c));
		if (sasl_creds_decode(bad[i], &c) != FG_INVAL)
			fail_msg("accepted \"%s\"", bad[i]);
		/* Nothing half-filled is left behind. */
		assert_int_equal(c.iterations, 0);
		assert_int_equal(c.salt_len, 0);
	}
	assert_int_equal(sasl_creds_decode(NULL, &c), FG_INVAL);
#undef K1
#undef K32
#undef S16
#undef S33
}

int main(void)
{
#define T(f) cmocka_unit_test_setup(f, setup)
	const struct CMUnitTest tests[] = {
		T(test_mechanisms),
		T(test_server_new_refusals),
		T(test_scram_sha256_ok),
		T(test_scram_sha1_ok),
		T(test_scram_without_initial_response),
		T(test_scram_sha256_refused),
		T(test_scram_sha1_refused),
		T(test_scram_fake_uses_configured_iterations),
		T(test_unknown_account_costs_the_same),
		T(test_scram_authzid),
		T(test_scram_channel_binding_flags),
		T(test_rfc_vectors),
		T(test_plain),
		T(test_plain_malformed),
		T(test_lookup_errors),
		T(test_scram_name_escaping),
		T(test_bad_base64),
		T(test_bad_scram_messages),
		T(test_step_cap),
		T(test_no_step_after_success),
		T(test_creds_from_password),
		T(test_creds_encode_decode),
		T(test_creds_decode_rejects),
	};
#undef T
	return cmocka_run_group_tests(tests, group_setup, group_teardown);
}

/* The two roles of an inbound stream, c2s and s2s-in, fed recorded peer
 * streams over a real connection (xmpp_fixture.h: a socket pair, conn.c,
 * the stream core, the role, the router): each recording whole, split
 * into two writes at every offset, and one byte at a time, with the loop
 * run between writes so the stream core really gets the pieces apart.
 * Every run must give the same bytes back.
 *
 * PLAIN is never accepted in the clear (sasl.h), so the client recording
 * logs in with SCRAM-SHA-256 on a stream without TLS ([c2s] require_tls =
 * false): its one response depends on the server's nonce, so that turn is
 * computed from the challenge when it arrives, and a client turn is only
 * sent once the answer it waits for is there, as a real client does. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "c2s.h"
#include "counters.h"
#include "dialback.h"
#include "route.h"
#include "s2s_in.h"
#include "session.h"
#include "xmpp_fixture.h"

#include <ctype.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/sha.h>

/* ---- recordings ---- */

#define STREAM_NS "xmlns:stream='http://etherx.jabber.org/streams'"
#define SASL_NS	  "xmlns='urn:ietf:params:xml:ns:xmpp-sasl'"

/* A client's stream header (RFC 6120 §4.7), initial and after SASL. */
#define C2S_HEADER                                                             \
	"<?xml version='1.0'?><stream:stream xmlns='jabber:client' " STREAM_NS \
	" to='contoso.test' version='1.0' xml:lang='en'>"
#define C2S_RESTART \
	"<stream:stream xmlns='jabber:client' " STREAM_NS " to='contoso.test' version='1.0'>"
#define C2S_BIND                                                                     \
	"<iq type='set' id='bind_1'><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'>" \
	"<resource>balcony</resource></bind></iq>"
#define C2S_MESSAGE                                                     \
	"<message to='alice@contoso.test/balcony' type='chat' id='m1'>" \
	"<body>Wherefore art thou?</body></message>"
#define CLOSE "</stream:stream>"

#define CNONCE "rOprNGfwEbeRWgbNEkqO"

/* What we answer a client, with the random parts normalized (see
 * normalize): the stream ids, the SCRAM challenge and the <success/>
 * data, which are checked on their own. */
#define C2S_OUR_HEADER                                                         \
	"<?xml version='1.0'?><stream:stream xmlns='jabber:client' " STREAM_NS \
	" from='contoso.test' id='ID' version='1.0' xml:lang='en'>"
#define C2S_FEATURES_CLEAR                                                     \
	"<stream:features><starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'/>" \
	"<mechanisms " SASL_NS "><mechanism>SCRAM-SHA-256</mechanism>"         \
	"<mechanism>SCRAM-SHA-1</mechanism></mechanisms></stream:features>"
#define C2S_FEATURES_AUTHED                                                          \
	"<stream:features><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'/>"          \
	"<session xmlns='urn:ietf:params:xml:ns:xmpp-session'><optional/></session>" \
	"<ver xmlns='urn:xmpp:features:rosterver'/><sm xmlns='urn:xmpp:sm:3'/>"      \
	"<csi xmlns='urn:xmpp:csi:0'/></stream:features>"
#define C2S_CHALLENGE "<challenge " SASL_NS ">CHALLENGE</challenge>"
#define C2S_SUCCESS   "<success " SASL_NS ">SUCCESS</success>"
#define C2S_BOUND                                                                        \
	"<iq type='result' id='bind_1' to='alice@contoso.test/balcony'>"                 \
	"<bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'><jid>alice@contoso.test/balcony" \
	"</jid></bind></iq>"
#define C2S_ECHO                                                        \
	"<message to='alice@contoso.test/balcony' type='chat' id='m1' " \
	"from='alice@contoso.test/balcony'><body>Wherefore art thou?</body></message>"

static const char c2s_expected[] = C2S_OUR_HEADER C2S_FEATURES_CLEAR C2S_CHALLENGE C2S_SUCCESS
	C2S_OUR_HEADER C2S_FEATURES_AUTHED C2S_BOUND C2S_ECHO CLOSE;

/* A partner's server asking us, the authoritative server of contoso.test,
 * about keys it got on a stream with id S2S_ID (XEP-0220 §2.1.2). */
#define S2S_HEADER_FROM(from)                                                  \
	"<?xml version='1.0'?><stream:stream xmlns='jabber:server' " STREAM_NS \
	" xmlns:db='jabber:server:dialback' from='" from "' to='contoso.test' version='1.0'>"
#define S2S_ID "D60000229F"
#define S2S_VERIFY(key) \
	"<db:verify from='fabrikam.test' to='contoso.test' id='" S2S_ID "'>" key "</db:verify>"
#define S2S_OUR_HEADER(to)                                                     \
	"<?xml version='1.0'?><stream:stream xmlns='jabber:server' " STREAM_NS \
	" xmlns:db='jabber:server:dialback' from='contoso.test' to='" to       \
	"' id='ID' version='1.0' xml:lang='en'>"
/* Dialback without TLS, and XEP-0288 (the partner's bidi is on by default;
 * its row needs no TLS, so it is offered in the clear). */
#define S2S_FEATURES_TCP_DIALBACK                                                            \
	"<stream:features><dialback xmlns='urn:xmpp:features:dialback'><errors/></dialback>" \
	"<bidi xmlns='urn:xmpp:features:bidi'/></stream:features>"
#define S2S_FEATURES_TCP_DIALBACK_NO_BIDI                                                    \
	"<stream:features><dialback xmlns='urn:xmpp:features:dialback'><errors/></dialback>" \
	"</stream:features>"
#define S2S_BIDI  "<bidi xmlns='urn:xmpp:bidi'/>"
#define WRONG_KEY "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"

static const char s2s_expected[] = S2S_OUR_HEADER("fabrikam.test") S2S_FEATURES_TCP_DIALBACK
	"<db:verify from='contoso.test' to='fabrikam.test' id='" S2S_ID "' type='valid'/>"
	"<db:verify from='contoso.test' to='fabrikam.test' id='" S2S_ID "' type='invalid'/>" CLOSE;

/* A stream error as we send it (RFC 6120 §4.9), then the close. */
#define STREAM_ERROR(cond, text)                                                \
	"<stream:error><" cond " xmlns='urn:ietf:params:xml:ns:xmpp-streams'/>" \
	"<text xmlns='urn:ietf:params:xml:ns:xmpp-streams' xml:lang='en'>" text \
	"</text></stream:error>" CLOSE

/* ---- SCRAM-SHA-256, the client's side (RFC 5802, RFC 7677) ---- */

static char *b64(const void *data, size_t n)
{
	char *out = malloc(4 * ((n + 2) / 3) + 1);
	assert_non_null(out);
	EVP_EncodeBlock((unsigned char *)out, data, (int)n);
	return out;
}

/* Decodes into out (NUL-terminated); returns the length. */
static size_t unb64(const char *in, size_t inlen, char *out, size_t cap)
{
	assert_true(inlen % 4 == 0 && inlen / 4 * 3 < cap);
	int n = EVP_DecodeBlock((unsigned char *)out, (const unsigned char *)in, (int)inlen);
	assert_true(n >= 0);
	if (inlen && in[inlen - 1] == '=')
		n--;
	if (inlen > 1 && in[inlen - 2] == '=')
		n--;
	out[n] = '\0';
	return (size_t)n;
}

struct scram {
	const char *user, *password;
	char client_first_bare[128];
	char server_first[256];
	char success_b64[128]; /* what <success/> must carry: v=ServerSignature */
};

static void scram_start(struct scram *sc, const char *user, const char *password)
{
	memset(sc, 0, sizeof(*sc));
	sc->user = user;
	sc->password = password;
	snprintf(sc->client_first_bare, sizeof(sc->client_first_bare), "n=%s,r=" CNONCE, user);
}

/* <auth/> with the client-first-message. */
static char *scram_auth(struct scram *sc)
{
	char first[160], *out = malloc(400);
	snprintf(first, sizeof(first), "n,,%s", sc->client_first_bare);
	char *e = b64(first, strlen(first));
	assert_non_null(out);
	snprintf(out, 400, "<auth " SASL_NS " mechanism='SCRAM-SHA-256'>%s</auth>", e);
	free(e);
	return out;
}

/* The text of the last <name ...>TEXT</name> in our output. */
static void element_text(const char *out, const char *name, char *buf, size_t cap)
{
	char open[64], close[64];
	snprintf(open, sizeof(open), "<%s ", name);
	snprintf(close, sizeof(close), "</%s>", name);
	const char *s = NULL;
	for (const char *f = strstr(out, open); f; f = strstr(f + 1, open))
		s = f;
	assert_non_null(s);
	s = strchr(s, '>');
	assert_non_null(s);
	s++;
	const char *e = strstr(s, close);
	assert_non_null(e);
	assert_true((size_t)(e - s) < cap);
	memcpy(buf, s, (size_t)(e - s));
	buf[e - s] = '\0';
}

static void hmac256(const void *key, size_t klen, const char *msg, unsigned char out[32])
{
	unsigned len = 32;
	assert_non_null(HMAC(EVP_sha256(), key, (int)klen, (const unsigned char *)msg, strlen(msg),
			     out, &len));
}

/* <response/> with the client-final-message for the challenge in out;
 * checks the server-first-message on the way: our nonce first, and for an
 * account that exists (acc) its salt and iteration count. */
static char *scram_response(struct scram *sc, const char *out, const struct account *acc)
{
	char chal_b64[400], nonce[128], salt_b64[64], salt[64], *resp = malloc(600);
	unsigned iter = 0;
	assert_non_null(resp);
	element_text(out, "challenge", chal_b64, sizeof(chal_b64));
	unb64(chal_b64, strlen(chal_b64), sc->server_first, sizeof(sc->server_first));
	assert_int_equal(
		sscanf(sc->server_first, "r=%127[^,],s=%63[^,],i=%u", nonce, salt_b64, &iter), 3);
	assert_int_equal(strncmp(nonce, CNONCE, strlen(CNONCE)), 0);
	assert_true(strlen(nonce) > strlen(CNONCE));
	size_t salt_len = unb64(salt_b64, strlen(salt_b64), salt, sizeof(salt));
	if (acc) {
		assert_int_equal(iter, acc->creds.iterations);
		assert_int_equal(salt_len, acc->creds.salt_len);
		assert_memory_equal(salt, acc->creds.salt, salt_len);
	}

	unsigned char salted[32], client_key[32], stored_key[32], server_key[32], sig[32];
	unsigned char proof[32];
	assert_int_equal(PKCS5_PBKDF2_HMAC(sc->password, (int)strlen(sc->password),
					   (const unsigned char *)salt, (int)salt_len, (int)iter,
					   EVP_sha256(), 32, salted),
			 1);
	hmac256(salted, 32, "Client Key", client_key);
	SHA256(client_key, 32, stored_key);
	hmac256(salted, 32, "Server Key", server_key);
	char without_proof[200], auth_message[600], final[300];
	snprintf(without_proof, sizeof(without_proof), "c=biws,r=%s", nonce);
	snprintf(auth_message, sizeof(auth_message), "%s,%s,%s", sc->client_first_bare,
		 sc->server_first, without_proof);
	hmac256(stored_key, 32, auth_message, sig);
	for (int i = 0; i < 32; i++)
		proof[i] = client_key[i] ^ sig[i];
	char *p64 = b64(proof, 32);
	snprintf(final, sizeof(final), "%s,p=%s", without_proof, p64);
	free(p64);

	/* The server's proof it knew the keys too. */
	hmac256(server_key, 32, auth_message, sig);
	char *s64 = b64(sig, 32), v[80];
	snprintf(v, sizeof(v), "v=%s", s64);
	free(s64);
	char *v64 = b64(v, strlen(v));
	snprintf(sc->success_b64, sizeof(sc->success_b64), "%s", v64);
	free(v64);

	char *f64 = b64(final, strlen(final));
	snprintf(resp, 600, "<response " SASL_NS ">%s</response>", f64);
	free(f64);
	return resp;
}

/* ---- playing a recording ---- */

enum split { WHOLE, SPLIT_AT, BYTES };

/* One client turn: sent once `wait` is in our output (NULL: at once);
 * the text is fixed or made by make() from what came so far. */
struct turn {
	const char *wait;
	const char *text;
	char *(*make)(void *ud, struct xfx_peer *p);
};

/* Sends each turn as the split says; returns the recording's length. In
 * SPLIT_AT mode the offset `at` of the whole recording cuts it into two
 * writes (a turn boundary already separates what a client must wait
 * for). */
static size_t play(struct xfx_peer *p, const struct turn *turns, size_t n, enum split mode,
		   size_t at, void *ud)
{
	size_t base = 0;
	for (size_t i = 0; i < n; i++) {
		const struct turn *t = &turns[i];
		if (t->wait && !xfx_wait_for(p, t->wait))
			fail_msg("turn %zu: no %s in what we got:\n%s", i, t->wait, p->out);
		char *made = t->make ? t->make(ud, p) : NULL;
		const char *text = made ? made : t->text;
		size_t len = strlen(text);
		if (mode == BYTES) {
			for (size_t k = 0; k < len; k++)
				xfx_send(p, text + k, 1);
		} else if (mode == SPLIT_AT && at > base && at < base + len) {
			xfx_send(p, text, at - base);
			xfx_send(p, text + (at - base), len - (at - base));
		} else {
			xfx_send(p, text, len);
		}
		base += len;
		free(made);
	}
	return base;
}

/* Replaces, in place, the 32-hex stream ids with ID and the text of
 * <challenge/> and <success/> with CHALLENGE and SUCCESS. */
static void normalize(char *s)
{
	char *w = s;
	for (const char *r = s; *r;) {
		size_t k = 0;
		if (strncmp(r, " id='", 5) == 0) {
			while (k < 32 && isxdigit((unsigned char)r[5 + k]))
				k++;
			if (k == 32 && r[37] == '\'') {
				memcpy(w, " id='ID'", 8);
				w += 8;
				r += 38;
				continue;
			}
		}
		const char *names[] = {"challenge", "success"};
		const char *subst[] = {"CHALLENGE", "SUCCESS"};
		bool done = false;
		for (int i = 0; i < 2 && !done; i++) {
			char open[64], close[64];
			snprintf(open, sizeof(open), "<%s " SASL_NS ">", names[i]);
			snprintf(close, sizeof(close), "</%s>", names[i]);
			const char *e;
			if (strncmp(r, open, strlen(open)) == 0 && (e = strstr(r, close))) {
				size_t ol = strlen(open), sl = strlen(subst[i]);
				memmove(w, r, ol);
				w += ol;
				memcpy(w, subst[i], sl);
				w += sl;
				r = e;
				done = true;
			}
		}
		if (!done)
			*w++ = *r++;
	}
	*w = '\0';
}

/* ---- c2s ---- */

struct c2s_state {
	struct xfx fx;
	const struct account *alice;
	struct scram sc;
};

static int c2s_setup(void **state)
{
	struct c2s_state *st = calloc(1, sizeof(*st));
	if (!st)
		return -1;
	xfx_init(&st->fx);
	st->alice = xfx_account(&st->fx, "alice@contoso.test", "capulet-balcony");
	xfx_account(&st->fx, "romeo@contoso.test", "montague");
	*state = st;
	return 0;
}

static int c2s_teardown(void **state)
{
	struct c2s_state *st = *state;
	xfx_free(&st->fx);
	free(st);
	return 0;
}

static char *make_auth(void *ud, struct xfx_peer *p)
{
	struct c2s_state *st = ud;
	(void)p;
	char *auth = scram_auth(&st->sc);
	char *out = malloc(strlen(auth) + sizeof(C2S_HEADER));
	assert_non_null(out);
	strcpy(out, C2S_HEADER);
	strcat(out, auth);
	free(auth);
	return out;
}

static char *make_response(void *ud, struct xfx_peer *p)
{
	struct c2s_state *st = ud;
	return scram_response(&st->sc, p->out, st->alice);
}

/* The client's whole session: log in, bind, a message to herself, close. */
static const struct turn c2s_session[] = {
	{NULL, NULL, make_auth},
	{"<challenge ", NULL, make_response},
	{"<success ", C2S_RESTART C2S_BIND C2S_MESSAGE CLOSE, NULL},
};

/* One run of the session; checks every byte we sent back. */
static size_t c2s_run(struct c2s_state *st, enum split mode, size_t at)
{
	struct xfx_peer *p = xfx_connect(&st->fx, &c2s_role);
	scram_start(&st->sc, "alice", "capulet-balcony");
	size_t n = play(p, c2s_session, FG_ARRAY_LEN(c2s_session), mode, at, st);
	if (!xfx_wait_closed(p))
		fail_msg("split %d at %zu: the stream did not close; we got:\n%s", (int)mode, at,
			 p->out);
	char success[128];
	element_text(p->out, "success", success, sizeof(success));
	if (strcmp(success, st->sc.success_b64) != 0)
		fail_msg("split %d at %zu: <success/> carries %s, not %s", (int)mode, at, success,
			 st->sc.success_b64);
	normalize(p->out);
	if (strcmp(p->out, c2s_expected) != 0)
		fail_msg("split %d at %zu: we sent\n%s\ninstead of\n%s", (int)mode, at, p->out,
			 c2s_expected);
	/* The session ended with its stream. */
	assert_int_equal(st->fx.srv.nstreams, 0);
	assert_int_equal(session_count(&st->fx.srv), 0);
	assert_null(session_find(&st->fx.srv, "alice@contoso.test", "balcony"));
	xfx_peer_free(p);
	return n;
}

static void test_c2s_session_whole(void **state)
{
	c2s_run(*state, WHOLE, 0);
}

static void test_c2s_session_split_at_every_offset(void **state)
{
	struct c2s_state *st = *state;
	size_t n = c2s_run(st, WHOLE, 0);
	assert_true(n > 500);
	for (size_t at = 1; at < n; at++)
		assert_int_equal(c2s_run(st, SPLIT_AT, at), n);
}

static void test_c2s_session_byte_by_byte(void **state)
{
	struct c2s_state *st = *state;
	size_t n = c2s_run(st, WHOLE, 0);
	assert_int_equal(c2s_run(st, BYTES, 0), n);
}

/* A new stream on which alice logs in; after <success/> the client sends
 * `then` (the restart and what follows). */
static struct xfx_peer *login_then(struct c2s_state *st, const char *then)
{
	struct xfx_peer *p = xfx_connect(&st->fx, &c2s_role);
	scram_start(&st->sc, "alice", "capulet-balcony");
	const struct turn t[] = {
		c2s_session[0],
		c2s_session[1],
		{"<success ", then, NULL},
	};
	play(p, t, FG_ARRAY_LEN(t), WHOLE, 0, st);
	return p;
}

/* While bound: the session is in the registry under her full JID, the
 * stream is authenticated for her bare JID; the close ends both. */
static void test_c2s_bound_session_in_registry(void **state)
{
	struct c2s_state *st = *state;
	struct xfx_peer *p = login_then(st, C2S_RESTART C2S_BIND);
	assert_true(xfx_wait_for(p, "</jid></bind></iq>"));
	struct session *sess = session_find(&st->fx.srv, "alice@contoso.test", "balcony");
	assert_non_null(sess);
	assert_string_equal(session_full(sess), "alice@contoso.test/balcony");
	assert_int_equal(session_count(&st->fx.srv), 1);
	assert_non_null(xfx_stream(p));
	assert_int_equal(stream_state(p->s), STREAM_READY);
	assert_string_equal(stream_authed(p->s), "alice@contoso.test");
	assert_false(stream_secure(p->s));

	xfx_send_str(p, CLOSE);
	assert_true(xfx_wait_closed(p));
	assert_int_equal(session_count(&st->fx.srv), 0);
	assert_null(session_find(&st->fx.srv, "alice@contoso.test", "balcony"));
	/* The last words: the bind result, then our close. */
	const char tail[] = C2S_BOUND CLOSE;
	assert_true(p->len >= strlen(tail));
	assert_string_equal(p->out + p->len - strlen(tail), tail);
}

static char *make_wrong_response(void *ud, struct xfx_peer *p)
{
	struct c2s_state *st = ud;
	st->sc.password = "rosaline";
	return scram_response(&st->sc, p->out, NULL);
}

#define SASL_NOT_AUTHORIZED "<failure " SASL_NS "><not-authorized/></failure>"

/* A new stream on which alice logs in with a wrong password. */
static struct xfx_peer *c2s_wrong_attempt(struct c2s_state *st)
{
	struct xfx_peer *p = xfx_connect(&st->fx, &c2s_role);
	scram_start(&st->sc, "alice", "rosaline");
	const struct turn first[] = {
		{NULL, NULL, make_auth},
		{"<challenge ", NULL, make_wrong_response},
	};
	play(p, first, FG_ARRAY_LEN(first), WHOLE, 0, st);
	return p;
}

/* A wrong password: <failure><not-authorized/>, the stream stays open for
 * another try, and the third failure on one stream ends it. */
static void test_c2s_wrong_password(void **state)
{
	struct c2s_state *st = *state;
	struct xfx_peer *p = c2s_wrong_attempt(st);
	assert_true(xfx_wait_for(p, "</failure>"));
	normalize(p->out);
	assert_string_equal(p->out,
			    C2S_OUR_HEADER C2S_FEATURES_CLEAR C2S_CHALLENGE SASL_NOT_AUTHORIZED);
	assert_non_null(xfx_stream(p));
	assert_int_equal(stream_state(p->s), STREAM_NEGOTIATING);
	assert_null(stream_authed(p->s));

	/* Two more attempts on the same stream. */
	for (int i = 0; i < 2; i++) {
		p->len = 0;
		p->out[0] = '\0';
		char *auth = scram_auth(&st->sc);
		xfx_send_str(p, auth);
		free(auth);
		assert_true(xfx_wait_for(p, "</challenge>"));
		char *resp = make_wrong_response(st, p);
		xfx_send_str(p, resp);
		free(resp);
	}
	assert_true(xfx_wait_closed(p));
	normalize(p->out);
	assert_string_equal(p->out,
			    C2S_CHALLENGE SASL_NOT_AUTHORIZED STREAM_ERROR(
				    "policy-violation", "too many failed authentication attempts"));
	assert_int_equal(session_count(&st->fx.srv), 0);
}

/* An account that does not exist fails exactly like a wrong password, at
 * the same step (after the challenge). */
static void test_c2s_unknown_account(void **state)
{
	struct c2s_state *st = *state;
	struct xfx_peer *p = xfx_connect(&st->fx, &c2s_role);
	scram_start(&st->sc, "tybalt", "whatever");
	const struct turn t[] = {
		{NULL, NULL, make_auth},
		{"<challenge ", NULL, make_wrong_response},
		{"</failure>", CLOSE, NULL},
	};
	play(p, t, FG_ARRAY_LEN(t), WHOLE, 0, st);
	assert_true(xfx_wait_closed(p));
	normalize(p->out);
	assert_string_equal(
		p->out, C2S_OUR_HEADER C2S_FEATURES_CLEAR C2S_CHALLENGE SASL_NOT_AUTHORIZED CLOSE);
}

/* PLAIN would show the password to anyone on the path: refused in the
 * clear even with require_tls off (no password was checked, so the
 * throttle does not count it). */
static void test_c2s_plain_refused_in_the_clear(void **state)
{
	struct c2s_state *st = *state;
	struct xfx_peer *p = xfx_connect(&st->fx, &c2s_role);
	/* "\0alice\0capulet-balcony" */
	xfx_send_str(p, C2S_HEADER "<auth " SASL_NS
				   " mechanism='PLAIN'>AGFsaWNlAGNhcHVsZXQtYmFsY29ueQ==</auth>");
	assert_true(xfx_wait_for(p, "</failure>"));
	xfx_send_str(p, CLOSE);
	assert_true(xfx_wait_closed(p));
	normalize(p->out);
	assert_string_equal(p->out, C2S_OUR_HEADER C2S_FEATURES_CLEAR
			    "<failure " SASL_NS "><encryption-required/><text xml:lang='en'>PLAIN "
			    "needs TLS; use STARTTLS or a SCRAM mechanism</text></failure>" CLOSE);
	assert_int_equal(session_count(&st->fx.srv), 0);
}

/* [c2s] require_tls on: an <auth/> in the clear gets the SASL failure
 * <encryption-required/> (RFC 6120 §6.4.4), not a stream error, and the
 * stream stays open for STARTTLS. */
static void test_c2s_auth_before_tls_required(void **state)
{
	struct c2s_state *st = *state;
	st->fx.conf->c2s_require_tls = 1;
	struct xfx_peer *p = xfx_connect(&st->fx, &c2s_role);
	scram_start(&st->sc, "alice", "capulet-balcony");
	char *auth = make_auth(st, p);
	xfx_send_str(p, auth);
	free(auth);
	assert_true(xfx_wait_for(p, "</failure>"));
	assert_non_null(xfx_stream(p));
	assert_int_equal(stream_state(p->s), STREAM_NEGOTIATING);
	xfx_send_str(p, CLOSE);
	assert_true(xfx_wait_closed(p));
	normalize(p->out);
	assert_string_equal(p->out, C2S_OUR_HEADER
			    "<stream:features><starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'>"
			    "<required/></starttls></stream:features>"
			    "<failure " SASL_NS "><encryption-required/><text xml:lang='en'>TLS "
			    "is required first; use STARTTLS</text></failure>" CLOSE);
}

/* With the throttle's delays on: a wrong password is answered after the
 * first delay (1 s), and an <auth/> the client sends meanwhile waits its
 * turn: its challenge comes after the failure, and the right password then
 * works on the same stream. */
static void test_c2s_failure_held_and_next_attempt_waits(void **state)
{
	struct c2s_state *st = *state;
	st->fx.conf->c2s_auth_delay_max = 30;
	struct xfx_peer *p = c2s_wrong_attempt(st);
	long long sent = xfx_now_ms();
	p->len = 0;
	p->out[0] = '\0';
	scram_start(&st->sc, "alice", "capulet-balcony");
	char *auth = scram_auth(&st->sc);
	xfx_send_str(p, auth);
	free(auth);
	assert_true(xfx_wait_for(p, "</challenge>"));
	/* Timers never fire early: a lower bound only. */
	assert_true(xfx_now_ms() - sent >= 990);
	char *resp = make_response(st, p);
	xfx_send_str(p, resp);
	free(resp);
	assert_true(xfx_wait_for(p, "</success>"));
	normalize(p->out);
	assert_string_equal(p->out, SASL_NOT_AUTHORIZED C2S_CHALLENGE C2S_SUCCESS);
	assert_int_equal(
		throttle_failures(st->fx.srv.auth_throttle, "127.0.0.1", throttle_now_ms()), 1);
	p->len = 0;
	p->out[0] = '\0';
	xfx_send_str(p, C2S_RESTART C2S_BIND);
	assert_true(xfx_wait_for(p, "</jid></bind></iq>"));
}

/* [c2s] require_tls = false: a stanza before login is refused because the
 * stream is not authenticated, not because TLS is missing (the features
 * offered STARTTLS without <required/>). */
static void test_c2s_stanza_before_login_tls_optional(void **state)
{
	struct c2s_state *st = *state;
	struct xfx_peer *p = xfx_connect(&st->fx, &c2s_role);
	xfx_send_str(p, C2S_HEADER "<message to='alice@contoso.test'><body>hi</body></message>");
	assert_true(xfx_wait_closed(p));
	normalize(p->out);
	assert_string_equal(p->out, C2S_OUR_HEADER C2S_FEATURES_CLEAR STREAM_ERROR(
					    "not-authorized", "the stream is not authenticated; no "
							      "stanza is accepted before that"));
	assert_int_equal(session_count(&st->fx.srv), 0);
}

/* Authenticated but not bound: a stanza is refused with not-authorized
 * (RFC 6120 §7.1) and the stream ends. */
static void test_c2s_stanza_before_bind(void **state)
{
	struct c2s_state *st = *state;
	struct xfx_peer *p = login_then(st, C2S_RESTART C2S_MESSAGE);
	assert_true(xfx_wait_closed(p));
	normalize(p->out);
	assert_string_equal(p->out, C2S_OUR_HEADER C2S_FEATURES_CLEAR C2S_CHALLENGE C2S_SUCCESS
					    C2S_OUR_HEADER C2S_FEATURES_AUTHED STREAM_ERROR(
						    "not-authorized",
						    "bind a resource before sending stanzas"));
	assert_int_equal(session_count(&st->fx.srv), 0);
}

/* ---- s2s-in ---- */

struct s2s_state {
	struct xfx fx;
	char valid_key[DIALBACK_KEY_HEX_LEN + 1];
	char *recording; /* header, db:verify valid, db:verify invalid, close */
};

static int s2s_setup(void **state)
{
	struct s2s_state *st = calloc(1, sizeof(*st));
	if (!st)
		return -1;
	xfx_init(&st->fx);
	/* SPEC §2 row 17: TCP Dialback only. */
	xfx_partner(&st->fx, "fabrikam.test", NEG_NOT_SUPPORTED, NEG_NOT_SUPPORTED, true, NULL);
	/* Row 13: TLS Dialback only. */
	xfx_partner(&st->fx, "adatum.test", NEG_REQUIRED, NEG_NOT_SUPPORTED, true, NULL);
	/* The key we hand out as contoso.test (originating) to fabrikam.test
	 * (receiving) on stream S2S_ID. */
	assert_int_equal(
		dialback_key(XFX_SECRET, "fabrikam.test", "contoso.test", S2S_ID, st->valid_key),
		FG_OK);
	const char *fmt = S2S_HEADER_FROM("fabrikam.test") S2S_VERIFY("%s") S2S_VERIFY("%s") CLOSE;
	size_t n = strlen(fmt) + 2 * DIALBACK_KEY_HEX_LEN;
	st->recording = malloc(n);
	if (!st->recording)
		return -1;
	snprintf(st->recording, n, fmt, st->valid_key, WRONG_KEY);
	*state = st;
	return 0;
}

static int s2s_teardown(void **state)
{
	struct s2s_state *st = *state;
	xfx_free(&st->fx);
	free(st->recording);
	free(st);
	return 0;
}

static size_t s2s_run(struct s2s_state *st, enum split mode, size_t at)
{
	struct xfx_peer *p = xfx_connect(&st->fx, &s2s_in_role);
	const struct turn t[] = {{NULL, st->recording, NULL}};
	size_t n = play(p, t, 1, mode, at, st);
	if (!xfx_wait_closed(p))
		fail_msg("split %d at %zu: the stream did not close; we got:\n%s", (int)mode, at,
			 p->out);
	normalize(p->out);
	if (strcmp(p->out, s2s_expected) != 0)
		fail_msg("split %d at %zu: we sent\n%s\ninstead of\n%s", (int)mode, at, p->out,
			 s2s_expected);
	assert_int_equal(st->fx.srv.nstreams, 0);
	xfx_peer_free(p);
	return n;
}

static void test_s2s_verify_whole(void **state)
{
	struct s2s_state *st = *state;
	/* The key in the recording is the one the secret gives, the other is
	 * not. */
	assert_true(dialback_key_check(XFX_SECRET, "fabrikam.test", "contoso.test", S2S_ID,
				       st->valid_key));
	assert_false(
		dialback_key_check(XFX_SECRET, "fabrikam.test", "contoso.test", S2S_ID, WRONG_KEY));
	s2s_run(st, WHOLE, 0);
}

static void test_s2s_verify_split_at_every_offset(void **state)
{
	struct s2s_state *st = *state;
	size_t n = strlen(st->recording);
	for (size_t at = 1; at < n; at++)
		assert_int_equal(s2s_run(st, SPLIT_AT, at), n);
}

static void test_s2s_verify_byte_by_byte(void **state)
{
	s2s_run(*state, BYTES, 0);
}

/* Runs one s2s-in stream fed `in` whole and returns what we sent,
 * normalized (the caller frees p). */
static struct xfx_peer *s2s_once(struct s2s_state *st, const char *in)
{
	struct xfx_peer *p = xfx_connect(&st->fx, &s2s_in_role);
	xfx_send_str(p, in);
	if (!xfx_wait_closed(p))
		fail_msg("the stream did not close; we got:\n%s", p->out);
	normalize(p->out);
	return p;
}

/* What follows our stream header in out, after checking the header is an
 * s2s one from `from` with a normalized id. */
static const char *after_header(const char *out, const char *from)
{
	char prefix[300];
	snprintf(prefix, sizeof(prefix),
		 "<?xml version='1.0'?><stream:stream xmlns='jabber:server' " STREAM_NS
		 " xmlns:db='jabber:server:dialback' from='%s'",
		 from);
	assert_int_equal(strncmp(out, prefix, strlen(prefix)), 0);
	const char *end = strstr(out, " id='ID' version='1.0' xml:lang='en'>");
	assert_non_null(end);
	return strchr(end, '>') + 1;
}

static unsigned long long auth_failures(const char *reason)
{
	const struct counters *c = counters_get();
	for (size_t i = 0; i < COUNTERS_REASONS_MAX; i++)
		if (c->auth[i].reason && strcmp(c->auth[i].reason, reason) == 0)
			return c->auth[i].n;
	return 0;
}

/* SPEC §3: a stream from a domain that is no partner is closed with a
 * stream error naming the domain. */
static void test_s2s_not_a_partner(void **state)
{
	struct s2s_state *st = *state;
	unsigned long long before = auth_failures("not-a-partner");
	struct xfx_peer *p = s2s_once(st, S2S_HEADER_FROM("evil.test"));
	/* Our header (whether it names evil.test in 'to' is left open), then
	 * the error. */
	const char *rest = after_header(p->out, "contoso.test");
	assert_string_equal(rest, STREAM_ERROR("policy-violation",
					       "evil.test is not an allowed federation partner of "
					       "contoso.test"));
	assert_int_equal(auth_failures("not-a-partner"), before + 1);
}

/* A partner whose settings do not support TLS asks for STARTTLS anyway. */
static void test_s2s_starttls_refused_by_settings(void **state)
{
	struct xfx_peer *p = s2s_once(
		*state,
		S2S_HEADER_FROM(
			"fabrikam.test") "<starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'/>");
	assert_string_equal(
		p->out, S2S_OUR_HEADER("fabrikam.test") S2S_FEATURES_TCP_DIALBACK STREAM_ERROR(
				"policy-violation", "the partner settings for fabrikam.test do not "
						    "support TLS"));
}

/* No stanza is routed before the domain is authenticated. */
static void test_s2s_stanza_before_authentication(void **state)
{
	struct xfx_peer *p = s2s_once(
		*state, S2S_HEADER_FROM("fabrikam.test") "<message from='bob@fabrikam.test' "
							 "to='alice@contoso.test'><body>hi</body>"
							 "</message>");
	assert_string_equal(
		p->out, S2S_OUR_HEADER("fabrikam.test") S2S_FEATURES_TCP_DIALBACK STREAM_ERROR(
				"not-authorized", "the stream is not authenticated; no stanza is "
						  "accepted before that"));
}

/* A partner allowed TLS Dialback only: STARTTLS is required, and
 * dialback in the clear is refused. */
static void test_s2s_dialback_needs_tls_by_settings(void **state)
{
	struct s2s_state *st = *state;
	char in[600];
	snprintf(in, sizeof(in),
		 S2S_HEADER_FROM("adatum.test") "<db:verify from='adatum.test' to='contoso.test' "
						"id='" S2S_ID "'>%s</db:verify>",
		 st->valid_key);
	struct xfx_peer *p = s2s_once(st, in);
	assert_string_equal(
		p->out,
		S2S_OUR_HEADER(
			"adatum.test") "<stream:features><starttls "
				       "xmlns='urn:ietf:params:xml:ns:xmpp-tls'>"
				       "<required/></starttls></stream:features>" STREAM_ERROR(
					       "policy-violation",
					       "the partner settings for adatum.test require TLS "
					       "before dialback: send &lt;starttls/&gt; first"));
}

/* db:verify about a domain that is not ours: the non-fatal dialback
 * error item-not-found (XEP-0220 §2.4), and the stream goes on. */
static void test_s2s_verify_for_a_domain_not_ours(void **state)
{
	struct s2s_state *st = *state;
	char in[600];
	snprintf(in, sizeof(in),
		 S2S_HEADER_FROM("fabrikam.test") "<db:verify from='fabrikam.test' "
						  "to='example.test' id='" S2S_ID
						  "'>%s</db:verify>" S2S_VERIFY("%s") CLOSE,
		 st->valid_key, st->valid_key);
	struct xfx_peer *p = s2s_once(st, in);
	assert_string_equal(p->out, S2S_OUR_HEADER("fabrikam.test") S2S_FEATURES_TCP_DIALBACK
			    "<db:verify from='example.test' to='fabrikam.test' id='" S2S_ID
			    "' type='error'>"
			    "<error type='cancel'><item-not-found "
			    "xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/></error></db:verify>"
			    "<db:verify from='contoso.test' to='fabrikam.test' id='" S2S_ID
			    "' type='valid'/>" CLOSE);
}

/* ---- XEP-0288 ---- */

/* <bidi/> before authenticating is taken without an answer (there is none
 * in XEP-0288 §2.2); the stream goes on as before. */
static void test_s2s_bidi_request_taken(void **state)
{
	struct s2s_state *st = *state;
	char in[1000];
	snprintf(in, sizeof(in), S2S_HEADER_FROM("fabrikam.test") S2S_BIDI S2S_VERIFY("%s") CLOSE,
		 st->valid_key);
	struct xfx_peer *p = s2s_once(st, in);
	assert_string_equal(p->out, S2S_OUR_HEADER("fabrikam.test") S2S_FEATURES_TCP_DIALBACK
			    "<db:verify from='contoso.test' to='fabrikam.test' id='" S2S_ID
			    "' type='valid'/>" CLOSE);
}

/* The partner's record says bidi off: not offered, and a <bidi/> sent all
 * the same is left unused rather than refused. */
static void test_s2s_bidi_off_not_offered(void **state)
{
	struct s2s_state *st = *state;
	/* The record as `partner set --bidi false` leaves it. */
	struct partner *rec =
		(struct partner *)policy_lookup(st->fx.live.partners, "fabrikam.test");
	assert_non_null(rec);
	rec->bidi = false;
	char in[1000];
	snprintf(in, sizeof(in), S2S_HEADER_FROM("fabrikam.test") S2S_BIDI S2S_VERIFY("%s") CLOSE,
		 st->valid_key);
	struct xfx_peer *p = s2s_once(st, in);
	assert_string_equal(p->out,
			    S2S_OUR_HEADER("fabrikam.test") S2S_FEATURES_TCP_DIALBACK_NO_BIDI
			    "<db:verify from='contoso.test' to='fabrikam.test' id='" S2S_ID
			    "' type='valid'/>" CLOSE);
}

/* ---- a peer's own stream error ---- */

/* ejabberd's answer to a stream it wants secured (its words). */
#define PEER_STREAM_ERROR                                                                  \
	"<stream:error><policy-violation xmlns='urn:ietf:params:xml:ns:xmpp-streams'/>"    \
	"<text xmlns='urn:ietf:params:xml:ns:xmpp-streams' xml:lang='en'>Use of STARTTLS " \
	"required</text></stream:error>"

/* RFC 6120 §4.9.1.1: a stream error ends the stream; it is never answered
 * with one of ours. The peer's condition and text are kept as the route's
 * last failure, where `fedgate status` shows them. */
static void test_s2s_peer_stream_error_before_auth(void **state)
{
	struct s2s_state *st = *state;
	struct xfx_peer *p = s2s_once(st, S2S_HEADER_FROM("fabrikam.test") PEER_STREAM_ERROR);
	assert_string_equal(p->out,
			    S2S_OUR_HEADER("fabrikam.test") S2S_FEATURES_TCP_DIALBACK CLOSE);
	struct route *r = route_find(&st->fx.srv, "contoso.test", "fabrikam.test");
	assert_non_null(r);
	const struct route_failure *f = route_last_failure(r);
	assert_true(f->at > 0);
	assert_string_equal(f->reason, "fabrikam.test closed the stream; the peer said: "
				       "<policy-violation/> 'Use of STARTTLS required'");
	/* Not a failed attempt of ours: no retry delay. */
	assert_int_equal(f->attempts, 0);
	assert_int_equal(f->next_retry, 0);
}

static void test_c2s_peer_stream_error_before_auth(void **state)
{
	struct c2s_state *st = *state;
	struct xfx_peer *p = xfx_connect(&st->fx, &c2s_role);
	xfx_send_str(p, C2S_HEADER PEER_STREAM_ERROR);
	assert_true(xfx_wait_closed(p));
	normalize(p->out);
	assert_string_equal(p->out, C2S_OUR_HEADER C2S_FEATURES_CLEAR CLOSE);
}

static void test_c2s_peer_stream_error_after_auth(void **state)
{
	struct c2s_state *st = *state;
	struct xfx_peer *p = login_then(st, C2S_RESTART C2S_BIND PEER_STREAM_ERROR);
	assert_true(xfx_wait_closed(p));
	normalize(p->out);
	assert_string_equal(p->out, C2S_OUR_HEADER C2S_FEATURES_CLEAR C2S_CHALLENGE C2S_SUCCESS
					    C2S_OUR_HEADER C2S_FEATURES_AUTHED C2S_BOUND CLOSE);
	assert_int_equal(session_count(&st->fx.srv), 0);
}

/* XEP-0178 §3: the authzid of SASL EXTERNAL, when given, must name the
 * domain the certificate proved, in any spelling that prepares to it. */
static void test_s2s_external_authzid(void **state)
{
	(void)state;
	static const struct {
		const char *b64;
		bool ok;
	} cases[] = {
		{"", true},				     /* none */
		{"=", true},				     /* none, RFC 6120 §6.4.2 */
		{"ZmFicmlrYW0udGVzdA==", true},		     /* fabrikam.test */
		{"RkFCUklLQU0uVGVzdA==", true},		     /* FABRIKAM.Test */
		{"ZXhhbXBsZS50ZXN0", false},		     /* example.test */
		{"Y29ycC5mYWJyaWthbS50ZXN0", false},	     /* corp.fabrikam.test */
		{"ZmFicmlrYW0udGVzdABldmlsLnRlc3Q=", false}, /* fabrikam.test NUL evil.test */
		{"not base64!", false},
		{"YWxpY2VAZmFicmlrYW0udGVzdA==", false}, /* alice@fabrikam.test */
	};
	for (size_t i = 0; i < FG_ARRAY_LEN(cases); i++)
		if (s2s_in_external_authzid_ok(cases[i].b64, "fabrikam.test") != cases[i].ok)
			fail_msg("authzid %s: want %s", cases[i].b64,
				 cases[i].ok ? "ok" : "refused");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_c2s_session_whole, c2s_setup, c2s_teardown),
		cmocka_unit_test_setup_teardown(test_c2s_session_split_at_every_offset, c2s_setup,
						c2s_teardown),
		cmocka_unit_test_setup_teardown(test_c2s_session_byte_by_byte, c2s_setup,
						c2s_teardown),
		cmocka_unit_test_setup_teardown(test_c2s_bound_session_in_registry, c2s_setup,
						c2s_teardown),
		cmocka_unit_test_setup_teardown(test_c2s_wrong_password, c2s_setup, c2s_teardown),
		cmocka_unit_test_setup_teardown(test_c2s_unknown_account, c2s_setup, c2s_teardown),
		cmocka_unit_test_setup_teardown(test_c2s_plain_refused_in_the_clear, c2s_setup,
						c2s_teardown),
		cmocka_unit_test_setup_teardown(test_c2s_auth_before_tls_required, c2s_setup,
						c2s_teardown),
		cmocka_unit_test_setup_teardown(test_c2s_failure_held_and_next_attempt_waits,
						c2s_setup, c2s_teardown),
		cmocka_unit_test_setup_teardown(test_c2s_stanza_before_login_tls_optional,
						c2s_setup, c2s_teardown),
		cmocka_unit_test_setup_teardown(test_c2s_stanza_before_bind, c2s_setup,
						c2s_teardown),
		cmocka_unit_test_setup_teardown(test_s2s_verify_whole, s2s_setup, s2s_teardown),
		cmocka_unit_test_setup_teardown(test_s2s_verify_split_at_every_offset, s2s_setup,
						s2s_teardown),
		cmocka_unit_test_setup_teardown(test_s2s_verify_byte_by_byte, s2s_setup,
						s2s_teardown),
		cmocka_unit_test_setup_teardown(test_s2s_not_a_partner, s2s_setup, s2s_teardown),
		cmocka_unit_test_setup_teardown(test_s2s_starttls_refused_by_settings, s2s_setup,
						s2s_teardown),
		cmocka_unit_test_setup_teardown(test_s2s_stanza_before_authentication, s2s_setup,
						s2s_teardown),
		cmocka_unit_test_setup_teardown(test_s2s_dialback_needs_tls_by_settings, s2s_setup,
						s2s_teardown),
		cmocka_unit_test_setup_teardown(test_s2s_verify_for_a_domain_not_ours, s2s_setup,
						s2s_teardown),
		cmocka_unit_test_setup_teardown(test_s2s_peer_stream_error_before_auth, s2s_setup,
						s2s_teardown),
		cmocka_unit_test_setup_teardown(test_s2s_bidi_request_taken, s2s_setup,
						s2s_teardown),
		cmocka_unit_test_setup_teardown(test_s2s_bidi_off_not_offered, s2s_setup,
						s2s_teardown),
		cmocka_unit_test_setup_teardown(test_c2s_peer_stream_error_before_auth, c2s_setup,
						c2s_teardown),
		cmocka_unit_test_setup_teardown(test_c2s_peer_stream_error_after_auth, c2s_setup,
						c2s_teardown),
		cmocka_unit_test(test_s2s_external_authzid),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}

#include "tls.h"

#include "dane.h"
#include "fg.h"

#include <assert.h>
#include <openssl/err.h>
#include <openssl/x509v3.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

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

/* What we keep per SSL beyond OpenSSL's own state. */
struct peer_state {
	char *host; /* the domain given to tls_client_prepare() */
	/* SSL_get_verify_result() keeps the last error met, which for a
	 * certificate from an unknown CA is the vaguer "unable to verify the
	 * first certificate"; the first one names the real cause. */
	long first_err;
	char first_why[512];
	/* Direct TLS (XEP-0368): the ALPN protocol this listener speaks, a
	 * string literal; NULL on STARTTLS streams, where ALPN is ignored. */
	const char *alpn;
	bool alpn_refused; /* the client's ALPN list lacked it: why it failed */
};

static int state_idx = -1;
static pthread_once_t state_once = PTHREAD_ONCE_INIT;

static void state_free(void *parent, void *ptr, CRYPTO_EX_DATA *ad, int idx, long argl, void *argp)
{
	struct peer_state *st = ptr;
	(void)parent;
	(void)ad;
	(void)idx;
	(void)argl;
	(void)argp;
	if (!st)
		return;
	OPENSSL_free(st->host);
	OPENSSL_free(st);
}

/* SSL_dup() would otherwise share the pointer and free it twice. */
static int state_dup(CRYPTO_EX_DATA *to, const CRYPTO_EX_DATA *from, void **from_d, int idx,
		     long argl, void *argp)
{
	(void)to;
	(void)from;
	(void)idx;
	(void)argl;
	(void)argp;
	*from_d = NULL;
	return 1;
}

static void state_init(void)
{
	state_idx = SSL_get_ex_new_index(0, NULL, NULL, state_dup, state_free);
}

static struct peer_state *state_get(const SSL *ssl, bool create)
{
	pthread_once(&state_once, state_init);
	if (state_idx < 0 || !ssl)
		return NULL;
	struct peer_state *st = SSL_get_ex_data(ssl, state_idx);
	if (st || !create)
		return st;
	st = OPENSSL_zalloc(sizeof(*st));
	if (st && SSL_set_ex_data((SSL *)ssl, state_idx, st) != 1) {
		OPENSSL_free(st);
		st = NULL;
	}
	return st;
}

/* Bounded, always NUL-terminated appending for the sentences below; text
 * past the end is dropped, never written. */
struct sb {
	char *buf;
	size_t cap;
	size_t len;
};

static struct sb sb_on(char *buf, size_t cap)
{
	struct sb b = {cap ? buf : NULL, buf ? cap : 0, 0};
	if (b.cap)
		b.buf[0] = '\0';
	return b;
}

__attribute__((format(printf, 2, 3))) static void sb_add(struct sb *b, const char *fmt, ...)
{
	if (b->len + 1 >= b->cap)
		return;
	va_list ap;
	va_start(ap, fmt);
	int n = vsnprintf(b->buf + b->len, b->cap - b->len, fmt, ap);
	va_end(ap);
	if (n < 0)
		b->buf[b->len] = '\0';
	else if ((size_t)n >= b->cap - b->len)
		b->len = b->cap - 1;
	else
		b->len += (size_t)n;
}

/* Names come from the peer and end up in logs, JSON and HTML: keep them
 * printable ASCII and short. */
static void show(char *out, size_t outlen, const unsigned char *p, size_t n)
{
	size_t o = 0;
	const size_t max = 80;
	for (size_t i = 0; i < n && o + 1 < outlen; i++) {
		if (i == max && o + 4 < outlen) {
			memcpy(out + o, "...", 3);
			o += 3;
			break;
		}
		out[o++] = p[i] >= 0x20 && p[i] < 0x7f ? (char)p[i] : '?';
	}
	if (outlen)
		out[o] = '\0';
}

static void name_text(char *out, size_t outlen, const X509_NAME *name)
{
	BIO *bio = BIO_new(BIO_s_mem());
	char *data = NULL;
	long n;
	if (!bio || X509_NAME_print_ex(bio, name, 0, XN_FLAG_RFC2253) < 0 ||
	    (n = BIO_get_mem_data(bio, &data)) <= 0)
		snprintf(out, outlen, "(no name)");
	else
		show(out, outlen, (const unsigned char *)data, (size_t)n);
	BIO_free(bio);
}

static void time_text(char *out, size_t outlen, const ASN1_TIME *t)
{
	struct tm tm;
	if (!t || ASN1_TIME_to_tm(t, &tm) != 1 ||
	    strftime(out, outlen, "%Y-%m-%d %H:%M:%S UTC", &tm) == 0)
		snprintf(out, outlen, "an unreadable date");
}

/* The first chain error as advice: OpenSSL's reason, which certificate,
 * and what the admin can do about it. */
static void explain_chain_error(char *out, size_t outlen, long err, X509 *cert, int depth,
				bool we_are_server)
{
	char subj[160], issuer[160], when[40];
	struct sb b = sb_on(out, outlen);
	const char *what = depth == 0 ? "the peer's certificate" : "the CA certificate";

	if (cert) {
		name_text(subj, sizeof(subj), X509_get_subject_name(cert));
		name_text(issuer, sizeof(issuer), X509_get_issuer_name(cert));
	} else {
		snprintf(subj, sizeof(subj), "(unknown)");
		snprintf(issuer, sizeof(issuer), "(unknown)");
	}
	sb_add(&b, "%s (%s %s", X509_verify_cert_error_string(err), what, subj);
	switch (err) {
	case X509_V_ERR_CERT_HAS_EXPIRED:
		time_text(when, sizeof(when), cert ? X509_get0_notAfter(cert) : NULL);
		sb_add(&b, " expired on %s; its owner must renew it)", when);
		break;
	case X509_V_ERR_CERT_NOT_YET_VALID:
		time_text(when, sizeof(when), cert ? X509_get0_notBefore(cert) : NULL);
		sb_add(&b, " is not valid before %s; check this host's clock)", when);
		break;
	case X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT:
	case X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT_LOCALLY:
	case X509_V_ERR_UNABLE_TO_VERIFY_LEAF_SIGNATURE:
		sb_add(&b,
		       " was issued by %s, which is not among the trust anchors of [tls] ca_file "
		       "or, when that is empty, the system store; add that CA there if you trust "
		       "it)",
		       issuer);
		break;
	case X509_V_ERR_DEPTH_ZERO_SELF_SIGNED_CERT:
	case X509_V_ERR_SELF_SIGNED_CERT_IN_CHAIN:
		sb_add(&b, " is self-signed and not a trust anchor; add it to [tls] ca_file if you "
			   "trust it)");
		break;
	case X509_V_ERR_INVALID_PURPOSE:
		/* Only our TLS-client side meets this: the server side checks
		 * the purpose itself (ctx_new, tls_peer_verify). */
		sb_add(&b, " may not be used by a TLS %s; its extendedKeyUsage must include %s)",
		       we_are_server ? "client" : "server",
		       we_are_server ? "serverAuth or clientAuth" : "serverAuth");
		break;
	default: sb_add(&b, ")"); break;
	}
}

/* Accept any peer certificate during the handshake: a bad certificate
 * only rules out SASL EXTERNAL later, while dialback may still be allowed.
 * The verdict stays available through SSL_get_verify_result(), and the
 * first error met, explained, in our per-SSL state. */
static int accept_any(int preverify_ok, X509_STORE_CTX *x509)
{
	if (preverify_ok)
		return 1;
	SSL *ssl = X509_STORE_CTX_get_ex_data(x509, SSL_get_ex_data_X509_STORE_CTX_idx());
	struct peer_state *st = state_get(ssl, true);
	if (st && st->first_err == X509_V_OK) {
		st->first_err = X509_STORE_CTX_get_error(x509);
		explain_chain_error(st->first_why, sizeof(st->first_why), st->first_err,
				    X509_STORE_CTX_get_current_cert(x509),
				    X509_STORE_CTX_get_error_depth(x509), SSL_is_server(ssl));
	}
	return 1;
}

/* RFC 7301 §3.2 on a Direct TLS listener: a client that offers ALPN must
 * offer ours ("xmpp-server" or "xmpp-client", XEP-0368 §3), else the
 * handshake ends with no_application_protocol; a client that offers none
 * is served. STARTTLS streams (no protocol set) ignore ALPN: the protocol
 * was settled in the clear. */
static int alpn_select(SSL *ssl, const unsigned char **out, unsigned char *outlen,
		       const unsigned char *in, unsigned int inlen, void *arg)
{
	(void)arg;
	const struct peer_state *st = state_get(ssl, false);
	if (!st || !st->alpn)
		return SSL_TLSEXT_ERR_NOACK;
	size_t want = strlen(st->alpn);
	for (unsigned int i = 0; i < inlen;) {
		unsigned int n = in[i];
		if (n == 0 || i + 1 + n > inlen)
			break; /* malformed: OpenSSL checks it first, never trust it */
		if (n == want && memcmp(in + i + 1, st->alpn, n) == 0) {
			*out = in + i + 1;
			*outlen = (unsigned char)n;
			return SSL_TLSEXT_ERR_OK;
		}
		i += 1 + n;
	}
	((struct peer_state *)st)->alpn_refused = true;
	return SSL_TLSEXT_ERR_ALERT_FATAL;
}

const char *tls_alpn_refused(const SSL *ssl)
{
	const struct peer_state *st = state_get(ssl, false);
	return st && st->alpn_refused ? st->alpn : NULL;
}

int tls_server_alpn(SSL *ssl, const char *proto)
{
	assert(proto && strlen(proto) > 0 && strlen(proto) < 256);
	struct peer_state *st = state_get(ssl, true);
	if (!st)
		return FG_NOMEM;
	st->alpn = proto;
	return FG_OK;
}

int tls_client_alpn(SSL *ssl, const char *proto)
{
	size_t n = proto ? strlen(proto) : 0;
	assert(n > 0 && n < 256);
	unsigned char wire[256];
	wire[0] = (unsigned char)n;
	memcpy(wire + 1, proto, n);
	/* 0 is success here, unlike the rest of OpenSSL. */
	return SSL_set_alpn_protos(ssl, wire, (unsigned int)n + 1) == 0 ? FG_OK : FG_NOMEM;
}

const char *tls_alpn_selected(const SSL *ssl, char *buf, size_t len)
{
	const unsigned char *p = NULL;
	unsigned int n = 0;
	if (ssl)
		SSL_get0_alpn_selected(ssl, &p, &n);
	if (!p || n == 0)
		return NULL;
	snprintf(buf, len, "%.*s", (int)n, (const char *)p);
	return buf;
}

/* What both directions share: TLS 1.2+, our certificate and key, trust
 * anchors and the record-but-accept verification. */
static SSL_CTX *ctx_new(bool server, const char *cert, const char *key, const char *ca_file,
			char *err, size_t errlen)
{
	char why[256];
	SSL_CTX *ctx = SSL_CTX_new(server ? TLS_server_method() : TLS_client_method());
	if (!ctx) {
		tls_last_error(why, sizeof(why));
		snprintf(err, errlen, "cannot create a TLS context: %s", why);
		return NULL;
	}
	if (SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION) != 1)
		goto fail_ssl;
	SSL_CTX_set_options(ctx, SSL_OP_NO_COMPRESSION | SSL_OP_NO_RENEGOTIATION);
	if (server)
		SSL_CTX_set_options(ctx, SSL_OP_CIPHER_SERVER_PREFERENCE);
	/* Idle streams are the common case; let OpenSSL drop its 34 KiB of
	 * record buffers between reads. */
	SSL_CTX_set_mode(ctx, SSL_MODE_RELEASE_BUFFERS);
	if (SSL_CTX_set_cipher_list(ctx, "HIGH:!aNULL:!eNULL:!MD5:!RC4:!3DES:!CAMELLIA:!ARIA") != 1)
		goto fail_ssl;
	if (!cert || !cert[0] || !key || !key[0]) {
		snprintf(err, errlen, "%s",
			 "no certificate or key is configured (set [tls] certificate and [tls] "
			 "key, or run 'fedgate init' to make them)");
		goto fail;
	}
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
	/* A peer's client certificate is its server certificate, and since
	 * 2026 public CAs issue those with serverAuth alone, which OpenSSL's
	 * TLS-client purpose refuses. The purpose is checked by
	 * tls_peer_verify() instead: serverAuth or clientAuth will do. */
	if (server && X509_VERIFY_PARAM_set_purpose(SSL_CTX_get0_param(ctx), X509_PURPOSE_ANY) != 1)
		goto fail_ssl;
	if (server)
		SSL_CTX_set_alpn_select_cb(ctx, alpn_select, NULL);
	/* DANE is turned on per connection (dane_client_arm); the context
	 * only needs its shared state. */
	if (!server && SSL_CTX_dane_enable(ctx) <= 0)
		goto fail_ssl;
	/* No resumption unless tls_server_tickets() or tls_client_tickets()
	 * turns it on (tls_tickets.c). */
	SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_OFF);
	if (server)
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

SSL_CTX *tls_server_ctx_new(const char *cert, const char *key, const char *ca_file, char *err,
			    size_t errlen)
{
	return ctx_new(true, cert, key, ca_file, err, errlen);
}

SSL_CTX *tls_client_ctx_new(const char *cert, const char *key, const char *ca_file, char *err,
			    size_t errlen)
{
	return ctx_new(false, cert, key, ca_file, err, errlen);
}

void tls_ctx_free(SSL_CTX **ctx)
{
	if (!ctx || !*ctx)
		return;
	SSL_CTX_free(*ctx);
	*ctx = NULL;
}

void tls_close_notify(SSL *ssl)
{
	if (!ssl || (SSL_get_shutdown(ssl) & SSL_SENT_SHUTDOWN))
		return;
	/* 0 means sent, the peer's not yet seen: all we want. A failure
	 * leaves nothing to do but the close that follows. */
	if (SSL_shutdown(ssl) < 0)
		ERR_clear_error();
}

void tls_describe(const SSL *ssl, char *buf, size_t len)
{
	if (!ssl) {
		snprintf(buf, len, "plaintext");
		return;
	}
	/* "resumed" is how an admin (status, the log) sees that a ticket
	 * spared this stream the certificates and their signatures. */
	snprintf(buf, len, "%s %s%s", SSL_get_version(ssl), SSL_get_cipher_name(ssl),
		 SSL_session_reused(ssl) ? " (resumed)" : "");
}

static void asn1_day(const ASN1_TIME *t, char *buf, size_t len)
{
	struct tm tm;
	if (!t || ASN1_TIME_to_tm(t, &tm) != 1 || strftime(buf, len, "%Y-%m-%d", &tm) == 0)
		snprintf(buf, len, "?");
}

void tls_peer_details(const SSL *ssl, char *buf, size_t len)
{
	X509 *peer = ssl ? SSL_get0_peer_certificate(ssl) : NULL;
	if (!peer) {
		snprintf(buf, len, "no certificate");
		return;
	}
	char from[32], to[32], left[64] = "";
	asn1_day(X509_get0_notBefore(peer), from, sizeof(from));
	asn1_day(X509_get0_notAfter(peer), to, sizeof(to));
	int days = 0, secs = 0;
	if (ASN1_TIME_diff(&days, &secs, NULL, X509_get0_notAfter(peer)) == 1)
		snprintf(left, sizeof(left),
			 days < 0 || secs < 0 ? " (expired %d days ago)" : " (in %d days)",
			 days < 0 ? -days : days);
	char eku[48], pin[PIN_B64_LEN + 1];
	tls_cert_eku(peer, eku, sizeof(eku));
	snprintf(buf, len, "valid from %s to %s%s; extended key usage: %s", from, to, left, eku);
	/* What an admin copies into the partner's pins. */
	if (tls_cert_pin(peer, pin))
		fg_appendf(buf, len, "; public key (pin): %s", pin);
}

const char *tls_peer_verdict(const SSL *ssl)
{
	if (!ssl)
		return "none";
	X509 *peer = SSL_get0_peer_certificate(ssl);
	if (!peer)
		return "none";
	long v;
	if (SSL_session_reused(ssl)) {
		v = tls_resumed_verdict(ssl, NULL, 0);
	} else {
		v = SSL_get_verify_result(ssl);
		const struct peer_state *st = state_get(ssl, false);
		if (st && st->first_err != X509_V_OK)
			v = st->first_err;
	}
	return v == X509_V_OK ? "valid" : X509_verify_cert_error_string(v);
}

/* Locale-free: certificate names and A-labels are ASCII by definition. */
static bool ascii_eq(const char *a, const char *b, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		unsigned char x = (unsigned char)a[i], y = (unsigned char)b[i];
		if (x >= 'A' && x <= 'Z')
			x = (unsigned char)(x - 'A' + 'a');
		if (y >= 'A' && y <= 'Z')
			y = (unsigned char)(y - 'A' + 'a');
		if (x != y)
			return false;
	}
	return true;
}

/* Counts the labels of name[0..n), or returns 0 when one is empty. */
static size_t labels(const char *name, size_t n)
{
	size_t count = 1, run = 0;
	for (size_t i = 0; i < n; i++) {
		if (name[i] != '.') {
			run++;
			continue;
		}
		if (run == 0)
			return 0;
		count++;
		run = 0;
	}
	return run ? count : 0;
}

/* A reference identifier must be a plain host name in A-label form: an
 * asterisk or a stray byte in it could otherwise meet a pattern half-way.
 * *len gets its length without one trailing dot. */
static bool domain_valid(const char *d, size_t *len)
{
	size_t n = strlen(d);
	if (n > 0 && d[n - 1] == '.')
		n--;
	if (n == 0 || n > 253 || labels(d, n) == 0)
		return false;
	size_t run = 0;
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)d[i];
		if (c == '.') {
			run = 0;
			continue;
		}
		if (++run > 63)
			return false;
		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
		      c == '-' || c == '_'))
			return false;
	}
	*len = n;
	return true;
}

/* RFC 6125 6.4.3 narrowed as most XMPP servers do: "*" must be the whole
 * left-most label, stands for exactly one label, and must leave at least two
 * labels after it, so that *.test or *.com never cover a whole TLD. *note
 * says why a wildcard was refused, for the admin. */
static bool dns_id_matches(const char *p, size_t plen, const char *d, size_t dlen,
			   const char **note)
{
	*note = NULL;
	if (memchr(p, '\0', plen)) {
		*note = "holds a NUL byte, ignored";
		return false;
	}
	if (plen > 1 && p[plen - 1] == '.')
		plen--;
	if (!memchr(p, '*', plen))
		return plen == dlen && ascii_eq(p, d, dlen);
	if (plen < 2 || p[0] != '*' || p[1] != '.' || memchr(p + 1, '*', plen - 1)) {
		*note = "wildcard refused: '*' may only be the whole left-most label";
		return false;
	}
	const char *rest = p + 2;
	size_t restlen = plen - 2;
	if (labels(rest, restlen) < 2) {
		*note = "wildcard refused: it needs at least three labels";
		return false;
	}
	const char *dot = memchr(d, '.', dlen);
	if (!dot)
		return false;
	size_t drest = dlen - (size_t)(dot + 1 - d);
	return drest == restlen && ascii_eq(dot + 1, rest, restlen);
}

static const char srv_prefix[] = "_xmpp-server.";

static bool srv_id_matches(const char *p, size_t plen, const char *d, size_t dlen)
{
	size_t pre = sizeof(srv_prefix) - 1;
	if (memchr(p, '\0', plen) || plen <= pre || !ascii_eq(p, srv_prefix, pre))
		return false;
	p += pre;
	plen -= pre;
	if (plen > 1 && p[plen - 1] == '.')
		plen--;
	return plen == dlen && ascii_eq(p, d, dlen);
}

/* A JID's domain is compared as its A-label: a U-label XmppAddr does not
 * match, as converting it would need libidn2 here. */
static bool xmppaddr_matches(const char *p, size_t plen, const char *d, size_t dlen)
{
	return !memchr(p, '\0', plen) && plen == dlen && ascii_eq(p, d, dlen);
}

const char *tls_id_name(enum tls_id_result r)
{
	switch (r) {
	case TLS_ID_MATCH_DNS_ID: return "DNS-ID";
	case TLS_ID_MATCH_SRV_ID: return "SRV-ID";
	case TLS_ID_MATCH_XMPPADDR: return "XmppAddr";
	case TLS_ID_NO_MATCH: break;
	}
	return "no match";
}

/* The subject CN, shown only to explain why it did not count. */
static bool subject_cn(X509 *cert, char *out, size_t outlen)
{
	X509_NAME *name = X509_get_subject_name(cert);
	int i = name ? X509_NAME_get_index_by_NID(name, NID_commonName, -1) : -1;
	unsigned char *utf8 = NULL;
	int n;
	if (i < 0)
		return false;
	n = ASN1_STRING_to_UTF8(&utf8, X509_NAME_ENTRY_get_data(X509_NAME_get_entry(name, i)));
	if (n < 0)
		return false;
	show(out, outlen, utf8, (size_t)n);
	OPENSSL_free(utf8);
	return true;
}

/* Names listed in a refusal: enough to recognise the certificate. */
#define LISTED_NAMES 8

struct id_scan {
	enum tls_id_result best;
	char matched[100];
	bool matched_wildcard;
	struct sb list;
	unsigned listed, unlisted;
};

static void scan_note(struct id_scan *s, const unsigned char *p, size_t n, const char *kind,
		      const char *note)
{
	char shown[100];
	if (s->listed == LISTED_NAMES) {
		s->unlisted++;
		return;
	}
	show(shown, sizeof(shown), p, n);
	sb_add(&s->list, "%s%s", s->listed ? ", " : "", shown);
	if (kind || note)
		sb_add(&s->list, " (%s%s%s)", kind ? kind : "", kind && note ? ", " : "",
		       note ? note : "");
	s->listed++;
}

static void scan_hit(struct id_scan *s, enum tls_id_result r, const unsigned char *p, size_t n)
{
	/* DNS-ID is preferred, then SRV-ID, then XmppAddr: the order of the
	 * enum, and the order RFC 6120 13.7.1.2 gives them. */
	if (s->best != TLS_ID_NO_MATCH && s->best <= r)
		return;
	s->best = r;
	show(s->matched, sizeof(s->matched), p, n);
	s->matched_wildcard = r == TLS_ID_MATCH_DNS_ID && n > 0 && p[0] == '*';
}

static void scan_name(struct id_scan *s, const GENERAL_NAME *gn, const char *d, size_t dlen)
{
	const ASN1_STRING *str;
	const char *note = NULL;
	if (gn->type == GEN_DNS) {
		str = gn->d.dNSName;
		const char *p = (const char *)ASN1_STRING_get0_data(str);
		size_t n = (size_t)ASN1_STRING_length(str);
		if (dns_id_matches(p, n, d, dlen, &note))
			scan_hit(s, TLS_ID_MATCH_DNS_ID, (const unsigned char *)p, n);
		scan_note(s, (const unsigned char *)p, n, NULL, note);
		return;
	}
	if (gn->type != GEN_OTHERNAME)
		return; /* e-mail, URI, IP: never an XMPP domain */
	int nid = OBJ_obj2nid(gn->d.otherName->type_id);
	const ASN1_TYPE *val = gn->d.otherName->value;
	if (nid != NID_SRVName && nid != NID_XmppAddr)
		return;
	const char *kind = nid == NID_SRVName ? "SRV-ID" : "XmppAddr";
	int want = nid == NID_SRVName ? V_ASN1_IA5STRING : V_ASN1_UTF8STRING;
	if (!val || val->type != want) {
		scan_note(s, (const unsigned char *)"?", 1, kind, "malformed, ignored");
		return;
	}
	str = val->value.asn1_string;
	const char *p = (const char *)ASN1_STRING_get0_data(str);
	size_t n = (size_t)ASN1_STRING_length(str);
	if (nid == NID_SRVName ? srv_id_matches(p, n, d, dlen) : xmppaddr_matches(p, n, d, dlen))
		scan_hit(s, nid == NID_SRVName ? TLS_ID_MATCH_SRV_ID : TLS_ID_MATCH_XMPPADDR,
			 (const unsigned char *)p, n);
	scan_note(s, (const unsigned char *)p, n, kind, NULL);
}

enum tls_id_result tls_cert_matches(X509 *cert, const char *domain, char *why, size_t whylen)
{
	struct sb w = sb_on(why, whylen);
	char dom[100], cn[100], names[400];
	size_t dlen;
	int crit = -1;

	if (!domain || !domain_valid(domain, &dlen)) {
		show(dom, sizeof(dom), (const unsigned char *)(domain ? domain : ""),
		     domain ? strlen(domain) : 0);
		sb_add(&w,
		       "\"%s\" is not a domain name in A-label form; no certificate can prove it",
		       dom);
		return TLS_ID_NO_MATCH;
	}
	show(dom, sizeof(dom), (const unsigned char *)domain, dlen);
	if (!cert) {
		sb_add(&w, "there is no certificate to prove %s", dom);
		return TLS_ID_NO_MATCH;
	}
	bool has_cn = subject_cn(cert, cn, sizeof(cn));
	GENERAL_NAMES *sans = X509_get_ext_d2i(cert, NID_subject_alt_name, &crit, NULL);
	if (!sans) {
		ERR_clear_error();
		if (crit == -2)
			sb_add(&w,
			       "the certificate has two subjectAltName extensions, which RFC 5280 "
			       "forbids; it cannot prove %s",
			       dom);
		else if (crit >= 0)
			sb_add(&w,
			       "the certificate's subjectAltName cannot be parsed, so it "
			       "cannot prove %s",
			       dom);
		else if (has_cn)
			sb_add(&w,
			       "the certificate has no subjectAltName, only the subject CN %s, "
			       "and a CN never identifies a server (RFC 6125, RFC 6120 13.7); "
			       "reissue it with a DNS subjectAltName for %s",
			       cn, dom);
		else
			sb_add(&w,
			       "the certificate names no domain at all; reissue it with a DNS "
			       "subjectAltName for %s",
			       dom);
		return TLS_ID_NO_MATCH;
	}

	struct id_scan s = {.best = TLS_ID_NO_MATCH, .list = sb_on(names, sizeof(names))};
	for (int i = 0; i < sk_GENERAL_NAME_num(sans); i++)
		scan_name(&s, sk_GENERAL_NAME_value(sans, i), domain, dlen);
	GENERAL_NAMES_free(sans);

	if (s.best != TLS_ID_NO_MATCH) {
		sb_add(&w, "the certificate names %s as %s%s %s", dom,
		       s.matched_wildcard ? "the wildcard " : "", tls_id_name(s.best), s.matched);
		return s.best;
	}
	if (s.listed == 0)
		sb_add(&w, "the certificate's subjectAltName holds no domain name (only e-mail, "
			   "URI or IP entries)");
	else
		sb_add(&w, "the certificate names %s%s; %s is not among them", names,
		       s.unlisted ? " and more" : "", dom);
	if (has_cn && strlen(cn) == dlen && ascii_eq(cn, domain, dlen))
		sb_add(&w, " (its subject CN is %s, but a CN never identifies a server)", cn);
	sb_add(&w, "; the partner must present a certificate with a DNS subjectAltName for %s",
	       dom);
	return TLS_ID_NO_MATCH;
}

int tls_client_prepare(SSL *ssl, const char *domain)
{
	size_t dlen;
	if (!ssl || !domain || !domain_valid(domain, &dlen))
		return FG_INVAL;
	struct peer_state *st = state_get(ssl, true);
	if (!st)
		return FG_NOMEM;
	char *host = OPENSSL_strndup(domain, dlen);
	if (!host)
		return FG_NOMEM;
	/* RFC 6066: the SNI host name carries no trailing dot. */
	if (SSL_set_tlsext_host_name(ssl, host) != 1) {
		OPENSSL_free(host);
		ERR_clear_error();
		return FG_INVAL;
	}
	OPENSSL_free(st->host);
	st->host = host;
	if (dane_client_apply(ssl) != FG_OK)
		return FG_NOMEM;
	return tls_client_offer(ssl, host);
}

long tls_first_error(const SSL *ssl, const char **why)
{
	const struct peer_state *st = state_get(ssl, false);
	if (why)
		*why = st && st->first_err != X509_V_OK ? st->first_why : NULL;
	return st ? st->first_err : X509_V_OK;
}

const char *tls_expected_host(const SSL *ssl)
{
	struct peer_state *st = state_get(ssl, false);
	return st ? st->host : NULL;
}

int tls_peer_verify(SSL *ssl, const char *domain, struct tls_verdict *v)
{
	struct sb t = sb_on(v->text, sizeof(v->text));
	char why[sizeof(v->id_text)];

	v->id_text[0] = '\0';
	v->has_cert = false;
	v->dane_ok = false;
	v->dane_usage = -1;
	v->chain_ok = false;
	v->chain_error = X509_V_OK;
	v->id = TLS_ID_NO_MATCH;
	v->spki[0] = '\0';
	snprintf(v->eku, sizeof(v->eku), "no certificate");
	v->pin = TLS_PIN_NONE;
	if (!domain)
		domain = tls_expected_host(ssl);
	if (!ssl) {
		sb_add(&t, "the stream is not encrypted, so there is no certificate to check");
		return FG_INVAL;
	}
	if (!domain) {
		sb_add(&t, "no domain is known to check the certificate against");
		return FG_INVAL;
	}
	X509 *peer = SSL_get0_peer_certificate(ssl);
	if (!peer) {
		show(why, sizeof(why), (const unsigned char *)domain, strlen(domain));
		sb_add(&t, "the peer presented no certificate, so it cannot prove %s", why);
		return FG_ERR;
	}
	v->has_cert = true;
	tls_cert_pin(peer, v->spki);
	tls_cert_eku(peer, v->eku, sizeof(v->eku));
	/* SSL_get_verify_result() says X509_V_OK when no certificate came at
	 * all; that case has been answered above. */
	long res = SSL_get_verify_result(ssl);
	const struct peer_state *st = state_get(ssl, false);
	bool recorded = st && st->first_err != X509_V_OK;
	const char *chain_why = recorded ? st->first_why : NULL;
	v->chain_error = recorded ? st->first_err : res;
	char resumed_why[sizeof(st->first_why)];
	if (SSL_session_reused(ssl)) {
		/* No chain was sent on this connection: the verdict is the one
		 * the full handshake reached, sealed in our ticket or kept in
		 * our client cache; a session without one counts as
		 * unverified, never as trusted. */
		res = tls_resumed_verdict(ssl, resumed_why, sizeof(resumed_why));
		v->chain_error = res;
		recorded = res != X509_V_OK && resumed_why[0];
		chain_why = resumed_why;
	}
	v->chain_ok = v->chain_error == X509_V_OK && res == X509_V_OK;
	if (v->chain_ok && SSL_is_server(ssl) && !tls_cert_eku_s2s(peer)) {
		/* The purpose check ctx_new() left to us. */
		v->chain_ok = false;
		v->chain_error = X509_V_ERR_INVALID_PURPOSE;
		recorded = true;
		chain_why = "its extendedKeyUsage allows neither serverAuth nor clientAuth";
	}
	v->id = tls_cert_matches(peer, domain, why, sizeof(why));
	v->dane_ok = dane_ssl_verified(ssl, &v->dane_usage);
	if (v->dane_ok) {
		/* A DNSSEC-secure TLSA record vouches for the certificate in
		 * place of a CA; for DANE-EE(3) it vouches for the name too
		 * (RFC 7671 §5.1: no name checks). */
		v->chain_ok = true;
		sb_add(&t, "DANE: a DNSSEC-secure TLSA record (usage %s) matches the certificate; ",
		       v->dane_usage == 3   ? "DANE-EE(3)"
		       : v->dane_usage == 2 ? "DANE-TA(2)"
		       : v->dane_usage == 1 ? "PKIX-EE(1)"
					    : "PKIX-TA(0)");
		if (v->dane_usage == 3) {
			sb_add(&t, "its names are not checked (RFC 7671)");
			snprintf(v->id_text, sizeof(v->id_text), "%s", why);
			return FG_OK;
		}
	} else if (v->chain_ok)
		sb_add(&t, "the certificate chain is trusted; ");
	else
		sb_add(&t, "the certificate chain is not trusted: %s; ",
		       recorded ? chain_why : X509_verify_cert_error_string(v->chain_error));
	sb_add(&t, "%s", why);
	snprintf(v->id_text, sizeof(v->id_text), "%s", why);
	return v->chain_ok && v->id != TLS_ID_NO_MATCH ? FG_OK : FG_ERR;
}

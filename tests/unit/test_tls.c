/* Unit tests for src/tls.c: RFC 6125 identity checks on certificates made
 * here with the OpenSSL API, and real handshakes over a socket pair between
 * the server and client contexts. The PKI lives in a mkdtemp folder. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "dane.h"
#include "fg.h"
#include "tls.h"

#include <limits.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509v3.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>
#include <openssl/sha.h>

#define DAY (24L * 3600L)

/* Two CAs and the leaves the handshakes use, shared by all tests. */
static struct {
	char dir[64];
	EVP_PKEY *ca_key, *other_key, *leaf_key;
	X509 *ca, *other_ca;
	X509 *fabrikam; /* DNS:fabrikam.test, signed by ca */
	char ca_file[PATH_MAX], other_ca_file[PATH_MAX], key_file[PATH_MAX];
	char contoso_file[PATH_MAX];	 /* DNS:contoso.test, by ca */
	char fabrikam_file[PATH_MAX];	 /* DNS:fabrikam.test, by ca */
	char expired_file[PATH_MAX];	 /* DNS:fabrikam.test, by ca, expired */
	char foreign_file[PATH_MAX];	 /* DNS:fabrikam.test, by other_ca */
	char server_only_file[PATH_MAX]; /* DNS:fabrikam.test, EKU serverAuth only */
	char signing_file[PATH_MAX];	 /* DNS:fabrikam.test, EKU codeSigning only */
	long serial;
} pki;

static EVP_PKEY *new_key(void)
{
	EVP_PKEY *k = EVP_EC_gen("P-256");
	assert_non_null(k);
	return k;
}

static void add_ext(X509 *x, X509 *issuer, int nid, const char *value)
{
	X509V3_CTX v3;
	X509V3_set_ctx(&v3, issuer ? issuer : x, x, NULL, NULL, 0);
	X509_EXTENSION *ext = X509V3_EXT_conf_nid(NULL, &v3, nid, value);
	if (!ext)
		fail_msg("extension %s = %s refused", OBJ_nid2sn(nid), value);
	assert_int_equal(X509_add_ext(x, ext, -1), 1);
	X509_EXTENSION_free(ext);
}

/* A certificate for key, valid from `from` to `to` seconds relative to
 * now; self-signed when issuer is NULL. san and eku may be NULL. */
static X509 *make_cert(const char *cn, const char *san, const char *eku, EVP_PKEY *key,
		       X509 *issuer, EVP_PKEY *issuer_key, long from, long to)
{
	X509 *x = X509_new();
	assert_non_null(x);
	assert_int_equal(X509_set_version(x, 2), 1);
	assert_int_equal(ASN1_INTEGER_set(X509_get_serialNumber(x), ++pki.serial), 1);
	X509_NAME *name = X509_get_subject_name(x);
	assert_int_equal(X509_NAME_add_entry_by_txt(name, "O", MBSTRING_ASC,
						    (const unsigned char *)"fedgate tests", -1, -1,
						    0),
			 1);
	if (cn)
		assert_int_equal(X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC,
							    (const unsigned char *)cn, -1, -1, 0),
				 1);
	assert_int_equal(X509_set_issuer_name(x, issuer ? X509_get_subject_name(issuer) : name), 1);
	assert_non_null(X509_gmtime_adj(X509_getm_notBefore(x), from));
	assert_non_null(X509_gmtime_adj(X509_getm_notAfter(x), to));
	assert_int_equal(X509_set_pubkey(x, key), 1);
	add_ext(x, issuer, NID_subject_key_identifier, "hash");
	if (issuer) {
		add_ext(x, issuer, NID_authority_key_identifier, "keyid:always");
		add_ext(x, issuer, NID_basic_constraints, "critical,CA:FALSE");
		add_ext(x, issuer, NID_key_usage, "critical,digitalSignature");
	} else {
		add_ext(x, NULL, NID_basic_constraints, "critical,CA:TRUE");
		add_ext(x, NULL, NID_key_usage, "critical,keyCertSign,cRLSign");
	}
	if (eku)
		add_ext(x, issuer, NID_ext_key_usage, eku);
	if (san)
		add_ext(x, issuer, NID_subject_alt_name, san);
	assert_true(X509_sign(x, issuer ? issuer_key : key, EVP_sha256()) > 0);
	return x;
}

/* A leaf of ca for the identity tests: only its names matter. */
static X509 *leaf(const char *cn, const char *san)
{
	return make_cert(cn, san, "serverAuth,clientAuth", pki.leaf_key, pki.ca, pki.ca_key, -DAY,
			 30 * DAY);
}

static void write_pem(char *path, const char *name, X509 *x, EVP_PKEY *key)
{
	snprintf(path, PATH_MAX, "%s/%s", pki.dir, name);
	FILE *f = fopen(path, "w");
	assert_non_null(f);
	if (x)
		assert_int_equal(PEM_write_X509(f, x), 1);
	if (key)
		assert_int_equal(PEM_write_PrivateKey(f, key, NULL, NULL, 0, NULL, NULL), 1);
	assert_int_equal(fclose(f), 0);
}

static int pki_setup(void **state)
{
	(void)state;
	snprintf(pki.dir, sizeof(pki.dir), "/tmp/fg_test_tls_XXXXXX");
	assert_non_null(mkdtemp(pki.dir));
	pki.ca_key = new_key();
	pki.other_key = new_key();
	pki.leaf_key = new_key();
	pki.ca = make_cert("fedgate test CA", NULL, NULL, pki.ca_key, NULL, NULL, -DAY, 365 * DAY);
	pki.other_ca = make_cert("someone else's CA", NULL, NULL, pki.other_key, NULL, NULL, -DAY,
				 365 * DAY);
	write_pem(pki.ca_file, "ca.pem", pki.ca, NULL);
	write_pem(pki.other_ca_file, "other-ca.pem", pki.other_ca, NULL);
	write_pem(pki.key_file, "leaf.key", NULL, pki.leaf_key);

	const char *both = "serverAuth,clientAuth";
	X509 *x = make_cert("contoso.test", "DNS:contoso.test", both, pki.leaf_key, pki.ca,
			    pki.ca_key, -DAY, 30 * DAY);
	write_pem(pki.contoso_file, "contoso.pem", x, NULL);
	X509_free(x);
	pki.fabrikam = make_cert("fabrikam.test", "DNS:fabrikam.test", both, pki.leaf_key, pki.ca,
				 pki.ca_key, -DAY, 30 * DAY);
	write_pem(pki.fabrikam_file, "fabrikam.pem", pki.fabrikam, NULL);
	x = make_cert("fabrikam.test", "DNS:fabrikam.test", both, pki.leaf_key, pki.ca, pki.ca_key,
		      -60 * DAY, -2 * DAY);
	write_pem(pki.expired_file, "expired.pem", x, NULL);
	X509_free(x);
	x = make_cert("fabrikam.test", "DNS:fabrikam.test", both, pki.leaf_key, pki.other_ca,
		      pki.other_key, -DAY, 30 * DAY);
	write_pem(pki.foreign_file, "foreign.pem", x, NULL);
	X509_free(x);
	x = make_cert("fabrikam.test", "DNS:fabrikam.test", "serverAuth", pki.leaf_key, pki.ca,
		      pki.ca_key, -DAY, 30 * DAY);
	write_pem(pki.server_only_file, "server-only.pem", x, NULL);
	X509_free(x);
	x = make_cert("fabrikam.test", "DNS:fabrikam.test", "codeSigning", pki.leaf_key, pki.ca,
		      pki.ca_key, -DAY, 30 * DAY);
	write_pem(pki.signing_file, "signing.pem", x, NULL);
	X509_free(x);
	return 0;
}

static int pki_teardown(void **state)
{
	(void)state;
	const char *files[] = {pki.ca_file,	 pki.other_ca_file,   pki.key_file,
			       pki.contoso_file, pki.fabrikam_file,   pki.expired_file,
			       pki.foreign_file, pki.server_only_file};
	for (size_t i = 0; i < FG_ARRAY_LEN(files); i++)
		unlink(files[i]);
	rmdir(pki.dir);
	X509_free(pki.ca);
	X509_free(pki.other_ca);
	X509_free(pki.fabrikam);
	EVP_PKEY_free(pki.ca_key);
	EVP_PKEY_free(pki.other_key);
	EVP_PKEY_free(pki.leaf_key);
	return 0;
}

/* Checks cert against domain and that why mentions `says` (if given). */
static void expect_id(X509 *cert, const char *domain, enum tls_id_result want, const char *says)
{
	char why[512];
	enum tls_id_result got = tls_cert_matches(cert, domain, why, sizeof(why));
	if (got != want)
		fail_msg("%s: got %s, want %s (%s)", domain ? domain : "(null)", tls_id_name(got),
			 tls_id_name(want), why);
	if (says && !strstr(why, says))
		fail_msg("%s: \"%s\" does not say \"%s\"", domain ? domain : "(null)", why, says);
}

static void test_dns_id(void **state)
{
	(void)state;
	X509 *x = leaf("not-used.test", "DNS:fabrikam.test");
	expect_id(x, "fabrikam.test", TLS_ID_MATCH_DNS_ID, "names fabrikam.test as DNS-ID");
	expect_id(x, "FABRIKAM.Test", TLS_ID_MATCH_DNS_ID, NULL);
	expect_id(x, "fabrikam.test.", TLS_ID_MATCH_DNS_ID, NULL);
	expect_id(x, "a.fabrikam.test", TLS_ID_NO_MATCH, "fabrikam.test; a.fabrikam.test is not");
	expect_id(x, "abrikam.test", TLS_ID_NO_MATCH, NULL);
	expect_id(x, "fabrikam.tes", TLS_ID_NO_MATCH, NULL);
	expect_id(x, "fabrikam.test.example", TLS_ID_NO_MATCH, NULL);
	X509_free(x);

	/* Presented names compare case-insensitively too, and A-labels are
	 * plain ASCII to us. */
	x = leaf(NULL, "DNS:FaBriKam.TEST, DNS:xn--mnchen-3ya.test.");
	expect_id(x, "fabrikam.test", TLS_ID_MATCH_DNS_ID, NULL);
	expect_id(x, "xn--mnchen-3ya.test", TLS_ID_MATCH_DNS_ID, NULL);
	X509_free(x);
}

static void test_wildcard(void **state)
{
	(void)state;
	X509 *x = leaf(NULL, "DNS:*.litware.test");
	expect_id(x, "a.litware.test", TLS_ID_MATCH_DNS_ID, "the wildcard DNS-ID *.litware.test");
	expect_id(x, "XN--BCHER-KVA.litware.TEST", TLS_ID_MATCH_DNS_ID, NULL);
	expect_id(x, "litware.test", TLS_ID_NO_MATCH, "*.litware.test; litware.test is not");
	expect_id(x, "a.b.litware.test", TLS_ID_NO_MATCH, NULL);
	expect_id(x, ".litware.test", TLS_ID_NO_MATCH, "not a domain name");
	expect_id(x, "alitware.test", TLS_ID_NO_MATCH, NULL);
	expect_id(x, "a.litware.tes", TLS_ID_NO_MATCH, NULL);
	X509_free(x);
}

static void test_wildcard_refused(void **state)
{
	(void)state;
	static const struct {
		const char *san, *domain, *says;
	} cases[] = {
		{"DNS:f*.example.com", "foo.example.com", "whole left-most label"},
		{"DNS:*o.example.com", "foo.example.com", "whole left-most label"},
		{"DNS:f*o.example.com", "foo.example.com", "whole left-most label"},
		{"DNS:a.*.example.com", "a.b.example.com", "whole left-most label"},
		{"DNS:*.*.example.com", "a.b.example.com", "whole left-most label"},
		{"DNS:**.example.com", "a.example.com", "whole left-most label"},
		{"DNS:*", "test", "whole left-most label"},
		{"DNS:*.", "test", "whole left-most label"},
		{"DNS:*.com", "example.com", "at least three labels"},
		{"DNS:*.test", "fabrikam.test", "at least three labels"},
		{"DNS:*.test.", "fabrikam.test", "at least three labels"},
		{"DNS:*..test", "a..test", "not a domain name"},
	};
	for (size_t i = 0; i < FG_ARRAY_LEN(cases); i++) {
		X509 *x = leaf(NULL, cases[i].san);
		expect_id(x, cases[i].domain, TLS_ID_NO_MATCH, cases[i].says);
		X509_free(x);
	}
	/* A refused wildcard does not hide a good name beside it. */
	X509 *x = leaf(NULL, "DNS:*.test, DNS:fabrikam.test");
	expect_id(x, "fabrikam.test", TLS_ID_MATCH_DNS_ID, "as DNS-ID fabrikam.test");
	X509_free(x);
}

static void test_cn_only(void **state)
{
	(void)state;
	X509 *x = leaf("fabrikam.test", NULL);
	expect_id(x, "fabrikam.test", TLS_ID_NO_MATCH, "no subjectAltName, only the subject CN");
	expect_id(x, "fabrikam.test", TLS_ID_NO_MATCH, "a CN never identifies a server");
	X509_free(x);

	/* With subjectAltNames that do not fit, an equal CN still does not
	 * count, and the sentence says so. */
	x = leaf("fabrikam.test", "DNS:contoso.test");
	expect_id(x, "fabrikam.test", TLS_ID_NO_MATCH,
		  "its subject CN is fabrikam.test, but a CN never identifies a server");
	X509_free(x);

	x = leaf("fabrikam.test", "email:admin@fabrikam.test, IP:192.0.2.1");
	expect_id(x, "fabrikam.test", TLS_ID_NO_MATCH, "holds no domain name");
	X509_free(x);

	x = leaf(NULL, NULL);
	expect_id(x, "fabrikam.test", TLS_ID_NO_MATCH, "names no domain at all");
	X509_free(x);
}

static void test_srv_id(void **state)
{
	(void)state;
	X509 *x = leaf(NULL, "otherName:1.3.6.1.5.5.7.8.7;IA5STRING:_xmpp-server.srv.test");
	expect_id(x, "srv.test", TLS_ID_MATCH_SRV_ID, "as SRV-ID _xmpp-server.srv.test");
	expect_id(x, "SRV.test", TLS_ID_MATCH_SRV_ID, NULL);
	expect_id(x, "a.srv.test", TLS_ID_NO_MATCH, "_xmpp-server.srv.test (SRV-ID)");
	X509_free(x);

	/* Another service's SRV-ID is not ours. */
	x = leaf(NULL, "otherName:1.3.6.1.5.5.7.8.7;IA5STRING:_xmpp-client.srv.test");
	expect_id(x, "srv.test", TLS_ID_NO_MATCH, "_xmpp-client.srv.test (SRV-ID)");
	X509_free(x);

	/* RFC 4985 says IA5String; a UTF8String is malformed. */
	x = leaf(NULL, "otherName:1.3.6.1.5.5.7.8.7;UTF8:_xmpp-server.srv.test");
	expect_id(x, "srv.test", TLS_ID_NO_MATCH, "malformed");
	X509_free(x);
}

static void test_xmppaddr(void **state)
{
	(void)state;
	X509 *x = leaf(NULL, "otherName:1.3.6.1.5.5.7.8.5;UTF8:xmpp.test");
	expect_id(x, "xmpp.test", TLS_ID_MATCH_XMPPADDR, "as XmppAddr xmpp.test");
	expect_id(x, "other.test", TLS_ID_NO_MATCH, "xmpp.test (XmppAddr)");
	X509_free(x);

	/* A user's JID is a client identity, not a server's. */
	x = leaf(NULL, "otherName:1.3.6.1.5.5.7.8.5;UTF8:juliet@xmpp.test");
	expect_id(x, "xmpp.test", TLS_ID_NO_MATCH, NULL);
	X509_free(x);
}

static void test_preference(void **state)
{
	(void)state;
	/* All three kinds for one domain: DNS-ID wins, then SRV-ID. */
	X509 *x = leaf(NULL, "otherName:1.3.6.1.5.5.7.8.5;UTF8:all.test,"
			     "otherName:1.3.6.1.5.5.7.8.7;IA5STRING:_xmpp-server.all.test,"
			     "DNS:all.test");
	expect_id(x, "all.test", TLS_ID_MATCH_DNS_ID, NULL);
	X509_free(x);
	x = leaf(NULL, "otherName:1.3.6.1.5.5.7.8.5;UTF8:all.test,"
		       "otherName:1.3.6.1.5.5.7.8.7;IA5STRING:_xmpp-server.all.test");
	expect_id(x, "all.test", TLS_ID_MATCH_SRV_ID, NULL);
	X509_free(x);
}

static void test_other_domain(void **state)
{
	(void)state;
	X509 *x = leaf("fabrikam.test", "DNS:contoso.test, DNS:*.litware.test");
	expect_id(x, "fabrikam.test", TLS_ID_NO_MATCH,
		  "the certificate names contoso.test, *.litware.test; fabrikam.test is not among "
		  "them");
	X509_free(x);

	/* Long lists are cut, not overflowed. */
	x = leaf(NULL, "DNS:a1.test,DNS:a2.test,DNS:a3.test,DNS:a4.test,DNS:a5.test,DNS:a6.test,"
		       "DNS:a7.test,DNS:a8.test,DNS:a9.test,DNS:a10.test");
	expect_id(x, "fabrikam.test", TLS_ID_NO_MATCH, "a8.test and more; fabrikam.test is not");
	X509_free(x);
}

/* The classic "fabrikam.test\0.evil.test" name must not pass as fabrikam.test. */
static void test_embedded_nul(void **state)
{
	(void)state;
	static const char evil[] = "fabrikam.test\0.evil.test";
	X509 *x = leaf(NULL, NULL);
	GENERAL_NAMES *names = GENERAL_NAMES_new();
	GENERAL_NAME *gn = GENERAL_NAME_new();
	ASN1_IA5STRING *s = ASN1_IA5STRING_new();
	assert_true(names && gn && s);
	assert_int_equal(ASN1_STRING_set(s, evil, (int)sizeof(evil) - 1), 1);
	GENERAL_NAME_set0_value(gn, GEN_DNS, s);
	assert_true(sk_GENERAL_NAME_push(names, gn) > 0);
	assert_int_equal(X509_add1_ext_i2d(x, NID_subject_alt_name, names, 0, 0), 1);
	GENERAL_NAMES_free(names);

	char why[512];
	assert_int_equal(tls_cert_matches(x, "fabrikam.test", why, sizeof(why)), TLS_ID_NO_MATCH);
	assert_non_null(strstr(why, "fabrikam.test?.evil.test (holds a NUL byte, ignored)"));
	X509_free(x);
}

static void test_bad_arguments(void **state)
{
	(void)state;
	X509 *x = leaf(NULL, "DNS:fabrikam.test");
	expect_id(x, NULL, TLS_ID_NO_MATCH, "not a domain name");
	expect_id(x, "", TLS_ID_NO_MATCH, "not a domain name");
	expect_id(x, "*.test", TLS_ID_NO_MATCH, "not a domain name");
	expect_id(x, "fabrikam..test", TLS_ID_NO_MATCH, "not a domain name");
	expect_id(x, "fabrikam.test/x", TLS_ID_NO_MATCH, "not a domain name");
	expect_id(x, "fabrikam\n.test", TLS_ID_NO_MATCH, "\"fabrikam?.test\"");
	expect_id(NULL, "fabrikam.test", TLS_ID_NO_MATCH, "no certificate");

	/* why is optional and never overflows. */
	assert_int_equal(tls_cert_matches(x, "fabrikam.test", NULL, 0), TLS_ID_MATCH_DNS_ID);
	char small[8];
	memset(small, 'x', sizeof(small));
	assert_int_equal(tls_cert_matches(x, "contoso.test", small, sizeof(small)),
			 TLS_ID_NO_MATCH);
	assert_int_equal(strlen(small), sizeof(small) - 1);
	X509_free(x);

	assert_string_equal(tls_id_name(TLS_ID_MATCH_DNS_ID), "DNS-ID");
	assert_string_equal(tls_id_name(TLS_ID_MATCH_SRV_ID), "SRV-ID");
	assert_string_equal(tls_id_name(TLS_ID_MATCH_XMPPADDR), "XmppAddr");
	assert_string_equal(tls_id_name(TLS_ID_NO_MATCH), "no match");
}

/* One end of a handshake; the server end runs in a thread, whose OpenSSL
 * error queue is its own, so it keeps what it needs here. */
struct end {
	SSL *ssl;
	int fd;
	int rc;
	int reason; /* ERR_GET_REASON of the first error, 0 if none */
	char sni[256];
};

static void after_handshake(struct end *e)
{
	if (e->rc != 1) {
		e->reason = ERR_GET_REASON(ERR_peek_error());
		/* Unblock the other end, which may wait for bytes that never come. */
		shutdown(e->fd, SHUT_RDWR);
	}
	ERR_clear_error();
}

static void *server_main(void *arg)
{
	struct end *e = arg;
	e->rc = SSL_accept(e->ssl);
	after_handshake(e);
	const char *sni = SSL_get_servername(e->ssl, TLSEXT_NAMETYPE_host_name);
	snprintf(e->sni, sizeof(e->sni), "%s", sni ? sni : "");
	return NULL;
}

/* Direct TLS (XEP-0368) for the next handshake(): the server's one ALPN
 * protocol (tls_server_alpn) and the client's offer in wire format. */
static const char *hs_server_alpn;
static const unsigned char *hs_client_alpn;
static unsigned hs_client_alpn_len;
static const char *hs_client_proto; /* tls_client_alpn, as s2s_out offers */

/* Runs a blocking handshake over a socket pair; sni NULL skips
 * tls_client_prepare(). The caller checks the outcome and calls done(). */
static void handshake(SSL_CTX *sctx, SSL_CTX *cctx, const char *sni, struct end *srv,
		      struct end *cli)
{
	int sv[2];
	pthread_t t;
	memset(srv, 0, sizeof(*srv));
	memset(cli, 0, sizeof(*cli));
	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
	srv->fd = sv[0];
	cli->fd = sv[1];
	srv->ssl = SSL_new(sctx);
	cli->ssl = SSL_new(cctx);
	assert_non_null(srv->ssl);
	assert_non_null(cli->ssl);
	assert_int_equal(SSL_set_fd(srv->ssl, srv->fd), 1);
	assert_int_equal(SSL_set_fd(cli->ssl, cli->fd), 1);
	if (sni)
		assert_int_equal(tls_client_prepare(cli->ssl, sni), FG_OK);
	if (hs_server_alpn)
		assert_int_equal(tls_server_alpn(srv->ssl, hs_server_alpn), FG_OK);
	if (hs_client_alpn_len)
		assert_int_equal(SSL_set_alpn_protos(cli->ssl, hs_client_alpn, hs_client_alpn_len),
				 0);
	if (hs_client_proto)
		assert_int_equal(tls_client_alpn(cli->ssl, hs_client_proto), FG_OK);
	assert_int_equal(pthread_create(&t, NULL, server_main, srv), 0);
	cli->rc = SSL_connect(cli->ssl);
	after_handshake(cli);
	assert_int_equal(pthread_join(t, NULL), 0);
}

static void done(struct end *srv, struct end *cli)
{
	SSL_free(srv->ssl);
	SSL_free(cli->ssl);
	close(srv->fd);
	close(cli->fd);
}

static SSL_CTX *server_ctx(const char *ca_file)
{
	char err[512];
	SSL_CTX *ctx =
		tls_server_ctx_new(pki.contoso_file, pki.key_file, ca_file, err, sizeof(err));
	if (!ctx)
		fail_msg("server context: %s", err);
	return ctx;
}

static SSL_CTX *client_ctx(const char *cert, const char *ca_file)
{
	char err[512];
	SSL_CTX *ctx = tls_client_ctx_new(cert, pki.key_file, ca_file, err, sizeof(err));
	if (!ctx)
		fail_msg("client context: %s", err);
	return ctx;
}

static void test_handshake_ok(void **state)
{
	(void)state;
	SSL_CTX *sctx = server_ctx(pki.ca_file);
	SSL_CTX *cctx = client_ctx(pki.fabrikam_file, pki.ca_file);
	struct end srv, cli;
	struct tls_verdict v;

	handshake(sctx, cctx, "contoso.test", &srv, &cli);
	assert_int_equal(srv.rc, 1);
	assert_int_equal(cli.rc, 1);
	assert_string_equal(srv.sni, "contoso.test");
	assert_true(SSL_version(srv.ssl) >= TLS1_2_VERSION);
	assert_int_equal(SSL_version(srv.ssl), SSL_version(cli.ssl));
	assert_string_equal(tls_expected_host(cli.ssl), "contoso.test");
	assert_null(tls_expected_host(srv.ssl));

	/* Our certificate went out as the client certificate. */
	X509 *got = SSL_get0_peer_certificate(srv.ssl);
	assert_non_null(got);
	assert_int_equal(X509_cmp(got, pki.fabrikam), 0);

	/* Inbound: what SASL EXTERNAL asks about the stream's from=. */
	assert_int_equal(tls_peer_verify(srv.ssl, "fabrikam.test", &v), FG_OK);
	assert_true(v.has_cert);
	assert_true(v.chain_ok);
	assert_int_equal(v.chain_error, X509_V_OK);
	assert_int_equal(v.id, TLS_ID_MATCH_DNS_ID);
	assert_non_null(strstr(v.text, "chain is trusted"));
	assert_string_equal(tls_peer_verdict(srv.ssl), "valid");

	/* The same good chain proves nothing about another domain. */
	assert_int_equal(tls_peer_verify(srv.ssl, "litware.test", &v), FG_ERR);
	assert_true(v.chain_ok);
	assert_int_equal(v.id, TLS_ID_NO_MATCH);
	assert_non_null(strstr(v.text, "litware.test is not among them"));

	/* Outbound: checked against the name given to tls_client_prepare(). */
	assert_int_equal(tls_peer_verify(cli.ssl, NULL, &v), FG_OK);
	assert_true(v.chain_ok);
	assert_int_equal(v.id, TLS_ID_MATCH_DNS_ID);
	assert_non_null(strstr(v.text, "names contoso.test as DNS-ID contoso.test"));

	char desc[128];
	tls_describe(cli.ssl, desc, sizeof(desc));
	assert_true(strncmp(desc, "TLSv1.", 6) == 0);
	done(&srv, &cli);
	tls_ctx_free(&sctx);
	tls_ctx_free(&cctx);
	assert_null(sctx);
}

/* Runs fabrikam's client certificate `cert` against a server trusting
 * ca_file and returns the server's verdict on fabrikam.test. */
static int inbound_verdict(const char *cert, const char *ca_file, struct tls_verdict *v)
{
	SSL_CTX *sctx = server_ctx(ca_file);
	SSL_CTX *cctx = client_ctx(cert, pki.ca_file);
	struct end srv, cli;
	handshake(sctx, cctx, "contoso.test", &srv, &cli);
	/* A bad client certificate never fails the handshake: dialback may
	 * still be allowed on this stream. */
	assert_int_equal(srv.rc, 1);
	assert_int_equal(cli.rc, 1);
	assert_non_null(SSL_get0_peer_certificate(srv.ssl));
	int rc = tls_peer_verify(srv.ssl, "fabrikam.test", v);
	done(&srv, &cli);
	SSL_CTX_free(sctx);
	SSL_CTX_free(cctx);
	return rc;
}

static void expect_text(const struct tls_verdict *v, const char *says)
{
	if (!strstr(v->text, says))
		fail_msg("\"%s\" does not say \"%s\"", v->text, says);
}

static void test_handshake_wrong_ca(void **state)
{
	(void)state;
	struct tls_verdict v;
	/* The server trusts only someone else's CA. The client's file holds
	 * just its leaf, but OpenSSL completes the chain it sends from the
	 * client's own trust store, root included: so the server meets a
	 * self-signed root it does not trust. */
	assert_int_equal(inbound_verdict(pki.fabrikam_file, pki.other_ca_file, &v), FG_ERR);
	assert_true(v.has_cert);
	assert_false(v.chain_ok);
	assert_int_equal(v.chain_error, X509_V_ERR_SELF_SIGNED_CERT_IN_CHAIN);
	/* Identity and chain are separate verdicts. */
	assert_int_equal(v.id, TLS_ID_MATCH_DNS_ID);
	expect_text(&v, "chain is not trusted: self-signed certificate in certificate chain");
	expect_text(&v, "the CA certificate CN=fedgate test CA,O=fedgate tests is self-signed");
	expect_text(&v, "[tls] ca_file");
	assert_string_equal(tls_peer_verdict(NULL), "none");

	/* Outbound with the wrong anchors: the client end says the same. */
	SSL_CTX *sctx = server_ctx(pki.ca_file);
	SSL_CTX *cctx = client_ctx(pki.fabrikam_file, pki.other_ca_file);
	struct end srv, cli;
	handshake(sctx, cctx, "contoso.test", &srv, &cli);
	assert_int_equal(cli.rc, 1);
	assert_int_equal(tls_peer_verify(cli.ssl, NULL, &v), FG_ERR);
	assert_false(v.chain_ok);
	assert_int_equal(v.chain_error, X509_V_ERR_SELF_SIGNED_CERT_IN_CHAIN);
	assert_int_equal(v.id, TLS_ID_MATCH_DNS_ID);
	assert_string_equal(tls_peer_verdict(cli.ssl),
			    X509_verify_cert_error_string(X509_V_ERR_SELF_SIGNED_CERT_IN_CHAIN));
	done(&srv, &cli);
	SSL_CTX_free(sctx);
	SSL_CTX_free(cctx);
}

static void test_handshake_foreign_ca(void **state)
{
	(void)state;
	struct tls_verdict v;
	/* The client cannot complete this chain from its store, so the leaf
	 * arrives alone; the first error names the missing issuer, where
	 * SSL_get_verify_result() would say "unable to verify the first
	 * certificate". */
	assert_int_equal(inbound_verdict(pki.foreign_file, pki.ca_file, &v), FG_ERR);
	assert_false(v.chain_ok);
	assert_int_equal(v.chain_error, X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT_LOCALLY);
	expect_text(&v, "chain is not trusted: unable to get local issuer certificate");
	expect_text(&v, "issued by CN=someone else's CA,O=fedgate tests, which is not among");
}

static void test_handshake_expired(void **state)
{
	(void)state;
	struct tls_verdict v;
	assert_int_equal(inbound_verdict(pki.expired_file, pki.ca_file, &v), FG_ERR);
	assert_false(v.chain_ok);
	assert_int_equal(v.chain_error, X509_V_ERR_CERT_HAS_EXPIRED);
	assert_int_equal(v.id, TLS_ID_MATCH_DNS_ID);
	expect_text(&v, "certificate has expired");
	expect_text(&v, "CN=fabrikam.test,O=fedgate tests expired on 20");
	expect_text(&v, "must renew it");
	/* Both verdicts fit in the text, the identity one last. */
	expect_text(&v, "; the certificate names fabrikam.test as DNS-ID fabrikam.test");
}

/* Issue 15: public CAs issue serverAuth alone since 2026, and a server
 * presents that certificate as a TLS client on its outbound streams. */
static void test_handshake_server_only_purpose(void **state)
{
	(void)state;
	struct tls_verdict v;
	assert_int_equal(inbound_verdict(pki.server_only_file, pki.ca_file, &v), FG_OK);
	assert_true(v.chain_ok);
	assert_string_equal(v.eku, "TLS server only");
	/* A certificate for neither end of TLS still proves nothing. */
	assert_int_equal(inbound_verdict(pki.signing_file, pki.ca_file, &v), FG_ERR);
	assert_false(v.chain_ok);
	assert_int_equal(v.chain_error, X509_V_ERR_INVALID_PURPOSE);
	assert_string_equal(v.eku, "neither TLS server nor TLS client");
	expect_text(&v, "allows neither serverAuth nor clientAuth");
	assert_int_equal(inbound_verdict(pki.fabrikam_file, pki.ca_file, &v), FG_OK);
	assert_string_equal(v.eku, "TLS server, TLS client");
}

/* The pin is the SHA-256 of the DER SubjectPublicKeyInfo, computed here
 * from the key rather than the certificate. */
static void leaf_pin(char out[PIN_B64_LEN + 1])
{
	unsigned char *der = NULL, md[32];
	int n = i2d_PUBKEY(pki.leaf_key, &der);
	assert_true(n > 0);
	SHA256(der, (size_t)n, md);
	OPENSSL_free(der);
	pin_from_digest(md, out);
}

static void test_pins(void **state)
{
	(void)state;
	struct tls_verdict v;
	char pin[PIN_B64_LEN + 1];
	char other[PIN_B64_LEN + 1] = "ungWv48Bz+pBQUDeXa4iI7ADYaOWF3qctBD/YfIAFa0=";
	char *listed[2] = {other, pin};
	struct domain_list pins = {listed, 2};
	leaf_pin(pin);

	/* A CA nobody here trusts, but the key the admin pinned. */
	assert_int_equal(inbound_verdict(pki.foreign_file, pki.ca_file, &v), FG_ERR);
	assert_string_equal(v.spki, pin);
	assert_int_equal(tls_verdict_pins(&v, "fabrikam.test", &pins), FG_OK);
	assert_int_equal(v.pin, TLS_PIN_MATCH);
	assert_true(v.chain_ok);
	expect_text(&v, "pinned for fabrikam.test");

	/* A trusted chain with a key that is not pinned: refused, and the
	 * text names both. */
	struct domain_list only_other = {listed, 1};
	assert_int_equal(inbound_verdict(pki.fabrikam_file, pki.ca_file, &v), FG_OK);
	assert_int_equal(tls_verdict_pins(&v, "fabrikam.test", &only_other), FG_ERR);
	assert_int_equal(v.pin, TLS_PIN_MISMATCH);
	assert_false(v.chain_ok);
	expect_text(&v, pin);
	expect_text(&v, other);
	expect_text(&v, "--add-pin");

	/* No pins: the CAs decide, as before. */
	struct domain_list none = {NULL, 0};
	assert_int_equal(inbound_verdict(pki.fabrikam_file, pki.ca_file, &v), FG_OK);
	assert_int_equal(tls_verdict_pins(&v, "fabrikam.test", &none), FG_OK);
	assert_int_equal(v.pin, TLS_PIN_NONE);
}

/* DANE (dane.c) on the client end: contoso.test's server certificate is
 * checked against a TLSA record instead of a CA the client trusts. */
static int dane_attempt(const struct dane_tlsa *rec, const char *domain, struct tls_verdict *v,
			int *usable)
{
	SSL_CTX *sctx = server_ctx(pki.ca_file);
	/* A store without contoso's CA: only DANE can vouch for it. */
	SSL_CTX *cctx = client_ctx(pki.fabrikam_file, pki.other_ca_file);
	static struct dane_host h;
	struct end srv, cli;

	memset(&h, 0, sizeof(h));
	snprintf(h.name, sizeof(h.name), "xmpp.%s", domain);
	snprintf(h.qname, sizeof(h.qname), "_5269._tcp.xmpp.%s", domain);
	h.port = 5269;
	h.st = DANE_ST_RECORDS;
	h.n = 1;
	h.recs[0] = *rec;
	dane_client_arm(cctx, &h, domain);
	handshake(sctx, cctx, domain, &srv, &cli);
	dane_client_arm(cctx, NULL, NULL);
	assert_int_equal(cli.rc, 1); /* a verdict, never a failed handshake */
	int rc = tls_peer_verify(cli.ssl, NULL, v);
	*usable = dane_ssl_usable(cli.ssl);
	done(&srv, &cli);
	tls_ctx_free(&sctx);
	tls_ctx_free(&cctx);
	return rc;
}

static void test_dane(void **state)
{
	(void)state;
	struct tls_verdict v;
	struct dane_tlsa rec = {.usage = 3, .selector = 1, .mtype = 1, .len = 32};
	unsigned char *der = NULL;
	int n = i2d_PUBKEY(pki.leaf_key, &der);
	int usable;

	assert_true(n > 0);
	SHA256(der, (size_t)n, rec.data);
	OPENSSL_free(der);
	/* DANE-EE(3) 1 1: trusted without a CA, and the name is not checked
	 * (the certificate names contoso.test, not litware.test). */
	assert_int_equal(dane_attempt(&rec, "litware.test", &v, &usable), FG_OK);
	assert_int_equal(usable, 1);
	assert_true(v.dane_ok);
	assert_int_equal(v.dane_usage, 3);
	assert_true(v.chain_ok);
	expect_text(&v, "DANE: a DNSSEC-secure TLSA record (usage DANE-EE(3)) matches");
	/* Another key's record: no CA and no record vouch for it. */
	rec.data[0] ^= 0xff;
	assert_int_equal(dane_attempt(&rec, "contoso.test", &v, &usable), FG_ERR);
	assert_int_equal(usable, 1);
	assert_false(v.dane_ok);
	assert_false(v.chain_ok);
	assert_int_equal(v.chain_error, X509_V_ERR_DANE_NO_MATCH);
	/* A matching type OpenSSL does not know: no usable record. */
	rec.mtype = 7;
	assert_int_equal(dane_attempt(&rec, "contoso.test", &v, &usable), FG_ERR);
	assert_int_equal(usable, 0);
	assert_false(v.dane_ok);
	/* Not armed: no DANE on the connection at all. */
	SSL_CTX *cctx = client_ctx(pki.fabrikam_file, pki.ca_file);
	SSL *ssl = SSL_new(cctx);
	assert_int_equal(tls_client_prepare(ssl, "contoso.test"), FG_OK);
	assert_int_equal(dane_ssl_usable(ssl), -1);
	assert_false(dane_ssl_verified(ssl, NULL));
	SSL_free(ssl);
	tls_ctx_free(&cctx);
}

static void test_no_client_certificate(void **state)
{
	(void)state;
	SSL_CTX *sctx = server_ctx(pki.ca_file);
	SSL_CTX *cctx = SSL_CTX_new(TLS_client_method());
	struct end srv, cli;
	struct tls_verdict v;
	assert_non_null(cctx);
	handshake(sctx, cctx, NULL, &srv, &cli);
	assert_int_equal(srv.rc, 1);
	assert_string_equal(srv.sni, "");
	/* OpenSSL reports X509_V_OK when nothing was presented at all. */
	assert_int_equal(SSL_get_verify_result(srv.ssl), X509_V_OK);
	assert_int_equal(tls_peer_verify(srv.ssl, "fabrikam.test", &v), FG_ERR);
	assert_false(v.has_cert);
	assert_false(v.chain_ok);
	assert_int_equal(v.id, TLS_ID_NO_MATCH);
	expect_text(&v, "presented no certificate");
	/* No domain given and none prepared. */
	assert_int_equal(tls_peer_verify(srv.ssl, NULL, &v), FG_INVAL);
	assert_int_equal(tls_peer_verify(NULL, "fabrikam.test", &v), FG_INVAL);
	done(&srv, &cli);
	SSL_CTX_free(sctx);
	SSL_CTX_free(cctx);
}

static void test_tls11_refused(void **state)
{
	(void)state;
	SSL_CTX *sctx = server_ctx(pki.ca_file);
	SSL_CTX *cctx = SSL_CTX_new(TLS_client_method());
	struct end srv, cli;
	assert_non_null(cctx);
	assert_int_equal(SSL_CTX_set_min_proto_version(cctx, TLS1_1_VERSION), 1);
	assert_int_equal(SSL_CTX_set_max_proto_version(cctx, TLS1_1_VERSION), 1);
	handshake(sctx, cctx, "contoso.test", &srv, &cli);
	assert_int_not_equal(srv.rc, 1);
	assert_int_not_equal(cli.rc, 1);
	/* The reasons matter: at Debian's default security level OpenSSL 3
	 * fails TLS 1.1 anyway, but later and as "no suitable signature
	 * algorithm". A protocol_version alert shows our minimum refused it. */
	assert_int_equal(srv.reason, SSL_R_UNSUPPORTED_PROTOCOL);
	assert_int_equal(cli.reason, SSL_R_TLSV1_ALERT_PROTOCOL_VERSION);
	done(&srv, &cli);
	SSL_CTX_free(sctx);
	SSL_CTX_free(cctx);

	/* An old server meets our client's supported_versions, 1.3 and 1.2
	 * only, and refuses it itself. */
	sctx = server_ctx(pki.ca_file);
	cctx = client_ctx(pki.fabrikam_file, pki.ca_file);
	assert_int_equal(SSL_CTX_set_min_proto_version(sctx, TLS1_1_VERSION), 1);
	assert_int_equal(SSL_CTX_set_max_proto_version(sctx, TLS1_1_VERSION), 1);
	handshake(sctx, cctx, "contoso.test", &srv, &cli);
	assert_int_not_equal(srv.rc, 1);
	assert_int_not_equal(cli.rc, 1);
	assert_int_equal(srv.reason, SSL_R_UNSUPPORTED_PROTOCOL);
	assert_int_equal(cli.reason, SSL_R_TLSV1_ALERT_PROTOCOL_VERSION);
	done(&srv, &cli);
	SSL_CTX_free(sctx);
	SSL_CTX_free(cctx);
}

/* XEP-0368 §3, RFC 7301 §3.2: a Direct TLS server takes its protocol or
 * no ALPN at all; an offer without it ends with no_application_protocol.
 * A STARTTLS connection (no protocol set) ignores ALPN. */
static void alpn_case(const char *server, const char *wire, unsigned len, bool ok,
		      const char *selected)
{
	SSL_CTX *sctx = server_ctx(pki.ca_file);
	SSL_CTX *cctx = client_ctx(pki.fabrikam_file, pki.ca_file);
	struct end srv, cli;
	char buf[64];

	hs_server_alpn = server;
	hs_client_alpn = (const unsigned char *)wire;
	hs_client_alpn_len = len;
	handshake(sctx, cctx, "contoso.test", &srv, &cli);
	hs_server_alpn = NULL;
	hs_client_alpn_len = 0;
	if (ok) {
		assert_int_equal(srv.rc, 1);
		assert_int_equal(cli.rc, 1);
		assert_null(tls_alpn_refused(srv.ssl));
		if (selected)
			assert_string_equal(tls_alpn_selected(cli.ssl, buf, sizeof(buf)), selected);
		else
			assert_null(tls_alpn_selected(cli.ssl, buf, sizeof(buf)));
	} else {
		assert_int_not_equal(srv.rc, 1);
		assert_int_not_equal(cli.rc, 1);
		assert_int_equal(cli.reason, SSL_R_TLSV1_ALERT_NO_APPLICATION_PROTOCOL);
		assert_string_equal(tls_alpn_refused(srv.ssl), server);
	}
	done(&srv, &cli);
	SSL_CTX_free(sctx);
	SSL_CTX_free(cctx);
}

static void test_direct_tls_alpn(void **state)
{
	(void)state;
	alpn_case("xmpp-server", "\x0bxmpp-server", 12, true, "xmpp-server");
	alpn_case("xmpp-server", "\x02h2\x0bxmpp-server", 15, true, "xmpp-server");
	alpn_case("xmpp-server", NULL, 0, true, NULL);
	alpn_case("xmpp-server", "\x02h2", 3, false, NULL);
	alpn_case("xmpp-server", "\x0bxmpp-client", 12, false, NULL);
	alpn_case("xmpp-client", "\x0bxmpp-server\x08http/1.1", 21, false, NULL);
	alpn_case("xmpp-client", "\x0bxmpp-client", 12, true, "xmpp-client");
	/* STARTTLS: whatever is offered, nothing is chosen, nothing refused */
	alpn_case(NULL, "\x02h2", 3, true, NULL);

	/* Our own client's offer (s2s_out, probe) against our server. */
	hs_client_proto = "xmpp-server";
	alpn_case("xmpp-server", NULL, 0, true, "xmpp-server");
	alpn_case("xmpp-client", NULL, 0, false, NULL);
	hs_client_proto = NULL;
}

/* ---- session tickets (tls_tickets.c) ---- */

static time_t fake_now = 1000000;
static time_t fake_clock(void)
{
	return fake_now;
}

struct resume_end {
	SSL *ssl;
	int rc;
};

static void *resume_server(void *arg)
{
	struct resume_end *e = arg;
	e->rc = SSL_accept(e->ssl);
	/* A byte after the handshake, so that the client reads the ticket
	 * TLS 1.3 sends after Finished. */
	if (e->rc == 1 && SSL_write(e->ssl, "x", 1) != 1)
		e->rc = -1;
	ERR_clear_error();
	return NULL;
}

/* One connection from a client showing the certificate of cctx, to the
 * SNI sni, offering the session `offer` (NULL: none) or, with arm set, the
 * one cctx's cache keeps for (arm, sni); returns whether the server
 * resumed and the session to offer next time (*next, owned by the
 * caller), the server's verdict on the client's certificate for
 * contoso.test in *v, which SASL EXTERNAL relies on, resumed or not, and
 * the client's on the server's for sni in *cv (may be NULL). */
static bool resume_at(SSL_CTX *sctx, SSL_CTX *cctx, const char *sni, const char *arm,
		      SSL_SESSION *offer, SSL_SESSION **next, struct tls_verdict *v,
		      struct tls_verdict *cv)
{
	int sv[2];
	pthread_t t;
	struct resume_end srv = {0};
	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
	srv.ssl = SSL_new(sctx);
	SSL *cli = SSL_new(cctx);
	assert_non_null(srv.ssl);
	assert_non_null(cli);
	assert_int_equal(SSL_set_fd(srv.ssl, sv[0]), 1);
	assert_int_equal(SSL_set_fd(cli, sv[1]), 1);
	if (arm)
		tls_client_resume_for(cctx, arm, sni);
	assert_int_equal(tls_client_prepare(cli, sni), FG_OK);
	if (offer)
		assert_int_equal(SSL_set_session(cli, offer), 1);
	assert_int_equal(pthread_create(&t, NULL, resume_server, &srv), 0);
	assert_int_equal(SSL_connect(cli), 1);
	char c;
	assert_int_equal(SSL_read(cli, &c, 1), 1);
	assert_int_equal(pthread_join(t, NULL), 0);
	assert_int_equal(srv.rc, 1);
	bool reused = SSL_session_reused(srv.ssl) == 1;
	assert_int_equal(reused, SSL_session_reused(cli) == 1);
	tls_peer_verify(srv.ssl, "contoso.test", v);
	if (cv)
		tls_peer_verify(cli, NULL, cv);
	char desc[128];
	tls_describe(srv.ssl, desc, sizeof(desc));
	assert_int_equal(strstr(desc, " (resumed)") != NULL, reused);
	*next = SSL_get1_session(cli);
	/* A clean close: OpenSSL marks the session of a connection freed
	 * without close_notify as not resumable. */
	SSL_shutdown(cli);
	SSL_free(srv.ssl);
	SSL_free(cli);
	close(sv[0]);
	close(sv[1]);
	ERR_clear_error();
	return reused;
}

static bool resume_round(SSL_CTX *sctx, SSL_CTX *cctx, SSL_SESSION *offer, SSL_SESSION **next,
			 struct tls_verdict *v)
{
	return resume_at(sctx, cctx, "contoso.test", NULL, offer, next, v, NULL);
}

/* A client that takes tickets and keeps them itself, as XMPP clients do. */
static SSL_CTX *ticket_client(const char *cert, const char *ca_file)
{
	SSL_CTX *cctx = client_ctx(cert, ca_file);
	SSL_CTX_clear_options(cctx, SSL_OP_NO_TICKET);
	SSL_CTX_set_session_cache_mode(cctx, SSL_SESS_CACHE_CLIENT);
	return cctx;
}

static SSL_CTX *ticket_server(const char *ca_file, long lifetime)
{
	char err[256];
	SSL_CTX *sctx = server_ctx(ca_file);
	assert_int_equal(tls_server_tickets_clock(sctx, lifetime, fake_clock, err, sizeof(err)),
			 FG_OK);
	return sctx;
}

static void test_session_tickets(void **state)
{
	(void)state;
	char err[256];
	fake_now = 1000000;
	SSL_CTX *sctx = ticket_server(pki.ca_file, 3600);
	SSL_CTX *cctx = ticket_client(pki.contoso_file, pki.ca_file);
	struct tls_verdict v;
	SSL_SESSION *s1 = NULL, *s2 = NULL, *s3 = NULL, *s4 = NULL, *s5 = NULL;
	/* Late in the first key's life. */
	fake_now += 3500;
	assert_false(resume_round(sctx, cctx, NULL, &s1, &v));
	assert_true(v.chain_ok && v.id != TLS_ID_NO_MATCH);
	assert_non_null(s1);

	/* Resumed: the client certificate's verdict is the same. */
	fake_now += 60;
	assert_true(resume_round(sctx, cctx, s1, &s2, &v));
	assert_true(v.has_cert && v.chain_ok && v.id != TLS_ID_NO_MATCH);

	/* The key rotated once: the previous key still opens the ticket. */
	fake_now += 100;
	assert_true(resume_round(sctx, cctx, s2, &s3, &v));
	assert_true(v.has_cert && v.chain_ok && v.id != TLS_ID_NO_MATCH);

	/* A new ticket at each resumption, its key current, but the chain
	 * verdict it carries is that of the first handshake: once older
	 * than lifetime, a full handshake verifies again. */
	fake_now += 3600 - 160;
	assert_false(resume_round(sctx, cctx, s3, &s4, &v));
	assert_true(v.chain_ok);

	/* Two lifetimes on, the key that sealed s4 is gone: full handshake,
	 * even though the session itself was kept by the client. */
	fake_now += 2 * 3600 + 1;
	assert_false(resume_round(sctx, cctx, s4, &s5, &v));
	assert_true(v.chain_ok);

	/* Another context (a reload) has other keys: a full handshake. */
	SSL_CTX *sctx2 = ticket_server(pki.ca_file, 3600);
	SSL_SESSION *s6 = NULL, *s7 = NULL, *s8 = NULL;
	assert_false(resume_round(sctx2, cctx, s5, &s6, &v));

	/* lifetime 0: no resumption at all. */
	SSL_CTX *sctx3 = server_ctx(pki.ca_file);
	assert_int_equal(tls_server_tickets(sctx3, 0, err, sizeof(err)), FG_OK);
	assert_false(resume_round(sctx3, cctx, NULL, &s7, &v));
	assert_false(resume_round(sctx3, cctx, s7, &s8, &v));

	SSL_SESSION *all[] = {s1, s2, s3, s4, s5, s6, s7, s8};
	for (size_t i = 0; i < FG_ARRAY_LEN(all); i++)
		SSL_SESSION_free(all[i]);
	tls_ctx_free(&sctx);
	tls_ctx_free(&sctx2);
	tls_ctx_free(&sctx3);
	tls_ctx_free(&cctx);
}

/* A resumed inbound stream has no certificate message: what SASL
 * EXTERNAL decides on must still be the full handshake's verdict, never a
 * trusted default. Here the peer's chain is untrusted (another CA). */
static void test_resumed_keeps_a_bad_verdict(void **state)
{
	(void)state;
	fake_now = 1000000;
	SSL_CTX *sctx = ticket_server(pki.ca_file, 3600);
	SSL_CTX *cctx = ticket_client(pki.foreign_file, pki.ca_file);
	struct tls_verdict full, v;
	SSL_SESSION *s1 = NULL, *s2 = NULL, *s3 = NULL;
	assert_false(resume_round(sctx, cctx, NULL, &s1, &full));
	assert_false(full.chain_ok);
	assert_int_equal(full.chain_error, X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT_LOCALLY);
	fake_now += 60;
	assert_true(resume_round(sctx, cctx, s1, &s2, &v));
	assert_true(v.has_cert);
	assert_false(v.chain_ok);
	assert_int_equal(v.chain_error, full.chain_error);
	assert_string_equal(v.text, full.text); /* the same words, explanation included */
	/* And carried on to the ticket the resumption brought. */
	fake_now += 60;
	assert_true(resume_round(sctx, cctx, s2, &s3, &v));
	assert_false(v.chain_ok);
	assert_string_equal(v.text, full.text);
	SSL_SESSION_free(s1);
	SSL_SESSION_free(s2);
	SSL_SESSION_free(s3);
	tls_ctx_free(&sctx);
	tls_ctx_free(&cctx);
}

/* TLS 1.3 does not bind a session to the SNI it was made for; our tickets
 * do. And whatever resumes, the certificate is matched against the domain
 * asked about each time: the identity verdict is never carried. */
static void test_ticket_bound_to_its_sni(void **state)
{
	(void)state;
	fake_now = 1000000;
	SSL_CTX *sctx = ticket_server(pki.ca_file, 3600);
	SSL_CTX *cctx = ticket_client(pki.contoso_file, pki.ca_file);
	struct tls_verdict v;
	SSL_SESSION *s1 = NULL, *s2 = NULL, *s3 = NULL;
	assert_false(resume_at(sctx, cctx, "contoso.test", NULL, NULL, &s1, &v, NULL));
	assert_false(resume_at(sctx, cctx, "fabrikam.test", NULL, s1, &s2, &v, NULL));
	assert_true(resume_at(sctx, cctx, "fabrikam.test", NULL, s2, &s3, &v, NULL));
	SSL_SESSION_free(s1);
	SSL_SESSION_free(s2);
	s1 = s2 = NULL;
	assert_true(resume_at(sctx, cctx, "fabrikam.test", NULL, s3, &s1, &v, NULL));
	assert_true(v.chain_ok);
	assert_int_equal(v.id, TLS_ID_MATCH_DNS_ID); /* contoso.test, asked by resume_at */
	SSL_SESSION_free(s1);
	SSL_SESSION_free(s3);
	tls_ctx_free(&sctx);
	tls_ctx_free(&cctx);
}

/* A chain verdict made while the certificate was valid says nothing once
 * it has expired: no resumption then. The clock here runs a month ahead,
 * past the leaves' 30 days; the handshakes themselves check real time. */
static void test_no_resumption_past_expiry(void **state)
{
	(void)state;
	SSL_CTX *cctx = ticket_client(pki.contoso_file, pki.ca_file);
	struct tls_verdict v;
	SSL_SESSION *s1 = NULL, *s2 = NULL;
	long ahead[] = {29 * DAY, 31 * DAY};
	for (size_t i = 0; i < FG_ARRAY_LEN(ahead); i++) {
		fake_now = time(NULL) + ahead[i];
		SSL_CTX *sctx = ticket_server(pki.ca_file, 7 * DAY);
		assert_false(resume_round(sctx, cctx, NULL, &s1, &v));
		fake_now += 60;
		assert_int_equal(resume_round(sctx, cctx, s1, &s2, &v), i == 0);
		SSL_SESSION_free(s1);
		SSL_SESSION_free(s2);
		tls_ctx_free(&sctx);
	}
	tls_ctx_free(&cctx);
}

/* Outbound: the client context's own cache, per (local, remote) pair. */
static void test_client_cache(void **state)
{
	(void)state;
	char err[256];
	fake_now = 1000000;
	SSL_CTX *sctx = ticket_server(pki.ca_file, 3600);
	SSL_CTX *cctx = client_ctx(pki.contoso_file, pki.ca_file);
	assert_int_equal(tls_client_tickets_clock(cctx, 3600, 2, fake_clock, err, sizeof(err)),
			 FG_OK);
	struct tls_verdict v, cv;
	SSL_SESSION *s[16] = {0};
	size_t n = 0;
	const char *us = "fabrikam.test", *them = "contoso.test";

	/* Not armed (probe): no resumption, nothing kept. */
	assert_false(resume_at(sctx, cctx, them, NULL, NULL, &s[n++], &v, &cv));
	assert_int_equal(tls_client_cached(cctx), 0);

	/* Armed: the first stream of the pair keeps the ticket that came
	 * after its handshake, the second resumes with it, and the client's
	 * verdict on the server is the same. */
	assert_false(resume_at(sctx, cctx, them, us, NULL, &s[n++], &v, &cv));
	assert_true(cv.chain_ok && cv.id == TLS_ID_MATCH_DNS_ID);
	assert_int_equal(tls_client_cached(cctx), 1);
	assert_true(resume_at(sctx, cctx, them, us, NULL, &s[n++], &v, &cv));
	assert_true(cv.chain_ok && cv.id == TLS_ID_MATCH_DNS_ID);
	assert_true(v.chain_ok); /* the server's verdict on our certificate */
	assert_true(resume_at(sctx, cctx, them, us, NULL, &s[n++], &v, &cv));

	/* Another local domain is another pair. */
	assert_false(resume_at(sctx, cctx, them, "litware.test", NULL, &s[n++], &v, &cv));
	assert_int_equal(tls_client_cached(cctx), 2);

	/* A failed stream forgets its session. */
	tls_client_forget(cctx, us, them);
	assert_int_equal(tls_client_cached(cctx), 1);
	fake_now += 5;
	assert_false(resume_at(sctx, cctx, them, us, NULL, &s[n++], &v, &cv));

	/* Bounded: a third pair pushes out the oldest (litware's). */
	fake_now += 10;
	assert_false(resume_at(sctx, cctx, them, "third.test", NULL, &s[n++], &v, &cv));
	assert_int_equal(tls_client_cached(cctx), 2);
	assert_false(resume_at(sctx, cctx, them, "litware.test", NULL, &s[n++], &v, &cv));

	/* Older than lifetime: dropped, a full handshake. */
	fake_now += 3600;
	assert_false(resume_at(sctx, cctx, them, us, NULL, &s[n++], &v, &cv));

	/* The client verdict of an untrusted server survives resumption. */
	SSL_CTX *cctx2 = client_ctx(pki.contoso_file, pki.other_ca_file);
	assert_int_equal(tls_client_tickets_clock(cctx2, 3600, 0, fake_clock, err, sizeof(err)),
			 FG_OK);
	struct tls_verdict full;
	assert_false(resume_at(sctx, cctx2, them, us, NULL, &s[n++], &v, &full));
	assert_false(full.chain_ok);
	assert_true(resume_at(sctx, cctx2, them, us, NULL, &s[n++], &v, &cv));
	assert_false(cv.chain_ok);
	assert_int_equal(cv.chain_error, full.chain_error);
	assert_string_equal(cv.text, full.text);

	/* lifetime 0: no cache. */
	SSL_CTX *cctx3 = client_ctx(pki.contoso_file, pki.ca_file);
	assert_int_equal(tls_client_tickets(cctx3, 0, err, sizeof(err)), FG_OK);
	assert_false(resume_at(sctx, cctx3, them, us, NULL, &s[n++], &v, &cv));
	assert_false(resume_at(sctx, cctx3, them, us, NULL, &s[n++], &v, &cv));
	assert_int_equal(tls_client_cached(cctx3), 0);

	assert_true(n <= FG_ARRAY_LEN(s));
	for (size_t i = 0; i < n; i++)
		SSL_SESSION_free(s[i]);
	tls_ctx_free(&sctx);
	tls_ctx_free(&cctx);
	tls_ctx_free(&cctx2);
	tls_ctx_free(&cctx3);
}

/* One armed outbound connection (fabrikam.test -> contoso.test) with the
 * ticket read: -1 when the handshake failed, else whether it resumed. */
static int armed_attempt(SSL_CTX *sctx, SSL_CTX *cctx)
{
	struct end srv, cli;
	tls_client_resume_for(cctx, "fabrikam.test", "contoso.test");
	handshake(sctx, cctx, "contoso.test", &srv, &cli);
	int rc = -1;
	if (srv.rc == 1 && cli.rc == 1) {
		rc = SSL_session_reused(cli.ssl) == 1;
		SSL_shutdown(srv.ssl);
		char c;
		/* Reads the ticket, then the close_notify. */
		assert_int_equal(SSL_read(cli.ssl, &c, 1), 0);
		/* Without ours, OpenSSL marks the session not resumable. */
		SSL_shutdown(cli.ssl);
	}
	ERR_clear_error();
	done(&srv, &cli);
	return rc;
}

/* A server that issues tickets but cannot resume them (it asks for client
 * certificates without a session id context, as Prosody does with tickets
 * on): one stream fails, then the pair does full handshakes instead of
 * failing every other stream, until lifetime has passed. */
static void test_client_gives_up_on_a_server_that_cannot_resume(void **state)
{
	(void)state;
	char err[256];
	fake_now = 1000000;
	SSL_CTX *sctx = server_ctx(pki.ca_file); /* no session id context */
	SSL_CTX_set_session_cache_mode(sctx, SSL_SESS_CACHE_SERVER);
	SSL_CTX_clear_options(sctx, SSL_OP_NO_TICKET);
	SSL_CTX_set_num_tickets(sctx, 1);
	SSL_CTX *cctx = client_ctx(pki.fabrikam_file, pki.ca_file);
	assert_int_equal(tls_client_tickets_clock(cctx, 3600, 0, fake_clock, err, sizeof(err)),
			 FG_OK);
	assert_int_equal(armed_attempt(sctx, cctx), 0);
	assert_int_equal(tls_client_cached(cctx), 1);
	assert_int_equal(armed_attempt(sctx, cctx), -1);
	tls_client_forget(cctx, "fabrikam.test", "contoso.test"); /* as s2s_out does */
	for (int i = 0; i < 3; i++) {
		assert_int_equal(armed_attempt(sctx, cctx), 0);
		assert_int_equal(tls_client_cached(cctx), 0);
	}
	fake_now += 3600;
	assert_int_equal(armed_attempt(sctx, cctx), 0);
	assert_int_equal(tls_client_cached(cctx), 1);
	tls_ctx_free(&sctx);
	tls_ctx_free(&cctx);
}

static void test_client_ctx_settings(void **state)
{
	(void)state;
	char err[512];
	SSL_CTX *ctx = client_ctx(pki.fabrikam_file, NULL); /* system store */
	assert_int_equal(SSL_CTX_get_min_proto_version(ctx), TLS1_2_VERSION);
	assert_true(SSL_CTX_get_mode(ctx) & SSL_MODE_RELEASE_BUFFERS);
	assert_int_equal(SSL_CTX_get_verify_mode(ctx), SSL_VERIFY_PEER);
	assert_non_null(SSL_CTX_get0_certificate(ctx));
	SSL_CTX_free(ctx);

	ctx = tls_client_ctx_new("/nonexistent/cert.pem", pki.key_file, NULL, err, sizeof(err));
	assert_null(ctx);
	assert_non_null(strstr(err, "/nonexistent/cert.pem"));
	ctx = tls_client_ctx_new(pki.fabrikam_file, pki.key_file, "/nonexistent/ca.pem", err,
				 sizeof(err));
	assert_null(ctx);
	assert_non_null(strstr(err, "[tls] ca_file"));
	ctx = tls_client_ctx_new(pki.fabrikam_file, pki.ca_file, NULL, err, sizeof(err));
	assert_null(ctx);
	assert_non_null(strstr(err, "cannot load the private key"));
	ctx = tls_client_ctx_new(NULL, NULL, NULL, err, sizeof(err));
	assert_null(ctx);
	assert_non_null(strstr(err, "[tls] certificate"));
	assert_int_equal(ERR_peek_error(), 0);
}

static void test_client_prepare(void **state)
{
	(void)state;
	SSL_CTX *ctx = client_ctx(pki.fabrikam_file, pki.ca_file);
	SSL *ssl = SSL_new(ctx);
	assert_non_null(ssl);
	assert_null(tls_expected_host(ssl));
	assert_int_equal(tls_client_prepare(ssl, ""), FG_INVAL);
	assert_int_equal(tls_client_prepare(ssl, "*.contoso.test"), FG_INVAL);
	assert_int_equal(tls_client_prepare(ssl, "contoso test"), FG_INVAL);
	assert_int_equal(tls_client_prepare(NULL, "contoso.test"), FG_INVAL);
	assert_null(tls_expected_host(ssl));
	assert_int_equal(tls_client_prepare(ssl, "litware.test"), FG_OK);
	/* A second call replaces the first (and frees it: LSan checks). */
	assert_int_equal(tls_client_prepare(ssl, "contoso.test."), FG_OK);
	assert_string_equal(tls_expected_host(ssl), "contoso.test");
	assert_string_equal(SSL_get_servername(ssl, TLSEXT_NAMETYPE_host_name), "contoso.test");
	SSL_free(ssl);
	SSL_CTX_free(ctx);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_dns_id),
		cmocka_unit_test(test_wildcard),
		cmocka_unit_test(test_wildcard_refused),
		cmocka_unit_test(test_cn_only),
		cmocka_unit_test(test_srv_id),
		cmocka_unit_test(test_xmppaddr),
		cmocka_unit_test(test_preference),
		cmocka_unit_test(test_other_domain),
		cmocka_unit_test(test_embedded_nul),
		cmocka_unit_test(test_bad_arguments),
		cmocka_unit_test(test_handshake_ok),
		cmocka_unit_test(test_handshake_wrong_ca),
		cmocka_unit_test(test_handshake_foreign_ca),
		cmocka_unit_test(test_handshake_expired),
		cmocka_unit_test(test_handshake_server_only_purpose),
		cmocka_unit_test(test_pins),
		cmocka_unit_test(test_no_client_certificate),
		cmocka_unit_test(test_tls11_refused),
		cmocka_unit_test(test_direct_tls_alpn),
		cmocka_unit_test(test_client_ctx_settings),
		cmocka_unit_test(test_client_prepare),
		cmocka_unit_test(test_session_tickets),
		cmocka_unit_test(test_resumed_keeps_a_bad_verdict),
		cmocka_unit_test(test_ticket_bound_to_its_sni),
		cmocka_unit_test(test_no_resumption_past_expiry),
		cmocka_unit_test(test_client_cache),
		cmocka_unit_test(test_client_gives_up_on_a_server_that_cannot_resume),
		cmocka_unit_test(test_dane),
	};
	return cmocka_run_group_tests(tests, pki_setup, pki_teardown);
}

/* web_cert_word: the one word the status page shows for a stream's
 * certificate, read from tls_peer_verify's text. The texts here are built
 * the way tls.c builds them, with OpenSSL's own reason strings (their
 * spelling changed between OpenSSL versions: "self signed" became
 * "self-signed"), and the identity halves test_tls.c checks. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>
#include <openssl/x509.h>
#include <stdio.h>
#include <string.h>

#include "web_page.h"

static const char *const name_ok = "the certificate names fabrikam.test as DNS-ID fabrikam.test";
static const char *const name_bad =
	"the certificate names contoso.test, *.litware.test; fabrikam.test is not among them; "
	"the partner must present a certificate with a DNS subjectAltName for fabrikam.test";

/* tls_peer_verify's text for a chain that failed with err. */
static const char *untrusted(long err, const char *why)
{
	static char t[1024];
	snprintf(t, sizeof(t), "the certificate chain is not trusted: %s; %s",
		 X509_verify_cert_error_string(err), why);
	return t;
}

static void expect(const char *text, const char *word, const char *cls)
{
	const char *c = NULL;
	const char *w = web_cert_word(text, &c);
	if (strcmp(w, word) != 0 || strcmp(c, cls) != 0)
		fail_msg("'%s': got %s (%s), expected %s (%s)", text ? text : "(null)", w, c, word,
			 cls);
}

static void test_words(void **state)
{
	(void)state;
	char t[1024];
	snprintf(t, sizeof(t), "the certificate chain is trusted; %s", name_ok);
	expect(t, "valid", "good");
	expect("valid", "valid", "good"); /* tls_peer_verdict before a name is known */
	snprintf(t, sizeof(t), "the certificate chain is trusted; %s", name_bad);
	expect(t, "wrong name", "bad");
	/* DANE (tls.c): the TLSA record stands in for the chain; DANE-EE
	 * vouches for the name as well, DANE-TA does not. */
	expect("DANE: a DNSSEC-secure TLSA record (usage DANE-EE(3)) matches the certificate; "
	       "its names are not checked (RFC 7671)",
	       "valid (DANE)", "good");
	snprintf(t, sizeof(t),
		 "DANE: a DNSSEC-secure TLSA record (usage DANE-TA(2)) matches the certificate; %s",
		 name_ok);
	expect(t, "valid (DANE)", "good");
	snprintf(t, sizeof(t),
		 "DANE: a DNSSEC-secure TLSA record (usage DANE-TA(2)) matches the certificate; %s",
		 name_bad);
	expect(t, "wrong name", "bad");
	snprintf(t, sizeof(t),
		 "the certificate chain is trusted; the certificate has no subjectAltName, only "
		 "the subject CN fabrikam.test, and a CN never identifies a server");
	expect(t, "wrong name", "bad");

	expect(untrusted(X509_V_ERR_DEPTH_ZERO_SELF_SIGNED_CERT, name_ok), "self-signed", "bad");
	/* A root we do not trust, sent along with the leaf: an untrusted
	 * issuer, not a self-signed certificate. */
	expect(untrusted(X509_V_ERR_SELF_SIGNED_CERT_IN_CHAIN, name_ok), "untrusted", "bad");
	expect(untrusted(X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT_LOCALLY, name_ok), "untrusted",
	       "bad");
	expect(untrusted(X509_V_ERR_CERT_HAS_EXPIRED, name_ok), "expired", "bad");
	expect(untrusted(X509_V_ERR_CERT_NOT_YET_VALID, name_ok), "not yet valid", "bad");
	expect(untrusted(X509_V_ERR_CERT_REVOKED, name_ok), "revoked", "bad");
	/* The chain speaks first: an untrusted certificate for another name. */
	expect(untrusted(X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT_LOCALLY, name_bad), "untrusted",
	       "bad");
	/* OpenSSL's reason alone (tls_peer_verdict). */
	expect(X509_verify_cert_error_string(X509_V_ERR_CERT_HAS_EXPIRED), "expired", "bad");
	expect(X509_verify_cert_error_string(X509_V_ERR_DEPTH_ZERO_SELF_SIGNED_CERT), "self-signed",
	       "bad");

	expect("the peer presented no certificate, so it cannot prove fabrikam.test", "none sent",
	       "bad");
	expect("the stream is not encrypted, so there is no certificate to check", "none", "none");
	expect("none", "none", "none");
	expect("", "none", "none");
	expect(NULL, "none", "none");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_words),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}

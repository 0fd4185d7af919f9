/* libFuzzer target for certificate identity (tls_cert_matches): the input
 * builds a certificate's subjectAltName (dNSName, SRVName, xmppAddr, also
 * with the wrong string type) and subject CN, plus the domain to prove, and
 * the verdict must be the one an independent reading of RFC 6125 / RFC 6120
 * 13.7.1.2 gives: exact names compared case-insensitively, "*" only as
 * the whole left-most label standing for one label over at least two more,
 * "_xmpp-server." SRV-IDs, never the CN, never a name holding a NUL. With
 * the top bit of the first byte set, the rest is a DER certificate instead,
 * so OpenSSL's own decoding of odd SAN encodings reaches the matcher. */
#include <openssl/asn1.h>
#include <openssl/err.h>
#include <openssl/objects.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "fuzz.h"
#include "tls.h"

enum { R_DNS, R_SRV, R_XMPP, R_CN, R_WRONG_TYPE, R_KINDS };

static char lc(char c)
{
	return c >= 'A' && c <= 'Z' ? (char)(c - 'A' + 'a') : c;
}

static bool eq_nocase(const char *a, size_t an, const char *b, size_t bn)
{
	if (an != bn)
		return false;
	for (size_t i = 0; i < an; i++)
		if (lc(a[i]) != lc(b[i]))
			return false;
	return true;
}

/* Labels of s[0..n), 0 when one is empty or too long. */
static size_t count_labels(const char *s, size_t n)
{
	size_t count = 0, run = 0;

	for (size_t i = 0; i <= n; i++) {
		if (i == n || s[i] == '.') {
			if (run == 0 || run > 63)
				return 0;
			count++;
			run = 0;
		} else {
			run++;
		}
	}
	return count;
}

/* The reference identifier as an A-label host name; *n without one final dot. */
static bool ref_domain(const char *d, size_t *n)
{
	size_t len = strlen(d);

	if (len > 0 && d[len - 1] == '.')
		len--;
	if (len == 0 || len > 253 || count_labels(d, len) == 0)
		return false;
	for (size_t i = 0; i < len; i++) {
		char c = lc(d[i]);

		if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' || c == '_' ||
		      c == '.'))
			return false;
	}
	*n = len;
	return true;
}

static size_t strip_dot(const char *p, size_t n)
{
	return n > 1 && p[n - 1] == '.' ? n - 1 : n;
}

static bool ref_dns(const char *p, size_t n, const char *d, size_t dn)
{
	if (memchr(p, '\0', n))
		return false;
	n = strip_dot(p, n);
	if (!memchr(p, '*', n))
		return eq_nocase(p, n, d, dn);
	if (n < 4 || p[0] != '*' || p[1] != '.' || memchr(p + 2, '*', n - 2) ||
	    count_labels(p + 2, n - 2) < 2)
		return false;
	const char *dot = memchr(d, '.', dn);

	/* The wildcard stands for exactly one non-empty label. */
	return dot && dot > d && eq_nocase(dot + 1, dn - (size_t)(dot + 1 - d), p + 2, n - 2);
}

static bool ref_srv(const char *p, size_t n, const char *d, size_t dn)
{
	static const char pre[] = "_xmpp-server.";
	size_t pl = sizeof(pre) - 1;

	if (memchr(p, '\0', n) || n <= pl || !eq_nocase(p, pl, pre, pl))
		return false;
	return eq_nocase(p + pl, strip_dot(p + pl, n - pl), d, dn);
}

static bool ref_xmpp(const char *p, size_t n, const char *d, size_t dn)
{
	return !memchr(p, '\0', n) && eq_nocase(p, n, d, dn);
}

static void add_other(GENERAL_NAMES *names, int nid, int type, const uint8_t *p, size_t n)
{
	GENERAL_NAME *gn = GENERAL_NAME_new();
	ASN1_TYPE *val = ASN1_TYPE_new();
	ASN1_STRING *s = ASN1_STRING_type_new(type);

	if (!gn || !val || !s || ASN1_STRING_set(s, p, (int)n) != 1) {
		GENERAL_NAME_free(gn);
		ASN1_TYPE_free(val);
		ASN1_STRING_free(s);
		return;
	}
	ASN1_TYPE_set(val, type, s);
	if (GENERAL_NAME_set0_othername(gn, OBJ_nid2obj(nid), val) != 1 ||
	    sk_GENERAL_NAME_push(names, gn) <= 0) {
		GENERAL_NAME_free(gn);
		ASN1_TYPE_free(val);
	}
}

static void add_dns(GENERAL_NAMES *names, const uint8_t *p, size_t n)
{
	GENERAL_NAME *gn = GENERAL_NAME_new();
	ASN1_IA5STRING *s = ASN1_IA5STRING_new();

	if (!gn || !s || ASN1_STRING_set(s, p, (int)n) != 1) {
		GENERAL_NAME_free(gn);
		ASN1_IA5STRING_free(s);
		return;
	}
	GENERAL_NAME_set0_value(gn, GEN_DNS, s);
	if (sk_GENERAL_NAME_push(names, gn) <= 0)
		GENERAL_NAME_free(gn);
}

static void check_why(X509 *x, const char *domain)
{
	char why[300], tiny[8];

	enum tls_id_result r = tls_cert_matches(x, domain, why, sizeof(why));

	CHECK(memchr(why, '\0', sizeof(why)) != NULL);
	CHECK(strcmp(tls_id_name(r), "") != 0);
	CHECK(tls_cert_matches(x, domain, tiny, sizeof(tiny)) == r);
	CHECK(strlen(tiny) < sizeof(tiny));
}

static void from_der(const uint8_t *data, size_t size)
{
	const unsigned char *p = data;
	X509 *x = d2i_X509(NULL, &p, (long)size);

	if (x) {
		check_why(x, "fabrikam.test");
		check_why(x, "xmpp.fabrikam.test");
		X509_free(x);
	}
	ERR_clear_error();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size < 2)
		return 0;
	if (data[0] & 0x80) {
		from_der(data + 1, size - 1);
		return 0;
	}
	/* The domain: data[1] bytes after the header. */
	size_t dlen = data[1] % 80, off = 2;
	char domain[81];

	if (off + dlen > size)
		return 0;
	memcpy(domain, data + off, dlen);
	domain[dlen] = '\0';
	off += dlen;

	X509 *x = X509_new();
	GENERAL_NAMES *names = GENERAL_NAMES_new();
	size_t dn = 0;
	bool dvalid = ref_domain(domain, &dn);
	enum tls_id_result want = TLS_ID_NO_MATCH;
	bool any_san = false;

	if (!x || !names)
		goto out;
	/* Records: kind, length, bytes. */
	while (off + 2 <= size) {
		int kind = data[off] % R_KINDS;
		size_t n = data[off + 1] % 100;
		const char *p = (const char *)data + off + 2;
		enum tls_id_result hit = TLS_ID_NO_MATCH;

		off += 2;
		if (off + n > size)
			break;
		off += n;
		switch (kind) {
		case R_DNS:
			add_dns(names, (const uint8_t *)p, n);
			if (dvalid && ref_dns(p, n, domain, dn))
				hit = TLS_ID_MATCH_DNS_ID;
			break;
		case R_SRV:
			add_other(names, NID_SRVName, V_ASN1_IA5STRING, (const uint8_t *)p, n);
			if (dvalid && ref_srv(p, n, domain, dn))
				hit = TLS_ID_MATCH_SRV_ID;
			break;
		case R_XMPP:
			add_other(names, NID_XmppAddr, V_ASN1_UTF8STRING, (const uint8_t *)p, n);
			if (dvalid && ref_xmpp(p, n, domain, dn))
				hit = TLS_ID_MATCH_XMPPADDR;
			break;
		case R_CN:
			/* Never counts, whatever it says. */
			X509_NAME_add_entry_by_NID(X509_get_subject_name(x), NID_commonName,
						   MBSTRING_UTF8, (const unsigned char *)p, (int)n,
						   -1, 0);
			continue;
		default:
			/* A SRV-ID in UTF8String or an XmppAddr in IA5String:
			 * malformed, ignored. */
			add_other(names, n & 1 ? NID_SRVName : NID_XmppAddr,
				  n & 1 ? V_ASN1_UTF8STRING : V_ASN1_IA5STRING, (const uint8_t *)p,
				  n);
			break;
		}
		any_san = true;
		if (hit != TLS_ID_NO_MATCH && (want == TLS_ID_NO_MATCH || hit < want))
			want = hit;
	}
	if (any_san && X509_add1_ext_i2d(x, NID_subject_alt_name, names, 0, 0) != 1)
		goto out;

	char why[600];
	enum tls_id_result got = tls_cert_matches(x, domain, why, sizeof(why));

	CHECK(got == want);
	CHECK(memchr(why, '\0', sizeof(why)) != NULL && why[0] != '\0');
	/* A sentence for the admin names the winning identifier kind. */
	CHECK(got == TLS_ID_NO_MATCH || strstr(why, tls_id_name(got)) != NULL);
	check_why(x, domain);
out:
	ERR_clear_error();
	GENERAL_NAMES_free(names);
	X509_free(x);
	return 0;
}

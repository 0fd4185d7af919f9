/* Public keys and key purposes of peer certificates (tls.h, "keys and
 * purposes"): the pins an admin gives a partner, and the extended key
 * usage a server certificate of 2026 carries. */
#include "tls.h"

#include "fg.h"

#include <openssl/evp.h>
#include <openssl/x509v3.h>
#include <stdio.h>
#include <string.h>

bool tls_cert_pin(X509 *cert, char out[PIN_B64_LEN + 1])
{
	unsigned char md[EVP_MAX_MD_SIZE], *der = NULL;
	unsigned mdlen = 0;

	out[0] = '\0';
	if (cert == NULL)
		return false;
	int n = i2d_X509_PUBKEY(X509_get_X509_PUBKEY(cert), &der);
	bool ok = n > 0 && EVP_Digest(der, (size_t)n, md, &mdlen, EVP_sha256(), NULL) == 1 &&
		  mdlen == PIN_DIGEST_LEN;
	OPENSSL_free(der);
	if (ok)
		pin_from_digest(md, out);
	return ok;
}

void tls_cert_eku(X509 *cert, char *buf, size_t len)
{
	uint32_t x = cert != NULL ? X509_get_extended_key_usage(cert) : 0;

	if (cert == NULL)
		snprintf(buf, len, "no certificate");
	else if (x == UINT32_MAX)
		snprintf(buf, len, "any (no extension)");
	else if ((x & XKU_SSL_SERVER) && (x & XKU_SSL_CLIENT))
		snprintf(buf, len, "TLS server, TLS client");
	else if (x & XKU_SSL_SERVER)
		snprintf(buf, len, "TLS server only");
	else if (x & XKU_SSL_CLIENT)
		snprintf(buf, len, "TLS client only");
	else if (x & XKU_ANYEKU)
		snprintf(buf, len, "any (anyExtendedKeyUsage)");
	else
		snprintf(buf, len, "neither TLS server nor TLS client");
}

bool tls_cert_eku_s2s(X509 *cert)
{
	uint32_t x = X509_get_extended_key_usage(cert);

	/* UINT32_MAX: no extension, every purpose. */
	return (x & (XKU_SSL_SERVER | XKU_SSL_CLIENT | XKU_ANYEKU)) != 0;
}

int tls_verdict_pins(struct tls_verdict *v, const char *domain, const struct domain_list *pins)
{
	/* A DANE-EE(3) match vouches for the name as well (tls_peer_verify). */
	bool dane_ee = v->dane_ok && v->dane_usage == 3;

	v->pin = TLS_PIN_NONE;
	if (pins == NULL || pins->n == 0)
		return v->chain_ok && (v->id != TLS_ID_NO_MATCH || dane_ee) ? FG_OK : FG_ERR;
	for (size_t i = 0; v->spki[0] && i < pins->n; i++) {
		if (strcmp(pins->v[i], v->spki) == 0) {
			v->pin = TLS_PIN_MATCH;
			/* The admin vouched for this key: the CAs' verdict no
			 * longer matters, the names in the certificate still do. */
			v->chain_ok = true;
			v->chain_error = 0;
			snprintf(v->text, sizeof(v->text),
				 "the public key is pinned for %s (SHA-256 %s); %s", domain,
				 v->spki, v->id_text);
			return v->id != TLS_ID_NO_MATCH || dane_ee ? FG_OK : FG_ERR;
		}
	}
	v->pin = TLS_PIN_MISMATCH;
	v->chain_ok = false;
	int o = v->has_cert
			? snprintf(
				  v->text, sizeof(v->text),
				  "the certificate's public key (SHA-256 %s) is not one pinned for "
				  "%s (",
				  v->spki[0] ? v->spki : "unreadable", domain)
			: snprintf(v->text, sizeof(v->text),
				   "no certificate was presented, and keys are pinned for %s (",
				   domain);
	for (size_t i = 0; o > 0 && i < pins->n; i++)
		fg_appendf(v->text, sizeof(v->text), "%s%s", i ? ", " : "", pins->v[i]);
	fg_appendf(v->text, sizeof(v->text),
		   "); if the partner changed its key, add the new one with 'fedgate partner "
		   "set %s --add-pin KEY'",
		   domain);
	return FG_ERR;
}

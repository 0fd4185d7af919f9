/* SPKI pins: the SHA-256 of a certificate's SubjectPublicKeyInfo, the one
 * spelling fedgate stores and prints (base64 with padding, as RFC 7469's
 * pin-sha256 and curl's --pinnedpubkey write it), and the spellings an
 * admin may paste. Pure code. */
#ifndef FG_PIN_H
#define FG_PIN_H

#include <stddef.h>

#define PIN_DIGEST_LEN 32
#define PIN_B64_LEN    44 /* base64 of 32 bytes, padding included */

/* 44 base64 characters, optionally after "sha256//" (curl) or "sha256/",
 * or 64 hex digits with or without colons between bytes, into the stored
 * form. FG_OK, or FG_INVAL for anything else. */
int pin_normalize(const char *s, char out[PIN_B64_LEN + 1]);
/* The stored form of a digest. */
void pin_from_digest(const unsigned char d[PIN_DIGEST_LEN], char out[PIN_B64_LEN + 1]);

#endif

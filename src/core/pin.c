/* SPKI pins (pin.h). Written out rather than taken from OpenSSL's
 * EVP_DecodeBlock, which accepts whitespace and ignores where padding
 * sits: a pin an admin pasted must either be exactly one digest or be
 * refused. */
#include "pin.h"

#include <assert.h>
#include <stdbool.h>
#include <string.h>

#include "fg.h"

static const char b64[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

void pin_from_digest(const unsigned char d[PIN_DIGEST_LEN], char out[PIN_B64_LEN + 1])
{
	size_t o = 0, i = 0;

	for (; i + 3 <= PIN_DIGEST_LEN; i += 3) {
		unsigned v = (unsigned)d[i] << 16 | (unsigned)d[i + 1] << 8 | d[i + 2];
		out[o++] = b64[v >> 18 & 63];
		out[o++] = b64[v >> 12 & 63];
		out[o++] = b64[v >> 6 & 63];
		out[o++] = b64[v & 63];
	}
	/* 32 = 10 * 3 + 2: one group of two bytes and one '='. */
	unsigned v = (unsigned)d[i] << 16 | (unsigned)d[i + 1] << 8;
	out[o++] = b64[v >> 18 & 63];
	out[o++] = b64[v >> 12 & 63];
	out[o++] = b64[v >> 6 & 63];
	out[o++] = '=';
	assert(o == PIN_B64_LEN);
	out[o] = '\0';
}

static int b64_value(char c)
{
	const char *p = c != '\0' ? strchr(b64, c) : NULL;
	return p != NULL ? (int)(p - b64) : -1;
}

static int hex_value(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

static bool from_b64(const char *s, unsigned char d[PIN_DIGEST_LEN])
{
	unsigned acc = 0;
	size_t bits = 0, o = 0;

	if (strlen(s) != PIN_B64_LEN || s[PIN_B64_LEN - 1] != '=')
		return false;
	for (size_t i = 0; i < PIN_B64_LEN - 1; i++) {
		int v = b64_value(s[i]);
		if (v < 0)
			return false;
		acc = acc << 6 | (unsigned)v;
		bits += 6;
		if (bits >= 8) {
			bits -= 8;
			d[o++] = (unsigned char)(acc >> bits);
			acc &= (1u << bits) - 1;
		}
	}
	/* 43 characters carry 258 bits: the last two must be zero, or two
	 * spellings would name one digest. */
	return o == PIN_DIGEST_LEN && acc == 0;
}

static bool from_hex(const char *s, unsigned char d[PIN_DIGEST_LEN])
{
	size_t len = strlen(s);
	bool colons = len == PIN_DIGEST_LEN * 3 - 1;

	if (len != PIN_DIGEST_LEN * 2 && !colons)
		return false;
	for (size_t i = 0; i < PIN_DIGEST_LEN; i++) {
		const char *x = s + i * (colons ? 3 : 2);
		int hi = hex_value(x[0]), lo = hex_value(x[1]);
		if (hi < 0 || lo < 0 || (colons && i + 1 < PIN_DIGEST_LEN && x[2] != ':'))
			return false;
		d[i] = (unsigned char)(hi << 4 | lo);
	}
	return true;
}

int pin_normalize(const char *s, char out[PIN_B64_LEN + 1])
{
	unsigned char d[PIN_DIGEST_LEN];

	if (s == NULL)
		return FG_INVAL;
	if (strncmp(s, "sha256//", 8) == 0)
		s += 8;
	else if (strncmp(s, "sha256/", 7) == 0)
		s += 7;
	if (!from_b64(s, d) && !from_hex(s, d))
		return FG_INVAL;
	pin_from_digest(d, out);
	return FG_OK;
}

/* libFuzzer target for jid_parse: no crash or leak on any input, every
 * JID it accepts is canonical, i.e. printing and re-parsing it is a no-op,
 * and the ASCII fast path gives exactly what the full preparation gives. */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz.h"
#include "fg.h"
#include "jid.h"

static bool part_ok(const char *p, bool required)
{
	if (p == NULL)
		return !required;
	size_t n = strlen(p);

	return n > 0 && n <= JID_PART_MAX;
}

/* The stored domain is what comparison relies on: lower-case ASCII, or an
 * IP literal whose only letters are lower-case hex digits. */
static bool domain_canonical(const char *d)
{
	for (; *d != '\0'; d++) {
		unsigned char c = (unsigned char)*d;

		if (c >= 0x80 || (c >= 'A' && c <= 'Z'))
			return false;
	}
	return true;
}

static void check_reparse(const struct jid *j, bool bare)
{
	struct jid k;
	char *s = jid_to_string(j, bare);

	if (s == NULL)
		return; /* allocation failure is allowed, not an invariant */
	enum jid_err rc = jid_parse(s, strlen(s), &k);

	/* Re-preparing an already prepared part must change nothing. This is
	 * what routing needs: a JID we emit comes back from the peer as the
	 * same JID, whoever prepares it again. libidn's stringprep alone does
	 * not guarantee it (see prep_part in jid.c), so this is checked in
	 * full, not weakened: jid_parse refuses the parts that break it. */
	CHECK(rc == JID_OK || rc == JID_ERR_NOMEM);
	if (rc == JID_OK) {
		if (bare) {
			CHECK(jid_is_bare(&k));
			CHECK(jid_equal_bare(j, &k));
		} else {
			CHECK(jid_equal(j, &k));
		}
		char *t = jid_to_string(&k, bare);

		CHECK(t == NULL || strcmp(s, t) == 0);
		free(t);
	}
	jid_clear(&k);
	free(s);
}

static bool same(const char *a, const char *b)
{
	return (a == NULL && b == NULL) || (a != NULL && b != NULL && strcmp(a, b) == 0);
}

/* The fast path is only allowed because this holds on every input. */
static void check_fast_path(const char *s, size_t len, enum jid_err rc, const struct jid *j)
{
	struct jid u;

	jid_set_fast_path(false);
	enum jid_err ru = jid_parse(s, len, &u);
	jid_set_fast_path(true);
	if (rc != JID_ERR_NOMEM && ru != JID_ERR_NOMEM) {
		CHECK(rc == ru);
		CHECK(same(j->node, u.node) && same(j->domain, u.domain) &&
		      same(j->resource, u.resource));
	}
	jid_clear(&u);
}

static void check_one(const char *s, size_t len)
{
	struct jid j, c;
	enum jid_err rc = jid_parse(s, len, &j);

	check_fast_path(s, len, rc, &j);

	CHECK(jid_strerror(rc) != NULL);
	if (rc != JID_OK) {
		CHECK(j.node == NULL && j.domain == NULL && j.resource == NULL);
		return;
	}
	CHECK(part_ok(j.node, false));
	CHECK(part_ok(j.domain, true));
	CHECK(part_ok(j.resource, false));
	CHECK(domain_canonical(j.domain));
	/* Separators cannot leak into parts where they would change the
	 * split on re-parse. */
	CHECK(j.node == NULL || strpbrk(j.node, "@/") == NULL);
	CHECK(strpbrk(j.domain, "@/") == NULL);

	check_reparse(&j, false);
	check_reparse(&j, true);

	if (jid_copy(&c, &j) == FG_OK) {
		CHECK(jid_equal(&c, &j));
		jid_clear(&c);
	}

	char *d = NULL;

	/* The domain helper agrees with what jid_parse stored. */
	rc = jid_domain_prep(j.domain, strlen(j.domain), &d);
	CHECK(rc == JID_OK || rc == JID_ERR_NOMEM);
	CHECK(rc != JID_OK || strcmp(d, j.domain) == 0);
	free(d);
	jid_clear(&j);
}

static size_t put_utf8(char *o, uint32_t cp)
{
	if (cp < 0x80) {
		o[0] = (char)cp;
		return 1;
	}
	if (cp < 0x800) {
		o[0] = (char)(0xc0 | cp >> 6);
		o[1] = (char)(0x80 | (cp & 0x3f));
		return 2;
	}
	if (cp < 0x10000) {
		o[0] = (char)(0xe0 | cp >> 12);
		o[1] = (char)(0x80 | ((cp >> 6) & 0x3f));
		o[2] = (char)(0x80 | (cp & 0x3f));
		return 3;
	}
	o[0] = (char)(0xf0 | cp >> 18);
	o[1] = (char)(0x80 | ((cp >> 12) & 0x3f));
	o[2] = (char)(0x80 | ((cp >> 6) & 0x3f));
	o[3] = (char)(0x80 | (cp & 0x3f));
	return 4;
}

/* libidn and libidn2 are not instrumented, so coverage only steers the
 * fuzzer through jid.c and byte mutations almost never make valid UTF-8.
 * This second reading of the same input reaches deep into Unicode: bytes
 * below 0x80 stay ASCII (so '@' and '/' survive), and a byte at or above
 * 0x80 starts a three-byte group naming any scalar value. */
static void check_widened(const uint8_t *data, size_t size)
{
	char *s = malloc(size * 2 + 4); /* a lone last lead byte still makes 4 */
	size_t n = 0;

	if (s == NULL)
		return;
	for (size_t i = 0; i < size;) {
		if (data[i] < 0x80) {
			s[n++] = (char)data[i++];
			continue;
		}
		uint32_t cp = (uint32_t)(data[i] & 0x1f) << 16;

		if (i + 1 < size)
			cp |= (uint32_t)data[i + 1] << 8;
		if (i + 2 < size)
			cp |= data[i + 2];
		i += 3;
		cp %= 0x110000;
		if (cp >= 0xd800 && cp <= 0xdfff)
			cp = 0xfffd;
		n += put_utf8(s + n, cp);
	}
	check_one(s, n);
	free(s);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	check_one((const char *)data, size);
	check_widened(data, size);
	return 0;
}

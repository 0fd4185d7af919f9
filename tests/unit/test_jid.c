/* Unit tests for src/jid.c: splitting, preparation, limits, comparison. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "fg.h"
#include "jid.h"

static enum jid_err parse_z(const char *s, struct jid *j)
{
	return jid_parse(s, strlen(s), j);
}

/* Parses s, which must succeed, and checks all three parts; NULL means the
 * part must be absent. */
static void expect_jid(const char *s, const char *node, const char *domain, const char *res)
{
	struct jid j;
	enum jid_err rc = parse_z(s, &j);

	if (rc != JID_OK)
		fail_msg("\"%s\": %s", s, jid_strerror(rc));
	if (node == NULL)
		assert_null(j.node);
	else
		assert_string_equal(j.node, node);
	assert_non_null(j.domain);
	assert_string_equal(j.domain, domain);
	if (res == NULL)
		assert_null(j.resource);
	else
		assert_string_equal(j.resource, res);
	jid_clear(&j);
}

static void expect_err_n(const char *s, size_t len, enum jid_err want)
{
	/* Garbage in *out proves that errors zero it rather than leave it. */
	struct jid j = {(char *)1, (char *)2, (char *)3};
	enum jid_err rc = jid_parse(s, len, &j);

	if (rc != want)
		fail_msg("\"%.*s\": got \"%s\", want \"%s\"", (int)(len > 80 ? 80 : len), s,
			 jid_strerror(rc), jid_strerror(want));
	assert_null(j.node);
	assert_null(j.domain);
	assert_null(j.resource);
}

static void expect_err(const char *s, enum jid_err want)
{
	expect_err_n(s, strlen(s), want);
}

/* n copies of c followed by suffix, malloc'ed. */
static char *repeat(char c, size_t n, const char *prefix, const char *suffix)
{
	size_t pl = strlen(prefix), sl = strlen(suffix);
	char *s = malloc(pl + n + sl + 1);

	assert_non_null(s);
	memcpy(s, prefix, pl);
	memset(s + pl, c, n);
	memcpy(s + pl + n, suffix, sl + 1);
	return s;
}

static void test_simple(void **state)
{
	(void)state;
	expect_jid("alice@example.com", "alice", "example.com", NULL);
	expect_jid("alice@example.com/phone", "alice", "example.com", "phone");
	expect_jid("example.com", NULL, "example.com", NULL);
	expect_jid("example.com/res", NULL, "example.com", "res");
	expect_jid("localhost", NULL, "localhost", NULL);
	expect_jid("x@y", "x", "y", NULL);
}

static void test_bare_full(void **state)
{
	struct jid full, bare;

	(void)state;
	assert_int_equal(parse_z("alice@example.com/phone", &full), JID_OK);
	assert_int_equal(parse_z("alice@example.com", &bare), JID_OK);
	assert_false(jid_is_bare(&full));
	assert_true(jid_is_bare(&bare));
	assert_false(jid_equal(&full, &bare));
	assert_true(jid_equal_bare(&full, &bare));
	assert_true(jid_equal(&full, &full));

	char *s = jid_to_string(&full, true);

	assert_non_null(s);
	assert_string_equal(s, "alice@example.com");
	free(s);
	s = jid_to_string(&full, false);
	assert_non_null(s);
	assert_string_equal(s, "alice@example.com/phone");
	free(s);
	jid_clear(&full);
	jid_clear(&bare);
}

static void test_node_vs_domain_only(void **state)
{
	struct jid a, b;

	(void)state;
	/* "example.com" and "example.com@example.com" are different entities. */
	assert_int_equal(parse_z("example.com", &a), JID_OK);
	assert_int_equal(parse_z("example.com@example.com", &b), JID_OK);
	assert_false(jid_equal_bare(&a, &b));
	assert_false(jid_equal_bare(&b, &a));
	jid_clear(&a);
	jid_clear(&b);
}

static void test_case_folding(void **state)
{
	struct jid a, b;

	(void)state;
	assert_int_equal(parse_z("Alice@Contoso.TEST", &a), JID_OK);
	assert_int_equal(parse_z("alice@contoso.test", &b), JID_OK);
	assert_string_equal(a.node, "alice");
	assert_string_equal(a.domain, "contoso.test");
	assert_true(jid_equal(&a, &b));
	jid_clear(&a);
	jid_clear(&b);

	/* Resources are case-sensitive: resourceprep maps no case. */
	assert_int_equal(parse_z("alice@contoso.test/Phone", &a), JID_OK);
	assert_int_equal(parse_z("alice@contoso.test/phone", &b), JID_OK);
	assert_string_equal(a.resource, "Phone");
	assert_false(jid_equal(&a, &b));
	assert_true(jid_equal_bare(&a, &b));
	jid_clear(&a);
	jid_clear(&b);

	/* Nodeprep case-folds beyond ASCII (B.2 maps sharp s to "ss"). */
	expect_jid("\xc3\x84rger@x", "\xc3\xa4rger", "x", NULL);
	expect_jid("Stra\xc3\x9f"
		   "e@x",
		   "strasse", "x", NULL);
	/* NFKC: fullwidth letters become ASCII in node and resource. */
	expect_jid("\xef\xbd\x81@x/\xef\xbc\xa1", "a", "x", "A");
}

static void test_idn_domain(void **state)
{
	struct jid a, b;

	(void)state;
	expect_jid("user@b\xc3\xbc"
		   "cher.example",
		   "user", "xn--bcher-kva.example", NULL);
	expect_jid("B\xc3\x9c"
		   "CHER.Example",
		   NULL, "xn--bcher-kva.example", NULL);
	expect_jid("XN--BCHER-KVA.example", NULL, "xn--bcher-kva.example", NULL);
	/* Ideographic full stop is a label separator under UTS #46. */
	expect_jid("example\xe3\x80\x82"
		   "com",
		   NULL, "example.com", NULL);
	/* IDNA2008, not IDNA2003: sharp s is kept, not mapped to "ss". */
	expect_jid("fa\xc3\x9f.de", NULL, "xn--fa-hia.de", NULL);
	/* A ZWJ where CONTEXTJ forbids it fails IDNA2008; the transitional
	 * fallback maps it away. After a virama it is kept. */
	expect_jid("a\xe2\x80\x8d"
		   "b.test",
		   NULL, "ab.test", NULL);
	expect_jid("\xe0\xa4\x95\xe0\xa5\x8d\xe2\x80\x8d.test", NULL, "xn--11b6iy14e.test", NULL);
	/* Fullwidth digits map to a host name, not to an IP literal, but the
	 * result is the same string either way. */
	expect_jid("\xef\xbc\x91.\xef\xbc\x92.\xef\xbc\x93.\xef\xbc\x94", NULL, "1.2.3.4", NULL);
	assert_int_equal(parse_z("u@b\xc3\xbc"
				 "cher.example/r",
				 &a),
			 JID_OK);
	assert_int_equal(parse_z("u@xn--bcher-kva.example/r", &b), JID_OK);
	assert_true(jid_equal(&a, &b));
	jid_clear(&a);
	jid_clear(&b);
}

static void test_trailing_dot(void **state)
{
	(void)state;
	expect_jid("a@example.com.", "a", "example.com", NULL);
	expect_jid("example.com./r", NULL, "example.com", "r");
	expect_jid("1.2.3.4.", NULL, "1.2.3.4", NULL);
	/* Only one dot is stripped; the second is an empty label. */
	expect_err("a@example.com..", JID_ERR_DOMAIN);
	expect_err("a@.", JID_ERR_EMPTY);
}

static void test_ip_literals(void **state)
{
	(void)state;
	expect_jid("a@192.0.2.1", "a", "192.0.2.1", NULL);
	expect_jid("a@[2001:DB8::1]/r", "a", "[2001:db8::1]", "r");
	expect_jid("[::1]", NULL, "[::1]", NULL);
	expect_jid("[::ffff:192.0.2.1]", NULL, "[::ffff:192.0.2.1]", NULL);
	expect_err("a@[::1", JID_ERR_DOMAIN);
	expect_err("a@[]", JID_ERR_DOMAIN);
	expect_err("a@[zz::1]", JID_ERR_DOMAIN);
	expect_err("a@[192.0.2.1]", JID_ERR_DOMAIN);
	expect_err("a@::1", JID_ERR_DOMAIN);
}

static void test_resource_separators(void **state)
{
	(void)state;
	expect_jid("a@b/c@d/e", "a", "b", "c@d/e");
	expect_jid("b/c@d", NULL, "b", "c@d");
	expect_jid("b//", NULL, "b", "/");
	expect_jid("a@b/ spaced out ", "a", "b", " spaced out ");
}

static void test_empty_parts(void **state)
{
	(void)state;
	expect_err("", JID_ERR_EMPTY);
	expect_err_n(NULL, 0, JID_ERR_EMPTY);
	expect_err("@d", JID_ERR_EMPTY);
	expect_err("n@", JID_ERR_EMPTY);
	expect_err("@", JID_ERR_EMPTY);
	expect_err("n@d/", JID_ERR_EMPTY);
	expect_err("d/", JID_ERR_EMPTY);
	expect_err("/r", JID_ERR_EMPTY);
	expect_err("/", JID_ERR_EMPTY);
	expect_err("n@/r", JID_ERR_EMPTY);
	expect_err("@/", JID_ERR_EMPTY);
	expect_err(".", JID_ERR_EMPTY);
	/* Parts that preparation maps to nothing (U+00AD SOFT HYPHEN). */
	expect_err("\xc2\xad@d", JID_ERR_EMPTY);
	expect_err("n@d/\xc2\xad", JID_ERR_EMPTY);
	expect_err("n@\xc2\xad", JID_ERR_EMPTY);
}

static void test_node_prohibited(void **state)
{
	static const char *const bad[] = {
		"a\"b@x",
		"a&b@x",
		"a'b@x",
		"a:b@x",
		"a<b@x",
		"a>b@x",
		"a b@x",
		"a\tb@x",
		"a\x7f"
		"b@x",
		"\xef\xbc\xa0@x", /* FULLWIDTH COMMERCIAL AT maps to '@' */
		"a\xe2\x80\xa8"
		"b@x",		  /* LINE SEPARATOR */
		"\xee\x80\x80@x", /* private use U+E000 */
		"\xd8\xa7"
		"a@x", /* Arabic letter next to Latin: bidi */
	};

	(void)state;
	for (size_t i = 0; i < FG_ARRAY_LEN(bad); i++)
		expect_err(bad[i], JID_ERR_NODE);
	/* "a/.." splits as domain "a" and resource "..", so there is no node
	 * to reject; it must at least not smuggle ".." into the domain. */
	expect_jid("a/..", NULL, "a", "..");
	/* Allowed in nodes: characters nodeprep does not prohibit. */
	expect_jid("a.b-c_d+e@x", "a.b-c_d+e", "x", NULL);
}

/* libidn's NFKC composes a Hangul L+V pair across combining marks and
 * leaves the marks out of canonical order, so its output can change when
 * prepared again; such parts have no canonical form and are refused. */
static void test_unstable_prep(void **state)
{
	(void)state;
	/* U+1111 U+030E U+1173 U+0349: prepares to U+D504 U+030E U+0349,
	 * which prepares to U+D504 U+0349 U+030E. */
	expect_err("\xe1\x84\x91\xcc\x8e\xe1\x85\xb3\xcd\x89@x", JID_ERR_NODE);
	expect_err("n@x/\xe1\x84\x85\xcc\xb0\xcd\x85\xe1\x85\xb2\xcc\xb7", JID_ERR_RESOURCE);
	/* With a single mark the result is stable, and accepted. */
	expect_jid("\xe1\x84\x91\xcc\x8e\xe1\x85\xb3@x", "\xed\x94\x84\xcc\x8e", "x", NULL);
}

static void test_resource_prohibited(void **state)
{
	(void)state;
	expect_err("a@b/c\x01", JID_ERR_RESOURCE);
	expect_err("a@b/\xee\x80\x80", JID_ERR_RESOURCE);
	expect_err("a@b/x\xe2\x80\xa8", JID_ERR_RESOURCE);
}

static void test_bad_domains(void **state)
{
	char *s;

	(void)state;
	expect_err("a@-a.test", JID_ERR_DOMAIN);
	expect_err("a@a-.test", JID_ERR_DOMAIN);
	expect_err("a@a..b", JID_ERR_DOMAIN);
	expect_err("a@.a", JID_ERR_DOMAIN);
	expect_err("a@a_b.test", JID_ERR_DOMAIN);
	expect_err("a@a b.test", JID_ERR_DOMAIN);
	expect_err("a@a*b.test", JID_ERR_DOMAIN);
	/* FULLWIDTH SOLIDUS maps to '/', which must not end up in a domain. */
	expect_err("a@a\xef\xbc\x8f"
		   "b",
		   JID_ERR_DOMAIN);
	expect_err("a@xn--zz.test", JID_ERR_DOMAIN);
	/* Only the first '@' separates; a second one lands in the domain. */
	expect_err("a@b@c", JID_ERR_DOMAIN);
	/* Hyphens in the third and fourth place are reserved (RFC 5891). */
	expect_err("a@ab--c.test", JID_ERR_DOMAIN);

	s = repeat('a', 63, "", ".test");
	expect_jid(s, NULL, s, NULL);
	free(s);
	s = repeat('a', 64, "", ".test");
	expect_err(s, JID_ERR_DOMAIN);
	free(s);

	/* 253 characters pass, 254 do not (labels of 50 plus dots). */
	char name[300];

	name[0] = '\0';
	for (int i = 0; i < 5; i++)
		strcat(name, "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa."); /* 50 */
	strcat(name, "bb"); /* 5 * 50 + 2 = 252 */
	assert_int_equal(strlen(name), 252);
	strcat(name, "c");
	expect_jid(name, NULL, name, NULL);
	strcat(name, "d");
	expect_err(name, JID_ERR_DOMAIN);
}

static void test_node_limit(void **state)
{
	char *s, *node;
	struct jid j;

	(void)state;
	s = repeat('n', JID_PART_MAX, "", "@x");
	node = repeat('n', JID_PART_MAX, "", "");
	assert_int_equal(parse_z(s, &j), JID_OK);
	assert_int_equal(strlen(j.node), JID_PART_MAX);
	assert_string_equal(j.node, node);
	jid_clear(&j);
	free(s);
	free(node);

	s = repeat('n', JID_PART_MAX + 1, "", "@x");
	expect_err(s, JID_ERR_TOO_LONG);
	free(s);

	/* The limit applies to the prepared form too: U+2057 QUADRUPLE PRIME
	 * is 3 bytes and NFKC turns it into four U+2032, 12 bytes. 85 of them
	 * are 255 raw bytes and 1020 prepared ones. */
	static const char qprime[] = "\xe2\x81\x97";
	char raw[300];
	size_t n = 0;

	for (int i = 0; i < 85; i++, n += 3)
		memcpy(raw + n, qprime, 3);
	memcpy(raw + n, "aaa@x", 6);
	assert_int_equal(parse_z(raw, &j), JID_OK);
	assert_int_equal(strlen(j.node), JID_PART_MAX);
	assert_memory_equal(j.node, "\xe2\x80\xb2\xe2\x80\xb2", 6);
	jid_clear(&j);
	memcpy(raw + n, "aaaa@x", 7);
	expect_err(raw, JID_ERR_TOO_LONG);
}

static void test_resource_limit(void **state)
{
	char *s, *res;
	struct jid j;

	(void)state;
	s = repeat('R', JID_PART_MAX, "n@x/", "");
	res = repeat('R', JID_PART_MAX, "", "");
	assert_int_equal(parse_z(s, &j), JID_OK);
	assert_string_equal(j.resource, res);
	jid_clear(&j);
	free(s);
	free(res);

	s = repeat('R', JID_PART_MAX + 1, "n@x/", "");
	expect_err(s, JID_ERR_TOO_LONG);
	free(s);

	/* U+FDFA is 3 bytes and NFKC expands it to 18 code points, 33 bytes:
	 * 31 of them are exactly 1023 bytes prepared. */
	char raw[256] = "n@x/";
	size_t n = 4;

	for (int i = 0; i < 31; i++, n += 3)
		memcpy(raw + n, "\xef\xb7\xba", 3);
	raw[n] = '\0';
	assert_int_equal(parse_z(raw, &j), JID_OK);
	assert_int_equal(strlen(j.resource), JID_PART_MAX);
	jid_clear(&j);
	/* One byte more: 30 of them and 17 ALEF (2 bytes each; a Latin
	 * letter would break the bidi rule instead). */
	n -= 3;
	for (int i = 0; i < 17; i++, n += 2)
		memcpy(raw + n, "\xd8\xa7", 2);
	raw[n] = '\0';
	expect_err(raw, JID_ERR_TOO_LONG);
	raw[n - 2] = '\0';
	assert_int_equal(parse_z(raw, &j), JID_OK);
	assert_int_equal(strlen(j.resource), JID_PART_MAX - 1);
	jid_clear(&j);
}

static void test_domain_limit(void **state)
{
	char *s;

	(void)state;
	/* Past the raw limit the answer is "too long", not "bad domain". */
	s = repeat('a', JID_PART_MAX + 2, "n@", "");
	expect_err(s, JID_ERR_TOO_LONG);
	free(s);
}

static void test_whole_input_limit(void **state)
{
	char *s;

	(void)state;
	/* Longer than any three parts could add up to: refused up front,
	 * even though it would fail UTF-8 validation too. */
	s = repeat('\xff', 3 * JID_PART_MAX + 4, "", "");
	expect_err(s, JID_ERR_TOO_LONG);
	free(s);
	/* The largest input with every raw part at its limit is still read
	 * (and fails only because the domain is no host name). */
	s = repeat('a', JID_PART_MAX, "", "@");
	char *t = repeat('b', JID_PART_MAX, s, ".");
	char *u = repeat('c', JID_PART_MAX, t, "");

	u[2 * JID_PART_MAX + 2] = '/';
	assert_int_equal(strlen(u), 3 * JID_PART_MAX + 2);
	expect_err(u, JID_ERR_DOMAIN);
	free(s);
	free(t);
	free(u);
}

static void test_utf8(void **state)
{
	static const char *const bad[] = {
		"\xc3\x28@x",		/* 2-byte lead, bad continuation */
		"\xc0\xaf@x",		/* overlong '/' */
		"\xe0\x80\xaf@x",	/* overlong, 3 bytes */
		"\x80@x",		/* lone continuation byte */
		"a@x/\xbf",		/* lone continuation in resource */
		"a@x\xe2\x82",		/* truncated at the end */
		"\xe2\x82@x",		/* truncated before '@' */
		"\xed\xa0\x80@x",	/* UTF-16 surrogate U+D800 */
		"\xf4\x90\x80\x80@x",	/* above U+10FFFF */
		"\xf8\x88\x80\x80\x80", /* 5-byte form */
		"\xfe\xff",
	};

	(void)state;
	for (size_t i = 0; i < FG_ARRAY_LEN(bad); i++)
		expect_err(bad[i], JID_ERR_UTF8);
	/* Valid multi-byte forms, including 4-byte ones, pass. */
	expect_jid("\xe2\x82\xac@x/\xf0\x9f\x98\x80", "\xe2\x82\xac", "x", "\xf0\x9f\x98\x80");
}

static void test_nul(void **state)
{
	(void)state;
	expect_err_n("a\0b@x", 5, JID_ERR_UTF8);
	expect_err_n("a@x\0", 4, JID_ERR_UTF8);
	expect_err_n("a@x/r\0s", 7, JID_ERR_UTF8);
	expect_err_n("\0", 1, JID_ERR_UTF8);
}

static void test_round_trip(void **state)
{
	static const char *const in[] = {
		"Alice@Example.COM/Phone",
		"b\xc3\xbc"
		"cher.example/r",
		"a@b/c@d/e",
		"[2001:DB8::1]/x",
		"192.0.2.1",
		"Stra\xc3\x9f"
		"e@x.",
		"d/ /",
	};

	(void)state;
	for (size_t i = 0; i < FG_ARRAY_LEN(in); i++) {
		struct jid a, b;
		char *s;

		assert_int_equal(parse_z(in[i], &a), JID_OK);
		s = jid_to_string(&a, false);
		assert_non_null(s);
		assert_int_equal(parse_z(s, &b), JID_OK);
		assert_true(jid_equal(&a, &b));
		char *t = jid_to_string(&b, false);

		assert_string_equal(s, t);
		free(s);
		free(t);
		jid_clear(&a);
		jid_clear(&b);
	}
}

static void test_to_string_values(void **state)
{
	struct jid j;
	char *s;

	(void)state;
	assert_int_equal(parse_z("Alice@B\xc3\xbc"
				 "cher.Example./R",
				 &j),
			 JID_OK);
	s = jid_to_string(&j, false);
	assert_string_equal(s, "alice@xn--bcher-kva.example/R");
	free(s);
	s = jid_to_string(&j, true);
	assert_string_equal(s, "alice@xn--bcher-kva.example");
	free(s);
	jid_clear(&j);

	assert_int_equal(parse_z("example.com/r", &j), JID_OK);
	s = jid_to_string(&j, true);
	assert_string_equal(s, "example.com");
	free(s);
	jid_clear(&j);
}

static void test_copy_clear(void **state)
{
	struct jid a, b, z = {0};

	(void)state;
	assert_int_equal(parse_z("alice@example.com/phone", &a), JID_OK);
	assert_int_equal(jid_copy(&b, &a), FG_OK);
	assert_true(jid_equal(&a, &b));
	/* A deep copy: nothing shared. */
	assert_ptr_not_equal(a.node, b.node);
	assert_ptr_not_equal(a.domain, b.domain);
	assert_ptr_not_equal(a.resource, b.resource);
	jid_clear(&a);
	assert_null(a.node);
	assert_null(a.domain);
	assert_null(a.resource);
	assert_string_equal(b.node, "alice");
	assert_string_equal(b.resource, "phone");
	jid_clear(&b);
	jid_clear(&b); /* twice is harmless */

	assert_int_equal(parse_z("example.com", &a), JID_OK);
	assert_int_equal(jid_copy(&b, &a), FG_OK);
	assert_null(b.node);
	assert_null(b.resource);
	assert_string_equal(b.domain, "example.com");
	assert_true(jid_equal(&a, &b));
	jid_clear(&a);
	jid_clear(&b);

	jid_clear(&z);
	jid_clear(NULL);
	assert_int_equal(jid_copy(&b, &z), FG_OK);
	assert_null(b.domain);
	jid_clear(&b);
}

static void test_domain_prep(void **state)
{
	char *d = (char *)1;

	(void)state;
	assert_int_equal(jid_domain_prep("B\xc3\xbc"
					 "cher.Example.",
					 15, &d),
			 JID_OK);
	assert_string_equal(d, "xn--bcher-kva.example");
	free(d);
	assert_int_equal(jid_domain_prep("[::1]", 5, &d), JID_OK);
	assert_string_equal(d, "[::1]");
	free(d);
	d = (char *)1;
	assert_int_equal(jid_domain_prep("a_b", 3, &d), JID_ERR_DOMAIN);
	assert_null(d);
	d = (char *)1;
	assert_int_equal(jid_domain_prep("", 0, &d), JID_ERR_EMPTY);
	assert_null(d);
	assert_int_equal(jid_domain_prep("a\0b", 3, &d), JID_ERR_UTF8);
	assert_null(d);
	assert_int_equal(jid_domain_prep("\xc0\xaf", 2, &d), JID_ERR_UTF8);
	assert_null(d);
}

/* The ASCII fast path against the full preparation: same verdict, same
 * parts, on every ASCII byte in every part and on every short domain made
 * of the characters that matter to it. */
static bool str_eq(const char *a, const char *b)
{
	return (!a && !b) || (a && b && strcmp(a, b) == 0);
}

static void same_both_ways(const char *s, size_t len)
{
	struct jid f, u;
	jid_set_fast_path(true);
	enum jid_err rf = jid_parse(s, len, &f);
	jid_set_fast_path(false);
	enum jid_err ru = jid_parse(s, len, &u);
	jid_set_fast_path(true);
	if (rf != ru || !str_eq(f.node, u.node) || !str_eq(f.domain, u.domain) ||
	    !str_eq(f.resource, u.resource))
		fail_msg("%.*s: fast path %s (%s), full preparation %s (%s)", (int)len, s,
			 jid_strerror(rf), f.domain ? f.domain : "-", jid_strerror(ru),
			 u.domain ? u.domain : "-");
	jid_clear(&f);
	jid_clear(&u);
}

static void test_ascii_fast_path(void **state)
{
	char buf[64];
	(void)state;
	for (int c = 1; c < 0x80; c++) {
		int n = snprintf(buf, sizeof(buf), "x%cY@d.test", c);
		same_both_ways(buf, (size_t)n);
		n = snprintf(buf, sizeof(buf), "%c@d.test", c);
		same_both_ways(buf, (size_t)n);
		n = snprintf(buf, sizeof(buf), "a@d.test/x%cY", c);
		same_both_ways(buf, (size_t)n);
		n = snprintf(buf, sizeof(buf), "a@d.test/%c", c);
		same_both_ways(buf, (size_t)n);
		n = snprintf(buf, sizeof(buf), "a@x%cY.test", c);
		same_both_ways(buf, (size_t)n);
		n = snprintf(buf, sizeof(buf), "a@%c", c);
		same_both_ways(buf, (size_t)n);
	}
	/* Every domain of up to five of these: letters of both cases, the
	 * "xn" of A-labels, a digit, hyphens and dots. */
	static const char alphabet[] = "aXxnN0-.";
	const size_t k = sizeof(alphabet) - 1;
	size_t total = 0;
	for (size_t len = 1; len <= 5; len++) {
		size_t count = 1;
		for (size_t i = 0; i < len; i++)
			count *= k;
		for (size_t v = 0; v < count; v++) {
			size_t x = v;
			memcpy(buf, "a@", 2);
			for (size_t i = 0; i < len; i++, x /= k)
				buf[2 + i] = alphabet[x % k];
			same_both_ways(buf, 2 + len);
			total++;
		}
	}
	assert_int_equal(total, 8 + 64 + 512 + 4096 + 32768);
	/* Real-looking addresses, and limits. */
	static const char *const real[] = {
		"Alice@Contoso.Test/Laptop 1",
		"bob@xn--bcher-kva.example",
		"x@XN--BCHER-KVA.example",
		"carol@ab--c.test",
		"d@a.b.c.d.e.f.g",
		"e@1.2.3.4",
		"f@[::1]",
		"g@localhost.",
		"h@-x.test",
		"i@x-.test",
		"j@a..b",
		"k@.a",
	};
	for (size_t i = 0; i < FG_ARRAY_LEN(real); i++)
		same_both_ways(real[i], strlen(real[i]));
	char *longest = repeat('a', 63, "n@", ".test");
	same_both_ways(longest, strlen(longest));
	free(longest);
	longest = repeat('a', 64, "n@", ".test");
	same_both_ways(longest, strlen(longest));
	free(longest);
}

static void test_strerror(void **state)
{
	(void)state;
	assert_string_equal(jid_strerror(JID_ERR_DOMAIN),
			    "the domain part is not a valid domain name");
	for (int e = JID_OK; e <= JID_ERR_NOMEM; e++) {
		const char *m = jid_strerror((enum jid_err)e);

		assert_non_null(m);
		assert_true(strlen(m) > 0);
		assert_string_not_equal(m, "unknown JID error");
	}
	assert_string_equal(jid_strerror((enum jid_err)99), "unknown JID error");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_simple),
		cmocka_unit_test(test_bare_full),
		cmocka_unit_test(test_node_vs_domain_only),
		cmocka_unit_test(test_case_folding),
		cmocka_unit_test(test_idn_domain),
		cmocka_unit_test(test_trailing_dot),
		cmocka_unit_test(test_ip_literals),
		cmocka_unit_test(test_resource_separators),
		cmocka_unit_test(test_empty_parts),
		cmocka_unit_test(test_node_prohibited),
		cmocka_unit_test(test_unstable_prep),
		cmocka_unit_test(test_resource_prohibited),
		cmocka_unit_test(test_bad_domains),
		cmocka_unit_test(test_node_limit),
		cmocka_unit_test(test_resource_limit),
		cmocka_unit_test(test_domain_limit),
		cmocka_unit_test(test_whole_input_limit),
		cmocka_unit_test(test_utf8),
		cmocka_unit_test(test_nul),
		cmocka_unit_test(test_round_trip),
		cmocka_unit_test(test_to_string_values),
		cmocka_unit_test(test_copy_clear),
		cmocka_unit_test(test_domain_prep),
		cmocka_unit_test(test_ascii_fast_path),
		cmocka_unit_test(test_strerror),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}

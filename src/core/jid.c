/* JIDs: RFC 7622 splitting, RFC 3920 (stringprep) node and resource
 * preparation, IDNA2008/UTS #46 domains stored as lower-case A-labels. */
#include "jid.h"

#include "fg.h"

#include <arpa/inet.h>
#include <assert.h>
#include <idn2.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <stringprep.h>

/* Longest input whose parts can each be within the raw limits: three parts,
 * '@', '/', and the one trailing dot the domain may carry. Anything longer
 * is refused before it is scanned. */
#define JID_INPUT_MAX (3 * JID_PART_MAX + 3)

/* RFC 1035 limit for a host name written without the trailing dot. */
#define DOMAIN_ASCII_MAX 253
#define LABEL_MAX	 63

/* Strict RFC 3629 UTF-8: no overlong forms, no surrogates, nothing above
 * U+10FFFF, and no NUL, since every part is handed on as a C string. */
static bool utf8_valid(const char *s, size_t len)
{
	const unsigned char *p = (const unsigned char *)s;
	size_t i = 0;

	while (i < len) {
		unsigned char c = p[i];
		size_t n;
		uint32_t cp, min;

		if (c == 0)
			return false;
		if (c < 0x80) {
			i++;
			continue;
		}
		if (c >= 0xc2 && c <= 0xdf) {
			n = 1;
			cp = c & 0x1f;
			min = 0x80;
		} else if (c >= 0xe0 && c <= 0xef) {
			n = 2;
			cp = c & 0x0f;
			min = 0x800;
		} else if (c >= 0xf0 && c <= 0xf4) {
			n = 3;
			cp = c & 0x07;
			min = 0x10000;
		} else {
			return false;
		}
		if (len - i - 1 < n)
			return false;
		for (size_t k = 1; k <= n; k++) {
			if ((p[i + k] & 0xc0) != 0x80)
				return false;
			cp = (cp << 6) | (p[i + k] & 0x3f);
		}
		if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
			return false;
		i += n + 1;
	}
	return true;
}

static char *memdup_z(const char *s, size_t len)
{
	char *d = malloc(len + 1);

	if (d != NULL) {
		memcpy(d, s, len);
		d[len] = '\0';
	}
	return d;
}

/* ---- the ASCII fast path ----
 *
 * Nearly every JID on the wire is printable ASCII, and for ASCII the
 * profiles reduce to a few byte rules (RFC 3454 tables, RFC 3920 App. A,
 * B): no ASCII character is mapped to nothing, NFKC leaves ASCII alone,
 * and no ASCII character is bidirectional RAL. nodeprep folds A-Z and
 * prohibits controls (C.2.1), the space (C.1.1) and " & ' / : < > @;
 * resourceprep maps nothing and prohibits only the controls. A domain of
 * letters, digits, '-' and '.' with no "xn--" label is its own A-label,
 * lower-cased, checked as a host name (labels with "--" in the third and
 * fourth place go to IDNA, which decodes or refuses them). Anything else takes the full
 * preparation. FAST_NA means "not for the fast path". fuzz_jid and
 * test_jid compare both paths on every input. */
#define FAST_NA ((enum jid_err) - 1)

static bool fast_path = true;

void jid_set_fast_path(bool on)
{
	fast_path = on;
}

static bool all_ascii(const char *s, size_t len)
{
	for (size_t i = 0; i < len; i++)
		if ((unsigned char)s[i] >= 0x80)
			return false;
	return true;
}

static enum jid_err fast_part(const char *s, size_t len, bool node, char **out)
{
	if (!fast_path || !all_ascii(s, len))
		return FAST_NA;
	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)s[i];
		if (c < 0x20 || c == 0x7f)
			return node ? JID_ERR_NODE : JID_ERR_RESOURCE;
		if (node && strchr(" \"&'/:<>@", c))
			return JID_ERR_NODE;
	}
	char *d = memdup_z(s, len);
	if (!d)
		return JID_ERR_NOMEM;
	if (node)
		for (char *p = d; *p; p++)
			if (*p >= 'A' && *p <= 'Z')
				*p = (char)(*p - 'A' + 'a');
	*out = d;
	return JID_OK;
}

/* Runs a stringprep profile over buf in place; buf holds a C string of at
 * most JID_PART_MAX bytes in a JID_PART_MAX + 1 byte buffer. The buffer
 * size doubles as the length cap: libidn reports a result that does not fit
 * as STRINGPREP_TOO_SMALL_BUFFER, which is exactly "over 1023 bytes". */
static enum jid_err stringprep_buf(const Stringprep_profile *profile, char *buf, enum jid_err bad)
{
	/* Flags 0 is the "query" mode of RFC 3454: code points unassigned in
	 * Unicode 3.2 are let through, as Prosody and ejabberd do, so that
	 * users of newer scripts are not locked out. */
	switch (stringprep(buf, JID_PART_MAX + 1, 0, profile)) {
	case STRINGPREP_OK: return JID_OK;
	case STRINGPREP_TOO_SMALL_BUFFER: return JID_ERR_TOO_LONG;
	case STRINGPREP_MALLOC_ERROR: return JID_ERR_NOMEM;
	default: return bad;
	}
}

/* Prepares s[0..len), len <= JID_PART_MAX, into a malloc'ed *out. */
static enum jid_err prep_part(const Stringprep_profile *profile, const char *s, size_t len,
			      enum jid_err bad, char **out)
{
	char buf[JID_PART_MAX + 1], again[JID_PART_MAX + 1];
	size_t n;
	enum jid_err rc;

	*out = NULL;
	assert(len > 0 && len <= JID_PART_MAX);
	rc = fast_part(s, len, profile == stringprep_xmpp_nodeprep, out);
	if (rc != FAST_NA)
		return rc;
	memcpy(buf, s, len);
	buf[len] = '\0';
	rc = stringprep_buf(profile, buf, bad);
	if (rc != JID_OK)
		return rc;
	n = strlen(buf);
	/* A part made only of characters mapped to nothing (soft hyphen,
	 * zero-width joiners) is as empty as one that was never written. */
	if (n == 0)
		return JID_ERR_EMPTY;
	/* libidn's NFKC is not idempotent: it composes a Hangul L+V pair
	 * across intervening combining marks and leaves those marks out of
	 * canonical order, so a second pass reorders them. A part whose
	 * prepared form would prepare to something else has no stable
	 * canonical form -- byte comparison would disagree with a peer that
	 * re-prepares what we send -- so it is refused. Parts that come out
	 * of the first pass unchanged (nearly all) need no second pass. */
	if (n != len || memcmp(buf, s, n) != 0) {
		memcpy(again, buf, n + 1);
		rc = stringprep_buf(profile, again, bad);
		if (rc == JID_ERR_NOMEM)
			return rc;
		if (rc != JID_OK || strcmp(again, buf) != 0)
			return bad;
	}
	*out = memdup_z(buf, n);
	return *out != NULL ? JID_OK : JID_ERR_NOMEM;
}

static void ascii_lower(char *s)
{
	for (; *s != '\0'; s++)
		if (*s >= 'A' && *s <= 'Z')
			*s = (char)(*s - 'A' + 'a');
}

static bool host_name_valid(const char *s)
{
	size_t total = strlen(s);
	size_t label = 0;

	if (total == 0 || total > DOMAIN_ASCII_MAX)
		return false;
	for (size_t i = 0; i <= total; i++) {
		char c = s[i];

		if (c == '.' || c == '\0') {
			if (label == 0 || label > LABEL_MAX || s[i - 1] == '-')
				return false;
			label = 0;
			continue;
		}
		if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-'))
			return false;
		if (c == '-' && label == 0)
			return false;
		label++;
	}
	return true;
}

/* "[v6]" with the brackets kept, so that the string form re-parses to the
 * same JID; the address itself is not re-canonicalised ("::1" and "0::1"
 * stay different), matching what peers put in 'to' and 'from'. */
static enum jid_err prep_ipv6(const char *s, size_t len, char **out)
{
	char addr[INET6_ADDRSTRLEN + 8];
	unsigned char bin[16];

	if (len < 3 || s[len - 1] != ']' || len - 2 >= sizeof(addr))
		return JID_ERR_DOMAIN;
	memcpy(addr, s + 1, len - 2);
	addr[len - 2] = '\0';
	if (inet_pton(AF_INET6, addr, bin) != 1)
		return JID_ERR_DOMAIN;
	*out = memdup_z(s, len);
	if (*out == NULL)
		return JID_ERR_NOMEM;
	ascii_lower(*out);
	return JID_OK;
}

/* buf[0..len) without its final dot, not an IP literal. */
static enum jid_err fast_domain(const char *buf, size_t len, char **out)
{
	if (!fast_path)
		return FAST_NA;
	for (size_t i = 0; i < len; i++) {
		char c = buf[i];
		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
		      c == '-' || c == '.'))
			return FAST_NA;
		/* "??--" starts an A-label ("xn--"), to be decoded and checked,
		 * or a reserved one (RFC 5891 4.2.3.1): IDNA's job. */
		if ((i == 0 || buf[i - 1] == '.') && len - i >= 4 && buf[i + 2] == '-' &&
		    buf[i + 3] == '-')
			return FAST_NA;
	}
	char *d = memdup_z(buf, len);
	if (!d)
		return JID_ERR_NOMEM;
	ascii_lower(d);
	if (!host_name_valid(d)) {
		free(d);
		return JID_ERR_DOMAIN;
	}
	*out = d;
	return JID_OK;
}

static int idna_to_ascii(const char *in, char **ascii, int flags)
{
	uint8_t *res = NULL;
	int rc = idn2_lookup_u8((const uint8_t *)in, &res, flags);

	*ascii = (char *)res;
	return rc;
}

/* s[0..len) is valid UTF-8 without NUL and at most JID_PART_MAX + 1 bytes. */
static enum jid_err prep_domain_once(const char *s, size_t len, char **out)
{
	char buf[JID_PART_MAX + 1];
	unsigned char v4[4];
	char *ascii = NULL;
	int rc;

	*out = NULL;
	/* RFC 7622 3.2: a final dot is stripped before anything else, so
	 * "example.com." and "example.com" are one domain. Only one: "a.." is
	 * an empty label, not a doubly-rooted name. */
	if (len > 0 && s[len - 1] == '.')
		len--;
	if (len == 0)
		return JID_ERR_EMPTY;
	if (len > JID_PART_MAX)
		return JID_ERR_TOO_LONG;
	if (s[0] == '[')
		return prep_ipv6(s, len, out);

	memcpy(buf, s, len);
	buf[len] = '\0';
	if (inet_pton(AF_INET, buf, v4) == 1) {
		*out = memdup_z(buf, len);
		return *out != NULL ? JID_OK : JID_ERR_NOMEM;
	}
	rc = fast_domain(buf, len, out);
	if (rc != (int)FAST_NA)
		return (enum jid_err)rc;

	/* IDN2_USE_STD3_ASCII_RULES is left out on purpose: libidn2 2.3
	 * silently deletes disallowed ASCII with it ("a_b" becomes "ab"),
	 * which would merge distinct domains; the host-name check below does
	 * the STD3 job by rejecting instead. */
	rc = idna_to_ascii(buf, &ascii, IDN2_NFC_INPUT | IDN2_NONTRANSITIONAL);
	if (rc == IDN2_MALLOC)
		return JID_ERR_NOMEM;
	if (rc != IDN2_OK) {
		/* IDNA2003-era names that IDNA2008 refuses, such as a joiner
		 * outside the contexts CONTEXTJ allows, still pass UTS #46
		 * transitional processing (which maps the joiner away, so
		 * "a<ZWJ>b" is "ab"); curl falls back the same way. */
		idn2_free(ascii);
		ascii = NULL;
		rc = idna_to_ascii(buf, &ascii, IDN2_NFC_INPUT | IDN2_TRANSITIONAL);
		if (rc == IDN2_MALLOC)
			return JID_ERR_NOMEM;
		if (rc != IDN2_OK) {
			idn2_free(ascii);
			return JID_ERR_DOMAIN;
		}
	}
	if (ascii == NULL)
		return JID_ERR_DOMAIN;
	ascii_lower(ascii);
	if (ascii[0] == '\0') {
		/* Nothing but characters that IDNA maps away. */
		idn2_free(ascii);
		return JID_ERR_EMPTY;
	}
	if (!host_name_valid(ascii)) {
		idn2_free(ascii);
		return JID_ERR_DOMAIN;
	}
	/* Copied so that callers free with free() and never need to know
	 * which library allocated the string. */
	*out = strdup(ascii);
	idn2_free(ascii);
	return *out != NULL ? JID_OK : JID_ERR_NOMEM;
}

/* The same fixed-point rule as for nodes and resources (see prep_part):
 * no libidn2 domain has been seen to break it, but the transitional
 * fallback makes it plausible, and checking costs one more lookup only for
 * domains that were not already in canonical form. */
static enum jid_err prep_domain(const char *s, size_t len, char **out)
{
	char *again = NULL;
	enum jid_err rc = prep_domain_once(s, len, out);

	if (rc != JID_OK || (strlen(*out) == len && memcmp(*out, s, len) == 0))
		return rc;
	rc = prep_domain_once(*out, strlen(*out), &again);
	if (rc == JID_OK && strcmp(again, *out) == 0) {
		free(again);
		return JID_OK;
	}
	free(again);
	free(*out);
	*out = NULL;
	return rc == JID_ERR_NOMEM ? rc : JID_ERR_DOMAIN;
}

enum jid_err jid_domain_prep(const char *s, size_t len, char **out)
{
	*out = NULL;
	if (s == NULL || len == 0)
		return JID_ERR_EMPTY;
	if (len > JID_PART_MAX + 1)
		return JID_ERR_TOO_LONG;
	if (!utf8_valid(s, len))
		return JID_ERR_UTF8;
	return prep_domain(s, len, out);
}

enum jid_err jid_parse(const char *s, size_t len, struct jid *out)
{
	struct jid j = {0};
	const char *end, *slash, *at, *dom;
	size_t bare_len, dom_len;
	enum jid_err rc;

	memset(out, 0, sizeof(*out));
	if (s == NULL || len == 0)
		return JID_ERR_EMPTY;
	if (len > JID_INPUT_MAX)
		return JID_ERR_TOO_LONG;
	if (!utf8_valid(s, len))
		return JID_ERR_UTF8;

	/* RFC 7622 3.1: the first '/' starts the resource, which may itself
	 * contain '@' and '/'; only an '@' before that '/' ends the node. */
	end = s + len;
	slash = memchr(s, '/', len);
	bare_len = slash != NULL ? (size_t)(slash - s) : len;
	at = memchr(s, '@', bare_len);
	dom = at != NULL ? at + 1 : s;
	dom_len = (size_t)(s + bare_len - dom);

	if (at == s || dom_len == 0 || (slash != NULL && slash + 1 == end))
		return JID_ERR_EMPTY;
	/* Raw limits bound the work stringprep and IDNA do. A part that
	 * would only fit after preparation shrank it (by mapping characters
	 * away) is refused too; no real address depends on that. */
	if ((at != NULL && (size_t)(at - s) > JID_PART_MAX) || dom_len > JID_PART_MAX + 1 ||
	    (slash != NULL && (size_t)(end - slash - 1) > JID_PART_MAX))
		return JID_ERR_TOO_LONG;

	if (at != NULL) {
		rc = prep_part(stringprep_xmpp_nodeprep, s, (size_t)(at - s), JID_ERR_NODE,
			       &j.node);
		if (rc != JID_OK)
			goto fail;
	}
	rc = prep_domain(dom, dom_len, &j.domain);
	if (rc != JID_OK)
		goto fail;
	if (slash != NULL) {
		rc = prep_part(stringprep_xmpp_resourceprep, slash + 1, (size_t)(end - slash - 1),
			       JID_ERR_RESOURCE, &j.resource);
		if (rc != JID_OK)
			goto fail;
	}
	*out = j;
	return JID_OK;
fail:
	jid_clear(&j);
	return rc;
}

void jid_clear(struct jid *j)
{
	if (j == NULL)
		return;
	free(j->node);
	free(j->domain);
	free(j->resource);
	memset(j, 0, sizeof(*j));
}

static int dup_opt(char **dst, const char *src)
{
	*dst = NULL;
	if (src == NULL)
		return FG_OK;
	*dst = strdup(src);
	return *dst != NULL ? FG_OK : FG_NOMEM;
}

int jid_copy(struct jid *dst, const struct jid *src)
{
	struct jid j = {0};

	memset(dst, 0, sizeof(*dst));
	if (dup_opt(&j.node, src->node) != FG_OK || dup_opt(&j.domain, src->domain) != FG_OK ||
	    dup_opt(&j.resource, src->resource) != FG_OK) {
		jid_clear(&j);
		return FG_NOMEM;
	}
	*dst = j;
	return FG_OK;
}

/* Absent and present parts differ: "d" is not "d/" (which cannot be
 * parsed anyway) and a NULL never equals a string. */
static bool part_equal(const char *a, const char *b)
{
	if (a == NULL || b == NULL)
		return a == b;
	return strcmp(a, b) == 0;
}

bool jid_equal_bare(const struct jid *a, const struct jid *b)
{
	return part_equal(a->node, b->node) && part_equal(a->domain, b->domain);
}

bool jid_equal(const struct jid *a, const struct jid *b)
{
	return jid_equal_bare(a, b) && part_equal(a->resource, b->resource);
}

bool jid_is_bare(const struct jid *j)
{
	return j->resource == NULL;
}

char *jid_to_string(const struct jid *j, bool bare)
{
	const char *dom = j->domain != NULL ? j->domain : "";
	size_t nl = j->node != NULL ? strlen(j->node) : 0;
	size_t dl = strlen(dom);
	size_t rl = (!bare && j->resource != NULL) ? strlen(j->resource) : 0;
	char *s, *p;

	s = malloc(nl + 1 + dl + 1 + rl + 1);
	if (s == NULL)
		return NULL;
	p = s;
	if (j->node != NULL) {
		memcpy(p, j->node, nl);
		p += nl;
		*p++ = '@';
	}
	memcpy(p, dom, dl);
	p += dl;
	if (!bare && j->resource != NULL) {
		*p++ = '/';
		memcpy(p, j->resource, rl);
		p += rl;
	}
	*p = '\0';
	return s;
}

const char *jid_strerror(enum jid_err e)
{
	switch (e) {
	case JID_OK: return "success";
	case JID_ERR_EMPTY: return "the JID or one of its parts is empty";
	case JID_ERR_TOO_LONG: return "a part of the JID is longer than 1023 bytes";
	case JID_ERR_NODE: return "the node part contains characters that are not allowed";
	case JID_ERR_DOMAIN: return "the domain part is not a valid domain name";
	case JID_ERR_RESOURCE: return "the resource part contains characters that are not allowed";
	case JID_ERR_UTF8: return "the JID is not valid UTF-8 or contains a NUL byte";
	case JID_ERR_NOMEM: return "out of memory";
	}
	return "unknown JID error";
}

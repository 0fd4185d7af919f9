/* libFuzzer target for jid_parse: no crash or leak on any input, and every
 * JID it accepts is canonical, i.e. printing and re-parsing it is a no-op. */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "fg.h"
#include "jid.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define CHECK(cond)                                                                                \
	do {                                                                                       \
		if (!(cond))                                                                       \
			__builtin_trap();                                                          \
	} while (0)

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
	 * same JID, whoever prepares it again. */
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

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct jid j, c;
	enum jid_err rc = jid_parse((const char *)data, size, &j);

	CHECK(jid_strerror(rc) != NULL);
	if (rc != JID_OK) {
		CHECK(j.node == NULL && j.domain == NULL && j.resource == NULL);
		return 0;
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
	return 0;
}

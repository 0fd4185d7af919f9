/* JIDs (RFC 7622): parse, prepare, compare. */
#ifndef FG_JID_H
#define FG_JID_H

#include <stdbool.h>
#include <stddef.h>

#define JID_PART_MAX 1023 /* bytes per part, after preparation */

enum jid_err {
	JID_OK = 0,
	JID_ERR_EMPTY,	  /* empty input or empty part ("@d", "n@", "d/") */
	JID_ERR_TOO_LONG, /* a part longer than JID_PART_MAX */
	JID_ERR_NODE,	  /* node fails nodeprep */
	JID_ERR_DOMAIN,	  /* domain fails IDNA or is no valid host name */
	JID_ERR_RESOURCE, /* resource fails resourceprep */
	JID_ERR_UTF8,	  /* input is not valid UTF-8 or contains NUL */
	JID_ERR_NOMEM,
};

/* A prepared JID. node and resource are NULL when absent; all parts are
 * NUL-terminated, owned by the struct, and in canonical (prepared) form, so
 * comparison is byte comparison. */
struct jid {
	char *node;
	char *domain;
	char *resource;
};

/* Parses and prepares s[0..len). On error *out is left zeroed. */
enum jid_err jid_parse(const char *s, size_t len, struct jid *out);
/* Prepares a bare domain (IDNA to its canonical form, lower case, no
 * trailing dot); *out is malloc'ed. */
enum jid_err jid_domain_prep(const char *s, size_t len, char **out);
void jid_clear(struct jid *j);
int jid_copy(struct jid *dst, const struct jid *src); /* FG_OK / FG_NOMEM */
bool jid_equal(const struct jid *a, const struct jid *b);
bool jid_equal_bare(const struct jid *a, const struct jid *b);
bool jid_is_bare(const struct jid *j);
/* malloc'ed string form; full or bare. NULL on allocation failure. */
char *jid_to_string(const struct jid *j, bool bare);
const char *jid_strerror(enum jid_err e);
/* The ASCII fast path (on by default) gives exactly the full preparation's
 * result; fuzz_jid and test_jid turn it off to prove that, bench_jid to
 * measure what it saves. Not for the daemon. */
void jid_set_fast_path(bool on);

#endif

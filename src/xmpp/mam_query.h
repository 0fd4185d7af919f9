/* The parts of XEP-0313 a client sends that need reading: a query's data
 * form (XEP-0004) with its paging (XEP-0059 <set/>), and preferences.
 * Pure functions of the element: no server, no store (fuzz/fuzz_mam.c). */
#ifndef FG_MAM_QUERY_H
#define FG_MAM_QUERY_H

#include "xml.h"

#include <stdbool.h>
#include <stddef.h>

#define XML_NS_MAM     "urn:xmpp:mam:2"
#define XML_NS_RSM     "http://jabber.org/protocol/rsm"
#define XML_NS_DATA    "jabber:x:data"
#define XML_NS_FORWARD "urn:xmpp:forward:0"
#define XML_NS_DELAY   "urn:xmpp:delay"
#define XML_NS_SID     "urn:xmpp:sid:0"

/* Entries accepted in each preference list. */
#define MAM_PREFS_MAX 256

struct mam_query {
	const char *queryid;   /* into the query element; NULL when none */
	char *with;	       /* prepared bare JID, malloc'ed; NULL = anyone */
	long long start_ms;    /* -1 = none */
	long long end_ms;      /* -1 = none */
	const char *after_id;  /* into the element; NULL = none */
	const char *before_id; /* NULL = none (or the last page when backward) */
	bool backward;	       /* RSM <before/> was given */
	unsigned max;	       /* at most cap */
};

/* Reads <query xmlns='urn:xmpp:mam:2'/>. NULL on success, else a sentence
 * for a bad-request error (out untouched but cleared). A missing or larger
 * <max/> than cap gives cap. */
const char *mam_query_parse(const struct xml_node *query, unsigned cap, struct mam_query *out);
void mam_query_clear(struct mam_query *q);

struct mam_prefs {
	int mode;     /* enum archive_mode: 0 always, 1 roster, 2 never */
	char *always; /* prepared bare JIDs, one per line, malloc'ed ("" = none) */
	char *never;
};

/* Reads <prefs xmlns='urn:xmpp:mam:2' default=...>. NULL on success, else
 * a sentence for a bad-request error. */
const char *mam_prefs_parse(const struct xml_node *prefs, struct mam_prefs *out);
void mam_prefs_clear(struct mam_prefs *p);

/* An XEP-0082 DateTime ("2026-12-06T17:25:40.123Z", "...+01:00") as ms
 * since the epoch; -1 when it is not one. */
long long mam_parse_time(const char *s);

#endif

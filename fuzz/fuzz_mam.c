/* libFuzzer target for the archive's request parsing (xmpp/mam_query.c):
 * a stanza as the store or a client's stream would give it, parsed by
 * xmlstream_parse_one, then every <query/> and <prefs/> of urn:xmpp:mam:2
 * in it through mam_query_parse and mam_prefs_parse, and the raw bytes
 * through mam_parse_time.
 *
 * Invariants: no crash or leak; an accepted query has max within the cap,
 * start before end, and a with that is a prepared bare JID; accepted
 * preferences have a known default and lists of prepared bare JIDs, one
 * per line, no more than MAM_PREFS_MAX; a time that parses prints back to
 * the same instant. */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "fuzz.h"
#include "fg.h"
#include "jid.h"
#include "log.h"
#include "mam_query.h"
#include "xml.h"
#include "xmlstream.h"

#define CAP 100

static bool prepared_bare(const char *s, size_t len)
{
	struct jid j;
	if (len == 0 || jid_parse(s, len, &j) != JID_OK)
		return false;
	char *back = jid_to_string(&j, true);
	bool ok = j.resource == NULL && back && strlen(back) == len && memcmp(back, s, len) == 0;
	free(back);
	jid_clear(&j);
	return ok;
}

static void check_list(const char *list)
{
	CHECK(list != NULL);
	unsigned n = 0;
	for (const char *p = list; *p;) {
		const char *nl = strchr(p, '\n');
		size_t len = nl ? (size_t)(nl - p) : strlen(p);
		CHECK(prepared_bare(p, len));
		n++;
		p = nl ? nl + 1 : p + len;
	}
	CHECK(n <= MAM_PREFS_MAX);
}

static void check_time(const char *s)
{
	long long ms = mam_parse_time(s);
	CHECK(ms >= -1);
	if (ms < 0)
		return;
	time_t secs = (time_t)(ms / 1000);
	struct tm tm;
	char buf[64];
	if (!gmtime_r(&secs, &tm))
		return;
	size_t k = strftime(buf, sizeof(buf), "%Y-%m-%dT%H:%M:%S", &tm);
	if (k == 0 || tm.tm_year + 1900 > 9999)
		return;
	snprintf(buf + k, sizeof(buf) - k, ".%03lldZ", ms % 1000);
	/* A leap second (:60) lands on the next minute's :00. */
	CHECK(mam_parse_time(buf) == ms);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static bool quiet;
	if (!quiet) {
		log_set_level(LOG_ERROR);
		quiet = true;
	}
	char *s = malloc(size + 1);
	if (!s)
		return 0;
	memcpy(s, data, size);
	s[size] = '\0';
	check_time(s);
	struct xml_node *st = xmlstream_parse_one(s);
	free(s);
	if (!st)
		return 0;
	for (const struct xml_node *e = xml_first_element(st); e; e = xml_next_element(e)) {
		if (xml_is(e, XML_NS_MAM, "query")) {
			struct mam_query q;
			if (!mam_query_parse(e, CAP, &q)) {
				CHECK(q.max <= CAP);
				CHECK(q.start_ms >= -1 && q.end_ms >= -1);
				CHECK(q.start_ms < 0 || q.end_ms < 0 || q.start_ms <= q.end_ms);
				CHECK(!q.with || prepared_bare(q.with, strlen(q.with)));
				CHECK(!q.backward || !q.before_id || *q.before_id);
			} else {
				CHECK(q.with == NULL);
			}
			mam_query_clear(&q);
		} else if (xml_is(e, XML_NS_MAM, "prefs")) {
			struct mam_prefs p;
			if (!mam_prefs_parse(e, &p)) {
				CHECK(p.mode >= 0 && p.mode <= 2);
				check_list(p.always);
				check_list(p.never);
			} else {
				CHECK(p.always == NULL && p.never == NULL);
			}
			mam_prefs_clear(&p);
		}
	}
	xml_free(&st);
	return 0;
}

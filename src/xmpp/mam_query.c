#include "mam_query.h"

#include "fg.h"
#include "jid.h"

#include <assert.h>
#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* Digits at s[0..n) as a number; -1 when any is not a digit. */
static int digits(const char *s, size_t n)
{
	int v = 0;
	for (size_t i = 0; i < n; i++) {
		if (s[i] < '0' || s[i] > '9')
			return -1;
		v = v * 10 + (s[i] - '0');
	}
	return v;
}

static bool leap(int y)
{
	return (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
}

/* Days from 1970-01-01 to y-m-d (proleptic Gregorian), without timegm's
 * dependence on the process's time zone. */
static long long days_from_civil(int y, int m, int d)
{
	y -= m <= 2;
	long long era = (y >= 0 ? y : y - 399) / 400;
	long long yoe = y - era * 400;
	long long doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
	long long doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
	return era * 146097 + doe - 719468;
}

long long mam_parse_time(const char *s)
{
	static const int mdays[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
	if (!s || strlen(s) < 20 || s[4] != '-' || s[7] != '-' || s[10] != 'T' || s[13] != ':' ||
	    s[16] != ':')
		return -1;
	int y = digits(s, 4), mo = digits(s + 5, 2), d = digits(s + 8, 2);
	int h = digits(s + 11, 2), mi = digits(s + 14, 2), se = digits(s + 17, 2);
	if (y < 1970 || mo < 1 || mo > 12 || d < 1 || h < 0 || h > 23 || mi < 0 || mi > 59 ||
	    se < 0 || se > 60)
		return -1;
	if (d > mdays[mo - 1] + (mo == 2 && leap(y)))
		return -1;
	const char *p = s + 19;
	long long ms = 0;
	if (*p == '.') {
		/* Fractions beyond milliseconds are read and dropped. */
		int nd = 0;
		for (p++; *p >= '0' && *p <= '9'; p++, nd++)
			if (nd < 3)
				ms = ms * 10 + (*p - '0');
		if (nd == 0)
			return -1;
		for (; nd < 3; nd++)
			ms *= 10;
	}
	long long off = 0;
	if (*p == 'Z') {
		p++;
	} else if ((*p == '+' || *p == '-') && strlen(p) == 6 && p[3] == ':') {
		int oh = digits(p + 1, 2), om = digits(p + 4, 2);
		if (oh < 0 || oh > 23 || om < 0 || om > 59)
			return -1;
		off = (oh * 60LL + om) * 60 * (*p == '+' ? 1 : -1);
		p += 6;
	} else {
		return -1;
	}
	if (*p)
		return -1;
	long long secs = days_from_civil(y, mo, d) * 86400 + h * 3600LL + mi * 60LL + se - off;
	if (secs < 0)
		return -1;
	return secs * 1000 + ms;
}

/* The prepared bare form of a JID text, malloc'ed; NULL when it is none. */
static char *bare_of(const char *s)
{
	struct jid j;
	if (!s || jid_parse(s, strlen(s), &j) != JID_OK)
		return NULL;
	char *b = jid_to_string(&j, true);
	jid_clear(&j);
	return b;
}

/* The one <value/> of a form field; NULL when it has none. */
static const char *field_value(const struct xml_node *f)
{
	const struct xml_node *v = xml_child(f, XML_NS_DATA, "value");
	return v ? xml_text(v) : NULL;
}

void mam_query_clear(struct mam_query *q)
{
	free(q->with);
	memset(q, 0, sizeof(*q));
	q->start_ms = q->end_ms = -1;
}

static const char *read_form(const struct xml_node *x, struct mam_query *q)
{
	const char *t = xml_attr(x, "type");
	if (t && strcmp(t, "submit") != 0)
		return "the query's form must be of type submit";
	for (const struct xml_node *f = xml_first_element(x); f; f = xml_next_element(f)) {
		if (!xml_is(f, XML_NS_DATA, "field"))
			continue;
		const char *var = xml_attr(f, "var"), *v = field_value(f);
		if (!var)
			return "a form field without var";
		if (strcmp(var, "FORM_TYPE") == 0) {
			if (!v || strcmp(v, XML_NS_MAM) != 0)
				return "the form's FORM_TYPE is not urn:xmpp:mam:2";
		} else if (!v || !*v) {
			continue; /* an empty field filters nothing */
		} else if (strcmp(var, "with") == 0) {
			free(q->with);
			if (!(q->with = bare_of(v)))
				return "the with field is not a JID";
		} else if (strcmp(var, "start") == 0) {
			if ((q->start_ms = mam_parse_time(v)) < 0)
				return "the start field is not an XEP-0082 date and time";
		} else if (strcmp(var, "end") == 0) {
			if ((q->end_ms = mam_parse_time(v)) < 0)
				return "the end field is not an XEP-0082 date and time";
		} else if (strcmp(var, "after-id") == 0) {
			q->after_id = v;
		} else if (strcmp(var, "before-id") == 0) {
			q->before_id = v;
		} else {
			return "the form has a field this archive does not filter by";
		}
	}
	return NULL;
}

static const char *read_set(const struct xml_node *set, unsigned cap, struct mam_query *q)
{
	for (const struct xml_node *e = xml_first_element(set); e; e = xml_next_element(e)) {
		if (!xml_is(e, XML_NS_RSM, NULL))
			continue;
		const char *v = xml_text(e);
		if (strcmp(e->name, "max") == 0) {
			char *end;
			errno = 0;
			unsigned long m = strtoul(v, &end, 10);
			if (!*v || *end || errno || v[0] == '-')
				return "<max/> is not a number";
			q->max = m < cap ? (unsigned)m : cap;
		} else if (strcmp(e->name, "after") == 0) {
			if (!*v)
				return "<after/> names no message";
			q->after_id = v;
		} else if (strcmp(e->name, "before") == 0) {
			q->backward = true;
			q->before_id = *v ? v : NULL;
		} else if (strcmp(e->name, "index") == 0) {
			return "paging by <index/> is not supported; use <after/> or <before/>";
		}
	}
	return NULL;
}

const char *mam_query_parse(const struct xml_node *query, unsigned cap, struct mam_query *out)
{
	memset(out, 0, sizeof(*out));
	out->start_ms = out->end_ms = -1;
	out->max = cap;
	assert(query);
	out->queryid = xml_attr(query, "queryid");
	const char *why = NULL;
	const struct xml_node *x = xml_child(query, XML_NS_DATA, "x");
	if (x)
		why = read_form(x, out);
	const struct xml_node *set = xml_child(query, XML_NS_RSM, "set");
	if (!why && set)
		why = read_set(set, cap, out);
	if (!why && out->start_ms >= 0 && out->end_ms >= 0 && out->start_ms > out->end_ms)
		why = "the start is after the end";
	if (why)
		mam_query_clear(out);
	return why;
}

void mam_prefs_clear(struct mam_prefs *p)
{
	free(p->always);
	free(p->never);
	memset(p, 0, sizeof(*p));
}

/* The <jid/> children of list as prepared bare JIDs, one per line. */
static const char *read_list(const struct xml_node *list, char **out)
{
	struct xml_buf b = {0};
	unsigned n = 0;
	xml_buf_append(&b, "", 0);
	for (const struct xml_node *e = list ? xml_first_element(list) : NULL; e;
	     e = xml_next_element(e)) {
		if (!xml_is(e, XML_NS_MAM, "jid"))
			continue;
		if (++n > MAM_PREFS_MAX) {
			xml_buf_free(&b);
			return "a preference list has too many entries";
		}
		char *j = bare_of(xml_text(e));
		if (!j) {
			xml_buf_free(&b);
			return "a preference list holds something that is not a JID";
		}
		if (b.len)
			xml_buf_append(&b, "\n", 1);
		xml_buf_puts(&b, j);
		free(j);
	}
	*out = b.oom ? NULL : strndup(b.data ? b.data : "", b.len);
	xml_buf_free(&b);
	return *out ? NULL : "out of memory";
}

const char *mam_prefs_parse(const struct xml_node *prefs, struct mam_prefs *out)
{
	static const char *const names[] = {"always", "roster", "never"};
	memset(out, 0, sizeof(*out));
	const char *d = xml_attr(prefs, "default");
	out->mode = -1;
	for (int i = 0; d && i < 3; i++)
		if (strcmp(d, names[i]) == 0)
			out->mode = i;
	if (out->mode < 0)
		return "default must be always, roster or never";
	const char *why = read_list(xml_child(prefs, XML_NS_MAM, "always"), &out->always);
	if (!why)
		why = read_list(xml_child(prefs, XML_NS_MAM, "never"), &out->never);
	if (why)
		mam_prefs_clear(out);
	return why;
}

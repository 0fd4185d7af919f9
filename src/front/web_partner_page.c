/* One partner's page (/partners/view?domain=D): its settings, live
 * streams, failure record and the last 24 hours as two server-rendered
 * SVG pictures (stanzas per minute, connection events), with Retry now,
 * Suspend/Resume, Edit and Delete for administrators. Three read commands
 * feed it (`partner get`, `status`, `partner history`); each button is one
 * command (`partner retry`, `partner set --enabled`), then a redirect back
 * here with a flash message. */
#include "web_partner_page.h"

#include "fg.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define VIEW_PATH "/partners/view?domain="

/* ---- health, shared with the list ---- */

bool web_partner_owns_row(json_t *partner, json_t *row)
{
	const char *remote = json_string_value(json_object_get(row, "remote"));
	const char *domain = json_string_value(json_object_get(partner, "domain"));
	if (!remote || !domain)
		return false;
	if (strcmp(remote, domain) == 0)
		return true;
	size_t i;
	json_t *d;
	json_array_foreach(json_object_get(partner, "additional_domains"), i, d)
	{
		if (json_is_string(d) && strcmp(remote, json_string_value(d)) == 0)
			return true;
	}
	return false;
}

static bool row_is(json_t *row, const char *dir, const char *state)
{
	const char *d = json_string_value(json_object_get(row, "direction"));
	const char *s = json_string_value(json_object_get(row, "state"));
	return d && s && strcmp(d, dir) == 0 && strcmp(s, state) == 0;
}

static bool row_failing(json_t *row)
{
	const char *st =
		json_string_value(json_object_get(json_object_get(row, "last_failure"), "state"));
	return st && strcmp(st, "failing") == 0;
}

/* "2026-12-06T08:12:40Z" -> "08:12" (the list's "since" is a time of
 * day; the partner page shows the date when it is not today). */
static void hhmm(const char *iso, char *buf, size_t len)
{
	if (iso && strlen(iso) >= 16)
		snprintf(buf, len, "%.5s", iso + 11);
	else
		snprintf(buf, len, "?");
}

/* At most max bytes of s, cut at a UTF-8 character boundary, with "..."
 * when cut. */
static void shorten(const char *s, size_t max, char *buf, size_t len)
{
	size_t n = strlen(s);
	if (n <= max) {
		snprintf(buf, len, "%s", s);
		return;
	}
	while (max > 0 && ((unsigned char)s[max] & 0xC0) == 0x80)
		max--;
	snprintf(buf, len, "%.*s...", (int)max, s);
}

enum web_health web_partner_health(json_t *partner, json_t *rows, char *buf, size_t len,
				   char *detail, size_t dlen)
{
	const char *in_method = NULL, *out_method = NULL;
	json_t *failing = NULL;
	size_t i;
	json_t *r;
	detail[0] = '\0';
	if (json_is_false(json_object_get(partner, "enabled"))) {
		snprintf(buf, len, "Suspended");
		return WEB_HEALTH_SUSPENDED;
	}
	json_array_foreach(rows, i, r)
	{
		if (!web_partner_owns_row(partner, r))
			continue;
		const char *m = json_string_value(json_object_get(r, "method"));
		if (row_is(r, "in", "ready") && !in_method)
			in_method = m ? m : "";
		else if (row_is(r, "out", "ready") && !out_method)
			out_method = m ? m : "";
		if (row_failing(r) && !failing)
			failing = json_object_get(r, "last_failure");
	}
	if (in_method || out_method) {
		if (in_method && out_method && strcmp(in_method, out_method) == 0)
			snprintf(buf, len, "Connected in/out (%s)", in_method);
		else if (in_method && out_method)
			snprintf(buf, len, "Connected in (%s), out (%s)", in_method, out_method);
		else
			snprintf(buf, len, "Connected %s (%s)", in_method ? "in" : "out",
				 in_method ? in_method : out_method);
		return WEB_HEALTH_CONNECTED;
	}
	if (failing) {
		const char *reason = json_string_value(json_object_get(failing, "reason"));
		char since[8], shortr[128];
		hhmm(json_string_value(json_object_get(failing, "first")), since, sizeof(since));
		/* Reasons run from the general to the particular ("cannot
		 * connect to D: connect failed: Connection refused"): the last
		 * clause is the short one, the whole is in detail. */
		const char *last = reason ? strrchr(reason, ':') : NULL;
		const char *brief = last && strlen(last + 1) > 6 && last[1] == ' ' ? last + 2
				    : reason					   ? reason
										   : "";
		shorten(brief, 70, shortr, sizeof(shortr));
		snprintf(buf, len, "Failing since %s UTC: %s", since, shortr);
		snprintf(detail, dlen, "%s", reason ? reason : "");
		return WEB_HEALTH_FAILING;
	}
	snprintf(buf, len, "Idle");
	return WEB_HEALTH_IDLE;
}

const char *web_health_class(enum web_health hl)
{
	switch (hl) {
	case WEB_HEALTH_CONNECTED: return "health-connected";
	case WEB_HEALTH_FAILING: return "health-failing";
	case WEB_HEALTH_SUSPENDED: return "health-suspended";
	case WEB_HEALTH_IDLE: break;
	}
	return "health-idle";
}

void web_health_badge(struct evbuffer *b, enum web_health hl, const char *id, const char *text,
		      const char *detail)
{
	evbuffer_add_printf(b, "<span class=\"health %s\"", web_health_class(hl));
	if (id)
		evbuffer_add_printf(b, " id=\"%s\"", id);
	if (detail && detail[0]) {
		evbuffer_add_printf(b, " title=\"");
		http_html(b, detail);
		evbuffer_add_printf(b, "\"");
	}
	evbuffer_add_printf(b, ">");
	http_html(b, text);
	evbuffer_add_printf(b, "</span>");
}

/* ---- times and numbers for people ---- */

static time_t parse_iso(const char *iso)
{
	struct tm tm = {0};
	const char *rest = iso ? strptime(iso, "%Y-%m-%dT%H:%M:%SZ", &tm) : NULL;
	return rest && !*rest ? timegm(&tm) : 0;
}

/* "08:12:40 UTC", with the day ("5 Dec 08:12:40 UTC") when it is not
 * today's. */
static const char *when(const char *iso, time_t now, char *buf, size_t len)
{
	time_t t = parse_iso(iso);
	if (!t) {
		snprintf(buf, len, "-");
		return buf;
	}
	struct tm tm, tn;
	gmtime_r(&t, &tm);
	gmtime_r(&now, &tn);
	bool today = tm.tm_yday == tn.tm_yday && tm.tm_year == tn.tm_year;
	strftime(buf, len, today ? "%H:%M:%S UTC" : "%-d %b %H:%M:%S UTC", &tm);
	return buf;
}

static const char *age_text(long long s, char *buf, size_t len)
{
	if (s < 60)
		snprintf(buf, len, "%lld s", s < 0 ? 0 : s);
	else if (s < 3600)
		snprintf(buf, len, "%lld min", s / 60);
	else if (s < 86400)
		snprintf(buf, len, "%lld h %lld min", s / 3600, s / 60 % 60);
	else
		snprintf(buf, len, "%lld d %lld h", s / 86400, s / 3600 % 24);
	return buf;
}

static long long num(json_t *o, const char *key)
{
	return (long long)json_integer_value(json_object_get(o, key));
}

/* ---- the pictures ---- */

/* The plot area of both pictures, in the viewBox's units. */
#define X0     48.0
#define X1     988.0
#define VIEW_W 1000

struct span {
	const char *name;  /* the ?span= value */
	const char *label; /* the link */
	unsigned minutes;
	unsigned tick_min;  /* a tick every ... minutes */
	unsigned label_min; /* a time label every ... minutes */
};

static const struct span spans[] = {
	{"24h", "24 hours", 1440, 60, 180},
	{"6h", "6 hours", 360, 30, 60},
	{"1h", "1 hour", 60, 5, 10},
};

static const struct span *span_of(struct hreq *h)
{
	const char *q = http_query(h, "span");
	for (size_t i = 0; q && i < FG_ARRAY_LEN(spans); i++)
		if (strcmp(q, spans[i].name) == 0)
			return &spans[i];
	return &spans[0];
}

static double x_of(double minute, unsigned minutes)
{
	return X0 + (X1 - X0) * minute / (double)minutes;
}

/* The time axis under a plot from y_top to y_axis: a grid line and tick
 * per tick_min, an HH:MM label per label_min (UTC). start is the first
 * shown minute's time. */
static void time_axis(struct evbuffer *b, const struct span *sp, time_t start, double y_top,
		      double y_axis)
{
	for (unsigned m = 0; m <= sp->minutes; m++) {
		time_t t = start + (time_t)m * 60;
		if (t % ((time_t)sp->tick_min * 60) != 0)
			continue;
		double x = x_of(m, sp->minutes);
		evbuffer_add_printf(b,
				    "<line class=\"grid\" x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" "
				    "y2=\"%.1f\"/><line class=\"axis\" x1=\"%.1f\" y1=\"%.1f\" "
				    "x2=\"%.1f\" y2=\"%.1f\"/>",
				    x, y_top, x, y_axis, x, y_axis, x, y_axis + 4);
		if (t % ((time_t)sp->label_min * 60) == 0) {
			struct tm tm;
			char hm[8];
			gmtime_r(&t, &tm);
			strftime(hm, sizeof(hm), "%H:%M", &tm);
			evbuffer_add_printf(b,
					    "<text x=\"%.1f\" y=\"%.1f\" "
					    "text-anchor=\"middle\">%s</text>",
					    x, y_axis + 16, hm);
		}
	}
	evbuffer_add_printf(
		b,
		"<line class=\"axis\" x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" "
		"y2=\"%.1f\"/><text x=\"%.1f\" y=\"%.1f\" text-anchor=\"end\">UTC</text>",
		X0, y_axis, X1, y_axis, X1 + 10, y_axis + 30);
}

/* 1, 2, 5, 10, 20, 50...: the smallest at least n, so the axis maximum is
 * a round number. */
static long long nice_max(long long n)
{
	long long m = 1;
	for (;;) {
		if (n <= m)
			return m;
		if (n <= 2 * m)
			return 2 * m;
		if (n <= 5 * m)
			return 5 * m;
		m *= 10;
	}
}

static const char *const COLOR_IN = "#1f6fb2", *const COLOR_OUT = "#e07b00";

/* One series as bars, one per busy minute: in on the left half of its
 * minute, out on the right, so equal counts do not hide each other, and
 * at least 1.6 units wide, so a lone busy minute of a day still shows. */
static void series(struct evbuffer *b, json_t *arr, size_t from, const struct span *sp,
		   long long ymax, double y_top, double y_axis, bool left, const char *color,
		   const char *name)
{
	double w = (X1 - X0) / (double)sp->minutes;
	double bw = w * 0.45 > 1.6 ? w * 0.45 : 1.6;
	evbuffer_add_printf(b, "<path class=\"series-%s\" fill=\"%s\" d=\"", name, color);
	for (unsigned i = 0; i < sp->minutes; i++) {
		long long v = (long long)json_integer_value(json_array_get(arr, from + i));
		if (v <= 0)
			continue;
		double xc = x_of(i + 0.5, sp->minutes);
		double y = y_axis - (y_axis - y_top) * (double)v / (double)ymax;
		evbuffer_add_printf(b, "M%.2f %.1fV%.1fh%.2fV%.1fZ", left ? xc - bw : xc, y_axis, y,
				    bw, y_axis);
	}
	evbuffer_add_printf(b, "\"><title>stanzas %s per minute</title></path>", name);
}

static void traffic_svg(struct evbuffer *b, json_t *hist, const struct span *sp)
{
	json_t *in = json_object_get(hist, "stanzas_in"),
	       *out = json_object_get(hist, "stanzas_out");
	size_t n = json_array_size(in);
	if (n < sp->minutes || json_array_size(out) != n) {
		evbuffer_add_printf(b, "<p class=\"muted\">No history.</p>");
		return;
	}
	size_t from = n - sp->minutes;
	long long peak = 0, tin = 0, tout = 0;
	for (size_t i = from; i < n; i++) {
		long long a = (long long)json_integer_value(json_array_get(in, i));
		long long c = (long long)json_integer_value(json_array_get(out, i));
		tin += a;
		tout += c;
		peak = a > peak ? a : peak;
		peak = c > peak ? c : peak;
	}
	long long ymax = nice_max(peak < 1 ? 1 : peak);
	time_t start =
		parse_iso(json_string_value(json_object_get(hist, "since"))) + (time_t)from * 60;
	const double y_top = 12, y_axis = 172;
	evbuffer_add_printf(b,
			    "<svg class=\"chart\" id=\"traffic\" viewBox=\"0 0 %d 210\" "
			    "role=\"img\" aria-labelledby=\"traffic-title traffic-desc\" "
			    "xmlns=\"http://www.w3.org/2000/svg\">"
			    "<title id=\"traffic-title\">Stanzas per minute, last %s</title>"
			    "<desc id=\"traffic-desc\">%lld stanzas in and %lld out; the busiest "
			    "minute had %lld.</desc>",
			    VIEW_W, sp->label, tin, tout, peak);
	/* The y axis: 0, half and the maximum, with grid lines. */
	for (int k = 0; k <= 2; k++) {
		double y = y_axis - (y_axis - y_top) * k / 2.0;
		evbuffer_add_printf(b,
				    "<line class=\"grid\" x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" "
				    "y2=\"%.1f\"/>",
				    X0, y, X1, y);
		if (k == 2 || (k == 1 && ymax % 2 == 0))
			evbuffer_add_printf(b,
					    "<text x=\"%.1f\" y=\"%.1f\" text-anchor=\"end\" "
					    "%s>%lld</text>",
					    X0 - 6, y + 4, k == 2 ? "id=\"ymax\"" : "",
					    k == 2 ? ymax : ymax / 2);
	}
	evbuffer_add_printf(
		b,
		"<text x=\"%.1f\" y=\"%.1f\" text-anchor=\"end\">0</text>"
		"<line class=\"axis\" x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\"/>",
		X0 - 6, y_axis + 4, X0, y_top, X0, y_axis);
	time_axis(b, sp, start, y_top, y_axis);
	series(b, in, from, sp, ymax, y_top, y_axis, true, COLOR_IN, "in");
	series(b, out, from, sp, ymax, y_top, y_axis, false, COLOR_OUT, "out");
	evbuffer_add_printf(b, "</svg>");
	evbuffer_add_printf(
		b,
		"<div class=\"legend\"><span><svg width=\"18\" height=\"10\">"
		"<line x1=\"0\" y1=\"5\" x2=\"18\" y2=\"5\" stroke=\"%s\" "
		"stroke-width=\"3\"/></svg>in: <b id=\"total-in\">%lld</b></span>"
		"<span><svg width=\"18\" height=\"10\"><line x1=\"0\" y1=\"5\" x2=\"18\" "
		"y2=\"5\" stroke=\"%s\" stroke-width=\"3\"/></svg>out: "
		"<b id=\"total-out\">%lld</b></span><span class=\"muted\">busiest minute: "
		"%lld</span></div>",
		COLOR_IN, tin, COLOR_OUT, tout, peak);
}

/* The mark of an event at (x, y): connected a green circle, closed a grey
 * square, failed a red triangle, so they differ in shape and colour. */
static void mark(struct evbuffer *b, const char *event, double x, double y)
{
	if (strcmp(event, "connected") == 0)
		evbuffer_add_printf(b,
				    "<circle cx=\"%.1f\" cy=\"%.1f\" r=\"6\" fill=\"#23a04a\" "
				    "stroke=\"#fff\"/>",
				    x, y);
	else if (strcmp(event, "closed") == 0)
		evbuffer_add_printf(b,
				    "<rect x=\"%.1f\" y=\"%.1f\" width=\"10\" height=\"10\" "
				    "fill=\"#6b7785\" stroke=\"#fff\"/>",
				    x - 5, y - 5);
	else
		evbuffer_add_printf(b,
				    "<path d=\"M%.1f %.1fL%.1f %.1fL%.1f %.1fZ\" fill=\"#c62a1c\" "
				    "stroke=\"#fff\"/>",
				    x, y - 7, x + 7, y + 6, x - 7, y + 6);
}

static void events_svg(struct evbuffer *b, json_t *hist, const struct span *sp, time_t now)
{
	size_t n = json_array_size(json_object_get(hist, "stanzas_in"));
	time_t start = parse_iso(json_string_value(json_object_get(hist, "since"))) +
		       (time_t)(n > sp->minutes ? n - sp->minutes : 0) * 60;
	const double y_in = 22, y_out = 56, y_axis = 76;
	evbuffer_add_printf(
		b,
		"<svg class=\"chart\" id=\"events\" viewBox=\"0 0 %d 112\" role=\"img\" "
		"aria-labelledby=\"events-title\" xmlns=\"http://www.w3.org/2000/svg\">"
		"<title id=\"events-title\">Connection events, last %s</title>"
		"<text x=\"%.1f\" y=\"%.1f\" text-anchor=\"end\">in</text>"
		"<text x=\"%.1f\" y=\"%.1f\" text-anchor=\"end\">out</text>"
		"<line class=\"grid\" x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\"/>"
		"<line class=\"grid\" x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\"/>",
		VIEW_W, sp->label, X0 - 8, y_in + 4, X0 - 8, y_out + 4, X0, y_in, X1, y_in, X0,
		y_out, X1, y_out);
	time_axis(b, sp, start, 6, y_axis);
	size_t i;
	json_t *e;
	char at[40];
	json_array_foreach(json_object_get(hist, "events"), i, e)
	{
		time_t t = parse_iso(json_string_value(json_object_get(e, "at")));
		if (t < start)
			continue;
		const char *event = json_string_value(json_object_get(e, "event"));
		const char *dir = json_string_value(json_object_get(e, "direction"));
		const char *method = json_string_value(json_object_get(e, "method"));
		const char *reason = json_string_value(json_object_get(e, "reason"));
		bool in = dir && strcmp(dir, "in") == 0;
		double x = x_of((double)(t - start) / 60.0, sp->minutes);
		evbuffer_add_printf(b, "<g class=\"event event-%s\"><title>",
				    event && strcmp(event, "connected") == 0 ? "connected"
				    : event && strcmp(event, "closed") == 0  ? "closed"
									     : "failed");
		http_html(b,
			  when(json_string_value(json_object_get(e, "at")), now, at, sizeof(at)));
		evbuffer_add_printf(b, ": ");
		http_html(b, event ? event : "?");
		evbuffer_add_printf(b, " %s ", in ? "from" : "to");
		http_html(b, json_string_value(json_object_get(e, "remote")));
		if (method) {
			evbuffer_add_printf(b, " (");
			http_html(b, method);
			evbuffer_add_printf(b, ")");
		}
		if (reason) {
			evbuffer_add_printf(b, ": ");
			http_html(b, reason);
		}
		evbuffer_add_printf(b, "</title>");
		mark(b, event ? event : "failed", x, in ? y_in : y_out);
		evbuffer_add_printf(b, "</g>");
	}
	evbuffer_add_printf(b, "</svg>");
	evbuffer_add_printf(b, "<div class=\"legend\" id=\"events-legend\">");
	static const char *const kinds[] = {"connected", "closed", "failed"};
	for (size_t k = 0; k < FG_ARRAY_LEN(kinds); k++) {
		evbuffer_add_printf(b,
				    "<span><svg width=\"16\" height=\"16\" viewBox=\"0 0 16 16\">");
		mark(b, kinds[k], 8, 8.5);
		evbuffer_add_printf(b, "</svg>%s</span>",
				    k == 0   ? "stream up"
				    : k == 1 ? "stream closed"
					     : "attempt failed");
	}
	evbuffer_add_printf(b, "</div>");
}

/* The events, newest first, with what each said. */
#define EVENT_ROWS 20

static void events_table(struct evbuffer *b, json_t *hist, time_t now)
{
	json_t *ev = json_object_get(hist, "events");
	size_t n = json_array_size(ev);
	if (!n) {
		evbuffer_add_printf(b,
				    "<p class=\"muted\" id=\"no-events\">No connection events in "
				    "the last 24 hours.</p>");
		return;
	}
	evbuffer_add_printf(b, "<table class=\"compact\" id=\"event-list\"><thead><tr><th>When</th>"
			       "<th>Event</th><th>Direction</th><th>Local</th><th>Remote</th>"
			       "<th>Method or reason</th></tr></thead><tbody>");
	char at[40];
	/* The newest that fit a screen; the timeline above has them all. */
	size_t last = n > EVENT_ROWS ? n - EVENT_ROWS : 0;
	for (size_t i = n; i-- > last;) {
		json_t *e = json_array_get(ev, i);
		const char *method = json_string_value(json_object_get(e, "method"));
		const char *reason = json_string_value(json_object_get(e, "reason"));
		const char *event = json_string_value(json_object_get(e, "event"));
		const char *dir = json_string_value(json_object_get(e, "direction"));
		evbuffer_add_printf(b, "<tr><td class=\"actions\">");
		http_html(b,
			  when(json_string_value(json_object_get(e, "at")), now, at, sizeof(at)));
		evbuffer_add_printf(b, "</td><td>%s</td><td>%s</td><td>",
				    event && strcmp(event, "connected") == 0 ? "Stream up"
				    : event && strcmp(event, "closed") == 0  ? "Stream closed"
									     : "Attempt failed",
				    dir && strcmp(dir, "in") == 0 ? "In" : "Out");
		http_html(b, json_string_value(json_object_get(e, "local")));
		evbuffer_add_printf(b, "</td><td>");
		http_html(b, json_string_value(json_object_get(e, "remote")));
		evbuffer_add_printf(b, "</td><td class=\"reason\">");
		http_html(b, method ? method : "");
		if (method && reason)
			evbuffer_add_printf(b, ": ");
		http_html(b, reason ? reason : "");
		evbuffer_add_printf(b, "</td></tr>");
	}
	evbuffer_add_printf(b, "</tbody></table>");
	if (last)
		evbuffer_add_printf(
			b,
			"<p class=\"muted\" id=\"older-events\">%zu older event(s) are on the "
			"timeline above; <code>fedgate partner history</code> lists them "
			"all.</p>",
			last);
}

/* ---- the sections ---- */

static void kv_row(struct evbuffer *b, const char *key, const char *value)
{
	evbuffer_add_printf(b, "<tr><th>%s</th><td>", key);
	http_html(b, value);
	evbuffer_add_printf(b, "</td></tr>");
}

static void settings_card(struct evbuffer *b, json_t *p)
{
	char buf[64];
	evbuffer_add_printf(b, "<section class=\"card\" id=\"settings\"><h2>Settings</h2>"
			       "<table class=\"kv compact\"><tbody>");
	kv_row(b, "Primary domain", json_string_value(json_object_get(p, "domain")));
	evbuffer_add_printf(b, "<tr><th>Additional domains</th><td>");
	if (json_array_size(json_object_get(p, "additional_domains")))
		web_join(b, json_object_get(p, "additional_domains"), ", ");
	else
		evbuffer_add_printf(b, "<span class=\"muted\">none</span>");
	evbuffer_add_printf(b, "</td></tr>");
	kv_row(b, "Partner type", web_word(web_text_of(p, "partner_type", buf, sizeof(buf))));
	kv_row(b, "TLS", web_word(web_text_of(p, "tls", buf, sizeof(buf))));
	kv_row(b, "SASL", web_word(web_text_of(p, "sasl", buf, sizeof(buf))));
	kv_row(b, "Dialback", web_word(web_text_of(p, "dialback", buf, sizeof(buf))));
	kv_row(b, "Keepalive", web_word(web_text_of(p, "keepalive", buf, sizeof(buf))));
	snprintf(buf, sizeof(buf), "%lld%s", num(p, "connection_limit"),
		 json_is_true(json_object_get(p, "connection_limit_default")) ? " (gateway default)"
									      : "");
	kv_row(b, "Connection limit", buf);
	const char *proxy = json_string_value(json_object_get(p, "proxy_fqdn"));
	kv_row(b, "Proxy FQDN", proxy && *proxy ? proxy : "none (DNS SRV)");
	kv_row(b, "Federation",
	       json_is_false(json_object_get(p, "enabled")) ? "Suspended" : "Enabled");
	kv_row(b, "Bidirectional streams", web_word(web_text_of(p, "bidi", buf, sizeof(buf))));
	kv_row(b, "DANE", web_word(web_text_of(p, "dane", buf, sizeof(buf))));
	evbuffer_add_printf(b, "<tr><th>Public-key pins</th><td id=\"pins\">");
	if (json_array_size(json_object_get(p, "pins")))
		web_join(b, json_object_get(p, "pins"), "<br>");
	else
		evbuffer_add_printf(b, "<span class=\"muted\">none (any key the CAs "
				       "accept)</span>");
	evbuffer_add_printf(b, "</td></tr>");
	const char *desc = json_string_value(json_object_get(p, "description"));
	if (desc && *desc)
		kv_row(b, "Description", desc);
	evbuffer_add_printf(b, "<tr><th>Allowed methods</th><td id=\"allowed-methods\">");
	if (json_array_size(json_object_get(p, "allowed_methods")))
		web_join(b, json_object_get(p, "allowed_methods"), "<br>");
	else
		evbuffer_add_printf(b, "<span class=\"muted\">none</span>");
	evbuffer_add_printf(b, "</td></tr></tbody></table>");
	json_t *w = json_object_get(p, "warnings");
	if (json_array_size(w))
		web_alert(b, "warning", "partner-warnings", "Warnings:", w);
	evbuffer_add_printf(b, "</section>");
}

static void streams_card(struct evbuffer *b, json_t *p, json_t *rows)
{
	size_t i, shown = 0;
	json_t *r;
	char age[32];
	evbuffer_add_printf(b, "<section class=\"card\" id=\"streams\"><h2>Live streams</h2>");
	json_array_foreach(rows, i, r)
	{
		const char *dir = json_string_value(json_object_get(r, "direction"));
		if (!web_partner_owns_row(p, r) || !dir ||
		    (strcmp(dir, "in") != 0 && strcmp(dir, "out") != 0))
			continue;
		if (!shown++)
			evbuffer_add_printf(
				b, "<table class=\"compact\" id=\"stream-list\"><thead><tr>"
				   "<th>Direction</th><th>Domains</th><th>Method</th><th>TLS</th>"
				   "<th>Age</th><th class=\"num\">Stanzas in</th><th class=\"num\">"
				   "Stanzas out</th></tr></thead><tbody>");
		bool in = strcmp(dir, "in") == 0;
		const char *state = json_string_value(json_object_get(r, "state"));
		evbuffer_add_printf(b, "<tr><td>%s", in ? "In" : "Out");
		if (state && strcmp(state, "ready") != 0) {
			evbuffer_add_printf(b, " <span class=\"muted\">(");
			http_html(b, state);
			evbuffer_add_printf(b, ")</span>");
		}
		/* The partner's side first, the arrow the way stanzas go. */
		evbuffer_add_printf(b, "</td><td>");
		http_html(b, json_string_value(json_object_get(r, "remote")));
		evbuffer_add_printf(b, " %s ", in ? "&rarr;" : "&larr;");
		http_html(b, json_string_value(json_object_get(r, "local")));
		evbuffer_add_printf(b, "</td><td>");
		http_html(b, json_string_value(json_object_get(r, "method")));
		evbuffer_add_printf(b, "</td><td>");
		http_html(b, json_string_value(json_object_get(r, "tls")));
		evbuffer_add_printf(b,
				    "</td><td>%s</td><td class=\"num\">%lld</td>"
				    "<td class=\"num\">%lld</td></tr>",
				    age_text(num(r, "age"), age, sizeof(age)), num(r, "stanzas_in"),
				    num(r, "stanzas_out"));
	}
	if (shown)
		evbuffer_add_printf(b, "</tbody></table>");
	else
		evbuffer_add_printf(b, "<p class=\"muted\" id=\"no-streams\">No stream is up: one "
				       "starts when a stanza goes to the partner or its server "
				       "connects.</p>");
	evbuffer_add_printf(b, "</section>");
}

static void failure_card(struct evbuffer *b, json_t *p, json_t *rows, time_t now)
{
	size_t i, shown = 0;
	json_t *r;
	char t[40];
	evbuffer_add_printf(b, "<section class=\"card\" id=\"failure\"><h2>Failure record</h2>");
	json_array_foreach(rows, i, r)
	{
		json_t *f = json_object_get(r, "last_failure");
		if (!f || !web_partner_owns_row(p, r))
			continue;
		bool failing = row_failing(r);
		shown++;
		evbuffer_add_printf(b, "<table class=\"kv compact failure\"><tbody>");
		evbuffer_add_printf(b, "<tr><th>Route</th><td>");
		http_html(b, json_string_value(json_object_get(r, "local")));
		evbuffer_add_printf(b, " &rarr; ");
		http_html(b, json_string_value(json_object_get(r, "remote")));
		evbuffer_add_printf(b, " <span class=\"health %s\">%s</span></td></tr>",
				    failing ? "health-failing" : "health-connected",
				    failing ? "Failing" : "Recovered");
		kv_row(b, "First failure",
		       when(json_string_value(json_object_get(f, "first")), now, t, sizeof(t)));
		kv_row(b, "Last attempt",
		       when(json_string_value(json_object_get(f, "at")), now, t, sizeof(t)));
		evbuffer_add_printf(b, "<tr><th>Attempts</th><td>%lld</td></tr>",
				    num(f, "attempts"));
		evbuffer_add_printf(b, "<tr><th>Reason%s</th><td class=\"reason\">",
				    json_is_true(json_object_get(f, "by_peer")) ? " (the peer's)"
										: "");
		http_html(b, json_string_value(json_object_get(f, "reason")));
		evbuffer_add_printf(b, "</td></tr>");
		if (failing) {
			long long in = num(f, "retry_in");
			char next[80];
			if (in > 0)
				snprintf(next, sizeof(next), "in %lld s, at %s", in,
					 when(json_string_value(json_object_get(f, "next_retry")),
					      now, t, sizeof(t)));
			else
				snprintf(next, sizeof(next), "with the next stanza");
			evbuffer_add_printf(b, "<tr><th>Next retry</th><td id=\"next-retry\">");
			http_html(b, next);
			evbuffer_add_printf(b, "</td></tr>");
		} else {
			kv_row(b, "Recovered",
			       when(json_string_value(json_object_get(f, "recovered")), now, t,
				    sizeof(t)));
		}
		evbuffer_add_printf(b,
				    "<tr><th>Queued</th><td>%lld</td></tr>"
				    "<tr><th>Bounced</th><td>%lld</td></tr></tbody></table>",
				    num(f, "queued") ? num(f, "queued") : num(r, "queued"),
				    num(f, "bounced"));
	}
	if (!shown)
		evbuffer_add_printf(
			b, "<p class=\"muted\" id=\"no-failure\">No failure on record.</p>");
	evbuffer_add_printf(b, "</section>");
}

/* A button that posts one action for domain. */
static void action_button(struct evbuffer *b, struct hreq *h, const char *action,
			  const char *domain, const char *id, const char *label, const char *cls)
{
	evbuffer_add_printf(b, "<form method=\"post\" action=\"/partners/%s\">", action);
	web_csrf_field(b, h);
	evbuffer_add_printf(b, "<input type=\"hidden\" name=\"domain\" value=\"");
	http_html(b, domain);
	evbuffer_add_printf(b, "\"><button type=\"submit\" id=\"%s\"%s>%s</button></form>", id, cls,
			    label);
}

static void span_links(struct evbuffer *b, const char *domain, const struct span *cur)
{
	evbuffer_add_printf(b, "<span class=\"spans\">Last");
	for (size_t i = 0; i < FG_ARRAY_LEN(spans); i++) {
		if (&spans[i] == cur) {
			evbuffer_add_printf(b, "<b>%s</b>", spans[i].label);
			continue;
		}
		evbuffer_add_printf(b, "<a href=\"" VIEW_PATH);
		http_url(b, domain);
		evbuffer_add_printf(b, "&amp;span=%s\" id=\"span-%s\">%s</a>", spans[i].name,
				    spans[i].name, spans[i].label);
	}
	evbuffer_add_printf(b, "</span>");
}

/* h->keep: {"domain", "partner", "status", "errors"?}; body: the
 * history's reply. */
static void view_render(struct hreq *h, int status, json_t *body)
{
	json_t *p = json_object_get(h->keep, "partner");
	json_t *rows = json_object_get(h->keep, "status");
	json_t *hist = status == CMD_OK ? json_object_get(body, "result") : NULL;
	json_t *errors = json_object_get(h->keep, "errors");
	const char *domain = json_string_value(json_object_get(p, "domain"));
	time_t now = time(NULL);
	const struct span *sp = span_of(h);
	char title[300];
	snprintf(title, sizeof(title), "Partner %s", domain ? domain : "");
	struct evbuffer *b = web_page_begin(h, "/partners", title);
	if (!b) {
		json_decref(body);
		http_send(h, 503, NULL, NULL);
		return;
	}
	web_flash(h, b);
	if (json_array_size(errors))
		web_alert(b, "error", "errors", "Nothing was changed:", errors);
	char health[300], detail[700];
	enum web_health hl =
		web_partner_health(p, rows, health, sizeof(health), detail, sizeof(detail));
	evbuffer_add_printf(b, "<div class=\"titlebar\">");
	web_health_badge(b, hl, "health", health, detail);
	evbuffer_add_printf(b, "<a href=\"/partners\">All partners</a>"
			       "<span class=\"buttons\">");
	if (!h->read_only) {
		action_button(b, h, "retry", domain, "retry", "Retry now", "");
		if (hl == WEB_HEALTH_SUSPENDED)
			action_button(b, h, "resume", domain, "resume", "Resume", "");
		else
			action_button(b, h, "suspend", domain, "suspend", "Suspend",
				      " class=\"secondary\"");
		evbuffer_add_printf(b, "<a class=\"button secondary\" id=\"edit\" "
				       "href=\"/partners/edit?domain=");
		http_url(b, domain);
		evbuffer_add_printf(b, "\">Edit</a><a class=\"button danger\" id=\"delete\" "
				       "href=\"/partners/delete?domain=");
		http_url(b, domain);
		evbuffer_add_printf(b, "\">Delete</a>");
	} else {
		evbuffer_add_printf(b, "<a class=\"button secondary\" id=\"view-settings\" "
				       "href=\"/partners/edit?domain=");
		http_url(b, domain);
		evbuffer_add_printf(b, "\">Settings form</a>");
	}
	evbuffer_add_printf(b, "</span></div>");

	evbuffer_add_printf(b, "<div class=\"cards\"><div>");
	settings_card(b, p);
	evbuffer_add_printf(b, "</div><div>");
	streams_card(b, p, rows);
	failure_card(b, p, rows, now);
	evbuffer_add_printf(b, "</div></div>");

	evbuffer_add_printf(b, "<section class=\"card\" id=\"traffic-card\"><h2>Stanzas per "
			       "minute");
	span_links(b, domain, sp);
	evbuffer_add_printf(b, "</h2>");
	if (hist)
		traffic_svg(b, hist, sp);
	else
		evbuffer_add_printf(b, "<p class=\"muted\">The daemon keeps no history for this "
				       "partner.</p>");
	evbuffer_add_printf(b, "</section><section class=\"card\" id=\"events-card\">"
			       "<h2>Connection events</h2>");
	if (hist) {
		events_svg(b, hist, sp, now);
		events_table(b, hist, now);
	}
	evbuffer_add_printf(b, "</section>");
	json_decref(body);
	web_page_end(h, json_array_size(errors) ? 422 : 200, b);
}

static void view_got_status(struct hreq *h, int status, json_t *body)
{
	json_t *rows = status == CMD_OK ? json_object_get(body, "result") : NULL;
	json_object_set_new(h->keep, "status", rows ? json_incref(rows) : json_array());
	json_decref(body);
	json_t *params = json_pack("{s:s}", "domain", web_val(h->keep, "domain"));
	http_cmd(h, "partner history", params, false, view_render);
}

static void view_got_partner(struct hreq *h, int status, json_t *body)
{
	if (status != CMD_OK) {
		web_cmd_failed(h, status, body);
		return;
	}
	json_t *p = json_object_get(body, "result");
	json_object_set(h->keep, "partner", p);
	/* An additional domain shows its partner: the primary from now on. */
	json_object_set(h->keep, "domain", json_object_get(p, "domain"));
	json_decref(body);
	http_cmd(h, "status", json_object(), false, view_got_status);
}

/* The page for domain; errors (taken, may be NULL) from a refused action. */
static void view(struct hreq *h, const char *domain, json_t *errors)
{
	json_decref(h->keep);
	h->keep = json_pack("{s:s}", "domain", domain);
	if (errors)
		json_object_set_new(h->keep, "errors", errors);
	http_cmd(h, "partner get", json_pack("{s:s}", "domain", domain), false, view_got_partner);
}

static void redirect_to_view(struct hreq *h, const char *domain)
{
	struct evbuffer *u = evbuffer_new();
	char loc[1500] = "/partners";
	if (u) {
		evbuffer_add_printf(u, VIEW_PATH);
		http_url(u, domain);
		size_t n = evbuffer_get_length(u);
		if (n < sizeof(loc)) {
			evbuffer_copyout(u, loc, n);
			loc[n] = '\0';
		}
		evbuffer_free(u);
	}
	http_redirect(h, loc);
}

/* An action's answer: a flash message and back to the page, or the page
 * again with the command's errors. */
static void action_done(struct hreq *h, int status, json_t *body)
{
	char domain[1100];
	snprintf(domain, sizeof(domain), "%s", web_val(h->keep, "domain"));
	if (status != CMD_OK) {
		json_t *errors = json_incref(json_object_get(body, "errors"));
		json_decref(body);
		view(h, domain, errors ? errors : json_array());
		return;
	}
	const char *action = web_val(h->keep, "action");
	char msg[1400];
	if (strcmp(action, "retry") == 0) {
		long long started = num(json_object_get(body, "result"), "started");
		snprintf(msg, sizeof(msg), "Retry now: %lld route(s) started an attempt. %s",
			 started, web_val(body, "message"));
	} else if (strcmp(action, "suspend") == 0) {
		snprintf(msg, sizeof(msg),
			 "Suspended %.300s: its streams are closed and stanzas to it bounce until "
			 "you resume it.",
			 domain);
	} else {
		snprintf(msg, sizeof(msg), "Resumed %.300s: federation with it is allowed again.",
			 domain);
	}
	json_t *f = json_pack("{s:s}", "message", msg);
	json_object_set(f, "warnings", json_object_get(body, "warnings"));
	http_flash_set(h, f);
	json_decref(body);
	redirect_to_view(h, domain);
}

static void act(struct hreq *h, const char *action)
{
	const char *domain = http_form(h, "domain");
	if (!domain || !*domain) {
		web_error(h, 400, "Say which partner: the form has no domain.");
		return;
	}
	json_decref(h->keep);
	h->keep = json_pack("{s:s,s:s}", "domain", domain, "action", action);
	if (strcmp(action, "retry") == 0)
		http_cmd(h, "partner retry", json_pack("{s:s}", "domain", domain), false,
			 action_done);
	else
		http_cmd(h, "partner set",
			 json_pack("{s:s,s:b}", "domain", domain, "enabled",
				   strcmp(action, "resume") == 0),
			 false, action_done);
}

bool web_partner_page_route(struct hreq *h, bool post)
{
	static const char *const actions[] = {"retry", "suspend", "resume"};
	if (!post) {
		if (strcmp(h->path, "/partners/view") != 0)
			return false;
		const char *domain = http_query(h, "domain");
		if (!domain || !*domain) {
			web_error(h, 400, "Say which partner: /partners/view?domain=DOMAIN.");
			return true;
		}
		view(h, domain, NULL);
		return true;
	}
	for (size_t i = 0; i < FG_ARRAY_LEN(actions); i++) {
		if (strncmp(h->path, "/partners/", 10) == 0 &&
		    strcmp(h->path + 10, actions[i]) == 0) {
			act(h, actions[i]);
			return true;
		}
	}
	return false;
}

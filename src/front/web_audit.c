/* The audit log (/audit). */
#include "web_page.h"

#include "fg.h"
#include "policy_json.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Changes per page of the log. */
enum { AUDIT_PAGE = 50 };

const char web_css_audit[] =
	".pager{margin:.6em 0}.pager a,.pager span{margin-right:1em}"
	"#audit td.when{white-space:nowrap}"
	"#audit td.changes{overflow-wrap:anywhere;font-size:.92em}"
	"#audit .key{color:#3a4a5a;font-weight:600}#audit td:nth-child(4){white-space:nowrap}";

/* A record made or removed: its values in one line ("tls required,
 * sasl optional, ..."), empty ones left out; a change: one line a key,
 * before and after. */
struct changes {
	struct evbuffer *b;
	bool whole; /* made or removed: values only */
	size_t n;
};

static bool empty_value(json_t *x)
{
	return !x || json_is_null(x) || (json_is_string(x) && !*json_string_value(x)) ||
	       (json_is_array(x) && json_array_size(x) == 0);
}

static void show_change(void *ud, const char *key, json_t *bv, json_t *av)
{
	struct changes *c = ud;
	struct evbuffer *b = c->b;
	if (c->whole) {
		json_t *x = av ? av : bv;
		if (empty_value(x))
			return;
		evbuffer_add_printf(b, "%s<span class=\"key\">", c->n++ ? ", " : "");
		http_html(b, key);
		evbuffer_add_printf(b, "</span> ");
		web_cell(b, x);
		return;
	}
	evbuffer_add_printf(b, "<span class=\"key\">");
	http_html(b, key);
	evbuffer_add_printf(b, "</span>: ");
	if (bv)
		web_cell(b, bv);
	else
		evbuffer_add_printf(b, "-");
	evbuffer_add_printf(b, " &rarr; ");
	if (av)
		web_cell(b, av);
	else
		evbuffer_add_printf(b, "-");
	evbuffer_add_printf(b, "<br>");
}

static void show_changes(struct evbuffer *b, json_t *before, json_t *after)
{
	bool made = empty_value(before), removed = empty_value(after);
	struct changes c = {.b = b, .whole = made != removed};
	if (c.whole)
		evbuffer_add_printf(b, "<span class=\"muted\">%s</span> ",
				    made ? "made with" : "removed; it had");
	policy_json_diff(before, after, show_change, &c);
}

/* "2026-12-06T08:01:02.345Z" as "2026-12-06 08:01:02": the header says
 * UTC, the milliseconds are noise here. */
static void when(struct evbuffer *b, const char *iso)
{
	char t[20];
	snprintf(t, sizeof(t), "%s", iso ? iso : "");
	if (strlen(t) == 19 && t[10] == 'T')
		t[10] = ' ';
	http_html(b, t);
}

/* A link to page n of the audit log with the filter kept. */
static void page_link(struct evbuffer *b, struct hreq *h, long n, const char *id, const char *text)
{
	const char *q = web_filter_query(h);
	evbuffer_add_printf(b, "<a id=\"%s\" href=\"/audit?page=%ld", id, n);
	if (q) {
		evbuffer_add_printf(b, "&amp;q=");
		http_url(b, q);
	}
	evbuffer_add_printf(b, "\">%s</a>", text);
}

/* "Newer", "page N of M", "Older": the command counted the matches. */
static void pager(struct evbuffer *b, struct hreq *h, long page, long pages)
{
	evbuffer_add_printf(b, "<p class=\"pager\">");
	if (page > 1)
		page_link(b, h, page - 1, "newer", "&larr; Newer");
	else
		evbuffer_add_printf(b, "<span class=\"muted\">&larr; Newer</span>");
	evbuffer_add_printf(b, " <span id=\"page\">page %ld of %ld</span> ", page, pages);
	if (page < pages)
		page_link(b, h, page + 1, "older", "Older &rarr;");
	else
		evbuffer_add_printf(b, "<span class=\"muted\">Older &rarr;</span>");
	evbuffer_add_printf(b, "</p>");
}

static long page_asked(struct hreq *h)
{
	const char *s = http_query(h, "page");
	char *end;
	long n = s ? strtol(s, &end, 10) : 1;
	return s && (*end || n < 1 || n > 1000000) ? 1 : n;
}

static void audit_got(struct hreq *h, int status, json_t *body)
{
	if (status != CMD_OK) {
		web_cmd_failed(h, status, body);
		return;
	}
	struct evbuffer *b = web_page_begin(h, "/audit", "Audit log");
	if (!b) {
		json_decref(body);
		http_send(h, 503, NULL, NULL);
		return;
	}
	json_t *rows = json_object_get(body, "result");
	long total = (long)json_integer_value(json_object_get(body, "total"));
	long pages = total > 0 ? (total + AUDIT_PAGE - 1) / AUDIT_PAGE : 1;
	long page = page_asked(h);
	evbuffer_add_printf(b, "<p class=\"muted\">Every change, newest first: who, when, "
			       "through which interface, before and after.</p>");
	web_filter_box(b, h, "/audit", "who, partner, setting, value...");
	evbuffer_add_printf(b, "<p id=\"count\">%ld change%s%s.</p>", total, total == 1 ? "" : "s",
			    web_filter_query(h) ? " match the filter" : " recorded");
	if (json_array_size(rows) == 0 && total > 0)
		evbuffer_add_printf(b, "<p id=\"empty\">There is no page %ld; the log has %ld.</p>",
				    page, pages);
	pager(b, h, page, pages);
	evbuffer_add_printf(b, "<table id=\"audit\"><thead><tr><th class=\"when\">When (UTC)</th>"
			       "<th>Who</th><th>Interface</th><th>Action</th><th>Target</th>"
			       "<th>Changes</th></tr></thead><tbody>");
	for (size_t n = json_array_size(rows); n > 0; n--) {
		json_t *r = json_array_get(rows, n - 1);
		static const char *const cols[] = {"who", "interface", "action", "target"};
		evbuffer_add_printf(b, "<tr><td class=\"when\">");
		when(b, json_string_value(json_object_get(r, "at")));
		evbuffer_add_printf(b, "</td>");
		for (size_t i = 0; i < FG_ARRAY_LEN(cols); i++) {
			evbuffer_add_printf(b, "<td>");
			web_cell(b, json_object_get(r, cols[i]));
			evbuffer_add_printf(b, "</td>");
		}
		evbuffer_add_printf(b, "<td class=\"changes\">");
		show_changes(b, json_object_get(r, "before"), json_object_get(r, "after"));
		evbuffer_add_printf(b, "</td></tr>");
	}
	evbuffer_add_printf(b, "</tbody></table>");
	if (json_array_size(rows) > 10)
		pager(b, h, page, pages);
	json_decref(body);
	web_page_end(h, 200, b);
}

bool web_audit_route(struct hreq *h, bool post)
{
	if (post || strcmp(h->path, "/audit") != 0)
		return false;
	/* The command filters, then pages from the newest: page 2 of a
	 * filtered log is the next 50 matches, not 50 rows of which some
	 * match. */
	json_t *params = json_pack("{s:I, s:I}", "limit", (json_int_t)AUDIT_PAGE, "offset",
				   (json_int_t)((page_asked(h) - 1) * AUDIT_PAGE));
	const char *q = web_filter_query(h);
	if (q)
		json_object_set_new(params, "filter", json_string(q));
	http_cmd(h, "audit", params, false, audit_got);
	return true;
}

/* The audit log (/audit). */
#include "web_page.h"

#include "fg.h"
#include "policy_json.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

const char web_css_audit[] = "";

static void show_change(void *ud, const char *key, json_t *bv, json_t *av)
{
	struct evbuffer *b = ud;
	http_html(b, key);
	evbuffer_add_printf(b, ": ");
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
	evbuffer_add_printf(b, "<p class=\"muted\">Every change, newest first: who, when, "
			       "through which interface, before and after.</p>"
			       "<table id=\"audit\"><thead><tr><th>When (UTC)</th><th>Who</th>"
			       "<th>Interface</th><th>Action</th><th>Target</th><th>Changes</th>"
			       "</tr></thead><tbody>");
	for (size_t n = json_array_size(rows); n > 0; n--) {
		json_t *r = json_array_get(rows, n - 1);
		static const char *const cols[] = {"at", "who", "interface", "action", "target"};
		evbuffer_add_printf(b, "<tr>");
		for (size_t i = 0; i < FG_ARRAY_LEN(cols); i++) {
			evbuffer_add_printf(b, "<td>");
			web_cell(b, json_object_get(r, cols[i]));
			evbuffer_add_printf(b, "</td>");
		}
		evbuffer_add_printf(b, "<td>");
		policy_json_diff(json_object_get(r, "before"), json_object_get(r, "after"),
				 show_change, b);
		evbuffer_add_printf(b, "</td></tr>");
	}
	evbuffer_add_printf(b, "</tbody></table>");
	json_decref(body);
	web_page_end(h, 200, b);
}

bool web_audit_route(struct hreq *h, bool post)
{
	if (post || strcmp(h->path, "/audit") != 0)
		return false;
	http_cmd(h, "audit", json_object(), false, audit_got);
	return true;
}

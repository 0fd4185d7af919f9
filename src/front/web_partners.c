/* The partner list (/partners): every partner with its settings in
 * Lync's words and its health now (connected, failing, suspended, idle),
 * a filter box, each domain a link to its page (web_partner_page.c, also
 * routed from here). */
#include "web_page.h"
#include "web_partner_page.h"

#include "fg.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

const char web_css_partners[] =
	"#partners td.domain a{font-weight:600}"
	"#partners td.health-cell{min-width:13em;max-width:22em}"
	"#partners .health{white-space:normal;border-radius:.6em}" WEB_CSS_PARTNER_PAGE;

/* ---- partners: the list ---- */

static void partners_render(struct hreq *h, int status, json_t *body)
{
	json_t *partners = json_object_get(h->keep, "result");
	json_t *streams = status == CMD_OK ? json_object_get(body, "result") : NULL;
	struct evbuffer *b = web_page_begin(h, "/partners", "XMPP Federated Partners");
	if (!b) {
		json_decref(body);
		http_send(h, 503, NULL, NULL);
		return;
	}
	web_flash(h, b);
	if (!h->read_only)
		evbuffer_add_printf(b, "<p class=\"toolbar\"><a class=\"button\" id=\"new\" "
				       "href=\"/partners/new\">New</a></p>");
	if (json_array_size(partners) == 0) {
		evbuffer_add_printf(b, "<p id=\"empty\">No partners: federation is off.</p>");
		json_decref(body);
		web_page_end(h, 200, b);
		return;
	}
	web_filter_box(b, h, "/partners", "Filter partners");
	evbuffer_add_printf(b, "<table id=\"partners\"><thead><tr><th>Domain</th>"
			       "<th>Additional domains</th><th>Type</th><th>TLS</th><th>SASL</th>"
			       "<th>Dialback</th><th>Allowed methods</th><th>Health</th>"
			       "<th>Actions</th></tr></thead><tbody>");
	size_t i, shown = 0;
	json_t *p;
	char num[32], health[300], detail[700];
	json_array_foreach(partners, i, p)
	{
		const char *domain = json_string_value(json_object_get(p, "domain"));
		enum web_health hl = web_partner_health(p, streams, health, sizeof(health), detail,
							sizeof(detail));
		/* The filter sees what the row shows: the record and its health. */
		json_t *row = json_deep_copy(p);
		json_object_set_new(row, "health", json_string(health));
		bool match = web_filter_match(h, row);
		json_decref(row);
		if (!match)
			continue;
		shown++;
		evbuffer_add_printf(b, "<tr data-domain=\"");
		http_html(b, domain);
		evbuffer_add_printf(b, "\"><td class=\"domain\"><a href=\"/partners/view?domain=");
		http_url(b, domain);
		evbuffer_add_printf(b, "\">");
		http_html(b, domain);
		evbuffer_add_printf(b, "</a>");
		json_t *w = json_object_get(p, "warnings");
		if (json_array_size(w)) {
			/* Folded: the default settings carry one, and a paragraph
			 * in every row would make the list unreadable. */
			evbuffer_add_printf(b,
					    "<details class=\"row-warning\"><summary>%zu "
					    "warning%s</summary>",
					    json_array_size(w), json_array_size(w) == 1 ? "" : "s");
			web_join(b, w, "<br>");
			evbuffer_add_printf(b, "</details>");
		}
		evbuffer_add_printf(b, "</td><td>");
		web_join(b, json_object_get(p, "additional_domains"), ", ");
		evbuffer_add_printf(b, "</td><td>");
		http_html(b, web_word(web_text_of(p, "partner_type", num, sizeof(num))));
		evbuffer_add_printf(b, "</td><td>");
		http_html(b, web_word(web_text_of(p, "tls", num, sizeof(num))));
		evbuffer_add_printf(b, "</td><td>");
		http_html(b, web_word(web_text_of(p, "sasl", num, sizeof(num))));
		evbuffer_add_printf(b, "</td><td>");
		http_html(b, web_word(web_text_of(p, "dialback", num, sizeof(num))));
		evbuffer_add_printf(b, "</td><td>");
		web_join(b, json_object_get(p, "allowed_methods"), ", ");
		evbuffer_add_printf(b, "</td><td class=\"health-cell\">");
		web_health_badge(b, hl, NULL, health, detail);
		evbuffer_add_printf(b,
				    "</td><td class=\"actions\"><a href=\"/partners/edit?domain=");
		http_url(b, domain);
		evbuffer_add_printf(b, "\">%s</a>", h->read_only ? "View" : "Edit");
		if (!h->read_only) {
			evbuffer_add_printf(b, " <a href=\"/partners/delete?domain=");
			http_url(b, domain);
			evbuffer_add_printf(b, "\">Delete</a>");
		}
		evbuffer_add_printf(b, "</td></tr>");
	}
	evbuffer_add_printf(b, "</tbody></table>");
	if (!shown)
		evbuffer_add_printf(b, "<p class=\"muted\" id=\"no-match\">No partner matches the "
				       "filter.</p>");
	json_decref(body);
	web_page_end(h, 200, b);
}

static void partners_got(struct hreq *h, int status, json_t *body)
{
	if (status != CMD_OK) {
		web_cmd_failed(h, status, body);
		return;
	}
	h->keep = body;
	http_cmd(h, "status", json_object(), false, partners_render);
}

bool web_partners_route(struct hreq *h, bool post)
{
	if (web_partner_page_route(h, post))
		return true;
	if (post || strcmp(h->path, "/partners") != 0)
		return false;
	http_cmd(h, "partner get", json_object(), false, partners_got);
	return true;
}

/* The partner list (/partners). */
#include "web_page.h"

#include "fg.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

const char web_css_partners[] = "";

/* ---- partners: the list ---- */

static bool row_is_partner(json_t *row, json_t *partner)
{
	const char *remote = json_string_value(json_object_get(row, "remote"));
	if (!remote)
		return false;
	if (strcmp(remote, json_string_value(json_object_get(partner, "domain"))) == 0)
		return true;
	size_t i;
	json_t *d;
	json_array_foreach(json_object_get(partner, "additional_domains"), i,
			   d) if (strcmp(remote, json_string_value(d)) == 0) return true;
	return false;
}

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
	evbuffer_add_printf(b, "<table id=\"partners\"><thead><tr><th>Domain</th>"
			       "<th>Additional domains</th><th>Type</th><th>TLS</th><th>SASL</th>"
			       "<th>Dialback</th><th>Allowed methods</th><th>Live streams</th>"
			       "<th>Last error</th><th>Actions</th></tr></thead><tbody>");
	size_t i;
	json_t *p;
	char num[32];
	json_array_foreach(partners, i, p)
	{
		const char *domain = json_string_value(json_object_get(p, "domain"));
		unsigned live = 0;
		const char *last_error = "";
		size_t k;
		json_t *r;
		json_array_foreach(streams, k, r)
		{
			if (!row_is_partner(r, p))
				continue;
			live++;
			const char *e = json_string_value(json_object_get(r, "last_error"));
			if (e && *e)
				last_error = e;
		}
		evbuffer_add_printf(b, "<tr data-domain=\"");
		http_html(b, domain);
		evbuffer_add_printf(b, "\"><td class=\"domain\">");
		http_html(b, domain);
		json_t *w = json_object_get(p, "warnings");
		if (json_array_size(w)) {
			evbuffer_add_printf(b, "<div class=\"row-warning\">");
			web_join(b, w, "<br>");
			evbuffer_add_printf(b, "</div>");
		}
		evbuffer_add_printf(b, "</td><td>");
		web_join(b, json_object_get(p, "additional_domains"), ", ");
		evbuffer_add_printf(b, "</td><td>");
		http_html(b, web_text_of(p, "partner_type", num, sizeof(num)));
		evbuffer_add_printf(b, "</td><td>");
		http_html(b, web_text_of(p, "tls", num, sizeof(num)));
		evbuffer_add_printf(b, "</td><td>");
		http_html(b, web_text_of(p, "sasl", num, sizeof(num)));
		evbuffer_add_printf(b, "</td><td>");
		http_html(b, web_text_of(p, "dialback", num, sizeof(num)));
		evbuffer_add_printf(b, "</td><td>");
		web_join(b, json_object_get(p, "allowed_methods"), ", ");
		evbuffer_add_printf(b, "</td><td>%u</td><td>", live);
		http_html(b, last_error);
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
	if (post || strcmp(h->path, "/partners") != 0)
		return false;
	http_cmd(h, "partner get", json_object(), false, partners_got);
	return true;
}

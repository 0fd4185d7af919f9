/* Federation status (/status) and who tried to federate (/refused). */
#include "web_page.h"

#include "fg.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

const char web_css_status[] = "";

static void status_got(struct hreq *h, int status, json_t *body)
{
	if (status != CMD_OK) {
		web_cmd_failed(h, status, body);
		return;
	}
	struct evbuffer *b = web_page_begin(h, "/status", "Federation status");
	if (!b) {
		json_decref(body);
		http_send(h, 503, NULL, NULL);
		return;
	}
	json_t *rows = json_object_get(body, "result");
	static const char *const cols[] = {
		"direction",   "local",	      "remote",	    "state",	 "method",
		"tls",	       "certificate", "bytes_in",   "bytes_out", "stanzas_in",
		"stanzas_out", "age",	      "last_error", NULL,
	};
	/* Routes with a failure on record: a partner that is down shows here
	 * with what went wrong and when the next attempt is, even while no
	 * stream to it exists. */
	static const char *const fcols[] = {
		"partner_domain", "local",	  "state",    "failed_at", "attempts",
		"reason",	  "next_attempt", "retry_in", "queued",	   NULL,
	};
	json_t *streams = json_array(), *failing = json_array();
	size_t i;
	json_t *r;
	json_array_foreach(rows, i, r)
	{
		json_t *lf = json_object_get(r, "last_failure");
		const char *dir = json_string_value(json_object_get(r, "direction"));
		if (!dir || strcmp(dir, "route") != 0)
			json_array_append(streams, r);
		if (!lf)
			continue;
		json_t *f = json_object();
		json_object_set(f, "partner_domain", json_object_get(r, "remote"));
		json_object_set(f, "local", json_object_get(r, "local"));
		json_object_set(f, "state", json_object_get(r, "state"));
		json_object_set(f, "failed_at", json_object_get(lf, "at"));
		json_object_set(f, "attempts", json_object_get(lf, "attempts"));
		json_object_set(f, "reason", json_object_get(lf, "reason"));
		json_object_set(f, "next_attempt", json_object_get(lf, "next_retry"));
		json_object_set(f, "retry_in", json_object_get(lf, "retry_in"));
		json_object_set(f, "queued", json_object_get(r, "queued"));
		json_array_append_new(failing, f);
	}
	evbuffer_add_printf(b, "<h2>Failing partners</h2>");
	if (json_array_size(failing) == 0)
		evbuffer_add_printf(b, "<p id=\"no-failures\">No partner has failed recently.</p>");
	else
		web_table(b, "failing", failing, fcols);
	evbuffer_add_printf(b, "<h2>Streams</h2>");
	if (json_array_size(streams) == 0)
		evbuffer_add_printf(b, "<p id=\"empty\">No server-to-server streams now.</p>");
	else
		web_table(b, "streams", streams, cols);
	json_decref(streams);
	json_decref(failing);
	json_decref(body);
	web_page_end(h, 200, b);
}

/* Non-partners that knocked (status --refused), each with the way to
 * make it a partner: the New form with its domain filled in. */
static void refused_got(struct hreq *h, int status, json_t *body)
{
	if (status != CMD_OK) {
		web_cmd_failed(h, status, body);
		return;
	}
	struct evbuffer *b = web_page_begin(h, "/refused", "Who tried to federate");
	if (!b) {
		json_decref(body);
		http_send(h, 503, NULL, NULL);
		return;
	}
	json_t *rows = json_object_get(body, "result");
	static const char *const cols[] = {"domain", "inbound", "outbound",
					   "first",  "last",	"last_from"};
	static const char *const heads[] = {
		"Domain", "Inbound streams", "Stanzas from local users", "First",
		"Last",	  "Last from"};
	evbuffer_add_printf(b, "<p>Domains that are not partners and tried to federate since "
			       "the daemon started: servers that opened a stream as them, and "
			       "local users who wrote to them. Both were refused.</p>");
	if (json_array_size(rows) == 0) {
		evbuffer_add_printf(b, "<p id=\"empty\">No domain has been refused.</p>");
	} else {
		evbuffer_add_printf(b, "<table id=\"refused\"><thead><tr>");
		for (size_t c = 0; c < FG_ARRAY_LEN(heads); c++)
			evbuffer_add_printf(b, "<th>%s</th>", heads[c]);
		evbuffer_add_printf(b, "%s</tr></thead><tbody>", h->read_only ? "" : "<th></th>");
		size_t i;
		json_t *r;
		json_array_foreach(rows, i, r)
		{
			evbuffer_add_printf(b, "<tr>");
			for (size_t c = 0; c < FG_ARRAY_LEN(cols); c++) {
				evbuffer_add_printf(b, "<td>");
				web_cell(b, json_object_get(r, cols[c]));
				evbuffer_add_printf(b, "</td>");
			}
			if (!h->read_only) {
				evbuffer_add_printf(
					b, "<td><a class=\"add\" href=\"/partners/new?domain=");
				http_url(b, json_string_value(json_object_get(r, "domain")));
				evbuffer_add_printf(b, "\">Add as partner</a></td>");
			}
			evbuffer_add_printf(b, "</tr>");
		}
		evbuffer_add_printf(b, "</tbody></table>");
	}
	json_decref(body);
	web_page_end(h, 200, b);
}

bool web_status_route(struct hreq *h, bool post)
{
	if (post)
		return false;
	if (strcmp(h->path, "/status") == 0)
		http_cmd(h, "status", json_object(), false, status_got);
	else if (strcmp(h->path, "/refused") == 0)
		http_cmd(h, "status", json_pack("{s:b}", "refused", 1), false, refused_got);
	else
		return false;
	return true;
}

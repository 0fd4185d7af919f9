/* Gateway settings (/gateway). */
#include "web_page.h"

#include "fg.h"
#include "policy_json.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

const char web_css_gateway[] = "";

/* ---- gateway ---- */

static const struct {
	const char *key, *label, *hint;
} gw_fields[] = {
	{"connection_limit", "Connection limit", "most s2s streams in all"},
	{"partner_connection_limit", "Partner connection limit", "default per-partner limit"},
	{"keepalive_interval", "Keepalive interval", "seconds"},
	{"stream_establishment_timeout", "Stream establishment timeout", "seconds"},
	{"stream_inactivity_timeout", "Stream inactivity timeout", "seconds"},
	{"subscription_refresh_interval", "Subscription refresh interval", "seconds"},
};

static void gateway_form(struct hreq *h, int code, json_t *v, json_t *errors)
{
	struct evbuffer *b = web_page_begin(h, "/gateway", "Gateway settings");
	if (!b) {
		http_send(h, 503, NULL, NULL);
		return;
	}
	web_flash(h, b);
	if (json_array_size(errors))
		web_alert(b, "error", "errors", "Not committed; nothing was saved:", errors);
	evbuffer_add_printf(b, "<form class=\"record\" method=\"post\" action=\"/gateway\">");
	web_csrf_field(b, h);
	for (size_t i = 0; i < FG_ARRAY_LEN(gw_fields); i++)
		web_input(b, h, v, errors, gw_fields[i].key, gw_fields[i].label, "number",
			  gw_fields[i].hint, false);
	web_select_field(b, h, v, errors, "log_message_bodies", "Log message bodies", web_bools);
	web_field_start(b, "dialback_secret", "Dialback secret");
	evbuffer_add_printf(b, "<span class=\"hint\">");
	http_html(b, web_val(v, "dialback_secret"));
	evbuffer_add_printf(b, " (never shown; regenerate with <code>fedgate gateway set "
			       "--regenerate-dialback-secret</code>)</span></div>");
	if (!h->read_only)
		evbuffer_add_printf(b, "<p><button type=\"submit\" id=\"commit\">Commit</button>"
				       "</p>");
	evbuffer_add_printf(b, "</form>");
	web_page_end(h, code, b);
}

static json_t *strings_of(json_t *o)
{
	json_t *v = json_object();
	const char *k;
	json_t *x;
	char num[32];
	json_object_foreach(o, k, x)
	{
		const char *s = policy_json_text(x, num, sizeof(num));
		json_object_set_new(v, k, json_string(s ? s : ""));
	}
	return v;
}

static void gateway_got(struct hreq *h, int status, json_t *body)
{
	if (status != CMD_OK) {
		web_cmd_failed(h, status, body);
		return;
	}
	json_t *v = strings_of(json_object_get(body, "result"));
	gateway_form(h, 200, v, NULL);
	json_decref(v);
	json_decref(body);
}

static void gateway_done(struct hreq *h, int status, json_t *body)
{
	if (status == CMD_OK) {
		json_t *f = json_object();
		json_object_set_new(f, "message",
				    json_string("Committed: gateway settings "
						"changed."));
		json_object_set(f, "warnings", json_object_get(body, "warnings"));
		http_flash_set(h, f);
		json_decref(body);
		http_redirect(h, "/gateway");
		return;
	}
	json_t *v = json_incref(h->keep);
	json_object_set_new(v, "dialback_secret", json_string("(set)"));
	gateway_form(h, 422, v, json_object_get(body, "errors"));
	json_decref(v);
	json_decref(body);
}

static void gateway_commit(struct hreq *h)
{
	json_t *v = json_object(), *params = json_object();
	for (size_t i = 0; i < FG_ARRAY_LEN(gw_fields); i++) {
		const char *s = http_form(h, gw_fields[i].key);
		json_object_set_new(v, gw_fields[i].key, json_string(s ? s : ""));
		if (s)
			json_object_set_new(params, gw_fields[i].key, json_string(s));
	}
	const char *lb = http_form(h, "log_message_bodies");
	json_object_set_new(v, "log_message_bodies", json_string(lb ? lb : ""));
	if (lb)
		json_object_set_new(params, "log_message_bodies", json_string(lb));
	h->keep = v;
	http_cmd(h, "gateway set", params, false, gateway_done);
}

bool web_gateway_route(struct hreq *h, bool post)
{
	if (strcmp(h->path, "/gateway") != 0)
		return false;
	if (post)
		gateway_commit(h);
	else
		http_cmd(h, "gateway get", json_object(), false, gateway_got);
	return true;
}

/* The partner form: New and Edit, Commit, and Delete with its
 * confirmation. A refused Commit shows the command's messages and the form
 * as typed; a successful one redirects to the list (POST, redirect, GET)
 * with the message and warnings kept in the session. */
#include "web_page.h"

#include "fg.h"
#include "policy.h"
#include "policy_json.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

const char web_css_partner_form[] = "";

/* ---- partners: the form ---- */

static const char *const negotiations[] = {"required", "optional", "not-supported", NULL};

static const char *const types[] = {"federated", "public-verified", "public-unverified", NULL};

/* The form's values as strings, from a stored record. */
static json_t *values_from_record(json_t *p)
{
	json_t *v = json_object();
	char num[32];
	static const char *const keys[] = {"domain", "description", "partner_type", "tls",
					   "sasl",   "dialback",    "keepalive",    "proxy_fqdn"};
	for (size_t i = 0; i < FG_ARRAY_LEN(keys); i++)
		json_object_set_new(v, keys[i],
				    json_string(web_text_of(p, keys[i], num, sizeof(num))));
	bool deflt = json_is_true(json_object_get(p, "connection_limit_default"));
	json_object_set_new(
		v, "connection_limit",
		json_string(deflt ? "0" : web_text_of(p, "connection_limit", num, sizeof(num))));
	struct evbuffer *b = evbuffer_new();
	size_t i;
	json_t *d;
	json_array_foreach(json_object_get(p, "additional_domains"), i, d)
		evbuffer_add_printf(b, "%s%s", i ? ", " : "", json_string_value(d));
	evbuffer_add(b, "", 1);
	json_object_set_new(v, "additional_domains",
			    json_string((const char *)evbuffer_pullup(b, -1)));
	evbuffer_free(b);
	return v;
}

static const char *const form_keys[] = {
	"domain", "description", "additional_domains", "partner_type",	   "tls",
	"sasl",	  "dialback",	 "keepalive",	       "connection_limit", "proxy_fqdn",
};

/* The form's values as posted. */
static json_t *values_from_form(struct hreq *h)
{
	json_t *v = json_object();
	for (size_t i = 0; i < FG_ARRAY_LEN(form_keys); i++) {
		const char *s = http_form(h, form_keys[i]);
		json_object_set_new(v, form_keys[i], json_string(s ? s : ""));
	}
	return v;
}

/* SPEC §2 for the values shown: the methods they allow and their verdict. */
static void methods_box(struct evbuffer *b, json_t *v)
{
	struct partner *p = partner_new("example.test");
	json_t *m = json_object();
	json_object_set_new(m, "tls", json_string(web_val(v, "tls")));
	json_object_set_new(m, "sasl", json_string(web_val(v, "sasl")));
	json_object_set_new(m, "dialback", json_string(web_val(v, "dialback")));
	char err[300], methods[200];
	evbuffer_add_printf(b, "<div class=\"methods\" id=\"methods\">"
			       "<strong>Allowed methods with these TLS, SASL and dialback "
			       "settings:</strong> ");
	if (p && policy_json_apply(p, m, NULL, err, sizeof(err), NULL) == FG_OK) {
		policy_methods_string(policy_allowed_methods(p), methods, sizeof(methods));
		http_html(b, methods[0] ? methods : "none");
		struct policy_verdict vd;
		policy_json_matrix_verdict(p, &vd);
		for (size_t i = 0; i < vd.nwarnings; i++) {
			evbuffer_add_printf(b, "<br><span class=\"row-warning\">");
			http_html(b, vd.warnings[i]);
			evbuffer_add_printf(b, "</span>");
		}
	} else {
		evbuffer_add_printf(b, "(not computable from the values given)");
	}
	evbuffer_add_printf(b, "<br><span class=\"muted\">Recomputed on Commit.</span></div>");
	json_decref(m);
	partner_free(&p);
}

/* The partner form: new (mode "new") or an existing record ("edit"),
 * with errors ({field, message}, borrowed) above it and beside their
 * fields. */
static void partner_form(struct hreq *h, int code, const char *mode, json_t *v, json_t *errors)
{
	bool is_new = strcmp(mode, "new") == 0;
	struct evbuffer *b = web_page_begin(h, "/partners",
					    is_new ? "New XMPP federated partner"
						   : "Edit XMPP federated partner");
	if (!b) {
		http_send(h, 503, NULL, NULL);
		return;
	}
	if (json_array_size(errors))
		web_alert(b, "error", "errors", "Not committed; nothing was saved:", errors);
	evbuffer_add_printf(b, "<form class=\"record\" method=\"post\" "
			       "action=\"/partners/commit\">");
	web_csrf_field(b, h);
	evbuffer_add_printf(b, "<input type=\"hidden\" name=\"mode\" value=\"%s\">", mode);
	web_input(b, h, v, errors, "domain", "Domain", "text",
		  is_new ? "the partner's primary domain, e.g. fabrikam.com"
			 : "the primary domain cannot change",
		  !is_new);
	web_field_start(b, "description", "Description");
	evbuffer_add_printf(b, "<textarea id=\"description\" name=\"description\"%s>",
			    h->read_only ? " disabled" : "");
	http_html(b, web_val(v, "description"));
	evbuffer_add_printf(b, "</textarea>");
	web_field_errors(b, errors, "description");
	evbuffer_add_printf(b, "</div>");
	web_field_start(b, "additional_domains", "Additional domains");
	evbuffer_add_printf(b, "<textarea id=\"additional_domains\" name=\"additional_domains\"%s>",
			    h->read_only ? " disabled" : "");
	http_html(b, web_val(v, "additional_domains"));
	evbuffer_add_printf(b, "</textarea><span class=\"hint\">comma-separated, e.g. "
			       "corp.fabrikam.com, it.fabrikam.com</span>");
	web_field_errors(b, errors, "additional_domains");
	evbuffer_add_printf(b, "</div>");
	web_select_field(b, h, v, errors, "partner_type", "Partner type", types);
	web_select_field(b, h, v, errors, "tls", "TLS negotiation", negotiations);
	web_select_field(b, h, v, errors, "sasl", "SASL negotiation", negotiations);
	web_select_field(b, h, v, errors, "dialback", "Dialback", web_bools);
	methods_box(b, v);
	web_select_field(b, h, v, errors, "keepalive", "Keepalive", web_bools);
	web_input(b, h, v, errors, "connection_limit", "Connection limit", "number",
		  "0 = the gateway's partner_connection_limit", false);
	web_input(b, h, v, errors, "proxy_fqdn", "Proxy FQDN", "text",
		  "host[:port] instead of DNS SRV; empty = DNS", false);
	if (!h->read_only)
		evbuffer_add_printf(b, "<p><button type=\"submit\" id=\"commit\">Commit</button> "
				       "<a class=\"button secondary\" href=\"/partners\">Cancel</a>"
				       "</p>");
	else
		evbuffer_add_printf(b, "<p><a class=\"button secondary\" href=\"/partners\">Back"
				       "</a></p>");
	evbuffer_add_printf(b, "</form>");
	web_page_end(h, code, b);
}

static void edit_got(struct hreq *h, int status, json_t *body)
{
	if (status != CMD_OK) {
		web_cmd_failed(h, status, body);
		return;
	}
	json_t *v = values_from_record(json_object_get(body, "result"));
	partner_form(h, 200, "edit", v, NULL);
	json_decref(v);
	json_decref(body);
}

static json_t *split_domains(const char *s)
{
	json_t *arr = json_array();
	char *copy = strdup(s ? s : ""), *save = NULL;
	for (char *t = copy ? strtok_r(copy, ", \t\r\n;", &save) : NULL; t;
	     t = strtok_r(NULL, ", \t\r\n;", &save))
		json_array_append_new(arr, json_string(t));
	free(copy);
	return arr;
}

static void commit_done(struct hreq *h, int status, json_t *body)
{
	if (status == CMD_OK) {
		json_t *f = json_object();
		char msg[400];
		snprintf(msg, sizeof(msg), "Committed: %s (%s).",
			 json_string_value(json_object_get(body, "message"))
				 ? json_string_value(json_object_get(body, "message"))
				 : "done",
			 web_val(h->keep, "domain"));
		json_object_set_new(f, "message", json_string(msg));
		json_object_set(f, "warnings", json_object_get(body, "warnings"));
		http_flash_set(h, f);
		json_decref(body);
		http_redirect(h, "/partners");
		return;
	}
	/* Refused: the form again, as typed, with why. */
	json_t *v = json_incref(h->keep);
	partner_form(h, status == CMD_NOT_FOUND ? 404 : 422,
		     strcmp(web_val(v, "mode"), "new") == 0 ? "new" : "edit", v,
		     json_object_get(body, "errors"));
	json_decref(v);
	json_decref(body);
}

static void partner_commit(struct hreq *h)
{
	json_t *v = values_from_form(h);
	const char *mode = http_form(h, "mode");
	bool is_new = !mode || strcmp(mode, "edit") != 0;
	json_object_set_new(v, "mode", json_string(is_new ? "new" : "edit"));
	h->keep = v;
	json_t *params = json_object();
	for (size_t i = 0; i < FG_ARRAY_LEN(form_keys); i++) {
		const char *k = form_keys[i];
		if (strcmp(k, "additional_domains") == 0)
			json_object_set_new(params, k, split_domains(web_val(v, k)));
		else if (strcmp(k, "connection_limit") == 0 && !*web_val(v, k))
			json_object_set_new(params, k, json_string("0"));
		else
			json_object_set_new(params, k, json_string(web_val(v, k)));
	}
	http_cmd(h, is_new ? "partner new" : "partner set", params, false, commit_done);
}

/* ---- partners: delete ---- */

static void delete_confirm(struct hreq *h, int status, json_t *body)
{
	if (status != CMD_OK) {
		web_cmd_failed(h, status, body);
		return;
	}
	json_t *p = json_object_get(body, "result");
	const char *domain = json_string_value(json_object_get(p, "domain"));
	struct evbuffer *b = web_page_begin(h, "/partners", "Delete XMPP federated partner");
	if (!b) {
		json_decref(body);
		http_send(h, 503, NULL, NULL);
		return;
	}
	evbuffer_add_printf(b, "<p id=\"confirm\">Delete the partner <strong>");
	http_html(b, domain);
	evbuffer_add_printf(b, "</strong>");
	if (json_array_size(json_object_get(p, "additional_domains"))) {
		evbuffer_add_printf(b, " and its additional domains ");
		web_join(b, json_object_get(p, "additional_domains"), ", ");
	}
	evbuffer_add_printf(b, "? Federation with them stops at once and their streams close."
			       "</p><form method=\"post\" action=\"/partners/delete\">");
	web_csrf_field(b, h);
	evbuffer_add_printf(b, "<input type=\"hidden\" name=\"domain\" value=\"");
	http_html(b, domain);
	evbuffer_add_printf(b, "\"><button type=\"submit\" class=\"danger\" id=\"delete\">Delete"
			       "</button> <a class=\"button secondary\" href=\"/partners\">"
			       "Cancel</a></form>");
	json_decref(body);
	web_page_end(h, 200, b);
}

static void delete_done(struct hreq *h, int status, json_t *body)
{
	if (status != CMD_OK) {
		web_cmd_failed(h, status, body);
		return;
	}
	json_t *f = json_object();
	char msg[400];
	snprintf(msg, sizeof(msg), "Deleted: %s.", web_val(h->keep, "domain"));
	json_object_set_new(f, "message", json_string(msg));
	http_flash_set(h, f);
	json_decref(body);
	http_redirect(h, "/partners");
}

bool web_partner_form_route(struct hreq *h, bool post)
{
	const char *p = h->path;
	if (!post && strcmp(p, "/partners/new") == 0) {
		if (h->read_only) {
			web_error(h, 403, "Your role (viewer) may only read.");
			return true;
		}
		/* From "Add as partner" (/refused): the domain filled in. */
		const char *d = http_query(h, "domain");
		json_t *v = json_pack("{s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:s}",
				      "domain", d ? d : "", "description", "", "additional_domains",
				      "", "partner_type", "public-unverified", "tls", "required",
				      "sasl", "required", "dialback", "true", "keepalive", "true",
				      "connection_limit", "0", "proxy_fqdn", "");
		partner_form(h, 200, "new", v, NULL);
		json_decref(v);
	} else if (!post && strcmp(p, "/partners/edit") == 0) {
		const char *d = http_query(h, "domain");
		http_cmd(h, "partner get", json_pack("{s:s}", "domain", d ? d : ""), false,
			 edit_got);
	} else if (post && strcmp(p, "/partners/commit") == 0) {
		partner_commit(h);
	} else if (!post && strcmp(p, "/partners/delete") == 0) {
		if (h->read_only) {
			web_error(h, 403, "Your role (viewer) may only read.");
			return true;
		}
		const char *d = http_query(h, "domain");
		http_cmd(h, "partner get", json_pack("{s:s}", "domain", d ? d : ""), false,
			 delete_confirm);
	} else if (post && strcmp(p, "/partners/delete") == 0) {
		const char *d = http_form(h, "domain");
		h->keep = json_pack("{s:s}", "domain", d ? d : "");
		http_cmd(h, "partner remove", json_pack("{s:s}", "domain", d ? d : ""), false,
			 delete_done);
	} else {
		return false;
	}
	return true;
}

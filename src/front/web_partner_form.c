/* The partner form: New and Edit, Commit, and Delete with its
 * confirmation. A refused Commit shows the command's messages and the form
 * as typed; a successful one redirects to the list (POST, redirect, GET)
 * with the message and warnings kept in the session.
 *
 * The labels and choices are Lync's ("Primary domain (required)",
 * "Public verified", "Not Supported"); the stored values are fedgate's.
 * Two more submit buttons of the same form, each with its own formaction,
 * save nothing and show the form again as typed: "Update allowed methods"
 * recomputes the methods box (there is no script to do it live), and "Test
 * these settings" runs the probe command with the form's domain, TLS, SASL
 * and dialback and shows its report under the form. */
#include "web_page.h"

#include "fg.h"
#include "policy.h"
#include "policy_json.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

const char web_css_partner_form[] =
	".types{margin:.2em 0 .6em 13em;max-width:40em;color:#3a4a5a}"
	".types dt,.types dd{font-size:.92em}"
	".types dt{font-weight:600;margin-top:.3em}.types dd{margin:0 0 0 1em}"
	".methods button{margin-top:.4em}"
	".form-buttons button{margin-right:.4em}"
	"#probe-report{background:#fff;border:1px solid #d5dbe1;padding:1em;max-width:60em;"
	"margin-top:1em}"
	"#probe-report h2{font-size:1.1em;margin:.2em 0 .6em}"
	"#probe-report dl{display:grid;grid-template-columns:max-content 1fr;gap:.25em 1em;"
	"margin:0 0 .8em}"
	"#probe-report dt{font-weight:600}#probe-report dd{margin:0;overflow-wrap:anywhere}"
	"#probe-report table{margin:.3em 0 .8em}"
	"#probe-report ol{margin:.3em 0;padding-left:1.8em;font-size:.92em}"
	"#probe-report li{overflow-wrap:anywhere}"
	"#probe-rows tr.tested td{background:#eef5fb;font-weight:600}"
	".verdict-ok{color:#1e5e2f;font-weight:600}.verdict-bad{color:#8c1d18;font-weight:600}";

/* ---- partners: the form ---- */

static const char *const negotiations[] = {"required", "optional", "not-supported", NULL};

static const char *const types[] = {"federated", "public-verified", "public-unverified", NULL};

static const char *const dane_modes[] = {"off", "opportunistic", "required", NULL};

/* Lync's Dialback negotiation has the two states True and False; fedgate
 * stores true and false. */
static const char *bool_word(const char *v)
{
	return strcmp(v, "true") == 0 ? "True" : strcmp(v, "false") == 0 ? "False" : v;
}

/* What each partner type means here, in fedgate's terms (SPEC §4): who
 * may reach whom without being invited. */
static void type_help(struct evbuffer *b)
{
	evbuffer_add_printf(
		b, "<dl class=\"types\" id=\"type-help\">"
		   "<dt>Federated</dt><dd>A deployment you trust as your own, such as a "
		   "company's Lync or XMPP servers: its users' presence requests are approved "
		   "at once, they may write to any of your users, and they see status notes."
		   "</dd>"
		   "<dt>Public verified</dt><dd>A public service that vouches for its users: "
		   "their presence requests are approved at once too and they may write to "
		   "your users, but fedgate removes the status notes from the presence they "
		   "see.</dd>"
		   "<dt>Public unverified</dt><dd>A service nobody vouches for (anyone may sign "
		   "up there): one of its users reaches one of yours only after your user has "
		   "added them to the contact list; anything else is refused. This is the "
		   "default.</dd></dl>");
}

/* The form's values as strings, from a stored record. */
static json_t *values_from_record(json_t *p)
{
	json_t *v = json_object();
	char num[32];
	static const char *const keys[] = {"domain", "description", "partner_type", "tls",
					   "sasl",   "dialback",    "keepalive",    "proxy_fqdn",
					   "bidi",   "dane"};
	for (size_t i = 0; i < FG_ARRAY_LEN(keys); i++)
		json_object_set_new(v, keys[i],
				    json_string(web_text_of(p, keys[i], num, sizeof(num))));
	bool deflt = json_is_true(json_object_get(p, "connection_limit_default"));
	json_object_set_new(
		v, "connection_limit",
		json_string(deflt ? "0" : web_text_of(p, "connection_limit", num, sizeof(num))));
	static const char *const lists[] = {"additional_domains", "pins"};
	for (size_t k = 0; k < FG_ARRAY_LEN(lists); k++) {
		struct evbuffer *b = evbuffer_new();
		size_t i;
		json_t *d;
		json_array_foreach(json_object_get(p, lists[k]), i, d)
			evbuffer_add_printf(b, "%s%s", i ? ", " : "", json_string_value(d));
		evbuffer_add(b, "", 1);
		json_object_set_new(v, lists[k], json_string((const char *)evbuffer_pullup(b, -1)));
		evbuffer_free(b);
	}
	return v;
}

static const char *const form_keys[] = {
	"domain",   "description", "additional_domains", "partner_type", "tls",	 "sasl",
	"dialback", "keepalive",   "connection_limit",	 "proxy_fqdn",	 "bidi", "dane",
	"pins",
};

/* The form's values as posted. */
static json_t *values_from_form(struct hreq *h)
{
	json_t *v = json_object();
	for (size_t i = 0; i < FG_ARRAY_LEN(form_keys); i++) {
		const char *s = http_form(h, form_keys[i]);
		/* A field the form did not post (one from an older page, a
		 * script's) keeps its value rather than becoming empty. */
		if (s != NULL)
			json_object_set_new(v, form_keys[i], json_string(s));
	}
	return v;
}

/* SPEC §2 for the values shown: the methods they allow and their verdict. */
static void methods_box(struct evbuffer *b, struct hreq *h, json_t *v)
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
	if (!h->read_only)
		evbuffer_add_printf(
			b, "<br><span class=\"muted\">Shown for the values as last submitted; "
			   "after changing TLS, SASL or dialback:</span> <button type=\"submit\" "
			   "class=\"secondary\" id=\"recompute\" "
			   "formaction=\"/partners/recompute#methods\">Update allowed methods"
			   "</button> <span class=\"muted\">(saves nothing)</span>");
	evbuffer_add_printf(b, "</div>");
	json_decref(m);
	partner_free(&p);
}

static void probe_report(struct evbuffer *b, json_t *v, int status, json_t *body);

/* A list as comma-separated text, in a textarea with its hint. */
static void list_field(struct evbuffer *b, struct hreq *h, json_t *v, json_t *errors,
		       const char *key, const char *label, const char *hint)
{
	web_field_start(b, key, label);
	evbuffer_add_printf(b, "<textarea id=\"%s\" name=\"%s\"%s>", key, key,
			    h->read_only ? " disabled" : "");
	http_html(b, web_val(v, key));
	evbuffer_add_printf(b, "</textarea><span class=\"hint\">%s</span>", hint);
	web_field_errors(b, errors, key);
	evbuffer_add_printf(b, "</div>");
}

/* The partner form: new (mode "new") or an existing record ("edit"),
 * with errors ({field, message}, borrowed) above it and beside their
 * fields, and under it the report of "Test these settings" (probe: the
 * command's answer, borrowed; NULL for none). */
static void partner_form_report(struct hreq *h, int code, const char *mode, json_t *v,
				json_t *errors, int probe_status, json_t *probe)
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
	web_input(b, h, v, errors, "domain", "Primary domain (required)", "text",
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
	list_field(b, h, v, errors, "additional_domains", "Additional domains",
		   "comma-separated, e.g. corp.fabrikam.com, it.fabrikam.com");
	web_select_words(b, h, v, errors, "partner_type", "Partner type", types, web_word);
	type_help(b);
	web_select_words(b, h, v, errors, "tls", "TLS negotiation", negotiations, web_word);
	web_select_words(b, h, v, errors, "sasl", "SASL negotiation", negotiations, web_word);
	web_select_words(b, h, v, errors, "dialback", "Dialback negotiation", web_bools, bool_word);
	methods_box(b, h, v);
	web_select_words(b, h, v, errors, "keepalive", "Enable keepalive", web_bools, bool_word);
	web_input(b, h, v, errors, "connection_limit", "Connection limit", "number",
		  "0 = the gateway's partner_connection_limit", false);
	web_input(b, h, v, errors, "proxy_fqdn", "Proxy FQDN", "text",
		  "host[:port] instead of DNS SRV; empty = DNS", false);
	web_select_words(b, h, v, errors, "bidi", "Bidirectional streams (XEP-0288)", web_bools,
			 bool_word);
	web_select_words(b, h, v, errors, "dane", "DANE (TLSA records)", dane_modes, web_word);
	list_field(b, h, v, errors, "pins", "Public-key pins",
		   "comma-separated; only these keys are accepted");
	if (!h->read_only)
		evbuffer_add_printf(
			b,
			"<p class=\"form-buttons\"><button type=\"submit\" "
			"id=\"commit\">Commit</button>"
			"<button type=\"submit\" class=\"secondary\" id=\"probe\" "
			"formaction=\"/partners/probe#probe-report\">Test these settings</button>"
			"<a class=\"button secondary\" href=\"/partners\">Cancel</a>"
			"<br><span class=\"muted\">Test these settings connects to the "
			"primary domain's server as a stream would, with the TLS, SASL "
			"and dialback above, and saves nothing; it may take up to the "
			"stream establishment timeout.</span></p>");
	else
		evbuffer_add_printf(b, "<p><a class=\"button secondary\" href=\"/partners\">Back"
				       "</a></p>");
	evbuffer_add_printf(b, "</form>");
	if (probe)
		probe_report(b, v, probe_status, probe);
	web_page_end(h, code, b);
}

static void partner_form(struct hreq *h, int code, const char *mode, json_t *v, json_t *errors)
{
	partner_form_report(h, code, mode, v, errors, 0, NULL);
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
		if (!json_object_get(v, k))
			continue; /* not posted: kept (edit) or the default (new) */
		if (strcmp(k, "additional_domains") == 0)
			json_object_set_new(params, k, split_domains(web_val(v, k)));
		else if (strcmp(k, "connection_limit") == 0 && !*web_val(v, k))
			json_object_set_new(params, k, json_string("0"));
		else
			json_object_set_new(params, k, json_string(web_val(v, k)));
	}
	http_cmd(h, is_new ? "partner new" : "partner set", params, false, commit_done);
}

/* ---- partners: recompute and test, saving nothing ---- */

/* The form as posted, in the mode it was in. */
static json_t *posted_values(struct hreq *h)
{
	json_t *v = values_from_form(h);
	const char *mode = http_form(h, "mode");
	json_object_set_new(v, "mode",
			    json_string(mode && strcmp(mode, "edit") == 0 ? "edit" : "new"));
	return v;
}

static void report_line(struct evbuffer *b, const char *label, const char *text)
{
	if (!text || !*text)
		return;
	evbuffer_add_printf(b, "<dt>%s</dt><dd>", label);
	http_html(b, text);
	evbuffer_add_printf(b, "</dd>");
}

/* The probe's answer in words: the verdict on the settings typed, what
 * the server offered, the certificate, each method, the matrix rows that
 * would work (most secure first, as the probe sorted them), every step. */
static void probe_report(struct evbuffer *b, json_t *v, int status, json_t *body)
{
	json_t *r = json_object_get(body, "result");
	json_t *set = json_object_get(r, "settings"), *cert = json_object_get(r, "certificate");
	size_t i;
	json_t *x;
	evbuffer_add_printf(b, "<section id=\"probe-report\"><h2>Test of these settings with ");
	http_html(b, web_val(r, "domain"));
	evbuffer_add_printf(b, "</h2><p id=\"probe-verdict\" class=\"%s\">",
			    status == CMD_OK ? "verdict-ok" : "verdict-bad");
	http_html(b, web_val(body, "message"));
	evbuffer_add_printf(b, "</p><dl>");
	/* The settings as the form has them: the probe names them only when
	 * it got far enough to judge them. */
	char line[700];
	bool works = json_is_true(json_object_get(set, "works"));
	snprintf(line, sizeof(line), "TLS %s, SASL %s, dialback %s", web_word(web_val(v, "tls")),
		 web_word(web_val(v, "sasl")), bool_word(web_val(v, "dialback")));
	if (json_object_get(set, "row"))
		snprintf(line + strlen(line), sizeof(line) - strlen(line),
			 " (row %lld of the negotiation matrix): %s%s",
			 (long long)json_integer_value(json_object_get(set, "row")),
			 works ? "would authenticate with " : "would fail: ",
			 works ? web_val(set, "method") : web_val(set, "why"));
	else
		snprintf(
			line + strlen(line), sizeof(line) - strlen(line),
			": cannot be judged, the probe got no stream features (the steps say why)");
	report_line(b, "Settings tested", line);
	report_line(b, "STARTTLS", web_val(r, "starttls"));
	report_line(b, "TLS", web_val(r, "tls"));
	if (json_is_object(cert)) {
		report_line(b, "Certificate",
			    json_is_true(json_object_get(cert, "trusted")) ? "valid" : "not valid");
		report_line(b, "Certificate verdict", web_val(cert, "verdict"));
		report_line(b, "Certificate details", web_val(cert, "details"));
	}
	report_line(b, "SASL EXTERNAL", web_val(r, "sasl_external"));
	report_line(b, "Dialback", web_val(r, "dialback"));
	evbuffer_add_printf(b, "</dl>");
	json_t *methods = json_object_get(r, "methods");
	if (json_object_size(methods)) {
		const char *k;
		evbuffer_add_printf(b, "<h3>Each method with this server</h3>"
				       "<table id=\"probe-methods\"><thead><tr><th>Method</th>"
				       "<th>Result</th></tr></thead><tbody>");
		json_object_foreach(methods, k, x)
		{
			evbuffer_add_printf(b, "<tr><td>");
			http_html(b, k);
			evbuffer_add_printf(b, "</td><td>");
			http_html(b, json_string_value(x));
			evbuffer_add_printf(b, "</td></tr>");
		}
		evbuffer_add_printf(b, "</tbody></table>");
	}
	json_t *rows = json_object_get(r, "rows");
	evbuffer_add_printf(b, "<h3>Settings that would work, most secure first</h3>");
	if (json_object_size(methods) == 0) {
		evbuffer_add_printf(b, "<p id=\"probe-no-rows\">Unknown: the probe got no stream "
				       "features from this server, so no row of the negotiation "
				       "matrix can be judged.</p>");
	} else if (json_array_size(rows) == 0) {
		evbuffer_add_printf(b, "<p id=\"probe-no-rows\">None: no row of the negotiation "
				       "matrix would work with this server as the probe found "
				       "it.</p>");
	} else {
		evbuffer_add_printf(b,
				    "<table id=\"probe-rows\"><thead><tr><th>Row</th>"
				    "<th>TLS negotiation</th><th>SASL negotiation</th>"
				    "<th>Dialback negotiation</th><th>Authenticates with</th></tr>"
				    "</thead><tbody>");
		json_array_foreach(rows, i, x)
		{
			/* The row of the settings tested, if it works, stands out. */
			json_int_t row = json_integer_value(json_object_get(x, "row"));
			bool tested = json_object_get(set, "row") &&
				      row == json_integer_value(json_object_get(set, "row"));
			evbuffer_add_printf(
				b, "<tr%s><td>%lld%s</td><td>%s</td><td>%s</td><td>%s</td><td>",
				tested ? " class=\"tested\"" : "", (long long)row,
				tested ? " (these settings)" : "", web_word(web_val(x, "tls")),
				web_word(web_val(x, "sasl")),
				json_is_true(json_object_get(x, "dialback")) ? "True" : "False");
			http_html(b, web_val(x, "method"));
			evbuffer_add_printf(b, "</td></tr>");
		}
		evbuffer_add_printf(b, "</tbody></table>");
	}
	evbuffer_add_printf(b, "<h3>Each step</h3><ol id=\"probe-steps\">");
	json_array_foreach(json_object_get(r, "steps"), i, x)
	{
		evbuffer_add_printf(b, "<li>");
		http_html(b, json_string_value(x));
		evbuffer_add_printf(b, "</li>");
	}
	evbuffer_add_printf(b, "</ol><p class=\"muted\">Nothing was saved%s.</p></section>",
			    json_is_false(json_object_get(r, "complete"))
				    ? "; the probe ended before a stream was set up (the steps "
				      "say where)"
				    : "");
}

static void probe_done(struct hreq *h, int status, json_t *body)
{
	json_t *v = json_incref(h->keep);
	const char *mode = strcmp(web_val(v, "mode"), "edit") == 0 ? "edit" : "new";
	if (!json_is_object(json_object_get(body, "result"))) {
		/* Refused before it connected (a bad domain or setting): the
		 * messages beside their fields, as a refused Commit shows them. */
		partner_form(h, 422, mode, v, json_object_get(body, "errors"));
	} else {
		partner_form_report(h, 200, mode, v, NULL, status, body);
	}
	json_decref(v);
	json_decref(body);
}

/* "Test these settings": the probe command (a writer's command, as in the
 * API: viewers never get here, web.c refuses their POSTs). */
static void partner_probe(struct hreq *h)
{
	json_t *v = posted_values(h);
	h->keep = v;
	json_t *params = json_object();
	static const char *const keys[] = {"domain", "tls", "sasl", "dialback"};
	for (size_t i = 0; i < FG_ARRAY_LEN(keys); i++)
		if (*web_val(v, keys[i]))
			json_object_set_new(params, keys[i], json_string(web_val(v, keys[i])));
	http_cmd(h, "probe", params, false, probe_done);
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
		json_t *v = json_pack(
			"{s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:s}",
			"domain", d ? d : "", "description", "", "additional_domains", "",
			"partner_type", "public-unverified", "tls", "required", "sasl", "required",
			"dialback", "true", "keepalive", "true", "connection_limit", "0",
			"proxy_fqdn", "", "bidi", "true", "dane", "off", "pins", "");
		partner_form(h, 200, "new", v, NULL);
		json_decref(v);
	} else if (!post && strcmp(p, "/partners/edit") == 0) {
		const char *d = http_query(h, "domain");
		http_cmd(h, "partner get", json_pack("{s:s}", "domain", d ? d : ""), false,
			 edit_got);
	} else if (post && strcmp(p, "/partners/commit") == 0) {
		partner_commit(h);
	} else if (post && strcmp(p, "/partners/recompute") == 0) {
		/* The methods box for the values as typed; nothing runs. */
		json_t *v = posted_values(h);
		partner_form(h, 200, web_val(v, "mode"), v, NULL);
		json_decref(v);
	} else if (post && strcmp(p, "/partners/probe") == 0) {
		partner_probe(h);
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

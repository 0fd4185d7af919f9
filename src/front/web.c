/* The control panel: HTML rendered on the server, one small style sheet,
 * no JavaScript (the Content-Security-Policy allows none).
 *
 *   /partners                 XMPP Federated Partners: the list (+ live streams)
 *   /partners/new, /partners/edit?domain=D     the form; POST /partners/commit
 *   /partners/delete?domain=D a confirmation page; POST /partners/delete
 *   /gateway                  gateway settings; POST /gateway
 *   /users, /audit, /status   local users, the audit log, live streams
 *
 * Every change is a command of the command layer, run as the signed-in
 * admin with iface "web". A refused Commit shows the command's messages
 * and the form as typed; a successful one redirects to the list (POST,
 * redirect, GET) with the message and warnings kept in the session. Every
 * string that reaches the page goes through http_html(). */
#include "web.h"

#include "api.h"
#include "fg.h"
#include "policy.h"
#include "policy_json.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static const char css[] =
	"*{box-sizing:border-box}"
	"body{margin:0;font:14px/1.45 system-ui,-apple-system,'Segoe UI',sans-serif;"
	"color:#1b1f24;background:#f3f5f7}"
	"header{display:flex;align-items:center;gap:1em;background:#1f3b5a;color:#fff;"
	"padding:.5em 1.2em}"
	"header .brand{font-weight:600;font-size:1.15em;flex:1}"
	"header form{margin:0}"
	"header button{background:transparent;color:#fff;border:1px solid #9bb;padding:.2em .8em}"
	".layout{display:flex;min-height:calc(100vh - 2.6em)}"
	"nav{width:17em;background:#e4e9ee;padding:1em;border-right:1px solid #cfd6dd}"
	"nav h2{font-size:.95em;margin:.2em 0 .6em;color:#3a4a5a}"
	"nav ul{list-style:none;margin:0;padding:0 0 0 .6em}"
	"nav li a{display:block;padding:.3em .5em;color:#1f3b5a;text-decoration:none;"
	"border-radius:3px}"
	"nav li a.active,nav li a:hover{background:#fff}"
	"main{flex:1;padding:1em 2em;max-width:80em}"
	"h1{font-size:1.35em;margin:.2em 0 .8em}"
	"table{border-collapse:collapse;background:#fff;width:100%}"
	"th,td{border:1px solid #d5dbe1;padding:.35em .6em;text-align:left;vertical-align:top}"
	"th{background:#eef1f4;font-weight:600}"
	".actions{white-space:nowrap}"
	"a.button,button{display:inline-block;background:#1f5f99;color:#fff;border:0;"
	"border-radius:3px;padding:.35em 1em;text-decoration:none;font:inherit;cursor:pointer}"
	"a.button.secondary,button.secondary{background:#6b7785}"
	"button.danger{background:#b3261e}"
	".toolbar{margin:0 0 .8em}"
	".alert{border-radius:4px;padding:.6em 1em;margin:0 0 1em}"
	".alert ul{margin:.3em 0 0;padding-left:1.3em}"
	".error{background:#fde8e6;border:1px solid #e3a39c}"
	".ok{background:#e6f4ea;border:1px solid #9ccaa9}"
	".warning{background:#fff5d6;border:1px solid #e5c96b}"
	"form.record{background:#fff;border:1px solid #d5dbe1;padding:1em;max-width:60em}"
	".field{display:flex;gap:1em;margin:.5em 0;align-items:flex-start}"
	".field label{width:12em;flex:none;padding-top:.3em;font-weight:600}"
	".field input,.field select,.field textarea{font:inherit;padding:.3em;width:22em}"
	".field textarea{height:4.5em}"
	".field .hint{color:#5a6672;font-size:.9em;padding-top:.3em}"
	".field .field-error{color:#b3261e;font-size:.9em;padding-top:.3em;max-width:28em}"
	".methods{border:1px dashed #9bb;background:#f7fafc;padding:.5em 1em;margin:.5em 0 .5em "
	"13em;max-width:35em}"
	".muted{color:#6b7785}"
	".row-warning{color:#8a6100;font-size:.9em}"
	".signin{max-width:24em;margin:4em auto;background:#fff;border:1px solid #d5dbe1;"
	"padding:1.5em}"
	".signin .field label{width:7em}.signin .field input{width:13em}"
	"pre{white-space:pre-wrap;margin:0;font-size:.9em}";

const char *web_css(size_t *len)
{
	*len = sizeof(css) - 1;
	return css;
}

/* ---- page frame ---- */

static const struct {
	const char *path, *title;
} nav[] = {
	{"/partners", "XMPP Federated Partners"},
	{"/gateway", "Gateway settings"},
	{"/users", "Users"},
	{"/audit", "Audit log"},
	{"/status", "Federation status"},
	{"/refused", "Who tried to federate"},
};

static void head(struct evbuffer *b, const char *title)
{
	evbuffer_add_printf(b, "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
			       "<meta name=\"viewport\" content=\"width=device-width\">"
			       "<title>");
	http_html(b, title);
	evbuffer_add_printf(b, " - fedgate</title>"
			       "<link rel=\"stylesheet\" href=\"/static/fedgate.css\"></head>"
			       "<body>");
}

static void csrf_field(struct evbuffer *b, struct hreq *h)
{
	evbuffer_add_printf(b, "<input type=\"hidden\" name=\"csrf\" value=\"");
	http_html(b, http_csrf(h));
	evbuffer_add_printf(b, "\">");
}

static struct evbuffer *page_begin(struct hreq *h, const char *active, const char *title)
{
	struct evbuffer *b = evbuffer_new();
	if (!b)
		return NULL;
	head(b, title);
	evbuffer_add_printf(b, "<header><span class=\"brand\">fedgate control panel</span>"
			       "<span class=\"who\">");
	http_html(b, h->who);
	evbuffer_add_printf(b, " (%s)</span>", admin_role_name(h->role));
	if (h->sid[0]) {
		evbuffer_add_printf(b, "<form method=\"post\" action=\"/signout\">");
		csrf_field(b, h);
		evbuffer_add_printf(b, "<button type=\"submit\">Sign out</button></form>");
	}
	evbuffer_add_printf(b, "</header><div class=\"layout\"><nav>"
			       "<h2>Federation and External Access</h2><ul>");
	for (size_t i = 0; i < FG_ARRAY_LEN(nav); i++)
		evbuffer_add_printf(b, "<li><a href=\"%s\"%s>%s</a></li>", nav[i].path,
				    strcmp(nav[i].path, active) == 0 ? " class=\"active\"" : "",
				    nav[i].title);
	evbuffer_add_printf(b, "</ul></nav><main><h1>");
	http_html(b, title);
	evbuffer_add_printf(b, "</h1>");
	if (h->read_only)
		evbuffer_add_printf(b, "<p class=\"muted\">Your role is viewer: you see everything "
				       "and can change nothing.</p>");
	return b;
}

static void page_end(struct hreq *h, int code, struct evbuffer *b)
{
	if (b)
		evbuffer_add_printf(b, "</main></div></body></html>\n");
	http_send(h, code, "text/html; charset=utf-8", b);
}

static void list_items(struct evbuffer *b, json_t *arr)
{
	size_t i;
	json_t *m;
	evbuffer_add_printf(b, "<ul>");
	json_array_foreach(arr, i, m)
	{
		/* Warnings are strings; errors are {field, message}. */
		evbuffer_add_printf(b, "<li>");
		http_html(b, json_is_object(m) ? json_string_value(json_object_get(m, "message"))
					       : json_string_value(m));
		evbuffer_add_printf(b, "</li>");
	}
	evbuffer_add_printf(b, "</ul>");
}

static void alert(struct evbuffer *b, const char *cls, const char *id, const char *text,
		  json_t *items)
{
	evbuffer_add_printf(b, "<div class=\"alert %s\" id=\"%s\" role=\"alert\">", cls, id);
	http_html(b, text);
	if (json_array_size(items))
		list_items(b, items);
	evbuffer_add_printf(b, "</div>");
}

/* The message and warnings of the change before the redirect. */
static void flash(struct hreq *h, struct evbuffer *b)
{
	json_t *f = http_flash_take(h);
	if (!f)
		return;
	alert(b, "ok", "message", json_string_value(json_object_get(f, "message")), NULL);
	json_t *w = json_object_get(f, "warnings");
	if (json_array_size(w))
		alert(b, "warning", "warnings", "Warnings (saved all the same):", w);
	json_decref(f);
}

void web_error(struct hreq *h, int code, const char *msg)
{
	struct evbuffer *b = evbuffer_new();
	if (b) {
		head(b, "Error");
		evbuffer_add_printf(b, "<main class=\"signin\"><h1>%d</h1><p id=\"error\">", code);
		http_html(b, msg);
		evbuffer_add_printf(b, "</p><p><a href=\"/partners\">Back to the control "
				       "panel</a></p></main></body></html>\n");
	}
	http_send(h, code, "text/html; charset=utf-8", b);
}

void web_signin(struct hreq *h, int code, const char *error, const char *csrf)
{
	struct evbuffer *b = evbuffer_new();
	if (!b) {
		http_send(h, 503, NULL, NULL);
		return;
	}
	head(b, "Sign in");
	evbuffer_add_printf(b, "<main class=\"signin\"><h1>fedgate: sign in</h1>");
	if (error)
		alert(b, "error", "error", error, NULL);
	evbuffer_add_printf(b, "<form method=\"post\" action=\"/signin\">"
			       "<input type=\"hidden\" name=\"csrf\" value=\"");
	http_html(b, csrf);
	evbuffer_add_printf(
		b, "\"><div class=\"field\"><label for=\"name\">Name</label>"
		   "<input id=\"name\" name=\"name\" autocomplete=\"username\" required></div>"
		   "<div class=\"field\"><label for=\"password\">Password</label>"
		   "<input id=\"password\" name=\"password\" type=\"password\" "
		   "autocomplete=\"current-password\" required></div>"
		   "<button type=\"submit\" id=\"signin\">Sign in</button></form>"
		   "<p class=\"muted\">Accounts are made with <code>fedgate admin add NAME --role "
		   "administrator|viewer</code>.</p></main></body></html>\n");
	http_send(h, code, "text/html; charset=utf-8", b);
}

/* A command failed in a way no form can show. */
static void cmd_failed(struct hreq *h, int status, json_t *body)
{
	json_t *errs = json_object_get(body, "errors");
	const char *msg = json_string_value(json_object_get(json_array_get(errs, 0), "message"));
	web_error(h,
		  status == CMD_NOT_FOUND ? 404
		  : status == CMD_USAGE	  ? 400
					  : 422,
		  msg ? msg : "the command failed");
	json_decref(body);
}

static const char *text_of(json_t *o, const char *key, char *buf, size_t len)
{
	const char *s = policy_json_text(json_object_get(o, key), buf, len);
	return s ? s : "";
}

static void join(struct evbuffer *b, json_t *arr, const char *sep)
{
	size_t i;
	json_t *v;
	json_array_foreach(arr, i, v)
	{
		if (i)
			evbuffer_add_printf(b, "%s", sep);
		http_html(b, json_string_value(v));
	}
}

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
	struct evbuffer *b = page_begin(h, "/partners", "XMPP Federated Partners");
	if (!b) {
		json_decref(body);
		http_send(h, 503, NULL, NULL);
		return;
	}
	flash(h, b);
	if (!h->read_only)
		evbuffer_add_printf(b, "<p class=\"toolbar\"><a class=\"button\" id=\"new\" "
				       "href=\"/partners/new\">New</a></p>");
	if (json_array_size(partners) == 0) {
		evbuffer_add_printf(b, "<p id=\"empty\">No partners: federation is off.</p>");
		json_decref(body);
		page_end(h, 200, b);
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
			join(b, w, "<br>");
			evbuffer_add_printf(b, "</div>");
		}
		evbuffer_add_printf(b, "</td><td>");
		join(b, json_object_get(p, "additional_domains"), ", ");
		evbuffer_add_printf(b, "</td><td>");
		http_html(b, text_of(p, "partner_type", num, sizeof(num)));
		evbuffer_add_printf(b, "</td><td>");
		http_html(b, text_of(p, "tls", num, sizeof(num)));
		evbuffer_add_printf(b, "</td><td>");
		http_html(b, text_of(p, "sasl", num, sizeof(num)));
		evbuffer_add_printf(b, "</td><td>");
		http_html(b, text_of(p, "dialback", num, sizeof(num)));
		evbuffer_add_printf(b, "</td><td>");
		join(b, json_object_get(p, "allowed_methods"), ", ");
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
	page_end(h, 200, b);
}

static void partners_got(struct hreq *h, int status, json_t *body)
{
	if (status != CMD_OK) {
		cmd_failed(h, status, body);
		return;
	}
	h->keep = body;
	http_cmd(h, "status", json_object(), false, partners_render);
}

/* ---- partners: the form ---- */

static const char *const negotiations[] = {"required", "optional", "not-supported", NULL};
static const char *const types[] = {"federated", "public-verified", "public-unverified", NULL};
static const char *const bools[] = {"true", "false", NULL};

/* The form's values as strings, from a stored record. */
static json_t *values_from_record(json_t *p)
{
	json_t *v = json_object();
	char num[32];
	static const char *const keys[] = {"domain", "description", "partner_type", "tls",
					   "sasl",   "dialback",    "keepalive",    "proxy_fqdn"};
	for (size_t i = 0; i < FG_ARRAY_LEN(keys); i++)
		json_object_set_new(v, keys[i], json_string(text_of(p, keys[i], num, sizeof(num))));
	bool deflt = json_is_true(json_object_get(p, "connection_limit_default"));
	json_object_set_new(
		v, "connection_limit",
		json_string(deflt ? "0" : text_of(p, "connection_limit", num, sizeof(num))));
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

static const char *val(json_t *v, const char *key)
{
	const char *s = json_string_value(json_object_get(v, key));
	return s ? s : "";
}

/* The errors about one field, beside it. */
static void field_errors(struct evbuffer *b, json_t *errors, const char *field)
{
	size_t i;
	json_t *e;
	json_array_foreach(errors, i, e)
	{
		const char *f = json_string_value(json_object_get(e, "field"));
		if (f && strcmp(f, field) == 0) {
			evbuffer_add_printf(b, "<span class=\"field-error\">");
			http_html(b, json_string_value(json_object_get(e, "message")));
			evbuffer_add_printf(b, "</span>");
		}
	}
}

static void field_start(struct evbuffer *b, const char *id, const char *label)
{
	evbuffer_add_printf(b, "<div class=\"field\"><label for=\"%s\">%s</label>", id, label);
}

static void input(struct evbuffer *b, struct hreq *h, json_t *v, json_t *errors, const char *key,
		  const char *label, const char *type, const char *hint, bool readonly)
{
	field_start(b, key, label);
	evbuffer_add_printf(b, "<input id=\"%s\" name=\"%s\" type=\"%s\" value=\"", key, key, type);
	http_html(b, val(v, key));
	evbuffer_add_printf(b, "\"%s%s>", readonly ? " readonly" : "",
			    h->read_only ? " disabled" : "");
	if (hint)
		evbuffer_add_printf(b, "<span class=\"hint\">%s</span>", hint);
	field_errors(b, errors, key);
	evbuffer_add_printf(b, "</div>");
}

static void select_field(struct evbuffer *b, struct hreq *h, json_t *v, json_t *errors,
			 const char *key, const char *label, const char *const *options)
{
	field_start(b, key, label);
	evbuffer_add_printf(b, "<select id=\"%s\" name=\"%s\"%s>", key, key,
			    h->read_only ? " disabled" : "");
	const char *cur = val(v, key);
	bool known = false;
	for (const char *const *o = options; *o; o++)
		known |= strcmp(*o, cur) == 0;
	/* A value typed in another spelling stays as typed. */
	if (!known && *cur) {
		evbuffer_add_printf(b, "<option selected value=\"");
		http_html(b, cur);
		evbuffer_add_printf(b, "\">");
		http_html(b, cur);
		evbuffer_add_printf(b, "</option>");
	}
	for (const char *const *o = options; *o; o++)
		evbuffer_add_printf(b, "<option value=\"%s\"%s>%s</option>", *o,
				    strcmp(*o, cur) == 0 ? " selected" : "", *o);
	evbuffer_add_printf(b, "</select>");
	field_errors(b, errors, key);
	evbuffer_add_printf(b, "</div>");
}

/* SPEC §2 for the values shown: the methods they allow and their verdict. */
static void methods_box(struct evbuffer *b, json_t *v)
{
	struct partner *p = partner_new("example.test");
	json_t *m = json_object();
	json_object_set_new(m, "tls", json_string(val(v, "tls")));
	json_object_set_new(m, "sasl", json_string(val(v, "sasl")));
	json_object_set_new(m, "dialback", json_string(val(v, "dialback")));
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
	struct evbuffer *b =
		page_begin(h, "/partners",
			   is_new ? "New XMPP federated partner" : "Edit XMPP federated partner");
	if (!b) {
		http_send(h, 503, NULL, NULL);
		return;
	}
	if (json_array_size(errors))
		alert(b, "error", "errors", "Not committed; nothing was saved:", errors);
	evbuffer_add_printf(b, "<form class=\"record\" method=\"post\" "
			       "action=\"/partners/commit\">");
	csrf_field(b, h);
	evbuffer_add_printf(b, "<input type=\"hidden\" name=\"mode\" value=\"%s\">", mode);
	input(b, h, v, errors, "domain", "Domain", "text",
	      is_new ? "the partner's primary domain, e.g. fabrikam.com"
		     : "the primary domain cannot change",
	      !is_new);
	field_start(b, "description", "Description");
	evbuffer_add_printf(b, "<textarea id=\"description\" name=\"description\"%s>",
			    h->read_only ? " disabled" : "");
	http_html(b, val(v, "description"));
	evbuffer_add_printf(b, "</textarea>");
	field_errors(b, errors, "description");
	evbuffer_add_printf(b, "</div>");
	field_start(b, "additional_domains", "Additional domains");
	evbuffer_add_printf(b, "<textarea id=\"additional_domains\" name=\"additional_domains\"%s>",
			    h->read_only ? " disabled" : "");
	http_html(b, val(v, "additional_domains"));
	evbuffer_add_printf(b, "</textarea><span class=\"hint\">comma-separated, e.g. "
			       "corp.fabrikam.com, it.fabrikam.com</span>");
	field_errors(b, errors, "additional_domains");
	evbuffer_add_printf(b, "</div>");
	select_field(b, h, v, errors, "partner_type", "Partner type", types);
	select_field(b, h, v, errors, "tls", "TLS negotiation", negotiations);
	select_field(b, h, v, errors, "sasl", "SASL negotiation", negotiations);
	select_field(b, h, v, errors, "dialback", "Dialback", bools);
	methods_box(b, v);
	select_field(b, h, v, errors, "keepalive", "Keepalive", bools);
	input(b, h, v, errors, "connection_limit", "Connection limit", "number",
	      "0 = the gateway's partner_connection_limit", false);
	input(b, h, v, errors, "proxy_fqdn", "Proxy FQDN", "text",
	      "host[:port] instead of DNS SRV; empty = DNS", false);
	if (!h->read_only)
		evbuffer_add_printf(b, "<p><button type=\"submit\" id=\"commit\">Commit</button> "
				       "<a class=\"button secondary\" href=\"/partners\">Cancel</a>"
				       "</p>");
	else
		evbuffer_add_printf(b, "<p><a class=\"button secondary\" href=\"/partners\">Back"
				       "</a></p>");
	evbuffer_add_printf(b, "</form>");
	page_end(h, code, b);
}

static void edit_got(struct hreq *h, int status, json_t *body)
{
	if (status != CMD_OK) {
		cmd_failed(h, status, body);
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
			 val(h->keep, "domain"));
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
		     strcmp(val(v, "mode"), "new") == 0 ? "new" : "edit", v,
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
			json_object_set_new(params, k, split_domains(val(v, k)));
		else if (strcmp(k, "connection_limit") == 0 && !*val(v, k))
			json_object_set_new(params, k, json_string("0"));
		else
			json_object_set_new(params, k, json_string(val(v, k)));
	}
	http_cmd(h, is_new ? "partner new" : "partner set", params, false, commit_done);
}

/* ---- partners: delete ---- */

static void delete_confirm(struct hreq *h, int status, json_t *body)
{
	if (status != CMD_OK) {
		cmd_failed(h, status, body);
		return;
	}
	json_t *p = json_object_get(body, "result");
	const char *domain = json_string_value(json_object_get(p, "domain"));
	struct evbuffer *b = page_begin(h, "/partners", "Delete XMPP federated partner");
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
		join(b, json_object_get(p, "additional_domains"), ", ");
	}
	evbuffer_add_printf(b, "? Federation with them stops at once and their streams close."
			       "</p><form method=\"post\" action=\"/partners/delete\">");
	csrf_field(b, h);
	evbuffer_add_printf(b, "<input type=\"hidden\" name=\"domain\" value=\"");
	http_html(b, domain);
	evbuffer_add_printf(b, "\"><button type=\"submit\" class=\"danger\" id=\"delete\">Delete"
			       "</button> <a class=\"button secondary\" href=\"/partners\">"
			       "Cancel</a></form>");
	json_decref(body);
	page_end(h, 200, b);
}

static void delete_done(struct hreq *h, int status, json_t *body)
{
	if (status != CMD_OK) {
		cmd_failed(h, status, body);
		return;
	}
	json_t *f = json_object();
	char msg[400];
	snprintf(msg, sizeof(msg), "Deleted: %s.", val(h->keep, "domain"));
	json_object_set_new(f, "message", json_string(msg));
	http_flash_set(h, f);
	json_decref(body);
	http_redirect(h, "/partners");
}

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
	struct evbuffer *b = page_begin(h, "/gateway", "Gateway settings");
	if (!b) {
		http_send(h, 503, NULL, NULL);
		return;
	}
	flash(h, b);
	if (json_array_size(errors))
		alert(b, "error", "errors", "Not committed; nothing was saved:", errors);
	evbuffer_add_printf(b, "<form class=\"record\" method=\"post\" action=\"/gateway\">");
	csrf_field(b, h);
	for (size_t i = 0; i < FG_ARRAY_LEN(gw_fields); i++)
		input(b, h, v, errors, gw_fields[i].key, gw_fields[i].label, "number",
		      gw_fields[i].hint, false);
	select_field(b, h, v, errors, "log_message_bodies", "Log message bodies", bools);
	field_start(b, "dialback_secret", "Dialback secret");
	evbuffer_add_printf(b, "<span class=\"hint\">");
	http_html(b, val(v, "dialback_secret"));
	evbuffer_add_printf(b, " (never shown; regenerate with <code>fedgate gateway set "
			       "--regenerate-dialback-secret</code>)</span></div>");
	if (!h->read_only)
		evbuffer_add_printf(b, "<p><button type=\"submit\" id=\"commit\">Commit</button>"
				       "</p>");
	evbuffer_add_printf(b, "</form>");
	page_end(h, code, b);
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
		cmd_failed(h, status, body);
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

/* ---- generic tables: users, audit, status ---- */

static void cell(struct evbuffer *b, json_t *x)
{
	char num[32];
	const char *s = policy_json_text(x, num, sizeof(num));
	if (s) {
		http_html(b, s);
	} else if (x && !json_is_null(x)) {
		char *t = json_dumps(x, JSON_COMPACT | JSON_ENCODE_ANY);
		http_html(b, t);
		free(t);
	}
}

/* Rows of objects as a table with the given columns (NULL: the first
 * row's keys). */
static void table(struct evbuffer *b, const char *id, json_t *rows, const char *const *cols)
{
	size_t i;
	json_t *r;
	const char *k;
	json_t *x;
	evbuffer_add_printf(b, "<table id=\"%s\"><thead><tr>", id);
	if (cols)
		for (const char *const *c = cols; *c; c++)
			evbuffer_add_printf(b, "<th>%s</th>", *c);
	else
		json_object_foreach(json_array_get(rows, 0), k, x)
		{
			evbuffer_add_printf(b, "<th>");
			http_html(b, k);
			evbuffer_add_printf(b, "</th>");
		}
	evbuffer_add_printf(b, "</tr></thead><tbody>");
	json_array_foreach(rows, i, r)
	{
		evbuffer_add_printf(b, "<tr>");
		if (cols) {
			for (const char *const *c = cols; *c; c++) {
				evbuffer_add_printf(b, "<td>");
				cell(b, json_object_get(r, *c));
				evbuffer_add_printf(b, "</td>");
			}
		} else {
			json_object_foreach(r, k, x)
			{
				evbuffer_add_printf(b, "<td>");
				cell(b, x);
				evbuffer_add_printf(b, "</td>");
			}
		}
		evbuffer_add_printf(b, "</tr>");
	}
	evbuffer_add_printf(b, "</tbody></table>");
}

static void users_got(struct hreq *h, int status, json_t *body)
{
	struct evbuffer *b = page_begin(h, "/users", "Users");
	if (!b) {
		json_decref(body);
		http_send(h, 503, NULL, NULL);
		return;
	}
	json_t *rows = json_object_get(body, "result");
	if (status != CMD_OK)
		alert(b, "error", "errors",
		      "The users cannot be shown:", json_object_get(body, "errors"));
	else if (json_array_size(rows) == 0)
		evbuffer_add_printf(b, "<p id=\"empty\">No local users.</p>");
	else
		table(b, "users", rows, NULL);
	json_decref(body);
	page_end(h, 200, b);
}

static void show_change(void *ud, const char *key, json_t *bv, json_t *av)
{
	struct evbuffer *b = ud;
	http_html(b, key);
	evbuffer_add_printf(b, ": ");
	if (bv)
		cell(b, bv);
	else
		evbuffer_add_printf(b, "-");
	evbuffer_add_printf(b, " &rarr; ");
	if (av)
		cell(b, av);
	else
		evbuffer_add_printf(b, "-");
	evbuffer_add_printf(b, "<br>");
}

static void audit_got(struct hreq *h, int status, json_t *body)
{
	if (status != CMD_OK) {
		cmd_failed(h, status, body);
		return;
	}
	struct evbuffer *b = page_begin(h, "/audit", "Audit log");
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
			cell(b, json_object_get(r, cols[i]));
			evbuffer_add_printf(b, "</td>");
		}
		evbuffer_add_printf(b, "<td>");
		policy_json_diff(json_object_get(r, "before"), json_object_get(r, "after"),
				 show_change, b);
		evbuffer_add_printf(b, "</td></tr>");
	}
	evbuffer_add_printf(b, "</tbody></table>");
	json_decref(body);
	page_end(h, 200, b);
}

static void status_got(struct hreq *h, int status, json_t *body)
{
	if (status != CMD_OK) {
		cmd_failed(h, status, body);
		return;
	}
	struct evbuffer *b = page_begin(h, "/status", "Federation status");
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
		table(b, "failing", failing, fcols);
	evbuffer_add_printf(b, "<h2>Streams</h2>");
	if (json_array_size(streams) == 0)
		evbuffer_add_printf(b, "<p id=\"empty\">No server-to-server streams now.</p>");
	else
		table(b, "streams", streams, cols);
	json_decref(streams);
	json_decref(failing);
	json_decref(body);
	page_end(h, 200, b);
}

/* Non-partners that knocked (status --refused), each with the way to
 * make it a partner: the New form with its domain filled in. */
static void refused_got(struct hreq *h, int status, json_t *body)
{
	if (status != CMD_OK) {
		cmd_failed(h, status, body);
		return;
	}
	struct evbuffer *b = page_begin(h, "/refused", "Who tried to federate");
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
				cell(b, json_object_get(r, cols[c]));
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
	page_end(h, 200, b);
}

/* ---- routing ---- */

void web_handle(struct hreq *h)
{
	const char *p = h->path;
	bool post = h->method == EVHTTP_REQ_POST;
	if (post && h->read_only) {
		web_error(h, 403,
			  "Your role (viewer) may only read: nothing was changed or saved.");
		return;
	}
	if (!post && (strcmp(p, "/") == 0 || strcmp(p, "/partners/") == 0)) {
		http_redirect(h, "/partners");
	} else if (!post && strcmp(p, "/partners") == 0) {
		http_cmd(h, "partner get", json_object(), false, partners_got);
	} else if (!post && strcmp(p, "/partners/new") == 0) {
		if (h->read_only) {
			web_error(h, 403, "Your role (viewer) may only read.");
			return;
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
			return;
		}
		const char *d = http_query(h, "domain");
		http_cmd(h, "partner get", json_pack("{s:s}", "domain", d ? d : ""), false,
			 delete_confirm);
	} else if (post && strcmp(p, "/partners/delete") == 0) {
		const char *d = http_form(h, "domain");
		h->keep = json_pack("{s:s}", "domain", d ? d : "");
		http_cmd(h, "partner remove", json_pack("{s:s}", "domain", d ? d : ""), false,
			 delete_done);
	} else if (!post && strcmp(p, "/gateway") == 0) {
		http_cmd(h, "gateway get", json_object(), false, gateway_got);
	} else if (post && strcmp(p, "/gateway") == 0) {
		gateway_commit(h);
	} else if (!post && strcmp(p, "/users") == 0) {
		http_cmd(h, "user list", json_object(), false, users_got);
	} else if (!post && strcmp(p, "/audit") == 0) {
		http_cmd(h, "audit", json_object(), false, audit_got);
	} else if (!post && strcmp(p, "/status") == 0) {
		http_cmd(h, "status", json_object(), false, status_got);
	} else if (!post && strcmp(p, "/refused") == 0) {
		http_cmd(h, "status", json_pack("{s:b}", "refused", 1), false, refused_got);
	} else {
		web_error(h, 404, "There is no such page.");
	}
}

/* The control panel's frame and parts every page uses: the style sheet,
 * the header and navigation, alerts and the flash message, tables, form
 * fields and the filter box. Pages live in web_*.c, one subject each;
 * web.c routes to them. Every string that reaches a page goes through
 * http_html(). */
#include "web_page.h"

#include "api.h"
#include "fg.h"
#include "policy_json.h"

#include <assert.h>
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char css_common[] =
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
	"details.row-warning summary{cursor:pointer}"
	".filter{margin:0 0 .8em}.filter input{width:22em;padding:.3em}"
	".signin{max-width:24em;margin:4em auto;background:#fff;border:1px solid #d5dbe1;"
	"padding:1.5em}"
	".signin .field label{width:7em}.signin .field input{width:13em}"
	"pre{white-space:pre-wrap;margin:0;font-size:.9em}";

const char *web_css(size_t *len)
{
	/* Joined once: the common rules, then each page file's. */
	static char all[32768];
	static size_t n;
	if (!n) {
		const char *const parts[] = {
			css_common,	  web_css_partners, web_css_partner_form, web_css_gateway,
			web_css_accounts, web_css_audit,    web_css_status};
		for (size_t i = 0; i < FG_ARRAY_LEN(parts); i++) {
			size_t l = strlen(parts[i]);
			assert(n + l < sizeof(all));
			memcpy(all + n, parts[i], l);
			n += l;
		}
	}
	*len = n;
	return all;
}

const char *const web_bools[] = {"true", "false", NULL};

/* ---- page frame ---- */

static const struct {
	const char *path, *title;
} nav[] = {
	{"/partners", "XMPP Federated Partners"},
	{"/gateway", "Gateway settings"},
	{"/users", "Users"},
	{"/admins", "Admins"},
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

void web_csrf_field(struct evbuffer *b, struct hreq *h)
{
	evbuffer_add_printf(b, "<input type=\"hidden\" name=\"csrf\" value=\"");
	http_html(b, http_csrf(h));
	evbuffer_add_printf(b, "\">");
}

struct evbuffer *web_page_begin(struct hreq *h, const char *active, const char *title)
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
		web_csrf_field(b, h);
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

void web_page_end(struct hreq *h, int code, struct evbuffer *b)
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

void web_alert(struct evbuffer *b, const char *cls, const char *id, const char *text, json_t *items)
{
	evbuffer_add_printf(b, "<div class=\"alert %s\" id=\"%s\" role=\"alert\">", cls, id);
	http_html(b, text);
	if (json_array_size(items))
		list_items(b, items);
	evbuffer_add_printf(b, "</div>");
}

/* The message and warnings of the change before the redirect. */
void web_flash(struct hreq *h, struct evbuffer *b)
{
	json_t *f = http_flash_take(h);
	if (!f)
		return;
	web_alert(b, "ok", "message", json_string_value(json_object_get(f, "message")), NULL);
	json_t *w = json_object_get(f, "warnings");
	if (json_array_size(w))
		web_alert(b, "warning", "warnings", "Warnings (saved all the same):", w);
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
		web_alert(b, "error", "error", error, NULL);
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
void web_cmd_failed(struct hreq *h, int status, json_t *body)
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

const char *web_text_of(json_t *o, const char *key, char *buf, size_t len)
{
	const char *s = policy_json_text(json_object_get(o, key), buf, len);
	return s ? s : "";
}

void web_join(struct evbuffer *b, json_t *arr, const char *sep)
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

/* ---- generic tables: users, audit, status ---- */

void web_cell(struct evbuffer *b, json_t *x)
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
void web_table(struct evbuffer *b, const char *id, json_t *rows, const char *const *cols)
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
				web_cell(b, json_object_get(r, *c));
				evbuffer_add_printf(b, "</td>");
			}
		} else {
			json_object_foreach(r, k, x)
			{
				evbuffer_add_printf(b, "<td>");
				web_cell(b, x);
				evbuffer_add_printf(b, "</td>");
			}
		}
		evbuffer_add_printf(b, "</tr>");
	}
	evbuffer_add_printf(b, "</tbody></table>");
}

const char *web_val(json_t *v, const char *key)
{
	const char *s = json_string_value(json_object_get(v, key));
	return s ? s : "";
}

/* The errors about one field, beside it. */
void web_field_errors(struct evbuffer *b, json_t *errors, const char *field)
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

void web_field_start(struct evbuffer *b, const char *id, const char *label)
{
	evbuffer_add_printf(b, "<div class=\"field\"><label for=\"%s\">%s</label>", id, label);
}

void web_input(struct evbuffer *b, struct hreq *h, json_t *v, json_t *errors, const char *key,
	       const char *label, const char *type, const char *hint, bool readonly)
{
	web_field_start(b, key, label);
	evbuffer_add_printf(b, "<input id=\"%s\" name=\"%s\" type=\"%s\" value=\"", key, key, type);
	http_html(b, web_val(v, key));
	evbuffer_add_printf(b, "\"%s%s>", readonly ? " readonly" : "",
			    h->read_only ? " disabled" : "");
	if (hint)
		evbuffer_add_printf(b, "<span class=\"hint\">%s</span>", hint);
	web_field_errors(b, errors, key);
	evbuffer_add_printf(b, "</div>");
}

void web_select_words(struct evbuffer *b, struct hreq *h, json_t *v, json_t *errors,
		      const char *key, const char *label, const char *const *options,
		      const char *(*word)(const char *))
{
	web_field_start(b, key, label);
	evbuffer_add_printf(b, "<select id=\"%s\" name=\"%s\"%s>", key, key,
			    h->read_only ? " disabled" : "");
	const char *cur = web_val(v, key);
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
				    strcmp(*o, cur) == 0 ? " selected" : "", word ? word(*o) : *o);
	evbuffer_add_printf(b, "</select>");
	web_field_errors(b, errors, key);
	evbuffer_add_printf(b, "</div>");
}

void web_select_field(struct evbuffer *b, struct hreq *h, json_t *v, json_t *errors,
		      const char *key, const char *label, const char *const *options)
{
	web_select_words(b, h, v, errors, key, label, options, NULL);
}

const char *web_word(const char *value)
{
	static const struct {
		const char *value, *word;
	} words[] = {
		{"federated", "Federated"},
		{"public-verified", "Public verified"},
		{"public-unverified", "Public unverified"},
		{"required", "Required"},
		{"optional", "Optional"},
		{"not-supported", "Not Supported"},
		{"true", "Enabled"},
		{"false", "Disabled"},
		{"off", "Off"},
		{"opportunistic", "Opportunistic"},
	};
	if (!value)
		return "";
	for (size_t i = 0; i < FG_ARRAY_LEN(words); i++)
		if (strcmp(words[i].value, value) == 0)
			return words[i].word;
	return value;
}

/* ---- lists: filter ---- */

const char *web_filter_query(struct hreq *h)
{
	const char *q = http_query(h, "q");
	return q && *q ? q : NULL;
}

void web_filter_box(struct evbuffer *b, struct hreq *h, const char *path, const char *placeholder)
{
	const char *q = web_filter_query(h);
	evbuffer_add_printf(b,
			    "<form class=\"filter\" method=\"get\" action=\"%s\">"
			    "<input type=\"search\" name=\"q\" id=\"q\" aria-label=\"Filter\" "
			    "placeholder=\"",
			    path);
	http_html(b, placeholder);
	evbuffer_add_printf(b, "\" value=\"");
	http_html(b, q ? q : "");
	evbuffer_add_printf(b, "\"> <button type=\"submit\" id=\"filter\">Filter</button>");
	if (q)
		evbuffer_add_printf(b, " <a href=\"%s\" id=\"clear-filter\">Show all</a>", path);
	evbuffer_add_printf(b, "</form>");
}

static bool contains_nocase(const char *hay, const char *needle)
{
	size_t n = strlen(needle);
	for (; *hay; hay++) {
		size_t i = 0;
		while (i < n && hay[i] &&
		       tolower((unsigned char)hay[i]) == tolower((unsigned char)needle[i]))
			i++;
		if (i == n)
			return true;
	}
	return n == 0;
}

static bool value_matches(json_t *x, const char *q)
{
	char num[32];
	const char *s = policy_json_text(x, num, sizeof(num));
	if (s)
		return contains_nocase(s, q);
	size_t i;
	const char *k;
	json_t *v;
	if (json_is_array(x))
		json_array_foreach(x, i, v) if (value_matches(v, q)) return true;
	if (json_is_object(x))
		json_object_foreach(x, k, v) if (value_matches(v, q)) return true;
	return false;
}

bool web_filter_match(struct hreq *h, json_t *row)
{
	const char *q = web_filter_query(h);
	return !q || value_matches(row, q);
}

/* ---- certificate verdicts ---- */

const char *web_cert_word(const char *text, const char **cls)
{
	static const struct {
		const char *needle, *word;
	} chain[] = {
		/* a root nobody here trusts, sent along: an untrusted issuer */
		{"self-signed certificate in certificate chain", "untrusted"},
		{"self signed certificate in certificate chain", "untrusted"},
		{"self-signed", "self-signed"},
		{"self signed", "self-signed"},
		{"expired", "expired"},
		{"not yet valid", "not yet valid"},
		{"revoked", "revoked"},
	};
	*cls = "bad";
	if (!text || !*text || strcmp(text, "none") == 0 || strstr(text, "not encrypted")) {
		*cls = "none";
		return "none";
	}
	if (strstr(text, "presented no certificate"))
		return "none sent";
	/* tls_peer_verify's words, or OpenSSL's reason alone (a stream whose
	 * peer has not named itself yet). A DNSSEC-secure TLSA record stands
	 * in for the chain (dane.c). */
	bool dane = strstr(text, "DANE: a DNSSEC-secure TLSA record") != NULL;
	if (!dane && (strstr(text, "chain is not trusted") || !strstr(text, "chain is trusted"))) {
		if (strcmp(text, "valid") == 0) {
			*cls = "good";
			return "valid";
		}
		for (size_t i = 0; i < FG_ARRAY_LEN(chain); i++)
			if (strcasestr(text, chain[i].needle))
				return chain[i].word;
		return "untrusted";
	}
	if (strstr(text, "is not among them") || strstr(text, "subjectAltName holds no") ||
	    strstr(text, "names no domain") || strstr(text, "has no subjectAltName") ||
	    strstr(text, "cannot prove"))
		return "wrong name";
	*cls = "good";
	return dane ? "valid (DANE)" : "valid";
}

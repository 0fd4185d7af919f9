/* Admin accounts of the panel and the API (/admins), and their named API
 * tokens.
 *
 *   GET  /admins                  the list, filtered by ?q=
 *   GET  /admins/new              POST /admins/new        admin add
 *   POST /admins/role             (name, role)            admin set
 *   GET  /admins/passwd?name=N    POST /admins/passwd     admin passwd
 *   GET  /admins/remove?name=N    POST /admins/remove     admin remove
 *   GET  /admins/tokens?name=N    the account's tokens     admin tokens N
 *   POST /admins/tokens/new       (name, label)           admin token
 *   POST /admins/tokens/revoke    (name, label)           admin token --revoke
 *
 * A new token is shown once, on the answer to its POST (never through the
 * session's flash, never again); the store keeps only its SHA-256. A
 * removal is tried as a what-if before the confirmation, so that the last
 * administrator is refused with its reason before anyone clicks Remove. */
#include "web_accounts.h"

#include "fg.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *const roles[] = {"administrator", "viewer", NULL};

static const char *role_word(const char *role)
{
	if (strcmp(role, "administrator") == 0)
		return "Administrator";
	if (strcmp(role, "viewer") == 0)
		return "Viewer";
	return role;
}

/* ---- the list ---- */

static void role_cell(struct evbuffer *b, struct hreq *h, const char *name, const char *role)
{
	if (h->read_only) {
		http_html(b, role_word(role));
		return;
	}
	evbuffer_add_printf(b, "<form class=\"inline\" method=\"post\" action=\"/admins/role\">");
	web_csrf_field(b, h);
	evbuffer_add_printf(b, "<input type=\"hidden\" name=\"name\" value=\"");
	http_html(b, name);
	evbuffer_add_printf(b, "\"><select name=\"role\" aria-label=\"Role of ");
	http_html(b, name);
	evbuffer_add_printf(b, "\">");
	for (const char *const *r = roles; *r; r++)
		evbuffer_add_printf(b, "<option value=\"%s\"%s>%s</option>", *r,
				    strcmp(*r, role) == 0 ? " selected" : "", role_word(*r));
	evbuffer_add_printf(b, "</select><button type=\"submit\" class=\"small secondary\" "
			       "name=\"change-role\">Change role</button></form>");
}

static void admins_render(struct hreq *h, int code, json_t *rows, json_t *errors)
{
	struct evbuffer *b = web_page_begin(h, "/admins", "Admins");
	if (!b) {
		http_send(h, 503, NULL, NULL);
		return;
	}
	web_flash(h, b);
	if (json_array_size(errors))
		web_alert(b, "error", "errors", "Refused; nothing was saved:", errors);
	evbuffer_add_printf(b, "<p class=\"muted\">Accounts of this control panel and of the API "
			       "(/api/v1/). Administrators change everything; viewers only "
			       "read.</p>");
	if (!h->read_only)
		evbuffer_add_printf(b, "<p class=\"toolbar\"><a class=\"button\" id=\"add-admin\" "
				       "href=\"/admins/new\">Add admin</a></p>");
	web_filter_box(b, h, "/admins", "name or role");
	size_t i, shown = 0;
	json_t *r;
	json_array_foreach(rows, i, r)
	{
		const char *name = web_val(r, "name"), *role = web_val(r, "role");
		json_object_set_new(r, "role_word", json_string(role_word(role)));
		if (!web_filter_match(h, r))
			continue;
		if (shown++ == 0)
			evbuffer_add_printf(b, "<table id=\"admins\"><thead><tr><th>Name</th>"
					       "<th>Role</th><th>API tokens</th><th>Created "
					       "(UTC)</th><th>Actions</th></tr></thead><tbody>");
		evbuffer_add_printf(b, "<tr data-name=\"");
		http_html(b, name);
		evbuffer_add_printf(b, "\"><td>");
		http_html(b, name);
		if (strcmp(name, h->who) == 0)
			evbuffer_add_printf(b, " <span class=\"muted\">(you)</span>");
		evbuffer_add_printf(b, "</td><td class=\"role\">");
		role_cell(b, h, name, role);
		evbuffer_add_printf(b, "</td><td class=\"tokens\">%lld</td><td>",
				    (long long)json_integer_value(json_object_get(r, "tokens")));
		web_accounts_when(b, web_val(r, "created"));
		evbuffer_add_printf(b, "</td><td class=\"actions\"><a class=\"show-tokens\" "
				       "href=\"/admins/tokens?name=");
		http_url(b, name);
		evbuffer_add_printf(b, "\">Tokens</a>");
		if (!h->read_only) {
			evbuffer_add_printf(b, "<a class=\"passwd\" href=\"/admins/passwd?name=");
			http_url(b, name);
			evbuffer_add_printf(b, "\">Set password</a><a class=\"remove\" "
					       "href=\"/admins/remove?name=");
			http_url(b, name);
			evbuffer_add_printf(b, "\">Remove</a>");
		}
		evbuffer_add_printf(b, "</td></tr>");
	}
	if (shown)
		evbuffer_add_printf(b,
				    "</tbody></table><p class=\"count\" id=\"count\">%zu of %zu "
				    "accounts</p>",
				    shown, json_array_size(rows));
	else
		evbuffer_add_printf(b, "<p id=\"empty\">%s</p>",
				    json_array_size(rows) ? "No account matches the filter."
							  : "No admin accounts.");
	web_page_end(h, code, b);
}

static void admins_got(struct hreq *h, int status, json_t *body)
{
	if (status != CMD_OK) {
		web_cmd_failed(h, status, body);
		return;
	}
	json_t *errors = json_object_get(h->keep, "errors");
	admins_render(h, json_array_size(errors) ? 422 : 200, json_object_get(body, "result"),
		      errors);
	json_decref(body);
}

/* A change from the list was refused: the list again, with why. */
static void admins_refused(struct hreq *h, json_t *body)
{
	json_decref(h->keep);
	h->keep = json_pack("{s:O}", "errors", json_object_get(body, "errors"));
	json_decref(body);
	http_cmd(h, "admin list", json_object(), false, admins_got);
}

/* The command's own message ("bob is now a viewer (was administrator)"). */
static void changed(struct hreq *h, int status, json_t *body)
{
	if (status != CMD_OK) {
		admins_refused(h, body);
		return;
	}
	char msg[400];
	snprintf(msg, sizeof(msg), "%s.", web_val(body, "message"));
	if (msg[0] >= 'a' && msg[0] <= 'z')
		msg[0] = (char)(msg[0] - 'a' + 'A');
	web_accounts_done(h, body, msg, "/admins");
}

/* ---- add and set password ---- */

/* The form of Add (name NULL) or Set password (for name). */
static void admin_form(struct hreq *h, int code, const char *name, json_t *typed, json_t *errors)
{
	struct evbuffer *b =
		web_page_begin(h, "/admins", name ? "Set an admin's password" : "Add admin");
	if (!b) {
		http_send(h, 503, NULL, NULL);
		return;
	}
	if (json_array_size(errors))
		web_alert(b, "error", "errors", "Refused; nothing was saved:", errors);
	evbuffer_add_printf(b, "<form class=\"record\" method=\"post\" action=\"%s\">",
			    name ? "/admins/passwd" : "/admins/new");
	web_csrf_field(b, h);
	if (name) {
		json_t *v = json_pack("{s:s}", "name", name);
		web_input(b, h, v, errors, "name", "Name", "text", NULL, true);
		json_decref(v);
	} else {
		web_input(b, h, typed, errors, "name", "Name", "text", "letters, digits, . _ - @",
			  false);
		web_select_field(b, h, typed, errors, "role", "Role", roles);
	}
	web_accounts_password_fields(b, errors);
	evbuffer_add_printf(b,
			    "<p><button type=\"submit\" id=\"save\">%s</button> <a class=\"button "
			    "secondary\" href=\"/admins\">Cancel</a></p></form>",
			    name ? "Set password" : "Add");
	web_page_end(h, code, b);
}

static void form_done(struct hreq *h, int status, json_t *body)
{
	bool add = json_is_true(json_object_get(h->keep, "add"));
	if (status != CMD_OK) {
		admin_form(h, 422, add ? NULL : web_val(h->keep, "name"), h->keep,
			   json_object_get(body, "errors"));
		json_decref(body);
		return;
	}
	char msg[400];
	if (add)
		snprintf(msg, sizeof(msg), "Added the admin account %s (%s).",
			 web_val(h->keep, "name"), web_val(h->keep, "role"));
	else
		snprintf(msg, sizeof(msg), "Password of %s changed.", web_val(h->keep, "name"));
	web_accounts_done(h, body, msg, "/admins");
}

static void form_post(struct hreq *h, bool add)
{
	const char *name = http_form(h, "name"), *role = http_form(h, "role");
	h->keep = json_pack("{s:s, s:s, s:b}", "name", name ? name : "", "role", role ? role : "",
			    "add", add);
	json_t *errors = json_array();
	const char *pw = web_accounts_password(h, errors);
	if (!pw) {
		admin_form(h, 422, add ? NULL : web_val(h->keep, "name"), h->keep, errors);
	} else {
		json_t *params = json_pack("{s:s, s:s}", "name", name ? name : "", "password", pw);
		if (add)
			json_object_set_new(params, "role", json_string(role ? role : ""));
		http_cmd(h, add ? "admin add" : "admin passwd", params, false, form_done);
	}
	json_decref(errors);
}

/* ---- remove ---- */

static void remove_ask(struct hreq *h, int status, json_t *body)
{
	if (status != CMD_OK) {
		admins_refused(h, body);
		return;
	}
	const char *name = web_val(h->keep, "name");
	char q[300];
	snprintf(q, sizeof(q),
		 "Remove the admin account %s? Its API tokens stop working and its sessions end "
		 "at once.",
		 name);
	web_accounts_confirm(h, "/admins", "Remove an admin", q, "/admins/remove", "name", name,
			     "/admins");
	json_decref(body);
}

/* ---- tokens ---- */

static void tokens_url(struct evbuffer *b, const char *name)
{
	evbuffer_add_printf(b, "/admins/tokens?name=");
	http_url(b, name);
}

static void tokens_render(struct hreq *h, int code, const char *name, json_t *rows, json_t *errors,
			  const char *typed)
{
	char title[120];
	snprintf(title, sizeof(title), "API tokens of %s", name);
	struct evbuffer *b = web_page_begin(h, "/admins", title);
	if (!b) {
		http_send(h, 503, NULL, NULL);
		return;
	}
	web_flash(h, b);
	if (json_array_size(errors))
		web_alert(b, "error", "errors", "Refused; nothing was saved:", errors);
	evbuffer_add_printf(b, "<p class=\"muted\">A program sends a token as "
			       "<code>Authorization: Bearer TOKEN</code> and acts with this "
			       "account's role. Give each program its own label, so that each "
			       "can be revoked alone. Only the labels are kept in view: a token "
			       "is shown once, when it is made.</p>");
	if (json_array_size(rows) == 0) {
		evbuffer_add_printf(b, "<p id=\"empty\">No API tokens.</p>");
	} else {
		evbuffer_add_printf(b,
				    "<table id=\"tokens\"><thead><tr><th>Label</th><th>Created "
				    "(UTC)</th><th>Last used (UTC)</th>%s</tr></thead><tbody>",
				    h->read_only ? "" : "<th>Actions</th>");
		size_t i;
		json_t *r;
		json_array_foreach(rows, i, r)
		{
			const char *label = web_val(r, "label");
			evbuffer_add_printf(b, "<tr data-label=\"");
			http_html(b, label);
			evbuffer_add_printf(b, "\"><td>");
			http_html(b, label);
			evbuffer_add_printf(b, "</td><td>");
			web_accounts_when(b, web_val(r, "created"));
			evbuffer_add_printf(b, "</td><td>");
			web_accounts_when(b, web_val(r, "last_used"));
			evbuffer_add_printf(b, "</td>");
			if (!h->read_only) {
				evbuffer_add_printf(b,
						    "<td class=\"actions\"><form class=\"inline\" "
						    "method=\"post\" "
						    "action=\"/admins/tokens/revoke\">");
				web_csrf_field(b, h);
				evbuffer_add_printf(b, "<input type=\"hidden\" name=\"name\" "
						       "value=\"");
				http_html(b, name);
				evbuffer_add_printf(b, "\"><input type=\"hidden\" name=\"label\" "
						       "value=\"");
				http_html(b, label);
				evbuffer_add_printf(b, "\"><button type=\"submit\" class=\"danger "
						       "small\" name=\"revoke\">Revoke</button>"
						       "</form></td>");
			}
			evbuffer_add_printf(b, "</tr>");
		}
		evbuffer_add_printf(b, "</tbody></table>");
	}
	if (!h->read_only) {
		evbuffer_add_printf(b, "<h2>New token</h2><form class=\"record\" method=\"post\" "
				       "action=\"/admins/tokens/new\">");
		web_csrf_field(b, h);
		evbuffer_add_printf(b, "<input type=\"hidden\" name=\"name\" value=\"");
		http_html(b, name);
		evbuffer_add_printf(b, "\">");
		json_t *v = json_pack("{s:s}", "label", typed ? typed : "");
		web_input(b, h, v, errors, "label", "Label", "text",
			  "e.g. prometheus; replaces a token with the same label", false);
		json_decref(v);
		evbuffer_add_printf(b, "<p><button type=\"submit\" id=\"new-token\">New token"
				       "</button></p></form>");
	}
	evbuffer_add_printf(b, "<p><a href=\"/admins\" id=\"back\">All admin accounts</a></p>");
	web_page_end(h, code, b);
}

static void tokens_got(struct hreq *h, int status, json_t *body)
{
	if (status != CMD_OK) {
		web_cmd_failed(h, status, body);
		return;
	}
	json_t *errors = json_object_get(h->keep, "errors");
	tokens_render(h, json_array_size(errors) ? 422 : 200, web_val(h->keep, "name"),
		      json_object_get(body, "result"), errors, web_val(h->keep, "label"));
	json_decref(body);
}

/* The tokens page of h->keep's name, with errors (NULL: none). */
static void tokens_show(struct hreq *h, json_t *errors)
{
	if (errors)
		json_object_set(h->keep, "errors", errors);
	http_cmd(h, "admin tokens", json_pack("{s:s}", "name", web_val(h->keep, "name")), false,
		 tokens_got);
}

/* The answer to New token: the only time the token is shown. */
static void token_made(struct hreq *h, int status, json_t *body)
{
	if (status != CMD_OK) {
		tokens_show(h, json_object_get(body, "errors"));
		json_decref(body);
		return;
	}
	json_t *r = json_object_get(body, "result");
	const char *name = web_val(r, "name"), *label = web_val(r, "label");
	struct evbuffer *b = web_page_begin(h, "/admins", "New API token");
	if (!b) {
		json_decref(body);
		http_send(h, 503, NULL, NULL);
		return;
	}
	char msg[300];
	snprintf(msg, sizeof(msg), "New API token '%s' for %s.", label, name);
	web_alert(b, "ok", "message", msg, NULL);
	if (json_is_true(json_object_get(r, "replaced"))) {
		snprintf(msg, sizeof(msg),
			 "It replaces the earlier token labelled '%s', which no longer works; the "
			 "other tokens still do.",
			 label);
		web_alert(b, "warning", "warnings", msg, NULL);
	}
	evbuffer_add_printf(b, "<p><strong id=\"once\">Copy it now: it will not be shown "
			       "again.</strong> Only its SHA-256 is stored, so nobody can show "
			       "it later; if it is lost, make a new one.</p><code class=\"token\" "
			       "id=\"token\">");
	http_html(b, web_val(r, "token"));
	evbuffer_add_printf(b, "</code><p>Send it as <code>Authorization: Bearer "
			       "TOKEN</code>.</p><p><a id=\"back\" href=\"");
	tokens_url(b, name);
	evbuffer_add_printf(b, "\">Back to the tokens of ");
	http_html(b, name);
	evbuffer_add_printf(b, "</a></p>");
	json_decref(body);
	web_page_end(h, 200, b);
}

static void token_revoked(struct hreq *h, int status, json_t *body)
{
	if (status != CMD_OK) {
		tokens_show(h, json_object_get(body, "errors"));
		json_decref(body);
		return;
	}
	const char *name = web_val(h->keep, "name");
	char msg[300];
	snprintf(msg, sizeof(msg), "Revoked the API token '%s' of %s; its other tokens still work.",
		 web_val(h->keep, "label"), name);
	struct evbuffer *to = evbuffer_new();
	if (!to) {
		json_decref(body);
		http_send(h, 503, NULL, NULL);
		return;
	}
	tokens_url(to, name);
	evbuffer_add(to, "", 1);
	web_accounts_done(h, body, msg, (const char *)evbuffer_pullup(to, -1));
	evbuffer_free(to);
}

static void token_post(struct hreq *h, bool revoke)
{
	const char *name = http_form(h, "name"), *label = http_form(h, "label");
	h->keep = json_pack("{s:s, s:s}", "name", name ? name : "", "label", label ? label : "");
	json_t *params = json_pack("{s:s}", "name", name ? name : "");
	/* An empty label is a new token's default, never "every token". */
	if (label && *label)
		json_object_set_new(params, "label", json_string(label));
	else if (revoke)
		json_object_set_new(params, "label", json_string(""));
	if (revoke)
		json_object_set_new(params, "revoke", json_true());
	http_cmd(h, "admin token", params, false, revoke ? token_revoked : token_made);
}

bool web_admins_route(struct hreq *h, bool post)
{
	const char *p = h->path;
	if (strcmp(p, "/admins") != 0 && strncmp(p, "/admins/", 8) != 0)
		return false;
	const char *name = post ? http_form(h, "name") : http_query(h, "name");
	name = name ? name : "";
	if (!post && strcmp(p, "/admins") == 0) {
		http_cmd(h, "admin list", json_object(), false, admins_got);
	} else if (!post && strcmp(p, "/admins/new") == 0) {
		if (!web_accounts_viewer_refused(h)) {
			json_t *v = json_pack("{s:s, s:s}", "name", "", "role", "viewer");
			admin_form(h, 200, NULL, v, NULL);
			json_decref(v);
		}
	} else if (post && strcmp(p, "/admins/new") == 0) {
		form_post(h, true);
	} else if (!post && strcmp(p, "/admins/passwd") == 0) {
		if (!web_accounts_viewer_refused(h))
			admin_form(h, 200, name, NULL, NULL);
	} else if (post && strcmp(p, "/admins/passwd") == 0) {
		form_post(h, false);
	} else if (post && strcmp(p, "/admins/role") == 0) {
		const char *role = http_form(h, "role");
		http_cmd(h, "admin set",
			 json_pack("{s:s, s:s}", "name", name, "role", role ? role : ""), false,
			 changed);
	} else if (!post && strcmp(p, "/admins/remove") == 0) {
		if (!web_accounts_viewer_refused(h)) {
			h->keep = json_pack("{s:s}", "name", name);
			http_cmd(h, "admin remove", json_pack("{s:s}", "name", name), true,
				 remove_ask);
		}
	} else if (post && strcmp(p, "/admins/remove") == 0) {
		http_cmd(h, "admin remove", json_pack("{s:s}", "name", name), false, changed);
	} else if (!post && strcmp(p, "/admins/tokens") == 0) {
		h->keep = json_pack("{s:s}", "name", name);
		tokens_show(h, NULL);
	} else if (post && strcmp(p, "/admins/tokens/new") == 0) {
		token_post(h, false);
	} else if (post && strcmp(p, "/admins/tokens/revoke") == 0) {
		token_post(h, true);
	} else {
		return false;
	}
	return true;
}

/* Local users (/users) and the parts the Admins page shares with it
 * (web_accounts.h); web.c reaches the Admins page through this file's
 * route.
 *
 *   GET  /users                 the list, filtered by ?q=
 *   GET  /users/new             POST /users/new        user add
 *   GET  /users/passwd?jid=J    POST /users/passwd     user passwd
 *   POST /users/federation      (jid, xmpp_access)     user set
 *   GET  /users/remove?jid=J    POST /users/remove     user remove
 *
 * Every change is the command the CLI runs, so it is validated and
 * audited alike. A refused form comes back with the command's messages
 * and what was typed, except the passwords. */
#include "web_accounts.h"

#include "conf.h"
#include "fg.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

const char web_css_accounts[] =
	"form.inline{display:inline;margin:0}"
	"td form.inline select{font:inherit;padding:.1em}"
	"button.small{padding:.15em .7em;font-size:.92em;margin-left:.4em}"
	".actions a{margin-right:.8em}"
	".count{color:#5a6672;margin:.4em 0}"
	".token{display:block;font:1.05em ui-monospace,monospace;background:#fff;"
	"border:1px solid #9bb;padding:.6em;margin:.6em 0;word-break:break-all}"
	"table#users,table#admins,table#tokens{max-width:70em;margin-top:.8em}";

/* ---- shared with web_admins.c ---- */

void web_accounts_when(struct evbuffer *b, const char *iso)
{
	if (!iso || !*iso) {
		evbuffer_add_printf(b, "<span class=\"muted\">never</span>");
		return;
	}
	/* YYYY-MM-DDTHH:MM:SS[.mmm]Z: the seconds and the zone letters are
	 * noise in a list (the column says UTC). */
	size_t n = strlen(iso);
	if (n >= 20 && n <= 24 && iso[10] == 'T' && iso[16] == ':' && iso[n - 1] == 'Z') {
		char s[17];
		memcpy(s, iso, 16);
		s[10] = ' ';
		s[16] = '\0';
		http_html(b, s);
		return;
	}
	http_html(b, iso);
}

void web_accounts_password_fields(struct evbuffer *b, json_t *errors)
{
	web_field_start(b, "password", "Password");
	evbuffer_add_printf(b, "<input id=\"password\" name=\"password\" type=\"password\" "
			       "autocomplete=\"new-password\" required>"
			       "<span class=\"hint\">at least 8 characters</span>");
	web_field_errors(b, errors, "password");
	evbuffer_add_printf(b, "</div>");
	web_field_start(b, "confirm", "Confirm password");
	evbuffer_add_printf(b, "<input id=\"confirm\" name=\"confirm\" type=\"password\" "
			       "autocomplete=\"new-password\" required>");
	web_field_errors(b, errors, "confirm");
	evbuffer_add_printf(b, "</div>");
}

const char *web_accounts_password(struct hreq *h, json_t *errors)
{
	const char *pw = http_form(h, "password");
	const char *again = http_form(h, "confirm");
	if (!pw || !again || strcmp(pw, again) != 0) {
		json_array_append_new(errors,
				      json_pack("{s:s, s:s}", "field", "confirm", "message",
						"the two passwords differ; type the same password "
						"in both fields"));
		return NULL;
	}
	return pw;
}

void web_accounts_confirm(struct hreq *h, const char *active, const char *title,
			  const char *question, const char *action, const char *key,
			  const char *value, const char *back)
{
	struct evbuffer *b = web_page_begin(h, active, title);
	if (!b) {
		http_send(h, 503, NULL, NULL);
		return;
	}
	evbuffer_add_printf(b, "<p id=\"confirm-text\">");
	http_html(b, question);
	evbuffer_add_printf(b, "</p><form method=\"post\" action=\"%s\">", action);
	web_csrf_field(b, h);
	evbuffer_add_printf(b, "<input type=\"hidden\" name=\"%s\" value=\"", key);
	http_html(b, value);
	evbuffer_add_printf(b,
			    "\"><button type=\"submit\" class=\"danger\" id=\"remove\">Remove"
			    "</button> <a class=\"button secondary\" href=\"%s\">Cancel</a></form>",
			    back);
	web_page_end(h, 200, b);
}

void web_accounts_done(struct hreq *h, json_t *body, const char *message, const char *to)
{
	json_t *f = json_object();
	json_object_set_new(f, "message", json_string(message));
	json_object_set(f, "warnings", json_object_get(body, "warnings"));
	http_flash_set(h, f);
	json_decref(body);
	http_redirect(h, to);
}

bool web_accounts_viewer_refused(struct hreq *h)
{
	if (!h->read_only)
		return false;
	web_error(h, 403, "Your role (viewer) may only read.");
	return true;
}

/* ---- users: the list ---- */

static void users_render(struct hreq *h, int code, json_t *rows, json_t *errors)
{
	struct evbuffer *b = web_page_begin(h, "/users", "Users");
	if (!b) {
		http_send(h, 503, NULL, NULL);
		return;
	}
	web_flash(h, b);
	if (json_array_size(errors))
		web_alert(b, "error", "errors", "Refused; nothing was saved:", errors);
	if (!h->read_only)
		evbuffer_add_printf(b, "<p class=\"toolbar\"><a class=\"button\" id=\"add-user\" "
				       "href=\"/users/new\">Add user</a></p>");
	web_filter_box(b, h, "/users", "JID, allowed, denied");
	size_t i, shown = 0;
	json_t *r;
	json_array_foreach(rows, i, r)
	{
		/* The words shown are what the filter finds too. */
		bool fed = json_is_true(json_object_get(r, "xmpp_access"));
		json_object_set_new(r, "federation", json_string(fed ? "Allowed" : "Denied"));
		if (!web_filter_match(h, r))
			continue;
		if (shown++ == 0)
			evbuffer_add_printf(b,
					    "<table id=\"users\"><thead><tr><th>JID</th>"
					    "<th>Federation with partners</th>"
					    "<th>Created (UTC)</th>%s</tr></thead><tbody>",
					    h->read_only ? "" : "<th>Actions</th>");
		const char *jid = web_val(r, "jid");
		evbuffer_add_printf(b, "<tr data-jid=\"");
		http_html(b, jid);
		evbuffer_add_printf(b, "\"><td>");
		http_html(b, jid);
		evbuffer_add_printf(b, "</td><td class=\"federation\">%s",
				    fed ? "Allowed" : "Denied");
		if (!h->read_only) {
			evbuffer_add_printf(b, "<form class=\"inline\" method=\"post\" "
					       "action=\"/users/federation\">");
			web_csrf_field(b, h);
			evbuffer_add_printf(b, "<input type=\"hidden\" name=\"jid\" value=\"");
			http_html(b, jid);
			evbuffer_add_printf(b,
					    "\"><input type=\"hidden\" name=\"xmpp_access\" "
					    "value=\"%s\"><button type=\"submit\" class=\"small "
					    "secondary\" name=\"toggle\">%s</button></form>",
					    fed ? "false" : "true", fed ? "Deny" : "Allow");
		}
		evbuffer_add_printf(b, "</td><td>");
		web_accounts_when(b, web_val(r, "created"));
		evbuffer_add_printf(b, "</td>");
		if (!h->read_only) {
			evbuffer_add_printf(b, "<td class=\"actions\"><a class=\"passwd\" "
					       "href=\"/users/passwd?jid=");
			http_url(b, jid);
			evbuffer_add_printf(b, "\">Set password</a><a class=\"remove\" "
					       "href=\"/users/remove?jid=");
			http_url(b, jid);
			evbuffer_add_printf(b, "\">Remove</a></td>");
		}
		evbuffer_add_printf(b, "</tr>");
	}
	if (shown) {
		evbuffer_add_printf(b,
				    "</tbody></table><p class=\"count\" id=\"count\">%zu of %zu "
				    "users</p>",
				    shown, json_array_size(rows));
	} else if (json_array_size(rows)) {
		evbuffer_add_printf(b, "<p id=\"empty\">No user matches the filter.</p>");
	} else {
		evbuffer_add_printf(b, "<p id=\"empty\">No local users.</p>");
	}
	web_page_end(h, code, b);
}

static void users_got(struct hreq *h, int status, json_t *body)
{
	if (status != CMD_OK) {
		web_cmd_failed(h, status, body);
		return;
	}
	/* After a refused button: its errors, kept in h->keep. */
	json_t *errors = json_object_get(h->keep, "errors");
	users_render(h, json_array_size(errors) ? 422 : 200, json_object_get(body, "result"),
		     errors);
	json_decref(body);
}

/* A change from the list was refused: the list again, with why. */
static void users_refused(struct hreq *h, json_t *body)
{
	json_decref(h->keep);
	h->keep = json_pack("{s:O}", "errors", json_object_get(body, "errors"));
	json_decref(body);
	http_cmd(h, "user list", json_object(), false, users_got);
}

static void federation_done(struct hreq *h, int status, json_t *body)
{
	if (status != CMD_OK) {
		users_refused(h, body);
		return;
	}
	char msg[400];
	snprintf(msg, sizeof(msg), "Federation with partners %s for %s.",
		 json_is_true(json_object_get(json_object_get(body, "result"), "xmpp_access"))
			 ? "allowed"
			 : "denied",
		 web_val(json_object_get(body, "result"), "jid"));
	web_accounts_done(h, body, msg, "/users");
}

/* ---- users: add and set password ---- */

/* The form of Add (jid NULL) or Set password (for jid). */
static void user_form(struct hreq *h, int code, const char *jid, const char *typed, json_t *errors)
{
	struct evbuffer *b =
		web_page_begin(h, "/users", jid ? "Set a user's password" : "Add user");
	if (!b) {
		http_send(h, 503, NULL, NULL);
		return;
	}
	if (json_array_size(errors))
		web_alert(b, "error", "errors", "Refused; nothing was saved:", errors);
	evbuffer_add_printf(b, "<form class=\"record\" method=\"post\" action=\"%s\">",
			    jid ? "/users/passwd" : "/users/new");
	web_csrf_field(b, h);
	if (jid) {
		web_field_start(b, "jid", "User");
		evbuffer_add_printf(b, "<input id=\"jid\" name=\"jid\" readonly value=\"");
		http_html(b, jid);
		evbuffer_add_printf(b, "\"></div>");
	} else {
		const char *dom = h->env->live.conf && h->env->live.conf->domains.n
					  ? h->env->live.conf->domains.v[0]
					  : "contoso.test";
		web_field_start(b, "jid", "JID or name");
		evbuffer_add_printf(b, "<input id=\"jid\" name=\"jid\" required value=\"");
		http_html(b, typed ? typed : "");
		evbuffer_add_printf(b, "\"><span class=\"hint\">alice@");
		http_html(b, dom);
		evbuffer_add_printf(b, ", or alice for alice@");
		http_html(b, dom);
		evbuffer_add_printf(b, "</span>");
		web_field_errors(b, errors, "jid");
		evbuffer_add_printf(b, "</div>");
	}
	web_accounts_password_fields(b, errors);
	evbuffer_add_printf(b,
			    "<p><button type=\"submit\" id=\"save\">%s</button> <a class=\"button "
			    "secondary\" href=\"/users\">Cancel</a></p></form>",
			    jid ? "Set password" : "Add");
	web_page_end(h, code, b);
}

static void add_done(struct hreq *h, int status, json_t *body)
{
	const char *jid = web_val(h->keep, "jid");
	if (status != CMD_OK) {
		user_form(h, 422, NULL, web_val(h->keep, "typed"), json_object_get(body, "errors"));
		json_decref(body);
		return;
	}
	char msg[400];
	snprintf(msg, sizeof(msg), "Added the user %s.", jid);
	web_accounts_done(h, body, msg, "/users");
}

static void passwd_done(struct hreq *h, int status, json_t *body)
{
	if (status != CMD_OK) {
		user_form(h, status == CMD_NOT_FOUND ? 404 : 422, web_val(h->keep, "jid"), NULL,
			  json_object_get(body, "errors"));
		json_decref(body);
		return;
	}
	char msg[400];
	snprintf(msg, sizeof(msg), "Password of %s changed.", web_val(h->keep, "jid"));
	web_accounts_done(h, body, msg, "/users");
}

/* A name without '@' is a user of the first local domain. */
static char *full_jid(struct hreq *h, const char *typed)
{
	const struct fg_conf *c = h->env->live.conf;
	char *s = NULL;
	if (*typed && !strchr(typed, '@') && c && c->domains.n) {
		size_t n = strlen(typed) + strlen(c->domains.v[0]) + 2;
		s = malloc(n);
		if (s)
			snprintf(s, n, "%s@%s", typed, c->domains.v[0]);
	} else {
		s = strdup(typed);
	}
	return s;
}

static void user_post(struct hreq *h, bool add)
{
	const char *typed = http_form(h, "jid");
	typed = typed ? typed : "";
	char *jid = add ? full_jid(h, typed) : strdup(typed);
	if (!jid) {
		http_send(h, 503, NULL, NULL);
		return;
	}
	h->keep = json_pack("{s:s, s:s}", "jid", jid, "typed", typed);
	json_t *errors = json_array();
	const char *pw = web_accounts_password(h, errors);
	if (!pw) {
		user_form(h, 422, add ? NULL : jid, typed, errors);
	} else {
		http_cmd(h, add ? "user add" : "user passwd",
			 json_pack("{s:s, s:s}", "jid", jid, "password", pw), false,
			 add ? add_done : passwd_done);
	}
	json_decref(errors);
	free(jid);
}

/* ---- users: remove ---- */

static void remove_ask(struct hreq *h, int status, json_t *body)
{
	if (status != CMD_OK) {
		web_cmd_failed(h, status, body);
		return;
	}
	const char *jid = web_val(json_object_get(body, "result"), "jid");
	char q[600];
	snprintf(q, sizeof(q),
		 "Remove the user %s with their roster, offline messages and vCard? Their "
		 "sessions close at once.",
		 jid);
	web_accounts_confirm(h, "/users", "Remove a user", q, "/users/remove", "jid", jid,
			     "/users");
	json_decref(body);
}

static void remove_done(struct hreq *h, int status, json_t *body)
{
	if (status != CMD_OK) {
		users_refused(h, body);
		return;
	}
	char msg[400];
	snprintf(msg, sizeof(msg), "Removed the user %s.", web_val(h->keep, "jid"));
	web_accounts_done(h, body, msg, "/users");
}

bool web_accounts_route(struct hreq *h, bool post)
{
	const char *p = h->path;
	if (strcmp(p, "/users") != 0 && strncmp(p, "/users/", 7) != 0)
		return web_admins_route(h, post);
	const char *jid = post ? http_form(h, "jid") : http_query(h, "jid");
	if (!post && strcmp(p, "/users") == 0) {
		http_cmd(h, "user list", json_object(), false, users_got);
	} else if (!post && strcmp(p, "/users/new") == 0) {
		if (!web_accounts_viewer_refused(h))
			user_form(h, 200, NULL, NULL, NULL);
	} else if (post && strcmp(p, "/users/new") == 0) {
		user_post(h, true);
	} else if (!post && strcmp(p, "/users/passwd") == 0) {
		if (!web_accounts_viewer_refused(h))
			user_form(h, 200, jid ? jid : "", NULL, NULL);
	} else if (post && strcmp(p, "/users/passwd") == 0) {
		user_post(h, false);
	} else if (post && strcmp(p, "/users/federation") == 0) {
		const char *v = http_form(h, "xmpp_access");
		http_cmd(h, "user set",
			 json_pack("{s:s, s:s}", "jid", jid ? jid : "", "xmpp_access", v ? v : ""),
			 false, federation_done);
	} else if (!post && strcmp(p, "/users/remove") == 0) {
		if (!web_accounts_viewer_refused(h))
			http_cmd(h, "user get", json_pack("{s:s}", "jid", jid ? jid : ""), false,
				 remove_ask);
	} else if (post && strcmp(p, "/users/remove") == 0) {
		h->keep = json_pack("{s:s}", "jid", jid ? jid : "");
		http_cmd(h, "user remove", json_pack("{s:s}", "jid", jid ? jid : ""), false,
			 remove_done);
	} else {
		return false;
	}
	return true;
}

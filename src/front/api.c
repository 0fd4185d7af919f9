/* The JSON API under /api/v1/: each endpoint is one command of the
 * command layer, so validation, messages, audit and the read-only role are
 * the CLI's own.
 *
 *   GET    /partners            partner get          POST /partners       partner new
 *   GET    /partners/{domain}   partner get D        PUT|PATCH            partner set D
 *   DELETE /partners/{domain}   partner remove D
 *   GET    /gateway             gateway get          PUT|PATCH /gateway   gateway set
 *   GET    /status[?refused=1|?failing=true] status [--refused|--failing]
 *   GET    /audit[?since=&filter=&limit=&offset=]   audit
 *   POST   /partners/{domain}/retry                   partner retry D
 *   GET    /partners/{domain}/history                 partner history D
 *   GET    /users               user list            POST /users          user add
 *   GET    /users/{name}        user get             PUT|PATCH            user set
 *   DELETE /users/{name}        user remove
 *   GET    /admins              admin list           POST /admins         admin add
 *   PUT|PATCH /admins/{name}    admin set (role)     DELETE /admins/{name} admin remove
 *   PUT    /admins/{name}/password                    admin passwd
 *   GET    /admins/{name}/tokens                      admin tokens NAME
 *   POST   /admins/{name}/tokens  {"label"}           admin token NAME --label L
 *   DELETE /admins/{name}/tokens[/{label}]            admin token NAME --revoke [--label L]
 *
 * ?what_if=true on a change validates and shows without saving. PUT
 * replaces a partner: fields the body leaves out get their defaults; PATCH
 * changes only the fields given (and takes add_domain, remove_domain,
 * clear_domains). Answers: {"result", "warnings", "errors": [{"field",
 * "message"}], "message"}; 200/201 done, 400 malformed, 401 who are you,
 * 403 viewer, 404 not found, 422 refused by validation (nothing saved). */
#include "api.h"

#include "fg.h"
#include "jsonin.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define API_PREFIX "/api/v1/"

static int http_status(int status, bool created)
{
	switch (status) {
	case CMD_OK: return created ? 201 : 200;
	case CMD_USAGE: return 400;
	case CMD_NOT_FOUND: return 404;
	default: return 422;
	}
}

static void reply(struct hreq *h, int status, json_t *body)
{
	bool created = h->state != NULL && status == CMD_OK &&
		       !json_is_true(json_object_get(body, "what_if"));
	if (!json_object_get(body, "warnings"))
		json_object_set_new(body, "warnings", json_array());
	http_send_json(h, http_status(status, created), body);
}

static bool what_if(struct hreq *h)
{
	const char *w = http_query(h, "what_if");
	return w && (strcmp(w, "true") == 0 || strcmp(w, "1") == 0);
}

/* The request body as a JSON object, or NULL after answering 400. */
static json_t *body_object(struct hreq *h)
{
	if (h->body_len == 0)
		return json_object();
	struct jsonin_error e;
	json_t *j = jsonin_load(h->body, h->body_len, &e);
	char what[600], msg[700];
	if (!j) {
		jsonin_describe(&e, what, sizeof(what));
		snprintf(msg, sizeof(msg), "%s; nothing was saved", what);
		http_send_error(h, 400, e.key[0] ? e.key : NULL, msg);
		return NULL;
	}
	if (!json_is_object(j)) {
		json_decref(j);
		http_send_error(h, 400, NULL,
				"the body must be a JSON object of fields, e.g. {\"tls\": "
				"\"optional\"}; nothing was saved");
		return NULL;
	}
	return j;
}

/* Runs cmd with params (stolen) after the role check. */
static void run(struct hreq *h, const char *cmd, json_t *params, bool created)
{
	const struct cmd_def *def = cmd_find(cmd);
	char msg[300];
	if (!def) {
		json_decref(params);
		snprintf(msg, sizeof(msg),
			 "this fedgate has no '%s' command, so this endpoint is not available",
			 cmd);
		http_send_error(h, 404, NULL, msg);
		return;
	}
	if (def->writes && h->read_only) {
		json_decref(params);
		snprintf(msg, sizeof(msg), "%s %s; your role (%s) may only read", cmd,
			 def->writes == CMD_ACTS ? "acts on the running daemon"
						 : "changes the configuration",
			 admin_role_name(h->role));
		http_send_error(h, 403, NULL, msg);
		return;
	}
	/* Marks a create, so that success is 201. */
	if (created)
		h->state = calloc(1, 1);
	http_cmd(h, cmd, params, def->writes && what_if(h), reply);
}

/* /partners/DOMAIN/<action>: the command on the domain between
 * "partners/" and the action's segment (domain[0..len)). */
static void partner_action(struct hreq *h, const char *domain, size_t len, const char *cmd)
{
	char *d = strndup(domain, len);
	if (!d || strchr(d, '/')) {
		free(d);
		http_send_error(h, 404, NULL, "no such resource");
		return;
	}
	json_t *params = json_object();
	json_object_set_new(params, "domain", json_string(d));
	free(d);
	run(h, cmd, params, false);
}

/* The key of a command's first positional parameter ("domain", "name"),
 * where the last path segment goes. */
static const char *positional(const char *cmd)
{
	const struct cmd_def *def = cmd_find(cmd);
	if (!def)
		return "name";
	for (const struct cmd_param *p = def->params; p->name; p++)
		if (!p->flag)
			return p->name;
	return "name";
}

static void method_not_allowed(struct hreq *h, const char *allow)
{
	evhttp_add_header(evhttp_request_get_output_headers(h->req), "Allow", allow);
	char msg[200];
	snprintf(msg, sizeof(msg), "this resource takes %s", allow);
	http_send_error(h, 405, NULL, msg);
}

/* PUT replaces: every field the body leaves out is reset to its default. */
static void partner_defaults(json_t *p)
{
	static const char *const strs[][2] = {
		{"description", ""}, {"partner_type", "public-unverified"},
		{"tls", "required"}, {"sasl", "required"},
		{"proxy_fqdn", ""},  {"dane", "off"},
	};
	for (size_t i = 0; i < FG_ARRAY_LEN(strs); i++)
		if (!json_object_get(p, strs[i][0]))
			json_object_set_new(p, strs[i][0], json_string(strs[i][1]));
	if (!json_object_get(p, "additional_domains"))
		json_object_set_new(p, "additional_domains", json_array());
	if (!json_object_get(p, "pins"))
		json_object_set_new(p, "pins", json_array());
	if (!json_object_get(p, "bidi"))
		json_object_set_new(p, "bidi", json_true());
	if (!json_object_get(p, "dialback"))
		json_object_set_new(p, "dialback", json_true());
	if (!json_object_get(p, "keepalive"))
		json_object_set_new(p, "keepalive", json_true());
	if (!json_object_get(p, "enabled"))
		json_object_set_new(p, "enabled", json_true());
	if (!json_object_get(p, "connection_limit"))
		json_object_set_new(p, "connection_limit", json_integer(0));
}

/* A collection (partners, users) and its items. */
static void collection(struct hreq *h, const char *rest, const char *list_cmd, const char *new_cmd,
		       const char *get_cmd, const char *set_cmd, const char *remove_cmd,
		       bool is_partner)
{
	json_t *body;
	if (*rest == '\0') {
		if (h->method == EVHTTP_REQ_GET || h->method == EVHTTP_REQ_HEAD) {
			json_t *params = json_object();
			const char *filter = http_query(h, "filter");
			if (filter && is_partner)
				json_object_set_new(params, "filter", json_string(filter));
			run(h, list_cmd, params, false);
		} else if (h->method == EVHTTP_REQ_POST) {
			if ((body = body_object(h)))
				run(h, new_cmd, body, true);
		} else {
			method_not_allowed(h, "GET, POST");
		}
		return;
	}
	if (strchr(rest, '/')) {
		http_send_error(h, 404, NULL, "no such resource");
		return;
	}
	const char *key = positional(get_cmd);
	switch (h->method) {
	case EVHTTP_REQ_GET:
	case EVHTTP_REQ_HEAD:
		body = json_object();
		json_object_set_new(body, key, json_string(rest));
		run(h, get_cmd, body, false);
		return;
	case EVHTTP_REQ_PUT:
	case EVHTTP_REQ_PATCH:
		if (!(body = body_object(h)))
			return;
		if (is_partner && h->method == EVHTTP_REQ_PUT)
			partner_defaults(body);
		json_object_set_new(body, positional(set_cmd), json_string(rest));
		run(h, set_cmd, body, false);
		return;
	case EVHTTP_REQ_DELETE:
		body = json_object();
		json_object_set_new(body, positional(remove_cmd), json_string(rest));
		run(h, remove_cmd, body, false);
		return;
	default: method_not_allowed(h, "GET, PUT, PATCH, DELETE");
	}
}

/* /admins/...: rest is what follows "admins" ("", "/alice", "/alice/tokens",
 * "/alice/tokens/prometheus", "/alice/password"). */
static void admins(struct hreq *h, const char *rest)
{
	bool get = h->method == EVHTTP_REQ_GET || h->method == EVHTTP_REQ_HEAD;
	json_t *body;
	if (*rest == '\0') {
		if (get)
			run(h, "admin list", json_object(), false);
		else if (h->method == EVHTTP_REQ_POST) {
			if ((body = body_object(h)))
				run(h, "admin add", body, true);
		} else
			method_not_allowed(h, "GET, POST");
		return;
	}
	char name[ADMIN_NAME_MAX + 2], sub[16], label[ADMIN_LABEL_MAX + 2];
	name[0] = sub[0] = label[0] = '\0';
	/* At most three segments, each short: anything else is no resource. */
	const char *p = rest + 1, *slash = strchr(p, '/');
	size_t n = slash ? (size_t)(slash - p) : strlen(p);
	if (n == 0 || n >= sizeof(name))
		goto none;
	memcpy(name, p, n);
	name[n] = '\0';
	if (slash) {
		p = slash + 1;
		slash = strchr(p, '/');
		n = slash ? (size_t)(slash - p) : strlen(p);
		if (n == 0 || n >= sizeof(sub))
			goto none;
		memcpy(sub, p, n);
		sub[n] = '\0';
		if (slash) {
			p = slash + 1;
			n = strlen(p);
			if (n == 0 || n >= sizeof(label) || strchr(p, '/') ||
			    strcmp(sub, "tokens") != 0)
				goto none;
			memcpy(label, p, n + 1);
		}
	}
	if (!sub[0]) {
		if (h->method == EVHTTP_REQ_PUT || h->method == EVHTTP_REQ_PATCH) {
			if ((body = body_object(h))) {
				json_object_set_new(body, "name", json_string(name));
				run(h, "admin set", body, false);
			}
		} else if (h->method == EVHTTP_REQ_DELETE) {
			run(h, "admin remove", json_pack("{s:s}", "name", name), false);
		} else {
			method_not_allowed(h, "PUT, PATCH, DELETE");
		}
	} else if (strcmp(sub, "password") == 0) {
		if (h->method != EVHTTP_REQ_PUT) {
			method_not_allowed(h, "PUT");
		} else if ((body = body_object(h))) {
			json_object_set_new(body, "name", json_string(name));
			run(h, "admin passwd", body, false);
		}
	} else if (strcmp(sub, "tokens") == 0) {
		if (get && !label[0]) {
			run(h, "admin tokens", json_pack("{s:s}", "name", name), false);
		} else if (h->method == EVHTTP_REQ_POST && !label[0]) {
			if ((body = body_object(h))) {
				json_object_set_new(body, "name", json_string(name));
				json_object_del(body, "revoke");
				run(h, "admin token", body, true);
			}
		} else if (h->method == EVHTTP_REQ_DELETE) {
			body = json_pack("{s:s, s:b}", "name", name, "revoke", true);
			if (label[0])
				json_object_set_new(body, "label", json_string(label));
			run(h, "admin token", body, false);
		} else {
			method_not_allowed(h, label[0] ? "DELETE" : "GET, POST, DELETE");
		}
	} else {
		goto none;
	}
	return;
none:
	http_send_error(h, 404, NULL,
			"no such resource; under /api/v1/admins/NAME there are password and "
			"tokens[/LABEL]");
}

void api_handle(struct hreq *h)
{
	if (strncmp(h->path, API_PREFIX, strlen(API_PREFIX)) != 0) {
		http_send_error(h, 404, NULL, "the API lives under /api/v1/");
		return;
	}
	const char *p = h->path + strlen(API_PREFIX);
	bool get = h->method == EVHTTP_REQ_GET || h->method == EVHTTP_REQ_HEAD;
	size_t plen = strlen(p);
	if (strncmp(p, "partners/", 9) == 0 && plen > 17 && strcmp(p + plen - 8, "/history") == 0) {
		if (!get) {
			method_not_allowed(h, "GET");
			return;
		}
		partner_action(h, p + 9, plen - 17, "partner history");
	} else if (strncmp(p, "partners/", 9) == 0 && plen > 15 &&
		   strcmp(p + plen - 6, "/retry") == 0) {
		if (h->method != EVHTTP_REQ_POST) {
			method_not_allowed(h, "POST");
			return;
		}
		partner_action(h, p + 9, plen - 15, "partner retry");
	} else if (strcmp(p, "partners") == 0 || strncmp(p, "partners/", 9) == 0) {
		collection(h, p[8] ? p + 9 : "", "partner get", "partner new", "partner get",
			   "partner set", "partner remove", true);
	} else if (strcmp(p, "users") == 0 || strncmp(p, "users/", 6) == 0) {
		collection(h, p[5] ? p + 6 : "", "user list", "user add", "user get", "user set",
			   "user remove", false);
	} else if (strcmp(p, "admins") == 0 || strncmp(p, "admins/", 7) == 0) {
		admins(h, p + 6);
	} else if (strcmp(p, "gateway") == 0) {
		json_t *body;
		if (get)
			run(h, "gateway get", json_object(), false);
		else if (h->method == EVHTTP_REQ_PUT || h->method == EVHTTP_REQ_PATCH) {
			if ((body = body_object(h)))
				run(h, "gateway set", body, false);
		} else
			method_not_allowed(h, "GET, PUT, PATCH");
	} else if (strcmp(p, "status") == 0) {
		json_t *params = json_object();
		const char *failing = http_query(h, "failing");
		const char *refused = http_query(h, "refused");
		if (failing && strcmp(failing, "true") == 0)
			json_object_set_new(params, "failing", json_true());
		if (refused && (strcmp(refused, "1") == 0 || strcmp(refused, "true") == 0))
			json_object_set_new(params, "refused", json_true());
		if (get) {
			run(h, "status", params, false);
		} else {
			json_decref(params);
			method_not_allowed(h, "GET");
		}
	} else if (strcmp(p, "probe") == 0) {
		json_t *body;
		if (h->method != EVHTTP_REQ_POST)
			method_not_allowed(h, "POST");
		else if ((body = body_object(h)))
			run(h, "probe", body, false);
	} else if (strcmp(p, "audit") == 0) {
		if (!get) {
			method_not_allowed(h, "GET");
			return;
		}
		/* The command checks them (a count that is not one is a 400). */
		json_t *params = json_object();
		static const char *const keys[] = {"since", "filter", "limit", "offset"};
		for (size_t i = 0; i < FG_ARRAY_LEN(keys); i++) {
			const char *v = http_query(h, keys[i]);
			if (v)
				json_object_set_new(params, keys[i], json_string(v));
		}
		run(h, "audit", params, false);
	} else {
		http_send_error(h, 404, NULL,
				"no such resource; the API has partners, gateway, status, audit, "
				"probe, users and admins");
	}
}

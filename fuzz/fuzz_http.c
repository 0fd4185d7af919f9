/* libFuzzer target for what an HTTP client reaches after signing in: the
 * request target (path decoding, query fields), the Cookie header, an
 * urlencoded or JSON body, and the routing of the API (api_handle) and the
 * control panel (web_handle), down to the commands they run on a fresh
 * store (cmd_fixture.h). The request is a libevent request without a
 * connection; evhttp_send_reply is wrapped (-Wl,--wrap, see
 * CMakeLists.txt) to see each answer before libevent frees it.
 *
 * Input: method byte, flags byte (viewer role, form or JSON body), then
 * "URI\nCOOKIE\nBODY". Invariants: a decoded path is short and holds no
 * NUL; the cookie reader returns a value it would find again; every
 * request gets exactly one answer, with a known code and the security
 * headers; API answers are JSON with errors on failure; 405 says what is
 * allowed; a redirect stays on this server; markup the input carries never
 * comes back unescaped; a viewer changes nothing. */
#include <event2/buffer.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/queue.h>

#include "fuzz.h"
#include "api.h"
#include "cmd_fixture.h"
#include "http.h"
#include "http_server.h"
#include "web.h"

void __real_evhttp_send_reply(struct evhttp_request *req, int code, const char *reason,
			      struct evbuffer *databuf);
void __wrap_evhttp_send_reply(struct evhttp_request *req, int code, const char *reason,
			      struct evbuffer *databuf);

static struct {
	int replies, code;
	char *body;
	bool csp, json, html, allow;
	char location[600];
} g_out;

void __wrap_evhttp_send_reply(struct evhttp_request *req, int code, const char *reason,
			      struct evbuffer *databuf)
{
	struct evkeyvalq *o = evhttp_request_get_output_headers(req);
	const char *ct = evhttp_find_header(o, "Content-Type");
	const char *loc = evhttp_find_header(o, "Location");

	g_out.replies++;
	g_out.code = code;
	g_out.csp = evhttp_find_header(o, "Content-Security-Policy") != NULL &&
		    evhttp_find_header(o, "X-Frame-Options") != NULL;
	g_out.json = ct && strncmp(ct, "application/json", 16) == 0;
	g_out.html = ct && strncmp(ct, "text/html", 9) == 0;
	g_out.allow = evhttp_find_header(o, "Allow") != NULL;
	snprintf(g_out.location, sizeof(g_out.location), "%s", loc ? loc : "");
	free(g_out.body);
	g_out.body = NULL;
	if (databuf) {
		size_t n = evbuffer_get_length(databuf);

		g_out.body = malloc(n + 1);
		CHECK(g_out.body != NULL);
		evbuffer_copyout(databuf, g_out.body, n);
		g_out.body[n] = '\0';
	}
	CHECK(reason != NULL);
	/* No connection: libevent only frees the request. */
	__real_evhttp_send_reply(req, code, reason, databuf);
}

static void check_cookie(const char *header)
{
	char v[65], again[65], built[200];

	http_cookie_value(header, COOKIE_SESSION, v, sizeof(v));
	CHECK(strlen(v) < sizeof(v) && strchr(v, ';') == NULL);
	if (!v[0])
		return;
	snprintf(built, sizeof(built), "other=1; %s=%s; %s=x", COOKIE_SESSION, v, COOKIE_SESSION);
	http_cookie_value(built, COOKIE_SESSION, again, sizeof(again));
	CHECK(strcmp(v, again) == 0);
}

static bool known_code(int c)
{
	static const int codes[] = {200, 201, 303, 400, 401, 403, 404, 405, 413, 422, 429, 503};

	for (size_t i = 0; i < FG_ARRAY_LEN(codes); i++)
		if (c == codes[i])
			return true;
	return false;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const enum evhttp_cmd_type methods[] = {
		EVHTTP_REQ_GET,	   EVHTTP_REQ_POST, EVHTTP_REQ_PUT,	EVHTTP_REQ_PATCH,
		EVHTTP_REQ_DELETE, EVHTTP_REQ_HEAD, EVHTTP_REQ_OPTIONS,
	};

	if (size < 2)
		return 0;
	uint8_t m = data[0], flags = data[1];
	char *text = strndup((const char *)data + 2, size - 2);

	CHECK(text != NULL);
	char *cookie = strchr(text, '\n'), *body = NULL;

	if (cookie) {
		*cookie++ = '\0';
		body = strchr(cookie, '\n');
		if (body)
			*body++ = '\0';
	}
	check_cookie(cookie);

	struct evhttp_uri *uri = evhttp_uri_parse_with_flags(text, EVHTTP_URI_NONCONFORMANT);
	struct hreq *h = calloc(1, sizeof(*h));

	CHECK(h != NULL);
	TAILQ_INIT(&h->query);
	TAILQ_INIT(&h->form);
	int rc = http_target_decode(uri, h->path, sizeof(h->path), &h->query);

	if (uri)
		evhttp_uri_free(uri);
	CHECK(strlen(h->path) < sizeof(h->path));
	if (rc != FG_OK || h->path[0] != '/') {
		CHECK(rc == FG_OK || strcmp(h->path, "/") == 0);
		http_hreq_free(h);
		free(text);
		return 0;
	}

	struct fx f;
	struct admin_http ah = {0};

	fx_open(&f);
	ah.conf = f.conf;
	ah.env = &f.env;
	struct panel_session *s = http_session_new(&ah, "root");

	CHECK(s != NULL);
	h->ah = &ah;
	h->env = &f.env;
	h->req = evhttp_request_new(NULL, NULL);
	CHECK(h->req != NULL);
	h->method = methods[m % FG_ARRAY_LEN(methods)];
	snprintf(h->ip, sizeof(h->ip), "127.0.0.1");
	snprintf(h->who, sizeof(h->who), "root");
	snprintf(h->sid, sizeof(h->sid), "%s", s->id);
	h->role = flags & 1 ? ADMIN_VIEWER : ADMIN_ADMINISTRATOR;
	h->read_only = flags & 1;
	h->body = strdup(body ? body : "");
	CHECK(h->body != NULL);
	h->body_len = strlen(h->body);
	struct evkeyvalq *in = evhttp_request_get_input_headers(h->req);

	evhttp_add_header(in, "Content-Type",
			  flags & 2 ? "application/x-www-form-urlencoded" : "application/json");
	if (cookie)
		evhttp_add_header(in, "Cookie", cookie); /* refused when it holds CR or LF */

	bool api = http_has_prefix(h->path, "/api/");
	char *before = fx_snapshot(&f);

	memset(&g_out, 0, sizeof(g_out));
	h->iface = api ? "api" : "web";
	if (api)
		api_handle(h);
	else
		web_handle(h);
	/* h is freed by the one answer. */
	CHECK(g_out.replies == 1);
	CHECK(known_code(g_out.code));
	CHECK(g_out.csp);
	if (api) {
		json_error_t e;
		json_t *j = json_loads(g_out.body ? g_out.body : "", 0, &e);

		CHECK(g_out.json && json_is_object(j));
		if (g_out.code >= 400)
			CHECK(json_array_size(json_object_get(j, "errors")) > 0);
		json_decref(j);
	}
	if (g_out.code == 405)
		CHECK(g_out.allow);
	if (g_out.code == 303)
		CHECK(g_out.location[0] == '/' && g_out.location[1] != '/' &&
		      g_out.location[1] != '\\');
	/* The panel has no scripts (its CSP allows none): one in a page can
	 * only be the input's, unescaped. */
	if (g_out.html && g_out.body)
		CHECK(strstr(g_out.body, "<script") == NULL && strstr(g_out.body, "<img") == NULL);
	char *after = fx_snapshot(&f);

	if (flags & 1)
		CHECK(strcmp(before, after) == 0);
	free(before);
	free(after);
	free(g_out.body);
	g_out.body = NULL;
	http_session_drop(&ah, s->id);
	free(text);
	fx_close(&f);
	return 0;
}

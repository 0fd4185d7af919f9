/* Local users (/users). */
#include "web_page.h"

#include "fg.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

const char web_css_accounts[] = "";

static void users_got(struct hreq *h, int status, json_t *body)
{
	struct evbuffer *b = web_page_begin(h, "/users", "Users");
	if (!b) {
		json_decref(body);
		http_send(h, 503, NULL, NULL);
		return;
	}
	json_t *rows = json_object_get(body, "result");
	if (status != CMD_OK)
		web_alert(b, "error", "errors",
			  "The users cannot be shown:", json_object_get(body, "errors"));
	else if (json_array_size(rows) == 0)
		evbuffer_add_printf(b, "<p id=\"empty\">No local users.</p>");
	else
		web_table(b, "users", rows, NULL);
	json_decref(body);
	web_page_end(h, 200, b);
}

bool web_accounts_route(struct hreq *h, bool post)
{
	if (post || strcmp(h->path, "/users") != 0)
		return false;
	http_cmd(h, "user list", json_object(), false, users_got);
	return true;
}

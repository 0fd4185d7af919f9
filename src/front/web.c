/* The control panel: HTML rendered on the server, one small style sheet,
 * no JavaScript (the Content-Security-Policy allows none). This file only
 * routes; each subject is a page file (docs/internals.md, "Control panel"):
 *
 *   web_partners.c      /partners: the list
 *   web_partner_page.c  /partners/view, /partners/retry, /partners/suspend,
 *                       /partners/resume (routed by web_partners.c)
 *   web_partner_form.c  /partners/new, /partners/edit, /partners/commit,
 *                       /partners/delete
 *   web_gateway.c       /gateway
 *   web_accounts.c      /users, and /admins through web_admins.c
 *   web_audit.c         /audit
 *   web_status.c        /status, /refused
 *   web_page.c          the frame and parts they share
 *
 * Every change is a command of the command layer, run as the signed-in
 * admin with iface "web". */
#include "web.h"

#include "fg.h"

#include <string.h>

void web_handle(struct hreq *h)
{
	static bool (*const routes[])(struct hreq *, bool) = {
		web_partners_route, web_partner_form_route, web_gateway_route,
		web_accounts_route, web_audit_route,	    web_status_route,
	};
	bool post = h->method == EVHTTP_REQ_POST;
	if (post && h->read_only) {
		web_error(h, 403,
			  "Your role (viewer) may only read: nothing was changed or saved.");
		return;
	}
	if (!post && (strcmp(h->path, "/") == 0 || strcmp(h->path, "/partners/") == 0)) {
		http_redirect(h, "/partners");
		return;
	}
	for (size_t i = 0; i < FG_ARRAY_LEN(routes); i++)
		if (routes[i](h, post))
			return;
	web_error(h, 404, "There is no such page.");
}

/* The control panel: server-rendered HTML pages over the command layer
 * (see web.c). Everything shown is escaped with http_html(). */
#ifndef FG_WEB_H
#define FG_WEB_H

#include "http.h"

#include <stdbool.h>
#include <stddef.h>

/* Every page of a signed-in admin. */
void web_handle(struct hreq *h);
/* The sign-in page with its CSRF token (the caller set the cookie). */
void web_signin(struct hreq *h, int code, const char *error, const char *csrf);
/* A page that only says msg. */
void web_error(struct hreq *h, int code, const char *msg);
/* The style sheet served at /static/fedgate.css. */
const char *web_css(size_t *len);

/* Each page file's routes (web_*.c), tried in turn by web_handle():
 * true when the file answered h (it then owns it). */

bool web_partners_route(struct hreq *h, bool post);
bool web_partner_form_route(struct hreq *h, bool post);
bool web_gateway_route(struct hreq *h, bool post);
bool web_accounts_route(struct hreq *h, bool post);
bool web_audit_route(struct hreq *h, bool post);
bool web_status_route(struct hreq *h, bool post);

#endif

/* The control panel: server-rendered HTML pages over the command layer
 * (see web.c). Everything shown is escaped with http_html(). */
#ifndef FG_WEB_H
#define FG_WEB_H

#include "http.h"

#include <stddef.h>

/* Every page of a signed-in admin. */
void web_handle(struct hreq *h);
/* The sign-in page with its CSRF token (the caller set the cookie). */
void web_signin(struct hreq *h, int code, const char *error, const char *csrf);
/* A page that only says msg. */
void web_error(struct hreq *h, int code, const char *msg);
/* The style sheet served at /static/fedgate.css. */
const char *web_css(size_t *len);

#endif

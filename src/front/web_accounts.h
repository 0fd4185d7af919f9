/* What the Users page (web_accounts.c) and the Admins page (web_admins.c)
 * share: dates shown without ISO noise, the password fields with their
 * confirmation, the confirmation page of a removal, and the answer to a
 * change (flash and redirect). Passwords are never written back into a
 * page. */
#ifndef FG_WEB_ACCOUNTS_H
#define FG_WEB_ACCOUNTS_H

#include "web_page.h"

#include <stdbool.h>

/* "2026-12-06T08:09:46Z" as "2026-12-06 08:09"; other text as it is. */
void web_accounts_when(struct evbuffer *b, const char *iso);

/* The new password and its confirmation, always empty, with errors about
 * "password" beside the first. */
void web_accounts_password_fields(struct evbuffer *b, json_t *errors);
/* The posted password when its confirmation matches; else NULL after an
 * error about "password" was appended to errors. */
const char *web_accounts_password(struct hreq *h, json_t *errors);

/* A page asking to confirm a removal: question (plain text), then a form
 * posting key=value to action, with a danger button and Cancel back to
 * back. */
void web_accounts_confirm(struct hreq *h, const char *active, const char *title,
			  const char *question, const char *action, const char *key,
			  const char *value, const char *back);

/* A change went through: message for the next page, then 303 to to.
 * Frees body. */
void web_accounts_done(struct hreq *h, json_t *body, const char *message, const char *to);

/* The Admins page's routes (web_admins.c), tried by web_accounts_route. */
bool web_admins_route(struct hreq *h, bool post);

/* Only an administrator sees forms; true after answering a viewer 403. */
bool web_accounts_viewer_refused(struct hreq *h);

#endif

/* The parts every page of the control panel is made of (web_page.c), and
 * each page file's route function (web.c calls them in turn). Pages are
 * HTML rendered on the server; the Content-Security-Policy allows no
 * script, so every action is a form and every filter a GET query. */
#ifndef FG_WEB_PAGE_H
#define FG_WEB_PAGE_H

#include "web.h"

#include <stdbool.h>
#include <stddef.h>

/* Each page file's own style rules, joined after the common ones. */
extern const char web_css_partners[], web_css_partner_form[], web_css_gateway[], web_css_accounts[],
	web_css_audit[], web_css_status[];

/* ---- the frame ---- */

/* The page's head, header, navigation (active: the nav entry's path) and
 * title; NULL when out of memory (the caller answers 503). */
struct evbuffer *web_page_begin(struct hreq *h, const char *active, const char *title);
/* Closes the page and sends it (b NULL: an empty answer). */
void web_page_end(struct hreq *h, int code, struct evbuffer *b);
void web_csrf_field(struct evbuffer *b, struct hreq *h);
/* A box of class cls ("error", "ok", "warning") with text and the items
 * (strings, or {field, message} objects) listed under it. */
void web_alert(struct evbuffer *b, const char *cls, const char *id, const char *text,
	       json_t *items);
/* The message and warnings of the change before the redirect, if any. */
void web_flash(struct hreq *h, struct evbuffer *b);
/* A command failed in a way no form can show: an error page. Frees body. */
void web_cmd_failed(struct hreq *h, int status, json_t *body);

/* ---- values ---- */

/* o[key] as text ("" when absent); numbers and booleans use buf. */
const char *web_text_of(json_t *o, const char *key, char *buf, size_t len);
/* v[key] when it is a string, else "". */
const char *web_val(json_t *v, const char *key);
/* The strings of arr, escaped, with sep between them. */
void web_join(struct evbuffer *b, json_t *arr, const char *sep);
/* One value as escaped text: strings, numbers, booleans; anything else as
 * compact JSON. */
void web_cell(struct evbuffer *b, json_t *x);
/* Rows of objects as a table with the given columns (NULL-terminated; NULL
 * for the first row's keys as they are). */
void web_table(struct evbuffer *b, const char *id, json_t *rows, const char *const *cols);

/* The word a stored value is shown as, Lync's where Lync had one
 * ("public-verified" -> "Public verified", "not-supported" -> "Not
 * Supported"); other values as they are. */
const char *web_word(const char *value);

/* ---- lists: filter ---- */

/* The filter box of a list: a GET form to path with the query "q" kept. */
void web_filter_box(struct evbuffer *b, struct hreq *h, const char *path, const char *placeholder);
/* Whether row (an object, array or scalar) has a value containing the
 * query "q", ignoring case; true when there is no query. */
bool web_filter_match(struct hreq *h, json_t *row);
/* The query "q", or NULL when absent or empty. */
const char *web_filter_query(struct hreq *h);

/* ---- forms ---- */

extern const char *const web_bools[]; /* "true", "false", NULL */

void web_field_errors(struct evbuffer *b, json_t *errors, const char *field);
void web_field_start(struct evbuffer *b, const char *id, const char *label);
void web_input(struct evbuffer *b, struct hreq *h, json_t *v, json_t *errors, const char *key,
	       const char *label, const char *type, const char *hint, bool readonly);
void web_select_field(struct evbuffer *b, struct hreq *h, json_t *v, json_t *errors,
		      const char *key, const char *label, const char *const *options);
/* The same with each option shown as word(value) (NULL: the value). */
void web_select_words(struct evbuffer *b, struct hreq *h, json_t *v, json_t *errors,
		      const char *key, const char *label, const char *const *options,
		      const char *(*word)(const char *));

/* ---- certificate verdicts ---- */

/* The verdict on a stream's certificate (tls_peer_verify's words, or
 * OpenSSL's reason alone) as one word to scan a column for: "valid",
 * "self-signed", "expired", "not yet valid", "revoked", "untrusted",
 * "wrong name", "none sent" (no certificate), "none" (no TLS). cls gets
 * the style class: "good", "bad" or "none". */
const char *web_cert_word(const char *text, const char **cls);

#endif

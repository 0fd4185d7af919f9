/* The JSON API under /api/v1/ over the command layer (see api.c). */
#ifndef FG_API_H
#define FG_API_H

#include "http.h"

void api_handle(struct hreq *h);
/* A command body's error strings as [{"field": F or null, "message": M}]:
 * the field is the one the message names ("tls: ..."), or the setting a
 * matrix refusal is about. */
json_t *api_errors(json_t *strings);

#endif

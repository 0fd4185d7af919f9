/* The JSON API under /api/v1/ over the command layer (see api.c). */
#ifndef FG_API_H
#define FG_API_H

#include "http.h"

void api_handle(struct hreq *h);
#endif

#include "metrics.h"

void metrics_handle(struct hreq *h)
{
	struct evbuffer *b = evbuffer_new();
	http_send(h, 200, "text/plain; version=0.0.4", b);
}

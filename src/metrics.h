/* GET /metrics: the daemon's counters in the Prometheus text format. */
#ifndef FG_METRICS_H
#define FG_METRICS_H

#include "admin_http.h"

void metrics_handle(struct hreq *h);

#endif

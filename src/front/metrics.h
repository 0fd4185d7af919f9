/* GET /metrics: the daemon's counters (core/counters.h) and the live
 * streams' figures, in the Prometheus text format. Loop thread only. */
#ifndef FG_METRICS_H
#define FG_METRICS_H

#include "http.h"

void metrics_handle(struct hreq *h);

#endif

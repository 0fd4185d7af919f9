/* GET /metrics: the daemon's counters in the Prometheus text format, and
 * the few counters other subsystems feed (everything else is read from
 * the live streams when scraped). Loop thread only. */
#ifndef FG_METRICS_H
#define FG_METRICS_H

#include "admin_http.h"

struct conn_stats;
struct server;

void metrics_handle(struct hreq *h);

/* A connection ended: its bytes and stanzas join the totals. */
void metrics_conn_closed(const struct conn_stats *st);
/* A peer failed to authenticate; reason is a short fixed label
 * ("sasl-certificate", "dialback-key-invalid", "not-a-partner",
 * "method-not-allowed"). */
void metrics_auth_failure(const char *reason);
/* A stanza went back to its sender undelivered. */
void metrics_bounce(void);
/* Signed-in client sessions (c2s); counts c2s streams until local users
 * (issue 5) give a better source. */
unsigned metrics_c2s_sessions(const struct server *srv);

#endif

/* Monotonic counters that several layers feed (connections, streams, the
 * router) and the metrics renderer reads. Plain numbers in the pure layer,
 * so feeding one never reaches up into the HTTP side. Loop thread only. */
#ifndef FG_COUNTERS_H
#define FG_COUNTERS_H

#include <stddef.h>

#define COUNTERS_REASONS_MAX 16

struct counters {
	unsigned long long bytes_in, bytes_out, stanzas_in, stanzas_out; /* closed connections */
	unsigned long long bounces;
	struct {
		const char *reason; /* a string literal of the caller */
		unsigned long long n;
	} auth[COUNTERS_REASONS_MAX];
};

/* A connection ended: its bytes and stanzas join the totals. */
void counters_conn_closed(unsigned long long bytes_in, unsigned long long bytes_out,
			  unsigned long long stanzas_in, unsigned long long stanzas_out);
/* A peer failed to authenticate; reason is a short fixed label with static
 * storage ("sasl-certificate", "dialback-key-invalid", "not-a-partner",
 * "method-not-allowed", "c2s-..."). */
void counters_auth_failure(const char *reason);
/* A stanza went back to its sender undelivered. */
void counters_bounce(void);
const struct counters *counters_get(void);

#endif

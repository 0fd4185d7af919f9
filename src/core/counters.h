/* Monotonic counters that several layers feed (connections, streams, the
 * router) and the metrics renderer reads. Plain numbers in the pure layer,
 * so feeding one never reaches up into the HTTP side. Loop thread only. */
#ifndef FG_COUNTERS_H
#define FG_COUNTERS_H

#include <stddef.h>

#define COUNTERS_REASONS_MAX 16

/* What became of a stanza that left its sender's hands: exactly one. */
enum stanza_outcome {
	STANZA_DELIVERED, /* written to a client or partner stream, or answered by us */
	STANZA_OFFLINE,	  /* stored for an offline user */
	STANZA_BOUNCED,	  /* an error went back to the sender */
	STANZA_DROPPED,	  /* must not be answered (an error, a result...): counted by reason */
	STANZA_OUTCOMES
};

struct counters {
	unsigned long long bytes_in, bytes_out, stanzas_in, stanzas_out; /* closed connections */
	unsigned long long conns_closed;
	unsigned long long streams_dozed; /* idle streams that freed their XML parser */
	unsigned long long stanzas[STANZA_OUTCOMES];
	struct counters_reason {
		const char *reason; /* a string literal of the caller */
		unsigned long long n;
	} auth[COUNTERS_REASONS_MAX], dropped[COUNTERS_REASONS_MAX];
};

/* A connection ended: its bytes and stanzas join the totals. */
void counters_conn_closed(unsigned long long bytes_in, unsigned long long bytes_out,
			  unsigned long long stanzas_in, unsigned long long stanzas_out);
/* A peer failed to authenticate; reason is a short fixed label with static
 * storage ("sasl-certificate", "dialback-key-invalid", "not-a-partner",
 * "method-not-allowed", "c2s-..."). */
void counters_auth_failure(const char *reason);
/* A stanza's outcome; reason (a fixed label with static storage, like
 * "shutdown", "error-to-offline-resource") only for STANZA_DROPPED. */
void counters_stanza(enum stanza_outcome o, const char *reason);
/* An idle stream gave its XML parser back (stream_doze). */
void counters_stream_dozed(void);
const struct counters *counters_get(void);

#endif

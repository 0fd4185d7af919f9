#include "counters.h"

#include <assert.h>
#include <string.h>

static struct counters totals;

void counters_conn_closed(unsigned long long bytes_in, unsigned long long bytes_out,
			  unsigned long long stanzas_in, unsigned long long stanzas_out)
{
	totals.bytes_in += bytes_in;
	totals.bytes_out += bytes_out;
	totals.stanzas_in += stanzas_in;
	totals.stanzas_out += stanzas_out;
	totals.conns_closed++;
}

void counters_stream_dozed(void)
{
	totals.streams_dozed++;
}

/* Labels are few and fixed; one past the table's end lands in "other". */
static void count_reason(struct counters_reason *t, const char *reason)
{
	assert(reason);
	for (size_t i = 0; i < COUNTERS_REASONS_MAX; i++) {
		if (!t[i].reason)
			t[i].reason = i + 1 == COUNTERS_REASONS_MAX ? "other" : reason;
		if (strcmp(t[i].reason, reason) == 0 || i + 1 == COUNTERS_REASONS_MAX) {
			t[i].n++;
			return;
		}
	}
}

void counters_auth_failure(const char *reason)
{
	count_reason(totals.auth, reason);
}

void counters_stanza(enum stanza_outcome o, const char *reason)
{
	assert(o < STANZA_OUTCOMES);
	assert((o == STANZA_DROPPED) == (reason != NULL));
	totals.stanzas[o]++;
	if (reason)
		count_reason(totals.dropped, reason);
}

const struct counters *counters_get(void)
{
	return &totals;
}

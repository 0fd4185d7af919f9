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
}

void counters_auth_failure(const char *reason)
{
	assert(reason);
	for (size_t i = 0; i < COUNTERS_REASONS_MAX; i++) {
		if (!totals.auth[i].reason)
			totals.auth[i].reason = reason;
		if (strcmp(totals.auth[i].reason, reason) == 0) {
			totals.auth[i].n++;
			return;
		}
	}
}

void counters_bounce(void)
{
	totals.bounces++;
}

const struct counters *counters_get(void)
{
	return &totals;
}

/* What preparing a JID costs, with the ASCII fast path and with the full
 * preparation (stringprep, IDNA) for the same inputs: the typical from and
 * to of a stanza, and a non-ASCII one that always takes the full path.
 * Prints nanoseconds per jid_parse; `make bench` runs it. */
#include "jid.h"

#include <stdio.h>
#include <string.h>
#include <time.h>

static double now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static double per_parse(const char *s, int n)
{
	size_t len = strlen(s);
	double t0 = now();
	for (int i = 0; i < n; i++) {
		struct jid j;
		if (jid_parse(s, len, &j) != JID_OK) {
			fprintf(stderr, "bench_jid: %s does not parse\n", s);
			return -1;
		}
		jid_clear(&j);
	}
	return (now() - t0) * 1e9 / n;
}

int main(void)
{
	static const char *const inputs[] = {
		"alice@contoso.test/laptop-1f3a",
		"Bob@Fabrikam.Test",
		"conference.fabrikam.test",
		"j\303\266rg@b\303\274cher.example/Telefon",
	};
	const int n = 200000;
	printf("%-36s %12s %12s %8s\n", "JID", "fast ns", "full ns", "ratio");
	for (size_t i = 0; i < sizeof(inputs) / sizeof(inputs[0]); i++) {
		jid_set_fast_path(true);
		double fast = per_parse(inputs[i], n);
		jid_set_fast_path(false);
		double full = per_parse(inputs[i], n);
		jid_set_fast_path(true);
		if (fast < 0 || full < 0)
			return 1;
		printf("%-36s %12.0f %12.0f %7.1fx\n", inputs[i], fast, full, full / fast);
	}
	return 0;
}

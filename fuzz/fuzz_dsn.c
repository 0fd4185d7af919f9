/* libFuzzer target for the dsn rewriting of the store (an admin's [store]
 * dsn: store_dsn_masked for messages and `fedgate check`, store_dsn_split
 * for pg_dump's command line). Invariants: every output is NUL-terminated
 * within its buffer, however small; a password the split finds is shown
 * as *** by the mask and is absent from the split's dsn when it is long
 * enough to be told apart from the rest of the text. */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz.h"
#include "store_sqlite.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *dsn = malloc(size + 1), masked[700], rest[700], pw[256], tiny[8];
	size_t small;

	if (dsn == NULL || size > 600) {
		free(dsn);
		return 0;
	}
	memcpy(dsn, data, size);
	dsn[size] = '\0';
	store_dsn_masked(dsn, masked, sizeof(masked));
	CHECK(strlen(masked) < sizeof(masked));
	store_dsn_split(dsn, rest, sizeof(rest), pw, sizeof(pw));
	CHECK(strlen(rest) < sizeof(rest) && strlen(pw) < sizeof(pw));
	if (pw[0] != '\0')
		CHECK(strstr(masked, "***") != NULL);
	/* A password of 12 characters or more that the dsn holds once. */
	if (strlen(pw) >= 12 && strstr(dsn, pw) != NULL &&
	    strstr(strstr(dsn, pw) + 1, pw) == NULL) {
		CHECK(strstr(masked, pw) == NULL);
		CHECK(strstr(rest, pw) == NULL);
	}
	small = size % sizeof(tiny) + 1;
	store_dsn_masked(dsn, tiny, small);
	CHECK(strlen(tiny) < small);
	store_dsn_split(dsn, tiny, small, pw, small);
	CHECK(strlen(tiny) < small && strlen(pw) < small);
	free(dsn);
	return 0;
}

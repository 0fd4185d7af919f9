/* What every libFuzzer target shares: the entry point libFuzzer calls and
 * CHECK, which turns a broken invariant into a crash libFuzzer reports
 * (assert() would vanish under NDEBUG). */
#ifndef FG_FUZZ_H
#define FG_FUZZ_H

#include <stddef.h>
#include <stdint.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define CHECK(cond)                       \
	do {                              \
		if (!(cond))              \
			__builtin_trap(); \
	} while (0)

#endif

/* "Did you mean" for the CLI. A typo is usually one slip: a key missed,
 * doubled, hit instead of its neighbour, or two keys swapped, so the
 * distance counts a swap as one edit (OSA), and the threshold keeps short
 * words from matching everything. */
#include "suggest.h"

#include <assert.h>
#include <stdlib.h>
#include <string.h>

/* Words longer than this are not anyone's command or flag; comparing them
 * would only cost memory. */
#define SUGGEST_MAX_LEN 128

static size_t min3(size_t a, size_t b, size_t c)
{
	size_t m = a < b ? a : b;
	return m < c ? m : c;
}

size_t suggest_distance(const char *a, const char *b)
{
	size_t la = strlen(a), lb = strlen(b);
	if (la > SUGGEST_MAX_LEN || lb > SUGGEST_MAX_LEN)
		return la > lb ? la : lb;
	/* Three rows of the (la+1) x (lb+1) matrix: the swap looks two back. */
	size_t rows[3][SUGGEST_MAX_LEN + 1];
	size_t *prev2 = rows[0], *prev = rows[1], *cur = rows[2];
	for (size_t j = 0; j <= lb; j++)
		prev[j] = j;
	for (size_t i = 1; i <= la; i++) {
		cur[0] = i;
		for (size_t j = 1; j <= lb; j++) {
			size_t cost = a[i - 1] == b[j - 1] ? 0 : 1;
			cur[j] = min3(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + cost);
			if (i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] &&
			    prev2[j - 2] + 1 < cur[j])
				cur[j] = prev2[j - 2] + 1;
		}
		size_t *t = prev2;
		prev2 = prev;
		prev = cur;
		cur = t;
	}
	return prev[lb];
}

const char *suggest_closest(const char *word, const char *const *candidates, size_t n)
{
	assert(word != NULL);
	size_t len = strlen(word);
	size_t limit = len / 3 < 1 ? 1 : len / 3;
	if (limit > 2)
		limit = 2;
	const char *best = NULL, *prefixed = NULL;
	size_t best_d = limit + 1, nprefixed = 0;
	for (size_t i = 0; i < n; i++) {
		const char *c = candidates[i];
		if (c == NULL)
			continue;
		size_t d = suggest_distance(word, c);
		if (d < best_d) {
			best = c;
			best_d = d;
		}
		if (len >= 3 && strncmp(c, word, len) == 0) {
			prefixed = c;
			nprefixed++;
		}
	}
	if (best != NULL)
		return best;
	return nprefixed == 1 ? prefixed : NULL;
}

void suggest_unknown_option(FILE *f, const char *who, const char *bad, const char *const *known,
			    size_t n)
{
	const char *hint = suggest_closest(bad, known, n);
	fprintf(f, "%s: unknown option '%s'", who, bad);
	if (hint)
		fprintf(f, "; did you mean '%s'?", hint);
	fputc('\n', f);
}

/* "Did you mean": the known word closest to a misspelt one (a command, a
 * subcommand, a flag), for messages that say how to fix a typo. */
#ifndef FG_SUGGEST_H
#define FG_SUGGEST_H

#include <stddef.h>
#include <stdio.h>

/* Optimal string alignment distance (Damerau-Levenshtein where no
 * substring is edited twice): insertions, deletions, substitutions and
 * swaps of two neighbours each cost 1. Bytes, case-sensitive. */
size_t suggest_distance(const char *a, const char *b);

/* The candidate a typo of word most likely meant, or NULL when none is
 * close: at most 2 edits and at most a third of word's length (at least
 * 1), the first of the nearest winning; else the one candidate word is a
 * prefix of (at least 3 bytes). candidates may hold NULLs, which are
 * skipped; a candidate equal to word is returned as it is. */
const char *suggest_closest(const char *word, const char *const *candidates, size_t n);

/* Writes "WHO: unknown option 'BAD'; did you mean 'X'?" (the guess only
 * when suggest_closest finds one) and a line end to f: the one wording of
 * that message for every command that parses its own options. */
void suggest_unknown_option(FILE *f, const char *who, const char *bad, const char *const *known,
			    size_t n);

#endif

#include "jsonin.h"

#include "fg.h"

#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

/* Where the string token that ends just before buf[end] starts: its
 * opening quote, the first '"' going back that no backslash escapes. */
static bool token_start(const char *buf, size_t end, size_t *start)
{
	if (end < 2 || buf[end - 1] != '"')
		return false;
	for (size_t i = end - 1; i-- > 0;) {
		if (buf[i] != '"')
			continue;
		size_t bs = 0;
		while (bs < i && buf[i - 1 - bs] == '\\')
			bs++;
		if (bs % 2 == 0) {
			*start = i;
			return true;
		}
	}
	return false;
}

/* jansson stops right after the repeated key and tells only where; the key
 * itself (escapes decoded) and the place it starts are read back from buf,
 * counting columns in characters as jansson does. */
static void name_duplicate(const char *buf, size_t len, struct jsonin_error *e)
{
	size_t start, end = (size_t)e->position;
	if (e->position < 0 || end > len || !token_start(buf, end, &start))
		return;
	json_t *k = json_loadb(buf + start, end - start, JSON_DECODE_ANY, NULL);
	if (json_is_string(k)) {
		snprintf(e->key, sizeof(e->key), "%s", json_string_value(k));
		int line = 1, col = 0;
		for (size_t i = 0; i <= start; i++) {
			if (buf[i] == '\n') {
				line++;
				col = 0;
			} else if (((unsigned char)buf[i] & 0xC0) != 0x80) {
				col++;
			}
		}
		e->line = line;
		e->column = col;
		e->position = (int)start;
	}
	json_decref(k);
}

json_t *jsonin_load(const char *buf, size_t len, struct jsonin_error *e)
{
	json_error_t je;
	memset(e, 0, sizeof(*e));
	json_t *j = json_loadb(buf, len, JSON_REJECT_DUPLICATES, &je);
	if (j)
		return j;
	e->line = je.line;
	e->column = je.column;
	e->position = je.position;
	snprintf(e->text, sizeof(e->text), "%s", je.text);
	if (json_error_code(&je) == json_error_duplicate_key)
		name_duplicate(buf, len, e);
	return NULL;
}

json_t *jsonin_load_file(FILE *f, struct jsonin_error *e)
{
	size_t len = 0, cap = 0;
	char *buf = NULL;
	for (;;) {
		if (len == cap) {
			size_t ncap = cap ? cap * 2 : 64 * 1024;
			char *nb = realloc(buf, ncap);
			if (!nb) {
				free(buf);
				memset(e, 0, sizeof(*e));
				snprintf(e->text, sizeof(e->text), "out of memory");
				return NULL;
			}
			buf = nb;
			cap = ncap;
		}
		size_t n = fread(buf + len, 1, cap - len, f);
		len += n;
		if (n == 0)
			break;
	}
	if (ferror(f)) {
		free(buf);
		memset(e, 0, sizeof(*e));
		snprintf(e->text, sizeof(e->text), "read error");
		return NULL;
	}
	json_t *j = jsonin_load(buf, len, e);
	free(buf);
	return j;
}

void jsonin_describe(const struct jsonin_error *e, char *buf, size_t len)
{
	if (e->key[0])
		snprintf(buf, len,
			 "the key \"%s\" is given twice (the second at line %d, column %d)", e->key,
			 e->line, e->column);
	else
		snprintf(buf, len, "malformed JSON at line %d, column %d (byte %d): %s", e->line,
			 e->column, e->position, e->text);
}

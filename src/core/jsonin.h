/* JSON that people write -- API bodies, import files, control requests --
 * read strictly: a key given twice in one object is refused (jansson would
 * keep the last one, so {"domain":"a","domain":"b"} would quietly mean b),
 * and every refusal says where, in words an admin can act on. */
#ifndef FG_JSONIN_H
#define FG_JSONIN_H

#include <jansson.h>
#include <stddef.h>
#include <stdio.h>

struct jsonin_error {
	char key[256];	  /* the key given twice; "" for any other error */
	int line, column; /* 1-based; of the second key when key is set */
	int position;	  /* byte offset */
	char text[200];	  /* jansson's words, for other errors */
};

/* Parses buf (any JSON value). NULL on error, with *e filled. */
json_t *jsonin_load(const char *buf, size_t len, struct jsonin_error *e);
/* The same for everything f holds (an import file, stdin). */
json_t *jsonin_load_file(FILE *f, struct jsonin_error *e);
/* The error as a sentence: 'the key "K" is given twice (the second at line
 * L, column C)' or 'malformed JSON at line L, column C (byte B): TEXT'. */
void jsonin_describe(const struct jsonin_error *e, char *buf, size_t len);

#endif

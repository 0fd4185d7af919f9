/* Shared vocabulary: return codes and tiny helpers used by every subsystem. */
#ifndef FG_H
#define FG_H

#include <stddef.h>

/* One return-code vocabulary for the whole tree; functions return these and
 * callers write `int rc = f(); if (rc != FG_OK) goto out;`. */
enum fg_rc {
	FG_OK = 0,
	FG_ERR = -1,	  /* generic failure, details logged or in an errbuf */
	FG_NOMEM = -2,	  /* allocation failed */
	FG_INVAL = -3,	  /* malformed input */
	FG_NOTFOUND = -4, /* lookup missed */
	FG_LIMIT = -5,	  /* a configured cap was hit */
	FG_AGAIN = -6,	  /* need more input */
};

#define FG_ARRAY_LEN(a) (sizeof(a) / sizeof((a)[0]))
#define FG_UNUSED(x)	((void)(x))

#endif

/* Shared vocabulary: return codes and tiny helpers used by every subsystem. */
#ifndef FG_H
#define FG_H

#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

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
/* Wall-clock time in milliseconds since the epoch, as stored and shown. */
static inline long long fg_now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* "2026-12-06T01:47:20Z" (UTC, XEP-0082) for t into buf; returns buf. */
#define FG_UTC_LEN 21
static inline const char *fg_utc(time_t t, char buf[FG_UTC_LEN])
{
	struct tm tm;
	gmtime_r(&t, &tm);
	if (strftime(buf, FG_UTC_LEN, "%Y-%m-%dT%H:%M:%SZ", &tm) == 0)
		buf[0] = '\0';
	return buf;
}

#define FG_UNUSED(x) ((void)(x))

/* Appends to the string in buf (len bytes in all), cutting what does not
 * fit: for sentences built from parts, where a cut sentence is better
 * than none. */
static inline void fg_appendf(char *buf, size_t len, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static inline void fg_appendf(char *buf, size_t len, const char *fmt, ...)
{
	size_t used = strnlen(buf, len);
	va_list ap;

	if (used + 1 >= len)
		return;
	va_start(ap, fmt);
	vsnprintf(buf + used, len - used, fmt, ap);
	va_end(ap);
}

#endif

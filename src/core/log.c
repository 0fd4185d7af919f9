#include "log.h"

#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <sys/time.h>
#include <time.h>

static enum log_level current = LOG_INFO;

static const char *const names[] = {"error", "warning", "info", "debug"};

void log_set_level(enum log_level lvl)
{
	current = lvl;
}

enum log_level log_get_level(void)
{
	return current;
}

int log_enabled(enum log_level lvl)
{
	return lvl <= current;
}

int log_level_parse(const char *s)
{
	for (int i = 0; i < 4; i++)
		if (strcasecmp(s, names[i]) == 0)
			return i;
	if (strcasecmp(s, "warn") == 0)
		return LOG_WARNING;
	return -1;
}

const char *log_level_name(enum log_level lvl)
{
	return (lvl >= LOG_ERROR && lvl <= LOG_DEBUG) ? names[lvl] : "?";
}

void log_vmsg(enum log_level lvl, const char *ctx, const char *fmt, va_list ap)
{
	if (!log_enabled(lvl))
		return;
	/* Build the whole line first and write it once, so lines from the
	 * store thread and the loop never interleave mid-line. */
	char line[2048];
	struct timeval tv;
	struct tm tm;
	gettimeofday(&tv, NULL);
	gmtime_r(&tv.tv_sec, &tm);
	int n = (int)strftime(line, sizeof(line), "%Y-%m-%dT%H:%M:%S", &tm);
	n += snprintf(line + n, sizeof(line) - (size_t)n,
		      ".%03ldZ %s %s: ", (long)(tv.tv_usec / 1000), names[lvl],
		      ctx ? ctx : "fedgate");
	if (n > (int)sizeof(line) - 2)
		n = (int)sizeof(line) - 2;
	size_t avail = sizeof(line) - (size_t)n - 1; /* keep room for '\n' */
	int m = vsnprintf(line + n, avail, fmt, ap);
	if (m > 0)
		n += (size_t)m < avail ? m : (int)avail - 1;
	/* Control characters from peers never reach the terminal raw. */
	for (int i = 0; i < n; i++)
		if ((unsigned char)line[i] < 0x20)
			line[i] = '?';
	line[n++] = '\n';
	fwrite(line, 1, (size_t)n, stderr);
}

void log_msg(enum log_level lvl, const char *ctx, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	log_vmsg(lvl, ctx, fmt, ap);
	va_end(ap);
}

/* Logging: one line per event, a level, a context prefix, never secrets. */
#ifndef FG_LOG_H
#define FG_LOG_H

#include <stdarg.h>

enum log_level { LOG_ERROR = 0, LOG_WARNING = 1, LOG_INFO = 2, LOG_DEBUG = 3 };

void log_set_level(enum log_level lvl);
enum log_level log_get_level(void);
/* Parses "error", "warning", "info", "debug"; returns -1 when unknown. */
int log_level_parse(const char *s);
const char *log_level_name(enum log_level lvl);

/* ctx is the subsystem or connection context ("s2s-in #42 [127.0.0.1]:4012"),
 * printed before the message so every line says who it is about. */
void log_msg(enum log_level lvl, const char *ctx, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
void log_vmsg(enum log_level lvl, const char *ctx, const char *fmt, va_list ap);
int log_enabled(enum log_level lvl);

#define log_error(ctx, ...) log_msg(LOG_ERROR, ctx, __VA_ARGS__)
#define log_warn(ctx, ...)  log_msg(LOG_WARNING, ctx, __VA_ARGS__)
#define log_info(ctx, ...)  log_msg(LOG_INFO, ctx, __VA_ARGS__)
#define log_debug(ctx, ...)                                   \
	do {                                                  \
		if (log_enabled(LOG_DEBUG))                   \
			log_msg(LOG_DEBUG, ctx, __VA_ARGS__); \
	} while (0)

#endif

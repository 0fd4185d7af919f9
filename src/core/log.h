/* Logging: one line per event, a level, a context prefix, never secrets. */
#ifndef FG_LOG_H
#define FG_LOG_H

#include <stdarg.h>
#include <stddef.h>

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

/* Where lines go. Standard error by default. When that is the journal
 * (JOURNAL_STREAM names it), a line has no timestamp of its own and starts
 * with its syslog priority: "<3>" error, "<4>" warning, "<6>" info, "<7>"
 * debug; the first line logged looks, log_detect_journal() looks again.
 *
 * log_reopen(path) appends to path from now on (created 0640, O_APPEND,
 * close-on-exec), or goes back to standard error for NULL or "". Called at
 * start, on reload and after logrotate moved the file: the old file is
 * closed, lines written meanwhile land whole in one of the two. On failure
 * returns FG_ERR with a sentence in err and keeps logging where it did.
 * This is the one place core/ opens a file for writing: the layer that
 * logs must own its descriptor for the swap to be atomic. */
int log_reopen(const char *path, char *err, size_t errlen);
/* log_reopen() of the file in use (SIGUSR1); FG_OK when it is stderr. */
int log_reopen_current(char *err, size_t errlen);
/* True when fd is the stream JOURNAL_STREAM names ("DEV:INODE"). */
int log_is_journal(int fd);
void log_detect_journal(void);

#define log_error(ctx, ...) log_msg(LOG_ERROR, ctx, __VA_ARGS__)
#define log_warn(ctx, ...)  log_msg(LOG_WARNING, ctx, __VA_ARGS__)
#define log_info(ctx, ...)  log_msg(LOG_INFO, ctx, __VA_ARGS__)
#define log_debug(ctx, ...)                                   \
	do {                                                  \
		if (log_enabled(LOG_DEBUG))                   \
			log_msg(LOG_DEBUG, ctx, __VA_ARGS__); \
	} while (0)

#endif

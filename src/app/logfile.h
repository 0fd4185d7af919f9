/* The log file and logrotate: SIGUSR1 reopens [log] file. */
#ifndef FG_LOGFILE_H
#define FG_LOGFILE_H

#include <event2/event.h>

/* Registers SIGUSR1 on base: each one reopens the log file in use
 * (log_reopen_current), so that logrotate can move it away and signal.
 * Returns the event (event_free() it), or NULL. */
struct event *logfile_watch(struct event_base *base);

#endif

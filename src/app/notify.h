/* The systemd notification protocol (sd_notify(3)) without libsystemd: one
 * datagram per state change to $NOTIFY_SOCKET, and the watchdog's keep-alive
 * every half of $WATCHDOG_USEC. Everything here is a no-op when the daemon
 * was not started by a service manager that asked for it. */
#ifndef FG_NOTIFY_H
#define FG_NOTIFY_H

#include <event2/event.h>
#include <stdbool.h>

struct notify;

/* Reads NOTIFY_SOCKET and WATCHDOG_USEC/WATCHDOG_PID, and removes them from
 * the environment (they are for this process only). Returns NULL when no
 * service manager is listening (the common case outside systemd) or on an
 * error, which is logged: notification never stops the daemon. */
struct notify *notify_open(void);
/* Starts the watchdog's keep-alive on base when WATCHDOG_USEC asked for one;
 * status_fn (may be NULL) is called at each keep-alive for a fresh STATUS=
 * line. */
void notify_start(struct notify *n, struct event_base *base,
		  void (*status_fn)(void *ud, char *buf, size_t len), void *ud);
void notify_free(struct notify **n);

/* READY=1 with a STATUS= line: start-up or a reload is done. */
void notify_ready(struct notify *n, const char *status);
/* RELOADING=1 with MONOTONIC_USEC=, as systemd 253 and newer expect for
 * Type=notify-reload; older ones take RELOADING=1 alone. */
void notify_reloading(struct notify *n);
/* STOPPING=1 with a STATUS= line. */
void notify_stopping(struct notify *n, const char *status);
/* STATUS= alone. */
void notify_status(struct notify *n, const char *status);
/* True when a watchdog keep-alive is being sent. */
bool notify_watchdog_on(const struct notify *n);

#endif

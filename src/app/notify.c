#include "notify.h"

#include "log.h"

#include <assert.h>
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

/* STATUS= is refreshed this often even without a watchdog, so that
 * `systemctl status` shows stream counts that are at most this old. */
#define STATUS_EVERY_US 10000000ULL

struct notify {
	int fd;
	struct sockaddr_un addr;
	socklen_t addrlen;
	uint64_t watchdog_us; /* 0 = no watchdog */
	struct event *tick;
	void (*status_fn)(void *ud, char *buf, size_t len);
	void *status_ud;
	bool warned; /* one warning for a manager that stopped listening */
};

static void send_text(struct notify *n, const char *text)
{
	if (!n)
		return;
	ssize_t r = sendto(n->fd, text, strlen(text), MSG_NOSIGNAL, (struct sockaddr *)&n->addr,
			   n->addrlen);
	if (r < 0 && !n->warned) {
		/* systemd may be restarting; the next message may get through. */
		log_warn("notify", "cannot notify the service manager: %s", strerror(errno));
		n->warned = true;
	} else if (r >= 0) {
		n->warned = false;
	}
}

/* One line of a message: status text is free text from us, but a newline
 * in it would start another assignment. */
static void put_status(char *buf, size_t len, const char *status)
{
	size_t n = strlen(buf);
	if (!status || n >= len)
		return;
	snprintf(buf + n, len - n, "STATUS=%s\n", status);
	for (char *p = buf + n + 7; *p && p < buf + len; p++)
		if (*p == '\n' && p[1] != '\0')
			*p = ' ';
}

static bool watchdog_for_us(uint64_t *us)
{
	const char *v = getenv("WATCHDOG_USEC");
	const char *pid = getenv("WATCHDOG_PID");
	if (!v || !*v)
		return false;
	if (pid && *pid) {
		char *end;
		long p = strtol(pid, &end, 10);
		if (*end || p != (long)getpid())
			return false; /* meant for another process */
	}
	char *end;
	errno = 0;
	unsigned long long u = strtoull(v, &end, 10);
	if (errno || *end || u == 0) {
		log_warn("notify", "ignoring WATCHDOG_USEC='%s': not a number of microseconds", v);
		return false;
	}
	*us = u;
	return true;
}

struct notify *notify_open(void)
{
	const char *path = getenv("NOTIFY_SOCKET");
	uint64_t wd = 0;
	bool has_wd = watchdog_for_us(&wd);
	unsetenv("WATCHDOG_USEC");
	unsetenv("WATCHDOG_PID");
	if (!path || !*path)
		return NULL;
	struct notify *n = calloc(1, sizeof(*n));
	if (!n) {
		unsetenv("NOTIFY_SOCKET");
		return NULL;
	}
	size_t len = strlen(path);
	n->addr.sun_family = AF_UNIX;
	if ((path[0] != '/' && path[0] != '@') || len >= sizeof(n->addr.sun_path)) {
		log_warn("notify",
			 "ignoring NOTIFY_SOCKET='%s': only a socket path or an abstract "
			 "name (@...) is supported",
			 path);
		free(n);
		unsetenv("NOTIFY_SOCKET");
		return NULL;
	}
	memcpy(n->addr.sun_path, path, len);
	if (path[0] == '@')
		n->addr.sun_path[0] = '\0'; /* Linux abstract namespace */
	n->addrlen = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + len);
	n->fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	unsetenv("NOTIFY_SOCKET");
	if (n->fd < 0) {
		log_warn("notify", "cannot make the notification socket: %s", strerror(errno));
		free(n);
		return NULL;
	}
	n->watchdog_us = has_wd ? wd : 0;
	return n;
}

static void tick_cb(evutil_socket_t fd, short what, void *arg)
{
	struct notify *n = arg;
	char buf[512] = "";
	char status[400] = "";
	(void)fd;
	(void)what;
	if (n->watchdog_us)
		snprintf(buf, sizeof(buf), "WATCHDOG=1\n");
	if (n->status_fn) {
		n->status_fn(n->status_ud, status, sizeof(status));
		put_status(buf, sizeof(buf), status);
	}
	if (*buf)
		send_text(n, buf);
}

void notify_start(struct notify *n, struct event_base *base,
		  void (*status_fn)(void *ud, char *buf, size_t len), void *ud)
{
	if (!n)
		return;
	assert(!n->tick);
	n->status_fn = status_fn;
	n->status_ud = ud;
	uint64_t every = STATUS_EVERY_US;
	/* Half the watchdog's period, as sd_watchdog_enabled(3) advises: one
	 * late tick must not be taken for a hung daemon. */
	if (n->watchdog_us && n->watchdog_us / 2 < every)
		every = n->watchdog_us / 2;
	if (every == 0)
		every = 1;
	struct timeval tv = {(time_t)(every / 1000000), (suseconds_t)(every % 1000000)};
	n->tick = event_new(base, -1, EV_PERSIST, tick_cb, n);
	if (!n->tick || event_add(n->tick, &tv) != 0)
		log_warn("notify", "cannot start the status/watchdog timer");
	else if (n->watchdog_us)
		log_info("notify", "watchdog: keep-alive every %llu ms",
			 (unsigned long long)(every / 1000));
}

void notify_free(struct notify **np)
{
	struct notify *n = *np;
	if (!n)
		return;
	if (n->tick)
		event_free(n->tick);
	close(n->fd);
	free(n);
	*np = NULL;
}

void notify_ready(struct notify *n, const char *status)
{
	char buf[512] = "READY=1\n";
	put_status(buf, sizeof(buf), status);
	send_text(n, buf);
}

void notify_reloading(struct notify *n)
{
	struct timespec ts;
	char buf[128];
	clock_gettime(CLOCK_MONOTONIC, &ts);
	snprintf(buf, sizeof(buf), "RELOADING=1\nMONOTONIC_USEC=%llu\n",
		 (unsigned long long)ts.tv_sec * 1000000ULL +
			 (unsigned long long)ts.tv_nsec / 1000);
	send_text(n, buf);
}

void notify_stopping(struct notify *n, const char *status)
{
	char buf[512] = "STOPPING=1\n";
	put_status(buf, sizeof(buf), status);
	send_text(n, buf);
}

void notify_status(struct notify *n, const char *status)
{
	char buf[512] = "";
	put_status(buf, sizeof(buf), status);
	if (*buf)
		send_text(n, buf);
}

bool notify_watchdog_on(const struct notify *n)
{
	return n && n->watchdog_us;
}

/* The log file and logrotate.
 *
 * logrotate renames the file and signals; until the reopen, lines still go
 * to the renamed file (same inode), so nothing is lost. The reopen runs as
 * the account fedgate switched to: the folder of [log] file must let it
 * create the new file, or logrotate's `create` makes it first. */
#include "logfile.h"

#include "fg.h"
#include "log.h"

#include <signal.h>

static void reopen_cb(evutil_socket_t sig, short what, void *arg)
{
	char err[512];
	(void)sig;
	(void)what;
	(void)arg;
	if (log_reopen_current(err, sizeof(err)) != FG_OK)
		log_error("log", "%s; logging goes on to the file as it was", err);
	else
		log_info("log", "log file reopened (SIGUSR1)");
}

struct event *logfile_watch(struct event_base *base)
{
	struct event *ev = evsignal_new(base, SIGUSR1, reopen_cb, NULL);
	if (ev && evsignal_add(ev, NULL) != 0) {
		event_free(ev);
		ev = NULL;
	}
	return ev;
}

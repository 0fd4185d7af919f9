#include "log.h"

#include "fg.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

static enum log_level current = LOG_INFO;

static const char *const names[] = {"error", "warning", "info", "debug"};
/* syslog(3) priorities of our levels: err, warning, info, debug. */
static const char *const priorities[] = {"<3>", "<4>", "<6>", "<7>"};

/* Where lines go: standard error, or a log file. The file keeps one
 * descriptor number for the life of the process, and a reopen puts the new
 * file on that number with dup3(), which is atomic: a thread writing a line
 * meanwhile writes it whole to the old file or whole to the new one, never
 * to a closed or reused descriptor. */
static _Atomic int out_fd = STDERR_FILENO;
/* 1 when out_fd is the journal's stream: no timestamp (journald stamps
 * each line) and a syslog priority prefix; -1 = not looked at yet. */
static _Atomic int journal = -1;
static pthread_mutex_t reopen_lock = PTHREAD_MUTEX_INITIALIZER;
static char *file_path; /* the log file, NULL = standard error; under reopen_lock */
static int parked = -1; /* the file's number once there was one; under reopen_lock */

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

/* systemd sets JOURNAL_STREAM to "DEV:INODE" of the stream it connected to
 * stderr (systemd.exec(5)); a child whose stderr was redirected elsewhere
 * inherits the variable, so the descriptor itself must be that stream. */
int log_is_journal(int fd)
{
	const char *v = getenv("JOURNAL_STREAM");
	unsigned long long dev, ino;
	char tail;
	struct stat st;

	if (v == NULL || sscanf(v, "%llu:%llu%c", &dev, &ino, &tail) != 2)
		return 0;
	if (fstat(fd, &st) != 0)
		return 0;
	return (unsigned long long)st.st_dev == dev && (unsigned long long)st.st_ino == ino;
}

void log_detect_journal(void)
{
	journal = log_is_journal(out_fd);
}

/* Opens path for appending; FG_OK with *fd, or FG_ERR and a sentence. */
static int open_log(const char *path, int *fd, char *err, size_t errlen)
{
	*fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC | O_NOCTTY, 0640);
	if (*fd < 0) {
		int e = errno;
		snprintf(err, errlen, "cannot open the log file %s: %s%s", path, strerror(e),
			 e == EACCES ? " (the folder or file must be writable by the user "
				       "fedgate runs as)"
				     : "");
		return FG_ERR;
	}
	return FG_OK;
}

int log_reopen(const char *path, char *err, size_t errlen)
{
	int rc = FG_OK, fd = -1;
	char *copy = NULL;

	if (path != NULL && path[0] != '\0') {
		copy = strdup(path);
		if (copy == NULL) {
			snprintf(err, errlen, "out of memory");
			return FG_NOMEM;
		}
		rc = open_log(path, &fd, err, errlen);
		if (rc != FG_OK) {
			free(copy);
			return rc;
		}
	}
	pthread_mutex_lock(&reopen_lock);
	int old = out_fd;
	if (fd < 0) {
		/* Back to standard error. The file's number is never closed (a
		 * thread may be writing to it, and a closed number could be
		 * reused by a socket): it becomes a copy of stderr, which
		 * releases the file. */
		out_fd = STDERR_FILENO;
		if (old != STDERR_FILENO && dup3(STDERR_FILENO, old, O_CLOEXEC) < 0) {
			snprintf(err, errlen, "cannot leave the log file: %s", strerror(errno));
			rc = FG_ERR;
		}
	} else if (old == STDERR_FILENO && parked >= 0) {
		/* A number parked on stderr earlier takes the new file. */
		if (dup3(fd, parked, O_CLOEXEC) < 0) {
			snprintf(err, errlen, "cannot switch to the log file %s: %s", path,
				 strerror(errno));
			rc = FG_ERR;
		} else {
			out_fd = parked;
		}
		close(fd);
	} else if (old == STDERR_FILENO) {
		out_fd = fd;
	} else {
		if (dup3(fd, old, O_CLOEXEC) < 0) {
			snprintf(err, errlen, "cannot switch to the log file %s: %s", path,
				 strerror(errno));
			rc = FG_ERR;
		}
		close(fd);
	}
	if (out_fd != STDERR_FILENO)
		parked = out_fd;
	if (rc == FG_OK) {
		free(file_path);
		file_path = copy;
		copy = NULL;
		journal = log_is_journal(out_fd);
	}
	pthread_mutex_unlock(&reopen_lock);
	free(copy);
	return rc;
}

int log_reopen_current(char *err, size_t errlen)
{
	char *path = NULL;
	int rc;

	pthread_mutex_lock(&reopen_lock);
	if (file_path != NULL)
		path = strdup(file_path);
	pthread_mutex_unlock(&reopen_lock);
	if (path == NULL)
		return FG_OK; /* standard error: nothing to reopen */
	rc = log_reopen(path, err, errlen);
	free(path);
	return rc;
}

void log_vmsg(enum log_level lvl, const char *ctx, const char *fmt, va_list ap)
{
	if (!log_enabled(lvl))
		return;
	if (journal < 0)
		journal = log_is_journal(out_fd);
	/* Build the whole line first and write it once, so lines from the
	 * store thread and the loop never interleave mid-line. */
	char line[2048];
	int n;
	if (journal > 0) {
		n = snprintf(line, sizeof(line), "%s%s %s: ", priorities[lvl], names[lvl],
			     ctx ? ctx : "fedgate");
	} else {
		struct timeval tv;
		struct tm tm;
		gettimeofday(&tv, NULL);
		gmtime_r(&tv.tv_sec, &tm);
		n = (int)strftime(line, sizeof(line), "%Y-%m-%dT%H:%M:%S", &tm);
		n += snprintf(line + n, sizeof(line) - (size_t)n,
			      ".%03ldZ %s %s: ", (long)(tv.tv_usec / 1000), names[lvl],
			      ctx ? ctx : "fedgate");
	}
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
	/* One write(2): with O_APPEND the line lands whole at the end even
	 * when logrotate's copytruncate or another writer moved it. */
	for (int off = 0; off < n;) {
		ssize_t w = write(out_fd, line + off, (size_t)(n - off));
		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			break; /* nowhere to report it */
		off += (int)w;
	}
}

void log_msg(enum log_level lvl, const char *ctx, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	log_vmsg(lvl, ctx, fmt, ap);
	va_end(ap);
}

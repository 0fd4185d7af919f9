#include "store_watch.h"

#include "fg.h"
#include "log.h"

#include <assert.h>
#include <errno.h>
#include <event2/event.h>
#include <fcntl.h>
#include <jansson.h>
#include <libpq-fe.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* ---- the payload ---- */

/* Text that may go into a log line as it is: no control characters (a
 * payload is another process's input; jansson already checked UTF-8 and
 * refuses \u0000 unless asked). */
static bool printable(const char *s, size_t len, size_t max)
{
	if (len == 0 || len > max)
		return false;
	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)s[i];
		if (c < 0x20 || c == 0x7f)
			return false;
	}
	return true;
}

void store_watch_note_clear(struct store_watch_note *n)
{
	free(n->node);
	for (size_t i = 0; i < n->nactions; i++)
		free(n->actions[i]);
	free(n->actions);
	memset(n, 0, sizeof(*n));
}

int store_watch_parse(const char *payload, size_t len, struct store_watch_note *n, char *err,
		      size_t errlen)
{
	memset(n, 0, sizeof(*n));
	if (len > STORE_WATCH_MAX_PAYLOAD) {
		snprintf(err, errlen, "the payload is longer than %d bytes",
			 STORE_WATCH_MAX_PAYLOAD);
		return FG_INVAL;
	}
	json_error_t jerr;
	json_t *root = json_loadb(payload, len, JSON_REJECT_DUPLICATES, &jerr);
	if (!root) {
		snprintf(err, errlen, "not JSON: %s", jerr.text);
		return FG_INVAL;
	}
	int rc = FG_INVAL;
	json_t *node = json_object_get(root, "node");
	json_t *at = json_object_get(root, "at_ms");
	json_t *actions = json_object_get(root, "actions");
	json_t *more = json_object_get(root, "more");
	if (!json_is_object(root)) {
		snprintf(err, errlen, "not a JSON object");
		goto out;
	}
	if (!json_is_string(node) ||
	    !printable(json_string_value(node), json_string_length(node), STORE_WATCH_MAX_NODE)) {
		snprintf(err, errlen, "\"node\" is not a name of 1 to %d printable characters",
			 STORE_WATCH_MAX_NODE);
		goto out;
	}
	if (!json_is_integer(at) || json_integer_value(at) < 0) {
		snprintf(err, errlen, "\"at_ms\" is not a non-negative integer");
		goto out;
	}
	if (!json_is_array(actions) || json_array_size(actions) > STORE_WATCH_MAX_ACTIONS) {
		snprintf(err, errlen, "\"actions\" is not an array of at most %d texts",
			 STORE_WATCH_MAX_ACTIONS);
		goto out;
	}
	if (more && (!json_is_integer(more) || json_integer_value(more) < 0)) {
		snprintf(err, errlen, "\"more\" is not a non-negative integer");
		goto out;
	}
	size_t i;
	json_t *a;
	json_array_foreach(actions, i, a)
	{
		if (!json_is_string(a) || !printable(json_string_value(a), json_string_length(a),
						     STORE_WATCH_MAX_ACTION)) {
			snprintf(err, errlen,
				 "action %zu is not a text of 1 to %d printable characters", i + 1,
				 STORE_WATCH_MAX_ACTION);
			goto out;
		}
	}
	rc = FG_NOMEM;
	n->node = strdup(json_string_value(node));
	n->at_ms = (long long)json_integer_value(at);
	n->more = more ? (long long)json_integer_value(more) : 0;
	if (json_array_size(actions) > 0) {
		n->actions = calloc(json_array_size(actions), sizeof(*n->actions));
		if (!n->actions)
			goto out;
	}
	if (!n->node)
		goto out;
	json_array_foreach(actions, i, a)
	{
		n->actions[i] = strdup(json_string_value(a));
		if (!n->actions[i])
			goto out;
		n->nactions = i + 1;
	}
	rc = FG_OK;
out:
	if (rc == FG_NOMEM)
		snprintf(err, errlen, "out of memory");
	if (rc != FG_OK)
		store_watch_note_clear(n);
	json_decref(root);
	return rc;
}

void store_watch_actions_text(const struct store_watch_note *n, char *buf, size_t len)
{
	/* Room kept for " and N more", so that a long list still says how
	 * long it was. */
	enum { TAIL = 24 };
	assert(len > TAIL);
	size_t off = 0, i;
	buf[0] = '\0';
	for (i = 0; i < n->nactions; i++) {
		bool last = i + 1 == n->nactions && n->more == 0;
		size_t need = (i ? 2 : 0) + strlen(n->actions[i]) + (last ? 0 : TAIL);
		if (off + need >= len)
			break;
		off += (size_t)snprintf(buf + off, len - off, "%s%s", i ? ", " : "", n->actions[i]);
	}
	long long rest = (long long)(n->nactions - i) + n->more;
	if (rest > 0)
		snprintf(buf + off, len - off, off ? " and %lld more" : "%lld actions", rest);
}

/* ---- the connection ---- */

/* Reconnection backoff: quick at first (a restart of PostgreSQL takes a
 * second or two), then no more than one attempt every BACKOFF_MAX_MS. */
#define BACKOFF_MIN_MS 250
#define BACKOFF_MAX_MS 5000
/* Our bound on an attempt, name lookup and LISTEN included; also libpq's
 * connect_timeout (per address) unless the dsn sets its own. */
#define CONNECT_TIMEOUT_S 10
#define STR_(x)		  #x
#define STR(x)		  STR_(x)

enum watch_state { W_IDLE, W_CONNECTING, W_LISTEN_SENT, W_LISTENING };

/* One connection attempt on a thread of its own: libpq resolves a host
 * name with a blocking getaddrinfo, and a slow DNS server must not stop the
 * loop. The thread connects (PQconnectdbParams, blocking) and wakes the
 * loop through a pipe; the loop takes the connection and goes on without
 * blocking. Either side may give up first: the last one out frees it. */
struct opening {
	pthread_mutex_t mu;
	int refs;	/* 2 while both the loop and the thread hold it */
	bool loop_gone; /* the loop gave up (timeout, free): no wake-up wanted */
	int rfd, wfd;	/* the wake-up pipe: rfd the loop's, wfd the thread's */
	PGconn *conn;	/* the thread's result until the loop takes it */
	char *dsn;	/* a copy: the watch may be freed first */
};

struct store_watch {
	struct event_base *base;
	char *dsn;
	struct store_watch_hooks hooks;
	PGconn *conn;
	enum watch_state state;
	struct opening *opening; /* while W_CONNECTING */
	struct event *io;	 /* on PQsocket, or on the opening's pipe */
	struct event *timer;	 /* reconnect, or the connect timeout */
	unsigned backoff_ms;
	bool listened_once;
	bool lost_said; /* the warning for this outage is out */
};

static void io_cb(evutil_socket_t fd, short what, void *arg);
static void timer_cb(evutil_socket_t fd, short what, void *arg);

static void opening_free(struct opening *o)
{
	if (o->conn)
		PQfinish(o->conn);
	if (o->dsn) {
		/* It may hold a password. */
		explicit_bzero(o->dsn, strlen(o->dsn));
		free(o->dsn);
	}
	pthread_mutex_destroy(&o->mu);
	free(o);
}

/* The loop is done with o: its pipe end closed under the lock, so the
 * thread never writes to a pipe without a reader (SIGPIPE). */
static void opening_leave(struct opening *o)
{
	pthread_mutex_lock(&o->mu);
	o->loop_gone = true;
	close(o->rfd);
	o->rfd = -1;
	bool last = --o->refs == 0;
	pthread_mutex_unlock(&o->mu);
	if (last)
		opening_free(o);
}

static void drop_conn(struct store_watch *w)
{
	if (w->io) {
		event_free(w->io);
		w->io = NULL;
	}
	if (w->opening) {
		opening_leave(w->opening);
		w->opening = NULL;
	}
	if (w->conn) {
		PQfinish(w->conn);
		w->conn = NULL;
	}
	w->state = W_IDLE;
}

/* The message of libpq without its trailing newline; it names host and
 * port, never the password. */
static void conn_error(PGconn *c, char *buf, size_t len)
{
	snprintf(buf, len, "%s", c ? PQerrorMessage(c) : "out of memory");
	size_t n = strlen(buf);
	while (n > 0 && (buf[n - 1] == '\n' || buf[n - 1] == ' '))
		buf[--n] = '\0';
	/* libpq's messages span lines ("...\n\tIs the server running"):
	 * one line for the log, whitespace runs as one space. */
	char *o = buf;
	for (const char *p = buf; *p; p++) {
		bool ws = (unsigned char)*p < 0x20;
		if (ws && (o == buf || o[-1] == ' '))
			continue;
		*o++ = ws ? ' ' : *p;
	}
	*o = '\0';
}

/* The server's notices and its last words ("terminating connection due to
 * administrator command") would go to stderr: to the debug log instead,
 * the loss itself is reported when the connection fails. */
static void on_notice(void *arg, const char *msg)
{
	(void)arg;
	char line[300];
	snprintf(line, sizeof(line), "%s", msg);
	line[strcspn(line, "\n")] = '\0';
	log_debug("store", "configuration watch: PostgreSQL says: %s", line);
}

static void schedule_retry(struct store_watch *w, const char *why)
{
	drop_conn(w);
	if (!w->lost_said) {
		log_warn("store",
			 "watching for configuration changes of other nodes: %s; changes made "
			 "elsewhere are applied here once PostgreSQL can be reached again",
			 why);
		w->lost_said = true;
	} else {
		log_debug("store", "configuration watch: %s; next attempt in %u ms", why,
			  w->backoff_ms);
	}
	struct timeval tv = {.tv_sec = w->backoff_ms / 1000,
			     .tv_usec = (w->backoff_ms % 1000) * 1000};
	evtimer_add(w->timer, &tv);
	w->backoff_ms = w->backoff_ms * 2 > BACKOFF_MAX_MS ? BACKOFF_MAX_MS : w->backoff_ms * 2;
}

static int watch_socket(struct store_watch *w, short what)
{
	if (w->io) {
		event_free(w->io);
		w->io = NULL;
	}
	/* libpq may change sockets while connecting (one address after
	 * another): a new event for whichever it uses now. */
	w->io = event_new(w->base, PQsocket(w->conn), what, io_cb, w);
	if (!w->io || event_add(w->io, NULL) != 0)
		return FG_ERR;
	return FG_OK;
}

static void *opening_main(void *arg)
{
	struct opening *o = arg;
	/* Keepalives: a PostgreSQL that vanishes without closing (a host
	 * gone) is noticed in seconds, not after TCP's two hours.
	 * connect_timeout before dbname: the dsn's own wins. */
	const char *keys[] = {"connect_timeout",  "dbname",
			      "application_name", "keepalives",
			      "keepalives_idle",  "keepalives_interval",
			      "keepalives_count", NULL};
	const char *vals[] = {
		STR(CONNECT_TIMEOUT_S), o->dsn, "fedgate-watch", "1", "5", "2", "3", NULL};
	PGconn *c = PQconnectdbParams(keys, vals, 1);

	pthread_mutex_lock(&o->mu);
	o->conn = c;
	if (!o->loop_gone) {
		/* Empty pipe, one byte: never blocks, never fails short. */
		ssize_t n = write(o->wfd, "x", 1);
		(void)n;
	}
	close(o->wfd);
	o->wfd = -1;
	bool last = --o->refs == 0;
	pthread_mutex_unlock(&o->mu);
	if (last)
		opening_free(o);
	return NULL;
}

static void opened(struct store_watch *w);

static void opening_cb(evutil_socket_t fd, short what, void *arg)
{
	struct store_watch *w = arg;
	struct opening *o = w->opening;
	(void)fd;
	(void)what;
	assert(w->state == W_CONNECTING && o != NULL);
	pthread_mutex_lock(&o->mu);
	w->conn = o->conn;
	o->conn = NULL;
	pthread_mutex_unlock(&o->mu);
	event_free(w->io);
	w->io = NULL;
	opening_leave(o);
	w->opening = NULL;
	opened(w);
}

static void start_connect(struct store_watch *w)
{
	struct opening *o = calloc(1, sizeof(*o));
	int fds[2] = {-1, -1};
	pthread_t t;
	pthread_attr_t attr;
	bool attr_made = false;
	int rc = -1;

	assert(w->state == W_IDLE && w->opening == NULL);
	if (!o || !(o->dsn = strdup(w->dsn))) {
		free(o);
		schedule_retry(w, "out of memory");
		return;
	}
	pthread_mutex_init(&o->mu, NULL);
	o->refs = 2;
	if (pipe2(fds, O_NONBLOCK | O_CLOEXEC) == 0) {
		o->rfd = fds[0];
		o->wfd = fds[1];
		w->io = event_new(w->base, o->rfd, EV_READ, opening_cb, w);
		attr_made = pthread_attr_init(&attr) == 0;
		if (w->io && event_add(w->io, NULL) == 0 && attr_made &&
		    pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED) == 0)
			rc = pthread_create(&t, &attr, opening_main, o);
	}
	if (attr_made)
		pthread_attr_destroy(&attr);
	if (rc != 0) {
		char why[100];
		snprintf(why, sizeof(why), "cannot start connecting: %s",
			 strerror(rc > 0 ? rc : errno));
		if (fds[1] >= 0)
			close(fds[1]);
		o->wfd = -1;
		if (fds[0] >= 0) {
			o->refs = 1;
			w->opening = o; /* drop_conn closes the pipe and frees it */
		} else {
			opening_free(o);
		}
		schedule_retry(w, why);
		return;
	}
	w->opening = o;
	w->state = W_CONNECTING;
	struct timeval tv = {.tv_sec = CONNECT_TIMEOUT_S};
	evtimer_add(w->timer, &tv);
}

/* The thread's connection (NULL when it was out of memory), connected or
 * failed; from here on nothing blocks. */
static void opened(struct store_watch *w)
{
	char why[300];
	if (!w->conn || PQstatus(w->conn) != CONNECTION_OK) {
		conn_error(w->conn, why, sizeof(why));
		schedule_retry(w, why);
		return;
	}
	PQsetNoticeProcessor(w->conn, on_notice, NULL);
	if (PQsetnonblocking(w->conn, 1) != 0 ||
	    !PQsendQuery(w->conn, "LISTEN " STORE_WATCH_CHANNEL) || PQflush(w->conn) < 0) {
		conn_error(w->conn, why, sizeof(why));
		schedule_retry(w, why);
		return;
	}
	w->state = W_LISTEN_SENT;
	/* A query of a few bytes leaves at once; should it not, EV_WRITE
	 * flushes the rest. */
	short what = EV_READ | EV_PERSIST |
		     (PQisnonblocking(w->conn) && PQflush(w->conn) == 1 ? EV_WRITE : 0);
	if (watch_socket(w, what) != FG_OK)
		schedule_retry(w, "cannot watch the connection's socket");
}

static void listening(struct store_watch *w)
{
	bool again = w->listened_once;
	evtimer_del(w->timer);
	w->state = W_LISTENING;
	w->backoff_ms = BACKOFF_MIN_MS;
	w->listened_once = true;
	if (w->lost_said)
		log_info("store",
			 "watching for configuration changes of other nodes again; partners "
			 "and gateway settings are read again in case some were missed");
	else
		log_info("store", "watching for configuration changes of other nodes (%s)",
			 STORE_WATCH_CHANNEL);
	w->lost_said = false;
	if (w->hooks.resync)
		w->hooks.resync(w->hooks.ud, again);
}

static void deliver(struct store_watch *w, PGnotify *nt)
{
	struct store_watch_note n;
	char err[200];
	const char *payload = nt->extra ? nt->extra : "";
	if (store_watch_parse(payload, strlen(payload), &n, err, sizeof(err)) != FG_OK) {
		/* Something changed; what is unreadable: read everything. */
		log_warn("store",
			 "a configuration notification could not be read (%s); partners and "
			 "gateway settings are read again",
			 err);
		if (w->hooks.resync)
			w->hooks.resync(w->hooks.ud, false);
		return;
	}
	if (w->hooks.note)
		w->hooks.note(w->hooks.ud, &n);
	store_watch_note_clear(&n);
}

/* Input on a connected socket: results (the LISTEN's) and notifications. */
static void read_step(struct store_watch *w)
{
	char why[300];
	if (!PQconsumeInput(w->conn)) {
		conn_error(w->conn, why, sizeof(why));
		schedule_retry(w, why[0] ? why : "the connection was closed");
		return;
	}
	while (!PQisBusy(w->conn)) {
		PGresult *r = PQgetResult(w->conn);
		if (!r)
			break;
		ExecStatusType st = PQresultStatus(r);
		PQclear(r);
		if (st != PGRES_COMMAND_OK) {
			conn_error(w->conn, why, sizeof(why));
			schedule_retry(w, why);
			return;
		}
		if (w->state == W_LISTEN_SENT) {
			listening(w);
			/* resync may not free w, but the state may have moved. */
			if (w->state != W_LISTENING)
				return;
		}
	}
	PGnotify *nt;
	while (w->conn && (nt = PQnotifies(w->conn)) != NULL) {
		if (strcmp(nt->relname, STORE_WATCH_CHANNEL) == 0)
			deliver(w, nt);
		PQfreemem(nt);
	}
	if (w->conn && PQstatus(w->conn) == CONNECTION_BAD)
		schedule_retry(w, "the connection was closed");
}

static void io_cb(evutil_socket_t fd, short what, void *arg)
{
	struct store_watch *w = arg;
	(void)fd;
	assert(w->state == W_LISTEN_SENT || w->state == W_LISTENING);
	if ((what & EV_WRITE) && PQflush(w->conn) == 0 && w->io) {
		/* All out: only input matters from now on. */
		if (watch_socket(w, EV_READ | EV_PERSIST) != FG_OK) {
			schedule_retry(w, "cannot watch the connection's socket");
			return;
		}
	}
	if (what & EV_READ)
		read_step(w);
}

static void timer_cb(evutil_socket_t fd, short what, void *arg)
{
	struct store_watch *w = arg;
	(void)fd;
	(void)what;
	if (w->state == W_IDLE)
		start_connect(w);
	else if (w->state == W_CONNECTING || w->state == W_LISTEN_SENT)
		schedule_retry(w, "PostgreSQL did not answer within 10 seconds");
}

struct store_watch *store_watch_start(struct event_base *base, const char *dsn,
				      const struct store_watch_hooks *hooks)
{
	struct store_watch *w = calloc(1, sizeof(*w));
	if (!w)
		return NULL;
	w->base = base;
	w->hooks = *hooks;
	w->backoff_ms = BACKOFF_MIN_MS;
	w->dsn = strdup(dsn);
	w->timer = evtimer_new(base, timer_cb, w);
	if (!w->dsn || !w->timer) {
		store_watch_free(&w);
		return NULL;
	}
	start_connect(w);
	return w;
}

bool store_watch_listening(const struct store_watch *w)
{
	return w && w->state == W_LISTENING;
}

void store_watch_free(struct store_watch **pw)
{
	struct store_watch *w = *pw;
	if (!w)
		return;
	drop_conn(w);
	if (w->timer)
		event_free(w->timer);
	if (w->dsn) {
		/* It may hold a password. */
		explicit_bzero(w->dsn, strlen(w->dsn));
		free(w->dsn);
	}
	free(w);
	*pw = NULL;
}

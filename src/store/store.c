/* The store thread.
 *
 * Jobs wait in a FIFO under a mutex; one thread runs them against the
 * database and moves each, with its result, to a done-list. The loop learns
 * of finished jobs through a pipe: the thread writes a byte, a persistent
 * read event on the loop drains the pipe and runs the done callbacks. The
 * store thread never calls libevent, so the base needs no locking
 * (evthread_use_pthreads is not required). */
#include "store.h"

#include "fg.h"
#include "log.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

struct store_job {
	struct store_job *next;
	store_job_fn fn;
	store_done_fn done;
	void *ud;
	int rc;
	char err[512];
};

struct job_list {
	struct store_job *head;
	struct store_job **tail;
};

struct store {
	struct event_base *base;
	struct store_db *db;
	pthread_t thread;
	pthread_mutex_t mu;
	pthread_cond_t cv;
	struct job_list queue; /* submitted, not yet run */
	struct job_list done;  /* run, done callback not yet called */
	bool stopping;
	int wake_r, wake_w;
	struct event *ev;
};

static void list_init(struct job_list *l)
{
	l->head = NULL;
	l->tail = &l->head;
}

static void list_push(struct job_list *l, struct store_job *j)
{
	j->next = NULL;
	*l->tail = j;
	l->tail = &j->next;
}

static struct store_job *list_pop(struct job_list *l)
{
	struct store_job *j = l->head;

	if (j != NULL) {
		l->head = j->next;
		if (l->head == NULL)
			l->tail = &l->head;
	}
	return j;
}

static void wake_loop(struct store *st)
{
	const char b = 0;

	/* A full pipe already holds a wake-up the loop has not read. */
	while (write(st->wake_w, &b, 1) < 0 && errno == EINTR)
		;
}

static void *thread_main(void *arg)
{
	struct store *st = arg;

	pthread_mutex_lock(&st->mu);
	for (;;) {
		struct store_job *j;

		while (st->queue.head == NULL && !st->stopping)
			pthread_cond_wait(&st->cv, &st->mu);
		j = list_pop(&st->queue);
		if (j == NULL)
			break; /* stopping, and nothing left to run */
		pthread_mutex_unlock(&st->mu);

		j->err[0] = '\0';
		j->rc = j->fn(st->db, j->ud, j->err, sizeof(j->err));

		pthread_mutex_lock(&st->mu);
		list_push(&st->done, j);
		pthread_mutex_unlock(&st->mu);
		wake_loop(st);
		pthread_mutex_lock(&st->mu);
	}
	pthread_mutex_unlock(&st->mu);
	return NULL;
}

/* Runs the done callbacks of every finished job, in submission order. */
static void run_dones(struct store *st)
{
	struct job_list l;
	struct store_job *j;

	pthread_mutex_lock(&st->mu);
	l = st->done;
	list_init(&st->done);
	if (l.head == NULL)
		l.tail = &l.head;
	pthread_mutex_unlock(&st->mu);
	while ((j = list_pop(&l)) != NULL) {
		if (j->done != NULL)
			j->done(j->ud, j->rc, j->err);
		free(j);
	}
}

static void on_wake(evutil_socket_t fd, short what, void *arg)
{
	char buf[64];

	FG_UNUSED(what);
	/* Drain before taking the list: a byte written after this read belongs
	 * to a job that is on the list already or will wake us again. */
	while (read(fd, buf, sizeof(buf)) > 0)
		;
	run_dones(arg);
}

struct store *store_start(struct event_base *base, struct store_db *db)
{
	struct store *st = calloc(1, sizeof(*st));
	int fds[2] = {-1, -1};
	sigset_t all, old;
	bool mu = false, cv = false;
	int prc;

	if (st == NULL)
		goto fail;
	st->base = base;
	st->db = db;
	st->wake_r = st->wake_w = -1;
	list_init(&st->queue);
	list_init(&st->done);
	if (pthread_mutex_init(&st->mu, NULL) != 0)
		goto fail;
	mu = true;
	if (pthread_cond_init(&st->cv, NULL) != 0)
		goto fail;
	cv = true;
	if (pipe2(fds, O_NONBLOCK | O_CLOEXEC) != 0) {
		log_error("store", "cannot create the wake-up pipe: %s", strerror(errno));
		goto fail;
	}
	st->wake_r = fds[0];
	st->wake_w = fds[1];
	st->ev = event_new(base, st->wake_r, EV_READ | EV_PERSIST, on_wake, st);
	if (st->ev == NULL || event_add(st->ev, NULL) != 0)
		goto fail;

	/* Signals are the loop's business: the thread starts with all of
	 * them blocked so none is delivered to it. */
	sigfillset(&all);
	pthread_sigmask(SIG_SETMASK, &all, &old);
	prc = pthread_create(&st->thread, NULL, thread_main, st);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	if (prc != 0) {
		log_error("store", "cannot start the store thread: %s", strerror(prc));
		goto fail;
	}
	return st;

fail:
	if (st != NULL) {
		if (st->ev != NULL)
			event_free(st->ev);
		if (st->wake_r >= 0)
			close(st->wake_r);
		if (st->wake_w >= 0)
			close(st->wake_w);
		if (cv)
			pthread_cond_destroy(&st->cv);
		if (mu)
			pthread_mutex_destroy(&st->mu);
		free(st);
	}
	return NULL;
}

int store_submit(struct store *st, store_job_fn job, store_done_fn done, void *ud)
{
	struct store_job *j;

	if (job == NULL)
		return FG_INVAL;
	j = calloc(1, sizeof(*j));
	if (j == NULL)
		return FG_NOMEM;
	j->fn = job;
	j->done = done;
	j->ud = ud;
	pthread_mutex_lock(&st->mu);
	if (st->stopping) {
		/* A done callback run by store_stop(): the thread is going. */
		pthread_mutex_unlock(&st->mu);
		free(j);
		return FG_ERR;
	}
	list_push(&st->queue, j);
	pthread_cond_signal(&st->cv);
	pthread_mutex_unlock(&st->mu);
	return FG_OK;
}

void store_stop(struct store **pst)
{
	struct store *st = *pst;
	int prc;

	if (st == NULL)
		return;
	pthread_mutex_lock(&st->mu);
	st->stopping = true;
	pthread_cond_signal(&st->cv);
	pthread_mutex_unlock(&st->mu);
	/* The thread empties the queue before it sees stopping. */
	prc = pthread_join(st->thread, NULL);
	if (prc != 0)
		log_error("store", "cannot join the store thread: %s", strerror(prc));
	run_dones(st);
	event_free(st->ev);
	close(st->wake_r);
	close(st->wake_w);
	pthread_cond_destroy(&st->cv);
	pthread_mutex_destroy(&st->mu);
	store_db_close(&st->db);
	free(st);
	*pst = NULL;
}

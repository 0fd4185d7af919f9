/* The store threads.
 *
 * Jobs wait in a FIFO under a mutex; a worker thread runs each against its
 * own database connection and moves it, with its result, to a done-list
 * kept in submission order. One worker on SQLite; [store] pool_size on
 * PostgreSQL, where a job with a key (store_submit_keyed) may run beside
 * jobs of other keys, and a job without one (store_submit) runs alone,
 * after everything submitted before it and before everything after. The loop learns
 * of finished jobs through a pipe: the thread writes a byte, a persistent
 * read event on the loop drains the pipe and runs the done callbacks. The
 * store thread never calls libevent, so the base needs no locking
 * (evthread_use_pthreads is not required). */
#include "store.h"

#include "fg.h"
#include "log.h"

#include <assert.h>
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
	char *key; /* NULL: a barrier */
	unsigned long seq;
	int rc;
	char err[512];
};

struct job_list {
	struct store_job *head;
	struct store_job **tail;
};

/* Workers: one on SQLite (one writer at a time anyway), [store] pool_size
 * on PostgreSQL, each with a connection of its own. */
#define MAX_WORKERS 64
/* How far into the queue a free worker looks for a job it may start. */
#define LOOKAHEAD 64

struct store {
	struct event_base *base;
	struct store_db *db[MAX_WORKERS];
	pthread_t thread[MAX_WORKERS];
	unsigned nworkers, started;
	pthread_mutex_t mu;
	pthread_cond_t cv;
	struct job_list queue;	   /* submitted, not yet started, in order */
	struct store_job *running; /* started, not finished (linked by next) */
	bool barrier_running;
	struct job_list done; /* finished, ordered by seq */
	unsigned long next_seq, next_done;
	bool stopping;
	int wake_r, wake_w;
	struct event *ev;
};

struct worker_arg {
	struct store *st;
	unsigned i;
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

/* Done jobs wait here in submission order: their callbacks must be. */
static void done_insert(struct job_list *l, struct store_job *j)
{
	struct store_job **p = &l->head;

	while (*p != NULL && (*p)->seq < j->seq)
		p = &(*p)->next;
	j->next = *p;
	*p = j;
	if (j->next == NULL)
		l->tail = &j->next;
}

static bool same_key(const struct store_job *a, const struct store_job *b)
{
	return a->key != NULL && b->key != NULL && strcmp(a->key, b->key) == 0;
}

/* The next job a worker may start, taken off the queue; NULL when none
 * may start now. A barrier (no key) starts when everything before it has
 * finished, and nothing after it starts before it finishes; a keyed job
 * starts when no earlier job of its key is queued or running: so every job
 * sees the effects of each earlier job it could depend on, as with one
 * worker. */
static struct store_job *pick(struct store *st)
{
	struct store_job **p, *j;

	unsigned depth = 0;

	if (st->barrier_running)
		return NULL;
	for (p = &st->queue.head; (j = *p) != NULL; p = &j->next) {
		bool busy = false;

		/* A look-ahead window: a long queue of one user's jobs costs a
		 * bounded scan; what lies beyond waits its turn. */
		if (++depth > LOOKAHEAD)
			return NULL;

		if (j->key == NULL) {
			if (j != st->queue.head || st->running != NULL)
				return NULL;
			st->barrier_running = true;
			break;
		}
		for (struct store_job *r = st->running; r != NULL && !busy; r = r->next)
			busy = same_key(r, j);
		for (struct store_job *q = st->queue.head; q != j && !busy; q = q->next)
			busy = same_key(q, j);
		if (!busy)
			break;
	}
	if (j == NULL)
		return NULL;
	*p = j->next;
	if (st->queue.tail == &j->next)
		st->queue.tail = p;
	j->next = st->running;
	st->running = j;
	return j;
}

static void unlink_running(struct store *st, struct store_job *j)
{
	struct store_job **p = &st->running;

	while (*p != j)
		p = &(*p)->next;
	*p = j->next;
	if (j->key == NULL)
		st->barrier_running = false;
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
	struct worker_arg *wa = arg;
	struct store *st = wa->st;
	struct store_db *db = st->db[wa->i];

	free(wa);
	pthread_mutex_lock(&st->mu);
	for (;;) {
		struct store_job *j = pick(st);

		if (j == NULL) {
			if (st->stopping && st->queue.head == NULL)
				break; /* stopping, and nothing left to run */
			pthread_cond_wait(&st->cv, &st->mu);
			continue;
		}
		pthread_mutex_unlock(&st->mu);

		j->err[0] = '\0';
		j->rc = j->fn(db, j->ud, j->err, sizeof(j->err));

		pthread_mutex_lock(&st->mu);
		unlink_running(st, j);
		done_insert(&st->done, j);
		/* What waited for this job may start now. */
		pthread_cond_broadcast(&st->cv);
		pthread_mutex_unlock(&st->mu);
		wake_loop(st);
		pthread_mutex_lock(&st->mu);
	}
	pthread_mutex_unlock(&st->mu);
	return NULL;
}

/* Runs the done callbacks of the finished jobs that every earlier job
 * finished before, in submission order. */
static void run_dones(struct store *st)
{
	struct job_list l;
	struct store_job *j;

	list_init(&l);
	pthread_mutex_lock(&st->mu);
	while (st->done.head != NULL && st->done.head->seq == st->next_done) {
		list_push(&l, list_pop(&st->done));
		st->next_done++;
	}
	pthread_mutex_unlock(&st->mu);
	while ((j = list_pop(&l)) != NULL) {
		if (j->done != NULL)
			j->done(j->ud, j->rc, j->err);
		free(j->key);
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
	unsigned want;
	int prc = 0;

	if (st == NULL)
		goto fail;
	st->base = base;
	st->db[0] = db;
	st->nworkers = 1;
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

	/* The pool's other connections; fewer work too. */
	want = store_db_pool_size(db);
	if (want > MAX_WORKERS)
		want = MAX_WORKERS;
	while (st->nworkers < want) {
		char err[600];

		if (store_db_open_again(db, &st->db[st->nworkers], err, sizeof(err)) != FG_OK) {
			log_warn("store", "%u of %u store connections: %s", st->nworkers, want,
				 err);
			break;
		}
		st->nworkers++;
	}

	/* Signals are the loop's business: the threads start with all of
	 * them blocked so none is delivered to them. */
	sigfillset(&all);
	pthread_sigmask(SIG_SETMASK, &all, &old);
	for (; st->started < st->nworkers; st->started++) {
		struct worker_arg *wa = malloc(sizeof(*wa));

		prc = wa == NULL ? ENOMEM : 0;
		if (wa != NULL) {
			*wa = (struct worker_arg){st, st->started};
			prc = pthread_create(&st->thread[st->started], NULL, thread_main, wa);
			if (prc != 0)
				free(wa);
		}
		if (prc != 0)
			break;
	}
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	if (st->started == 0) {
		log_error("store", "cannot start the store thread: %s", strerror(prc));
		goto fail;
	}
	if (st->started < st->nworkers)
		log_warn("store", "%u of %u store threads started: %s", st->started, st->nworkers,
			 strerror(prc));
	else if (st->started > 1)
		log_info("store", "%u connections: jobs of different users run side by side",
			 st->started);
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
		/* db stays the caller's; the others were ours. */
		for (unsigned i = 1; i < st->nworkers; i++)
			store_db_close(&st->db[i]);
		free(st);
	}
	return NULL;
}

int store_submit_keyed(struct store *st, const char *key, store_job_fn job, store_done_fn done,
		       void *ud)
{
	struct store_job *j;

	if (job == NULL)
		return FG_INVAL;
	j = calloc(1, sizeof(*j));
	if (j == NULL)
		return FG_NOMEM;
	if (key != NULL && (j->key = strdup(key)) == NULL) {
		free(j);
		return FG_NOMEM;
	}
	j->fn = job;
	j->done = done;
	j->ud = ud;
	pthread_mutex_lock(&st->mu);
	if (st->stopping) {
		/* A done callback run by store_stop(): the threads are going. */
		pthread_mutex_unlock(&st->mu);
		free(j->key);
		free(j);
		return FG_ERR;
	}
	j->seq = st->next_seq++;
	list_push(&st->queue, j);
	pthread_cond_broadcast(&st->cv);
	pthread_mutex_unlock(&st->mu);
	return FG_OK;
}

int store_submit(struct store *st, store_job_fn job, store_done_fn done, void *ud)
{
	return store_submit_keyed(st, NULL, job, done, ud);
}

unsigned store_workers(const struct store *st)
{
	return st->started;
}

void store_stop(struct store **pst)
{
	struct store *st = *pst;

	if (st == NULL)
		return;
	pthread_mutex_lock(&st->mu);
	st->stopping = true;
	pthread_cond_broadcast(&st->cv);
	pthread_mutex_unlock(&st->mu);
	/* The threads empty the queue before they see stopping. */
	for (unsigned i = 0; i < st->started; i++) {
		int prc = pthread_join(st->thread[i], NULL);

		if (prc != 0)
			log_error("store", "cannot join a store thread: %s", strerror(prc));
	}
	run_dones(st);
	assert(st->done.head == NULL && st->queue.head == NULL && st->running == NULL);
	event_free(st->ev);
	close(st->wake_r);
	close(st->wake_w);
	pthread_cond_destroy(&st->cv);
	pthread_mutex_destroy(&st->mu);
	for (unsigned i = 0; i < st->nworkers; i++)
		store_db_close(&st->db[i]);
	free(st);
	*pst = NULL;
}

/* The store as the daemon uses it: one thread owns the database, jobs are
 * queued to it, and their completions come back to the event loop, so the
 * loop never waits on the disk. */
#ifndef FG_STORE_H
#define FG_STORE_H

#include "store_sqlite.h"

#include <event2/event.h>

struct store;

/* Runs on the store thread with the database. Returns FG_OK or an error,
 * with a sentence in err. Must not touch loop state. */
typedef int (*store_job_fn)(struct store_db *db, void *ud, char *err, size_t errlen);
/* Runs on the loop thread once the job finished. */
typedef void (*store_done_fn)(void *ud, int rc, const char *err);

/* Takes ownership of db and starts the threads (PostgreSQL: pool_size of
 * them, the others with connections of their own). NULL on failure, and
 * then db is still the caller's to close. */
struct store *store_start(struct event_base *base, struct store_db *db);
/* Queues a job that runs alone: after every job submitted before it has
 * finished, and before any job submitted after it starts; so, for the
 * jobs it sees, jobs run one at a time in submission order. Done callbacks
 * of all jobs (keyed or not) are called in submission order. done may be
 * NULL. ud must stay valid until done is called. Returns FG_OK or
 * FG_NOMEM; FG_ERR when called from a done callback that store_stop()
 * runs (nothing is queued). */
int store_submit(struct store *st, store_job_fn job, store_done_fn done, void *ud);
/* The same for a job that touches only what belongs to key (a user's bare
 * JID): it starts after every earlier job of the same key and every
 * earlier store_submit() job, and may run on another connection beside
 * jobs of other keys (PostgreSQL with pool_size > 1). key is copied. */
int store_submit_keyed(struct store *st, const char *key, store_job_fn job, store_done_fn done,
		       void *ud);
/* The worker threads running (each with a connection of its own). */
unsigned store_workers(const struct store *st);
/* Finishes the queued jobs (their done callbacks run, on the caller's
 * thread), stops the thread, closes the database. Accepts NULL, clears the
 * pointer. Not from a done callback. */
void store_stop(struct store **st);

#endif

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

/* Takes ownership of db and starts the thread. NULL on failure, and then
 * db is still the caller's to close. */
struct store *store_start(struct event_base *base, struct store_db *db);
/* Queues a job; jobs run one at a time in submission order, and their done
 * callbacks are called in that order too. done may be NULL. ud must stay
 * valid until done is called. Returns FG_OK or FG_NOMEM; FG_ERR when
 * called from a done callback that store_stop() runs (nothing is queued). */
int store_submit(struct store *st, store_job_fn job, store_done_fn done, void *ud);
/* Finishes the queued jobs (their done callbacks run, on the caller's
 * thread), stops the thread, closes the database. Accepts NULL, clears the
 * pointer. Not from a done callback. */
void store_stop(struct store **st);

#endif

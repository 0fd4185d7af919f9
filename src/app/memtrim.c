/* Giving memory back after connections close. glibc's malloc returns the
 * top of its heap to the system only when that top is free, and the
 * sessions of a busy hour leave their freed chunks scattered below live
 * ones: after 2,000 idle TLS sessions closed, RSS stayed at its peak
 * (bench/idle_sessions.py). malloc_trim() releases the free pages inside
 * the heap as well. It walks the heap, so it runs from a timer, at most
 * once per period, and only after enough connections have closed since the
 * last time to be worth it. */
#include "memtrim.h"

#include "counters.h"
#include "fg.h"

#include <event2/event.h>
#include <malloc.h>
#include <stdlib.h>

/* Closed connections that make a trim worth its heap walk. */
#define TRIM_AFTER_CLOSED 32

struct memtrim {
	struct event *timer;
	void (*doze)(void *arg);
	void *arg;
	unsigned long long freed_at_last; /* counters' conns_closed + streams_dozed then */
};

static void tick(evutil_socket_t fd, short what, void *arg)
{
	struct memtrim *m = arg;
	(void)fd, (void)what;
	if (m->doze)
		m->doze(m->arg);
	/* A parser freed by an idle stream is as scattered as a closed
	 * connection's memory: both count. */
	unsigned long long freed = counters_get()->conns_closed + counters_get()->streams_dozed;
	if (freed - m->freed_at_last < TRIM_AFTER_CLOSED)
		return;
	m->freed_at_last = freed;
	malloc_trim(0);
}

struct memtrim *memtrim_start(struct event_base *base, unsigned period_s, void (*doze)(void *arg),
			      void *arg)
{
	struct memtrim *m = calloc(1, sizeof(*m));
	if (!m)
		return NULL;
	m->doze = doze;
	m->arg = arg;
	m->freed_at_last = counters_get()->conns_closed + counters_get()->streams_dozed;
	m->timer = event_new(base, -1, EV_PERSIST, tick, m);
	struct timeval tv = {.tv_sec = period_s, .tv_usec = 0};
	if (!m->timer || event_add(m->timer, &tv) != 0) {
		memtrim_stop(&m);
		return NULL;
	}
	return m;
}

void memtrim_stop(struct memtrim **mp)
{
	if (!mp || !*mp)
		return;
	if ((*mp)->timer)
		event_free((*mp)->timer);
	free(*mp);
	*mp = NULL;
}

/* Happy Eyeballs (happy.h). An attempt outlives its race: a loser is
 * closed when another wins, and its on_closed comes later from the loop,
 * after the race is freed, so each attempt is its own allocation that
 * knows whether its race is still there. */
#include "happy.h"

#include "fg.h"

#include <assert.h>
#include <event2/event.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct attempt {
	struct happy *h; /* NULL once the race is over */
	struct conn *c;
	size_t i;
};

struct happy {
	struct event_base *base;
	struct event *delay;
	struct happy_params p;
	const struct happy_ops *ops;
	void *ud;
	size_t n, next;
	struct attempt *live[HAPPY_MAX_RACING];
	size_t nlive;
	char last_why[300];
};

static size_t a_data(void *ud, const char *data, size_t len)
{
	/* Nothing is read before connect; a winner reads with its owner's
	 * ops. */
	(void)ud;
	(void)data;
	return len;
}

static void a_tls(void *ud)
{
	(void)ud;
}

static void start_next(struct happy *h);

static void forget(struct happy *h, struct attempt *a)
{
	for (size_t k = 0; k < h->nlive; k++) {
		if (h->live[k] == a) {
			h->live[k] = h->live[--h->nlive];
			return;
		}
	}
	assert(!"an attempt of this race");
}

/* Orphans and closes every attempt but keep, frees the race. */
static void end_race(struct happy *h, struct attempt *keep)
{
	for (size_t k = 0; k < h->nlive; k++) {
		struct attempt *a = h->live[k];
		if (a == keep)
			continue;
		a->h = NULL;
		conn_close(a->c, "another address answered first (Happy Eyeballs)");
	}
	h->nlive = 0;
	if (h->delay)
		event_free(h->delay);
	free(h);
}

static void a_connected(void *ud)
{
	struct attempt *a = ud;
	struct happy *h = a->h;
	if (h == NULL)
		return; /* lost already; closing */
	const struct happy_ops *ops = h->ops;
	void *owner = h->ud;
	struct conn *c = a->c;
	size_t i = a->i;
	conn_set_ops(c, h->p.owner_ops, h->p.owner_ud);
	end_race(h, a);
	free(a);
	ops->won(owner, i, c);
}

static void a_closed(void *ud, const char *reason)
{
	struct attempt *a = ud;
	struct happy *h = a->h;
	size_t i = a->i;
	if (h != NULL)
		forget(h, a);
	free(a);
	if (h == NULL)
		return;
	snprintf(h->last_why, sizeof(h->last_why), "%s", reason);
	h->ops->failed(h->ud, i, reason);
	/* RFC 8305 §5: a failure starts the next attempt at once. */
	start_next(h);
}

static void a_timer(void *ud)
{
	struct attempt *a = ud;
	char why[80];
	snprintf(why, sizeof(why), "connect timed out after %u s",
		 a->h ? a->h->p.connect_timeout : 0);
	conn_close(a->c, why);
}

static const struct conn_ops attempt_ops = {
	.on_data = a_data,
	.on_tls = a_tls,
	.on_connected = a_connected,
	.on_timer = a_timer,
	.on_closed = a_closed,
};

static void on_delay(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	start_next(arg);
}

static void arm_delay(struct happy *h)
{
	unsigned ms = h->p.attempt_delay_ms ? h->p.attempt_delay_ms : HAPPY_ATTEMPT_DELAY_MS;
	struct timeval tv = {ms / 1000, (long)(ms % 1000) * 1000};
	if (h->next < h->n)
		evtimer_add(h->delay, &tv);
	else
		evtimer_del(h->delay);
}

static void start_next(struct happy *h)
{
	if (h->next >= h->n) {
		if (h->nlive == 0) {
			const struct happy_ops *ops = h->ops;
			void *owner = h->ud;
			char why[sizeof(h->last_why)];
			snprintf(why, sizeof(why), "%s",
				 h->last_why[0] ? h->last_why : "no address");
			end_race(h, NULL);
			ops->lost(owner, why);
		}
		return;
	}
	if (h->nlive >= HAPPY_MAX_RACING) {
		arm_delay(h); /* the next slot frees with a failure or a timeout */
		return;
	}
	struct attempt *a = calloc(1, sizeof(*a));
	const struct sockaddr *sa = NULL;
	socklen_t salen = 0;
	size_t i = h->next++;
	h->ops->addr(h->ud, i, &sa, &salen);
	struct conn *c =
		a ? conn_connect(h->base, sa, salen, h->p.ctx_prefix, h->p.limits, &attempt_ops, a)
		  : NULL;
	if (c == NULL) {
		free(a);
		snprintf(h->last_why, sizeof(h->last_why), "out of memory");
		h->ops->failed(h->ud, i, "out of memory");
		/* The next one from the loop: happy_start promises that no
		 * race ends inside it. */
		event_active(h->delay, EV_TIMEOUT, 0);
		return;
	}
	a->h = h;
	a->c = c;
	a->i = i;
	h->live[h->nlive++] = a;
	conn_set_timer(c, h->p.connect_timeout);
	h->ops->started(h->ud, i, c);
	arm_delay(h);
}

struct happy *happy_start(struct event_base *base, size_t n, const struct happy_params *p,
			  const struct happy_ops *ops, void *ud)
{
	assert(n > 0 && p->owner_ops != NULL);
	struct happy *h = calloc(1, sizeof(*h));
	if (h == NULL)
		return NULL;
	h->base = base;
	h->p = *p;
	h->ops = ops;
	h->ud = ud;
	h->n = n;
	h->delay = evtimer_new(base, on_delay, h);
	if (h->delay == NULL) {
		free(h);
		return NULL;
	}
	/* Callbacks of this first start come from the loop, never from
	 * here: conn_connect reports even an immediate failure later. */
	start_next(h);
	return h;
}

void happy_cancel(struct happy **hp)
{
	if (*hp == NULL)
		return;
	end_race(*hp, NULL);
	*hp = NULL;
}

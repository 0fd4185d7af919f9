#include "redis.h"

#include "fg.h"
#include "log.h"

#include <assert.h>
#include <hiredis/adapters/libevent.h>
#include <hiredis/async.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define RETRY_MIN_MS 100
#define RETRY_MAX_MS 2000

struct redis {
	struct event_base *base;
	char *host; /* NULL for a unix socket */
	char *path;
	int port;
	char name[32];
	redis_state_fn state;
	void *ud;
	redisAsyncContext *ac; /* NULL between connections */
	bool up;
	bool told_down; /* the user heard of the current loss */
	struct event *retry;
	unsigned retry_ms;
	/* Each command's callback and user data travel in one of these, so
	 * that a reply after redis_free finds the client gone. */
	unsigned long gen;
	redis_reply_fn sub_cb; /* redis_subscribe's */
	void *sub_ud;
};

struct pending {
	struct redis *rd;
	unsigned long gen;
	redis_reply_fn cb;
	void *ud;
};

int redis_addr_check(const char *addr, char *err, size_t errlen)
{
	if (!addr || !*addr) {
		snprintf(err, errlen, "no Redis address: give HOST:PORT or unix:PATH");
		return FG_ERR;
	}
	if (strncmp(addr, "unix:", 5) == 0) {
		if (addr[5] != '/') {
			snprintf(err, errlen,
				 "'%.200s': a unix socket needs an absolute path (unix:/run/redis/"
				 "redis.sock)",
				 addr);
			return FG_ERR;
		}
		return FG_OK;
	}
	const char *colon = strrchr(addr, ':');
	char *end = NULL;
	long port = colon ? strtol(colon + 1, &end, 10) : 0;
	if (!colon || colon == addr || !end || *end || port < 1 || port > 65535) {
		snprintf(err, errlen,
			 "'%.200s' is not a Redis address: give HOST:PORT (127.0.0.1:6379) or "
			 "unix:PATH",
			 addr);
		return FG_ERR;
	}
	return FG_OK;
}

static void connect_now(struct redis *rd);

static void retry_cb(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	connect_now(arg);
}

static void schedule(struct redis *rd)
{
	struct timeval tv = {rd->retry_ms / 1000, (rd->retry_ms % 1000) * 1000};
	evtimer_add(rd->retry, &tv);
	rd->retry_ms = rd->retry_ms * 2 > RETRY_MAX_MS ? RETRY_MAX_MS : rd->retry_ms * 2;
}

static void went_down(struct redis *rd, const char *why)
{
	rd->up = false;
	rd->ac = NULL;
	rd->gen++; /* replies still on their way belong to the old link */
	if (!rd->told_down) {
		rd->told_down = true;
		/* The user says it once for all its connections. */
		log_debug("redis", "%s: link down (%s)", rd->name, why);
		if (rd->state)
			rd->state(rd->ud, false, why);
	}
	schedule(rd);
}

static void on_connect(const redisAsyncContext *ac, int status)
{
	struct redis *rd = ac->data;
	if (!rd)
		return;
	if (status != REDIS_OK) {
		/* hiredis frees the context after this callback */
		went_down(rd, ac->errstr[0] ? ac->errstr : "connect failed");
		return;
	}
	rd->up = true;
	rd->told_down = false;
	rd->retry_ms = RETRY_MIN_MS;
	log_debug("redis", "%s: link up", rd->name);
	if (rd->state)
		rd->state(rd->ud, true, NULL);
}

static void on_disconnect(const redisAsyncContext *ac, int status)
{
	struct redis *rd = ac->data;
	if (!rd)
		return;
	went_down(rd, status == REDIS_OK ? "closed" : (ac->errstr[0] ? ac->errstr : "lost"));
}

static void connect_now(struct redis *rd)
{
	assert(!rd->ac);
	redisAsyncContext *ac =
		rd->path ? redisAsyncConnectUnix(rd->path) : redisAsyncConnect(rd->host, rd->port);
	if (!ac || ac->err) {
		char why[200];
		snprintf(why, sizeof(why), "%s", ac ? ac->errstr : "out of memory");
		if (ac)
			redisAsyncFree(ac);
		rd->ac = NULL;
		rd->told_down = rd->told_down || !rd->up;
		went_down(rd, why);
		return;
	}
	ac->data = rd;
	if (redisLibeventAttach(ac, rd->base) != REDIS_OK) {
		redisAsyncFree(ac);
		went_down(rd, "cannot attach to the event loop");
		return;
	}
	redisAsyncSetConnectCallback(ac, on_connect);
	redisAsyncSetDisconnectCallback(ac, on_disconnect);
	rd->ac = ac;
}

struct redis *redis_new(struct event_base *base, const char *addr, const char *name,
			redis_state_fn state, void *ud, char *err, size_t errlen)
{
	if (redis_addr_check(addr, err, errlen) != FG_OK)
		return NULL;
	struct redis *rd = calloc(1, sizeof(*rd));
	if (!rd)
		goto oom;
	rd->base = base;
	rd->state = state;
	rd->ud = ud;
	rd->retry_ms = RETRY_MIN_MS;
	snprintf(rd->name, sizeof(rd->name), "%s", name);
	if (strncmp(addr, "unix:", 5) == 0) {
		rd->path = strdup(addr + 5);
		if (!rd->path)
			goto oom;
	} else {
		const char *colon = strrchr(addr, ':');
		rd->port = atoi(colon + 1);
		/* [::1]:6379 */
		const char *h = addr;
		size_t n = (size_t)(colon - addr);
		if (n >= 2 && h[0] == '[' && h[n - 1] == ']') {
			h++;
			n -= 2;
		}
		rd->host = strndup(h, n);
		if (!rd->host)
			goto oom;
	}
	rd->retry = evtimer_new(base, retry_cb, rd);
	if (!rd->retry)
		goto oom;
	connect_now(rd);
	return rd;
oom:
	snprintf(err, errlen, "out of memory");
	redis_free(&rd);
	return NULL;
}

void redis_free(struct redis **prd)
{
	struct redis *rd = *prd;
	if (!rd)
		return;
	*prd = NULL;
	if (rd->ac) {
		rd->ac->data = NULL; /* no more state callbacks */
		rd->gen++;
		redisAsyncFree(rd->ac); /* pending callbacks run with NULL replies */
	}
	if (rd->retry)
		event_free(rd->retry);
	free(rd->host);
	free(rd->path);
	free(rd);
}

bool redis_up(const struct redis *rd)
{
	return rd && rd->up;
}

static void on_reply(redisAsyncContext *ac, void *reply, void *privdata)
{
	(void)ac;
	struct pending *p = privdata;
	/* The client may be gone (redis_free runs the callbacks of what was
	 * pending): p->rd is only looked at through the generation. */
	struct redis *rd = ac->data;
	if (p->cb)
		p->cb(rd == p->rd ? rd : NULL, p->ud, rd == p->rd ? reply : NULL);
	free(p);
}

int redis_cmdv(struct redis *rd, redis_reply_fn cb, void *ud, int argc, const char **argv,
	       const size_t *lens)
{
	if (!rd || !rd->up || !rd->ac)
		return FG_ERR;
	struct pending *p = malloc(sizeof(*p));
	if (!p)
		return FG_ERR;
	*p = (struct pending){rd, rd->gen, cb, ud};
	if (redisAsyncCommandArgv(rd->ac, on_reply, p, argc, argv, lens) != REDIS_OK) {
		free(p);
		return FG_ERR;
	}
	return FG_OK;
}

int redis_cmd(struct redis *rd, redis_reply_fn cb, void *ud, const char *fmt, ...)
{
	if (!rd || !rd->up || !rd->ac)
		return FG_ERR;
	struct pending *p = malloc(sizeof(*p));
	if (!p)
		return FG_ERR;
	*p = (struct pending){rd, rd->gen, cb, ud};
	va_list ap;
	va_start(ap, fmt);
	int rc = redisvAsyncCommand(rd->ac, on_reply, p, fmt, ap);
	va_end(ap);
	if (rc != REDIS_OK) {
		free(p);
		return FG_ERR;
	}
	return FG_OK;
}

static void on_message(redisAsyncContext *ac, void *reply, void *privdata)
{
	(void)privdata;
	/* hiredis keeps this callback for every message of the channel:
	 * the client is looked up through the context, never kept here. */
	struct redis *rd = ac->data;
	if (rd && rd->sub_cb)
		rd->sub_cb(rd, rd->sub_ud, reply);
}

int redis_subscribe(struct redis *rd, const char *channel, redis_reply_fn cb, void *ud)
{
	if (!rd || !rd->up || !rd->ac)
		return FG_ERR;
	rd->sub_cb = cb;
	rd->sub_ud = ud;
	return redisAsyncCommand(rd->ac, on_message, NULL, "SUBSCRIBE %s", channel) == REDIS_OK
		       ? FG_OK
		       : FG_ERR;
}

redisContext *redis_connect_sync(const char *addr, unsigned timeout_ms)
{
	char err[300];
	if (redis_addr_check(addr, err, sizeof(err)) != FG_OK)
		return NULL;
	struct timeval tv = {(time_t)(timeout_ms / 1000), (suseconds_t)(timeout_ms % 1000) * 1000};
	if (strncmp(addr, "unix:", 5) == 0)
		return redisConnectUnixWithTimeout(addr + 5, tv);
	const char *colon = strrchr(addr, ':');
	char host[256];
	snprintf(host, sizeof(host), "%.*s", (int)(colon - addr), addr);
	size_t n = strlen(host);
	if (n >= 2 && host[0] == '[' && host[n - 1] == ']') {
		memmove(host, host + 1, n - 2);
		host[n - 2] = '\0';
	}
	return redisConnectWithTimeout(host, atoi(colon + 1), tv);
}

void redis_reset(struct redis *rd)
{
	if (rd && rd->ac)
		redisAsyncDisconnect(rd->ac); /* on_disconnect follows */
}

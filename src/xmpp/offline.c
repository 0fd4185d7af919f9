#include "offline.h"

#include "session.h"
#include "conf.h"
#include "counters.h"
#include "fg.h"
#include "log.h"
#include "xmpp.h"
#include "store.h"
#include "store_users.h"
#include "strmap.h"
#include "xmlstream.h"

#include <assert.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define XML_NS_DELAY "urn:xmpp:delay"

struct store_job {
	struct xmpp_server *srv;
	struct xml_node *msg;
	char *user, *xml;
	unsigned limit;
	long long at_ms;
};

static int add_run(struct store_db *db, void *ud, char *err, size_t errlen)
{
	struct store_job *j = ud;
	return store_db_offline_add(db, j->user, j->at_ms, j->xml, j->limit, err, errlen);
}

/* Messages on their way to the store past this hold the stream that sends
 * them, as a full recipient would: the store thread is one too. */
#define OFFLINE_IN_FLIGHT_MAX 256

static const char full_text[] =
	"the recipient is offline and cannot take more messages until they sign in";

static void mark_full(struct xmpp_server *srv, const char *user, bool full)
{
	if (!srv->offline_full && !(srv->offline_full = strmap_new()))
		return;
	if (full)
		strmap_put(srv->offline_full, user, (void *)1, NULL);
	else
		strmap_remove(srv->offline_full, user);
}

static void add_done(void *ud, int rc, const char *err)
{
	struct store_job *j = ud;
	struct xmpp_server *srv = j->srv;
	assert(srv->offline_in_flight > 0);
	if (--srv->offline_in_flight <= OFFLINE_IN_FLIGHT_MAX / 2)
		xmpp_release_held(srv, &srv->offline_in_flight);
	if (rc == FG_LIMIT)
		mark_full(srv, j->user, true);
	if (rc == FG_OK) {
		log_info("offline", "message for %s kept until the user signs in", j->user);
		counters_stanza(STANZA_OFFLINE, NULL);
		xml_free(&j->msg);
		/* The user may be online after all: it came back while the
		 * message was on its way to the store, its client had no room
		 * for it, or another node's registry had not heard of its
		 * session yet. Storage is read again where it is online. */
		offline_wake(srv, j->user);
		if (srv->offline_stored)
			srv->offline_stored(srv, j->user);
	} else if (rc == FG_LIMIT) {
		log_info("offline", "offline storage of %s is full: message bounced", j->user);
		j->srv->bounce(j->srv, j->msg, "wait", "resource-constraint", full_text);
	} else {
		log_error("offline", "cannot keep a message for %s: %s", j->user, err);
		j->srv->bounce(j->srv, j->msg, "wait", "internal-server-error",
			       "the message could not be kept for the offline recipient");
	}
	free(j->user);
	free(j->xml);
	free(j);
}

void offline_store(struct xmpp_server *srv, struct xml_node *msg, const char *user)
{
	unsigned limit = srv->conf->users_offline_limit;
	if (limit == 0 || !srv->store) {
		srv->bounce(srv, msg, "cancel", "service-unavailable",
			    "the recipient is offline and offline messages are turned off");
		return;
	}
	if (srv->offline_full && strmap_get(srv->offline_full, user)) {
		/* Known full: answered now, while the sender is being read, so
		 * that a flood is held by its own answers (stream_offer). */
		srv->bounce(srv, msg, "wait", "resource-constraint", full_text);
		return;
	}
	struct store_job *j = calloc(1, sizeof(*j));
	struct xml_node *d = xml_add_child(msg, XML_NS_DELAY, "delay");
	long long at = fg_now_ms();
	if (j && d) {
		char stamp[FG_UTC_LEN];
		fg_utc((time_t)(at / 1000), stamp);
		const char *at_sign = strchr(user, '@');
		xml_set_attr(d, NULL, "from", at_sign ? at_sign + 1 : user);
		xml_set_attr(d, NULL, "stamp", stamp);
		xml_add_text(d, "Offline storage", strlen("Offline storage"));
		struct xml_buf b = {0};
		struct xml_ctx ctx = {.default_ns = XML_NS_SERVER};
		xml_serialize(msg, &ctx, &b);
		j->xml = b.oom ? NULL : strndup(b.data, b.len);
		xml_buf_free(&b);
		j->user = strdup(user);
	}
	if (!j || !j->xml || !j->user) {
		if (j) {
			free(j->xml);
			free(j->user);
			free(j);
		}
		srv->bounce(srv, msg, "wait", "resource-constraint", "out of memory");
		return;
	}
	j->srv = srv;
	j->msg = msg;
	j->limit = limit;
	j->at_ms = at;
	if (++srv->offline_in_flight > OFFLINE_IN_FLIGHT_MAX)
		xmpp_hold_feeder(srv, &srv->offline_in_flight);
	if (store_submit_keyed(srv->store, j->user, add_run, add_done, j) != FG_OK)
		add_done(j, FG_ERR, "the store is not running");
}

/* ---- delivery ---- */

/* A take hands over at most this many (a session without stream
 * management has no count of its room: what its stream has no room for
 * waits in the session until the stream drained). */
#define OFFLINE_BATCH 32

struct take_job {
	struct xmpp_server *srv;
	char *user, *full;
	char **xml;
	size_t n, cap;
	unsigned max;
	unsigned long id; /* session_offline's take */
};

static unsigned long takes;

static int take_one(void *ud, long long at_ms, const char *xml)
{
	struct take_job *j = ud;
	(void)at_ms;
	if (j->n == j->cap) {
		size_t cap = j->cap ? j->cap * 2 : 16;
		char **p = realloc(j->xml, cap * sizeof(*p));
		if (!p)
			return 1;
		j->xml = p;
		j->cap = cap;
	}
	if (!(j->xml[j->n] = strdup(xml)))
		return 1;
	j->n++;
	return 0;
}

static int take_run(struct store_db *db, void *ud, char *err, size_t errlen)
{
	struct take_job *j = ud;
	return store_db_offline_take(db, j->user, j->max, take_one, j, err, errlen);
}

static void take(struct xmpp_server *srv, struct session *c);

/* Hands what the last take gave c over while c has room; then the next
 * take, while storage may hold more. */
static void pump(struct xmpp_server *srv, struct session *c)
{
	struct session_offline *o = session_offline(c);
	while (o->next < o->n) {
		if (session_room(c, 1) == 0)
			return; /* offline_room: an acknowledgement, a drain */
		struct xml_node *m = o->held[o->next];
		o->held[o->next++] = NULL;
		srv->route(srv, m);
	}
	free(o->held);
	o->held = NULL;
	o->n = o->next = 0;
	if (o->more)
		take(srv, c);
}

static void take_done(void *ud, int rc, const char *err)
{
	struct take_job *j = ud;
	struct xmpp_server *srv = j->srv;
	if (rc != FG_OK) {
		log_error("offline", "cannot read the offline messages of %s: %s", j->user, err);
		/* rolled back: what was read stays stored, for the next take */
		while (j->n)
			free(j->xml[--j->n]);
	}
	const char *res = strchr(j->full, '/');
	struct session *c = res ? session_find(srv, j->user, res + 1) : NULL;
	/* A session that took the resource over meanwhile is not the one
	 * the take was sized for: to the bare JID as when it is gone. */
	if (c && !(session_offline(c)->busy && session_offline(c)->take == j->id))
		c = NULL;
	mark_full(srv, j->user, false);
	if (j->n)
		log_info("offline", "%zu offline messages for %s", j->n, j->user);
	/* What c has no room for yet waits in c; without memory for that
	 * list it is routed at once, as before pacing (what does not fit
	 * goes back into storage). */
	struct xml_node **held = c && j->n ? calloc(j->n, sizeof(*held)) : NULL;
	size_t kept = 0;
	for (size_t i = 0; i < j->n; i++) {
		struct xml_node *m = xmlstream_parse_one(j->xml[i]);
		free(j->xml[i]);
		if (!m) {
			log_error("offline", "an offline message of %s could not be read back",
				  j->user);
			continue;
		}
		/* The session may have gone meanwhile: then to the bare JID
		 * (another resource, or back into storage). */
		xml_set_attr(m, NULL, "to", c ? j->full : j->user);
		if (held)
			held[kept++] = m;
		else
			srv->route(srv, m);
	}
	free(j->xml);
	if (c) {
		struct session_offline *o = session_offline(c);
		assert(o->busy && o->next == o->n);
		o->busy = false;
		free(o->held);
		o->held = held;
		o->n = kept;
		o->next = 0;
		/* A full batch: more may wait (a note that something was
		 * stored while the take was out set more already). */
		if (rc == FG_OK && j->n == j->max)
			o->more = true;
		pump(srv, c);
	}
	free(j->user);
	free(j->full);
	free(j);
}

/* The next batch, sized to c's room now. */
static void take(struct xmpp_server *srv, struct session *c)
{
	struct session_offline *o = session_offline(c);
	unsigned room = session_room(c, OFFLINE_BATCH);
	if (o->busy || o->next < o->n || room == 0)
		return;
	struct take_job *j = calloc(1, sizeof(*j));
	if (!j || !(j->user = strdup(session_bare(c))) || !(j->full = strdup(session_full(c)))) {
		if (j)
			free(j->user);
		free(j);
		return;
	}
	j->srv = srv;
	j->max = room < OFFLINE_BATCH ? room : OFFLINE_BATCH;
	j->id = ++takes;
	o->take = j->id;
	o->busy = true;
	o->more = false;
	if (store_submit_keyed(srv->store, j->user, take_run, take_done, j) != FG_OK) {
		o->busy = false;
		o->more = true;
		free(j->user);
		free(j->full);
		free(j);
	}
}

void offline_deliver(struct xmpp_server *srv, struct session *c)
{
	if (!srv->store)
		return;
	/* One take at a time per session, each sized to the room the
	 * session has when it goes out; what it has no room for when it
	 * comes waits here, and what does not fit in the take waits in
	 * storage, until the client has room again (offline_room). */
	session_offline(c)->more = true;
	offline_room(srv, c);
}

void offline_room(struct xmpp_server *srv, struct session *c)
{
	struct session_offline *o = session_offline(c);
	if (!o->busy && (o->next < o->n || o->more))
		pump(srv, c);
}

/* The first available session of user here that gets offline messages:
 * one, so that a batch is not split among the user's resources; not one
 * of negative priority (XEP-0160 §3, RFC 6121 §8.5.2.1.1: the message was
 * stored because such a resource does not get it). */
static struct session *receiver(struct xmpp_server *srv, const char *user)
{
	for (struct session *s = session_first(srv, user); s; s = session_next(s)) {
		struct session_presence *p = session_presence(s);
		if (p->initial && p->last && p->priority >= 0)
			return s;
	}
	return NULL;
}

void offline_wake(struct xmpp_server *srv, const char *user)
{
	struct session *c = receiver(srv, user);
	if (c)
		offline_deliver(srv, c);
}

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

struct take_job {
	struct xmpp_server *srv;
	char *user, *full;
	char **xml;
	size_t n, cap;
};

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
	return store_db_offline_take(db, j->user, take_one, j, err, errlen);
}

static void take_done(void *ud, int rc, const char *err)
{
	struct take_job *j = ud;
	if (rc != FG_OK)
		log_error("offline", "cannot read the offline messages of %s: %s", j->user, err);
	const char *res = strchr(j->full, '/');
	/* The session may have gone meanwhile: then the messages go to the
	 * bare JID again (another resource, or back into storage); a client
	 * too slow to take them all keeps the rest offline (router). */
	struct session *c = res ? session_find(j->srv, j->user, res + 1) : NULL;
	mark_full(j->srv, j->user, false);
	if (j->n)
		log_info("offline", "%zu offline messages for %s", j->n, j->user);
	for (size_t i = 0; i < j->n; i++) {
		struct xml_node *m = xmlstream_parse_one(j->xml[i]);
		free(j->xml[i]);
		if (!m) {
			log_error("offline", "an offline message of %s could not be read back",
				  j->user);
			continue;
		}
		xml_set_attr(m, NULL, "to", c ? j->full : j->user);
		j->srv->route(j->srv, m);
	}
	free(j->xml);
	free(j->user);
	free(j->full);
	free(j);
}

void offline_deliver(struct xmpp_server *srv, struct session *c)
{
	if (!srv->store)
		return;
	struct take_job *j = calloc(1, sizeof(*j));
	if (!j || !(j->user = strdup(session_bare(c))) || !(j->full = strdup(session_full(c)))) {
		if (j)
			free(j->user);
		free(j);
		return;
	}
	j->srv = srv;
	if (store_submit_keyed(srv->store, j->user, take_run, take_done, j) != FG_OK) {
		free(j->user);
		free(j->full);
		free(j);
	}
}

#include "session.h"

#include "caps.h"
#include "conf.h"
#include "counters.h"
#include "fg.h"
#include "log.h"
#include "sm.h"
#include "stream.h"
#include "strmap.h"
#include "xmpp.h"

#include <assert.h>
#include <event2/event.h>
#include <stdlib.h>
#include <string.h>

#define XML_NS_CHATSTATES "http://jabber.org/protocol/chatstates"
/* XEP-0198 §4: an <r/> after this many stanzas without one. */
#define SESSION_SM_ASK_EVERY 8

/* XEP-0352: what an inactive client is spared until it is active again
 * or something it must see now comes; made on its first <inactive/>. */
#define CSI_HELD_MAX 32
struct csi {
	bool inactive;
	unsigned n;
	struct xml_node *held[CSI_HELD_MAX]; /* oldest first, in jabber:server */
};

struct session {
	struct xmpp_server *srv;
	struct stream *s; /* NULL while hibernating (detached, XEP-0198) */
	char *bare, *resource, *full;
	bool registered;
	bool wants_blocklist; /* blocking.c: it asked for the blocklist (pushes) */
	bool carbons;	      /* carbons.c: XEP-0280 enabled */
	struct session_presence pres;
	struct session *next_of_user;
	struct sm *sm;	   /* once the client enabled stream management */
	struct csi *csi;   /* once the client said it is inactive */
	struct caps *caps; /* its entity capabilities (pep.c), shared */
	struct session_offline offline;
};

struct session *session_new(struct xmpp_server *srv, struct stream *s, const char *bare,
			    const char *resource, const char *full)
{
	struct session *sess = calloc(1, sizeof(*sess));
	if (!sess)
		return NULL;
	sess->srv = srv;
	sess->s = s;
	sess->bare = strdup(bare);
	sess->resource = strdup(resource);
	sess->full = strdup(full);
	if (!sess->bare || !sess->resource || !sess->full)
		session_free(&sess);
	return sess;
}

int session_register(struct session *sess)
{
	struct xmpp_server *srv = sess->srv;
	assert(!sess->registered);
	if (!srv->sessions && !(srv->sessions = strmap_new()))
		return FG_NOMEM;
	struct session *head = strmap_get(srv->sessions, sess->bare);
	sess->next_of_user = head;
	if (strmap_put(srv->sessions, sess->bare, sess, NULL) != FG_OK)
		return FG_NOMEM;
	srv->nsessions++;
	sess->registered = true;
	if (srv->cluster_session)
		srv->cluster_session(srv, sess, false);
	return FG_OK;
}

static void unregister(struct session *sess)
{
	struct xmpp_server *srv = sess->srv;
	struct session *head = strmap_get(srv->sessions, sess->bare);
	struct session **p = &head;
	while (*p && *p != sess)
		p = &(*p)->next_of_user;
	assert(*p == sess);
	if (!*p)
		return;
	*p = sess->next_of_user;
	if (head)
		strmap_put(srv->sessions, sess->bare, head, NULL);
	else
		strmap_remove(srv->sessions, sess->bare);
	assert(srv->nsessions > 0);
	srv->nsessions--;
	sess->registered = false;
}

static void forget_id(struct session *sess)
{
	struct xmpp_server *srv = sess->srv;
	if (sess->sm && sess->sm->id[0] && srv->sm_ids &&
	    strmap_get(srv->sm_ids, sess->sm->id) == sess)
		strmap_remove(srv->sm_ids, sess->sm->id);
}

/* A stanza the session can no longer take goes back to the router, which
 * finds the resource gone: a chat or normal message goes to another
 * resource or offline storage (with its delay stamp), what expects an
 * answer is answered, the rest is dropped as for any resource that left
 * (RFC 6121 §8.5.3.2.1). At the final exit nothing can be routed. */
static void reroute(struct session *sess, struct xml_node *st)
{
	struct xmpp_server *srv = sess->srv;
	if (!srv->route || !srv->store) {
		counters_stanza(STANZA_DROPPED, "shutdown");
		xml_free(&st);
		return;
	}
	srv->route(srv, st);
}

/* The session left the registry: what the client never acknowledged
 * (XEP-0198: it may not have it) and what CSI held for it are routed
 * anew, never lost. */
static void reroute_held(struct session *sess)
{
	unsigned n = 0;
	struct session_offline *o = &sess->offline;
	while (o->next < o->n) {
		reroute(sess, o->held[o->next]);
		o->held[o->next++] = NULL;
	}
	if (sess->csi) {
		for (unsigned i = 0; i < sess->csi->n; i++)
			reroute(sess, sess->csi->held[i]);
		sess->csi->n = 0;
	}
	if (sess->sm) {
		struct xml_node *st;
		while ((st = sm_pop(sess->sm))) {
			reroute(sess, st);
			n++;
		}
	}
	if (n)
		log_info("c2s", "%u stanza(s) %s had not acknowledged routed again", n, sess->full);
}

void session_end(struct session *sess)
{
	if (!sess || !sess->registered)
		return;
	/* Out of the registry first: the stream is closing, so what is
	 * routed from now on goes to other resources or offline storage
	 * instead of into a connection that will not read it. */
	unregister(sess);
	if (sess->srv->cluster_session)
		sess->srv->cluster_session(sess->srv, sess, true);
	if (sess->srv->session_ended)
		sess->srv->session_ended(sess->srv, sess);
	log_info("c2s", "session of %s ended", sess->full);
	forget_id(sess);
	reroute_held(sess);
}

void session_free(struct session **psess)
{
	struct session *sess = *psess;
	if (!sess)
		return;
	session_end(sess);
	sm_free(&sess->sm);
	for (size_t i = sess->offline.next; i < sess->offline.n; i++)
		xml_free(&sess->offline.held[i]);
	free(sess->offline.held);
	if (sess->csi)
		while (sess->csi->n)
			xml_free(&sess->csi->held[--sess->csi->n]);
	free(sess->csi);
	xml_free(&sess->pres.last);
	strmap_free(&sess->pres.directed, NULL);
	caps_put(&sess->caps);
	free(sess->bare);
	free(sess->resource);
	free(sess->full);
	free(sess);
	*psess = NULL;
}

struct caps *session_caps(const struct session *sess)
{
	return sess->caps;
}

void session_set_caps(struct session *sess, struct caps *c)
{
	caps_put(&sess->caps);
	sess->caps = c;
}

struct session *session_first(struct xmpp_server *srv, const char *bare)
{
	return srv->sessions ? strmap_get(srv->sessions, bare) : NULL;
}

struct session *session_next(const struct session *sess)
{
	return sess->next_of_user;
}

struct session *session_find(struct xmpp_server *srv, const char *bare, const char *resource)
{
	for (struct session *s = session_first(srv, bare); s; s = s->next_of_user)
		if (strcmp(s->resource, resource) == 0)
			return s;
	return NULL;
}

unsigned session_count(const struct xmpp_server *srv)
{
	return srv->nsessions;
}

struct each_ctx {
	void (*fn)(void *ud, struct session *sess);
	void *ud;
};

static int each_user(void *ud, const char *key, void *value)
{
	struct each_ctx *e = ud;
	(void)key;
	for (struct session *s = value, *nx; s; s = nx) {
		nx = s->next_of_user;
		e->fn(e->ud, s);
	}
	return 0;
}

void session_each(struct xmpp_server *srv, void (*fn)(void *ud, struct session *sess), void *ud)
{
	struct each_ctx e = {fn, ud};
	if (srv->sessions)
		strmap_each(srv->sessions, each_user, &e);
}

const char *session_full(const struct session *sess)
{
	return sess->full;
}

const char *session_bare(const struct session *sess)
{
	return sess->bare;
}

const char *session_resource(const struct session *sess)
{
	return sess->resource;
}

struct session_presence *session_presence(struct session *sess)
{
	return &sess->pres;
}

struct session_offline *session_offline(struct session *sess)
{
	return &sess->offline;
}

unsigned session_room(const struct session *sess, unsigned batch)
{
	if (!sess->s || !stream_has_room(sess->s))
		return 0;
	if (!sess->sm)
		return batch;
	return sess->sm->n < sess->sm->cap ? sess->sm->cap - sess->sm->n : 0;
}

bool session_carbons(const struct session *sess)
{
	return sess->carbons;
}

void session_set_carbons(struct session *sess, bool on)
{
	sess->carbons = on;
}

/* A copy of a stanza another node forwarded (xmpp.h, cluster_entry)
 * settles its stream entry only when the client acknowledges it. */
static void tag_entry(struct session *sess)
{
	struct xmpp_server *srv = sess->srv;
	if (srv->cluster_entry && sm_tag_last(sess->sm, srv->cluster_entry) == FG_OK)
		srv->cluster_held++;
}

static void entry_settled(void *ud, const char *tag)
{
	struct xmpp_server *srv = ud;
	if (srv->cluster_settled)
		srv->cluster_settled(srv, tag);
}

/* The stream's part: with stream management a copy waits for the
 * client's acknowledgement; while hibernating the copy is all there is. */
static bool offer_now(struct session *sess, struct xml_node *st)
{
	struct sm *sm = sess->sm;
	if (!sm) {
		if (stream_offer(sess->s, st))
			return true;
		log_info(stream_ctx(sess->s),
			 "%s for %s not written: the client's output queue is full", st->name,
			 sess->full);
		return false;
	}
	if (sm->n >= sm->cap) {
		log_info("c2s", "%s for %s not kept: %u stanzas wait for its acknowledgement",
			 st->name, sess->full, sm->n);
		return false;
	}
	struct xml_node *copy = sess->s ? xml_clone(st) : st;
	if (!copy || sm_push(sm, copy) != FG_OK) {
		if (copy != st)
			xml_free(&copy);
		return false;
	}
	if (!sess->s) {
		tag_entry(sess);
		return true;
	}
	/* A message the user reads is acknowledged soon (one <r/> out at a
	 * time, as Prosody's mod_smacks asks): a client that then signs out
	 * cleanly has said what it saw, and the session's end does not send
	 * it again from offline storage. */
	bool ask = !sm->asked && xml_is(st, NULL, "message") && xml_child(st, NULL, "body");
	if (!stream_offer(sess->s, st)) {
		copy = sm_unpush(sm);
		xml_free(&copy);
		log_info(stream_ctx(sess->s),
			 "%s for %s not written: the client's output queue is full", st->name,
			 sess->full);
		return false;
	}
	tag_entry(sess);
	/* Ask for an acknowledgement now and then, so that the queue of
	 * copies stays short (XEP-0198 §4). */
	if (ask || sm->since_r >= SESSION_SM_ASK_EVERY || sm->n >= sm->cap / 2)
		session_sm_request(sess);
	return true;
}

/* XEP-0352 §5: presence updates and chat states (XEP-0085 messages
 * without a body) can wait; only the latest presence of each sender
 * matters. */
static bool csi_can_wait(const struct xml_node *st)
{
	const char *type = xml_attr(st, "type");
	if (xml_is(st, NULL, "presence"))
		return !type || strcmp(type, "unavailable") == 0;
	if (!xml_is(st, NULL, "message") || (type && strcmp(type, "error") == 0))
		return false;
	if (xml_child(st, NULL, "body") || xml_child(st, NULL, "subject"))
		return false;
	for (const struct xml_node *c = xml_first_element(st); c; c = xml_next_element(c))
		if (xml_is(c, XML_NS_CHATSTATES, NULL))
			return true;
	/* A carbon (XEP-0280, carbons.c) of what could wait can wait too:
	 * the other device's typing is no more urgent than the contact's. */
	const struct xml_node *k = xml_child(st, "urn:xmpp:carbons:2", "sent");
	if (!k)
		k = xml_child(st, "urn:xmpp:carbons:2", "received");
	const struct xml_node *f = k ? xml_child(k, "urn:xmpp:forward:0", "forwarded") : NULL;
	const struct xml_node *inner = f ? xml_child(f, NULL, "message") : NULL;
	return inner && csi_can_wait(inner);
}

static void csi_flush(struct session *sess)
{
	struct csi *csi = sess->csi;
	unsigned n = csi->n;
	csi->n = 0;
	for (unsigned i = 0; i < n; i++) {
		struct xml_node *st = csi->held[i];
		csi->held[i] = NULL;
		if (!offer_now(sess, st)) {
			counters_stanza(STANZA_DROPPED, "recipient-output-full");
			xml_free(&st);
		}
	}
}

/* Holds st (taken) for an inactive client: true. */
static bool csi_hold(struct session *sess, struct xml_node *st)
{
	struct csi *csi = sess->csi;
	if (xml_is(st, NULL, "presence")) {
		const char *from = xml_attr(st, "from");
		for (unsigned i = 0; i < csi->n; i++) {
			const char *f = xml_attr(csi->held[i], "from");
			if (!xml_is(csi->held[i], NULL, "presence") || !from || !f ||
			    strcmp(f, from) != 0)
				continue;
			/* The newer one replaces it, at the end: the order
			 * of what is flushed is the order of the last
			 * changes. */
			xml_free(&csi->held[i]);
			memmove(csi->held + i, csi->held + i + 1,
				(csi->n - i - 1) * sizeof(csi->held[0]));
			csi->n--;
			break;
		}
	}
	if (csi->n == CSI_HELD_MAX)
		csi_flush(sess);
	csi->held[csi->n++] = st;
	return true;
}

bool session_offer(struct session *sess, struct xml_node *st)
{
	if (sess->csi && sess->csi->inactive) {
		if (csi_can_wait(st))
			return csi_hold(sess, st);
		/* What the client must see now goes after what waited, so
		 * that it sees things in the order they happened. */
		csi_flush(sess);
	}
	return offer_now(sess, st);
}

void session_deliver(struct session *sess, struct xml_node *st)
{
	if (session_offer(sess, st))
		return;
	/* The client reads too slowly to take more now (its sender is held
	 * meanwhile). What expects an answer gets one; presence is sent anew
	 * on the next change, errors and results are never answered. */
	struct xmpp_server *srv = sess->srv;
	const char *type = xml_attr(st, "type");
	if (xml_is(st, NULL, "presence") ||
	    (type && (strcmp(type, "error") == 0 || strcmp(type, "result") == 0))) {
		counters_stanza(STANZA_DROPPED, "recipient-output-full");
		xml_free(&st);
	} else {
		srv->bounce(srv, st, "wait", "resource-constraint",
			    "the recipient's connection is not taking stanzas now");
	}
}

void session_close(struct session *sess, const char *condition, const char *text)
{
	if (sess->s) {
		stream_error(sess->s, condition, text);
		return;
	}
	/* Hibernating: nothing to tell; it ends here (it owns itself). */
	log_info("c2s", "hibernating session of %s ended: %s", sess->full, text);
	session_free(&sess);
}

/* ---- client state (XEP-0352) ---- */

int session_csi(struct session *sess, bool active)
{
	if (active) {
		if (sess->csi && sess->csi->inactive) {
			sess->csi->inactive = false;
			csi_flush(sess);
		}
		return FG_OK;
	}
	if (!sess->csi && !(sess->csi = calloc(1, sizeof(*sess->csi))))
		return FG_NOMEM;
	sess->csi->inactive = true;
	return FG_OK;
}

/* ---- stream management (XEP-0198) ---- */

struct sm *session_sm(const struct session *sess)
{
	return sess->sm;
}

struct stream *session_stream(const struct session *sess)
{
	return sess->s;
}

int session_sm_enable(struct session *sess, unsigned cap, bool resumable)
{
	struct xmpp_server *srv = sess->srv;
	assert(!sess->sm);
	sess->sm = sm_new(cap, resumable);
	if (!sess->sm)
		return FG_NOMEM;
	sess->sm->settled = entry_settled;
	sess->sm->settled_ud = srv;
	if (!resumable)
		return FG_OK;
	if ((!srv->sm_ids && !(srv->sm_ids = strmap_new())) || sm_make_id(sess->sm) != FG_OK ||
	    strmap_put(srv->sm_ids, sess->sm->id, sess, NULL) != FG_OK) {
		sess->sm->resumable = false;
		sess->sm->id[0] = '\0';
	}
	return FG_OK;
}

void session_sm_request(struct session *sess)
{
	if (!sess->sm || !sess->s)
		return;
	struct xml_node *r = sm_element("r");
	if (r)
		stream_send(sess->s, r);
	xml_free(&r);
	sess->sm->since_r = 0;
	sess->sm->asked = true;
}

struct session *session_by_sm_id(struct xmpp_server *srv, const char *id)
{
	return sm_id_valid(id) && srv->sm_ids ? strmap_get(srv->sm_ids, id) : NULL;
}

bool session_hibernating(const struct session *sess)
{
	return sess->registered && !sess->s;
}

static void window_passed(evutil_socket_t fd, short what, void *arg)
{
	struct session *sess = arg;
	(void)fd;
	(void)what;
	log_info("c2s", "session of %s not resumed within %u seconds: it ends", sess->full,
		 sess->srv->conf->users_resumption_window);
	session_free(&sess);
}

void session_detach(struct session *sess)
{
	struct sm *sm = sess->sm;
	assert(sm && sm->resumable && sess->s);
	sess->s = NULL;
	if (!sm->hibernation)
		sm->hibernation = evtimer_new(sess->srv->base, window_passed, sess);
	struct timeval tv = {(time_t)sess->srv->conf->users_resumption_window, 0};
	if (!sm->hibernation || evtimer_add(sm->hibernation, &tv) != 0) {
		log_warn("c2s", "cannot keep the session of %s for resumption (out of memory)",
			 sess->full);
		session_free(&sess);
		return;
	}
	log_info("c2s", "session of %s hibernates for %u seconds (%u stanzas kept)", sess->full,
		 sess->srv->conf->users_resumption_window, sm->n);
}

void session_attach(struct session *sess, struct stream *s)
{
	/* From hibernation, or taken from a stream whose connection the
	 * client found dead before we did. */
	assert(sess->sm && sess->s != s);
	if (sess->sm->hibernation)
		evtimer_del(sess->sm->hibernation);
	sess->s = s;
}

void session_sm_resend(struct session *sess)
{
	struct sm *sm = sess->sm;
	struct sm_item *list = sm->head;
	unsigned n = sm->n;
	/* Everything still queued is sent again and counted again: the
	 * client's count went on from the h it gave. */
	sm->head = NULL;
	sm->tail = &sm->head;
	sm->out_h -= n;
	sm->n = 0;
	sm->since_r = 0;
	struct xmpp_server *srv = sess->srv;
	while (list) {
		struct sm_item *it = list;
		list = it->next;
		struct xml_node *st = it->st;
		/* a cluster entry's copy keeps its tag in the queue */
		const char *was = srv->cluster_entry;
		srv->cluster_entry = it->tag;
		bool taken = session_offer(sess, st);
		srv->cluster_entry = was;
		if (!taken) {
			if (it->tag)
				entry_settled(srv, it->tag);
			reroute(sess, st);
		}
		free(it->tag);
		free(it);
	}
	if (n)
		log_info(stream_ctx(sess->s), "%u stanza(s) sent again to %s", n, sess->full);
}

struct collect {
	struct session *list[64];
	size_t n;
};

static int collect_hibernating(void *ud, const char *key, void *value)
{
	struct collect *c = ud;
	struct session *sess = value;
	(void)key;
	if (!sess->s && c->n < FG_ARRAY_LEN(c->list))
		c->list[c->n++] = sess;
	return 0;
}

void session_drop_hibernating(struct xmpp_server *srv)
{
	struct collect c;
	/* Ending one changes the map: collect some, end them, again. */
	do {
		c.n = 0;
		if (srv->sm_ids)
			strmap_each(srv->sm_ids, collect_hibernating, &c);
		for (size_t i = 0; i < c.n; i++)
			session_free(&c.list[i]);
	} while (c.n == FG_ARRAY_LEN(c.list));
}

bool session_wants_blocklist(const struct session *sess)
{
	return sess->wants_blocklist;
}

void session_set_wants_blocklist(struct session *sess)
{
	sess->wants_blocklist = true;
}

void session_reply(struct session *sess, struct xml_node *iq, struct xml_node *payload)
{
	struct xml_node *r = xml_new(XML_NS_SERVER, "iq");
	if (r) {
		xml_set_attr(r, NULL, "type", "result");
		if (xml_attr(iq, "id"))
			xml_set_attr(r, NULL, "id", xml_attr(iq, "id"));
		xml_set_attr(r, NULL, "from", sess->bare);
		xml_set_attr(r, NULL, "to", sess->full);
		if (payload)
			xml_append_copy(r, payload);
		session_deliver(sess, r);
	}
	xml_free(&payload);
	xml_free(&iq);
}

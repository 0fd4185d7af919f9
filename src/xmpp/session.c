#include "session.h"

#include "caps.h"
#include "counters.h"
#include "fg.h"
#include "log.h"
#include "stream.h"
#include "strmap.h"
#include "xmpp.h"

#include <assert.h>
#include <stdlib.h>
#include <string.h>

struct session {
	struct xmpp_server *srv;
	struct stream *s;
	char *bare, *resource, *full;
	bool registered;
	struct session_presence pres;
	struct session *next_of_user;
	struct caps *caps; /* its entity capabilities (pep.c), shared */
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

void session_end(struct session *sess)
{
	if (!sess || !sess->registered)
		return;
	/* Out of the registry first: the stream is closing, so what is
	 * routed from now on goes to other resources or offline storage
	 * instead of into a connection that will not read it. */
	unregister(sess);
	if (sess->srv->session_ended)
		sess->srv->session_ended(sess->srv, sess);
	log_info("c2s", "session of %s ended", sess->full);
}

void session_free(struct session **psess)
{
	struct session *sess = *psess;
	if (!sess)
		return;
	session_end(sess);
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

bool session_offer(struct session *sess, struct xml_node *st)
{
	if (stream_offer(sess->s, st))
		return true;
	log_info(stream_ctx(sess->s), "%s for %s not written: the client's output queue is full",
		 st->name, sess->full);
	return false;
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
	stream_error(sess->s, condition, text);
}

#include "mam.h"

#include "mam_query.h"
#include "session.h"
#include "conf.h"
#include "counters.h"
#include "fg.h"
#include "jid.h"
#include "jid_cache.h"
#include "live.h"
#include "log.h"
#include "users.h"
#include "xmpp.h"
#include "store.h"
#include "store_archive.h"
#include "strmap.h"
#include "xmlstream.h"

#include <openssl/rand.h>

#include <assert.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* Largest page a query gets, whatever <max/> asks. */
#define MAM_PAGE_MAX 100
/* Rows waiting for the store past this hold the stream that sends them,
 * as offline storage does. */
#define MAM_QUEUE_MAX 1024
/* How often expired messages are looked for. */
#define MAM_EXPIRY_EVERY_S 3600

/* One batch: rows with the strings they own. */
struct batch {
	struct xmpp_server *srv;
	struct archive_row *rows;
	size_t n, cap;
	enum archive_mode def;
	unsigned max_per_user;
};

struct mam_state {
	struct batch *next; /* filling on the loop */
	bool writing;	    /* a batch is with the store thread */
	size_t queued;	    /* rows in next and in the one writing */
	struct event *expiry;
	/* owner -> rows archived since their archive was last trimmed, as
	 * (uintptr_t) values: trimming walks as far as [archive]
	 * max_per_user, so it is asked once per 1/64 of it */
	struct strmap *since_trim;
};

static void batch_free(struct batch *b)
{
	if (!b)
		return;
	for (size_t i = 0; i < b->n; i++) {
		free((char *)b->rows[i].owner);
		free((char *)b->rows[i].with_jid);
		free((char *)b->rows[i].stanza_id);
		free((char *)b->rows[i].xml);
	}
	free(b->rows);
	free(b);
}

bool mam_enabled(const struct xmpp_server *srv)
{
	return srv->conf->archive_enabled && srv->store;
}

static struct mam_state *state(struct xmpp_server *srv)
{
	if (!srv->mam)
		srv->mam = calloc(1, sizeof(*srv->mam));
	return srv->mam;
}

/* ---- writing ---- */

static int write_run(struct store_db *db, void *ud, char *err, size_t errlen)
{
	struct batch *b = ud;
	return store_db_archive_add(db, b->rows, b->n, b->def, b->max_per_user, NULL, err, errlen);
}

static void flush(struct xmpp_server *srv);

static void write_done(void *ud, int rc, const char *err)
{
	struct batch *b = ud;
	struct xmpp_server *srv = b->srv;
	struct mam_state *m = srv->mam;
	if (rc != FG_OK)
		log_error("mam", "%zu messages could not be archived: %s", b->n, err);
	if (m) {
		assert(m->queued >= b->n);
		m->queued -= b->n;
		m->writing = false;
		if (m->queued <= MAM_QUEUE_MAX / 2)
			xmpp_release_held(srv, m);
	}
	batch_free(b);
	if (m && !srv->stopping)
		flush(srv);
}

/* Hands what waits to the store thread, when no batch is there already:
 * while one is written, the next one grows, so a busy store writes many
 * messages per transaction. */
static void flush(struct xmpp_server *srv)
{
	struct mam_state *m = srv->mam;
	if (!m || !m->next || m->next->n == 0 || m->writing)
		return;
	struct batch *b = m->next;
	m->next = NULL;
	m->writing = true;
	if (store_submit(srv->store, write_run, write_done, b) != FG_OK)
		write_done(b, FG_ERR, "the store is not running");
}

/* Owns nothing on failure. */
static int add_row(struct xmpp_server *srv, const char *owner, const char *with, long long ts,
		   const char *sid, bool outgoing, const char *xml)
{
	struct mam_state *m = state(srv);
	if (!m)
		return FG_NOMEM;
	if (!m->next) {
		if (!(m->next = calloc(1, sizeof(*m->next))))
			return FG_NOMEM;
		m->next->srv = srv;
		int mode = archive_mode_parse(srv->conf->archive_default);
		m->next->def = mode >= 0 ? (enum archive_mode)mode : ARCHIVE_ALWAYS;
		m->next->max_per_user = srv->conf->archive_max_per_user;
	}
	struct batch *b = m->next;
	if (b->n == b->cap) {
		size_t cap = b->cap ? b->cap * 2 : 16;
		struct archive_row *r = realloc(b->rows, cap * sizeof(*r));
		if (!r)
			return FG_NOMEM;
		b->rows = r;
		b->cap = cap;
	}
	struct archive_row *r = &b->rows[b->n];
	unsigned max = srv->conf->archive_max_per_user, every = max / 64 ? max / 64 : 1;
	bool trim = false;
	if (max) {
		if (!m->since_trim)
			m->since_trim = strmap_new();
		uintptr_t since =
			m->since_trim ? (uintptr_t)strmap_get(m->since_trim, owner) + 1 : every;
		trim = since >= every;
		/* A count that cannot be kept: trim now rather than never. */
		if (!m->since_trim ||
		    strmap_put(m->since_trim, owner, (void *)(trim ? 0 : since), NULL) != FG_OK)
			trim = true;
	}
	*r = (struct archive_row){.trim = trim,
				  .owner = strdup(owner),
				  .with_jid = strdup(with),
				  .ts_ms = ts,
				  .stanza_id = strdup(sid),
				  .outgoing = outgoing,
				  .xml = strdup(xml)};
	if (!r->owner || !r->with_jid || !r->stanza_id || !r->xml) {
		free((char *)r->owner);
		free((char *)r->with_jid);
		free((char *)r->stanza_id);
		free((char *)r->xml);
		return FG_NOMEM;
	}
	b->n++;
	if (++m->queued > MAM_QUEUE_MAX)
		xmpp_hold_feeder(srv, m);
	return FG_OK;
}

static bool is_type(const struct xml_node *st, const char *t)
{
	const char *v = xml_attr(st, "type");
	return strcmp(v ? v : "", t) == 0;
}

/* The bare form of an address (malloc'ed, NULL when it is none), and
 * whether it is a local account's; through the router's cache of
 * prepared addresses, since the router has just prepared these. */
static char *bare_of(struct xmpp_server *srv, const char *addr, bool *account)
{
	*account = false;
	if (!addr)
		return NULL;
	enum jid_err e;
	const struct jid_entry *je =
		srv->jids ? jid_cache_get(srv->jids, addr, strlen(addr), &e) : NULL;
	struct jid j = {0};
	if (!je && jid_parse(addr, strlen(addr), &j) != JID_OK)
		return NULL;
	const struct jid *p = je ? &je->j : &j;
	char *bare = je ? strdup(je->bare) : jid_to_string(&j, true);
	*account = bare && p->node && conf_is_local_domain(srv->conf, p->domain) && srv->live &&
		   accounts_get(srv->live->users, bare);
	if (je)
		jid_cache_put(srv->jids, je);
	else
		jid_clear(&j);
	return bare;
}

static bool has_id_by(const struct xml_node *msg, const char *by)
{
	for (const struct xml_node *c = xml_first_element(msg); c; c = xml_next_element(c))
		if (xml_is(c, XML_NS_SID, "stanza-id") && xml_attr(c, "by") &&
		    strcmp(xml_attr(c, "by"), by) == 0)
			return true;
	return false;
}

/* Unique and growing: the time, then a counter that starts at a random
 * value. Growing ids land at the end of the archive's (owner, stanza_id)
 * index; random ones would touch a random page of it per message, which
 * made archiving several times slower once the index outgrew SQLite's
 * cache. */
#define SID_LEN 27
static void new_id(char out[SID_LEN + 1])
{
	static unsigned long long seq;
	static bool seeded;
	if (!seeded) {
		if (RAND_bytes((unsigned char *)&seq, sizeof(seq)) != 1)
			seq = (unsigned long long)fg_now_ms();
		seq &= 0x0fffffffffffffffULL; /* years of messages before it wraps */
		seeded = true;
	}
	snprintf(out, SID_LEN + 1, "%011llx%016llx",
		 (unsigned long long)fg_now_ms() & 0xfffffffffffULL, ++seq);
}

bool mam_archive(struct xmpp_server *srv, struct xml_node *msg)
{
	if (!mam_enabled(srv) || !xml_is(msg, NULL, "message"))
		return true;
	if (!(is_type(msg, "chat") || is_type(msg, "normal") || is_type(msg, "")) ||
	    !xml_child(msg, NULL, "body"))
		return true;
	bool to_local, from_local;
	char *to = bare_of(srv, xml_attr(msg, "to"), &to_local);
	if (to_local && has_id_by(msg, to)) {
		free(to); /* archived on its way in; now back from offline storage */
		return false;
	}
	char *from = bare_of(srv, xml_attr(msg, "from"), &from_local);
	if (!to || !from || (!to_local && !from_local)) {
		free(to);
		free(from);
		return true;
	}
	struct xml_buf b = {0};
	struct xml_ctx ctx = {.default_ns = XML_NS_SERVER};
	xml_serialize(msg, &ctx, &b);
	char sid[SID_LEN + 1];
	new_id(sid);
	long long now = fg_now_ms();
	int rc = b.oom ? FG_NOMEM : FG_OK;
	if (rc == FG_OK && to_local)
		rc = add_row(srv, to, from, now, sid, false, b.data);
	if (rc == FG_OK && from_local)
		rc = add_row(srv, from, to, now, sid, true, b.data);
	xml_buf_free(&b);
	if (rc != FG_OK) {
		log_error("mam", "out of memory: a message from %s to %s was not archived", from,
			  to);
	} else if (to_local) {
		struct xml_node *s = xml_add_child(msg, XML_NS_SID, "stanza-id");
		if (s) {
			xml_set_attr(s, NULL, "by", to);
			xml_set_attr(s, NULL, "id", sid);
		}
	}
	free(to);
	free(from);
	flush(srv);
	return true;
}

void mam_strip_ids(struct xmpp_server *srv, struct xml_node *msg)
{
	struct xml_node *prev = NULL;
	for (struct xml_node **p = &msg->children; *p;) {
		struct xml_node *c = *p;
		bool forged = false;
		if (c->type == XML_ELEMENT && xml_is(c, XML_NS_SID, "stanza-id")) {
			const char *by = xml_attr(c, "by");
			const char *at = by ? strchr(by, '@') : NULL;
			char dom[1024];
			snprintf(dom, sizeof(dom), "%s", at ? at + 1 : by ? by : "");
			char *slash = strchr(dom, '/');
			if (slash)
				*slash = '\0';
			forged = !by || conf_is_local_domain(srv->conf, dom);
		}
		if (forged) {
			if (msg->last_child == c)
				msg->last_child = prev;
			*p = c->next;
		} else {
			prev = c;
			p = &c->next;
		}
	}
}

/* ---- answering ---- */

static struct xml_node *reply(struct session *own, const struct xml_node *iq, const char *type)
{
	struct xml_node *r = xml_new(XML_NS_SERVER, "iq");
	if (!r)
		return NULL;
	xml_set_attr(r, NULL, "type", type);
	if (xml_attr(iq, "id"))
		xml_set_attr(r, NULL, "id", xml_attr(iq, "id"));
	xml_set_attr(r, NULL, "from", session_bare(own));
	xml_set_attr(r, NULL, "to", session_full(own));
	return r;
}

static void refuse(struct xmpp_server *srv, struct session *own, struct xml_node *iq,
		   const char *type, const char *cond, const char *text)
{
	if (!xml_attr(iq, "to"))
		xml_set_attr(iq, NULL, "to", session_bare(own));
	srv->bounce(srv, iq, type, cond, text);
}

static void add_field(struct xml_node *x, const char *var, const char *type, const char *value)
{
	struct xml_node *f = xml_add_child(x, XML_NS_DATA, "field");
	if (!f)
		return;
	xml_set_attr(f, NULL, "var", var);
	xml_set_attr(f, NULL, "type", type);
	if (value) {
		struct xml_node *v = xml_add_child(f, XML_NS_DATA, "value");
		if (v)
			xml_add_text(v, value, strlen(value));
	}
}

/* XEP-0313 §5.1: the fields this archive filters by. */
static void query_form(struct session *own, struct xml_node *iq)
{
	struct xml_node *r = reply(own, iq, "result");
	struct xml_node *q = r ? xml_add_child(r, XML_NS_MAM, "query") : NULL;
	struct xml_node *x = q ? xml_add_child(q, XML_NS_DATA, "x") : NULL;
	if (x) {
		xml_set_attr(x, NULL, "type", "form");
		add_field(x, "FORM_TYPE", "hidden", XML_NS_MAM);
		add_field(x, "with", "jid-single", NULL);
		add_field(x, "start", "text-single", NULL);
		add_field(x, "end", "text-single", NULL);
		add_field(x, "after-id", "text-single", NULL);
		add_field(x, "before-id", "text-single", NULL);
	}
	xml_free(&iq);
	if (r)
		session_deliver(own, r);
}

struct found {
	char *sid, *xml;
	long long ts;
};

struct query_job {
	struct xmpp_server *srv;
	char *owner, *res;
	struct xml_node *iq;
	struct mam_query mq;
	struct archive_query q;
	char *after, *before;
	struct found *rows;
	size_t n;
	bool complete;
	unsigned count;
};

static void query_job_free(struct query_job *j)
{
	for (size_t i = 0; i < j->n; i++) {
		free(j->rows[i].sid);
		free(j->rows[i].xml);
	}
	free(j->rows);
	mam_query_clear(&j->mq);
	xml_free(&j->iq);
	free(j->owner);
	free(j->res);
	free(j->after);
	free(j->before);
	free(j);
}

static int query_row(void *ud, const char *sid, long long ts, const char *xml)
{
	struct query_job *j = ud;
	assert(j->n < j->q.max);
	struct found *f = &j->rows[j->n];
	f->sid = strdup(sid);
	f->xml = strdup(xml);
	f->ts = ts;
	j->n++;
	return f->sid && f->xml ? 0 : 1;
}

static int query_run(struct store_db *db, void *ud, char *err, size_t errlen)
{
	struct query_job *j = ud;
	return store_db_archive_query(db, &j->q, query_row, j, &j->complete, &j->count, err,
				      errlen);
}

static void text_child(struct xml_node *parent, const char *ns, const char *name, const char *t)
{
	struct xml_node *e = xml_add_child(parent, ns, name);
	if (e)
		xml_add_text(e, t, strlen(t));
}

/* <message><result queryid id><forwarded><delay/><message/></forwarded> */
static void send_result(struct query_job *j, struct session *own, const struct found *f)
{
	struct xml_node *m = xmlstream_parse_one(f->xml);
	struct xml_node *w = xml_new(XML_NS_SERVER, "message");
	struct xml_node *res = w ? xml_add_child(w, XML_NS_MAM, "result") : NULL;
	struct xml_node *fw = res ? xml_add_child(res, XML_NS_FORWARD, "forwarded") : NULL;
	struct xml_node *d = fw ? xml_add_child(fw, XML_NS_DELAY, "delay") : NULL;
	if (!m || !d) {
		log_error("mam", "an archived message of %s could not be read back", j->owner);
		xml_free(&m);
		xml_free(&w);
		return;
	}
	xml_set_attr(w, NULL, "from", j->owner);
	xml_set_attr(w, NULL, "to", session_full(own));
	if (j->mq.queryid)
		xml_set_attr(res, NULL, "queryid", j->mq.queryid);
	xml_set_attr(res, NULL, "id", f->sid);
	char stamp[32];
	time_t secs = (time_t)(f->ts / 1000);
	struct tm tm;
	gmtime_r(&secs, &tm);
	size_t k = strftime(stamp, sizeof(stamp), "%Y-%m-%dT%H:%M:%S", &tm);
	snprintf(stamp + k, sizeof(stamp) - k, ".%03lldZ", f->ts % 1000);
	xml_set_attr(d, NULL, "stamp", stamp);
	xml_append_copy(fw, m);
	xml_free(&m);
	session_deliver(own, w);
}

static void query_done(void *ud, int rc, const char *err)
{
	struct query_job *j = ud;
	struct xmpp_server *srv = j->srv;
	struct session *own = session_find(srv, j->owner, j->res);
	struct xml_node *iq = j->iq;
	j->iq = NULL;
	if (!own) {
		xml_free(&iq); /* signed out meanwhile: nobody to answer */
	} else if (rc == FG_NOTFOUND) {
		refuse(srv, own, iq, "cancel", "item-not-found", err);
	} else if (rc != FG_OK) {
		log_error("mam", "a query of %s's archive failed: %s", j->owner, err);
		refuse(srv, own, iq, "wait", "internal-server-error",
		       "the archive could not be read");
	} else {
		for (size_t i = 0; i < j->n; i++)
			send_result(j, own, &j->rows[i]);
		struct xml_node *r = reply(own, iq, "result");
		struct xml_node *fin = r ? xml_add_child(r, XML_NS_MAM, "fin") : NULL;
		struct xml_node *set = fin ? xml_add_child(fin, XML_NS_RSM, "set") : NULL;
		if (set) {
			if (j->complete)
				xml_set_attr(fin, NULL, "complete", "true");
			if (j->n) {
				text_child(set, XML_NS_RSM, "first", j->rows[0].sid);
				text_child(set, XML_NS_RSM, "last", j->rows[j->n - 1].sid);
			}
			char cnt[16];
			snprintf(cnt, sizeof(cnt), "%u", j->count);
			text_child(set, XML_NS_RSM, "count", cnt);
		}
		log_info("mam", "%s read %zu archived messages", session_full(own), j->n);
		xml_free(&iq);
		if (r)
			session_deliver(own, r);
	}
	query_job_free(j);
}

static struct query_job *job_for(struct xmpp_server *srv, struct session *own)
{
	struct query_job *j = calloc(1, sizeof(*j));
	if (!j)
		return NULL;
	j->srv = srv;
	j->owner = strdup(session_bare(own));
	j->res = strdup(session_resource(own));
	if (!j->owner || !j->res) {
		query_job_free(j);
		return NULL;
	}
	return j;
}

static void query(struct xmpp_server *srv, struct session *own, struct xml_node *iq,
		  const struct xml_node *qn)
{
	struct query_job *j = job_for(srv, own);
	if (!j) {
		refuse(srv, own, iq, "wait", "resource-constraint", "out of memory");
		return;
	}
	const char *why = mam_query_parse(qn, MAM_PAGE_MAX, &j->mq);
	if (why) {
		query_job_free(j);
		refuse(srv, own, iq, "modify", "bad-request", why);
		return;
	}
	j->after = j->mq.after_id ? strdup(j->mq.after_id) : NULL;
	j->before = j->mq.before_id ? strdup(j->mq.before_id) : NULL;
	j->rows = calloc(j->mq.max ? j->mq.max : 1, sizeof(*j->rows));
	if ((j->mq.after_id && !j->after) || (j->mq.before_id && !j->before) || !j->rows) {
		query_job_free(j);
		refuse(srv, own, iq, "wait", "resource-constraint", "out of memory");
		return;
	}
	j->q = (struct archive_query){.owner = j->owner,
				      .with = j->mq.with,
				      .start_ms = j->mq.start_ms,
				      .end_ms = j->mq.end_ms,
				      .after_id = j->after,
				      .before_id = j->before,
				      .backward = j->mq.backward,
				      .max = j->mq.max};
	j->iq = iq; /* mq.queryid points into it */
	/* What was archived before the query is in its answer. */
	struct mam_state *m = srv->mam;
	if (m && m->next && m->next->n) {
		struct batch *b = m->next;
		m->next = NULL;
		if (store_submit(srv->store, write_run, write_done, b) != FG_OK)
			write_done(b, FG_ERR, "the store is not running");
		else
			m->writing = true;
	}
	if (store_submit_keyed(srv->store, j->owner, query_run, query_done, j) != FG_OK) {
		j->iq = NULL;
		query_job_free(j);
		refuse(srv, own, iq, "wait", "internal-server-error", "the store is not running");
	}
}

/* ---- preferences ---- */

struct prefs_job {
	struct query_job *base; /* owner, res, iq */
	struct mam_prefs p;
	bool set, found;
	enum archive_mode mode;
	char *always, *never;
};

static int prefs_run(struct store_db *db, void *ud, char *err, size_t errlen)
{
	struct prefs_job *j = ud;
	if (j->set)
		return store_db_archive_prefs_put(db, j->base->owner, (enum archive_mode)j->p.mode,
						  j->p.always, j->p.never, err, errlen);
	return store_db_archive_prefs_get(db, j->base->owner, &j->found, &j->mode, &j->always,
					  &j->never, err, errlen);
}

static void add_list(struct xml_node *prefs, const char *name, const char *list)
{
	struct xml_node *l = xml_add_child(prefs, XML_NS_MAM, name);
	for (const char *p = list; l && p && *p;) {
		const char *nl = strchr(p, '\n');
		size_t len = nl ? (size_t)(nl - p) : strlen(p);
		struct xml_node *e = xml_add_child(l, XML_NS_MAM, "jid");
		if (e)
			xml_add_text(e, p, len);
		p = nl ? nl + 1 : NULL;
	}
}

static void prefs_done(void *ud, int rc, const char *err)
{
	struct prefs_job *j = ud;
	struct xmpp_server *srv = j->base->srv;
	struct session *own = session_find(srv, j->base->owner, j->base->res);
	struct xml_node *iq = j->base->iq;
	j->base->iq = NULL;
	if (!own) {
		xml_free(&iq);
	} else if (rc != FG_OK) {
		log_error("mam", "archiving preferences of %s: %s", j->base->owner, err);
		refuse(srv, own, iq, "wait", "internal-server-error",
		       "the archiving preferences could not be read or saved");
	} else {
		struct xml_node *r = reply(own, iq, "result");
		struct xml_node *p = r ? xml_add_child(r, XML_NS_MAM, "prefs") : NULL;
		if (p) {
			int def = archive_mode_parse(srv->conf->archive_default);
			enum archive_mode mode = j->set	    ? (enum archive_mode)j->p.mode
						 : j->found ? j->mode
						 : def >= 0 ? (enum archive_mode)def
							    : ARCHIVE_ALWAYS;
			xml_set_attr(p, NULL, "default", archive_mode_name(mode));
			add_list(p, "always", j->set ? j->p.always : j->always);
			add_list(p, "never", j->set ? j->p.never : j->never);
		}
		if (j->set)
			log_info("mam", "%s set archiving preferences", session_full(own));
		xml_free(&iq);
		if (r)
			session_deliver(own, r);
	}
	mam_prefs_clear(&j->p);
	free(j->always);
	free(j->never);
	query_job_free(j->base);
	free(j);
}

static void prefs(struct xmpp_server *srv, struct session *own, struct xml_node *iq,
		  const struct xml_node *pn)
{
	struct prefs_job *j = calloc(1, sizeof(*j));
	if (!j || !(j->base = job_for(srv, own))) {
		free(j);
		refuse(srv, own, iq, "wait", "resource-constraint", "out of memory");
		return;
	}
	j->set = is_type(iq, "set");
	const char *why = j->set ? mam_prefs_parse(pn, &j->p) : NULL;
	if (why) {
		query_job_free(j->base);
		free(j);
		refuse(srv, own, iq, "modify", "bad-request", why);
		return;
	}
	j->base->iq = iq;
	if (store_submit_keyed(srv->store, j->base->owner, prefs_run, prefs_done, j) != FG_OK) {
		j->base->iq = NULL;
		mam_prefs_clear(&j->p);
		query_job_free(j->base);
		free(j);
		refuse(srv, own, iq, "wait", "internal-server-error", "the store is not running");
	}
}

bool mam_iq(struct xmpp_server *srv, struct session *own, struct xml_node *iq)
{
	const struct xml_node *q = xml_child(iq, XML_NS_MAM, "query");
	const struct xml_node *p = xml_child(iq, XML_NS_MAM, "prefs");
	if (!q && !p)
		return false;
	if (!mam_enabled(srv)) {
		refuse(srv, own, iq, "cancel", "service-unavailable",
		       "this server keeps no message archive");
	} else if (q && is_type(iq, "get")) {
		query_form(own, iq);
	} else if (q && is_type(iq, "set")) {
		query(srv, own, iq, q);
	} else if (p && (is_type(iq, "get") || is_type(iq, "set"))) {
		prefs(srv, own, iq, p);
	} else {
		refuse(srv, own, iq, "modify", "bad-request", "an archive request is a get or set");
	}
	return true;
}

/* ---- retention ---- */

struct expire_job {
	long long before_ms;
	unsigned deleted;
};

static int expire_run(struct store_db *db, void *ud, char *err, size_t errlen)
{
	struct expire_job *j = ud;
	return store_db_archive_expire(db, j->before_ms, &j->deleted, err, errlen);
}

static void expire_done(void *ud, int rc, const char *err)
{
	struct expire_job *j = ud;
	if (rc != FG_OK)
		log_error("mam", "expired archived messages could not be deleted: %s", err);
	else if (j->deleted)
		log_info("mam", "%u archived messages past their retention deleted", j->deleted);
	free(j);
}

static void expiry_cb(evutil_socket_t fd, short what, void *ud)
{
	struct xmpp_server *srv = ud;
	(void)fd;
	(void)what;
	unsigned days = srv->conf->archive_retention;
	if (mam_enabled(srv) && days > 0) {
		struct expire_job *j = calloc(1, sizeof(*j));
		if (j) {
			j->before_ms = fg_now_ms() - (long long)days * 86400 * 1000;
			if (store_submit(srv->store, expire_run, expire_done, j) != FG_OK)
				free(j);
		}
	}
	struct timeval tv = {MAM_EXPIRY_EVERY_S, 0};
	if (srv->mam && srv->mam->expiry)
		evtimer_add(srv->mam->expiry, &tv);
}

int mam_start(struct xmpp_server *srv)
{
	struct mam_state *m = state(srv);
	if (!m || !(m->expiry = evtimer_new(srv->base, expiry_cb, srv)))
		return FG_NOMEM;
	/* The first look soon after start: a daemon that was down long has
	 * the most to expire. */
	struct timeval tv = {1, 0};
	return evtimer_add(m->expiry, &tv) == 0 ? FG_OK : FG_ERR;
}

void mam_stop(struct xmpp_server *srv)
{
	struct mam_state *m = srv->mam;
	if (!m)
		return;
	if (m->expiry)
		event_free(m->expiry);
	m->expiry = NULL;
	if (m->next && m->next->n && srv->store) {
		/* Written before the store stops; its done finds no state. */
		struct batch *b = m->next;
		m->next = NULL;
		if (store_submit(srv->store, write_run, write_done, b) != FG_OK)
			batch_free(b);
	}
	batch_free(m->next);
	strmap_free(&m->since_trim, NULL);
	srv->mam = NULL;
	free(m);
}

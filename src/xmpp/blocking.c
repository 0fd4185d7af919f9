#include "blocking.h"

#include "roster.h"
#include "session.h"
#include "fg.h"
#include "jid.h"
#include "log.h"
#include "xmpp.h"
#include "store.h"
#include "store_block.h"
#include "strmap.h"

#include <assert.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct blocked {
	char *s; /* the item as the user sees it, prepared */
	struct jid j;
};

struct blocklist {
	struct blocked *v;
	size_t n, cap;
};

/* ---- the matcher ---- */

static bool same(const char *a, const char *b)
{
	return a && b && strcmp(a, b) == 0;
}

bool blocking_matches(const struct jid *item, const struct jid *j)
{
	assert(item && item->domain && j && j->domain);
	if (strcmp(item->domain, j->domain) != 0)
		return false;
	if (item->node) {
		if (!same(item->node, j->node))
			return false;
		return !item->resource || same(item->resource, j->resource);
	}
	if (item->resource)
		return !j->node && same(item->resource, j->resource);
	return true;
}

/* ---- parsing a request ---- */

void blocking_req_clear(struct blocking_req *req)
{
	for (size_t i = 0; i < req->n; i++)
		free(req->jids[i]);
	free(req->jids);
	memset(req, 0, sizeof(*req));
}

static int invalid(const char **type, const char **cond, const char **text, const char *t,
		   const char *c, const char *x)
{
	*type = t;
	*cond = c;
	*text = x;
	return FG_INVAL;
}

bool blocking_is_request(const struct xml_node *iq)
{
	return xml_child(iq, XML_NS_BLOCKING, NULL) != NULL;
}

int blocking_parse(const struct xml_node *iq, struct blocking_req *req, const char **type,
		   const char **cond, const char **text)
{
	memset(req, 0, sizeof(*req));
	const char *t = xml_attr(iq, "type");
	const struct xml_node *p = xml_child(iq, XML_NS_BLOCKING, NULL);
	if (!t || !p)
		return invalid(type, cond, text, "modify", "bad-request", "not a blocking request");
	bool get = strcmp(t, "get") == 0, set = strcmp(t, "set") == 0;
	if (get && xml_is(p, XML_NS_BLOCKING, "blocklist")) {
		req->op = BLOCKING_GET;
		return FG_OK;
	}
	if (!set || !(xml_is(p, XML_NS_BLOCKING, "block") || xml_is(p, XML_NS_BLOCKING, "unblock")))
		return invalid(type, cond, text, "modify", "bad-request",
			       "a blocklist is read with get, block and unblock are sets");
	req->op = xml_is(p, XML_NS_BLOCKING, "block") ? BLOCKING_BLOCK : BLOCKING_UNBLOCK;
	size_t n = 0;
	for (const struct xml_node *it = xml_first_element(p); it; it = xml_next_element(it))
		if (xml_is(it, XML_NS_BLOCKING, "item"))
			n++;
	if (n == 0 && req->op == BLOCKING_BLOCK)
		return invalid(type, cond, text, "modify", "bad-request",
			       "a block request names at least one item");
	if (n > BLOCKING_MAX_ITEMS)
		return invalid(type, cond, text, "modify", "not-acceptable",
			       "too many items in one request");
	if (n && !(req->jids = calloc(n, sizeof(*req->jids))))
		return invalid(type, cond, text, "wait", "resource-constraint", "out of memory");
	for (const struct xml_node *it = xml_first_element(p); it; it = xml_next_element(it)) {
		if (!xml_is(it, XML_NS_BLOCKING, "item"))
			continue;
		const char *s = xml_attr(it, "jid");
		struct jid j;
		if (!s || jid_parse(s, strlen(s), &j) != JID_OK) {
			blocking_req_clear(req);
			return invalid(type, cond, text, "modify", "jid-malformed",
				       "an item's jid is not a valid JID");
		}
		char *prepared = jid_to_string(&j, false);
		jid_clear(&j);
		if (!prepared) {
			blocking_req_clear(req);
			return invalid(type, cond, text, "wait", "resource-constraint",
				       "out of memory");
		}
		bool dup = false;
		for (size_t i = 0; i < req->n && !dup; i++)
			dup = strcmp(req->jids[i], prepared) == 0;
		if (dup)
			free(prepared);
		else
			req->jids[req->n++] = prepared;
	}
	assert(req->n <= n);
	return FG_OK;
}

/* ---- the lists in memory ---- */

static void list_free(void *v)
{
	struct blocklist *l = v;
	for (size_t i = 0; i < l->n; i++) {
		free(l->v[i].s);
		jid_clear(&l->v[i].j);
	}
	free(l->v);
	free(l);
}

static struct blocklist *list_of(struct xmpp_server *srv, const char *user, bool create)
{
	if (!srv->blocklists && (!create || !(srv->blocklists = strmap_new())))
		return NULL;
	struct blocklist *l = strmap_get(srv->blocklists, user);
	if (l || !create)
		return l;
	if (!(l = calloc(1, sizeof(*l))) || strmap_put(srv->blocklists, user, l, NULL) != FG_OK) {
		free(l);
		return NULL;
	}
	return l;
}

static struct blocked *find(struct blocklist *l, const char *s)
{
	for (size_t i = 0; l && i < l->n; i++)
		if (strcmp(l->v[i].s, s) == 0)
			return &l->v[i];
	return NULL;
}

/* FG_OK also when it was there; FG_INVAL when s is no JID. */
static int list_add(struct blocklist *l, const char *s)
{
	if (find(l, s))
		return FG_OK;
	if (l->n == l->cap) {
		size_t cap = l->cap ? l->cap * 2 : 4;
		void *p = realloc(l->v, cap * sizeof(*l->v));
		if (!p)
			return FG_NOMEM;
		l->v = p;
		l->cap = cap;
	}
	struct blocked *b = &l->v[l->n];
	if (jid_parse(s, strlen(s), &b->j) != JID_OK)
		return FG_INVAL;
	if (!(b->s = strdup(s))) {
		jid_clear(&b->j);
		return FG_NOMEM;
	}
	l->n++;
	return FG_OK;
}

static void list_remove(struct blocklist *l, struct blocked *b)
{
	size_t i = (size_t)(b - l->v);
	assert(i < l->n);
	free(b->s);
	jid_clear(&b->j);
	memmove(&l->v[i], &l->v[i + 1], (l->n - i - 1) * sizeof(*l->v));
	l->n--;
}

bool blocking_any(struct xmpp_server *srv, const char *user)
{
	struct blocklist *l = list_of(srv, user, false);
	return l && l->n;
}

bool blocking_blocks(struct xmpp_server *srv, const char *user, const struct jid *j)
{
	struct blocklist *l = list_of(srv, user, false);
	for (size_t i = 0; l && i < l->n; i++)
		if (blocking_matches(&l->v[i].j, j))
			return true;
	return false;
}

void blocking_drop_user(struct xmpp_server *srv, const char *user)
{
	struct blocklist *l = srv->blocklists ? strmap_remove(srv->blocklists, user) : NULL;
	if (l)
		list_free(l);
}

void blocking_free_all(struct xmpp_server *srv)
{
	strmap_free(&srv->blocklists, list_free);
}

struct load_ctx {
	struct xmpp_server *srv;
	int rc;
	char *err;
	size_t errlen;
};

static int load_row(void *ud, const char *owner, const char *jid)
{
	struct load_ctx *x = ud;
	struct blocklist *l = list_of(x->srv, owner, true);
	x->rc = l ? list_add(l, jid) : FG_NOMEM;
	if (x->rc == FG_INVAL)
		snprintf(x->err, x->errlen, "the blocklist of %s holds %s, which is not a JID",
			 owner, jid);
	else if (x->rc != FG_OK)
		snprintf(x->err, x->errlen, "out of memory loading the blocklists");
	return x->rc != FG_OK;
}

int blocking_load_all(struct xmpp_server *srv, struct store_db *db, char *err, size_t errlen)
{
	struct load_ctx x = {.srv = srv, .rc = FG_OK, .err = err, .errlen = errlen};
	int rc = store_db_block_load(db, load_row, &x, err, errlen);
	return rc != FG_OK ? rc : x.rc;
}

/* ---- write-through to the store thread ---- */

struct save_job {
	char *owner;
	struct blocking_req req;
};

static int save_run(struct store_db *db, void *ud, char *err, size_t errlen)
{
	struct save_job *j = ud;
	const char *const *jids = (const char *const *)j->req.jids;
	if (j->req.op == BLOCKING_BLOCK)
		return store_db_block_add(db, j->owner, jids, j->req.n, err, errlen);
	return store_db_block_remove(db, j->owner, jids, j->req.n, err, errlen);
}

static void save_done(void *ud, int rc, const char *err)
{
	struct save_job *j = ud;
	if (rc != FG_OK)
		log_error("blocking", "cannot save the blocklist of %s: %s", j->owner, err);
	blocking_req_clear(&j->req);
	free(j->owner);
	free(j);
}

/* Takes req's items. */
static void save(struct xmpp_server *srv, const char *owner, struct blocking_req *req)
{
	struct save_job *j = calloc(1, sizeof(*j));
	if (!j || !(j->owner = strdup(owner)) || !srv->store) {
		if (j)
			free(j->owner);
		free(j);
		if (srv->store)
			log_error("blocking", "cannot save the blocklist of %s: out of memory",
				  owner);
		blocking_req_clear(req);
		return;
	}
	j->req = *req;
	memset(req, 0, sizeof(*req));
	if (store_submit_keyed(srv->store, j->owner, save_run, save_done, j) != FG_OK) {
		log_error("blocking", "cannot save the blocklist of %s: the store is not running",
			  owner);
		save_done(j, FG_OK, NULL);
	}
}

/* ---- presence on block and unblock (XEP-0191 §3.3, §3.4) ---- */

static void send_presence(struct xmpp_server *srv, const struct xml_node *copy_of, const char *from,
			  const char *to, const char *type)
{
	struct xml_node *p = copy_of ? xml_clone(copy_of) : xml_new(XML_NS_SERVER, "presence");
	if (!p)
		return;
	xml_set_attr(p, NULL, "from", from);
	xml_set_attr(p, NULL, "to", to);
	if (type)
		xml_set_attr(p, NULL, "type", type);
	srv->route(srv, p);
}

/* Whether addr (any JID text) matches item, or is blocked by user when
 * item is NULL. */
static bool addr_blocked(struct xmpp_server *srv, const char *user, const struct jid *item,
			 const char *addr)
{
	struct jid j;
	if (jid_parse(addr, strlen(addr), &j) != JID_OK)
		return false;
	bool b = item ? blocking_matches(item, &j) : blocking_blocks(srv, user, &j);
	jid_clear(&j);
	return b;
}

struct directed_hits {
	const struct jid *item;
	char **v;
	size_t n, cap;
};

static int collect_directed(void *ud, const char *key, void *value)
{
	struct directed_hits *h = ud;
	struct jid j;
	(void)value;
	if (jid_parse(key, strlen(key), &j) != JID_OK)
		return 0;
	bool hit = blocking_matches(h->item, &j);
	jid_clear(&j);
	if (!hit)
		return 0;
	if (h->n == h->cap) {
		size_t cap = h->cap ? h->cap * 2 : 4;
		void *p = realloc(h->v, cap * sizeof(*h->v));
		if (!p)
			return 1;
		h->v = p;
		h->cap = cap;
	}
	if ((h->v[h->n] = strdup(key)))
		h->n++;
	return 0;
}

/* The contacts that see the user's presence, and those it sent directed
 * presence to, get unavailable from each available resource. */
static void tell_blocked(struct xmpp_server *srv, const char *user, const struct jid *item)
{
	struct roster *r = roster_of(srv, user, false);
	for (struct session *o = session_first(srv, user); o; o = session_next(o)) {
		struct session_presence *p = session_presence(o);
		for (size_t i = 0; p->last && i < roster_count(r); i++) {
			struct roster_item *it = roster_at(r, i);
			if (it->sub_from && addr_blocked(srv, user, item, it->contact))
				send_presence(srv, NULL, session_full(o), it->contact,
					      "unavailable");
		}
		if (!p->directed)
			continue;
		struct directed_hits h = {.item = item};
		strmap_each(p->directed, collect_directed, &h);
		for (size_t i = 0; i < h.n; i++) {
			strmap_remove(p->directed, h.v[i]);
			/* A contact that sees the user's presence got it above. */
			struct roster_item *it = roster_find(r, h.v[i]);
			if (!p->last || !it || !it->sub_from)
				send_presence(srv, NULL, session_full(o), h.v[i], "unavailable");
			free(h.v[i]);
		}
		free(h.v);
	}
}

/* They get the current presence again (unless another item still blocks
 * them), and the user's subscriptions to them are probed. */
static void tell_unblocked(struct xmpp_server *srv, const char *user, const struct jid *item)
{
	struct roster *r = roster_of(srv, user, false);
	bool online = false;
	for (struct session *o = session_first(srv, user); o && !online; o = session_next(o))
		online = session_presence(o)->last != NULL;
	for (size_t i = 0; online && i < roster_count(r); i++) {
		struct roster_item *it = roster_at(r, i);
		if (!addr_blocked(srv, user, item, it->contact) ||
		    addr_blocked(srv, user, NULL, it->contact))
			continue;
		for (struct session *o = session_first(srv, user); it->sub_from && o;
		     o = session_next(o))
			if (session_presence(o)->last)
				send_presence(srv, session_presence(o)->last, session_full(o),
					      it->contact, NULL);
		/* What the contact said while blocked was dropped: ask again. */
		if (it->sub_to)
			send_presence(srv, NULL, user, it->contact, "probe");
	}
}

/* ---- the protocol ---- */

static void add_items(struct xml_node *to, const char *const *jids, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		struct xml_node *it = xml_add_child(to, XML_NS_BLOCKING, "item");
		if (it)
			xml_set_attr(it, NULL, "jid", jids[i]);
	}
}

/* XEP-0191 §3.3, §3.4: every resource that asked for the blocklist learns
 * what changed; n == 0 is an unblock of everything. */
static void push(struct xmpp_server *srv, const char *user, const char *what,
		 const char *const *jids, size_t n)
{
	static unsigned long seq;
	for (struct session *c = session_first(srv, user); c; c = session_next(c)) {
		if (!session_wants_blocklist(c))
			continue;
		char id[32];
		snprintf(id, sizeof(id), "block%lu", ++seq);
		struct xml_node *iq = xml_new(XML_NS_SERVER, "iq");
		struct xml_node *p = iq ? xml_add_child(iq, XML_NS_BLOCKING, what) : NULL;
		if (!p) {
			xml_free(&iq);
			continue;
		}
		xml_set_attr(iq, NULL, "type", "set");
		xml_set_attr(iq, NULL, "id", id);
		xml_set_attr(iq, NULL, "to", session_full(c));
		add_items(p, jids, n);
		session_deliver(c, iq);
	}
}

static void block(struct xmpp_server *srv, struct session *c, struct xml_node *iq,
		  struct blocking_req *req)
{
	const char *user = session_bare(c);
	struct blocklist *l = list_of(srv, user, true);
	size_t fresh = 0;
	for (size_t i = 0; l && i < req->n; i++)
		fresh += !find(l, req->jids[i]);
	if (!l || l->n + fresh > BLOCKING_MAX_ITEMS) {
		blocking_req_clear(req);
		srv->bounce(srv, iq, "wait", "resource-constraint",
			    l ? "the blocklist is full" : "out of memory");
		return;
	}
	size_t before = l->n;
	for (size_t i = 0; i < req->n; i++) {
		bool was = find(l, req->jids[i]) != NULL;
		if (list_add(l, req->jids[i]) != FG_OK) {
			/* Nothing of the request stays: the store gets none. */
			while (l->n > before)
				list_remove(l, &l->v[l->n - 1]);
			blocking_req_clear(req);
			srv->bounce(srv, iq, "wait", "resource-constraint", "out of memory");
			return;
		}
		if (!was)
			tell_blocked(srv, user, &l->v[l->n - 1].j);
	}
	log_info("blocking", "%s blocks %zu more (%zu in all)", user, l->n - before, l->n);
	session_reply(c, iq, NULL);
	push(srv, user, "block", (const char *const *)req->jids, req->n);
	save(srv, user, req);
}

static void unblock(struct xmpp_server *srv, struct session *c, struct xml_node *iq,
		    struct blocking_req *req)
{
	const char *user = session_bare(c);
	struct blocklist *l = list_of(srv, user, false);
	struct jid *gone = NULL;
	size_t ngone = 0;
	size_t nl = l ? l->n : 0;
	if (nl && !(gone = calloc(nl, sizeof(*gone)))) {
		blocking_req_clear(req);
		srv->bounce(srv, iq, "wait", "resource-constraint", "out of memory");
		return;
	}
	/* The items leave first, so that presence sent to a contact that
	 * another item still blocks does not go out. */
	for (size_t i = 0; l && i < l->n;) {
		bool hit = req->n == 0;
		for (size_t k = 0; !hit && k < req->n; k++)
			hit = strcmp(l->v[i].s, req->jids[k]) == 0;
		if (!hit) {
			i++;
			continue;
		}
		gone[ngone++] = l->v[i].j;
		memset(&l->v[i].j, 0, sizeof(l->v[i].j));
		list_remove(l, &l->v[i]);
	}
	log_info("blocking", "%s unblocks %zu (%zu left)", user, ngone, l ? l->n : 0);
	if (l && l->n == 0)
		blocking_drop_user(srv, user);
	for (size_t i = 0; i < ngone; i++) {
		tell_unblocked(srv, user, &gone[i]);
		jid_clear(&gone[i]);
	}
	free(gone);
	session_reply(c, iq, NULL);
	push(srv, user, "unblock", (const char *const *)req->jids, req->n);
	save(srv, user, req);
}

void blocking_iq(struct xmpp_server *srv, struct session *c, struct xml_node *iq)
{
	const char *t = xml_attr(iq, "type");
	if (t && (strcmp(t, "result") == 0 || strcmp(t, "error") == 0)) {
		xml_free(&iq); /* answers to our pushes */
		return;
	}
	struct blocking_req req;
	const char *type, *cond, *text;
	if (blocking_parse(iq, &req, &type, &cond, &text) != FG_OK) {
		if (!xml_attr(iq, "to"))
			xml_set_attr(iq, NULL, "to", session_bare(c));
		srv->bounce(srv, iq, type, cond, text);
		return;
	}
	if (req.op == BLOCKING_GET) {
		session_set_wants_blocklist(c);
		struct xml_node *q = xml_new(XML_NS_BLOCKING, "blocklist");
		struct blocklist *l = list_of(srv, session_bare(c), false);
		for (size_t i = 0; q && l && i < l->n; i++) {
			struct xml_node *it = xml_add_child(q, XML_NS_BLOCKING, "item");
			if (it)
				xml_set_attr(it, NULL, "jid", l->v[i].s);
		}
		session_reply(c, iq, q);
		return;
	}
	if (!xml_attr(iq, "to"))
		xml_set_attr(iq, NULL, "to", session_bare(c));
	if (req.op == BLOCKING_BLOCK)
		block(srv, c, iq, &req);
	else
		unblock(srv, c, iq, &req);
}

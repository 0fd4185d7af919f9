#include "pep.h"

#include "blocking.h"
#include "caps.h"
#include "conf.h"
#include "fg.h"
#include "jid.h"
#include "live.h"
#include "log.h"
#include "policy.h"
#include "pubsub.h"
#include "roster.h"
#include "session.h"
#include "store.h"
#include "store_pep.h"
#include "strmap.h"
#include "xmlstream.h"
#include "xmpp.h"

#include <assert.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Most resources of contacts followed per account, and the most bytes of
 * items one answer carries (clients read stanzas of limited size; the
 * newest come first). */
#define PEP_WATCHERS_MAX 1000
#define PEP_ANSWER_BYTES (512 * 1024)

/* srv->pep: account bare JID -> strmap of contact full JID -> caps. */
struct pep {
	struct strmap *owners;
};

/* ---- the service's limits ---- */

static long cap_items(const struct xmpp_server *srv)
{
	return srv->conf && srv->conf->pep_max_items ? (long)srv->conf->pep_max_items : 256;
}

static long cap_nodes(const struct xmpp_server *srv)
{
	return srv->conf && srv->conf->pep_max_nodes ? (long)srv->conf->pep_max_nodes : 128;
}

static size_t cap_bytes(const struct xmpp_server *srv)
{
	return srv->conf && srv->conf->pep_item_bytes ? srv->conf->pep_item_bytes : 65536;
}

/* ---- addresses and who asks ---- */

static char *bare_of(const char *addr, char **domain)
{
	struct jid j = {0};
	if (domain)
		*domain = NULL;
	if (!addr || jid_parse(addr, strlen(addr), &j) != JID_OK)
		return NULL;
	char *b = jid_to_string(&j, true);
	if (domain) {
		*domain = j.domain;
		j.domain = NULL;
	}
	jid_clear(&j);
	return b;
}

/* What the loop knows of asker (a bare JID on domain) against owner. */
static void asker_facts(struct xmpp_server *srv, const char *owner, const char *asker,
			const char *domain, struct pubsub_asker *a)
{
	memset(a, 0, sizeof(*a));
	a->owner = !strcmp(owner, asker);
	a->local = conf_is_local_domain(srv->conf, domain) != 0;
	const struct partner *p =
		a->local || !srv->live ? NULL : policy_lookup(srv->live->partners, domain);
	/* Not a partner: the strictest type (its stanzas do not reach us
	 * anyway). */
	a->partner = p ? p->type : PT_PUBLIC_UNVERIFIED;
	a->in_roster = roster_has(srv, owner, asker);
	const struct roster_item *it = roster_find(roster_of(srv, owner, false), asker);
	a->sub_from = it && it->sub_from;
}

/* Whether the resource full may be sent what a node of owner's with this
 * model holds: the access decision, and never to whom the owner blocks
 * (XEP-0191: nothing of the user reaches them). */
static bool may_read_full(struct xmpp_server *srv, const char *owner, const char *full,
			  enum pubsub_access model)
{
	struct jid j = {0};
	struct pubsub_asker a;
	struct pubsub_err e;
	bool ok = false;
	if (!full || jid_parse(full, strlen(full), &j) != JID_OK)
		return false;
	char *bare = jid_to_string(&j, true);
	if (bare && !blocking_blocks(srv, owner, &j)) {
		asker_facts(srv, owner, bare, j.domain, &a);
		ok = pubsub_may_read(model, &a, &e);
	}
	free(bare);
	jid_clear(&j);
	return ok;
}

/* ---- answers ---- */

static struct xml_node *iq_new(const char *type, const struct xml_node *req, const char *owner)
{
	struct xml_node *r = xml_new(XML_NS_SERVER, "iq");
	if (!r)
		return NULL;
	xml_set_attr(r, NULL, "type", type);
	if (xml_attr(req, "id"))
		xml_set_attr(r, NULL, "id", xml_attr(req, "id"));
	xml_set_attr(r, NULL, "from", xml_attr(req, "to") ? xml_attr(req, "to") : owner);
	xml_set_attr(r, NULL, "to", xml_attr(req, "from"));
	return r;
}

/* The XEP-0060 error for req (taken): the stanza condition, pubsub's own
 * condition beside it, and the sentence. */
static void answer_error(struct xmpp_server *srv, struct xml_node *req, const char *owner,
			 const struct pubsub_err *e)
{
	struct xml_node *r = xml_attr(req, "from") ? iq_new("error", req, owner) : NULL;
	struct xml_node *err = r ? xml_add_child(r, XML_NS_SERVER, "error") : NULL;
	if (err) {
		xml_set_attr(err, NULL, "type", e->type);
		xml_add_child(err, XML_NS_STANZAS_ERR, e->cond);
		if (e->ps_cond) {
			struct xml_node *pc = xml_add_child(err, XML_NS_PUBSUB_ERRORS, e->ps_cond);
			if (pc && e->feature)
				xml_set_attr(pc, NULL, "feature", e->feature);
		}
		struct xml_node *tx = xml_add_child(err, XML_NS_STANZAS_ERR, "text");
		if (tx) {
			xml_set_attr(tx, XML_NS_XML, "lang", "en");
			xml_add_text(tx, e->text, strlen(e->text));
		}
		log_info("pep", "%s of %s refused: %s", xml_attr(req, "from"), owner, e->cond);
		srv->route(srv, r);
	} else {
		xml_free(&r);
	}
	xml_free(&req);
}

static void answer(struct xmpp_server *srv, struct xml_node *req, const char *owner,
		   struct xml_node *payload)
{
	struct xml_node *r = xml_attr(req, "from") ? iq_new("result", req, owner) : NULL;
	if (r && payload)
		xml_append_copy(r, payload);
	if (r)
		srv->route(srv, r);
	xml_free(&payload);
	xml_free(&req);
}

/* ---- notifications ---- */

static void send_event(struct xmpp_server *srv, const char *owner, const char *to,
		       const struct xml_node *what)
{
	struct xml_node *m = xml_new(XML_NS_SERVER, "message");
	struct xml_node *ev = m ? xml_add_child(m, XML_NS_PUBSUB_EVENT, "event") : NULL;
	if (!ev || xml_append_copy(ev, what) != FG_OK) {
		xml_free(&m);
		return;
	}
	xml_set_attr(m, NULL, "from", owner);
	xml_set_attr(m, NULL, "to", to);
	xml_set_attr(m, NULL, "type", "headline");
	srv->route(srv, m);
}

struct notify_ctx {
	struct xmpp_server *srv;
	const char *owner, *node;
	enum pubsub_access model;
	const struct xml_node *what;
};

/* XEP-0191: an entity the owner blocked is sent nothing of the owner's. */
static bool blocked(struct xmpp_server *srv, const char *owner, const char *full)
{
	struct jid j;
	if (!blocking_any(srv, owner) || jid_parse(full, strlen(full), &j) != JID_OK)
		return false;
	bool b = blocking_blocks(srv, owner, &j);
	jid_clear(&j);
	return b;
}

static int notify_watcher(void *ud, const char *full, void *value)
{
	struct notify_ctx *n = ud;
	if (caps_wants(value, n->node) && may_read_full(n->srv, n->owner, full, n->model) &&
	    !blocked(n->srv, n->owner, full))
		send_event(n->srv, n->owner, full, n->what);
	return 0;
}

static struct strmap *watchers_of(struct xmpp_server *srv, const char *owner)
{
	return srv->pep ? strmap_get(srv->pep->owners, owner) : NULL;
}

/* what (an <items/>, <delete/> or <purge/> of the event namespace) to every
 * resource that asked for node's notifications and may read it: the
 * owner's own (XEP-0163 §4.3.2) and its contacts' (§4.3.1). */
static void notify(struct xmpp_server *srv, const char *owner, const char *node,
		   enum pubsub_access model, const struct xml_node *what)
{
	for (struct session *s = session_first(srv, owner); s; s = session_next(s))
		if (caps_wants(session_caps(s), node))
			send_event(srv, owner, session_full(s), what);
	struct strmap *w = watchers_of(srv, owner);
	struct notify_ctx n = {srv, owner, node, model, what};
	if (w)
		strmap_each(w, notify_watcher, &n);
}

/* ---- store jobs ---- */

enum job_kind { JOB_REQUEST, JOB_LAST, JOB_DISCO };

struct item_out {
	char *id, *xml;
};

struct node_out {
	char *node, *id, *xml;
	struct pubsub_conf conf;
};

struct pep_job {
	struct xmpp_server *srv;
	enum job_kind kind;
	char *owner;
	/* JOB_REQUEST, JOB_DISCO */
	struct xml_node *iq;
	struct pubsub_req req;
	struct pubsub_asker asker;
	bool node_items; /* disco#items of one node: its item ids (XEP-0060 §5.5) */
	long cap_items, cap_nodes;
	char *item_id, *payload_xml;
	/* JOB_LAST: the resource to send the last items to, with its caps */
	char *to;
	struct caps *caps;
	/* results */
	bool failed;
	struct pubsub_err err;
	struct pubsub_conf conf;
	bool found_any;
	struct item_out *items;
	size_t nitems, items_bytes;
	struct node_out *nodes;
	size_t nnodes;
};

static void job_free(struct pep_job *j)
{
	xml_free(&j->iq);
	free(j->owner);
	free(j->item_id);
	free(j->payload_xml);
	free(j->to);
	caps_put(&j->caps);
	for (size_t i = 0; i < j->nitems; i++) {
		free(j->items[i].id);
		free(j->items[i].xml);
	}
	free(j->items);
	for (size_t i = 0; i < j->nnodes; i++) {
		free(j->nodes[i].node);
		free(j->nodes[i].id);
		free(j->nodes[i].xml);
	}
	free(j->nodes);
	free(j);
}

static int job_fail(struct pep_job *j, const char *type, const char *cond, const char *ps_cond,
		    const char *text)
{
	j->failed = true;
	j->err = (struct pubsub_err){type, cond, ps_cond, NULL, text};
	return FG_OK;
}

static int keep_item(void *ud, const char *id, const char *xml, long long at_ms)
{
	(void)at_ms;
	struct pep_job *j = ud;
	size_t len = strlen(xml);
	if (j->nitems && j->items_bytes + len > PEP_ANSWER_BYTES)
		return 1;
	struct item_out *n = realloc(j->items, (j->nitems + 1) * sizeof(*n));
	if (!n)
		return 1;
	j->items = n;
	n[j->nitems].id = strdup(id);
	n[j->nitems].xml = strdup(xml);
	if (n[j->nitems].id && n[j->nitems].xml) {
		j->items_bytes += len;
		j->nitems++;
	} else {
		free(n[j->nitems].id);
		free(n[j->nitems].xml);
	}
	return 0;
}

/* JOB_LAST reads the caps it was given on this thread: an entry's notify
 * list is written once, before it is known, and it is known before the
 * job is queued (the queue's lock orders the two); the job holds a
 * reference, so the entry stays. */
static int keep_node(void *ud, const char *node, const struct pubsub_conf *c, const char *id,
		     const char *xml)
{
	struct pep_job *j = ud;
	if (j->kind == JOB_LAST && (!id || !xml || !caps_wants(j->caps, node)))
		return 0;
	if (j->kind == JOB_DISCO && !pubsub_may_read(c->access, &j->asker, &j->err))
		return 0;
	struct node_out *n = realloc(j->nodes, (j->nnodes + 1) * sizeof(*n));
	if (!n)
		return 1;
	j->nodes = n;
	memset(&n[j->nnodes], 0, sizeof(*n));
	n[j->nnodes].conf = *c;
	n[j->nnodes].node = strdup(node);
	n[j->nnodes].id = id ? strdup(id) : NULL;
	n[j->nnodes].xml = xml && j->kind == JOB_LAST ? strdup(xml) : NULL;
	j->nnodes++;
	return 0;
}

static int run_publish(struct store_db *db, struct pep_job *j, char *err, size_t errlen)
{
	const struct pubsub_req *r = &j->req;
	bool found;
	int rc = store_db_pep_node_get(db, j->owner, r->node, &j->conf, &found, err, errlen);
	if (rc != FG_OK)
		return rc;
	if (found && !pubsub_preconditions_met(&r->opts, r->opts_set, &j->conf))
		return job_fail(j, "cancel", "conflict", "precondition-not-met",
				"the node's configuration does not match the publish-options");
	if (!found) {
		long n;
		if ((rc = store_db_pep_node_count(db, j->owner, &n, err, errlen)) != FG_OK)
			return rc;
		if (n >= j->cap_nodes)
			return job_fail(j, "wait", "resource-constraint", NULL,
					"the account has as many nodes as it may");
		/* Auto-create (XEP-0163 §3): PEP's defaults, with what the
		 * publish-options ask. */
		j->conf = r->opts;
		if ((rc = store_db_pep_node_put(db, j->owner, r->node, &j->conf, err, errlen)) !=
		    FG_OK)
			return rc;
	}
	return store_db_pep_item_put(db, j->owner, r->node, j->item_id, j->payload_xml, fg_now_ms(),
				     j->conf.persist ? j->conf.max_items : 1, err, errlen);
}

static int run_request(struct store_db *db, struct pep_job *j, char *err, size_t errlen)
{
	const struct pubsub_req *r = &j->req;
	bool found;
	int rc;
	if (r->op == PUBSUB_OP_PUBLISH)
		return run_publish(db, j, err, errlen);
	rc = store_db_pep_node_get(db, j->owner, r->node, &j->conf, &found, err, errlen);
	if (rc != FG_OK)
		return rc;
	if (r->op == PUBSUB_OP_CREATE) {
		long n;
		if (found)
			return job_fail(j, "cancel", "conflict", NULL, "the node exists");
		if ((rc = store_db_pep_node_count(db, j->owner, &n, err, errlen)) != FG_OK)
			return rc;
		if (n >= j->cap_nodes)
			return job_fail(j, "wait", "resource-constraint", NULL,
					"the account has as many nodes as it may");
		j->conf = r->opts;
		return store_db_pep_node_put(db, j->owner, r->node, &j->conf, err, errlen);
	}
	if (!found)
		return job_fail(j, "cancel", "item-not-found", NULL, "there is no such node");
	switch (r->op) {
	case PUBSUB_OP_ITEMS:
		if (!pubsub_may_read(j->conf.access, &j->asker, &j->err)) {
			j->failed = true;
			return FG_OK;
		}
		return store_db_pep_items(db, j->owner, r->node, r->ids, r->nids, r->max_items,
					  keep_item, j, err, errlen);
	case PUBSUB_OP_RETRACT:
		for (size_t i = 0; i < r->nids; i++) {
			bool one;
			rc = store_db_pep_retract(db, j->owner, r->node, r->ids[i], &one, err,
						  errlen);
			if (rc != FG_OK)
				return rc;
			j->found_any |= one;
		}
		if (!j->found_any)
			return job_fail(j, "cancel", "item-not-found", NULL,
					"the node has no such item");
		return FG_OK;
	case PUBSUB_OP_DELETE:
		return store_db_pep_node_delete(db, j->owner, r->node, &found, err, errlen);
	case PUBSUB_OP_PURGE: return store_db_pep_purge(db, j->owner, r->node, err, errlen);
	case PUBSUB_OP_CONFIGURE_GET: return FG_OK;
	case PUBSUB_OP_CONFIGURE_SET:
		if (r->opts_set & PUBSUB_SET_ACCESS)
			j->conf.access = r->opts.access;
		if (r->opts_set & PUBSUB_SET_MAX)
			j->conf.max_items = r->opts.max_items;
		if (r->opts_set & PUBSUB_SET_PERSIST)
			j->conf.persist = r->opts.persist;
		return store_db_pep_node_put(db, j->owner, r->node, &j->conf, err, errlen);
	default: assert(!"a parsed request has a known op"); return FG_ERR;
	}
}

static int job_run(struct store_db *db, void *ud, char *err, size_t errlen)
{
	struct pep_job *j = ud;
	if (j->kind != JOB_REQUEST)
		return store_db_pep_nodes(db, j->owner, keep_node, j, err, errlen);
	int rc = store_db_begin(db, err, errlen);
	if (rc != FG_OK)
		return rc;
	rc = run_request(db, j, err, errlen);
	return store_db_end(db, rc, err, errlen);
}

/* A stored payload (kept inside a <message/> so that xmlstream_parse_one
 * reads it back) as a tree; NULL when it cannot be read. */
static struct xml_node *payload_of(const char *xml)
{
	struct xml_node *wrapped = xmlstream_parse_one(xml);
	struct xml_node *inner = wrapped ? xml_first_element(wrapped) : NULL;
	struct xml_node *p = inner ? xml_clone(inner) : NULL;
	xml_free(&wrapped);
	return p;
}

static struct xml_node *item_el(struct xml_node *parent, const char *ns, const char *id,
				const char *xml)
{
	struct xml_node *it = xml_add_child(parent, ns, "item");
	if (!it)
		return NULL;
	xml_set_attr(it, NULL, "id", id);
	if (xml) {
		struct xml_node *p = payload_of(xml);
		if (p)
			xml_append_copy(it, p);
		xml_free(&p);
	}
	return it;
}

static void add_field(struct xml_node *x, const char *var, const char *type, const char *value)
{
	struct xml_node *f = xml_add_child(x, XML_NS_DATA, "field");
	struct xml_node *v = f ? xml_add_child(f, XML_NS_DATA, "value") : NULL;
	if (!v)
		return;
	xml_set_attr(f, NULL, "var", var);
	if (type)
		xml_set_attr(f, NULL, "type", type);
	xml_add_text(v, value, strlen(value));
}

static struct xml_node *config_form(const char *node, const struct pubsub_conf *c)
{
	struct xml_node *ps = xml_new(XML_NS_PUBSUB_OWNER, "pubsub");
	struct xml_node *cf = ps ? xml_add_child(ps, XML_NS_PUBSUB_OWNER, "configure") : NULL;
	struct xml_node *x = cf ? xml_add_child(cf, XML_NS_DATA, "x") : NULL;
	if (!x) {
		xml_free(&ps);
		return NULL;
	}
	char max[24];
	snprintf(max, sizeof(max), "%ld", c->max_items);
	xml_set_attr(cf, NULL, "node", node);
	xml_set_attr(x, NULL, "type", "form");
	add_field(x, "FORM_TYPE", "hidden", XML_NS_PUBSUB_CONFIG);
	add_field(x, "pubsub#access_model", "list-single", pubsub_access_name(c->access));
	add_field(x, "pubsub#max_items", "text-single", max);
	add_field(x, "pubsub#persist_items", "boolean", c->persist ? "true" : "false");
	return ps;
}

/* The event's child for a request that changed a node: NULL when nobody
 * is told (a retract without notify, create, configure). */
static struct xml_node *event_of(const struct pep_job *j)
{
	const struct pubsub_req *r = &j->req;
	struct xml_node *w = NULL;
	switch (r->op) {
	case PUBSUB_OP_PUBLISH:
		w = xml_new(XML_NS_PUBSUB_EVENT, "items");
		if (w) {
			struct xml_node *it = xml_add_child(w, XML_NS_PUBSUB_EVENT, "item");
			if (it) {
				xml_set_attr(it, NULL, "id", j->item_id);
				xml_append_copy(it, r->payload);
			}
		}
		break;
	case PUBSUB_OP_RETRACT:
		if (!r->notify)
			return NULL;
		w = xml_new(XML_NS_PUBSUB_EVENT, "items");
		for (size_t i = 0; w && i < r->nids; i++) {
			struct xml_node *rt = xml_add_child(w, XML_NS_PUBSUB_EVENT, "retract");
			if (rt)
				xml_set_attr(rt, NULL, "id", r->ids[i]);
		}
		break;
	case PUBSUB_OP_DELETE: w = xml_new(XML_NS_PUBSUB_EVENT, "delete"); break;
	case PUBSUB_OP_PURGE: w = xml_new(XML_NS_PUBSUB_EVENT, "purge"); break;
	default: return NULL;
	}
	if (w)
		xml_set_attr(w, NULL, "node", r->node);
	return w;
}

static void request_done(struct pep_job *j)
{
	struct xmpp_server *srv = j->srv;
	const struct pubsub_req *r = &j->req;
	struct xml_node *iq = j->iq, *res = NULL;
	if (j->failed) {
		j->iq = NULL;
		answer_error(srv, iq, j->owner, &j->err);
		return;
	}
	struct xml_node *ev = event_of(j);
	if (ev)
		notify(srv, j->owner, r->node, j->conf.access, ev);
	xml_free(&ev);
	if (r->op == PUBSUB_OP_PUBLISH) {
		res = xml_new(XML_NS_PUBSUB, "pubsub");
		struct xml_node *p = res ? xml_add_child(res, XML_NS_PUBSUB, "publish") : NULL;
		if (p) {
			xml_set_attr(p, NULL, "node", r->node);
			item_el(p, XML_NS_PUBSUB, j->item_id, NULL);
		}
	} else if (r->op == PUBSUB_OP_ITEMS && j->node_items) {
		res = xml_new("http://jabber.org/protocol/disco#items", "query");
		if (res)
			xml_set_attr(res, NULL, "node", r->node);
		for (size_t i = 0; res && i < j->nitems; i++) {
			struct xml_node *it = xml_add_child(res, NULL, "item");
			if (it) {
				xml_set_attr(it, NULL, "jid", j->owner);
				xml_set_attr(it, NULL, "name", j->items[i].id);
			}
		}
	} else if (r->op == PUBSUB_OP_ITEMS) {
		res = xml_new(XML_NS_PUBSUB, "pubsub");
		struct xml_node *is = res ? xml_add_child(res, XML_NS_PUBSUB, "items") : NULL;
		if (is)
			xml_set_attr(is, NULL, "node", r->node);
		for (size_t i = 0; is && i < j->nitems; i++)
			item_el(is, XML_NS_PUBSUB, j->items[i].id, j->items[i].xml);
	} else if (r->op == PUBSUB_OP_CONFIGURE_GET) {
		res = config_form(r->node, &j->conf);
	}
	j->iq = NULL;
	answer(srv, iq, j->owner, res);
}

/* The newest item of each node the resource asked for and may read
 * (XEP-0163 §4.3.3). */
static void last_done(struct pep_job *j)
{
	struct xmpp_server *srv = j->srv;
	for (size_t i = 0; i < j->nnodes; i++) {
		const struct node_out *n = &j->nodes[i];
		if (!may_read_full(srv, j->owner, j->to, n->conf.access))
			continue;
		struct xml_node *w = xml_new(XML_NS_PUBSUB_EVENT, "items");
		if (w) {
			xml_set_attr(w, NULL, "node", n->node);
			item_el(w, XML_NS_PUBSUB_EVENT, n->id, n->xml);
			send_event(srv, j->owner, j->to, w);
		}
		xml_free(&w);
	}
}

static void disco_done(struct pep_job *j)
{
	struct xml_node *q = xml_new("http://jabber.org/protocol/disco#items", "query");
	for (size_t i = 0; q && i < j->nnodes; i++) {
		struct xml_node *it = xml_add_child(q, NULL, "item");
		if (it) {
			xml_set_attr(it, NULL, "jid", j->owner);
			xml_set_attr(it, NULL, "node", j->nodes[i].node);
		}
	}
	struct xml_node *iq = j->iq;
	j->iq = NULL;
	answer(j->srv, iq, j->owner, q);
}

static void job_done(void *ud, int rc, const char *err)
{
	struct pep_job *j = ud;
	if (rc != FG_OK) {
		log_error("pep", "nodes of %s: %s", j->owner, err);
		if (j->iq) {
			struct xml_node *iq = j->iq;
			j->iq = NULL;
			struct pubsub_err e = {"wait", "internal-server-error", NULL, NULL,
					       "the personal eventing store failed"};
			answer_error(j->srv, iq, j->owner, &e);
		}
	} else if (j->kind == JOB_REQUEST) {
		request_done(j);
	} else if (j->kind == JOB_LAST) {
		last_done(j);
	} else {
		disco_done(j);
	}
	job_free(j);
}

/* Queues j, or answers its iq (if any) and frees it. */
static void submit(struct xmpp_server *srv, struct pep_job *j)
{
	if (srv->store && store_submit_keyed(srv->store, j->owner, job_run, job_done, j) == FG_OK)
		return;
	if (j->iq) {
		struct xml_node *iq = j->iq;
		j->iq = NULL;
		struct pubsub_err e = {"wait", "internal-server-error", NULL, NULL,
				       "the personal eventing store is not running"};
		answer_error(srv, iq, j->owner, &e);
	}
	job_free(j);
}

/* ---- requests ---- */

bool pep_is_request(const struct xml_node *iq)
{
	const char *t = xml_attr(iq, "type");
	if (!t || (strcmp(t, "get") != 0 && strcmp(t, "set") != 0))
		return false;
	return xml_child(iq, XML_NS_PUBSUB, "pubsub") ||
	       xml_child(iq, XML_NS_PUBSUB_OWNER, "pubsub");
}

/* The payload as stored text, inside a <message/> (payload_of). */
static char *serialize_payload(const struct xml_node *payload)
{
	struct xml_node *wrap = xml_new(XML_NS_SERVER, "message");
	struct xml_buf b = {0};
	char *out = NULL;
	if (wrap && xml_append_copy(wrap, payload) == FG_OK) {
		struct xml_ctx ctx = {.default_ns = XML_NS_SERVER};
		xml_serialize(wrap, &ctx, &b);
		if (!b.oom)
			out = strndup(b.data, b.len);
	}
	xml_buf_free(&b);
	xml_free(&wrap);
	return out;
}

static struct pep_job *job_new(struct xmpp_server *srv, enum job_kind kind, const char *owner)
{
	struct pep_job *j = calloc(1, sizeof(*j));
	if (!j)
		return NULL;
	j->srv = srv;
	j->kind = kind;
	j->cap_items = cap_items(srv);
	j->cap_nodes = cap_nodes(srv);
	if (!(j->owner = strdup(owner))) {
		free(j);
		return NULL;
	}
	return j;
}

/* The account a request to it is about, and who asks; false when the
 * addresses make no sense (then answered). */
static bool who(struct xmpp_server *srv, struct session *own, struct xml_node *iq, char **owner,
		struct pubsub_asker *a)
{
	char *domain = NULL;
	*owner = own ? strdup(session_bare(own)) : bare_of(xml_attr(iq, "to"), NULL);
	char *asker = bare_of(xml_attr(iq, "from"), &domain);
	bool ok = *owner && asker;
	if (ok)
		asker_facts(srv, *owner, asker, domain, a);
	free(asker);
	free(domain);
	return ok;
}

void pep_iq(struct xmpp_server *srv, struct session *own, struct xml_node *iq)
{
	char *owner;
	struct pubsub_asker a;
	struct pubsub_err e;
	struct pubsub_req r;
	if (!who(srv, own, iq, &owner, &a)) {
		free(owner);
		srv->bounce(srv, iq, "modify", "jid-malformed", "the addresses are not JIDs");
		return;
	}
	if (pubsub_parse(iq, cap_items(srv), &r, &e) != FG_OK) {
		answer_error(srv, iq, owner, &e);
		free(owner);
		return;
	}
	if (r.owner_only && !a.owner) {
		e = (struct pubsub_err){"auth", "forbidden", NULL, NULL,
					"only the account itself changes its nodes"};
		answer_error(srv, iq, owner, &e);
		free(owner);
		return;
	}
	struct pep_job *j = job_new(srv, JOB_REQUEST, owner);
	free(owner);
	if (!j) {
		srv->bounce(srv, iq, "wait", "resource-constraint", "out of memory");
		return;
	}
	j->iq = iq;
	j->req = r; /* points into iq, which the job holds */
	j->asker = a;
	if (r.op == PUBSUB_OP_PUBLISH) {
		char id[40];
		static unsigned seq;
		if (!r.item_id)
			snprintf(id, sizeof(id), "%llx-%x", (unsigned long long)fg_now_ms(), ++seq);
		j->item_id = strdup(r.item_id ? r.item_id : id);
		j->payload_xml = serialize_payload(r.payload);
		if (!j->item_id || !j->payload_xml) {
			j->iq = NULL;
			job_free(j);
			srv->bounce(srv, iq, "wait", "resource-constraint", "out of memory");
			return;
		}
		if (strlen(j->payload_xml) > cap_bytes(srv)) {
			e = (struct pubsub_err){"modify", "not-acceptable", "payload-too-big", NULL,
						"the item is larger than this service keeps"};
			j->iq = NULL;
			answer_error(srv, iq, j->owner, &e);
			job_free(j);
			return;
		}
	}
	submit(srv, j);
}

void pep_disco_items(struct xmpp_server *srv, struct session *own, struct xml_node *iq)
{
	char *owner;
	struct pubsub_asker a;
	if (!who(srv, own, iq, &owner, &a)) {
		free(owner);
		srv->bounce(srv, iq, "modify", "jid-malformed", "the addresses are not JIDs");
		return;
	}
	const struct xml_node *q = xml_child(iq, "http://jabber.org/protocol/disco#items", "query");
	const char *node = q ? xml_attr(q, "node") : NULL;
	struct pep_job *j = job_new(srv, node ? JOB_REQUEST : JOB_DISCO, owner);
	free(owner);
	if (!j) {
		srv->bounce(srv, iq, "wait", "resource-constraint", "out of memory");
		return;
	}
	j->iq = iq;
	j->asker = a;
	if (node) {
		/* A node's items are read as an items request is, with its
		 * access decision; the answer names them. */
		j->node_items = true;
		j->req.op = PUBSUB_OP_ITEMS;
		j->req.node = node; /* in iq, which the job holds */
	}
	submit(srv, j);
}

void pep_disco_info(struct xml_node *q)
{
	static const char *const features[] = {
		"access-open",	    "access-presence",
		"access-roster",    "access-whitelist",
		"auto-create",	    "config-node",
		"create-nodes",	    "delete-items",
		"delete-nodes",	    "filtered-notifications",
		"item-ids",	    "last-published",
		"persistent-items", "presence-notifications",
		"publish",	    "publish-options",
		"purge-nodes",	    "retract-items",
		"retrieve-items",
	};
	const char *ns = "http://jabber.org/protocol/disco#info";
	struct xml_node *id = xml_add_child(q, ns, "identity");
	if (id) {
		xml_set_attr(id, NULL, "category", "pubsub");
		xml_set_attr(id, NULL, "type", "pep");
	}
	struct xml_node *f = xml_add_child(q, ns, "feature");
	if (f)
		xml_set_attr(f, NULL, "var", XML_NS_PUBSUB);
	for (size_t i = 0; i < FG_ARRAY_LEN(features); i++) {
		char var[100];
		snprintf(var, sizeof(var), "%s#%s", XML_NS_PUBSUB, features[i]);
		if ((f = xml_add_child(q, ns, "feature")))
			xml_set_attr(f, NULL, "var", var);
	}
}

/* ---- who is online with which capabilities ---- */

/* Sends full the newest item of each node its caps ask for (when known;
 * else when the answer comes, pep_domain_iq). */
static void send_last(struct xmpp_server *srv, const char *owner, const char *full, struct caps *c)
{
	if (!c || !c->known || !c->nnotify)
		return;
	struct pep_job *j = job_new(srv, JOB_LAST, owner);
	if (!j)
		return;
	j->caps = caps_ref(c);
	if (!(j->to = strdup(full))) {
		job_free(j);
		return;
	}
	submit(srv, j);
}

static void caps_free_value(void *v)
{
	struct caps *c = v;
	caps_put(&c);
}

static void strmap_free_watchers(void *v)
{
	struct strmap *w = v;
	strmap_free(&w, caps_free_value);
}

void pep_own_presence(struct xmpp_server *srv, struct session *c, const struct xml_node *st)
{
	const char *type = xml_attr(st, "type");
	if (type && *type) {
		session_set_caps(c, NULL);
		return;
	}
	const char *owner = session_bare(c);
	const char *at = strchr(owner, '@');
	struct caps *nc = caps_of_presence(srv, st, session_full(c), at ? at + 1 : owner);
	bool changed = nc != session_caps(c);
	session_set_caps(c, nc);
	if (changed)
		send_last(srv, owner, session_full(c), nc);
}

void pep_contact_presence(struct xmpp_server *srv, const char *user, const struct xml_node *st)
{
	const char *type = xml_attr(st, "type"), *from = xml_attr(st, "from");
	if (!from || !strchr(from, '/'))
		return;
	struct strmap *w = watchers_of(srv, user);
	if (type && *type) {
		if (w) {
			struct caps *old = strmap_remove(w, from);
			caps_put(&old);
		}
		return;
	}
	const char *at = strchr(user, '@');
	if (!xml_child(st, XML_NS_CAPS, "c") || !at)
		return;
	/* Whom nothing may reach (SPEC §4's public-unverified non-contact,
	 * whom the user blocks) is not even asked for capabilities. */
	if (!may_read_full(srv, user, from, PUBSUB_OPEN))
		return;
	if (!srv->pep) {
		struct pep *p = calloc(1, sizeof(*p));
		if (!p || !(p->owners = strmap_new())) {
			free(p);
			return;
		}
		srv->pep = p;
	}
	if (!w) {
		if (!(w = strmap_new()))
			return;
		if (strmap_put(srv->pep->owners, user, w, NULL) != FG_OK) {
			strmap_free(&w, NULL);
			return;
		}
	}
	struct caps *old = strmap_get(w, from);
	if (!old && strmap_count(w) >= PEP_WATCHERS_MAX)
		return;
	struct caps *nc = caps_of_presence(srv, st, from, at + 1);
	if (!nc) {
		old = strmap_remove(w, from);
		caps_put(&old);
		return;
	}
	if (nc == old) {
		caps_put(&nc); /* the same entity again: nothing new to send */
		return;
	}
	if (strmap_put(w, from, nc, (void **)&old) != FG_OK) {
		caps_put(&nc);
		return;
	}
	caps_put(&old);
	send_last(srv, user, from, nc);
}

struct resolved_ctx {
	struct xmpp_server *srv;
	struct caps *c;	     /* the entry filled */
	struct caps *shared; /* an unverified answer: the entry its holder had */
	const char *who;     /* ... and that holder */
	const char *owner;
};

static int resolved_watcher(void *ud, const char *full, void *value)
{
	struct resolved_ctx *r = ud;
	if (r->shared && value == r->shared && !strcmp(full, r->who)) {
		/* The key is there: its value is replaced in place, which
		 * strmap_each allows (no entry is added or moved). */
		struct caps *old = NULL;
		strmap_put(strmap_get(r->srv->pep->owners, r->owner), full, caps_ref(r->c),
			   (void **)&old);
		caps_put(&old);
		value = r->c;
	}
	if (value == r->c)
		send_last(r->srv, r->owner, full, value);
	return 0;
}

static int resolved_owner(void *ud, const char *owner, void *value)
{
	struct resolved_ctx *r = ud;
	r->owner = owner;
	strmap_each(value, resolved_watcher, r);
	return 0;
}

static void resolved_session(void *ud, struct session *s)
{
	struct resolved_ctx *r = ud;
	if (r->shared && session_caps(s) == r->shared && !strcmp(session_full(s), r->who))
		session_set_caps(s, caps_ref(r->c));
	if (session_caps(s) == r->c)
		send_last(r->srv, session_bare(s), session_full(s), session_caps(s));
}

bool pep_domain_iq(struct xmpp_server *srv, struct xml_node *iq)
{
	struct caps *c, *shared;
	char *who = xml_attr(iq, "from") ? strdup(xml_attr(iq, "from")) : NULL;
	if (!who || !caps_answer(srv, iq, &c, &shared)) {
		free(who);
		return false;
	}
	/* Everyone who showed these capabilities meanwhile gets what they
	 * asked for now. */
	struct resolved_ctx r = {srv, c, shared, who, NULL};
	if (c) {
		session_each(srv, resolved_session, &r);
		if (srv->pep)
			strmap_each(srv->pep->owners, resolved_owner, &r);
	}
	free(who);
	return true;
}

void pep_free_all(struct xmpp_server *srv)
{
	if (!srv->pep)
		return;
	strmap_free(&srv->pep->owners, strmap_free_watchers);
	free(srv->pep);
	srv->pep = NULL;
}

#include "roster.h"

#include "session.h"
#include "fg.h"
#include "jid.h"
#include "live.h"
#include "log.h"
#include "users.h"
#include "xmpp.h"
#include "store.h"
#include "store_users.h"
#include "strmap.h"

#include <assert.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Groups and names are client-controlled: capped so that one roster
 * cannot take the server's memory. */
#define ROSTER_MAX_ITEMS  2000
#define ROSTER_MAX_GROUPS 32
#define ROSTER_MAX_TEXT	  1023

struct roster_item_ext {
	struct roster_item it;
	bool hidden;
};

struct roster {
	char *user;
	struct roster_item_ext *items;
	size_t n, cap;
	/* RFC 6121 §2.6: raised by every change a push announces, stored */
	unsigned long long ver;
};

static void item_clear(struct roster_item *it)
{
	free(it->contact);
	free(it->name);
	for (size_t i = 0; i < it->ngroups; i++)
		free(it->groups[i]);
	free(it->groups);
	free(it->pending_in_xml);
	memset(it, 0, sizeof(*it));
}

static void roster_destroy(void *v)
{
	struct roster *r = v;
	for (size_t i = 0; i < r->n; i++)
		item_clear(&r->items[i].it);
	free(r->items);
	free(r->user);
	free(r);
}

struct roster *roster_of(struct xmpp_server *srv, const char *user, bool create)
{
	if (!srv->rosters && !(srv->rosters = strmap_new()))
		return NULL;
	struct roster *r = strmap_get(srv->rosters, user);
	if (r || !create)
		return r;
	r = calloc(1, sizeof(*r));
	if (!r || !(r->user = strdup(user)) || strmap_put(srv->rosters, user, r, NULL) != FG_OK) {
		if (r)
			free(r->user);
		free(r);
		return NULL;
	}
	return r;
}

static struct roster_item_ext *find_ext(struct roster *r, const char *contact)
{
	for (size_t i = 0; r && i < r->n; i++)
		if (strcmp(r->items[i].it.contact, contact) == 0)
			return &r->items[i];
	return NULL;
}

struct roster_item *roster_find(struct roster *r, const char *contact)
{
	struct roster_item_ext *e = find_ext(r, contact);
	return e ? &e->it : NULL;
}

struct roster_item *roster_add(struct roster *r, const char *contact)
{
	if (r->n >= ROSTER_MAX_ITEMS)
		return NULL;
	if (r->n == r->cap) {
		size_t cap = r->cap ? r->cap * 2 : 8;
		void *p = realloc(r->items, cap * sizeof(*r->items));
		if (!p)
			return NULL;
		r->items = p;
		r->cap = cap;
	}
	struct roster_item_ext *e = &r->items[r->n];
	memset(e, 0, sizeof(*e));
	if (!(e->it.contact = strdup(contact)))
		return NULL;
	r->n++;
	return &e->it;
}

size_t roster_count(const struct roster *r)
{
	return r ? r->n : 0;
}

struct roster_item *roster_at(struct roster *r, size_t i)
{
	return &r->items[i].it;
}

static struct roster_item_ext *ext_of(struct roster_item *it)
{
	return (struct roster_item_ext *)it;
}

void roster_set_hidden(struct roster_item *it, bool hidden)
{
	ext_of(it)->hidden = hidden;
}

bool roster_hidden(const struct roster_item *it)
{
	return ((const struct roster_item_ext *)it)->hidden;
}

void roster_drop_user(struct xmpp_server *srv, const char *user)
{
	if (srv->rosters) {
		struct roster *r = strmap_remove(srv->rosters, user);
		if (r)
			roster_destroy(r);
	}
}

void roster_free_all(struct xmpp_server *srv)
{
	strmap_free(&srv->rosters, roster_destroy);
}

const char *roster_subscription(const struct roster_item *it)
{
	return it->sub_to && it->sub_from ? "both"
	       : it->sub_to		  ? "to"
	       : it->sub_from		  ? "from"
					  : "none";
}

bool roster_has(struct xmpp_server *srv, const char *user, const char *contact)
{
	struct roster_item *it = roster_find(roster_of(srv, user, false), contact);
	return it && !roster_hidden(it);
}

static int set_groups_json(struct roster_item *it, const char *text)
{
	json_t *a = json_loads(text ? text : "[]", 0, NULL);
	size_t n = json_is_array(a) ? json_array_size(a) : 0;
	if (n) {
		it->groups = calloc(n, sizeof(*it->groups));
		if (!it->groups) {
			json_decref(a);
			return FG_NOMEM;
		}
	}
	for (size_t i = 0; i < n; i++) {
		const char *g = json_string_value(json_array_get(a, i));
		if (g && (it->groups[it->ngroups] = strdup(g)))
			it->ngroups++;
	}
	json_decref(a);
	return FG_OK;
}

static char *groups_json(const struct roster_item *it)
{
	json_t *a = json_array();
	for (size_t i = 0; i < it->ngroups; i++)
		json_array_append_new(a, json_string(it->groups[i]));
	char *s = json_dumps(a, JSON_COMPACT);
	json_decref(a);
	return s;
}

static int load_row(void *ud, const struct roster_row *row)
{
	struct xmpp_server *srv = ud;
	struct roster *r = roster_of(srv, row->user, true);
	struct roster_item *it = r ? roster_add(r, row->contact) : NULL;
	if (!it)
		return 1;
	it->name = row->name && *row->name ? strdup(row->name) : NULL;
	it->sub_to = row->sub_to;
	it->sub_from = row->sub_from;
	it->ask_out = row->ask_out;
	it->pending_in = row->pending_in;
	it->approved = row->approved;
	it->pending_in_xml = row->pending_in_xml ? strdup(row->pending_in_xml) : NULL;
	roster_set_hidden(it, row->hidden);
	return set_groups_json(it, row->groups) == FG_OK ? 0 : 1;
}

static int load_ver(void *ud, const char *user, unsigned long long ver)
{
	struct roster *r = roster_of(ud, user, true);
	if (!r)
		return 1;
	r->ver = ver;
	return 0;
}

int roster_load_all(struct xmpp_server *srv, struct store_db *db, char *err, size_t errlen)
{
	int rc = store_db_roster_load(db, load_row, srv, err, errlen);
	if (rc == FG_OK)
		rc = store_db_roster_ver_load(db, load_ver, srv, err, errlen);
	return rc;
}

/* The version text: the counter with the account's creation time before
 * it, so that an account removed and made again never repeats a version
 * some client still holds for the old one's roster. */
static void ver_text(struct xmpp_server *srv, const struct roster *r, const char *user, char *buf,
		     size_t len)
{
	assert(len >= ROSTER_VER_LEN);
	const struct account *a = srv->live ? accounts_get(srv->live->users, user) : NULL;
	snprintf(buf, len, "%llx-%llu", a ? (unsigned long long)a->created_ms : 0ULL,
		 r ? r->ver : 0ULL);
}

void roster_version(struct xmpp_server *srv, const char *user, char *buf, size_t len)
{
	ver_text(srv, roster_of(srv, user, false), user, buf, len);
}

/* ---- write-through to the store thread ---- */

struct save_job {
	struct xmpp_server *srv;
	char *user, *contact, *name, *groups, *pending;
	bool sub_to, sub_from, ask_out, pending_in, approved, hidden, remove;
	unsigned long long ver;
};

static void save_job_free(struct save_job *j)
{
	free(j->user);
	free(j->contact);
	free(j->name);
	free(j->groups);
	free(j->pending);
	free(j);
}

static int save_run(struct store_db *db, void *ud, char *err, size_t errlen)
{
	struct save_job *j = ud;
	int rc = store_db_roster_ver_put(db, j->user, j->ver, err, errlen);
	if (rc != FG_OK)
		return rc;
	if (j->remove)
		return store_db_roster_delete(db, j->user, j->contact, err, errlen);
	struct roster_row row = {
		.user = j->user,
		.contact = j->contact,
		.name = j->name,
		.groups = j->groups ? j->groups : "[]",
		.sub_to = j->sub_to,
		.sub_from = j->sub_from,
		.ask_out = j->ask_out,
		.pending_in = j->pending_in,
		.approved = j->approved,
		.pending_in_xml = j->pending,
		.hidden = j->hidden,
	};
	return store_db_roster_put(db, &row, err, errlen);
}

static void save_done(void *ud, int rc, const char *err)
{
	struct save_job *j = ud;
	if (rc != FG_OK)
		log_error("roster", "cannot save %s's contact %s: %s", j->user, j->contact, err);
	else if (j->srv->roster_saved)
		j->srv->roster_saved(j->srv, j->user); /* the other nodes read it again */
	save_job_free(j);
}

static void save(struct xmpp_server *srv, const char *user, const struct roster_item *it,
		 const char *contact)
{
	struct save_job *j = calloc(1, sizeof(*j));
	if (!j)
		goto oom;
	struct roster *r = roster_of(srv, user, false);
	j->srv = srv;
	j->ver = r ? r->ver : 0;
	j->user = strdup(user);
	j->contact = strdup(it ? it->contact : contact);
	if (!j->user || !j->contact)
		goto oom;
	if (!it) {
		j->remove = true;
	} else {
		j->name = it->name ? strdup(it->name) : NULL;
		j->groups = groups_json(it);
		j->pending = it->pending_in_xml ? strdup(it->pending_in_xml) : NULL;
		j->sub_to = it->sub_to;
		j->sub_from = it->sub_from;
		j->ask_out = it->ask_out;
		j->pending_in = it->pending_in;
		j->approved = it->approved;
		j->hidden = roster_hidden(it);
	}
	if (!srv->store || store_submit_keyed(srv->store, j->user, save_run, save_done, j) != FG_OK)
		goto oom;
	return;
oom:
	log_error("roster", "cannot save %s's roster: out of memory", user);
	if (j)
		save_job_free(j);
}

/* ---- reading one user's roster again (a cluster's other node changed it) ---- */

struct reload_job {
	struct xmpp_server *srv;
	char *user;
	struct roster_row *rows; /* copies, strings owned */
	size_t n, cap;
	unsigned long long ver;
	bool has_ver;
	bool oom; /* a row could not be copied: the roster read is not whole */
};

static char *dup_or_null(const char *s)
{
	return s ? strdup(s) : NULL;
}

static int reload_row(void *ud, const struct roster_row *row)
{
	struct reload_job *j = ud;
	assert(strcmp(row->user, j->user) == 0);
	if (j->n == j->cap) {
		size_t cap = j->cap ? j->cap * 2 : 16;
		struct roster_row *v = realloc(j->rows, cap * sizeof(*v));
		if (!v) {
			j->oom = true;
			return 1;
		}
		j->rows = v;
		j->cap = cap;
	}
	struct roster_row *c = &j->rows[j->n++];
	*c = *row;
	c->user = j->user;
	c->contact = dup_or_null(row->contact);
	c->name = dup_or_null(row->name);
	c->groups = dup_or_null(row->groups);
	c->pending_in_xml = dup_or_null(row->pending_in_xml);
	if (!c->contact || (row->name && !c->name) || (row->groups && !c->groups) ||
	    (row->pending_in_xml && !c->pending_in_xml)) {
		j->oom = true;
		return 1;
	}
	return 0;
}

/* Only this user's rows: with many users, a change of one roster must not
 * read every roster of the store on every node. */
static int reload_run(struct store_db *db, void *ud, char *err, size_t errlen)
{
	struct reload_job *j = ud;
	int rc = store_db_roster_load_user(db, j->user, reload_row, j, &j->ver, &j->has_ver, err,
					   errlen);
	if (rc == FG_OK && j->oom) {
		snprintf(err, errlen, "out of memory");
		return FG_NOMEM;
	}
	return rc;
}

static void reload_free(struct reload_job *j)
{
	for (size_t i = 0; i < j->n; i++) {
		free((char *)j->rows[i].contact);
		free((char *)j->rows[i].name);
		free((char *)j->rows[i].groups);
		free((char *)j->rows[i].pending_in_xml);
	}
	free(j->rows);
	free(j->user);
	free(j);
}

static void reload_done(void *ud, int rc, const char *err)
{
	struct reload_job *j = ud;
	if (rc != FG_OK) {
		log_warn("roster", "cannot read %s's roster again: %s", j->user, err);
	} else {
		/* The store has the newest: it replaces what this node had. */
		roster_drop_user(j->srv, j->user);
		for (size_t i = 0; i < j->n; i++)
			load_row(j->srv, &j->rows[i]);
		if (j->has_ver)
			load_ver(j->srv, j->user, j->ver);
	}
	reload_free(j);
}

void roster_reload(struct xmpp_server *srv, const char *user)
{
	struct reload_job *j = calloc(1, sizeof(*j));
	if (!j || !(j->user = strdup(user))) {
		free(j);
		return;
	}
	j->srv = srv;
	if (!srv->store ||
	    store_submit_keyed(srv->store, user, reload_run, reload_done, j) != FG_OK)
		reload_free(j);
}

/* ---- the protocol ---- */

static struct xml_node *item_xml(struct xml_node *query, const struct roster_item *it, bool removed)
{
	struct xml_node *n = xml_add_child(query, XML_NS_ROSTER, "item");
	if (!n)
		return NULL;
	xml_set_attr(n, NULL, "jid", it->contact);
	if (removed) {
		xml_set_attr(n, NULL, "subscription", "remove");
		return n;
	}
	if (it->name)
		xml_set_attr(n, NULL, "name", it->name);
	xml_set_attr(n, NULL, "subscription", roster_subscription(it));
	if (it->ask_out)
		xml_set_attr(n, NULL, "ask", "subscribe");
	if (it->approved)
		xml_set_attr(n, NULL, "approved", "true");
	for (size_t i = 0; i < it->ngroups; i++) {
		struct xml_node *g = xml_add_child(n, XML_NS_ROSTER, "group");
		if (g)
			xml_add_text(g, it->groups[i], strlen(it->groups[i]));
	}
	return n;
}

static void push(struct xmpp_server *srv, const char *user, const struct roster_item *it,
		 bool removed)
{
	static unsigned long seq;
	struct roster *r = roster_of(srv, user, false);
	char ver[ROSTER_VER_LEN];
	ver_text(srv, r, user, ver, sizeof(ver));
	for (struct session *c = session_first(srv, user); c; c = session_next(c)) {
		if (!session_presence(c)->interested)
			continue;
		char id[32];
		snprintf(id, sizeof(id), "push%lu", ++seq);
		struct xml_node *iq = xml_new(XML_NS_SERVER, "iq");
		struct xml_node *q = iq ? xml_add_child(iq, XML_NS_ROSTER, "query") : NULL;
		if (!q) {
			xml_free(&iq);
			continue;
		}
		xml_set_attr(iq, NULL, "type", "set");
		xml_set_attr(iq, NULL, "id", id);
		xml_set_attr(iq, NULL, "to", session_full(c));
		xml_set_attr(q, NULL, "ver", ver);
		item_xml(q, it, removed);
		session_deliver(c, iq);
	}
}

/* A change the user's resources see: a new roster version. */
static void bump(struct xmpp_server *srv, const char *user)
{
	struct roster *r = roster_of(srv, user, false);
	if (r)
		r->ver++;
}

void roster_changed(struct xmpp_server *srv, const char *user, struct roster_item *it)
{
	if (!roster_hidden(it))
		bump(srv, user);
	save(srv, user, it, NULL);
	if (!roster_hidden(it))
		push(srv, user, it, false);
}

void roster_remove(struct xmpp_server *srv, const char *user, const char *contact)
{
	struct roster *r = roster_of(srv, user, false);
	struct roster_item_ext *e = find_ext(r, contact);
	if (!e)
		return;
	bool was_visible = !e->hidden;
	struct roster_item copy = e->it;
	if (was_visible)
		bump(srv, user);
	save(srv, user, NULL, contact);
	if (was_visible)
		push(srv, user, &copy, true);
	item_clear(&e->it);
	size_t i = (size_t)(e - r->items);
	memmove(&r->items[i], &r->items[i + 1], (r->n - i - 1) * sizeof(*r->items));
	r->n--;
}

static void fail(struct xmpp_server *srv, struct xml_node *iq, const char *type, const char *cond,
		 const char *text)
{
	srv->bounce(srv, iq, type, cond, text);
}

/* Sends a subscription-type presence from user to contact on the user's
 * behalf (removing an item cancels both directions, RFC 6121 §2.5.2). */
static void send_sub(struct xmpp_server *srv, const char *user, const char *contact,
		     const char *type)
{
	struct xml_node *p = xml_new(XML_NS_SERVER, "presence");
	if (!p)
		return;
	xml_set_attr(p, NULL, "from", user);
	xml_set_attr(p, NULL, "to", contact);
	xml_set_attr(p, NULL, "type", type);
	srv->route(srv, p);
}

static void roster_set(struct xmpp_server *srv, struct session *c, struct xml_node *iq,
		       const struct xml_node *q)
{
	const struct xml_node *item = xml_child(q, XML_NS_ROSTER, "item");
	const struct xml_node *other = item ? xml_next_element(item) : NULL;
	const char *jid_s = item ? xml_attr(item, "jid") : NULL;
	struct jid j = {0};
	if (!item || other || !jid_s || jid_parse(jid_s, strlen(jid_s), &j) != JID_OK) {
		fail(srv, iq, "modify", "bad-request",
		     "a roster set carries exactly one item with a valid jid");
		return;
	}
	char *contact = jid_to_string(&j, false);
	jid_clear(&j);
	const char *user = session_bare(c);
	const char *sub = xml_attr(item, "subscription");
	struct roster *r = roster_of(srv, user, true);
	if (!contact || !r) {
		free(contact);
		fail(srv, iq, "wait", "resource-constraint", "out of memory");
		return;
	}
	if (sub && strcmp(sub, "remove") == 0) {
		struct roster_item *it = roster_find(r, contact);
		if (!it || roster_hidden(it)) {
			free(contact);
			fail(srv, iq, "cancel", "item-not-found",
			     "that contact is not in the roster");
			return;
		}
		bool to = it->sub_to || it->ask_out, from = it->sub_from || it->pending_in;
		roster_remove(srv, user, contact);
		if (to)
			send_sub(srv, user, contact, "unsubscribe");
		if (from)
			send_sub(srv, user, contact, "unsubscribed");
		free(contact);
		session_reply(c, iq, NULL);
		return;
	}
	const char *name = xml_attr(item, "name");
	size_t ng = 0;
	for (struct xml_node *g = xml_first_element(item); g; g = xml_next_element(g))
		if (xml_is(g, XML_NS_ROSTER, "group"))
			ng++;
	if (ng > ROSTER_MAX_GROUPS || (name && strlen(name) > ROSTER_MAX_TEXT)) {
		free(contact);
		fail(srv, iq, "modify", "not-acceptable", "too many groups or a name too long");
		return;
	}
	struct roster_item *it = roster_find(r, contact);
	if (!it)
		it = roster_add(r, contact);
	free(contact);
	if (!it) {
		fail(srv, iq, "wait", "resource-constraint", "the roster is full");
		return;
	}
	free(it->name);
	it->name = name && *name ? strdup(name) : NULL;
	for (size_t i = 0; i < it->ngroups; i++)
		free(it->groups[i]);
	free(it->groups);
	it->groups = ng ? calloc(ng, sizeof(*it->groups)) : NULL;
	it->ngroups = 0;
	for (struct xml_node *g = xml_first_element(item); it->groups && g;
	     g = xml_next_element(g)) {
		const char *t = xml_is(g, XML_NS_ROSTER, "group") ? xml_text(g) : NULL;
		if (t && *t && strlen(t) <= ROSTER_MAX_TEXT &&
		    (it->groups[it->ngroups] = strdup(t)))
			it->ngroups++;
	}
	roster_set_hidden(it, false);
	roster_changed(srv, user, it);
	session_reply(c, iq, NULL);
}

void roster_iq(struct xmpp_server *srv, struct session *c, struct xml_node *iq)
{
	const char *type = xml_attr(iq, "type");
	const struct xml_node *q = xml_child(iq, XML_NS_ROSTER, "query");
	if (type && strcmp(type, "set") == 0) {
		roster_set(srv, c, iq, q);
		return;
	}
	if (!type || strcmp(type, "get") != 0) {
		xml_free(&iq);
		return;
	}
	session_presence(c)->interested = true;
	struct roster *r = roster_of(srv, session_bare(c), false);
	/* RFC 6121 §2.6.3: a client that holds the current version gets an
	 * empty result, then only pushes; any other version, the roster. */
	const char *cver = xml_attr(q, "ver");
	char ver[ROSTER_VER_LEN];
	ver_text(srv, r, session_bare(c), ver, sizeof(ver));
	if (cver && strcmp(cver, ver) == 0) {
		session_reply(c, iq, NULL);
		return;
	}
	struct xml_node *res = xml_new(XML_NS_ROSTER, "query");
	if (res && cver)
		xml_set_attr(res, NULL, "ver", ver);
	for (size_t i = 0; res && i < roster_count(r); i++)
		if (!r->items[i].hidden)
			item_xml(res, &r->items[i].it, false);
	session_reply(c, iq, res);
}

#include "presence.h"
#include "pep.h"

#include "blocking.h"
#include "session.h"
#include "live.h"
#include "conf.h"
#include "fg.h"
#include "jid.h"
#include "log.h"
#include "offline.h"
#include "policy.h"
#include "roster.h"
#include "xmpp.h"
#include "strmap.h"

#include <event2/event.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *type_of(const struct xml_node *st)
{
	const char *t = xml_attr(st, "type");
	return t ? t : "";
}

static struct xml_node *pres_new(const char *from, const char *to, const char *type)
{
	struct xml_node *p = xml_new(XML_NS_SERVER, "presence");
	if (!p)
		return NULL;
	xml_set_attr(p, NULL, "from", from);
	xml_set_attr(p, NULL, "to", to);
	if (type)
		xml_set_attr(p, NULL, "type", type);
	return p;
}

static void send_new(struct xmpp_server *srv, const char *from, const char *to, const char *type)
{
	struct xml_node *p = pres_new(from, to, type);
	if (p)
		srv->route(srv, p);
}

/* A copy of presence p, from `from` to `to`, routed. */
static void send_copy(struct xmpp_server *srv, const struct xml_node *p, const char *from,
		      const char *to)
{
	struct xml_node *c = xml_clone(p);
	if (!c)
		return;
	xml_set_attr(c, NULL, "from", from);
	xml_set_attr(c, NULL, "to", to);
	srv->route(srv, c);
}

/* The bare JID of an address, or NULL. */
static char *bare_of(const char *addr, char **resource)
{
	struct jid j = {0};
	if (resource)
		*resource = NULL;
	if (!addr || jid_parse(addr, strlen(addr), &j) != JID_OK)
		return NULL;
	char *b = jid_to_string(&j, true);
	if (resource && j.resource) {
		*resource = j.resource;
		j.resource = NULL;
	}
	jid_clear(&j);
	return b;
}

/* Stanza (taken) to every available resource of user. */
static void to_resources(struct xmpp_server *srv, const char *user, struct xml_node *st)
{
	for (struct session *c = session_first(srv, user); c; c = session_next(c)) {
		if (!session_presence(c)->last)
			continue;
		struct xml_node *copy = xml_clone(st);
		if (!copy)
			break;
		xml_set_attr(copy, NULL, "to", session_full(c));
		session_deliver(c, copy);
	}
	xml_free(&st);
}

/* What user's resources currently say, sent to one contact (after an
 * approval, in answer to a probe): unavailable when none is online. */
static void send_current(struct xmpp_server *srv, const char *user, const char *to)
{
	bool any = false;
	for (struct session *c = session_first(srv, user); c; c = session_next(c)) {
		struct session_presence *p = session_presence(c);
		if (p->last) {
			send_copy(srv, p->last, session_full(c), to);
			any = true;
		}
	}
	/* A resource on another node answers for itself (router.c sends it
	 * the probe): "unavailable" from here would contradict it. */
	if (!any && !(srv->cluster_elsewhere && srv->cluster_elsewhere(srv, user)))
		send_new(srv, user, to, "unavailable");
}

static bool is_local(struct xmpp_server *srv, const char *bare)
{
	const char *at = strchr(bare, '@');
	return conf_is_local_domain(srv->conf, at ? at + 1 : bare);
}

/* Whether addr (any JID text) is blocked by user, or matches item when
 * item is not NULL (XEP-0191). */
static bool blocked(struct xmpp_server *srv, const char *user, const struct jid *item,
		    const char *addr)
{
	if (!item && !blocking_any(srv, user))
		return false;
	struct jid j;
	if (jid_parse(addr, strlen(addr), &j) != JID_OK)
		return false;
	bool b = item ? blocking_matches(item, &j) : blocking_blocks(srv, user, &j);
	jid_clear(&j);
	return b;
}

/* ---- the user's side: what a client sends ---- */

static void broadcast(struct xmpp_server *srv, struct session *c, const struct xml_node *st)
{
	struct roster *r = roster_of(srv, session_bare(c), false);
	for (size_t i = 0; i < roster_count(r); i++) {
		struct roster_item *it = roster_at(r, i);
		/* XEP-0191 §3.3: a blocked contact sees the user offline. */
		if (it->sub_from && !blocked(srv, session_bare(c), NULL, it->contact))
			send_copy(srv, st, session_full(c), it->contact);
	}
	/* RFC 6121 §4.2.2, §4.4.2: the user's own resources see it too. */
	for (struct session *o = session_first(srv, session_bare(c)); o; o = session_next(o)) {
		if (!session_presence(o)->last && o != c)
			continue;
		struct xml_node *copy = xml_clone(st);
		if (copy) {
			xml_set_attr(copy, NULL, "from", session_full(c));
			xml_set_attr(copy, NULL, "to", session_full(o));
			session_deliver(o, copy);
		}
	}
	/* ... and those on the other nodes of a cluster */
	if (srv->cluster_to_own)
		srv->cluster_to_own(srv, st, session_full(c), session_bare(c));
}

static int send_unavailable_directed(void *ud, const char *key, void *value)
{
	void **a = ud;
	struct xmpp_server *srv = a[0];
	const struct xml_node *st = a[1];
	const char *from = a[2];
	(void)value;
	send_copy(srv, st, from, key);
	return 0;
}

static void go_unavailable(struct xmpp_server *srv, struct session *c, const struct xml_node *st)
{
	struct session_presence *p = session_presence(c);
	if (p->last)
		broadcast(srv, c, st);
	if (p->directed) {
		void *a[3] = {srv, (void *)st, (void *)session_full(c)};
		strmap_each(p->directed, send_unavailable_directed, a);
		strmap_free(&p->directed, NULL);
	}
	xml_free(&p->last);
}

/* First available presence of a session: learn the contacts' presence,
 * show requests that waited, hand over offline messages (XEP-0160). */
static void initial(struct xmpp_server *srv, struct session *c)
{
	const char *user = session_bare(c);
	struct roster *r = roster_of(srv, user, false);
	for (size_t i = 0; i < roster_count(r); i++) {
		struct roster_item *it = roster_at(r, i);
		if (it->sub_to)
			send_new(srv, user, it->contact, "probe");
		if (it->pending_in && !blocked(srv, user, NULL, it->contact)) {
			struct xml_node *sub = pres_new(it->contact, session_full(c), "subscribe");
			if (sub)
				session_deliver(c, sub);
		}
	}
	offline_deliver(srv, c);
}

static void outbound_sub(struct xmpp_server *srv, struct session *c, struct xml_node *st,
			 const char *type);

void presence_from_client(struct xmpp_server *srv, struct session *c, struct xml_node *st)
{
	/* A copy: the stanza is handed on before its type is done with. */
	char type[16];
	snprintf(type, sizeof(type), "%s", type_of(st));
	const char *to = xml_attr(st, "to");
	struct session_presence *p = session_presence(c);
	if (!strcmp(type, "subscribe") || !strcmp(type, "subscribed") ||
	    !strcmp(type, "unsubscribe") || !strcmp(type, "unsubscribed")) {
		outbound_sub(srv, c, st, type);
		return;
	}
	if (!strcmp(type, "probe") ||
	    (*type && strcmp(type, "unavailable") != 0 && strcmp(type, "error") != 0)) {
		xml_free(&st);
		return;
	}
	if (to) {
		/* Directed presence (RFC 6121 §4.6): remembered, so that
		 * unavailable reaches it too. */
		if (!*type) {
			if (!p->directed)
				p->directed = strmap_new();
			if (p->directed)
				strmap_put(p->directed, to, NULL, NULL);
		} else if (p->directed && !strcmp(type, "unavailable")) {
			strmap_remove(p->directed, to);
		}
		srv->route(srv, st);
		return;
	}
	if (!strcmp(type, "error")) {
		xml_free(&st);
		return;
	}
	if (!strcmp(type, "unavailable")) {
		pep_own_presence(srv, c, st);
		go_unavailable(srv, c, st);
		xml_free(&st);
		if (srv->cluster_session)
			srv->cluster_session(srv, c, false);
		return;
	}
	const struct xml_node *pri = xml_child(st, NULL, "priority");
	long v = pri ? strtol(xml_text(pri), NULL, 10) : 0;
	p->priority = v < -128 ? -128 : v > 127 ? 127 : (int)v;
	bool first = !p->initial;
	p->initial = true;
	xml_free(&p->last);
	p->last = st;
	xml_remove_attr(p->last, NULL, "to");
	if (srv->cluster_session)
		srv->cluster_session(srv, c, false);
	broadcast(srv, c, p->last);
	if (first)
		initial(srv, c);
	pep_own_presence(srv, c, p->last);
}

void presence_session_end(struct xmpp_server *srv, struct session *c)
{
	struct session_presence *p = session_presence(c);
	if (!p->last && !p->directed)
		return;
	struct xml_node *u = xml_new(XML_NS_SERVER, "presence");
	if (!u)
		return;
	xml_set_attr(u, NULL, "type", "unavailable");
	go_unavailable(srv, c, u);
	xml_free(&u);
}

void presence_gone_elsewhere(struct xmpp_server *srv, const char *full)
{
	char *user = bare_of(full, NULL);
	struct roster *r = user ? roster_of(srv, user, false) : NULL;
	for (size_t i = 0; i < roster_count(r); i++) {
		struct roster_item *it = roster_at(r, i);
		if (it->sub_from && !blocked(srv, user, NULL, it->contact))
			send_new(srv, full, it->contact, "unavailable");
	}
	free(user);
}

/* RFC 6121 §3: the user's half of the subscription state machine. */
static void outbound_sub(struct xmpp_server *srv, struct session *c, struct xml_node *st,
			 const char *type)
{
	const char *user = session_bare(c);
	char *contact = bare_of(xml_attr(st, "to"), NULL);
	struct roster *r = roster_of(srv, user, true);
	if (!contact || !r) {
		free(contact);
		srv->bounce(srv, st, "modify", "jid-malformed",
			    "a subscription request needs a valid 'to'");
		return;
	}
	xml_set_attr(st, NULL, "from", user);
	xml_set_attr(st, NULL, "to", contact);
	struct roster_item *it = roster_find(r, contact);
	bool route = true;
	if (!strcmp(type, "subscribe")) {
		if (!it)
			it = roster_add(r, contact);
		if (it) {
			roster_set_hidden(it, false);
			if (!it->sub_to)
				it->ask_out = true;
			roster_changed(srv, user, it);
		}
	} else if (!strcmp(type, "subscribed")) {
		if (it && it->pending_in) {
			it->sub_from = true;
			it->pending_in = false;
			roster_set_hidden(it, false);
			roster_changed(srv, user, it);
		} else if (!it || !it->sub_from) {
			/* §3.4: approved before the contact asks. */
			if (!it)
				it = roster_add(r, contact);
			if (it) {
				it->approved = true;
				roster_changed(srv, user, it);
			}
			route = false;
		} else {
			route = false;
		}
	} else if (!strcmp(type, "unsubscribe")) {
		if (it && (it->sub_to || it->ask_out)) {
			it->sub_to = it->ask_out = false;
			roster_changed(srv, user, it);
		}
	} else if (it && (it->sub_from || it->pending_in || it->approved)) {
		bool was_from = it->sub_from;
		it->sub_from = it->pending_in = it->approved = false;
		if (roster_hidden(it))
			roster_remove(srv, user, contact);
		else
			roster_changed(srv, user, it);
		if (was_from) {
			for (struct session *o = session_first(srv, user); o; o = session_next(o))
				if (session_presence(o)->last)
					send_new(srv, session_full(o), contact, "unavailable");
		}
	} else {
		route = false;
	}
	it = roster_find(r, contact);
	log_debug("presence", "%s sends %s to %s: subscription now %s%s", user, type, contact,
		  it ? roster_subscription(it) : "none (removed)", it && it->ask_out ? "+ask" : "");
	if (route)
		srv->route(srv, st);
	else
		xml_free(&st);
	if (!strcmp(type, "subscribed") && route)
		send_current(srv, user, contact);
	free(contact);
}

/* ---- the contact's side: presence arriving for a local account ---- */

static void auto_approve(struct xmpp_server *srv, const char *user, const char *contact,
			 struct roster *r, struct roster_item *it, const char *why)
{
	if (!it)
		it = roster_add(r, contact);
	if (!it)
		return;
	it->sub_from = true;
	it->pending_in = it->approved = false;
	roster_set_hidden(it, false);
	roster_changed(srv, user, it);
	log_info("presence", "%s's subscription to %s approved automatically: %s", contact, user,
		 why);
	send_new(srv, user, contact, "subscribed");
	send_current(srv, user, contact);
}

static void inbound_sub(struct xmpp_server *srv, struct xml_node *st, const char *user,
			const char *contact, const char *type)
{
	struct roster *r = roster_of(srv, user, true);
	struct roster_item *it = r ? roster_find(r, contact) : NULL;
	if (!r) {
		xml_free(&st);
		return;
	}
	xml_set_attr(st, NULL, "from", contact);
	if (!strcmp(type, "subscribe")) {
		const char *at = strchr(contact, '@');
		const struct partner *p =
			is_local(srv, contact)
				? NULL
				: policy_lookup(srv->live->partners, at ? at + 1 : contact);
		if (it && it->sub_from) {
			/* §3.1.3: already approved: answered for the user. */
			send_new(srv, user, contact, "subscribed");
			xml_free(&st);
		} else if (it && it->approved) {
			auto_approve(srv, user, contact, r, it, "pre-approved by the user");
			xml_free(&st);
		} else if (p && policy_auto_approves(p->type)) {
			auto_approve(srv, user, contact, r, it,
				     p->type == PT_FEDERATED ? "partner type federated"
							     : "partner type public-verified");
			xml_free(&st);
		} else {
			if (!it) {
				it = roster_add(r, contact);
				if (it)
					roster_set_hidden(it, true);
			}
			if (it) {
				it->pending_in = true;
				roster_changed(srv, user, it);
			}
			to_resources(srv, user, st);
		}
		return;
	}
	bool changed = false;
	if (!strcmp(type, "subscribed") && it && it->ask_out) {
		it->sub_to = true;
		it->ask_out = false;
		changed = true;
	} else if (!strcmp(type, "unsubscribe") && it && (it->sub_from || it->pending_in)) {
		it->sub_from = it->pending_in = false;
		changed = true;
	} else if (!strcmp(type, "unsubscribed") && it && (it->sub_to || it->ask_out)) {
		it->sub_to = it->ask_out = false;
		changed = true;
	}
	log_debug("presence", "%s receives %s from %s: %s", user, type, contact,
		  changed ? roster_subscription(it) : "no change");
	if (!changed) {
		xml_free(&st);
		return;
	}
	if (roster_hidden(it) && !it->pending_in)
		roster_remove(srv, user, contact);
	else
		roster_changed(srv, user, it);
	to_resources(srv, user, st);
}

static bool directed_to(struct xmpp_server *srv, const char *user, const char *from,
			const char *bare)
{
	for (struct session *c = session_first(srv, user); c; c = session_next(c)) {
		struct strmap *d = session_presence(c)->directed;
		if (d && (strmap_get(d, from) || strmap_get(d, bare)))
			return true;
	}
	return false;
}

void presence_to_account(struct xmpp_server *srv, struct xml_node *st)
{
	char type[16];
	snprintf(type, sizeof(type), "%s", type_of(st));
	char *res = NULL;
	char *user = bare_of(xml_attr(st, "to"), &res);
	char *contact = bare_of(xml_attr(st, "from"), NULL);
	if (user && contact && strcmp(user, contact) != 0 &&
	    (!*type || !strcmp(type, "unavailable")))
		pep_contact_presence(srv, user, st);
	if (!user || !contact) {
		xml_free(&st);
	} else if (!strcmp(type, "subscribe") || !strcmp(type, "subscribed") ||
		   !strcmp(type, "unsubscribe") || !strcmp(type, "unsubscribed")) {
		inbound_sub(srv, st, user, contact, type);
	} else if (!strcmp(type, "probe")) {
		struct roster_item *it = roster_find(roster_of(srv, user, false), contact);
		if (it && it->sub_from)
			send_current(srv, user, xml_attr(st, "from"));
		else
			send_new(srv, user, xml_attr(st, "from"), "unsubscribed");
		xml_free(&st);
	} else if (res) {
		struct session *c = session_find(srv, user, res);
		if (c)
			session_deliver(c, st);
		else
			xml_free(&st);
	} else {
		struct roster_item *it = roster_find(roster_of(srv, user, false), contact);
		if ((it && it->sub_to) || directed_to(srv, user, xml_attr(st, "from"), contact))
			to_resources(srv, user, st);
		else
			xml_free(&st);
	}
	free(user);
	free(contact);
	free(res);
}

/* ---- the refresh of remote contacts ---- */

static void probe_remote(void *ud, struct session *c)
{
	struct xmpp_server *srv = ud;
	struct session_presence *p = session_presence(c);
	/* One probe per user and contact: only the user's first session
	 * sends them. */
	if (!p->last || session_first(srv, session_bare(c)) != c)
		return;
	struct roster *r = roster_of(srv, session_bare(c), false);
	for (size_t i = 0; i < roster_count(r); i++) {
		struct roster_item *it = roster_at(r, i);
		if (it->sub_to && !is_local(srv, it->contact))
			send_new(srv, session_bare(c), it->contact, "probe");
	}
}

static void refresh_cb(evutil_socket_t fd, short what, void *arg)
{
	struct xmpp_server *srv = arg;
	(void)fd;
	(void)what;
	log_debug("presence", "re-probing remote contacts of %u sessions", session_count(srv));
	session_each(srv, probe_remote, srv);
	struct timeval tv = {(time_t)srv->live->gw.subscription_refresh_interval, 0};
	if (tv.tv_sec < 1)
		tv.tv_sec = 1;
	evtimer_add(srv->refresh, &tv);
}

int presence_start(struct xmpp_server *srv)
{
	/* Every ended session sends its unavailable presence from here. */
	srv->session_ended = presence_session_end;
	srv->refresh = evtimer_new(srv->base, refresh_cb, srv);
	if (!srv->refresh)
		return FG_NOMEM;
	return presence_reschedule(srv);
}

int presence_reschedule(struct xmpp_server *srv)
{
	struct timeval tv = {(time_t)srv->live->gw.subscription_refresh_interval, 0};
	if (!srv->refresh)
		return FG_ERR;
	if (tv.tv_sec < 1)
		tv.tv_sec = 1;
	return evtimer_add(srv->refresh, &tv) == 0 ? FG_OK : FG_ERR;
}

void presence_stop(struct xmpp_server *srv)
{
	if (srv->refresh)
		event_free(srv->refresh);
	srv->refresh = NULL;
}

#include "router.h"
#include "blocking.h"
#include "refused.h"

#include "session.h"
#include "live.h"
#include "conf.h"
#include "fg.h"
#include "jid.h"
#include "jid_cache.h"
#include "log.h"
#include "counters.h"
#include "offline.h"
#include "pep.h"
#include "policy.h"
#include "presence.h"
#include "roster.h"
#include "route.h"
#include "xmpp.h"
#include "service.h"
#include "carbons.h"
#include "cluster.h"
#include "mam.h"
#include "users.h"

#include <stdlib.h>
#include <string.h>

static router_tap_fn tap;

void router_set_tap(router_tap_fn fn)
{
	tap = fn;
}

/* An address of a stanza, parsed, with its bare form. */
/* A stanza's address, prepared once per distinct text (jid_cache.h): j
 * and bare point into the cache's entry, which addr_clear lets go. */
struct addr {
	struct jid j;
	char *bare;
	const struct jid_entry *e;
};

/* Addresses kept prepared: a conversation's few JIDs over and over. */
#define JID_CACHE_SLOTS 4096

static bool addr_parse(struct xmpp_server *srv, const char *s, struct addr *a)
{
	memset(a, 0, sizeof(*a));
	if (!s)
		return false;
	if (!srv->jids && !(srv->jids = jid_cache_new(JID_CACHE_SLOTS)))
		return false;
	enum jid_err err;
	a->e = jid_cache_get(srv->jids, s, strlen(s), &err);
	if (!a->e)
		return false;
	a->j = a->e->j;
	a->bare = a->e->bare;
	return true;
}

static void addr_clear(struct xmpp_server *srv, struct addr *a)
{
	jid_cache_put(srv->jids, a->e);
	memset(a, 0, sizeof(*a));
}

static const char *type_of(const struct xml_node *st)
{
	const char *t = xml_attr(st, "type");
	return t ? t : "";
}

static bool is_type(const struct xml_node *st, const char *t)
{
	return strcmp(type_of(st), t) == 0;
}

/* A stanza that must not or cannot be answered: counted by reason, logged
 * with why, freed. */
static void drop(struct xml_node *st, const char *reason, const char *why)
{
	log_info("router", "%s from %s to %s dropped (%s): %s", st->name,
		 xml_attr(st, "from") ? xml_attr(st, "from") : "-",
		 xml_attr(st, "to") ? xml_attr(st, "to") : "-", reason, why);
	counters_stanza(STANZA_DROPPED, reason);
	xml_free(&st);
}

/* router_bounce with an application-specific condition element (ns, name)
 * beside the defined one (RFC 6120 §8.3.3) when ns is not NULL, handed
 * straight to the sender's session `direct` when not NULL (an error from
 * an address the sender blocked would not pass the block on its way). */
static void bounce_app(struct xmpp_server *srv, struct xml_node *stanza, const char *type,
		       const char *condition, const char *text, const char *ns, const char *name,
		       struct session *direct);

void router_bounce(struct xmpp_server *srv, struct xml_node *stanza, const char *type,
		   const char *condition, const char *text)
{
	bounce_app(srv, stanza, type, condition, text, NULL, NULL, NULL);
}

static void bounce_app(struct xmpp_server *srv, struct xml_node *stanza, const char *type,
		       const char *condition, const char *text, const char *ns, const char *name,
		       struct session *direct)
{
	if (is_type(stanza, "error") || (xml_is(stanza, NULL, "iq") && is_type(stanza, "result"))) {
		/* RFC 6120 §8.3.1: never an error about an error (loops) */
		drop(stanza, "error-not-answered", condition);
		return;
	}
	const char *from = xml_attr(stanza, "from"), *to = xml_attr(stanza, "to");
	if (!from || !to) {
		drop(stanza, "no-address-to-answer", condition);
		return;
	}
	struct xml_node *e = xml_clone(stanza);
	xml_free(&stanza);
	if (!e)
		return;
	char *nf = strdup(xml_attr(e, "to")), *nt = strdup(xml_attr(e, "from"));
	if (!nf || !nt) {
		free(nf);
		free(nt);
		xml_free(&e);
		return;
	}
	xml_set_attr(e, NULL, "from", nf);
	xml_set_attr(e, NULL, "to", nt);
	free(nf);
	free(nt);
	xml_set_attr(e, NULL, "type", "error");
	struct xml_node *err = xml_add_child(e, XML_NS_SERVER, "error");
	if (err) {
		xml_set_attr(err, NULL, "type", type);
		xml_add_child(err, XML_NS_STANZAS_ERR, condition);
		struct xml_node *tx = xml_add_child(err, XML_NS_STANZAS_ERR, "text");
		if (tx) {
			xml_set_attr(tx, XML_NS_XML, "lang", "en");
			xml_add_text(tx, text, strlen(text));
		}
		if (ns)
			xml_add_child(err, ns, name);
	}
	counters_stanza(STANZA_BOUNCED, NULL);
	if (direct)
		session_deliver(direct, e);
	else
		router_route(srv, e);
}

void router_to_partner(struct xmpp_server *srv, struct xml_node *st, router_done done, void *ud)
{
	struct addr from, to;
	bool fok = addr_parse(srv, xml_attr(st, "from"), &from);
	bool tok = addr_parse(srv, xml_attr(st, "to"), &to);
	char why[400];
	if (!fok || !tok || !conf_is_local_domain(srv->conf, from.j.domain)) {
		snprintf(why, sizeof(why), "the stanza has no valid local sender and recipient");
	} else if (conf_is_local_domain(srv->conf, to.j.domain)) {
		snprintf(why, sizeof(why), "%s is a local domain", to.j.domain);
	} else if (!policy_lookup(srv->live->partners, to.j.domain)) {
		snprintf(why, sizeof(why), "%s is not an allowed federation partner", to.j.domain);
		refused_note(srv, to.j.domain, REFUSED_OUTBOUND, from.bare);
	} else {
		/* It answers the sender itself when the stanza cannot go. */
		route_send(srv, from.j.domain, to.j.domain, st, done, ud);
		addr_clear(srv, &from);
		addr_clear(srv, &to);
		return;
	}
	log_info("router", "%s to %s refused: %s", st->name, tok ? to.j.domain : "?", why);
	addr_clear(srv, &from);
	addr_clear(srv, &to);
	if (done) {
		xml_free(&st);
		done(ud, false, why);
		counters_stanza(STANZA_BOUNCED, NULL); /* the report is the answer */
	} else {
		router_bounce(srv, st, "cancel", "not-allowed", why);
	}
}

/* SPEC §4: partner types other than federated do not see status notes. */
static void strip_status(struct xml_node *st)
{
	for (struct xml_node **p = &st->children; *p;) {
		if (xml_is(*p, NULL, "status")) {
			if (st->last_child == *p) {
				struct xml_node *prev = NULL;
				for (struct xml_node *c = st->children; c != *p; c = c->next)
					prev = c;
				st->last_child = prev;
			}
			*p = (*p)->next;
		} else {
			p = &(*p)->next;
		}
	}
}

static void to_remote(struct xmpp_server *srv, struct xml_node *st, const struct addr *from,
		      const struct addr *to)
{
	const struct account *a = from->j.node ? accounts_get(srv->live->users, from->bare) : NULL;
	/* Errors still go out: they are the server telling the partner's
	 * user that the refused stanza went nowhere. */
	if (a && !a->xmpp_access && !is_type(st, "error")) {
		char text[300];
		snprintf(text, sizeof(text),
			 "federation is turned off for %s (xmpp_access); an administrator can "
			 "turn it on",
			 from->bare);
		log_info("router", "%s to %s refused: xmpp_access is off for %s", st->name,
			 to->j.domain, from->bare);
		if (xml_is(st, NULL, "presence") && !is_type(st, "subscribe"))
			drop(st, "federation-off", "xmpp_access is off for the sender");
		else
			router_bounce(srv, st, "auth", "forbidden", text);
		return;
	}
	const struct partner *p = policy_lookup(srv->live->partners, to->j.domain);
	if (p && xml_is(st, NULL, "presence") && policy_strips_status(p->type))
		strip_status(st);
	if (p && xml_is(st, NULL, "message"))
		mam_archive(srv, st);
	router_to_partner(srv, st, NULL, NULL);
}

static void no_account(struct xmpp_server *srv, struct xml_node *st, const struct addr *to)
{
	if (xml_is(st, NULL, "presence")) {
		/* RFC 6121 §3.1.3, §4.3: nothing about a missing account
		 * leaks through presence; a subscription request is denied. */
		if (is_type(st, "subscribe") || is_type(st, "probe")) {
			struct xml_node *u = xml_new(XML_NS_SERVER, "presence");
			if (u) {
				xml_set_attr(u, NULL, "from", to->bare);
				xml_set_attr(u, NULL, "to", xml_attr(st, "from"));
				xml_set_attr(u, NULL, "type", "unsubscribed");
				router_route(srv, u);
			}
		}
		drop(st, "presence-to-no-account", "there is no account at this address");
		return;
	}
	log_info("router", "%s to %s answered with service-unavailable: there is no such account",
		 st->name, to->bare);
	router_bounce(srv, st, "cancel", "service-unavailable",
		      "there is no account at this address");
}

/* How a stanza reached deliver_local: from this node (it may be forwarded
 * to the node of a session), forwarded by another node to be routed here
 * (not forwarded again: a stale registry must not bounce it between
 * nodes), or forwarded for this node's own sessions of the bare JID only
 * (the sending node archived it and sent the other copies). */
enum hop { HOP_HERE, HOP_ARRIVED, HOP_LOCAL };

/* A copy of st for each other node with a session that should get it
 * (cluster.h); the count of nodes. copies: st also goes somewhere else,
 * so a failed copy is dropped, not bounced. */
static size_t to_other_nodes(struct xmpp_server *srv, const struct xml_node *st, const char *bare,
			     bool message, bool copies)
{
	char nodes[16][CREG_NODE_MAX];
	size_t n = cluster_nodes_for(srv, bare, message, nodes, FG_ARRAY_LEN(nodes));
	for (size_t i = 0; i < n; i++) {
		struct xml_node *c = xml_clone(st);
		if (c)
			cluster_forward(srv, nodes[i], c, true, bare, copies || i > 0);
	}
	return n;
}

/* A message for a session whose client is not reading fast enough waits
 * offline, as for a user who is away (RFC 6121 §8.5.2.1.1 allows storing
 * for an available user); a headline or groupchat one is answered. */
static void deliver_or_keep(struct xmpp_server *srv, struct session *c, struct xml_node *st,
			    const char *bare)
{
	if (session_offer(c, st))
		return;
	if (is_type(st, "") || is_type(st, "chat") || is_type(st, "normal"))
		offline_store(srv, st, bare);
	else if (is_type(st, "error"))
		drop(st, "recipient-output-full", "the recipient's output queue is full");
	else
		router_bounce(srv, st, "wait", "resource-constraint",
			      "the recipient's connection is not taking stanzas now");
}

static void deliver_message(struct xmpp_server *srv, struct xml_node *st, const struct addr *to,
			    enum hop hop)
{
	/* The node that sent a local-only copy archived the message. */
	bool fresh = hop == HOP_LOCAL || mam_archive(srv, st);
	/* The sending node made the carbons of a local-only copy, for every
	 * node. */
	if (hop != HOP_LOCAL)
		carbons_received(srv, st, to->bare, to->j.resource, fresh);
	const char *type = type_of(st);
	if (to->j.resource) {
		struct session *c = session_find(srv, to->bare, to->j.resource);
		if (c) {
			deliver_or_keep(srv, c, st, to->bare);
			return;
		}
		/* RFC 6121 §8.5.3.2.1 */
		if (strcmp(type, "groupchat") == 0) {
			router_bounce(srv, st, "cancel", "service-unavailable",
				      "that resource is not online");
			return;
		}
		if (strcmp(type, "headline") == 0 || strcmp(type, "error") == 0) {
			drop(st, "to-offline-resource",
			     "a headline or error for a resource not online");
			return;
		}
	}
	/* RFC 6121 §8.5.2: to the bare JID */
	if (strcmp(type, "error") == 0) {
		drop(st, "error-to-bare-address", "an error for no resource in particular");
		return;
	}
	if (strcmp(type, "groupchat") == 0) {
		router_bounce(srv, st, "cancel", "service-unavailable",
			      "a user's address does not take groupchat messages");
		return;
	}
	struct session *targets[64];
	size_t n = 0;
	for (struct session *c = session_first(srv, to->bare); c && n < FG_ARRAY_LEN(targets);
	     c = session_next(c)) {
		struct session_presence *p = session_presence(c);
		if (p->last && p->priority >= 0)
			targets[n++] = c;
	}
	/* The other nodes' resources get theirs from their nodes; with
	 * none here, the first of them answers the sender if it fails. */
	size_t remote = 0;
	if (hop != HOP_LOCAL && cluster_on(srv)) {
		remote = to_other_nodes(srv, st, to->bare, true, n > 0);
		if (remote > 0 && n == 0) {
			xml_free(&st);
			return;
		}
	}
	if (n == 0) {
		if (strcmp(type, "headline") == 0)
			drop(st, "headline-to-offline-user", "headlines are not kept offline");
		else
			offline_store(srv, st, to->bare);
		return;
	}
	for (size_t i = 0; i + 1 < n; i++) {
		struct xml_node *copy = xml_clone(st);
		if (copy)
			deliver_or_keep(srv, targets[i], copy, to->bare);
	}
	deliver_or_keep(srv, targets[n - 1], st, to->bare);
}

/* XEP-0191 §3.5: nothing from an entity the user blocked reaches the
 * user, offline storage or anything else on the way; messages and iq
 * requests are answered as if the user were not there, presence goes
 * without a word. True when st was taken. */
static bool blocked_in(struct xmpp_server *srv, struct xml_node *st, const struct addr *to)
{
	struct addr from;
	if (!blocking_any(srv, to->bare) || !addr_parse(srv, xml_attr(st, "from"), &from))
		return false;
	bool hit = strcmp(from.bare, to->bare) != 0 && blocking_blocks(srv, to->bare, &from.j);
	addr_clear(srv, &from);
	if (!hit)
		return false;
	bool request = xml_is(st, NULL, "iq") && (is_type(st, "get") || is_type(st, "set"));
	if (request || (xml_is(st, NULL, "message") && !is_type(st, "error")))
		router_bounce(srv, st, "cancel", "service-unavailable",
			      "the recipient is not available");
	else
		drop(st, "blocked", "the recipient blocked the sender");
	return true;
}

/* A stanza for a session of another node: forwarded there. True when st
 * was taken. */
static bool elsewhere(struct xmpp_server *srv, struct xml_node *st, const struct addr *to,
		      enum hop hop)
{
	if (hop != HOP_HERE || !cluster_on(srv))
		return false;
	if (to->j.resource) {
		if (session_find(srv, to->bare, to->j.resource))
			return false;
		const char *node = cluster_node_of(srv, xml_attr(st, "to"));
		if (!node)
			return false;
		cluster_forward(srv, node, st, false, to->bare, false);
		return true;
	}
	/* RFC 6121 §4.2.2, §4.3.2: presence to the account reaches every
	 * available resource, wherever; a probe is answered by each node
	 * for its own resources (and here for ours). */
	if (xml_is(st, NULL, "presence")) {
		const char *t = type_of(st);
		if (!*t || !strcmp(t, "unavailable") || !strcmp(t, "probe")) {
			to_other_nodes(srv, st, to->bare, false, true);
		} else if (!session_first(srv, to->bare) && cluster_link_up(srv)) {
			/* RFC 6121 §3: a subscription request or answer is
			 * handled where the user is signed in, whose client
			 * sees it and its roster push (the store and the
			 * other nodes' copies follow, roster.c). With the
			 * link down it is handled here: the store keeps it. */
			const char *node = cluster_user_node(srv, to->bare);
			if (node) {
				cluster_forward(srv, node, st, false, to->bare, false);
				return true;
			}
		}
	}
	return false;
}

/* A stanza for a local address, whoever sent it. */
static void deliver_local(struct xmpp_server *srv, struct xml_node *st, const struct addr *to,
			  enum hop hop)
{
	if (to->j.resource && tap && tap(srv, st))
		return;
	if (!to->j.node) {
		counters_stanza(STANZA_DELIVERED, NULL); /* the server is its recipient */
		service_domain(srv, st);
		return;
	}
	if (!accounts_get(srv->live->users, to->bare)) {
		no_account(srv, st, to);
		return;
	}
	if (blocked_in(srv, st, to) || elsewhere(srv, st, to, hop))
		return;
	if (xml_is(st, NULL, "presence")) {
		presence_to_account(srv, st);
	} else if (xml_is(st, NULL, "message")) {
		deliver_message(srv, st, to, hop);
	} else if (to->j.resource) {
		struct session *c = session_find(srv, to->bare, to->j.resource);
		if (c)
			session_deliver(c, st);
		else
			router_bounce(srv, st, "cancel", "service-unavailable",
				      "that resource is not online");
	} else {
		counters_stanza(STANZA_DELIVERED, NULL);
		service_account(srv, NULL, st);
	}
}

void router_route(struct xmpp_server *srv, struct xml_node *st)
{
	struct addr from, to;
	bool fok = addr_parse(srv, xml_attr(st, "from"), &from);
	if (!addr_parse(srv, xml_attr(st, "to"), &to)) {
		drop(st, "no-valid-to", "the to address is missing or not a JID");
	} else if (conf_is_local_domain(srv->conf, to.j.domain)) {
		deliver_local(srv, st, &to, HOP_HERE);
	} else if (fok) {
		to_remote(srv, st, &from, &to);
	} else {
		drop(st, "no-valid-from", "a stanza for a remote address without a valid from");
	}
	if (fok)
		addr_clear(srv, &from);
	addr_clear(srv, &to);
}

/* SPEC §4, for every stanza from a partner's user to a local account:
 * the account's xmpp_access, then the partner type. Returns false when the
 * stanza was answered here (taken). */
static bool partner_gate(struct xmpp_server *srv, struct xml_node *st, const struct addr *from,
			 const struct addr *to)
{
	const struct account *a = accounts_get(srv->live->users, to->bare);
	if (!a || !from->j.node)
		return true;
	bool subscribe = xml_is(st, NULL, "presence") && is_type(st, "subscribe");
	bool gated = xml_is(st, NULL, "message") || subscribe ||
		     (xml_is(st, NULL, "iq") && (is_type(st, "get") || is_type(st, "set")));
	char text[400];
	if (!a->xmpp_access) {
		if (!gated) {
			drop(st, "federation-off", "xmpp_access is off for the recipient");
			return false;
		}
		snprintf(text, sizeof(text),
			 "%s does not take part in federation with other organisations", to->bare);
		log_info("router", "%s from %s refused: xmpp_access is off for %s", st->name,
			 from->bare, to->bare);
		router_bounce(srv, st, "auth", "forbidden", text);
		return false;
	}
	const struct partner *p = policy_lookup(srv->live->partners, from->j.domain);
	/* A pubsub request gets XEP-0060's answer from pep.c, which applies
	 * the same rule (pubsub_may_read). */
	if (!p || !gated || !policy_needs_contact(p->type) ||
	    roster_has(srv, to->bare, from->bare) || (xml_is(st, NULL, "iq") && pep_is_request(st)))
		return true;
	log_info("router",
		 "%s from %s to %s refused: partner %s is public-unverified and %s is "
		 "not in the roster",
		 st->name, from->bare, to->bare, p->domain, from->bare);
	if (subscribe) {
		struct xml_node *u = xml_new(XML_NS_SERVER, "presence");
		if (u) {
			xml_set_attr(u, NULL, "from", to->bare);
			xml_set_attr(u, NULL, "to", from->bare);
			xml_set_attr(u, NULL, "type", "unsubscribed");
			router_route(srv, u);
		}
		drop(st, "subscribe-refused", "answered with unsubscribed: not a contact");
		return false;
	}
	snprintf(text, sizeof(text),
		 "%s accepts messages from users of %s only from contacts they have added",
		 to->bare, from->j.domain);
	router_bounce(srv, st, "auth", "forbidden", text);
	return false;
}

void router_from_partner(struct xmpp_server *srv, struct xml_node *st)
{
	struct addr from, to;
	bool fok = addr_parse(srv, xml_attr(st, "from"), &from);
	if (!addr_parse(srv, xml_attr(st, "to"), &to)) {
		if (fok)
			addr_clear(srv, &from);
		drop(st, "no-valid-to", "the to address is missing or not a JID");
		return;
	}
	if (fok && xml_is(st, NULL, "message"))
		mam_strip_ids(srv, st);
	if (fok && partner_gate(srv, st, &from, &to))
		deliver_local(srv, st, &to, HOP_HERE);
	else if (!fok)
		drop(st, "no-valid-from", "a partner's stanza without a valid from");
	if (fok)
		addr_clear(srv, &from);
	addr_clear(srv, &to);
}

/* XEP-0191 §3.5: what the user sends to an entity they blocked is
 * refused. True when st was taken. */
static bool blocked_out(struct xmpp_server *srv, struct session *c, struct xml_node *st,
			const struct addr *to)
{
	if (!blocking_any(srv, session_bare(c)) || strcmp(to->bare, session_bare(c)) == 0 ||
	    !blocking_blocks(srv, session_bare(c), &to->j))
		return false;
	if (is_type(st, "error")) {
		drop(st, "blocked", "an error for an entity the sender blocked");
		return true;
	}
	log_info("router", "%s from %s to %s refused: the sender blocked it", st->name,
		 session_bare(c), to->bare);
	bounce_app(srv, st, "cancel", "not-acceptable",
		   "you blocked this address; unblock it to communicate", XML_NS_BLOCKING_ERRORS,
		   "blocked", c);
	return true;
}

void router_from_client(struct xmpp_server *srv, struct session *c, struct xml_node *st)
{
	const char *to_s = xml_attr(st, "to");
	struct addr to;
	if (to_s && !addr_parse(srv, to_s, &to)) {
		if (xml_is(st, NULL, "presence"))
			presence_from_client(srv, c, st); /* it answers bad addresses itself */
		else
			router_bounce(srv, st, "modify", "jid-malformed",
				      "the to address is not a valid JID");
		return;
	}
	bool refused = to_s && blocked_out(srv, c, st, &to);
	bool own = !to_s || (!to.j.resource && strcmp(to.bare, session_bare(c)) == 0);
	if (to_s)
		addr_clear(srv, &to);
	if (refused)
		return;
	if (xml_is(st, NULL, "presence")) {
		presence_from_client(srv, c, st);
		return;
	}
	if (own && xml_is(st, NULL, "iq")) {
		/* RFC 6120 §10.5.3.2: the server answers for the account. */
		if (xml_child(st, XML_NS_ROSTER, "query"))
			roster_iq(srv, c, st);
		else if (blocking_is_request(st))
			blocking_iq(srv, c, st);
		else
			service_account(srv, c, st);
		return;
	}
	if (!to_s)
		xml_set_attr(st, NULL, "to", session_bare(c));
	if (xml_is(st, NULL, "message")) {
		mam_strip_ids(srv, st);
		carbons_sent(srv, c, st);
	}
	router_route(srv, st);
}

void router_from_cluster(struct xmpp_server *srv, struct xml_node *st, bool local_only)
{
	struct addr to;
	if (!addr_parse(srv, xml_attr(st, "to"), &to)) {
		drop(st, "no-valid-to", "a forwarded stanza's to address is not a JID");
		return;
	}
	if (conf_is_local_domain(srv->conf, to.j.domain))
		deliver_local(srv, st, &to, local_only ? HOP_LOCAL : HOP_ARRIVED);
	else
		router_route(srv, st); /* an error or answer going out */
	addr_clear(srv, &to);
}

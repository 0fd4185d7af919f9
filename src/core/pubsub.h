/* Publish-subscribe requests as a personal eventing service reads them
 * (XEP-0060 as XEP-0163 and XEP-0223 use it), without I/O: a request
 * parsed into what to do, a node's configuration and the publish-options
 * preconditions held against it, and who may read a node -- the access
 * model (XEP-0060 §4.5) with SPEC §4's partner-type rule on top. The PEP
 * service (xmpp/pep.c) and the store thread both call these; fuzz_pep
 * feeds the parser peers' garbage. */
#ifndef FG_PUBSUB_H
#define FG_PUBSUB_H

#include "policy.h"
#include "xml.h"

#include <stdbool.h>
#include <stddef.h>

#define XML_NS_PUBSUB	     "http://jabber.org/protocol/pubsub"
#define XML_NS_PUBSUB_EVENT  "http://jabber.org/protocol/pubsub#event"
#define XML_NS_PUBSUB_OWNER  "http://jabber.org/protocol/pubsub#owner"
#define XML_NS_PUBSUB_ERRORS "http://jabber.org/protocol/pubsub#errors"
#define XML_NS_PUBSUB_PUBOPT "http://jabber.org/protocol/pubsub#publish-options"
#define XML_NS_PUBSUB_CONFIG "http://jabber.org/protocol/pubsub#node_config"
#define XML_NS_DATA	     "jabber:x:data"
#define XML_NS_CAPS	     "http://jabber.org/protocol/caps"

/* Longest node name and item id we keep; most ids an items or retract
 * request may name. */
#define PUBSUB_NAME_MAX 256
#define PUBSUB_IDS_MAX	32

enum pubsub_access {
	PUBSUB_PRESENCE = 0, /* PEP's default: those subscribed to the owner's presence */
	PUBSUB_OPEN,
	PUBSUB_ROSTER,	  /* in the owner's roster and subscribed (no groups kept) */
	PUBSUB_WHITELIST, /* the owner alone: we keep no list of members */
};
const char *pubsub_access_name(enum pubsub_access a);
/* 0, or -1 for a model we do not offer (authorize, unknown words). */
int pubsub_access_parse(const char *s, enum pubsub_access *out);

/* A node's configuration. max_items is at most the service's cap; "max"
 * means the cap. */
struct pubsub_conf {
	enum pubsub_access access;
	long max_items;
	bool persist;
};
/* PEP's defaults (XEP-0163 §4.1: presence, the last item kept). */
void pubsub_conf_default(struct pubsub_conf *c);

/* Which fields a form (publish-options or a configuration) set. */
enum {
	PUBSUB_SET_ACCESS = 1,
	PUBSUB_SET_MAX = 2,
	PUBSUB_SET_PERSIST = 4,
};

enum pubsub_op {
	PUBSUB_OP_NONE = 0,
	PUBSUB_OP_PUBLISH,
	PUBSUB_OP_ITEMS,
	PUBSUB_OP_RETRACT,
	PUBSUB_OP_CREATE,
	PUBSUB_OP_DELETE,	 /* #owner */
	PUBSUB_OP_PURGE,	 /* #owner */
	PUBSUB_OP_CONFIGURE_GET, /* #owner */
	PUBSUB_OP_CONFIGURE_SET, /* #owner */
};

/* A request; strings and the payload point into the iq it came from. */
struct pubsub_req {
	enum pubsub_op op;
	bool owner_only; /* changes the node: only its owner may */
	const char *node;
	const char *item_id; /* publish: NULL = the service picks one */
	const struct xml_node *payload;
	const char *ids[PUBSUB_IDS_MAX]; /* items by id, retract */
	size_t nids;
	long max_items;		 /* items: newest N, 0 = all */
	bool notify;		 /* retract */
	struct pubsub_conf opts; /* publish-options, create's or configure's form */
	unsigned opts_set;	 /* PUBSUB_SET_* given in opts */
};

/* What to answer when a request fails: the stanza error's type and
 * condition, XEP-0060's own condition (NULL when none; "unsupported"
 * carries feature), and a sentence for people. */
struct pubsub_err {
	const char *type, *cond, *ps_cond, *feature, *text;
};

/* Reads an iq (get or set) with a pubsub child. cap is the service's most
 * items per node. FG_OK with *r filled, or FG_INVAL with *e. Pure: it
 * keeps nothing, and r points into iq. */
int pubsub_parse(const struct xml_node *iq, long cap, struct pubsub_req *r, struct pubsub_err *e);
/* A data form (jabber:x:data) of publish-options or node configuration
 * into c (fields not given keep their value) and *set. FG_OK or FG_INVAL
 * with *e (a value we cannot take). */
int pubsub_form(const struct xml_node *x, long cap, struct pubsub_conf *c, unsigned *set,
		struct pubsub_err *e);
/* Publish-options as preconditions on an existing node (XEP-0060 §7.1.5):
 * true when every field given matches its configuration. */
bool pubsub_preconditions_met(const struct pubsub_conf *opts, unsigned set,
			      const struct pubsub_conf *node);

/* Who asks to read a node, as the loop knows them. */
struct pubsub_asker {
	bool owner;		   /* the account itself */
	bool local;		   /* another account of ours */
	enum partner_type partner; /* a partner's user: the partner's type */
	bool in_roster;		   /* the owner added them (any state, SPEC §4) */
	bool sub_from;		   /* they are subscribed to the owner's presence */
};
/* The access decision: true = may read and be notified; false with *e
 * (not-authorized + presence-subscription-required, not-authorized +
 * not-in-roster-group, not-allowed + closed-node, or forbidden for SPEC
 * §4's public-unverified non-contact, whatever the model). */
bool pubsub_may_read(enum pubsub_access model, const struct pubsub_asker *a, struct pubsub_err *e);

/* The node a feature of entity capabilities asks notifications of
 * ("urn:xmpp:avatar:metadata+notify" -> "urn:xmpp:avatar:metadata"), as a
 * length into var, or 0 when it is no +notify feature. */
size_t pubsub_notify_node(const char *var);

#endif

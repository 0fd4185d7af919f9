#include "pubsub.h"

#include "fg.h"

#include <assert.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

static const char *const access_names[] = {
	[PUBSUB_PRESENCE] = "presence",
	[PUBSUB_OPEN] = "open",
	[PUBSUB_ROSTER] = "roster",
	[PUBSUB_WHITELIST] = "whitelist",
};

const char *pubsub_access_name(enum pubsub_access a)
{
	assert((size_t)a < FG_ARRAY_LEN(access_names));
	return access_names[a];
}

int pubsub_access_parse(const char *s, enum pubsub_access *out)
{
	for (size_t i = 0; s && i < FG_ARRAY_LEN(access_names); i++)
		if (strcmp(s, access_names[i]) == 0) {
			*out = (enum pubsub_access)i;
			return 0;
		}
	return -1;
}

void pubsub_conf_default(struct pubsub_conf *c)
{
	c->access = PUBSUB_PRESENCE;
	c->max_items = 1;
	c->persist = true;
}

static int fail(struct pubsub_err *e, const char *type, const char *cond, const char *ps_cond,
		const char *feature, const char *text)
{
	e->type = type;
	e->cond = cond;
	e->ps_cond = ps_cond;
	e->feature = feature;
	e->text = text;
	return FG_INVAL;
}

static bool parse_bool(const char *s, bool *out)
{
	if (!strcmp(s, "1") || !strcmp(s, "true")) {
		*out = true;
		return true;
	}
	if (!strcmp(s, "0") || !strcmp(s, "false")) {
		*out = false;
		return true;
	}
	return false;
}

/* "max" or a positive count, clamped to the cap: a client asking for more
 * than we keep gets what we keep, and the same request later matches. */
static bool parse_max(const char *s, long cap, long *out)
{
	if (!strcmp(s, "max")) {
		*out = cap;
		return true;
	}
	if (*s < '0' || *s > '9')
		return false;
	errno = 0;
	char *end;
	long v = strtol(s, &end, 10);
	if (*end || v < 1)
		return false;
	*out = errno == ERANGE || v > cap ? cap : v;
	return true;
}

static const char *field_value(const struct xml_node *f)
{
	const struct xml_node *v = xml_child(f, XML_NS_DATA, "value");
	return v ? xml_text(v) : "";
}

int pubsub_form(const struct xml_node *x, long cap, struct pubsub_conf *c, unsigned *set,
		struct pubsub_err *e)
{
	*set = 0;
	if (!xml_is(x, XML_NS_DATA, "x"))
		return fail(e, "modify", "bad-request", "invalid-options", NULL,
			    "the options are not a data form");
	const char *t = xml_attr(x, "type");
	if (t && !strcmp(t, "cancel"))
		return FG_OK;
	for (const struct xml_node *f = xml_first_element(x); f; f = xml_next_element(f)) {
		if (!xml_is(f, XML_NS_DATA, "field"))
			continue;
		const char *var = xml_attr(f, "var"), *v = field_value(f);
		if (!var)
			continue;
		/* Options we do not keep are not refused: clients send
		 * several (send_last_published_item, notify_*), and a node
		 * behaves as they ask for those that matter. */
		if (!strcmp(var, "pubsub#access_model")) {
			if (pubsub_access_parse(v, &c->access) != 0)
				return fail(e, "modify", "not-acceptable",
					    "unsupported-access-model", NULL,
					    "that access model is not offered");
			*set |= PUBSUB_SET_ACCESS;
		} else if (!strcmp(var, "pubsub#max_items")) {
			if (!parse_max(v, cap, &c->max_items))
				return fail(e, "modify", "not-acceptable", "invalid-options", NULL,
					    "max_items must be a positive number or max");
			*set |= PUBSUB_SET_MAX;
		} else if (!strcmp(var, "pubsub#persist_items")) {
			if (!parse_bool(v, &c->persist))
				return fail(e, "modify", "not-acceptable", "invalid-options", NULL,
					    "persist_items must be true or false");
			*set |= PUBSUB_SET_PERSIST;
		}
	}
	return FG_OK;
}

bool pubsub_preconditions_met(const struct pubsub_conf *opts, unsigned set,
			      const struct pubsub_conf *node)
{
	if ((set & PUBSUB_SET_ACCESS) && opts->access != node->access)
		return false;
	if ((set & PUBSUB_SET_MAX) && opts->max_items != node->max_items)
		return false;
	if ((set & PUBSUB_SET_PERSIST) && opts->persist != node->persist)
		return false;
	return true;
}

static bool name_ok(const char *s)
{
	return s && *s && strlen(s) <= PUBSUB_NAME_MAX;
}

/* The one action element of <pubsub/>: a request carries exactly one
 * (publish-options and configure may go beside publish and create). */
static const struct xml_node *action(const struct xml_node *ps, const struct xml_node **extra,
				     bool *many)
{
	const struct xml_node *a = NULL;
	*extra = NULL;
	*many = false;
	for (const struct xml_node *c = xml_first_element(ps); c; c = xml_next_element(c)) {
		if (!strcmp(c->ns, ps->ns) &&
		    (!strcmp(c->name, "publish-options") ||
		     (!strcmp(c->name, "configure") && strcmp(ps->ns, XML_NS_PUBSUB) == 0))) {
			if (*extra)
				*many = true;
			*extra = c;
			continue;
		}
		if (a)
			*many = true;
		a = c;
	}
	return a;
}

static int parse_publish(const struct xml_node *a, const struct xml_node *extra, long cap,
			 struct pubsub_req *r, struct pubsub_err *e)
{
	r->op = PUBSUB_OP_PUBLISH;
	r->owner_only = true;
	const struct xml_node *item = NULL;
	for (const struct xml_node *c = xml_first_element(a); c; c = xml_next_element(c)) {
		if (!xml_is(c, XML_NS_PUBSUB, "item"))
			continue;
		if (item)
			return fail(e, "modify", "bad-request", "invalid-payload", NULL,
				    "publish one item at a time");
		item = c;
	}
	if (!item)
		return fail(e, "modify", "bad-request", "item-required", NULL,
			    "a personal eventing node needs an item");
	r->item_id = xml_attr(item, "id");
	if (r->item_id && !name_ok(r->item_id))
		return fail(e, "modify", "bad-request", NULL, NULL, "the item id is empty or long");
	r->payload = xml_first_element(item);
	if (!r->payload)
		return fail(e, "modify", "bad-request", "payload-required", NULL,
			    "the item has no payload");
	if (xml_next_element(r->payload))
		return fail(e, "modify", "bad-request", "invalid-payload", NULL,
			    "an item carries one payload element");
	if (extra) {
		if (!xml_is(extra, XML_NS_PUBSUB, "publish-options"))
			return fail(e, "modify", "bad-request", NULL, NULL,
				    "configure goes with create, not publish");
		const struct xml_node *x = xml_child(extra, XML_NS_DATA, "x");
		if (x && pubsub_form(x, cap, &r->opts, &r->opts_set, e) != FG_OK) {
			/* An option we cannot take cannot be met either. */
			e->type = "cancel";
			e->cond = "conflict";
			e->ps_cond = "precondition-not-met";
			return FG_INVAL;
		}
	}
	return FG_OK;
}

static int parse_items(const struct xml_node *a, struct pubsub_req *r, struct pubsub_err *e,
		       bool retract)
{
	for (const struct xml_node *c = xml_first_element(a); c; c = xml_next_element(c)) {
		if (!xml_is(c, XML_NS_PUBSUB, "item"))
			continue;
		const char *id = xml_attr(c, "id");
		if (!name_ok(id))
			return fail(e, "modify", "bad-request", "item-required", NULL,
				    "an item without an id");
		if (r->nids == PUBSUB_IDS_MAX)
			return fail(e, "modify", "policy-violation", NULL, NULL,
				    "too many item ids in one request");
		r->ids[r->nids++] = id;
	}
	if (retract) {
		r->op = PUBSUB_OP_RETRACT;
		r->owner_only = true;
		const char *n = xml_attr(a, "notify");
		r->notify = n && (!strcmp(n, "1") || !strcmp(n, "true"));
		if (!r->nids)
			return fail(e, "modify", "bad-request", "item-required", NULL,
				    "retract names no item");
		return FG_OK;
	}
	r->op = PUBSUB_OP_ITEMS;
	const char *m = xml_attr(a, "max_items");
	if (m) {
		char *end;
		errno = 0;
		long v = *m >= '0' && *m <= '9' ? strtol(m, &end, 10) : -1;
		if (v < 1 || *end || errno)
			return fail(e, "modify", "bad-request", NULL, NULL,
				    "max_items must be a positive number");
		r->max_items = v;
	}
	return FG_OK;
}

int pubsub_parse(const struct xml_node *iq, long cap, struct pubsub_req *r, struct pubsub_err *e)
{
	memset(r, 0, sizeof(*r));
	memset(e, 0, sizeof(*e));
	pubsub_conf_default(&r->opts);
	assert(cap >= 1);
	const char *type = xml_attr(iq, "type");
	bool get = type && !strcmp(type, "get"), set = type && !strcmp(type, "set");
	const struct xml_node *ps = xml_child(iq, XML_NS_PUBSUB, "pubsub");
	bool owner_ns = false;
	if (!ps) {
		ps = xml_child(iq, XML_NS_PUBSUB_OWNER, "pubsub");
		owner_ns = true;
	}
	if (!ps || (!get && !set))
		return fail(e, "modify", "bad-request", NULL, NULL, "not a pubsub request");
	const struct xml_node *extra;
	bool many;
	const struct xml_node *a = action(ps, &extra, &many);
	if (!a || many)
		return fail(e, "modify", "bad-request", NULL, NULL,
			    "a pubsub request carries exactly one action");
	r->node = xml_attr(a, "node");
	if (r->node && !name_ok(r->node))
		return fail(e, "modify", "bad-request", "nodeid-required", NULL,
			    "the node name is empty or long");
	const char *name = a->name;
	int rc;
	if (!owner_ns && !strcmp(name, "publish") && set) {
		rc = parse_publish(a, extra, cap, r, e);
	} else if (!owner_ns && !strcmp(name, "items") && get) {
		rc = parse_items(a, r, e, false);
	} else if (!owner_ns && !strcmp(name, "retract") && set) {
		rc = parse_items(a, r, e, true);
	} else if (!owner_ns && !strcmp(name, "create") && set) {
		r->op = PUBSUB_OP_CREATE;
		r->owner_only = true;
		const struct xml_node *x = extra ? xml_child(extra, XML_NS_DATA, "x") : NULL;
		rc = x ? pubsub_form(x, cap, &r->opts, &r->opts_set, e) : FG_OK;
		if (rc == FG_OK && !r->node)
			return fail(e, "modify", "not-acceptable", "nodeid-required", NULL,
				    "personal eventing nodes are created with a name");
	} else if (owner_ns && (!strcmp(name, "delete") || !strcmp(name, "purge")) && set) {
		r->op = !strcmp(name, "delete") ? PUBSUB_OP_DELETE : PUBSUB_OP_PURGE;
		r->owner_only = true;
		rc = FG_OK;
	} else if (owner_ns && !strcmp(name, "configure")) {
		r->op = get ? PUBSUB_OP_CONFIGURE_GET : PUBSUB_OP_CONFIGURE_SET;
		r->owner_only = true;
		const struct xml_node *x = xml_child(a, XML_NS_DATA, "x");
		rc = FG_OK;
		if (set && !x)
			return fail(e, "modify", "bad-request", NULL, NULL,
				    "a configuration without its form");
		if (set)
			rc = pubsub_form(x, cap, &r->opts, &r->opts_set, e);
	} else {
		/* subscribe, subscriptions, affiliations, options, default...:
		 * a personal eventing service sends to contacts by presence
		 * and entity capabilities instead (XEP-0163 §4). */
		static const struct {
			const char *el, *feature;
		} unsup[] = {
			{"subscribe", "subscribe"},
			{"unsubscribe", "subscribe"},
			{"subscriptions", "retrieve-subscriptions"},
			{"affiliations", "retrieve-affiliations"},
			{"options", "subscription-options"},
			{"default", "retrieve-default"},
		};
		const char *feature = "multi-collection";
		for (size_t i = 0; i < FG_ARRAY_LEN(unsup); i++)
			if (!strcmp(name, unsup[i].el))
				feature = unsup[i].feature;
		return fail(e, "cancel", "feature-not-implemented", "unsupported", feature,
			    "this personal eventing service does not do that");
	}
	if (rc != FG_OK)
		return rc;
	if (!r->node)
		return fail(e, "modify", "bad-request", "nodeid-required", NULL,
			    "the request names no node");
	return FG_OK;
}

bool pubsub_may_read(enum pubsub_access model, const struct pubsub_asker *a, struct pubsub_err *e)
{
	if (a->owner)
		return true;
	/* SPEC §4: a public-unverified partner's user reaches a local user
	 * only once added, whatever the node says. */
	if (!a->local && policy_needs_contact(a->partner) && !a->in_roster) {
		fail(e, "auth", "forbidden", NULL, NULL,
		     "the owner takes requests from users of this partner only from contacts "
		     "they have added");
		return false;
	}
	switch (model) {
	case PUBSUB_OPEN: return true;
	case PUBSUB_PRESENCE:
		if (a->sub_from)
			return true;
		fail(e, "auth", "not-authorized", "presence-subscription-required", NULL,
		     "the node is for those subscribed to the owner's presence");
		return false;
	case PUBSUB_ROSTER:
		if (a->in_roster && a->sub_from)
			return true;
		fail(e, "auth", "not-authorized", "not-in-roster-group", NULL,
		     "the node is for the owner's contacts");
		return false;
	case PUBSUB_WHITELIST: break;
	}
	fail(e, "cancel", "not-allowed", "closed-node", NULL, "the node is the owner's alone");
	return false;
}

size_t pubsub_notify_node(const char *var)
{
	static const char suffix[] = "+notify";
	size_t n = var ? strlen(var) : 0, s = sizeof(suffix) - 1;
	if (n <= s || strcmp(var + n - s, suffix) != 0)
		return 0;
	return n - s;
}

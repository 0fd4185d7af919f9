#include "policy_json.h"

#include "fg.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *const derived_keys[] = {"allowed_methods", "warnings",
					   "connection_limit_default", NULL};

static bool in_list(const char *key, const char *const *list)
{
	for (; list && *list; list++)
		if (strcmp(key, *list) == 0)
			return true;
	return false;
}

void policy_json_matrix_verdict(const struct partner *p, struct policy_verdict *v)
{
	/* policy_check against an empty set and no local domains leaves only
	 * what the matrix says (and syntax, which a saved record passes). */
	struct policy *empty = policy_new();
	struct partner *c = partner_clone(p);
	memset(v, 0, sizeof(*v));
	if (empty && c)
		policy_check(empty, c, true, NULL, v);
	partner_free(&c);
	policy_free(&empty);
}

json_t *policy_json_partner(const struct partner *p, const struct gateway_settings *gw,
			    bool derived)
{
	json_t *o = json_object();
	json_t *doms = json_array();
	for (size_t i = 0; i < p->additional_domains.n; i++)
		json_array_append_new(doms, json_string(p->additional_domains.v[i]));
	unsigned limit = gw ? partner_connection_limit(p, gw) : p->connection_limit;
	json_object_set_new(o, "domain", json_string(p->domain));
	json_object_set_new(o, "description", json_string(p->description ? p->description : ""));
	json_object_set_new(o, "additional_domains", doms);
	json_object_set_new(o, "partner_type", json_string(policy_partner_type_name(p->type)));
	json_object_set_new(o, "tls", json_string(policy_negotiation_name(p->tls)));
	json_object_set_new(o, "sasl", json_string(policy_negotiation_name(p->sasl)));
	json_object_set_new(o, "dialback", json_boolean(p->dialback));
	json_object_set_new(o, "keepalive", json_boolean(p->keepalive));
	json_object_set_new(o, "connection_limit", json_integer(limit));
	json_object_set_new(o, "proxy_fqdn", json_string(p->proxy_fqdn ? p->proxy_fqdn : ""));
	json_object_set_new(o, "enabled", json_boolean(p->enabled));
	json_object_set_new(o, "bidi", json_boolean(p->bidi));
	json_object_set_new(o, "dane", json_string(policy_dane_name(p->dane)));
	json_t *pins = json_array();
	for (size_t i = 0; i < p->pins.n; i++)
		json_array_append_new(pins, json_string(p->pins.v[i]));
	json_object_set_new(o, "pins", pins);
	if (derived) {
		json_object_set_new(o, "connection_limit_default",
				    json_boolean(p->connection_limit == 0));
		unsigned m = policy_allowed_methods(p);
		json_t *methods = json_array();
		static const enum auth_method order[] = {AUTH_SASL_TLS, AUTH_TLS_DIALBACK,
							 AUTH_TCP_DIALBACK};
		for (size_t i = 0; i < FG_ARRAY_LEN(order); i++)
			if (m & order[i])
				json_array_append_new(methods,
						      json_string(policy_method_name(order[i])));
		json_object_set_new(o, "allowed_methods", methods);
		struct policy_verdict v;
		policy_json_matrix_verdict(p, &v);
		json_t *warn = json_array();
		for (size_t i = 0; i < v.nwarnings; i++)
			json_array_append_new(warn, json_string(v.warnings[i]));
		json_object_set_new(o, "warnings", warn);
	}
	return o;
}

/* The value as text, whether JSON gave a string, a boolean or a number. */
const char *policy_json_text(json_t *v, char *buf, size_t len)
{
	if (json_is_string(v))
		return json_string_value(v);
	if (json_is_true(v))
		return "true";
	if (json_is_false(v))
		return "false";
	if (json_is_integer(v)) {
		snprintf(buf, len, "%lld", (long long)json_integer_value(v));
		return buf;
	}
	return NULL;
}

static int parse_uint(const char *s, unsigned max, unsigned *out)
{
	if (!s || !*s || *s == '-' || *s == '+')
		return FG_INVAL;
	char *end;
	errno = 0;
	unsigned long v = strtoul(s, &end, 10);
	if (errno || *end || v > max)
		return FG_INVAL;
	*out = (unsigned)v;
	return FG_OK;
}

static char *dup_or_null(const char *s)
{
	return s ? strdup(s) : NULL;
}

/* A list field (additional domains, pins) from a JSON array or a
 * comma-separated string, replacing what the record held. */
struct list_field {
	const char *name;
	const char *example;
	struct domain_list *(*list)(struct partner *p);
	int (*add)(struct partner *p, const char *x);
};

static struct domain_list *domains_of(struct partner *p)
{
	return &p->additional_domains;
}

static struct domain_list *pins_of(struct partner *p)
{
	return &p->pins;
}

static const struct list_field list_fields[] = {
	{"additional_domains", "domain names such as corp.fabrikam.com,it.fabrikam.com", domains_of,
	 partner_add_domain},
	{"pins", "public-key pins as 'fedgate probe DOMAIN' prints them", pins_of, partner_add_pin},
};

static const struct list_field *list_field(const char *key)
{
	for (size_t i = 0; i < FG_ARRAY_LEN(list_fields); i++)
		if (strcmp(key, list_fields[i].name) == 0)
			return &list_fields[i];
	return NULL;
}

static int apply_list(struct partner *p, const struct list_field *lf, json_t *v, char *err,
		      size_t errlen)
{
	struct domain_list *l = lf->list(p);

	for (size_t i = 0; i < l->n; i++)
		free(l->v[i]);
	free(l->v);
	*l = (struct domain_list){0};
	if (json_is_array(v)) {
		size_t i;
		json_t *d;
		json_array_foreach(v, i, d)
		{
			if (!json_is_string(d)) {
				snprintf(err, errlen, "%s: entry %zu is not a string; give %s",
					 lf->name, i + 1, lf->example);
				return FG_INVAL;
			}
			if (lf->add(p, json_string_value(d)) != FG_OK)
				return FG_NOMEM;
		}
		return FG_OK;
	}
	if (!json_is_string(v)) {
		snprintf(err, errlen, "%s: give a list of %s", lf->name, lf->example);
		return FG_INVAL;
	}
	char *copy = strdup(json_string_value(v));
	if (!copy)
		return FG_NOMEM;
	char *save = NULL;
	for (char *tok = strtok_r(copy, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
		while (*tok == ' ' || *tok == '\t')
			tok++;
		size_t n = strlen(tok);
		while (n && (tok[n - 1] == ' ' || tok[n - 1] == '\t'))
			tok[--n] = '\0';
		if (n && lf->add(p, tok) != FG_OK) {
			free(copy);
			return FG_NOMEM;
		}
	}
	free(copy);
	return FG_OK;
}

int policy_json_apply(struct partner *p, json_t *obj, const char *const *skip, char *err,
		      size_t errlen, const char **field)
{
	const char *unused;
	if (!field)
		field = &unused;
	*field = NULL;
	if (!json_is_object(obj)) {
		snprintf(err, errlen, "a partner must be a JSON object");
		return FG_INVAL;
	}
	const char *key;
	json_t *v;
	char num[32];
	json_object_foreach(obj, key, v)
	{
		if (in_list(key, skip) || in_list(key, derived_keys))
			continue;
		const char *s = policy_json_text(v, num, sizeof(num));
		/* Every error from here on is about this key. */
		*field = key;
		const struct list_field *lf = list_field(key);
		if (lf != NULL) {
			int rc = apply_list(p, lf, v, err, errlen);
			if (rc != FG_OK)
				return rc;
			continue;
		}
		if (!s) {
			snprintf(err, errlen, "%s: the value must be a string, number or boolean",
				 key);
			return FG_INVAL;
		}
		if (strcmp(key, "domain") == 0) {
			free(p->domain);
			p->domain = strdup(s);
		} else if (strcmp(key, "description") == 0) {
			free(p->description);
			p->description = strdup(s);
		} else if (strcmp(key, "proxy_fqdn") == 0) {
			free(p->proxy_fqdn);
			p->proxy_fqdn = *s ? dup_or_null(s) : NULL;
		} else if (strcmp(key, "partner_type") == 0) {
			if (policy_parse_partner_type(s, &p->type) != FG_OK) {
				snprintf(err, errlen,
					 "partner_type: '%.60s' is not a partner type; use "
					 "federated, "
					 "public-verified or public-unverified",
					 s);
				return FG_INVAL;
			}
		} else if (strcmp(key, "tls") == 0 || strcmp(key, "sasl") == 0) {
			enum negotiation *n = key[0] == 't' ? &p->tls : &p->sasl;
			if (policy_parse_negotiation(s, n) != FG_OK) {
				snprintf(err, errlen,
					 "%s: '%.60s' is not a valid value; use required, optional "
					 "or "
					 "not-supported",
					 key, s);
				return FG_INVAL;
			}
		} else if (strcmp(key, "dane") == 0) {
			if (policy_parse_dane(s, &p->dane) != FG_OK) {
				snprintf(err, errlen,
					 "dane: '%.60s' is not a valid value; use off, "
					 "opportunistic or required",
					 s);
				return FG_INVAL;
			}
		} else if (strcmp(key, "dialback") == 0 || strcmp(key, "keepalive") == 0 ||
			   strcmp(key, "enabled") == 0 || strcmp(key, "bidi") == 0) {
			bool *b = key[0] == 'd'	  ? &p->dialback
				  : key[0] == 'k' ? &p->keepalive
				  : key[0] == 'b' ? &p->bidi
						  : &p->enabled;
			if (policy_parse_bool(s, b) != FG_OK) {
				snprintf(err, errlen, "%s: '%.60s' is not true or false", key, s);
				return FG_INVAL;
			}
		} else if (strcmp(key, "connection_limit") == 0) {
			if (parse_uint(s, 100000, &p->connection_limit) != FG_OK) {
				snprintf(err, errlen,
					 "connection_limit: '%.60s' is not a number from 0 to "
					 "100000 "
					 "(0 = the gateway's partner_connection_limit)",
					 s);
				return FG_INVAL;
			}
		} else {
			snprintf(
				err, errlen,
				"%.60s: unknown field; a partner has domain, description, "
				"additional_domains, partner_type, tls, sasl, dialback, keepalive, "
				"connection_limit, proxy_fqdn, enabled, bidi, dane and pins",
				key);
			return FG_INVAL;
		}
		if ((strcmp(key, "domain") == 0 && !p->domain) ||
		    (strcmp(key, "description") == 0 && !p->description))
			return FG_NOMEM;
	}
	/* A record as `partner get` shows it holds the limit in force, the
	 * gateway's when connection_limit_default is true: saved back, it
	 * must keep following the gateway, not pin today's value. */
	json_t *deflt = json_object_get(obj, "connection_limit_default");
	if (deflt && !in_list("connection_limit_default", skip)) {
		if (!json_is_boolean(deflt)) {
			*field = "connection_limit_default";
			snprintf(err, errlen, "connection_limit_default: must be true or false");
			return FG_INVAL;
		}
		if (json_is_true(deflt))
			p->connection_limit = 0;
	}
	*field = NULL;
	return FG_OK;
}

json_t *policy_json_gateway(const struct gateway_settings *gw)
{
	json_t *o = json_object();
	json_object_set_new(o, "connection_limit", json_integer(gw->connection_limit));
	json_object_set_new(o, "partner_connection_limit",
			    json_integer(gw->partner_connection_limit));
	json_object_set_new(o, "keepalive_interval", json_integer(gw->keepalive_interval));
	json_object_set_new(o, "stream_establishment_timeout",
			    json_integer(gw->stream_establishment_timeout));
	json_object_set_new(o, "stream_inactivity_timeout",
			    json_integer(gw->stream_inactivity_timeout));
	json_object_set_new(o, "subscription_refresh_interval",
			    json_integer(gw->subscription_refresh_interval));
	json_object_set_new(o, "log_message_bodies", json_boolean(gw->log_message_bodies));
	json_object_set_new(o, "dialback_secret",
			    json_string(gw->dialback_secret ? "(set)" : "(unset)"));
	return o;
}

int policy_json_apply_gateway(struct gateway_settings *gw, json_t *obj, const char *const *skip,
			      char *err, size_t errlen, const char **field)
{
	const char *unused;
	if (!field)
		field = &unused;
	*field = NULL;
	static const struct {
		const char *name;
		size_t off;
	} nums[] = {
		{"connection_limit", offsetof(struct gateway_settings, connection_limit)},
		{"partner_connection_limit",
		 offsetof(struct gateway_settings, partner_connection_limit)},
		{"keepalive_interval", offsetof(struct gateway_settings, keepalive_interval)},
		{"stream_establishment_timeout",
		 offsetof(struct gateway_settings, stream_establishment_timeout)},
		{"stream_inactivity_timeout",
		 offsetof(struct gateway_settings, stream_inactivity_timeout)},
		{"subscription_refresh_interval",
		 offsetof(struct gateway_settings, subscription_refresh_interval)},
	};
	const char *key;
	json_t *v;
	char num[32];
	json_object_foreach(obj, key, v)
	{
		if (in_list(key, skip))
			continue;
		*field = key;
		const char *s = policy_json_text(v, num, sizeof(num));
		if (!s) {
			snprintf(err, errlen, "%s: the value must be a string, number or boolean",
				 key);
			return FG_INVAL;
		}
		bool done = false;
		for (size_t i = 0; i < FG_ARRAY_LEN(nums) && !done; i++) {
			if (strcmp(key, nums[i].name) != 0)
				continue;
			unsigned *slot = (unsigned *)((char *)gw + nums[i].off);
			if (parse_uint(s, 100000000, slot) != FG_OK) {
				snprintf(err, errlen, "%s: '%.60s' is not a whole number", key, s);
				return FG_INVAL;
			}
			done = true;
		}
		if (done)
			continue;
		if (strcmp(key, "log_message_bodies") == 0) {
			if (policy_parse_bool(s, &gw->log_message_bodies) != FG_OK) {
				snprintf(err, errlen,
					 "log_message_bodies: '%.60s' is not true or false", s);
				return FG_INVAL;
			}
		} else if (strcmp(key, "dialback_secret") == 0) {
			/* Never echo the value back, not even in an error. */
			char *dup = strdup(s);
			if (!dup)
				return FG_NOMEM;
			free(gw->dialback_secret);
			gw->dialback_secret = dup;
		} else {
			snprintf(err, errlen,
				 "%.60s: unknown setting; the gateway has connection_limit, "
				 "partner_connection_limit, keepalive_interval, "
				 "stream_establishment_timeout, stream_inactivity_timeout, "
				 "subscription_refresh_interval, log_message_bodies and "
				 "dialback_secret",
				 key);
			return FG_INVAL;
		}
	}
	*field = NULL;
	return FG_OK;
}

void policy_json_diff(json_t *before, json_t *after,
		      void (*fn)(void *ud, const char *key, json_t *old, json_t *new_v), void *ud)
{
	json_t *keys = json_object();
	const char *k;
	json_t *x;
	if (json_is_object(before))
		json_object_foreach(before, k, x) json_object_set(keys, k, json_true());
	if (json_is_object(after))
		json_object_foreach(after, k, x) json_object_set(keys, k, json_true());
	json_object_foreach(keys, k, x)
	{
		json_t *b = json_is_object(before) ? json_object_get(before, k) : NULL;
		json_t *a = json_is_object(after) ? json_object_get(after, k) : NULL;
		if (!(b && a && json_equal(a, b)))
			fn(ud, k, b, a);
	}
	json_decref(keys);
}

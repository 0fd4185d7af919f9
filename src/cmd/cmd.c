#include "cmd.h"
#include "cmd_txn.h"
#include "cmd_user.h"

#include "admin.h"
#include "conf.h"
#include "fg.h"
#include "jid.h"
#include "log.h"
#include "policy_json.h"
#include "sasl.h"
#include "store_sqlite.h"
#include "store_users.h"
#include "suggest.h"
#include "users.h"

#include <assert.h>
#include <ctype.h>
#include <fnmatch.h>
#include <openssl/rand.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

/* ---- the table ---- */

#define PARTNER_FIELDS                                                                       \
	{"description", "--description", CP_STRING, false, "free text: notes, contacts"},    \
		{"additional_domains", "--additional-domains", CP_LIST, false,               \
		 "further domains of the partner, comma-separated"},                         \
		{"partner_type", "--partner-type", CP_STRING, false,                         \
		 "federated, public-verified or public-unverified"},                         \
		{"tls", "--tls", CP_STRING, false, "required, optional or not-supported"},   \
		{"sasl", "--sasl", CP_STRING, false, "required, optional or not-supported"}, \
		{"dialback", "--dialback", CP_BOOL, false, "true or false"},                 \
		{"keepalive", "--keepalive", CP_BOOL, false, "true or false"},               \
		{"connection_limit", "--connection-limit", CP_UINT, false,                   \
		 "most simultaneous streams; 0 = the gateway default"},                      \
		{"enabled", "--enabled", CP_BOOL, false,                                     \
		 "false suspends federation with the partner (kept, not deleted)"},          \
		{"bidi", "--bidi", CP_BOOL, false,                                           \
		 "true lets one stream carry both directions (XEP-0288)"},                   \
		{"dane", "--dane", CP_STRING, false, "off, opportunistic or required"},      \
		{"pins", "--pins", CP_LIST, false,                                           \
		 "SHA-256 public-key pins, comma-separated; only those keys are accepted"},  \
	{                                                                                    \
		"proxy_fqdn", "--proxy-fqdn", CP_STRING, false,                              \
			"host[:port] to connect to instead of DNS SRV"                       \
	}

/* The domain as an argument, like the other partner commands take it, or
 * as --domain (the first spelling); both must then agree. */
static const struct cmd_param p_partner_new[] = {
	{"domain", NULL, CP_STRING, true, "the partner's primary domain"},
	{"domain", "--domain", CP_STRING, false, "the same, as an option"},
	PARTNER_FIELDS,
	{NULL, NULL, 0, false, NULL},
};

static const struct cmd_param p_partner_set[] = {
	{"domain", NULL, CP_STRING, true, "the partner's primary domain"},
	PARTNER_FIELDS,
	{"add_domain", "--add-domain", CP_REPEAT, false, "add an additional domain"},
	{"remove_domain", "--remove-domain", CP_REPEAT, false, "remove an additional domain"},
	{"clear_domains", "--clear-domains", CP_FLAG, false, "remove every additional domain"},
	{"add_pin", "--add-pin", CP_REPEAT, false, "add a public-key pin"},
	{"remove_pin", "--remove-pin", CP_REPEAT, false, "remove a public-key pin"},
	{"clear_pins", "--clear-pins", CP_FLAG, false, "remove every pin"},
	{NULL, NULL, 0, false, NULL},
};

static const struct cmd_param p_partner_get[] = {
	{"domain", NULL, CP_STRING, false, "one partner (primary or additional domain)"},
	{"filter", "--filter", CP_STRING, false, "only domains matching this glob, e.g. '*.org'"},
	{NULL, NULL, 0, false, NULL},
};

static const struct cmd_param p_domain_only[] = {
	{"domain", NULL, CP_STRING, true, "the partner's primary domain"},
	{NULL, NULL, 0, false, NULL},
};

static const struct cmd_param p_none[] = {
	{NULL, NULL, 0, false, NULL},
};

static const struct cmd_param p_import[] = {
	{"partners", NULL, CP_STRING, true, "a file written by 'partner export'"},
	{NULL, NULL, 0, false, NULL},
};

static const struct cmd_param p_gateway_set[] = {
	{"connection_limit", "--connection-limit", CP_UINT, false, "most s2s streams in all"},
	{"partner_connection_limit", "--partner-connection-limit", CP_UINT, false,
	 "default per-partner stream limit"},
	{"keepalive_interval", "--keepalive-interval", CP_UINT, false, "seconds"},
	{"stream_establishment_timeout", "--stream-establishment-timeout", CP_UINT, false,
	 "seconds"},
	{"stream_inactivity_timeout", "--stream-inactivity-timeout", CP_UINT, false, "seconds"},
	{"subscription_refresh_interval", "--subscription-refresh-interval", CP_UINT, false,
	 "seconds"},
	{"log_message_bodies", "--log-message-bodies", CP_BOOL, false, "true or false"},
	{"regenerate_dialback_secret", "--regenerate-dialback-secret", CP_FLAG, false,
	 "make a new dialback secret (streams re-authenticate)"},
	{NULL, NULL, 0, false, NULL},
};

static const struct cmd_param p_audit[] = {
	{"since", "--since", CP_STRING, false,
	 "only changes since T: 2026-11-21, 2026-11-21T10:00:00Z, or an age such as 2h or 7d"},
	{"filter", "--filter", CP_STRING, false,
	 "only changes with this text in any field (who, target, before, after...), any case"},
	{"limit", "--limit", CP_UINT, false, "at most N changes, the newest (0 = all)"},
	{"offset", "--offset", CP_UINT, false,
	 "skip the K newest changes first (with --limit: one page of a long log)"},
	{NULL, NULL, 0, false, NULL},
};

static const struct cmd_param p_test_im[] = {
	{"to", "--to", CP_STRING, true, "a partner user's JID, e.g. bob@fabrikam.com"},
	{"from", "--from", CP_STRING, false,
	 "a local user to send as (default: the server's fedgate-test@D)"},
	{"body", "--body", CP_STRING, false, "the text (default: a line naming fedgate)"},
	{"wait", "--wait", CP_UINT, false,
	 "seconds to wait for a delivery receipt (default 10; 0 = do not wait)"},
	{NULL, NULL, 0, false, NULL},
};

static const struct cmd_param p_probe[] = {
	{"domain", NULL, CP_STRING, true, "the server domain to probe, partner or not"},
	{"tls", "--tls", CP_STRING, false,
	 "judge these settings: required, optional or not-supported (default: the partner's, "
	 "or a new partner's)"},
	{"sasl", "--sasl", CP_STRING, false, "required, optional or not-supported"},
	{"dialback", "--dialback", CP_BOOL, false, "true or false"},
	{NULL, NULL, 0, false, NULL},
};

/* What a positional parameter is called in messages and help. */
const char *cmd_arg_label(const struct cmd_param *p)
{
	if (strcmp(p->name, "partners") == 0)
		return "FILE";
	if (strcmp(p->name, "jid") == 0)
		return "JID";
	if (strcmp(p->name, "name") == 0)
		return "NAME";
	return "DOMAIN";
}

/* "unknown option '--domian'; did you mean '--domain'?": the command's
 * flags and the front-end's (which the front-end takes out before, so one
 * here is misspelt or misplaced). */
static void unknown_flag(const struct cmd_def *def, const char *flag, size_t len, char *err,
			 size_t errlen)
{
	const char *names[64];
	size_t n = 0;
	char word[80];
	snprintf(word, sizeof(word), "%.*s", (int)(len < 79 ? len : 79), flag);
	for (const struct cmd_param *p = def->params; p->name && n < 60; p++)
		if (p->flag)
			names[n++] = p->flag;
	names[n++] = "--json";
	names[n++] = "--help";
	names[n++] = "--config";
	if (def->writes == CMD_CHANGES)
		names[n++] = "--what-if";
	const char *hint = suggest_closest(word, names, n);
	if (hint && strcmp(hint, word) != 0)
		snprintf(err, errlen,
			 "%s: unknown option '%s'; did you mean '%s'? (see 'fedgate %s --help')",
			 def->name, word, hint, def->name);
	else
		snprintf(err, errlen, "%s: unknown option '%s' (see 'fedgate %s --help')",
			 def->name, word, def->name);
}

static const struct cmd_param *find_positional(const struct cmd_def *def, const char *name)
{
	for (const struct cmd_param *p = def->params; p->name; p++)
		if (!p->flag && p->type != CP_SECRET && strcmp(p->name, name) == 0)
			return p;
	return NULL;
}

/* Sets params[name] = val unless it holds another value already (a
 * parameter given as an argument and as its option, or an option given
 * twice): then FG_INVAL with err. The same value twice is no conflict. */
static int set_once(const struct cmd_def *def, json_t *params, const struct cmd_param *p,
		    const char *val, char *err, size_t errlen)
{
	json_t *old = json_object_get(params, p->name);
	if (!old) {
		json_object_set_new(params, p->name, json_string(val));
		return FG_OK;
	}
	if (json_is_string(old) && strcmp(json_string_value(old), val) == 0)
		return FG_OK;
	if (p->flag && !find_positional(def, p->name))
		snprintf(err, errlen, "%s: %s given twice", def->name, p->flag);
	else
		snprintf(err, errlen,
			 "%s: the %s is given twice, as '%.100s' and as '%.100s'; give it once",
			 def->name, cmd_arg_label(p), json_string_value(old), val);
	return FG_INVAL;
}

static const struct cmd_param *find_flag(const struct cmd_def *def, const char *flag, size_t len)
{
	for (const struct cmd_param *p = def->params; p->name; p++)
		if (p->flag && strlen(p->flag) == len && strncmp(p->flag, flag, len) == 0)
			return p;
	return NULL;
}

int cmd_parse_argv(const struct cmd_def *def, int argc, char **argv, json_t **out, char *err,
		   size_t errlen)
{
	json_t *params = json_object();
	const struct cmd_param *pos = def->params;
	for (int i = 0; i < argc; i++) {
		const char *a = argv[i];
		if (strncmp(a, "--", 2) == 0) {
			const char *eq = strchr(a, '=');
			size_t flen = eq ? (size_t)(eq - a) : strlen(a);
			const struct cmd_param *p = find_flag(def, a, flen);
			if (!p) {
				unknown_flag(def, a, flen, err, errlen);
				goto usage;
			}
			if (p->type == CP_FLAG) {
				if (eq) {
					snprintf(err, errlen, "%s: %s takes no value", def->name,
						 p->flag);
					goto usage;
				}
				json_object_set_new(params, p->name, json_true());
				continue;
			}
			const char *val = eq ? eq + 1 : (i + 1 < argc ? argv[++i] : NULL);
			if (!val) {
				snprintf(err, errlen, "%s: %s needs a value (%s)", def->name,
					 p->flag, p->help);
				goto usage;
			}
			if (p->type == CP_REPEAT) {
				json_t *arr = json_object_get(params, p->name);
				if (!arr) {
					arr = json_array();
					json_object_set_new(params, p->name, arr);
				}
				json_array_append_new(arr, json_string(val));
			} else if (set_once(def, params, p, val, err, errlen) != FG_OK) {
				goto usage;
			}
			continue;
		}
		while (pos->name && (pos->flag || pos->type == CP_SECRET))
			pos++;
		if (!pos->name) {
			snprintf(err, errlen, "%s: unexpected argument '%.80s'", def->name, a);
			goto usage;
		}
		if (set_once(def, params, pos, a, err, errlen) != FG_OK)
			goto usage;
		pos++;
	}
	for (const struct cmd_param *p = def->params; p->name; p++) {
		/* A secret is the front-end's to add after this. */
		if (p->required && p->type != CP_SECRET && !json_object_get(params, p->name)) {
			if (p->flag)
				snprintf(err, errlen, "%s: %s is required (%s)", def->name, p->flag,
					 p->help);
			else
				snprintf(err, errlen, "%s: the %s is required (%s)", def->name,
					 cmd_arg_label(p), p->help);
			goto usage;
		}
	}
	*out = params;
	return FG_OK;
usage:
	json_decref(params);
	return FG_INVAL;
}

static void add_verdict(json_t *body, const struct policy_verdict *v, const char *prefix)
{
	char buf[400];
	for (size_t i = 0; i < v->nerrors; i++) {
		snprintf(buf, sizeof(buf), "%s%s", prefix, v->errors[i]);
		cmd_add_error(body, v->error_fields[i], buf);
	}
	for (size_t i = 0; i < v->nwarnings; i++) {
		snprintf(buf, sizeof(buf), "%s%s", prefix, v->warnings[i]);
		json_array_append_new(json_object_get(body, "warnings"), json_string(buf));
	}
}

static char *partner_text(const struct partner *p)
{
	if (!p)
		return NULL;
	json_t *j = policy_json_partner(p, NULL, false);
	char *s = json_dumps(j, JSON_COMPACT | JSON_SORT_KEYS);
	json_decref(j);
	return s;
}

static bool param_flag(json_t *params, const char *name)
{
	json_t *v = json_object_get(params, name);
	if (json_is_true(v))
		return true;
	bool b = false;
	if (json_is_string(v) && policy_parse_bool(json_string_value(v), &b) == FG_OK)
		return b;
	return false;
}

/* The partner whose primary domain is `name`, whatever its spelling. */
static const struct partner *find_partner(struct cmd_env *env, const char *name, bool any)
{
	char *prep = NULL;
	if (jid_domain_prep(name, strlen(name), &prep) != JID_OK)
		return NULL;
	const struct partner *p = any ? policy_lookup(env->live.partners, prep)
				      : policy_get(env->live.partners, prep);
	free(prep);
	return p;
}

static const struct domain_list *local_domains(struct cmd_env *env, struct domain_list *dl)
{
	if (!env->live.conf)
		return NULL;
	dl->v = env->live.conf->domains.v;
	dl->n = env->live.conf->domains.n;
	return dl;
}

static json_t *partner_result(struct cmd_env *env, const struct partner *p)
{
	return policy_json_partner(p, &env->live.gw, true);
}

/* ---- partner new / set ---- */

static const char *const skip_set[] = {"domain",  "add_domain", "remove_domain", "clear_domains",
				       "add_pin", "remove_pin", "clear_pins",	 NULL};

static void finish_partner_change(struct cmd_env *env, const struct cmd_request *req,
				  struct partner *p, const struct partner *old, cmd_reply_fn reply,
				  void *ud)
{
	struct policy_verdict v;
	bool is_new = old == NULL;
	struct domain_list dl;
	int rc = policy_check(env->live.partners, p, is_new, local_domains(env, &dl), &v);
	struct cmd_txn *t = cmd_txn_new(env, reply, ud);
	if (!t) {
		partner_free(&p);
		cmd_reply_error(reply, ud, CMD_REFUSED, NULL, "out of memory");
		return;
	}
	add_verdict(t->body, &v, "");
	json_object_set_new(t->body, "result", partner_result(env, p));
	if (rc != FG_OK) {
		json_object_set_new(t->body, "message", json_string("refused: nothing was saved"));
		reply(ud, CMD_REFUSED, json_incref(t->body));
		partner_free(&p);
		cmd_txn_free(t);
		return;
	}
	if (req->what_if) {
		json_object_set_new(t->body, "what_if", json_true());
		json_object_set_new(t->body, "message",
				    json_string(is_new ? "what if: the partner would be created; "
							 "nothing was saved"
						       : "what if: the partner would be changed; "
							 "nothing was saved"));
		reply(ud, CMD_OK, json_incref(t->body));
		partner_free(&p);
		cmd_txn_free(t);
		return;
	}
	if (old && partner_equal(old, p)) {
		json_object_set_new(t->body, "message", json_string("no change"));
		reply(ud, CMD_OK, json_incref(t->body));
		partner_free(&p);
		cmd_txn_free(t);
		return;
	}
	t->put = p;
	/* A new partner is inserted, never put over one another writer saved
	 * since this env was loaded. */
	t->ops[t->nops++] = (struct store_op){.kind = old ? STORE_PUT_PARTNER : STORE_NEW_PARTNER,
					      .partner = p};
	if (cmd_txn_audit(t, req, req->name, p->domain, partner_text(old), partner_text(p)) !=
	    FG_OK) {
		cmd_reply_error(reply, ud, CMD_REFUSED, NULL, "out of memory");
		cmd_txn_free(t);
		return;
	}
	json_object_set_new(t->body, "message",
			    json_string(is_new ? "partner created" : "partner changed"));
	cmd_txn_commit(t);
}

static void cmd_partner_new(struct cmd_env *env, const struct cmd_request *req, cmd_reply_fn reply,
			    void *ud)
{
	const char *domain = cmd_param_str(req->params, "domain");
	struct partner *p = partner_new(domain ? domain : "");
	if (!p) {
		cmd_reply_error(reply, ud, CMD_REFUSED, NULL, "out of memory");
		return;
	}
	char err[400];
	const char *field = NULL;
	if (policy_json_apply(p, req->params, (const char *const[]){"domain", NULL}, err,
			      sizeof(err), &field) != FG_OK) {
		cmd_reply_error(reply, ud, CMD_REFUSED, field, err);
		partner_free(&p);
		return;
	}
	finish_partner_change(env, req, p, NULL, reply, ud);
}

/* --add-domain and the like: what `partner set` changes in a list without
 * restating it. */
struct list_edit {
	const char *clear, *remove, *add;
	const char *what; /* "domain name", "pin" */
	void (*clear_fn)(struct partner *p);
	/* Removes x (as given); false when it is not there. */
	bool (*remove_fn)(struct partner *p, const char *x);
	int (*add_fn)(struct partner *p, const char *x);
	const char *listed; /* "an additional domain", "a pin" */
};

static bool remove_prepared_domain(struct partner *p, const char *name)
{
	char *prep = NULL;
	bool ok = jid_domain_prep(name, strlen(name), &prep) == JID_OK &&
		  partner_remove_domain(p, prep);
	free(prep);
	return ok;
}

static const struct list_edit list_edits[] = {
	{"clear_domains", "remove_domain", "add_domain",
	 "domain names, e.g. [\"corp.fabrikam.com\"]", partner_clear_domains,
	 remove_prepared_domain, partner_add_domain, "an additional domain"},
	{"clear_pins", "remove_pin", "add_pin", "pins as 'fedgate probe' prints them",
	 partner_clear_pins, partner_remove_pin, partner_add_pin, "a pin"},
};

/* Order: clear, then remove, then add, whatever the flags' order. The CLI
 * sends lists; the API and the control socket may send anything, and a
 * change that would be ignored must be refused instead. */
static int apply_list_edits(struct partner *p, const struct partner *old, json_t *params, char *err,
			    size_t errlen, const char **field)
{
	for (size_t k = 0; k < FG_ARRAY_LEN(list_edits); k++) {
		const struct list_edit *e = &list_edits[k];
		const char *const names[] = {e->remove, e->add};
		for (size_t j = 0; j < 2; j++) {
			json_t *v = json_object_get(params, names[j]);
			size_t i;
			json_t *d;
			bool ok = !v || json_is_array(v);
			json_array_foreach(v, i, d) ok = ok && json_is_string(d);
			if (!ok) {
				*field = names[j];
				snprintf(err, errlen, "%s: give a list of %s", names[j], e->what);
				return FG_INVAL;
			}
		}
		if (param_flag(params, e->clear))
			e->clear_fn(p);
		size_t i;
		json_t *d;
		json_array_foreach(json_object_get(params, e->remove), i, d)
		{
			if (!e->remove_fn(p, json_string_value(d))) {
				snprintf(err, errlen, "%s: %.200s is not %s of %s", e->remove,
					 json_string_value(d), e->listed, old->domain);
				*field = e->remove;
				return FG_INVAL;
			}
		}
		json_array_foreach(json_object_get(params, e->add), i, d)
		{
			if (e->add_fn(p, json_string_value(d)) != FG_OK) {
				snprintf(err, errlen, "%s: out of memory", e->add);
				*field = e->add;
				return FG_NOMEM;
			}
		}
	}
	return FG_OK;
}

static void cmd_partner_set(struct cmd_env *env, const struct cmd_request *req, cmd_reply_fn reply,
			    void *ud)
{
	const char *domain = cmd_param_str(req->params, "domain");
	const struct partner *old = domain ? find_partner(env, domain, false) : NULL;
	char err[400];
	if (!old) {
		snprintf(err, sizeof(err),
			 "no partner has the primary domain '%.200s' (see 'fedgate partner get')",
			 domain ? domain : "");
		cmd_reply_error(reply, ud, CMD_NOT_FOUND, NULL, err);
		return;
	}
	struct partner *p = partner_clone(old);
	if (!p) {
		cmd_reply_error(reply, ud, CMD_REFUSED, NULL, "out of memory");
		return;
	}
	const char *field = NULL;
	if (policy_json_apply(p, req->params, skip_set, err, sizeof(err), &field) != FG_OK)
		goto refuse;
	if (apply_list_edits(p, old, req->params, err, sizeof(err), &field) != FG_OK)
		goto refuse;
	finish_partner_change(env, req, p, old, reply, ud);
	return;
refuse:
	cmd_reply_error(reply, ud, CMD_REFUSED, field, err);
	partner_free(&p);
}

/* ---- partner get / remove / export / import ---- */

static bool matches(const struct partner *p, const char *glob)
{
	if (fnmatch(glob, p->domain, FNM_CASEFOLD) == 0)
		return true;
	for (size_t i = 0; i < p->additional_domains.n; i++)
		if (fnmatch(glob, p->additional_domains.v[i], FNM_CASEFOLD) == 0)
			return true;
	return false;
}

static void cmd_partner_get(struct cmd_env *env, const struct cmd_request *req, cmd_reply_fn reply,
			    void *ud)
{
	const char *domain = cmd_param_str(req->params, "domain");
	const char *filter = cmd_param_str(req->params, "filter");
	json_t *b = cmd_body_new();
	if (domain) {
		const struct partner *p = find_partner(env, domain, true);
		if (!p) {
			char err[300];
			snprintf(err, sizeof(err), "no partner has the domain '%.200s'", domain);
			cmd_add_error(b, NULL, err);
			reply(ud, CMD_NOT_FOUND, b);
			return;
		}
		json_object_set_new(b, "result", partner_result(env, p));
		reply(ud, CMD_OK, b);
		return;
	}
	json_t *list = json_array();
	for (size_t i = 0; i < policy_count(env->live.partners); i++) {
		const struct partner *p = policy_at(env->live.partners, i);
		if (!filter || matches(p, filter))
			json_array_append_new(list, partner_result(env, p));
	}
	json_object_set_new(b, "result", list);
	reply(ud, CMD_OK, b);
}

static void cmd_partner_remove(struct cmd_env *env, const struct cmd_request *req,
			       cmd_reply_fn reply, void *ud)
{
	const char *domain = cmd_param_str(req->params, "domain");
	const struct partner *old = domain ? find_partner(env, domain, false) : NULL;
	if (!old) {
		char err[300];
		snprintf(err, sizeof(err), "no partner has the primary domain '%.200s'",
			 domain ? domain : "");
		cmd_reply_error(reply, ud, CMD_NOT_FOUND, NULL, err);
		return;
	}
	struct cmd_txn *t = cmd_txn_new(env, reply, ud);
	if (!t) {
		cmd_reply_error(reply, ud, CMD_REFUSED, NULL, "out of memory");
		return;
	}
	json_object_set_new(t->body, "result", partner_result(env, old));
	if (req->what_if) {
		json_object_set_new(t->body, "what_if", json_true());
		json_object_set_new(t->body, "message",
				    json_string("what if: the partner would be "
						"removed; nothing was saved"));
		reply(ud, CMD_OK, json_incref(t->body));
		cmd_txn_free(t);
		return;
	}
	t->removed = strdup(old->domain);
	t->ops[t->nops++] = (struct store_op){.kind = STORE_DELETE_PARTNER, .domain = t->removed};
	cmd_txn_audit(t, req, req->name, old->domain, partner_text(old), NULL);
	json_object_set_new(t->body, "message", json_string("partner removed"));
	cmd_txn_commit(t);
}

static json_t *export_json(struct cmd_env *env)
{
	json_t *list = json_array();
	for (size_t i = 0; i < policy_count(env->live.partners); i++)
		json_array_append_new(
			list, policy_json_partner(policy_at(env->live.partners, i), NULL, false));
	json_t *o = json_object();
	json_object_set_new(o, "format", json_string("fedgate-partners"));
	json_object_set_new(o, "version", json_integer(1));
	json_object_set_new(o, "partners", list);
	return o;
}

static void cmd_partner_export(struct cmd_env *env, const struct cmd_request *req,
			       cmd_reply_fn reply, void *ud)
{
	(void)req;
	json_t *b = cmd_body_new();
	json_object_set_new(b, "result", export_json(env));
	reply(ud, CMD_OK, b);
}

/* Moves v's warnings into `warned` (text -> domains); returns how many
 * remain to print with the record (none). */
static size_t group_warnings(json_t *warned, const struct policy_verdict *v, const char *domain)
{
	for (size_t k = 0; k < v->nwarnings; k++) {
		json_t *names = json_object_get(warned, v->warnings[k]);
		if (!names) {
			names = json_array();
			json_object_set_new(warned, v->warnings[k], names);
		}
		json_array_append_new(names, json_string(domain));
	}
	return 0;
}

static void emit_grouped_warnings(json_t *body, json_t *warned)
{
	const char *text;
	json_t *names;
	json_object_foreach(warned, text, names)
	{
		size_t n = json_array_size(names);
		char who[400] = "";
		size_t len = 0;
		for (size_t k = 0; k < n && k < 3; k++)
			len += (size_t)snprintf(who + len, sizeof(who) - len, "%s%s", k ? ", " : "",
						json_string_value(json_array_get(names, k)));
		if (n > 3)
			snprintf(who + len, sizeof(who) - len, " and %zu more", n - 3);
		char line[800];
		snprintf(line, sizeof(line), "%zu partner%s (%s): %s", n, n == 1 ? "" : "s", who,
			 text);
		json_array_append_new(json_object_get(body, "warnings"), json_string(line));
	}
}

static void cmd_partner_import(struct cmd_env *env, const struct cmd_request *req,
			       cmd_reply_fn reply, void *ud)
{
	json_t *doc = json_object_get(req->params, "partners");
	json_t *list = json_is_object(doc) ? json_object_get(doc, "partners") : doc;
	char err[600];
	if (!json_is_array(list)) {
		cmd_reply_error(
			reply, ud, CMD_REFUSED, NULL,
			"import: the file holds no list of partners; give a file written by "
			"'fedgate partner export'");
		return;
	}
	struct cmd_txn *t = cmd_txn_new(env, reply, ud);
	if (!t || !(t->new_set = policy_new())) {
		if (t)
			cmd_txn_free(t);
		cmd_reply_error(reply, ud, CMD_REFUSED, NULL, "out of memory");
		return;
	}
	size_t i;
	json_t *rec;
	bool refused = false;
	json_t *warned = json_object(); /* warning text -> [domains] */
	json_array_foreach(list, i, rec)
	{
		json_t *dj = json_is_object(rec) ? json_object_get(rec, "domain") : NULL;
		const char *name = json_is_string(dj) ? json_string_value(dj) : "";
		if (!*name) {
			snprintf(err, sizeof(err),
				 "record %zu: domain: missing; every partner needs "
				 "its primary domain",
				 i + 1);
			cmd_add_error(t->body, NULL, err);
			refused = true;
			break;
		}
		struct partner *p = partner_new(name);
		char why[400];
		const char *field = NULL;
		if (!p || policy_json_apply(p, rec, (const char *const[]){"domain", NULL}, why,
					    sizeof(why), &field) != FG_OK) {
			snprintf(err, sizeof(err), "record %zu (%.100s): %s", i + 1, name,
				 p ? why : "out of memory");
			cmd_add_error(t->body, field, err);
			partner_free(&p);
			refused = true;
			break;
		}
		struct policy_verdict v;
		struct domain_list dl;
		int rc = policy_check(t->new_set, p, true, local_domains(env, &dl), &v);
		char prefix[160];
		snprintf(prefix, sizeof(prefix), "record %zu (%.100s): ", i + 1, name);
		/* Errors stop the import; warnings are grouped by text below,
		 * so a file of 4,000 partners does not print 4,000 lines. */
		v.nwarnings = group_warnings(warned, &v, p->domain);
		add_verdict(t->body, &v, prefix);
		if (rc != FG_OK) {
			partner_free(&p);
			refused = true;
			break;
		}
		policy_put(t->new_set, p);
	}
	emit_grouped_warnings(t->body, warned);
	json_decref(warned);
	if (refused) {
		json_object_set_new(t->body, "message",
				    json_string("import refused: nothing was saved"));
		reply(ud, CMD_REFUSED, json_incref(t->body));
		cmd_txn_free(t);
		return;
	}
	size_t n = policy_count(t->new_set);
	json_object_set_new(t->body, "result", json_integer((json_int_t)n));
	if (req->what_if) {
		json_object_set_new(t->body, "what_if", json_true());
		json_object_set_new(t->body, "message",
				    json_string("what if: the partners would be replaced; nothing "
						"was saved"));
		reply(ud, CMD_OK, json_incref(t->body));
		cmd_txn_free(t);
		return;
	}
	t->list = calloc(n ? n : 1, sizeof(*t->list));
	for (size_t k = 0; k < n && t->list; k++)
		t->list[k] = policy_at(t->new_set, k);
	t->ops[t->nops++] = (struct store_op){
		.kind = STORE_REPLACE_PARTNERS, .partners = t->list, .npartners = n};
	/* One audit row for every partner the import creates, changes or
	 * removes, so the log answers "what happened to fabrikam.test". */
	for (size_t k = 0; k < policy_count(env->live.partners); k++) {
		const struct partner *o = policy_at(env->live.partners, k);
		const struct partner *nw = policy_get(t->new_set, o->domain);
		if (!nw || !partner_equal(o, nw))
			cmd_txn_audit(t, req, req->name, o->domain, partner_text(o),
				      partner_text(nw));
	}
	for (size_t k = 0; k < n; k++) {
		const struct partner *nw = policy_at(t->new_set, k);
		if (!policy_get(env->live.partners, nw->domain))
			cmd_txn_audit(t, req, req->name, nw->domain, NULL, partner_text(nw));
	}
	snprintf(err, sizeof(err), "imported %zu partners", n);
	json_object_set_new(t->body, "message", json_string(err));
	cmd_txn_commit(t);
}

/* ---- gateway ---- */

static json_t *gateway_audit_json(const struct gateway_settings *gw)
{
	return policy_json_gateway(gw);
}

static int new_secret(char **out)
{
	unsigned char rnd[32];
	if (RAND_bytes(rnd, sizeof(rnd)) != 1)
		return FG_ERR;
	char *hex = malloc(2 * sizeof(rnd) + 1);
	if (!hex)
		return FG_NOMEM;
	for (size_t i = 0; i < sizeof(rnd); i++)
		snprintf(hex + 2 * i, 3, "%02x", rnd[i]);
	*out = hex;
	return FG_OK;
}

static void cmd_gateway_get(struct cmd_env *env, const struct cmd_request *req, cmd_reply_fn reply,
			    void *ud)
{
	(void)req;
	json_t *b = cmd_body_new();
	json_object_set_new(b, "result", policy_json_gateway(&env->live.gw));
	reply(ud, CMD_OK, b);
}

static void cmd_gateway_set(struct cmd_env *env, const struct cmd_request *req, cmd_reply_fn reply,
			    void *ud)
{
	struct cmd_txn *t = cmd_txn_new(env, reply, ud);
	char err[600];
	const char *field = NULL;
	if (!t || gateway_copy(&t->new_gw, &env->live.gw) != FG_OK) {
		if (t)
			cmd_txn_free(t);
		cmd_reply_error(reply, ud, CMD_REFUSED, NULL, "out of memory");
		return;
	}
	bool regen = param_flag(req->params, "regenerate_dialback_secret");
	if (policy_json_apply_gateway(
		    &t->new_gw, req->params,
		    (const char *const[]){"regenerate_dialback_secret", "dialback_secret", NULL},
		    err, sizeof(err), &field) != FG_OK) {
		cmd_reply_error(reply, ud, CMD_REFUSED, field, err);
		cmd_txn_free(t);
		return;
	}
	if (regen) {
		char *s = NULL;
		if (new_secret(&s) != FG_OK) {
			cmd_txn_free(t);
			cmd_reply_error(reply, ud, CMD_REFUSED, NULL,
					"cannot make a random secret");
			return;
		}
		free(t->new_gw.dialback_secret);
		t->new_gw.dialback_secret = s;
	}
	struct policy_verdict v;
	int rc = gateway_check(&t->new_gw, &v);
	add_verdict(t->body, &v, "");
	json_object_set_new(t->body, "result", policy_json_gateway(&t->new_gw));
	if (rc != FG_OK) {
		json_object_set_new(t->body, "message", json_string("refused: nothing was saved"));
		reply(ud, CMD_REFUSED, json_incref(t->body));
		cmd_txn_free(t);
		return;
	}
	if (req->what_if) {
		json_object_set_new(t->body, "what_if", json_true());
		json_object_set_new(t->body, "message",
				    json_string("what if: the settings would be changed; nothing "
						"was saved"));
		reply(ud, CMD_OK, json_incref(t->body));
		cmd_txn_free(t);
		return;
	}
	t->gw_changed = true;
	t->ops[t->nops++] = (struct store_op){.kind = STORE_PUT_GATEWAY, .gw = &t->new_gw};
	json_t *bj = gateway_audit_json(&env->live.gw), *aj = gateway_audit_json(&t->new_gw);
	if (regen)
		json_object_set_new(aj, "dialback_secret", json_string("(regenerated)"));
	cmd_txn_audit(t, req, req->name, "gateway", json_dumps(bj, JSON_COMPACT | JSON_SORT_KEYS),
		      json_dumps(aj, JSON_COMPACT | JSON_SORT_KEYS));
	json_decref(bj);
	json_decref(aj);
	json_object_set_new(t->body, "message", json_string("gateway settings changed"));
	cmd_txn_commit(t);
}

/* ---- audit ---- */

/* "2026-11-21", "2026-11-21T10:00:00Z", "2h", "7d", "30m" -> ms since the
 * epoch; -1 when malformed. */
static long long parse_since(const char *s)
{
	char *end;
	if (*s >= '0' && *s <= '9') {
		long v = strtol(s, &end, 10);
		long mult = 0;
		if (end != s && end[0] && !end[1]) {
			switch (end[0]) {
			case 's': mult = 1; break;
			case 'm': mult = 60; break;
			case 'h': mult = 3600; break;
			case 'd': mult = 86400; break;
			}
			if (mult)
				return ((long long)time(NULL) - (long long)v * mult) * 1000;
		}
	}
	struct tm tm;
	memset(&tm, 0, sizeof(tm));
	const char *rest = strptime(s, "%Y-%m-%d", &tm);
	if (!rest)
		return -1;
	if (*rest == 'T' || *rest == ' ') {
		rest = strptime(rest + 1, "%H:%M:%S", &tm);
		if (!rest)
			return -1;
		if (*rest == 'Z')
			rest++;
	}
	if (*rest)
		return -1;
	return (long long)timegm(&tm) * 1000;
}

static int audit_row(void *ud, long long id, const struct audit_entry *e)
{
	json_t *rows = ud;
	json_t *r = json_object();
	char when[40];
	cmd_format_ms(e->at_ms, when, sizeof(when));
	json_object_set_new(r, "id", json_integer(id));
	json_object_set_new(r, "at", json_string(when));
	json_object_set_new(r, "who", json_string(e->who));
	json_object_set_new(r, "interface", json_string(e->iface));
	json_object_set_new(r, "action", json_string(e->action));
	json_object_set_new(r, "target", json_string(e->target));
	json_object_set_new(r, "before", e->before ? json_loads(e->before, 0, NULL) : json_null());
	json_object_set_new(r, "after", e->after ? json_loads(e->after, 0, NULL) : json_null());
	json_array_append_new(rows, r);
	return 0;
}

static int job_audit(struct store_db *db, void *ud, char *err, size_t errlen)
{
	struct cmd_txn *t = ud;
	return store_db_audit(db, t->since_ms, audit_row, t->audit_rows, err, errlen);
}

static bool contains_nocase(const char *hay, const char *needle)
{
	size_t n = strlen(needle);
	for (; *hay; hay++)
		if (strncasecmp(hay, needle, n) == 0)
			return true;
	return n == 0;
}

/* Whether any value of x (nested: a record's before and after too) holds
 * q; keys do not count, so "tls" finds a change of TLS only by its value
 * or by the words of another field. */
static bool audit_matches(json_t *x, const char *q)
{
	char num[32];
	const char *s = policy_json_text(x, num, sizeof(num));
	size_t i;
	const char *k;
	json_t *v;
	if (s)
		return contains_nocase(s, q);
	if (json_is_array(x))
		json_array_foreach(x, i, v) if (audit_matches(v, q)) return true;
	if (json_is_object(x))
		json_object_foreach(x, k, v) if (audit_matches(v, q)) return true;
	return false;
}

/* The filter, then the page: counted from the newest so that page 1 is
 * what happened last, while the rows stay in the order they happened. */
static json_t *audit_page(struct cmd_txn *t, size_t *total)
{
	json_t *all = t->audit_rows, *kept = json_array();
	size_t i;
	json_t *r;
	json_array_foreach(all, i, r) if (!t->audit_filter || audit_matches(r, t->audit_filter))
		json_array_append(kept, r);
	size_t n = json_array_size(kept);
	*total = n;
	size_t end = t->audit_offset < n ? n - t->audit_offset : 0;
	size_t start = t->audit_limit && t->audit_limit < end ? end - t->audit_limit : 0;
	json_t *page = json_array();
	for (i = start; i < end; i++)
		json_array_append(page, json_array_get(kept, i));
	json_decref(kept);
	return page;
}

static void done_audit(void *ud, int rc, const char *err)
{
	struct cmd_txn *t = ud;
	if (rc != FG_OK) {
		cmd_add_error(t->body, NULL, err && *err ? err : "cannot read the audit log");
		t->reply(t->reply_ud, CMD_REFUSED, json_incref(t->body));
	} else {
		size_t total;
		json_t *page = audit_page(t, &total);
		size_t shown = json_array_size(page);
		json_object_set_new(t->body, "total", json_integer((json_int_t)total));
		if (shown < total) {
			/* Only when something is left out: the way to the rest. */
			char msg[200];
			snprintf(msg, sizeof(msg),
				 "%zu of %zu change(s) shown (%lu newer skipped); --limit and "
				 "--offset show the others",
				 shown, total, t->audit_offset < total ? t->audit_offset : total);
			json_object_set_new(t->body, "message", json_string(msg));
		}
		json_object_set_new(t->body, "result", page);
		t->reply(t->reply_ud, CMD_OK, json_incref(t->body));
	}
	cmd_txn_free(t);
}

/* A count from the CLI (text) or the API (a number); false when neither. */
static bool param_count(json_t *params, const char *name, unsigned long *out)
{
	json_t *v = json_object_get(params, name);
	*out = 0;
	if (!v || json_is_null(v))
		return true;
	if (json_is_integer(v) && json_integer_value(v) >= 0) {
		*out = (unsigned long)json_integer_value(v);
		return true;
	}
	const char *s = json_string_value(v);
	if (!s || !*s || strspn(s, "0123456789") != strlen(s) || strlen(s) > 9)
		return false;
	*out = strtoul(s, NULL, 10);
	return true;
}

static void cmd_audit(struct cmd_env *env, const struct cmd_request *req, cmd_reply_fn reply,
		      void *ud)
{
	const char *since = cmd_param_str(req->params, "since");
	const char *filter = cmd_param_str(req->params, "filter");
	long long since_ms = 0;
	unsigned long limit, offset;
	if (since && (since_ms = parse_since(since)) < 0) {
		cmd_reply_error(reply, ud, CMD_USAGE, "since",
				"audit: --since takes a date (2026-11-21), a time "
				"(2026-11-21T10:00:00Z) or an age (30m, 2h, 7d)");
		return;
	}
	if (!param_count(req->params, "limit", &limit)) {
		cmd_reply_error(reply, ud, CMD_USAGE, "limit",
				"audit: --limit takes a number of changes, e.g. 50 (0 = all)");
		return;
	}
	if (!param_count(req->params, "offset", &offset)) {
		cmd_reply_error(reply, ud, CMD_USAGE, "offset",
				"audit: --offset takes how many of the newest changes to skip, "
				"e.g. 50 for the second page of 50");
		return;
	}
	struct cmd_txn *t = cmd_txn_new(env, reply, ud);
	if (!t) {
		cmd_reply_error(reply, ud, CMD_REFUSED, NULL, "out of memory");
		return;
	}
	t->audit_rows = json_array();
	t->since_ms = since_ms;
	t->audit_limit = limit;
	t->audit_offset = offset;
	if (filter && *filter && !(t->audit_filter = cmd_txn_keep(t, strdup(filter)))) {
		cmd_txn_free(t);
		cmd_reply_error(reply, ud, CMD_REFUSED, NULL, "out of memory");
		return;
	}
	if (env->run(env, job_audit, done_audit, t) != FG_OK)
		done_audit(t, FG_ERR, "cannot queue the read");
}

/* ---- diagnostics ---- */

static void cmd_test_im(struct cmd_env *env, const struct cmd_request *req, cmd_reply_fn reply,
			void *ud)
{
	if (!env->test_im) {
		cmd_reply_error(
			reply, ud, CMD_REFUSED, NULL,
			"test-im sends through the running daemon: start 'fedgate serve' first");
		return;
	}
	env->test_im(env, req, reply, ud);
}

/* A probe opens connections from the gateway to any domain, so it is for
 * the roles that may change things, like test-im. */
static void cmd_probe(struct cmd_env *env, const struct cmd_request *req, cmd_reply_fn reply,
		      void *ud)
{
	if (!env->probe) {
		cmd_reply_error(reply, ud, CMD_REFUSED, NULL,
				"probe connects from the running daemon (its resolver, "
				"certificate and timeouts): start 'fedgate serve' first");
		return;
	}
	env->probe(env, req, reply, ud);
}

static const struct cmd_param p_status[] = {
	{"refused", "--refused", CP_FLAG, false,
	 "only the non-partner domains that tried to federate (inbound streams, and local "
	 "users' stanzas to them)"},
	{"failing", "--failing", CP_FLAG, false,
	 "only routes that are failing now (with their failure record)"},
	{"cluster", "--cluster", CP_FLAG, false,
	 "only the cluster: this node, the Redis link, every node's heartbeat and sessions, "
	 "stanzas forwarded"},
	{NULL, NULL, 0, false, NULL},
};

/* A status row of a route failing now (route.c's failure record). */
static bool row_failing(json_t *row)
{
	json_t *f = json_object_get(row, "last_failure");
	const char *st = json_string_value(json_object_get(f, "state"));
	return st && strcmp(st, "failing") == 0;
}

static void cmd_status(struct cmd_env *env, const struct cmd_request *req, cmd_reply_fn reply,
		       void *ud)
{
	if (!env->status) {
		cmd_reply_error(
			reply, ud, CMD_REFUSED, NULL,
			"status shows the running daemon's streams: start 'fedgate serve' first");
		return;
	}
	bool refused = json_is_true(json_object_get(req->params, "refused"));
	bool cluster = param_flag(req->params, "cluster");
	if ((refused ? 1 : 0) + (param_flag(req->params, "failing") ? 1 : 0) + (cluster ? 1 : 0) >
	    1) {
		cmd_reply_error(reply, ud, CMD_USAGE, NULL,
				"status: --refused, --failing and --cluster list different things; "
				"give one");
		return;
	}
	if (cluster) {
		json_t *b = cmd_body_new();
		json_object_set_new(b, "result", env->cluster ? env->cluster(env) : json_object());
		reply(ud, CMD_OK, b);
		return;
	}
	json_t *rows = refused ? env->refused(env) : env->status(env);
	if (param_flag(req->params, "failing")) {
		for (size_t i = json_array_size(rows); i-- > 0;)
			if (!row_failing(json_array_get(rows, i)))
				json_array_remove(rows, i);
	}
	json_t *b = cmd_body_new();
	json_object_set_new(b, "result", rows);
	if (env->cluster)
		json_object_set_new(b, "cluster", env->cluster(env));
	reply(ud, CMD_OK, b);
}

static void cmd_partner_retry(struct cmd_env *env, const struct cmd_request *req,
			      cmd_reply_fn reply, void *ud)
{
	const char *name = json_string_value(json_object_get(req->params, "domain"));
	char msg[700];
	const struct partner *p = name ? find_partner(env, name, false) : NULL;
	if (!p) {
		snprintf(msg, sizeof(msg),
			 "no partner '%.300s': give a partner's primary domain ('fedgate partner "
			 "get' lists them)",
			 name ? name : "");
		cmd_reply_error(reply, ud, CMD_NOT_FOUND, "domain", msg);
		return;
	}
	if (!env->retry) {
		cmd_reply_error(reply, ud, CMD_REFUSED, NULL,
				"partner retry acts on the running daemon: start 'fedgate serve' "
				"first");
		return;
	}
	unsigned started = env->retry(env, p);
	log_info("cmd", "%s: partner retry %s: %u route(s) with queued stanzas try now",
		 req->who ? req->who : "?", p->domain, started);
	if (started)
		snprintf(msg, sizeof(msg), "retrying %s now (%u route(s) with stanzas waiting)",
			 p->domain, started);
	else
		snprintf(msg, sizeof(msg),
			 "no stanza waits for %s; its retry delay is forgotten, so the next stanza "
			 "tries at once",
			 p->domain);
	json_t *b = cmd_body_new();
	json_object_set_new(b, "message", json_string(msg));
	json_object_set_new(
		b, "result",
		json_pack("{s:s,s:I}", "domain", p->domain, "started", (json_int_t)started));
	reply(ud, CMD_OK, b);
}

/* An unknown domain for `partner history`, with the closest partner's
 * domain when one is near (a typo). */
static void no_such_partner(struct cmd_env *env, const char *name, cmd_reply_fn reply, void *ud)
{
	const char *names[256];
	size_t n = 0;
	for (size_t i = 0; i < policy_count(env->live.partners) && n < FG_ARRAY_LEN(names); i++)
		names[n++] = policy_at(env->live.partners, i)->domain;
	const char *hint = n ? suggest_closest(name, names, n) : NULL;
	char msg[800];
	if (hint)
		snprintf(msg, sizeof(msg),
			 "no partner has the domain '%.300s'; did you mean '%.300s'? ('fedgate "
			 "partner get' lists them)",
			 name, hint);
	else
		snprintf(msg, sizeof(msg),
			 "no partner has the domain '%.300s' ('fedgate partner get' lists them)",
			 name);
	cmd_reply_error(reply, ud, CMD_NOT_FOUND, "domain", msg);
}

/* A partner's last 24 hours: only the daemon counts them. Any of the
 * partner's domains names it. */
static void cmd_partner_history(struct cmd_env *env, const struct cmd_request *req,
				cmd_reply_fn reply, void *ud)
{
	const char *name = cmd_param_str(req->params, "domain");
	const struct partner *p = name ? find_partner(env, name, true) : NULL;
	if (!p) {
		no_such_partner(env, name ? name : "", reply, ud);
		return;
	}
	if (!env->history) {
		cmd_reply_error(reply, ud, CMD_REFUSED, NULL,
				"partner history shows what the running daemon counted over the "
				"last 24 hours: start 'fedgate serve' first");
		return;
	}
	json_t *h = env->history(env, p);
	if (!h) {
		cmd_reply_error(reply, ud, CMD_REFUSED, NULL, "out of memory");
		return;
	}
	json_t *b = cmd_body_new();
	json_object_set_new(b, "result", h);
	reply(ud, CMD_OK, b);
}

static void cmd_reload(struct cmd_env *env, const struct cmd_request *req, cmd_reply_fn reply,
		       void *ud)
{
	(void)req;
	if (!env->reload) {
		cmd_reply_error(reply, ud, CMD_REFUSED, NULL,
				"reload asks the running daemon to read its configuration again: "
				"it is not running (start it with 'fedgate serve')");
		return;
	}
	json_t *b = cmd_body_new();
	int status = env->reload(env, b);
	reply(ud, status, b);
}

static void cmd_stop(struct cmd_env *env, const struct cmd_request *req, cmd_reply_fn reply,
		     void *ud)
{
	(void)req;
	if (!env->stop) {
		cmd_reply_error(reply, ud, CMD_REFUSED, NULL, "the daemon is not running");
		return;
	}
	json_t *b = cmd_body_new();
	json_object_set_new(b, "result", json_pack("{s:I}", "pid", (json_int_t)env->stop(env)));
	reply(ud, CMD_OK, b);
}

/* ---- the table: every command with its handler ---- */

static const struct cmd_def table[] = {
	{"partner new", true, "create an XMPP federated partner", p_partner_new, cmd_partner_new},
	{"partner set", true, "change a partner", p_partner_set, cmd_partner_set},
	{"partner get", false, "show partners", p_partner_get, cmd_partner_get},
	{"partner remove", true, "remove a partner", p_domain_only, cmd_partner_remove},
	{"partner export", false, "print every partner as JSON", p_none, cmd_partner_export},
	{"partner import", true, "replace every partner with those of a file", p_import,
	 cmd_partner_import},
	{"gateway get", false, "show the gateway settings", p_none, cmd_gateway_get},
	{"gateway set", true, "change gateway settings", p_gateway_set, cmd_gateway_set},
	{"audit", false, "show the audit log of changes", p_audit, cmd_audit},
	{"test-im", CMD_ACTS, "send a test message to a partner user and report each step",
	 p_test_im, cmd_test_im},
	{"probe", CMD_ACTS,
	 "what a stream to DOMAIN would meet (DNS, TCP, TLS, certificate, SASL EXTERNAL, "
	 "dialback) and which settings would work; saves nothing",
	 p_probe, cmd_probe},
	{"status", false, "the running daemon's streams (s2s in and out, c2s) and failing routes",
	 p_status, cmd_status},
	{"partner retry", CMD_ACTS, "forget a partner's retry delay and try again now",
	 p_domain_only, cmd_partner_retry},
	{"partner history", false,
	 "a partner's last 24 hours: stanzas in and out per minute, connection events",
	 p_domain_only, cmd_partner_history},
	{"reload", CMD_ACTS,
	 "read the configuration file, certificates and keys again; report what changed", p_none,
	 cmd_reload},
	{"stop", CMD_ACTS, "shut the daemon down (peers are told, streams close cleanly)", p_none,
	 cmd_stop},
	{"user add", true, "create a local user (the password is asked for)", p_user_password,
	 cmd_user_add},
	{"user passwd", true, "set a new password for a local user", p_user_password,
	 cmd_user_passwd},
	{"user remove", true, "remove a local user with its roster, offline messages and vCard",
	 p_user_jid, cmd_user_remove},
	{"user list", false, "show the local users", p_user_list, cmd_user_list},
	{"user get", false, "show one local user", p_user_jid, cmd_user_get},
	{"user set", true, "change a local user", p_user_set, cmd_user_set},
	{"admin add", true, "add an admin account of the HTTP API and control panel",
	 admin_params_add, admin_cmd_add},
	{"admin passwd", true, "change an admin account's password", admin_params_name,
	 admin_cmd_passwd},
	{"admin remove", true, "remove an admin account", admin_params_name, admin_cmd_remove},
	{"admin list", false, "show the admin accounts", admin_params_none, admin_cmd_list},
	{"admin set", true, "change an admin account's role", admin_params_set, admin_cmd_set},
	{"admin token", true,
	 "print a new API bearer token for an account, labelled --label (--revoke: withdraw)",
	 admin_params_token, admin_cmd_token},
	{"admin tokens", false, "show the API tokens' labels and use (never the tokens)",
	 admin_params_tokens, admin_cmd_tokens},
};

const struct cmd_def *cmd_table(size_t *n)
{
	*n = FG_ARRAY_LEN(table);
	return table;
}

const struct cmd_def *cmd_find(const char *name)
{
	for (size_t i = 0; i < FG_ARRAY_LEN(table); i++)
		if (strcmp(table[i].name, name) == 0)
			return &table[i];
	return NULL;
}

/* ---- argv ---- */

/* ---- dispatch ---- */

void cmd_exec(struct cmd_env *env, const struct cmd_request *req, cmd_reply_fn reply, void *ud)
{
	const struct cmd_def *def = cmd_find(req->name ? req->name : "");
	char err[300];
	if (!def) {
		snprintf(err, sizeof(err), "unknown command '%.100s'", req->name ? req->name : "");
		cmd_reply_error(reply, ud, CMD_USAGE, NULL, err);
		return;
	}
	if (def->writes && req->read_only) {
		snprintf(err, sizeof(err), "%s %s; your role may only read", def->name,
			 def->writes == CMD_ACTS ? "acts on the running daemon"
						 : "changes the configuration");
		cmd_reply_error(reply, ud, CMD_REFUSED, NULL, err);
		return;
	}
	if (def->writes == CMD_ACTS && req->what_if) {
		snprintf(err, sizeof(err), "%s: --what-if does not apply (it saves nothing)",
			 def->name);
		cmd_reply_error(reply, ud, CMD_USAGE, NULL, err);
		return;
	}
	if (!json_is_object(req->params)) {
		cmd_reply_error(reply, ud, CMD_USAGE, NULL, "the parameters must be a JSON object");
		return;
	}
	assert(def->run);
	def->run(env, req, reply, ud);
}

/* ---- env ---- */

int cmd_run_sync(struct cmd_env *env, cmd_store_job job, cmd_store_done done, void *ud)
{
	char err[512] = "";
	int rc = job(env->db, ud, err, sizeof(err));
	done(ud, rc, err);
	return FG_OK;
}

int cmd_env_load(struct cmd_env *env, struct store_db *db, char *err, size_t errlen)
{
	gateway_defaults(&env->live.gw);
	if (store_db_load(db, &env->live.partners, &env->live.gw, err, errlen) != FG_OK)
		return FG_ERR;
	if (store_db_users_load(db, &env->live.users, err, errlen) != FG_OK)
		return FG_ERR;
	if (env->live.gw.dialback_secret)
		return FG_OK;
	/* SPEC §3: generated at first start if unset, never printed. Several
	 * nodes may start on one fresh store: the store keeps the first one
	 * saved, and every node uses that one. */
	char *mine = NULL, *kept = NULL;
	if (new_secret(&mine) != FG_OK) {
		snprintf(err, errlen, "cannot make a random dialback secret");
		return FG_ERR;
	}
	env->live.gw.dialback_secret = mine;
	json_t *after = policy_json_gateway(&env->live.gw);
	env->live.gw.dialback_secret = NULL;
	char *text = json_dumps(after, JSON_COMPACT | JSON_SORT_KEYS);
	struct audit_entry a = {.who = "fedgate",
				.iface = "startup",
				.action = "gateway set",
				.target = "gateway",
				.after = text};
	int rc = store_db_dialback_secret(db, mine, &a, &kept, err, errlen);
	free(text);
	json_decref(after);
	explicit_bzero(mine, strlen(mine));
	free(mine);
	if (rc == FG_OK)
		env->live.gw.dialback_secret = kept;
	return rc;
}

void cmd_env_clear(struct cmd_env *env)
{
	policy_free(&env->live.partners);
	gateway_clear(&env->live.gw);
	accounts_free(&env->live.users);
}

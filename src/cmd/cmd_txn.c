#include "cmd_txn.h"

#include "fg.h"
#include "log.h"
#include "sasl.h"
#include "store_sqlite.h"
#include "users.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* ---- replies ---- */

json_t *cmd_body_new(void)
{
	json_t *b = json_object();
	json_object_set_new(b, "warnings", json_array());
	json_object_set_new(b, "errors", json_array());
	return b;
}

void cmd_add_error(json_t *body, const char *field, const char *msg)
{
	json_t *e = json_object();
	json_object_set_new(e, "field", field ? json_string(field) : json_null());
	json_object_set_new(e, "message", json_string(msg));
	json_array_append_new(json_object_get(body, "errors"), e);
}

void cmd_reply_error(cmd_reply_fn reply, void *ud, int status, const char *field, const char *msg)
{
	json_t *b = cmd_body_new();
	cmd_add_error(b, field, msg);
	reply(ud, status, b);
}

/* ---- transactions ---- */

#define TXN_MAX_AUDIT 4

static void wipe_free(char **s)
{
	if (*s) {
		explicit_bzero(*s, strlen(*s));
		free(*s);
		*s = NULL;
	}
}

struct cmd_txn *cmd_txn_new(struct cmd_env *env, cmd_reply_fn reply, void *ud)
{
	struct cmd_txn *t = calloc(1, sizeof(*t));
	if (!t)
		return NULL;
	t->env = env;
	t->reply = reply;
	t->reply_ud = ud;
	t->body = cmd_body_new();
	return t;
}

void cmd_txn_free(struct cmd_txn *t)
{
	for (size_t i = 0; i < t->nstrings; i++)
		free(t->strings[i]);
	free(t->strings);
	free(t->audit);
	free(t->list);
	partner_free(&t->put);
	free(t->removed);
	policy_free(&t->new_set);
	gateway_clear(&t->new_gw);
	account_free(&t->put_user);
	free(t->removed_user);
	wipe_free(&t->password);
	json_decref(t->body);
	json_decref(t->audit_rows);
	free(t);
}

/* arr with room for at least n + 1 elements of size sz (doubling, so an
 * import that audits 40,000 partners does not reallocate 40,000 times);
 * NULL when out of memory, arr then unchanged. */
static void *grow(void *arr, size_t *cap, size_t n, size_t sz)
{
	if (n < *cap)
		return arr;
	size_t ncap = *cap ? *cap * 2 : 16;
	void *na = realloc(arr, ncap * sz);
	if (na)
		*cap = ncap;
	return na;
}

char *cmd_txn_keep(struct cmd_txn *t, char *s)
{
	char **v = s ? grow(t->strings, &t->cap_strings, t->nstrings, sizeof(*v)) : NULL;
	if (!v) {
		free(s);
		return NULL;
	}
	t->strings = v;
	t->strings[t->nstrings++] = s;
	return s;
}

int cmd_txn_audit(struct cmd_txn *t, const struct cmd_request *req, const char *action,
		  const char *target, char *before, char *after)
{
	struct audit_entry *v = grow(t->audit, &t->cap_audit, t->naudit, sizeof(*v));
	if (!v) {
		free(before);
		free(after);
		return FG_NOMEM;
	}
	t->audit = v;
	struct audit_entry *e = &t->audit[t->naudit++];
	memset(e, 0, sizeof(*e));
	e->who = cmd_txn_keep(t, strdup(req->who ? req->who : "unknown"));
	e->iface = cmd_txn_keep(t, strdup(req->iface ? req->iface : "cli"));
	e->action = cmd_txn_keep(t, strdup(action));
	e->target = cmd_txn_keep(t, strdup(target));
	e->before = before ? cmd_txn_keep(t, before) : NULL;
	e->after = after ? cmd_txn_keep(t, after) : NULL;
	return FG_OK;
}

static int job_commit(struct store_db *db, void *ud, char *err, size_t errlen)
{
	struct cmd_txn *t = ud;
	if (t->password && t->put_user) {
		int rc = sasl_creds_from_password(t->password, t->iterations, &t->put_user->creds);
		wipe_free(&t->password);
		if (rc != FG_OK) {
			snprintf(err, errlen, "cannot derive the SCRAM keys of the new password%s",
				 rc == FG_INVAL ? " ([users] scram_iterations is below 4096)" : "");
			return rc;
		}
	}
	return store_db_commit(db, t->ops, t->nops, t->audit, t->naudit, err, errlen);
}

void cmd_env_install_partners(struct cmd_env *env, struct policy **set)
{
	struct policy *old_set = env->live.partners;
	env->live.partners = *set;
	*set = NULL;
	if (env->partner_changed) {
		for (size_t i = 0; i < policy_count(old_set); i++) {
			const struct partner *o = policy_at(old_set, i);
			const struct partner *n = policy_get(env->live.partners, o->domain);
			if (!n || !partner_equal(o, n))
				env->partner_changed(env, o, n);
		}
		for (size_t i = 0; i < policy_count(env->live.partners); i++) {
			const struct partner *n = policy_at(env->live.partners, i);
			if (!policy_get(old_set, n->domain))
				env->partner_changed(env, NULL, n);
		}
	}
	policy_free(&old_set);
}

void cmd_env_install_gateway(struct cmd_env *env, struct gateway_settings *gw)
{
	gateway_clear(&env->live.gw);
	env->live.gw = *gw;
	memset(gw, 0, sizeof(*gw));
	if (env->gateway_changed)
		env->gateway_changed(env);
}

static void done_commit(void *ud, int rc, const char *err)
{
	struct cmd_txn *t = ud;
	struct cmd_env *env = t->env;
	if (rc != FG_OK) {
		char msg[600];
		/* An unreachable PostgreSQL says so, and that nothing was
		 * saved, in a sentence of its own (store_pg.c). */
		if (err && strncmp(err, "the store (PostgreSQL) cannot be reached", 40) == 0)
			snprintf(msg, sizeof(msg), "%s", err);
		else
			snprintf(msg, sizeof(msg),
				 "the store refused the change, nothing was saved: %s",
				 err && *err ? err : "unknown error");
		json_object_set_new(t->body, "errors", json_array());
		/* What the handler meant to say on success ("partner created")
		 * must not stand beside the refusal. */
		json_object_del(t->body, "message");
		cmd_add_error(t->body, NULL, msg);
		t->reply(t->reply_ud, CMD_REFUSED, json_incref(t->body));
		cmd_txn_free(t);
		return;
	}
	/* Installed only now: memory never runs ahead of the disk. */
	if (t->put) {
		const struct partner *old_p = policy_get(env->live.partners, t->put->domain);
		struct partner *old_copy = old_p ? partner_clone(old_p) : NULL;
		struct partner *p = t->put;
		t->put = NULL;
		char *domain = strdup(p->domain);
		/* policy_put takes p even when it fails (out of memory); the
		 * store then holds a change memory lacks until the next start. */
		if (policy_put(env->live.partners, p) != FG_OK)
			log_error("policy", "out of memory installing partner %s",
				  domain ? domain : "?");
		else if (env->partner_changed && domain)
			env->partner_changed(env, old_copy, policy_get(env->live.partners, domain));
		free(domain);
		partner_free(&old_copy);
	}
	if (t->removed) {
		const struct partner *old_p = policy_get(env->live.partners, t->removed);
		struct partner *old_copy = old_p ? partner_clone(old_p) : NULL;
		policy_remove(env->live.partners, t->removed);
		if (env->partner_changed && old_copy)
			env->partner_changed(env, old_copy, NULL);
		partner_free(&old_copy);
	}
	if (t->new_set)
		cmd_env_install_partners(env, &t->new_set);
	if (t->put_user) {
		const struct account *old_a = accounts_get(env->live.users, t->put_user->jid);
		struct account *old_copy = old_a ? account_clone(old_a) : NULL;
		struct account *a = t->put_user;
		t->put_user = NULL;
		char *jid = strdup(a->jid);
		/* accounts_put takes a even when it fails, like policy_put. */
		if (accounts_put(env->live.users, a) != FG_OK)
			log_error("users", "out of memory installing user %s", jid ? jid : "?");
		else if (env->user_changed && jid)
			env->user_changed(env, old_copy, accounts_get(env->live.users, jid));
		free(jid);
		account_free(&old_copy);
	}
	if (t->removed_user) {
		const struct account *old_a = accounts_get(env->live.users, t->removed_user);
		struct account *old_copy = old_a ? account_clone(old_a) : NULL;
		accounts_remove(env->live.users, t->removed_user);
		if (env->user_changed && old_copy)
			env->user_changed(env, old_copy, NULL);
		account_free(&old_copy);
	}
	if (t->gw_changed)
		cmd_env_install_gateway(env, &t->new_gw);
	t->reply(t->reply_ud, CMD_OK, json_incref(t->body));
	cmd_txn_free(t);
}

void cmd_txn_commit(struct cmd_txn *t)
{
	int rc = t->env->run(t->env, job_commit, done_commit, t);
	if (rc != FG_OK)
		done_commit(t, rc, "cannot queue the change");
}

/* ---- helpers ---- */

const char *cmd_param_str(json_t *params, const char *name)
{
	json_t *v = json_object_get(params, name);
	return json_is_string(v) ? json_string_value(v) : NULL;
}

/* "2026-11-21T10:00:00.000Z" */
void cmd_format_ms(long long ms, char *buf, size_t len)
{
	time_t secs = (time_t)(ms / 1000);
	struct tm tm;
	gmtime_r(&secs, &tm);
	size_t n = strftime(buf, len, "%Y-%m-%dT%H:%M:%S", &tm);
	snprintf(buf + n, len - n, ".%03dZ", (int)(ms % 1000));
}

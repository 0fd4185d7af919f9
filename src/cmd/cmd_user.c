/* `fedgate user add|passwd|remove|list|get|set`: local accounts through
 * the command layer, so the CLI, the control socket and the HTTP API
 * validate alike. Passwords become SCRAM keys on the store thread and are
 * never echoed, logged or audited. */
#include "cmd_txn.h"
#include "cmd_user.h"

#include "conf.h"
#include "fg.h"
#include "jid.h"
#include "policy_json.h"
#include "sasl.h"
#include "store_users.h"

#include <fnmatch.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

const struct cmd_param p_user_jid[] = {
	{"jid", NULL, CP_STRING, true, "the user's bare JID, e.g. alice@contoso.test"},
	{NULL, NULL, 0, false, NULL},
};

const struct cmd_param p_user_password[] = {
	{"jid", NULL, CP_STRING, true, "the user's bare JID, e.g. alice@contoso.test"},
	{"password", NULL, CP_SECRET, true,
	 "asked twice on a terminal, else one line read from standard input"},
	{NULL, NULL, 0, false, NULL},
};

const struct cmd_param p_user_list[] = {
	{"filter", "--filter", CP_STRING, false, "only JIDs matching this glob, e.g. 'a*@*'"},
	{NULL, NULL, 0, false, NULL},
};

const struct cmd_param p_user_set[] = {
	{"jid", NULL, CP_STRING, true, "the user's bare JID, e.g. alice@contoso.test"},
	{"xmpp_access", "--xmpp-access", CP_BOOL, false,
	 "true or false: whether the user may federate with partners"},
	{NULL, NULL, 0, false, NULL},
};

/* Passwords are counted in characters (UTF-8 code points), not bytes. The
 * floor keeps out what a guesser tries first; the cap bounds what one
 * request makes the store thread hash. */
#define PASSWORD_MIN_CHARS 8
#define PASSWORD_MAX_BYTES 1023

/* What output shows of an account; the credentials never. */
static json_t *user_json(const struct account *a)
{
	char when[40];
	cmd_format_ms(a->created_ms, when, sizeof(when));
	json_t *o = json_object();
	json_object_set_new(o, "jid", json_string(a->jid));
	json_object_set_new(o, "xmpp_access", json_boolean(a->xmpp_access));
	json_object_set_new(o, "created", json_string(when));
	return o;
}

/* The audit's view: that credentials exist or changed, never what they
 * are. NULL for no account. */
static char *user_text(const struct account *a, const char *credentials)
{
	if (!a)
		return NULL;
	json_t *o = user_json(a);
	json_object_set_new(o, "credentials", json_string(credentials));
	char *s = json_dumps(o, JSON_COMPACT | JSON_SORT_KEYS);
	json_decref(o);
	return s;
}

/* "contoso.test, fabrikam.test": the local domains, for messages. */
static void local_domain_names(struct cmd_env *env, char *buf, size_t len)
{
	size_t n = 0;
	buf[0] = '\0';
	for (size_t i = 0; env->live.conf && i < env->live.conf->domains.n && n < len; i++)
		n += (size_t)snprintf(buf + n, len - n, "%s%s", i ? ", " : "",
				      env->live.conf->domains.v[i]);
}

/* params["jid"] as the bare, prepared JID of an account of a local domain
 * (malloc'ed), or NULL with a message that says how to fix it. */
static char *user_jid(struct cmd_env *env, const struct cmd_request *req, char *err, size_t errlen)
{
	json_t *v = json_object_get(req->params, "jid");
	const char *s = json_is_string(v) ? json_string_value(v) : "";
	char locals[400];
	struct jid j;
	char *bare = NULL;

	local_domain_names(env, locals, sizeof(locals));
	const char *example = env->live.conf && env->live.conf->domains.n
				      ? env->live.conf->domains.v[0]
				      : "contoso.test";
	if (!*s) {
		snprintf(err, errlen, "jid: missing; give a bare JID such as alice@%s", example);
		return NULL;
	}
	enum jid_err je = jid_parse(s, json_string_length(v), &j);
	if (je != JID_OK) {
		snprintf(err, errlen,
			 "jid: '%.200s' is not a valid JID: %s; give one such as alice@%s", s,
			 jid_strerror(je), example);
		return NULL;
	}
	if (!j.node)
		snprintf(err, errlen,
			 "jid: '%.200s' has no user part; give user@domain, e.g. alice@%s", s,
			 example);
	else if (j.resource)
		snprintf(err, errlen,
			 "jid: '%.200s' has a resource; give the bare JID %.200s@%.200s", s, j.node,
			 j.domain);
	else if (!env->live.conf || !conf_is_local_domain(env->live.conf, j.domain))
		snprintf(err, errlen,
			 "jid: %.200s is not a local domain of this gateway; a user's JID must be "
			 "in one of its domains: %s (see [server] domains)",
			 j.domain, locals[0] ? locals : "none");
	else if (!(bare = jid_to_string(&j, true)))
		snprintf(err, errlen, "out of memory");
	jid_clear(&j);
	return bare;
}

/* The account named by params["jid"]: FG_OK and *out, or a reply already
 * sent (refused for a malformed JID, not found for an unknown one). */
static int find_user(struct cmd_env *env, const struct cmd_request *req, cmd_reply_fn reply,
		     void *ud, const struct account **out)
{
	char err[700];
	char *jid = user_jid(env, req, err, sizeof(err));
	if (!jid) {
		cmd_reply_error(reply, ud, CMD_REFUSED, "jid", err);
		return FG_INVAL;
	}
	*out = accounts_get(env->live.users, jid);
	if (!*out) {
		snprintf(err, sizeof(err), "there is no user %.300s (see 'fedgate user list')",
			 jid);
		cmd_reply_error(reply, ud, CMD_NOT_FOUND, NULL, err);
	}
	free(jid);
	return *out ? FG_OK : FG_NOTFOUND;
}

/* params["password"] if it may become a password, else NULL and why. The
 * messages never quote it, nor say how long it was. */
static const char *user_password(const struct cmd_request *req, char *err, size_t errlen)
{
	json_t *v = json_object_get(req->params, "password");
	const char *s = json_is_string(v) ? json_string_value(v) : "";
	size_t len = json_is_string(v) ? json_string_length(v) : 0, chars = 0;

	if (len == 0) {
		snprintf(err, errlen, "password: empty; give one of at least %d characters",
			 PASSWORD_MIN_CHARS);
		return NULL;
	}
	if (len > PASSWORD_MAX_BYTES) {
		snprintf(err, errlen, "password: too long; use at most %d bytes",
			 PASSWORD_MAX_BYTES);
		return NULL;
	}
	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)s[i];
		/* SASLprep (RFC 4013) prohibits control characters, and no
		 * client could send a NUL or a line break. */
		if (c < 0x20 || c == 0x7f) {
			snprintf(err, errlen,
				 "password: contains a control character (a line break, tab or "
				 "NUL); use printable characters only");
			return NULL;
		}
		if ((c & 0xc0) != 0x80)
			chars++;
	}
	if (chars < PASSWORD_MIN_CHARS) {
		snprintf(err, errlen, "password: too short; use at least %d characters",
			 PASSWORD_MIN_CHARS);
		return NULL;
	}
	return s;
}

/* Takes a; password NULL keeps a's credentials. old is NULL for a new
 * account. */
static void finish_user_change(struct cmd_env *env, const struct cmd_request *req,
			       struct account *a, const struct account *old, const char *password,
			       const char *done_msg, cmd_reply_fn reply, void *ud)
{
	struct cmd_txn *t = cmd_txn_new(env, reply, ud);
	char msg[200];
	if (!t) {
		account_free(&a);
		cmd_reply_error(reply, ud, CMD_REFUSED, NULL, "out of memory");
		return;
	}
	json_object_set_new(t->body, "result", user_json(a));
	if (req->what_if) {
		snprintf(msg, sizeof(msg), "what if: %s; nothing was saved", done_msg);
		json_object_set_new(t->body, "what_if", json_true());
		json_object_set_new(t->body, "message", json_string(msg));
		reply(ud, CMD_OK, json_incref(t->body));
		account_free(&a);
		cmd_txn_free(t);
		return;
	}
	if (old && !password && old->xmpp_access == a->xmpp_access) {
		json_object_set_new(t->body, "message", json_string("no change"));
		reply(ud, CMD_OK, json_incref(t->body));
		account_free(&a);
		cmd_txn_free(t);
		return;
	}
	t->put_user = a;
	if (password) {
		t->password = strdup(password);
		t->iterations = env->live.conf ? env->live.conf->users_scram_iterations : 4096;
	}
	t->ops[t->nops++] = store_op_put_user(a);
	const char *after_creds = password && old ? "(changed)" : "(set)";
	if ((password && !t->password) ||
	    cmd_txn_audit(t, req, req->name, a->jid, user_text(old, "(set)"),
			  user_text(a, after_creds)) != FG_OK) {
		cmd_reply_error(reply, ud, CMD_REFUSED, NULL, "out of memory");
		cmd_txn_free(t);
		return;
	}
	json_object_set_new(t->body, "message", json_string(done_msg));
	cmd_txn_commit(t);
}

void cmd_user_add(struct cmd_env *env, const struct cmd_request *req, cmd_reply_fn reply, void *ud)
{
	char err[700];
	char *jid = user_jid(env, req, err, sizeof(err));
	if (!jid) {
		cmd_reply_error(reply, ud, CMD_REFUSED, "jid", err);
		return;
	}
	if (accounts_get(env->live.users, jid)) {
		snprintf(err, sizeof(err),
			 "user %.300s already exists; use 'fedgate user passwd %.300s' to set a "
			 "new password",
			 jid, jid);
		free(jid);
		cmd_reply_error(reply, ud, CMD_REFUSED, NULL, err);
		return;
	}
	const char *password = user_password(req, err, sizeof(err));
	struct account *a = password ? account_new(jid) : NULL;
	free(jid);
	if (!a) {
		cmd_reply_error(reply, ud, CMD_REFUSED, password ? NULL : "password",
				password ? "out of memory" : err);
		return;
	}
	a->created_ms = fg_now_ms();
	finish_user_change(env, req, a, NULL, password, "user created", reply, ud);
}

void cmd_user_passwd(struct cmd_env *env, const struct cmd_request *req, cmd_reply_fn reply,
		     void *ud)
{
	const struct account *old;
	char err[400];
	if (find_user(env, req, reply, ud, &old) != FG_OK)
		return;
	const char *password = user_password(req, err, sizeof(err));
	struct account *a = password ? account_clone(old) : NULL;
	if (!a) {
		cmd_reply_error(reply, ud, CMD_REFUSED, password ? NULL : "password",
				password ? "out of memory" : err);
		return;
	}
	finish_user_change(env, req, a, old, password, "password changed", reply, ud);
}

void cmd_user_set(struct cmd_env *env, const struct cmd_request *req, cmd_reply_fn reply, void *ud)
{
	const struct account *old;
	if (find_user(env, req, reply, ud, &old) != FG_OK)
		return;
	struct account *a = account_clone(old);
	if (!a) {
		cmd_reply_error(reply, ud, CMD_REFUSED, NULL, "out of memory");
		return;
	}
	json_t *v = json_object_get(req->params, "xmpp_access");
	if (v) {
		char num[32], err[300];
		const char *text = policy_json_text(v, num, sizeof(num));
		bool b = false;
		if (!text || policy_parse_bool(text, &b) != FG_OK) {
			snprintf(err, sizeof(err), "xmpp_access: '%.100s' is not true or false",
				 text ? text : "?");
			account_free(&a);
			cmd_reply_error(reply, ud, CMD_REFUSED, "xmpp_access", err);
			return;
		}
		a->xmpp_access = b;
	}
	finish_user_change(env, req, a, old, NULL, "user changed", reply, ud);
}

void cmd_user_remove(struct cmd_env *env, const struct cmd_request *req, cmd_reply_fn reply,
		     void *ud)
{
	const struct account *old;
	if (find_user(env, req, reply, ud, &old) != FG_OK)
		return;
	struct cmd_txn *t = cmd_txn_new(env, reply, ud);
	if (!t || !(t->removed_user = strdup(old->jid))) {
		if (t)
			cmd_txn_free(t);
		cmd_reply_error(reply, ud, CMD_REFUSED, NULL, "out of memory");
		return;
	}
	json_object_set_new(t->body, "result", user_json(old));
	if (req->what_if) {
		json_object_set_new(t->body, "what_if", json_true());
		json_object_set_new(t->body, "message",
				    json_string("what if: the user would be removed; nothing was "
						"saved"));
		reply(ud, CMD_OK, json_incref(t->body));
		cmd_txn_free(t);
		return;
	}
	t->ops[t->nops++] = store_op_delete_user(t->removed_user);
	if (cmd_txn_audit(t, req, req->name, old->jid, user_text(old, "(set)"), NULL) != FG_OK) {
		cmd_reply_error(reply, ud, CMD_REFUSED, NULL, "out of memory");
		cmd_txn_free(t);
		return;
	}
	json_object_set_new(t->body, "message",
			    json_string("user removed with its roster, offline messages, "
					"vCard and message archive"));
	cmd_txn_commit(t);
}

void cmd_user_get(struct cmd_env *env, const struct cmd_request *req, cmd_reply_fn reply, void *ud)
{
	const struct account *a;
	if (find_user(env, req, reply, ud, &a) != FG_OK)
		return;
	json_t *b = cmd_body_new();
	json_object_set_new(b, "result", user_json(a));
	reply(ud, CMD_OK, b);
}

void cmd_user_list(struct cmd_env *env, const struct cmd_request *req, cmd_reply_fn reply, void *ud)
{
	const char *filter = cmd_param_str(req->params, "filter");
	json_t *b = cmd_body_new(), *list = json_array();
	for (size_t i = 0; i < accounts_count(env->live.users); i++) {
		const struct account *a = accounts_at(env->live.users, i);
		if (!filter || fnmatch(filter, a->jid, FNM_CASEFOLD) == 0)
			json_array_append_new(list, user_json(a));
	}
	json_object_set_new(b, "result", list);
	reply(ud, CMD_OK, b);
}

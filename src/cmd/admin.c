/* Admin accounts: password hashes, API tokens, and the `admin`
 * commands (the rows themselves are store/store_admins.c).
 *
 * Hashing a password with argon2id takes a noticeable fraction of a second
 * on purpose, so it never runs on the event loop: the commands hash inside
 * their store job (the store thread in the daemon), and sign-in checks run
 * there too. Tokens are 32 random bytes; the database keeps only their
 * SHA-256, which is enough to recognise one and useless to sign in with.
 * An account has any number of tokens, each with a label ("default",
 * "prometheus"): a new token replaces only the one with its label, so a
 * script's token survives a monitoring system getting its own. */
#include "admin.h"

#include "cmd_txn.h"

#include "fg.h"
#include "log.h"
#include "store_admins.h"

#include <openssl/evp.h>
#include <openssl/rand.h>
#include <sodium.h>

#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#define TOKEN_PREFIX "fgt_"
/* A token's last use is written at most this often, so that a scraper
 * asking every few seconds does not make a store write per request. */
#define TOKEN_USED_EVERY_MS 60000
#define LABEL_DEFAULT	    "default"

_Static_assert(sizeof(((struct admin_token_hit *)0)->name) == ADMIN_NAME_MAX + 1,
	       "a token's account name fits an account name");

int admin_init(void)
{
	return sodium_init() < 0 ? FG_ERR : FG_OK;
}

static void sha256_hex(const char *s, char out[65])
{
	unsigned char md[32];
	unsigned int n = 0;
	EVP_Digest(s, strlen(s), md, &n, EVP_sha256(), NULL);
	for (unsigned i = 0; i < 32; i++)
		snprintf(out + 2 * i, 3, "%02x", md[i]);
}

int admin_db_role(struct store_db *db, const char *name, enum admin_role *role, char *err,
		  size_t errlen)
{
	return store_db_admin_get(db, name, role, NULL, 0, err, errlen);
}

int admin_db_check_password(struct store_db *db, const char *name, const char *password,
			    enum admin_role *role, char *err, size_t errlen)
{
	/* A hash of a password nobody has, to spend the same time on an
	 * unknown name; made once. */
	static char dummy[crypto_pwhash_STRBYTES];
	if (admin_init() != FG_OK) {
		snprintf(err, errlen, "libsodium cannot start");
		return FG_ERR;
	}
	if (!dummy[0] &&
	    crypto_pwhash_str(dummy, "no such account", 15, crypto_pwhash_OPSLIMIT_INTERACTIVE,
			      crypto_pwhash_MEMLIMIT_INTERACTIVE) != 0) {
		snprintf(err, errlen, "out of memory hashing a password");
		return FG_ERR;
	}
	char hash[crypto_pwhash_STRBYTES];
	enum admin_role r = ADMIN_NONE;
	int rc = store_db_admin_get(db, name, &r, hash, sizeof(hash), err, errlen);
	if (rc == FG_ERR)
		return FG_ERR;
	if (rc == FG_NOTFOUND) {
		snprintf(hash, sizeof(hash), "%s", dummy);
		r = ADMIN_NONE;
	}
	bool ok = crypto_pwhash_str_verify(hash, password, strlen(password)) == 0;
	sodium_memzero(hash, sizeof(hash));
	if (!ok || r == ADMIN_NONE)
		return FG_NOTFOUND;
	*role = r;
	return FG_OK;
}

int admin_db_by_token(struct store_db *db, const char *token, char *name, size_t namelen,
		      enum admin_role *role, char *err, size_t errlen)
{
	char digest[65];
	if (strncmp(token, TOKEN_PREFIX, strlen(TOKEN_PREFIX)) != 0 || strlen(token) > 200)
		return FG_NOTFOUND;
	sha256_hex(token, digest);
	struct admin_token_hit hit;
	int rc = store_db_admin_by_token(db, digest, &hit, err, errlen);
	if (rc != FG_OK)
		return rc;
	long long now = fg_now_ms();
	if (now - hit.last_used_ms >= TOKEN_USED_EVERY_MS) {
		/* Only a note: a busy store must not turn a good token away. */
		char e[200];
		if (store_db_admin_token_used(db, hit.token_id, now, e, sizeof(e)) != FG_OK)
			log_warn("admin", "cannot note the use of a token of %s: %s", hit.name, e);
	}
	snprintf(name, namelen, "%s", hit.name);
	*role = hit.role;
	return FG_OK;
}

/* ---- the commands ---- */

const struct cmd_param admin_params_add[] = {
	{"name", NULL, CP_STRING, true, "the account's name (letters, digits, . _ - @)"},
	{"role", "--role", CP_STRING, true, "administrator (all) or viewer (read only)"},
	{NULL, NULL, 0, false, NULL},
};

const struct cmd_param admin_params_name[] = {
	{"name", NULL, CP_STRING, true, "the account's name"},
	{NULL, NULL, 0, false, NULL},
};

const struct cmd_param admin_params_set[] = {
	{"name", NULL, CP_STRING, true, "the account's name"},
	{"role", "--role", CP_STRING, true, "administrator (all) or viewer (read only)"},
	{NULL, NULL, 0, false, NULL},
};

const struct cmd_param admin_params_token[] = {
	{"name", NULL, CP_STRING, true, "the account's name"},
	{"label", "--label", CP_STRING, false,
	 "which token, e.g. prometheus (default: \"default\"); a new one replaces only the "
	 "token with this label"},
	{"revoke", "--revoke", CP_FLAG, false,
	 "withdraw the token labelled --label, or without --label every token of the account"},
	{NULL, NULL, 0, false, NULL},
};

const struct cmd_param admin_params_tokens[] = {
	{"name", NULL, CP_STRING, false, "only this account's tokens"},
	{NULL, NULL, 0, false, NULL},
};

const struct cmd_param admin_params_none[] = {
	{NULL, NULL, 0, false, NULL},
};

enum job_kind { JOB_ADD, JOB_PASSWD, JOB_REMOVE, JOB_LIST, JOB_TOKEN, JOB_SET, JOB_TOKENS };

struct admin_job {
	enum job_kind kind;
	cmd_reply_fn reply;
	void *ud;
	char name[ADMIN_NAME_MAX + 1];
	char *password; /* wiped and freed */
	char hash[crypto_pwhash_STRBYTES];
	enum admin_role role;
	bool revoke;
	/* The token's label; "" with revoke: every token of the account. */
	char label[ADMIN_LABEL_MAX + 1];
	/* Read before the change: the tokens it replaces or withdraws, and
	 * the role it changes. */
	long long count;
	enum admin_role old_role;
	/* A what-if: the checks that read the store run, nothing is written;
	 * what says what would have happened. */
	bool what_if;
	char what[80];
	char token[80];
	char token_hash[65];
	char who[80], iface[16];
	json_t *rows;
};

static void job_free(struct admin_job *j)
{
	if (j->password) {
		sodium_memzero(j->password, strlen(j->password));
		free(j->password);
	}
	sodium_memzero(j->hash, sizeof(j->hash));
	sodium_memzero(j->token, sizeof(j->token));
	json_decref(j->rows);
	free(j);
}

static bool name_ok(const char *s)
{
	size_t n = s ? strlen(s) : 0;
	if (n == 0 || n > ADMIN_NAME_MAX)
		return false;
	for (size_t i = 0; i < n; i++)
		if (!isalnum((unsigned char)s[i]) && !strchr("._-@", s[i]))
			return false;
	return true;
}

static const char *param(const struct cmd_request *req, const char *key)
{
	json_t *v = json_object_get(req->params, key);
	return json_is_string(v) ? json_string_value(v) : NULL;
}

static bool label_ok(const char *s)
{
	size_t n = strlen(s);
	if (n == 0 || n > ADMIN_LABEL_MAX)
		return false;
	for (size_t i = 0; i < n; i++)
		if (!isalnum((unsigned char)s[i]) && !strchr("._-", s[i]))
			return false;
	return true;
}

/* A new job for req, or NULL after replying why not. */
static struct admin_job *job_new(enum job_kind kind, const struct cmd_request *req,
				 cmd_reply_fn reply, void *ud, bool needs_name)
{
	const char *name = param(req, "name");
	if (needs_name && !name_ok(name)) {
		char msg[200];
		snprintf(msg, sizeof(msg),
			 "name: '%.64s' is not an account name; use 1 to %d letters, digits, "
			 "'.', '_', '-' or '@'",
			 name ? name : "", ADMIN_NAME_MAX);
		cmd_reply_error(reply, ud, CMD_REFUSED, "name", msg);
		return NULL;
	}
	struct admin_job *j = calloc(1, sizeof(*j));
	if (!j) {
		cmd_reply_error(reply, ud, CMD_REFUSED, NULL, "out of memory");
		return NULL;
	}
	j->kind = kind;
	j->reply = reply;
	j->ud = ud;
	snprintf(j->name, sizeof(j->name), "%s", name ? name : "");
	snprintf(j->who, sizeof(j->who), "%s", req->who ? req->who : "unknown");
	snprintf(j->iface, sizeof(j->iface), "%s", req->iface ? req->iface : "cli");
	return j;
}

/* Checks the password of add/passwd and keeps a copy in j. */
static bool take_password(struct admin_job *j, const struct cmd_request *req)
{
	const char *pw = param(req, "password");
	size_t n = pw ? strlen(pw) : 0;
	char msg[200];
	if (n == 0 || n < ADMIN_PASSWORD_MIN || n > ADMIN_PASSWORD_MAX) {
		if (n == 0)
			snprintf(msg, sizeof(msg),
				 "password: none was given; type one at the prompt or give it on "
				 "standard input (%d to %d characters)",
				 ADMIN_PASSWORD_MIN, ADMIN_PASSWORD_MAX);
		else
			snprintf(msg, sizeof(msg),
				 "password: %zu characters is too %s; use %d to %d characters", n,
				 n < ADMIN_PASSWORD_MIN ? "short" : "long", ADMIN_PASSWORD_MIN,
				 ADMIN_PASSWORD_MAX);
		cmd_reply_error(j->reply, j->ud, CMD_REFUSED, "password", msg);
		job_free(j);
		return false;
	}
	j->password = strdup(pw);
	if (!j->password) {
		cmd_reply_error(j->reply, j->ud, CMD_REFUSED, NULL, "out of memory");
		job_free(j);
		return false;
	}
	return true;
}

/* Custom store ops: they run inside store_db_commit's transaction. */
static int op_add(struct store_db *db, const void *arg, char *err, size_t errlen)
{
	const struct admin_job *j = arg;
	enum admin_role r;
	int rc = admin_db_role(db, j->name, &r, err, errlen);
	if (rc == FG_OK) {
		snprintf(err, errlen,
			 "name: an admin account named %s exists already; change its password "
			 "with 'fedgate admin passwd %s'",
			 j->name, j->name);
		return FG_INVAL;
	}
	if (rc != FG_NOTFOUND)
		return rc;
	return store_db_admin_insert(db, j->name, j->role, j->hash, err, errlen);
}

static int not_found(const struct admin_job *j, char *err, size_t errlen)
{
	snprintf(err, errlen, "no admin account is named %s (see 'fedgate admin list')", j->name);
	return FG_NOTFOUND;
}

/* The account's role; FG_NOTFOUND with the message when there is none. */
static int existing_role(struct store_db *db, const struct admin_job *j, enum admin_role *r,
			 char *err, size_t errlen)
{
	int rc = admin_db_role(db, j->name, r, err, errlen);
	return rc == FG_NOTFOUND ? not_found(j, err, errlen) : rc;
}

static int op_passwd(struct store_db *db, const void *arg, char *err, size_t errlen)
{
	const struct admin_job *j = arg;
	int rc = store_db_admin_set_password(db, j->name, j->hash, err, errlen);
	return rc == FG_NOTFOUND ? not_found(j, err, errlen) : rc;
}

/* FG_INVAL with how to go on when administrator `name` is the last one:
 * without one nobody could change anything. prefix names the field the
 * change touches ("role: "), or is "". */
static int not_last_administrator(struct store_db *db, const char *name, const char *prefix,
				  char *err, size_t errlen)
{
	long long n = 0;
	if (store_db_admin_count_administrators(db, &n, err, errlen) != FG_OK)
		return FG_ERR;
	if (n > 1)
		return FG_OK;
	snprintf(err, errlen,
		 "%s%s is the last administrator, and without one nobody could change "
		 "anything; make another account an administrator first (fedgate admin set "
		 "NAME --role administrator, or fedgate admin add NAME --role administrator)",
		 prefix, name);
	return FG_INVAL;
}

/* Whether the account may be removed: it exists, and is not the last
 * administrator. */
static int remove_check(struct store_db *db, const struct admin_job *j, char *err, size_t errlen)
{
	enum admin_role r;
	int rc = existing_role(db, j, &r, err, errlen);
	if (rc != FG_OK)
		return rc;
	return r == ADMIN_ADMINISTRATOR ? not_last_administrator(db, j->name, "", err, errlen)
					: FG_OK;
}

/* Whether the role may change: the account exists, and an administrator
 * made a viewer is not the last one (whoever asks, themselves included).
 * Keeps the role found in j->old_role. */
static int set_check(struct store_db *db, struct admin_job *j, char *err, size_t errlen)
{
	int rc = existing_role(db, j, &j->old_role, err, errlen);
	if (rc != FG_OK)
		return rc;
	if (j->old_role == ADMIN_ADMINISTRATOR && j->role != ADMIN_ADMINISTRATOR)
		return not_last_administrator(db, j->name, "role: ", err, errlen);
	return FG_OK;
}

static int op_set(struct store_db *db, const void *arg, char *err, size_t errlen)
{
	const struct admin_job *j = arg;
	int rc = store_db_admin_set_role(db, j->name, j->role, err, errlen);
	return rc == FG_NOTFOUND ? not_found(j, err, errlen) : rc;
}

/* Whether the token change can be made: the account exists, and a
 * labelled token to withdraw is there. Keeps in j->count how many tokens
 * the change replaces or withdraws. */
static int token_check(struct store_db *db, struct admin_job *j, char *err, size_t errlen)
{
	enum admin_role r;
	int rc = existing_role(db, j, &r, err, errlen);
	if (rc != FG_OK)
		return rc;
	const char *label = j->label[0] ? j->label : NULL;
	if (store_db_admin_token_count(db, j->name, label, &j->count, err, errlen) != FG_OK)
		return FG_ERR;
	if (j->revoke && label && j->count == 0) {
		snprintf(err, errlen,
			 "label: %s has no API token labelled '%s'; see its tokens with "
			 "'fedgate admin tokens %s'",
			 j->name, label, j->name);
		return FG_NOTFOUND;
	}
	return FG_OK;
}

static int op_remove(struct store_db *db, const void *arg, char *err, size_t errlen)
{
	const struct admin_job *j = arg;
	int rc = remove_check(db, j, err, errlen);
	if (rc != FG_OK)
		return rc;
	rc = store_db_admin_delete(db, j->name, err, errlen);
	return rc == FG_NOTFOUND ? not_found(j, err, errlen) : rc;
}

/* A what-if's reads: what the change would find in the store (an account
 * that exists already, or none), without hashing or writing. This is
 * what lets the CLI refuse before it prompts for a password. */
static int what_if_check(struct store_db *db, struct admin_job *j, char *err, size_t errlen)
{
	enum admin_role r;
	int rc;
	switch (j->kind) {
	case JOB_ADD:
		rc = admin_db_role(db, j->name, &r, err, errlen);
		if (rc == FG_OK) {
			snprintf(err, errlen,
				 "name: an admin account named %s exists already; change its "
				 "password with 'fedgate admin passwd %s'",
				 j->name, j->name);
			return FG_INVAL;
		}
		return rc == FG_NOTFOUND ? FG_OK : rc;
	case JOB_PASSWD: return existing_role(db, j, &r, err, errlen);
	case JOB_TOKEN: return token_check(db, j, err, errlen);
	case JOB_REMOVE: return remove_check(db, j, err, errlen);
	case JOB_SET: return set_check(db, j, err, errlen);
	case JOB_LIST:
	case JOB_TOKENS: break;
	}
	return FG_OK;
}

static int op_token(struct store_db *db, const void *arg, char *err, size_t errlen)
{
	const struct admin_job *j = arg;
	enum admin_role r;
	int rc = existing_role(db, j, &r, err, errlen);
	if (rc != FG_OK)
		return rc;
	if (j->revoke)
		return store_db_admin_token_delete(db, j->name, j->label[0] ? j->label : NULL, err,
						   errlen);
	return store_db_admin_token_put(db, j->name, j->label, j->token_hash, err, errlen);
}

static int list_row(void *ud, const struct admin_row *r)
{
	json_t *o = json_object();
	char when[FG_UTC_LEN];
	fg_utc((time_t)(r->created_ms / 1000), when);
	json_object_set_new(o, "name", json_string(r->name ? r->name : ""));
	json_object_set_new(o, "role", json_string(r->role ? r->role : ""));
	json_object_set_new(o, "created", json_string(when));
	/* api_token (a boolean) is what schema 4 had; kept for scripts. */
	json_object_set_new(o, "api_token", json_boolean(r->tokens > 0));
	json_object_set_new(o, "tokens", json_integer(r->tokens));
	json_array_append_new(ud, o);
	return FG_OK;
}

static int token_row(void *ud, const struct admin_token_row *r)
{
	json_t *o = json_object();
	char when[FG_UTC_LEN];
	fg_utc((time_t)(r->created_ms / 1000), when);
	json_object_set_new(o, "name", json_string(r->name ? r->name : ""));
	json_object_set_new(o, "label", json_string(r->label ? r->label : ""));
	json_object_set_new(o, "created", json_string(when));
	if (r->last_used_ms) {
		fg_utc((time_t)(r->last_used_ms / 1000), when);
		json_object_set_new(o, "last_used", json_string(when));
	} else {
		json_object_set_new(o, "last_used", json_null());
	}
	json_array_append_new(ud, o);
	return FG_OK;
}

static int list_rows(struct store_db *db, json_t *rows, char *err, size_t errlen)
{
	return store_db_admin_list(db, list_row, rows, err, errlen);
}

static char *audit_text(const char *name, const char *role, const char *key, const char *val)
{
	json_t *o = json_object();
	json_object_set_new(o, "name", json_string(name));
	if (role)
		json_object_set_new(o, "role", json_string(role));
	if (key)
		json_object_set_new(o, key, json_string(val));
	char *s = json_dumps(o, JSON_COMPACT | JSON_SORT_KEYS);
	json_decref(o);
	return s;
}

/* The store thread (or the CLI's own): hashing, then one transaction of the
 * change and its audit row. */
static int job_run(struct store_db *db, void *ud, char *err, size_t errlen)
{
	struct admin_job *j = ud;
	struct store_op op = {.kind = STORE_CUSTOM, .custom_arg = j};
	if (admin_init() != FG_OK) {
		snprintf(err, errlen, "libsodium cannot start");
		return FG_ERR;
	}
	struct audit_entry a = {.who = j->who, .iface = j->iface, .target = j->name};
	char *before = NULL, *after = NULL;
	if (j->what_if)
		return what_if_check(db, j, err, errlen);
	switch (j->kind) {
	case JOB_LIST: return list_rows(db, j->rows, err, errlen);
	case JOB_TOKENS: {
		enum admin_role r;
		int rc = j->name[0] ? existing_role(db, j, &r, err, errlen) : FG_OK;
		return rc != FG_OK ? rc
				   : store_db_admin_tokens(db, j->name[0] ? j->name : NULL,
							   token_row, j->rows, err, errlen);
	}
	case JOB_SET: {
		int rc = set_check(db, j, err, errlen);
		if (rc != FG_OK || j->old_role == j->role)
			return rc;
		op.custom = op_set;
		a.action = "admin set";
		before = audit_text(j->name, admin_role_name(j->old_role), NULL, NULL);
		after = audit_text(j->name, admin_role_name(j->role), NULL, NULL);
		break;
	}
	case JOB_ADD:
	case JOB_PASSWD:
		if (crypto_pwhash_str(j->hash, j->password, strlen(j->password),
				      crypto_pwhash_OPSLIMIT_INTERACTIVE,
				      crypto_pwhash_MEMLIMIT_INTERACTIVE) != 0) {
			snprintf(err, errlen, "out of memory hashing the password");
			return FG_NOMEM;
		}
		if (j->kind == JOB_ADD) {
			op.custom = op_add;
			a.action = "admin add";
			after = audit_text(j->name, admin_role_name(j->role), NULL, NULL);
		} else {
			op.custom = op_passwd;
			a.action = "admin passwd";
			before = audit_text(j->name, NULL, "password", "(set)");
			after = audit_text(j->name, NULL, "password", "(changed)");
		}
		break;
	case JOB_REMOVE:
		op.custom = op_remove;
		a.action = "admin remove";
		before = audit_text(j->name, NULL, NULL, NULL);
		break;
	case JOB_TOKEN: {
		/* The audit names the label, never the token. */
		int rc = token_check(db, j, err, errlen);
		if (rc != FG_OK || (j->revoke && j->count == 0))
			return rc;
		op.custom = op_token;
		a.action = j->revoke ? "admin token revoke" : "admin token";
		json_t *o = json_pack("{s:s, s:s, s:s}", "name", j->name, "label",
				      j->label[0] ? j->label : "(all)", "api_token",
				      j->revoke	 ? "(revoked)"
				      : j->count ? "(replaced)"
						 : "(new)");
		if (j->revoke)
			json_object_set_new(o, "revoked", json_integer(j->count));
		after = json_dumps(o, JSON_COMPACT | JSON_SORT_KEYS);
		json_decref(o);
		break;
	}
	}
	a.before = before;
	a.after = after;
	int rc = store_db_commit(db, &op, 1, &a, 1, err, errlen);
	free(before);
	free(after);
	return rc;
}

static void job_done(void *ud, int rc, const char *err)
{
	struct admin_job *j = ud;
	json_t *b = cmd_body_new();
	int status = CMD_OK;
	char msg[300];
	if (rc != FG_OK) {
		status = rc == FG_NOTFOUND ? CMD_NOT_FOUND : CMD_REFUSED;
		cmd_add_error(b, NULL, err && *err ? err : "the store refused the change");
		json_object_set_new(b, "message", json_string("refused: nothing was saved"));
		j->reply(j->ud, status, b);
		job_free(j);
		return;
	}
	if (j->what_if) {
		snprintf(msg, sizeof(msg), "what if: %s; nothing was saved", j->what);
		json_object_set_new(b, "what_if", json_true());
		json_object_set_new(b, "message", json_string(msg));
		j->reply(j->ud, status, b);
		job_free(j);
		return;
	}
	switch (j->kind) {
	case JOB_LIST:
	case JOB_TOKENS: json_object_set(b, "result", j->rows); break;
	case JOB_SET:
		if (j->old_role == j->role)
			snprintf(msg, sizeof(msg), "no change: %s is already %s %s", j->name,
				 j->role == ADMIN_ADMINISTRATOR ? "an" : "a",
				 admin_role_name(j->role));
		else
			snprintf(msg, sizeof(msg), "%s is now %s %s (was %s)", j->name,
				 j->role == ADMIN_ADMINISTRATOR ? "an" : "a",
				 admin_role_name(j->role), admin_role_name(j->old_role));
		json_object_set_new(b, "message", json_string(msg));
		break;
	case JOB_ADD:
		snprintf(msg, sizeof(msg), "admin account %s added (%s)", j->name,
			 admin_role_name(j->role));
		json_object_set_new(b, "message", json_string(msg));
		break;
	case JOB_PASSWD:
		snprintf(msg, sizeof(msg), "password of %s changed", j->name);
		json_object_set_new(b, "message", json_string(msg));
		break;
	case JOB_REMOVE:
		snprintf(msg, sizeof(msg), "admin account %s removed", j->name);
		json_object_set_new(b, "message", json_string(msg));
		break;
	case JOB_TOKEN:
		if (j->revoke && j->label[0]) {
			snprintf(msg, sizeof(msg),
				 "the API token '%s' of %s was withdrawn; its other tokens still "
				 "work",
				 j->label, j->name);
		} else if (j->revoke) {
			snprintf(msg, sizeof(msg), "%lld API token%s of %s withdrawn%s", j->count,
				 j->count == 1 ? "" : "s", j->name,
				 j->count ? "" : ": it had none; nothing changed");
			json_object_set_new(b, "result",
					    json_pack("{s:s, s:I}", "name", j->name, "revoked",
						      (json_int_t)j->count));
		} else {
			json_t *r = json_object();
			json_object_set_new(r, "name", json_string(j->name));
			json_object_set_new(r, "label", json_string(j->label));
			json_object_set_new(r, "replaced", json_boolean(j->count > 0));
			json_object_set_new(r, "token", json_string(j->token));
			json_object_set_new(b, "result", r);
			snprintf(msg, sizeof(msg),
				 "a new API token '%s' for %s%s; it is shown only now: send it as "
				 "'Authorization: Bearer TOKEN'",
				 j->label, j->name,
				 j->count
					 ? " (it replaces the earlier token with this label, which "
					   "no longer works; other tokens still do)"
					 : "");
		}
		json_object_set_new(b, "message", json_string(msg));
		break;
	}
	j->reply(j->ud, status, b);
	job_free(j);
}

static void job_submit(struct cmd_env *env, struct admin_job *j)
{
	if (env->run(env, job_run, job_done, j) != FG_OK)
		job_done(j, FG_ERR, "cannot queue the change");
}

/* A what-if runs the store's checks and answers with what; true when
 * req is one (j is then the job's). */
static bool what_if_submit(struct cmd_env *env, struct admin_job *j, const struct cmd_request *req,
			   const char *what)
{
	if (!req->what_if)
		return false;
	j->what_if = true;
	snprintf(j->what, sizeof(j->what), "%s", what);
	job_submit(env, j);
	return true;
}

static void role_refused(cmd_reply_fn reply, void *ud, const char *role)
{
	char msg[200];
	snprintf(msg, sizeof(msg),
		 "role: '%.40s' is not a role; use administrator (may change everything) or "
		 "viewer (may only read)",
		 role ? role : "");
	cmd_reply_error(reply, ud, CMD_REFUSED, "role", msg);
}

/* A job for a command that takes --role; NULL when the role is refused
 * (answered) or memory ran out. */
static struct admin_job *job_with_role(enum job_kind kind, const struct cmd_request *req,
				       cmd_reply_fn reply, void *ud)
{
	struct admin_job *j = job_new(kind, req, reply, ud, true);
	if (!j)
		return NULL;
	j->role = admin_role_parse(param(req, "role"));
	if (j->role == ADMIN_NONE) {
		role_refused(reply, ud, param(req, "role"));
		job_free(j);
		return NULL;
	}
	return j;
}

void admin_cmd_add(struct cmd_env *env, const struct cmd_request *req, cmd_reply_fn reply, void *ud)
{
	struct admin_job *j = job_with_role(JOB_ADD, req, reply, ud);
	if (!j)
		return;
	if (!take_password(j, req) || what_if_submit(env, j, req, "the account would be added"))
		return;
	job_submit(env, j);
}

void admin_cmd_passwd(struct cmd_env *env, const struct cmd_request *req, cmd_reply_fn reply,
		      void *ud)
{
	struct admin_job *j = job_new(JOB_PASSWD, req, reply, ud, true);
	if (!j || !take_password(j, req) ||
	    what_if_submit(env, j, req, "the password would be changed"))
		return;
	job_submit(env, j);
}

void admin_cmd_remove(struct cmd_env *env, const struct cmd_request *req, cmd_reply_fn reply,
		      void *ud)
{
	struct admin_job *j = job_new(JOB_REMOVE, req, reply, ud, true);
	if (!j || what_if_submit(env, j, req, "the account would be removed"))
		return;
	job_submit(env, j);
}

void admin_cmd_list(struct cmd_env *env, const struct cmd_request *req, cmd_reply_fn reply,
		    void *ud)
{
	struct admin_job *j = job_new(JOB_LIST, req, reply, ud, false);
	if (!j)
		return;
	j->rows = json_array();
	job_submit(env, j);
}

void admin_cmd_token(struct cmd_env *env, const struct cmd_request *req, cmd_reply_fn reply,
		     void *ud)
{
	struct admin_job *j = job_new(JOB_TOKEN, req, reply, ud, true);
	if (!j)
		return;
	json_t *rv = json_object_get(req->params, "revoke");
	j->revoke = json_is_true(rv) ||
		    (json_is_string(rv) && strcmp(json_string_value(rv), "true") == 0);
	const char *label = param(req, "label");
	if (label && !label_ok(label)) {
		char msg[200];
		snprintf(msg, sizeof(msg),
			 "label: '%.64s' is not a token label; use 1 to %d letters, digits, '.', "
			 "'_' or '-', e.g. prometheus",
			 label, ADMIN_LABEL_MAX);
		cmd_reply_error(reply, ud, CMD_REFUSED, "label", msg);
		job_free(j);
		return;
	}
	snprintf(j->label, sizeof(j->label), "%s", label ? label : j->revoke ? "" : LABEL_DEFAULT);
	if (!j->revoke) {
		unsigned char rnd[32];
		if (RAND_bytes(rnd, sizeof(rnd)) != 1) {
			cmd_reply_error(reply, ud, CMD_REFUSED, NULL, "cannot make a random token");
			job_free(j);
			return;
		}
		int n = snprintf(j->token, sizeof(j->token), TOKEN_PREFIX);
		for (size_t i = 0; i < sizeof(rnd); i++)
			n += snprintf(j->token + n, sizeof(j->token) - (size_t)n, "%02x", rnd[i]);
		sodium_memzero(rnd, sizeof(rnd));
		sha256_hex(j->token, j->token_hash);
	}
	if (what_if_submit(env, j, req,
			   j->revoke ? "the token would be withdrawn" : "a token would be made"))
		return;
	job_submit(env, j);
}

void admin_cmd_set(struct cmd_env *env, const struct cmd_request *req, cmd_reply_fn reply, void *ud)
{
	struct admin_job *j = job_with_role(JOB_SET, req, reply, ud);
	if (!j)
		return;
	if (what_if_submit(env, j, req, "the role would be changed"))
		return;
	job_submit(env, j);
}

void admin_cmd_tokens(struct cmd_env *env, const struct cmd_request *req, cmd_reply_fn reply,
		      void *ud)
{
	const char *name = param(req, "name");
	struct admin_job *j = job_new(JOB_TOKENS, req, reply, ud, name != NULL);
	if (!j)
		return;
	j->rows = json_array();
	job_submit(env, j);
}

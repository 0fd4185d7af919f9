/* What fuzz_api and fuzz_control share: the command layer as the CLI
 * without a daemon runs it (cmd_exec, the synchronous runner) on a fresh
 * store per input, in /dev/shm when there is one, so every input starts
 * from the same state and a crash replays alone. The fresh state holds a
 * partner (fabrikam.test), a local user (alice@contoso.test) and an admin
 * (root), so that set, get and remove reach existing records; it is made
 * once and copied for each input.
 *
 * fx_exec() runs one command and checks what holds for every command and
 * every front-end: exactly one reply, at once; a status of the table's
 * vocabulary and an object body with the "errors" of a refusal; no secret
 * in it; and a refusal, a what-if or a reading command leaves the partners,
 * the gateway settings, the users and the admins byte for byte as they
 * were. */
#ifndef FG_FUZZ_CMD_FIXTURE_H
#define FG_FUZZ_CMD_FIXTURE_H

#include <jansson.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "fuzz.h"
#include "cmd.h"
#include "conf.h"
#include "fg.h"
#include "log.h"
#include "sasl.h"
#include "store_sqlite.h"

#define FX_PASSWORD "correct horse battery"

struct fx {
	char dir[64];
	char path[128];
	struct fg_conf *conf;
	struct store_db *db;
	struct cmd_env env;
	int replies, status;
	bool named; /* the input named a secret itself */
	json_t *body;
};

static inline void fx_on_reply(void *ud, int status, json_t *body)
{
	struct fx *f = ud;

	f->replies++;
	json_decref(f->body);
	f->body = body;
	f->status = status;
}

/* Everything a command may change, as one text. */
static inline char *fx_snapshot(struct fx *f)
{
	static const char *const reads[] = {"partner export", "gateway get", "user list",
					    "admin list", "admin tokens"};
	json_t *all = json_object();

	CHECK(all != NULL);
	for (size_t i = 0; i < FG_ARRAY_LEN(reads); i++) {
		struct cmd_request r = {
			.name = reads[i], .params = NULL, .who = "fuzz", .iface = "cli"};
		json_t *p = json_object();

		r.params = p;
		f->replies = 0;
		cmd_exec(&f->env, &r, fx_on_reply, f);
		CHECK(f->replies == 1 && f->status == CMD_OK);
		json_object_set(all, reads[i], json_object_get(f->body, "result"));
		json_decref(p);
	}
	/* The dialback secret never shows; whether it changed must. */
	json_object_set_new(all, "secret", json_string(f->env.live.gw.dialback_secret));
	char *s = json_dumps(all, JSON_SORT_KEYS | JSON_COMPACT);

	CHECK(s != NULL);
	json_decref(all);
	return s;
}

static inline bool fx_contains(json_t *body, const char *secret)
{
	if (!secret || strlen(secret) < 8)
		return false;
	char *s = json_dumps(body, JSON_COMPACT | JSON_ENCODE_ANY);
	bool in = s && strcasestr(s, secret) != NULL;

	free(s);
	return in;
}

static inline bool fx_names(const struct cmd_request *req, const char *secret)
{
	return fx_contains(req->params, secret) ||
	       (req->name && secret && strlen(secret) >= 8 && strcasestr(req->name, secret));
}

/* Runs one command as the front-ends do and checks the common contract.
 * Returns the status; the body stays in f->body. */
static inline int fx_exec(struct fx *f, const struct cmd_request *req)
{
	const struct cmd_def *def = cmd_find(req->name ? req->name : "");
	char *before = fx_snapshot(f);
	char secret[256];

	snprintf(secret, sizeof(secret), "%s", f->env.live.gw.dialback_secret);
	f->replies = 0;
	cmd_exec(&f->env, req, fx_on_reply, f);
	CHECK(f->replies == 1);
	CHECK(f->status >= CMD_OK && f->status <= CMD_NOT_FOUND);
	CHECK(json_is_object(f->body));
	if (f->status != CMD_OK)
		CHECK(json_array_size(json_object_get(f->body, "errors")) > 0);
	/* Secrets stay where they are: the password given, when it holds a
	 * space and the rest of the request does not spell it too. Replies
	 * rightly show JIDs and domains, prepared: a password "ntoso.test" is
	 * in bob@contoso.test, "staplttery" in ob@tstaplTtery.test lower-cased,
	 * but no prepared node or domain holds a space. */
	const char *pw = json_string_value(json_object_get(req->params, "password"));
	json_t *rest = json_is_object(req->params) ? json_deep_copy(req->params) : NULL;

	json_object_del(rest, "password");
	if (pw && strchr(pw, ' ') && !fx_contains(rest, pw) &&
	    !(req->name && strcasestr(req->name, pw)))
		CHECK(!fx_contains(f->body, pw));
	json_decref(rest);
	/* The others unless the input has named them, here or before (the
	 * fuzzer learns them from these very comparisons, and an error may
	 * quote a key or a description may hold one). */
	f->named |= fx_names(req, secret) || fx_names(req, f->env.live.gw.dialback_secret) ||
		    fx_names(req, FX_PASSWORD);
	if (!f->named)
		CHECK(!fx_contains(f->body, secret) &&
		      !fx_contains(f->body, f->env.live.gw.dialback_secret) &&
		      !fx_contains(f->body, FX_PASSWORD));

	/* The snapshot's reads reply through f too: keep the command's own
	 * body and status for the caller. */
	json_t *body = json_incref(f->body);
	int status = f->status;
	char *after = fx_snapshot(f);

	json_decref(f->body);
	f->body = body;
	f->status = status;
	if (status != CMD_OK || req->what_if || !def || !def->writes || req->read_only)
		CHECK(strcmp(before, after) == 0);
	free(before);
	free(after);
	return status;
}

static inline void fx_do(struct fx *f, const char *name, const char *params_json)
{
	json_error_t e;
	json_t *p = json_loads(params_json, 0, &e);
	struct cmd_request r = {.name = name, .params = p, .who = "fuzz", .iface = "cli"};

	CHECK(p != NULL);
	f->replies = 0;
	cmd_exec(&f->env, &r, fx_on_reply, f);
	CHECK(f->replies == 1 && f->status == CMD_OK);
	json_decref(p);
}

static inline void fx_load(struct fx *f)
{
	char err[512] = "";

	snprintf(f->path, sizeof(f->path), "%s/fedgate.db", f->dir);
	CHECK(conf_defaults_for(f->dir, "contoso.test", &f->conf) == FG_OK);
	CHECK(store_db_open(f->path, &f->db, err, sizeof(err)) == FG_OK);
	f->env = (struct cmd_env){.live = {.conf = f->conf}, .run = cmd_run_sync, .db = f->db};
	CHECK(cmd_env_load(&f->env, f->db, err, sizeof(err)) == FG_OK);
}

static inline void fx_close(struct fx *f);

static inline void fx_mkdir(struct fx *f)
{
	snprintf(f->dir, sizeof(f->dir), "%s/fg-fuzz.XXXXXX",
		 access("/dev/shm", W_OK) == 0 ? "/dev/shm" : "/tmp");
	CHECK(mkdtemp(f->dir) != NULL);
}

static char fx_template[160];

static inline void fx_template_remove(void)
{
	char *slash = strrchr(fx_template, '/');

	unlink(fx_template);
	if (slash) {
		*slash = '\0';
		rmdir(fx_template);
	}
}

/* The starting state is made once (an admin's password hash takes long)
 * and copied for every input. */
static inline void fx_open(struct fx *f)
{
	char *template_db = fx_template;

	if (!template_db[0]) {
		struct fx t;
		char from[160];

		log_set_level(LOG_ERROR);
		CHECK(sasl_global_init() == FG_OK);
		memset(&t, 0, sizeof(t));
		fx_mkdir(&t);
		fx_load(&t);
		fx_do(&t, "partner new",
		      "{\"domain\": \"fabrikam.test\", \"additional_domains\": "
		      "[\"corp.fabrikam.test\"], \"tls\": \"required\", \"sasl\": "
		      "\"optional\", \"dialback\": true}");
		fx_do(&t, "user add",
		      "{\"jid\": \"alice@contoso.test\", \"password\": \"" FX_PASSWORD "\"}");
		fx_do(&t, "admin add",
		      "{\"name\": \"root\", \"role\": \"administrator\", "
		      "\"password\": \"" FX_PASSWORD "\"}");
		snprintf(from, sizeof(from), "%s", t.path);
		json_decref(t.body);
		/* Closing checkpoints the WAL: the one file is the whole store. */
		cmd_env_clear(&t.env);
		store_db_close(&t.db);
		snprintf(fx_template, sizeof(fx_template), "%s.template", from);
		CHECK(rename(from, fx_template) == 0);
		atexit(fx_template_remove);
		conf_free(&t.conf);
	}
	memset(f, 0, sizeof(*f));
	fx_mkdir(f);
	char to[160], buf[1 << 16];

	snprintf(to, sizeof(to), "%s/fedgate.db", f->dir);
	FILE *in = fopen(template_db, "rb"), *out = fopen(to, "wb");

	CHECK(in && out);
	for (size_t n; (n = fread(buf, 1, sizeof(buf), in)) > 0;)
		CHECK(fwrite(buf, 1, n, out) == n);
	CHECK(fclose(in) == 0 && fclose(out) == 0);
	CHECK(chmod(to, 0600) == 0);
	fx_load(f);
}

static inline void fx_close(struct fx *f)
{
	static const char *const files[] = {"fedgate.db", "fedgate.db-wal", "fedgate.db-shm",
					    "fedgate.db-journal"};
	char p[160];

	json_decref(f->body);
	cmd_env_clear(&f->env);
	store_db_close(&f->db);
	conf_free(&f->conf);
	for (size_t i = 0; i < FG_ARRAY_LEN(files); i++) {
		snprintf(p, sizeof(p), "%s/%s", f->dir, files[i]);
		unlink(p);
	}
	CHECK(rmdir(f->dir) == 0);
}

#endif

/* Unit tests for the command layer (src/cmd) without a daemon: the table,
 * argv parsing, and the partner, gateway, audit and user commands run by
 * cmd_exec() with the synchronous runner on a store in a temporary folder,
 * as the CLI does when no daemon answers. Each change is checked in memory
 * (env.live), in the store (opened again), in the audit log and through the
 * change hooks; each refusal must leave all of them as they were. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "cmd.h"
#include "conf.h"
#include "fg.h"
#include "log.h"
#include "policy.h"
#include "policy_json.h"
#include "sasl.h"
#include "store_sqlite.h"
#include "store_testdir.h"
#include "users.h"

#include <jansson.h>
#include <stdio.h>

#define PASSWORD  "correct horse battery"
#define PASSWORD2 "staple horse battery"

enum { WHAT_IF = 1, READ_ONLY = 2 };

/* ---- the fixture: a store, a conf for contoso.test, a loaded env ---- */

struct fx {
	struct tdir *td;
	struct fg_conf *conf;
	struct store_db *db;
	struct cmd_env env;
	char secret[160]; /* the dialback secret made by the first load */
	const char *who, *iface;
	int status, replies; /* the last reply */
	json_t *body;
	/* hooks: calls, "old>new;" per call ("-" for NULL), the last call's
	 * values, and calls that found the new state not yet in memory/store */
	int pcalls, ucalls, gcalls, hook_bad;
	char plog[512], ulog[512];
	long long p_old_limit, p_new_limit, u_old_access, u_new_access, g_live, g_stored;
	bool u_creds_changed;
};

static long long stored_int(struct fx *f, const char *fmt, const char *key)
{
	char sql[300];
	snprintf(sql, sizeof(sql), fmt, key);
	return raw_int(f->td->path, sql);
}

static void on_partner(struct cmd_env *env, const struct partner *old, const struct partner *new_p)
{
	struct fx *f = env->ud;
	size_t n = strlen(f->plog);
	snprintf(f->plog + n, sizeof(f->plog) - n, "%s>%s;", old ? old->domain : "-",
		 new_p ? new_p->domain : "-");
	f->pcalls++;
	f->p_old_limit = old ? (long long)old->connection_limit : -1;
	f->p_new_limit = new_p ? (long long)new_p->connection_limit : -1;
	const char *d = new_p ? new_p->domain : old->domain;
	const struct partner *live = policy_get(env->live.partners, d);
	if (live != new_p || (old && live == old) ||
	    stored_int(f, "SELECT connection_limit FROM partners WHERE domain = '%s'", d) !=
		    f->p_new_limit)
		f->hook_bad++;
}

static void on_user(struct cmd_env *env, const struct account *old, const struct account *new_a)
{
	struct fx *f = env->ud;
	size_t n = strlen(f->ulog);
	snprintf(f->ulog + n, sizeof(f->ulog) - n, "%s>%s;", old ? old->jid : "-",
		 new_a ? new_a->jid : "-");
	f->ucalls++;
	f->u_old_access = old ? old->xmpp_access : -1;
	f->u_new_access = new_a ? new_a->xmpp_access : -1;
	f->u_creds_changed = old && new_a && memcmp(&old->creds, &new_a->creds, sizeof(old->creds));
	const char *jid = new_a ? new_a->jid : old->jid;
	if (accounts_get(env->live.users, jid) != new_a ||
	    stored_int(f, "SELECT xmpp_access FROM users WHERE jid = '%s'", jid) != f->u_new_access)
		f->hook_bad++;
}

static void on_gateway(struct cmd_env *env)
{
	struct fx *f = env->ud;
	f->gcalls++;
	f->g_live = env->live.gw.connection_limit;
	f->g_stored =
		raw_int(f->td->path, "SELECT value FROM gateway WHERE key = 'connection_limit'");
}

/* Every reply: counted, kept, and searched for secrets. */
static void on_reply(void *ud, int status, json_t *body)
{
	struct fx *f = ud;
	char *s = json_dumps(body, JSON_COMPACT);
	const char *cur = f->env.live.gw.dialback_secret;
	assert_non_null(s);
	if (strstr(s, f->secret) || (cur && strstr(s, cur)) || strstr(s, PASSWORD) ||
	    strstr(s, PASSWORD2))
		fail_msg("a secret in a reply: %s", s);
	free(s);
	json_decref(f->body);
	f->body = body;
	f->status = status;
	f->replies++;
}

static int fx_setup(void **state)
{
	void *t = NULL;
	char err[512] = "";
	if (setup(&t) != 0)
		return -1;
	struct fx *f = calloc(1, sizeof(*f));
	assert_non_null(f);
	f->td = t;
	assert_int_equal(conf_defaults_for(f->td->dir, "contoso.test", &f->conf), FG_OK);
	f->db = open_ok(f->td);
	f->env = (struct cmd_env){.live = {.conf = f->conf},
				  .run = cmd_run_sync,
				  .db = f->db,
				  .ud = f,
				  .partner_changed = on_partner,
				  .user_changed = on_user,
				  .gateway_changed = on_gateway};
	if (cmd_env_load(&f->env, f->db, err, sizeof(err)) != FG_OK)
		fail_msg("cmd_env_load: %s", err);
	assert_non_null(f->env.live.gw.dialback_secret);
	snprintf(f->secret, sizeof(f->secret), "%s", f->env.live.gw.dialback_secret);
	f->who = "alice";
	f->iface = "api";
	*state = f;
	return 0;
}

static int fx_teardown(void **state)
{
	struct fx *f = *state;
	void *t = f->td;
	json_decref(f->body);
	cmd_env_clear(&f->env);
	store_db_close(&f->db);
	conf_free(&f->conf);
	free(f);
	return teardown(&t);
}

/* Test JSON is written with ' for " to spare the escapes. */
static json_t *J(const char *text)
{
	char buf[1024];
	json_error_t e;
	assert_true(strlen(text) < sizeof(buf));
	snprintf(buf, sizeof(buf), "%s", text);
	for (char *c = buf; *c; c++)
		if (*c == '\'')
			*c = '"';
	json_t *j = json_loads(buf, 0, &e);
	if (!j)
		fail_msg("bad test JSON %s: %s", buf, e.text);
	return j;
}

/* j's member at a dotted path: "result.after.tls", "result.0.domain";
 * "-1" is an array's last element. */
static json_t *at(json_t *j, const char *path)
{
	char buf[200], *save = NULL;
	snprintf(buf, sizeof(buf), "%s", path);
	for (char *k = strtok_r(buf, ".", &save); k && j; k = strtok_r(NULL, ".", &save))
		j = !json_is_array(j) ? json_object_get(j, k)
		    : *k == '-' ? json_array_get(j, json_array_size(j) - strtoul(k + 1, NULL, 10))
				: json_array_get(j, strtoul(k, NULL, 10));
	return j;
}

static const char *S(json_t *j, const char *path)
{
	const char *s = json_string_value(at(j, path));
	return s ? s : "(none)";
}

static long long I(json_t *j, const char *path)
{
	json_t *v = at(j, path);
	return json_is_integer(v) ? json_integer_value(v) : -999;
}

/* Runs name on env with params (taken); exactly one reply. */
static int run_env(struct fx *f, struct cmd_env *env, const char *name, json_t *params,
		   unsigned opts)
{
	struct cmd_request req = {.name = name,
				  .params = params,
				  .what_if = opts & WHAT_IF,
				  .who = f->who,
				  .iface = f->iface,
				  .read_only = opts & READ_ONLY};
	int before = f->replies;
	cmd_exec(env, &req, on_reply, f);
	json_decref(params);
	assert_int_equal(f->replies, before + 1);
	assert_true(json_is_object(f->body));
	return f->status;
}

/* Whether the last reply's errors or message contain needle. */
static bool said(const struct fx *f, const char *needle)
{
	size_t i;
	json_t *e;
	const char *m = json_string_value(json_object_get(f->body, "message"));
	json_array_foreach(at(f->body, "errors"), i, e)
	{
		/* Every error is {field, message}: the field names the
		 * parameter (or null), the message says why. */
		assert_true(json_is_object(e));
		assert_true(json_is_string(json_object_get(e, "field")) ||
			    json_is_null(json_object_get(e, "field")));
		const char *msg = json_string_value(json_object_get(e, "message"));
		assert_non_null(msg);
		if (strstr(msg, needle))
			return true;
	}
	return m && strstr(m, needle);
}

/* The last reply had status and said needle (NULL: anything); a refusal
 * always says why. */
static void expect(const struct fx *f, int status, const char *needle)
{
	if (f->status != status || (needle && !said(f, needle)) ||
	    (status != CMD_OK && json_array_size(at(f->body, "errors")) == 0))
		fail_msg("expected status %d saying '%s'; got %d: %s", status, needle ? needle : "",
			 f->status, json_dumps(f->body, JSON_COMPACT));
}

/* Runs name with params (test JSON) on the fixture's env and expects. */
static void go(struct fx *f, const char *name, const char *params, unsigned opts, int status,
	       const char *needle)
{
	run_env(f, &f->env, name, J(params), opts);
	expect(f, status, needle);
}

/* Partners, gateway settings (secret included) and users of an env. */
static char *env_text(const struct cmd_env *e)
{
	json_t *ps = json_array(), *us = json_array();
	for (size_t i = 0; i < policy_count(e->live.partners); i++)
		json_array_append_new(
			ps, policy_json_partner(policy_at(e->live.partners, i), NULL, false));
	for (size_t i = 0; i < accounts_count(e->live.users); i++) {
		const struct account *a = accounts_at(e->live.users, i);
		char key[17];
		for (size_t k = 0; k < 8; k++)
			snprintf(key + 2 * k, 3, "%02x", a->creds.stored_sha256[k]);
		json_array_append_new(us, json_pack("{s:s, s:b, s:s}", "jid", a->jid, "access",
						    a->xmpp_access, "key", key));
	}
	json_t *o =
		json_pack("{s:o, s:o, s:o, s:s}", "partners", ps, "users", us, "gateway",
			  policy_json_gateway(&e->live.gw), "secret", e->live.gw.dialback_secret);
	char *s = json_dumps(o, JSON_COMPACT | JSON_SORT_KEYS);
	json_decref(o);
	assert_non_null(s);
	return s;
}

/* What a fresh process would load: the store opened again, into e. */
static void load_fresh(struct fx *f, struct cmd_env *e, struct store_db **db)
{
	char err[512] = "";
	*db = open_ok(f->td);
	*e = (struct cmd_env){.live = {.conf = f->conf}, .run = cmd_run_sync, .db = *db};
	if (cmd_env_load(e, *db, err, sizeof(err)) != FG_OK)
		fail_msg("cmd_env_load: %s", err);
}

static char *store_text(struct fx *f)
{
	struct cmd_env e;
	struct store_db *db;
	load_fresh(f, &e, &db);
	char *s = env_text(&e);
	cmd_env_clear(&e);
	store_db_close(&db);
	return s;
}

/* Memory and the store agree. */
static void assert_saved(struct fx *f)
{
	char *mem = env_text(&f->env), *disk = store_text(f);
	assert_string_equal(mem, disk);
	free(mem);
	free(disk);
}

static long long audit_count(struct fx *f)
{
	return raw_int(f->td->path, "SELECT count(*) FROM audit");
}

/* Memory, store, audit count and hook calls in one text, to compare. */
static char *state_text(struct fx *f)
{
	char *mem = env_text(&f->env), *disk = store_text(f), *s = NULL;
	assert_true(asprintf(&s, "%s\n%s\naudit %lld, hooks %d", mem, disk, audit_count(f),
			     f->pcalls + f->ucalls + f->gcalls) > 0);
	free(mem);
	free(disk);
	return s;
}

/* Nothing changed since state_text() gave before. */
static void assert_unchanged(struct fx *f, const char *before)
{
	char *now = state_text(f);
	assert_string_equal(now, before);
	free(now);
}

/* The audit rows (borrowed from the reply: valid until the next run). */
static json_t *audit_rows(struct fx *f)
{
	go(f, "audit", "{}", 0, CMD_OK, NULL);
	json_t *rows = json_object_get(f->body, "result");
	assert_true(json_is_array(rows));
	return rows;
}

static void hooks_reset(struct fx *f)
{
	f->pcalls = f->ucalls = f->gcalls = 0;
	f->plog[0] = f->ulog[0] = '\0';
}

/* "who/interface/action/target" of an audit row. */
static const char *row_line(json_t *r)
{
	static char b[400];
	snprintf(b, sizeof(b), "%s/%s/%s/%s", S(r, "who"), S(r, "interface"), S(r, "action"),
		 S(r, "target"));
	return b;
}

/* row_line() of every audit row from the first-th on, each ending in ';'. */
static const char *audit_lines(struct fx *f, size_t first)
{
	static char b[2000];
	size_t n = 0;
	json_t *rows = audit_rows(f);
	b[0] = '\0';
	for (size_t i = first; i < json_array_size(rows) && n < sizeof(b); i++)
		n += (size_t)snprintf(b + n, sizeof(b) - n, "%s;",
				      row_line(json_array_get(rows, i)));
	return b;
}

/* A partner in memory as one line, "(none)" when there is none. */
static const char *pline(struct fx *f, const char *domain)
{
	static char b[400];
	const struct partner *p = policy_get(f->env.live.partners, domain);
	if (!p)
		return "(none)";
	size_t n =
		(size_t)snprintf(b, sizeof(b), "%s %s/%s db=%d ka=%d limit=%u '%s'",
				 policy_partner_type_name(p->type), policy_negotiation_name(p->tls),
				 policy_negotiation_name(p->sasl), p->dialback, p->keepalive,
				 p->connection_limit, p->description);
	for (size_t i = 0; i < p->additional_domains.n && n < sizeof(b); i++)
		n += (size_t)snprintf(b + n, sizeof(b) - n, " +%s", p->additional_domains.v[i]);
	return b;
}

/* ---- the table and dispatch ---- */

static void test_table(void **state)
{
	(void)state;
	size_t n = 0;
	const struct cmd_def *t = cmd_table(&n);
	assert_true(n >= 20);
	for (size_t i = 0; i < n; i++) {
		assert_non_null(t[i].run);
		assert_true(t[i].summary && strlen(t[i].summary) > 5);
		assert_non_null(t[i].params);
		assert_ptr_equal(cmd_find(t[i].name), &t[i]); /* and names are unique */
		for (const struct cmd_param *p = t[i].params; p->name; p++) {
			assert_non_null(p->help);
			assert_true(p->flag ? strncmp(p->flag, "--", 2) == 0 : true);
			assert_false(p->type == CP_SECRET && p->flag); /* never from argv */
		}
	}
	static const char *const writes[] = {"partner new",    "partner set", "partner remove",
					     "partner import", "gateway set", "user add",
					     "user passwd",    "user remove", "user set"};
	for (size_t i = 0; i < FG_ARRAY_LEN(writes); i++)
		assert_true(cmd_find(writes[i])->writes);
	assert_false(cmd_find("partner get")->writes || cmd_find("audit")->writes);
	assert_null(cmd_find("partner"));
	assert_null(cmd_find(""));
}

/* Usage errors, and the commands that need a daemon. */
static void test_dispatch_errors(void **state)
{
	struct fx *f = *state;
	char *s = state_text(f);
	go(f, "partner frobnicate", "{}", 0, CMD_USAGE, "unknown command 'partner frobnicate'");
	run_env(f, &f->env, NULL, json_object(), 0);
	expect(f, CMD_USAGE, "unknown command ''");
	go(f, "partner new", "[]", 0, CMD_USAGE, "must be a JSON object");
	run_env(f, &f->env, "partner get", NULL, 0);
	expect(f, CMD_USAGE, "must be a JSON object");
	go(f, "audit", "{'since':'last tuesday'}", 0, CMD_USAGE, "--since takes a date");
	go(f, "audit", "{'since':'30'}", 0, CMD_USAGE, "--since takes a date");
	/* What only the daemon can do is refused with what to do. */
	go(f, "status", "{}", 0, CMD_REFUSED, "start 'fedgate serve' first");
	go(f, "test-im", "{'to':'bob@fabrikam.test'}", 0, CMD_REFUSED,
	   "start 'fedgate serve' first");
	go(f, "test-im", "{'to':'bob@fabrikam.test'}", WHAT_IF, CMD_USAGE, "does not apply");
	assert_unchanged(f, s);
	free(s);
}

/* A viewer may run every read and no write, whatever the parameters. */
static void test_read_only(void **state)
{
	struct fx *f = *state;
	go(f, "partner new", "{'domain':'fabrikam.test'}", 0, CMD_OK, "partner created");
	char *s = state_text(f);
	size_t n = 0;
	const struct cmd_def *t = cmd_table(&n);
	for (size_t i = 0; i < n; i++) {
		run_env(f, &f->env, t[i].name,
			J("{'domain':'fabrikam.test','tls':'optional','connection_limit':'5'}"),
			READ_ONLY);
		if (t[i].writes) {
			expect(f, CMD_REFUSED, "your role may only read");
			assert_non_null(strstr(S(f->body, "errors.0.message"), t[i].name));
		} else {
			assert_false(said(f, "may only read"));
		}
	}
	go(f, "partner get", "{'domain':'fabrikam.test'}", READ_ONLY, CMD_OK, NULL);
	assert_string_equal(S(f->body, "result.domain"), "fabrikam.test");
	assert_unchanged(f, s);
	free(s);
}

/* ---- argv ---- */

/* cmd_parse_argv on args split at spaces; *params NULL on failure. */
static int parse(const char *cmd, const char *args, json_t **params, char *err)
{
	char buf[400], *argv[32], *save = NULL;
	int argc = 0;
	snprintf(buf, sizeof(buf), "%s", args);
	for (char *w = strtok_r(buf, " ", &save); w && argc < 32; w = strtok_r(NULL, " ", &save))
		argv[argc++] = w;
	*params = NULL;
	return cmd_parse_argv(cmd_find(cmd), argc, argv, params, err, 400);
}

static json_t *parse_ok(const char *cmd, const char *args)
{
	json_t *params;
	char err[400] = "";
	if (parse(cmd, args, &params, err) != FG_OK)
		fail_msg("%s %s: %s", cmd, args, err);
	assert_true(json_is_object(params));
	return params;
}

static void parse_fails(const char *cmd, const char *args, const char *needle)
{
	json_t *params;
	char err[400] = "";
	assert_int_equal(parse(cmd, args, &params, err), FG_INVAL);
	assert_null(params);
	if (!strstr(err, needle))
		fail_msg("%s %s: expected '%s' in '%s'", cmd, args, needle, err);
}

/* What the CLI does: argv -> params -> cmd_exec. */
static void go_argv(struct fx *f, const char *name, const char *args, int status,
		    const char *needle)
{
	run_env(f, &f->env, name, parse_ok(name, args), 0);
	expect(f, status, needle);
}

static void test_parse_argv(void **state)
{
	struct fx *f = *state;
	json_t *p =
		parse_ok("partner new", "--domain fabrikam.test --dialback $false "
					"--keepalive=off --connection-limit 7 --tls Optional "
					"--additional-domains corp.fabrikam.test,it.fabrikam.test "
					"--description=a=b");
	assert_int_equal(json_object_size(p), 7);
	assert_string_equal(S(p, "domain"), "fabrikam.test");
	assert_string_equal(S(p, "description"), "a=b");
	run_env(f, &f->env, "partner new", p, 0); /* the parsed values run as they are */
	expect(f, CMD_OK, "partner created");
	assert_string_equal(pline(f, "fabrikam.test"), "public-unverified optional/required db=0 "
						       "ka=0 limit=7 'a=b' +corp.fabrikam.test "
						       "+it.fabrikam.test");

	/* Repeats and flags. */
	p = parse_ok("partner set", "fabrikam.test --add-domain a.test --add-domain=b.test "
				    "--remove-domain corp.fabrikam.test --clear-domains");
	assert_string_equal(S(p, "add_domain.1"), "b.test");
	assert_string_equal(S(p, "remove_domain.0"), "corp.fabrikam.test");
	assert_true(json_is_true(at(p, "clear_domains")));
	/* clear, then remove (corp.fabrikam.test is gone by then), then add */
	run_env(f, &f->env, "partner set", p, 0);
	expect(f, CMD_REFUSED, "corp.fabrikam.test is not an additional domain of fabrikam.test");
	go_argv(f, "partner set", "fabrikam.test --add-domain a.test --clear-domains", CMD_OK,
		"partner changed");
	assert_non_null(strstr(pline(f, "fabrikam.test"), "'a=b' +a.test"));

	/* Every spelling of a bool. */
	static const char *const spellings[] = {"$true", "no", "TRUE", "$false", "on",
						"off",	 "1",  "0",    "yes",	 "False"};
	for (size_t i = 0; i < FG_ARRAY_LEN(spellings); i++) {
		char args[80];
		snprintf(args, sizeof(args), "fabrikam.test --dialback %s", spellings[i]);
		go_argv(f, "partner set", args, CMD_OK, NULL);
		assert_int_equal(policy_get(f->env.live.partners, "fabrikam.test")->dialback,
				 i % 2 == 0);
	}
	go_argv(f, "partner set", "fabrikam.test --dialback maybe", CMD_REFUSED,
		"dialback: 'maybe' is not true or false");
	go_argv(f, "partner set", "fabrikam.test --connection-limit -1", CMD_REFUSED,
		"connection_limit: '-1' is not a number");
	assert_saved(f);
	/* A secret is never positional: the front-end adds it. */
	p = parse_ok("user add", "alice@contoso.test");
	assert_int_equal(json_object_size(p), 1);
	assert_string_equal(S(p, "jid"), "alice@contoso.test");
	json_decref(p);
}

static void test_parse_argv_errors(void **state)
{
	(void)state;
	parse_fails("partner new", "--domain", "partner new: --domain needs a value");
	parse_fails("partner new", "--domain x.test --bogus", "unknown option '--bogus'");
	parse_fails("partner new", "--bogus=1", "unknown option '--bogus'");
	parse_fails("partner set", "x.test --clear-domains=yes", "--clear-domains takes no value");
	parse_fails("partner new", "--domain x.test --tls optional --tls=required",
		    "--tls given twice");
	parse_fails("partner set", "x.test y.test", "unexpected argument 'y.test'");
	parse_fails("partner new", "--tls optional", "the DOMAIN is required");
	parse_fails("partner set", "--tls optional", "the DOMAIN is required");
	parse_fails("partner import", "", "the FILE is required");
	parse_fails("user get", "", "the JID is required");
	parse_fails("user add", "alice@contoso.test hunter2hunter2", "unexpected argument");
	parse_fails("gateway set", "--what-if", "unknown option '--what-if'");
	parse_fails("gateway get", "--what-if", "unknown option '--what-if' (see");
	/* A misspelt flag gets the nearest one, the front-end's too. */
	parse_fails("partner new", "x.test --domian y.test", "did you mean '--domain'?");
	parse_fails("partner set", "x.test --dialbak false", "did you mean '--dialback'?");
	parse_fails("partner get", "--jsn", "did you mean '--json'?");
	parse_fails("partner get", "--verbose", "unknown option '--verbose' (see");
	/* partner new takes the domain as an argument or as --domain; both
	 * must agree. */
	parse_fails("partner new", "a.test --domain b.test",
		    "the DOMAIN is given twice, as 'a.test' and as 'b.test'");
	parse_fails("partner new", "--domain b.test a.test",
		    "the DOMAIN is given twice, as 'b.test' and as 'a.test'");
	parse_fails("partner new", "a.test b.test", "unexpected argument 'b.test'");
	parse_fails("admin add", "--role viewer", "the NAME is required");
}

static void test_parse_argv_partner_new_domain(void **state)
{
	(void)state;
	const char *const spellings[] = {
		"fabrikam.test", "--domain fabrikam.test", "--domain=fabrikam.test",
		"fabrikam.test --domain fabrikam.test", "--tls optional fabrikam.test"};
	for (size_t i = 0; i < FG_ARRAY_LEN(spellings); i++) {
		json_t *p = parse_ok("partner new", spellings[i]);
		assert_string_equal(S(p, "domain"), "fabrikam.test");
		json_decref(p);
	}
}

/* ---- partners ---- */

static void test_partner_new_saved(void **state)
{
	struct fx *f = *state;
	go(f, "partner new",
	   "{'domain':'Fabrikam.TEST','description':'IT','tls':'optional','sasl':'Required',"
	   "'additional_domains':['corp.fabrikam.test'],'partner_type':'PublicVerified',"
	   "'connection_limit':12}",
	   0, CMD_OK, "partner created");
	/* Saved with a warning (SPEC §2: TLS optional with SASL on). */
	assert_non_null(strstr(S(f->body, "warnings.0"), "SASL needs TLS"));
	assert_int_equal(json_array_size(at(f->body, "errors")), 0);
	assert_string_equal(S(f->body, "result.domain"), "fabrikam.test");
	assert_string_equal(pline(f, "fabrikam.test"), "public-verified optional/required db=1 "
						       "ka=1 limit=12 'IT' +corp.fabrikam.test");
	assert_int_equal(policy_count(f->env.live.partners), 1);
	assert_ptr_equal(policy_lookup(f->env.live.partners, "corp.fabrikam.test"),
			 policy_get(f->env.live.partners, "fabrikam.test"));
	assert_saved(f);
	/* The hook ran once, after the commit, with no old record. */
	assert_int_equal(f->pcalls, 1);
	assert_string_equal(f->plog, "->fabrikam.test;");
	assert_int_equal(f->p_new_limit, 12);
	assert_int_equal(f->hook_bad + f->ucalls + f->gcalls, 0);
	json_t *row = at(audit_rows(f), "-1");
	assert_string_equal(row_line(row), "alice/api/partner new/fabrikam.test");
	assert_true(json_is_null(at(row, "before")));
	assert_string_equal(S(row, "after.tls"), "optional");
	assert_string_equal(S(row, "after.additional_domains.0"), "corp.fabrikam.test");
}

static void test_partner_refused(void **state)
{
	struct fx *f = *state;
	go(f, "partner new", "{'domain':'fabrikam.test','additional_domains':'corp.fabrikam.test'}",
	   0, CMD_OK, NULL);
	static const struct {
		const char *cmd, *params, *said;
	} cases[] = {
		{"partner new", "{'domain':'n.test','tls':'not-supported'}",
		 "SASL must have TLS support"},
		{"partner new", "{'domain':'n.test','sasl':'not-supported','dialback':'$false'}",
		 "SASL or Dialback must be enabled"},
		{"partner new", "{'domain':'not a domain!'}", "is not a valid domain name"},
		{"partner new", "{'domain':'FABRIKAM.test'}",
		 "a partner for fabrikam.test already exists"},
		{"partner new", "{'domain':'corp.fabrikam.test'}",
		 "already belongs to partner fabrikam.test as an additional domain"},
		{"partner new", "{'domain':'n.test','additional_domains':'corp.fabrikam.test'}",
		 "corp.fabrikam.test already belongs to partner fabrikam.test"},
		{"partner new", "{'domain':'n.test','additional_domains':['fabrikam.test']}",
		 "fabrikam.test is the primary domain of partner fabrikam.test"},
		{"partner new", "{'domain':'Contoso.test'}", "is a local domain of this gateway"},
		{"partner new", "{'domain':'n.test','tls':'sometimes'}",
		 "tls: 'sometimes' is not a valid value"},
		{"partner set", "{'domain':'fabrikam.test','tls':'not-supported'}",
		 "SASL must have TLS support"},
		{"partner set", "{'domain':'fabrikam.test','remove_domain':['x.test']}",
		 "x.test is not an additional domain of fabrikam.test"},
		{"partner set", "{'domain':'fabrikam.test','add_domain':['contoso.test']}",
		 "contoso.test is a local domain"},
		/* Through the API or the control socket these may come as
		 * anything; only a list of names is a change. */
		{"partner set", "{'domain':'fabrikam.test','add_domain':'x.test'}",
		 "add_domain: give a list of domain names"},
		{"partner set", "{'domain':'fabrikam.test','remove_domain':'corp.fabrikam.test'}",
		 "remove_domain: give a list of domain names"},
		{"partner set", "{'domain':'fabrikam.test','add_domain':[7]}",
		 "add_domain: give a list of domain names"},
	};
	hooks_reset(f);
	char *s = state_text(f);
	for (size_t i = 0; i < FG_ARRAY_LEN(cases); i++) {
		go(f, cases[i].cmd, cases[i].params, 0, CMD_REFUSED, cases[i].said);
		assert_unchanged(f, s);
	}
	/* A refusal says nothing was saved, and shows what was refused. */
	go(f, "partner new", "{'domain':'n.test','tls':'not-supported'}", 0, CMD_REFUSED,
	   "refused: nothing was saved");
	assert_string_equal(S(f->body, "result.domain"), "n.test");
	assert_unchanged(f, s);
	free(s);
}

static void test_what_if(void **state)
{
	struct fx *f = *state;
	go(f, "partner new", "{'domain':'fabrikam.test'}", 0, CMD_OK, NULL);
	go(f, "user add", "{'jid':'bob@contoso.test','password':'" PASSWORD "'}", 0, CMD_OK, NULL);
	static const char *const cases[][2] = {
		{"partner new", "{'domain':'northwind.test'}"},
		{"partner set", "{'domain':'fabrikam.test','tls':'optional'}"},
		{"partner remove", "{'domain':'fabrikam.test'}"},
		{"partner import", "{'partners':[{'domain':'a.test'}]}"},
		{"gateway set", "{'connection_limit':'50'}"},
		{"gateway set", "{'regenerate_dialback_secret':true}"},
		{"user add", "{'jid':'carol@contoso.test','password':'" PASSWORD "'}"},
		{"user passwd", "{'jid':'bob@contoso.test','password':'" PASSWORD2 "'}"},
		{"user set", "{'jid':'bob@contoso.test','xmpp_access':'false'}"},
		{"user remove", "{'jid':'bob@contoso.test'}"},
	};
	char *s = state_text(f);
	for (size_t i = 0; i < FG_ARRAY_LEN(cases); i++) {
		go(f, cases[i][0], cases[i][1], WHAT_IF, CMD_OK, "nothing was saved");
		assert_true(json_is_true(at(f->body, "what_if")));
		assert_unchanged(f, s);
	}
	/* What-if still validates. */
	go(f, "partner new", "{'domain':'fabrikam.test'}", WHAT_IF, CMD_REFUSED, "already exists");
	assert_unchanged(f, s);
	free(s);
}

static void test_partner_set_get_remove(void **state)
{
	struct fx *f = *state;
	go(f, "partner new",
	   "{'domain':'fabrikam.test','additional_domains':'corp.fabrikam.test',"
	   "'connection_limit':5}",
	   0, CMD_OK, NULL);
	go(f, "partner new", "{'domain':'northwind.org'}", 0, CMD_OK, NULL);
	hooks_reset(f);
	long long audits = audit_count(f);
	go(f, "partner set",
	   "{'domain':'FABRIKAM.test','connection_limit':'9','add_domain':['it.fabrikam.test'],"
	   "'remove_domain':['corp.fabrikam.test']}",
	   0, CMD_OK, "partner changed");
	/* Fields not named keep their values. */
	assert_string_equal(pline(f, "fabrikam.test"), "public-unverified required/required db=1 "
						       "ka=1 limit=9 '' +it.fabrikam.test");
	assert_null(policy_lookup(f->env.live.partners, "corp.fabrikam.test"));
	assert_saved(f);
	assert_string_equal(f->plog, "fabrikam.test>fabrikam.test;");
	assert_int_equal(f->p_old_limit, 5);
	assert_int_equal(f->p_new_limit, 9);
	json_t *row = at(audit_rows(f), "-1");
	assert_string_equal(row_line(row), "alice/api/partner set/fabrikam.test");
	assert_int_equal(I(row, "before.connection_limit"), 5);
	assert_int_equal(I(row, "after.connection_limit"), 9);
	/* The same values again: no change, no audit row, no hook. */
	go(f, "partner set", "{'domain':'fabrikam.test','connection_limit':9}", 0, CMD_OK,
	   "no change");
	assert_int_equal(audit_count(f), audits + 1);
	assert_int_equal(f->pcalls, 1);

	/* get: by primary or additional domain, all, or by glob. */
	go(f, "partner get", "{'domain':'IT.fabrikam.test'}", 0, CMD_OK, NULL);
	assert_string_equal(S(f->body, "result.domain"), "fabrikam.test");
	assert_string_equal(S(f->body, "result.allowed_methods.0"), "SASL over TLS");
	go(f, "partner get", "{}", 0, CMD_OK, NULL);
	assert_int_equal(json_array_size(at(f->body, "result")), 2);
	/* Not found: 3, and nothing changes. */
	char *s = state_text(f);
	go(f, "partner get", "{'domain':'nowhere.test'}", 0, CMD_NOT_FOUND,
	   "no partner has the domain 'nowhere.test'");
	go(f, "partner set", "{'domain':'nowhere.test','tls':'optional'}", 0, CMD_NOT_FOUND,
	   "no partner has the primary domain 'nowhere.test'");
	go(f, "partner set", "{'domain':'it.fabrikam.test'}", 0, CMD_NOT_FOUND, "primary domain");
	assert_unchanged(f, s);
	free(s);

	/* remove: gone from memory and store, its domains with it. */
	f->who = "bob";
	f->iface = "cli";
	go(f, "partner remove", "{'domain':'Fabrikam.Test'}", 0, CMD_OK, "partner removed");
	assert_string_equal(pline(f, "fabrikam.test"), "(none)");
	assert_null(policy_lookup(f->env.live.partners, "it.fabrikam.test"));
	assert_int_equal(policy_count(f->env.live.partners), 1);
	assert_saved(f);
	assert_int_equal(raw_int(f->td->path, "SELECT count(*) FROM partner_domains"), 0);
	assert_string_equal(f->plog, "fabrikam.test>fabrikam.test;fabrikam.test>-;");
	assert_int_equal(f->p_old_limit, 9);
	assert_int_equal(f->hook_bad, 0);
	row = at(audit_rows(f), "-1");
	assert_string_equal(row_line(row), "bob/cli/partner remove/fabrikam.test");
	assert_string_equal(S(row, "before.domain"), "fabrikam.test");
	assert_true(json_is_null(at(row, "after")));
	go(f, "partner remove", "{'domain':'fabrikam.test'}", 0, CMD_NOT_FOUND, NULL);
}

static void test_partner_export_import(void **state)
{
	struct fx *f = *state;
	go(f, "partner new", "{'domain':'a.test','partner_type':'federated'}", 0, CMD_OK, NULL);
	go(f, "partner new", "{'domain':'b.test','additional_domains':'b2.test'}", 0, CMD_OK, NULL);
	hooks_reset(f);
	go(f, "partner export", "{}", 0, CMD_OK, NULL);
	json_t *doc = json_incref(at(f->body, "result"));
	assert_string_equal(S(doc, "format"), "fedgate-partners");
	assert_int_equal(I(doc, "version"), 1);
	json_t *list = at(doc, "partners");
	assert_int_equal(json_array_size(list), 2);
	assert_string_equal(S(list, "0.partner_type"), "federated");
	assert_string_equal(S(list, "1.additional_domains.0"), "b2.test");

	/* The first bad record refuses the whole file, named by position. */
	static const char *const bad[][2] = {
		{"{'partners':[{'domain':'c.test'},{'domain':'d.test','tls':'not-supported'}]}",
		 "record 2 (d.test): SASL must have TLS support"},
		{"{'partners':{'partners':[{'domain':'c.test'},{'domain':'C.TEST'}]}}",
		 "record 2 (C.TEST): domain: a partner for c.test already exists"},
		{"{'partners':[{'domain':'c.test','additional_domains':'x.test'},"
		 "{'domain':'x.test'}]}",
		 "record 2 (x.test): domain: x.test already belongs to partner c.test"},
		{"{'partners':[{'domain':'c.test'},{'domain':'d.test','tls':1}]}",
		 "record 2 (d.test): tls: '1' is not a valid value"},
		{"{'partners':'a.test'}", "the file holds no list of partners"},
	};
	char *s = state_text(f);
	for (size_t i = 0; i < FG_ARRAY_LEN(bad); i++) {
		go(f, "partner import", bad[i][0], 0, CMD_REFUSED, bad[i][1]);
		assert_unchanged(f, s);
	}
	go(f, "partner import", bad[0][0], 0, CMD_REFUSED, "import refused: nothing was saved");
	free(s);

	/* The export imported as it is: nothing changes, nothing is audited. */
	long long audits = audit_count(f);
	s = state_text(f);
	run_env(f, &f->env, "partner import", json_pack("{s:O}", "partners", doc), 0);
	expect(f, CMD_OK, "imported 2 partners");
	assert_unchanged(f, s);
	free(s);

	/* a.test dropped, b.test changed, c.test new: all in one go. */
	json_array_remove(list, 0);
	json_object_set_new(json_array_get(list, 0), "description", json_string("changed"));
	json_array_append_new(list, J("{'domain':'c.test','connection_limit':3}"));
	f->iface = "import";
	run_env(f, &f->env, "partner import", json_pack("{s:O}", "partners", doc), 0);
	json_decref(doc);
	expect(f, CMD_OK, "imported 2 partners");
	assert_int_equal(I(f->body, "result"), 2);
	assert_string_equal(pline(f, "a.test"), "(none)");
	assert_non_null(strstr(pline(f, "b.test"), "'changed' +b2.test"));
	assert_non_null(strstr(pline(f, "c.test"), "limit=3"));
	assert_saved(f);
	assert_string_equal(f->plog, "a.test>-;b.test>b.test;->c.test;");
	assert_int_equal(f->hook_bad, 0);
	assert_string_equal(audit_lines(f, (size_t)audits),
			    "alice/import/partner import/a.test;alice/import/partner import/b.test;"
			    "alice/import/partner import/c.test;");
}

/* ---- gateway, audit, the secret ---- */

static void test_gateway(void **state)
{
	struct fx *f = *state;
	go(f, "gateway get", "{}", 0, CMD_OK, NULL);
	assert_int_equal(I(f->body, "result.connection_limit"), 1000);
	assert_string_equal(S(f->body, "result.dialback_secret"), "(set)");
	go(f, "gateway set",
	   "{'connection_limit':'500','log_message_bodies':'yes','keepalive_interval':120}", 0,
	   CMD_OK, "gateway settings changed");
	assert_int_equal(f->env.live.gw.connection_limit, 500);
	assert_int_equal(f->env.live.gw.keepalive_interval, 120);
	assert_true(f->env.live.gw.log_message_bodies);
	assert_string_equal(f->env.live.gw.dialback_secret, f->secret);
	assert_saved(f);
	assert_int_equal(f->gcalls, 1);
	assert_int_equal(f->g_live, 500);
	assert_int_equal(f->g_stored, 500);
	json_t *row = at(audit_rows(f), "-1");
	assert_string_equal(row_line(row), "alice/api/gateway set/gateway");
	assert_int_equal(I(row, "before.connection_limit"), 1000);
	assert_int_equal(I(row, "after.connection_limit"), 500);

	static const char *const bad[][2] = {
		{"{'connection_limit':'0'}", "connection_limit: 0 is out of range"},
		{"{'keepalive_interval':'5'}", "keepalive_interval: 5 is out of range"},
		{"{'stream_inactivity_timeout':'86401'}", "stream_inactivity_timeout: 86401"},
		{"{'partner_connection_limit':'600'}",
		 "partner_connection_limit: 600 is above connection_limit (500)"},
		{"{'connection_limit':'-3'}", "connection_limit: '-3' is not a whole number"},
		{"{'colour':'blue'}", "colour: unknown setting"},
	};
	char *s = state_text(f);
	for (size_t i = 0; i < FG_ARRAY_LEN(bad); i++) {
		go(f, "gateway set", bad[i][0], 0, CMD_REFUSED, bad[i][1]);
		assert_unchanged(f, s);
	}
	free(s);
	/* The secret cannot be set through the command, only regenerated. */
	run_env(f, &f->env, "gateway set", J("{'dialback_secret':'0123456789abcdef0123456789'}"),
		0);
	assert_string_equal(f->env.live.gw.dialback_secret, f->secret);
	int g = f->gcalls;
	go(f, "gateway set", "{'regenerate_dialback_secret':true}", 0, CMD_OK, NULL);
	assert_string_equal(S(f->body, "result.dialback_secret"), "(set)");
	assert_int_equal(strlen(f->env.live.gw.dialback_secret), 64);
	assert_string_not_equal(f->env.live.gw.dialback_secret, f->secret);
	assert_int_equal(f->gcalls, g + 1);
	assert_int_equal(f->env.live.gw.connection_limit, 500);
	assert_saved(f);
	row = at(audit_rows(f), "-1");
	assert_string_equal(S(row, "before.dialback_secret"), "(set)");
	assert_string_equal(S(row, "after.dialback_secret"), "(regenerated)");
}

static void test_audit_and_secrets(void **state)
{
	struct fx *f = *state;
	/* The first start made the secret and audited that, without it. */
	json_t *rows = audit_rows(f);
	assert_int_equal(json_array_size(rows), 1);
	assert_string_equal(row_line(json_array_get(rows, 0)),
			    "fedgate/startup/gateway set/gateway");
	assert_string_equal(S(rows, "0.after.dialback_secret"), "(set)");
	assert_int_equal(strlen(f->secret), 64);
	/* A second load keeps it and writes nothing. */
	char *disk = store_text(f);
	assert_non_null(strstr(disk, f->secret));
	free(disk);
	assert_int_equal(audit_count(f), 1);

	f->who = NULL;
	f->iface = NULL;
	go(f, "partner new", "{'domain':'fabrikam.test'}", 0, CMD_OK, NULL);
	go(f, "partner set", "{'domain':'fabrikam.test','keepalive':false}", 0, CMD_OK, NULL);
	go(f, "gateway set", "{'regenerate_dialback_secret':'true'}", 0, CMD_OK, NULL);
	go(f, "gateway set", "{'connection_limit':900}", 0, CMD_OK, NULL);
	go(f, "user add", "{'jid':'dave@contoso.test','password':'" PASSWORD "'}", 0, CMD_OK, NULL);
	go(f, "partner remove", "{'domain':'fabrikam.test'}", 0, CMD_OK, NULL);
	assert_string_equal(audit_lines(f, 0), "fedgate/startup/gateway set/gateway;"
					       "unknown/cli/partner new/fabrikam.test;"
					       "unknown/cli/partner set/fabrikam.test;"
					       "unknown/cli/gateway set/gateway;"
					       "unknown/cli/gateway set/gateway;"
					       "unknown/cli/user add/dave@contoso.test;"
					       "unknown/cli/partner remove/fabrikam.test;");
	rows = audit_rows(f);
	assert_true(I(rows, "-1.id") > I(rows, "0.id"));
	assert_int_equal(strlen(S(rows, "-1.at")), 24); /* 2026-11-21T10:00:00.000Z */
	/* Neither secret nor password in the log itself (on_reply checked
	 * every reply, the audit command's included). */
	const char *secrets[] = {f->secret, f->env.live.gw.dialback_secret, PASSWORD};
	for (size_t i = 0; i < 3; i++)
		assert_int_equal(stored_int(f,
					    "SELECT count(*) FROM audit WHERE (who || iface || "
					    "action || target || coalesce(before, '') || "
					    "coalesce(after, '')) LIKE '%%%s%%'",
					    secrets[i]),
				 0);
	go(f, "audit", "{'since':'1h'}", 0, CMD_OK, NULL);
	assert_int_equal(json_array_size(at(f->body, "result")), 7);
	go(f, "audit", "{'since':'2999-01-01'}", 0, CMD_OK, NULL);
	assert_int_equal(json_array_size(at(f->body, "result")), 0);
}

/* Memory never runs ahead of the disk: a change the store refuses (here
 * because another process saved a conflicting one) leaves memory alone. */
static void test_store_refusal(void **state)
{
	struct fx *f = *state;
	struct cmd_env e2; /* a second CLI, loaded before the first one's change */
	struct store_db *db2;
	load_fresh(f, &e2, &db2);
	go(f, "partner new", "{'domain':'fabrikam.test','additional_domains':'corp.fabrikam.test'}",
	   0, CMD_OK, NULL);
	char *s = state_text(f);
	run_env(f, &e2, "partner new",
		J("{'domain':'northwind.test','additional_domains':'corp.fabrikam.test'}"), 0);
	expect(f, CMD_REFUSED, "the store refused the change, nothing was saved");
	/* The refusal says only that: no "partner created" beside it, and no
	 * record that was never saved. */
	assert_false(said(f, "partner created"));
	assert_int_equal(policy_count(e2.live.partners), 0);
	assert_unchanged(f, s);
	/* A partner made since e2 loaded is not overwritten by e2's "new". */
	run_env(f, &e2, "partner new", J("{'domain':'fabrikam.test','tls':'optional'}"), 0);
	expect(f, CMD_REFUSED, "fabrikam.test already exists");
	assert_false(said(f, "partner created"));
	assert_unchanged(f, s);
	free(s);
	/* Without hooks (the CLI) a change goes through all the same. */
	run_env(f, &e2, "partner new", J("{'domain':'northwind.test'}"), 0);
	expect(f, CMD_OK, "partner created");
	assert_non_null(policy_get(e2.live.partners, "northwind.test"));
	assert_int_equal(f->pcalls, 1);
	cmd_env_clear(&e2);
	store_db_close(&db2);
	assert_int_equal(raw_int(f->td->path, "SELECT count(*) FROM partners"), 2);
}

/* ---- users ---- */

static void test_users(void **state)
{
	struct fx *f = *state;
	go(f, "user add", "{'jid':'Alice@Contoso.TEST','password':'" PASSWORD "'}", 0, CMD_OK,
	   "user created");
	assert_string_equal(S(f->body, "result.jid"), "alice@contoso.test");
	assert_true(json_is_true(at(f->body, "result.xmpp_access")));
	assert_null(at(f->body, "result.credentials"));
	const struct account *a = accounts_get(f->env.live.users, "alice@contoso.test");
	assert_non_null(a);
	assert_int_equal(a->creds.iterations, 4096); /* [users] scram_iterations */
	assert_true(sasl_check_password(&a->creds, PASSWORD));
	assert_saved(f); /* the store's keys are memory's (env_text) */
	assert_string_equal(f->ulog, "->alice@contoso.test;");
	assert_int_equal(f->u_new_access, 1);
	json_t *row = at(audit_rows(f), "-1");
	assert_string_equal(row_line(row), "alice/api/user add/alice@contoso.test");
	assert_true(json_is_null(at(row, "before")));
	assert_string_equal(S(row, "after.credentials"), "(set)");

	go(f, "user passwd", "{'jid':'alice@contoso.test','password':'" PASSWORD2 "'}", 0, CMD_OK,
	   "password changed");
	a = accounts_get(f->env.live.users, "alice@contoso.test");
	assert_true(sasl_check_password(&a->creds, PASSWORD2));
	assert_false(sasl_check_password(&a->creds, PASSWORD));
	assert_saved(f);
	assert_true(f->u_creds_changed);
	assert_string_equal(S(at(audit_rows(f), "-1"), "after.credentials"), "(changed)");

	go(f, "user set", "{'jid':'alice@contoso.test','xmpp_access':'$false'}", 0, CMD_OK,
	   "user changed");
	assert_false(accounts_get(f->env.live.users, "alice@contoso.test")->xmpp_access);
	assert_saved(f);
	assert_int_equal(f->u_old_access, 1);
	assert_int_equal(f->u_new_access, 0);
	assert_false(f->u_creds_changed);
	long long audits = audit_count(f);
	go(f, "user set", "{'jid':'alice@contoso.test','xmpp_access':false}", 0, CMD_OK,
	   "no change");
	assert_int_equal(audit_count(f), audits);

	go(f, "user add", "{'jid':'bob@contoso.test','password':'" PASSWORD "'}", 0, CMD_OK, NULL);
	go(f, "user list", "{'filter':'b*'}", 0, CMD_OK, NULL);
	assert_string_equal(S(f->body, "result.0.jid"), "bob@contoso.test");
	assert_null(at(f->body, "result.1"));
	go(f, "user remove", "{'jid':'alice@contoso.test'}", 0, CMD_OK, "user removed");
	assert_null(accounts_get(f->env.live.users, "alice@contoso.test"));
	assert_int_equal(accounts_count(f->env.live.users), 1);
	assert_saved(f);
	assert_string_equal(f->ulog, "->alice@contoso.test;alice@contoso.test>alice@contoso.test;"
				     "alice@contoso.test>alice@contoso.test;->bob@contoso.test;"
				     "alice@contoso.test>-;");
	assert_int_equal(f->hook_bad + f->pcalls + f->gcalls, 0);
	row = at(audit_rows(f), "-1");
	assert_string_equal(row_line(row), "alice/api/user remove/alice@contoso.test");
	assert_string_equal(S(row, "before.credentials"), "(set)");
	assert_true(json_is_null(at(row, "after")));

	/* Refusals: bob@contoso.test exists, carol@contoso.test does not. */
	static const struct {
		const char *cmd, *params, *said;
		int status;
	} cases[] = {
		{"user add", "{'jid':'bob@contoso.test','password':'" PASSWORD2 "'}",
		 "user bob@contoso.test already exists", CMD_REFUSED},
		{"user add", "{'jid':'carol@fabrikam.test','password':'" PASSWORD "'}",
		 "fabrikam.test is not a local domain", CMD_REFUSED},
		{"user add", "{'jid':'contoso.test','password':'" PASSWORD "'}", "has no user part",
		 CMD_REFUSED},
		{"user add", "{'jid':'carol@contoso.test/phone','password':'" PASSWORD "'}",
		 "has a resource", CMD_REFUSED},
		{"user add", "{'password':'" PASSWORD "'}", "jid: missing", CMD_REFUSED},
		{"user add", "{'jid':'carol@contoso.test','password':'short'}",
		 "password: too short", CMD_REFUSED},
		{"user add", "{'jid':'carol@contoso.test','password':'abcdefgh\\n'}",
		 "control character", CMD_REFUSED},
		{"user passwd", "{'jid':'carol@contoso.test','password':'" PASSWORD "'}",
		 "there is no user carol@contoso.test", CMD_NOT_FOUND},
		{"user set", "{'jid':'bob@contoso.test','xmpp_access':'maybe'}",
		 "xmpp_access: 'maybe' is not true or false", CMD_REFUSED},
		{"user remove", "{'jid':'carol@contoso.test'}", "there is no user", CMD_NOT_FOUND},
	};
	char *s = state_text(f);
	for (size_t i = 0; i < FG_ARRAY_LEN(cases); i++) {
		go(f, cases[i].cmd, cases[i].params, 0, cases[i].status, cases[i].said);
		assert_unchanged(f, s);
	}
	free(s);
}

/* The targets of the last audit reply's rows, space-separated. */
static const char *audit_targets(struct fx *f)
{
	static char b[2000];
	size_t n = 0;
	json_t *rows = json_object_get(f->body, "result");
	b[0] = '\0';
	for (size_t i = 0; i < json_array_size(rows) && n < sizeof(b); i++)
		n += (size_t)snprintf(b + n, sizeof(b) - n, "%s%s", i ? " " : "",
				      S(json_array_get(rows, i), "target"));
	return b;
}

/* audit --filter, --limit, --offset: the filter first, then pages counted
 * from the newest; the rows of a page stay in the order they happened and
 * "total" counts every match, so a pager can say "page N of M". */
static void test_audit_paging(void **state)
{
	struct fx *f = *state;
	char params[200];
	go(f, "audit", "{}", 0, CMD_OK, NULL);
	json_int_t before = json_integer_value(at(f->body, "total")); /* the fixture's */
	for (int i = 0; i < 7; i++) {
		snprintf(params, sizeof(params), "{'domain':'p%d.%s.test'}", i,
			 i % 2 ? "odd" : "even");
		go(f, "partner new", params, 0, CMD_OK, NULL);
	}
	go(f, "audit", "{}", 0, CMD_OK, NULL);
	assert_int_equal(json_integer_value(at(f->body, "total")), before + 7);
	assert_int_equal(json_array_size(at(f->body, "result")), before + 7);
	assert_null(json_object_get(f->body, "message"));
	/* Page 1: the newest, oldest of them first. */
	go(f, "audit", "{'limit':3}", 0, CMD_OK, "3 of ");
	assert_string_equal(audit_targets(f), "p4.even.test p5.odd.test p6.even.test");
	go(f, "audit", "{'limit':'3','offset':'3'}", 0, CMD_OK, NULL);
	assert_string_equal(audit_targets(f), "p1.odd.test p2.even.test p3.odd.test");
	go(f, "audit", "{'limit':1,'offset':6}", 0, CMD_OK, NULL);
	assert_string_equal(audit_targets(f), "p0.even.test");
	snprintf(params, sizeof(params), "{'limit':3,'offset':%d}", (int)before + 7);
	go(f, "audit", params, 0, CMD_OK, NULL);
	assert_string_equal(audit_targets(f), "");
	assert_int_equal(json_integer_value(at(f->body, "total")), before + 7);
	/* The filter before the page: the second page of "ODD" (any case,
	 * any field) is its oldest match, not a page of everything. */
	go(f, "audit", "{'filter':'ODD','limit':2}", 0, CMD_OK, NULL);
	assert_string_equal(audit_targets(f), "p3.odd.test p5.odd.test");
	assert_int_equal(json_integer_value(at(f->body, "total")), 3);
	go(f, "audit", "{'filter':'odd','limit':2,'offset':2}", 0, CMD_OK, NULL);
	assert_string_equal(audit_targets(f), "p1.odd.test");
	/* Values inside the record count: every partner's TLS is required. */
	go(f, "audit", "{'filter':'REQUIRED'}", 0, CMD_OK, NULL);
	assert_true(json_integer_value(at(f->body, "total")) >= 7);
	go(f, "audit", "{'filter':'nothing-like-this'}", 0, CMD_OK, NULL);
	assert_string_equal(audit_targets(f), "");
	/* Counts that are not counts are refused with the way to write one. */
	go(f, "audit", "{'limit':'fifty'}", 0, CMD_USAGE, "--limit takes a number");
	go(f, "audit", "{'limit':-1}", 0, CMD_USAGE, "--limit takes a number");
	go(f, "audit", "{'offset':'1.5'}", 0, CMD_USAGE, "--offset takes how many");
}

int main(void)
{
#define T(name) cmocka_unit_test_setup_teardown(name, fx_setup, fx_teardown)
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_table),
		T(test_dispatch_errors),
		T(test_read_only),
		T(test_parse_argv),
		cmocka_unit_test(test_parse_argv_errors),
		cmocka_unit_test(test_parse_argv_partner_new_domain),
		T(test_partner_new_saved),
		T(test_partner_refused),
		T(test_what_if),
		T(test_partner_set_get_remove),
		T(test_partner_export_import),
		T(test_gateway),
		T(test_audit_and_secrets),
		T(test_audit_paging),
		T(test_store_refusal),
		T(test_users),
	};
#undef T
	log_set_level(LOG_ERROR);
	return cmocka_run_group_tests(tests, NULL, NULL);
}

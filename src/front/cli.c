#include "cli.h"

#include "admin.h"
#include "cmd.h"
#include "conf.h"
#include "control.h"
#include "fg.h"
#include "jsonin.h"
#include "log.h"
#include "policy_json.h"
#include "store_sqlite.h"
#include "suggest.h"

#include <errno.h>
#include <pwd.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>

struct outcome {
	int status;
	json_t *body;
};

static void keep_reply(void *ud, int status, json_t *body)
{
	struct outcome *o = ud;
	o->status = status;
	o->body = body;
}

static void who_am_i(char *buf, size_t len)
{
	struct passwd pw, *res = NULL;
	char tmp[1024];
	if (getpwuid_r(geteuid(), &pw, tmp, sizeof(tmp), &res) == 0 && res)
		snprintf(buf, len, "%s", pw.pw_name);
	else
		snprintf(buf, len, "uid %u", (unsigned)geteuid());
}

/* No daemon: the same command runs here, on the store itself. */
static int run_local(const struct fg_conf *conf, const char *name, json_t *params, bool what_if,
		     struct outcome *out)
{
	char err[600];
	struct store_db *db = NULL;
	struct store_target tg = store_target_of(conf);
	if (store_open(&tg, &db, err, sizeof(err)) != FG_OK) {
		fprintf(stderr, "fedgate: %s\n", err);
		return FG_ERR;
	}
	struct cmd_env env = {.live = {.conf = conf}, .run = cmd_run_sync, .db = db};
	if (cmd_env_load(&env, db, err, sizeof(err)) != FG_OK) {
		fprintf(stderr, "fedgate: %s\n", err);
		cmd_env_clear(&env);
		store_db_close(&db);
		return FG_ERR;
	}
	char who[64];
	who_am_i(who, sizeof(who));
	struct cmd_request req = {
		.name = name, .params = params, .what_if = what_if, .who = who, .iface = "cli"};
	cmd_exec(&env, &req, keep_reply, out);
	cmd_env_clear(&env);
	store_db_close(&db);
	return FG_OK;
}

/* ---- passwords ---- */

/* The terminal as it was before echo was turned off, for the signal
 * handler: a Ctrl-C at the prompt must not leave the shell without echo. */
static struct termios saved_tty;

static void restore_tty(int sig)
{
	tcsetattr(STDIN_FILENO, TCSAFLUSH, &saved_tty);
	signal(sig, SIG_DFL);
	raise(sig);
}

static void wipe_free(char **s)
{
	if (*s) {
		explicit_bzero(*s, strlen(*s));
		free(*s);
		*s = NULL;
	}
}

/* One line of standard input without its line end ("\n", "\r\n"), or
 * "" at end of input; NULL when out of memory. */
static char *read_line(void)
{
	char *line = NULL;
	size_t cap = 0;
	ssize_t n = getline(&line, &cap, stdin);
	if (n < 0) {
		free(line);
		return strdup("");
	}
	if (n > 0 && line[n - 1] == '\n')
		line[--n] = '\0';
	if (n > 0 && line[n - 1] == '\r')
		line[--n] = '\0';
	return line;
}

static char *ask_hidden(const char *prompt, const char *jid)
{
	struct termios quiet;
	struct sigaction sa = {.sa_handler = restore_tty}, old_int, old_term;
	char *line;
	bool hidden = tcgetattr(STDIN_FILENO, &saved_tty) == 0;

	/* Echo goes off before the prompt shows: TCSAFLUSH drops what was
	 * typed before, and nothing typed after the prompt may be echoed. */
	if (hidden) {
		sigemptyset(&sa.sa_mask);
		sigaction(SIGINT, &sa, &old_int);
		sigaction(SIGTERM, &sa, &old_term);
		quiet = saved_tty;
		quiet.c_lflag &= ~(tcflag_t)ECHO;
		quiet.c_lflag |= ECHONL;
		tcsetattr(STDIN_FILENO, TCSAFLUSH, &quiet);
	}
	fprintf(stderr, prompt, jid);
	fflush(stderr);
	line = read_line();
	if (hidden) {
		tcsetattr(STDIN_FILENO, TCSAFLUSH, &saved_tty);
		sigaction(SIGINT, &old_int, NULL);
		sigaction(SIGTERM, &old_term, NULL);
	}
	return line;
}

/* params["password"] for `user add|passwd` and `admin add|passwd`: asked
 * twice without echo on a terminal (which is restored even if a signal
 * ends the prompt), else the first line of standard input, so scripts can
 * pipe it (never an argument: those show in ps). The command judges it.
 * who_key names the account's parameter ("jid", "name"). */
static int read_password(json_t *params, const char *who_key)
{
	const char *who = json_string_value(json_object_get(params, who_key));
	char *a = NULL, *b = NULL;
	int rc = CMD_OK;

	if (isatty(STDIN_FILENO)) {
		a = ask_hidden("Password for %s: ", who ? who : "the account");
		b = a ? ask_hidden("Retype the password for %s: ", who ? who : "the account")
		      : NULL;
		if (a && b && strcmp(a, b) != 0) {
			fprintf(stderr, "fedgate: the two passwords differ; nothing was saved\n");
			rc = CMD_REFUSED;
		}
	} else {
		a = read_line();
	}
	if (rc == CMD_OK && !a) {
		fprintf(stderr, "fedgate: out of memory\n");
		rc = CMD_REFUSED;
	}
	if (rc == CMD_OK) {
		json_t *v = json_string(a);
		if (!v) {
			fprintf(stderr, "fedgate: the password is not valid UTF-8; nothing was "
					"saved\n");
			rc = CMD_REFUSED;
		} else {
			json_object_set_new(params, "password", v);
		}
	}
	wipe_free(&a);
	wipe_free(&b);
	return rc;
}

/* jansson frees without clearing; the copy in params is cleared here. */
static void wipe_password(json_t *params)
{
	json_t *v = json_object_get(params, "password");
	if (json_is_string(v))
		explicit_bzero((char *)json_string_value(v), json_string_length(v));
}

/* ---- rendering ---- */

/* Valid until the next call: fields are printed one at a time. */
static const char *str_of(json_t *o, const char *key)
{
	static char num[32];
	const char *s = policy_json_text(json_object_get(o, key), num, sizeof(num));
	return s ? s : "";
}

static void join_array(json_t *arr, const char *sep, char *buf, size_t len)
{
	size_t i;
	json_t *v;
	buf[0] = '\0';
	json_array_foreach(arr, i, v)
	{
		size_t n = strlen(buf);
		snprintf(buf + n, len - n, "%s%s", i ? sep : "", json_string_value(v));
	}
}

static void print_partner(FILE *f, json_t *p)
{
	char doms[2048], methods[256];
	join_array(json_object_get(p, "additional_domains"), ", ", doms, sizeof(doms));
	join_array(json_object_get(p, "allowed_methods"), ", ", methods, sizeof(methods));
	fprintf(f, "domain:             %s\n", str_of(p, "domain"));
	fprintf(f, "description:        %s\n", str_of(p, "description"));
	fprintf(f, "additional domains: %s\n", doms[0] ? doms : "-");
	fprintf(f, "partner type:       %s\n", str_of(p, "partner_type"));
	fprintf(f, "tls:                %s\n", str_of(p, "tls"));
	fprintf(f, "sasl:               %s\n", str_of(p, "sasl"));
	fprintf(f, "dialback:           %s\n", str_of(p, "dialback"));
	fprintf(f, "keepalive:          %s\n", str_of(p, "keepalive"));
	fprintf(f, "connection limit:   %lld%s\n",
		(long long)json_integer_value(json_object_get(p, "connection_limit")),
		json_is_true(json_object_get(p, "connection_limit_default")) ? " (gateway default)"
									     : "");
	const char *proxy = str_of(p, "proxy_fqdn");
	fprintf(f, "proxy fqdn:         %s\n", proxy[0] ? proxy : "- (DNS SRV)");
	fprintf(f, "allowed methods:    %s\n", methods[0] ? methods : "none");
	fprintf(f, "bidi:               %s\n", str_of(p, "bidi"));
	fprintf(f, "dane:               %s\n", str_of(p, "dane"));
	char pins[1024];
	join_array(json_object_get(p, "pins"), ", ", pins, sizeof(pins));
	fprintf(f, "pins:               %s\n", pins[0] ? pins : "- (any key the CAs accept)");
	if (json_is_false(json_object_get(p, "enabled")))
		fprintf(f, "enabled:            false (suspended: no federation either way)\n");
}

static void print_partner_table(FILE *f, json_t *list, const char *filter)
{
	if (json_array_size(list) == 0 && filter) {
		fprintf(f, "no partner has a domain matching '%s'\n", filter);
		return;
	}
	if (json_array_size(list) == 0) {
		fprintf(f, "no partners: federation is off (add one with 'fedgate partner new')\n");
		return;
	}
	fprintf(f, "%-28s %-17s %-13s %-13s %-8s %-9s %5s  %s\n", "DOMAIN", "TYPE", "TLS", "SASL",
		"DIALBACK", "KEEPALIVE", "LIMIT", "METHODS");
	size_t i;
	json_t *p;
	json_array_foreach(list, i, p)
	{
		char methods[256], doms[2048];
		join_array(json_object_get(p, "allowed_methods"), ", ", methods, sizeof(methods));
		join_array(json_object_get(p, "additional_domains"), ", ", doms, sizeof(doms));
		fprintf(f, "%-28s %-17s %-13s %-13s %-8s %-9s %5lld  %s\n", str_of(p, "domain"),
			str_of(p, "partner_type"), str_of(p, "tls"), str_of(p, "sasl"),
			str_of(p, "dialback"), str_of(p, "keepalive"),
			(long long)json_integer_value(json_object_get(p, "connection_limit")),
			methods[0] ? methods : "none");
		if (doms[0])
			fprintf(f, "  + %s\n", doms);
		if (json_is_false(json_object_get(p, "enabled")))
			fprintf(f, "  suspended ('--enabled true' resumes)\n");
	}
}

static void print_user(FILE *f, json_t *u)
{
	fprintf(f, "jid:          %s\n", str_of(u, "jid"));
	fprintf(f, "xmpp access:  %s\n", str_of(u, "xmpp_access"));
	fprintf(f, "created:      %s\n", str_of(u, "created"));
}

static void print_user_table(FILE *f, json_t *list, const char *filter)
{
	if (json_array_size(list) == 0 && filter) {
		fprintf(f, "no user has a JID matching '%s'\n", filter);
		return;
	}
	if (json_array_size(list) == 0) {
		fprintf(f, "no users (add one with 'fedgate user add JID')\n");
		return;
	}
	fprintf(f, "%-40s %-11s %s\n", "JID", "XMPP-ACCESS", "CREATED");
	size_t i;
	json_t *u;
	json_array_foreach(list, i, u)
	{
		fprintf(f, "%-40s ", str_of(u, "jid"));
		fprintf(f, "%-11s ", str_of(u, "xmpp_access"));
		fprintf(f, "%s\n", str_of(u, "created"));
	}
}

static void print_gateway(FILE *f, json_t *g)
{
	const char *key;
	json_t *v;
	json_object_foreach(g, key, v)
	{
		if (json_is_integer(v))
			fprintf(f, "%-30s %lld\n", key, (long long)json_integer_value(v));
		else
			fprintf(f, "%-30s %s\n", key, str_of(g, key));
	}
}

/* One line per changed field: "tls: required -> optional". */
static void print_change(void *ud, const char *key, json_t *b, json_t *a)
{
	char *bs = b ? json_dumps(b, JSON_ENCODE_ANY | JSON_COMPACT) : strdup("-");
	char *as = a ? json_dumps(a, JSON_ENCODE_ANY | JSON_COMPACT) : strdup("-");
	fprintf(ud, "    %s: %s -> %s\n", key, bs, as);
	free(bs);
	free(as);
}

static void print_audit(FILE *f, json_t *rows)
{
	size_t i;
	json_t *r;
	if (json_array_size(rows) == 0)
		fprintf(f, "no changes recorded\n");
	json_array_foreach(rows, i, r)
	{
		const char *action = str_of(r, "action");
		const char *target = audit_target_shown(action, str_of(r, "target"));
		fprintf(f, "%s  %s via %s: %s%s%s\n", str_of(r, "at"), str_of(r, "who"),
			str_of(r, "interface"), action, target != NULL ? " " : "",
			target != NULL ? target : "");
		policy_json_diff(json_object_get(r, "before"), json_object_get(r, "after"),
				 print_change, f);
	}
}

static long long num_of(json_t *o, const char *key)
{
	return (long long)json_integer_value(json_object_get(o, key));
}

/* `status --cluster`, and the end of `status` on a node of a cluster
 * (xmpp/cluster.h, cluster_status): which node this is, the Redis link,
 * each node's last heartbeat and sessions, what crossed between nodes. */
static void print_cluster(FILE *f, json_t *c)
{
	const char *redis = str_of(c, "redis");
	if (strcmp(redis, "off") == 0 || !*redis) {
		fprintf(f, "this node (%s) is not in a cluster: [cluster] redis is empty\n",
			str_of(c, "node"));
		return;
	}
	fprintf(f, "cluster: this node is %s; Redis link %s", str_of(c, "node"), redis);
	long long since = num_of(c, "redis_down_since_ms");
	if (strcmp(redis, "down") == 0 && since > 0) {
		time_t t = (time_t)(since / 1000);
		struct tm tm;
		char when[32];
		gmtime_r(&t, &tm);
		strftime(when, sizeof(when), "%Y-%m-%dT%H:%M:%SZ", &tm);
		fprintf(f,
			" since %s: this node serves its own users and partners; stanzas for "
			"users on other nodes are refused until Redis is back",
			when);
	}
	fprintf(f, "\n%-24s %-5s %15s %9s\n", "NODE", "SELF", "HEARTBEAT-AGE", "SESSIONS");
	size_t i;
	json_t *n;
	json_array_foreach(json_object_get(c, "nodes"), i, n)
	{
		fprintf(f, "%-24s %-5s %12lld ms %9lld\n", str_of(n, "name"),
			json_is_true(json_object_get(n, "self")) ? "yes" : "",
			num_of(n, "heartbeat_age_ms"), num_of(n, "sessions"));
	}
	fprintf(f,
		"stanzas forwarded to other nodes %lld, from them %lld; routed again after a node "
		"died %lld; refused while the cluster link was down %lld\n",
		num_of(c, "forwarded_out"), num_of(c, "forwarded_in"), num_of(c, "rerouted"),
		num_of(c, "bounced_link_down"));
}

/* `status --refused`: who knocked, so an admin can add them. */
static void print_refused(FILE *f, json_t *rows)
{
	if (json_array_size(rows) == 0) {
		fprintf(f, "no domain that is not a partner has tried to federate since the daemon "
			   "started\n");
		return;
	}
	fprintf(f, "%-32s %8s %8s %-21s %-21s %s\n", "DOMAIN", "INBOUND", "OUTBOUND", "FIRST",
		"LAST", "LAST FROM");
	size_t i;
	json_t *r;
	json_array_foreach(rows, i, r)
		fprintf(f, "%-32s %8lld %8lld %-21s %-21s %s\n", str_of(r, "domain"),
			(long long)json_integer_value(json_object_get(r, "inbound")),
			(long long)json_integer_value(json_object_get(r, "outbound")),
			str_of(r, "first"), str_of(r, "last"), str_of(r, "last_from"));
	fprintf(f, "add one with 'fedgate partner new DOMAIN'\n");
}

static void print_status(FILE *f, json_t *rows)
{
	if (json_array_size(rows) == 0) {
		fprintf(f, "no streams and no failing routes\n");
		return;
	}
	fprintf(f, "%-5s %-22s %-22s %-14s %-14s %-28s %9s %9s %6s %6s %5s\n", "DIR", "LOCAL",
		"REMOTE", "STATE", "METHOD", "TLS", "BYTES-IN", "BYTES-OUT", "ST-IN", "ST-OUT",
		"AGE");
	size_t i;
	json_t *r;
	json_array_foreach(rows, i, r)
	{
		fprintf(f, "%-5s %-22s %-22s %-14s %-14s %-28s %9lld %9lld %6lld %6lld %5lld\n",
			str_of(r, "direction"), str_of(r, "local"), str_of(r, "remote"),
			str_of(r, "state"), str_of(r, "method"), str_of(r, "tls"),
			(long long)json_integer_value(json_object_get(r, "bytes_in")),
			(long long)json_integer_value(json_object_get(r, "bytes_out")),
			(long long)json_integer_value(json_object_get(r, "stanzas_in")),
			(long long)json_integer_value(json_object_get(r, "stanzas_out")),
			(long long)json_integer_value(json_object_get(r, "age")));
		const char *cert = str_of(r, "certificate"), *err = str_of(r, "last_error");
		json_t *lf = json_object_get(r, "last_failure");
		/* XEP-0368 streams say so: TLS from the first byte. */
		if (strcmp(str_of(r, "tls_mode"), "direct") == 0)
			fprintf(f, "      tls: direct-tls%s%s\n",
				*str_of(r, "alpn") ? ", ALPN " : "", str_of(r, "alpn"));
		if (cert[0] && strcmp(cert, "none") != 0)
			fprintf(f, "      certificate: %s\n", cert);
		if (str_of(r, "certificate_key")[0])
			fprintf(f, "      certificate key (pin): %s; extended key usage: %s\n",
				str_of(r, "certificate_key"), str_of(r, "certificate_eku"));
		if (json_is_string(json_object_get(r, "dane")))
			fprintf(f, "      dane: %s\n", str_of(r, "dane"));
		if (json_is_true(json_object_get(r, "bidi")))
			fprintf(f,
				"      bidi: this stream carries stanzas both ways (XEP-0288)\n");
		if (lf && strcmp(str_of(lf, "state"), "failing") == 0) {
			/* A route that fails: since when, how often, why (ours or the
			 * peer's words), when it tries again, what waits and what was
			 * bounced, so an admin sees a partner that is down. */
			fprintf(f, "      failing since %s, %lld attempt(s), last at %s\n",
				str_of(lf, "first"),
				(long long)json_integer_value(json_object_get(lf, "attempts")),
				str_of(lf, "at"));
			fprintf(f, "      reason%s: %s\n",
				json_is_true(json_object_get(lf, "by_peer")) ? " (the peer's)" : "",
				str_of(lf, "reason"));
			if (json_integer_value(json_object_get(lf, "retry_in")) > 0)
				fprintf(f, "      next attempt: %s (in %llds)",
					str_of(lf, "next_retry"),
					(long long)json_integer_value(
						json_object_get(lf, "retry_in")));
			else
				fprintf(f, "      next attempt: with the next stanza");
			fprintf(f, "; %lld stanza(s) waiting, %lld bounced\n",
				(long long)json_integer_value(json_object_get(r, "queued")),
				(long long)json_integer_value(json_object_get(lf, "bounced")));
		} else if (lf) {
			fprintf(f, "      recovered %s after %lld failed attempt(s) since %s: %s\n",
				str_of(lf, "recovered"),
				(long long)json_integer_value(json_object_get(lf, "attempts")),
				str_of(lf, "first"), str_of(lf, "reason"));
		} else if (err[0]) {
			fprintf(f, "      last error: %s\n", err);
		}
	}
}

static long long sum_last(json_t *arr, size_t n)
{
	size_t len = json_array_size(arr);
	long long s = 0;
	for (size_t i = len > n ? len - n : 0; i < len; i++)
		s += (long long)json_integer_value(json_array_get(arr, i));
	return s;
}

/* `partner history`: the totals of the last hour and day, then the
 * connection events, newest first. */
static void print_history(FILE *f, json_t *h)
{
	json_t *in = json_object_get(h, "stanzas_in"), *out = json_object_get(h, "stanzas_out");
	fprintf(f, "%s, as of %s (since %s)\n", str_of(h, "domain"), str_of(h, "now"),
		str_of(h, "since"));
	fprintf(f, "stanzas      %10s %10s\n", "IN", "OUT");
	fprintf(f, "last hour    %10lld %10lld\n", sum_last(in, 60), sum_last(out, 60));
	fprintf(f, "last 24 h    %10lld %10lld\n", sum_last(in, json_array_size(in)),
		sum_last(out, json_array_size(out)));
	json_t *ev = json_object_get(h, "events");
	if (json_array_size(ev) == 0) {
		fprintf(f, "no connection events in the last 24 hours\n");
		return;
	}
	fprintf(f, "%-21s %-10s %-4s %-24s %-24s %s\n", "AT", "EVENT", "DIR", "LOCAL", "REMOTE",
		"METHOD / REASON");
	for (size_t i = json_array_size(ev); i-- > 0;) {
		json_t *e = json_array_get(ev, i);
		const char *method = str_of(e, "method"), *reason = str_of(e, "reason");
		fprintf(f, "%-21s %-10s %-4s %-24s %-24s %s%s%s\n", str_of(e, "at"),
			str_of(e, "event"), str_of(e, "direction"), str_of(e, "local"),
			str_of(e, "remote"), method, method[0] && reason[0] ? ": " : "", reason);
	}
}

/* An admin command's result for people; true when it printed it. */
static bool print_admin(const char *name, int status, json_t *body)
{
	if (strncmp(name, "admin ", 6) != 0 || status != CMD_OK)
		return false;
	json_t *result = json_object_get(body, "result");
	if (strcmp(name, "admin list") == 0) {
		size_t i;
		json_t *r;
		if (json_array_size(result) == 0)
			printf("no admin accounts (add one with 'fedgate admin add NAME --role "
			       "administrator')\n");
		else
			printf("%-24s %-14s %-21s %s\n", "NAME", "ROLE", "CREATED", "API TOKENS");
		json_array_foreach(result, i, r) printf(
			"%-24s %-14s %-21s %lld\n", json_string_value(json_object_get(r, "name")),
			json_string_value(json_object_get(r, "role")),
			json_string_value(json_object_get(r, "created")),
			(long long)json_integer_value(json_object_get(r, "tokens")));
		return true;
	}
	if (strcmp(name, "admin tokens") == 0) {
		size_t i;
		json_t *r;
		if (json_array_size(result) == 0)
			printf("no API tokens (make one with 'fedgate admin token NAME --label "
			       "LABEL')\n");
		else
			printf("%-24s %-24s %-21s %s\n", "NAME", "LABEL", "CREATED", "LAST USED");
		json_array_foreach(result, i, r)
		{
			const char *used = json_string_value(json_object_get(r, "last_used"));
			printf("%-24s %-24s %-21s %s\n",
			       json_string_value(json_object_get(r, "name")),
			       json_string_value(json_object_get(r, "label")),
			       json_string_value(json_object_get(r, "created")),
			       used ? used : "never");
		}
		return true;
	}
	const char *token = json_string_value(json_object_get(result, "token"));
	if (token)
		printf("%s\n", token);
	const char *msg = json_string_value(json_object_get(body, "message"));
	if (msg)
		fprintf(token ? stderr : stdout, "%s\n", msg);
	return true;
}

static void print_changes(FILE *f, json_t *rows, const char *title)
{
	size_t i;
	json_t *r;
	if (json_array_size(rows) == 0)
		return;
	fprintf(f, "%s:\n", title);
	json_array_foreach(rows, i, r) fprintf(f, "  %s: %s -> %s\n", str_of(r, "key"),
					       str_of(r, "from"), str_of(r, "to"));
}

static void print_reload(FILE *f, json_t *result)
{
	json_t *cert = json_object_get(result, "certificate");
	fprintf(f, "reloaded %s\n", str_of(result, "config"));
	print_changes(f, json_object_get(result, "applied"), "applied");
	print_changes(f, json_object_get(result, "restart_needed"),
		      "changed, but needs a restart (still running on the old value)");
	if (!json_array_size(json_object_get(result, "applied")) &&
	    !json_array_size(json_object_get(result, "restart_needed")))
		fprintf(f, "no key changed\n");
	fprintf(f, "certificate for new connections: %s\n  %s, expires %s\n  SHA-256 %s\n",
		str_of(cert, "file"), str_of(cert, "subject"), str_of(cert, "expires"),
		str_of(cert, "sha256"));
	if (str_of(cert, "eku")[0])
		fprintf(f, "  extended key usage: %s; public key (pin): %s\n", str_of(cert, "eku"),
			str_of(cert, "pin"));
}

/* Gone, or exited and waiting for its parent to collect the status (a
 * zombie holds no socket, no file and no port any more). */
static bool has_exited(pid_t pid)
{
	if (kill(pid, 0) != 0 && errno == ESRCH)
		return true;
	char path[64], buf[512];
	snprintf(path, sizeof(path), "/proc/%ld/stat", (long)pid);
	FILE *f = fopen(path, "r");
	if (!f)
		return false;
	size_t n = fread(buf, 1, sizeof(buf) - 1, f);
	fclose(f);
	buf[n] = '\0';
	const char *end = strrchr(buf, ')'); /* the command name may hold anything */
	return end && (end[1] == ' ') && (end[2] == 'Z' || end[2] == 'X');
}

/* `fedgate stop` returns when the daemon is gone, as `systemctl stop`
 * does, so that a script can start it again at once. */
static int wait_exit(json_t *result)
{
	pid_t pid = (pid_t)json_integer_value(json_object_get(result, "pid"));
	if (pid <= 0)
		return CMD_REFUSED;
	for (int i = 0; i < 300; i++) {
		if (has_exited(pid)) {
			printf("fedgate (pid %ld) stopped\n", (long)pid);
			return CMD_OK;
		}
		usleep(100 * 1000);
	}
	fprintf(stderr, "fedgate: pid %ld is still running after 30 s\n", (long)pid);
	return CMD_REFUSED;
}

static void render(const char *name, int status, json_t *body, bool as_json, json_t *params)
{
	json_t *result = json_object_get(body, "result");
	size_t i;
	json_t *m;
	json_array_foreach(json_object_get(body, "errors"), i, m)
		fprintf(stderr, "error: %s\n", str_of(m, "message"));
	json_array_foreach(json_object_get(body, "warnings"), i, m)
		fprintf(stderr, "warning: %s\n", json_string_value(m));
	if (strcmp(name, "partner export") == 0 || (as_json && result)) {
		if (status == CMD_OK || strcmp(name, "partner export") != 0) {
			json_dumpf(result, stdout, JSON_INDENT(2) | JSON_ENCODE_ANY);
			fputc('\n', stdout);
		}
		return;
	}
	const char *msg = str_of(body, "message");
	if (status != CMD_OK && (strcmp(name, "test-im") == 0 || strcmp(name, "probe") == 0))
		json_array_foreach(json_object_get(result, "steps"), i, m)
			printf("  %s\n", json_string_value(m));
	if (status != CMD_OK) {
		if (msg[0])
			fprintf(stderr, "%s\n", msg);
		return;
	}
	if (print_admin(name, status, body))
		return;
	if (strcmp(name, "partner retry") == 0)
		; /* the message says it all */
	else if (strcmp(name, "partner history") == 0)
		print_history(stdout, result);
	else if (strncmp(name, "partner ", 8) == 0 && json_is_object(result))
		print_partner(stdout, result);
	else if (strcmp(name, "partner get") == 0)
		print_partner_table(stdout, result,
				    json_string_value(json_object_get(params, "filter")));
	else if (strncmp(name, "gateway ", 8) == 0 && json_is_object(result))
		print_gateway(stdout, result);
	else if (strncmp(name, "user ", 5) == 0 && json_is_object(result))
		print_user(stdout, result);
	else if (strcmp(name, "user list") == 0)
		print_user_table(stdout, result,
				 json_string_value(json_object_get(params, "filter")));
	else if (strcmp(name, "audit") == 0)
		print_audit(stdout, result);
	else if (strcmp(name, "status") == 0 && json_is_true(json_object_get(params, "refused")))
		print_refused(stdout, result);
	else if (strcmp(name, "status") == 0 && json_is_true(json_object_get(params, "cluster")))
		print_cluster(stdout, result);
	else if (strcmp(name, "status") == 0) {
		print_status(stdout, result);
		json_t *c = json_object_get(body, "cluster");
		if (c && strcmp(str_of(c, "redis"), "off") != 0)
			print_cluster(stdout, c);
	} else if (strcmp(name, "reload") == 0)
		print_reload(stdout, result);
	else if (strcmp(name, "test-im") == 0 || strcmp(name, "probe") == 0)
		json_array_foreach(json_object_get(result, "steps"), i, m)
			printf("  %s\n", json_string_value(m));
	if (msg[0])
		printf("%s\n", msg);
}

/* ---- argv ---- */

static int usage_error(const char *msg)
{
	fprintf(stderr, "fedgate: %s\n", msg);
	return CMD_USAGE;
}

/* `fedgate reload` asks the daemon even when the file has errors (the
 * daemon logs them with their lines, keeps running as it was, and its
 * answer lists them here. */
static int ask_reload(const char *path, json_t *params)
{
	char sock[200], err[600];
	struct outcome out = {CMD_REFUSED, NULL};
	if (conf_peek_control(path, sock, sizeof(sock)) != FG_OK) {
		struct fg_conf *conf = NULL;
		conf_load(path, &conf, stderr); /* says why it cannot be read */
		conf_free(&conf);
		json_decref(params);
		return CMD_REFUSED;
	}
	int rc = control_call(sock, "reload", params, false, &out.status, &out.body, err,
			      sizeof(err));
	if (rc == FG_NOTFOUND)
		fprintf(stderr, "fedgate: no daemon answers on %s: start it with 'fedgate serve'\n",
			sock);
	else if (rc != FG_OK)
		fprintf(stderr, "fedgate: %s\n", err);
	else
		render("reload", out.status, out.body, false, params);
	json_decref(out.body);
	json_decref(params);
	return rc == FG_OK ? out.status : CMD_REFUSED;
}

/* The command, in the daemon over the control socket when one runs, else
 * here on the store. */
static void run_cmd(const struct fg_conf *conf, const char *name, json_t *params, bool what_if,
		    struct outcome *out)
{
	char err[600];
	out->status = CMD_REFUSED;
	out->body = NULL;
	int rc = control_call(conf->listen_control, name, params, what_if, &out->status, &out->body,
			      err, sizeof(err));
	if (rc == FG_NOTFOUND) {
		if (run_local(conf, name, params, what_if, out) != FG_OK)
			out->status = CMD_REFUSED;
	} else if (rc != FG_OK) {
		fprintf(stderr, "fedgate: %s\n", err);
		out->status = CMD_REFUSED;
	}
}

/* What stands in for the password while the arguments are checked: long
 * enough, printable, and never saved (the check is a what-if). */
#define STAND_IN_PASSWORD "stand-in, never saved"

/* Runs a command that asks for a password as a what-if first, so that a
 * bad name, JID or role, or an account that exists already, is said before
 * the prompt (and before a script's password line is read). CMD_OK, or the
 * refusal already printed. */
static int check_before_prompt(const struct fg_conf *conf, const struct cmd_def *def,
			       json_t *params, bool as_json)
{
	struct outcome pre;
	json_object_set_new(params, "password", json_string(STAND_IN_PASSWORD));
	run_cmd(conf, def->name, params, true, &pre);
	json_object_del(params, "password");
	if (pre.status != CMD_OK && pre.body)
		render(def->name, pre.status, pre.body, as_json, params);
	json_decref(pre.body);
	return pre.status;
}

/* The options of the front-end, taken out of argv wherever they are; the
 * command's own go to the table. */
struct cli_opts {
	const char *conf_path;
	bool as_json, what_if, help;
};

static int take_front_opts(int argc, char **argv, struct cli_opts *o, char **rest, int *nrest)
{
	for (int i = 1; i < argc; i++) {
		const char *a = argv[i], *file = NULL;
		if (strcmp(a, "--json") == 0) {
			o->as_json = true;
		} else if (strcmp(a, "--what-if") == 0 || strcmp(a, "--whatif") == 0) {
			o->what_if = true;
		} else if (strcmp(a, "-h") == 0 || strcmp(a, "--help") == 0) {
			o->help = true;
		} else if (strcmp(a, "-c") == 0 || strcmp(a, "--config") == 0) {
			if (i + 1 >= argc)
				return usage_error("-c needs a file");
			file = argv[++i];
		} else if (strncmp(a, "--config=", 9) == 0) {
			file = a + 9;
		} else if (strncmp(a, "-c", 2) == 0) {
			file = a + 2;
		} else {
			rest[(*nrest)++] = argv[i];
		}
		if (file && o->conf_path && strcmp(file, o->conf_path) != 0) {
			fprintf(stderr,
				"fedgate: the configuration is given twice, as %s and as %s; give "
				"-c once\n",
				o->conf_path, file);
			return CMD_USAGE;
		}
		if (file)
			o->conf_path = file;
	}
	return CMD_OK;
}

/* "new, set, get, ...": the subcommands of group. */
static void list_subcommands(const char *group, char *buf, size_t len, const char **names,
			     size_t *n, size_t max)
{
	size_t count, glen = strlen(group), used = 0;
	const struct cmd_def *t = cmd_table(&count);
	buf[0] = '\0';
	*n = 0;
	for (size_t i = 0; i < count; i++) {
		if (strncmp(t[i].name, group, glen) != 0 || t[i].name[glen] != ' ')
			continue;
		const char *sub = t[i].name + glen + 1;
		used += (size_t)snprintf(buf + used, used < len ? len - used : 0, "%s%s",
					 used ? ", " : "", sub);
		if (*n < max)
			names[(*n)++] = sub;
	}
}

/* The row for argv's command words: one ("status") or a group and its
 * subcommand ("partner new", taken out of rest). NULL after saying why. */
static const struct cmd_def *find_def(const char *word, char **rest, int *nrest, bool help,
				      int *status)
{
	const struct cmd_def *def = cmd_find(word);
	char subs[400], name[200];
	const char *names[64];
	size_t n;
	if (def)
		return def;
	list_subcommands(word, subs, sizeof(subs), names, &n, FG_ARRAY_LEN(names));
	if (*nrest == 0 || rest[0][0] == '-') {
		fprintf(help ? stdout : stderr,
			"fedgate %s takes a subcommand: %s (see 'fedgate %s SUBCOMMAND --help')\n",
			word, subs, word);
		*status = help ? CMD_OK : CMD_USAGE;
		return NULL;
	}
	snprintf(name, sizeof(name), "%s %.100s", word, rest[0]);
	def = cmd_find(name);
	if (!def) {
		const char *hint = suggest_closest(rest[0], names, n);
		fprintf(stderr, "fedgate: unknown command '%s'", name);
		if (hint)
			fprintf(stderr, "; did you mean '%s %s'?", word, hint);
		fprintf(stderr, " (%s takes: %s)\n", word, subs);
		*status = CMD_USAGE;
		return NULL;
	}
	memmove(rest, rest + 1, (size_t)(*nrest - 1) * sizeof(*rest));
	(*nrest)--;
	return def;
}

static void print_help(const struct cmd_def *def)
{
	printf("fedgate %s: %s\n", def->name, def->summary);
	for (const struct cmd_param *p = def->params; p->name; p++)
		printf("  %-34s %s\n",
		       p->type == CP_SECRET ? "(password)"
		       : p->flag	    ? p->flag
					    : cmd_arg_label(p),
		       p->help);
	if (def->writes == CMD_CHANGES)
		printf("  %-34s %s\n", "--what-if", "validate and show, save nothing");
	printf("  %-34s %s\n", "--json", "output for scripts");
	printf("  %-34s %s\n", "-c FILE", "the configuration file (before or after the command)");
}

/* partner import: the file is read here, so the daemon needs no access to
 * it. Replaces params["partners"] (the name) with the document. */
static int read_import(json_t *params)
{
	const char *file = json_string_value(json_object_get(params, "partners"));
	bool is_stdin = strcmp(file, "-") == 0;
	FILE *f = is_stdin ? stdin : fopen(file, "rb");
	struct jsonin_error jerr;
	struct stat st;
	char what[600];
	json_t *doc = NULL;
	if (!f) {
		fprintf(stderr, "fedgate: cannot open %s: %s\n", file, strerror(errno));
		return CMD_REFUSED;
	}
	/* A folder opens, and then every read fails as a JSON error at
	 * "line 0": say what it is instead. */
	if (fstat(fileno(f), &st) == 0 && S_ISDIR(st.st_mode)) {
		fprintf(stderr,
			"fedgate: cannot open %s: %s; give the file 'partner export' "
			"wrote\n",
			file, strerror(EISDIR));
		fclose(f);
		return CMD_REFUSED;
	}
	doc = jsonin_load_file(f, &jerr);
	if (!is_stdin)
		fclose(f);
	if (!doc) {
		jsonin_describe(&jerr, what, sizeof(what));
		fprintf(stderr, "fedgate: cannot read %s: %s\n", file, what);
		return CMD_REFUSED;
	}
	json_object_set_new(params, "partners", doc);
	return CMD_OK;
}

/* The configuration, or CMD_REFUSED after conf_load said why. */
static int load_conf(const char *conf_path, struct fg_conf **conf)
{
	const char *path = conf_default_path(conf_path);
	if (conf_load(path, conf, stderr) == FG_OK)
		return CMD_OK;
	/* A file that cannot be opened has nothing to fix: conf_load said
	 * why (missing, permission denied) and where to point instead. */
	if (access(path, R_OK) == 0)
		fprintf(stderr, "fedgate: fix %s first (see 'fedgate check')\n", path);
	return CMD_REFUSED;
}

int cli_main(int argc, char **argv)
{
	struct cli_opts o = {0};
	char err[600];
	int nrest = 0, status = CMD_OK;
	char **rest = calloc((size_t)argc + 1, sizeof(*rest));
	if (!rest)
		return CMD_REFUSED;
	json_t *params = NULL;
	struct fg_conf *conf = NULL;
	struct outcome out = {CMD_REFUSED, NULL};
	const struct cmd_def *def = NULL;

	status = take_front_opts(argc, argv, &o, rest, &nrest);
	if (status != CMD_OK)
		goto done;
	def = find_def(argv[0], rest, &nrest, o.help, &status);
	if (!def)
		goto done;
	if (o.help) {
		print_help(def);
		goto done;
	}
	if (cmd_parse_argv(def, nrest, rest, &params, err, sizeof(err)) != FG_OK) {
		status = usage_error(err);
		goto done;
	}
	if (o.what_if && (!def->writes || def->writes == CMD_ACTS)) {
		status = usage_error(def->writes == CMD_ACTS
					     ? "--what-if does not apply: this command acts on "
					       "the running daemon and saves nothing"
					     : "--what-if is for commands that change something");
		goto done;
	}
	if (strcmp(def->name, "partner import") == 0 && (status = read_import(params)) != CMD_OK)
		goto done;
	if (strcmp(def->name, "reload") == 0) {
		status = ask_reload(conf_default_path(o.conf_path), params); /* takes params */
		params = NULL;
		goto done;
	}
	if ((status = load_conf(o.conf_path, &conf)) != CMD_OK)
		goto done;
	log_set_level(LOG_WARNING);
	bool user_pw = strcmp(def->name, "user add") == 0 || strcmp(def->name, "user passwd") == 0;
	bool admin_pw =
		strcmp(def->name, "admin add") == 0 || strcmp(def->name, "admin passwd") == 0;
	if (user_pw || admin_pw) {
		if ((status = check_before_prompt(conf, def, params, o.as_json)) != CMD_OK)
			goto done;
		if ((status = read_password(params, user_pw ? "jid" : "name")) != CMD_OK)
			goto done;
	}
	run_cmd(conf, def->name, params, o.what_if, &out);
	if (out.body)
		render(def->name, out.status, out.body, o.as_json, params);
	status = out.status;
	if (status == CMD_OK && strcmp(def->name, "stop") == 0)
		status = wait_exit(json_object_get(out.body, "result"));
done:
	json_decref(out.body);
	if (params)
		wipe_password(params);
	json_decref(params);
	conf_free(&conf);
	free(rest);
	return status;
}

#include "serve.h"
#include "server.h"

#include "admin_http.h"
#include "live.h"
#include "c2s.h"
#include "cluster_sync.h"
#include "caps.h"
#include "cluster.h"
#include "conf.h"
#include "session.h"
#include "control.h"
#include "dns.h"
#include "fg.h"
#include "history.h"
#include "jid.h"
#include "jid_cache.h"
#include "log.h"
#include "cmd_txn.h"
#include "logfile.h"
#include "memtrim.h"
#include "notify.h"
#include "pep.h"
#include "presence.h"
#include "mam.h"
#include "privs.h"
#include "refused.h"
#include "reload.h"
#include "roster.h"
#include "blocking.h"
#include "s2s_in.h"
#include "sasl.h"
#include "router.h"
#include "route.h"
#include "s2s_out.h"
#include "store.h"
#include "stream.h"
#include "strmap.h"
#include "testim.h"
#include "probe.h"
#include "throttle.h"
#include "users.h"
#include "tls.h"

#include <assert.h>
#include <event2/listener.h>
#include <event2/util.h>
#include <signal.h>
#include <sys/resource.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* How long a shutdown waits for streams to send their last words. */
#define SHUTDOWN_GRACE_S 3

struct listener {
	struct server *srv;
	const struct stream_role *role;
	bool direct_tls; /* [listen] s2s_tls, c2s_tls: XEP-0368 */
	struct evconnlistener *ev;
	char addr[80];
	struct listener *next;
};

static struct listener *listeners;

/* A flood would log a line per connection: one warning a minute says how
 * many were closed, the details go to debug. */
static void evicted_warning(struct listener *l, const char *peer)
{
	static time_t last;
	static unsigned since;
	time_t now = time(NULL);
	since++;
	log_debug(l->addr, "closing the oldest unauthenticated stream, from %s", peer);
	if (now - last < 60)
		return;
	log_warn(l->addr,
		 "%u unauthenticated %s stream(s) closed to make room ([limits] preauth_streams "
		 "= %u reached), the last from %s",
		 since, l->role->name, l->srv->conf->preauth_streams, peer);
	last = now;
	since = 0;
}

static void accept_cb(struct evconnlistener *ev, evutil_socket_t fd, struct sockaddr *sa, int salen,
		      void *arg)
{
	struct listener *l = arg;
	struct xmpp_server *x = &l->srv->x;
	(void)ev;
	if (x->stopping) {
		close(fd);
		return;
	}
	struct stream *s = l->direct_tls ? stream_accept_tls(x, l->role, fd, sa, (socklen_t)salen)
					 : stream_accept(x, l->role, fd, sa, (socklen_t)salen);
	if (!s) {
		log_error(l->addr, "out of memory accepting a connection");
		return;
	}
	xmpp_stream_added(x, s);
	/* Counted after adding, so the new stream is among them. The
	 * connection limits of partners and of the gateway count
	 * authenticated streams, when a stream authenticates (s2s_in.c). */
	const struct fg_conf *cf = x->conf;
	if (xmpp_streams_from(x, stream_peer(s)) > cf->connections_per_ip) {
		stream_error(
			s, "policy-violation",
			"too many connections from your address ([limits] connections_per_ip)");
	} else if (xmpp_preauth_count(x, l->role, stream_peer(s)) > cf->preauth_per_ip) {
		stream_error(
			s, "policy-violation",
			"too many streams from your address are not authenticated yet ([limits] "
			"preauth_streams_per_ip)");
	} else if (xmpp_preauth_count(x, l->role, NULL) > cf->preauth_streams) {
		/* The newcomer may be the partner or user the others keep
		 * out: the one that has waited longest makes room. */
		struct stream *old = xmpp_oldest_preauth(x, l->role);
		assert(old);
		evicted_warning(l, stream_peer(old));
		stream_error(old, "connection-timeout",
			     "closed to make room: too many streams are not authenticated yet");
	}
}

static int run_on_store(struct cmd_env *env, cmd_store_job job, cmd_store_done done, void *ud)
{
	struct server *srv = env->ud;
	return store_submit(srv->x.store, job, done, ud);
}

static void describe_partner(const struct partner *p, const struct gateway_settings *gw, char *buf,
			     size_t len)
{
	char methods[128];
	policy_methods_string(policy_allowed_methods(p), methods, sizeof(methods));
	size_t n = (size_t)snprintf(
		buf, len,
		"type=%s tls=%s sasl=%s dialback=%s keepalive=%s connection_limit=%u proxy=%s "
		"bidi=%s dane=%s pins=%zu allowed methods: %s; additional domains:",
		policy_partner_type_name(p->type), policy_negotiation_name(p->tls),
		policy_negotiation_name(p->sasl), p->dialback ? "true" : "false",
		p->keepalive ? "true" : "false", partner_connection_limit(p, gw),
		p->proxy_fqdn && *p->proxy_fqdn ? p->proxy_fqdn : "-", p->bidi ? "true" : "false",
		policy_dane_name(p->dane), p->pins.n, methods);
	for (size_t i = 0; i < p->additional_domains.n && n < len; i++)
		n += (size_t)snprintf(buf + n, len - n, " %s", p->additional_domains.v[i]);
	if (p->additional_domains.n == 0 && n < len)
		snprintf(buf + n, len - n, " none");
}

static void close_outbound(struct xmpp_server *x, const struct partner *p, const char *why)
{
	if (!p)
		return;
	/* Changed settings also deserve a fresh attempt, not the old retry
	 * delay. */
	routes_close_domain(x, p->domain, why);
	routes_reset(x, p->domain);
	for (size_t i = 0; i < p->additional_domains.n; i++) {
		routes_close_domain(x, p->additional_domains.v[i], why);
		routes_reset(x, p->additional_domains.v[i]);
	}
}

/* A partner's record changed: streams negotiated under the old settings no
 * longer match, so they end; traffic re-establishes them under the new. */
static void on_partner_changed(struct cmd_env *env, const struct partner *old,
			       const struct partner *new_p)
{
	struct server *srv = env->ud;
	char desc[1024];
	if (new_p) {
		describe_partner(new_p, &env->live.gw, desc, sizeof(desc));
		log_info("policy", "applying partner %s: %s", new_p->domain, desc);
		/* A partner now: no longer one who knocks in vain. */
		refused_forget(&srv->x, new_p->domain);
		for (size_t i = 0; i < new_p->additional_domains.n; i++)
			refused_forget(&srv->x, new_p->additional_domains.v[i]);
	} else if (old) {
		log_info("policy", "partner %s removed: it no longer federates", old->domain);
	}
	/* Only partners have a history: made with the partner, kept across
	 * a change, gone with it. */
	if (new_p && history_partner_add(srv->x.history, new_p->domain) != FG_OK)
		log_warn("policy", "out of memory: no history is kept for %s", new_p->domain);
	else if (!new_p && old)
		history_partner_remove(srv->x.history, old->domain);
	const char *name = new_p ? new_p->domain : old->domain;
	char text[300];
	if (new_p && !new_p->enabled)
		snprintf(text, sizeof(text), PARTNER_SUSPENDED_FMT, name);
	else
		snprintf(text, sizeof(text),
			 "the partner settings for %s changed; reconnect to use them", name);
	for (struct stream *s = srv->x.streams; s; s = stream_next(s)) {
		const char *remote = stream_remote(s);
		if (policy_owns(old, remote) || policy_owns(new_p, remote))
			stream_error(s, "policy-violation", text);
	}
	close_outbound(&srv->x, old, text);
	close_outbound(&srv->x, new_p, text);
}

static void on_gateway_changed(struct cmd_env *env)
{
	const struct gateway_settings *gw = &env->live.gw;
	struct server *srv = env->ud;
	presence_reschedule(&srv->x);
	log_info("policy",
		 "applying gateway settings: connection_limit=%u partner_connection_limit=%u "
		 "keepalive_interval=%u stream_establishment_timeout=%u "
		 "stream_inactivity_timeout=%u subscription_refresh_interval=%u "
		 "log_message_bodies=%s",
		 gw->connection_limit, gw->partner_connection_limit, gw->keepalive_interval,
		 gw->stream_establishment_timeout, gw->stream_inactivity_timeout,
		 gw->subscription_refresh_interval, gw->log_message_bodies ? "true" : "false");
}

/* A local account changed: a removed user's sessions end and the roster
 * goes; a user whose federation was turned off keeps local sessions, and
 * the router refuses from then on. */
static void on_user_changed(struct cmd_env *env, const struct account *old,
			    const struct account *new_a)
{
	struct server *srv = env->ud;
	if (new_a) {
		log_info("users", "applying user %s: xmpp_access=%s", new_a->jid,
			 new_a->xmpp_access ? "true" : "false");
		return;
	}
	if (!old)
		return;
	log_info("users", "user %s removed: its sessions end", old->jid);
	for (struct session *c = session_first(&srv->x, old->jid), *nx; c; c = nx) {
		nx = session_next(c);
		session_close(c, "not-authorized", "the account was removed");
	}
	roster_drop_user(&srv->x, old->jid);
	blocking_drop_user(&srv->x, old->jid);
}

static json_t *run_status(struct cmd_env *env)
{
	struct server *srv = env->ud;
	json_t *rows = json_array();
	for (struct stream *s = srv->x.streams; s; s = stream_next(s)) {
		json_t *r = json_object();
		stream_status(s, r);
		json_array_append_new(rows, r);
	}
	routes_status(&srv->x, rows);
	/* On a cluster, the failing routes of every node (each with "node"). */
	json_t *elsewhere = cluster_failures(&srv->x);
	json_array_extend(rows, elsewhere);
	json_decref(elsewhere);
	return rows;
}

static json_t *run_cluster(struct cmd_env *env)
{
	struct server *srv = env->ud;
	return cluster_status(&srv->x);
}

static unsigned run_retry(struct cmd_env *env, const struct partner *p)
{
	struct server *srv = env->ud;
	unsigned n = routes_retry(&srv->x, p->domain);
	for (size_t i = 0; i < p->additional_domains.n; i++)
		n += routes_retry(&srv->x, p->additional_domains.v[i]);
	return n;
}

static json_t *run_history(struct cmd_env *env, const struct partner *p)
{
	struct server *srv = env->ud;
	json_t *r = history_json(srv->x.history, p->domain, time(NULL));
	if (!r && history_partner_add(srv->x.history, p->domain) == FG_OK)
		r = history_json(srv->x.history, p->domain, time(NULL));
	return r;
}

static json_t *run_refused(struct cmd_env *env)
{
	struct server *srv = env->ud;
	json_t *rows = json_array();
	refused_rows(&srv->x, rows);
	return rows;
}

static void run_test_im(struct cmd_env *env, const struct cmd_request *req, cmd_reply_fn reply,
			void *ud)
{
	struct server *srv = env->ud;
	/* testim's statuses are the command layer's done / refused. */
	_Static_assert((int)TESTIM_OK == (int)CMD_OK && (int)TESTIM_FAILED == (int)CMD_REFUSED,
		       "test-im statuses");
	testim_run(&srv->x, req->params, req->who, reply, ud);
}

static void run_probe(struct cmd_env *env, const struct cmd_request *req, cmd_reply_fn reply,
		      void *ud)
{
	struct server *srv = env->ud;
	_Static_assert((int)PROBE_OK == (int)CMD_OK && (int)PROBE_FAILED == (int)CMD_REFUSED,
		       "probe statuses");
	probe_run(&srv->x, req->params, req->who, reply, ud);
}

/* The last stream is gone while stopping: the loop may end now. */
static void on_drained(struct xmpp_server *x)
{
	event_base_loopexit(x->base, NULL);
}

static int run_reload(struct cmd_env *env, json_t *body);
static long run_stop(struct cmd_env *env);

/* The partners and settings from the store, before the loop runs (the
 * only time the daemon reads the disk on its own thread). */
static int open_store(struct server *srv)
{
	char err[600];
	struct store_db *db = NULL;
	struct store_target tg = store_target_of(srv->conf);
	if (store_open(&tg, &db, err, sizeof(err)) != FG_OK) {
		log_error("serve", "%s", err);
		return FG_ERR;
	}
	srv->env = (struct cmd_env){
		.live = {.conf = srv->conf},
		.run = run_on_store,
		.partner_changed = on_partner_changed,
		.gateway_changed = on_gateway_changed,
		.test_im = run_test_im,
		.retry = run_retry,
		.probe = run_probe,
		.user_changed = on_user_changed,
		.status = run_status,
		.cluster = run_cluster,
		.refused = run_refused,
		.history = run_history,
		.reload = run_reload,
		.stop = run_stop,
		.ud = srv,
	};
	if (cmd_env_load(&srv->env, db, err, sizeof(err)) != FG_OK ||
	    roster_load_all(&srv->x, db, err, sizeof(err)) != FG_OK ||
	    blocking_load_all(&srv->x, db, err, sizeof(err)) != FG_OK) {
		log_error("serve", "cannot load %s: %s", store_db_path(db), err);
		store_db_close(&db);
		return FG_ERR;
	}
	srv->x.history = history_new();
	for (size_t i = 0; srv->x.history && i < policy_count(srv->env.live.partners); i++)
		if (history_partner_add(srv->x.history,
					policy_at(srv->env.live.partners, i)->domain) != FG_OK)
			break;
	if (!srv->x.history) {
		log_error("serve", "out of memory");
		store_db_close(&db);
		return FG_ERR;
	}
	srv->x.store = store_start(srv->x.base, db);
	if (!srv->x.store) {
		log_error("serve", "cannot start the store thread");
		store_db_close(&db);
		return FG_ERR;
	}
	log_info("serve", "store %s: %zu partners, %zu local users", store_db_path(db),
		 policy_count(srv->env.live.partners), accounts_count(srv->env.live.users));
	for (size_t i = 0; i < policy_count(srv->env.live.partners); i++) {
		char desc[1024];
		const struct partner *p = policy_at(srv->env.live.partners, i);
		describe_partner(p, &srv->env.live.gw, desc, sizeof(desc));
		log_info("policy", "partner %s: %s", p->domain, desc);
	}
	srv->control =
		control_start(srv->x.base, srv->conf->listen_control, &srv->env, err, sizeof(err));
	if (!srv->control) {
		log_error("serve", "%s", err);
		return FG_ERR;
	}
	log_info("serve", "control socket %s", srv->conf->listen_control);
	return FG_OK;
}

static void listener_resume(evutil_socket_t fd, short what, void *arg)
{
	struct listener *l = arg;
	(void)fd;
	(void)what;
	evconnlistener_enable(l->ev);
}

static void accept_error_cb(struct evconnlistener *ev, void *arg)
{
	struct listener *l = arg;
	int err = EVUTIL_SOCKET_ERROR();
	log_error(l->addr, "accept failed: %s", evutil_socket_error_to_string(err));
	/* Out of file descriptors and the like: pause instead of spinning. */
	evconnlistener_disable(ev);
	struct timeval tv = {1, 0};
	event_base_once(l->srv->x.base, -1, EV_TIMEOUT, listener_resume, l, &tv);
}

static int listen_on(struct server *srv, const struct stream_role *role, const char *addr,
		     bool direct_tls)
{
	struct sockaddr_storage ss;
	int sslen = sizeof(ss);
	if (evutil_parse_sockaddr_port(addr, (struct sockaddr *)&ss, &sslen) != 0) {
		log_error("serve", "cannot parse the listen address '%s'", addr);
		return FG_ERR;
	}
	struct listener *l = calloc(1, sizeof(*l));
	if (!l)
		return FG_NOMEM;
	l->srv = srv;
	l->role = role;
	l->direct_tls = direct_tls;
	snprintf(l->addr, sizeof(l->addr), "%s%s %s", role->s2s ? "s2s" : "c2s",
		 direct_tls ? "_tls" : "", addr);
	/* "[::]:5269" beside "0.0.0.0:5269" must not collide: an IPv6
	 * listener takes IPv6 only, whatever net.ipv6.bindv6only says. */
	unsigned flags = LEV_OPT_CLOSE_ON_FREE | LEV_OPT_REUSEABLE;
	if (ss.ss_family == AF_INET6)
		flags |= LEV_OPT_BIND_IPV6ONLY;
	l->ev = evconnlistener_new_bind(srv->x.base, accept_cb, l, flags, 128,
					(struct sockaddr *)&ss, sslen);
	if (!l->ev) {
		int err = EVUTIL_SOCKET_ERROR();
		log_error("serve", "cannot listen on %s for %s: %s", addr,
			  role->s2s ? "s2s" : "c2s", evutil_socket_error_to_string(err));
		free(l);
		return FG_ERR;
	}
	evconnlistener_set_error_cb(l->ev, accept_error_cb);
	l->next = listeners;
	listeners = l;
	log_info("serve", "listening for %s on %s%s", role->s2s ? "servers (s2s)" : "clients (c2s)",
		 addr, direct_tls ? " with Direct TLS (XEP-0368)" : "");
	return FG_OK;
}

static void close_listeners(void)
{
	while (listeners) {
		struct listener *l = listeners;
		listeners = l->next;
		evconnlistener_free(l->ev);
		free(l);
	}
}

/* Peers and clients are told (<system-shutdown/>), streams get a few
 * seconds to say their last words, then the loop ends. */
static void shut_down(struct server *srv, const char *why)
{
	struct xmpp_server *x = &srv->x;
	char status[200];
	log_info("serve", "%s: shutting down, %u inbound and %u outbound streams open", why,
		 x->nstreams, x->nouts);
	snprintf(status, sizeof(status), "shutting down (%s)", why);
	notify_stopping(srv->notify, status);
	x->stopping = true;
	close_listeners();
	/* Before the control socket closes, so that the CLI gets the answer. */
	probe_stop(x);
	testim_stop(x);
	control_stop(&srv->control);
	routes_close_domain(x, NULL, "the server is shutting down");
	/* Their unacknowledged messages go to offline storage while the
	 * store still runs. */
	session_drop_hibernating(x);
	for (struct stream *s = x->streams; s; s = stream_next(s))
		stream_error(s, "system-shutdown", "the server is shutting down");
	if (x->nstreams == 0 && x->nouts == 0) {
		event_base_loopexit(x->base, NULL);
	} else {
		struct timeval tv = {SHUTDOWN_GRACE_S, 0};
		event_base_loopexit(x->base, &tv);
	}
}

static void signal_cb(evutil_socket_t sig, short what, void *arg)
{
	struct server *srv = arg;
	struct xmpp_server *x = &srv->x;
	(void)what;
	if (sig == SIGHUP) {
		if (x->stopping)
			return;
		json_t *body = cmd_body_new();
		reload_run(srv, body); /* every outcome is logged */
		json_decref(body);
		return;
	}
	if (x->stopping) {
		log_warn("serve", "second signal: exiting now");
		event_base_loopbreak(x->base);
		return;
	}
	shut_down(srv, strsignal((int)sig));
}

static int run_reload(struct cmd_env *env, json_t *body)
{
	return reload_run(env->ud, body);
}

static void stop_now(evutil_socket_t fd, short what, void *arg)
{
	struct server *srv = arg;
	(void)fd;
	(void)what;
	if (!srv->x.stopping)
		shut_down(srv, "fedgate stop");
}

/* After this turn of the loop, so that the reply is queued first. */
static long run_stop(struct cmd_env *env)
{
	struct server *srv = env->ud;
	event_base_once(srv->x.base, -1, EV_TIMEOUT, stop_now, srv, &(struct timeval){0, 0});
	return (long)getpid();
}

/* STATUS= for `systemctl status`: what an admin checks first. */
static void status_line(void *ud, char *buf, size_t len)
{
	struct server *srv = ud;
	unsigned c2s = 0, s2s = 0;
	for (struct stream *s = srv->x.streams; s; s = stream_next(s)) {
		if (stream_is_s2s(s))
			s2s++;
		else
			c2s++;
	}
	snprintf(buf, len,
		 "serving %zu domain(s): %u client, %u inbound s2s, %u outbound s2s stream(s)",
		 srv->conf->domains.n, c2s, s2s, srv->x.nouts);
}

/* Each session is a descriptor: the soft limit (often 1024) would cap
 * fedgate far below what the machine holds, so it goes up to the hard one
 * (the systemd unit's LimitNOFILE). */
static void raise_fd_limit(void)
{
	struct rlimit rl;
	if (getrlimit(RLIMIT_NOFILE, &rl) != 0)
		return;
	if (rl.rlim_cur < rl.rlim_max) {
		rlim_t was = rl.rlim_cur;
		rl.rlim_cur = rl.rlim_max;
		if (setrlimit(RLIMIT_NOFILE, &rl) != 0)
			rl.rlim_cur = was;
	}
	log_info("serve", "open files: up to %llu (RLIMIT_NOFILE; LimitNOFILE= in the unit)",
		 (unsigned long long)rl.rlim_cur);
}

static void doze_streams(void *arg)
{
	stream_doze(arg);
	s2s_out_doze(arg);
}

int serve_main(const char *conf_path)
{
	struct server srv = {0};
	int status = 1;
	struct event *sigs[3] = {NULL, NULL, NULL};
	struct event *logsig = NULL; /* logfile.c */

	if (conf_load(conf_path, &srv.conf, stderr) != FG_OK) {
		fprintf(stderr, "fedgate: %s has errors; nothing was started (see fedgate check)\n",
			conf_path);
		return 1;
	}
	log_set_level((enum log_level)srv.conf->log_level);
	/* Running as a user (privs.c): who we are and whether the account can
	 * use the store is settled before anything is bound; then the log
	 * file, opened while still root (it may live in /var/log). */
	struct privs privs;
	char perr[1024];
	if (privs_check(srv.conf, &privs, perr, sizeof(perr)) != FG_OK ||
	    log_reopen(srv.conf->log_file, perr, sizeof(perr)) != FG_OK) {
		log_error("serve", "%s; nothing was started", perr);
		conf_free(&srv.conf);
		return 1;
	}
	srv.x.conf = srv.conf;
	srv.x.live = &srv.env.live;
	srv.x.drained = on_drained;
	srv.x.route = router_route;
	srv.x.bounce = router_bounce;
	srv.x.partner_stanza = s2s_in_from_outbound;
	signal(SIGPIPE, SIG_IGN);
	/* A reload asked for before the loop can take it must not kill the
	 * daemon (SIGHUP's default); the loop's handler replaces this. */
	signal(SIGHUP, SIG_IGN);
	if (sasl_global_init() != FG_OK ||
	    sasl_set_fake_iterations(srv.conf->users_scram_iterations) != FG_OK) {
		log_error("serve", "cannot initialise GNU SASL");
		conf_free(&srv.conf);
		return 1;
	}

	char err[512];
	srv.x.tls = tls_server_ctx_new(srv.conf->tls_certificate, srv.conf->tls_key,
				       srv.conf->tls_ca_file, err, sizeof(err));
	if (srv.x.tls &&
	    tls_server_tickets(srv.x.tls, srv.conf->tls_session_tickets, err, sizeof(err)) != FG_OK)
		tls_ctx_free(&srv.x.tls);
	if (!srv.x.tls) {
		log_error("serve", "%s", err);
		goto out;
	}
	srv.x.tls_client = tls_client_ctx_new(srv.conf->tls_certificate, srv.conf->tls_key,
					      srv.conf->tls_ca_file, err, sizeof(err));
	if (srv.x.tls_client && tls_client_tickets(srv.x.tls_client, srv.conf->tls_session_tickets,
						   err, sizeof(err)) != FG_OK)
		tls_ctx_free(&srv.x.tls_client);
	if (!srv.x.tls_client) {
		log_error("serve", "%s", err);
		goto out;
	}
	srv.x.base = event_base_new();
	if (!srv.x.base) {
		log_error("serve", "cannot create the event loop");
		goto out;
	}
	raise_fd_limit();
	srv.notify = notify_open();
	srv.x.dns = dns_new(srv.x.base, srv.conf->dns_resolv_conf, err, sizeof(err));
	if (!srv.x.dns) {
		log_error("serve", "%s", err);
		goto out;
	}
	/* Without it only DANE is lost (its lookups say why), so the
	 * gateway starts; `fedgate check` reports the file as an error. */
	if (dns_set_trust_anchor(srv.x.dns, srv.conf->dns_trust_anchor, err, sizeof(err)) != FG_OK)
		log_warn("serve", "%s; partners with dane = required will be refused", err);
	if (open_store(&srv) != FG_OK || presence_start(&srv.x) != FG_OK ||
	    mam_start(&srv.x) != FG_OK)
		goto out;
	/* [cluster] redis empty: nothing of the cluster runs (cluster.h). */
	cluster_set_arrival(router_from_cluster);
	if (cluster_start(&srv.x, err, sizeof(err)) != FG_OK) {
		log_error("serve", "%s", err);
		goto out;
	}
	testim_start(&srv.x);
	/* Before the listeners: what other nodes change from now on is seen. */
	srv.sync = cluster_sync_start(&srv);
	for (size_t i = 0; i < srv.conf->listen_s2s.n; i++)
		if (listen_on(&srv, &s2s_in_role, srv.conf->listen_s2s.v[i], false) != FG_OK)
			goto out;
	for (size_t i = 0; i < srv.conf->listen_c2s.n; i++)
		if (listen_on(&srv, &c2s_role, srv.conf->listen_c2s.v[i], false) != FG_OK)
			goto out;
	for (size_t i = 0; i < srv.conf->listen_s2s_tls.n; i++)
		if (listen_on(&srv, &s2s_in_role, srv.conf->listen_s2s_tls.v[i], true) != FG_OK)
			goto out;
	for (size_t i = 0; i < srv.conf->listen_c2s_tls.n; i++)
		if (listen_on(&srv, &c2s_role, srv.conf->listen_c2s_tls.v[i], true) != FG_OK)
			goto out;
	srv.http = admin_http_start(srv.x.base, srv.conf, &srv.env, &srv.x, err, sizeof(err));
	if (!srv.http) {
		log_error("serve", "%s", err);
		goto out;
	}
	static const int signals[FG_ARRAY_LEN(sigs)] = {SIGINT, SIGTERM, SIGHUP};
	for (size_t i = 0; i < FG_ARRAY_LEN(sigs); i++) {
		sigs[i] = evsignal_new(srv.x.base, signals[i], signal_cb, &srv);
		if (!sigs[i] || evsignal_add(sigs[i], NULL) != 0) {
			log_error("serve", "cannot install signal handlers");
			goto out;
		}
	}

	/* SIGUSR1 reopens the log file, for logrotate (logfile.c). */
	logsig = logfile_watch(srv.x.base);
	/* Every port, key and file that needs root is open: become [server]
	 * user for good before the first peer is read (privs.c). */
	if (!logsig || privs_drop(srv.conf, &privs, perr, sizeof(perr)) != FG_OK) {
		log_error("serve", "%s", logsig ? perr : "cannot install the SIGUSR1 handler");
		goto out;
	}

	char domains[512] = "";
	for (size_t i = 0; i < srv.conf->domains.n; i++)
		snprintf(domains + strlen(domains), sizeof(domains) - strlen(domains), "%s%s",
			 i ? ", " : "", srv.conf->domains.v[i]);
	log_info("serve", "fedgate %s ready: serving %s (config %s)", FG_VERSION, domains,
		 srv.conf->path);
	char status_text[300];
	status_line(&srv, status_text, sizeof(status_text));
	notify_start(srv.notify, srv.x.base, status_line, &srv);
	notify_ready(srv.notify, status_text);
	/* Idle streams free their parsers, freed session memory goes back
	 * to the system (memtrim.c). */
	struct memtrim *trim = memtrim_start(srv.x.base, 10, doze_streams, &srv.x);
	if (!trim)
		log_warn("serve",
			 "cannot start the memory trimmer: freed memory stays with fedgate");
	event_base_dispatch(srv.x.base);
	memtrim_stop(&trim);
	log_info("serve", "stopped");
	status = 0;
out:
	srv.x.stopping = true; /* nothing is routed any more */
	close_listeners();
	control_stop(&srv.control);
	testim_stop(&srv.x);
	probe_stop(&srv.x);
	presence_stop(&srv.x);
	cluster_stop(&srv.x);
	mam_stop(&srv.x);
	cluster_sync_stop(&srv.sync);
	store_stop(&srv.x.store); /* replies to commands under way */
	/* After the last reply: evhttp frees what it still holds. */
	admin_http_stop(&srv.http);
	routes_free_all(&srv.x);
	s2s_out_free_all(&srv.x);
	dns_free(&srv.x.dns);
	/* Streams still open after the grace period are cut. */
	xmpp_free_streams(&srv.x);
	session_drop_hibernating(&srv.x);
	c2s_stop(&srv.x);
	for (size_t i = 0; i < FG_ARRAY_LEN(sigs); i++)
		if (sigs[i])
			event_free(sigs[i]);
	if (logsig)
		event_free(logsig);
	notify_free(&srv.notify); /* its timer belongs to the base */
	if (srv.x.base)
		event_base_free(srv.x.base);
	tls_ctx_free(&srv.x.tls);
	tls_ctx_free(&srv.x.tls_client);
	roster_free_all(&srv.x);
	blocking_free_all(&srv.x);
	pep_free_all(&srv.x);
	caps_free_all(&srv.x);
	refused_free_all(&srv.x);
	history_free(&srv.x.history);
	strmap_free(&srv.x.sessions, NULL);
	strmap_free(&srv.x.sm_ids, NULL);
	jid_cache_free(&srv.x.jids);
	throttle_free(&srv.x.auth_throttle);
	strmap_free(&srv.x.offline_full, NULL);
	cmd_env_clear(&srv.env);
	sasl_global_done();
	conf_free(&srv.conf);
	return status;
}

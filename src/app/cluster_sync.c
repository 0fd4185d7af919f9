#include "cluster_sync.h"
#include "server.h"

#include "conf.h"
#include "fg.h"
#include "log.h"
#include "policy.h"
#include "policy_json.h"
#include "store.h"
#include "store_watch.h"

#include <jansson.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

struct cluster_sync {
	struct server *srv;
	struct store_watch *watch;
	char node[256]; /* ours: notifications from it were applied already */
};

/* One read of partners and settings, for one notification or a resync. It
 * refers to the server only (which outlives the store), never to the
 * cluster_sync, so that a load still queued at shutdown is harmless. */
struct sync_load {
	struct server *srv;
	struct store_watch_note note; /* empty for a resync */
	bool resync, reconnected;
	struct policy *partners;
	struct gateway_settings gw;
};

static void load_free(struct sync_load *l)
{
	store_watch_note_clear(&l->note);
	policy_free(&l->partners);
	gateway_clear(&l->gw);
	free(l);
}

static int note_copy(struct store_watch_note *dst, const struct store_watch_note *src)
{
	memset(dst, 0, sizeof(*dst));
	dst->at_ms = src->at_ms;
	dst->node = strdup(src->node);
	if (src->nactions)
		dst->actions = calloc(src->nactions, sizeof(*dst->actions));
	if (!dst->node || (src->nactions && !dst->actions))
		goto fail;
	for (size_t i = 0; i < src->nactions; i++) {
		dst->actions[i] = strdup(src->actions[i]);
		if (!dst->actions[i])
			goto fail;
		dst->nactions = i + 1;
	}
	return FG_OK;
fail:
	store_watch_note_clear(dst);
	return FG_NOMEM;
}

/* On the store thread. */
static int job_load(struct store_db *db, void *ud, char *err, size_t errlen)
{
	struct sync_load *l = ud;
	gateway_defaults(&l->gw);
	return store_db_load(db, &l->partners, &l->gw, err, errlen);
}

static bool gateway_same(const struct gateway_settings *a, const struct gateway_settings *b)
{
	json_t *ja = policy_json_gateway(a), *jb = policy_json_gateway(b);
	bool same = ja && jb && json_equal(ja, jb);
	json_decref(ja);
	json_decref(jb);
	const char *sa = a->dialback_secret ? a->dialback_secret : "";
	const char *sb = b->dialback_secret ? b->dialback_secret : "";
	return same && strcmp(sa, sb) == 0;
}

static void done_load(void *ud, int rc, const char *err)
{
	struct sync_load *l = ud;
	struct server *srv = l->srv;
	char actions[600];
	if (l->note.node)
		store_watch_actions_text(&l->note, actions, sizeof(actions));
	else
		snprintf(actions, sizeof(actions), "everything");
	if (srv->x.stopping) {
		load_free(l);
		return;
	}
	if (rc != FG_OK) {
		/* The next notification or resync reads everything again. */
		log_warn("cluster",
			 "cannot read the partners and gateway settings another node changed "
			 "(%s): %s; this node keeps its current ones",
			 actions, err && *err ? err : "unknown error");
		load_free(l);
		return;
	}
	/* Installed as a local commit installs them; partners that did not
	 * change are left alone, so their streams stay up. */
	cmd_env_install_partners(&srv->env, &l->partners);
	if (!gateway_same(&srv->env.live.gw, &l->gw))
		cmd_env_install_gateway(&srv->env, &l->gw);
	if (l->resync) {
		if (l->reconnected)
			log_info("cluster",
				 "partners and gateway settings read again from the store after "
				 "its connection came back (changes of other nodes meanwhile "
				 "are applied)");
		else
			log_debug("cluster", "partners and gateway settings read again");
	} else {
		log_info("cluster", "applied \"%s\" from node %s, %lld ms after its commit",
			 actions, l->note.node, fg_now_ms() - l->note.at_ms);
	}
	load_free(l);
}

static void submit(struct cluster_sync *cs, struct sync_load *l)
{
	if (store_submit(cs->srv->x.store, job_load, done_load, l) != FG_OK) {
		log_warn("cluster", "out of memory: a change of another node is not applied");
		load_free(l);
	}
}

static void on_note(void *ud, const struct store_watch_note *n)
{
	struct cluster_sync *cs = ud;
	char actions[600];
	store_watch_actions_text(n, actions, sizeof(actions));
	if (strcmp(n->node, cs->node) == 0) {
		/* Installed when it committed here. */
		log_debug("cluster", "our own change \"%s\" came back: nothing to do", actions);
		return;
	}
	struct sync_load *l = calloc(1, sizeof(*l));
	if (!l || note_copy(&l->note, n) != FG_OK) {
		free(l);
		log_warn("cluster", "out of memory: \"%s\" of node %s is not applied", actions,
			 n->node);
		return;
	}
	l->srv = cs->srv;
	submit(cs, l);
}

static void on_resync(void *ud, bool reconnected)
{
	struct cluster_sync *cs = ud;
	struct sync_load *l = calloc(1, sizeof(*l));
	if (!l) {
		log_warn("cluster", "out of memory: partners and settings are not read again");
		return;
	}
	l->srv = cs->srv;
	l->resync = true;
	l->reconnected = reconnected;
	submit(cs, l);
}

struct cluster_sync *cluster_sync_start(struct server *srv)
{
	const struct fg_conf *c = srv->conf;
	if (!c->store_backend || strcmp(c->store_backend, "postgresql") != 0 || !c->store_dsn ||
	    !*c->store_dsn)
		return NULL;
	struct cluster_sync *cs = calloc(1, sizeof(*cs));
	if (!cs) {
		log_error("cluster", "out of memory: changes of other nodes are not applied here");
		return NULL;
	}
	cs->srv = srv;
	/* The name the store puts in its notifications ([cluster] node, else
	 * the host name, as the store's open does). */
	if (c->cluster_node && *c->cluster_node)
		snprintf(cs->node, sizeof(cs->node), "%s", c->cluster_node);
	else if (gethostname(cs->node, sizeof(cs->node) - 1) != 0)
		cs->node[0] = '\0';
	struct store_watch_hooks h = {.note = on_note, .resync = on_resync, .ud = cs};
	cs->watch = store_watch_start(srv->x.base, c->store_dsn, &h);
	if (!cs->watch) {
		log_error("cluster", "out of memory: changes of other nodes are not applied here");
		free(cs);
		return NULL;
	}
	return cs;
}

void cluster_sync_stop(struct cluster_sync **pcs)
{
	struct cluster_sync *cs = *pcs;
	if (!cs)
		return;
	store_watch_free(&cs->watch);
	free(cs);
	*pcs = NULL;
}

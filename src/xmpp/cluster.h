/* Several nodes serving the same domains (issue 17): what each node tells
 * the others through Redis, and the router's view of sessions on other
 * nodes. Nothing here runs on a single node ([cluster] redis empty):
 * srv->cluster stays NULL and every call below is a no-op or false.
 *
 * Redis keys (a cluster owns its Redis database):
 *   fg:sessions          hash: full JID -> "NODE PRIORITY AVAILABLE" (cluster_reg.h)
 *   fg:reg               channel: "set FULL RECORD" / "del FULL", each change;
 *                        "roster NODE USER": NODE changed USER's roster in the
 *                        store, the others read it again;
 *                        "offline NODE USER": NODE stored a message for
 *                        USER offline, a node where USER is available
 *                        takes it (offline_wake)
 *   fg:nodes             set of the nodes' names
 *   fg:alive:NODE        "WALLCLOCK_MS SESSIONS", expiring after node_timeout
 *   fg:q:NODE            stream of stanzas forwarded to NODE (group "g")
 *   fg:reap:NODE         the lock of the node that forgets a dead NODE
 *   fg:s2s:NODE          hash: partner domain ("*": all) -> NODE's s2s streams
 *   fg:failures:NODE     NODE's failing routes (status rows, JSON), expiring
 *
 * Timing: each node heartbeats every [cluster] heartbeat seconds and looks
 * at the others in the same tick; a node whose fg:alive key expired
 * (node_timeout after its last heartbeat) is forgotten by the first
 * survivor that takes its lock, so within node_timeout + heartbeat
 * seconds of its last heartbeat (6 s by default), plus the time to route
 * what it left.
 *
 * Guarantee for a forwarded stanza: at least once. The sender adds it to
 * the target's stream only while the target is a member of fg:nodes (one
 * Lua script, atomic); the target removes an entry (XACK, XDEL) only after
 * it routed it (handed to a session, stored offline, bounced, or sent on);
 * the reaper takes the whole stream of a dead node and removes the node
 * in one script, then routes every entry again. So a stanza forwarded to a
 * node that dies reaches the user's new session, offline storage or its
 * sender as an error; it may arrive twice. A copy a client with stream
 * management holds settles its entry only when the client acknowledges it
 * (xmpp.h, cluster_entry). What a node held only in its own memory
 * (stanzas between its own users not acknowledged, an outbound s2s
 * queue, an XADD still in its socket buffer) dies with it.
 *
 * Outbound s2s: each node opens its own stream for each (local, remote)
 * pair it needs (no extra hop; a partner's failure does not move traffic
 * between nodes); a partner's connection_limit (and the gateway's) counts
 * the streams of every live node: each node publishes its counts at every
 * heartbeat (fg:s2s:NODE) and adds the others' to its own (the
 * srv->cluster_s2s hook), so the limit holds cluster-wide up to streams
 * opened within one heartbeat on two nodes at once. */
#ifndef FG_CLUSTER_H
#define FG_CLUSTER_H

#include "cluster_reg.h"
#include "xml.h"

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>

struct xmpp_server;
struct session;

/* Starts the cluster link when [cluster] redis is set (FG_OK and nothing
 * otherwise); FG_ERR with err for a bad node name or address. */
int cluster_start(struct xmpp_server *srv, char *err, size_t errlen);
/* Leaves the cluster: this node's sessions and heartbeat are removed (best
 * effort, a stopping node's last words), the link closed. */
void cluster_stop(struct xmpp_server *srv);
bool cluster_on(const struct xmpp_server *srv);
/* On a cluster, and its Redis link is up now. */
bool cluster_link_up(const struct xmpp_server *srv);

/* A bound session registered, changed its presence, or ended (the
 * srv->cluster_session hook, xmpp.h). */
void cluster_session_changed(struct xmpp_server *srv, struct session *s);
void cluster_session_gone(struct xmpp_server *srv, struct session *s);

/* The other node holding full JID full, or NULL (this node, or nobody). */
const char *cluster_node_of(struct xmpp_server *srv, const char *full);
/* Another node with a session of bare (one with an available resource
 * first), or NULL: where a subscription request or answer for a user
 * signed in only elsewhere is handled, so that the user's client sees
 * it and the roster push. */
const char *cluster_user_node(struct xmpp_server *srv, const char *bare);
/* The other nodes that should get a copy of what goes to bare
 * (creg_nodes_for). */
size_t cluster_nodes_for(struct xmpp_server *srv, const char *bare, bool message,
			 char out[][CREG_NODE_MAX], size_t max);
/* Forwards st (taken) to node: local_only (the node's own sessions of the
 * bare JID) or routed there as if it had arrived there. When the link is
 * down, or the forward fails, st is bounced to its sender with why
 * (presence and errors are dropped and counted), unless copy (it went
 * elsewhere too: then it is dropped and counted); user names whom it was
 * for. */
void cluster_forward(struct xmpp_server *srv, const char *node, struct xml_node *st,
		     bool local_only, const char *user, bool copy);

/* The failing routes of the other nodes (status rows as route.c makes
 * them, each with "node"), as they published them at their last
 * heartbeat: a new array, empty on a single node. */
json_t *cluster_failures(struct xmpp_server *srv);

/* The router's entry for a forwarded stanza (router.c registers it). */
void cluster_set_arrival(void (*fn)(struct xmpp_server *srv, struct xml_node *st, bool local_only));

/* {"node", "redis": "up"|"down"|"off", "redis_down_since_ms", "nodes": [...],
 *  "forwarded_out", "forwarded_in", "rerouted", "bounced_link_down"}: a
 * new reference, for status and /metrics; a single node gets
 * {"node": NAME, "redis": "off", "nodes": [], ...zeros}. */
json_t *cluster_status(struct xmpp_server *srv);

#endif

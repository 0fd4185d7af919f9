/* A cluster's partner and gateway changes, live on every node: when another
 * node commits a change (store_watch.c hears PostgreSQL's notification),
 * this node reads partners and gateway settings from the shared store on
 * the store thread and installs them as a local change would be installed
 * (cmd_env_install_*: streams of a removed or changed partner closed, routes
 * reset, settings applied). Only with [store] backend = postgresql; a
 * single node on SQLite runs none of it. */
#ifndef FG_CLUSTER_SYNC_H
#define FG_CLUSTER_SYNC_H

struct server;
struct cluster_sync;

/* NULL when the backend is not PostgreSQL (nothing to do) or out of memory
 * (logged). */
struct cluster_sync *cluster_sync_start(struct server *srv);
/* Before store_stop: loads still queued find the server stopping and
 * install nothing. Accepts NULL, clears the pointer. */
void cluster_sync_stop(struct cluster_sync **cs);

#endif

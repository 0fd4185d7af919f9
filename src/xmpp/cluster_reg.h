/* The cluster's session registry as this node knows it, and the formats
 * of what nodes exchange through Redis (cluster.c does the talking).
 *
 * Every bound session of every node is one field of the Redis hash
 * fg:sessions: field = full JID, value = "NODE PRIORITY AVAILABLE"
 * ("n1 5 1"). Each node keeps a copy (this cache), filled with HGETALL
 * when its link comes up and kept current by the registry channel
 * (fg:reg, "set FULL RECORD" / "del FULL"), so the router decides where a
 * stanza goes without waiting for Redis.
 *
 * A forwarded stanza is one entry of the target node's stream fg:q:NODE
 * with the fields o (the node that sent it), m ("r": route it as if it
 * had arrived here; "l": only to this node's own sessions of the bare
 * JID, the sender took care of the rest) and s (the stanza as
 * xml_serialize wrote it). Everything read from Redis is input from
 * another process and is parsed defensively here (fuzz/fuzz_cluster.c). */
#ifndef FG_CLUSTER_REG_H
#define FG_CLUSTER_REG_H

#include "xml.h"

#include <stdbool.h>
#include <stddef.h>

#define CREG_NODE_MAX 64 /* a node name's bytes, NUL included */

struct creg_rec {
	char node[CREG_NODE_MAX];
	int priority;
	bool available;
};

/* A node name: 1..63 bytes of letters, digits, '-', '_', '.'. */
bool creg_node_valid(const char *name);
/* "NODE PRIO AVAIL" into buf; false when it does not fit or node is bad. */
bool creg_encode(const struct creg_rec *r, char *buf, size_t len);
/* The reverse, of len bytes (not NUL-terminated); false on anything else. */
bool creg_decode(const char *s, size_t len, struct creg_rec *r);

/* The cache: full JID -> record, grouped by bare JID. */
struct creg;
struct creg *creg_new(void);
void creg_free(struct creg **c);
/* Sets or replaces full's record: FG_OK / FG_NOMEM / FG_ERR (not a full
 * JID). */
int creg_set(struct creg *c, const char *full, const struct creg_rec *r);
void creg_del(struct creg *c, const char *full);
void creg_clear(struct creg *c);
/* Forgets every session of node (it left the cluster). */
void creg_drop_node(struct creg *c, const char *node);
/* The record of full, or NULL. */
const struct creg_rec *creg_get(const struct creg *c, const char *full);
/* Each session of a user: fn(ud, resource, record); bare may have none. */
void creg_each_of(const struct creg *c, const char *bare,
		  void (*fn)(void *ud, const char *resource, const struct creg_rec *r), void *ud);
/* Every session: fn(ud, full, record). */
void creg_each(const struct creg *c,
	       void (*fn)(void *ud, const char *full, const struct creg_rec *r), void *ud);
/* Sessions per node name: fn(ud, node, count) for every node that has
 * at least one. */
size_t creg_count_node(const struct creg *c, const char *node);

/* The other nodes (not self) that should get a copy of what is sent to
 * the bare JID: for a message (RFC 6121 §8.5.2.1.1, as the single node
 * does: every available resource of non-negative priority), nodes with
 * such a resource; for presence (every available resource), nodes with
 * an available resource. Distinct names into out (up to max), the count
 * returned. */
size_t creg_nodes_for(const struct creg *c, const char *bare, const char *self, bool message,
		      char out[][CREG_NODE_MAX], size_t max);

/* A forwarded stanza's envelope, read from a stream entry's field list
 * (names and values, n of each). The stanza is parsed (taken by the
 * caller: xml_free) and must be a message, presence or iq with a to;
 * false with why for anything else. */
struct cluster_env {
	char origin[CREG_NODE_MAX];
	bool local_only;
	struct xml_node *stanza;
};
bool cluster_env_parse(const char *const *names, const size_t *nlens, const char *const *values,
		       const size_t *vlens, size_t n, struct cluster_env *e, char *why,
		       size_t whylen);

#endif

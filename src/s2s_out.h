/* Outbound server-to-server streams (SPEC §3, outbound): one per (local,
 * remote) domain pair, connected through proxy_fqdn or the SRV targets,
 * secured and authenticated with the most preferred method the partner's
 * settings allow and the peer offers, never anything weaker. */
#ifndef FG_S2S_OUT_H
#define FG_S2S_OUT_H

#include "policy.h"
#include "xml.h"

#include <stdbool.h>

struct server;
struct s2s_out;

/* Called once per stanza: sent (ok) or not, with the steps taken so far,
 * one per line, and on failure the reason an admin can act on last. */
typedef void (*s2s_out_done)(void *ud, bool ok, const char *report);

/* Queues stanza (taken) for remote from local and starts a stream if none
 * is under way. done may be NULL. Returns FG_OK, or FG_LIMIT when the
 * queue for that domain is full (stanza freed, done not called). */
int s2s_out_send(struct server *srv, const char *local, const char *remote, struct xml_node *stanza,
		 s2s_out_done done, void *ud);

/* The receiving role of Server Dialback (XEP-0220): asks remote's
 * authoritative server whether key is valid for (local, remote, id), over
 * the outbound stream to remote. cb runs exactly once, with verdict
 * DB_VALID, DB_INVALID or DB_ERROR (why says what went wrong). */
typedef void (*s2s_out_verified)(void *ud, int verdict, const char *why);
int s2s_out_verify(struct server *srv, const char *local, const char *remote, const char *id,
		   const char *key, s2s_out_verified cb, void *ud);

/* Closes every outbound stream to one of the partner's domains: its
 * settings changed. NULL closes all (shutdown). */
void s2s_out_close_domain(struct server *srv, const char *domain, const char *reason);
/* Outbound streams under way or up (failed ones not counted), in all or
 * to one partner (any of its domains). */
unsigned s2s_out_count(const struct partner *p);
/* Forgets the retry delay of a domain: its partner record changed, so the
 * next stanza tries at once. */
void s2s_out_reset_backoff(const char *domain);
/* Appends a `fedgate status` row (json_t object) per outbound stream to
 * rows (a json_t array). */
void s2s_out_status(void *rows);
/* Frees everything at once, without callbacks (final exit). */
void s2s_out_free_all(struct server *srv);

#endif

/* The XMPP layer's context: what its streams, routes and local-user
 * subsystems share while the daemon runs. The program (app/serve.c) fills
 * the borrowed parts and registers its hooks; each subsystem of this layer
 * owns the state it keeps here (named beside each field) and nothing else
 * reads it directly. */
#ifndef FG_XMPP_H
#define FG_XMPP_H

#include <event2/event.h>
#include <openssl/ssl.h>
#include <stdbool.h>

struct dns;
struct fg_conf;
struct history;
struct live;
struct mam_state;
struct partner;
struct routes;
struct s2s_out;
struct session;
struct store;
struct stream;
struct strmap;
struct throttle;
struct xml_node;

struct jid_cache;
struct caps_cache;
struct pep;

struct xmpp_server {
	/* borrowed from the program */
	struct event_base *base;
	const struct fg_conf *conf;
	SSL_CTX *tls;	     /* inbound streams: our certificate as server */
	SSL_CTX *tls_client; /* outbound s2s: our certificate as client */
	struct dns *dns;     /* SRV and address lookups for s2s-out */
	struct store *store; /* the store thread */
	struct live *live;   /* partners, gateway settings, accounts (core/live.h) */
	bool stopping;	     /* set by the program: nothing new starts */
	/* Called when stopping and the last stream, inbound or outbound, is
	 * gone (the program ends its loop). */
	void (*drained)(struct xmpp_server *srv);
	/* The router's way out, registered by the program (router_route and
	 * router_bounce, router.h), so that the files the router itself calls
	 * (presence, roster, offline storage, services, routes) can send a
	 * stanza or answer its sender with an error without including it. */
	void (*route)(struct xmpp_server *srv, struct xml_node *stanza);
	void (*bounce)(struct xmpp_server *srv, struct xml_node *stanza, const char *type,
		       const char *condition, const char *text);
	/* A stanza the partner sent on our outbound stream (local -> remote)
	 * that it made bidirectional (XEP-0288): s2s_in.c's path for every
	 * partner stanza (s2s_in_from_outbound), registered by the program so
	 * that s2s_out.c, below s2s_in.c, can use it. st is taken; false:
	 * refused, end the stream with *condition and *text. */
	bool (*partner_stanza)(struct xmpp_server *srv, const char *local, const char *remote,
			       struct xml_node *st, const char **condition, const char **text);
	/* A bound session ended (session.c calls it once it left the
	 * registry); presence.c registers it to send unavailable presence. */
	void (*session_ended)(struct xmpp_server *srv, struct session *sess);

	/* stream.c: every live inbound stream, newest first */
	struct stream *streams;
	unsigned nstreams;
	/* stream.c: the stream whose stanza is being routed, which a full
	 * recipient holds (xmpp_hold_feeder); NULL between stanzas */
	struct stream *feeding;
	/* s2s_out.c: the outbound stream whose peer's stanza is being routed
	 * (XEP-0288), held like an inbound feeder (xmpp_hold_feeder) through
	 * the two hooks s2s_out.c registers; NULL between stanzas */
	struct s2s_out *feeding_out;
	void (*hold_out)(struct s2s_out *o, const void *by);
	void (*release_out)(struct xmpp_server *srv, const void *by);
	/* s2s_out.c: every outbound stream still alive, closing ones too (the
	 * program waits for them at shutdown and frees what is left) */
	struct s2s_out *outs;
	unsigned nouts;
	/* route.c: one route per (local, remote) domain pair */
	struct routes *routes;
	/* router.c: stanza addresses kept prepared (core/jid_cache.h) */
	struct jid_cache *jids;
	/* session.c: bound sessions by bare JID */
	struct strmap *sessions;
	unsigned nsessions;
	/* session.c: resumable sessions by XEP-0198 token */
	struct strmap *sm_ids;
	/* c2s.c: the sweep that pings idle clients (XEP-0199) */
	struct event *c2s_ping;
	/* c2s.c: recent login failures by address and (address, account) */
	struct throttle *auth_throttle;
	/* offline.c: messages on their way to the store, and the users whose
	 * offline storage was found full (until they sign in) */
	unsigned offline_in_flight;
	struct strmap *offline_full;
	/* roster.c: bare JID -> roster */
	struct strmap *rosters;
	/* blocking.c: bare JID -> blocklist (XEP-0191), for users who block */
	struct strmap *blocklists;
	/* refused.c: non-partner domains that tried to federate, by domain */
	struct strmap *refused;
	/* history.c: each partner's last 24 hours (made by the program) */
	struct history *history;
	/* presence.c: the periodic re-probe of remote contacts */
	struct event *refresh;
	/* mam.c: archive rows on their way to the store, the expiry timer */
	struct mam_state *mam;
	/* caps.c: entity capabilities by verification string, queries out */
	struct caps_cache *caps;
	/* cluster.c: the link to the other nodes (Redis), NULL on a single
	 * node ([cluster] redis empty), and the hooks it registers when it
	 * starts (NULL otherwise), through which the files it calls itself
	 * (session.c, presence.c) tell it of a bound session's registration,
	 * presence change or end (gone), and ask whether a user has an
	 * available resource on another node. */
	struct cluster *cluster;
	void (*cluster_session)(struct xmpp_server *srv, struct session *s, bool gone);
	bool (*cluster_elsewhere)(struct xmpp_server *srv, const char *bare);
	/* ... and, for the connection limits (route.c, s2s_in.c), how many s2s
	 * streams with partner p (NULL: all) the other nodes hold. */
	unsigned (*cluster_s2s)(const struct xmpp_server *srv, const struct partner *p);
	/* The stream entry (a stanza another node forwarded) being routed
	 * now, NULL between them: a session with stream management that keeps
	 * a copy of it for its client tags the copy with it and counts
	 * cluster_held, then tells cluster_settled when the client acknowledged
	 * the copy or it was routed again; only then is the entry removed
	 * from Redis (so a node that dies before loses nothing it held). */
	const char *cluster_entry;
	unsigned cluster_held;
	void (*cluster_settled)(struct xmpp_server *srv, const char *entry);
	/* A copy of presence st (not taken), from the user's resource from,
	 * for each available resource of the user (bare) on another node. */
	void (*cluster_to_own)(struct xmpp_server *srv, const struct xml_node *st, const char *from,
			       const char *bare);
	/* Message carbons (XEP-0280, carbons.c) for the user's sessions on
	 * other nodes: msg (not taken) wrapped in KIND ("sent", "received")
	 * for each of them but except (a full JID, may be NULL), and, when
	 * bare_delivery, but those that get msg itself (available, priority
	 * not negative); each delivered there only if it asked for carbons. */
	void (*cluster_carbons)(struct xmpp_server *srv, const struct xml_node *msg,
				const char *bare, const char *kind, const char *except,
				bool bare_delivery);
	/* A user's roster change reached the store (roster.c): the other
	 * nodes read that roster again. */
	void (*roster_saved)(struct xmpp_server *srv, const char *user);
	/* A message for user was stored offline (offline.c): the other nodes
	 * hand it to user's available session there, if any (the registry's
	 * window: this node may not have heard of it yet). */
	void (*offline_stored)(struct xmpp_server *srv, const char *user);
	/* pep.c: who of each account's contacts is online with which caps,
	 * by account (made when the first contact shows capabilities) */
	struct pep *pep;
};

/* A new inbound stream joins the list. */
void xmpp_stream_added(struct xmpp_server *srv, struct stream *s);
/* Called by a stream when it is gone, so the layer forgets it. */
void xmpp_stream_gone(struct xmpp_server *srv, struct stream *s);
/* Authenticated inbound s2s streams in all (p NULL) or from one partner's
 * domains: what the connection limits count. */
unsigned xmpp_s2s_in_count(const struct xmpp_server *srv, const struct partner *p);
/* Streams of a role ("c2s", "s2s-in") not authenticated yet, in all (peer
 * NULL) or from one address, and the oldest of them: the pre-
 * authentication caps ([limits] preauth_streams*) count apart, so that
 * streams that never authenticate cannot crowd out those that do. */
struct stream_role;
unsigned xmpp_preauth_count(const struct xmpp_server *srv, const struct stream_role *role,
			    const char *peer);
struct stream *xmpp_oldest_preauth(struct xmpp_server *srv, const struct stream_role *role);
/* Live streams whose peer has this address. */
unsigned xmpp_streams_from(const struct xmpp_server *srv, const char *peer);
/* Back-pressure. A recipient (a stream, a route: by is its address) whose
 * output is full holds the inbound stream whose stanza is being routed, so
 * that it reads nothing more until the recipient has room; the recipient
 * releases what it held when it drains or goes away. */
void xmpp_hold_feeder(struct xmpp_server *srv, const void *by);
void xmpp_release_held(struct xmpp_server *srv, const void *by);
/* Stopping and no stream of either direction left: calls drained. */
void xmpp_check_drained(struct xmpp_server *srv);
/* Frees every stream still open, without callbacks (final exit). */
void xmpp_free_streams(struct xmpp_server *srv);

#endif

/* Configuration: fedgate.conf (INI) read into a typed table of keys. */
#ifndef FG_CONF_H
#define FG_CONF_H

#include <stddef.h>
#include <stdio.h>

/* A comma-separated list value ("a, b" -> {"a","b"}). */
struct conf_list {
	char **v;
	size_t n;
};

struct fg_conf {
	char *path; /* the file that was read, as given */
	char *dir;  /* its folder: relative paths below are resolved against it */

	/* [server] */
	struct conf_list domains; /* local domains, prepared (lower-case, IDNA) */
	char *server_user;	  /* "" = stay who started us (privs.c) */
	char *server_group;	  /* "" = the user's primary group */
	int server_run_as_root;	  /* bool: root without user is accepted */

	/* [tls] -- paths already made absolute */
	char *tls_certificate;
	char *tls_key;
	char *tls_ca_file;	      /* NULL or "" = system trust store */
	unsigned tls_session_tickets; /* seconds a ticket lasts; 0 = no resumption */

	/* [listen] -- "address:port" entries, IPv6 as "[::1]:5269" */
	struct conf_list listen_s2s;
	struct conf_list listen_c2s;
	struct conf_list listen_s2s_tls; /* Direct TLS (XEP-0368) */
	struct conf_list listen_c2s_tls;
	struct conf_list listen_admin;
	char *listen_control; /* Unix socket path, absolute */

	/* [dns] */
	char *dns_resolv_conf;	/* absolute */
	char *dns_trust_anchor; /* DNSSEC trust anchors for DANE; "" = none; absolute */

	/* [store] */
	char *store_path;	  /* absolute; the SQLite file (backend sqlite) */
	char *store_backend;	  /* "sqlite" (default) | "postgresql" */
	char *store_dsn;	  /* libpq connection string (backend postgresql); may hold a
				    password: never logged or printed */
	unsigned store_pool_size; /* PostgreSQL connections, default 4 */

	/* [cluster] -- several nodes serving the same domains (PostgreSQL + Redis) */
	char *cluster_node;	       /* this node's name; "" = the host name */
	char *cluster_redis;	       /* "HOST:PORT" or "unix:PATH"; "" = a single node */
	unsigned cluster_heartbeat;    /* seconds between a node's heartbeats, default 1 */
	unsigned cluster_node_timeout; /* seconds without heartbeat before a node is gone */

	/* [log] */
	int log_level;	/* enum log_level */
	char *log_file; /* NULL or "" = standard error; absolute */

	/* [limits] -- peer-controlled sizes; every one is capped */
	size_t s2s_stanza_size;	     /* bytes, default 512 KiB */
	size_t c2s_stanza_size;	     /* bytes, default 256 KiB */
	size_t preauth_stanza_size;  /* bytes before authentication, default 10 KiB */
	unsigned element_depth;	     /* default 32 */
	unsigned element_attributes; /* attributes per element, default 64 */
	size_t output_queue;	     /* bytes pending to one peer, default 1 MiB:
				       beyond half, stanzas wait and their
				       senders are held; beyond it, diverted */
	unsigned connections_per_ip; /* default 64 */
	unsigned preauth_per_ip;     /* unauthenticated streams per address and role, default 8 */
	unsigned preauth_streams;    /* unauthenticated streams per role in all, default 200 */

	/* [timeouts] -- seconds */
	unsigned timeout_stream_header;	 /* accept/restart -> header, default 30 */
	unsigned timeout_tls_handshake;	 /* default 30 */
	unsigned timeout_authentication; /* accept -> authenticated, default 60 */
	unsigned timeout_stalled_output; /* output_queue full without progress, default 60 */

	/* [users] */
	unsigned users_scram_iterations; /* PBKDF2 rounds for new passwords, default 4096 */
	unsigned users_offline_limit;	 /* chat messages kept per offline user; 0 = off */
	int users_vcard;		 /* bool: XEP-0054 vCard storage, default yes */
	int users_software_version;	 /* bool: answer XEP-0092, default yes */
	char *users_software_version_os; /* "yes" = uname, "no"/"" = none, else the text */
	/* XEP-0198 and XEP-0199 (xmpp/session.c, xmpp/c2s.c) */
	unsigned users_resumption_window; /* seconds a cut session waits; 0 = no resumption */
	unsigned users_resumption_queue;  /* unacknowledged stanzas kept per session */
	unsigned users_ping_interval;	  /* seconds of client silence before a ping; 0 = off */
	unsigned users_ping_timeout;	  /* seconds for its answer */

	/* [archive] -- XEP-0313 (xmpp/mam.c) */
	int archive_enabled;	       /* bool, default yes */
	unsigned archive_retention;    /* days; 0 = forever, default 365 */
	unsigned archive_max_per_user; /* messages; 0 = no limit, default 100000 */
	char *archive_default;	       /* always | roster | never */

	/* [pep] -- personal eventing (XEP-0163) */
	unsigned pep_item_bytes; /* largest item, serialized, default 64 KiB */
	unsigned pep_max_items;	 /* items per node at most, default 256 */
	unsigned pep_max_nodes;	 /* nodes per account at most, default 128 */

	/* [c2s] */
	int c2s_require_tls;		  /* bool: STARTTLS before SASL, default yes */
	unsigned c2s_auth_failures;	  /* from one address before it is refused, default 10 */
	unsigned c2s_auth_failure_window; /* seconds an address's failures are kept, default 300 */
	unsigned c2s_auth_delay_max;	  /* seconds, cap of the failure delay; 0 = none */

	/* [admin] -- the HTTP API and control panel */
	char *admin_certificate;	 /* NULL or "" = plain HTTP (loopback only) */
	char *admin_key;		 /* absolute */
	unsigned admin_session_lifetime; /* seconds a session lives unused, default 3600 */
	size_t admin_max_body;		 /* bytes, default 1 MiB */
	unsigned admin_signin_attempts;	 /* failures from one address before 429, default 10 */
	unsigned admin_signin_window;	 /* seconds an address's failures are kept, default 300 */
	unsigned admin_signin_delay_max; /* seconds, cap of the failure delay; 0 = none */
};

/* Reads and validates the file. On any error writes every error as
 * "FILE:LINE: message" (one per line, in line order; "FILE: message" when
 * no line is at fault, e.g. a required key that is missing) to errs and
 * returns FG_ERR with *out NULL; on success returns FG_OK and a config that
 * conf_free() releases. Certificate files are not opened here. */
int conf_load(const char *path, struct fg_conf **out, FILE *errs);
/* A config with every default and domains = {"localhost"}; relative
 * default paths are resolved against dir. */
int conf_defaults(const char *dir, struct fg_conf **out);
/* The same with domains = {domain} (prepared here); FG_INVAL when domain is
 * not a valid local domain. conf_defaults() is this with "localhost". */
int conf_defaults_for(const char *dir, const char *domain, struct fg_conf **out);
void conf_free(struct fg_conf **c);
/* Prints the effective configuration as INI, every key of the table, with
 * its unit and whether it is the default, in a form conf_load() accepts. */
void conf_print(const struct fg_conf *c, FILE *f);
/* The config path to use: -c value if given, else $FEDGATE_CONF, else
 * FG_CONF_DEFAULT, SYSCONFDIR/fedgate/fedgate.conf (/etc/fedgate/fedgate.conf
 * unless CMake was told otherwise). */
const char *conf_default_path(const char *given);
/* True when name (already prepared) is one of the local domains. */
int conf_is_local_domain(const struct fg_conf *c, const char *name);

/* The control socket a file names ([listen] control, made absolute, or the
 * default), even when other keys of the file have errors: `fedgate reload`
 * still reaches the daemon, which then reports them. FG_OK, FG_NOTFOUND
 * when the file cannot be opened, FG_ERR otherwise. */
int conf_peek_control(const char *path, char *out, size_t len);
/* Reload: compares the running configuration with a newly read one, key
 * by key, in table order, and calls fn (may be NULL) for each key whose
 * value differs, with both values as conf_print() writes them and whether
 * it applies live. A key that needs a restart (local domains, listeners,
 * the control socket, the store, the resolver) gets its running value back
 * in next, so that next describes what actually runs. Returns the number of
 * keys that differ. */
typedef void (*conf_change_fn)(void *ud, const char *section, const char *name, const char *running,
			       const char *read, int live);
size_t conf_reconcile(struct fg_conf *run, struct fg_conf *next, conf_change_fn fn, void *ud);

/* `fedgate check --config`: prints the effective configuration to out and
 * returns 0, or prints every error to err and returns 1. Stricter than
 * conf_load(): the files serve will read must be readable and the [tls]
 * certificate and key must load, match and be in date. The health check
 * (`fedgate check`, app/health.c) goes further from conf_load(). */
int conf_check_main(const char *path, FILE *out, FILE *err);

#endif

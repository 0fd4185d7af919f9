/* Configuration: fedgate.conf read with inih into a typed table of keys.
 *
 * The table below is the single description of every key: the parser, the
 * defaults, `fedgate check`, conf_print() and the man page all follow it.
 * Nothing is applied while reading; the raw text of each key is collected
 * first, then every key is parsed and checked in table order, so that every
 * error in a file is reported at once, each with its line. */
#include "conf.h"

#include "fg.h"
#include "jid.h"
#include "log.h"

#include <ini.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

#include <arpa/inet.h>
#include <assert.h>
#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <netdb.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

enum conf_type {
	CT_STRING,
	CT_PATH,      /* relative to the config file's folder, stored absolute */
	CT_UNIX_PATH, /* a path that must also fit a sockaddr_un */
	CT_DOMAINS,   /* comma-separated domains, each prepared */
	CT_ADDRS,     /* comma-separated numeric address:port */
	CT_BOOL,
	CT_INT,	     /* unsigned */
	CT_SIZE,     /* size_t, bytes, with optional unit */
	CT_DURATION, /* unsigned seconds, with optional unit */
	CT_LOG_LEVEL,
};

enum conf_unit { CU_NONE, CU_BYTES, CU_SECONDS };

#define CK_EMPTY_OK  0x1u /* an empty value means something (no listener, system store) */
#define CK_MUST_READ 0x2u /* `fedgate check` makes sure the file can be read */
#define CK_RESTART   0x4u /* a reload cannot apply it: it shapes sockets or files opened once */

/* Stands for the first local domain in a default ("certs/{domain}.pem"). */
#define DOMAIN_VAR "{domain}"

struct conf_key {
	const char *section;
	const char *name;
	enum conf_type type;
	enum conf_unit unit;
	unsigned flags;
	unsigned long long min, max; /* CT_INT, CT_SIZE, CT_DURATION */
	const char *def;	     /* parsed like file text; NULL = required */
	const char *example;	     /* for the "is required" message */
	const char *desc;
	size_t off;
};

#define KIB	 1024ULL
#define MIB	 (1024ULL * 1024ULL)
#define GIB	 (1024ULL * 1024ULL * 1024ULL)
#define F(field) offsetof(struct fg_conf, field)

static const struct conf_key keys[] = {
	{"server", "domains", CT_DOMAINS, CU_NONE, CK_RESTART, 0, 0, NULL, "contoso.test",
	 "the local domains fedgate serves, comma-separated", F(domains)},
	{"server", "user", CT_STRING, CU_NONE, CK_EMPTY_OK | CK_RESTART, 0, 0, "", NULL,
	 "account 'fedgate serve' switches to once its ports and files are open; empty = none",
	 F(server_user)},
	{"server", "group", CT_STRING, CU_NONE, CK_EMPTY_OK | CK_RESTART, 0, 0, "", NULL,
	 "group it switches to; empty = the user's own group", F(server_group)},
	{"server", "run_as_root", CT_BOOL, CU_NONE, CK_RESTART, 0, 0, "no", NULL,
	 "started as root without a user, keep running as root (a development machine)",
	 F(server_run_as_root)},
	{"tls", "certificate", CT_PATH, CU_NONE, CK_MUST_READ, 0, 0, "certs/" DOMAIN_VAR ".pem",
	 NULL, "certificate chain (PEM) presented to peers and clients", F(tls_certificate)},
	{"tls", "key", CT_PATH, CU_NONE, CK_MUST_READ, 0, 0, "certs/" DOMAIN_VAR ".key", NULL,
	 "private key (PEM, unencrypted) of the certificate", F(tls_key)},
	{"tls", "ca_file", CT_PATH, CU_NONE, CK_EMPTY_OK | CK_MUST_READ, 0, 0, "", NULL,
	 "trust anchors (PEM) for peers' certificates; empty = system store", F(tls_ca_file)},
	{"tls", "session_tickets", CT_DURATION, CU_SECONDS, 0, 0, 604800, "2h", NULL,
	 "TLS session resumption for clients and peers: how long a ticket lets them skip the "
	 "full handshake (keys rotate as often, in memory only); 0 = never",
	 F(tls_session_tickets)},
	{"listen", "s2s", CT_ADDRS, CU_NONE, CK_EMPTY_OK | CK_RESTART, 0, 0, "0.0.0.0:5269", NULL,
	 "server-to-server listeners, address:port list; empty = none", F(listen_s2s)},
	{"listen", "c2s", CT_ADDRS, CU_NONE, CK_EMPTY_OK | CK_RESTART, 0, 0, "0.0.0.0:5222", NULL,
	 "client listeners, address:port list; empty = none", F(listen_c2s)},
	{"listen", "s2s_tls", CT_ADDRS, CU_NONE, CK_EMPTY_OK | CK_RESTART, 0, 0, "", NULL,
	 "server-to-server Direct TLS listeners (XEP-0368, TLS from the first byte, ALPN "
	 "xmpp-server; usually port 5270), address:port list; empty = none",
	 F(listen_s2s_tls)},
	{"listen", "c2s_tls", CT_ADDRS, CU_NONE, CK_EMPTY_OK | CK_RESTART, 0, 0, "", NULL,
	 "client Direct TLS listeners (XEP-0368, ALPN xmpp-client; usually port 5223), "
	 "address:port list; empty = none",
	 F(listen_c2s_tls)},
	{"listen", "admin", CT_ADDRS, CU_NONE, CK_EMPTY_OK | CK_RESTART, 0, 0, "127.0.0.1:5280",
	 NULL, "HTTP admin API and control panel listeners; empty = none", F(listen_admin)},
	{"listen", "control", CT_UNIX_PATH, CU_NONE, CK_RESTART, 0, 0, "var/fedgate.sock", NULL,
	 "Unix control socket used by the CLI", F(listen_control)},
	{"dns", "resolv_conf", CT_PATH, CU_NONE, CK_MUST_READ | CK_RESTART, 0, 0,
	 "/etc/resolv.conf", NULL,
	 "resolver settings; special-use TLDs (.test, .local) resolve through it too",
	 F(dns_resolv_conf)},
	{"dns", "trust_anchor", CT_PATH, CU_NONE, CK_EMPTY_OK | CK_RESTART, 0, 0,
	 "/usr/share/dns/root.key", NULL,
	 "DNSSEC trust anchors (DS or DNSKEY records, zone-file form) for DANE's TLSA lookups; "
	 "Debian's dns-root-data has the root's; empty = no DNSSEC, so no DANE",
	 F(dns_trust_anchor)},
	{"store", "path", CT_PATH, CU_NONE, CK_RESTART, 0, 0, "var/fedgate.db", NULL,
	 "the SQLite database file (backend sqlite)", F(store_path)},
	{"store", "backend", CT_STRING, CU_NONE, CK_RESTART, 0, 0, "sqlite", NULL,
	 "sqlite (one node, the file at path) or postgresql (the server at dsn; needed by a "
	 "cluster)",
	 F(store_backend)},
	{"store", "dsn", CT_STRING, CU_NONE, CK_EMPTY_OK | CK_RESTART, 0, 0, "", NULL,
	 "libpq connection string of the PostgreSQL database (backend postgresql), e.g. "
	 "host=/run/postgresql dbname=fedgate; a password here is never logged",
	 F(store_dsn)},
	{"store", "pool_size", CT_INT, CU_NONE, CK_RESTART, 1, 64, "4", NULL,
	 "PostgreSQL connections the store keeps (backend postgresql)", F(store_pool_size)},
	{"cluster", "node", CT_STRING, CU_NONE, CK_EMPTY_OK | CK_RESTART, 0, 0, "", NULL,
	 "this node's name, unique in the cluster; empty = the host name", F(cluster_node)},
	{"cluster", "redis", CT_STRING, CU_NONE, CK_EMPTY_OK | CK_RESTART, 0, 0, "", NULL,
	 "the Redis server the nodes share, HOST:PORT or unix:PATH; empty = a single node",
	 F(cluster_redis)},
	{"cluster", "heartbeat", CT_DURATION, CU_SECONDS, CK_RESTART, 1, 60, "1s", NULL,
	 "how often a node tells the others it is alive", F(cluster_heartbeat)},
	{"cluster", "node_timeout", CT_DURATION, CU_SECONDS, CK_RESTART, 2, 600, "5s", NULL,
	 "a node silent this long is taken as gone: its sessions are forgotten and what was "
	 "forwarded to it is routed again",
	 F(cluster_node_timeout)},
	{"log", "level", CT_LOG_LEVEL, CU_NONE, 0, 0, 0, "info", NULL,
	 "least severe level logged: error, warning, info or debug", F(log_level)},
	{"log", "file", CT_PATH, CU_NONE, CK_EMPTY_OK, 0, 0, "", NULL,
	 "file the daemon appends its log to, reopened on SIGUSR1 and reload; empty = stderr",
	 F(log_file)},
	{"limits", "s2s_stanza_size", CT_SIZE, CU_BYTES, 0, KIB, 16 * MIB, "512KiB", NULL,
	 "largest stanza accepted from an authenticated server", F(s2s_stanza_size)},
	{"limits", "c2s_stanza_size", CT_SIZE, CU_BYTES, 0, KIB, 16 * MIB, "256KiB", NULL,
	 "largest stanza accepted from an authenticated client", F(c2s_stanza_size)},
	{"limits", "preauth_stanza_size", CT_SIZE, CU_BYTES, 0, KIB, MIB, "10KiB", NULL,
	 "largest stanza accepted before the peer is authenticated", F(preauth_stanza_size)},
	{"limits", "element_depth", CT_INT, CU_NONE, 0, 4, 1000, "32", NULL,
	 "deepest element nesting accepted in a stanza", F(element_depth)},
	{"limits", "element_attributes", CT_INT, CU_NONE, 0, 4, 1000, "64", NULL,
	 "most attributes accepted on one element", F(element_attributes)},
	{"limits", "output_queue", CT_SIZE, CU_BYTES, 0, 16 * KIB, 256 * MIB, "1MiB", NULL,
	 "bytes pending to one peer (stream or HTTP/control connection); past half of it stanzas "
	 "wait and the streams feeding them are paused, past it they are stored offline or "
	 "bounced",
	 F(output_queue)},
	{"limits", "connections_per_ip", CT_INT, CU_NONE, 0, 1, 100000, "64", NULL,
	 "simultaneous connections accepted from one IP address", F(connections_per_ip)},
	{"limits", "preauth_streams_per_ip", CT_INT, CU_NONE, 0, 1, 100000, "8", NULL,
	 "streams not yet authenticated from one IP address, per kind (c2s, s2s); more are "
	 "refused",
	 F(preauth_per_ip)},
	{"limits", "preauth_streams", CT_INT, CU_NONE, 0, 1, 1000000, "200", NULL,
	 "streams not yet authenticated in all, per kind (c2s, s2s); a new one then closes the "
	 "oldest",
	 F(preauth_streams)},
	{"timeouts", "stream_header", CT_DURATION, CU_SECONDS, 0, 1, 86400, "30s", NULL,
	 "from connect or stream restart until the peer's stream header", F(timeout_stream_header)},
	{"timeouts", "tls_handshake", CT_DURATION, CU_SECONDS, 0, 1, 86400, "30s", NULL,
	 "from <proceed/> until the TLS handshake is done", F(timeout_tls_handshake)},
	{"timeouts", "authentication", CT_DURATION, CU_SECONDS, 0, 1, 86400, "60s", NULL,
	 "from connect until the peer is authenticated", F(timeout_authentication)},
	{"timeouts", "stalled_output", CT_DURATION, CU_SECONDS, 0, 1, 86400, "60s", NULL,
	 "a peer that reads nothing this long while stanzas wait for it is closed",
	 F(timeout_stalled_output)},
	{"users", "scram_iterations", CT_INT, CU_NONE, 0, 4096, 10000000, "4096", NULL,
	 "PBKDF2 iterations for new passwords (SCRAM-SHA-1 and -256)", F(users_scram_iterations)},
	{"users", "offline_limit", CT_INT, CU_NONE, 0, 0, 100000, "100", NULL,
	 "chat messages kept per offline user; 0 = offline storage off", F(users_offline_limit)},
	{"users", "vcard", CT_BOOL, CU_NONE, 0, 0, 0, "yes", NULL,
	 "store and serve vCards (XEP-0054)", F(users_vcard)},
	{"users", "software_version", CT_BOOL, CU_NONE, 0, 0, 0, "yes", NULL,
	 "answer software version queries (XEP-0092)", F(users_software_version)},
	{"users", "software_version_os", CT_STRING, CU_NONE, CK_EMPTY_OK, 0, 0, "yes", NULL,
	 "the <os/> of software version answers: yes = the kernel's name (uname), no or empty = "
	 "none, other text = that text",
	 F(users_software_version_os)},
	{"users", "resumption_window", CT_DURATION, CU_SECONDS, 0, 0, 86400, "300s", NULL,
	 "a client's session cut without a clean close may be resumed (XEP-0198) this long; "
	 "0 = no resumption",
	 F(users_resumption_window)},
	{"users", "resumption_queue", CT_INT, CU_NONE, 0, 10, 100000, "500", NULL,
	 "stanzas a session keeps until its client acknowledges them (XEP-0198); past it they "
	 "go offline or bounce",
	 F(users_resumption_queue)},
	{"users", "ping_interval", CT_DURATION, CU_SECONDS, 0, 0, 86400, "300s", NULL,
	 "a client silent this long is pinged (XEP-0199); 0 = never", F(users_ping_interval)},
	{"users", "ping_timeout", CT_DURATION, CU_SECONDS, 0, 1, 3600, "60s", NULL,
	 "a pinged client that sends nothing this long is taken as gone", F(users_ping_timeout)},
	{"archive", "enabled", CT_BOOL, CU_NONE, 0, 0, 0, "yes", NULL,
	 "keep each user's messages for their clients to page through (XEP-0313)",
	 F(archive_enabled)},
	{"archive", "retention", CT_INT, CU_NONE, 0, 0, 36500, "365", NULL,
	 "days an archived message is kept; 0 = forever", F(archive_retention)},
	{"archive", "max_per_user", CT_INT, CU_NONE, 0, 0, 100000000, "100000", NULL,
	 "messages kept per user, the oldest going first; 0 = no limit", F(archive_max_per_user)},
	{"archive", "default", CT_STRING, CU_NONE, 0, 0, 0, "always", NULL,
	 "what is archived for a user who set no preference: always, roster (only contacts) or "
	 "never",
	 F(archive_default)},
	{"pep", "item_bytes", CT_INT, CU_NONE, 0, 1024, 1048576, "65536", NULL,
	 "largest personal eventing item (an avatar's data, an OMEMO bundle), serialized",
	 F(pep_item_bytes)},
	{"pep", "max_items", CT_INT, CU_NONE, 0, 1, 10000, "256", NULL,
	 "most items one personal eventing node keeps (what max_items=max means)",
	 F(pep_max_items)},
	{"pep", "max_nodes", CT_INT, CU_NONE, 0, 1, 10000, "128", NULL,
	 "most personal eventing nodes per account (OMEMO makes one per device)", F(pep_max_nodes)},
	{"c2s", "require_tls", CT_BOOL, CU_NONE, 0, 0, 0, "yes", NULL,
	 "clients must STARTTLS before SASL", F(c2s_require_tls)},
	{"c2s", "auth_failures", CT_INT, CU_NONE, 0, 1, 1000, "10", NULL,
	 "failed logins from one address after which that address (only) is refused",
	 F(c2s_auth_failures)},
	{"c2s", "auth_failure_window", CT_DURATION, CU_SECONDS, 0, 1, 86400, "300s", NULL,
	 "an address's failed logins are forgotten this long after its last one",
	 F(c2s_auth_failure_window)},
	{"c2s", "auth_delay_max", CT_DURATION, CU_SECONDS, 0, 0, 300, "30s", NULL,
	 "a failed login is answered after 1 s, 2 s, 4 s ... per address, up to this; 0 = at once",
	 F(c2s_auth_delay_max)},
	{"admin", "certificate", CT_PATH, CU_NONE, CK_EMPTY_OK | CK_MUST_READ, 0, 0, "", NULL,
	 "certificate chain (PEM) of the HTTP admin listener; empty = plain HTTP (loopback only)",
	 F(admin_certificate)},
	{"admin", "key", CT_PATH, CU_NONE, CK_EMPTY_OK | CK_MUST_READ, 0, 0, "", NULL,
	 "private key (PEM, unencrypted) of [admin] certificate", F(admin_key)},
	{"admin", "session_lifetime", CT_DURATION, CU_SECONDS, 0, 60, 7 * 86400, "1h", NULL,
	 "a control panel session ends when unused this long", F(admin_session_lifetime)},
	{"admin", "max_body", CT_SIZE, CU_BYTES, 0, KIB, 64 * MIB, "1MiB", NULL,
	 "largest HTTP request body accepted (413 beyond)", F(admin_max_body)},
	{"admin", "signin_attempts", CT_INT, CU_NONE, 0, 1, 1000, "10", NULL,
	 "failed sign-ins from one address after which that address (only) gets 429",
	 F(admin_signin_attempts)},
	{"admin", "signin_window", CT_DURATION, CU_SECONDS, 0, 1, 86400, "300s", NULL,
	 "an address's failed sign-ins are forgotten this long after its last one",
	 F(admin_signin_window)},
	{"admin", "signin_delay_max", CT_DURATION, CU_SECONDS, 0, 0, 60, "10s", NULL,
	 "a failed sign-in is answered after 1 s, 2 s, 4 s ... per address, up to this; 0 = at "
	 "once",
	 F(admin_signin_delay_max)},
};

#define NKEYS FG_ARRAY_LEN(keys)

/* Pointer to the field a key describes. */
#define FIELD(c, k, T)	((T *)(void *)((char *)(c) + (k)->off))
#define CFIELD(c, k, T) ((const T *)(const void *)((const char *)(c) + (k)->off))

struct conf_err {
	int line; /* 0 = about the file as a whole or a key it does not set */
	char *msg;
};

struct setting {
	bool given;
	int line;
	char *raw; /* continuation lines are joined with ',' */
};

/* State of one read, passed to inih as both the reader's stream and the
 * handler's user pointer, since inih has no other way to reach us. */
struct parser {
	FILE *f;
	char *buf; /* getline() buffer */
	size_t cap;
	int lineno;	      /* of the line inih is working on */
	bool indented;	      /* that line starts with white space */
	bool seen_header;     /* a [section] line has been read */
	char last_name[64];   /* inih's "previous name": an indented line continues it */
	struct setting *cont; /* where continuation lines go; NULL = drop them */
	const struct conf_key *cont_key;
	int cont_first_line;
	struct setting set[NKEYS];
	struct conf_err *errs;
	size_t nerrs, errcap;
	bool nomem;
};

/* ---- errors ---- */

__attribute__((format(printf, 3, 0))) static void errv(struct parser *p, int line, const char *fmt,
						       va_list ap)
{
	char *msg = NULL;

	if (p->nerrs == p->errcap) {
		size_t ncap = p->errcap ? p->errcap * 2 : 8;
		struct conf_err *n = realloc(p->errs, ncap * sizeof(*n));
		if (n == NULL) {
			p->nomem = true;
			return;
		}
		p->errs = n;
		p->errcap = ncap;
	}
	if (vasprintf(&msg, fmt, ap) < 0) {
		p->nomem = true;
		return;
	}
	p->errs[p->nerrs].line = line;
	p->errs[p->nerrs].msg = msg;
	p->nerrs++;
}

__attribute__((format(printf, 3, 4))) static void err(struct parser *p, int line, const char *fmt,
						      ...)
{
	va_list ap;
	va_start(ap, fmt);
	errv(p, line, fmt, ap);
	va_end(ap);
}

/* An error about key k, prefixed "[section] key: ". */
__attribute__((format(printf, 4, 5))) static void kerr(struct parser *p, const struct conf_key *k,
						       int line, const char *fmt, ...)
{
	char *msg = NULL;
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vasprintf(&msg, fmt, ap);
	va_end(ap);
	if (n < 0) {
		p->nomem = true;
		return;
	}
	err(p, line, "[%s] %s: %s", k->section, k->name, msg);
	free(msg);
}

/* Sorted by line, stable, so the report reads top to bottom. */
static void errs_print(struct parser *p, const char *path, FILE *f)
{
	for (size_t i = 1; i < p->nerrs; i++) {
		struct conf_err e = p->errs[i];
		size_t j = i;
		while (j > 0 && p->errs[j - 1].line > e.line) {
			p->errs[j] = p->errs[j - 1];
			j--;
		}
		p->errs[j] = e;
	}
	if (f == NULL)
		return;
	for (size_t i = 0; i < p->nerrs; i++) {
		if (p->errs[i].line > 0)
			fprintf(f, "%s:%d: %s\n", path, p->errs[i].line, p->errs[i].msg);
		else
			fprintf(f, "%s: %s\n", path, p->errs[i].msg);
	}
}

static void parser_clear(struct parser *p)
{
	free(p->buf);
	for (size_t i = 0; i < NKEYS; i++)
		free(p->set[i].raw);
	for (size_t i = 0; i < p->nerrs; i++)
		free(p->errs[i].msg);
	free(p->errs);
	memset(p, 0, sizeof(*p));
}

/* ---- names and suggestions ---- */

static bool section_known(const char *s)
{
	for (size_t i = 0; i < NKEYS; i++)
		if (strcmp(keys[i].section, s) == 0)
			return true;
	return false;
}

static const struct conf_key *key_find(const char *section, const char *name)
{
	for (size_t i = 0; i < NKEYS; i++)
		if (strcmp(keys[i].section, section) == 0 && strcmp(keys[i].name, name) == 0)
			return &keys[i];
	return NULL;
}

/* Case-insensitive Levenshtein distance, capped: names longer than the
 * buffer are simply "far". */
static size_t edit_distance(const char *a, const char *b)
{
	size_t la = strlen(a), lb = strlen(b);
	size_t row[65];

	if (la > 64 || lb > 64)
		return SIZE_MAX;
	for (size_t j = 0; j <= lb; j++)
		row[j] = j;
	for (size_t i = 1; i <= la; i++) {
		size_t diag = row[0];
		row[0] = i;
		for (size_t j = 1; j <= lb; j++) {
			size_t up = row[j];
			size_t cost = tolower((unsigned char)a[i - 1]) !=
				      tolower((unsigned char)b[j - 1]);
			size_t best = diag + cost;
			if (up + 1 < best)
				best = up + 1;
			if (row[j - 1] + 1 < best)
				best = row[j - 1] + 1;
			row[j] = best;
			diag = up;
		}
	}
	return row[lb];
}

/* The closest section name within distance 2, or NULL. */
static const char *section_suggest(const char *s)
{
	const char *best = NULL;
	size_t bestd = 3;

	for (size_t i = 0; i < NKEYS; i++) {
		size_t d = edit_distance(s, keys[i].section);
		if (d < bestd) {
			bestd = d;
			best = keys[i].section;
		}
	}
	return best;
}

/* "server, tls, ..." or the keys of one section. */
static char *names_list(const char *section)
{
	char *s = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&s, &len);
	bool first = true;

	if (f == NULL)
		return NULL;
	for (size_t i = 0; i < NKEYS; i++) {
		const char *name;
		if (section != NULL) {
			if (strcmp(keys[i].section, section) != 0)
				continue;
			name = keys[i].name;
		} else {
			if (i > 0 && strcmp(keys[i - 1].section, keys[i].section) == 0)
				continue;
			name = keys[i].section;
		}
		fprintf(f, "%s%s", first ? "" : ", ", name);
		first = false;
	}
	if (fclose(f) != 0) {
		free(s);
		return NULL;
	}
	return s;
}

static void unknown_section(struct parser *p, const char *name)
{
	const char *near = section_suggest(name);
	char *all = names_list(NULL);

	if (all == NULL) {
		p->nomem = true;
		return;
	}
	if (name[0] == '\0')
		err(p, p->lineno, "[]: empty section name; known sections: %s", all);
	else if (near != NULL)
		err(p, p->lineno, "[%s]: unknown section; did you mean [%s]?", name, near);
	else
		err(p, p->lineno, "[%s]: unknown section; known sections: %s", name, all);
	free(all);
}

static void unknown_key(struct parser *p, const char *section, const char *name)
{
	const struct conf_key *near = NULL, *elsewhere = NULL;
	size_t bestd = 3;
	char *all;

	if (name[0] == '\0') {
		err(p, p->lineno, "[%s]: a key name is missing before '='", section);
		return;
	}
	for (size_t i = 0; i < NKEYS; i++) {
		if (strcmp(keys[i].section, section) != 0) {
			if (strcmp(keys[i].name, name) == 0)
				elsewhere = &keys[i];
			continue;
		}
		size_t d = edit_distance(name, keys[i].name);
		if (d < bestd) {
			bestd = d;
			near = &keys[i];
		}
	}
	if (near != NULL) {
		err(p, p->lineno, "[%s] %s: unknown key; did you mean %s?", section, name,
		    near->name);
		return;
	}
	if (elsewhere != NULL) {
		err(p, p->lineno, "[%s] %s: unknown key here; it belongs in [%s]", section, name,
		    elsewhere->section);
		return;
	}
	all = names_list(section);
	if (all == NULL) {
		p->nomem = true;
		return;
	}
	err(p, p->lineno, "[%s] %s: unknown key; keys of [%s]: %s", section, name, section, all);
	free(all);
}

/* ---- reading: the inih reader and handler ---- */

/* inih's own scan (r55): the first of chars, or a ';' after white space,
 * which starts an inline comment. Mirrored so that the reader classifies a
 * line exactly as inih will parse it. */
static const char *find_chars_or_comment(const char *s, const char *chars)
{
	bool was_space = false;

	while (*s != '\0' && (chars == NULL || strchr(chars, *s) == NULL) &&
	       !(was_space && *s == ';')) {
		was_space = isspace((unsigned char)*s);
		s++;
	}
	return s;
}

/* Reports the line-level errors inih only counts (a section without ']',
 * a line without '='), and unknown sections, which inih never shows the
 * handler when they hold no keys. Sets what the handler needs to know
 * about the line. */
static void classify_line(struct parser *p, const char *line)
{
	const char *t = line, *end;

	while (isspace((unsigned char)*t))
		t++;
	p->indented = t != line;
	if (*t == '\0' || *t == ';' || *t == '#')
		return;
	if (p->indented && p->last_name[0] != '\0')
		return; /* inih continues the previous key's value */
	if (*t == '[') {
		end = find_chars_or_comment(t + 1, "]");
		if (*end != ']') {
			err(p, p->lineno, "section header has no closing ']'");
			return;
		}
		p->seen_header = true;
		p->last_name[0] = '\0';
		char name[64];
		size_t n = (size_t)(end - t - 1);
		if (n >= sizeof(name))
			n = sizeof(name) - 1;
		memcpy(name, t + 1, n);
		name[n] = '\0';
		if (!section_known(name))
			unknown_section(p, name);
		const char *rest = end + 1;
		while (isspace((unsigned char)*rest))
			rest++;
		if (*rest != '\0' && *rest != ';' && *rest != '#')
			err(p, p->lineno,
			    "[%s]: text after ']' is ignored; put keys on lines of their own",
			    name);
		return;
	}
	end = find_chars_or_comment(t, "=:");
	if (*end != '=' && *end != ':')
		err(p, p->lineno, "expected 'key = value', a [section] or a ';' comment");
}

/* The ini_reader: hands inih one physical line at a time, which is what
 * makes p->lineno the line of every handler call. Lines that would not fit
 * inih's buffer are reported and replaced by an empty one, since inih would
 * otherwise read their tail as a line of its own. */
static char *read_line(char *str, int num, void *stream)
{
	struct parser *p = stream;
	ssize_t n = getline(&p->buf, &p->cap, p->f);
	size_t len, max = num > 2 ? (size_t)num - 2 : 0;
	char *line;

	if (n < 0)
		return NULL;
	p->lineno++;
	line = p->buf;
	len = (size_t)n;
	if (len > 0 && line[len - 1] == '\n')
		len--;
	if (len > 0 && line[len - 1] == '\r')
		len--;
	if (p->lineno == 1 && len >= 3 && memcmp(line, "\xef\xbb\xbf", 3) == 0) {
		line += 3; /* UTF-8 byte order mark */
		len -= 3;
	}
	p->indented = false;
	if (memchr(line, '\0', len) != NULL) {
		err(p, p->lineno, "line contains a NUL byte; is this a text file?");
		len = 0;
	} else if (len > max) {
		err(p, p->lineno,
		    "line is %zu characters long, more than the %zu that fit; continue a long "
		    "list on indented lines",
		    len, max);
		len = 0;
	} else {
		line[len] = '\0';
		classify_line(p, line);
	}
	memcpy(str, line, len);
	str[len] = '\n';
	str[len + 1] = '\0';
	return str;
}

static bool type_is_list(enum conf_type t)
{
	return t == CT_DOMAINS || t == CT_ADDRS;
}

static void continuation(struct parser *p, const char *value)
{
	const struct conf_key *k = p->cont_key;
	char *joined = NULL;

	if (k == NULL)
		return; /* its key is unknown or a duplicate: already reported */
	if (!type_is_list(k->type)) {
		kerr(p, k, p->lineno,
		     "this line is indented, so it continues the value of line %d, and only "
		     "lists may continue; remove the indentation",
		     p->cont_first_line);
		p->cont_key = NULL;
		return;
	}
	if (strchr(value, '=') != NULL) {
		kerr(p, k, p->lineno,
		     "this line is indented, so it continues the list of line %d; remove the "
		     "indentation to start a new key",
		     p->cont_first_line);
		p->cont_key = NULL;
		return;
	}
	if (asprintf(&joined, "%s,%s", p->cont->raw, value) < 0) {
		p->nomem = true;
		return;
	}
	free(p->cont->raw);
	p->cont->raw = joined;
}

/* The ini_handler. Never returns 0: every error is recorded here with its
 * line, and inih's "first error line" would only repeat one of them. */
static int on_entry(void *user, const char *section, const char *name, const char *value)
{
	struct parser *p = user;
	const struct conf_key *k;
	struct setting *s;

	if (p->indented && p->last_name[0] != '\0' && strcmp(name, p->last_name) == 0) {
		continuation(p, value);
		return 1;
	}
	snprintf(p->last_name, sizeof(p->last_name), "%s", name);
	p->cont_key = NULL;
	p->cont = NULL;
	if (section[0] == '\0' && !p->seen_header) {
		const struct conf_key *any = NULL;
		for (size_t i = 0; i < NKEYS && any == NULL; i++)
			if (strcmp(keys[i].name, name) == 0)
				any = &keys[i];
		if (any != NULL)
			err(p, p->lineno, "%s: key outside any section; put it under [%s]", name,
			    any->section);
		else
			err(p, p->lineno, "%s: key outside any section", name);
		return 1;
	}
	if (!section_known(section))
		return 1; /* reported at its header */
	k = key_find(section, name);
	if (k == NULL) {
		unknown_key(p, section, name);
		return 1;
	}
	s = &p->set[k - keys];
	if (s->given) {
		kerr(p, k, p->lineno, "set twice (first on line %d); keep one", s->line);
		return 1;
	}
	s->raw = strdup(value);
	if (s->raw == NULL) {
		p->nomem = true;
		return 1;
	}
	s->given = true;
	s->line = p->lineno;
	p->cont = s;
	p->cont_key = k;
	p->cont_first_line = p->lineno;
	return 1;
}

/* ---- value parsers ---- */

static char *trim(char *s)
{
	char *e;

	while (isspace((unsigned char)*s))
		s++;
	e = s + strlen(s);
	while (e > s && isspace((unsigned char)e[-1]))
		*--e = '\0';
	return s;
}

/* Digits only: no sign, no white space, no hex. */
static bool parse_ull(const char *s, unsigned long long *v, const char **end)
{
	unsigned long long n = 0;

	if (!isdigit((unsigned char)*s))
		return false;
	for (; isdigit((unsigned char)*s); s++) {
		unsigned d = (unsigned)(*s - '0');
		if (n > (ULLONG_MAX - d) / 10)
			return false;
		n = n * 10 + d;
	}
	*v = n;
	*end = s;
	return true;
}

struct unit_name {
	const char *name;
	unsigned long long mul;
};

static const struct unit_name size_units[] = {
	{"", 1},    {"b", 1},	  {"k", KIB}, {"kib", KIB},
	{"m", MIB}, {"mib", MIB}, {"g", GIB}, {"gib", GIB},
};

static const struct unit_name time_units[] = {
	{"", 1}, {"s", 1}, {"m", 60}, {"h", 3600}, {"d", 86400},
};

/* "512KiB", "512 KiB", "30s", "5m": a number, optional blanks, a unit. */
static bool parse_with_unit(const char *s, const struct unit_name *u, size_t nu,
			    unsigned long long *v)
{
	unsigned long long n;
	const char *end;

	if (!parse_ull(s, &n, &end))
		return false;
	while (*end == ' ' || *end == '\t')
		end++;
	for (size_t i = 0; i < nu; i++) {
		if (strcasecmp(end, u[i].name) != 0)
			continue;
		if (n > ULLONG_MAX / u[i].mul)
			return false;
		*v = n * u[i].mul;
		return true;
	}
	return false;
}

static const char *unit_name(enum conf_unit u)
{
	return u == CU_BYTES ? "bytes" : u == CU_SECONDS ? "seconds" : "";
}

static void human_size(char *buf, size_t len, unsigned long long v)
{
	if (v >= MIB && v % MIB == 0)
		snprintf(buf, len, "%llu MiB", v / MIB);
	else if (v >= KIB && v % KIB == 0)
		snprintf(buf, len, "%llu KiB", v / KIB);
	else
		snprintf(buf, len, "%llu B", v);
}

static void human_duration(char *buf, size_t len, unsigned long long v)
{
	if (v >= 3600 && v % 3600 == 0)
		snprintf(buf, len, "%lluh", v / 3600);
	else if (v >= 60 && v % 60 == 0)
		snprintf(buf, len, "%llum", v / 60);
	else
		snprintf(buf, len, "%llus", v);
}

static void human(const struct conf_key *k, char *buf, size_t len, unsigned long long v)
{
	if (k->type == CT_SIZE)
		human_size(buf, len, v);
	else if (k->type == CT_DURATION)
		human_duration(buf, len, v);
	else
		snprintf(buf, len, "%llu", v);
}

static void parse_number(struct parser *p, const struct conf_key *k, int line, const char *raw,
			 struct fg_conf *c)
{
	unsigned long long v = 0;
	const char *end = NULL;
	char lo[32], hi[32];
	bool ok;

	human(k, lo, sizeof(lo), k->min);
	human(k, hi, sizeof(hi), k->max);
	switch (k->type) {
	case CT_SIZE:
		ok = parse_with_unit(raw, size_units, FG_ARRAY_LEN(size_units), &v);
		if (!ok) {
			kerr(p, k, line,
			     "'%s' is not a size; write bytes (524288) or a number with a unit: B, "
			     "KiB, MiB (1 KiB = 1024 B), from %s to %s",
			     raw, lo, hi);
			return;
		}
		break;
	case CT_DURATION:
		ok = parse_with_unit(raw, time_units, FG_ARRAY_LEN(time_units), &v);
		if (!ok) {
			kerr(p, k, line,
			     "'%s' is not a duration; write seconds (30) or a number with a "
			     "unit: s, m, h, from %s to %s",
			     raw, lo, hi);
			return;
		}
		break;
	default:
		ok = parse_ull(raw, &v, &end) && *end == '\0';
		if (!ok) {
			kerr(p, k, line, "'%s' is not a whole number; use one from %s to %s", raw,
			     lo, hi);
			return;
		}
		break;
	}
	if (v < k->min || v > k->max) {
		kerr(p, k, line, "'%s' is out of range; use %s from %s to %s%s%s%s", raw,
		     k->type == CT_SIZE	      ? "a size"
		     : k->type == CT_DURATION ? "a duration"
					      : "a number",
		     lo, hi, k->unit != CU_NONE ? " (" : "", unit_name(k->unit),
		     k->unit != CU_NONE ? ")" : "");
		return;
	}
	if (k->type == CT_SIZE)
		*FIELD(c, k, size_t) = (size_t)v;
	else
		*FIELD(c, k, unsigned) = (unsigned)v;
}

static char *path_join(const char *dir, const char *name)
{
	char *out = NULL;

	if (name[0] == '/')
		return strdup(name);
	if (asprintf(&out, "%s%s%s", dir, strcmp(dir, "/") == 0 ? "" : "/", name) < 0)
		return NULL;
	return out;
}

/* inih's line limit (r55's compiled-in 200 bytes, less "\n\0"). */
#define PRINT_LINE_MAX 198

static void parse_path(struct parser *p, const struct conf_key *k, int line, const char *raw,
		       struct fg_conf *c)
{
	char **dst = FIELD(c, k, char *);
	char *abs;

	if (raw[0] == '\0') {
		if (!(k->flags & CK_EMPTY_OK))
			kerr(p, k, line,
			     "empty; give a file name (a relative one is relative "
			     "to the configuration file's folder)");
		return;
	}
	abs = path_join(c->dir, raw);
	if (abs == NULL) {
		p->nomem = true;
		return;
	}
	/* conf_print() writes the path absolute on one line, and what
	 * `fedgate check` prints must load again. */
	if (strlen(k->name) + 3 + strlen(abs) > PRINT_LINE_MAX) {
		kerr(p, k, line,
		     "the path %s is %zu characters long once made absolute, more than the %zu "
		     "that fit on one line after '%s = '; choose a shorter path",
		     abs, strlen(abs), PRINT_LINE_MAX - strlen(k->name) - 3, k->name);
		free(abs);
		return;
	}
	if (k->type == CT_UNIX_PATH) {
		size_t max = sizeof(((struct sockaddr_un *)0)->sun_path) - 1;
		if (strlen(abs) > max) {
			kerr(p, k, line,
			     "the socket path %s is %zu bytes long, more than the %zu a Unix "
			     "socket allows; choose a shorter path",
			     abs, strlen(abs), max);
			free(abs);
			return;
		}
	}
	*dst = abs;
}

/* Splits at commas, trims blanks, skips empty items (continuation lines
 * leave some). Items are pointers into the (modified) copy. */
static int split_list(char *copy, char ***items, size_t *n)
{
	size_t cap = 0;
	char *save = NULL;

	*items = NULL;
	*n = 0;
	for (char *tok = strtok_r(copy, ",", &save); tok != NULL;
	     tok = strtok_r(NULL, ",", &save)) {
		tok = trim(tok);
		if (*tok == '\0')
			continue;
		if (*n == cap) {
			size_t ncap = cap ? cap * 2 : 4;
			char **m = realloc(*items, ncap * sizeof(*m));
			if (m == NULL) {
				free(*items);
				*items = NULL;
				return FG_NOMEM;
			}
			*items = m;
			cap = ncap;
		}
		(*items)[(*n)++] = tok;
	}
	return FG_OK;
}

static int list_add(struct conf_list *l, const char *s)
{
	char **m = realloc(l->v, (l->n + 1) * sizeof(*m));

	if (m == NULL)
		return FG_NOMEM;
	l->v = m;
	l->v[l->n] = strdup(s);
	if (l->v[l->n] == NULL)
		return FG_NOMEM;
	l->n++;
	return FG_OK;
}

static void list_clear(struct conf_list *l)
{
	for (size_t i = 0; i < l->n; i++)
		free(l->v[i]);
	free(l->v);
	l->v = NULL;
	l->n = 0;
}

static bool list_has(const struct conf_list *l, const char *s)
{
	for (size_t i = 0; i < l->n; i++)
		if (strcmp(l->v[i], s) == 0)
			return true;
	return false;
}

static bool has_blank(const char *s)
{
	for (; *s != '\0'; s++)
		if (isspace((unsigned char)*s))
			return true;
	return false;
}

static void add_domain(struct parser *p, const struct conf_key *k, int line, const char *item,
		       struct conf_list *l)
{
	unsigned char v4[4];
	char *prep = NULL;
	enum jid_err je;

	if (has_blank(item)) {
		kerr(p, k, line, "'%s' is not a domain; separate domains with commas", item);
		return;
	}
	je = jid_domain_prep(item, strlen(item), &prep);
	if (je == JID_ERR_NOMEM) {
		p->nomem = true;
		return;
	}
	if (je != JID_OK) {
		kerr(p, k, line,
		     "'%s' is not a valid domain name (%s); use a DNS name such as "
		     "contoso.test",
		     item, jid_strerror(je));
		return;
	}
	/* A local domain names certificate files and is what peers dial; an
	 * address literal can be neither. */
	if (prep[0] == '[' || inet_pton(AF_INET, prep, v4) == 1) {
		kerr(p, k, line, "'%s' is an IP address; local domains must be DNS names", item);
	} else if (list_has(l, prep)) {
		/* Say what it was prepared to: "Contoso.TEST" repeats "contoso.test". */
		kerr(p, k, line, "'%s' (%s) is listed twice; remove one", item, prep);
	} else if (list_add(l, prep) != FG_OK) {
		p->nomem = true;
	}
	free(prep);
}

/* Checks a listen address and writes its canonical form ("[::1]:5269");
 * returns NULL or why it is not one. Host names are refused on purpose: a
 * listener must not depend on DNS at start-up. */
static const char *addr_parse(const char *s, char *norm, size_t normlen)
{
	char host[INET6_ADDRSTRLEN + 64], h[NI_MAXHOST], sv[NI_MAXSERV];
	const char *hp, *port, *close, *colon, *end;
	unsigned long long pn;
	struct addrinfo hints = {0}, *ai = NULL;
	size_t hlen;
	bool bracket = s[0] == '[';
	int rc;

	if (bracket) {
		close = strchr(s, ']');
		if (close == NULL)
			return "no ']' after the IPv6 address";
		if (close[1] != ':')
			return "no ':port' after ']'";
		hp = s + 1;
		hlen = (size_t)(close - hp);
		port = close + 2;
	} else {
		colon = strrchr(s, ':');
		if (colon == NULL)
			return "no ':port'";
		if (memchr(s, ':', (size_t)(colon - s)) != NULL)
			return "an IPv6 address needs brackets, as in [::1]:5269";
		hp = s;
		hlen = (size_t)(colon - s);
		port = colon + 1;
	}
	if (hlen == 0)
		return "no address before ':port'; 0.0.0.0 or [::] means every address";
	if (hlen >= sizeof(host))
		return "the address is too long";
	memcpy(host, hp, hlen);
	host[hlen] = '\0';
	if (!parse_ull(port, &pn, &end) || *end != '\0' || pn < 1 || pn > 65535)
		return "the port must be a number from 1 to 65535";
	/* getaddrinfo() also takes inet_aton() forms ("127.1", "1.2.3"):
	 * accept the plain dotted quad only. */
	unsigned char v4[4];
	if (!bracket && inet_pton(AF_INET, host, v4) != 1)
		return "not a numeric IPv4 address (host names are not allowed here)";
	hints.ai_flags = AI_NUMERICHOST | AI_NUMERICSERV;
	hints.ai_family = bracket ? AF_INET6 : AF_INET;
	hints.ai_socktype = SOCK_STREAM;
	rc = getaddrinfo(host, port, &hints, &ai);
	if (rc != 0)
		return bracket ? "not a numeric IPv6 address"
			       : "not a numeric IPv4 address (host names are not allowed here)";
	rc = getnameinfo(ai->ai_addr, ai->ai_addrlen, h, sizeof(h), sv, sizeof(sv),
			 NI_NUMERICHOST | NI_NUMERICSERV);
	freeaddrinfo(ai);
	if (rc != 0)
		return "not a usable address";
	snprintf(norm, normlen, bracket ? "[%s]:%s" : "%s:%s", h, sv);
	return NULL;
}

static void add_addr(struct parser *p, const struct conf_key *k, int line, const char *item,
		     struct fg_conf *c, struct conf_list *l)
{
	char norm[NI_MAXHOST + NI_MAXSERV + 4];
	const char *why = addr_parse(item, norm, sizeof(norm));

	if (why != NULL) {
		kerr(p, k, line, "'%s' is not an address:port: %s; e.g. 0.0.0.0:5269 or [::]:5269",
		     item, why);
		return;
	}
	if (list_has(l, norm)) {
		kerr(p, k, line, "'%s' is listed twice; remove one", item);
		return;
	}
	/* Two protocols cannot share one socket; the second bind would fail
	 * at start-up, so say so now. */
	for (const struct conf_key *o = keys; o < k; o++) {
		if (o->type == CT_ADDRS && list_has(CFIELD(c, o, struct conf_list), norm)) {
			kerr(p, k, line, "'%s' is also a listener of [%s] %s; use another port",
			     item, o->section, o->name);
			return;
		}
	}
	if (list_add(l, norm) != FG_OK)
		p->nomem = true;
}

static void parse_list(struct parser *p, const struct conf_key *k, int line, const char *raw,
		       struct fg_conf *c)
{
	struct conf_list *l = FIELD(c, k, struct conf_list);
	char *copy = strdup(raw), **items = NULL;
	size_t n = 0;

	if (copy == NULL || split_list(copy, &items, &n) != FG_OK) {
		p->nomem = true;
		goto out;
	}
	if (n == 0 && !(k->flags & CK_EMPTY_OK)) {
		kerr(p, k, line, "empty; %s, e.g. %s = %s", k->desc, k->name,
		     k->example ? k->example : "?");
		goto out;
	}
	for (size_t i = 0; i < n; i++) {
		if (k->type == CT_DOMAINS)
			add_domain(p, k, line, items[i], l);
		else
			add_addr(p, k, line, items[i], c, l);
	}
out:
	free(items);
	free(copy);
}

static bool parse_bool(const char *s, int *v)
{
	static const char *const yes[] = {"yes", "true", "on", "1"};
	static const char *const no[] = {"no", "false", "off", "0"};

	for (size_t i = 0; i < FG_ARRAY_LEN(yes); i++) {
		if (strcasecmp(s, yes[i]) == 0) {
			*v = 1;
			return true;
		}
		if (strcasecmp(s, no[i]) == 0) {
			*v = 0;
			return true;
		}
	}
	return false;
}

static void parse_value(struct parser *p, const struct conf_key *k, int line, const char *raw,
			struct fg_conf *c)
{
	int lvl;

	switch (k->type) {
	case CT_STRING:
		*FIELD(c, k, char *) = strdup(raw);
		if (*FIELD(c, k, char *) == NULL)
			p->nomem = true;
		break;
	case CT_PATH:
	case CT_UNIX_PATH: parse_path(p, k, line, raw, c); break;
	case CT_DOMAINS:
	case CT_ADDRS: parse_list(p, k, line, raw, c); break;
	case CT_BOOL:
		if (!parse_bool(raw, FIELD(c, k, int)))
			kerr(p, k, line, "'%s' is not yes or no", raw);
		break;
	case CT_INT:
	case CT_SIZE:
	case CT_DURATION: parse_number(p, k, line, raw, c); break;
	case CT_LOG_LEVEL:
		lvl = log_level_parse(raw);
		if (lvl < 0)
			kerr(p, k, line,
			     "'%s' is not a log level; use error, warning, info or debug", raw);
		else
			*FIELD(c, k, int) = lvl;
		break;
	}
}

/* A default with {domain} replaced by the first local domain. */
static char *default_text(const struct conf_key *k, const struct fg_conf *c)
{
	const char *var = strstr(k->def, DOMAIN_VAR);
	char *out = NULL;

	if (var == NULL)
		return strdup(k->def);
	if (c->domains.n == 0)
		return NULL;
	if (asprintf(&out, "%.*s%s%s", (int)(var - k->def), k->def, c->domains.v[0],
		     var + strlen(DOMAIN_VAR)) < 0)
		return NULL;
	return out;
}

/* ---- `fedgate check`: the files serve will read ---- */

static void check_readable(struct parser *p, const struct conf_key *k, int line, const char *path)
{
	FILE *f = fopen(path, "r");

	if (f == NULL) {
		kerr(p, k, line, "cannot read %s: %s%s", path, strerror(errno),
		     strcmp(k->section, "tls") == 0 && strcmp(k->name, "ca_file") != 0
			     ? "; run 'fedgate init' or point it at your PEM file"
			     : "");
		return;
	}
	fclose(f);
}

static X509 *cert_load(const char *path)
{
	FILE *f = fopen(path, "r");
	X509 *x;

	if (f == NULL)
		return NULL;
	x = PEM_read_X509(f, NULL, NULL, NULL);
	fclose(f);
	return x;
}

/* Refuses to prompt for a passphrase: serve runs unattended. */
static int no_passphrase(char *buf, int size, int rwflag, void *u)
{
	FG_UNUSED(buf);
	FG_UNUSED(size);
	FG_UNUSED(rwflag);
	FG_UNUSED(u);
	return -1;
}

static EVP_PKEY *key_load(const char *path)
{
	FILE *f = fopen(path, "r");
	EVP_PKEY *k;

	if (f == NULL)
		return NULL;
	k = PEM_read_PrivateKey(f, NULL, no_passphrase, NULL);
	fclose(f);
	return k;
}

static void asn1_time_str(const ASN1_TIME *t, char *buf, size_t len)
{
	struct tm tm;

	if (ASN1_TIME_to_tm(t, &tm) != 1 || strftime(buf, len, "%Y-%m-%d %H:%M UTC", &tm) == 0)
		snprintf(buf, len, "?");
}

/* What serve would find out at start-up, found out now: the certificate
 * and key load, belong together and are in their validity period. */
static void check_tls_pair(struct parser *p, const struct fg_conf *c)
{
	const struct conf_key *kc = key_find("tls", "certificate");
	const struct conf_key *kk = key_find("tls", "key");
	int lc = p->set[kc - keys].line, lk = p->set[kk - keys].line;
	X509 *x = cert_load(c->tls_certificate);
	EVP_PKEY *pk = key_load(c->tls_key);
	char when[64];

	if (x == NULL)
		kerr(p, kc, lc, "%s holds no PEM certificate", c->tls_certificate);
	if (pk == NULL)
		kerr(p, kk, lk, "%s holds no unencrypted PEM private key", c->tls_key);
	if (x != NULL) {
		if (X509_cmp_current_time(X509_get0_notAfter(x)) < 0) {
			asn1_time_str(X509_get0_notAfter(x), when, sizeof(when));
			kerr(p, kc, lc, "the certificate in %s expired on %s; renew it",
			     c->tls_certificate, when);
		} else if (X509_cmp_current_time(X509_get0_notBefore(x)) > 0) {
			asn1_time_str(X509_get0_notBefore(x), when, sizeof(when));
			kerr(p, kc, lc, "the certificate in %s is not valid before %s",
			     c->tls_certificate, when);
		}
	}
	if (x != NULL && pk != NULL && X509_check_private_key(x, pk) != 1)
		kerr(p, kk, lk, "%s is not the private key of the certificate in %s", c->tls_key,
		     c->tls_certificate);
	ERR_clear_error();
	X509_free(x);
	EVP_PKEY_free(pk);
}

static void check_files(struct parser *p, const struct fg_conf *c)
{
	size_t before = p->nerrs;

	for (size_t i = 0; i < NKEYS; i++) {
		const struct conf_key *k = &keys[i];
		const char *path;
		if (!(k->flags & CK_MUST_READ))
			continue;
		path = *CFIELD(c, k, char *);
		if (path != NULL)
			check_readable(p, k, p->set[i].line, path);
	}
	if (p->nerrs == before && c->tls_certificate != NULL && c->tls_key != NULL)
		check_tls_pair(p, c);
}

static bool addr_is_loopback(const char *a)
{
	return strncmp(a, "127.", 4) == 0 || strncmp(a, "[::1]:", 6) == 0;
}

/* The control panel signs admins in with passwords and cookies: over plain
 * HTTP that is only acceptable on this host's loopback. */
static void check_admin(struct parser *p, const struct fg_conf *c)
{
	const struct conf_key *kc = key_find("admin", "certificate");
	const struct conf_key *kk = key_find("admin", "key");
	const struct conf_key *kl = key_find("listen", "admin");
	bool has_cert = c->admin_certificate && *c->admin_certificate;
	bool has_key = c->admin_key && *c->admin_key;
	if (has_cert != has_key) {
		kerr(p, has_cert ? kk : kc, p->set[(has_cert ? kk : kc) - keys].line,
		     "[admin] certificate and key go together; set both, or neither for plain "
		     "HTTP on loopback");
		return;
	}
	if (has_cert)
		return;
	for (size_t i = 0; i < c->listen_admin.n; i++)
		if (!addr_is_loopback(c->listen_admin.v[i]))
			kerr(p, kl, p->set[kl - keys].line,
			     "%s is not a loopback address and [admin] has no certificate: "
			     "passwords and session cookies would cross the network in clear; "
			     "set [admin] certificate and key, or listen on 127.0.0.1",
			     c->listen_admin.v[i]);
}

/* A cluster shares one store: nodes with their own SQLite files would each
 * have their own partners and users. */
static void check_store(struct parser *p, const struct fg_conf *c)
{
	const struct conf_key *kb = key_find("store", "backend");
	const struct conf_key *kd = key_find("store", "dsn");
	const struct conf_key *kr = key_find("cluster", "redis");
	const char *b = c->store_backend;
	bool pg = b && strcmp(b, "postgresql") == 0;

	if (b && !pg && strcmp(b, "sqlite") != 0)
		kerr(p, kb, p->set[kb - keys].line, "'%s' is not sqlite or postgresql", b);
	else if (pg && (c->store_dsn == NULL || c->store_dsn[0] == '\0'))
		kerr(p, kd, p->set[kd - keys].line,
		     "backend postgresql needs a connection string: set [store] dsn, e.g. "
		     "dsn = host=/run/postgresql dbname=fedgate");
	else if (!pg && c->cluster_redis && c->cluster_redis[0] != '\0')
		kerr(p, kr, p->set[kr - keys].line,
		     "a cluster needs the store every node shares: set [store] backend = "
		     "postgresql and its dsn, or leave [cluster] redis empty for a single node");
}

static void check_archive(struct parser *p, const struct fg_conf *c)
{
	const struct conf_key *k = key_find("archive", "default");
	const char *v = c->archive_default;
	if (v && strcmp(v, "always") != 0 && strcmp(v, "roster") != 0 && strcmp(v, "never") != 0)
		kerr(p, k, p->set[k - keys].line, "'%s' is not always, roster or never", v);
}

/* Parses every key, given or default, in table order ([server] domains
 * first, since other defaults name the first domain). */
static void finalize(struct parser *p, struct fg_conf *c, bool strict)
{
	for (size_t i = 0; i < NKEYS && !p->nomem; i++) {
		const struct conf_key *k = &keys[i];
		struct setting *s = &p->set[i];
		char *def = NULL;

		if (s->given) {
			char *v = trim(s->raw);
			parse_value(p, k, s->line, v, c);
			continue;
		}
		if (k->def == NULL) {
			err(p, 0, "[%s] %s is required: %s, e.g. %s = %s", k->section, k->name,
			    k->desc, k->name, k->example);
			continue;
		}
		def = default_text(k, c);
		if (def == NULL) {
			if (c->domains.n > 0)
				p->nomem = true;
			continue; /* no domain to name the default after: already reported */
		}
		parse_value(p, k, 0, def, c);
		free(def);
	}
	if (!p->nomem)
		check_admin(p, c);
	if (!p->nomem)
		check_archive(p, c);
	if (!p->nomem)
		check_store(p, c);
	if (strict && !p->nomem)
		check_files(p, c);
}

/* ---- public ---- */

static void conf_clear_values(struct fg_conf *c)
{
	for (size_t i = 0; i < NKEYS; i++) {
		const struct conf_key *k = &keys[i];
		switch (k->type) {
		case CT_STRING:
		case CT_PATH:
		case CT_UNIX_PATH:
			free(*FIELD(c, k, char *));
			*FIELD(c, k, char *) = NULL;
			break;
		case CT_DOMAINS:
		case CT_ADDRS: list_clear(FIELD(c, k, struct conf_list)); break;
		default: break;
		}
	}
}

void conf_free(struct fg_conf **cp)
{
	struct fg_conf *c;

	if (cp == NULL || *cp == NULL)
		return;
	c = *cp;
	conf_clear_values(c);
	free(c->path);
	free(c->dir);
	free(c);
	*cp = NULL;
}

/* The absolute folder of a file path; the folder need not exist. */
static char *dir_of(const char *path)
{
	const char *slash = strrchr(path, '/');
	char *folder, *abs;

	if (slash == NULL)
		folder = strdup(".");
	else if (slash == path)
		folder = strdup("/");
	else
		folder = strndup(path, (size_t)(slash - path));
	if (folder == NULL)
		return NULL;
	abs = realpath(folder, NULL);
	if (abs != NULL) {
		free(folder);
		return abs;
	}
	if (folder[0] != '/') {
		char *cwd = getcwd(NULL, 0);
		if (cwd != NULL) {
			abs = path_join(cwd, folder);
			free(cwd);
			free(folder);
			return abs;
		}
	}
	return folder;
}

/* The common body of conf_load, conf_defaults and check. With f NULL it
 * builds the defaults for domain, relative to the folder of the file path
 * anchor. */
static int load(const char *path, FILE *f, const char *anchor, const char *domain,
		struct fg_conf **out, FILE *errs, bool strict, size_t *nerr)
{
	struct parser p = {0};
	struct fg_conf *c = calloc(1, sizeof(*c));
	int rc = FG_NOMEM;

	*out = NULL;
	*nerr = 0;
	if (c == NULL)
		goto out;
	if (path != NULL && (c->path = strdup(path)) == NULL)
		goto out;
	c->dir = dir_of(anchor != NULL ? anchor : path);
	if (c->dir == NULL)
		goto out;
	if (f != NULL) {
		p.f = f;
		rc = ini_parse_stream(read_line, &p, on_entry, &p);
		if (rc == -2)
			p.nomem = true;
		else if (rc > 0 && p.nerrs == 0)
			err(&p, rc, "syntax error");
		if (ferror(f))
			err(&p, 0, "read error: %s", strerror(errno));
	} else {
		struct setting *s = &p.set[key_find("server", "domains") - keys];
		s->given = true;
		s->raw = strdup(domain);
		if (s->raw == NULL)
			goto out;
	}
	finalize(&p, c, strict);
	if (p.nomem) {
		rc = FG_NOMEM;
		goto out;
	}
	if (p.nerrs > 0) {
		*nerr = p.nerrs;
		errs_print(&p, path != NULL ? path : "(defaults)", errs);
		rc = FG_ERR;
		goto out;
	}
	*out = c;
	c = NULL;
	rc = FG_OK;
out:
	parser_clear(&p);
	conf_free(&c);
	return rc;
}

static int load_file(const char *path, struct fg_conf **out, FILE *errs, bool strict, size_t *nerr)
{
	struct stat st;
	FILE *f;
	int rc;

	*out = NULL;
	*nerr = 1;
	f = fopen(path, "r");
	if (f == NULL) {
		/* Say the real cause: "create one" for a file that exists but
		 * may not be read would make a second configuration. */
		int e = errno;
		if (errs != NULL)
			fprintf(errs, "%s: cannot open: %s%s\n", path, strerror(e),
				e == ENOENT   ? "; name your configuration with -c FILE or "
						"$FEDGATE_CONF, or create one with 'fedgate init'"
				: e == EACCES ? "; run this as a user who may read it"
					      : "");
		return FG_NOTFOUND;
	}
	if (fstat(fileno(f), &st) == 0 && S_ISDIR(st.st_mode)) {
		if (errs != NULL)
			fprintf(errs, "%s: is a folder; name the configuration file itself\n",
				path);
		fclose(f);
		return FG_NOTFOUND;
	}
	rc = load(path, f, NULL, NULL, out, errs, strict, nerr);
	fclose(f);
	if (rc == FG_NOMEM && errs != NULL)
		fprintf(errs, "%s: out of memory\n", path);
	return rc;
}

int conf_load(const char *path, struct fg_conf **out, FILE *errs)
{
	size_t n;
	int rc = load_file(path, out, errs, false, &n);

	return rc == FG_OK ? FG_OK : FG_ERR;
}

int conf_peek_control(const char *path, char *out, size_t len)
{
	struct parser p = {0};
	const struct conf_key *k = key_find("listen", "control");
	FILE *f = fopen(path, "r");
	int rc = FG_ERR;

	assert(k != NULL);
	if (f == NULL)
		return FG_NOTFOUND;
	p.f = f;
	/* Errors are collected and dropped: only the one raw value counts. */
	if (ini_parse_stream(read_line, &p, on_entry, &p) == -2)
		p.nomem = true;
	fclose(f);
	struct setting *s = &p.set[k - keys];
	char *dir = dir_of(path);
	const char *raw = s->given && s->raw ? trim(s->raw) : k->def;
	char *abs = dir != NULL && !p.nomem && raw[0] != '\0' ? path_join(dir, raw) : NULL;
	if (abs != NULL && strlen(abs) < len) {
		memcpy(out, abs, strlen(abs) + 1);
		rc = FG_OK;
	}
	free(abs);
	free(dir);
	parser_clear(&p);
	return rc;
}

int conf_defaults_for(const char *dir, const char *domain, struct fg_conf **out)
{
	size_t n;
	char *file = path_join(dir, "fedgate.conf");
	int rc;

	*out = NULL;
	if (file == NULL)
		return FG_NOMEM;
	rc = load(NULL, NULL, file, domain, out, NULL, false, &n);
	free(file);
	return rc == FG_ERR ? FG_INVAL : rc;
}

int conf_defaults(const char *dir, struct fg_conf **out)
{
	return conf_defaults_for(dir, "localhost", out);
}

/* FG_CONF_DEFAULT is SYSCONFDIR/fedgate/fedgate.conf, set by CMakeLists.txt
 * so that the installed binary finds the installed configuration. */
#ifndef FG_CONF_DEFAULT
#error "FG_CONF_DEFAULT is defined by CMakeLists.txt"
#endif

const char *conf_default_path(const char *given)
{
	const char *env;

	if (given != NULL && given[0] != '\0')
		return given;
	env = getenv("FEDGATE_CONF");
	if (env != NULL && env[0] != '\0')
		return env;
	return FG_CONF_DEFAULT;
}

int conf_is_local_domain(const struct fg_conf *c, const char *name)
{
	return c != NULL && name != NULL && list_has(&c->domains, name);
}

/* ---- printing ---- */

/* The value as conf_load() reads it back; malloc'ed. */
static char *value_text(const struct fg_conf *c, const struct conf_key *k)
{
	char *s = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&s, &len);

	if (f == NULL)
		return NULL;
	switch (k->type) {
	case CT_STRING:
	case CT_PATH:
	case CT_UNIX_PATH: {
		const char *v = *CFIELD(c, k, char *);
		fputs(v != NULL ? v : "", f);
		break;
	}
	case CT_DOMAINS:
	case CT_ADDRS: {
		const struct conf_list *l = CFIELD(c, k, struct conf_list);
		for (size_t i = 0; i < l->n; i++)
			fprintf(f, "%s%s", i > 0 ? ", " : "", l->v[i]);
		break;
	}
	case CT_BOOL: fputs(*CFIELD(c, k, int) ? "yes" : "no", f); break;
	case CT_INT:
	case CT_DURATION: fprintf(f, "%u", *CFIELD(c, k, unsigned)); break;
	case CT_SIZE: fprintf(f, "%zu", *CFIELD(c, k, size_t)); break;
	case CT_LOG_LEVEL: fputs(log_level_name((enum log_level)(*CFIELD(c, k, int))), f); break;
	}
	if (fclose(f) != 0) {
		free(s);
		return NULL;
	}
	return s;
}

/* ---- reload ---- */

static size_t field_size(enum conf_type t)
{
	switch (t) {
	case CT_STRING:
	case CT_PATH:
	case CT_UNIX_PATH: return sizeof(char *);
	case CT_DOMAINS:
	case CT_ADDRS: return sizeof(struct conf_list);
	case CT_BOOL:
	case CT_LOG_LEVEL: return sizeof(int);
	case CT_INT:
	case CT_DURATION: return sizeof(unsigned);
	case CT_SIZE: return sizeof(size_t);
	}
	return 0;
}

size_t conf_reconcile(struct fg_conf *run, struct fg_conf *next, conf_change_fn fn, void *ud)
{
	size_t changed = 0;
	assert(run && next);
	for (size_t i = 0; i < NKEYS; i++) {
		const struct conf_key *k = &keys[i];
		char *a = value_text(run, k), *b = value_text(next, k);
		if (a && b && strcmp(a, b) != 0) {
			bool live = !(k->flags & CK_RESTART);
			changed++;
			if (fn)
				fn(ud, k->section, k->name, a, b, live ? 1 : 0);
			if (!live) {
				/* The field's bytes change places: next keeps
				 * what runs, and each struct still owns what
				 * it frees. */
				unsigned char tmp[sizeof(struct conf_list)];
				size_t sz = field_size(k->type);
				assert(sz > 0 && sz <= sizeof(tmp));
				memcpy(tmp, (char *)run + k->off, sz);
				memcpy((char *)run + k->off, (char *)next + k->off, sz);
				memcpy((char *)next + k->off, tmp, sz);
			}
		}
		free(a);
		free(b);
	}
	return changed;
}

/* "bytes, 1 KiB..16 MiB (default 512 KiB)" */
static void key_comment(const struct conf_key *k, bool is_default, FILE *f)
{
	char lo[32], hi[32], def[32];
	unsigned long long dv = 0;

	switch (k->type) {
	case CT_INT:
	case CT_SIZE:
	case CT_DURATION:
		human(k, lo, sizeof(lo), k->min);
		human(k, hi, sizeof(hi), k->max);
		if (k->type == CT_SIZE)
			parse_with_unit(k->def, size_units, FG_ARRAY_LEN(size_units), &dv);
		else if (k->type == CT_DURATION)
			parse_with_unit(k->def, time_units, FG_ARRAY_LEN(time_units), &dv);
		else
			dv = strtoull(k->def, NULL, 10);
		human(k, def, sizeof(def), dv);
		fprintf(f, "%s%s%s..%s", unit_name(k->unit), k->unit != CU_NONE ? ", " : "", lo,
			hi);
		break;
	case CT_DOMAINS: fputs("domain list, required", f); return;
	case CT_ADDRS: fputs("address:port list or empty", f); break;
	case CT_PATH: fputs(k->flags & CK_EMPTY_OK ? "file or empty" : "file", f); break;
	case CT_UNIX_PATH: fputs("socket file", f); break;
	case CT_LOG_LEVEL: fputs("error, warning, info or debug", f); break;
	case CT_BOOL: fputs("yes or no", f); break;
	case CT_STRING: fputs(k->flags & CK_EMPTY_OK ? "name or empty" : "name", f); break;
	default: break;
	}
	if (k->type != CT_INT && k->type != CT_SIZE && k->type != CT_DURATION) {
		const char *var = strstr(k->def, DOMAIN_VAR);
		if (var != NULL)
			snprintf(def, sizeof(def), "%.*s<first domain>%s", (int)(var - k->def),
				 k->def, var + strlen(DOMAIN_VAR));
		else
			snprintf(def, sizeof(def), "%s", k->def[0] != '\0' ? k->def : "empty");
	}
	fprintf(f, " (%sdefault %s)", is_default ? "" : "changed; ", def);
}

static void print_key(const struct fg_conf *c, const struct fg_conf *d, const struct conf_key *k,
		      FILE *f)
{
	char *v = value_text(c, k), *dv = d != NULL ? value_text(d, k) : NULL;
	const struct conf_list *l = CFIELD(c, k, struct conf_list);
	char *comment = NULL;
	size_t clen = 0;
	FILE *cf = open_memstream(&comment, &clen);

	if (v == NULL || cf == NULL) {
		fprintf(f, "; %s: out of memory\n", k->name);
		goto out;
	}
	key_comment(k, dv == NULL || strcmp(v, dv) == 0, cf);
	if (fclose(cf) != 0) {
		cf = NULL;
		comment = NULL;
		goto out;
	}
	cf = NULL;
	fprintf(f, "; %s\n", k->desc);
	if (strlen(k->name) + 3 + strlen(v) + 3 + clen <= PRINT_LINE_MAX) {
		fprintf(f, "%s = %s%s; %s\n", k->name, v, v[0] != '\0' ? " " : "", comment);
		goto out;
	}
	fprintf(f, "; %s\n", comment);
	if (strlen(k->name) + 3 + strlen(v) <= PRINT_LINE_MAX || !type_is_list(k->type)) {
		fprintf(f, "%s = %s\n", k->name, v);
		goto out;
	}
	/* A long list goes one item per indented continuation line. */
	fprintf(f, "%s =\n", k->name);
	for (size_t i = 0; i < l->n; i++)
		fprintf(f, "\t%s%s\n", l->v[i], i + 1 < l->n ? "," : "");
out:
	if (cf != NULL)
		fclose(cf);
	free(comment);
	free(v);
	free(dv);
}

void conf_print(const struct fg_conf *c, FILE *f)
{
	struct fg_conf *d = NULL;
	/* The dsn may carry a password (password=... or user:pass@ in a URI):
	 * printed as ***. A copy of the struct that differs in that field. */
	struct fg_conf shown = *c;
	const char *dsn = c->store_dsn != NULL ? c->store_dsn : "";
	char *masked = malloc(strlen(dsn) + 16), *o = masked;
	const char *uri = strstr(dsn, "://");

	for (const char *p = dsn; masked != NULL && *p != '\0';) {
		const char *q = p + 8, *at = strchr(p, '@');
		bool key = strncmp(p, "password", 8) == 0 && (p == dsn || p[-1] == ' ');

		while (key && *q == ' ')
			q++;
		if (key && *q == '=') {
			for (q++; *q == ' '; q++)
				;
			if (*q == '\'')
				for (q++; *q != '\0' && *q++ != '\'';)
					if (q[-1] == '\\' && *q != '\0')
						q++;
			while (*q != '\0' && *q != ' ')
				q++;
			o += sprintf(o, "password=***");
			p = q;
		} else if (*p == ':' && uri != NULL && uri + 2 < p && at != NULL &&
			   (strchr(uri + 3, '/') == NULL || strchr(uri + 3, '/') > at)) {
			o += sprintf(o, ":***");
			p = at;
		} else {
			*o++ = *p++;
		}
	}
	if (masked != NULL) {
		*o = '\0';
		shown.store_dsn = masked;
		c = &shown;
	}

	if (c->dir != NULL && c->domains.n > 0)
		conf_defaults_for(c->dir, c->domains.v[0], &d);
	fprintf(f, "; fedgate effective configuration");
	if (c->path != NULL)
		fprintf(f, " of %s", c->path);
	fprintf(f, "\n; every key with its value; relative paths were resolved against %s\n",
		c->dir != NULL ? c->dir : "?");
	for (size_t i = 0; i < NKEYS; i++) {
		const struct conf_key *k = &keys[i];
		if (i == 0 || strcmp(keys[i - 1].section, k->section) != 0)
			fprintf(f, "\n[%s]\n", k->section);
		print_key(c, d, k, f);
	}
	conf_free(&d);
	free(masked);
}

int conf_check_main(const char *path, FILE *out, FILE *errf)
{
	struct fg_conf *c = NULL;
	size_t n = 0;
	int rc = load_file(path, &c, errf, true, &n);

	if (rc == FG_OK) {
		conf_print(c, out);
		conf_free(&c);
		return 0;
	}
	if (rc == FG_ERR)
		fprintf(errf, "%zu error%s in %s\n", n, n == 1 ? "" : "s", path);
	return 1;
}

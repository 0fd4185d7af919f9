/* The store: opening either backend (SQLite in store_lite.c, PostgreSQL
 * in store_pg.c), partners, gateway settings and the audit log, and the
 * commit of the command layer's changes. Every value goes in through a
 * bound parameter of a statement prepared once and kept in the handle
 * (the statement layer, store_stmt.c); SQL text is never assembled from
 * values.
 *
 * The store writes what the command layer already validated: loading
 * trusts the rows (no policy_check), but a row that this program cannot
 * read back is an error that names it, never a silent default. */
#include "store_sqlite.h"

#include "store_db_int.h"

#include "conf.h"
#include "fg.h"
#include "log.h"
#include "pin.h"

#include <jansson.h>

#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <limits.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

/* ---- cached statements ---- */

enum stmt_id {
	ST_BEGIN,
	ST_BEGIN_READ,
	ST_COMMIT,
	ST_ROLLBACK,
	ST_PARTNER_DELETE,
	ST_PARTNER_DELETE_ALL,
	ST_PARTNER_INSERT,
	ST_DOMAIN_INSERT,
	ST_DOMAIN_OWNER,
	ST_GATEWAY_PUT,
	ST_GATEWAY_DELETE,
	ST_AUDIT_INSERT,
	ST_LOAD_PARTNERS,
	ST_LOAD_GATEWAY,
	ST_AUDIT_SELECT,
	ST_SECRET_INSERT,
	ST_SECRET_GET,
	ST_COUNT
};

_Static_assert(ST_COUNT <= STORE_ST_MAX, "raise STORE_ST_MAX");

static const char *const stmt_sql[ST_COUNT] = {
	[ST_BEGIN] = "BEGIN IMMEDIATE",
	[ST_BEGIN_READ] = "BEGIN",
	[ST_COMMIT] = "COMMIT",
	[ST_ROLLBACK] = "ROLLBACK",
	[ST_PARTNER_DELETE] = "DELETE FROM partners WHERE domain = ?1",
	[ST_PARTNER_DELETE_ALL] = "DELETE FROM partners",
	[ST_PARTNER_INSERT] = "INSERT INTO partners (domain, description, partner_type, tls, sasl,"
			      " dialback, keepalive, connection_limit, proxy_fqdn, enabled, bidi,"
			      " dane, pins)"
			      " VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13)",
	[ST_DOMAIN_INSERT] = "INSERT INTO partner_domains (domain, partner) VALUES (?1, ?2)",
	[ST_DOMAIN_OWNER] = "SELECT partner FROM partner_domains WHERE domain = ?1",
	[ST_GATEWAY_PUT] = "INSERT INTO gateway (key, value) VALUES (?1, ?2)"
			   " ON CONFLICT (key) DO UPDATE SET value = excluded.value",
	[ST_GATEWAY_DELETE] = "DELETE FROM gateway WHERE key = ?1",
	[ST_AUDIT_INSERT] = "INSERT INTO audit (at_ms, who, iface, action, target, before, after)"
			    " VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
	/* One pass: a partner's rows are adjacent, its additional domains
	 * (NULL when it has none) in the last column. */
	[ST_LOAD_PARTNERS] = "SELECT p.domain, p.description, p.partner_type, p.tls, p.sasl,"
			     " p.dialback, p.keepalive, p.connection_limit, p.proxy_fqdn, d.domain,"
			     " p.enabled, p.bidi, p.dane, p.pins"
			     " FROM partners AS p"
			     " LEFT JOIN partner_domains AS d ON d.partner = p.domain"
			     " ORDER BY p.domain, d.domain",
	[ST_SECRET_INSERT] = "INSERT INTO gateway (key, value) VALUES ('dialback_secret', ?1)"
			     " ON CONFLICT (key) DO NOTHING",
	[ST_SECRET_GET] = "SELECT value FROM gateway WHERE key = 'dialback_secret'",
	[ST_LOAD_GATEWAY] = "SELECT key, value FROM gateway ORDER BY key",
	[ST_AUDIT_SELECT] = "SELECT id, at_ms, who, iface, action, target, before, after"
			    " FROM audit WHERE at_ms >= ?1 ORDER BY id",
};

/* Room for store_users.c's statements; store_db_stmt() says when it is
 * too small, at the first use of the statement that does not fit. */
/* ---- gateway settings as key/value rows ---- */

enum gw_type { GW_UNSIGNED, GW_BOOL, GW_SECRET };

struct gw_key {
	const char *name; /* the field name of struct gateway_settings */
	enum gw_type type;
	size_t off;
};

/* The key is the field's name, spelled once. */
#define GW(field, type) #field, type, offsetof(struct gateway_settings, field)

static const struct gw_key gw_keys[] = {
	{GW(connection_limit, GW_UNSIGNED)},
	{GW(partner_connection_limit, GW_UNSIGNED)},
	{GW(keepalive_interval, GW_UNSIGNED)},
	{GW(stream_establishment_timeout, GW_UNSIGNED)},
	{GW(stream_inactivity_timeout, GW_UNSIGNED)},
	{GW(subscription_refresh_interval, GW_UNSIGNED)},
	{GW(log_message_bodies, GW_BOOL)},
	{GW(dialback_secret, GW_SECRET)},
};

/* ---- helpers ---- */

void store_db_set_err(char *err, size_t errlen, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

void store_db_set_err(char *err, size_t errlen, const char *fmt, ...)
{
	va_list ap;

	if (err == NULL || errlen == 0)
		return;
	va_start(ap, fmt);
	vsnprintf(err, errlen, fmt, ap);
	va_end(ap);
}

static int rc_from_src(int src)
{
	switch (src) {
	case SDB_OK:
	case SDB_DONE:
	case SDB_ROW: return FG_OK;
	case SDB_NOMEM: return FG_NOMEM;
	case SDB_CONSTRAINT_PRIMARYKEY:
	case SDB_CONSTRAINT_UNIQUE:
	case SDB_CONSTRAINT_FOREIGNKEY:
	case SDB_CONSTRAINT_TRIGGER:
	case SDB_CONSTRAINT: return FG_INVAL;
	default: return FG_ERR;
	}
}

/* The cached statement, prepared on first use. */
static struct store_stmt *stmt(struct store_db *db, enum stmt_id id, char *err, size_t errlen)
{
	if (db->st[id] == NULL)
		db->st[id] = store_stmt_new(db, stmt_sql[id], err, errlen);
	return db->st[id];
}

/* Statement errors look like "UNIQUE constraint failed: ..."; turn them into
 * a sentence with what was being done. */
static int fail(struct store_db *db, int src, char *err, size_t errlen, const char *what)
{
	int rc = rc_from_src(src);

	if (db->backend == STORE_POSTGRESQL) {
		store_pg_fail(db, src, err, errlen, what);
		return rc == FG_OK ? FG_ERR : rc;
	}
	store_db_set_err(err, errlen, "the store %s could not %s: %s", db->path, what,
			 sqlite3_errmsg(db->h));
	return rc == FG_OK ? FG_ERR : rc;
}

static int run_cached(struct store_db *db, enum stmt_id id, char *err, size_t errlen,
		      const char *what)
{
	struct store_stmt *s = stmt(db, id, err, errlen);
	int src;

	if (s == NULL)
		return FG_ERR;
	src = store_db_run(s);
	if (src != SDB_DONE)
		return fail(db, src, err, errlen, what);
	return FG_OK;
}

static void rollback(struct store_db *db)
{
	struct store_stmt *s;

	/* Some errors (I/O, disk full, out of memory, a lost connection)
	 * already rolled the transaction back; ROLLBACK would only fail. */
	if (db->backend == STORE_SQLITE ? sqlite3_get_autocommit(db->h) != 0 : !store_pg_in_txn(db))
		return;
	s = stmt(db, ST_ROLLBACK, NULL, 0);
	if (s == NULL || store_db_run(s) != SDB_DONE)
		log_error("store", "%s: ROLLBACK failed: %s", db->path, store_db_errmsg(db));
}

/* ---- open, close ---- */

/* Copies dsn to buf with its password replaced by with (NULL: left out),
 * and the password itself to pw when pw is not NULL. key=value pairs,
 * values maybe quoted; URIs carry it as user:pass@. */
static void dsn_rewrite(const char *dsn, char *buf, size_t len, const char *with, char *pw,
			size_t pwlen)
{
	size_t o = 0, po = 0;
	const char *p = dsn != NULL ? dsn : "";

#define PUT(c)                          \
	do {                            \
		if (o + 1 < len)        \
			buf[o++] = (c); \
	} while (0)
#define PW(c)                                     \
	do {                                      \
		if (pw != NULL && po + 1 < pwlen) \
			pw[po++] = (c);           \
	} while (0)
	while (*p != '\0') {
		const char *q = p + 8;

		if (strncmp(p, "password", 8) == 0 && (p == dsn || p[-1] == ' ')) {
			while (*q == ' ')
				q++;
		}
		if (strncmp(p, "password", 8) == 0 && (p == dsn || p[-1] == ' ') && *q == '=') {
			/* libpq takes the last one given. */
			po = 0;
			for (q++; *q == ' '; q++)
				;
			if (*q == '\'') {
				for (q++; *q != '\0' && *q != '\''; q++) {
					if (*q == '\\' && q[1] != '\0')
						q++;
					PW(*q);
				}
				if (*q == '\'')
					q++;
			} else {
				for (; *q != '\0' && *q != ' '; q++)
					PW(*q);
			}
			if (with != NULL) {
				for (const char *w = "password="; *w != '\0'; w++)
					PUT(*w);
				for (const char *w = with; *w != '\0'; w++)
					PUT(*w);
			} else {
				while (*q == ' ')
					q++;
			}
			p = q;
			continue;
		}
		/* A URI's password: only in postgresql://user:pass@host... */
		if (strncmp(p, "://", 3) == 0 &&
		    ((p - dsn == 10 && strncmp(dsn, "postgresql", 10) == 0) ||
		     (p - dsn == 8 && strncmp(dsn, "postgres", 8) == 0))) {
			const char *at = strchr(p + 3, '@'), *colon = strchr(p + 3, ':');
			const char *slash = strchr(p + 3, '/');

			if (at != NULL && colon != NULL && colon < at &&
			    (slash == NULL || at < slash)) {
				for (const char *w = p; w < colon; w++)
					PUT(*w);
				po = 0;
				for (const char *w = colon + 1; w < at; w++)
					PW(*w);
				if (with != NULL) {
					PUT(':');
					for (const char *w = with; *w != '\0'; w++)
						PUT(*w);
				}
				p = at;
				continue;
			}
		}
		PUT(*p);
		p++;
	}
#undef PUT
#undef PW
	if (len > 0)
		buf[o] = '\0';
	if (pw != NULL && pwlen > 0)
		pw[po] = '\0';
}

void store_dsn_masked(const char *dsn, char *buf, size_t len)
{
	dsn_rewrite(dsn, buf, len, "***", NULL, 0);
}

void store_dsn_split(const char *dsn, char *buf, size_t len, char *pw, size_t pwlen)
{
	dsn_rewrite(dsn, buf, len, NULL, pw, pwlen);
}

static int db_new(const struct store_target *t, struct store_db **out, char *err, size_t errlen)
{
	struct store_db *db = calloc(1, sizeof(*db));
	char node[256] = "";

	*out = NULL;
	if (db == NULL)
		goto nomem;
	db->backend = t->backend;
	db->pool_size = t->pool_size > 0 ? t->pool_size : 1;
	if (t->node != NULL && t->node[0] != '\0')
		snprintf(node, sizeof(node), "%s", t->node);
	else if (gethostname(node, sizeof(node) - 1) != 0)
		snprintf(node, sizeof(node), "fedgate");
	if ((db->node = strdup(node)) == NULL)
		goto nomem;
	if (t->backend == STORE_POSTGRESQL) {
		char masked[600];
		char path[640];

		store_dsn_masked(t->dsn, masked, sizeof(masked));
		snprintf(path, sizeof(path), "PostgreSQL (%s)", masked);
		if ((db->path = strdup(path)) == NULL || (db->dsn = strdup(t->dsn)) == NULL)
			goto nomem;
	} else if ((db->path = strdup(t->path)) == NULL) {
		goto nomem;
	}
	*out = db;
	return FG_OK;
nomem:
	store_db_close(&db);
	store_db_set_err(err, errlen, "out of memory");
	return FG_NOMEM;
}

int store_open(const struct store_target *t, struct store_db **out, char *err, size_t errlen)
{
	struct store_db *db = NULL;
	int rc;

	*out = NULL;
	if (t->backend == STORE_POSTGRESQL && (t->dsn == NULL || t->dsn[0] == '\0')) {
		store_db_set_err(err, errlen,
				 "no dsn given for the PostgreSQL store; set [store] dsn, e.g. "
				 "dsn = host=db1 dbname=fedgate user=fedgate");
		return FG_INVAL;
	}
	if (t->backend == STORE_SQLITE && (t->path == NULL || t->path[0] == '\0')) {
		store_db_set_err(err, errlen, "no path given for the store");
		return FG_INVAL;
	}
	rc = db_new(t, &db, err, errlen);
	if (rc != FG_OK)
		return rc;
	rc = t->backend == STORE_POSTGRESQL ? store_pg_open(db, err, errlen)
					    : store_lite_open(db, t->path, err, errlen);
	if (rc != FG_OK) {
		store_db_close(&db);
		return rc;
	}
	*out = db;
	return FG_OK;
}

struct store_target store_target_of(const struct fg_conf *conf)
{
	struct store_target t = {
		.backend = conf->store_backend != NULL &&
					   strcmp(conf->store_backend, "postgresql") == 0
				   ? STORE_POSTGRESQL
				   : STORE_SQLITE,
		.path = conf->store_path,
		.dsn = conf->store_dsn,
		.pool_size = conf->store_pool_size,
		.node = conf->cluster_node,
	};

	return t;
}

int store_db_open(const char *path, struct store_db **out, char *err, size_t errlen)
{
	struct store_target t = {.backend = STORE_SQLITE, .path = path};

	return store_open(&t, out, err, errlen);
}

int store_db_open_again(struct store_db *db, struct store_db **out, char *err, size_t errlen)
{
	struct store_target t = {.backend = db->backend,
				 .path = db->backend == STORE_SQLITE ? db->path : NULL,
				 .dsn = db->dsn,
				 .pool_size = db->pool_size,
				 .node = db->node};

	return store_open(&t, out, err, errlen);
}

void store_db_close(struct store_db **pdb)
{
	struct store_db *db = *pdb;

	if (db == NULL)
		return;
	for (size_t i = 0; i < ST_COUNT; i++)
		store_stmt_free(db->st[i]);
	for (size_t i = 0; i < db->next; i++)
		store_stmt_free(db->ext[i].st);
	if (db->backend == STORE_POSTGRESQL)
		store_pg_close(db);
	else
		store_lite_close(db);
	free(db->path);
	if (db->dsn != NULL) {
		explicit_bzero(db->dsn, strlen(db->dsn));
		free(db->dsn);
	}
	free(db->node);
	free(db);
	*pdb = NULL;
}

unsigned store_db_pool_size(const struct store_db *db)
{
	return db->backend == STORE_POSTGRESQL ? db->pool_size : 1;
}

int store_db_schema_version(struct store_db *db)
{
	return db->version;
}

/* ---- load ---- */

static int pins_from_text(struct partner *p, const char *text)
{
	char pin[64];

	while (*text != '\0') {
		size_t n = strcspn(text, " ");
		/* A word too long to be a pin stays one that pins_valid()
		 * refuses, rather than a cut that might parse. */
		if (n >= sizeof(pin))
			snprintf(pin, sizeof(pin), "%s", "(too long)");
		else
			snprintf(pin, sizeof(pin), "%.*s", (int)n, text);
		if (n > 0 && partner_add_pin(p, pin) != FG_OK)
			return FG_NOMEM;
		text += n;
		text += strspn(text, " ");
	}
	return FG_OK;
}

static bool pins_valid(const struct partner *p)
{
	char norm[PIN_B64_LEN + 1];

	for (size_t i = 0; i < p->pins.n; i++)
		if (pin_normalize(p->pins.v[i], norm) != FG_OK || strcmp(norm, p->pins.v[i]) != 0)
			return false;
	return true;
}

static char *pins_to_text(const struct partner *p)
{
	char *t = malloc(p->pins.n * (PIN_B64_LEN + 1) + 1);
	size_t o = 0;

	if (t == NULL)
		return NULL;
	for (size_t i = 0; i < p->pins.n; i++)
		o += (size_t)sprintf(t + o, "%s%s", i ? " " : "", p->pins.v[i]);
	t[o] = '\0';
	return t;
}

/* Builds one partner from the first row of its group. */
static int partner_from_row(struct store_db *db, struct store_stmt *s, struct partner **out,
			    char *err, size_t errlen)
{
	const char *domain = store_db_col_text(s, 0), *desc = store_db_col_text(s, 1);
	const char *type = store_db_col_text(s, 2), *tls = store_db_col_text(s, 3),
		   *sasl = store_db_col_text(s, 4);
	const char *proxy = store_db_col_text(s, 8);
	long long dialback = store_col_int64(s, 5), keepalive = store_col_int64(s, 6);
	long long limit = store_col_int64(s, 7);
	long long enabled = store_col_int64(s, 10), bidi = store_col_int64(s, 11);
	const char *dane = store_db_col_text(s, 12), *pins = store_db_col_text(s, 13);
	struct partner *p;

	*out = NULL;
	/* NOT NULL columns read as NULL only when the copy ran out of memory. */
	if (domain == NULL || desc == NULL || type == NULL || tls == NULL || sasl == NULL ||
	    dane == NULL || pins == NULL || (proxy == NULL && !store_col_null(s, 8))) {
		store_db_set_err(err, errlen, "out of memory reading the store %s", db->path);
		return FG_NOMEM;
	}
	p = partner_new(domain);
	if (p == NULL) {
		store_db_set_err(err, errlen, "out of memory reading the store %s", db->path);
		return FG_NOMEM;
	}
	free(p->description);
	p->description = strdup(desc);
	p->proxy_fqdn = proxy != NULL ? strdup(proxy) : NULL;
	if (p->description == NULL || (proxy != NULL && p->proxy_fqdn == NULL)) {
		partner_free(&p);
		store_db_set_err(err, errlen, "out of memory reading the store %s", db->path);
		return FG_NOMEM;
	}
	p->dialback = dialback != 0;
	p->keepalive = keepalive != 0;
	p->connection_limit = (unsigned)limit;
	p->enabled = enabled != 0;
	p->bidi = bidi != 0;
	if (pins_from_text(p, pins) != FG_OK) {
		partner_free(&p);
		store_db_set_err(err, errlen, "out of memory reading the store %s", db->path);
		return FG_NOMEM;
	}

	const char *bad = NULL, *badval = NULL;
	long long badnum = 0;

	if (policy_parse_partner_type(type, &p->type) != FG_OK) {
		bad = "partner_type";
		badval = type;
	} else if (policy_parse_negotiation(tls, &p->tls) != FG_OK) {
		bad = "tls";
		badval = tls;
	} else if (policy_parse_negotiation(sasl, &p->sasl) != FG_OK) {
		bad = "sasl";
		badval = sasl;
	} else if (dialback != 0 && dialback != 1) {
		bad = "dialback";
		badnum = dialback;
	} else if (keepalive != 0 && keepalive != 1) {
		bad = "keepalive";
		badnum = keepalive;
	} else if (enabled != 0 && enabled != 1) {
		bad = "enabled";
		badnum = enabled;
	} else if (bidi != 0 && bidi != 1) {
		bad = "bidi";
		badnum = bidi;
	} else if (policy_parse_dane(dane, &p->dane) != FG_OK) {
		bad = "dane";
		badval = dane;
	} else if (!pins_valid(p)) {
		bad = "pins";
		badval = pins;
	} else if (limit < 0 || limit > UINT_MAX) {
		bad = "connection_limit";
		badnum = limit;
	}
	if (bad != NULL) {
		char num[24];

		if (badval == NULL) {
			snprintf(num, sizeof(num), "%lld", badnum);
			badval = num;
		}
		store_db_set_err(
			err, errlen,
			"the store %s holds partner %s with %s = \"%s\", which this fedgate "
			"cannot read; correct that row or restore a backup",
			db->path, domain, bad, badval);
		partner_free(&p);
		return FG_INVAL;
	}
	*out = p;
	return FG_OK;
}

/* policy_put() owns the partner from the call on, also when it fails. */
static int put_loaded(struct store_db *db, struct policy *pol, struct partner **p, char *err,
		      size_t errlen)
{
	char name[256];
	int rc;

	snprintf(name, sizeof(name), "%s", (*p)->domain);
	rc = policy_put(pol, *p);
	*p = NULL;
	if (rc == FG_NOMEM)
		store_db_set_err(err, errlen, "out of memory reading the store %s", db->path);
	else if (rc != FG_OK)
		store_db_set_err(
			err, errlen,
			"the store %s holds partner %s with a domain of another partner; correct "
			"those rows or restore a backup",
			db->path, name);
	return rc == FG_NOMEM ? rc : rc != FG_OK ? FG_INVAL : FG_OK;
}

static int load_partners(struct store_db *db, struct policy **out, char *err, size_t errlen)
{
	struct store_stmt *s = stmt(db, ST_LOAD_PARTNERS, err, errlen);
	struct policy *pol = NULL;
	struct partner *cur = NULL;
	int src, rc = FG_OK;

	*out = NULL;
	if (s == NULL)
		return FG_ERR;
	pol = policy_new();
	if (pol == NULL) {
		store_db_set_err(err, errlen, "out of memory reading the store %s", db->path);
		return FG_NOMEM;
	}
	while ((src = store_step(s)) == SDB_ROW) {
		const char *domain = store_db_col_text(s, 0), *extra = store_db_col_text(s, 9);

		if (domain == NULL) {
			store_db_set_err(err, errlen, "out of memory reading the store %s",
					 db->path);
			rc = FG_NOMEM;
			break;
		}
		if (cur == NULL || strcmp(cur->domain, domain) != 0) {
			if (cur != NULL) {
				rc = put_loaded(db, pol, &cur, err, errlen);
				if (rc != FG_OK)
					break;
			}
			rc = partner_from_row(db, s, &cur, err, errlen);
			if (rc != FG_OK)
				break;
		}
		if (extra != NULL) {
			rc = partner_add_domain(cur, extra);
			if (rc != FG_OK) {
				store_db_set_err(err, errlen, "out of memory reading the store %s",
						 db->path);
				break;
			}
		} else if (!store_col_null(s, 9)) {
			store_db_set_err(err, errlen, "out of memory reading the store %s",
					 db->path);
			rc = FG_NOMEM;
			break;
		}
	}
	if (rc == FG_OK && src != SDB_DONE)
		rc = fail(db, src, err, errlen, "read its partners");
	if (rc == FG_OK && cur != NULL)
		rc = put_loaded(db, pol, &cur, err, errlen);
	store_reset(s);
	partner_free(&cur);
	if (rc != FG_OK) {
		policy_free(&pol);
		return rc;
	}
	*out = pol;
	return FG_OK;
}

static bool parse_unsigned(const char *s, unsigned *out)
{
	unsigned long long v = 0;

	if (*s == '\0')
		return false;
	for (; *s != '\0'; s++) {
		if (*s < '0' || *s > '9')
			return false;
		v = v * 10 + (unsigned)(*s - '0');
		if (v > UINT_MAX)
			return false;
	}
	*out = (unsigned)v;
	return true;
}

static int load_gateway(struct store_db *db, struct gateway_settings *gw, char *err, size_t errlen)
{
	struct store_stmt *s = stmt(db, ST_LOAD_GATEWAY, err, errlen);
	int src, rc = FG_OK;

	if (s == NULL)
		return FG_ERR;
	while ((src = store_step(s)) == SDB_ROW) {
		const char *key = store_db_col_text(s, 0), *val = store_db_col_text(s, 1);
		const struct gw_key *k = NULL;

		if (key == NULL || val == NULL) {
			store_db_set_err(err, errlen, "out of memory reading the store %s",
					 db->path);
			rc = FG_NOMEM;
			break;
		}
		for (size_t i = 0; i < FG_ARRAY_LEN(gw_keys); i++) {
			if (strcmp(gw_keys[i].name, key) == 0)
				k = &gw_keys[i];
		}
		if (k == NULL) {
			/* Not ours to judge: a later fedgate may have written it.
			 * The value is not printed, it could be a secret. */
			log_warn("store", "%s: unknown gateway setting %s ignored", db->path, key);
			continue;
		}
		void *field = (char *)gw + k->off;
		bool ok = true;

		switch (k->type) {
		case GW_UNSIGNED: ok = parse_unsigned(val, field); break;
		case GW_BOOL: ok = policy_parse_bool(val, field) == FG_OK; break;
		case GW_SECRET: {
			char *copy = strdup(val);

			if (copy == NULL) {
				store_db_set_err(err, errlen, "out of memory reading the store %s",
						 db->path);
				rc = FG_NOMEM;
				break;
			}
			free(*(char **)field);
			*(char **)field = copy;
			break;
		}
		}
		if (rc != FG_OK)
			break;
		if (!ok) {
			store_db_set_err(
				err, errlen,
				"the store %s holds gateway setting %s = \"%s\", which this "
				"fedgate cannot read; correct that row or restore a backup",
				db->path, key, val);
			rc = FG_INVAL;
			break;
		}
	}
	if (rc == FG_OK && src != SDB_DONE)
		rc = fail(db, src, err, errlen, "read its gateway settings");
	store_reset(s);
	return rc;
}

int store_db_load(struct store_db *db, struct policy **partners, struct gateway_settings *gw,
		  char *err, size_t errlen)
{
	int rc;

	/* Defined contents from here on, so every exit may clear them. */
	if (partners != NULL)
		*partners = NULL;
	if (gw != NULL)
		gateway_defaults(gw);
	/* One read transaction: partners and settings from the same commit. */
	rc = run_cached(db, ST_BEGIN_READ, err, errlen, "start reading");
	if (rc != FG_OK)
		return rc;
	if (partners != NULL)
		rc = load_partners(db, partners, err, errlen);
	if (rc == FG_OK && gw != NULL)
		rc = load_gateway(db, gw, err, errlen);
	if (rc == FG_OK)
		rc = run_cached(db, ST_COMMIT, err, errlen, "finish reading");
	if (rc != FG_OK) {
		rollback(db);
		if (partners != NULL)
			policy_free(partners);
		if (gw != NULL) {
			gateway_clear(gw);
			gateway_defaults(gw);
		}
	}
	return rc;
}

/* ---- commit ---- */

/* "partner X" for the partner that holds `domain` as an additional domain
 * (with *self set when X is `self`), to name it in a message. */
static void domain_owner(struct store_db *db, const char *domain, const char *self, bool *is_self,
			 char *buf, size_t len)
{
	struct store_stmt *o = stmt(db, ST_DOMAIN_OWNER, NULL, 0);
	const char *owner;

	snprintf(buf, len, "another partner");
	*is_self = false;
	if (o == NULL)
		return;
	if (store_db_bind_text(o, 1, domain) == SDB_OK && store_step(o) == SDB_ROW &&
	    (owner = store_db_col_text(o, 0)) != NULL) {
		snprintf(buf, len, "partner %s", owner);
		*is_self = self != NULL && strcmp(owner, self) == 0;
	}
	store_reset(o);
}

static int insert_partner(struct store_db *db, const struct partner *p, char *err, size_t errlen)
{
	struct store_stmt *s = stmt(db, ST_PARTNER_INSERT, err, errlen);
	struct store_stmt *d = stmt(db, ST_DOMAIN_INSERT, err, errlen);
	char what[600];
	int src;

	if (s == NULL || d == NULL)
		return FG_ERR;
	if (p == NULL || p->domain == NULL || p->description == NULL) {
		store_db_set_err(err, errlen, "a partner to save has no domain or no description");
		return FG_INVAL;
	}
	src = store_db_bind_text(s, 1, p->domain);
	if (src == SDB_OK)
		src = store_db_bind_text(s, 2, p->description);
	if (src == SDB_OK)
		src = store_db_bind_text(s, 3, policy_partner_type_name(p->type));
	if (src == SDB_OK)
		src = store_db_bind_text(s, 4, policy_negotiation_name(p->tls));
	if (src == SDB_OK)
		src = store_db_bind_text(s, 5, policy_negotiation_name(p->sasl));
	if (src == SDB_OK)
		src = store_bind_int64(s, 6, p->dialback);
	if (src == SDB_OK)
		src = store_bind_int64(s, 7, p->keepalive);
	if (src == SDB_OK)
		src = store_bind_int64(s, 8, p->connection_limit);
	if (src == SDB_OK)
		src = store_db_bind_text(s, 9, p->proxy_fqdn);
	if (src == SDB_OK)
		src = store_bind_int64(s, 10, p->enabled);
	if (src == SDB_OK)
		src = store_bind_int64(s, 11, p->bidi);
	if (src == SDB_OK)
		src = store_db_bind_text(s, 12, policy_dane_name(p->dane));
	if (src == SDB_OK) {
		char *pins = pins_to_text(p);
		src = pins != NULL ? store_db_bind_text(s, 13, pins) : SDB_NOMEM;
		free(pins);
	}
	if (src == SDB_OK)
		src = store_step(s);
	store_reset(s);
	if (src == SDB_CONSTRAINT_PRIMARYKEY) {
		store_db_set_err(err, errlen,
				 "partner %s already exists (saved by another change meanwhile, or "
				 "listed twice in this one); nothing was saved",
				 p->domain);
		return FG_INVAL;
	}
	if (src == SDB_CONSTRAINT_TRIGGER) {
		char owner[300];
		bool self;

		domain_owner(db, p->domain, NULL, &self, owner, sizeof(owner));
		store_db_set_err(
			err, errlen,
			"the domain %s is already an additional domain of %s (a domain may belong "
			"to one partner only); nothing was saved",
			p->domain, owner);
		return FG_INVAL;
	}
	if (src != SDB_DONE) {
		snprintf(what, sizeof(what), "save partner %.253s", p->domain);
		return fail(db, src, err, errlen, what);
	}

	for (size_t i = 0; i < p->additional_domains.n; i++) {
		const char *x = p->additional_domains.v[i];

		src = store_db_bind_text(d, 1, x);
		if (src == SDB_OK)
			src = store_db_bind_text(d, 2, p->domain);
		if (src == SDB_OK)
			src = store_step(d);
		store_reset(d);
		if (src == SDB_DONE)
			continue;
		if (src == SDB_CONSTRAINT_TRIGGER && strcmp(x, p->domain) == 0) {
			store_db_set_err(
				err, errlen,
				"partner %s lists its primary domain as an additional domain; "
				"nothing was saved",
				p->domain);
			return FG_INVAL;
		}
		if (src == SDB_CONSTRAINT_TRIGGER) {
			store_db_set_err(
				err, errlen,
				"the additional domain %s of partner %s is the primary domain of "
				"partner %s (a domain may belong to one partner only); nothing was "
				"saved",
				x, p->domain, x);
			return FG_INVAL;
		}
		if (src == SDB_CONSTRAINT_PRIMARYKEY) {
			char owner[300];
			bool self;

			domain_owner(db, x, p->domain, &self, owner, sizeof(owner));
			if (self)
				store_db_set_err(err, errlen,
						 "partner %s lists the additional domain %s twice; "
						 "nothing was saved",
						 p->domain, x);
			else
				store_db_set_err(
					err, errlen,
					"the additional domain %s of partner %s already belongs to "
					"%s (a domain may belong to one partner only); nothing was "
					"saved",
					x, p->domain, owner);
			return FG_INVAL;
		}
		snprintf(what, sizeof(what), "save the additional domain %.253s of partner %.253s",
			 x, p->domain);
		return fail(db, src, err, errlen, what);
	}
	return FG_OK;
}

static int delete_partner(struct store_db *db, const char *domain, bool must_exist, char *err,
			  size_t errlen)
{
	struct store_stmt *s = stmt(db, ST_PARTNER_DELETE, err, errlen);
	char what[320];
	int src = SDB_OK;

	if (s == NULL)
		return FG_ERR;
	if (domain == NULL) {
		store_db_set_err(err, errlen, "no partner domain given to delete");
		return FG_INVAL;
	}
	src = store_db_bind_text(s, 1, domain);
	if (src == SDB_OK)
		src = store_db_run(s);
	if (src != SDB_DONE) {
		snprintf(what, sizeof(what), "delete partner %.253s", domain);
		return fail(db, src, err, errlen, what);
	}
	/* changes() counts the partner row only, not the cascade. */
	if (must_exist && store_db_changes(db) == 0) {
		store_db_set_err(err, errlen, "there is no partner %s; nothing was saved", domain);
		return FG_NOTFOUND;
	}
	return FG_OK;
}

static int put_gateway(struct store_db *db, const struct gateway_settings *gw, char *err,
		       size_t errlen)
{
	struct store_stmt *put = stmt(db, ST_GATEWAY_PUT, err, errlen);
	struct store_stmt *del = stmt(db, ST_GATEWAY_DELETE, err, errlen);

	if (put == NULL || del == NULL)
		return FG_ERR;
	if (gw == NULL) {
		store_db_set_err(err, errlen, "no gateway settings given to save");
		return FG_INVAL;
	}
	for (size_t i = 0; i < FG_ARRAY_LEN(gw_keys); i++) {
		const struct gw_key *k = &gw_keys[i];
		const void *field = (const char *)gw + k->off;
		char num[24];
		const char *val = NULL;
		struct store_stmt *s = put;
		int src;

		switch (k->type) {
		case GW_UNSIGNED:
			snprintf(num, sizeof(num), "%u", *(const unsigned *)field);
			val = num;
			break;
		case GW_BOOL: val = *(const bool *)field ? "true" : "false"; break;
		case GW_SECRET: val = *(char *const *)field; break;
		}
		/* An unset secret is no row, so it loads back as NULL. */
		if (val == NULL)
			s = del;
		src = store_db_bind_text(s, 1, k->name);
		if (src == SDB_OK && val != NULL)
			src = store_db_bind_text(s, 2, val);
		if (src == SDB_OK)
			src = store_db_run(s);
		if (src != SDB_DONE) {
			char what[96];

			snprintf(what, sizeof(what), "save gateway setting %s", k->name);
			return fail(db, src, err, errlen, what);
		}
	}
	return FG_OK;
}

static int apply_op(struct store_db *db, const struct store_op *op, char *err, size_t errlen)
{
	int rc;

	switch (op->kind) {
	case STORE_PUT_PARTNER:
		if (op->partner == NULL || op->partner->domain == NULL) {
			store_db_set_err(err, errlen, "no partner given to save");
			return FG_INVAL;
		}
		rc = delete_partner(db, op->partner->domain, false, err, errlen);
		if (rc == FG_OK)
			rc = insert_partner(db, op->partner, err, errlen);
		return rc;
	case STORE_NEW_PARTNER:
		/* Another writer (a second CLI, say) may have made it since this
		 * one loaded: refused by the primary key, never overwritten. */
		if (op->partner == NULL || op->partner->domain == NULL) {
			store_db_set_err(err, errlen, "no partner given to save");
			return FG_INVAL;
		}
		return insert_partner(db, op->partner, err, errlen);
	case STORE_DELETE_PARTNER: return delete_partner(db, op->domain, true, err, errlen);
	case STORE_REPLACE_PARTNERS: {
		struct store_stmt *s = stmt(db, ST_PARTNER_DELETE_ALL, err, errlen);
		int src;

		if (s == NULL)
			return FG_ERR;
		if (op->npartners > 0 && op->partners == NULL) {
			store_db_set_err(err, errlen, "no partners given to save");
			return FG_INVAL;
		}
		src = store_db_run(s);
		if (src != SDB_DONE)
			return fail(db, src, err, errlen, "delete the partners");
		for (size_t i = 0; i < op->npartners; i++) {
			rc = insert_partner(db, op->partners[i], err, errlen);
			if (rc != FG_OK)
				return rc;
		}
		return FG_OK;
	}
	case STORE_PUT_GATEWAY: return put_gateway(db, op->gw, err, errlen);
	case STORE_CUSTOM:
		if (op->custom == NULL) {
			store_db_set_err(err, errlen, "no change given to save");
			return FG_INVAL;
		}
		return op->custom(db, op->custom_arg, err, errlen);
	}
	store_db_set_err(err, errlen, "unknown store operation %d", (int)op->kind);
	return FG_INVAL;
}

static int insert_audit(struct store_db *db, const struct audit_entry *e, char *err, size_t errlen)
{
	struct store_stmt *s = stmt(db, ST_AUDIT_INSERT, err, errlen);
	int src;

	if (s == NULL)
		return FG_ERR;
	if (e->who == NULL || e->iface == NULL || e->action == NULL || e->target == NULL) {
		store_db_set_err(err, errlen,
				 "an audit record lacks who, interface, action or target");
		return FG_INVAL;
	}
	src = store_bind_int64(s, 1, e->at_ms != 0 ? e->at_ms : fg_now_ms());
	if (src == SDB_OK)
		src = store_db_bind_text(s, 2, e->who);
	if (src == SDB_OK)
		src = store_db_bind_text(s, 3, e->iface);
	if (src == SDB_OK)
		src = store_db_bind_text(s, 4, e->action);
	if (src == SDB_OK)
		src = store_db_bind_text(s, 5, e->target);
	if (src == SDB_OK)
		src = store_db_bind_text(s, 6, e->before);
	if (src == SDB_OK)
		src = store_db_bind_text(s, 7, e->after);
	if (src == SDB_OK)
		src = store_db_run(s);
	if (src != SDB_DONE)
		return fail(db, src, err, errlen, "write the audit log");
	return FG_OK;
}

/* The channel and payload the other nodes LISTEN to (store_watch.c):
 * {"node":"NODE","at_ms":MS,"actions":["partner set fabrikam.test",...]}.
 * The audit records name the actions; without them, the ops do. A payload
 * must stay under PostgreSQL's 8000 bytes: the actions that do not fit are
 * counted in "more" instead. */
#define CONFIG_CHANNEL "fedgate_config"
#define NOTIFY_MAX     7900

static bool touches_config(const struct store_op *ops, size_t nops)
{
	for (size_t i = 0; i < nops; i++)
		if (ops[i].kind != STORE_CUSTOM)
			return true;
	return false;
}

static int add_action(json_t *arr, size_t *used, size_t *more, const char *a, const char *b)
{
	char buf[600];
	json_t *v;

	size_t len = 3; /* quotes and a comma */

	snprintf(buf, sizeof(buf), "%s%s%s", a, b != NULL ? " " : "", b != NULL ? b : "");
	/* As jansson writes it: UTF-8 as it is, " and \ escaped in 2 bytes,
	 * other controls in 6. */
	for (const unsigned char *c = (const unsigned char *)buf; *c != '\0'; c++)
		len += *c == '"' || *c == '\\' ? 2 : *c < 0x20 ? 6 : 1;
	if (*used + len > NOTIFY_MAX) {
		(*more)++;
		return FG_OK;
	}
	v = json_string(buf);
	if (v == NULL || json_array_append_new(arr, v) != 0)
		return FG_NOMEM;
	*used += len;
	return FG_OK;
}

const char *audit_target_shown(const char *action, const char *target)
{
	size_t n = target != NULL ? strlen(target) : 0;

	if (action != NULL && n > 0 && strncmp(action, target, n) == 0 && action[n] == ' ')
		return NULL;
	return target;
}

static char *config_payload(const struct store_db *db, const struct store_op *ops, size_t nops,
			    const struct audit_entry *audit, size_t naudit)
{
	json_t *o = json_object(), *arr = json_array();
	/* node (a host name or [cluster] node: no escapes) and the rest. */
	size_t used = 100 + strlen(db->node), more = 0;
	int rc = o != NULL && arr != NULL ? FG_OK : FG_NOMEM;
	char *text = NULL;

	for (size_t i = 0; rc == FG_OK && i < naudit; i++)
		rc = add_action(arr, &used, &more, audit[i].action,
				audit_target_shown(audit[i].action, audit[i].target));
	for (size_t i = 0; rc == FG_OK && naudit == 0 && i < nops; i++) {
		const struct store_op *op = &ops[i];

		switch (op->kind) {
		case STORE_PUT_PARTNER:
			rc = add_action(arr, &used, &more, "partner set", op->partner->domain);
			break;
		case STORE_NEW_PARTNER:
			rc = add_action(arr, &used, &more, "partner new", op->partner->domain);
			break;
		case STORE_DELETE_PARTNER:
			rc = add_action(arr, &used, &more, "partner delete", op->domain);
			break;
		case STORE_REPLACE_PARTNERS:
			rc = add_action(arr, &used, &more, "partner import", NULL);
			break;
		case STORE_PUT_GATEWAY:
			rc = add_action(arr, &used, &more, "gateway set", NULL);
			break;
		case STORE_CUSTOM: break;
		}
	}
	if (rc == FG_OK && json_object_set_new(o, "node", json_string(db->node)) == 0 &&
	    json_object_set_new(o, "at_ms", json_integer(fg_now_ms())) == 0 &&
	    json_object_set(o, "actions", arr) == 0 &&
	    (more == 0 || json_object_set_new(o, "more", json_integer((json_int_t)more)) == 0))
		text = json_dumps(o, JSON_COMPACT | JSON_PRESERVE_ORDER);
	json_decref(arr);
	json_decref(o);
	return text;
}

/* Inside the transaction: PostgreSQL delivers it on COMMIT only, so a
 * rolled-back change tells no one. */
static int notify_config(struct store_db *db, const struct store_op *ops, size_t nops,
			 const struct audit_entry *audit, size_t naudit, char *err, size_t errlen)
{
	char *payload;
	int rc;

	if (db->backend != STORE_POSTGRESQL || !touches_config(ops, nops))
		return FG_OK;
	payload = config_payload(db, ops, nops, audit, naudit);
	if (payload == NULL) {
		store_db_set_err(err, errlen, "out of memory; nothing was saved");
		return FG_NOMEM;
	}
	rc = store_pg_notify(db, CONFIG_CHANNEL, payload, err, errlen);
	free(payload);
	return rc;
}

int store_db_commit(struct store_db *db, const struct store_op *ops, size_t nops,
		    const struct audit_entry *audit, size_t naudit, char *err, size_t errlen)
{
	int rc;

	if ((nops > 0 && ops == NULL) || (naudit > 0 && audit == NULL)) {
		store_db_set_err(err, errlen, "nothing given to save");
		return FG_INVAL;
	}
	/* SQLite: IMMEDIATE takes the write lock now (waiting up to
	 * busy_timeout for another writer), so no statement inside can fail
	 * as busy. */
	rc = run_cached(db, ST_BEGIN, err, errlen, "start a transaction");
	if (rc != FG_OK)
		return rc;
	for (size_t i = 0; i < nops && rc == FG_OK; i++)
		rc = apply_op(db, &ops[i], err, errlen);
	for (size_t i = 0; i < naudit && rc == FG_OK; i++)
		rc = insert_audit(db, &audit[i], err, errlen);
	if (rc == FG_OK)
		rc = notify_config(db, ops, nops, audit, naudit, err, errlen);
	if (rc == FG_OK)
		rc = run_cached(db, ST_COMMIT, err, errlen, "commit the change");
	if (rc != FG_OK)
		rollback(db);
	return rc;
}

int store_db_dialback_secret(struct store_db *db, const char *candidate,
			     const struct audit_entry *a, char **out, char *err, size_t errlen)
{
	struct store_stmt *ins = stmt(db, ST_SECRET_INSERT, err, errlen);
	struct store_stmt *get = stmt(db, ST_SECRET_GET, err, errlen);
	const char *v;
	int src, rc;

	*out = NULL;
	if (ins == NULL || get == NULL)
		return FG_ERR;
	rc = run_cached(db, ST_BEGIN, err, errlen, "start a transaction");
	if (rc != FG_OK)
		return rc;
	/* Insert-if-absent, then read back: of nodes starting together on one
	 * fresh database, the first commit wins and the others read it. */
	src = store_db_bind_text(ins, 1, candidate);
	if (src == SDB_OK)
		src = store_db_run(ins);
	if (src != SDB_DONE)
		rc = fail(db, src, err, errlen, "save the dialback secret");
	if (rc == FG_OK && store_db_changes(db) > 0 && a != NULL)
		rc = insert_audit(db, a, err, errlen);
	if (rc == FG_OK) {
		src = store_step(get);
		if (src == SDB_ROW && (v = store_db_col_text(get, 0)) != NULL) {
			*out = strdup(v);
			if (*out == NULL) {
				store_db_set_err(err, errlen, "out of memory");
				rc = FG_NOMEM;
			}
		} else {
			rc = fail(db, src == SDB_ROW ? SDB_NOMEM : src, err, errlen,
				  "read the dialback secret");
		}
		store_reset(get);
	}
	rc = store_db_end(db, rc, err, errlen);
	if (rc != FG_OK && *out != NULL) {
		explicit_bzero(*out, strlen(*out));
		free(*out);
		*out = NULL;
	}
	return rc;
}

/* ---- for the other store files ---- */

int store_db_fail(struct store_db *db, int src, char *err, size_t errlen, const char *what)
{
	return fail(db, src, err, errlen, what);
}

int store_db_begin(struct store_db *db, char *err, size_t errlen)
{
	return run_cached(db, ST_BEGIN, err, errlen, "start a transaction");
}

int store_db_end(struct store_db *db, int rc, char *err, size_t errlen)
{
	if (rc == FG_OK)
		rc = run_cached(db, ST_COMMIT, err, errlen, "commit the change");
	if (rc != FG_OK)
		rollback(db);
	return rc;
}

/* ---- audit ---- */

int store_db_audit(struct store_db *db, long long since_ms, store_audit_cb cb, void *ud, char *err,
		   size_t errlen)
{
	struct store_stmt *s = stmt(db, ST_AUDIT_SELECT, err, errlen);
	int src, rc = FG_OK;

	if (s == NULL)
		return FG_ERR;
	src = store_bind_int64(s, 1, since_ms);
	if (src != SDB_OK)
		return fail(db, src, err, errlen, "read the audit log");
	while ((src = store_step(s)) == SDB_ROW) {
		struct audit_entry e = {
			.at_ms = store_col_int64(s, 1),
			.who = store_db_col_text(s, 2),
			.iface = store_db_col_text(s, 3),
			.action = store_db_col_text(s, 4),
			.target = store_db_col_text(s, 5),
			.before = store_db_col_text(s, 6),
			.after = store_db_col_text(s, 7),
		};

		if (e.who == NULL || e.iface == NULL || e.action == NULL || e.target == NULL) {
			store_db_set_err(err, errlen, "out of memory reading the audit log of %s",
					 db->path);
			rc = FG_NOMEM;
			break;
		}
		if (cb(ud, store_col_int64(s, 0), &e) != 0)
			break;
	}
	if (rc == FG_OK && src != SDB_ROW && src != SDB_DONE)
		rc = fail(db, src, err, errlen, "read the audit log");
	store_reset(s);
	return rc;
}

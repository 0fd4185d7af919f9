/* `fedgate check`: what an operator would check by hand before and after
 * starting the gateway, in the order problems depend on each other:
 * the configuration, the certificates, DNS, the listeners, the store.
 *
 * Every finding is one line with a level; warnings and errors add a line
 * that says how to fix them. Nothing here changes anything: the store is
 * never created or migrated, sockets are bound and closed at once. */
#include "health.h"
#include "redis.h"
#include "privs.h"

#include "conf.h"
#include "control.h"
#include "dns.h"
#include "fg.h"
#include "log.h"
#include "store_sqlite.h"
#include "tls.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <event2/event.h>
#include <event2/util.h>
#include <getopt.h>
#include <jansson.h>
#include <libgen.h>
#include <limits.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>
#include <pwd.h>
#include <sqlite3.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#define EXPIRY_WARN_DAYS 30
#define DNS_TIMEOUT_S	 10
#define MAX_PORTS	 16
#define MAX_TARGETS	 16 /* SRV targets looked up, per local domain */

/* ---- findings ---- */

enum level { LV_OK, LV_WARN, LV_ERR };

struct report {
	FILE *out;
	unsigned n[3];
	/* --json: the findings are collected here and printed at the end */
	json_t *sections;
	json_t *cur; /* the current section object */
};

static const char *const level_names[] = {"ok", "warning", "error"};

static void section(struct report *r, const char *name)
{
	if (r->sections == NULL) {
		fprintf(r->out, "\n%s\n", name);
		return;
	}
	r->cur = json_pack("{s:s, s:[]}", "name", name, "findings");
	json_array_append_new(r->sections, r->cur);
}

/* One finding; fix (may be NULL for ok) is printed under warnings and
 * errors. */
static void finding(struct report *r, enum level lv, const char *fix, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));

static void finding(struct report *r, enum level lv, const char *fix, const char *fmt, ...)
{
	bool has_fix = lv != LV_OK && fix != NULL && fix[0] != '\0';
	char *text = NULL;
	va_list ap;
	int n;

	r->n[lv]++;
	va_start(ap, fmt);
	n = vasprintf(&text, fmt, ap);
	va_end(ap);
	if (n < 0)
		text = NULL;
	if (r->sections == NULL) {
		fprintf(r->out, "  %-8s %s\n", level_names[lv],
			text != NULL ? text : "(out of memory)");
		if (has_fix)
			fprintf(r->out, "  %-8s fix: %s\n", "", fix);
	} else if (r->cur != NULL) {
		json_t *f = json_pack("{s:s, s:s?}", "level", level_names[lv], "text", text);
		if (f != NULL && has_fix)
			json_object_set_new(f, "fix", json_string(fix));
		json_array_append_new(json_object_get(r->cur, "findings"), f);
	}
	free(text);
}

static void skipped(struct report *r, const char *why)
{
	if (r->sections == NULL)
		fprintf(r->out, "  skipped: %s\n", why);
	else if (r->cur != NULL)
		json_object_set_new(r->cur, "skipped", json_string(why));
}

/* printf into a caller's buffer, for fixes built from values. */
static const char *fmtbuf(char *buf, size_t len, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static const char *fmtbuf(char *buf, size_t len, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(buf, len, fmt, ap);
	va_end(ap);
	return buf;
}

/* "user alice (uid 1000)": who a permission problem is about. */
static const char *whoami(void)
{
	static char who[96];
	struct passwd *pw = getpwuid(geteuid());

	if (pw != NULL)
		snprintf(who, sizeof(who), "user %s (uid %u)", pw->pw_name, (unsigned)geteuid());
	else
		snprintf(who, sizeof(who), "uid %u", (unsigned)geteuid());
	return who;
}

/* Why a file could not be opened, naming permission problems as such: an
 * operator reads "missing" and goes looking for the wrong thing. */
static void open_error(char *buf, size_t len, int e)
{
	if (e == EACCES || e == EPERM)
		snprintf(buf, len, "permission denied for %s", whoami());
	else if (e == ENOENT)
		snprintf(buf, len, "no such file");
	else
		snprintf(buf, len, "%s", strerror(e));
}

/* ---- 1. configuration ---- */

static struct fg_conf *check_conf(struct report *r, const char *path)
{
	struct fg_conf *c = NULL;
	char *text = NULL;
	size_t len = 0;
	FILE *errs = open_memstream(&text, &len);
	int rc;

	section(r, "configuration");
	if (errs == NULL) {
		finding(r, LV_ERR, NULL, "out of memory");
		return NULL;
	}
	rc = conf_load(path, &c, errs);
	fclose(errs);
	if (rc == FG_OK) {
		char doms[512] = "";
		for (size_t i = 0; i < c->domains.n; i++)
			fg_appendf(doms, sizeof(doms), "%s%s", i ? ", " : "", c->domains.v[i]);
		finding(r, LV_OK, NULL, "%s is valid; local domain%s: %s", path,
			c->domains.n == 1 ? "" : "s", doms);
	} else {
		/* conf_load's lines already say what is wrong and how to fix it. */
		char *save = NULL;
		for (char *line = strtok_r(text, "\n", &save); line != NULL;
		     line = strtok_r(NULL, "\n", &save))
			finding(r, LV_ERR,
				"correct the line; 'fedgate check --config' prints the effective "
				"configuration once the file is valid",
				"%s", line);
		if (text == NULL || text[0] == '\0')
			finding(r, LV_ERR, NULL, "%s cannot be loaded", path);
	}
	free(text);
	return c;
}

/* ---- 2. certificates ---- */

static int no_passphrase(char *buf, int size, int rwflag, void *u)
{
	(void)buf;
	(void)size;
	(void)rwflag;
	(void)u;
	return -1; /* never prompt: the daemon cannot either */
}

static void name_text(char *out, size_t len, const X509_NAME *name)
{
	char *s = X509_NAME_oneline(name, NULL, 0);

	snprintf(out, len, "%s", s != NULL ? s : "(no name)");
	OPENSSL_free(s);
}

static void time_text(char *out, size_t len, const ASN1_TIME *t)
{
	struct tm tm;

	if (t == NULL || ASN1_TIME_to_tm(t, &tm) != 1 ||
	    strftime(out, len, "%Y-%m-%d %H:%M UTC", &tm) == 0)
		snprintf(out, len, "an unreadable date");
}

static void ssl_error(char *buf, size_t len)
{
	tls_last_error(buf, len);
	ERR_clear_error();
}

/* The certificates of a PEM file: the first is ours, the rest the chain we
 * send with it. */
static int load_certs(const char *path, X509 **leaf, STACK_OF(X509) * *extra, char *why,
		      size_t whylen)
{
	FILE *f = fopen(path, "r");
	X509 *x;

	*leaf = NULL;
	*extra = NULL;
	if (f == NULL) {
		open_error(why, whylen, errno);
		return FG_ERR;
	}
	*extra = sk_X509_new_null();
	while ((x = PEM_read_X509(f, NULL, NULL, NULL)) != NULL) {
		if (*leaf == NULL)
			*leaf = x;
		else if (*extra == NULL || sk_X509_push(*extra, x) <= 0)
			X509_free(x);
	}
	ERR_clear_error(); /* the end of the file is reported as an error */
	fclose(f);
	if (*leaf == NULL) {
		snprintf(why, whylen, "it holds no PEM certificate");
		sk_X509_pop_free(*extra, X509_free);
		*extra = NULL;
		return FG_ERR;
	}
	return FG_OK;
}

static EVP_PKEY *load_key(const char *path, char *why, size_t whylen)
{
	FILE *f = fopen(path, "r");
	EVP_PKEY *k;
	char e[200];

	if (f == NULL) {
		open_error(why, whylen, errno);
		return NULL;
	}
	k = PEM_read_PrivateKey(f, NULL, no_passphrase, NULL);
	fclose(f);
	if (k == NULL) {
		ssl_error(e, sizeof(e));
		snprintf(why, whylen,
			 "it holds no readable PEM private key (%s); an encrypted key is not "
			 "supported",
			 e);
	}
	return k;
}

struct chain_fail {
	int err;
	int depth;
	X509 *cert; /* reference held */
};

static int chain_fail_idx = -1;

/* Records the first chain problem; the leaf's dates are left to the date
 * finding, so that one expired certificate is not reported twice. */
static int verify_cb(int ok, X509_STORE_CTX *x)
{
	int e = X509_STORE_CTX_get_error(x);
	int depth = X509_STORE_CTX_get_error_depth(x);
	struct chain_fail *cf = X509_STORE_CTX_get_ex_data(x, chain_fail_idx);

	if (ok)
		return 1;
	if (depth == 0 && (e == X509_V_ERR_CERT_HAS_EXPIRED || e == X509_V_ERR_CERT_NOT_YET_VALID))
		return 1;
	if (cf != NULL && cf->err == X509_V_OK) {
		cf->err = e;
		cf->depth = depth;
		cf->cert = X509_STORE_CTX_get_current_cert(x);
		if (cf->cert != NULL)
			X509_up_ref(cf->cert);
	}
	return 0;
}

/* Does the chain in the file reach a trust anchor of ca_file (or the system
 * store), and if not, which link is missing? */
static void check_chain(struct report *r, const char *label, const char *cert_path, X509 *leaf,
			STACK_OF(X509) * extra, const char *ca_file)
{
	X509_STORE *store = X509_STORE_new();
	X509_STORE_CTX *ctx = X509_STORE_CTX_new();
	struct chain_fail cf = {X509_V_OK, 0, NULL};
	char anchors[PATH_MAX + 32], why[256], subj[256], issuer[256], fix[1024];
	bool have_ca = ca_file != NULL && ca_file[0] != '\0';

	if (have_ca)
		snprintf(anchors, sizeof(anchors), "[tls] ca_file %s", ca_file);
	else
		snprintf(anchors, sizeof(anchors), "the system trust store");
	if (store == NULL || ctx == NULL) {
		finding(r, LV_ERR, NULL, "out of memory checking the chain of %s", cert_path);
		goto out;
	}
	if (have_ca) {
		FILE *f = fopen(ca_file, "r");
		if (f == NULL) {
			open_error(why, sizeof(why), errno);
			finding(r, LV_ERR,
				"make [tls] ca_file a readable PEM file of trust anchors",
				"cannot read [tls] ca_file %s: %s", ca_file, why);
			goto out;
		}
		fclose(f);
		if (X509_STORE_load_file(store, ca_file) != 1) {
			ssl_error(why, sizeof(why));
			finding(r, LV_ERR, "make [tls] ca_file a PEM file of CA certificates",
				"cannot load [tls] ca_file %s: %s", ca_file, why);
			goto out;
		}
	} else if (X509_STORE_set_default_paths(store) != 1) {
		ssl_error(why, sizeof(why));
		finding(r, LV_ERR, "install ca-certificates, or set [tls] ca_file",
			"cannot load the system trust store: %s", why);
		goto out;
	}
	if (chain_fail_idx < 0)
		chain_fail_idx = X509_STORE_CTX_get_ex_new_index(0, NULL, NULL, NULL, NULL);
	X509_STORE_set_verify_cb(store, verify_cb);
	if (X509_STORE_CTX_init(ctx, store, leaf, extra) != 1 ||
	    X509_STORE_CTX_set_ex_data(ctx, chain_fail_idx, &cf) != 1) {
		ssl_error(why, sizeof(why));
		finding(r, LV_ERR, NULL, "cannot check the chain of %s: %s", cert_path, why);
		goto out;
	}
	if (X509_verify_cert(ctx) == 1) {
		STACK_OF(X509) *chain = X509_STORE_CTX_get0_chain(ctx);
		char path_text[768] = "";
		for (int i = 0; chain != NULL && i < sk_X509_num(chain); i++) {
			name_text(subj, sizeof(subj),
				  X509_get_subject_name(sk_X509_value(chain, i)));
			fg_appendf(path_text, sizeof(path_text), "%s%s", i ? " <- " : "", subj);
		}
		finding(r, LV_OK, NULL, "%s chain complete up to a trust anchor of %s: %s", label,
			anchors, path_text);
		goto out;
	}
	if (cf.err == X509_V_OK) {
		cf.err = X509_STORE_CTX_get_error(ctx);
		cf.depth = X509_STORE_CTX_get_error_depth(ctx);
	}
	if (cf.cert != NULL) {
		name_text(subj, sizeof(subj), X509_get_subject_name(cf.cert));
		name_text(issuer, sizeof(issuer), X509_get_issuer_name(cf.cert));
	} else {
		snprintf(subj, sizeof(subj), "(unknown)");
		snprintf(issuer, sizeof(issuer), "(unknown)");
	}
	switch (cf.err) {
	case X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT:
	case X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT_LOCALLY:
	case X509_V_ERR_UNABLE_TO_VERIFY_LEAF_SIGNATURE:
		finding(r, LV_ERR,
			fmtbuf(fix, sizeof(fix),
			       "append the certificate of %s (your CA's intermediate) to %s after "
			       "yours -- ACME clients call that file fullchain.pem; if %s is a "
			       "root partners trust, add it to %s",
			       issuer, cert_path, issuer,
			       have_ca ? "[tls] ca_file"
				       : "the system trust store or [tls] ca_file"),
			"%s chain incomplete: it stops at %s (depth %d), whose issuer %s is "
			"neither in %s nor a trust anchor of %s",
			label, subj, cf.depth, issuer, cert_path, anchors);
		break;
	case X509_V_ERR_SELF_SIGNED_CERT_IN_CHAIN:
		finding(r, LV_ERR,
			fmtbuf(fix, sizeof(fix),
			       "if partners trust that root, add it to [tls] ca_file; otherwise "
			       "get "
			       "a certificate from a CA partners trust"),
			"%s chain ends at the root %s, which is not a trust anchor of %s", label,
			subj, anchors);
		break;
	case X509_V_ERR_CERT_HAS_EXPIRED:
		time_text(why, sizeof(why), cf.cert ? X509_get0_notAfter(cf.cert) : NULL);
		finding(r, LV_ERR,
			fmtbuf(fix, sizeof(fix),
			       "replace %s in %s with the CA's current certificate", subj,
			       cert_path),
			"%s chain: the CA certificate %s (depth %d) expired on %s", label, subj,
			cf.depth, why);
		break;
	default:
		finding(r, LV_ERR,
			fmtbuf(fix, sizeof(fix),
			       "check the certificates in %s and the trust anchors of %s",
			       cert_path, anchors),
			"%s chain does not verify at depth %d (%s): %s", label, cf.depth, subj,
			X509_verify_cert_error_string(cf.err));
		break;
	}
out:
	X509_free(cf.cert);
	X509_STORE_CTX_free(ctx);
	X509_STORE_free(store);
}

static void check_dates(struct report *r, const char *label, const char *path, X509 *leaf)
{
	const ASN1_TIME *nb = X509_get0_notBefore(leaf), *na = X509_get0_notAfter(leaf);
	char when[40], fix[512];
	int days = 0, secs = 0;

	if (X509_cmp_current_time(nb) > 0) {
		time_text(when, sizeof(when), nb);
		finding(r, LV_ERR,
			"check this host's clock; if it is right, the certificate was issued for "
			"the future: reissue it",
			"%s certificate %s is not valid before %s", label, path, when);
		return;
	}
	time_text(when, sizeof(when), na);
	if (X509_cmp_current_time(na) < 0) {
		finding(r, LV_ERR,
			fmtbuf(fix, sizeof(fix),
			       "renew it and put the new certificate in %s (then 'fedgate reload' "
			       "or restart)",
			       path),
			"%s certificate %s expired on %s", label, path, when);
		return;
	}
	if (ASN1_TIME_diff(&days, &secs, NULL, na) != 1)
		days = 0;
	if (days < EXPIRY_WARN_DAYS)
		finding(r, LV_WARN,
			fmtbuf(fix, sizeof(fix),
			       "renew it before then and put the new certificate in %s (then "
			       "'fedgate reload' or restart)",
			       path),
			"%s certificate %s expires on %s, in %d day%s", label, path, when, days,
			days == 1 ? "" : "s");
	else
		finding(r, LV_OK, NULL, "%s certificate valid until %s (%d days)", label, when,
			days);
}

/* fedgate shows the same certificate as a TLS server (inbound) and as a
 * TLS client (outbound s2s, tls_client_ctx_new), so both purposes count. */
static void check_eku(struct report *r, const char *label, X509 *leaf, bool client_too)
{
	uint32_t xku;

	if (!(X509_get_extension_flags(leaf) & EXFLAG_XKUSAGE)) {
		finding(r, LV_OK, NULL, "%s certificate has no extendedKeyUsage restriction",
			label);
		return;
	}
	xku = X509_get_extended_key_usage(leaf);
	if (!(xku & XKU_SSL_SERVER)) {
		finding(r, LV_ERR,
			"reissue it with extendedKeyUsage serverAuth (and clientAuth), or with no "
			"extendedKeyUsage at all",
			"%s certificate's extendedKeyUsage does not allow serverAuth: peers refuse "
			"it "
			"as a server certificate",
			label);
		return;
	}
	if (client_too && !(xku & XKU_SSL_CLIENT)) {
		/* What public CAs issue since 2026. fedgate accepts it from
		 * peers as a client certificate, and so does Prosody; a peer
		 * that insists on clientAuth falls back to dialback. */
		finding(r, LV_OK, NULL,
			"%s certificate's extendedKeyUsage is serverAuth only (as public CAs issue "
			"since 2026); fedgate also presents it as the TLS client of outbound s2s "
			"streams, where fedgate and Prosody accept it for SASL EXTERNAL and a peer "
			"that requires clientAuth offers only dialback",
			label);
		return;
	}
	finding(r, LV_OK, NULL, "%s certificate's extendedKeyUsage allows serverAuth%s", label,
		client_too ? " and clientAuth" : "");
}

/* Cuts tls_cert_matches' closing advice, which is written for a partner's
 * certificate; ours gets its own fix. */
static void trim_partner_advice(char *why)
{
	char *p = strstr(why, "; the partner must");

	if (p != NULL)
		*p = '\0';
}

/* One certificate and key pair: [tls] (domains given: each must be named)
 * or [admin] (domains NULL). */
static void check_pair(struct report *r, const char *label, const char *cert_path,
		       const char *key_path, const char *ca_file, const struct conf_list *domains)
{
	X509 *leaf = NULL;
	STACK_OF(X509) *extra = NULL;
	EVP_PKEY *key = NULL;
	char why[1024], subj[256], fix[1024];

	if (load_certs(cert_path, &leaf, &extra, why, sizeof(why)) != FG_OK) {
		finding(r, LV_ERR,
			fmtbuf(fix, sizeof(fix),
			       "make %s a PEM certificate file readable by the user fedgate runs "
			       "as, or set %s certificate",
			       cert_path, label),
			"%s certificate %s cannot be read: %s", label, cert_path, why);
	} else {
		name_text(subj, sizeof(subj), X509_get_subject_name(leaf));
		finding(r, LV_OK, NULL, "%s certificate %s is readable: %s, %d more in the chain",
			label, cert_path, subj, sk_X509_num(extra));
	}
	key = load_key(key_path, why, sizeof(why));
	if (key == NULL)
		finding(r, LV_ERR,
			fmtbuf(fix, sizeof(fix),
			       "make %s an unencrypted PEM private key readable by the user "
			       "fedgate runs as (mode 0600 or 0640), or set %s key",
			       key_path, label),
			"%s key %s cannot be read: %s", label, key_path, why);
	if (leaf == NULL)
		goto out;
	if (key != NULL) {
		if (X509_check_private_key(leaf, key) == 1)
			finding(r, LV_OK, NULL, "%s key %s matches the certificate", label,
				key_path);
		else
			finding(r, LV_ERR,
				fmtbuf(fix, sizeof(fix),
				       "set %s key to the key %s was issued for, or get a "
				       "certificate for the key in %s",
				       label, cert_path, key_path),
				"%s key %s does not match the certificate %s", label, key_path,
				cert_path);
		ERR_clear_error();
	}
	for (size_t i = 0; domains != NULL && i < domains->n; i++) {
		const char *d = domains->v[i];
		enum tls_id_result id = tls_cert_matches(leaf, d, why, sizeof(why));
		trim_partner_advice(why);
		if (id != TLS_ID_NO_MATCH)
			finding(r, LV_OK, NULL, "%s certificate covers %s: %s", label, d, why);
		else
			finding(r, LV_ERR,
				fmtbuf(fix, sizeof(fix),
				       "get a certificate with a DNS subjectAltName for %s (one "
				       "certificate must name every local domain) and set [tls] "
				       "certificate and key, or remove %s from [server] domains",
				       d, d),
				"%s certificate %s does not cover the local domain %s: %s", label,
				cert_path, d, why);
	}
	check_dates(r, label, cert_path, leaf);
	check_eku(r, label, leaf, domains != NULL);
	if (X509_self_signed(leaf, 1) == 1) {
		if (domains != NULL)
			finding(r, LV_WARN,
				"get a certificate from a CA partners trust (an ACME CA such as "
				"Let's Encrypt) for every local domain, then set [tls] certificate "
				"and key",
				"%s certificate %s is self-signed: partners will only accept "
				"dialback, "
				"never SASL EXTERNAL, and strict ones will not federate at all",
				label, cert_path);
		else
			finding(r, LV_WARN,
				"get a certificate from a CA your browsers trust, or make them "
				"trust "
				"this one",
				"%s certificate %s is self-signed: browsers and API clients warn "
				"unless told to trust it",
				label, cert_path);
	} else {
		ERR_clear_error();
		check_chain(r, label, cert_path, leaf, extra, ca_file);
	}
out:
	ERR_clear_error();
	EVP_PKEY_free(key);
	X509_free(leaf);
	sk_X509_pop_free(extra, X509_free);
}

static void check_certs(struct report *r, const struct fg_conf *c)
{
	section(r, "certificates");
	check_pair(r, "[tls]", c->tls_certificate, c->tls_key, c->tls_ca_file, &c->domains);
	if (c->admin_certificate != NULL && c->admin_certificate[0] != '\0')
		check_pair(r, "[admin]", c->admin_certificate, c->admin_key, c->tls_ca_file, NULL);
}

/* ---- 3. DNS ---- */

/* One lookup of a batch. */
struct dq {
	char name[DNS_NAME_MAX + 1];
	enum dns_qtype type;
	struct dns_query *q;
	bool done;
	size_t *pending;
	struct dns_answer ans;
	struct dns_srv srv[DNS_MAX_SRV_PARSE];
};

static void on_dq(void *ud, const struct dns_answer *ans, const struct dns_srv *srv)
{
	struct dq *q = ud;

	q->ans = *ans;
	if (q->type == DNS_QTYPE_SRV && srv != NULL)
		memcpy(q->srv, srv,
		       sizeof(q->srv[0]) *
			       (ans->n < DNS_MAX_SRV_PARSE ? ans->n : DNS_MAX_SRV_PARSE));
	q->done = true;
	(*q->pending)--;
}

static void on_deadline(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	*(bool *)arg = true;
}

/* Runs lookups in parallel on a private loop until all answered or the
 * deadline passed; those still open then fail with "no answer". */
static void run_batch(struct event_base *base, struct dns *d, struct dq *v, size_t n)
{
	struct timeval tv = {DNS_TIMEOUT_S, 0};
	size_t pending = 0;
	bool late = false;
	struct event *deadline = evtimer_new(base, on_deadline, &late);

	for (size_t i = 0; i < n; i++) {
		v[i].pending = &pending;
		if (dns_lookup(d, v[i].name, v[i].type, on_dq, &v[i], &v[i].q) == FG_OK) {
			pending++;
		} else {
			v[i].done = true;
			v[i].ans.st = DNS_ST_FAIL;
			snprintf(v[i].ans.why, sizeof(v[i].ans.why), "lookup not started");
		}
	}
	if (deadline != NULL)
		evtimer_add(deadline, &tv);
	while (pending > 0 && !late && deadline != NULL)
		event_base_loop(base, EVLOOP_ONCE);
	for (size_t i = 0; i < n; i++) {
		if (v[i].done)
			continue;
		dns_cancel(&v[i].q);
		v[i].done = true;
		v[i].ans.st = DNS_ST_FAIL;
		snprintf(v[i].ans.why, sizeof(v[i].ans.why), "no answer within %d s",
			 DNS_TIMEOUT_S);
	}
	if (deadline != NULL)
		event_free(deadline);
}

static void dq_set(struct dq *q, const char *name, enum dns_qtype type)
{
	/* A name too long to fit is too long for DNS: the lookup says so. */
	size_t n = strnlen(name, sizeof(q->name) - 1);

	memset(q, 0, sizeof(*q));
	memcpy(q->name, name, n);
	q->name[n] = '\0';
	q->type = type;
}

static const char *status_text(const struct dns_answer *a)
{
	switch (a->st) {
	case DNS_ST_NXDOMAIN: return "NXDOMAIN";
	case DNS_ST_NODATA: return "no records";
	case DNS_ST_FAIL: return a->why;
	case DNS_ST_PENDING: return "no answer";
	case DNS_ST_DATA: return "records";
	}
	return "?";
}

/* "127.0.0.1, ::1" from a host's A and AAAA lookups; returns how many
 * addresses, or -1 when a lookup failed (why then in out). */
static int addr_text(const struct dq *a4, const struct dq *a6, char *out, size_t len)
{
	int n = 0;

	out[0] = '\0';
	for (int k = 0; k < 2; k++) {
		const struct dq *q = k == 0 ? a4 : a6;
		int af = k == 0 ? AF_INET : AF_INET6;
		if (q == NULL || q->ans.st != DNS_ST_DATA)
			continue;
		for (size_t i = 0; i < q->ans.n; i++) {
			char t[INET6_ADDRSTRLEN];
			if (inet_ntop(af, q->ans.addr[i], t, sizeof(t)) != NULL)
				fg_appendf(out, len, "%s%s", n++ ? ", " : "", t);
		}
	}
	if (n == 0 && ((a4 != NULL && a4->ans.st == DNS_ST_FAIL) ||
		       (a6 != NULL && a6->ans.st == DNS_ST_FAIL))) {
		snprintf(
			out, len, "%s",
			status_text(a4 != NULL && a4->ans.st == DNS_ST_FAIL ? &a4->ans : &a6->ans));
		return -1;
	}
	return n;
}

/* The ports of an "address:port" list. */
static size_t list_ports(const struct conf_list *l, uint16_t *ports, size_t max)
{
	size_t n = 0;

	for (size_t i = 0; i < l->n && n < max; i++) {
		const char *colon = strrchr(l->v[i], ':');
		long p = colon != NULL ? strtol(colon + 1, NULL, 10) : 0;
		if (p > 0 && p < 65536)
			ports[n++] = (uint16_t)p;
	}
	return n;
}

static bool port_in(uint16_t p, const uint16_t *ports, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (ports[i] == p)
			return true;
	return false;
}

static void ports_text(char *out, size_t len, const uint16_t *ports, size_t n)
{
	out[0] = '\0';
	for (size_t i = 0; i < n; i++)
		fg_appendf(out, len, "%s%u", i ? ", " : "", ports[i]);
	if (n == 0)
		snprintf(out, len, "none");
}

enum svc_kind { SVC_S2S, SVC_S2S_TLS, SVC_C2S, SVC_C2S_TLS };

static const struct svc {
	const char *prefix;
	enum svc_kind kind;
} svcs[] = {
	{"_xmpp-server._tcp.", SVC_S2S},
	{"_xmpps-server._tcp.", SVC_S2S_TLS},
	{"_xmpp-client._tcp.", SVC_C2S},
	{"_xmpps-client._tcp.", SVC_C2S_TLS},
};

struct dns_ctx {
	struct report *r;
	const struct fg_conf *c;
	const char *resolv;
	uint16_t s2s[MAX_PORTS], c2s[MAX_PORTS], s2s_tls[MAX_PORTS], c2s_tls[MAX_PORTS];
	size_t ns2s, nc2s, ns2s_tls, nc2s_tls;
	/* phase 2: A and AAAA of every SRV target, pairs [2i] A, [2i+1] AAAA */
	struct dq *tq;
	size_t ntq;
};

static const struct dq *target_dq(const struct dns_ctx *x, const char *name, enum dns_qtype t)
{
	for (size_t i = 0; i < x->ntq; i++)
		if (x->tq[i].type == t && strcmp(x->tq[i].name, name) == 0)
			return &x->tq[i];
	return NULL;
}

static void no_srv(struct dns_ctx *x, const struct svc *s, const char *domain, const struct dq *q,
		   const struct dq *a4, const struct dq *a6)
{
	const char *srvname = q->name;
	struct report *r = x->r;
	char addrs[256], fix[768], ports[64];
	bool c2s = s->kind == SVC_C2S;
	uint16_t fallback = c2s ? 5222 : DNS_XMPP_SERVER_PORT;
	const uint16_t *ours = c2s ? x->c2s : x->s2s;
	size_t nours = c2s ? x->nc2s : x->ns2s;
	int naddr;

	if (s->kind == SVC_S2S_TLS || s->kind == SVC_C2S_TLS) {
		bool cl = s->kind == SVC_C2S_TLS;
		size_t n = cl ? x->nc2s_tls : x->ns2s_tls;
		if (n == 0) {
			finding(r, LV_OK, NULL,
				"%s: no SRV record, as it should be: [listen] %s (Direct TLS) "
				"is off",
				srvname, cl ? "c2s_tls" : "s2s_tls");
			return;
		}
		/* XEP-0368: no fallback to the domain's address for Direct TLS. */
		finding(r, LV_WARN,
			fmtbuf(fix, sizeof(fix), "publish \"%s. 3600 IN SRV 5 0 %u %s.\"", srvname,
			       cl ? x->c2s_tls[0] : x->s2s_tls[0], domain),
			"%s: no SRV record: %s do not find [listen] %s (Direct TLS) "
			"and use STARTTLS",
			srvname, cl ? "clients" : "partners", cl ? "c2s_tls" : "s2s_tls");
		return;
	}
	if (nours == 0) {
		finding(r, LV_OK, NULL, "%s: no SRV record, and [listen] %s is off", srvname,
			c2s ? "c2s" : "s2s");
		return;
	}
	naddr = addr_text(a4, a6, addrs, sizeof(addrs));
	fmtbuf(fix, sizeof(fix), "publish \"%s. 3600 IN SRV 5 0 %u %s.\"", srvname, ours[0],
	       domain);
	if (naddr <= 0) {
		finding(r, LV_ERR, fix,
			"%s: no SRV record (%s), and %s has no A or AAAA address either%s%s%s: "
			"%s cannot find this gateway",
			srvname, status_text(&q->ans), domain, naddr < 0 ? " (lookup failed: " : "",
			naddr < 0 ? addrs : "", naddr < 0 ? ")" : "", c2s ? "clients" : "partners");
		return;
	}
	ports_text(ports, sizeof(ports), ours, nours);
	if (!port_in(fallback, ours, nours)) {
		finding(r, LV_ERR, fix,
			"%s: no SRV record, so %s fall back to %s (%s) on port %u, but [listen] %s "
			"uses port %s",
			srvname, c2s ? "clients" : "partners", domain, addrs, fallback,
			c2s ? "c2s" : "s2s", ports);
		return;
	}
	finding(r, LV_WARN, fix,
		"%s: no SRV record: %s fall back to the address of %s (%s) on port %u", srvname,
		c2s ? "clients" : "partners", domain, addrs, fallback);
}

static void report_srv(struct dns_ctx *x, const struct svc *s, const char *domain,
		       const struct dq *q, const struct dq *a4, const struct dq *a6)
{
	struct report *r = x->r;
	const char *srvname = q->name;
	char fix[768], addrs[256], ports[64];
	bool c2s = s->kind == SVC_C2S || s->kind == SVC_C2S_TLS;
	bool direct = s->kind == SVC_S2S_TLS || s->kind == SVC_C2S_TLS;
	const uint16_t *ours = s->kind == SVC_C2S	? x->c2s
			       : s->kind == SVC_C2S_TLS ? x->c2s_tls
			       : direct			? x->s2s_tls
							: x->s2s;
	size_t nours = s->kind == SVC_C2S	? x->nc2s
		       : s->kind == SVC_C2S_TLS ? x->nc2s_tls
		       : direct			? x->ns2s_tls
						: x->ns2s;
	const char *key = s->kind == SVC_C2S	   ? "c2s"
			  : s->kind == SVC_C2S_TLS ? "c2s_tls"
			  : direct		   ? "s2s_tls"
						   : "s2s";

	switch (q->ans.st) {
	case DNS_ST_FAIL:
	case DNS_ST_PENDING:
		finding(r, LV_ERR,
			fmtbuf(fix, sizeof(fix),
			       "check that the nameservers in %s answer (dig @SERVER %s SRV); "
			       "partners' resolvers may fail the same way",
			       x->resolv, srvname),
			"%s: the SRV lookup failed: %s", srvname, status_text(&q->ans));
		return;
	case DNS_ST_NXDOMAIN:
	case DNS_ST_NODATA: no_srv(x, s, domain, q, a4, a6); return;
	case DNS_ST_DATA: break;
	}
	if (dns_srv_no_service(q->srv, q->ans.n)) {
		if (direct || nours == 0)
			finding(r, LV_OK, NULL, "%s: service explicitly unavailable (SRV target .)",
				srvname);
		else
			finding(r, LV_ERR,
				fmtbuf(fix, sizeof(fix),
				       "replace it with \"%s. 3600 IN SRV 5 0 %u %s.\"", srvname,
				       ours[0], domain),
				"%s: service explicitly unavailable (SRV target .): %s will not "
				"connect to %s at all",
				srvname, c2s ? "clients" : "partners", domain);
		return;
	}
	ports_text(ports, sizeof(ports), ours, nours);
	for (size_t i = 0; i < q->ans.n; i++) {
		const struct dns_srv *rec = &q->srv[i];
		int naddr;
		if (rec->target[0] == '\0') {
			finding(r, LV_WARN,
				"remove the \".\" record: it only means something alone",
				"%s: SRV %u %u %u . among other records is ignored", srvname,
				rec->prio, rec->weight, rec->port);
			continue;
		}
		naddr = addr_text(target_dq(x, rec->target, DNS_QTYPE_A),
				  target_dq(x, rec->target, DNS_QTYPE_AAAA), addrs, sizeof(addrs));
		if (naddr < 0) {
			finding(r, LV_ERR,
				fmtbuf(fix, sizeof(fix),
				       "check that the nameservers in %s answer for %s", x->resolv,
				       rec->target),
				"%s: SRV %u %u %u %s: the address lookup of %s failed: %s", srvname,
				rec->prio, rec->weight, rec->port, rec->target, rec->target, addrs);
			continue;
		}
		if (naddr == 0) {
			finding(r, LV_ERR,
				fmtbuf(fix, sizeof(fix),
				       "add an A or AAAA record for %s, or point the SRV record at "
				       "a host that has one",
				       rec->target),
				"%s: SRV %u %u %u %s points to a name without addresses", srvname,
				rec->prio, rec->weight, rec->port, rec->target);
			continue;
		}
		if (direct && nours == 0) {
			finding(r, LV_WARN,
				fmtbuf(fix, sizeof(fix),
				       "remove the %s record unless a TLS-terminating proxy "
				       "answers "
				       "on %s port %u",
				       srvname, rec->target, rec->port),
				"%s: SRV %u %u %u %s -> %s, but [listen] %s (Direct TLS, "
				"XEP-0368) is off: %s that try it first fail there and then "
				"use %s",
				srvname, rec->prio, rec->weight, rec->port, rec->target, addrs, key,
				c2s ? "clients" : "partners",
				c2s ? "_xmpp-client._tcp" : "_xmpp-server._tcp");
			continue;
		}
		if (!port_in(rec->port, ours, nours)) {
			finding(r, LV_WARN,
				fmtbuf(fix, sizeof(fix),
				       "make the SRV port one of [listen] %s (%s), or listen on "
				       "%u, "
				       "unless a port forward maps %u to fedgate",
				       key, ports, rec->port, rec->port),
				"%s: SRV %u %u %u %s -> %s: port %u is not a [listen] %s port (%s)",
				srvname, rec->prio, rec->weight, rec->port, rec->target, addrs,
				rec->port, key, ports);
			continue;
		}
		finding(r, LV_OK, NULL, "%s: SRV %u %u %u %s -> %s", srvname, rec->prio,
			rec->weight, rec->port, rec->target, addrs);
	}
}

/* Per domain: the services' SRV, then A and AAAA of the domain itself. */
#define DQ_PER_DOMAIN (FG_ARRAY_LEN(svcs) + 2)

static void check_dns(struct report *r, const struct fg_conf *c)
{
	struct dns_ctx x = {.r = r, .c = c};
	char resolv[PATH_MAX + 32], err[512], name[DNS_NAME_MAX + 32];
	size_t nd = c->domains.n, maxt = 2 * MAX_TARGETS * (nd > 0 ? nd : 1);
	struct event_base *base = NULL;
	struct dns *d = NULL;
	struct dq *q = NULL;

	section(r, "dns");
	snprintf(resolv, sizeof(resolv), "[dns] resolv_conf %s",
		 c->dns_resolv_conf != NULL && c->dns_resolv_conf[0] ? c->dns_resolv_conf
								     : "/etc/resolv.conf");
	x.resolv = resolv;
	x.ns2s = list_ports(&c->listen_s2s, x.s2s, MAX_PORTS);
	x.nc2s = list_ports(&c->listen_c2s, x.c2s, MAX_PORTS);
	x.ns2s_tls = list_ports(&c->listen_s2s_tls, x.s2s_tls, MAX_PORTS);
	x.nc2s_tls = list_ports(&c->listen_c2s_tls, x.c2s_tls, MAX_PORTS);
	if (nd == 0) {
		finding(r, LV_OK, NULL, "no local domain to look up");
		return;
	}
	base = event_base_new();
	q = calloc(nd * DQ_PER_DOMAIN, sizeof(*q));
	x.tq = calloc(maxt, sizeof(*x.tq));
	if (base == NULL || q == NULL || x.tq == NULL) {
		finding(r, LV_ERR, NULL, "out of memory or no event loop for the DNS lookups");
		goto out;
	}
	d = dns_new(base, c->dns_resolv_conf, err, sizeof(err));
	if (d == NULL) {
		finding(r, LV_ERR, "set [dns] resolv_conf to a readable file with nameserver lines",
			"%s", err);
		goto out;
	}
	finding(r, LV_OK, NULL, "resolver: the nameservers of %s", resolv);
	/* DANE only: without the file the daemon runs, and partners with
	 * dane = required are refused, so a warning, not an error. */
	if (c->dns_trust_anchor == NULL || c->dns_trust_anchor[0] == '\0')
		finding(r, LV_OK, NULL,
			"[dns] trust_anchor is empty: no DNSSEC validation, so no DANE for "
			"partners "
			"with dane opportunistic or required");
	else if (dns_set_trust_anchor(d, c->dns_trust_anchor, err, sizeof(err)) != FG_OK)
		finding(r, LV_WARN,
			"install Debian's dns-root-data, or set [dns] trust_anchor to a file of DS "
			"or "
			"DNSKEY records (empty: no DANE)",
			"%s; partners with dane = required will be refused", err);
	else
		finding(r, LV_OK, NULL, "DNSSEC trust anchor for DANE: [dns] trust_anchor %s",
			c->dns_trust_anchor);

	/* Every domain at once, then every distinct SRV target's addresses at
	 * once: a resolver that does not answer costs the deadline twice at
	 * most, however many domains there are. */
	for (size_t i = 0; i < nd; i++) {
		struct dq *dq = &q[i * DQ_PER_DOMAIN];
		for (size_t k = 0; k < FG_ARRAY_LEN(svcs); k++) {
			snprintf(name, sizeof(name), "%s%s", svcs[k].prefix, c->domains.v[i]);
			dq_set(&dq[k], name, DNS_QTYPE_SRV);
		}
		dq_set(&dq[FG_ARRAY_LEN(svcs)], c->domains.v[i], DNS_QTYPE_A);
		dq_set(&dq[FG_ARRAY_LEN(svcs) + 1], c->domains.v[i], DNS_QTYPE_AAAA);
	}
	run_batch(base, d, q, nd * DQ_PER_DOMAIN);
	size_t failed = 0;
	for (size_t i = 0; i < nd * DQ_PER_DOMAIN; i++)
		failed += q[i].ans.st == DNS_ST_FAIL && strcmp(q[i].ans.why, q[0].ans.why) == 0;
	if (nd > 0 && failed == nd * DQ_PER_DOMAIN) {
		/* One cause, said once rather than for every record. */
		finding(r, LV_ERR,
			fmtbuf(err, sizeof(err),
			       "check that the nameservers in %s run and answer (dig @SERVER "
			       "_xmpp-server._tcp.%s SRV)",
			       resolv, c->domains.v[0]),
			"no record could be looked up: %s (every lookup of every local domain)",
			q[0].ans.why);
		goto out;
	}
	for (size_t i = 0; i < nd * DQ_PER_DOMAIN; i++) {
		if (q[i].type != DNS_QTYPE_SRV || q[i].ans.st != DNS_ST_DATA)
			continue;
		for (size_t k = 0; k < q[i].ans.n && x.ntq + 2 <= maxt; k++) {
			const char *t = q[i].srv[k].target;
			if (t[0] == '\0' || target_dq(&x, t, DNS_QTYPE_A) != NULL)
				continue;
			dq_set(&x.tq[x.ntq++], t, DNS_QTYPE_A);
			dq_set(&x.tq[x.ntq++], t, DNS_QTYPE_AAAA);
		}
	}
	if (x.ntq > 0)
		run_batch(base, d, x.tq, x.ntq);
	for (size_t i = 0; i < nd; i++) {
		const struct dq *dq = &q[i * DQ_PER_DOMAIN];
		for (size_t k = 0; k < FG_ARRAY_LEN(svcs); k++)
			report_srv(&x, &svcs[k], c->domains.v[i], &dq[k], &dq[FG_ARRAY_LEN(svcs)],
				   &dq[FG_ARRAY_LEN(svcs) + 1]);
	}
out:
	dns_free(&d);
	free(x.tq);
	free(q);
	if (base != NULL)
		event_base_free(base);
}

/* ---- 4. listeners ---- */

/* The pid of whatever holds the control socket, from the socket itself;
 * 0 when nobody answers there. */
static pid_t control_pid(const char *path)
{
	pid_t pid;
	return control_knock(path, &pid) == CONTROL_LISTENING ? pid : 0;
}

struct daemon_info {
	bool asked;
	bool running; /* a fedgate answered on [listen] control */
	bool unknown; /* something listens there, but the exchange failed */
	pid_t pid;
	char why[256]; /* when not running: what the control socket said */
};

static void ask_daemon(const struct fg_conf *c, struct daemon_info *di)
{
	json_t *body = NULL;
	int status = 0, rc;

	if (di->asked)
		return;
	di->asked = true;
	rc = control_call(c->listen_control, "status", NULL, 0, &status, &body, di->why,
			  sizeof(di->why));
	json_decref(body);
	if (rc == FG_OK) {
		di->running = true;
		di->pid = control_pid(c->listen_control);
	} else if (rc == FG_NOTFOUND) {
		snprintf(di->why, sizeof(di->why), "no fedgate answers on [listen] control %s",
			 c->listen_control);
	} else {
		di->unknown = true; /* di->why says why, e.g. permission denied */
	}
}

/* The kernel's socket inodes listening on port (IPv4 and IPv6). */
static size_t listening_inodes(uint16_t port, unsigned long *ino, size_t max)
{
	static const char *const files[] = {"/proc/net/tcp", "/proc/net/tcp6"};
	size_t n = 0;

	for (size_t f = 0; f < FG_ARRAY_LEN(files); f++) {
		FILE *fp = fopen(files[f], "r");
		char line[512];
		if (fp == NULL)
			continue;
		if (fgets(line, sizeof(line), fp) == NULL) { /* the header */
			fclose(fp);
			continue;
		}
		while (n < max && fgets(line, sizeof(line), fp) != NULL) {
			char local[64], remote[64];
			unsigned st, p;
			unsigned long inode;
			const char *colon;
			if (sscanf(line, "%*s %63s %63s %x %*s %*s %*s %*s %*s %lu", local, remote,
				   &st, &inode) != 4)
				continue;
			colon = strrchr(local, ':');
			if (st != 0x0A || colon == NULL || sscanf(colon + 1, "%x", &p) != 1 ||
			    p != port)
				continue;
			ino[n++] = inode;
		}
		fclose(fp);
	}
	return n;
}

/* Which process holds one of the inodes: a walk over /proc/PID/fd, which
 * only shows other users' processes to root. 0 when not found. */
static pid_t inode_owner(const unsigned long *ino, size_t nino, char *comm, size_t commlen)
{
	DIR *proc = opendir("/proc");
	struct dirent *de;
	pid_t found = 0;

	if (proc == NULL)
		return 0;
	while (found == 0 && (de = readdir(proc)) != NULL) {
		char path[300], link[64];
		DIR *fds;
		struct dirent *fe;
		if (!isdigit((unsigned char)de->d_name[0]))
			continue;
		snprintf(path, sizeof(path), "/proc/%s/fd", de->d_name);
		fds = opendir(path);
		if (fds == NULL)
			continue;
		while (found == 0 && (fe = readdir(fds)) != NULL) {
			char fdpath[600];
			unsigned long inode;
			ssize_t k;
			snprintf(fdpath, sizeof(fdpath), "%s/%s", path, fe->d_name);
			k = readlink(fdpath, link, sizeof(link) - 1);
			if (k <= 0)
				continue;
			link[k] = '\0';
			if (sscanf(link, "socket:[%lu]", &inode) != 1)
				continue;
			for (size_t i = 0; i < nino; i++)
				if (ino[i] == inode)
					found = (pid_t)atoi(de->d_name);
		}
		closedir(fds);
	}
	closedir(proc);
	if (found != 0) {
		char path[64];
		FILE *f;
		snprintf(path, sizeof(path), "/proc/%d/comm", (int)found);
		comm[0] = '\0';
		f = fopen(path, "r");
		if (f != NULL) {
			if (fgets(comm, (int)commlen, f) != NULL)
				comm[strcspn(comm, "\n")] = '\0';
			fclose(f);
		}
		if (comm[0] == '\0')
			snprintf(comm, commlen, "?");
	}
	return found;
}

/* CAP_NET_BIND_SERVICE in the effective set (bit 10 of CapEff). */
static bool can_bind_low(void)
{
	FILE *f = fopen("/proc/self/status", "r");
	char line[256];
	bool ok = geteuid() == 0;

	if (f == NULL)
		return ok;
	while (fgets(line, sizeof(line), f) != NULL) {
		unsigned long long caps;
		if (sscanf(line, "CapEff: %llx", &caps) == 1) {
			ok = (caps >> 10) & 1;
			break;
		}
	}
	fclose(f);
	return ok;
}

static void check_listener(struct report *r, const struct fg_conf *c, struct daemon_info *di,
			   const char *kind, const char *addr)
{
	struct sockaddr_storage ss;
	int sslen = sizeof(ss), fd, one = 1, e;
	uint16_t port;
	char fix[512];

	if (evutil_parse_sockaddr_port(addr, (struct sockaddr *)&ss, &sslen) != 0) {
		finding(r, LV_ERR, "write it as address:port", "[listen] %s %s: not an address",
			kind, addr);
		return;
	}
	port = ntohs(ss.ss_family == AF_INET6 ? ((struct sockaddr_in6 *)&ss)->sin6_port
					      : ((struct sockaddr_in *)&ss)->sin_port);
	fd = socket(ss.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0) {
		finding(r, LV_ERR, NULL, "[listen] %s %s: cannot make a socket: %s", kind, addr,
			strerror(errno));
		return;
	}
	/* As the daemon binds (LEV_OPT_REUSEABLE): connections of a stopped
	 * daemon in TIME_WAIT do not make the port look taken. */
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	e = bind(fd, (struct sockaddr *)&ss, (socklen_t)sslen) == 0 ? 0 : errno;
	close(fd);
	if (e == 0) {
		finding(r, LV_OK, NULL, "[listen] %s %s is free", kind, addr);
		return;
	}
	if (e == EACCES && port < 1024 && !can_bind_low()) {
		finding(r, LV_WARN,
			"start fedgate as root (it binds, then runs as [server] user) or give it "
			"CAP_NET_BIND_SERVICE (systemd: AmbientCapabilities=CAP_NET_BIND_SERVICE); "
			"or use a port above 1023",
			"[listen] %s %s: port %u is below 1024 and %s lacks CAP_NET_BIND_SERVICE, "
			"so "
			"whether it is free is unknown",
			kind, addr, port, whoami());
		return;
	}
	if (e == EADDRNOTAVAIL) {
		finding(r, LV_ERR,
			fmtbuf(fix, sizeof(fix),
			       "use an address of this host in [listen] %s (0.0.0.0 or [::] for "
			       "all)",
			       kind),
			"[listen] %s %s: the address is not on this host", kind, addr);
		return;
	}
	if (e != EADDRINUSE) {
		finding(r, LV_ERR, NULL, "[listen] %s %s: cannot bind: %s", kind, addr,
			strerror(e));
		return;
	}

	unsigned long ino[16];
	char comm[64] = "";
	size_t nino = listening_inodes(port, ino, FG_ARRAY_LEN(ino));
	pid_t holder = nino > 0 ? inode_owner(ino, nino, comm, sizeof(comm)) : 0;

	ask_daemon(c, di);
	if (di->running && (holder == 0 || holder == di->pid)) {
		finding(r, LV_OK, NULL, "[listen] %s %s is held by this fedgate (pid %d)", kind,
			addr, (int)di->pid);
		return;
	}
	if (di->unknown && holder == 0) {
		/* Most likely the daemon, run by a user whose sockets and
		 * processes this one may not see. */
		finding(r, LV_WARN,
			"run fedgate check as root or as the user the daemon runs as, so that "
			"it can ask the daemon",
			"[listen] %s %s is held, by this fedgate or another process: %s", kind,
			addr, di->why);
		return;
	}
	fmtbuf(fix, sizeof(fix),
	       "stop that process, or choose another port in [listen] %s; 'ss -ltnp \"sport = "
	       ":%u\"' shows who listens",
	       kind, port);
	if (holder != 0)
		finding(r, LV_ERR, fix,
			"[listen] %s %s is held by another process: %s (pid %d)%s%s", kind, addr,
			comm, (int)holder, di->running ? "" : "; ", di->running ? "" : di->why);
	else
		finding(r, LV_ERR, fix, "[listen] %s %s is held by another process (%s)", kind,
			addr, di->why);
}

static void check_listeners(struct report *r, const struct fg_conf *c)
{
	static const char *const kinds[] = {"s2s", "c2s", "s2s_tls", "c2s_tls", "admin"};
	const struct conf_list *lists[] = {&c->listen_s2s, &c->listen_c2s, &c->listen_s2s_tls,
					   &c->listen_c2s_tls, &c->listen_admin};
	struct daemon_info di = {0};

	section(r, "listeners");
	for (size_t k = 0; k < FG_ARRAY_LEN(kinds); k++) {
		if (lists[k]->n == 0)
			finding(r, LV_OK, NULL, "[listen] %s is off", kinds[k]);
		for (size_t i = 0; i < lists[k]->n; i++)
			check_listener(r, c, &di, kinds[k], lists[k]->v[i]);
	}
}

/* ---- the cluster ([cluster] redis set) ---- */

/* Redis answers PING from here, and what the running daemon says of its
 * link (status's "cluster" object): a node whose link is down refuses
 * stanzas for users on other nodes. */
static void check_cluster(struct report *r, const struct fg_conf *c)
{
	const char *addr = c->cluster_redis;
	char err[300];
	if (!addr || !*addr)
		return;
	section(r, "cluster");
	if (redis_addr_check(addr, err, sizeof(err)) != FG_OK) {
		finding(r, LV_ERR, "set [cluster] redis = HOST:PORT or unix:PATH", "%s", err);
		return;
	}
	redisContext *rc = redis_connect_sync(addr, 2000);
	redisReply *pong = rc && !rc->err ? redisCommand(rc, "PING") : NULL;
	if (pong && pong->type == REDIS_REPLY_STATUS)
		finding(r, LV_OK, NULL, "[cluster] redis %s answers", addr);
	else
		finding(r, LV_ERR, "start Redis there or correct [cluster] redis",
			"[cluster] redis %s does not answer (%s): nodes cannot reach each other",
			addr, rc && rc->err ? rc->errstr : "no answer to PING");
	freeReplyObject(pong);
	redisFree(rc);

	json_t *body = NULL, *params = json_pack("{s:b}", "cluster", 1);
	int status = 0;
	int rc2 = control_call(c->listen_control, "status", params, 0, &status, &body, err,
			       sizeof(err));
	json_decref(params);
	if (rc2 != FG_OK) {
		finding(r, LV_OK, NULL, "fedgate is not running here: no link of its own to check");
		return;
	}
	json_t *cl = json_object_get(body, "result");
	const char *link = json_string_value(json_object_get(cl, "redis"));
	const char *node = json_string_value(json_object_get(cl, "node"));
	if (link && strcmp(link, "up") == 0)
		finding(r, LV_OK, NULL, "the running node %s is linked to the cluster (%zu nodes)",
			node ? node : "?", json_array_size(json_object_get(cl, "nodes")));
	else
		finding(r, LV_ERR, "see the log; the node links again by itself once Redis answers",
			"the running node %s has no link to the cluster (redis %s): it serves only "
			"its own users and partners and refuses stanzas for users on other nodes",
			node ? node : "?", link ? link : "unknown");
	json_decref(body);
}

/* ---- 5. store ---- */

static void check_store_db(struct report *r, const char *path, bool writable)
{
	sqlite3 *h = NULL;
	sqlite3_stmt *s = NULL;
	int src, latest = store_db_schema_latest();
	long long v = -1;
	char fix[512];

	/* Read-write when allowed, as the daemon opens it: then the last
	 * connection to close cleans up the -wal and -shm files. Never
	 * created here. Without write access SQLite cannot make the -shm
	 * file WAL mode needs; the file alone is then read as immutable,
	 * which is only right when no -wal file holds newer pages. */
	if (writable) {
		src = sqlite3_open_v2(path, &h, SQLITE_OPEN_READWRITE, NULL);
	} else {
		char uri[3 * PATH_MAX + 32], wal[PATH_MAX + 8];
		struct stat sb;
		snprintf(wal, sizeof(wal), "%s-wal", path);
		if (stat(wal, &sb) == 0 && sb.st_size > 0) {
			skipped(r, "schema version and quick_check: the store has a -wal file, "
				   "which only a user who may write the store can read");
			return;
		}
		snprintf(uri, sizeof(uri), "file:");
		for (const char *p = path; *p != '\0'; p++)
			if (*p == '%' || *p == '?' || *p == '#')
				fg_appendf(uri, sizeof(uri), "%%%02x", (unsigned char)*p);
			else
				fg_appendf(uri, sizeof(uri), "%c", *p);
		fg_appendf(uri, sizeof(uri), "?immutable=1");
		src = sqlite3_open_v2(uri, &h, SQLITE_OPEN_READONLY | SQLITE_OPEN_URI, NULL);
	}
	if (src != SQLITE_OK) {
		finding(r, LV_ERR, NULL, "store %s cannot be opened: %s", path,
			h != NULL ? sqlite3_errmsg(h) : sqlite3_errstr(src));
		goto out;
	}
	sqlite3_busy_timeout(h, 5000);
	if (sqlite3_prepare_v2(h, "PRAGMA user_version", -1, &s, NULL) != SQLITE_OK ||
	    sqlite3_step(s) != SQLITE_ROW) {
		finding(r, LV_ERR,
			fmtbuf(fix, sizeof(fix),
			       "check that %s is a fedgate store; restore a backup if it is "
			       "damaged",
			       path),
			"store %s: cannot read its schema version: %s", path, sqlite3_errmsg(h));
		goto out;
	}
	v = sqlite3_column_int64(s, 0);
	sqlite3_finalize(s);
	s = NULL;
	if (v > latest)
		finding(r, LV_ERR,
			"run the fedgate version that wrote it, or restore a backup made by this "
			"one",
			"store %s was written by a newer fedgate (schema %lld, this one knows %d)",
			path, v, latest);
	else if (v < latest)
		finding(r, LV_OK, NULL, "store %s: schema %lld; the next start upgrades it to %d",
			path, v, latest);
	else
		finding(r, LV_OK, NULL, "store %s: schema %lld, current", path, v);

	if (sqlite3_prepare_v2(h, "PRAGMA quick_check", -1, &s, NULL) != SQLITE_OK) {
		finding(r, LV_ERR, NULL, "store %s: quick_check cannot run: %s", path,
			sqlite3_errmsg(h));
		goto out;
	}
	src = sqlite3_step(s);
	if (src == SQLITE_ROW && strcmp((const char *)sqlite3_column_text(s, 0), "ok") == 0)
		finding(r, LV_OK, NULL, "store %s: PRAGMA quick_check ok", path);
	else
		finding(r, LV_ERR,
			"stop fedgate and restore the store from a backup; sqlite3's .recover may "
			"save what is left",
			"store %s: PRAGMA quick_check: %s", path,
			src == SQLITE_ROW ? (const char *)sqlite3_column_text(s, 0)
					  : sqlite3_errmsg(h));
out:
	sqlite3_finalize(s);
	sqlite3_close(h);
}

/* Whether `fedgate serve` would accept who it runs as and whether that
 * account can use the store: privs.c's own check, so that the two never
 * disagree. Only root can try another account's access. */
static void check_account(struct report *r, const struct fg_conf *c)
{
	struct privs p;
	char err[1024], fix[256];
	const char *user = c->server_user;

	if (geteuid() != 0 && user != NULL && user[0] != '\0' && strcmp(user, whoami()) != 0) {
		finding(r, LV_WARN,
			fmtbuf(fix, sizeof(fix),
			       "run fedgate check as root (or as %s) to test that account", user),
			"checked as %s, but the daemon runs as %s ([server] user): its access to "
			"the "
			"store was not tested",
			whoami(), user);
		return;
	}
	if (privs_check(c, &p, err, sizeof(err)) != FG_OK) {
		finding(r, LV_ERR, err, "fedgate serve, started by %s, would refuse to run",
			whoami());
		return;
	}
	if (p.drop)
		finding(r, LV_OK, NULL,
			"fedgate serve started as root switches to %s:%s, who can use the store",
			p.user, p.group);
	else if (p.as_root)
		finding(r, LV_OK, NULL,
			"fedgate serve started as root stays root ([server] run_as_root = yes)");
	else
		finding(r, LV_OK, NULL, "fedgate serve runs as %s", whoami());
}

/* PostgreSQL: reachable with the dsn, and at which schema; the dsn is
 * shown without its password. Nothing is written (the first start
 * creates the schema). */
static void check_store_pg(struct report *r, const struct fg_conf *c)
{
	char masked[600], err[700];
	int v = 0, latest = store_db_schema_latest();

	section(r, "store");
	check_account(r, c);
	store_dsn_masked(c->store_dsn, masked, sizeof(masked));
	if (c->store_dsn == NULL || c->store_dsn[0] == '\0') {
		finding(r, LV_ERR,
			"set [store] dsn, e.g. dsn = host=db1 dbname=fedgate user=fedgate",
			"store: backend postgresql without a dsn");
		return;
	}
	if (store_pg_probe(c->store_dsn, &v, err, sizeof(err)) != FG_OK) {
		finding(r, LV_ERR,
			"start PostgreSQL, or correct [store] dsn (host, port, dbname, user; a "
			"password in ~/.pgpass keeps it out of the configuration)",
			"store PostgreSQL (%s): %s", masked, err);
		return;
	}
	if (v == 0)
		finding(r, LV_OK, NULL,
			"store PostgreSQL (%s) is reachable and empty; the first start creates "
			"the schema (version %d)",
			masked, latest);
	else if (v > latest)
		finding(r, LV_ERR, "run the newer fedgate that wrote it, or restore a backup",
			"store PostgreSQL (%s) has schema version %d, newer than this fedgate's %d",
			masked, v, latest);
	else
		finding(r, LV_OK, NULL,
			"store PostgreSQL (%s) is reachable, schema version %d (this fedgate: %d)",
			masked, v, latest);
}

static void check_store(struct report *r, const struct fg_conf *c)
{
	const char *path = c->store_path;
	char *copy = strdup(path), fix[PATH_MAX + 256];
	const char *dir = copy != NULL ? dirname(copy) : ".";
	struct stat sb;
	bool dir_ok;

	if (store_target_of(c).backend == STORE_POSTGRESQL) {
		free(copy);
		check_store_pg(r, c);
		return;
	}
	section(r, "store");
	check_account(r, c);
	dir_ok = access(dir, W_OK | X_OK) == 0;
	if (stat(path, &sb) != 0) {
		int e = errno;
		if (e != ENOENT) {
			char why[128];
			open_error(why, sizeof(why), e);
			finding(r, LV_ERR,
				fmtbuf(fix, sizeof(fix),
				       "let the user fedgate runs as reach %s (chmod/chown the "
				       "folders on the way)",
				       dir),
				"store %s: %s", path, why);
		} else if (dir_ok) {
			finding(r, LV_OK, NULL,
				"store %s does not exist yet; the first start creates it (%s is "
				"writable)",
				path, dir);
		} else {
			finding(r, LV_ERR,
				fmtbuf(fix, sizeof(fix),
				       "create %s writable by the user fedgate runs as, or set "
				       "[store] path elsewhere",
				       dir),
				"store %s does not exist and its folder %s %s for %s", path, dir,
				access(dir, F_OK) == 0 ? "is not writable" : "does not exist",
				whoami());
		}
		goto out;
	}
	if (!S_ISREG(sb.st_mode)) {
		finding(r, LV_ERR, "set [store] path to a file", "store %s is not a regular file",
			path);
		goto out;
	}
	bool rd = access(path, R_OK) == 0, wr = access(path, W_OK) == 0;
	if (!rd || !wr) {
		finding(r, LV_ERR,
			fmtbuf(fix, sizeof(fix),
			       "chown the store to the user fedgate runs as and chmod it 0600 "
			       "(its -wal and -shm files too)"),
			"store %s is not %s by %s (permission denied; owner uid %u, mode %04o)",
			path,
			!rd && !wr ? "readable or writable"
			: !rd	   ? "readable"
				   : "writable",
			whoami(), (unsigned)sb.st_uid, (unsigned)(sb.st_mode & 07777));
	} else if (!dir_ok) {
		finding(r, LV_ERR,
			fmtbuf(fix, sizeof(fix),
			       "make %s writable by the user fedgate runs as: SQLite creates the "
			       "-wal and -shm files beside the store",
			       dir),
			"store folder %s is not writable by %s", dir, whoami());
	} else {
		finding(r, LV_OK, NULL, "store %s is readable and writable by %s", path, whoami());
	}
	if (rd)
		check_store_db(r, path, wr && dir_ok);
out:
	free(copy);
}

/* ---- the command ---- */

static void usage(FILE *f)
{
	fprintf(f, "usage: fedgate check [-c FILE] [--json | --config]\n"
		   "  without --config: a health check of the configuration, certificates,\n"
		   "  DNS, listeners and store; exit 1 on any error (--json: as JSON)\n"
		   "  --config: print the effective configuration, or its errors\n");
}

int check_main(int argc, char **argv)
{
	static const struct option longopts[] = {
		{"config", no_argument, NULL, 'C'},
		{"json", no_argument, NULL, 'J'},
		{"help", no_argument, NULL, 'h'},
		{NULL, 0, NULL, 0},
	};
	const char *given = NULL, *path;
	bool dump = false, json = false;
	struct report r = {stdout, {0, 0, 0}, NULL, NULL};
	struct fg_conf *c;
	int ch;

	optind = 1;
	while ((ch = getopt_long(argc, argv, "+c:h", longopts, NULL)) != -1) {
		switch (ch) {
		case 'c': given = optarg; break;
		case 'C': dump = true; break;
		case 'J': json = true; break;
		case 'h': usage(stdout); return 0;
		default: usage(stderr); return 2;
		}
	}
	if (optind < argc) {
		fprintf(stderr, "fedgate check: unexpected argument '%s'\n", argv[optind]);
		usage(stderr);
		return 2;
	}
	path = conf_default_path(given);
	if (dump && json) {
		fprintf(stderr, "fedgate check: --json is for the health check, not --config\n");
		return 2;
	}
	if (dump)
		return conf_check_main(path, stdout, stderr);
	if (json && (r.sections = json_array()) == NULL) {
		fprintf(stderr, "fedgate check: out of memory\n");
		return 1;
	}

	/* The findings are the output; the resolver's own chatter is not. */
	log_set_level(LOG_ERROR);
	if (!json)
		fprintf(r.out, "fedgate check %s\n", path);
	c = check_conf(&r, path);
	if (c == NULL) {
		static const char *const rest[] = {"certificates", "dns", "listeners", "store"};
		for (size_t i = 0; i < FG_ARRAY_LEN(rest); i++) {
			section(&r, rest[i]);
			skipped(&r, "it needs a valid configuration");
		}
	} else {
		check_certs(&r, c);
		check_dns(&r, c);
		check_listeners(&r, c);
		check_store(&r, c);
		check_cluster(&r, c);
		conf_free(&c);
	}
	if (json) {
		json_t *doc = json_pack("{s:s, s:o, s:{s:I, s:I, s:I}}", "config", path, "sections",
					r.sections, "summary", "errors", (json_int_t)r.n[LV_ERR],
					"warnings", (json_int_t)r.n[LV_WARN], "ok",
					(json_int_t)r.n[LV_OK]);
		if (doc == NULL || json_dumpf(doc, r.out, JSON_INDENT(2)) != 0) {
			fprintf(stderr, "fedgate check: out of memory\n");
			json_decref(doc);
			return 1;
		}
		fputc('\n', r.out);
		json_decref(doc);
	} else {
		fprintf(r.out, "\nsummary: %u error%s, %u warning%s, %u ok\n", r.n[LV_ERR],
			r.n[LV_ERR] == 1 ? "" : "s", r.n[LV_WARN], r.n[LV_WARN] == 1 ? "" : "s",
			r.n[LV_OK]);
	}
	return r.n[LV_ERR] > 0 ? 1 : 0;
}

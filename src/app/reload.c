#include "reload.h"

#include "admin_http.h"
#include "cmd.h"
#include "cmd_txn.h"
#include "conf.h"
#include "fg.h"
#include "log.h"
#include "notify.h"
#include "sasl.h"
#include "server.h"
#include "throttle.h"
#include "tls.h"

#include <openssl/evp.h>
#include <openssl/x509.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* What the new configuration brings, prepared in full before anything
 * running changes, so that a failure leaves the daemon as it was. */
struct next {
	struct fg_conf *conf;
	SSL_CTX *tls, *tls_client, *admin_tls;
	json_t *applied, *restart;
};

static void next_clear(struct next *n)
{
	conf_free(&n->conf);
	tls_ctx_free(&n->tls);
	tls_ctx_free(&n->tls_client);
	tls_ctx_free(&n->admin_tls);
	json_decref(n->applied);
	json_decref(n->restart);
}

static void refuse(json_t *body, const char *msg)
{
	log_error("reload", "%s", msg);
	cmd_add_error(body, NULL, msg);
}

/* conf_load()'s report, one error per line, each with FILE:LINE. */
static void refuse_lines(json_t *body, char *text)
{
	for (char *line = strtok(text, "\n"); line; line = strtok(NULL, "\n"))
		refuse(body, line);
}

static int read_file(const char *path, struct next *n, json_t *body)
{
	char *text = NULL;
	size_t len = 0;
	FILE *errs = open_memstream(&text, &len);
	if (!errs) {
		refuse(body, "out of memory reading the configuration");
		return FG_NOMEM;
	}
	int rc = conf_load(path, &n->conf, errs);
	fclose(errs);
	if (rc != FG_OK)
		refuse_lines(body, text);
	free(text);
	return rc;
}

static int load_certificates(struct next *n, json_t *body)
{
	char err[512];
	const struct fg_conf *c = n->conf;
	n->tls = tls_server_ctx_new(c->tls_certificate, c->tls_key, c->tls_ca_file, err,
				    sizeof(err));
	if (n->tls && tls_server_tickets(n->tls, c->tls_session_tickets, err, sizeof(err)) != FG_OK)
		tls_ctx_free(&n->tls);
	if (n->tls)
		n->tls_client = tls_client_ctx_new(c->tls_certificate, c->tls_key, c->tls_ca_file,
						   err, sizeof(err));
	/* The new client context starts with an empty session cache: a
	 * reload may bring another certificate or other trust anchors. */
	if (n->tls_client &&
	    tls_client_tickets(n->tls_client, c->tls_session_tickets, err, sizeof(err)) != FG_OK)
		tls_ctx_free(&n->tls_client);
	if (!n->tls || !n->tls_client ||
	    admin_http_tls_load(c, &n->admin_tls, err, sizeof(err)) != FG_OK) {
		refuse(body, err);
		return FG_ERR;
	}
	return FG_OK;
}

static void on_change(void *ud, const char *section, const char *name, const char *running,
		      const char *read, int live)
{
	struct next *n = ud;
	json_t *row = json_pack("{s:o, s:s, s:s}", "key", json_sprintf("[%s] %s", section, name),
				"from", running, "to", read);
	if (live) {
		log_info("reload", "[%s] %s: %s -> %s", section, name, running, read);
		json_array_append_new(n->applied, row);
	} else {
		log_warn(
			"reload",
			"[%s] %s changed (%s -> %s) but needs a restart; still using %s until then",
			section, name, running, read, running);
		json_array_append_new(n->restart, row);
	}
}

/* Which certificate new connections now get: an admin renewing one wants
 * to see the new expiry and fingerprint, not just "reloaded". */
static json_t *describe_certificate(SSL_CTX *ctx, const char *path)
{
	X509 *x = SSL_CTX_get0_certificate(ctx);
	json_t *d = json_pack("{s:s}", "file", path);
	if (!x)
		return d;
	char subject[256] = "", expires[64] = "", fp[3 * EVP_MAX_MD_SIZE + 1] = "";
	X509_NAME_oneline(X509_get_subject_name(x), subject, sizeof(subject));
	BIO *b = BIO_new(BIO_s_mem());
	if (b && ASN1_TIME_print(b, X509_get0_notAfter(x)) > 0) {
		int got = BIO_read(b, expires, (int)sizeof(expires) - 1);
		expires[got > 0 ? got : 0] = '\0';
	}
	BIO_free(b);
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned mdlen = 0;
	if (X509_digest(x, EVP_sha256(), md, &mdlen) == 1)
		for (unsigned i = 0; i < mdlen; i++)
			snprintf(fp + 3 * i, sizeof(fp) - 3 * i, "%02X%s", md[i],
				 i + 1 < mdlen ? ":" : "");
	json_object_set_new(d, "subject", json_string(subject));
	json_object_set_new(d, "expires", json_string(expires));
	json_object_set_new(d, "sha256", json_string(fp));
	char eku[48], pin[PIN_B64_LEN + 1];
	tls_cert_eku(x, eku, sizeof(eku));
	json_object_set_new(d, "eku", json_string(eku));
	/* What a partner's admin pins for us. */
	if (tls_cert_pin(x, pin))
		json_object_set_new(d, "pin", json_string(pin));
	return d;
}

/* From here on nothing fails: the prepared state replaces the running. */
static void install(struct server *srv, struct next *n)
{
	struct xmpp_server *x = &srv->x;
	struct fg_conf *old = srv->conf;
	srv->conf = n->conf;
	x->conf = n->conf;
	srv->env.live.conf = n->conf;
	n->conf = NULL;
	/* Established streams hold their own reference (SSL_new), so they
	 * keep the session they negotiated; new ones get these. */
	tls_ctx_free(&x->tls);
	tls_ctx_free(&x->tls_client);
	x->tls = n->tls;
	x->tls_client = n->tls_client;
	n->tls = n->tls_client = NULL;
	if (srv->http)
		admin_http_reconfigure(srv->http, srv->conf, n->admin_tls);
	else
		tls_ctx_free(&n->admin_tls);
	n->admin_tls = NULL;
	log_set_level((enum log_level)srv->conf->log_level);
	sasl_set_fake_iterations(srv->conf->users_scram_iterations);
	if (x->auth_throttle) {
		struct throttle_limits lim = {.refuse_after = srv->conf->c2s_auth_failures,
					      .window_s = srv->conf->c2s_auth_failure_window,
					      .delay_max_ms =
						      srv->conf->c2s_auth_delay_max * 1000u};
		throttle_set_limits(x->auth_throttle, &lim);
	}
	conf_free(&old);
}

int reload_run(struct server *srv, json_t *body)
{
	struct next n = {.applied = json_array(), .restart = json_array()};
	int status = CMD_REFUSED;
	notify_reloading(srv->notify);
	log_info("reload", "reading %s again", srv->conf->path);
	if (read_file(srv->conf->path, &n, body) != FG_OK || load_certificates(&n, body) != FG_OK) {
		refuse(body, "the configuration was not reloaded: fix the errors above (see "
			     "'fedgate check'); the daemon keeps running as it was");
		goto out;
	}
	/* The log file is reopened on every reload (logrotate may send
	 * SIGHUP), as the last step that can fail: a file that cannot be
	 * opened refuses the reload, and logging goes on where it was. */
	char lerr[600];
	if (log_reopen(n.conf->log_file, lerr, sizeof(lerr)) != FG_OK) {
		refuse(body, lerr);
		refuse(body, "the configuration was not reloaded; the daemon keeps running as "
			     "it was");
		goto out;
	}
	conf_reconcile(srv->conf, n.conf, on_change, &n);
	json_t *cert = describe_certificate(n.tls, n.conf->tls_certificate);
	install(srv, &n);
	log_info("reload",
		 "done: %zu key(s) applied, %zu need a restart; new connections get certificate "
		 "%s (%s, expires %s, SHA-256 %s)",
		 json_array_size(n.applied), json_array_size(n.restart),
		 json_string_value(json_object_get(cert, "file")),
		 json_string_value(json_object_get(cert, "subject")),
		 json_string_value(json_object_get(cert, "expires")),
		 json_string_value(json_object_get(cert, "sha256")));
	json_object_set_new(body, "result",
			    json_pack("{s:s, s:O, s:O, s:o}", "config", srv->conf->path, "applied",
				      n.applied, "restart_needed", n.restart, "certificate", cert));
	status = CMD_OK;
out:
	next_clear(&n);
	notify_ready(srv->notify, status == CMD_OK
					  ? "configuration reloaded"
					  : "reload refused: the configuration has errors");
	return status;
}

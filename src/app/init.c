/* `fedgate init`: writes a working configuration, a private key and a
 * self-signed certificate, so that `fedgate serve` runs on first try.
 *
 * It never overwrites: every target is checked before anything is written,
 * and each file appears whole or not at all (temporary file, then link(),
 * which unlike rename() fails when the target appeared meanwhile). */
#include "init.h"
#include "suggest.h"

#include "fg.h"
#include "jid.h"

#include <openssl/bn.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <limits.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define CERT_DAYS 365

static void init_usage(FILE *f)
{
	fprintf(f, "usage: fedgate init [--domain D] [--dir DIR] [-c FILE]\n"
		   "  --domain D  the local domain to serve (default localhost)\n"
		   "  --dir DIR   where to write certs/ and fedgate.conf (default .)\n"
		   "  -c FILE     write the configuration here instead of DIR/fedgate.conf\n");
}

static char *join(const char *dir, const char *name)
{
	size_t n = strlen(dir);
	char *out = NULL;

	if (asprintf(&out, "%s%s%s", dir, n > 0 && dir[n - 1] == '/' ? "" : "/", name) < 0)
		return NULL;
	return out;
}

/* mkdir -p; existing folders are fine. */
static int mkdirs(const char *path, mode_t mode)
{
	char *copy = strdup(path);
	int rc = FG_OK;

	if (copy == NULL)
		return FG_NOMEM;
	for (char *s = copy[0] != '\0' ? copy + 1 : copy;; s++) {
		if (*s != '/' && *s != '\0')
			continue;
		char saved = *s;
		*s = '\0';
		if (mkdir(copy, mode) != 0 && errno != EEXIST) {
			fprintf(stderr, "fedgate init: cannot create %s: %s\n", copy,
				strerror(errno));
			rc = FG_ERR;
			break;
		}
		*s = saved;
		if (saved == '\0')
			break;
	}
	free(copy);
	return rc;
}

/* fsync of the folder makes a new name durable, not only the data. */
static void sync_dir_of(const char *path)
{
	const char *slash = strrchr(path, '/');
	char *dir = slash == NULL ? strdup(".")
				  : strndup(path, slash == path ? 1 : (size_t)(slash - path));
	int fd;

	if (dir == NULL)
		return;
	fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd >= 0) {
		fsync(fd);
		close(fd);
	}
	free(dir);
}

/* Writes data to path with the given mode: whole or not at all, and never
 * over an existing file. */
static int write_atomic(const char *path, const char *data, size_t len, mode_t mode)
{
	const char *slash = strrchr(path, '/');
	int dlen = slash != NULL ? (int)(slash - path + 1) : 0;
	char *tmp = NULL;
	int fd, rc = FG_ERR;

	if (asprintf(&tmp, "%.*s.%s.XXXXXX", dlen, path, path + dlen) < 0)
		return FG_NOMEM;
	fd = mkstemp(tmp);
	if (fd < 0) {
		fprintf(stderr, "fedgate init: cannot create a file next to %s: %s\n", path,
			strerror(errno));
		free(tmp);
		return FG_ERR;
	}
	if (fchmod(fd, mode) != 0)
		goto io;
	for (size_t off = 0; off < len;) {
		ssize_t n = write(fd, data + off, len - off);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			goto io;
		off += (size_t)n;
	}
	if (fsync(fd) != 0)
		goto io;
	if (close(fd) != 0) {
		fd = -1;
		goto io;
	}
	fd = -1;
	if (link(tmp, path) != 0) {
		fprintf(stderr, "fedgate init: cannot write %s: %s%s\n", path, strerror(errno),
			errno == EEXIST ? "; remove it or choose another --dir" : "");
		goto out;
	}
	sync_dir_of(path);
	rc = FG_OK;
	goto out;
io:
	fprintf(stderr, "fedgate init: cannot write %s: %s\n", path, strerror(errno));
out:
	if (fd >= 0)
		close(fd);
	unlink(tmp);
	free(tmp);
	return rc;
}

static void print_ssl_errors(const char *what)
{
	unsigned long e;
	char buf[256];

	fprintf(stderr, "fedgate init: %s failed\n", what);
	while ((e = ERR_get_error()) != 0) {
		ERR_error_string_n(e, buf, sizeof(buf));
		fprintf(stderr, "  %s\n", buf);
	}
}

static int add_ext(X509 *x, X509V3_CTX *ctx, int nid, const char *value)
{
	X509_EXTENSION *ext = X509V3_EXT_conf_nid(NULL, ctx, nid, value);
	int ok;

	if (ext == NULL)
		return FG_ERR;
	ok = X509_add_ext(x, ext, -1);
	X509_EXTENSION_free(ext);
	return ok == 1 ? FG_OK : FG_ERR;
}

/* A self-signed leaf for domain (an A-label). A server shows the same
 * certificate as a TLS client on outbound s2s, hence both extended key
 * usages; peers match the DNS subjectAltName, the CN is for humans. */
static X509 *make_cert(EVP_PKEY *pk, const char *domain)
{
	X509 *x = X509_new();
	X509_NAME *name;
	BIGNUM *serial = BN_new();
	X509V3_CTX ctx;
	char *san = NULL;

	if (x == NULL || serial == NULL || asprintf(&san, "DNS:%s", domain) < 0) {
		san = NULL;
		goto fail;
	}
	/* 159 random bits: positive and within the 20 octets of RFC 5280. */
	if (X509_set_version(x, X509_VERSION_3) != 1 ||
	    BN_rand(serial, 159, BN_RAND_TOP_ANY, BN_RAND_BOTTOM_ANY) != 1 ||
	    BN_to_ASN1_INTEGER(serial, X509_get_serialNumber(x)) == NULL)
		goto fail;
	if (X509_gmtime_adj(X509_getm_notBefore(x), 0) == NULL ||
	    X509_time_adj_ex(X509_getm_notAfter(x), CERT_DAYS, 0, NULL) == NULL)
		goto fail;
	name = X509_get_subject_name(x);
	if (X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC, (const unsigned char *)domain, -1,
				       -1, 0) != 1 ||
	    X509_set_issuer_name(x, name) != 1 || X509_set_pubkey(x, pk) != 1)
		goto fail;
	X509V3_set_ctx(&ctx, x, x, NULL, NULL, 0);
	if (add_ext(x, &ctx, NID_subject_alt_name, san) != FG_OK ||
	    add_ext(x, &ctx, NID_basic_constraints, "critical,CA:FALSE") != FG_OK ||
	    add_ext(x, &ctx, NID_key_usage, "critical,digitalSignature") != FG_OK ||
	    add_ext(x, &ctx, NID_ext_key_usage, "serverAuth,clientAuth") != FG_OK ||
	    add_ext(x, &ctx, NID_subject_key_identifier, "hash") != FG_OK)
		goto fail;
	if (X509_sign(x, pk, EVP_sha256()) == 0)
		goto fail;
	BN_free(serial);
	free(san);
	return x;
fail:
	print_ssl_errors("making the certificate");
	BN_free(serial);
	free(san);
	X509_free(x);
	return NULL;
}

/* PEM text of a private key (pk) or a certificate (x), malloc'ed. */
static char *pem_text(EVP_PKEY *pk, X509 *x, size_t *len)
{
	BIO *b = BIO_new(BIO_s_mem());
	char *data = NULL, *out = NULL;
	long n;
	int ok;

	if (b == NULL)
		return NULL;
	ok = pk != NULL ? PEM_write_bio_PrivateKey(b, pk, NULL, NULL, 0, NULL, NULL)
			: PEM_write_bio_X509(b, x);
	n = BIO_get_mem_data(b, &data);
	if (ok == 1 && n > 0 && (out = malloc((size_t)n)) != NULL) {
		memcpy(out, data, (size_t)n);
		*len = (size_t)n;
	}
	BIO_free(b);
	return out;
}

/* The canonical absolute form of path, whose folder must exist. */
static char *abs_path(const char *path)
{
	const char *slash = strrchr(path, '/');
	char *dir = slash == NULL ? strdup(".")
				  : strndup(path, slash == path ? 1 : (size_t)(slash - path));
	char *absdir = dir != NULL ? realpath(dir, NULL) : NULL;
	char *out = absdir != NULL ? join(absdir, slash != NULL ? slash + 1 : path) : NULL;

	free(dir);
	free(absdir);
	return out;
}

/* target as the config file names it: relative to the config's folder when
 * it lies inside, since that is what conf_load() resolves against. */
static char *conf_name(const char *conf_abs, const char *target)
{
	char *t = abs_path(target), *out;
	const char *slash = strrchr(conf_abs, '/');
	size_t n = (size_t)(slash - conf_abs) + 1; /* folder with its '/' */

	if (t == NULL)
		return NULL;
	if (strncmp(t, conf_abs, n) == 0) {
		out = strdup(t + n);
		free(t);
		return out;
	}
	return t;
}

/* [server] user and run_as_root. Started as root, 'fedgate serve' refuses
 * to stay root unless told: init run by root is a developer's machine (make
 * run, the tests), so it says so in the file, and shows what production
 * writes instead. */
static const char *who_text(void)
{
	if (geteuid() != 0)
		return "; started as root, 'fedgate serve' switches to this account once its\n"
		       "; ports and files are open (see fedgate.conf(5)):\n"
		       ";user = fedgate\n";
	return "; 'fedgate init' ran as root: this file suits a development machine, where\n"
	       "; 'fedgate serve' stays root. In production set user = fedgate (an\n"
	       "; account of its own; fedgate switches to it once its ports and files\n"
	       "; are open) and remove run_as_root (see fedgate.conf(5)).\n"
	       ";user = fedgate\n"
	       "run_as_root = yes\n";
}

static char *config_text(const char *domain, const char *cert, const char *key, const char *store,
			 const char *control)
{
	char *s = NULL, date[32];
	size_t len = 0;
	time_t now = time(NULL);
	struct tm tm;
	FILE *f = open_memstream(&s, &len);

	if (f == NULL)
		return NULL;
	gmtime_r(&now, &tm);
	strftime(date, sizeof(date), "%Y-%m-%d", &tm);
	fprintf(f,
		"; fedgate configuration, written by 'fedgate init' on %s.\n"
		"; Relative paths are relative to this file's folder. Every key is\n"
		"; described in fedgate.conf(5); 'fedgate check --config -c FILE'\n"
		"; prints the effective configuration, defaults included, or every\n"
		"; error; 'fedgate check -c FILE' checks the host against it too.\n"
		"\n"
		"[server]\n"
		"; the local domains fedgate serves, comma-separated\n"
		"domains = %s\n"
		"%s"
		"\n"
		"[tls]\n"
		"; certificate (PEM) shown to peers and clients, and its private key.\n"
		"; 'fedgate init' made a self-signed pair: partners that verify\n"
		"; certificates need one from a CA they trust instead.\n"
		"certificate = %s\n"
		"key = %s\n"
		"; trust anchors for peers' certificates; empty = the system store\n"
		"ca_file =\n"
		"\n"
		"[listen]\n"
		"; comma-separated address:port lists ([::]:5269 for IPv6); empty = off\n"
		"s2s = 0.0.0.0:5269\n"
		"c2s = 0.0.0.0:5222\n"
		"admin = 127.0.0.1:5280\n"
		"; Unix control socket used by the CLI\n"
		"control = %s\n"
		"\n"
		"[dns]\n"
		"resolv_conf = /etc/resolv.conf\n"
		"\n"
		"[store]\n"
		"path = %s\n"
		"\n"
		"[log]\n"
		"; error, warning, info or debug\n"
		"level = info\n"
		"; append to this file instead of standard error (SIGUSR1 reopens it)\n"
		";file = /var/log/fedgate/fedgate.log\n"
		"\n"
		"[limits]\n"
		"; caps on what peers may send; the defaults are:\n"
		";s2s_stanza_size = 512KiB\n"
		";c2s_stanza_size = 256KiB\n"
		";preauth_stanza_size = 10KiB\n"
		";element_depth = 32\n"
		";element_attributes = 64\n"
		";output_queue = 1MiB\n"
		";connections_per_ip = 64\n"
		";preauth_streams_per_ip = 8\n"
		";preauth_streams = 200\n"
		"\n"
		"[timeouts]\n"
		";stream_header = 30s\n"
		";tls_handshake = 30s\n"
		";authentication = 60s\n"
		";stalled_output = 60s\n"

		"\n"
		"[c2s]\n"
		"; password guessing: a failed login is answered after 1 s, 2 s, 4 s ...\n"
		"; (per client address) up to auth_delay_max; after auth_failures that\n"
		"; address alone is refused until auth_failure_window has passed since\n"
		"; its last failure. No account is ever locked. The defaults are:\n"
		";auth_failures = 10\n"
		";auth_failure_window = 300s\n"
		";auth_delay_max = 30s\n"
		"\n"
		"[admin]\n"
		"; the same for control panel sign-ins (429 when refused):\n"
		";signin_attempts = 10\n"
		";signin_window = 300s\n"
		";signin_delay_max = 10s\n",
		date, domain, who_text(), cert, key, control, store);
	if (fclose(f) != 0) {
		free(s);
		return NULL;
	}
	return s;
}

/* Refuses when any target exists, naming each, before anything is made. */
static int check_free(const char *const *paths, size_t n)
{
	struct stat st;
	int rc = FG_OK;

	for (size_t i = 0; i < n; i++) {
		if (lstat(paths[i], &st) == 0) {
			fprintf(stderr,
				"fedgate init: %s already exists; remove it or choose another "
				"--dir\n",
				paths[i]);
			rc = FG_ERR;
		} else if (errno != ENOENT && errno != ENOTDIR) {
			fprintf(stderr, "fedgate init: cannot check %s: %s\n", paths[i],
				strerror(errno));
			rc = FG_ERR;
		}
	}
	return rc;
}

static void fingerprint(X509 *x, char *buf, size_t len)
{
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned n = 0;
	size_t off = 0;

	buf[0] = '\0';
	if (X509_digest(x, EVP_sha256(), md, &n) != 1)
		return;
	for (unsigned i = 0; i < n && off + 4 <= len; i++)
		off += (size_t)snprintf(buf + off, len - off, "%s%02X", i > 0 ? ":" : "", md[i]);
}

/* What the options ask for. */
struct init_opts {
	const char *domain;
	const char *dir;
	const char *conf;
};

static int parse_opts(int argc, char **argv, struct init_opts *o)
{
	static const struct option longopts[] = {
		{"domain", required_argument, NULL, 'd'},
		{"dir", required_argument, NULL, 'D'},
		{"config", required_argument, NULL, 'c'},
		{"help", no_argument, NULL, 'h'},
		{NULL, 0, NULL, 0},
	};
	int ch, rc = 0, saved_opterr = opterr;

	o->domain = "localhost";
	o->dir = ".";
	o->conf = NULL;
	/* 0, not 1: glibc then also resets its state, so that init_main can
	 * run more than once in a process (the unit tests do). */
	optind = 0;
	opterr = 0; /* getopt would name the program "init" */
	while (rc == 0 && (ch = getopt_long(argc, argv, "+:c:h", longopts, NULL)) != -1) {
		switch (ch) {
		case 'd': o->domain = optarg; break;
		case 'D': o->dir = optarg; break;
		case 'c': o->conf = optarg; break;
		case 'h': rc = 1; break;
		case ':':
			fprintf(stderr, "fedgate init: option '%s' needs a value\n",
				argv[optind - 1]);
			rc = -1;
			break;
		default: {
			static const char *const known[] = {"--domain", "--dir", "--config",
							    "--help",	"-c",	 "-h"};
			const char *hint =
				suggest_closest(argv[optind - 1], known, FG_ARRAY_LEN(known));
			fprintf(stderr, "fedgate init: unknown option '%s'", argv[optind - 1]);
			if (hint)
				fprintf(stderr, "; did you mean '%s'?", hint);
			fputc('\n', stderr);
			rc = -1;
			break;
		}
		}
	}
	opterr = saved_opterr;
	if (rc == 0 && optind < argc) {
		fprintf(stderr, "fedgate init: unexpected argument '%s'\n", argv[optind]);
		rc = -1;
	}
	if (rc == 0 && (o->dir[0] == '\0' || (o->conf != NULL && o->conf[0] == '\0'))) {
		fprintf(stderr, "fedgate init: empty file name\n");
		rc = -1;
	}
	if (rc != 0)
		init_usage(rc > 0 ? stdout : stderr);
	return rc;
}

/* The local domain, prepared; NULL (with a message) when it cannot be one. */
static char *prep_domain(const char *d)
{
	char *prep = NULL;
	enum jid_err je = jid_domain_prep(d, strlen(d), &prep);
	unsigned char v4[4];

	if (je != JID_OK) {
		fprintf(stderr, "fedgate init: '%s' is not a valid domain: %s\n", d,
			jid_strerror(je));
		return NULL;
	}
	if (prep[0] == '[' || inet_pton(AF_INET, prep, v4) == 1) {
		fprintf(stderr,
			"fedgate init: '%s' is an IP address; a local domain must be a "
			"DNS name\n",
			d);
		free(prep);
		return NULL;
	}
	return prep;
}

int init_main(int argc, char **argv)
{
	struct init_opts o;
	char *domain = NULL, *certdir = NULL, *cert = NULL, *key = NULL, *conf = NULL;
	char *store = NULL, *control = NULL, *conf_abs = NULL;
	char *n_cert = NULL, *n_key = NULL, *n_store = NULL, *n_control = NULL;
	char *key_pem = NULL, *cert_pem = NULL, *text = NULL, *conf_dir = NULL;
	size_t key_len = 0, cert_len = 0;
	EVP_PKEY *pk = NULL;
	X509 *x = NULL;
	bool wrote_key = false, wrote_cert = false;
	char fp[EVP_MAX_MD_SIZE * 3 + 1], until[64];
	const char *slash, *targets[3];
	int status = 1, prc = parse_opts(argc, argv, &o);

	if (prc != 0)
		return prc > 0 ? 0 : 2;
	domain = prep_domain(o.domain);
	if (domain == NULL)
		return 1;
	certdir = join(o.dir, "certs");
	if (certdir == NULL || asprintf(&cert, "%s/%s.pem", certdir, domain) < 0 ||
	    asprintf(&key, "%s/%s.key", certdir, domain) < 0) {
		cert = key = NULL;
		goto nomem;
	}
	conf = o.conf != NULL ? strdup(o.conf) : join(o.dir, "fedgate.conf");
	store = join(o.dir, "fedgate.db");
	control = join(o.dir, "fedgate.sock");
	if (conf == NULL || store == NULL || control == NULL)
		goto nomem;

	targets[0] = conf;
	targets[1] = cert;
	targets[2] = key;
	if (check_free(targets, FG_ARRAY_LEN(targets)) != FG_OK)
		goto out;

	slash = strrchr(conf, '/');
	conf_dir = slash == NULL ? strdup(".")
				 : strndup(conf, slash == conf ? 1 : (size_t)(slash - conf));
	if (conf_dir == NULL)
		goto nomem;
	if (mkdirs(o.dir, 0755) != FG_OK || mkdirs(conf_dir, 0755) != FG_OK ||
	    mkdirs(certdir, 0750) != FG_OK)
		goto out;
	conf_abs = abs_path(conf);
	if (conf_abs == NULL)
		goto nomem;
	n_cert = conf_name(conf_abs, cert);
	n_key = conf_name(conf_abs, key);
	n_store = conf_name(conf_abs, store);
	n_control = conf_name(conf_abs, control);
	if (n_cert == NULL || n_key == NULL || n_store == NULL || n_control == NULL)
		goto nomem;

	pk = EVP_EC_gen("P-256");
	if (pk == NULL) {
		print_ssl_errors("making the EC P-256 key");
		goto out;
	}
	x = make_cert(pk, domain);
	if (x == NULL)
		goto out;
	key_pem = pem_text(pk, NULL, &key_len);
	cert_pem = pem_text(NULL, x, &cert_len);
	text = config_text(domain, n_cert, n_key, n_store, n_control);
	if (key_pem == NULL || cert_pem == NULL || text == NULL)
		goto nomem;

	if (write_atomic(key, key_pem, key_len, 0600) != FG_OK)
		goto out;
	wrote_key = true;
	if (write_atomic(cert, cert_pem, cert_len, 0644) != FG_OK)
		goto out;
	wrote_cert = true;
	if (write_atomic(conf, text, strlen(text), 0640) != FG_OK)
		goto out;
	wrote_key = wrote_cert = false; /* keep them */

	fingerprint(x, fp, sizeof(fp));
	{
		struct tm tm;
		if (ASN1_TIME_to_tm(X509_get0_notAfter(x), &tm) != 1 ||
		    strftime(until, sizeof(until), "%Y-%m-%d", &tm) == 0)
			snprintf(until, sizeof(until), "?");
	}
	printf("fedgate init: wrote %s (EC P-256 private key, mode 0600)\n", key);
	printf("fedgate init: wrote %s (self-signed certificate for %s, valid until %s)\n"
	       "              SHA-256 %s\n",
	       cert, domain, until, fp);
	printf("fedgate init: wrote %s\n", conf);
	printf("next: fedgate serve -c %s\n", conf);
	status = 0;
	goto out;
nomem:
	fprintf(stderr, "fedgate init: out of memory\n");
out:
	/* Half an init is worse than none: a rerun would refuse to overwrite. */
	if (wrote_cert)
		unlink(cert);
	if (wrote_key)
		unlink(key);
	ERR_clear_error();
	X509_free(x);
	EVP_PKEY_free(pk);
	if (key_pem != NULL)
		OPENSSL_cleanse(key_pem, key_len);
	free(key_pem);
	free(cert_pem);
	free(text);
	free(n_cert);
	free(n_key);
	free(n_store);
	free(n_control);
	free(conf_abs);
	free(conf_dir);
	free(control);
	free(store);
	free(conf);
	free(key);
	free(cert);
	free(certdir);
	free(domain);
	return status;
}

/* Unit tests for src/conf.c (fedgate.conf, `fedgate check`) and src/init.c
 * (`fedgate init`). Each test gets its own mkdtemp folder; the sample files
 * live in $FG_TESTDATA/conf. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "conf.h"
#include "fg.h"
#include "init.h"
#include "log.h"

#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include <ftw.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* ---- helpers ---- */

static int setup(void **state)
{
	char tmpl[] = "/tmp/fg-conf-XXXXXX";
	char *real;

	if (mkdtemp(tmpl) == NULL)
		return -1;
	/* Canonical, so it compares equal to the folder conf_load() resolves. */
	real = realpath(tmpl, NULL);
	if (real == NULL)
		return -1;
	*state = real;
	return 0;
}

static int rm_entry(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
	(void)sb;
	(void)flag;
	(void)ftw;
	return remove(path);
}

static int teardown(void **state)
{
	char *dir = *state;

	nftw(dir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
	free(dir);
	return 0;
}

static char *path_in(const char *dir, const char *name)
{
	char *p = NULL;

	assert_true(asprintf(&p, "%s/%s", dir, name) > 0);
	return p;
}

/* Writes text to dir/name and returns the path (malloc'ed). */
static char *write_file(const char *dir, const char *name, const char *text)
{
	char *p = path_in(dir, name);
	FILE *f = fopen(p, "w");

	assert_non_null(f);
	assert_int_equal(fputs(text, f) >= 0, 1);
	assert_int_equal(fclose(f), 0);
	return p;
}

static char *read_all(const char *path)
{
	FILE *f = fopen(path, "rb");
	char *buf;
	long n;

	if (f == NULL)
		return NULL;
	assert_int_equal(fseek(f, 0, SEEK_END), 0);
	n = ftell(f);
	assert_true(n >= 0);
	rewind(f);
	buf = malloc((size_t)n + 1);
	assert_non_null(buf);
	assert_int_equal(fread(buf, 1, (size_t)n, f), (size_t)n);
	buf[n] = '\0';
	fclose(f);
	return buf;
}

/* conf_load() of path; *errs gets everything written to the error stream. */
static int load_path(const char *path, struct fg_conf **c, char **errs)
{
	size_t len = 0;
	FILE *ef = open_memstream(errs, &len);
	int rc;

	assert_non_null(ef);
	rc = conf_load(path, c, ef);
	fclose(ef);
	if (rc == FG_OK)
		assert_non_null(*c);
	else
		assert_null(*c);
	return rc;
}

/* Writes text as dir/fedgate.conf and loads it. */
static int load_text(const char *dir, const char *text, struct fg_conf **c, char **errs)
{
	char *path = write_file(dir, "fedgate.conf", text);
	int rc = load_path(path, c, errs);

	free(path);
	return rc;
}

static size_t count_lines(const char *s)
{
	size_t n = 0;

	for (; *s != '\0'; s++)
		n += *s == '\n';
	return n;
}

/* Asserts that errs has a line "DIR/fedgate.conf:LINE: " + what (a prefix
 * of the rest of that line), or "DIR/fedgate.conf: " + what for line 0. */
static void expect_error(const char *dir, const char *errs, int line, const char *what)
{
	char *want = NULL;

	if (line > 0)
		assert_true(asprintf(&want, "%s/fedgate.conf:%d: %s", dir, line, what) > 0);
	else
		assert_true(asprintf(&want, "%s/fedgate.conf: %s", dir, what) > 0);
	for (const char *l = errs; *l != '\0';) {
		const char *nl = strchr(l, '\n');
		if (strncmp(l, want, strlen(want)) == 0) {
			free(want);
			return;
		}
		if (nl == NULL)
			break;
		l = nl + 1;
	}
	fail_msg("no error \"%s\" in:\n%s", want, errs);
}

static void assert_list(const struct conf_list *l, size_t n, ...)
{
	va_list ap;

	assert_int_equal(l->n, n);
	va_start(ap, n);
	for (size_t i = 0; i < n; i++)
		assert_string_equal(l->v[i], va_arg(ap, const char *));
	va_end(ap);
}

static void assert_str_or_null_equal(const char *a, const char *b)
{
	if (a == NULL || b == NULL)
		assert_ptr_equal(a, b);
	else
		assert_string_equal(a, b);
}

static void assert_lists_equal(const struct conf_list *a, const struct conf_list *b)
{
	assert_int_equal(a->n, b->n);
	for (size_t i = 0; i < a->n; i++)
		assert_string_equal(a->v[i], b->v[i]);
}

/* Every value (path and dir aside, which say where a config came from). */
static void assert_conf_equal(const struct fg_conf *a, const struct fg_conf *b)
{
	assert_lists_equal(&a->domains, &b->domains);
	assert_str_or_null_equal(a->tls_certificate, b->tls_certificate);
	assert_str_or_null_equal(a->tls_key, b->tls_key);
	assert_str_or_null_equal(a->tls_ca_file, b->tls_ca_file);
	assert_lists_equal(&a->listen_s2s, &b->listen_s2s);
	assert_lists_equal(&a->listen_c2s, &b->listen_c2s);
	assert_lists_equal(&a->listen_admin, &b->listen_admin);
	assert_str_or_null_equal(a->listen_control, b->listen_control);
	assert_str_or_null_equal(a->dns_resolv_conf, b->dns_resolv_conf);
	assert_str_or_null_equal(a->store_path, b->store_path);
	assert_int_equal(a->log_level, b->log_level);
	assert_int_equal(a->s2s_stanza_size, b->s2s_stanza_size);
	assert_int_equal(a->c2s_stanza_size, b->c2s_stanza_size);
	assert_int_equal(a->preauth_stanza_size, b->preauth_stanza_size);
	assert_int_equal(a->element_depth, b->element_depth);
	assert_int_equal(a->element_attributes, b->element_attributes);
	assert_int_equal(a->output_queue, b->output_queue);
	assert_int_equal(a->connections_per_ip, b->connections_per_ip);
	assert_int_equal(a->timeout_stream_header, b->timeout_stream_header);
	assert_int_equal(a->timeout_tls_handshake, b->timeout_tls_handshake);
	assert_int_equal(a->timeout_authentication, b->timeout_authentication);
}

static char *testdata(const char *name)
{
	const char *base = getenv("FG_TESTDATA");
	char *p = NULL;

	if (base == NULL || base[0] == '\0')
		base = "tests/data"; /* run from the source root by hand */
	assert_true(asprintf(&p, "%s/%s", base, name) > 0);
	return p;
}

/* Runs `fedgate init` with the given arguments (after "init"). */
static int run_init(int n, ...)
{
	char *argv[16];
	va_list ap;
	int rc;

	assert_true(n < 15);
	argv[0] = "init";
	va_start(ap, n);
	for (int i = 0; i < n; i++)
		argv[i + 1] = va_arg(ap, char *);
	va_end(ap);
	argv[n + 1] = NULL;
	rc = init_main(n + 1, argv);
	fflush(stdout);
	return rc;
}

/* ---- loading ---- */

static void test_minimal_gets_defaults(void **state)
{
	const char *dir = *state;
	struct fg_conf *c = NULL;
	char *errs = NULL, *want = NULL;

	assert_int_equal(load_text(dir, "[server]\ndomains = contoso.test\n", &c, &errs), FG_OK);
	assert_string_equal(errs, "");
	assert_string_equal(c->dir, dir);
	assert_list(&c->domains, 1, "contoso.test");
	want = path_in(dir, "certs/contoso.test.pem");
	assert_string_equal(c->tls_certificate, want);
	free(want);
	want = path_in(dir, "certs/contoso.test.key");
	assert_string_equal(c->tls_key, want);
	free(want);
	assert_null(c->tls_ca_file);
	assert_list(&c->listen_s2s, 1, "0.0.0.0:5269");
	assert_list(&c->listen_c2s, 1, "0.0.0.0:5222");
	assert_list(&c->listen_admin, 1, "127.0.0.1:5280");
	want = path_in(dir, "var/fedgate.sock");
	assert_string_equal(c->listen_control, want);
	free(want);
	assert_string_equal(c->dns_resolv_conf, "/etc/resolv.conf");
	want = path_in(dir, "var/fedgate.db");
	assert_string_equal(c->store_path, want);
	free(want);
	assert_int_equal(c->log_level, LOG_INFO);
	assert_int_equal(c->s2s_stanza_size, 512 * 1024);
	assert_int_equal(c->c2s_stanza_size, 256 * 1024);
	assert_int_equal(c->preauth_stanza_size, 10 * 1024);
	assert_int_equal(c->element_depth, 32);
	assert_int_equal(c->element_attributes, 64);
	assert_int_equal(c->output_queue, 1024 * 1024);
	assert_int_equal(c->connections_per_ip, 64);
	assert_int_equal(c->timeout_stream_header, 30);
	assert_int_equal(c->timeout_tls_handshake, 30);
	assert_int_equal(c->timeout_authentication, 60);
	assert_true(conf_is_local_domain(c, "contoso.test"));
	assert_false(conf_is_local_domain(c, "fabrikam.test"));
	assert_false(conf_is_local_domain(c, "contoso.test.evil"));

	/* conf_defaults_for() is the same thing without a file. */
	struct fg_conf *d = NULL;
	assert_int_equal(conf_defaults_for(dir, "Contoso.Test", &d), FG_OK);
	assert_conf_equal(c, d);
	assert_null(d->path);
	conf_free(&d);
	assert_null(d);
	assert_int_equal(conf_defaults(dir, &d), FG_OK);
	assert_list(&d->domains, 1, "localhost");
	conf_free(&d);
	assert_int_equal(conf_defaults_for(dir, "not a domain", &d), FG_INVAL);
	assert_null(d);

	conf_free(&c);
	assert_null(c);
	conf_free(&c); /* NULL is fine */
	conf_free(NULL);
	free(errs);
}

static void test_every_key_with_units(void **state)
{
	const char *dir = *state;
	struct fg_conf *c = NULL;
	char *errs = NULL;

	assert_int_equal(load_text(dir,
				   "[server]\n"
				   "domains = Contoso.TEST, fabrikam.test., b\xc3\xbc"
				   "cher.test\n"
				   "[tls]\n"
				   "certificate = /etc/fedgate/cert.pem\n"
				   "key = /etc/fedgate/key.pem\n"
				   "ca_file = /etc/ssl/ca.pem\n"
				   "[listen]\n"
				   "s2s = [::1]:5269, 127.0.0.1:5270\n"
				   "c2s =\n"
				   "admin = [0:0::1]:5280\n"
				   "control = /run/fedgate.sock\n"
				   "[dns]\n"
				   "resolv_conf = /etc/fedgate/resolv.conf\n"
				   "[store]\n"
				   "path = /var/lib/fedgate/fedgate.db\n"
				   "[log]\n"
				   "level = DEBUG\n"
				   "[limits]\n"
				   "s2s_stanza_size = 1 MiB\n"
				   "c2s_stanza_size = 512KiB\n"
				   "preauth_stanza_size = 2k\n"
				   "element_depth = 100\n"
				   "element_attributes = 50\n"
				   "output_queue = 2m\n"
				   "connections_per_ip = 10\n"
				   "[timeouts]\n"
				   "stream_header = 5m\n"
				   "tls_handshake = 45s\n"
				   "authentication = 1h\n",
				   &c, &errs),
			 FG_OK);
	assert_string_equal(errs, "");
	assert_list(&c->domains, 3, "contoso.test", "fabrikam.test", "xn--bcher-kva.test");
	assert_string_equal(c->tls_certificate, "/etc/fedgate/cert.pem");
	assert_string_equal(c->tls_key, "/etc/fedgate/key.pem");
	assert_string_equal(c->tls_ca_file, "/etc/ssl/ca.pem");
	assert_list(&c->listen_s2s, 2, "[::1]:5269", "127.0.0.1:5270");
	assert_list(&c->listen_c2s, 0);
	assert_list(&c->listen_admin, 1, "[::1]:5280");
	assert_string_equal(c->listen_control, "/run/fedgate.sock");
	assert_string_equal(c->dns_resolv_conf, "/etc/fedgate/resolv.conf");
	assert_string_equal(c->store_path, "/var/lib/fedgate/fedgate.db");
	assert_int_equal(c->log_level, LOG_DEBUG);
	assert_int_equal(c->s2s_stanza_size, 1048576);
	assert_int_equal(c->c2s_stanza_size, 524288);
	assert_int_equal(c->preauth_stanza_size, 2048);
	assert_int_equal(c->element_depth, 100);
	assert_int_equal(c->element_attributes, 50);
	assert_int_equal(c->output_queue, 2 * 1048576);
	assert_int_equal(c->connections_per_ip, 10);
	assert_int_equal(c->timeout_stream_header, 300);
	assert_int_equal(c->timeout_tls_handshake, 45);
	assert_int_equal(c->timeout_authentication, 3600);
	assert_true(conf_is_local_domain(c, "xn--bcher-kva.test"));
	conf_free(&c);
	free(errs);
}

static void test_spec_example_inline_comments(void **state)
{
	struct fg_conf *c = NULL;
	char *path = testdata("conf/spec-example.conf"), *errs = NULL;
	char *folder = NULL, *want = NULL;

	(void)state;
	assert_int_equal(load_path(path, &c, &errs), FG_OK);
	assert_string_equal(errs, "");
	folder = realpath(path, NULL);
	assert_non_null(folder);
	*strrchr(folder, '/') = '\0';
	assert_string_equal(c->dir, folder);
	assert_list(&c->domains, 1, "contoso.test");
	assert_null(c->tls_ca_file); /* "ca_file =   ; comment" is empty */
	assert_list(&c->listen_s2s, 1, "0.0.0.0:5269");
	want = path_in(folder, "var/fedgate.sock");
	assert_string_equal(c->listen_control, want);
	free(want);
	assert_string_equal(c->dns_resolv_conf, "/etc/resolv.conf");
	assert_int_equal(c->log_level, LOG_INFO);
	conf_free(&c);
	free(errs);
	free(folder);
	free(path);
}

static void test_comment_rules(void **state)
{
	const char *dir = *state;
	struct fg_conf *c = NULL;
	char *errs = NULL, *want = NULL;

	/* ';' starts a comment only after white space; '#' only at the start. */
	assert_int_equal(load_text(dir,
				   "\xef\xbb\xbf# a BOM, then a '#' comment\n"
				   "  [server]  ; indented header, trailing comment\n"
				   "domains=contoso.test;x\t; tab before the comment\n"
				   "\n"
				   "[store]\r\n"
				   "path = a;b#c.db\r\n",
				   &c, &errs),
			 FG_ERR);
	/* "contoso.test;x" is one (bad) domain: the ';' had no space before it. */
	expect_error(dir, errs, 3, "[server] domains: 'contoso.test;x' is not a valid domain");
	assert_int_equal(count_lines(errs), 1);
	free(errs);

	assert_int_equal(load_text(dir,
				   "  [server]  ; indented header, trailing comment\n"
				   "domains=contoso.test\t; tab before the comment\n"
				   "[store]\r\n"
				   "path = a;b#c.db\r\n",
				   &c, &errs),
			 FG_OK);
	want = path_in(dir, "a;b#c.db");
	assert_string_equal(c->store_path, want);
	free(want);
	conf_free(&c);
	free(errs);
}

static void test_relative_paths(void **state)
{
	const char *dir = *state;
	struct fg_conf *c = NULL;
	char *sub = path_in(dir, "etc"), *errs = NULL, *want = NULL, cwd[PATH_MAX];

	assert_int_equal(mkdir(sub, 0755), 0);
	free(write_file(sub, "fedgate.conf",
			"[server]\ndomains = contoso.test\n"
			"[tls]\ncertificate = certs/c.pem\nkey = /abs/k.key\nca_file = ../ca.pem\n"
			"[store]\npath = ./db/fedgate.db\n"));
	/* Loaded through a relative path, from another folder. */
	assert_non_null(getcwd(cwd, sizeof(cwd)));
	assert_int_equal(chdir(dir), 0);
	int rc = load_path("etc/fedgate.conf", &c, &errs);
	assert_int_equal(chdir(cwd), 0);
	assert_int_equal(rc, FG_OK);
	assert_string_equal(c->path, "etc/fedgate.conf");
	assert_string_equal(c->dir, sub);
	want = path_in(sub, "certs/c.pem");
	assert_string_equal(c->tls_certificate, want);
	free(want);
	assert_string_equal(c->tls_key, "/abs/k.key");
	want = path_in(sub, "../ca.pem");
	assert_string_equal(c->tls_ca_file, want);
	free(want);
	want = path_in(sub, "./db/fedgate.db");
	assert_string_equal(c->store_path, want);
	free(want);
	want = path_in(sub, "var/fedgate.sock");
	assert_string_equal(c->listen_control, want);
	free(want);
	conf_free(&c);
	free(errs);
	free(sub);
}

static void test_unknown_key_did_you_mean(void **state)
{
	const char *dir = *state;
	struct fg_conf *c = NULL;
	char *errs = NULL;

	assert_int_equal(load_text(dir,
				   "[server]\n"
				   "domains = contoso.test\n"
				   "[limits]\n"
				   "; comment\n"
				   "s2s_stanza_sise = 1MiB\n"
				   "[tls]\n"
				   "s2s = 0.0.0.0:5269\n"
				   "colour = blue\n"
				   "[limits]\n"
				   "element_dep = 8\n"
				   "element_d = 8\n",
				   &c, &errs),
			 FG_ERR);
	expect_error(dir, errs, 5,
		     "[limits] s2s_stanza_sise: unknown key; did you mean "
		     "s2s_stanza_size?");
	expect_error(dir, errs, 7, "[tls] s2s: unknown key here; it belongs in [listen]");
	expect_error(dir, errs, 8,
		     "[tls] colour: unknown key; keys of [tls]: certificate, key, "
		     "ca_file");
	/* Two edits away is still suggested, three is not. */
	expect_error(dir, errs, 10,
		     "[limits] element_dep: unknown key; did you mean element_depth?");
	expect_error(dir, errs, 11, "[limits] element_d: unknown key; keys of [limits]: ");
	assert_int_equal(count_lines(errs), 5);
	free(errs);
}

static void test_unknown_section(void **state)
{
	const char *dir = *state;
	struct fg_conf *c = NULL;
	char *errs = NULL;

	assert_int_equal(load_text(dir,
				   "[server]\n"
				   "domains = contoso.test\n"
				   "[limit]\n"
				   "s2s_stanza_size = 1MiB\n"
				   "whatever = 1\n"
				   "[nothing-like-it]\n"
				   "[]\n",
				   &c, &errs),
			 FG_ERR);
	/* One error per section, none for the keys in it. */
	expect_error(dir, errs, 3, "[limit]: unknown section; did you mean [limits]?");
	expect_error(dir, errs, 6,
		     "[nothing-like-it]: unknown section; known sections: server, "
		     "tls, listen, dns, store, cluster, log, limits, timeouts");
	expect_error(dir, errs, 7, "[]: empty section name");
	assert_int_equal(count_lines(errs), 3);
	free(errs);
}

static void test_duplicate_key(void **state)
{
	const char *dir = *state;
	struct fg_conf *c = NULL;
	char *errs = NULL;

	assert_int_equal(load_text(dir,
				   "[server]\n"
				   "domains = contoso.test\n"
				   "[log]\n"
				   "level = info\n"
				   "[server]\n"
				   "domains = fabrikam.test\n",
				   &c, &errs),
			 FG_ERR);
	expect_error(dir, errs, 6, "[server] domains: set twice (first on line 2); keep one");
	assert_int_equal(count_lines(errs), 1);
	free(errs);
}

struct range_case {
	const char *section, *key;
	unsigned long long min, max;
};

static unsigned long long number_of(const struct fg_conf *c, const char *key)
{
	if (strcmp(key, "s2s_stanza_size") == 0)
		return c->s2s_stanza_size;
	if (strcmp(key, "c2s_stanza_size") == 0)
		return c->c2s_stanza_size;
	if (strcmp(key, "preauth_stanza_size") == 0)
		return c->preauth_stanza_size;
	if (strcmp(key, "element_depth") == 0)
		return c->element_depth;
	if (strcmp(key, "element_attributes") == 0)
		return c->element_attributes;
	if (strcmp(key, "output_queue") == 0)
		return c->output_queue;
	if (strcmp(key, "connections_per_ip") == 0)
		return c->connections_per_ip;
	if (strcmp(key, "stream_header") == 0)
		return c->timeout_stream_header;
	if (strcmp(key, "tls_handshake") == 0)
		return c->timeout_tls_handshake;
	if (strcmp(key, "authentication") == 0)
		return c->timeout_authentication;
	fail_msg("no such key %s", key);
	return 0;
}

static void test_ranges(void **state)
{
	static const struct range_case cases[] = {
		{"limits", "s2s_stanza_size", 1024, 16777216},
		{"limits", "c2s_stanza_size", 1024, 16777216},
		{"limits", "preauth_stanza_size", 1024, 1048576},
		{"limits", "element_depth", 4, 1000},
		{"limits", "element_attributes", 4, 1000},
		{"limits", "output_queue", 16384, 268435456},
		{"limits", "connections_per_ip", 1, 100000},
		{"timeouts", "stream_header", 1, 86400},
		{"timeouts", "tls_handshake", 1, 86400},
		{"timeouts", "authentication", 1, 86400},
	};
	const char *dir = *state;

	for (size_t i = 0; i < FG_ARRAY_LEN(cases); i++) {
		const struct range_case *rc = &cases[i];
		const unsigned long long vals[] = {rc->min - 1, rc->min, rc->max, rc->max + 1};
		for (size_t j = 0; j < 4; j++) {
			struct fg_conf *c = NULL;
			char *text = NULL, *errs = NULL, *what = NULL;
			assert_true(asprintf(&text,
					     "[server]\ndomains = contoso.test\n[%s]\n%s = %llu\n",
					     rc->section, rc->key, vals[j]) > 0);
			int r = load_text(dir, text, &c, &errs);
			if (j == 1 || j == 2) {
				if (r != FG_OK)
					fail_msg("%s = %llu refused:\n%s", rc->key, vals[j], errs);
				assert_int_equal(number_of(c, rc->key), vals[j]);
				conf_free(&c);
			} else {
				assert_int_equal(r, FG_ERR);
				assert_true(asprintf(&what, "[%s] %s: '%llu' is out of range; use ",
						     rc->section, rc->key, vals[j]) > 0);
				expect_error(dir, errs, 4, what);
				assert_int_equal(count_lines(errs), 1);
			}
			free(what);
			free(text);
			free(errs);
		}
	}
}

static void test_range_message_names_units(void **state)
{
	const char *dir = *state;
	struct fg_conf *c = NULL;
	char *errs = NULL;

	assert_int_equal(load_text(dir,
				   "[server]\ndomains = contoso.test\n"
				   "[limits]\n"
				   "s2s_stanza_size = 17 MiB\n"
				   "element_depth = 1001\n"
				   "[timeouts]\n"
				   "authentication = 2d\n",
				   &c, &errs),
			 FG_ERR);
	expect_error(dir, errs, 4,
		     "[limits] s2s_stanza_size: '17 MiB' is out of range; use a "
		     "size from 1 KiB to 16 MiB (bytes)");
	expect_error(dir, errs, 5,
		     "[limits] element_depth: '1001' is out of range; use a number "
		     "from 4 to 1000");
	expect_error(dir, errs, 7,
		     "[timeouts] authentication: '2d' is out of range; use a "
		     "duration from 1s to 24h (seconds)");
	assert_int_equal(count_lines(errs), 3);
	free(errs);
}

static void test_bad_numbers(void **state)
{
	static const char *const sizes[] = {"12 furlongs",
					    "-1",
					    "0x10",
					    "1.5MiB",
					    "10KB",
					    "",
					    "MiB",
					    "99999999999999999999",
					    "18014398509481984 MiB"};
	static const char *const durations[] = {"2 weeks", "30 s s", "-5", "1.5h", "s"};
	const char *dir = *state;

	for (size_t i = 0; i < FG_ARRAY_LEN(sizes); i++) {
		struct fg_conf *c = NULL;
		char *text = NULL, *errs = NULL, *what = NULL;
		assert_true(asprintf(&text,
				     "[server]\ndomains = x.test\n[limits]\noutput_queue = %s\n",
				     sizes[i]) > 0);
		assert_int_equal(load_text(dir, text, &c, &errs), FG_ERR);
		assert_true(asprintf(&what, "[limits] output_queue: '%s' is not a size", sizes[i]) >
			    0);
		expect_error(dir, errs, 4, what);
		free(what);
		free(text);
		free(errs);
	}
	for (size_t i = 0; i < FG_ARRAY_LEN(durations); i++) {
		struct fg_conf *c = NULL;
		char *text = NULL, *errs = NULL, *what = NULL;
		assert_true(asprintf(&text,
				     "[server]\ndomains = x.test\n[timeouts]\nstream_header = %s\n",
				     durations[i]) > 0);
		assert_int_equal(load_text(dir, text, &c, &errs), FG_ERR);
		assert_true(asprintf(&what, "[timeouts] stream_header: '%s' is not a duration",
				     durations[i]) > 0);
		expect_error(dir, errs, 4, what);
		free(what);
		free(text);
		free(errs);
	}
	struct fg_conf *c = NULL;
	char *errs = NULL;
	assert_int_equal(load_text(dir,
				   "[server]\ndomains = x.test\n[limits]\nelement_depth = 10k\n"
				   "connections_per_ip = +5\n[log]\nlevel = verbose\n",
				   &c, &errs),
			 FG_ERR);
	expect_error(dir, errs, 4, "[limits] element_depth: '10k' is not a whole number");
	expect_error(dir, errs, 5, "[limits] connections_per_ip: '+5' is not a whole number");
	expect_error(dir, errs, 7,
		     "[log] level: 'verbose' is not a log level; use error, "
		     "warning, info or debug");
	assert_int_equal(count_lines(errs), 3);
	free(errs);
}

static void test_bad_addresses(void **state)
{
	static const struct {
		const char *addr, *why;
	} bad[] = {
		{"localhost:5269", "not a numeric IPv4 address"},
		{"0.0.0.0", "no ':port'"},
		{"::1:5269", "an IPv6 address needs brackets"},
		{"[::1]", "no ':port' after ']'"},
		{"[::1:5269", "no ']'"},
		{"1.2.3.4:0", "the port must be a number from 1 to 65535"},
		{"1.2.3.4:65536", "the port must be a number from 1 to 65535"},
		{"1.2.3.4:http", "the port must be a number from 1 to 65535"},
		{"[1.2.3.4]:5269", "not a numeric IPv6 address"},
		{":5269", "no address before ':port'"},
		{"1.2.3:5269", "not a numeric IPv4 address"},
	};
	const char *dir = *state;

	for (size_t i = 0; i < FG_ARRAY_LEN(bad); i++) {
		struct fg_conf *c = NULL;
		char *text = NULL, *errs = NULL, *what = NULL;
		assert_true(asprintf(&text, "[server]\ndomains = x.test\n[listen]\ns2s = %s\n",
				     bad[i].addr) > 0);
		assert_int_equal(load_text(dir, text, &c, &errs), FG_ERR);
		assert_true(asprintf(&what, "[listen] s2s: '%s' is not an address:port: %s",
				     bad[i].addr, bad[i].why) > 0);
		expect_error(dir, errs, 4, what);
		assert_int_equal(count_lines(errs), 1);
		free(what);
		free(text);
		free(errs);
	}

	/* Good ones, and one address claimed twice or by two listeners. */
	struct fg_conf *c = NULL;
	char *errs = NULL;
	assert_int_equal(load_text(dir,
				   "[server]\ndomains = x.test\n[listen]\n"
				   "s2s = [::]:5269, 0.0.0.0:5269, [fe80::1%lo]:5269\n"
				   "c2s = 127.0.0.1:5222, 127.0.0.1:5222\n"
				   "admin = [::0]:5269\n",
				   &c, &errs),
			 FG_ERR);
	expect_error(dir, errs, 5, "[listen] c2s: '127.0.0.1:5222' is listed twice");
	expect_error(dir, errs, 6,
		     "[listen] admin: '[::0]:5269' is also a listener of [listen] "
		     "s2s");
	assert_int_equal(count_lines(errs), 2);
	free(errs);
}

static void test_bad_domains(void **state)
{
	const char *dir = *state;
	struct fg_conf *c = NULL;
	char *errs = NULL;

	assert_int_equal(load_text(dir,
				   "[server]\n"
				   "domains = contoso.test, exa mple.test, -bad-.test, 127.0.0.1, "
				   "CONTOSO.test, a..b\n",
				   &c, &errs),
			 FG_ERR);
	expect_error(dir, errs, 2,
		     "[server] domains: 'exa mple.test' is not a domain; separate "
		     "domains with commas");
	expect_error(dir, errs, 2, "[server] domains: '-bad-.test' is not a valid domain name");
	expect_error(dir, errs, 2, "[server] domains: '127.0.0.1' is an IP address");
	expect_error(dir, errs, 2,
		     "[server] domains: 'CONTOSO.test' (contoso.test) is listed "
		     "twice");
	expect_error(dir, errs, 2, "[server] domains: 'a..b' is not a valid domain name");
	assert_int_equal(count_lines(errs), 5);
	free(errs);
}

static void test_missing_domains(void **state)
{
	const char *dir = *state;
	struct fg_conf *c = NULL;
	char *errs = NULL;

	assert_int_equal(load_text(dir, "[log]\nlevel = debug\n", &c, &errs), FG_ERR);
	/* Not on any line: the file as a whole lacks it. */
	expect_error(dir, errs, 0,
		     "[server] domains is required: the local domains fedgate "
		     "serves, comma-separated, e.g. domains = contoso.test");
	/* The certificate default names the first domain, so it says nothing. */
	assert_int_equal(count_lines(errs), 1);
	free(errs);

	assert_int_equal(load_text(dir, "[server]\ndomains = , ;none\n", &c, &errs), FG_ERR);
	expect_error(dir, errs, 2, "[server] domains: empty; the local domains");
	assert_int_equal(count_lines(errs), 1);
	free(errs);

	assert_int_equal(load_text(dir, "", &c, &errs), FG_ERR);
	expect_error(dir, errs, 0, "[server] domains is required");
	free(errs);
}

static void test_empty_values(void **state)
{
	const char *dir = *state;
	struct fg_conf *c = NULL;
	char *errs = NULL;

	/* Empty listener lists mean "do not listen"; empty files are errors. */
	assert_int_equal(load_text(dir,
				   "[server]\ndomains = x.test\n"
				   "[listen]\ns2s =\nc2s = ; none\nadmin =\ncontrol =\n"
				   "[tls]\ncertificate =\n",
				   &c, &errs),
			 FG_ERR);
	expect_error(dir, errs, 7, "[listen] control: empty; give a file name");
	expect_error(dir, errs, 9, "[tls] certificate: empty; give a file name");
	assert_int_equal(count_lines(errs), 2);
	free(errs);

	assert_int_equal(
		load_text(dir, "[server]\ndomains = x.test\n[listen]\ns2s =\nc2s =\n", &c, &errs),
		FG_OK);
	assert_list(&c->listen_s2s, 0);
	assert_list(&c->listen_c2s, 0);
	assert_list(&c->listen_admin, 1, "127.0.0.1:5280");
	conf_free(&c);
	free(errs);
}

static void test_syntax_errors(void **state)
{
	const char *dir = *state;
	struct fg_conf *c = NULL;
	char *errs = NULL;

	assert_int_equal(load_text(dir,
				   "domains = x.test\n"
				   "[server\n"
				   "[server] domains = y.test\n"
				   "domains = x.test\n"
				   "just some words\n"
				   "= value\n",
				   &c, &errs),
			 FG_ERR);
	expect_error(dir, errs, 1, "domains: key outside any section; put it under [server]");
	expect_error(dir, errs, 2, "section header has no closing ']'");
	expect_error(dir, errs, 3, "[server]: text after ']' is ignored");
	expect_error(dir, errs, 5, "expected 'key = value', a [section] or a ';' comment");
	expect_error(dir, errs, 6, "[server]: a key name is missing before '='");
	assert_int_equal(count_lines(errs), 5);
	free(errs);
}

static void test_continuation_lines(void **state)
{
	const char *dir = *state;
	struct fg_conf *c = NULL;
	char *errs = NULL;

	/* A list may go on over indented lines, comments in between. */
	assert_int_equal(load_text(dir,
				   "[server]\n"
				   "domains = a.test,\n"
				   "\tb.test\n"
				   "    ; a comment\n"
				   "  c.test, d.test\n"
				   "[listen]\n"
				   "s2s = 127.0.0.1:5269,\n"
				   "      [::1]:5269\n",
				   &c, &errs),
			 FG_OK);
	assert_list(&c->domains, 4, "a.test", "b.test", "c.test", "d.test");
	assert_list(&c->listen_s2s, 2, "127.0.0.1:5269", "[::1]:5269");
	conf_free(&c);
	free(errs);

	/* Anything else indented is a mistake worth naming. */
	assert_int_equal(load_text(dir,
				   "[server]\n"
				   "domains = a.test\n"
				   "  level = debug\n"
				   "[store]\n"
				   "path = x.db\n"
				   "  y.db\n",
				   &c, &errs),
			 FG_ERR);
	expect_error(dir, errs, 3,
		     "[server] domains: this line is indented, so it continues the "
		     "list of line 2; remove the indentation");
	expect_error(dir, errs, 6,
		     "[store] path: this line is indented, so it continues the value "
		     "of line 5, and only lists may continue");
	assert_int_equal(count_lines(errs), 2);
	free(errs);
}

/* conf_print(c) fits inih's lines and loads back from dir as c. */
static void assert_prints_back(const char *dir, const struct fg_conf *c)
{
	struct fg_conf *again = NULL;
	char *printed = NULL, *errs = NULL, *path;
	size_t plen = 0;
	FILE *f = open_memstream(&printed, &plen);

	assert_non_null(f);
	conf_print(c, f);
	fclose(f);
	for (const char *l = printed; *l != '\0'; l = strchr(l, '\n') + 1)
		assert_true(strchr(l, '\n') - l <= 198);
	path = write_file(dir, "printed.conf", printed);
	assert_int_equal(load_path(path, &again, &errs), FG_OK);
	assert_conf_equal(c, again);
	conf_free(&again);
	free(path);
	free(printed);
	free(errs);
}

static void test_long_lines(void **state)
{
	const char *dir = *state;
	struct fg_conf *c = NULL;
	char *errs = NULL, *text = NULL;
	size_t plen = 0;
	FILE *f;

	/* 250 characters on one line do not fit inih's buffer. */
	assert_true(asprintf(&text, "[server]\ndomains = x.test\n[store]\npath = %0250d\n", 0) > 0);
	assert_int_equal(load_text(dir, text, &c, &errs), FG_ERR);
	expect_error(dir, errs, 4, "line is 257 characters long, more than the 198 that fit");
	assert_int_equal(count_lines(errs), 1);
	free(errs);
	free(text);

	/* A relative path that fits its line but not once made absolute,
	 * as conf_print() writes it: refused, or `fedgate check` would print
	 * a configuration that does not load (found by fuzz_conf). */
	size_t room = 198 - strlen("path = ") - strlen(dir) - 1;
	assert_true(asprintf(&text, "[server]\ndomains = x.test\n[store]\npath = %0*d\n",
			     (int)room + 1, 0) > 0);
	assert_int_equal(load_text(dir, text, &c, &errs), FG_ERR);
	expect_error(dir, errs, 4, "[store] path: the path ");
	assert_non_null(strstr(errs, "choose a shorter path"));
	assert_int_equal(count_lines(errs), 1);
	free(errs);
	free(text);
	/* One character less fits, and prints back. */
	assert_true(asprintf(&text, "[server]\ndomains = x.test\n[store]\npath = %0*d\n", (int)room,
			     0) > 0);
	assert_int_equal(load_text(dir, text, &c, &errs), FG_OK);
	assert_prints_back(dir, c);
	conf_free(&c);
	free(errs);
	free(text);

	/* conf_print() wraps a long list so that it reads back. */
	f = open_memstream(&text, &plen);
	assert_non_null(f);
	fputs("[server]\ndomains = d0.test", f);
	for (int i = 1; i < 40; i++)
		fprintf(f, ",\n  domain-number-%d.test", i);
	fputs("\n", f);
	fclose(f);
	assert_int_equal(load_text(dir, text, &c, &errs), FG_OK);
	assert_int_equal(c->domains.n, 40);
	assert_string_equal(c->domains.v[39], "domain-number-39.test");
	assert_prints_back(dir, c);
	conf_free(&c);
	free(errs);
	free(text);
}

static void test_many_errors_all_reported(void **state)
{
	struct fg_conf *c = NULL;
	char *path = testdata("conf/errors.conf"), *errs = NULL, *want = NULL;
	static const struct {
		int line;
		const char *what;
	} expect[] = {
		{3, "[server] domains: 'exa mple.test' is not a domain"},
		{4, "[server] domain: unknown key; did you mean domains?"},
		{6, "[tls] certficate: unknown key; did you mean certificate?"},
		{8, "[listen] s2s: 'localhost:5269' is not an address:port"},
		{10, "[listen] c2s: set twice (first on line 9)"},
		{11, "[limit]: unknown section; did you mean [limits]?"},
		{14, "[limits] element_depth: '3' is out of range"},
		{16, "[timeouts] stream_header: '2 weeks' is not a duration"},
	};
	const char *l;

	(void)state;
	assert_int_equal(load_path(path, &c, &errs), FG_ERR);
	assert_int_equal(count_lines(errs), FG_ARRAY_LEN(expect));
	/* In line order, one per line. */
	l = errs;
	for (size_t i = 0; i < FG_ARRAY_LEN(expect); i++) {
		assert_true(asprintf(&want, "%s:%d: %s", path, expect[i].line, expect[i].what) > 0);
		if (strncmp(l, want, strlen(want)) != 0)
			fail_msg("error %zu: want \"%s\" in:\n%s", i, want, errs);
		free(want);
		l = strchr(l, '\n') + 1;
	}
	free(errs);

	/* `fedgate check` says the same, adds that the certificate and key
	 * (defaults, so on no line) are missing, and counts them all. */
	size_t olen = 0, elen = 0;
	char *out = NULL;
	FILE *of = open_memstream(&out, &olen), *ef = open_memstream(&errs, &elen);
	assert_int_equal(conf_check_main(path, of, ef), 1);
	fclose(of);
	fclose(ef);
	assert_string_equal(out, "");
	assert_non_null(strstr(errs, ": [tls] certificate: cannot read "));
	assert_non_null(strstr(errs, ": [tls] key: cannot read "));
	assert_true(asprintf(&want, "\n10 errors in %s\n", path) > 0);
	assert_true(strlen(errs) > strlen(want));
	assert_string_equal(errs + strlen(errs) - strlen(want), want);
	free(want);
	free(out);
	free(errs);
	free(path);
}

static void test_missing_file(void **state)
{
	const char *dir = *state;
	struct fg_conf *c = NULL;
	char *errs = NULL, *out = NULL, *path = path_in(dir, "nope.conf");
	size_t olen = 0, elen = 0;
	FILE *of, *ef;

	assert_int_equal(load_path(path, &c, &errs), FG_ERR);
	assert_int_equal(count_lines(errs), 1);
	assert_non_null(strstr(errs, "nope.conf: cannot open: No such file or directory"));
	free(errs);

	of = open_memstream(&out, &olen);
	ef = open_memstream(&errs, &elen);
	assert_int_equal(conf_check_main(path, of, ef), 1);
	fclose(of);
	fclose(ef);
	assert_string_equal(out, "");
	assert_int_equal(count_lines(errs), 1);
	free(out);
	free(errs);

	/* A folder is not a file. */
	assert_int_equal(load_path(dir, &c, &errs), FG_ERR);
	assert_int_equal(count_lines(errs), 1);
	assert_non_null(strstr(errs, "is a folder"));
	free(errs);
	free(path);
}

static void test_print_round_trip(void **state)
{
	const char *dir = *state;
	struct fg_conf *c = NULL, *again = NULL;
	char *errs = NULL, *printed = NULL, *printed2 = NULL, *sub = path_in(dir, "other"), *path;
	size_t len = 0;
	FILE *f;

	assert_int_equal(load_text(dir,
				   "[server]\ndomains = contoso.test, fabrikam.test\n"
				   "[tls]\nca_file = ca.pem\n"
				   "[listen]\ns2s = [::]:5269, 0.0.0.0:5269\nc2s =\n"
				   "[log]\nlevel = warning\n"
				   "[limits]\nc2s_stanza_size = 1MiB\nelement_depth = 4\n"
				   "[timeouts]\nauthentication = 2m\n",
				   &c, &errs),
			 FG_OK);
	f = open_memstream(&printed, &len);
	assert_non_null(f);
	conf_print(c, f);
	fclose(f);
	/* Units, ranges and defaults in the comments. */
	assert_non_null(strstr(printed, "\ns2s_stanza_size = 524288 ; bytes, 1 KiB..16 MiB "
					"(default 512 KiB)\n"));
	assert_non_null(strstr(printed, "\nc2s_stanza_size = 1048576 ; bytes, 1 KiB..16 MiB "
					"(changed; default 256 KiB)\n"));
	assert_non_null(strstr(printed, "\nauthentication = 120 ; seconds, 1s..24h (changed; "
					"default 1m)\n"));
	assert_non_null(strstr(printed, "\nlevel = warning ; error, warning, info or debug "
					"(changed; default info)\n"));
	assert_non_null(strstr(printed, "\nc2s = ; address:port list or empty (changed; "
					"default 0.0.0.0:5222)\n"));
	assert_non_null(strstr(printed, "\n[timeouts]\n"));

	/* Read back from another folder: paths were printed absolute. */
	assert_int_equal(mkdir(sub, 0755), 0);
	path = write_file(sub, "fedgate.conf", printed);
	free(errs);
	assert_int_equal(load_path(path, &again, &errs), FG_OK);
	assert_string_equal(errs, "");
	assert_conf_equal(c, again);
	conf_free(&again);
	free(path);
	free(errs);

	/* From the same folder, printing again gives the same text (from
	 * another one, "changed" marks differ: defaults follow the folder). */
	path = write_file(dir, "printed.conf", printed);
	assert_int_equal(load_path(path, &again, &errs), FG_OK);
	assert_conf_equal(c, again);
	f = open_memstream(&printed2, &len);
	assert_non_null(f);
	conf_print(again, f);
	fclose(f);
	/* Identical but for the header, which names the file. */
	assert_string_equal(strstr(printed, "\n[server]"), strstr(printed2, "\n[server]"));
	conf_free(&again);
	conf_free(&c);
	free(printed);
	free(printed2);
	free(path);
	free(sub);
	free(errs);
}

static void test_default_path(void **state)
{
	(void)state;
	/* The installed binary's default: SYSCONFDIR/fedgate/fedgate.conf. */
	assert_true(FG_CONF_DEFAULT[0] == '/');
	assert_non_null(strstr(FG_CONF_DEFAULT, "/fedgate/fedgate.conf"));
	unsetenv("FEDGATE_CONF");
	assert_string_equal(conf_default_path(NULL), FG_CONF_DEFAULT);
	setenv("FEDGATE_CONF", "/srv/gw/fedgate.conf", 1);
	assert_string_equal(conf_default_path(NULL), "/srv/gw/fedgate.conf");
	assert_string_equal(conf_default_path("x.conf"), "x.conf");
	setenv("FEDGATE_CONF", "", 1);
	assert_string_equal(conf_default_path(NULL), FG_CONF_DEFAULT);
	unsetenv("FEDGATE_CONF");
}

/* ---- `fedgate init` and `fedgate check` ---- */

static void test_init_writes_working_config(void **state)
{
	const char *dir = *state;
	char *target = path_in(dir, "new/site"), *conf, *cert, *key, *errs = NULL;
	char *conf_text, *cert_text, *key_text;
	struct fg_conf *c = NULL;
	struct stat st;
	FILE *f;
	X509 *x;
	EVP_PKEY *pk;

	assert_int_equal(run_init(4, "--domain", "Contoso.Test", "--dir", target), 0);
	conf = path_in(target, "fedgate.conf");
	cert = path_in(target, "certs/contoso.test.pem");
	key = path_in(target, "certs/contoso.test.key");

	assert_int_equal(stat(key, &st), 0);
	assert_int_equal(st.st_mode & 0777, 0600);
	assert_int_equal(stat(conf, &st), 0);
	assert_int_equal(st.st_mode & 0777, 0640);

	assert_int_equal(load_path(conf, &c, &errs), FG_OK);
	assert_string_equal(errs, "");
	assert_list(&c->domains, 1, "contoso.test");
	assert_string_equal(c->tls_certificate, cert);
	assert_string_equal(c->tls_key, key);
	assert_list(&c->listen_s2s, 1, "0.0.0.0:5269");
	assert_list(&c->listen_c2s, 1, "0.0.0.0:5222");
	assert_list(&c->listen_admin, 1, "127.0.0.1:5280");
	free(errs);

	/* The certificate names the domain and belongs to the key. */
	f = fopen(cert, "r");
	assert_non_null(f);
	x = PEM_read_X509(f, NULL, NULL, NULL);
	fclose(f);
	assert_non_null(x);
	f = fopen(key, "r");
	assert_non_null(f);
	pk = PEM_read_PrivateKey(f, NULL, NULL, NULL);
	fclose(f);
	assert_non_null(pk);
	assert_int_equal(X509_check_private_key(x, pk), 1);
	assert_int_equal(
		X509_check_host(x, "contoso.test", 0, X509_CHECK_FLAG_NEVER_CHECK_SUBJECT, NULL),
		1);
	assert_int_equal(X509_check_host(x, "fabrikam.test", 0, 0, NULL), 0);
	assert_int_equal(X509_get_version(x), X509_VERSION_3);
	assert_true(EVP_PKEY_is_a(pk, "EC"));
	assert_int_equal(X509_get_extended_key_usage(x) & (XKU_SSL_SERVER | XKU_SSL_CLIENT),
			 XKU_SSL_SERVER | XKU_SSL_CLIENT);
	assert_int_equal(X509_check_ca(x), 0);
	assert_true(X509_cmp_current_time(X509_get0_notAfter(x)) > 0);
	X509_free(x);
	EVP_PKEY_free(pk);

	/* A second init into the same folder changes nothing. */
	conf_text = read_all(conf);
	cert_text = read_all(cert);
	key_text = read_all(key);
	assert_int_equal(run_init(4, "--domain", "contoso.test", "--dir", target), 1);
	char *now = read_all(conf);
	assert_string_equal(now, conf_text);
	free(now);
	now = read_all(cert);
	assert_string_equal(now, cert_text);
	free(now);
	now = read_all(key);
	assert_string_equal(now, key_text);
	free(now);
	/* And no temporary files were left behind. */
	char *certs = path_in(target, "certs");
	char cmd[PATH_MAX + 64];
	snprintf(cmd, sizeof(cmd), "test $(ls -A '%s' | wc -l) -eq 2", certs);
	assert_int_equal(system(cmd), 0);
	free(certs);

	free(conf_text);
	free(cert_text);
	free(key_text);
	conf_free(&c);
	free(conf);
	free(cert);
	free(key);
	free(target);
}

static void test_init_refuses_before_writing(void **state)
{
	const char *dir = *state;
	char *certs = path_in(dir, "certs"), *key, *conf, *cert;
	struct stat st;

	/* Only the key is in the way: nothing at all may be written. */
	assert_int_equal(mkdir(certs, 0755), 0);
	key = write_file(certs, "localhost.key", "mine\n");
	conf = path_in(dir, "fedgate.conf");
	cert = path_in(certs, "localhost.pem");
	assert_int_equal(run_init(2, "--dir", dir), 1);
	assert_int_equal(stat(conf, &st), -1);
	assert_int_equal(stat(cert, &st), -1);
	char *text = read_all(key);
	assert_string_equal(text, "mine\n");
	free(text);
	free(key);
	free(conf);
	free(cert);
	free(certs);
}

static void test_init_usage_and_bad_domain(void **state)
{
	const char *dir = *state;
	char *conf = path_in(dir, "fedgate.conf");
	struct stat st;

	assert_int_equal(run_init(2, "--bogus", dir), 2);
	assert_int_equal(run_init(3, "--dir", dir, "extra"), 2);
	assert_int_equal(run_init(1, "--domain"), 2);
	assert_int_equal(run_init(4, "--domain", "not a domain", "--dir", dir), 1);
	assert_int_equal(run_init(4, "--domain", "192.0.2.1", "--dir", dir), 1);
	assert_int_equal(stat(conf, &st), -1);
	free(conf);
}

static void test_init_config_elsewhere(void **state)
{
	const char *dir = *state;
	char *data = path_in(dir, "data"), *conf = path_in(dir, "etc/fg.conf"), *errs = NULL;
	char *want;
	struct fg_conf *c = NULL;

	/* -c puts the config apart from DIR; its paths must still lead there. */
	assert_int_equal(run_init(6, "--domain", "fabrikam.test", "--dir", data, "-c", conf), 0);
	assert_int_equal(load_path(conf, &c, &errs), FG_OK);
	want = path_in(data, "certs/fabrikam.test.pem");
	assert_string_equal(c->tls_certificate, want);
	free(want);
	want = path_in(data, "fedgate.db");
	assert_string_equal(c->store_path, want);
	free(want);
	conf_free(&c);
	free(errs);
	free(data);
	free(conf);
}

/* Check mode also opens the files serve will read. */
static void test_check_reads_files(void **state)
{
	const char *dir = *state;
	char *a = path_in(dir, "a"), *b = path_in(dir, "b"), *resolv, *text = NULL, *path;
	char *out = NULL, *errs = NULL;
	size_t olen = 0, elen = 0;
	FILE *of, *ef;
	struct fg_conf *c = NULL;

	assert_int_equal(run_init(4, "--domain", "a.test", "--dir", a), 0);
	assert_int_equal(run_init(4, "--domain", "b.test", "--dir", b), 0);
	resolv = write_file(dir, "resolv.conf", "nameserver 127.0.0.1\n");

	/* A good pair: check prints the effective configuration. */
	assert_true(asprintf(&text,
			     "[server]\ndomains = a.test\n[tls]\ncertificate = a/certs/a.test.pem\n"
			     "key = a/certs/a.test.key\n[dns]\nresolv_conf = resolv.conf\n") > 0);
	path = write_file(dir, "fedgate.conf", text);
	of = open_memstream(&out, &olen);
	ef = open_memstream(&errs, &elen);
	assert_int_equal(conf_check_main(path, of, ef), 0);
	fclose(of);
	fclose(ef);
	assert_string_equal(errs, "");
	assert_non_null(strstr(out, "\ndomains = a.test ; domain list, required\n"));
	/* And the printed configuration is itself accepted. */
	free(path);
	path = write_file(dir, "printed.conf", out);
	free(errs);
	assert_int_equal(load_path(path, &c, &errs), FG_OK);
	conf_free(&c);
	free(path);
	free(text);
	free(out);
	free(errs);

	/* The key of another certificate, a missing CA file, no resolv.conf. */
	assert_true(asprintf(&text,
			     "[server]\ndomains = a.test\n[tls]\ncertificate = a/certs/a.test.pem\n"
			     "key = b/certs/b.test.key\n") > 0);
	path = write_file(dir, "fedgate.conf", text);
	of = open_memstream(&out, &olen);
	ef = open_memstream(&errs, &elen);
	assert_int_equal(conf_check_main(path, of, ef), 1);
	fclose(of);
	fclose(ef);
	expect_error(dir, errs, 5, "[tls] key: ");
	assert_non_null(strstr(errs, "b.test.key is not the private key of the certificate in"));
	assert_non_null(strstr(errs, "1 error in "));
	/* conf_load() alone does not look at the files. */
	free(errs);
	assert_int_equal(load_path(path, &c, &errs), FG_OK);
	conf_free(&c);
	free(path);
	free(text);
	free(out);
	free(errs);

	assert_true(asprintf(&text, "[server]\ndomains = a.test\n[tls]\nca_file = nope.pem\n"
				    "[dns]\nresolv_conf = resolv.conf\n") > 0);
	path = write_file(dir, "fedgate.conf", text);
	of = open_memstream(&out, &olen);
	ef = open_memstream(&errs, &elen);
	assert_int_equal(conf_check_main(path, of, ef), 1);
	fclose(of);
	fclose(ef);
	/* Default certificate and key: not on any line. */
	expect_error(dir, errs, 0, "[tls] certificate: cannot read ");
	expect_error(dir, errs, 0, "[tls] key: cannot read ");
	expect_error(dir, errs, 4, "[tls] ca_file: cannot read ");
	assert_non_null(strstr(errs, "3 errors in "));
	free(path);
	free(text);
	free(out);
	free(errs);
	free(resolv);
	free(a);
	free(b);
}

/* Every key conf_print() knows is described in fedgate.conf(5). */
static void test_man_page_covers_every_key(void **state)
{
	const char *dir = *state;
	char *man_path = testdata("../../man/fedgate.conf.5"), *man = read_all(man_path);
	char *printed = NULL, *want = NULL;
	size_t len = 0, nkeys = 0;
	struct fg_conf *c = NULL;
	FILE *f;

	assert_non_null(man);
	assert_int_equal(conf_defaults(dir, &c), FG_OK);
	f = open_memstream(&printed, &len);
	assert_non_null(f);
	conf_print(c, f);
	fclose(f);
	for (char *l = printed; l != NULL && *l != '\0';) {
		char *nl = strchr(l, '\n'), *eq = strstr(l, " = ");
		if (*l != ';' && *l != '[' && eq != NULL && (nl == NULL || eq < nl)) {
			assert_true(asprintf(&want, "\n.B %.*s\n", (int)(eq - l), l) > 0);
			if (strstr(man, want) == NULL)
				fail_msg("%s: no \"%.*s\"", man_path, (int)(eq - l), l);
			free(want);
			nkeys++;
		}
		l = nl != NULL ? nl + 1 : NULL;
	}
	/* 21 + [users] and [c2s] (issue 5) + [admin] (issue 6) + the throttle and
	 * stalled_output, preauth_streams(_per_ip) (issue 11) + [server] user, group,
	 * run_as_root and [log] file (issue 12) + [listen] s2s_tls, c2s_tls, [dns] trust_anchor
	 * (issue 15) + [users] resumption_window, resumption_queue, ping_interval,
	 * ping_timeout (issue 16, stream management) + [archive] enabled, retention,
	 * max_per_user, default (issue 16) + [users] software_version_os (issue 16,
	 * version) + [pep] item_bytes, max_items, max_nodes (issue 16) + [store] backend,
	 * dsn, pool_size, [cluster] node, redis, heartbeat, node_timeout (issue 17) */
	assert_int_equal(nkeys, 66);
	conf_free(&c);
	free(printed);
	free(man);
	free(man_path);
}

#define T(f) cmocka_unit_test_setup_teardown(f, setup, teardown)

/* ---- reload ---- */

struct changes {
	char text[1024];
	unsigned live, restart;
};

static void record_change(void *ud, const char *section, const char *name, const char *running,
			  const char *read, int live)
{
	struct changes *ch = ud;
	size_t n = strlen(ch->text);
	snprintf(ch->text + n, sizeof(ch->text) - n, "[%s] %s %s->%s %s\n", section, name, running,
		 read, live ? "live" : "restart");
	if (live)
		ch->live++;
	else
		ch->restart++;
}

static void test_reconcile_keeps_restart_keys(void **state)
{
	const char *dir = *state;
	struct fg_conf *run = NULL, *next = NULL;
	char *errs = NULL;
	struct changes ch = {.text = ""};

	assert_int_equal(
		load_text(dir,
			  "[server]\ndomains = contoso.test\n[listen]\ns2s = 127.0.0.1:5269\n"
			  "control = a.sock\n[log]\nlevel = info\n",
			  &run, &errs),
		FG_OK);
	free(errs);
	assert_int_equal(load_text(dir,
				   "[server]\ndomains = contoso.test, fabrikam.test\n[listen]\n"
				   "s2s = 127.0.0.1:5270\ncontrol = a.sock\n[log]\nlevel = debug\n"
				   "[limits]\noutput_queue = 2MiB\n",
				   &next, &errs),
			 FG_OK);
	free(errs);
	assert_int_equal(conf_reconcile(run, next, record_change, &ch), 4);
	assert_int_equal(ch.live, 2);
	assert_int_equal(ch.restart, 2);
	assert_non_null(strstr(ch.text, "[server] domains contoso.test->contoso.test, "
					"fabrikam.test restart"));
	assert_non_null(strstr(ch.text, "[listen] s2s 127.0.0.1:5269->127.0.0.1:5270 restart"));
	assert_non_null(strstr(ch.text, "[log] level info->debug live"));
	assert_non_null(strstr(ch.text, "[limits] output_queue 1048576->2097152 live"));
	/* next describes what runs: the restart keys hold the running values,
	 * the live ones the new values; run got the others (each frees its
	 * own). */
	assert_list(&next->domains, 1, "contoso.test");
	assert_list(&next->listen_s2s, 1, "127.0.0.1:5269");
	assert_int_equal(next->log_level, LOG_DEBUG);
	assert_int_equal(next->output_queue, 2 * 1024 * 1024);
	assert_list(&run->listen_s2s, 1, "127.0.0.1:5270");
	/* Reconciled once, they agree on everything that runs. */
	memset(&ch, 0, sizeof(ch));
	assert_int_equal(conf_reconcile(next, next, record_change, &ch), 0);
	conf_free(&run);
	conf_free(&next);
}

static void test_peek_control_despite_errors(void **state)
{
	const char *dir = *state;
	char sock[256];
	char *path = write_file(dir, "fedgate.conf",
				"[server]\ndomains = contoso.test\n[limits]\noutput_queue = lots\n"
				"[listen]\ncontrol = run/x.sock\nbogus = 1\n");
	char *want = path_in(dir, "run/x.sock");

	assert_int_equal(conf_peek_control(path, sock, sizeof(sock)), FG_OK);
	assert_string_equal(sock, want);
	free(want);
	free(path);
	path = write_file(dir, "fedgate.conf", "[server]\ndomains = contoso.test\n");
	want = path_in(dir, "var/fedgate.sock");
	assert_int_equal(conf_peek_control(path, sock, sizeof(sock)), FG_OK);
	assert_string_equal(sock, want);
	free(want);
	free(path);
	path = path_in(dir, "absent.conf");
	assert_int_equal(conf_peek_control(path, sock, sizeof(sock)), FG_NOTFOUND);
	free(path);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		T(test_minimal_gets_defaults),
		T(test_reconcile_keeps_restart_keys),
		T(test_peek_control_despite_errors),
		T(test_every_key_with_units),
		T(test_spec_example_inline_comments),
		T(test_comment_rules),
		T(test_relative_paths),
		T(test_unknown_key_did_you_mean),
		T(test_unknown_section),
		T(test_duplicate_key),
		T(test_ranges),
		T(test_range_message_names_units),
		T(test_bad_numbers),
		T(test_bad_addresses),
		T(test_bad_domains),
		T(test_missing_domains),
		T(test_empty_values),
		T(test_syntax_errors),
		T(test_continuation_lines),
		T(test_long_lines),
		T(test_many_errors_all_reported),
		T(test_missing_file),
		T(test_print_round_trip),
		T(test_default_path),
		T(test_init_writes_working_config),
		T(test_init_refuses_before_writing),
		T(test_init_usage_and_bad_domain),
		T(test_init_config_elsewhere),
		T(test_check_reads_files),
		T(test_man_page_covers_every_key),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}

/* libFuzzer target for the configuration file (conf_load): any bytes give
 * a config or errors, never a crash or a leak. What loads is printed by
 * conf_print (the `fedgate check` output), and that text must load again
 * and print the same: the effective configuration is a fixed point, so
 * what an admin copies from `check` means what the daemon ran with. A
 * refusal names the file (and a line) on every line of its report.
 * `fedgate reload` reads [listen] control with conf_peek_control from any
 * file: it must agree with conf_load whenever the file loads, and a reload
 * of the printed text changes no key (conf_reconcile) but the password
 * in [store] dsn, which is printed as ***. */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "fuzz.h"
#include "conf.h"
#include "fg.h"

static char g_path[128];

static char g_dir[64];

static void cleanup(void)
{
	unlink(g_path);
	rmdir(g_dir);
}

/* The file lives in a folder of its own in memory (relative paths resolve
 * against it), named with the same length in every process: how long a
 * printed path is depends on it, so a finding must replay elsewhere. */
static void setup(void)
{
	if (g_path[0])
		return;
	char *dir = g_dir;

	snprintf(dir, sizeof(g_dir), "/dev/shm/fg-fuzz-conf.%010ld", (long)getpid());
	if (access("/dev/shm", W_OK) != 0)
		snprintf(dir, sizeof(g_dir), "/tmp/fg-fuzz-conf.%010ld", (long)getpid());
	CHECK(mkdir(dir, 0700) == 0 || access(dir, W_OK) == 0);
	snprintf(g_path, sizeof(g_path), "%s/fedgate.conf", dir);
	atexit(cleanup);
}

static void put(const void *p, size_t n)
{
	FILE *f = fopen(g_path, "w");

	CHECK(f != NULL);
	CHECK(n == 0 || fwrite(p, 1, n, f) == n);
	CHECK(fclose(f) == 0);
}

static char *printed(const struct fg_conf *c, size_t *n)
{
	char *s = NULL;
	FILE *f = open_memstream(&s, n);

	CHECK(f != NULL);
	conf_print(c, f);
	CHECK(fclose(f) == 0);
	return s;
}

/* Every line of the report starts with "PATH:". */
static void check_report(const char *r, size_t n)
{
	size_t pl = strlen(g_path);

	CHECK(n > 0 && r[n - 1] == '\n');
	for (const char *l = r; l < r + n;) {
		const char *e = memchr(l, '\n', (size_t)(r + n - l));

		CHECK(e != NULL);
		CHECK((size_t)(e - l) > pl && strncmp(l, g_path, pl) == 0 && l[pl] == ':');
		l = e + 1;
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct fg_conf *c = NULL, *c2 = NULL;
	char *errs = NULL;
	size_t elen = 0;

	setup();
	put(data, size);
	FILE *ef = open_memstream(&errs, &elen);

	CHECK(ef != NULL);
	int rc = conf_load(g_path, &c, ef);
	char sock[256];
	int prc = conf_peek_control(g_path, sock, sizeof(sock));

	CHECK(fclose(ef) == 0);
	CHECK(prc == FG_OK || prc == FG_ERR);
	if (rc == FG_OK)
		CHECK(prc == FG_OK && strcmp(sock, c->listen_control) == 0);
	if (rc != FG_OK) {
		CHECK(rc == FG_ERR && c == NULL);
		check_report(errs, elen);
		free(errs);
		return 0;
	}
	CHECK(c != NULL && elen == 0);
	CHECK(c->domains.n > 0);
	for (size_t i = 0; i < c->domains.n; i++)
		CHECK(conf_is_local_domain(c, c->domains.v[i]));

	size_t n1, n2;
	char *p1 = printed(c, &n1);

	put(p1, n1);
	free(errs);
	ef = open_memstream(&errs, &elen);
	CHECK(ef != NULL);
	rc = conf_load(g_path, &c2, ef);
	CHECK(fclose(ef) == 0);
	CHECK(rc == FG_OK);
	char *p2 = printed(c2, &n2);

	CHECK(n1 == n2 && memcmp(p1, p2, n1) == 0);
	/* The one value the text does not carry: a password in [store] dsn
	 * is printed as ***. */
	if (strcmp(c->store_dsn, c2->store_dsn) != 0) {
		CHECK(strstr(c2->store_dsn, "***") != NULL);
		CHECK(strstr(p1, "***") != NULL);
		free(c2->store_dsn);
		c2->store_dsn = strdup(c->store_dsn);
		CHECK(c2->store_dsn != NULL);
	}
	CHECK(conf_reconcile(c, c2, NULL, NULL) == 0);
	free(p1);
	free(p2);
	free(errs);
	conf_free(&c);
	conf_free(&c2);
	CHECK(c == NULL);
	return 0;
}

/* Crash safety of the store: a child process commits two large partner
 * sets in turn, forever, and is killed with SIGKILL at a random moment;
 * the store it leaves behind must hold exactly one of the two sets, every
 * record intact, and pass SQLite's integrity check. With FG_TEST_PG (run
 * as unit.test_store_crash.pg) the same on PostgreSQL, where the server
 * rolls back what the killed client left open, and no additional domain
 * may be left without its partner. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "fg.h"
#include "log.h"
#include "policy.h"
#include "store_sqlite.h"
#include "store_testdir.h"

#include <dirent.h>
#include <signal.h>
#include <sqlite3.h>
#include <stdatomic.h>
#include <stdio.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define NPARTNERS 500
#define ROUNDS	  30

struct pset {
	const char *name;
	struct partner *p[NPARTNERS];
};

static struct pset set_a = {.name = "A"}, set_b = {.name = "B"};

/* The first half of the primaries is in both sets with other settings and
 * other additional domains, so a mix of the two would show as a record
 * equal to neither; the second half is each set's own. */
static void build(struct pset *s, unsigned salt)
{
	for (unsigned i = 0; i < NPARTNERS; i++) {
		char d[64], x[96];
		unsigned v = i + salt;
		struct partner *p;

		if (i < NPARTNERS / 2)
			snprintf(d, sizeof(d), "p%03u.test", i);
		else
			snprintf(d, sizeof(d), "%s%03u.test", s->name[0] == 'A' ? "a" : "b", i);
		p = partner_new(d);
		assert_non_null(p);
		free(p->description);
		snprintf(x, sizeof(x), "set %s partner %u: contact ops@%s", s->name, i, d);
		p->description = strdup(x);
		assert_non_null(p->description);
		p->type = (enum partner_type)(v % 3);
		p->tls = (enum negotiation)(v % 2);
		p->sasl = (enum negotiation)((v / 2) % 3);
		p->dialback = v % 2 == 1;
		p->keepalive = v % 3 != 0;
		p->connection_limit = v % 50;
		if (v % 4 == 1) {
			snprintf(x, sizeof(x), "gw.%s:%u", d, 5269 + salt);
			p->proxy_fqdn = strdup(x);
			assert_non_null(p->proxy_fqdn);
		}
		for (unsigned k = 0; k < (v % 4); k++) {
			snprintf(x, sizeof(x), "%s%u.%s", s->name[0] == 'A' ? "corp" : "it", k, d);
			assert_int_equal(partner_add_domain(p, x), FG_OK);
		}
		s->p[i] = p;
	}
}

static void release(struct pset *s)
{
	for (unsigned i = 0; i < NPARTNERS; i++)
		partner_free(&s->p[i]);
}

static int commit_set(struct store_db *db, const struct pset *s, char *err, size_t errlen)
{
	struct store_op op = {
		.kind = STORE_REPLACE_PARTNERS,
		.partners = (const struct partner *const *)s->p,
		.npartners = NPARTNERS,
	};

	return store_db_commit(db, &op, 1, NULL, 0, err, errlen);
}

static bool matches(const struct policy *pol, const struct pset *s)
{
	if (policy_count(pol) != NPARTNERS)
		return false;
	for (unsigned i = 0; i < NPARTNERS; i++) {
		const struct partner *got = policy_get(pol, s->p[i]->domain);

		if (got == NULL || !partner_equal(got, s->p[i]))
			return false;
	}
	return true;
}

/* Shared between the test and its writers (MAP_SHARED). */
struct shared {
	atomic_ulong commits; /* completed by all writers */
	atomic_int ready;     /* the current writer has opened the store */
};

/* The database of this run on PostgreSQL ("" on SQLite). */
static char pg_dsn[400];

static int open_store(const char *path, struct store_db **db, char *err, size_t errlen)
{
	struct store_target t = {.backend = STORE_SQLITE, .path = path, .node = "crash"};

	if (pg_dsn[0] != '\0') {
		t.backend = STORE_POSTGRESQL;
		t.dsn = pg_dsn;
	}
	return store_open(&t, db, err, errlen);
}

/* Never returns: commits A, B, A, ... until killed. */
static void writer(const char *path, struct shared *sh)
{
	struct store_db *db = NULL;
	char err[512];

	if (open_store(path, &db, err, sizeof(err)) != FG_OK) {
		fprintf(stderr, "child: %s\n", err);
		_exit(2);
	}
	atomic_store(&sh->ready, 1);
	for (unsigned long n = 0;; n++) {
		if (commit_set(db, n % 2 == 0 ? &set_a : &set_b, err, sizeof(err)) != FG_OK) {
			fprintf(stderr, "child: %s\n", err);
			_exit(3);
		}
		atomic_fetch_add(&sh->commits, 1);
	}
}

static void integrity_ok(const char *path)
{
	sqlite3 *h = NULL;
	sqlite3_stmt *s = NULL;
	char got[256] = "";

	if (pg_dsn[0] != '\0') {
		PGconn *c = PQconnectdb(pg_dsn);
		PGresult *r = PQexec(c, "SELECT count(*) FROM partner_domains d WHERE NOT EXISTS"
					" (SELECT 1 FROM partners p WHERE p.domain = d.partner)");

		if (PQresultStatus(r) != PGRES_TUPLES_OK)
			fail_msg("orphan check: %s", PQerrorMessage(c));
		assert_string_equal(PQgetvalue(r, 0, 0), "0");
		PQclear(r);
		PQfinish(c);
		return;
	}
	assert_int_equal(sqlite3_open_v2(path, &h, SQLITE_OPEN_READWRITE, NULL), SQLITE_OK);
	assert_int_equal(sqlite3_prepare_v2(h, "PRAGMA integrity_check", -1, &s, NULL), SQLITE_OK);
	if (sqlite3_step(s) == SQLITE_ROW && sqlite3_column_text(s, 0) != NULL)
		snprintf(got, sizeof(got), "%s", (const char *)sqlite3_column_text(s, 0));
	sqlite3_finalize(s);
	assert_int_equal(sqlite3_prepare_v2(h, "PRAGMA foreign_key_check", -1, &s, NULL),
			 SQLITE_OK);
	assert_int_equal(sqlite3_step(s), SQLITE_DONE); /* no orphan rows */
	sqlite3_finalize(s);
	sqlite3_close(h);
	if (strcmp(got, "ok") != 0)
		fail_msg("integrity_check: %s", got);
}

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void remove_dir(const char *dir)
{
	DIR *d = opendir(dir);
	struct dirent *e;

	while (d != NULL && (e = readdir(d)) != NULL) {
		char p[400];

		if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
			continue;
		snprintf(p, sizeof(p), "%s/%s", dir, e->d_name);
		unlink(p);
	}
	if (d != NULL)
		closedir(d);
	rmdir(dir);
}

static void test_kill_during_commits(void **state)
{
	char dir[] = "/tmp/fg-test-store-crash.XXXXXX", path[128], err[512];
	unsigned seed = (unsigned)time(NULL) ^ (unsigned)getpid();
	unsigned found_a = 0, found_b = 0;
	struct store_db *db = NULL;
	struct shared *sh;
	double t0 = now_s();

	FG_UNUSED(state);
	sh = mmap(NULL, sizeof(*sh), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	assert_true(sh != MAP_FAILED);
	atomic_init(&sh->commits, 0);
	atomic_init(&sh->ready, 0);
	assert_non_null(mkdtemp(dir));
	snprintf(path, sizeof(path), "%s/fedgate.db", dir);
	if (test_pg()) {
		char sql[96];

		snprintf(sql, sizeof(sql), "CREATE DATABASE fgt_crash_%d", (int)getpid());
		pg_admin(sql);
		snprintf(pg_dsn, sizeof(pg_dsn), "%s dbname=fgt_crash_%d", getenv("FG_TEST_PG"),
			 (int)getpid());
	}
	build(&set_a, 0);
	build(&set_b, 1);

	/* Start from B: a child killed before its first commit leaves B. How
	 * long a commit takes here (fsync, ASan, a busy disk) sets the kill
	 * window: up to four commits long, so kills land before, during and
	 * between the writer's first commits, and B can be seen again. */
	assert_int_equal(open_store(path, &db, err, sizeof(err)), FG_OK);
	assert_int_equal(commit_set(db, &set_a, err, sizeof(err)), FG_OK);
	double c0 = now_s();
	assert_int_equal(commit_set(db, &set_b, err, sizeof(err)), FG_OK);
	unsigned commit_ms = (unsigned)((now_s() - c0) * 1000.0) + 1;
	unsigned window_ms = 4 * commit_ms > 146 ? 4 * commit_ms : 146;
	store_db_close(&db);

	printf("seed %u, one commit %u ms, kills within %u ms\n", seed, commit_ms, window_ms);
	for (int round = 0; round < ROUNDS; round++) {
		unsigned ms = 5 + (unsigned)rand_r(&seed) % window_ms;
		struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
		struct policy *pol = NULL;
		int status = 0;
		bool ready;
		pid_t pid;

		/* No SQLite handle or PostgreSQL connection is open across
		 * fork(). */
		fflush(NULL);
		pid = fork();
		assert_true(pid >= 0);
		if (pid == 0)
			writer(path, sh);
		/* The random delay counts from when the writer has the store open:
		 * fork() and start-up take longer than a commit under ASan. */
		for (int i = 0; i < 5000 && !atomic_load(&sh->ready); i++)
			nanosleep(&(struct timespec){0, 1000000L}, NULL);
		ready = atomic_exchange(&sh->ready, 0);
		if (ready)
			nanosleep(&ts, NULL);
		/* Killed before any check can fail, so no writer outlives the
		 * test. */
		assert_int_equal(kill(pid, SIGKILL), 0);
		assert_int_equal(waitpid(pid, &status, 0), pid);
		if (!ready)
			fail_msg("round %d: the writer did not open the store", round);
		if (!WIFSIGNALED(status) || WTERMSIG(status) != SIGKILL)
			fail_msg("round %d: the writer stopped by itself (status %d)", round,
				 status);

		if (open_store(path, &db, err, sizeof(err)) != FG_OK)
			fail_msg("round %d: open: %s", round, err);
		if (store_db_load(db, &pol, NULL, err, sizeof(err)) != FG_OK)
			fail_msg("round %d: load: %s", round, err);
		if (matches(pol, &set_a))
			found_a++;
		else if (matches(pol, &set_b))
			found_b++;
		else
			fail_msg("round %d (killed after %u ms): %zu partners, neither A nor B",
				 round, ms, policy_count(pol));
		policy_free(&pol);
		store_db_close(&db);
		integrity_ok(path);
	}
	printf("%d kills: A found %u times, B found %u times, %lu commits completed, %.1f s\n",
	       ROUNDS, found_a, found_b, (unsigned long)atomic_load(&sh->commits), now_s() - t0);
	/* Both outcomes seen, or the kills never landed between commits. */
	assert_true(found_a > 0);
	assert_true(found_b > 0);

	release(&set_a);
	release(&set_b);
	munmap(sh, sizeof(*sh));
	remove_dir(dir);
	if (pg_dsn[0] != '\0') {
		char sql[96];

		snprintf(sql, sizeof(sql), "DROP DATABASE fgt_crash_%d WITH (FORCE)",
			 (int)getpid());
		pg_admin(sql);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_kill_during_commits),
	};

	log_set_level(LOG_WARNING);
	return cmocka_run_group_tests(tests, NULL, NULL);
}

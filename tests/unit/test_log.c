/* log: the journal's priority prefix, the log file and its reopen. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "fg.h"
#include "log.h"

static char dir[] = "/tmp/fg-test-log-XXXXXX";

static char *slurp(const char *path)
{
	FILE *f = fopen(path, "r");
	char *buf = calloc(1, 65536);
	assert_non_null(f);
	assert_non_null(buf);
	size_t n = fread(buf, 1, 65535, f);
	buf[n] = '\0';
	fclose(f);
	return buf;
}

static void set_journal_stream(int fd)
{
	struct stat st;
	char v[64];
	assert_int_equal(fstat(fd, &st), 0);
	snprintf(v, sizeof(v), "%llu:%llu", (unsigned long long)st.st_dev,
		 (unsigned long long)st.st_ino);
	setenv("JOURNAL_STREAM", v, 1);
}

/* Runs body with fd 2 on a fresh file; returns what reached it. */
static char *capture_stderr(const char *name, int journal_is_it, void (*body)(void))
{
	char path[256];
	snprintf(path, sizeof(path), "%s/%s", dir, name);
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
	int saved = dup(2);
	assert_true(fd >= 0 && saved >= 0);
	if (journal_is_it)
		set_journal_stream(fd);
	assert_int_equal(dup2(fd, 2), 2);
	close(fd);
	log_detect_journal();
	body();
	assert_int_equal(dup2(saved, 2), 2);
	close(saved);
	unsetenv("JOURNAL_STREAM");
	log_detect_journal();
	return slurp(path);
}

static void four_levels(void)
{
	log_set_level(LOG_DEBUG);
	log_error("t", "an error %d", 1);
	log_warn("t", "a warning");
	log_info("s2s-in #1", "some info");
	log_debug("t", "a detail");
	log_set_level(LOG_INFO);
}

static void test_journal_prefix_without_timestamp(void **state)
{
	(void)state;
	char *got = capture_stderr("journal", 1, four_levels);
	assert_string_equal(got, "<3>error t: an error 1\n"
				 "<4>warning t: a warning\n"
				 "<6>info s2s-in #1: some info\n"
				 "<7>debug t: a detail\n");
	free(got);
}

static void test_no_prefix_without_journal_stream(void **state)
{
	(void)state;
	unsetenv("JOURNAL_STREAM");
	char *got = capture_stderr("plain", 0, four_levels);
	/* "2026-12-06T05:27:55.563Z error t: an error 1" */
	char *l = got;
	const char *want[] = {" error t: an error 1\n", " warning t: a warning\n",
			      " info s2s-in #1: some info\n", " debug t: a detail\n"};
	for (size_t i = 0; i < FG_ARRAY_LEN(want); i++) {
		assert_true(l[0] == '2' && l[4] == '-' && l[10] == 'T' && l[23] == 'Z');
		assert_memory_equal(l + 24, want[i], strlen(want[i]));
		l += 24 + strlen(want[i]);
	}
	assert_int_equal(*l, '\0');
	free(got);
}

static void one_line(void)
{
	log_warn("t", "where");
}

/* JOURNAL_STREAM inherited by a process whose stderr went elsewhere (a
 * pipe to a file, `2>log`): that stderr is not the journal. */
static void test_journal_stream_of_another_file(void **state)
{
	(void)state;
	char path[256];
	snprintf(path, sizeof(path), "%s/other", dir);
	int other = open(path, O_WRONLY | O_CREAT, 0600);
	assert_true(other >= 0);
	set_journal_stream(other);
	close(other);
	char *got = capture_stderr("elsewhere", 0, one_line);
	assert_true(got[0] == '2' && strstr(got, "Z warning t: where\n") != NULL);
	free(got);
	setenv("JOURNAL_STREAM", "not a pair", 1);
	got = capture_stderr("garbage", 0, one_line);
	assert_true(got[0] == '2');
	free(got);
}

/* logrotate: the file is moved, lines go on to it until the reopen, after
 * which they go to a new file at the configured path. */
static void test_reopen_after_move(void **state)
{
	(void)state;
	char path[256], moved[300], err[300];
	struct stat st;
	snprintf(path, sizeof(path), "%s/fedgate.log", dir);
	snprintf(moved, sizeof(moved), "%s.1", path);
	assert_int_equal(log_reopen(path, err, sizeof(err)), FG_OK);
	assert_int_equal(stat(path, &st), 0);
	assert_int_equal(st.st_mode & 0777, 0640 & ~(mode_t)022);
	log_info("t", "one");
	assert_int_equal(rename(path, moved), 0);
	log_info("t", "two");
	assert_int_equal(log_reopen_current(err, sizeof(err)), FG_OK);
	log_info("t", "three");

	/* A reopen that fails keeps the file in use. */
	assert_int_equal(log_reopen("/nonexistent-fg/x.log", err, sizeof(err)), FG_ERR);
	assert_non_null(strstr(err, "cannot open the log file /nonexistent-fg/x.log"));
	log_info("t", "four");

	char *old = slurp(moved), *cur = slurp(path);
	assert_non_null(strstr(old, "info t: one\n"));
	assert_non_null(strstr(old, "info t: two\n"));
	assert_null(strstr(old, "three"));
	assert_null(strstr(cur, "one"));
	assert_non_null(strstr(cur, "info t: three\n"));
	assert_non_null(strstr(cur, "info t: four\n"));
	free(old);
	free(cur);

	/* Back to standard error. */
	assert_int_equal(log_reopen(NULL, err, sizeof(err)), FG_OK);
	assert_int_equal(log_reopen_current(err, sizeof(err)), FG_OK);
	char *got = capture_stderr("back", 0, one_line);
	assert_non_null(strstr(got, "warning t: where\n"));
	free(got);
	cur = slurp(path);
	assert_null(strstr(cur, "where"));
	free(cur);

	/* And to a file again, after a while on stderr. */
	assert_int_equal(log_reopen(moved, err, sizeof(err)), FG_OK);
	log_info("t", "five");
	old = slurp(moved);
	assert_non_null(strstr(old, "info t: five\n"));
	free(old);
	assert_int_equal(log_reopen(NULL, err, sizeof(err)), FG_OK);
}

static int setup(void **state)
{
	(void)state;
	umask(022);
	return mkdtemp(dir) ? 0 : -1;
}

static int teardown(void **state)
{
	(void)state;
	char cmd[300];
	snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
	return system(cmd) == 0 ? 0 : -1;
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_journal_prefix_without_timestamp),
		cmocka_unit_test(test_no_prefix_without_journal_stream),
		cmocka_unit_test(test_journal_stream_of_another_file),
		cmocka_unit_test(test_reopen_after_move),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}

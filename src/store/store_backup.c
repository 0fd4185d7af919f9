/* Backup and restore of the SQLite store.
 *
 * Backup reads the live store through its own connection inside one read
 * transaction: under WAL the daemon's writer never waits for it, and the
 * snapshot stays put however long the copy takes, so sqlite3_backup_step()
 * never has to start over (it restarts when the source changes under a
 * connection that is not in a transaction). Both directions write a
 * temporary file next to the target and rename it into place, so a crash
 * leaves the old file or the new one, never half of one. */
#include "store_backup.h"

#include "fg.h"
#include "store_sqlite.h"

#include <sqlite3.h>

#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

/* Pages per step and the pause between steps: a large store is copied
 * without monopolising the disk the daemon writes to. */
#define STEP_PAGES    64
#define STEP_SLEEP_MS 2
/* A busy or locked source (a checkpoint, a schema change) is waited for
 * this many times RETRY_MS. */
#define BUSY_RETRIES 200
#define RETRY_MS     50

static void set_err(char *err, size_t errlen, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static void set_err(char *err, size_t errlen, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(err, errlen, fmt, ap);
	va_end(ap);
}

static int open_db(const char *path, int flags, sqlite3 **db, char *err, size_t errlen)
{
	int src = sqlite3_open_v2(path, db, flags, NULL);
	if (src != SQLITE_OK) {
		set_err(err, errlen, "cannot open %s: %s", path,
			*db ? sqlite3_errmsg(*db) : sqlite3_errstr(src));
		sqlite3_close(*db);
		*db = NULL;
		return FG_ERR;
	}
	sqlite3_extended_result_codes(*db, 1);
	return FG_OK;
}

static int exec(sqlite3 *db, const char *sql, const char *path, const char *what, char *err,
		size_t errlen)
{
	int src = sqlite3_exec(db, sql, NULL, NULL, NULL);
	if (src != SQLITE_OK) {
		set_err(err, errlen, "%s: cannot %s: %s", path, what, sqlite3_errmsg(db));
		return FG_ERR;
	}
	return FG_OK;
}

/* A query whose one result is an integer; sql is a constant. */
static int query_int(sqlite3 *db, const char *sql, long long *out, int *src_out)
{
	sqlite3_stmt *s = NULL;
	int src = sqlite3_prepare_v2(db, sql, -1, &s, NULL);
	if (src == SQLITE_OK)
		src = sqlite3_step(s);
	if (src == SQLITE_ROW) {
		*out = sqlite3_column_int64(s, 0);
		src = SQLITE_OK;
	}
	sqlite3_finalize(s);
	if (src_out)
		*src_out = src;
	return src == SQLITE_OK ? FG_OK : FG_ERR;
}

static int has_table(sqlite3 *db, const char *name)
{
	sqlite3_stmt *s = NULL;
	int found = 0;
	if (sqlite3_prepare_v2(db, "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?",
			       -1, &s, NULL) == SQLITE_OK &&
	    sqlite3_bind_text(s, 1, name, -1, SQLITE_STATIC) == SQLITE_OK)
		found = sqlite3_step(s) == SQLITE_ROW;
	sqlite3_finalize(s);
	return found;
}

/* The summary of a store, read in the caller's transaction (if any). A
 * database without the store's tables is no fedgate store; one of a newer
 * schema is refused when it is to be used (a restore), not when it is only
 * copied (a backup of what a newer fedgate wrote is still a backup). */
static int read_info(sqlite3 *db, const char *path, bool refuse_newer,
		     struct store_backup_info *info, char *err, size_t errlen)
{
	long long v = 0;
	int src;

	memset(info, 0, sizeof(*info));
	if (query_int(db, "SELECT count(*) FROM sqlite_master", &v, &src) != FG_OK) {
		if ((src & 0xff) == SQLITE_NOTADB)
			set_err(err, errlen, "%s is not an SQLite database, so not a fedgate store",
				path);
		else
			set_err(err, errlen, "cannot read %s: %s", path, sqlite3_errmsg(db));
		return FG_ERR;
	}
	if (query_int(db, "PRAGMA user_version", &v, NULL) != FG_OK) {
		set_err(err, errlen, "cannot read %s: %s", path, sqlite3_errmsg(db));
		return FG_ERR;
	}
	info->schema = (int)v;
	if (v <= 0 || !has_table(db, "partners") || !has_table(db, "gateway")) {
		set_err(err, errlen,
			"%s is an SQLite database but not a fedgate store (schema version %lld, "
			"no partners and gateway tables)",
			path, v);
		return FG_ERR;
	}
	if (refuse_newer && v > store_db_schema_latest()) {
		set_err(err, errlen,
			"%s is a store of schema version %lld, newer than this fedgate %s knows "
			"(schema version %d); use a fedgate that knows version %lld",
			path, v, FG_VERSION, store_db_schema_latest(), v);
		return FG_ERR;
	}
	if (query_int(db, "SELECT count(*) FROM partners", &info->partners, NULL) != FG_OK ||
	    (has_table(db, "users") &&
	     query_int(db, "SELECT count(*) FROM users", &info->users, NULL) != FG_OK) ||
	    (has_table(db, "admins") &&
	     query_int(db, "SELECT count(*) FROM admins", &info->admins, NULL) != FG_OK) ||
	    query_int(db, "PRAGMA page_count", &v, NULL) != FG_OK) {
		set_err(err, errlen, "cannot read %s: %s", path, sqlite3_errmsg(db));
		return FG_ERR;
	}
	info->pages = (int)v;
	return FG_OK;
}

/* Copies every page of from into to; retries while the source is busy. */
static int copy_pages(sqlite3 *to, sqlite3 *from, int step_pages, const char *what, int *pages,
		      char *err, size_t errlen)
{
	sqlite3_backup *b = sqlite3_backup_init(to, "main", from, "main");
	int src, retries = 0;

	if (b == NULL) {
		set_err(err, errlen, "cannot start copying %s: %s", what, sqlite3_errmsg(to));
		return FG_ERR;
	}
	for (;;) {
		src = sqlite3_backup_step(b, step_pages);
		if (src == SQLITE_DONE)
			break;
		if (src == SQLITE_OK) {
			retries = 0;
			sqlite3_sleep(STEP_SLEEP_MS);
			continue;
		}
		if (((src & 0xff) == SQLITE_BUSY || (src & 0xff) == SQLITE_LOCKED) &&
		    retries++ < BUSY_RETRIES) {
			sqlite3_sleep(RETRY_MS);
			continue;
		}
		break;
	}
	*pages = sqlite3_backup_pagecount(b);
	sqlite3_backup_finish(b);
	if (src != SQLITE_DONE) {
		set_err(err, errlen, "copying %s failed: %s%s", what, sqlite3_errstr(src),
			(src & 0xff) == SQLITE_BUSY ? " (the store stayed busy; try again)" : "");
		return FG_ERR;
	}
	return FG_OK;
}

/* Creates path exclusively, 0600 (the store holds the dialback secret and
 * password hashes), so SQLite then opens a file that is ours. */
static int create_new(const char *path, const char *hint, char *err, size_t errlen)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0600);
	if (fd < 0) {
		if (errno == EEXIST)
			set_err(err, errlen,
				"%s already exists%s; remove it or choose another name", path,
				hint);
		else
			set_err(err, errlen, "cannot create %s: %s", path, strerror(errno));
		return FG_ERR;
	}
	close(fd);
	return FG_OK;
}

static int fsync_path(const char *path, bool dir)
{
	int fd = open(path, (dir ? O_RDONLY | O_DIRECTORY : O_RDWR) | O_CLOEXEC);
	int rc;
	if (fd < 0)
		return -1;
	rc = fsync(fd);
	close(fd);
	return rc;
}

static void fsync_folder(const char *path)
{
	char *copy = strdup(path);
	if (copy) {
		(void)fsync_path(dirname(copy), true);
		free(copy);
	}
}

static void remove_tmp(const char *tmp)
{
	char j[4300];
	unlink(tmp);
	snprintf(j, sizeof(j), "%s-journal", tmp);
	unlink(j);
}

/* Makes a finished copy a single self-contained file (no WAL beside it),
 * closes it and flushes it to disk. */
static int seal(sqlite3 **db, const char *tmp, char *err, size_t errlen)
{
	int rc = exec(*db, "PRAGMA journal_mode = DELETE", tmp, "finish the copy", err, errlen);
	if (sqlite3_close(*db) != SQLITE_OK && rc == FG_OK) {
		set_err(err, errlen, "%s: cannot close the copy: %s", tmp, sqlite3_errmsg(*db));
		rc = FG_ERR;
	}
	*db = NULL;
	if (rc == FG_OK && fsync_path(tmp, false) != 0) {
		set_err(err, errlen, "cannot flush %s to disk: %s", tmp, strerror(errno));
		rc = FG_ERR;
	}
	return rc;
}

int store_backup(const char *store_path, const char *file, struct store_backup_info *info,
		 char *err, size_t errlen)
{
	char tmp[4200];
	struct stat st;
	sqlite3 *from = NULL, *to = NULL;
	int rc, pages = 0;

	if (lstat(file, &st) == 0) {
		set_err(err, errlen,
			"%s already exists; fedgate backup never overwrites a file: choose a new "
			"name or remove it",
			file);
		return FG_ERR;
	}
	if (stat(store_path, &st) != 0) {
		set_err(err, errlen, "there is no store at %s ([store] path): %s", store_path,
			strerror(errno));
		return FG_ERR;
	}
	if (snprintf(tmp, sizeof(tmp), "%s.tmp", file) >= (int)sizeof(tmp)) {
		set_err(err, errlen, "the file name %s is too long", file);
		return FG_ERR;
	}
	rc = open_db(store_path, SQLITE_OPEN_READWRITE, &from, err, errlen);
	if (rc != FG_OK)
		return rc;
	sqlite3_busy_timeout(from, 5000);
	/* The snapshot: from here the copy and the counts see one state. */
	rc = exec(from, "BEGIN", store_path, "start reading", err, errlen);
	if (rc == FG_OK)
		rc = read_info(from, store_path, false, info, err, errlen);
	if (rc != FG_OK)
		goto out;
	rc = create_new(tmp, " (left by a backup that was interrupted?)", err, errlen);
	if (rc != FG_OK)
		goto out;
	rc = open_db(tmp, SQLITE_OPEN_READWRITE, &to, err, errlen);
	if (rc == FG_OK)
		rc = copy_pages(to, from, STEP_PAGES, store_path, &pages, err, errlen);
	if (rc == FG_OK)
		rc = seal(&to, tmp, err, errlen);
	if (rc == FG_OK && renameat2(AT_FDCWD, tmp, AT_FDCWD, file, RENAME_NOREPLACE) != 0) {
		set_err(err, errlen, "cannot rename %s to %s: %s", tmp, file, strerror(errno));
		rc = FG_ERR;
	}
	if (rc == FG_OK) {
		fsync_folder(file);
		info->pages = pages;
	} else {
		sqlite3_close(to);
		to = NULL;
		remove_tmp(tmp);
	}
out:
	sqlite3_exec(from, "COMMIT", NULL, NULL, NULL);
	sqlite3_close(from);
	return rc;
}

int store_backup_check(const char *file, struct store_backup_info *info, char *err, size_t errlen)
{
	sqlite3 *db = NULL;
	sqlite3_stmt *s = NULL;
	struct stat st;
	int rc;

	if (stat(file, &st) != 0) {
		set_err(err, errlen, "cannot read %s: %s", file, strerror(errno));
		return FG_ERR;
	}
	if (!S_ISREG(st.st_mode)) {
		set_err(err, errlen, "%s is not a file", file);
		return FG_ERR;
	}
	rc = open_db(file, SQLITE_OPEN_READONLY, &db, err, errlen);
	if (rc != FG_OK)
		return rc;
	rc = read_info(db, file, true, info, err, errlen);
	if (rc == FG_OK) {
		/* The first line says "ok" or the first of the problems. */
		int src = sqlite3_prepare_v2(db, "PRAGMA integrity_check", -1, &s, NULL);
		if (src == SQLITE_OK)
			src = sqlite3_step(s);
		const char *first = src == SQLITE_ROW ? (const char *)sqlite3_column_text(s, 0)
						      : sqlite3_errmsg(db);
		if (src != SQLITE_ROW || first == NULL || strcmp(first, "ok") != 0) {
			set_err(err, errlen,
				"%s is damaged (integrity check: %s); use another backup", file,
				first ? first : "?");
			rc = FG_ERR;
		}
		sqlite3_finalize(s);
	}
	sqlite3_close(db);
	return rc;
}

/* Opens the live store alone: back to a rollback journal (which folds the
 * WAL into the database and removes it) and an exclusive lock held until
 * the swap is done. Both need every other connection gone, so a store
 * someone has open (a daemon, a command) is refused here. */
static int lock_live(const char *path, sqlite3 **db, char *err, size_t errlen)
{
	char side[4200];
	struct stat st;
	int src;

	if (open_db(path, SQLITE_OPEN_READWRITE, db, err, errlen) != FG_OK)
		return FG_ERR;
	sqlite3_busy_timeout(*db, 0);
	src = sqlite3_exec(*db, "PRAGMA journal_mode = DELETE", NULL, NULL, NULL);
	if (src == SQLITE_OK)
		src = sqlite3_exec(*db, "BEGIN EXCLUSIVE", NULL, NULL, NULL);
	if (src != SQLITE_OK) {
		if ((src & 0xff) == SQLITE_BUSY || (src & 0xff) == SQLITE_LOCKED)
			set_err(err, errlen,
				"the store %s is in use by another process (a running fedgate "
				"serve, or a fedgate command); stop it and restore again",
				path);
		else
			set_err(err, errlen, "cannot prepare the store %s for the restore: %s",
				path, sqlite3_errmsg(*db));
		return FG_ERR;
	}
	/* A -wal left beside the database would be replayed into the
	 * restored one. */
	for (int i = 0; i < 2; i++) {
		snprintf(side, sizeof(side), "%s%s", path, i ? "-shm" : "-wal");
		if (i == 0 && lstat(side, &st) == 0) {
			set_err(err, errlen,
				"%s is still there after the store was closed; is the store in "
				"use?",
				side);
			return FG_ERR;
		}
		if (i == 1)
			unlink(side); /* holds no data: only the WAL's index */
	}
	return FG_OK;
}

int store_restore(const char *file, const char *store_path, struct store_backup_info *info,
		  char *kept, size_t keptlen, char *err, size_t errlen)
{
	char tmp[4200], stamp[32];
	struct stat live;
	sqlite3 *lock = NULL, *from = NULL, *to = NULL;
	bool have_live;
	int rc, pages = 0;

	kept[0] = '\0';
	rc = store_backup_check(file, info, err, errlen);
	if (rc != FG_OK)
		return rc;
	have_live = stat(store_path, &live) == 0;
	if (!have_live) {
		char *copy = strdup(store_path);
		if (copy == NULL || stat(dirname(copy), &live) != 0 || geteuid() != 0)
			live = (struct stat){.st_uid = geteuid(), .st_gid = getegid()};
		live.st_mode = 0600;
		free(copy);
	}
	if (snprintf(tmp, sizeof(tmp), "%s.restore-tmp", store_path) >= (int)sizeof(tmp)) {
		set_err(err, errlen, "the store path %s is too long", store_path);
		return FG_ERR;
	}
	if (have_live) {
		time_t now = time(NULL);
		struct tm tm;
		gmtime_r(&now, &tm);
		strftime(stamp, sizeof(stamp), "%Y%m%dT%H%M%SZ", &tm);
		if (snprintf(kept, keptlen, "%s.before-restore-%s", store_path, stamp) >=
		    (int)keptlen) {
			set_err(err, errlen, "the store path %s is too long", store_path);
			return FG_ERR;
		}
		rc = lock_live(store_path, &lock, err, errlen);
		if (rc != FG_OK)
			goto out;
	}
	rc = create_new(tmp, " (left by a restore that was interrupted?)", err, errlen);
	if (rc != FG_OK)
		goto out;
	/* The daemon that opens it later runs as the store's owner. With no
	 * old store, the restored one belongs to whoever owns its folder (the
	 * account the daemon runs as) and is 0600. */
	if (chown(tmp, live.st_uid, live.st_gid) != 0 || chmod(tmp, live.st_mode & 07777) != 0) {
		set_err(err, errlen, "cannot give %s the owner and mode of %s: %s", tmp, store_path,
			strerror(errno));
		rc = FG_ERR;
	}
	if (rc == FG_OK)
		rc = open_db(file, SQLITE_OPEN_READONLY, &from, err, errlen);
	if (rc == FG_OK)
		rc = open_db(tmp, SQLITE_OPEN_READWRITE, &to, err, errlen);
	if (rc == FG_OK)
		rc = copy_pages(to, from, -1, file, &pages, err, errlen);
	if (rc == FG_OK)
		rc = seal(&to, tmp, err, errlen);
	if (rc == FG_OK && have_live &&
	    renameat2(AT_FDCWD, store_path, AT_FDCWD, kept, RENAME_NOREPLACE) != 0) {
		set_err(err, errlen, "cannot keep the old store as %s: %s", kept, strerror(errno));
		rc = FG_ERR;
	}
	if (rc == FG_OK && rename(tmp, store_path) != 0) {
		set_err(err, errlen, "cannot install %s as %s: %s", tmp, store_path,
			strerror(errno));
		rc = FG_ERR;
		/* The old store goes back where it was. */
		if (have_live && rename(kept, store_path) != 0)
			set_err(err, errlen,
				"cannot install %s as %s, nor put the old store back: it is %s",
				tmp, store_path, kept);
	}
	if (rc == FG_OK) {
		fsync_folder(store_path);
		info->pages = pages;
	} else {
		sqlite3_close(to);
		to = NULL;
		remove_tmp(tmp);
		kept[0] = '\0';
	}
out:
	sqlite3_close(from);
	if (lock) {
		sqlite3_exec(lock, "COMMIT", NULL, NULL, NULL);
		sqlite3_close(lock);
	}
	return rc;
}

/* Backup and restore of the SQLite store (`fedgate backup`, `fedgate
 * restore`), with SQLite's online backup API. */
#ifndef FG_STORE_BACKUP_H
#define FG_STORE_BACKUP_H

#include <stddef.h>

/* What a store file holds, as the summary the commands print. */
struct store_backup_info {
	int schema;	    /* PRAGMA user_version */
	long long partners; /* rows */
	long long users;    /* 0 before schema 2 */
	long long admins;
	int pages; /* database pages copied (store_backup) or in the file */
};

/* Copies the store at store_path to file, consistent while a daemon runs
 * and writes: one read transaction holds a snapshot (WAL lets the daemon
 * go on writing meanwhile) and the pages are copied a few at a time with a
 * short sleep; a busy or locked source is retried. file must not exist:
 * it is written as FILE.tmp (0600, the store holds secrets), then renamed
 * without replacing anything. The copy is a single file in rollback-journal
 * mode. info counts the same snapshot. FG_OK, or FG_ERR with a sentence in
 * err and nothing left behind. */
int store_backup(const char *store_path, const char *file, struct store_backup_info *info,
		 char *err, size_t errlen);

/* Is file a fedgate store this program can use? An SQLite database with the
 * store's tables, a schema version no newer than this program's (err names
 * both), and PRAGMA integrity_check "ok". Fills info. */
int store_backup_check(const char *file, struct store_backup_info *info, char *err, size_t errlen);

/* Installs file (checked with store_backup_check() first) as the store at
 * store_path. Refuses when another process has the store open (a daemon,
 * another command). The store it replaces is kept as
 * STORE.before-restore-<UTC time> (its name in kept, "" when there was
 * none); the new store gets the old one's owner and mode (with no old
 * one, its folder's owner and 0600), and appears at store_path in one
 * rename. */
int store_restore(const char *file, const char *store_path, struct store_backup_info *info,
		  char *kept, size_t keptlen, char *err, size_t errlen);

#endif

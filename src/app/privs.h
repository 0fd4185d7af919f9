/* Running as a user: `fedgate serve` started as root opens what needs root
 * (listeners, the store, key files, the log file), then switches to
 * [server] user and group for good. */
#ifndef FG_PRIVS_H
#define FG_PRIVS_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

struct fg_conf;

#define PRIVS_MAX_GROUPS 64

struct privs {
	bool drop;			/* started as root with a user to become */
	bool as_root;			/* started as root and stays (run_as_root = yes) */
	uid_t uid;			/* the account to become */
	gid_t gid;			/* its group */
	gid_t groups[PRIVS_MAX_GROUPS]; /* its supplementary groups */
	int ngroups;
	char user[64], group[64];
	bool store_created; /* the store file did not exist: fedgate makes it */
	bool log_created;   /* likewise the log file */
};

/* After conf_load, before anything is bound or opened: who we are against
 * [server] user, group and run_as_root, and whether the account can use
 * the store's folder and files. FG_OK, or FG_ERR with a sentence that
 * says how to fix it in err. Nothing is changed on disk. */
int privs_check(const struct fg_conf *c, struct privs *p, char *err, size_t errlen);
/* When everything that needs root is open: gives the files fedgate created
 * to the account (store, log, control socket), then setgroups, setgid,
 * setuid, and makes sure root cannot come back. FG_ERR with err if any
 * step fails: the caller must stop then. A no-op when p->drop is false. */
int privs_drop(const struct fg_conf *c, const struct privs *p, char *err, size_t errlen);

#endif

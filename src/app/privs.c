/* Running as a user.
 *
 * The order is the one Prosody and the BSD daemons use: bind the ports
 * below 1024, read the private keys and open the files while root, then
 * drop to the account before the first byte from a peer is parsed. The
 * account needs to reach only what is used after the drop: the store's
 * folder (SQLite creates -wal, -shm and journal files beside the database
 * whenever it needs them), the store's files, and the log file for a
 * reopen. privs_check() tries those as the account before anything is
 * bound and names the chown that fixes them; the files fedgate itself
 * creates while root (the control socket, a new store, a new log file) it
 * gives to the account itself, since no one else could. */
#include "privs.h"

#include "conf.h"
#include "fg.h"
#include "log.h"

#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <libgen.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <unistd.h>

/* Root without CAP_SETUID / CAP_SETGID: a bounding set (systemd's
 * CapabilityBoundingSet=) took them away. */
#define EPERM_HINT                                                                           \
	" (root without the capabilities CAP_SETUID and CAP_SETGID; under systemd start it " \
	"as the account instead: User= with AmbientCapabilities=CAP_NET_BIND_SERVICE)"

static bool exists(const char *path)
{
	struct stat st;
	return lstat(path, &st) == 0;
}

static char *folder_of(const char *path)
{
	char *copy = strdup(path);
	char *dir;
	if (copy == NULL)
		return NULL;
	dir = strdup(dirname(copy));
	free(copy);
	return dir;
}

/* Can the account do mode on path? Asked of the kernel with the account's
 * effective ids (AT_EACCESS), so search permission on every folder above
 * counts too; root's ids come back before returning. -1 when the ids
 * cannot be switched (then nothing is trusted). */
static int access_as(const struct privs *p, const char *path, int mode)
{
	gid_t saved[PRIVS_MAX_GROUPS];
	int nsaved = getgroups(PRIVS_MAX_GROUPS, saved);
	gid_t egid = getegid();
	int ok = -1, done = 0, back = 0, e;

	if (nsaved < 0)
		return -1;
	/* Each step needs a capability root may lack (a bounding set):
	 * only the steps that happened are undone. */
	if (setgroups((size_t)p->ngroups, p->groups) == 0)
		done = 1;
	if (done == 1 && setegid(p->gid) == 0)
		done = 2;
	if (done == 2 && seteuid(p->uid) == 0)
		done = 3;
	if (done == 3)
		ok = faccessat(AT_FDCWD, path, mode, AT_EACCESS) == 0;
	e = errno;
	if (done >= 3)
		back |= seteuid(0);
	if (done >= 2)
		back |= setegid(egid);
	if (done >= 1)
		back |= setgroups((size_t)nsaved, saved);
	if (back != 0) {
		/* Half-switched ids must not serve anything. */
		fprintf(stderr, "fedgate: cannot switch back to root after a check: %s\n",
			strerror(errno));
		abort();
	}
	errno = e;
	return ok;
}

static int who(const struct fg_conf *c, struct privs *p, char *err, size_t errlen)
{
	struct passwd *pw;
	struct group *gr;

	errno = 0;
	pw = getpwnam(c->server_user);
	if (pw == NULL) {
		snprintf(err, errlen,
			 "[server] user = %s: no such account%s%s; create it (e.g. adduser "
			 "--system --group %s) or name another",
			 c->server_user, errno ? ": " : "", errno ? strerror(errno) : "",
			 c->server_user);
		return FG_ERR;
	}
	p->uid = pw->pw_uid;
	p->gid = pw->pw_gid;
	snprintf(p->user, sizeof(p->user), "%s", pw->pw_name);
	if (c->server_group != NULL && c->server_group[0] != '\0') {
		gr = getgrnam(c->server_group);
		if (gr == NULL) {
			snprintf(err, errlen,
				 "[server] group = %s: no such group; create it or leave the key "
				 "empty for %s's own group",
				 c->server_group, p->user);
			return FG_ERR;
		}
		p->gid = gr->gr_gid;
	}
	gr = getgrgid(p->gid);
	if (gr != NULL)
		snprintf(p->group, sizeof(p->group), "%s", gr->gr_name);
	else
		snprintf(p->group, sizeof(p->group), "%u", (unsigned)p->gid);
	p->ngroups = PRIVS_MAX_GROUPS;
	if (getgrouplist(p->user, p->gid, p->groups, &p->ngroups) < 0) {
		snprintf(err, errlen, "%s is in more than %d groups; fedgate needs fewer", p->user,
			 PRIVS_MAX_GROUPS);
		return FG_ERR;
	}
	return FG_OK;
}

/* path must be usable by the account in mode, or err says which chown. */
static int need(const struct privs *p, const char *path, int mode, const char *what, char *err,
		size_t errlen)
{
	int ok = access_as(p, path, mode);

	if (ok < 0) {
		int e = errno;
		snprintf(err, errlen, "cannot check %s as %s: %s%s", path, p->user, strerror(e),
			 e == EPERM ? EPERM_HINT : "");
		return FG_ERR;
	}
	if (ok == 0) {
		/* A folder above that the account cannot enter is the usual cause
		 * (mkdtemp's 0700, /root): name it rather than the file. */
		char *up = folder_of(path);
		while (up != NULL && strcmp(up, "/") != 0 && strcmp(up, ".") != 0) {
			char *next;
			if (access_as(p, up, X_OK) == 0) {
				snprintf(err, errlen,
					 "%s %s cannot be reached by %s, whom [server] user names: "
					 "the folder %s is closed to it; open it (chmod o+x %s) or "
					 "move the store",
					 what, path, p->user, up, up);
				free(up);
				return FG_ERR;
			}
			next = folder_of(up);
			free(up);
			up = next;
		}
		free(up);
		snprintf(err, errlen,
			 "%s %s is not %s by %s, whom [server] user names; give it to that "
			 "account: chown %s:%s %s",
			 what, path, (mode & W_OK) ? "writable" : "readable", p->user, p->user,
			 p->group, path);
		return FG_ERR;
	}
	return FG_OK;
}

static int check_files(const struct fg_conf *c, struct privs *p, char *err, size_t errlen)
{
	static const char *const sidecars[] = {"", "-wal", "-shm", "-journal"};
	char path[4200];
	char *dir = folder_of(c->store_path);
	int rc;
	/* PostgreSQL keeps the store: no file of ours to own or to create. */
	bool lite = c->store_backend == NULL || strcmp(c->store_backend, "postgresql") != 0;

	if (dir == NULL) {
		snprintf(err, errlen, "out of memory");
		return FG_NOMEM;
	}
	if (!lite) {
		free(dir);
		rc = FG_OK;
		goto log_file;
	}
	if (!exists(dir)) {
		snprintf(err, errlen,
			 "the folder %s of the store %s does not exist; create it and give it to "
			 "%s: install -d -o %s -g %s -m 0750 %s",
			 dir, c->store_path, p->user, p->user, p->group, dir);
		free(dir);
		return FG_ERR;
	}
	/* SQLite creates and deletes its -wal, -shm and journal files there. */
	rc = need(p, dir, W_OK | X_OK, "the store's folder", err, errlen);
	free(dir);
	if (rc != FG_OK)
		return rc;
	p->store_created = !exists(c->store_path);
	for (size_t i = 0; i < FG_ARRAY_LEN(sidecars) && rc == FG_OK; i++) {
		snprintf(path, sizeof(path), "%s%s", c->store_path, sidecars[i]);
		if (exists(path))
			rc = need(p, path, R_OK | W_OK, "the store file", err, errlen);
	}
	if (rc != FG_OK)
		return rc;
log_file:
	if (c->log_file != NULL && c->log_file[0] != '\0') {
		p->log_created = !exists(c->log_file);
		if (!p->log_created)
			rc = need(p, c->log_file, W_OK, "the log file", err, errlen);
	}
	return rc;
}

int privs_check(const struct fg_conf *c, struct privs *p, char *err, size_t errlen)
{
	bool want_user = c->server_user != NULL && c->server_user[0] != '\0';
	uid_t me = geteuid();

	memset(p, 0, sizeof(*p));
	if (want_user && who(c, p, err, errlen) != FG_OK)
		return FG_ERR;
	if (me != 0) {
		/* Only root can switch; being the named account already is fine
		 * (a systemd unit with User= and the bind capability). */
		if (want_user && (p->uid != me || p->gid != getegid())) {
			snprintf(
				err, errlen,
				"[server] user = %s%s%s, but fedgate was started as uid %u gid %u, "
				"which cannot switch accounts; start it as root (it switches "
				"after opening its ports) or as %s",
				c->server_user,
				c->server_group && *c->server_group ? ", group = " : "",
				c->server_group ? c->server_group : "", (unsigned)me,
				(unsigned)getegid(), c->server_user);
			return FG_ERR;
		}
		return FG_OK;
	}
	if (!want_user || p->uid == 0) {
		if (!c->server_run_as_root) {
			snprintf(err, errlen,
				 "fedgate serve was started as root and [server] user is not set: "
				 "it would parse what peers send with every right on this machine. "
				 "Set user = NAME in [server] (an account of its own, e.g. "
				 "fedgate; fedgate switches to it after opening its ports and "
				 "files), or set run_as_root = yes in [server] to accept the risk "
				 "(a development machine)");
			return FG_ERR;
		}
		p->as_root = true;
		return FG_OK;
	}
	p->drop = true;
	return check_files(c, p, err, errlen);
}

/* Gives a file root created to the account. A symlink is never followed. */
static int give(const struct privs *p, const char *path, char *err, size_t errlen)
{
	struct stat st;

	if (lstat(path, &st) != 0)
		return FG_OK; /* SQLite did not need it */
	if (lchown(path, p->uid, p->gid) != 0) {
		snprintf(err, errlen, "cannot give %s to %s:%s: %s", path, p->user, p->group,
			 strerror(errno));
		return FG_ERR;
	}
	return FG_OK;
}

int privs_drop(const struct fg_conf *c, const struct privs *p, char *err, size_t errlen)
{
	static const char *const sidecars[] = {"", "-wal", "-shm", "-journal"};
	char path[4200];
	uid_t ru, eu, su;
	gid_t rg, eg, sg;
	char *dir;

	if (p->as_root)
		log_warn("privs", "running as root ([server] run_as_root = yes); production sets "
				  "[server] user");
	if (!p->drop)
		return FG_OK;
	/* The CLI connects as root or as a member of the group (the socket is
	 * 0660); the daemon, no longer root, removes it at stop. */
	if (give(p, c->listen_control, err, errlen) != FG_OK)
		return FG_ERR;
	for (size_t i = 0; p->store_created && i < FG_ARRAY_LEN(sidecars); i++) {
		snprintf(path, sizeof(path), "%s%s", c->store_path, sidecars[i]);
		if (give(p, path, err, errlen) != FG_OK)
			return FG_ERR;
	}
	if (p->log_created && give(p, c->log_file, err, errlen) != FG_OK)
		return FG_ERR;

	if (setgroups((size_t)p->ngroups, p->groups) != 0 || setgid(p->gid) != 0 ||
	    setuid(p->uid) != 0) {
		int e = errno;
		snprintf(err, errlen, "cannot switch to %s:%s: %s%s", p->user, p->group,
			 strerror(e), e == EPERM ? EPERM_HINT : "");
		return FG_ERR;
	}
	/* setuid() as root sets all three ids; make sure, and make sure the
	 * way back is closed. */
	if (getresuid(&ru, &eu, &su) != 0 || getresgid(&rg, &eg, &sg) != 0 || ru != p->uid ||
	    eu != p->uid || su != p->uid || rg != p->gid || eg != p->gid || sg != p->gid ||
	    setuid(0) == 0 || seteuid(0) == 0 || setgid(0) == 0) {
		snprintf(err, errlen, "switched to %s:%s but root could still come back", p->user,
			 p->group);
		return FG_ERR;
	}
	/* The kernel already made us non-dumpable when the ids changed; say
	 * so on purpose: the memory holds private keys read as root, so no
	 * core file and no ptrace by the account. */
	if (prctl(PR_SET_DUMPABLE, 0, 0, 0, 0) != 0)
		log_warn("privs", "cannot turn off core dumps: %s", strerror(errno));

	dir = folder_of(c->listen_control);
	if (dir != NULL && access(dir, W_OK | X_OK) != 0)
		log_warn("privs",
			 "%s cannot write to %s: the control socket stays there after stop "
			 "(harmless, the next start replaces it)",
			 p->user, dir);
	free(dir);
	log_info("privs", "running as %s:%s", p->user, p->group);
	return FG_OK;
}

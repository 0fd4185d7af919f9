/* `fedgate backup FILE` and `fedgate restore FILE` (store_backup.c does
 * the copying for SQLite; for PostgreSQL they run pg_dump and pg_restore
 * with the store's dsn, its password passed in PGPASSWORD, never on a
 * command line that ps shows). A backup runs beside a daemon; a restore
 * only without one: a daemon keeps partners and users in memory and would
 * go on serving, and writing, the old ones. */
#include "backup_cmd.h"

#include "conf.h"
#include "control.h"
#include "fg.h"
#include "store_backup.h"
#include "store_sqlite.h"
#include "suggest.h"

#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

static int usage(const char *cmd)
{
	fprintf(stderr, "usage: fedgate %s FILE [-c CONF]\n", cmd);
	return 2;
}

static void print_info(const char *what, const char *file, const struct store_backup_info *i)
{
	printf("%s %s: schema version %d, %lld partners, %lld users, %lld admins, %d pages\n", what,
	       file, i->schema, i->partners, i->users, i->admins, i->pages);
}

/* Runs a PostgreSQL client tool; its own messages go to our stderr. */
static int run_tool(const char *const argv[], const char *pw, char *err, size_t errlen)
{
	pid_t pid = fork();
	int status = 0;

	if (pid < 0) {
		snprintf(err, errlen, "cannot start %s: %s", argv[0], strerror(errno));
		return FG_ERR;
	}
	if (pid == 0) {
		umask(077); /* the dump holds the dialback secret and password hashes */
		if (pw[0] != '\0')
			setenv("PGPASSWORD", pw, 1);
		execvp(argv[0], (char *const *)argv);
		_exit(127);
	}
	while (waitpid(pid, &status, 0) < 0)
		if (errno != EINTR) {
			snprintf(err, errlen, "cannot wait for %s: %s", argv[0], strerror(errno));
			return FG_ERR;
		}
	if (WIFEXITED(status) && WEXITSTATUS(status) == 127) {
		snprintf(err, errlen,
			 "cannot run %s; install PostgreSQL's client tools (apt-get install "
			 "postgresql-client) in a version no older than the server",
			 argv[0]);
		return FG_ERR;
	}
	if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
		snprintf(err, errlen, "%s failed (its message is above); nothing was %s", argv[0],
			 strcmp(argv[0], "pg_dump") == 0 ? "written" : "changed");
		return FG_ERR;
	}
	return FG_OK;
}

static int pg_backup(const struct fg_conf *conf, const char *file, char *err, size_t errlen)
{
	char dsn[1024], pw[256], masked[1024], tmp[4200], opt_file[4300], opt_db[1100];
	int rc;

	if (access(file, F_OK) == 0) {
		snprintf(err, errlen, "%s exists already; name a new file", file);
		return FG_ERR;
	}
	store_dsn_split(conf->store_dsn, dsn, sizeof(dsn), pw, sizeof(pw));
	store_dsn_masked(conf->store_dsn, masked, sizeof(masked));
	snprintf(tmp, sizeof(tmp), "%s.tmp", file);
	snprintf(opt_file, sizeof(opt_file), "--file=%s", tmp);
	snprintf(opt_db, sizeof(opt_db), "--dbname=%s", dsn);
	const char *argv[] = {"pg_dump", "--format=custom", opt_file, opt_db, NULL};
	printf("backing up the store PostgreSQL (%s) with pg_dump --format=custom\n", masked);
	fflush(stdout);
	rc = run_tool(argv, pw, err, errlen);
	explicit_bzero(pw, sizeof(pw));
	/* link(): never replaces a file that appeared meanwhile. */
	if (rc == FG_OK && link(tmp, file) != 0) {
		snprintf(err, errlen, "cannot name the backup %s: %s", file, strerror(errno));
		rc = FG_ERR;
	}
	unlink(tmp);
	if (rc == FG_OK)
		printf("backed up the store to %s (pg_dump custom format; fedgate restore %s, or "
		       "pg_restore, puts it back)\n",
		       file, file);
	return rc;
}

static int pg_restore(const struct fg_conf *conf, const char *file, char *err, size_t errlen)
{
	char dsn[1024], pw[256], masked[1024], opt_db[1100];
	int rc;

	if (access(file, R_OK) != 0) {
		snprintf(err, errlen, "cannot read %s: %s", file, strerror(errno));
		return FG_ERR;
	}
	store_dsn_split(conf->store_dsn, dsn, sizeof(dsn), pw, sizeof(pw));
	store_dsn_masked(conf->store_dsn, masked, sizeof(masked));
	snprintf(opt_db, sizeof(opt_db), "--dbname=%s", dsn);
	const char *argv[] = {"pg_restore", "--clean", "--if-exists", "--single-transaction",
			      "--no-owner", opt_db,    file,	      NULL};
	printf("restoring %s into the store PostgreSQL (%s) with pg_restore --clean --if-exists "
	       "--single-transaction (all or nothing)\n",
	       file, masked);
	fflush(stdout);
	rc = run_tool(argv, pw, err, errlen);
	explicit_bzero(pw, sizeof(pw));
	if (rc == FG_OK)
		printf("restored %s; start fedgate on the nodes again (every node reads the "
		       "store at start)\n",
		       file);
	return rc;
}

int backup_main(int argc, char **argv)
{
	static const struct option longopts[] = {
		{"config", required_argument, NULL, 'c'},
		{"help", no_argument, NULL, 'h'},
		{NULL, 0, NULL, 0},
	};
	const char *cmd = argv[0], *conf_path = NULL;
	struct fg_conf *conf = NULL;
	struct store_backup_info info;
	char err[1200], kept[4300];
	int ch, rc;

	static const char *const known[] = {"--config", "--help", "-c", "-h"};
	int saved_opterr = opterr;
	char who[64];

	snprintf(who, sizeof(who), "fedgate %s", cmd);
	optind = 0;
	opterr = 0; /* the message below names the command and guesses */
	while ((ch = getopt_long(argc, argv, ":c:h", longopts, NULL)) != -1) {
		switch (ch) {
		case 'c': conf_path = optarg; break;
		case 'h': printf("usage: fedgate %s FILE [-c CONF]\n", cmd); return 0;
		case ':':
			opterr = saved_opterr;
			fprintf(stderr, "%s: %s needs a file\n", who, argv[optind - 1]);
			return usage(cmd);
		default:
			opterr = saved_opterr;
			suggest_unknown_option(stderr, who, argv[optind - 1], known,
					       FG_ARRAY_LEN(known));
			return usage(cmd);
		}
	}
	opterr = saved_opterr;
	if (optind != argc - 1) {
		fprintf(stderr, "fedgate %s: %s\n", cmd,
			optind == argc ? "name the FILE" : "one FILE only");
		return usage(cmd);
	}
	const char *file = argv[optind];
	if (conf_load(conf_default_path(conf_path), &conf, stderr) != FG_OK) {
		fprintf(stderr, "fedgate %s: %s has errors; see fedgate check\n", cmd,
			conf_default_path(conf_path));
		return 1;
	}
	bool pg = store_target_of(conf).backend == STORE_POSTGRESQL;
	if (strcmp(cmd, "backup") == 0 && pg) {
		rc = pg_backup(conf, file, err, sizeof(err));
	} else if (strcmp(cmd, "backup") == 0) {
		rc = store_backup(conf->store_path, file, &info, err, sizeof(err));
		if (rc == FG_OK)
			print_info("backed up the store to", file, &info);
	} else if (control_knock(conf->listen_control, NULL) != CONTROL_ABSENT) {
		snprintf(err, sizeof(err),
			 "a fedgate daemon answers on the control socket %s; stop it first "
			 "(fedgate stop, or systemctl stop fedgate), restore, then start it",
			 conf->listen_control);
		rc = FG_ERR;
	} else if (pg) {
		rc = pg_restore(conf, file, err, sizeof(err));
	} else {
		rc = store_restore(file, conf->store_path, &info, kept, sizeof(kept), err,
				   sizeof(err));
		if (rc == FG_OK) {
			print_info("restored", file, &info);
			printf("into %s", conf->store_path);
			if (kept[0])
				printf("; the store it replaced is kept as %s", kept);
			printf("\n");
			if (info.schema < store_db_schema_latest())
				printf("its schema (version %d) is upgraded to version %d when "
				       "fedgate next opens it\n",
				       info.schema, store_db_schema_latest());
		}
	}
	if (rc != FG_OK)
		fprintf(stderr, "fedgate %s: %s\n", cmd, err);
	conf_free(&conf);
	return rc == FG_OK ? 0 : 1;
}

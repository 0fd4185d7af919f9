/* `fedgate backup FILE` and `fedgate restore FILE` (store_backup.c does
 * the copying). A backup runs beside a daemon; a restore only without one:
 * a daemon keeps partners and users in memory and would go on serving, and
 * writing, the old ones. */
#include "backup_cmd.h"

#include "conf.h"
#include "control.h"
#include "fg.h"
#include "store_backup.h"
#include "store_sqlite.h"
#include "suggest.h"

#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <string.h>
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
	if (strcmp(cmd, "backup") == 0) {
		rc = store_backup(conf->store_path, file, &info, err, sizeof(err));
		if (rc == FG_OK)
			print_info("backed up the store to", file, &info);
	} else if (control_knock(conf->listen_control, NULL) != CONTROL_ABSENT) {
		snprintf(err, sizeof(err),
			 "a fedgate daemon answers on the control socket %s; stop it first "
			 "(fedgate stop, or systemctl stop fedgate), restore, then start it",
			 conf->listen_control);
		rc = FG_ERR;
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

/* fedgate: the command-line entry point. Options of fedgate itself (-c
 * FILE) may come before the command, as with nginx -c or unbound-control
 * -c; they are handed to the command as if written right after its word,
 * so every command keeps parsing -c itself. The command word picks a row of
 * one table. */
#include "backup_cmd.h"
#include "cli.h"
#include "conf.h"
#include "fg.h"
#include "health.h"
#include "init.h"
#include "serve.h"
#include "suggest.h"
#include "version.h"

#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void usage(FILE *f)
{
	fprintf(f,
		"usage: fedgate [-c FILE] COMMAND [options]\n"
		"\n"
		"commands:\n"
		"  init [--domain D] [--dir DIR]  write a working configuration into DIR\n"
		"  serve                          run the gateway in the foreground\n"
		"  check [--json]                 health check: configuration, certificates, DNS,\n"
		"                                 listeners, store; each finding with its fix\n"
		"  check --config                 print the effective configuration, or its "
		"errors\n"
		"  partner new DOMAIN [opts]      create an XMPP federated partner (or --domain "
		"D)\n"
		"  partner set D [opts]           change one (--add-domain X, --remove-domain X,\n"
		"                                 --clear-domains, and the fields of 'partner "
		"new')\n"
		"  partner get [D] [--filter G]   show partners (--json for scripts)\n"
		"  partner remove D               remove one\n"
		"  partner export                 print every partner as JSON\n"
		"  partner import FILE            replace every partner with a file's (one "
		"transaction)\n"
		"  gateway get|set [opts]         gateway-wide settings\n"
		"  user add|passwd JID            create a local user / set its password\n"
		"                                 (asked, or one line on standard input)\n"
		"  user list [--filter G]         show local users\n"
		"  user get JID                   show one\n"
		"  user set JID --xmpp-access B   allow or deny federation for one user\n"
		"  user remove JID                remove one, with its roster and messages\n"
		"  audit [--since T]              who changed what, when, before and after\n"
		"  test-im --to JID [--body T]    send a test message to a partner user, report "
		"each step\n"
		"  probe DOMAIN [--tls V --sasl V --dialback B]\n"
		"                                 what a stream to DOMAIN would meet and which\n"
		"                                 settings would work (saves nothing)\n"
		"  status [--failing] [--json]    the running daemon's streams (s2s in and out, "
		"c2s)\n"
		"                                 and failing routes (--failing: only those)\n"
		"  partner retry DOMAIN           forget a failing partner's retry delay, try now\n"
		"  reload                         read the configuration, certificates and keys "
		"again\n"
		"  stop                           shut the daemon down and wait until it exits\n"
		"  admin add NAME --role R        an account of the HTTP API and control panel\n"
		"                                 (administrator or viewer; password from a "
		"prompt\n"
		"                                 or standard input)\n"
		"  admin passwd|remove NAME       change its password, remove it\n"
		"  admin list                     show the accounts\n"
		"  admin token NAME [--revoke]    print a new API bearer token (or withdraw it)\n"
		"  backup FILE                    copy the store into FILE, also while the "
		"daemon runs\n"
		"  restore FILE                   replace the store with a backup (daemon "
		"stopped)\n"
		"  version                        fedgate's version and its libraries'\n"
		"  help                           this text\n"
		"\n"
		"partner options: --description S --additional-domains a,b --partner-type T\n"
		"  --tls V --sasl V --dialback B --keepalive B --connection-limit N --proxy-fqdn "
		"H\n"
		"  --enabled B (false: suspended, no federation either way)\n"
		"  --bidi B --dane off|opportunistic|required --pins P1,P2 (public-key pins)\n"
		"  --add-domain D --remove-domain D --clear-domains (partner set only)\n"
		"  --add-pin P --remove-pin P --clear-pins (partner set only)\n"
		"  --what-if (validate and show, save nothing); 'fedgate partner new --help'\n"
		"exit status: 0 done, 1 refused (nothing saved), 2 usage, 3 not found\n"
		"\n"
		"-c FILE  configuration file, before or after the command (also --config FILE);\n"
		"         default: $FEDGATE_CONF, else the built-in default\n"
		"         (now: %s)\n"
		"see fedgate(8) and fedgate.conf(5)\n",
		conf_default_path(NULL));
}

static int help_cmd(int argc, char **argv)
{
	(void)argc;
	(void)argv;
	usage(stdout);
	return 0;
}

static int version_cmd(int argc, char **argv)
{
	(void)argc;
	(void)argv;
	version_print(stdout);
	return 0;
}

/* Parses the options of serve (-c FILE) and refuses any
 * other, with a guess at what was meant. */
static int common_opts(int argc, char **argv, const char **conf_path)
{
	static const struct option longopts[] = {
		{"config", required_argument, NULL, 'c'},
		{"help", no_argument, NULL, 'h'},
		{NULL, 0, NULL, 0},
	};
	static const char *const known[] = {"--config", "--help", "-c", "-h"};
	int ch, saved_opterr = opterr;
	optind = 0;
	opterr = 0; /* the messages below name the command */
	while ((ch = getopt_long(argc, argv, "+:c:h", longopts, NULL)) != -1) {
		switch (ch) {
		case 'c': *conf_path = optarg; break;
		case 'h': usage(stdout); exit(0);
		case ':':
			fprintf(stderr, "fedgate %s: %s needs a file\n", argv[0], argv[optind - 1]);
			opterr = saved_opterr;
			return -1;
		default: {
			char who[64];
			snprintf(who, sizeof(who), "fedgate %s", argv[0]);
			suggest_unknown_option(stderr, who, argv[optind - 1], known,
					       FG_ARRAY_LEN(known));
			opterr = saved_opterr;
			return -1;
		}
		}
	}
	opterr = saved_opterr;
	if (optind < argc) {
		fprintf(stderr, "fedgate %s: unexpected argument '%s'\n", argv[0], argv[optind]);
		return -1;
	}
	return 0;
}

static int serve_cmd(int argc, char **argv)
{
	const char *conf_path = NULL;
	if (common_opts(argc, argv, &conf_path) != 0)
		return 2;
	return serve_main(conf_default_path(conf_path));
}

/* A command: argv[0] is its word, and -c FILE given before the command
 * comes right after it. Returns the exit status. Adding a command is one
 * row. */
struct command {
	const char *name;
	int (*run)(int argc, char **argv);
};

/* One row per command, one per line, so that adding one is a line. */
/* clang-format off */
static const struct command commands[] = {
	{"init", init_main},
	{"serve", serve_cmd},
	{"check", check_main},
	{"partner", cli_main},
	{"gateway", cli_main},
	{"user", cli_main},
	{"admin", cli_main},
	{"audit", cli_main},
	{"test-im", cli_main},
	{"probe", cli_main},
	{"status", cli_main},
	{"reload", cli_main},
	{"stop", cli_main},
	{"backup", backup_main},
	{"restore", backup_main},
	{"version", version_cmd},
	{"help", help_cmd},
};
/* clang-format on */

/* Whether argv[*i] is -c FILE, -cFILE, --config FILE or --config=FILE:
 * 1 with *file (NULL when the value is missing) and *i on the value's
 * word; 0 when it is something else. */
static int conf_option(int argc, char **argv, int *i, const char **file)
{
	const char *a = argv[*i];
	if (strcmp(a, "-c") == 0 || strcmp(a, "--config") == 0) {
		*file = *i + 1 < argc ? argv[++*i] : NULL;
		return 1;
	}
	if (strncmp(a, "--config=", 9) == 0) {
		*file = a + 9;
		return 1;
	}
	if (strncmp(a, "-c", 2) == 0) {
		*file = a + 2;
		return 1;
	}
	return 0;
}

/* The -c written after the command that differs from given, if any. A
 * value that starts with '-' is another option (check --config takes
 * none), not a file. */
static const char *conflicting_conf(int argc, char **argv, const char *given)
{
	for (int i = 1; i < argc && strcmp(argv[i], "--") != 0; i++) {
		const char *file = NULL;
		int at = i;
		if (!conf_option(argc, argv, &i, &file) || !file)
			continue;
		if (file[0] == '-')
			i = at; /* look at that option on the next turn */
		else if (strcmp(file, given) != 0)
			return file;
	}
	return NULL;
}

static int usage_error(void)
{
	fprintf(stderr, "see 'fedgate help'\n");
	return 2;
}

/* Options before the command: fedgate's own (-c FILE, --help,
 * --version). Returns the index of the command word, or -1 with *status
 * set when there is nothing to run. */
static int global_opts(int argc, char **argv, const char **conf, int *status)
{
	static const char *const known[] = {"--config", "--help", "--version"};
	int i;
	*status = 2;
	for (i = 1; i < argc && argv[i][0] == '-'; i++) {
		const char *a = argv[i], *file = NULL;
		if (strcmp(a, "--") == 0) {
			i++;
			break;
		}
		if (conf_option(argc, argv, &i, &file)) {
			if (!file || !file[0]) {
				fprintf(stderr,
					"fedgate: %s needs a file: fedgate -c FILE COMMAND\n", a);
				return -1;
			}
			if (*conf && strcmp(*conf, file) != 0) {
				fprintf(stderr,
					"fedgate: the configuration is given twice, as %s and as "
					"%s; give -c once\n",
					*conf, file);
				return -1;
			}
			*conf = file;
		} else if (strcmp(a, "-h") == 0 || strcmp(a, "--help") == 0) {
			usage(stdout);
			*status = 0;
			return -1;
		} else if (strcmp(a, "--version") == 0) {
			version_print(stdout);
			*status = 0;
			return -1;
		} else {
			size_t n = strcspn(a, "=");
			char word[64];
			snprintf(word, sizeof(word), "%.*s", (int)n, a);
			const char *hint = suggest_closest(word, known, FG_ARRAY_LEN(known));
			if (hint)
				fprintf(stderr,
					"fedgate: unknown option '%s'; did you mean '%s'?\n", word,
					hint);
			else
				fprintf(stderr,
					"fedgate: unknown option '%s' before the command; a "
					"command's own options go after the command (fedgate "
					"[-c FILE] COMMAND %s)\n",
					word, a);
			return -1;
		}
	}
	if (i >= argc) {
		if (*conf)
			fprintf(stderr,
				"fedgate: -c %s names the configuration; a command must "
				"follow it\n",
				*conf);
		else
			usage(stderr);
		return -1;
	}
	return i;
}

static const struct command *find_command(const char *word)
{
	const char *names[FG_ARRAY_LEN(commands)];
	for (size_t k = 0; k < FG_ARRAY_LEN(commands); k++) {
		if (strcmp(commands[k].name, word) == 0)
			return &commands[k];
		names[k] = commands[k].name;
	}
	const char *hint = suggest_closest(word, names, FG_ARRAY_LEN(names));
	fprintf(stderr, "fedgate: unknown command '%s'", word);
	if (hint)
		fprintf(stderr, "; did you mean '%s'?", hint);
	fputc('\n', stderr);
	return NULL;
}

int main(int argc, char **argv)
{
	const char *conf = NULL;
	int status;
	int at = global_opts(argc, argv, &conf, &status);
	if (at < 0)
		return status == 2 && argc > 1 ? usage_error() : status;
	const struct command *cmd = find_command(argv[at]);
	if (!cmd)
		return usage_error();
	int sub_argc = argc - at;
	char **sub_argv = argv + at;
	if (!conf)
		return cmd->run(sub_argc, sub_argv);

	const char *other = conflicting_conf(sub_argc, sub_argv, conf);
	if (other) {
		fprintf(stderr,
			"fedgate: the configuration is given twice, as %s before the command and "
			"as "
			"%s after it; give -c once\n",
			conf, other);
		return usage_error();
	}
	/* [word, -c, FILE, the rest...]: as if written after the command. */
	char **v = calloc((size_t)sub_argc + 3, sizeof(*v));
	if (!v) {
		fprintf(stderr, "fedgate: out of memory\n");
		return 1;
	}
	static char opt_c[] = "-c";
	v[0] = sub_argv[0];
	v[1] = opt_c;
	v[2] = (char *)conf;
	memcpy(v + 3, sub_argv + 1, (size_t)(sub_argc - 1) * sizeof(*v));
	status = cmd->run(sub_argc + 2, v);
	free(v);
	return status;
}

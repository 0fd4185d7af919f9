/* fedgate: the command-line entry point; dispatches to subcommands. */
#include "cli.h"
#include "conf.h"
#include "fg.h"
#include "init.h"
#include "log.h"
#include "serve.h"

#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void usage(FILE *f)
{
	fprintf(f,
		"usage: fedgate COMMAND [-c FILE] [options]\n"
		"\n"
		"commands:\n"
		"  init [--domain D] [--dir DIR]  write a working configuration into DIR\n"
		"  serve                          run the gateway in the foreground\n"
		"  check                          print the effective configuration, or its "
		"errors\n"
		"  partner new --domain D [opts]  create an XMPP federated partner\n"
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
		"  status [--json]                every s2s stream of the running daemon\n"
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
		"  version                        print the version\n"
		"  help                           this text\n"
		"\n"
		"partner options: --description S --additional-domains a,b --partner-type T\n"
		"  --tls V --sasl V --dialback B --keepalive B --connection-limit N --proxy-fqdn "
		"H\n"
		"  --what-if (validate and show, save nothing); 'fedgate partner new --help'\n"
		"exit status: 0 done, 1 refused (nothing saved), 2 usage, 3 not found\n"
		"\n"
		"-c FILE  configuration file (default: $FEDGATE_CONF, else " FG_CONF_DEFAULT ")\n"
		"see fedgate(8) and fedgate.conf(5)\n");
}

/* Parses the options every command shares (-c FILE) and stops at the first
 * one it does not know, leaving it for the command. */
static int common_opts(int argc, char **argv, const char **conf_path)
{
	static const struct option longopts[] = {
		{"config", required_argument, NULL, 'c'},
		{"help", no_argument, NULL, 'h'},
		{NULL, 0, NULL, 0},
	};
	int ch;
	optind = 1;
	while ((ch = getopt_long(argc, argv, "+c:h", longopts, NULL)) != -1) {
		switch (ch) {
		case 'c': *conf_path = optarg; break;
		case 'h': usage(stdout); exit(0);
		default: usage(stderr); return -1;
		}
	}
	if (optind < argc) {
		fprintf(stderr, "fedgate %s: unexpected argument '%s'\n", argv[0], argv[optind]);
		return -1;
	}
	return 0;
}

int main(int argc, char **argv)
{
	if (argc < 2) {
		usage(stderr);
		return 2;
	}
	const char *cmd = argv[1];
	const char *conf_path = NULL;

	if (strcmp(cmd, "help") == 0 || strcmp(cmd, "--help") == 0 || strcmp(cmd, "-h") == 0) {
		usage(stdout);
		return 0;
	}
	if (strcmp(cmd, "version") == 0 || strcmp(cmd, "--version") == 0) {
		printf("fedgate %s\n", FG_VERSION);
		return 0;
	}
	if (strcmp(cmd, "partner") == 0 || strcmp(cmd, "gateway") == 0 ||
	    strcmp(cmd, "audit") == 0 || strcmp(cmd, "test-im") == 0 ||
	    strcmp(cmd, "status") == 0 || strcmp(cmd, "user") == 0 || strcmp(cmd, "admin") == 0 ||
	    strcmp(cmd, "reload") == 0 || strcmp(cmd, "stop") == 0)
		return cli_main(argc - 1, argv + 1);
	if (strcmp(cmd, "init") == 0)
		return init_main(argc - 1, argv + 1);
	if (strcmp(cmd, "check") == 0) {
		if (common_opts(argc - 1, argv + 1, &conf_path) != 0)
			return 2;
		return conf_check_main(conf_default_path(conf_path), stdout, stderr);
	}
	if (strcmp(cmd, "serve") == 0) {
		if (common_opts(argc - 1, argv + 1, &conf_path) != 0)
			return 2;
		return serve_main(conf_default_path(conf_path));
	}
	fprintf(stderr, "fedgate: unknown command '%s'\n", cmd);
	usage(stderr);
	return 2;
}

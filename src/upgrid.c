/* upgrid.c - the upgrid command: global options and the command table. */
#include "config.h"

#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"

struct command {
	const char *name;
	int (*fn)(int argc, char **argv);
	const char *summary;
};

static const struct command commands[] = {
	{ "init", cmd_init, "create an empty repo" },
	{ "keygen", cmd_keygen, "make an Ed25519 signing key pair" },
	{ "publish", cmd_publish, "publish a tree as a new signed version" },
	{ "rollout", cmd_rollout, "change which terminals install a version" },
	{ "log", cmd_log, "list the versions of a channel" },
	{ "show", cmd_show, "show one version's manifest" },
	{ "diff", cmd_diff, "show what changed between two versions" },
	{ "verify", cmd_verify, "check every object, delta and signature in a repo" },
	{ "fleet", cmd_fleet, "summarise the terminals' status reports" },
	{ "pull", cmd_pull, "terminal: install a newer version if there is one" },
	{ "agent", cmd_agent, "terminal: keep up to date, as a daemon" },
	{ "status", cmd_status, "terminal: show the installed version and last attempt" },
	{ "accept", cmd_accept, "terminal: allow a version (policy manual)" },
	{ "deny", cmd_deny, "terminal: never install a version" },
	{ "rollback", cmd_rollback, "terminal: switch back to a kept version" },
};

static void usage(FILE *f)
{
	fprintf(f,
		"usage: upgrid [-R REPO] [-q | -v] COMMAND [ARGS]\n"
		"\n"
		"Global options:\n"
		"  -R, --repo PATH   repo to use (default: $UPGRID_REPO or %s)\n"
		"  -q, --quiet       print only errors\n"
		"  -v, --verbose     print progress details\n"
		"  -h, --help        show this help\n"
		"  -V, --version     show the version\n"
		"\n"
		"Commands:\n", UG_DEFAULT_REPO);
	for (size_t i = 0; i < sizeof(commands) / sizeof(commands[0]); i++)
		fprintf(f, "  %-9s %s\n", commands[i].name, commands[i].summary);
	fprintf(f, "\nRun 'upgrid COMMAND --help' for a command's options; see upgrid(1).\n");
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "repo", required_argument, NULL, 'R' },
		{ "quiet", no_argument, NULL, 'q' },
		{ "verbose", no_argument, NULL, 'v' },
		{ "help", no_argument, NULL, 'h' },
		{ "version", no_argument, NULL, 'V' },
		{ NULL, 0, NULL, 0 },
	};
	int c;

	while ((c = getopt_long(argc, argv, "+R:qvhV", opts, NULL)) != -1) {
		switch (c) {
		case 'R':
			ug_cli.repo = optarg;
			break;
		case 'q':
			ug_cli.verbosity = 0;
			break;
		case 'v':
			ug_cli.verbosity = 2;
			break;
		case 'h':
			usage(stdout);
			return UG_EXIT_OK;
		case 'V':
			printf("upgrid %s\n", PACKAGE_VERSION);
			return UG_EXIT_OK;
		default:
			fprintf(stderr, "Try 'upgrid --help'.\n");
			return UG_EXIT_USAGE;
		}
	}
	if (optind >= argc) {
		usage(stderr);
		return UG_EXIT_USAGE;
	}
	for (size_t i = 0; i < sizeof(commands) / sizeof(commands[0]); i++) {
		if (strcmp(argv[optind], commands[i].name) == 0) {
			char **sub = argv + optind;
			int subc = argc - optind;
			optind = 0; /* let the command run getopt afresh */
			return commands[i].fn(subc, sub);
		}
	}
	ug_cli_err("'%s' is not an upgrid command; see 'upgrid --help'", argv[optind]);
	return UG_EXIT_USAGE;
}

/* cmd-init.c - upgrid init: create an empty repo. */
#include "config.h"

#include <getopt.h>
#include <stdio.h>

#include "cli.h"

static const char usage_text[] =
	"usage: upgrid init [REPO]\n"
	"\n"
	"Create an empty repo at REPO (default: -R, $UPGRID_REPO or the built-in\n"
	"path). The directory may exist but must be empty. Settings live in\n"
	"REPO/config (see upgrid.conf(5)).\n"
	"\n"
	"  -h, --help   show this help\n";

int cmd_init(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	struct ug_error e = { "" };
	const char *path;
	int c, r;

	while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
		if (c == 'h') {
			fputs(usage_text, stdout);
			return UG_EXIT_OK;
		}
		return ug_cli_usage_error("init", NULL);
	}
	if (argc - optind > 1)
		return ug_cli_usage_error("init", "too many arguments");
	path = optind < argc ? argv[optind] : ug_cli_repo_path();
	r = ug_store_create(path, &e);
	if (r < 0) {
		ug_cli_err("%s", e.msg);
		return r == -EEXIST ? UG_EXIT_USAGE : UG_EXIT_FAILURE;
	}
	ug_cli_info("initialized empty upgrid repo in '%s'", path);
	return UG_EXIT_OK;
}

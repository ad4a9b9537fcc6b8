/* cmd-keygen.c - upgrid keygen: make the master's Ed25519 key pair. */
#include "config.h"

#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "sign.h"

static const char usage_text[] =
	"usage: upgrid keygen [-f FILE] [-C COMMENT] [--force]\n"
	"\n"
	"Make an Ed25519 key pair for signing manifests: the secret key in FILE\n"
	"(mode 0600) and the public key in FILE.pub, which terminals and group\n"
	"servers are given.\n"
	"\n"
	"  -f, --file FILE        secret key file (default: $UPGRID_KEY or " UG_DEFAULT_KEY ")\n"
	"  -C, --comment COMMENT  comment stored in the public key file\n"
	"      --force            overwrite an existing key (old signatures stop verifying)\n"
	"  -h, --help             show this help\n";

int cmd_keygen(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "file", required_argument, NULL, 'f' },
		{ "comment", required_argument, NULL, 'C' },
		{ "force", no_argument, NULL, 'F' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	struct ug_seckey key;
	struct ug_error e = { "" };
	const char *file = getenv("UPGRID_KEY"), *comment = NULL;
	char id[UG_KEYID_HEX_LEN + 1];
	int force = 0, c, r;

	if (!file || !*file)
		file = UG_DEFAULT_KEY;
	while ((c = getopt_long(argc, argv, "f:C:h", opts, NULL)) != -1) {
		switch (c) {
		case 'f':
			file = optarg;
			break;
		case 'C':
			comment = optarg;
			break;
		case 'F':
			force = 1;
			break;
		case 'h':
			fputs(usage_text, stdout);
			return UG_EXIT_OK;
		default:
			return ug_cli_usage_error("keygen", NULL);
		}
	}
	if (optind < argc)
		return ug_cli_usage_error("keygen", "unexpected argument '%s'", argv[optind]);
	r = ug_key_generate(&key);
	if (r < 0) {
		ug_cli_err("cannot generate a key: %s", strerror(-r));
		return UG_EXIT_FAILURE;
	}
	r = ug_key_save(&key, file, comment, force, &e);
	ug_key_id(&key.pub, id);
	ug_seckey_wipe(&key);
	if (r < 0) {
		ug_cli_err("%s", e.msg);
		return r == -EEXIST ? UG_EXIT_USAGE : UG_EXIT_FAILURE;
	}
	ug_cli_info("wrote secret key '%s' (keep it private) and public key '%s.pub'", file, file);
	ug_cli_info("key id %s", id);
	return UG_EXIT_OK;
}

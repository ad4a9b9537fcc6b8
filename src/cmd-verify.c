/* cmd-verify.c - upgrid verify: check a whole repo, read-only. */
#include "config.h"

#include <getopt.h>
#include <stdio.h>
#include <string.h>

#include "cli.h"
#include "sign.h"
#include "verify.h"

static const char usage_text[] =
	"usage: upgrid verify [--pubkey FILE]\n"
	"\n"
	"Check every object (its BLAKE2b and XXH3), every delta (its hash, and\n"
	"that it reproduces its target exactly), every manifest (signature and\n"
	"structure), every manifest delta and every ref. Each problem is\n"
	"printed; the repo is never modified. Exit status 3 if any was found.\n"
	"\n"
	"      --pubkey FILE  trusted public key (default: REPO/master.pub)\n"
	"  -h, --help         show this help\n";

static void report(void *ctx, const char *what, const char *msg)
{
	(void)ctx;
	ug_cli_err("%s: %s", what, msg);
}

int cmd_verify(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "pubkey", required_argument, NULL, 'P' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	const char *pubfile = NULL;
	struct ug_store *s = NULL;
	struct ug_pubkey pk;
	struct ug_verify_stats st = { 0 };
	bool have_key = true;
	int c, r;

	while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
		switch (c) {
		case 'P':
			pubfile = optarg;
			break;
		case 'h':
			fputs(usage_text, stdout);
			return UG_EXIT_OK;
		default:
			return ug_cli_usage_error("verify", NULL);
		}
	}
	if (optind < argc)
		return ug_cli_usage_error("verify", "unexpected argument '%s'", argv[optind]);
	r = ug_cli_open_repo(&s);
	if (r < 0)
		return ug_cli_exit_code(r);
	{
		char **channels = NULL;
		size_t nch = 0;

		/* nothing published yet: no manifest to check, so no key needed
		 * (a nightly verify of a new repo should not fail) */
		if (!pubfile && ug_store_channels(s, &channels, &nch) == 0 && nch == 0)
			have_key = false;
		ug_strv_free(channels, nch);
	}
	if (have_key) {
		r = ug_cli_repo_pubkey(s, pubfile, &pk);
		if (r < 0) {
			ug_store_free(s);
			return ug_cli_exit_code(r);
		}
	}
	r = ug_verify_repo(s, have_key ? &pk : NULL, report, NULL, &st);
	if (r < 0 && r != -EBADMSG) {
		ug_cli_err("verify of '%s' could not run: %s", s->path, strerror(-r));
		ug_store_free(s);
		return UG_EXIT_FAILURE;
	}
	if (st.problems)
		ug_cli_err("'%s': %zu problem%s found in %zu objects, %zu deltas, %zu bundles, "
			   "%zu manifests, %zu manifest deltas",
			   s->path, st.problems, st.problems == 1 ? "" : "s", st.objects, st.deltas,
			   st.bundles, st.manifests, st.mdeltas);
	else
		ug_cli_info("'%s' is sound: %zu objects, %zu deltas, %zu bundles, %zu manifests, "
			    "%zu manifest deltas, %zu refs checked",
			    s->path, st.objects, st.deltas, st.bundles, st.manifests, st.mdeltas, st.refs);
	ug_store_free(s);
	return st.problems ? UG_EXIT_CORRUPT : UG_EXIT_OK;
}

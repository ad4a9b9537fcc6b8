/* cmd-publish.c - upgrid publish: a tree becomes a new signed version. */
#include "config.h"

#include <getopt.h>
#include <inttypes.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "publish.h"
#include "rollout.h"
#include "sign.h"

static const char usage_text[] =
	"usage: upgrid publish [-k KEY] [-c CHANNEL] [-m MESSAGE] [--expire-days N]\n"
	"                      [--rollout PERCENT] [--groups G1,G2] [--terminals PATTERN]...\n"
	"                      [--json] TREE\n"
	"\n"
	"Store TREE as the next version of CHANNEL: objects for new content,\n"
	"deltas from the last versions (keep-deltas in the repo config), a\n"
	"manifest signed with KEY, then the channel's ref. A tree identical to\n"
	"the latest version makes no new version (unless --rollout, --groups or\n"
	"--terminals ask for a rollout other than the latest's).\n"
	"\n"
	"  -k, --key FILE          secret key (default: $UPGRID_KEY or " UG_DEFAULT_KEY ")\n"
	"  -c, --channel CHANNEL   channel to publish to (default: " UG_DEFAULT_CHANNEL ")\n"
	"  -m, --message MESSAGE   message recorded in the manifest\n"
	"      --expire-days N     manifest lifetime in days (default: repo's expire-days)\n"
	"      --rollout PERCENT   staged rollout: only this share of the terminals\n"
	"                          installs the version (\"10%\", \"12.5%\"; default 100%)\n"
	"      --groups G1,G2      only terminals of these groups of REPO/cluster\n"
	"      --terminals PATTERN\n"
	"                          only terminals whose id matches this fnmatch(3)\n"
	"                          pattern; may be given several times\n"
	"      --json              print the result as JSON\n"
	"  -h, --help              show this help\n";

static void publish_log(void *ctx, int level, const char *msg)
{
	(void)ctx;
	if (level == UG_LOG_WARN)
		ug_cli_warn("%s", msg);
	else
		ug_cli_verbose("%s", msg);
}

static void print_json(const struct ug_publish_result *res, const char *channel,
		       const struct ug_rollout *rollout)
{
	json_t *o = json_object(), *pairs = json_array();
	char *s;

	json_object_set_new(o, "channel", json_string(channel));
	json_object_set_new(o, "version", json_integer((json_int_t)res->version));
	json_object_set_new(o, "unchanged", json_boolean(res->unchanged));
	/* what the new version states; null: everyone */
	if (!res->unchanged)
		json_object_set_new(o, "rollout", ug_rollout_is_everyone(rollout) ? json_null() :
				    ug_rollout_json(rollout));
	json_object_set_new(o, "files", json_integer((json_int_t)res->nfiles));
	json_object_set_new(o, "added", json_integer((json_int_t)res->added));
	json_object_set_new(o, "removed", json_integer((json_int_t)res->removed));
	json_object_set_new(o, "modified", json_integer((json_int_t)res->modified));
	json_object_set_new(o, "renamed", json_integer((json_int_t)res->renamed));
	json_object_set_new(o, "mode_changed", json_integer((json_int_t)res->mode_changed));
	json_object_set_new(o, "tree_bytes", json_integer((json_int_t)res->tree_bytes));
	json_object_set_new(o, "full_bytes", json_integer((json_int_t)res->full_bytes));
	json_object_set_new(o, "manifest_bytes", json_integer((json_int_t)res->manifest_bytes));
	for (size_t i = 0; i < res->npairs; i++) {
		const struct ug_publish_pair *p = &res->pairs[i];
		json_t *po = json_object();
		json_object_set_new(po, "from", json_integer((json_int_t)p->from));
		json_object_set_new(po, "per_file_bytes", json_integer((json_int_t)p->per_file_bytes));
		json_object_set_new(po, "bundle_bytes", json_integer((json_int_t)p->bundle_bytes));
		json_object_set_new(po, "manifest_delta_bytes",
				    json_integer((json_int_t)p->manifest_delta_bytes));
		json_object_set_new(po, "best_bytes", json_integer((json_int_t)p->best_bytes));
		json_array_append_new(pairs, po);
	}
	json_object_set_new(o, "pairs", pairs);
	s = json_dumps(o, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
	if (s)
		puts(s);
	free(s);
	json_decref(o);
}

static void print_human(const struct ug_publish_result *res, const char *channel, const char *tree,
			const struct ug_rollout *rollout)
{
	char a[32], b[32], c[32], d[32], ro[256];

	if (res->unchanged) {
		ug_cli_info("tree '%s' is identical to %s/%" PRIu64 "; no new version", tree, channel,
			    res->version);
		return;
	}
	ug_cli_info("published %s/%" PRIu64 ": %zu files, %zu added, %zu removed, %zu modified, "
		    "%zu renamed, %zu mode changes",
		    channel, res->version, res->nfiles, res->added, res->removed, res->modified,
		    res->renamed, res->mode_changed);
	ug_bytes_format(res->tree_bytes, a);
	ug_bytes_format(res->full_bytes, b);
	ug_cli_info("  tree %s, full download %s", a, b);
	if (!ug_rollout_is_everyone(rollout)) {
		ug_rollout_format(rollout, ro, sizeof(ro));
		ug_cli_info("  rollout %s (change it with 'upgrid rollout %" PRIu64 "')", ro,
			    res->version);
	}
	for (size_t i = 0; i < res->npairs; i++) {
		const struct ug_publish_pair *p = &res->pairs[i];
		double pct = res->full_bytes ? 100.0 * (double)p->best_bytes / (double)res->full_bytes : 0;

		ug_bytes_format(p->best_bytes, a);
		ug_bytes_format(p->bundle_bytes, b);
		ug_bytes_format(p->per_file_bytes, c);
		ug_bytes_format(p->manifest_delta_bytes, d);
		ug_cli_info("  from %" PRIu64 ": %s (%.1f%% of full; bundle %s, per-file %s, manifest delta %s)",
			    p->from, a, pct, p->bundle_bytes ? b : "none", c, d);
	}
}

int cmd_publish(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "key", required_argument, NULL, 'k' },
		{ "channel", required_argument, NULL, 'c' },
		{ "message", required_argument, NULL, 'm' },
		{ "expire-days", required_argument, NULL, 'E' },
		{ "json", no_argument, NULL, 'J' },
		{ "rollout", required_argument, NULL, 'O' },
		{ "groups", required_argument, NULL, 'G' },
		{ "terminals", required_argument, NULL, 'T' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	struct ug_publish_opts o = { .channel = UG_DEFAULT_CHANNEL, .log = publish_log };
	struct ug_publish_result res;
	struct ug_seckey key;
	struct ug_store *s = NULL;
	struct ug_error e = { "" };
	const char *keyfile = getenv("UPGRID_KEY");
	const char *percent = NULL, *groups = NULL;
	struct ug_rollout *rollout = NULL;
	/* each --terminals is one pattern (a pattern may hold a comma) */
	char **patterns = calloc((size_t)argc + 1, sizeof(*patterns));
	size_t npatterns = 0;
	bool json = false;
	uint64_t days;
	int c, r;

	if (!patterns) {
		ug_cli_err("out of memory");
		return UG_EXIT_FAILURE;
	}

	if (!keyfile || !*keyfile)
		keyfile = UG_DEFAULT_KEY;
	while ((c = getopt_long(argc, argv, "k:c:m:h", opts, NULL)) != -1) {
		switch (c) {
		case 'k':
			keyfile = optarg;
			break;
		case 'c':
			o.channel = optarg;
			break;
		case 'm':
			o.message = optarg;
			break;
		case 'E':
			if (ug_parse_u64(optarg, 36500, &days) < 0 || days == 0)
				return ug_cli_usage_error("publish", "--expire-days takes 1 to 36500");
			o.expire_days = (unsigned)days;
			break;
		case 'J':
			json = true;
			break;
		case 'O':
			percent = optarg;
			break;
		case 'G':
			groups = optarg;
			break;
		case 'T':
			patterns[npatterns++] = optarg;
			break;
		case 'h':
			free(patterns);
			fputs(usage_text, stdout);
			return UG_EXIT_OK;
		default:
			free(patterns);
			return ug_cli_usage_error("publish", NULL);
		}
	}
	if (argc - optind != 1) {
		free(patterns);
		return ug_cli_usage_error("publish", "expected one TREE argument");
	}
	o.tree = argv[optind];
	if (ug_channel_check(o.channel, &e) < 0) {
		free(patterns);
		return ug_cli_usage_error("publish", "%s", e.msg);
	}
	if (percent || groups || npatterns) {
		r = ug_rollout_from_args(percent, groups, patterns, npatterns, &rollout, &e);
		if (r < 0) {
			free(patterns);
			if (r == -ENOMEM) {
				ug_cli_err("out of memory");
				return UG_EXIT_FAILURE;
			}
			return ug_cli_usage_error("publish", "%s", e.msg);
		}
		o.rollout = rollout;
	}
	free(patterns);

	r = ug_seckey_load(keyfile, &key, &e);
	if (r < 0) {
		ug_cli_err("cannot load signing key: %s%s", e.msg,
			   r == -ENOENT ? " (make one with 'upgrid keygen -f FILE')" : "");
		ug_rollout_free(rollout);
		return r == -EACCES ? UG_EXIT_USAGE : ug_cli_exit_code(r);
	}
	o.key = &key;
	r = ug_cli_open_repo(&s);
	if (r < 0) {
		ug_seckey_wipe(&key);
		ug_rollout_free(rollout);
		return ug_cli_exit_code(r);
	}
	memset(&res, 0, sizeof(res));
	r = ug_publish(s, &o, &res, &e);
	ug_seckey_wipe(&key);
	if (r < 0) {
		ug_cli_err("publish failed: %s", e.msg);
		ug_rollout_free(rollout);
		ug_store_free(s);
		return ug_cli_exit_code(r);
	}
	if (json)
		print_json(&res, o.channel, rollout);
	else
		print_human(&res, o.channel, o.tree, rollout);
	ug_rollout_free(rollout);
	ug_store_free(s);
	return UG_EXIT_OK;
}

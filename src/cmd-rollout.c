/* cmd-rollout.c - upgrid rollout: change the staged rollout of a
 * published version with a signed rollout document (rollout.h), leaving
 * its manifest as it is. */
#include "config.h"

#include <getopt.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "manifest.h"
#include "rollout.h"
#include "sign.h"

static const char usage_text[] =
	"usage: upgrid rollout [-k KEY] [-c CHANNEL] [--groups G1,G2] [--terminals PATTERN]...\n"
	"                      [--json] VERSION PERCENT\n"
	"\n"
	"Change which terminals install VERSION (a number or 'latest') of CHANNEL:\n"
	"PERCENT of them (\"50%\", \"12.5%\", \"100%\"), optionally only in the named\n"
	"groups or with an id matching a pattern. The manifest is not touched: a\n"
	"rollout document signed with KEY is written beside it and replaces the\n"
	"rollout the manifest states and any earlier document (what is not given\n"
	"is not restricted). Group servers copy it on their next round.\n"
	"\n"
	"  -k, --key FILE          secret key (default: $UPGRID_KEY or " UG_DEFAULT_KEY ")\n"
	"  -c, --channel CHANNEL   channel (default: " UG_DEFAULT_CHANNEL ")\n"
	"      --groups G1,G2      only terminals of these groups of the version's\n"
	"                          chain list\n"
	"      --terminals PATTERN\n"
	"                          only terminals whose id matches this fnmatch(3)\n"
	"                          pattern; may be given several times\n"
	"      --json              print the signed rollout document\n"
	"  -h, --help              show this help\n";

/* The serial of the document the version has now (0: none). A document
 * that cannot be read is an error: its serial is unknown, and a new one
 * numbered too low would be ignored by every server holding the old. */
static int previous_serial(struct ug_store *s, const char *channel, uint64_t version,
			   struct ug_rollout_doc **ret)
{
	struct ug_error e = { "" };
	char *doc = NULL;
	size_t len = 0;
	int r;

	r = ug_store_rollout_get(s, channel, version, &doc, &len, NULL, NULL);
	if (r == -ENOENT) {
		*ret = NULL;
		return 0;
	}
	if (r == 0)
		r = ug_rollout_doc_parse(doc, len, channel, version, ret, &e);
	free(doc);
	if (r < 0)
		ug_cli_err("cannot read the rollout document '%s/manifests/%s/%" PRIu64 ".rollout': "
			   "%s; if it is damaged, move it and its .sig away and run this again "
			   "(group servers keep a copy with a higher serial until a newer one "
			   "comes)", s->path, channel, version, e.msg[0] ? e.msg : strerror(-r));
	return r;
}

static int key_matches_repo(struct ug_store *s, const struct ug_seckey *key)
{
	struct ug_pubkey pk;
	char a[UG_KEYID_HEX_LEN + 1], b[UG_KEYID_HEX_LEN + 1];
	int r = ug_cli_repo_pubkey(s, NULL, &pk);

	if (r < 0)
		return r;
	if (memcmp(pk.pk, key->pub.pk, sizeof(pk.pk)) == 0)
		return 0;
	ug_key_id(&pk, a);
	ug_key_id(&key->pub, b);
	ug_cli_err("repo '%s' is signed by key %s but this key is %s; sign with the key whose "
		   "public half is in '%s/master.pub' (-k FILE)", s->path, a, b, s->path);
	return -EKEYREJECTED;
}

/* Lock, check, number, sign and store. Errors are printed. */
static int write_rollout(struct ug_store *s, const struct ug_seckey *key, const char *channel,
			 const char *spec, struct ug_rollout *rollout, bool json)
{
	struct ug_rollout_doc d = { .format = UG_ROLLOUT_DOC_FORMAT };
	struct ug_rollout_doc *prev = NULL;
	struct ug_manifest *m = NULL;
	struct ug_error e = { "" };
	char *doc = NULL, *sig = NULL, *mjson = NULL, now[256], was[256];
	size_t len = 0, sig_len = 0, mlen = 0;
	int r;

	r = ug_store_lock(s, false);
	if (r < 0) {
		ug_cli_err("repo '%s' is locked by another publish; try again when it finishes",
			   s->path);
		return r;
	}
	if ((r = key_matches_repo(s, key)) < 0 ||
	    (r = ug_cli_resolve_version(s, channel, spec, &d.version)) < 0 ||
	    (r = ug_cli_load_manifest(s, &key->pub, channel, d.version, &m, &mjson, &mlen)) < 0)
		goto out;
	if ((r = ug_rollout_check_groups(rollout, m->chains, &e)) < 0) {
		ug_cli_err("%s/%" PRIu64 ": %s", channel, d.version, e.msg);
		goto out;
	}
	if ((r = previous_serial(s, channel, d.version, &prev)) < 0)
		goto out;
	if (prev && prev->serial >= (uint64_t)INT64_MAX) {
		ug_cli_err("rollout document of %s/%" PRIu64 " is at the last serial", channel,
			   d.version);
		r = -E2BIG;
		goto out;
	}
	d.channel = (char *)channel;
	d.serial = prev ? prev->serial + 1 : 1;
	d.created = ug_now();
	d.rollout = rollout;
	r = ug_rollout_doc_write(&d, &doc, &len, &e);
	if (r < 0) {
		ug_cli_err("cannot write the rollout document: %s", e.msg);
		goto out;
	}
	r = ug_sign(key, UG_SIGN_CONTEXT_ROLLOUT, doc, len, &sig, &sig_len);
	if (r < 0) {
		ug_cli_err("cannot sign the rollout document: %s", strerror(-r));
		goto out;
	}
	r = ug_store_rollout_put(s, channel, d.version, doc, len, sig, sig_len);
	if (r < 0) {
		ug_cli_err("cannot store the rollout document of %s/%" PRIu64 " in '%s': %s", channel,
			   d.version, s->path, strerror(-r));
		goto out;
	}
	if (json) {
		fwrite(doc, 1, len, stdout);
	} else {
		ug_rollout_format(rollout, now, sizeof(now));
		ug_rollout_format(prev ? prev->rollout : m->rollout, was, sizeof(was));
		ug_cli_info("rollout of %s/%" PRIu64 " is now %s (serial %" PRIu64 "; was %s)", channel,
			    d.version, now, d.serial, was);
	}
out:
	ug_rollout_doc_free(prev);
	ug_manifest_free(m);
	free(mjson);
	free(doc);
	free(sig);
	return r;
}

int cmd_rollout(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "key", required_argument, NULL, 'k' },
		{ "channel", required_argument, NULL, 'c' },
		{ "groups", required_argument, NULL, 'G' },
		{ "terminals", required_argument, NULL, 'T' },
		{ "json", no_argument, NULL, 'J' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	const char *keyfile = getenv("UPGRID_KEY"), *channel = UG_DEFAULT_CHANNEL;
	const char *groups = NULL;
	/* each --terminals is one pattern (a pattern may hold a comma) */
	char **patterns = calloc((size_t)argc + 1, sizeof(*patterns));
	size_t npatterns = 0;
	struct ug_rollout *rollout = NULL;
	struct ug_store *s = NULL;
	struct ug_error e = { "" };
	struct ug_seckey key;
	bool json = false;
	int c, r, rc;

	if (!patterns) {
		ug_cli_err("out of memory");
		return UG_EXIT_FAILURE;
	}
	if (!keyfile || !*keyfile)
		keyfile = UG_DEFAULT_KEY;
	while ((c = getopt_long(argc, argv, "k:c:h", opts, NULL)) != -1) {
		switch (c) {
		case 'k':
			keyfile = optarg;
			break;
		case 'c':
			channel = optarg;
			break;
		case 'G':
			groups = optarg;
			break;
		case 'T':
			patterns[npatterns++] = optarg;
			break;
		case 'J':
			json = true;
			break;
		case 'h':
			free(patterns);
			fputs(usage_text, stdout);
			return UG_EXIT_OK;
		default:
			free(patterns);
			return ug_cli_usage_error("rollout", NULL);
		}
	}
	if (argc - optind != 2) {
		free(patterns);
		return ug_cli_usage_error("rollout", "expected VERSION and PERCENT");
	}
	if (ug_channel_check(channel, &e) < 0) {
		free(patterns);
		return ug_cli_usage_error("rollout", "%s", e.msg);
	}
	r = ug_rollout_from_args(argv[optind + 1], groups, patterns, npatterns, &rollout, &e);
	free(patterns);
	if (r == -ENOMEM) {
		ug_cli_err("out of memory");
		return UG_EXIT_FAILURE;
	}
	if (r < 0)
		return ug_cli_usage_error("rollout", "%s", e.msg);

	r = ug_seckey_load(keyfile, &key, &e);
	if (r < 0) {
		ug_cli_err("cannot load signing key: %s%s", e.msg,
			   r == -ENOENT ? " (make one with 'upgrid keygen -f FILE')" : "");
		ug_rollout_free(rollout);
		return r == -EACCES ? UG_EXIT_USAGE : ug_cli_exit_code(r);
	}
	r = ug_cli_open_repo(&s);
	if (r == 0)
		r = write_rollout(s, &key, channel, argv[optind], rollout, json);
	rc = ug_cli_exit_code(r);
	ug_seckey_wipe(&key);
	ug_rollout_free(rollout);
	ug_store_free(s);
	return rc;
}

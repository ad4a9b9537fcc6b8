/* cmd-log.c - upgrid log: the versions of a channel, newest first. */
#include "config.h"

#include <getopt.h>
#include <inttypes.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "manifest.h"
#include "sign.h"

static const char usage_text[] =
	"usage: upgrid log [-c CHANNEL] [-n COUNT] [--pubkey FILE] [--json]\n"
	"\n"
	"List the versions of CHANNEL, newest first, with their creation time,\n"
	"file count, size and message. Each manifest's signature is checked.\n"
	"\n"
	"  -c, --channel CHANNEL  channel (default: " UG_DEFAULT_CHANNEL ")\n"
	"  -n, --max-count COUNT  show at most COUNT versions\n"
	"      --pubkey FILE      trusted public key (default: REPO/master.pub)\n"
	"      --json             print a JSON array\n"
	"  -h, --help             show this help\n";

int cmd_log(int argc, char **argv)
{
	static const struct option opts[] = {
		UG_CLI_READ_OPTIONS,
		{ "max-count", required_argument, NULL, 'n' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	struct ug_cli_read ro;
	uint64_t *versions = NULL, max = UINT64_MAX, ref = 0;
	size_t n = 0, shown = 0;
	json_t *arr = NULL;
	int c, r, rc = UG_EXIT_OK;

	ug_cli_read_init(&ro);
	while ((c = getopt_long(argc, argv, "c:n:h", opts, NULL)) != -1) {
		if (ug_cli_read_opt(&ro, c, optarg))
			continue;
		switch (c) {
		case 'n':
			if (ug_parse_u64(optarg, UINT32_MAX, &max) < 0)
				return ug_cli_usage_error("log", "-n takes a number");
			break;
		case 'h':
			fputs(usage_text, stdout);
			return UG_EXIT_OK;
		default:
			return ug_cli_usage_error("log", NULL);
		}
	}
	if (optind < argc)
		return ug_cli_usage_error("log", "unexpected argument '%s'", argv[optind]);
	rc = ug_cli_read_open(&ro, "log");
	if (rc != UG_EXIT_OK)
		goto out;
	r = ug_cli_resolve_version(ro.s, ro.channel, "latest", &ref);
	if (r < 0) {
		rc = ug_cli_exit_code(r);
		goto out;
	}
	r = ug_store_versions(ro.s, ro.channel, &versions, &n);
	if (r < 0) {
		ug_cli_err("cannot list versions of '%s': %s", ro.channel, strerror(-r));
		rc = UG_EXIT_FAILURE;
		goto out;
	}
	if (ro.json)
		arr = json_array();
	for (size_t i = n; i-- > 0 && shown < max;) {
		struct ug_manifest *m = NULL;
		char created[32];
		uint64_t bytes = 0;

		if (versions[i] > ref)
			continue; /* an interrupted publish: not part of the channel */
		r = ug_cli_load_manifest(ro.s, ro.pk, ro.channel, versions[i], &m, NULL, NULL);
		if (r < 0) {
			rc = ug_cli_exit_code(r);
			continue;
		}
		for (size_t f = 0; f < m->nfiles; f++)
			bytes += m->files[f].size;
		ug_time_format(m->created, created);
		if (ro.json) {
			json_t *o = json_object();
			char expires[32];
			ug_time_format(m->expires, expires);
			json_object_set_new(o, "version", json_integer((json_int_t)m->version));
			json_object_set_new(o, "parent", json_integer((json_int_t)m->parent));
			json_object_set_new(o, "created", json_string(created));
			json_object_set_new(o, "expires", json_string(expires));
			json_object_set_new(o, "files", json_integer((json_int_t)m->nfiles));
			json_object_set_new(o, "bytes", json_integer((json_int_t)bytes));
			json_object_set_new(o, "message", m->message ? json_string(m->message) : json_null());
			json_array_append_new(arr, o);
		} else {
			char b[32];
			ug_bytes_format(bytes, b);
			printf("%-6" PRIu64 " %s  %6zu files %10s  %s\n", m->version, created, m->nfiles, b,
			       m->message ? m->message : "");
		}
		ug_manifest_free(m);
		shown++;
	}
	if (ro.json) {
		char *text = json_dumps(arr, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
		if (text)
			puts(text);
		free(text);
		json_decref(arr);
	}
out:
	free(versions);
	ug_cli_read_release(&ro);
	return rc;
}

/* cmd-show.c - upgrid show: one version's manifest. */
#include "config.h"

#include <getopt.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "manifest.h"
#include "sign.h"

static const char usage_text[] =
	"usage: upgrid show [-c CHANNEL] [--pubkey FILE] [--json] [VERSION]\n"
	"\n"
	"Show the manifest of VERSION (a number, or 'latest', the default):\n"
	"its header, every file with mode, size, class, action and the deltas\n"
	"available, and the changes from the parent version. The signature is\n"
	"checked first; --json prints the signed document itself.\n"
	"\n"
	"  -c, --channel CHANNEL  channel (default: " UG_DEFAULT_CHANNEL ")\n"
	"      --pubkey FILE      trusted public key (default: REPO/master.pub)\n"
	"      --json             print the manifest document (JSON)\n"
	"  -h, --help             show this help\n";

static void print_manifest(const struct ug_manifest *m)
{
	char created[32], expires[32], hex[UG_HASH_HEX_LEN + 1];

	ug_time_format(m->created, created);
	ug_time_format(m->expires, expires);
	printf("version  %s/%" PRIu64 "\n", m->channel, m->version);
	if (m->parent)
		printf("parent   %" PRIu64 "\n", m->parent);
	printf("created  %s\n", created);
	printf("expires  %s\n", expires);
	if (m->key_id)
		printf("key      %s\n", m->key_id);
	if (m->message)
		printf("message  %s\n", m->message);
	printf("files    %zu in %zu directories\n\n", m->nfiles, m->ndirs);
	for (size_t i = 0; i < m->nfiles; i++) {
		const struct ug_mfile *f = &m->files[i];
		ug_hash_hex(&f->hash, hex);
		printf("%04o %10" PRIu64 " %-8s %-8s %.16s  %s\n", (unsigned)f->mode, f->size,
		       ug_class_name(f->cls), ug_action_name(f->action), hex, f->path);
		for (size_t d = 0; d < f->ndeltas; d++) {
			char from[UG_HASH_HEX_LEN + 1];
			ug_hash_hex(&f->deltas[d].from, from);
			printf("%27s delta %s from %.16s: %" PRIu64 " bytes\n", "",
			       ug_codec_name(f->deltas[d].codec), from, f->deltas[d].size);
		}
	}
	for (size_t i = 0; i < m->nrenamed; i++)
		printf("renamed  %s -> %s\n", m->renamed[i].from, m->renamed[i].to);
	for (size_t i = 0; i < m->nremoved; i++)
		printf("removed  %s\n", m->removed[i].path);
	for (size_t i = 0; i < m->nbundles; i++)
		printf("bundle   from %" PRIu64 ": %zu files over %zu bases, %" PRIu64 " bytes\n",
		       m->bundles[i].from, m->bundles[i].ntargets, m->bundles[i].nbases,
		       m->bundles[i].size);
}

int cmd_show(int argc, char **argv)
{
	static const struct option opts[] = {
		UG_CLI_READ_OPTIONS,
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	const char *spec = "latest";
	struct ug_cli_read ro;
	struct ug_manifest *m = NULL;
	char *json = NULL;
	size_t jl = 0;
	uint64_t v;
	int c, r, rc;

	ug_cli_read_init(&ro);
	while ((c = getopt_long(argc, argv, "c:h", opts, NULL)) != -1) {
		if (ug_cli_read_opt(&ro, c, optarg))
			continue;
		switch (c) {
		case 'h':
			fputs(usage_text, stdout);
			return UG_EXIT_OK;
		default:
			return ug_cli_usage_error("show", NULL);
		}
	}
	if (argc - optind > 1)
		return ug_cli_usage_error("show", "expected at most one VERSION");
	if (optind < argc)
		spec = argv[optind];
	rc = ug_cli_read_open(&ro, "show");
	if (rc != UG_EXIT_OK)
		goto out;
	r = ug_cli_resolve_version(ro.s, ro.channel, spec, &v);
	if (r == 0)
		r = ug_cli_load_manifest(ro.s, ro.pk, ro.channel, v, &m, &json, &jl);
	if (r == 0) {
		if (ro.json)
			fwrite(json, 1, jl, stdout);
		else
			print_manifest(m);
	}
	rc = ug_cli_exit_code(r);
out:
	ug_manifest_free(m);
	free(json);
	ug_cli_read_release(&ro);
	return rc;
}

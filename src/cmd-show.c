/* cmd-show.c - upgrid show: one version's manifest. */
#include "config.h"

#include <getopt.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "cli.h"
#include "manifest.h"
#include "rollout.h"
#include "sign.h"

static const char usage_text[] =
	"usage: upgrid show [-c CHANNEL] [--pubkey FILE] [--rollout] [--json] [VERSION]\n"
	"\n"
	"Show the manifest of VERSION (a number, or 'latest', the default):\n"
	"its header with the rollout in force, every file with mode, size, class,\n"
	"action and the deltas available, and the changes from the parent version.\n"
	"The signature is checked first; --json prints the signed document itself.\n"
	"\n"
	"  -c, --channel CHANNEL  channel (default: " UG_DEFAULT_CHANNEL ")\n"
	"      --pubkey FILE      trusted public key (default: REPO/master.pub)\n"
	"      --rollout          show only the rollout in force: the rollout\n"
	"                         document's (upgrid rollout) or else the manifest's\n"
	"      --json             print the manifest document (JSON), or with\n"
	"                         the option above the rollout in force as JSON\n"
	"  -h, --help             show this help\n";

/* The rollout of a version as terminals will see it. */
struct shown_rollout {
	const struct ug_rollout *in_force;  /* NULL: everyone */
	struct ug_rollout_doc *doc;         /* the valid document, or NULL */
	int doc_error;                      /* a document that failed: -errno */
	char doc_msg[512];
};

/* Load and check the version's rollout document; a bad one is reported
 * and the manifest's rollout is in force, as for a terminal. */
static void load_rollout(struct ug_cli_read *ro, const struct ug_manifest *m,
			 struct shown_rollout *out)
{
	struct ug_error e = { "" };
	char *doc = NULL, *sig = NULL;
	size_t len = 0, sig_len = 0;
	int r;

	memset(out, 0, sizeof(*out));
	out->in_force = m->rollout;
	r = ug_store_rollout_get(ro->s, m->channel, m->version, &doc, &len, &sig, &sig_len);
	if (r == -EKEYREJECTED)
		r = ug_error_set(&e, r, "rollout document of version %" PRIu64 " of '%s' has no "
				 "signature file", m->version, m->channel);
	else if (r < 0 && r != -ENOENT)
		r = ug_error_set(&e, r, "cannot read the rollout document of version %" PRIu64
				 " of '%s': %s", m->version, m->channel, strerror(-r));
	if (r == 0)
		r = ug_rollout_in_force(m, ro->pk, doc, len, sig, sig_len, &out->doc, &out->in_force,
					&e);
	if (r < 0 && r != -ENOENT) {
		out->doc_error = r;
		snprintf(out->doc_msg, sizeof(out->doc_msg), "%s", e.msg);
		ug_cli_warn("%s; it is not used: terminals follow the manifest's rollout (write a "
			    "new document with 'upgrid rollout')", e.msg);
	}
	free(doc);
	free(sig);
}

static void print_rollout(const struct ug_manifest *m, const struct shown_rollout *sr,
			  const char *label)
{
	char now[512], stated[512], when[32];

	ug_rollout_format(sr->in_force, now, sizeof(now));
	if (!sr->doc) {
		printf("%s%s%s\n", label, now, m->rollout ? " (stated by the manifest)" : "");
		return;
	}
	ug_rollout_format(m->rollout, stated, sizeof(stated));
	ug_time_format(sr->doc->created, when);
	printf("%s%s (rollout document serial %" PRIu64 " of %s; the manifest states %s)\n", label,
	       now, sr->doc->serial, when, stated);
}

static void print_rollout_json(const struct ug_manifest *m, const struct shown_rollout *sr)
{
	json_t *o = json_object();
	char when[32], *s;

	json_object_set_new(o, "channel", json_string(m->channel));
	json_object_set_new(o, "version", json_integer((json_int_t)m->version));
	json_object_set_new(o, "rollout", sr->in_force ? ug_rollout_json(sr->in_force) : json_null());
	json_object_set_new(o, "source", json_string(sr->doc ? "document" : "manifest"));
	json_object_set_new(o, "serial", sr->doc ? json_integer((json_int_t)sr->doc->serial) :
			    json_null());
	if (sr->doc)
		ug_time_format(sr->doc->created, when);
	json_object_set_new(o, "created", sr->doc ? json_string(when) : json_null());
	json_object_set_new(o, "manifest_rollout", m->rollout ? ug_rollout_json(m->rollout) :
			    json_null());
	json_object_set_new(o, "document_error", sr->doc_error ? json_string(sr->doc_msg) :
			    json_null());
	s = json_dumps(o, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
	if (s)
		puts(s);
	free(s);
	json_decref(o);
}

static void print_manifest(const struct ug_manifest *m, const struct shown_rollout *sr)
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
	print_rollout(m, sr, "rollout  ");
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
		{ "rollout", no_argument, NULL, 'O' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	const char *spec = "latest";
	struct ug_cli_read ro;
	struct ug_manifest *m = NULL;
	struct shown_rollout sr = { 0 };
	bool only_rollout = false;
	char *json = NULL;
	size_t jl = 0;
	uint64_t v;
	int c, r, rc;

	ug_cli_read_init(&ro);
	while ((c = getopt_long(argc, argv, "c:h", opts, NULL)) != -1) {
		if (ug_cli_read_opt(&ro, c, optarg))
			continue;
		switch (c) {
		case 'O':
			only_rollout = true;
			break;
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
	if (r == 0 && only_rollout) {
		load_rollout(&ro, m, &sr);
		if (ro.json)
			print_rollout_json(m, &sr);
		else {
			char label[UG_CHANNEL_MAX + 32];

			snprintf(label, sizeof(label), "%s/%" PRIu64 ": ", m->channel, m->version);
			print_rollout(m, &sr, label);
		}
		/* asked for the rollout: a document that fails is the answer's fault */
		r = sr.doc_error;
	} else if (r == 0) {
		if (ro.json) {
			fwrite(json, 1, jl, stdout);
		} else {
			load_rollout(&ro, m, &sr);
			print_manifest(m, &sr);
		}
	}
	rc = ug_cli_exit_code(r);
out:
	ug_rollout_doc_free(sr.doc);
	ug_manifest_free(m);
	free(json);
	ug_cli_read_release(&ro);
	return rc;
}

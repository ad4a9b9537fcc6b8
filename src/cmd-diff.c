/* cmd-diff.c - upgrid diff: what changed between two versions. */
#include "config.h"

#include <getopt.h>
#include <inttypes.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"
#include "manifest.h"
#include "sign.h"
#include "structure.h"

static const char usage_text[] =
	"usage: upgrid diff [-c CHANNEL] [--pubkey FILE] [--json] V1 V2\n"
	"\n"
	"Show the files added, removed, modified, renamed (same content under a\n"
	"new path) and with changed mode or class between versions V1 and V2\n"
	"(numbers, or 'latest').\n"
	"\n"
	"  -c, --channel CHANNEL  channel (default: " UG_DEFAULT_CHANNEL ")\n"
	"      --pubkey FILE      trusted public key (default: REPO/master.pub)\n"
	"      --json             print a JSON object\n"
	"  -h, --help             show this help\n";

struct change {
	const char *kind; /* added, removed, modified, renamed, mode, class */
	const struct ug_mfile *a, *b;
	struct ug_struct_diff *structure; /* owned when computed here */
	bool own;
};

/* The structural change of a modified config/data file: as recorded in
 * the newer manifest when it is the direct successor, else computed from
 * the two stored contents (without the tree's column-rename rules, which
 * live in the master tree, so a rename shows as a removal and an addition). */
static void attach_structure(struct ug_store *s, const struct ug_manifest *a,
			     const struct ug_manifest *b, struct change *c)
{
	uint8_t *old = NULL, *new = NULL;
	int fo = -1, fn = -1;

	if (c->b->cls != UG_CLASS_CONFIG && c->b->cls != UG_CLASS_DATA)
		return;
	if (b->parent == a->version && c->b->structure) {
		c->structure = c->b->structure;
		return;
	}
	if (c->a->cls != c->b->cls || c->a->size > UG_STRUCT_FILE_MAX ||
	    c->b->size > UG_STRUCT_FILE_MAX)
		return;
	old = malloc(c->a->size + 1);
	new = malloc(c->b->size + 1);
	if (old && new && ug_store_object_tmp(s, &c->a->hash, &fo) == 0 &&
	    ug_store_object_tmp(s, &c->b->hash, &fn) == 0 &&
	    ug_read_full(fo, old, c->a->size) == (ssize_t)c->a->size &&
	    ug_read_full(fn, new, c->b->size) == (ssize_t)c->b->size &&
	    ug_struct_compare(c->b->cls, c->b->path, old, c->a->size, new, c->b->size, NULL, 0,
			      &c->structure, NULL) == 0)
		c->own = true;
	if (fo >= 0)
		close(fo);
	if (fn >= 0)
		close(fn);
	free(old);
	free(new);
}

static void print_names(const char *sign, const char *what, char *const *v, size_t n)
{
	for (size_t i = 0; i < n; i++)
		printf("          %s %s %s\n", sign, what, v[i]);
}

static void print_keys(const char *sign, const struct ug_strpair *v, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		if (v[i].a[0])
			printf("          %s key [%s] %s\n", sign, v[i].a, v[i].b);
		else
			printf("          %s key %s\n", sign, v[i].b);
	}
}

static void print_structure(const struct ug_struct_diff *d, enum ug_class cls)
{
	printf("          %s %s change: %s\n", ug_struct_format_name(d->format),
	       d->structural ? "structural" : "content-only",
	       ug_action_name(ug_struct_action(cls, d, true)));
	print_names("+", "section", d->sections_added, d->nsections_added);
	print_names("-", "section", d->sections_removed, d->nsections_removed);
	print_keys("+", d->keys_added, d->nkeys_added);
	print_keys("-", d->keys_removed, d->nkeys_removed);
	print_keys("~", d->keys_changed, d->nkeys_changed);
	print_names("+", "column", d->columns_added, d->ncolumns_added);
	print_names("-", "column", d->columns_removed, d->ncolumns_removed);
	for (size_t i = 0; i < d->ncolumns_renamed; i++)
		printf("          > column %s -> %s\n", d->columns_renamed[i].a, d->columns_renamed[i].b);
	if (d->reordered)
		printf("          columns reordered\n");
}

static const struct ug_mfile *find_by_hash(const struct ug_manifest *m, const struct ug_hash *h,
					   const struct ug_manifest *other)
{
	for (size_t i = 0; i < m->nfiles; i++)
		if (ug_hash_eq(&m->files[i].hash, h) && !ug_manifest_find(other, m->files[i].path))
			return &m->files[i];
	return NULL;
}

static int collect(const struct ug_manifest *a, const struct ug_manifest *b,
		   struct change **ret, size_t *ret_n)
{
	size_t cap = a->nfiles + b->nfiles + 1, n = 0;
	struct change *v = calloc(cap, sizeof(*v));
	bool *claimed = calloc(b->nfiles + 1, sizeof(*claimed));

	if (!v || !claimed) {
		free(v);
		free(claimed);
		return -ENOMEM;
	}
	for (size_t i = 0; i < a->nfiles; i++) {
		const struct ug_mfile *fa = &a->files[i], *fb = ug_manifest_find(b, fa->path);
		if (fb) {
			if (!ug_hash_eq(&fa->hash, &fb->hash))
				v[n++] = (struct change){ .kind = "modified", .a = fa, .b = fb };
			else if (fa->mode != fb->mode)
				v[n++] = (struct change){ .kind = "mode", .a = fa, .b = fb };
			else if (fa->cls != fb->cls)
				v[n++] = (struct change){ .kind = "class", .a = fa, .b = fb };
			continue;
		}
		fb = find_by_hash(b, &fa->hash, a);
		if (fb && !claimed[fb - b->files]) {
			claimed[fb - b->files] = true;
			v[n++] = (struct change){ .kind = "renamed", .a = fa, .b = fb };
		} else {
			v[n++] = (struct change){ .kind = "removed", .a = fa, .b = NULL };
		}
	}
	for (size_t i = 0; i < b->nfiles; i++)
		if (!ug_manifest_find(a, b->files[i].path) && !claimed[i])
			v[n++] = (struct change){ .kind = "added", .a = NULL, .b = &b->files[i] };
	free(claimed);
	*ret = v;
	*ret_n = n;
	return 0;
}

int cmd_diff(int argc, char **argv)
{
	static const struct option opts[] = {
		UG_CLI_READ_OPTIONS,
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	struct ug_cli_read ro;
	struct ug_manifest *a = NULL, *b = NULL;
	struct change *ch = NULL;
	size_t n = 0;
	uint64_t va, vb;
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
			return ug_cli_usage_error("diff", NULL);
		}
	}
	if (argc - optind != 2)
		return ug_cli_usage_error("diff", "expected two versions");
	rc = ug_cli_read_open(&ro, "diff");
	if (rc != UG_EXIT_OK)
		goto out;
	r = ug_cli_resolve_version(ro.s, ro.channel, argv[optind], &va);
	if (r == 0)
		r = ug_cli_resolve_version(ro.s, ro.channel, argv[optind + 1], &vb);
	if (r == 0)
		r = ug_cli_load_manifest(ro.s, ro.pk, ro.channel, va, &a, NULL, NULL);
	if (r == 0)
		r = ug_cli_load_manifest(ro.s, ro.pk, ro.channel, vb, &b, NULL, NULL);
	if (r == 0)
		r = collect(a, b, &ch, &n);
	for (size_t i = 0; r == 0 && i < n; i++)
		if (strcmp(ch[i].kind, "modified") == 0)
			attach_structure(ro.s, a, b, &ch[i]);
	if (r == 0 && ro.json) {
		json_t *o = json_object(), *arr = json_array();
		char *text;
		json_object_set_new(o, "channel", json_string(ro.channel));
		json_object_set_new(o, "from", json_integer((json_int_t)va));
		json_object_set_new(o, "to", json_integer((json_int_t)vb));
		for (size_t i = 0; i < n; i++) {
			json_t *e = json_object();
			json_object_set_new(e, "change", json_string(ch[i].kind));
			if (ch[i].a)
				json_object_set_new(e, "old_path", json_string(ch[i].a->path));
			if (ch[i].b)
				json_object_set_new(e, "path", json_string(ch[i].b->path));
			if (ch[i].a && ch[i].b && ch[i].a->mode != ch[i].b->mode) {
				char m1[8], m2[8];
				snprintf(m1, sizeof(m1), "%04o", (unsigned)ch[i].a->mode);
				snprintf(m2, sizeof(m2), "%04o", (unsigned)ch[i].b->mode);
				json_object_set_new(e, "old_mode", json_string(m1));
				json_object_set_new(e, "mode", json_string(m2));
			}
			if (ch[i].structure) {
				json_t *st = ug_struct_diff_json(ch[i].structure);
				if (st) {
					json_object_set_new(st, "action", json_string(ug_action_name(
						ug_struct_action(ch[i].b->cls, ch[i].structure, true))));
					json_object_set_new(e, "structure", st);
				}
			}
			if (ch[i].a && ch[i].b && ch[i].a->cls != ch[i].b->cls) {
				json_object_set_new(e, "old_class", json_string(ug_class_name(ch[i].a->cls)));
				json_object_set_new(e, "class", json_string(ug_class_name(ch[i].b->cls)));
			}
			json_array_append_new(arr, e);
		}
		json_object_set_new(o, "changes", arr);
		text = json_dumps(o, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
		if (text)
			puts(text);
		free(text);
		json_decref(o);
	} else if (r == 0) {
		for (size_t i = 0; i < n; i++) {
			const struct change *x = &ch[i];
			if (strcmp(x->kind, "added") == 0)
				printf("added     %s\n", x->b->path);
			else if (strcmp(x->kind, "removed") == 0)
				printf("removed   %s\n", x->a->path);
			else if (strcmp(x->kind, "renamed") == 0)
				printf("renamed   %s -> %s\n", x->a->path, x->b->path);
			else if (strcmp(x->kind, "modified") == 0) {
				printf("modified  %s (%" PRIu64 " -> %" PRIu64 " bytes)\n", x->b->path,
				       x->a->size, x->b->size);
				if (x->structure)
					print_structure(x->structure, x->b->cls);
			}
			else if (strcmp(x->kind, "mode") == 0)
				printf("mode      %s (%04o -> %04o)\n", x->b->path, (unsigned)x->a->mode,
				       (unsigned)x->b->mode);
			else
				printf("class     %s (%s -> %s)\n", x->b->path, ug_class_name(x->a->cls),
				       ug_class_name(x->b->cls));
		}
		if (n == 0)
			ug_cli_info("versions %" PRIu64 " and %" PRIu64 " hold the same files", va, vb);
	}
	rc = ug_cli_exit_code(r);
out:
	for (size_t i = 0; i < n; i++)
		if (ch[i].own)
			ug_struct_diff_free(ch[i].structure);
	free(ch);
	ug_manifest_free(a);
	ug_manifest_free(b);
	ug_cli_read_release(&ro);
	return rc;
}

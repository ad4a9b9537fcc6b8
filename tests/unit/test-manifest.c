/* test-manifest.c - unit tests for src/manifest.c: the format 1 JSON
 * layout, round trips, and every rejection a hostile manifest can earn. */
#include "config.h"

#include <criterion/criterion.h>

#include <fcntl.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "manifest.h"
#include "util.h"

#define DATA UG_TEST_DATA "/manifest/"

static void hash_of(struct ug_hash *h, const char *s)
{
	ug_hash_buf(s, strlen(s), h, NULL);
}

static char *xstrdup(const char *s)
{
	char *d = strdup(s);

	cr_assert_not_null(d);
	return d;
}

static int64_t t_of(const char *s)
{
	int64_t t;

	cr_assert_eq(ug_time_parse(s, &t), 0, "time '%s'", s);
	return t;
}

static void add_dir(struct ug_manifest *m, const char *path, uint32_t mode)
{
	struct ug_mdir *d = ug_manifest_add_dir(m);

	cr_assert_not_null(d);
	d->path = xstrdup(path);
	d->mode = mode;
}

static struct ug_mfile *add_file(struct ug_manifest *m, const char *path, const char *content,
				 enum ug_class cls, enum ug_action action, uint64_t stored)
{
	struct ug_mfile *f = ug_manifest_add_file(m);

	cr_assert_not_null(f);
	f->path = xstrdup(path);
	f->mode = 0644;
	f->size = strlen(content);
	ug_hash_buf(content, strlen(content), &f->hash, &f->xxh);
	f->stored = stored;
	f->cls = cls;
	f->action = action;
	return f;
}

/* A manifest using every field; sizes are distinct numbers so tests can
 * find and replace them in the JSON text. */
static struct ug_manifest *build(void)
{
	struct ug_manifest *m = ug_manifest_new();
	struct ug_mfile *f;
	struct ug_mdelta *d;
	struct ug_mremoved *rm;
	struct ug_mrename *rn;
	struct ug_mbundle *b;

	cr_assert_not_null(m);
	m->channel = xstrdup("stable");
	m->version = 3;
	m->parent = 2;
	m->created = t_of("2026-11-25T13:40:00Z");
	m->expires = t_of("2026-12-25T13:40:00Z");
	m->message = xstrdup("release 3: \"quoted\", tab\tand \xc3\xbcnicode");
	m->key_id = xstrdup("0123456789abcdef");

	add_dir(m, "bin", 0755);
	add_dir(m, "etc", 0750);
	add_dir(m, "etc/app", 02700);

	f = add_file(m, "bin/app", "app v3", UG_CLASS_BINARY, UG_ACTION_PATCH, 4001);
	f->mode = 0755;
	d = ug_mfile_add_delta(f);
	cr_assert_not_null(d);
	hash_of(&d->from, "app v2");
	d->codec = UG_CODEC_ZSTD_PREFIX;
	hash_of(&d->id, "delta v2->v3");
	d->size = 1201;
	d->memory = 1301;
	d = ug_mfile_add_delta(f);
	cr_assert_not_null(d);
	hash_of(&d->from, "app v1");
	d->codec = UG_CODEC_RSYNC_ZSTD;
	hash_of(&d->id, "delta v1->v3");
	d->size = 1202;
	d->memory = 1302;
	add_file(m, "etc/app/app.conf", "k=v\n", UG_CLASS_CONFIG, UG_ACTION_MERGE, 4002);
	add_file(m, "etc/motd", "hello\n", UG_CLASS_CONFIG, UG_ACTION_REPLACE, 4003);
	add_file(m, "readme", "read me\n", UG_CLASS_DATA, UG_ACTION_MIGRATE, 4004);

	rm = ug_manifest_add_removed(m);
	cr_assert_not_null(rm);
	rm->path = xstrdup("old.txt");
	hash_of(&rm->hash, "old");
	rn = ug_manifest_add_renamed(m);
	cr_assert_not_null(rn);
	rn->from = xstrdup("etc/issue");
	rn->to = xstrdup("etc/motd");
	hash_of(&rn->hash, "hello\n");

	b = ug_manifest_add_bundle(m);
	cr_assert_not_null(b);
	b->from = 2;
	hash_of(&b->id, "bundle 2->3");
	b->size = 5001;
	b->memory = 5002;
	b->nbases = 2;
	b->bases = calloc(2, sizeof(*b->bases));
	cr_assert_not_null(b->bases);
	hash_of(&b->bases[0], "app v2");
	hash_of(&b->bases[1], "hello v2\n");
	b->ntargets = 2;
	b->targets = calloc(2, sizeof(*b->targets));
	b->target_sizes = calloc(2, sizeof(*b->target_sizes));
	cr_assert(b->targets && b->target_sizes);
	b->targets[0] = m->files[0].hash;
	b->target_sizes[0] = m->files[0].size;
	b->targets[1] = m->files[2].hash;
	b->target_sizes[1] = m->files[2].size;
	return m;
}

static char *write_ok(const struct ug_manifest *m, size_t *ret_len)
{
	struct ug_error err = { "" };
	char *out = NULL;
	size_t len = 0;
	int r = ug_manifest_write(m, &out, &len, &err);

	cr_assert_eq(r, 0, "write: %d %s", r, err.msg);
	cr_assert_not_null(out);
	cr_assert_eq(strlen(out), len, "output is NUL-terminated at its length");
	if (ret_len)
		*ret_len = len;
	return out;
}

/* The JSON of build(), as written. */
static char *valid_doc(void)
{
	struct ug_manifest *m = build();
	char *doc = write_ok(m, NULL);

	ug_manifest_free(m);
	return doc;
}

static struct ug_manifest *parse_ok(const char *doc, size_t len)
{
	struct ug_error err = { "" };
	struct ug_manifest *m = NULL;
	int r = ug_manifest_parse(doc, len, &m, &err);

	cr_assert_eq(r, 0, "parse: %d %s", r, err.msg);
	cr_assert_not_null(m);
	return m;
}

/* doc with the first occurrence of from replaced by to (which must exist). */
static char *subst(const char *doc, const char *from, const char *to)
{
	const char *p = strstr(doc, from);
	size_t a, fl = strlen(from), tl = strlen(to), n;
	char *out;

	cr_assert_not_null(p, "'%s' not found in the document", from);
	a = (size_t)(p - doc);
	n = strlen(doc) - fl + tl;
	out = malloc(n + 1);
	cr_assert_not_null(out);
	memcpy(out, doc, a);
	memcpy(out + a, to, tl);
	memcpy(out + a + tl, p + fl, strlen(p + fl) + 1);
	return out;
}

static void expect_parse_fail_len(const char *doc, size_t len, int rc, const char *want)
{
	struct ug_error err = { "" };
	struct ug_manifest *m = (struct ug_manifest *)0x1;
	int r = ug_manifest_parse(doc, len, &m, &err);

	cr_assert_eq(r, rc, "parse gave %d (%s), want %d", r, err.msg, rc);
	cr_assert_eq(m, (struct ug_manifest *)0x1, "ret must be untouched on failure");
	cr_assert_not_null(strstr(err.msg, want), "message '%s' lacks '%s'", err.msg, want);
}

static void expect_parse_fail(const char *doc, int rc, const char *want)
{
	expect_parse_fail_len(doc, strlen(doc), rc, want);
}

/* Replace from with to in the valid document and expect a rejection. */
static void expect_subst_fail(const char *from, const char *to, int rc, const char *want)
{
	char *doc = valid_doc();
	char *bad = subst(doc, from, to);

	expect_parse_fail(bad, rc, want);
	free(bad);
	free(doc);
}

/* validate and write (which validates first) both refuse m; m is freed. */
static void expect_invalid(struct ug_manifest *m, int rc, const char *want)
{
	struct ug_error err = { "" };
	char *out = (char *)0x1;
	size_t len = 7;
	int r = ug_manifest_validate(m, &err);

	cr_assert_eq(r, rc, "validate gave %d (%s), want %d", r, err.msg, rc);
	cr_assert_not_null(strstr(err.msg, want), "message '%s' lacks '%s'", err.msg, want);
	err.msg[0] = '\0';
	r = ug_manifest_write(m, &out, &len, &err);
	cr_assert_eq(r, rc, "write gave %d (%s), want %d", r, err.msg, rc);
	cr_assert_eq(out, (char *)0x1);
	cr_assert_eq(len, 7);
	cr_assert_not_null(strstr(err.msg, want));
	ug_manifest_free(m);
}

static void replace_path(char **slot, const char *path)
{
	free(*slot);
	*slot = xstrdup(path);
}

static void assert_hash_eq(const struct ug_hash *a, const struct ug_hash *b, const char *what)
{
	cr_assert(ug_hash_eq(a, b), "%s differs", what);
}

static void assert_strv_eq(char *const *a, size_t na, char *const *b, size_t nb, const char *what)
{
	cr_assert_eq(na, nb, "%s: %zu vs %zu entries", what, na, nb);
	for (size_t i = 0; i < na; i++)
		cr_assert_str_eq(a[i], b[i], "%s[%zu]", what, i);
}

static void assert_pairs_eq(const struct ug_strpair *a, size_t na, const struct ug_strpair *b,
			    size_t nb, const char *what)
{
	cr_assert_eq(na, nb, "%s: %zu vs %zu entries", what, na, nb);
	for (size_t i = 0; i < na; i++) {
		cr_assert_str_eq(a[i].a, b[i].a, "%s[%zu][0]", what, i);
		cr_assert_str_eq(a[i].b, b[i].b, "%s[%zu][1]", what, i);
	}
}

static void assert_structure_eq(const struct ug_struct_diff *a, const struct ug_struct_diff *b)
{
	cr_assert_eq(!a, !b, "structure present on one side only");
	if (!a)
		return;
	cr_assert_eq(a->format, b->format);
	cr_assert_eq(a->structural, b->structural);
	cr_assert_eq(a->content, b->content);
	cr_assert_eq(a->reordered, b->reordered);
	assert_strv_eq(a->sections_added, a->nsections_added, b->sections_added, b->nsections_added,
		       "sections_added");
	assert_strv_eq(a->sections_removed, a->nsections_removed, b->sections_removed,
		       b->nsections_removed, "sections_removed");
	assert_pairs_eq(a->keys_added, a->nkeys_added, b->keys_added, b->nkeys_added, "keys_added");
	assert_pairs_eq(a->keys_removed, a->nkeys_removed, b->keys_removed, b->nkeys_removed,
			"keys_removed");
	assert_pairs_eq(a->keys_changed, a->nkeys_changed, b->keys_changed, b->nkeys_changed,
			"keys_changed");
	assert_strv_eq(a->columns, a->ncolumns, b->columns, b->ncolumns, "columns");
	assert_strv_eq(a->columns_added, a->ncolumns_added, b->columns_added, b->ncolumns_added,
		       "columns_added");
	assert_strv_eq(a->columns_removed, a->ncolumns_removed, b->columns_removed,
		       b->ncolumns_removed, "columns_removed");
	assert_pairs_eq(a->columns_renamed, a->ncolumns_renamed, b->columns_renamed,
			b->ncolumns_renamed, "columns_renamed");
}

static void assert_manifest_eq(const struct ug_manifest *a, const struct ug_manifest *b)
{
	cr_assert_eq(a->format, b->format);
	cr_assert_str_eq(a->channel, b->channel);
	cr_assert_eq(a->version, b->version);
	cr_assert_eq(a->parent, b->parent);
	cr_assert_eq(a->created, b->created);
	cr_assert_eq(a->expires, b->expires);
	cr_assert_eq(!a->message, !b->message);
	if (a->message)
		cr_assert_str_eq(a->message, b->message);
	cr_assert_eq(!a->key_id, !b->key_id);
	if (a->key_id)
		cr_assert_str_eq(a->key_id, b->key_id);

	cr_assert_eq(a->ndirs, b->ndirs);
	for (size_t i = 0; i < a->ndirs; i++) {
		cr_assert_str_eq(a->dirs[i].path, b->dirs[i].path);
		cr_assert_eq(a->dirs[i].mode, b->dirs[i].mode, "dirs[%zu].mode", i);
	}
	cr_assert_eq(a->nfiles, b->nfiles);
	for (size_t i = 0; i < a->nfiles; i++) {
		const struct ug_mfile *x = &a->files[i], *y = &b->files[i];

		cr_assert_str_eq(x->path, y->path);
		cr_assert_eq(x->mode, y->mode, "files[%zu].mode", i);
		cr_assert_eq(x->size, y->size);
		assert_hash_eq(&x->hash, &y->hash, "file hash");
		cr_assert(memcmp(x->xxh.b, y->xxh.b, UG_XXH_LEN) == 0, "files[%zu].xxh3", i);
		cr_assert_eq(x->stored, y->stored);
		cr_assert_eq(x->cls, y->cls);
		cr_assert_eq(x->action, y->action);
		cr_assert_eq(x->ndeltas, y->ndeltas);
		for (size_t j = 0; j < x->ndeltas; j++) {
			assert_hash_eq(&x->deltas[j].from, &y->deltas[j].from, "delta from");
			assert_hash_eq(&x->deltas[j].id, &y->deltas[j].id, "delta id");
			cr_assert_eq(x->deltas[j].codec, y->deltas[j].codec);
			cr_assert_eq(x->deltas[j].size, y->deltas[j].size);
			cr_assert_eq(x->deltas[j].memory, y->deltas[j].memory);
		}
		assert_structure_eq(x->structure, y->structure);
	}
	cr_assert_eq(a->nremoved, b->nremoved);
	for (size_t i = 0; i < a->nremoved; i++) {
		cr_assert_str_eq(a->removed[i].path, b->removed[i].path);
		assert_hash_eq(&a->removed[i].hash, &b->removed[i].hash, "removed hash");
	}
	cr_assert_eq(a->nrenamed, b->nrenamed);
	for (size_t i = 0; i < a->nrenamed; i++) {
		cr_assert_str_eq(a->renamed[i].from, b->renamed[i].from);
		cr_assert_str_eq(a->renamed[i].to, b->renamed[i].to);
		assert_hash_eq(&a->renamed[i].hash, &b->renamed[i].hash, "renamed hash");
	}
	cr_assert_eq(a->nbundles, b->nbundles);
	for (size_t i = 0; i < a->nbundles; i++) {
		const struct ug_mbundle *x = &a->bundles[i], *y = &b->bundles[i];

		cr_assert_eq(x->from, y->from);
		assert_hash_eq(&x->id, &y->id, "bundle id");
		cr_assert_eq(x->size, y->size);
		cr_assert_eq(x->memory, y->memory);
		cr_assert_eq(x->nbases, y->nbases);
		for (size_t j = 0; j < x->nbases; j++)
			assert_hash_eq(&x->bases[j], &y->bases[j], "bundle base");
		cr_assert_eq(x->ntargets, y->ntargets);
		for (size_t j = 0; j < x->ntargets; j++) {
			assert_hash_eq(&x->targets[j], &y->targets[j], "bundle target");
			cr_assert_eq(x->target_sizes[j], y->target_sizes[j]);
		}
	}
	cr_assert(ug_rollout_equal(a->rollout, b->rollout), "rollout");
}

/* ---- round trip and layout --------------------------------------------- */

Test(manifest, round_trip_keeps_every_field)
{
	struct ug_manifest *m = build(), *p;
	size_t len, len2;
	char *doc = write_ok(m, &len), *doc2;

	p = parse_ok(doc, len);
	assert_manifest_eq(m, p);
	/* and what was read writes back to the same bytes */
	doc2 = write_ok(p, &len2);
	cr_assert_eq(len, len2);
	cr_assert_str_eq(doc, doc2);
	free(doc);
	free(doc2);
	ug_manifest_free(p);
	ug_manifest_free(m);
}

Test(manifest, round_trip_without_optional_fields)
{
	struct ug_manifest *m = ug_manifest_new(), *p;
	char *doc;
	size_t len;

	cr_assert_not_null(m);
	m->channel = xstrdup("beta");
	m->version = 1;
	m->created = 0;
	m->expires = 1;
	doc = write_ok(m, &len);
	cr_assert_null(strstr(doc, "\"message\""), "NULL message is omitted");
	cr_assert_null(strstr(doc, "\"key\""), "NULL key is omitted");
	cr_assert_not_null(strstr(doc, "\"files\":[],\n"), "empty arrays are written");
	cr_assert_not_null(strstr(doc, "\"bundles\":[],\n"));
	p = parse_ok(doc, len);
	cr_assert_null(p->message);
	cr_assert_null(p->key_id);
	assert_manifest_eq(m, p);
	free(doc);
	ug_manifest_free(p);
	ug_manifest_free(m);
}

Test(manifest, output_is_deterministic_json_one_entry_per_line)
{
	static const char *const keys[] = {
		"bundles", "channel", "created", "dirs", "expires", "files", "format",
		"key", "message", "parent", "removed", "renamed", "version",
	};
	struct ug_manifest *m = build();
	char *a = write_ok(m, NULL), *b = write_ok(m, NULL);
	json_error_t jerr;
	json_t *root;
	const char *prev = a, *line;
	size_t nfile_lines = 0;

	cr_assert_str_eq(a, b, "two writes give the same bytes");
	root = json_loads(a, JSON_REJECT_DUPLICATES, &jerr);
	cr_assert_not_null(root, "jansson reads it: %s", jerr.text);
	cr_assert_eq(json_object_size(root), 13);
	cr_assert_eq(json_integer_value(json_object_get(root, "format")), 1);
	cr_assert_str_eq(json_string_value(json_object_get(root, "created")), "2026-11-25T13:40:00Z");
	json_decref(root);

	cr_assert(strncmp(a, "{\n", 2) == 0);
	cr_assert(strcmp(a + strlen(a) - 3, "\n}\n") == 0);
	/* top-level keys in sorted order, each at the start of a line */
	for (size_t i = 0; i < sizeof(keys) / sizeof(keys[0]); i++) {
		char pat[32];
		const char *p;

		snprintf(pat, sizeof(pat), "\n\"%s\":", keys[i]);
		p = strstr(a, pat);
		cr_assert_not_null(p, "key %s", keys[i]);
		cr_assert_gt(p, prev, "key %s out of order", keys[i]);
		prev = p;
	}
	/* each file is one compact line with sorted keys */
	for (line = a; (line = strstr(line, "\n{\"action\":")) != NULL; line++)
		nfile_lines++;
	cr_assert_eq(nfile_lines, m->nfiles);
	cr_assert_not_null(strstr(a, "\n{\"mode\":\"0755\",\"path\":\"bin\"},\n"));
	cr_assert_not_null(strstr(a, "\n{\"mode\":\"2700\",\"path\":\"etc/app\"}\n],\n"));
	cr_assert_not_null(strstr(a, "\"format\":1,\n"));
	cr_assert_not_null(strstr(a, "\"version\":3\n}\n"));
	free(a);
	free(b);
	ug_manifest_free(m);
}

/* The layout is pinned by a golden file: a change to it changes what
 * every terminal downloads, so it must be deliberate. */
Test(manifest, golden_file_parses_and_writes_back_identically)
{
	char *golden, *out;
	size_t len, olen;
	struct ug_manifest *m, *b;

	cr_assert_eq(ug_file_read(AT_FDCWD, DATA "golden.json", 1u << 20, &golden, &len), 0);
	m = parse_ok(golden, len);
	out = write_ok(m, &olen);
	cr_assert_eq(olen, len);
	cr_assert_str_eq(out, golden);
	/* and it is what build() writes */
	b = build();
	assert_manifest_eq(b, m);
	free(out);
	free(golden);
	ug_manifest_free(b);
	ug_manifest_free(m);
}

Test(manifest, unknown_keys_are_ignored)
{
	char *doc = valid_doc();
	/* ("rollout" is a known key now, strict inside: see rollout_*) */
	char *ext = subst(doc, "\"format\":1,", "\"format\":1,\n\"waves\":{\"waves\":[1,2,{\"x\":null}]},");
	char *files = subst(ext, "{\"action\":\"patch\",", "{\"action\":\"patch\",\"future\":true,");
	struct ug_manifest *m = parse_ok(files, strlen(files));
	char *out = write_ok(m, NULL);

	cr_assert_str_eq(out, doc, "unknown keys are dropped, everything else kept");
	free(out);
	free(files);
	free(ext);
	free(doc);
	ug_manifest_free(m);
}

Test(manifest, find_uses_sorted_files)
{
	struct ug_manifest *m = build();
	const struct ug_mfile *f;

	f = ug_manifest_find(m, "etc/motd");
	cr_assert_eq(f, &m->files[2]);
	cr_assert_eq(ug_manifest_find(m, "bin/app"), &m->files[0]);
	cr_assert_eq(ug_manifest_find(m, "readme"), &m->files[3]);
	cr_assert_null(ug_manifest_find(m, "etc"));
	cr_assert_null(ug_manifest_find(m, "zzz"));
	cr_assert_null(ug_manifest_find(m, ""));
	ug_manifest_free(m);
	m = ug_manifest_new();
	cr_assert_null(ug_manifest_find(m, "a"));
	ug_manifest_free(m);
}

Test(manifest, growers_return_zeroed_elements_and_keep_contents)
{
	struct ug_manifest *m = ug_manifest_new();
	struct ug_mfile *f = NULL;
	char path[32];

	cr_assert_not_null(m);
	cr_assert_eq(m->format, UG_MANIFEST_FORMAT);
	for (unsigned i = 0; i < 3000; i++) {
		f = ug_manifest_add_file(m);
		cr_assert_not_null(f);
		cr_assert_null(f->path);
		cr_assert_eq(f->size, 0);
		cr_assert_eq(f->ndeltas, 0);
		snprintf(path, sizeof(path), "f%05u", i);
		f->path = xstrdup(path);
		f->size = i;
	}
	cr_assert_eq(m->nfiles, 3000);
	for (unsigned i = 0; i < 3000; i++) {
		snprintf(path, sizeof(path), "f%05u", i);
		cr_assert_str_eq(m->files[i].path, path);
		cr_assert_eq(m->files[i].size, i);
	}
	for (unsigned i = 0; i < UG_DELTAS_PER_FILE_MAX; i++) {
		struct ug_mdelta *d = ug_mfile_add_delta(f);

		cr_assert_not_null(d);
		cr_assert_eq(d->size, 0);
		d->size = i;
	}
	cr_assert_eq(f->ndeltas, UG_DELTAS_PER_FILE_MAX);
	cr_assert_eq(f->deltas[UG_DELTAS_PER_FILE_MAX - 1].size, UG_DELTAS_PER_FILE_MAX - 1);
	cr_assert_not_null(ug_manifest_add_dir(m));
	cr_assert_not_null(ug_manifest_add_removed(m));
	cr_assert_not_null(ug_manifest_add_renamed(m));
	cr_assert_not_null(ug_manifest_add_bundle(m));
	cr_assert_eq(m->ndirs + m->nremoved + m->nrenamed + m->nbundles, 4);
	ug_manifest_free(m);
	ug_manifest_free(NULL);
}

/* An array installed by hand (capacity unknown) is grown safely. */
Test(manifest, grower_accepts_hand_installed_array)
{
	struct ug_manifest *m = ug_manifest_new();
	struct ug_mdir *d;

	m->dirs = calloc(3, sizeof(*m->dirs));
	cr_assert_not_null(m->dirs);
	m->ndirs = 3;
	for (int i = 0; i < 3; i++)
		m->dirs[i].mode = 0700 + (uint32_t)i;
	d = ug_manifest_add_dir(m);
	cr_assert_not_null(d);
	cr_assert_eq(m->ndirs, 4);
	cr_assert_eq(m->dirs[2].mode, 0702);
	cr_assert_eq(d, &m->dirs[3]);
	ug_manifest_free(m);
}

/* ---- rejections: paths and ordering ------------------------------------ */

Test(manifest, rejects_unknown_format)
{
	struct ug_manifest *m = build();

	expect_subst_fail("\"format\":1,", "\"format\":2,", -EBADMSG,
			  "unsupported manifest format 2 (this upgrid reads format 1)");
	expect_subst_fail("\"format\":1,", "\"format\":0,", -EBADMSG, "unsupported manifest format 0");
	expect_subst_fail("\"format\":1,", "\"format\":\"1\",", -EBADMSG, "format: expected an integer");
	expect_subst_fail("\"format\":1,", "", -EBADMSG, "format: missing");
	/* a format 2 document is refused even if nothing else looks familiar */
	expect_parse_fail("{\"format\":2,\"files\":7}", -EBADMSG, "unsupported manifest format 2");
	m->format = 2;
	expect_invalid(m, -EBADMSG, "unsupported manifest format 2");
}

Test(manifest, rejects_absolute_path)
{
	struct ug_manifest *m = build();

	expect_subst_fail("\"path\":\"readme\"", "\"path\":\"/readme\"", -EBADMSG,
			  "files[3]: path '/readme' is absolute");
	replace_path(&m->dirs[0].path, "/bin");
	expect_invalid(m, -EBADMSG, "dirs[0]: path '/bin' is absolute");
}

Test(manifest, rejects_dotdot_component)
{
	struct ug_manifest *m = build();

	expect_subst_fail("\"path\":\"readme\"", "\"path\":\"etc/../readme\"", -EBADMSG,
			  "files[3]: path 'etc/../readme' contains '..'");
	expect_subst_fail("\"path\":\"old.txt\"", "\"path\":\"../old.txt\"", -EBADMSG,
			  "removed[0]: path '../old.txt' contains '..'");
	expect_subst_fail("\"to\":\"etc/motd\"", "\"to\":\"..\"", -EBADMSG, "renamed[0].to: path '..'");
	replace_path(&m->files[3].path, "readme/..");
	expect_invalid(m, -EBADMSG, "files[3]: path 'readme/..' contains '..'");
}

Test(manifest, rejects_empty_component_and_empty_path)
{
	expect_subst_fail("\"path\":\"etc/motd\"", "\"path\":\"etc//motd\"", -EBADMSG,
			  "files[2]: path 'etc//motd' has an empty component");
	expect_subst_fail("\"path\":\"readme\"", "\"path\":\"\"", -EBADMSG, "files[3]: path is empty");
	expect_subst_fail("\"path\":\"readme\"", "\"path\":\"./readme\"", -EBADMSG, "files[3]");
	expect_subst_fail("\"path\":\"readme\"", "\"path\":\"read\\nme\"", -EBADMSG,
			  "files[3]: path contains a control character");
}

Test(manifest, rejects_duplicate_path)
{
	struct ug_manifest *m = build();

	replace_path(&m->files[3].path, "etc/motd");
	expect_invalid(m, -EBADMSG, "files[3]: duplicate path 'etc/motd'");
	m = build();
	replace_path(&m->dirs[1].path, "bin");
	expect_invalid(m, -EBADMSG, "dirs[1]: duplicate path 'bin'");
	expect_subst_fail("\"path\":\"readme\"", "\"path\":\"etc/motd\"", -EBADMSG,
			  "files[3]: duplicate path 'etc/motd'");
}

Test(manifest, rejects_unsorted_files)
{
	struct ug_manifest *m = build();
	char *tmp = m->files[2].path;

	m->files[2].path = m->files[1].path;
	m->files[1].path = tmp;
	expect_invalid(m, -EBADMSG, "files[2]: path 'etc/app/app.conf' is not sorted");
	expect_subst_fail("\"path\":\"bin/app\"", "\"path\":\"etc/zzz\"", -EBADMSG,
			  "files[1]: path 'etc/app/app.conf' is not sorted");
}

Test(manifest, rejects_file_whose_parent_dir_is_missing)
{
	struct ug_manifest *m = build();

	replace_path(&m->files[3].path, "var/lib/readme");
	expect_invalid(m, -EBADMSG,
		       "files[3]: parent directory 'var/lib' of 'var/lib/readme' is not listed in dirs");
	m = build();
	replace_path(&m->dirs[1].path, "etb");
	expect_invalid(m, -EBADMSG, "dirs[2]: parent directory 'etc' of 'etc/app'");
	expect_subst_fail("\"path\":\"etc\"}", "\"path\":\"etb\"}", -EBADMSG, "parent directory 'etc'");
}

Test(manifest, rejects_path_that_is_file_and_dir)
{
	struct ug_manifest *m = build();

	add_dir(m, "readme", 0755);
	expect_invalid(m, -EBADMSG, "files[3]: path 'readme' is also listed in dirs");
}

Test(manifest, rejects_invalid_utf8_path_in_memory)
{
	struct ug_manifest *m = build();

	replace_path(&m->files[3].path, "r\xc3(eadme");
	expect_invalid(m, -EBADMSG, "files[3]: path is not valid UTF-8");
	m = build();
	replace_path(&m->message, "\xed\xa0\x80 surrogate");
	expect_invalid(m, -EBADMSG, "message: not valid UTF-8");
}

/* ---- rejections: values ------------------------------------------------- */

Test(manifest, rejects_bad_hex)
{
	char *doc = valid_doc();
	const char *p = strstr(doc, "\"blake2b\":\"");
	char hash[UG_HASH_HEX_LEN + 1], from[80], to[80];

	/* the first blake2b in the document belongs to bundles[0].targets[0] */
	cr_assert_not_null(p);
	memcpy(hash, p + 11, UG_HASH_HEX_LEN);
	hash[UG_HASH_HEX_LEN] = '\0';
	snprintf(from, sizeof(from), "\"%s\"", hash);

	snprintf(to, sizeof(to), "\"%.63s\"", hash);
	expect_subst_fail(from, to, -EBADMSG, "bundles[0].targets[0].blake2b: expected 64 lowercase hex digits");
	snprintf(to, sizeof(to), "\"%sa\"", hash);
	expect_subst_fail(from, to, -EBADMSG, "bundles[0].targets[0].blake2b");
	snprintf(to, sizeof(to), "\"g%.63s\"", hash + 1);
	expect_subst_fail(from, to, -EBADMSG, "bundles[0].targets[0].blake2b");
	/* upper case decodes to the same bytes but is not the one spelling */
	snprintf(to, sizeof(to), "\"A%.63s\"", hash + 1);
	expect_subst_fail(from, to, -EBADMSG, "bundles[0].targets[0].blake2b");
	expect_subst_fail("\"bases\":[\"", "\"bases\":[\"zz", -EBADMSG, "bundles[0].bases[0]: expected 64");
	expect_subst_fail("\"xxh3\":\"", "\"xxh3\":\"0", -EBADMSG, "files[0].xxh3: expected 32 lowercase hex digits");
	expect_subst_fail("\"key\":\"0123456789abcdef\"", "\"key\":\"0123456789ABCDEF\"", -EBADMSG,
			  "key: expected 16 lowercase hex digits");
	expect_subst_fail("\"key\":\"0123456789abcdef\"", "\"key\":\"0123456789abcde\"", -EBADMSG,
			  "key: expected 16");
	expect_subst_fail("\"codec\":\"zstd-prefix\",\"from\":\"", "\"codec\":\"zstd-prefix\",\"from\":\"x", -EBADMSG,
			  "files[0].deltas[0].from: expected 64");
	expect_subst_fail("\"blake2b\":", "\"blake2b\":17,\"x\":", -EBADMSG, "bundles[0].targets[0].blake2b: expected a string");
	free(doc);
}

Test(manifest, rejects_negative_numbers)
{
	expect_subst_fail("\"size\":8,", "\"size\":-8,", -EBADMSG, "files[3].size: -8 is negative");
	expect_subst_fail("\"stored\":4001", "\"stored\":-1", -EBADMSG, "files[0].stored: -1 is negative");
	expect_subst_fail("\"memory\":1301", "\"memory\":-1301", -EBADMSG, "files[0].deltas[0].memory");
	expect_subst_fail("\"version\":3", "\"version\":-3", -EBADMSG, "version: -3 is negative");
	expect_subst_fail("\"from\":2,", "\"from\":-2,", -EBADMSG, "bundles[0].from: -2 is negative");
}

Test(manifest, rejects_size_over_limit)
{
	struct ug_manifest *m = build();

	m->files[3].size = UG_FILE_SIZE_MAX + 1;
	expect_invalid(m, -E2BIG, "files[3].size: 1099511627777 is over the limit of 1099511627776");
	m = build();
	m->files[3].size = UG_FILE_SIZE_MAX;
	cr_assert_eq(ug_manifest_validate(m, NULL), 0, "the limit itself is fine");
	ug_manifest_free(m);
	expect_subst_fail("\"size\":8,", "\"size\":1099511627777,", -E2BIG, "files[3].size");
	/* past what any integer holds: jansson refuses it */
	expect_subst_fail("\"size\":8,", "\"size\":99999999999999999999999,", -EBADMSG, "not valid JSON");
}

Test(manifest, rejects_too_many_deltas)
{
	struct ug_manifest *m = build();
	char *doc, *bad, *many;
	size_t n = 0;
	const char *one = "{\"codec\":\"zstd-prefix\",\"from\":\"0000000000000000000000000000000000000000000000000000000000000000\","
			  "\"id\":\"0000000000000000000000000000000000000000000000000000000000000000\",\"memory\":1,\"size\":1}";

	for (unsigned i = 0; i < UG_DELTAS_PER_FILE_MAX - 1; i++)
		cr_assert_not_null(ug_mfile_add_delta(&m->files[0]));
	expect_invalid(m, -E2BIG, "files[0].deltas: 65 entries, more than the limit of 64");

	many = malloc((strlen(one) + 1) * (UG_DELTAS_PER_FILE_MAX + 1) + 16);
	cr_assert_not_null(many);
	n += (size_t)snprintf(many, 16, "\"deltas\":[");
	for (unsigned i = 0; i <= UG_DELTAS_PER_FILE_MAX; i++)
		n += (size_t)snprintf(many + n, strlen(one) + 2, "%s%s", i ? "," : "", one);
	memcpy(many + n, "],", 3);
	doc = valid_doc();
	bad = subst(doc, "\"deltas\":[],", many);
	expect_parse_fail(bad, -E2BIG, "files[1].deltas: 65 entries, more than the limit of 64");
	free(bad);
	free(doc);
	free(many);
}

Test(manifest, rejects_unknown_class_action_codec)
{
	struct ug_manifest *m = build();

	expect_subst_fail("\"class\":\"data\"", "\"class\":\"weird\"", -EBADMSG, "files[3].class: unknown class 'weird'");
	expect_subst_fail("\"action\":\"migrate\"", "\"action\":\"explode\"", -EBADMSG,
			  "files[3].action: unknown action 'explode'");
	expect_subst_fail("\"codec\":\"rsync-zstd\"", "\"codec\":\"lzma\"", -EBADMSG,
			  "files[0].deltas[1].codec: unknown codec 'lzma'");
	expect_subst_fail("\"codec\":\"rsync-zstd\"", "\"codec\":\"zstd-bundle\"", -EBADMSG,
			  "files[0].deltas[1]: codec 'zstd-bundle' is not a per-file codec");
	expect_subst_fail("\"class\":\"data\"", "\"class\":\"Data\"", -EBADMSG, "unknown class 'Data'");
	/* a name that could carry terminal escapes is not echoed */
	expect_subst_fail("\"class\":\"data\"", "\"class\":\"\\u001b[2J\"", -EBADMSG,
			  "files[3].class: unknown class '(unprintable)'");
	m->files[1].cls = UG_CLASS__COUNT;
	expect_invalid(m, -EBADMSG, "files[1]: unknown class");
	m = build();
	m->files[1].action = (enum ug_action)99;
	expect_invalid(m, -EBADMSG, "files[1]: unknown action");
	m = build();
	m->files[0].deltas[0].codec = UG_CODEC_ZSTD_BUNDLE;
	expect_invalid(m, -EBADMSG, "files[0].deltas[0]: codec 'zstd-bundle'");
}

Test(manifest, rejects_bad_mode)
{
	struct ug_manifest *m = build();

	expect_subst_fail("\"mode\":\"0755\",\"path\":\"bin\"", "\"mode\":\"755\",\"path\":\"bin\"", -EBADMSG,
			  "dirs[0].mode: expected 4 octal digits, got '755'");
	expect_subst_fail("\"mode\":\"0755\",\"path\":\"bin\"", "\"mode\":\"0758\",\"path\":\"bin\"", -EBADMSG,
			  "dirs[0].mode");
	expect_subst_fail("\"mode\":\"0755\",\"path\":\"bin\"", "\"mode\":\"00755\",\"path\":\"bin\"", -EBADMSG,
			  "dirs[0].mode");
	expect_subst_fail("\"mode\":\"0755\",\"path\":\"bin\"", "\"mode\":493,\"path\":\"bin\"", -EBADMSG,
			  "dirs[0].mode: expected a string");
	m->files[2].mode = 010000;
	expect_invalid(m, -EBADMSG, "files[2]: mode 10000 is over 07777");
}

Test(manifest, rejects_bundle_target_not_in_files)
{
	struct ug_manifest *m = build();

	hash_of(&m->bundles[0].targets[1], "not a file of this version");
	expect_invalid(m, -EBADMSG, "bundles[0].targets[1]: ");
	m = build();
	hash_of(&m->bundles[0].targets[1], "x");
	cr_assert_eq(ug_manifest_validate(m, NULL), -EBADMSG);
	m->bundles[0].targets[1] = m->files[3].hash;
	m->bundles[0].target_sizes[1] = m->files[3].size;
	cr_assert_eq(ug_manifest_validate(m, NULL), 0, "any file's content is a valid target");
	ug_manifest_free(m);
}

Test(manifest, rejects_bad_bundle_shapes)
{
	struct ug_manifest *m = build();

	m->bundles[0].from = 3;
	expect_invalid(m, -EBADMSG, "bundles[0].from: 3 is not between 1 and version 3");
	m = build();
	m->bundles[0].from = 0;
	expect_invalid(m, -EBADMSG, "bundles[0].from: 0");
	m = build();
	m->bundles[0].ntargets = 0;
	expect_invalid(m, -EBADMSG, "bundles[0].targets: must not be empty");
	m = build();
	for (unsigned i = 1; i <= UG_BUNDLES_MAX; i++) {
		struct ug_mbundle *b = ug_manifest_add_bundle(m);

		cr_assert_not_null(b);
		b->from = 1;
	}
	expect_invalid(m, -E2BIG, "bundles: 65 entries, more than the limit of 64");
	expect_subst_fail("\"targets\":[", "\"targets\":{},\"x\":[", -EBADMSG, "bundles[0].targets: expected an array");
	expect_subst_fail("\"targets\":[{", "\"targets\":[7,{", -EBADMSG, "bundles[0].targets[0]: expected an object");
}

Test(manifest, rejects_parent_not_below_version)
{
	struct ug_manifest *m = build();

	m->parent = 3;
	expect_invalid(m, -EBADMSG, "parent: 3 is not below version 3");
	m = build();
	m->parent = 4;
	expect_invalid(m, -EBADMSG, "parent: 4");
	m = build();
	m->version = 0;
	m->parent = 0;
	expect_invalid(m, -EBADMSG, "version: 0 is not between 1");
	expect_subst_fail("\"parent\":2,", "\"parent\":7,", -EBADMSG, "parent: 7 is not below version 3");
}

Test(manifest, rejects_expiry_not_after_creation)
{
	struct ug_manifest *m = build();

	m->expires = m->created;
	expect_invalid(m, -EBADMSG, "expires: must be later than created");
	m = build();
	m->expires = m->created - 1;
	expect_invalid(m, -EBADMSG, "expires");
	m = build();
	m->created = -1;
	expect_invalid(m, -EBADMSG, "created: -1 is out of range");
	expect_subst_fail("\"expires\":\"2026-12-25T13:40:00Z\"", "\"expires\":\"2026-11-25T13:40:00Z\"",
			  -EBADMSG, "expires: must be later than created");
}

Test(manifest, rejects_non_canonical_times)
{
	expect_subst_fail("2026-11-25T13:40:00Z", "2026-11-25 13:40:00", -EBADMSG,
			  "created: expected a UTC time like");
	expect_subst_fail("2026-11-25T13:40:00Z", "2026-11-25T13:40:00+00:00", -EBADMSG, "created");
	expect_subst_fail("2026-11-25T13:40:00Z", "2026-11-5T13:40:00Z", -EBADMSG, "created");
	expect_subst_fail("2026-11-25T13:40:00Z", "2026-02-31T13:40:00Z", -EBADMSG, "created");
	expect_subst_fail("\"2026-12-25T13:40:00Z\"", "1798206000", -EBADMSG, "expires: expected a string");
}

Test(manifest, rejects_bad_channel_and_long_message)
{
	struct ug_manifest *m = build();
	char *msg = malloc(UG_MESSAGE_MAX + 2);

	expect_subst_fail("\"channel\":\"stable\"", "\"channel\":\"st/able\"", -EBADMSG, "channel: channel name 'st/able'");
	expect_subst_fail("\"channel\":\"stable\"", "\"channel\":\"\"", -EBADMSG, "channel: ");
	cr_assert_not_null(msg);
	memset(msg, 'm', UG_MESSAGE_MAX + 1);
	msg[UG_MESSAGE_MAX + 1] = '\0';
	free(m->message);
	m->message = msg;
	expect_invalid(m, -E2BIG, "message: longer than 4096 bytes");
	m = build();
	msg = malloc(UG_MESSAGE_MAX + 1);
	memset(msg, 'm', UG_MESSAGE_MAX);
	msg[UG_MESSAGE_MAX] = '\0';
	free(m->message);
	m->message = msg;
	cr_assert_eq(ug_manifest_validate(m, NULL), 0, "a message of exactly the limit is fine");
	ug_manifest_free(m);
}

/* ---- rejections: JSON itself -------------------------------------------- */

Test(manifest, rejects_invalid_json_with_position)
{
	expect_parse_fail("{\"format\":1,,}", -EBADMSG, "manifest is not valid JSON: line 1, column");
	expect_parse_fail("{\n\"format\":1\n\"channel\":\"x\"}", -EBADMSG, "line 3");
	expect_parse_fail("", -EBADMSG, "not valid JSON");
	expect_parse_fail("{} trailing", -EBADMSG, "not valid JSON");
	expect_parse_fail("[]", -EBADMSG, "manifest is not a JSON object");
	expect_parse_fail("{}", -EBADMSG, "format: missing");
	expect_parse_fail("\"format\"", -EBADMSG, "not valid JSON");
	expect_subst_fail("\"format\":1,", "\"format\":1,\"format\":1,", -EBADMSG, "duplicate");
	expect_subst_fail("\"channel\":\"stable\",", "", -EBADMSG, "channel: missing");
	expect_subst_fail("\"blake2b\":", "\"blake3\":", -EBADMSG, "bundles[0].targets[0].blake2b: missing");
}

Test(manifest, rejects_every_truncation)
{
	char *doc = valid_doc();
	size_t len = strlen(doc), last;
	struct ug_manifest *m;

	/* the last byte is the newline after '}': dropping only that leaves
	 * the same JSON document, which is (and may be) accepted */
	cr_assert_eq(doc[len - 1], '\n');
	cr_assert_eq(doc[len - 2], '}');
	last = len - 1;
	for (size_t n = 0; n < last; n++) {
		struct ug_error err = { "" };
		char *copy = malloc(n + 1);

		/* a copy of exactly n bytes, so ASan catches any read past it */
		cr_assert_not_null(copy);
		memcpy(copy, doc, n);
		m = NULL;
		cr_assert_eq(ug_manifest_parse(copy, n, &m, &err), -EBADMSG,
			     "prefix of %zu bytes: %s", n, err.msg);
		cr_assert_null(m);
		cr_assert_neq(err.msg[0], '\0');
		free(copy);
	}
	m = parse_ok(doc, last);
	ug_manifest_free(m);
	free(doc);
}

Test(manifest, rejects_wrong_types)
{
	expect_subst_fail("\"size\":8,", "\"size\":\"8\",", -EBADMSG, "files[3].size: expected an integer");
	expect_subst_fail("\"size\":8,", "\"size\":8.0,", -EBADMSG, "files[3].size: expected an integer");
	expect_subst_fail("\"size\":8,", "\"size\":null,", -EBADMSG, "files[3].size: expected an integer");
	expect_subst_fail("\"size\":8,", "\"size\":true,", -EBADMSG, "files[3].size: expected an integer");
	expect_subst_fail("\"channel\":\"stable\"", "\"channel\":[\"stable\"]", -EBADMSG, "channel: expected a string");
	expect_subst_fail("\"files\":[", "\"files\":{\"a\":[", -EBADMSG, "not valid JSON");
	expect_subst_fail("\"removed\":[", "\"removed\":7,\"x\":[", -EBADMSG, "removed: expected an array");
	expect_subst_fail("\"dirs\":[\n", "\"dirs\":[\n\"bin\",", -EBADMSG, "dirs[0]: expected an object");
	expect_subst_fail("\"message\":\"", "\"message\":3,\"x\":\"", -EBADMSG, "message: expected a string");
	expect_subst_fail("\"deltas\":[]", "\"deltas\":null", -EBADMSG, "files[1].deltas: expected an array");
	expect_subst_fail("\"version\":3", "\"version\":3.5", -EBADMSG, "version: expected an integer");
}

Test(manifest, rejects_document_over_limit_before_reading_it)
{
	char small[] = "{}";

	/* the length is checked before a byte is read, so a short buffer with
	 * a huge claimed length is safe here */
	expect_parse_fail_len(small, (size_t)UG_MANIFEST_MAX + 1, -E2BIG, "more than the limit of 268435456");
	expect_parse_fail_len(small, SIZE_MAX, -E2BIG, "limit");
}

Test(manifest, rejects_nul_bytes)
{
	char *doc = valid_doc();
	char *p = strstr(doc, "release 3");
	size_t len = strlen(doc);

	expect_subst_fail("release 3", "rel\\u0000ease 3", -EBADMSG, "not valid JSON");
	expect_subst_fail("\"path\":\"readme\"", "\"path\":\"read\\u0000me\"", -EBADMSG, "not valid JSON");
	/* a raw NUL byte inside a string, the buffer length covering it */
	cr_assert_not_null(p);
	p[3] = '\0';
	expect_parse_fail_len(doc, len, -EBADMSG, "not valid JSON");
	free(doc);
}

Test(manifest, survives_deep_nesting)
{
	size_t depth = 100000, n = 0;
	char *doc = malloc(2 * depth + 64);

	cr_assert_not_null(doc);
	n += (size_t)snprintf(doc, 64, "{\"format\":1,\"x\":");
	memset(doc + n, '[', depth);
	n += depth;
	memset(doc + n, ']', depth);
	n += depth;
	doc[n++] = '}';
	doc[n] = '\0';
	expect_parse_fail(doc, -EBADMSG, "not valid JSON");
	free(doc);
}

/* Random damage to a valid document: any result but a crash or an
 * unexpected errno is fine (most damage is caught, some is harmless). */
Test(manifest, survives_random_corruption)
{
	char *doc = valid_doc();
	size_t len = strlen(doc);
	uint32_t seed = 12345;
	unsigned rejected = 0;

	for (int iter = 0; iter < 3000; iter++) {
		char *copy = malloc(len);
		struct ug_manifest *m = NULL;
		struct ug_error err = { "" };
		int r;

		cr_assert_not_null(copy);
		memcpy(copy, doc, len);
		for (int k = 0; k < 1 + iter % 4; k++) {
			seed = seed * 1103515245u + 12345u;
			copy[(seed >> 8) % len] = (char)(seed >> 24);
		}
		r = ug_manifest_parse(copy, len, &m, &err);
		cr_assert(r == 0 || r == -EBADMSG || r == -E2BIG, "iteration %d: %d %s", iter, r, err.msg);
		if (r == 0) {
			cr_assert_eq(ug_manifest_validate(m, NULL), 0);
			ug_manifest_free(m);
		} else {
			rejected++;
		}
		free(copy);
	}
	cr_assert_gt(rejected, 2000, "most damage must be caught");
	free(doc);
}

/* Hostile documents kept as files, with the error each must earn. */
Test(manifest, rejects_hostile_fixtures)
{
	static const struct {
		const char *file;
		int rc;
		const char *msg;
	} cases[] = {
		{ "bad-format-2.json", -EBADMSG, "unsupported manifest format 2 (this upgrid reads format 1)" },
		{ "bad-traversal.json", -EBADMSG, "files[1]: path 'etc/../../root/.ssh/authorized_keys' contains '..'" },
		{ "bad-absolute.json", -EBADMSG, "files[0]: path '/etc/shadow' is absolute" },
		{ "bad-duplicate-key.json", -EBADMSG, "duplicate object key" },
		{ "bad-duplicate-path.json", -EBADMSG, "files[1]: duplicate path 'bin/app'" },
		{ "bad-missing-parent.json", -EBADMSG, "files[0]: parent directory 'usr/bin'" },
		{ "bad-nul-in-path.json", -EBADMSG, "not valid JSON" },
		{ "bad-huge-size.json", -E2BIG, "files[0].size" },
		{ "bad-float-size.json", -EBADMSG, "files[0].size: expected an integer" },
		{ "bad-bundle-target.json", -EBADMSG, "bundles[0].targets[0]" },
		{ "bad-truncated.json", -EBADMSG, "not valid JSON" },
	};
	char *ok;
	size_t oklen;

	/* the fixtures are this document with one defect each */
	cr_assert_eq(ug_file_read(AT_FDCWD, DATA "ok-minimal.json", 1u << 20, &ok, &oklen), 0);
	ug_manifest_free(parse_ok(ok, oklen));
	free(ok);

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		char path[512], *doc;
		size_t len;
		int r;

		snprintf(path, sizeof(path), DATA "%s", cases[i].file);
		r = ug_file_read(AT_FDCWD, path, 1u << 20, &doc, &len);
		cr_assert_eq(r, 0, "read '%s': %s", path, strerror(-r));
		expect_parse_fail_len(doc, len, cases[i].rc, cases[i].msg);
		free(doc);
	}
}

/* The applier splits a bundle's output by target sizes: a size that does
 * not match the file would misplace every byte after it. */
Test(manifest, bundle_target_size_must_match_file)
{
	struct ug_manifest *m = ug_manifest_new();
	struct ug_mfile *f;
	struct ug_mbundle *b;
	struct ug_error e = { "" };

	cr_assert_not_null(m);
	m->format = UG_MANIFEST_FORMAT;
	m->channel = strdup("stable");
	m->version = 2;
	m->parent = 1;
	m->created = 1700000000;
	m->expires = 1800000000;
	f = ug_manifest_add_file(m);
	f->path = strdup("app");
	f->mode = 0644;
	f->size = 10;
	memset(f->hash.b, 0x11, sizeof(f->hash.b));
	b = ug_manifest_add_bundle(m);
	b->from = 1;
	b->ntargets = 1;
	b->targets = calloc(1, sizeof(*b->targets));
	b->target_sizes = calloc(1, sizeof(*b->target_sizes));
	b->targets[0] = f->hash;
	b->target_sizes[0] = 10;
	cr_assert_eq(ug_manifest_validate(m, &e), 0, "%s", e.msg);
	b->target_sizes[0] = 11;
	cr_assert_eq(ug_manifest_validate(m, &e), -EBADMSG);
	cr_assert(strstr(e.msg, "bundles[0].targets[0].size") != NULL, "%s", e.msg);
	ug_manifest_free(m);
}

/* ---- files[].structure -------------------------------------------------- */

static char **strv_of(const char *const *v, size_t n)
{
	char **out = calloc(n + 1, sizeof(*out));

	cr_assert_not_null(out);
	for (size_t i = 0; i < n; i++)
		out[i] = xstrdup(v[i]);
	return out;
}

/* pairs written "a/b" */
static struct ug_strpair *pairs_of(const char *const *v, size_t n)
{
	struct ug_strpair *out = calloc(n + 1, sizeof(*out));

	cr_assert_not_null(out);
	for (size_t i = 0; i < n; i++) {
		const char *slash = strchr(v[i], '/');

		cr_assert_not_null(slash);
		out[i].a = strndup(v[i], (size_t)(slash - v[i]));
		out[i].b = xstrdup(slash + 1);
		cr_assert_not_null(out[i].a);
	}
	return out;
}

#define SET_STRV(d, field, ...) do { \
	static const char *const v_[] = { __VA_ARGS__ }; \
	(d)->field = strv_of(v_, sizeof(v_) / sizeof(v_[0])); \
	(d)->n##field = sizeof(v_) / sizeof(v_[0]); \
} while (0)
#define SET_PAIRS(d, field, ...) do { \
	static const char *const v_[] = { __VA_ARGS__ }; \
	(d)->field = pairs_of(v_, sizeof(v_) / sizeof(v_[0])); \
	(d)->n##field = sizeof(v_) / sizeof(v_[0]); \
} while (0)

static struct ug_struct_diff *conf_structure(void)
{
	struct ug_struct_diff *d = calloc(1, sizeof(*d));

	cr_assert_not_null(d);
	d->format = UG_STRUCT_INI;
	d->structural = true;
	d->content = true;
	SET_STRV(d, sections_added, "power");
	SET_PAIRS(d, keys_added, "power/sleep_after");
	SET_PAIRS(d, keys_changed, "agent/poll_interval", "/log_level");
	return d;
}

static struct ug_struct_diff *table_structure(void)
{
	struct ug_struct_diff *d = calloc(1, sizeof(*d));

	cr_assert_not_null(d);
	d->format = UG_STRUCT_CSV;
	d->structural = true;
	d->content = false;
	SET_STRV(d, columns, "code", "price", "period", "currency");
	SET_STRV(d, columns_added, "currency");
	SET_PAIRS(d, columns_renamed, "tariff/price");
	return d;
}

/* build() with a structure on the config file (files[1], merge) and the
 * data file (files[3], migrate) */
static struct ug_manifest *build_structured(void)
{
	struct ug_manifest *m = build();

	m->files[1].structure = conf_structure();
	m->files[3].structure = table_structure();
	return m;
}

static char *structured_doc(void)
{
	struct ug_manifest *m = build_structured();
	char *doc = write_ok(m, NULL);

	ug_manifest_free(m);
	return doc;
}

static void expect_structured_subst_fail(const char *from, const char *to, int rc, const char *want)
{
	char *doc = structured_doc();
	char *bad = subst(doc, from, to);

	expect_parse_fail(bad, rc, want);
	free(bad);
	free(doc);
}

Test(manifest, structure_round_trip_and_layout)
{
	struct ug_manifest *m = build_structured(), *p;
	size_t len, len2, nlines = 0;
	char *doc = write_ok(m, &len), *doc2;
	const char *line;

	/* one compact line per file, keys sorted inside the object too */
	cr_assert_not_null(strstr(doc,
		"\"stored\":4002,\"structure\":{\"content\":true,\"format\":\"ini\","
		"\"keys_added\":[[\"power\",\"sleep_after\"]],"
		"\"keys_changed\":[[\"agent\",\"poll_interval\"],[\"\",\"log_level\"]],"
		"\"keys_removed\":[],\"sections_added\":[\"power\"],\"sections_removed\":[],"
		"\"structural\":true},\"xxh3\":\""), "%s", doc);
	cr_assert_not_null(strstr(doc,
		"\"stored\":4004,\"structure\":{\"columns\":[\"code\",\"price\",\"period\",\"currency\"],"
		"\"columns_added\":[\"currency\"],\"columns_removed\":[],"
		"\"columns_renamed\":[[\"tariff\",\"price\"]],\"content\":false,\"format\":\"csv\","
		"\"reordered\":false,\"structural\":true},\"xxh3\":\""), "%s", doc);
	for (line = doc; (line = strstr(line, "\n{\"action\":")) != NULL; line++)
		nlines++;
	cr_assert_eq(nlines, m->nfiles);
	/* files without one have no key at all: the first is etc/app/app.conf's */
	cr_assert_eq(strstr(doc, "\"structure\""), strstr(doc, "\"stored\":4002,\"structure\"") + 14);
	cr_assert_lt(strstr(doc, "\"path\":\"bin/app\""), strstr(doc, "\"structure\""));
	cr_assert_null(strstr(strstr(doc, "\"path\":\"etc/motd\""), "\"stored\":4003,\"structure\""));

	p = parse_ok(doc, len);
	cr_assert_null(p->files[0].structure);
	cr_assert_null(p->files[2].structure);
	cr_assert_not_null(p->files[1].structure);
	assert_manifest_eq(m, p);
	doc2 = write_ok(p, &len2);
	cr_assert_eq(len, len2);
	cr_assert_str_eq(doc, doc2);
	free(doc);
	free(doc2);
	ug_manifest_free(p);
	ug_manifest_free(m);
}

/* What the publisher's diff produces is what the manifest accepts. */
Test(manifest, structure_from_real_diffs_round_trips)
{
	static const char a_ini[] = "[agent]\npoll = 60\n[legacy]\nx = 1\n";
	static const char b_ini[] = "[agent]\npoll = 30\nbatch = 5\n[power]\n";
	static const char a_csv[] = "code,tariff,period\nA,1,all\n";
	static const char b_csv[] = "period,code,price,\"unit price\"\nall,A,1,2\n";
	struct ug_column_rename rn[] = { { "tariff", "price" } };
	struct ug_manifest *m = build(), *p;
	struct ug_error err = { "" };
	char *doc;
	size_t len;

	cr_assert_eq(ug_struct_compare(UG_CLASS_CONFIG, "etc/app/app.conf", a_ini, strlen(a_ini),
				       b_ini, strlen(b_ini), NULL, 0, &m->files[1].structure, &err), 0,
		     "%s", err.msg);
	cr_assert_eq(ug_struct_compare(UG_CLASS_DATA, "readme", a_csv, strlen(a_csv), b_csv,
				       strlen(b_csv), rn, 1, &m->files[3].structure, &err), 0,
		     "%s", err.msg);
	cr_assert(m->files[3].structure->reordered);
	doc = write_ok(m, &len);
	cr_assert_not_null(strstr(doc, "\"keys_removed\":[[\"legacy\",\"x\"]]"));
	cr_assert_not_null(strstr(doc, "\"columns_renamed\":[[\"tariff\",\"price\"]]"));
	cr_assert_not_null(strstr(doc, "\"columns_added\":[\"unit price\"]"));
	p = parse_ok(doc, len);
	assert_manifest_eq(m, p);
	free(doc);
	ug_manifest_free(p);
	ug_manifest_free(m);
}

Test(manifest, structure_unknown_keys_are_ignored)
{
	char *doc = structured_doc();
	char *ext = subst(doc, "\"structure\":{\"content\":true,", "\"structure\":{\"merge_hint\":[1],\"content\":true,");
	struct ug_manifest *m = parse_ok(ext, strlen(ext));
	char *out = write_ok(m, NULL);

	cr_assert_str_eq(out, doc);
	free(out);
	free(ext);
	free(doc);
	ug_manifest_free(m);
}

Test(manifest, rejects_bad_structure_shapes)
{
	const char *ka = "\"keys_added\":[[\"power\",\"sleep_after\"]]";
	char *longname, *many;
	size_t n;

	expect_structured_subst_fail(ka, "\"keys_added\":[[\"power\"]]", -EBADMSG,
				     "files[1].structure.keys_added[0]: expected [section, key]");
	expect_structured_subst_fail(ka, "\"keys_added\":[[\"power\",\"a\"],[\"p\",\"b\",\"c\"]]", -EBADMSG,
				     "files[1].structure.keys_added[1]: expected [section, key]");
	expect_structured_subst_fail(ka, "\"keys_added\":[\"power\"]", -EBADMSG,
				     "files[1].structure.keys_added[0]: expected [section, key]");
	expect_structured_subst_fail(ka, "\"keys_added\":[[\"power\",7]]", -EBADMSG,
				     "files[1].structure.keys_added[0][1]: expected a string");
	expect_structured_subst_fail(ka, "\"keys_added\":{}", -EBADMSG,
				     "files[1].structure.keys_added: expected an array");
	expect_structured_subst_fail("\"sections_added\":[\"power\"]", "\"sections_added\":[null]", -EBADMSG,
				     "files[1].structure.sections_added[0]: expected a string");
	expect_structured_subst_fail("\"format\":\"ini\"", "\"format\":\"yaml\"", -EBADMSG,
				     "files[1].structure.format: unknown format 'yaml'");
	expect_structured_subst_fail("\"format\":\"ini\"", "\"format\":\"none\"", -EBADMSG,
				     "files[1].structure.format: unknown format 'none'");
	expect_structured_subst_fail("\"format\":\"ini\"", "\"format\":\"\\u001b[2J\"", -EBADMSG,
				     "files[1].structure.format: unknown format '(unprintable)'");
	expect_structured_subst_fail("\"format\":\"ini\",", "", -EBADMSG,
				     "files[1].structure.format: missing");
	expect_structured_subst_fail("\"structural\":true},\"xxh3\"", "\"structural\":1},\"xxh3\"", -EBADMSG,
				     "files[1].structure.structural: expected true or false");
	expect_structured_subst_fail("\"sections_removed\":[],", "", -EBADMSG,
				     "files[1].structure.sections_removed: missing");
	expect_structured_subst_fail("\"columns_renamed\":[[\"tariff\",\"price\"]]",
				     "\"columns_renamed\":[[\"tariff\"]]", -EBADMSG,
				     "files[3].structure.columns_renamed[0]: expected [old, new]");
	expect_structured_subst_fail("\"reordered\":false,", "", -EBADMSG,
				     "files[3].structure.reordered: missing");
	expect_structured_subst_fail("\"structure\":{\"columns\"", "\"structure\":7,\"x\":{\"columns\"",
				     -EBADMSG, "files[3].structure: expected an object");
	expect_structured_subst_fail("\"structure\":{\"columns\"", "\"structure\":null,\"x\":{\"columns\"",
				     -EBADMSG, "files[3].structure: expected an object");
	/* names: as the parsers accept them */
	expect_structured_subst_fail("[\"power\"]", "[\"pow\\u001ber\"]", -EBADMSG,
				     "files[1].structure.sections_added[0]: contains a control character");
	expect_structured_subst_fail("[\"power\"]", "[\"\"]", -EBADMSG,
				     "files[1].structure.sections_added[0]: empty name");
	expect_structured_subst_fail("[\"power\",\"sleep_after\"]", "[\"power\",\"\"]", -EBADMSG,
				     "files[1].structure.keys_added[0][1]: empty name");
	expect_structured_subst_fail("[\"power\"]", "[\"pow\\u0000er\"]", -EBADMSG, "not valid JSON");
	longname = malloc(UG_STRUCT_NAME_MAX + 16);
	cr_assert_not_null(longname);
	longname[0] = '[';
	longname[1] = '"';
	memset(longname + 2, 'x', UG_STRUCT_NAME_MAX + 1);
	memcpy(longname + 3 + UG_STRUCT_NAME_MAX, "\"]", 3);
	expect_structured_subst_fail("[\"power\"]", longname, -E2BIG,
				     "files[1].structure.sections_added[0]: longer than 4096 bytes");
	free(longname);
	/* counts: refused before anything is copied */
	many = malloc(8 * (UG_STRUCT_COLUMNS_MAX + 1) + 32);
	cr_assert_not_null(many);
	n = (size_t)snprintf(many, 32, "\"columns\":[");
	for (unsigned i = 0; i <= UG_STRUCT_COLUMNS_MAX; i++)
		n += (size_t)snprintf(many + n, 8, "%s\"c\"", i ? "," : "");
	memcpy(many + n, "],", 3);
	expect_structured_subst_fail("\"columns\":[\"code\",\"price\",\"period\",\"currency\"],", many, -E2BIG,
				     "files[3].structure.columns: 10001 entries, more than the limit of 10000");
	free(many);
}

Test(manifest, rejects_inconsistent_structure)
{
	struct ug_manifest *m;

	/* flags must agree with the lists */
	m = build_structured();
	m->files[1].structure->structural = false;
	expect_invalid(m, -EBADMSG,
		       "files[1].structure.structural: must be true exactly when sections or keys are added or removed");
	expect_structured_subst_fail("\"structure\":{\"content\":true", "\"structure\":{\"content\":false",
				     -EBADMSG,
				     "files[1].structure.content: must be true exactly when keys_changed is not empty");
	expect_structured_subst_fail("\"reordered\":false,\"structural\":true",
				     "\"reordered\":false,\"structural\":false", -EBADMSG,
				     "files[3].structure.structural: must be true exactly when columns are added, removed, renamed or reordered");
	/* the format fits the class */
	m = build_structured();
	m->files[3].structure->format = UG_STRUCT_INI;
	expect_invalid(m, -EBADMSG, "files[3].structure: format 'ini' is for class 'config', not 'data'");
	m = build_structured();
	m->files[0].structure = conf_structure();
	expect_invalid(m, -EBADMSG, "files[0].structure: format 'ini' is for class 'config', not 'binary'");
	m = build_structured();
	ug_struct_diff_free(m->files[1].structure);
	m->files[1].structure = table_structure();
	expect_invalid(m, -EBADMSG, "files[1].structure: format 'csv' is for class 'data', not 'config'");
	/* the format decides which lists the reader looks for */
	expect_structured_subst_fail("\"format\":\"ini\"", "\"format\":\"tsv\"", -EBADMSG,
				     "files[1].structure.columns: missing");
	m = build_structured();
	m->files[1].structure->format = UG_STRUCT_NONE;
	expect_invalid(m, -EBADMSG, "files[1].structure.format: unknown format 0");
	/* only the lists of the file's kind */
	m = build_structured();
	m->files[1].structure->reordered = true;
	expect_invalid(m, -EBADMSG, "files[1].structure: columns given for a config file");
	m = build_structured();
	SET_PAIRS(m->files[3].structure, keys_changed, "a/b");
	expect_invalid(m, -EBADMSG, "files[3].structure: sections or keys given for a data file");
	/* lists are sets that agree with each other */
	expect_structured_subst_fail("\"keys_added\":[[\"power\",\"sleep_after\"]]",
				     "\"keys_added\":[[\"agent\",\"poll_interval\"]]", -EBADMSG,
				     "files[1].structure: key ['agent', 'poll_interval'] is listed twice");
	expect_structured_subst_fail("\"sections_removed\":[]", "\"sections_removed\":[\"power\"]",
				     -EBADMSG, "files[1].structure: section 'power' is listed twice");
	expect_structured_subst_fail("\"columns_added\":[\"currency\"]", "\"columns_added\":[\"euro\"]",
				     -EBADMSG, "files[3].structure.columns_added[0]: 'euro' is not in columns");
	expect_structured_subst_fail("\"columns_added\":[\"currency\"]", "\"columns_added\":[\"price\"]",
				     -EBADMSG, "files[3].structure: added or renamed column 'price' is listed twice");
	expect_structured_subst_fail("\"columns_removed\":[]", "\"columns_removed\":[\"code\"]",
				     -EBADMSG, "files[3].structure.columns_removed[0]: 'code' is still in columns");
	expect_structured_subst_fail("\"columns_removed\":[]", "\"columns_removed\":[\"tariff\"]",
				     -EBADMSG, "files[3].structure: removed or renamed column 'tariff' is listed twice");
	expect_structured_subst_fail("[[\"tariff\",\"price\"]]", "[[\"tariff\",\"cost\"]]", -EBADMSG,
				     "files[3].structure.columns_renamed[0]: the new name must be in columns and the old one not");
	expect_structured_subst_fail("[[\"tariff\",\"price\"]]", "[[\"code\",\"price\"]]", -EBADMSG,
				     "files[3].structure.columns_renamed[0]: the new name must be in columns and the old one not");
	expect_structured_subst_fail("\"columns\":[\"code\",", "\"columns\":[\"code\",\"code\",", -EBADMSG,
				     "files[3].structure: column 'code' is listed twice");
	/* what JSON cannot carry is refused in memory too */
	m = build_structured();
	free(m->files[3].structure->columns_added[0]);
	m->files[3].structure->columns_added[0] = xstrdup("cur\xc3(rency");
	expect_invalid(m, -EBADMSG, "files[3].structure.columns_added[0]: not valid UTF-8");
	m = build_structured();
	free(m->files[1].structure->keys_changed[0].a);
	m->files[1].structure->keys_changed[0].a = NULL;
	expect_invalid(m, -EINVAL, "files[1].structure.keys_changed[0][0]: missing");
	m = build_structured();
	free(m->files[1].structure->sections_added[0]);
	free(m->files[1].structure->sections_added);
	/* the count is checked before any name (these are all NULL) */
	m->files[1].structure->sections_added = calloc(UG_STRUCT_SECTIONS_MAX + 1, sizeof(char *));
	cr_assert_not_null(m->files[1].structure->sections_added);
	m->files[1].structure->nsections_added = UG_STRUCT_SECTIONS_MAX + 1;
	expect_invalid(m, -E2BIG, "files[1].structure.sections_added: 10001 entries, more than the limit of 10000");
	m = build_structured();
	m->files[1].structure->nsections_added = 0;  /* keeps the array: freed with n = 0 */
	free(m->files[1].structure->sections_added[0]);
	cr_assert_eq(ug_manifest_validate(m, NULL), 0, "still consistent: keys were added");
	ug_manifest_free(m);
}

/* Random damage inside the structure objects: rejected or harmless,
 * never a crash, and what is accepted validates. */
Test(manifest, structure_survives_random_corruption)
{
	char *doc = structured_doc();
	size_t len = strlen(doc);
	size_t lo = (size_t)(strstr(doc, "\"structure\"") - doc);
	size_t hi = (size_t)(strstr(doc, "\"reordered\"") - doc) + 40;
	uint32_t seed = 777;
	unsigned rejected = 0;

	for (int iter = 0; iter < 2000; iter++) {
		char *copy = malloc(len);
		struct ug_manifest *m = NULL;
		struct ug_error err = { "" };
		int r;

		cr_assert_not_null(copy);
		memcpy(copy, doc, len);
		for (int k = 0; k < 1 + iter % 3; k++) {
			seed = seed * 1103515245u + 12345u;
			static const char set[] = "[]{}\",:x\\0\x01 ";

			copy[lo + (seed >> 8) % (hi - lo)] = set[(seed >> 24) % (sizeof(set) - 1)];
		}
		r = ug_manifest_parse(copy, len, &m, &err);
		cr_assert(r == 0 || r == -EBADMSG || r == -E2BIG, "iteration %d: %d %s", iter, r, err.msg);
		if (r == 0) {
			cr_assert_eq(ug_manifest_validate(m, NULL), 0);
			ug_manifest_free(m);
		} else {
			rejected++;
		}
		free(copy);
	}
	cr_assert_gt(rejected, 1000, "most damage must be caught");
	free(doc);
}

/* ---- chains: the cluster's chain list ------------------------------------ */

static const char chains_text[] =
	"[group east]\n"
	"server = e1 upgrid@10.0.1.1:22 /srv/upgrid\n"
	"server = e2 upgrid@10.0.1.2 /srv/upgrid\n"
	"[group west]\n"
	"server = w1 10.0.2.1:2222 /var/lib/upgrid\n"
	"server = w2 [2001:db8::2] /var/lib/upgrid\n";

static struct ug_cluster *cluster_of(const char *text)
{
	struct ug_error err = { "" };
	struct ug_cluster *c = NULL;

	cr_assert_eq(ug_cluster_parse(text, strlen(text), &c, &err), 0, "%s", err.msg);
	return c;
}

static struct ug_manifest *build_chained(void)
{
	struct ug_manifest *m = build();

	m->chains = cluster_of(chains_text);
	return m;
}

/* build()'s document with a "chains" line of the given JSON inserted
 * where the writer puts it. */
static char *doc_with_chains(const char *chains)
{
	char *doc = valid_doc(), *to, *out;
	size_t n = strlen(chains) + 32;

	to = malloc(n);
	cr_assert_not_null(to);
	snprintf(to, n, "\"chains\":%s,\n\"channel\":", chains);
	out = subst(doc, "\"channel\":", to);
	free(to);
	free(doc);
	return out;
}

static void expect_chains_fail(const char *chains, int rc, const char *want)
{
	char *doc = doc_with_chains(chains);

	expect_parse_fail(doc, rc, want);
	free(doc);
}

Test(manifest, chains_round_trip_one_group_per_line)
{
	struct ug_manifest *m = build_chained(), *p;
	size_t len, len2;
	char *doc = write_ok(m, &len), *doc2;
	const char *bundles = strstr(doc, "\n\"bundles\":"), *chains = strstr(doc, "\n\"chains\":"),
		   *channel = strstr(doc, "\n\"channel\":");

	cr_assert(bundles && chains && channel && bundles < chains && chains < channel,
		  "chains sorts between bundles and channel");
	cr_assert_not_null(strstr(doc,
		"\n\"chains\":[\n"
		"{\"group\":\"east\",\"servers\":["
		"{\"address\":\"upgrid@10.0.1.1:22\",\"name\":\"e1\",\"repo\":\"/srv/upgrid\"},"
		"{\"address\":\"upgrid@10.0.1.2:22\",\"name\":\"e2\",\"repo\":\"/srv/upgrid\"}]},\n"
		"{\"group\":\"west\",\"servers\":["
		"{\"address\":\"10.0.2.1:2222\",\"name\":\"w1\",\"repo\":\"/var/lib/upgrid\"},"
		"{\"address\":\"[2001:db8::2]:22\",\"name\":\"w2\",\"repo\":\"/var/lib/upgrid\"}]}\n"
		"],\n"), "layout:\n%s", doc);
	p = parse_ok(doc, len);
	assert_manifest_eq(m, p);
	cr_assert_not_null(p->chains);
	cr_assert(ug_cluster_equal(m->chains, p->chains), "chains survive the round trip");
	cr_assert_null(p->chains->groups[1].servers[0].user);
	cr_assert_eq(p->chains->groups[1].servers[0].port, 2222);
	doc2 = write_ok(p, &len2);
	cr_assert_eq(len, len2);
	cr_assert_str_eq(doc, doc2, "what was read writes back to the same bytes");
	free(doc);
	free(doc2);
	ug_manifest_free(p);
	ug_manifest_free(m);
}

/* Without a chain list the document is exactly what it was before chains
 * existed (the golden file pins that); an empty list is written as []. */
Test(manifest, chains_absent_or_empty)
{
	struct ug_manifest *m = build(), *p;
	char *doc = write_ok(m, NULL), *doc2, *golden;
	size_t glen;

	cr_assert_null(strstr(doc, "chains"), "no chain list, no key");
	cr_assert_eq(ug_file_read(AT_FDCWD, DATA "golden.json", 1u << 20, &golden, &glen), 0);
	cr_assert_str_eq(doc, golden, "byte-identical to the layout without chains");
	p = parse_ok(doc, strlen(doc));
	cr_assert_null(p->chains);
	ug_manifest_free(p);

	m->chains = ug_cluster_new();
	cr_assert_not_null(m->chains);
	doc2 = write_ok(m, NULL);
	cr_assert_not_null(strstr(doc2, "\n\"chains\":[],\n\"channel\":"));
	p = parse_ok(doc2, strlen(doc2));
	cr_assert_not_null(p->chains, "an empty list is still a list");
	cr_assert_eq(p->chains->ngroups, 0);
	free(doc);
	free(doc2);
	free(golden);
	ug_manifest_free(p);
	ug_manifest_free(m);
}

Test(manifest, chains_unknown_keys_inside_are_ignored)
{
	struct ug_manifest *p;
	char *doc = doc_with_chains(
		"[{\"group\":\"east\",\"weight\":3,\"servers\":[{\"address\":\"h:22\",\"name\":\"e1\","
		"\"repo\":\"/r\",\"zone\":\"a\"}]}]");

	p = parse_ok(doc, strlen(doc));
	cr_assert_eq(p->chains->ngroups, 1);
	cr_assert_str_eq(p->chains->groups[0].servers[0].host, "h");
	free(doc);
	ug_manifest_free(p);
}

#define SRV(n, a) "{\"address\":\"" a "\",\"name\":\"" n "\",\"repo\":\"/srv/upgrid\"}"

Test(manifest, rejects_hostile_chains)
{
	char big[4096];
	size_t n = 0;

	expect_chains_fail("{}", -EBADMSG, "chains: expected an array");
	expect_chains_fail("\"east\"", -EBADMSG, "chains: expected an array");
	expect_chains_fail("null", -EBADMSG, "chains: expected an array");
	expect_chains_fail("[1]", -EBADMSG, "chains[0]: expected an object");
	expect_chains_fail("[{\"servers\":[" SRV("a", "h:22") "]}]", -EBADMSG,
			   "chains[0].group: missing");
	expect_chains_fail("[{\"group\":7,\"servers\":[" SRV("a", "h:22") "]}]", -EBADMSG,
			   "chains[0].group: expected a string");
	expect_chains_fail("[{\"group\":\"east\"}]", -EBADMSG, "chains[0].servers: missing");
	expect_chains_fail("[{\"group\":\"east\",\"servers\":{}}]", -EBADMSG,
			   "chains[0].servers: expected an array");
	expect_chains_fail("[{\"group\":\"east\",\"servers\":[]}]", -EBADMSG,
			   "chains[0].servers: group 'east' has no servers");
	expect_chains_fail("[{\"group\":\"east\",\"servers\":[\"h\"]}]", -EBADMSG,
			   "chains[0].servers[0]: expected an object");
	expect_chains_fail("[{\"group\":\"east\",\"servers\":[{\"address\":22,\"name\":\"a\",\"repo\":\"/r\"}]}]",
			   -EBADMSG, "chains[0].servers[0].address: expected a string");
	expect_chains_fail("[{\"group\":\"east\",\"servers\":[{\"address\":\"h:22\",\"repo\":\"/r\"}]}]",
			   -EBADMSG, "chains[0].servers[0].name: missing");
	expect_chains_fail("[{\"group\":\"e st\",\"servers\":[" SRV("a", "h:22") "]}]", -EBADMSG,
			   "chains[0].group: name 'e st' has a character other than");
	/* duplicate names, across groups too */
	expect_chains_fail("[{\"group\":\"east\",\"servers\":[" SRV("a", "h:22") "]},"
			   "{\"group\":\"east\",\"servers\":[" SRV("b", "h:22") "]}]",
			   -EBADMSG, "chains[1].group: group 'east' is also chains[0]");
	expect_chains_fail("[{\"group\":\"east\",\"servers\":[" SRV("a", "h:22") "," SRV("b", "h:22") "]},"
			   "{\"group\":\"west\",\"servers\":[" SRV("c", "h:22") "," SRV("b", "h:22") "]}]",
			   -EBADMSG, "chains[1].servers[1]: server name 'b' is also chains[0].servers[1]");
	/* addresses: the cluster file's rules, and one spelling */
	expect_chains_fail("[{\"group\":\"east\",\"servers\":[" SRV("a", "h:22") "]},"
			   "{\"group\":\"west\",\"servers\":[" SRV("b", "h:22") "," SRV("c", "h:22") ","
			   SRV("d", "h:22") "," SRV("x", "x@") "]}]",
			   -EBADMSG, "chains[1].servers[3]: address 'x@': host is empty");
	expect_chains_fail("[{\"group\":\"east\",\"servers\":[" SRV("a", "-oProxyCommand=sh") "]}]",
			   -EBADMSG, "chains[0].servers[0]: address '-oProxyCommand=sh'");
	expect_chains_fail("[{\"group\":\"east\",\"servers\":[" SRV("a", "-u@h:22") "]}]", -EBADMSG,
			   "user '-u' starts with '-'");
	expect_chains_fail("[{\"group\":\"east\",\"servers\":[" SRV("a", "h:0") "]}]", -EBADMSG,
			   "port '0' is not a number from 1 to 65535");
	expect_chains_fail("[{\"group\":\"east\",\"servers\":[" SRV("a", "10.0.0.1") "]}]", -EBADMSG,
			   "chains[0].servers[0].address: '10.0.0.1' is not written as upgrid writes it ('10.0.0.1:22')");
	expect_chains_fail("[{\"group\":\"east\",\"servers\":[" SRV("a", "h:022") "]}]", -EBADMSG,
			   "not written as upgrid writes it ('h:22')");
	/* repos */
	expect_chains_fail("[{\"group\":\"east\",\"servers\":[{\"address\":\"h:22\",\"name\":\"a\","
			   "\"repo\":\"srv\"}]}]",
			   -EBADMSG, "chains[0].servers[0]: repo 'srv' is not an absolute path");
	expect_chains_fail("[{\"group\":\"east\",\"servers\":[{\"address\":\"h:22\",\"name\":\"a\","
			   "\"repo\":\"/srv/../root\"}]}]",
			   -EBADMSG, "chains[0].servers[0]: repo '/srv/../root' contains '..'");
	expect_chains_fail("[{\"group\":\"east\",\"servers\":[{\"address\":\"h:22\",\"name\":\"a\","
			   "\"repo\":\"/srv\\nx\"}]}]",
			   -EBADMSG, "contains a blank or a control character");

	/* limits: 17 servers in a group, 257 groups */
	n += (size_t)snprintf(big + n, sizeof(big) - n, "[{\"group\":\"east\",\"servers\":[");
	for (int i = 0; i < 17; i++)
		n += (size_t)snprintf(big + n, sizeof(big) - n, "%s{\"address\":\"h:22\",\"name\":\"s%d\",\"repo\":\"/r\"}",
				      i ? "," : "", i);
	snprintf(big + n, sizeof(big) - n, "]}]");
	expect_chains_fail(big, -E2BIG, "chains[0].servers: 17 entries, more than the limit of 16");
	n = (size_t)snprintf(big, sizeof(big), "[");
	for (int i = 0; i < 257; i++)
		n += (size_t)snprintf(big + n, sizeof(big) - n, "%s{}", i ? "," : "");
	snprintf(big + n, sizeof(big) - n, "]");
	expect_chains_fail(big, -E2BIG, "chains: 257 groups, more than the limit of 256");
}

/* ug_manifest_validate (and so the writer) holds an in-memory chain list
 * to the same rules. */
Test(manifest, validate_checks_chains)
{
	struct ug_manifest *m;
	struct ug_group *g;

	m = build_chained();
	g = &m->chains->groups[1];
	free(g->servers[1].name);
	g->servers[1].name = xstrdup("e1");
	expect_invalid(m, -EBADMSG, "chains[1].servers[1]: server name 'e1' is also chains[0].servers[0]");

	m = build_chained();
	free(m->chains->groups[0].servers[1].host);
	m->chains->groups[0].servers[1].host = xstrdup("a..b");
	expect_invalid(m, -EBADMSG, "chains[0].servers[1]: host 'a..b' has an empty label");

	m = build_chained();
	m->chains->groups[1].servers[0].port = 0;
	expect_invalid(m, -EBADMSG, "chains[1].servers[0]: port 0 is not between 1 and 65535");

	m = build_chained();
	free(m->chains->groups[0].servers[0].repo);
	m->chains->groups[0].servers[0].repo = xstrdup("relative");
	expect_invalid(m, -EBADMSG, "chains[0].servers[0]: repo 'relative' is not an absolute path");

	/* 17 servers in a group */
	m = build_chained();
	g = &m->chains->groups[0];
	g->servers = realloc(g->servers, 17 * sizeof(*g->servers));
	cr_assert_not_null(g->servers);
	for (size_t i = g->nservers; i < 17; i++) {
		char name[16];

		snprintf(name, sizeof(name), "x%zu", i);
		memset(&g->servers[i], 0, sizeof(g->servers[i]));
		g->servers[i].name = xstrdup(name);
		g->servers[i].host = xstrdup("h");
		g->servers[i].port = 22;
		g->servers[i].repo = xstrdup("/r");
	}
	g->nservers = 17;
	expect_invalid(m, -E2BIG, "chains[0].servers: group 'east' has 17 servers, more than the limit of 16");
}

/* Random damage inside the chains: rejected or harmless, never a crash;
 * what is accepted validates. */
Test(manifest, chains_survive_random_corruption)
{
	struct ug_manifest *m = build_chained();
	char *doc = write_ok(m, NULL);
	size_t len = strlen(doc);
	size_t lo = (size_t)(strstr(doc, "\"chains\"") - doc);
	size_t hi = (size_t)(strstr(doc, "\"channel\"") - doc);
	uint32_t seed = 99;
	unsigned rejected = 0;

	for (int iter = 0; iter < 2000; iter++) {
		static const char set[] = "[]{}\",:@x-./\\0\x01 ";
		char *copy = malloc(len);
		struct ug_manifest *p = NULL;
		struct ug_error err = { "" };
		int r;

		cr_assert_not_null(copy);
		memcpy(copy, doc, len);
		for (int k = 0; k < 1 + iter % 3; k++) {
			seed = seed * 1103515245u + 12345u;
			copy[lo + (seed >> 8) % (hi - lo)] = set[(seed >> 24) % (sizeof(set) - 1)];
		}
		r = ug_manifest_parse(copy, len, &p, &err);
		cr_assert(r == 0 || r == -EBADMSG || r == -E2BIG, "iteration %d: %d %s", iter, r, err.msg);
		if (r == 0) {
			cr_assert_eq(ug_manifest_validate(p, NULL), 0);
			ug_manifest_free(p);
		} else {
			rejected++;
		}
		free(copy);
	}
	cr_assert_gt(rejected, 1000, "most damage must be caught");
	free(doc);
	ug_manifest_free(m);
}

/* ---- rollout --------------------------------------------------------------- */

static struct ug_rollout *rollout_of(unsigned permille, const char *const *groups, size_t ng,
				     const char *const *patterns, size_t np)
{
	struct ug_rollout *r = calloc(1, sizeof(*r));

	cr_assert_not_null(r);
	r->permille = permille;
	r->groups = calloc(ng + 1, sizeof(*r->groups));
	r->patterns = calloc(np + 1, sizeof(*r->patterns));
	cr_assert(r->groups && r->patterns);
	for (size_t i = 0; i < ng; i++)
		r->groups[i] = xstrdup(groups[i]);
	for (size_t i = 0; i < np; i++)
		r->patterns[i] = xstrdup(patterns[i]);
	r->ngroups = ng;
	r->npatterns = np;
	return r;
}

static struct ug_manifest *build_rolled(void)
{
	static const char *const groups[] = { "east", "west" };
	static const char *const pats[] = { "meter-00*", "kiosk-[ab]?,x" };
	struct ug_manifest *m = build();

	m->rollout = rollout_of(125, groups, 2, pats, 2);
	return m;
}

/* The valid document with "rollout":ROLLOUT where the writer puts it
 * (between "renamed" and "version"). */
static char *doc_with_rollout(const char *rollout)
{
	char *doc = valid_doc(), *to, *out;
	size_t n = strlen(rollout) + 32;

	to = malloc(n);
	cr_assert_not_null(to);
	snprintf(to, n, "\"rollout\":%s,\n\"version\":", rollout);
	out = subst(doc, "\"version\":", to);
	free(to);
	free(doc);
	return out;
}

static void expect_rollout_fail(const char *rollout, int rc, const char *want)
{
	char *doc = doc_with_rollout(rollout);

	expect_parse_fail(doc, rc, want);
	free(doc);
}

Test(manifest, rollout_round_trip_one_line)
{
	struct ug_manifest *m = build_rolled(), *p;
	char *out = write_ok(m, NULL), *again;
	const struct ug_rollout *r;

	cr_assert_not_null(strstr(out, "\n\"rollout\":{\"groups\":[\"east\",\"west\"],\"permille\":125,"
				  "\"terminals\":[\"meter-00*\",\"kiosk-[ab]?,x\"]},\n\"version\":3\n"),
			   "rollout is one sorted line before \"version\":\n%s", out);
	p = parse_ok(out, strlen(out));
	r = p->rollout;
	cr_assert_not_null(r);
	cr_assert_eq(r->permille, 125);
	cr_assert_eq(r->ngroups, 2);
	cr_assert_str_eq(r->groups[1], "west");
	cr_assert_eq(r->npatterns, 2);
	cr_assert_str_eq(r->patterns[1], "kiosk-[ab]?,x");
	cr_assert(ug_rollout_equal(r, m->rollout));
	again = write_ok(p, NULL);
	cr_assert_str_eq(again, out, "written back identically");
	assert_manifest_eq(m, p);
	free(again);
	free(out);
	ug_manifest_free(p);
	ug_manifest_free(m);
}

Test(manifest, rollout_absent_means_everyone_and_percent_alone)
{
	struct ug_manifest *m = build(), *p;
	char *out = write_ok(m, NULL);

	cr_assert_null(strstr(out, "rollout"), "no rollout: no key");
	p = parse_ok(out, strlen(out));
	cr_assert_null(p->rollout);
	ug_manifest_free(p);
	free(out);

	m->rollout = rollout_of(0, NULL, 0, NULL, 0);
	out = write_ok(m, NULL);
	cr_assert_not_null(strstr(out, "\n\"rollout\":{\"permille\":0},\n"), "%s", out);
	p = parse_ok(out, strlen(out));
	cr_assert_not_null(p->rollout);
	cr_assert_eq(p->rollout->permille, 0);
	cr_assert_eq(p->rollout->ngroups + p->rollout->npatterns, 0);
	ug_manifest_free(p);
	free(out);
	ug_manifest_free(m);

	/* empty lists are read as none */
	out = doc_with_rollout("{\"groups\":[],\"permille\":1000,\"terminals\":[]}");
	p = parse_ok(out, strlen(out));
	cr_assert_not_null(p->rollout);
	cr_assert(ug_rollout_is_everyone(p->rollout));
	ug_manifest_free(p);
	free(out);
}

Test(manifest, rejects_invalid_rollout)
{
	static const char *const one[] = { "a b" };
	struct ug_manifest *m;
	char big[80 * 70 + 64];
	size_t at;

	expect_rollout_fail("[]", -EBADMSG, "rollout: expected an object");
	expect_rollout_fail("{}", -EBADMSG, "rollout.permille: missing");
	expect_rollout_fail("{\"permille\":\"10%\"}", -EBADMSG, "rollout.permille: expected an integer");
	expect_rollout_fail("{\"permille\":10.5}", -EBADMSG, "rollout.permille: expected an integer");
	expect_rollout_fail("{\"permille\":1001}", -EBADMSG, "not between 0 and 1000");
	expect_rollout_fail("{\"permille\":-1}", -EBADMSG, "not between 0 and 1000");
	expect_rollout_fail("{\"permille\":10,\"waves\":[1]}", -EBADMSG, "unknown key 'waves'");
	expect_rollout_fail("{\"permille\":10,\"groups\":\"g1\"}", -EBADMSG,
			    "rollout.groups: expected an array");
	expect_rollout_fail("{\"permille\":10,\"groups\":[1]}", -EBADMSG,
			    "rollout.groups[0]: expected a string");
	expect_rollout_fail("{\"permille\":10,\"groups\":[\"a b\"]}", -EBADMSG, "rollout groups[0]");
	expect_rollout_fail("{\"permille\":10,\"terminals\":[\"\"]}", -EBADMSG,
			    "rollout patterns[0] is empty");
	expect_rollout_fail("{\"permille\":10,\"terminals\":[\"m\\u0001\"]}", -EBADMSG,
			    "printable ASCII");
	expect_rollout_fail("{\"permille\":10,\"terminals\":[\"m\\u0000x\"]}", -EBADMSG, "");
	expect_rollout_fail("{\"permille\":10,\"permille\":20}", -EBADMSG, "duplicate");
	/* 65 groups */
	at = (size_t)snprintf(big, sizeof(big), "{\"permille\":10,\"groups\":[");
	for (int i = 0; i < 65; i++)
		at += (size_t)snprintf(big + at, sizeof(big) - at, "%s\"g%d\"", i ? "," : "", i);
	snprintf(big + at, sizeof(big) - at, "]}");
	expect_rollout_fail(big, -E2BIG, "rollout.groups: 65 entries");

	/* in memory: validate and write refuse it too */
	m = build();
	m->rollout = rollout_of(1001, NULL, 0, NULL, 0);
	expect_invalid(m, -EBADMSG, "above 1000");
	m = build();
	m->rollout = rollout_of(10, one, 1, NULL, 0);
	expect_invalid(m, -EBADMSG, "rollout groups[0]");
}

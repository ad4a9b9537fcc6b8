/* manifest.c - strategy manifest: build, validate, write and parse the
 * format 1 JSON document (described in upgrid-manifest(5)).
 *
 * Errors: -EBADMSG for anything malformed or inconsistent, -E2BIG for a
 * count, size or length over one of the UG_*_MAX limits, -ENOMEM. The
 * detail in err always names the field or entry ("files[3].size: ..."). */
#include "config.h"

#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "buf.h"
#include "manifest.h"
#include "util.h"

/* A compressed object may be a little larger than its content (zstd adds
 * at most about 1/256 plus a few bytes); deltas are bounded the same way. */
#define STORED_MAX (UG_FILE_SIZE_MAX + (UG_FILE_SIZE_MAX >> 7))
/* Largest value a JSON integer (json_int_t, int64) can carry. */
#define JSON_U64_MAX ((uint64_t)INT64_MAX)
/* 9999-12-31T23:59:59Z: the last time RFC 3339 spells with four digits. */
#define TIME_MAX INT64_C(253402300799)

/* ---- lifecycle and growers ------------------------------------------- */

struct ug_manifest *ug_manifest_new(void)
{
	struct ug_manifest *m = calloc(1, sizeof(*m));

	if (m)
		m->format = UG_MANIFEST_FORMAT;
	return m;
}

static void bundle_release(struct ug_mbundle *b)
{
	free(b->bases);
	free(b->targets);
	free(b->target_sizes);
}

void ug_manifest_free(struct ug_manifest *m)
{
	if (!m)
		return;
	free(m->channel);
	free(m->message);
	free(m->key_id);
	for (size_t i = 0; i < m->nfiles; i++) {
		free(m->files[i].path);
		free(m->files[i].deltas);
		ug_struct_diff_free(m->files[i].structure);
	}
	free(m->files);
	for (size_t i = 0; i < m->ndirs; i++)
		free(m->dirs[i].path);
	free(m->dirs);
	for (size_t i = 0; i < m->nremoved; i++)
		free(m->removed[i].path);
	free(m->removed);
	for (size_t i = 0; i < m->nrenamed; i++) {
		free(m->renamed[i].from);
		free(m->renamed[i].to);
	}
	free(m->renamed);
	for (size_t i = 0; i < m->nbundles; i++)
		bundle_release(&m->bundles[i]);
	free(m->bundles);
	ug_cluster_free(m->chains);
	ug_rollout_free(m->rollout);
	free(m);
}

/* Append one zeroed element to *arr (n elements, capacity *alloc). The
 * capacity doubles, so building a manifest of n files costs O(n). An array
 * installed by hand may come with *alloc == 0 < n: it is then reallocated,
 * which is safe for any malloc'd array. */
static void *grow(void **arr, size_t *n, size_t *alloc, size_t size)
{
	uint8_t *p;

	if (*n >= *alloc || !*arr) {
		size_t na = 8, bytes;
		void *np;

		if ((*n >= 4 && ug_size_mul(*n, 2, &na) < 0) || ug_size_mul(na, size, &bytes) < 0)
			return NULL;
		np = realloc(*arr, bytes);
		if (!np)
			return NULL;
		*arr = np;
		*alloc = na;
	}
	p = (uint8_t *)*arr + *n * size;
	memset(p, 0, size);
	(*n)++;
	return p;
}

struct ug_mfile *ug_manifest_add_file(struct ug_manifest *m)
{
	return grow((void **)&m->files, &m->nfiles, &m->files_alloc, sizeof(*m->files));
}

struct ug_mdir *ug_manifest_add_dir(struct ug_manifest *m)
{
	return grow((void **)&m->dirs, &m->ndirs, &m->dirs_alloc, sizeof(*m->dirs));
}

struct ug_mremoved *ug_manifest_add_removed(struct ug_manifest *m)
{
	return grow((void **)&m->removed, &m->nremoved, &m->removed_alloc,
		    sizeof(*m->removed));
}

struct ug_mrename *ug_manifest_add_renamed(struct ug_manifest *m)
{
	return grow((void **)&m->renamed, &m->nrenamed, &m->renamed_alloc,
		    sizeof(*m->renamed));
}

struct ug_mbundle *ug_manifest_add_bundle(struct ug_manifest *m)
{
	return grow((void **)&m->bundles, &m->nbundles, &m->bundles_alloc,
		    sizeof(*m->bundles));
}

struct ug_mdelta *ug_mfile_add_delta(struct ug_mfile *f)
{
	return grow((void **)&f->deltas, &f->ndeltas, &f->deltas_alloc, sizeof(*f->deltas));
}

static int path_cmp(const void *key, const void *el)
{
	return strcmp(key, ((const struct ug_mfile *)el)->path);
}

const struct ug_mfile *ug_manifest_find(const struct ug_manifest *m, const char *path)
{
	if (!m || !path || m->nfiles == 0 || !m->files)
		return NULL;
	return bsearch(path, m->files, m->nfiles, sizeof(*m->files), path_cmp);
}

/* ---- validation -------------------------------------------------------- */

static const char *shown(const char *s);

/* JSON strings must be UTF-8 (jansson refuses anything else), so the
 * writer could not encode a path or message that is not. */
static bool utf8_valid(const char *s)
{
	return ug_utf8_valid(s, strlen(s));
}

static int check_path(const char *path, const char *what, size_t i,
		      const char *field, struct ug_error *err)
{
	struct ug_error e;

	if (ug_path_check(path, &e) < 0)
		return ug_error_set(err, -EBADMSG, "%s[%zu]%s%s: %s", what, i,
				    field ? "." : "", field ? field : "", e.msg);
	if (!utf8_valid(path))
		return ug_error_set(err, -EBADMSG, "%s[%zu]%s%s: path is not valid UTF-8",
				    what, i, field ? "." : "", field ? field : "");
	return 0;
}

/* Paths sorted strictly ascending: strcmp order, which also proves that no
 * path appears twice. */
static int check_order(const char *prev, const char *cur, const char *what,
		       size_t i, struct ug_error *err)
{
	int c;

	if (!prev)
		return 0;
	c = strcmp(prev, cur);
	if (c == 0)
		return ug_error_set(err, -EBADMSG, "%s[%zu]: duplicate path '%s'", what, i, cur);
	if (c > 0)
		return ug_error_set(err, -EBADMSG, "%s[%zu]: path '%s' is not sorted (it comes after '%s')",
				    what, i, cur, prev);
	return 0;
}

static int dir_cmp(const void *key, const void *el)
{
	return strcmp(key, ((const struct ug_mdir *)el)->path);
}

/* A terminal creates parents before children, so each parent must be
 * listed (and thus has a mode); dirs[] is sorted, so look it up. */
static int check_parent(const struct ug_manifest *m, const char *path,
			const char *what, size_t i, struct ug_error *err)
{
	const char *slash = strrchr(path, '/');
	char parent[UG_PATH_MAX + 1];
	size_t n;

	if (!slash)
		return 0;
	n = (size_t)(slash - path);
	memcpy(parent, path, n);
	parent[n] = '\0';
	if (m->ndirs == 0 || !bsearch(parent, m->dirs, m->ndirs, sizeof(*m->dirs), dir_cmp))
		return ug_error_set(err, -EBADMSG,
				    "%s[%zu]: parent directory '%s' of '%s' is not listed in dirs",
				    what, i, parent, path);
	return 0;
}

static int check_size(uint64_t v, uint64_t max, const char *what, size_t i,
		      const char *field, struct ug_error *err)
{
	if (v > max)
		return ug_error_set(err, -E2BIG, "%s[%zu].%s: %" PRIu64 " is over the limit of %" PRIu64,
				    what, i, field, v, max);
	return 0;
}

static bool is_lower_hex(const char *s, size_t len)
{
	if (!s || strnlen(s, len + 1) != len)
		return false;
	for (size_t i = 0; i < len; i++)
		if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f')))
			return false;
	return true;
}

static int validate_header(const struct ug_manifest *m, struct ug_error *err)
{
	struct ug_error e;

	if (m->format != UG_MANIFEST_FORMAT)
		return ug_error_set(err, -EBADMSG,
				    "unsupported manifest format %u (this upgrid reads format %d)",
				    m->format, UG_MANIFEST_FORMAT);
	if (ug_channel_check(m->channel, &e) < 0)
		return ug_error_set(err, -EBADMSG, "channel: %s", e.msg);
	if (m->version < 1 || m->version > JSON_U64_MAX)
		return ug_error_set(err, -EBADMSG, "version: %" PRIu64 " is not between 1 and %" PRIu64,
				    m->version, JSON_U64_MAX);
	if (m->parent >= m->version)
		return ug_error_set(err, -EBADMSG, "parent: %" PRIu64 " is not below version %" PRIu64,
				    m->parent, m->version);
	if (m->created < 0 || m->created > TIME_MAX)
		return ug_error_set(err, -EBADMSG, "created: %" PRId64 " is out of range", m->created);
	if (m->expires < 0 || m->expires > TIME_MAX)
		return ug_error_set(err, -EBADMSG, "expires: %" PRId64 " is out of range", m->expires);
	if (m->expires <= m->created)
		return ug_error_set(err, -EBADMSG, "expires: must be later than created");
	if (m->message) {
		if (strnlen(m->message, UG_MESSAGE_MAX + 1) > UG_MESSAGE_MAX)
			return ug_error_set(err, -E2BIG, "message: longer than %u bytes", UG_MESSAGE_MAX);
		if (!utf8_valid(m->message))
			return ug_error_set(err, -EBADMSG, "message: not valid UTF-8");
	}
	if (m->key_id && !is_lower_hex(m->key_id, 16))
		return ug_error_set(err, -EBADMSG, "key: expected 16 lowercase hex digits");
	return 0;
}

static int validate_dirs(const struct ug_manifest *m, struct ug_error *err)
{
	int r;

	if (m->ndirs > UG_FILES_MAX)
		return ug_error_set(err, -E2BIG, "dirs: %zu entries, more than the limit of %u",
				    m->ndirs, UG_FILES_MAX);
	if (m->ndirs > 0 && !m->dirs)
		return ug_error_set(err, -EINVAL, "dirs: array is missing");
	for (size_t i = 0; i < m->ndirs; i++) {
		const struct ug_mdir *d = &m->dirs[i];

		r = check_path(d->path, "dirs", i, NULL, err);
		if (r < 0)
			return r;
		if (d->mode > 07777)
			return ug_error_set(err, -EBADMSG, "dirs[%zu]: mode %o is over 07777", i, d->mode);
		r = check_order(i ? m->dirs[i - 1].path : NULL, d->path, "dirs", i, err);
		if (r < 0)
			return r;
	}
	/* parents only once all paths are known good and sorted (bsearch) */
	for (size_t i = 0; i < m->ndirs; i++) {
		r = check_parent(m, m->dirs[i].path, "dirs", i, err);
		if (r < 0)
			return r;
	}
	return 0;
}

/* ---- validation: files[].structure ---------------------------------------
 *
 * A terminal merges or migrates by what this object says, so it is held to
 * what the publisher's diff (structure.c) can produce: names as the parsers
 * accept them, the lists of the file's kind only, flags that agree with the
 * lists, and lists that are sets and agree with each other. */

static bool is_conf_format(enum ug_struct_format f)
{
	return f == UG_STRUCT_KV || f == UG_STRUCT_INI;
}

static bool is_table_format(enum ug_struct_format f)
{
	return f == UG_STRUCT_CSV || f == UG_STRUCT_TSV;
}

static int check_sname(const char *s, bool nonempty, const char *where, const char *field,
		       size_t j, int k, struct ug_error *err)
{
	char at[32] = "";
	size_t n;

	if (k >= 0)
		snprintf(at, sizeof(at), "[%d]", k);
	if (!s)
		return ug_error_set(err, -EINVAL, "%s.%s[%zu]%s: missing", where, field, j, at);
	n = strnlen(s, UG_STRUCT_NAME_MAX + 1);
	if (n > UG_STRUCT_NAME_MAX)
		return ug_error_set(err, -E2BIG, "%s.%s[%zu]%s: longer than %u bytes", where, field,
				    j, at, UG_STRUCT_NAME_MAX);
	if (n == 0 && nonempty)
		return ug_error_set(err, -EBADMSG, "%s.%s[%zu]%s: empty name", where, field, j, at);
	for (size_t i = 0; i < n; i++)
		if ((unsigned char)s[i] < 0x20 || s[i] == 0x7f)
			return ug_error_set(err, -EBADMSG, "%s.%s[%zu]%s: contains a control character",
					    where, field, j, at);
	if (!ug_utf8_valid(s, n))
		return ug_error_set(err, -EBADMSG, "%s.%s[%zu]%s: not valid UTF-8", where, field, j, at);
	return 0;
}

static int check_names(char *const *v, size_t n, size_t max, bool nonempty, const char *where,
		       const char *field, struct ug_error *err)
{
	int r;

	if (n > max)
		return ug_error_set(err, -E2BIG, "%s.%s: %zu entries, more than the limit of %zu",
				    where, field, n, max);
	if (n > 0 && !v)
		return ug_error_set(err, -EINVAL, "%s.%s: array is missing", where, field);
	for (size_t j = 0; j < n; j++)
		if ((r = check_sname(v[j], nonempty, where, field, j, -1, err)) < 0)
			return r;
	return 0;
}

/* a: section (may be "": the keys before any header) or old column;
 * b: key or new column, never empty */
static int check_pairs(const struct ug_strpair *v, size_t n, size_t max, bool a_nonempty,
		       const char *where, const char *field, struct ug_error *err)
{
	int r;

	if (n > max)
		return ug_error_set(err, -E2BIG, "%s.%s: %zu entries, more than the limit of %zu",
				    where, field, n, max);
	if (n > 0 && !v)
		return ug_error_set(err, -EINVAL, "%s.%s: array is missing", where, field);
	for (size_t j = 0; j < n; j++)
		if ((r = check_sname(v[j].a, a_nonempty, where, field, j, 0, err)) < 0 ||
		    (r = check_sname(v[j].b, true, where, field, j, 1, err)) < 0)
			return r;
	return 0;
}

static int strp_cmp(const void *x, const void *y)
{
	return strcmp(*(const char *const *)x, *(const char *const *)y);
}

static int pairp_cmp(const void *x, const void *y)
{
	const struct ug_strpair *a = *(const struct ug_strpair *const *)x;
	const struct ug_strpair *b = *(const struct ug_strpair *const *)y;
	int c = strcmp(a->a, b->a);

	return c ? c : strcmp(a->b, b->b);
}

/* The names of up to three lists, sorted together: a name in two of them,
 * or twice in one, is reported. v is scratch of n1 + n2 + n3 pointers. */
static int unique_names(const char **v, char *const *l1, size_t n1, char *const *l2, size_t n2,
			char *const *l3, size_t n3, const char *where, const char *what,
			struct ug_error *err)
{
	size_t n = 0;

	for (size_t i = 0; i < n1; i++)
		v[n++] = l1[i];
	for (size_t i = 0; i < n2; i++)
		v[n++] = l2[i];
	for (size_t i = 0; i < n3; i++)
		v[n++] = l3[i];
	qsort(v, n, sizeof(*v), strp_cmp);
	for (size_t i = 1; i < n; i++)
		if (strcmp(v[i - 1], v[i]) == 0)
			return ug_error_set(err, -EBADMSG, "%s: %s '%s' is listed twice", where, what,
					    shown(v[i]));
	return 0;
}

static int validate_conf_structure(const struct ug_struct_diff *s, const char *where,
				   struct ug_error *err)
{
	const struct ug_strpair **pv = NULL;
	const char **sv = NULL;
	size_t nk = s->nkeys_added + s->nkeys_removed + s->nkeys_changed, n = 0;
	int r;

	if (s->ncolumns || s->ncolumns_added || s->ncolumns_removed || s->ncolumns_renamed ||
	    s->reordered)
		return ug_error_set(err, -EBADMSG, "%s: columns given for a config file", where);
	if ((r = check_names(s->sections_added, s->nsections_added, UG_STRUCT_SECTIONS_MAX, true,
			     where, "sections_added", err)) < 0 ||
	    (r = check_names(s->sections_removed, s->nsections_removed, UG_STRUCT_SECTIONS_MAX,
			     true, where, "sections_removed", err)) < 0 ||
	    (r = check_pairs(s->keys_added, s->nkeys_added, UG_STRUCT_KEYS_MAX, false, where,
			     "keys_added", err)) < 0 ||
	    (r = check_pairs(s->keys_removed, s->nkeys_removed, UG_STRUCT_KEYS_MAX, false, where,
			     "keys_removed", err)) < 0 ||
	    (r = check_pairs(s->keys_changed, s->nkeys_changed, UG_STRUCT_KEYS_MAX, false, where,
			     "keys_changed", err)) < 0)
		return r;
	if (s->structural != (s->nsections_added || s->nsections_removed || s->nkeys_added ||
			      s->nkeys_removed))
		return ug_error_set(err, -EBADMSG,
				    "%s.structural: must be true exactly when sections or keys are added or removed",
				    where);
	if (s->content != (s->nkeys_changed > 0))
		return ug_error_set(err, -EBADMSG,
				    "%s.content: must be true exactly when keys_changed is not empty", where);
	sv = malloc((s->nsections_added + s->nsections_removed + 1) * sizeof(*sv));
	pv = malloc((nk + 1) * sizeof(*pv));
	if (!sv || !pv) {
		r = -ENOMEM;
		goto out;
	}
	r = unique_names(sv, s->sections_added, s->nsections_added, s->sections_removed,
			 s->nsections_removed, NULL, 0, where, "section", err);
	if (r < 0)
		goto out;
	for (size_t i = 0; i < s->nkeys_added; i++)
		pv[n++] = &s->keys_added[i];
	for (size_t i = 0; i < s->nkeys_removed; i++)
		pv[n++] = &s->keys_removed[i];
	for (size_t i = 0; i < s->nkeys_changed; i++)
		pv[n++] = &s->keys_changed[i];
	qsort(pv, n, sizeof(*pv), pairp_cmp);
	for (size_t i = 1; i < n; i++) {
		if (pairp_cmp(&pv[i - 1], &pv[i]) == 0) {
			char a[80];

			snprintf(a, sizeof(a), "%.64s", shown(pv[i]->a));
			r = ug_error_set(err, -EBADMSG, "%s: key ['%s', '%.64s'] is listed twice", where,
					 a, shown(pv[i]->b));
			goto out;
		}
	}
out:
	free(sv);
	free(pv);
	return r;
}

static bool in_sorted(const char *const *v, size_t n, const char *s)
{
	return n > 0 && bsearch(&s, v, n, sizeof(*v), strp_cmp) != NULL;
}

static int validate_table_structure(const struct ug_struct_diff *s, const char *where,
				    struct ug_error *err)
{
	const char **cols = NULL, **tmp = NULL;
	char **from = NULL, **to = NULL;
	size_t nr = s->ncolumns_renamed;
	int r;

	if (s->nsections_added || s->nsections_removed || s->nkeys_added || s->nkeys_removed ||
	    s->nkeys_changed)
		return ug_error_set(err, -EBADMSG, "%s: sections or keys given for a data file", where);
	if ((r = check_names(s->columns, s->ncolumns, UG_STRUCT_COLUMNS_MAX, false, where,
			     "columns", err)) < 0 ||
	    (r = check_names(s->columns_added, s->ncolumns_added, UG_STRUCT_COLUMNS_MAX, false,
			     where, "columns_added", err)) < 0 ||
	    (r = check_names(s->columns_removed, s->ncolumns_removed, UG_STRUCT_COLUMNS_MAX, false,
			     where, "columns_removed", err)) < 0 ||
	    (r = check_pairs(s->columns_renamed, nr, UG_STRUCT_COLUMNS_MAX, true, where,
			     "columns_renamed", err)) < 0)
		return r;
	if (s->structural != (s->ncolumns_added || s->ncolumns_removed || nr || s->reordered))
		return ug_error_set(err, -EBADMSG,
				    "%s.structural: must be true exactly when columns are added, removed, renamed or reordered",
				    where);
	cols = malloc((s->ncolumns + 1) * sizeof(*cols));
	tmp = malloc((s->ncolumns + s->ncolumns_removed + nr + 1) * sizeof(*tmp));
	from = malloc((nr + 1) * sizeof(*from));
	to = malloc((nr + 1) * sizeof(*to));
	if (!cols || !tmp || !from || !to) {
		r = -ENOMEM;
		goto out;
	}
	for (size_t i = 0; i < nr; i++) {
		from[i] = s->columns_renamed[i].a;
		to[i] = s->columns_renamed[i].b;
	}
	/* the new header is a set; added and renamed-to name some of it,
	 * each once; removed and renamed-from name old columns, not in it */
	if ((r = unique_names(cols, s->columns, s->ncolumns, NULL, 0, NULL, 0, where, "column",
			      err)) < 0 ||
	    (r = unique_names(tmp, s->columns_added, s->ncolumns_added, to, nr, NULL, 0, where,
			      "added or renamed column", err)) < 0 ||
	    (r = unique_names(tmp, s->columns_removed, s->ncolumns_removed, from, nr, NULL, 0,
			      where, "removed or renamed column", err)) < 0)
		goto out;
	for (size_t i = 0; i < s->ncolumns_added; i++)
		if (!in_sorted(cols, s->ncolumns, s->columns_added[i])) {
			r = ug_error_set(err, -EBADMSG, "%s.columns_added[%zu]: '%.64s' is not in columns",
					 where, i, shown(s->columns_added[i]));
			goto out;
		}
	for (size_t i = 0; i < nr; i++)
		if (!in_sorted(cols, s->ncolumns, to[i]) || in_sorted(cols, s->ncolumns, from[i])) {
			r = ug_error_set(err, -EBADMSG,
					 "%s.columns_renamed[%zu]: the new name must be in columns and the old one not",
					 where, i);
			goto out;
		}
	for (size_t i = 0; i < s->ncolumns_removed; i++)
		if (in_sorted(cols, s->ncolumns, s->columns_removed[i])) {
			r = ug_error_set(err, -EBADMSG, "%s.columns_removed[%zu]: '%.64s' is still in columns",
					 where, i, shown(s->columns_removed[i]));
			goto out;
		}
out:
	free(cols);
	free(tmp);
	free(from);
	free(to);
	return r;
}

static int validate_structure(const struct ug_mfile *f, size_t i, struct ug_error *err)
{
	const struct ug_struct_diff *s = f->structure;
	char where[64];

	snprintf(where, sizeof(where), "files[%zu].structure", i);
	if (is_conf_format(s->format)) {
		if (f->cls != UG_CLASS_CONFIG)
			return ug_error_set(err, -EBADMSG, "%s: format '%s' is for class 'config', not '%s'",
					    where, ug_struct_format_name(s->format), ug_class_name(f->cls));
		return validate_conf_structure(s, where, err);
	}
	if (is_table_format(s->format)) {
		if (f->cls != UG_CLASS_DATA)
			return ug_error_set(err, -EBADMSG, "%s: format '%s' is for class 'data', not '%s'",
					    where, ug_struct_format_name(s->format), ug_class_name(f->cls));
		return validate_table_structure(s, where, err);
	}
	return ug_error_set(err, -EBADMSG, "%s.format: unknown format %d", where, (int)s->format);
}

static int validate_file(const struct ug_manifest *m, size_t i, struct ug_error *err)
{
	const struct ug_mfile *f = &m->files[i];
	int r;

	r = check_path(f->path, "files", i, NULL, err);
	if (r < 0)
		return r;
	r = check_order(i ? m->files[i - 1].path : NULL, f->path, "files", i, err);
	if (r < 0)
		return r;
	if (f->mode > 07777)
		return ug_error_set(err, -EBADMSG, "files[%zu]: mode %o is over 07777", i, f->mode);
	if ((r = check_size(f->size, UG_FILE_SIZE_MAX, "files", i, "size", err)) < 0 ||
	    (r = check_size(f->stored, STORED_MAX, "files", i, "stored", err)) < 0)
		return r;
	if ((unsigned)f->cls >= UG_CLASS__COUNT)
		return ug_error_set(err, -EBADMSG, "files[%zu]: unknown class %d", i, (int)f->cls);
	if ((unsigned)f->action >= UG_ACTION__COUNT)
		return ug_error_set(err, -EBADMSG, "files[%zu]: unknown action %d", i, (int)f->action);
	/* a listed file is part of the version: deletion is what "removed" says */
	if (f->action == UG_ACTION_DELETE)
		return ug_error_set(err, -EBADMSG, "files[%zu]: action 'delete' is not allowed for a file of the version", i);
	if (f->ndeltas > UG_DELTAS_PER_FILE_MAX)
		return ug_error_set(err, -E2BIG, "files[%zu].deltas: %zu entries, more than the limit of %u",
				    i, f->ndeltas, UG_DELTAS_PER_FILE_MAX);
	if (f->ndeltas > 0 && !f->deltas)
		return ug_error_set(err, -EINVAL, "files[%zu].deltas: array is missing", i);
	for (size_t j = 0; j < f->ndeltas; j++) {
		const struct ug_mdelta *d = &f->deltas[j];

		if (d->codec != UG_CODEC_ZSTD_PREFIX && d->codec != UG_CODEC_RSYNC_ZSTD)
			return ug_error_set(err, -EBADMSG,
					    "files[%zu].deltas[%zu]: codec '%s' is not a per-file codec",
					    i, j, ug_codec_name(d->codec));
		if (d->size > STORED_MAX)
			return ug_error_set(err, -E2BIG,
					    "files[%zu].deltas[%zu].size: %" PRIu64 " is over the limit of %" PRIu64,
					    i, j, d->size, (uint64_t)STORED_MAX);
		if (d->memory > JSON_U64_MAX)
			return ug_error_set(err, -E2BIG,
					    "files[%zu].deltas[%zu].memory: %" PRIu64 " is over the limit of %" PRIu64,
					    i, j, d->memory, JSON_U64_MAX);
	}
	if (f->structure && (r = validate_structure(f, i, err)) < 0)
		return r;
	return check_parent(m, f->path, "files", i, err);
}

/* Both arrays are sorted: a merge walk finds a path that is both. */
static int check_file_dir_clash(const struct ug_manifest *m, struct ug_error *err)
{
	size_t i = 0, j = 0;

	while (i < m->nfiles && j < m->ndirs) {
		int c = strcmp(m->files[i].path, m->dirs[j].path);

		if (c == 0)
			return ug_error_set(err, -EBADMSG, "files[%zu]: path '%s' is also listed in dirs",
					    i, m->files[i].path);
		if (c < 0)
			i++;
		else
			j++;
	}
	return 0;
}

static int validate_changes(const struct ug_manifest *m, struct ug_error *err)
{
	int r;

	if (m->nremoved > UG_FILES_MAX)
		return ug_error_set(err, -E2BIG, "removed: %zu entries, more than the limit of %u",
				    m->nremoved, UG_FILES_MAX);
	if (m->nrenamed > UG_FILES_MAX)
		return ug_error_set(err, -E2BIG, "renamed: %zu entries, more than the limit of %u",
				    m->nrenamed, UG_FILES_MAX);
	if ((m->nremoved > 0 && !m->removed) || (m->nrenamed > 0 && !m->renamed))
		return ug_error_set(err, -EINVAL, "removed/renamed: array is missing");
	for (size_t i = 0; i < m->nremoved; i++) {
		r = check_path(m->removed[i].path, "removed", i, NULL, err);
		if (r < 0)
			return r;
	}
	for (size_t i = 0; i < m->nrenamed; i++) {
		r = check_path(m->renamed[i].from, "renamed", i, "from", err);
		if (r < 0)
			return r;
		r = check_path(m->renamed[i].to, "renamed", i, "to", err);
		if (r < 0)
			return r;
	}
	return 0;
}

/* hash first: bsearch compares a bare struct ug_hash key against it */
struct hash_size {
	struct ug_hash hash;
	uint64_t size;
};

static int hash_cmp_qsort(const void *a, const void *b)
{
	return ug_hash_cmp(a, b);
}

static int validate_bundles(const struct ug_manifest *m, struct ug_error *err)
{
	struct hash_size *hashes = NULL;
	size_t n;
	int r = 0;

	if (m->nbundles > UG_BUNDLES_MAX)
		return ug_error_set(err, -E2BIG, "bundles: %zu entries, more than the limit of %u",
				    m->nbundles, UG_BUNDLES_MAX);
	if (m->nbundles == 0)
		return 0;
	if (!m->bundles)
		return ug_error_set(err, -EINVAL, "bundles: array is missing");
	/* every target must be the content of a file of this version: sort the
	 * file hashes once and look each target up */
	if (ug_size_mul(m->nfiles ? m->nfiles : 1, sizeof(*hashes), &n) < 0)
		return -ENOMEM;
	hashes = malloc(n);
	if (!hashes)
		return -ENOMEM;
	for (size_t i = 0; i < m->nfiles; i++) {
		hashes[i].hash = m->files[i].hash;
		hashes[i].size = m->files[i].size;
	}
	qsort(hashes, m->nfiles, sizeof(*hashes), hash_cmp_qsort);

	for (size_t i = 0; i < m->nbundles && r == 0; i++) {
		const struct ug_mbundle *b = &m->bundles[i];

		if (b->from < 1 || b->from >= m->version) {
			r = ug_error_set(err, -EBADMSG,
					 "bundles[%zu].from: %" PRIu64 " is not between 1 and version %" PRIu64 " - 1",
					 i, b->from, m->version);
			break;
		}
		if (b->size > JSON_U64_MAX || b->memory > JSON_U64_MAX) {
			r = ug_error_set(err, -E2BIG, "bundles[%zu]: size or memory over the limit of %" PRIu64,
					 i, JSON_U64_MAX);
			break;
		}
		if (b->nbases > UG_FILES_MAX || b->ntargets > UG_FILES_MAX) {
			r = ug_error_set(err, -E2BIG, "bundles[%zu]: more than %u bases or targets",
					 i, UG_FILES_MAX);
			break;
		}
		if (b->ntargets == 0) {
			r = ug_error_set(err, -EBADMSG, "bundles[%zu].targets: must not be empty", i);
			break;
		}
		if ((b->nbases > 0 && !b->bases) || !b->targets || !b->target_sizes) {
			r = ug_error_set(err, -EINVAL, "bundles[%zu]: array is missing", i);
			break;
		}
		for (size_t j = 0; j < b->ntargets; j++) {
			const struct hash_size *h = m->nfiles == 0 ? NULL :
				bsearch(&b->targets[j], hashes, m->nfiles, sizeof(*hashes), hash_cmp_qsort);
			char hex[UG_HASH_HEX_LEN + 1];

			if (!h) {
				ug_hash_hex(&b->targets[j], hex);
				r = ug_error_set(err, -EBADMSG,
						 "bundles[%zu].targets[%zu]: %s is not the content of any file",
						 i, j, hex);
				break;
			}
			if (b->target_sizes[j] > UG_FILE_SIZE_MAX) {
				r = ug_error_set(err, -E2BIG,
						 "bundles[%zu].targets[%zu].size: %" PRIu64 " is over the limit of %" PRIu64,
						 i, j, b->target_sizes[j], (uint64_t)UG_FILE_SIZE_MAX);
				break;
			}
			/* the applier splits its output by these sizes */
			if (b->target_sizes[j] != h->size) {
				r = ug_error_set(err, -EBADMSG,
						 "bundles[%zu].targets[%zu].size: %" PRIu64 " differs from the file's %" PRIu64,
						 i, j, b->target_sizes[j], h->size);
				break;
			}
		}
	}
	free(hashes);
	return r;
}

int ug_manifest_validate(const struct ug_manifest *m, struct ug_error *err)
{
	int r;

	if (!m)
		return ug_error_set(err, -EINVAL, "no manifest");
	r = validate_header(m, err);
	if (r < 0)
		return r;
	r = validate_dirs(m, err);
	if (r < 0)
		return r;
	if (m->nfiles > UG_FILES_MAX)
		return ug_error_set(err, -E2BIG, "files: %zu entries, more than the limit of %u",
				    m->nfiles, UG_FILES_MAX);
	if (m->nfiles > 0 && !m->files)
		return ug_error_set(err, -EINVAL, "files: array is missing");
	for (size_t i = 0; i < m->nfiles; i++) {
		r = validate_file(m, i, err);
		if (r < 0)
			return r;
	}
	r = check_file_dir_clash(m, err);
	if (r < 0)
		return r;
	r = validate_changes(m, err);
	if (r < 0)
		return r;
	r = validate_bundles(m, err);
	if (r < 0)
		return r;
	if (m->rollout) {
		struct ug_error e;

		/* its messages name the field ("rollout groups[2]: ...") */
		r = ug_rollout_check(m->rollout, &e);
		if (r < 0)
			return ug_error_set(err, r == -E2BIG ? r : -EBADMSG, "%s", e.msg);
	}
	/* the cluster file's own rules (cluster.c), named as chains[i]... */
	return ug_cluster_check(m->chains, "chains", err);
}

/* ---- writing ----------------------------------------------------------- */

static json_t *hash_json(const struct ug_hash *h)
{
	char hex[UG_HASH_HEX_LEN + 1];

	ug_hash_hex(h, hex);
	return json_string(hex);
}

static json_t *mode_json(uint32_t mode)
{
	char s[8];

	snprintf(s, sizeof(s), "%04o", (unsigned)mode);
	return json_string(s);
}

/* json_pack steals "o" references even when it fails, so a NULL from a
 * nested constructor is reported by json_pack returning NULL. */
static json_t *dir_json(const struct ug_manifest *m, size_t i)
{
	const struct ug_mdir *d = &m->dirs[i];

	return json_pack("{s:o, s:s}", "mode", mode_json(d->mode), "path", d->path);
}

static json_t *names_json(char *const *v, size_t n)
{
	json_t *a = json_array();

	for (size_t i = 0; a && i < n; i++) {
		if (json_array_append_new(a, json_string(v[i])) < 0) {
			json_decref(a);
			return NULL;
		}
	}
	return a;
}

static json_t *pairs_json(const struct ug_strpair *v, size_t n)
{
	json_t *a = json_array();

	for (size_t i = 0; a && i < n; i++) {
		if (json_array_append_new(a, json_pack("[s, s]", v[i].a, v[i].b)) < 0) {
			json_decref(a);
			return NULL;
		}
	}
	return a;
}

/* Only the lists of the file's kind are written; keys are sorted when
 * the line is dumped. */
static json_t *structure_json(const struct ug_struct_diff *s);

struct json_t *ug_struct_diff_json(const struct ug_struct_diff *d)
{
	return structure_json(d);
}

static json_t *structure_json(const struct ug_struct_diff *s)
{
	if (is_conf_format(s->format))
		return json_pack("{s:s, s:b, s:b, s:o, s:o, s:o, s:o, s:o}",
				 "format", ug_struct_format_name(s->format),
				 "structural", (int)s->structural,
				 "content", (int)s->content,
				 "sections_added", names_json(s->sections_added, s->nsections_added),
				 "sections_removed", names_json(s->sections_removed, s->nsections_removed),
				 "keys_added", pairs_json(s->keys_added, s->nkeys_added),
				 "keys_removed", pairs_json(s->keys_removed, s->nkeys_removed),
				 "keys_changed", pairs_json(s->keys_changed, s->nkeys_changed));
	return json_pack("{s:s, s:b, s:b, s:o, s:o, s:o, s:o, s:b}",
			 "format", ug_struct_format_name(s->format),
			 "structural", (int)s->structural,
			 "content", (int)s->content,
			 "columns", names_json(s->columns, s->ncolumns),
			 "columns_added", names_json(s->columns_added, s->ncolumns_added),
			 "columns_removed", names_json(s->columns_removed, s->ncolumns_removed),
			 "columns_renamed", pairs_json(s->columns_renamed, s->ncolumns_renamed),
			 "reordered", (int)s->reordered);
}

static json_t *file_json(const struct ug_manifest *m, size_t i)
{
	const struct ug_mfile *f = &m->files[i];
	char xxh[UG_XXH_HEX_LEN + 1];
	json_t *deltas = json_array(), *file;

	if (!deltas)
		return NULL;
	for (size_t j = 0; j < f->ndeltas; j++) {
		const struct ug_mdelta *d = &f->deltas[j];
		json_t *o = json_pack("{s:s, s:o, s:o, s:I, s:I}",
				      "codec", ug_codec_name(d->codec),
				      "from", hash_json(&d->from),
				      "id", hash_json(&d->id),
				      "memory", (json_int_t)d->memory,
				      "size", (json_int_t)d->size);
		if (json_array_append_new(deltas, o) < 0) {
			json_decref(deltas);
			return NULL;
		}
	}
	ug_xxh_hex(&f->xxh, xxh);
	file = json_pack("{s:s, s:o, s:s, s:o, s:o, s:s, s:I, s:I, s:s}",
			 "action", ug_action_name(f->action),
			 "blake2b", hash_json(&f->hash),
			 "class", ug_class_name(f->cls),
			 "deltas", deltas,
			 "mode", mode_json(f->mode),
			 "path", f->path,
			 "size", (json_int_t)f->size,
			 "stored", (json_int_t)f->stored,
			 "xxh3", xxh);
	/* omitted (not null) when there is none */
	if (file && f->structure &&
	    json_object_set_new(file, "structure", structure_json(f->structure)) < 0) {
		json_decref(file);
		return NULL;
	}
	return file;
}

static json_t *removed_json(const struct ug_manifest *m, size_t i)
{
	const struct ug_mremoved *r = &m->removed[i];

	return json_pack("{s:o, s:s}", "blake2b", hash_json(&r->hash), "path", r->path);
}

static json_t *renamed_json(const struct ug_manifest *m, size_t i)
{
	const struct ug_mrename *r = &m->renamed[i];

	return json_pack("{s:o, s:s, s:s}", "blake2b", hash_json(&r->hash),
			 "from", r->from, "to", r->to);
}

static json_t *bundle_json(const struct ug_manifest *m, size_t i)
{
	const struct ug_mbundle *b = &m->bundles[i];
	json_t *bases = json_array(), *targets = json_array();

	if (!bases || !targets)
		goto fail;
	for (size_t j = 0; j < b->nbases; j++)
		if (json_array_append_new(bases, hash_json(&b->bases[j])) < 0)
			goto fail;
	for (size_t j = 0; j < b->ntargets; j++) {
		json_t *t = json_pack("{s:o, s:I}", "blake2b", hash_json(&b->targets[j]),
				      "size", (json_int_t)b->target_sizes[j]);
		if (json_array_append_new(targets, t) < 0)
			goto fail;
	}
	return json_pack("{s:o, s:I, s:o, s:I, s:I, s:o}",
			 "bases", bases,
			 "from", (json_int_t)b->from,
			 "id", hash_json(&b->id),
			 "memory", (json_int_t)b->memory,
			 "size", (json_int_t)b->size,
			 "targets", targets);
fail:
	json_decref(bases);
	json_decref(targets);
	return NULL;
}

/* One group per line: a group's chain changes as a whole. */
static json_t *chain_json(const struct ug_manifest *m, size_t i)
{
	const struct ug_group *g = &m->chains->groups[i];
	json_t *servers = json_array();

	for (size_t j = 0; servers && j < g->nservers; j++) {
		const struct ug_server *srv = &g->servers[j];
		char addr[UG_ADDRESS_MAX];

		if (ug_server_format_address(srv, addr, sizeof(addr)) < 0 ||
		    json_array_append_new(servers, json_pack("{s:s, s:s, s:s}", "address", addr,
							     "name", srv->name, "repo",
							     srv->repo)) < 0) {
			json_decref(servers);
			return NULL;
		}
	}
	return json_pack("{s:s, s:o}", "group", g->name, "servers", servers);
}

/* Append v (consumed) as compact JSON with sorted keys. */
static int put_json(struct ug_buf *b, json_t *v)
{
	char *s;
	int r;

	if (!v)
		return -ENOMEM;
	s = json_dumps(v, JSON_COMPACT | JSON_SORT_KEYS | JSON_ENCODE_ANY);
	json_decref(v);
	if (!s)
		return -ENOMEM;
	r = ug_buf_put(b, s, strlen(s));
	free(s);
	return r;
}

/* "key":VALUE then ",\n" unless it is the last key. */
static int put_scalar(struct ug_buf *b, const char *key, json_t *v, bool last)
{
	int r = ug_buf_putf(b, "\"%s\":", key);

	if (r < 0) {
		json_decref(v);
		return r;
	}
	r = put_json(b, v);
	return r < 0 ? r : ug_buf_put(b, last ? "\n" : ",\n", last ? 1 : 2);
}

/* One element per line, so that a file that changes between versions
 * changes one line and the manifests delta well. */
static int put_array(struct ug_buf *b, const char *key, const struct ug_manifest *m,
		     size_t n, json_t *(*element)(const struct ug_manifest *, size_t))
{
	int r = ug_buf_putf(b, "\"%s\":[%s", key, n ? "\n" : "");

	for (size_t i = 0; i < n && r == 0; i++) {
		r = put_json(b, element(m, i));
		if (r == 0)
			r = ug_buf_put(b, i + 1 < n ? ",\n" : "\n", i + 1 < n ? 2 : 1);
	}
	return r < 0 ? r : ug_buf_put(b, "],\n", 3);
}

static json_t *time_json(int64_t t)
{
	char s[32];

	ug_time_format(t, s);
	return json_string(s);
}

int ug_manifest_write(const struct ug_manifest *m, char **ret, size_t *ret_len,
		      struct ug_error *err)
{
	struct ug_buf b;
	uint8_t *data;
	size_t len;
	int r;

	r = ug_manifest_validate(m, err);
	if (r < 0)
		return r;
	ug_buf_init(&b, UG_MANIFEST_MAX);
	/* keys in sorted order, as JSON_SORT_KEYS would put them */
	if ((r = ug_buf_put(&b, "{\n", 2)) < 0 ||
	    (r = put_array(&b, "bundles", m, m->nbundles, bundle_json)) < 0 ||
	    /* absent, not empty, without a chain list: manifests published
	     * without a cluster file stay as they were */
	    (m->chains && (r = put_array(&b, "chains", m, m->chains->ngroups, chain_json)) < 0) ||
	    (r = put_scalar(&b, "channel", json_string(m->channel), false)) < 0 ||
	    (r = put_scalar(&b, "created", time_json(m->created), false)) < 0 ||
	    (r = put_array(&b, "dirs", m, m->ndirs, dir_json)) < 0 ||
	    (r = put_scalar(&b, "expires", time_json(m->expires), false)) < 0 ||
	    (r = put_array(&b, "files", m, m->nfiles, file_json)) < 0 ||
	    (r = put_scalar(&b, "format", json_integer(m->format), false)) < 0 ||
	    (m->key_id && (r = put_scalar(&b, "key", json_string(m->key_id), false)) < 0) ||
	    (m->message && (r = put_scalar(&b, "message", json_string(m->message), false)) < 0) ||
	    (r = put_scalar(&b, "parent", json_integer((json_int_t)m->parent), false)) < 0 ||
	    (r = put_array(&b, "removed", m, m->nremoved, removed_json)) < 0 ||
	    (r = put_array(&b, "renamed", m, m->nrenamed, renamed_json)) < 0 ||
	    /* absent when everyone may install the version */
	    (m->rollout && (r = put_scalar(&b, "rollout", ug_rollout_json(m->rollout), false)) < 0) ||
	    (r = put_scalar(&b, "version", json_integer((json_int_t)m->version), true)) < 0 ||
	    (r = ug_buf_put(&b, "}\n", 2)) < 0)
		goto out;
	r = ug_buf_steal(&b, &data, &len);
	if (r < 0)
		goto out;
	*ret = (char *)data;
	if (ret_len)
		*ret_len = len;
out:
	ug_buf_release(&b);
	if (r == -E2BIG)
		ug_error_set(err, r, "manifest is larger than %u bytes", UG_MANIFEST_MAX);
	else if (r == -ENOMEM)
		ug_error_set(err, r, "out of memory writing the manifest");
	return r;
}

/* ---- parsing ----------------------------------------------------------- */

/* Strings echoed into error messages come from the document: show them
 * only if they cannot carry terminal escapes. */
static const char *shown(const char *s)
{
	for (const char *c = s; *c; c++)
		if ((unsigned char)*c < 0x20 || (unsigned char)*c >= 0x7f)
			return "(unprintable)";
	return s;
}

/* Errors name the field as a path: "files[3].deltas[0].codec: ...". */
static int field_error(struct ug_error *err, int rc, const char *where, const char *key,
		       const char *fmt, ...) __attribute__((format(printf, 5, 6)));

static int field_error(struct ug_error *err, int rc, const char *where, const char *key,
		       const char *fmt, ...)
{
	char what[256];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(what, sizeof(what), fmt, ap);
	va_end(ap);
	return ug_error_set(err, rc, "%s%s%s: %s", where ? where : "",
			    where && key ? "." : "", key ? key : "", what);
}

static int get_member(json_t *obj, const char *where, const char *key, json_t **ret,
		      struct ug_error *err)
{
	json_t *v = json_object_get(obj, key);

	if (!v)
		return field_error(err, -EBADMSG, where, key, "missing");
	*ret = v;
	return 0;
}

static int get_string(json_t *obj, const char *where, const char *key, const char **ret,
		      struct ug_error *err)
{
	json_t *v = NULL;
	int r = get_member(obj, where, key, &v, err);

	if (r < 0)
		return r;
	if (!json_is_string(v))
		return field_error(err, -EBADMSG, where, key, "expected a string");
	/* jansson refuses \u0000 unless asked (JSON_ALLOW_NUL); check anyway,
	 * as a C string would silently end at the NUL */
	if (strlen(json_string_value(v)) != json_string_length(v))
		return field_error(err, -EBADMSG, where, key, "contains a NUL byte");
	*ret = json_string_value(v);
	return 0;
}

static int dup_string(json_t *obj, const char *where, const char *key, char **ret,
		      struct ug_error *err)
{
	const char *s;
	char *d;
	int r = get_string(obj, where, key, &s, err);

	if (r < 0)
		return r;
	d = strdup(s);
	if (!d)
		return -ENOMEM;
	*ret = d;
	return 0;
}

static int get_u64(json_t *obj, const char *where, const char *key, uint64_t *ret,
		   struct ug_error *err)
{
	json_t *v = NULL;
	json_int_t i;
	int r = get_member(obj, where, key, &v, err);

	if (r < 0)
		return r;
	if (!json_is_integer(v))
		return field_error(err, -EBADMSG, where, key, "expected an integer");
	i = json_integer_value(v);
	if (i < 0)
		return field_error(err, -EBADMSG, where, key, "%" JSON_INTEGER_FORMAT " is negative", i);
	*ret = (uint64_t)i;
	return 0;
}

static int hex_field(const char *s, size_t hexlen, const char *where, const char *key,
		     struct ug_error *err)
{
	if (!is_lower_hex(s, hexlen))
		return field_error(err, -EBADMSG, where, key, "expected %zu lowercase hex digits",
				   hexlen);
	return 0;
}

static int get_hash_str(json_t *v, const char *where, const char *key, struct ug_hash *ret,
			struct ug_error *err)
{
	if (!json_is_string(v))
		return field_error(err, -EBADMSG, where, key, "expected a string");
	if (hex_field(json_string_value(v), UG_HASH_HEX_LEN, where, key, err) < 0)
		return -EBADMSG;
	return ug_hash_from_hex(json_string_value(v), ret);
}

static int get_hash(json_t *obj, const char *where, const char *key, struct ug_hash *ret,
		    struct ug_error *err)
{
	json_t *v = NULL;
	int r = get_member(obj, where, key, &v, err);

	return r < 0 ? r : get_hash_str(v, where, key, ret, err);
}

static int get_mode(json_t *obj, const char *where, uint32_t *ret, struct ug_error *err)
{
	const char *s;
	uint32_t mode = 0;
	int r = get_string(obj, where, "mode", &s, err);

	if (r < 0)
		return r;
	/* exactly four octal digits: one spelling per mode, at most 07777 */
	if (strlen(s) != 4)
		return field_error(err, -EBADMSG, where, "mode", "expected 4 octal digits, got '%.16s'", shown(s));
	for (int i = 0; i < 4; i++) {
		if (s[i] < '0' || s[i] > '7')
			return field_error(err, -EBADMSG, where, "mode",
					   "expected 4 octal digits, got '%.16s'", shown(s));
		mode = mode << 3 | (uint32_t)(s[i] - '0');
	}
	*ret = mode;
	return 0;
}

static int get_array(json_t *obj, const char *where, const char *key, size_t max,
		     json_t **ret, struct ug_error *err)
{
	json_t *v = NULL;
	int r = get_member(obj, where, key, &v, err);

	if (r < 0)
		return r;
	if (!json_is_array(v))
		return field_error(err, -EBADMSG, where, key, "expected an array");
	if (json_array_size(v) > max)
		return field_error(err, -E2BIG, where, key, "%zu entries, more than the limit of %zu",
				   json_array_size(v), max);
	*ret = v;
	return 0;
}

static int get_time(json_t *obj, const char *key, int64_t *ret, struct ug_error *err)
{
	const char *s;
	char canon[32];
	int64_t t;
	int r = get_string(obj, NULL, key, &s, err);

	if (r < 0)
		return r;
	/* a signed time must have one spelling: accept only what we write */
	if (strnlen(s, 32) >= 32 || ug_time_parse(s, &t) < 0 || t < 0 || t > TIME_MAX ||
	    (ug_time_format(t, canon), strcmp(canon, s) != 0))
		return field_error(err, -EBADMSG, NULL, key,
				   "expected a UTC time like 2026-11-25T13:40:00Z, got '%.40s'", shown(s));
	*ret = t;
	return 0;
}

/* Element i of array arr must be an object; its name goes to where. */
static int get_element(json_t *arr, const char *name, size_t i, char *where, size_t where_size,
		       json_t **ret, struct ug_error *err)
{
	json_t *v = json_array_get(arr, i);

	snprintf(where, where_size, "%s[%zu]", name, i);
	if (!json_is_object(v))
		return field_error(err, -EBADMSG, where, NULL, "expected an object");
	*ret = v;
	return 0;
}

static int parse_delta(json_t *o, const char *where, struct ug_mdelta *d, struct ug_error *err)
{
	const char *codec;
	int r;

	if ((r = get_string(o, where, "codec", &codec, err)) < 0)
		return r;
	if (ug_codec_from_name(codec, &d->codec) < 0)
		return field_error(err, -EBADMSG, where, "codec", "unknown codec '%.64s'", shown(codec));
	if ((r = get_hash(o, where, "from", &d->from, err)) < 0 ||
	    (r = get_hash(o, where, "id", &d->id, err)) < 0 ||
	    (r = get_u64(o, where, "memory", &d->memory, err)) < 0 ||
	    (r = get_u64(o, where, "size", &d->size, err)) < 0)
		return r;
	return 0;
}

static int get_bool(json_t *obj, const char *where, const char *key, bool *ret,
		    struct ug_error *err)
{
	json_t *v = NULL;
	int r = get_member(obj, where, key, &v, err);

	if (r < 0)
		return r;
	if (!json_is_boolean(v))
		return field_error(err, -EBADMSG, where, key, "expected true or false");
	*ret = json_is_true(v);
	return 0;
}

/* A string of a structure list: bounded before it is copied. */
static int struct_string(json_t *v, const char *where, const char *key, size_t j, int k,
			 const char *expected, char **ret, struct ug_error *err)
{
	char at[32] = "";
	char *d;

	if (k >= 0)
		snprintf(at, sizeof(at), "[%d]", k);
	if (!json_is_string(v))
		return ug_error_set(err, -EBADMSG, "%s.%s[%zu]%s: expected %s", where, key, j, at,
				    expected);
	if (json_string_length(v) > UG_STRUCT_NAME_MAX)
		return ug_error_set(err, -E2BIG, "%s.%s[%zu]%s: longer than %u bytes", where, key, j,
				    at, UG_STRUCT_NAME_MAX);
	if (strlen(json_string_value(v)) != json_string_length(v))
		return ug_error_set(err, -EBADMSG, "%s.%s[%zu]%s: contains a NUL byte", where, key, j,
				    at);
	d = strdup(json_string_value(v));
	if (!d)
		return -ENOMEM;
	*ret = d;
	return 0;
}

static int get_names(json_t *o, const char *where, const char *key, size_t max, char ***ret,
		     size_t *ret_n, struct ug_error *err)
{
	json_t *arr = NULL;
	int r = get_array(o, where, key, max, &arr, err);

	if (r < 0)
		return r;
	/* +1: calloc(0) may return NULL */
	*ret = calloc(json_array_size(arr) + 1, sizeof(**ret));
	if (!*ret)
		return -ENOMEM;
	for (size_t j = 0; j < json_array_size(arr); j++) {
		r = struct_string(json_array_get(arr, j), where, key, j, -1, "a string",
				  &(*ret)[j], err);
		if (r < 0)
			return r;
		(*ret_n)++;
	}
	return 0;
}

static int get_pairs(json_t *o, const char *where, const char *key, size_t max,
		     const char *expected, struct ug_strpair **ret, size_t *ret_n,
		     struct ug_error *err)
{
	json_t *arr = NULL;
	int r = get_array(o, where, key, max, &arr, err);

	if (r < 0)
		return r;
	*ret = calloc(json_array_size(arr) + 1, sizeof(**ret));
	if (!*ret)
		return -ENOMEM;
	for (size_t j = 0; j < json_array_size(arr); j++) {
		json_t *e = json_array_get(arr, j);
		struct ug_strpair *p = &(*ret)[j];

		if (!json_is_array(e) || json_array_size(e) != 2)
			return ug_error_set(err, -EBADMSG, "%s.%s[%zu]: expected %s", where, key, j,
					    expected);
		/* counted first: the pair is freed as a whole on failure */
		(*ret_n)++;
		if ((r = struct_string(json_array_get(e, 0), where, key, j, 0, "a string", &p->a,
				       err)) < 0 ||
		    (r = struct_string(json_array_get(e, 1), where, key, j, 1, "a string", &p->b,
				       err)) < 0)
			return r;
	}
	return 0;
}

/* Types and shapes only; ug_manifest_validate checks the rest. */
static int parse_structure(json_t *o, const char *fwhere, struct ug_mfile *f,
			   struct ug_error *err)
{
	struct ug_struct_diff *s;
	char where[96];
	const char *fmt;
	int r;

	snprintf(where, sizeof(where), "%s.structure", fwhere);
	if (!json_is_object(o))
		return field_error(err, -EBADMSG, where, NULL, "expected an object");
	s = calloc(1, sizeof(*s));
	if (!s)
		return -ENOMEM;
	f->structure = s;
	if ((r = get_string(o, where, "format", &fmt, err)) < 0)
		return r;
	if (ug_struct_format_from_name(fmt, &s->format) < 0)
		return field_error(err, -EBADMSG, where, "format", "unknown format '%.64s'", shown(fmt));
	if ((r = get_bool(o, where, "structural", &s->structural, err)) < 0 ||
	    (r = get_bool(o, where, "content", &s->content, err)) < 0)
		return r;
	if (is_conf_format(s->format))
		return (r = get_names(o, where, "sections_added", UG_STRUCT_SECTIONS_MAX,
				      &s->sections_added, &s->nsections_added, err)) < 0 ||
		       (r = get_names(o, where, "sections_removed", UG_STRUCT_SECTIONS_MAX,
				      &s->sections_removed, &s->nsections_removed, err)) < 0 ||
		       (r = get_pairs(o, where, "keys_added", UG_STRUCT_KEYS_MAX, "[section, key]",
				      &s->keys_added, &s->nkeys_added, err)) < 0 ||
		       (r = get_pairs(o, where, "keys_removed", UG_STRUCT_KEYS_MAX, "[section, key]",
				      &s->keys_removed, &s->nkeys_removed, err)) < 0 ||
		       (r = get_pairs(o, where, "keys_changed", UG_STRUCT_KEYS_MAX, "[section, key]",
				      &s->keys_changed, &s->nkeys_changed, err)) < 0 ? r : 0;
	return (r = get_names(o, where, "columns", UG_STRUCT_COLUMNS_MAX, &s->columns,
			      &s->ncolumns, err)) < 0 ||
	       (r = get_names(o, where, "columns_added", UG_STRUCT_COLUMNS_MAX,
			      &s->columns_added, &s->ncolumns_added, err)) < 0 ||
	       (r = get_names(o, where, "columns_removed", UG_STRUCT_COLUMNS_MAX,
			      &s->columns_removed, &s->ncolumns_removed, err)) < 0 ||
	       (r = get_pairs(o, where, "columns_renamed", UG_STRUCT_COLUMNS_MAX, "[old, new]",
			      &s->columns_renamed, &s->ncolumns_renamed, err)) < 0 ||
	       (r = get_bool(o, where, "reordered", &s->reordered, err)) < 0 ? r : 0;
}

static int parse_file(json_t *o, const char *where, struct ug_mfile *f, struct ug_error *err)
{
	const char *s;
	json_t *deltas = NULL;
	int r;

	if ((r = dup_string(o, where, "path", &f->path, err)) < 0 ||
	    (r = get_mode(o, where, &f->mode, err)) < 0 ||
	    (r = get_u64(o, where, "size", &f->size, err)) < 0 ||
	    (r = get_u64(o, where, "stored", &f->stored, err)) < 0 ||
	    (r = get_hash(o, where, "blake2b", &f->hash, err)) < 0)
		return r;
	if ((r = get_string(o, where, "xxh3", &s, err)) < 0)
		return r;
	if ((r = hex_field(s, UG_XXH_HEX_LEN, where, "xxh3", err)) < 0)
		return r;
	ug_xxh_from_hex(s, &f->xxh);
	if ((r = get_string(o, where, "class", &s, err)) < 0)
		return r;
	if (ug_class_from_name(s, &f->cls) < 0)
		return field_error(err, -EBADMSG, where, "class", "unknown class '%.64s'", shown(s));
	if ((r = get_string(o, where, "action", &s, err)) < 0)
		return r;
	if (ug_action_from_name(s, &f->action) < 0)
		return field_error(err, -EBADMSG, where, "action", "unknown action '%.64s'", shown(s));
	if ((r = get_array(o, where, "deltas", UG_DELTAS_PER_FILE_MAX, &deltas, err)) < 0)
		return r;
	for (size_t j = 0; j < json_array_size(deltas); j++) {
		char name[96], dwhere[128];
		struct ug_mdelta *d;
		json_t *e;

		snprintf(name, sizeof(name), "%s.deltas", where);
		if ((r = get_element(deltas, name, j, dwhere, sizeof(dwhere), &e, err)) < 0)
			return r;
		d = ug_mfile_add_delta(f);
		if (!d)
			return -ENOMEM;
		if ((r = parse_delta(e, dwhere, d, err)) < 0)
			return r;
	}
	if (json_object_get(o, "structure") &&
	    (r = parse_structure(json_object_get(o, "structure"), where, f, err)) < 0)
		return r;
	return 0;
}

static int parse_bundle(json_t *o, const char *where, struct ug_mbundle *b, struct ug_error *err)
{
	json_t *bases = NULL, *targets = NULL;
	char twhere[192];
	int r;

	if ((r = get_u64(o, where, "from", &b->from, err)) < 0 ||
	    (r = get_hash(o, where, "id", &b->id, err)) < 0 ||
	    (r = get_u64(o, where, "memory", &b->memory, err)) < 0 ||
	    (r = get_u64(o, where, "size", &b->size, err)) < 0 ||
	    (r = get_array(o, where, "bases", UG_FILES_MAX, &bases, err)) < 0 ||
	    (r = get_array(o, where, "targets", UG_FILES_MAX, &targets, err)) < 0)
		return r;
	/* calloc(0) may return NULL: allocate at least one element */
	b->bases = calloc(json_array_size(bases) + 1, sizeof(*b->bases));
	b->targets = calloc(json_array_size(targets) + 1, sizeof(*b->targets));
	b->target_sizes = calloc(json_array_size(targets) + 1, sizeof(*b->target_sizes));
	if (!b->bases || !b->targets || !b->target_sizes)
		return -ENOMEM;
	for (size_t j = 0; j < json_array_size(bases); j++) {
		snprintf(twhere, sizeof(twhere), "%s.bases[%zu]", where, j);
		r = get_hash_str(json_array_get(bases, j), twhere, NULL, &b->bases[j], err);
		if (r < 0)
			return r;
		b->nbases++;
	}
	for (size_t j = 0; j < json_array_size(targets); j++) {
		char name[96];
		json_t *e;

		snprintf(name, sizeof(name), "%s.targets", where);
		if ((r = get_element(targets, name, j, twhere, sizeof(twhere), &e, err)) < 0 ||
		    (r = get_hash(e, twhere, "blake2b", &b->targets[j], err)) < 0 ||
		    (r = get_u64(e, twhere, "size", &b->target_sizes[j], err)) < 0)
			return r;
		b->ntargets++;
	}
	return 0;
}

/* "chains": shapes, types and each address; ug_cluster_check (from
 * ug_manifest_validate) applies the rest of the cluster file's rules. */
static int parse_chains(json_t *arr, struct ug_manifest *m, struct ug_error *err)
{
	struct ug_cluster *c;
	char where[64], swhere[96];
	int r;

	if (!json_is_array(arr))
		return field_error(err, -EBADMSG, NULL, "chains", "expected an array");
	if (json_array_size(arr) > UG_GROUPS_MAX)
		return field_error(err, -E2BIG, NULL, "chains",
				   "%zu groups, more than the limit of %u", json_array_size(arr),
				   UG_GROUPS_MAX);
	c = ug_cluster_new();
	if (!c)
		return -ENOMEM;
	m->chains = c;
	/* +1: calloc(0) may return NULL */
	c->groups = calloc(json_array_size(arr) + 1, sizeof(*c->groups));
	if (!c->groups)
		return -ENOMEM;
	for (size_t i = 0; i < json_array_size(arr); i++) {
		struct ug_group *g = &c->groups[i];
		json_t *e, *servers = NULL;

		if ((r = get_element(arr, "chains", i, where, sizeof(where), &e, err)) < 0)
			return r;
		c->ngroups++;
		if ((r = dup_string(e, where, "group", &g->name, err)) < 0 ||
		    (r = get_array(e, where, "servers", UG_GROUP_SERVERS_MAX, &servers, err)) < 0)
			return r;
		g->servers = calloc(json_array_size(servers) + 1, sizeof(*g->servers));
		if (!g->servers)
			return -ENOMEM;
		for (size_t j = 0; j < json_array_size(servers); j++) {
			struct ug_server *srv = &g->servers[j];
			char name[80], canon[UG_ADDRESS_MAX];
			struct ug_error ae;
			const char *addr;
			json_t *se;

			snprintf(name, sizeof(name), "%s.servers", where);
			if ((r = get_element(servers, name, j, swhere, sizeof(swhere), &se, err)) < 0)
				return r;
			/* counted first: the server is freed as a whole on failure */
			g->nservers++;
			if ((r = dup_string(se, swhere, "name", &srv->name, err)) < 0 ||
			    (r = dup_string(se, swhere, "repo", &srv->repo, err)) < 0 ||
			    (r = get_string(se, swhere, "address", &addr, err)) < 0)
				return r;
			r = ug_server_parse_address(addr, srv, &ae);
			if (r == -ENOMEM)
				return r;
			if (r < 0)
				return ug_error_set(err, -EBADMSG, "%s: %s", swhere, ae.msg);
			/* one spelling per address, as for times: what we write */
			if (ug_server_format_address(srv, canon, sizeof(canon)) < 0 ||
			    strcmp(canon, addr) != 0)
				return field_error(err, -EBADMSG, swhere, "address",
						   "'%.80s' is not written as upgrid writes it ('%.80s')",
						   shown(addr), canon);
		}
	}
	return 0;
}

/* Decode the document into m; the invariants are checked afterwards by
 * ug_manifest_validate, so this only checks types and shapes. */
static int decode(json_t *root, struct ug_manifest *m, struct ug_error *err)
{
	char where[64];
	json_t *arr = NULL, *v = NULL;
	int r;

	if (!json_is_object(root))
		return ug_error_set(err, -EBADMSG, "manifest is not a JSON object");
	/* the format first: a newer document may differ in any other way */
	if ((r = get_member(root, NULL, "format", &v, err)) < 0)
		return r;
	if (!json_is_integer(v))
		return field_error(err, -EBADMSG, NULL, "format", "expected an integer");
	if (json_integer_value(v) != UG_MANIFEST_FORMAT)
		return ug_error_set(err, -EBADMSG,
				    "unsupported manifest format %" JSON_INTEGER_FORMAT
				    " (this upgrid reads format %d)",
				    json_integer_value(v), UG_MANIFEST_FORMAT);
	m->format = UG_MANIFEST_FORMAT;

	/* Keys this reader does not know are ignored: within format 1 a
	 * publisher may add optional, purely informational fields without
	 * cutting off terminals already deployed. They are still covered by
	 * the signature (made over the exact bytes). Anything that changes
	 * what a terminal must do needs format 2, which this reader refuses. */
	if ((r = dup_string(root, NULL, "channel", &m->channel, err)) < 0 ||
	    (r = get_u64(root, NULL, "version", &m->version, err)) < 0 ||
	    (r = get_u64(root, NULL, "parent", &m->parent, err)) < 0 ||
	    (r = get_time(root, "created", &m->created, err)) < 0 ||
	    (r = get_time(root, "expires", &m->expires, err)) < 0)
		return r;
	if (json_object_get(root, "message") &&
	    (r = dup_string(root, NULL, "message", &m->message, err)) < 0)
		return r;
	if (json_object_get(root, "key") &&
	    (r = dup_string(root, NULL, "key", &m->key_id, err)) < 0)
		return r;
	if (json_object_get(root, "chains") &&
	    (r = parse_chains(json_object_get(root, "chains"), m, err)) < 0)
		return r;
	/* strict inside (unknown keys refused, rollout.h): it decides which
	 * terminals install the version, so no part of it may be dropped */
	if (json_object_get(root, "rollout") &&
	    (r = ug_rollout_from_json(json_object_get(root, "rollout"), "rollout", &m->rollout,
				      err)) < 0)
		return r;

	if ((r = get_array(root, NULL, "dirs", UG_FILES_MAX, &arr, err)) < 0)
		return r;
	for (size_t i = 0; i < json_array_size(arr); i++) {
		struct ug_mdir *d;
		json_t *e;

		if ((r = get_element(arr, "dirs", i, where, sizeof(where), &e, err)) < 0)
			return r;
		if (!(d = ug_manifest_add_dir(m)))
			return -ENOMEM;
		if ((r = dup_string(e, where, "path", &d->path, err)) < 0 ||
		    (r = get_mode(e, where, &d->mode, err)) < 0)
			return r;
	}

	if ((r = get_array(root, NULL, "files", UG_FILES_MAX, &arr, err)) < 0)
		return r;
	for (size_t i = 0; i < json_array_size(arr); i++) {
		struct ug_mfile *f;
		json_t *e;

		if ((r = get_element(arr, "files", i, where, sizeof(where), &e, err)) < 0)
			return r;
		if (!(f = ug_manifest_add_file(m)))
			return -ENOMEM;
		if ((r = parse_file(e, where, f, err)) < 0)
			return r;
	}

	if ((r = get_array(root, NULL, "removed", UG_FILES_MAX, &arr, err)) < 0)
		return r;
	for (size_t i = 0; i < json_array_size(arr); i++) {
		struct ug_mremoved *x;
		json_t *e;

		if ((r = get_element(arr, "removed", i, where, sizeof(where), &e, err)) < 0)
			return r;
		if (!(x = ug_manifest_add_removed(m)))
			return -ENOMEM;
		if ((r = dup_string(e, where, "path", &x->path, err)) < 0 ||
		    (r = get_hash(e, where, "blake2b", &x->hash, err)) < 0)
			return r;
	}

	if ((r = get_array(root, NULL, "renamed", UG_FILES_MAX, &arr, err)) < 0)
		return r;
	for (size_t i = 0; i < json_array_size(arr); i++) {
		struct ug_mrename *x;
		json_t *e;

		if ((r = get_element(arr, "renamed", i, where, sizeof(where), &e, err)) < 0)
			return r;
		if (!(x = ug_manifest_add_renamed(m)))
			return -ENOMEM;
		if ((r = dup_string(e, where, "from", &x->from, err)) < 0 ||
		    (r = dup_string(e, where, "to", &x->to, err)) < 0 ||
		    (r = get_hash(e, where, "blake2b", &x->hash, err)) < 0)
			return r;
	}

	if ((r = get_array(root, NULL, "bundles", UG_BUNDLES_MAX, &arr, err)) < 0)
		return r;
	for (size_t i = 0; i < json_array_size(arr); i++) {
		struct ug_mbundle *b;
		json_t *e;

		if ((r = get_element(arr, "bundles", i, where, sizeof(where), &e, err)) < 0)
			return r;
		if (!(b = ug_manifest_add_bundle(m)))
			return -ENOMEM;
		if ((r = parse_bundle(e, where, b, err)) < 0)
			return r;
	}
	return 0;
}

int ug_manifest_parse(const char *json, size_t len, struct ug_manifest **ret,
		      struct ug_error *err)
{
	struct ug_manifest *m = NULL;
	json_error_t jerr;
	json_t *root;
	int r;

	/* before looking at a single byte: the caller may hand us a length it
	 * read from a file header, and jansson's tree is several times larger */
	if (len > UG_MANIFEST_MAX)
		return ug_error_set(err, -E2BIG, "manifest is %zu bytes, more than the limit of %u",
				    len, UG_MANIFEST_MAX);
	if (!json)
		return ug_error_set(err, -EINVAL, "no manifest");
	root = json_loadb(json, len, JSON_REJECT_DUPLICATES, &jerr);
	if (!root)
		return ug_error_set(err, -EBADMSG, "manifest is not valid JSON: line %d, column %d: %s",
				    jerr.line, jerr.column, jerr.text);
	m = ug_manifest_new();
	if (!m) {
		r = -ENOMEM;
		goto out;
	}
	r = decode(root, m, err);
	if (r == 0)
		r = ug_manifest_validate(m, err);
	if (r == -ENOMEM)
		ug_error_set(err, r, "out of memory reading the manifest");
	if (r == 0) {
		*ret = m;
		m = NULL;
	}
out:
	ug_manifest_free(m);
	json_decref(root);
	return r;
}

/* tstage.c - the last steps of a staging tree, and pruning (tlocal.h).
 *
 * What the terminal owns is taken from the installed tree as late as
 * possible, after the pre-switch hook (which may stop the service, so
 * nothing is written to those files any more): preserve files are copied
 * as they are, data files are migrated (every local row kept, columns
 * mapped by name), config files are merged 3-way against the pristine
 * copy of what was installed. */
#include "config.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <syslog.h>
#include <unistd.h>

#include "buf.h"
#include "merge.h"
#include "structure.h"
#include "terminal.h"
#include "tlocal.h"

static int read_fd(int fd, size_t max, char **ret, size_t *ret_len)
{
	struct stat st;
	char *p;

	if (fstat(fd, &st) < 0)
		return -errno;
	if ((uint64_t)st.st_size > max)
		return -E2BIG;
	p = malloc((size_t)st.st_size + 1);
	if (!p)
		return -ENOMEM;
	if (pread(fd, p, (size_t)st.st_size, 0) != st.st_size) {
		free(p);
		return -EIO;
	}
	p[st.st_size] = '\0';
	*ret = p;
	*ret_len = (size_t)st.st_size;
	return 0;
}

static int read_at(int dirfd, const char *path, char **ret, size_t *ret_len)
{
	int fd = ug_open_beneath(dirfd, path, O_RDONLY, 0), r;

	if (fd < 0)
		return fd;
	r = read_fd(fd, UG_STRUCT_FILE_MAX, ret, ret_len);
	close(fd);
	return r;
}

/* Replace staged path with data (mode), through a temporary name. */
static int write_staged(int stgfd, const char *path, const void *data, size_t len,
			uint32_t mode)
{
	return ug_file_write_atomic(stgfd, path, data, len, mode & 07777);
}

static void note_conflict(struct ug_term *t, struct ug_target *tg, const char *path,
			  const struct ug_merge_conflict *c)
{
	char line[UG_MERGE_CONFLICT_LINE_MAX];
	size_t used = strlen(tg->conflicts);

	ug_merge_conflict_format(c, line, sizeof(line));
	ug_term_log(t, LOG_WARNING, "%s: %s", path, line);
	if (tg->nconflicts++ == 0)
		used = (size_t)snprintf(tg->conflicts, sizeof(tg->conflicts), "merge conflicts:");
	if (used < sizeof(tg->conflicts))
		snprintf(tg->conflicts + used, sizeof(tg->conflicts) - used, " %s [%s] %s;", path,
			 c->section, c->key);
}

/* Is the terminal's copy the content the installed version shipped? */
static bool unedited(const struct ug_target *tg, const struct ug_mfile *f, const void *local,
		     size_t local_len)
{
	const struct ug_mfile *old = tg->cur ? ug_manifest_find(tg->cur, f->path) : NULL;
	struct ug_hash h;

	if (!old)
		return false;
	ug_hash_buf(local, local_len, &h, NULL);
	return ug_hash_eq(&h, &old->hash);
}

static int merge_one(struct ug_term *t, struct ug_target *tg, const struct ug_mfile *f,
		     int curfd, int stgfd, struct ug_error *err)
{
	const struct ug_mfile *old = tg->cur ? ug_manifest_find(tg->cur, f->path) : NULL;
	char *local = NULL, *next = NULL, *base = NULL;
	size_t local_len, next_len, base_len = 0;
	struct ug_merge_report rep = { 0 };
	struct ug_error e = { "" };
	struct ug_buf out;
	int fd, r;

	r = read_at(curfd, f->path, &local, &local_len);
	if (r == -ENOENT || r == -ELOOP)
		return 0;  /* deleted on the terminal: the new file as shipped */
	if (r < 0)
		return ug_error_set(err, r, "cannot read the installed '%s' to merge it: %s",
				    f->path, strerror(-r));
	if (unedited(tg, f, local, local_len)) {
		free(local);
		return 0;  /* not edited here: upstream's file as it is */
	}
	if (local_len == 0 && old && old->size > 0) {
		/* more likely a file cut short by a crash than an operator
		 * who deleted every key */
		ug_term_log(t, LOG_WARNING, "'%s' is empty on this terminal: installing the new "
			    "version's file as shipped", f->path);
		free(local);
		return 0;
	}
	r = read_at(stgfd, f->path, &next, &next_len);
	if (r < 0) {
		free(local);
		return ug_error_set(err, r, "cannot read staged '%s': %s", f->path, strerror(-r));
	}
	if (old && ug_store_object_tmp(t->cache, &old->hash, &fd) == 0) {
		r = read_fd(fd, UG_STRUCT_FILE_MAX, &base, &base_len);
		close(fd);
		if (r < 0)
			base = NULL;
	}
	if (!base)
		/* without the pristine copy every local value counts as an
		 * edit: the terminal's file is kept, with new keys added */
		ug_term_log(t, LOG_WARNING, "no pristine copy of '%s' in '%s/cache': merging as if "
			    "every local value were an edit", f->path, t->c->state);
	ug_buf_init(&out, UG_STRUCT_FILE_MAX);
	r = ug_merge_config(base ? base : local, base ? base_len : local_len, local, local_len,
			    next, next_len, t->c->on_conflict == UG_TCONF_CONFLICT_UPSTREAM
			    ? UG_MERGE_PREFER_UPSTREAM : UG_MERGE_PREFER_LOCAL, &out, &rep, &e);
	if (r == 0) {
		for (size_t i = 0; i < rep.nconflicts; i++)
			note_conflict(t, tg, f->path, &rep.conflicts[i]);
		ug_term_log(t, LOG_DEBUG, "%s: merged (%zu updated, %zu local kept, %zu added, "
			    "%zu removed, %zu conflicts)", f->path, rep.updated, rep.kept_local,
			    rep.added, rep.removed, rep.nconflicts);
		r = write_staged(stgfd, f->path, out.data, out.len, f->mode);
		if (r < 0)
			ug_error_set(err, r, "cannot write merged '%s': %s", f->path, strerror(-r));
	} else {
		ug_error_set(err, r, "cannot merge config file '%s': %s: fix the terminal's copy "
			     "(or delete it to take the new one as shipped)", f->path, e.msg);
	}
	ug_merge_report_release(&rep);
	ug_buf_release(&out);
	free(local);
	free(next);
	free(base);
	return r;
}

static int migrate_one(struct ug_term *t, struct ug_target *tg, const struct ug_mfile *f,
		       int curfd, int stgfd, struct ug_error *err)
{
	char *local = NULL, *next = NULL;
	size_t local_len, next_len, nren = 0;
	struct ug_merge_table_report rep = { 0 };
	struct ug_column_rename *ren = NULL;
	struct ug_error e = { "" };
	struct ug_buf out;
	int r;

	r = read_at(curfd, f->path, &local, &local_len);
	if (r == -ENOENT || r == -ELOOP)
		return 0;
	if (r < 0)
		return ug_error_set(err, r, "cannot read the installed '%s' to migrate it: %s",
				    f->path, strerror(-r));
	if (unedited(tg, f, local, local_len)) {
		free(local);
		return 0;  /* upstream's rows as they are */
	}
	r = read_at(stgfd, f->path, &next, &next_len);
	if (r < 0) {
		free(local);
		return ug_error_set(err, r, "cannot read staged '%s': %s", f->path, strerror(-r));
	}
	if (f->structure && f->structure->ncolumns_renamed) {
		nren = f->structure->ncolumns_renamed;
		ren = calloc(nren, sizeof(*ren));
		for (size_t i = 0; ren && i < nren; i++) {
			ren[i].from = f->structure->columns_renamed[i].a;
			ren[i].to = f->structure->columns_renamed[i].b;
		}
		if (!ren)
			nren = 0;
	}
	ug_buf_init(&out, UG_STRUCT_FILE_MAX * 2);
	r = ug_merge_table_renames(local, local_len, next, next_len,
				   ug_struct_format_for(f->cls, f->path), ren, nren, &out, &rep, &e);
	if (r == 0) {
		ug_term_log(t, LOG_DEBUG, "%s: migrated %zu rows (%zu columns added, %zu dropped)",
			    f->path, rep.rows, rep.columns_added, rep.columns_dropped);
		r = write_staged(stgfd, f->path, out.data, out.len, f->mode);
		if (r < 0)
			ug_error_set(err, r, "cannot write migrated '%s': %s", f->path, strerror(-r));
	} else {
		ug_error_set(err, r, "cannot migrate data file '%s': %s: its rows stay where they "
			     "are; fix the terminal's copy", f->path, e.msg);
	}
	ug_buf_release(&out);
	free(ren);
	free(local);
	free(next);
	return r;
}

static int preserve_one(const struct ug_mfile *f, int curfd, int stgfd, struct ug_error *err)
{
	char buf[64 << 10];
	struct stat st;
	ssize_t n = 0;
	int in, out, r = 0;

	in = ug_open_beneath(curfd, f->path, O_RDONLY, 0);
	if (in < 0)
		return 0;  /* fetched as shipped */
	unlinkat(stgfd, f->path, 0);
	out = ug_open_beneath(stgfd, f->path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
	if (out < 0 || fstat(in, &st) < 0)
		r = out < 0 ? out : -errno;
	/* streamed: a preserved file may be a large database */
	while (r == 0 && (n = read(in, buf, sizeof(buf))) > 0)
		r = ug_write_all(out, buf, (size_t)n);
	if (r == 0 && n < 0)
		r = -errno;
	if (r == 0 && fchmod(out, st.st_mode & 07777) < 0)
		r = -errno;
	close(in);
	if (out >= 0)
		close(out);
	if (r < 0)
		return ug_error_set(err, r, "cannot carry '%s' over to the new version: %s",
				    f->path, strerror(-r));
	return 0;
}

int ug_tstage_finish(struct ug_term *t, struct ug_target *tg, int stgfd, struct ug_error *err)
{
	int curfd = ug_tfetch_curfd(tg), r = 0;

	for (size_t i = 0; r == 0 && curfd >= 0 && i < tg->m->nfiles; i++) {
		const struct ug_mfile *f = &tg->m->files[i];

		/* by class, not by this version's action: a file the terminal
		 * edited keeps its edits even when upstream did not change it
		 * (merge_one and migrate_one take upstream's file as it is when
		 * the terminal's copy is the one installed) */
		if (f->action == UG_ACTION_PRESERVE) {
			r = ug_tlocal_mkdir_parent(stgfd, f->path);
			if (r == 0)
				r = preserve_one(f, curfd, stgfd, err);
		} else if (f->cls == UG_CLASS_DATA) {
			r = migrate_one(t, tg, f, curfd, stgfd, err);
		} else if (f->cls == UG_CLASS_CONFIG) {
			r = merge_one(t, tg, f, curfd, stgfd, err);
		}
	}
	if (r < 0)
		return r;
	/* directories last: a mode without write permission would have
	 * stopped the files going in */
	for (size_t i = 0; i < tg->m->ndirs; i++) {
		const struct ug_mdir *d = &tg->m->dirs[i];
		r = ug_mkdir_p(stgfd, d->path, 0755);
		if (r == 0 && fchmodat(stgfd, d->path, d->mode & 07777, 0) < 0)
			r = -errno;
		if (r < 0)
			return ug_error_set(err, r, "cannot create staged directory '%s': %s",
					    d->path, strerror(-r));
	}
	/* one sync for the whole tree: before the journal names it */
	if (syncfs(stgfd) < 0)
		return ug_error_set(err, -errno, "cannot sync the staging tree: %s", strerror(errno));
	return 0;
}

/* ------------------------------------------------------------ pruning */

static void remove_manifest(struct ug_term *t, uint64_t v)
{
	char path[UG_CHANNEL_MAX + 96];

	snprintf(path, sizeof(path), "manifests/%s/%" PRIu64 ".json", t->c->channel, v);
	unlinkat(t->cache->dirfd, path, 0);
	snprintf(path, sizeof(path), "manifests/%s/%" PRIu64 ".json.sig", t->c->channel, v);
	unlinkat(t->cache->dirfd, path, 0);
}

static int hash_cmp(const void *a, const void *b)
{
	return ug_hash_cmp(a, b);
}

/* Pristine config copies of the kept versions stay; other cached objects
 * and every delta and download in progress go. */
static void prune_cache(struct ug_term *t, const uint64_t *kept, size_t nkept)
{
	struct ug_hash *keep = NULL, *list = NULL;
	size_t nkeep = 0, alloc = 0, n = 0;
	struct dirent *de;
	DIR *d;
	int fd;

	for (size_t k = 0; k < nkept; k++) {
		struct ug_manifest *m = NULL;
		char *json = NULL, *sig = NULL;
		size_t len, sig_len;

		if (ug_store_manifest_get(t->cache, t->c->channel, kept[k], &json, &len, &sig,
					  &sig_len) < 0 || ug_manifest_parse(json, len, &m, NULL) < 0) {
			free(json);
			free(sig);
			return;  /* unsure what is needed: keep everything */
		}
		for (size_t i = 0; i < m->nfiles; i++) {
			if (m->files[i].cls != UG_CLASS_CONFIG)
				continue;
			if (nkeep == alloc) {
				struct ug_hash *nk = realloc(keep, (alloc = alloc * 2 + 64) * sizeof(*keep));
				if (!nk)
					break;
				keep = nk;
			}
			if (nkeep < alloc)
				keep[nkeep++] = m->files[i].hash;
		}
		ug_manifest_free(m);
		free(json);
		free(sig);
	}
	if (nkeep)
		qsort(keep, nkeep, sizeof(*keep), hash_cmp);
	if (ug_store_list(t->cache, UG_STORE_OBJECTS, &list, &n) == 0) {
		for (size_t i = 0; i < n; i++)
			if (!nkeep || !bsearch(&list[i], keep, nkeep, sizeof(*keep), hash_cmp))
				ug_store_object_remove(t->cache, &list[i]);
		free(list);
	}
	if (ug_store_list(t->cache, UG_STORE_DELTAS, &list, &n) == 0) {
		for (size_t i = 0; i < n; i++)
			ug_store_delta_remove(t->cache, &list[i]);
		free(list);
	}
	free(keep);
	fd = openat(t->cache->dirfd, "tmp", O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	d = fd >= 0 ? fdopendir(fd) : NULL;
	while (d && (de = readdir(d)))
		if (strncmp(de->d_name, "dl-", 3) == 0)
			unlinkat(dirfd(d), de->d_name, 0);
	if (d)
		closedir(d);
	else if (fd >= 0)
		close(fd);
}

void ug_tstage_prune(struct ug_term *t)
{
	uint64_t *v = NULL, *kept;
	size_t n = 0, nkept = 0, older = 0;

	if (ug_term_kept(t, &v, &n) < 0)
		return;
	kept = calloc(n + 1, sizeof(*kept));
	if (!kept) {
		free(v);
		return;
	}
	/* the installed version and the newest keep-1 below it */
	for (size_t i = n; i-- > 0;) {
		char dir[64];
		bool keep = v[i] == t->installed ||
			    (v[i] < t->installed && ++older < t->c->keep);

		if (keep) {
			kept[nkept++] = v[i];
			continue;
		}
		snprintf(dir, sizeof(dir), "versions/%" PRIu64, v[i]);
		ug_tlocal_rm_tree(t->statefd, dir);
		remove_manifest(t, v[i]);
		ug_term_log(t, LOG_DEBUG, "removed version %" PRIu64 " (keep = %u)", v[i], t->c->keep);
	}
	prune_cache(t, kept, nkept);
	free(kept);
	free(v);
}

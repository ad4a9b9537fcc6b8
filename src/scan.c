/* scan.c - walk a tree with openat()/O_NOFOLLOW and list what it holds.
 *
 * The walk is iterative: a stack of open directory streams, one per level,
 * so it holds at most depth + 1 descriptors and never recurses on the C
 * stack however deep the tree is. Each directory is opened relative to its
 * parent's descriptor with O_NOFOLLOW and checked against the fstatat()
 * result, so a directory swapped for a symlink mid-scan is an error rather
 * than a way out of the tree. */
#include "config.h"

#include <dirent.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "scan.h"

struct frame {
	DIR *d;
	size_t plen; /* length of this directory's path in the path buffer */
};

struct walk {
	const struct ug_rules *rules;
	struct ug_scan *s;
	ug_scan_warn_fn warn;
	void *warn_ctx;
	struct ug_error *err;
	struct frame *stack;
	size_t depth;             /* frames in use; the root is frame 0 */
	char path[UG_PATH_MAX + 1];
	char shown[UG_PATH_MAX + 1];
};

void ug_scan_release(struct ug_scan *s)
{
	if (!s)
		return;
	for (size_t i = 0; i < s->n; i++)
		free(s->entries[i].path);
	free(s->entries);
	memset(s, 0, sizeof(*s));
}

/* A path as it may be shown: control bytes become '?', so a hostile file
 * name cannot drive the terminal that prints the warning. */
static void show_path(char *out, size_t size, const char *path)
{
	size_t i;

	for (i = 0; path[i] && i + 1 < size; i++) {
		unsigned char c = (unsigned char)path[i];
		out[i] = (c < 0x20 || c == 0x7f) ? '?' : (char)c;
	}
	out[i] = '\0';
}

/* w->path made printable, for messages. */
static const char *shown(struct walk *w)
{
	show_path(w->shown, sizeof(w->shown), w->path);
	return w->shown;
}

static void warnf(struct walk *w, const char *what, const char *why)
{
	char msg[UG_PATH_MAX + 160];

	if (!w->warn)
		return;
	snprintf(msg, sizeof(msg), "skipping %s '%s' (%s)", what, shown(w), why);
	w->warn(w->warn_ctx, msg);
}

static int64_t ts_ns(const struct timespec *ts)
{
	int64_t ns;

	if (__builtin_mul_overflow((int64_t)ts->tv_sec, (int64_t)1000000000, &ns) ||
	    __builtin_add_overflow(ns, (int64_t)ts->tv_nsec, &ns))
		return ts->tv_sec < 0 ? INT64_MIN : INT64_MAX;
	return ns;
}

static int add_entry(struct walk *w, enum ug_scan_type type, const struct stat *st)
{
	struct ug_scan *s = w->s;
	struct ug_scan_entry *e;
	size_t len = strlen(w->path);

	if (s->n >= UG_FILES_MAX)
		return ug_error_set(w->err, -E2BIG, "tree has more than %u entries", UG_FILES_MAX);
	if (s->n == s->alloc) {
		size_t na = s->alloc ? s->alloc * 2 : 256, bytes;
		struct ug_scan_entry *nv;

		if (na > UG_FILES_MAX)
			na = UG_FILES_MAX;
		if (ug_size_mul(na, sizeof(*nv), &bytes) < 0)
			return -ENOMEM;
		nv = realloc(s->entries, bytes);
		if (!nv)
			return -ENOMEM;
		s->entries = nv;
		s->alloc = na;
	}
	e = &s->entries[s->n];
	memset(e, 0, sizeof(*e));
	e->path = malloc(len + 1);
	if (!e->path)
		return -ENOMEM;
	memcpy(e->path, w->path, len + 1);
	e->type = type;
	e->mode = (uint32_t)(st->st_mode & 07777);
	e->size = type == UG_SCAN_FILE ? (uint64_t)st->st_size : 0;
	e->mtime_ns = ts_ns(&st->st_mtim);
	e->ctime_ns = ts_ns(&st->st_ctim);
	e->ino = (uint64_t)st->st_ino;
	e->dev = (uint64_t)st->st_dev;
	s->n++;
	return 0;
}

/* Enter the directory named name in the top frame, now at w->path. */
static int push_dir(struct walk *w, const char *name, const struct stat *st)
{
	int pfd = dirfd(w->stack[w->depth - 1].d);
	struct stat st2;
	DIR *d;
	int fd;

	fd = openat(pfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0) {
		int e = errno;
		if (e == ELOOP || e == ENOTDIR)
			return ug_error_set(w->err, -EAGAIN,
					    "'%s' changed during the scan (it is no longer a directory); scan again",
					    shown(w));
		return ug_error_set(w->err, -e, "cannot open directory '%s': %s", shown(w),
				    strerror(e));
	}
	if (fstat(fd, &st2) < 0) {
		int e = errno;
		close(fd);
		return ug_error_set(w->err, -e, "cannot stat directory '%s': %s", shown(w),
				    strerror(e));
	}
	if (st2.st_dev != st->st_dev || st2.st_ino != st->st_ino) {
		close(fd);
		return ug_error_set(w->err, -EAGAIN,
				    "'%s' was replaced during the scan; scan again", shown(w));
	}
	d = fdopendir(fd);
	if (!d) {
		int e = errno;
		close(fd);
		return -e;
	}
	w->stack[w->depth].d = d;
	w->stack[w->depth].plen = strlen(w->path);
	w->depth++;
	return 0;
}

static bool name_has_control(const char *name)
{
	for (const unsigned char *p = (const unsigned char *)name; *p; p++)
		if (*p < 0x20 || *p == 0x7f)
			return true;
	return false;
}

/* Handle one directory entry of the top frame. */
static int visit(struct walk *w, const char *name)
{
	struct frame *f = &w->stack[w->depth - 1];
	size_t nlen = strlen(name), off = f->plen ? f->plen + 1 : 0;
	struct stat st;
	int pfd = dirfd(f->d);

	if (off + nlen > UG_PATH_MAX) {
		w->path[f->plen] = '\0';  /* may still hold a sibling's name */
		return ug_error_set(w->err, -ENAMETOOLONG,
				    "a path under '%.200s...' is longer than %u bytes", shown(w),
				    UG_PATH_MAX);
	}
	if (f->plen)
		w->path[f->plen] = '/';
	memcpy(w->path + off, name, nlen + 1);

	/* The root is frame 0, so entries here have w->depth components. */
	if (w->depth > UG_DEPTH_MAX)
		return ug_error_set(w->err, -E2BIG, "'%.200s...' is nested deeper than %u directories",
				    shown(w), UG_DEPTH_MAX);

	if (fstatat(pfd, name, &st, AT_SYMLINK_NOFOLLOW) < 0) {
		int e = errno;
		/* Editors create and delete their excluded swap files all
		 * the time: losing one of those is not an error. */
		if (e == ENOENT && (ug_rules_excluded_leaf(w->rules, w->path, false) ||
				    ug_rules_excluded_leaf(w->rules, w->path, true)))
			return 0;
		return ug_error_set(w->err, -e, "cannot stat '%s': %s", shown(w), strerror(e));
	}
	if (ug_rules_excluded_leaf(w->rules, w->path, S_ISDIR(st.st_mode)))
		return 0;
	if (name_has_control(name)) {
		warnf(w, S_ISDIR(st.st_mode) ? "directory" : "file",
		      "its name holds a control character, which a manifest cannot carry");
		return 0;
	}
	if (!ug_utf8_valid(name, nlen)) {
		warnf(w, S_ISDIR(st.st_mode) ? "directory" : "file",
		      "its name is not valid UTF-8, which a JSON manifest cannot carry");
		return 0;
	}
	if (nlen > UG_NAME_MAX) {
		warnf(w, S_ISDIR(st.st_mode) ? "directory" : "file",
		      "its name is longer than 255 bytes, which a manifest cannot carry");
		return 0;
	}

	switch (st.st_mode & S_IFMT) {
	case S_IFREG:
		/* Fail now, naming the file, rather than halfway through
		 * storing objects. */
		if (faccessat(pfd, name, R_OK, AT_EACCESS) < 0) {
			int e = errno;
			return ug_error_set(w->err, -e, "cannot read '%s': %s", shown(w), strerror(e));
		}
		return add_entry(w, UG_SCAN_FILE, &st);
	case S_IFDIR: {
		int r = add_entry(w, UG_SCAN_DIR, &st);
		if (r < 0)
			return r;
		return push_dir(w, name, &st);
	}
	case S_IFLNK:
		warnf(w, "symlink", "upgrid does not follow links");
		return 0;
	case S_IFIFO:
		warnf(w, "fifo", "only regular files and directories are published");
		return 0;
	case S_IFSOCK:
		warnf(w, "socket", "only regular files and directories are published");
		return 0;
	case S_IFCHR:
		warnf(w, "character device", "only regular files and directories are published");
		return 0;
	case S_IFBLK:
		warnf(w, "block device", "only regular files and directories are published");
		return 0;
	default:
		warnf(w, "file of unknown type", "only regular files and directories are published");
		return 0;
	}
}

static int walk_tree(struct walk *w, int treefd)
{
	int fd;

	fd = openat(treefd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0) {
		int e = errno;
		return ug_error_set(w->err, -e, "cannot open the tree: %s", strerror(e));
	}
	w->stack[0].d = fdopendir(fd);
	if (!w->stack[0].d) {
		int e = errno;
		close(fd);
		return -e;
	}
	w->stack[0].plen = 0;
	w->depth = 1;
	w->path[0] = '\0';

	while (w->depth > 0) {
		struct frame *f = &w->stack[w->depth - 1];
		struct dirent *de;
		int r;

		errno = 0;
		de = readdir(f->d);
		if (!de) {
			int e = errno;
			if (e != 0) {
				w->path[f->plen] = '\0';
				return ug_error_set(w->err, -e, "cannot read directory '%s': %s",
						    f->plen ? shown(w) : ".", strerror(e));
			}
			closedir(f->d);
			f->d = NULL;
			w->depth--;
			continue;
		}
		if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
			continue;
		r = visit(w, de->d_name);
		if (r < 0)
			return r;
	}
	return 0;
}

static int entry_cmp(const void *a, const void *b)
{
	const struct ug_scan_entry *x = a, *y = b;
	return strcmp(x->path, y->path);
}

int ug_scan_tree(int treefd, const struct ug_rules *rules, struct ug_scan *s,
		 ug_scan_warn_fn warn, void *warn_ctx, struct ug_error *err)
{
	struct ug_rules *own = NULL;
	struct walk *w;
	int r;

	if (!rules) {
		r = ug_rules_parse(NULL, 0, &own, err);
		if (r < 0)
			return r;
		rules = own;
	}
	/* The path buffer is too big for a comfortable stack frame. */
	w = calloc(1, sizeof(*w));
	if (!w) {
		ug_rules_free(own);
		return -ENOMEM;
	}
	w->stack = calloc(UG_DEPTH_MAX + 1, sizeof(*w->stack));
	if (!w->stack) {
		free(w);
		ug_rules_free(own);
		return -ENOMEM;
	}
	w->rules = rules;
	w->s = s;
	w->warn = warn;
	w->warn_ctx = warn_ctx;
	w->err = err;

	ug_scan_release(s);
	r = walk_tree(w, treefd);
	for (size_t i = 0; i < w->depth; i++)
		closedir(w->stack[i].d);
	if (r < 0)
		ug_scan_release(s);
	else if (s->n > 1)
		qsort(s->entries, s->n, sizeof(*s->entries), entry_cmp);
	free(w->stack);
	free(w);
	ug_rules_free(own);
	return r;
}

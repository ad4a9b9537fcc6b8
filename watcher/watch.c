/* watch.c - recursive inotify watch of the master tree (see watch.h).
 *
 * Two maps of the watches are kept in step: libinotifytools' own (wd ->
 * watched path, used to resolve events and renamed with
 * inotifytools_replace_filename) and ours (wd <-> path relative to the
 * root, which the library cannot enumerate: needed to drop the watches of
 * a directory moved out, to skip directories already watched during a
 * rescan, and to count). Every event is checked against both; any
 * disagreement means a missed event, and the answer is a rebuild.
 *
 * libinotifytools pitfalls handled here (see API-NOTES):
 *   - inotifytools_next_events() waits in select() with a timeout in whole
 *     seconds; we poll() its descriptor ourselves and only call it with a
 *     zero timeout, which never blocks. The library does not expose the
 *     descriptor: inotify_init() returns the lowest free number, so we
 *     note that number just before initialising, and check in /proc that
 *     it is an inotify descriptor.
 *   - events are read into a static buffer; a poll() cannot see what
 *     waits there, hence ug_watch_buffered();
 *   - the returned event lives in static storage: copied at once;
 *   - inotifytools_watch_file() does not return the wd, and its wd ->
 *     name map keeps an entry for a watch the kernel dropped (IN_IGNORED)
 *     until inotifytools_cleanup(): we learn the wd from inotify_add_watch
 *     (adding the same inode again returns the same wd), and rebuild when
 *     too many dead entries piled up;
 *   - its recursive watch lists a directory before watching it (racy) and
 *     cannot skip what the rules exclude: we walk the tree ourselves,
 *     watch first, then list. */
#include "config.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/inotify.h>
#include <sys/select.h>
#include <sys/stat.h>
#include <unistd.h>

#include <inotifytools/inotifytools.h>

#include "rules.h"
#include "watch.h"
#include "wlog.h"
#include "util.h"

#define WATCH_EVENTS (IN_CREATE | IN_DELETE | IN_CLOSE_WRITE | IN_MODIFY | IN_ATTRIB | \
		      IN_MOVED_FROM | IN_MOVED_TO | IN_DELETE_SELF | IN_MOVE_SELF)
/* IN_MODIFY keeps the quiet period from ending in the middle of a long
 * copy; IN_EXCL_UNLINK drops events of files already deleted. */
#define WATCH_MASK (WATCH_EVENTS | IN_ONLYDIR | IN_DONT_FOLLOW | IN_EXCL_UNLINK)

/* The kernel queues IN_MOVED_FROM and IN_MOVED_TO of one rename together;
 * a reader can only fall between them by a hair. */
#define MOVE_GRACE_NS (20 * 1000000ll)
/* Dead entries left in libinotifytools' map before a rebuild frees them. */
#define STALE_MAX 16384u
/* Calls of inotifytools_replace_filename() for one move (see rename_tree) */
#define REPLACE_ROUNDS_MAX 64u
/* Events discarded before a rebuild (bounded: a writer may not stop). */
#define DRAIN_MAX 1000000u

/* ---------------------------------------------------------------- map */

struct wdir {
	int wd;
	char *path;             /* relative to the root; "" is the root */
};

/* Open addressing with linear probing, keyed by wd or by path. */
struct tab {
	struct wdir **slot;
	size_t cap;             /* 0 or a power of two */
	size_t used, tomb;
	bool by_path;
};

static struct wdir tab_tomb_entry;
#define TOMB (&tab_tomb_entry)

struct dirmap {
	struct tab wd;
	struct tab path;
};

static uint64_t hash_str(const char *s)
{
	uint64_t h = 1469598103934665603ull;

	for (; *s; s++)
		h = (h ^ (unsigned char)*s) * 1099511628211ull;
	return h;
}

static uint64_t tab_hash(const struct tab *t, const struct wdir *k)
{
	uint64_t x;

	if (t->by_path)
		return hash_str(k->path);
	x = (uint32_t)k->wd * 0x9E3779B97F4A7C15ull;
	return x ^ (x >> 29);
}

static bool tab_eq(const struct tab *t, const struct wdir *a, const struct wdir *b)
{
	return t->by_path ? strcmp(a->path, b->path) == 0 : a->wd == b->wd;
}

static struct wdir **tab_lookup(const struct tab *t, const struct wdir *k)
{
	size_t m, i;

	if (!t->cap)
		return NULL;
	m = t->cap - 1;
	i = tab_hash(t, k) & m;
	for (size_t n = 0; n < t->cap; n++, i = (i + 1) & m) {
		struct wdir *e = t->slot[i];
		if (!e)
			return NULL;
		if (e != TOMB && tab_eq(t, e, k))
			return &t->slot[i];
	}
	return NULL;
}

static void tab_place(struct tab *t, struct wdir *e)
{
	size_t m = t->cap - 1, i = tab_hash(t, e) & m;

	while (t->slot[i] && t->slot[i] != TOMB)
		i = (i + 1) & m;
	if (t->slot[i] == TOMB)
		t->tomb--;
	t->slot[i] = e;
	t->used++;
}

static int tab_put(struct tab *t, struct wdir *e)
{
	if ((t->used + t->tomb + 1) * 4 > t->cap * 3) {
		struct wdir **old = t->slot, **s;
		size_t oldcap = t->cap, cap = 64;

		while ((t->used + 1) * 2 > cap)
			cap *= 2;
		s = calloc(cap, sizeof(*s));
		if (!s)
			return -ENOMEM;
		t->slot = s;
		t->cap = cap;
		t->used = 0;
		t->tomb = 0;
		for (size_t i = 0; i < oldcap; i++)
			if (old[i] && old[i] != TOMB)
				tab_place(t, old[i]);
		free(old);
	}
	tab_place(t, e);
	return 0;
}

static void tab_del(struct tab *t, struct wdir **slot)
{
	*slot = TOMB;
	t->used--;
	t->tomb++;
}

static void dm_init(struct dirmap *m)
{
	memset(m, 0, sizeof(*m));
	m->path.by_path = true;
}

static struct wdir *dm_by_wd(struct dirmap *m, int wd)
{
	struct wdir k = { .wd = wd }, **s = tab_lookup(&m->wd, &k);

	return s ? *s : NULL;
}

static struct wdir *dm_by_path(struct dirmap *m, const char *path)
{
	struct wdir k = { .path = (char *)path }, **s = tab_lookup(&m->path, &k);

	return s ? *s : NULL;
}

static int dm_add(struct dirmap *m, int wd, const char *path)
{
	struct wdir *e = malloc(sizeof(*e));

	if (!e)
		return -ENOMEM;
	e->wd = wd;
	e->path = strdup(path);
	if (!e->path)
		goto nomem;
	if (tab_put(&m->wd, e) < 0)
		goto nomem;
	if (tab_put(&m->path, e) < 0) {
		tab_del(&m->wd, tab_lookup(&m->wd, e));
		goto nomem;
	}
	return 0;
nomem:
	free(e->path);
	free(e);
	return -ENOMEM;
}

static void dm_del(struct dirmap *m, struct wdir *e)
{
	struct wdir **s = tab_lookup(&m->wd, e);

	if (s)
		tab_del(&m->wd, s);
	s = tab_lookup(&m->path, e);
	if (s && *s == e)
		tab_del(&m->path, s);
	free(e->path);
	free(e);
}

/* newpath is taken over. On failure e is left out of the path table (the
 * caller rebuilds). */
static int dm_rename(struct dirmap *m, struct wdir *e, char *newpath)
{
	struct wdir **s = tab_lookup(&m->path, e);

	if (s && *s == e)
		tab_del(&m->path, s);
	free(e->path);
	e->path = newpath;
	return tab_put(&m->path, e);
}

static void dm_clear(struct dirmap *m)
{
	for (size_t i = 0; i < m->wd.cap; i++) {
		struct wdir *e = m->wd.slot[i];
		if (e && e != TOMB) {
			free(e->path);
			free(e);
		}
	}
	free(m->wd.slot);
	free(m->path.slot);
	dm_init(m);
}

/* p is dir or below it ("" is the root: everything is below it) */
static bool path_under(const char *p, const char *dir, size_t len)
{
	return len == 0 || (strncmp(p, dir, len) == 0 && (p[len] == '\0' || p[len] == '/'));
}

static int dm_collect(struct dirmap *m, const char *dir, struct wdir ***ret, size_t *ret_n)
{
	size_t len = strlen(dir), n = 0, alloc = 0;
	struct wdir **v = NULL;

	for (size_t i = 0; i < m->wd.cap; i++) {
		struct wdir *e = m->wd.slot[i];

		if (!e || e == TOMB || !path_under(e->path, dir, len))
			continue;
		if (n == alloc) {
			struct wdir **nv;
			alloc = alloc ? alloc * 2 : 16;
			nv = realloc(v, alloc * sizeof(*v));
			if (!nv) {
				free(v);
				return -ENOMEM;
			}
			v = nv;
		}
		v[n++] = e;
	}
	*ret = v;
	*ret_n = n;
	return 0;
}

/* ---------------------------------------------------------------- state */

struct ug_watch {
	char *root;             /* absolute, canonical */
	char *prefix;           /* root with a trailing '/' */
	size_t prefix_len;
	char *abs;              /* scratch: prefix + a relative path + '/' */
	int fd;                 /* libinotifytools' inotify descriptor */
	bool started;
	struct ug_rules *rules;
	struct dirmap map;
	int root_wd;
	bool buffered;
	struct {
		bool pending;
		bool is_dir;
		uint32_t cookie;
		int64_t ns;
		char path[UG_PATH_MAX + 1];
	} from;                 /* an IN_MOVED_FROM waiting for its IN_MOVED_TO */
	size_t dirs, unwatched;
	bool limit;
	size_t stale;           /* dead entries in libinotifytools' map */
	size_t shadowed;        /* live entries a dead one hides (see add_watch) */
	uint64_t events;
	enum ug_watch_reason reason;
};

struct walk {
	size_t dirs, unwatched;
	size_t added;           /* watches this walk added */
	bool limit;             /* ENOSPC: stop trying for the rest of the walk */
	int flags;
};

static const char *abs_path(struct ug_watch *w, const char *rel)
{
	size_t n = strlen(rel);

	memcpy(w->abs, w->prefix, w->prefix_len);
	memcpy(w->abs + w->prefix_len, rel, n);
	if (n)
		w->abs[w->prefix_len + n++] = '/';
	w->abs[w->prefix_len + n] = '\0';
	return w->abs;
}

static const char *shown(const char *rel)
{
	return *rel ? rel : ".";
}

/* The map no longer matches the tree: say why (debug) and ask for a
 * rebuild. */
static int map_lost(struct ug_watch *w, const char *why, const char *path)
{
	ug_wlog(UG_WLOG_DEBUG, "watch map of '%s' is wrong: %s '%s'", w->root, why, shown(path));
	w->reason = UG_WATCH_R_MAP;
	return UG_WATCH_RESCAN;
}

static bool is_excluded(const struct ug_watch *w, const char *path, bool is_dir)
{
	return *path && ug_rules_excluded(w->rules, path, is_dir);
}

long ug_watch_read_sysctl(const char *path)
{
	char buf[32], *nl;
	uint64_t v;
	ssize_t n;
	int fd = open(path, O_RDONLY | O_CLOEXEC);

	if (fd < 0)
		return -1;
	n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n <= 0)
		return -1;
	buf[n] = '\0';
	nl = strchr(buf, '\n');
	if (nl)
		*nl = '\0';
	if (ug_parse_u64(buf, LONG_MAX, &v) < 0)
		return -1;
	return (long)v;
}

/* inotify_init() takes the lowest free descriptor, so the number a probe
 * gets just before is the one libinotifytools' descriptor will get (we
 * are single-threaded here: publish's workers have ended). /proc confirms
 * it when mounted. */
static int inotify_start(struct ug_watch *w, struct ug_error *err)
{
	char link[64], target[64];
	ssize_t n;
	int probe = open("/dev/null", O_RDONLY | O_CLOEXEC), e;

	if (probe < 0)
		return ug_error_set(err, -errno, "cannot open '/dev/null': %s", strerror(errno));
	close(probe);
	if (!inotifytools_initialize()) {
		e = inotifytools_error();
		if (!e)
			e = EIO;
		return ug_error_set(err, -e, "cannot start inotify: %s%s", strerror(e),
				    e == EMFILE ? " (raise the sysctl fs.inotify.max_user_instances)" : "");
	}
	w->started = true;
	snprintf(link, sizeof(link), "/proc/self/fd/%d", probe);
	n = readlink(link, target, sizeof(target) - 1);
	if (n >= 0) {
		target[n] = '\0';
		if (strcmp(target, "anon_inode:inotify") != 0) {
			inotifytools_cleanup();
			w->started = false;
			return ug_error_set(err, -ENOTSUP,
					    "cannot find libinotifytools' inotify descriptor (fd %d is '%s')",
					    probe, target);
		}
	} else if (access("/proc/self/fd", F_OK) == 0) {
		inotifytools_cleanup();
		w->started = false;
		return ug_error_set(err, -ENOTSUP, "cannot find libinotifytools' inotify descriptor");
	}
	/* the library selects on it: a number at or above FD_SETSIZE breaks */
	if (probe >= FD_SETSIZE) {
		inotifytools_cleanup();
		w->started = false;
		return ug_error_set(err, -EMFILE, "inotify descriptor %d is above FD_SETSIZE", probe);
	}
	/* the library opens it without close-on-exec */
	fcntl(probe, F_SETFD, FD_CLOEXEC);
	w->fd = probe;
	return 0;
}

static void inotify_stop(struct ug_watch *w)
{
	if (!w->started)
		return;
	/* its read buffer survives inotifytools_cleanup(): empty it, or the
	 * next instance would be handed this one's events */
	for (unsigned i = 0; i < DRAIN_MAX && inotifytools_next_events(0, 1); i++)
		;
	inotifytools_cleanup();
	w->started = false;
	w->fd = -1;
}

/* ---------------------------------------------------------------- walks */

/* The root, opened for the time of one job. Holding it open for good
 * would keep its inode alive after an rmdir, and the kernel would only
 * say IN_DELETE_SELF once we let go: the watcher would never learn that
 * its tree is gone. */
static int root_open(const struct ug_watch *w)
{
	int fd = open(w->root, O_RDONLY | O_DIRECTORY | O_CLOEXEC);

	return fd < 0 ? -errno : fd;
}

static bool same_dir(const struct ug_watch *w, const char *a, const char *b)
{
	struct stat sa, sb;
	int fd = root_open(w);
	bool same;

	if (fd < 0)
		return false;
	same = fstatat(fd, *a ? a : ".", &sa, AT_SYMLINK_NOFOLLOW) == 0 &&
	       fstatat(fd, *b ? b : ".", &sb, AT_SYMLINK_NOFOLLOW) == 0 &&
	       sa.st_dev == sb.st_dev && sa.st_ino == sb.st_ino;
	close(fd);
	return same;
}

static int remove_tree(struct ug_watch *w, const char *rel, bool kernel_gone);

/* 1 if rel is now watched, 0 if it was already, else -errno: -ENOSPC at the
 * watch limit, -ESTALE when the map turned out wrong (c->flags asks for a
 * rebuild), -EEXIST for a second name of a watched directory. */
static int add_watch(struct ug_watch *w, const char *rel, struct walk *c)
{
	const char *abs, *name;
	struct wdir *e = dm_by_path(&w->map, rel);
	int wd, r;

	/* at the limit only a directory watched already can be checked:
	 * watching its inode again takes no new watch */
	if (!e && c->limit)
		return -ENOSPC;
	abs = abs_path(w, rel);
	wd = inotify_add_watch(w->fd, abs, WATCH_MASK);
	if (wd < 0) {
		r = -errno;
		if (r == -ENOSPC)
			c->limit = true;
		return r;
	}
	if (e) {
		if (e->wd == wd)
			return 0;
		/* a directory made where a watched one was deleted, before
		 * that one's IN_IGNORED came: the old watches go */
		c->flags |= remove_tree(w, rel, false);
	}
	e = dm_by_wd(&w->map, wd);
	if (e) {
		if (same_dir(w, e->path, rel)) {
			ug_wlog(UG_WLOG_WARN, "'%s' is the same directory as '%s' (a bind mount?); "
				"changes seen through it are found by periodic rescans",
				shown(rel), shown(e->path));
			return -EEXIST;
		}
		c->flags |= map_lost(w, "already watched as another path:", e->path);
		return -ESTALE;
	}
	/* the same inode again: the kernel returns wd, the library records it */
	if (!inotifytools_watch_file(abs, WATCH_MASK)) {
		r = inotifytools_error() ? -inotifytools_error() : -EIO;
		inotify_rm_watch(w->fd, wd);
		return r;
	}
	name = inotifytools_filename_from_wd(wd);
	if (!name || strcmp(name, abs_path(w, rel)) != 0) {
		inotifytools_remove_watch_by_wd(wd);
		c->flags |= map_lost(w, "libinotifytools recorded another name for", rel);
		return -ESTALE;
	}
	/* a dead entry of the same name (a directory deleted, then made
	 * again) keeps this one out of the library's by-name index, which
	 * inotifytools_replace_filename() walks: a later move of a parent
	 * cannot rename it, and rename_tree() will ask for a rebuild */
	if (inotifytools_wd_from_filename(abs_path(w, rel)) != wd)
		w->shadowed++;
	r = dm_add(&w->map, wd, rel);
	if (r < 0) {
		inotifytools_remove_watch_by_wd(wd);
		return r;
	}
	c->added++;
	return 1;
}

static void note_unwatched(struct walk *c, const char *rel, int r)
{
	c->unwatched++;
	if (r != -ENOSPC && r != -ESTALE && r != -EEXIST)
		ug_wlog(UG_WLOG_WARN, "cannot watch '%s': %s; changes in it are found by periodic rescans",
			shown(rel), strerror(-r));
}

/* Watch the directory open at dfd (taken over), whose path is rel[0..len),
 * then list it and walk its subdirectories. Watch before listing: what is
 * created after the watch gives events, what was created before is in
 * the listing. */
static void walk_dir(struct ug_watch *w, struct walk *c, int dfd, char *rel, size_t len,
		     unsigned depth)
{
	struct dirent *de;
	DIR *d;
	int r;

	r = add_watch(w, rel, c);
	if (r == -ENOENT || r == -ENOTDIR) {
		close(dfd);     /* gone meanwhile: its parent's events tell */
		return;
	}
	c->dirs++;
	if (r < 0)
		note_unwatched(c, rel, r);
	if (r == -ESTALE || depth >= UG_DEPTH_MAX) {
		close(dfd);
		return;
	}
	d = fdopendir(dfd);
	if (!d) {
		close(dfd);
		return;
	}
	while ((de = readdir(d)) != NULL) {
		const char *name = de->d_name;
		size_t nl, clen;
		bool is_dir = de->d_type == DT_DIR;
		int cfd;

		if (name[0] == '.' && (!name[1] || (name[1] == '.' && !name[2])))
			continue;
		if (de->d_type == DT_UNKNOWN) {
			struct stat st;
			if (fstatat(dirfd(d), name, &st, AT_SYMLINK_NOFOLLOW) < 0)
				continue;
			is_dir = S_ISDIR(st.st_mode);
		}
		if (!is_dir)
			continue;
		nl = strlen(name);
		clen = len ? len + 1 + nl : nl;
		if (clen > UG_PATH_MAX)
			continue;       /* publish's scan reports it */
		if (len)
			rel[len] = '/';
		memcpy(rel + (len ? len + 1 : 0), name, nl + 1);
		if (depth == 0 && strcmp(name, ".upgrid") == 0) {
			/* excluded from versions, but .upgrid/rules decides what
			 * the tree is: watched, not descended into */
			r = add_watch(w, rel, c);
			if (r != -ENOENT && r != -ENOTDIR) {
				c->dirs++;
				if (r < 0)
					note_unwatched(c, rel, r);
			}
		} else if (!ug_rules_excluded_leaf(w->rules, rel, true)) {
			cfd = openat(dirfd(d), name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
			if (cfd >= 0) {
				walk_dir(w, c, cfd, rel, clen, depth + 1);
			} else if (errno != ENOENT && errno != ENOTDIR && errno != ELOOP) {
				c->dirs++;
				note_unwatched(c, rel, -errno);
			}
		}
		rel[len] = '\0';
	}
	closedir(d);
}

/* Walk from rel (a directory the rules do not exclude). */
static int walk_from(struct ug_watch *w, const char *rel, struct walk *c)
{
	size_t len = strlen(rel);
	unsigned depth = 0;
	char *buf;
	int dfd;

	if (len > UG_PATH_MAX)
		return -ENAMETOOLONG;
	buf = malloc(UG_PATH_MAX + 1);
	if (!buf)
		return -ENOMEM;
	memcpy(buf, rel, len + 1);
	dfd = root_open(w);
	if (dfd >= 0 && len) {
		int rootfd = dfd;

		dfd = ug_open_beneath(rootfd, rel, O_RDONLY | O_DIRECTORY, 0);
		close(rootfd);
		depth = 1;
		for (const char *p = rel; *p; p++)
			depth += *p == '/';
	}
	if (dfd < 0) {
		free(buf);
		return dfd;
	}
	walk_dir(w, c, dfd, buf, len, depth);
	free(buf);
	return 0;
}

/* A new directory (created, or moved in): watch it and what is below. */
static int add_tree(struct ug_watch *w, const char *rel)
{
	struct walk c = { 0 };
	int r = walk_from(w, rel, &c);

	if (r < 0 && r != -ENOENT && r != -ENOTDIR && r != -ELOOP) {
		c.dirs++;
		note_unwatched(&c, rel, r);
	}
	/* only what is new: the walk may cross directories already counted
	 * (a renamed tree); a full walk recounts everything */
	w->dirs += c.added;
	w->unwatched += c.unwatched;
	/* a full walk finds out how many directories the limit leaves out */
	if (c.limit && !w->limit)
		c.flags |= UG_WATCH_SYNC;
	w->limit |= c.limit;
	return c.flags;
}

static int walk_all(struct ug_watch *w)
{
	struct walk c = { 0 };
	struct wdir *root;
	int r = walk_from(w, "", &c);

	if (r < 0)
		return r;
	w->dirs = c.dirs;
	w->unwatched = c.unwatched;
	w->limit = c.limit;
	root = dm_by_path(&w->map, "");
	w->root_wd = root ? root->wd : -1;
	return c.flags;
}

static int cmp_int(const void *a, const void *b)
{
	int x = *(const int *)a, y = *(const int *)b;

	return (x > y) - (x < y);
}

/* The wds the kernel still holds on our descriptor, sorted, from
 * /proc/self/fdinfo; -errno if it cannot be read. */
static int kernel_wds(const struct ug_watch *w, int **ret, size_t *ret_n)
{
	char path[64], line[256];
	size_t n = 0, alloc = 0;
	int *v = NULL;
	unsigned wd;
	FILE *f;

	snprintf(path, sizeof(path), "/proc/self/fdinfo/%d", w->fd);
	f = fopen(path, "re");
	if (!f)
		return -errno;
	/* a longer line comes in pieces; only a line's start matches */
	while (fgets(line, sizeof(line), f)) {
		if (sscanf(line, "inotify wd:%x ", &wd) != 1)
			continue;
		if (n == alloc) {
			int *nv;
			alloc = alloc ? alloc * 2 : 64;
			nv = realloc(v, alloc * sizeof(*v));
			if (!nv) {
				free(v);
				fclose(f);
				return -ENOMEM;
			}
			v = nv;
		}
		v[n++] = (int)wd;
	}
	fclose(f);
	if (n)
		qsort(v, n, sizeof(*v), cmp_int);
	*ret = v;
	*ret_n = n;
	return 0;
}

/* Drop the watches of rel and below. kernel_gone: the kernel already
 * dropped them (it will say IN_IGNORED), so only forget them. */
static int remove_tree(struct ug_watch *w, const char *rel, bool kernel_gone)
{
	struct wdir **v;
	int *live = NULL;
	size_t n, nlive = 0;
	bool known = false;

	if (dm_collect(&w->map, rel, &v, &n) < 0)
		return map_lost(w, "out of memory removing", rel);
	/* a directory moved out may have been deleted since, its watches
	 * with it; libinotifytools prints to stderr when asked to remove
	 * such a watch, so ask the kernel first */
	if (n && !kernel_gone)
		known = kernel_wds(w, &live, &nlive) == 0;
	for (size_t i = 0; i < n; i++) {
		bool alive = !kernel_gone &&
			     (!known || (nlive && bsearch(&v[i]->wd, live, nlive, sizeof(*live), cmp_int)));

		/* the library keeps its entry of a watch it did not remove */
		if (!alive || !inotifytools_remove_watch_by_wd(v[i]->wd))
			w->stale++;
		dm_del(&w->map, v[i]);
	}
	w->dirs -= n < w->dirs ? n : w->dirs;
	free(live);
	free(v);
	return 0;
}

static char *join(const char *a, const char *b, const char *c)
{
	size_t la = strlen(a), lb = strlen(b), lc = strlen(c);
	char *s = malloc(la + lb + lc + 1);

	if (!s)
		return NULL;
	memcpy(s, a, la);
	memcpy(s + la, b, lb);
	memcpy(s + la + lb, c, lc + 1);
	return s;
}

/* A watched directory moved within the tree: its watches follow it. */
static int rename_tree(struct ug_watch *w, const char *from, const char *to)
{
	size_t fl = strlen(from);
	char *old_abs = NULL, *new_abs = NULL;
	struct wdir **v = NULL;
	size_t n = 0;
	int flags;

	/* rename(2) over an empty directory: that one is gone */
	flags = remove_tree(w, to, true);
	old_abs = join(w->prefix, from, "/");
	new_abs = join(w->prefix, to, "/");
	if (!old_abs || !new_abs || dm_collect(&w->map, from, &v, &n) < 0)
		goto rescan;
	for (size_t i = 0; i < n; i++) {
		const char *rest = v[i]->path + fl;
		char *np;

		if (strlen(to) + strlen(rest) > UG_PATH_MAX)
			goto rescan;
		np = join(to, rest, "");
		if (!np || dm_rename(&w->map, v[i], np) < 0) {
			free(np);
			goto rescan;
		}
	}
	/* inotifytools_replace_filename() (3.22.6) re-sorts the library's map
	 * while walking it and skips entries: each call renames about half
	 * of what is left, so call it until every entry has its new name */
	for (unsigned round = 0;; round++) {
		size_t left = 0;

		if (round == REPLACE_ROUNDS_MAX)
			goto rescan;
		inotifytools_replace_filename(old_abs, new_abs);
		for (size_t i = 0; i < n; i++) {
			const char *name = inotifytools_filename_from_wd(v[i]->wd);
			if (!name || strcmp(name, abs_path(w, v[i]->path)) != 0)
				left++;
		}
		if (!left)
			break;
	}
	/* renamed onto the name of a dead entry: hidden, as in add_watch */
	for (size_t i = 0; i < n; i++)
		if (inotifytools_wd_from_filename(abs_path(w, v[i]->path)) != v[i]->wd)
			w->shadowed++;
	free(old_abs);
	free(new_abs);
	free(v);
	return flags;
rescan:
	free(old_abs);
	free(new_abs);
	free(v);
	if (w->shadowed) {
		/* expected (see add_watch): nothing was missed */
		ug_wlog(UG_WLOG_DEBUG, "libinotifytools cannot rename the watches of '%s' "
			"(%zu of its entries are hidden by dead ones)", from, w->shadowed);
		w->reason = UG_WATCH_R_COMPACT;
		return flags | UG_WATCH_RESCAN;
	}
	return flags | map_lost(w, "cannot rename the watches of", from);
}

static int reload_rules(struct ug_watch *w)
{
	struct ug_rules *r = NULL;
	struct ug_error e = { "" };
	int fd = root_open(w), rc;

	if (fd < 0)
		return UG_WATCH_CHANGED;        /* the tree is going: its events tell */
	rc = ug_rules_load(fd, &r, &e);
	close(fd);
	if (rc < 0) {
		ug_wlog(UG_WLOG_WARN, "tree '%s': %s; watching with the previous rules until it is fixed",
			w->root, e.msg);
		return UG_WATCH_CHANGED;
	}
	ug_rules_free(w->rules);
	w->rules = r;
	ug_wlog(UG_WLOG_DEBUG, "reloaded '%s/%s'", w->root, UG_RULES_PATH);
	return UG_WATCH_CHANGED | UG_WATCH_SYNC;
}

int ug_watch_reload_rules(struct ug_watch *w)
{
	return reload_rules(w);
}

/* ---------------------------------------------------------------- events */

struct ev {
	int wd;
	uint32_t mask;
	uint32_t cookie;
	char name[NAME_MAX + 1];
};

static int moved_out(struct ug_watch *w, const char *path, bool is_dir)
{
	int flags = 0;

	if (is_dir)
		flags |= remove_tree(w, path, false);
	if (!is_excluded(w, path, is_dir))
		flags |= UG_WATCH_CHANGED;
	return flags;
}

static int moved_in(struct ug_watch *w, const char *path, bool is_dir)
{
	bool ex = is_excluded(w, path, is_dir);
	int flags = 0;

	if (is_dir && !ex)
		flags |= add_tree(w, path);
	if (!ex)
		flags |= UG_WATCH_CHANGED;
	return flags;
}

static int moved(struct ug_watch *w, const char *from, const char *to, bool is_dir)
{
	bool ex_from = is_excluded(w, from, is_dir), ex_to = is_excluded(w, to, is_dir);
	int flags = 0;

	if (is_dir) {
		if (dm_by_path(&w->map, from) && !ex_to) {
			flags |= rename_tree(w, from, to);
			/* what the rules excluded under the old name may be
			 * included under the new one */
			if (!(flags & UG_WATCH_RESCAN))
				flags |= add_tree(w, to);
		} else {
			flags |= remove_tree(w, from, false);
			if (!ex_to)
				flags |= add_tree(w, to);
		}
	}
	if (!ex_from || !ex_to)
		flags |= UG_WATCH_CHANGED;
	return flags;
}

static int resolve_from(struct ug_watch *w)
{
	if (!w->from.pending)
		return 0;
	w->from.pending = false;
	return moved_out(w, w->from.path, w->from.is_dir);
}

static int handle(struct ug_watch *w, const struct ev *e, int64_t now_ns)
{
	char path[UG_PATH_MAX + NAME_MAX + 2];
	const char *dn;
	bool is_dir = e->mask & IN_ISDIR;
	struct wdir *d;
	int flags = 0;

	if (e->mask & IN_Q_OVERFLOW) {
		w->reason = UG_WATCH_R_OVERFLOW;
		return UG_WATCH_RESCAN | UG_WATCH_CHANGED;
	}
	d = dm_by_wd(&w->map, e->wd);
	if (e->mask & IN_IGNORED) {
		if (d) {
			dm_del(&w->map, d);
			w->stale++;
			if (w->dirs)
				w->dirs--;
			if (w->stale > STALE_MAX && w->stale > w->map.wd.used) {
				w->reason = UG_WATCH_R_COMPACT;
				return UG_WATCH_RESCAN;
			}
		}
		return 0;
	}
	if (!d)
		return 0;       /* queued before we dropped its watch */
	dn = inotifytools_filename_from_wd(e->wd);
	if (!dn || strcmp(dn, abs_path(w, d->path)) != 0)
		return map_lost(w, "libinotifytools and upgrid-watch disagree on", d->path) |
		       UG_WATCH_CHANGED;
	if (e->mask & IN_UNMOUNT) {
		w->reason = UG_WATCH_R_UNMOUNT;
		return UG_WATCH_RESCAN | UG_WATCH_CHANGED;
	}
	if (e->mask & (IN_DELETE_SELF | IN_MOVE_SELF))
		return e->wd == w->root_wd ? UG_WATCH_GONE : 0;

	if (!e->name[0])
		snprintf(path, sizeof(path), "%s", d->path);
	else if (!d->path[0])
		snprintf(path, sizeof(path), "%s", e->name);
	else
		snprintf(path, sizeof(path), "%s/%s", d->path, e->name);
	if (ug_wlog_enabled(UG_WLOG_TRACE))
		ug_wlog(UG_WLOG_TRACE, "event %s '%s'", inotifytools_event_to_str(e->mask), shown(path));
	if (strlen(path) > UG_PATH_MAX)
		return resolve_from(w) | UG_WATCH_CHANGED;   /* publish reports it */

	if (w->from.pending && !((e->mask & IN_MOVED_TO) && e->cookie == w->from.cookie))
		flags |= resolve_from(w);
	if (!e->name[0])        /* on a watched directory itself (IN_ATTRIB) */
		return flags | (is_excluded(w, path, true) ? 0 : UG_WATCH_CHANGED);

	if (strcmp(d->path, ".upgrid") == 0) {
		if (strcmp(e->name, "rules") == 0)
			flags |= reload_rules(w);
		return flags;
	}
	if (!d->path[0] && strcmp(e->name, ".upgrid") == 0) {
		struct walk c = { 0 };
		flags |= resolve_from(w);   /* moved onto .upgrid: gone for us */
		if (e->mask & (IN_DELETE | IN_MOVED_FROM))
			flags |= remove_tree(w, ".upgrid", (e->mask & IN_DELETE) != 0);
		if (is_dir && (e->mask & (IN_CREATE | IN_MOVED_TO))) {
			int r = add_watch(w, ".upgrid", &c);
			if (r < 0 && r != -ENOENT && r != -ENOTDIR)
				note_unwatched(&c, ".upgrid", r);
			w->unwatched += c.unwatched;
			w->dirs += c.added;
			flags |= c.flags;
		}
		return flags | reload_rules(w);
	}

	if (e->mask & IN_MOVED_FROM) {
		w->from.pending = true;
		w->from.is_dir = is_dir;
		w->from.cookie = e->cookie;
		w->from.ns = now_ns;
		/* strlen(path) <= UG_PATH_MAX: checked above */
		memcpy(w->from.path, path, strlen(path) + 1);
		return flags;
	}
	if (e->mask & IN_MOVED_TO) {
		if (w->from.pending) {
			w->from.pending = false;
			return flags | moved(w, w->from.path, path, is_dir);
		}
		return flags | moved_in(w, path, is_dir);
	}
	if (is_excluded(w, path, is_dir))
		return flags;
	if ((e->mask & IN_CREATE) && is_dir)
		flags |= add_tree(w, path);
	return flags | UG_WATCH_CHANGED;
}

int ug_watch_read(struct ug_watch *w, int64_t now_ns, unsigned max_events)
{
	int flags = 0;

	w->buffered = false;
	for (unsigned n = 0; n < max_events; n++) {
		/* timeout 0 is a select() that does not wait (next_event(0)
		 * would wait forever) */
		struct inotify_event *ie = inotifytools_next_events(0, 1);
		struct ev e;
		size_t len;

		if (!ie) {
			int er = inotifytools_error();
			if (er && er != EINTR && er != EAGAIN) {
				ug_wlog(UG_WLOG_WARN, "cannot read inotify events: %s", strerror(er));
				w->reason = UG_WATCH_R_READ;
				flags |= UG_WATCH_RESCAN | UG_WATCH_CHANGED;
			}
			return flags;
		}
		e.wd = ie->wd;
		e.mask = ie->mask;
		e.cookie = ie->cookie;
		len = ie->len ? strnlen(ie->name, ie->len) : 0;
		if (len > NAME_MAX)
			len = NAME_MAX;
		memcpy(e.name, ie->name, len);
		e.name[len] = '\0';
		w->events++;
		flags |= handle(w, &e, now_ns);
		if (flags & (UG_WATCH_RESCAN | UG_WATCH_GONE))
			return flags;   /* the rest is dropped by the rebuild */
	}
	w->buffered = true;
	return flags;
}

bool ug_watch_buffered(const struct ug_watch *w)
{
	return w->buffered;
}

int ug_watch_fd(const struct ug_watch *w)
{
	return w->fd;
}

int64_t ug_watch_deadline(const struct ug_watch *w)
{
	return w->from.pending ? w->from.ns + MOVE_GRACE_NS : INT64_MAX;
}

int ug_watch_tick(struct ug_watch *w, int64_t now_ns)
{
	if (w->from.pending && now_ns >= w->from.ns + MOVE_GRACE_NS)
		return resolve_from(w);
	return 0;
}

int ug_watch_sync(struct ug_watch *w)
{
	int r = walk_all(w);

	return r < 0 ? UG_WATCH_GONE : r;
}

int ug_watch_rebuild(struct ug_watch *w, struct ug_error *err)
{
	int r;

	inotify_stop(w);
	dm_clear(&w->map);
	w->stale = 0;
	w->shadowed = 0;
	w->from.pending = false;
	w->buffered = false;
	w->root_wd = -1;
	r = inotify_start(w, err);
	if (r < 0)
		return r;
	reload_rules(w);
	r = walk_all(w);
	if (r < 0)
		return ug_error_set(err, r, "cannot open tree '%s': %s", w->root, strerror(-r));
	return (r & ~UG_WATCH_RESCAN) | UG_WATCH_CHANGED;
}

void ug_watch_get_stats(const struct ug_watch *w, struct ug_watch_stats *ret)
{
	ret->dirs = w->dirs;
	ret->watched = w->map.wd.used;
	ret->unwatched = w->unwatched;
	ret->limit = w->limit;
	ret->events = w->events;
	ret->reason = w->reason;
}

int ug_watch_open(const char *tree, struct ug_watch **ret, struct ug_error *err)
{
	struct ug_watch *w = calloc(1, sizeof(*w));
	struct ug_error e = { "" };
	size_t len = strlen(tree);
	int fd, r;

	if (!w)
		return -ENOMEM;
	w->fd = -1;
	w->root_wd = -1;
	dm_init(&w->map);
	w->root = strdup(tree);
	w->prefix = join(tree, len && tree[len - 1] == '/' ? "" : "/", "");
	if (!w->root || !w->prefix) {
		r = -ENOMEM;
		goto fail;
	}
	w->prefix_len = strlen(w->prefix);
	w->abs = malloc(w->prefix_len + UG_PATH_MAX + 2);
	if (!w->abs) {
		r = -ENOMEM;
		goto fail;
	}
	r = root_open(w);
	if (r < 0) {
		ug_error_set(err, r, "cannot open tree '%s': %s", tree, strerror(-r));
		goto fail;
	}
	fd = r;
	r = ug_rules_load(fd, &w->rules, &e);
	close(fd);
	if (r < 0) {
		ug_error_set(err, r, "tree '%s': %s", tree, e.msg);
		goto fail;
	}
	r = inotify_start(w, err);
	if (r < 0)
		goto fail;
	r = walk_all(w);
	if (r < 0) {
		ug_error_set(err, r, "cannot open tree '%s': %s", tree, strerror(-r));
		goto fail;
	}
	*ret = w;
	return 0;
fail:
	ug_watch_close(w);
	return r;
}

void ug_watch_close(struct ug_watch *w)
{
	if (!w)
		return;
	inotify_stop(w);
	dm_clear(&w->map);
	ug_rules_free(w->rules);
	free(w->abs);
	free(w->prefix);
	free(w->root);
	free(w);
}

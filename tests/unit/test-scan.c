/* test-scan.c - unit tests for src/scan.c: the exact sorted listing of a
 * tree with nested dirs, modes, an empty dir, symlinks, a fifo, excluded
 * files and dirs and .upgrid; warnings for what is skipped; the depth and
 * path-length limits; that a symlinked directory is never followed; that
 * no descriptor leaks; and that a failed scan leaves nothing behind. */
#include "config.h"

#include <criterion/criterion.h>

#include <dirent.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "rules.h"
#include "scan.h"

/* Each Criterion test runs in its own forked process, so this per-test
 * state is private to the test using it. */
static char tmpdir[64];
static int tmpfd = -1;   /* the tree root */
static char outdir[64];  /* a directory outside the tree */
static int outfd = -1;

/* rm -rf relative to dirfd, with openat so that trees deeper or longer
 * than PATH_MAX can be removed too. */
static void rm_rf_at(int pfd, const char *name)
{
	struct stat st;
	int fd;
	DIR *d;
	struct dirent *de;

	if (fstatat(pfd, name, &st, AT_SYMLINK_NOFOLLOW) < 0)
		return;
	if (!S_ISDIR(st.st_mode)) {
		unlinkat(pfd, name, 0);
		return;
	}
	if (fchmodat(pfd, name, 0700, 0) < 0)
		return;
	fd = openat(pfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0)
		return;
	d = fdopendir(fd);
	if (!d) {
		close(fd);
		return;
	}
	while ((de = readdir(d)) != NULL) {
		if (strcmp(de->d_name, ".") && strcmp(de->d_name, ".."))
			rm_rf_at(dirfd(d), de->d_name);
	}
	closedir(d);
	unlinkat(pfd, name, AT_REMOVEDIR);
}

static void tmp_setup(void)
{
	snprintf(tmpdir, sizeof(tmpdir), "/tmp/ug-test-scan-XXXXXX");
	cr_assert_not_null(mkdtemp(tmpdir), "mkdtemp: %s", strerror(errno));
	tmpfd = open(tmpdir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	cr_assert_geq(tmpfd, 0);
	snprintf(outdir, sizeof(outdir), "/tmp/ug-test-scan-out-XXXXXX");
	cr_assert_not_null(mkdtemp(outdir), "mkdtemp: %s", strerror(errno));
	outfd = open(outdir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	cr_assert_geq(outfd, 0);
}

static void tmp_teardown(void)
{
	if (tmpfd >= 0)
		close(tmpfd);
	if (outfd >= 0)
		close(outfd);
	tmpfd = outfd = -1;
	if (tmpdir[0])
		rm_rf_at(AT_FDCWD, tmpdir);
	if (outdir[0])
		rm_rf_at(AT_FDCWD, outdir);
}

static void put(int dirfd, const char *path, const char *content, mode_t mode)
{
	int fd = openat(dirfd, path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);

	cr_assert_geq(fd, 0, "create '%s': %s", path, strerror(errno));
	cr_assert_eq(ug_write_all(fd, content, strlen(content)), 0);
	cr_assert_eq(fchmod(fd, mode), 0);
	close(fd);
}

static void mkd(int dirfd, const char *path, mode_t mode)
{
	cr_assert_eq(mkdirat(dirfd, path, mode), 0, "mkdir '%s': %s", path, strerror(errno));
	cr_assert_eq(fchmodat(dirfd, path, mode, 0), 0);
}

struct warnings {
	char *msg[32];
	size_t n;
};

static void collect(void *ctx, const char *msg)
{
	struct warnings *w = ctx;

	cr_assert_lt(w->n, 32);
	w->msg[w->n] = strdup(msg);
	cr_assert_not_null(w->msg[w->n]);
	w->n++;
}

static bool warned(const struct warnings *w, const char *msg)
{
	for (size_t i = 0; i < w->n; i++)
		if (strcmp(w->msg[i], msg) == 0)
			return true;
	return false;
}

static void warnings_free(struct warnings *w)
{
	for (size_t i = 0; i < w->n; i++)
		free(w->msg[i]);
	w->n = 0;
}

static size_t count_fds(void)
{
	DIR *d = opendir("/proc/self/fd");
	struct dirent *de;
	size_t n = 0;

	cr_assert_not_null(d);
	while ((de = readdir(d)) != NULL)
		n++;
	closedir(d);
	return n;
}

static const struct ug_scan_entry *find(const struct ug_scan *s, const char *path)
{
	for (size_t i = 0; i < s->n; i++)
		if (strcmp(s->entries[i].path, path) == 0)
			return &s->entries[i];
	return NULL;
}

/* The tree of the main test:
 *   .upgrid/rules        "exclude *.log", "exclude build/"
 *   bin/ (0755)  tool (0755, 10 B)  secret (0600, 5 B)
 *   etc/ (0750)  app.ini (0644)  old.log (excluded)  sub/ (0700) deep.txt
 *   empty/ (0755)
 *   build/ (excluded dir)  out.o  inner/x
 *   app.log (excluded)   notes.swp (default exclusion)
 *   top.txt (0644)
 *   passwd -> /etc/passwd     linkdir -> <outside dir>     fifo
 *   tmp.tmp -> /etc/passwd (excluded: no warning) */
static void build_tree(void)
{
	struct timespec ts[2] = { { 1700000000, 123456789 }, { 1700000000, 123456789 } };

	mkd(tmpfd, ".upgrid", 0755);
	put(tmpfd, ".upgrid/rules", "# test rules\nexclude *.log\nexclude build/\n", 0644);
	mkd(tmpfd, "bin", 0755);
	put(tmpfd, "bin/tool", "#!/bin/sh\n", 0755);
	put(tmpfd, "bin/secret", "12345", 0600);
	mkd(tmpfd, "etc", 0750);
	put(tmpfd, "etc/app.ini", "[a]\nb=c\n", 0644);
	put(tmpfd, "etc/old.log", "old\n", 0644);
	mkd(tmpfd, "etc/sub", 0700);
	put(tmpfd, "etc/sub/deep.txt", "deep", 0640);
	mkd(tmpfd, "empty", 0755);
	mkd(tmpfd, "build", 0755);
	put(tmpfd, "build/out.o", "obj", 0644);
	mkd(tmpfd, "build/inner", 0755);
	put(tmpfd, "build/inner/x", "x", 0644);
	put(tmpfd, "app.log", "log\n", 0644);
	put(tmpfd, "notes.swp", "swap", 0644);
	put(tmpfd, "top.txt", "top", 0644);
	cr_assert_eq(utimensat(tmpfd, "top.txt", ts, AT_SYMLINK_NOFOLLOW), 0);
	cr_assert_eq(symlinkat("/etc/passwd", tmpfd, "passwd"), 0);
	cr_assert_eq(symlinkat("/etc/passwd", tmpfd, "tmp.tmp"), 0);
	put(outfd, "outside-secret", "do not publish", 0644);
	mkd(outfd, "outside-dir", 0755);
	put(outfd, "outside-dir/file", "nor this", 0644);
	cr_assert_eq(symlinkat(outdir, tmpfd, "linkdir"), 0);
	cr_assert_eq(mkfifoat(tmpfd, "fifo", 0644), 0);
}

Test(scan, tree_listing, .init = tmp_setup, .fini = tmp_teardown)
{
	static const struct {
		const char *path;
		enum ug_scan_type type;
		uint32_t mode;
		uint64_t size;
	} want[] = {
		{ "bin", UG_SCAN_DIR, 0755, 0 },
		{ "bin/secret", UG_SCAN_FILE, 0600, 5 },
		{ "bin/tool", UG_SCAN_FILE, 0755, 10 },
		{ "empty", UG_SCAN_DIR, 0755, 0 },
		{ "etc", UG_SCAN_DIR, 0750, 0 },
		{ "etc/app.ini", UG_SCAN_FILE, 0644, 8 },
		{ "etc/sub", UG_SCAN_DIR, 0700, 0 },
		{ "etc/sub/deep.txt", UG_SCAN_FILE, 0640, 4 },
		{ "top.txt", UG_SCAN_FILE, 0644, 3 },
	};
	struct ug_scan s = { 0 };
	struct ug_rules *rules = NULL;
	struct ug_error err = { "" };
	struct warnings w = { 0 };
	const struct ug_scan_entry *e;
	struct stat st;
	size_t fds;
	int r;

	build_tree();
	cr_assert_eq(ug_rules_load(tmpfd, &rules, &err), 0, "%s", err.msg);
	fds = count_fds();
	r = ug_scan_tree(tmpfd, rules, &s, collect, &w, &err);
	cr_assert_eq(r, 0, "scan: %d %s", r, err.msg);
	cr_assert_eq(count_fds(), fds, "descriptors leaked");

	for (size_t i = 0; i < s.n && i < sizeof(want) / sizeof(want[0]); i++) {
		cr_assert_str_eq(s.entries[i].path, want[i].path, "entry %zu", i);
		cr_assert_eq(s.entries[i].type, want[i].type, "'%s' type", want[i].path);
		cr_assert_eq(s.entries[i].mode, want[i].mode, "'%s' mode %o, want %o",
			     want[i].path, s.entries[i].mode, want[i].mode);
		cr_assert_eq(s.entries[i].size, want[i].size, "'%s' size", want[i].path);
		cr_assert_eq(fstatat(tmpfd, want[i].path, &st, AT_SYMLINK_NOFOLLOW), 0);
		cr_assert_eq(s.entries[i].ino, (uint64_t)st.st_ino, "'%s' ino", want[i].path);
		cr_assert_eq(s.entries[i].dev, (uint64_t)st.st_dev, "'%s' dev", want[i].path);
	}
	cr_assert_eq(s.n, sizeof(want) / sizeof(want[0]), "%zu entries", s.n);
	for (size_t i = 1; i < s.n; i++)
		cr_assert_lt(strcmp(s.entries[i - 1].path, s.entries[i].path), 0, "not sorted");

	e = find(&s, "top.txt");
	cr_assert_not_null(e);
	cr_assert_eq(e->mtime_ns, INT64_C(1700000000123456789));

	/* skipped things were warned about, excluded ones were not */
	cr_assert(warned(&w, "skipping symlink 'passwd' (upgrid does not follow links)"));
	cr_assert(warned(&w, "skipping symlink 'linkdir' (upgrid does not follow links)"));
	cr_assert(warned(&w, "skipping fifo 'fifo' (only regular files and directories are published)"));
	cr_assert_eq(w.n, 3, "%zu warnings, first '%s'", w.n, w.n ? w.msg[0] : "");

	cr_assert_null(find(&s, ".upgrid"));
	cr_assert_null(find(&s, ".upgrid/rules"));
	cr_assert_null(find(&s, "build"));
	cr_assert_null(find(&s, "build/out.o"));
	cr_assert_null(find(&s, "app.log"));
	cr_assert_null(find(&s, "etc/old.log"));
	cr_assert_null(find(&s, "notes.swp"));

	ug_scan_release(&s);
	cr_assert_null(s.entries);
	cr_assert_eq(s.n, 0);
	cr_assert_eq(s.alloc, 0);
	ug_scan_release(&s);
	ug_rules_free(rules);
	warnings_free(&w);
}

Test(scan, never_follows_symlinked_dir, .init = tmp_setup, .fini = tmp_teardown)
{
	struct ug_scan s = { 0 };
	struct ug_rules *rules = NULL;
	struct ug_error err = { "" };
	struct warnings w = { 0 };
	struct stat out_st, out_file;

	/* include everything, so only the no-follow rule keeps them out */
	cr_assert_eq(ug_rules_parse("include **\ninclude */\n", 22, &rules, &err), 0, "%s", err.msg);
	mkd(tmpfd, "real", 0755);
	put(tmpfd, "real/a", "a", 0644);
	put(outfd, "secret", "s", 0644);
	cr_assert_eq(symlinkat(outdir, tmpfd, "real/escape"), 0);
	cr_assert_eq(symlinkat(outdir, tmpfd, "top-escape"), 0);
	cr_assert_eq(symlinkat("real", tmpfd, "loop"), 0);
	cr_assert_eq(fstat(outfd, &out_st), 0);
	cr_assert_eq(fstatat(outfd, "secret", &out_file, 0), 0);

	cr_assert_eq(ug_scan_tree(tmpfd, rules, &s, collect, &w, &err), 0, "%s", err.msg);
	cr_assert_eq(s.n, 2, "%zu entries", s.n);
	cr_assert_str_eq(s.entries[0].path, "real");
	cr_assert_str_eq(s.entries[1].path, "real/a");
	for (size_t i = 0; i < s.n; i++) {
		cr_assert_not(s.entries[i].ino == (uint64_t)out_st.st_ino &&
			      s.entries[i].dev == (uint64_t)out_st.st_dev);
		cr_assert_not(s.entries[i].ino == (uint64_t)out_file.st_ino &&
			      s.entries[i].dev == (uint64_t)out_file.st_dev);
	}
	cr_assert(warned(&w, "skipping symlink 'real/escape' (upgrid does not follow links)"));
	cr_assert(warned(&w, "skipping symlink 'top-escape' (upgrid does not follow links)"));
	cr_assert(warned(&w, "skipping symlink 'loop' (upgrid does not follow links)"));
	cr_assert_eq(w.n, 3);
	ug_scan_release(&s);
	ug_rules_free(rules);
	warnings_free(&w);
}

Test(scan, excluded_symlink_is_silent_and_null_rules_are_defaults,
     .init = tmp_setup, .fini = tmp_teardown)
{
	struct ug_scan s = { 0 };
	struct ug_error err = { "" };
	struct warnings w = { 0 };

	mkd(tmpfd, ".upgrid", 0755);
	put(tmpfd, ".upgrid/rules", "exclude *\n", 0644);
	put(tmpfd, "keep", "k", 0644);
	put(tmpfd, "x.swp", "s", 0644);
	cr_assert_eq(symlinkat("/etc/passwd", tmpfd, "a.tmp"), 0);
	cr_assert_eq(symlinkat("/etc/passwd", tmpfd, "visible"), 0);

	/* NULL rules: the built-in defaults (the rules file is not read) */
	cr_assert_eq(ug_scan_tree(tmpfd, NULL, &s, collect, &w, &err), 0, "%s", err.msg);
	cr_assert_eq(s.n, 1);
	cr_assert_str_eq(s.entries[0].path, "keep");
	cr_assert_eq(w.n, 1, "only the non-excluded symlink is reported");
	cr_assert_str_eq(w.msg[0], "skipping symlink 'visible' (upgrid does not follow links)");

	/* a NULL warn callback is allowed; s is refilled, not appended to */
	cr_assert_eq(ug_scan_tree(tmpfd, NULL, &s, NULL, NULL, NULL), 0);
	cr_assert_eq(s.n, 1);
	ug_scan_release(&s);
	warnings_free(&w);
}

Test(scan, other_special_files_warned, .init = tmp_setup, .fini = tmp_teardown)
{
	struct ug_scan s = { 0 };
	struct ug_error err = { "" };
	struct warnings w = { 0 };
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	char name[] = "bad\nname\x1b";
	int sock;

	put(tmpfd, "ok", "", 0644);
	/* a socket, bound inside the tree */
	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s/sock", tmpdir);
	sock = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	cr_assert_geq(sock, 0);
	cr_assert_eq(bind(sock, (struct sockaddr *)&sa, sizeof(sa)), 0, "%s", strerror(errno));
	close(sock);
	/* a name no manifest could carry */
	put(tmpfd, name, "x", 0644);
	mkd(tmpfd, "d\tir", 0755);
	put(tmpfd, "d\tir/inner", "x", 0644);

	cr_assert_eq(ug_scan_tree(tmpfd, NULL, &s, collect, &w, &err), 0, "%s", err.msg);
	cr_assert_eq(s.n, 1);
	cr_assert_str_eq(s.entries[0].path, "ok");
	cr_assert_eq(s.entries[0].size, 0);
	cr_assert(warned(&w, "skipping socket 'sock' (only regular files and directories are published)"));
	cr_assert(warned(&w, "skipping file 'bad?name?' (its name holds a control character, which a manifest cannot carry)"));
	cr_assert(warned(&w, "skipping directory 'd?ir' (its name holds a control character, which a manifest cannot carry)"));
	cr_assert_eq(w.n, 3);
	ug_scan_release(&s);
	warnings_free(&w);
}

/* A chain of n nested directories "d/d/.../d" under dirfd. */
static void make_chain(int dirfd, unsigned n, const char *leaf_file)
{
	int fd = dup(dirfd);

	cr_assert_geq(fd, 0);
	for (unsigned i = 0; i < n; i++) {
		int nfd;
		cr_assert_eq(mkdirat(fd, "d", 0755), 0);
		nfd = openat(fd, "d", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
		cr_assert_geq(nfd, 0);
		close(fd);
		fd = nfd;
	}
	if (leaf_file)
		put(fd, leaf_file, "x", 0644);
	close(fd);
}

Test(scan, depth_limit, .init = tmp_setup, .fini = tmp_teardown)
{
	struct ug_scan s = { 0 };
	struct ug_error err = { "" };
	size_t fds = count_fds();
	int r;

	/* UG_DEPTH_MAX components is the deepest path allowed */
	make_chain(tmpfd, UG_DEPTH_MAX - 1, "leaf");
	r = ug_scan_tree(tmpfd, NULL, &s, NULL, NULL, &err);
	cr_assert_eq(r, 0, "%d %s", r, err.msg);
	cr_assert_eq(s.n, UG_DEPTH_MAX, "%zu entries", s.n);
	cr_assert_eq(count_fds(), fds);
	ug_scan_release(&s);

	/* one more level is refused, and nothing is left in s */
	rm_rf_at(tmpfd, "d");
	make_chain(tmpfd, UG_DEPTH_MAX, "leaf");
	r = ug_scan_tree(tmpfd, NULL, &s, NULL, NULL, &err);
	cr_assert_eq(r, -E2BIG, "%d %s", r, err.msg);
	cr_assert_not_null(strstr(err.msg, "is nested deeper than 256 directories"), "%s", err.msg);
	cr_assert(strncmp(err.msg, "'d/d/d/", 7) == 0, "names the path: %s", err.msg);
	cr_assert_null(s.entries);
	cr_assert_eq(s.n, 0);
	cr_assert_eq(count_fds(), fds, "descriptors leaked on the error path");
}

Test(scan, path_too_long, .init = tmp_setup, .fini = tmp_teardown)
{
	struct ug_scan s = { 0 };
	struct ug_error err = { "" };
	char comp[251];
	int fd = dup(tmpfd);
	int r;

	memset(comp, 'n', 250);
	comp[250] = '\0';
	/* 17 x 251 bytes > UG_PATH_MAX */
	for (int i = 0; i < 17; i++) {
		int nfd;
		cr_assert_eq(mkdirat(fd, comp, 0755), 0);
		nfd = openat(fd, comp, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
		cr_assert_geq(nfd, 0);
		close(fd);
		fd = nfd;
	}
	close(fd);
	r = ug_scan_tree(tmpfd, NULL, &s, NULL, NULL, &err);
	cr_assert_eq(r, -ENAMETOOLONG, "%d %s", r, err.msg);
	cr_assert(strncmp(err.msg, "a path under 'nnnn", 18) == 0, "%s", err.msg);
	cr_assert_not_null(strstr(err.msg, "is longer than 4096 bytes"), "%s", err.msg);
	cr_assert_eq(s.n, 0);
	cr_assert_null(s.entries);
}

/* No .init: a skipped test does not run .fini, so set up only after the
 * skip decision. */
Test(scan, unreadable_is_an_error, .fini = tmp_teardown)
{
	struct ug_scan s = { 0 };
	struct ug_error err = { "" };
	int r;

	if (geteuid() == 0)
		cr_skip_test("root can read anything");
	tmp_setup();
	mkd(tmpfd, "a", 0755);
	put(tmpfd, "a/locked", "x", 0000);
	r = ug_scan_tree(tmpfd, NULL, &s, NULL, NULL, &err);
	cr_assert_eq(r, -EACCES, "%d %s", r, err.msg);
	cr_assert_str_eq(err.msg, "cannot read 'a/locked': Permission denied");
	cr_assert_eq(s.n, 0);

	cr_assert_eq(unlinkat(tmpfd, "a/locked", 0), 0);
	mkd(tmpfd, "a/closed", 0000);
	r = ug_scan_tree(tmpfd, NULL, &s, NULL, NULL, &err);
	cr_assert_eq(r, -EACCES, "%d %s", r, err.msg);
	cr_assert_str_eq(err.msg, "cannot open directory 'a/closed': Permission denied");
}

Test(scan, empty_tree, .init = tmp_setup, .fini = tmp_teardown)
{
	struct ug_scan s = { 0 };

	mkd(tmpfd, ".upgrid", 0755);
	cr_assert_eq(ug_scan_tree(tmpfd, NULL, &s, NULL, NULL, NULL), 0);
	cr_assert_eq(s.n, 0, "the root and .upgrid are never listed");
	ug_scan_release(&s);
	cr_assert_eq(ug_scan_tree(-1, NULL, &s, NULL, NULL, NULL), -EBADF);
}

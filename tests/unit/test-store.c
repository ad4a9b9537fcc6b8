/* test-store.c - unit tests for src/store.c: repo creation and opening,
 * config parsing, content-addressed objects and deltas (round trips,
 * atomicity, corruption detection), manifests, versions, channels, refs
 * and the writer lock. */
#include "config.h"

#include <criterion/criterion.h>

#include <dirent.h>
#include <fcntl.h>
#include <ftw.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zstd.h>

#include "store.h"

/* Each Criterion test runs in its own forked process, so this per-test
 * state is private to the test using it. */
#include "tmpdir.h"

static char repo[128];
static struct ug_store *S;

static void setup(void)
{
	struct ug_error e = { "" };

	ug_test_tmp_make("store");
	snprintf(repo, sizeof(repo), "%s/repo", tmpdir);
	cr_assert_eq(ug_store_create(repo, &e), 0, "create: %s", e.msg);
	cr_assert_eq(ug_store_open(repo, &S, &e), 0, "open: %s", e.msg);
	/* a level-19 context costs ~0.1 s to set up; the format does not
	 * depend on the level (object_put_buf_round_trip uses the default) */
	S->cfg.level = 1;
	S->cfg.fallback_level = 1;
}

static void teardown(void)
{
	ug_store_free(S);
	S = NULL;
	ug_test_tmp_remove();
}

TestSuite(store, .init = setup, .fini = teardown);

/* ---------------------------------------------------------------- helpers */

static void path_in(char *out, size_t n, const char *base, const char *rel)
{
	int k = snprintf(out, n, "%s/%s", base, rel);
	cr_assert(k > 0 && (size_t)k < n);
}

static void write_file(const char *path, const void *p, size_t n)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);

	cr_assert_geq(fd, 0, "create '%s': %s", path, strerror(errno));
	cr_assert_eq(ug_write_all(fd, p, n), 0);
	close(fd);
}

static void write_repo_file(const char *rel, const void *p, size_t n)
{
	char path[512];

	path_in(path, sizeof(path), repo, rel);
	write_file(path, p, n);
}

static void read_path(const char *path, uint8_t **ret, size_t *ret_n)
{
	char *d;
	size_t n;

	cr_assert_eq(ug_file_read(AT_FDCWD, path, SIZE_MAX, &d, &n), 0, "read '%s'", path);
	*ret = (uint8_t *)d;
	*ret_n = n;
}

static bool is_dir(const char *path)
{
	struct stat st;
	return lstat(path, &st) == 0 && S_ISDIR(st.st_mode);
}

static bool exists(const char *path)
{
	struct stat st;
	return lstat(path, &st) == 0;
}

/* Entries in a directory of the repo, "." and ".." excluded. */
static size_t count_entries(const char *rel)
{
	char path[512];
	DIR *d;
	struct dirent *de;
	size_t n = 0;

	path_in(path, sizeof(path), repo, rel);
	d = opendir(path);
	cr_assert_not_null(d, "opendir '%s': %s", path, strerror(errno));
	while ((de = readdir(d)) != NULL)
		if (strcmp(de->d_name, ".") && strcmp(de->d_name, ".."))
			n++;
	closedir(d);
	return n;
}

static void assert_tmp_empty(void)
{
	cr_assert_eq(count_entries("tmp"), 0, "tmp/ is not empty");
}

static void obj_path(const char *kind, const struct ug_hash *h, char *out, size_t n)
{
	char hex[UG_HASH_HEX_LEN + 1];

	ug_hash_hex(h, hex);
	snprintf(out, n, "%s/%s/%.2s/%s", repo, kind, hex, hex + 2);
}

/* Deterministic test bytes: compressible but not trivially so. */
static uint8_t *make_data(size_t n, uint32_t seed)
{
	uint8_t *p = malloc(n ? n : 1);
	uint32_t x = seed * 2654435761u + 1;

	cr_assert_not_null(p);
	for (size_t i = 0; i < n; i++) {
		x = x * 1103515245u + 12345u;
		p[i] = (i % 64 < 40) ? (uint8_t)('a' + (i / 64) % 26) : (uint8_t)(x >> 24);
	}
	return p;
}

/* Read an fd from its current offset to EOF. */
static uint8_t *slurp_fd(int fd, size_t *ret_n)
{
	size_t cap = 1 << 16, n = 0;
	uint8_t *p = malloc(cap);

	cr_assert_not_null(p);
	for (;;) {
		ssize_t k;
		if (n == cap) {
			cap *= 2;
			p = realloc(p, cap);
			cr_assert_not_null(p);
		}
		k = read(fd, p + n, cap - n);
		cr_assert_geq(k, 0, "read: %s", strerror(errno));
		if (k == 0)
			break;
		n += (size_t)k;
	}
	*ret_n = n;
	return p;
}

static void assert_extract_eq(const struct ug_hash *h, const void *want, size_t want_n)
{
	char path[512];
	uint8_t *got;
	size_t got_n;
	int fd;

	path_in(path, sizeof(path), tmpdir, "extract.out");
	fd = open(path, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	cr_assert_geq(fd, 0);
	cr_assert_eq(ug_store_object_extract(S, h, fd), 0);
	cr_assert_eq(lseek(fd, 0, SEEK_SET), 0);
	got = slurp_fd(fd, &got_n);
	close(fd);
	unlink(path);
	cr_assert_eq(got_n, want_n, "extracted %zu bytes, want %zu", got_n, want_n);
	cr_assert(want_n == 0 || memcmp(got, want, want_n) == 0, "extracted content differs");
	free(got);
}

/* Make a stored (0444) file writable and overwrite one byte with v. */
static void poke(const char *path, off_t off, uint8_t v)
{
	int fd;

	cr_assert_eq(chmod(path, 0644), 0);
	fd = open(path, O_WRONLY | O_CLOEXEC);
	cr_assert_geq(fd, 0);
	cr_assert_eq(pwrite(fd, &v, 1, off), 1);
	close(fd);
}

static void flip(const char *path, off_t off)
{
	uint8_t b;
	int fd = open(path, O_RDONLY | O_CLOEXEC);

	cr_assert_geq(fd, 0);
	cr_assert_eq(pread(fd, &b, 1, off), 1);
	close(fd);
	poke(path, off, b ^ 0x5a);
}

static off_t file_size(const char *path)
{
	struct stat st;

	cr_assert_eq(stat(path, &st), 0, "stat '%s'", path);
	return st.st_size;
}

static void assert_msg(const struct ug_error *e, const char *needle)
{
	cr_assert_not_null(strstr(e->msg, needle), "message '%s' lacks '%s'", e->msg, needle);
}

/* Replace the repo's config and try to open it. */
static int open_cfg(const char *text, size_t len, struct ug_store **ret, struct ug_error *e)
{
	write_repo_file("config", text, len);
	e->msg[0] = '\0';
	return ug_store_open(repo, ret, e);
}

/* Open a config that must be rejected with rc; its message must hold
 * every non-NULL needle. */
static void cfg_fails(const char *text, int rc, const char *needle1, const char *needle2)
{
	struct ug_store *s = (struct ug_store *)(uintptr_t)0x1;
	struct ug_error e = { "" };
	int r = open_cfg(text, strlen(text), &s, &e);

	cr_assert_eq(r, rc, "config:\n%s\ngave %d (%s), want %d", text, r, e.msg, rc);
	cr_assert_eq(s, (struct ug_store *)(uintptr_t)0x1, "ret set on failure");
	if (needle1)
		assert_msg(&e, needle1);
	if (needle2)
		assert_msg(&e, needle2);
}

static struct ug_store *cfg_ok(const char *text)
{
	struct ug_store *s = NULL;
	struct ug_error e = { "" };

	cr_assert_eq(open_cfg(text, strlen(text), &s, &e), 0, "config:\n%s\nrejected: %s", text, e.msg);
	return s;
}

/* ---------------------------------------------------------------- create */

Test(store, create_layout)
{
	static const char *const dirs[] = { "objects", "deltas", "manifests", "refs", "tmp" };
	char path[512];
	struct stat st;
	struct ug_store_config def;
	struct ug_store *s = NULL;
	struct ug_error e = { "" };

	for (size_t i = 0; i < sizeof(dirs) / sizeof(dirs[0]); i++) {
		path_in(path, sizeof(path), repo, dirs[i]);
		cr_assert(is_dir(path), "'%s' missing", path);
	}
	path_in(path, sizeof(path), repo, "config");
	cr_assert_eq(lstat(path, &st), 0);
	cr_assert(S_ISREG(st.st_mode));
	cr_assert_eq(count_entries("tmp"), 0);
	cr_assert_eq(count_entries("objects"), 0);
	/* the written config holds the defaults */
	cr_assert_eq(ug_store_open(repo, &s, &e), 0, "%s", e.msg);
	ug_store_config_default(&def);
	cr_assert_eq(s->cfg.keep_deltas, def.keep_deltas);
	cr_assert_eq(s->cfg.level, def.level);
	cr_assert_eq(s->cfg.window, def.window);
	cr_assert_eq(s->cfg.threads, def.threads);
	cr_assert_eq(s->cfg.expire_days, def.expire_days);
	cr_assert_str_eq(s->path, repo);
	cr_assert_eq(s->lockfd, -1);
	ug_store_free(s);
}

Test(store, create_refuses_nonempty_dir)
{
	char dir[256], path[512];
	struct ug_error e = { "" };

	path_in(dir, sizeof(dir), tmpdir, "full");
	cr_assert_eq(mkdir(dir, 0755), 0);
	path_in(path, sizeof(path), dir, "stray");
	write_file(path, "x", 1);
	cr_assert_eq(ug_store_create(dir, &e), -EEXIST);
	assert_msg(&e, "not empty");
	assert_msg(&e, dir);
	path_in(path, sizeof(path), dir, "objects");
	cr_assert(!exists(path), "create touched a non-empty directory");

	/* an existing repo is not empty either */
	e.msg[0] = '\0';
	cr_assert_eq(ug_store_create(repo, &e), -EEXIST);
	assert_msg(&e, "not empty");
}

Test(store, create_in_existing_empty_dir)
{
	char dir[256], path[512];
	struct ug_error e = { "" };
	struct ug_store *s = NULL;

	path_in(dir, sizeof(dir), tmpdir, "empty");
	cr_assert_eq(mkdir(dir, 0700), 0);
	cr_assert_eq(ug_store_create(dir, &e), 0, "%s", e.msg);
	path_in(path, sizeof(path), dir, "objects");
	cr_assert(is_dir(path));
	cr_assert_eq(ug_store_open(dir, &s, &e), 0, "%s", e.msg);
	ug_store_free(s);
	ug_store_free(NULL);
}

Test(store, create_on_a_file_fails)
{
	char path[256];
	struct ug_error e = { "" };

	path_in(path, sizeof(path), tmpdir, "plain");
	write_file(path, "x", 1);
	cr_assert_eq(ug_store_create(path, &e), -ENOTDIR);
	assert_msg(&e, path);
}

/* ---------------------------------------------------------------- open */

Test(store, open_missing_dir)
{
	char path[256];
	struct ug_error e = { "" };
	struct ug_store *s = (struct ug_store *)(uintptr_t)0x1;

	path_in(path, sizeof(path), tmpdir, "nope");
	cr_assert_eq(ug_store_open(path, &s, &e), -ENOENT);
	cr_assert_eq(s, (struct ug_store *)(uintptr_t)0x1);
	assert_msg(&e, "upgrid init");
	assert_msg(&e, path);
}

Test(store, open_dir_without_config)
{
	char path[256];
	struct ug_error e = { "" };
	struct ug_store *s = (struct ug_store *)(uintptr_t)0x1;

	path_in(path, sizeof(path), tmpdir, "bare");
	cr_assert_eq(mkdir(path, 0755), 0);
	cr_assert_lt(ug_store_open(path, &s, &e), 0);
	cr_assert_eq(s, (struct ug_store *)(uintptr_t)0x1);
	assert_msg(&e, "not an upgrid repo");
	assert_msg(&e, "upgrid init");
}

Test(store, open_config_not_a_file)
{
	char path[512];
	struct ug_error e = { "" };
	struct ug_store *s = NULL;

	path_in(path, sizeof(path), repo, "config");
	cr_assert_eq(unlink(path), 0);
	cr_assert_eq(mkdir(path, 0755), 0);
	cr_assert_lt(ug_store_open(repo, &s, &e), 0);
	cr_assert_null(s);
	assert_msg(&e, "config");
	/* a config that is a symlink is not followed */
	cr_assert_eq(rmdir(path), 0);
	cr_assert_eq(symlink("/etc/hostname", path), 0);
	cr_assert_lt(ug_store_open(repo, &s, &e), 0);
	cr_assert_null(s);
}

/* ---------------------------------------------------------------- config */

Test(store, config_defaults)
{
	struct ug_store *s = cfg_ok("[repo]\nformat = 1\n");

	cr_assert_eq(s->cfg.keep_deltas, 3);
	cr_assert_eq(s->cfg.level, 19);
	cr_assert_eq(s->cfg.window, 256ull << 20);
	cr_assert_eq(s->cfg.threads, 0);
	cr_assert_eq(s->cfg.expire_days, 365);
	ug_store_free(s);
}

Test(store, config_each_key)
{
	struct ug_store *s = cfg_ok("; comment\n"
				    "# another\n"
				    "[repo]\n"
				    "format = 1\n"
				    "keep-deltas = 5\n"
				    "level = 3\n"
				    "fallback-level = 7\n"
				    "window = 64M\n"
				    "threads = 4\n"
				    "expire-days = 30\n");

	cr_assert_eq(s->cfg.keep_deltas, 5);
	cr_assert_eq(s->cfg.level, 3);
	cr_assert_eq(s->cfg.fallback_level, 7);
	cr_assert_eq(s->cfg.window, 64ull << 20);
	cr_assert_eq(s->cfg.threads, 4);
	cr_assert_eq(s->cfg.expire_days, 30);
	ug_store_free(s);
}

Test(store, config_window_suffixes_and_bounds)
{
	static const struct { const char *v; uint64_t want; } ok[] = {
		{ "1048576", 1u << 20 },
		{ "1024K", 1u << 20 },
		{ "2048k", 2u << 20 },
		{ "1M", 1u << 20 },
		{ "1G", 1ull << 30 },
		{ "2g", 2ull << 30 },	/* UG_DELTA_WINDOW_MAX */
	};
	char text[128];

	for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++) {
		struct ug_store *s;
		snprintf(text, sizeof(text), "[repo]\nformat = 1\nwindow = %s\n", ok[i].v);
		s = cfg_ok(text);
		cr_assert_eq(s->cfg.window, ok[i].want, "window = %s", ok[i].v);
		ug_store_free(s);
	}
	cfg_fails("[repo]\nformat = 1\nwindow = 3G\n", -EINVAL, "line 3: ", "out of range");
	cfg_fails("[repo]\nformat = 1\nwindow = 1023K\n", -EINVAL, "line 3: ", "out of range");
	cfg_fails("[repo]\nformat = 1\nwindow = 12X\n", -EINVAL, "line 3: ", "'window'");
	cfg_fails("[repo]\nformat = 1\nwindow = M\n", -EINVAL, "line 3: ", "'window'");
}

Test(store, config_out_of_range)
{
	static const char *const bad[] = {
		"keep-deltas = 17",
		"level = 0",
		"level = 23",
		"fallback-level = 0",
		"fallback-level = 23",
		"threads = 65",
		"expire-days = 0",
		"expire-days = 36501",
		"keep-deltas = 99999999999999999999999",
	};
	char text[256];

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		snprintf(text, sizeof(text), "[repo]\nformat = 1\n%s\n", bad[i]);
		cfg_fails(text, -EINVAL, "line 3: ", "out of range");
	}
	/* the bounds themselves are accepted */
	{
		struct ug_store *s = cfg_ok("[repo]\nformat = 1\nkeep-deltas = 16\nlevel = 22\n"
					    "threads = 64\nexpire-days = 36500\n");
		cr_assert_eq(s->cfg.keep_deltas, 16);
		cr_assert_eq(s->cfg.level, 22);
		cr_assert_eq(s->cfg.threads, 64);
		cr_assert_eq(s->cfg.expire_days, 36500);
		ug_store_free(s);
	}
}

Test(store, config_bad_values)
{
	static const char *const bad[] = {
		"level = abc", "level = -1", "level = 3.5", "threads = ", "keep-deltas = 0x3",
		"expire-days = 1e3", "threads = +4",
	};
	char text[256];

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		snprintf(text, sizeof(text), "[repo]\nformat = 1\n%s\n", bad[i]);
		cfg_fails(text, -EINVAL, "line 3: ", "bad value");
	}
}

Test(store, config_unknown_key_and_section)
{
	cfg_fails("[repo]\nformat = 1\ncolour = blue\n", -EINVAL, "line 3: ", "unknown setting 'colour'");
	cfg_fails("[repo]\nformat = 1\n[other]\nlevel = 3\n", -EINVAL, "line 4: ", "[other]");
	/* a setting before any section is not silently accepted */
	cfg_fails("level = 3\n[repo]\nformat = 1\n", -EINVAL, "line 1: ", "[repo]");
}

Test(store, config_format)
{
	cfg_fails("[repo]\nformat = 2\n", -EPROTONOSUPPORT, "line 2: ", "format 2");
	cfg_fails("[repo]\nlevel = 3\nformat = 0\n", -EPROTONOSUPPORT, "line 3: ", "not supported");
	cfg_fails("[repo]\nformat = one\n", -EINVAL, "line 2: ", "'format'");
	cfg_fails("[repo]\nlevel = 3\n", -EINVAL, "no 'format'", NULL);
	cfg_fails("", -EINVAL, "no 'format'", NULL);
	cfg_fails("[repo]\nformat = 99999999999\n", -EINVAL, "'format'", NULL);
}

Test(store, config_nul_byte)
{
	static const char text[] = "[repo]\nformat = 1\0\nlevel = 3\n";
	struct ug_store *s = NULL;
	struct ug_error e = { "" };

	cr_assert_eq(open_cfg(text, sizeof(text) - 1, &s, &e), -EBADMSG);
	cr_assert_null(s);
	assert_msg(&e, "NUL");
}

Test(store, config_syntax_error_names_its_line)
{
	cfg_fails("[repo]\nformat = 1\nthis is not ini\n", -EINVAL, "line 3: ", "syntax");
	cfg_fails("[repo\nformat = 1\n", -EINVAL, "line 1: ", NULL);
}

/* inih keeps parsing after an error and returns the first bad line; the
 * message must describe that same line. */
Test(store, config_first_error_is_reported)
{
	cfg_fails("[repo]\nformat = 1\ngarbage\nbogus = 1\n", -EINVAL, "line 3: ", "syntax");
	cfg_fails("[repo]\nformat = 1\nbogus = 1\ngarbage\n", -EINVAL, "line 3: ", "unknown setting 'bogus'");
	cfg_fails("[repo]\nformat = 1\n\n\n\nlevel = 99\n", -EINVAL, "line 6: ", "'level'");
}

/* inih reads a line in pieces of its buffer size and parses each piece as
 * a line of its own: a long comment must not smuggle in a setting. */
Test(store, config_overlong_line_rejected)
{
	char text[1024], *p = text;

	p += snprintf(p, 64, "[repo]\nformat = 1\n#");
	memset(p, 'x', 198);
	p += 198;
	snprintf(p, 64, "keep-deltas = 9\n");
	cfg_fails(text, -EINVAL, "line 3: ", "long");

	/* a long line at the end without '\n' too */
	p = text;
	p += snprintf(p, 64, "[repo]\nformat = 1\n#");
	memset(p, 'y', 600);
	p[600] = '\0';
	cfg_fails(text, -EINVAL, "line 3: ", "long");
}

Test(store, config_crlf_and_whitespace)
{
	struct ug_store *s = cfg_ok("[repo]\r\n  format=1  \r\nlevel   =   7\r\n");

	cr_assert_eq(s->cfg.level, 7);
	ug_store_free(s);
}

/* ---------------------------------------------------------------- objects */

Test(store, object_put_buf_round_trip)
{
	static const char text[] = "hello, upgrid\n";
	struct ug_hash h, want;
	struct ug_error e = { "" };
	uint64_t stored = 0, size = 99;
	struct ug_store_config def;
	char path[512];

	ug_store_config_default(&def);
	S->cfg.level = def.level;
	ug_hash_buf(text, sizeof(text) - 1, &want, NULL);
	cr_assert(!ug_store_object_exists(S, &want));
	cr_assert_eq(ug_store_object_put_buf(S, text, sizeof(text) - 1, &h), 0);
	cr_assert(ug_hash_eq(&h, &want), "object name is not BLAKE2b of its content");
	cr_assert(ug_store_object_exists(S, &h));
	assert_tmp_empty();

	obj_path("objects", &h, path, sizeof(path));
	cr_assert(exists(path), "'%s' not created", path);
	cr_assert_eq(ug_store_object_stat(S, &h, &stored, &size), 0);
	cr_assert_eq(size, sizeof(text) - 1);
	cr_assert_eq(stored, (uint64_t)file_size(path));
	cr_assert_gt(stored, UG_OBJ_HEADER_LEN);
	cr_assert_eq(ug_store_object_stat(S, &h, NULL, NULL), 0);
	assert_extract_eq(&h, text, sizeof(text) - 1);
	cr_assert_eq(ug_store_object_verify(S, &h, &e), 0, "%s", e.msg);

	/* the stored file starts with the documented header */
	{
		uint8_t *d;
		size_t n;
		struct ug_xxh x;
		read_path(path, &d, &n);
		ug_hash_buf(text, sizeof(text) - 1, NULL, &x);
		cr_assert_eq(memcmp(d, UG_OBJ_MAGIC, 4), 0);
		cr_assert_eq(d[4], 1);
		cr_assert_eq(d[15], sizeof(text) - 1);
		cr_assert_eq(memcmp(d + 16, x.b, UG_XXH_LEN), 0);
		cr_assert_gt(n, UG_OBJ_HEADER_LEN + 4);
		cr_assert_eq(memcmp(d + UG_OBJ_HEADER_LEN, "\x28\xb5\x2f\xfd", 4), 0,
			     "no zstd frame after the header");
		free(d);
	}
}

Test(store, object_put_fd_large_file)
{
	const size_t n = (3u << 20) + 12345;	/* a few MiB, not a chunk multiple */
	uint8_t *data = make_data(n, 7);
	struct ug_hash h = { { 0 } }, want;
	struct ug_xxh x = { { 0 } }, want_x;
	uint64_t size = 0, stored = 0;
	char path[512];
	int fd;

	ug_hash_buf(data, n, &want, &want_x);
	path_in(path, sizeof(path), tmpdir, "big.bin");
	write_file(path, data, n);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	cr_assert_geq(fd, 0);
	/* put reads from offset 0 whatever the fd's position */
	cr_assert_eq(lseek(fd, 0, SEEK_END), (off_t)n);
	cr_assert_eq(ug_store_object_put_fd(S, fd, &h, &x, &size), 0);
	close(fd);
	cr_assert(ug_hash_eq(&h, &want));
	cr_assert_eq(memcmp(x.b, want_x.b, UG_XXH_LEN), 0, "XXH3 differs");
	cr_assert_eq(size, n);
	assert_tmp_empty();
	cr_assert_eq(ug_store_object_stat(S, &h, &stored, &size), 0);
	cr_assert_eq(size, n);
	cr_assert_lt(stored, n, "a compressible object was not compressed");
	assert_extract_eq(&h, data, n);
	cr_assert_eq(ug_store_object_verify(S, &h, NULL), 0);
	free(data);
}

Test(store, object_put_with_workers)
{
	/* above 8 MiB with workers: zstd's multi-threaded frames are still
	 * one frame the reader decodes and verifies the same way */
	const size_t n = (9u << 20) + 777;
	uint8_t *data = make_data(n, 11);
	struct ug_hash h = { { 0 } }, want;
	char path[512];
	int fd;

	ug_hash_buf(data, n, &want, NULL);
	path_in(path, sizeof(path), tmpdir, "big.bin");
	write_file(path, data, n);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	cr_assert_geq(fd, 0);
	S->object_workers = 2;
	cr_assert_eq(ug_store_object_put_fd(S, fd, &h, NULL, NULL), 0);
	close(fd);
	cr_assert(ug_hash_eq(&h, &want));
	assert_extract_eq(&h, data, n);
	cr_assert_eq(ug_store_object_verify(S, &h, NULL), 0);
	free(data);
}

Test(store, object_put_fd_and_buf_agree)
{
	uint8_t *data = make_data(300000, 3);
	struct ug_hash h1, h2;
	char path[512];
	int fd;

	path_in(path, sizeof(path), tmpdir, "f");
	write_file(path, data, 300000);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	cr_assert_geq(fd, 0);
	cr_assert_eq(ug_store_object_put_fd(S, fd, &h1, NULL, NULL), 0);
	close(fd);
	cr_assert_eq(ug_store_object_put_buf(S, data, 300000, &h2), 0);
	cr_assert(ug_hash_eq(&h1, &h2));
	assert_extract_eq(&h1, data, 300000);
	free(data);
}

Test(store, object_empty)
{
	struct ug_hash h, want;
	uint64_t size = 1, stored = 0;
	char empty[1] = { 0 };

	ug_hash_buf("", 0, &want, NULL);
	cr_assert_eq(ug_store_object_put_buf(S, empty, 0, &h), 0);
	cr_assert(ug_hash_eq(&h, &want));
	cr_assert_eq(ug_store_object_stat(S, &h, &stored, &size), 0);
	cr_assert_eq(size, 0);
	cr_assert_gt(stored, UG_OBJ_HEADER_LEN);
	assert_extract_eq(&h, "", 0);
	cr_assert_eq(ug_store_object_verify(S, &h, NULL), 0);

	/* an empty file through put_fd gives the same object */
	{
		char path[512];
		struct ug_hash h2;
		int fd;
		path_in(path, sizeof(path), tmpdir, "empty");
		write_file(path, "", 0);
		fd = open(path, O_RDONLY | O_CLOEXEC);
		cr_assert_eq(ug_store_object_put_fd(S, fd, &h2, NULL, &size), 0);
		close(fd);
		cr_assert(ug_hash_eq(&h, &h2));
		cr_assert_eq(size, 0);
	}
	assert_tmp_empty();
}

Test(store, object_put_twice_keeps_one_file)
{
	static const char text[] = "same bytes twice";
	struct ug_hash h1, h2;
	char path[512], hex[UG_HASH_HEX_LEN + 1], sub[32];
	struct stat st1, st2;

	cr_assert_eq(ug_store_object_put_buf(S, text, sizeof(text), &h1), 0);
	obj_path("objects", &h1, path, sizeof(path));
	cr_assert_eq(stat(path, &st1), 0);
	cr_assert_eq(ug_store_object_put_buf(S, text, sizeof(text), &h2), 0);
	cr_assert(ug_hash_eq(&h1, &h2));
	cr_assert_eq(stat(path, &st2), 0);
	cr_assert_eq(st1.st_ino, st2.st_ino, "the existing object was replaced");
	ug_hash_hex(&h1, hex);
	snprintf(sub, sizeof(sub), "objects/%.2s", hex);
	cr_assert_eq(count_entries(sub), 1);
	cr_assert_eq(count_entries("objects"), 1);
	assert_tmp_empty();
	/* stored objects are read-only */
	cr_assert_eq(st1.st_mode & 0777, 0444);
}

Test(store, object_put_unreadable_fd_cleans_up)
{
	int p[2];
	struct ug_hash h = { { 0 } };

	cr_assert_eq(pipe2(p, O_CLOEXEC), 0);
	cr_assert_eq(write(p[1], "abc", 3), 3);
	cr_assert_lt(ug_store_object_put_fd(S, p[0], &h, NULL, NULL), 0);
	cr_assert(ug_hash_is_zero(&h), "ret_hash set on failure");
	close(p[0]);
	close(p[1]);
	assert_tmp_empty();
	cr_assert_eq(count_entries("objects"), 0);
}

Test(store, object_tmp)
{
	uint8_t *data = make_data(200000, 11), *got;
	struct ug_hash h;
	size_t n;
	int fd = -1, fl;

	cr_assert_eq(ug_store_object_put_buf(S, data, 200000, &h), 0);
	cr_assert_eq(ug_store_object_tmp(S, &h, &fd), 0);
	cr_assert_geq(fd, 0);
	cr_assert_eq(lseek(fd, 0, SEEK_CUR), 0, "not positioned at 0");
	fl = fcntl(fd, F_GETFD);
	cr_assert(fl >= 0 && (fl & FD_CLOEXEC), "fd is not close-on-exec");
	got = slurp_fd(fd, &n);
	close(fd);
	cr_assert_eq(n, 200000);
	cr_assert_eq(memcmp(got, data, n), 0);
	/* anonymous: nothing is left behind in tmp/ */
	assert_tmp_empty();
	free(got);
	free(data);
}

Test(store, object_missing)
{
	struct ug_hash h;
	struct ug_error e = { "" };
	uint64_t stored = 7, size = 7;
	int fd = -7;
	char path[512];

	ug_hash_buf("never stored", 12, &h, NULL);
	cr_assert(!ug_store_object_exists(S, &h));
	cr_assert_eq(ug_store_object_stat(S, &h, &stored, &size), -ENOENT);
	cr_assert_eq(stored, 7);
	cr_assert_eq(size, 7);
	cr_assert_eq(ug_store_object_verify(S, &h, &e), -ENOENT);
	assert_msg(&e, "missing");
	cr_assert_eq(ug_store_object_tmp(S, &h, &fd), -ENOENT);
	cr_assert_eq(fd, -7);
	path_in(path, sizeof(path), tmpdir, "out");
	fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
	cr_assert_eq(ug_store_object_extract(S, &h, fd), -ENOENT);
	cr_assert_eq(lseek(fd, 0, SEEK_END), 0, "bytes written for a missing object");
	close(fd);
}

/* Store content and return its hash and stored path. */
static void put_text(const void *p, size_t n, struct ug_hash *h, char *path, size_t path_n)
{
	cr_assert_eq(ug_store_object_put_buf(S, p, n, h), 0);
	obj_path("objects", h, path, path_n);
}

static void assert_corrupt(const struct ug_hash *h, const char *needle)
{
	struct ug_error e = { "" };
	char path[512];
	int fd, r, t = -1;

	r = ug_store_object_verify(S, h, &e);
	cr_assert_eq(r, -EBADMSG, "verify gave %d (%s)", r, e.msg);
	cr_assert_neq(e.msg[0], '\0', "no message");
	if (needle)
		assert_msg(&e, needle);
	path_in(path, sizeof(path), tmpdir, "corrupt.out");
	fd = open(path, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	cr_assert_geq(fd, 0);
	cr_assert_eq(ug_store_object_extract(S, h, fd), -EBADMSG);
	close(fd);
	cr_assert_eq(ug_store_object_tmp(S, h, &t), -EBADMSG);
	cr_assert_eq(t, -1);
}

Test(store, object_corrupt_frame_byte)
{
	uint8_t *data = make_data(100000, 5), *orig;
	struct ug_hash h;
	char path[512];
	size_t n;
	off_t offs[5];

	put_text(data, 100000, &h, path, sizeof(path));
	read_path(path, &orig, &n);
	cr_assert_eq(chmod(path, 0644), 0);
	/* Not the window descriptor: a smaller window may still decode the
	 * same content, which is harmless and undetectable. */
	offs[0] = UG_OBJ_HEADER_LEN;		/* zstd magic */
	offs[1] = UG_OBJ_HEADER_LEN + 4;	/* frame header descriptor */
	offs[2] = (off_t)(UG_OBJ_HEADER_LEN + (n - UG_OBJ_HEADER_LEN) / 2);
	offs[3] = (off_t)n - 6;
	offs[4] = (off_t)n - 1;			/* zstd checksum */
	for (size_t i = 0; i < sizeof(offs) / sizeof(offs[0]); i++) {
		write_file(path, orig, n);
		flip(path, offs[i]);
		assert_corrupt(&h, NULL);
	}
	write_file(path, orig, n);
	cr_assert_eq(ug_store_object_verify(S, &h, NULL), 0);
	free(orig);
	free(data);
}

Test(store, object_corrupt_header)
{
	static const char text[] = "header corruption test content";
	struct ug_hash h;
	char path[512];
	uint8_t *orig;
	size_t n;

	put_text(text, sizeof(text), &h, path, sizeof(path));
	read_path(path, &orig, &n);
	cr_assert_eq(chmod(path, 0644), 0);

	flip(path, 16);		/* first byte of the XXH3 */
	assert_corrupt(&h, "XXH3");
	write_file(path, orig, n);
	flip(path, 31);		/* last byte of the XXH3 */
	assert_corrupt(&h, "XXH3");

	write_file(path, orig, n);
	flip(path, 0);		/* magic */
	assert_corrupt(&h, "header");
	cr_assert_eq(ug_store_object_stat(S, &h, NULL, NULL), -EBADMSG);

	write_file(path, orig, n);
	poke(path, 4, 2);	/* format */
	assert_corrupt(&h, "header");

	write_file(path, orig, n);
	poke(path, 15, (uint8_t)(sizeof(text) + 1));	/* size */
	assert_corrupt(&h, NULL);

	write_file(path, orig, n);
	poke(path, 15, (uint8_t)(sizeof(text) - 1));
	assert_corrupt(&h, NULL);

	write_file(path, orig, n);
	poke(path, 9, 0xff);	/* size far above UG_FILE_SIZE_MAX */
	assert_corrupt(&h, "header");
	cr_assert_eq(ug_store_object_stat(S, &h, NULL, NULL), -EBADMSG);
	free(orig);
}

Test(store, object_truncated)
{
	uint8_t *data = make_data(50000, 9), *orig;
	struct ug_hash h;
	char path[512];
	size_t n;

	put_text(data, 50000, &h, path, sizeof(path));
	read_path(path, &orig, &n);
	cr_assert_eq(chmod(path, 0644), 0);

	cr_assert_eq(truncate(path, (off_t)n - 5), 0);
	assert_corrupt(&h, "truncated");
	cr_assert_eq(truncate(path, (off_t)(n / 2)), 0);
	assert_corrupt(&h, "truncated");
	cr_assert_eq(truncate(path, UG_OBJ_HEADER_LEN), 0);
	assert_corrupt(&h, "truncated");
	/* inside the header, and an empty file */
	cr_assert_eq(truncate(path, 10), 0);
	assert_corrupt(&h, "header");
	cr_assert_eq(ug_store_object_stat(S, &h, NULL, NULL), -EBADMSG);
	cr_assert_eq(truncate(path, 0), 0);
	assert_corrupt(&h, "header");
	free(orig);
	free(data);
}

Test(store, object_other_content)
{
	/* same length, so the header's size matches and only BLAKE2b differs */
	static const char a[] = "content of object A....";
	static const char b[] = "content of object B!!!!";
	struct ug_hash ha, hb;
	char pa[512], pb[512];
	uint8_t *d;
	size_t n;

	put_text(a, sizeof(a), &ha, pa, sizeof(pa));
	put_text(b, sizeof(b), &hb, pb, sizeof(pb));
	read_path(pb, &d, &n);
	cr_assert_eq(chmod(pa, 0644), 0);
	write_file(pa, d, n);
	assert_corrupt(&ha, "does not match");
	free(d);

	/* A's header in front of a valid frame of B's bytes */
	{
		uint8_t *orig, file[UG_OBJ_HEADER_LEN + 256];
		size_t on, fl = ZSTD_compress(file + UG_OBJ_HEADER_LEN, 256, b, sizeof(b), 1);
		cr_assert(!ZSTD_isError(fl));
		put_text(a, sizeof(a), &ha, pa, sizeof(pa));	/* kept: still B's bytes */
		assert_corrupt(&ha, "does not match");
		cr_assert_eq(unlink(pa), 0);
		put_text(a, sizeof(a), &ha, pa, sizeof(pa));
		read_path(pa, &orig, &on);
		cr_assert_eq(chmod(pa, 0644), 0);
		memcpy(file, orig, UG_OBJ_HEADER_LEN);
		write_file(pa, file, UG_OBJ_HEADER_LEN + fl);
		assert_corrupt(&ha, "does not match");
		free(orig);
	}
}

Test(store, object_trailing_data)
{
	static const char text[] = "trailing data test";
	struct ug_hash h;
	char path[512];
	uint8_t *d, extra[64];
	size_t n, el;
	int fd;

	put_text(text, sizeof(text), &h, path, sizeof(path));
	read_path(path, &d, &n);
	cr_assert_eq(chmod(path, 0644), 0);
	/* a second valid frame after the first */
	el = ZSTD_compress(extra, sizeof(extra), "x", 1, 1);
	cr_assert(!ZSTD_isError(el));
	fd = open(path, O_WRONLY | O_APPEND | O_CLOEXEC);
	cr_assert_eq(ug_write_all(fd, extra, el), 0);
	close(fd);
	assert_corrupt(&h, NULL);
	/* plain junk after the frame */
	write_file(path, d, n);
	fd = open(path, O_WRONLY | O_APPEND | O_CLOEXEC);
	cr_assert_eq(ug_write_all(fd, "junkjunk", 8), 0);
	close(fd);
	assert_corrupt(&h, NULL);
	free(d);
}

/* A frame that asks for a 1 GiB window must be refused before the decoder
 * allocates it. */
Test(store, object_huge_window_refused)
{
	static const char text[] = "window bomb";
	struct ug_hash h;
	char path[512];
	uint8_t *d;
	size_t n;
	/* zstd frame: magic, FHD (no single segment, no checksum), window
	 * descriptor exponent 20 (2^30), then a raw last block of 1 byte */
	static const uint8_t bomb[] = { 0x28, 0xb5, 0x2f, 0xfd, 0x00, 0xa0, 0x09, 0x00, 0x00, 'x' };

	put_text(text, sizeof(text), &h, path, sizeof(path));
	read_path(path, &d, &n);
	cr_assert_eq(chmod(path, 0644), 0);
	memcpy(d + UG_OBJ_HEADER_LEN, bomb, sizeof(bomb));
	write_file(path, d, UG_OBJ_HEADER_LEN + sizeof(bomb));
	assert_corrupt(&h, "corrupt compressed data");
	free(d);
}

Test(store, object_symlink_refused)
{
	static const char text[] = "reached through a symlink";
	struct ug_hash h;
	char path[512], outside[512];
	uint64_t size = 0;
	int fd = -1;

	put_text(text, sizeof(text), &h, path, sizeof(path));
	/* move the valid object out and point a symlink at it */
	path_in(outside, sizeof(outside), tmpdir, "outside-object");
	cr_assert_eq(rename(path, outside), 0);
	cr_assert_eq(symlink(outside, path), 0);
	cr_assert_lt(ug_store_object_verify(S, &h, NULL), 0);
	cr_assert_lt(ug_store_object_stat(S, &h, NULL, &size), 0);
	cr_assert_eq(size, 0);
	cr_assert_lt(ug_store_object_tmp(S, &h, &fd), 0);
	cr_assert_eq(fd, -1);
	{
		char out[512];
		int ofd;
		path_in(out, sizeof(out), tmpdir, "sym.out");
		ofd = open(out, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
		cr_assert_lt(ug_store_object_extract(S, &h, ofd), 0);
		cr_assert_eq(lseek(ofd, 0, SEEK_END), 0);
		close(ofd);
	}
	/* a directory in an object's place is corrupt, not a crash */
	cr_assert_eq(unlink(path), 0);
	cr_assert_eq(mkdir(path, 0755), 0);
	cr_assert_eq(ug_store_object_verify(S, &h, NULL), -EBADMSG);
	cr_assert_eq(ug_store_object_stat(S, &h, NULL, NULL), -EBADMSG);
}

/* ---------------------------------------------------------------- deltas */

static void put_delta(const void *p, size_t n, struct ug_hash *ret_id, uint64_t *ret_size)
{
	char path[512];
	int fd;

	path_in(path, sizeof(path), tmpdir, "delta.in");
	write_file(path, p, n);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	cr_assert_geq(fd, 0);
	cr_assert_eq(ug_store_delta_put_fd(S, fd, ret_id, ret_size), 0);
	close(fd);
	unlink(path);
}

Test(store, delta_round_trip)
{
	uint8_t *data = make_data(600000, 21), *got;
	struct ug_hash id, want, id2;
	struct ug_error e = { "" };
	uint64_t size = 0;
	char path[512];
	size_t n;
	int fd = -1;

	ug_hash_buf(data, 600000, &want, NULL);
	put_delta(data, 600000, &id, &size);
	cr_assert(ug_hash_eq(&id, &want), "delta not named by BLAKE2b of its bytes");
	cr_assert_eq(size, 600000);
	assert_tmp_empty();
	/* stored as is, not compressed again */
	obj_path("deltas", &id, path, sizeof(path));
	cr_assert_eq(file_size(path), 600000);
	cr_assert_eq(ug_store_delta_verify(S, &id, &e), 0, "%s", e.msg);
	cr_assert_eq(ug_store_delta_open(S, &id, &fd), 0);
	got = slurp_fd(fd, &n);
	close(fd);
	cr_assert_eq(n, 600000);
	cr_assert_eq(memcmp(got, data, n), 0);
	free(got);

	put_delta(data, 600000, &id2, NULL);
	cr_assert(ug_hash_eq(&id, &id2));
	cr_assert_eq(count_entries("deltas"), 1);
	assert_tmp_empty();
	/* deltas and objects are separate namespaces */
	cr_assert(!ug_store_object_exists(S, &id));
	free(data);
}

Test(store, delta_verify_detects_corruption)
{
	static const char bytes[] = "some delta payload bytes";
	struct ug_hash id, other;
	struct ug_error e = { "" };
	char path[512];
	int fd = -5;

	put_delta(bytes, sizeof(bytes), &id, NULL);
	obj_path("deltas", &id, path, sizeof(path));
	flip(path, 3);
	cr_assert_eq(ug_store_delta_verify(S, &id, &e), -EBADMSG);
	assert_msg(&e, "does not match");
	cr_assert_eq(chmod(path, 0644), 0);
	cr_assert_eq(truncate(path, 4), 0);
	cr_assert_eq(ug_store_delta_verify(S, &id, NULL), -EBADMSG);

	ug_hash_buf("absent", 6, &other, NULL);
	e.msg[0] = '\0';
	cr_assert_eq(ug_store_delta_verify(S, &other, &e), -ENOENT);
	assert_msg(&e, "missing");
	cr_assert_eq(ug_store_delta_open(S, &other, &fd), -ENOENT);
	cr_assert_eq(fd, -5);

	/* symlinked delta is not followed */
	cr_assert_eq(unlink(path), 0);
	cr_assert_eq(symlink("/etc/hostname", path), 0);
	cr_assert_lt(ug_store_delta_open(S, &id, &fd), 0);
	cr_assert_eq(fd, -5);
	cr_assert_lt(ug_store_delta_verify(S, &id, NULL), 0);
}

Test(store, delta_put_unreadable_fd_cleans_up)
{
	int p[2];
	struct ug_hash id = { { 0 } };

	cr_assert_eq(pipe2(p, O_CLOEXEC), 0);
	cr_assert_eq(write(p[1], "abc", 3), 3);
	cr_assert_lt(ug_store_delta_put_fd(S, p[0], &id, NULL), 0);
	cr_assert(ug_hash_is_zero(&id));
	close(p[0]);
	close(p[1]);
	assert_tmp_empty();
	cr_assert_eq(count_entries("deltas"), 0);
}

/* ---------------------------------------------------------------- list */

static void mkdir_repo(const char *rel)
{
	char path[512];

	path_in(path, sizeof(path), repo, rel);
	cr_assert_eq(mkdir(path, 0755), 0, "mkdir '%s': %s", path, strerror(errno));
}

static int hash_cmp_q(const void *a, const void *b)
{
	return ug_hash_cmp(a, b);
}

Test(store, list_exact_and_sorted)
{
	struct ug_hash want[6], d1, *got = NULL;
	size_t n = 99;
	char path[512], hex[UG_HASH_HEX_LEN + 1], upper[UG_HASH_HEX_LEN + 1];

	cr_assert_eq(ug_store_list(S, UG_STORE_OBJECTS, &got, &n), 0);
	cr_assert_eq(n, 0);
	free(got);

	for (int i = 0; i < 6; i++) {
		char text[32];
		int k = snprintf(text, sizeof(text), "object number %d", i);
		cr_assert_eq(ug_store_object_put_buf(S, text, (size_t)k, &want[i]), 0);
	}
	put_delta("a delta", 7, &d1, NULL);
	qsort(want, 6, sizeof(want[0]), hash_cmp_q);

	/* junk that must be ignored */
	ug_hash_hex(&want[0], hex);
	write_repo_file("objects/README", "x", 1);
	mkdir_repo("objects/zzz");
	mkdir_repo("objects/zz");
	snprintf(path, sizeof(path), "objects/zz/%s", hex + 2);	/* 'zz' is not hex */
	write_repo_file(path, "x", 1);
	snprintf(path, sizeof(path), "objects/%.2s/short", hex);
	write_repo_file(path, "x", 1);
	snprintf(path, sizeof(path), "objects/%.2s/%.61sg", hex, hex + 2);	/* not hex */
	write_repo_file(path, "x", 1);
	snprintf(path, sizeof(path), "objects/%.2s/%sff", hex, hex + 2);	/* too long */
	write_repo_file(path, "x", 1);
	snprintf(path, sizeof(path), "objects/%.2s/.put.1.tmp", hex);
	write_repo_file(path, "x", 1);
	/* upper case is not how objects are named: it would never be found */
	for (size_t i = 0; i < UG_HASH_HEX_LEN; i++)
		upper[i] = "0123456789ABCDEF"[(i * 7 + 10) % 16];
	upper[UG_HASH_HEX_LEN] = '\0';
	snprintf(path, sizeof(path), "objects/%.2s", upper);
	mkdir_repo(path);
	snprintf(path, sizeof(path), "objects/%.2s/%s", upper, upper + 2);
	write_repo_file(path, "x", 1);

	cr_assert_eq(ug_store_list(S, UG_STORE_OBJECTS, &got, &n), 0);
	cr_assert_eq(n, 6, "listed %zu objects", n);
	for (size_t i = 0; i < n; i++)
		cr_assert(ug_hash_eq(&got[i], &want[i]), "object %zu differs or out of order", i);
	free(got);

	cr_assert_eq(ug_store_list(S, UG_STORE_DELTAS, &got, &n), 0);
	cr_assert_eq(n, 1);
	cr_assert(ug_hash_eq(&got[0], &d1));
	free(got);
}

/* ---------------------------------------------------------------- manifests */

Test(store, manifest_round_trip)
{
	static const char json[] = "{\"version\": 1}";
	static const uint8_t sig[] = { 0, 1, 2, 3, 0xff, 0 };
	char *j = NULL, *sg = NULL;
	size_t jl = 0, sl = 0;
	char path[512];

	cr_assert_eq(ug_store_manifest_put(S, "stable", 1, json, sizeof(json) - 1, sig, sizeof(sig)), 0);
	path_in(path, sizeof(path), repo, "manifests/stable/1.json");
	cr_assert(exists(path));
	path_in(path, sizeof(path), repo, "manifests/stable/1.json.sig");
	cr_assert(exists(path));
	cr_assert_eq(count_entries("manifests/stable"), 2, "temp files left behind");

	cr_assert_eq(ug_store_manifest_get(S, "stable", 1, &j, &jl, &sg, &sl), 0);
	cr_assert_eq(jl, sizeof(json) - 1);
	cr_assert_str_eq(j, json);
	cr_assert_eq(sl, sizeof(sig));
	cr_assert_eq(memcmp(sg, sig, sl), 0);
	free(j);
	free(sg);

	/* without asking for the signature */
	j = NULL;
	cr_assert_eq(ug_store_manifest_get(S, "stable", 1, &j, &jl, NULL, NULL), 0);
	cr_assert_str_eq(j, json);
	free(j);

	/* replace */
	cr_assert_eq(ug_store_manifest_put(S, "stable", 1, "{}", 2, "s", 1), 0);
	cr_assert_eq(ug_store_manifest_get(S, "stable", 1, &j, &jl, &sg, &sl), 0);
	cr_assert_eq(jl, 2);
	cr_assert_eq(sl, 1);
	free(j);
	free(sg);

	j = (char *)(uintptr_t)0x1;
	cr_assert_eq(ug_store_manifest_get(S, "stable", 2, &j, &jl, &sg, &sl), -ENOENT);
	cr_assert_eq(ug_store_manifest_get(S, "nochannel", 1, &j, &jl, &sg, &sl), -ENOENT);
	cr_assert_eq(j, (char *)(uintptr_t)0x1);
}

Test(store, manifest_without_sig_rejected)
{
	char *j = (char *)(uintptr_t)0x1, *sg = (char *)(uintptr_t)0x1;
	size_t jl = 5, sl = 5;
	char path[512];

	cr_assert_eq(ug_store_manifest_put(S, "stable", 4, "{}", 2, "sig", 3), 0);
	path_in(path, sizeof(path), repo, "manifests/stable/4.json.sig");
	cr_assert_eq(unlink(path), 0);
	cr_assert_eq(ug_store_manifest_get(S, "stable", 4, &j, &jl, &sg, &sl), -EKEYREJECTED);
	cr_assert_eq(j, (char *)(uintptr_t)0x1);
	cr_assert_eq(sg, (char *)(uintptr_t)0x1);
	cr_assert_eq(jl, 5);
	/* an oversized signature file is refused */
	{
		char big[UG_SIG_FILE_MAX + 1];
		memset(big, 's', sizeof(big));
		write_file(path, big, sizeof(big));
		cr_assert_lt(ug_store_manifest_get(S, "stable", 4, &j, &jl, &sg, &sl), 0);
		cr_assert_eq(j, (char *)(uintptr_t)0x1);
	}
}

Test(store, mdelta_round_trip)
{
	static const uint8_t d[] = { 0x28, 0xb5, 0x2f, 0xfd, 1, 2, 3 };
	uint8_t *got = NULL;
	size_t n = 0;
	uint64_t *v = NULL;

	cr_assert_eq(ug_store_mdelta_put(S, "beta", 1, 2, d, sizeof(d)), 0);
	cr_assert_eq(ug_store_mdelta_get(S, "beta", 1, 2, &got, &n), 0);
	cr_assert_eq(n, sizeof(d));
	cr_assert_eq(memcmp(got, d, n), 0);
	free(got);
	got = (uint8_t *)(uintptr_t)0x1;
	cr_assert_eq(ug_store_mdelta_get(S, "beta", 2, 1, &got, &n), -ENOENT);
	cr_assert_eq(ug_store_mdelta_get(S, "beta", 1, 3, &got, &n), -ENOENT);
	cr_assert_eq(ug_store_mdelta_get(S, "gamma", 1, 2, &got, &n), -ENOENT);
	cr_assert_eq(got, (uint8_t *)(uintptr_t)0x1);
	/* a manifest delta is not a version */
	cr_assert_eq(ug_store_versions(S, "beta", &v, &n), 0);
	cr_assert_eq(n, 0);
	free(v);
}

Test(store, versions_sorted_numerically)
{
	static const uint64_t put[] = { 10, 2, 1, 100, 9 };
	static const uint64_t want[] = { 1, 2, 9, 10, 100 };
	uint64_t *v = NULL;
	size_t n = 0;

	for (size_t i = 0; i < sizeof(put) / sizeof(put[0]); i++)
		cr_assert_eq(ug_store_manifest_put(S, "stable", put[i], "{}", 2, "s", 1), 0);
	cr_assert_eq(ug_store_mdelta_put(S, "stable", 9, 10, "d", 1), 0);
	/* junk */
	write_repo_file("manifests/stable/abc.json", "{}", 2);
	write_repo_file("manifests/stable/3.json.sig", "s", 1);
	write_repo_file("manifests/stable/4.txt", "x", 1);
	write_repo_file("manifests/stable/.5.json", "x", 1);
	write_repo_file("manifests/stable/5.json.tmp", "x", 1);
	write_repo_file("manifests/stable/-6.json", "x", 1);
	write_repo_file("manifests/stable/.json", "x", 1);
	write_repo_file("manifests/stable/7.5.json", "x", 1);
	write_repo_file("manifests/stable/99999999999999999999999.json", "x", 1);
	/* not canonical: would list version 1 twice */
	write_repo_file("manifests/stable/01.json", "x", 1);
	write_repo_file("manifests/stable/0.json", "x", 1);

	cr_assert_eq(ug_store_versions(S, "stable", &v, &n), 0);
	cr_assert_eq(n, 5, "listed %zu versions", n);
	for (size_t i = 0; i < n; i++)
		cr_assert_eq(v[i], want[i], "versions[%zu] = %" PRIu64, i, v[i]);
	free(v);

	/* a channel without manifests has no versions */
	v = (uint64_t *)(uintptr_t)0x1;
	cr_assert_eq(ug_store_versions(S, "empty", &v, &n), 0);
	cr_assert_eq(n, 0);
	free(v);
}

Test(store, channels_listed_from_refs)
{
	char **v = NULL;
	size_t n = 99;
	char path[512];

	cr_assert_eq(ug_store_channels(S, &v, &n), 0);
	cr_assert_eq(n, 0);
	ug_strv_free(v, n);

	cr_assert_eq(ug_store_ref_write(S, "stable", 3), 0);
	cr_assert_eq(ug_store_ref_write(S, "beta", 1), 0);
	cr_assert_eq(ug_store_ref_write(S, "a.b_c-9", 1), 0);
	/* a channel with manifests but no ref is not listed */
	cr_assert_eq(ug_store_manifest_put(S, "alpha", 1, "{}", 2, "s", 1), 0);
	/* junk in refs/ */
	write_repo_file("refs/.hidden", "1\n", 2);
	write_repo_file("refs/.ug.123.deadbeef.tmp", "1\n", 2);
	write_repo_file("refs/bad name", "1\n", 2);
	path_in(path, sizeof(path), repo, "refs/-dash");
	write_file(path, "1\n", 2);

	cr_assert_eq(ug_store_channels(S, &v, &n), 0);
	cr_assert_eq(n, 3);
	cr_assert_str_eq(v[0], "a.b_c-9");
	cr_assert_str_eq(v[1], "beta");
	cr_assert_str_eq(v[2], "stable");
	ug_strv_free(v, n);
	ug_strv_free(NULL, 0);
}

Test(store, invalid_channel_names_rejected)
{
	char longname[UG_CHANNEL_MAX + 2];
	const char *bad[] = { "../x", "", ".hidden", "a/b", "..", "-x", "sp ace", longname, NULL };
	char path[512];

	memset(longname, 'c', sizeof(longname) - 1);
	longname[sizeof(longname) - 1] = '\0';
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		const char *c = bad[i];
		char *j = NULL, *sg = NULL;
		uint8_t *d = NULL;
		uint64_t *v = NULL, ver = 42;
		size_t jl = 0, sl = 0, n = 0;

		cr_assert_eq(ug_store_manifest_put(S, c, 1, "{}", 2, "s", 1), -EINVAL, "[%zu]", i);
		cr_assert_eq(ug_store_manifest_get(S, c, 1, &j, &jl, &sg, &sl), -EINVAL, "[%zu]", i);
		cr_assert_eq(ug_store_mdelta_put(S, c, 1, 2, "d", 1), -EINVAL, "[%zu]", i);
		cr_assert_eq(ug_store_mdelta_get(S, c, 1, 2, &d, &n), -EINVAL, "[%zu]", i);
		cr_assert_eq(ug_store_versions(S, c, &v, &n), -EINVAL, "[%zu]", i);
		cr_assert_eq(ug_store_ref_write(S, c, 1), -EINVAL, "[%zu]", i);
		cr_assert_eq(ug_store_ref_read(S, c, &ver), -EINVAL, "[%zu]", i);
		cr_assert_eq(ver, 42);
		cr_assert_null(j);
		cr_assert_null(v);
	}
	/* nothing escaped the repo */
	path_in(path, sizeof(path), repo, "x");
	cr_assert(!exists(path));
	path_in(path, sizeof(path), tmpdir, "x");
	cr_assert(!exists(path));
	cr_assert_eq(count_entries("refs"), 0);
	cr_assert_eq(count_entries("manifests"), 0);
}

/* ---------------------------------------------------------------- refs */

Test(store, ref_missing)
{
	uint64_t v = 42;

	cr_assert_eq(ug_store_ref_read(S, "stable", &v), -ENOENT);
	cr_assert_eq(v, 42);
}

Test(store, ref_round_trip)
{
	uint64_t v = 0;
	uint8_t *d;
	size_t n;
	char path[512];

	cr_assert_eq(ug_store_ref_write(S, "stable", 7), 0);
	cr_assert_eq(ug_store_ref_read(S, "stable", &v), 0);
	cr_assert_eq(v, 7);
	path_in(path, sizeof(path), repo, "refs/stable");
	read_path(path, &d, &n);
	cr_assert_eq(n, 2);
	cr_assert_eq(memcmp(d, "7\n", 2), 0);
	free(d);
	cr_assert_eq(ug_store_ref_write(S, "stable", 8), 0);
	cr_assert_eq(ug_store_ref_read(S, "stable", &v), 0);
	cr_assert_eq(v, 8);
	cr_assert_eq(ug_store_ref_write(S, "stable", UINT64_MAX), 0);
	cr_assert_eq(ug_store_ref_read(S, "stable", &v), 0);
	cr_assert_eq(v, UINT64_MAX);
	cr_assert_eq(count_entries("refs"), 1, "temp files left in refs/");
	/* written by hand without a newline */
	write_repo_file("refs/stable", "12", 2);
	cr_assert_eq(ug_store_ref_read(S, "stable", &v), 0);
	cr_assert_eq(v, 12);
}

Test(store, ref_garbage)
{
	static const struct { const char *p; size_t n; } bad[] = {
		{ "abc\n", 4 }, { "", 0 }, { "\n", 1 }, { "12x\n", 4 }, { " 5\n", 3 },
		{ "5 \n", 3 }, { "5\n\n", 3 }, { "-1\n", 3 }, { "+1\n", 3 }, { "0x10\n", 5 },
		{ "99999999999999999999999\n", 24 }, { "0\n", 2 }, { "0", 1 }, { "00\n", 3 },
		{ "5\0junk\n", 7 }, { "5\0", 2 },
		{ "1111111111111111111111111111111111111111111111111111111111111111111111\n", 71 },
	};
	char path[512];

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		uint64_t v = 42;
		int r;
		write_repo_file("refs/stable", bad[i].p, bad[i].n);
		r = ug_store_ref_read(S, "stable", &v);
		cr_assert_eq(r, -EBADMSG, "ref [%zu] gave %d", i, r);
		cr_assert_eq(v, 42);
	}
	/* a symlinked ref is not followed */
	path_in(path, sizeof(path), repo, "refs/stable");
	cr_assert_eq(unlink(path), 0);
	write_repo_file("target", "3\n", 2);
	cr_assert_eq(symlink("../target", path), 0);
	{
		uint64_t v = 42;
		cr_assert_lt(ug_store_ref_read(S, "stable", &v), 0);
		cr_assert_eq(v, 42);
	}
}

/* ---------------------------------------------------------------- lock */

Test(store, lock)
{
	struct ug_store *s2 = NULL;
	struct ug_error e = { "" };
	char path[512];

	cr_assert_eq(ug_store_lock(S, false), 0);
	cr_assert_eq(ug_store_lock(S, false), 0, "relocking the same store failed");
	cr_assert_eq(ug_store_lock(S, true), 0);
	path_in(path, sizeof(path), repo, "lock");
	cr_assert(exists(path));

	/* flock is per open file description: a second store object in this
	 * process competes like another process would */
	cr_assert_eq(ug_store_open(repo, &s2, &e), 0, "%s", e.msg);
	cr_assert_eq(ug_store_lock(s2, false), -EWOULDBLOCK);
	cr_assert_eq(s2->lockfd, -1);
	/* freeing the holder releases the lock */
	ug_store_free(S);
	S = NULL;
	cr_assert_eq(ug_store_lock(s2, false), 0);
	ug_store_free(s2);
}

Test(store, lock_refuses_symlink)
{
	char path[512], target[512];

	path_in(path, sizeof(path), repo, "lock");
	path_in(target, sizeof(target), tmpdir, "elsewhere");
	cr_assert_eq(symlink(target, path), 0);
	cr_assert_lt(ug_store_lock(S, false), 0);
	cr_assert(!exists(target), "lock followed a symlink");
}

/* ---------------------------------------------------------------- fds */

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

/* Every path, failing or not, closes what it opened. */
Test(store, no_fd_leaks)
{
	struct ug_hash h, id, missing;
	struct ug_error e = { "" };
	struct ug_store *s2 = NULL;
	char dir[256], path[512];
	size_t before;
	uint64_t *v = NULL, ver;
	char **ch = NULL;
	size_t n;
	int fd;

	/* warm up lazily initialised libraries (libsodium's RNG) */
	cr_assert_eq(ug_store_object_put_buf(S, "warm", 4, &h), 0);
	before = count_fds();
	path_in(dir, sizeof(dir), tmpdir, "r2");
	cr_assert_eq(ug_store_create(dir, &e), 0);
	cr_assert_eq(ug_store_create(dir, &e), -EEXIST);
	cr_assert_eq(ug_store_open(dir, &s2, &e), 0);
	cr_assert_eq(ug_store_lock(s2, false), 0);
	ug_store_free(s2);
	path_in(path, sizeof(path), tmpdir, "none");
	cr_assert_lt(ug_store_open(path, &s2, &e), 0);

	cr_assert_eq(ug_store_object_put_buf(S, "abc", 3, &h), 0);
	cr_assert_eq(ug_store_object_put_buf(S, "abc", 3, &h), 0);
	cr_assert_eq(ug_store_object_verify(S, &h, NULL), 0);
	cr_assert_eq(ug_store_object_stat(S, &h, NULL, NULL), 0);
	cr_assert_eq(ug_store_object_tmp(S, &h, &fd), 0);
	close(fd);
	ug_hash_buf("zz", 2, &missing, NULL);
	cr_assert_lt(ug_store_object_verify(S, &missing, NULL), 0);
	put_delta("dd", 2, &id, NULL);
	put_delta("dd", 2, &id, NULL);
	cr_assert_eq(ug_store_delta_verify(S, &id, NULL), 0);
	cr_assert_eq(ug_store_manifest_put(S, "c", 1, "{}", 2, "s", 1), 0);
	cr_assert_eq(ug_store_versions(S, "c", &v, &n), 0);
	free(v);
	cr_assert_eq(ug_store_ref_write(S, "c", 1), 0);
	cr_assert_eq(ug_store_ref_read(S, "c", &ver), 0);
	cr_assert_eq(ug_store_channels(S, &ch, &n), 0);
	ug_strv_free(ch, n);
	cr_assert_eq(count_fds(), before, "file descriptors leaked");
}

/* ---------------------------------------------------------------- ref wait */

#include <sys/wait.h>
#include <time.h>

static double mono_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

Test(store, ref_wait_times_out)
{
	uint64_t v = 0;
	double t0 = mono_s();

	cr_assert_eq(ug_store_ref_wait(S, "stable", 0, 200, &v), -ETIMEDOUT);
	cr_assert_geq(mono_s() - t0, 0.19);
	cr_assert_eq(ug_store_ref_write(S, "stable", 3), 0);
	cr_assert_eq(ug_store_ref_wait(S, "stable", 3, 100, &v), -ETIMEDOUT, "3 is not above 3");
	cr_assert_eq(ug_store_ref_wait(S, "stable", 2, 100, &v), 0, "already above: no wait");
	cr_assert_eq(v, 3);
	cr_assert_eq(ug_store_ref_wait(S, "../x", 0, 10, &v), -EINVAL);
}

/* A waiter is woken by the ref moving, well before its timeout. */
Test(store, ref_wait_wakes_on_publish)
{
	pid_t pid;
	int status;
	double t0;

	cr_assert_eq(ug_store_ref_write(S, "stable", 1), 0);
	pid = fork();
	cr_assert_geq(pid, 0);
	if (pid == 0) {
		uint64_t v = 0;
		int r = ug_store_ref_wait(S, "stable", 1, 10000, &v);
		_exit(r == 0 && v == 2 ? 0 : 1);
	}
	t0 = mono_s();
	usleep(200000);
	cr_assert_eq(ug_store_ref_write(S, "stable", 2), 0);
	cr_assert_eq(waitpid(pid, &status, 0), pid);
	cr_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0, "waiter did not see version 2");
	cr_assert_lt(mono_s() - t0, 5.0, "waiter was not woken by the ref write");
}

/* test-util.c - unit tests for src/util.c: number parsing, path and channel
 * checks, atomic and bounded file I/O, symlink-refusing opens, time and
 * byte formatting, overflow-checked sizes. */
#include "config.h"

#include <criterion/criterion.h>

#include <dirent.h>
#include <fcntl.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "util.h"

/* Each Criterion test runs in its own forked process, so this per-test
 * state is private to the test using it. */
#include "tmpdir.h"

static void tmp_setup(void)
{
	ug_test_tmp_make("util");
}

static void tmp_teardown(void)
{
	ug_test_tmp_remove();
}

static void put_file(int dirfd, const char *path, const char *content)
{
	int fd = openat(dirfd, path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);

	cr_assert_geq(fd, 0, "create '%s': %s", path, strerror(errno));
	cr_assert_eq(ug_write_all(fd, content, strlen(content)), 0);
	close(fd);
}

static void assert_file_eq(int dirfd, const char *path, const void *want, size_t want_len)
{
	char *data = NULL;
	size_t len = 0;
	int r = ug_file_read(dirfd, path, 1u << 20, &data, &len);

	cr_assert_eq(r, 0, "read '%s': %s", path, strerror(-r));
	cr_assert_eq(len, want_len, "'%s': %zu bytes, want %zu", path, len, want_len);
	cr_assert(memcmp(data, want, want_len) == 0, "'%s': content differs", path);
	free(data);
}

/* Number of entries in dirfd/sub other than "." and "..". */
static size_t count_entries(int dirfd, const char *sub)
{
	int fd = openat(dirfd, sub, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	DIR *d;
	struct dirent *de;
	size_t n = 0;

	cr_assert_geq(fd, 0);
	d = fdopendir(fd);
	cr_assert_not_null(d);
	while ((de = readdir(d)) != NULL) {
		if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
			continue;
		n++;
	}
	closedir(d);
	return n;
}

static mode_t mode_of(int dirfd, const char *path)
{
	struct stat st;

	cr_assert_eq(fstatat(dirfd, path, &st, AT_SYMLINK_NOFOLLOW), 0, "stat '%s'", path);
	return st.st_mode;
}

TestSuite(util, .timeout = 20);

/* ------------------------------------------------------------ ug_error */

Test(util, error_set_formats_and_returns_rc)
{
	struct ug_error err = { .msg = "" };

	cr_assert_eq(ug_error_set(&err, -EBADMSG, "entry %d: '%s'", 17, "x"), -EBADMSG);
	cr_assert_str_eq(err.msg, "entry 17: 'x'");
	cr_assert_eq(ug_error_set(NULL, -E2BIG, "ignored %d", 1), -E2BIG);
}

Test(util, error_set_truncates_long_message)
{
	struct ug_error err;
	char big[2000];

	memset(big, 'a', sizeof(big) - 1);
	big[sizeof(big) - 1] = '\0';
	ug_error_set(&err, -EINVAL, "%s", big);
	cr_assert_eq(strnlen(err.msg, sizeof(err.msg)), sizeof(err.msg) - 1);
}

/* ------------------------------------------------------------ sizes */

Test(util, size_add_mul)
{
	size_t r = 7;

	cr_assert_eq(ug_size_add(2, 3, &r), 0);
	cr_assert_eq(r, 5);
	cr_assert_eq(ug_size_add(SIZE_MAX - 1, 1, &r), 0);
	cr_assert_eq(r, SIZE_MAX);
	r = 7;
	cr_assert_eq(ug_size_add(SIZE_MAX, 1, &r), -E2BIG);
	cr_assert_eq(r, 7, "ret must be untouched on overflow");
	cr_assert_eq(ug_size_add(SIZE_MAX / 2 + 1, SIZE_MAX / 2 + 1, &r), -E2BIG);
	cr_assert_eq(r, 7);

	cr_assert_eq(ug_size_mul(6, 7, &r), 0);
	cr_assert_eq(r, 42);
	cr_assert_eq(ug_size_mul(0, SIZE_MAX, &r), 0);
	cr_assert_eq(r, 0);
	r = 7;
	cr_assert_eq(ug_size_mul(SIZE_MAX / 2 + 1, 2, &r), -E2BIG);
	cr_assert_eq(r, 7);
	cr_assert_eq(ug_size_mul((size_t)1 << (sizeof(size_t) * 4),
				 (size_t)1 << (sizeof(size_t) * 4), &r), -E2BIG);
	cr_assert_eq(r, 7);
}

/* ------------------------------------------------------------ ug_parse_u64 */

Test(util, parse_u64_valid)
{
	uint64_t v = 99;

	cr_assert_eq(ug_parse_u64("0", UINT64_MAX, &v), 0);
	cr_assert_eq(v, 0);
	cr_assert_eq(ug_parse_u64("42", UINT64_MAX, &v), 0);
	cr_assert_eq(v, 42);
	cr_assert_eq(ug_parse_u64("007", UINT64_MAX, &v), 0);
	cr_assert_eq(v, 7);
	cr_assert_eq(ug_parse_u64("18446744073709551615", UINT64_MAX, &v), 0);
	cr_assert_eq(v, UINT64_MAX);
	cr_assert_eq(ug_parse_u64("100", 100, &v), 0, "max itself is allowed");
	cr_assert_eq(v, 100);
	cr_assert_eq(ug_parse_u64("0", 0, &v), 0);
	cr_assert_eq(v, 0);
}

Test(util, parse_u64_rejects_non_numbers)
{
	static const char *bad[] = {
		"", "-1", "+1", " 1", "1 ", "1 2", "\t1", "1\n", "0x10", "1e3",
		"12a", "a12", "1.0", "1,000", "-0", "١", "１",
	};
	uint64_t v = 99;

	cr_assert_eq(ug_parse_u64(NULL, UINT64_MAX, &v), -EINVAL);
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		cr_assert_eq(ug_parse_u64(bad[i], UINT64_MAX, &v), -EINVAL, "'%s'", bad[i]);
	cr_assert_eq(v, 99, "ret must be untouched on failure");
}

Test(util, parse_u64_overflow_and_max)
{
	uint64_t v = 99;

	cr_assert_eq(ug_parse_u64("18446744073709551616", UINT64_MAX, &v), -ERANGE);
	cr_assert_eq(ug_parse_u64("99999999999999999999", UINT64_MAX, &v), -ERANGE);
	cr_assert_eq(ug_parse_u64("184467440737095516150", UINT64_MAX, &v), -ERANGE);
	cr_assert_eq(ug_parse_u64("999999999999999999999999999999999999", UINT64_MAX, &v), -ERANGE);
	cr_assert_eq(ug_parse_u64("101", 100, &v), -ERANGE);
	cr_assert_eq(ug_parse_u64("1", 0, &v), -ERANGE);
	cr_assert_eq(ug_parse_u64("4097", UG_PATH_MAX, &v), -ERANGE);
	cr_assert_eq(v, 99, "ret must be untouched on failure");
}

/* ------------------------------------------------------------ ug_parse_size */

Test(util, parse_size_suffixes)
{
	uint64_t v = 99;

	cr_assert_eq(ug_parse_size("0", UINT64_MAX, &v), 0);
	cr_assert_eq(v, 0);
	cr_assert_eq(ug_parse_size("512", UINT64_MAX, &v), 0);
	cr_assert_eq(v, 512);
	cr_assert_eq(ug_parse_size("1K", UINT64_MAX, &v), 0);
	cr_assert_eq(v, 1024);
	cr_assert_eq(ug_parse_size("3k", UINT64_MAX, &v), 0);
	cr_assert_eq(v, 3072);
	cr_assert_eq(ug_parse_size("2M", UINT64_MAX, &v), 0);
	cr_assert_eq(v, 2ull << 20);
	cr_assert_eq(ug_parse_size("5m", UINT64_MAX, &v), 0);
	cr_assert_eq(v, 5ull << 20);
	cr_assert_eq(ug_parse_size("3G", UINT64_MAX, &v), 0);
	cr_assert_eq(v, 3ull << 30);
	cr_assert_eq(ug_parse_size("1024g", UINT64_MAX, &v), 0);
	cr_assert_eq(v, 1ull << 40);
	cr_assert_eq(ug_parse_size("0G", UINT64_MAX, &v), 0);
	cr_assert_eq(v, 0);
	/* the largest G value that still fits */
	cr_assert_eq(ug_parse_size("17179869183G", UINT64_MAX, &v), 0);
	cr_assert_eq(v, 17179869183ull << 30);
}

Test(util, parse_size_rejects_garbage)
{
	static const char *bad[] = {
		"", "K", "G", "1T", "1KB", "1KK", "K1", " 1K", "1 K", "1K ", "-1K",
		"+1M", "1.5M", "0x1K", "1\n",
	};
	uint64_t v = 99;

	cr_assert_eq(ug_parse_size(NULL, UINT64_MAX, &v), -EINVAL);
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		cr_assert_eq(ug_parse_size(bad[i], UINT64_MAX, &v), -EINVAL, "'%s'", bad[i]);
	cr_assert_eq(v, 99);
}

Test(util, parse_size_overflow_after_shift)
{
	uint64_t v = 99;

	/* 2^34 G and 2^54 K and 2^44 M are all exactly 2^64 */
	cr_assert_eq(ug_parse_size("17179869184G", UINT64_MAX, &v), -ERANGE);
	cr_assert_eq(ug_parse_size("18014398509481984K", UINT64_MAX, &v), -ERANGE);
	cr_assert_eq(ug_parse_size("17592186044416M", UINT64_MAX, &v), -ERANGE);
	cr_assert_eq(ug_parse_size("18446744073709551615K", UINT64_MAX, &v), -ERANGE);
	cr_assert_eq(ug_parse_size("99999999999999999999", UINT64_MAX, &v), -ERANGE);
	cr_assert_eq(v, 99);
}

Test(util, parse_size_max_applies_after_shift)
{
	uint64_t v = 99;

	cr_assert_eq(ug_parse_size("2K", 2047, &v), -ERANGE);
	cr_assert_eq(v, 99);
	cr_assert_eq(ug_parse_size("2K", 2048, &v), 0);
	cr_assert_eq(v, 2048);
	cr_assert_eq(ug_parse_size("1025G", UG_FILE_SIZE_MAX, &v), -ERANGE);
	cr_assert_eq(ug_parse_size("1024G", UG_FILE_SIZE_MAX, &v), 0);
	cr_assert_eq(v, UG_FILE_SIZE_MAX);
}

/* ------------------------------------------------------------ ug_path_check */

Test(util, path_check_valid)
{
	static const char *good[] = {
		"a", "a/b", "a/b/c.txt", ".hidden", "a/.hidden", "...", "a/..b",
		"..a", "a./b", "usr/lib/libc.so.6", "with space", "caf\xc3\xa9/na\xc3\xafve",
		"-dash", "a~b/#c",
	};
	struct ug_error err = { .msg = "" };

	for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++)
		cr_assert_eq(ug_path_check(good[i], &err), 0, "'%s' rejected: %s", good[i], err.msg);
	cr_assert_eq(ug_path_check("a/b", NULL), 0);
}

static void expect_bad_path(const char *path, const char *needle)
{
	struct ug_error err = { .msg = "" };

	cr_assert_eq(ug_path_check(path, &err), -EINVAL, "'%.80s' accepted", path);
	cr_assert_not_null(strstr(err.msg, needle), "message for '%.80s' is '%s', want '%s'",
			   path, err.msg, needle);
	/* a NULL error detail must not crash and must give the same answer */
	cr_assert_eq(ug_path_check(path, NULL), -EINVAL);
}

Test(util, path_check_rejects_empty)
{
	struct ug_error err = { .msg = "" };

	expect_bad_path("", "empty");
	cr_assert_eq(ug_path_check(NULL, &err), -EINVAL);
	cr_assert_not_null(strstr(err.msg, "empty"));
}

Test(util, path_check_rejects_absolute)
{
	expect_bad_path("/etc/passwd", "absolute");
	expect_bad_path("/", "absolute");
	expect_bad_path("//a", "absolute");
}

Test(util, path_check_rejects_dot)
{
	expect_bad_path(".", "'.'");
	expect_bad_path("./a", "'.'");
	expect_bad_path("a/.", "'.'");
	expect_bad_path("a/./b", "'.'");
}

Test(util, path_check_rejects_dotdot)
{
	struct ug_error err = { .msg = "" };

	expect_bad_path("..", "'..'");
	expect_bad_path("../a", "'..'");
	expect_bad_path("a/..", "'..'");
	expect_bad_path("a/../b", "'..'");
	/* the message names the offending path */
	ug_path_check("a/../b", &err);
	cr_assert_not_null(strstr(err.msg, "'a/../b'"), "%s", err.msg);
}

Test(util, path_check_rejects_empty_component)
{
	expect_bad_path("a//b", "empty component");
	expect_bad_path("a/b//c", "empty component");
}

Test(util, path_check_rejects_trailing_slash)
{
	expect_bad_path("a/", "'/'");
	expect_bad_path("a/b/", "'/'");
	expect_bad_path("a//", "'/'");
}

Test(util, path_check_rejects_control_chars)
{
	static const char *bad[] = {
		"a\nb", "a\tb", "\x01", "a/b\r", "a/\x1f", "a\x7f", "\x1b[31m",
	};

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		expect_bad_path(bad[i], "control character");
}

Test(util, path_check_component_length)
{
	char path[600];
	struct ug_error err = { .msg = "" };

	/* exactly UG_NAME_MAX is fine */
	memset(path, 'x', UG_NAME_MAX);
	path[UG_NAME_MAX] = '\0';
	cr_assert_eq(ug_path_check(path, &err), 0, "%s", err.msg);

	/* one more byte is not, first, middle or last component */
	memset(path, 'x', UG_NAME_MAX + 1);
	path[UG_NAME_MAX + 1] = '\0';
	expect_bad_path(path, "longer than 255");

	memcpy(path, "a/", 2);
	memset(path + 2, 'y', UG_NAME_MAX + 1);
	memcpy(path + 2 + UG_NAME_MAX + 1, "/b", 3);
	expect_bad_path(path, "longer than 255");

	memcpy(path, "a/", 2);
	memset(path + 2, 'z', UG_NAME_MAX + 1);
	path[2 + UG_NAME_MAX + 1] = '\0';
	expect_bad_path(path, "longer than 255");
}

/* A valid path of exactly len bytes: components of 200 bytes joined by '/'. */
static void make_long_path(char *out, size_t len)
{
	for (size_t i = 0; i < len; i++)
		out[i] = (i % 201 == 200) ? '/' : 'p';
	out[len] = '\0';
}

Test(util, path_check_total_length)
{
	static char path[UG_PATH_MAX + 100];
	struct ug_error err = { .msg = "" };

	make_long_path(path, UG_PATH_MAX);
	cr_assert_eq(strlen(path), UG_PATH_MAX);
	cr_assert_eq(ug_path_check(path, &err), 0, "%s", err.msg);

	make_long_path(path, UG_PATH_MAX + 1);
	expect_bad_path(path, "longer than 4096");

	make_long_path(path, UG_PATH_MAX + 50);
	expect_bad_path(path, "longer than 4096");
}

/* ------------------------------------------------------------ ug_channel_check */

Test(util, channel_check_valid)
{
	static const char *good[] = { "stable", "beta-2", "a", "A.b_c-9", "release.2026", "x." };
	char c64[UG_CHANNEL_MAX + 1];
	struct ug_error err = { .msg = "" };

	for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++)
		cr_assert_eq(ug_channel_check(good[i], &err), 0, "'%s': %s", good[i], err.msg);
	memset(c64, 'c', UG_CHANNEL_MAX);
	c64[UG_CHANNEL_MAX] = '\0';
	cr_assert_eq(ug_channel_check(c64, &err), 0, "%s", err.msg);
}

Test(util, channel_check_rejects)
{
	static const char *bad[] = {
		"", ".hidden", ".", "..", "a/b", "a b", "caf\xc3\xa9", "a\nb", "a:b",
		"../x", "a*", "a\\b",
	};
	char c65[UG_CHANNEL_MAX + 2];
	struct ug_error err;

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		memset(&err, 0, sizeof(err));
		cr_assert_eq(ug_channel_check(bad[i], &err), -EINVAL, "'%s' accepted", bad[i]);
		cr_assert_neq(err.msg[0], '\0', "no message for '%s'", bad[i]);
		cr_assert_eq(ug_channel_check(bad[i], NULL), -EINVAL);
	}
	cr_assert_eq(ug_channel_check(NULL, &err), -EINVAL);
	memset(c65, 'c', UG_CHANNEL_MAX + 1);
	c65[UG_CHANNEL_MAX + 1] = '\0';
	cr_assert_eq(ug_channel_check(c65, &err), -EINVAL);
	cr_assert_not_null(strstr(err.msg, "64"), "%s", err.msg);
	ug_channel_check(".hidden", &err);
	cr_assert_not_null(strstr(err.msg, "'.hidden'"), "%s", err.msg);
}

/* ------------------------------------------------------------ read/write */

Test(util, write_all_read_exact_read_full)
{
	int p[2];
	char buf[16];

	cr_assert_eq(pipe2(p, O_CLOEXEC), 0);
	cr_assert_eq(ug_write_all(p[1], "hello", 5), 0);
	cr_assert_eq(ug_write_all(p[1], "", 0), 0);
	close(p[1]);
	cr_assert_eq(ug_read_exact(p[0], buf, 2), 0);
	cr_assert(memcmp(buf, "he", 2) == 0);
	/* 3 bytes left: asking for 4 is a short read */
	cr_assert_eq(ug_read_exact(p[0], buf, 4), -EBADMSG);
	cr_assert_eq(ug_read_exact(p[0], buf, 1), -EBADMSG, "EOF now");
	cr_assert_eq(ug_read_exact(p[0], buf, 0), 0);
	close(p[0]);

	cr_assert_eq(pipe2(p, O_CLOEXEC), 0);
	cr_assert_eq(ug_write_all(p[1], "abc", 3), 0);
	close(p[1]);
	cr_assert_eq(ug_read_full(p[0], buf, sizeof(buf)), 3, "stops at EOF");
	cr_assert(memcmp(buf, "abc", 3) == 0);
	cr_assert_eq(ug_read_full(p[0], buf, sizeof(buf)), 0);
	close(p[0]);
}

Test(util, read_write_bad_fd)
{
	char buf[4];
	int p[2];

	cr_assert_eq(pipe2(p, O_CLOEXEC), 0);
	close(p[0]);
	close(p[1]);
	cr_assert_eq(ug_write_all(p[1], "x", 1), -EBADF);
	cr_assert_eq(ug_read_exact(p[0], buf, 1), -EBADF);
	cr_assert_eq(ug_read_full(p[0], buf, 1), -EBADF);
}

/* ------------------------------------------------------------ ug_file_write_atomic */

Test(util, write_atomic_content_and_mode, .init = tmp_setup, .fini = tmp_teardown)
{
	static const char data[] = "line one\nline two\0with a NUL";

	cr_assert_eq(ug_file_write_atomic(tmpfd, "f", data, sizeof(data), 0640), 0);
	assert_file_eq(tmpfd, "f", data, sizeof(data));
	cr_assert_eq(mode_of(tmpfd, "f") & 07777, 0640);
	cr_assert(S_ISREG(mode_of(tmpfd, "f")));

	cr_assert_eq(ug_file_write_atomic(tmpfd, "g", data, 4, 0755), 0);
	cr_assert_eq(mode_of(tmpfd, "g") & 07777, 0755, "mode is not subject to umask");
	assert_file_eq(tmpfd, "g", data, 4);

	cr_assert_eq(ug_file_write_atomic(tmpfd, "empty", "", 0, 0600), 0);
	assert_file_eq(tmpfd, "empty", "", 0);
	cr_assert_eq(mode_of(tmpfd, "empty") & 07777, 0600);
	cr_assert_eq(count_entries(tmpfd, "."), 3, "temporary files left behind");
}

Test(util, write_atomic_replaces_existing, .init = tmp_setup, .fini = tmp_teardown)
{
	struct stat before, after;

	put_file(tmpfd, "f", "old content that is longer");
	cr_assert_eq(linkat(tmpfd, "f", tmpfd, "old-link", 0), 0);
	cr_assert_eq(fstatat(tmpfd, "f", &before, 0), 0);

	cr_assert_eq(ug_file_write_atomic(tmpfd, "f", "new", 3, 0644), 0);
	assert_file_eq(tmpfd, "f", "new", 3);
	/* replaced by rename, not rewritten in place: the old inode survives
	 * unchanged under its other name */
	assert_file_eq(tmpfd, "old-link", "old content that is longer", 26);
	cr_assert_eq(fstatat(tmpfd, "f", &after, 0), 0);
	cr_assert_neq(before.st_ino, after.st_ino);

	cr_assert_eq(ug_file_write_atomic(tmpfd, "f", "newer", 5, 0600), 0);
	assert_file_eq(tmpfd, "f", "newer", 5);
	cr_assert_eq(mode_of(tmpfd, "f") & 07777, 0600);
	cr_assert_eq(count_entries(tmpfd, "."), 2, "temporary files left behind");
}

Test(util, write_atomic_with_directory_part, .init = tmp_setup, .fini = tmp_teardown)
{
	cr_assert_eq(mkdirat(tmpfd, "sub", 0755), 0);
	cr_assert_eq(mkdirat(tmpfd, "sub/deeper", 0755), 0);
	cr_assert_eq(ug_file_write_atomic(tmpfd, "sub/deeper/f", "data", 4, 0644), 0);
	assert_file_eq(tmpfd, "sub/deeper/f", "data", 4);
	cr_assert_eq(count_entries(tmpfd, "sub/deeper"), 1, "temporary files left behind");
	cr_assert_eq(count_entries(tmpfd, "sub"), 1);
	cr_assert_eq(count_entries(tmpfd, "."), 1);

	cr_assert_eq(ug_file_write_atomic(tmpfd, "sub/deeper/f", "again", 5, 0644), 0);
	assert_file_eq(tmpfd, "sub/deeper/f", "again", 5);
	cr_assert_eq(count_entries(tmpfd, "sub/deeper"), 1);
}

Test(util, write_atomic_absolute_path_with_at_fdcwd, .init = tmp_setup, .fini = tmp_teardown)
{
	char path[128];

	snprintf(path, sizeof(path), "%s/abs", tmpdir);
	cr_assert_eq(ug_file_write_atomic(AT_FDCWD, path, "xyz", 3, 0644), 0);
	assert_file_eq(tmpfd, "abs", "xyz", 3);
	cr_assert_eq(count_entries(tmpfd, "."), 1);
}

Test(util, write_atomic_failures_leave_nothing, .init = tmp_setup, .fini = tmp_teardown)
{
	/* missing directory */
	cr_assert_eq(ug_file_write_atomic(tmpfd, "nodir/f", "x", 1, 0644), -ENOENT);
	/* the target is a non-empty directory: rename fails after the temp
	 * file was written, which must then be removed */
	cr_assert_eq(mkdirat(tmpfd, "d", 0755), 0);
	put_file(tmpfd, "d/keep", "k");
	cr_assert_lt(ug_file_write_atomic(tmpfd, "d", "x", 1, 0644), 0);
	cr_assert(S_ISDIR(mode_of(tmpfd, "d")));
	cr_assert_eq(count_entries(tmpfd, "."), 1, "temporary file left behind");
	cr_assert_eq(count_entries(tmpfd, "d"), 1);
}

/* ------------------------------------------------------------ ug_file_read */

Test(util, file_read_basic_and_nul_terminated, .init = tmp_setup, .fini = tmp_teardown)
{
	char *data = NULL;
	size_t len = 0;

	put_file(tmpfd, "f", "hello");
	cr_assert_eq(ug_file_read(tmpfd, "f", 100, &data, &len), 0);
	cr_assert_eq(len, 5);
	cr_assert_str_eq(data, "hello");
	cr_assert_eq(data[len], '\0');
	free(data);

	/* embedded NULs are counted, a NUL still follows the data */
	cr_assert_eq(ug_file_write_atomic(tmpfd, "z", "a\0b\0", 4, 0644), 0);
	cr_assert_eq(ug_file_read(tmpfd, "z", 100, &data, &len), 0);
	cr_assert_eq(len, 4);
	cr_assert(memcmp(data, "a\0b\0", 5) == 0);
	free(data);

	put_file(tmpfd, "empty", "");
	cr_assert_eq(ug_file_read(tmpfd, "empty", 100, &data, &len), 0);
	cr_assert_eq(len, 0);
	cr_assert_not_null(data);
	cr_assert_eq(data[0], '\0');
	free(data);
}

Test(util, file_read_max_enforced, .init = tmp_setup, .fini = tmp_teardown)
{
	char *data = (char *)"sentinel";
	size_t len = 12345;

	put_file(tmpfd, "f", "0123456789");
	cr_assert_eq(ug_file_read(tmpfd, "f", 9, &data, &len), -E2BIG);
	cr_assert_eq(ug_file_read(tmpfd, "f", 0, &data, &len), -E2BIG);
	cr_assert_str_eq(data, "sentinel", "ret_data must be untouched on failure");
	cr_assert_eq(len, 12345, "ret_len must be untouched on failure");

	/* a file of exactly max bytes is allowed */
	cr_assert_eq(ug_file_read(tmpfd, "f", 10, &data, &len), 0);
	cr_assert_eq(len, 10);
	cr_assert_str_eq(data, "0123456789");
	free(data);

	put_file(tmpfd, "empty", "");
	cr_assert_eq(ug_file_read(tmpfd, "empty", 0, &data, &len), 0);
	cr_assert_eq(len, 0);
	free(data);

	cr_assert_eq(ug_file_read(tmpfd, "f", SIZE_MAX, &data, &len), 0);
	cr_assert_eq(len, 10);
	free(data);
}

/* Files in /proc report st_size 0, so reading one takes the path where the
 * file turns out bigger than fstat said. */
Test(util, file_read_grows_past_fstat_size)
{
	char *data = NULL;
	size_t len = 0;

	cr_assert_eq(ug_file_read(AT_FDCWD, "/proc/self/status", 1u << 20, &data, &len), 0);
	cr_assert_gt(len, 0);
	cr_assert_eq(strlen(data), len);
	cr_assert_not_null(strstr(data, "Name:"));
	free(data);

	cr_assert_eq(ug_file_read(AT_FDCWD, "/proc/self/status", SIZE_MAX, &data, &len), 0);
	cr_assert_not_null(strstr(data, "Pid:"));
	free(data);

	cr_assert_eq(ug_file_read(AT_FDCWD, "/proc/self/status", 8, &data, &len), -E2BIG);
	cr_assert_eq(ug_file_read(AT_FDCWD, "/proc/self/status", 0, &data, &len), -E2BIG);
}

Test(util, file_read_refuses_symlink_and_non_files, .init = tmp_setup, .fini = tmp_teardown)
{
	char *data = (char *)"sentinel";
	size_t len = 12345;

	put_file(tmpfd, "target", "secret");
	cr_assert_eq(symlinkat("target", tmpfd, "link"), 0);
	cr_assert_eq(ug_file_read(tmpfd, "link", 100, &data, &len), -ELOOP);
	cr_assert_eq(symlinkat("missing", tmpfd, "dangling"), 0);
	cr_assert_eq(ug_file_read(tmpfd, "dangling", 100, &data, &len), -ELOOP);
	cr_assert_eq(ug_file_read(tmpfd, "nothing-here", 100, &data, &len), -ENOENT);
	cr_assert_eq(mkdirat(tmpfd, "dir", 0755), 0);
	cr_assert_lt(ug_file_read(tmpfd, "dir", 100, &data, &len), 0);
	cr_assert_str_eq(data, "sentinel");
	cr_assert_eq(len, 12345);
}

/* ------------------------------------------------------------ tmpfile + commit */

Test(util, tmpfile_open_and_commit, .init = tmp_setup, .fini = tmp_teardown)
{
	char name[64], name2[64];
	struct stat st;
	int fd, fd2;

	fd = ug_tmpfile_open(tmpfd, "obj", name, sizeof(name));
	cr_assert_geq(fd, 0, "%s", strerror(-fd));
	cr_assert_not_null(strstr(name, "obj"), "name '%s' lacks the prefix", name);
	cr_assert_eq(name[0], '.', "temp files are hidden: '%s'", name);
	cr_assert_eq(fcntl(fd, F_GETFD) & FD_CLOEXEC, FD_CLOEXEC);
	cr_assert_eq(fstat(fd, &st), 0);
	cr_assert(S_ISREG(st.st_mode));
	cr_assert_eq(st.st_mode & 07777, 0600);
	cr_assert_eq(mode_of(tmpfd, name) & 07777, 0600, "the name refers to the file");

	fd2 = ug_tmpfile_open(tmpfd, "obj", name2, sizeof(name2));
	cr_assert_geq(fd2, 0);
	cr_assert_str_neq(name, name2, "two temp files share a name");
	close(fd2);
	cr_assert_eq(unlinkat(tmpfd, name2, 0), 0);

	cr_assert_eq(ug_write_all(fd, "payload", 7), 0);
	cr_assert_eq(ug_file_commit(fd, tmpfd, name, tmpfd, "final", 0644), 0);
	assert_file_eq(tmpfd, "final", "payload", 7);
	cr_assert_eq(mode_of(tmpfd, "final") & 07777, 0644);
	cr_assert_eq(faccessat(tmpfd, name, F_OK, AT_SYMLINK_NOFOLLOW), -1, "temp name still there");
	cr_assert_eq(count_entries(tmpfd, "."), 1);
	/* commit closed fd */
	cr_assert_eq(fcntl(fd, F_GETFD), -1);
	cr_assert_eq(errno, EBADF);
}

Test(util, file_commit_across_directories, .init = tmp_setup, .fini = tmp_teardown)
{
	char name[64];
	int fd, tdir, ddir;

	cr_assert_eq(mkdirat(tmpfd, "tmp", 0755), 0);
	cr_assert_eq(mkdirat(tmpfd, "dst", 0755), 0);
	tdir = openat(tmpfd, "tmp", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	ddir = openat(tmpfd, "dst", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	cr_assert(tdir >= 0 && ddir >= 0);
	fd = ug_tmpfile_open(tdir, "x", name, sizeof(name));
	cr_assert_geq(fd, 0);
	cr_assert_eq(ug_write_all(fd, "abc", 3), 0);
	cr_assert_eq(ug_file_commit(fd, tdir, name, ddir, "out", 0640), 0);
	assert_file_eq(ddir, "out", "abc", 3);
	cr_assert_eq(mode_of(ddir, "out") & 07777, 0640);
	cr_assert_eq(count_entries(tmpfd, "tmp"), 0);
	close(tdir);
	close(ddir);
}

Test(util, file_commit_failure_unlinks_temp, .init = tmp_setup, .fini = tmp_teardown)
{
	char name[64];
	int fd;

	fd = ug_tmpfile_open(tmpfd, "x", name, sizeof(name));
	cr_assert_geq(fd, 0);
	cr_assert_eq(ug_write_all(fd, "abc", 3), 0);
	cr_assert_eq(ug_file_commit(fd, tmpfd, name, tmpfd, "missing-dir/out", 0644), -ENOENT);
	cr_assert_eq(count_entries(tmpfd, "."), 0, "temp file not removed on failure");
	cr_assert_eq(fcntl(fd, F_GETFD), -1, "fd not closed on failure");
}

Test(util, tmpfile_open_bad_dir)
{
	char name[64];
	int p[2];

	cr_assert_eq(pipe2(p, O_CLOEXEC), 0);
	close(p[0]);
	close(p[1]);
	cr_assert_eq(ug_tmpfile_open(p[0], "x", name, sizeof(name)), -EBADF);
}

Test(util, fsync_dir, .init = tmp_setup, .fini = tmp_teardown)
{
	cr_assert_eq(ug_fsync_dir(tmpfd), 0);
}

/* ------------------------------------------------------------ ug_mkdir_p */

Test(util, mkdir_p_nested_and_existing, .init = tmp_setup, .fini = tmp_teardown)
{
	umask(022);
	cr_assert_eq(ug_mkdir_p(tmpfd, "a/b/c", 0755), 0);
	cr_assert(S_ISDIR(mode_of(tmpfd, "a")));
	cr_assert(S_ISDIR(mode_of(tmpfd, "a/b")));
	cr_assert(S_ISDIR(mode_of(tmpfd, "a/b/c")));
	cr_assert_eq(mode_of(tmpfd, "a/b/c") & 07777, 0755);

	/* all existing, partly existing, a single component */
	cr_assert_eq(ug_mkdir_p(tmpfd, "a/b/c", 0755), 0);
	cr_assert_eq(ug_mkdir_p(tmpfd, "a/b/d/e", 0700), 0);
	cr_assert(S_ISDIR(mode_of(tmpfd, "a/b/d/e")));
	cr_assert_eq(mode_of(tmpfd, "a/b/d") & 07777, 0700);
	cr_assert_eq(ug_mkdir_p(tmpfd, "single", 0755), 0);
	cr_assert(S_ISDIR(mode_of(tmpfd, "single")));
	cr_assert_eq(count_entries(tmpfd, "."), 2);
}

Test(util, mkdir_p_file_in_the_way, .init = tmp_setup, .fini = tmp_teardown)
{
	cr_assert_eq(ug_mkdir_p(tmpfd, "a", 0755), 0);
	put_file(tmpfd, "a/f", "x");
	cr_assert_eq(ug_mkdir_p(tmpfd, "a/f", 0755), -ENOTDIR);
	cr_assert_eq(ug_mkdir_p(tmpfd, "a/f/g", 0755), -ENOTDIR);
	cr_assert_eq(ug_mkdir_p(tmpfd, "a/f/g/h", 0755), -ENOTDIR);
	cr_assert(S_ISREG(mode_of(tmpfd, "a/f")));
}

Test(util, mkdir_p_does_not_follow_symlink, .init = tmp_setup, .fini = tmp_teardown)
{
	cr_assert_eq(mkdirat(tmpfd, "real", 0755), 0);
	cr_assert_eq(symlinkat("real", tmpfd, "link"), 0);
	cr_assert_eq(ug_mkdir_p(tmpfd, "link/x", 0755), -ENOTDIR);
	cr_assert_eq(count_entries(tmpfd, "real"), 0, "created through a symlink");
}

Test(util, mkdir_p_too_long, .init = tmp_setup, .fini = tmp_teardown)
{
	static char path[UG_PATH_MAX + 10];

	memset(path, 'a', sizeof(path) - 1);
	path[sizeof(path) - 1] = '\0';
	cr_assert_eq(ug_mkdir_p(tmpfd, path, 0755), -ENAMETOOLONG);
	cr_assert_eq(count_entries(tmpfd, "."), 0);
}

/* ------------------------------------------------------------ ug_open_beneath */

static void make_tree(void)
{
	cr_assert_eq(ug_mkdir_p(tmpfd, "a/b", 0755), 0);
	put_file(tmpfd, "a/b/f", "nested");
	put_file(tmpfd, "a/file", "plain");
}

Test(util, open_beneath_normal_nested, .init = tmp_setup, .fini = tmp_teardown)
{
	char buf[16];
	int fd;

	make_tree();
	fd = ug_open_beneath(tmpfd, "a/b/f", O_RDONLY, 0);
	cr_assert_geq(fd, 0, "%s", strerror(-fd));
	cr_assert_eq(fcntl(fd, F_GETFD) & FD_CLOEXEC, FD_CLOEXEC);
	cr_assert_eq(ug_read_full(fd, buf, sizeof(buf)), 6);
	cr_assert(memcmp(buf, "nested", 6) == 0);
	close(fd);

	fd = ug_open_beneath(tmpfd, "a/file", O_RDONLY, 0);
	cr_assert_geq(fd, 0);
	close(fd);

	/* creating through it works too */
	fd = ug_open_beneath(tmpfd, "a/b/new", O_WRONLY | O_CREAT | O_EXCL, 0600);
	cr_assert_geq(fd, 0, "%s", strerror(-fd));
	cr_assert_eq(ug_write_all(fd, "n", 1), 0);
	close(fd);
	assert_file_eq(tmpfd, "a/b/new", "n", 1);
	cr_assert_eq(mode_of(tmpfd, "a/b/new") & 07777, 0600);

	fd = ug_open_beneath(tmpfd, "a/b", O_RDONLY | O_DIRECTORY, 0);
	cr_assert_geq(fd, 0);
	close(fd);
}

Test(util, open_beneath_refuses_symlink_in_middle, .init = tmp_setup, .fini = tmp_teardown)
{
	make_tree();
	cr_assert_eq(symlinkat("b", tmpfd, "a/lnk"), 0);
	cr_assert_eq(symlinkat("a", tmpfd, "top"), 0);
	cr_assert_eq(ug_open_beneath(tmpfd, "a/lnk/f", O_RDONLY, 0), -ELOOP);
	cr_assert_eq(ug_open_beneath(tmpfd, "top/b/f", O_RDONLY, 0), -ELOOP);
	/* an absolute symlink pointing outside the tree */
	cr_assert_eq(symlinkat("/", tmpfd, "a/root"), 0);
	cr_assert_eq(ug_open_beneath(tmpfd, "a/root/etc/passwd", O_RDONLY, 0), -ELOOP);
	/* nothing was created through a symlink */
	cr_assert_eq(ug_open_beneath(tmpfd, "a/lnk/made", O_WRONLY | O_CREAT, 0644), -ELOOP);
	cr_assert_eq(count_entries(tmpfd, "a/b"), 1);
}

Test(util, open_beneath_refuses_symlink_last, .init = tmp_setup, .fini = tmp_teardown)
{
	make_tree();
	cr_assert_eq(symlinkat("b/f", tmpfd, "a/flink"), 0);
	cr_assert_eq(symlinkat("b", tmpfd, "a/dlink"), 0);
	cr_assert_eq(ug_open_beneath(tmpfd, "a/flink", O_RDONLY, 0), -ELOOP);
	cr_assert_eq(ug_open_beneath(tmpfd, "a/dlink", O_RDONLY, 0), -ELOOP);
	cr_assert_eq(ug_open_beneath(tmpfd, "a/dlink", O_RDONLY | O_DIRECTORY, 0), -ELOOP);
	cr_assert_eq(ug_open_beneath(tmpfd, "a/flink", O_WRONLY | O_TRUNC, 0), -ELOOP);
	assert_file_eq(tmpfd, "a/b/f", "nested", 6);
}

Test(util, open_beneath_other_errors, .init = tmp_setup, .fini = tmp_teardown)
{
	make_tree();
	cr_assert_eq(ug_open_beneath(tmpfd, "a/missing", O_RDONLY, 0), -ENOENT);
	cr_assert_eq(ug_open_beneath(tmpfd, "a/missing/f", O_RDONLY, 0), -ENOENT);
	/* a regular file in the middle is not a symlink */
	cr_assert_eq(ug_open_beneath(tmpfd, "a/file/x", O_RDONLY, 0), -ENOTDIR);
	/* ".." would leave the tree without any symlink */
	cr_assert_eq(ug_open_beneath(tmpfd, "a/../a/file", O_RDONLY, 0), -EINVAL);
	cr_assert_eq(ug_open_beneath(tmpfd, "..", O_RDONLY | O_DIRECTORY, 0), -EINVAL);
	cr_assert_lt(ug_open_beneath(tmpfd, "/etc/passwd", O_RDONLY, 0), 0);
}

/* ------------------------------------------------------------ time */

Test(util, time_format_known)
{
	char out[32];

	ug_time_format(0, out);
	cr_assert_str_eq(out, "1970-01-01T00:00:00Z");
	ug_time_format(1795614000, out);
	cr_assert_str_eq(out, "2026-11-25T13:40:00Z");
	ug_time_format(1709251199, out);
	cr_assert_str_eq(out, "2024-02-29T23:59:59Z");
	ug_time_format(4102444800, out);
	cr_assert_str_eq(out, "2100-01-01T00:00:00Z");
	ug_time_format(-1, out);
	cr_assert_str_eq(out, "1969-12-31T23:59:59Z");
}

Test(util, time_round_trip)
{
	static const int64_t ts[] = {
		0, 1, -1, 59, 86399, 86400, 951782400 /* 2000-02-29 */, 1709251199,
		1795614000, 2147483647, 2147483648, 4102444800, 253402300799 /* 9999-12-31 */,
	};
	char out[32];

	for (size_t i = 0; i < sizeof(ts) / sizeof(ts[0]); i++) {
		int64_t back = 42;
		ug_time_format(ts[i], out);
		cr_assert_eq(ug_time_parse(out, &back), 0, "'%s' not parsed", out);
		cr_assert_eq(back, ts[i], "'%s' -> %lld, want %lld", out, (long long)back,
			     (long long)ts[i]);
	}
}

Test(util, time_parse_rejects_garbage)
{
	static const char *bad[] = {
		"", "garbage", "2026", "2026-11-25", "2026-11-25T13:40:00",
		"2026-11-25 13:40:00Z", "2026-11-25T13:40:00Z ", " 2026-11-25T13:40:00Z",
		"2026-11-25T13:40:00+01:00", "2026-11-25T13:40:00z", "2026-11-25T13:40Z",
		"2026-11-25T13:40:00.5Z", "2026-13-01T00:00:00Z", "2026-00-10T00:00:00Z",
		"2026-11-32T00:00:00Z", "2026-11-25T24:00:00Z", "2026-11-25T13:60:00Z",
		"2026-02-31T00:00:00Z", "2025-02-29T00:00:00Z", "2026-1-5T01:02:03Z",
		"2026-11-25T13:40:00ZZ", "2026-11-25T13:40:00Z\n", "@1795614000",
	};

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		int64_t t = 42;
		cr_assert_eq(ug_time_parse(bad[i], &t), -EINVAL, "'%s' accepted", bad[i]);
		cr_assert_eq(t, 42, "ret set on failure for '%s'", bad[i]);
	}
}

Test(util, now_and_ncpus)
{
	cr_assert_gt(ug_now(), 1700000000, "clock before 2023?");
	cr_assert_geq(ug_ncpus(), 1);
}

/* ------------------------------------------------------------ ug_bytes_format */

Test(util, bytes_format)
{
	static const struct { uint64_t n; const char *want; } v[] = {
		{ 0, "0 B" },
		{ 1, "1 B" },
		{ 1023, "1023 B" },
		{ 1024, "1.0 KiB" },
		{ 1536, "1.5 KiB" },
		{ 1u << 20, "1.0 MiB" },
		{ 5ull << 30, "5.0 GiB" },
		{ 3ull << 29, "1.5 GiB" },
		{ 1ull << 40, "1.0 TiB" },
		{ 1ull << 50, "1024.0 TiB" },
		{ UINT64_MAX, "16777216.0 TiB" },
	};
	char out[32];

	for (size_t i = 0; i < sizeof(v) / sizeof(v[0]); i++) {
		memset(out, 'X', sizeof(out));
		ug_bytes_format(v[i].n, out);
		cr_assert_str_eq(out, v[i].want);
	}
}

Test(util, utf8_valid)
{
	cr_assert(ug_utf8_valid("", 0));
	cr_assert(ug_utf8_valid("plain/ascii.txt", 15));
	cr_assert(ug_utf8_valid("caf\xc3\xa9", 5));               /* U+00E9 */
	cr_assert(ug_utf8_valid("\xe2\x82\xac", 3));              /* U+20AC */
	cr_assert(ug_utf8_valid("\xf0\x9f\x98\x80", 4));          /* U+1F600 */
	cr_assert_not(ug_utf8_valid("caf\xe9", 4));               /* Latin-1 */
	cr_assert_not(ug_utf8_valid("\xc0\xaf", 2));              /* overlong '/' */
	cr_assert_not(ug_utf8_valid("\xe0\x80\xaf", 3));          /* overlong */
	cr_assert_not(ug_utf8_valid("\xed\xa0\x80", 3));          /* surrogate */
	cr_assert_not(ug_utf8_valid("\xf4\x90\x80\x80", 4));      /* > U+10FFFF */
	cr_assert_not(ug_utf8_valid("\xe2\x82", 2));              /* truncated */
	cr_assert_not(ug_utf8_valid("\x80", 1));                  /* lone continuation */
}

Test(util, path_check_rejects_invalid_utf8)
{
	struct ug_error e = { "" };

	cr_assert_eq(ug_path_check("dir/caf\xe9.txt", &e), -EINVAL);
	cr_assert(strstr(e.msg, "UTF-8") != NULL, "message: %s", e.msg);
	cr_assert_eq(ug_path_check("dir/caf\xc3\xa9.txt", NULL), 0);
}

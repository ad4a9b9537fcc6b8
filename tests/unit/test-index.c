/* test-index.c - the publish stat cache. */
#include "config.h"

#include <criterion/criterion.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "index.h"
#include "tmpdir.h"

static struct ug_store *S;
static const int64_t NOW = 1900000000ll * 1000000000ll;

static void setup(void)
{
	char repo[128];
	struct ug_error e = { "" };

	ug_test_tmp_make("index");
	snprintf(repo, sizeof(repo), "%s/repo", tmpdir);
	cr_assert_eq(ug_store_create(repo, &e), 0, "%s", e.msg);
	cr_assert_eq(ug_store_open(repo, &S, &e), 0, "%s", e.msg);
}

static void teardown(void)
{
	ug_store_free(S);
	ug_test_tmp_remove();
}

TestSuite(index, .init = setup, .fini = teardown);

static struct ug_scan_entry entry(const char *path, uint64_t ino, int64_t mtime)
{
	struct ug_scan_entry e = { 0 };

	e.path = (char *)path;
	e.type = UG_SCAN_FILE;
	e.dev = 42;
	e.ino = ino;
	e.size = 100 + ino;
	e.mtime_ns = mtime;
	e.ctime_ns = mtime;
	return e;
}

static void add(struct ug_index *ix, const char *path, uint64_t ino, int64_t mtime)
{
	struct ug_scan_entry e = entry(path, ino, mtime);
	struct ug_hash h;
	struct ug_xxh x;

	ug_hash_buf(path, strlen(path), &h, &x);
	cr_assert_eq(ug_index_add(ix, &e, &h, &x), 0);
}

Test(index, round_trip_and_lookup)
{
	struct ug_index ix = { 0 }, back = { 0 };
	struct ug_scan_entry e;
	const struct ug_index_entry *x;
	struct ug_hash h;

	add(&ix, "a", 1, NOW - 10000000000ll);
	add(&ix, "dir/b", 2, NOW - 10000000000ll);
	cr_assert_eq(ug_index_save(S, "stable", &ix, NOW), 0);
	cr_assert_eq(ug_index_load(S, "stable", &back), 0);
	cr_assert_eq(back.n, 2);

	e = entry("dir/b", 2, NOW - 10000000000ll);
	x = ug_index_lookup(&back, &e);
	cr_assert_not_null(x);
	ug_hash_buf("dir/b", 5, &h, NULL);
	cr_assert(ug_hash_eq(&x->hash, &h));

	/* any change of identity is a miss: inode, size, mtime, ctime, path */
	e.ino = 3;
	cr_assert_null(ug_index_lookup(&back, &e));
	e = entry("dir/b", 2, NOW - 10000000000ll);
	e.size++;
	cr_assert_null(ug_index_lookup(&back, &e));
	e = entry("dir/b", 2, NOW - 10000000000ll);
	e.ctime_ns++;
	cr_assert_null(ug_index_lookup(&back, &e), "chmod or touch -d changes ctime");
	e = entry("dir/b", 2, NOW - 10000000000ll);
	e.mtime_ns--;
	cr_assert_null(ug_index_lookup(&back, &e));
	e = entry("dir/c", 2, NOW - 10000000000ll);
	cr_assert_null(ug_index_lookup(&back, &e));
	ug_index_release(&ix);
	ug_index_release(&back);
}

Test(index, racily_clean_entries_are_not_saved)
{
	struct ug_index ix = { 0 }, back = { 0 };

	add(&ix, "old", 1, NOW - 10000000000ll);
	add(&ix, "young", 2, NOW - 1000000000ll); /* modified 1 s before the scan */
	cr_assert_eq(ug_index_save(S, "stable", &ix, NOW), 0);
	cr_assert_eq(ug_index_load(S, "stable", &back), 0);
	cr_assert_eq(back.n, 1);
	cr_assert_str_eq(back.e[0].path, "old");
	ug_index_release(&ix);
	ug_index_release(&back);
}

Test(index, missing_index_is_empty)
{
	struct ug_index ix = { 0 };

	cr_assert_eq(ug_index_load(S, "stable", &ix), 0);
	cr_assert_eq(ix.n, 0);
	cr_assert_eq(ug_index_load(S, "../evil", &ix), -EINVAL);
}

Test(index, corrupt_index_is_refused_whole)
{
	struct ug_index ix = { 0 }, back = { 0 };
	char path[256];
	char *data;
	size_t len;

	add(&ix, "a", 1, NOW - 10000000000ll);
	add(&ix, "b", 2, NOW - 10000000000ll);
	cr_assert_eq(ug_index_save(S, "stable", &ix, NOW), 0);
	snprintf(path, sizeof(path), "%s/repo/cache/stable.index", tmpdir);
	cr_assert_eq(ug_file_read(AT_FDCWD, path, 1 << 20, &data, &len), 0);

	/* every truncation */
	for (size_t cut = 0; cut < len; cut++) {
		cr_assert_eq(ug_file_write_atomic(AT_FDCWD, path, data, cut, 0644), 0);
		cr_assert_eq(ug_index_load(S, "stable", &back), -EBADMSG, "cut at %zu", cut);
		cr_assert_eq(back.n, 0);
	}
	/* trailing junk */
	{
		char *more = malloc(len + 1);
		memcpy(more, data, len);
		more[len] = 'x';
		cr_assert_eq(ug_file_write_atomic(AT_FDCWD, path, more, len + 1, 0644), 0);
		cr_assert_eq(ug_index_load(S, "stable", &back), -EBADMSG);
		free(more);
	}
	/* a huge count, a bad magic, unsorted paths */
	data[8] = 0x7f;
	cr_assert_eq(ug_file_write_atomic(AT_FDCWD, path, data, len, 0644), 0);
	cr_assert_eq(ug_index_load(S, "stable", &back), -EBADMSG);
	data[8] = 0;
	data[0] = 'X';
	cr_assert_eq(ug_file_write_atomic(AT_FDCWD, path, data, len, 0644), 0);
	cr_assert_eq(ug_index_load(S, "stable", &back), -EBADMSG);
	data[0] = 'U';
	data[20] = 'c'; /* first path "a" -> "c", after "b": unsorted */
	cr_assert_eq(ug_file_write_atomic(AT_FDCWD, path, data, len, 0644), 0);
	cr_assert_eq(ug_index_load(S, "stable", &back), -EBADMSG);
	free(data);
	ug_index_release(&ix);
}

/* tmpdir.h - one private temp dir per Criterion test.
 *
 * Criterion runs each test in its own forked process, so these statics
 * belong to the test using them. Call ug_test_tmp_make() from a suite's
 * .init and ug_test_tmp_remove() from its .fini. */
#ifndef UG_TEST_TMPDIR_H
#define UG_TEST_TMPDIR_H

#include <criterion/criterion.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

static char tmpdir[64];
static int tmpfd = -1; /* tmpdir, open */

static int ug_test_rm_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	(void)st;
	(void)flag;
	(void)ftw;
	return remove(path);
}

__attribute__((unused)) static void ug_test_tmp_make(const char *suite)
{
	snprintf(tmpdir, sizeof(tmpdir), "/tmp/ug-test-%s-XXXXXX", suite);
	cr_assert_not_null(mkdtemp(tmpdir), "mkdtemp: %s", strerror(errno));
	tmpfd = open(tmpdir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	cr_assert_geq(tmpfd, 0, "open '%s': %s", tmpdir, strerror(errno));
}

__attribute__((unused)) static void ug_test_tmp_remove(void)
{
	if (tmpfd >= 0)
		close(tmpfd);
	tmpfd = -1;
	if (tmpdir[0])
		nftw(tmpdir, ug_test_rm_entry, 16, FTW_DEPTH | FTW_PHYS);
}

#endif

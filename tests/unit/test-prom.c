/* test-prom.c - unit tests for src/prom.c: the text exposition format
 * (HELP and TYPE lines, samples, label escaping), name checks, the size
 * cap, and the atomic replace of the metrics file. */
#include "config.h"

#include <criterion/criterion.h>

#include <dirent.h>
#include <fcntl.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "prom.h"

#include "tmpdir.h"

static void tmp_setup(void)
{
	ug_test_tmp_make("prom");
}

static void tmp_teardown(void)
{
	ug_test_tmp_remove();
}

static void assert_text(struct ug_prom *p, const char *want)
{
	size_t len = 0;
	const char *got = ug_prom_text(p, &len);

	cr_assert_not_null(got, "building failed: %d", p->err);
	cr_assert_str_eq(got, want);
	cr_assert_eq(len, strlen(want));
}

Test(prom, family_and_samples)
{
	struct ug_prom p;
	struct ug_prom_label l[] = { { "terminal", "t-1" }, { "channel", "stable" } };

	ug_prom_init(&p);
	ug_prom_family(&p, "upgrid_terminal_installed_version", UG_PROM_GAUGE,
		       "Version the install root points to (0: none).");
	ug_prom_sample_u64(&p, l, 2, 42);
	ug_prom_family(&p, "upgrid_terminal_pulled_bytes_total", UG_PROM_COUNTER,
		       "Bytes pulled over all attempts.");
	ug_prom_sample_u64(&p, l, 2, 18446744073709551615ull);
	ug_prom_family(&p, "up", UG_PROM_GAUGE, "No labels.");
	ug_prom_sample(&p, NULL, 0, 1);
	assert_text(&p,
		    "# HELP upgrid_terminal_installed_version Version the install root points to (0: none).\n"
		    "# TYPE upgrid_terminal_installed_version gauge\n"
		    "upgrid_terminal_installed_version{terminal=\"t-1\",channel=\"stable\"} 42\n"
		    "# HELP upgrid_terminal_pulled_bytes_total Bytes pulled over all attempts.\n"
		    "# TYPE upgrid_terminal_pulled_bytes_total counter\n"
		    "upgrid_terminal_pulled_bytes_total{terminal=\"t-1\",channel=\"stable\"} 18446744073709551615\n"
		    "# HELP up No labels.\n"
		    "# TYPE up gauge\n"
		    "up 1\n");
	ug_prom_release(&p);
}

Test(prom, label_values_escaped)
{
	struct ug_prom p;
	struct ug_prom_label l[] = { { "id", "a\\b\"c\nd" } };

	ug_prom_init(&p);
	ug_prom_family(&p, "m", UG_PROM_GAUGE, "back\\slash and\nnewline in help");
	ug_prom_sample_u64(&p, l, 1, 1);
	assert_text(&p,
		    "# HELP m back\\\\slash and\\nnewline in help\n"
		    "# TYPE m gauge\n"
		    "m{id=\"a\\\\b\\\"c\\nd\"} 1\n");
	ug_prom_release(&p);
}

Test(prom, escape_label_utf8)
{
	struct ug_buf b;

	ug_buf_init(&b, 1024);
	/* valid UTF-8 passes as it is */
	cr_assert_eq(ug_prom_escape_label(&b, "caf\xc3\xa9"), 0);
	cr_assert_eq(b.len, 5);
	cr_assert(memcmp(b.data, "caf\xc3\xa9", 5) == 0);
	ug_buf_reset(&b);
	/* a lone continuation byte and a truncated sequence: replaced */
	cr_assert_eq(ug_prom_escape_label(&b, "a\x80z\xc3"), 0);
	cr_assert_eq(b.len, 4);
	cr_assert(memcmp(b.data, "a?z?", 4) == 0);
	ug_buf_release(&b);
}

Test(prom, values)
{
	struct ug_prom p;

	ug_prom_init(&p);
	ug_prom_family(&p, "v", UG_PROM_GAUGE, "values");
	ug_prom_sample(&p, NULL, 0, 0.1);
	ug_prom_sample(&p, NULL, 0, 1.0 / 3.0);
	ug_prom_sample(&p, NULL, 0, 1e21);
	ug_prom_sample(&p, NULL, 0, -2.5);
	ug_prom_sample(&p, NULL, 0, NAN);
	ug_prom_sample(&p, NULL, 0, INFINITY);
	ug_prom_sample(&p, NULL, 0, -INFINITY);
	assert_text(&p, "# HELP v values\n# TYPE v gauge\n"
		    "v 0.1\nv 0.3333333333333333\nv 1e+21\nv -2.5\nv NaN\nv +Inf\nv -Inf\n");
	ug_prom_release(&p);
}

Test(prom, bad_names_are_errors)
{
	static const char *const bad[] = { "", "1abc", "a-b", "a b", "__reserved", "é" };
	struct ug_prom_label l = { "ok", "v" };

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		struct ug_prom p;
		struct ug_prom_label bl = { bad[i], "v" };

		ug_prom_init(&p);
		ug_prom_family(&p, bad[i], UG_PROM_GAUGE, "x");
		cr_assert_eq(p.err, -EINVAL, "metric name '%s' accepted", bad[i]);
		cr_assert_null(ug_prom_text(&p, NULL));
		ug_prom_release(&p);

		ug_prom_init(&p);
		ug_prom_family(&p, "m", UG_PROM_GAUGE, "x");
		ug_prom_sample_u64(&p, &bl, 1, 1);
		cr_assert_eq(p.err, -EINVAL, "label name '%s' accepted", bad[i]);
		ug_prom_release(&p);
	}
	{
		struct ug_prom p;
		struct ug_prom_label colon = { "a:b", "v" };

		/* a colon is for recording rules' metric names, not labels */
		ug_prom_init(&p);
		ug_prom_family(&p, "job:m:rate5m", UG_PROM_GAUGE, "x");
		cr_assert_eq(p.err, 0);
		ug_prom_sample_u64(&p, &colon, 1, 1);
		cr_assert_eq(p.err, -EINVAL);
		ug_prom_release(&p);

		/* a counter must be named *_total */
		ug_prom_init(&p);
		ug_prom_family(&p, "upgrid_bytes", UG_PROM_COUNTER, "x");
		cr_assert_eq(p.err, -EINVAL);
		ug_prom_release(&p);

		/* a sample before any family, a NULL label value */
		ug_prom_init(&p);
		ug_prom_sample_u64(&p, &l, 1, 1);
		cr_assert_eq(p.err, -EINVAL);
		ug_prom_release(&p);
		ug_prom_init(&p);
		ug_prom_family(&p, "m", UG_PROM_GAUGE, "x");
		l.value = NULL;
		ug_prom_sample_u64(&p, &l, 1, 1);
		cr_assert_eq(p.err, -EINVAL);
		ug_prom_release(&p);
	}
}

Test(prom, first_error_sticks)
{
	struct ug_prom p;
	struct ug_error e = { "" };

	ug_prom_init(&p);
	ug_prom_family(&p, "bad-name", UG_PROM_GAUGE, "x");
	ug_prom_family(&p, "good", UG_PROM_GAUGE, "x");
	ug_prom_sample_u64(&p, NULL, 0, 1);
	cr_assert_eq(p.err, -EINVAL);
	cr_assert_eq(p.out.len, 0, "calls after an error wrote something");
	cr_assert_eq(ug_prom_write(&p, "/nonexistent/x.prom", &e), -EINVAL);
	cr_assert(strstr(e.msg, "x.prom") != NULL, "message: %s", e.msg);
	ug_prom_release(&p);
}

Test(prom, size_cap)
{
	struct ug_prom p;
	struct ug_error e = { "" };
	char v[4096];
	struct ug_prom_label l = { "pad", v };
	size_t n = 0;

	memset(v, 'x', sizeof(v) - 1);
	v[sizeof(v) - 1] = '\0';
	ug_prom_init(&p);
	ug_prom_family(&p, "m", UG_PROM_GAUGE, "x");
	while (p.err == 0 && n++ < UG_PROM_MAX / 1000)
		ug_prom_sample_u64(&p, &l, 1, n);
	cr_assert_eq(p.err, -E2BIG);
	cr_assert_leq(p.out.len, UG_PROM_MAX);
	cr_assert_eq(ug_prom_write(&p, "x.prom", &e), -E2BIG);
	cr_assert(strstr(e.msg, "larger than") != NULL, "message: %s", e.msg);
	ug_prom_release(&p);
}

/* The entries of the temp dir other than "." and "..", as one string. */
static void list_dir(char *out, size_t n)
{
	DIR *d = opendir(tmpdir);
	struct dirent *de;

	cr_assert_not_null(d);
	out[0] = '\0';
	while ((de = readdir(d)))
		if (strcmp(de->d_name, ".") && strcmp(de->d_name, ".."))
			snprintf(out + strlen(out), n - strlen(out), "%s ", de->d_name);
	closedir(d);
}

Test(prom, atomic_replace, .init = tmp_setup, .fini = tmp_teardown)
{
	struct ug_prom p;
	struct ug_error e = { "" };
	char path[128], names[256], *data = NULL;
	struct stat st1, st2;
	size_t len;

	snprintf(path, sizeof(path), "%s/upgrid.prom", tmpdir);
	ug_prom_init(&p);
	ug_prom_family(&p, "m", UG_PROM_GAUGE, "first");
	ug_prom_sample_u64(&p, NULL, 0, 1);
	cr_assert_eq(ug_prom_write(&p, path, &e), 0, "%s", e.msg);
	ug_prom_release(&p);
	cr_assert_eq(stat(path, &st1), 0);
	cr_assert_eq(st1.st_mode & 07777, 0644, "mode %o: node_exporter cannot read it",
		     st1.st_mode & 07777);

	/* a reader holding the old file keeps reading the old content: the
	 * new one replaces it by rename, not by rewriting it in place */
	int held = open(path, O_RDONLY | O_CLOEXEC);
	cr_assert_geq(held, 0);
	ug_prom_init(&p);
	ug_prom_family(&p, "m", UG_PROM_GAUGE, "second");
	ug_prom_sample_u64(&p, NULL, 0, 2);
	cr_assert_eq(ug_prom_write(&p, path, &e), 0, "%s", e.msg);
	ug_prom_release(&p);
	cr_assert_eq(stat(path, &st2), 0);
	cr_assert_neq(st1.st_ino, st2.st_ino, "the file was rewritten in place");
	{
		char old[64] = "";
		ssize_t k = read(held, old, sizeof(old) - 1);
		cr_assert_gt(k, 0);
		cr_assert(strstr(old, "first") != NULL, "the old file changed under its reader");
		close(held);
	}
	cr_assert_eq(ug_file_read(AT_FDCWD, path, 4096, &data, &len), 0);
	cr_assert_str_eq(data, "# HELP m second\n# TYPE m gauge\nm 2\n");
	free(data);
	/* no temporary file left beside it */
	list_dir(names, sizeof(names));
	cr_assert_str_eq(names, "upgrid.prom ");
}

Test(prom, write_errors, .init = tmp_setup, .fini = tmp_teardown)
{
	struct ug_prom p;
	struct ug_error e = { "" };
	char path[160], names[256];

	ug_prom_init(&p);
	ug_prom_family(&p, "m", UG_PROM_GAUGE, "x");
	ug_prom_sample_u64(&p, NULL, 0, 1);
	snprintf(path, sizeof(path), "%s/missing/upgrid.prom", tmpdir);
	cr_assert_eq(ug_prom_write(&p, path, &e), -ENOENT);
	cr_assert(strstr(e.msg, "missing/upgrid.prom") && strstr(e.msg, "directory does not exist"),
		  "message: %s", e.msg);
	/* a directory in the way: the write fails, nothing is left behind */
	snprintf(path, sizeof(path), "%s/dir.prom", tmpdir);
	cr_assert_eq(mkdir(path, 0755), 0);
	cr_assert_lt(ug_prom_write(&p, path, &e), 0);
	cr_assert(strstr(e.msg, "dir.prom") != NULL, "message: %s", e.msg);
	list_dir(names, sizeof(names));
	cr_assert_str_eq(names, "dir.prom ");
	cr_assert_eq(ug_prom_write(&p, "", &e), -EINVAL);
	ug_prom_release(&p);
}

/* test-progress.c - unit tests for src/progress.c: the line's text (bytes,
 * percent, rate, time left), the delay before the first draw, the rate
 * limit on redraws, blanking at the end, cutting to the terminal width,
 * and nothing for a non-TTY. */
#include "config.h"

#include <criterion/criterion.h>

#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "progress.h"

Test(progress, format)
{
	char line[UG_PROGRESS_LINE_MAX + 1];
	size_t n;

	/* 1.2 MiB of 2.5 MiB after 3 s at 400 KiB/s: 1.3 MiB left, 4 s */
	n = ug_progress_format(line, sizeof(line), "object 3f2a1c0b9d8e7f6a", 1258292,
			       2621440, 1228800, 3000);
	cr_assert_str_eq(line, "object 3f2a1c0b9d8e7f6a: 1.2 MiB of 2.5 MiB (48%), "
			 "400.0 KiB/s, 4 s left");
	cr_assert_eq(n, strlen(line));

	/* minutes, hours */
	ug_progress_format(line, sizeof(line), "delta ab", 0, 1024 * 125, 1024, 1000);
	cr_assert_str_eq(line, "delta ab: 0 B of 125.0 KiB (0%), 1.0 KiB/s, 2 min 5 s left");
	ug_progress_format(line, sizeof(line), "x", 0, 3723, 1, 1000);
	cr_assert_str_eq(line, "x: 0 B of 3.6 KiB (0%), 1 B/s, 1 h 2 min left");
	/* a partial second left is a second, not 0 s */
	ug_progress_format(line, sizeof(line), "x", 999, 1000, 100, 1000);
	cr_assert_str_eq(line, "x: 999 B of 1000 B (99%), 100 B/s, 1 s left");
	/* nothing came: stalled, no rate or time */
	ug_progress_format(line, sizeof(line), "x", 500, 1000, 0, 2000);
	cr_assert_str_eq(line, "x: 500 B of 1000 B (50%), stalled");
	/* a time beyond 99 hours is no estimate: the rate alone */
	ug_progress_format(line, sizeof(line), "x", 0, 1ull << 40, 1, 1000);
	cr_assert_str_eq(line, "x: 0 B of 1.0 TiB (0%), 1 B/s");
	/* an empty blob is complete */
	ug_progress_format(line, sizeof(line), "x", 0, 0, 0, 1000);
	cr_assert_str_eq(line, "x: 0 B of 0 B (100%), stalled");
	/* cut to the buffer */
	n = ug_progress_format(line, 10, "object 3f2a1c0b9d8e7f6a", 1, 2, 1, 1);
	cr_assert_eq(n, 9);
	cr_assert_str_eq(line, "object 3f");
}

/* A display writing into a pipe; what it wrote, as a string. */
struct rig {
	int rd, wr;
	struct ug_progress p;
};

static void rig_open(struct rig *g, unsigned columns)
{
	int fds[2];

	cr_assert_eq(pipe2(fds, O_CLOEXEC | O_NONBLOCK), 0);
	g->rd = fds[0];
	g->wr = fds[1];
	ug_progress_init(&g->p, g->wr, columns);
}

static const char *drain(struct rig *g)
{
	static char buf[4096];
	ssize_t n = read(g->rd, buf, sizeof(buf) - 1);

	buf[n > 0 ? n : 0] = '\0';
	return buf;
}

static void rig_close(struct rig *g)
{
	close(g->rd);
	close(g->wr);
}

Test(progress, delay_rate_limit_and_clear)
{
	struct rig g;
	const char *w = "object aa";

	rig_open(&g, 200);
	/* start at t = 1000 ms: 0 of 10000 bytes */
	ug_progress_update_at(&g.p, 1000, w, 0, 10000, false);
	ug_progress_update_at(&g.p, 1200, w, 1000, 10000, false);
	ug_progress_update_at(&g.p, 1499, w, 1500, 10000, false);
	cr_assert_str_eq(drain(&g), "", "drawn before the download ran 500 ms");

	ug_progress_update_at(&g.p, 1500, w, 2000, 10000, false);
	cr_assert_str_eq(drain(&g), "\robject aa: 2.0 KiB of 9.8 KiB (20%), 3.9 KiB/s, 2 s left");
	/* frames within 250 ms of the last draw: nothing */
	ug_progress_update_at(&g.p, 1600, w, 3000, 10000, false);
	ug_progress_update_at(&g.p, 1749, w, 3500, 10000, false);
	cr_assert_str_eq(drain(&g), "");
	ug_progress_update_at(&g.p, 1750, w, 3500, 10000, false);
	cr_assert_str_eq(drain(&g), "\robject aa: 3.4 KiB of 9.8 KiB (35%), 4.6 KiB/s, 2 s left");
	ug_progress_update_at(&g.p, 2000, w, 10000, 10000, false);
	cr_assert_str_eq(drain(&g), "\robject aa: 9.8 KiB of 9.8 KiB (100%), 9.8 KiB/s, 0 s left");
	/* the end: the line is blanked and the cursor back at its start */
	ug_progress_update_at(&g.p, 2001, w, 10000, 10000, true);
	{
		char want[128];
		size_t n = strlen("object aa: 9.8 KiB of 9.8 KiB (100%), 9.8 KiB/s, 0 s left");
		want[0] = '\r';
		memset(want + 1, ' ', n);
		want[n + 1] = '\r';
		want[n + 2] = '\0';
		cr_assert_str_eq(drain(&g), want);
	}
	cr_assert_eq(g.p.shown, 0);
	rig_close(&g);
}

Test(progress, short_downloads_never_drawn)
{
	struct rig g;

	rig_open(&g, 200);
	for (int i = 0; i < 50; i++) {
		int64_t t = 1000 + i * 100;
		char what[32];

		/* each download takes 90 ms: none reaches the delay */
		snprintf(what, sizeof(what), "object %02d", i);
		ug_progress_update_at(&g.p, t, what, 0, 100, false);
		ug_progress_update_at(&g.p, t + 90, what, 100, 100, false);
		ug_progress_update_at(&g.p, t + 90, what, 100, 100, true);
	}
	cr_assert_str_eq(drain(&g), "");
	rig_close(&g);
}

Test(progress, resumed_rate_and_new_download)
{
	struct rig g;

	rig_open(&g, 200);
	/* resumed at 5000: the rate counts only the bytes moved now */
	ug_progress_update_at(&g.p, 0, "object bb", 5000, 10000, false);
	ug_progress_update_at(&g.p, 1000, "object bb", 6000, 10000, false);
	cr_assert_str_eq(drain(&g), "\robject bb: 5.9 KiB of 9.8 KiB (60%), 1000 B/s, 4 s left");
	/* a failed download ends it too */
	ug_progress_update_at(&g.p, 1100, "object bb", 5000, 10000, true);
	cr_assert_eq(g.p.shown, 0);
	cr_assert(!g.p.active);
	drain(&g);
	/* the next one has its own clock */
	ug_progress_update_at(&g.p, 1200, "object cc", 0, 10000, false);
	ug_progress_update_at(&g.p, 1600, "object cc", 10, 10000, false);
	cr_assert_str_eq(drain(&g), "");
	ug_progress_update_at(&g.p, 1700, "object cc", 5000, 10000, false);
	cr_assert_str_eq(drain(&g), "\robject cc: 4.9 KiB of 9.8 KiB (50%), 9.8 KiB/s, 1 s left");
	/* clear is idempotent */
	ug_progress_clear(&g.p);
	drain(&g);
	ug_progress_clear(&g.p);
	cr_assert_str_eq(drain(&g), "");
	rig_close(&g);
}

Test(progress, shorter_line_blanks_the_rest)
{
	const char *l1 = "object dd: 4.9 KiB of 976.6 KiB (0%), 4.9 KiB/s, 3 min 19 s left";
	const char *l2 = "object dd: 878.9 KiB of 976.6 KiB (90%), 703.1 KiB/s, 1 s left";
	char want[256];
	struct rig g;

	rig_open(&g, 200);
	ug_progress_update_at(&g.p, 0, "object dd", 0, 1000000, false);
	ug_progress_update_at(&g.p, 1000, "object dd", 5000, 1000000, false);
	snprintf(want, sizeof(want), "\r%s", l1);
	cr_assert_str_eq(drain(&g), want);
	ug_progress_update_at(&g.p, 1250, "object dd", 900000, 1000000, false);
	cr_assert_lt(strlen(l2), strlen(l1));
	snprintf(want, sizeof(want), "\r%s%*s\r", l2, (int)(strlen(l1) - strlen(l2)), "");
	cr_assert_str_eq(drain(&g), want);
	cr_assert_eq(g.p.shown, strlen(l2));
	rig_close(&g);
}

Test(progress, cut_to_width)
{
	struct rig g;

	rig_open(&g, 20);
	ug_progress_update_at(&g.p, 0, "object 3f2a1c0b9d8e7f6a", 0, 10000, false);
	ug_progress_update_at(&g.p, 1000, "object 3f2a1c0b9d8e7f6a", 5000, 10000, false);
	/* 19 columns: the last one is never written (the line would wrap) */
	cr_assert_str_eq(drain(&g), "\robject 3f2a1c0b9d8e");
	rig_close(&g);
}

Test(progress, wanted_only_on_a_tty)
{
	int fds[2];
	int null = open("/dev/null", O_WRONLY | O_CLOEXEC);

	cr_assert_eq(pipe2(fds, O_CLOEXEC), 0);
	cr_assert(!ug_progress_wanted(fds[1], 1), "a pipe (cron's mail) got progress");
	cr_assert(!ug_progress_wanted(null, 2), "/dev/null got progress");
	close(fds[0]);
	close(fds[1]);
	close(null);
	/* a TTY when the test has one: quiet still wins */
	int tty = open("/dev/tty", O_WRONLY | O_CLOEXEC | O_NOCTTY);
	if (tty >= 0) {
		cr_assert(ug_progress_wanted(tty, 1));
		cr_assert(!ug_progress_wanted(tty, 0), "--quiet got progress");
		close(tty);
	}
	cr_assert(!ug_progress_wanted(-1, 1));
}

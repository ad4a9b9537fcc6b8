/* progress.c - a download's progress on one terminal line (progress.h). */
#include "config.h"

#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <time.h>
#include <unistd.h>

#include "progress.h"
#include "util.h"

void ug_progress_init(struct ug_progress *p, int fd, unsigned columns)
{
	memset(p, 0, sizeof(*p));
	p->fd = fd;
	p->columns = columns;
	p->last_ms = -1;
}

bool ug_progress_wanted(int fd, int verbosity)
{
	return verbosity >= 1 && isatty(fd) == 1;
}

struct ug_progress *ug_progress_stderr(void)
{
	static struct ug_progress p;
	static bool ready;

	if (!ready) {
		ug_progress_init(&p, STDERR_FILENO, 0);
		ready = true;
	}
	return &p;
}

static int64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* "3 s", "2 min 5 s", "1 h 3 min" */
static void duration_format(uint64_t s, char *out, size_t n)
{
	if (s < 60)
		snprintf(out, n, "%" PRIu64 " s", s);
	else if (s < 3600)
		snprintf(out, n, "%" PRIu64 " min %" PRIu64 " s", s / 60, s % 60);
	else
		snprintf(out, n, "%" PRIu64 " h %" PRIu64 " min", s / 3600, s % 3600 / 60);
}

size_t ug_progress_format(char *out, size_t n, const char *what, uint64_t done,
			  uint64_t total, uint64_t moved, uint64_t elapsed_ms)
{
	char d[32], t[32], r[32], eta[32];
	uint64_t rate = elapsed_ms ? (uint64_t)((double)moved * 1000.0 / (double)elapsed_ms) : 0;
	unsigned pct = total ? (unsigned)((double)done * 100.0 / (double)total) : 100;
	int len;

	if (n == 0)
		return 0;
	if (done > total)
		done = total;
	ug_bytes_format(done, d);
	ug_bytes_format(total, t);
	ug_bytes_format(rate, r);
	if (rate == 0) {
		len = snprintf(out, n, "%s: %s of %s (%u%%), stalled", what, d, t, pct);
	} else {
		/* rounded up: "0 s left" while bytes are missing would be wrong */
		uint64_t left = (total - done + rate - 1) / rate;
		if (left >= 100 * 3600) {
			len = snprintf(out, n, "%s: %s of %s (%u%%), %s/s", what, d, t, pct, r);
		} else {
			duration_format(left, eta, sizeof(eta));
			len = snprintf(out, n, "%s: %s of %s (%u%%), %s/s, %s left", what, d, t,
				       pct, r, eta);
		}
	}
	if (len < 0)
		len = 0;
	return (size_t)len < n ? (size_t)len : n - 1;
}

static unsigned columns_of(const struct ug_progress *p)
{
	struct winsize ws;

	if (p->columns)
		return p->columns;
	if (ioctl(p->fd, TIOCGWINSZ, &ws) == 0 && ws.ws_col > 0)
		return ws.ws_col;
	return 80;
}

/* Put text on the line: '\r', the text, blanks over what is left of the
 * longer line before. Errors are ignored: a display is not worth failing
 * a download for. */
static void draw(struct ug_progress *p, const char *text, size_t len)
{
	char buf[UG_PROGRESS_LINE_MAX * 2 + 4];
	size_t k = 0, pad = p->shown > len ? p->shown - len : 0;

	buf[k++] = '\r';
	memcpy(buf + k, text, len);
	k += len;
	memset(buf + k, ' ', pad);
	k += pad;
	if (pad || len == 0)
		buf[k++] = '\r';
	(void)ug_write_all(p->fd, buf, k);
	p->shown = len;
}

void ug_progress_clear(struct ug_progress *p)
{
	if (p->shown)
		draw(p, "", 0);
}

void ug_progress_update_at(struct ug_progress *p, int64_t now, const char *what,
			   uint64_t done, uint64_t total, bool finished)
{
	char line[UG_PROGRESS_LINE_MAX + 1];
	unsigned cols;
	size_t len;

	if (finished) {
		ug_progress_clear(p);
		p->active = false;
		return;
	}
	if (!p->active || strncmp(p->what, what, sizeof(p->what) - 1) != 0) {
		/* a new download: its own clock and rate */
		ug_progress_clear(p);
		snprintf(p->what, sizeof(p->what), "%s", what);
		p->start_done = done;
		p->start_ms = now;
		p->last_ms = -1;
		p->active = true;
		return;
	}
	if (now - p->start_ms < UG_PROGRESS_DELAY_MS ||
	    (p->last_ms >= 0 && now - p->last_ms < UG_PROGRESS_INTERVAL_MS))
		return;
	cols = columns_of(p);
	len = ug_progress_format(line, sizeof(line), p->what, done, total,
				 done > p->start_done ? done - p->start_done : 0,
				 (uint64_t)(now - p->start_ms));
	/* never the last column: a line that wraps cannot be redrawn by '\r' */
	if (cols > 1 && len > cols - 1)
		len = cols - 1;
	draw(p, line, len);
	p->last_ms = now;
}

void ug_progress_update(void *ctx, const char *what, uint64_t done, uint64_t total,
			bool finished)
{
	ug_progress_update_at(ctx, now_ms(), what, done, total, finished);
}

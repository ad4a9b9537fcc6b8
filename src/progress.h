/* progress.h - a download's progress on one line of a terminal:
 *
 *   object 3f2a1c0b9d8e7f6a: 1.2 MiB of 2.5 MiB (48%), 400.0 KiB/s, 3 s left
 *
 * Fed by the protocol client (client.h, ug_client_progress_fn) as DATA
 * frames arrive. The line is drawn only once a download has run for
 * UG_PROGRESS_DELAY_MS (the many small blobs of a pull would only make
 * it flicker), redrawn in place with '\r' at most every
 * UG_PROGRESS_INTERVAL_MS, cut to the terminal's width so it never
 * wraps, and blanked when the download ends, so the messages that follow
 * start on a clean line. The rate is the download's average since it
 * started (a resumed download counts only what crossed the wire now).
 *
 * Programs show it only where a person watches: ug_progress_wanted says
 * so for a TTY when not --quiet; cron's mail and the logs never see it. */
#ifndef UG_PROGRESS_H
#define UG_PROGRESS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define UG_PROGRESS_DELAY_MS    500
#define UG_PROGRESS_INTERVAL_MS 250
#define UG_PROGRESS_LINE_MAX    200   /* bytes of one line, '\r' excluded */

struct ug_progress {
	int fd;                      /* where to draw */
	unsigned columns;            /* width; 0: ask the terminal at each draw */
	bool active;                 /* a download is under way */
	char what[80];               /* its name, as the client gives it */
	uint64_t start_done;         /* bytes it held when it started */
	int64_t start_ms;            /* when it started (monotonic clock) */
	int64_t last_ms;             /* last draw (monotonic), or -1 */
	size_t shown;                /* characters on the line now (0: blank) */
};

/* A display on fd (columns 0: the terminal's width, else a fixed one). */
void ug_progress_init(struct ug_progress *p, int fd, unsigned columns);

/* Whether a program should show progress on fd: a TTY, and verbosity
 * (0 --quiet, 1 normal, 2 --verbose) not quiet. */
bool ug_progress_wanted(int fd, int verbosity);

/* The process's display on stderr (one terminal, one line). */
struct ug_progress *ug_progress_stderr(void);

/* A ug_client_progress_fn: ctx is a struct ug_progress. */
void ug_progress_update(void *ctx, const char *what, uint64_t done, uint64_t total,
			bool finished);
/* The same at a given time of the monotonic clock, in ms (for tests). */
void ug_progress_update_at(struct ug_progress *p, int64_t now_ms, const char *what,
			   uint64_t done, uint64_t total, bool finished);

/* Blank the line if something is drawn (before printing a message while a
 * download runs); the next update draws it again. */
void ug_progress_clear(struct ug_progress *p);

/* The line's text (no '\r') for a download of total bytes that holds done
 * of them, moved of which came in the elapsed_ms it has run. Returns its
 * length; the text is cut to n - 1 bytes. */
size_t ug_progress_format(char *out, size_t n, const char *what, uint64_t done,
			  uint64_t total, uint64_t moved, uint64_t elapsed_ms);

#endif

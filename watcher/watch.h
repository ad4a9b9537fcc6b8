/* watch.h - the inotify side of upgrid-watch: a recursive watch of the
 * master tree with libinotifytools, and what its events mean for the next
 * publish.
 *
 * The module does not decide when to publish: it reports, per batch of
 * events, whether something a version holds may have changed and whether
 * it lost track of the tree (then the caller rebuilds the watch). Which
 * files changed does not matter: publish rescans the tree (cheaply, with
 * its stat cache) and finds out itself. What matters is that no change
 * goes unnoticed, so:
 *   - a directory is watched before it is listed, and a new directory is
 *     listed right after its watch lands, so that subdirectories created
 *     before the watch existed (mkdir -p a/b/c; tar x) are found and
 *     watched, and files created in them are seen by the next publish;
 *   - moves are paired by cookie. A directory moved within the tree keeps
 *     its watches, renamed (inotifytools_replace_filename); one moved out
 *     loses them; one moved in is watched as a new one;
 *   - directories the rules exclude are not watched, and events on
 *     excluded paths (editor swap files, *.tmp) are not changes;
 *     .upgrid/ itself is watched, so that editing .upgrid/rules is;
 *   - IN_Q_OVERFLOW, or a watch map that no longer matches the tree, asks
 *     for a rebuild;
 *   - a directory that cannot be watched (the watch limit, ENOSPC; or
 *     permissions) is counted, not fatal: the caller rescans periodically.
 *
 * libinotifytools keeps its state in process globals: there is at most one
 * struct ug_watch per process, used from one thread. */
#ifndef UG_WATCH_H
#define UG_WATCH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "util.h"

/* ug_watch_read / _tick / _sync flags */
#define UG_WATCH_CHANGED 0x01  /* something a version holds may have changed */
#define UG_WATCH_RESCAN  0x02  /* events were lost or the map is wrong: rebuild */
#define UG_WATCH_SYNC    0x04  /* walk the tree for unwatched directories soon */
#define UG_WATCH_GONE    0x08  /* the tree's root was deleted or moved away */

/* Why the last RESCAN was asked for (for the log). */
enum ug_watch_reason {
	UG_WATCH_R_NONE,
	UG_WATCH_R_OVERFLOW,   /* IN_Q_OVERFLOW: the kernel dropped events */
	UG_WATCH_R_MAP,        /* the wd -> path map disagrees with the tree */
	UG_WATCH_R_READ,       /* reading events failed */
	UG_WATCH_R_UNMOUNT,    /* a file system under the tree was unmounted */
	UG_WATCH_R_COMPACT,    /* the library holds too many dead watches */
};

struct ug_watch_stats {
	size_t dirs;           /* directories found (last walk, kept up to date) */
	size_t watched;        /* directories with a watch */
	size_t unwatched;      /* directories that could not be watched */
	bool limit;            /* ENOSPC: fs.inotify.max_user_watches reached */
	uint64_t events;       /* events read so far */
	enum ug_watch_reason reason;
};

struct ug_watch;

/* Start inotify, load TREE/.upgrid/rules and watch the tree. tree must be
 * an absolute, canonical path (realpath). */
int ug_watch_open(const char *tree, struct ug_watch **ret, struct ug_error *err);
void ug_watch_close(struct ug_watch *w);

/* The inotify descriptor, for poll(). */
int ug_watch_fd(const struct ug_watch *w);
/* Events may wait in libinotifytools' buffer, where poll() cannot see
 * them: call ug_watch_read again before blocking. */
bool ug_watch_buffered(const struct ug_watch *w);
/* Handle up to max_events queued events (never blocks). */
int ug_watch_read(struct ug_watch *w, int64_t now_ns, unsigned max_events);
/* When ug_watch_tick has work: the end of the grace period of an
 * IN_MOVED_FROM still waiting for its IN_MOVED_TO, or INT64_MAX. */
int64_t ug_watch_deadline(const struct ug_watch *w);
int ug_watch_tick(struct ug_watch *w, int64_t now_ns);
/* Walk the whole tree and watch what is not watched yet (after the rules
 * changed, or periodically while some directories are unwatched). */
int ug_watch_sync(struct ug_watch *w);
/* Drop every watch and start again: after an overflow or when the map is
 * wrong. Returns flags (CHANGED: events may have been missed meanwhile). */
int ug_watch_rebuild(struct ug_watch *w, struct ug_error *err);
/* Reload .upgrid/rules (SIGHUP); returns flags. */
int ug_watch_reload_rules(struct ug_watch *w);
void ug_watch_get_stats(const struct ug_watch *w, struct ug_watch_stats *ret);

/* Read a small non-negative integer from a /proc file (sysctl): -1 if
 * missing or unreadable. */
long ug_watch_read_sysctl(const char *path);

#endif

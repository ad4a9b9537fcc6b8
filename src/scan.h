/* scan.h - walk a tree safely and list what a version holds.
 *
 * The walk is openat()-relative from the tree root with O_NOFOLLOW on every
 * component, so it never leaves the tree. Regular files and directories are
 * listed; symlinks, devices, fifos and sockets are skipped with a warning
 * (upgrid never follows a link out of a tree). Excluded paths (rules) are
 * skipped silently, and an excluded directory is not descended into. */
#ifndef UG_SCAN_H
#define UG_SCAN_H

#include <stdint.h>
#include <stddef.h>

#include "rules.h"
#include "util.h"

enum ug_scan_type { UG_SCAN_FILE = 'f', UG_SCAN_DIR = 'd' };

struct ug_scan_entry {
	char *path;          /* relative, '/'-separated, no leading "./" */
	enum ug_scan_type type;
	uint32_t mode;       /* permission bits (07777) */
	uint64_t size;       /* 0 for a directory */
	int64_t mtime_ns;
	int64_t ctime_ns;    /* catches chmod and mtime reset by touch -d */
	uint64_t ino;
	uint64_t dev;
};

struct ug_scan {
	struct ug_scan_entry *entries; /* sorted by path (strcmp order) */
	size_t n;
	size_t alloc;
};

/* Called for each skipped special file / symlink with a message. */
typedef void (*ug_scan_warn_fn)(void *ctx, const char *msg);

/* Fills s (which must be zeroed or released). Limits: UG_DEPTH_MAX,
 * UG_FILES_MAX entries (-E2BIG), UG_PATH_MAX (-ENAMETOOLONG). The root
 * itself is not listed. rules NULL means the built-in defaults; warn may
 * be NULL. Names a manifest could not carry (control characters) are
 * skipped with a warning. A file or directory that cannot be read, or
 * that vanishes or changes type mid-scan (-EAGAIN), is an error naming
 * it; on any error s is left empty. */
int ug_scan_tree(int treefd, const struct ug_rules *rules, struct ug_scan *s,
		 ug_scan_warn_fn warn, void *warn_ctx, struct ug_error *err);
void ug_scan_release(struct ug_scan *s);

#endif

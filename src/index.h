/* index.h - publish's stat cache, like git's index.
 *
 * For each file of the last published tree of a channel it keeps the stat
 * identity (device, inode, size, mtime, ctime) and the content hashes, so
 * publishing a tree where little changed (the watcher's rescans) reads only
 * the changed files. It is a cache and nothing more: a missing, stale or
 * corrupt index costs time, never correctness, and nothing a terminal
 * sees comes from it.
 *
 * A file modified within the timestamp granularity of the moment it was
 * hashed could keep its size and mtime ("racily clean" in git's words), so
 * entries younger than UG_INDEX_RACY_NS at scan start are never saved. */
#ifndef UG_INDEX_H
#define UG_INDEX_H

#include <stddef.h>
#include <stdint.h>

#include "hash.h"
#include "scan.h"
#include "store.h"

#define UG_INDEX_FILE_MAX (512u << 20)
#define UG_INDEX_RACY_NS 2000000000ll

struct ug_index_entry {
	char *path;
	uint64_t dev, ino, size;
	int64_t mtime_ns, ctime_ns;
	struct ug_hash hash;
	struct ug_xxh xxh;
};

struct ug_index {
	struct ug_index_entry *e; /* sorted by path */
	size_t n, alloc;
};

/* Load REPO/cache/CHANNEL.index into ix (zeroed by the caller). A missing
 * index gives an empty one and 0; a corrupt one gives an empty one and
 * -EBADMSG (the caller may log it and go on). */
int ug_index_load(struct ug_store *s, const char *channel, struct ug_index *ix);
/* The entry for e if its stat identity is unchanged, else NULL. */
const struct ug_index_entry *ug_index_lookup(const struct ug_index *ix,
					     const struct ug_scan_entry *e);
/* Append (entries must come in path order). */
int ug_index_add(struct ug_index *ix, const struct ug_scan_entry *e,
		 const struct ug_hash *hash, const struct ug_xxh *xxh);
/* Write atomically, leaving out entries modified less than
 * UG_INDEX_RACY_NS before scan_start_ns. */
int ug_index_save(struct ug_store *s, const char *channel, const struct ug_index *ix,
		  int64_t scan_start_ns);
void ug_index_release(struct ug_index *ix);

#endif

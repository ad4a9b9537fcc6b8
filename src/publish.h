/* publish.h - turn a directory tree into a new signed version.
 *
 * Steps: scan the tree (rules), store every new content as an object,
 * build the manifest against the parent version (adds, removals, renames
 * by content, mode changes), compute deltas from each of the last K
 * versions in parallel (per-file zstd prefix, librsync for files above the
 * window, one bundle per version pair), keep a delta only when it is
 * smaller than what it replaces, sign, store manifest deltas, move the ref.
 * The ref moves last: until then the new version does not exist for
 * readers, so an interrupted publish leaves only unreferenced objects. */
#ifndef UG_PUBLISH_H
#define UG_PUBLISH_H

#include <stdbool.h>
#include <stdint.h>

#include "rollout.h"
#include "sign.h"
#include "store.h"

typedef void (*ug_log_fn)(void *ctx, int level, const char *msg);
#define UG_LOG_WARN 1
#define UG_LOG_INFO 2
#define UG_LOG_DEBUG 3

struct ug_publish_opts {
	const char *tree;
	const char *channel;
	const char *message;          /* may be NULL */
	const struct ug_seckey *key;
	int64_t now;                  /* 0: current time */
	unsigned expire_days;         /* 0: repo setting */
	/* The staged rollout the manifest states (rollout.h), or NULL:
	 * none asked for, everyone. Its groups must be groups of
	 * REPO/cluster. A rollout given (even 100%) that differs from the
	 * latest version's makes a new version of an identical tree; NULL
	 * never does. */
	const struct ug_rollout *rollout;
	ug_log_fn log;                /* may be NULL */
	void *log_ctx;
};

struct ug_publish_pair {
	uint64_t from;                /* older version */
	uint64_t per_file_bytes;      /* sum of best per-file paths from it */
	uint64_t bundle_bytes;        /* 0 if no bundle */
	uint64_t manifest_delta_bytes;
	uint64_t best_bytes;          /* what a terminal on `from` pulls */
};

struct ug_publish_result {
	uint64_t version;             /* new version, or the latest if unchanged */
	bool unchanged;
	size_t nfiles, added, removed, modified, renamed, mode_changed;
	uint64_t tree_bytes;          /* sum of file sizes */
	uint64_t full_bytes;          /* compressed objects + manifest: a full download */
	uint64_t manifest_bytes;      /* compressed manifest */
	struct ug_publish_pair pairs[16];
	size_t npairs;
};

int ug_publish(struct ug_store *s, const struct ug_publish_opts *o,
	       struct ug_publish_result *ret, struct ug_error *err);

/* Store the manifest delta `from` -> `to` of channel: json compressed with
 * prefix (NULL, 0 for from 0: the document compressed on its own) at the
 * repo's level (a fast level above 1 MiB). It is stored only when smaller
 * than keep_below bytes (0: always). *ret_len: its size, stored or not.
 * Manifest deltas are not signed, so any server holding both documents
 * can make them instead of downloading them. */
int ug_publish_mdelta(struct ug_store *s, const char *channel, uint64_t from, uint64_t to,
		      const char *json, size_t len, const char *prefix, size_t prefix_len,
		      size_t keep_below, size_t *ret_len);

#endif

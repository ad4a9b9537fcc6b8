/* manifest.h - the strategy manifest: one signed JSON document per version
 * and channel (format described in upgrid-manifest(5)).
 *
 * The reader is a trust boundary. ug_manifest_parse rejects unknown format
 * versions, bad or duplicate paths, out-of-range sizes and counts, unknown
 * classes/actions/codecs, malformed hashes, and a chain list that breaks
 * the cluster file's rules (ug_cluster_check), naming the offending entry
 * in err ("files[17]: path contains '..'"). Signature checking is separate
 * (sign.h) and must be done on the exact bytes before parsing. */
#ifndef UG_MANIFEST_H
#define UG_MANIFEST_H

#include <stddef.h>
#include <stdint.h>

#include "cluster.h"
#include "hash.h"
#include "rollout.h"
#include "structure.h"
#include "types.h"
#include "util.h"

#define UG_MANIFEST_FORMAT 1

/* A delta a terminal may use to obtain this file. */
struct ug_mdelta {
	struct ug_hash from;   /* content hash of the base it applies to */
	enum ug_codec codec;   /* UG_CODEC_ZSTD_PREFIX or UG_CODEC_RSYNC_ZSTD */
	struct ug_hash id;     /* BLAKE2b of the delta bytes (its name) */
	uint64_t size;         /* bytes of the delta */
	uint64_t memory;       /* bytes of memory needed to apply it */
};

struct ug_mfile {
	char *path;
	uint32_t mode;         /* permission bits, 07777 */
	uint64_t size;
	struct ug_hash hash;   /* BLAKE2b-256 of the content */
	struct ug_xxh xxh;     /* XXH3-128 of the content */
	uint64_t stored;       /* bytes of the compressed object */
	enum ug_class cls;
	enum ug_action action;
	struct ug_mdelta *deltas;
	size_t ndeltas;
	size_t deltas_alloc;     /* private: capacity kept by ug_mfile_add_delta */
	/* The structural change from the parent version's file at the same
	 * path (config and data files only), or NULL: none recorded. Owned
	 * by the manifest (freed with ug_struct_diff_free). */
	struct ug_struct_diff *structure;
};

struct ug_mdir {
	char *path;
	uint32_t mode;
};

/* Relative to the parent version. */
struct ug_mremoved {
	char *path;
	struct ug_hash hash;
};
struct ug_mrename {
	char *from;
	char *to;
	struct ug_hash hash;
};

/* One bundle delta from version `from` to this version. */
struct ug_mbundle {
	uint64_t from;           /* version the terminal must hold */
	struct ug_hash id;       /* BLAKE2b of the bundle bytes */
	uint64_t size;
	uint64_t memory;
	struct ug_hash *bases;   /* prefix = these contents concatenated */
	size_t nbases;
	struct ug_hash *targets; /* output = these contents concatenated */
	uint64_t *target_sizes;
	size_t ntargets;
};

struct ug_manifest {
	unsigned format;
	char *channel;
	uint64_t version;
	uint64_t parent;         /* 0: first version */
	int64_t created;         /* UNIX seconds */
	int64_t expires;         /* UNIX seconds */
	char *message;           /* may be NULL */
	char *key_id;            /* id of the signing key (informational) */
	struct ug_mfile *files;  /* sorted by path, unique */
	size_t nfiles;
	struct ug_mdir *dirs;    /* sorted by path, unique */
	size_t ndirs;
	struct ug_mremoved *removed;
	size_t nremoved;
	struct ug_mrename *renamed;
	size_t nrenamed;
	struct ug_mbundle *bundles;
	size_t nbundles;
	/* The chain list of the cluster (REPO/cluster at publish time), or
	 * NULL: the manifest states none ("chains" absent from the document).
	 * Owned by the manifest (freed with ug_cluster_free). */
	struct ug_cluster *chains;
	/* The staged rollout the version was published with ("rollout",
	 * rollout.h), or NULL: everyone. Owned by the manifest (freed with
	 * ug_rollout_free). A rollout document (ug_rollout_in_force) may
	 * replace it later without touching this document. */
	struct ug_rollout *rollout;
	/* private: capacities kept by the ug_manifest_add_* growers (an array
	 * installed by hand may leave these 0; the growers then reallocate) */
	size_t files_alloc, dirs_alloc, removed_alloc, renamed_alloc, bundles_alloc;
};

struct ug_manifest *ug_manifest_new(void);
void ug_manifest_free(struct ug_manifest *m);

/* Serialize deterministically (sorted keys, files in path order, one
 * entry per line) so that consecutive manifests delta well. Validates m
 * first (same rules as parse). ret is NUL-terminated, owned by the caller. */
int ug_manifest_write(const struct ug_manifest *m, char **ret, size_t *ret_len,
		      struct ug_error *err);
int ug_manifest_parse(const char *json, size_t len, struct ug_manifest **ret,
		      struct ug_error *err);
/* Check every invariant (the parser's rules) on an in-memory manifest. */
int ug_manifest_validate(const struct ug_manifest *m, struct ug_error *err);

/* A structural diff as the manifest spells it (a new jansson reference,
 * NULL on ENOMEM); for programs that print it (upgrid diff --json). */
struct json_t;
struct json_t *ug_struct_diff_json(const struct ug_struct_diff *d);

/* Binary search by path; NULL if absent. */
const struct ug_mfile *ug_manifest_find(const struct ug_manifest *m, const char *path);

/* Growing arrays while building a manifest (publish). */
struct ug_mfile *ug_manifest_add_file(struct ug_manifest *m);
struct ug_mdir *ug_manifest_add_dir(struct ug_manifest *m);
struct ug_mremoved *ug_manifest_add_removed(struct ug_manifest *m);
struct ug_mrename *ug_manifest_add_renamed(struct ug_manifest *m);
struct ug_mbundle *ug_manifest_add_bundle(struct ug_manifest *m);
struct ug_mdelta *ug_mfile_add_delta(struct ug_mfile *f);

#endif

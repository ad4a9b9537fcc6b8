/* store.h - the repo: a content-addressed store of objects and deltas,
 * signed manifests and one ref per channel.
 *
 * Layout (documented in upgrid(1), FILES):
 *   config                      repo settings (INI, see upgrid.conf(5))
 *   lock                        flock()ed by writers (publish)
 *   objects/ab/cdef...          one file per content: 32-byte header
 *                               ("UGOB", format, size, XXH3-128) + zstd frame
 *   deltas/ab/cdef...           delta payloads, named by BLAKE2b of the bytes
 *   manifests/CHANNEL/N.json    the signed document
 *   manifests/CHANNEL/N.json.sig   its detached Ed25519 signature
 *   manifests/CHANNEL/N.from-M.zst manifest delta (zstd prefix of M's json);
 *                               N.from-0.zst: N.json compressed, no prefix
 *   manifests/CHANNEL/N.rollout    rollout document replacing N's rollout
 *   manifests/CHANNEL/N.rollout.sig   its signature (rollout.h)
 *   refs/CHANNEL                latest version number of the channel
 *   cache/CHANNEL.index         publish's stat cache (index.h)
 *   tmp/                        temporary files, same filesystem
 * Every file becomes visible only by rename after fsync. */
#ifndef UG_STORE_H
#define UG_STORE_H

#include <stdbool.h>
#include <stdint.h>
#include <stddef.h>

#include "hash.h"
#include "util.h"

#define UG_OBJ_HEADER_LEN 32
#define UG_OBJ_MAGIC "UGOB"

struct ug_store_config {
	unsigned keep_deltas;   /* K: deltas from the last K versions (3) */
	int level;              /* zstd level of bundles, main-path deltas (19) */
	int fallback_level;     /* objects, deltas a bundle also covers (12) */
	uint64_t window;        /* prefix-mode window, bytes (256 MiB) */
	unsigned threads;       /* worker threads, 0 = all CPUs */
	unsigned expire_days;   /* manifest lifetime in days (365) */
};

struct ug_store {
	int dirfd;
	char *path;
	int lockfd;
	struct ug_store_config cfg;
	/* zstd worker threads for objects over 8 MiB (0: none). Publish
	 * compresses many objects in parallel and leaves it 0; upgrid-syncd
	 * stores rebuilt objects one at a time and sets it to the CPUs. */
	unsigned object_workers;
};

enum ug_store_kind { UG_STORE_OBJECTS, UG_STORE_DELTAS };

void ug_store_config_default(struct ug_store_config *c);

/* The largest stored form of content of this size (header + zstd's bound
 * with slack): what a download of an object may be at most. */
static inline uint64_t ug_store_stored_max(uint64_t size)
{
	return size + size / 64 + (64u << 10) + UG_OBJ_HEADER_LEN;
}

/* Create a new repo at path (the directory may exist but must be empty). */
int ug_store_create(const char *path, struct ug_error *err);
int ug_store_open(const char *path, struct ug_store **ret, struct ug_error *err);
void ug_store_free(struct ug_store *s);

/* Exclusive writer lock. -EWOULDBLOCK if another writer holds it and
 * wait is false. Released by ug_store_free. */
int ug_store_lock(struct ug_store *s, bool wait);

/* Objects. put streams fd (from offset 0) through BLAKE2b, XXH3 and zstd
 * into a temp file and renames it into place; an existing object is kept. */
int ug_store_object_put_fd(struct ug_store *s, int fd, struct ug_hash *ret_hash,
			   struct ug_xxh *ret_xxh, uint64_t *ret_size);
int ug_store_object_put_buf(struct ug_store *s, const void *p, size_t n,
			    struct ug_hash *ret_hash);
bool ug_store_object_exists(struct ug_store *s, const struct ug_hash *h);
/* Stored size (header + compressed frame) of an object. */
int ug_store_object_stat(struct ug_store *s, const struct ug_hash *h,
			 uint64_t *ret_stored, uint64_t *ret_size);
/* Decompress into out_fd (written from its offset), verifying size and
 * BLAKE2b: -EBADMSG if the object is corrupt. */
int ug_store_object_extract(struct ug_store *s, const struct ug_hash *h, int out_fd);
/* An anonymous read-write file in REPO/tmp (the repo's filesystem, not
 * /tmp, which may be a small tmpfs); gone when closed. */
int ug_store_tmp_anon(struct ug_store *s);
/* Extract into an anonymous temporary file, returned positioned at 0. */
int ug_store_object_tmp(struct ug_store *s, const struct ug_hash *h, int *ret_fd);
int ug_store_object_verify(struct ug_store *s, const struct ug_hash *h,
			   struct ug_error *err);

/* Deltas, content-addressed by BLAKE2b of their bytes. */
int ug_store_delta_put_fd(struct ug_store *s, int fd, struct ug_hash *ret_id,
			  uint64_t *ret_size);
int ug_store_delta_open(struct ug_store *s, const struct ug_hash *id, int *ret_fd);
int ug_store_delta_verify(struct ug_store *s, const struct ug_hash *id,
			  struct ug_error *err);
/* Remove a delta nothing refers to (publish drops one it decided not to
 * keep). The caller must hold the writer lock. */
int ug_store_delta_remove(struct ug_store *s, const struct ug_hash *id);
bool ug_store_delta_exists(struct ug_store *s, const struct ug_hash *id);
/* Remove a damaged object so that a repaired copy can take its place
 * (objects are never overwritten in place). */
int ug_store_object_remove(struct ug_store *s, const struct ug_hash *h);

/* List every object or delta present (for verify). */
int ug_store_list(struct ug_store *s, enum ug_store_kind kind,
		  struct ug_hash **ret, size_t *ret_n);

/* Manifests and their signatures. */
int ug_store_manifest_put(struct ug_store *s, const char *channel,
			  uint64_t version, const void *json, size_t json_len,
			  const void *sig, size_t sig_len);
int ug_store_manifest_get(struct ug_store *s, const char *channel,
			  uint64_t version, char **ret_json, size_t *ret_len,
			  char **ret_sig, size_t *ret_sig_len);
int ug_store_mdelta_put(struct ug_store *s, const char *channel, uint64_t from,
			uint64_t to, const void *data, size_t len);
int ug_store_mdelta_get(struct ug_store *s, const char *channel, uint64_t from,
			uint64_t to, uint8_t **ret, size_t *ret_len);
/* The rollout document of a version (rollout.h) and its signature, as
 * `upgrid rollout` signs them and upgrid-syncd copies them. put writes
 * the signature, then the document, each atomically; the version's
 * manifest directory must exist (-ENOENT: no such channel). The caller
 * holds the writer lock and has checked both. get: -ENOENT when the
 * version has no document, -EKEYREJECTED when its signature file is
 * missing, -E2BIG for a document over UG_ROLLOUT_DOC_MAX; ret_sig may be
 * NULL. */
int ug_store_rollout_put(struct ug_store *s, const char *channel, uint64_t version,
			 const void *doc, size_t doc_len, const void *sig, size_t sig_len);
int ug_store_rollout_get(struct ug_store *s, const char *channel, uint64_t version,
			 char **ret_doc, size_t *ret_len, char **ret_sig, size_t *ret_sig_len);
/* Versions with a manifest in channel, ascending. */
int ug_store_versions(struct ug_store *s, const char *channel,
		      uint64_t **ret, size_t *ret_n);
/* Channels that have a ref, sorted. Free with ug_strv_free. */
int ug_store_channels(struct ug_store *s, char ***ret, size_t *ret_n);
void ug_strv_free(char **v, size_t n);

/* Transfers between repos (upgrid-syncd). Objects travel in their stored
 * form (header + zstd frame), so a server never recompresses what it only
 * passes on. */
int ug_store_object_open(struct ug_store *s, const struct ug_hash *h, int *ret_fd);
/* A download in progress: REPO/tmp/dl-NAME (NAME without '/'), kept across
 * runs so a transfer resumes at *ret_size bytes. The fd is positioned at
 * its end, ready to append. */
int ug_store_partial_open(struct ug_store *s, const char *name, int *ret_fd,
			  uint64_t *ret_size);
/* Install a finished download as an object (its stored form is checked
 * completely: header, frame, size, BLAKE2b == expect) or a delta (BLAKE2b
 * of its bytes == expect), then rename it into place. Closes fd. Bytes that
 * fail the check are removed and -EBADMSG returned (reason in err). */
int ug_store_partial_commit(struct ug_store *s, const char *name, int fd,
			    enum ug_store_kind kind, const struct ug_hash *expect,
			    struct ug_error *err);
void ug_store_partial_remove(struct ug_store *s, const char *name);

/* Refs: -ENOENT when the channel has none yet. */
int ug_store_ref_read(struct ug_store *s, const char *channel, uint64_t *ret_version);
int ug_store_ref_write(struct ug_store *s, const char *channel, uint64_t version);
/* Block until channel's ref names a version above `after`, or timeout_ms
 * passes (-ETIMEDOUT; negative: wait forever). Publish moves a ref by
 * rename into refs/, so this watches that directory with inotify: a
 * long-poll (upgrid-syncd) is woken by the publish itself, no polling.
 * Uses its own inotify instance, so it is safe beside the watcher's. */
int ug_store_ref_wait(struct ug_store *s, const char *channel, uint64_t after,
		      int timeout_ms, uint64_t *ret_version);

#endif

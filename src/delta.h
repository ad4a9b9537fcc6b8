/* delta.h - the three delta codecs.
 *
 * zstd prefix ("zstd --patch-from"): the base is referenced as a raw-content
 * prefix (ZSTD_CCtx_refPrefix), so the target compresses against it. Best
 * codec for rebuilt binaries; needs base + window in memory on both sides,
 * so it is only used when base + target fit the configured window.
 *
 * bundle: one zstd stream holding the new content of many files, whose
 * prefix is the concatenation of many bases, so code that moved between
 * files still matches.
 *
 * librsync (rs_sig/rs_delta/rs_patch with RK_BLAKE2 signatures),
 * zstd-compressed: streams with bounded memory for files of any size, and
 * works from a signature alone (a terminal whose copy drifted).
 *
 * All functions work on file descriptors of regular files. Inputs are read
 * with pread/mmap from offset 0 (the fd offset is not used, except for
 * delta_fd and sig_fd in the apply/from_signature functions, which are read
 * sequentially from their current offset). Output is written sequentially
 * to out_fd from its current offset. Every apply function treats the delta
 * as hostile: it bounds memory (max_memory) and output (expected size) and
 * returns -EBADMSG for a corrupt or truncated delta, never crashes. */
#ifndef UG_DELTA_H
#define UG_DELTA_H

#include <stddef.h>
#include <stdint.h>

#include "types.h"

#define UG_DELTA_LEVEL_DEFAULT 19
/* Objects and the per-file deltas a bundle also covers: paths a terminal
 * takes only when it cannot use the bundle. Level 12 costs about 1/8 of
 * level 19's CPU for ~7% more bytes on those paths (bench/publish.sh). */
#define UG_FALLBACK_LEVEL_DEFAULT 12
#define UG_DELTA_WINDOW_DEFAULT (256ull << 20)
/* Hard ceiling on what an applier accepts (zstd's windowLog 31). */
#define UG_DELTA_WINDOW_MAX (2ull << 30)
#define UG_RSYNC_SIG_MAX (256ull << 20)
/* Memory an rsync-zstd applier needs whatever the file size: the zstd
 * decoder window (2^23) plus librsync and I/O buffers, rounded up. */
#define UG_RSYNC_APPLY_MEMORY (16ull << 20)

struct ug_delta_params {
	int level;        /* zstd compression level (1..22) */
	uint64_t window;  /* max base+target bytes for the prefix codecs */
	int threads;      /* zstd worker threads; 0 = single-threaded */
};

void ug_delta_params_default(struct ug_delta_params *p);
/* Every function taking params accepts p == NULL for the defaults; every
 * ret_size / ret_memory may be NULL. */

/* Prefix delta base_fd -> target_fd into out_fd. Returns -EFBIG when
 * base size + target size exceed p->window (the caller then uses librsync).
 * ret_size: bytes written. ret_memory: an upper bound of the memory an
 * applier needs (base + decoder window), stated in the manifest: base size
 * + 2^windowLog, the window being the smallest power of two >= base +
 * target (>= 1 KiB). Pass it as max_memory to the apply function. */
int ug_delta_zstd_create(int base_fd, int target_fd, int out_fd,
			 const struct ug_delta_params *p, uint64_t *ret_size,
			 uint64_t *ret_memory);
/* Apply: writes exactly expect_size bytes to out_fd or fails with -EBADMSG
 * (too much or too little output, corrupt frame, wrong base: zstd's content
 * checksum is always on; bytes after the frame). -E2BIG when the frame
 * needs more than max_memory, which counts the base plus the decoder window
 * (zstd's own fixed ~0.5 MiB of context and block buffers is not counted).
 * On failure out_fd may hold partial output, never more than expect_size
 * bytes: write to a temporary file. */
int ug_delta_zstd_apply(int base_fd, int delta_fd, int out_fd,
			uint64_t expect_size, uint64_t max_memory);

/* Bundle delta: prefix = bases concatenated in the given order; content =
 * targets concatenated in the given order. -EFBIG when the sum of all bases
 * and targets exceeds p->window. */
int ug_delta_bundle_create(const int *base_fds, size_t nbases,
			   const int *target_fds, size_t ntargets, int out_fd,
			   const struct ug_delta_params *p, uint64_t *ret_size,
			   uint64_t *ret_memory);
/* Apply: output is split into out_fds[i], exactly out_sizes[i] bytes each
 * (errors as for ug_delta_zstd_apply, max_memory counting all bases). */
int ug_delta_bundle_apply(const int *base_fds, size_t nbases, int delta_fd,
			  const int *out_fds, const uint64_t *out_sizes,
			  size_t nouts, uint64_t max_memory);

/* librsync signature of base_fd (RK_BLAKE2, recommended block size) written
 * uncompressed to out_fd. */
int ug_delta_rsync_signature(int base_fd, int out_fd, uint64_t *ret_size);
/* Delta from a signature (read sequentially from sig_fd, at most
 * UG_RSYNC_SIG_MAX bytes, -E2BIG beyond) to target_fd, zstd-compressed at
 * p->level into out_fd. -EBADMSG for a garbled signature. */
int ug_delta_rsync_from_signature(int sig_fd, int target_fd, int out_fd,
				  const struct ug_delta_params *p,
				  uint64_t *ret_size);
/* Signature of base + delta in one call; memory stays bounded by the
 * signature (about 1.2 MB per GiB of base). */
int ug_delta_rsync_create(int base_fd, int target_fd, int out_fd,
			  const struct ug_delta_params *p, uint64_t *ret_size);
/* Apply a zstd-compressed librsync delta to base_fd (read with pread, so
 * it must be a regular file). Writes exactly expect_size bytes or fails
 * with -EBADMSG. The zstd window is capped at 8 MiB (what the create
 * functions use), -E2BIG above. librsync has no end-to-end checksum: the
 * wrong base of a plausible size gives wrong content of the right size, so
 * the caller must verify the output's hash. */
int ug_delta_rsync_apply(int base_fd, int delta_fd, int out_fd,
			 uint64_t expect_size);

/* Apply a per-file delta of either codec (UG_CODEC_ZSTD_PREFIX or
 * UG_CODEC_RSYNC_ZSTD), as the manifest names it; -EINVAL for another. */
int ug_delta_apply(enum ug_codec codec, int base_fd, int delta_fd, int out_fd,
		   uint64_t expect_size, uint64_t max_memory);
/* Plain zstd (no prefix) of an in-memory buffer / back; used for manifests
 * and small documents. ug_zstd_decompress_buf refuses output over max
 * (-E2BIG; the output buffer never grows past max + 1 bytes, even for a
 * frame that lies about its size) and a corrupt or truncated frame, a wrong
 * prefix or bytes after the frame (-EBADMSG). Its *ret is NUL-terminated
 * (not counted in *ret_len) and owned by the caller. */
int ug_zstd_compress_buf(const void *src, size_t len, int level,
			 const void *prefix, size_t prefix_len,
			 uint8_t **ret, size_t *ret_len);
int ug_zstd_decompress_buf(const void *src, size_t len, const void *prefix,
			   size_t prefix_len, size_t max, uint8_t **ret,
			   size_t *ret_len);

#endif

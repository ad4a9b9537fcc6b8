/* delta.c - the three delta codecs (see delta.h).
 *
 * The prefix codecs (zstd, bundle) hold the bases in one heap buffer read
 * with pread rather than an mmap: a base that another process truncates
 * while we decode would turn an mmap access into SIGBUS, and an mmap would
 * also count the whole file in our RSS. The buffer is bounded by the window
 * (create) or max_memory (apply).
 *
 * The librsync codec streams everything through fixed buffers: librsync's
 * job API on one side, zstd streams on the other, so memory stays bounded
 * by the signature whatever the file size.
 *
 * Every decoder treats its input as hostile: zstd's window is capped
 * (ZSTD_d_windowLogMax), the output is counted against the size the caller
 * expects and never written past it, a frame must end exactly at the end of
 * the delta (no truncation, no trailing bytes), and zstd's content checksum
 * is always on, so a wrong base or a flipped byte fails with -EBADMSG. */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <librsync.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zstd.h>
#include <zstd_errors.h>

#include "delta.h"
#include "util.h"

/* Target bytes handed to the zstd encoder per call. */
#define DELTA_CHUNK (1u << 20)
/* librsync input/output buffers (doc/streaming.md wants >= 32 KiB). */
#define RS_BUF_SIZE (256u << 10)
/* Largest rsync block we accept in a signature. rs_sig_args recommends
 * sqrt(size), i.e. 1 MiB for UG_FILE_SIZE_MAX; librsync's delta job buffers
 * a whole block, so a hostile signature must not choose it freely. */
#define RS_BLOCK_MAX (16u << 20)
#define RS_SIG_HEADER_LEN 12u
/* zstd window of a compressed librsync delta: 8 MiB (level 19's own
 * window), fixed for every level so the applier's memory is known. */
#define RS_ZSTD_WINDOWLOG 23
/* Compressed librsync deltas up to this size are compressed in one go
 * (see struct zenc_sink). */
#define RS_HOLD_MAX (1u << 20)
/* First output allocation of ug_zstd_decompress_buf; it doubles from there
 * so a frame that lies about its content size cannot make us allocate for
 * that lie up front. */
#define DECOMPRESS_BUF_FIRST (1u << 20)
/* zstd's window log range (zstd.h only exports it to static linkers). */
#define WLOG_MIN 10
#define WLOG_MAX ((int)(sizeof(size_t) == 4 ? 30 : 31))

void ug_delta_params_default(struct ug_delta_params *p)
{
	p->level = UG_DELTA_LEVEL_DEFAULT;
	p->window = UG_DELTA_WINDOW_DEFAULT;
	p->threads = 0;
}

/* ---------------------------------------------------------------- I/O */

static int fd_size(int fd, uint64_t *ret)
{
	struct stat st;

	if (fstat(fd, &st) < 0)
		return -errno;
	if (!S_ISREG(st.st_mode))
		return -EINVAL;
	*ret = (uint64_t)st.st_size;
	return 0;
}

/* Read up to len bytes at off; fewer only at EOF. */
static ssize_t pread_full(int fd, void *buf, size_t len, uint64_t off)
{
	uint8_t *p = buf;
	size_t got = 0;

	while (got < len) {
		ssize_t r = pread(fd, p + got, len - got, (off_t)(off + got));
		if (r < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		if (r == 0)
			break;
		got += (size_t)r;
	}
	return (ssize_t)got;
}

/* The size came from fstat, so a short read means the file shrank under
 * us: an I/O error for the caller to retry, not corrupt input. */
static int pread_exact(int fd, void *buf, size_t len, uint64_t off)
{
	ssize_t r = pread_full(fd, buf, len, off);

	if (r < 0)
		return (int)r;
	return (size_t)r == len ? 0 : -EIO;
}

static int u64_add(uint64_t a, uint64_t b, uint64_t *ret)
{
	if (__builtin_add_overflow(a, b, ret))
		return -E2BIG;
	return 0;
}

/* Sizes of n regular files and their sum. */
static int sizes_of(const int *fds, size_t n, uint64_t *sizes, uint64_t *ret_total)
{
	uint64_t total = 0;

	for (size_t i = 0; i < n; i++) {
		int r = fd_size(fds[i], &sizes[i]);
		if (r < 0)
			return r;
		if (u64_add(total, sizes[i], &total) < 0)
			return -EFBIG;
	}
	*ret_total = total;
	return 0;
}

/* The bases concatenated into one buffer (the zstd prefix). */
static int bases_load(const int *fds, const uint64_t *sizes, size_t n,
		      uint64_t total, uint8_t **ret)
{
	uint8_t *buf;
	size_t off = 0;

	if (total > SIZE_MAX - 1)
		return -E2BIG;
	buf = malloc(total ? (size_t)total : 1);
	if (!buf)
		return -ENOMEM;
	for (size_t i = 0; i < n; i++) {
		int r = pread_exact(fds[i], buf + off, (size_t)sizes[i], 0);
		if (r < 0) {
			free(buf);
			return r;
		}
		off += (size_t)sizes[i];
	}
	*ret = buf;
	return 0;
}

/* ---------------------------------------------------------------- zstd */

/* Decoder errors: the frame is hostile, so anything but a window over our
 * limit or our own allocation failure means corrupt input. */
static int zstd_dec_rc(size_t r)
{
	switch (ZSTD_getErrorCode(r)) {
	case ZSTD_error_memory_allocation:
		return -ENOMEM;
	case ZSTD_error_frameParameter_windowTooLarge:
		return -E2BIG;
	default:
		return -EBADMSG;
	}
}

static int zstd_enc_rc(size_t r)
{
	switch (ZSTD_getErrorCode(r)) {
	case ZSTD_error_memory_allocation:
		return -ENOMEM;
	case ZSTD_error_parameter_unsupported:
	case ZSTD_error_parameter_outOfBound:
	case ZSTD_error_parameter_combination_unsupported:
		return -EINVAL;
	default:
		return -EIO;
	}
}

/* Smallest window log whose window holds n bytes, within zstd's range. */
static int wlog_ceil(uint64_t n)
{
	int l = WLOG_MIN;

	while (l < WLOG_MAX && (1ull << l) < n)
		l++;
	return l;
}

/* Largest window log whose window fits in n bytes; -1 below zstd's range. */
static int wlog_floor(uint64_t n)
{
	int l = WLOG_MIN;

	if (n < (1ull << WLOG_MIN))
		return -1;
	while (l < WLOG_MAX && (1ull << (l + 1)) <= n)
		l++;
	return l;
}

#define LDM_WLOG_MIN 23

static int zstd_cctx_new(int level, int threads, ZSTD_CCtx **ret)
{
	ZSTD_CCtx *c = ZSTD_createCCtx();
	size_t r;

	if (!c)
		return -ENOMEM;
	r = ZSTD_CCtx_setParameter(c, ZSTD_c_compressionLevel, level);
	if (!ZSTD_isError(r))
		r = ZSTD_CCtx_setParameter(c, ZSTD_c_checksumFlag, 1);
	if (!ZSTD_isError(r))
		r = ZSTD_CCtx_setParameter(c, ZSTD_c_contentSizeFlag, 1);
	if (ZSTD_isError(r)) {
		ZSTD_freeCCtx(c);
		return zstd_enc_rc(r);
	}
	/* A libzstd built without threads refuses nbWorkers > 0; the output
	 * is the same format either way, so run single-threaded then. */
	if (threads > 0)
		(void)ZSTD_CCtx_setParameter(c, ZSTD_c_nbWorkers, threads);
	*ret = c;
	return 0;
}

/* Feed in to the encoder (all of it, or to the end of the frame for
 * ZSTD_e_end) and write what comes out to fd. */
static int zstd_pump(ZSTD_CCtx *c, ZSTD_inBuffer *in, ZSTD_EndDirective mode,
		     uint8_t *obuf, size_t osize, int fd, uint64_t *total)
{
	for (;;) {
		ZSTD_outBuffer o = { obuf, osize, 0 };
		size_t r = ZSTD_compressStream2(c, &o, in, mode);
		int w;

		if (ZSTD_isError(r))
			return zstd_enc_rc(r);
		if (o.pos) {
			w = ug_write_all(fd, obuf, o.pos);
			if (w < 0)
				return w;
			*total += o.pos;
		}
		if (mode == ZSTD_e_end ? r == 0 : in->pos == in->size)
			return 0;
	}
}

/* One frame holding the targets back to back, compressed against prefix.
 * The window covers prefix + content so every base byte stays reachable,
 * and long-distance matching finds matches across it, as
 * `zstd --patch-from` does. */
static int prefix_encode(const uint8_t *prefix, size_t prefix_len,
			 const int *fds, const uint64_t *sizes, size_t n,
			 uint64_t content, int wlog, int out_fd,
			 const struct ug_delta_params *p, uint64_t *ret_size)
{
	ZSTD_CCtx *c = NULL;
	uint8_t *ibuf = NULL, *obuf = NULL;
	size_t osize = ZSTD_CStreamOutSize();
	uint64_t written = 0;
	ZSTD_inBuffer in;
	size_t zr;
	int r;

	r = zstd_cctx_new(p->level, p->threads, &c);
	if (r < 0)
		return r;
	ibuf = malloc(DELTA_CHUNK);
	obuf = malloc(osize);
	if (!ibuf || !obuf) {
		r = -ENOMEM;
		goto out;
	}
	zr = ZSTD_CCtx_setParameter(c, ZSTD_c_windowLog, wlog);
	/* Long-distance matching pays only when the window is larger than what
	 * the high levels' match finder covers by itself (2^23): that is when
	 * `zstd --patch-from` turns it on too. Below that it costs time and
	 * finds nothing more. */
	if (!ZSTD_isError(zr) && wlog > LDM_WLOG_MIN)
		zr = ZSTD_CCtx_setParameter(c, ZSTD_c_enableLongDistanceMatching, 1);
	if (!ZSTD_isError(zr))
		zr = ZSTD_CCtx_setPledgedSrcSize(c, content);
	if (!ZSTD_isError(zr) && prefix_len)
		zr = ZSTD_CCtx_refPrefix(c, prefix, prefix_len);
	if (ZSTD_isError(zr)) {
		r = zstd_enc_rc(zr);
		goto out;
	}
	for (size_t i = 0; i < n; i++) {
		for (uint64_t off = 0; off < sizes[i];) {
			size_t len = sizes[i] - off < DELTA_CHUNK ?
				(size_t)(sizes[i] - off) : DELTA_CHUNK;

			r = pread_exact(fds[i], ibuf, len, off);
			if (r < 0)
				goto out;
			in = (ZSTD_inBuffer){ ibuf, len, 0 };
			r = zstd_pump(c, &in, ZSTD_e_continue, obuf, osize,
				      out_fd, &written);
			if (r < 0)
				goto out;
			off += len;
		}
	}
	in = (ZSTD_inBuffer){ NULL, 0, 0 };
	r = zstd_pump(c, &in, ZSTD_e_end, obuf, osize, out_fd, &written);
	if (r < 0)
		goto out;
	*ret_size = written;
out:
	free(ibuf);
	free(obuf);
	ZSTD_freeCCtx(c);
	return r;
}

/* Decoded bytes go to outputs in order, each exactly sizes[i] long. */
struct split_out {
	const int *fds;
	const uint64_t *sizes;
	size_t n;
	size_t i;      /* current output */
	uint64_t done; /* bytes written to it */
};

static void split_skip_full(struct split_out *s)
{
	while (s->i < s->n && s->done == s->sizes[s->i]) {
		s->i++;
		s->done = 0;
	}
}

static int split_write(struct split_out *s, const uint8_t *p, size_t len)
{
	while (len > 0) {
		uint64_t room;
		size_t take;
		int r;

		split_skip_full(s);
		if (s->i == s->n)
			return -EBADMSG; /* more output than expected */
		room = s->sizes[s->i] - s->done;
		take = room < len ? (size_t)room : len;
		r = ug_write_all(s->fds[s->i], p, take);
		if (r < 0)
			return r;
		s->done += take;
		p += take;
		len -= take;
	}
	return 0;
}

/* Decode exactly one frame from delta_fd (read sequentially) against
 * prefix, with a window of at most 2^wlog. */
static int prefix_decode(const uint8_t *prefix, size_t prefix_len, int wlog,
			 int delta_fd, struct split_out *s)
{
	ZSTD_DCtx *d = ZSTD_createDCtx();
	size_t isize = ZSTD_DStreamInSize(), osize = ZSTD_DStreamOutSize();
	uint8_t *ibuf = NULL, *obuf = NULL;
	ZSTD_inBuffer in = { NULL, 0, 0 };
	bool eof = false;
	size_t zr = 1;
	int r = 0;

	if (!d)
		return -ENOMEM;
	ibuf = malloc(isize);
	obuf = malloc(osize);
	if (!ibuf || !obuf) {
		r = -ENOMEM;
		goto out;
	}
	zr = ZSTD_DCtx_setParameter(d, ZSTD_d_windowLogMax, wlog);
	if (!ZSTD_isError(zr) && prefix_len)
		zr = ZSTD_DCtx_refPrefix(d, prefix, prefix_len);
	if (ZSTD_isError(zr)) {
		r = zstd_enc_rc(zr);
		goto out;
	}
	do {
		ZSTD_outBuffer o = { obuf, osize, 0 };

		if (in.pos == in.size && !eof) {
			ssize_t n = ug_read_full(delta_fd, ibuf, isize);
			if (n < 0) {
				r = (int)n;
				goto out;
			}
			eof = (size_t)n < isize;
			in = (ZSTD_inBuffer){ ibuf, (size_t)n, 0 };
		}
		zr = ZSTD_decompressStream(d, &o, &in);
		if (ZSTD_isError(zr)) {
			r = zstd_dec_rc(zr);
			goto out;
		}
		r = split_write(s, obuf, o.pos);
		if (r < 0)
			goto out;
		/* Output space left means the decoder wants input. */
		if (zr != 0 && eof && in.pos == in.size && o.pos < o.size) {
			r = -EBADMSG; /* truncated frame */
			goto out;
		}
	} while (zr != 0);
	/* One frame, nothing after it: the prefix only applies to the first
	 * frame, and trailing bytes mean the delta is not what was made. */
	if (in.pos < in.size) {
		r = -EBADMSG;
		goto out;
	}
	if (!eof) {
		uint8_t extra;
		ssize_t n = ug_read_full(delta_fd, &extra, 1);
		if (n != 0) {
			r = n < 0 ? (int)n : -EBADMSG;
			goto out;
		}
	}
	split_skip_full(s);
	if (s->i != s->n)
		r = -EBADMSG; /* less output than expected */
out:
	free(ibuf);
	free(obuf);
	ZSTD_freeDCtx(d);
	return r;
}

int ug_delta_zstd_create(int base_fd, int target_fd, int out_fd,
			 const struct ug_delta_params *p, uint64_t *ret_size,
			 uint64_t *ret_memory)
{
	return ug_delta_bundle_create(&base_fd, 1, &target_fd, 1, out_fd, p,
				      ret_size, ret_memory);
}

int ug_delta_zstd_apply(int base_fd, int delta_fd, int out_fd,
			uint64_t expect_size, uint64_t max_memory)
{
	return ug_delta_bundle_apply(&base_fd, 1, delta_fd, &out_fd,
				     &expect_size, 1, max_memory);
}

int ug_delta_bundle_create(const int *base_fds, size_t nbases,
			   const int *target_fds, size_t ntargets, int out_fd,
			   const struct ug_delta_params *p, uint64_t *ret_size,
			   uint64_t *ret_memory)
{
	struct ug_delta_params defaults;
	uint64_t *sizes, bases, targets, total, limit, size = 0;
	uint8_t *prefix = NULL;
	int wlog, r;

	if (ntargets == 0 || (nbases && !base_fds) || !target_fds)
		return -EINVAL;
	if (!p) {
		ug_delta_params_default(&defaults);
		p = &defaults;
	}
	if (nbases > SIZE_MAX / sizeof(*sizes) - ntargets)
		return -E2BIG;
	sizes = calloc(nbases + ntargets, sizeof(*sizes));
	if (!sizes)
		return -ENOMEM;
	r = sizes_of(base_fds, nbases, sizes, &bases);
	if (r < 0)
		goto out;
	r = sizes_of(target_fds, ntargets, sizes + nbases, &targets);
	if (r < 0)
		goto out;
	limit = p->window < UG_DELTA_WINDOW_MAX ? p->window : UG_DELTA_WINDOW_MAX;
	if (u64_add(bases, targets, &total) < 0 || total > limit) {
		r = -EFBIG;
		goto out;
	}
	wlog = wlog_ceil(total);
	r = bases_load(base_fds, sizes, nbases, bases, &prefix);
	if (r < 0)
		goto out;
	r = prefix_encode(prefix, (size_t)bases, target_fds, sizes + nbases,
			  ntargets, targets, wlog, out_fd, p, &size);
	if (r < 0)
		goto out;
	if (ret_size)
		*ret_size = size;
	/* The applier holds every base (the prefix) plus a decoding window of
	 * at most 2^windowLog (zstd may pick a smaller one for small input):
	 * memory = sum(bases) + 2^windowLog. zstd's fixed overhead (context
	 * and two 128 KiB blocks) is not counted, here nor in max_memory. */
	if (ret_memory)
		*ret_memory = bases + (1ull << wlog);
out:
	free(prefix);
	free(sizes);
	return r;
}

int ug_delta_bundle_apply(const int *base_fds, size_t nbases, int delta_fd,
			  const int *out_fds, const uint64_t *out_sizes,
			  size_t nouts, uint64_t max_memory)
{
	struct split_out s = { out_fds, out_sizes, nouts, 0, 0 };
	uint64_t *sizes, bases;
	uint8_t *prefix = NULL;
	int wlog, r;

	if (nouts == 0 || !out_fds || !out_sizes || (nbases && !base_fds))
		return -EINVAL;
	sizes = calloc(nbases ? nbases : 1, sizeof(*sizes));
	if (!sizes)
		return -ENOMEM;
	r = sizes_of(base_fds, nbases, sizes, &bases);
	if (r == -EFBIG)
		r = -E2BIG;
	if (r < 0)
		goto out;
	/* max_memory covers the bases plus the window (see ret_memory in
	 * ug_delta_bundle_create); the frame's window must fit what is left. */
	if (bases > max_memory) {
		r = -E2BIG;
		goto out;
	}
	wlog = wlog_floor(max_memory - bases);
	if (wlog < 0) {
		r = -E2BIG;
		goto out;
	}
	r = bases_load(base_fds, sizes, nbases, bases, &prefix);
	if (r < 0)
		goto out;
	r = prefix_decode(prefix, (size_t)bases, wlog, delta_fd, &s);
out:
	free(prefix);
	free(sizes);
	return r;
}

/* ------------------------------------------------- in-memory zstd */

int ug_zstd_compress_buf(const void *src, size_t len, int level,
			 const void *prefix, size_t prefix_len,
			 uint8_t **ret, size_t *ret_len)
{
	ZSTD_CCtx *c = NULL;
	size_t cap = ZSTD_compressBound(len), zr;
	uint8_t *out;
	int r;

	if (ZSTD_isError(cap))
		return -E2BIG;
	r = zstd_cctx_new(level, 0, &c);
	if (r < 0)
		return r;
	out = malloc(cap ? cap : 1);
	if (!out) {
		ZSTD_freeCCtx(c);
		return -ENOMEM;
	}
	zr = 0;
	if (prefix_len) {
		uint64_t total = (uint64_t)prefix_len + len;

		zr = ZSTD_CCtx_setParameter(c, ZSTD_c_windowLog, wlog_ceil(total));
		if (!ZSTD_isError(zr))
			zr = ZSTD_CCtx_setParameter(c, ZSTD_c_enableLongDistanceMatching, 1);
		if (!ZSTD_isError(zr))
			zr = ZSTD_CCtx_refPrefix(c, prefix, prefix_len);
	}
	if (!ZSTD_isError(zr))
		zr = ZSTD_compress2(c, out, cap, src, len);
	ZSTD_freeCCtx(c);
	if (ZSTD_isError(zr)) {
		free(out);
		return zstd_enc_rc(zr);
	}
	*ret = out;
	*ret_len = zr;
	return 0;
}

/* Grow the output of ug_zstd_decompress_buf: start at first, then double,
 * never past max. One extra byte is kept for a terminating NUL. */
static int grow(uint8_t **buf, size_t *alloc, size_t first, size_t max)
{
	size_t n;
	uint8_t *p;

	if (!*buf)
		n = first;
	else if (*alloc < 4096)
		n = 4096;
	else
		n = *alloc <= max / 2 ? *alloc * 2 : max;
	if (n > max)
		n = max;
	p = realloc(*buf, n + 1);
	if (!p)
		return -ENOMEM;
	*buf = p;
	*alloc = n;
	return 0;
}

int ug_zstd_decompress_buf(const void *src, size_t len, const void *prefix,
			   size_t prefix_len, size_t max, uint8_t **ret,
			   size_t *ret_len)
{
	unsigned long long fcs;
	ZSTD_DCtx *d = NULL;
	ZSTD_inBuffer in = { src, len, 0 };
	ZSTD_outBuffer o = { NULL, 0, 0 };
	uint8_t *out = NULL;
	size_t alloc = 0, first = DECOMPRESS_BUF_FIRST, zr;
	int r = 0;

	if (len == 0)
		return -EBADMSG;
	fcs = ZSTD_getFrameContentSize(src, len);
	if (fcs == ZSTD_CONTENTSIZE_ERROR)
		return -EBADMSG;
	if (fcs != ZSTD_CONTENTSIZE_UNKNOWN) {
		if (fcs > max)
			return -E2BIG;
		/* The declared size is only a hint: a lie costs doublings. */
		if (fcs < first)
			first = (size_t)fcs;
	}
	if (max == SIZE_MAX)
		max--; /* keep alloc + 1 from overflowing */
	d = ZSTD_createDCtx();
	if (!d)
		return -ENOMEM;
	zr = ZSTD_DCtx_setParameter(d, ZSTD_d_windowLogMax,
				    wlog_ceil((uint64_t)prefix_len + max));
	if (!ZSTD_isError(zr) && prefix_len)
		zr = ZSTD_DCtx_refPrefix(d, prefix, prefix_len);
	if (ZSTD_isError(zr)) {
		r = zstd_enc_rc(zr);
		goto out;
	}
	r = grow(&out, &alloc, first, max);
	if (r < 0)
		goto out;
	for (;;) {
		if (o.pos == alloc && alloc < max) {
			r = grow(&out, &alloc, first, max);
			if (r < 0)
				goto out;
		}
		if (o.pos == alloc) {
			/* Full at max: the frame may still end without more
			 * output (last block, checksum), so offer one byte. */
			uint8_t probe;
			ZSTD_outBuffer po = { &probe, 1, 0 };

			zr = ZSTD_decompressStream(d, &po, &in);
			if (ZSTD_isError(zr)) {
				r = zstd_dec_rc(zr);
				goto out;
			}
			if (po.pos) {
				r = -E2BIG;
				goto out;
			}
			if (zr == 0)
				break;
			if (in.pos == in.size) {
				r = -EBADMSG; /* truncated */
				goto out;
			}
			continue;
		}
		o.dst = out;
		o.size = alloc;
		zr = ZSTD_decompressStream(d, &o, &in);
		if (ZSTD_isError(zr)) {
			r = zstd_dec_rc(zr);
			goto out;
		}
		if (zr == 0)
			break;
		/* Output space left means the decoder wants input. */
		if (in.pos == in.size && o.pos < o.size) {
			r = -EBADMSG; /* truncated */
			goto out;
		}
	}
	if (in.pos < in.size) {
		r = -EBADMSG; /* trailing bytes after the frame */
		goto out;
	}
	out[o.pos] = 0;
	*ret = out;
	*ret_len = o.pos;
	out = NULL;
out:
	free(out);
	ZSTD_freeDCtx(d);
	return r;
}

/* ---------------------------------------------------------------- librsync */

/* librsync logs to stderr by default and the library never prints. The
 * trace settings are process globals; setting them on every call is
 * idempotent and needs no init function. */
static void rs_silent(rs_loglevel level, char const *msg)
{
	(void)level;
	(void)msg;
}

static void rs_quiet(void)
{
	rs_trace_set_level(RS_LOG_EMERG);
	rs_trace_to(rs_silent);
}

/* Where a job's output goes. */
struct sink {
	int (*write)(struct sink *s, const uint8_t *p, size_t len);
};

/* Plain fd writer, optionally refusing to go past limit (patch output). */
struct fd_sink {
	struct sink s;
	int fd;
	uint64_t total;
	uint64_t limit;
};

static int fd_sink_write(struct sink *s, const uint8_t *p, size_t len)
{
	struct fd_sink *f = (struct fd_sink *)s;
	int r;

	if (len > f->limit - f->total)
		return -EBADMSG;
	r = ug_write_all(f->fd, p, len);
	if (r < 0)
		return r;
	f->total += len;
	return 0;
}

/* zstd stream to an fd. The first RS_HOLD_MAX bytes are held back: a
 * delta that ends within them is compressed with its size known, so zstd
 * sizes its tables to the delta instead of to the level's maximum (level
 * 19 would otherwise clear ~80 MiB of tables for every small file). */
struct zenc_sink {
	struct sink s;
	ZSTD_CCtx *c;
	int fd;
	uint8_t *obuf;
	size_t osize;
	uint8_t *hold;
	size_t held;
	bool streaming;
	uint64_t total;
};

static int zenc_sink_write(struct sink *s, const uint8_t *p, size_t len)
{
	struct zenc_sink *z = (struct zenc_sink *)s;
	ZSTD_inBuffer in = { p, len, 0 };
	int r;

	if (!z->streaming) {
		if (len <= RS_HOLD_MAX - z->held) {
			memcpy(z->hold + z->held, p, len);
			z->held += len;
			return 0;
		}
		z->streaming = true;
		if (z->held) {
			ZSTD_inBuffer h = { z->hold, z->held, 0 };

			r = zstd_pump(z->c, &h, ZSTD_e_continue, z->obuf,
				      z->osize, z->fd, &z->total);
			if (r < 0)
				return r;
		}
	}
	return zstd_pump(z->c, &in, ZSTD_e_continue, z->obuf, z->osize, z->fd,
			 &z->total);
}

static int zenc_sink_init(struct zenc_sink *z, int fd,
			  const struct ug_delta_params *p)
{
	size_t zr;
	int r;

	*z = (struct zenc_sink){ .s.write = zenc_sink_write, .fd = fd };
	r = zstd_cctx_new(p->level, p->threads, &z->c);
	if (r < 0)
		return r;
	zr = ZSTD_CCtx_setParameter(z->c, ZSTD_c_windowLog, RS_ZSTD_WINDOWLOG);
	if (ZSTD_isError(zr)) {
		ZSTD_freeCCtx(z->c);
		return zstd_enc_rc(zr);
	}
	z->osize = ZSTD_CStreamOutSize();
	z->obuf = malloc(z->osize);
	z->hold = malloc(RS_HOLD_MAX);
	if (!z->obuf || !z->hold) {
		ZSTD_freeCCtx(z->c);
		free(z->obuf);
		free(z->hold);
		return -ENOMEM;
	}
	return 0;
}

static int zenc_sink_finish(struct zenc_sink *z)
{
	ZSTD_inBuffer in = { NULL, 0, 0 };

	if (!z->streaming) {
		size_t zr = ZSTD_CCtx_setPledgedSrcSize(z->c, z->held);

		if (ZSTD_isError(zr))
			return zstd_enc_rc(zr);
		in = (ZSTD_inBuffer){ z->hold, z->held, 0 };
	}
	return zstd_pump(z->c, &in, ZSTD_e_end, z->obuf, z->osize, z->fd,
			 &z->total);
}

static void zenc_sink_release(struct zenc_sink *z)
{
	ZSTD_freeCCtx(z->c);
	free(z->obuf);
	free(z->hold);
}

static int rs_rc(rs_result res, int corrupt)
{
	switch (res) {
	case RS_MEM_ERROR:
		return -ENOMEM;
	case RS_IO_ERROR:
		return -EIO;
	default:
		return corrupt;
	}
}

/* Run job over in[0..len) (the last input when eof), sending its output to
 * sink (NULL for the loadsig job, which has none). Returns 0 when the input
 * is used up, 1 when the job is done (*ret_left: input bytes it did not
 * take), or -errno; a librsync failure becomes `corrupt`. */
static int rs_feed(rs_job_t *job, const uint8_t *in, size_t len, bool eof,
		   struct sink *sink, uint8_t *obuf, size_t osize, int corrupt,
		   size_t *ret_left)
{
	rs_buffers_t b = {
		.next_in = (char *)in, .avail_in = len, .eof_in = eof,
	};

	if (!sink)
		osize = 0;
	for (;;) {
		size_t in_before = b.avail_in, produced;
		rs_result res;

		b.next_out = (char *)obuf;
		b.avail_out = osize;
		res = rs_job_iter(job, &b);
		produced = osize - b.avail_out;
		if (produced) {
			int r = sink->write(sink, obuf, produced);
			if (r < 0)
				return r;
		}
		if (res == RS_DONE) {
			if (ret_left)
				*ret_left = b.avail_in;
			return 1;
		}
		if (res != RS_BLOCKED)
			return rs_rc(res, corrupt);
		if (osize && produced == osize)
			continue; /* output was full: drain and go on */
		if (b.avail_in == 0 && !eof)
			return 0;
		/* librsync only reports "no progress" when it had both input
		 * and output; at EOF it could block forever instead. */
		if (produced == 0 && b.avail_in == in_before)
			return corrupt;
	}
}

/* Sink that loads a signature as it is generated (ug_delta_rsync_create),
 * so the signature itself never sits in memory next to the sumset. */
struct loadsig_sink {
	struct sink s;
	rs_job_t *job;
};

static int loadsig_sink_write(struct sink *s, const uint8_t *p, size_t len)
{
	struct loadsig_sink *l = (struct loadsig_sink *)s;
	int r = rs_feed(l->job, p, len, false, NULL, NULL, 0, -EIO, NULL);

	return r == 1 ? -EIO : r;
}

/* Signature of base_fd (pread from 0) into sink. */
static int rs_sig_run(int base_fd, struct sink *sink)
{
	rs_magic_number magic = RS_RK_BLAKE2_SIG_MAGIC;
	size_t block_len = 0, strong_len = 0;
	uint8_t *ibuf = NULL, *obuf = NULL;
	rs_job_t *job = NULL;
	uint64_t size, off = 0;
	int r;

	r = fd_size(base_fd, &size);
	if (r < 0)
		return r;
	/* Recommended block length (sqrt of the size), maximum strong sum:
	 * the signature may come back from a terminal, so collisions must
	 * be infeasible, not just unlikely. */
	if (rs_sig_args((rs_long_t)size, &magic, &block_len, &strong_len) != RS_DONE)
		return -EINVAL;
	ibuf = malloc(RS_BUF_SIZE);
	obuf = malloc(RS_BUF_SIZE);
	job = rs_sig_begin(block_len, strong_len, magic);
	if (!ibuf || !obuf || !job) {
		r = -ENOMEM;
		goto out;
	}
	for (;;) {
		ssize_t n = pread_full(base_fd, ibuf, RS_BUF_SIZE, off);
		if (n < 0) {
			r = (int)n;
			goto out;
		}
		off += (uint64_t)n;
		r = rs_feed(job, ibuf, (size_t)n, n == 0, sink, obuf,
			    RS_BUF_SIZE, -EIO, NULL);
		if (r < 0)
			goto out;
		if (r == 1)
			break;
		if (n == 0) {
			r = -EIO; /* EOF given but the job did not finish */
			goto out;
		}
	}
	r = 0;
out:
	if (job)
		rs_job_free(job);
	free(ibuf);
	free(obuf);
	return r;
}

/* Delta of target_fd against sig, zstd-compressed into out_fd. */
static int rs_delta_run(rs_signature_t *sig, int target_fd, int out_fd,
			const struct ug_delta_params *p, uint64_t *ret_size)
{
	struct ug_delta_params defaults;
	struct zenc_sink z;
	uint8_t *ibuf = NULL, *obuf = NULL;
	rs_job_t *job = NULL;
	uint64_t off = 0;
	int r;

	if (!p) {
		ug_delta_params_default(&defaults);
		p = &defaults;
	}
	r = zenc_sink_init(&z, out_fd, p);
	if (r < 0)
		return r;
	ibuf = malloc(RS_BUF_SIZE);
	obuf = malloc(RS_BUF_SIZE);
	job = rs_delta_begin(sig);
	if (!ibuf || !obuf || !job) {
		r = -ENOMEM;
		goto out;
	}
	for (;;) {
		ssize_t n = pread_full(target_fd, ibuf, RS_BUF_SIZE, off);
		if (n < 0) {
			r = (int)n;
			goto out;
		}
		off += (uint64_t)n;
		r = rs_feed(job, ibuf, (size_t)n, n == 0, &z.s, obuf,
			    RS_BUF_SIZE, -EIO, NULL);
		if (r < 0)
			goto out;
		if (r == 1)
			break;
		if (n == 0) {
			r = -EIO;
			goto out;
		}
	}
	r = zenc_sink_finish(&z);
	if (r < 0)
		goto out;
	if (ret_size)
		*ret_size = z.total;
out:
	if (job)
		rs_job_free(job);
	free(ibuf);
	free(obuf);
	zenc_sink_release(&z);
	return r;
}

/* rs_delta_begin only asserts that the hash table was built. */
static int rs_sig_index(rs_signature_t *sig)
{
	rs_result res = rs_build_hash_table(sig);

	return res == RS_DONE ? 0 : rs_rc(res, -EBADMSG);
}

int ug_delta_rsync_signature(int base_fd, int out_fd, uint64_t *ret_size)
{
	struct fd_sink f = { .s.write = fd_sink_write, .fd = out_fd,
			     .limit = UINT64_MAX };
	int r;

	rs_quiet();
	r = rs_sig_run(base_fd, &f.s);
	if (r < 0)
		return r;
	if (ret_size)
		*ret_size = f.total;
	return 0;
}

static uint32_t be32(const uint8_t *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 |
	       (uint32_t)p[2] << 8 | (uint32_t)p[3];
}

int ug_delta_rsync_from_signature(int sig_fd, int target_fd, int out_fd,
				  const struct ug_delta_params *p,
				  uint64_t *ret_size)
{
	uint8_t hdr[RS_SIG_HEADER_LEN], *ibuf = NULL;
	rs_signature_t *sig = NULL;
	rs_job_t *job = NULL;
	uint64_t total = RS_SIG_HEADER_LEN, size = 0;
	uint32_t magic, block_len, strong_len;
	struct stat st;
	ssize_t n;
	int r;

	rs_quiet();
	/* Refuse an oversized signature file before reading any of it. */
	if (fstat(sig_fd, &st) == 0 && S_ISREG(st.st_mode)) {
		off_t pos = lseek(sig_fd, 0, SEEK_CUR);
		if (pos >= 0 && st.st_size > pos &&
		    (uint64_t)(st.st_size - pos) > UG_RSYNC_SIG_MAX)
			return -E2BIG;
	}
	n = ug_read_full(sig_fd, hdr, sizeof(hdr));
	if (n < 0)
		return (int)n;
	if ((size_t)n < sizeof(hdr))
		return -EBADMSG;
	/* librsync asserts on some header values and buffers a whole block
	 * per match attempt, so check the header ourselves first. MD4
	 * signatures (CVE-2014-8242) are never produced here. */
	magic = be32(hdr);
	block_len = be32(hdr + 4);
	strong_len = be32(hdr + 8);
	if ((magic != RS_RK_BLAKE2_SIG_MAGIC && magic != RS_BLAKE2_SIG_MAGIC) ||
	    block_len < 1 || block_len > RS_BLOCK_MAX ||
	    strong_len < 1 || strong_len > 32)
		return -EBADMSG;
	ibuf = malloc(RS_BUF_SIZE);
	job = rs_loadsig_begin(&sig);
	if (!ibuf || !job) {
		r = -ENOMEM;
		goto out;
	}
	r = rs_feed(job, hdr, sizeof(hdr), false, NULL, NULL, 0, -EBADMSG, NULL);
	while (r == 0) {
		n = ug_read_full(sig_fd, ibuf, RS_BUF_SIZE);
		if (n < 0) {
			r = (int)n;
			goto out;
		}
		if ((uint64_t)n > UG_RSYNC_SIG_MAX - total) {
			r = -E2BIG;
			goto out;
		}
		total += (uint64_t)n;
		r = rs_feed(job, ibuf, (size_t)n, n == 0, NULL, NULL, 0,
			    -EBADMSG, NULL);
		if (r == 0 && n == 0)
			r = -EBADMSG;
	}
	if (r < 0)
		goto out;
	rs_job_free(job);
	job = NULL;
	r = rs_sig_index(sig);
	if (r < 0)
		goto out;
	r = rs_delta_run(sig, target_fd, out_fd, p, &size);
	if (r < 0)
		goto out;
	if (ret_size)
		*ret_size = size;
out:
	if (job)
		rs_job_free(job);
	if (sig)
		rs_free_sumset(sig);
	free(ibuf);
	return r;
}

int ug_delta_rsync_create(int base_fd, int target_fd, int out_fd,
			  const struct ug_delta_params *p, uint64_t *ret_size)
{
	struct loadsig_sink l = { .s.write = loadsig_sink_write };
	rs_signature_t *sig = NULL;
	uint64_t size = 0;
	int r;

	rs_quiet();
	l.job = rs_loadsig_begin(&sig);
	if (!l.job)
		return -ENOMEM;
	r = rs_sig_run(base_fd, &l.s);
	if (r < 0)
		goto out;
	r = rs_feed(l.job, NULL, 0, true, NULL, NULL, 0, -EIO, NULL);
	if (r == 0)
		r = -EIO;
	if (r < 0)
		goto out;
	rs_job_free(l.job);
	l.job = NULL;
	r = rs_sig_index(sig);
	if (r < 0)
		goto out;
	r = rs_delta_run(sig, target_fd, out_fd, p, &size);
	if (r < 0)
		goto out;
	if (ret_size)
		*ret_size = size;
out:
	if (l.job)
		rs_job_free(l.job);
	if (sig)
		rs_free_sumset(sig);
	return r;
}

/* Decompressing reader over delta_fd: exactly one zstd frame, nothing
 * after it. */
struct zdec_src {
	ZSTD_DCtx *d;
	int fd;
	uint8_t *ibuf;
	size_t isize;
	ZSTD_inBuffer in;
	bool eof;
	bool done;
};

static int zdec_src_init(struct zdec_src *z, int fd)
{
	size_t zr;

	*z = (struct zdec_src){ .fd = fd, .isize = ZSTD_DStreamInSize() };
	z->d = ZSTD_createDCtx();
	z->ibuf = malloc(z->isize);
	if (!z->d || !z->ibuf)
		return -ENOMEM;
	zr = ZSTD_DCtx_setParameter(z->d, ZSTD_d_windowLogMax, RS_ZSTD_WINDOWLOG);
	return ZSTD_isError(zr) ? zstd_enc_rc(zr) : 0;
}

static void zdec_src_release(struct zdec_src *z)
{
	ZSTD_freeDCtx(z->d);
	free(z->ibuf);
}

/* Up to len decompressed bytes; 0 once the frame has ended cleanly. */
static ssize_t zdec_src_read(struct zdec_src *z, uint8_t *buf, size_t len)
{
	ZSTD_outBuffer o = { buf, len, 0 };

	while (!z->done && o.pos == 0) {
		size_t zr;

		if (z->in.pos == z->in.size && !z->eof) {
			ssize_t n = ug_read_full(z->fd, z->ibuf, z->isize);
			if (n < 0)
				return n;
			z->eof = (size_t)n < z->isize;
			z->in = (ZSTD_inBuffer){ z->ibuf, (size_t)n, 0 };
		}
		zr = ZSTD_decompressStream(z->d, &o, &z->in);
		if (ZSTD_isError(zr))
			return zstd_dec_rc(zr);
		if (zr == 0) {
			z->done = true;
			if (z->in.pos < z->in.size)
				return -EBADMSG;
			if (!z->eof) {
				uint8_t extra;
				ssize_t n = ug_read_full(z->fd, &extra, 1);
				if (n != 0)
					return n < 0 ? n : -EBADMSG;
			}
		} else if (z->eof && z->in.pos == z->in.size && o.pos < o.size) {
			return -EBADMSG; /* truncated frame */
		}
	}
	return (ssize_t)o.pos;
}

struct basis {
	int fd;
	uint64_t size;
};

static rs_result rs_copy_pread(void *arg, rs_long_t pos, size_t *len, void **buf)
{
	struct basis *b = arg;
	ssize_t n;

	/* A copy outside the base: corrupt delta or the wrong base. */
	if (pos < 0 || (uint64_t)pos >= b->size || *len == 0)
		return RS_CORRUPT;
	n = pread_full(b->fd, *buf, *len, (uint64_t)pos);
	if (n < 0)
		return RS_IO_ERROR;
	if (n == 0)
		return RS_CORRUPT;
	*len = (size_t)n;
	return RS_DONE;
}

int ug_delta_rsync_apply(int base_fd, int delta_fd, int out_fd,
			 uint64_t expect_size)
{
	struct fd_sink f = { .s.write = fd_sink_write, .fd = out_fd,
			     .limit = expect_size };
	struct basis base = { .fd = base_fd };
	struct zdec_src z;
	uint8_t *ibuf = NULL, *obuf = NULL;
	rs_job_t *job = NULL;
	size_t left = 0;
	ssize_t n;
	int r;

	rs_quiet();
	r = fd_size(base_fd, &base.size);
	if (r < 0)
		return r;
	r = zdec_src_init(&z, delta_fd);
	if (r < 0)
		goto out;
	ibuf = malloc(RS_BUF_SIZE);
	obuf = malloc(RS_BUF_SIZE);
	job = rs_patch_begin(rs_copy_pread, &base);
	if (!ibuf || !obuf || !job) {
		r = -ENOMEM;
		goto out;
	}
	do {
		n = zdec_src_read(&z, ibuf, RS_BUF_SIZE);
		if (n < 0) {
			r = (int)n;
			goto out;
		}
		r = rs_feed(job, ibuf, (size_t)n, n == 0, &f.s, obuf,
			    RS_BUF_SIZE, -EBADMSG, &left);
		if (r < 0)
			goto out;
		if (r == 0 && n == 0) {
			r = -EBADMSG;
			goto out;
		}
	} while (r == 0);
	/* The patch ended: nothing may follow it, and the zstd frame must
	 * end too (that is where its checksum is verified). */
	if (left) {
		r = -EBADMSG;
		goto out;
	}
	n = zdec_src_read(&z, ibuf, RS_BUF_SIZE);
	if (n != 0) {
		r = n < 0 ? (int)n : -EBADMSG;
		goto out;
	}
	r = f.total == expect_size ? 0 : -EBADMSG;
out:
	if (job)
		rs_job_free(job);
	free(ibuf);
	free(obuf);
	zdec_src_release(&z);
	return r;
}

int ug_delta_apply(enum ug_codec codec, int base_fd, int delta_fd, int out_fd,
		   uint64_t expect_size, uint64_t max_memory)
{
	switch (codec) {
	case UG_CODEC_ZSTD_PREFIX:
		return ug_delta_zstd_apply(base_fd, delta_fd, out_fd, expect_size, max_memory);
	case UG_CODEC_RSYNC_ZSTD:
		return ug_delta_rsync_apply(base_fd, delta_fd, out_fd, expect_size);
	default:
		return -EINVAL;
	}
}

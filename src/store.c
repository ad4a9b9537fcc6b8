/* store.c - the on-disk repo: objects, deltas, manifests, refs, config. */
#include "config.h"

#include <dirent.h>
#include <fcntl.h>
#include <inttypes.h>
#include <ini.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <poll.h>
#include <sys/file.h>
#include <sys/inotify.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include <zstd.h>
#include <zstd_errors.h>

#include "delta.h"
#include "rollout.h"
#include "store.h"

#define STORE_FORMAT 1
#define CHUNK (256u << 10)
#define CONFIG_MAX (64u << 10)
/* Objects are written by us, but a repo copied from elsewhere is not
 * trusted: cap the decoder window (zstd -19 uses at most 2^23 bytes). */
#define OBJECT_WINDOW_LOG_MAX 27

static const char *const store_dirs[] = {
	"objects", "deltas", "manifests", "refs", "tmp",
};

void ug_store_config_default(struct ug_store_config *c)
{
	c->keep_deltas = 3;
	c->level = UG_DELTA_LEVEL_DEFAULT;
	c->fallback_level = UG_FALLBACK_LEVEL_DEFAULT;
	c->window = UG_DELTA_WINDOW_DEFAULT;
	c->threads = 0;
	c->expire_days = 365;
}

/* ---------------------------------------------------------------- config */

/* Parsed through ug_ini_read_line (util.h) so the handler knows its own
 * line and an overlong line cannot hide a setting. */
struct config_parse {
	struct ug_store_config *cfg;
	struct ug_error *err;
	const struct ug_ini_reader *rd;
	int rc;
	int line;		/* of the handler's error */
	bool have_format;
};

static int config_handler(void *user, const char *section, const char *name,
			  const char *value)
{
	struct config_parse *cp = user;
	uint64_t v;
	int r = 0;

	if (cp->rc < 0)
		return 0;
	cp->line = cp->rd->line;
	if (section[0] == '\0') {
		cp->rc = ug_error_set(cp->err, -EINVAL, "'%s' is outside the [repo] section", name);
		return 0;
	}
	if (strcmp(section, "repo") != 0) {
		cp->rc = ug_error_set(cp->err, -EINVAL, "unknown section [%s]", section);
		return 0;
	}
	if (strcmp(name, "format") == 0) {
		r = ug_parse_u64(value, UINT32_MAX, &v);
		if (r == 0 && v != STORE_FORMAT) {
			cp->rc = ug_error_set(cp->err, -EPROTONOSUPPORT,
					      "repo format %s is not supported by this upgrid (format %d)",
					      value, STORE_FORMAT);
			return 0;
		}
		cp->have_format = true;
	} else if (strcmp(name, "keep-deltas") == 0) {
		r = ug_parse_u64(value, 16, &v);
		if (r == 0)
			cp->cfg->keep_deltas = (unsigned)v;
	} else if (strcmp(name, "level") == 0) {
		r = ug_parse_u64(value, (uint64_t)ZSTD_maxCLevel(), &v);
		if (r == 0 && v < 1)
			r = -ERANGE;
		if (r == 0)
			cp->cfg->level = (int)v;
	} else if (strcmp(name, "fallback-level") == 0) {
		r = ug_parse_u64(value, (uint64_t)ZSTD_maxCLevel(), &v);
		if (r == 0 && v < 1)
			r = -ERANGE;
		if (r == 0)
			cp->cfg->fallback_level = (int)v;
	} else if (strcmp(name, "window") == 0) {
		r = ug_parse_size(value, UG_DELTA_WINDOW_MAX, &v);
		if (r == 0 && v < (1u << 20))
			r = -ERANGE;
		if (r == 0)
			cp->cfg->window = v;
	} else if (strcmp(name, "threads") == 0) {
		r = ug_parse_u64(value, 64, &v);
		if (r == 0)
			cp->cfg->threads = (unsigned)v;
	} else if (strcmp(name, "expire-days") == 0) {
		r = ug_parse_u64(value, 36500, &v);
		if (r == 0 && v < 1)
			r = -ERANGE;
		if (r == 0)
			cp->cfg->expire_days = (unsigned)v;
	} else {
		cp->rc = ug_error_set(cp->err, -EINVAL, "unknown setting '%s'", name);
		return 0;
	}
	if (r < 0)
		cp->rc = ug_error_set(cp->err, -EINVAL, "bad value '%s' for '%s'%s",
				      value, name,
				      r == -ERANGE ? " (out of range)" : "");
	return cp->rc < 0 ? 0 : 1;
}

static int config_load(int dirfd, struct ug_store_config *cfg, struct ug_error *err)
{
	struct ug_ini_reader rd = { 0 };
	struct config_parse cp = { .cfg = cfg, .err = err, .rd = &rd };
	char *text = NULL;
	size_t len;
	int r;

	ug_store_config_default(cfg);
	r = ug_file_read(dirfd, "config", CONFIG_MAX, &text, &len);
	if (r < 0)
		return ug_error_set(err, r, "cannot read 'config': %s", strerror(-r));
	if (strlen(text) != len) {
		free(text);
		return ug_error_set(err, -EBADMSG, "'config' contains a NUL byte");
	}
	rd.p = text;
	rd.left = len;
	r = ini_parse_stream(ug_ini_read_line, &rd, config_handler, &cp);
	free(text);
	if (r < 0)
		return ug_error_set(err, -ENOMEM, "cannot parse 'config': out of memory");
	/* report the first error in the file */
	if (cp.rc < 0 && (r == 0 || cp.line <= r)) {
		char msg[sizeof(err->msg)];
		if (err) {
			snprintf(msg, sizeof(msg), "%s", err->msg);
			ug_error_set(err, cp.rc, "line %d: %s", cp.line, msg);
		}
		return cp.rc;
	}
	if (r != 0)
		return ug_error_set(err, -EINVAL, "line %d: syntax error", r);
	if (rd.too_long)
		return ug_error_set(err, -EINVAL, "line %d: longer than %d bytes",
				    rd.line, rd.line_max);
	if (!cp.have_format)
		return ug_error_set(err, -EINVAL, "'config' has no 'format' setting: not an upgrid repo?");
	return 0;
}

/* ---------------------------------------------------------------- open */

int ug_store_create(const char *path, struct ug_error *err)
{
	static const char config[] =
		"# upgrid repo settings, see upgrid.conf(5)\n"
		"[repo]\n"
		"format = 1\n"
		"keep-deltas = 3\n"
		"level = 19\n"
		"fallback-level = 12\n"
		"window = 256M\n"
		"threads = 0\n"
		"expire-days = 365\n";
	DIR *d;
	struct dirent *de;
	int dirfd, r = 0;

	if (mkdir(path, 0755) < 0 && errno != EEXIST)
		return ug_error_set(err, -errno, "cannot create '%s': %s", path, strerror(errno));
	dirfd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (dirfd < 0)
		return ug_error_set(err, -errno, "cannot open '%s': %s", path, strerror(errno));
	d = fdopendir(fcntl(dirfd, F_DUPFD_CLOEXEC, 0));
	if (!d) {
		r = ug_error_set(err, -errno, "cannot list '%s': %s", path, strerror(errno));
		goto out;
	}
	while ((de = readdir(d)) != NULL) {
		if (strcmp(de->d_name, ".") && strcmp(de->d_name, "..")) {
			r = ug_error_set(err, -EEXIST,
					 "'%s' is not empty; upgrid init needs a new or empty directory", path);
			break;
		}
	}
	closedir(d);
	if (r < 0)
		goto out;
	for (size_t i = 0; i < sizeof(store_dirs) / sizeof(store_dirs[0]); i++) {
		if (mkdirat(dirfd, store_dirs[i], 0755) < 0) {
			r = ug_error_set(err, -errno, "cannot create '%s/%s': %s", path,
					 store_dirs[i], strerror(errno));
			goto out;
		}
	}
	r = ug_file_write_atomic(dirfd, "config", config, sizeof(config) - 1, 0644);
	if (r < 0)
		ug_error_set(err, r, "cannot write '%s/config': %s", path, strerror(-r));
out:
	close(dirfd);
	return r;
}

int ug_store_open(const char *path, struct ug_store **ret, struct ug_error *err)
{
	struct ug_store *s;
	struct ug_error cerr = { "" };
	int r;

	s = calloc(1, sizeof(*s));
	if (!s)
		return -ENOMEM;
	s->lockfd = -1;
	s->path = strdup(path);
	if (!s->path) {
		free(s);
		return -ENOMEM;
	}
	s->dirfd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (s->dirfd < 0) {
		r = -errno;
		ug_error_set(err, r, "cannot open repo '%s': %s%s", path, strerror(-r),
			     r == -ENOENT ? " (create it with 'upgrid init')" : "");
		ug_store_free(s);
		return r;
	}
	r = config_load(s->dirfd, &s->cfg, &cerr);
	if (r < 0) {
		if (r == -ENOENT)
			ug_error_set(err, r, "'%s' is not an upgrid repo (no 'config'); create one with 'upgrid init'",
				     path);
		else
			ug_error_set(err, r, "'%s/config': %s", path, cerr.msg);
		ug_store_free(s);
		return r;
	}
	*ret = s;
	return 0;
}

void ug_store_free(struct ug_store *s)
{
	if (!s)
		return;
	if (s->lockfd >= 0)
		close(s->lockfd);
	if (s->dirfd >= 0)
		close(s->dirfd);
	free(s->path);
	free(s);
}

int ug_store_lock(struct ug_store *s, bool wait)
{
	int fd;

	if (s->lockfd >= 0)
		return 0;
	fd = openat(s->dirfd, "lock", O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0644);
	if (fd < 0)
		return -errno;
	while (flock(fd, LOCK_EX | (wait ? 0 : LOCK_NB)) < 0) {
		int e = errno;
		if (e == EINTR)
			continue;
		close(fd);
		return e == EWOULDBLOCK ? -EWOULDBLOCK : -e;
	}
	s->lockfd = fd;
	return 0;
}

/* ---------------------------------------------------------------- naming */

/* "objects/ab/cdef..." */
static void hash_path(const char *kind, const struct ug_hash *h, char *out, size_t n)
{
	char hex[UG_HASH_HEX_LEN + 1];

	ug_hash_hex(h, hex);
	snprintf(out, n, "%s/%.2s/%s", kind, hex, hex + 2);
}

static const char *kind_dir(enum ug_store_kind k)
{
	return k == UG_STORE_OBJECTS ? "objects" : "deltas";
}

/* Only a regular file counts: a symlink or directory squatting on an
 * object's name must not stop the real object from being written. */
static bool regular_exists(int dirfd, const char *path)
{
	struct stat st;

	return fstatat(dirfd, path, &st, AT_SYMLINK_NOFOLLOW) == 0 && S_ISREG(st.st_mode);
}

/* Move tmp/NAME to its content-addressed place; if the content already
 * exists there, the new copy is dropped (same bytes by construction). */
static int publish_tmp(struct ug_store *s, int fd, const char *tmpname,
		       const char *kind, const struct ug_hash *h)
{
	char path[128], dir[16];
	char hex[UG_HASH_HEX_LEN + 1];
	int tmpdir, subdir, r;

	hash_path(kind, h, path, sizeof(path));
	tmpdir = openat(s->dirfd, "tmp", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (tmpdir < 0) {
		r = -errno;
		close(fd);
		return r;
	}
	if (regular_exists(s->dirfd, path)) {
		close(fd);
		unlinkat(tmpdir, tmpname, 0);
		close(tmpdir);
		return 0;
	}
	ug_hash_hex(h, hex);
	snprintf(dir, sizeof(dir), "%s/%.2s", kind, hex);
	if (mkdirat(s->dirfd, dir, 0755) < 0 && errno != EEXIST) {
		r = -errno;
		close(fd);
		unlinkat(tmpdir, tmpname, 0);
		close(tmpdir);
		return r;
	}
	subdir = openat(s->dirfd, dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC | O_NOFOLLOW);
	if (subdir < 0) {
		r = -errno;
		close(fd);
		unlinkat(tmpdir, tmpname, 0);
		close(tmpdir);
		return r;
	}
	r = ug_file_commit(fd, tmpdir, tmpname, subdir, hex + 2, 0444);
	close(subdir);
	close(tmpdir);
	return r;
}

static int open_tmp(struct ug_store *s, char *name, size_t n, int *ret_tmpdir)
{
	int tmpdir = openat(s->dirfd, "tmp", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	int fd;

	if (tmpdir < 0)
		return -errno;
	fd = ug_tmpfile_open(tmpdir, "put", name, n);
	if (fd < 0) {
		close(tmpdir);
		return fd;
	}
	*ret_tmpdir = tmpdir;
	return fd;
}

/* ---------------------------------------------------------------- objects */

static void header_encode(uint8_t h[UG_OBJ_HEADER_LEN], uint64_t size, const struct ug_xxh *x)
{
	memset(h, 0, UG_OBJ_HEADER_LEN);
	memcpy(h, UG_OBJ_MAGIC, 4);
	h[4] = STORE_FORMAT;
	for (int i = 0; i < 8; i++)
		h[8 + i] = (uint8_t)(size >> (56 - 8 * i));
	memcpy(h + 16, x->b, UG_XXH_LEN);
}

static int header_decode(const uint8_t h[UG_OBJ_HEADER_LEN], uint64_t *ret_size, struct ug_xxh *ret_x)
{
	uint64_t size = 0;

	if (memcmp(h, UG_OBJ_MAGIC, 4) != 0 || h[4] != STORE_FORMAT)
		return -EBADMSG;
	for (int i = 0; i < 8; i++)
		size = size << 8 | h[8 + i];
	if (size > UG_FILE_SIZE_MAX)
		return -EBADMSG;
	*ret_size = size;
	if (ret_x)
		memcpy(ret_x->b, h + 16, UG_XXH_LEN);
	return 0;
}

/* Stream src (pread from 0, or memory when src_fd < 0) through the hasher
 * and a zstd stream into the temp file out_fd after the header room. */
static int object_compress(struct ug_store *s, int src_fd, const void *mem, size_t mem_len,
			   int out_fd, struct ug_hash *ret_hash, struct ug_xxh *ret_xxh,
			   uint64_t *ret_size)
{
	uint8_t *in = NULL, *out = NULL;
	uint8_t header[UG_OBJ_HEADER_LEN] = { 0 };
	size_t outcap = ZSTD_CStreamOutSize();
	ZSTD_CCtx *cctx = NULL;
	struct ug_hasher h;
	uint64_t off = 0;
	int r;

	r = ug_hasher_init(&h);
	if (r < 0)
		return r;
	cctx = ZSTD_createCCtx();
	in = src_fd >= 0 ? malloc(CHUNK) : NULL;
	out = malloc(outcap);
	if (!cctx || !out || (src_fd >= 0 && !in)) {
		r = -ENOMEM;
		goto out;
	}
	/* objects are the full-download fallback: terminals mostly pull deltas */
	ZSTD_CCtx_setParameter(cctx, ZSTD_c_compressionLevel, s->cfg.fallback_level);
	ZSTD_CCtx_setParameter(cctx, ZSTD_c_checksumFlag, 1);
	/* Knowing the size lets zstd size its tables to the content: without
	 * it every small file pays for level 19's 8 MiB window. */
	{
		struct stat st;
		uint64_t pledged = mem_len;
		if (src_fd >= 0)
			pledged = fstat(src_fd, &st) == 0 && S_ISREG(st.st_mode) ? (uint64_t)st.st_size
										  : ZSTD_CONTENTSIZE_UNKNOWN;
		if (pledged != ZSTD_CONTENTSIZE_UNKNOWN)
			ZSTD_CCtx_setPledgedSrcSize(cctx, pledged);
		/* a libzstd without threads refuses: then it stays single */
		if (s->object_workers > 0 && pledged != ZSTD_CONTENTSIZE_UNKNOWN &&
		    pledged > (8u << 20))
			(void)ZSTD_CCtx_setParameter(cctx, ZSTD_c_nbWorkers, (int)s->object_workers);
	}
	r = ug_write_all(out_fd, header, sizeof(header));
	if (r < 0)
		goto out;
	for (;;) {
		ZSTD_inBuffer ib;
		ZSTD_EndDirective mode;
		size_t n;

		if (src_fd >= 0) {
			ssize_t got = pread(src_fd, in, CHUNK, (off_t)off);
			if (got < 0) {
				if (errno == EINTR)
					continue;
				r = -errno;
				goto out;
			}
			n = (size_t)got;
			ib = (ZSTD_inBuffer){ in, n, 0 };
		} else {
			n = mem_len - off > CHUNK ? CHUNK : mem_len - (size_t)off;
			ib = (ZSTD_inBuffer){ (const uint8_t *)mem + off, n, 0 };
		}
		if (h.size + n > UG_FILE_SIZE_MAX) {
			r = -EFBIG;
			goto out;
		}
		ug_hasher_update(&h, ib.src, n);
		off += n;
		mode = n == 0 ? ZSTD_e_end : ZSTD_e_continue;
		for (;;) {
			ZSTD_outBuffer ob = { out, outcap, 0 };
			size_t rem = ZSTD_compressStream2(cctx, &ob, &ib, mode);
			if (ZSTD_isError(rem)) {
				/* a size other than pledged: the file changed under us */
				r = ZSTD_getErrorCode(rem) == ZSTD_error_srcSize_wrong ? -UG_ECHANGED : -EIO;
				goto out;
			}
			r = ug_write_all(out_fd, out, ob.pos);
			if (r < 0)
				goto out;
			if (mode == ZSTD_e_end ? rem == 0 : ib.pos == ib.size)
				break;
		}
		if (n == 0)
			break;
	}
	{
		struct ug_hash hash;
		struct ug_xxh xxh;
		uint64_t size;

		ug_hasher_final(&h, &hash, &xxh, &size);
		header_encode(header, size, &xxh);
		if (pwrite(out_fd, header, sizeof(header), 0) != (ssize_t)sizeof(header)) {
			r = -EIO;
			goto out_final;
		}
		*ret_hash = hash;
		if (ret_xxh)
			*ret_xxh = xxh;
		if (ret_size)
			*ret_size = size;
		r = 0;
		goto out_final;
	}
out:
	ug_hasher_release(&h);
out_final:
	ZSTD_freeCCtx(cctx);
	free(in);
	free(out);
	return r;
}

static int object_put(struct ug_store *s, int src_fd, const void *mem, size_t len,
		      struct ug_hash *ret_hash, struct ug_xxh *ret_xxh, uint64_t *ret_size)
{
	char tmpname[128];
	struct ug_hash hash;
	struct ug_xxh xxh;
	uint64_t size = 0;
	int tmpdir, fd, r;

	fd = open_tmp(s, tmpname, sizeof(tmpname), &tmpdir);
	if (fd < 0)
		return fd;
	r = object_compress(s, src_fd, mem, len, fd, &hash, &xxh, &size);
	if (r < 0) {
		close(fd);
		unlinkat(tmpdir, tmpname, 0);
		close(tmpdir);
		return r;
	}
	close(tmpdir);
	r = publish_tmp(s, fd, tmpname, "objects", &hash);
	if (r < 0)
		return r;
	*ret_hash = hash;
	if (ret_xxh)
		*ret_xxh = xxh;
	if (ret_size)
		*ret_size = size;
	return 0;
}

int ug_store_object_put_fd(struct ug_store *s, int fd, struct ug_hash *ret_hash,
			   struct ug_xxh *ret_xxh, uint64_t *ret_size)
{
	return object_put(s, fd, NULL, 0, ret_hash, ret_xxh, ret_size);
}

int ug_store_object_put_buf(struct ug_store *s, const void *p, size_t n, struct ug_hash *ret_hash)
{
	return object_put(s, -1, p, n, ret_hash, NULL, NULL);
}

bool ug_store_object_exists(struct ug_store *s, const struct ug_hash *h)
{
	char path[128];

	hash_path("objects", h, path, sizeof(path));
	return regular_exists(s->dirfd, path);
}

static int open_hashed(struct ug_store *s, const char *kind, const struct ug_hash *h)
{
	char path[128];
	struct stat st;
	int fd;

	hash_path(kind, h, path, sizeof(path));
	fd = openat(s->dirfd, path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
	if (fd < 0)
		return -errno;
	if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode)) {
		close(fd);
		return -EBADMSG;
	}
	return fd;
}

int ug_store_object_stat(struct ug_store *s, const struct ug_hash *h,
			 uint64_t *ret_stored, uint64_t *ret_size)
{
	uint8_t header[UG_OBJ_HEADER_LEN];
	struct stat st;
	uint64_t size;
	int fd, r;

	fd = open_hashed(s, "objects", h);
	if (fd < 0)
		return fd;
	r = ug_read_exact(fd, header, sizeof(header));
	if (r == 0)
		r = header_decode(header, &size, NULL);
	if (r == 0 && fstat(fd, &st) < 0)
		r = -errno;
	close(fd);
	if (r < 0)
		return r;
	if (ret_stored)
		*ret_stored = (uint64_t)st.st_size;
	if (ret_size)
		*ret_size = size;
	return 0;
}

/* Decompress, hash and (if out_fd >= 0) write. Everything about the stored
 * file is checked: header, frame, size and both hashes. */
static int object_decode_fd(int fd, const struct ug_hash *h, int out_fd,
			    struct ug_error *err);

static int object_decode(struct ug_store *s, const struct ug_hash *h, int out_fd,
			 struct ug_error *err)
{
	int fd = open_hashed(s, "objects", h);

	if (fd < 0)
		return ug_error_set(err, fd, "%s", fd == -ENOENT ? "missing" : strerror(-fd));
	return object_decode_fd(fd, h, out_fd, err);
}

/* Closes fd. */
static int object_decode_fd(int fd, const struct ug_hash *h, int out_fd,
			    struct ug_error *err)
{
	uint8_t header[UG_OBJ_HEADER_LEN];
	uint8_t *in = NULL, *out = NULL;
	size_t incap = ZSTD_DStreamInSize(), outcap = ZSTD_DStreamOutSize();
	ZSTD_DCtx *dctx = NULL;
	struct ug_hasher hs;
	struct ug_hash got;
	struct ug_xxh want_x, got_x;
	uint64_t want_size, got_size;
	size_t last = 1;
	int r;
	bool hashing = false;

	r = ug_read_exact(fd, header, sizeof(header));
	if (r < 0) {
		r = ug_error_set(err, r, "%s", r == -EBADMSG ? "truncated object header" : strerror(-r));
		goto out;
	}
	r = header_decode(header, &want_size, &want_x);
	if (r < 0) {
		r = ug_error_set(err, -EBADMSG, "bad object header (magic, format or size)");
		goto out;
	}
	r = ug_hasher_init(&hs);
	if (r < 0)
		goto out;
	hashing = true;
	dctx = ZSTD_createDCtx();
	in = malloc(incap);
	out = malloc(outcap);
	if (!dctx || !in || !out) {
		r = -ENOMEM;
		goto out;
	}
	ZSTD_DCtx_setParameter(dctx, ZSTD_d_windowLogMax, OBJECT_WINDOW_LOG_MAX);
	for (;;) {
		ssize_t n = ug_read_full(fd, in, incap);
		ZSTD_inBuffer ib;

		if (n < 0) {
			r = ug_error_set(err, (int)n, "read error: %s", strerror((int)-n));
			goto out;
		}
		if (n == 0)
			break;
		ib = (ZSTD_inBuffer){ in, (size_t)n, 0 };
		while (ib.pos < ib.size) {
			ZSTD_outBuffer ob = { out, outcap, 0 };
			last = ZSTD_decompressStream(dctx, &ob, &ib);
			if (ZSTD_isError(last)) {
				r = ug_error_set(err, -EBADMSG, "corrupt compressed data (%s)",
						 ZSTD_getErrorName(last));
				goto out;
			}
			if (hs.size + ob.pos > want_size) {
				r = ug_error_set(err, -EBADMSG, "content longer than the %" PRIu64
						 " bytes its header states", want_size);
				goto out;
			}
			ug_hasher_update(&hs, out, ob.pos);
			if (out_fd >= 0) {
				r = ug_write_all(out_fd, out, ob.pos);
				if (r < 0)
					goto out;
			}
		}
	}
	if (last != 0) {
		r = ug_error_set(err, -EBADMSG, "truncated compressed data");
		goto out;
	}
	hashing = false;
	ug_hasher_final(&hs, &got, &got_x, &got_size);
	if (got_size != want_size)
		r = ug_error_set(err, -EBADMSG, "size %" PRIu64 " differs from the header's %" PRIu64,
				 got_size, want_size);
	else if (!ug_hash_eq(&got, h))
		r = ug_error_set(err, -EBADMSG, "content does not match its BLAKE2b name");
	else if (memcmp(got_x.b, want_x.b, UG_XXH_LEN) != 0)
		r = ug_error_set(err, -EBADMSG, "XXH3-128 in the header does not match the content");
	else
		r = 0;
out:
	if (hashing)
		ug_hasher_release(&hs);
	ZSTD_freeDCtx(dctx);
	free(in);
	free(out);
	close(fd);
	return r;
}

int ug_store_object_extract(struct ug_store *s, const struct ug_hash *h, int out_fd)
{
	return object_decode(s, h, out_fd, NULL);
}

int ug_store_object_verify(struct ug_store *s, const struct ug_hash *h, struct ug_error *err)
{
	return object_decode(s, h, -1, err);
}

int ug_store_tmp_anon(struct ug_store *s)
{
	char name[128];
	int tmpdir, fd;

	fd = openat(s->dirfd, "tmp", O_TMPFILE | O_RDWR | O_CLOEXEC, 0600);
	if (fd >= 0)
		return fd;
	/* filesystems without O_TMPFILE: a named file, unlinked at once */
	tmpdir = openat(s->dirfd, "tmp", O_RDONLY | O_DIRECTORY | O_CLOEXEC | O_NOFOLLOW);
	if (tmpdir < 0)
		return -errno;
	fd = ug_tmpfile_open(tmpdir, "anon", name, sizeof(name));
	if (fd >= 0)
		unlinkat(tmpdir, name, 0);
	close(tmpdir);
	return fd;
}

int ug_store_object_tmp(struct ug_store *s, const struct ug_hash *h, int *ret_fd)
{
	int fd, r;

	fd = ug_store_tmp_anon(s);
	if (fd < 0)
		return fd;
	r = ug_store_object_extract(s, h, fd);
	if (r == 0 && lseek(fd, 0, SEEK_SET) < 0)
		r = -errno;
	if (r < 0) {
		close(fd);
		return r;
	}
	*ret_fd = fd;
	return 0;
}

/* ---------------------------------------------------------------- deltas */

int ug_store_delta_put_fd(struct ug_store *s, int fd, struct ug_hash *ret_id, uint64_t *ret_size)
{
	char tmpname[128];
	uint8_t *buf;
	struct ug_hasher h;
	struct ug_hash id;
	uint64_t off = 0, size = 0;
	int tmpdir, out, r;

	buf = malloc(CHUNK);
	if (!buf)
		return -ENOMEM;
	r = ug_hasher_init(&h);
	if (r < 0) {
		free(buf);
		return r;
	}
	out = open_tmp(s, tmpname, sizeof(tmpname), &tmpdir);
	if (out < 0) {
		ug_hasher_release(&h);
		free(buf);
		return out;
	}
	for (;;) {
		ssize_t n = pread(fd, buf, CHUNK, (off_t)off);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			r = -errno;
			break;
		}
		if (n == 0)
			break;
		ug_hasher_update(&h, buf, (size_t)n);
		r = ug_write_all(out, buf, (size_t)n);
		if (r < 0)
			break;
		off += (uint64_t)n;
	}
	free(buf);
	if (r < 0) {
		ug_hasher_release(&h);
		close(out);
		unlinkat(tmpdir, tmpname, 0);
		close(tmpdir);
		return r;
	}
	ug_hasher_final(&h, &id, NULL, &size);
	close(tmpdir);
	r = publish_tmp(s, out, tmpname, "deltas", &id);
	if (r < 0)
		return r;
	*ret_id = id;
	if (ret_size)
		*ret_size = size;
	return 0;
}

int ug_store_delta_open(struct ug_store *s, const struct ug_hash *id, int *ret_fd)
{
	int fd = open_hashed(s, "deltas", id);

	if (fd < 0)
		return fd;
	*ret_fd = fd;
	return 0;
}

int ug_store_delta_verify(struct ug_store *s, const struct ug_hash *id, struct ug_error *err)
{
	struct ug_hash got;
	int fd = open_hashed(s, "deltas", id), r;

	if (fd < 0)
		return ug_error_set(err, fd, "%s", fd == -ENOENT ? "missing" : strerror(-fd));
	r = ug_hash_fd(fd, &got, NULL, NULL);
	close(fd);
	if (r < 0)
		return ug_error_set(err, r, "read error: %s", strerror(-r));
	if (!ug_hash_eq(&got, id))
		return ug_error_set(err, -EBADMSG, "content does not match its BLAKE2b name");
	return 0;
}

int ug_store_object_remove(struct ug_store *s, const struct ug_hash *h)
{
	char path[128];

	hash_path("objects", h, path, sizeof(path));
	if (unlinkat(s->dirfd, path, 0) < 0)
		return -errno;
	return 0;
}

bool ug_store_delta_exists(struct ug_store *s, const struct ug_hash *id)
{
	char path[128];

	hash_path("deltas", id, path, sizeof(path));
	return regular_exists(s->dirfd, path);
}

int ug_store_delta_remove(struct ug_store *s, const struct ug_hash *id)
{
	char path[128];

	hash_path("deltas", id, path, sizeof(path));
	if (unlinkat(s->dirfd, path, 0) < 0)
		return -errno;
	return 0;
}

static int hash_cmp_qsort(const void *a, const void *b)
{
	return ug_hash_cmp(a, b);
}

int ug_store_list(struct ug_store *s, enum ug_store_kind kind, struct ug_hash **ret, size_t *ret_n)
{
	struct ug_hash *v = NULL;
	size_t n = 0, alloc = 0;
	int top, r = 0;
	DIR *d;
	struct dirent *de;

	top = openat(s->dirfd, kind_dir(kind), O_RDONLY | O_DIRECTORY | O_CLOEXEC | O_NOFOLLOW);
	if (top < 0)
		return -errno;
	d = fdopendir(top);
	if (!d) {
		r = -errno;
		close(top);
		return r;
	}
	while ((de = readdir(d)) != NULL) {
		DIR *sd;
		struct dirent *se;
		int sfd;

		if (strlen(de->d_name) != 2)
			continue;
		sfd = openat(dirfd(d), de->d_name, O_RDONLY | O_DIRECTORY | O_CLOEXEC | O_NOFOLLOW);
		if (sfd < 0)
			continue;
		sd = fdopendir(sfd);
		if (!sd) {
			close(sfd);
			continue;
		}
		while ((se = readdir(sd)) != NULL) {
			char hex[UG_HASH_HEX_LEN + 1], canon[UG_HASH_HEX_LEN + 1];
			struct ug_hash h;

			if (strlen(se->d_name) != UG_HASH_HEX_LEN - 2)
				continue;
			memcpy(hex, de->d_name, 2);
			memcpy(hex + 2, se->d_name, UG_HASH_HEX_LEN - 2);
			hex[UG_HASH_HEX_LEN] = '\0';
			if (ug_hash_from_hex(hex, &h) < 0)
				continue;
			/* upper-case hex decodes too, but objects are looked up
			 * by their lower-case name: such a file is never used */
			ug_hash_hex(&h, canon);
			if (strcmp(canon, hex) != 0)
				continue;
			if (n == alloc) {
				size_t na = alloc ? alloc * 2 : 256;
				struct ug_hash *nv = reallocarray(v, na, sizeof(*v));
				if (!nv) {
					r = -ENOMEM;
					break;
				}
				v = nv;
				alloc = na;
			}
			v[n++] = h;
		}
		closedir(sd);
		if (r < 0)
			break;
	}
	closedir(d);
	if (r < 0) {
		free(v);
		return r;
	}
	if (n)
		qsort(v, n, sizeof(*v), hash_cmp_qsort);
	*ret = v;
	*ret_n = n;
	return 0;
}

/* ---------------------------------------------------------------- manifests */

static int channel_dir(struct ug_store *s, const char *channel, bool create)
{
	char path[UG_CHANNEL_MAX + 32];
	int r = ug_channel_check(channel, NULL), fd;

	if (r < 0)
		return r;
	snprintf(path, sizeof(path), "manifests/%s", channel);
	if (create && mkdirat(s->dirfd, path, 0755) < 0 && errno != EEXIST)
		return -errno;
	fd = openat(s->dirfd, path, O_RDONLY | O_DIRECTORY | O_CLOEXEC | O_NOFOLLOW);
	return fd < 0 ? -errno : fd;
}

/* A signed document of a version, VERSION.EXT beside VERSION.EXT.sig. The
 * signature is written first, so a document is never visible without
 * one; reading a document without its signature is -EKEYREJECTED. */
static int signed_put(struct ug_store *s, const char *channel, uint64_t version, bool create,
		      const char *ext, const void *doc, size_t doc_len, const void *sig,
		      size_t sig_len)
{
	char name[64];
	int dfd = channel_dir(s, channel, create), r;

	if (dfd < 0)
		return dfd;
	snprintf(name, sizeof(name), "%" PRIu64 ".%s.sig", version, ext);
	r = ug_file_write_atomic(dfd, name, sig, sig_len, 0644);
	if (r == 0) {
		snprintf(name, sizeof(name), "%" PRIu64 ".%s", version, ext);
		r = ug_file_write_atomic(dfd, name, doc, doc_len, 0644);
	}
	close(dfd);
	return r;
}

static int signed_get(struct ug_store *s, const char *channel, uint64_t version,
		      const char *ext, size_t max, char **ret_doc, size_t *ret_len,
		      char **ret_sig, size_t *ret_sig_len)
{
	char name[64];
	char *doc = NULL, *sig = NULL;
	size_t dl, sl = 0;
	int dfd = channel_dir(s, channel, false), r;

	if (dfd < 0)
		return dfd;
	snprintf(name, sizeof(name), "%" PRIu64 ".%s", version, ext);
	r = ug_file_read(dfd, name, max, &doc, &dl);
	if (r == 0 && ret_sig) {
		snprintf(name, sizeof(name), "%" PRIu64 ".%s.sig", version, ext);
		r = ug_file_read(dfd, name, UG_SIG_FILE_MAX, &sig, &sl);
		if (r == -ENOENT)
			r = -EKEYREJECTED;
	}
	close(dfd);
	if (r < 0) {
		free(doc);
		return r;
	}
	*ret_doc = doc;
	*ret_len = dl;
	if (ret_sig) {
		*ret_sig = sig;
		*ret_sig_len = sl;
	}
	return 0;
}

int ug_store_manifest_put(struct ug_store *s, const char *channel, uint64_t version,
			  const void *json, size_t json_len, const void *sig, size_t sig_len)
{
	return signed_put(s, channel, version, true, "json", json, json_len, sig, sig_len);
}

int ug_store_manifest_get(struct ug_store *s, const char *channel, uint64_t version,
			  char **ret_json, size_t *ret_len, char **ret_sig, size_t *ret_sig_len)
{
	return signed_get(s, channel, version, "json", UG_MANIFEST_MAX, ret_json, ret_len,
			  ret_sig, ret_sig_len);
}

int ug_store_mdelta_put(struct ug_store *s, const char *channel, uint64_t from,
			uint64_t to, const void *data, size_t len)
{
	char name[96];
	int dfd = channel_dir(s, channel, true), r;

	if (dfd < 0)
		return dfd;
	snprintf(name, sizeof(name), "%" PRIu64 ".from-%" PRIu64 ".zst", to, from);
	r = ug_file_write_atomic(dfd, name, data, len, 0644);
	close(dfd);
	return r;
}

int ug_store_mdelta_get(struct ug_store *s, const char *channel, uint64_t from,
			uint64_t to, uint8_t **ret, size_t *ret_len)
{
	char name[96];
	char *data;
	size_t len;
	int dfd = channel_dir(s, channel, false), r;

	if (dfd < 0)
		return dfd;
	snprintf(name, sizeof(name), "%" PRIu64 ".from-%" PRIu64 ".zst", to, from);
	r = ug_file_read(dfd, name, UG_MANIFEST_MAX, &data, &len);
	close(dfd);
	if (r < 0)
		return r;
	*ret = (uint8_t *)data;
	*ret_len = len;
	return 0;
}

/* The rollout document of a version and its signature (rollout.h). A
 * crash between the two renames leaves the new signature beside the old
 * document: it fails the check, readers fall back to the manifest's
 * rollout, and the next document (serial of the old one + 1) or the next
 * follow round replaces the pair. */
int ug_store_rollout_put(struct ug_store *s, const char *channel, uint64_t version,
			 const void *doc, size_t doc_len, const void *sig, size_t sig_len)
{
	if (version == 0)
		return -EINVAL;
	return signed_put(s, channel, version, false, "rollout", doc, doc_len, sig, sig_len);
}

int ug_store_rollout_get(struct ug_store *s, const char *channel, uint64_t version,
			 char **ret_doc, size_t *ret_len, char **ret_sig, size_t *ret_sig_len)
{
	return signed_get(s, channel, version, "rollout", UG_ROLLOUT_DOC_MAX, ret_doc, ret_len,
			  ret_sig, ret_sig_len);
}

static int u64_cmp(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
	return x < y ? -1 : x > y;
}

int ug_store_versions(struct ug_store *s, const char *channel, uint64_t **ret, size_t *ret_n)
{
	uint64_t *v = NULL;
	size_t n = 0, alloc = 0;
	int dfd = channel_dir(s, channel, false), r = 0;
	DIR *d;
	struct dirent *de;

	if (dfd == -ENOENT) {
		*ret = NULL;
		*ret_n = 0;
		return 0;
	}
	if (dfd < 0)
		return dfd;
	d = fdopendir(dfd);
	if (!d) {
		r = -errno;
		close(dfd);
		return r;
	}
	while ((de = readdir(d)) != NULL) {
		char num[32];
		const char *dot = strchr(de->d_name, '.');
		uint64_t ver;

		if (!dot || strcmp(dot, ".json") != 0 || (size_t)(dot - de->d_name) >= sizeof(num))
			continue;
		memcpy(num, de->d_name, (size_t)(dot - de->d_name));
		num[dot - de->d_name] = '\0';
		/* "01.json" would list version 1 twice and "0.json" a version no
		 * ref may name: only the names manifest_put writes count */
		if (ug_parse_u64(num, UINT64_MAX, &ver) < 0 || ver == 0 || num[0] == '0')
			continue;
		if (n == alloc) {
			size_t na = alloc ? alloc * 2 : 64;
			uint64_t *nv = reallocarray(v, na, sizeof(*v));
			if (!nv) {
				r = -ENOMEM;
				break;
			}
			v = nv;
			alloc = na;
		}
		v[n++] = ver;
	}
	closedir(d);
	if (r < 0) {
		free(v);
		return r;
	}
	if (n)
		qsort(v, n, sizeof(*v), u64_cmp);
	*ret = v;
	*ret_n = n;
	return 0;
}

void ug_strv_free(char **v, size_t n)
{
	for (size_t i = 0; v && i < n; i++)
		free(v[i]);
	free(v);
}

static int str_cmp_qsort(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

int ug_store_channels(struct ug_store *s, char ***ret, size_t *ret_n)
{
	char **v = NULL;
	size_t n = 0, alloc = 0;
	int fd, r = 0;
	DIR *d;
	struct dirent *de;

	fd = openat(s->dirfd, "refs", O_RDONLY | O_DIRECTORY | O_CLOEXEC | O_NOFOLLOW);
	if (fd < 0)
		return -errno;
	d = fdopendir(fd);
	if (!d) {
		r = -errno;
		close(fd);
		return r;
	}
	while ((de = readdir(d)) != NULL) {
		if (ug_channel_check(de->d_name, NULL) < 0)
			continue;
		if (n == alloc) {
			size_t na = alloc ? alloc * 2 : 8;
			char **nv = reallocarray(v, na, sizeof(*v));
			if (!nv) {
				r = -ENOMEM;
				break;
			}
			v = nv;
			alloc = na;
		}
		v[n] = strdup(de->d_name);
		if (!v[n]) {
			r = -ENOMEM;
			break;
		}
		n++;
	}
	closedir(d);
	if (r < 0) {
		ug_strv_free(v, n);
		return r;
	}
	if (n)
		qsort(v, n, sizeof(*v), str_cmp_qsort);
	*ret = v;
	*ret_n = n;
	return 0;
}

/* ---------------------------------------------------------------- refs */

int ug_store_ref_read(struct ug_store *s, const char *channel, uint64_t *ret_version)
{
	char path[UG_CHANNEL_MAX + 8];
	char *text;
	size_t len;
	uint64_t v;
	int r = ug_channel_check(channel, NULL);

	if (r < 0)
		return r;
	snprintf(path, sizeof(path), "refs/%s", channel);
	r = ug_file_read(s->dirfd, path, 64, &text, &len);
	if (r == -E2BIG)
		return -EBADMSG;
	if (r < 0)
		return r;
	if (len > 0 && text[len - 1] == '\n')
		text[--len] = '\0';
	/* "5\0junk" must not read as 5 */
	r = strlen(text) == len ? ug_parse_u64(text, UINT64_MAX, &v) : -EBADMSG;
	free(text);
	if (r < 0 || v == 0)
		return -EBADMSG;
	*ret_version = v;
	return 0;
}

int ug_store_ref_write(struct ug_store *s, const char *channel, uint64_t version)
{
	char path[UG_CHANNEL_MAX + 8], text[32];
	int r = ug_channel_check(channel, NULL), n;

	if (r < 0)
		return r;
	if (version == 0)
		return -EINVAL; /* versions start at 1; 0 means "none" in manifests */
	snprintf(path, sizeof(path), "refs/%s", channel);
	n = snprintf(text, sizeof(text), "%" PRIu64 "\n", version);
	return ug_file_write_atomic(s->dirfd, path, text, (size_t)n, 0644);
}

static int64_t mono_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int ug_store_ref_wait(struct ug_store *s, const char *channel, uint64_t after,
		      int timeout_ms, uint64_t *ret_version)
{
	/* room for a burst of events; their content does not matter, only
	 * that something in refs/ changed */
	char evbuf[4096] __attribute__((aligned(__alignof__(struct inotify_event))));
	int64_t deadline = timeout_ms < 0 ? INT64_MAX : mono_ms() + timeout_ms;
	uint64_t v;
	int fd, r;

	r = ug_channel_check(channel, NULL);
	if (r < 0)
		return r;
	fd = inotify_init1(IN_CLOEXEC | IN_NONBLOCK);
	if (fd < 0)
		return -errno;
	/* watch first, then read: a ref moved in between is not missed */
	{
		char refs[UG_PATH_MAX + 8];
		snprintf(refs, sizeof(refs), "%s/refs", s->path);
		if (inotify_add_watch(fd, refs, IN_MOVED_TO | IN_CLOSE_WRITE | IN_ONLYDIR) < 0) {
			r = -errno;
			goto out;
		}
	}
	for (;;) {
		struct pollfd pfd = { .fd = fd, .events = POLLIN };
		int64_t left;

		r = ug_store_ref_read(s, channel, &v);
		if (r == 0 && v > after) {
			*ret_version = v;
			goto out;
		}
		if (r < 0 && r != -ENOENT)
			goto out;
		left = deadline - mono_ms();
		if (left <= 0) {
			r = -ETIMEDOUT;
			goto out;
		}
		r = poll(&pfd, 1, left > INT32_MAX ? -1 : (int)left);
		if (r < 0 && errno != EINTR) {
			r = -errno;
			goto out;
		}
		while (read(fd, evbuf, sizeof(evbuf)) > 0)
			; /* drain; the ref itself is re-read above */
	}
out:
	close(fd);
	return r;
}

/* ---------------------------------------------------------------- transfers */

int ug_store_object_open(struct ug_store *s, const struct ug_hash *h, int *ret_fd)
{
	int fd = open_hashed(s, "objects", h);

	if (fd < 0)
		return fd;
	*ret_fd = fd;
	return 0;
}

static int partial_name(const char *name, char *out, size_t n)
{
	if (!name[0] || strchr(name, '/') || name[0] == '.' ||
	    (size_t)snprintf(out, n, "dl-%s", name) >= n)
		return -EINVAL;
	return 0;
}

int ug_store_partial_open(struct ug_store *s, const char *name, int *ret_fd,
			  uint64_t *ret_size)
{
	char path[160];
	struct stat st;
	int tmpdir, fd, r;

	r = partial_name(name, path, sizeof(path));
	if (r < 0)
		return r;
	tmpdir = openat(s->dirfd, "tmp", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (tmpdir < 0)
		return -errno;
	fd = openat(tmpdir, path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
	r = fd < 0 ? -errno : 0;
	close(tmpdir);
	if (r < 0)
		return r;
	if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode) ||
	    lseek(fd, 0, SEEK_END) < 0) {
		close(fd);
		return -EBADMSG;
	}
	*ret_fd = fd;
	*ret_size = (uint64_t)st.st_size;
	return 0;
}

void ug_store_partial_remove(struct ug_store *s, const char *name)
{
	char path[160];
	int tmpdir;

	if (partial_name(name, path, sizeof(path)) < 0)
		return;
	tmpdir = openat(s->dirfd, "tmp", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (tmpdir < 0)
		return;
	unlinkat(tmpdir, path, 0);
	close(tmpdir);
}

int ug_store_partial_commit(struct ug_store *s, const char *name, int fd,
			    enum ug_store_kind kind, const struct ug_hash *expect,
			    struct ug_error *err)
{
	char path[160];
	int r;

	r = partial_name(name, path, sizeof(path));
	if (r < 0) {
		close(fd);
		return r;
	}
	if (kind == UG_STORE_OBJECTS) {
		int dup_fd = fcntl(fd, F_DUPFD_CLOEXEC, 0);
		if (dup_fd < 0) {
			r = -errno;
			close(fd);
			return r;
		}
		if (lseek(dup_fd, 0, SEEK_SET) < 0) {
			r = -errno;
			close(dup_fd);
		} else {
			r = object_decode_fd(dup_fd, expect, -1, err);
		}
	} else {
		struct ug_hash got;
		r = lseek(fd, 0, SEEK_SET) < 0 ? -errno : ug_hash_fd(fd, &got, NULL, NULL);
		if (r == 0 && !ug_hash_eq(&got, expect))
			r = ug_error_set(err, -EBADMSG, "delta bytes do not match their BLAKE2b name");
	}
	if (r < 0) {
		close(fd);
		/* bad bytes are not worth resuming */
		if (r == -EBADMSG)
			ug_store_partial_remove(s, name);
		return r;
	}
	return publish_tmp(s, fd, path, kind_dir(kind), expect);
}

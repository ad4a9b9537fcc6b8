/* util.c - errors, number parsing, path checks and atomic file I/O. */
#include "config.h"

#include <fcntl.h>
#include <ini.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <sodium.h>

#include "util.h"

int ug_error_set(struct ug_error *err, int rc, const char *fmt, ...)
{
	va_list ap;

	if (!err)
		return rc;
	va_start(ap, fmt);
	vsnprintf(err->msg, sizeof(err->msg), fmt, ap);
	va_end(ap);
	return rc;
}

int ug_parse_u64(const char *s, uint64_t max, uint64_t *ret)
{
	uint64_t v = 0;

	if (!s || !*s)
		return -EINVAL;
	for (const char *p = s; *p; p++) {
		if (*p < '0' || *p > '9')
			return -EINVAL;
		if (__builtin_mul_overflow(v, 10, &v) ||
		    __builtin_add_overflow(v, (uint64_t)(*p - '0'), &v))
			return -ERANGE;
	}
	if (v > max)
		return -ERANGE;
	*ret = v;
	return 0;
}

int ug_parse_size(const char *s, uint64_t max, uint64_t *ret)
{
	char num[32];
	size_t n = s ? strlen(s) : 0;
	unsigned shift = 0;
	uint64_t v;
	int r;

	if (n == 0 || n >= sizeof(num))
		return -EINVAL;
	memcpy(num, s, n + 1);
	switch (num[n - 1]) {
	case 'k': case 'K': shift = 10; break;
	case 'm': case 'M': shift = 20; break;
	case 'g': case 'G': shift = 30; break;
	default: break;
	}
	if (shift)
		num[n - 1] = '\0';
	r = ug_parse_u64(num, UINT64_MAX >> shift, &v);
	if (r < 0)
		return r;
	v <<= shift;
	if (v > max)
		return -ERANGE;
	*ret = v;
	return 0;
}

int ug_path_check(const char *path, struct ug_error *err)
{
	size_t len, comp = 0;
	const char *c;

	if (!path || !*path)
		return ug_error_set(err, -EINVAL, "path is empty");
	len = strnlen(path, UG_PATH_MAX + 1);
	if (len > UG_PATH_MAX)
		return ug_error_set(err, -EINVAL, "path is longer than %u bytes", UG_PATH_MAX);
	/* bytes first, so the messages below never echo control characters
	 * (terminal escapes) from hostile input */
	for (size_t i = 0; i < len; i++) {
		unsigned char ch = (unsigned char)path[i];
		if (ch < 0x20 || ch == 0x7f)
			return ug_error_set(err, -EINVAL, "path contains a control character (byte %zu)", i);
	}
	if (!ug_utf8_valid(path, len))
		return ug_error_set(err, -EINVAL, "path is not valid UTF-8");
	if (path[0] == '/')
		return ug_error_set(err, -EINVAL, "path '%s' is absolute", path);
	if (path[len - 1] == '/')
		return ug_error_set(err, -EINVAL, "path '%s' ends with '/'", path);
	c = path;
	for (size_t i = 0; i <= len; i++) {
		if (path[i] == '/' || path[i] == '\0') {
			if (comp == 0)
				return ug_error_set(err, -EINVAL, "path '%s' has an empty component", path);
			if (comp == 1 && c[0] == '.')
				return ug_error_set(err, -EINVAL, "path '%s' contains '.'", path);
			if (comp == 2 && c[0] == '.' && c[1] == '.')
				return ug_error_set(err, -EINVAL, "path '%s' contains '..'", path);
			if (comp > UG_NAME_MAX)
				return ug_error_set(err, -EINVAL, "path '%.64s...' has a component longer than %u bytes",
						    path, UG_NAME_MAX);
			comp = 0;
			c = path + i + 1;
			continue;
		}
		comp++;
	}
	return 0;
}

bool ug_utf8_valid(const char *s, size_t len)
{
	const unsigned char *p = (const unsigned char *)s, *end = p + len;

	while (p < end) {
		unsigned c = *p, n;
		uint32_t cp;

		if (c < 0x80) {
			p++;
			continue;
		}
		if (c >= 0xc2 && c <= 0xdf) {
			n = 1;
			cp = c & 0x1f;
		} else if (c >= 0xe0 && c <= 0xef) {
			n = 2;
			cp = c & 0x0f;
		} else if (c >= 0xf0 && c <= 0xf4) {
			n = 3;
			cp = c & 0x07;
		} else {
			return false;
		}
		if ((size_t)(end - p) <= n)
			return false;
		for (unsigned i = 1; i <= n; i++) {
			if ((p[i] & 0xc0) != 0x80)
				return false;
			cp = cp << 6 | (p[i] & 0x3f);
		}
		if ((n == 2 && cp < 0x800) || (n == 3 && cp < 0x10000) || cp > 0x10ffff ||
		    (cp >= 0xd800 && cp <= 0xdfff))
			return false;
		p += n + 1;
	}
	return true;
}

int ug_channel_check(const char *channel, struct ug_error *err)
{
	size_t n = channel ? strnlen(channel, UG_CHANNEL_MAX + 1) : 0;

	if (n == 0 || n > UG_CHANNEL_MAX)
		return ug_error_set(err, -EINVAL, "channel name must be 1 to %u characters", UG_CHANNEL_MAX);
	if (channel[0] == '.' || channel[0] == '-')
		return ug_error_set(err, -EINVAL, "channel name '%s' must not start with '.' or '-'", channel);
	for (size_t i = 0; i < n; i++) {
		char ch = channel[i];
		if (!((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') ||
		      (ch >= '0' && ch <= '9') || ch == '.' || ch == '_' || ch == '-'))
			return ug_error_set(err, -EINVAL,
					    "channel name '%s' may only hold letters, digits, '.', '_' and '-'",
					    channel);
	}
	return 0;
}

int ug_write_all(int fd, const void *buf, size_t len)
{
	const uint8_t *p = buf;

	while (len > 0) {
		ssize_t w = write(fd, p, len);
		if (w < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		p += w;
		len -= (size_t)w;
	}
	return 0;
}

ssize_t ug_read_full(int fd, void *buf, size_t len)
{
	uint8_t *p = buf;
	size_t got = 0;

	while (got < len) {
		ssize_t r = read(fd, p + got, len - got);
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

int ug_read_exact(int fd, void *buf, size_t len)
{
	ssize_t r = ug_read_full(fd, buf, len);

	if (r < 0)
		return (int)r;
	return (size_t)r == len ? 0 : -EBADMSG;
}

int ug_file_read(int dirfd, const char *path, size_t max, char **ret_data, size_t *ret_len)
{
	struct stat st;
	char *data = NULL;
	size_t len = 0, alloc;
	int fd, r;

	/* O_NONBLOCK: a FIFO planted at path must not hang us; it fails the
	 * S_ISREG check below instead */
	fd = openat(dirfd, path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK);
	if (fd < 0)
		return -errno;
	if (fstat(fd, &st) < 0) {
		r = -errno;
		goto out;
	}
	if (!S_ISREG(st.st_mode)) {
		r = -EINVAL;
		goto out;
	}
	if ((uint64_t)st.st_size > max) {
		r = -E2BIG;
		goto out;
	}
	alloc = (size_t)st.st_size + 1;
	data = malloc(alloc);
	if (!data) {
		r = -ENOMEM;
		goto out;
	}
	for (;;) {
		ssize_t n;
		if (len + 1 == alloc) {
			/* Full: either the file is exactly as big as fstat said (or
			 * exactly max), or it grew since fstat. Only a probe read
			 * tells which, so a file of exactly max bytes is accepted. */
			size_t na;
			char *nd;
			if (len >= max) {
				char probe;
				do
					n = read(fd, &probe, 1);
				while (n < 0 && errno == EINTR);
				if (n < 0) {
					r = -errno;
					goto out;
				}
				if (n > 0) {
					r = -E2BIG;
					goto out;
				}
				break;
			}
			/* grow by up to alloc, never past max + 1 (max may be SIZE_MAX) */
			if (ug_size_add(alloc, alloc < max - len ? alloc : max - len, &na) < 0) {
				r = -E2BIG;
				goto out;
			}
			nd = realloc(data, na);
			if (!nd) {
				r = -ENOMEM;
				goto out;
			}
			data = nd;
			alloc = na;
		}
		n = read(fd, data + len, alloc - 1 - len);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			r = -errno;
			goto out;
		}
		if (n == 0)
			break;
		len += (size_t)n;
	}
	data[len] = '\0';
	*ret_data = data;
	*ret_len = len;
	data = NULL;
	r = 0;
out:
	free(data);
	close(fd);
	return r;
}

int ug_fsync_dir(int dirfd)
{
	if (fsync(dirfd) < 0 && errno != EINVAL)
		return -errno;
	return 0;
}

int ug_tmpfile_open(int dirfd, const char *prefix, char *name, size_t name_size)
{
	for (int tries = 0; tries < 100; tries++) {
		uint32_t rnd = randombytes_random();
		int fd;

		snprintf(name, name_size, ".%s.%ld.%08x.tmp", prefix, (long)getpid(), rnd);
		fd = openat(dirfd, name, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0600);
		if (fd >= 0)
			return fd;
		if (errno != EEXIST)
			return -errno;
	}
	return -EEXIST;
}

int ug_file_commit(int fd, int tmpdirfd, const char *tmpname, int dirfd,
		   const char *path, mode_t mode)
{
	int r = 0;

	if (fchmod(fd, mode) < 0 || fsync(fd) < 0)
		r = -errno;
	if (close(fd) < 0 && r == 0)
		r = -errno;
	if (r == 0 && renameat(tmpdirfd, tmpname, dirfd, path) < 0)
		r = -errno;
	if (r < 0) {
		unlinkat(tmpdirfd, tmpname, 0);
		return r;
	}
	return ug_fsync_dir(dirfd);
}

/* The temp file must live in the target's directory for rename to be
 * atomic, so split path into its directory and base name. */
int ug_file_write_atomic(int dirfd, const char *path, const void *data,
			 size_t len, mode_t mode)
{
	char tmp[128], dir[UG_PATH_MAX + 1];
	const char *slash = strrchr(path, '/');
	const char *base = slash ? slash + 1 : path;
	int pdir = dirfd, fd, r;

	if (slash) {
		size_t dl = (size_t)(slash - path);
		if (dl > UG_PATH_MAX)
			return -ENAMETOOLONG;
		memcpy(dir, path, dl);
		dir[dl] = '\0';
		pdir = openat(dirfd, dl ? dir : "/", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
		if (pdir < 0)
			return -errno;
	}
	fd = ug_tmpfile_open(pdir, "ug", tmp, sizeof(tmp));
	if (fd < 0) {
		r = fd;
		goto out;
	}
	r = ug_write_all(fd, data, len);
	if (r < 0) {
		close(fd);
		unlinkat(pdir, tmp, 0);
		goto out;
	}
	r = ug_file_commit(fd, pdir, tmp, pdir, base, mode);
out:
	if (pdir != dirfd)
		close(pdir);
	return r;
}

int ug_mkdir_p(int dirfd, const char *path, mode_t mode)
{
	char buf[UG_PATH_MAX + 1];
	size_t n = strnlen(path, UG_PATH_MAX + 1);
	struct stat st;

	if (n > UG_PATH_MAX)
		return -ENAMETOOLONG;
	memcpy(buf, path, n + 1);
	for (size_t i = 1; i <= n; i++) {
		if (buf[i] != '/' && buf[i] != '\0')
			continue;
		buf[i] = '\0';
		if (mkdirat(dirfd, buf, mode) < 0 && errno != EEXIST)
			return -errno;
		if (fstatat(dirfd, buf, &st, AT_SYMLINK_NOFOLLOW) < 0)
			return -errno;
		if (!S_ISDIR(st.st_mode))
			return -ENOTDIR;
		if (i < n)
			buf[i] = '/';
	}
	return 0;
}

/* O_NOFOLLOW together with O_DIRECTORY reports a symlink as ENOTDIR, the
 * same as a regular file; look again so a symlink is always -ELOOP. */
static int open_error(int dirfd, const char *comp)
{
	int e = errno;
	struct stat st;

	if (e == ENOTDIR && fstatat(dirfd, comp, &st, AT_SYMLINK_NOFOLLOW) == 0 &&
	    S_ISLNK(st.st_mode))
		e = ELOOP;
	return -e;
}

int ug_open_beneath(int dirfd, const char *path, int flags, mode_t mode)
{
	char buf[UG_PATH_MAX + 1];
	size_t n = strnlen(path, UG_PATH_MAX + 1);
	char *comp, *slash;
	int cur = dirfd, fd;

	if (n > UG_PATH_MAX)
		return -ENAMETOOLONG;
	memcpy(buf, path, n + 1);
	comp = buf;
	while ((slash = strchr(comp, '/')) != NULL) {
		*slash = '\0';
		/* ".." is the one way out of dirfd that O_NOFOLLOW does not stop */
		if (strcmp(comp, "..") == 0)
			fd = -EINVAL;
		else if ((fd = openat(cur, comp, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)) < 0)
			fd = open_error(cur, comp);
		if (fd < 0) {
			if (cur != dirfd)
				close(cur);
			return fd;
		}
		if (cur != dirfd)
			close(cur);
		cur = fd;
		comp = slash + 1;
	}
	if (strcmp(comp, "..") == 0)
		fd = -EINVAL;
	else if ((fd = openat(cur, comp, flags | O_NOFOLLOW | O_CLOEXEC, mode)) < 0)
		fd = open_error(cur, comp);
	if (cur != dirfd)
		close(cur);
	return fd;
}

unsigned ug_ncpus(void)
{
	long n = sysconf(_SC_NPROCESSORS_ONLN);
	return n < 1 ? 1u : (unsigned)n;
}

int64_t ug_now(void)
{
	return (int64_t)time(NULL);
}

void ug_time_format(int64_t t, char out[32])
{
	time_t tt = (time_t)t;
	struct tm tm;

	if (!gmtime_r(&tt, &tm)) {
		snprintf(out, 32, "@%" PRId64, t);
		return;
	}
	strftime(out, 32, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

int ug_time_parse(const char *s, int64_t *ret)
{
	struct tm tm;
	const char *end;
	char canon[32];
	time_t t;

	memset(&tm, 0, sizeof(tm));
	end = strptime(s, "%Y-%m-%dT%H:%M:%SZ", &tm);
	if (!end || *end)
		return -EINVAL;
	t = timegm(&tm);
	/* strptime skips spaces, takes unpadded fields and timegm normalizes
	 * "02-31" to March: accept only the one canonical spelling, so a
	 * signed time has a single encoding. */
	ug_time_format((int64_t)t, canon);
	if (strcmp(canon, s) != 0)
		return -EINVAL;
	*ret = (int64_t)t;
	return 0;
}

void ug_bytes_format(uint64_t n, char out[32])
{
	static const char *units[] = { "B", "KiB", "MiB", "GiB", "TiB" };
	double v = (double)n;
	unsigned u = 0;

	while (v >= 1024.0 && u < 4) {
		v /= 1024.0;
		u++;
	}
	if (u == 0)
		snprintf(out, 32, "%" PRIu64 " B", n);
	else
		snprintf(out, 32, "%.1f %s", v, units[u]);
}

int ug_exit_code(int rc)
{
	switch (rc) {
	case 0:
		return UG_EXIT_OK;
	case -EINVAL:
		return UG_EXIT_USAGE;
	case -EBADMSG:
	case -E2BIG:
		return UG_EXIT_CORRUPT;
	case -EKEYREJECTED:
		return UG_EXIT_SIGNATURE;
	case -EPROTONOSUPPORT:
		return UG_EXIT_USAGE;
	case -ENOENT:
		return UG_EXIT_NOTFOUND;
	case -EWOULDBLOCK:
		return UG_EXIT_LOCKED;
	default:
		return UG_EXIT_FAILURE;
	}
}

char *ug_ini_read_line(char *str, int num, void *stream)
{
	struct ug_ini_reader *cr = stream;
	const char *nl;
	size_t n;

	if (cr->left == 0 || cr->too_long || num < 2)
		return NULL;
	nl = memchr(cr->p, '\n', cr->left);
	n = nl ? (size_t)(nl - cr->p) + 1 : cr->left;
	cr->line++;
	if (n > (size_t)num - 1) {
		cr->line_max = num - 2;
		cr->too_long = true;
		return NULL;
	}
	memcpy(str, cr->p, n);
	str[n] = '\0';
	cr->p += n;
	cr->left -= n;
	return str;
}

/* ---- INI settings files --------------------------------------------------- */

struct ini_file {
	struct ug_ini_reader rd;
	ug_ini_handler_fn handler;
	void *ctx;
	struct ug_error e;	/* the handler's message for rc */
	int rc;			/* the first error of a handler, 0 if none */
	int line;		/* its line */
};

/* what inih strips (C locale isspace), the newline aside */
static bool ini_blank(char c)
{
	return c == ' ' || c == '\t' || c == '\v' || c == '\f' || c == '\r';
}

static void ini_fail(struct ini_file *f, int rc)
{
	if (!f->e.msg[0])
		snprintf(f->e.msg, sizeof(f->e.msg), "%s", strerror(-rc));
	f->rc = rc;
	f->line = f->rd.line;
}

/* s starts with '['. inih ends the name at the first ']', or fails the
 * line (a syntax error it reports) at a " ;" comment or the end before
 * one; it ignores what follows the ']', which we do not. */
static void ini_section(struct ini_file *f, char *s)
{
	char *end, *p;
	int r;

	for (end = s + 1; *end && *end != ']'; end++)
		if (*end == ';' && ini_blank(end[-1]))
			return;
	if (*end != ']')
		return;
	for (p = end + 1; ini_blank(*p) || *p == '\n'; p++)
		;
	if (*p && *p != ';' && *p != '#') {
		ug_error_set(&f->e, -EINVAL, "text after the ']' of a section header");
		ini_fail(f, -EINVAL);
		return;
	}
	*end = '\0';
	r = f->handler(f->ctx, f->rd.line, s + 1, NULL, NULL, &f->e);
	*end = ']';
	if (r < 0)
		ini_fail(f, r);
}

static char *ini_next_line(char *str, int num, void *stream)
{
	struct ini_file *f = stream;
	size_t skip = 0;
	char *s;

	if (f->rc < 0)
		return NULL;	/* stop at the first error */
	s = ug_ini_read_line(str, num, &f->rd);
	if (!s)
		return NULL;
	if (f->rd.line == 1 && strncmp(s, "\xef\xbb\xbf", 3) == 0)
		skip = 3;
	/* inih would hand an indented line to the setting above it as a
	 * continuation of its value */
	while (ini_blank(s[skip]))
		skip++;
	if (skip)
		memmove(s, s + skip, strlen(s + skip) + 1);
	if (s[0] == '[')
		ini_section(f, s);
	return f->rc < 0 ? NULL : s;
}

static int ini_on_setting(void *user, const char *section, const char *name, const char *value)
{
	struct ini_file *f = user;
	int r;

	/* after a syntax error inih goes on: what follows is not reported */
	if (f->rc < 0)
		return 1;
	r = f->handler(f->ctx, f->rd.line, section, name, value, &f->e);
	if (r < 0)
		ini_fail(f, r);
	return 1;
}

int ug_ini_parse_file(const char *path, size_t max, ug_ini_handler_fn handler,
		      void *ctx, struct ug_error *err)
{
	struct ini_file f = { .handler = handler, .ctx = ctx };
	const char *nul, *line_start;
	char *real, *text = NULL;
	int nul_line = 0, r;
	size_t len;

	real = realpath(path, NULL);
	if (!real) {
		r = -errno;
		return ug_error_set(err, r, "cannot read settings file '%s': %s", path, strerror(-r));
	}
	r = ug_file_read(AT_FDCWD, real, max, &text, &len);
	free(real);
	if (r == -E2BIG)
		return ug_error_set(err, -EINVAL, "settings file '%s' is larger than %zu bytes",
				    path, max);
	if (r == -EINVAL)
		return ug_error_set(err, -EINVAL, "settings file '%s' is not a regular file", path);
	if (r < 0)
		return ug_error_set(err, r, "cannot read settings file '%s': %s", path, strerror(-r));
	/* inih reads C strings: a NUL would silently end its line. Parse the
	 * lines before it, so an error there is still the one reported. */
	f.rd.p = text;
	f.rd.left = len;
	nul = memchr(text, '\0', len);
	if (nul) {
		nul_line = 1;
		line_start = text;
		for (const char *c = text; c < nul; c++)
			if (*c == '\n') {
				nul_line++;
				line_start = c + 1;
			}
		f.rd.left = (size_t)(line_start - text);
	}
	r = ini_parse_stream(ini_next_line, &f, ini_on_setting, &f);
	free(text);
	if (r < 0)
		return ug_error_set(err, -ENOMEM, "cannot parse '%s': out of memory", path);
	if (f.rc < 0 && (r == 0 || f.line <= r))
		return ug_error_set(err, f.rc, "'%s': line %d: %s", path, f.line, f.e.msg);
	if (r > 0)
		return ug_error_set(err, -EINVAL,
				    "'%s': line %d: syntax error; expected '[SECTION]', 'NAME = VALUE' or a comment",
				    path, r);
	if (f.rd.too_long)
		return ug_error_set(err, -EINVAL, "'%s': line %d: longer than %d bytes", path,
				    f.rd.line, f.rd.line_max);
	if (nul)
		return ug_error_set(err, -EINVAL, "'%s': line %d: contains a NUL byte", path,
				    nul_line);
	return 0;
}

int ug_str_set(char **dst, const char *v)
{
	char *d = strdup(v);

	if (!d)
		return -ENOMEM;
	free(*dst);
	*dst = d;
	return 0;
}

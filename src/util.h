/* util.h - small helpers every module uses: errors, limits, overflow-checked
 * sizes, file I/O that is atomic and bounded, path validation.
 *
 * Conventions (see docs/hacking.md): fallible functions return 0 (or a
 * positive count) on success and -errno on failure. Domain faults use fixed
 * errnos: EBADMSG corrupt input, EKEYREJECTED bad signature, E2BIG over a
 * limit, EPROTO protocol violation. Output parameters are named ret_* and
 * are only written on success. */
#ifndef UG_UTIL_H
#define UG_UTIL_H

#include <errno.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

/* Limits on everything read from outside. */
#define UG_PATH_MAX          4096u          /* bytes in a relative path */
#define UG_NAME_MAX          255u           /* bytes in one path component */
#define UG_DEPTH_MAX         256u           /* directory depth of a tree */
#define UG_FILES_MAX         1000000u       /* entries in a manifest / tree */
#define UG_FILE_SIZE_MAX     (1ull << 40)   /* 1 TiB: largest file we accept */
#define UG_MANIFEST_MAX      (256u << 20)   /* bytes in a manifest document */
#define UG_SIG_FILE_MAX      4096u          /* bytes in a .sig file */
#define UG_CONFIG_LINE_MAX   4096u          /* bytes in a config/rules line */
#define UG_RULES_MAX         4096u          /* rules in .upgrid/rules */
#define UG_CHANNEL_MAX       64u            /* bytes in a channel name */
#define UG_MESSAGE_MAX       4096u          /* bytes in a publish message */
#define UG_DELTAS_PER_FILE_MAX 64u
#define UG_BUNDLES_MAX       64u

/* A file changed while it was being read (publish of a live tree). Not
 * EAGAIN: that is EWOULDBLOCK, which means "repo locked". */
#define UG_ECHANGED ESTALE

/* An optional error detail filled by parsers at a trust boundary, so the
 * program can say *where* input was bad ("manifest entry 17: ..."). */
struct ug_error {
	char msg[512];
};

/* Format into err (if err is non-NULL). Returns rc unchanged, so callers can
 * write: return ug_error_set(err, -EBADMSG, "entry %zu: ...", i); */
int ug_error_set(struct ug_error *err, int rc, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

/* Overflow-checked arithmetic: return -E2BIG on overflow. */
static inline int ug_size_add(size_t a, size_t b, size_t *ret)
{
	size_t r;
	if (__builtin_add_overflow(a, b, &r))
		return -E2BIG;
	*ret = r;
	return 0;
}
static inline int ug_size_mul(size_t a, size_t b, size_t *ret)
{
	size_t r;
	if (__builtin_mul_overflow(a, b, &r))
		return -E2BIG;
	*ret = r;
	return 0;
}

/* Parse a decimal unsigned integer that fills the whole string and is at
 * most max. -EINVAL if not a number, -ERANGE if above max. */
int ug_parse_u64(const char *s, uint64_t max, uint64_t *ret);
/* Parse a size with optional K/M/G suffix (powers of 1024). */
int ug_parse_size(const char *s, uint64_t max, uint64_t *ret);

/* A relative path as stored in a manifest: not empty, not absolute, no ".",
 * ".." or empty component, no NUL or control characters, no trailing '/',
 * each component <= UG_NAME_MAX, total <= UG_PATH_MAX, valid UTF-8.
 * Returns 0 or -EINVAL
 * with the reason in err. */
int ug_path_check(const char *path, struct ug_error *err);

/* Strict UTF-8 (no overlongs, surrogates or code points above U+10FFFF):
 * manifests are JSON, which carries only valid UTF-8. */
bool ug_utf8_valid(const char *s, size_t len);

/* A channel name: [A-Za-z0-9._-], 1..UG_CHANNEL_MAX, not starting with '.'
 * or '-' (it becomes a directory name and a command-line argument). */
int ug_channel_check(const char *channel, struct ug_error *err);

/* Replace *dst with a copy of v (the old string is freed); -ENOMEM
 * leaves *dst as it was. */
int ug_str_set(char **dst, const char *v);

/* Write all of buf to fd, retrying on EINTR and short writes. */
int ug_write_all(int fd, const void *buf, size_t len);
/* Read exactly len bytes; -EBADMSG if EOF comes first. */
int ug_read_exact(int fd, void *buf, size_t len);
/* Read up to len bytes (stops early only at EOF); returns bytes read. */
ssize_t ug_read_full(int fd, void *buf, size_t len);

/* Read a whole file relative to dirfd (AT_FDCWD ok) without following a
 * final symlink. Fails with -E2BIG if it is larger than max. The buffer is
 * NUL-terminated (not counted in ret_len) and owned by the caller. */
int ug_file_read(int dirfd, const char *path, size_t max, char **ret_data,
		 size_t *ret_len);

/* Atomically create or replace dirfd/path with data: write a temporary file
 * in the same directory, fsync it, rename it over path, fsync the directory.
 * A crash leaves either the old file or the new one, never a partial one. */
int ug_file_write_atomic(int dirfd, const char *path, const void *data,
			 size_t len, mode_t mode);

/* Open a fresh temporary file in dirfd (O_CLOEXEC, mode 0600); its name is
 * written to name (size >= 64). Commit it with ug_file_commit. */
int ug_tmpfile_open(int dirfd, const char *prefix, char *name, size_t name_size);
/* fsync fd, fchmod it to mode, rename tmpname (in tmpdirfd) to path (in
 * dirfd), fsync dirfd. Closes fd in every case. On failure unlinks tmpname. */
int ug_file_commit(int fd, int tmpdirfd, const char *tmpname, int dirfd,
		   const char *path, mode_t mode);

int ug_fsync_dir(int dirfd);

/* mkdir -p of a relative path under dirfd (each component created with
 * mode if missing; an existing non-directory is -ENOTDIR). */
int ug_mkdir_p(int dirfd, const char *path, mode_t mode);

/* Open path under dirfd, refusing symlinks in any component: each component
 * is opened with O_NOFOLLOW. flags as for openat (O_CLOEXEC is added).
 * Returns an fd or -errno (-ELOOP for a symlink). */
int ug_open_beneath(int dirfd, const char *path, int flags, mode_t mode);

/* Number of online CPUs, at least 1. */
unsigned ug_ncpus(void);

/* Wall clock seconds since the epoch. */
int64_t ug_now(void);

/* Format a UNIX time as RFC 3339 UTC ("2026-11-25T13:40:00Z") and back. */
void ug_time_format(int64_t t, char out[32]);
int ug_time_parse(const char *s, int64_t *ret);

/* Human-readable byte count ("1.5 MiB"). */
void ug_bytes_format(uint64_t n, char out[32]);

/* Exit codes of every upgrid program (upgrid(1), upgrid-watch(8), EXIT
 * STATUS), and the one mapping from a library -errno to them. */
#define UG_EXIT_OK        0
#define UG_EXIT_FAILURE   1  /* operation failed (I/O, internal error) */
#define UG_EXIT_USAGE     2  /* bad command line or configuration */
#define UG_EXIT_CORRUPT   3  /* verify found problems / corrupt input */
#define UG_EXIT_SIGNATURE 4  /* bad or missing signature, wrong key */
#define UG_EXIT_NOTFOUND  5  /* repo, version, channel, key file or tree does not exist */
#define UG_EXIT_LOCKED    6  /* another writer holds the repo lock */
#define UG_EXIT_UNCHANGED 0  /* publish: tree identical (reported, not an error) */

int ug_exit_code(int rc);

/* Feeds a config text to inih's ini_parse_stream one line at a time.
 * Debian's inih gives the handler no line numbers and splits a line longer
 * than its buffer into two (a long comment could hide a setting): with
 * this reader the handler can read `line`, and an overlong line ends the
 * input with too_long set. Initialise p and left, the rest to zero. */
struct ug_ini_reader {
	const char *p;
	size_t left;
	int line;
	int line_max;		/* bytes, '\n' excluded */
	bool too_long;
};
char *ug_ini_read_line(char *str, int num, void *stream);

/* Called by ug_ini_parse_file for each line that matters, in file order:
 *  - at a section header, with section the whole name between the
 *    brackets, and name and value NULL (inih itself never reports a
 *    section that holds no setting, and cuts long names);
 *  - at a setting, with section as inih has it ("" before any header),
 *    and name and value with the blanks around them removed.
 * line is the 1-based line of the file. Return 0 to go on, or a negative
 * errno to stop with the reason in err (never NULL; lowercase, naming
 * the setting but not the file or line, which the caller adds). */
typedef int (*ug_ini_handler_fn)(void *ctx, int line, const char *section,
				 const char *name, const char *value,
				 struct ug_error *err);

/* Read the INI settings file at path (a final symlink is followed: it is
 * a file the administrator names) and feed it to handler one line at a
 * time, through inih with the rules of upgrid.conf(5): comments start
 * with '#' or ';' (or " ;" within a line), blanks at the start of a line
 * are ignored (so a line is never the continuation of the one above), a
 * line is at most inih's buffer less its newline and NUL (198 bytes with
 * Debian's libinih), anything but blanks or a comment after a section
 * header's ']' is an error. Parsing stops at the first error, which is
 * the one reported: the handler's, inih's syntax error, an overlong line
 * or a NUL byte, whichever comes first in the file, as
 * "'PATH': line N: ...". Returns 0; -ENOENT (or another -errno) if the
 * file cannot be read, with "cannot read settings file 'PATH': ..."; the
 * handler's error; -EINVAL for anything else wrong with the file (not a
 * regular file, larger than max bytes, syntax); -ENOMEM. */
int ug_ini_parse_file(const char *path, size_t max, ug_ini_handler_fn handler,
		      void *ctx, struct ug_error *err);

#include "banned.h"

#endif

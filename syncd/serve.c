/* serve.c - `upgrid-syncd --serve`: the server side of the replication
 * protocol, one session per process on stdin/stdout (see serve.h).
 *
 * Everything the client sends is hostile until decoded: frames go through
 * ug_proto_recv (bounded by UG_PROTO_FRAME_MAX), a signature is spooled to
 * an anonymous file and never held in memory, and files are sent in
 * UG_PROTO_CHUNK preads so a session's memory does not depend on what it
 * serves. The repo is only read; the session writes under REPO/cache and
 * REPO/reports. */
#include "config.h"

#include <dirent.h>
#include <endian.h>
#include <fcntl.h>
#include <inttypes.h>
#include <jansson.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <syslog.h>
#include <time.h>
#include <unistd.h>

#include "conn.h"
#include "delta.h"
#include "hash.h"
#include "proto.h"
#include "report.h"
#include "serve.h"
#include "store.h"

#define SERVE_MAX_SESSIONS_DEFAULT 64u
#define SERVE_RETRY_AFTER_DEFAULT 10u
#define SERVE_IDLE_TIMEOUT_DEFAULT 300
/* A WAIT sleeps in slices this long and checks in between that the client
 * can still read the answer: a client that vanished during an hour-long
 * WAIT would otherwise hold its session slot for the hour. */
#define SERVE_WAIT_SLICE_MS 1000
#define SERVE_STATS_MAX (64u << 10)
#define SERVE_STATS_PATH "cache/serve-stats.json"
#define SERVE_STATS_LOCK "cache/serve-stats.lock"
#define SERVE_SLOTS_DIR "cache/slots"
/* What a client is told when the repo will not open: the reason (a path,
 * an errno) stays in the server's log, not with an unknown client. */
#define SERVE_NO_REPO "server cannot open its repo: the reason is in the server's log " \
	"(syslog); check the --repo path of its forced command, or run 'upgrid init' there"
#define SERVE_SIGDELTA_DIR "cache/sigdelta"
/* Disk a client can make the server spend: reports.jsonl is renamed to
 * reports.jsonl.1 (replacing it) past UG_REPORTS_ROTATE bytes (report.h),
 * and the signature-delta cache drops its oldest entries past
 * SERVE_SIGDELTA_CACHE_MAX files. A read-only key can churn these, never
 * grow them without bound. */
#define SERVE_SIGDELTA_CACHE_MAX 4096u
/* zstd level of signature deltas: computed while the client waits, so
 * fast; level 3 is within a few percent of 19 on rsync command streams. */
#define SERVE_SIGDELTA_LEVEL 3

/* librsync signature header: magic, block length, strong sum length. */
#define SIG_HEADER_LEN 12u
#define SIG_MAGIC_RK_BLAKE2 0x72730147u
#define SIG_MAGIC_BLAKE2 0x72730137u
/* A hostile signature chooses its block length, and what a signature
 * costs the server grows as blocks shrink: the matcher verifies (strong
 * sum) and records a match every block, and up to UG_RSYNC_SIG_MAX bytes of
 * sums index ever more blocks. rs_sig_args never picks less than 256
 * bytes, so anything below is refused: that caps the matching work at
 * about one verified match per 256 target bytes. delta.c caps the length
 * from above (a block is buffered whole), the session slots cap how many
 * deltas are computed at once, and the cache makes a repeat a file read. */
#define SIG_BLOCK_MIN 256u

/* Counter slots: the blob kinds 1..UG_BLOB_KIND_MAX, then SIGDELTA. */
#define SENT_SIGDELTA (UG_BLOB_KIND_MAX + 1)
#define SENT_N (UG_BLOB_KIND_MAX + 2)

static const char *const sent_names[SENT_N] = {
	[UG_BLOB_OBJECT] = "object",
	[UG_BLOB_DELTA] = "delta",
	[UG_BLOB_MANIFEST] = "manifest",
	[UG_BLOB_SIG] = "sig",
	[UG_BLOB_MDELTA] = "mdelta",
	[UG_BLOB_ROLLOUT] = "rollout",
	[UG_BLOB_ROLLOUT_SIG] = "rollout_sig",
	[SENT_SIGDELTA] = "sigdelta",
};

struct serve_counters {
	uint64_t sessions, busy, errors, bytes_in, bytes_out;
	uint64_t sigdelta_cache_hits, reports;
	struct {
		uint64_t count, bytes;
	} sent[SENT_N];
};

struct session {
	const struct ug_serve_opts *o;
	struct ug_store *s;
	struct ug_conn *c;
	struct ug_buf frame;
	uint8_t *chunk;                         /* UG_PROTO_CHUNK bytes */
	char name[UG_PROTO_NAME_MAX + 1];       /* ours, in WELCOME */
	char client[UG_PROTO_NAME_MAX + 1];     /* theirs, from HELLO */
	int idle_ms;
	int out_fd;
	uint64_t requests;
	unsigned reports;
	bool quiet_notfound;                    /* reply_error: do not log a NOTFOUND */
	struct serve_counters cnt;
	struct ug_error *err;
};

/* ---------------------------------------------------------------- logging */

static void slog(struct session *ss, int level, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static void slog(struct session *ss, int level, const char *fmt, ...)
{
	char line[1024];
	va_list ap;

	if (!ss->o->log)
		return;
	va_start(ap, fmt);
	vsnprintf(line, sizeof(line), fmt, ap);
	va_end(ap);
	ss->o->log(ss->o->log_ctx, level, line);
}

/* ---------------------------------------------------------------- replies */

static int send_msg(struct session *ss, const struct ug_msg *m)
{
	int r = ug_proto_send(ss->c, m);

	if (r < 0)
		return ug_error_set(ss->err, r, "cannot send %s to client '%s': %s",
				    ug_msg_type_name(m->type), ss->client, strerror(-r));
	return 0;
}

/* ERROR text must be valid UTF-8 or the encoder refuses the frame; a
 * message may quote a parser's view of client bytes or be cut mid-way by
 * snprintf, so fall back to ASCII. */
static void text_sanitize(char *text)
{
	size_t n = strlen(text);

	if (ug_utf8_valid(text, n))
		return;
	for (size_t i = 0; i < n; i++)
		if ((unsigned char)text[i] >= 0x80)
			text[i] = '?';
}

/* Answer the current request with ERROR and log why. The session goes on
 * (the return value only reports a failed send). */
static int reply_error(struct session *ss, uint32_t code, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static int reply_error(struct session *ss, uint32_t code, const char *fmt, ...)
{
	char text[1024];
	struct ug_msg m = { .type = UG_MSG_ERROR, .code = code };
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(text, sizeof(text), fmt, ap);
	va_end(ap);
	if (n < 0)
		text[0] = '\0';
	text_sanitize(text);
	m.text = text;
	m.text_len = strlen(text);
	/* a client asking for what this server lacks is routine (it goes
	 * to the next server): not a warning */
	if (!(code == UG_PERR_NOTFOUND && ss->quiet_notfound))
		slog(ss, code == UG_PERR_INTERNAL || code == UG_PERR_CORRUPT ? LOG_ERR :
			 code == UG_PERR_NOTFOUND ? LOG_INFO : LOG_WARNING,
		     "client '%s': %s: %s", ss->client, ug_proto_err_name(code), text);
	return send_msg(ss, &m);
}

/* A protocol error ends the session: tell the client why (if the output
 * still works), count it, and return -EPROTO with the reason in err. */
static int proto_fail(struct session *ss, uint32_t code, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static int proto_fail(struct session *ss, uint32_t code, const char *fmt, ...)
{
	char text[sizeof(ss->err->msg)];
	struct ug_msg m = { .type = UG_MSG_ERROR, .code = code };
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(text, sizeof(text), fmt, ap);
	va_end(ap);
	text_sanitize(text);
	m.text = text;
	m.text_len = strlen(text);
	ss->cnt.errors++;
	slog(ss, LOG_WARNING, "client '%s': protocol error: %s", ss->client, text);
	(void)ug_proto_send(ss->c, &m);
	return ug_error_set(ss->err, -EPROTO, "%s", text);
}

/* Read the next frame. 1: clean end of input; 0: a message; -errno. */
static int recv_msg(struct session *ss, struct ug_msg *m)
{
	struct ug_error e = { "" };
	int r;

	ss->c->timeout_ms = ss->idle_ms;
	r = ug_proto_recv(ss->c, &ss->frame, m, &e);
	if (r == 0)
		return 0;
	if (r == -EPIPE)
		return 1;
	if (r == -EPROTO)
		return proto_fail(ss, UG_PERR_PROTO, "%s", e.msg[0] ? e.msg : "malformed frame");
	if (r == -ETIMEDOUT) {
		slog(ss, LOG_INFO, "client '%s' idle for %d s, closing", ss->client,
		     ss->idle_ms / 1000);
		return ug_error_set(ss->err, r, "client '%s' idle for %d s, closing",
				    ss->client, ss->idle_ms / 1000);
	}
	return ug_error_set(ss->err, r, "cannot read from client '%s': %s", ss->client,
			    e.msg[0] ? e.msg : strerror(-r));
}

/* ---------------------------------------------------------------- blobs */

/* Send fd's bytes [offset, total) as BLOB + DATA frames. The caller keeps
 * fd; kind is the counter slot. */
static int send_file(struct session *ss, int fd, uint64_t offset, int kind, const char *what)
{
	struct ug_msg m = { .type = UG_MSG_BLOB };
	struct stat st;
	uint64_t total, pos;
	int r;

	if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode))
		return reply_error(ss, UG_PERR_INTERNAL, "cannot read %s: not a regular file", what);
	total = (uint64_t)st.st_size;
	if (offset > total)
		return reply_error(ss, UG_PERR_BADREQ, "offset %" PRIu64 " is past the end of %s (%" PRIu64 " bytes)",
				   offset, what, total);
	m.total = total;
	m.offset = offset;
	r = send_msg(ss, &m);
	if (r < 0)
		return r;
	for (pos = offset; pos < total;) {
		size_t want = total - pos < UG_PROTO_CHUNK ? (size_t)(total - pos) : UG_PROTO_CHUNK;
		ssize_t n = pread(fd, ss->chunk, want, (off_t)pos);
		if (n < 0 && errno == EINTR)
			continue;
		/* the client is mid-blob: an ERROR instead of the next DATA
		 * frame tells it this blob will not complete */
		if (n < 0)
			return reply_error(ss, UG_PERR_INTERNAL, "cannot read %s: %s", what, strerror(errno));
		if (n == 0)
			return reply_error(ss, UG_PERR_INTERNAL, "%s shrank while it was being sent", what);
		r = ug_proto_send_data(ss->c, ss->chunk, (size_t)n);
		if (r < 0)
			return ug_error_set(ss->err, r, "cannot send %s to client '%s': %s", what,
					    ss->client, strerror(-r));
		pos += (uint64_t)n;
		ss->cnt.sent[kind].bytes += (uint64_t)n;
	}
	ss->cnt.sent[kind].count++;
	return 0;
}

/* Open a file of the repo for reading, refusing symlinks anywhere and
 * anything that is not a regular file (a FIFO must not hang us). */
static int open_repo_file(struct session *ss, const char *path)
{
	struct stat st;
	int fd = ug_open_beneath(ss->s->dirfd, path, O_RDONLY | O_NONBLOCK, 0);

	if (fd < 0)
		return fd;
	if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode)) {
		close(fd);
		return -ENOENT;
	}
	return fd;
}

/* Open an object's stored bytes after checking its header (size known,
 * magic and format right) without decompressing or hashing it. */
static int object_open_checked(struct session *ss, const struct ug_hash *id, const char *what,
			       int *ret_fd)
{
	int fd, r = ug_store_object_stat(ss->s, id, NULL, NULL);

	if (r == 0)
		r = ug_store_object_open(ss->s, id, &fd);
	if (r == 0) {
		*ret_fd = fd;
		return 0;
	}
	if (r == -ENOENT)
		r = reply_error(ss, UG_PERR_NOTFOUND, "%s not found", what);
	else if (r == -EBADMSG)
		r = reply_error(ss, UG_PERR_CORRUPT, "%s is corrupt (bad header)", what);
	else
		r = reply_error(ss, UG_PERR_INTERNAL, "cannot open %s: %s", what, strerror(-r));
	return r < 0 ? r : 1;
}

static int handle_get(struct session *ss, const struct ug_msg *m)
{
	char what[UG_CHANNEL_MAX + 160], path[UG_CHANNEL_MAX + 96], hex[UG_HASH_HEX_LEN + 1];
	int fd = -1, r;

	switch (m->kind) {
	case UG_BLOB_OBJECT:
	case UG_BLOB_DELTA:
		ug_hash_hex(&m->id, hex);
		snprintf(what, sizeof(what), "%s %s", m->kind == UG_BLOB_OBJECT ? "object" : "delta", hex);
		break;
	case UG_BLOB_MANIFEST:
	case UG_BLOB_SIG:
	case UG_BLOB_MDELTA:
		if (ug_channel_check(m->channel, NULL) < 0)
			return reply_error(ss, UG_PERR_BADREQ, "GET of a %s needs a channel",
					   m->kind == UG_BLOB_MDELTA ? "manifest delta" : "manifest");
		if (m->kind == UG_BLOB_MDELTA) {
			snprintf(what, sizeof(what), "manifest delta '%s' %" PRIu64 " -> %" PRIu64,
				 m->channel, m->from, m->ver);
			snprintf(path, sizeof(path), "manifests/%s/%" PRIu64 ".from-%" PRIu64 ".zst",
				 m->channel, m->ver, m->from);
		} else {
			snprintf(what, sizeof(what), "%s '%s' version %" PRIu64,
				 m->kind == UG_BLOB_SIG ? "signature of manifest" : "manifest",
				 m->channel, m->ver);
			snprintf(path, sizeof(path), "manifests/%s/%" PRIu64 ".json%s", m->channel,
				 m->ver, m->kind == UG_BLOB_SIG ? ".sig" : "");
		}
		break;
	case UG_BLOB_ROLLOUT:
	case UG_BLOB_ROLLOUT_SIG:
		/* the store's files as they are: the client checks the
		 * signature, and a version without a document is "not found" */
		if (ug_channel_check(m->channel, NULL) < 0)
			return reply_error(ss, UG_PERR_BADREQ, "GET of a rollout document needs a channel");
		snprintf(what, sizeof(what), "%s '%s' version %" PRIu64,
			 m->kind == UG_BLOB_ROLLOUT ? "rollout document of" : "rollout signature of",
			 m->channel, m->ver);
		snprintf(path, sizeof(path), "manifests/%s/%" PRIu64 ".rollout%s", m->channel, m->ver,
			 m->kind == UG_BLOB_ROLLOUT_SIG ? ".sig" : "");
		break;
	default:
		return reply_error(ss, UG_PERR_BADREQ, "unknown blob kind %u", m->kind);
	}

	if (m->kind == UG_BLOB_OBJECT) {
		r = object_open_checked(ss, &m->id, what, &fd);
		if (r != 0)
			return r < 0 ? r : 0;
	} else {
		if (m->kind == UG_BLOB_DELTA) {
			r = ug_store_delta_open(ss->s, &m->id, &fd);
			if (r == -EBADMSG)
				r = -ENOENT; /* not a regular file */
		} else {
			fd = open_repo_file(ss, path);
			r = fd < 0 ? fd : 0;
		}
		if ((r == -ENOENT || r == -ENOTDIR || r == -ELOOP) &&
		    (m->kind == UG_BLOB_ROLLOUT || m->kind == UG_BLOB_ROLLOUT_SIG)) {
			/* most versions have no rollout document: not worth a line */
			ss->quiet_notfound = true;
			r = reply_error(ss, UG_PERR_NOTFOUND, "%s not found", what);
			ss->quiet_notfound = false;
			return r;
		}
		if (r == -ENOENT || r == -ENOTDIR || r == -ELOOP)
			return reply_error(ss, UG_PERR_NOTFOUND, "%s not found", what);
		if (r < 0)
			return reply_error(ss, UG_PERR_INTERNAL, "cannot open %s: %s", what, strerror(-r));
	}
	r = send_file(ss, fd, m->offset, m->kind, what);
	close(fd);
	return r;
}

/* ---------------------------------------------------------------- sigdelta */


static uint32_t be32_at(const uint8_t *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

/* Take sig_len bytes of DATA frames, hashing them into h and writing them
 * to fd (or dropping them when fd < 0: the request already failed but the
 * stream must stay in step). A write error turns fd off and is returned
 * in *wr_err. Anything but DATA, or more bytes than announced, is a
 * protocol error. */
static int sig_receive(struct session *ss, uint64_t sig_len, int fd, struct ug_hasher *h,
		       int *wr_err)
{
	uint64_t got = 0;

	while (got < sig_len) {
		struct ug_msg m;
		int r = recv_msg(ss, &m);

		if (r == 1)
			return proto_fail(ss, UG_PERR_PROTO,
					  "SIGDELTA: end of input after %" PRIu64 " of %" PRIu64 " signature bytes",
					  got, sig_len);
		if (r < 0)
			return r;
		if (m.type != UG_MSG_DATA)
			return proto_fail(ss, UG_PERR_PROTO,
					  "SIGDELTA: expected DATA after %" PRIu64 " of %" PRIu64 " signature bytes, got %s",
					  got, sig_len, ug_msg_type_name(m.type));
		if (m.data_len > sig_len - got)
			return proto_fail(ss, UG_PERR_PROTO,
					  "SIGDELTA: DATA frames carry more than the announced %" PRIu64 " signature bytes",
					  sig_len);
		ug_hasher_update(h, m.data, m.data_len);
		if (fd >= 0 && *wr_err == 0) {
			r = ug_write_all(fd, m.data, m.data_len);
			if (r < 0)
				*wr_err = r;
		}
		got += m.data_len;
	}
	return 0;
}

struct cache_entry {
	char name[UG_HASH_HEX_LEN + 1];
	int64_t mtime_ns;
};

static int cache_entry_cmp(const void *a, const void *b)
{
	const struct cache_entry *x = a, *y = b;

	return (x->mtime_ns > y->mtime_ns) - (x->mtime_ns < y->mtime_ns);
}

/* Keep the cache below SERVE_SIGDELTA_CACHE_MAX entries by removing the
 * oldest quarter when it is full. Best effort: a failure only means the
 * cache stays larger. */
static void cache_prune(int cachedir)
{
	struct cache_entry *v = NULL;
	size_t n = 0, alloc = 0;
	struct dirent *de;
	DIR *d;
	int fd = openat(cachedir, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);

	if (fd < 0)
		return;
	d = fdopendir(fd);
	if (!d) {
		close(fd);
		return;
	}
	while ((de = readdir(d))) {
		struct stat st;
		if (strlen(de->d_name) != UG_HASH_HEX_LEN ||
		    fstatat(cachedir, de->d_name, &st, AT_SYMLINK_NOFOLLOW) < 0)
			continue;
		if (n == alloc) {
			size_t na = alloc ? alloc * 2 : 256;
			struct cache_entry *nv = realloc(v, na * sizeof(*v));
			if (!nv)
				break;
			v = nv;
			alloc = na;
		}
		memcpy(v[n].name, de->d_name, UG_HASH_HEX_LEN + 1);
		v[n].mtime_ns = (int64_t)st.st_mtim.tv_sec * 1000000000 + st.st_mtim.tv_nsec;
		n++;
	}
	closedir(d);
	if (n >= SERVE_SIGDELTA_CACHE_MAX) {
		qsort(v, n, sizeof(*v), cache_entry_cmp);
		for (size_t i = 0; i < n / 4; i++)
			unlinkat(cachedir, v[i].name, 0);
	}
	free(v);
}

/* Compute the delta from the signature in sig_fd to the object (its
 * content or its stored bytes) into the cache as cachedir/hex. Returns 0,
 * 1 when an ERROR was sent, or -errno. */
static int sigdelta_compute(struct session *ss, const struct ug_msg *m, int sig_fd, int cachedir,
			    const char *hex, const char *what)
{
	struct ug_delta_params p;
	char tmpname[128];
	int target = -1, out, r;

	if (m->form == UG_SIG_CONTENT)
		r = ug_store_object_tmp(ss->s, &m->id, &target);
	else
		r = ug_store_object_open(ss->s, &m->id, &target);
	if (r < 0) {
		if (r == -ENOENT)
			r = reply_error(ss, UG_PERR_NOTFOUND, "%s not found", what);
		else if (r == -EBADMSG)
			r = reply_error(ss, UG_PERR_CORRUPT, "%s is corrupt", what);
		else
			r = reply_error(ss, UG_PERR_INTERNAL, "cannot read %s: %s", what, strerror(-r));
		return r < 0 ? r : 1;
	}
	out = ug_tmpfile_open(cachedir, "sigdelta", tmpname, sizeof(tmpname));
	if (out < 0) {
		close(target);
		r = reply_error(ss, UG_PERR_INTERNAL, "cannot create a file in '%s/" SERVE_SIGDELTA_DIR "': %s",
				ss->s->path, strerror(-out));
		return r < 0 ? r : 1;
	}
	ug_delta_params_default(&p);
	p.level = SERVE_SIGDELTA_LEVEL;
	p.threads = 0;
	r = lseek(sig_fd, 0, SEEK_SET) < 0 ? -errno : 0;
	if (r == 0)
		r = ug_delta_rsync_from_signature(sig_fd, target, out, &p, NULL);
	close(target);
	if (r < 0) {
		close(out);
		unlinkat(cachedir, tmpname, 0);
		if (r == -EBADMSG)
			r = reply_error(ss, UG_PERR_BADREQ, "the signature for %s is garbled", what);
		else if (r == -E2BIG)
			r = reply_error(ss, UG_PERR_TOOBIG, "the signature for %s is over %llu bytes",
					what, (unsigned long long)UG_RSYNC_SIG_MAX);
		else
			r = reply_error(ss, UG_PERR_INTERNAL, "cannot compute a delta to %s: %s", what,
					strerror(-r));
		return r < 0 ? r : 1;
	}
	cache_prune(cachedir);
	r = ug_file_commit(out, cachedir, tmpname, cachedir, hex, 0644);
	if (r < 0) {
		r = reply_error(ss, UG_PERR_INTERNAL, "cannot store a delta to %s in the cache: %s",
				what, strerror(-r));
		return r < 0 ? r : 1;
	}
	return 0;
}

static int handle_sigdelta(struct session *ss, const struct ug_msg *req)
{
	/* the request's fields live in the frame buffer, which the DATA
	 * frames reuse: copy them first */
	struct ug_msg m = *req;
	char what[UG_HASH_HEX_LEN + 64], hex[UG_HASH_HEX_LEN + 1];
	uint8_t hdr[SIG_HEADER_LEN], form;
	struct ug_hasher h;
	struct ug_hash key;
	bool refused = false;
	int sig_fd = -1, wr_err = 0, cachedir = -1, fd = -1, r;
	uint32_t code = 0;
	char reason[256] = "";

	ug_hash_hex(&m.id, hex);
	snprintf(what, sizeof(what), "object %s", hex);
	/* the decoder refuses this already; never drain up to 2^64 bytes */
	if (m.sig_len > UG_RSYNC_SIG_MAX)
		return proto_fail(ss, UG_PERR_TOOBIG, "a signature of %" PRIu64 " bytes is over the limit of %llu",
				  m.sig_len, (unsigned long long)UG_RSYNC_SIG_MAX);
	/* decide what can be decided before the signature arrives, but take
	 * the signature in any case so the stream stays in step */
	if (m.form != UG_SIG_CONTENT && m.form != UG_SIG_STORED) {
		code = UG_PERR_BADREQ;
		snprintf(reason, sizeof(reason), "unknown SIGDELTA form %u", m.form);
	} else if (m.sig_len < SIG_HEADER_LEN) {
		code = UG_PERR_BADREQ;
		snprintf(reason, sizeof(reason), "a signature of %" PRIu64 " bytes is shorter than its %u-byte header",
			 m.sig_len, SIG_HEADER_LEN);
	} else {
		r = ug_store_object_stat(ss->s, &m.id, NULL, NULL);
		if (r == -ENOENT) {
			code = UG_PERR_NOTFOUND;
			snprintf(reason, sizeof(reason), "%s not found", what);
		} else if (r == -EBADMSG) {
			code = UG_PERR_CORRUPT;
			snprintf(reason, sizeof(reason), "%s is corrupt (bad header)", what);
		} else if (r < 0) {
			code = UG_PERR_INTERNAL;
			snprintf(reason, sizeof(reason), "cannot open %s: %s", what, strerror(-r));
		}
	}
	refused = code != 0;
	if (!refused) {
		sig_fd = ug_store_tmp_anon(ss->s);
		if (sig_fd < 0) {
			refused = true;
			code = UG_PERR_INTERNAL;
			snprintf(reason, sizeof(reason), "cannot create a file in '%s/tmp': %s",
				 ss->s->path, strerror(-sig_fd));
		}
	}
	r = ug_hasher_init(&h);
	if (r < 0) {
		if (sig_fd >= 0)
			close(sig_fd);
		return ug_error_set(ss->err, r, "out of memory");
	}
	form = m.form;
	ug_hasher_update(&h, &form, 1);
	ug_hasher_update(&h, m.id.b, sizeof(m.id.b));
	r = sig_receive(ss, m.sig_len, sig_fd, &h, &wr_err);
	ug_hasher_final(&h, &key, NULL, NULL);
	if (r < 0)
		goto out;
	if (!refused && wr_err < 0) {
		refused = true;
		code = UG_PERR_INTERNAL;
		snprintf(reason, sizeof(reason), "cannot store the signature in '%s/tmp': %s",
			 ss->s->path, strerror(-wr_err));
	}
	if (!refused) {
		ssize_t n = pread(sig_fd, hdr, sizeof(hdr), 0);
		uint32_t magic = n == (ssize_t)sizeof(hdr) ? be32_at(hdr) : 0;
		uint32_t block = n == (ssize_t)sizeof(hdr) ? be32_at(hdr + 4) : 0;
		if (n != (ssize_t)sizeof(hdr)) {
			refused = true;
			code = UG_PERR_INTERNAL;
			snprintf(reason, sizeof(reason), "cannot read back the signature: %s",
				 n < 0 ? strerror(errno) : "short read");
		} else if (magic != SIG_MAGIC_RK_BLAKE2 && magic != SIG_MAGIC_BLAKE2) {
			refused = true;
			code = UG_PERR_BADREQ;
			snprintf(reason, sizeof(reason),
				 "signature magic 0x%08x is not a librsync BLAKE2 signature (0x%08x or 0x%08x)",
				 magic, SIG_MAGIC_RK_BLAKE2, SIG_MAGIC_BLAKE2);
		} else if (block < SIG_BLOCK_MIN) {
			refused = true;
			code = UG_PERR_BADREQ;
			snprintf(reason, sizeof(reason),
				 "signature block length %u is below the minimum of %u", block, SIG_BLOCK_MIN);
		}
	}
	if (refused) {
		r = reply_error(ss, code, "%s", reason);
		goto out;
	}

	ug_hash_hex(&key, hex);
	r = ug_mkdir_p(ss->s->dirfd, SERVE_SIGDELTA_DIR, 0755);
	if (r == 0) {
		cachedir = ug_open_beneath(ss->s->dirfd, SERVE_SIGDELTA_DIR, O_RDONLY | O_DIRECTORY, 0);
		r = cachedir < 0 ? cachedir : 0;
	}
	if (r < 0) {
		r = reply_error(ss, UG_PERR_INTERNAL, "cannot use '%s/" SERVE_SIGDELTA_DIR "': %s",
				ss->s->path, strerror(-r));
		goto out;
	}
	fd = openat(cachedir, hex, O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK);
	if (fd >= 0) {
		ss->cnt.sigdelta_cache_hits++;
	} else {
		r = sigdelta_compute(ss, &m, sig_fd, cachedir, hex, what);
		if (r != 0) {
			r = r < 0 ? r : 0;
			goto out;
		}
		fd = openat(cachedir, hex, O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK);
		if (fd < 0) {
			r = reply_error(ss, UG_PERR_INTERNAL, "cannot open the cached delta to %s: %s",
					what, strerror(errno));
			goto out;
		}
	}
	ug_hash_hex(&m.id, hex);
	snprintf(what, sizeof(what), "the signature delta to object %s", hex);
	r = send_file(ss, fd, m.offset, SENT_SIGDELTA, what);
out:
	if (fd >= 0)
		close(fd);
	if (cachedir >= 0)
		close(cachedir);
	if (sig_fd >= 0)
		close(sig_fd);
	return r;
}

/* ---------------------------------------------------------------- refs */

static int read_ref(struct session *ss, const char *channel, uint64_t *ret)
{
	int r = ug_store_ref_read(ss->s, channel, ret);

	if (r == -ENOENT) {
		*ret = 0;
		return 0;
	}
	if (r < 0) {
		r = reply_error(ss, r == -EBADMSG ? UG_PERR_CORRUPT : UG_PERR_INTERNAL,
				"cannot read the ref of channel '%s': %s", channel,
				r == -EBADMSG ? "not a version number" : strerror(-r));
		return r < 0 ? r : 1;
	}
	return 0;
}

static int send_ref(struct session *ss, const char *channel)
{
	struct ug_msg m = { .type = UG_MSG_REF };
	int r;

	if (ug_channel_check(channel, NULL) < 0)
		return reply_error(ss, UG_PERR_BADREQ, "the request names no channel");
	r = read_ref(ss, channel, &m.ver);
	if (r != 0)
		return r < 0 ? r : 0;
	snprintf(m.channel, sizeof(m.channel), "%s", channel);
	return send_msg(ss, &m);
}

static int64_t mono_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Nobody left to read our answer: the output is closed on the far side. */
static bool client_gone(int out_fd)
{
	struct pollfd pfd = { .fd = out_fd, .events = 0 };

	return poll(&pfd, 1, 0) > 0 && (pfd.revents & (POLLERR | POLLHUP | POLLNVAL));
}

/* 0: answer with REF; 1: the client went away. */
static int handle_wait(struct session *ss, const struct ug_msg *m)
{
	int64_t deadline;
	uint32_t timeout = m->timeout > UG_PROTO_WAIT_MAX ? UG_PROTO_WAIT_MAX : m->timeout;
	uint64_t v;
	char channel[UG_CHANNEL_MAX + 1];
	int r;

	if (ug_channel_check(m->channel, NULL) < 0)
		return reply_error(ss, UG_PERR_BADREQ, "WAIT names no channel");
	snprintf(channel, sizeof(channel), "%s", m->channel);
	deadline = mono_ms() + (int64_t)timeout * 1000;
	for (;;) {
		int64_t left = deadline - mono_ms();
		int slice = left > SERVE_WAIT_SLICE_MS ? SERVE_WAIT_SLICE_MS : (int)(left < 0 ? 0 : left);

		r = ug_store_ref_wait(ss->s, channel, m->after, slice, &v);
		if (r == 0 || (r == -ETIMEDOUT && left <= SERVE_WAIT_SLICE_MS))
			break;
		if (r != -ETIMEDOUT)
			break; /* an error: send_ref reports it */
		if (client_gone(ss->out_fd)) {
			slog(ss, LOG_INFO, "client '%s' went away during WAIT", ss->client);
			return 1;
		}
	}
	return send_ref(ss, channel);
}

static int handle_list(struct session *ss, const struct ug_msg *req)
{
	struct ug_msg m = { .type = UG_MSG_VERSIONS };
	uint64_t *v = NULL, *be;
	size_t n = 0, first;
	int r;

	if (ug_channel_check(req->channel, NULL) < 0)
		return reply_error(ss, UG_PERR_BADREQ, "LIST names no channel");
	r = ug_store_versions(ss->s, req->channel, &v, &n);
	if (r < 0)
		return reply_error(ss, UG_PERR_INTERNAL, "cannot list the versions of channel '%s': %s",
				   req->channel, strerror(-r));
	first = n > UG_PROTO_VERSIONS_MAX ? n - UG_PROTO_VERSIONS_MAX : 0;
	be = v;
	for (size_t i = first; i < n; i++)
		be[i - first] = htobe64(v[i]);
	m.versions_be = be;
	m.nversions = (uint32_t)(n - first);
	r = send_msg(ss, &m);
	free(v);
	return r;
}

/* ---------------------------------------------------------------- fleet */

/* The lines to append for one REPORT text: the terminal's report, or each
 * report of a relay batch ({"relay":[...]}), stamped with our name and
 * clock, each followed by a newline. All or nothing: a batch with one bad
 * report is refused whole, so the relaying server can tell which one by
 * sending them one at a time. 0, or -EINVAL / -E2BIG with the reason in
 * err (the client's fault), or -ENOMEM. */
static int report_lines(struct session *ss, json_t *doc, bool *ret_relay, size_t *ret_count,
			struct ug_buf *out, struct ug_error *err)
{
	json_t *batch = json_object_get(doc, "relay");
	int64_t now = ug_now();
	char *line;
	size_t len, i;
	json_t *rep;
	int r;

	*ret_relay = batch != NULL;
	if (!batch) {
		r = ug_report_stamp(doc, ss->name, now, false, &line, &len, err);
		if (r < 0)
			return r;
		r = ug_buf_put(out, line, len);
		if (r == 0)
			r = ug_buf_put_u8(out, '\n');
		free(line);
		*ret_count = 1;
		return r;
	}
	if (json_object_size(doc) != 1)
		return ug_error_set(err, -EINVAL, "a relay batch holds 'relay' and nothing else");
	if (!json_is_array(batch) || json_array_size(batch) == 0 ||
	    json_array_size(batch) > UG_REPORT_BATCH_MAX)
		return ug_error_set(err, -EINVAL, "'relay' must be an array of 1 to %u reports",
				    UG_REPORT_BATCH_MAX);
	json_array_foreach(batch, i, rep) {
		struct ug_error e = { "" };
		r = ug_report_stamp(rep, ss->name, now, true, &line, &len, &e);
		if (r < 0)
			return ug_error_set(err, r, "relay batch, report %zu: %s", i + 1, e.msg);
		r = ug_buf_put(out, line, len);
		if (r == 0)
			r = ug_buf_put_u8(out, '\n');
		free(line);
		if (r < 0)
			return r;
	}
	*ret_count = json_array_size(batch);
	return 0;
}

/* Append the lines with one write (O_APPEND keeps concurrent sessions'
 * lines whole), then rotate the file once it has grown past its limit. */
static int reports_append(struct session *ss, const struct ug_buf *lines)
{
	struct stat st;
	int fd, r = ug_mkdir_p(ss->s->dirfd, UG_REPORTS_DIR, 0755);

	if (r < 0)
		return r;
	fd = ug_open_beneath(ss->s->dirfd, UG_REPORTS_FILE, O_WRONLY | O_APPEND | O_CREAT | O_NONBLOCK,
			     0644);
	if (fd < 0)
		return fd;
	if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode))
		r = -EINVAL;
	else
		r = ug_write_all(fd, lines->data, lines->len);
	close(fd);
	/* a racing session may rotate too: one of the renames wins, and at
	 * worst a report lands in the older file */
	if (r == 0 && (uint64_t)st.st_size + lines->len > UG_REPORTS_ROTATE)
		renameat(ss->s->dirfd, UG_REPORTS_FILE, ss->s->dirfd, UG_REPORTS_OLD);
	return r;
}

static int handle_report(struct session *ss, const struct ug_msg *m)
{
	struct ug_error e = { "" };
	struct ug_buf lines;
	json_error_t jerr;
	json_t *doc;
	size_t count = 0;
	bool relay = false;
	int r;

	if (ss->o->read_only && ss->reports > 0)
		return reply_error(ss, UG_PERR_DENIED, "only one REPORT per session is allowed on a read-only key");
	doc = json_loadb(m->text, m->text_len, JSON_REJECT_DUPLICATES, &jerr);
	if (!doc)
		return reply_error(ss, UG_PERR_BADREQ, "report is not JSON: %s (line %d, column %d)",
				   jerr.text, jerr.line, jerr.column);
	if (!json_is_object(doc)) {
		json_decref(doc);
		return reply_error(ss, UG_PERR_BADREQ, "report is not a JSON object");
	}
	if (ss->o->read_only && json_object_get(doc, "relay")) {
		json_decref(doc);
		return reply_error(ss, UG_PERR_DENIED, "a read-only key cannot relay reports");
	}
	/* every stamped line is at most UG_REPORT_LINE_MAX bytes + newline */
	ug_buf_init(&lines, UG_REPORT_BATCH_MAX * (size_t)(UG_REPORT_LINE_MAX + 1));
	r = report_lines(ss, doc, &relay, &count, &lines, &e);
	json_decref(doc);
	if (r == -EINVAL || r == -E2BIG) {
		ug_buf_release(&lines);
		return reply_error(ss, UG_PERR_BADREQ, "%s", e.msg);
	}
	if (r == 0)
		r = reports_append(ss, &lines);
	ug_buf_release(&lines);
	if (r == -ENOMEM)
		return ug_error_set(ss->err, r, "out of memory");
	if (r < 0)
		return reply_error(ss, UG_PERR_INTERNAL, "cannot append to '%s/" UG_REPORTS_FILE "': %s",
				   ss->s->path, strerror(-r));
	ss->reports++;
	ss->cnt.reports += count;
	if (relay)
		slog(ss, LOG_INFO, "client '%s' relayed %zu reports", ss->client, count);
	{
		struct ug_msg ok = { .type = UG_MSG_OK };
		return send_msg(ss, &ok);
	}
}

/* ---------------------------------------------------------------- counters */

static json_t *counters_json(const struct serve_counters *c)
{
	json_t *doc = json_object(), *sent = json_object();
	int bad = !doc || !sent;

#define SET(o, k, v) (bad |= json_object_set_new(o, k, json_integer((json_int_t)(v))))
	if (!bad) {
		SET(doc, "sessions", c->sessions);
		SET(doc, "busy", c->busy);
		SET(doc, "errors", c->errors);
		SET(doc, "bytes_in", c->bytes_in);
		SET(doc, "bytes_out", c->bytes_out);
		SET(doc, "sigdelta_cache_hits", c->sigdelta_cache_hits);
		SET(doc, "reports", c->reports);
		for (int k = 1; k < SENT_N; k++) {
			json_t *e = json_object();
			if (!e) {
				bad = 1;
				break;
			}
			SET(e, "count", c->sent[k].count);
			SET(e, "bytes", c->sent[k].bytes);
			bad |= json_object_set_new(sent, sent_names[k], e);
		}
	}
#undef SET
	if (!bad) {
		bad = json_object_set(doc, "sent", sent);
	}
	json_decref(sent);
	if (bad) {
		json_decref(doc);
		return NULL;
	}
	return doc;
}

static uint64_t json_u64(json_t *o, const char *key)
{
	json_t *v = json_object_get(o, key);

	return json_is_integer(v) && json_integer_value(v) > 0 ? (uint64_t)json_integer_value(v) : 0;
}

/* Counters from a stats document; missing or odd fields count as zero. */
static void counters_parse(json_t *doc, struct serve_counters *c)
{
	json_t *sent = json_object_get(doc, "sent");

	memset(c, 0, sizeof(*c));
	c->sessions = json_u64(doc, "sessions");
	c->busy = json_u64(doc, "busy");
	c->errors = json_u64(doc, "errors");
	c->bytes_in = json_u64(doc, "bytes_in");
	c->bytes_out = json_u64(doc, "bytes_out");
	c->sigdelta_cache_hits = json_u64(doc, "sigdelta_cache_hits");
	c->reports = json_u64(doc, "reports");
	for (int k = 1; k < SENT_N; k++) {
		json_t *e = json_object_get(sent, sent_names[k]);
		c->sent[k].count = json_u64(e, "count");
		c->sent[k].bytes = json_u64(e, "bytes");
	}
}

/* Read the counters file under dirfd: 0 and the counters (zeros when there
 * is no file yet), -EBADMSG for a file that is not a JSON object. */
static int counters_load(int dirfd, struct serve_counters *ret)
{
	char *text;
	size_t len;
	json_t *doc;
	int r = ug_file_read(dirfd, SERVE_STATS_PATH, SERVE_STATS_MAX, &text, &len);

	if (r == -ENOENT) {
		memset(ret, 0, sizeof(*ret));
		return 0;
	}
	if (r < 0)
		return r;
	doc = json_loadb(text, len, 0, NULL);
	free(text);
	if (!json_is_object(doc)) {
		json_decref(doc);
		return -EBADMSG;
	}
	counters_parse(doc, ret);
	json_decref(doc);
	return 0;
}

static void add_sat(uint64_t *a, uint64_t b)
{
	/* stay within JSON's signed 64-bit integers */
	*a = *a + b < *a || *a + b > INT64_MAX ? INT64_MAX : *a + b;
}

/* Add this session's counters to the file, under its lock. */
static int counters_commit(struct session *ss)
{
	struct serve_counters tot;
	const struct serve_counters *c = &ss->cnt;
	json_t *doc;
	char *text;
	int lockfd, r;

	r = ug_mkdir_p(ss->s->dirfd, "cache", 0755);
	if (r < 0)
		return r;
	lockfd = ug_open_beneath(ss->s->dirfd, SERVE_STATS_LOCK, O_RDWR | O_CREAT, 0644);
	if (lockfd < 0)
		return lockfd;
	while (flock(lockfd, LOCK_EX) < 0) {
		if (errno != EINTR) {
			r = -errno;
			close(lockfd);
			return r;
		}
	}
	r = counters_load(ss->s->dirfd, &tot);
	if (r == -EBADMSG) {
		slog(ss, LOG_WARNING, "'%s/" SERVE_STATS_PATH "' is not a JSON object; counting from zero",
		     ss->s->path);
		memset(&tot, 0, sizeof(tot));
		r = 0;
	}
	if (r < 0)
		goto out;
	add_sat(&tot.sessions, c->sessions);
	add_sat(&tot.busy, c->busy);
	add_sat(&tot.errors, c->errors);
	add_sat(&tot.bytes_in, c->bytes_in);
	add_sat(&tot.bytes_out, c->bytes_out);
	add_sat(&tot.sigdelta_cache_hits, c->sigdelta_cache_hits);
	add_sat(&tot.reports, c->reports);
	for (int k = 1; k < SENT_N; k++) {
		add_sat(&tot.sent[k].count, c->sent[k].count);
		add_sat(&tot.sent[k].bytes, c->sent[k].bytes);
	}
	doc = counters_json(&tot);
	text = doc ? json_dumps(doc, JSON_COMPACT | JSON_PRESERVE_ORDER) : NULL;
	json_decref(doc);
	if (!text) {
		r = -ENOMEM;
		goto out;
	}
	r = ug_file_write_atomic(ss->s->dirfd, SERVE_STATS_PATH, text, strlen(text), 0644);
	free(text);
out:
	close(lockfd);
	return r;
}

/* The counters document as text (the file's, normalised; zeros if none). */
static int counters_text(int dirfd, char **ret)
{
	struct serve_counters c;
	json_t *doc;
	char *text;
	int r = counters_load(dirfd, &c);

	if (r < 0)
		return r;
	doc = counters_json(&c);
	text = doc ? json_dumps(doc, JSON_COMPACT | JSON_PRESERVE_ORDER) : NULL;
	json_decref(doc);
	if (!text)
		return -ENOMEM;
	*ret = text;
	return 0;
}

static int handle_stats(struct session *ss)
{
	struct ug_msg m = { .type = UG_MSG_STATS_REPLY };
	char *text;
	int r;

	if (ss->o->read_only)
		return reply_error(ss, UG_PERR_DENIED, "STATS is not allowed on a read-only key");
	r = counters_text(ss->s->dirfd, &text);
	if (r < 0)
		return reply_error(ss, UG_PERR_INTERNAL, "cannot read '%s/" SERVE_STATS_PATH "': %s",
				   ss->s->path, r == -EBADMSG ? "not a JSON object" : strerror(-r));
	m.text = text;
	m.text_len = strlen(text);
	r = send_msg(ss, &m);
	free(text);
	return r;
}

int ug_serve_stats_read(const char *repo, char **ret_json, struct ug_error *err)
{
	struct ug_store *s;
	char *text;
	int r = ug_store_open(repo, &s, err);

	if (r < 0)
		return r;
	r = counters_text(s->dirfd, &text);
	if (r < 0)
		ug_error_set(err, r, "cannot read '%s/" SERVE_STATS_PATH "': %s", repo,
			     r == -EBADMSG ? "not a JSON object" : strerror(-r));
	ug_store_free(s);
	if (r < 0)
		return r;
	*ret_json = text;
	return 0;
}

/* ---------------------------------------------------------------- session */

/* Take the first free slot REPO/cache/slots/N: its fd (hold it for the
 * session; the kernel drops the lock if we die), -EWOULDBLOCK when all
 * are taken, or -errno. */
static int slot_take(struct ug_store *s, unsigned max)
{
	char path[64];
	int r = ug_mkdir_p(s->dirfd, SERVE_SLOTS_DIR, 0755);

	if (r < 0)
		return r;
	for (unsigned i = 0; i < max; i++) {
		int fd;

		snprintf(path, sizeof(path), SERVE_SLOTS_DIR "/%u", i);
		fd = ug_open_beneath(s->dirfd, path, O_RDWR | O_CREAT | O_NONBLOCK, 0644);
		if (fd < 0)
			return fd;
		while ((r = flock(fd, LOCK_EX | LOCK_NB)) < 0 && errno == EINTR)
			;
		if (r == 0)
			return fd;
		r = errno;
		close(fd);
		if (r != EWOULDBLOCK)
			return -r;
	}
	return -EWOULDBLOCK;
}

static void server_name(const struct ug_serve_opts *o, char *out, size_t n)
{
	char host[UG_PROTO_NAME_MAX + 1] = "";

	if (o->name && o->name[0]) {
		snprintf(out, n, "%s", o->name);
		return;
	}
	if (gethostname(host, sizeof(host) - 1) < 0 || !host[0])
		snprintf(host, sizeof(host), "upgrid");
	host[sizeof(host) - 1] = '\0';
	snprintf(out, n, "%s", host);
}

/* HELLO, version, slot, WELCOME. 0: admitted (slot in *slot_fd); 1: the
 * session is over (EOF, BUSY); -errno. */
static int session_open(struct session *ss, int *slot_fd)
{
	const struct ug_serve_opts *o = ss->o;
	unsigned max = o->max_sessions ? o->max_sessions : SERVE_MAX_SESSIONS_DEFAULT;
	struct ug_msg m;
	uint32_t lo, hi;
	int r = recv_msg(ss, &m);

	if (r != 0)
		return r;
	if (m.type != UG_MSG_HELLO)
		return proto_fail(ss, UG_PERR_PROTO, "expected HELLO, got %s", ug_msg_type_name(m.type));
	snprintf(ss->client, sizeof(ss->client), "%s", m.name);
	lo = m.min_version > 1 ? m.min_version : 1;
	hi = m.max_version < UG_PROTO_VERSION ? m.max_version : UG_PROTO_VERSION;
	if (lo > hi)
		return proto_fail(ss, UG_PERR_VERSION,
				  "no common protocol version: server speaks 1..%u, client %" PRIu32 "..%" PRIu32,
				  UG_PROTO_VERSION, m.min_version, m.max_version);

	r = slot_take(ss->s, max);
	if (r == -EWOULDBLOCK) {
		struct ug_msg busy = { .type = UG_MSG_BUSY };
		char text[UG_PROTO_NAME_MAX + 96];

		busy.retry_after = o->retry_after ? o->retry_after : SERVE_RETRY_AFTER_DEFAULT;
		if (busy.retry_after > UG_PROTO_RETRY_MAX)
			busy.retry_after = UG_PROTO_RETRY_MAX;
		snprintf(text, sizeof(text), "server '%s' is at its limit of %u sessions", ss->name, max);
		busy.text = text;
		busy.text_len = strlen(text);
		ss->cnt.busy++;
		slog(ss, LOG_INFO, "client '%s': busy: %s", ss->client, text);
		r = send_msg(ss, &busy);
		return r < 0 ? r : 1;
	}
	if (r < 0) {
		(void)reply_error(ss, UG_PERR_INTERNAL, "server '%s' cannot take a session slot", ss->name);
		return ug_error_set(ss->err, r, "cannot take a session slot in '%s/" SERVE_SLOTS_DIR "': %s",
				    ss->s->path, strerror(-r));
	}
	*slot_fd = r;
	ss->cnt.sessions++;

	m = (struct ug_msg){ .type = UG_MSG_WELCOME, .version = hi,
			     .flags = o->read_only ? UG_WELCOME_READ_ONLY : 0 };
	snprintf(m.name, sizeof(m.name), "%s", ss->name);
	return send_msg(ss, &m);
}

/* One request. 0: next; 1: the session is over; -errno. */
static int session_step(struct session *ss)
{
	struct ug_msg m;
	int r = recv_msg(ss, &m);

	if (r != 0)
		return r;
	if (m.type == UG_MSG_BYE)
		return 1;
	ss->requests++;
	switch (m.type) {
	case UG_MSG_GET_REF:
		return send_ref(ss, m.channel);
	case UG_MSG_WAIT:
		return handle_wait(ss, &m);
	case UG_MSG_LIST:
		return handle_list(ss, &m);
	case UG_MSG_GET:
		return handle_get(ss, &m);
	case UG_MSG_SIGDELTA:
		return handle_sigdelta(ss, &m);
	case UG_MSG_REPORT:
		return handle_report(ss, &m);
	case UG_MSG_STATS:
		return handle_stats(ss);
	case UG_MSG_HELLO:
		return proto_fail(ss, UG_PERR_PROTO, "a second HELLO");
	default:
		return proto_fail(ss, UG_PERR_PROTO, "unexpected %s from a client",
				  ug_msg_type_name(m.type));
	}
}

int ug_serve(const struct ug_serve_opts *o, int in_fd, int out_fd, struct ug_error *err)
{
	struct ug_error local = { "" };
	struct session ss = { .o = o, .err = err ? err : &local, .out_fd = out_fd };
	int slot_fd = -1, r;

	if (!o->repo)
		return ug_error_set(ss.err, -EINVAL, "no repo to serve");
	snprintf(ss.client, sizeof(ss.client), "?");
	server_name(o, ss.name, sizeof(ss.name));
	ss.idle_ms = (o->idle_timeout_s > 0 ? o->idle_timeout_s : SERVE_IDLE_TIMEOUT_DEFAULT);
	ss.idle_ms = ss.idle_ms > INT32_MAX / 1000 ? INT32_MAX : ss.idle_ms * 1000;
	ug_buf_init(&ss.frame, UG_PROTO_FRAME_MAX);

	r = ug_conn_fd_new(in_fd, out_fd, false, &ss.c);
	if (r == 0)
		ss.c->timeout_whole = true;
	if (r < 0)
		return ug_error_set(ss.err, r, "out of memory");
	ss.chunk = malloc(UG_PROTO_CHUNK);
	if (!ss.chunk) {
		r = ug_error_set(ss.err, -ENOMEM, "out of memory");
		goto out;
	}
	r = ug_store_open(o->repo, &ss.s, ss.err);
	if (r < 0) {
		/* the client would otherwise wait for a WELCOME that never
		 * comes; the details stay in our log */
		struct ug_msg m = { .type = UG_MSG_ERROR, .code = UG_PERR_INTERNAL,
				    .text = SERVE_NO_REPO, .text_len = sizeof(SERVE_NO_REPO) - 1 };
		(void)ug_proto_send(ss.c, &m);
		slog(&ss, LOG_ERR, "%s", ss.err->msg);
		goto out;
	}

	r = session_open(&ss, &slot_fd);
	while (r == 0)
		r = session_step(&ss);
	if (r == 1)
		r = 0;

	ss.cnt.bytes_in = ss.c->bytes_in;
	ss.cnt.bytes_out = ss.c->bytes_out;
	if (ss.cnt.sessions > 0)
		slog(&ss, LOG_INFO, "session from '%s' ended: %" PRIu64 " requests, %" PRIu64 " bytes out",
		     ss.client, ss.requests, ss.c->bytes_out);
	{
		int cr = counters_commit(&ss);
		if (cr < 0)
			slog(&ss, LOG_WARNING, "cannot update '%s/" SERVE_STATS_PATH "': %s",
			     ss.s->path, strerror(-cr));
	}
	if (slot_fd >= 0)
		close(slot_fd);
out:
	ug_store_free(ss.s);
	free(ss.chunk);
	ug_buf_release(&ss.frame);
	ug_conn_close(ss.c);
	return r;
}

/* relay.c - pass the reports held here up the chain (see relay.h). */
#include "config.h"

#include <fcntl.h>
#include <inttypes.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "proto.h"
#include "relay.h"
#include "report.h"
#include "wlog.h"

#define RELAY_OFFSET_MAX 4096u
#define BATCH_HEAD "{\"relay\":["
#define BATCH_TAIL "]}"
#define BATCH_HEAD_LEN (sizeof(BATCH_HEAD) - 1)
#define BATCH_TAIL_LEN (sizeof(BATCH_TAIL) - 1)

/* One report in the batch being built: where its text sits in the batch
 * and the file offset just past its line. */
struct item {
	size_t at, len;
	uint64_t end;
};

struct relay {
	int dirfd;
	const char *path;
	ug_relay_send_fn send;
	void *ctx;
	size_t max;
	struct ug_relay_result res;
	struct ug_buf batch;
	struct item items[UG_REPORT_BATCH_MAX];
	size_t n;
	const char *file;        /* the file being relayed, for messages */
	uint64_t ino;
	uint64_t saved;          /* offset in relay.offset */
	uint64_t pending;        /* offset past the last line examined */
	struct ug_error *err;
};

/* ---------------------------------------------------------------- offset file */

struct state {
	bool have;
	uint64_t ino, off;
};

static int state_load(int dirfd, struct state *ret)
{
	char *text;
	size_t len;
	json_t *doc, *ino, *off;
	int r = ug_file_read(dirfd, UG_RELAY_OFFSET_FILE, RELAY_OFFSET_MAX, &text, &len);

	memset(ret, 0, sizeof(*ret));
	if (r == -ENOENT)
		return 0;
	if (r < 0)
		return r;
	doc = json_loadb(text, len, 0, NULL);
	free(text);
	ino = json_object_get(doc, "inode");
	off = json_object_get(doc, "offset");
	if (!json_is_integer(ino) || !json_is_integer(off) || json_integer_value(ino) < 0 ||
	    json_integer_value(off) < 0) {
		json_decref(doc);
		return -EBADMSG;
	}
	ret->have = true;
	ret->ino = (uint64_t)json_integer_value(ino);
	ret->off = (uint64_t)json_integer_value(off);
	json_decref(doc);
	return 0;
}

static int state_save(struct relay *rl, uint64_t off)
{
	char text[96];
	int n = snprintf(text, sizeof(text), "{\"inode\":%" PRIu64 ",\"offset\":%" PRIu64 "}\n",
			 rl->ino, off);
	int r = ug_file_write_atomic(rl->dirfd, UG_RELAY_OFFSET_FILE, text, (size_t)n, 0644);

	if (r < 0)
		return ug_error_set(rl->err, r, "cannot write '%s/" UG_RELAY_OFFSET_FILE "': %s",
				    rl->path, strerror(-r));
	rl->saved = off;
	return 0;
}

/* ---------------------------------------------------------------- batches */

static int batch_start(struct relay *rl)
{
	ug_buf_reset(&rl->batch);
	rl->n = 0;
	return ug_buf_put(&rl->batch, BATCH_HEAD, BATCH_HEAD_LEN);
}

/* The batch's reports one at a time, after the upstream refused them
 * together: the bad one is skipped, the others go through. */
static int send_singly(struct relay *rl)
{
	struct ug_buf one;
	int r = 0;

	ug_buf_init(&one, UG_PROTO_TEXT_MAX);
	for (size_t i = 0; i < rl->n && r == 0; i++) {
		const struct item *it = &rl->items[i];
		struct ug_error e = { "" };

		ug_buf_reset(&one);
		r = ug_buf_put(&one, BATCH_HEAD, BATCH_HEAD_LEN);
		if (r == 0)
			r = ug_buf_put(&one, rl->batch.data + it->at, it->len);
		if (r == 0)
			r = ug_buf_put(&one, BATCH_TAIL, BATCH_TAIL_LEN);
		if (r < 0) {
			r = ug_error_set(rl->err, r, "out of memory");
			break;
		}
		r = rl->send(rl->ctx, (const char *)one.data, one.len, &e);
		if (r == -EINVAL) {
			ug_wlog(UG_WLOG_WARN, "the upstream refused the report ending at byte %" PRIu64
				" of '%s/%s': %s; skipped", it->end, rl->path, rl->file, e.msg);
			rl->res.skipped++;
			r = 0;
		} else if (r < 0) {
			r = ug_error_set(rl->err, r, "%s", e.msg);
			break;
		} else {
			rl->res.reports++;
			rl->res.batches++;
		}
		r = state_save(rl, it->end);
	}
	ug_buf_release(&one);
	return r;
}

/* Send the batch (if any) and move the offset past what it covered. */
static int flush(struct relay *rl)
{
	struct ug_error e = { "" };
	int r;

	if (rl->n == 0)
		return rl->pending != rl->saved ? state_save(rl, rl->pending) : 0;
	r = ug_buf_put(&rl->batch, BATCH_TAIL, BATCH_TAIL_LEN);
	if (r < 0)
		return ug_error_set(rl->err, r, "out of memory");
	r = rl->send(rl->ctx, (const char *)rl->batch.data, rl->batch.len, &e);
	if (r == 0) {
		rl->res.reports += rl->n;
		rl->res.batches++;
	} else if (r == -EINVAL) {
		r = send_singly(rl);
	} else {
		return ug_error_set(rl->err, r, "%s", e.msg);
	}
	/* the skipped lines after the batch's last report are done too */
	if (r == 0 && rl->pending != rl->saved)
		r = state_save(rl, rl->pending);
	if (r == 0)
		r = batch_start(rl);
	return r;
}

/* Is this line a report an upstream would take? */
static bool line_ok(const char *line, size_t len, struct ug_error *e)
{
	json_error_t jerr;
	json_t *doc = json_loadb(line, len, JSON_REJECT_DUPLICATES, &jerr);
	int r;

	if (!doc) {
		ug_error_set(e, -EINVAL, "not JSON: %s", jerr.text);
		return false;
	}
	r = ug_report_parse(doc, NULL, e);
	json_decref(doc);
	return r == 0;
}

static bool stopping(volatile sig_atomic_t *stop)
{
	return stop && *stop;
}

/* Relay fd (the file `file`, inode ino) from byte `from` on. */
static int relay_file(struct relay *rl, int fd, const char *file, uint64_t ino, uint64_t from,
		      volatile sig_atomic_t *stop)
{
	struct ug_report_reader rd = { .fd = -1 };
	int r;

	rl->file = file;
	rl->ino = ino;
	rl->saved = rl->pending = from;
	r = batch_start(rl);
	if (r == 0)
		r = ug_report_reader_init(&rd, fd, from, false);
	if (r < 0) {
		ug_report_reader_release(&rd);
		return ug_error_set(rl->err, r, "cannot read '%s/%s': %s", rl->path, file, strerror(-r));
	}
	for (;;) {
		struct ug_error e = { "" };
		char *line;
		size_t len;
		uint64_t end;

		r = ug_report_reader_next(&rd, &line, &len, &end);
		if (r < 0) {
			r = ug_error_set(rl->err, r, "cannot read '%s/%s': %s", rl->path, file,
					 strerror(-r));
			break;
		}
		if (r == 0) {
			r = flush(rl);
			break;
		}
		if (r == UG_REPORT_LINE_LONG || !line_ok(line, len, &e)) {
			ug_wlog(UG_WLOG_WARN, "'%s/%s': the line ending at byte %" PRIu64 " is not a "
				"report (%s): not relayed", rl->path, file, end,
				r == UG_REPORT_LINE_LONG ? "longer than the longest report" : e.msg);
			rl->res.skipped++;
			rl->pending = end;
			continue;
		}
		if (rl->n > 0 && (rl->n == UG_REPORT_BATCH_MAX ||
				  rl->batch.len + 1 + len + BATCH_TAIL_LEN > rl->max)) {
			r = flush(rl);
			if (r == 0 && stopping(stop))
				r = ug_error_set(rl->err, -EINTR, "stopped");
			if (r < 0)
				break;
		}
		if (BATCH_HEAD_LEN + len + BATCH_TAIL_LEN > rl->max) {
			/* only with a batch_max below one report's size */
			ug_wlog(UG_WLOG_WARN, "'%s/%s': the report ending at byte %" PRIu64 " is too "
				"large for a batch: not relayed", rl->path, file, end);
			rl->res.skipped++;
			rl->pending = end;
			continue;
		}
		r = 0;
		if (rl->n > 0)
			r = ug_buf_put_u8(&rl->batch, ',');
		rl->items[rl->n] = (struct item){ .at = rl->batch.len, .len = len, .end = end };
		if (r == 0)
			r = ug_buf_put(&rl->batch, line, len);
		if (r < 0) {
			r = ug_error_set(rl->err, r, "out of memory");
			break;
		}
		rl->n++;
		rl->pending = end;
	}
	ug_report_reader_release(&rd);
	return r;
}

/* Open a reports file: 0 and *ret_fd (-1 when there is none), or -errno. */
static int open_reports(struct relay *rl, const char *file, int *ret_fd, struct stat *st)
{
	int fd = ug_open_beneath(rl->dirfd, file, O_RDONLY | O_NONBLOCK, 0);

	*ret_fd = -1;
	if (fd == -ENOENT)
		return 0;
	if (fd < 0)
		return ug_error_set(rl->err, fd, "cannot open '%s/%s': %s", rl->path, file,
				    strerror(-fd));
	if (fstat(fd, st) < 0 || !S_ISREG(st->st_mode)) {
		close(fd);
		return ug_error_set(rl->err, -EINVAL, "'%s/%s' is not a regular file", rl->path, file);
	}
	*ret_fd = fd;
	return 0;
}

int ug_relay_run(int dirfd, const char *path, ug_relay_send_fn send, void *ctx,
		 size_t batch_max, volatile sig_atomic_t *stop, struct ug_relay_result *ret,
		 struct ug_error *err)
{
	struct ug_error local = { "" };
	struct relay *rl;
	struct state st;
	struct stat cur_st, old_st;
	int cur = -1, old = -1, r;
	/* what to relay, in order: the rotated file from an offset, then the
	 * current one */
	uint64_t old_from = 0, cur_from = 0;
	bool do_old = false, do_cur = false;

	rl = calloc(1, sizeof(*rl));
	if (!rl)
		return ug_error_set(err, -ENOMEM, "out of memory");
	rl->dirfd = dirfd;
	rl->path = path;
	rl->send = send;
	rl->ctx = ctx;
	rl->max = batch_max && batch_max < UG_PROTO_TEXT_MAX ? batch_max : UG_PROTO_TEXT_MAX;
	rl->err = err ? err : &local;
	ug_buf_init(&rl->batch, rl->max);

	r = state_load(dirfd, &st);
	if (r == -EBADMSG) {
		ug_wlog(UG_WLOG_WARN, "'%s/" UG_RELAY_OFFSET_FILE "' is not an offset file: relaying "
			"every report held again", path);
		r = 0;
	} else if (r < 0) {
		r = ug_error_set(rl->err, r, "cannot read '%s/" UG_RELAY_OFFSET_FILE "': %s", path,
				 strerror(-r));
		goto out;
	}
	r = open_reports(rl, UG_REPORTS_FILE, &cur, &cur_st);
	if (r == 0)
		r = open_reports(rl, UG_REPORTS_OLD, &old, &old_st);
	if (r < 0)
		goto out;
	if (st.have && cur >= 0 && (uint64_t)cur_st.st_ino == st.ino) {
		do_cur = true;
		cur_from = st.off;
		if (st.off > (uint64_t)cur_st.st_size) {
			ug_wlog(UG_WLOG_WARN, "'%s/" UG_REPORTS_FILE "' is shorter than where the relay "
				"got to: relaying it from its start", path);
			cur_from = 0;
		}
	} else if (st.have && old >= 0 && (uint64_t)old_st.st_ino == st.ino) {
		/* rotated since the last relay: the rest of it, then the new one */
		do_old = true;
		old_from = st.off;
		do_cur = cur >= 0;
	} else {
		do_old = old >= 0;
		do_cur = cur >= 0;
		if (st.have && (do_old || do_cur)) {
			ug_wlog(UG_WLOG_WARN, "the reports file the relay got to in '%s' is gone "
				"(rotated twice since the last relay?): relaying every report held", path);
			rl->res.restarted = 1;
			/* say so once: from now on the offset names a file held */
			rl->ino = (uint64_t)(do_old ? old_st.st_ino : cur_st.st_ino);
			r = state_save(rl, 0);
		}
	}
	if (r == 0 && do_old)
		r = relay_file(rl, old, "reports/reports.jsonl.1", (uint64_t)old_st.st_ino, old_from,
			       stop);
	if (r == 0 && do_old && do_cur && stopping(stop))
		r = ug_error_set(rl->err, -EINTR, "stopped");
	if (r == 0 && do_cur)
		r = relay_file(rl, cur, "reports/reports.jsonl", (uint64_t)cur_st.st_ino, cur_from,
			       stop);
out:
	if (cur >= 0)
		close(cur);
	if (old >= 0)
		close(old);
	if (ret)
		*ret = rl->res;
	ug_buf_release(&rl->batch);
	free(rl);
	return r;
}

static int client_send(void *ctx, const char *text, size_t len, struct ug_error *err)
{
	return ug_client_report(ctx, text, len, err);
}

void ug_relay_to(struct ug_store *s, struct ug_client *c, volatile sig_atomic_t *stop)
{
	struct ug_relay_result res;
	struct ug_error e = { "" };
	int r = ug_relay_run(s->dirfd, s->path, client_send, c, 0, stop, &res, &e);

	if (res.reports)
		ug_wlog(UG_WLOG_INFO, "relayed %" PRIu64 " reports to %s in %" PRIu64 " batches",
			res.reports, c->peer, res.batches);
	if (r < 0 && r != -EINTR)
		ug_wlog(UG_WLOG_WARN, "cannot relay reports to %s: %s%s; trying again next round",
			c->peer, e.msg, r == -EACCES ? " (this server's key there must not be "
			"--read-only)" : "");
}

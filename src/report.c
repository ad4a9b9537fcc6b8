/* report.c - terminal status reports: checks, the stored form, and a
 * bounded line reader for the reports file (see report.h). */
#include "config.h"

#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "proto.h"
#include "rendezvous.h"
#include "report.h"

/* Bytes read from the file at once, on top of one line's room. */
#define READER_CHUNK (64u << 10)

static const char *const result_names[] = {
	[UG_REPORT_OK] = "ok",
	[UG_REPORT_FAILED] = "failed",
	[UG_REPORT_ROLLED_BACK] = "rolled-back",
	[UG_REPORT_CURRENT] = "current",
};

const char *ug_report_result_name(int result)
{
	if (result >= UG_REPORT_OK && result <= UG_REPORT_CURRENT)
		return result_names[result];
	return "unknown";
}

/* A JSON string without NUL bytes (jansson allows "\u0000"). */
static const char *plain_string(json_t *v)
{
	const char *s = json_string_value(v);

	if (!s || strlen(s) != json_string_length(v))
		return NULL;
	return s;
}

/* A server name: what WELCOME may carry and a log line can hold. */
static bool name_ok(const char *s)
{
	size_t n = strlen(s);

	if (n == 0 || n > UG_PROTO_NAME_MAX)
		return false;
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)s[i];
		if (c < 0x20 || c == 0x7f)
			return false;
		/* C1 controls (U+0080..U+009F) steer terminals too */
		if (c == 0xc2 && i + 1 < n && (unsigned char)s[i + 1] >= 0x80 &&
		    (unsigned char)s[i + 1] <= 0x9f)
			return false;
	}
	return true;
}

/* An integer field: 1 present, 0 absent, -EINVAL wrong. */
static int get_int(json_t *doc, const char *key, json_int_t max, json_int_t *ret,
		   struct ug_error *err)
{
	json_t *v = json_object_get(doc, key);

	if (!v)
		return 0;
	if (!json_is_integer(v) || json_integer_value(v) < 0 || json_integer_value(v) > max)
		return ug_error_set(err, -EINVAL, "report: '%s' must be an integer from 0 to %lld",
				    key, (long long)max);
	*ret = json_integer_value(v);
	return 1;
}

static int get_u64(json_t *doc, const char *key, uint64_t *ret, bool *present, struct ug_error *err)
{
	json_int_t v = 0;
	int r = get_int(doc, key, INT64_MAX, &v, err);

	if (r < 0)
		return r;
	*ret = (uint64_t)v;
	if (present)
		*present = r == 1;
	return 0;
}

static int get_time(json_t *doc, const char *key, int64_t *ret, struct ug_error *err)
{
	json_int_t v = 0;
	int r = get_int(doc, key, UG_REPORT_TIME_MAX, &v, err);

	if (r < 0)
		return r;
	*ret = r == 1 ? (int64_t)v : -1;
	return 0;
}

/* A string field: 0 and *ret (NULL when absent), or -EINVAL. */
static int get_str(json_t *doc, const char *key, const char **ret, struct ug_error *err)
{
	json_t *v = json_object_get(doc, key);

	*ret = NULL;
	if (!v)
		return 0;
	*ret = plain_string(v);
	if (!*ret)
		return ug_error_set(err, -EINVAL, "report: '%s' must be a string without NUL bytes", key);
	return 0;
}

int ug_report_parse(json_t *doc, struct ug_report *ret, struct ug_error *err)
{
	struct ug_report rep = { .time = -1, .received = -1 };
	struct ug_error e = { "" };
	const char *result;
	json_t *via;
	bool present;
	int r;

	if (!json_is_object(doc))
		return ug_error_set(err, -EINVAL, "report is not a JSON object");
	if (json_object_get(doc, "relay"))
		return ug_error_set(err, -EINVAL, "report: a report cannot hold 'relay' (only a batch does)");

	if ((r = get_str(doc, "terminal", &rep.terminal, err)) < 0)
		return r;
	if (!rep.terminal)
		return ug_error_set(err, -EINVAL, "report: no 'terminal'");
	if (ug_rendezvous_id_check(rep.terminal, &e) < 0)
		return ug_error_set(err, -EINVAL, "report: 'terminal': %s", e.msg);

	if ((r = get_str(doc, "result", &result, err)) < 0)
		return r;
	if (!result)
		return ug_error_set(err, -EINVAL, "report: no 'result'");
	for (int i = UG_REPORT_OK; i <= UG_REPORT_CURRENT; i++)
		if (strcmp(result, result_names[i]) == 0)
			rep.result = (enum ug_report_result)i;
	if (!rep.result)
		return ug_error_set(err, -EINVAL, "report: 'result' must be one of ok, failed, "
				    "rolled-back, current");

	if ((r = get_u64(doc, "installed", &rep.installed, &present, err)) < 0)
		return r;
	if (!present)
		return ug_error_set(err, -EINVAL, "report: no 'installed'");
	if ((r = get_u64(doc, "target", &rep.target, &rep.has_target, err)) < 0 ||
	    (r = get_u64(doc, "bytes", &rep.bytes, NULL, err)) < 0 ||
	    (r = get_u64(doc, "full_bytes", &rep.full_bytes, NULL, err)) < 0 ||
	    (r = get_u64(doc, "duration_ms", &rep.duration_ms, NULL, err)) < 0 ||
	    (r = get_time(doc, "time", &rep.time, err)) < 0 ||
	    (r = get_time(doc, "received", &rep.received, err)) < 0)
		return r;

	if ((r = get_str(doc, "channel", &rep.channel, err)) < 0)
		return r;
	if (rep.channel && ug_channel_check(rep.channel, NULL) < 0)
		return ug_error_set(err, -EINVAL, "report: 'channel' is not a valid channel name "
				    "(1 to %u of A-Z a-z 0-9 . _ -)", UG_CHANNEL_MAX);
	if ((r = get_str(doc, "server", &rep.server, err)) < 0)
		return r;
	/* "": the terminal reached no server for the attempt (and reports
	 * through one that answered later) */
	if (rep.server && !rep.server[0])
		rep.server = NULL;
	else if (rep.server && !name_ok(rep.server))
		return ug_error_set(err, -EINVAL, "report: 'server' must be at most %u bytes without "
				    "control characters", UG_PROTO_NAME_MAX);
	if ((r = get_str(doc, "message", &rep.message, err)) < 0)
		return r;
	if (rep.message && strlen(rep.message) > UG_REPORT_MESSAGE_MAX)
		return ug_error_set(err, -EINVAL, "report: 'message' is longer than %u bytes",
				    UG_REPORT_MESSAGE_MAX);

	via = json_object_get(doc, "via");
	if (via) {
		size_t i;
		json_t *v;

		if (!json_is_array(via) || json_array_size(via) == 0 ||
		    json_array_size(via) > UG_REPORT_VIA_MAX)
			return ug_error_set(err, -EINVAL, "report: 'via' must be an array of 1 to %u "
					    "server names", UG_REPORT_VIA_MAX);
		json_array_foreach(via, i, v) {
			const char *s = plain_string(v);
			if (!s || !name_ok(s))
				return ug_error_set(err, -EINVAL, "report: 'via' entry %zu is not a server "
						    "name (1 to %u bytes without control characters)",
						    i + 1, UG_PROTO_NAME_MAX);
		}
		rep.nvia = json_array_size(via);
	}
	if (ret)
		*ret = rep;
	return 0;
}

int ug_report_stamp(json_t *doc, const char *server, int64_t now, bool relayed,
		    char **ret_line, size_t *ret_len, struct ug_error *err)
{
	size_t max = relayed ? UG_REPORT_LINE_MAX : UG_REPORT_DIRECT_MAX;
	json_t *via, *s;
	char *line;
	size_t len;
	int r;

	if (!json_is_object(doc))
		return ug_error_set(err, -EINVAL, "report is not a JSON object");
	if (!relayed) {
		json_object_del(doc, "received");
		json_object_del(doc, "via");
	}
	/* check what the client sent before adding to it, so that a bad
	 * "via" is reported as such and not as one entry too many */
	r = ug_report_parse(doc, NULL, err);
	if (r < 0)
		return r;
	if (!json_object_get(doc, "received") &&
	    json_object_set_new(doc, "received", json_integer((json_int_t)now)) < 0)
		return ug_error_set(err, -ENOMEM, "out of memory");
	via = json_object_get(doc, "via");
	if (!via) {
		via = json_array();
		if (!via || json_object_set_new(doc, "via", via) < 0)
			return ug_error_set(err, -ENOMEM, "out of memory");
	}
	if (json_array_size(via) >= UG_REPORT_VIA_MAX)
		return ug_error_set(err, -EINVAL, "report: 'via' already names %u servers, the most a "
				    "report may pass", UG_REPORT_VIA_MAX);
	s = json_string(server);
	if (!s || json_array_append_new(via, s) < 0)
		return ug_error_set(err, -ENOMEM, "out of memory");
	r = ug_report_parse(doc, NULL, err);
	if (r < 0)
		return r;
	line = json_dumps(doc, JSON_COMPACT | JSON_PRESERVE_ORDER);
	if (!line)
		return ug_error_set(err, -ENOMEM, "out of memory");
	len = strlen(line);
	if (len > max) {
		free(line);
		return ug_error_set(err, -E2BIG, "report is %zu bytes as stored, more than the %zu "
				    "a %s report may have", len, max, relayed ? "relayed" : "terminal's");
	}
	*ret_line = line;
	*ret_len = len;
	return 0;
}

/* ---------------------------------------------------------------- reader */

int ug_report_reader_init(struct ug_report_reader *r, int fd, uint64_t offset, bool take_partial)
{
	memset(r, 0, sizeof(*r));
	r->fd = fd;
	r->take_partial = take_partial;
	if (lseek(fd, (off_t)offset, SEEK_SET) < 0)
		return -errno;
	r->pos = offset;
	/* one whole line, its newline, a chunk to read into, a NUL */
	r->buf = malloc(UG_REPORT_LINE_MAX + 1 + READER_CHUNK + 1);
	return r->buf ? 0 : -ENOMEM;
}

void ug_report_reader_release(struct ug_report_reader *r)
{
	free(r->buf);
	r->buf = NULL;
}

/* Read more into buf after what it holds. Returns bytes read (0 at EOF). */
static ssize_t reader_fill(struct ug_report_reader *r)
{
	size_t room = UG_REPORT_LINE_MAX + 1 + READER_CHUNK - r->len;
	ssize_t n;

	do
		n = read(r->fd, r->buf + r->len, room);
	while (n < 0 && errno == EINTR);
	if (n < 0)
		return -errno;
	if (n == 0)
		r->eof = true;
	r->len += (size_t)n;
	return n;
}

int ug_report_reader_next(struct ug_report_reader *r, char **ret_line, size_t *ret_len,
			  uint64_t *ret_end)
{
	bool skipping = false;

	for (;;) {
		char *start = r->buf + r->off;
		char *nl = memchr(start, '\n', r->len - r->off);
		ssize_t n;

		if (nl) {
			size_t len = (size_t)(nl - start);
			r->off += len + 1;
			*ret_end = r->pos + r->off;
			if (skipping || len > UG_REPORT_LINE_MAX)
				return UG_REPORT_LINE_LONG;
			*nl = '\0';
			*ret_line = start;
			*ret_len = len;
			return 1;
		}
		if (!skipping && r->len - r->off > UG_REPORT_LINE_MAX)
			skipping = true;
		if (skipping) {
			/* drop what is held of the overlong line */
			r->pos += r->len;
			r->len = r->off = 0;
		} else if (r->off > 0) {
			memmove(r->buf, r->buf + r->off, r->len - r->off);
			r->pos += r->off;
			r->len -= r->off;
			r->off = 0;
		}
		if (r->eof) {
			n = 0;
		} else {
			n = reader_fill(r);
			if (n < 0)
				return (int)n;
		}
		if (n > 0)
			continue;
		/* end of file */
		if (skipping) {
			/* an overlong last line without newline: where it started is
			 * lost, so it is consumed; the caller counts it */
			*ret_end = r->pos;
			return UG_REPORT_LINE_LONG;
		}
		if (r->len > r->off && r->take_partial) {
			size_t len = r->len - r->off;
			start = r->buf + r->off;
			start[len] = '\0';
			r->off = r->len;
			*ret_end = r->pos + r->len;
			*ret_line = start;
			*ret_len = len;
			return 1;
		}
		*ret_end = r->pos + r->off;
		return 0;
	}
}

/* proto.c - the wire protocol codec: struct ug_msg <-> frames, and moving
 * whole frames over a struct ug_conn.
 *
 * One function, msg_check, holds every range rule. The encoder runs it
 * before writing a byte (-EINVAL) and the decoder after parsing (-EPROTO),
 * so the two sides cannot drift apart: whatever we send, a peer running
 * this code accepts. */
#include "config.h"

/* system headers before banned.h (via util.h), which they would trip */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "conn.h"
#include "delta.h"
#include "proto.h"

const char *ug_msg_type_name(unsigned type)
{
	switch (type) {
	case UG_MSG_HELLO: return "HELLO";
	case UG_MSG_WELCOME: return "WELCOME";
	case UG_MSG_BUSY: return "BUSY";
	case UG_MSG_ERROR: return "ERROR";
	case UG_MSG_OK: return "OK";
	case UG_MSG_BYE: return "BYE";
	case UG_MSG_GET_REF: return "GET_REF";
	case UG_MSG_REF: return "REF";
	case UG_MSG_WAIT: return "WAIT";
	case UG_MSG_LIST: return "LIST";
	case UG_MSG_VERSIONS: return "VERSIONS";
	case UG_MSG_GET: return "GET";
	case UG_MSG_BLOB: return "BLOB";
	case UG_MSG_DATA: return "DATA";
	case UG_MSG_SIGDELTA: return "SIGDELTA";
	case UG_MSG_REPORT: return "REPORT";
	case UG_MSG_STATS: return "STATS";
	case UG_MSG_STATS_REPLY: return "STATS_REPLY";
	}
	return "unknown";
}

const char *ug_proto_err_name(unsigned code)
{
	switch (code) {
	case UG_PERR_NOTFOUND: return "notfound";
	case UG_PERR_BADREQ: return "badreq";
	case UG_PERR_PROTO: return "proto";
	case UG_PERR_DENIED: return "denied";
	case UG_PERR_INTERNAL: return "internal";
	case UG_PERR_CORRUPT: return "corrupt";
	case UG_PERR_TOOBIG: return "toobig";
	case UG_PERR_VERSION: return "version";
	}
	return "unknown";
}

uint64_t ug_msg_version_at(const struct ug_msg *m, uint32_t i)
{
	const uint8_t *p = (const uint8_t *)m->versions_be + (size_t)i * 8;
	uint8_t x[8];
	uint64_t v = 0;

	/* versions_be points into a frame at an odd offset: never load it
	 * as a uint64_t */
	memcpy(x, p, sizeof(x));
	for (int k = 0; k < 8; k++)
		v = v << 8 | x[k];
	return v;
}

/* ---------------------------------------------------------------- rules */

/* Names end up in logs and status lines: valid UTF-8 without C0/C1
 * controls, so a peer cannot smuggle terminal escapes into them. */
static bool name_printable(const char *s, size_t n)
{
	if (!ug_utf8_valid(s, n))
		return false;
	for (size_t i = 0; i < n; i++) {
		unsigned char ch = (unsigned char)s[i];

		if (ch < 0x20 || ch == 0x7f)
			return false;
		/* U+0080..U+009F are encoded as C2 80..C2 9F */
		if (ch == 0xc2 && i + 1 < n && (unsigned char)s[i + 1] <= 0x9f)
			return false;
	}
	return true;
}

static int check_name(const struct ug_msg *m, const char *t, int rc, struct ug_error *err)
{
	size_t n = strnlen(m->name, sizeof(m->name));

	if (n > UG_PROTO_NAME_MAX)
		return ug_error_set(err, rc, "%s: name is longer than %u bytes", t, UG_PROTO_NAME_MAX);
	if (!name_printable(m->name, n))
		return ug_error_set(err, rc, "%s: name is not printable UTF-8", t);
	return 0;
}

static int check_channel(const struct ug_msg *m, const char *t, int rc, struct ug_error *err)
{
	struct ug_error cerr;
	size_t n = strnlen(m->channel, sizeof(m->channel));

	if (ug_channel_check(m->channel, &cerr) == 0)
		return 0;
	/* ug_channel_check quotes the name: only let it when that is safe */
	for (size_t i = 0; i < n; i++)
		if (m->channel[i] < 0x20 || m->channel[i] > 0x7e)
			return ug_error_set(err, rc, "%s: channel name holds a byte outside [A-Za-z0-9._-]", t);
	return ug_error_set(err, rc, "%s: %s", t, cerr.msg);
}

static int check_text(const struct ug_msg *m, const char *t, int rc, struct ug_error *err)
{
	if (m->text_len > UG_PROTO_TEXT_MAX)
		return ug_error_set(err, rc, "%s: text of %zu bytes exceeds the %u-byte limit",
				    t, m->text_len, UG_PROTO_TEXT_MAX);
	if (m->text_len && !m->text)
		return ug_error_set(err, rc, "%s: text is missing", t);
	if (!ug_utf8_valid(m->text, m->text_len))
		return ug_error_set(err, rc, "%s: text is not valid UTF-8", t);
	return 0;
}

static int check_versions(const struct ug_msg *m, int rc, struct ug_error *err)
{
	uint64_t prev = 0;

	if (m->nversions > UG_PROTO_VERSIONS_MAX)
		return ug_error_set(err, rc, "VERSIONS: %u versions exceed the limit of %u",
				    m->nversions, UG_PROTO_VERSIONS_MAX);
	if (m->nversions && !m->versions_be)
		return ug_error_set(err, rc, "VERSIONS: versions are missing");
	for (uint32_t i = 0; i < m->nversions; i++) {
		uint64_t v = ug_msg_version_at(m, i);

		if (i > 0 && v <= prev)
			return ug_error_set(err, rc,
					    "VERSIONS: version[%u] %llu does not follow %llu (not ascending)",
					    i, (unsigned long long)v, (unsigned long long)prev);
		prev = v;
	}
	return 0;
}

static int check_get(const struct ug_msg *m, int rc, struct ug_error *err)
{
	int r;

	if (m->kind < 1 || m->kind > UG_BLOB_KIND_MAX)
		return ug_error_set(err, rc, "GET: blob kind %u is unknown", m->kind);
	/* objects and deltas are named by id alone; a channel, if given,
	 * must still be one */
	if ((m->kind != UG_BLOB_OBJECT && m->kind != UG_BLOB_DELTA) || m->channel[0]) {
		r = check_channel(m, "GET", rc, err);
		if (r < 0)
			return r;
	}
	if ((m->kind == UG_BLOB_MANIFEST || m->kind == UG_BLOB_SIG) && m->ver == 0)
		return ug_error_set(err, rc, "GET: version 0 names no manifest");
	if ((m->kind == UG_BLOB_ROLLOUT || m->kind == UG_BLOB_ROLLOUT_SIG) && m->ver == 0)
		return ug_error_set(err, rc, "GET: version 0 names no rollout document");
	/* from 0: the manifest compressed on its own (no prefix) */
	if (m->kind == UG_BLOB_MDELTA && m->from >= m->ver)
		return ug_error_set(err, rc, "GET: manifest delta from %llu to %llu is not forward",
				    (unsigned long long)m->from, (unsigned long long)m->ver);
	if (m->offset > UG_FILE_SIZE_MAX)
		return ug_error_set(err, rc, "GET: offset %llu is past the largest file size",
				    (unsigned long long)m->offset);
	return 0;
}

/* Every range rule of every message, for both directions (rc: -EINVAL
 * when encoding, -EPROTO when decoding). Wire-level rules (magic, string
 * lengths before copying, NUL bytes) live in the decoder. */
static int msg_check(const struct ug_msg *m, int rc, struct ug_error *err)
{
	const char *t = ug_msg_type_name(m->type);
	int r;

	switch (m->type) {
	case UG_MSG_HELLO:
		if (m->min_version < 1 || m->min_version > m->max_version)
			return ug_error_set(err, rc, "HELLO: version range %u..%u is empty",
					    m->min_version, m->max_version);
		return check_name(m, t, rc, err);
	case UG_MSG_WELCOME:
		if (m->version < 1)
			return ug_error_set(err, rc, "WELCOME: version 0 does not exist");
		if (m->flags & ~UG_WELCOME_READ_ONLY)
			return ug_error_set(err, rc, "WELCOME: unknown flags 0x%x",
					    m->flags & ~UG_WELCOME_READ_ONLY);
		return check_name(m, t, rc, err);
	case UG_MSG_BUSY:
		if (m->retry_after < 1 || m->retry_after > UG_PROTO_RETRY_MAX)
			return ug_error_set(err, rc, "BUSY: retry-after %u is not 1..%u seconds",
					    m->retry_after, UG_PROTO_RETRY_MAX);
		return check_text(m, t, rc, err);
	case UG_MSG_ERROR:
		if (m->code < 1 || m->code > UG_PERR_MAX)
			return ug_error_set(err, rc, "ERROR: code %u is unknown", m->code);
		return check_text(m, t, rc, err);
	case UG_MSG_OK:
	case UG_MSG_BYE:
	case UG_MSG_STATS:
		return 0;
	case UG_MSG_GET_REF:
	case UG_MSG_REF:
	case UG_MSG_LIST:
		return check_channel(m, t, rc, err);
	case UG_MSG_WAIT:
		r = check_channel(m, t, rc, err);
		if (r < 0)
			return r;
		if (m->timeout > UG_PROTO_WAIT_MAX)
			return ug_error_set(err, rc, "WAIT: timeout %u exceeds %u seconds",
					    m->timeout, UG_PROTO_WAIT_MAX);
		return 0;
	case UG_MSG_VERSIONS:
		return check_versions(m, rc, err);
	case UG_MSG_GET:
		return check_get(m, rc, err);
	case UG_MSG_BLOB:
		if (m->total > UG_FILE_SIZE_MAX)
			return ug_error_set(err, rc, "BLOB: total %llu is past the largest file size",
					    (unsigned long long)m->total);
		if (m->offset > m->total)
			return ug_error_set(err, rc, "BLOB: offset %llu is past the total %llu",
					    (unsigned long long)m->offset, (unsigned long long)m->total);
		return 0;
	case UG_MSG_DATA:
		if (m->data_len < 1 || m->data_len > UG_PROTO_CHUNK)
			return ug_error_set(err, rc, "DATA: %zu bytes is not 1..%u", m->data_len,
					    UG_PROTO_CHUNK);
		if (!m->data)
			return ug_error_set(err, rc, "DATA: data is missing");
		return 0;
	case UG_MSG_SIGDELTA:
		if (m->form != UG_SIG_CONTENT && m->form != UG_SIG_STORED)
			return ug_error_set(err, rc, "SIGDELTA: form %u is unknown", m->form);
		if (m->sig_len < 1 || m->sig_len > UG_RSYNC_SIG_MAX)
			return ug_error_set(err, rc, "SIGDELTA: signature of %llu bytes is not 1..%llu",
					    (unsigned long long)m->sig_len, UG_RSYNC_SIG_MAX);
		if (m->offset > UG_FILE_SIZE_MAX)
			return ug_error_set(err, rc, "SIGDELTA: offset %llu is past the largest file size",
					    (unsigned long long)m->offset);
		return 0;
	case UG_MSG_REPORT:
	case UG_MSG_STATS_REPLY:
		return check_text(m, t, rc, err);
	}
	return ug_error_set(err, rc, "frame type 0x%02x is unknown", (unsigned)m->type);
}

/* ---------------------------------------------------------------- encode */

/* Puts with a sticky error, so the encoder reads as the field list. */
struct writer {
	struct ug_buf *b;
	int rc;
};

static void w_u8(struct writer *w, uint8_t v)
{
	if (w->rc == 0)
		w->rc = ug_buf_put_u8(w->b, v);
}

static void w_u32(struct writer *w, uint32_t v)
{
	if (w->rc == 0)
		w->rc = ug_buf_put_u32(w->b, v);
}

static void w_u64(struct writer *w, uint64_t v)
{
	if (w->rc == 0)
		w->rc = ug_buf_put_u64(w->b, v);
}

static void w_bytes(struct writer *w, const void *p, size_t n)
{
	if (w->rc == 0)
		w->rc = ug_buf_put(w->b, p, n);
}

static void w_str(struct writer *w, const char *s, size_t n)
{
	/* every caller checked n against a limit far below UINT32_MAX */
	w_u32(w, (uint32_t)n);
	w_bytes(w, s, n);
}

static void w_cstr(struct writer *w, const char *s)
{
	w_str(w, s, strlen(s));
}

int ug_msg_encode(const struct ug_msg *m, struct ug_buf *out)
{
	struct writer w = { .b = out, .rc = 0 };
	size_t start = out->len, body;
	int r;

	r = msg_check(m, -EINVAL, NULL);
	if (r < 0)
		return r;
	w_u32(&w, 0); /* the length, patched below */
	w_u8(&w, (uint8_t)m->type);
	switch (m->type) {
	case UG_MSG_HELLO:
		w_u32(&w, UG_PROTO_MAGIC);
		w_u32(&w, m->min_version);
		w_u32(&w, m->max_version);
		w_cstr(&w, m->name);
		break;
	case UG_MSG_WELCOME:
		w_u32(&w, m->version);
		w_u32(&w, m->flags);
		w_cstr(&w, m->name);
		break;
	case UG_MSG_BUSY:
		w_u32(&w, m->retry_after);
		w_str(&w, m->text, m->text_len);
		break;
	case UG_MSG_ERROR:
		w_u32(&w, m->code);
		w_str(&w, m->text, m->text_len);
		break;
	case UG_MSG_OK:
	case UG_MSG_BYE:
	case UG_MSG_STATS:
		break;
	case UG_MSG_GET_REF:
	case UG_MSG_LIST:
		w_cstr(&w, m->channel);
		break;
	case UG_MSG_REF:
		w_cstr(&w, m->channel);
		w_u64(&w, m->ver);
		break;
	case UG_MSG_WAIT:
		w_cstr(&w, m->channel);
		w_u64(&w, m->after);
		w_u32(&w, m->timeout);
		break;
	case UG_MSG_VERSIONS:
		w_u32(&w, m->nversions);
		w_bytes(&w, m->versions_be, (size_t)m->nversions * 8);
		break;
	case UG_MSG_GET:
		w_u8(&w, m->kind);
		w_cstr(&w, m->channel);
		w_u64(&w, m->ver);
		w_u64(&w, m->from);
		w_bytes(&w, m->id.b, UG_HASH_LEN);
		w_u64(&w, m->offset);
		break;
	case UG_MSG_BLOB:
		w_u64(&w, m->total);
		w_u64(&w, m->offset);
		break;
	case UG_MSG_DATA:
		w_bytes(&w, m->data, m->data_len);
		break;
	case UG_MSG_SIGDELTA:
		w_bytes(&w, m->id.b, UG_HASH_LEN);
		w_u8(&w, m->form);
		w_u64(&w, m->sig_len);
		w_u64(&w, m->offset);
		break;
	case UG_MSG_REPORT:
	case UG_MSG_STATS_REPLY:
		w_str(&w, m->text, m->text_len);
		break;
	}
	if (w.rc < 0) {
		out->len = start;
		return w.rc;
	}
	body = out->len - start - 4;
	/* the limits above keep every message well inside a frame */
	if (body > UG_PROTO_FRAME_MAX) {
		out->len = start;
		return -E2BIG;
	}
	for (int k = 0; k < 4; k++)
		out->data[start + (size_t)k] = (uint8_t)(body >> (24 - 8 * k));
	return 0;
}

/* ---------------------------------------------------------------- decode */

/* Gets with a sticky error: the first short field names itself, later
 * reads do nothing. */
struct reader {
	struct ug_buf b;
	const char *t;
	struct ug_error *err;
	int rc;
};

static void r_truncated(struct reader *r, const char *field)
{
	r->rc = ug_error_set(r->err, -EPROTO, "%s: %s field truncated", r->t, field);
}

static void r_u8(struct reader *r, const char *field, uint8_t *v)
{
	if (r->rc == 0 && ug_buf_get_u8(&r->b, v) < 0)
		r_truncated(r, field);
}

static void r_u32(struct reader *r, const char *field, uint32_t *v)
{
	if (r->rc == 0 && ug_buf_get_u32(&r->b, v) < 0)
		r_truncated(r, field);
}

static void r_u64(struct reader *r, const char *field, uint64_t *v)
{
	if (r->rc == 0 && ug_buf_get_u64(&r->b, v) < 0)
		r_truncated(r, field);
}

static void r_hash(struct reader *r, const char *field, struct ug_hash *v)
{
	if (r->rc == 0 && ug_buf_get(&r->b, v->b, UG_HASH_LEN) < 0)
		r_truncated(r, field);
}

/* n bytes left in place (the result points into the frame). */
static void r_view(struct reader *r, const char *field, size_t n, const uint8_t **ret)
{
	if (r->rc != 0)
		return;
	*ret = ug_buf_ptr(&r->b);
	if (ug_buf_skip(&r->b, n) < 0)
		r_truncated(r, field);
}

/* A str, its length checked against max before anything else. */
static void r_str(struct reader *r, const char *field, size_t max, const char **ret,
		  size_t *ret_len)
{
	const uint8_t *p = NULL;
	uint32_t n = 0;

	r_u32(r, field, &n);
	if (r->rc == 0 && n > max) {
		r->rc = ug_error_set(r->err, -EPROTO, "%s: %s of %u bytes exceeds the %zu-byte limit",
				     r->t, field, n, max);
		return;
	}
	r_view(r, field, n, &p);
	if (r->rc == 0) {
		*ret = (const char *)p;
		*ret_len = n;
	}
}

/* A str copied NUL-terminated into dst (size: max + 1). */
static void r_cstr(struct reader *r, const char *field, char *dst, size_t size)
{
	const char *s = NULL;
	size_t n = 0;

	r_str(r, field, size - 1, &s, &n);
	if (r->rc != 0)
		return;
	if (memchr(s, '\0', n)) {
		r->rc = ug_error_set(r->err, -EPROTO, "%s: %s contains a NUL byte", r->t, field);
		return;
	}
	memcpy(dst, s, n);
	dst[n] = '\0';
}

int ug_msg_decode(const uint8_t *p, size_t n, struct ug_msg *ret, struct ug_error *err)
{
	struct reader r = { .err = err, .rc = 0 };
	struct ug_msg m;
	const uint8_t *view = NULL;
	uint32_t magic = 0;
	uint8_t type = 0;
	size_t left;
	int rc;

	if (n == 0)
		return ug_error_set(err, -EPROTO, "empty frame");
	if (n > UG_PROTO_FRAME_MAX)
		return ug_error_set(err, -EPROTO, "frame of %zu bytes exceeds the %u-byte limit",
				    n, UG_PROTO_FRAME_MAX);
	/* a read-only view of p: the getters never write through data */
	ug_buf_init(&r.b, n);
	r.b.data = (uint8_t *)(uintptr_t)p;
	r.b.len = r.b.alloc = n;

	memset(&m, 0, sizeof(m));
	(void)ug_buf_get_u8(&r.b, &type);
	m.type = (enum ug_msg_type)type;
	r.t = ug_msg_type_name(type);

	switch (type) {
	case UG_MSG_HELLO:
		r_u32(&r, "magic", &magic);
		if (r.rc == 0 && magic != UG_PROTO_MAGIC)
			return ug_error_set(err, -EPROTO,
					    "HELLO: magic 0x%08x is not 0x%08x (not an upgrid peer)",
					    magic, UG_PROTO_MAGIC);
		r_u32(&r, "min_version", &m.min_version);
		r_u32(&r, "max_version", &m.max_version);
		r_cstr(&r, "name", m.name, sizeof(m.name));
		break;
	case UG_MSG_WELCOME:
		r_u32(&r, "version", &m.version);
		r_u32(&r, "flags", &m.flags);
		r_cstr(&r, "name", m.name, sizeof(m.name));
		break;
	case UG_MSG_BUSY:
		r_u32(&r, "retry_after", &m.retry_after);
		r_str(&r, "text", UG_PROTO_TEXT_MAX, &m.text, &m.text_len);
		break;
	case UG_MSG_ERROR:
		r_u32(&r, "code", &m.code);
		r_str(&r, "text", UG_PROTO_TEXT_MAX, &m.text, &m.text_len);
		break;
	case UG_MSG_OK:
	case UG_MSG_BYE:
	case UG_MSG_STATS:
		break;
	case UG_MSG_GET_REF:
	case UG_MSG_LIST:
		r_cstr(&r, "channel", m.channel, sizeof(m.channel));
		break;
	case UG_MSG_REF:
		r_cstr(&r, "channel", m.channel, sizeof(m.channel));
		r_u64(&r, "version", &m.ver);
		break;
	case UG_MSG_WAIT:
		r_cstr(&r, "channel", m.channel, sizeof(m.channel));
		r_u64(&r, "after", &m.after);
		r_u32(&r, "timeout", &m.timeout);
		break;
	case UG_MSG_VERSIONS:
		r_u32(&r, "count", &m.nversions);
		/* the count is checked before it sizes anything */
		if (r.rc == 0 && m.nversions > UG_PROTO_VERSIONS_MAX)
			return ug_error_set(err, -EPROTO, "VERSIONS: %u versions exceed the limit of %u",
					    m.nversions, UG_PROTO_VERSIONS_MAX);
		r_view(&r, "versions", (size_t)m.nversions * 8, &view);
		m.versions_be = (const uint64_t *)(const void *)view;
		break;
	case UG_MSG_GET:
		r_u8(&r, "kind", &m.kind);
		r_cstr(&r, "channel", m.channel, sizeof(m.channel));
		r_u64(&r, "version", &m.ver);
		r_u64(&r, "from", &m.from);
		r_hash(&r, "id", &m.id);
		r_u64(&r, "offset", &m.offset);
		break;
	case UG_MSG_BLOB:
		r_u64(&r, "total", &m.total);
		r_u64(&r, "offset", &m.offset);
		break;
	case UG_MSG_DATA:
		m.data_len = ug_buf_avail(&r.b);
		r_view(&r, "data", m.data_len, &m.data);
		break;
	case UG_MSG_SIGDELTA:
		r_hash(&r, "id", &m.id);
		r_u8(&r, "form", &m.form);
		r_u64(&r, "sig_len", &m.sig_len);
		r_u64(&r, "offset", &m.offset);
		break;
	case UG_MSG_REPORT:
	case UG_MSG_STATS_REPLY:
		r_str(&r, "text", UG_PROTO_TEXT_MAX, &m.text, &m.text_len);
		break;
	default:
		return ug_error_set(err, -EPROTO, "frame type 0x%02x is unknown", type);
	}
	if (r.rc < 0)
		return r.rc;
	left = ug_buf_avail(&r.b);
	if (left > 0)
		return ug_error_set(err, -EPROTO, "%s: %zu byte%s left over after the last field",
				    r.t, left, left == 1 ? "" : "s");
	rc = msg_check(&m, -EPROTO, err);
	if (rc < 0)
		return rc;
	*ret = m;
	return 0;
}

/* ---------------------------------------------------------------- I/O */

/* Room for the variable part, so a big DATA or text frame is allocated
 * once instead of doubled up from 256 bytes. Only the fields of m->type
 * count (the others may hold anything). */
static size_t size_hint(const struct ug_msg *m)
{
	size_t n = 0;

	switch (m->type) {
	case UG_MSG_DATA:
		n = m->data_len;
		break;
	case UG_MSG_VERSIONS:
		n = (size_t)m->nversions * 8;
		break;
	case UG_MSG_BUSY:
	case UG_MSG_ERROR:
	case UG_MSG_REPORT:
	case UG_MSG_STATS_REPLY:
		n = m->text_len;
		break;
	default:
		break;
	}
	return n > UG_PROTO_FRAME_MAX ? 0 : n + 128;
}

int ug_proto_send(struct ug_conn *c, const struct ug_msg *m)
{
	struct ug_buf b;
	int r;

	ug_buf_init(&b, (size_t)UG_PROTO_FRAME_MAX + 4);
	/* only a hint: a failure here shows up again in the encoder */
	(void)ug_buf_reserve(&b, size_hint(m), NULL);
	r = ug_msg_encode(m, &b);
	if (r == 0)
		r = ug_conn_write(c, b.data, b.len);
	ug_buf_release(&b);
	return r;
}

int ug_proto_send_data(struct ug_conn *c, const void *p, size_t n)
{
	struct ug_msg m;

	memset(&m, 0, sizeof(m));
	m.type = UG_MSG_DATA;
	m.data = p;
	m.data_len = n;
	return ug_proto_send(c, &m);
}

int ug_proto_recv(struct ug_conn *c, struct ug_buf *frame, struct ug_msg *ret,
		  struct ug_error *err)
{
	uint8_t hdr[4], *body;
	uint32_t len;
	ssize_t got;
	int r;

	ug_buf_reset(frame);
	/* a plain read first: end of stream here is a clean close, not a
	 * truncated frame */
	got = ug_conn_read(c, hdr, sizeof(hdr), c->timeout_ms);
	if (got == 0)
		return ug_error_set(err, -EPIPE, "the peer closed the connection");
	if (got < 0)
		return (int)got;
	if ((size_t)got < sizeof(hdr)) {
		r = ug_conn_read_exact(c, hdr + got, sizeof(hdr) - (size_t)got);
		if (r == -EPROTO)
			return ug_error_set(err, -EPROTO,
					    "truncated frame: the stream ended inside the length field");
		if (r < 0)
			return r;
	}
	len = (uint32_t)hdr[0] << 24 | (uint32_t)hdr[1] << 16 | (uint32_t)hdr[2] << 8 | hdr[3];
	/* refuse before allocating or reading the body */
	if (len == 0)
		return ug_error_set(err, -EPROTO, "empty frame");
	if (len > UG_PROTO_FRAME_MAX)
		return ug_error_set(err, -EPROTO, "frame of %u bytes exceeds the %u-byte limit",
				    len, UG_PROTO_FRAME_MAX);
	r = ug_buf_reserve(frame, len, &body);
	if (r < 0)
		return r;
	r = ug_conn_read_exact(c, body, len);
	if (r == -EPROTO)
		return ug_error_set(err, -EPROTO,
				    "truncated frame: the stream ended inside a %u-byte frame", len);
	if (r < 0)
		return r;
	ug_buf_commit(frame, len);
	return ug_msg_decode(frame->data, len, ret, err);
}

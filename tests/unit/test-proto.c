/* test-proto.c - unit tests for src/proto.c: the wire codec (every message
 * type round-trips; every range rule is refused by the encoder with -EINVAL
 * and by the decoder with -EPROTO; truncated, padded, garbled and random
 * frames never crash the decoder) and ug_proto_send/ug_proto_recv over a
 * pipe (oversized lengths refused before the body is read, truncated
 * frames, clean end of stream). */
#include "config.h"

#include <criterion/criterion.h>

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "conn.h"
#include "delta.h"
#include "proto.h"

TestSuite(proto, .timeout = 30);

/* ---------------------------------------------------------------- helpers */

static uint32_t be32(const uint8_t *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static void put_be64(uint8_t *p, uint64_t v)
{
	for (int i = 0; i < 8; i++)
		p[i] = (uint8_t)(v >> (56 - 8 * i));
}

static struct ug_msg mk(enum ug_msg_type type)
{
	struct ug_msg m;

	memset(&m, 0, sizeof(m));
	m.type = type;
	return m;
}

/* The wire layout written out again from docs, independently of the
 * encoder and without any range checks: the reference the encoder is
 * compared with, and the way hostile frames are built. */
static void raw_str(struct ug_buf *b, const char *s, size_t n)
{
	cr_assert_eq(ug_buf_put_u32(b, (uint32_t)n), 0);
	cr_assert_eq(ug_buf_put(b, s, n), 0);
}

static void raw_encode(const struct ug_msg *m, struct ug_buf *b)
{
	cr_assert_eq(ug_buf_put_u8(b, (uint8_t)m->type), 0);
	switch (m->type) {
	case UG_MSG_HELLO:
		ug_buf_put_u32(b, UG_PROTO_MAGIC);
		ug_buf_put_u32(b, m->min_version);
		ug_buf_put_u32(b, m->max_version);
		raw_str(b, m->name, strnlen(m->name, sizeof(m->name)));
		break;
	case UG_MSG_WELCOME:
		ug_buf_put_u32(b, m->version);
		ug_buf_put_u32(b, m->flags);
		raw_str(b, m->name, strnlen(m->name, sizeof(m->name)));
		break;
	case UG_MSG_BUSY:
		ug_buf_put_u32(b, m->retry_after);
		raw_str(b, m->text, m->text_len);
		break;
	case UG_MSG_ERROR:
		ug_buf_put_u32(b, m->code);
		raw_str(b, m->text, m->text_len);
		break;
	case UG_MSG_OK:
	case UG_MSG_BYE:
	case UG_MSG_STATS:
		break;
	case UG_MSG_GET_REF:
	case UG_MSG_LIST:
		raw_str(b, m->channel, strnlen(m->channel, sizeof(m->channel)));
		break;
	case UG_MSG_REF:
		raw_str(b, m->channel, strnlen(m->channel, sizeof(m->channel)));
		ug_buf_put_u64(b, m->ver);
		break;
	case UG_MSG_WAIT:
		raw_str(b, m->channel, strnlen(m->channel, sizeof(m->channel)));
		ug_buf_put_u64(b, m->after);
		ug_buf_put_u32(b, m->timeout);
		break;
	case UG_MSG_VERSIONS:
		ug_buf_put_u32(b, m->nversions);
		ug_buf_put(b, m->versions_be, (size_t)m->nversions * 8);
		break;
	case UG_MSG_GET:
		ug_buf_put_u8(b, m->kind);
		raw_str(b, m->channel, strnlen(m->channel, sizeof(m->channel)));
		ug_buf_put_u64(b, m->ver);
		ug_buf_put_u64(b, m->from);
		ug_buf_put(b, m->id.b, UG_HASH_LEN);
		ug_buf_put_u64(b, m->offset);
		break;
	case UG_MSG_BLOB:
		ug_buf_put_u64(b, m->total);
		ug_buf_put_u64(b, m->offset);
		break;
	case UG_MSG_DATA:
		ug_buf_put(b, m->data, m->data_len);
		break;
	case UG_MSG_SIGDELTA:
		ug_buf_put(b, m->id.b, UG_HASH_LEN);
		ug_buf_put_u8(b, m->form);
		ug_buf_put_u64(b, m->sig_len);
		ug_buf_put_u64(b, m->offset);
		break;
	case UG_MSG_REPORT:
	case UG_MSG_STATS_REPLY:
		raw_str(b, m->text, m->text_len);
		break;
	}
}

static void assert_msg_eq(const struct ug_msg *a, const struct ug_msg *b)
{
	const char *t = ug_msg_type_name(a->type);

	cr_assert_eq(a->type, b->type, "%s: type", t);
	switch (a->type) {
	case UG_MSG_HELLO:
		cr_assert_eq(a->min_version, b->min_version, "%s: min_version", t);
		cr_assert_eq(a->max_version, b->max_version, "%s: max_version", t);
		cr_assert_str_eq(a->name, b->name, "%s: name", t);
		break;
	case UG_MSG_WELCOME:
		cr_assert_eq(a->version, b->version, "%s: version", t);
		cr_assert_eq(a->flags, b->flags, "%s: flags", t);
		cr_assert_str_eq(a->name, b->name, "%s: name", t);
		break;
	case UG_MSG_BUSY:
	case UG_MSG_ERROR:
	case UG_MSG_REPORT:
	case UG_MSG_STATS_REPLY:
		cr_assert_eq(a->retry_after, b->retry_after, "%s: retry_after", t);
		cr_assert_eq(a->code, b->code, "%s: code", t);
		cr_assert_eq(a->text_len, b->text_len, "%s: text_len", t);
		cr_assert(a->text_len == 0 || memcmp(a->text, b->text, a->text_len) == 0, "%s: text", t);
		break;
	case UG_MSG_OK:
	case UG_MSG_BYE:
	case UG_MSG_STATS:
		break;
	case UG_MSG_GET_REF:
	case UG_MSG_LIST:
	case UG_MSG_REF:
	case UG_MSG_WAIT:
		cr_assert_str_eq(a->channel, b->channel, "%s: channel", t);
		cr_assert_eq(a->ver, b->ver, "%s: ver", t);
		cr_assert_eq(a->after, b->after, "%s: after", t);
		cr_assert_eq(a->timeout, b->timeout, "%s: timeout", t);
		break;
	case UG_MSG_VERSIONS:
		cr_assert_eq(a->nversions, b->nversions, "%s: nversions", t);
		for (uint32_t i = 0; i < a->nversions; i++)
			cr_assert_eq(ug_msg_version_at(a, i), ug_msg_version_at(b, i),
				     "%s: version[%u]", t, i);
		break;
	case UG_MSG_GET:
		cr_assert_eq(a->kind, b->kind, "%s: kind", t);
		cr_assert_str_eq(a->channel, b->channel, "%s: channel", t);
		cr_assert_eq(a->ver, b->ver, "%s: ver", t);
		cr_assert_eq(a->from, b->from, "%s: from", t);
		cr_assert(ug_hash_eq(&a->id, &b->id), "%s: id", t);
		cr_assert_eq(a->offset, b->offset, "%s: offset", t);
		break;
	case UG_MSG_BLOB:
		cr_assert_eq(a->total, b->total, "%s: total", t);
		cr_assert_eq(a->offset, b->offset, "%s: offset", t);
		break;
	case UG_MSG_DATA:
		cr_assert_eq(a->data_len, b->data_len, "%s: data_len", t);
		cr_assert(memcmp(a->data, b->data, a->data_len) == 0, "%s: data", t);
		break;
	case UG_MSG_SIGDELTA:
		cr_assert(ug_hash_eq(&a->id, &b->id), "%s: id", t);
		cr_assert_eq(a->form, b->form, "%s: form", t);
		cr_assert_eq(a->sig_len, b->sig_len, "%s: sig_len", t);
		cr_assert_eq(a->offset, b->offset, "%s: offset", t);
		break;
	}
}

/* Encode m (after some bytes already in the buffer: encode appends),
 * check the length prefix and that the reference layout agrees byte for
 * byte, decode it back into *out and compare every field. frame keeps the
 * bytes text/data/versions_be of *out point into. */
static void roundtrip(const struct ug_msg *m, struct ug_buf *frame, struct ug_msg *out)
{
	static const char prefix[] = "xyz";
	struct ug_error err = { { 0 } };
	struct ug_buf raw;
	const uint8_t *body;
	size_t n;
	int r;

	ug_buf_init(frame, (size_t)UG_PROTO_FRAME_MAX + 8);
	cr_assert_eq(ug_buf_put(frame, prefix, 3), 0);
	r = ug_msg_encode(m, frame);
	cr_assert_eq(r, 0, "encode %s: %d", ug_msg_type_name(m->type), r);
	cr_assert(memcmp(frame->data, prefix, 3) == 0, "encode kept what was in the buffer");
	cr_assert_geq(frame->len, 3 + 5);
	body = frame->data + 3 + 4;
	n = frame->len - 3 - 4;
	cr_assert_eq(be32(frame->data + 3), n, "length field %u, body %zu", be32(frame->data + 3), n);
	cr_assert_eq(body[0], m->type);

	ug_buf_init(&raw, (size_t)UG_PROTO_FRAME_MAX + 8);
	raw_encode(m, &raw);
	cr_assert_eq(raw.len, n, "%s: %zu bytes, reference %zu", ug_msg_type_name(m->type), n, raw.len);
	cr_assert(memcmp(raw.data, body, n) == 0, "%s: bytes differ from the reference layout",
		  ug_msg_type_name(m->type));
	ug_buf_release(&raw);

	memset(out, 0x5a, sizeof(*out));
	r = ug_msg_decode(body, n, out, &err);
	cr_assert_eq(r, 0, "decode %s: %d (%s)", ug_msg_type_name(m->type), r, err.msg);
	assert_msg_eq(m, out);
}

/* decode must fail with -EPROTO, a message holding want, and *ret untouched. */
static void decode_fails(const uint8_t *p, size_t n, const char *want)
{
	struct ug_error err = { { 0 } };
	struct ug_msg out, before;
	uint8_t *copy = malloc(n ? n : 1);
	int r;

	/* an exact-size heap copy, so ASan sees any read past the frame */
	cr_assert_not_null(copy);
	if (n)
		memcpy(copy, p, n);
	memset(&out, 0xa5, sizeof(out));
	before = out;
	r = ug_msg_decode(copy, n, &out, &err);
	cr_assert_eq(r, -EPROTO, "decode of %zu bytes gave %d, want -EPROTO (%s)", n, r, err.msg);
	cr_assert(memcmp(&out, &before, sizeof(out)) == 0, "ret was written on failure");
	if (want)
		cr_assert(strstr(err.msg, want), "message '%s' does not say '%s'", err.msg, want);
	free(copy);
}

static void decode_buf_fails(const struct ug_buf *b, const char *want)
{
	decode_fails(b->data, b->len, want);
}

static const uint8_t versions3[24] = {
	0, 0, 0, 0, 0, 0, 0, 1,
	0, 0, 0, 0, 0, 0, 0, 7,
	0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07, 0x08,
};
static const char json[] = "{\"host\":\"t-17\",\"ok\":true,\"note\":\"ünïcødé\"}";
static const uint8_t blob[] = { 0, 1, 2, 0xff, 0xfe, 0x80, 0 };

/* A valid message of each type (i: 0..17); false past the end. */
static bool sample(unsigned i, struct ug_msg *m)
{
	static const enum ug_msg_type types[] = {
		UG_MSG_HELLO, UG_MSG_WELCOME, UG_MSG_BUSY, UG_MSG_ERROR, UG_MSG_OK,
		UG_MSG_BYE, UG_MSG_GET_REF, UG_MSG_REF, UG_MSG_WAIT, UG_MSG_LIST,
		UG_MSG_VERSIONS, UG_MSG_GET, UG_MSG_BLOB, UG_MSG_DATA, UG_MSG_SIGDELTA,
		UG_MSG_REPORT, UG_MSG_STATS, UG_MSG_STATS_REPLY,
	};

	if (i >= sizeof(types) / sizeof(types[0]))
		return false;
	*m = mk(types[i]);
	switch (m->type) {
	case UG_MSG_HELLO:
		m->min_version = 1;
		m->max_version = 3;
		snprintf(m->name, sizeof(m->name), "terminal-Ω-17");
		break;
	case UG_MSG_WELCOME:
		m->version = 2;
		m->flags = UG_WELCOME_READ_ONLY;
		snprintf(m->name, sizeof(m->name), "g1s2");
		break;
	case UG_MSG_BUSY:
		m->retry_after = 30;
		m->text = "too many clients";
		m->text_len = strlen(m->text);
		break;
	case UG_MSG_ERROR:
		m->code = UG_PERR_NOTFOUND;
		m->text = "no version 9 on channel 'stable'";
		m->text_len = strlen(m->text);
		break;
	case UG_MSG_GET_REF:
	case UG_MSG_LIST:
		snprintf(m->channel, sizeof(m->channel), "stable");
		break;
	case UG_MSG_REF:
		snprintf(m->channel, sizeof(m->channel), "beta_2.x");
		m->ver = 0x0102030405060708ull;
		break;
	case UG_MSG_WAIT:
		snprintf(m->channel, sizeof(m->channel), "stable");
		m->after = 41;
		m->timeout = 600;
		break;
	case UG_MSG_VERSIONS:
		m->nversions = 3;
		m->versions_be = (const uint64_t *)(const void *)versions3;
		break;
	case UG_MSG_GET:
		m->kind = UG_BLOB_MDELTA;
		snprintf(m->channel, sizeof(m->channel), "stable");
		m->ver = 42;
		m->from = 40;
		memset(m->id.b, 0xab, UG_HASH_LEN);
		m->offset = 123456789;
		break;
	case UG_MSG_BLOB:
		m->total = 1000;
		m->offset = 250;
		break;
	case UG_MSG_DATA:
		m->data = blob;
		m->data_len = sizeof(blob);
		break;
	case UG_MSG_SIGDELTA:
		for (int k = 0; k < UG_HASH_LEN; k++)
			m->id.b[k] = (uint8_t)k;
		m->form = UG_SIG_STORED;
		m->sig_len = 4096;
		m->offset = 77;
		break;
	case UG_MSG_REPORT:
	case UG_MSG_STATS_REPLY:
		m->text = json;
		m->text_len = strlen(json);
		break;
	default:
		break;
	}
	return true;
}

/* ---------------------------------------------------------------- names */

Test(proto, type_and_error_names)
{
	cr_assert_str_eq(ug_msg_type_name(UG_MSG_HELLO), "HELLO");
	cr_assert_str_eq(ug_msg_type_name(UG_MSG_GET), "GET");
	cr_assert_str_eq(ug_msg_type_name(UG_MSG_GET_REF), "GET_REF");
	cr_assert_str_eq(ug_msg_type_name(UG_MSG_SIGDELTA), "SIGDELTA");
	cr_assert_str_eq(ug_msg_type_name(UG_MSG_STATS_REPLY), "STATS_REPLY");
	cr_assert_str_eq(ug_msg_type_name(0), "unknown");
	cr_assert_str_eq(ug_msg_type_name(0x7f), "unknown");
	cr_assert_str_eq(ug_msg_type_name(0x101), "unknown");
	cr_assert_str_eq(ug_proto_err_name(UG_PERR_NOTFOUND), "notfound");
	cr_assert_str_eq(ug_proto_err_name(UG_PERR_BADREQ), "badreq");
	cr_assert_str_eq(ug_proto_err_name(UG_PERR_VERSION), "version");
	cr_assert_str_eq(ug_proto_err_name(0), "unknown");
	cr_assert_str_eq(ug_proto_err_name(UG_PERR_MAX + 1), "unknown");
	/* every type a sample exists for has its own name */
	for (unsigned i = 0; ; i++) {
		struct ug_msg m;

		if (!sample(i, &m))
			break;
		cr_assert_str_neq(ug_msg_type_name(m.type), "unknown", "type 0x%02x", m.type);
	}
}

/* ---------------------------------------------------------------- round trips */

Test(proto, hello_exact_bytes)
{
	static const uint8_t want[] = {
		0x00, 0x00, 0x00, 0x13,
		0x01,
		0x55, 0x47, 0x52, 0x44,
		0x00, 0x00, 0x00, 0x01,
		0x00, 0x00, 0x00, 0x02,
		0x00, 0x00, 0x00, 0x02, 'a', 'b',
	};
	struct ug_msg m = mk(UG_MSG_HELLO);
	struct ug_buf b;

	m.min_version = 1;
	m.max_version = 2;
	snprintf(m.name, sizeof(m.name), "ab");
	ug_buf_init(&b, 1024);
	cr_assert_eq(ug_msg_encode(&m, &b), 0);
	cr_assert_eq(b.len, sizeof(want));
	cr_assert(memcmp(b.data, want, sizeof(want)) == 0, "HELLO bytes differ");
	ug_buf_release(&b);
}

Test(proto, get_exact_bytes)
{
	struct ug_msg m = mk(UG_MSG_GET);
	struct ug_buf b;
	uint8_t want[4 + 1 + 1 + 4 + 1 + 8 + 8 + 32 + 8], *p = want;

	m.kind = UG_BLOB_MANIFEST;
	snprintf(m.channel, sizeof(m.channel), "c");
	m.ver = 5;
	m.from = 0x1122334455667788ull;
	memset(m.id.b, 0x11, UG_HASH_LEN);
	m.offset = 7;
	memcpy(p, "\x00\x00\x00\x3f", 4), p += 4;
	*p++ = UG_MSG_GET;
	*p++ = UG_BLOB_MANIFEST;
	memcpy(p, "\x00\x00\x00\x01" "c", 5), p += 5;
	put_be64(p, 5), p += 8;
	put_be64(p, 0x1122334455667788ull), p += 8;
	memset(p, 0x11, 32), p += 32;
	put_be64(p, 7), p += 8;
	cr_assert_eq((size_t)(p - want), sizeof(want));
	ug_buf_init(&b, 1024);
	cr_assert_eq(ug_msg_encode(&m, &b), 0);
	cr_assert_eq(b.len, sizeof(want));
	cr_assert(memcmp(b.data, want, sizeof(want)) == 0, "GET bytes differ");
	ug_buf_release(&b);
}

/* The byte examples of docs/protocol.md, so the document and the codec
 * cannot drift apart. */
static void assert_encodes_to(const struct ug_msg *m, const char *hex)
{
	uint8_t want[256];
	size_t nd = 0;
	struct ug_buf b;

	/* ug_hex_decode takes at most 64 bytes: parse by hand */
	for (const char *h = hex; *h; h++) {
		unsigned v;

		if (*h == ' ')
			continue;
		cr_assert(sscanf((char[]){ *h, 0 }, "%1x", &v) == 1, "bad hex '%c'", *h);
		cr_assert_lt(nd / 2, sizeof(want));
		want[nd / 2] = (uint8_t)(nd % 2 ? want[nd / 2] | v : v << 4);
		nd++;
	}
	cr_assert_eq(nd % 2, 0);
	ug_buf_init(&b, 4096);
	cr_assert_eq(ug_msg_encode(m, &b), 0);
	cr_assert_eq(b.len, nd / 2, "%s: %zu bytes, the document says %zu",
		     ug_msg_type_name(m->type), b.len, nd / 2);
	cr_assert(memcmp(b.data, want, b.len) == 0, "%s: bytes differ from docs/protocol.md",
		  ug_msg_type_name(m->type));
	ug_buf_release(&b);
}

Test(proto, protocol_md_examples)
{
	struct ug_msg m;

	m = mk(UG_MSG_HELLO);
	m.min_version = m.max_version = 1;
	snprintf(m.name, sizeof(m.name), "e2");
	assert_encodes_to(&m, "00 00 00 13  01  55 47 52 44  00 00 00 01  00 00 00 01  00 00 00 02 65 32");
	m = mk(UG_MSG_WELCOME);
	m.version = 1;
	snprintf(m.name, sizeof(m.name), "e1");
	assert_encodes_to(&m, "00 00 00 0f  02  00 00 00 01  00 00 00 00  00 00 00 02 65 31");
	m = mk(UG_MSG_GET_REF);
	snprintf(m.channel, sizeof(m.channel), "stable");
	assert_encodes_to(&m, "00 00 00 0b  10  00 00 00 06 73 74 61 62 6c 65");
	m.type = UG_MSG_REF;
	m.ver = 42;
	assert_encodes_to(&m, "00 00 00 13  11  00 00 00 06 73 74 61 62 6c 65  00 00 00 00 00 00 00 2a");
	m = mk(UG_MSG_WAIT);
	snprintf(m.channel, sizeof(m.channel), "stable");
	m.after = 42;
	m.timeout = 5;
	assert_encodes_to(&m, "00 00 00 17  12  00 00 00 06 73 74 61 62 6c 65  "
			  "00 00 00 00 00 00 00 2a  00 00 00 05");
	m = mk(UG_MSG_GET);
	m.kind = UG_BLOB_SIG;
	snprintf(m.channel, sizeof(m.channel), "stable");
	m.ver = 43;
	assert_encodes_to(&m, "00 00 00 44  20  04  00 00 00 06 73 74 61 62 6c 65  00 00 00 00 00 00 00 2b "
			  "00 00 00 00 00 00 00 00 "
			  "00000000000000000000000000000000 00000000000000000000000000000000 "
			  "00 00 00 00 00 00 00 00");
	m = mk(UG_MSG_BLOB);
	m.total = 0x6d;
	assert_encodes_to(&m, "00 00 00 11  21  00 00 00 00 00 00 00 6d  00 00 00 00 00 00 00 00");
	m = mk(UG_MSG_BYE);
	assert_encodes_to(&m, "00 00 00 01  06");
}

Test(proto, roundtrip_every_type)
{
	struct ug_msg m, out;
	struct ug_buf frame;
	unsigned i;

	for (i = 0; sample(i, &m); i++) {
		roundtrip(&m, &frame, &out);
		ug_buf_release(&frame);
	}
	cr_assert_eq(i, 18, "a sample for each of the 18 types");
}

Test(proto, roundtrip_text_and_data_point_into_frame)
{
	struct ug_msg m, out;
	struct ug_buf frame;

	sample(2, &m); /* BUSY */
	cr_assert_eq(m.type, UG_MSG_BUSY);
	roundtrip(&m, &frame, &out);
	cr_assert(out.text >= (const char *)frame.data &&
		  out.text + out.text_len <= (const char *)frame.data + frame.len);
	ug_buf_release(&frame);

	m = mk(UG_MSG_DATA);
	m.data = blob;
	m.data_len = sizeof(blob);
	roundtrip(&m, &frame, &out);
	cr_assert(out.data >= frame.data && out.data + out.data_len <= frame.data + frame.len);
	ug_buf_release(&frame);
}

Test(proto, roundtrip_boundaries)
{
	static char text[UG_PROTO_TEXT_MAX];
	static uint8_t data[UG_PROTO_CHUNK];
	static uint8_t vers[UG_PROTO_VERSIONS_MAX * 8];
	struct ug_msg m, out;
	struct ug_buf frame;

	/* longest name, empty name */
	m = mk(UG_MSG_HELLO);
	m.min_version = m.max_version = 1;
	memset(m.name, 'n', UG_PROTO_NAME_MAX);
	roundtrip(&m, &frame, &out);
	cr_assert_eq(strlen(out.name), UG_PROTO_NAME_MAX);
	ug_buf_release(&frame);
	m.name[0] = '\0';
	m.min_version = 1;
	m.max_version = UINT32_MAX;
	roundtrip(&m, &frame, &out);
	ug_buf_release(&frame);

	m = mk(UG_MSG_WELCOME);
	m.version = UINT32_MAX;
	roundtrip(&m, &frame, &out);
	ug_buf_release(&frame);

	/* longest channel */
	m = mk(UG_MSG_WAIT);
	memset(m.channel, 'c', UG_CHANNEL_MAX);
	m.after = UINT64_MAX;
	m.timeout = UG_PROTO_WAIT_MAX;
	roundtrip(&m, &frame, &out);
	ug_buf_release(&frame);
	m.timeout = 0;
	roundtrip(&m, &frame, &out);
	ug_buf_release(&frame);

	/* longest text, empty text */
	memset(text, 't', sizeof(text));
	m = mk(UG_MSG_BUSY);
	m.retry_after = UG_PROTO_RETRY_MAX;
	m.text = text;
	m.text_len = UG_PROTO_TEXT_MAX;
	roundtrip(&m, &frame, &out);
	ug_buf_release(&frame);
	m = mk(UG_MSG_ERROR);
	m.code = UG_PERR_MAX;
	roundtrip(&m, &frame, &out);
	cr_assert_eq(out.text_len, 0);
	ug_buf_release(&frame);

	/* biggest DATA */
	for (size_t k = 0; k < sizeof(data); k++)
		data[k] = (uint8_t)(k * 31 + 7);
	m = mk(UG_MSG_DATA);
	m.data = data;
	m.data_len = UG_PROTO_CHUNK;
	roundtrip(&m, &frame, &out);
	ug_buf_release(&frame);
	m.data_len = 1;
	roundtrip(&m, &frame, &out);
	ug_buf_release(&frame);

	/* most versions, ascending up to UINT64_MAX; and none */
	for (uint32_t k = 0; k < UG_PROTO_VERSIONS_MAX; k++)
		put_be64(vers + 8 * k, UINT64_MAX - (UG_PROTO_VERSIONS_MAX - 1) + k);
	m = mk(UG_MSG_VERSIONS);
	m.nversions = UG_PROTO_VERSIONS_MAX;
	m.versions_be = (const uint64_t *)(const void *)vers;
	roundtrip(&m, &frame, &out);
	cr_assert_eq(ug_msg_version_at(&out, UG_PROTO_VERSIONS_MAX - 1), UINT64_MAX);
	cr_assert_eq(ug_msg_version_at(&out, 0), UINT64_MAX - (UG_PROTO_VERSIONS_MAX - 1));
	ug_buf_release(&frame);
	m.nversions = 0;
	m.versions_be = NULL;
	roundtrip(&m, &frame, &out);
	cr_assert_eq(out.nversions, 0);
	ug_buf_release(&frame);

	/* blob at the largest size; GET of objects/deltas without a channel */
	m = mk(UG_MSG_BLOB);
	m.total = m.offset = UG_FILE_SIZE_MAX;
	roundtrip(&m, &frame, &out);
	ug_buf_release(&frame);
	m.total = m.offset = 0;
	roundtrip(&m, &frame, &out);
	ug_buf_release(&frame);
	for (uint8_t kind = UG_BLOB_OBJECT; kind <= UG_BLOB_DELTA; kind++) {
		m = mk(UG_MSG_GET);
		m.kind = kind;
		memset(m.id.b, 0x5c, UG_HASH_LEN);
		m.offset = UG_FILE_SIZE_MAX;
		roundtrip(&m, &frame, &out);
		cr_assert_str_eq(out.channel, "");
		ug_buf_release(&frame);
	}
	m = mk(UG_MSG_GET);
	m.kind = UG_BLOB_SIG;
	snprintf(m.channel, sizeof(m.channel), "stable");
	m.ver = 1;
	roundtrip(&m, &frame, &out);
	ug_buf_release(&frame);
	m.kind = UG_BLOB_MDELTA;
	m.from = 1;
	m.ver = 2;
	roundtrip(&m, &frame, &out);
	ug_buf_release(&frame);
	/* rollout documents and their signatures: channel and version */
	for (uint8_t kind = UG_BLOB_ROLLOUT; kind <= UG_BLOB_ROLLOUT_SIG; kind++) {
		m = mk(UG_MSG_GET);
		m.kind = kind;
		snprintf(m.channel, sizeof(m.channel), "stable");
		m.ver = 7;
		roundtrip(&m, &frame, &out);
		cr_assert_eq(out.kind, kind);
		cr_assert_str_eq(out.channel, "stable");
		cr_assert_eq(out.ver, 7);
		ug_buf_release(&frame);
	}
	cr_assert_eq(UG_BLOB_KIND_MAX, UG_BLOB_ROLLOUT_SIG, "the rollout kinds are the last");

	m = mk(UG_MSG_SIGDELTA);
	m.form = UG_SIG_CONTENT;
	m.sig_len = UG_RSYNC_SIG_MAX;
	m.offset = UG_FILE_SIZE_MAX;
	roundtrip(&m, &frame, &out);
	ug_buf_release(&frame);
	m.sig_len = 1;
	roundtrip(&m, &frame, &out);
	ug_buf_release(&frame);
}

Test(proto, version_at_reads_unaligned)
{
	uint8_t raw[1 + 16];
	struct ug_msg m = mk(UG_MSG_VERSIONS);

	put_be64(raw + 1, 0x0a0b0c0d0e0f1011ull);
	put_be64(raw + 9, 3);
	m.nversions = 2;
	m.versions_be = (const uint64_t *)(const void *)(raw + 1);
	cr_assert_eq(ug_msg_version_at(&m, 0), 0x0a0b0c0d0e0f1011ull);
	cr_assert_eq(ug_msg_version_at(&m, 1), 3);
}

/* ---------------------------------------------------------------- bad fields */

static char big_text[UG_PROTO_TEXT_MAX + 1];
static uint8_t big_data[UG_PROTO_CHUNK + 1];

/* A message with one field out of range (i: 0..), and what the decoder's
 * message must say about it. false past the end. */
static bool bad_msg(unsigned i, struct ug_msg *m, const char **want)
{
	static const uint8_t eq[16] = { 0, 0, 0, 0, 0, 0, 0, 2, 0, 0, 0, 0, 0, 0, 0, 2 };
	static const uint8_t down[24] = {
		0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 3, 0, 0, 0, 0, 0, 0, 0, 2,
	};

	switch (i) {
	case 0:
		*m = mk(UG_MSG_HELLO), m->max_version = 1, *want = "HELLO: version range 0..1";
		return true;
	case 1:
		*m = mk(UG_MSG_HELLO), m->min_version = 3, m->max_version = 2, *want = "version range";
		return true;
	case 2:
		*m = mk(UG_MSG_HELLO), m->min_version = m->max_version = 1;
		snprintf(m->name, sizeof(m->name), "bad\xc3\x28");
		*want = "HELLO: name is not printable";
		return true;
	case 3:
		*m = mk(UG_MSG_HELLO), m->min_version = m->max_version = 1;
		snprintf(m->name, sizeof(m->name), "a\x1b[2J");
		*want = "name is not printable";
		return true;
	case 4:
		*m = mk(UG_MSG_HELLO), m->min_version = m->max_version = 1;
		snprintf(m->name, sizeof(m->name), "c1\xc2\x9b" "31m");
		*want = "name is not printable";
		return true;
	case 5:
		*m = mk(UG_MSG_HELLO), m->min_version = m->max_version = 1;
		snprintf(m->name, sizeof(m->name), "del\x7f");
		*want = "name is not printable";
		return true;
	case 6:
		/* 256 bytes, no room for a NUL: longer than UG_PROTO_NAME_MAX */
		*m = mk(UG_MSG_HELLO), m->min_version = m->max_version = 1;
		memset(m->name, 'n', sizeof(m->name));
		*want = "HELLO: name of 256 bytes exceeds the 255-byte limit";
		return true;
	case 7:
		*m = mk(UG_MSG_WELCOME), *want = "WELCOME: version 0";
		return true;
	case 8:
		*m = mk(UG_MSG_WELCOME), m->version = 1, m->flags = 0x2, *want = "unknown flags 0x2";
		return true;
	case 9:
		*m = mk(UG_MSG_WELCOME), m->version = 1;
		snprintf(m->name, sizeof(m->name), "\xed\xa0\x80"); /* a surrogate */
		*want = "WELCOME: name is not printable";
		return true;
	case 10:
		*m = mk(UG_MSG_BUSY), *want = "BUSY: retry-after 0";
		return true;
	case 11:
		*m = mk(UG_MSG_BUSY), m->retry_after = UG_PROTO_RETRY_MAX + 1, *want = "retry-after 86401";
		return true;
	case 12:
		*m = mk(UG_MSG_BUSY), m->retry_after = 1, m->text = "\xff", m->text_len = 1;
		*want = "BUSY: text is not valid UTF-8";
		return true;
	case 13:
		*m = mk(UG_MSG_ERROR), *want = "ERROR: code 0";
		return true;
	case 14:
		*m = mk(UG_MSG_ERROR), m->code = UG_PERR_MAX + 1, *want = "ERROR: code 9";
		return true;
	case 15:
		*m = mk(UG_MSG_ERROR), m->code = 1, m->text = "\xc0\xaf", m->text_len = 2;
		*want = "ERROR: text is not valid UTF-8";
		return true;
	case 16:
		memset(big_text, 'x', sizeof(big_text));
		*m = mk(UG_MSG_ERROR), m->code = 1, m->text = big_text, m->text_len = sizeof(big_text);
		*want = "ERROR: text of 65537 bytes exceeds the 65536-byte limit";
		return true;
	case 17:
		*m = mk(UG_MSG_GET_REF), *want = "GET_REF: channel name must be 1 to 64";
		return true;
	case 18:
		*m = mk(UG_MSG_GET_REF);
		snprintf(m->channel, sizeof(m->channel), "../etc");
		*want = "GET_REF: channel name '../etc' must not start";
		return true;
	case 19:
		*m = mk(UG_MSG_LIST);
		snprintf(m->channel, sizeof(m->channel), "a b");
		*want = "LIST: channel name 'a b' may only hold";
		return true;
	case 20:
		*m = mk(UG_MSG_REF);
		snprintf(m->channel, sizeof(m->channel), "\x1b]0;pwned\x07");
		*want = "REF: channel name holds a byte outside";
		return true;
	case 21:
		*m = mk(UG_MSG_WAIT);
		memset(m->channel, 'c', sizeof(m->channel));
		*want = "WAIT: channel of 65 bytes exceeds the 64-byte limit";
		return true;
	case 22:
		*m = mk(UG_MSG_WAIT);
		snprintf(m->channel, sizeof(m->channel), "stable");
		m->timeout = UG_PROTO_WAIT_MAX + 1;
		*want = "WAIT: timeout 3601";
		return true;
	case 23:
		*m = mk(UG_MSG_VERSIONS), m->nversions = 2, m->versions_be = (const void *)eq;
		*want = "VERSIONS: version[1] 2 does not follow 2";
		return true;
	case 24:
		*m = mk(UG_MSG_VERSIONS), m->nversions = 3, m->versions_be = (const void *)down;
		*want = "not ascending";
		return true;
	case 25:
		*m = mk(UG_MSG_GET), *want = "GET: blob kind 0 is unknown";
		return true;
	case 26:
		*m = mk(UG_MSG_GET), m->kind = UG_BLOB_KIND_MAX + 1, *want = "GET: blob kind 8 is unknown";
		return true;
	case 27:
		*m = mk(UG_MSG_GET), m->kind = UG_BLOB_MANIFEST, m->ver = 1;
		*want = "GET: channel name must be 1 to";
		return true;
	case 28:
		*m = mk(UG_MSG_GET), m->kind = UG_BLOB_MANIFEST, m->ver = 1;
		snprintf(m->channel, sizeof(m->channel), "a/b");
		*want = "GET: channel name 'a/b' may only hold";
		return true;
	case 29:
		*m = mk(UG_MSG_GET), m->kind = UG_BLOB_SIG, m->ver = 1;
		snprintf(m->channel, sizeof(m->channel), "-rf");
		*want = "must not start with";
		return true;
	case 30:
		*m = mk(UG_MSG_GET), m->kind = UG_BLOB_MDELTA, m->from = 1, m->ver = 2;
		*want = "GET: channel name must be";
		return true;
	case 31:
		*m = mk(UG_MSG_GET), m->kind = UG_BLOB_MANIFEST;
		snprintf(m->channel, sizeof(m->channel), "stable");
		*want = "GET: version 0";
		return true;
	case 32:
		*m = mk(UG_MSG_GET), m->kind = UG_BLOB_MDELTA, m->ver = 5, m->from = 6;
		snprintf(m->channel, sizeof(m->channel), "stable");
		*want = "GET: manifest delta from 6 to 5 is not forward";
		return true;
	case 33:
		*m = mk(UG_MSG_GET), m->kind = UG_BLOB_MDELTA, m->ver = 5, m->from = 5;
		snprintf(m->channel, sizeof(m->channel), "stable");
		*want = "from 5 to 5 is not forward";
		return true;
	case 34:
		*m = mk(UG_MSG_GET), m->kind = UG_BLOB_OBJECT, m->offset = UG_FILE_SIZE_MAX + 1;
		*want = "GET: offset 1099511627777";
		return true;
	case 35:
		*m = mk(UG_MSG_GET), m->kind = UG_BLOB_DELTA;
		snprintf(m->channel, sizeof(m->channel), "no/such");
		*want = "GET: channel name 'no/such'";
		return true;
	case 36:
		*m = mk(UG_MSG_BLOB), m->total = 10, m->offset = 11;
		*want = "BLOB: offset 11 is past the total 10";
		return true;
	case 37:
		*m = mk(UG_MSG_BLOB), m->total = UG_FILE_SIZE_MAX + 1;
		*want = "BLOB: total 1099511627777";
		return true;
	case 38:
		*m = mk(UG_MSG_DATA), m->data = big_data, m->data_len = 0;
		*want = "DATA: 0 bytes is not 1..262144";
		return true;
	case 39:
		*m = mk(UG_MSG_DATA), m->data = big_data, m->data_len = sizeof(big_data);
		*want = "DATA: 262145 bytes";
		return true;
	case 40:
		*m = mk(UG_MSG_SIGDELTA), *want = "SIGDELTA: signature of 0 bytes";
		return true;
	case 41:
		*m = mk(UG_MSG_SIGDELTA), m->sig_len = UG_RSYNC_SIG_MAX + 1;
		*want = "SIGDELTA: signature of 268435457 bytes";
		return true;
	case 42:
		*m = mk(UG_MSG_SIGDELTA), m->sig_len = 1, m->form = 2, *want = "SIGDELTA: form 2";
		return true;
	case 43:
		*m = mk(UG_MSG_SIGDELTA), m->sig_len = 1, m->offset = UG_FILE_SIZE_MAX + 1;
		*want = "SIGDELTA: offset";
		return true;
	case 44:
		*m = mk(UG_MSG_REPORT), m->text = "{\"a\":\"\xe2\x82\"}", m->text_len = 9;
		*want = "REPORT: text is not valid UTF-8";
		return true;
	case 45:
		*m = mk(UG_MSG_STATS_REPLY), m->text = "\xf5\x80\x80\x80", m->text_len = 4;
		*want = "STATS_REPLY: text is not valid UTF-8";
		return true;
	case 46:
		*m = mk(UG_MSG_STATS_REPLY), m->text = big_text, m->text_len = sizeof(big_text);
		memset(big_text, 'x', sizeof(big_text));
		*want = "STATS_REPLY: text of 65537 bytes";
		return true;
	case 47:
		*m = mk((enum ug_msg_type)0x7f), *want = "frame type 0x7f is unknown";
		return true;
	case 48:
		*m = mk((enum ug_msg_type)0x00), *want = "frame type 0x00 is unknown";
		return true;
	case 49:
		*m = mk(UG_MSG_GET), m->kind = UG_BLOB_ROLLOUT;
		snprintf(m->channel, sizeof(m->channel), "stable");
		*want = "GET: version 0 names no rollout document";
		return true;
	case 50:
		*m = mk(UG_MSG_GET), m->kind = UG_BLOB_ROLLOUT_SIG;
		snprintf(m->channel, sizeof(m->channel), "stable");
		*want = "GET: version 0 names no rollout document";
		return true;
	case 51:
		*m = mk(UG_MSG_GET), m->kind = UG_BLOB_ROLLOUT, m->ver = 3;
		*want = "GET: channel name must be";
		return true;
	case 52:
		*m = mk(UG_MSG_GET), m->kind = UG_BLOB_ROLLOUT_SIG, m->ver = 3;
		snprintf(m->channel, sizeof(m->channel), "../x");
		*want = "GET: channel name '../x'";
		return true;
	}
	return false;
}

Test(proto, bad_fields_refused_by_encode_and_decode)
{
	unsigned i;

	for (i = 0; ; i++) {
		struct ug_msg m;
		struct ug_buf out, raw;
		const char *want = NULL;
		int r;

		if (!bad_msg(i, &m, &want))
			break;
		/* encode: -EINVAL, and what was in the buffer is left alone */
		ug_buf_init(&out, (size_t)UG_PROTO_FRAME_MAX + 8);
		cr_assert_eq(ug_buf_put(&out, "keep", 4), 0);
		r = ug_msg_encode(&m, &out);
		cr_assert_eq(r, -EINVAL, "case %u (%s): encode gave %d, want -EINVAL", i, want, r);
		cr_assert_eq(out.len, 4, "case %u: encode left bytes behind", i);
		cr_assert(memcmp(out.data, "keep", 4) == 0);
		ug_buf_release(&out);

		/* the same message forced onto the wire: the decoder says why */
		ug_buf_init(&raw, (size_t)UG_PROTO_FRAME_MAX + 8);
		raw_encode(&m, &raw);
		decode_buf_fails(&raw, want);
		ug_buf_release(&raw);
	}
	cr_assert_geq(i, 49);
}

Test(proto, encode_refuses_missing_pointers)
{
	struct ug_msg m;
	struct ug_buf b;

	ug_buf_init(&b, 4096);
	m = mk(UG_MSG_DATA);
	m.data_len = 10;
	cr_assert_eq(ug_msg_encode(&m, &b), -EINVAL);
	m = mk(UG_MSG_REPORT);
	m.text_len = 3;
	cr_assert_eq(ug_msg_encode(&m, &b), -EINVAL);
	m = mk(UG_MSG_VERSIONS);
	m.nversions = 2;
	cr_assert_eq(ug_msg_encode(&m, &b), -EINVAL);
	m.nversions = UG_PROTO_VERSIONS_MAX + 1;
	m.versions_be = (const uint64_t *)(const void *)big_data;
	cr_assert_eq(ug_msg_encode(&m, &b), -EINVAL);
	cr_assert_eq(b.len, 0);
	ug_buf_release(&b);
}

Test(proto, encode_into_full_buffer_rolls_back)
{
	struct ug_msg m;
	struct ug_buf b;

	sample(0, &m); /* HELLO: 4 + 1 + 12 + 4 + name */
	ug_buf_init(&b, 20);
	cr_assert_eq(ug_buf_put(&b, "ab", 2), 0);
	cr_assert_eq(ug_msg_encode(&m, &b), -E2BIG);
	cr_assert_eq(b.len, 2, "a frame that does not fit leaves nothing behind");
	ug_buf_release(&b);
}

/* ---------------------------------------------------------------- hostile frames */

Test(proto, every_truncation_is_refused)
{
	struct ug_msg m;
	unsigned checked = 0;

	for (unsigned i = 0; sample(i, &m); i++) {
		struct ug_buf raw;

		/* any prefix of DATA is DATA */
		if (m.type == UG_MSG_DATA)
			continue;
		ug_buf_init(&raw, 1 << 16);
		raw_encode(&m, &raw);
		decode_fails(raw.data, 0, "empty frame");
		for (size_t k = 1; k < raw.len; k++) {
			decode_fails(raw.data, k, "field truncated");
			checked++;
		}
		ug_buf_release(&raw);
	}
	cr_assert_gt(checked, 200);
}

Test(proto, truncation_names_the_field)
{
	struct ug_msg m;
	struct ug_buf raw;

	sample(11, &m);
	cr_assert_eq(m.type, UG_MSG_GET);
	ug_buf_init(&raw, 4096);
	raw_encode(&m, &raw);
	decode_fails(raw.data, raw.len - 1, "GET: offset field truncated");
	decode_fails(raw.data, raw.len - 8, "GET: offset field truncated");
	decode_fails(raw.data, raw.len - 9, "GET: id field truncated");
	decode_fails(raw.data, 1, "GET: kind field truncated");
	decode_fails(raw.data, 2, "GET: channel field truncated");
	decode_fails(raw.data, 7, "GET: channel field truncated");
	ug_buf_release(&raw);

	sample(0, &m);
	ug_buf_init(&raw, 4096);
	raw_encode(&m, &raw);
	decode_fails(raw.data, 3, "HELLO: magic field truncated");
	decode_fails(raw.data, 6, "HELLO: min_version field truncated");
	decode_fails(raw.data, 14, "HELLO: name field truncated");
	ug_buf_release(&raw);

	sample(10, &m);
	cr_assert_eq(m.type, UG_MSG_VERSIONS);
	ug_buf_init(&raw, 4096);
	raw_encode(&m, &raw);
	decode_fails(raw.data, raw.len - 1, "VERSIONS: versions field truncated");
	ug_buf_release(&raw);
}

Test(proto, leftover_bytes_refused)
{
	struct ug_msg m;

	for (unsigned i = 0; sample(i, &m); i++) {
		struct ug_buf raw;
		char want[128];

		if (m.type == UG_MSG_DATA)
			continue;
		ug_buf_init(&raw, 1 << 16);
		raw_encode(&m, &raw);
		cr_assert_eq(ug_buf_put(&raw, "\0\0\0", 3), 0);
		snprintf(want, sizeof(want), "%s: 3 bytes left over after the last field",
			 ug_msg_type_name(m.type));
		decode_buf_fails(&raw, want);
		raw.len -= 2;
		snprintf(want, sizeof(want), "%s: 1 byte left over", ug_msg_type_name(m.type));
		decode_buf_fails(&raw, want);
		ug_buf_release(&raw);
	}
}

Test(proto, unknown_types_refused)
{
	static const uint8_t types[] = { 0x00, 0x07, 0x0f, 0x15, 0x1f, 0x24, 0x33, 0x7f, 0xff };

	for (size_t i = 0; i < sizeof(types); i++) {
		uint8_t frame[9] = { types[i], 0, 0, 0, 0, 0, 0, 0, 0 };
		char want[64];

		snprintf(want, sizeof(want), "frame type 0x%02x is unknown", types[i]);
		decode_fails(frame, 1, want);
		decode_fails(frame, sizeof(frame), want);
	}
}

Test(proto, frame_size_limits)
{
	uint8_t *big = calloc(1, (size_t)UG_PROTO_FRAME_MAX + 1);
	struct ug_msg out;
	struct ug_error err;

	cr_assert_not_null(big);
	decode_fails(big, 0, "empty frame");
	big[0] = UG_MSG_DATA;
	decode_fails(big, (size_t)UG_PROTO_FRAME_MAX + 1, "exceeds the 1048576-byte limit");
	/* a DATA frame of a whole megabyte is well-formed but over the chunk */
	cr_assert_eq(ug_msg_decode(big, UG_PROTO_FRAME_MAX, &out, &err), -EPROTO);
	cr_assert(strstr(err.msg, "DATA: 1048575 bytes"), "%s", err.msg);
	free(big);
}

Test(proto, wire_only_rules)
{
	struct ug_buf b;

	/* wrong magic */
	ug_buf_init(&b, 4096);
	ug_buf_put_u8(&b, UG_MSG_HELLO);
	ug_buf_put_u32(&b, 0x53534800); /* someone else's protocol */
	ug_buf_put_u32(&b, 1);
	ug_buf_put_u32(&b, 1);
	raw_str(&b, "", 0);
	decode_buf_fails(&b, "HELLO: magic 0x53534800 is not 0x55475244");
	ug_buf_release(&b);

	/* NUL inside a name or channel: would be cut short when copied */
	ug_buf_init(&b, 4096);
	ug_buf_put_u8(&b, UG_MSG_WELCOME);
	ug_buf_put_u32(&b, 1);
	ug_buf_put_u32(&b, 0);
	raw_str(&b, "ab\0cd", 5);
	decode_buf_fails(&b, "WELCOME: name contains a NUL byte");
	ug_buf_release(&b);

	ug_buf_init(&b, 4096);
	ug_buf_put_u8(&b, UG_MSG_GET_REF);
	raw_str(&b, "stable\0../x", 11);
	decode_buf_fails(&b, "GET_REF: channel contains a NUL byte");
	ug_buf_release(&b);

	/* a string length far past the frame */
	ug_buf_init(&b, 4096);
	ug_buf_put_u8(&b, UG_MSG_REPORT);
	ug_buf_put_u32(&b, UINT32_MAX);
	ug_buf_put(&b, "{}", 2);
	decode_buf_fails(&b, "REPORT: text of 4294967295 bytes exceeds");
	ug_buf_release(&b);

	ug_buf_init(&b, 4096);
	ug_buf_put_u8(&b, UG_MSG_REPORT);
	ug_buf_put_u32(&b, 100);
	ug_buf_put(&b, "{}", 2);
	decode_buf_fails(&b, "REPORT: text field truncated");
	ug_buf_release(&b);

	/* a channel longer than the limit, with the bytes present */
	ug_buf_init(&b, 4096);
	ug_buf_put_u8(&b, UG_MSG_LIST);
	raw_str(&b, "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa", 100);
	decode_buf_fails(&b, "LIST: channel of 100 bytes exceeds the 64-byte limit");
	ug_buf_release(&b);

	/* too many versions: refused on the count, before it sizes a read */
	ug_buf_init(&b, 4096);
	ug_buf_put_u8(&b, UG_MSG_VERSIONS);
	ug_buf_put_u32(&b, UG_PROTO_VERSIONS_MAX + 1);
	decode_buf_fails(&b, "VERSIONS: 4097 versions exceed the limit of 4096");
	ug_buf_release(&b);
	ug_buf_init(&b, 4096);
	ug_buf_put_u8(&b, UG_MSG_VERSIONS);
	ug_buf_put_u32(&b, UINT32_MAX);
	ug_buf_put_u64(&b, 1);
	decode_buf_fails(&b, "exceed the limit");
	ug_buf_release(&b);
}

/* ---------------------------------------------------------------- fuzz */

static uint64_t xorshift(uint64_t *s)
{
	uint64_t x = *s;

	x ^= x << 13;
	x ^= x >> 7;
	x ^= x << 17;
	return *s = x;
}

/* Decode p; if it is accepted, encoding the result must give back the
 * very same bytes (the codec has one spelling for each message). */
static int fuzz_one(const uint8_t *p, size_t n)
{
	uint8_t *copy = malloc(n ? n : 1);
	struct ug_error err = { { 0 } };
	struct ug_msg m;
	int r;

	cr_assert_not_null(copy);
	if (n)
		memcpy(copy, p, n);
	r = ug_msg_decode(copy, n, &m, &err);
	cr_assert(r == 0 || r == -EPROTO, "decode gave %d", r);
	if (r == 0) {
		struct ug_buf b;

		ug_buf_init(&b, (size_t)UG_PROTO_FRAME_MAX + 4);
		cr_assert_eq(ug_msg_encode(&m, &b), 0, "accepted %s does not encode",
			     ug_msg_type_name(m.type));
		cr_assert_eq(b.len, n + 4);
		cr_assert(memcmp(b.data + 4, copy, n) == 0, "%s re-encodes differently",
			  ug_msg_type_name(m.type));
		ug_buf_release(&b);
	} else {
		cr_assert_neq(err.msg[0], '\0', "a refusal without a reason");
	}
	free(copy);
	return r;
}

Test(proto, fuzz_random_frames)
{
	static const uint8_t types[] = {
		0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x10, 0x11, 0x12, 0x13, 0x14,
		0x20, 0x21, 0x22, 0x23, 0x30, 0x31, 0x32,
	};
	uint64_t s = 0x9e3779b97f4a7c15ull;
	uint8_t buf[160];
	unsigned ok = 0;

	for (int i = 0; i < 20000; i++) {
		size_t n = xorshift(&s) % sizeof(buf);

		for (size_t k = 0; k < n; k++)
			buf[k] = (uint8_t)xorshift(&s);
		if (n && xorshift(&s) % 4)
			buf[0] = types[xorshift(&s) % sizeof(types)];
		/* small string lengths now and then, so later fields get parsed */
		if (n > 5 && xorshift(&s) % 2)
			buf[1] = buf[2] = buf[3] = 0;
		if (fuzz_one(buf, n) == 0)
			ok++;
	}
	cr_assert_gt(ok, 0, "some random frames are valid (DATA, BLOB, OK...)");
}

Test(proto, fuzz_mutated_frames)
{
	uint64_t s = 0x1234567887654321ull;
	struct ug_buf raw[18];
	unsigned nraw = 0, ok = 0;
	struct ug_msg m;

	for (unsigned i = 0; sample(i, &m); i++) {
		ug_buf_init(&raw[nraw], 1 << 16);
		raw_encode(&m, &raw[nraw]);
		nraw++;
	}
	for (int i = 0; i < 20000; i++) {
		const struct ug_buf *src = &raw[xorshift(&s) % nraw];
		uint8_t buf[256];
		size_t n = src->len;
		unsigned flips = 1 + (unsigned)(xorshift(&s) % 3);

		cr_assert_leq(n, sizeof(buf) - 8);
		memcpy(buf, src->data, n);
		for (unsigned f = 0; f < flips; f++) {
			size_t at = xorshift(&s) % n;
			uint64_t how = xorshift(&s);

			if (how % 3 == 0)
				buf[at] ^= (uint8_t)(1u << (how >> 8) % 8);
			else
				buf[at] = (uint8_t)(how >> 16);
		}
		switch (xorshift(&s) % 4) {
		case 0:
			n = xorshift(&s) % (n + 1);
			break;
		case 1:
			n += xorshift(&s) % 8;
			break;
		default:
			break;
		}
		if (fuzz_one(buf, n) == 0)
			ok++;
	}
	cr_assert_gt(ok, 100, "mutations that stay valid get through (%u)", ok);
	for (unsigned i = 0; i < nraw; i++)
		ug_buf_release(&raw[i]);
}

/* ---------------------------------------------------------------- over a pipe */

struct pipe_conn {
	int fd[2];           /* fd[1]: the test writes raw bytes here */
	struct ug_conn *c;   /* reads fd[0] */
};

static void pipe_open(struct pipe_conn *p)
{
	cr_assert_eq(pipe2(p->fd, O_CLOEXEC), 0);
	cr_assert_eq(ug_conn_fd_new(p->fd[0], -1, false, &p->c), 0);
	p->c->timeout_ms = 5000; /* a bug fails the test instead of hanging it */
}

static void pipe_close(struct pipe_conn *p)
{
	ug_conn_close(p->c);
	close(p->fd[0]);
	if (p->fd[1] >= 0)
		close(p->fd[1]);
}

static void pipe_write(struct pipe_conn *p, const void *data, size_t n)
{
	cr_assert_eq(ug_write_all(p->fd[1], data, n), 0);
}

static void pipe_eof(struct pipe_conn *p)
{
	close(p->fd[1]);
	p->fd[1] = -1;
}

Test(proto, recv_valid_frames_then_eof)
{
	struct pipe_conn p;
	struct ug_buf frame, enc;
	struct ug_error err = { { 0 } };
	struct ug_msg m, out;
	size_t first;

	pipe_open(&p);
	ug_buf_init(&enc, 1 << 16);
	sample(0, &m);
	cr_assert_eq(ug_msg_encode(&m, &enc), 0);
	first = enc.len;
	sample(10, &m);
	cr_assert_eq(ug_msg_encode(&m, &enc), 0);
	/* two frames in one write: recv takes exactly one at a time */
	pipe_write(&p, enc.data, enc.len);
	pipe_eof(&p);

	ug_buf_init(&frame, UG_PROTO_FRAME_MAX);
	cr_assert_eq(ug_proto_recv(p.c, &frame, &out, &err), 0, "%s", err.msg);
	sample(0, &m);
	assert_msg_eq(&m, &out);
	cr_assert_eq(p.c->bytes_in, first);

	cr_assert_eq(ug_proto_recv(p.c, &frame, &out, &err), 0, "%s", err.msg);
	sample(10, &m);
	assert_msg_eq(&m, &out);
	cr_assert_eq(p.c->bytes_in, enc.len);

	cr_assert_eq(ug_proto_recv(p.c, &frame, &out, &err), -EPIPE);
	ug_buf_release(&frame);
	ug_buf_release(&enc);
	pipe_close(&p);
}

Test(proto, recv_clean_eof_is_epipe)
{
	struct pipe_conn p;
	struct ug_buf frame;
	struct ug_error err = { { 0 } };
	struct ug_msg out;

	pipe_open(&p);
	pipe_eof(&p);
	ug_buf_init(&frame, UG_PROTO_FRAME_MAX);
	cr_assert_eq(ug_proto_recv(p.c, &frame, &out, &err), -EPIPE);
	ug_buf_release(&frame);
	pipe_close(&p);
}

Test(proto, recv_oversized_length_refused_before_body)
{
	static const uint8_t hdr[] = { 0x00, 0x10, 0x00, 0x01, UG_MSG_DATA, 1, 2, 3 };
	struct pipe_conn p;
	struct ug_buf frame;
	struct ug_error err = { { 0 } };
	struct ug_msg out;

	pipe_open(&p);
	/* no EOF: a reader that tried to take the body would time out */
	p.c->timeout_ms = 2000;
	pipe_write(&p, hdr, sizeof(hdr));
	ug_buf_init(&frame, UG_PROTO_FRAME_MAX);
	cr_assert_eq(ug_proto_recv(p.c, &frame, &out, &err), -EPROTO);
	cr_assert_str_eq(err.msg, "frame of 1048577 bytes exceeds the 1048576-byte limit");
	cr_assert_eq(p.c->bytes_in, 4, "only the length was read (%llu bytes)",
		     (unsigned long long)p.c->bytes_in);
	cr_assert_lt(frame.alloc, 4096, "nothing sized by the length was allocated");
	ug_buf_release(&frame);
	pipe_close(&p);
}

Test(proto, recv_huge_and_zero_lengths)
{
	static const uint8_t huge[] = { 0xff, 0xff, 0xff, 0xff };
	static const uint8_t zero[] = { 0, 0, 0, 0 };
	struct pipe_conn p;
	struct ug_buf frame;
	struct ug_error err = { { 0 } };
	struct ug_msg out;

	pipe_open(&p);
	ug_buf_init(&frame, UG_PROTO_FRAME_MAX);
	pipe_write(&p, huge, sizeof(huge));
	cr_assert_eq(ug_proto_recv(p.c, &frame, &out, &err), -EPROTO);
	cr_assert(strstr(err.msg, "4294967295 bytes exceeds"), "%s", err.msg);
	cr_assert_lt(frame.alloc, 4096);
	pipe_write(&p, zero, sizeof(zero));
	cr_assert_eq(ug_proto_recv(p.c, &frame, &out, &err), -EPROTO);
	cr_assert(strstr(err.msg, "empty frame"), "%s", err.msg);
	ug_buf_release(&frame);
	pipe_close(&p);
}

Test(proto, recv_truncated_body)
{
	static const uint8_t part[] = { 0, 0, 0, 10, UG_MSG_BLOB, 0, 0 };
	struct pipe_conn p;
	struct ug_buf frame;
	struct ug_error err = { { 0 } };
	struct ug_msg out;

	pipe_open(&p);
	pipe_write(&p, part, sizeof(part));
	pipe_eof(&p);
	ug_buf_init(&frame, UG_PROTO_FRAME_MAX);
	cr_assert_eq(ug_proto_recv(p.c, &frame, &out, &err), -EPROTO);
	cr_assert(strstr(err.msg, "truncated frame"), "%s", err.msg);
	ug_buf_release(&frame);
	pipe_close(&p);
}

Test(proto, recv_truncated_length)
{
	static const uint8_t part[] = { 0, 0 };
	struct pipe_conn p;
	struct ug_buf frame;
	struct ug_error err = { { 0 } };
	struct ug_msg out;

	pipe_open(&p);
	pipe_write(&p, part, sizeof(part));
	pipe_eof(&p);
	ug_buf_init(&frame, UG_PROTO_FRAME_MAX);
	cr_assert_eq(ug_proto_recv(p.c, &frame, &out, &err), -EPROTO);
	cr_assert(strstr(err.msg, "truncated frame"), "%s", err.msg);
	ug_buf_release(&frame);
	pipe_close(&p);
}

Test(proto, recv_malformed_body)
{
	static const uint8_t bad[] = { 0, 0, 0, 2, 0x7f, 0 };
	struct pipe_conn p;
	struct ug_buf frame;
	struct ug_error err = { { 0 } };
	struct ug_msg out;

	pipe_open(&p);
	pipe_write(&p, bad, sizeof(bad));
	ug_buf_init(&frame, UG_PROTO_FRAME_MAX);
	cr_assert_eq(ug_proto_recv(p.c, &frame, &out, &err), -EPROTO);
	cr_assert_str_eq(err.msg, "frame type 0x7f is unknown");
	ug_buf_release(&frame);
	pipe_close(&p);
}

Test(proto, recv_timeout)
{
	struct pipe_conn p;
	struct ug_buf frame;
	struct ug_error err = { { 0 } };
	struct ug_msg out;

	pipe_open(&p);
	p.c->timeout_ms = 50;
	ug_buf_init(&frame, UG_PROTO_FRAME_MAX);
	cr_assert_eq(ug_proto_recv(p.c, &frame, &out, &err), -ETIMEDOUT);
	ug_buf_release(&frame);
	pipe_close(&p);
}

Test(proto, send_then_recv_every_type)
{
	struct pipe_conn p;
	struct ug_conn *w;
	struct ug_buf frame;
	struct ug_error err = { { 0 } };
	struct ug_msg m, out;
	uint64_t expect = 0;
	unsigned n = 0;

	pipe_open(&p);
	cr_assert_eq(ug_conn_fd_new(-1, p.fd[1], false, &w), 0);
	/* every sample frame is small: together they fit in the pipe */
	for (unsigned i = 0; sample(i, &m); i++, n++) {
		struct ug_buf enc;

		ug_buf_init(&enc, 1 << 16);
		cr_assert_eq(ug_msg_encode(&m, &enc), 0);
		expect += enc.len;
		ug_buf_release(&enc);
		cr_assert_eq(ug_proto_send(w, &m), 0);
		cr_assert_eq(w->bytes_out, expect, "one write of the whole frame");
	}
	cr_assert_eq(ug_proto_send_data(w, "hello", 5), 0);
	cr_assert_eq(w->bytes_out, expect + 4 + 1 + 5);

	ug_buf_init(&frame, UG_PROTO_FRAME_MAX);
	for (unsigned i = 0; i < n; i++) {
		sample(i, &m);
		cr_assert_eq(ug_proto_recv(p.c, &frame, &out, &err), 0, "%u: %s", i, err.msg);
		assert_msg_eq(&m, &out);
	}
	cr_assert_eq(ug_proto_recv(p.c, &frame, &out, &err), 0, "%s", err.msg);
	cr_assert_eq(out.type, UG_MSG_DATA);
	cr_assert_eq(out.data_len, 5);
	cr_assert(memcmp(out.data, "hello", 5) == 0);
	cr_assert_eq(p.c->bytes_in, w->bytes_out, "every byte sent was read");
	ug_buf_release(&frame);
	ug_conn_close(w);
	pipe_close(&p);
}

Test(proto, send_refuses_bad_messages_without_writing)
{
	struct pipe_conn p;
	struct ug_conn *w;
	struct ug_msg m = mk(UG_MSG_GET);

	pipe_open(&p);
	cr_assert_eq(ug_conn_fd_new(-1, p.fd[1], false, &w), 0);
	cr_assert_eq(ug_proto_send(w, &m), -EINVAL);
	cr_assert_eq(ug_proto_send_data(w, "x", 0), -EINVAL);
	cr_assert_eq(ug_proto_send_data(w, big_data, UG_PROTO_CHUNK + 1), -EINVAL);
	cr_assert_eq(w->bytes_out, 0);
	ug_conn_close(w);
	/* and nothing reached the pipe */
	pipe_eof(&p);
	{
		struct ug_buf frame;
		struct ug_msg out;

		ug_buf_init(&frame, UG_PROTO_FRAME_MAX);
		cr_assert_eq(ug_proto_recv(p.c, &frame, &out, NULL), -EPIPE);
		ug_buf_release(&frame);
	}
	pipe_close(&p);
}

/* A full chunk is bigger than a pipe holds: a forked writer sends while
 * this process reads. */
Test(proto, send_data_full_chunk_through_pipe)
{
	static uint8_t chunk[UG_PROTO_CHUNK];
	struct pipe_conn p;
	struct ug_buf frame;
	struct ug_error err = { { 0 } };
	struct ug_msg out;
	pid_t pid;
	int status;

	for (size_t k = 0; k < sizeof(chunk); k++)
		chunk[k] = (uint8_t)(k ^ (k >> 8));
	pipe_open(&p);
	pid = fork();
	cr_assert_geq(pid, 0);
	if (pid == 0) {
		struct ug_conn *w;
		int r = ug_conn_fd_new(-1, p.fd[1], false, &w);

		if (r == 0)
			r = ug_proto_send_data(w, chunk, sizeof(chunk));
		if (r == 0)
			r = ug_proto_send_data(w, chunk, 3);
		_exit(r == 0 ? 0 : 1);
	}
	pipe_eof(&p);
	ug_buf_init(&frame, UG_PROTO_FRAME_MAX);
	cr_assert_eq(ug_proto_recv(p.c, &frame, &out, &err), 0, "%s", err.msg);
	cr_assert_eq(out.type, UG_MSG_DATA);
	cr_assert_eq(out.data_len, sizeof(chunk));
	cr_assert(memcmp(out.data, chunk, sizeof(chunk)) == 0);
	cr_assert_eq(ug_proto_recv(p.c, &frame, &out, &err), 0, "%s", err.msg);
	cr_assert_eq(out.data_len, 3);
	cr_assert_eq(ug_proto_recv(p.c, &frame, &out, &err), -EPIPE);
	cr_assert_eq(p.c->bytes_in, (4 + 1 + sizeof(chunk)) + (4 + 1 + 3));
	cr_assert_eq(waitpid(pid, &status, 0), pid);
	cr_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0);
	ug_buf_release(&frame);
	pipe_close(&p);
}

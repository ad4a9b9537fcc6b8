/* test-buf.c - unit tests for src/buf.c: the bounded buffer, its big-endian
 * getters and putters, the hard maximum and short reads. */
#include "config.h"

#include <criterion/criterion.h>

#include <stdlib.h>
#include <string.h>

#include "buf.h"
#include "util.h"

TestSuite(buf, .timeout = 20);

static void assert_bytes(const struct ug_buf *b, const uint8_t *want, size_t n)
{
	cr_assert_eq(b->len, n, "len %zu, want %zu", b->len, n);
	cr_assert(memcmp(b->data, want, n) == 0, "bytes differ");
}

Test(buf, init_is_empty)
{
	struct ug_buf b;

	memset(&b, 0xa5, sizeof(b));
	ug_buf_init(&b, 123);
	cr_assert_null(b.data);
	cr_assert_eq(b.len, 0);
	cr_assert_eq(b.off, 0);
	cr_assert_eq(b.alloc, 0);
	cr_assert_eq(b.max, 123);
	cr_assert_eq(ug_buf_avail(&b), 0);
	ug_buf_release(&b);
}

Test(buf, put_u8_u32_u64_exact_bytes)
{
	static const uint8_t want[] = {
		0xab,
		0x01, 0x02, 0x03, 0x04,
		0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07, 0x08,
		0xff, 0xff, 0xff, 0xff,
		0x80, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x01,
		0x00,
	};
	struct ug_buf b;

	ug_buf_init(&b, 1024);
	cr_assert_eq(ug_buf_put_u8(&b, 0xab), 0);
	cr_assert_eq(ug_buf_put_u32(&b, 0x01020304u), 0);
	cr_assert_eq(ug_buf_put_u64(&b, 0x0102030405060708ull), 0);
	cr_assert_eq(ug_buf_put_u32(&b, UINT32_MAX), 0);
	cr_assert_eq(ug_buf_put_u64(&b, 0x8000000000000001ull), 0);
	cr_assert_eq(ug_buf_put_u8(&b, 0), 0);
	assert_bytes(&b, want, sizeof(want));
	cr_assert_eq(b.off, 0, "putting does not consume");
	ug_buf_release(&b);
}

Test(buf, get_u8_u32_u64_from_known_bytes)
{
	static const uint8_t in[] = {
		0x7f,
		0xde, 0xad, 0xbe, 0xef,
		0xfe, 0xdc, 0xba, 0x98, 0x76, 0x54, 0x32, 0x10,
	};
	struct ug_buf b;
	uint8_t v8 = 0;
	uint32_t v32 = 0;
	uint64_t v64 = 0;

	ug_buf_init(&b, 64);
	cr_assert_eq(ug_buf_put(&b, in, sizeof(in)), 0);
	cr_assert_eq(ug_buf_get_u8(&b, &v8), 0);
	cr_assert_eq(v8, 0x7f);
	cr_assert_eq(b.off, 1);
	cr_assert_eq(ug_buf_get_u32(&b, &v32), 0);
	cr_assert_eq(v32, 0xdeadbeefu);
	cr_assert_eq(b.off, 5);
	cr_assert_eq(ug_buf_get_u64(&b, &v64), 0);
	cr_assert_eq(v64, 0xfedcba9876543210ull);
	cr_assert_eq(b.off, 13);
	cr_assert_eq(ug_buf_avail(&b), 0);
	ug_buf_release(&b);
}

Test(buf, round_trip_extremes)
{
	static const uint64_t v64[] = { 0, 1, 0xff, 0x100, UINT32_MAX, (uint64_t)UINT32_MAX + 1,
					0x8000000000000000ull, UINT64_MAX };
	static const uint32_t v32[] = { 0, 1, 0x80, 0xffff, 0x10000, 0x80000000u, UINT32_MAX };
	struct ug_buf b;

	ug_buf_init(&b, 4096);
	for (size_t i = 0; i < sizeof(v64) / sizeof(v64[0]); i++)
		cr_assert_eq(ug_buf_put_u64(&b, v64[i]), 0);
	for (size_t i = 0; i < sizeof(v32) / sizeof(v32[0]); i++)
		cr_assert_eq(ug_buf_put_u32(&b, v32[i]), 0);
	for (unsigned i = 0; i < 256; i++)
		cr_assert_eq(ug_buf_put_u8(&b, (uint8_t)i), 0);
	for (size_t i = 0; i < sizeof(v64) / sizeof(v64[0]); i++) {
		uint64_t got;
		cr_assert_eq(ug_buf_get_u64(&b, &got), 0);
		cr_assert_eq(got, v64[i]);
	}
	for (size_t i = 0; i < sizeof(v32) / sizeof(v32[0]); i++) {
		uint32_t got;
		cr_assert_eq(ug_buf_get_u32(&b, &got), 0);
		cr_assert_eq(got, v32[i]);
	}
	for (unsigned i = 0; i < 256; i++) {
		uint8_t got;
		cr_assert_eq(ug_buf_get_u8(&b, &got), 0);
		cr_assert_eq(got, i);
	}
	cr_assert_eq(ug_buf_avail(&b), 0);
	ug_buf_release(&b);
}

Test(buf, put_get_raw_and_skip)
{
	struct ug_buf b;
	char out[8];

	ug_buf_init(&b, 64);
	cr_assert_eq(ug_buf_put(&b, "hello world", 11), 0);
	cr_assert_eq(ug_buf_put(&b, NULL, 0), 0, "an empty put is fine");
	cr_assert_eq(b.len, 11);
	cr_assert_eq(ug_buf_get(&b, out, 5), 0);
	cr_assert(memcmp(out, "hello", 5) == 0);
	cr_assert_eq(ug_buf_skip(&b, 1), 0);
	cr_assert_eq(ug_buf_avail(&b), 5);
	cr_assert(memcmp(ug_buf_ptr(&b), "world", 5) == 0);
	cr_assert_eq(ug_buf_get(&b, out, 0), 0);
	cr_assert_eq(ug_buf_skip(&b, 0), 0);
	cr_assert_eq(ug_buf_skip(&b, 5), 0);
	cr_assert_eq(ug_buf_avail(&b), 0);
	cr_assert_eq(b.off, b.len);
	ug_buf_release(&b);
}

/* A short read fails with -EBADMSG and leaves the read position, the
 * remaining bytes and the output untouched. */
Test(buf, short_reads)
{
	static const uint8_t in[] = { 1, 2, 3, 4, 5, 6, 7 };
	struct ug_buf b;
	uint8_t v8 = 0x55, raw[16];
	uint32_t v32 = 0x55555555u;
	uint64_t v64 = 0x5555555555555555ull;

	ug_buf_init(&b, 64);
	cr_assert_eq(ug_buf_get_u8(&b, &v8), -EBADMSG, "empty buffer");
	cr_assert_eq(ug_buf_get_u32(&b, &v32), -EBADMSG);
	cr_assert_eq(ug_buf_get_u64(&b, &v64), -EBADMSG);
	cr_assert_eq(ug_buf_skip(&b, 1), -EBADMSG);
	cr_assert_eq(b.off, 0);

	cr_assert_eq(ug_buf_put(&b, in, sizeof(in)), 0);
	cr_assert_eq(ug_buf_get_u64(&b, &v64), -EBADMSG, "7 bytes are not a u64");
	cr_assert_eq(b.off, 0);
	cr_assert_eq(v64, 0x5555555555555555ull);

	cr_assert_eq(ug_buf_skip(&b, 4), 0);
	cr_assert_eq(ug_buf_get_u32(&b, &v32), -EBADMSG, "3 bytes are not a u32");
	cr_assert_eq(v32, 0x55555555u);
	cr_assert_eq(b.off, 4);
	cr_assert_eq(ug_buf_get_u64(&b, &v64), -EBADMSG);
	cr_assert_eq(b.off, 4);

	memset(raw, 0x55, sizeof(raw));
	cr_assert_eq(ug_buf_get(&b, raw, 4), -EBADMSG);
	for (size_t i = 0; i < sizeof(raw); i++)
		cr_assert_eq(raw[i], 0x55, "output written on a short read");
	cr_assert_eq(ug_buf_skip(&b, 4), -EBADMSG);
	cr_assert_eq(ug_buf_skip(&b, SIZE_MAX), -EBADMSG);
	cr_assert_eq(ug_buf_get(&b, raw, SIZE_MAX), -EBADMSG);
	cr_assert_eq(b.off, 4);
	cr_assert_eq(ug_buf_avail(&b), 3);

	/* the remaining bytes are still readable after the failures */
	cr_assert_eq(ug_buf_get_u8(&b, &v8), 0);
	cr_assert_eq(v8, 5);
	cr_assert_eq(ug_buf_get(&b, raw, 2), 0);
	cr_assert_eq(raw[0], 6);
	cr_assert_eq(raw[1], 7);
	cr_assert_eq(ug_buf_get_u8(&b, &v8), -EBADMSG);
	cr_assert_eq(b.off, 7);
	cr_assert_eq(b.off, b.len, "read position past the end");
	ug_buf_release(&b);
}

/* Growing past max fails with -E2BIG and leaves the buffer as it was. */
Test(buf, max_cap)
{
	static const uint8_t eight[] = { 1, 2, 3, 4, 5, 6, 7, 8 };
	struct ug_buf b;
	uint8_t *room = (uint8_t *)"untouched";

	ug_buf_init(&b, 8);
	cr_assert_eq(ug_buf_put(&b, eight, 5), 0);
	cr_assert_eq(ug_buf_put_u32(&b, 0xffffffffu), -E2BIG);
	assert_bytes(&b, eight, 5);
	cr_assert_eq(ug_buf_put_u64(&b, UINT64_MAX), -E2BIG);
	assert_bytes(&b, eight, 5);
	cr_assert_eq(ug_buf_put(&b, eight, 4), -E2BIG);
	assert_bytes(&b, eight, 5);
	cr_assert_eq(ug_buf_putf(&b, "%s", "four"), -E2BIG);
	assert_bytes(&b, eight, 5);
	cr_assert_eq(ug_buf_reserve(&b, 4, &room), -E2BIG);
	cr_assert_str_eq((const char *)room, "untouched", "ret set on failure");
	cr_assert_eq(ug_buf_reserve(&b, SIZE_MAX, &room), -E2BIG, "len + n overflows");
	cr_assert_eq(ug_buf_put(&b, eight, SIZE_MAX), -E2BIG);
	assert_bytes(&b, eight, 5);

	/* exactly up to max is fine */
	cr_assert_eq(ug_buf_put(&b, eight + 5, 3), 0);
	assert_bytes(&b, eight, 8);
	cr_assert_eq(ug_buf_put_u8(&b, 9), -E2BIG);
	assert_bytes(&b, eight, 8);
	cr_assert_leq(b.alloc, b.max + 1, "allocated past the cap");

	/* consuming does not make room: max caps len, not unread bytes */
	cr_assert_eq(ug_buf_skip(&b, 8), 0);
	cr_assert_eq(ug_buf_put_u8(&b, 9), -E2BIG);
	ug_buf_release(&b);
}

/* A u64 that does not fit must not leave half of itself behind. */
Test(buf, max_cap_u64_is_all_or_nothing)
{
	struct ug_buf b;

	ug_buf_init(&b, 6);
	cr_assert_eq(ug_buf_put_u64(&b, 0x0102030405060708ull), -E2BIG);
	cr_assert_eq(b.len, 0);
	cr_assert_eq(ug_buf_put_u8(&b, 0xee), 0);
	cr_assert_eq(ug_buf_put_u64(&b, 1), -E2BIG);
	assert_bytes(&b, (const uint8_t *)"\xee", 1);
	ug_buf_release(&b);
}

Test(buf, max_zero)
{
	struct ug_buf b;
	uint8_t *room = NULL, *data = NULL, v;
	size_t len = 99;

	ug_buf_init(&b, 0);
	cr_assert_eq(ug_buf_put_u8(&b, 1), -E2BIG);
	cr_assert_eq(ug_buf_put_u32(&b, 1), -E2BIG);
	cr_assert_eq(ug_buf_put_u64(&b, 1), -E2BIG);
	cr_assert_eq(ug_buf_putf(&b, "x"), -E2BIG);
	cr_assert_eq(b.len, 0);
	cr_assert_eq(ug_buf_reserve(&b, 1, &room), -E2BIG);
	cr_assert_eq(ug_buf_reserve(&b, 0, &room), 0, "no growth needed");
	cr_assert_not_null(room);
	cr_assert_eq(ug_buf_put(&b, NULL, 0), 0);
	cr_assert_eq(ug_buf_putf(&b, "%s", ""), 0);
	cr_assert_eq(b.len, 0);
	cr_assert_eq(ug_buf_get_u8(&b, &v), -EBADMSG);
	cr_assert_eq(ug_buf_steal(&b, &data, &len), 0);
	cr_assert_eq(len, 0);
	cr_assert_not_null(data);
	cr_assert_eq(data[0], '\0');
	free(data);
	cr_assert_eq(b.max, 0);
	cr_assert_eq(ug_buf_put_u8(&b, 1), -E2BIG, "still capped after steal");
	ug_buf_release(&b);
}

/* max = SIZE_MAX means "no cap of our own": max + 1 must not wrap. */
Test(buf, max_size_max)
{
	struct ug_buf b;
	uint8_t chunk[1000];

	for (size_t i = 0; i < sizeof(chunk); i++)
		chunk[i] = (uint8_t)(i * 7);
	ug_buf_init(&b, SIZE_MAX);
	for (int i = 0; i < 5; i++)
		cr_assert_eq(ug_buf_put(&b, chunk, sizeof(chunk)), 0);
	cr_assert_eq(b.len, 5 * sizeof(chunk));
	cr_assert_geq(b.alloc, b.len + 1);
	for (int i = 0; i < 5; i++)
		cr_assert(memcmp(b.data + i * sizeof(chunk), chunk, sizeof(chunk)) == 0);
	cr_assert_eq(ug_buf_reserve(&b, SIZE_MAX, NULL), -E2BIG);
	cr_assert_eq(ug_buf_reserve(&b, SIZE_MAX - b.len, NULL), -E2BIG);
	cr_assert_eq(b.len, 5 * sizeof(chunk));
	ug_buf_release(&b);
}

Test(buf, grows_across_many_reallocs)
{
	struct ug_buf b;

	ug_buf_init(&b, 1u << 20);
	for (uint32_t i = 0; i < 50000; i++)
		cr_assert_eq(ug_buf_put_u32(&b, i * 2654435761u), 0);
	cr_assert_eq(b.len, 200000);
	cr_assert_leq(b.alloc, b.max + 1);
	for (uint32_t i = 0; i < 50000; i++) {
		uint32_t v;
		cr_assert_eq(ug_buf_get_u32(&b, &v), 0);
		cr_assert_eq(v, i * 2654435761u);
	}
	ug_buf_release(&b);
}

Test(buf, reserve_commit)
{
	struct ug_buf b;
	uint8_t *room = NULL;

	ug_buf_init(&b, 32);
	cr_assert_eq(ug_buf_put(&b, "ab", 2), 0);
	cr_assert_eq(ug_buf_reserve(&b, 10, &room), 0);
	cr_assert_eq(b.len, 2, "reserve does not change len");
	cr_assert_eq(room, b.data + 2);
	cr_assert_geq(b.alloc, 12);
	memcpy(room, "0123456789", 10);
	ug_buf_commit(&b, 10);
	assert_bytes(&b, (const uint8_t *)"ab0123456789", 12);

	/* commit less than reserved */
	cr_assert_eq(ug_buf_reserve(&b, 20, &room), 0);
	memcpy(room, "xyz", 3);
	ug_buf_commit(&b, 3);
	assert_bytes(&b, (const uint8_t *)"ab0123456789xyz", 15);

	cr_assert_eq(ug_buf_reserve(&b, 18, &room), -E2BIG, "15 + 18 > 32");
	cr_assert_eq(ug_buf_reserve(&b, 17, NULL), 0, "ret may be NULL");
	cr_assert_eq(b.len, 15);
	ug_buf_release(&b);
}

/* Reserved room survives a later reserve that reallocates. */
Test(buf, reserve_larger_than_initial_alloc)
{
	struct ug_buf b;
	uint8_t *room;

	ug_buf_init(&b, 1u << 16);
	cr_assert_eq(ug_buf_reserve(&b, 5000, &room), 0);
	memset(room, 'r', 5000);
	ug_buf_commit(&b, 5000);
	cr_assert_eq(ug_buf_put(&b, "end", 3), 0);
	cr_assert_eq(b.len, 5003);
	for (size_t i = 0; i < 5000; i++)
		cr_assert_eq(b.data[i], 'r');
	cr_assert(memcmp(b.data + 5000, "end", 3) == 0);
	ug_buf_release(&b);
}

Test(buf, putf)
{
	struct ug_buf b;
	char big[1000];

	ug_buf_init(&b, 4096);
	cr_assert_eq(ug_buf_putf(&b, "x=%d %s", 42, "abc"), 0);
	assert_bytes(&b, (const uint8_t *)"x=42 abc", 8);
	cr_assert_eq(ug_buf_putf(&b, "|%05u|", 7u), 0);
	assert_bytes(&b, (const uint8_t *)"x=42 abc|00007|", 15);
	cr_assert_eq(ug_buf_putf(&b, "%s", ""), 0);
	cr_assert_eq(b.len, 15);

	/* longer than the first allocation */
	memset(big, 'q', sizeof(big) - 1);
	big[sizeof(big) - 1] = '\0';
	cr_assert_eq(ug_buf_putf(&b, "<%s>", big), 0);
	cr_assert_eq(b.len, 15 + 1001);
	cr_assert_eq(b.data[15], '<');
	cr_assert_eq(b.data[15 + 1000], '>');
	cr_assert_eq(b.data[500], 'q');
	ug_buf_release(&b);
}

Test(buf, putf_exactly_to_max)
{
	struct ug_buf b;

	ug_buf_init(&b, 5);
	cr_assert_eq(ug_buf_putf(&b, "%d", 12345), 0);
	assert_bytes(&b, (const uint8_t *)"12345", 5);
	cr_assert_eq(ug_buf_putf(&b, "%d", 6), -E2BIG);
	assert_bytes(&b, (const uint8_t *)"12345", 5);
	ug_buf_release(&b);
}

Test(buf, steal)
{
	struct ug_buf b;
	uint8_t *data = NULL;
	size_t len = 0;

	ug_buf_init(&b, 100);
	cr_assert_eq(ug_buf_putf(&b, "hello"), 0);
	cr_assert_eq(ug_buf_steal(&b, &data, &len), 0);
	cr_assert_eq(len, 5);
	cr_assert_str_eq((char *)data, "hello");
	cr_assert_eq(data[5], '\0');
	cr_assert_null(b.data, "buffer not left empty");
	cr_assert_eq(b.len, 0);
	cr_assert_eq(b.off, 0);
	cr_assert_eq(b.alloc, 0);
	cr_assert_eq(b.max, 100, "max survives steal");
	free(data);

	/* the buffer is reusable */
	cr_assert_eq(ug_buf_put(&b, "again", 5), 0);
	assert_bytes(&b, (const uint8_t *)"again", 5);

	/* only the unread bytes are handed over */
	cr_assert_eq(ug_buf_skip(&b, 2), 0);
	cr_assert_eq(ug_buf_steal(&b, &data, &len), 0);
	cr_assert_eq(len, 3);
	cr_assert_str_eq((char *)data, "ain");
	free(data);

	/* an empty (never allocated) buffer gives an empty string */
	cr_assert_eq(ug_buf_steal(&b, &data, &len), 0);
	cr_assert_eq(len, 0);
	cr_assert_not_null(data);
	cr_assert_eq(data[0], '\0');
	free(data);
	ug_buf_release(&b);
}

Test(buf, steal_binary_keeps_nuls)
{
	struct ug_buf b;
	uint8_t *data = NULL;
	size_t len = 0;

	ug_buf_init(&b, 100);
	cr_assert_eq(ug_buf_put(&b, "a\0b", 3), 0);
	cr_assert_eq(ug_buf_steal(&b, &data, &len), 0);
	cr_assert_eq(len, 3);
	cr_assert(memcmp(data, "a\0b\0", 4) == 0);
	free(data);
}

Test(buf, release_and_reset)
{
	struct ug_buf b;
	size_t alloc;

	ug_buf_init(&b, 1000);
	cr_assert_eq(ug_buf_put(&b, "0123456789", 10), 0);
	cr_assert_eq(ug_buf_skip(&b, 3), 0);
	alloc = b.alloc;
	ug_buf_reset(&b);
	cr_assert_eq(b.len, 0);
	cr_assert_eq(b.off, 0);
	cr_assert_eq(ug_buf_avail(&b), 0);
	cr_assert_eq(b.alloc, alloc, "reset keeps the allocation");
	cr_assert_eq(b.max, 1000);
	cr_assert_eq(ug_buf_put(&b, "xy", 2), 0);
	assert_bytes(&b, (const uint8_t *)"xy", 2);

	ug_buf_release(&b);
	cr_assert_null(b.data);
	cr_assert_eq(b.len, 0);
	cr_assert_eq(b.off, 0);
	cr_assert_eq(b.alloc, 0);
	cr_assert_eq(b.max, 1000, "release keeps max");
	ug_buf_release(&b);	/* twice is harmless */
	cr_assert_eq(ug_buf_put(&b, "z", 1), 0, "reusable after release");
	assert_bytes(&b, (const uint8_t *)"z", 1);

	ug_buf_release_wipe(&b);
	cr_assert_null(b.data);
	cr_assert_eq(b.len, 0);
	cr_assert_eq(b.alloc, 0);
	ug_buf_release_wipe(&b);	/* on an empty buffer too */
	cr_assert_eq(ug_buf_put(&b, "w", 1), 0);
	ug_buf_release(&b);
}

/* buf.c - bounded byte buffer. */
#include "config.h"

#include <sodium.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "buf.h"
#include "util.h"

void ug_buf_init(struct ug_buf *b, size_t max)
{
	memset(b, 0, sizeof(*b));
	b->max = max;
}

void ug_buf_release(struct ug_buf *b)
{
	free(b->data);
	b->data = NULL;
	b->len = b->off = b->alloc = 0;
}

void ug_buf_release_wipe(struct ug_buf *b)
{
	if (b->data)
		sodium_memzero(b->data, b->alloc);
	ug_buf_release(b);
}

void ug_buf_reset(struct ug_buf *b)
{
	b->len = b->off = 0;
}

int ug_buf_reserve(struct ug_buf *b, size_t n, uint8_t **ret)
{
	size_t need, na;
	uint8_t *nd;

	/* one spare byte keeps the contents NUL-terminable for ug_buf_steal */
	if (ug_size_add(b->len, n, &need) < 0 || need > b->max || need == SIZE_MAX)
		return -E2BIG;
	if (need + 1 > b->alloc) {
		/* max may be SIZE_MAX ("no cap"): max + 1 must not wrap to 0 */
		size_t cap = b->max < SIZE_MAX ? b->max + 1 : SIZE_MAX;

		na = b->alloc ? b->alloc : 256;
		while (na < need + 1)
			na = na > SIZE_MAX / 2 ? need + 1 : na * 2;
		if (na > cap)
			na = cap;
		nd = realloc(b->data, na);
		if (!nd)
			return -ENOMEM;
		b->data = nd;
		b->alloc = na;
	}
	if (ret)
		*ret = b->data + b->len;
	return 0;
}

void ug_buf_commit(struct ug_buf *b, size_t n)
{
	b->len += n;
}

int ug_buf_put(struct ug_buf *b, const void *p, size_t n)
{
	uint8_t *dst;
	int r = ug_buf_reserve(b, n, &dst);

	if (r < 0)
		return r;
	if (n)
		memcpy(dst, p, n);
	b->len += n;
	return 0;
}

int ug_buf_put_u8(struct ug_buf *b, uint8_t v)
{
	return ug_buf_put(b, &v, 1);
}

int ug_buf_put_u32(struct ug_buf *b, uint32_t v)
{
	uint8_t x[4] = { (uint8_t)(v >> 24), (uint8_t)(v >> 16), (uint8_t)(v >> 8), (uint8_t)v };
	return ug_buf_put(b, x, sizeof(x));
}

int ug_buf_put_u64(struct ug_buf *b, uint64_t v)
{
	uint8_t x[8];

	/* one put, so hitting max leaves no half-written value behind */
	for (int i = 0; i < 8; i++)
		x[i] = (uint8_t)(v >> (56 - 8 * i));
	return ug_buf_put(b, x, sizeof(x));
}

int ug_buf_putf(struct ug_buf *b, const char *fmt, ...)
{
	va_list ap;
	uint8_t *dst;
	int n, r;

	va_start(ap, fmt);
	n = vsnprintf(NULL, 0, fmt, ap);
	va_end(ap);
	if (n < 0)
		return -EINVAL;
	r = ug_buf_reserve(b, (size_t)n, &dst);
	if (r < 0)
		return r;
	va_start(ap, fmt);
	vsnprintf((char *)dst, (size_t)n + 1, fmt, ap);
	va_end(ap);
	b->len += (size_t)n;
	return 0;
}

int ug_buf_get(struct ug_buf *b, void *p, size_t n)
{
	if (ug_buf_avail(b) < n)
		return -EBADMSG;
	if (n)
		memcpy(p, b->data + b->off, n);
	b->off += n;
	return 0;
}

int ug_buf_get_u8(struct ug_buf *b, uint8_t *ret)
{
	return ug_buf_get(b, ret, 1);
}

int ug_buf_get_u32(struct ug_buf *b, uint32_t *ret)
{
	uint8_t x[4];
	int r = ug_buf_get(b, x, 4);

	if (r < 0)
		return r;
	*ret = (uint32_t)x[0] << 24 | (uint32_t)x[1] << 16 | (uint32_t)x[2] << 8 | x[3];
	return 0;
}

int ug_buf_get_u64(struct ug_buf *b, uint64_t *ret)
{
	uint32_t hi, lo;

	if (ug_buf_avail(b) < 8)
		return -EBADMSG;
	ug_buf_get_u32(b, &hi);
	ug_buf_get_u32(b, &lo);
	*ret = (uint64_t)hi << 32 | lo;
	return 0;
}

int ug_buf_skip(struct ug_buf *b, size_t n)
{
	if (ug_buf_avail(b) < n)
		return -EBADMSG;
	b->off += n;
	return 0;
}

int ug_buf_steal(struct ug_buf *b, uint8_t **ret_data, size_t *ret_len)
{
	uint8_t *d;
	size_t n = ug_buf_avail(b);

	d = malloc(n + 1);
	if (!d)
		return -ENOMEM;
	if (n)
		memcpy(d, b->data + b->off, n);
	d[n] = 0;
	ug_buf_release(b);
	*ret_data = d;
	*ret_len = n;
	return 0;
}

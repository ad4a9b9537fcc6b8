/* buf.h - a bounded byte buffer (after OpenSSH's sshbuf and curl's dynbuf).
 *
 * Every buffer has a hard maximum set at creation: growing past it fails
 * with -E2BIG instead of allocating without limit. Bytes read from the
 * network or a file go through this type; the typed big-endian getters
 * return -EBADMSG on a short read and never read past the end. */
#ifndef UG_BUF_H
#define UG_BUF_H

#include <stddef.h>
#include <stdint.h>

struct ug_buf {
	uint8_t *data;
	size_t len;   /* bytes held */
	size_t off;   /* read position (consumed bytes) */
	size_t alloc; /* bytes allocated */
	size_t max;   /* hard cap on len */
};

void ug_buf_init(struct ug_buf *b, size_t max);
/* Frees the data (wiping it first if wipe is set). Leaves b empty, reusable. */
void ug_buf_release(struct ug_buf *b);
void ug_buf_release_wipe(struct ug_buf *b);
void ug_buf_reset(struct ug_buf *b);

/* Make room for n more bytes; -E2BIG past max, -ENOMEM. Returns a pointer
 * to the room in *ret (commit it with ug_buf_commit). */
int ug_buf_reserve(struct ug_buf *b, size_t n, uint8_t **ret);
void ug_buf_commit(struct ug_buf *b, size_t n);

int ug_buf_put(struct ug_buf *b, const void *p, size_t n);
int ug_buf_put_u8(struct ug_buf *b, uint8_t v);
int ug_buf_put_u32(struct ug_buf *b, uint32_t v);
int ug_buf_put_u64(struct ug_buf *b, uint64_t v);
int ug_buf_putf(struct ug_buf *b, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

/* Unread bytes. */
static inline size_t ug_buf_avail(const struct ug_buf *b) { return b->len - b->off; }
static inline const uint8_t *ug_buf_ptr(const struct ug_buf *b) { return b->data + b->off; }

int ug_buf_get(struct ug_buf *b, void *p, size_t n);
int ug_buf_get_u8(struct ug_buf *b, uint8_t *ret);
int ug_buf_get_u32(struct ug_buf *b, uint32_t *ret);
int ug_buf_get_u64(struct ug_buf *b, uint64_t *ret);
int ug_buf_skip(struct ug_buf *b, size_t n);

/* Hand the bytes to the caller (NUL-terminated, not counted); b is left
 * empty. */
int ug_buf_steal(struct ug_buf *b, uint8_t **ret_data, size_t *ret_len);

#endif

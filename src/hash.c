/* hash.c - BLAKE2b-256 and XXH3-128, streaming and one-shot. */
#include "config.h"

#include <string.h>
#include <unistd.h>

#include "hash.h"
#include "util.h"

#define HASH_CHUNK (256u << 10)

int ug_hasher_init(struct ug_hasher *h)
{
	memset(h, 0, sizeof(*h));
	if (sodium_init() < 0)
		return -EIO;
	h->xxh = XXH3_createState();
	if (!h->xxh)
		return -ENOMEM;
	XXH3_128bits_reset(h->xxh);
	crypto_generichash_init(&h->b2, NULL, 0, UG_HASH_LEN);
	return 0;
}

void ug_hasher_update(struct ug_hasher *h, const void *p, size_t n)
{
	crypto_generichash_update(&h->b2, p, n);
	XXH3_128bits_update(h->xxh, p, n);
	h->size += n;
}

void ug_hasher_release(struct ug_hasher *h)
{
	if (h->xxh)
		XXH3_freeState(h->xxh);
	h->xxh = NULL;
}

void ug_hasher_final(struct ug_hasher *h, struct ug_hash *ret_hash,
		     struct ug_xxh *ret_xxh, uint64_t *ret_size)
{
	struct ug_hash b2;

	crypto_generichash_final(&h->b2, b2.b, UG_HASH_LEN);
	if (ret_hash)
		*ret_hash = b2;
	if (ret_xxh) {
		XXH128_canonical_t c;
		XXH128_canonicalFromHash(&c, XXH3_128bits_digest(h->xxh));
		memcpy(ret_xxh->b, c.digest, UG_XXH_LEN);
	}
	if (ret_size)
		*ret_size = h->size;
	ug_hasher_release(h);
}

void ug_hash_buf(const void *p, size_t n, struct ug_hash *ret_hash, struct ug_xxh *ret_xxh)
{
	if (ret_hash)
		crypto_generichash(ret_hash->b, UG_HASH_LEN, p, n, NULL, 0);
	if (ret_xxh) {
		XXH128_canonical_t c;
		XXH128_canonicalFromHash(&c, XXH3_128bits(p, n));
		memcpy(ret_xxh->b, c.digest, UG_XXH_LEN);
	}
}

int ug_hash_fd(int fd, struct ug_hash *ret_hash, struct ug_xxh *ret_xxh, uint64_t *ret_size)
{
	static __thread uint8_t chunk[HASH_CHUNK];
	struct ug_hasher h;
	int r = ug_hasher_init(&h);

	if (r < 0)
		return r;
	for (;;) {
		ssize_t n = read(fd, chunk, sizeof(chunk));
		if (n < 0) {
			if (errno == EINTR)
				continue;
			r = -errno;
			ug_hasher_release(&h);
			return r;
		}
		if (n == 0)
			break;
		ug_hasher_update(&h, chunk, (size_t)n);
	}
	ug_hasher_final(&h, ret_hash, ret_xxh, ret_size);
	return 0;
}

bool ug_hash_eq(const struct ug_hash *a, const struct ug_hash *b)
{
	return memcmp(a->b, b->b, UG_HASH_LEN) == 0;
}

bool ug_hash_is_zero(const struct ug_hash *a)
{
	static const struct ug_hash zero;
	return ug_hash_eq(a, &zero);
}

int ug_hash_cmp(const struct ug_hash *a, const struct ug_hash *b)
{
	return memcmp(a->b, b->b, UG_HASH_LEN);
}

void ug_hex_encode(const uint8_t *p, size_t n, char *out)
{
	static const char digits[] = "0123456789abcdef";

	for (size_t i = 0; i < n; i++) {
		out[2 * i] = digits[p[i] >> 4];
		out[2 * i + 1] = digits[p[i] & 15];
	}
	out[2 * n] = '\0';
}

static int hexval(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

int ug_hex_decode(const char *s, uint8_t *out, size_t n)
{
	uint8_t tmp[64];

	if (!s || n > sizeof(tmp) || strnlen(s, 2 * n + 1) != 2 * n)
		return -EBADMSG;
	for (size_t i = 0; i < n; i++) {
		int hi = hexval(s[2 * i]), lo = hexval(s[2 * i + 1]);
		if (hi < 0 || lo < 0)
			return -EBADMSG;
		tmp[i] = (uint8_t)(hi << 4 | lo);
	}
	memcpy(out, tmp, n);
	return 0;
}

void ug_hash_hex(const struct ug_hash *h, char out[UG_HASH_HEX_LEN + 1])
{
	ug_hex_encode(h->b, UG_HASH_LEN, out);
}

int ug_hash_from_hex(const char *s, struct ug_hash *ret)
{
	return ug_hex_decode(s, ret->b, UG_HASH_LEN);
}

void ug_xxh_hex(const struct ug_xxh *h, char out[UG_XXH_HEX_LEN + 1])
{
	ug_hex_encode(h->b, UG_XXH_LEN, out);
}

int ug_xxh_from_hex(const char *s, struct ug_xxh *ret)
{
	return ug_hex_decode(s, ret->b, UG_XXH_LEN);
}

/* hash.h - content identity.
 *
 * BLAKE2b-256 (libsodium) is the cryptographic identity of every object,
 * delta and manifest: what a terminal trusts. XXH3-128 (xxhash) rides along
 * for fast identity and change detection only; it is never trusted. */
#ifndef UG_HASH_H
#define UG_HASH_H

#include <sodium.h>
#include <stddef.h>
#include <stdint.h>
#include <stdbool.h>
#include <xxhash.h>

#define UG_HASH_LEN 32
#define UG_HASH_HEX_LEN 64
#define UG_XXH_LEN 16
#define UG_XXH_HEX_LEN 32

struct ug_hash { uint8_t b[UG_HASH_LEN]; };
struct ug_xxh { uint8_t b[UG_XXH_LEN]; };

struct ug_hasher {
	crypto_generichash_state b2;
	XXH3_state_t *xxh;
	uint64_t size;
};

int ug_hasher_init(struct ug_hasher *h);
void ug_hasher_update(struct ug_hasher *h, const void *p, size_t n);
/* Finishes and releases h; any ret_* may be NULL. */
void ug_hasher_final(struct ug_hasher *h, struct ug_hash *ret_hash,
		     struct ug_xxh *ret_xxh, uint64_t *ret_size);
void ug_hasher_release(struct ug_hasher *h);

void ug_hash_buf(const void *p, size_t n, struct ug_hash *ret_hash,
		 struct ug_xxh *ret_xxh);
/* Hash an open file from its current position to EOF in fixed chunks. */
int ug_hash_fd(int fd, struct ug_hash *ret_hash, struct ug_xxh *ret_xxh,
	       uint64_t *ret_size);

bool ug_hash_eq(const struct ug_hash *a, const struct ug_hash *b);
bool ug_hash_is_zero(const struct ug_hash *a);
int ug_hash_cmp(const struct ug_hash *a, const struct ug_hash *b);

/* Lower-case hex; out must hold 2*len+1. */
void ug_hex_encode(const uint8_t *p, size_t n, char *out);
/* Exactly 2*n lower- or upper-case hex digits; -EBADMSG otherwise. */
int ug_hex_decode(const char *s, uint8_t *out, size_t n);

void ug_hash_hex(const struct ug_hash *h, char out[UG_HASH_HEX_LEN + 1]);
int ug_hash_from_hex(const char *s, struct ug_hash *ret);
void ug_xxh_hex(const struct ug_xxh *h, char out[UG_XXH_HEX_LEN + 1]);
int ug_xxh_from_hex(const char *s, struct ug_xxh *ret);

#endif

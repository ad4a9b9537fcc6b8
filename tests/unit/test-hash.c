/* test-hash.c - unit tests for src/hash.c: BLAKE2b-256 and XXH3-128 against
 * known vectors, streaming against one-shot, file hashing, hex coding and
 * comparisons.
 *
 * Expected values were computed with the reference tools:
 *   printf '%s' "$s" | b2sum -l 256        (GNU coreutils)
 *   printf '%s' "$s" | xxhsum -H2          (xxhsum 0.8.1; prints XXH128's
 *                                           canonical, big-endian form) */
#include "config.h"

#include <criterion/criterion.h>

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "hash.h"
#include "util.h"

TestSuite(hash, .timeout = 20);

struct vector {
	const char *in;
	const char *b2;		/* b2sum -l 256 */
	const char *xxh;	/* xxhsum -H2 */
};

static const struct vector text_vectors[] = {
	{ "",
	  "0e5751c026e543b2e8ab2eb06099daa1d1e5df47778f7787faab45cdf12fe3a8",
	  "99aa06d3014798d86001c324468d497f" },
	{ "abc",
	  "bddd813c634239723171ef3fee98579b94964e3bb1cb3e427262c8c068d52319",
	  "06b05ab6733a618578af5f94892f3950" },
	{ "The quick brown fox jumps over the lazy dog",
	  "01718cec35cd3d796dd00020e0bfecb473ad23457d063b75eff29c0ffa2e58a9",
	  "ddd650205ca3e7fa24a1cc2e3a8a7651" },
};

/* Prefixes of the byte pattern 00 01 02 .. ff 00 01 ..: one length in each
 * of XXH3's size classes, and one longer than the 256 KiB file chunk. */
static const struct { size_t n; const char *b2, *xxh; } pattern_vectors[] = {
	{ 1, "03170a2e7597b7b7e3d84c05391d139a62b157e78786d8c082f29dcf4c111314",
	  "a6cd5e9392000f6ac44bdff4074eecdb" },
	{ 3, "3d8c3d594928271f44aad7a04b177154806867bcf918e1549c0bc16f9da2b09b",
	  "e3b55f57945a17cf5f4299fc161c9cbb" },
	{ 8, "77065d25b622a8251094d869edf6b4e9ba0708a8db1f239cb68e4eeb45851621",
	  "e1e4432a62217fe4cfd50c61c8bb98c1" },
	{ 16, "c7cb5d1a1a214f1d833a21fe6c7b2420e417c2f220784cbe90072975131bc367",
	  "72950631827607e2842812cc870dcae2" },
	{ 100, "5ac86383dec1db602fdbc2c978c3fe1bf4328fea1e1b495b68be2c3b67ba033b",
	  "da95ef16fd9566f329b20ba5f03ec01e" },
	{ 200, "63c3d97a9f8894d5e043a707b0fee7f7ec4c049a23bbf1079df20b4165f9e22d",
	  "cb0395310643ba0edd97e9af3609d9f5" },
	{ 1000, "c636324d47d89f2b2434dc2c994100663fbbaea880ff020fc5de89dd0f77a1ec",
	  "076f7e02b7120d2ad33dd80b46f60e50" },
	{ 300000, "aed364bce123fd7645878dde1cc7da841bcdaaa5586f56b12bd283448fa6f65b",
	  "3573aabde380f2185fb871e0385dabc3" },
};

/* 1,024,000 bytes of the pattern: four 256 KiB chunks, the last partial. */
#define BIG_LEN 1024000u
static const char big_b2[] =
	"d01e10635c86f4943bcab19a4ecf99f21e2793140da8e824d3694a1440f41afa";
static const char big_xxh[] = "e28241aa4a8eb229eb1713fb5109680b";
/* the same file from offset 1000 to its end */
static const char big_tail_b2[] =
	"3088ffc13554ecca204f09e198607d9111b7aadf3d6a03332310ee42049c58ec";
static const char big_tail_xxh[] = "1931d840c8fe04579f4735605d3ec50f";

static uint8_t *pattern(size_t n)
{
	uint8_t *p = malloc(n ? n : 1);

	cr_assert_not_null(p);
	for (size_t i = 0; i < n; i++)
		p[i] = (uint8_t)i;
	return p;
}

static void assert_hash_hex(const struct ug_hash *h, const char *want)
{
	char hex[UG_HASH_HEX_LEN + 1];

	ug_hash_hex(h, hex);
	cr_assert_str_eq(hex, want);
}

static void assert_xxh_hex(const struct ug_xxh *h, const char *want)
{
	char hex[UG_XXH_HEX_LEN + 1];

	ug_xxh_hex(h, hex);
	cr_assert_str_eq(hex, want);
}

/* ------------------------------------------------------------ known vectors */

Test(hash, blake2b_and_xxh3_text_vectors)
{
	for (size_t i = 0; i < sizeof(text_vectors) / sizeof(text_vectors[0]); i++) {
		const struct vector *v = &text_vectors[i];
		struct ug_hash h;
		struct ug_xxh x;

		ug_hash_buf(v->in, strlen(v->in), &h, &x);
		assert_hash_hex(&h, v->b2);
		assert_xxh_hex(&x, v->xxh);
	}
}

Test(hash, pattern_vectors)
{
	for (size_t i = 0; i < sizeof(pattern_vectors) / sizeof(pattern_vectors[0]); i++) {
		uint8_t *p = pattern(pattern_vectors[i].n);
		struct ug_hash h;
		struct ug_xxh x;

		ug_hash_buf(p, pattern_vectors[i].n, &h, &x);
		assert_hash_hex(&h, pattern_vectors[i].b2);
		assert_xxh_hex(&x, pattern_vectors[i].xxh);
		free(p);
	}
}

Test(hash, empty_input_with_null_pointer)
{
	struct ug_hash h;
	struct ug_xxh x;

	ug_hash_buf(NULL, 0, &h, &x);
	assert_hash_hex(&h, text_vectors[0].b2);
	assert_xxh_hex(&x, text_vectors[0].xxh);
}

Test(hash, hash_buf_null_outputs)
{
	struct ug_hash h;
	struct ug_xxh x;

	memset(&x, 0x5a, sizeof(x));
	ug_hash_buf("abc", 3, &h, NULL);
	assert_hash_hex(&h, text_vectors[1].b2);
	memset(&h, 0x5a, sizeof(h));
	ug_hash_buf("abc", 3, NULL, &x);
	assert_xxh_hex(&x, text_vectors[1].xxh);
	ug_hash_buf("abc", 3, NULL, NULL);
}

/* The stored XXH3-128 is the canonical form: high 64 bits first, each half
 * big-endian, whatever the host byte order. */
Test(hash, xxh_canonical_byte_order)
{
	XXH128_hash_t raw = XXH3_128bits("abc", 3);
	struct ug_xxh x;

	ug_hash_buf("abc", 3, NULL, &x);
	for (int i = 0; i < 8; i++) {
		cr_assert_eq(x.b[i], (uint8_t)(raw.high64 >> (56 - 8 * i)), "byte %d", i);
		cr_assert_eq(x.b[8 + i], (uint8_t)(raw.low64 >> (56 - 8 * i)), "byte %d", 8 + i);
	}
	cr_assert_eq(x.b[0], 0x06);
	cr_assert_eq(x.b[15], 0x50);
}

/* ------------------------------------------------------------ streaming */

static uint64_t rng_state = 0x9e3779b97f4a7c15ull;

static uint64_t rng(void)
{
	/* xorshift64: fixed seed, so a failure reproduces */
	rng_state ^= rng_state << 13;
	rng_state ^= rng_state >> 7;
	rng_state ^= rng_state << 17;
	return rng_state;
}

Test(hash, streaming_equals_one_shot)
{
	enum { N = 200000 };
	uint8_t *data = malloc(N);
	struct ug_hash want_h;
	struct ug_xxh want_x;

	cr_assert_not_null(data);
	for (size_t i = 0; i < N; i++)
		data[i] = (uint8_t)rng();
	ug_hash_buf(data, N, &want_h, &want_x);

	for (int round = 0; round < 60; round++) {
		/* a random length, cut into random pieces (some empty) */
		size_t len = round == 0 ? N : (size_t)(rng() % (N + 1)), pos = 0;
		struct ug_hasher hs;
		struct ug_hash h, one_h;
		struct ug_xxh x, one_x;
		uint64_t size = 0;

		cr_assert_eq(ug_hasher_init(&hs), 0);
		while (pos < len) {
			size_t piece = (size_t)(rng() % (round % 3 == 0 ? 64 : 70000));
			if (piece > len - pos)
				piece = len - pos;
			ug_hasher_update(&hs, data + pos, piece);
			pos += piece;
		}
		ug_hasher_final(&hs, &h, &x, &size);
		ug_hash_buf(data, len, &one_h, &one_x);
		cr_assert_eq(size, len);
		cr_assert(ug_hash_eq(&h, &one_h), "round %d: blake2b differs (len %zu)", round, len);
		cr_assert(memcmp(x.b, one_x.b, UG_XXH_LEN) == 0, "round %d: xxh3 differs", round);
		if (len == N) {
			cr_assert(ug_hash_eq(&h, &want_h));
			cr_assert(memcmp(x.b, want_x.b, UG_XXH_LEN) == 0);
		}
	}
	free(data);
}

Test(hash, streaming_byte_at_a_time_matches_vector)
{
	const char *s = text_vectors[2].in;
	struct ug_hasher hs;
	struct ug_hash h;
	struct ug_xxh x;
	uint64_t size = 0;

	cr_assert_eq(ug_hasher_init(&hs), 0);
	for (size_t i = 0; s[i]; i++)
		ug_hasher_update(&hs, s + i, 1);
	ug_hasher_update(&hs, NULL, 0);
	ug_hasher_final(&hs, &h, &x, &size);
	assert_hash_hex(&h, text_vectors[2].b2);
	assert_xxh_hex(&x, text_vectors[2].xxh);
	cr_assert_eq(size, strlen(s));
}

Test(hash, hasher_final_null_outputs_and_release)
{
	struct ug_hasher hs;
	struct ug_hash h;
	uint64_t size = 0;

	cr_assert_eq(ug_hasher_init(&hs), 0);
	ug_hasher_final(&hs, NULL, NULL, NULL);
	cr_assert_null(hs.xxh, "final releases the state");

	cr_assert_eq(ug_hasher_init(&hs), 0);
	ug_hasher_update(&hs, "abc", 3);
	ug_hasher_final(&hs, &h, NULL, &size);
	assert_hash_hex(&h, text_vectors[1].b2);
	cr_assert_eq(size, 3);

	cr_assert_eq(ug_hasher_init(&hs), 0);
	ug_hasher_final(&hs, NULL, NULL, &size);
	cr_assert_eq(size, 0);

	/* abandoning a hasher: release frees it, twice is harmless */
	cr_assert_eq(ug_hasher_init(&hs), 0);
	ug_hasher_update(&hs, "abc", 3);
	ug_hasher_release(&hs);
	cr_assert_null(hs.xxh);
	ug_hasher_release(&hs);
}

/* ------------------------------------------------------------ ug_hash_fd */

static char tmpdir[64];

static int open_tmp_file(const void *data, size_t len)
{
	char path[128];
	int fd;

	snprintf(tmpdir, sizeof(tmpdir), "/tmp/ug-test-hash-XXXXXX");
	cr_assert_not_null(mkdtemp(tmpdir));
	snprintf(path, sizeof(path), "%s/f", tmpdir);
	fd = open(path, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	cr_assert_geq(fd, 0);
	cr_assert_eq(ug_write_all(fd, data, len), 0);
	cr_assert_eq(lseek(fd, 0, SEEK_SET), 0);
	return fd;
}

static void cleanup_tmp(void)
{
	char path[128];

	if (!tmpdir[0])
		return;
	snprintf(path, sizeof(path), "%s/f", tmpdir);
	unlink(path);
	rmdir(tmpdir);
}

Test(hash, hash_fd_larger_than_chunk, .fini = cleanup_tmp)
{
	uint8_t *data = pattern(BIG_LEN);
	int fd = open_tmp_file(data, BIG_LEN);
	struct ug_hash h, one_h;
	struct ug_xxh x, one_x;
	uint64_t size = 0;

	cr_assert_eq(ug_hash_fd(fd, &h, &x, &size), 0);
	cr_assert_eq(size, BIG_LEN);
	assert_hash_hex(&h, big_b2);
	assert_xxh_hex(&x, big_xxh);
	ug_hash_buf(data, BIG_LEN, &one_h, &one_x);
	cr_assert(ug_hash_eq(&h, &one_h));
	cr_assert(memcmp(x.b, one_x.b, UG_XXH_LEN) == 0);

	/* at EOF now: what is left is the empty string */
	cr_assert_eq(ug_hash_fd(fd, &h, &x, &size), 0);
	cr_assert_eq(size, 0);
	assert_hash_hex(&h, text_vectors[0].b2);

	/* hashing starts at the current position */
	cr_assert_eq(lseek(fd, 1000, SEEK_SET), 1000);
	cr_assert_eq(ug_hash_fd(fd, &h, &x, &size), 0);
	cr_assert_eq(size, BIG_LEN - 1000);
	assert_hash_hex(&h, big_tail_b2);
	assert_xxh_hex(&x, big_tail_xxh);

	/* NULL outputs are allowed */
	cr_assert_eq(lseek(fd, 0, SEEK_SET), 0);
	cr_assert_eq(ug_hash_fd(fd, NULL, NULL, &size), 0);
	cr_assert_eq(size, BIG_LEN);
	close(fd);
	free(data);
}

Test(hash, hash_fd_exact_chunk_multiple, .fini = cleanup_tmp)
{
	enum { N = 2 * (256 << 10) };
	uint8_t *data = pattern(N);
	int fd = open_tmp_file(data, N);
	struct ug_hash h, one_h;
	struct ug_xxh x, one_x;
	uint64_t size = 0;

	cr_assert_eq(ug_hash_fd(fd, &h, &x, &size), 0);
	cr_assert_eq(size, N);
	ug_hash_buf(data, N, &one_h, &one_x);
	cr_assert(ug_hash_eq(&h, &one_h));
	cr_assert(memcmp(x.b, one_x.b, UG_XXH_LEN) == 0);
	close(fd);
	free(data);
}

Test(hash, hash_fd_pipe)
{
	int p[2];
	struct ug_hash h;
	struct ug_xxh x;
	uint64_t size = 0;

	cr_assert_eq(pipe2(p, O_CLOEXEC), 0);
	cr_assert_eq(ug_write_all(p[1], "abc", 3), 0);
	close(p[1]);
	cr_assert_eq(ug_hash_fd(p[0], &h, &x, &size), 0);
	close(p[0]);
	cr_assert_eq(size, 3);
	assert_hash_hex(&h, text_vectors[1].b2);
	assert_xxh_hex(&x, text_vectors[1].xxh);
}

Test(hash, hash_fd_errors)
{
	struct ug_hash h;
	uint64_t size = 77;
	int p[2], dfd;

	memset(&h, 0x5a, sizeof(h));
	cr_assert_eq(pipe2(p, O_CLOEXEC), 0);
	close(p[0]);
	close(p[1]);
	cr_assert_eq(ug_hash_fd(p[0], &h, NULL, &size), -EBADF);
	dfd = open("/", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	cr_assert_geq(dfd, 0);
	cr_assert_eq(ug_hash_fd(dfd, &h, NULL, &size), -EISDIR);
	close(dfd);
	cr_assert_eq(size, 77, "ret_size set on failure");
	cr_assert_eq(h.b[0], 0x5a, "ret_hash set on failure");
}

/* ------------------------------------------------------------ hex */

Test(hash, hex_encode_known)
{
	static const uint8_t in[] = { 0x00, 0x01, 0x7f, 0x80, 0xab, 0xcd, 0xef, 0xff };
	char out[2 * sizeof(in) + 1];

	memset(out, 'X', sizeof(out));
	ug_hex_encode(in, sizeof(in), out);
	cr_assert_str_eq(out, "00017f80abcdefff");
	ug_hex_encode(in, 0, out);
	cr_assert_str_eq(out, "");
}

Test(hash, hex_decode_known_both_cases)
{
	static const uint8_t want[] = { 0x00, 0x01, 0x7f, 0x80, 0xab, 0xcd, 0xef, 0xff };
	uint8_t out[sizeof(want)];

	cr_assert_eq(ug_hex_decode("00017f80abcdefff", out, sizeof(out)), 0);
	cr_assert(memcmp(out, want, sizeof(want)) == 0);
	memset(out, 0, sizeof(out));
	cr_assert_eq(ug_hex_decode("00017F80ABCDEFFF", out, sizeof(out)), 0);
	cr_assert(memcmp(out, want, sizeof(want)) == 0);
	memset(out, 0, sizeof(out));
	cr_assert_eq(ug_hex_decode("00017f80AbCdEfFf", out, sizeof(out)), 0);
	cr_assert(memcmp(out, want, sizeof(want)) == 0);
	cr_assert_eq(ug_hex_decode("", out, 0), 0);
}

Test(hash, hex_round_trip)
{
	for (int round = 0; round < 100; round++) {
		struct ug_hash h, back;
		struct ug_xxh x, xback;
		char hex[UG_HASH_HEX_LEN + 1], xhex[UG_XXH_HEX_LEN + 1];

		for (size_t i = 0; i < UG_HASH_LEN; i++)
			h.b[i] = (uint8_t)rng();
		for (size_t i = 0; i < UG_XXH_LEN; i++)
			x.b[i] = (uint8_t)rng();
		ug_hash_hex(&h, hex);
		cr_assert_eq(strlen(hex), UG_HASH_HEX_LEN);
		cr_assert_eq(ug_hash_from_hex(hex, &back), 0);
		cr_assert(ug_hash_eq(&h, &back));
		ug_xxh_hex(&x, xhex);
		cr_assert_eq(strlen(xhex), UG_XXH_HEX_LEN);
		cr_assert_eq(ug_xxh_from_hex(xhex, &xback), 0);
		cr_assert(memcmp(x.b, xback.b, UG_XXH_LEN) == 0);
	}
}

static void expect_bad_hash_hex(const char *s)
{
	struct ug_hash h;

	memset(&h, 0x5a, sizeof(h));
	cr_assert_eq(ug_hash_from_hex(s, &h), -EBADMSG, "'%s' accepted", s ? s : "(null)");
	for (size_t i = 0; i < UG_HASH_LEN; i++)
		cr_assert_eq(h.b[i], 0x5a, "output written on failure");
}

Test(hash, hex_decode_rejects_wrong_length)
{
	char s[200];
	const char *good = text_vectors[1].b2;

	expect_bad_hash_hex("");
	expect_bad_hash_hex(NULL);
	expect_bad_hash_hex("00");
	/* 63 and 65 digits */
	snprintf(s, sizeof(s), "%.*s", UG_HASH_HEX_LEN - 1, good);
	expect_bad_hash_hex(s);
	snprintf(s, sizeof(s), "%s0", good);
	expect_bad_hash_hex(s);
	snprintf(s, sizeof(s), "%s%s", good, good);
	expect_bad_hash_hex(s);
	/* an XXH3 hex is not a hash, nor the other way round */
	{
		struct ug_xxh x;
		expect_bad_hash_hex(text_vectors[1].xxh);
		cr_assert_eq(ug_xxh_from_hex(good, &x), -EBADMSG);
		cr_assert_eq(ug_xxh_from_hex("", &x), -EBADMSG);
		cr_assert_eq(ug_xxh_from_hex(text_vectors[1].xxh, &x), 0);
	}
}

Test(hash, hex_decode_rejects_non_hex)
{
	static const char bad_chars[] = "gGzZ -+x.:/\n\t\x7f\xc3";
	char s[UG_HASH_HEX_LEN + 1];
	const char *good = text_vectors[1].b2;

	memcpy(s, good, sizeof(s));
	cr_assert_eq(ug_hash_from_hex(s, &(struct ug_hash){ { 0 } }), 0);
	for (size_t c = 0; c < sizeof(bad_chars) - 1; c++) {
		/* first, last, and a low nibble in the middle */
		static const size_t at[] = { 0, UG_HASH_HEX_LEN - 1, 31 };
		for (size_t k = 0; k < 3; k++) {
			memcpy(s, good, sizeof(s));
			s[at[k]] = bad_chars[c];
			expect_bad_hash_hex(s);
		}
	}
	expect_bad_hash_hex("0x5751c026e543b2e8ab2eb06099daa1d1e5df47778f7787faab45cdf12fe3a8");
	cr_assert_eq(ug_hex_decode("0g", (uint8_t[1]){ 0 }, 1), -EBADMSG);
	/* more bytes than the decoder supports */
	{
		char big[2 * 65 + 1];
		uint8_t out[65];
		memset(big, 'a', sizeof(big) - 1);
		big[sizeof(big) - 1] = '\0';
		cr_assert_eq(ug_hex_decode(big, out, sizeof(out)), -EBADMSG);
	}
}

/* ------------------------------------------------------------ comparisons */

Test(hash, cmp_eq_is_zero)
{
	struct ug_hash zero, a, b;

	memset(&zero, 0, sizeof(zero));
	cr_assert(ug_hash_is_zero(&zero));
	cr_assert(ug_hash_eq(&zero, &zero));
	cr_assert_eq(ug_hash_cmp(&zero, &zero), 0);

	a = zero;
	a.b[UG_HASH_LEN - 1] = 1;
	cr_assert_not(ug_hash_is_zero(&a), "last byte ignored");
	a = zero;
	a.b[0] = 0x80;
	cr_assert_not(ug_hash_is_zero(&a), "first byte ignored");

	ug_hash_buf("abc", 3, &a, NULL);
	b = a;
	cr_assert(ug_hash_eq(&a, &b));
	cr_assert_eq(ug_hash_cmp(&a, &b), 0);
	cr_assert_not(ug_hash_is_zero(&a));
	b.b[UG_HASH_LEN - 1] ^= 1;
	cr_assert_not(ug_hash_eq(&a, &b), "last byte ignored");
	cr_assert_neq(ug_hash_cmp(&a, &b), 0);
	b = a;
	b.b[0] ^= 0x80;
	cr_assert_not(ug_hash_eq(&a, &b), "first byte ignored");
}

Test(hash, cmp_is_bytewise_lexicographic)
{
	struct ug_hash a, b;

	/* the first differing byte decides, as unsigned */
	memset(&a, 0xff, sizeof(a));
	memset(&b, 0x00, sizeof(b));
	a.b[0] = 0x01;
	b.b[0] = 0x02;
	cr_assert_lt(ug_hash_cmp(&a, &b), 0);
	cr_assert_gt(ug_hash_cmp(&b, &a), 0);

	memset(&a, 0, sizeof(a));
	memset(&b, 0, sizeof(b));
	a.b[5] = 0x7f;
	b.b[5] = 0x80;
	cr_assert_lt(ug_hash_cmp(&a, &b), 0, "bytes compare unsigned");
	cr_assert_gt(ug_hash_cmp(&b, &a), 0);
	a.b[4] = 1;
	cr_assert_gt(ug_hash_cmp(&a, &b), 0, "earlier byte wins");

	/* hex order and cmp order agree, which sorted listings rely on */
	for (int i = 0; i < 50; i++) {
		char ha[UG_HASH_HEX_LEN + 1], hb[UG_HASH_HEX_LEN + 1];
		int c, s;
		for (size_t k = 0; k < UG_HASH_LEN; k++) {
			a.b[k] = (uint8_t)rng();
			b.b[k] = k < 3 ? a.b[k] : (uint8_t)rng();
		}
		ug_hash_hex(&a, ha);
		ug_hash_hex(&b, hb);
		c = ug_hash_cmp(&a, &b);
		s = strcmp(ha, hb);
		cr_assert((c < 0) == (s < 0) && (c > 0) == (s > 0), "cmp %d vs hex order %d", c, s);
	}
}

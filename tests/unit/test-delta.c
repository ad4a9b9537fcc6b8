/* test-delta.c - the three delta codecs and the in-memory zstd helpers:
 * round trips (random data, a real binary, edge cases), size claims
 * (identical files, prefix vs plain, bundle vs per-file), bounded memory on
 * a large file, and hostile deltas/signatures that must fail with the
 * documented errno, never crash or write past the expected size. */
#include "config.h"

#include <criterion/criterion.h>
#include <dirent.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include "delta.h"
#include "util.h"

static char tdir[64];
static int tdfd = -1;
static unsigned tcount;

static void setup(void)
{
	snprintf(tdir, sizeof(tdir), "/tmp/ug-test-delta-XXXXXX");
	cr_assert_not_null(mkdtemp(tdir));
	tdfd = open(tdir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	cr_assert_geq(tdfd, 0);
}

static void teardown(void)
{
	int fd = dup(tdfd);
	DIR *d = fd >= 0 ? fdopendir(fd) : NULL;
	struct dirent *de;

	if (d) {
		while ((de = readdir(d)))
			if (strcmp(de->d_name, ".") && strcmp(de->d_name, ".."))
				unlinkat(tdfd, de->d_name, 0);
		closedir(d);
	}
	close(tdfd);
	rmdir(tdir);
}

/* One timeout for the suite: a per-test .timeout that differs from it
 * makes Criterion 2.4.1's runner leak 48 bytes, which fails the ASan run. */
TestSuite(delta, .init = setup, .fini = teardown, .timeout = 60);

/* ------------------------------------------------------------ helpers */

/* A fresh, empty file in the test directory. */
static int tfile(void)
{
	char name[32];
	int fd;

	snprintf(name, sizeof(name), "f%u", tcount++);
	fd = openat(tdfd, name, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	cr_assert_geq(fd, 0);
	return fd;
}

/* A file holding p[0..n); its offset is left at the end on purpose: the
 * codecs must read inputs with pread from 0. */
static int tfile_with(const void *p, size_t n)
{
	int fd = tfile();

	cr_assert_eq(ug_write_all(fd, p, n), 0);
	return fd;
}

static uint64_t fsize(int fd)
{
	struct stat st;

	cr_assert_eq(fstat(fd, &st), 0);
	return (uint64_t)st.st_size;
}

static uint8_t *slurp(int fd, size_t *ret_len)
{
	size_t n = (size_t)fsize(fd);
	uint8_t *p = malloc(n + 1);

	cr_assert_not_null(p);
	cr_assert_eq(pread(fd, p, n, 0), (ssize_t)n);
	*ret_len = n;
	return p;
}

static void rewind_fd(int fd)
{
	cr_assert_eq(lseek(fd, 0, SEEK_SET), 0);
}

/* Replace fd's content with p[0..n) and rewind it. */
static void refill(int fd, const void *p, size_t n)
{
	cr_assert_eq(ftruncate(fd, 0), 0);
	cr_assert_eq(pwrite(fd, p, n, 0), (ssize_t)n);
	rewind_fd(fd);
}

static bool fd_equals(int fd, const void *p, size_t n)
{
	size_t len;
	uint8_t *got = slurp(fd, &len);
	bool eq = len == n && (n == 0 || memcmp(got, p, n) == 0);

	free(got);
	return eq;
}

static uint64_t xorshift(uint64_t *s)
{
	*s ^= *s << 13;
	*s ^= *s >> 7;
	*s ^= *s << 17;
	return *s;
}

static void fill_random(uint8_t *p, size_t n, uint64_t seed)
{
	uint64_t s = seed * 0x9e3779b97f4a7c15ull + 1;

	for (size_t i = 0; i < n; i += 8) {
		uint64_t v = xorshift(&s);
		memcpy(p + i, &v, n - i < 8 ? n - i : 8);
	}
}

static uint8_t *random_buf(size_t n, uint64_t seed)
{
	uint8_t *p = malloc(n ? n : 1);

	cr_assert_not_null(p);
	fill_random(p, n, seed);
	return p;
}

/* A deterministic "new version" of src: 200 bytes inserted at 1/3, 500
 * bytes deleted at 2/3, and 8 bytes changed every 8 KiB. */
static uint8_t *mutate(const uint8_t *src, size_t n, uint64_t seed, size_t *ret_n)
{
	size_t a = n / 3, b = 2 * n / 3, del = n - b < 500 ? n - b : 500;
	uint8_t *out = malloc(n + 200), ins[200];
	size_t o = 0;
	uint64_t s = seed | 1;

	cr_assert_not_null(out);
	fill_random(ins, sizeof(ins), seed);
	memcpy(out, src, a);
	o = a;
	memcpy(out + o, ins, sizeof(ins));
	o += sizeof(ins);
	memcpy(out + o, src + a, b - a);
	o += b - a;
	memcpy(out + o, src + b + del, n - b - del);
	o += n - b - del;
	for (size_t i = 4096; i + 8 <= o; i += 8192) {
		uint64_t v = xorshift(&s);
		memcpy(out + i, &v, 8);
	}
	*ret_n = o;
	return out;
}

static struct ug_delta_params params(int level)
{
	struct ug_delta_params p;

	ug_delta_params_default(&p);
	p.level = level;
	return p;
}

enum codec { C_ZSTD, C_BUNDLE, C_RSYNC, C_RSYNC_SIG, C__COUNT };
static const char *const codec_names[] = { "zstd", "bundle", "rsync", "rsync-sig" };

/* Make a delta base -> target with codec, apply it to a fresh file and
 * check the result byte for byte. Returns the delta's size. */
static uint64_t roundtrip(enum codec c, const void *base, size_t bn,
			  const void *target, size_t tn,
			  const struct ug_delta_params *p)
{
	int bfd = tfile_with(base, bn), tfd = tfile_with(target, tn);
	int dfd = tfile(), ofd = tfile(), sfd;
	uint64_t size = 0, mem = 0, expect = tn;
	int r;

	switch (c) {
	case C_ZSTD:
		r = ug_delta_zstd_create(bfd, tfd, dfd, p, &size, &mem);
		break;
	case C_BUNDLE:
		r = ug_delta_bundle_create(&bfd, 1, &tfd, 1, dfd, p, &size, &mem);
		break;
	case C_RSYNC:
		r = ug_delta_rsync_create(bfd, tfd, dfd, p, &size);
		break;
	default:
		sfd = tfile();
		cr_assert_eq(ug_delta_rsync_signature(bfd, sfd, NULL), 0);
		rewind_fd(sfd);
		r = ug_delta_rsync_from_signature(sfd, tfd, dfd, p, &size);
		close(sfd);
		break;
	}
	cr_assert_eq(r, 0, "%s create: %d", codec_names[c], r);
	cr_assert_eq(size, fsize(dfd), "%s: ret_size is the file size", codec_names[c]);
	if (c == C_ZSTD || c == C_BUNDLE)
		cr_assert_geq(mem, (uint64_t)bn + tn, "%s: memory bound", codec_names[c]);
	rewind_fd(dfd);
	if (c == C_ZSTD)
		r = ug_delta_zstd_apply(bfd, dfd, ofd, expect, mem);
	else if (c == C_BUNDLE)
		r = ug_delta_bundle_apply(&bfd, 1, dfd, &ofd, &expect, 1, mem);
	else
		r = ug_delta_rsync_apply(bfd, dfd, ofd, expect);
	cr_assert_eq(r, 0, "%s apply: %d", codec_names[c], r);
	cr_assert(fd_equals(ofd, target, tn), "%s: output differs", codec_names[c]);
	close(bfd);
	close(tfd);
	close(dfd);
	close(ofd);
	return size;
}

/* A delta (codec c, base -> target) in a fresh file, rewound. */
static int make_delta(enum codec c, int bfd, int tfd, const struct ug_delta_params *p,
		      uint64_t *ret_mem)
{
	int dfd = tfile();
	uint64_t size, mem = 0;
	int r;

	if (c == C_ZSTD)
		r = ug_delta_zstd_create(bfd, tfd, dfd, p, &size, &mem);
	else if (c == C_BUNDLE)
		r = ug_delta_bundle_create(&bfd, 1, &tfd, 1, dfd, p, &size, &mem);
	else
		r = ug_delta_rsync_create(bfd, tfd, dfd, p, &size);
	cr_assert_eq(r, 0);
	rewind_fd(dfd);
	if (ret_mem)
		*ret_mem = mem;
	return dfd;
}

static int apply(enum codec c, int bfd, int dfd, int ofd, uint64_t expect, uint64_t mem)
{
	if (c == C_ZSTD)
		return ug_delta_zstd_apply(bfd, dfd, ofd, expect, mem);
	if (c == C_BUNDLE)
		return ug_delta_bundle_apply(&bfd, 1, dfd, &ofd, &expect, 1, mem);
	return ug_delta_rsync_apply(bfd, dfd, ofd, expect);
}

/* ------------------------------------------------------------ round trips */

Test(delta, params_default)
{
	struct ug_delta_params p = { .level = -5, .window = 1, .threads = 7 };

	ug_delta_params_default(&p);
	cr_assert_eq(p.level, UG_DELTA_LEVEL_DEFAULT);
	cr_assert_eq(p.window, UG_DELTA_WINDOW_DEFAULT);
	cr_assert_eq(p.threads, 0);
}

Test(delta, random_roundtrip_all_codecs)
{
	size_t bn = 300000, tn;
	uint8_t *base = random_buf(bn, 1), *target = mutate(base, bn, 2, &tn);
	struct ug_delta_params p = params(3);

	for (int c = 0; c < C__COUNT; c++) {
		uint64_t size = roundtrip(c, base, bn, target, tn, &p);
		/* Random data only compresses against the base. */
		cr_assert_lt(size, tn / 4, "%s: delta %llu bytes for %zu",
			     codec_names[c], (unsigned long long)size, tn);
	}
	free(base);
	free(target);
}

Test(delta, rsync_create_equals_signature_path)
{
	size_t bn = 200000, tn;
	uint8_t *base = random_buf(bn, 3), *target = mutate(base, bn, 4, &tn);
	struct ug_delta_params p = params(3);
	int bfd = tfile_with(base, bn), tfd = tfile_with(target, tn);
	int d1 = tfile(), d2 = tfile(), sfd = tfile();
	uint64_t s1, s2, ssize;
	uint8_t *a, *b, *sig;
	size_t al, bl, sl;

	cr_assert_eq(ug_delta_rsync_create(bfd, tfd, d1, &p, &s1), 0);
	cr_assert_eq(ug_delta_rsync_signature(bfd, sfd, &ssize), 0);
	sig = slurp(sfd, &sl);
	cr_assert_eq(ssize, sl);
	/* RK_BLAKE2 magic "rs\x01G", big-endian. */
	cr_assert_eq(memcmp(sig, "rs\x01G", 4), 0);
	rewind_fd(sfd);
	cr_assert_eq(ug_delta_rsync_from_signature(sfd, tfd, d2, &p, &s2), 0);
	a = slurp(d1, &al);
	b = slurp(d2, &bl);
	cr_assert_eq(al, bl);
	cr_assert_eq(memcmp(a, b, al), 0, "one-call and signature deltas differ");
	free(a);
	free(b);
	free(sig);
	free(base);
	free(target);
}

Test(delta, zstd_threads_roundtrip)
{
	/* Several MiB so zstd really splits the work into jobs; the base must
	 * still be used by every job (the delta stays small). */
	size_t bn = 6u << 20, tn;
	uint8_t *base = random_buf(bn, 5), *target = mutate(base, bn, 6, &tn);
	struct ug_delta_params p = params(3);
	uint64_t size;

	p.threads = 2;
	size = roundtrip(C_ZSTD, base, bn, target, tn, &p);
	cr_assert_lt(size, 64 * 1024, "threaded delta %llu bytes", (unsigned long long)size);
	size = roundtrip(C_RSYNC, base, bn, target, tn, &p);
	cr_assert_lt(size, tn / 2);
	free(base);
	free(target);
}

Test(delta, real_binary_all_codecs)
{
	const char *path = access("/usr/bin/ls", R_OK) == 0 ? "/usr/bin/ls" : "/proc/self/exe";
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	size_t bn, tn;
	uint8_t *base, *target;
	struct ug_delta_params p = params(19);
	uint64_t sizes[C__COUNT];

	cr_assert_geq(fd, 0);
	base = slurp(fd, &bn);
	close(fd);
	target = mutate(base, bn, 7, &tn);
	for (int c = 0; c < C__COUNT; c++)
		sizes[c] = roundtrip(c, base, bn, target, tn, &p);
	cr_assert_lt(sizes[C_ZSTD], tn / 10, "zstd delta %llu for %zu bytes",
		     (unsigned long long)sizes[C_ZSTD], tn);
	/* The design's claim: prefix mode beats a compressed librsync delta. */
	cr_assert_lt(sizes[C_ZSTD], sizes[C_RSYNC], "zstd %llu, rsync %llu",
		     (unsigned long long)sizes[C_ZSTD], (unsigned long long)sizes[C_RSYNC]);
	free(base);
	free(target);
}

Test(delta, edge_cases_all_codecs)
{
	static const struct { size_t bn, tn; bool same; const char *what; } cases[] = {
		{ 0, 0, false, "both empty" },
		{ 0, 5000, false, "empty base" },
		{ 5000, 0, false, "shrink to empty" },
		{ 1, 1, false, "1-byte files" },
		{ 1, 1, true, "1-byte identical" },
		{ 0, 1, false, "empty to 1 byte" },
		{ 1, 0, false, "1 byte to empty" },
		{ 4096, 4096, true, "identical" },
	};
	struct ug_delta_params p = params(19);

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		uint8_t *base = random_buf(cases[i].bn, 10 + i);
		uint8_t *target = cases[i].same ? random_buf(cases[i].tn, 10 + i)
						: random_buf(cases[i].tn, 100 + i);

		for (int c = 0; c < C__COUNT; c++) {
			uint64_t size = roundtrip(c, base, cases[i].bn, target,
						  cases[i].tn, &p);
			cr_assert_lt(size, cases[i].tn + 200, "%s, %s: %llu bytes",
				     cases[i].what, codec_names[c],
				     (unsigned long long)size);
		}
		free(base);
		free(target);
	}
}

Test(delta, identical_file_delta_is_tiny)
{
	size_t n = 1u << 20;
	uint8_t *data = random_buf(n, 20);
	struct ug_delta_params p = params(19);
	uint64_t z = roundtrip(C_ZSTD, data, n, data, n, &p);
	uint64_t b = roundtrip(C_BUNDLE, data, n, data, n, &p);
	uint64_t r = roundtrip(C_RSYNC, data, n, data, n, &p);

	/* 1 MiB is 8 zstd blocks of 128 KiB (the format's maximum), each with
	 * a header and one long match (~12 bytes), plus frame header and
	 * checksum: about 110 bytes, 0.01% of the file. */
	cr_assert_lt(z, 128, "zstd prefix: %llu bytes for an identical 1 MiB file",
		     (unsigned long long)z);
	cr_assert_lt(b, 128, "bundle: %llu bytes", (unsigned long long)b);
	cr_assert_lt(r, 1024, "rsync: %llu bytes", (unsigned long long)r);
	free(data);
}

Test(delta, prefix_much_smaller_than_plain)
{
	size_t bn = 512 * 1024, tn, plain_len;
	uint8_t *base = random_buf(bn, 30), *target = mutate(base, bn, 31, &tn), *plain;
	struct ug_delta_params p = params(19);
	uint64_t size = roundtrip(C_ZSTD, base, bn, target, tn, &p);

	cr_assert_eq(ug_zstd_compress_buf(target, tn, 19, NULL, 0, &plain, &plain_len), 0);
	cr_assert_lt(size * 50, plain_len, "delta %llu, plain %zu",
		     (unsigned long long)size, plain_len);
	free(plain);
	free(base);
	free(target);
}

Test(delta, window_exceeded_is_efbig)
{
	uint8_t *base = random_buf(3000, 40), *target = random_buf(2000, 41);
	int bfd = tfile_with(base, 3000), tfd = tfile_with(target, 2000);
	int dfd = tfile();
	struct ug_delta_params p = params(3);
	uint64_t size = 7, mem = 7;

	p.window = 4999;
	cr_assert_eq(ug_delta_zstd_create(bfd, tfd, dfd, &p, &size, &mem), -EFBIG);
	cr_assert_eq(ug_delta_bundle_create(&bfd, 1, &tfd, 1, dfd, &p, &size, &mem), -EFBIG);
	cr_assert_eq(size, 7, "ret_size untouched on failure");
	cr_assert_eq(mem, 7, "ret_memory untouched on failure");
	cr_assert_eq(fsize(dfd), 0, "nothing written");
	/* Exactly at the window is fine. */
	p.window = 5000;
	cr_assert_eq(ug_delta_zstd_create(bfd, tfd, dfd, &p, &size, &mem), 0);
	cr_assert_geq(mem, 5000);
	free(base);
	free(target);
}

Test(delta, fd_offsets)
{
	/* Inputs are read from offset 0 whatever the fd offset; delta and
	 * output go sequentially from the current offset. */
	size_t bn = 50000, tn;
	uint8_t *base = random_buf(bn, 50), *target = mutate(base, bn, 51, &tn);
	int bfd = tfile_with(base, bn), tfd = tfile_with(target, tn), dfd = tfile();
	int ofd = tfile();
	struct ug_delta_params p = params(3);
	uint64_t size, mem;
	uint8_t *out;
	size_t olen;

	cr_assert_eq(ug_write_all(dfd, "HEADER", 6), 0);
	cr_assert_eq(ug_delta_zstd_create(bfd, tfd, dfd, &p, &size, &mem), 0);
	cr_assert_eq(fsize(dfd), 6 + size);
	cr_assert_eq(lseek(dfd, 6, SEEK_SET), 6);
	cr_assert_eq(ug_write_all(ofd, "OUT:", 4), 0);
	cr_assert_eq(ug_delta_zstd_apply(bfd, dfd, ofd, tn, mem), 0);
	out = slurp(ofd, &olen);
	cr_assert_eq(olen, 4 + tn);
	cr_assert_eq(memcmp(out, "OUT:", 4), 0);
	cr_assert_eq(memcmp(out + 4, target, tn), 0);
	free(out);

	/* The same for librsync: signature and delta after a header. */
	{
		int sfd = tfile(), rfd = tfile(), o2 = tfile();
		uint64_t ssize;

		cr_assert_eq(ug_write_all(sfd, "SIG", 3), 0);
		cr_assert_eq(ug_delta_rsync_signature(bfd, sfd, &ssize), 0);
		cr_assert_eq(fsize(sfd), 3 + ssize);
		cr_assert_eq(lseek(sfd, 3, SEEK_SET), 3);
		cr_assert_eq(ug_write_all(rfd, "DELTA", 5), 0);
		cr_assert_eq(ug_delta_rsync_from_signature(sfd, tfd, rfd, &p, &size), 0);
		cr_assert_eq(fsize(rfd), 5 + size);
		cr_assert_eq(lseek(rfd, 5, SEEK_SET), 5);
		cr_assert_eq(ug_write_all(o2, "OUT:", 4), 0);
		cr_assert_eq(ug_delta_rsync_apply(bfd, rfd, o2, tn), 0);
		out = slurp(o2, &olen);
		cr_assert_eq(olen, 4 + tn);
		cr_assert_eq(memcmp(out + 4, target, tn), 0);
		free(out);
	}
	free(base);
	free(target);
}

Test(delta, null_params_mean_defaults)
{
	size_t bn = 20000, tn;
	uint8_t *base = random_buf(bn, 55), *target = mutate(base, bn, 56, &tn);
	struct ug_delta_params def;
	uint64_t a, b;

	ug_delta_params_default(&def);
	for (int c = 0; c < C__COUNT; c++) {
		a = roundtrip(c, base, bn, target, tn, NULL);
		b = roundtrip(c, base, bn, target, tn, &def);
		cr_assert_eq(a, b, "%s: NULL params differ from the defaults", codec_names[c]);
	}
	free(base);
	free(target);
}

/* ------------------------------------------------------------ bundle */

Test(delta, bundle_moved_code_beats_per_file)
{
	/* Three files; a 64 KiB block moves from a.c to b.c, c.c is edited,
	 * and a new file d.c copies part of c.c. Per-file deltas must send
	 * the moved block as literals; the bundle finds it in the prefix. */
	size_t n = 128 * 1024, blk = 64 * 1024;
	uint8_t *a = random_buf(n, 60), *b = random_buf(n, 61), *c = random_buf(n, 62);
	uint8_t *a2 = malloc(n - blk), *b2 = malloc(n + blk), *c2, *d2;
	size_t c2n, d2n = 20000;
	struct ug_delta_params p = params(19);
	int bases[3], targets[4], outs[4], dfd = tfile();
	uint64_t osizes[4], size, mem, per_file = 0;

	cr_assert(a2 && b2);
	memcpy(a2, a, n / 4);
	memcpy(a2 + n / 4, a + n / 4 + blk, n - n / 4 - blk);
	memcpy(b2, b, n / 2);
	memcpy(b2 + n / 2, a + n / 4, blk);
	memcpy(b2 + n / 2 + blk, b + n / 2, n / 2);
	c2 = mutate(c, n, 63, &c2n);
	d2 = malloc(d2n);
	cr_assert_not_null(d2);
	memcpy(d2, c + 1000, d2n);

	bases[0] = tfile_with(a, n);
	bases[1] = tfile_with(b, n);
	bases[2] = tfile_with(c, n);
	targets[0] = tfile_with(a2, n - blk);
	targets[1] = tfile_with(b2, n + blk);
	targets[2] = tfile_with(c2, c2n);
	targets[3] = tfile_with(d2, d2n);
	osizes[0] = n - blk;
	osizes[1] = n + blk;
	osizes[2] = c2n;
	osizes[3] = d2n;
	cr_assert_eq(ug_delta_bundle_create(bases, 3, targets, 4, dfd, &p, &size, &mem), 0);
	cr_assert_eq(size, fsize(dfd));
	cr_assert_geq(mem, 3 * n + osizes[0] + osizes[1] + osizes[2] + osizes[3]);

	for (int i = 0; i < 4; i++)
		outs[i] = tfile();
	rewind_fd(dfd);
	cr_assert_eq(ug_delta_bundle_apply(bases, 3, dfd, outs, osizes, 4, mem), 0);
	cr_assert(fd_equals(outs[0], a2, n - blk));
	cr_assert(fd_equals(outs[1], b2, n + blk));
	cr_assert(fd_equals(outs[2], c2, c2n));
	cr_assert(fd_equals(outs[3], d2, d2n));

	per_file += roundtrip(C_ZSTD, a, n, a2, n - blk, &p);
	per_file += roundtrip(C_ZSTD, b, n, b2, n + blk, &p);
	per_file += roundtrip(C_ZSTD, c, n, c2, c2n, &p);
	per_file += roundtrip(C_ZSTD, NULL, 0, d2, d2n, &p);
	cr_assert_lt(size * 5, per_file, "bundle %llu, per-file sum %llu",
		     (unsigned long long)size, (unsigned long long)per_file);

	/* The split is exact: sizes that do not add up fail. */
	osizes[3] = d2n + 1;
	rewind_fd(dfd);
	cr_assert_eq(ug_delta_bundle_apply(bases, 3, dfd, outs, osizes, 4, mem), -EBADMSG);
	osizes[3] = d2n - 1;
	rewind_fd(dfd);
	cr_assert_eq(ug_delta_bundle_apply(bases, 3, dfd, outs, osizes, 4, mem), -EBADMSG);
	/* Bases in the wrong order are a different prefix. */
	osizes[3] = d2n;
	{
		int swapped[3] = { bases[1], bases[0], bases[2] };
		rewind_fd(dfd);
		cr_assert_eq(ug_delta_bundle_apply(swapped, 3, dfd, outs, osizes, 4, mem),
			     -EBADMSG);
	}
	free(a);
	free(b);
	free(c);
	free(a2);
	free(b2);
	free(c2);
	free(d2);
}

Test(delta, bundle_without_bases)
{
	uint8_t *x = random_buf(10000, 70), *y = malloc(20000);
	int targets[2], outs[2], dfd = tfile();
	uint64_t osizes[2] = { 10000, 20000 }, size, mem;
	struct ug_delta_params p = params(3);

	cr_assert_not_null(y);
	memcpy(y, x, 10000); /* y repeats x: matched within the stream */
	memcpy(y + 10000, x, 10000);
	targets[0] = tfile_with(x, 10000);
	targets[1] = tfile_with(y, 20000);
	outs[0] = tfile();
	outs[1] = tfile();
	cr_assert_eq(ug_delta_bundle_create(NULL, 0, targets, 2, dfd, &p, &size, &mem), 0);
	cr_assert_lt(size, 11000);
	rewind_fd(dfd);
	cr_assert_eq(ug_delta_bundle_apply(NULL, 0, dfd, outs, osizes, 2, mem), 0);
	cr_assert(fd_equals(outs[0], x, 10000));
	cr_assert(fd_equals(outs[1], y, 20000));
	cr_assert_eq(ug_delta_bundle_create(NULL, 0, targets, 0, dfd, &p, &size, &mem), -EINVAL);
	free(x);
	free(y);
}

/* ------------------------------------------------------------ large file */

/* Writes the base, or the target (the base's PRNG stream with edits), of
 * the large-file test in 1 MiB chunks; never holds the file in memory. */
static void write_large(int fd, size_t size, bool target)
{
	uint8_t *chunk = malloc(1u << 20);
	uint64_t s = 12345;
	size_t done = 0, ci = 0;

	cr_assert_not_null(chunk);
	while (done < size) {
		size_t n = size - done < (1u << 20) ? size - done : (1u << 20);

		for (size_t i = 0; i < n; i += 8) {
			uint64_t v = xorshift(&s);
			memcpy(chunk + i, &v, 8);
		}
		if (target && ci % 16 == 5) {
			/* an edit and an insertion every 16 MiB */
			memset(chunk + 1000, 'x', 3000);
			cr_assert_eq(ug_write_all(fd, "inserted bytes", 14), 0);
		}
		cr_assert_eq(ug_write_all(fd, chunk, n), 0);
		done += n;
		ci++;
	}
	free(chunk);
}

static bool files_equal(int a, int b)
{
	uint8_t *x = malloc(1u << 20), *y = malloc(1u << 20);
	uint64_t off = 0;
	bool eq = fsize(a) == fsize(b);

	cr_assert(x && y);
	while (eq) {
		ssize_t n = pread(a, x, 1u << 20, (off_t)off);
		ssize_t m = pread(b, y, 1u << 20, (off_t)off);

		cr_assert(n >= 0 && m >= 0);
		if (n != m || memcmp(x, y, (size_t)n) != 0)
			eq = false;
		if (n == 0)
			break;
		off += (uint64_t)n;
	}
	free(x);
	free(y);
	return eq;
}

Test(delta, rsync_large_file_bounded_memory)
{
	size_t size = 80u << 20;
	int bfd = tfile(), tfd = tfile(), dfd = tfile(), ofd = tfile();
	struct ug_delta_params p = params(3);
	struct rusage ru;
	uint64_t dsize;

	write_large(bfd, size, false);
	write_large(tfd, size, true);
	cr_assert_eq(ug_delta_rsync_create(bfd, tfd, dfd, &p, &dsize), 0);
	cr_assert_lt(dsize, 1u << 20, "delta %llu bytes", (unsigned long long)dsize);
	rewind_fd(dfd);
	cr_assert_eq(ug_delta_rsync_apply(bfd, dfd, ofd, fsize(tfd)), 0);
	cr_assert(files_equal(ofd, tfd), "patched file differs");
	/* Peak RSS of this (forked) test process, in KiB: the codec streams,
	 * so it stays far below the 80 MiB file (ASan's shadow included). */
	cr_assert_eq(getrusage(RUSAGE_SELF, &ru), 0);
	cr_log_info("rsync 80 MiB: delta %llu bytes, peak RSS %ld KiB",
		    (unsigned long long)dsize, ru.ru_maxrss);
	cr_assert_lt((uint64_t)ru.ru_maxrss, (uint64_t)(size >> 10) / 2,
		     "peak RSS %ld KiB for an %zu-byte file", ru.ru_maxrss, size);
}

/* ------------------------------------------------------------ hostile */

static int truncated_copy(int dfd, size_t len)
{
	size_t n;
	uint8_t *p = slurp(dfd, &n);
	int fd;

	cr_assert_leq(len, n);
	fd = tfile_with(p, len);
	rewind_fd(fd);
	free(p);
	return fd;
}

Test(delta, truncated_delta_is_ebadmsg)
{
	size_t bn = 100000, tn;
	uint8_t *base = random_buf(bn, 80), *target = mutate(base, bn, 81, &tn);
	int bfd = tfile_with(base, bn), tfd = tfile_with(target, tn);
	struct ug_delta_params p = params(3);

	for (int c = C_ZSTD; c <= C_RSYNC; c++) {
		uint64_t mem;
		int dfd = make_delta(c, bfd, tfd, &p, &mem);
		size_t n = (size_t)fsize(dfd);
		size_t cuts[] = { 0, 1, 4, n / 2, n - 4, n - 1 };

		for (size_t i = 0; i < sizeof(cuts) / sizeof(cuts[0]); i++) {
			int cfd = truncated_copy(dfd, cuts[i]), ofd = tfile();
			int r = apply(c, bfd, cfd, ofd, tn, mem);

			cr_assert_eq(r, -EBADMSG, "%s cut at %zu/%zu: %d",
				     codec_names[c], cuts[i], n, r);
			cr_assert_leq(fsize(ofd), tn);
			close(cfd);
			close(ofd);
		}
		/* Trailing bytes after the frame are refused too. */
		{
			size_t len;
			uint8_t *d = slurp(dfd, &len), *e = malloc(len + 1);
			int efd, ofd = tfile();

			memcpy(e, d, len);
			e[len] = 0;
			efd = tfile_with(e, len + 1);
			rewind_fd(efd);
			cr_assert_eq(apply(c, bfd, efd, ofd, tn, mem), -EBADMSG,
				     "%s: trailing byte", codec_names[c]);
			free(d);
			free(e);
		}
	}
	free(base);
	free(target);
}

Test(delta, flipped_byte_is_ebadmsg)
{
	size_t bn = 30000, tn;
	uint8_t *base = random_buf(bn, 90), *target = mutate(base, bn, 91, &tn);
	int bfd = tfile_with(base, bn), tfd = tfile_with(target, tn);
	int ffd = tfile(), ofd = tfile();
	struct ug_delta_params p = params(3);

	for (int c = C_ZSTD; c <= C_RSYNC; c++) {
		uint64_t mem;
		int dfd = make_delta(c, bfd, tfd, &p, &mem);
		size_t n;
		uint8_t *d = slurp(dfd, &n);

		/* Every byte position: a flipped byte either fails or (a bit
		 * zstd ignores) still gives the right output; never wrong
		 * output reported as success, never a crash. Past the frame
		 * header the failure is exactly -EBADMSG. */
		for (size_t i = 0; i < n; i++) {
			int r;

			d[i] ^= 0x40;
			refill(ffd, d, n);
			d[i] ^= 0x40;
			refill(ofd, "", 0);
			r = apply(c, bfd, ffd, ofd, tn, mem);
			if (r == 0)
				cr_assert(fd_equals(ofd, target, tn),
					  "%s: flip at %zu gave wrong output", codec_names[c], i);
			else if (i >= 18)
				cr_assert_eq(r, -EBADMSG, "%s: flip at %zu: %d",
					     codec_names[c], i, r);
			else
				cr_assert(r == -EBADMSG || r == -E2BIG,
					  "%s: flip at %zu: %d", codec_names[c], i, r);
			cr_assert_leq(fsize(ofd), tn);
		}
		/* The last byte is zstd's checksum: a flip there must fail. */
		d[n - 1] ^= 1;
		refill(ffd, d, n);
		refill(ofd, "", 0);
		cr_assert_eq(apply(c, bfd, ffd, ofd, tn, mem), -EBADMSG);
		free(d);
	}
	free(base);
	free(target);
}

Test(delta, wrong_base)
{
	size_t bn = 80000, tn;
	uint8_t *base = random_buf(bn, 100), *target = mutate(base, bn, 101, &tn);
	uint8_t *other = random_buf(bn, 102);
	int bfd = tfile_with(base, bn), tfd = tfile_with(target, tn);
	int xfd = tfile_with(other, bn);
	struct ug_delta_params p = params(3);

	for (int c = C_ZSTD; c <= C_BUNDLE; c++) {
		uint64_t mem;
		int dfd = make_delta(c, bfd, tfd, &p, &mem), ofd = tfile();

		cr_assert_eq(apply(c, xfd, dfd, ofd, tn, mem), -EBADMSG, "%s", codec_names[c]);
	}
	/* librsync has no end-to-end checksum: the wrong base of the same
	 * size gives wrong content of the right size. The caller's hash
	 * check of the result is what catches it. */
	{
		int dfd = make_delta(C_RSYNC, bfd, tfd, &p, NULL), ofd = tfile();

		cr_assert_eq(ug_delta_rsync_apply(xfd, dfd, ofd, tn), 0);
		cr_assert_eq(fsize(ofd), tn);
		cr_assert_not(fd_equals(ofd, target, tn));
	}
	/* A shorter wrong base: copies past its end are refused. */
	{
		int sfd = tfile_with(other, 1000), dfd = make_delta(C_RSYNC, bfd, tfd, &p, NULL);
		int ofd = tfile();

		cr_assert_eq(ug_delta_rsync_apply(sfd, dfd, ofd, tn), -EBADMSG);
	}
	free(base);
	free(target);
	free(other);
}

Test(delta, expect_size_enforced)
{
	size_t bn = 70000, tn;
	uint8_t *base = random_buf(bn, 110), *target = mutate(base, bn, 111, &tn);
	int bfd = tfile_with(base, bn), tfd = tfile_with(target, tn);
	struct ug_delta_params p = params(3);

	for (int c = C_ZSTD; c <= C_RSYNC; c++) {
		uint64_t mem;
		int dfd = make_delta(c, bfd, tfd, &p, &mem);
		uint64_t expects[] = { 0, 1, tn - 1, tn + 1, tn * 2 };

		for (size_t i = 0; i < sizeof(expects) / sizeof(expects[0]); i++) {
			int ofd = tfile();

			rewind_fd(dfd);
			cr_assert_eq(apply(c, bfd, dfd, ofd, expects[i], mem), -EBADMSG,
				     "%s: expect %llu of %zu", codec_names[c],
				     (unsigned long long)expects[i], tn);
			/* Never written past what the caller expects. */
			cr_assert_leq(fsize(ofd), expects[i]);
			close(ofd);
		}
	}
	free(base);
	free(target);
}

Test(delta, trailing_bytes_after_large_delta)
{
	/* A delta larger than one read buffer, so the check for bytes after
	 * the frame has to read past the buffer it decoded from. */
	size_t tn = 400000;
	uint8_t *target = random_buf(tn, 75);
	int bfd = tfile_with("", 0), tfd = tfile_with(target, tn);
	struct ug_delta_params p = params(1);

	for (int c = C_ZSTD; c <= C_RSYNC; c++) {
		uint64_t mem;
		int dfd = make_delta(c, bfd, tfd, &p, &mem), ofd = tfile();
		size_t n = (size_t)fsize(dfd);

		cr_assert_gt(n, 256 * 1024);
		cr_assert_eq(apply(c, bfd, dfd, ofd, tn, mem), 0);
		cr_assert(fd_equals(ofd, target, tn));
		cr_assert_eq(pwrite(dfd, "x", 1, (off_t)n), 1);
		rewind_fd(dfd);
		refill(ofd, "", 0);
		cr_assert_eq(apply(c, bfd, dfd, ofd, tn, mem), -EBADMSG, "%s", codec_names[c]);
	}
	free(target);
}

/* A zstd frame of n zero blocks of 128 KiB (RLE), no content size, no
 * checksum: tiny on disk, big when decoded. */
static uint8_t *zstd_bomb(size_t blocks, size_t *ret_len)
{
	size_t len = 6 + 4 * blocks, o = 0;
	uint8_t *p = malloc(len);

	cr_assert_not_null(p);
	memcpy(p, "\x28\xb5\x2f\xfd", 4);
	o = 4;
	p[o++] = 0x00;             /* no FCS, not single-segment, no checksum */
	p[o++] = (17 - 10) << 3;   /* window 128 KiB */
	for (size_t i = 0; i < blocks; i++) {
		uint32_t h = (128u << 10) << 3 | 1u << 1 | (i + 1 == blocks);

		p[o++] = h & 0xff;
		p[o++] = (h >> 8) & 0xff;
		p[o++] = (h >> 16) & 0xff;
		p[o++] = 0;            /* the RLE byte */
	}
	*ret_len = o;
	return p;
}

Test(delta, memory_limits_are_e2big)
{
	size_t bn = 100000, tn = 1u << 20;
	uint8_t *base = random_buf(bn, 120), *target = random_buf(tn, 121);
	int bfd = tfile_with(base, bn), tfd = tfile_with(target, tn);
	struct ug_delta_params p = params(1);
	uint64_t mem;
	int dfd = make_delta(C_ZSTD, bfd, tfd, &p, &mem), ofd = tfile();

	/* The frame's window (1 MiB) does not fit in what is left after
	 * the base. */
	cr_assert_eq(ug_delta_zstd_apply(bfd, dfd, ofd, tn, bn + 64 * 1024), -E2BIG);
	cr_assert_eq(fsize(ofd), 0);
	/* The base alone is over the limit, or leaves less than zstd's
	 * smallest window. */
	rewind_fd(dfd);
	cr_assert_eq(ug_delta_zstd_apply(bfd, dfd, ofd, tn, bn - 1), -E2BIG);
	rewind_fd(dfd);
	cr_assert_eq(ug_delta_zstd_apply(bfd, dfd, ofd, tn, bn + 1000), -E2BIG);
	rewind_fd(dfd);
	cr_assert_eq(ug_delta_bundle_apply(&bfd, 1, dfd, &ofd, (uint64_t[]){ tn }, 1,
					   bn + 4096), -E2BIG);
	/* The stated bound is enough. */
	rewind_fd(dfd);
	cr_assert_eq(ug_delta_zstd_apply(bfd, dfd, ofd, tn, mem), 0);

	/* A hand-made frame asking for a 2 GiB window (windowLog 31). */
	{
		static const uint8_t big[] = {
			0x28, 0xb5, 0x2f, 0xfd, 0x00, (31 - 10) << 3, 0x01, 0x00, 0x00,
		};
		int hfd = tfile_with(big, sizeof(big)), o2 = tfile();

		rewind_fd(hfd);
		cr_assert_eq(ug_delta_zstd_apply(bfd, hfd, o2, 0, 64u << 20), -E2BIG);
		rewind_fd(hfd);
		cr_assert_eq(ug_delta_rsync_apply(bfd, hfd, o2, 0), -E2BIG);
	}
	free(base);
	free(target);
}

Test(delta, zstd_bomb_bounded_by_expect_size)
{
	/* 1 GiB of zeros in 32 KiB: the applier stops at expect_size. */
	size_t len;
	uint8_t *bomb = zstd_bomb(8192, &len), *base = random_buf(10, 130);
	int bfd = tfile_with(base, 10), dfd = tfile_with(bomb, len), ofd = tfile();

	rewind_fd(dfd);
	cr_assert_eq(ug_delta_zstd_apply(bfd, dfd, ofd, 1u << 20, 64u << 20), -EBADMSG);
	cr_assert_eq(fsize(ofd), 1u << 20);
	free(bomb);
	free(base);
}

Test(delta, garbage_signature_is_ebadmsg)
{
	uint8_t *target = random_buf(10000, 140), *junk = random_buf(5000, 141);
	int tfd = tfile_with(target, 10000);
	struct ug_delta_params p = params(3);
	uint8_t sig[12 + 36];
	struct { const char *what; uint8_t hdr[12]; size_t len; } cases[] = {
		{ "md4 magic", "rs\x01\x36\0\0\x08\0\0\0\0\x10", 12 },
		{ "rk-md4 magic", "rs\x01\x46\0\0\x08\0\0\0\0\x10", 12 },
		{ "delta magic", "rs\x02\x36\0\0\x08\0\0\0\0\x10", 12 },
		{ "block_len 0", "rs\x01G\0\0\0\0\0\0\0\x20", 12 },
		{ "block_len 2 GiB", "rs\x01G\x80\0\0\0\0\0\0\x20", 12 },
		{ "block_len 1 GiB", "rs\x01G\x40\0\0\0\0\0\0\x20", 12 },
		{ "strong_len 0", "rs\x01G\0\0\x08\0\0\0\0\0", 12 },
		{ "strong_len 33", "rs\x01G\0\0\x08\0\0\0\0\x21", 12 },
		{ "short header", "rs\x01G\0\0\x08\0", 8 },
		{ "empty", "", 0 },
	};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		int sfd = tfile_with(cases[i].hdr, cases[i].len), dfd = tfile();

		rewind_fd(sfd);
		cr_assert_eq(ug_delta_rsync_from_signature(sfd, tfd, dfd, &p, NULL), -EBADMSG,
			     "%s", cases[i].what);
		cr_assert_eq(fsize(dfd), 0);
	}
	/* Random bytes. */
	{
		int sfd = tfile_with(junk, 5000), dfd = tfile();

		rewind_fd(sfd);
		cr_assert_eq(ug_delta_rsync_from_signature(sfd, tfd, dfd, &p, NULL), -EBADMSG);
	}
	/* A valid header and one and a half block sums: cut mid-block. */
	memcpy(sig, "rs\x01G\0\0\x08\0\0\0\0\x20", 12);
	memcpy(sig + 12, junk, 36);
	{
		int sfd = tfile_with(sig, 12 + 36 + 0), dfd = tfile();
		int cfd = tfile_with(sig, 12 + 20), d2 = tfile();

		rewind_fd(sfd);
		cr_assert_eq(ug_delta_rsync_from_signature(sfd, tfd, dfd, &p, NULL), 0,
			     "whole block sums are a valid (if useless) signature");
		rewind_fd(cfd);
		cr_assert_eq(ug_delta_rsync_from_signature(cfd, tfd, d2, &p, NULL), -EBADMSG);
	}
	free(target);
	free(junk);
}

Test(delta, oversized_signature_is_e2big)
{
	uint8_t *target = random_buf(1000, 150);
	int tfd = tfile_with(target, 1000), sfd = tfile(), dfd = tfile();

	/* Sparse: costs no disk. */
	cr_assert_eq(ug_write_all(sfd, "rs\x01G\0\0\x08\0\0\0\0\x20", 12), 0);
	cr_assert_eq(ftruncate(sfd, (off_t)UG_RSYNC_SIG_MAX + 13), 0);
	cr_assert_eq(lseek(sfd, 0, SEEK_SET), 0);
	cr_assert_eq(ug_delta_rsync_from_signature(sfd, tfd, dfd, NULL, NULL), -E2BIG);
	/* Read from the fd's offset: 13 bytes in, the rest fits. */
	cr_assert_eq(lseek(sfd, 13, SEEK_SET), 13);
	cr_assert_neq(ug_delta_rsync_from_signature(sfd, tfd, dfd, NULL, NULL), -E2BIG);
	free(target);
}

Test(delta, hostile_rsync_deltas)
{
	uint8_t *base = random_buf(100, 160);
	int bfd = tfile_with(base, 100);
	/* librsync commands: 0x45 = COPY(pos: 1 byte, len: 1 byte), 0x00 =
	 * END, 0x01..0x40 = literal of that many bytes. */
	static const struct { const char *what; uint8_t d[16]; size_t len; int rc; } cases[] = {
		{ "copy past the base", "rs\x02\x36\x45\xf0\x10\x00", 8, -EBADMSG },
		{ "copy straddling the end", "rs\x02\x36\x45\x60\x10\x00", 8, -EBADMSG },
		{ "no END", "rs\x02\x36\x45\x00\x10", 7, -EBADMSG },
		{ "bad magic", "rs\x02\x37\x00", 5, -EBADMSG },
		{ "data after END", "rs\x02\x36\x45\x00\x10\x00\x01", 9, -EBADMSG },
		{ "literal cut short", "rs\x02\x36\x04" "ab", 7, -EBADMSG },
		{ "valid", "rs\x02\x36\x45\x00\x10\x02hi\x00", 11, 0 },
	};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		uint8_t *z;
		size_t zlen;
		int dfd, ofd = tfile();

		cr_assert_eq(ug_zstd_compress_buf(cases[i].d, cases[i].len, 3, NULL, 0,
						  &z, &zlen), 0);
		dfd = tfile_with(z, zlen);
		rewind_fd(dfd);
		cr_assert_eq(ug_delta_rsync_apply(bfd, dfd, ofd, 18), cases[i].rc,
			     "%s", cases[i].what);
		free(z);
	}
	/* Not zstd at all. */
	{
		int dfd = tfile_with("rs\x02\x36\x00", 5), ofd = tfile();

		rewind_fd(dfd);
		cr_assert_eq(ug_delta_rsync_apply(bfd, dfd, ofd, 0), -EBADMSG);
	}
	/* A literal claiming 4 GiB, with 300 bytes of it present: the
	 * output stops at expect_size. */
	{
		uint8_t d[9 + 300], *z;
		size_t zlen;
		int dfd, ofd = tfile();

		memcpy(d, "rs\x02\x36\x43\xff\xff\xff\xff", 9);
		memset(d + 9, 'L', 300);
		cr_assert_eq(ug_zstd_compress_buf(d, sizeof(d), 3, NULL, 0, &z, &zlen), 0);
		dfd = tfile_with(z, zlen);
		rewind_fd(dfd);
		cr_assert_eq(ug_delta_rsync_apply(bfd, dfd, ofd, 100), -EBADMSG);
		cr_assert_leq(fsize(ofd), 100);
		free(z);
	}
	free(base);
}

/* ------------------------------------------------------------ in-memory */

Test(delta, zstd_buf_roundtrip)
{
	size_t n = 200000, tn, clen, plen, dlen;
	uint8_t *doc = random_buf(n, 170), *doc2 = mutate(doc, n, 171, &tn);
	uint8_t *other = random_buf(n, 172), *c, *pc, *d;

	cr_assert_eq(ug_zstd_compress_buf(doc2, tn, 19, NULL, 0, &c, &clen), 0);
	cr_assert_eq(ug_zstd_decompress_buf(c, clen, NULL, 0, tn, &d, &dlen), 0);
	cr_assert_eq(dlen, tn);
	cr_assert_eq(memcmp(d, doc2, tn), 0);
	cr_assert_eq(d[dlen], 0, "NUL-terminated");
	free(d);
	/* With the previous version as prefix (manifest deltas). */
	cr_assert_eq(ug_zstd_compress_buf(doc2, tn, 19, doc, n, &pc, &plen), 0);
	cr_assert_lt(plen * 20, clen, "prefix %zu, plain %zu", plen, clen);
	cr_assert_eq(ug_zstd_decompress_buf(pc, plen, doc, n, tn, &d, &dlen), 0);
	cr_assert_eq(dlen, tn);
	cr_assert_eq(memcmp(d, doc2, tn), 0);
	free(d);
	/* Without the prefix, or with another one, it does not decode. */
	d = NULL;
	cr_assert_eq(ug_zstd_decompress_buf(pc, plen, NULL, 0, tn, &d, &dlen), -EBADMSG);
	cr_assert_eq(ug_zstd_decompress_buf(pc, plen, other, n, tn, &d, &dlen), -EBADMSG);
	cr_assert_null(d, "ret untouched on failure");
	/* Empty input and empty content. */
	cr_assert_eq(ug_zstd_decompress_buf(c, 0, NULL, 0, tn, &d, &dlen), -EBADMSG);
	free(c);
	cr_assert_eq(ug_zstd_compress_buf("", 0, 3, NULL, 0, &c, &clen), 0);
	cr_assert_eq(ug_zstd_decompress_buf(c, clen, NULL, 0, 0, &d, &dlen), 0);
	cr_assert_eq(dlen, 0);
	free(d);
	free(c);
	free(pc);
	free(doc);
	free(doc2);
	free(other);
}

Test(delta, zstd_buf_hostile)
{
	size_t n = 100000, clen, dlen, blen;
	uint8_t *doc = random_buf(n, 180), *c, *d = NULL, *bomb;

	cr_assert_eq(ug_zstd_compress_buf(doc, n, 3, NULL, 0, &c, &clen), 0);
	/* Declared size over max: refused before decoding. */
	cr_assert_eq(ug_zstd_decompress_buf(c, clen, NULL, 0, n - 1, &d, &dlen), -E2BIG);
	cr_assert_eq(ug_zstd_decompress_buf(c, clen, NULL, 0, 0, &d, &dlen), -E2BIG);
	/* Exactly max is fine. */
	cr_assert_eq(ug_zstd_decompress_buf(c, clen, NULL, 0, n, &d, &dlen), 0);
	free(d);
	d = NULL;
	/* Truncated, trailing garbage, flipped checksum. */
	cr_assert_eq(ug_zstd_decompress_buf(c, clen - 1, NULL, 0, n, &d, &dlen), -EBADMSG);
	cr_assert_eq(ug_zstd_decompress_buf(c, clen / 2, NULL, 0, n, &d, &dlen), -EBADMSG);
	cr_assert_eq(ug_zstd_decompress_buf(c, 3, NULL, 0, n, &d, &dlen), -EBADMSG);
	{
		uint8_t *e = malloc(clen + 1);

		memcpy(e, c, clen);
		e[clen] = 0x28;
		cr_assert_eq(ug_zstd_decompress_buf(e, clen + 1, NULL, 0, n, &d, &dlen),
			     -EBADMSG);
		e[clen - 1] ^= 1;
		cr_assert_eq(ug_zstd_decompress_buf(e, clen, NULL, 0, n, &d, &dlen), -EBADMSG);
		free(e);
	}
	/* A frame that lies about its content size (FCS says 1000, the
	 * blocks hold 100000): header bytes 4.. are FHD and the FCS field. */
	{
		uint8_t fhd = c[4];
		unsigned fcs_bytes = (unsigned[]){ 0, 2, 4, 8 }[fhd >> 6];
		size_t fcs_off = 5 + !(fhd & 0x20);

		if (fcs_bytes == 0 && (fhd & 0x20))
			fcs_bytes = 1;
		cr_assert_geq(fcs_bytes, 2, "this frame has an FCS field");
		c[fcs_off] = 1000 & 0xff;
		c[fcs_off + 1] = (fcs_bytes == 2 ? (1000 - 256) : 1000) >> 8;
		for (unsigned i = 2; i < fcs_bytes; i++)
			c[fcs_off + i] = 0;
		cr_assert_eq(ug_zstd_decompress_buf(c, clen, NULL, 0, 1u << 30, &d, &dlen),
			     -EBADMSG);
	}
	/* 32 MiB of zeros in 1 KiB without a declared size: refused at max,
	 * having allocated at most max; accepted when max allows it. */
	bomb = zstd_bomb(256, &blen);
	cr_assert_eq(ug_zstd_decompress_buf(bomb, blen, NULL, 0, 1u << 20, &d, &dlen), -E2BIG);
	cr_assert_eq(ug_zstd_decompress_buf(bomb, blen, NULL, 0, (32u << 20) - 1, &d, &dlen),
		     -E2BIG);
	cr_assert_eq(ug_zstd_decompress_buf(bomb, blen, NULL, 0, 32u << 20, &d, &dlen), 0);
	cr_assert_eq(dlen, 32u << 20);
	cr_assert_eq(d[12345], 0);
	free(d);
	d = NULL;
	/* Exactly 128 KiB with max 128 KiB: the frame ends right at max. */
	free(bomb);
	bomb = zstd_bomb(1, &blen);
	cr_assert_eq(ug_zstd_decompress_buf(bomb, blen, NULL, 0, 128u << 10, &d, &dlen), 0);
	cr_assert_eq(dlen, 128u << 10);
	free(d);
	d = NULL;
	cr_assert_eq(ug_zstd_decompress_buf(bomb, blen, NULL, 0, (128u << 10) - 1, &d, &dlen),
		     -E2BIG);
	/* Random bytes and a frame header asking for a 2 GiB window. */
	cr_assert_eq(ug_zstd_decompress_buf(doc, 1000, NULL, 0, n, &d, &dlen), -EBADMSG);
	{
		static const uint8_t big[] = {
			0x28, 0xb5, 0x2f, 0xfd, 0x00, (31 - 10) << 3, 0x01, 0x00, 0x00,
		};
		cr_assert_eq(ug_zstd_decompress_buf(big, sizeof(big), NULL, 0, 1u << 20, &d,
						    &dlen), -E2BIG);
	}
	cr_assert_null(d);
	free(bomb);
	free(c);
	free(doc);
}

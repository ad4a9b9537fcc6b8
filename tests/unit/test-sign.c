/* test-sign.c - unit tests for src/sign.c: key generation and key files,
 * signature lines, and every way a signature or key file can be refused. */
#include "config.h"

#include <criterion/criterion.h>

#include <fcntl.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "sign.h"
#include "util.h"

#define CTX UG_SIGN_CONTEXT_MANIFEST

/* Each Criterion test runs in its own forked process: this state is
 * private to the test using it. */
#include "tmpdir.h"

static char keypath[128];

static void tmp_setup(void)
{
	ug_test_tmp_make("sign");
	snprintf(keypath, sizeof(keypath), "%s/key", tmpdir);
}

static void tmp_teardown(void)
{
	ug_test_tmp_remove();
}

TestSuite(sign, .init = tmp_setup, .fini = tmp_teardown);

static void gen(struct ug_seckey *k)
{
	cr_assert_eq(ug_key_generate(k), 0);
}

static void save(const struct ug_seckey *k, const char *path, const char *comment, int force)
{
	struct ug_error err = { "" };
	int r = ug_key_save(k, path, comment, force, &err);

	cr_assert_eq(r, 0, "save: %d %s", r, err.msg);
}

static char *slurp(const char *path, size_t *ret_len)
{
	char *data;
	size_t len;

	cr_assert_eq(ug_file_read(AT_FDCWD, path, 1u << 20, &data, &len), 0, "read '%s'", path);
	if (ret_len)
		*ret_len = len;
	return data;
}

static void put(const char *path, const void *data, size_t len, mode_t mode)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode);

	cr_assert_geq(fd, 0, "create '%s': %s", path, strerror(errno));
	cr_assert_eq(ug_write_all(fd, data, len), 0);
	cr_assert_eq(fchmod(fd, mode), 0);
	close(fd);
}

static char *sign_ok(const struct ug_seckey *k, const char *ctx, const void *msg, size_t len,
		     size_t *ret_len)
{
	char *sig = NULL;
	size_t sl = 0;

	cr_assert_eq(ug_sign(k, ctx, msg, len, &sig, &sl), 0);
	cr_assert_not_null(sig);
	cr_assert_eq(strlen(sig), sl);
	if (ret_len)
		*ret_len = sl;
	return sig;
}

static void expect_verify(const struct ug_pubkey *pk, const char *ctx, const void *msg, size_t len,
			  const char *sig, size_t sig_len, int rc, const char *want)
{
	struct ug_error err = { "" };
	int r = ug_sign_verify(pk, ctx, msg, len, sig, sig_len, &err);

	cr_assert_eq(r, rc, "verify gave %d (%s), want %d", r, err.msg, rc);
	if (want)
		cr_assert_not_null(strstr(err.msg, want), "message '%s' lacks '%s'", err.msg, want);
}

static void expect_seckey_fail(const char *path, int rc, const char *want)
{
	struct ug_error err = { "" };
	struct ug_seckey k;
	int r;

	memset(&k, 0xaa, sizeof(k));
	r = ug_seckey_load(path, &k, &err);
	cr_assert_eq(r, rc, "load gave %d (%s), want %d", r, err.msg, rc);
	cr_assert_not_null(strstr(err.msg, want), "message '%s' lacks '%s'", err.msg, want);
	for (size_t i = 0; i < sizeof(k.sk); i++)
		cr_assert_eq(k.sk[i], 0xaa, "ret must be untouched on failure");
}

static void b64(const void *bin, size_t n, char *out, size_t out_size)
{
	sodium_bin2base64(out, out_size, bin, n, sodium_base64_VARIANT_ORIGINAL);
}

static const char msg[] = "{\n\"format\":1\n}\n";

/* ---- keys and key files ------------------------------------------------- */

Test(sign, keygen_save_load_round_trip)
{
	struct ug_seckey k, l;
	struct ug_pubkey p;
	struct ug_error err = { "" };
	char pubpath[160];
	struct stat st;

	gen(&k);
	save(&k, keypath, "ops@master", 0);
	cr_assert_eq(stat(keypath, &st), 0);
	cr_assert_eq(st.st_mode & 07777, 0600, "secret key mode %o", st.st_mode & 07777);
	snprintf(pubpath, sizeof(pubpath), "%s.pub", keypath);
	cr_assert_eq(stat(pubpath, &st), 0);
	cr_assert_eq(st.st_mode & 07777, 0644);

	cr_assert_eq(ug_seckey_load(keypath, &l, &err), 0, "%s", err.msg);
	cr_assert(memcmp(k.sk, l.sk, sizeof(k.sk)) == 0);
	cr_assert(memcmp(k.pub.pk, l.pub.pk, sizeof(k.pub.pk)) == 0);
	cr_assert_eq(ug_pubkey_load(pubpath, &p, &err), 0, "%s", err.msg);
	cr_assert(memcmp(k.pub.pk, p.pk, sizeof(p.pk)) == 0);

	/* a loaded key signs what the public key file verifies */
	{
		char *sig = sign_ok(&l, CTX, msg, strlen(msg), NULL);
		expect_verify(&p, CTX, msg, strlen(msg), sig, strlen(sig), 0, NULL);
		free(sig);
	}
	ug_seckey_wipe(&l);
	for (size_t i = 0; i < sizeof(l.sk); i++)
		cr_assert_eq(l.sk[i], 0);
	ug_seckey_wipe(&k);
}

Test(sign, generated_keys_differ_and_are_consistent)
{
	struct ug_seckey a, b;
	uint8_t pk[crypto_sign_PUBLICKEYBYTES];

	gen(&a);
	gen(&b);
	cr_assert(memcmp(a.sk, b.sk, sizeof(a.sk)) != 0);
	crypto_sign_ed25519_sk_to_pk(pk, a.sk);
	cr_assert(memcmp(pk, a.pub.pk, sizeof(pk)) == 0);
}

Test(sign, key_files_have_the_documented_format)
{
	struct ug_seckey k;
	char pubpath[160], want[256], b[128], line[128];
	char *text;
	size_t len;

	gen(&k);
	save(&k, keypath, "ops@master", 0);

	text = slurp(keypath, &len);
	b64(k.sk, sizeof(k.sk), b, sizeof(b));
	snprintf(want, sizeof(want), "upgrid-ed25519-secret-v1\n%s\n", b);
	cr_assert_eq(strlen(b), 88);
	cr_assert_str_eq(text, want);
	cr_assert_eq(len, strlen(want));
	free(text);

	snprintf(pubpath, sizeof(pubpath), "%s.pub", keypath);
	text = slurp(pubpath, NULL);
	b64(k.pub.pk, sizeof(k.pub.pk), b, sizeof(b));
	snprintf(want, sizeof(want), "upgrid-ed25519 %s ops@master\n", b);
	cr_assert_str_eq(text, want);
	free(text);

	ug_pubkey_format(&k.pub, line, sizeof(line));
	snprintf(want, sizeof(want), "upgrid-ed25519 %s", b);
	cr_assert_str_eq(line, want, "format: no comment, no newline");

	/* without a comment the line ends right after the key */
	save(&k, keypath, NULL, 1);
	text = slurp(pubpath, NULL);
	snprintf(want, sizeof(want), "upgrid-ed25519 %s\n", b);
	cr_assert_str_eq(text, want);
	free(text);
}

Test(sign, pubkey_parse_accepts_the_line_forms)
{
	struct ug_seckey k;
	struct ug_pubkey p;
	char line[128], text[256];

	gen(&k);
	ug_pubkey_format(&k.pub, line, sizeof(line));
	cr_assert_eq(ug_pubkey_parse(line, strlen(line), &p, NULL), 0);
	cr_assert(memcmp(p.pk, k.pub.pk, sizeof(p.pk)) == 0);
	snprintf(text, sizeof(text), "%s\n", line);
	cr_assert_eq(ug_pubkey_parse(text, strlen(text), &p, NULL), 0);
	snprintf(text, sizeof(text), "%s a comment with spaces\n", line);
	cr_assert_eq(ug_pubkey_parse(text, strlen(text), &p, NULL), 0);
	cr_assert(memcmp(p.pk, k.pub.pk, sizeof(p.pk)) == 0);
}

Test(sign, key_id_is_blake2b_prefix_of_public_key)
{
	struct ug_seckey a, b;
	char id[UG_KEYID_HEX_LEN + 1], id2[UG_KEYID_HEX_LEN + 1], want[UG_KEYID_HEX_LEN + 1];
	uint8_t h[32];

	gen(&a);
	gen(&b);
	ug_key_id(&a.pub, id);
	crypto_generichash(h, sizeof(h), a.pub.pk, sizeof(a.pub.pk), NULL, 0);
	for (int i = 0; i < 8; i++)
		snprintf(want + 2 * i, 3, "%02x", h[i]);
	cr_assert_str_eq(id, want);
	cr_assert_eq(strlen(id), UG_KEYID_HEX_LEN);
	ug_key_id(&b.pub, id2);
	cr_assert_str_neq(id, id2);
}

Test(sign, save_refuses_to_overwrite_without_force)
{
	struct ug_seckey a, b, l;
	struct ug_error err = { "" };
	char pubpath[160];
	char *before, *after;

	gen(&a);
	gen(&b);
	save(&a, keypath, "a", 0);
	before = slurp(keypath, NULL);
	cr_assert_eq(ug_key_save(&b, keypath, "b", 0, &err), -EEXIST);
	cr_assert_not_null(strstr(err.msg, "already exists"), "%s", err.msg);
	cr_assert_not_null(strstr(err.msg, keypath));
	after = slurp(keypath, NULL);
	cr_assert_str_eq(before, after, "the old key is untouched");
	free(after);

	/* force replaces both files */
	save(&b, keypath, "b", 1);
	cr_assert_eq(ug_seckey_load(keypath, &l, NULL), 0);
	cr_assert(memcmp(l.sk, b.sk, sizeof(b.sk)) == 0);
	snprintf(pubpath, sizeof(pubpath), "%s.pub", keypath);
	after = slurp(pubpath, NULL);
	cr_assert_not_null(strstr(after, " b\n"));
	free(after);
	free(before);

	/* a stale .pub without its secret: refused, and nothing left behind */
	cr_assert_eq(unlink(keypath), 0);
	cr_assert_eq(ug_key_save(&a, keypath, NULL, 0, &err), -EEXIST);
	cr_assert_not_null(strstr(err.msg, ".pub"), "%s", err.msg);
	cr_assert_neq(access(keypath, F_OK), 0, "no orphan secret key");
}

Test(sign, save_rejects_bad_comment)
{
	struct ug_seckey k;
	struct ug_error err = { "" };

	gen(&k);
	cr_assert_eq(ug_key_save(&k, keypath, "two\nlines", 0, &err), -EINVAL);
	cr_assert_not_null(strstr(err.msg, "comment"));
	cr_assert_neq(access(keypath, F_OK), 0, "nothing written");
}

Test(sign, secret_key_readable_by_others_is_refused)
{
	struct ug_seckey k;
	char want[512];

	gen(&k);
	save(&k, keypath, NULL, 0);
	cr_assert_eq(chmod(keypath, 0644), 0);
	snprintf(want, sizeof(want), "permissions 0644 for '%s' are too open; run chmod 600 '%s'",
		 keypath, keypath);
	expect_seckey_fail(keypath, -EACCES, want);
	cr_assert_eq(chmod(keypath, 0640), 0);
	expect_seckey_fail(keypath, -EACCES, "permissions 0640");
	cr_assert_eq(chmod(keypath, 0604), 0);
	expect_seckey_fail(keypath, -EACCES, "too open");
	cr_assert_eq(chmod(keypath, 0400), 0);
	cr_assert_eq(ug_seckey_load(keypath, &k, NULL), 0, "0400 is fine");
}

Test(sign, secret_key_symlink_and_missing_file_are_refused)
{
	struct ug_seckey k;
	char link[160];

	gen(&k);
	save(&k, keypath, NULL, 0);
	snprintf(link, sizeof(link), "%s/link", tmpdir);
	cr_assert_eq(symlink(keypath, link), 0);
	expect_seckey_fail(link, -ELOOP, "cannot open secret key");
	snprintf(link, sizeof(link), "%s/missing", tmpdir);
	expect_seckey_fail(link, -ENOENT, "cannot open secret key");
	/* a FIFO must neither hang the loader nor be read */
	snprintf(link, sizeof(link), "%s/fifo", tmpdir);
	cr_assert_eq(mkfifo(link, 0600), 0);
	expect_seckey_fail(link, -EBADMSG, "is not a regular file");
}

Test(sign, corrupted_secret_key_files_are_refused)
{
	struct ug_seckey k, bad;
	char b[128], text[512];
	uint8_t big[600];

	gen(&k);
	b64(k.sk, sizeof(k.sk), b, sizeof(b));

	put(keypath, "", 0, 0600);
	expect_seckey_fail(keypath, -EBADMSG, "bad header");
	snprintf(text, sizeof(text), "upgrid-ed25519-secret-v2\n%s\n", b);
	put(keypath, text, strlen(text), 0600);
	expect_seckey_fail(keypath, -EBADMSG, "bad header");
	snprintf(text, sizeof(text), "upgrid-ed25519-secret-v1\n%.80s\n", b);
	put(keypath, text, strlen(text), 0600);
	expect_seckey_fail(keypath, -EBADMSG, "bad base64");
	snprintf(text, sizeof(text), "upgrid-ed25519-secret-v1\n%s\n", b);
	text[30] = '*';
	put(keypath, text, strlen(text), 0600);
	expect_seckey_fail(keypath, -EBADMSG, "bad base64");
	snprintf(text, sizeof(text), "upgrid-ed25519-secret-v1\n%s\nextra\n", b);
	put(keypath, text, strlen(text), 0600);
	expect_seckey_fail(keypath, -EBADMSG, "bad base64");
	snprintf(text, sizeof(text), "upgrid-ed25519-secret-v1\n%s\n\n", b);
	put(keypath, text, strlen(text), 0600);
	expect_seckey_fail(keypath, -EBADMSG, "bad base64");
	memset(big, 'A', sizeof(big));
	memcpy(big, "upgrid-ed25519-secret-v1\n", 25);
	put(keypath, big, sizeof(big), 0600);
	expect_seckey_fail(keypath, -EBADMSG, "too long");

	/* the public half inside the secret key does not match its seed */
	bad = k;
	bad.sk[40] ^= 1;
	b64(bad.sk, sizeof(bad.sk), b, sizeof(b));
	snprintf(text, sizeof(text), "upgrid-ed25519-secret-v1\n%s\n", b);
	put(keypath, text, strlen(text), 0600);
	expect_seckey_fail(keypath, -EBADMSG, "public half does not match");

	/* the seed damaged instead: same result */
	bad = k;
	bad.sk[3] ^= 0x80;
	b64(bad.sk, sizeof(bad.sk), b, sizeof(b));
	snprintf(text, sizeof(text), "upgrid-ed25519-secret-v1\n%s\n", b);
	put(keypath, text, strlen(text), 0600);
	expect_seckey_fail(keypath, -EBADMSG, "public half does not match");

	/* without the final newline it is still the same key */
	b64(k.sk, sizeof(k.sk), b, sizeof(b));
	snprintf(text, sizeof(text), "upgrid-ed25519-secret-v1\n%s", b);
	put(keypath, text, strlen(text), 0600);
	cr_assert_eq(ug_seckey_load(keypath, &bad, NULL), 0);
	cr_assert(memcmp(bad.sk, k.sk, sizeof(k.sk)) == 0);
}

Test(sign, corrupted_public_keys_are_refused)
{
	static const char *const bad[] = {
		"",
		"\n",
		"upgrid-ed25519",
		"upgrid-ed25519 ",
		"upgrid-ed25519  comment",
		"ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIGmpXvLWOzRyKbAjAoBD5ChmCX6lKzzPxSEyy6cvBpRt",
		"upgrid-ed25519 AAAA",
		"upgrid-ed25519 AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA==", /* 31 bytes */
		"upgrid-ed25519 AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA", /* no padding */
		"upgrid-ed25519 AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=\nsecond line",
		"upgrid-ed25519 AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA= bell\a",
		"upgrid-ed25519 AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA*=",
	};
	struct ug_pubkey p;
	struct ug_error err = { "" };
	char pubpath[160], *big;

	cr_assert_eq(ug_pubkey_parse("upgrid-ed25519 AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=\n", 60, &p, NULL), 0,
		     "the all-zero key is well-formed");
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		err.msg[0] = '\0';
		cr_assert_eq(ug_pubkey_parse(bad[i], strlen(bad[i]), &p, &err), -EBADMSG, "case %zu", i);
		cr_assert_neq(err.msg[0], '\0');
	}
	/* a NUL byte inside the given length */
	cr_assert_eq(ug_pubkey_parse("upgrid-ed25519 AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=\0x", 61, &p, NULL), -EBADMSG);

	snprintf(pubpath, sizeof(pubpath), "%s.pub", keypath);
	put(pubpath, "upgrid-ed25519 !!!\n", 19, 0644);
	cr_assert_eq(ug_pubkey_load(pubpath, &p, &err), -EBADMSG);
	cr_assert_not_null(strstr(err.msg, pubpath), "%s", err.msg);
	big = malloc(UG_CONFIG_LINE_MAX + 10);
	cr_assert_not_null(big);
	memset(big, 'A', UG_CONFIG_LINE_MAX + 10);
	put(pubpath, big, UG_CONFIG_LINE_MAX + 10, 0644);
	cr_assert_eq(ug_pubkey_load(pubpath, &p, &err), -EBADMSG);
	cr_assert_not_null(strstr(err.msg, "too long"), "%s", err.msg);
	free(big);
}

/* ---- signatures --------------------------------------------------------- */

Test(sign, sign_and_verify)
{
	struct ug_seckey k;
	char id[UG_KEYID_HEX_LEN + 1], prefix[64];
	uint8_t raw[64], *buf;
	size_t sl, bl, n;
	char *sig;

	gen(&k);
	sig = sign_ok(&k, CTX, msg, strlen(msg), &sl);
	ug_key_id(&k.pub, id);
	snprintf(prefix, sizeof(prefix), "upgrid-sig-v1 ed25519 %s ", id);
	cr_assert(strncmp(sig, prefix, strlen(prefix)) == 0, "'%s'", sig);
	cr_assert_eq(sl, strlen(prefix) + 88 + 1);
	cr_assert_eq(sig[sl - 1], '\n');
	cr_assert_null(memchr(sig, '\n', sl - 1), "one line");
	expect_verify(&k.pub, CTX, msg, strlen(msg), sig, sl, 0, NULL);
	/* without its newline, as a caller may strip it */
	expect_verify(&k.pub, CTX, msg, strlen(msg), sig, sl - 1, 0, NULL);

	/* plain Ed25519 over context || NUL || message: checkable by any
	 * Ed25519 implementation */
	cr_assert_eq(sodium_base642bin(raw, sizeof(raw), sig + strlen(prefix), 88, NULL, &bl, NULL,
				       sodium_base64_VARIANT_ORIGINAL), 0);
	cr_assert_eq(bl, 64);
	n = strlen(CTX) + 1 + strlen(msg);
	buf = malloc(n);
	cr_assert_not_null(buf);
	memcpy(buf, CTX, strlen(CTX) + 1);
	memcpy(buf + strlen(CTX) + 1, msg, strlen(msg));
	cr_assert_eq(crypto_sign_verify_detached(raw, buf, n, k.pub.pk), 0);
	free(buf);
	free(sig);
}

Test(sign, signs_empty_and_binary_messages)
{
	struct ug_seckey k;
	uint8_t bin[300];
	char *sig;

	gen(&k);
	sig = sign_ok(&k, CTX, NULL, 0, NULL);
	expect_verify(&k.pub, CTX, NULL, 0, sig, strlen(sig), 0, NULL);
	expect_verify(&k.pub, CTX, "x", 1, sig, strlen(sig), -EKEYREJECTED, "bad signature");
	free(sig);
	for (size_t i = 0; i < sizeof(bin); i++)
		bin[i] = (uint8_t)i;
	sig = sign_ok(&k, CTX, bin, sizeof(bin), NULL);
	expect_verify(&k.pub, CTX, bin, sizeof(bin), sig, strlen(sig), 0, NULL);
	free(sig);
}

Test(sign, flipped_message_byte_is_rejected)
{
	struct ug_seckey k;
	char copy[sizeof(msg)];
	char *sig;

	gen(&k);
	sig = sign_ok(&k, CTX, msg, strlen(msg), NULL);
	for (size_t i = 0; i < strlen(msg); i++) {
		memcpy(copy, msg, sizeof(msg));
		copy[i] ^= 0x01;
		expect_verify(&k.pub, CTX, copy, strlen(msg), sig, strlen(sig), -EKEYREJECTED,
			      "bad signature");
	}
	/* a shorter or longer document too */
	expect_verify(&k.pub, CTX, msg, strlen(msg) - 1, sig, strlen(sig), -EKEYREJECTED, NULL);
	expect_verify(&k.pub, CTX, msg, strlen(msg) + 1, sig, strlen(sig), -EKEYREJECTED, NULL);
	free(sig);
}

Test(sign, flipped_signature_byte_is_rejected)
{
	struct ug_seckey k;
	char id[UG_KEYID_HEX_LEN + 1], line[256], b[128];
	uint8_t raw[64];
	size_t bl, off;
	char *sig;

	gen(&k);
	ug_key_id(&k.pub, id);
	sig = sign_ok(&k, CTX, msg, strlen(msg), NULL);
	off = strlen("upgrid-sig-v1 ed25519 ") + UG_KEYID_HEX_LEN + 1;
	cr_assert_eq(sodium_base642bin(raw, sizeof(raw), sig + off, 88, NULL, &bl, NULL,
				       sodium_base64_VARIANT_ORIGINAL), 0);
	for (size_t i = 0; i < sizeof(raw); i += 7) {
		raw[i] ^= 0x10;
		b64(raw, sizeof(raw), b, sizeof(b));
		snprintf(line, sizeof(line), "upgrid-sig-v1 ed25519 %s %s\n", id, b);
		expect_verify(&k.pub, CTX, msg, strlen(msg), line, strlen(line), -EKEYREJECTED,
			      "bad signature");
		raw[i] ^= 0x10;
	}
	free(sig);
}

Test(sign, other_key_is_rejected)
{
	struct ug_seckey a, b;
	char ida[UG_KEYID_HEX_LEN + 1], idb[UG_KEYID_HEX_LEN + 1], want[128], forged[256];
	char *sig;

	gen(&a);
	gen(&b);
	ug_key_id(&a.pub, ida);
	ug_key_id(&b.pub, idb);
	sig = sign_ok(&a, CTX, msg, strlen(msg), NULL);
	snprintf(want, sizeof(want), "signed by key %s, expected key %s", ida, idb);
	expect_verify(&b.pub, CTX, msg, strlen(msg), sig, strlen(sig), -EKEYREJECTED, want);

	/* a's signature relabelled with b's key id still fails */
	snprintf(forged, sizeof(forged), "%s", sig);
	memcpy(forged + strlen("upgrid-sig-v1 ed25519 "), idb, UG_KEYID_HEX_LEN);
	expect_verify(&b.pub, CTX, msg, strlen(msg), forged, strlen(forged), -EKEYREJECTED,
		      "bad signature");
	free(sig);
}

Test(sign, wrong_context_is_rejected)
{
	struct ug_seckey k;
	char *sig;

	gen(&k);
	sig = sign_ok(&k, "upgrid-status-v1", msg, strlen(msg), NULL);
	expect_verify(&k.pub, CTX, msg, strlen(msg), sig, strlen(sig), -EKEYREJECTED, "bad signature");
	expect_verify(&k.pub, "upgrid-status-v1", msg, strlen(msg), sig, strlen(sig), 0, NULL);
	free(sig);
	/* the NUL separator keeps context and message apart: moving a byte
	 * from the message into the context must not verify */
	sig = sign_ok(&k, "ab", "cd", 2, NULL);
	expect_verify(&k.pub, "abc", "d", 1, sig, strlen(sig), -EKEYREJECTED, NULL);
	free(sig);
}

Test(sign, malformed_signature_lines)
{
	struct ug_seckey k;
	char id[UG_KEYID_HEX_LEN + 1], line[512], *sig, *big;
	size_t sl, off;

	gen(&k);
	ug_key_id(&k.pub, id);
	sig = sign_ok(&k, CTX, msg, strlen(msg), &sl);
	off = strlen("upgrid-sig-v1 ed25519 ") + UG_KEYID_HEX_LEN + 1;

#define BAD(s) expect_verify(&k.pub, CTX, msg, strlen(msg), (s), strlen(s), -EBADMSG, "signature")
	BAD("");
	BAD("\n");
	BAD("upgrid-sig-v1");
	snprintf(line, sizeof(line), "upgrid-sig-v2%s", sig + strlen("upgrid-sig-v1"));
	BAD(line);
	snprintf(line, sizeof(line), "upgrid-sig-v1 rsa %s", sig + strlen("upgrid-sig-v1 ed25519 "));
	BAD(line);
	snprintf(line, sizeof(line), " %s", sig);
	BAD(line);
	/* key id: upper case, short, missing */
	snprintf(line, sizeof(line), "%s", sig);
	line[off - 2] = 'A';
	BAD(line);
	snprintf(line, sizeof(line), "upgrid-sig-v1 ed25519 %.15s %s", id, sig + off);
	BAD(line);
	snprintf(line, sizeof(line), "upgrid-sig-v1 ed25519 %s", sig + off);
	BAD(line);
	/* base64: bad characters, unpadded, extra bytes, trailing text */
	snprintf(line, sizeof(line), "%s", sig);
	line[off + 5] = '!';
	BAD(line);
	snprintf(line, sizeof(line), "%.*s\n", (int)(sl - 3), sig);
	BAD(line);
	snprintf(line, sizeof(line), "%.*sAAAA\n", (int)(sl - 1), sig);
	BAD(line);
	snprintf(line, sizeof(line), "%.*s comment\n", (int)(sl - 1), sig);
	BAD(line);
	snprintf(line, sizeof(line), "%s\n", sig);
	BAD(line);
	snprintf(line, sizeof(line), "%s%s", sig, sig);
	BAD(line);
#undef BAD
	/* every truncation that cuts more than the final newline */
	for (size_t n = 0; n + 1 < sl; n++) {
		char *copy = malloc(n + 1);

		cr_assert_not_null(copy);
		memcpy(copy, sig, n);
		expect_verify(&k.pub, CTX, msg, strlen(msg), copy, n, -EBADMSG, NULL);
		free(copy);
	}
	/* a NUL inside the given length */
	snprintf(line, sizeof(line), "%s", sig);
	line[off + 10] = '\0';
	expect_verify(&k.pub, CTX, msg, strlen(msg), line, sl, -EBADMSG, NULL);
	/* a signature file over the limit is refused before parsing */
	big = malloc(UG_SIG_FILE_MAX + 1);
	cr_assert_not_null(big);
	memset(big, ' ', UG_SIG_FILE_MAX + 1);
	memcpy(big, sig, sl);
	expect_verify(&k.pub, CTX, msg, strlen(msg), big, UG_SIG_FILE_MAX + 1, -EBADMSG, "longer than");
	free(big);
	free(sig);
}

/* sign.c - Ed25519 keys, key files and detached signature lines.
 *
 * Signatures are plain (pure) Ed25519 over context || NUL || message, made
 * with crypto_sign_detached, so any standard Ed25519 implementation can
 * check them given the same bytes. */
#include "config.h"

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "sign.h"
#include "util.h"

#define SECKEY_HEADER "upgrid-ed25519-secret-v1\n"
#define PUBKEY_PREFIX "upgrid-ed25519 "
#define SIG_PREFIX "upgrid-sig-v1 ed25519 "
/* base64 (original variant, padded) of the key and signature sizes */
#define SK_B64_LEN 88
#define PK_B64_LEN 44
#define SIG_B64_LEN 88
/* A secret key file is the header, one base64 line and a newline; the
 * read stops well past that so a huge file is refused without reading it. */
#define SECKEY_FILE_MAX 256
#define PUBKEY_FILE_MAX UG_CONFIG_LINE_MAX
#define COMMENT_MAX 1024
#define CONTEXT_MAX 256

/* sodium_init is idempotent and thread-safe; it only fails if the system
 * cannot provide randomness. */
static int sodium_ready(void)
{
	return sodium_init() < 0 ? -EIO : 0;
}

int ug_key_generate(struct ug_seckey *ret)
{
	struct ug_seckey k;
	int r = sodium_ready();

	if (r < 0)
		return r;
	if (crypto_sign_keypair(k.pub.pk, k.sk) != 0) {
		sodium_memzero(&k, sizeof(k));
		return -EIO;
	}
	memcpy(ret, &k, sizeof(k));
	sodium_memzero(&k, sizeof(k));
	return 0;
}

void ug_seckey_wipe(struct ug_seckey *k)
{
	if (k)
		sodium_memzero(k, sizeof(*k));
}

void ug_key_id(const struct ug_pubkey *k, char out[UG_KEYID_HEX_LEN + 1])
{
	static const char digits[] = "0123456789abcdef";
	uint8_t h[crypto_generichash_BYTES];

	crypto_generichash(h, sizeof(h), k->pk, sizeof(k->pk), NULL, 0);
	for (size_t i = 0; i < UG_KEYID_HEX_LEN / 2; i++) {
		out[2 * i] = digits[h[i] >> 4];
		out[2 * i + 1] = digits[h[i] & 15];
	}
	out[UG_KEYID_HEX_LEN] = '\0';
}

void ug_pubkey_format(const struct ug_pubkey *k, char *out, size_t out_size)
{
	char b64[sodium_base64_ENCODED_LEN(crypto_sign_PUBLICKEYBYTES,
					   sodium_base64_VARIANT_ORIGINAL)];

	if (!out || out_size == 0)
		return;
	sodium_bin2base64(b64, sizeof(b64), k->pk, sizeof(k->pk), sodium_base64_VARIANT_ORIGINAL);
	snprintf(out, out_size, PUBKEY_PREFIX "%s", b64);
}

/* Decode exactly n bytes of padded base64 from s[0..len). */
static int b64_decode(const char *s, size_t len, uint8_t *out, size_t n)
{
	size_t got = 0;
	const char *end = NULL;

	if (sodium_base642bin(out, n, s, len, NULL, &got, &end,
			      sodium_base64_VARIANT_ORIGINAL) != 0 ||
	    got != n || end != s + len)
		return -EBADMSG;
	return 0;
}

/* ---- saving ------------------------------------------------------------ */

/* Create path exclusively (never replacing anything), write data, fsync. */
static int write_new(const char *path, const void *data, size_t len, mode_t mode)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, mode);
	int r;

	if (fd < 0)
		return -errno;
	r = ug_write_all(fd, data, len);
	/* umask may have narrowed mode; the public key should be 0644 */
	if (r == 0 && fchmod(fd, mode) < 0)
		r = -errno;
	if (r == 0 && fsync(fd) < 0)
		r = -errno;
	if (close(fd) < 0 && r == 0)
		r = -errno;
	if (r < 0)
		unlink(path);
	return r;
}

static int save_file(const char *path, const void *data, size_t len, mode_t mode,
		     int force, struct ug_error *err)
{
	int r = force ? ug_file_write_atomic(AT_FDCWD, path, data, len, mode)
		      : write_new(path, data, len, mode);

	if (r == -EEXIST)
		return ug_error_set(err, r, "'%s' already exists; refusing to overwrite it", path);
	if (r < 0)
		return ug_error_set(err, r, "cannot write '%s': %s", path, strerror(-r));
	return 0;
}

int ug_key_save(const struct ug_seckey *k, const char *path, const char *comment,
		int force, struct ug_error *err)
{
	char sectext[sizeof(SECKEY_HEADER) + SK_B64_LEN + 2];
	char pubtext[sizeof(PUBKEY_PREFIX) + PK_B64_LEN + COMMENT_MAX + 4];
	char pubpath[UG_PATH_MAX + 8];
	size_t hl = strlen(SECKEY_HEADER), sl, pl;
	int r;

	if (!k || !path || !*path)
		return ug_error_set(err, -EINVAL, "no key file name");
	if (snprintf(pubpath, sizeof(pubpath), "%s.pub", path) >= (int)sizeof(pubpath))
		return ug_error_set(err, -ENAMETOOLONG, "key file name '%s' is too long", path);
	if (comment) {
		if (strlen(comment) > COMMENT_MAX)
			return ug_error_set(err, -EINVAL, "key comment is longer than %u bytes",
					    COMMENT_MAX);
		for (const char *c = comment; *c; c++)
			if ((unsigned char)*c < 0x20 || *c == 0x7f)
				return ug_error_set(err, -EINVAL,
						    "key comment must not contain control characters");
	}
	r = sodium_ready();
	if (r < 0)
		return ug_error_set(err, r, "cannot initialize libsodium");

	memcpy(sectext, SECKEY_HEADER, hl);
	sodium_bin2base64(sectext + hl, sizeof(sectext) - hl, k->sk, sizeof(k->sk),
			  sodium_base64_VARIANT_ORIGINAL);
	sl = hl + SK_B64_LEN;
	sectext[sl++] = '\n';

	ug_pubkey_format(&k->pub, pubtext, sizeof(pubtext));
	pl = strlen(pubtext);
	if (comment && *comment)
		pl += (size_t)snprintf(pubtext + pl, sizeof(pubtext) - pl, " %s", comment);
	pubtext[pl++] = '\n';

	r = save_file(path, sectext, sl, 0600, force, err);
	sodium_memzero(sectext, sizeof(sectext));
	if (r < 0)
		return r;
	r = save_file(pubpath, pubtext, pl, 0644, force, err);
	/* without force, leave nothing behind: a secret key whose .pub could
	 * not be written (it existed already) is removed again */
	if (r < 0 && !force)
		unlink(path);
	return r;
}

/* ---- loading ----------------------------------------------------------- */

/* Parse the secret key file text into ret (public half checked). */
static int seckey_parse(const char *text, size_t len, const char *path,
			struct ug_seckey *ret, struct ug_error *err)
{
	struct ug_seckey k;
	uint8_t seed[crypto_sign_SEEDBYTES];
	uint8_t pk2[crypto_sign_PUBLICKEYBYTES];
	uint8_t sk2[crypto_sign_SECRETKEYBYTES];
	size_t hl = strlen(SECKEY_HEADER), bl;
	int r = -EBADMSG;

	if (len < hl || memcmp(text, SECKEY_HEADER, hl) != 0) {
		ug_error_set(err, r, "'%s' is not an upgrid secret key (bad header)", path);
		goto out;
	}
	bl = len - hl;
	if (bl > 0 && text[len - 1] == '\n')
		bl--;
	if (b64_decode(text + hl, bl, k.sk, sizeof(k.sk)) < 0) {
		ug_error_set(err, r, "'%s' is not an upgrid secret key (bad base64 key)", path);
		goto out;
	}
	/* the secret key is seed || public key: recompute the public half
	 * from the seed, so a damaged file is refused instead of producing
	 * signatures nobody can verify */
	crypto_sign_ed25519_sk_to_seed(seed, k.sk);
	crypto_sign_seed_keypair(pk2, sk2, seed);
	crypto_sign_ed25519_sk_to_pk(k.pub.pk, k.sk);
	if (sodium_memcmp(pk2, k.pub.pk, sizeof(pk2)) != 0) {
		ug_error_set(err, r, "secret key '%s' is corrupt: its public half does not match", path);
		goto out;
	}
	memcpy(ret, &k, sizeof(k));
	r = 0;
out:
	sodium_memzero(&k, sizeof(k));
	sodium_memzero(seed, sizeof(seed));
	sodium_memzero(sk2, sizeof(sk2));
	return r;
}

int ug_seckey_load(const char *path, struct ug_seckey *ret, struct ug_error *err)
{
	char text[SECKEY_FILE_MAX + 1];
	struct stat st;
	ssize_t n;
	int fd, r;

	if (!path)
		return ug_error_set(err, -EINVAL, "no key file name");
	r = sodium_ready();
	if (r < 0)
		return ug_error_set(err, r, "cannot initialize libsodium");
	/* O_NONBLOCK: opening a FIFO planted at path must not hang; it is
	 * refused below as not a regular file */
	fd = open(path, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
	if (fd < 0) {
		r = -errno;
		return ug_error_set(err, r, "cannot open secret key '%s': %s", path, strerror(-r));
	}
	/* fstat the fd we read from, not the name, so the check cannot race */
	if (fstat(fd, &st) < 0) {
		r = -errno;
		ug_error_set(err, r, "cannot stat '%s': %s", path, strerror(-r));
		goto out;
	}
	if (!S_ISREG(st.st_mode)) {
		r = ug_error_set(err, -EBADMSG, "secret key '%s' is not a regular file", path);
		goto out;
	}
	if (st.st_mode & 077) {
		r = ug_error_set(err, -EACCES,
				 "permissions %04o for '%s' are too open; run chmod 600 '%s'",
				 (unsigned)(st.st_mode & 07777), path, path);
		goto out;
	}
	n = ug_read_full(fd, text, sizeof(text));
	if (n < 0) {
		r = (int)n;
		ug_error_set(err, r, "cannot read '%s': %s", path, strerror(-r));
		goto out;
	}
	if ((size_t)n > SECKEY_FILE_MAX) {
		r = ug_error_set(err, -EBADMSG, "'%s' is not an upgrid secret key (too long)", path);
		goto out;
	}
	r = seckey_parse(text, (size_t)n, path, ret, err);
out:
	sodium_memzero(text, sizeof(text));
	close(fd);
	return r;
}

int ug_pubkey_parse(const char *text, size_t len, struct ug_pubkey *ret,
		    struct ug_error *err)
{
	size_t pl = strlen(PUBKEY_PREFIX), b64len;
	struct ug_pubkey k;
	const char *p, *end;

	if (!text)
		return ug_error_set(err, -EINVAL, "no public key");
	if (len > PUBKEY_FILE_MAX)
		return ug_error_set(err, -EBADMSG, "public key is longer than %u bytes", PUBKEY_FILE_MAX);
	/* one line: an optional final newline and no other control bytes */
	if (len > 0 && text[len - 1] == '\n')
		len--;
	for (size_t i = 0; i < len; i++)
		if ((unsigned char)text[i] < 0x20 || text[i] == 0x7f)
			return ug_error_set(err, -EBADMSG,
					    "public key contains a control character (byte %zu)", i);
	if (len < pl || memcmp(text, PUBKEY_PREFIX, pl) != 0)
		return ug_error_set(err, -EBADMSG, "not an upgrid public key (expected '%.*s')",
				    (int)(pl - 1), PUBKEY_PREFIX);
	p = text + pl;
	end = memchr(p, ' ', len - pl);
	b64len = end ? (size_t)(end - p) : len - pl;
	if (b64_decode(p, b64len, k.pk, sizeof(k.pk)) < 0)
		return ug_error_set(err, -EBADMSG, "public key: bad base64 key");
	memcpy(ret, &k, sizeof(k));
	return 0;
}

int ug_pubkey_load(const char *path, struct ug_pubkey *ret, struct ug_error *err)
{
	char *text;
	size_t len;
	int r;

	if (!path)
		return ug_error_set(err, -EINVAL, "no key file name");
	r = ug_file_read(AT_FDCWD, path, PUBKEY_FILE_MAX, &text, &len);
	if (r == -E2BIG)
		return ug_error_set(err, -EBADMSG, "'%s' is not an upgrid public key (too long)", path);
	if (r < 0)
		return ug_error_set(err, r, "cannot read public key '%s': %s", path, strerror(-r));
	r = ug_pubkey_parse(text, len, ret, err);
	if (r < 0 && err) {
		struct ug_error e = *err;
		ug_error_set(err, r, "'%s': %s", path, e.msg);
	}
	free(text);
	return r;
}

/* ---- signing ----------------------------------------------------------- */

/* context || NUL || msg in one buffer: Ed25519 (not Ed25519ph) signs the
 * message in one pass, and standard tools expect exactly these bytes. */
static int signed_bytes(const char *context, const void *msg, size_t len,
			uint8_t **ret, size_t *ret_len)
{
	size_t cl, n;
	uint8_t *buf;

	if (!context || (len > 0 && !msg))
		return -EINVAL;
	cl = strnlen(context, CONTEXT_MAX + 1);
	if (cl == 0 || cl > CONTEXT_MAX)
		return -EINVAL;
	if (ug_size_add(cl, 1, &n) < 0 || ug_size_add(n, len, &n) < 0)
		return -E2BIG;
	buf = malloc(n);
	if (!buf)
		return -ENOMEM;
	memcpy(buf, context, cl);
	buf[cl] = '\0';
	if (len)
		memcpy(buf + cl + 1, msg, len);
	*ret = buf;
	*ret_len = n;
	return 0;
}

int ug_sign(const struct ug_seckey *k, const char *context, const void *msg,
	    size_t len, char **ret_sig, size_t *ret_sig_len)
{
	uint8_t sig[crypto_sign_BYTES];
	char b64[SIG_B64_LEN + 1], id[UG_KEYID_HEX_LEN + 1];
	struct ug_pubkey pub;
	uint8_t *buf;
	size_t n, sl;
	char *line;
	int r;

	if (!k)
		return -EINVAL;
	r = sodium_ready();
	if (r < 0)
		return r;
	r = signed_bytes(context, msg, len, &buf, &n);
	if (r < 0)
		return r;
	r = crypto_sign_detached(sig, NULL, buf, n, k->sk) == 0 ? 0 : -EIO;
	free(buf);
	if (r < 0)
		return r;
	/* name the key the signature was made with: the public half inside
	 * the secret key, which ug_seckey_load has checked */
	crypto_sign_ed25519_sk_to_pk(pub.pk, k->sk);
	ug_key_id(&pub, id);
	sodium_bin2base64(b64, sizeof(b64), sig, sizeof(sig), sodium_base64_VARIANT_ORIGINAL);
	sl = strlen(SIG_PREFIX) + UG_KEYID_HEX_LEN + 1 + SIG_B64_LEN + 1;
	line = malloc(sl + 1);
	if (!line)
		return -ENOMEM;
	snprintf(line, sl + 1, SIG_PREFIX "%s %s\n", id, b64);
	*ret_sig = line;
	if (ret_sig_len)
		*ret_sig_len = sl;
	return 0;
}

static bool is_lower_hex(const char *s, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f')))
			return false;
	return true;
}

int ug_sign_verify(const struct ug_pubkey *k, const char *context,
		   const void *msg, size_t len, const char *sig, size_t sig_len,
		   struct ug_error *err)
{
	uint8_t s[crypto_sign_BYTES];
	char want[UG_KEYID_HEX_LEN + 1], got[UG_KEYID_HEX_LEN + 1];
	size_t pl = strlen(SIG_PREFIX);
	const char *p;
	uint8_t *buf;
	size_t n;
	int r;

	if (!k || !sig)
		return ug_error_set(err, -EINVAL, "no key or signature");
	r = sodium_ready();
	if (r < 0)
		return ug_error_set(err, r, "cannot initialize libsodium");
	if (sig_len > UG_SIG_FILE_MAX)
		return ug_error_set(err, -EBADMSG, "signature is longer than %u bytes", UG_SIG_FILE_MAX);
	/* exactly: prefix, key id, space, base64, optional newline */
	if (sig_len > 0 && sig[sig_len - 1] == '\n')
		sig_len--;
	if (sig_len < pl || memcmp(sig, SIG_PREFIX, pl) != 0)
		return ug_error_set(err, -EBADMSG, "malformed signature: expected '%.*s'",
				    (int)(pl - 1), SIG_PREFIX);
	p = sig + pl;
	if (sig_len - pl < UG_KEYID_HEX_LEN + 1 || !is_lower_hex(p, UG_KEYID_HEX_LEN) ||
	    p[UG_KEYID_HEX_LEN] != ' ')
		return ug_error_set(err, -EBADMSG, "malformed signature: bad key id");
	memcpy(got, p, UG_KEYID_HEX_LEN);
	got[UG_KEYID_HEX_LEN] = '\0';
	p += UG_KEYID_HEX_LEN + 1;
	if (b64_decode(p, sig_len - (size_t)(p - sig), s, sizeof(s)) < 0)
		return ug_error_set(err, -EBADMSG, "malformed signature: bad base64 signature");

	ug_key_id(k, want);
	if (strcmp(got, want) != 0)
		return ug_error_set(err, -EKEYREJECTED, "signed by key %s, expected key %s", got, want);
	r = signed_bytes(context, msg, len, &buf, &n);
	if (r < 0)
		return ug_error_set(err, r, "cannot check the signature: %s", strerror(-r));
	r = crypto_sign_verify_detached(s, buf, n, k->pk) == 0 ? 0 : -EKEYREJECTED;
	free(buf);
	if (r < 0)
		return ug_error_set(err, r,
				    "bad signature by key %s: the document was modified or signed for another purpose",
				    want);
	return 0;
}

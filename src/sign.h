/* sign.h - Ed25519 keys and detached signatures (libsodium).
 *
 * Key files:
 *   secret: "upgrid-ed25519-secret-v1\n" + base64(64-byte secret key) + "\n",
 *           mode 0600; refused if readable by group or others.
 *   public: "upgrid-ed25519 " + base64(32 bytes) + [" " comment] + "\n"
 * Signature text (one line, stored as N.json.sig):
 *   "upgrid-sig-v1 ed25519 KEYID BASE64SIG\n"
 * KEYID is the first 8 bytes of BLAKE2b-256(public key) in hex. What is
 * signed is a context string, a NUL, then the exact document bytes, so a
 * signature over one kind of document cannot be replayed as another. */
#ifndef UG_SIGN_H
#define UG_SIGN_H

#include <sodium.h>
#include <stddef.h>
#include <stdint.h>

#include "util.h"

#define UG_KEYID_HEX_LEN 16
#define UG_SIGN_CONTEXT_MANIFEST "upgrid-manifest-v1"
/* rollout documents (rollout.h), N.rollout.sig */
#define UG_SIGN_CONTEXT_ROLLOUT "upgrid-rollout-v1"

struct ug_pubkey { uint8_t pk[crypto_sign_PUBLICKEYBYTES]; };
struct ug_seckey {
	uint8_t sk[crypto_sign_SECRETKEYBYTES];
	struct ug_pubkey pub;
};

int ug_key_generate(struct ug_seckey *ret);
/* Write path (0600, refusing to overwrite unless force) and path.pub. */
int ug_key_save(const struct ug_seckey *k, const char *path, const char *comment,
		int force, struct ug_error *err);
int ug_seckey_load(const char *path, struct ug_seckey *ret, struct ug_error *err);
int ug_pubkey_load(const char *path, struct ug_pubkey *ret, struct ug_error *err);
int ug_pubkey_parse(const char *text, size_t len, struct ug_pubkey *ret,
		    struct ug_error *err);
/* "upgrid-ed25519 BASE64" without comment or newline; out >= 128 bytes. */
void ug_pubkey_format(const struct ug_pubkey *k, char *out, size_t out_size);
void ug_key_id(const struct ug_pubkey *k, char out[UG_KEYID_HEX_LEN + 1]);
void ug_seckey_wipe(struct ug_seckey *k);

/* Sign context || NUL || msg. ret_sig is the signature line, NUL-terminated,
 * owned by the caller. */
int ug_sign(const struct ug_seckey *k, const char *context, const void *msg,
	    size_t len, char **ret_sig, size_t *ret_sig_len);
/* -EBADMSG for a malformed signature line, -EKEYREJECTED for a signature by
 * another key or one that does not match the bytes. */
int ug_sign_verify(const struct ug_pubkey *k, const char *context,
		   const void *msg, size_t len, const char *sig, size_t sig_len,
		   struct ug_error *err);

#endif

/* mfetch.h - fetch one signed manifest from a server and check it, and
 * download content-addressed blobs into a store, resumably.
 *
 * The cheapest form first: a manifest delta from a document the caller
 * holds (N.from-M.zst), then the document compressed on its own
 * (N.from-0.zst), then the plain document. Whatever arrives is checked
 * against the detached signature by the master key before it is parsed,
 * and the parsed manifest must be the version and channel asked for: a
 * server can make a download fail, never make a wrong manifest pass. */
#ifndef UG_MFETCH_H
#define UG_MFETCH_H

#include <stddef.h>
#include <stdint.h>

#include "client.h"
#include "manifest.h"
#include "sign.h"
#include "store.h"
#include "util.h"

struct ug_mfetch {
	const char *channel;
	uint64_t version;               /* what to fetch */
	const struct ug_pubkey *key;    /* the master key */
	/* A signed document the caller holds, as the prefix of a manifest
	 * delta (NULL/0: none) */
	const char *have_json;
	size_t have_len;
	uint64_t have_version;
	/* out, all owned by the caller (free(); ug_manifest_free) */
	char *json, *sig;
	size_t json_len, sig_len;
	struct ug_manifest *m;
	uint8_t *mdelta;                /* the manifest delta used, or NULL */
	size_t mdelta_len;
	uint64_t mdelta_from;           /* its base (0: compressed alone) */
};

/* 0; -EKEYREJECTED for a document that fails the signature or is not the
 * version asked; -EBADMSG for one that does not parse; the client's
 * errors (-ENOENT: the server has no such version). err names the server
 * and the version. On failure nothing is left in q's out fields. */
int ug_mfetch(struct ug_client *c, struct ug_mfetch *q, struct ug_error *err);
void ug_mfetch_release(struct ug_mfetch *q);

/* Make store s hold blob id (an object in its stored form, or a delta)
 * from c, resuming a download left in REPO/tmp/dl-o-HEX or dl-d-HEX at its
 * byte offset (blobs are named by content: any server's copy continues
 * it); a partial file longer than the blob is started over. The bytes are
 * checked completely before they are installed (ug_store_partial_commit);
 * bytes that fail are removed, -EBADMSG with "object 3f2a... from PEER:
 * reason" in err. *ret_resumed (may be NULL): the offset the download
 * resumed at, 0 when it started from the beginning. */
int ug_fetch_blob(struct ug_client *c, struct ug_store *s, enum ug_store_kind kind,
		  const struct ug_hash *id, uint64_t max, uint64_t *ret_resumed,
		  struct ug_error *err);

#endif

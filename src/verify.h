/* verify.h - check a whole repo without modifying it: every object's hash,
 * every delta's hash and that it reproduces its target exactly, every
 * manifest's signature and structure, every ref. */
#ifndef UG_VERIFY_H
#define UG_VERIFY_H

#include <stddef.h>

#include "sign.h"
#include "store.h"

/* Called once per problem: what is the object/file concerned. */
typedef void (*ug_verify_report_fn)(void *ctx, const char *what, const char *msg);

struct ug_verify_stats {
	size_t objects, deltas, bundles, manifests, mdeltas, refs;
	size_t problems;
};

/* pk may be NULL only for a repo with no channel (nothing to verify
 * against a key); manifests found then are reported as unverifiable.
 * Returns 0 when the repo is sound, -EBADMSG when problems were reported,
 * other -errno when verify itself could not run. */
int ug_verify_repo(struct ug_store *s, const struct ug_pubkey *pk,
		   ug_verify_report_fn report, void *ctx,
		   struct ug_verify_stats *ret_stats);

#endif

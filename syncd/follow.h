/* follow.h - a group server follows its upstream along the chain list.
 *
 * Upstream order: the servers before this one in its group's chain, the
 * nearest first, then the master. The chain list comes from the newest
 * manifest this server holds (signed by the master); before it holds one,
 * or when the chain list does not name it, it follows the master.
 *
 * A round, per channel: ask the upstream for its version (or long-poll
 * it); when newer, fetch the signature and the manifest (as a delta from
 * the one held when the upstream has it), verify the signature against
 * the master's key and refuse an older version; fetch every delta and
 * bundle the manifest names that is missing; rebuild missing objects from
 * them where the bases are held (bundle first, then per-file deltas) and
 * fetch the rest whole, resuming partial downloads; verify every hash;
 * store the manifest and the manifest deltas; move the ref last. A
 * failure with one upstream (unreachable, busy, bad signature, corrupt
 * data) moves on to the next one up. */
#ifndef UG_FOLLOW_H
#define UG_FOLLOW_H

#include <signal.h>
#include <stdbool.h>
#include <stdint.h>

#include "client.h"
#include "sconf.h"
#include "sign.h"
#include "store.h"

struct ug_follow {
	const struct ug_sconf *conf;
	struct ug_store *s;
	struct ug_pubkey master_key;
	struct ug_client_opts copts;
	volatile sig_atomic_t *stop;   /* set by SIGTERM: finish the step, return */
	/* totals of the last round */
	unsigned updated;              /* channels that moved to a new version */
	unsigned repaired;             /* objects and deltas re-fetched */
};

/* One round over every configured channel. wait_s > 0: long-poll the
 * upstream for up to wait_s seconds when it has nothing new. scrub: check
 * every object's and delta's hash (not only that it exists) and repair.
 * Returns 0 when every channel is in sync with an upstream;
 * -EKEYREJECTED when the only upstreams reachable offered bad manifests,
 * -EBADMSG when damage could not be repaired, other -errno (the last
 * failure) when no upstream could be used. */
int ug_follow_round(struct ug_follow *f, int wait_s, bool scrub, struct ug_error *err);

#endif

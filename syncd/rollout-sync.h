/* rollout-sync.h - a group server copies rollout documents from upstream.
 *
 * `upgrid rollout` changes a version's rollout on the master with a
 * signed document beside the manifest (rollout.h) instead of a new
 * manifest, so the version's own replication never carries it: each
 * follow round asks the upstream for the documents of the newest versions
 * held here and takes one whose serial is above the held one's and whose
 * signature the master key checks. */
#ifndef UG_ROLLOUT_SYNC_H
#define UG_ROLLOUT_SYNC_H

#include "client.h"
#include "sign.h"
#include "store.h"

/* How many of the newest versions held (and listed upstream) are checked
 * each round: terminals install the newest, so older documents matter
 * less and cost a round trip each. */
#define UG_ROLLOUT_SYNC_VERSIONS 8u

/* One pass for channel over c (an open session with the upstream). A
 * document is stored only when it verifies against master and its serial
 * is higher than the one held (a held document that no longer verifies
 * counts as none). Problems are logged, never returned: a rollout that
 * could not be copied leaves the version's replication sound. Returns
 * the number of documents stored. The caller holds the repo lock. */
unsigned ug_rollout_sync(struct ug_store *s, const struct ug_pubkey *master,
			 struct ug_client *c, const char *channel);

#endif

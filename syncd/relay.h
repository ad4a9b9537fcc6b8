/* relay.h - a group server passes the reports its terminals (and the
 * servers below it) sent up the chain to its upstream.
 *
 * After a successful follow round with an upstream, while the session is
 * still open, the reports appended to REPO/reports/reports.jsonl since the
 * last relay are sent to that upstream as relay batches (REPORT texts
 * {"relay":[REPORT, ...]} of at most UG_PROTO_TEXT_MAX bytes and
 * UG_REPORT_BATCH_MAX reports, docs/protocol.md). The upstream stores
 * them with its own name appended to their "via" and relays them in turn;
 * the master, which follows nobody, keeps them.
 *
 * Where the relay got to is REPO/reports/relay.offset, one JSON object
 * {"inode":N,"offset":N}: the inode of the reports file and the byte
 * offset after the last line acknowledged, replaced atomically after each
 * acknowledged batch. A changed inode means serve rotated the file
 * (renamed it to reports.jsonl.1): the rest of the old file is relayed
 * first, then the new one from its start. Delivery is at least once per
 * hop: a crash between the upstream's OK and the offset write sends that
 * batch again on the next round (upgrid fleet keeps the newest report per
 * terminal, so a duplicate changes nothing).
 *
 * Lines that are not valid reports (a torn write, an edit by hand) are
 * skipped and counted; a batch the upstream refuses as a bad request is
 * sent again one report at a time, and a report refused on its own is
 * skipped and counted, so one bad line never blocks the reports behind
 * it. Any other failure stops the relay until the next round, the offset
 * at the last acknowledged batch. */
#ifndef UG_RELAY_H
#define UG_RELAY_H

#include <signal.h>
#include <stddef.h>
#include <stdint.h>

#include "client.h"
#include "store.h"
#include "util.h"

#define UG_RELAY_OFFSET_FILE "reports/relay.offset"

/* Send one batch; 0 once the upstream acknowledged it (OK), -EINVAL when
 * it refused the batch as a bad request (nothing of it was stored), other
 * -errno when the session failed (the reason in err). */
typedef int (*ug_relay_send_fn)(void *ctx, const char *text, size_t len, struct ug_error *err);

struct ug_relay_result {
	uint64_t reports;       /* reports acknowledged by the upstream */
	uint64_t batches;       /* REPORT messages acknowledged */
	uint64_t skipped;       /* lines that are no report, reports refused */
	uint64_t restarted;     /* 1: the offset file named no file held (rotated twice?) */
};

/* Relay what the repo at dirfd (path: for messages) holds past its
 * relay.offset, through send, in batches of at most batch_max bytes
 * (0: UG_PROTO_TEXT_MAX). stop (may be NULL) is checked between batches.
 * Returns 0 when everything complete was relayed (a last line still being
 * written is left for the next round), -EINTR when stopped, or the first
 * failure (send's, or -errno reading the files or writing the offset)
 * with the reason in err; *ret (may be NULL) counts what was done in
 * either case. */
int ug_relay_run(int dirfd, const char *path, ug_relay_send_fn send, void *ctx,
		 size_t batch_max, volatile sig_atomic_t *stop, struct ug_relay_result *ret,
		 struct ug_error *err);

/* The follow round's call: relay to the open session c. Logs what it did
 * (one line when something was relayed) and any failure as a warning; a
 * failed relay never fails the round. */
void ug_relay_to(struct ug_store *s, struct ug_client *c, volatile sig_atomic_t *stop);

#endif

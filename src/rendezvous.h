/* rendezvous.h - which servers a terminal tries, and in what order.
 *
 * Each terminal maps to a group of the chain list (cluster.h) by
 * rendezvous (highest-random-weight) hashing of its id over the groups,
 * and to a starting server in that group by the same hashing over the
 * group's servers. A fleet so spreads evenly over every server, and when
 * a server disappears from the chain list only the terminals that started
 * on it move, spread over the rest of its group; when a group disappears
 * only its terminals move, spread over the other groups. The terminal
 * walks its group's chain on failure, then the other groups.
 *
 * The weights are part of the contract (the master may show where a
 * terminal goes, and every terminal of a fleet must agree):
 *
 *   w(g)    = BE64(BLAKE2b-256(id || 0x00 || g.name)[0..7])
 *   w(g, s) = BE64(BLAKE2b-256(id || 0x00 || g.name || 0x00 || s.name)[0..7])
 *
 * that is the first 8 bytes of the BLAKE2b-256 digest (ug_hash_buf, the
 * unkeyed 32-byte digest), read as a big-endian 64-bit number. Equal
 * weights (never seen in practice) go to the smaller name by strcmp, so
 * the order never depends on where a group or server sits in the list. */
#ifndef UG_RENDEZVOUS_H
#define UG_RENDEZVOUS_H

#include <stddef.h>
#include <stdint.h>

#include "cluster.h"
#include "util.h"

/* Bytes in a terminal id, its NUL excluded. */
#define UG_TERMINAL_ID_MAX 128u

/* One server of the cluster: c->groups[group].servers[pos]. */
struct ug_rdv_pick {
	size_t group;
	size_t pos;
};

/* A terminal id: 1..UG_TERMINAL_ID_MAX bytes of printable ASCII without
 * space (0x21..0x7e), so it fits a log line, a file name pattern and a
 * command line unquoted. 0, or -EINVAL with the reason in err (err may be
 * NULL): "terminal id: byte 1 (0x20) is not printable ASCII without
 * space" (the id is not echoed: it may hold control bytes). */
int ug_rendezvous_id_check(const char *terminal_id, struct ug_error *err);

/* The weight w(g) of group g for terminal_id (formula above). No check of
 * the id; both strings must be non-NULL. */
uint64_t ug_rendezvous_group_weight(const char *terminal_id, const char *group);

/* The weight w(g, s) of server s of group g for terminal_id. No check of
 * the id; all strings must be non-NULL. */
uint64_t ug_rendezvous_server_weight(const char *terminal_id, const char *group,
				     const char *server);

/* Every server of c exactly once, in the order terminal_id tries them:
 *
 *   1. the groups by descending w(g): the first is the terminal's own
 *      group, the others are where it fails over to, in order;
 *   2. within each group, the server with the highest w(g, s) first (the
 *      terminal's start in that group), then the rest of the group's chain
 *      in chain order from the start, wrapping around to the chain's head.
 *
 * So (*ret)[0] is where the terminal goes first, (*ret)[0..k) with k the
 * size of its group its own group's chain. On success *ret is an array of
 * *ret_n picks (the number of servers in c) that the caller frees with
 * free(). Deterministic: it depends only on the id and on the group and
 * server names and chain order.
 *
 * c is trusted to have passed ug_cluster_check (the manifest reader does
 * that); what the order itself relies on is checked again. Returns 0;
 * -EINVAL for a bad terminal id (ug_rendezvous_id_check), for a NULL or
 * empty cluster (no group: the terminal uses the master), or for a group
 * without a server or a NULL name; -E2BIG for more than UG_GROUPS_MAX
 * groups or UG_GROUP_SERVERS_MAX servers in a group; -ENOMEM. ret and
 * ret_n are untouched on failure. */
int ug_rendezvous_order(const struct ug_cluster *c, const char *terminal_id,
			struct ug_rdv_pick **ret, size_t *ret_n);

#endif

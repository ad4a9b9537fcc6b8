/* rollout.h - is a terminal inside a version's staged rollout?
 *
 * A manifest may limit its version to part of the fleet
 * (upgrid-manifest(5)): a percentage, and optionally named groups of the
 * chain list or terminal-id patterns. The percentage is decided by a hash
 * of the terminal id and the version, so each terminal has a fixed
 * bucket per version: raising a rollout from 10% to 50% only adds
 * terminals, and the next version's first 10% are other terminals.
 *
 *   bucket(id, v) = BE64(BLAKE2b-256("upgrid-rollout" || 0x00 || id ||
 *                        0x00 || BE64(v))[0..7]) mod 1000
 *
 * (the first 8 bytes of the unkeyed 32-byte digest as a big-endian
 * number). A terminal is inside when bucket < permille. */
#ifndef UG_ROLLOUT_H
#define UG_ROLLOUT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "util.h"

#define UG_ROLLOUT_PERMILLE_ALL  1000u  /* everyone */
#define UG_ROLLOUT_GROUPS_MAX    64u
#define UG_ROLLOUT_PATTERNS_MAX  64u
#define UG_ROLLOUT_PATTERN_MAX   128u   /* bytes in one pattern, NUL excluded */

/* A rollout as a manifest states it. The arrays belong to whoever built
 * the struct; this module never allocates or frees them. */
struct ug_rollout {
	unsigned permille;  /* 0..1000; 1000 = everyone */
	char **groups;      /* group names (cluster.h); NULL/0: any group */
	size_t ngroups;
	char **patterns;    /* fnmatch(3) patterns on the id; NULL/0: any id */
	size_t npatterns;
};

/* Parse a percentage as written by the publisher: digits with at most one
 * decimal and an optional '%' ("10%", "10", "12.5%", "0%", "100%"), 0 to
 * 100. Nothing else is allowed: no sign, blank, exponent, second decimal
 * or trailing text. *ret_permille gets the value in tenths of a percent
 * (12.5% -> 125). 0, or -EINVAL with "rollout '120%' is above 100%" and
 * the like in err (err may be NULL). */
int ug_rollout_parse_percent(const char *s, unsigned *ret_permille, struct ug_error *err);

/* The bucket 0..999 of a terminal for a version (formula above). id must
 * be non-NULL. */
unsigned ug_rollout_bucket(const char *terminal_id, uint64_t version);

/* Is terminal_id, a member of group (its own group in the chain list,
 * rendezvous.h; NULL when it has none), inside rollout r for version?
 * True when all of:
 *   - r has no groups, or group equals one of them;
 *   - r has no patterns, or fnmatch(pattern, terminal_id, 0) == 0 for one;
 *   - ug_rollout_bucket(terminal_id, version) < r->permille.
 * A NULL terminal_id is never inside. r should have passed
 * ug_rollout_check; a permille above 1000 acts as 1000. */
bool ug_rollout_includes(const struct ug_rollout *r, const char *terminal_id,
			 uint64_t version, const char *group);

/* Is r a valid rollout: permille at most 1000; at most
 * UG_ROLLOUT_GROUPS_MAX groups, each a valid name (ug_cluster_name_check);
 * at most UG_ROLLOUT_PATTERNS_MAX patterns, each 1..UG_ROLLOUT_PATTERN_MAX
 * bytes of printable ASCII (0x20..0x7e); a non-zero count with a NULL
 * array is invalid. 0; -EINVAL with the reason in err ("rollout
 * groups[2]: name 'a b' has ..."), -E2BIG for a count over its limit. */
int ug_rollout_check(const struct ug_rollout *r, struct ug_error *err);

#endif

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
 * number). A terminal is inside when bucket < permille.
 *
 * Where a rollout comes from (upgrid-manifest(5)): the manifest may state
 * one ("rollout"), fixed when the version is published; the operator may
 * change it later with a rollout document, REPO/manifests/CHANNEL/N.rollout
 * and its signature N.rollout.sig (context UG_SIGN_CONTEXT_ROLLOUT), which
 * leaves N.json's bytes as they are: manifest deltas stay valid and servers
 * holding N need not fetch it again. A valid document outranks the
 * manifest; among documents, the higher serial is the newer one. */
#ifndef UG_ROLLOUT_H
#define UG_ROLLOUT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "util.h"

struct json_t;
struct ug_cluster;
struct ug_manifest;
struct ug_pubkey;

#define UG_ROLLOUT_PERMILLE_ALL  1000u  /* everyone */
#define UG_ROLLOUT_GROUPS_MAX    64u
#define UG_ROLLOUT_PATTERNS_MAX  64u
#define UG_ROLLOUT_PATTERN_MAX   128u   /* bytes in one pattern, NUL excluded */
#define UG_ROLLOUT_DOC_MAX       (64u << 10)  /* bytes in a rollout document */
#define UG_ROLLOUT_DOC_FORMAT    1u

/* A rollout as a manifest states it. A struct made by this module
 * (ug_rollout_dup, ug_rollout_from_args, ug_rollout_from_json, the
 * document parser) owns its arrays and strings and is freed with
 * ug_rollout_free; one built by hand belongs to whoever built it. */
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

/* ---- owned rollouts ------------------------------------------------------ */

/* A deep copy (NULL on ENOMEM or for NULL). */
struct ug_rollout *ug_rollout_dup(const struct ug_rollout *r);
/* Free r, its arrays and their strings. NULL is a no-op. */
void ug_rollout_free(struct ug_rollout *r);
/* Same permille, groups and patterns, in the same order. NULL (no
 * rollout: everyone) equals only NULL. */
bool ug_rollout_equal(const struct ug_rollout *a, const struct ug_rollout *b);
/* Does r let every terminal in: 100% with no group or pattern? (NULL
 * does.) A manifest states such a rollout by not stating one. */
bool ug_rollout_is_everyone(const struct ug_rollout *r);

/* Build a rollout from what an operator typed (upgrid publish --rollout,
 * upgrid rollout): percent as for ug_rollout_parse_percent (NULL: 100%),
 * groups a comma-separated list of group names (NULL or "": none),
 * patterns each one fnmatch(3) pattern (a pattern may hold commas).
 * Groups are sorted and patterns keep their order; a name or pattern given
 * twice is kept once, so one rollout has one spelling. The result passed
 * ug_rollout_check. 0; -EINVAL/-E2BIG with the reason in err ("--groups:
 * group name 'a b' has ..."); -ENOMEM. */
int ug_rollout_from_args(const char *percent, const char *groups, char *const *patterns,
			 size_t npatterns, struct ug_rollout **ret, struct ug_error *err);

/* Every group r names is a group of the chain list: a rollout limited to
 * a group nobody is in would silently reach no terminal. chains NULL (the
 * repo has no cluster file) with groups named is an error too. 0 or
 * -EINVAL with "rollout group 'g9' is not in the chain list (groups: g1,
 * g2); ..." in err. */
int ug_rollout_check_groups(const struct ug_rollout *r, const struct ug_cluster *chains,
			    struct ug_error *err);

/* The rollout as JSON, as upgrid-manifest(5) spells it:
 *   {"groups":[...],"permille":N,"terminals":[...]}
 * with "groups" and "terminals" left out when empty. A new jansson
 * reference, NULL on ENOMEM. */
struct json_t *ug_rollout_json(const struct ug_rollout *r);
/* Read that object (where names it in errors: "rollout"). Strict, as it
 * decides who installs a version: "permille" an integer 0..1000, "groups"
 * and "terminals" arrays of strings (absent = none), any other key
 * refused (a restriction this reader does not know must not be dropped),
 * then ug_rollout_check. 0; -EBADMSG, -E2BIG (a count over its limit)
 * with the reason in err; -ENOMEM. *ret is freed with ug_rollout_free. */
int ug_rollout_from_json(struct json_t *o, const char *where, struct ug_rollout **ret,
			 struct ug_error *err);

/* "everyone", "10%", "12.5% of groups g1,g3", "50% of terminals
 * 'meter-00*','x?'", "10% of groups g1 and terminals 'm*'": r for a
 * person. Cut with "..." to fit out (size >= 16). */
void ug_rollout_format(const struct ug_rollout *r, char *out, size_t out_size);

/* ---- rollout documents ---------------------------------------------------
 *
 * REPO/manifests/CHANNEL/N.rollout, written by `upgrid rollout`:
 *   {"channel":"stable","created":1767225600,"format":1,
 *    "rollout":{"permille":500},"serial":2,"version":42}
 * one line, keys sorted, then "\n"; signed by the master key over its
 * exact bytes with context UG_SIGN_CONTEXT_ROLLOUT (N.rollout.sig). The
 * serial starts at 1 and grows by one with each document for a version.
 * Serials order documents, they do not expire them: whoever keeps a
 * document (a group server, a terminal) replaces it only by one with a
 * higher serial, so an old document replayed by a server is not taken. */
struct ug_rollout_doc {
	unsigned format;             /* UG_ROLLOUT_DOC_FORMAT */
	char *channel;
	uint64_t version;            /* >= 1 */
	uint64_t serial;             /* >= 1 */
	int64_t created;             /* UNIX seconds, >= 0 */
	struct ug_rollout *rollout;  /* never NULL in a valid document */
};

void ug_rollout_doc_free(struct ug_rollout_doc *d);

/* Serialize d (checked first: the parser's rules) as described above.
 * *ret is NUL-terminated (not counted in *ret_len), owned by the caller.
 * 0; -EINVAL with the reason in err; -ENOMEM. */
int ug_rollout_doc_write(const struct ug_rollout_doc *d, char **ret, size_t *ret_len,
			 struct ug_error *err);

/* Parse a document that must be about version `version` of `channel`.
 * Strict: at most UG_ROLLOUT_DOC_MAX bytes (-E2BIG, before reading it),
 * valid JSON object without duplicate keys, format 1, every key above
 * present with its type and no other key, channel and version equal to
 * the ones asked for, serial 1..2^63-1, created 0..2^63-1, the rollout
 * as ug_rollout_from_json reads it. It does not check the signature: see
 * ug_rollout_doc_verify. 0; -EBADMSG (or -E2BIG) with the reason in err;
 * -ENOMEM. */
int ug_rollout_doc_parse(const char *json, size_t len, const char *channel,
			 uint64_t version, struct ug_rollout_doc **ret,
			 struct ug_error *err);

/* Check the signature (key, context UG_SIGN_CONTEXT_ROLLOUT) over the
 * exact bytes, then parse as ug_rollout_doc_parse. 0; -EKEYREJECTED for a
 * missing signature (sig NULL), one by another key or one that does not
 * match the bytes; -EBADMSG for a malformed signature line or document;
 * -E2BIG; -ENOMEM. The reason is in err. */
int ug_rollout_doc_verify(const struct ug_pubkey *key, const char *channel, uint64_t version,
			  const char *json, size_t len, const char *sig, size_t sig_len,
			  struct ug_rollout_doc **ret, struct ug_error *err);

/* The rollout that applies to version m (a manifest already verified
 * and parsed):
 *  - doc NULL (the server has no rollout document for it): m's own,
 *    m->rollout; *ret_doc is set to NULL;
 *  - otherwise doc and sig must pass ug_rollout_doc_verify with key for
 *    m's channel and version: then the document's rollout, *ret_doc the
 *    parsed document (the caller frees it with ug_rollout_doc_free).
 * *ret points into m or *ret_doc (valid while both are); NULL means
 * everyone. A document that fails is an error (-EKEYREJECTED, -EBADMSG,
 * -E2BIG, with the reason in err) and leaves *ret_doc and *ret untouched:
 * the caller logs it and uses m->rollout, as if there were no document.
 * Comparing serials with a document seen before (refusing a lower one) is
 * the caller's: this function knows only the one document it is given. */
int ug_rollout_in_force(const struct ug_manifest *m, const struct ug_pubkey *key,
			const char *doc, size_t doc_len, const char *sig, size_t sig_len,
			struct ug_rollout_doc **ret_doc, const struct ug_rollout **ret,
			struct ug_error *err);

#endif

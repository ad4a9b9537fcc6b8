/* terminal.h - a terminal's side of upgrid: find a version, fetch only
 * what changed, stage it, switch atomically, check it, roll back.
 *
 * The state directory (tconf "state", upgrid(1) FILES):
 *   lock                 flock()ed by every command that changes anything
 *   state.json           tstate.h
 *   journal              a switch in progress: "FROM TO new|old\n" (new: TO
 *                        was just installed; old: a kept version, rollback)
 *   cache/               a repo (store.h) used as the terminal's cache:
 *                        downloads in progress (tmp/dl-*, resumed at their
 *                        byte offset, from any server: blobs are named by
 *                        content), the manifests of the kept versions, and
 *                        the pristine copies of config files (objects)
 *   versions/N/          installed trees; never changed once complete
 *   staging/N/           the tree being built (removed at the next start)
 * The install root (tconf "root") is a symbolic link to versions/N, and
 * is switched by rename(2) of a new link over it.
 *
 * Crash safety. Everything before the switch happens in staging/ and the
 * cache, so a crash there leaves the installed version alone; the next run
 * removes staging/ and resumes the downloads. The journal is written
 * before the switch and removed after the health check: a run that finds
 * it sees where the link points and either finishes (health check again)
 * or rolls back. */
#ifndef UG_TERMINAL_H
#define UG_TERMINAL_H

#include <stdbool.h>
#include <stdint.h>

#include "tconf.h"
#include "tstate.h"
#include "util.h"

struct ug_term;

/* Exit status of `upgrid pull` when the new version failed its health
 * check and the terminal was switched back. */
#define UG_EXIT_ROLLED_BACK 7

/* Test hook (upgrid(1), ENVIRONMENT): UPGRID_TEST_CRASH=POINT makes the
 * process kill itself with SIGKILL when it reaches POINT; the points are
 * listed in terminal.c (ug_term_crash_points). UPGRID_TEST_NOW=SECONDS
 * replaces the clock used for manifest expiry. */
extern const char *const ug_term_crash_points[];

struct ug_pull_opts {
	bool check;            /* decide and report only */
	bool wait;             /* agent: long-poll the server first */
	unsigned wait_s;       /* how long one long-poll may last */
};

/* What ug_term_open does besides opening. */
#define UG_TERM_LOCK    0x1u  /* take the lock (commands that change anything) */
#define UG_TERM_RECOVER 0x2u  /* with the lock: finish or undo what a crash left
			       * (may run hooks); not for --check, accept, deny */

/* Open the state directory of c (created if missing, mode 0755, when
 * locking) and its cache, as flags say. -EWOULDBLOCK when another command
 * holds the lock. */
int ug_term_open(const struct ug_tconf *c, unsigned flags, struct ug_term **ret,
		 struct ug_error *err);
void ug_term_free(struct ug_term *t);
/* Where messages go: verbosity 0 errors only, 1 what happened, 2 each
 * step; to syslog instead of stderr (agent --daemon). */
void ug_term_set_log(struct ug_term *t, int verbosity, bool use_syslog);

/* The installed version (0: none) as the root link says. */
uint64_t ug_term_installed(const struct ug_term *t);
struct ug_tstate *ug_term_state(struct ug_term *t);
int ug_term_save_state(struct ug_term *t, struct ug_error *err);
/* Versions kept under versions/, ascending; caller frees. */
int ug_term_kept(const struct ug_term *t, uint64_t **ret, size_t *ret_n);

/* One pull: decide, fetch, install. *ret_result says what happened
 * (state.json has the details); the return value is 0 for OK and CURRENT,
 * else -errno with err naming the cause. */
int ug_term_pull(struct ug_term *t, const struct ug_pull_opts *o,
		 enum ug_tresult *ret_result, struct ug_error *err);

/* Agent: long-poll the terminal's servers until a version above `after`
 * (at least the installed one; the newest the last pull saw, so that a
 * version held back by rollout, policy or deny does not wake it again)
 * is published (1) or timeout_s passes (0). -errno when no server
 * answers. */
int ug_term_wait(struct ug_term *t, uint64_t after, unsigned timeout_s, struct ug_error *err);

/* A random number (splay, backoff seeds). */
uint64_t ug_term_random(struct ug_term *t);

/* Switch back to a kept version (version 0: the newest kept below the
 * installed one), running the hooks; the version left is marked bad. */
int ug_term_rollback(struct ug_term *t, uint64_t version, struct ug_error *err);

#endif

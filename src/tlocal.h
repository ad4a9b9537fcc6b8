/* tlocal.h - what the terminal's modules share (terminal.c: the pull and
 * the switch; tfetch.c: servers, the choice of a version and the
 * download of its content; tstage.c: the staging tree). Not for other
 * users: terminal.h is the interface. */
#ifndef UG_TLOCAL_H
#define UG_TLOCAL_H

#include <stdbool.h>
#include <stdint.h>

#include "client.h"
#include "hash.h"
#include "manifest.h"
#include "sign.h"
#include "store.h"
#include "tconf.h"
#include "tstate.h"
#include "util.h"

struct ug_term {
	const struct ug_tconf *c;
	int statefd, lockfd;
	struct ug_store *cache;      /* STATE/cache */
	struct ug_tstate st;
	struct ug_pubkey key;
	uint64_t installed;          /* where the root link points (0: none) */
	int rootdirfd;               /* the directory holding the root link */
	char *root_name;             /* the link's own name */
	int verbosity;               /* 0 errors, 1 normal, 2 verbose */
	bool use_syslog;
	uint64_t rng;                /* splitmix64, for splay and backoff */

	/* the session of this attempt */
	struct ug_client *cl;
	const struct ug_server *srv;
	uint64_t bytes_closed;       /* bytes of sessions already closed */
	unsigned busy_retry;         /* largest retry-after of a BUSY this round (s) */
};

struct ug_tplan;

/* A version being installed: its manifest and what the terminal holds. */
struct ug_target {
	struct ug_manifest *m;       /* the new version (owned) */
	char *json, *sig;            /* its signed document (owned) */
	size_t json_len, sig_len;
	struct ug_manifest *cur;     /* the installed version's, or NULL (owned) */
	char *cur_json;              /* (owned) */
	size_t cur_len;
	uint64_t full_bytes;         /* what full objects of the changed files cost */
	char conflicts[UG_TSTATE_TEXT_MAX];  /* merge conflicts, for the report */
	unsigned nconflicts;
	struct ug_tplan *plan;       /* tfetch.c's progress (owned) */
};

struct ug_tplan;
void ug_tfetch_plan_free(struct ug_tplan *p);
/* The installed tree (the plan's), or -1. */
int ug_tfetch_curfd(const struct ug_target *tg);

void ug_target_release(struct ug_target *tg);

void ug_term_log(struct ug_term *t, int level, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
void ug_term_crash_point(const char *name);
int64_t ug_term_now(void);
uint64_t ug_term_random(struct ug_term *t);

/* Create the directories above path (relative to dirfd), 0755. */
int ug_tlocal_mkdir_parent(int dirfd, const char *path);
/* Remove dirfd/name and everything below it, never following a link. */
int ug_tlocal_rm_tree(int dirfd, const char *name);

/* tfetch.c: sessions. The servers to try, in order (the installed
 * version's chain list by rendezvous, then the seeds); caller frees the
 * array (not the servers, which belong to cur or the settings). */
int ug_tfetch_servers(struct ug_term *t, const struct ug_manifest *cur,
		      const struct ug_server ***ret, size_t *ret_n, const char **ret_group);
int ug_tfetch_connect(struct ug_term *t, const struct ug_server *srv, struct ug_error *err);
void ug_tfetch_disconnect(struct ug_term *t);
uint64_t ug_tfetch_bytes(const struct ug_term *t);

/* The manifest of the installed version from the cache (verified), or
 * NULL with 0 when nothing is installed. */
int ug_tfetch_current(struct ug_term *t, struct ug_target *tg, struct ug_error *err);

/* Choose what to install from the connected server: 0 with tg->m set,
 * 0 with tg->m NULL (nothing to do: why in *why), or -errno (a server
 * problem: try the next one). */
int ug_tfetch_choose(struct ug_term *t, struct ug_target *tg, const char *group,
		     char *why, size_t why_n, struct ug_error *err);

/* Put every file of the target into staging/N (see tstage.c for what
 * then happens to config, data and preserve files). Resumable: what is in
 * the cache stays there. -errno with err for a server problem (the
 * caller tries the next server and calls again). */
int ug_tfetch_content(struct ug_term *t, struct ug_target *tg, int stgfd, struct ug_error *err);

/* tstage.c: after the pre-switch hook: preserve, migrate, merge into the
 * staging tree, then directory modes, then one sync. */
int ug_tstage_finish(struct ug_term *t, struct ug_target *tg, int stgfd, struct ug_error *err);
/* After a successful install: drop versions beyond `keep`, their
 * manifests, downloads and cached content no kept version needs. */
void ug_tstage_prune(struct ug_term *t);

#endif

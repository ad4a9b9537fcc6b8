/* tstate.h - what a terminal remembers between runs: STATE/state.json.
 *
 * The installed version itself is not stored here: the install root's
 * symbolic link (STATE/versions/N) is the truth, so a crash between the
 * switch and the write of this file cannot make the two disagree. This
 * file holds what the operator and `upgrid status` need: the last
 * attempt and its result, the versions marked bad by a failed health
 * check, those accepted or denied with `upgrid accept` / `upgrid deny`,
 * counters, and a report not yet delivered to a server.
 *
 * The document is JSON (upgrid(1), FILES, documents its fields), written
 * atomically. A file that does not parse is renamed to state.json.bad and
 * a fresh state is used, with a warning: losing the last-attempt record
 * is better than a terminal that cannot upgrade any more. */
#ifndef UG_TSTATE_H
#define UG_TSTATE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "util.h"

#define UG_TSTATE_FILE      "state.json"
#define UG_TSTATE_MAX       (1u << 20)   /* bytes of state.json */
#define UG_TSTATE_LIST_MAX  256u         /* versions in bad/accepted/denied */
#define UG_TSTATE_TEXT_MAX  512u         /* bytes in a message */
#define UG_TSTATE_SERIALS_MAX 16u        /* versions with a rollout serial */

/* The result of one attempt, as status and reports name it. */
enum ug_tresult {
	UG_TRESULT_NONE = 0,     /* no attempt yet */
	UG_TRESULT_OK,           /* the target version was installed */
	UG_TRESULT_CURRENT,      /* nothing to do */
	UG_TRESULT_FAILED,       /* the attempt failed; the installed version runs */
	UG_TRESULT_ROLLED_BACK,  /* the health check failed; switched back */
	UG_TRESULT__COUNT
};

const char *ug_tresult_name(enum ug_tresult r);

struct ug_tattempt {
	int64_t time;            /* start, UNIX seconds */
	enum ug_tresult result;
	uint64_t target;         /* version tried (0: none) */
	uint64_t installed;      /* version running afterwards */
	uint64_t newest;         /* newest version the server offered (0: unknown) */
	char server[128];        /* server used ("" if none) */
	uint64_t bytes;          /* bytes pulled over the network */
	uint64_t full_bytes;     /* what full objects would have cost */
	uint64_t duration_ms;
	char message[UG_TSTATE_TEXT_MAX];
};

struct ug_tstate {
	struct ug_tattempt last;
	int64_t last_success;      /* time of the last OK or CURRENT (0: never) */
	int64_t last_report;       /* time a report last reached a server */
	uint64_t failures;         /* consecutive failed attempts */
	uint64_t bytes_total;      /* over all attempts */
	bool report_pending;       /* last was not delivered yet */
	uint64_t bad[UG_TSTATE_LIST_MAX];      size_t nbad;
	uint64_t accepted[UG_TSTATE_LIST_MAX]; size_t naccepted;
	uint64_t denied[UG_TSTATE_LIST_MAX];   size_t ndenied;
	/* The highest rollout document serial seen per version (rollout.h):
	 * a server offering an older document is not believed. The newest
	 * UG_TSTATE_SERIALS_MAX versions are remembered. */
	struct { uint64_t version, serial; } serials[UG_TSTATE_SERIALS_MAX];
	size_t nserials;
};

/* The serial seen for version (0: none); note a higher one. */
uint64_t ug_tstate_serial(const struct ug_tstate *st, uint64_t version);
void ug_tstate_serial_note(struct ug_tstate *st, uint64_t version, uint64_t serial);

/* Read STATE/state.json through dirfd (the state directory). A missing
 * file gives a fresh state (0). A damaged one is moved aside as above and
 * a fresh state returned with *ret_warning set (may be NULL). */
int ug_tstate_load(int dirfd, struct ug_tstate *st, bool *ret_warning,
		   struct ug_error *err);
/* Write it atomically. */
int ug_tstate_save(int dirfd, const struct ug_tstate *st, struct ug_error *err);

/* The lists: add keeps the list sorted and unique; when full the oldest
 * (smallest) version is dropped. */
bool ug_tstate_has(const uint64_t *list, size_t n, uint64_t v);
void ug_tstate_add(uint64_t *list, size_t *n, uint64_t v);
void ug_tstate_del(uint64_t *list, size_t *n, uint64_t v);

/* The attempt as a report (protocol.md, REPORT): a JSON object text the
 * caller frees. */
char *ug_tstate_report(const struct ug_tattempt *a, const char *terminal_id,
		       const char *channel);

struct json_t;
/* The whole state as JSON (status --json adds to it); a new reference. */
struct json_t *ug_tstate_json(const struct ug_tstate *st);
struct json_t *ug_tattempt_json(const struct ug_tattempt *a);

#endif

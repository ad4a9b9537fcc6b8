/* debounce.h - when upgrid-watch publishes, and how often it may repeat a
 * log message: the timing rules alone, free of I/O and of the clock, so
 * tests drive them with made-up times.
 *
 * Times are nanoseconds on CLOCK_MONOTONIC (never the wall clock: an NTP
 * step must not publish early or hold a version back for an hour).
 *
 * Debounce. A change starts a pending period. The tree is published when
 * it has been quiet for quiet_ns since the last change, or max_delay_ns
 * after the first change of the period if changes never stop, so an
 * operator's multi-file edit becomes one version and a tree that is
 * written continuously still gets versions. A failed publish keeps the
 * changes pending and is retried no earlier than the delay the caller
 * chooses (the quiet period when the repo was locked, a growing back-off
 * for real failures). */
#ifndef UG_DEBOUNCE_H
#define UG_DEBOUNCE_H

#include <stdbool.h>
#include <stdint.h>

#define UG_NSEC_PER_SEC 1000000000ll
#define UG_DEBOUNCE_NEVER INT64_MAX

struct ug_debounce {
	int64_t quiet_ns;
	int64_t max_delay_ns;
	bool pending;
	int64_t first_ns;        /* first change of the pending period */
	int64_t last_ns;         /* latest change */
	int64_t not_before_ns;   /* retry time after a failure, 0: none */
	unsigned failures;       /* consecutive failed publishes */
	uint64_t changes;        /* changes in the pending period */
};

void ug_debounce_init(struct ug_debounce *d, int64_t quiet_ns, int64_t max_delay_ns);
/* New timing (SIGHUP); what is pending stays pending, judged by the new
 * rules from the times already recorded. */
void ug_debounce_configure(struct ug_debounce *d, int64_t quiet_ns, int64_t max_delay_ns);
void ug_debounce_change(struct ug_debounce *d, int64_t now_ns);
/* When to publish: UG_DEBOUNCE_NEVER if nothing is pending. */
int64_t ug_debounce_deadline(const struct ug_debounce *d);
bool ug_debounce_due(const struct ug_debounce *d, int64_t now_ns);
/* The publish that started at start_ns succeeded (or found the tree
 * unchanged). Changes recorded after start_ns stay pending: the scan may
 * have read those files before they were written. */
void ug_debounce_published(struct ug_debounce *d, int64_t start_ns);
/* The publish failed: try again no earlier than now + delay. */
void ug_debounce_retry(struct ug_debounce *d, int64_t now_ns, int64_t delay_ns);
/* Not now, but not a failure either (the repo was locked, a file was
 * being written): the same, without counting a failure. */
void ug_debounce_defer(struct ug_debounce *d, int64_t now_ns, int64_t delay_ns);
/* A failure back-off: base for the first failure, doubled for each
 * further one in a row, at most cap. */
int64_t ug_debounce_backoff(unsigned failures, int64_t base_ns, int64_t cap_ns);

/* Milliseconds for poll() until deadline: -1 for UG_DEBOUNCE_NEVER, 0 if
 * past, rounded up so a poll that returns on time finds it due. */
int ug_timeout_ms(int64_t deadline_ns, int64_t now_ns);

/* "2", "0.5", "1.25": a number of seconds with up to 9 decimals, between
 * min_ns and max_ns. -EINVAL if it is not such a number, -ERANGE out of
 * range. */
int ug_seconds_parse(const char *s, int64_t min_ns, int64_t max_ns, int64_t *ret_ns);
/* Shortest decimal form of a number of seconds ("2", "0.25"); out >= 32. */
void ug_seconds_format(int64_t ns, char *out, unsigned out_size);

/* Rate limit for a repeated message: at most burst messages per interval;
 * the rest are counted, and the first message let through after them
 * learns how many were dropped so it can say so. */
struct ug_ratelimit {
	int64_t interval_ns;
	unsigned burst;
	int64_t begin_ns;
	unsigned printed;
	unsigned suppressed;
	bool started;
};

void ug_ratelimit_init(struct ug_ratelimit *r, int64_t interval_ns, unsigned burst);
/* True if the message may be printed now; then *ret_suppressed is the
 * number dropped since the last one printed (0 if none). */
bool ug_ratelimit_check(struct ug_ratelimit *r, int64_t now_ns, unsigned *ret_suppressed);

#endif

/* test-debounce.c - unit tests for watcher/debounce.c: when upgrid-watch
 * publishes (quiet period, maximum delay, retries after failures), poll
 * timeouts, the seconds parser and the log rate limiter, all on a
 * made-up clock. */
#include "config.h"

#include <criterion/criterion.h>

#include <errno.h>
#include <limits.h>
#include <string.h>

#include "debounce.h"

#define S UG_NSEC_PER_SEC
#define MS (S / 1000)

TestSuite(debounce);

Test(debounce, idle_never_due)
{
	struct ug_debounce d;

	ug_debounce_init(&d, 2 * S, 30 * S);
	cr_assert_eq(ug_debounce_deadline(&d), UG_DEBOUNCE_NEVER);
	cr_assert_not(ug_debounce_due(&d, 1000 * S));
	cr_assert_eq(ug_timeout_ms(ug_debounce_deadline(&d), 0), -1);
}

Test(debounce, quiet_period_after_last_change)
{
	struct ug_debounce d;

	ug_debounce_init(&d, 2 * S, 30 * S);
	ug_debounce_change(&d, 100 * S);
	cr_assert_eq(ug_debounce_deadline(&d), 102 * S);
	/* each change pushes the deadline back */
	ug_debounce_change(&d, 101 * S);
	cr_assert_eq(ug_debounce_deadline(&d), 103 * S);
	cr_assert_not(ug_debounce_due(&d, 103 * S - 1));
	cr_assert(ug_debounce_due(&d, 103 * S));
	cr_assert_eq(d.changes, 2);
}

Test(debounce, multi_file_edit_is_one_publish)
{
	struct ug_debounce d;
	int publishes = 0;

	ug_debounce_init(&d, 2 * S, 30 * S);
	/* 50 saves 100 ms apart, then silence: due once, after the last */
	for (int i = 0; i < 50; i++) {
		int64_t now = 10 * S + i * 100 * MS;
		if (ug_debounce_due(&d, now)) {
			publishes++;
			ug_debounce_published(&d, now);
		}
		ug_debounce_change(&d, now);
	}
	for (int64_t now = 15 * S; now < 40 * S; now += 50 * MS) {
		if (ug_debounce_due(&d, now)) {
			publishes++;
			cr_assert_geq(now, 10 * S + 49 * 100 * MS + 2 * S);
			ug_debounce_published(&d, now);
		}
	}
	cr_assert_eq(publishes, 1);
}

Test(debounce, max_delay_caps_continuous_changes)
{
	struct ug_debounce d;
	int64_t now, first_publish = -1;
	int publishes = 0;

	ug_debounce_init(&d, 2 * S, 5 * S);
	/* a change every second, forever: the quiet period never comes */
	for (now = 0; now <= 20 * S; now += S / 2) {
		if (ug_debounce_due(&d, now)) {
			if (first_publish < 0)
				first_publish = now;
			publishes++;
			ug_debounce_published(&d, now);
		}
		if (now % S == 0)
			ug_debounce_change(&d, now);
	}
	cr_assert_eq(first_publish, 5 * S, "first publish at %lld", (long long)first_publish);
	cr_assert_geq(publishes, 3);
	cr_assert_leq(publishes, 4);
}

Test(debounce, changes_during_publish_stay_pending)
{
	struct ug_debounce d;

	ug_debounce_init(&d, 1 * S, 10 * S);
	ug_debounce_change(&d, 0);
	/* publish starts at 1 s; a change lands at 1.5 s (recorded before
	 * published() is called) */
	ug_debounce_change(&d, 3 * S / 2);
	ug_debounce_published(&d, 1 * S);
	cr_assert(d.pending);
	cr_assert_eq(ug_debounce_deadline(&d), 5 * S / 2);
	/* a change before the start is covered by that publish */
	ug_debounce_init(&d, 1 * S, 10 * S);
	ug_debounce_change(&d, 0);
	ug_debounce_published(&d, 1 * S);
	cr_assert_not(d.pending);
	cr_assert_eq(ug_debounce_deadline(&d), UG_DEBOUNCE_NEVER);
}

Test(debounce, retry_waits_even_past_max_delay)
{
	struct ug_debounce d;

	ug_debounce_init(&d, 2 * S, 3 * S);
	ug_debounce_change(&d, 0);
	cr_assert(ug_debounce_due(&d, 2 * S));
	/* the repo was locked at 2 s: not again before 4 s, even though
	 * max-delay (3 s) has passed */
	ug_debounce_retry(&d, 2 * S, 2 * S);
	cr_assert(d.pending);
	cr_assert_eq(d.failures, 1);
	cr_assert_not(ug_debounce_due(&d, 4 * S - 1));
	cr_assert(ug_debounce_due(&d, 4 * S));
	ug_debounce_published(&d, 4 * S);
	cr_assert_not(d.pending);
	cr_assert_eq(d.failures, 0);
	cr_assert_eq(d.not_before_ns, 0);
}

Test(debounce, defer_is_not_a_failure)
{
	struct ug_debounce d;

	ug_debounce_init(&d, 2 * S, 30 * S);
	ug_debounce_change(&d, 0);
	ug_debounce_retry(&d, 2 * S, 2 * S);
	cr_assert_eq(d.failures, 1);
	/* locked next time: deferred, the failure count stays */
	ug_debounce_defer(&d, 4 * S, 2 * S);
	cr_assert_eq(d.failures, 1);
	cr_assert_not(ug_debounce_due(&d, 6 * S - 1));
	cr_assert(ug_debounce_due(&d, 6 * S));
}

Test(debounce, retry_without_pending_change_still_retries)
{
	struct ug_debounce d;

	/* the start-up publish fails before any event came */
	ug_debounce_init(&d, 2 * S, 30 * S);
	ug_debounce_retry(&d, 10 * S, 2 * S);
	cr_assert(d.pending);
	cr_assert_eq(ug_debounce_deadline(&d), 12 * S);
}

Test(debounce, backoff_doubles_to_cap)
{
	cr_assert_eq(ug_debounce_backoff(1, 2 * S, 300 * S), 2 * S);
	cr_assert_eq(ug_debounce_backoff(2, 2 * S, 300 * S), 4 * S);
	cr_assert_eq(ug_debounce_backoff(5, 2 * S, 300 * S), 32 * S);
	cr_assert_eq(ug_debounce_backoff(9, 2 * S, 300 * S), 300 * S);
	cr_assert_eq(ug_debounce_backoff(UINT_MAX, 2 * S, 300 * S), 300 * S);
	cr_assert_eq(ug_debounce_backoff(0, 2 * S, 300 * S), 2 * S);
}

Test(debounce, reconfigure_applies_to_pending)
{
	struct ug_debounce d;

	ug_debounce_init(&d, 30 * S, 60 * S);
	ug_debounce_change(&d, 100 * S);
	cr_assert_eq(ug_debounce_deadline(&d), 130 * S);
	/* SIGHUP lowers the quiet period: due at once */
	ug_debounce_configure(&d, S / 5, 60 * S);
	cr_assert(ug_debounce_due(&d, 101 * S));
}

Test(debounce, deadline_saturates)
{
	struct ug_debounce d;

	ug_debounce_init(&d, INT64_MAX, INT64_MAX);
	ug_debounce_change(&d, INT64_MAX - 5);
	cr_assert_eq(ug_debounce_deadline(&d), UG_DEBOUNCE_NEVER);
}

Test(debounce, timeout_ms_rounds_up)
{
	cr_assert_eq(ug_timeout_ms(UG_DEBOUNCE_NEVER, 0), -1);
	cr_assert_eq(ug_timeout_ms(5 * S, 6 * S), 0);
	cr_assert_eq(ug_timeout_ms(5 * S, 5 * S), 0);
	cr_assert_eq(ug_timeout_ms(5 * S + 1, 5 * S), 1);
	cr_assert_eq(ug_timeout_ms(5 * S + MS, 5 * S), 1);
	cr_assert_eq(ug_timeout_ms(5 * S + MS + 1, 5 * S), 2);
	cr_assert_eq(ug_timeout_ms(INT64_MAX - 1, 0), INT_MAX);
	cr_assert_eq(ug_timeout_ms(INT64_MAX - 1, INT64_MIN), INT_MAX);
}

Test(debounce, seconds_parse)
{
	int64_t ns = 42;

	cr_assert_eq(ug_seconds_parse("2", 0, 3600 * S, &ns), 0);
	cr_assert_eq(ns, 2 * S);
	cr_assert_eq(ug_seconds_parse("0.1", 0, 3600 * S, &ns), 0);
	cr_assert_eq(ns, S / 10);
	cr_assert_eq(ug_seconds_parse("1.25", 0, 3600 * S, &ns), 0);
	cr_assert_eq(ns, 5 * S / 4);
	cr_assert_eq(ug_seconds_parse("0.000000001", 0, S, &ns), 0);
	cr_assert_eq(ns, 1);
	cr_assert_eq(ug_seconds_parse("3600", 0, 3600 * S, &ns), 0);
	cr_assert_eq(ns, 3600 * S);
}

Test(debounce, seconds_parse_rejects)
{
	static const char *const bad[] = {
		"", ".5", "5.", "-1", "+1", " 1", "1 ", "1s", "1e3", "0x10", "1.2.3",
		"1,5", "0.0000000001", "abc", "1.-5",
	};
	int64_t ns = 42;

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		cr_assert_eq(ug_seconds_parse(bad[i], 0, 3600 * S, &ns), -EINVAL, "'%s'", bad[i]);
		cr_assert_eq(ns, 42, "'%s' wrote the result", bad[i]);
	}
	cr_assert_eq(ug_seconds_parse(NULL, 0, S, &ns), -EINVAL);
	cr_assert_eq(ug_seconds_parse("3601", 0, 3600 * S, &ns), -ERANGE);
	cr_assert_eq(ug_seconds_parse("0.001", S / 100, S, &ns), -ERANGE);
	cr_assert_eq(ug_seconds_parse("0", S / 100, S, &ns), -ERANGE);
	/* would overflow int64 nanoseconds */
	cr_assert_eq(ug_seconds_parse("9223372036.9", 0, INT64_MAX, &ns), -ERANGE);
	cr_assert_eq(ug_seconds_parse("99999999999999999999999", 0, INT64_MAX, &ns), -ERANGE);
	cr_assert_eq(ns, 42);
}

Test(debounce, seconds_format_round_trips)
{
	static const int64_t v[] = { 0, 1, S / 10, S / 5, 2 * S, 5 * S / 4, 86400 * S, 123456789 };
	char out[32];
	int64_t back;

	for (size_t i = 0; i < sizeof(v) / sizeof(v[0]); i++) {
		ug_seconds_format(v[i], out, sizeof(out));
		cr_assert_eq(ug_seconds_parse(out, 0, INT64_MAX, &back), 0, "'%s'", out);
		cr_assert_eq(back, v[i], "'%s'", out);
	}
	ug_seconds_format(S / 5, out, sizeof(out));
	cr_assert_str_eq(out, "0.2");
	ug_seconds_format(30 * S, out, sizeof(out));
	cr_assert_str_eq(out, "30");
}

Test(debounce, ratelimit_burst_then_summary)
{
	struct ug_ratelimit r;
	unsigned dropped = 99, printed = 0;

	ug_ratelimit_init(&r, 60 * S, 5);
	for (int i = 0; i < 100; i++) {
		if (ug_ratelimit_check(&r, 10 * S + i * MS, &dropped)) {
			printed++;
			cr_assert_eq(dropped, 0);
		}
	}
	cr_assert_eq(printed, 5);
	/* a new window: the first message learns how many were dropped */
	cr_assert(ug_ratelimit_check(&r, 70 * S + 200 * MS, &dropped));
	cr_assert_eq(dropped, 95);
	cr_assert(ug_ratelimit_check(&r, 70 * S + 300 * MS, &dropped));
	cr_assert_eq(dropped, 0);
}

Test(debounce, ratelimit_clock_going_back_resets)
{
	struct ug_ratelimit r;
	unsigned dropped;

	ug_ratelimit_init(&r, 60 * S, 1);
	cr_assert(ug_ratelimit_check(&r, 100 * S, &dropped));
	cr_assert_not(ug_ratelimit_check(&r, 101 * S, &dropped));
	cr_assert(ug_ratelimit_check(&r, 50 * S, &dropped));
	cr_assert_eq(dropped, 1);
}

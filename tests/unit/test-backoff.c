/* test-backoff.c - unit tests for src/backoff.c: full-jitter windows,
 * their growth and cap, BUSY retry-after, the spread of the draws. */
#include "config.h"

#include <criterion/criterion.h>

#include <limits.h>
#include <stdio.h>
#include <string.h>

#include "backoff.h"

TestSuite(backoff);

static uint64_t expected_window(unsigned base, unsigned cap, unsigned attempt)
{
	uint64_t w;

	if (attempt >= 40)
		return cap;
	w = (uint64_t)base << attempt;
	return w < cap ? w : cap;
}

Test(backoff, delays_stay_inside_the_window)
{
	for (uint64_t seed = 0; seed < 50; seed++) {
		struct ug_backoff b;

		ug_backoff_init(&b, 100, 60000, seed);
		for (unsigned a = 0; a < 200; a++) {
			unsigned d = ug_backoff_next(&b, 0);
			cr_assert_leq(d, expected_window(100, 60000, a),
				      "seed %llu attempt %u: %u ms", (unsigned long long)seed, a, d);
		}
	}
}

/* The largest delay seen at each attempt grows to the cap: with 300
 * seeds, draws come close to each window's top. */
Test(backoff, windows_double_up_to_the_cap)
{
	unsigned maxd[12] = { 0 };

	for (uint64_t seed = 1; seed <= 300; seed++) {
		struct ug_backoff b;

		ug_backoff_init(&b, 100, 30000, seed * 7919);
		for (unsigned a = 0; a < 12; a++) {
			unsigned d = ug_backoff_next(&b, 0);
			if (d > maxd[a])
				maxd[a] = d;
		}
	}
	for (unsigned a = 0; a < 12; a++) {
		uint64_t w = expected_window(100, 30000, a);
		cr_assert_leq(maxd[a], w);
		cr_assert_geq(maxd[a], w * 9 / 10, "attempt %u: max %u of window %llu", a,
			      maxd[a], (unsigned long long)w);
	}
	cr_assert_eq(expected_window(100, 30000, 9), 30000, "the cap is reached by attempt 9");
}

Test(backoff, attempt_saturates)
{
	struct ug_backoff b;

	ug_backoff_init(&b, 1000, 5000, 42);
	b.attempt = UINT_MAX - 2;
	for (int i = 0; i < 10; i++) {
		unsigned d = ug_backoff_next(&b, 0);
		cr_assert_leq(d, 5000u);
	}
	cr_assert_eq(b.attempt, UINT_MAX, "attempt held at UINT_MAX");

	/* a huge base: the shifted window would overflow 64 bits at once */
	ug_backoff_init(&b, UINT_MAX, UINT_MAX, 1);
	for (int i = 0; i < 100; i++)
		(void)ug_backoff_next(&b, 0);
	cr_assert_eq(b.attempt, 100);

	/* attempts 31..33 straddle the shift limit: still capped */
	ug_backoff_init(&b, 3, 1000, 9);
	for (unsigned a = 0; a < 70; a++)
		cr_assert_leq(ug_backoff_next(&b, 0), 1000u, "attempt %u", a);
}

Test(backoff, zero_base_and_cap_below_base)
{
	struct ug_backoff b;

	ug_backoff_init(&b, 0, 1000, 5);
	for (int i = 0; i < 50; i++)
		cr_assert_eq(ug_backoff_next(&b, 0), 0u);

	ug_backoff_init(&b, 1000, 10, 5);
	for (int i = 0; i < 50; i++)
		cr_assert_leq(ug_backoff_next(&b, 0), 10u);
}

Test(backoff, retry_after_is_honoured)
{
	struct ug_backoff b;
	unsigned lo = UINT_MAX, hi = 0;

	/* below the cap: at least R, at most min(1.2 R, cap) */
	ug_backoff_init(&b, 100, 60000, 3);
	for (int i = 0; i < 2000; i++) {
		unsigned d = ug_backoff_next(&b, 10);
		cr_assert_geq(d, 10000u);
		cr_assert_leq(d, 12000u);
		lo = d < lo ? d : lo;
		hi = d > hi ? d : hi;
	}
	cr_assert_lt(lo, 10200u, "jitter starts near R (lowest %u)", lo);
	cr_assert_gt(hi, 11800u, "jitter reaches near 1.2 R (highest %u)", hi);

	/* R just below the cap: jitter cut at the cap, never below R */
	ug_backoff_init(&b, 100, 10500, 3);
	for (int i = 0; i < 500; i++) {
		unsigned d = ug_backoff_next(&b, 10);
		cr_assert(d >= 10000u && d <= 10500u, "%u", d);
	}

	/* R above the cap: the server's word wins, jitter on top */
	ug_backoff_init(&b, 100, 5000, 3);
	for (int i = 0; i < 500; i++) {
		unsigned d = ug_backoff_next(&b, 60);
		cr_assert(d >= 60000u && d <= 72000u, "%u", d);
	}

	/* the protocol's largest retry-after, and one past anything sane */
	ug_backoff_init(&b, 100, 5000, 3);
	cr_assert_geq(ug_backoff_next(&b, 86400), 86400000u);
	cr_assert_eq(ug_backoff_next(&b, UINT_MAX), UINT_MAX, "saturates, never wraps");
	cr_assert_eq(b.attempt, 2, "a BUSY counts as an attempt");
}

/* Full jitter is uniform over the window: mean about half of it. */
Test(backoff, draws_are_uniform)
{
	struct ug_backoff b;
	const unsigned window = 8000, n = 10000;
	unsigned hist[10] = { 0 };
	double sum = 0;

	ug_backoff_init(&b, window, window, 0x5eed);
	for (unsigned i = 0; i < n; i++) {
		unsigned d = ug_backoff_next(&b, 0);
		sum += d;
		hist[d * 10 / (window + 1)]++;
	}
	printf("backoff: mean of %u draws in [0, %u]: %.1f (ideal %.1f)\n", n, window, sum / n,
	       window / 2.0);
	cr_assert(sum / n >= window / 2.0 * 0.9 && sum / n <= window / 2.0 * 1.1, "mean %.1f",
		  sum / n);
	for (int k = 0; k < 10; k++)
		cr_assert(hist[k] >= n / 10 * 8 / 10 && hist[k] <= n / 10 * 12 / 10,
			  "decile %d has %u draws", k, hist[k]);
}

Test(backoff, seeds_differ_and_repeat)
{
	struct ug_backoff a, b, c;
	unsigned same = 0;

	ug_backoff_init(&a, 1000, 1000, 1);
	ug_backoff_init(&b, 1000, 1000, 1);
	ug_backoff_init(&c, 1000, 1000, 2);
	for (int i = 0; i < 100; i++) {
		unsigned x = ug_backoff_next(&a, 0);
		cr_assert_eq(x, ug_backoff_next(&b, 0), "same seed, same delays");
		same += x == ug_backoff_next(&c, 0);
	}
	cr_assert_lt(same, 5u, "seeds 1 and 2 agree on %u of 100 delays", same);
}

Test(backoff, reset_starts_over)
{
	struct ug_backoff b;
	unsigned d, top = 0;

	ug_backoff_init(&b, 100, 100000, 11);
	for (int i = 0; i < 10; i++)
		(void)ug_backoff_next(&b, 0);
	cr_assert_eq(b.attempt, 10);
	ug_backoff_reset(&b);
	cr_assert_eq(b.attempt, 0);
	cr_assert_eq(b.base_ms, 100);
	cr_assert_eq(b.cap_ms, 100000);
	d = ug_backoff_next(&b, 0);
	cr_assert_leq(d, 100u, "first window after reset is base again (%u)", d);

	/* many resets: each first delay inside the base window */
	for (int i = 0; i < 1000; i++) {
		ug_backoff_reset(&b);
		d = ug_backoff_next(&b, 0);
		cr_assert_leq(d, 100u);
		top = d > top ? d : top;
	}
	cr_assert_gt(top, 90u, "the generator goes on after reset (top %u)", top);
}

/* debounce.c - publish timing and log rate limits (see debounce.h). */
#include "config.h"

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>

#include "debounce.h"
#include "util.h"

void ug_debounce_init(struct ug_debounce *d, int64_t quiet_ns, int64_t max_delay_ns)
{
	memset(d, 0, sizeof(*d));
	ug_debounce_configure(d, quiet_ns, max_delay_ns);
}

void ug_debounce_configure(struct ug_debounce *d, int64_t quiet_ns, int64_t max_delay_ns)
{
	d->quiet_ns = quiet_ns > 0 ? quiet_ns : 0;
	d->max_delay_ns = max_delay_ns > 0 ? max_delay_ns : 0;
}

void ug_debounce_change(struct ug_debounce *d, int64_t now_ns)
{
	if (!d->pending) {
		d->pending = true;
		d->first_ns = now_ns;
		d->changes = 0;
	}
	d->last_ns = now_ns;
	d->changes++;
}

static int64_t add_sat(int64_t a, int64_t b)
{
	int64_t r;

	if (__builtin_add_overflow(a, b, &r))
		return UG_DEBOUNCE_NEVER;
	return r;
}

int64_t ug_debounce_deadline(const struct ug_debounce *d)
{
	int64_t quiet, latest, t;

	if (!d->pending)
		return UG_DEBOUNCE_NEVER;
	quiet = add_sat(d->last_ns, d->quiet_ns);
	latest = add_sat(d->first_ns, d->max_delay_ns);
	t = quiet < latest ? quiet : latest;
	/* after a failure the retry delay wins even over max-delay: retrying
	 * a locked repo in a tight loop helps no one */
	return t > d->not_before_ns ? t : d->not_before_ns;
}

bool ug_debounce_due(const struct ug_debounce *d, int64_t now_ns)
{
	return d->pending && now_ns >= ug_debounce_deadline(d);
}

void ug_debounce_published(struct ug_debounce *d, int64_t start_ns)
{
	d->failures = 0;
	d->not_before_ns = 0;
	if (d->pending && d->last_ns > start_ns) {
		if (d->first_ns < start_ns)
			d->first_ns = start_ns;
		return;
	}
	d->pending = false;
	d->changes = 0;
}

void ug_debounce_defer(struct ug_debounce *d, int64_t now_ns, int64_t delay_ns)
{
	if (!d->pending) {
		d->pending = true;
		d->first_ns = now_ns;
		d->last_ns = now_ns;
	}
	d->not_before_ns = add_sat(now_ns, delay_ns > 0 ? delay_ns : 0);
}

void ug_debounce_retry(struct ug_debounce *d, int64_t now_ns, int64_t delay_ns)
{
	ug_debounce_defer(d, now_ns, delay_ns);
	if (d->failures < UINT_MAX)
		d->failures++;
}

int64_t ug_debounce_backoff(unsigned failures, int64_t base_ns, int64_t cap_ns)
{
	int64_t t = base_ns > 0 ? base_ns : 1;

	for (unsigned i = 1; i < failures && t < cap_ns; i++)
		t = add_sat(t, t);
	return t < cap_ns ? t : cap_ns;
}

int ug_timeout_ms(int64_t deadline_ns, int64_t now_ns)
{
	int64_t left, ms;

	if (deadline_ns == UG_DEBOUNCE_NEVER)
		return -1;
	if (deadline_ns <= now_ns)
		return 0;
	if (__builtin_sub_overflow(deadline_ns, now_ns, &left))
		return INT_MAX;
	ms = left / 1000000 + (left % 1000000 != 0);
	return ms > INT_MAX ? INT_MAX : (int)ms;
}

int ug_seconds_parse(const char *s, int64_t min_ns, int64_t max_ns, int64_t *ret_ns)
{
	char whole[24];
	const char *dot;
	uint64_t sec;
	int64_t frac = 0, ns, scale = UG_NSEC_PER_SEC / 10;
	size_t wl;
	int r;

	if (!s || !*s)
		return -EINVAL;
	dot = strchr(s, '.');
	wl = dot ? (size_t)(dot - s) : strlen(s);
	if (wl == 0)
		return -EINVAL;
	if (wl >= sizeof(whole)) {
		for (size_t i = 0; i < wl; i++)
			if (s[i] < '0' || s[i] > '9')
				return -EINVAL;
		return -ERANGE;
	}
	memcpy(whole, s, wl);
	whole[wl] = '\0';
	r = ug_parse_u64(whole, (uint64_t)(INT64_MAX / UG_NSEC_PER_SEC), &sec);
	if (r < 0)
		return r;
	if (dot) {
		const char *p = dot + 1;
		if (!*p)
			return -EINVAL;
		for (; *p; p++) {
			if (*p < '0' || *p > '9')
				return -EINVAL;
			if (scale == 0)
				return -EINVAL; /* finer than a nanosecond */
			frac += (*p - '0') * scale;
			scale /= 10;
		}
	}
	if (__builtin_mul_overflow((int64_t)sec, UG_NSEC_PER_SEC, &ns) ||
	    __builtin_add_overflow(ns, frac, &ns))
		return -ERANGE;
	if (ns < min_ns || ns > max_ns)
		return -ERANGE;
	*ret_ns = ns;
	return 0;
}

void ug_seconds_format(int64_t ns, char *out, unsigned out_size)
{
	int64_t sec = ns / UG_NSEC_PER_SEC, frac = ns % UG_NSEC_PER_SEC;
	char f[16];
	int n;

	if (ns < 0) {
		snprintf(out, out_size, "0");
		return;
	}
	if (frac == 0) {
		snprintf(out, out_size, "%lld", (long long)sec);
		return;
	}
	snprintf(f, sizeof(f), "%09lld", (long long)frac);
	n = 9;
	while (n > 0 && f[n - 1] == '0')
		n--;
	f[n] = '\0';
	snprintf(out, out_size, "%lld.%s", (long long)sec, f);
}

void ug_ratelimit_init(struct ug_ratelimit *r, int64_t interval_ns, unsigned burst)
{
	memset(r, 0, sizeof(*r));
	r->interval_ns = interval_ns;
	r->burst = burst ? burst : 1;
}

bool ug_ratelimit_check(struct ug_ratelimit *r, int64_t now_ns, unsigned *ret_suppressed)
{
	unsigned dropped = 0;

	if (!r->started || now_ns - r->begin_ns >= r->interval_ns || now_ns < r->begin_ns) {
		r->started = true;
		r->begin_ns = now_ns;
		r->printed = 0;
	}
	if (r->printed >= r->burst) {
		if (r->suppressed < UINT_MAX)
			r->suppressed++;
		return false;
	}
	r->printed++;
	dropped = r->suppressed;
	r->suppressed = 0;
	*ret_suppressed = dropped;
	return true;
}

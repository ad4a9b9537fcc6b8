/* backoff.c - exponential backoff with full jitter (backoff.h). */
#include "config.h"

#include <limits.h>

#include "backoff.h"

/* splitmix64 (Steele, Lea, Flood 2014): one add and a mix per draw, any
 * seed gives a full-period sequence, and the state is one word. */
static uint64_t next_u64(struct ug_backoff *b)
{
	uint64_t z = (b->rng += UINT64_C(0x9e3779b97f4a7c15));

	z = (z ^ (z >> 30)) * UINT64_C(0xbf58476d1ce4e5b9);
	z = (z ^ (z >> 27)) * UINT64_C(0x94d049bb133111eb);
	return z ^ (z >> 31);
}

/* Uniform in [0, max]. max < 2^34 here, so the modulo bias is below
 * 2^-30: irrelevant for a retry delay, and it avoids 128-bit arithmetic
 * that 32-bit terminals lack. */
static uint64_t uniform(struct ug_backoff *b, uint64_t max)
{
	return next_u64(b) % (max + 1);
}

void ug_backoff_init(struct ug_backoff *b, unsigned base_ms, unsigned cap_ms, uint64_t seed)
{
	b->base_ms = base_ms;
	b->cap_ms = cap_ms;
	b->attempt = 0;
	b->rng = seed;
}

static uint64_t window(const struct ug_backoff *b)
{
	uint64_t w;

	/* base_ms < 2^32, so base << attempt fits in 64 bits while attempt
	 * < 32; past that the window is the cap anyway (when base is not 0) */
	if (b->base_ms == 0)
		return 0;
	if (b->attempt >= 32)
		return b->cap_ms;
	w = (uint64_t)b->base_ms << b->attempt;
	return w < b->cap_ms ? w : b->cap_ms;
}

unsigned ug_backoff_next(struct ug_backoff *b, unsigned retry_after_s)
{
	uint64_t d;

	if (retry_after_s == 0) {
		d = uniform(b, window(b));
	} else {
		uint64_t floor_ms = (uint64_t)retry_after_s * 1000u;  /* < 2^42 */

		d = floor_ms + uniform(b, floor_ms / 5);
		if (floor_ms < b->cap_ms && d > b->cap_ms)
			d = b->cap_ms;
	}
	if (b->attempt < UINT_MAX)
		b->attempt++;
	return d > UINT_MAX ? UINT_MAX : (unsigned)d;
}

void ug_backoff_reset(struct ug_backoff *b)
{
	b->attempt = 0;
}

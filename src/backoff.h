/* backoff.h - how long a terminal waits before its next try of a server.
 *
 * Exponential backoff with "full jitter" (AWS Architecture Blog,
 * "Exponential Backoff And Jitter"): the n-th delay is uniform in
 * [0, min(cap, base * 2^n)], so a fleet that failed together does not
 * come back together. A server that answered BUSY with a retry-after
 * (protocol.md, at most UG_PROTO_RETRY_MAX seconds) is waited out at
 * least that long, plus up to 20% so its waiting clients spread out.
 *
 * The random numbers come from a splitmix64 generator the caller seeds
 * (a terminal seeds from its id and the time, so two terminals differ and
 * one terminal differs from run to run); there is no global state, and a
 * given seed gives the same delays, which the tests rely on. Not
 * cryptographic and need not be. */
#ifndef UG_BACKOFF_H
#define UG_BACKOFF_H

#include <stdint.h>

/* Embedded in its user; all fields are the module's own. */
struct ug_backoff {
	unsigned base_ms;  /* window of the first delay */
	unsigned cap_ms;   /* largest window */
	unsigned attempt;  /* delays handed out since init/reset; saturates */
	uint64_t rng;      /* splitmix64 state */
};

/* Start a sequence of retries: attempt 0, windows base_ms, 2*base_ms, ...
 * up to cap_ms. base_ms 0 gives delays of 0 (unless a server asks for a
 * retry-after); cap_ms below base_ms makes every window cap_ms. Any seed
 * is valid, 0 included. */
void ug_backoff_init(struct ug_backoff *b, unsigned base_ms, unsigned cap_ms, uint64_t seed);

/* The next delay in milliseconds, and attempt + 1 (held at UINT_MAX).
 *
 * retry_after_s 0 (no BUSY): uniform in [0, min(cap_ms, base_ms *
 * 2^attempt)], attempt being its value before the call; the window
 * saturates at cap_ms however large attempt grows.
 *
 * retry_after_s > 0 (the server said BUSY, retry after that many
 * seconds): at least R = retry_after_s * 1000, plus a jitter uniform in
 * [0, R / 5]. When R is below cap_ms the result is at most cap_ms; when R
 * is at or above cap_ms it is not capped (the server's word beats our
 * cap). Results beyond UINT_MAX ms saturate there. */
unsigned ug_backoff_next(struct ug_backoff *b, unsigned retry_after_s);

/* Back to attempt 0 after a success, keeping base, cap and the generator
 * (its sequence goes on: a reset does not replay earlier delays). */
void ug_backoff_reset(struct ug_backoff *b);

#endif

/*  gt_jitter.h — jitter for repeated timers: a value spread by up to
    ± a fraction of it, drawn from a random source of the instance's own.

    gt_keepalive spreads each renewal interval with it (a third of the TTL,
    ± 10 %: GT_KEEPALIVE_TTL_FRACTION, GT_KEEPALIVE_JITTER), and so
    does gtctl keepalive.  Each instance is seeded from getrandom(2), so
    processes and keep-alives started in the same second draw different
    sequences and do not renew in lockstep (random () unseeded, or seeded
    with the time, would make them).  The draws are not for cryptography.

    Private to libgarbagetruck (not installed).  An instance is not thread
    safe: one per thread.  */
#ifndef GT_JITTER_H_INCLUDED
#define GT_JITTER_H_INCLUDED

#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct _gt_jitter_t gt_jitter_t;

//  A source seeded from getrandom(2) (should that fail: from the clock,
//  the process id and the instance's address).
gt_jitter_t *gt_jitter_new (void);

//  Destroy the source; nulls the pointer.
void gt_jitter_destroy (gt_jitter_t **self_p);

//  value spread by up to ± fraction of it (fraction 0 .. 1): uniform over
//  the integers from value - spread to value + spread, spread = value *
//  fraction rounded down.  value itself when spread is 0 (value <= 0,
//  fraction 0, or too small a value).  value + spread must fit in int64_t.
int64_t gt_jitter_spread (gt_jitter_t *self, int64_t value, double fraction);

//  A share of whole (whole * share, rounded to the nearest integer) spread
//  by up to ± jitter of it, as gt_jitter_spread: a keep-alive's renewal
//  interval is gt_jitter_share (jitter, ttl_ms, GT_KEEPALIVE_TTL_FRACTION,
//  GT_KEEPALIVE_JITTER).  share and jitter 0 .. 1; whole <= 2^53.
int64_t gt_jitter_share (gt_jitter_t *self, uint64_t whole, double share, double jitter);

#ifdef __cplusplus
}
#endif
#endif

/*  gt_pacer.h — a token bucket: at most rate things per second, in bursts
    of at most burst.  Pure state: the caller passes the clock (ms), so a
    test can drive it with a fake one.

    The broker paces the expiries that fell due while it was down
    (GC_RECOVERY_EXPIRY_RATE): after a start, each loop turn runs at most
    as many due timers as the pacer has tokens, so a large backlog is spread
    over many short turns and requests are served between them.  */
#ifndef GT_PACER_H_INCLUDED
#define GT_PACER_H_INCLUDED

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct gt_pacer_t gt_pacer_t;

//  rate >= 1 per second; burst >= 1.  Starts full (burst tokens) at now_ms.
gt_pacer_t *gt_pacer_new (uint64_t rate, uint64_t burst, int64_t now_ms);
void gt_pacer_destroy (gt_pacer_t **self_p);

//  Whole tokens available at now_ms (the clock never goes back; a smaller
//  now_ms is taken as the last one).
uint64_t gt_pacer_available (gt_pacer_t *self, int64_t now_ms);
//  Use count tokens (at most what gt_pacer_available said).
void gt_pacer_spend (gt_pacer_t *self, uint64_t count);
//  Ms from now_ms until one token is available (0: now).
int64_t gt_pacer_wait (gt_pacer_t *self, int64_t now_ms);

#ifdef __cplusplus
}
#endif
#endif

/*  gt_admission.h — what the broker may do in this turn, given a store that
    can be down or slow (PostgreSQL): asked by the loop before it changes
    anything.

    * Refusal: while the store cannot write (gt_store_healthy false), a
      request that would change state (CREATE, RENEW, RELEASE, RENEW_BATCH,
      RETRY) is answered UNAVAILABLE before it is applied, at once; reads
      keep being served from memory.
    * Timers: while the store cannot write, no timer runs (an expiry would
      only be undone when its batch fails); they run when it is back.  In
      the catch-up after a start (until a turn finds nothing due), due
      timers run at most GC_RECOVERY_EXPIRY_RATE per second, in bursts of
      at most a tenth of that (and never more than GT_BROKER_TIMERS_PER_TURN
      per turn), so a backlog of leases that fell due while the broker was
      down cannot starve requests.
    * GC_DB_GROUP_COMMIT=0 (comparison only): one request per loop turn, so
      each mutation is its own batch and transaction.

    Times are monotonic ms passed in (tests use a fake clock).  The store
    is borrowed: the broker says when it has none any more.  */
#ifndef GT_ADMISSION_H_INCLUDED
#define GT_ADMISSION_H_INCLUDED

#include <czmq.h>
#include "gt_msg.h"
#include "gt_config.h"
#include "gt_store.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct gt_admission_t gt_admission_t;

//  For the store (borrowed; NULL: none) and the settings (copied).
gt_admission_t *gt_admission_new (const gt_config_t *config, gt_store_t *store);
void gt_admission_destroy (gt_admission_t **self_p);
//  The store changed (NULL: handed over, or never opened).
void gt_admission_set_store (gt_admission_t *self, gt_store_t *store);

//  True if a request cmd must be refused now (message in err).
bool gt_admission_refuses (gt_admission_t *self, gt_cmd_t cmd, char *err, size_t err_size);
//  Requests to drain in one turn.
size_t gt_admission_requests_per_turn (gt_admission_t *self);
//  Timers that may run in this turn (0: none), at monotonic ms now.
size_t gt_admission_timer_budget (gt_admission_t *self, int64_t now);
//  ran timers ran; due: some are still due.  Ends the catch-up when none is.
void gt_admission_timers_ran (gt_admission_t *self, size_t ran, bool due);
//  The poll timeout for timers (ms, -1 = none) given the wheel's.
int64_t gt_admission_timer_timeout (gt_admission_t *self, int64_t wheel_timeout, int64_t now);
//  True while the catch-up after the start paces the timers.
bool gt_admission_catching_up (gt_admission_t *self);

#ifdef __cplusplus
}
#endif
#endif

/*  gt_broker_store.h — the broker's side of a store that can be down or
    slow (PostgreSQL): what the loop asks before it changes anything.

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

    Runs in the broker actor's thread on its private state: include after
    gt_broker_internal.h (without it, only the selftest is declared).  */
#ifndef GT_BROKER_STORE_H_INCLUDED
#define GT_BROKER_STORE_H_INCLUDED

#include "gt_pacer.h"

void gt_broker_store_test (bool verbose);

#ifdef GT_BROKER_INTERNAL_H_INCLUDED
//  True if the request must be refused now (message in err).
bool gt_broker_store_refuses (s_broker_t *self, gt_cmd_t cmd, char *err, size_t err_size);
//  Requests to drain in one turn.
size_t gt_broker_requests_per_turn (s_broker_t *self);
//  Timers that may run in this turn (0: none), at monotonic ms now.
size_t gt_broker_timer_budget (s_broker_t *self, int64_t now);
//  ran timers ran; due: some are still due.  Ends the catch-up when none is.
void gt_broker_timers_ran (s_broker_t *self, size_t ran, bool due);
//  The poll timeout for timers (ms, -1 = none) given the wheel's.
int64_t gt_broker_timer_timeout (s_broker_t *self, int64_t wheel_timeout, int64_t now);
#endif

#endif

/*  gt_wheel.h — hierarchical timer wheel (Varghese & Lauck, scheme 7).

    Slot width: 1 ms (one tick) at level 0.  Five levels of 64 slots each
    (6 bits per level):
        level 0: 1 ms slots,            covers 64 ms
        level 1: 64 ms slots,           covers 4.1 s
        level 2: 4.096 s slots,         covers 4.4 min
        level 3: 262.1 s slots,         covers 4.7 h
        level 4: 16,777 s slots,        covers 12.4 days
    Timers in upper levels cascade down as the wheel turns, so every timer
    ends in a level-0 slot and fires at tick granularity.

    Range: times up to GT_WHEEL_TIME_MAX (2^56 - 1 ms).

    Rounding: deadlines are whole milliseconds; a timer armed for deadline D
    fires on the first advance with now >= D, never before.  Lateness is
    bounded by how often the owner calls gt_wheel_advance (see
    gt_wheel_timeout) plus its processing time.

    Past the top level (deadline more than ~12.4 days ahead): the timer is
    parked in the farthest top-level slot and re-inserted when that slot
    cascades, with its true deadline; it still never fires early.

    The node (gt_timer_t) lives inside the owner's struct (intrusive): arm and
    cancel are O(1) and allocate nothing.  Time is the caller's monotonic
    clock in ms (zclock_mono), passed in; the wheel never reads a clock, so
    tests drive it with a fake clock.

    Firing is two-phase: gt_wheel_advance moves every due timer to an
    internal expired list, then gt_wheel_pop returns them one at a time
    (earliest deadline first within the batch is NOT guaranteed; all popped
    timers are due).  A timer on the expired list may still be cancelled
    (or re-armed) by the code handling an earlier one.  */
#ifndef GT_WHEEL_H_INCLUDED
#define GT_WHEEL_H_INCLUDED

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

//  The largest time the wheel holds: 2^56 - 1 ms (2.28 million years), so
//  that a deadline and the node's place share one word (a node is 24
//  bytes; a million leases each hold one).  A later deadline is armed as
//  GT_WHEEL_TIME_MAX, a later now is taken as it.
#define GT_WHEEL_TIME_MAX   ((UINT64_C (1) << 56) - 1)

typedef struct gt_timer_t gt_timer_t;
struct gt_timer_t {
    gt_timer_t *next;               //  next node in slot / expired list
    gt_timer_t *prev;               //  previous node (doubly linked: O(1) cancel)
    uint64_t deadline : 56;         //  monotonic ms at which it is due (<= GT_WHEEL_TIME_MAX)
    int64_t where : 8;              //  internal: -1 idle, else slot/list tag
};

//  A timer's deadline as a plain uint64_t: read it through this (GCC does
//  arithmetic on the 56-bit field itself in 56 bits, so deadline + 1 could
//  wrap to 0 at the top of the range).
static inline uint64_t
gt_timer_deadline (const gt_timer_t *timer)
{
    return (uint64_t) timer->deadline;
}

typedef struct gt_wheel_t gt_wheel_t;

//  Create a wheel whose current time is now_ms.
gt_wheel_t *gt_wheel_new (uint64_t now_ms);
//  Destroy; the timers still armed are simply forgotten (owner frees them).
void gt_wheel_destroy (gt_wheel_t **self_p);

//  Initialise a node as idle (not armed).  Must be called once before use.
void gt_timer_init (gt_timer_t *timer);
//  True if armed in the wheel or waiting on the expired list.
bool gt_timer_armed (const gt_timer_t *timer);

//  Arm (or re-arm) a timer for an absolute deadline in ms (past
//  GT_WHEEL_TIME_MAX: that).  A deadline at or before the wheel's current
//  time goes straight to the expired list.
void gt_wheel_arm (gt_wheel_t *self, gt_timer_t *timer, uint64_t deadline);
//  Cancel a timer wherever it is; no-op if idle.
void gt_wheel_cancel (gt_wheel_t *self, gt_timer_t *timer);

//  Advance the wheel to now_ms, moving every timer with deadline <= now_ms
//  to the expired list.  Returns how many timers are on the expired list.
size_t gt_wheel_advance (gt_wheel_t *self, uint64_t now_ms);
//  Pop one timer from the expired list (it becomes idle), or NULL.
gt_timer_t *gt_wheel_pop (gt_wheel_t *self);

//  Milliseconds from now_ms until the wheel next needs gt_wheel_advance
//  (0 if timers are already due or expired ones wait to be popped), or -1
//  if the wheel is empty.  May be earlier than the next deadline (a cascade
//  point), never later.
int64_t gt_wheel_timeout (gt_wheel_t *self, uint64_t now_ms);

//  Number of timers armed or expired-but-not-popped.
size_t gt_wheel_size (gt_wheel_t *self);

#ifdef __cplusplus
}
#endif
#endif

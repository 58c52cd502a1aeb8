/*  gt_wheel.c — hierarchical timer wheel; the contract is in gt_wheel.h.

    Placement: a timer with deadline D > now goes to level L = (highest bit
    in which D and now differ) / 6, slot (D >> 6L) & 63.  So an occupied
    level-L slot always lies strictly ahead of now's own level-L digit, and
    its timers share now's digits above L.  The slot needs attention exactly
    when now reaches D with its low 6L bits cleared (its cascade point): its
    timers are then placed again relative to the new now, landing on a lower
    level or, at level 0, on the expired list.  No timer moves early.

    Timers differing from now above bit 29 (more than one top-level turn
    away) are parked in level-4 slot 0, which placement never uses otherwise
    (a level-4 digit strictly ahead of now's is >= 1).  The parked slot is
    revisited at the 2^30 ms boundary of the earliest parked deadline, so a
    timer a year away costs a few cascades, not one per 12.4 days.

    Advancing jumps from cascade point to cascade point found with the
    per-level occupancy bitmaps, so idle time costs nothing.  */

#include "gt_wheel.h"
#include "gt_wheel_private.h"
#include <assert.h>
#include <stdlib.h>

_Static_assert (sizeof (gt_timer_t) == 24, "a timer node must stay 24 bytes");

//  A time the wheel can hold (gt_wheel.h: GT_WHEEL_TIME_MAX)
static inline uint64_t
s_clamp (uint64_t ms)
{
    return ms > GT_WHEEL_TIME_MAX? GT_WHEEL_TIME_MAX: ms;
}

#define S_BITS      GT_WHEEL_LEVEL_BITS         //  bits per level
#define S_SLOTS     (1 << S_BITS)               //  slots per level
#define S_LEVELS    GT_WHEEL_LEVELS             //  levels
#define S_TOP       (S_LEVELS - 1)              //  top level
#define S_SPAN_BITS (S_BITS * S_LEVELS)         //  bits the levels cover (30)
#define S_PARKED_SLOT 0                         //  top-level slot used for parking

//  Values of gt_timer_t.where besides the level numbers 0..S_TOP
#define S_IDLE      -1                          //  not armed
#define S_PARKED    S_LEVELS                    //  in the parked slot
#define S_EXPIRED   (S_LEVELS + 1)              //  on the expired list

struct gt_wheel_t {
    uint64_t now;                               //  wheel time: every deadline <= now is expired
    uint64_t occupied [S_LEVELS];               //  per level, bit s set when slot s is non-empty
    gt_timer_t slots [S_LEVELS][S_SLOTS];       //  circular list sentinel per slot
    gt_timer_t expired;                         //  sentinel of the due-but-not-popped list
    size_t expired_count;                       //  timers on the expired list
    uint64_t parked_min;                        //  lower bound of parked deadlines (UINT64_MAX: none)
    size_t size;                                //  timers armed or expired-but-not-popped
    size_t drains;                              //  slots drained so far (gt_wheel_private.h)
};

static void
s_list_init (gt_timer_t *sentinel)
{
    sentinel->next = sentinel->prev = sentinel;
}

static bool
s_list_empty (const gt_timer_t *sentinel)
{
    return sentinel->next == sentinel;
}

static void
s_list_append (gt_timer_t *sentinel, gt_timer_t *timer)
{
    timer->prev = sentinel->prev;
    timer->next = sentinel;
    sentinel->prev->next = timer;
    sentinel->prev = timer;
}

static void
s_unlink (gt_timer_t *timer)
{
    timer->prev->next = timer->next;
    timer->next->prev = timer->prev;
    timer->next = timer->prev = NULL;
}

gt_wheel_t *
gt_wheel_new (uint64_t now_ms)
{
    gt_wheel_t *self = (gt_wheel_t *) calloc (1, sizeof (gt_wheel_t));
    assert (self);
    self->now = s_clamp (now_ms);
    self->parked_min = UINT64_MAX;
    for (int level = 0; level < S_LEVELS; level++)
        for (int slot = 0; slot < S_SLOTS; slot++)
            s_list_init (&self->slots [level][slot]);
    s_list_init (&self->expired);
    return self;
}

void
gt_wheel_destroy (gt_wheel_t **self_p)
{
    assert (self_p);
    free (*self_p);
    *self_p = NULL;
}

void
gt_timer_init (gt_timer_t *timer)
{
    assert (timer);
    timer->next = timer->prev = NULL;
    timer->deadline = 0;
    timer->where = S_IDLE;
}

bool
gt_timer_armed (const gt_timer_t *timer)
{
    assert (timer);
    return timer->where != S_IDLE;
}

//  Put an unlinked timer where its deadline says, relative to self->now.
static void
s_place (gt_wheel_t *self, gt_timer_t *timer)
{
    uint64_t deadline = timer->deadline;
    if (deadline <= self->now) {
        timer->where = S_EXPIRED;
        s_list_append (&self->expired, timer);
        self->expired_count++;
        return;
    }
    int level = (63 - __builtin_clzll (deadline ^ self->now)) / S_BITS;
    int slot;
    if (level >= S_LEVELS) {
        level = S_TOP;
        slot = S_PARKED_SLOT;
        timer->where = S_PARKED;
        if (deadline < self->parked_min)
            self->parked_min = deadline;
    }
    else {
        slot = (deadline >> (level * S_BITS)) & (S_SLOTS - 1);
        timer->where = (int8_t) level;
    }
    s_list_append (&self->slots [level][slot], timer);
    self->occupied [level] |= (uint64_t) 1 << slot;
}

//  Take an armed timer out of its slot or the expired list.
static void
s_remove (gt_wheel_t *self, gt_timer_t *timer)
{
    s_unlink (timer);
    if (timer->where == S_EXPIRED)
        self->expired_count--;
    else {
        int level = timer->where == S_PARKED? S_TOP: timer->where;
        int slot = timer->where == S_PARKED? S_PARKED_SLOT
                 : (int) ((timer->deadline >> (level * S_BITS)) & (S_SLOTS - 1));
        if (s_list_empty (&self->slots [level][slot])) {
            self->occupied [level] &= ~((uint64_t) 1 << slot);
            if (timer->where == S_PARKED)
                self->parked_min = UINT64_MAX;
        }
    }
    timer->where = S_IDLE;
}

//  Find the next cascade point after self->now: the lowest level with an
//  occupied slot ahead of now gives it; otherwise the parked slot, if any.
//  Every armed timer's deadline is at or after it.
static bool
s_next_event (gt_wheel_t *self, uint64_t *when_p, int *level_p, int *slot_p)
{
    for (int level = 0; level < S_LEVELS; level++) {
        int shift = level * S_BITS;
        int digit = (int) ((self->now >> shift) & (S_SLOTS - 1));
        uint64_t ahead = digit == S_SLOTS - 1? 0
                       : self->occupied [level] & (~(uint64_t) 0 << (digit + 1));
        if (ahead) {
            int slot = __builtin_ctzll (ahead);
            uint64_t turn = ((uint64_t) 1 << (shift + S_BITS)) - 1;
            *when_p = (self->now & ~turn) | ((uint64_t) slot << shift);
            *level_p = level;
            *slot_p = slot;
            return true;
        }
    }
    if (self->occupied [S_TOP] & ((uint64_t) 1 << S_PARKED_SLOT)) {
        //  Parked timers lie past now's 2^30 block, so that can't overflow
        uint64_t block = ((uint64_t) 1 << S_SPAN_BITS) - 1;
        uint64_t next_block = (self->now | block) + 1;
        uint64_t earliest = self->parked_min & ~block;
        *when_p = earliest > next_block? earliest: next_block;
        *level_p = S_TOP;
        *slot_p = S_PARKED_SLOT;
        return true;
    }
    return false;
}

//  At a slot's cascade point: place each of its timers again.
static void
s_drain (gt_wheel_t *self, int level, int slot)
{
    gt_timer_t *sentinel = &self->slots [level][slot];
    gt_timer_t batch;
    batch.next = sentinel->next;
    batch.prev = sentinel->prev;
    batch.next->prev = &batch;
    batch.prev->next = &batch;
    s_list_init (sentinel);
    self->occupied [level] &= ~((uint64_t) 1 << slot);
    if (level == S_TOP && slot == S_PARKED_SLOT)
        self->parked_min = UINT64_MAX;     //  re-parking recomputes it exactly
    self->drains++;
    while (!s_list_empty (&batch)) {
        gt_timer_t *timer = batch.next;
        s_unlink (timer);
        s_place (self, timer);
    }
}

void
gt_wheel_arm (gt_wheel_t *self, gt_timer_t *timer, uint64_t deadline)
{
    assert (self);
    assert (timer);
    assert (timer->where >= S_IDLE && timer->where <= S_EXPIRED);
    if (timer->where == S_IDLE)
        self->size++;
    else
        s_remove (self, timer);
    timer->deadline = s_clamp (deadline);
    s_place (self, timer);
}

void
gt_wheel_cancel (gt_wheel_t *self, gt_timer_t *timer)
{
    assert (self);
    assert (timer);
    if (timer->where == S_IDLE)
        return;
    s_remove (self, timer);
    self->size--;
}

size_t
gt_wheel_advance (gt_wheel_t *self, uint64_t now_ms)
{
    assert (self);
    now_ms = s_clamp (now_ms);
    uint64_t when;
    int level, slot;
    while (s_next_event (self, &when, &level, &slot) && when <= now_ms) {
        self->now = when;
        s_drain (self, level, slot);
    }
    if (now_ms > self->now)
        self->now = now_ms;             //  a clock going backwards changes nothing
    return self->expired_count;
}

gt_timer_t *
gt_wheel_pop (gt_wheel_t *self)
{
    assert (self);
    if (s_list_empty (&self->expired))
        return NULL;
    gt_timer_t *timer = self->expired.next;
    s_remove (self, timer);
    self->size--;
    return timer;
}

int64_t
gt_wheel_timeout (gt_wheel_t *self, uint64_t now_ms)
{
    assert (self);
    now_ms = s_clamp (now_ms);
    if (self->expired_count > 0)
        return 0;
    uint64_t when;
    int level, slot;
    if (!s_next_event (self, &when, &level, &slot))
        return -1;
    if (when <= now_ms)
        return 0;
    uint64_t wait = when - now_ms;
    return wait > (uint64_t) INT64_MAX? INT64_MAX: (int64_t) wait;
}

size_t
gt_wheel_size (gt_wheel_t *self)
{
    assert (self);
    return self->size;
}

size_t
gt_wheel_drains (gt_wheel_t *self)
{
    assert (self);
    return self->drains;
}

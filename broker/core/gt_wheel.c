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
#include <assert.h>
#include <stdlib.h>

#define S_BITS      6                           //  bits per level
#define S_SLOTS     (1 << S_BITS)               //  slots per level
#define S_LEVELS    5                           //  levels
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
    size_t drains;                              //  slots drained so far (selftest proves gaps are skipped)
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
    self->now = now_ms;
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
    timer->deadline = deadline;
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


//  --------------------------------------------------------------------------
//  Selftest.  Time is a FAKE CLOCK: a plain uint64_t the test moves by hand.

#include <inttypes.h>
#include <stdio.h>
#include <time.h>
#include <stddef.h>

typedef struct {
    gt_timer_t node;                //  the wheel's intrusive node
    uint64_t deadline;              //  reference: deadline while armed
    bool armed;                     //  reference: armed or expired-not-popped
} s_item_t;

#define S_ITEM(timer) ((s_item_t *) ((char *) (timer) - offsetof (s_item_t, node)))

//  splitmix64: deterministic on every platform, unlike rand ()
static uint64_t
s_rand (uint64_t *state)
{
    uint64_t z = (*state += 0x9E3779B97F4A7C15ULL);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
    return z ^ (z >> 31);
}

static double
s_wall_ms (void)
{
    struct timespec ts;
    clock_gettime (CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

//  Arm one timer at start for deadline and check it fires at exactly the
//  deadline (or at once if due): first via one jump to deadline - 1, then
//  by following gt_wheel_timeout the way an event loop would.
static void
s_check_on_time (uint64_t start, uint64_t deadline)
{
    gt_timer_t timer;
    gt_timer_init (&timer);
    gt_wheel_t *wheel = gt_wheel_new (start);
    gt_wheel_arm (wheel, &timer, deadline);
    assert (gt_wheel_size (wheel) == 1);
    if (deadline > start) {
        assert (gt_wheel_advance (wheel, deadline - 1) == 0);
        assert (gt_wheel_pop (wheel) == NULL);
        assert (gt_timer_armed (&timer));
        assert (gt_wheel_timeout (wheel, deadline - 1) == 1);
    }
    assert (gt_wheel_advance (wheel, deadline) == 1);
    assert (gt_wheel_pop (wheel) == &timer);
    assert (!gt_timer_armed (&timer));
    assert (gt_wheel_size (wheel) == 0);
    assert (gt_wheel_timeout (wheel, deadline) == -1);
    gt_wheel_destroy (&wheel);

    wheel = gt_wheel_new (start);
    gt_wheel_arm (wheel, &timer, deadline);
    uint64_t now = start;
    for (int steps = 0; gt_wheel_advance (wheel, now) == 0; steps++) {
        assert (now < deadline);            //  not late
        int64_t wait = gt_wheel_timeout (wheel, now);
        assert (wait > 0 && (uint64_t) wait <= deadline - now);
        assert (steps < 16);                //  a cascade or two per level
        now += (uint64_t) wait;
    }
    assert (now == (deadline > start? deadline: start));     //  not early
    assert (gt_wheel_pop (wheel) == &timer);
    gt_wheel_destroy (&wheel);
    assert (wheel == NULL);
}

static void
s_test_boundaries (void)
{
    const uint64_t day = 86400000;
    const uint64_t starts [] = { 0, 1, 63, 1000, 4095, 123456789,
        (1ULL << 30) - 1, (1ULL << 40) + 17, UINT64_MAX / 2 - 5 * day };
    const uint64_t offsets [] = { 1, 2, 63, 64, 65, 4095, 4096, 4097,
        262143, 262144, 262145, 16777215, 16777216, 16777217,
        (1ULL << 30) - 1, 1ULL << 30, (1ULL << 30) + 1, 30 * day, 400 * day };
    for (size_t s = 0; s < sizeof starts / sizeof *starts; s++) {
        uint64_t start = starts [s];
        s_check_on_time (start, 0);             //  deadline 0: due at once
        s_check_on_time (start, start);         //  deadline == now
        if (start > 0)
            s_check_on_time (start, start - 1); //  deadline in the past
        s_check_on_time (start, UINT64_MAX / 2);
        for (size_t o = 0; o < sizeof offsets / sizeof *offsets; o++)
            s_check_on_time (start, start + offsets [o]);
        //  Absolute level boundaries above start, and +-1 of each
        for (int bits = 6; bits <= 36; bits += 6) {
            uint64_t edge = ((start >> bits) + 1) << bits;
            for (int delta = -1; delta <= 1; delta++)
                if (edge + delta > start)
                    s_check_on_time (start, edge + delta);
        }
    }
    s_check_on_time (UINT64_MAX - 70000, UINT64_MAX);   //  no overflow at the top
    s_check_on_time (UINT64_MAX - (1ULL << 31), UINT64_MAX - 1);

    //  Many timers with one deadline, and a few already due
    enum { COUNT = 1000 };
    gt_timer_t *timers = (gt_timer_t *) calloc (COUNT, sizeof (gt_timer_t));
    assert (timers);
    gt_wheel_t *wheel = gt_wheel_new (1000);
    for (int index = 0; index < COUNT; index++) {
        gt_timer_init (&timers [index]);
        gt_wheel_arm (wheel, &timers [index], index < 10? 999: 71000);
    }
    assert (gt_wheel_size (wheel) == COUNT);
    assert (gt_wheel_timeout (wheel, 1000) == 0);
    assert (gt_wheel_advance (wheel, 1000) == 10);
    for (int index = 0; index < 10; index++)
        assert (gt_wheel_pop (wheel) != NULL);
    assert (gt_wheel_advance (wheel, 70999) == 0);
    assert (gt_wheel_advance (wheel, 71000) == COUNT - 10);
    size_t popped = 0;
    gt_timer_t *timer;
    while ((timer = gt_wheel_pop (wheel))) {
        assert (timer->deadline == 71000);
        popped++;
    }
    assert (popped == COUNT - 10);
    assert (gt_wheel_size (wheel) == 0);

    //  Far timers, advanced in one-day jumps: none fires early
    const uint64_t far [] = { 13 * day, 30 * day, 30 * day + 1, 61 * day };
    for (int index = 0; index < 4; index++)
        gt_wheel_arm (wheel, &timers [index], 71000 + far [index]);
    gt_wheel_cancel (wheel, &timers [2]);
    uint64_t now = 71000;
    while (gt_wheel_size (wheel) > 0) {
        now += day;
        gt_wheel_advance (wheel, now);
        while ((timer = gt_wheel_pop (wheel))) {
            assert (timer->deadline <= now && timer->deadline > now - day);
            assert (timer != &timers [2]);
        }
    }
    //  And one at UINT64_MAX / 2, in jumps of 2^57 ms
    gt_wheel_arm (wheel, &timers [0], UINT64_MAX / 2);
    for (now = 0; now < UINT64_MAX / 2 - (1ULL << 57); now += 1ULL << 57)
        assert (gt_wheel_advance (wheel, now) == 0);
    assert (gt_wheel_advance (wheel, UINT64_MAX / 2 - 1) == 0);
    assert (gt_wheel_advance (wheel, UINT64_MAX / 2) == 1);
    assert (gt_wheel_pop (wheel) == &timers [0]);
    gt_wheel_destroy (&wheel);
    free (timers);
}

static void
s_test_cancel_and_timeout (void)
{
    gt_wheel_t *wheel = gt_wheel_new (5000);
    gt_timer_t timers [4];
    for (int index = 0; index < 4; index++)
        gt_timer_init (&timers [index]);
    assert (gt_wheel_timeout (wheel, 5000) == -1);

    //  Cancelling an idle timer is a no-op
    gt_wheel_cancel (wheel, &timers [0]);
    assert (!gt_timer_armed (&timers [0]));
    assert (gt_wheel_size (wheel) == 0);

    //  Cancel an armed timer: it never fires
    gt_wheel_arm (wheel, &timers [0], 5100);
    gt_wheel_arm (wheel, &timers [1], 9000);
    int64_t wait = gt_wheel_timeout (wheel, 5000);
    assert (wait > 0 && wait <= 100);
    gt_wheel_cancel (wheel, &timers [0]);
    assert (!gt_timer_armed (&timers [0]));
    assert (gt_wheel_size (wheel) == 1);
    wait = gt_wheel_timeout (wheel, 5000);
    assert (wait > 0 && wait <= 4000);
    assert (gt_wheel_advance (wheel, 8999) == 0);
    assert (gt_wheel_timeout (wheel, 8999) == 1);
    gt_wheel_cancel (wheel, &timers [1]);
    assert (gt_wheel_advance (wheel, 10000) == 0);
    assert (gt_wheel_timeout (wheel, 10000) == -1);

    //  Cancel and re-arm while the batch is being popped
    for (int index = 0; index < 4; index++)
        gt_wheel_arm (wheel, &timers [index], 10500);
    assert (gt_wheel_advance (wheel, 10500) == 4);
    assert (gt_wheel_timeout (wheel, 10500) == 0);
    gt_timer_t *first = gt_wheel_pop (wheel);
    assert (first && !gt_timer_armed (first));
    size_t position = (size_t) (first - timers);
    gt_timer_t *cancelled = &timers [(position + 1) % 4];
    gt_timer_t *rearmed = &timers [(position + 2) % 4];
    gt_wheel_cancel (wheel, cancelled);
    gt_wheel_arm (wheel, rearmed, 10510);
    assert (gt_timer_armed (rearmed) && !gt_timer_armed (cancelled));
    assert (gt_wheel_size (wheel) == 2);
    assert (gt_wheel_pop (wheel) == &timers [(position + 3) % 4]);
    assert (gt_wheel_pop (wheel) == NULL);
    wait = gt_wheel_timeout (wheel, 10500);
    assert (wait > 0 && wait <= 10);
    assert (gt_wheel_advance (wheel, 10509) == 0);
    assert (gt_wheel_advance (wheel, 10510) == 1);
    //  Re-arming an expired timer into the past keeps it expired
    gt_wheel_arm (wheel, rearmed, 3);
    assert (gt_wheel_size (wheel) == 1);
    assert (gt_wheel_pop (wheel) == rearmed);
    assert (gt_wheel_size (wheel) == 0);

    //  An idle gap of ten minutes is crossed by a handful of slot drains
    gt_wheel_arm (wheel, &timers [0], 10510 + 600000);
    size_t drains = wheel->drains;
    assert (gt_wheel_advance (wheel, 10510 + 600000) == 1);
    assert (wheel->drains - drains <= S_LEVELS);
    assert (gt_wheel_pop (wheel) == &timers [0]);
    gt_wheel_destroy (&wheel);
}

//  A random distance in ms: often small, sometimes on a level boundary,
//  sometimes across several levels or past the top one.
static uint64_t
s_random_span (uint64_t *rng, bool mostly_small)
{
    uint64_t r = s_rand (rng);
    unsigned pick = (unsigned) (r % 100);
    r >>= 8;
    if (mostly_small && pick < 50)
        return r % 8;
    if (pick < 5)
        return 0;
    if (pick < 40)
        return r % 64;
    if (pick < 65)
        return r % 5000;
    if (pick < 85)
        return r % 300000;
    if (pick < 93) {
        int bits = S_BITS * (1 + (int) (r % S_LEVELS));
        return ((uint64_t) 1 << bits) + (r >> 8) % 3 - 1;
    }
    return r % (1ULL << 36);                //  up to two years
}

//  Random operations against a reference (the items' own deadline and armed
//  fields, scanned in full), with the fake clock moved by random steps.
static void
s_test_random (bool verbose)
{
    uint64_t seed = 20240611;
    const char *env = getenv ("GT_WHEEL_SEED");
    if (env)
        seed = strtoull (env, NULL, 0);
    printf (" * gt_wheel random: seed=%" PRIu64 " (set GT_WHEEL_SEED to change)\n", seed);
    uint64_t rng = seed;
    enum { POOL = 1000, OPS = 100000 };
    s_item_t *items = (s_item_t *) calloc (POOL, sizeof (s_item_t));
    assert (items);
    for (int index = 0; index < POOL; index++)
        gt_timer_init (&items [index].node);
    uint64_t now = 1000000 + s_rand (&rng) % 1000000;
    gt_wheel_t *wheel = gt_wheel_new (now);
    size_t reference_size = 0, fired = 0;
    double started = s_wall_ms ();

    for (int op = 0; op < OPS; op++) {
        s_item_t *item = &items [s_rand (&rng) % POOL];
        unsigned choice = (unsigned) (s_rand (&rng) % 100);
        if (choice < 45) {                  //  arm or re-arm
            uint64_t deadline = now + s_random_span (&rng, false);
            if (choice < 4)
                deadline = choice == 0? 0: now - s_rand (&rng) % 100;
            if (!item->armed)
                reference_size++;
            item->armed = true;
            item->deadline = deadline;
            gt_wheel_arm (wheel, &item->node, deadline);
            int64_t wait = gt_wheel_timeout (wheel, now);
            assert (wait >= 0);
            assert (deadline > now? (uint64_t) wait <= deadline - now: wait == 0);
        }
        else
        if (choice < 60) {                  //  cancel
            if (item->armed)
                reference_size--;
            item->armed = false;
            gt_wheel_cancel (wheel, &item->node);
        }
        else {                              //  advance, pop, compare
            now += s_random_span (&rng, true);
            size_t expired = gt_wheel_advance (wheel, now);
            size_t popped = 0;
            gt_timer_t *timer;
            while ((timer = gt_wheel_pop (wheel))) {
                s_item_t *due = S_ITEM (timer);
                assert (due->armed && due->deadline <= now);
                assert (!gt_timer_armed (timer));
                due->armed = false;
                popped++;
            }
            assert (popped == expired);
            reference_size -= popped;
            fired += popped;
            uint64_t earliest = UINT64_MAX;
            for (int index = 0; index < POOL; index++) {
                assert (gt_timer_armed (&items [index].node) == items [index].armed);
                if (items [index].armed) {
                    assert (items [index].deadline > now);  //  none left due
                    if (items [index].deadline < earliest)
                        earliest = items [index].deadline;
                }
            }
            int64_t wait = gt_wheel_timeout (wheel, now);
            if (earliest == UINT64_MAX)
                assert (wait == -1);
            else
                assert (wait > 0 && (uint64_t) wait <= earliest - now);
        }
        assert (gt_wheel_size (wheel) == reference_size);
    }
    assert (fired > OPS / 10);              //  the mix really fires timers
    if (verbose)
        printf (" * gt_wheel random: %d ops, %zu fired, %.0f ms\n",
                OPS, fired, s_wall_ms () - started);
    gt_wheel_destroy (&wheel);
    free (items);
}

//  Throughput sanity: 100,000 timers over an hour all fire.  The time is
//  only printed (verbose); performance is measured in bench/, not here.
static void
s_test_throughput (bool verbose)
{
    enum { COUNT = 100000 };
    gt_timer_t *timers = (gt_timer_t *) calloc (COUNT, sizeof (gt_timer_t));
    assert (timers);
    uint64_t rng = 7, now = 42;
    double started = s_wall_ms ();
    gt_wheel_t *wheel = gt_wheel_new (now);
    for (int index = 0; index < COUNT; index++) {
        gt_timer_init (&timers [index]);
        gt_wheel_arm (wheel, &timers [index], now + 1 + s_rand (&rng) % 3600000);
    }
    size_t popped = 0;
    while (gt_wheel_size (wheel) > 0) {
        now += 1000;
        gt_wheel_advance (wheel, now);
        gt_timer_t *timer;
        while ((timer = gt_wheel_pop (wheel))) {
            assert (timer->deadline <= now && timer->deadline > now - 1000);
            popped++;
        }
    }
    assert (popped == COUNT);
    if (verbose)
        printf (" * gt_wheel throughput: %d timers armed and fired in %.0f ms\n",
                COUNT, s_wall_ms () - started);
    gt_wheel_destroy (&wheel);
    free (timers);
}

void
gt_wheel_test (bool verbose)
{
    printf (" * gt_wheel: ");
    s_test_boundaries ();
    s_test_cancel_and_timeout ();
    printf ("OK\n");
    s_test_random (verbose);
    s_test_throughput (verbose);
}

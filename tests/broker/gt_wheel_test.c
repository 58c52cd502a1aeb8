/*  gt_wheel_test.c — selftest of gt_wheel.  Time is a FAKE CLOCK: a plain
    uint64_t the test moves by hand.

    Beyond gt_wheel.h it reads gt_wheel_private.h (not installed): the
    wheel's geometry, to aim at level boundaries, and how many slots the
    wheel drained, to prove that an idle gap is crossed in a few steps.  */
#include <czmq.h>
#include <inttypes.h>
#include <time.h>
#include "gt_wheel.h"
#include "gt_wheel_private.h"
#include "gt_broker_selftest.h"

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
        (1ULL << 30) - 1, (1ULL << 40) + 17, GT_WHEEL_TIME_MAX / 2 - 5 * day };
    const uint64_t offsets [] = { 1, 2, 63, 64, 65, 4095, 4096, 4097,
        262143, 262144, 262145, 16777215, 16777216, 16777217,
        (1ULL << 30) - 1, 1ULL << 30, (1ULL << 30) + 1, 30 * day, 400 * day };
    for (size_t s = 0; s < sizeof starts / sizeof *starts; s++) {
        uint64_t start = starts [s];
        s_check_on_time (start, 0);             //  deadline 0: due at once
        s_check_on_time (start, start);         //  deadline == now
        if (start > 0)
            s_check_on_time (start, start - 1); //  deadline in the past
        s_check_on_time (start, GT_WHEEL_TIME_MAX / 2);
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
    s_check_on_time (GT_WHEEL_TIME_MAX - 70000, GT_WHEEL_TIME_MAX);    //  no overflow at the top
    s_check_on_time (GT_WHEEL_TIME_MAX - (1ULL << 31), GT_WHEEL_TIME_MAX - 1);

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
    //  And one at GT_WHEEL_TIME_MAX / 2, in jumps of 2^49 ms
    gt_wheel_arm (wheel, &timers [0], GT_WHEEL_TIME_MAX / 2);
    for (now = 0; now < GT_WHEEL_TIME_MAX / 2 - (1ULL << 49); now += 1ULL << 49)
        assert (gt_wheel_advance (wheel, now) == 0);
    assert (gt_wheel_advance (wheel, GT_WHEEL_TIME_MAX / 2 - 1) == 0);
    assert (gt_wheel_advance (wheel, GT_WHEEL_TIME_MAX / 2) == 1);
    assert (gt_wheel_pop (wheel) == &timers [0]);

    //  Past the wheel's range: armed at GT_WHEEL_TIME_MAX, due when now
    //  reaches it (a later now counts as it), never before
    gt_wheel_arm (wheel, &timers [0], UINT64_MAX);
    assert (timers [0].deadline == GT_WHEEL_TIME_MAX);
    assert (gt_wheel_advance (wheel, GT_WHEEL_TIME_MAX - 1) == 0);
    assert (gt_wheel_timeout (wheel, GT_WHEEL_TIME_MAX - 1) == 1);
    assert (gt_wheel_advance (wheel, UINT64_MAX) == 1);
    assert (gt_wheel_pop (wheel) == &timers [0]);
    gt_wheel_arm (wheel, &timers [1], UINT64_MAX - 1);     //  now is at the top: due at once
    assert (gt_wheel_timeout (wheel, UINT64_MAX) == 0);
    assert (gt_wheel_advance (wheel, UINT64_MAX) == 1);
    assert (gt_wheel_pop (wheel) == &timers [1]);
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
    size_t drains = gt_wheel_drains (wheel);
    assert (gt_wheel_advance (wheel, 10510 + 600000) == 1);
    assert (gt_wheel_drains (wheel) - drains <= GT_WHEEL_LEVELS);
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
        int bits = GT_WHEEL_LEVEL_BITS * (1 + (int) (r % GT_WHEEL_LEVELS));
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

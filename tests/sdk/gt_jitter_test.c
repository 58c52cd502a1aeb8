/*  gt_jitter_test.c — selftest of gt_jitter (private to libgarbagetruck:
    its header is in sdk/c, not installed), the source of gt_keepalive's
    renewal jitter.  Re-includes <assert.h> without NDEBUG so the checks
    run in release builds.  */
#undef NDEBUG
#include <assert.h>
#include "garbagetruck.h"
#include "gt_jitter.h"
#include "gt_sdk_selftest.h"

#define S_DRAWS 16

//  S_DRAWS renewal intervals of a lease of ttl_ms, as gt_keepalive draws them
static void
s_draw_intervals (gt_jitter_t *jitter, uint64_t ttl_ms, int64_t intervals [S_DRAWS])
{
    for (size_t index = 0; index < S_DRAWS; index++)
        intervals [index] = gt_jitter_share (jitter, ttl_ms, GT_KEEPALIVE_TTL_FRACTION, GT_KEEPALIVE_JITTER);
}

void
gt_jitter_test (bool verbose)
{
    printf (" * gt_jitter: ");

    //  Two sources made at the same moment (two keep-alives started
    //  together, in one process or two) draw different intervals.  For a
    //  30 s TTL each draw is one of 2,001 values (10,000 ms ± 1,000), so
    //  equal sequences of 16 would mean equal seeds (random () unseeded,
    //  or the time), not chance (2,001^-16).
    gt_jitter_t *first = gt_jitter_new ();
    gt_jitter_t *second = gt_jitter_new ();
    assert (first && second);
    int64_t ours [S_DRAWS], theirs [S_DRAWS];
    s_draw_intervals (first, 30000, ours);
    s_draw_intervals (second, 30000, theirs);
    assert (memcmp (ours, theirs, sizeof (ours)) != 0);
    //  Each within a third of the TTL ± 10 %, and not one value over and
    //  over (the chance that 16 draws are all equal: 2,001^-15)
    bool varied = false;
    for (size_t index = 0; index < S_DRAWS; index++) {
        assert (ours [index] >= 9000 && ours [index] <= 11000);
        assert (theirs [index] >= 9000 && theirs [index] <= 11000);
        varied |= ours [index] != ours [0];
    }
    assert (varied);
    if (verbose)
        printf ("%" PRId64 ", %" PRId64 " ... / %" PRId64 ", %" PRId64 " ... ",
                ours [0], ours [1], theirs [0], theirs [1]);

    //  The whole range is reached, both ends included: 1,000 draws of
    //  100 ± 10 (21 values) miss one with a chance below 21 * (20/21)^1000
    bool seen [21] = { false };
    for (size_t index = 0; index < 1000; index++) {
        int64_t value = gt_jitter_spread (first, 100, 0.10);
        assert (value >= 90 && value <= 110);
        seen [value - 90] = true;
    }
    for (size_t index = 0; index < 21; index++)
        assert (seen [index]);

    //  Nothing to spread: the value itself
    assert (gt_jitter_spread (first, 9, 0.10) == 9);          //  spread rounds down to 0
    assert (gt_jitter_spread (first, 0, 0.10) == 0);
    assert (gt_jitter_spread (first, -5, 0.10) == -5);
    assert (gt_jitter_spread (first, 1000, 0) == 1000);
    //  A share is rounded to the nearest: a third of 30 s is 10,000 ms
    //  (1/3 in double is a hair below a third: truncation would give 9,999)
    assert (gt_jitter_share (first, 30000, GT_KEEPALIVE_TTL_FRACTION, 0) == 10000);
    assert (gt_jitter_share (first, 2, 0.25, 0) == 1);
    //  No overflow near the top of the range
    int64_t big = gt_jitter_spread (first, INT64_MAX / 2, 1.0);
    assert (big >= 0);

    gt_jitter_destroy (&first);
    gt_jitter_destroy (&second);
    assert (first == NULL && second == NULL);
    gt_jitter_destroy (&first);                             //  twice: harmless
    printf ("OK\n");
}

/*  gt_histogram_test.c — selftest of gt_histogram: inclusive bounds, +Inf,
    quantiles, merge, a saturating sum.  */
#include <czmq.h>
#include "gt_histogram.h"
#include "gt_broker_selftest.h"

static void
s_assert_consistent (const gt_histogram_t *histogram)
{
    //  Cumulative counts never decrease, and +Inf equals the count
    uint64_t previous = 0;
    for (size_t i = 0; i <= histogram->bound_count; i++) {
        uint64_t cumulative = gt_histogram_cumulative (histogram, i);
        assert (cumulative >= previous);
        previous = cumulative;
    }
    assert (previous == histogram->count);
}

void
gt_histogram_test (bool verbose)
{
    (void) verbose;
    gt_histogram_t histogram;
    gt_histogram_init (&histogram, gt_histogram_latency_us, gt_histogram_latency_us_count);
    assert (histogram.count == 0 && gt_histogram_quantile (&histogram, 0.99) == 0);
    s_assert_consistent (&histogram);

    //  Bounds are inclusive: 50 goes in le=50, 51 in le=100
    gt_histogram_observe (&histogram, 0);
    gt_histogram_observe (&histogram, 50);
    gt_histogram_observe (&histogram, 51);
    gt_histogram_observe (&histogram, 100);
    assert (histogram.counts [0] == 2 && histogram.counts [1] == 2);
    assert (gt_histogram_cumulative (&histogram, 0) == 2);
    assert (gt_histogram_cumulative (&histogram, 1) == 4);
    assert (gt_histogram_cumulative (&histogram, histogram.bound_count) == 4);
    assert (histogram.sum == 201 && histogram.max == 100);
    s_assert_consistent (&histogram);

    //  Above the last bound: only +Inf
    gt_histogram_observe (&histogram, 2500000);
    gt_histogram_observe (&histogram, 2500001);
    size_t last = histogram.bound_count - 1;
    assert (gt_histogram_cumulative (&histogram, last) == 5);
    assert (gt_histogram_cumulative (&histogram, last + 1) == 6);
    assert (histogram.counts [last + 1] == 1 && histogram.max == 2500001);
    s_assert_consistent (&histogram);

    //  Quantiles: a uniform spread of 1 .. 1000 us
    gt_histogram_init (&histogram, gt_histogram_latency_us, gt_histogram_latency_us_count);
    for (uint64_t value = 1; value <= 1000; value++)
        gt_histogram_observe (&histogram, value);
    s_assert_consistent (&histogram);
    assert (histogram.count == 1000 && histogram.sum == 500500);
    //  p50 = rank 500 lies in (250, 500]: 250 values below, 250 in it, all of it
    assert (gt_histogram_quantile (&histogram, 0.5) == 500);
    //  p99 = rank 990 in (500, 1000]: 490 of its 500, so 500 + 490
    assert (gt_histogram_quantile (&histogram, 0.99) == 990);
    assert (gt_histogram_quantile (&histogram, 1.0) == 1000);
    assert (gt_histogram_quantile (&histogram, 0.0) == 0);
    //  Never above the largest observation
    gt_histogram_init (&histogram, gt_histogram_latency_us, gt_histogram_latency_us_count);
    gt_histogram_observe (&histogram, 600);
    assert (gt_histogram_quantile (&histogram, 0.99) == 600);
    //  All above the last bound: the max
    gt_histogram_observe (&histogram, 9000000);
    assert (gt_histogram_quantile (&histogram, 0.99) == 9000000);

    //  Merge adds bucket by bucket
    gt_histogram_t other;
    gt_histogram_init (&other, gt_histogram_latency_us, gt_histogram_latency_us_count);
    gt_histogram_observe (&other, 75);
    gt_histogram_merge (&histogram, &other);
    assert (histogram.count == 3 && histogram.counts [1] == 1 && histogram.sum == 9000675);
    s_assert_consistent (&histogram);

    //  Sum saturates instead of wrapping
    gt_histogram_init (&histogram, gt_histogram_batch_size, gt_histogram_batch_size_count);
    gt_histogram_observe (&histogram, UINT64_MAX);
    gt_histogram_observe (&histogram, 5);
    assert (histogram.sum == UINT64_MAX && histogram.counts [2] == 1);
    s_assert_consistent (&histogram);

    //  Every bucket set is ascending and fits
    gt_histogram_init (&histogram, gt_histogram_lateness_us, gt_histogram_lateness_us_count);
    gt_histogram_observe (&histogram, 1000);
    assert (histogram.counts [0] == 1);
}

/*  gt_histogram.c — fixed-bucket histograms (see gt_histogram.h).  */
#include <czmq.h>
#include "gt_histogram.h"

const uint64_t gt_histogram_latency_us [] = {
    50, 100, 250, 500, 1000, 2500, 5000, 10000, 25000, 50000,
    100000, 250000, 500000, 1000000, 2500000
};
const size_t gt_histogram_latency_us_count =
    sizeof (gt_histogram_latency_us) / sizeof (gt_histogram_latency_us [0]);

const uint64_t gt_histogram_lateness_us [] = {
    1000, 2000, 5000, 10000, 25000, 50000, 100000, 250000, 500000,
    1000000, 2500000, 5000000, 10000000
};
const size_t gt_histogram_lateness_us_count =
    sizeof (gt_histogram_lateness_us) / sizeof (gt_histogram_lateness_us [0]);

const uint64_t gt_histogram_batch_size [] = {
    1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 2000, 5000, 10000
};
const size_t gt_histogram_batch_size_count =
    sizeof (gt_histogram_batch_size) / sizeof (gt_histogram_batch_size [0]);

void
gt_histogram_init (gt_histogram_t *self, const uint64_t *bounds, size_t bound_count)
{
    assert (self && bounds);
    assert (bound_count > 0 && bound_count <= GT_HISTOGRAM_MAX_BOUNDS);
    for (size_t i = 1; i < bound_count; i++)
        assert (bounds [i - 1] < bounds [i]);
    memset (self, 0, sizeof (*self));
    self->bounds = bounds;
    self->bound_count = bound_count;
}

void
gt_histogram_observe (gt_histogram_t *self, uint64_t value)
{
    size_t index = 0;
    while (index < self->bound_count && value > self->bounds [index])
        index++;
    self->counts [index]++;
    self->count++;
    self->sum = self->sum + value < self->sum ? UINT64_MAX : self->sum + value;
    if (value > self->max)
        self->max = value;
}

uint64_t
gt_histogram_cumulative (const gt_histogram_t *self, size_t index)
{
    assert (index <= self->bound_count);
    uint64_t total = 0;
    for (size_t i = 0; i <= index; i++)
        total += self->counts [i];
    return total;
}

uint64_t
gt_histogram_quantile (const gt_histogram_t *self, double q)
{
    if (self->count == 0)
        return 0;
    q = q < 0 ? 0 : q > 1 ? 1 : q;
    double rank = q * (double) self->count;
    uint64_t below = 0;
    for (size_t i = 0; i <= self->bound_count; i++) {
        uint64_t in_bucket = self->counts [i];
        if (in_bucket && (double) (below + in_bucket) >= rank) {
            if (i == self->bound_count)
                return self->max;   //  above the last bound: the best we know
            double lower = i == 0 ? 0 : (double) self->bounds [i - 1];
            double upper = (double) self->bounds [i];
            double fraction = (rank - (double) below) / (double) in_bucket;
            uint64_t estimate = (uint64_t) (lower + (upper - lower) * fraction);
            return estimate < self->max ? estimate : self->max;
        }
        below += in_bucket;
    }
    return self->max;
}

void
gt_histogram_merge (gt_histogram_t *self, const gt_histogram_t *other)
{
    assert (self->bounds == other->bounds && self->bound_count == other->bound_count);
    for (size_t i = 0; i <= self->bound_count; i++)
        self->counts [i] += other->counts [i];
    self->count += other->count;
    self->sum = self->sum + other->sum < self->sum ? UINT64_MAX : self->sum + other->sum;
    if (other->max > self->max)
        self->max = other->max;
}

/*  gt_histogram.h — fixed-bucket histograms for metrics (Prometheus style).

    A plain value type, so a snapshot of the broker's metrics is a struct
    copy.  Values are unsigned integers in a base unit chosen by the user
    (microseconds for durations, records for batch sizes).  Buckets have
    inclusive upper bounds (value <= bound), ascending, from a static
    table; one more bucket catches everything above the last bound (+Inf).
    Counts are kept per bucket; gt_histogram_cumulative gives Prometheus's
    cumulative view.  Not thread-safe: one owner, copies for readers.  */
#ifndef GT_HISTOGRAM_H_INCLUDED
#define GT_HISTOGRAM_H_INCLUDED

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define GT_HISTOGRAM_MAX_BOUNDS     24

typedef struct {
    const uint64_t *bounds;         //  ascending inclusive upper bounds (static storage)
    size_t bound_count;             //  how many (<= GT_HISTOGRAM_MAX_BOUNDS)
    uint64_t counts [GT_HISTOGRAM_MAX_BOUNDS + 1];  //  per bucket; [bound_count] = above the last
    uint64_t count;                 //  observations
    uint64_t sum;                   //  their sum (saturates)
    uint64_t max;                   //  the largest one
} gt_histogram_t;

//  Bucket sets (base units in the names)
//  Request durations: 50 us .. 2.5 s
extern const uint64_t gt_histogram_latency_us [];
extern const size_t gt_histogram_latency_us_count;
//  Expiry lateness: 1 ms .. 10 s
extern const uint64_t gt_histogram_lateness_us [];
extern const size_t gt_histogram_lateness_us_count;
//  Batch sizes: 1 .. 10,000 records
extern const uint64_t gt_histogram_batch_size [];
extern const size_t gt_histogram_batch_size_count;

//  Empty histogram over bounds (static storage, ascending, count <= max).
void gt_histogram_init (gt_histogram_t *self, const uint64_t *bounds, size_t bound_count);
//  Record one value.
void gt_histogram_observe (gt_histogram_t *self, uint64_t value);
//  Observations <= bounds [index]; index == bound_count gives count (+Inf).
uint64_t gt_histogram_cumulative (const gt_histogram_t *self, size_t index);
//  Estimate of quantile q (0 .. 1), interpolating linearly inside the bucket
//  (as Prometheus's histogram_quantile), never above max; 0 if empty.
uint64_t gt_histogram_quantile (const gt_histogram_t *self, double q);
//  Add other (same bounds) into self.
void gt_histogram_merge (gt_histogram_t *self, const gt_histogram_t *other);

#ifdef __cplusplus
}
#endif
#endif

/*  gt_broker_metrics.h — the broker's side of metrics (gt_metrics.h): the
    METRICS pipe command (the HTTP endpoint, owned here), snapshots of the
    broker's state for its readers, the metrics figures in STATS, and the
    log lines about the store's health.  Runs in the broker actor's thread;
    what it needs of the broker beyond the lease engine and the store, it
    asks through the source functions it was given.  */
#ifndef GT_BROKER_METRICS_H_INCLUDED
#define GT_BROKER_METRICS_H_INCLUDED

#include "gt_metrics.h"
#include "gt_leases.h"
#include "gt_store.h"

typedef struct _gt_broker_metrics_t gt_broker_metrics_t;

//  What the broker tells on demand (ctx is passed back).
typedef struct {
    void *ctx;
    //  The STATS list now (names static; the caller frees the array)
    gt_stat_t *(*stats) (void *ctx, size_t *count_p);
    //  Store batches failed so far (the by-type census is redone after one)
    uint64_t (*failures) (void *ctx);
    //  Whether the request and the event sockets are bound
    void (*bound) (void *ctx, bool *requests_p, bool *events_p);
} gt_broker_metrics_source_t;

//  On the broker's figures (borrowed: they must outlive this).
gt_broker_metrics_t *gt_broker_metrics_new (gt_metrics_t *metrics, const gt_broker_metrics_source_t *source);
//  Stops the HTTP endpoint first.
void gt_broker_metrics_destroy (gt_broker_metrics_t **self_p);
//  The lease engine and the store (borrowed; either may be NULL).
void gt_broker_metrics_attach (gt_broker_metrics_t *self, gt_leases_t *leases, gt_store_t *store);

//  METRICS pipe command: serve /metrics, /healthz, /readyz on endpoint
//  "http://host:port" ("*" or 0: the kernel picks).  Returns the port, or
//  -1 (logged) on failure or if already serving.
int gt_broker_metrics_serve (gt_broker_metrics_t *self, const char *endpoint);

//  Once per loop turn: log store health changes and expiry batches, and
//  publish a snapshot when a reader asked (at most every
//  GT_METRICS_MIN_INTERVAL_MS).
void gt_broker_metrics_tick (gt_broker_metrics_t *self);

//  Append the metrics figures to a STATS list of capacity max (names are
//  static): request_duration_{count,sum_us,p50_us,p99_us}_<command>,
//  expiry_lateness_{count,sum_us,p50_us,p99_us,max_us},
//  store_batch_size_{count,p50,p99}, store_commit_{count,p50_us,p99_us},
//  active_leases_<object type>, store_up.
void gt_broker_metrics_stats (gt_broker_metrics_t *self, gt_stat_t *stats, size_t *count_p, size_t max);

#endif

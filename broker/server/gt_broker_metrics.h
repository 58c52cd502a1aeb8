/*  gt_broker_metrics.h — the broker's side of metrics (gt_metrics.h): the
    METRICS pipe command, snapshots of the broker's state, the metrics
    figures in STATS, and the log lines about the store's health.  Runs in
    the broker actor's thread on its private state: include after
    gt_broker_internal.h (without it, only the selftest is declared).  */
#ifndef GT_BROKER_METRICS_H_INCLUDED
#define GT_BROKER_METRICS_H_INCLUDED

#include "gt_metrics.h"

void gt_broker_metrics_test (bool verbose);

#ifdef GT_BROKER_INTERNAL_H_INCLUDED
//  METRICS pipe command: serve /metrics, /healthz, /readyz on endpoint
//  "http://host:port" ("*" or 0: the kernel picks).  Returns the port, or
//  -1 (logged) on failure or if already serving.
int gt_broker_metrics_serve (s_broker_t *self, const char *endpoint);

//  Once per loop turn: log store health changes and expiry batches, and
//  publish a snapshot when a reader asked (at most every
//  GT_METRICS_MIN_INTERVAL_MS).
void gt_broker_metrics_tick (s_broker_t *self);

//  Append the metrics figures to a STATS list of capacity max (names are
//  static): request_duration_{count,sum_us,p50_us,p99_us}_<command>,
//  expiry_lateness_{count,sum_us,p50_us,p99_us,max_us},
//  store_batch_size_{count,p50,p99}, store_commit_{count,p50_us,p99_us},
//  active_leases_<object type>, store_up.
void gt_broker_metrics_stats (s_broker_t *self, gt_stat_t *stats, size_t *count_p, size_t max);
#endif

#endif

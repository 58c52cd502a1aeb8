/*  gt_broker_stats.c — the STATS counters (GTLP.md §5.8) of the broker.  */
#include <czmq.h>
#include "gt_broker.h"
#include "gt_leases.h"
#include "gt_events.h"
#include "gt_store.h"
#include "gt_broker_delivery.h"
#include "gt_broker_internal.h"
#include "gt_broker_metrics.h"

#define S_MAX_STATS     256

static void
s_add (gt_stat_t *stats, size_t *count, const char *name, uint64_t value)
{
    assert (*count < S_MAX_STATS);
    stats [*count].name = (char *) name;
    stats [*count].value = value;
    (*count)++;
}

//  Counter names per command and per error code, indexed by the enums
//  (fixed strings: several brokers may run in one process).
static const char *s_request_names [GT_CMD_COUNT_] = {
    [GT_CMD_CREATE] = "requests_create",
    [GT_CMD_RENEW] = "requests_renew",
    [GT_CMD_RENEW_BATCH] = "requests_renew_batch",
    [GT_CMD_RELEASE] = "requests_release",
    [GT_CMD_GET] = "requests_get",
    [GT_CMD_LIST] = "requests_list",
    [GT_CMD_HEALTH] = "requests_health",
    [GT_CMD_STATS] = "requests_stats",
    [GT_CMD_REPLAY] = "requests_replay",
    [GT_CMD_RETRY] = "requests_retry",
};
static const char *s_error_names [GT_CODE_COUNT_] = {
    [GT_ERR_INVALID_ARGUMENT] = "errors_invalid_argument",
    [GT_ERR_NOT_FOUND] = "errors_not_found",
    [GT_ERR_LEASE_ENDED] = "errors_lease_ended",
    [GT_ERR_PERMISSION_DENIED] = "errors_permission_denied",
    [GT_ERR_CONFLICT] = "errors_conflict",
    [GT_ERR_QUOTA_EXCEEDED] = "errors_quota_exceeded",
    [GT_ERR_UNAVAILABLE] = "errors_unavailable",
    [GT_ERR_UNSUPPORTED_VERSION] = "errors_unsupported_version",
    [GT_ERR_UNSUPPORTED_COMMAND] = "errors_unsupported_command",
    [GT_ERR_TOO_OLD] = "errors_too_old",
    [GT_ERR_INTERNAL] = "errors_internal",
};

gt_stat_t *
gt_broker_stats_build (s_broker_t *self, size_t *count_p)
{
    gt_stat_t *stats = (gt_stat_t *) calloc (S_MAX_STATS, sizeof (gt_stat_t));
    assert (stats);
    size_t count = 0;
    gt_leases_stats_t engine;
    gt_leases_stats (self->leases, &engine);
    const s_counters_t *c = &self->counters;

    //  The names GTLP.md §5.8 requires
    s_add (stats, &count, "active_leases", engine.active_leases);
    s_add (stats, &count, "active_objects", engine.active_objects);
    s_add (stats, &count, "leases_created", c->events_by_kind [GT_EVENT_LEASE_CREATED]);
    s_add (stats, &count, "leases_renewed", c->events_by_kind [GT_EVENT_LEASE_RENEWED]);
    s_add (stats, &count, "leases_released", c->events_by_kind [GT_EVENT_LEASE_RELEASED]);
    s_add (stats, &count, "leases_expired", c->events_by_kind [GT_EVENT_LEASE_EXPIRED]);
    s_add (stats, &count, "objects_reclaimed", c->events_by_kind [GT_EVENT_OBJECT_RECLAIMED]);
    s_add (stats, &count, "events_published", c->events_published);
    s_add (stats, &count, "last_seq", gt_events_last_seq (self->events));
    s_add (stats, &count, "requests", c->requests);
    s_add (stats, &count, "errors", c->errors);
    s_add (stats, &count, "replies_dropped", c->replies_dropped);

    //  Ours
    for (int cmd = 0; cmd < GT_CMD_COUNT_; cmd++)
        if (s_request_names [cmd])
            s_add (stats, &count, s_request_names [cmd], c->requests_by_cmd [cmd]);
    for (int code = 0; code < GT_CODE_COUNT_; code++)
        if (s_error_names [code])
            s_add (stats, &count, s_error_names [code], c->errors_by_code [code]);
    s_add (stats, &count, "requests_malformed", c->malformed);
    s_add (stats, &count, "replies_queued", c->replies_queued);
    s_add (stats, &count, "replies_backlog", self->backlog_count);
    s_add (stats, &count, "replies_backlog_overflows", c->backlog_overflows);
    s_add (stats, &count, "replies_backlog_bytes", gt_peers_queued_bytes (self->peers));
    s_add (stats, &count, "requests_refused_unread", c->refused_unread);
    s_add (stats, &count, "requests_shed_unread", c->shed_unread);
    s_add (stats, &count, "retained_leases", engine.retained_leases);
    s_add (stats, &count, "pending_reclaims", engine.pending_reclaims);
    s_add (stats, &count, "services", engine.services);
    s_add (stats, &count, "last_fence", engine.last_fence);
    s_add (stats, &count, "event_history_oldest_seq", gt_events_oldest_seq (self->events));
    s_add (stats, &count, "expiry_late_max_ms", engine.expiry_late_max_ms);
    s_add (stats, &count, "expiry_late_0ms", engine.expiry_late [0]);
    s_add (stats, &count, "expiry_late_1ms", engine.expiry_late [1]);
    s_add (stats, &count, "expiry_late_le_2ms", engine.expiry_late [2]);
    s_add (stats, &count, "expiry_late_le_5ms", engine.expiry_late [3]);
    s_add (stats, &count, "expiry_late_le_10ms", engine.expiry_late [4]);
    s_add (stats, &count, "expiry_late_gt_10ms", engine.expiry_late [5]);
    s_add (stats, &count, "store_batches", c->batches_flushed);
    s_add (stats, &count, "store_batches_failed", c->batches_failed);
    s_add (stats, &count, "store_batches_in_flight", zlistx_size (self->flight));
    s_add (stats, &count, "reclaims_handed", c->reclaims_handed);
    s_add (stats, &count, "cleanups_handed", c->cleanups_handed);
    gt_broker_delivery_counters_t callbacks;
    gt_broker_delivery_counters (self->delivery, &callbacks);
    s_add (stats, &count, "callbacks_pending", callbacks.pending);
    s_add (stats, &count, "callbacks_delivered", callbacks.delivered);
    s_add (stats, &count, "callbacks_dead", callbacks.dead);
    s_add (stats, &count, "callbacks_dead_letters", callbacks.dead_letters);
    s_add (stats, &count, "callbacks_queue_full", callbacks.queue_full);
    s_add (stats, &count, "callbacks_retried", callbacks.retried);
    s_add (stats, &count, "callbacks_recovered", callbacks.recovered);
    s_add (stats, &count, "callback_attempts", callbacks.attempts);
    s_add (stats, &count, "callback_failures", callbacks.failures);
    s_add (stats, &count, "loop_turns", c->turns);
    s_add (stats, &count, "uptime_ms", (uint64_t) (zclock_mono () - self->started));
    gt_broker_metrics_stats (self, stats, &count, S_MAX_STATS);
    *count_p = count;
    return stats;
}

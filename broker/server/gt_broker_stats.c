/*  gt_broker_stats.c — the STATS counters (GTLP.md §5.8) of the broker.  */
#include <czmq.h>
#include <ctype.h>
#include <pthread.h>
#include "gt_broker.h"
#include "gt_leases.h"
#include "gt_events.h"
#include "gt_store.h"
#include "gt_broker_delivery.h"
#include "gt_broker_internal.h"
#include "gt_broker_metrics.h"
#include "gt_figures.h"

#define S_MAX_STATS     256

static void
s_add (gt_stat_t *stats, size_t *count, const char *name, uint64_t value)
{
    assert (*count < S_MAX_STATS);
    stats [*count].name = (char *) name;
    stats [*count].value = value;
    (*count)++;
}

//  Counter names per command and per error code (the families' prefix and
//  the wire name in lower case), built once: several brokers may run in
//  one process, and the names are static afterwards.
static char s_request_names [GT_CMD_COUNT_][GT_METRICS_STAT_NAME];
static char s_error_names [GT_CODE_COUNT_][GT_METRICS_STAT_NAME];
static pthread_once_t s_names_once = PTHREAD_ONCE_INIT;

static void
s_family_name (char *name, const char *prefix, const char *wire_name)
{
    snprintf (name, GT_METRICS_STAT_NAME, "%s%s", prefix, wire_name);
    for (char *p = name; *p; p++)
        *p = (char) tolower ((unsigned char) *p);
}

static void
s_names_init (void)
{
    for (int cmd = 0; cmd < GT_CMD_COUNT_; cmd++)
        if (cmd != GT_CMD_NONE)
            s_family_name (s_request_names [cmd], gt_figure_families [GT_FIGURE_FAMILY_REQUESTS_BY_COMMAND].stat,
                           gt_cmd_name ((gt_cmd_t) cmd));
    for (int code = 0; code < GT_CODE_COUNT_; code++)
        if (code != GT_OK)
            s_family_name (s_error_names [code], gt_figure_families [GT_FIGURE_FAMILY_ERRORS_BY_CODE].stat,
                           gt_code_name ((gt_code_t) code));
}

gt_stat_t *
gt_broker_stats_build (s_broker_t *self, size_t *count_p)
{
    pthread_once (&s_names_once, s_names_init);
    gt_stat_t *stats = (gt_stat_t *) calloc (S_MAX_STATS, sizeof (gt_stat_t));
    assert (stats);
    gt_leases_stats_t engine;
    gt_leases_stats (self->leases, &engine);
    const s_counters_t *c = &self->counters;
    gt_broker_delivery_counters_t callbacks;
    gt_broker_delivery_counters (self->delivery, &callbacks);

    //  Every figure of the table (gt_figures.h), by its id
    uint64_t values [GT_FIGURE_COUNT_] = {
        [GT_FIGURE_ACTIVE_LEASES] = engine.active_leases,
        [GT_FIGURE_ACTIVE_OBJECTS] = engine.active_objects,
        [GT_FIGURE_LEASES_CREATED] = c->events_by_kind [GT_EVENT_LEASE_CREATED],
        [GT_FIGURE_LEASES_RENEWED] = c->events_by_kind [GT_EVENT_LEASE_RENEWED],
        [GT_FIGURE_LEASES_RELEASED] = c->events_by_kind [GT_EVENT_LEASE_RELEASED],
        [GT_FIGURE_LEASES_EXPIRED] = c->events_by_kind [GT_EVENT_LEASE_EXPIRED],
        [GT_FIGURE_OBJECTS_RECLAIMED] = c->events_by_kind [GT_EVENT_OBJECT_RECLAIMED],
        [GT_FIGURE_EVENTS_PUBLISHED] = c->events_published,
        [GT_FIGURE_LAST_SEQ] = gt_events_last_seq (self->events),
        [GT_FIGURE_REQUESTS] = c->requests,
        [GT_FIGURE_ERRORS] = c->errors,
        [GT_FIGURE_REPLIES_DROPPED] = c->replies_dropped,
        [GT_FIGURE_REQUESTS_MALFORMED] = c->malformed,
        [GT_FIGURE_REPLIES_QUEUED] = c->replies_queued,
        [GT_FIGURE_REPLIES_BACKLOG] = self->backlog_count,
        [GT_FIGURE_REPLIES_BACKLOG_OVERFLOWS] = c->backlog_overflows,
        [GT_FIGURE_REPLIES_BACKLOG_BYTES] = gt_peers_queued_bytes (self->peers),
        [GT_FIGURE_REQUESTS_REFUSED_UNREAD] = c->refused_unread,
        [GT_FIGURE_REQUESTS_SHED_UNREAD] = c->shed_unread,
        [GT_FIGURE_RETAINED_LEASES] = engine.retained_leases,
        [GT_FIGURE_PENDING_RECLAIMS] = engine.pending_reclaims,
        [GT_FIGURE_SERVICES] = engine.services,
        [GT_FIGURE_LAST_FENCE] = engine.last_fence,
        [GT_FIGURE_EVENT_HISTORY_OLDEST_SEQ] = gt_events_oldest_seq (self->events),
        [GT_FIGURE_EXPIRY_LATE_MAX_MS] = engine.expiry_late_max_ms,
        [GT_FIGURE_EXPIRY_LATE_0MS] = engine.expiry_late [0],
        [GT_FIGURE_EXPIRY_LATE_1MS] = engine.expiry_late [1],
        [GT_FIGURE_EXPIRY_LATE_LE_2MS] = engine.expiry_late [2],
        [GT_FIGURE_EXPIRY_LATE_LE_5MS] = engine.expiry_late [3],
        [GT_FIGURE_EXPIRY_LATE_LE_10MS] = engine.expiry_late [4],
        [GT_FIGURE_EXPIRY_LATE_GT_10MS] = engine.expiry_late [5],
        [GT_FIGURE_STORE_BATCHES] = c->batches_flushed,
        [GT_FIGURE_STORE_BATCHES_FAILED] = c->batches_failed,
        [GT_FIGURE_STORE_BATCHES_IN_FLIGHT] = zlistx_size (self->flight),
        [GT_FIGURE_RECLAIMS_HANDED] = c->reclaims_handed,
        [GT_FIGURE_CLEANUPS_HANDED] = c->cleanups_handed,
        [GT_FIGURE_CALLBACKS_PENDING] = callbacks.pending,
        [GT_FIGURE_CALLBACKS_DELIVERED] = callbacks.delivered,
        [GT_FIGURE_CALLBACKS_DEAD] = callbacks.dead,
        [GT_FIGURE_CALLBACKS_DEAD_LETTERS] = callbacks.dead_letters,
        [GT_FIGURE_CALLBACKS_QUEUE_FULL] = callbacks.queue_full,
        [GT_FIGURE_CALLBACKS_RETRIED] = callbacks.retried,
        [GT_FIGURE_CALLBACKS_RECOVERED] = callbacks.recovered,
        [GT_FIGURE_CALLBACK_ATTEMPTS] = callbacks.attempts,
        [GT_FIGURE_CALLBACK_FAILURES] = callbacks.failures,
        [GT_FIGURE_LOOP_TURNS] = c->turns,
        [GT_FIGURE_UPTIME_MS] = (uint64_t) (zclock_mono () - self->started),
    };
    size_t count = 0;
    for (size_t figure = 0; figure < GT_FIGURE_COUNT_; figure++)
        s_add (stats, &count, gt_figures [figure].stat, values [figure]);
    for (int cmd = 0; cmd < GT_CMD_COUNT_; cmd++)
        if (cmd != GT_CMD_NONE)
            s_add (stats, &count, s_request_names [cmd], c->requests_by_cmd [cmd]);
    for (int code = 0; code < GT_CODE_COUNT_; code++)
        if (code != GT_OK)
            s_add (stats, &count, s_error_names [code], c->errors_by_code [code]);
    gt_broker_metrics_stats (self->broker_metrics, stats, &count, S_MAX_STATS);
    *count_p = count;
    return stats;
}

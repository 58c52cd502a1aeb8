/*  gt_figures.h — the one table of the broker's figures: the name each
    has in STATS (GTLP.md §5.8), its Prometheus name and type, and its help
    text.  STATS (gt_broker_stats.c) and the Prometheus rendering
    (gt_metrics_render.c) both come from it, so they cannot drift.

    X (ID, STATS name, Prometheus name or NULL (STATS only), kind, scale, help)
    scale divides the STATS value for Prometheus (1000: ms -> s).

    Families generated from an enum (one STATS name per command, code or
    object type; histograms) are in GT_FIGURE_FAMILIES below: the STATS
    prefix, the Prometheus name and the help of each.

    To add a figure: one line here, and its value where the broker fills
    the figures (s_broker_figures in server/gt_broker.c).  */
#ifndef GT_FIGURES_H_INCLUDED
#define GT_FIGURES_H_INCLUDED

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef enum { GT_FIGURE_COUNTER, GT_FIGURE_GAUGE } gt_figure_kind_t;

#define GT_FIGURES(X) \
    X (ACTIVE_LEASES, "active_leases", "gc_active_leases", GAUGE, 1, "Leases in state ACTIVE.") \
    X (ACTIVE_OBJECTS, "active_objects", "gc_active_objects", GAUGE, 1, "Objects with at least one active lease.") \
    X (LEASES_CREATED, "leases_created", "gc_leases_created_total", COUNTER, 1, "Leases created.") \
    X (LEASES_RENEWED, "leases_renewed", "gc_leases_renewed_total", COUNTER, 1, \
       "Lease renewals (RENEW and each lease of RENEW_BATCH).") \
    X (LEASES_RELEASED, "leases_released", "gc_leases_released_total", COUNTER, 1, "Leases released by their service.") \
    X (LEASES_EXPIRED, "leases_expired", "gc_leases_expired_total", COUNTER, 1, "Leases that expired (not renewed in time).") \
    X (OBJECTS_RECLAIMED, "objects_reclaimed", "gc_objects_reclaimed_total", COUNTER, 1, \
       "Objects reclaimed (their last lease ended).") \
    X (EVENTS_PUBLISHED, "events_published", "gc_events_published_total", COUNTER, 1, "Events published on the PUB socket.") \
    X (LAST_SEQ, "last_seq", "gc_last_event_sequence", GAUGE, 1, "Sequence number of the newest published event.") \
    X (REQUESTS, "requests", NULL, COUNTER, 1, "Requests received, malformed included.") \
    X (ERRORS, "errors", NULL, COUNTER, 1, "Error replies.") \
    X (REPLIES_DROPPED, "replies_dropped", "gc_replies_dropped_total", COUNTER, 1, \
       "Replies dropped (the peer was gone, or the reply backlog was full).") \
    X (REQUESTS_MALFORMED, "requests_malformed", NULL, COUNTER, 1, "Requests whose body did not decode.") \
    X (REPLIES_QUEUED, "replies_queued", NULL, COUNTER, 1, "Replies that met a full peer pipe and were queued.") \
    X (REPLIES_BACKLOG, "replies_backlog", "gc_replies_backlog", GAUGE, 1, "Replies waiting for a peer whose pipe is full.") \
    X (REPLIES_BACKLOG_OVERFLOWS, "replies_backlog_overflows", NULL, COUNTER, 1, \
       "Replies dropped because the reply backlog was full.") \
    X (REPLIES_BACKLOG_BYTES, "replies_backlog_bytes", "gc_replies_backlog_bytes", GAUGE, 1, \
       "Bytes of the replies waiting for a peer whose pipe is full.") \
    X (REQUESTS_REFUSED_UNREAD, "requests_refused_unread", "gc_requests_refused_unread_total", COUNTER, 1, \
       "Requests answered UNAVAILABLE unapplied: their connection had too many unread replies.") \
    X (REQUESTS_SHED_UNREAD, "requests_shed_unread", "gc_requests_shed_unread_total", COUNTER, 1, \
       "Requests dropped unanswered: their connection had too many unread replies and a full pipe.") \
    X (CURVE_PRINCIPALS, "curve_principals", "gc_curve_principals", GAUGE, 1, \
       "Client keys the broker trusts now (GC_CURVE_CLIENTS; 0 without CURVE).") \
    X (CURVE_HANDSHAKES, "curve_handshakes", "gc_curve_handshakes_total", COUNTER, 1, \
       "CURVE handshakes that succeeded.") \
    X (CURVE_HANDSHAKES_FAILED, "curve_handshakes_failed", "gc_curve_handshakes_failed_total", COUNTER, 1, \
       "Handshakes that failed: an unknown key, a client without CURVE, a broken or slow handshake.") \
    X (CURVE_KEYS_REFUSED, "curve_keys_refused", "gc_curve_keys_refused_total", COUNTER, 1, \
       "CURVE handshakes refused because the client's key is not trusted.") \
    X (REQUESTS_KEY_REVOKED, "requests_key_revoked", "gc_requests_key_revoked_total", COUNTER, 1, \
       "Requests refused because their connection's key is no longer trusted.") \
    X (RETAINED_LEASES, "retained_leases", "gc_retained_leases", GAUGE, 1, \
       "Ended leases still visible (GC_LEASE_RETENTION).") \
    X (PENDING_RECLAIMS, "pending_reclaims", "gc_pending_reclaims", GAUGE, 1, \
       "Objects waiting out the cleanup grace period.") \
    X (SERVICES, "services", "gc_services", GAUGE, 1, "Service ids the broker knows (with live or retained leases).") \
    X (LAST_FENCE, "last_fence", NULL, GAUGE, 1, "The largest fencing token handed out.") \
    X (EVENT_HISTORY_OLDEST_SEQ, "event_history_oldest_seq", NULL, GAUGE, 1, "Oldest event seq REPLAY can serve.") \
    X (EXPIRY_LATE_MAX_MS, "expiry_late_max_ms", NULL, GAUGE, 1, "Largest expiry lateness seen (ms).") \
    X (EXPIRY_LATE_0MS, "expiry_late_0ms", NULL, COUNTER, 1, "Expiries in the deadline's millisecond.") \
    X (EXPIRY_LATE_1MS, "expiry_late_1ms", NULL, COUNTER, 1, "Expiries 1 ms late.") \
    X (EXPIRY_LATE_LE_2MS, "expiry_late_le_2ms", NULL, COUNTER, 1, "Expiries 2 ms late.") \
    X (EXPIRY_LATE_LE_5MS, "expiry_late_le_5ms", NULL, COUNTER, 1, "Expiries 3 to 5 ms late.") \
    X (EXPIRY_LATE_LE_10MS, "expiry_late_le_10ms", NULL, COUNTER, 1, "Expiries 6 to 10 ms late.") \
    X (EXPIRY_LATE_GT_10MS, "expiry_late_gt_10ms", NULL, COUNTER, 1, "Expiries more than 10 ms late.") \
    X (STORE_BATCHES, "store_batches", "gc_store_batches_total", COUNTER, 1, "Batches of changes handed to the store.") \
    X (STORE_BATCHES_FAILED, "store_batches_failed", "gc_store_batches_failed_total", COUNTER, 1, \
       "Batches the store could not make durable (their requests got UNAVAILABLE).") \
    X (STORE_BATCHES_IN_FLIGHT, "store_batches_in_flight", NULL, GAUGE, 1, "Batches handed to the store, not yet durable.") \
    X (RECLAIMS_HANDED, "reclaims_handed", NULL, COUNTER, 1, "Reclaimed objects handed to delivery.") \
    X (CLEANUPS_HANDED, "cleanups_handed", NULL, COUNTER, 1, "Cleanup callbacks handed to delivery.") \
    X (CALLBACKS_PENDING, "callbacks_pending", "gc_callbacks_pending", GAUGE, 1, \
       "Cleanup callbacks accepted and not yet delivered or dead-lettered.") \
    X (CALLBACKS_DELIVERED, "callbacks_delivered", "gc_callbacks_delivered_total", COUNTER, 1, \
       "Cleanup callbacks delivered (a 2xx answer).") \
    X (CALLBACKS_DEAD, "callbacks_dead", "gc_callbacks_dead_total", COUNTER, 1, \
       "Cleanup callbacks that went dead (retries exhausted or a permanent error), each time.") \
    X (CALLBACKS_DEAD_LETTERS, "callbacks_dead_letters", "gc_callbacks_dead_lettered", GAUGE, 1, \
       "Cleanup callbacks that failed for good and wait as dead letters (gtctl retry).") \
    X (CALLBACKS_QUEUE_FULL, "callbacks_queue_full", NULL, COUNTER, 1, \
       "Cleanup callbacks dead-lettered because the delivery queue was full.") \
    X (CALLBACKS_RETRIED, "callbacks_retried", NULL, COUNTER, 1, "Dead letters resubmitted by RETRY.") \
    X (CALLBACKS_RECOVERED, "callbacks_recovered", NULL, COUNTER, 1, "Pending callbacks resubmitted after a restart.") \
    X (CALLBACK_ATTEMPTS, "callback_attempts", "gc_cleanup_operations_total", COUNTER, 1, \
       "Cleanup callback attempts (HTTP POSTs) made.") \
    X (CALLBACK_FAILURES, "callback_failures", "gc_cleanup_failures_total", COUNTER, 1, \
       "Cleanup callback attempts that failed (error status, timeout, connection error).") \
    X (LOOP_TURNS, "loop_turns", NULL, COUNTER, 1, "Turns of the broker's loop.") \
    X (UPTIME_MS, "uptime_ms", "gc_uptime_seconds", GAUGE, 1000, "Seconds since the broker started.")

typedef enum {
#define GT_FIGURE_ENUM_(id, stat, prometheus, kind, scale, help) GT_FIGURE_##id,
    GT_FIGURES (GT_FIGURE_ENUM_)
#undef GT_FIGURE_ENUM_
    GT_FIGURE_COUNT_
} gt_figure_t;

//  Families: X (ID, STATS name or prefix, Prometheus name, help)
#define GT_FIGURE_FAMILIES(X) \
    X (REQUESTS_BY_COMMAND, "requests_", "gc_requests_total", \
       "Requests received, by command (MALFORMED: the body did not decode).") \
    X (ERRORS_BY_CODE, "errors_", "gc_request_errors_total", "Error replies, by code.") \
    X (ACTIVE_BY_TYPE, "active_leases_", "gc_active_leases_by_type", "Leases in state ACTIVE, by object type.") \
    X (ACTIVE_BY_SERVICE, NULL, "gc_active_leases_by_service", \
       "Leases in state ACTIVE, by service: the 50 biggest services, the rest summed as _other.") \
    X (REQUEST_DURATION, "request_duration_", "gc_request_duration_seconds", \
       "From reading a request to sending its reply (durability wait included), by command.") \
    X (EXPIRY_LATENESS, "expiry_lateness_", "gc_expiry_lateness_seconds", \
       "Expiry fire time minus the lease deadline (millisecond resolution).") \
    X (STORE_BATCH_SIZE, "store_batch_size_", "gc_store_batch_size", "Records per store commit (PostgreSQL store).") \
    X (STORE_COMMIT, "store_commit_", "gc_store_commit_seconds", "Duration of one store commit (PostgreSQL store).") \
    X (STORE_UP, "store_up", "gc_store_up", "1 if the store can make changes durable now, else 0.") \
    X (BUILD_INFO, NULL, "gc_build_info", "Always 1; the broker's version in the label.")

typedef enum {
#define GT_FIGURE_FAMILY_ENUM_(id, stat, prometheus, help) GT_FIGURE_FAMILY_##id,
    GT_FIGURE_FAMILIES (GT_FIGURE_FAMILY_ENUM_)
#undef GT_FIGURE_FAMILY_ENUM_
    GT_FIGURE_FAMILY_COUNT_
} gt_figure_family_t;

typedef struct {
    const char *stat;               //  STATS name (family: its prefix, or NULL if not in STATS)
    const char *prometheus;         //  Prometheus name, or NULL: STATS only
    gt_figure_kind_t kind;          //  counter or gauge (families: unused)
    uint64_t scale;                 //  STATS value / scale = Prometheus value
    const char *help;               //  HELP text
} gt_figure_info_t;

//  The STATS name of one member of a family: its prefix and the wire name
//  in lower case ("requests_renew_batch", "errors_not_found"; NULL wire
//  name: "<prefix>malformed").  Written into buffer (size bytes).
void gt_figures_family_name (char *buffer, size_t size, gt_figure_family_t family, const char *wire_name);

//  The table, indexed by gt_figure_t / gt_figure_family_t.
extern const gt_figure_info_t gt_figures [GT_FIGURE_COUNT_];
extern const gt_figure_info_t gt_figure_families [GT_FIGURE_FAMILY_COUNT_];

#ifdef __cplusplus
}
#endif
#endif

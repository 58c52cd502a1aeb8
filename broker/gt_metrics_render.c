/*  gt_metrics_render.c — a metrics snapshot in the Prometheus text
    exposition format, version 0.0.4 (part of gt_metrics).

    Plain figures come from the snapshot's STATS map by name, so STATS and
    /metrics cannot disagree; a name absent from STATS (a component not
    built in) renders as 0, so every series always exists.  Durations are
    kept in integer microseconds and printed as exact decimal seconds.  */
#include <czmq.h>
#include <ctype.h>
#include <stdarg.h>
#include "gt_metrics.h"

typedef enum { S_COUNTER, S_GAUGE } s_type_t;

//  A plain metric: one series, from STATS.
typedef struct {
    const char *name;               //  Prometheus name
    s_type_t type;                  //  counter or gauge
    const char *stat;               //  STATS name; "a|b" = the first present
    uint64_t scale;                 //  divide by this (1000 for ms -> s), 1 = none
    const char *help;               //  HELP text
} s_plain_t;

static const s_plain_t s_plain [] = {
    { "gc_leases_created_total", S_COUNTER, "leases_created", 1, "Leases created." },
    { "gc_leases_renewed_total", S_COUNTER, "leases_renewed", 1, "Lease renewals (RENEW and each lease of RENEW_BATCH)." },
    { "gc_leases_released_total", S_COUNTER, "leases_released", 1, "Leases released by their service." },
    { "gc_leases_expired_total", S_COUNTER, "leases_expired", 1, "Leases that expired (not renewed in time)." },
    { "gc_active_leases", S_GAUGE, "active_leases", 1, "Leases in state ACTIVE." },
    { "gc_objects_reclaimed_total", S_COUNTER, "objects_reclaimed", 1, "Objects reclaimed (their last lease ended)." },
    { "gc_active_objects", S_GAUGE, "active_objects", 1, "Objects with at least one active lease." },
    { "gc_pending_reclaims", S_GAUGE, "pending_reclaims", 1, "Objects waiting out the cleanup grace period." },
    { "gc_retained_leases", S_GAUGE, "retained_leases", 1, "Ended leases still visible (GC_LEASE_RETENTION)." },
    { "gc_cleanup_operations_total", S_COUNTER, "callback_attempts", 1,
      "Cleanup callback attempts (HTTP POSTs) made." },
    { "gc_cleanup_failures_total", S_COUNTER, "callback_failures", 1,
      "Cleanup callback attempts that failed (error status, timeout, connection error)." },
    { "gc_callbacks_pending", S_GAUGE, "callbacks_pending", 1,
      "Cleanup callbacks accepted and not yet delivered or dead-lettered." },
    { "gc_callbacks_dead_lettered", S_GAUGE, "callbacks_dead_letters", 1,
      "Cleanup callbacks that failed for good and wait as dead letters (gtctl retry)." },
    { "gc_callbacks_delivered_total", S_COUNTER, "callbacks_delivered", 1,
      "Cleanup callbacks delivered (a 2xx answer)." },
    { "gc_callbacks_dead_total", S_COUNTER, "callbacks_dead", 1,
      "Cleanup callbacks that went dead (retries exhausted or a permanent error), each time." },
    { "gc_events_published_total", S_COUNTER, "events_published", 1, "Events published on the PUB socket." },
    { "gc_last_event_sequence", S_GAUGE, "last_seq", 1, "Sequence number of the newest published event." },
    { "gc_replies_dropped_total", S_COUNTER, "replies_dropped", 1,
      "Replies dropped (the peer was gone, or the reply backlog was full)." },
    { "gc_replies_backlog", S_GAUGE, "replies_backlog", 1, "Replies waiting for a peer whose pipe is full." },
    { "gc_replies_backlog_bytes", S_GAUGE, "replies_backlog_bytes", 1,
      "Bytes of the replies waiting for a peer whose pipe is full." },
    { "gc_requests_refused_unread_total", S_COUNTER, "requests_refused_unread", 1,
      "Requests answered UNAVAILABLE unapplied: their connection had too many unread replies." },
    { "gc_requests_shed_unread_total", S_COUNTER, "requests_shed_unread", 1,
      "Requests dropped unanswered: their connection had too many unread replies and a full pipe." },
    { "gc_store_batches_total", S_COUNTER, "store_batches", 1, "Batches of changes handed to the store." },
    { "gc_store_batches_failed_total", S_COUNTER, "store_batches_failed", 1,
      "Batches the store could not make durable (their requests got UNAVAILABLE)." },
    { "gc_services", S_GAUGE, "services", 1, "Service ids the broker knows (with live or retained leases)." },
    { "gc_uptime_seconds", S_GAUGE, "uptime_ms", 1000, "Seconds since the broker started." },
};
#define S_PLAIN_COUNT (sizeof (s_plain) / sizeof (s_plain [0]))

//  The STATS name of a per-command or per-code counter, as gt_broker_stats.c
//  names them: prefix + the wire name in lower case ("requests_renew_batch",
//  "errors_not_found"); "requests_malformed" for undecodable requests.
static void
s_stat_name (char *buffer, size_t size, const char *prefix, const char *wire_name)
{
    snprintf (buffer, size, "%s%s", prefix, wire_name ? wire_name : "malformed");
    for (char *p = buffer; *p; p++)
        *p = (char) tolower ((unsigned char) *p);
}

//  The command label: the wire name, "MALFORMED" for undecodable requests.
static const char *
s_command_label (gt_cmd_t cmd)
{
    return cmd == GT_CMD_NONE ? "MALFORMED" : gt_cmd_name (cmd);
}

//  --------------------------------------------------------------------------
//  Text building

typedef struct {
    char *data;                     //  text so far, NUL-terminated
    size_t size;                    //  its length
    size_t cap;                     //  bytes allocated
} s_text_t;

static void
s_reserve (s_text_t *text, size_t more)
{
    if (text->size + more + 1 > text->cap) {
        while (text->size + more + 1 > text->cap)
            text->cap = text->cap ? text->cap * 2 : 16384;
        text->data = (char *) realloc (text->data, text->cap);
        assert (text->data);
    }
}

static void
s_put (s_text_t *text, const char *string)
{
    size_t length = strlen (string);
    s_reserve (text, length);
    memcpy (text->data + text->size, string, length + 1);
    text->size += length;
}

static void
s_printf (s_text_t *text, const char *format, ...)
    __attribute__ ((format (printf, 2, 3)));

static void
s_printf (s_text_t *text, const char *format, ...)
{
    va_list args;
    va_start (args, format);
    va_list copy;
    va_copy (copy, args);
    int length = vsnprintf (NULL, 0, format, copy);
    va_end (copy);
    assert (length >= 0);
    s_reserve (text, (size_t) length);
    vsnprintf (text->data + text->size, (size_t) length + 1, format, args);
    va_end (args);
    text->size += (size_t) length;
}

//  A label value: backslash, double quote and newline escaped (0.0.4).
static void
s_put_label (s_text_t *text, const char *value)
{
    s_reserve (text, 2 * strlen (value));
    for (const char *p = value; *p; p++) {
        if (*p == '\\' || *p == '"') {
            text->data [text->size++] = '\\';
            text->data [text->size++] = *p;
        }
        else
        if (*p == '\n') {
            text->data [text->size++] = '\\';
            text->data [text->size++] = 'n';
        }
        else
            text->data [text->size++] = *p;
    }
    text->data [text->size] = 0;
}

//  value / scale as an exact decimal ("0.00005", "2.5", "3").
static void
s_put_scaled (s_text_t *text, uint64_t value, uint64_t scale)
{
    if (scale <= 1) {
        s_printf (text, "%" PRIu64, value);
        return;
    }
    uint64_t whole = value / scale, part = value % scale;
    if (part == 0) {
        s_printf (text, "%" PRIu64, whole);
        return;
    }
    //  Digits of part, as many as scale has zeros, trailing zeros cut
    char digits [24];
    size_t length = 0;
    for (uint64_t unit = scale / 10; unit >= 1 && length < sizeof (digits) - 1; unit /= 10) {
        digits [length++] = (char) ('0' + (part / unit) % 10);
        if (unit == 1)
            break;
    }
    while (length > 1 && digits [length - 1] == '0')
        length--;
    digits [length] = 0;
    s_printf (text, "%" PRIu64 ".%s", whole, digits);
}

static void
s_header (s_text_t *text, const char *name, const char *type, const char *help)
{
    s_printf (text, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

static uint64_t
s_stat (const gt_metrics_snapshot_t *snapshot, const char *names)
{
    //  "a|b|c": the first name present
    char buffer [256];
    snprintf (buffer, sizeof (buffer), "%s", names);
    char *save = NULL;
    for (char *name = strtok_r (buffer, "|", &save); name; name = strtok_r (NULL, "|", &save)) {
        uint64_t value;
        if (gt_metrics_stat (snapshot, name, &value))
            return value;
    }
    return 0;
}

//  The series of one histogram; labels is "" or 'name="value",' (escaped).
static void
s_put_histogram (s_text_t *text, const char *name, const char *labels,
                 const gt_histogram_t *histogram, uint64_t scale)
{
    for (size_t i = 0; i <= histogram->bound_count; i++) {
        s_printf (text, "%s_bucket{%sle=\"", name, labels);
        if (i < histogram->bound_count)
            s_put_scaled (text, histogram->bounds [i], scale);
        else
            s_put (text, "+Inf");
        s_printf (text, "\"} %" PRIu64 "\n", gt_histogram_cumulative (histogram, i));
    }
    //  Labels without the trailing comma for _sum and _count
    size_t length = strlen (labels);
    s_printf (text, "%s_sum%s%.*s%s ", name, length ? "{" : "", (int) (length ? length - 1 : 0),
              labels, length ? "}" : "");
    s_put_scaled (text, histogram->sum, scale);
    s_printf (text, "\n%s_count%s%.*s%s %" PRIu64 "\n", name, length ? "{" : "",
              (int) (length ? length - 1 : 0), labels, length ? "}" : "", histogram->count);
}

//  --------------------------------------------------------------------------
//  The exposition

char *
gt_metrics_render (const gt_metrics_snapshot_t *snapshot, size_t *size_p)
{
    s_text_t text = { NULL, 0, 0 };
    s_reserve (&text, 0);
    text.data [0] = 0;

    for (size_t i = 0; i < S_PLAIN_COUNT; i++) {
        const s_plain_t *metric = &s_plain [i];
        s_header (&text, metric->name, metric->type == S_COUNTER ? "counter" : "gauge", metric->help);
        s_printf (&text, "%s ", metric->name);
        s_put_scaled (&text, s_stat (snapshot, metric->stat), metric->scale);
        s_put (&text, "\n");
    }

    s_header (&text, "gc_store_up", "gauge", "1 if the store can make changes durable now, else 0.");
    s_printf (&text, "gc_store_up %d\n", snapshot->store_up ? 1 : 0);
    s_header (&text, "gc_build_info", "gauge", "Always 1; the broker's version in the label.");
    s_printf (&text, "gc_build_info{version=\"%s\",protocol=\"%d\"} 1\n",
              GT_VERSION_STRING, GT_PROTOCOL_VERSION);

    s_header (&text, "gc_requests_total", "counter",
              "Requests received, by command (MALFORMED: the body did not decode).");
    char stat [GT_METRICS_STAT_NAME];
    for (int cmd = 0; cmd < GT_CMD_COUNT_; cmd++) {
        s_printf (&text, "gc_requests_total{command=\"%s\"} ", s_command_label ((gt_cmd_t) cmd));
        s_stat_name (stat, sizeof (stat), "requests_", cmd == GT_CMD_NONE ? NULL : gt_cmd_name ((gt_cmd_t) cmd));
        s_put_scaled (&text, s_stat (snapshot, stat), 1);
        s_put (&text, "\n");
    }
    s_header (&text, "gc_request_errors_total", "counter", "Error replies, by code.");
    for (int code = 1; code < GT_CODE_COUNT_; code++) {
        s_printf (&text, "gc_request_errors_total{code=\"%s\"} ", gt_code_name ((gt_code_t) code));
        s_stat_name (stat, sizeof (stat), "errors_", gt_code_name ((gt_code_t) code));
        s_put_scaled (&text, s_stat (snapshot, stat), 1);
        s_put (&text, "\n");
    }

    s_header (&text, "gc_active_leases_by_type", "gauge", "Leases in state ACTIVE, by object type.");
    for (int type = 0; type < GT_TYPE_COUNT_; type++)
        s_printf (&text, "gc_active_leases_by_type{object_type=\"%s\"} %" PRIu64 "\n",
                  gt_object_type_name ((gt_object_type_t) type), snapshot->active_by_type [type]);

    s_header (&text, "gc_active_leases_by_service", "gauge",
              "Leases in state ACTIVE, by service: the 50 biggest services, the rest summed as _other.");
    uint64_t other = snapshot->services_other;
    for (size_t i = 0; i < snapshot->service_count; i++) {
        //  A service really named "_other" joins the sum: series stay unique
        if (streq (snapshot->services [i].name, "_other")) {
            other += snapshot->services [i].active;
            continue;
        }
        s_put (&text, "gc_active_leases_by_service{service=\"");
        s_put_label (&text, snapshot->services [i].name);
        s_printf (&text, "\"} %" PRIu64 "\n", snapshot->services [i].active);
    }
    s_printf (&text, "gc_active_leases_by_service{service=\"_other\"} %" PRIu64 "\n", other);

    s_header (&text, "gc_request_duration_seconds", "histogram",
              "From reading a request to sending its reply (durability wait included), by command.");
    for (int cmd = 0; cmd < GT_CMD_COUNT_; cmd++) {
        char labels [64];
        snprintf (labels, sizeof (labels), "command=\"%s\",", s_command_label ((gt_cmd_t) cmd));
        s_put_histogram (&text, "gc_request_duration_seconds", labels,
                         &snapshot->request_duration [cmd], 1000000);
    }
    s_header (&text, "gc_expiry_lateness_seconds", "histogram",
              "Expiry fire time minus the lease deadline (millisecond resolution).");
    s_put_histogram (&text, "gc_expiry_lateness_seconds", "", &snapshot->expiry_lateness, 1000000);
    s_header (&text, "gc_store_batch_size", "histogram", "Records per store commit (PostgreSQL store).");
    s_put_histogram (&text, "gc_store_batch_size", "", &snapshot->store_batch_size, 1);
    s_header (&text, "gc_store_commit_seconds", "histogram", "Duration of one store commit (PostgreSQL store).");
    s_put_histogram (&text, "gc_store_commit_seconds", "", &snapshot->store_commit, 1000000);

    *size_p = text.size;
    return text.data;
}

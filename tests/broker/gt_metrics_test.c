/*  gt_metrics_test.c — selftest of gt_metrics: the Prometheus text, the
    figures collected on the broker thread, snapshots for readers; and the
    stand-in broker loop (gt_metrics_test_broker) that gt_metrics_http's
    selftest uses too.  */
#include <czmq.h>
#include "gt_metrics.h"
#include "gt_broker_selftest.h"

//  The stand-in broker loop (see gt_broker_selftest.h)

void
gt_metrics_test_broker (zsock_t *pipe, void *args)
{
    gt_metrics_t *metrics = (gt_metrics_t *) args;
    zsock_signal (pipe, 0);
    while (true) {
        zmq_pollitem_t items [2] = {
            { zsock_resolve (pipe), 0, ZMQ_POLLIN, 0 },
            { NULL, gt_metrics_wake_fd (metrics), ZMQ_POLLIN, 0 }
        };
        long timeout = gt_metrics_poll_timeout (metrics, zclock_mono (), -1);
        if (zmq_poll (items, 2, timeout) == -1)
            break;
        if (items [0].revents & ZMQ_POLLIN) {
            char *command = zstr_recv (pipe);
            bool term = !command || streq (command, "$TERM");
            zstr_free (&command);
            if (term)
                break;
        }
        if (items [1].revents & ZMQ_POLLIN)
            gt_metrics_wake_drain (metrics);
        if (gt_metrics_tick (metrics, zclock_mono ())) {
            gt_metrics_snapshot_t *snapshot = gt_metrics_scratch (metrics);
            size_t index = 0;
            while (index < snapshot->stat_count
               && !streq (snapshot->stats [index].name, "test_publications"))
                index++;
            if (index == snapshot->stat_count) {
                assert (index < GT_METRICS_MAX_STATS);
                snprintf (snapshot->stats [index].name, GT_METRICS_STAT_NAME, "test_publications");
                snapshot->stats [index].value = 0;
                snapshot->stat_count++;
            }
            snapshot->stats [index].value++;
            gt_metrics_publish (metrics);
        }
    }
}

//  Check the exposition line by line: every sample's metric was declared
//  by a # TYPE line before it; return the value of the sample line that
//  starts with prefix (followed by a space), or -1.
static double
s_sample (const char *text, const char *prefix)
{
    size_t length = strlen (prefix);
    for (const char *line = text; *line; ) {
        const char *end = strchr (line, '\n');
        assert (end);               //  every line ends with a newline
        if ((size_t) (end - line) > length && memcmp (line, prefix, length) == 0 && line [length] == ' ')
            return atof (line + length + 1);
        line = end + 1;
    }
    return -1;
}

static void
s_test_render (void)
{
    gt_metrics_snapshot_t *snapshot = (gt_metrics_snapshot_t *) zmalloc (sizeof (gt_metrics_snapshot_t));
    assert (snapshot);
    snapshot->stat_count = 3;
    snprintf (snapshot->stats [0].name, GT_METRICS_STAT_NAME, "leases_created");
    snapshot->stats [0].value = 7;
    snprintf (snapshot->stats [1].name, GT_METRICS_STAT_NAME, "uptime_ms");
    snapshot->stats [1].value = 12345;
    snprintf (snapshot->stats [2].name, GT_METRICS_STAT_NAME, "requests_create");
    snapshot->stats [2].value = 9;
    for (int cmd = 0; cmd < GT_CMD_COUNT_; cmd++)
        gt_histogram_init (&snapshot->request_duration [cmd], gt_histogram_latency_us,
                           gt_histogram_latency_us_count);
    gt_histogram_observe (&snapshot->request_duration [GT_CMD_CREATE], 40);
    gt_histogram_observe (&snapshot->request_duration [GT_CMD_CREATE], 700);
    gt_histogram_observe (&snapshot->request_duration [GT_CMD_CREATE], 9000000);
    gt_histogram_init (&snapshot->expiry_lateness, gt_histogram_lateness_us, gt_histogram_lateness_us_count);
    gt_histogram_init (&snapshot->store_batch_size, gt_histogram_batch_size, gt_histogram_batch_size_count);
    gt_histogram_init (&snapshot->store_commit, gt_histogram_latency_us, gt_histogram_latency_us_count);
    snapshot->active_by_type [GT_TYPE_BLOB_STORAGE] = 4;
    snapshot->service_count = 3;
    snprintf (snapshot->services [0].name, sizeof (snapshot->services [0].name), "we\"ird\\svc\nx");
    snapshot->services [0].active = 5;
    snprintf (snapshot->services [1].name, sizeof (snapshot->services [1].name), "_other");
    snapshot->services [1].active = 2;
    snprintf (snapshot->services [2].name, sizeof (snapshot->services [2].name), "plain");
    snapshot->services [2].active = 1;
    snapshot->services_other = 10;
    snapshot->store_up = true;

    size_t size = 0;
    char *text = gt_metrics_render (snapshot, &size);
    assert (text && size == strlen (text));
    //  Plain figures from STATS; absent ones are 0; ms scaled to seconds
    assert (s_sample (text, "gc_leases_created_total") == 7);
    assert (s_sample (text, "gc_leases_expired_total") == 0);
    assert (s_sample (text, "gc_cleanup_failures_total") == 0);
    assert (strstr (text, "\ngc_uptime_seconds 12.345\n"));
    assert (s_sample (text, "gc_store_up") == 1);
    assert (s_sample (text, "gc_requests_total{command=\"CREATE\"}") == 9);
    assert (s_sample (text, "gc_requests_total{command=\"MALFORMED\"}") == 0);
    assert (s_sample (text, "gc_request_errors_total{code=\"NOT_FOUND\"}") == 0);
    assert (s_sample (text, "gc_active_leases_by_type{object_type=\"BLOB_STORAGE\"}") == 4);
    assert (strstr (text, "gc_build_info{version=\"" GT_VERSION_STRING "\""));
    //  Label values escaped: backslash, double quote, newline
    assert (s_sample (text, "gc_active_leases_by_service{service=\"we\\\"ird\\\\svc\\nx\"}") == 5);
    assert (s_sample (text, "gc_active_leases_by_service{service=\"plain\"}") == 1);
    //  A service named "_other" folds into the sum: one _other series
    assert (s_sample (text, "gc_active_leases_by_service{service=\"_other\"}") == 12);
    char *first = strstr (text, "service=\"_other\"");
    assert (first && !strstr (first + 1, "service=\"_other\""));
    //  Histogram: cumulative buckets, exact decimal bounds, +Inf == _count
    const char *create = "gc_request_duration_seconds_bucket{command=\"CREATE\",le=";
    char name [160];
    snprintf (name, sizeof (name), "%s\"0.00005\"}", create);
    assert (s_sample (text, name) == 1);
    snprintf (name, sizeof (name), "%s\"0.001\"}", create);
    assert (s_sample (text, name) == 2);
    snprintf (name, sizeof (name), "%s\"2.5\"}", create);
    assert (s_sample (text, name) == 2);
    snprintf (name, sizeof (name), "%s\"+Inf\"}", create);
    assert (s_sample (text, name) == 3);
    assert (s_sample (text, "gc_request_duration_seconds_count{command=\"CREATE\"}") == 3);
    assert (strstr (text, "\ngc_request_duration_seconds_sum{command=\"CREATE\"} 9.00074\n"));
    assert (s_sample (text, "gc_expiry_lateness_seconds_count") == 0);
    assert (strstr (text, "gc_expiry_lateness_seconds_bucket{le=\"0.001\"} 0\n"));
    assert (strstr (text, "gc_store_batch_size_bucket{le=\"10000\"} 0\n"));
    //  Every sample line belongs to a metric declared just before by # TYPE
    char declared [128] = "";
    for (const char *line = text; *line; ) {
        const char *end = strchr (line, '\n');
        if (strncmp (line, "# TYPE ", 7) == 0)
            sscanf (line + 7, "%127s", declared);
        else
        if (*line != '#') {
            assert (*declared);
            assert (strncmp (line, declared, strlen (declared)) == 0);
        }
        line = end + 1;
    }
    free (text);
    free (snapshot);
}

void
gt_metrics_test (bool verbose)
{
    (void) verbose;
    s_test_render ();
    gt_metrics_t *metrics = gt_metrics_new ();
    assert (gt_metrics_wake_fd (metrics) == -1);

    //  Request durations land in their command's histogram
    gt_metrics_request_done (metrics, GT_CMD_CREATE, zclock_usecs ());
    gt_metrics_request_done (metrics, GT_CMD_NONE, zclock_usecs () - 3000000);
    assert (gt_metrics_request_duration (metrics, GT_CMD_CREATE)->count == 1);
    assert (gt_metrics_request_duration (metrics, GT_CMD_CREATE)->counts [0] == 1);
    const gt_histogram_t *malformed = gt_metrics_request_duration (metrics, GT_CMD_NONE);
    assert (malformed->count == 1 && malformed->counts [malformed->bound_count] == 1);

    //  Events move the by-type gauges and the lateness histogram
    gt_lease_info_t lease;
    memset (&lease, 0, sizeof (lease));
    lease.object_type = GT_TYPE_TEMPORARY_FILE;
    gt_metrics_lease_event (metrics, GT_EVENT_LEASE_CREATED, &lease);
    gt_metrics_lease_event (metrics, GT_EVENT_LEASE_CREATED, &lease);
    lease.renewed_at = 1000;
    lease.ttl_ms = 50;
    lease.expires_at = 1057;        //  7 ms late
    gt_metrics_lease_event (metrics, GT_EVENT_LEASE_EXPIRED, &lease);
    assert (gt_metrics_active_by_type (metrics) [GT_TYPE_TEMPORARY_FILE] == 1);
    const gt_histogram_t *lateness = gt_metrics_expiry_lateness (metrics);
    assert (lateness->count == 1 && lateness->sum == 7000 && lateness->counts [3] == 1);
    //  A gauge never goes below zero, even if events and counts disagree
    lease.object_type = GT_TYPE_CUSTOM;
    gt_metrics_lease_event (metrics, GT_EVENT_LEASE_RELEASED, &lease);
    assert (gt_metrics_active_by_type (metrics) [GT_TYPE_CUSTOM] == 0);
    assert (gt_metrics_census_due (metrics, 0));
    assert (!gt_metrics_census_due (metrics, 0));
    assert (gt_metrics_census_due (metrics, 1));
    assert (gt_metrics_store_change (metrics, true) == 0);
    assert (gt_metrics_store_change (metrics, true) == 0);
    assert (gt_metrics_store_change (metrics, false) == -1);
    assert (gt_metrics_store_change (metrics, false) == 0);
    assert (gt_metrics_store_change (metrics, true) == 1);
    uint64_t counts [GT_TYPE_COUNT_] = { 0, 0, 0, 0, 0, 0, 9 };
    gt_metrics_set_active_by_type (metrics, counts);
    assert (gt_metrics_active_by_type (metrics) [GT_TYPE_CUSTOM] == 9);

    //  Nothing asked: no snapshot due; the expiry line is written once
    int64_t now = zclock_mono ();
    assert (!gt_metrics_tick (metrics, now));
    assert (gt_metrics_poll_timeout (metrics, now, 5000) == 5000);
    gt_metrics_lease_event (metrics, GT_EVENT_LEASE_EXPIRED, &lease);
    //  Next line due a second after the first
    long timeout = gt_metrics_poll_timeout (metrics, now, 5000);
    assert (timeout > 0 && timeout <= GT_METRICS_EXPIRY_LOG_MS);
    assert (gt_metrics_poll_timeout (metrics, now + GT_METRICS_EXPIRY_LOG_MS, -1) == 0);

    //  The scratch snapshot carries the collected figures
    gt_metrics_snapshot_t *scratch = gt_metrics_scratch (metrics);
    assert (scratch->request_duration [GT_CMD_CREATE].count == 1);
    assert (scratch->active_by_type [GT_TYPE_CUSTOM] == 8);    //  9, then one CUSTOM expired
    assert (scratch->expiry_lateness.count == 2);

    //  A reader with nobody serving the wake pipe: the latest (none) after the wait
    gt_metrics_snapshot_t *read = (gt_metrics_snapshot_t *) zmalloc (sizeof (gt_metrics_snapshot_t));
    assert (read);
    assert (!gt_metrics_read (metrics, read, 10));
    assert (read->generation == 0);
    gt_metrics_publish (metrics);
    assert (!gt_metrics_read (metrics, read, 0));
    assert (read->generation == 1 && read->request_duration [GT_CMD_CREATE].count == 1);
    gt_metrics_destroy (&metrics);
    assert (metrics == NULL);

    //  With a broker loop answering the wake pipe: every read is fresh, and
    //  publications are at least GT_METRICS_MIN_INTERVAL_MS apart
    metrics = gt_metrics_new ();
    char err [256];
    assert (gt_metrics_wake_fd (metrics) == -1);
    assert (gt_metrics_readers_open (metrics, err, sizeof (err)) == 0);
    assert (gt_metrics_readers_open (metrics, err, sizeof (err)) == 0);     //  again: the same pipe
    assert (gt_metrics_wake_fd (metrics) >= 0);
    zactor_t *broker = zactor_new (gt_metrics_test_broker, metrics);
    assert (broker);
    uint64_t value = 0, previous = 0;
    int64_t previous_at = 0;
    for (int round = 0; round < 3; round++) {
        assert (gt_metrics_read (metrics, read, 5000));
        assert (gt_metrics_stat (read, "test_publications", &value));
        assert (value == previous + 1);
        assert (read->generation == value);
        if (previous_at)
            assert (read->taken_at - previous_at >= GT_METRICS_MIN_INTERVAL_MS);
        previous = value;
        previous_at = read->taken_at;
    }
    assert (!gt_metrics_stat (read, "absent", &value) && value == 0);
    zactor_destroy (&broker);
    gt_metrics_destroy (&metrics);
    free (read);
}

/*  gt_metrics.c — metrics collection and snapshot exchange (see gt_metrics.h).
    Rendering is in gt_metrics_render.c.  */
#include <czmq.h>
#include <fcntl.h>
#include <pthread.h>
#include "gt_metrics.h"
#include "gt_log.h"

struct gt_metrics_t {
    //  Broker thread only
    gt_histogram_t request_duration [GT_CMD_COUNT_];    //  us by command; [GT_CMD_NONE] = malformed
    gt_histogram_t expiry_lateness;         //  us
    uint64_t active_by_type [GT_TYPE_COUNT_];           //  ACTIVE leases by object type
    uint64_t expired_unlogged;              //  expiries not yet in a log line
    int64_t expiry_logged_at;               //  mono ms of the last expiry line (0: never)
    int64_t published_at;                   //  mono ms of the last publication (0: never)
    bool wanted;                            //  a reader woke us: publish when allowed
    uint64_t census_failures;               //  failed batches at the last census (UINT64_MAX: none yet)
    int store_state;                        //  store last seen: 1 up, 0 down, -1 never looked
    gt_metrics_snapshot_t *scratch;         //  the snapshot being filled
    int wake [2];                           //  pipe readers write to; -1 until readers are opened
    //  Shared with readers, under lock
    pthread_mutex_t lock;                   //  guards what follows
    pthread_cond_t published;               //  signalled on each publication
    gt_metrics_snapshot_t *shared;          //  the latest publication
    bool asked;                             //  a wake byte is on its way
    bool stopping;                          //  destroy has begun
};

gt_metrics_t *
gt_metrics_new (void)
{
    gt_metrics_t *self = (gt_metrics_t *) zmalloc (sizeof (gt_metrics_t));
    assert (self);
    for (int cmd = 0; cmd < GT_CMD_COUNT_; cmd++)
        gt_histogram_init (&self->request_duration [cmd], gt_histogram_latency_us,
                           gt_histogram_latency_us_count);
    gt_histogram_init (&self->expiry_lateness, gt_histogram_lateness_us, gt_histogram_lateness_us_count);
    self->scratch = (gt_metrics_snapshot_t *) zmalloc (sizeof (gt_metrics_snapshot_t));
    self->shared = (gt_metrics_snapshot_t *) zmalloc (sizeof (gt_metrics_snapshot_t));
    assert (self->scratch && self->shared);
    self->wake [0] = self->wake [1] = -1;
    self->census_failures = UINT64_MAX;
    self->store_state = -1;
    pthread_mutex_init (&self->lock, NULL);
    pthread_cond_init (&self->published, NULL);
    return self;
}

void
gt_metrics_destroy (gt_metrics_t **self_p)
{
    assert (self_p);
    gt_metrics_t *self = *self_p;
    if (!self)
        return;
    gt_metrics_stop (self);
    if (self->wake [0] >= 0) {
        close (self->wake [0]);
        close (self->wake [1]);
    }
    pthread_cond_destroy (&self->published);
    pthread_mutex_destroy (&self->lock);
    free (self->scratch);
    free (self->shared);
    free (self);
    *self_p = NULL;
}

void
gt_metrics_request_done (gt_metrics_t *self, gt_cmd_t cmd, int64_t received_us)
{
    if (cmd >= GT_CMD_COUNT_)
        cmd = GT_CMD_NONE;
    int64_t elapsed = zclock_usecs () - received_us;
    gt_histogram_observe (&self->request_duration [cmd], elapsed > 0 ? (uint64_t) elapsed : 0);
}

void
gt_metrics_lease_event (gt_metrics_t *self, gt_event_kind_t kind, const gt_lease_info_t *lease)
{
    size_t type = lease->object_type < GT_TYPE_COUNT_ ? (size_t) lease->object_type : GT_TYPE_UNKNOWN;
    if (kind == GT_EVENT_LEASE_CREATED)
        self->active_by_type [type]++;
    else
    if (kind == GT_EVENT_LEASE_RELEASED || kind == GT_EVENT_LEASE_EXPIRED) {
        if (self->active_by_type [type])
            self->active_by_type [type]--;
    }
    if (kind == GT_EVENT_LEASE_EXPIRED) {
        //  The deadline is renewed_at + ttl_ms and the end time the moment
        //  the expiry fired, both wall ms (the engine's own resolution)
        uint64_t deadline = lease->renewed_at + lease->ttl_ms;
        uint64_t late_ms = lease->expires_at > deadline ? lease->expires_at - deadline : 0;
        gt_histogram_observe (&self->expiry_lateness, late_ms * 1000);
        self->expired_unlogged++;
    }
}

void
gt_metrics_set_active_by_type (gt_metrics_t *self, const uint64_t counts [GT_TYPE_COUNT_])
{
    memcpy (self->active_by_type, counts, sizeof (self->active_by_type));
}

bool
gt_metrics_census_due (gt_metrics_t *self, uint64_t failures)
{
    bool due = self->census_failures != failures;
    self->census_failures = failures;
    return due;
}

int
gt_metrics_store_change (gt_metrics_t *self, bool up)
{
    int previous = self->store_state;
    self->store_state = up ? 1 : 0;
    if (previous == (up ? 1 : 0) || (previous == -1 && up))
        return 0;
    return up ? 1 : -1;
}

const gt_histogram_t *
gt_metrics_request_duration (gt_metrics_t *self, gt_cmd_t cmd)
{
    return &self->request_duration [cmd < GT_CMD_COUNT_ ? cmd : GT_CMD_NONE];
}

const gt_histogram_t *
gt_metrics_expiry_lateness (gt_metrics_t *self)
{
    return &self->expiry_lateness;
}

const uint64_t *
gt_metrics_active_by_type (gt_metrics_t *self)
{
    return self->active_by_type;
}

void
gt_metrics_stop (gt_metrics_t *self)
{
    pthread_mutex_lock (&self->lock);
    self->stopping = true;
    pthread_cond_broadcast (&self->published);
    pthread_mutex_unlock (&self->lock);
}

int
gt_metrics_readers_open (gt_metrics_t *self, char *err, size_t err_size)
{
    if (self->wake [0] < 0) {
        if (pipe (self->wake) == -1) {
            snprintf (err, err_size, "pipe: %s", strerror (errno));
            return -1;
        }
        for (int end = 0; end < 2; end++) {
            fcntl (self->wake [end], F_SETFL, fcntl (self->wake [end], F_GETFL) | O_NONBLOCK);
            fcntl (self->wake [end], F_SETFD, FD_CLOEXEC);
        }
    }
    return 0;
}

int
gt_metrics_wake_fd (gt_metrics_t *self)
{
    return self->wake [0];
}

void
gt_metrics_wake_drain (gt_metrics_t *self)
{
    char bytes [64];
    while (read (self->wake [0], bytes, sizeof (bytes)) > 0)
        ;
    self->wanted = true;
}

bool
gt_metrics_tick (gt_metrics_t *self, int64_t now)
{
    if (self->expired_unlogged
    && (self->expiry_logged_at == 0 || now - self->expiry_logged_at >= GT_METRICS_EXPIRY_LOG_MS)) {
        char count [24];
        snprintf (count, sizeof (count), "%" PRIu64, self->expired_unlogged);
        gt_log_kv (GT_LOG_INFO, "broker", "leases expired", "count", count, NULL);
        self->expired_unlogged = 0;
        self->expiry_logged_at = now;
    }
    return self->wanted
        && (self->published_at == 0 || now - self->published_at >= GT_METRICS_MIN_INTERVAL_MS);
}

long
gt_metrics_poll_timeout (gt_metrics_t *self, int64_t now, long timeout)
{
    int64_t due = -1;
    if (self->wanted)
        due = self->published_at + GT_METRICS_MIN_INTERVAL_MS;
    if (self->expired_unlogged) {
        int64_t log_due = self->expiry_logged_at + GT_METRICS_EXPIRY_LOG_MS;
        due = due < 0 || log_due < due ? log_due : due;
    }
    if (due < 0)
        return timeout;
    long wait = due > now ? (long) (due - now) : 0;
    return timeout < 0 || wait < timeout ? wait : timeout;
}

gt_metrics_snapshot_t *
gt_metrics_scratch (gt_metrics_t *self)
{
    gt_metrics_snapshot_t *scratch = self->scratch;
    memcpy (scratch->request_duration, self->request_duration, sizeof (self->request_duration));
    scratch->expiry_lateness = self->expiry_lateness;
    memcpy (scratch->active_by_type, self->active_by_type, sizeof (self->active_by_type));
    return scratch;
}

void
gt_metrics_publish (gt_metrics_t *self)
{
    int64_t now = zclock_mono ();
    self->scratch->taken_at = now;
    self->published_at = now;
    self->wanted = false;
    pthread_mutex_lock (&self->lock);
    self->scratch->generation = self->shared->generation + 1;
    memcpy (self->shared, self->scratch, sizeof (gt_metrics_snapshot_t));
    self->asked = false;
    pthread_cond_broadcast (&self->published);
    pthread_mutex_unlock (&self->lock);
}

bool
gt_metrics_read (gt_metrics_t *self, gt_metrics_snapshot_t *out, int wait_ms)
{
    struct timespec deadline;
    clock_gettime (CLOCK_REALTIME, &deadline);
    deadline.tv_sec += wait_ms / 1000;
    deadline.tv_nsec += (long) (wait_ms % 1000) * 1000000L;
    if (deadline.tv_nsec >= 1000000000L) {
        deadline.tv_sec++;
        deadline.tv_nsec -= 1000000000L;
    }
    pthread_mutex_lock (&self->lock);
    uint64_t target = self->shared->generation + 1;
    if (!self->asked && !self->stopping && self->wake [1] >= 0) {
        //  Non-blocking: a full pipe already wakes the broker
        if (write (self->wake [1], "!", 1) == 1 || errno == EAGAIN)
            self->asked = true;
    }
    while (self->shared->generation < target && !self->stopping) {
        if (pthread_cond_timedwait (&self->published, &self->lock, &deadline) == ETIMEDOUT)
            break;
    }
    bool fresh = self->shared->generation >= target;
    memcpy (out, self->shared, sizeof (gt_metrics_snapshot_t));
    pthread_mutex_unlock (&self->lock);
    return fresh;
}

bool
gt_metrics_stat (const gt_metrics_snapshot_t *snapshot, const char *name, uint64_t *value_p)
{
    for (size_t i = 0; i < snapshot->stat_count; i++)
        if (streq (snapshot->stats [i].name, name)) {
            *value_p = snapshot->stats [i].value;
            return true;
        }
    *value_p = 0;
    return false;
}

//  --------------------------------------------------------------------------
//  Self test

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

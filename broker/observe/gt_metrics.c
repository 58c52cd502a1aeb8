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

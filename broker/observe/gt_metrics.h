/*  gt_metrics.h — the broker's metrics: collection on the broker thread,
    snapshots for readers, Prometheus text rendering.

    The broker thread owns every figure (no locks on its request path).
    When a reader (the HTTP server's threads, gt_metrics_http) wants
    figures it calls gt_metrics_read: that wakes the broker through a pipe
    (gt_metrics_wake_fd, in the broker's poll set) and waits; the broker,
    at the end of its loop turn and at most every GT_METRICS_MIN_INTERVAL_MS,
    fills a snapshot (a plain struct) and publishes it under a mutex
    (gt_metrics_publish).  So a scrape sees everything the broker answered
    before the scrape arrived, and a broker hammered by scrapes copies a
    snapshot at most ten times a second.  If the broker does not publish
    within the reader's wait, the reader gets the latest snapshot.

    The HTTP server (gt_metrics_http) is built on top of this module and
    owned by the broker; store figures come from the store itself
    (gt_store_figures), copied into the snapshot by the broker.  */
#ifndef GT_METRICS_H_INCLUDED
#define GT_METRICS_H_INCLUDED

#include <czmq.h>
#include "gt_msg.h"
#include "gt_histogram.h"

#ifdef __cplusplus
extern "C" {
#endif

#define GT_METRICS_MIN_INTERVAL_MS  100     //  between two publications
#define GT_METRICS_WAIT_MS          1000    //  a reader waits this long for a fresh snapshot
#define GT_METRICS_MAX_STATS        256     //  STATS names carried in a snapshot
#define GT_METRICS_TOP_SERVICES     50      //  services with their own series
#define GT_METRICS_STAT_NAME        64      //  longest STATS name + 1
#define GT_METRICS_EXPIRY_LOG_MS    1000    //  at most one "expired" log line per second

typedef struct gt_metrics_t gt_metrics_t;

typedef struct {
    char name [GT_METRICS_STAT_NAME];       //  STATS name
    uint64_t value;                         //  its value
} gt_metrics_stat_t;

typedef struct {
    char name [GT_MAX_SERVICE_ID + 1];      //  service id
    uint64_t active;                        //  its ACTIVE leases
} gt_metrics_service_t;

//  Everything a reader renders: a plain struct, copied whole.
typedef struct {
    uint64_t generation;                    //  publications so far (0: none yet)
    int64_t taken_at;                       //  zclock_mono ms when filled
    size_t stat_count;                      //  entries in stats
    gt_metrics_stat_t stats [GT_METRICS_MAX_STATS];     //  the STATS map (GTLP.md §5.8)
    gt_histogram_t request_duration [GT_CMD_COUNT_];    //  us, read to reply sent; [GT_CMD_NONE] = malformed
    gt_histogram_t expiry_lateness;         //  us, fire time minus deadline
    gt_histogram_t store_batch_size;        //  records per store commit
    gt_histogram_t store_commit;            //  us per store commit
    uint64_t active_by_type [GT_TYPE_COUNT_];           //  ACTIVE leases by object type
    size_t service_count;                   //  entries in services
    gt_metrics_service_t services [GT_METRICS_TOP_SERVICES];    //  most active first
    uint64_t services_other;                //  ACTIVE leases of all other services
    char store_name [16];                   //  "memory", "postgres", ... ("" if none)
    bool store_open;                        //  the store was opened and recovered
    bool store_up;                          //  ... and can write now
    bool requests_bound;                    //  the ROUTER is bound
    bool events_bound;                      //  the PUB is bound
} gt_metrics_snapshot_t;

//  --------------------------------------------------------------------------
//  Broker side (one thread)

gt_metrics_t *gt_metrics_new (void);
//  Readers waiting get the latest snapshot: stop the HTTP server on it first.
void gt_metrics_destroy (gt_metrics_t **self_p);

//  A request read at received_us (zclock_usecs) got its reply sent now.
//  cmd GT_CMD_NONE = a malformed request.
void gt_metrics_request_done (gt_metrics_t *self, gt_cmd_t cmd, int64_t received_us);
//  An event was made (lease gauges by type, expiry lateness, the expiry log).
void gt_metrics_lease_event (gt_metrics_t *self, gt_event_kind_t kind, const gt_lease_info_t *lease);
//  Replace the ACTIVE-by-type gauges with a fresh count (after a rollback or
//  a recovery, which change leases without events).
void gt_metrics_set_active_by_type (gt_metrics_t *self, const uint64_t counts [GT_TYPE_COUNT_]);
//  True on the first call and whenever failures (the broker's count of
//  failed store batches) changed since the previous call: the by-type
//  gauges need a fresh count.
bool gt_metrics_census_due (gt_metrics_t *self, uint64_t failures);
//  Note whether the store can write: -1 it just became unable (or was
//  unable at the first call), +1 it just recovered, 0 no change.
int gt_metrics_store_change (gt_metrics_t *self, bool up);
const gt_histogram_t *gt_metrics_request_duration (gt_metrics_t *self, gt_cmd_t cmd);
const gt_histogram_t *gt_metrics_expiry_lateness (gt_metrics_t *self);
const uint64_t *gt_metrics_active_by_type (gt_metrics_t *self);

//  Let readers in (gt_metrics_read): opens the wake pipe the broker then
//  polls.  0, or -1 with a message in err.  Again: 0, the same pipe.
int gt_metrics_readers_open (gt_metrics_t *self, char *err, size_t err_size);
//  Readers waiting return at once, with the latest snapshot, from now on
//  (the broker is going away; gt_metrics_destroy does it too).
void gt_metrics_stop (gt_metrics_t *self);
//  Readable when a reader wants a snapshot (poll it), or -1 before
//  gt_metrics_readers_open.
int gt_metrics_wake_fd (gt_metrics_t *self);
//  The wake fd was readable: drain it and note the request.
void gt_metrics_wake_drain (gt_metrics_t *self);
//  Once per loop turn, at monotonic ms now: true if a snapshot is due
//  (asked, and the minimum interval has passed).  Also writes the expiry
//  log line when one is due.
bool gt_metrics_tick (gt_metrics_t *self, int64_t now);
//  Cap a poll timeout (ms, -1 = none) so that due work (a wanted snapshot,
//  an expiry log line) happens on time.
long gt_metrics_poll_timeout (gt_metrics_t *self, int64_t now, long timeout);
//  The broker's own snapshot to fill before gt_metrics_publish.  The
//  histograms and gauges kept here are already copied in.
gt_metrics_snapshot_t *gt_metrics_scratch (gt_metrics_t *self);
//  Publish the scratch snapshot to readers.
void gt_metrics_publish (gt_metrics_t *self);

//  --------------------------------------------------------------------------
//  Reader side (any thread)

//  Ask the broker for a fresh snapshot and wait up to wait_ms for it; copy
//  the newest one into out.  True if it is fresh; false if the wait ran
//  out (out is the latest; out->generation == 0 if there was none).
bool gt_metrics_read (gt_metrics_t *self, gt_metrics_snapshot_t *out, int wait_ms);

//  The value of STATS name in a snapshot; false (and 0) if absent.
bool gt_metrics_stat (const gt_metrics_snapshot_t *snapshot, const char *name, uint64_t *value_p);
//  The Prometheus text exposition (format 0.0.4) of a snapshot; a
//  malloc'd NUL-terminated string.
char *gt_metrics_render (const gt_metrics_snapshot_t *snapshot, size_t *size_p);
#define GT_METRICS_CONTENT_TYPE     "text/plain; version=0.0.4; charset=utf-8"

#ifdef __cplusplus
}
#endif
#endif

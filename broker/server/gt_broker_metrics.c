/*  gt_broker_metrics.c — the broker's side of metrics (see gt_broker_metrics.h).  */
#include <czmq.h>
#include <ctype.h>
#include <pthread.h>
#include "gt_broker.h"
#include "gt_leases.h"
#include "gt_events.h"
#include "gt_store.h"
#include "gt_broker_metrics.h"
#include "gt_metrics_http.h"
#include "gt_log.h"

//  --------------------------------------------------------------------------
//  STATS names that depend on the command and type enums: built once per
//  process (several brokers may run in one process), static afterwards.

enum { S_DURATION_COUNT, S_DURATION_SUM, S_DURATION_P50, S_DURATION_P99, S_DURATION_NAMES };
static char s_duration_names [GT_CMD_COUNT_][S_DURATION_NAMES][GT_METRICS_STAT_NAME];
static char s_type_names [GT_TYPE_COUNT_][GT_METRICS_STAT_NAME];
static pthread_once_t s_names_once = PTHREAD_ONCE_INIT;

static void
s_lower (char *text)
{
    for (char *p = text; *p; p++)
        *p = (char) tolower ((unsigned char) *p);
}

static void
s_names_init (void)
{
    static const char *formats [S_DURATION_NAMES] = {
        "request_duration_count_%s", "request_duration_sum_us_%s",
        "request_duration_p50_us_%s", "request_duration_p99_us_%s"
    };
    for (int cmd = 0; cmd < GT_CMD_COUNT_; cmd++) {
        const char *name = cmd == GT_CMD_NONE ? "malformed" : gt_cmd_name ((gt_cmd_t) cmd);
        for (int which = 0; which < S_DURATION_NAMES; which++) {
            snprintf (s_duration_names [cmd][which], GT_METRICS_STAT_NAME, formats [which], name);
            s_lower (s_duration_names [cmd][which]);
        }
    }
    for (int type = 0; type < GT_TYPE_COUNT_; type++) {
        snprintf (s_type_names [type], GT_METRICS_STAT_NAME, "active_leases_%s",
                  gt_object_type_name ((gt_object_type_t) type));
        s_lower (s_type_names [type]);
    }
}

//  --------------------------------------------------------------------------
//  The object

struct _gt_broker_metrics_t {
    gt_metrics_t *metrics;          //  the broker's figures (borrowed)
    gt_metrics_http_t *http;        //  the HTTP endpoint on them, or NULL
    gt_leases_t *leases;            //  the lease engine (borrowed), for the census, or NULL
    gt_store_t *store;              //  the store (borrowed), or NULL
    gt_broker_metrics_source_t source;  //  the rest of the broker's state, asked for
};

gt_broker_metrics_t *
gt_broker_metrics_new (gt_metrics_t *metrics, const gt_broker_metrics_source_t *source)
{
    assert (metrics && source && source->stats && source->failures && source->bound);
    gt_broker_metrics_t *self = (gt_broker_metrics_t *) zmalloc (sizeof (gt_broker_metrics_t));
    assert (self);
    self->metrics = metrics;
    self->source = *source;
    return self;
}

void
gt_broker_metrics_destroy (gt_broker_metrics_t **self_p)
{
    assert (self_p);
    gt_broker_metrics_t *self = *self_p;
    if (self) {
        gt_metrics_http_destroy (&self->http);     //  joins its threads: nobody reads after this
        free (self);
        *self_p = NULL;
    }
}

void
gt_broker_metrics_attach (gt_broker_metrics_t *self, gt_leases_t *leases, gt_store_t *store)
{
    assert (self);
    self->leases = leases;
    self->store = store;
}

//  --------------------------------------------------------------------------
//  Census

//  Recount the ACTIVE-by-type gauges when events cannot be trusted: at the
//  first look (after recovery) and after a failed batch (rolled back).
static void
s_census_types (gt_broker_metrics_t *self)
{
    if (self->leases && gt_metrics_census_due (self->metrics, self->source.failures (self->source.ctx))) {
        uint64_t counts [GT_TYPE_COUNT_];
        gt_leases_census_types (self->leases, counts);
        gt_metrics_set_active_by_type (self->metrics, counts);
    }
}

//  The biggest services: a min-heap of GT_METRICS_TOP_SERVICES entries whose
//  root is the least important kept; everything else is summed.
typedef struct {
    gt_metrics_snapshot_t *snapshot;    //  services [] is the heap
    uint64_t other;                     //  ACTIVE leases of services not kept
} s_top_t;

//  a ranks below b: fewer leases, or as many and a later name
static bool
s_below (const gt_metrics_service_t *a, const gt_metrics_service_t *b)
{
    return a->active < b->active || (a->active == b->active && strcmp (a->name, b->name) > 0);
}

static void
s_heap_swap (gt_metrics_service_t *a, gt_metrics_service_t *b)
{
    gt_metrics_service_t swap = *a;
    *a = *b;
    *b = swap;
}

static void
s_top_add (void *ctx, const char *service_id, uint64_t active)
{
    s_top_t *top = (s_top_t *) ctx;
    gt_metrics_service_t *heap = top->snapshot->services;
    size_t *size = &top->snapshot->service_count;
    gt_metrics_service_t entry;
    snprintf (entry.name, sizeof (entry.name), "%s", service_id);
    entry.active = active;
    if (*size < GT_METRICS_TOP_SERVICES) {
        size_t at = (*size)++;
        heap [at] = entry;
        while (at > 0 && s_below (&heap [at], &heap [(at - 1) / 2])) {
            s_heap_swap (&heap [at], &heap [(at - 1) / 2]);
            at = (at - 1) / 2;
        }
        return;
    }
    if (!s_below (&heap [0], &entry)) {
        top->other += active;
        return;
    }
    top->other += heap [0].active;
    heap [0] = entry;
    size_t at = 0;
    while (true) {
        size_t left = 2 * at + 1, right = left + 1, lowest = at;
        if (left < *size && s_below (&heap [left], &heap [lowest]))
            lowest = left;
        if (right < *size && s_below (&heap [right], &heap [lowest]))
            lowest = right;
        if (lowest == at)
            break;
        s_heap_swap (&heap [at], &heap [lowest]);
        at = lowest;
    }
}

static int
s_compare_services (const void *a, const void *b)
{
    //  Most important first
    const gt_metrics_service_t *left = (const gt_metrics_service_t *) a;
    const gt_metrics_service_t *right = (const gt_metrics_service_t *) b;
    return s_below (right, left) ? -1 : s_below (left, right) ? 1 : 0;
}

//  --------------------------------------------------------------------------
//  Snapshots

static void
s_publish (gt_broker_metrics_t *self)
{
    s_census_types (self);
    gt_metrics_snapshot_t *snapshot = gt_metrics_scratch (self->metrics);
    snapshot->stat_count = 0;
    snapshot->service_count = 0;
    snapshot->services_other = 0;
    if (self->leases) {
        size_t count = 0;
        gt_stat_t *stats = self->source.stats (self->source.ctx, &count);
        for (size_t i = 0; i < count && snapshot->stat_count < GT_METRICS_MAX_STATS; i++) {
            gt_metrics_stat_t *stat = &snapshot->stats [snapshot->stat_count++];
            snprintf (stat->name, sizeof (stat->name), "%s", stats [i].name);
            stat->value = stats [i].value;
        }
        free (stats);
        s_top_t top = { snapshot, 0 };
        gt_leases_census_services (self->leases, s_top_add, &top);
        qsort (snapshot->services, snapshot->service_count, sizeof (gt_metrics_service_t),
               s_compare_services);
        snapshot->services_other = top.other;
    }
    snprintf (snapshot->store_name, sizeof (snapshot->store_name), "%s",
              self->store ? gt_store_name (self->store) : "");
    snapshot->store_open = self->store != NULL;
    gt_store_figures_t store;
    gt_store_figures (self->store, &store);
    snapshot->store_batch_size = store.batch_size;
    snapshot->store_commit = store.commit_us;
    snapshot->store_up = self->store && gt_store_healthy (self->store);
    self->source.bound (self->source.ctx, &snapshot->requests_bound, &snapshot->events_bound);
    gt_metrics_publish (self->metrics);
}

int
gt_broker_metrics_serve (gt_broker_metrics_t *self, const char *endpoint)
{
    char host [256];
    int port = 0;
    if (!gt_metrics_http_parse_endpoint (endpoint, host, sizeof (host), &port)) {
        gt_log_error ("broker", "METRICS: '%s' is not http://host:port (port * for any)",
                      endpoint ? endpoint : "");
        return -1;
    }
    if (self->http) {
        gt_log_error ("broker", "METRICS: already serving on port %d", gt_metrics_http_port (self->http));
        return -1;
    }
    char err [256] = "";
    self->http = gt_metrics_http_new (self->metrics, host, port, err, sizeof (err));
    if (!self->http) {
        gt_log_error ("broker", "%s", err);
        return -1;
    }
    return gt_metrics_http_port (self->http);
}

void
gt_broker_metrics_tick (gt_broker_metrics_t *self)
{
    if (self->store) {
        int change = gt_metrics_store_change (self->metrics, gt_store_healthy (self->store));
        if (change < 0)
            gt_log_kv (GT_LOG_WARN, "broker", "store degraded: requests that change state get UNAVAILABLE",
                       "store", gt_store_name (self->store), NULL);
        else
        if (change > 0)
            gt_log_kv (GT_LOG_INFO, "broker", "store recovered", "store", gt_store_name (self->store), NULL);
    }
    if (gt_metrics_tick (self->metrics, zclock_mono ()))
        s_publish (self);
}

//  --------------------------------------------------------------------------
//  STATS

static void
s_add (gt_stat_t *stats, size_t *count, size_t max, const char *name, uint64_t value)
{
    assert (*count < max);
    stats [*count].name = (char *) name;
    stats [*count].value = value;
    (*count)++;
}

void
gt_broker_metrics_stats (gt_broker_metrics_t *self, gt_stat_t *stats, size_t *count_p, size_t max)
{
    pthread_once (&s_names_once, s_names_init);
    s_census_types (self);
    for (int cmd = 0; cmd < GT_CMD_COUNT_; cmd++) {
        const gt_histogram_t *duration = gt_metrics_request_duration (self->metrics, (gt_cmd_t) cmd);
        s_add (stats, count_p, max, s_duration_names [cmd][S_DURATION_COUNT], duration->count);
        s_add (stats, count_p, max, s_duration_names [cmd][S_DURATION_SUM], duration->sum);
        s_add (stats, count_p, max, s_duration_names [cmd][S_DURATION_P50], gt_histogram_quantile (duration, 0.5));
        s_add (stats, count_p, max, s_duration_names [cmd][S_DURATION_P99], gt_histogram_quantile (duration, 0.99));
    }
    const gt_histogram_t *lateness = gt_metrics_expiry_lateness (self->metrics);
    s_add (stats, count_p, max, "expiry_lateness_count", lateness->count);
    s_add (stats, count_p, max, "expiry_lateness_sum_us", lateness->sum);
    s_add (stats, count_p, max, "expiry_lateness_p50_us", gt_histogram_quantile (lateness, 0.5));
    s_add (stats, count_p, max, "expiry_lateness_p99_us", gt_histogram_quantile (lateness, 0.99));
    s_add (stats, count_p, max, "expiry_lateness_max_us", lateness->max);
    gt_store_figures_t store;
    gt_store_figures (self->store, &store);
    s_add (stats, count_p, max, "store_batch_size_count", store.batch_size.count);
    s_add (stats, count_p, max, "store_batch_size_p50", gt_histogram_quantile (&store.batch_size, 0.5));
    s_add (stats, count_p, max, "store_batch_size_p99", gt_histogram_quantile (&store.batch_size, 0.99));
    s_add (stats, count_p, max, "store_commit_count", store.commit_us.count);
    s_add (stats, count_p, max, "store_commit_p50_us", gt_histogram_quantile (&store.commit_us, 0.5));
    s_add (stats, count_p, max, "store_commit_p99_us", gt_histogram_quantile (&store.commit_us, 0.99));
    const uint64_t *by_type = gt_metrics_active_by_type (self->metrics);
    for (int type = 0; type < GT_TYPE_COUNT_; type++)
        s_add (stats, count_p, max, s_type_names [type], by_type [type]);
    s_add (stats, count_p, max, "store_up", self->store && gt_store_healthy (self->store) ? 1 : 0);
}

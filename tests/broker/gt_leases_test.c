/*  gt_leases_test.c — selftest of the lease engine (gt_leases_test).

    The engine reads no clock: this test drives it with a FAKE clock
    (s_tick), so every timing assertion is exact and no test sleeps.  */
#include <czmq.h>
#include "gt_leases.h"
#include "gt_lease_tables.h"
#include "gt_broker_selftest.h"

#define S_MAX_SEEN  256

typedef struct {
    gt_event_kind_t kind;           //  event kind
    char lease_id [GT_LEASE_ID_LEN + 1];    //  its lease
    char object_id [64];            //  its object
    gt_reason_t reason;             //  reclaims
    uint64_t at;                    //  event time
    uint64_t expires_at;            //  the lease's expires_at then
    uint64_t fence;                 //  the lease's fence
    gt_lease_state_t state;         //  the lease's state then
} s_seen_event_t;

typedef struct {
    s_seen_event_t events [S_MAX_SEEN];     //  events, in order
    size_t event_count;             //  how many
    size_t reclaims;                //  reclaim hand-overs
    size_t cleanups;                //  cleanups handed over
    char last_cleanup_url [128];    //  last URL handed over
    size_t puts;                    //  lease_put calls
    size_t creates;                 //  of them, for a lease just created
    size_t deletes;                 //  lease_delete calls
    size_t object_deletes;          //  object_delete calls
    gt_lease_info_t stored [S_MAX_SEEN];    //  last put of each lease (deep copies)
    char stored_keys [S_MAX_SEEN][32];      //  idempotency keys of stored
    size_t stored_count;            //  how many
    size_t object_puts;             //  object_put calls
    size_t callbacks;               //  callback calls
    struct {
        char id [64];               //  object id
        uint64_t fence;             //  its fence
        uint64_t pending_at;        //  its pending reclaim's deadline, 0 = none
        gt_reason_t reason;         //  and reason
        char last [GT_LEASE_ID_LEN + 1];    //  and last lease
    } objects [S_MAX_SEEN];         //  last object_put of each object
    size_t object_count;            //  how many
} s_sink_t;

static void
s_on_event (void *ctx, gt_event_kind_t kind, const gt_lease_info_t *lease, gt_reason_t reason, uint64_t at)
{
    s_sink_t *sink = (s_sink_t *) ctx;
    assert (sink->event_count < S_MAX_SEEN);
    s_seen_event_t *seen = &sink->events [sink->event_count++];
    seen->kind = kind;
    strcpy (seen->lease_id, lease->id);
    snprintf (seen->object_id, sizeof (seen->object_id), "%s", lease->object_id);
    seen->reason = reason;
    seen->at = at;
    seen->expires_at = lease->expires_at;
    seen->fence = lease->fence;
    seen->state = lease->state;
}

static void
s_on_put (void *ctx, const gt_lease_info_t *lease, const char *key, bool created)
{
    s_sink_t *sink = (s_sink_t *) ctx;
    sink->puts++;
    if (created)
        sink->creates++;
    size_t index;
    for (index = 0; index < sink->stored_count; index++)
        if (streq (sink->stored [index].id, lease->id))
            break;
    if (index == sink->stored_count) {
        assert (sink->stored_count < S_MAX_SEEN);
        sink->stored_count++;
    }
    else
        gt_lease_info_clear (&sink->stored [index]);
    gt_lease_info_copy (&sink->stored [index], lease);
    snprintf (sink->stored_keys [index], sizeof (sink->stored_keys [index]), "%s", key ? key : "");
}

static void
s_on_delete (void *ctx, const char *lease_id, const char *object_id)
{
    (void) lease_id;
    (void) object_id;
    ((s_sink_t *) ctx)->deletes++;
}

static void
s_on_object_delete (void *ctx, const char *object_id, uint64_t fence)
{
    (void) object_id;
    (void) fence;
    ((s_sink_t *) ctx)->object_deletes++;
}

static void
s_on_object_put (void *ctx, const char *object_id, uint64_t fence, bool live,
                 uint64_t pending_at, gt_reason_t reason, const char *last_lease_id)
{
    (void) live;
    s_sink_t *sink = (s_sink_t *) ctx;
    sink->object_puts++;
    size_t index;
    for (index = 0; index < sink->object_count; index++)
        if (streq (sink->objects [index].id, object_id))
            break;
    if (index == sink->object_count) {
        assert (sink->object_count < S_MAX_SEEN);
        sink->object_count++;
    }
    snprintf (sink->objects [index].id, sizeof (sink->objects [index].id), "%s", object_id);
    sink->objects [index].fence = fence;
    sink->objects [index].pending_at = pending_at;
    sink->objects [index].reason = reason;
    snprintf (sink->objects [index].last, sizeof (sink->objects [index].last), "%s",
              last_lease_id ? last_lease_id : "");
}

static void
s_on_sink_callback (void *ctx, const gt_lease_info_t *owner, gt_reason_t reason)
{
    (void) owner;
    (void) reason;
    ((s_sink_t *) ctx)->callbacks++;
}

//  Every hook call the sink saw
static size_t
s_hook_calls (s_sink_t *sink)
{
    return sink->event_count + sink->puts + sink->deletes + sink->object_deletes
         + sink->reclaims + sink->object_puts + sink->callbacks;
}

static void
s_on_reclaim (void *ctx, const char *object_id, uint64_t fence,
              const gt_cleanup_t *const *cleanups, size_t count)
{
    (void) object_id;
    (void) fence;
    s_sink_t *sink = (s_sink_t *) ctx;
    sink->reclaims++;
    sink->cleanups += count;
    if (count)
        snprintf (sink->last_cleanup_url, sizeof (sink->last_cleanup_url), "%s", cleanups [count - 1]->url);
}

static void
s_sink_reset (s_sink_t *sink)
{
    for (size_t i = 0; i < sink->stored_count; i++)
        gt_lease_info_clear (&sink->stored [i]);
    memset (sink, 0, sizeof (*sink));
}

//  Fake clock: monotonic starts at 1,000,000, wall at 1.7e12; both move together
static uint64_t s_mono = 1000000;
static uint64_t s_wall = 1700000000000ULL;

static void
s_tick (gt_leases_t *leases, uint64_t ms)
{
    s_mono += ms;
    s_wall += ms;
    gt_leases_clock (leases, s_mono, s_wall);
    gt_leases_advance (leases, SIZE_MAX);
}

static gt_leases_t *
s_engine (gt_config_t *config, s_sink_t *sink)
{
    gt_leases_hooks_t hooks = {
        sink, s_on_event, s_on_put, s_on_delete, NULL, s_on_object_delete, s_on_reclaim, NULL
    };
    return gt_leases_new (config, &hooks, s_mono, s_wall);
}

static gt_lease_t *
s_create (gt_leases_t *leases, const char *object, const char *service, uint64_t ttl,
          gt_code_t expect, char *id_out)
{
    gt_lease_spec_t spec = { object, GT_TYPE_UNKNOWN, service, ttl != 0, ttl, NULL, NULL, NULL };
    gt_lease_t *lease = NULL;
    char err [256];
    gt_code_t code = gt_leases_create (leases, &spec, &lease, err, sizeof (err));
    assert (code == expect);
    if (code == GT_OK && id_out) {
        gt_lease_info_t info;
        gt_leases_info (leases, lease, &info);
        strcpy (id_out, info.id);
    }
    return lease;
}

static gt_code_t
s_get (gt_leases_t *leases, const char *id, gt_lease_info_t *info)
{
    gt_lease_t *lease;
    char err [256];
    gt_code_t code = gt_leases_get (leases, id, &lease, err, sizeof (err));
    if (code == GT_OK && info)
        gt_leases_info (leases, lease, info);
    return code;
}

static gt_code_t
s_renew (gt_leases_t *leases, const char *id, const char *service, uint64_t ttl)
{
    gt_lease_t *lease;
    char err [256];
    return gt_leases_renew (leases, id, service, ttl != 0, ttl, &lease, err, sizeof (err));
}

static gt_code_t
s_release (gt_leases_t *leases, const char *id, const char *service, bool retain)
{
    gt_lease_t *lease;
    char err [256];
    return gt_leases_release (leases, id, service, retain, &lease, err, sizeof (err));
}

static size_t
s_count_kind (s_sink_t *sink, gt_event_kind_t kind)
{
    size_t count = 0;
    for (size_t i = 0; i < sink->event_count; i++)
        count += sink->events [i].kind == kind;
    return count;
}

//  Everything observable about the engine, to compare before/after a rollback
static char *
s_snapshot (gt_leases_t *leases)
{
    gt_leases_stats_t stats;
    gt_leases_stats (leases, &stats);
    char *text = zsys_sprintf ("A%" PRIu64 " R%" PRIu64 " O%" PRIu64 " P%" PRIu64 " S%" PRIu64 ";",
                               stats.active_leases, stats.retained_leases, stats.active_objects,
                               stats.pending_reclaims, stats.services);
    gt_lease_t *page [1000];
    size_t count = 0;
    char cursor [32], err [128];
    assert (gt_leases_list (leases, NULL, NULL, 1000, SIZE_MAX, page, &count, cursor, err, sizeof (err)) == GT_OK);
    for (size_t i = 0; i < count; i++) {
        gt_lease_info_t info;
        gt_leases_info (leases, page [i], &info);
        char *more = zsys_sprintf ("%s%s/%s/%s/%d/f%" PRIu64 "/t%" PRIu64 "/r%" PRIu64 "/e%" PRIu64 "/n%" PRIu64 ";",
                                   text, info.id, info.object_id, info.service_id, (int) info.state,
                                   info.fence, info.ttl_ms, info.renewed_at, info.expires_at, info.renewals);
        zstr_free (&text);
        text = more;
    }
    return text;
}

//  Cleanup callbacks: the callback hook, callback state, retention holds
typedef struct {
    char owners [8][GT_LEASE_ID_LEN + 1];   //  owner of each callback, in order
    char urls [8][64];              //  its URL
    gt_reason_t reasons [8];        //  why
    size_t count;                   //  callbacks announced
} s_callbacks_t;

static void
s_on_callback (void *ctx, const gt_lease_info_t *owner, gt_reason_t reason)
{
    s_callbacks_t *seen = (s_callbacks_t *) ctx;
    assert (seen->count < 8);
    assert (owner->cleanup && owner->cleanup->has_max_retries && owner->cleanup->has_retry_delay);
    assert (owner->cleanup_status == GT_CLEANUP_PENDING && owner->cleanup_attempts == 0);
    strcpy (seen->owners [seen->count], owner->id);
    snprintf (seen->urls [seen->count], sizeof (seen->urls [0]), "%s", owner->cleanup->url);
    seen->reasons [seen->count++] = reason;
}

static void
s_create_with_url (gt_leases_t *leases, const char *object, const char *service, uint64_t ttl,
                   const char *url, char *id_out)
{
    gt_cleanup_t cleanup = { (char *) url, NULL, false, 0, false, 0 };
    gt_lease_spec_t spec = { object, GT_TYPE_UNKNOWN, service, true, ttl, NULL, &cleanup, NULL };
    gt_lease_t *lease;
    char err [256];
    assert (gt_leases_create (leases, &spec, &lease, err, sizeof (err)) == GT_OK);
    gt_lease_info_t info;
    gt_leases_info (leases, lease, &info);
    strcpy (id_out, info.id);
}

static size_t
s_list_status (gt_leases_t *leases, gt_cleanup_status_t status)
{
    gt_leases_filter_t filter = { NULL, NULL, false, 0, false, 0, true, status };
    gt_lease_t *page [16];
    size_t count = 0;
    char cursor [32], err [128];
    assert (gt_leases_list (leases, &filter, NULL, 16, SIZE_MAX, page, &count, cursor, err, sizeof (err)) == GT_OK);
    return count;
}

static void
s_test_callbacks (gt_config_t *config)
{
    static s_callbacks_t seen;
    memset (&seen, 0, sizeof (seen));
    gt_leases_hooks_t hooks = { .ctx = &seen, .callback = s_on_callback };
    gt_leases_t *leases = gt_leases_new (config, &hooks, s_mono, s_wall);
    char a [33], b [33], c [33], d [33], err [256];
    gt_lease_info_t info;

    //  A and B register the same URL (A first), C another; all on one object
    s_create_with_url (leases, "obj", "svc-a", 100, "http://127.0.0.1:9/one", a);
    s_create_with_url (leases, "obj", "svc-b", 5000, "http://127.0.0.1:9/one", b);
    s_create_with_url (leases, "obj", "svc-c", 5000, "http://127.0.0.1:9/two", c);
    assert (s_get (leases, a, &info) == GT_OK && info.cleanup_status == GT_CLEANUP_NONE);
    //  A ends; its retention passes, but its URL is still the object's: kept
    s_tick (leases, 100);
    s_tick (leases, 600);
    assert (s_get (leases, a, &info) == GT_OK && info.state == GT_STATE_EXPIRED);
    assert (seen.count == 0);
    //  The last lease ends: one callback per URL, naming the first registrant
    assert (s_release (leases, b, "svc-b", false) == GT_OK);
    assert (seen.count == 0);
    assert (s_release (leases, c, "svc-c", false) == GT_OK);
    assert (seen.count == 2);
    assert (streq (seen.owners [0], a) && streq (seen.urls [0], "http://127.0.0.1:9/one"));
    assert (streq (seen.owners [1], c) && streq (seen.urls [1], "http://127.0.0.1:9/two"));
    assert (seen.reasons [0] == GT_REASON_RELEASED);
    assert (s_get (leases, a, &info) == GT_OK && info.cleanup_status == GT_CLEANUP_PENDING);
    assert (s_get (leases, b, &info) == GT_OK && info.cleanup_status == GT_CLEANUP_NONE);
    assert (s_list_status (leases, GT_CLEANUP_PENDING) == 2);
    //  Pending callbacks hold their leases past retention; B goes
    s_tick (leases, 600);
    assert (s_get (leases, a, NULL) == GT_OK && s_get (leases, c, NULL) == GT_OK);
    assert (s_get (leases, b, NULL) == GT_ERR_NOT_FOUND);
    //  Delivered: kept one more retention period, then purged
    assert (gt_leases_set_cleanup (leases, a, GT_CLEANUP_DELIVERED, 2, NULL, false));
    assert (s_get (leases, a, &info) == GT_OK && info.cleanup_status == GT_CLEANUP_DELIVERED);
    assert (info.cleanup_attempts == 2 && info.cleanup_error == NULL);
    s_tick (leases, 499);
    assert (s_get (leases, a, NULL) == GT_OK);
    s_tick (leases, 1);
    assert (s_get (leases, a, NULL) == GT_ERR_NOT_FOUND);
    //  Dead: kept, listed by status, error shown
    assert (gt_leases_set_cleanup (leases, c, GT_CLEANUP_DEAD, 4, "HTTP 500", false));
    s_tick (leases, 5000);
    assert (s_get (leases, c, &info) == GT_OK && info.cleanup_status == GT_CLEANUP_DEAD);
    assert (info.cleanup_attempts == 4 && streq (info.cleanup_error, "HTTP 500"));
    assert (s_list_status (leases, GT_CLEANUP_DEAD) == 1 && s_list_status (leases, GT_CLEANUP_PENDING) == 0);
    //  A journaled change (RETRY) is undone by a rollback, kept by a commit
    gt_leases_journal (leases, true);
    gt_leases_mark_t mark = gt_leases_mark (leases);
    assert (gt_leases_set_cleanup (leases, c, GT_CLEANUP_PENDING, 0, NULL, true));
    assert (s_get (leases, c, &info) == GT_OK && info.cleanup_status == GT_CLEANUP_PENDING);
    assert (info.cleanup_attempts == 0 && info.cleanup_error == NULL);
    gt_leases_rollback (leases, mark);
    assert (s_get (leases, c, &info) == GT_OK && info.cleanup_status == GT_CLEANUP_DEAD);
    assert (info.cleanup_attempts == 4 && streq (info.cleanup_error, "HTTP 500"));
    //  ...also one that sets an error: undo frees it (and restores the old one)
    assert (gt_leases_set_cleanup (leases, c, GT_CLEANUP_PENDING, 1, "retrying", true));
    assert (s_get (leases, c, &info) == GT_OK && streq (info.cleanup_error, "retrying"));
    gt_leases_rollback (leases, mark);
    assert (s_get (leases, c, &info) == GT_OK && info.cleanup_status == GT_CLEANUP_DEAD);
    assert (info.cleanup_attempts == 4 && streq (info.cleanup_error, "HTTP 500"));
    assert (gt_leases_set_cleanup (leases, c, GT_CLEANUP_PENDING, 0, NULL, true));
    gt_leases_commit (leases, gt_leases_mark (leases));
    assert (s_get (leases, c, &info) == GT_OK && info.cleanup_status == GT_CLEANUP_PENDING);
    gt_leases_journal (leases, false);
    //  Unknown leases and leases without a cleanup have no callback state
    assert (!gt_leases_set_cleanup (leases, "0123456789abcdef0123456789abcdef", GT_CLEANUP_DEAD, 1, NULL, false));
    s_create (leases, "plain", "svc-d", 100, GT_OK, d);
    assert (!gt_leases_set_cleanup (leases, d, GT_CLEANUP_DEAD, 1, NULL, false));
    //  The state survives a restore from the lease's record
    assert (gt_leases_set_cleanup (leases, c, GT_CLEANUP_DEAD, 5, "timeout", false));
    assert (s_get (leases, c, &info) == GT_OK);
    gt_lease_info_t stored;
    gt_lease_info_copy (&stored, &info);
    gt_leases_t *restored = gt_leases_new (config, &hooks, s_mono, s_wall);
    assert (gt_leases_restore_lease (restored, &stored, NULL, err, sizeof (err)) == GT_OK);
    gt_lease_info_clear (&stored);
    assert (s_get (restored, c, &info) == GT_OK && info.cleanup_status == GT_CLEANUP_DEAD);
    assert (info.cleanup_attempts == 5 && streq (info.cleanup_error, "timeout"));
    s_tick (restored, 10000);       //  past its retention: still held
    assert (s_get (restored, c, NULL) == GT_OK);
    gt_leases_destroy (&restored);
    gt_leases_destroy (&leases);
}

//  --------------------------------------------------------------------------
//  Forgetting shards (handed over to another broker)

//  The n-th object id "prefix-<i>" in shard (gt_shard_of)
static void
s_object_in (unsigned shard, const char *prefix, int n, char *out, size_t size)
{
    for (int i = 0; ; i++) {
        snprintf (out, size, "%s-%d", prefix, i);
        if (gt_shard_of (out) == shard && n-- == 0)
            return;
    }
}

//  Census by service, compared against what LIST shows (counts kept + 1)
static void
s_census_check (void *ctx, const char *service_id, uint64_t active)
{
    zhashx_t *expected = (zhashx_t *) ctx;
    uintptr_t listed = (uintptr_t) zhashx_lookup (expected, service_id);
    assert (listed == active + 1);
    zhashx_delete (expected, service_id);
}

//  The gauges and both censuses agree with the leases LIST shows
static void
s_check_figures (gt_leases_t *leases)
{
    gt_lease_t *page [S_MAX_SEEN];
    size_t count = 0;
    char cursor [32], err [128];
    assert (gt_leases_list (leases, NULL, NULL, S_MAX_SEEN, SIZE_MAX, page, &count, cursor, err, sizeof (err)) == GT_OK);
    assert (*cursor == 0);
    uint64_t active = 0, retained = 0, types [GT_TYPE_COUNT_] = { 0 };
    zhashx_t *services = zhashx_new ();         //  service -> ACTIVE leases + 1
    zhashx_t *objects = zhashx_new ();          //  objects with ACTIVE leases
    for (size_t i = 0; i < count; i++) {
        gt_lease_info_t info;
        gt_leases_info (leases, page [i], &info);
        bool is_active = info.state == GT_STATE_ACTIVE;
        uintptr_t held = (uintptr_t) zhashx_lookup (services, info.service_id);
        zhashx_update (services, info.service_id, (void *) ((held ? held : 1) + is_active));
        if (is_active) {
            active++;
            types [info.object_type]++;
            zhashx_update (objects, info.object_id, (void *) 1);
        }
        else
            retained++;
    }
    gt_leases_stats_t stats;
    gt_leases_stats (leases, &stats);
    assert (stats.active_leases == active && stats.retained_leases == retained);
    assert (stats.active_objects == zhashx_size (objects));
    assert (stats.services == zhashx_size (services));
    uint64_t counted [GT_TYPE_COUNT_];
    gt_leases_census_types (leases, counted);
    assert (memcmp (counted, types, sizeof (types)) == 0);
    gt_leases_census_services (leases, s_census_check, services);
    //  What is left are the services without ACTIVE leases
    for (void *held = zhashx_first (services); held; held = zhashx_next (services))
        assert ((uintptr_t) held == 1);
    zhashx_destroy (&services);
    zhashx_destroy (&objects);
}

static void
s_create_spec (gt_leases_t *leases, const char *object, gt_object_type_t type, const char *service,
               uint64_t ttl, const char *url, const char *key, char *id_out)
{
    gt_cleanup_t cleanup = { (char *) url, NULL, false, 0, false, 0 };
    gt_meta_entry_t entries [] = { { "shard", "test" } };
    gt_meta_t metadata = { entries, 1 };
    gt_lease_spec_t spec = { object, type, service, true, ttl, &metadata, url ? &cleanup : NULL, key };
    gt_lease_t *lease;
    char err [256];
    assert (gt_leases_create (leases, &spec, &lease, err, sizeof (err)) == GT_OK);
    gt_lease_info_t info;
    gt_leases_info (leases, lease, &info);
    strcpy (id_out, info.id);
}

static void
s_test_forget (gt_config_t *config)
{
    config->min_lease_ms = 50;
    config->default_lease_ms = 1000;
    config->max_lease_ms = 10000;
    config->max_leases_per_service = 3;
    config->lease_retention_ms = 500;
    config->grace_ms = 300;
    static s_sink_t sink;
    s_sink_reset (&sink);
    gt_leases_hooks_t hooks = { &sink, s_on_event, s_on_put, s_on_delete, s_on_object_put,
                                s_on_object_delete, s_on_reclaim, s_on_sink_callback };
    gt_leases_t *leases = gt_leases_new (config, &hooks, s_mono, s_wall);
    char err [256];
    gt_lease_info_t info;
    gt_lease_t *lease;

    //  Shard A (forgotten) and shard B (kept); objects a [0..4], b [0..1]
    unsigned shard_a = gt_shard_of ("forget-me");
    unsigned shard_b = (shard_a + 1) % GT_SHARD_COUNT;
    char a [5][32], b [2][32];
    for (int i = 0; i < 5; i++)
        s_object_in (shard_a, "a", i, a [i], sizeof (a [i]));
    for (int i = 0; i < 2; i++)
        s_object_in (shard_b, "b", i, b [i], sizeof (b [i]));
    char la [7][33], lb [2][33];
    //  A dead letter: la [4] expires, its object is reclaimed after the
    //  grace period, its callback goes DEAD: held past its retention
    s_create_spec (leases, a [4], GT_TYPE_CUSTOM, "svc-d", 50, "http://127.0.0.1:9/dead", NULL, la [4]);
    s_tick (leases, 50);
    s_tick (leases, 300);
    assert (sink.callbacks == 1);
    assert (gt_leases_set_cleanup (leases, la [4], GT_CLEANUP_DEAD, 4, "HTTP 500", false));
    assert (gt_leases_record (leases, la [4]));
    //  svc-q at its quota in shard A, with an idempotency key and a cleanup
    s_create_spec (leases, a [0], GT_TYPE_DATABASE_ROW, "svc-q", 1000, NULL, "k-1", la [0]);
    s_create_spec (leases, a [1], GT_TYPE_TEMPORARY_FILE, "svc-q", 1000, "http://127.0.0.1:9/a1", NULL, la [1]);
    s_create_spec (leases, a [2], GT_TYPE_UNKNOWN, "svc-q", 1000, NULL, NULL, la [2]);
    s_create (leases, a [3], "svc-q", 1000, GT_ERR_QUOTA_EXCEEDED, NULL);
    //  svc-s holds leases in both shards, with the same key
    s_create_spec (leases, a [0], GT_TYPE_BLOB_STORAGE, "svc-s", 1000, NULL, NULL, la [5]);
    s_create_spec (leases, b [0], GT_TYPE_BLOB_STORAGE, "svc-s", 1000, NULL, "k-1", lb [0]);
    //  Released and kept for retention (its object still live)
    s_create_spec (leases, a [2], GT_TYPE_CACHE_ENTRY, "svc-t", 1000, NULL, NULL, la [6]);
    assert (s_release (leases, la [6], "svc-t", false) == GT_OK);
    //  Expired, reclaims pending (grace period) in both shards
    s_create_spec (leases, a [3], GT_TYPE_WEBSOCKET_SESSION, "svc-r", 100, NULL, NULL, la [3]);
    s_create_spec (leases, b [1], GT_TYPE_WEBSOCKET_SESSION, "svc-r", 100, NULL, NULL, lb [1]);
    s_tick (leases, 100);
    gt_leases_stats_t loaded;
    gt_leases_stats (leases, &loaded);
    assert (loaded.active_leases == 5 && loaded.retained_leases == 4);
    assert (loaded.active_objects == 4 && loaded.pending_reclaims == 2 && loaded.services == 5);
    s_check_figures (leases);
    assert (s_get (leases, la [0], &info) == GT_OK);
    uint64_t old_fence = info.fence;
    //  A LIST cursor taken before
    gt_lease_t *page [16];
    size_t count = 0;
    char cursor [32], early [32];
    assert (gt_leases_list (leases, NULL, NULL, 2, SIZE_MAX, page, &count, early, err, sizeof (err)) == GT_OK);
    assert (count == 2 && *early);

    //  Nothing in the shards: nothing changes
    uint8_t shards [GT_SHARD_COUNT / 8] = { 0 };
    unsigned shard_c = (shard_b + 1) % GT_SHARD_COUNT;     //  neither A nor B
    shards [shard_c / 8] |= (uint8_t) (1 << (shard_c % 8));
    assert (gt_leases_forget_shards (leases, shards) == 0);
    gt_leases_stats_t same;
    gt_leases_stats (leases, &same);
    assert (memcmp (&same, &loaded, sizeof (same)) == 0);
    //  Forget shard A: no hook, seven leases gone
    memset (shards, 0, sizeof (shards));
    shards [shard_a / 8] |= (uint8_t) (1 << (shard_a % 8));
    size_t calls = s_hook_calls (&sink);
    assert (gt_leases_forget_shards (leases, shards) == 7);
    assert (s_hook_calls (&sink) == calls);
    for (int i = 0; i < 7; i++)
        assert (s_get (leases, la [i], NULL) == GT_ERR_NOT_FOUND);
    assert (s_get (leases, lb [0], &info) == GT_OK && info.state == GT_STATE_ACTIVE);
    assert (s_get (leases, lb [1], &info) == GT_OK && info.state == GT_STATE_EXPIRED);
    gt_leases_stats_t stats;
    gt_leases_stats (leases, &stats);
    assert (stats.active_leases == 1 && stats.retained_leases == 1);
    assert (stats.active_objects == 1 && stats.pending_reclaims == 1);
    assert (stats.services == 2);           //  svc-s and svc-r
    assert (stats.last_fence == loaded.last_fence);
    s_check_figures (leases);
    uint64_t types [GT_TYPE_COUNT_];
    gt_leases_census_types (leases, types);
    assert (types [GT_TYPE_BLOB_STORAGE] == 1 && types [GT_TYPE_DATABASE_ROW] == 0);
    //  LIST sees shard B only, by any filter; the old cursor still works
    gt_leases_filter_t by_object = { NULL, a [0], false, 0, false, 0, false, 0 };
    assert (gt_leases_list (leases, &by_object, NULL, 16, SIZE_MAX, page, &count, cursor, err, sizeof (err)) == GT_OK);
    assert (count == 0);
    gt_leases_filter_t by_service = { "svc-q", NULL, false, 0, false, 0, false, 0 };
    assert (gt_leases_list (leases, &by_service, NULL, 16, SIZE_MAX, page, &count, cursor, err, sizeof (err)) == GT_OK);
    assert (count == 0);
    gt_leases_filter_t dead = { NULL, NULL, false, 0, false, 0, true, GT_CLEANUP_DEAD };
    assert (gt_leases_list (leases, &dead, NULL, 16, SIZE_MAX, page, &count, cursor, err, sizeof (err)) == GT_OK);
    assert (count == 0);
    assert (gt_leases_list (leases, NULL, early, 16, SIZE_MAX, page, &count, cursor, err, sizeof (err)) == GT_OK);
    assert (count <= 2 && *cursor == 0);
    //  The other shard's idempotency key still answers with its lease
    gt_lease_spec_t again = { b [0], GT_TYPE_BLOB_STORAGE, "svc-s", true, 1000, NULL, NULL, "k-1" };
    assert (gt_leases_create (leases, &again, &lease, err, sizeof (err)) == GT_OK);
    gt_leases_info (leases, lease, &info);
    assert (streq (info.id, lb [0]));

    //  Reloading the shard (what the next owner would do): the same
    //  records, restored as at recovery, come back as they were
    size_t restored = 0;
    for (size_t i = 0; i < sink.stored_count; i++) {
        if (gt_shard_of (sink.stored [i].object_id) != shard_a)
            continue;
        assert (gt_leases_restore_lease (leases, &sink.stored [i],
                                         *sink.stored_keys [i] ? sink.stored_keys [i] : NULL,
                                         err, sizeof (err)) == GT_OK);
        restored++;
    }
    assert (restored == 7);
    for (size_t i = 0; i < sink.object_count; i++)
        if (gt_shard_of (sink.objects [i].id) == shard_a)
            assert (gt_leases_restore_object (leases, sink.objects [i].id, sink.objects [i].fence,
                                              sink.objects [i].pending_at, sink.objects [i].reason,
                                              sink.objects [i].last, err, sizeof (err)) == GT_OK);
    assert (s_hook_calls (&sink) == calls);
    gt_leases_stats (leases, &stats);
    assert (stats.active_leases == loaded.active_leases && stats.retained_leases == loaded.retained_leases);
    assert (stats.active_objects == loaded.active_objects && stats.pending_reclaims == loaded.pending_reclaims);
    assert (stats.services == loaded.services);
    s_check_figures (leases);
    assert (s_get (leases, la [4], &info) == GT_OK && info.cleanup_status == GT_CLEANUP_DEAD);
    assert (s_get (leases, la [0], &info) == GT_OK && info.fence == old_fence);
    s_create (leases, a [3], "svc-q", 1000, GT_ERR_QUOTA_EXCEEDED, NULL);
    gt_lease_spec_t keyed = { a [1], GT_TYPE_UNKNOWN, "svc-q", true, 1000, NULL, NULL, "k-1" };
    assert (gt_leases_create (leases, &keyed, &lease, err, sizeof (err)) == GT_ERR_CONFLICT);

    //  Forgotten again, from the reloaded records: same figures as before
    assert (gt_leases_forget_shards (leases, shards) == 7);
    assert (s_hook_calls (&sink) == calls);
    gt_leases_stats (leases, &stats);
    assert (stats.active_leases == 1 && stats.retained_leases == 1);
    assert (stats.active_objects == 1 && stats.pending_reclaims == 1 && stats.services == 2);
    s_check_figures (leases);

    //  No timer fires for them: past every deadline, only shard B's
    size_t seen = sink.event_count;
    for (int i = 0; i < 6; i++)
        s_tick (leases, 2000);
    assert (sink.event_count > seen);
    for (size_t i = seen; i < sink.event_count; i++)
        assert (gt_shard_of (sink.events [i].object_id) == shard_b);
    gt_leases_stats (leases, &stats);
    assert (stats.active_leases == 0 && stats.retained_leases == 0);
    assert (stats.pending_reclaims == 0 && stats.services == 0);
    assert (gt_leases_timeout (leases) == -1);

    //  A forgotten object gets a new life above its old fence; the quota
    //  and the idempotency key are free again
    s_create (leases, a [0], "svc-q", 1000, GT_OK, la [0]);
    assert (s_get (leases, la [0], &info) == GT_OK && info.fence > old_fence);
    assert (gt_leases_create (leases, &keyed, &lease, err, sizeof (err)) == GT_OK);
    s_create (leases, a [2], "svc-q", 1000, GT_OK, NULL);
    s_create (leases, a [3], "svc-q", 1000, GT_ERR_QUOTA_EXCEEDED, NULL);
    s_check_figures (leases);
    gt_leases_destroy (&leases);
    s_sink_reset (&sink);

    //  Journaling: changes of other shards may be pending; undoing them
    //  brings nothing forgotten back, and leaves every figure right
    leases = gt_leases_new (config, &hooks, s_mono, s_wall);
    gt_leases_journal (leases, true);
    s_create (leases, a [0], "svc-x", 1000, GT_OK, la [0]);
    s_create (leases, a [1], "svc-y", 1000, GT_OK, la [1]);
    s_create (leases, a [2], "svc-z", 100, GT_OK, la [2]);
    s_create (leases, b [0], "svc-z", 1000, GT_OK, lb [0]);
    s_tick (leases, 100);                   //  la [2] expires: a reclaim pending
    gt_leases_commit (leases, gt_leases_mark (leases));
    gt_leases_mark_t mark = gt_leases_mark (leases);
    //  Pending in shard B: svc-x now lives on there, a renewal, a new service
    s_create (leases, b [1], "svc-x", 1000, GT_OK, lb [1]);
    assert (s_renew (leases, lb [0], "svc-z", 2000) == GT_OK);
    s_create (leases, b [1], "svc-w", 1000, GT_OK, NULL);
    //  svc-y is the service found last (a LIST by it) when it leaves the
    //  index with its only lease; its slot is kept until the journal
    //  commits, but a CREATE in it makes a new service, not that one
    gt_leases_filter_t by_y = { "svc-y", NULL, false, 0, false, 0, false, 0 };
    assert (gt_leases_list (leases, &by_y, NULL, 16, SIZE_MAX, page, &count, cursor, err, sizeof (err)) == GT_OK);
    assert (count == 1);
    assert (gt_leases_forget_shards (leases, shards) == 3);
    gt_leases_stats (leases, &stats);
    assert (stats.active_leases == 3 && stats.retained_leases == 0 && stats.pending_reclaims == 0);
    assert (stats.active_objects == 2 && stats.services == 3);      //  svc-x, svc-z, svc-w
    s_check_figures (leases);
    s_create (leases, b [1], "svc-y", 1000, GT_OK, NULL);
    gt_leases_stats (leases, &stats);
    assert (stats.active_leases == 4 && stats.services == 4);
    s_check_figures (leases);
    gt_leases_rollback (leases, mark);
    for (int i = 0; i < 3; i++)
        assert (s_get (leases, la [i], NULL) == GT_ERR_NOT_FOUND);
    assert (s_get (leases, lb [1], NULL) == GT_ERR_NOT_FOUND);
    assert (s_get (leases, lb [0], &info) == GT_OK && info.ttl_ms == 1000);
    gt_leases_stats (leases, &stats);
    assert (stats.active_leases == 1 && stats.retained_leases == 0 && stats.pending_reclaims == 0);
    assert (stats.active_objects == 1 && stats.services == 1);      //  svc-z
    s_check_figures (leases);
    //  A service the rollback dropped is a new one next time
    s_create (leases, b [1], "svc-x", 1000, GT_OK, lb [1]);
    s_create (leases, b [1], "svc-y", 1000, GT_OK, NULL);
    s_check_figures (leases);
    //  Undone again; then kept
    gt_leases_rollback (leases, mark);
    s_check_figures (leases);
    gt_leases_stats (leases, &stats);
    assert (stats.active_leases == 1 && stats.services == 1);
    s_create (leases, b [1], "svc-x", 1000, GT_OK, lb [1]);
    gt_leases_commit (leases, gt_leases_mark (leases));
    //  The reclaim that was pending in shard A never fires
    seen = sink.event_count;
    s_tick (leases, 5000);
    s_tick (leases, 1000);
    gt_leases_commit (leases, gt_leases_mark (leases));
    gt_leases_stats (leases, &stats);
    assert (stats.active_leases == 0 && stats.retained_leases == 0 && stats.services == 0);
    assert (sink.event_count > seen);
    for (size_t i = seen; i < sink.event_count; i++)
        assert (gt_shard_of (sink.events [i].object_id) == shard_b);
    assert (gt_leases_timeout (leases) == -1);
    gt_leases_destroy (&leases);
    s_sink_reset (&sink);
}

//  --------------------------------------------------------------------------
//  Extensions (gt_lease_tables.h: found by their record's address)

//  A forgotten lease's idempotency key goes with it: the same key in the
//  same service makes a new lease, and no lookup reaches the forgotten
//  record (the service lives on in another shard, so the key is looked up)
static void
s_test_forget_keys (gt_config_t *config)
{
    gt_leases_t *leases = gt_leases_new (config, NULL, s_mono, s_wall);
    unsigned shard = gt_shard_of ("forget-me");
    char object [32], other [32], id [33], err [256];
    s_object_in (shard, "keyed", 0, object, sizeof (object));
    s_object_in ((shard + 1) % GT_SHARD_COUNT, "keyed", 0, other, sizeof (other));
    s_create (leases, other, "svc-k", 1000, GT_OK, NULL);
    gt_lease_spec_t keyed = { object, GT_TYPE_UNKNOWN, "svc-k", true, 1000, NULL, NULL, "k-1" };
    gt_lease_t *lease;
    gt_lease_info_t info;
    assert (gt_leases_create (leases, &keyed, &lease, err, sizeof (err)) == GT_OK);
    gt_leases_info (leases, lease, &info);
    strcpy (id, info.id);
    uint8_t shards [GT_SHARD_COUNT / 8] = { 0 };
    shards [shard / 8] |= (uint8_t) (1 << (shard % 8));
    assert (gt_leases_forget_shards (leases, shards) == 1);
    keyed.object_id = other;
    assert (gt_leases_create (leases, &keyed, &lease, err, sizeof (err)) == GT_OK);
    gt_leases_info (leases, lease, &info);
    assert (!streq (info.id, id) && streq (info.object_id, other));
    assert (gt_leases_create (leases, &keyed, &lease, err, sizeof (err)) == GT_OK);
    gt_leases_info (leases, lease, &info);
    assert (streq (info.object_id, other));
    gt_leases_destroy (&leases);
}

//  LIST's byte budget counts what a lease carries in its extension
static void
s_test_list_budget (gt_config_t *config)
{
    gt_leases_t *leases = gt_leases_new (config, NULL, s_mono, s_wall);
    char values [4][1001], err [256];
    gt_meta_entry_t entries [4];
    for (int i = 0; i < 4; i++) {
        memset (values [i], 'a' + i, 1000);
        values [i][1000] = 0;
        entries [i].key = (char *) "k";
        entries [i].value = values [i];
    }
    gt_meta_t metadata = { entries, 4 };
    for (int i = 0; i < 2; i++) {
        char object [32];
        snprintf (object, sizeof (object), "meta-%d", i);
        gt_lease_spec_t spec = { object, GT_TYPE_UNKNOWN, "svc-m", true, 1000, &metadata, NULL, NULL };
        gt_lease_t *lease;
        assert (gt_leases_create (leases, &spec, &lease, err, sizeof (err)) == GT_OK);
    }
    //  Over 4,000 bytes each: a 6,000-byte page holds one, then a cursor
    gt_lease_t *page [4];
    size_t count = 0;
    char cursor [32];
    assert (gt_leases_list (leases, NULL, NULL, 4, 6000, page, &count, cursor, err, sizeof (err)) == GT_OK);
    assert (count == 1 && *cursor);
    assert (gt_leases_list (leases, NULL, NULL, 4, 10000, page, &count, cursor, err, sizeof (err)) == GT_OK);
    assert (count == 2 && *cursor == 0);
    gt_leases_destroy (&leases);
}

//  GC_MAX_LEASES counts lease records, active and ended ones retained: a
//  CREATE past it is refused with nothing changed, an idempotent replay is
//  still answered, and room comes back when an ended lease is purged.  A
//  recovery loads past it (the store's leases are not dropped).
static void
s_test_lease_cap (gt_config_t *config)
{
    uint64_t cap = config->max_leases, retention = config->lease_retention_ms;
    uint64_t quota = config->max_leases_per_service;
    config->max_leases = 4;
    config->max_leases_per_service = 100;
    config->lease_retention_ms = 500;
    static s_sink_t sink;
    s_sink_reset (&sink);
    gt_leases_t *leases = s_engine (config, &sink);
    char ids [5][33], err [256];
    for (int i = 0; i < 3; i++) {
        char object [16];
        snprintf (object, sizeof (object), "cap-%d", i);
        s_create (leases, object, "svc-cap", 5000, GT_OK, ids [i]);
    }
    gt_lease_spec_t keyed = { "cap-3", GT_TYPE_UNKNOWN, "svc-cap", true, 5000, NULL, NULL, "key-3" };
    gt_lease_t *lease, *again;
    assert (gt_leases_create (leases, &keyed, &lease, err, sizeof (err)) == GT_OK);
    char *before = s_snapshot (leases);
    size_t calls = s_hook_calls (&sink);
    gt_lease_spec_t fifth = { "cap-4", GT_TYPE_UNKNOWN, "svc-other", true, 5000, NULL, NULL, NULL };
    assert (gt_leases_create (leases, &fifth, &again, err, sizeof (err)) == GT_ERR_QUOTA_EXCEEDED);
    assert (strstr (err, "holds 4 leases") && strstr (err, "GC_MAX_LEASES is 4"));
    char *after = s_snapshot (leases);
    assert (streq (before, after) && s_hook_calls (&sink) == calls);
    zstr_free (&before);
    zstr_free (&after);
    assert (gt_leases_create (leases, &keyed, &again, err, sizeof (err)) == GT_OK && again == lease);
    //  Released, the lease is kept for its retention and still counts
    assert (s_release (leases, ids [0], "svc-cap", false) == GT_OK);
    s_create (leases, "cap-4", "svc-cap", 5000, GT_ERR_QUOTA_EXCEEDED, NULL);
    s_tick (leases, 499);
    s_create (leases, "cap-4", "svc-cap", 5000, GT_ERR_QUOTA_EXCEEDED, NULL);
    s_tick (leases, 1);
    assert (s_get (leases, ids [0], NULL) == GT_ERR_NOT_FOUND);
    s_create (leases, "cap-4", "svc-cap", 5000, GT_OK, ids [4]);
    s_create (leases, "cap-5", "svc-cap", 5000, GT_ERR_QUOTA_EXCEEDED, NULL);

    //  Journaled: a purged lease's record is kept for undo, and counts,
    //  until its batch commits; a rollback brings the lease back
    gt_leases_journal (leases, true);
    assert (s_release (leases, ids [1], "svc-cap", false) == GT_OK);
    gt_leases_mark_t mark = gt_leases_mark (leases);
    s_tick (leases, 500);
    assert (s_get (leases, ids [1], NULL) == GT_ERR_NOT_FOUND);
    s_create (leases, "cap-5", "svc-cap", 5000, GT_ERR_QUOTA_EXCEEDED, NULL);
    gt_leases_rollback (leases, mark);
    assert (s_get (leases, ids [1], NULL) == GT_OK);
    s_create (leases, "cap-5", "svc-cap", 5000, GT_ERR_QUOTA_EXCEEDED, NULL);
    s_tick (leases, 0);
    assert (s_get (leases, ids [1], NULL) == GT_ERR_NOT_FOUND);
    gt_leases_commit (leases, gt_leases_mark (leases));
    s_create (leases, "cap-5", "svc-cap", 5000, GT_OK, NULL);
    gt_leases_commit (leases, gt_leases_mark (leases));
    gt_leases_journal (leases, false);
    s_create (leases, "cap-6", "svc-cap", 5000, GT_ERR_QUOTA_EXCEEDED, NULL);

    //  A broker with a lower cap loads every stored lease, then refuses
    config->max_leases = 2;
    gt_leases_t *restored = gt_leases_new (config, NULL, s_mono, s_wall);
    gt_leases_restore_begin (restored);
    size_t loaded = 0;
    for (size_t i = 0; i < sink.stored_count; i++) {
        if (s_get (leases, sink.stored [i].id, NULL) != GT_OK)
            continue;               //  purged: its record is gone
        assert (gt_leases_restore_lease (restored, &sink.stored [i], NULL, err, sizeof (err)) == GT_OK);
        loaded++;
    }
    gt_leases_restore_end (restored);
    assert (loaded == 4);
    gt_leases_stats_t stats;
    gt_leases_stats (restored, &stats);
    assert (stats.active_leases == 4 && stats.retained_leases == 0);
    s_create (restored, "cap-6", "svc-cap", 5000, GT_ERR_QUOTA_EXCEEDED, NULL);
    gt_leases_destroy (&restored);
    gt_leases_destroy (&leases);
    s_sink_reset (&sink);
    config->max_leases = cap;
    config->max_leases_per_service = quota;
    config->lease_retention_ms = retention;
}

//  A lease whose URL is registered is held past its retention while its
//  object's reclaim waits out the grace period; the callback names it
static void
s_test_grace_hold (gt_config_t *config)
{
    config->grace_ms = 300;
    config->lease_retention_ms = 50;
    static s_callbacks_t seen;
    memset (&seen, 0, sizeof (seen));
    gt_leases_hooks_t hooks = { .ctx = &seen, .callback = s_on_callback };
    gt_leases_t *leases = gt_leases_new (config, &hooks, s_mono, s_wall);
    char a [33];
    gt_lease_info_t info;
    s_create_with_url (leases, "graced", "svc-g", 100, "http://127.0.0.1:9/graced", a);
    s_tick (leases, 100);               //  expires: reclaim pending
    s_tick (leases, 60);                //  past its retention: held
    assert (s_get (leases, a, &info) == GT_OK && info.state == GT_STATE_EXPIRED);
    assert (seen.count == 0);
    s_tick (leases, 240);               //  the grace period ends: reclaimed
    assert (seen.count == 1 && streq (seen.owners [0], a));
    assert (s_get (leases, a, &info) == GT_OK && info.cleanup_status == GT_CLEANUP_PENDING);
    gt_leases_destroy (&leases);
    config->grace_ms = 0;
    config->lease_retention_ms = 500;
}

//  Walk every lease LIST gives, page_size at a time (so through its
//  cursors), handing each to visit in order; returns how many
typedef void (s_visit_fn) (const gt_lease_info_t *info, void *ctx);

static size_t
s_list_walk (gt_leases_t *leases, size_t page_size, s_visit_fn *visit, void *ctx)
{
    char cursor [32] = "", err [256];
    size_t walked = 0, pages = 0;
    do {
        assert (++pages <= 100000);     //  a cursor that never ends fails, not hangs
        gt_lease_t *page [256];
        size_t count = 0;
        char next [32];
        assert (page_size <= 256);
        assert (gt_leases_list (leases, NULL, *cursor ? cursor : NULL, page_size, SIZE_MAX, page, &count,
                                next, err, sizeof (err)) == GT_OK);
        for (size_t i = 0; i < count; i++) {
            gt_lease_info_t info;
            gt_leases_info (leases, page [i], &info);
            visit (&info, ctx);
            walked++;
        }
        snprintf (cursor, sizeof (cursor), "%s", next);
    } while (*cursor);
    return walked;
}

//  s_list_walk's visitors: leases in the order of an array of ids...
typedef struct {
    char (*ids) [33];               //  the ids expected, in order
    size_t count;                   //  how many
    size_t seen;                    //  visited so far
} s_expected_ids_t;

static void
s_visit_expected (const gt_lease_info_t *info, void *ctx)
{
    s_expected_ids_t *expected = (s_expected_ids_t *) ctx;
    assert (expected->seen < expected->count && streq (info->id, expected->ids [expected->seen]));
    expected->seen++;
}

//  The creation order keeps removed leases' places as holes whose serials
//  sit aside: through 1,500 holes trimmed at the newest end after a newer
//  hole was made in the middle (their serials' places left behind, then
//  renumbered) LIST still gives the leases in creation order through its
//  cursors, and a lease among holes is still found to be removed.  The
//  first middle holes are made newest first, so that their numbers run
//  against the array's order.
static void
s_test_order_holes (gt_config_t *config)
{
    uint64_t quota = config->max_leases_per_service;
    uint64_t retention = config->lease_retention_ms;
    config->max_leases_per_service = 100000;
    config->lease_retention_ms = 1;
    gt_leases_t *leases = gt_leases_new (config, NULL, s_mono, s_wall);
    //  (enough leases that the holes below stay fewer than half the order:
    //  more would squeeze them all out at once)
    static char ids [3000][33];
    static char kept [3000][33];
    size_t kept_count = 0;
    for (size_t i = 0; i < 3000; i++) {
        char object [32];
        snprintf (object, sizeof (object), "order-%zu", i);
        s_create (leases, object, "svc-o", 10000, GT_OK, ids [i]);
    }
    for (size_t i = 3000; i-- > 0; )
        if (i % 30 == 0)
            assert (s_release (leases, ids [i], "svc-o", false) == GT_OK);
    for (size_t i = 0; i < 3000; i++)
        if (i % 30 != 0)
            strcpy (kept [kept_count++], ids [i]);
    s_tick (leases, 2);                 //  purged: 100 holes among 3,000
    static char churn [1500][33];
    for (size_t k = 0; k < 1500; k++) {
        char object [32];
        snprintf (object, sizeof (object), "churn-%zu", k);
        s_create (leases, object, "svc-o", 10000, GT_OK, churn [k]);
    }
    for (size_t k = 0; k < 1499; k++)
        assert (s_release (leases, churn [k], "svc-o", false) == GT_OK);
    s_tick (leases, 2);                 //  1,499 holes behind the newest lease
    assert (s_release (leases, kept [100], "svc-o", false) == GT_OK);
    s_tick (leases, 2);                 //  one more in the middle, numbered after them
    assert (s_release (leases, churn [1499], "svc-o", false) == GT_OK);
    s_tick (leases, 2);                 //  the 1,500 trimmed, their serials' places left
    memmove (kept [100], kept [101], (kept_count - 101) * sizeof (kept [0]));
    kept_count--;
    s_expected_ids_t expected = { kept, kept_count, 0 };
    assert (s_list_walk (leases, 7, s_visit_expected, &expected) == kept_count);
    //  Three of the kept removed (each found among the holes), the rest listed
    size_t gone [] = { 150, 10, 198 };
    for (size_t k = 0; k < 3; k++)
        assert (s_release (leases, kept [gone [k]], "svc-o", false) == GT_OK);
    s_tick (leases, 2);
    size_t left = 0;
    for (size_t i = 0; i < kept_count; i++)
        if (i != 150 && i != 10 && i != 198)
            memmove (kept [left++], kept [i], sizeof (kept [i]));
    expected = (s_expected_ids_t) { kept, left, 0 };
    assert (s_list_walk (leases, 5, s_visit_expected, &expected) == left);
    gt_leases_destroy (&leases);
    config->max_leases_per_service = quota;
    config->lease_retention_ms = retention;
}

//  The creation order against a model, by a seeded random walk: creates
//  at the newest end, removals anywhere (each a hole; trailing ones trimmed;
//  all squeezed out once they are half the order, as the older half going
//  at once makes them), journaled stretches
//  rolled back (a purged lease linked back into its own hole, or inserted
//  where a squeeze took it) or committed, and shards forgotten (holes made
//  without a squeeze).  After every step LIST through its cursors gives
//  exactly the model's leases, oldest first.
#define S_WALK_MAX      1200        //  leases the model holds at most

typedef struct {
    char ids [S_WALK_MAX][33];      //  live (or retained) leases, oldest first
    unsigned shards [S_WALK_MAX];   //  their objects' shards
    size_t count;                   //  how many
} s_walk_model_t;

static uint64_t
s_walk_next (uint64_t *state)
{
    *state ^= *state << 13;
    *state ^= *state >> 7;
    *state ^= *state << 17;
    return *state;
}

static void
s_walk_drop (s_walk_model_t *model, size_t at)
{
    memmove (model->ids [at], model->ids [at + 1], (model->count - at - 1) * sizeof (model->ids [0]));
    memmove (&model->shards [at], &model->shards [at + 1], (model->count - at - 1) * sizeof (model->shards [0]));
    model->count--;
}

static void
s_test_order_walk (gt_config_t *config, uint64_t seed)
{
    uint64_t quota = config->max_leases_per_service, retention = config->lease_retention_ms;
    uint64_t max_lease = config->max_lease_ms;
    config->max_leases_per_service = 100000;
    config->lease_retention_ms = 1;
    config->max_lease_ms = 1000000;
    gt_leases_t *leases = gt_leases_new (config, NULL, s_mono, s_wall);
    static s_walk_model_t model, saved;
    memset (&model, 0, sizeof (model));
    uint64_t state = seed;
    size_t objects = 0, rollbacks = 0, forgets = 0;
    bool journaling = false;
    gt_leases_mark_t mark = { 0 };
    for (size_t step = 0; step < 1500; step++) {
        unsigned choice = (unsigned) (s_walk_next (&state) % 100);
        if (choice < 45 && model.count < S_WALK_MAX) {
            size_t count = 1 + s_walk_next (&state) % 16;
            for (size_t k = 0; k < count && model.count < S_WALK_MAX; k++) {
                char object [32];
                snprintf (object, sizeof (object), "walk-%zu", objects++);
                s_create (leases, object, "svc-w", 500000, GT_OK, model.ids [model.count]);
                model.shards [model.count++] = gt_shard_of (object);
            }
        }
        else
        if (choice < 85 && model.count > 0) {
            //  A few, or now and then the older half and more at once
            size_t count = choice < 82 ? 1 + s_walk_next (&state) % 6 : model.count / 2 + 70;
            for (size_t k = 0; k < count && model.count > 0; k++) {
                //  Mostly the oldest or the newest, as retention and churn do
                uint64_t where = choice < 82 ? s_walk_next (&state) % 4 : 0;
                size_t at = where == 0 ? 0 : where == 1 ? model.count - 1
                          : (size_t) (s_walk_next (&state) % model.count);
                assert (s_release (leases, model.ids [at], "svc-w", false) == GT_OK);
                s_walk_drop (&model, at);
            }
            s_tick (leases, 2);         //  purged: their holes
        }
        else
        if (choice < 93) {
            if (!journaling) {
                gt_leases_journal (leases, true);
                mark = gt_leases_mark (leases);
                saved = model;
                journaling = true;
            }
            else {
                if (s_walk_next (&state) % 2) {
                    gt_leases_rollback (leases, mark);
                    model = saved;
                    rollbacks++;
                }
                else
                    gt_leases_commit (leases, gt_leases_mark (leases));
                gt_leases_journal (leases, false);
                journaling = false;
            }
        }
        else
        if (!journaling && model.count > 0) {
            uint8_t shards [GT_SHARD_COUNT / 8] = { 0 };
            unsigned shard = model.shards [s_walk_next (&state) % model.count];
            shards [shard / 8] |= (uint8_t) (1u << (shard % 8));
            size_t forgotten = gt_leases_forget_shards (leases, shards);
            size_t dropped = 0;
            for (size_t at = model.count; at-- > 0; )
                if (model.shards [at] == shard) {
                    s_walk_drop (&model, at);
                    dropped++;
                }
            assert (forgotten == dropped);
            forgets++;
        }
        s_expected_ids_t expected = { model.ids, model.count, 0 };
        assert (s_list_walk (leases, 1 + (size_t) (s_walk_next (&state) % 40), s_visit_expected, &expected)
                == model.count);
    }
    if (journaling)
        gt_leases_journal (leases, false);
    assert (rollbacks > 10 && forgets > 10);
    gt_leases_destroy (&leases);
    config->max_leases_per_service = quota;
    config->lease_retention_ms = retention;
    config->max_lease_ms = max_lease;
}

//  ...and leases "bulk-N" by created_at, the two of a tie in the order
//  they were restored (arrival [N])
typedef struct {
    const unsigned *arrival;        //  when each was restored
    uint64_t previous;              //  created_at of the last visited
    unsigned previous_index;        //  its N
} s_creation_order_t;

static void
s_visit_creation_order (const gt_lease_info_t *info, void *ctx)
{
    s_creation_order_t *order = (s_creation_order_t *) ctx;
    unsigned index = (unsigned) atoi (info->object_id + 5);
    assert (info->created_at >= order->previous);
    if (info->created_at == order->previous)
        assert (order->previous_index / 2 == index / 2
             && order->arrival [order->previous_index] < order->arrival [index]);
    order->previous = info->created_at;
    order->previous_index = index;
}

//  A store hands a load's leases over in any order: the engine puts them
//  back in creation order (LIST, its cursors), and the oldest of the
//  leases that registered a URL owns it, as when they were created
static void
s_test_restore_order (gt_config_t *config)
{
    config->grace_ms = 0;
    static s_sink_t sink;
    s_sink_reset (&sink);
    gt_leases_t *leases = s_engine (config, &sink);
    char ids [5][33], err [256];
    s_create_with_url (leases, "shared", "svc-a", 5000, "http://127.0.0.1:9/one", ids [0]);
    s_tick (leases, 1);
    s_create (leases, "o1", "svc-a", 5000, GT_OK, ids [1]);
    s_tick (leases, 1);
    s_create_with_url (leases, "shared", "svc-b", 5000, "http://127.0.0.1:9/one", ids [2]);
    s_tick (leases, 1);
    s_create (leases, "o2", "svc-b", 5000, GT_OK, ids [3]);
    s_tick (leases, 1);
    s_create_with_url (leases, "shared", "svc-b", 5000, "http://127.0.0.1:9/two", ids [4]);
    assert (sink.stored_count == 5);

    //  Newest first, the worst order; and as created (nothing to sort)
    for (int reversed = 0; reversed <= 1; reversed++) {
        static s_callbacks_t seen;
        memset (&seen, 0, sizeof (seen));
        gt_leases_hooks_t hooks = { .ctx = &seen, .callback = s_on_callback };
        gt_leases_t *restored = gt_leases_new (config, &hooks, s_mono, s_wall);
        gt_leases_restore_begin (restored);
        for (size_t i = 0; i < sink.stored_count; i++) {
            size_t at = reversed ? sink.stored_count - 1 - i : i;
            assert (gt_leases_restore_lease (restored, &sink.stored [at], NULL, err, sizeof (err)) == GT_OK);
        }
        gt_leases_restore_end (restored);
        char *original = s_snapshot (leases);
        char *copy = s_snapshot (restored);
        assert (streq (original, copy));
        zstr_free (&original);
        zstr_free (&copy);
        //  Page by page, two at a time: the cursors follow the new serials
        s_expected_ids_t expected = { ids, 5, 0 };
        assert (s_list_walk (restored, 2, s_visit_expected, &expected) == 5);
        //  The object's last lease ends: a callback per URL, in the order
        //  they were registered, each naming its first registrant
        assert (s_release (restored, ids [2], "svc-b", false) == GT_OK);
        assert (s_release (restored, ids [4], "svc-b", false) == GT_OK);
        assert (seen.count == 0);
        assert (s_release (restored, ids [0], "svc-a", false) == GT_OK);
        assert (seen.count == 2);
        assert (streq (seen.urls [0], "http://127.0.0.1:9/one") && streq (seen.owners [0], ids [0]));
        assert (streq (seen.urls [1], "http://127.0.0.1:9/two") && streq (seen.owners [1], ids [4]));
        gt_leases_destroy (&restored);
    }
    //  Many leases, shuffled, created_at over every 16-bit digit the sort
    //  uses, ties included: LIST comes back by created_at, ties as they came
    gt_leases_t *bulk = gt_leases_new (config, NULL, s_mono, s_wall);
    gt_leases_restore_begin (bulk);
    enum { S_BULK = 3000 };
    static unsigned arrival [S_BULK];           //  when each was restored
    for (unsigned i = 0; i < S_BULK; i++) {
        unsigned at = (i * 1031) % S_BULK;      //  a permutation (1031 is prime to 3000)
        arrival [at] = i;
        gt_lease_info_t info = sink.stored [1];
        uint8_t id [16];
        memset (id, 0, sizeof (id));
        id [0] = (uint8_t) (at >> 8);
        id [1] = (uint8_t) at;
        id [15] = 1;
        char object [32];
        gt_lease_id_format (id, info.id);
        snprintf (object, sizeof (object), "bulk-%u", at);
        info.object_id = object;
        info.created_at = s_wall - (1ull << 40) + (uint64_t) (at / 2) * 0x10001001ull;
        info.renewed_at = s_wall;
        info.expires_at = s_wall + 5000;
        assert (gt_leases_restore_lease (bulk, &info, NULL, err, sizeof (err)) == GT_OK);
    }
    gt_leases_restore_end (bulk);
    s_creation_order_t order = { arrival, 0, 0 };
    assert (s_list_walk (bulk, 256, s_visit_creation_order, &order) == S_BULK);
    gt_leases_destroy (&bulk);
    gt_leases_destroy (&leases);
    s_sink_reset (&sink);

    //  Leases overdue at the restart expire oldest first, whatever order
    //  they came in, and the object's reclaim names the newest as its last
    leases = s_engine (config, &sink);
    char late [2][33];
    s_create (leases, "late", "svc-c", 100, GT_OK, late [0]);
    s_tick (leases, 1);
    s_create (leases, "late", "svc-c", 100, GT_OK, late [1]);
    assert (sink.stored_count == 2);
    static gt_lease_info_t kept [2];
    for (int i = 0; i < 2; i++)
        gt_lease_info_copy (&kept [i], &sink.stored [i]);
    gt_leases_destroy (&leases);
    s_sink_reset (&sink);
    s_mono += 1000;                     //  the broker was down a second
    s_wall += 1000;
    leases = s_engine (config, &sink);
    gt_leases_restore_begin (leases);
    for (int i = 1; i >= 0; i--)
        assert (gt_leases_restore_lease (leases, &kept [i], NULL, err, sizeof (err)) == GT_OK);
    gt_leases_restore_end (leases);
    s_tick (leases, 0);
    assert (sink.event_count == 3);
    assert (sink.events [0].kind == GT_EVENT_LEASE_EXPIRED && streq (sink.events [0].lease_id, late [0]));
    assert (sink.events [1].kind == GT_EVENT_LEASE_EXPIRED && streq (sink.events [1].lease_id, late [1]));
    assert (sink.events [2].kind == GT_EVENT_OBJECT_RECLAIMED && streq (sink.events [2].lease_id, late [1]));
    gt_leases_destroy (&leases);
    s_sink_reset (&sink);

    //  Two stored leases with one idempotency key (cluster mode, after a
    //  shard moved), newest first: the key still finds the older one
    leases = s_engine (config, &sink);
    gt_leases_restore_begin (leases);
    for (int i = 1; i >= 0; i--) {
        gt_lease_info_t info = kept [i];
        info.object_id = i ? "keyed-new" : "keyed-old";
        info.expires_at = s_wall + 5000;
        info.id [31] = info.id [31] == 'a' ? 'b' : 'a';     //  ids of their own
        assert (gt_leases_restore_lease (leases, &info, "dup", err, sizeof (err)) == GT_OK);
    }
    gt_leases_restore_end (leases);
    gt_lease_spec_t spec = { "keyed-other", GT_TYPE_UNKNOWN, "svc-c", false, 0, NULL, NULL, "dup" };
    gt_lease_t *found = NULL;
    assert (gt_leases_create (leases, &spec, &found, err, sizeof (err)) == GT_ERR_CONFLICT);
    assert (strstr (err, "'keyed-old'"));
    for (int i = 0; i < 2; i++)
        gt_lease_info_clear (&kept [i]);
    gt_leases_destroy (&leases);
    s_sink_reset (&sink);
}

void
gt_leases_test (bool verbose)
{
    if (verbose)
        printf (" * gt_leases: ");
    gt_config_t *config = gt_config_new ();
    config->min_lease_ms = 50;
    config->default_lease_ms = 1000;
    config->max_lease_ms = 10000;
    config->max_leases_per_service = 3;
    config->lease_retention_ms = 500;
    static s_sink_t sink;
    s_sink_reset (&sink);
    gt_leases_t *leases = s_engine (config, &sink);
    char err [256];
    char a [33], b [33], c [33];

    //  Create, get: the record as the spec says
    uint64_t created_wall = s_wall;
    s_create (leases, "file-1", "svc-a", 100, GT_OK, a);
    gt_lease_info_t info;
    assert (s_get (leases, a, &info) == GT_OK);
    assert (strlen (info.id) == 32 && gt_lease_id_valid (info.id));
    assert (streq (info.object_id, "file-1") && streq (info.service_id, "svc-a"));
    assert (info.state == GT_STATE_ACTIVE && info.fence == 1 && info.ttl_ms == 100);
    assert (info.created_at == created_wall && info.renewed_at == created_wall);
    assert (info.expires_at == created_wall + 100 && info.renewals == 0);
    assert (info.metadata.count == 0 && info.cleanup == NULL);
    assert (sink.event_count == 1 && sink.events [0].kind == GT_EVENT_LEASE_CREATED);
    assert (sink.puts == 1 && sink.creates == 1);
    //  Default TTL
    s_create (leases, "file-2", "svc-a", 0, GT_OK, b);
    assert (s_get (leases, b, &info) == GT_OK && info.ttl_ms == 1000);

    //  Bounds, quota, bad ids
    s_create (leases, "file-3", "svc-a", 49, GT_ERR_INVALID_ARGUMENT, NULL);
    s_create (leases, "file-3", "svc-a", 10001, GT_ERR_INVALID_ARGUMENT, NULL);
    s_create (leases, "", "svc-a", 100, GT_ERR_INVALID_ARGUMENT, NULL);
    s_create (leases, "file-3", "", 100, GT_ERR_INVALID_ARGUMENT, NULL);
    s_create (leases, "file-3", "svc-a", 100, GT_OK, c);
    s_create (leases, "file-4", "svc-a", 100, GT_ERR_QUOTA_EXCEEDED, NULL);
    assert (s_get (leases, "0123456789abcdef0123456789abcdef", NULL) == GT_ERR_NOT_FOUND);
    assert (s_get (leases, "not-an-id", NULL) == GT_ERR_INVALID_ARGUMENT);
    assert (s_get (leases, "0123456789ABCDEF0123456789ABCDEF", NULL) == GT_ERR_INVALID_ARGUMENT);

    //  Ownership, renew
    assert (s_renew (leases, a, "svc-b", 0) == GT_ERR_PERMISSION_DENIED);
    assert (s_release (leases, a, "svc-b", false) == GT_ERR_PERMISSION_DENIED);
    assert (s_renew (leases, a, "svc-a", 5) == GT_ERR_INVALID_ARGUMENT);
    s_tick (leases, 60);
    assert (s_renew (leases, a, "svc-a", 200) == GT_OK);
    assert (s_get (leases, a, &info) == GT_OK);
    assert (info.ttl_ms == 200 && info.renewals == 1 && info.renewed_at == s_wall);
    assert (info.expires_at == s_wall + 200 && info.created_at == created_wall);
    assert (s_count_kind (&sink, GT_EVENT_LEASE_RENEWED) == 1);
    //  Three leases created (store puts marked so), the renewal a plain put
    assert (sink.creates == 3 && sink.puts == 4);

    //  Expiry: never before the deadline, exactly at it with a fake clock
    uint64_t deadline = info.expires_at;
    s_tick (leases, 199);
    assert (s_get (leases, a, &info) == GT_OK && info.state == GT_STATE_ACTIVE);
    assert (s_count_kind (&sink, GT_EVENT_LEASE_EXPIRED) == 1);    //  c expired (100 ms)
    s_tick (leases, 1);
    assert (s_get (leases, a, &info) == GT_OK && info.state == GT_STATE_EXPIRED);
    assert (info.expires_at == deadline);
    size_t last = sink.event_count - 1;
    //  lease.expired then object.reclaimed, reason expired, same lease
    assert (sink.events [last - 1].kind == GT_EVENT_LEASE_EXPIRED);
    assert (sink.events [last - 1].at >= sink.events [last - 1].expires_at);
    assert (sink.events [last].kind == GT_EVENT_OBJECT_RECLAIMED);
    assert (sink.events [last].reason == GT_REASON_EXPIRED);
    assert (streq (sink.events [last].lease_id, a));
    gt_leases_stats_t stats;
    gt_leases_stats (leases, &stats);
    //  a fired exactly on time; c (due at +100) was seen at the +259 tick
    assert (stats.expiry_late [0] == 1 && stats.expiry_late [5] == 1);
    assert (stats.expiry_late_max_ms == 159);

    //  Renewing an ended lease vs an unknown one
    assert (s_renew (leases, a, "svc-a", 0) == GT_ERR_LEASE_ENDED);
    assert (s_release (leases, a, "svc-a", false) == GT_ERR_LEASE_ENDED);
    //  Quota counts active leases only: a and c ended, so two more fit
    s_create (leases, "file-5", "svc-a", 100, GT_OK, NULL);
    s_create (leases, "file-6", "svc-a", 100, GT_OK, NULL);
    s_create (leases, "file-7", "svc-a", 100, GT_ERR_QUOTA_EXCEEDED, NULL);

    //  Retention: ended leases are forgotten after 500 ms
    s_tick (leases, 499);
    assert (s_get (leases, a, NULL) == GT_OK);
    s_tick (leases, 1);
    assert (s_get (leases, a, NULL) == GT_ERR_NOT_FOUND);
    assert (s_renew (leases, a, "svc-a", 0) == GT_ERR_NOT_FOUND);
    assert (sink.deletes >= 2);
    gt_leases_destroy (&leases);
    assert (leases == NULL);
    s_sink_reset (&sink);

    //  Multi-reference objects, retain, cleanups deduplicated by URL
    config->max_leases_per_service = 100;
    leases = s_engine (config, &sink);
    gt_lease_spec_t request;
    memset (&request, 0, sizeof (request));
    request.object_id = "blob";
    request.service_id = "svc-a";
    gt_cleanup_t cleanup = { "http://127.0.0.1:9/cleanup", "payload", false, 0, false, 0 };
    request.cleanup = &cleanup;
    gt_meta_entry_t entries [] = { { "owner", "me" } };
    gt_meta_t metadata = { entries, 1 };
    request.metadata = &metadata;
    gt_lease_t *lease;
    assert (gt_leases_create (leases, &request, &lease, err, sizeof (err)) == GT_OK);
    gt_leases_info (leases, lease, &info);
    strcpy (a, info.id);
    assert (info.cleanup && info.cleanup->has_max_retries && info.cleanup->max_retries == 3);
    assert (info.cleanup->retry_delay_ms == 5000 && streq (info.cleanup->payload, "payload"));
    assert (info.metadata.count == 1 && streq (info.metadata.entries [0].key, "owner"));
    request.service_id = "svc-b";      //  same URL: deduplicated
    assert (gt_leases_create (leases, &request, &lease, err, sizeof (err)) == GT_OK);
    gt_leases_info (leases, lease, &info);
    strcpy (b, info.id);
    assert (info.fence == 1);           //  same life
    //  Cleanups out of range (the URL policy is the caller's, before the engine)
    gt_cleanup_t bad = { "http://127.0.0.1:9/cleanup", NULL, true, GT_MAX_RETRIES_LIMIT + 1, false, 0 };
    request.cleanup = &bad;
    assert (gt_leases_create (leases, &request, &lease, err, sizeof (err)) == GT_ERR_INVALID_ARGUMENT);
    assert (streq (err, "cleanup retries or delay out of range"));
    //  ...unless a check of the lease's own values fails first, as before
    request.object_id = "";
    assert (gt_leases_create (leases, &request, &lease, err, sizeof (err)) == GT_ERR_INVALID_ARGUMENT);
    assert (strstr (err, "object_id must be"));
    assert (gt_leases_check_spec (leases, &request, err, sizeof (err)) == GT_ERR_INVALID_ARGUMENT);
    assert (strstr (err, "object_id must be"));
    request.object_id = "blob";
    assert (gt_leases_check_spec (leases, &request, err, sizeof (err)) == GT_OK);
    request.cleanup = NULL;
    assert (s_release (leases, a, "svc-a", false) == GT_OK);
    assert (s_count_kind (&sink, GT_EVENT_OBJECT_RECLAIMED) == 0);
    assert (sink.reclaims == 0);
    assert (s_release (leases, b, "svc-b", false) == GT_OK);
    assert (s_count_kind (&sink, GT_EVENT_OBJECT_RECLAIMED) == 1);
    assert (sink.reclaims == 1 && sink.cleanups == 1);
    last = sink.event_count - 1;
    assert (sink.events [last].reason == GT_REASON_RELEASED && streq (sink.events [last].lease_id, b));
    assert (sink.events [last - 1].kind == GT_EVENT_LEASE_RELEASED);
    //  A new life gets a larger fence
    s_create (leases, "blob", "svc-a", 100, GT_OK, c);
    assert (s_get (leases, c, &info) == GT_OK && info.fence == 2);
    //  Retain: dropped reference, no reclaim, no cleanup; then a new life
    assert (s_release (leases, c, "svc-a", true) == GT_OK);
    assert (s_count_kind (&sink, GT_EVENT_OBJECT_RECLAIMED) == 1 && sink.reclaims == 1);
    s_create (leases, "blob", "svc-a", 100, GT_OK, c);
    assert (s_get (leases, c, &info) == GT_OK && info.fence == 3);
    s_tick (leases, 100);               //  c expires: reclaimed
    assert (s_count_kind (&sink, GT_EVENT_OBJECT_RECLAIMED) == 2);
    //  When every lease is forgotten the object record goes; its fences
    //  are still never handed out again
    s_tick (leases, 500);
    gt_leases_stats (leases, &stats);
    assert (stats.retained_leases == 0 && stats.active_leases == 0);
    assert (sink.object_deletes == 1);
    s_create (leases, "blob", "svc-a", 100, GT_OK, c);
    assert (s_get (leases, c, &info) == GT_OK && info.fence == 4);
    s_create (leases, "brand-new", "svc-a", 100, GT_OK, c);
    assert (s_get (leases, c, &info) == GT_OK && info.fence == 4);
    gt_leases_destroy (&leases);
    s_sink_reset (&sink);

    //  Idempotent CREATE
    leases = s_engine (config, &sink);
    memset (&request, 0, sizeof (request));
    request.object_id = "row-1";
    request.service_id = "svc-a";
    request.idempotency_key = "key-1";
    assert (gt_leases_create (leases, &request, &lease, err, sizeof (err)) == GT_OK);
    gt_lease_t *first = lease;
    assert (gt_leases_create (leases, &request, &lease, err, sizeof (err)) == GT_OK);
    assert (lease == first);
    assert (sink.event_count == 1);     //  nothing created the second time
    request.service_id = "svc-b";       //  keys are per service
    assert (gt_leases_create (leases, &request, &lease, err, sizeof (err)) == GT_OK);
    assert (lease != first);
    request.service_id = "svc-a";
    request.object_id = "row-2";
    assert (gt_leases_create (leases, &request, &lease, err, sizeof (err)) == GT_ERR_CONFLICT);
    gt_leases_info (leases, first, &info);
    strcpy (a, info.id);
    assert (sink.stored_count == 2 && streq (sink.stored_keys [0], "key-1"));
    gt_leases_destroy (&leases);
    s_sink_reset (&sink);

    //  Grace period: reclaim waits; a new lease during grace cancels it
    config->grace_ms = 300;
    leases = s_engine (config, &sink);
    s_create (leases, "tmp", "svc-a", 100, GT_OK, a);
    s_tick (leases, 100);
    assert (s_count_kind (&sink, GT_EVENT_LEASE_EXPIRED) == 1);
    assert (s_count_kind (&sink, GT_EVENT_OBJECT_RECLAIMED) == 0);
    gt_leases_stats (leases, &stats);
    assert (stats.pending_reclaims == 1);
    s_tick (leases, 200);
    s_create (leases, "tmp", "svc-b", 100, GT_OK, b);          //  cancels the reclaim
    assert (s_get (leases, b, &info) == GT_OK && info.fence == 1);     //  same life
    s_tick (leases, 99);
    gt_leases_stats (leases, &stats);
    assert (stats.pending_reclaims == 0);
    assert (s_count_kind (&sink, GT_EVENT_OBJECT_RECLAIMED) == 0);
    assert (s_release (leases, b, "svc-b", false) == GT_OK);
    s_tick (leases, 299);
    assert (s_count_kind (&sink, GT_EVENT_OBJECT_RECLAIMED) == 0);
    s_tick (leases, 1);
    assert (s_count_kind (&sink, GT_EVENT_OBJECT_RECLAIMED) == 1);
    last = sink.event_count - 1;
    assert (sink.events [last].reason == GT_REASON_RELEASED && streq (sink.events [last].lease_id, b));
    //  Retention shorter than grace: the reclaim still reports its lease
    config->lease_retention_ms = 50;
    gt_leases_destroy (&leases);
    s_sink_reset (&sink);
    leases = s_engine (config, &sink);
    s_create (leases, "tmp", "svc-a", 100, GT_OK, a);
    s_tick (leases, 100);
    s_tick (leases, 60);
    assert (s_get (leases, a, NULL) == GT_ERR_NOT_FOUND);
    s_tick (leases, 240);
    assert (s_count_kind (&sink, GT_EVENT_OBJECT_RECLAIMED) == 1);
    last = sink.event_count - 1;
    assert (streq (sink.events [last].lease_id, a) && sink.events [last].state == GT_STATE_EXPIRED);
    gt_leases_destroy (&leases);
    s_sink_reset (&sink);
    config->grace_ms = 0;
    config->lease_retention_ms = 500;

    //  LIST: filters, pages, a cursor that survives purges
    config->max_leases_per_service = 1000;
    leases = s_engine (config, &sink);
    char ids [60][33];
    for (int i = 0; i < 60; i++) {
        char object [32];
        snprintf (object, sizeof (object), "obj-%d", i % 20);
        s_create (leases, object, i % 2 ? "odd" : "even", i < 30 ? 100 : 5000, GT_OK, ids [i]);
    }
    gt_lease_t *page [100];
    size_t count = 0;
    char cursor [32];
    gt_leases_filter_t filter = { "odd", NULL, false, 0, false, 0, false, 0 };
    assert (gt_leases_list (leases, &filter, NULL, 100, SIZE_MAX, page, &count, cursor, err, sizeof (err)) == GT_OK);
    assert (count == 30 && *cursor == 0);
    gt_leases_filter_t by_object = { NULL, "obj-3", false, 0, false, 0, false, 0 };
    assert (gt_leases_list (leases, &by_object, NULL, 100, SIZE_MAX, page, &count, cursor, err, sizeof (err)) == GT_OK);
    assert (count == 3);
    gt_leases_filter_t nobody = { "nobody", NULL, false, 0, false, 0, false, 0 };
    assert (gt_leases_list (leases, &nobody, NULL, 100, SIZE_MAX, page, &count, cursor, err, sizeof (err)) == GT_OK);
    assert (count == 0 && *cursor == 0);
    //  Page through 7 at a time; halfway, the first 30 expire and are purged
    bool seen [60] = { false };
    size_t visited = 0, pages = 0;
    char *resume = NULL;
    do {
        assert (gt_leases_list (leases, NULL, resume, 7, SIZE_MAX, page, &count, cursor, err, sizeof (err)) == GT_OK);
        for (size_t i = 0; i < count; i++) {
            gt_leases_info (leases, page [i], &info);
            int found = -1;
            for (int j = 0; j < 60; j++)
                if (streq (ids [j], info.id))
                    found = j;
            assert (found >= 0 && !seen [found]);
            seen [found] = true;
            visited++;
        }
        zstr_free (&resume);
        resume = *cursor ? strdup (cursor) : NULL;
        if (++pages == 5)
            s_tick (leases, 700);       //  leases 0..29 expire then are purged
    } while (resume);
    assert (visited == 35 + 25);        //  5 pages of 7 seen before, then 25 live ones
    //  Filter by state; a bad cursor
    gt_leases_filter_t active = { NULL, NULL, false, 0, true, GT_STATE_ACTIVE, false, 0 };
    assert (gt_leases_list (leases, &active, NULL, 100, SIZE_MAX, page, &count, cursor, err, sizeof (err)) == GT_OK);
    assert (count == 30);
    assert (gt_leases_list (leases, NULL, "bogus", 10, SIZE_MAX, page, &count, cursor, err, sizeof (err)) == GT_ERR_INVALID_ARGUMENT);
    assert (gt_leases_list (leases, NULL, "c999999", 10, SIZE_MAX, page, &count, cursor, err, sizeof (err)) == GT_ERR_INVALID_ARGUMENT);
    //  A byte budget cuts a page short, still with a cursor
    assert (gt_leases_list (leases, NULL, NULL, 100, 1, page, &count, cursor, err, sizeof (err)) == GT_OK);
    assert (count == 1 && *cursor);
    gt_leases_destroy (&leases);
    s_sink_reset (&sink);

    //  Journal: everything since a mark can be undone exactly
    config->grace_ms = 100;
    leases = s_engine (config, &sink);
    gt_leases_journal (leases, true);
    s_create (leases, "keep", "svc-a", 1000, GT_OK, a);
    s_create (leases, "ends", "svc-a", 100, GT_OK, b);
    s_create (leases, "shared", "svc-a", 1000, GT_OK, c);
    s_create (leases, "shared", "svc-b", 200, GT_OK, NULL);
    s_tick (leases, 100);               //  b expires, reclaim pending
    gt_leases_commit (leases, gt_leases_mark (leases));
    char *before = s_snapshot (leases);
    gt_leases_mark_t mark = gt_leases_mark (leases);
    //  Every kind of change: create (new service, new object), renew,
    //  release with retain, expiry, grace cancel, purge, reclaim
    s_create (leases, "fresh", "svc-c", 1000, GT_OK, NULL);
    memset (&request, 0, sizeof (request));
    request.object_id = "ends";
    request.service_id = "svc-a";
    request.cleanup = &cleanup;
    request.idempotency_key = "k";
    assert (gt_leases_create (leases, &request, &lease, err, sizeof (err)) == GT_OK);
    assert (s_renew (leases, a, "svc-a", 2000) == GT_OK);
    assert (s_release (leases, c, "svc-a", true) == GT_OK);
    s_tick (leases, 150);               //  the svc-b lease on "shared" expires
    s_tick (leases, 600);               //  purges, reclaims
    char *during = s_snapshot (leases);
    assert (!streq (before, during));
    gt_leases_rollback (leases, mark);
    char *after = s_snapshot (leases);
    if (!streq (before, after))
        printf ("before: %s\nafter:  %s\n", before, after);
    assert (streq (before, after));
    //  The restored state keeps working: the pending reclaim fires; the
    //  idempotency key is free again
    size_t reclaims = s_count_kind (&sink, GT_EVENT_OBJECT_RECLAIMED);
    s_tick (leases, 0);
    assert (s_count_kind (&sink, GT_EVENT_OBJECT_RECLAIMED) > reclaims);
    assert (gt_leases_create (leases, &request, &lease, err, sizeof (err)) == GT_OK);
    s_tick (leases, 5000);              //  everything expires...
    s_tick (leases, 1000);              //  ...is reclaimed and forgotten
    gt_leases_commit (leases, gt_leases_mark (leases));
    gt_leases_stats (leases, &stats);
    assert (stats.active_leases == 0 && stats.retained_leases == 0);
    assert (stats.pending_reclaims == 0 && stats.services == 0);
    zstr_free (&before);
    zstr_free (&during);
    zstr_free (&after);
    gt_leases_destroy (&leases);
    s_sink_reset (&sink);
    config->grace_ms = 0;

    //  Recovery: what a store kept re-creates the same leases
    leases = s_engine (config, &sink);
    s_create (leases, "r1", "svc-a", 1000, GT_OK, a);
    memset (&request, 0, sizeof (request));
    request.object_id = "r2";
    request.service_id = "svc-b";
    request.idempotency_key = "again";
    request.has_ttl = true;
    request.ttl_ms = 300;
    assert (gt_leases_create (leases, &request, &lease, err, sizeof (err)) == GT_OK);
    s_create (leases, "r3", "svc-a", 100, GT_OK, c);
    s_tick (leases, 100);               //  r3 expires
    static s_sink_t sink2;
    s_sink_reset (&sink2);
    gt_leases_t *restored = s_engine (config, &sink2);
    for (size_t i = 0; i < sink.stored_count; i++)
        assert (gt_leases_restore_lease (restored, &sink.stored [i],
                                         *sink.stored_keys [i] ? sink.stored_keys [i] : NULL,
                                         err, sizeof (err)) == GT_OK);
    assert (gt_leases_restore_lease (restored, &sink.stored [0], NULL, err, sizeof (err)) == GT_ERR_INVALID_ARGUMENT);
    char *original = s_snapshot (leases);
    char *copy = s_snapshot (restored);
    assert (streq (original, copy));
    zstr_free (&original);
    zstr_free (&copy);
    assert (sink2.event_count == 0);    //  restoring publishes nothing
    //  The idempotency key came back; the restored lease expires on time
    assert (gt_leases_create (restored, &request, &lease, err, sizeof (err)) == GT_OK);
    assert (sink2.event_count == 0);
    s_tick (restored, 199);
    assert (s_count_kind (&sink2, GT_EVENT_LEASE_EXPIRED) == 0);
    s_tick (restored, 1);
    assert (s_count_kind (&sink2, GT_EVENT_LEASE_EXPIRED) == 1);
    assert (s_get (restored, c, NULL) == GT_OK);
    assert (gt_leases_restore_fence_floor (restored, 100, err, sizeof (err)) == GT_OK);
    s_create (restored, "never-seen", "svc-a", 100, GT_OK, b);
    assert (s_get (restored, b, &info) == GT_OK && info.fence == 100);
    //  Fences have 48 bits: a store's beyond GT_LEASE_FENCE_MAX is refused
    //  (a lease, an object, the counter), the largest one is kept whole,
    //  and the floor above it does not wrap (GCC adds in a bit-field's width)
    assert (gt_leases_restore_fence_floor (restored, GT_LEASE_FENCE_MAX + 2, err, sizeof (err))
            == GT_ERR_INVALID_ARGUMENT);
    assert (strstr (err, "fence counter"));
    assert (gt_leases_restore_object (restored, "too-far", GT_LEASE_FENCE_MAX + 1, 0, GT_REASON_NONE, NULL,
                                      err, sizeof (err)) == GT_ERR_INVALID_ARGUMENT);
    assert (strstr (err, "too-far"));
    gt_lease_info_t far = info;
    far.fence = GT_LEASE_FENCE_MAX + 1;
    memcpy (far.id, "00112233445566778899aabbccddeeff", GT_LEASE_ID_LEN + 1);
    far.object_id = (char *) "far-object";
    assert (gt_leases_restore_lease (restored, &far, NULL, err, sizeof (err)) == GT_ERR_INVALID_ARGUMENT);
    far.fence = GT_LEASE_FENCE_MAX;
    far.state = GT_STATE_RELEASED;
    assert (gt_leases_restore_lease (restored, &far, NULL, err, sizeof (err)) == GT_OK);
    assert (s_get (restored, far.id, &info) == GT_OK && info.fence == GT_LEASE_FENCE_MAX);
    //  An object of the largest fence forgotten: the floor is just above it;
    //  and at the field's very top (no restore lets a fence there) the
    //  floor still does not wrap to 0
    gt_wheel_t *wheels [2] = { gt_wheel_new (0), gt_wheel_new (0) };
    gt_lease_tables_t *tables = gt_lease_tables_new (wheels [0], wheels [1]);
    gt_lease_object_t *top = gt_lease_tables_object_acquire (tables, "top");
    top->fence = GT_LEASE_FENCE_MAX;
    gt_lease_tables_object_forget (tables, top);
    assert (gt_lease_tables_fence_floor (tables) == GT_LEASE_FENCE_MAX + 1);
    top = gt_lease_tables_object_acquire (tables, "top");
    top->fence = GT_LEASE_FENCE_MAX + 1;
    gt_lease_tables_object_forget (tables, top);
    assert (gt_lease_tables_fence_floor (tables) == GT_LEASE_FENCE_MAX + 2);
    gt_lease_tables_destroy (&tables);
    gt_wheel_destroy (&wheels [0]);
    gt_wheel_destroy (&wheels [1]);
    gt_leases_destroy (&restored);
    gt_leases_destroy (&leases);
    s_sink_reset (&sink);
    s_sink_reset (&sink2);
    s_test_callbacks (config);
    s_test_forget (config);
    s_test_restore_order (config);
    s_test_forget_keys (config);
    s_test_list_budget (config);
    s_test_order_holes (config);
    for (uint64_t seed = 1; seed <= 3; seed++)
        s_test_order_walk (config, seed * 0x9E3779B97F4A7C15ULL);
    s_test_grace_hold (config);
    s_test_lease_cap (config);
    gt_config_destroy (&config);
}

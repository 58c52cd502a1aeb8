/*  gt_pgload_test.c — selftest of gt_pgload, against the PostgreSQL server
    in DATABASE_URL (in a database of its own, gt_pgtestdb): leases, objects,
    events and outbox rows written through gt_pgwriter and read back.  */
#include <czmq.h>
#include "gt_pgload.h"
#include "gt_pgwriter.h"
#include "gt_pgschema.h"
#include "gt_pgtestdb.h"
#include "gt_pg_selftest.h"

#define S_TEST_LEASES   20000

typedef struct {
    uint8_t seen [S_TEST_LEASES];   //  times each test lease was delivered
    size_t leases;                  //  leases delivered
    size_t objects;                 //  objects delivered
    uint64_t last_event;            //  seq of the last event delivered
    size_t events;                  //  events delivered
    size_t callbacks;               //  outbox rows delivered
    uint64_t last_job;              //  job id of the last one
    size_t stop_after;              //  stop the load after this many leases (0: never)
    uint64_t counted;               //  what on_lease_count said (UINT64_MAX: not called)
    uint8_t hinted [S_TEST_LEASES]; //  times each test lease was announced (on_lease_ahead)
    size_t hints;                   //  announcements
} s_test_sink_t;

//  Each lease is announced before it comes, at most GT_PGLOAD_AHEAD rows
//  early, with the object id it is stored with
static void
s_test_on_lease_ahead (void *arg, const uint8_t id [16], const char *object_id, size_t object_id_len)
{
    s_test_sink_t *sink = (s_test_sink_t *) arg;
    char hex [33];
    for (int index = 0; index < 16; index++)
        snprintf (hex + 2 * index, 3, "%02x", id [index]);
    uint32_t index = gt_pgtestdb_lease_index (hex);
    assert (index < S_TEST_LEASES);
    gt_lease_info_t expected;
    gt_pgtestdb_lease_t storage;
    gt_pgtestdb_lease (&expected, &storage, index, 0);
    assert (strlen (expected.object_id) == object_id_len);
    assert (memcmp (expected.object_id, object_id, object_id_len) == 0);
    sink->hinted [index]++;
    sink->hints++;
    assert (sink->hints - sink->leases <= GT_PGLOAD_AHEAD);
}

static int
s_test_on_lease_count (void *arg, uint64_t leases)
{
    s_test_sink_t *sink = (s_test_sink_t *) arg;
    assert (sink->leases == 0);                         //  before the first lease
    sink->counted = leases;
    return 0;
}

static int
s_test_on_lease (void *arg, const gt_lease_info_t *lease, const char *idempotency_key)
{
    s_test_sink_t *sink = (s_test_sink_t *) arg;
    uint32_t index = gt_pgtestdb_lease_index (lease->id);
    assert (index < S_TEST_LEASES);
    gt_lease_info_t expected;
    gt_pgtestdb_lease_t storage;
    const char *key = gt_pgtestdb_lease (&expected, &storage, index, 0);
    assert (gt_pgtestdb_lease_equal (lease, &expected));
    assert ((key == NULL && idempotency_key == NULL)
         || (key && idempotency_key && streq (key, idempotency_key)));
    //  (in any order: the broker sorts them, gt_lease_tables_order_settle)
    if (sink->hints) {
        assert (sink->hinted [index] == sink->seen [index] + 1);
        assert (sink->hints > sink->leases);
    }
    sink->seen [index]++;
    sink->leases++;
    return sink->stop_after && sink->leases == sink->stop_after? -1: 0;
}

static int
s_test_on_object (void *arg, const gt_pgobject_t *object)
{
    s_test_sink_t *sink = (s_test_sink_t *) arg;
    if (streq (object->object_id, "object-ended")) {
        assert (object->live);
        assert (object->fence == 99999 && object->pending_at == 1700000009000);
        assert (object->reason == GT_REASON_RELEASED);
        assert (streq (object->last_lease_id, "fedcba9876543210fedcba9876543210"));
    }
    else {
        assert (!object->live);
        assert (object->pending_at == 0 && object->reason == GT_REASON_NONE);
        assert (object->last_lease_id == NULL);
        assert (object->fence == strtoull (object->object_id + strlen ("object-"), NULL, 10) + 1);
    }
    sink->objects++;
    return 0;
}

static int
s_test_on_event (void *arg, uint64_t seq, gt_event_kind_t kind, uint64_t at,
                 const char *topic, const void *body, size_t body_len)
{
    s_test_sink_t *sink = (s_test_sink_t *) arg;
    assert (seq > sink->last_event);
    sink->last_event = seq;
    assert (kind == (gt_event_kind_t) (seq % GT_EVENT_COUNT_));
    assert (at == 1700000000000 + seq);
    assert (streq (topic, "expired.CACHE_ENTRY.svc"));
    assert (body_len == sizeof (uint64_t) && memcmp (body, &seq, body_len) == 0);
    sink->events++;
    return 0;
}

static int
s_test_on_callback (void *arg, const gt_pgcallback_t *callback)
{
    s_test_sink_t *sink = (s_test_sink_t *) arg;
    assert (callback->job_id > sink->last_job);         //  by job id
    sink->last_job = callback->job_id;
    if (callback->job_id == 5) {
        assert (callback->lease_id == NULL && callback->next_at == 0);
        assert (callback->status == GT_CLEANUP_DEAD && callback->attempts == 4);
        assert (streq (callback->last_error, "HTTP 500"));
    }
    else {
        assert (callback->job_id == 9);
        assert (streq (callback->lease_id, "fedcba9876543210fedcba9876543210"));
        assert (callback->status == GT_CLEANUP_PENDING && callback->next_at == 1700000009000);
        assert (streq (callback->last_error, ""));
    }
    assert (streq (callback->url, "http://127.0.0.1:9/x") && streq (callback->body, "{\"a\":\"\u00e9\"}"));
    assert (callback->max_retries == 3 && callback->retry_delay_ms == 250);
    sink->callbacks++;
    return 0;
}

//  The metadata decoder on its own: escapes jsonb's text may hold
static void
s_test_metadata (void)
{
    gt_meta_t metadata;
    const char good [] = "\x01{\"k\\u00e9\": \"\\ud83d\\ude00 \\/ \\b\\\"\", \"\": \"x\"}";
    assert (gt_pgload_metadata (good, strlen (good), &metadata));
    assert (metadata.count == 2);
    assert (streq (metadata.entries [0].key, "k\xc3\xa9"));
    assert (streq (metadata.entries [0].value, "\xf0\x9f\x98\x80 / \b\""));
    assert (streq (metadata.entries [1].key, "") && streq (metadata.entries [1].value, "x"));
    free (metadata.entries);
    const char *bad [] = { "\x01{\"k\": \"\\u0000\"}", "\x01{\"k\": 1}", "\x01{\"k\": \"v\"",
                           "\x01[]", "\x01{\"k\": \"\\ud83d\"}", "\x02{}", "\x01{} x" };
    for (size_t index = 0; index < sizeof bad / sizeof bad [0]; index++) {
        assert (!gt_pgload_metadata (bad [index], strlen (bad [index]), &metadata));
        free (metadata.entries);
    }
}

void
gt_pgload_test (bool verbose)
{
    printf (" * gt_pgload: ");
    s_test_metadata ();
    char err [512];
    gt_pgtestdb_t *testdb = gt_pgtestdb_new ();
    assert (testdb);
    PGconn *conn = gt_pgschema_connect (gt_pgtestdb_conninfo (testdb), 0, err, sizeof err);
    assert (conn);

    //  Not migrated: a clear error
    s_test_sink_t *sink = (s_test_sink_t *) zmalloc (sizeof (s_test_sink_t));
    gt_pgload_options_t options = { .ended_leases = false, .event_history = 100, .on_lease = s_test_on_lease,
                                    .on_object = s_test_on_object, .on_event = s_test_on_event, .arg = sink };
    gt_pgload_result_t result;
    assert (gt_pgload (conn, &options, &result, err, sizeof err) == -1);
    assert (strstr (err, "gt_meta"));

    //  Empty store
    assert (gt_pgschema_migrate (conn, err, sizeof err) == gt_pgschema_latest ());
    assert (gt_pgload (conn, &options, &result, err, sizeof err) == 0);
    assert (result.leases == 0 && result.objects == 0 && result.events == 0);
    assert (result.last_seq == 0 && result.fence_counter == 0);

    //  Write through the writer, read back
    gt_pgwriter_t *writer = gt_pgwriter_new (gt_pgtestdb_conninfo (testdb), NULL, NULL);
    gt_pgbatch_t *batch = gt_pgbatch_new ();
    size_t active = 0;
    for (uint32_t index = 0; index < S_TEST_LEASES; index++) {
        gt_lease_info_t lease;
        gt_pgtestdb_lease_t storage;
        const char *key = gt_pgtestdb_lease (&lease, &storage, index, 0);
        gt_pgbatch_lease_put (batch, &lease, key);
        if (index % 2 == 0) {
            gt_pgobject_t object = { lease.object_id, lease.fence, false, 0, GT_REASON_NONE, NULL };
            gt_pgbatch_object_put (batch, &object);
        }
        if (lease.state == GT_STATE_ACTIVE)
            active++;
    }
    gt_pgobject_t ended = { "object-ended", 99999, true, 1700000009000, GT_REASON_RELEASED,
                            "fedcba9876543210fedcba9876543210" };
    gt_pgbatch_object_put (batch, &ended);
    for (uint64_t seq = 1; seq <= 30; seq++)
        gt_pgbatch_event (batch, 0, seq, (gt_event_kind_t) (seq % GT_EVENT_COUNT_), 1700000000000 + seq,
                          "expired.CACHE_ENTRY.svc", &seq, sizeof seq);
    gt_pgbatch_meta (batch, 25, 77);        //  behind the rows: the loader takes the larger
    gt_pgcallback_t callback = { 9, "fedcba9876543210fedcba9876543210", "http://127.0.0.1:9/x",
                                 "{\"a\":\"\u00e9\"}", 3, 250, 0, GT_CLEANUP_PENDING, 1700000009000, NULL, 0 };
    gt_pgbatch_callback_put (batch, &callback);
    callback.job_id = 5;
    callback.lease_id = NULL;
    callback.status = GT_CLEANUP_DEAD;
    callback.attempts = 4;
    callback.next_at = 0;
    callback.last_error = "HTTP 500";
    gt_pgbatch_callback_put (batch, &callback);
    gt_pgwriter_submit (writer, &batch);
    zpoller_t *poller = zpoller_new (gt_pgwriter_sock (writer), NULL);
    //  The writer connected by itself: first it says so, then the commit
    gt_pgnotice_t notice;
    assert (zpoller_wait (poller, 30000));
    assert (gt_pgwriter_recv (writer, &notice) == 0);
    assert (notice.kind == GT_PGNOTICE_STATE && notice.ok);
    assert (zpoller_wait (poller, 30000));
    assert (gt_pgwriter_recv (writer, &notice) == 0);
    if (!notice.ok)
        fprintf (stderr, "%s\n", notice.text);
    assert (notice.kind == GT_PGNOTICE_COMMIT && notice.ok);
    zpoller_destroy (&poller);
    gt_pgwriter_destroy (&writer);

    //  Active leases only, the 10 newest events, the outbox; counted first
    options.event_history = 10;
    options.on_callback = s_test_on_callback;
    options.on_lease_count = s_test_on_lease_count;
    sink->counted = UINT64_MAX;
    int64_t started = zclock_mono ();
    int loaded = gt_pgload (conn, &options, &result, err, sizeof err);
    if (loaded)
        fprintf (stderr, "%s\n", err);
    assert (loaded == 0);
    if (verbose)
        printf ("\n   loaded %zu leases, %zu objects in %d ms\n", sink->leases, sink->objects,
                (int) (zclock_mono () - started));
    assert (result.leases == active && sink->leases == active);
    assert (sink->counted == active);
    assert (result.objects == S_TEST_LEASES / 2 + 1 && sink->objects == result.objects);
    assert (result.events == 10 && sink->events == 10 && sink->last_event == 30);
    assert (result.last_seq == 30);
    assert (result.fence_counter == 99999);
    assert (result.callbacks == 2 && sink->callbacks == 2);
    options.on_callback = NULL;
    for (uint32_t index = 0; index < S_TEST_LEASES; index++)
        assert (sink->seen [index] == (index % 10 == 9? 0: 1));

    //  Ended leases too; no events; each lease announced ahead
    memset (sink, 0, sizeof *sink);
    options.ended_leases = true;
    options.event_history = 0;
    options.on_lease_ahead = s_test_on_lease_ahead;
    assert (gt_pgload (conn, &options, &result, err, sizeof err) == 0);
    assert (result.leases == S_TEST_LEASES && result.events == 0);
    assert (sink->counted == S_TEST_LEASES);
    assert (sink->hints == S_TEST_LEASES);
    for (uint32_t index = 0; index < S_TEST_LEASES; index++)
        assert (sink->seen [index] == 1 && sink->hinted [index] == 1);

    //  A callback stops the load; the connection stays usable
    memset (sink, 0, sizeof *sink);
    sink->stop_after = 5;
    assert (gt_pgload (conn, &options, &result, err, sizeof err) == -1);
    assert (strstr (err, "stopped"));
    assert (sink->leases == 5);
    //  The rows read ahead of the fifth (PostgreSQL sends one row a
    //  message, so the ring holds GT_PGLOAD_AHEAD - 1 more): dropped
    assert (sink->hints == 5 + GT_PGLOAD_AHEAD - 1);
    assert (PQtransactionStatus (conn) == PQTRANS_IDLE);

    //  A row that is not a lease: named in the error
    gt_pgtestdb_exec (conn, "UPDATE gt_leases SET metadata = '{\"n\": 1}' WHERE object_id = 'object-3'"
                            " AND service_id = 'svc-0'");
    memset (sink, 0, sizeof *sink);
    assert (gt_pgload (conn, &options, &result, err, sizeof err) == -1);
    assert (strstr (err, "bad metadata"));
    assert (strstr (err, "00000007"));
    if (verbose)
        printf ("   %s\n", err);

    free (sink);
    PQfinish (conn);
    gt_pgtestdb_destroy (&testdb);
    printf ("OK\n");
}

/*  gt_store_pg_test.c — selftest of gt_store_pg, against the PostgreSQL
    server in DATABASE_URL (a fresh database of its own, gt_pgtestdb):
    recording, completions, recovery, an outage, pruning, refusals.  */
#include <czmq.h>
#include "gt_store_pg.h"
#include "gt_pgschema.h"
#include "gt_pgtestdb.h"
#include "gt_pg_selftest.h"

//  What a recovery handed to the loader
typedef struct {
    size_t leases;                  //  leases recovered
    size_t objects;                 //  objects recovered
    size_t events;                  //  events recovered
    size_t callbacks;               //  outbox rows recovered
    uint64_t last_seq;              //  newest event seq recovered
    uint64_t fence_counter;         //  largest fence recovered
    bool lease_ok;                  //  the lease came back field by field
    bool object_ok;                 //  the pending reclaim came back
    bool callback_ok;               //  the outbox row came back
    bool counters_last;             //  counters came after everything else
    uint64_t expected;              //  leases announced (expect), before the first lease
    uint64_t hints;                 //  leases announced one by one (lease_ahead)
    bool expected_first;            //  the announcement came before any lease
} s_test_recovered_t;

static const char *s_test_lease_id = "0123456789abcdef0123456789abcdef";

static void
s_test_on_lease (void *ctx, const gt_lease_info_t *lease, const char *key)
{
    s_test_recovered_t *recovered = (s_test_recovered_t *) ctx;
    recovered->leases++;
    recovered->lease_ok = streq (lease->id, s_test_lease_id) && streq (lease->object_id, "object-1")
                       && lease->fence == 41 && lease->expires_at == 1700000030000
                       && lease->cleanup_status == GT_CLEANUP_PENDING && key && streq (key, "key-1");
}

//  The store announces each lease before handing it over
static void
s_test_on_lease_ahead (void *ctx, const uint8_t id [16], const char *object_id, size_t object_id_len)
{
    s_test_recovered_t *recovered = (s_test_recovered_t *) ctx;
    assert (recovered->hints == recovered->leases);
    const uint8_t expected [16] = { 0x01, 0x23, 0x45, 0x67, 0x89, 0xab, 0xcd, 0xef,
                                    0x01, 0x23, 0x45, 0x67, 0x89, 0xab, 0xcd, 0xef };
    assert (memcmp (id, expected, 16) == 0);
    assert (object_id_len == 8 && memcmp (object_id, "object-1", 8) == 0);
    recovered->hints++;
}

static void
s_test_on_expect (void *ctx, uint64_t leases)
{
    s_test_recovered_t *recovered = (s_test_recovered_t *) ctx;
    recovered->expected = leases;
    recovered->expected_first = recovered->leases == 0;
}

static void
s_test_on_object (void *ctx, const gt_store_object_t *object)
{
    s_test_recovered_t *recovered = (s_test_recovered_t *) ctx;
    recovered->objects++;
    recovered->object_ok = streq (object->object_id, "object-pending") && object->pending_at == 1700000040000
                        && object->reason == GT_REASON_EXPIRED && object->live;
}

static void
s_test_on_event (void *ctx, uint64_t seq, const char *topic, const void *body, size_t size)
{
    (void) seq;
    (void) topic;
    (void) body;
    (void) size;
    ((s_test_recovered_t *) ctx)->events++;
}

static void
s_test_on_counters (void *ctx, uint64_t last_seq, uint64_t fence_counter)
{
    s_test_recovered_t *recovered = (s_test_recovered_t *) ctx;
    recovered->last_seq = last_seq;
    recovered->fence_counter = fence_counter;
    recovered->counters_last = recovered->leases && recovered->callbacks;
}

static void
s_test_on_callback (void *ctx, const gt_store_callback_t *callback)
{
    s_test_recovered_t *recovered = (s_test_recovered_t *) ctx;
    recovered->callbacks++;
    recovered->callback_ok = callback->job_id == 7 && streq (callback->lease_id, s_test_lease_id)
                          && streq (callback->body, "{}") && callback->status == GT_CLEANUP_PENDING
                          && callback->attempts == 1 && streq (callback->last_error, "HTTP 503");
}

//  Wait for the next completion (STATE notices are taken on the way).
static bool
s_test_complete (gt_store_t *store, uint64_t *batch_p, bool *durable_p)
{
    zpoller_t *poller = zpoller_new (gt_store_completion_sock (store), NULL);
    int64_t deadline = zclock_mono () + 20000;
    bool done = false;
    while (!done && zclock_mono () < deadline)
        if (zpoller_wait (poller, 1000))
            done = gt_store_completion (store, batch_p, durable_p) == 0;
    zpoller_destroy (&poller);
    return done;
}

//  Wait until the store's health is as wanted (notices read as they come).
static bool
s_test_health (gt_store_t *store, bool healthy)
{
    zpoller_t *poller = zpoller_new (gt_store_completion_sock (store), NULL);
    int64_t deadline = zclock_mono () + 20000;
    while (gt_store_healthy (store) != healthy && zclock_mono () < deadline)
        if (zpoller_wait (poller, 1000)) {
            uint64_t batch;
            bool durable;
            gt_store_completion (store, &batch, &durable);
        }
    zpoller_destroy (&poller);
    return gt_store_healthy (store) == healthy;
}

static gt_store_t *
s_test_open (gt_pgtestdb_t *testdb, int history)
{
    gt_config_t *config = gt_config_new ();
    gt_config_set_storage (config, "postgres");
    gt_config_set_database_url (config, gt_pgtestdb_conninfo (testdb));
    config->event_history = (uint64_t) history;
    char err [512];
    gt_store_t *store = gt_store_pg_open (config, err, sizeof (err));
    if (!store)
        fprintf (stderr, "gt_store_pg: %s\n", err);
    gt_config_destroy (&config);
    return store;
}

static void
s_test_allow (gt_pgtestdb_t *testdb, bool allow)
{
    char sql [160];
    snprintf (sql, sizeof sql, "ALTER DATABASE %s ALLOW_CONNECTIONS %s", gt_pgtestdb_name (testdb),
              allow ? "true" : "false");
    gt_pgtestdb_exec (gt_pgtestdb_admin (testdb), sql);
    if (!allow) {
        snprintf (sql, sizeof sql, "SELECT pg_terminate_backend (pid) FROM pg_stat_activity"
                  " WHERE datname = '%s'", gt_pgtestdb_name (testdb));
        gt_pgtestdb_exec (gt_pgtestdb_admin (testdb), sql);
    }
}

void
gt_store_pg_test (bool verbose)
{
    printf (" * gt_store_pg: ");
    char err [512];
    //  Every connection commits durably: synchronous_commit joins the options
    char *conninfo = gt_store_pg_conninfo ("postgresql://gt:pw@127.0.0.1:5433/db?options=-c%20work_mem%3D1MB",
                                 err, sizeof (err));
    assert (conninfo && strstr (conninfo, "options='-c work_mem=1MB -c synchronous_commit=on'"));
    assert (strstr (conninfo, "port='5433'") && strstr (conninfo, "dbname='db'"));
    free (conninfo);
    conninfo = gt_store_pg_conninfo ("host=127.0.0.1 dbname='it\\'s'", err, sizeof (err));
    assert (conninfo && strstr (conninfo, "options='-c synchronous_commit=on'"));
    assert (strstr (conninfo, "dbname='it\\'s'"));
    free (conninfo);
    gt_pgtestdb_t *testdb = gt_pgtestdb_new ();
    assert (testdb);

    //  Opening migrates; the store wants every record and an outbox
    gt_store_t *store = s_test_open (testdb, 3);
    assert (store);
    assert (streq (gt_store_name (store), "postgres"));
    assert (gt_store_records (store) && gt_store_async (store) && gt_store_outbox (store));
    PGconn *check = gt_pgtestdb_connect (testdb);
    assert (gt_pgschema_version (check, err, sizeof (err)) == gt_pgschema_latest ());
    s_test_recovered_t recovered;
    memset (&recovered, 0, sizeof (recovered));
    gt_store_loader_t loader = { &recovered, s_test_on_lease, s_test_on_object, s_test_on_event,
                                 s_test_on_counters, s_test_on_callback, NULL, NULL, s_test_on_expect,
                                 s_test_on_lease_ahead };
    assert (gt_store_recover (store, &loader, err, sizeof (err)) == 0);
    assert (recovered.leases == 0 && recovered.last_seq == 0);
    assert (gt_store_healthy (store));

    //  A turn of reads writes nothing: durable at once
    assert (gt_store_flush (store, 1) == GT_STORE_DONE);

    //  A turn of changes: written in one transaction, reported by batch id
    gt_lease_info_t lease;
    memset (&lease, 0, sizeof (lease));
    strcpy (lease.id, s_test_lease_id);
    lease.object_id = "object-1";
    lease.service_id = "svc";
    lease.fence = 41;
    lease.created_at = lease.renewed_at = 1700000000000;
    lease.expires_at = 1700000030000;
    lease.ttl_ms = 30000;
    gt_cleanup_t cleanup = { (char *) "http://127.0.0.1:9/c", NULL, true, 3, true, 100 };
    lease.cleanup = &cleanup;
    lease.cleanup_status = GT_CLEANUP_PENDING;
    lease.cleanup_attempts = 1;
    gt_store_lease_put (store, &lease, "key-1");
    //  An object without a pending reclaim gets no row; one with, does
    gt_store_object_t object = { "object-1", 41, true, 0, GT_REASON_NONE, NULL };
    gt_store_object_put (store, &object);
    gt_store_object_t pending = { "object-pending", 42, true, 1700000040000, GT_REASON_EXPIRED, s_test_lease_id };
    gt_store_object_put (store, &pending);
    for (uint64_t seq = 1; seq <= 5; seq++)
        gt_store_event (store, 0, seq, GT_EVENT_LEASE_CREATED, 1700000000000 + seq, "created.UNKNOWN.svc", "\x80", 1);
    gt_store_callback_t row = { 7, s_test_lease_id, "http://127.0.0.1:9/c", "{}", 3, 100, 1,
                                GT_CLEANUP_PENDING, 1700000050000, "HTTP 503", 0 };
    gt_store_callback_put (store, &row);
    row.job_id = 8;
    gt_store_callback_put (store, &row);
    assert (gt_store_flush (store, 2) == GT_STORE_PENDING);
    //  Another batch behind it: removes one row
    gt_store_callback_delete (store, 8, 0);
    assert (gt_store_flush (store, 3) == GT_STORE_PENDING);
    uint64_t batch = 0;
    bool durable = false;
    assert (s_test_complete (store, &batch, &durable) && batch == 2 && durable);
    assert (s_test_complete (store, &batch, &durable) && batch == 3 && durable);
    //  Each commit is measured, in this store's own figures
    gt_store_figures_t figures;
    gt_store_figures (store, &figures);
    assert (figures.batch_size.count == 2 && figures.commit_us.count == 2);
    assert (gt_pgtestdb_int (check, "SELECT count (*) FROM gt_objects") == 1);
    assert (gt_pgtestdb_int (check, "SELECT count (*) FROM gt_callbacks") == 1);
    assert (gt_pgtestdb_int (check, "SELECT last_seq FROM gt_meta") == 5);
    assert (gt_pgtestdb_int (check, "SELECT fence_counter FROM gt_meta") == 42);
    //  Two connections: the start-up one, now the writer's, and the
    //  shard ownership's (gt_pgshards)
    assert (gt_pgtestdb_int (check, "SELECT count (*) FROM pg_stat_activity WHERE datname = current_database ()"
                                    " AND backend_type = 'client backend' AND pid <> pg_backend_pid ()") == 2);

    //  Restart: everything comes back, counters last; then the reclaim
    //  ends and its row goes
    gt_store_destroy (&store);
    store = s_test_open (testdb, 3);
    assert (store);
    memset (&recovered, 0, sizeof (recovered));
    assert (gt_store_recover (store, &loader, err, sizeof (err)) == 0);
    assert (recovered.leases == 1 && recovered.lease_ok);
    assert (recovered.hints == 1);
    assert (recovered.expected == 1 && recovered.expected_first);
    assert (recovered.objects == 1 && recovered.object_ok);
    assert (recovered.events == 3);                         //  GC_EVENT_HISTORY 3
    assert (recovered.callbacks == 1 && recovered.callback_ok);
    assert (recovered.last_seq == 5 && recovered.fence_counter == 42 && recovered.counters_last);
    pending.pending_at = 0;
    pending.live = false;
    gt_store_object_put (store, &pending);
    assert (gt_store_flush (store, 1) == GT_STORE_PENDING);
    assert (s_test_complete (store, &batch, &durable) && batch == 1 && durable);
    assert (gt_pgtestdb_int (check, "SELECT count (*) FROM gt_objects") == 0);

    //  Outage: the writer reports it, batches fail (their row deletions are
    //  taken as not done), it reconnects by itself
    pending.pending_at = 1700000060000;
    pending.live = true;
    gt_store_object_put (store, &pending);
    assert (gt_store_flush (store, 2) == GT_STORE_PENDING);
    assert (s_test_complete (store, &batch, &durable) && batch == 2 && durable);
    PQfinish (check);
    s_test_allow (testdb, false);
    assert (s_test_health (store, false));
    gt_store_object_delete (store, "object-pending", 42);
    assert (gt_store_flush (store, 3) == GT_STORE_PENDING);
    assert (s_test_complete (store, &batch, &durable) && batch == 3 && !durable);
    s_test_allow (testdb, true);
    assert (s_test_health (store, true));
    check = gt_pgtestdb_connect (testdb);
    assert (gt_pgtestdb_int (check, "SELECT count (*) FROM gt_objects") == 1);
    gt_store_object_delete (store, "object-pending", 42);   //  again: the row may exist
    assert (gt_store_flush (store, 4) == GT_STORE_PENDING);
    assert (s_test_complete (store, &batch, &durable) && batch == 4 && durable);
    assert (gt_pgtestdb_int (check, "SELECT count (*) FROM gt_objects") == 0);
    gt_store_destroy (&store);

    //  Events beyond the history are pruned, in steps
    store = s_test_open (testdb, 10);
    memset (&recovered, 0, sizeof (recovered));
    assert (gt_store_recover (store, &loader, err, sizeof (err)) == 0);
    for (uint64_t seq = 6; seq <= 6 + GT_STORE_PG_PRUNE_STEP + 10; seq++)
        gt_store_event (store, 0, seq, GT_EVENT_LEASE_CREATED, 1700000000000 + seq, "created.UNKNOWN.svc", "\x80", 1);
    assert (gt_store_flush (store, 1) == GT_STORE_PENDING);
    assert (s_test_complete (store, &batch, &durable) && durable);
    assert (gt_pgtestdb_int (check, "SELECT count (*) FROM gt_events") == 10);
    //  The next prune starts where this one ended, and still keeps only the
    //  history: nothing below it is left
    uint64_t next_seq = 6 + GT_STORE_PG_PRUNE_STEP + 11;
    for (uint64_t seq = next_seq; seq < next_seq + GT_STORE_PG_PRUNE_STEP; seq++)
        gt_store_event (store, 0, seq, GT_EVENT_LEASE_CREATED, 1700000000000 + seq, "created.UNKNOWN.svc", "\x80", 1);
    assert (gt_store_flush (store, 2) == GT_STORE_PENDING);
    assert (s_test_complete (store, &batch, &durable) && batch == 2 && durable);
    assert (gt_pgtestdb_int (check, "SELECT count (*) FROM gt_events") == 10);
    assert (gt_pgtestdb_int (check, "SELECT min (seq) FROM gt_events")
            == (long long) (next_seq + GT_STORE_PG_PRUNE_STEP - 10));
    gt_store_destroy (&store);

    //  A newer schema is refused with a clear message, untouched
    gt_pgtestdb_exec (check, "INSERT INTO gt_schema_migrations (version, name) VALUES (999, 'future')");
    gt_config_t *config = gt_config_new ();
    gt_config_set_storage (config, "postgres");
    gt_config_set_database_url (config, gt_pgtestdb_conninfo (testdb));
    store = gt_store_pg_open (config, err, sizeof (err));
    assert (store == NULL && strstr (err, "newer than this garbagetruck knows"));
    if (verbose)
        printf ("\n   %s\n   ", err);
    //  Nothing listens: a clear message; waiting a little still fails
    gt_config_set_database_url (config, "postgresql://gt:secret@127.0.0.1:1/none");
    config->db_connect_wait_ms = 300;
    int64_t started = zclock_mono ();
    store = gt_store_pg_open (config, err, sizeof (err));
    assert (store == NULL && strstr (err, "cannot connect") && !strstr (err, "secret"));
    assert (zclock_mono () - started >= 300);
    if (verbose)
        printf ("%s\n   ", err);
    gt_config_set_database_url (config, "postgresql://[broken");
    store = gt_store_pg_open (config, err, sizeof (err));
    assert (store == NULL && strstr (err, "DATABASE_URL"));
    gt_config_destroy (&config);

    PQfinish (check);
    gt_pgtestdb_destroy (&testdb);
    printf ("OK\n");
}

/*  pgbench_writer.c — durable creates per second through gt_pgwriter, and
    the restart load time, against the PostgreSQL server in DATABASE_URL
    (in a throw-away database).  Not a test: it prints numbers.

    A "create" is what the broker writes for a CREATE on a new object: the
    lease row, the object row, the lease.created event (a 300-byte body)
    and the meta counters.  The driver plays the broker: each loop turn it
    records `per turn` creates into one batch and submits it.  Open loop:
    one turn per millisecond, whatever the acknowledgements (a steady
    request rate).  Closed loop: at most `window` creates wait for their
    acknowledgement (that many clients waiting for a reply).  The latency
    is from submit to the COMMIT notice.  Transactions
    are counted from gt_meta.commit_token (one token per transaction).

    Usage: pgbench_writer [--creates N] [--load N] [--quick]
      --creates   creates per group-commit scenario (default 200000)
      --load      leases for the restart load measurement (default 1000000; 0: skip)
      --quick     small numbers, for a smoke run  */

#include "gt_pgwriter.h"
#include "gt_pgload.h"
#include "gt_pgschema.h"
#include "gt_pgtestdb.h"

typedef struct {
    const char *name;               //  scenario label
    size_t per_turn;                //  creates recorded per batch
    size_t window;                  //  creates in flight at most; 0: open loop, a turn per ms
    size_t max_rows;                //  writer merge limit (1: no group commit)
    size_t creates;                 //  creates to run
    bool no_objects;                //  leave the object row out (derived from leases)
} s_scenario_t;

static uint64_t s_next_lease = 0;   //  lease ids handed out

static bool s_no_objects = false; //  current scenario leaves object rows out

static void
s_record_create (gt_pgbatch_t *batch, uint64_t *seq)
{
    uint64_t number = s_next_lease++;
    gt_lease_info_t lease;
    memset (&lease, 0, sizeof lease);
    snprintf (lease.id, sizeof lease.id, "%016" PRIx64 "%016" PRIx64,
              number * UINT64_C (0x9E3779B97F4A7C15), number);
    char object_id [40], body [300];
    snprintf (object_id, sizeof object_id, "s3://bucket/upload-%" PRIu64, number);
    gt_meta_entry_t entry = { (char *) "owner", (char *) "bench" };
    lease.object_id = object_id;
    lease.object_type = GT_TYPE_BLOB_STORAGE;
    lease.service_id = (char *) "upload-service";
    lease.state = GT_STATE_ACTIVE;
    lease.fence = number + 1;
    lease.ttl_ms = 300000;
    lease.created_at = lease.renewed_at = (uint64_t) zclock_time ();
    lease.expires_at = lease.created_at + lease.ttl_ms;
    lease.metadata.entries = &entry;
    lease.metadata.count = 1;
    gt_pgbatch_lease_put (batch, &lease, NULL);
    gt_pgobject_t object = { object_id, lease.fence, true, 0, GT_REASON_NONE, NULL };
    if (!s_no_objects)
        gt_pgbatch_object_put (batch, &object);
    memset (body, 0xA5, sizeof body);
    ++*seq;
    gt_pgbatch_event (batch, 0, *seq, GT_EVENT_LEASE_CREATED, lease.created_at,
                      "created.BLOB_STORAGE.upload-service", body, sizeof body);
    gt_pgbatch_meta (batch, *seq, lease.fence);
}

static int
s_compare_int64 (const void *a, const void *b)
{
    int64_t x = *(const int64_t *) a, y = *(const int64_t *) b;
    return x < y? -1: x > y;
}

static uint64_t
s_commit_token (PGconn *conn)
{
    return (uint64_t) gt_pgtestdb_int (conn, "SELECT commit_token FROM gt_meta");
}

//  Receive one notice; for a COMMIT returns the batch number (asserts OK).
static uint64_t
s_notice (gt_pgwriter_t *writer)
{
    gt_pgnotice_t notice;
    int rc = gt_pgwriter_recv (writer, &notice);
    assert (rc == 0);
    if (notice.kind != GT_PGNOTICE_COMMIT)
        return 0;
    if (!notice.ok) {
        fprintf (stderr, "batch %" PRIu64 " failed: %s\n", notice.batch, notice.text);
        exit (1);
    }
    return notice.batch;
}

static void
s_run (gt_pgtestdb_t *testdb, PGconn *check, const s_scenario_t *scenario, uint64_t *seq)
{
    gt_pgwriter_options_t options;
    gt_pgwriter_options_init (&options);
    options.max_rows = scenario->max_rows;
    gt_pgwriter_t *writer = gt_pgwriter_new (gt_pgtestdb_conninfo (testdb), NULL, &options);
    zpoller_t *poller = zpoller_new (gt_pgwriter_sock (writer), NULL);
    s_no_objects = scenario->no_objects;

    //  Warm up: connected, one transaction done
    gt_pgbatch_t *batch = gt_pgbatch_new ();
    s_record_create (batch, seq);
    gt_pgwriter_submit (writer, &batch);
    while (s_notice (writer) != 1)
        ;
    uint64_t token_before = s_commit_token (check);

    size_t batches = (scenario->creates + scenario->per_turn - 1) / scenario->per_turn;
    int64_t *submitted_at = (int64_t *) calloc (batches + 2, sizeof (int64_t));
    int64_t *latency = (int64_t *) calloc (batches + 2, sizeof (int64_t));
    size_t *batch_creates = (size_t *) calloc (batches + 2, sizeof (size_t));
    size_t recorded = 0, acknowledged = 0, in_flight = 0, completed = 0;
    uint64_t next_number = 2;
    int64_t started = zclock_usecs ();
    while (acknowledged < scenario->creates) {
        //  Completions first (non-blocking), like the broker loop
        while (zsock_events (gt_pgwriter_sock (writer)) & ZMQ_POLLIN) {
            uint64_t number = s_notice (writer);
            if (number >= 2) {
                latency [completed++] = zclock_usecs () - submitted_at [number - 2];
                acknowledged += batch_creates [number - 2];
                in_flight -= batch_creates [number - 2];
            }
        }
        bool turn;
        if (scenario->window == 0) {
            //  Open loop: one turn per millisecond whatever the acks
            int64_t due = started + (int64_t) (next_number - 2) * 1000;
            int64_t now = zclock_usecs ();
            turn = recorded < scenario->creates && now >= due;
            if (!turn && recorded < scenario->creates) {
                zpoller_wait (poller, (int) ((due - now + 999) / 1000));   //  no spinning
                continue;
            }
        }
        else
            turn = recorded < scenario->creates
                && (scenario->window > in_flight? scenario->window - in_flight: 0) >= scenario->per_turn;
        if (turn) {
            batch = gt_pgbatch_new ();
            size_t count = 0;
            while (count < scenario->per_turn && recorded < scenario->creates) {
                s_record_create (batch, seq);
                count++;
                recorded++;
            }
            uint64_t number = gt_pgwriter_submit (writer, &batch);
            assert (number == next_number);
            submitted_at [number - 2] = zclock_usecs ();
            batch_creates [number - 2] = count;
            in_flight += count;
            next_number++;
        }
        else
        if (acknowledged < scenario->creates)
            zpoller_wait (poller, 1000);
    }
    double seconds = (double) (zclock_usecs () - started) / 1e6;
    uint64_t transactions = s_commit_token (check) - token_before;
    qsort (latency, completed, sizeof (int64_t), s_compare_int64);
    char window [16];
    snprintf (window, sizeof window, scenario->window? "%zu": "open", scenario->window);
    printf ("| %-26s | %8zu | %6s | %8zu | %6.2f | %9.0f | %6" PRIu64 " | %7.1f | %7.2f | %7.2f | %7.2f |\n",
            scenario->name, scenario->per_turn, window, scenario->creates, seconds,
            (double) scenario->creates / seconds, transactions,
            transactions? (double) scenario->creates / (double) transactions: 0.0,
            (double) latency [completed / 2] / 1000.0,
            (double) latency [completed * 99 / 100] / 1000.0,
            (double) latency [completed - 1] / 1000.0);
    fflush (stdout);
    free (submitted_at);
    free (latency);
    free (batch_creates);
    zpoller_destroy (&poller);
    gt_pgwriter_destroy (&writer);
}

typedef struct {
    gt_lease_info_t *leases;        //  copies, as the broker would keep them
    size_t count;                   //  leases kept
} s_sink_t;

static int
s_keep_lease (void *arg, const gt_lease_info_t *lease, const char *idempotency_key)
{
    (void) idempotency_key;
    s_sink_t *sink = (s_sink_t *) arg;
    gt_lease_info_copy (&sink->leases [sink->count++], lease);
    return 0;
}

static void
s_load (gt_pgtestdb_t *testdb, size_t count)
{
    //  Write count leases in big batches
    gt_pgwriter_t *writer = gt_pgwriter_new (gt_pgtestdb_conninfo (testdb), NULL, NULL);
    int64_t started = zclock_usecs ();
    uint64_t seq = 0;
    size_t submitted = 0, batches = 0, done = 0;
    while (submitted < count) {
        gt_pgbatch_t *batch = gt_pgbatch_new ();
        for (size_t index = 0; index < 10000 && submitted < count; index++, submitted++)
            s_record_create (batch, &seq);
        gt_pgwriter_submit (writer, &batch);
        batches++;
    }
    while (done < batches)
        if (s_notice (writer))
            done++;
    gt_pgwriter_destroy (&writer);
    double write_seconds = (double) (zclock_usecs () - started) / 1e6;

    char err [512];
    PGconn *conn = gt_pgschema_connect (gt_pgtestdb_conninfo (testdb), 0, err, sizeof err);
    assert (conn);
    gt_pgtestdb_exec (conn, "VACUUM ANALYZE gt_leases");

    s_sink_t sink = { NULL, 0 };
    gt_pgload_options_t options = { .ended_leases = false, .event_history = 100000 };
    gt_pgload_result_t result;
    started = zclock_usecs ();
    int rc = gt_pgload (conn, &options, &result, err, sizeof err);
    assert (rc == 0);
    double raw_seconds = (double) (zclock_usecs () - started) / 1e6;

    sink.leases = (gt_lease_info_t *) calloc (count, sizeof (gt_lease_info_t));
    options.on_lease = s_keep_lease;
    options.arg = &sink;
    started = zclock_usecs ();
    rc = gt_pgload (conn, &options, &result, err, sizeof err);
    assert (rc == 0);
    double copy_seconds = (double) (zclock_usecs () - started) / 1e6;
    assert (sink.count == count);
    for (size_t index = 0; index < sink.count; index++)
        gt_lease_info_clear (&sink.leases [index]);
    free (sink.leases);
    PQfinish (conn);

    printf ("\n| restart load                 | leases  | seconds | leases/s  |\n"
            "|------------------------------|---------|---------|-----------|\n");
    printf ("| write (10,000 per batch)     | %7zu | %7.2f | %9.0f |\n", count, write_seconds, count / write_seconds);
    printf ("| gt_pgload, rows parsed only  | %7" PRIu64 " | %7.2f | %9.0f |\n", result.leases, raw_seconds, count / raw_seconds);
    printf ("| gt_pgload + deep copy each   | %7zu | %7.2f | %9.0f |\n", count, copy_seconds, count / copy_seconds);
    printf ("  (%" PRIu64 " events of history loaded too; last_seq %" PRIu64 ")\n", result.events, result.last_seq);
}

int
main (int argc, char *argv [])
{
    size_t creates = 200000, load = 1000000;
    for (int index = 1; index < argc; index++) {
        if (streq (argv [index], "--creates") && index + 1 < argc)
            creates = (size_t) atol (argv [++index]);
        else
        if (streq (argv [index], "--load") && index + 1 < argc)
            load = (size_t) atol (argv [++index]);
        else
        if (streq (argv [index], "--quick")) {
            creates = 5000;
            load = 20000;
        }
        else {
            fprintf (stderr, "usage: pgbench_writer [--creates N] [--load N] [--quick]\n");
            return 2;
        }
    }
    if (!gt_pgtestdb_available ()) {
        fprintf (stderr, "pgbench_writer: set DATABASE_URL\n");
        return 2;
    }
    gt_pgtestdb_t *testdb = gt_pgtestdb_new ();
    char err [512];
    PGconn *check = gt_pgschema_connect (gt_pgtestdb_conninfo (testdb), 0, err, sizeof err);
    assert (check);
    if (gt_pgschema_migrate (check, err, sizeof err) < 0) {
        fprintf (stderr, "pgbench_writer: %s\n", err);
        return 1;
    }
    if (getenv ("GT_BENCH_LOG")) {
        //  Every statement's duration in the server log (to see where time goes)
        char sql [128];
        snprintf (sql, sizeof sql, "ALTER DATABASE %s SET log_min_duration_statement = 0",
                  gt_pgtestdb_name (testdb));
        gt_pgtestdb_exec (check, sql);
    }
    uint64_t seq = 0;
    size_t baseline = creates / 50 < 2000? creates / 50: 2000;
    if (baseline < 100)
        baseline = 100;
    s_scenario_t scenarios [] = {
        { "one transaction per create", 1, 64, 1, baseline, false },
        { "open loop, 20,000/s", 20, 0, 50000, creates, false },
        { "open loop, 30,000/s", 30, 0, 50000, creates, false },
        { "open loop, 40,000/s", 40, 0, 50000, creates, false },
        { "open, 30,000/s, no objects", 30, 0, 50000, creates, true },
        { "group commit", 1, 256, 50000, creates, false },
        { "group commit", 10, 256, 50000, creates, false },
        { "group commit", 20, 512, 50000, creates, false },
        { "group commit", 20, 2000, 50000, creates, false },
        { "group commit", 100, 5000, 50000, creates, false },
    };
    printf ("| scenario                   | per turn | window |  creates |      s |  creates/s |   txns | per txn | p50 ms  | p99 ms  | max ms  |\n"
            "|----------------------------|----------|--------|----------|--------|-----------|--------|---------|---------|---------|---------|\n");
    for (size_t index = 0; index < sizeof scenarios / sizeof scenarios [0]; index++)
        s_run (testdb, check, &scenarios [index], &seq);
    PQfinish (check);
    gt_pgtestdb_destroy (&testdb);

    if (load) {
        testdb = gt_pgtestdb_new ();
        check = gt_pgschema_connect (gt_pgtestdb_conninfo (testdb), 0, err, sizeof err);
        assert (check && gt_pgschema_migrate (check, err, sizeof err) > 0);
        PQfinish (check);
        s_load (testdb, load);
        if (getenv ("GT_BENCH_KEEP"))
            printf ("  (database %s kept)\n", gt_pgtestdb_name (testdb));
        else
            gt_pgtestdb_destroy (&testdb);
    }
    return 0;
}

/*  gt_pgwriter_test.c — selftest of gt_pgwriter, against the PostgreSQL
    server in DATABASE_URL (in a database of its own).  */

#include <czmq.h>
#include "gt_pgwriter.h"
#include "gt_pgschema.h"
#include "gt_pgtestdb.h"
#include "gt_pg_selftest.h"


#define S_TEST_WAIT_MS  30000       //  deadline for anything the test waits on

//  Next notice, within the deadline (asserts one comes).
static void
s_test_notice (gt_pgwriter_t *writer, gt_pgnotice_t *notice)
{
    zpoller_t *poller = zpoller_new (gt_pgwriter_sock (writer), NULL);
    void *which = zpoller_wait (poller, S_TEST_WAIT_MS);
    zpoller_destroy (&poller);
    assert (which);
    int rc = gt_pgwriter_recv (writer, notice);
    assert (rc == 0);
}

static void
s_test_expect_commit (gt_pgwriter_t *writer, uint64_t number, bool ok, const char *text)
{
    gt_pgnotice_t notice;
    s_test_notice (writer, &notice);
    if (notice.kind != GT_PGNOTICE_COMMIT || notice.batch != number || notice.ok != ok
    ||  (text && !strstr (notice.text, text)))
        fprintf (stderr, "expected COMMIT %" PRIu64 " %s, got %s %" PRIu64 " %s: %s\n",
                 number, ok? "OK": "FAIL", notice.kind == GT_PGNOTICE_COMMIT? "COMMIT": "STATE",
                 notice.batch, notice.ok? "OK": "not ok", notice.text);
    assert (notice.kind == GT_PGNOTICE_COMMIT);
    assert (notice.batch == number);
    assert (notice.ok == ok);
    if (text)
        assert (strstr (notice.text, text));
}

//  Waits for a STATE notice; returns the backend pid when connected.
static int
s_test_expect_state (gt_pgwriter_t *writer, bool connected)
{
    gt_pgnotice_t notice;
    s_test_notice (writer, &notice);
    assert (notice.kind == GT_PGNOTICE_STATE);
    assert (notice.ok == connected);
    assert (gt_pgwriter_connected (writer) == connected);
    const char *pid = strstr (notice.text, "backend pid ");
    assert (!connected || pid);
    return connected? atoi (pid + strlen ("backend pid ")): 0;
}

static void
s_test_terminate (gt_pgtestdb_t *testdb, int pid)
{
    char sql [96];
    snprintf (sql, sizeof sql, "SELECT pg_terminate_backend (%d)", pid);
    char *value = gt_pgtestdb_value (gt_pgtestdb_admin (testdb), sql);
    assert (value && streq (value, "t"));
    free (value);
}

static void
s_test_allow_connections (gt_pgtestdb_t *testdb, bool allow)
{
    char sql [128];
    snprintf (sql, sizeof sql, "ALTER DATABASE %s ALLOW_CONNECTIONS %s",
              gt_pgtestdb_name (testdb), allow? "true": "false");
    gt_pgtestdb_exec (gt_pgtestdb_admin (testdb), sql);
}

//  A connection to the test database for a writer to take over, with its
//  socket: shutting that down loses the connection WITHOUT a word from the
//  server (as a network failure would), whereas pg_terminate_backend makes
//  the server end it with an error first.
static PGconn *
s_test_handover (gt_pgtestdb_t *testdb, int *fd_p, int *pid_p)
{
    PGconn *conn = gt_pgtestdb_connect (testdb);
    *fd_p = PQsocket (conn);
    *pid_p = PQbackendPID (conn);
    assert (*fd_p >= 0 && *pid_p > 0);
    return conn;
}

//  Waits until backend pid is blocked on a lock.
static void
s_test_wait_blocked (PGconn *conn, int pid)
{
    gt_pgtestdb_wait_blocked (conn, pid, S_TEST_WAIT_MS);
}

static long long
s_test_count (PGconn *conn, const char *sql)
{
    return gt_pgtestdb_int (conn, sql);
}

//  Renewals of test lease index in the table, -1 when absent.
static long long
s_test_renewals (PGconn *conn, uint32_t index)
{
    gt_lease_info_t lease;
    gt_pgtestdb_lease_t storage;
    gt_pgtestdb_lease (&lease, &storage, index, 0);
    char sql [128];
    snprintf (sql, sizeof sql,
              "SELECT coalesce (max (renewals), -1) FROM gt_leases WHERE id = '%s'", lease.id);
    return gt_pgtestdb_int (conn, sql);
}

//  Row-locks test lease index (inside the caller's transaction).
static void
s_test_lock_lease (PGconn *conn, uint32_t index)
{
    gt_lease_info_t lease;
    gt_pgtestdb_lease_t storage;
    gt_pgtestdb_lease (&lease, &storage, index, 0);
    char sql [128];
    snprintf (sql, sizeof sql, "SELECT 1 FROM gt_leases WHERE id = '%s' FOR UPDATE", lease.id);
    assert (gt_pgtestdb_int (conn, sql) == 1);
}

//  A batch holding one lease put (test lease index, variant).
static gt_pgbatch_t *
s_test_batch (uint32_t index, uint32_t variant)
{
    gt_pgbatch_t *batch = gt_pgbatch_new ();
    gt_lease_info_t lease;
    gt_pgtestdb_lease_t storage;
    const char *key = gt_pgtestdb_lease (&lease, &storage, index, variant);
    gt_pgbatch_lease_put (batch, &lease, key);
    return batch;
}

//  Every lease of the table equals the test lease its id names (variant 0).
static void
s_test_check_leases (PGconn *conn, long long expected)
{
    PGresult *result = PQexec (conn,
        "SELECT replace (id::text, '-', ''), object_id, object_type, service_id, state, fence,"
        " ttl_ms, created_at, renewed_at, expires_at, renewals,"
        " metadata ->> 'index', metadata ->> 'quote', (SELECT count (*) FROM jsonb_object_keys (metadata)),"
        " cleanup ->> 'url', cleanup ->> 'payload', cleanup ->> 'max_retries',"
        " cleanup ->> 'retry_delay_ms', idempotency_key FROM gt_leases ORDER BY id");
    assert (PQresultStatus (result) == PGRES_TUPLES_OK);
    assert (PQntuples (result) == expected);
    for (int row = 0; row < PQntuples (result); row++) {
        const char *id = PQgetvalue (result, row, 0);
        gt_lease_info_t lease;
        gt_pgtestdb_lease_t storage;
        const char *key = gt_pgtestdb_lease (&lease, &storage, gt_pgtestdb_lease_index (id), 0);
        assert (streq (id, lease.id));
        assert (streq (PQgetvalue (result, row, 1), lease.object_id));
        assert (streq (PQgetvalue (result, row, 2), gt_object_type_name (lease.object_type)));
        assert (streq (PQgetvalue (result, row, 3), lease.service_id));
        assert (streq (PQgetvalue (result, row, 4), gt_state_name (lease.state)));
        uint64_t numbers [6] = { lease.fence, lease.ttl_ms, lease.created_at,
                                 lease.renewed_at, lease.expires_at, lease.renewals };
        for (int column = 5; column < 11; column++)
            assert (strtoull (PQgetvalue (result, row, column), NULL, 10) == numbers [column - 5]);
        assert (atoi (PQgetvalue (result, row, 13)) == (int) lease.metadata.count);
        if (lease.metadata.count >= 1)
            assert (streq (PQgetvalue (result, row, 11), lease.metadata.entries [0].value));
        if (lease.metadata.count == 2)
            assert (streq (PQgetvalue (result, row, 12), lease.metadata.entries [1].value));
        assert (PQgetisnull (result, row, 14) == !lease.cleanup);
        if (lease.cleanup) {
            assert (streq (PQgetvalue (result, row, 14), lease.cleanup->url));
            assert (PQgetisnull (result, row, 15) == !lease.cleanup->payload);
            if (lease.cleanup->payload)
                assert (streq (PQgetvalue (result, row, 15), lease.cleanup->payload));
            assert (atoi (PQgetvalue (result, row, 16)) == (int) lease.cleanup->max_retries);
            assert (atoi (PQgetvalue (result, row, 17)) == (int) lease.cleanup->retry_delay_ms);
        }
        assert (PQgetisnull (result, row, 18) == !key);
        if (key)
            assert (streq (PQgetvalue (result, row, 18), key));
    }
    PQclear (result);
}

//  The server ends the writer's session (pg_terminate_backend: the FATAL
//  57P01 a fast shutdown sends too) while a transaction waits on a row lock
//  and a large one behind it is still being sent (the server reads nothing
//  meanwhile, so libpq has output pending and reads the server's last words
//  while trying to send it, together with the end of the stream).  With
//  the database refusing new connections, nothing can be checked after a
//  reconnect: the FATAL alone must settle both as not committed, at once,
//  not after commit_timeout_ms with "outcome unknown".  Each repetition
//  is a fresh race: done several times.
static void
s_test_ended_by_server (gt_pgtestdb_t *testdb, PGconn *check, PGconn *watcher, bool verbose)
{
    gt_pgwriter_options_t options;
    gt_pgwriter_options_init (&options);
    assert (options.commit_timeout_ms >= 10000);    //  the wait this must not take
    int fd, pid;
    PGconn *handed = s_test_handover (testdb, &fd, &pid);
    gt_pgwriter_t *writer = gt_pgwriter_new (gt_pgtestdb_conninfo (testdb), &handed, &options);
    uint64_t number = 0;
    for (uint32_t round = 0; round < 10; round++) {
        uint32_t base = 100000 + round * 100000;
        gt_pgtestdb_exec (check, "BEGIN; SELECT * FROM gt_meta FOR UPDATE");
        gt_pgbatch_t *batch = s_test_batch (base, 0);
        gt_pgbatch_meta (batch, 1000 + round, 5000);
        assert (gt_pgwriter_submit (writer, &batch) == ++number);
        s_test_wait_blocked (watcher, pid);
        //  Behind it, more than the socket buffers hold (some MB)
        batch = gt_pgbatch_new ();
        for (uint32_t index = base + 1; index <= base + 40000; index++) {
            gt_lease_info_t lease;
            gt_pgtestdb_lease_t storage;
            const char *key = gt_pgtestdb_lease (&lease, &storage, index, 0);
            gt_pgbatch_lease_put (batch, &lease, key);
        }
        assert (gt_pgwriter_submit (writer, &batch) == ++number);
        s_test_allow_connections (testdb, false);
        int64_t terminated = zclock_mono ();
        s_test_terminate (testdb, pid);
        s_test_expect_state (writer, false);
        const char *text = "PostgreSQL unavailable: PostgreSQL ended the session";
        s_test_expect_commit (writer, number - 1, false, text);
        s_test_expect_commit (writer, number, false, text);
        int64_t elapsed = zclock_mono () - terminated;
        if (verbose)
            printf ("   round %u: in-flight transactions failed %d ms after the backend was ended\n",
                    round, (int) elapsed);
        assert (elapsed < 1000);
        s_test_allow_connections (testdb, true);
        pid = s_test_expect_state (writer, true);
        gt_pgtestdb_exec (check, "ROLLBACK");
        assert (s_test_renewals (check, base) == -1);
        assert (s_test_renewals (check, base + 1) == -1);
        assert (s_test_renewals (check, base + 40000) == -1);
        assert (s_test_count (check, "SELECT last_seq FROM gt_meta") < 1000);
    }
    //  And the writer works on
    gt_pgbatch_t *batch = s_test_batch (99999, 0);
    assert (gt_pgwriter_submit (writer, &batch) == ++number);
    s_test_expect_commit (writer, number, true, NULL);
    assert (s_test_renewals (check, 99999) == 0);
    gt_pgwriter_destroy (&writer);
}

//  New leases go in by plain INSERT; one whose id is there after all
//  fails its transaction (23505) once, and from then on the writer upserts
//  every row, so the same batch sent again commits.
static void
s_test_plain_inserts (gt_pgtestdb_t *testdb, PGconn *check)
{
    gt_pgwriter_t *writer = gt_pgwriter_new (gt_pgtestdb_conninfo (testdb), NULL, NULL);
    s_test_expect_state (writer, true);
    uint32_t index = 60000;
    gt_lease_info_t lease;
    gt_pgtestdb_lease_t storage;
    const char *key = gt_pgtestdb_lease (&lease, &storage, index, 0);
    gt_pgbatch_t *batch = gt_pgbatch_new ();
    gt_pgbatch_lease_create (batch, &lease, key);
    assert (gt_pgwriter_submit (writer, &batch) == 1);
    s_test_expect_commit (writer, 1, true, NULL);
    assert (s_test_renewals (check, index) == 0);

    key = gt_pgtestdb_lease (&lease, &storage, index, 1);
    batch = gt_pgbatch_new ();
    gt_pgbatch_lease_create (batch, &lease, key);
    assert (gt_pgwriter_submit (writer, &batch) == 2);
    s_test_expect_commit (writer, 2, false, "duplicate key");
    assert (s_test_renewals (check, index) == 0);

    //  From now on every row is upserted: the lease, and events (one with
    //  an empty topic and body) through gt_event_upsert
    batch = gt_pgbatch_new ();
    gt_pgbatch_lease_create (batch, &lease, key);
    gt_pgbatch_event (batch, 0, 900001, GT_EVENT_LEASE_RENEWED, 1700000000001, "renewed.x", "\x82", 1);
    gt_pgbatch_event (batch, 0, 900002, GT_EVENT_LEASE_RELEASED, 1700000000002, "", "", 0);
    assert (gt_pgwriter_submit (writer, &batch) == 3);
    s_test_expect_commit (writer, 3, true, NULL);
    assert (s_test_renewals (check, index) == 1);
    assert (s_test_count (check, "SELECT count (*) FROM gt_events WHERE (seq = 900001 AND topic = 'renewed.x'"
                                 " AND body = '\\x82'::bytea AND at = 1700000000001)"
                                 " OR (seq = 900002 AND topic = '' AND body = ''::bytea)") == 2);
    gt_pgwriter_destroy (&writer);
}

//  Merging is bounded by bytes as well as rows: with max_bytes 1 no two
//  batches share a transaction, even when many queue behind a blocked
//  one (each transaction stores its own commit token, so the token's
//  growth counts them).
static void
s_test_merge_bound (gt_pgtestdb_t *testdb, PGconn *check, PGconn *watcher)
{
    gt_pgwriter_options_t options;
    gt_pgwriter_options_init (&options);
    options.max_bytes = 1;
    gt_pgwriter_t *writer = gt_pgwriter_new (gt_pgtestdb_conninfo (testdb), NULL, &options);
    int pid = s_test_expect_state (writer, true);
    //  A first transaction, so that the token read next is this writer's
    gt_pgbatch_t *batch = s_test_batch (69999, 0);
    assert (gt_pgwriter_submit (writer, &batch) == 1);
    s_test_expect_commit (writer, 1, true, NULL);
    long long token = s_test_count (check, "SELECT commit_token FROM gt_meta");
    gt_pgtestdb_exec (check, "BEGIN; SELECT * FROM gt_meta FOR UPDATE");
    batch = s_test_batch (70000, 0);
    assert (gt_pgwriter_submit (writer, &batch) == 2);
    s_test_wait_blocked (watcher, pid);
    const uint64_t batches = 12;
    for (uint32_t index = 1; index < batches; index++) {
        batch = s_test_batch (70000 + index, 0);
        assert (gt_pgwriter_submit (writer, &batch) == index + 2);
    }
    gt_pgtestdb_exec (check, "ROLLBACK");
    for (uint64_t number = 2; number <= batches + 1; number++)
        s_test_expect_commit (writer, number, true, NULL);
    for (uint32_t index = 0; index < batches; index++)
        assert (s_test_renewals (check, 70000 + index) >= 0);
    assert (s_test_count (check, "SELECT commit_token FROM gt_meta") - token == (long long) batches);
    gt_pgwriter_destroy (&writer);
}

//  Fencing (004_shards.sql, 007_single_mode_proof.sql): a fenced batch
//  commits only while its broker owns the shards it writes at the epochs it
//  claims; the failure names the shard, and nothing of the transaction is
//  written.  Cluster mode proves each shard written; single mode proves
//  shard 0's row, which every acquisition there raises with all the others.
static void
s_test_fencing (gt_pgtestdb_t *testdb, PGconn *check, bool cluster)
{
    gt_pgwriter_options_t options;
    gt_pgwriter_options_init (&options);
    options.broker_id = "broker-a";
    options.cluster = cluster;
    if (cluster)
        gt_pgtestdb_exec (check, "INSERT INTO gt_commit_tokens (broker_id) VALUES ('broker-a')"
                                 " ON CONFLICT (broker_id) DO NOTHING");
    gt_pgwriter_t *writer = gt_pgwriter_new (gt_pgtestdb_conninfo (testdb), NULL, &options);
    s_test_expect_state (writer, true);
    gt_pgtestdb_exec (check, "UPDATE gt_shards SET owner = 'broker-a', epoch = 7");
    uint64_t epochs [GT_SHARD_COUNT];
    for (unsigned shard = 0; shard < GT_SHARD_COUNT; shard++)
        epochs [shard] = 7;
    uint32_t first = cluster? 50000: 40000;

    //  At its epochs: committed, each row with its object's shard
    gt_pgbatch_t *batch = s_test_batch (first, 0);
    gt_pgbatch_fence (batch, epochs);
    assert (gt_pgwriter_submit (writer, &batch) == 1);
    s_test_expect_commit (writer, 1, true, NULL);
    char sql [200];
    snprintf (sql, sizeof sql, "SELECT object_id FROM gt_leases WHERE object_id = 'object-%u'", first / 2);
    char *object = gt_pgtestdb_value (check, sql);
    assert (object);
    snprintf (sql, sizeof sql, "SELECT shard FROM gt_leases WHERE object_id = '%s'", object);
    long long shard = s_test_count (check, sql);
    assert (shard == (long long) gt_shard_of (object));
    snprintf (sql, sizeof sql, "SELECT gt_shard_of ('%s')", object);
    assert (s_test_count (check, sql) == shard);

    //  Another broker took the shard (epoch 8; in single mode every shard
    //  with it, as an acquisition there does): the batch fails, fenced,
    //  and writes nothing; later batches fail with it (in-order failure)
    if (cluster)
        snprintf (sql, sizeof sql, "UPDATE gt_shards SET owner = 'broker-b', epoch = 8 WHERE shard = %lld", shard);
    else
        snprintf (sql, sizeof sql, "UPDATE gt_shards SET owner = 'broker-b', epoch = 8");
    gt_pgtestdb_exec (check, sql);
    batch = s_test_batch (first, 1);
    gt_pgbatch_fence (batch, epochs);
    assert (gt_pgwriter_submit (writer, &batch) == 2);
    s_test_expect_commit (writer, 2, false, cluster? "fenced: shard": "fenced: shard 0 is owned by broker-b");
    snprintf (sql, sizeof sql, "SELECT renewals FROM gt_leases WHERE object_id = '%s'", object);
    assert (s_test_count (check, sql) == 0);
    free (object);

    if (cluster) {
        //  A batch that writes only shards it still holds commits
        unsigned other = (unsigned) (shard + 1) % GT_SHARD_COUNT;
        uint32_t index = first + 2;
        for (;; index += 2) {
            gt_lease_info_t lease;
            gt_pgtestdb_lease_t storage;
            gt_pgtestdb_lease (&lease, &storage, index, 0);
            if (gt_shard_of (lease.object_id) == other)
                break;
        }
        batch = s_test_batch (index, 0);
        gt_pgbatch_fence (batch, epochs);
        assert (gt_pgwriter_submit (writer, &batch) == 3);
        s_test_expect_commit (writer, 3, true, NULL);
    }
    else {
        //  Back at epoch 7: commits; then released (owner NULL, as a
        //  graceful stop leaves it): fenced too
        gt_pgtestdb_exec (check, "UPDATE gt_shards SET owner = 'broker-a', epoch = 7");
        batch = s_test_batch (first + 2, 0);
        gt_pgbatch_fence (batch, epochs);
        assert (gt_pgwriter_submit (writer, &batch) == 3);
        s_test_expect_commit (writer, 3, true, NULL);
        gt_pgtestdb_exec (check, "UPDATE gt_shards SET owner = NULL, owned_until = NULL");
        batch = s_test_batch (first + 4, 0);
        gt_pgbatch_fence (batch, epochs);
        assert (gt_pgwriter_submit (writer, &batch) == 4);
        s_test_expect_commit (writer, 4, false, "fenced: shard 0 is owned by nobody");
        //  Batches merged from two epochs prove neither (nothing is
        //  committed under the newer one alone)
        gt_pgtestdb_exec (check, "UPDATE gt_shards SET owner = 'broker-a', epoch = 9");
        uint64_t newer [GT_SHARD_COUNT];
        for (unsigned index = 0; index < GT_SHARD_COUNT; index++)
            newer [index] = 9;
        gt_pgbatch_t *older_batch = s_test_batch (first + 6, 0);
        gt_pgbatch_fence (older_batch, epochs);
        batch = s_test_batch (first + 8, 0);
        gt_pgbatch_fence (batch, newer);
        gt_pgbatch_merge (older_batch, &batch);
        assert (gt_pgwriter_submit (writer, &older_batch) == 5);
        s_test_expect_commit (writer, 5, false, "fenced: shard 0 is owned by broker-a at epoch 9");
        batch = s_test_batch (first + 8, 0);
        gt_pgbatch_fence (batch, newer);
        assert (gt_pgwriter_submit (writer, &batch) == 6);
        s_test_expect_commit (writer, 6, true, NULL);
    }

    //  Unfenced batches prove nothing (the writer's own tests above)
    gt_pgwriter_destroy (&writer);
}

void
gt_pgwriter_test (bool verbose)
{
    printf (" * gt_pgwriter: ");
    char err [512];
    gt_pgtestdb_t *testdb = gt_pgtestdb_new ();
    assert (testdb);
    PGconn *conn = gt_pgschema_connect (gt_pgtestdb_conninfo (testdb), 0, err, sizeof err);
    assert (conn);
    assert (gt_pgschema_migrate (conn, err, sizeof err) == gt_pgschema_latest ());
    int pid = PQbackendPID (conn);
    PGconn *check = gt_pgtestdb_connect (testdb);

    //  The writer takes the start-up connection over
    gt_pgwriter_t *writer = gt_pgwriter_new (gt_pgtestdb_conninfo (testdb), &conn, NULL);
    assert (conn == NULL);
    assert (gt_pgwriter_connected (writer));

    //  10,000 lease puts, objects, events and meta in one batch
    int64_t started = zclock_mono ();
    gt_pgbatch_t *batch = gt_pgbatch_new ();
    for (uint32_t index = 0; index < 10000; index++) {
        gt_lease_info_t lease;
        gt_pgtestdb_lease_t storage;
        const char *key = gt_pgtestdb_lease (&lease, &storage, index, 0);
        gt_pgbatch_lease_put (batch, &lease, key);
        if (index % 2 == 0) {
            gt_pgobject_t object = { lease.object_id, lease.fence, true, 0, GT_REASON_NONE, NULL };
            gt_pgbatch_object_put (batch, &object);
        }
    }
    gt_pgobject_t ended = { "object-ended", 7, true, 1700000005000, GT_REASON_EXPIRED,
                            "0123456789abcdef0123456789abcdef" };
    gt_pgbatch_object_put (batch, &ended);
    for (uint64_t seq = 1; seq <= 10; seq++) {
        char body [16];
        snprintf (body, sizeof body, "body\x01%" PRIu64, seq);
        gt_pgbatch_event (batch, 0, seq, GT_EVENT_LEASE_CREATED, 1700000000000 + seq,
                          "created.TEMPORARY_FILE.svc-1", body, strlen (body) + 1);
    }
    gt_pgbatch_meta (batch, 10, 5000);
    assert (gt_pgwriter_submit (writer, &batch) == 1);
    assert (batch == NULL);
    assert (gt_pgwriter_pending (writer) == 1);
    s_test_expect_commit (writer, 1, true, NULL);
    assert (gt_pgwriter_pending (writer) == 0);
    if (verbose)
        printf ("\n   10,000 leases + 5,001 objects committed in %d ms\n", (int) (zclock_mono () - started));
    s_test_check_leases (check, 10000);
    assert (s_test_count (check, "SELECT count (*) FROM gt_objects") == 5001);
    assert (s_test_count (check, "SELECT count (*) FROM gt_objects WHERE live AND fence = 7"
                                 " AND pending_at = 1700000005000 AND reason = 'expired'"
                                 " AND last_lease_id = '0123456789abcdef0123456789abcdef'") == 1);
    assert (s_test_count (check, "SELECT count (*) FROM gt_objects WHERE pending_at IS NULL"
                                 " AND reason IS NULL AND last_lease_id IS NULL AND live") == 5000);
    assert (s_test_count (check, "SELECT count (*) FROM gt_events WHERE kind = 'lease.created'"
                                 " AND topic = 'created.TEMPORARY_FILE.svc-1'"
                                 " AND body = convert_to ('body' || chr (1) || seq, 'UTF8') || '\\x00'::bytea"
                                 " AND at = 1700000000000 + seq") == 10);
    assert (s_test_count (check, "SELECT last_seq * 100000 + fence_counter FROM gt_meta") == 10LL * 100000 + 5000);

    //  Repeated puts collapse within a batch; back-to-back batches commit
    //  in order (merged when they queue) and the last write wins
    batch = gt_pgbatch_new ();
    for (uint32_t variant = 1; variant <= 3; variant++) {
        gt_lease_info_t lease;
        gt_pgtestdb_lease_t storage;
        gt_pgtestdb_lease (&lease, &storage, 20000, variant);
        gt_pgbatch_lease_put (batch, &lease, NULL);
    }
    assert (gt_pgbatch_size (batch) == 1);
    assert (gt_pgwriter_submit (writer, &batch) == 2);
    for (uint32_t variant = 1; variant <= 50; variant++) {
        batch = s_test_batch (20001, variant);
        gt_pgbatch_event (batch, 0, 10 + variant, GT_EVENT_LEASE_RENEWED, 1700000000000 + variant,
                          "renewed.UNKNOWN.svc", "x", 1);
        gt_pgbatch_meta (batch, 10 + variant, 5000);
        assert (gt_pgwriter_submit (writer, &batch) == 2 + variant);
    }
    for (uint64_t number = 2; number <= 52; number++)
        s_test_expect_commit (writer, number, true, NULL);
    assert (s_test_renewals (check, 20000) == 3);
    assert (s_test_renewals (check, 20001) == 50);
    assert (s_test_count (check, "SELECT count (*) FROM gt_events") == 60);
    assert (s_test_count (check, "SELECT last_seq FROM gt_meta") == 60);

    //  Deletes, prune, and meta that never goes backwards
    batch = gt_pgbatch_new ();
    for (uint32_t index = 0; index < 10000; index += 2) {
        gt_lease_info_t lease;
        gt_pgtestdb_lease_t storage;
        gt_pgtestdb_lease (&lease, &storage, index, 0);
        gt_pgbatch_lease_delete (batch, lease.id, gt_shard_of (lease.object_id));
    }
    gt_pgbatch_object_delete (batch, "object-ended");
    gt_pgbatch_object_delete (batch, "object-never-written");
    gt_pgbatch_events_prune (batch, 0, 21);
    gt_pgbatch_meta (batch, 5, 1);
    assert (gt_pgwriter_submit (writer, &batch) == 53);
    s_test_expect_commit (writer, 53, true, NULL);
    assert (s_test_count (check, "SELECT count (*) FROM gt_leases") == 5002);
    assert (s_test_renewals (check, 0) == -1);
    assert (s_test_renewals (check, 1) == 0);
    assert (s_test_count (check, "SELECT count (*) FROM gt_objects") == 5000);
    assert (s_test_count (check, "SELECT min (seq) FROM gt_events") == 21);
    assert (s_test_count (check, "SELECT last_seq * 100000 + fence_counter FROM gt_meta") == 60LL * 100000 + 5000);

    //  A statement the server refuses: the whole transaction is rolled back,
    //  the batch FAILs, the connection stays usable
    gt_pgtestdb_exec (check,
        "CREATE FUNCTION poison () RETURNS trigger LANGUAGE plpgsql AS $$"
        " BEGIN IF NEW.object_id = 'poison' THEN RAISE EXCEPTION 'poisoned object'; END IF;"
        " RETURN NEW; END $$;"
        "CREATE TRIGGER poison BEFORE INSERT ON gt_objects FOR EACH ROW EXECUTE FUNCTION poison ()");
    batch = s_test_batch (30000, 0);
    gt_pgobject_t poison = { "poison", 1, true, 0, GT_REASON_NONE, NULL };
    gt_pgbatch_object_put (batch, &poison);
    assert (gt_pgwriter_submit (writer, &batch) == 54);
    s_test_expect_commit (writer, 54, false, "poisoned object");
    assert (s_test_count (check, "SELECT count (*) FROM gt_leases WHERE object_id = 'object-15000'") == 0);
    batch = s_test_batch (30000, 0);
    assert (gt_pgwriter_submit (writer, &batch) == 55);
    s_test_expect_commit (writer, 55, true, NULL);
    assert (s_test_count (check, "SELECT count (*) FROM gt_leases WHERE object_id = 'object-15000'") == 1);

    //  Database gone while idle: DEGRADED, batches FAIL fast, then it comes
    //  back: CONNECTED, and the next batch commits
    s_test_allow_connections (testdb, false);
    s_test_terminate (testdb, pid);
    s_test_expect_state (writer, false);
    batch = s_test_batch (30002, 0);
    assert (gt_pgwriter_submit (writer, &batch) == 56);
    s_test_expect_commit (writer, 56, false, "PostgreSQL unavailable");
    s_test_allow_connections (testdb, true);
    pid = s_test_expect_state (writer, true);
    assert (pid > 0);
    batch = s_test_batch (30004, 0);
    assert (gt_pgwriter_submit (writer, &batch) == 57);
    s_test_expect_commit (writer, 57, true, NULL);
    assert (s_test_count (check, "SELECT count (*) FROM gt_leases WHERE object_id IN ('object-15001', 'object-15002')") == 1);

    //  Connection killed by the server with a transaction in flight (held
    //  on a row lock): its error says it did not commit: FAIL at once,
    //  then the reconnect
    gt_pgtestdb_exec (check, "BEGIN; SELECT * FROM gt_meta FOR UPDATE");
    batch = s_test_batch (30006, 0);
    gt_pgbatch_meta (batch, 100, 5000);
    assert (gt_pgwriter_submit (writer, &batch) == 58);
    PGconn *watcher = gt_pgtestdb_connect (testdb);
    s_test_wait_blocked (watcher, pid);
    s_test_terminate (testdb, pid);
    s_test_expect_state (writer, false);
    s_test_expect_commit (writer, 58, false, "PostgreSQL unavailable");
    pid = s_test_expect_state (writer, true);
    gt_pgtestdb_exec (check, "ROLLBACK");
    assert (s_test_count (check, "SELECT count (*) FROM gt_leases WHERE object_id = 'object-15003'") == 0);
    assert (s_test_count (check, "SELECT last_seq FROM gt_meta") == 60);

    //  The answer lost without a word (the network): after the reconnect
    //  the writer ends the old session (still waiting on the lock: it
    //  would commit later) and reads the commit token back: not committed
    gt_pgwriter_destroy (&writer);
    int fd, old_pid;
    PGconn *handed = s_test_handover (testdb, &fd, &old_pid);
    writer = gt_pgwriter_new (gt_pgtestdb_conninfo (testdb), &handed, NULL);
    assert (handed == NULL && gt_pgwriter_connected (writer));
    gt_pgtestdb_exec (check, "BEGIN; SELECT * FROM gt_meta FOR UPDATE");
    batch = s_test_batch (30006, 0);
    gt_pgbatch_meta (batch, 100, 5000);
    assert (gt_pgwriter_submit (writer, &batch) == 1);
    s_test_wait_blocked (watcher, old_pid);
    s_test_allow_connections (testdb, false);
    shutdown (fd, SHUT_RDWR);
    s_test_expect_state (writer, false);
    s_test_allow_connections (testdb, true);
    pid = s_test_expect_state (writer, true);
    s_test_expect_commit (writer, 1, false, "not committed");
    char sql [96];
    snprintf (sql, sizeof sql, "SELECT count (*) FROM pg_stat_activity WHERE pid = %d", old_pid);
    assert (s_test_count (watcher, sql) == 0);   //  (check is inside a transaction: its view is old)
    gt_pgtestdb_exec (check, "ROLLBACK");
    assert (s_test_count (check, "SELECT count (*) FROM gt_leases WHERE object_id = 'object-15003'") == 0);
    assert (s_test_count (check, "SELECT last_seq FROM gt_meta") == 60);
    batch = s_test_batch (30006, 0);
    assert (gt_pgwriter_submit (writer, &batch) == 2);
    s_test_expect_commit (writer, 2, true, NULL);
    assert (s_test_count (check, "SELECT count (*) FROM gt_leases WHERE object_id = 'object-15003'") == 1);

    //  A FAIL dooms what was submitted before the caller heard of it: those
    //  FAIL too, nothing of them is written; what comes after works
    //  (3 waits on a row lock, so 4 goes out behind it, guarded)
    gt_pgtestdb_exec (check, "BEGIN");
    s_test_lock_lease (check, 1);
    batch = s_test_batch (1, 5);
    gt_pgbatch_object_put (batch, &poison);
    assert (gt_pgwriter_submit (writer, &batch) == 3);
    s_test_wait_blocked (watcher, pid);
    batch = s_test_batch (30022, 0);
    assert (gt_pgwriter_submit (writer, &batch) == 4);
    gt_pgtestdb_exec (check, "ROLLBACK");
    s_test_expect_commit (writer, 3, false, "poisoned object");
    batch = s_test_batch (30024, 0);
    assert (gt_pgwriter_submit (writer, &batch) == 5);
    s_test_expect_commit (writer, 4, false, "poisoned object");
    s_test_expect_commit (writer, 5, true, NULL);
    assert (s_test_renewals (check, 1) == 0);
    assert (s_test_count (check, "SELECT count (*) FROM gt_leases WHERE object_id = 'object-15011'") == 0);
    assert (s_test_count (check, "SELECT count (*) FROM gt_leases WHERE object_id = 'object-15012'") == 1);

    //  The database stays away after an answer was lost: FAIL, outcome unknown
    gt_pgwriter_destroy (&writer);
    gt_pgwriter_options_t options;
    gt_pgwriter_options_init (&options);
    options.commit_timeout_ms = 1000;      //  also bounds the (re)connect: not too short
    handed = s_test_handover (testdb, &fd, &pid);
    writer = gt_pgwriter_new (gt_pgtestdb_conninfo (testdb), &handed, &options);
    gt_pgtestdb_exec (check, "BEGIN; SELECT * FROM gt_meta FOR UPDATE");
    s_test_allow_connections (testdb, false);
    batch = s_test_batch (30026, 0);
    assert (gt_pgwriter_submit (writer, &batch) == 1);
    s_test_wait_blocked (watcher, pid);
    shutdown (fd, SHUT_RDWR);
    s_test_expect_state (writer, false);
    s_test_terminate (testdb, pid);
    gt_pgtestdb_exec (check, "ROLLBACK");
    s_test_expect_commit (writer, 1, false, "outcome unknown");
    s_test_allow_connections (testdb, true);
    s_test_expect_state (writer, true);

    //  Stopping commits what is still queued
    batch = s_test_batch (30008, 0);
    assert (gt_pgwriter_submit (writer, &batch) == 2);
    gt_pgwriter_destroy (&writer);
    assert (writer == NULL);
    assert (s_test_count (check, "SELECT count (*) FROM gt_leases WHERE object_id = 'object-15004'") == 1);

    //  HOLD: a writer that connects by itself; a transaction caught by the
    //  outage is committed after the reconnect, in order, exactly once
    gt_pgwriter_options_init (&options);
    options.outage = GT_PGWRITER_HOLD;
    options.application_name = "gt-pgwriter-test";
    writer = gt_pgwriter_new (gt_pgtestdb_conninfo (testdb), NULL, &options);
    assert (!gt_pgwriter_connected (writer));
    pid = s_test_expect_state (writer, true);
    assert (s_test_count (check, "SELECT count (*) FROM pg_stat_activity"
                                 " WHERE application_name = 'gt-pgwriter-test'") == 1);
    gt_pgtestdb_exec (check, "BEGIN; SELECT * FROM gt_meta FOR UPDATE");
    batch = s_test_batch (30010, 0);
    gt_pgbatch_meta (batch, 200, 5000);
    assert (gt_pgwriter_submit (writer, &batch) == 1);
    s_test_wait_blocked (watcher, pid);
    s_test_terminate (testdb, pid);
    s_test_expect_state (writer, false);
    batch = s_test_batch (30012, 0);
    gt_pgbatch_meta (batch, 201, 5000);
    assert (gt_pgwriter_submit (writer, &batch) == 2);
    pid = s_test_expect_state (writer, true);
    s_test_wait_blocked (watcher, pid);             //  resent, held by the lock again
    gt_pgtestdb_exec (check, "ROLLBACK");
    s_test_expect_commit (writer, 1, true, NULL);
    s_test_expect_commit (writer, 2, true, NULL);
    assert (s_test_count (check, "SELECT count (*) FROM gt_leases WHERE object_id IN ('object-15005', 'object-15006')") == 2);
    assert (s_test_count (check, "SELECT last_seq FROM gt_meta") == 201);

    //  HOLD with the database refusing connections: batches wait for it
    s_test_allow_connections (testdb, false);
    s_test_terminate (testdb, pid);
    s_test_expect_state (writer, false);
    batch = s_test_batch (30014, 0);
    assert (gt_pgwriter_submit (writer, &batch) == 3);
    s_test_allow_connections (testdb, true);
    s_test_expect_state (writer, true);
    s_test_expect_commit (writer, 3, true, NULL);
    assert (s_test_count (check, "SELECT count (*) FROM gt_leases WHERE object_id = 'object-15007'") == 1);
    gt_pgwriter_destroy (&writer);

    s_test_ended_by_server (testdb, check, watcher, verbose);
    s_test_plain_inserts (testdb, check);
    s_test_merge_bound (testdb, check, watcher);
    s_test_fencing (testdb, check, false);
    s_test_fencing (testdb, check, true);

    PQfinish (watcher);
    PQfinish (check);
    gt_pgtestdb_destroy (&testdb);
    printf ("OK\n");
}

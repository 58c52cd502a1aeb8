/*  gt_pgshards_test.c — selftest of gt_pgshards, against the PostgreSQL
    server in DATABASE_URL (in a database of its own).

    Short settings (lease 600 ms, renew 150 ms, margin 100 ms, acquire
    100 ms) keep it to a few seconds.  Nothing waits by sleeping: notices
    are awaited with zpoller time-outs, and what only shows in a value
    (valid_until) is polled with a deadline.  */

#include <czmq.h>
#include <sys/resource.h>
#include "gt_pgshards.h"
#include "gt_pgschema.h"
#include "gt_pgtestdb.h"
#include "gt_pg_selftest.h"

#define S_TEST_LEASE_MS     600
#define S_TEST_RENEW_MS     150
#define S_TEST_MARGIN_MS    100
#define S_TEST_ACQUIRE_MS   100
#define S_TEST_WAIT_MS      10000   //  deadline for anything the test waits on

//  The test's options: short periods, a fixed endpoint
static void
s_test_options (gt_pgshards_options_t *options, const char *broker_id, int64_t lease_ms, bool cluster)
{
    gt_pgshards_options_init (options);
    options->broker_id = broker_id;
    options->endpoint = "tcp://127.0.0.1:5555";
    options->events_endpoint = NULL;
    options->lease_ms = lease_ms;
    options->renew_ms = S_TEST_RENEW_MS;
    options->margin_ms = S_TEST_MARGIN_MS;
    options->acquire_ms = S_TEST_ACQUIRE_MS;
    options->cluster = cluster;
}

static gt_pgshards_t *
s_test_start_mode (const char *conninfo, const char *broker_id, int64_t lease_ms, bool cluster)
{
    gt_pgshards_options_t options;
    s_test_options (&options, broker_id, lease_ms, cluster);
    gt_pgshards_t *shards = gt_pgshards_new (conninfo, &options);
    assert (shards);
    return shards;
}

static gt_pgshards_t *
s_test_start (const char *conninfo, const char *broker_id, int64_t lease_ms)
{
    return s_test_start_mode (conninfo, broker_id, lease_ms, false);
}

static const char *
s_test_kind_name (gt_pgshards_notice_kind_t kind)
{
    return kind == GT_PGSHARDS_ACQUIRED? "ACQUIRED": kind == GT_PGSHARDS_LOST? "LOST":
           kind == GT_PGSHARDS_MAP? "MAP": kind == GT_PGSHARDS_SHED? "SHED": "STATE";
}

//  The next notice of kind within wait_ms: true when it came.  STATE and
//  MAP notices on the way are skipped (unless kind is one of them); any
//  other kind fails the test.  A MAP notice's map is the caller's when
//  kind is MAP, else destroyed here.
static bool
s_test_wait (gt_pgshards_t *shards, gt_pgshards_notice_kind_t kind, int64_t wait_ms,
             gt_pgshards_notice_t *notice)
{
    zpoller_t *poller = zpoller_new (gt_pgshards_sock (shards), NULL);
    assert (poller);
    int64_t deadline = zclock_mono () + wait_ms;
    bool found = false;
    while (!found) {
        int64_t left = deadline - zclock_mono ();
        if (left < 0 || !zpoller_wait (poller, (int) left))
            break;
        int rc = gt_pgshards_recv (shards, notice);
        assert (rc == 0);
        if (notice->kind == kind)
            found = true;
        else
        if (notice->kind == GT_PGSHARDS_MAP)
            gt_shard_map_destroy (&notice->map);
        else
        if (notice->kind != GT_PGSHARDS_STATE) {
            fprintf (stderr, "expected %s, got %s: %s\n", s_test_kind_name (kind),
                     s_test_kind_name (notice->kind), notice->text);
            assert (false);
        }
    }
    zpoller_destroy (&poller);
    return found;
}

//  Waits for ACQUIRED and checks it holds every shard at epoch (lease_ms:
//  the instance's).
static void
s_test_acquired (gt_pgshards_t *shards, uint64_t epoch, int64_t lease_ms)
{
    gt_pgshards_notice_t notice;
    bool came = s_test_wait (shards, GT_PGSHARDS_ACQUIRED, S_TEST_WAIT_MS, &notice);
    assert (came);
    for (unsigned shard = 0; shard < GT_SHARD_COUNT; shard++) {
        assert (gt_pgshards_has (notice.shards, shard));
        if (notice.epochs [shard] != epoch)
            fprintf (stderr, "shard %u acquired at epoch %" PRIu64 ", expected %" PRIu64 "\n",
                     shard, notice.epochs [shard], epoch);
        assert (notice.epochs [shard] == epoch);
    }
    int64_t valid_until = gt_pgshards_valid_until (shards);
    assert (valid_until > 0);
    assert (valid_until <= zclock_mono () + lease_ms - S_TEST_MARGIN_MS);
}

//  Waits for the STATE notice connected (or not); returns the backend pid
//  when connected.
static int
s_test_state (gt_pgshards_t *shards, bool connected)
{
    gt_pgshards_notice_t notice;
    bool came = s_test_wait (shards, GT_PGSHARDS_STATE, S_TEST_WAIT_MS, &notice);
    assert (came);
    if (notice.connected != connected)
        fprintf (stderr, "expected STATE %s, got: %s\n", connected? "connected": "down", notice.text);
    assert (notice.connected == connected);
    assert (*notice.text);
    if (!connected)
        return 0;
    const char *pid = strstr (notice.text, "backend pid ");
    assert (pid);
    return atoi (pid + strlen ("backend pid "));
}

//  Waits until valid_until passes floor (polling: it is a value, no event).
static void
s_test_valid_beyond (gt_pgshards_t *shards, int64_t floor)
{
    int64_t deadline = zclock_mono () + S_TEST_WAIT_MS;
    while (gt_pgshards_valid_until (shards) <= floor) {
        assert (zclock_mono () < deadline);
        zclock_sleep (5);
    }
}

//  Rows of gt_shards owned by broker_id at epoch, unexpired.
static long long
s_test_owned (PGconn *conn, const char *broker_id, uint64_t epoch)
{
    char sql [256];
    snprintf (sql, sizeof sql, "SELECT count (*) FROM gt_shards WHERE owner = '%s' AND epoch = %" PRIu64
              " AND owned_until > now ()", broker_id, epoch);
    return gt_pgtestdb_int (conn, sql);
}

//  Waits until backend pid is blocked on a lock.
static void
s_test_wait_blocked (PGconn *conn, int pid)
{
    gt_pgtestdb_wait_blocked (conn, pid, S_TEST_WAIT_MS);
}

//  Rows of gt_shards owned by broker_id at epoch, expired or not.
static long long
s_test_owned_rows (PGconn *conn, const char *broker_id, uint64_t epoch)
{
    char sql [256];
    snprintf (sql, sizeof sql, "SELECT count (*) FROM gt_shards WHERE owner = '%s' AND epoch = %" PRIu64,
              broker_id, epoch);
    return gt_pgtestdb_int (conn, sql);
}

//  gt_prove_epochs (broker, '{1,2}', epochs): NULL when it passed, else
//  the SQLSTATE (static).
static const char *
s_test_prove (PGconn *conn, const char *broker_id, const char *epochs)
{
    static char sqlstate [8];
    char sql [160];
    snprintf (sql, sizeof sql, "SELECT gt_prove_epochs ('%s', '{1,2}', '%s')", broker_id, epochs);
    PGresult *result = PQexec (conn, sql);
    const char *rc = NULL;
    if (PQresultStatus (result) == PGRES_TUPLES_OK)
        assert (streq (PQgetvalue (result, 0, 0), "2"));
    else {
        const char *state = PQresultErrorField (result, PG_DIAG_SQLSTATE);
        snprintf (sqlstate, sizeof sqlstate, "%s", state? state: "?");
        rc = sqlstate;
    }
    PQclear (result);
    return rc;
}

//  Single mode's proof (007_single_mode_proof.sql) against an acquisition,
//  both orders, on two connections of their own: a proof holding its lock
//  makes the acquisition wait for its commit; a proof behind an
//  acquisition waits for it, then fails (GTF01).  broker_id owns every
//  shard at epoch; the rows are left at epoch + 1, still its own.
static void
s_test_single_proof_lock (const char *conninfo, PGconn *check, const char *broker_id, uint64_t epoch)
{
    PGconn *prover = PQconnectdb (conninfo);
    PGconn *taker = PQconnectdb (conninfo);
    assert (PQstatus (prover) == CONNECTION_OK && PQstatus (taker) == CONNECTION_OK);
    char prove [160];
    snprintf (prove, sizeof prove, "SELECT gt_prove_epoch_single ('%s', %" PRIu64 ")", broker_id, epoch);
    char take [200];
    snprintf (take, sizeof take, "UPDATE gt_shards SET owner = '%s', epoch = epoch + 1", broker_id);

    //  The proof first: the acquisition's FOR UPDATE waits for its commit
    gt_pgtestdb_exec (prover, "BEGIN");
    gt_pgtestdb_exec (prover, prove);
    gt_pgtestdb_exec (taker, "BEGIN");
    assert (PQsendQuery (taker, "SELECT shard FROM gt_shards ORDER BY shard FOR UPDATE") == 1);
    s_test_wait_blocked (check, PQbackendPID (taker));
    gt_pgtestdb_exec (prover, "COMMIT");
    PGresult *result = PQgetResult (taker);
    assert (PQresultStatus (result) == PGRES_TUPLES_OK && PQntuples (result) == GT_SHARD_COUNT);
    PQclear (result);
    assert (PQgetResult (taker) == NULL);

    //  The acquisition first: the proof waits for it, then fails
    gt_pgtestdb_exec (taker, take);
    assert (PQsendQuery (prover, prove) == 1);
    s_test_wait_blocked (check, PQbackendPID (prover));
    gt_pgtestdb_exec (taker, "COMMIT");
    result = PQgetResult (prover);
    assert (PQresultStatus (result) == PGRES_FATAL_ERROR);
    assert (streq (PQresultErrorField (result, PG_DIAG_SQLSTATE), "GTF01"));
    assert (strstr (PQresultErrorMessage (result), "fenced: shard 0 is owned by"));
    PQclear (result);
    while ((result = PQgetResult (prover)))
        PQclear (result);
    PQfinish (prover);
    PQfinish (taker);
}

//  Another broker's ('ghost') expired shards, by when they ran out (single
//  mode: the locking SELECT's fourth column; cluster mode: the share's
//  pick, $8 and $9).  Before this broker connected (as after PostgreSQL's
//  restart, when every lease ran out while nobody could renew): taken
//  only once its connection is a lease and a reconnect delay old, time
//  for an owner alive to come back and renew.  After it connected (the
//  owner had its chance): as soon as they run out, not a lease of its own
//  (5 s here) after it connected.  The ghost's epochs start at epoch.
static void
s_test_expired_by_when (const char *conninfo, PGconn *check, bool cluster, uint64_t epoch, bool verbose)
{
    const char *mode = cluster? "cluster": "single";
    char sql [300];
    snprintf (sql, sizeof sql, "UPDATE gt_shards SET owner = 'ghost', epoch = %" PRIu64 ","
              " owned_until = now () - interval '1 s'", epoch);
    gt_pgtestdb_exec (check, sql);
    int64_t started = zclock_mono ();
    gt_pgshards_t *early = s_test_start_mode (conninfo, "late-comer", S_TEST_LEASE_MS, cluster);
    s_test_acquired (early, epoch + 1, S_TEST_LEASE_MS);
    int64_t waited_ms = zclock_mono () - started;
    printf (verbose? "   %s, ran out before it connected -> acquired after %d ms\n": "(%s before: %d ms) ",
            mode, (int) waited_ms);
    assert (waited_ms >= S_TEST_LEASE_MS + S_TEST_RENEW_MS);
    assert (gt_pgshards_release (early, 2000) == 256);
    gt_pgshards_destroy (&early);

    //  The lease is set to run out only once it is connected (STATE), 1.5 s
    //  later, whatever the time its set-up took
    snprintf (sql, sizeof sql, "UPDATE gt_shards SET owner = 'ghost', epoch = %" PRIu64 ","
              " owned_until = now () + interval '1 hour'", epoch + 10);
    gt_pgtestdb_exec (check, sql);
    gt_pgshards_t *watcher = s_test_start_mode (conninfo, "watcher", 5000, cluster);
    s_test_state (watcher, true);
    gt_pgtestdb_exec (check, "UPDATE gt_shards SET owned_until = now () + interval '1500 ms'");
    long long ghost_until = gt_pgtestdb_int (check,
        "SELECT (extract (epoch FROM max (owned_until)) * 1000000)::bigint FROM gt_shards");
    started = zclock_mono ();
    s_test_acquired (watcher, epoch + 11, 5000);
    waited_ms = zclock_mono () - started;
    printf (verbose? "   %s, ran out after it connected -> acquired after %d ms\n": "(%s after: %d ms) ",
            mode, (int) waited_ms);
    assert (waited_ms < 5000);
    snprintf (sql, sizeof sql, "SELECT count (*) FROM gt_shards WHERE owner = 'watcher' AND epoch = %" PRIu64
              " AND (extract (epoch FROM owned_until - interval '5000 ms') * 1000000)::bigint >= %lld",
              epoch + 11, ghost_until);
    assert (gt_pgtestdb_int (check, sql) == 256);
    assert (gt_pgshards_release (watcher, 2000) == 256);
    gt_pgshards_destroy (&watcher);
}

//  Cluster mode: a share each, handed over on join, taken on a crash.
static gt_pgshards_t *
s_test_start_cluster (const char *conninfo, const char *broker_id)
{
    return s_test_start_mode (conninfo, broker_id, S_TEST_LEASE_MS, true);
}

static unsigned
s_test_count (const uint8_t *bitmap)
{
    unsigned count = 0;
    for (unsigned shard = 0; shard < GT_SHARD_COUNT; shard++)
        count += gt_pgshards_has (bitmap, shard);
    return count;
}

static void
s_test_cluster (const char *conninfo, PGconn *check, bool verbose)
{
    gt_pgtestdb_exec (check, "UPDATE gt_shards SET owner = NULL, owned_until = NULL, epoch = 0");
    gt_pgtestdb_exec (check, "DELETE FROM gt_brokers");
    //  Alone: its share is every shard
    gt_pgshards_t *a = s_test_start_cluster (conninfo, "cluster-a");
    gt_pgshards_notice_t notice;
    assert (s_test_wait (a, GT_PGSHARDS_ACQUIRED, S_TEST_WAIT_MS, &notice));
    assert (s_test_count (notice.shards) == 256 && notice.epochs [0] == 1 && notice.epochs [255] == 1);
    assert (gt_pgshards_valid_until (a) > zclock_mono ());

    //  A second joins: it finds nothing free; the first names its surplus,
    //  the highest 128, and hands them over when told; the second takes
    //  them at once (NOTIFY), each at epoch 2
    gt_pgshards_t *b = s_test_start_cluster (conninfo, "cluster-b");
    assert (s_test_wait (a, GT_PGSHARDS_SHED, S_TEST_WAIT_MS, &notice));
    assert (s_test_count (notice.shards) == 128);
    assert (gt_pgshards_has (notice.shards, 128) && gt_pgshards_has (notice.shards, 255));
    assert (!gt_pgshards_has (notice.shards, 127));
    //  Named once: no second SHED while the first waits
    gt_pgshards_notice_t again;
    assert (!s_test_wait (a, GT_PGSHARDS_SHED, 3 * S_TEST_ACQUIRE_MS, &again));
    int64_t started = zclock_mono ();
    assert (gt_pgshards_release_shards (a, notice.shards, 2000) == 128);
    assert (s_test_wait (b, GT_PGSHARDS_ACQUIRED, S_TEST_WAIT_MS, &notice));
    int64_t handover_ms = zclock_mono () - started;
    if (verbose)
        printf ("   cluster handover of 128 shards: %d ms\n", (int) handover_ms);
    assert (s_test_count (notice.shards) == 128 && gt_pgshards_has (notice.shards, 200));
    assert (notice.epochs [200] == 2);
    assert (gt_pgtestdb_int (check, "SELECT count (*) FROM gt_shards WHERE owner = 'cluster-a' AND epoch = 1"
                                    " AND shard < 128 AND owned_until > now ()") == 128);
    assert (gt_pgtestdb_int (check, "SELECT count (*) FROM gt_shards WHERE owner = 'cluster-b' AND epoch = 2"
                                    " AND shard >= 128 AND owned_until > now ()") == 128);
    //  Balanced: nothing more moves, and both keep renewing
    assert (!s_test_wait (a, GT_PGSHARDS_SHED, 3 * S_TEST_ACQUIRE_MS, &again));
    assert (!s_test_wait (b, GT_PGSHARDS_ACQUIRED, S_TEST_RENEW_MS, &again));
    int64_t valid = gt_pgshards_valid_until (a);
    s_test_valid_beyond (a, valid);

    //  The first crashes (no release): once its lease ran out on
    //  PostgreSQL's clock, the second's share is every shard again
    gt_pgshards_destroy (&a);
    started = zclock_mono ();
    assert (s_test_wait (b, GT_PGSHARDS_ACQUIRED, S_TEST_WAIT_MS, &notice));
    if (verbose)
        printf ("   cluster takeover after a crash: %d ms\n", (int) (zclock_mono () - started));
    assert (s_test_count (notice.shards) == 128 && gt_pgshards_has (notice.shards, 0));
    assert (notice.epochs [0] == 2);
    assert (gt_pgtestdb_int (check, "SELECT count (*) FROM gt_shards WHERE owner = 'cluster-b'") == 256);
    assert (gt_pgshards_release (b, 2000) == 256);
    gt_pgshards_destroy (&b);

    s_test_expired_by_when (conninfo, check, true, 40, verbose);

    //  A broker whose endpoint is not known yet (a port of 0, bound after
    //  the store opened) takes no share and is no member until it says where
    //  it is: its first look at the map comes all the same (the store waits
    //  for it); once advertised, it registers with that endpoint and joins
    gt_pgtestdb_exec (check, "UPDATE gt_shards SET owner = NULL, owned_until = NULL");
    gt_pgtestdb_exec (check, "DELETE FROM gt_brokers");
    gt_pgshards_options_t options;
    s_test_options (&options, "cluster-c", S_TEST_LEASE_MS, true);
    options.endpoint = "tcp://127.0.0.1:0";
    options.endpoint_pending = true;
    gt_pgshards_t *c = gt_pgshards_new (conninfo, &options);
    assert (c);
    assert (s_test_wait (c, GT_PGSHARDS_MAP, S_TEST_WAIT_MS, &notice));
    gt_shard_map_destroy (&notice.map);
    //  (five acquisition periods: none taken, no row, and the process idle
    //  meanwhile: the actor waiting for its endpoint does not spin)
    struct rusage before, after;
    getrusage (RUSAGE_SELF, &before);
    int64_t waited = zclock_mono ();
    assert (!s_test_wait (c, GT_PGSHARDS_ACQUIRED, 5 * S_TEST_ACQUIRE_MS, &notice));
    waited = zclock_mono () - waited;
    getrusage (RUSAGE_SELF, &after);
    int64_t cpu_ms = (after.ru_utime.tv_sec - before.ru_utime.tv_sec + after.ru_stime.tv_sec - before.ru_stime.tv_sec) * 1000
                   + (after.ru_utime.tv_usec - before.ru_utime.tv_usec + after.ru_stime.tv_usec - before.ru_stime.tv_usec) / 1000;
    assert (cpu_ms < waited / 2);
    assert (gt_pgtestdb_int (check, "SELECT count (*) FROM gt_brokers") == 0);
    assert (gt_pgtestdb_int (check, "SELECT count (*) FROM gt_shards WHERE owner IS NOT NULL") == 0);
    gt_pgshards_advertise (c, true, "tcp://127.0.0.1:7001");      //  the events one: still pending
    assert (!s_test_wait (c, GT_PGSHARDS_ACQUIRED, 3 * S_TEST_ACQUIRE_MS, &notice));
    gt_pgshards_advertise (c, false, "tcp://127.0.0.1:7000");
    assert (s_test_wait (c, GT_PGSHARDS_ACQUIRED, S_TEST_WAIT_MS, &notice));
    assert (s_test_count (notice.shards) == 256);
    assert (gt_pgtestdb_int (check, "SELECT count (*) FROM gt_brokers WHERE broker_id = 'cluster-c'"
                                    " AND endpoint = 'tcp://127.0.0.1:7000'"
                                    " AND events_endpoint = 'tcp://127.0.0.1:7001'") == 1);
    assert (gt_pgshards_release (c, 2000) == 256);
    gt_pgshards_destroy (&c);
}

void
gt_pgshards_test (bool verbose)
{
    printf (" * gt_pgshards: ");
    if (verbose)
        printf ("\n");

    //  Options: defaults, and what is refused
    gt_pgshards_options_t options;
    gt_pgshards_options_init (&options);
    assert (options.broker_id == NULL);
    assert (options.lease_ms == 3000 && options.renew_ms == 1000);
    assert (options.margin_ms == 500 && options.acquire_ms == 500);
    assert (gt_pgshards_new ("dbname=none", &options) == NULL);
    options.broker_id = "";
    assert (gt_pgshards_new ("dbname=none", &options) == NULL);
    options.broker_id = "a";
    options.renew_ms = 2500;            //  2500 + 500 >= 3000
    assert (gt_pgshards_new ("dbname=none", &options) == NULL);
    options.renew_ms = 1000;
    options.margin_ms = 2500;
    assert (gt_pgshards_new ("dbname=none", &options) == NULL);
    assert (gt_pgshards_new ("dbname=none", NULL) == NULL);

    //  No server there: STATE not connected; a standby's release is 0
    gt_pgshards_t *nowhere = s_test_start ("host=127.0.0.1 port=1 dbname=none", "nowhere", S_TEST_LEASE_MS);
    s_test_state (nowhere, false);
    assert (gt_pgshards_valid_until (nowhere) == 0);
    assert (gt_pgshards_release (nowhere, 500) == 0);
    gt_pgshards_destroy (&nowhere);
    assert (nowhere == NULL);

    char err [512];
    gt_pgtestdb_t *testdb = gt_pgtestdb_new ();
    assert (testdb);
    PGconn *check = gt_pgschema_connect (gt_pgtestdb_conninfo (testdb), 0, err, sizeof err);
    assert (check);
    assert (gt_pgschema_migrate (check, err, sizeof err) == gt_pgschema_latest ());
    const char *conninfo = gt_pgtestdb_conninfo (testdb);

    //  One broker takes every shard at epoch 1, and keeps them
    gt_pgshards_t *a = s_test_start (conninfo, "broker-a", S_TEST_LEASE_MS);
    int pid = s_test_state (a, true);
    s_test_acquired (a, 1, S_TEST_LEASE_MS);
    assert (s_test_owned (check, "broker-a", 1) == 256);
    assert (gt_pgtestdb_int (check, "SELECT count (*) FROM gt_brokers WHERE broker_id = 'broker-a'"
                                    " AND endpoint = 'tcp://127.0.0.1:5555' AND events_endpoint = ''"
                                    " AND seen_until > now ()") == 1);
    int64_t valid_until = gt_pgshards_valid_until (a);
    s_test_valid_beyond (a, valid_until + S_TEST_RENEW_MS / 2);
    s_test_valid_beyond (a, gt_pgshards_valid_until (a));

    //  Its connection is killed: it reconnects and renews at the same epoch
    char sql [256];
    snprintf (sql, sizeof sql, "SELECT pg_terminate_backend (%d)", pid);
    gt_pgtestdb_exec (check, sql);
    s_test_state (a, false);
    int new_pid = s_test_state (a, true);
    assert (new_pid != pid);
    valid_until = gt_pgshards_valid_until (a);
    s_test_valid_beyond (a, valid_until);
    assert (s_test_owned (check, "broker-a", 1) == 256);

    //  A second broker stays standby while the first renews
    gt_pgshards_t *b = s_test_start (conninfo, "broker-b", S_TEST_LEASE_MS);
    s_test_state (b, true);
    gt_pgshards_notice_t notice;
    //  The standby's map: both brokers (by id), every shard a's, version
    //  the sum of the epochs (256 x 1); a map is sent again only on change
    bool mapped = false;
    while (!mapped && s_test_wait (b, GT_PGSHARDS_MAP, S_TEST_WAIT_MS, &notice)) {
        gt_shard_map_t *map = notice.map;
        assert (map);
        if (gt_shard_map_brokers (map) == 2) {
            assert (streq (gt_shard_map_broker_id (map, 0), "broker-a"));
            assert (streq (gt_shard_map_endpoint (map, 0), "tcp://127.0.0.1:5555"));
            assert (streq (gt_shard_map_broker_id (map, 1), "broker-b"));
            assert (gt_shard_map_version (map) == 256 && !gt_shard_map_cluster (map));
            for (unsigned shard = 0; shard < GT_SHARD_COUNT; shard++)
                assert (gt_shard_map_owner (map, shard) == 0 && gt_shard_map_epoch (map, shard) == 1);
            mapped = true;
        }
        gt_shard_map_destroy (&notice.map);
    }
    assert (mapped);
    assert (!s_test_wait (b, GT_PGSHARDS_MAP, 3 * S_TEST_ACQUIRE_MS, &notice));

    valid_until = gt_pgshards_valid_until (a);
    assert (!s_test_wait (b, GT_PGSHARDS_ACQUIRED, 4 * S_TEST_RENEW_MS, &notice));
    assert (gt_pgshards_valid_until (b) == 0);
    assert (gt_pgshards_valid_until (a) > valid_until);
    assert (gt_pgtestdb_int (check, "SELECT count (*) FROM gt_brokers WHERE seen_until > now ()") == 2);
    //  A graceful release: the standby takes over at once (NOTIFY), epoch 2
    int64_t started = zclock_mono ();
    assert (gt_pgshards_release (a, 2000) == 256);
    assert (gt_pgshards_valid_until (a) == 0);
    s_test_acquired (b, 2, S_TEST_LEASE_MS);
    int64_t handover_ms = zclock_mono () - started;
    printf (verbose? "   release -> acquire: %d ms\n": "(release -> acquire %d ms) ", (int) handover_ms);
    assert (handover_ms < 2000);
    assert (s_test_owned (check, "broker-b", 2) == 256);
    assert (gt_pgtestdb_int (check, "SELECT count (*) FROM gt_brokers WHERE broker_id = 'broker-a'"
                                    " AND seen_until <= now ()") == 1);
    //  The released one acquires nothing more
    assert (!s_test_wait (a, GT_PGSHARDS_ACQUIRED, 2 * S_TEST_ACQUIRE_MS, &notice));
    gt_pgshards_destroy (&a);

    //  A crash (destroy without release): the next takes them only once
    //  they ran out on PostgreSQL's clock
    gt_pgshards_destroy (&b);
    int64_t crashed = zclock_mono ();
    long long old_until = gt_pgtestdb_int (check,
        "SELECT (extract (epoch FROM max (owned_until)) * 1000000)::bigint FROM gt_shards");
    assert (old_until > 0);
    gt_pgshards_t *c = s_test_start (conninfo, "broker-c", S_TEST_LEASE_MS);
    s_test_acquired (c, 3, S_TEST_LEASE_MS);
    int64_t failover_ms = zclock_mono () - crashed;
    printf (verbose? "   crash -> acquire: %d ms\n": "(crash -> acquire %d ms) ", (int) failover_ms);
    snprintf (sql, sizeof sql, "SELECT count (*) FROM gt_shards WHERE owner = 'broker-c' AND epoch = 3"
              " AND (extract (epoch FROM owned_until - interval '%d ms') * 1000000)::bigint > %lld",
              S_TEST_LEASE_MS, old_until);
    assert (gt_pgtestdb_int (check, sql) == 256);

    //  A zombie: its shards were taken behind its back; its next renewal
    //  finds out: LOST, and it may act no more
    gt_pgtestdb_exec (check, "UPDATE gt_shards SET owner = 'other', epoch = epoch + 1");
    bool came = s_test_wait (c, GT_PGSHARDS_LOST, S_TEST_WAIT_MS, &notice);
    assert (came);
    for (unsigned shard = 0; shard < GT_SHARD_COUNT; shard++)
        assert (gt_pgshards_has (notice.shards, shard));
    if (verbose)
        printf ("   zombie: LOST %s\n", notice.text);
    assert (strstr (notice.text, "other"));
    assert (gt_pgshards_valid_until (c) == 0);
    assert (!s_test_wait (c, GT_PGSHARDS_ACQUIRED, 2 * S_TEST_RENEW_MS, &notice));
    assert (gt_pgshards_valid_until (c) == 0);
    gt_pgshards_destroy (&c);

    //  A restart under the same id takes its shards at once, though they
    //  are far from running out (a long lease here), with the epoch
    //  raised; if the old one still runs, it learns it is a duplicate
    gt_pgtestdb_exec (check, "UPDATE gt_shards SET owner = NULL, owned_until = NULL");
    gt_pgshards_t *d = s_test_start (conninfo, "broker-d", 5000);
    s_test_acquired (d, 5, 5000);
    long long d_until = gt_pgtestdb_int (check,
        "SELECT (extract (epoch FROM min (owned_until)) * 1000000)::bigint FROM gt_shards");
    gt_pgshards_t *d2 = s_test_start (conninfo, "broker-d", 5000);
    s_test_acquired (d2, 6, 5000);
    snprintf (sql, sizeof sql, "SELECT count (*) FROM gt_shards WHERE owner = 'broker-d' AND epoch = 6"
              " AND (extract (epoch FROM owned_until - interval '5000 ms') * 1000000)::bigint < %lld",
              d_until);
    assert (gt_pgtestdb_int (check, sql) == 256);
    came = s_test_wait (d, GT_PGSHARDS_LOST, S_TEST_WAIT_MS, &notice);
    assert (came);
    if (verbose)
        printf ("   same id: LOST %s\n", notice.text);
    assert (strstr (notice.text, "is GC_BROKER_ID unique?"));
    assert (gt_pgshards_valid_until (d) == 0);
    gt_pgshards_destroy (&d);

    //  The epoch proof: passes for the owner at its epochs only
    assert (s_test_prove (check, "broker-d", "{6,6}") == NULL);
    const char *sqlstate = s_test_prove (check, "broker-d", "{6,5}");
    assert (sqlstate && streq (sqlstate, "GTF01"));
    sqlstate = s_test_prove (check, "broker-x", "{6,6}");
    assert (sqlstate && streq (sqlstate, "GTF01"));

    assert (gt_pgshards_release (d2, 2000) == 256);
    assert (gt_pgtestdb_int (check, "SELECT count (*) FROM gt_shards WHERE owner IS NULL") == 256);
    gt_pgshards_destroy (&d2);

    s_test_expired_by_when (conninfo, check, false, 10, verbose);

    //  Single mode's proof against an acquisition (no ownership thread
    //  runs now that would renew or take the rows meanwhile)
    gt_pgtestdb_exec (check, "UPDATE gt_shards SET owner = 'broker-p', epoch = 3");
    s_test_single_proof_lock (conninfo, check, "broker-p", 3);
    assert (s_test_owned_rows (check, "broker-p", 4) == 256);

    s_test_cluster (conninfo, check, verbose);

    PQfinish (check);
    gt_pgtestdb_destroy (&testdb);
    printf ("OK\n");
}

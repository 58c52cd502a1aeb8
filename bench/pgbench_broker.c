/*  pgbench_broker — the broker on the PostgreSQL store, end to end (not a
    test: it prints numbers).

    Starts the real daemon (GT_BROKER_BIN, default <build>/broker/garbagetruck)
    with GC_STORAGE_BACKEND=postgres on a fresh database of the server
    DATABASE_URL names (gt_pgtestdb; dropped at the end), and measures over
    ZeroMQ in one run:
      1. durable CREATEs with group commit (the default): creates/s and the
         acknowledgement latency (request sent -> reply received, which the
         broker only sends once the lease is committed) p50/p99/p99.9, at
         connections x depth requests in flight (saturating), then at
         connections x light-depth (a moderate load: latency);
      2. the moderate load with GC_DB_GROUP_COMMIT=0: one request per loop
         turn, one transaction per request, one at a time;
      3. restart with R live leases (the first run's database topped up with
         SQL rows): time from process start to the ready line, and to the
         first successful GET.
    synchronous_commit is on in every session (the store forces it).

    Usage: pgbench_broker [--connections N] [--depth D] [--light-depth D] [--ops N]
                          [--single-ops N] [--restart-leases N] [--quick]  */

#include "bench_util.h"
#include "gt_pgtestdb.h"
#include <pthread.h>

#define BENCH_DEADLINE_MS   120000          //  no phase runs longer than this

//  Start the daemon on the PostgreSQL store of database conninfo with extra
//  flags; wait for its ready line.  *ready_us: how long that took.
static int
s_broker_start (bench_broker_t *broker, const char *conninfo, const char *extra, int64_t *ready_us)
{
    char flags [512];
    snprintf (flags, sizeof flags, "--metrics-port 0 --storage postgres %s", extra);
    const char *env [] = { "DATABASE_URL", conninfo, "GC_LOG_LEVEL", "warn", NULL };
    return bench_broker_start (broker, "pgbench_broker", flags, env, ready_us);
}

//  One request, lock-step, on a fresh DEALER; the reply (caller destroys)
//  or NULL after 30 s.
static gt_msg_t *
s_call (const char *endpoint, gt_msg_t *request)
{
    zsock_t *dealer = zsock_new_dealer (endpoint);
    zsock_set_rcvtimeo (dealer, 30000);
    msgpack_sbuffer buf;
    msgpack_sbuffer_init (&buf);
    gt_msg_encode (request, &buf);
    zmq_send (zsock_resolve (dealer), buf.data, buf.size, 0);
    msgpack_sbuffer_destroy (&buf);
    zmq_msg_t reply;
    zmq_msg_init (&reply);
    gt_msg_t *msg = NULL;
    if (zmq_msg_recv (&reply, zsock_resolve (dealer), 0) >= 0) {
        char err [128];
        gt_msg_decode (zmq_msg_data (&reply), zmq_msg_size (&reply), GT_MSG_REPLY, &msg, NULL,
                       err, sizeof err);
    }
    zmq_msg_close (&reply);
    zsock_destroy (&dealer);
    return msg;
}

//  STATS value, or 0.
static uint64_t
s_stat (const char *endpoint, const char *name)
{
    gt_msg_t request;
    memset (&request, 0, sizeof request);
    request.kind = GT_MSG_REQUEST;
    request.version = GT_PROTOCOL_VERSION;
    request.rid = 1;
    request.cmd = GT_CMD_STATS;
    gt_msg_t *reply = s_call (endpoint, &request);
    uint64_t value = 0;
    for (size_t index = 0; reply && index < reply->stat_count; index++)
        if (streq (reply->stats [index].name, name))
            value = reply->stats [index].value;
    gt_msg_destroy (&reply);
    return value;
}

//  ---------------------------------------------------------------------
//  Pipelined CREATE workers

typedef struct {
    const char *endpoint;           //  where to connect
    const char *prefix;             //  object / service names
    int index;                      //  worker number
    int ops;                        //  requests to make
    int depth;                      //  in flight at once
    int64_t *latencies;             //  per reply, us
    char first_id [GT_LEASE_ID_LEN + 1];    //  a lease it created
    int done;                       //  replies received
    int errors;                     //  non-OK replies
} s_worker_t;

static void *
s_worker_run (void *args)
{
    s_worker_t *self = (s_worker_t *) args;
    zsock_t *dealer = zsock_new (ZMQ_DEALER);
    zsock_set_sndhwm (dealer, 100000);
    zsock_set_rcvhwm (dealer, 100000);
    zsock_set_rcvtimeo (dealer, 30000);
    zsock_connect (dealer, "%s", self->endpoint);
    void *handle = zsock_resolve (dealer);
    msgpack_sbuffer buf;
    msgpack_sbuffer_init (&buf);
    int64_t *sent_at = (int64_t *) calloc ((size_t) self->ops, sizeof (int64_t));
    int sent = 0;
    char service [32], object [64];
    snprintf (service, sizeof service, "%s-%d", self->prefix, self->index);
    int64_t deadline = bench_now_us () + (int64_t) BENCH_DEADLINE_MS * 1000;
    while (self->done < self->ops && bench_now_us () < deadline) {
        while (sent < self->ops && sent - self->done < self->depth) {
            snprintf (object, sizeof object, "%s-%d-%d", self->prefix, self->index, sent);
            gt_msg_t msg;
            memset (&msg, 0, sizeof msg);
            msg.kind = GT_MSG_REQUEST;
            msg.version = GT_PROTOCOL_VERSION;
            msg.rid = (uint64_t) sent + 1;
            msg.cmd = GT_CMD_CREATE;
            msg.service_id = service;
            msg.object_id = object;
            msg.has_object_type = true;
            msg.object_type = GT_TYPE_TEMPORARY_FILE;
            msg.has_ttl = true;
            msg.ttl_ms = 3600 * 1000;
            msgpack_sbuffer_clear (&buf);
            gt_msg_encode (&msg, &buf);
            sent_at [sent] = bench_now_us ();
            zmq_send (handle, buf.data, buf.size, 0);
            sent++;
        }
        zmq_msg_t reply;
        zmq_msg_init (&reply);
        if (zmq_msg_recv (&reply, handle, 0) < 0) {
            zmq_msg_close (&reply);
            break;
        }
        int64_t now = bench_now_us ();
        gt_msg_t *msg = NULL;
        uint64_t rid = 0;
        char err [128];
        gt_code_t code = gt_msg_decode (zmq_msg_data (&reply), zmq_msg_size (&reply),
                                        GT_MSG_REPLY, &msg, &rid, err, sizeof err);
        if (code != GT_OK || !msg || msg->code != GT_OK)
            self->errors++;
        else
        if (!*self->first_id && msg->lease)
            memcpy (self->first_id, msg->lease->id, GT_LEASE_ID_LEN + 1);
        if (rid >= 1 && rid <= (uint64_t) self->ops)
            self->latencies [self->done] = now - sent_at [rid - 1];
        gt_msg_destroy (&msg);
        zmq_msg_close (&reply);
        self->done++;
    }
    free (sent_at);
    msgpack_sbuffer_destroy (&buf);
    zsock_destroy (&dealer);
    return NULL;
}

typedef struct {
    double per_second;              //  creates acknowledged per second
    int64_t p50, p99, p999, max;    //  acknowledgement latency, us
    int done, errors;               //  replies, errors
    char some_id [GT_LEASE_ID_LEN + 1];     //  a lease created
} s_result_t;

static s_result_t
s_creates (const char *endpoint, const char *prefix, int connections, int depth, int ops)
{
    s_result_t result;
    memset (&result, 0, sizeof result);
    s_worker_t *workers = (s_worker_t *) calloc ((size_t) connections, sizeof (s_worker_t));
    pthread_t *threads = (pthread_t *) calloc ((size_t) connections, sizeof (pthread_t));
    int per = ops / connections;
    int64_t *latencies = (int64_t *) calloc ((size_t) per * (size_t) connections, sizeof (int64_t));
    for (int i = 0; i < connections; i++)
        workers [i] = (s_worker_t) {
            .endpoint = endpoint, .prefix = prefix, .index = i, .ops = per, .depth = depth,
            .latencies = latencies + (size_t) i * (size_t) per
        };
    int64_t start = bench_now_us ();
    for (int i = 0; i < connections; i++)
        pthread_create (&threads [i], NULL, s_worker_run, &workers [i]);
    size_t count = 0;
    for (int i = 0; i < connections; i++) {
        pthread_join (threads [i], NULL);
        result.done += workers [i].done;
        result.errors += workers [i].errors;
    }
    double seconds = (double) (bench_now_us () - start) / 1e6;
    //  Compact the latencies of the replies received
    for (int i = 0; i < connections; i++)
        for (int j = 0; j < workers [i].done; j++)
            latencies [count++] = workers [i].latencies [j];
    qsort (latencies, count, sizeof (int64_t), bench_cmp_i64);
    result.per_second = seconds > 0? result.done / seconds: 0;
    result.p50 = bench_percentile (latencies, count, 0.50);
    result.p99 = bench_percentile (latencies, count, 0.99);
    result.p999 = bench_percentile (latencies, count, 0.999);
    result.max = count? latencies [count - 1]: 0;
    memcpy (result.some_id, workers [0].first_id, sizeof result.some_id);
    free (latencies);
    free (workers);
    free (threads);
    return result;
}

static void
s_print_result (const char *label, const s_result_t *result, const char *endpoint)
{
    printf ("| %s | %.0f | %.2f | %.2f | %.2f | %.2f | %" PRIu64 " / %" PRIu64 " | %d |\n", label,
            result->per_second, result->p50 / 1000.0, result->p99 / 1000.0, result->p999 / 1000.0,
            result->max / 1000.0, s_stat (endpoint, "store_batch_size_p50"),
            s_stat (endpoint, "store_batch_size_p99"), result->errors);
    fflush (stdout);
}

//  ---------------------------------------------------------------------

static void
s_usage (void)
{
    puts ("usage: pgbench_broker [--connections N] [--depth D] [--light-depth D] [--ops N]"
          " [--single-ops N] [--restart-leases N] [--quick]");
}

int
main (int argc, char *argv [])
{
    int connections = 8, depth = 64, light_depth = 16, ops = 200000, single_ops = 3000;
    int restart_leases = 1000000;
    for (int i = 1; i < argc; i++) {
        if (streq (argv [i], "--connections") && i + 1 < argc)
            connections = atoi (argv [++i]);
        else
        if (streq (argv [i], "--depth") && i + 1 < argc)
            depth = atoi (argv [++i]);
        else
        if (streq (argv [i], "--light-depth") && i + 1 < argc)
            light_depth = atoi (argv [++i]);
        else
        if (streq (argv [i], "--ops") && i + 1 < argc)
            ops = atoi (argv [++i]);
        else
        if (streq (argv [i], "--single-ops") && i + 1 < argc)
            single_ops = atoi (argv [++i]);
        else
        if (streq (argv [i], "--restart-leases") && i + 1 < argc)
            restart_leases = atoi (argv [++i]);
        else
        if (streq (argv [i], "--quick")) {
            ops = 20000;
            single_ops = 500;
            restart_leases = 100000;
        }
        else {
            s_usage ();
            return streq (argv [i], "--help")? 0: 2;
        }
    }
    if (connections < 1 || depth < 1 || light_depth < 1 || ops < 4 * connections || single_ops < connections) {
        s_usage ();
        return 2;
    }
    if (!gt_pgtestdb_available ()) {
        fprintf (stderr, "pgbench_broker: set DATABASE_URL (a role that may CREATE DATABASE)\n");
        return 2;
    }
    signal (SIGPIPE, SIG_IGN);
    zsys_init ();                   //  once, before the worker threads make sockets
    printf ("# pgbench_broker: %d connections, CREATE of a new object each\n\n", connections);
    printf ("| mode | creates/s | ack p50 ms | ack p99 ms | ack p99.9 ms | ack max ms |"
            " batch rows p50 / p99 | errors |\n|---|---|---|---|---|---|---|---|\n");

    //  1. Group commit (the default)
    gt_pgtestdb_t *main_db = gt_pgtestdb_new ();
    bench_broker_t broker = { 0 };
    if (s_broker_start (&broker, gt_pgtestdb_conninfo (main_db), "", NULL))
        return 1;
    s_result_t grouped = s_creates (broker.endpoint, "gc", connections, depth, ops);
    char label [96];
    snprintf (label, sizeof label, "group commit, %d in flight, %d creates", connections * depth, grouped.done);
    s_print_result (label, &grouped, broker.endpoint);
    s_result_t light = s_creates (broker.endpoint, "light", connections, light_depth, ops / 4);
    snprintf (label, sizeof label, "group commit, %d in flight, %d creates", connections * light_depth, light.done);
    s_print_result (label, &light, broker.endpoint);
    bench_broker_stop (&broker);

    //  2. One transaction per request
    gt_pgtestdb_t *single_db = gt_pgtestdb_new ();
    if (s_broker_start (&broker, gt_pgtestdb_conninfo (single_db), "--db-group-commit 0", NULL))
        return 1;
    s_result_t single = s_creates (broker.endpoint, "one", connections, light_depth, single_ops);
    snprintf (label, sizeof label, "one transaction per request, %d in flight, %d creates",
              connections * light_depth, single.done);
    s_print_result (label, &single, broker.endpoint);
    bench_broker_stop (&broker);
    gt_pgtestdb_destroy (&single_db);
    printf ("\ngroup commit / one transaction per request, same load: %.1fx the throughput\n",
            single.per_second > 0? light.per_second / single.per_second: 0);

    //  3. Restart with restart_leases live leases: the first database,
    //  topped up with rows written by SQL (same columns the store writes)
    PGconn *conn = gt_pgtestdb_connect (main_db);
    long long present = gt_pgtestdb_int (conn, "SELECT count (*) FROM gt_leases WHERE state = 'ACTIVE'");
    if (present < restart_leases) {
        int64_t filling = bench_now_us ();
        char sql [1024];
        snprintf (sql, sizeof sql,
            "WITH m AS (SELECT fence_counter AS base, (extract (epoch FROM now ()) * 1000)::bigint AS now_ms FROM gt_meta)"
            " INSERT INTO gt_leases (id, object_id, object_type, service_id, state, fence, ttl_ms,"
            " created_at, renewed_at, expires_at, renewals, metadata, shard)"
            " SELECT md5 ('restart-' || i)::uuid, 'restart-' || i, 'TEMPORARY_FILE', 'svc-' || (i %% 1000),"
            " 'ACTIVE', m.base + i, 3600000, m.now_ms, m.now_ms, m.now_ms + 3600000, 0, '{\"owner\": \"bench\"}',"
            " gt_shard_of ('restart-' || i)"
            " FROM m, generate_series (1, %lld) AS i", (long long) restart_leases - present);
        gt_pgtestdb_exec (conn, sql);
        gt_pgtestdb_exec (conn, "UPDATE gt_meta SET fence_counter = (SELECT max (fence) FROM gt_leases)");
        gt_pgtestdb_exec (conn, "VACUUM ANALYZE gt_leases");
        printf ("\n(filled to %d live leases with SQL in %.1f s)\n", restart_leases,
                (double) (bench_now_us () - filling) / 1e6);
    }
    long long events = gt_pgtestdb_int (conn, "SELECT count (*) FROM gt_events");
    PQfinish (conn);
    int64_t started = bench_now_us ();
    int64_t ready_us = 0;
    if (s_broker_start (&broker, gt_pgtestdb_conninfo (main_db), "", &ready_us))
        return 1;
    gt_msg_t request;
    memset (&request, 0, sizeof request);
    request.kind = GT_MSG_REQUEST;
    request.version = GT_PROTOCOL_VERSION;
    request.rid = 1;
    request.cmd = GT_CMD_GET;
    request.lease_id = grouped.some_id;
    gt_msg_t *reply = s_call (broker.endpoint, &request);
    int64_t first_get_us = bench_now_us () - started;
    bool found = reply && reply->code == GT_OK;
    gt_msg_destroy (&reply);
    long rss = bench_rss_kb (broker.pid);
    printf ("\n| restart | value |\n|---|---|\n");
    printf ("| live leases in the database | %d (+ %lld stored events) |\n", restart_leases, events);
    printf ("| process start -> ready line | %.2f s |\n", ready_us / 1e6);
    printf ("| process start -> first GET answered | %.2f s (%s) |\n", first_get_us / 1e6,
            found? "found": "NOT FOUND");
    printf ("| broker RSS after the start | %.0f MB |\n", rss / 1024.0);
    bench_broker_stop (&broker);
    gt_pgtestdb_destroy (&main_db);
    return 0;
}

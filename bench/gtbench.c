/*  gtbench — GarbageTruck broker benchmark (not a test: it prints numbers).

    Starts the real daemon (GT_BROKER_BIN, default <build>/broker/garbagetruck)
    as a separate process on ephemeral loopback ports, and measures in one run:
      - a bare CZMQ ROUTER echo loop (same message size, connections, depth),
        the yardstick every other figure is divided by;
      - pipelined CREATE / RENEW / RELEASE throughput with N connections;
      - lock-step round-trip latency p50/p99 (one request in flight);
      - expiry lateness (event receipt time - lease deadline) with L live leases;
      - RSS of the broker per live lease.
    Every loop is bounded in count and time.

    Usage: gtbench [--connections N] [--depth D] [--ops N] [--live N[,N...]] [--quick]  */

#include "bench_util.h"
#include <pthread.h>

#define BENCH_DEADLINE_MS   60000           //  no phase runs longer than this

typedef struct {
    int connections;                //  client connections (threads)
    int depth;                      //  requests in flight per connection
    int ops;                        //  total operations per throughput phase
    int lockstep_ops;               //  operations in the latency phase
    int live [4];                   //  live-lease counts for the expiry phase
    int live_count;                 //  how many entries of live are used
} s_options_t;

//  ---------------------------------------------------------------------
//  Echo yardstick: a bare ROUTER that returns every message as it came.

static void
s_echo_actor (zsock_t *pipe, void *args)
{
    (void) args;
    zsock_t *router = zsock_new (ZMQ_ROUTER);
    zsock_set_sndhwm (router, 100000);
    zsock_set_rcvhwm (router, 100000);
    int port = zsock_bind (router, "tcp://127.0.0.1:*");
    zsock_signal (pipe, 0);
    zstr_sendf (pipe, "%d", port);
    zpoller_t *poller = zpoller_new (pipe, router, NULL);
    while (true) {
        void *which = zpoller_wait (poller, -1);
        if (which != router)
            break;                  //  $TERM or interrupted
        for (int i = 0; i < 1000; i++) {
            zmsg_t *msg = zmsg_recv_nowait (router);
            if (!msg)
                break;
            zmsg_send (&msg, router);
        }
    }
    zpoller_destroy (&poller);
    zsock_destroy (&router);
}

//  ---------------------------------------------------------------------
//  Client workers

typedef enum { OP_ECHO, OP_CREATE, OP_RENEW, OP_RELEASE, OP_GET } s_op_t;

typedef struct {
    const char *endpoint;           //  where to connect
    s_op_t op;                      //  what to send
    int ops;                        //  how many requests
    int depth;                      //  in flight at once
    int index;                      //  worker number (service and object names)
    int ttl_ms;                     //  TTL for creates
    char (*ids) [GT_LEASE_ID_LEN + 1];  //  lease ids: filled by CREATE, used by RENEW/RELEASE
    int64_t *latencies;             //  per-request latency in us (lock-step only)
    int done;                       //  replies received
    int errors;                     //  non-OK replies
} s_worker_t;

//  Encode the i-th request of a worker into buf.
static void
s_encode (s_worker_t *self, int i, msgpack_sbuffer *buf)
{
    char service [32], object [48];
    snprintf (service, sizeof service, "bench-%d", self->index);
    snprintf (object, sizeof object, "obj-%d-%d", self->index, i);
    gt_msg_t msg;
    memset (&msg, 0, sizeof msg);
    msg.kind = GT_MSG_REQUEST;
    msg.version = GT_PROTOCOL_VERSION;
    msg.rid = (uint64_t) i + 1;
    msg.service_id = service;
    switch (self->op) {
        case OP_ECHO:
        case OP_RENEW:
            msg.cmd = GT_CMD_RENEW;
            msg.lease_id = self->ids ? self->ids [i] : "0123456789abcdef0123456789abcdef";
            break;
        case OP_CREATE:
            msg.cmd = GT_CMD_CREATE;
            msg.object_id = object;
            msg.has_object_type = true;
            msg.object_type = GT_TYPE_TEMPORARY_FILE;
            msg.has_ttl = true;
            msg.ttl_ms = (uint64_t) self->ttl_ms;
            break;
        case OP_RELEASE:
            msg.cmd = GT_CMD_RELEASE;
            msg.lease_id = self->ids [i];
            break;
        case OP_GET:
            msg.cmd = GT_CMD_GET;
            msg.service_id = NULL;
            msg.lease_id = self->ids [i % self->ops];
            break;
    }
    msgpack_sbuffer_clear (buf);
    gt_msg_encode (&msg, buf);
}

static void *
s_worker_run (void *args)
{
    s_worker_t *self = (s_worker_t *) args;
    zsock_t *dealer = zsock_new (ZMQ_DEALER);
    zsock_set_sndhwm (dealer, 100000);
    zsock_set_rcvhwm (dealer, 100000);
    zsock_set_rcvtimeo (dealer, 5000);
    zsock_connect (dealer, "%s", self->endpoint);
    void *handle = zsock_resolve (dealer);
    msgpack_sbuffer buf;
    msgpack_sbuffer_init (&buf);
    int64_t *sent_at = self->latencies? (int64_t *) calloc ((size_t) self->ops, sizeof (int64_t)): NULL;
    int sent = 0;
    int64_t deadline = bench_now_us () + (int64_t) BENCH_DEADLINE_MS * 1000;
    while (self->done < self->ops && bench_now_us () < deadline) {
        while (sent < self->ops && sent - self->done < self->depth) {
            s_encode (self, sent, &buf);
            if (sent_at)
                sent_at [sent] = bench_now_us ();
            zmq_send (handle, buf.data, buf.size, 0);
            sent++;
        }
        zmq_msg_t reply;
        zmq_msg_init (&reply);
        if (zmq_msg_recv (&reply, handle, 0) < 0) {
            zmq_msg_close (&reply);
            break;                  //  timeout: report what was done
        }
        if (self->op != OP_ECHO) {
            gt_msg_t *msg = NULL;
            uint64_t rid = 0;
            char err [128];
            gt_code_t code = gt_msg_decode (zmq_msg_data (&reply), zmq_msg_size (&reply),
                                            GT_MSG_REPLY, &msg, &rid, err, sizeof err);
            if (code != GT_OK || !msg || msg->code != GT_OK)
                self->errors++;
            else
            if (self->op == OP_CREATE && msg->lease && self->ids && rid >= 1
            &&  rid <= (uint64_t) self->ops)
                memcpy (self->ids [rid - 1], msg->lease->id, GT_LEASE_ID_LEN + 1);
            if (sent_at && rid >= 1 && rid <= (uint64_t) self->ops)
                self->latencies [self->done] = bench_now_us () - sent_at [rid - 1];
            gt_msg_destroy (&msg);
        }
        else
        if (sent_at)
            self->latencies [self->done] = bench_now_us () - sent_at [self->done];
        zmq_msg_close (&reply);
        self->done++;
    }
    free (sent_at);
    msgpack_sbuffer_destroy (&buf);
    zsock_destroy (&dealer);
    return NULL;
}

//  Run one phase with N workers; return ops/s.
static double
s_phase (const char *endpoint, s_op_t op, int connections, int ops_total, int depth,
         int ttl_ms, char (**ids) [GT_LEASE_ID_LEN + 1], int64_t *latencies, int *errors)
{
    s_worker_t *workers = (s_worker_t *) calloc ((size_t) connections, sizeof (s_worker_t));
    pthread_t *threads = (pthread_t *) calloc ((size_t) connections, sizeof (pthread_t));
    int per = ops_total / connections;
    for (int i = 0; i < connections; i++) {
        workers [i] = (s_worker_t) {
            .endpoint = endpoint, .op = op, .ops = per, .depth = depth, .index = i,
            .ttl_ms = ttl_ms, .ids = ids? ids [i]: NULL,
            .latencies = latencies? latencies + (size_t) i * (size_t) per: NULL
        };
    }
    int64_t start = bench_now_us ();
    for (int i = 0; i < connections; i++)
        pthread_create (&threads [i], NULL, s_worker_run, &workers [i]);
    int done = 0;
    for (int i = 0; i < connections; i++) {
        pthread_join (threads [i], NULL);
        done += workers [i].done;
        if (errors)
            *errors += workers [i].errors;
    }
    double seconds = (double) (bench_now_us () - start) / 1e6;
    free (workers);
    free (threads);
    return seconds > 0? done / seconds: 0;
}

//  ---------------------------------------------------------------------
//  Expiry lateness with `live` leases falling due over a 2 s window.

typedef struct {
    int64_t p50, p99, max;          //  lateness in ms
    long received;                  //  expiry events received
    long rss_kb;                    //  broker RSS at peak
    double create_rate;             //  creates/s while loading
} s_expiry_t;

static s_expiry_t
s_expiry_phase (int live)
{
    s_expiry_t result = { 0 };
    bench_broker_t broker = { 0 };
    if (bench_broker_start (&broker, "gtbench",
                            "--min-lease 0.001 --event-history 1000 --lease-retention 0.001",
                            NULL, NULL))
        return result;
    long rss_before = bench_rss_kb (broker.pid);
    zsock_t *sub = zsock_new (ZMQ_SUB);
    zsock_set_rcvhwm (sub, 0);
    zsock_set_subscribe (sub, "expired.");
    zsock_connect (sub, "%s", broker.events);
    //  Load: leases expire 2..4 s after the load finishes.  The load rate
    //  is measured first on a small batch to choose TTLs that fall after it.
    int connections = 2;
    int64_t load_start = bench_now_us ();
    int ttl_ms = 4000 + (int) ((int64_t) live / 150);   //  ~150k creates/s budget
    s_phase (broker.endpoint, OP_CREATE, connections, live, 512, ttl_ms, NULL, NULL, NULL);
    result.create_rate = live / ((double) (bench_now_us () - load_start) / 1e6);
    result.rss_kb = bench_rss_kb (broker.pid) - rss_before;
    int64_t *lateness = (int64_t *) calloc ((size_t) live, sizeof (int64_t));
    int64_t deadline = bench_now_us () + (int64_t) (ttl_ms + 20000) * 1000;
    zsock_set_rcvtimeo (sub, 1000);     //  bounded wait per receive
    while (result.received < live && bench_now_us () < deadline) {
        zmsg_t *msg = zmsg_recv (sub);
        if (!msg)
            continue;
        int64_t received_at = bench_wall_ms ();
        zframe_t *topic = zmsg_first (msg);
        zframe_t *body = zmsg_next (msg);
        gt_msg_t *event = NULL;
        if (topic && body
        &&  gt_msg_decode (zframe_data (body), zframe_size (body), GT_MSG_EVENT,
                           &event, NULL, NULL, 0) == GT_OK) {
            //  An expired lease reports its end time in expires_at; the
            //  deadline was created_at/renewed_at + ttl_ms.
            int64_t due = (int64_t) (event->event.lease.renewed_at + event->event.lease.ttl_ms);
            lateness [result.received++] = received_at - due;
            gt_msg_destroy (&event);
        }
        zmsg_destroy (&msg);
    }
    qsort (lateness, (size_t) result.received, sizeof (int64_t), bench_cmp_i64);
    result.p50 = bench_percentile (lateness, (size_t) result.received, 0.50);
    result.p99 = bench_percentile (lateness, (size_t) result.received, 0.99);
    result.max = result.received? lateness [result.received - 1]: 0;
    free (lateness);
    zsock_destroy (&sub);
    bench_broker_stop (&broker);
    return result;
}

//  ---------------------------------------------------------------------

static void
s_usage (void)
{
    puts ("usage: gtbench [--connections N] [--depth D] [--ops N] [--live N[,N...]] [--quick]");
}

int
main (int argc, char *argv [])
{
    s_options_t options = { .connections = 2, .depth = 256, .ops = 400000,
                            .lockstep_ops = 20000, .live = { 10000, 1000000 }, .live_count = 2 };
    for (int i = 1; i < argc; i++) {
        if (streq (argv [i], "--connections") && i + 1 < argc)
            options.connections = atoi (argv [++i]);
        else
        if (streq (argv [i], "--depth") && i + 1 < argc)
            options.depth = atoi (argv [++i]);
        else
        if (streq (argv [i], "--ops") && i + 1 < argc)
            options.ops = atoi (argv [++i]);
        else
        if (streq (argv [i], "--live") && i + 1 < argc) {
            options.live_count = 0;
            char *list = argv [++i];
            for (char *item = strtok (list, ","); item && options.live_count < 4;
                 item = strtok (NULL, ","))
                options.live [options.live_count++] = atoi (item);
        }
        else
        if (streq (argv [i], "--quick")) {
            options.ops = 40000;
            options.lockstep_ops = 2000;
            options.live [0] = 10000;
            options.live_count = 1;
        }
        else {
            s_usage ();
            return streq (argv [i], "--help")? 0: 2;
        }
    }
    if (options.connections < 1 || options.depth < 1 || options.ops < options.connections) {
        s_usage ();
        return 2;
    }
    zsys_init ();
    zsys_set_linger (0);
    options.ops -= options.ops % options.connections;
    //  The lock-step phase renews the leases one worker created: never more
    if (options.lockstep_ops > options.ops / options.connections)
        options.lockstep_ops = options.ops / options.connections;

    //  1. Yardstick: bare ROUTER echo
    zactor_t *echo = zactor_new (s_echo_actor, NULL);
    char *echo_port = zstr_recv (echo);
    char echo_endpoint [64];
    snprintf (echo_endpoint, sizeof echo_endpoint, "tcp://127.0.0.1:%s", echo_port);
    zstr_free (&echo_port);
    double echo_rate = s_phase (echo_endpoint, OP_ECHO, options.connections, options.ops,
                                options.depth, 0, NULL, NULL, NULL);
    int64_t *echo_lat = (int64_t *) calloc ((size_t) options.lockstep_ops, sizeof (int64_t));
    s_phase (echo_endpoint, OP_ECHO, 1, options.lockstep_ops, 1, 0, NULL, echo_lat, NULL);
    qsort (echo_lat, (size_t) options.lockstep_ops, sizeof (int64_t), bench_cmp_i64);
    zactor_destroy (&echo);

    //  2. Broker throughput and latency
    bench_broker_t broker = { 0 };
    if (bench_broker_start (&broker, "gtbench", "--min-lease 1", NULL, NULL))
        return 1;
    int per = options.ops / options.connections;
    char (**ids) [GT_LEASE_ID_LEN + 1] = calloc ((size_t) options.connections, sizeof *ids);
    for (int i = 0; i < options.connections; i++)
        ids [i] = calloc ((size_t) per, GT_LEASE_ID_LEN + 1);
    int errors = 0;
    double create_rate = s_phase (broker.endpoint, OP_CREATE, options.connections, options.ops,
                                  options.depth, 600000, ids, NULL, &errors);
    double renew_rate = s_phase (broker.endpoint, OP_RENEW, options.connections, options.ops,
                                 options.depth, 0, ids, NULL, &errors);
    int64_t *lat = (int64_t *) calloc ((size_t) options.lockstep_ops, sizeof (int64_t));
    s_phase (broker.endpoint, OP_RENEW, 1, options.lockstep_ops, 1, 0, ids, lat, &errors);
    qsort (lat, (size_t) options.lockstep_ops, sizeof (int64_t), bench_cmp_i64);
    double release_rate = s_phase (broker.endpoint, OP_RELEASE, options.connections, options.ops,
                                   options.depth, 0, ids, NULL, &errors);
    bench_broker_stop (&broker);
    for (int i = 0; i < options.connections; i++)
        free (ids [i]);
    free (ids);

    printf ("\n## gtbench: %d connections, depth %d, %d ops per phase, memory store\n\n",
            options.connections, options.depth, options.ops);
    printf ("| figure | value | ratio to bare ROUTER echo |\n|---|---|---|\n");
    printf ("| echo round trips/s (yardstick) | %.0f | 1.00 |\n", echo_rate);
    printf ("| CREATE pipelined ops/s | %.0f | %.2f |\n", create_rate, create_rate / echo_rate);
    printf ("| RENEW pipelined ops/s | %.0f | %.2f |\n", renew_rate, renew_rate / echo_rate);
    printf ("| RELEASE pipelined ops/s | %.0f | %.2f |\n", release_rate, release_rate / echo_rate);
    int64_t echo_p50 = bench_percentile (echo_lat, (size_t) options.lockstep_ops, 0.5);
    int64_t echo_p99 = bench_percentile (echo_lat, (size_t) options.lockstep_ops, 0.99);
    int64_t p50 = bench_percentile (lat, (size_t) options.lockstep_ops, 0.5);
    int64_t p99 = bench_percentile (lat, (size_t) options.lockstep_ops, 0.99);
    printf ("| lock-step echo round trip p50 / p99 (us) | %lld / %lld | 1.00 |\n",
            (long long) echo_p50, (long long) echo_p99);
    printf ("| lock-step RENEW round trip p50 / p99 (us) | %lld / %lld | %.2f / %.2f |\n",
            (long long) p50, (long long) p99,
            echo_p50? (double) p50 / (double) echo_p50: 0,
            echo_p99? (double) p99 / (double) echo_p99: 0);
    printf ("| request errors (should be 0) | %d | |\n", errors);
    free (lat);
    free (echo_lat);

    printf ("\n| live leases | load creates/s | expiry lateness p50 / p99 / max (ms) | events received | RSS per live lease (bytes) |\n");
    printf ("|---|---|---|---|---|\n");
    for (int i = 0; i < options.live_count; i++) {
        s_expiry_t expiry = s_expiry_phase (options.live [i]);
        printf ("| %d | %.0f | %lld / %lld / %lld | %ld | %.0f |\n", options.live [i],
                expiry.create_rate, (long long) expiry.p50, (long long) expiry.p99,
                (long long) expiry.max, expiry.received,
                options.live [i]? expiry.rss_kb * 1024.0 / options.live [i]: 0);
        fflush (stdout);
    }
    return 0;
}

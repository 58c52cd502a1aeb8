/*  gtbench — GarbageTruck broker benchmark (not a test: it prints numbers).

    Starts the real daemon (GT_BROKER_BIN, default <build>/broker/garbagetruck)
    as a separate process on ephemeral loopback ports, and measures in one run:
      - a bare CZMQ ROUTER echo loop (same message size, connections, depth),
        the yardstick every other figure is divided by;
      - pipelined CREATE / RENEW / RELEASE throughput with N connections;
      - lock-step round-trip latency p50/p99 (one request in flight);
      - expiry lateness (event receipt time - lease deadline) with L live leases;
      - RSS of the broker per live lease;
      - with --sustained N[,R]: N live leases falling due at R a second
        (default 100,000) while one client renews other leases in lock step:
        the expiry lateness and that RENEW round trip meanwhile.
    Every loop is bounded in count and time.

    --curve: the same run also measures the throughput and latency phases
    (and the echo yardstick) with CURVE, back to back after the plaintext
    ones, and prints them as ratios to plaintext.  The certificates are made
    in a temporary directory (zcert): the broker's, given to the daemon as
    --curve-cert, and one per connection (service bench-N, role service) in
    its --curve-clients directory; each client DEALER gets its certificate
    (zcert_apply) and the broker's public key before it connects.  The echo
    yardstick with CURVE is a bare CURVE server ROUTER (no ZAP handler): what
    libzmq's encryption alone costs.  The expiry phase runs in plaintext only.

    Usage: gtbench [--connections N] [--depth D] [--ops N] [--live N[,N...]] [--quick]
                   [--curve] [--sustained N[,R]]  */

#include "bench_util.h"
#include <pthread.h>
#include <stdatomic.h>
#include <sys/stat.h>

#define BENCH_DEADLINE_MS   60000           //  no phase runs longer than this

typedef struct {
    int connections;                //  client connections (threads)
    int depth;                      //  requests in flight per connection
    int ops;                        //  total operations per throughput phase
    int lockstep_ops;               //  operations in the latency phase
    int live [4];                   //  live-lease counts for the expiry phase
    int live_count;                 //  how many entries of live are used
    bool curve;                     //  also measure with CURVE (--curve)
    int sustained;                  //  live leases of the sustained phase (0: none)
    int sustained_rate;             //  their expiries per second
} s_options_t;

//  ---------------------------------------------------------------------
//  CURVE certificates for one run, in a temporary directory:
//  <dir>/broker_secret (the daemon's --curve-cert), <dir>/clients/bench-N
//  (its --curve-clients), the client certificates kept in memory.

typedef struct {
    char dir [64];                  //  the temporary directory
    char server_secret [128];       //  <dir>/broker_secret
    char clients_dir [128];         //  <dir>/clients
    zcert_t *server;                //  the broker's certificate
    zcert_t **clients;              //  one per connection (service bench-N)
    int count;                      //  how many
} s_curve_t;

static void
s_curve_destroy (s_curve_t **self_p)
{
    s_curve_t *self = *self_p;
    if (!self)
        return;
    for (int i = 0; i < self->count; i++) {
        char path [192];
        snprintf (path, sizeof path, "%s/bench-%d", self->clients_dir, i);
        zsys_file_delete (path);
        zcert_destroy (&self->clients [i]);
    }
    free (self->clients);
    char path [192];
    snprintf (path, sizeof path, "%s/broker", self->dir);
    zsys_file_delete (path);
    zsys_file_delete (self->server_secret);
    rmdir (self->clients_dir);
    rmdir (self->dir);
    zcert_destroy (&self->server);
    free (self);
    *self_p = NULL;
}

//  Certificates for the broker and `count` clients; NULL after a message.
static s_curve_t *
s_curve_new (int count)
{
    if (!zsys_has_curve ()) {
        fprintf (stderr, "gtbench: --curve: this libzmq has no CURVE support\n");
        return NULL;
    }
    s_curve_t *self = (s_curve_t *) calloc (1, sizeof (s_curve_t));
    self->clients = (zcert_t **) calloc ((size_t) count, sizeof (zcert_t *));
    snprintf (self->dir, sizeof self->dir, "/tmp/gtbench-curve-XXXXXX");
    if (!mkdtemp (self->dir)) {
        fprintf (stderr, "gtbench: --curve: cannot make a temporary directory\n");
        free (self->clients);
        free (self);
        return NULL;
    }
    snprintf (self->server_secret, sizeof self->server_secret, "%s/broker_secret", self->dir);
    snprintf (self->clients_dir, sizeof self->clients_dir, "%s/clients", self->dir);
    mkdir (self->clients_dir, 0700);
    char path [192];
    self->server = zcert_new ();
    snprintf (path, sizeof path, "%s/broker", self->dir);
    int rc = self->server? zcert_save (self->server, path): -1;
    for (int i = 0; rc == 0 && i < count; i++) {
        self->clients [i] = zcert_new ();
        self->count++;
        if (!self->clients [i]) {
            rc = -1;
            break;
        }
        zcert_set_meta (self->clients [i], "service", "bench-%d", i);
        zcert_set_meta (self->clients [i], "role", "service");
        snprintf (path, sizeof path, "%s/bench-%d", self->clients_dir, i);
        rc = zcert_save_public (self->clients [i], path);
    }
    if (rc != 0) {
        fprintf (stderr, "gtbench: --curve: cannot write the certificates in %s\n", self->dir);
        s_curve_destroy (&self);
    }
    return self;
}

//  ---------------------------------------------------------------------
//  Echo yardstick: a bare ROUTER that returns every message as it came.

static void
s_echo_actor (zsock_t *pipe, void *args)
{
    zcert_t *server = (zcert_t *) args;     //  CURVE server certificate, or NULL
    zsock_t *router = zsock_new (ZMQ_ROUTER);
    zsock_set_sndhwm (router, 100000);
    zsock_set_rcvhwm (router, 100000);
    if (server) {
        zcert_apply (server, router);
        zsock_set_curve_server (router, 1);
    }
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

//  Deadlines of paced CREATEs: the k-th lease of the phase (requests
//  interleaved over the workers) is due at first_ms + k * step_ms, wall time.
typedef struct {
    int64_t first_ms;               //  the first deadline
    double step_ms;                 //  between consecutive deadlines
} s_due_t;

typedef struct {
    const char *endpoint;           //  where to connect
    s_op_t op;                      //  what to send
    int ops;                        //  how many requests
    int depth;                      //  in flight at once
    int index;                      //  worker number (service and object names)
    int ttl_ms;                     //  TTL for creates
    const s_due_t *due;             //  or paced deadlines for creates (ttl_ms unused)
    int workers;                    //  how many workers the phase has (pacing)
    char (*ids) [GT_LEASE_ID_LEN + 1];  //  lease ids: filled by CREATE, used by RENEW/RELEASE
    int64_t *latencies;             //  per-request latency in us (lock-step only)
    zcert_t *cert;                  //  CURVE: this client's certificate, else NULL
    const char *server_key;         //  CURVE: the server's public key (Z85)
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
            if (self->due) {
                int64_t k = (int64_t) i * self->workers + self->index;
                int64_t ttl = self->due->first_ms + (int64_t) ((double) k * self->due->step_ms)
                            - bench_wall_ms ();
                msg.ttl_ms = ttl < 1? 1: (uint64_t) ttl;
            }
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
    if (self->cert) {
        zcert_apply (self->cert, dealer);
        zsock_set_curve_serverkey (dealer, self->server_key);
    }
    zsock_connect (dealer, "%s", self->endpoint);
    void *handle = zsock_resolve (dealer);
    msgpack_sbuffer buf;
    msgpack_sbuffer_init (&buf);
    //  Replies are read as a pipelined client would: into one reusable
    //  decoder, nothing allocated per reply
    gt_msg_decoder_t *decoder = gt_msg_decoder_new ();
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
            const gt_msg_t *msg = NULL;
            uint64_t rid = 0;
            char err [128];
            gt_code_t code = gt_msg_decoder_decode (decoder, zmq_msg_data (&reply), zmq_msg_size (&reply),
                                                    GT_MSG_REPLY, &msg, &rid, err, sizeof err);
            if (code != GT_OK || !msg || msg->code != GT_OK)
                self->errors++;
            else
            if (self->op == OP_CREATE && msg->lease && self->ids && rid >= 1
            &&  rid <= (uint64_t) self->ops)
                memcpy (self->ids [rid - 1], msg->lease->id, GT_LEASE_ID_LEN + 1);
            if (sent_at && rid >= 1 && rid <= (uint64_t) self->ops)
                self->latencies [self->done] = bench_now_us () - sent_at [rid - 1];
        }
        else
        if (sent_at)
            self->latencies [self->done] = bench_now_us () - sent_at [self->done];
        zmq_msg_close (&reply);
        self->done++;
    }
    free (sent_at);
    gt_msg_decoder_destroy (&decoder);
    msgpack_sbuffer_destroy (&buf);
    zsock_destroy (&dealer);
    return NULL;
}

//  Run one phase with N workers (with CURVE when curve is not NULL); return ops/s.
static double
s_phase_paced (const char *endpoint, const s_curve_t *curve, s_op_t op, int connections,
               int ops_total, int depth, int ttl_ms, const s_due_t *due,
               char (**ids) [GT_LEASE_ID_LEN + 1], int64_t *latencies, int *errors)
{
    s_worker_t *workers = (s_worker_t *) calloc ((size_t) connections, sizeof (s_worker_t));
    pthread_t *threads = (pthread_t *) calloc ((size_t) connections, sizeof (pthread_t));
    int per = ops_total / connections;
    for (int i = 0; i < connections; i++) {
        workers [i] = (s_worker_t) {
            .endpoint = endpoint, .op = op, .ops = per, .depth = depth, .index = i,
            .ttl_ms = ttl_ms, .due = due, .workers = connections, .ids = ids? ids [i]: NULL,
            .latencies = latencies? latencies + (size_t) i * (size_t) per: NULL,
            .cert = curve? curve->clients [i]: NULL,
            .server_key = curve? zcert_public_txt (curve->server): NULL
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

static double
s_phase (const char *endpoint, const s_curve_t *curve, s_op_t op, int connections,
         int ops_total, int depth, int ttl_ms, char (**ids) [GT_LEASE_ID_LEN + 1],
         int64_t *latencies, int *errors)
{
    return s_phase_paced (endpoint, curve, op, connections, ops_total, depth, ttl_ms, NULL, ids,
                          latencies, errors);
}

//  ---------------------------------------------------------------------
//  Expiry lateness with `live` leases falling due over a 2 s window.

typedef struct {
    int64_t p50, p99, max;          //  lateness in ms
    long received;                  //  expiry events received
    long rss_kb;                    //  broker RSS at peak
    double create_rate;             //  creates/s while loading
} s_expiry_t;

//  A daemon for an expiry phase (short leases allowed, ended ones purged
//  at once, a small history) and a SUB socket on the expiries of the
//  services of `connections` loading workers; NULL if it did not start.
static zsock_t *
s_expiry_broker_start (bench_broker_t *broker, int connections)
{
    if (bench_broker_start (broker, "gtbench",
                            "--min-lease 0.001 --event-history 1000 --lease-retention 0.001",
                            NULL, NULL))
        return NULL;
    zsock_t *sub = zsock_new (ZMQ_SUB);
    zsock_set_rcvhwm (sub, 0);
    //  Topics are service U+001F verb.TYPE: the loading services' expiries
    for (int i = 0; i < connections; i++) {
        char topic [64];
        snprintf (topic, sizeof topic, "bench-%d\x1f" "expired.", i);
        zsock_set_subscribe (sub, topic);
    }
    zsock_connect (sub, "%s", broker->events);
    return sub;
}

static s_expiry_t
s_expiry_phase (int live)
{
    s_expiry_t result = { 0 };
    bench_broker_t broker = { 0 };
    int connections = 2;
    zsock_t *sub = s_expiry_broker_start (&broker, connections);
    if (!sub)
        return result;
    long rss_before = bench_rss_kb (broker.pid);
    //  Load: leases expire 2..4 s after the load finishes (TTLs from a
    //  budget of 150k creates/s)
    int64_t load_start = bench_now_us ();
    int ttl_ms = 4000 + (int) ((int64_t) live / 150);   //  ~150k creates/s budget
    s_phase (broker.endpoint, NULL, OP_CREATE, connections, live, 512, ttl_ms, NULL, NULL, NULL);
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
//  Sustained expiry: `live` leases due at `rate` a second, loaded first
//  (their deadlines start after the load), while one client renews other
//  leases in lock step; its round trips count while expiries arrive.

#define S_RENEW_SAMPLES     2000000         //  lock-step renews at most

typedef struct {
    const char *endpoint;           //  the broker
    char (*ids) [GT_LEASE_ID_LEN + 1];  //  leases to renew, round robin
    int count;                      //  how many
    atomic_bool measuring;          //  record round trips now
    atomic_bool stop;               //  end the loop
    int64_t *latencies;             //  round trips recorded (us)
    size_t recorded;                //  how many
    int errors;                     //  non-OK replies
} s_renewer_t;

static void *
s_renewer_run (void *args)
{
    s_renewer_t *self = (s_renewer_t *) args;
    zsock_t *dealer = zsock_new (ZMQ_DEALER);
    zsock_set_rcvtimeo (dealer, 5000);
    zsock_connect (dealer, "%s", self->endpoint);
    void *handle = zsock_resolve (dealer);
    msgpack_sbuffer buf;
    msgpack_sbuffer_init (&buf);
    int64_t deadline = bench_now_us () + (int64_t) BENCH_DEADLINE_MS * 1000;
    for (int n = 0; n < S_RENEW_SAMPLES && !atomic_load (&self->stop) && bench_now_us () < deadline; n++) {
        gt_msg_t msg;
        memset (&msg, 0, sizeof msg);
        msg.kind = GT_MSG_REQUEST;
        msg.version = GT_PROTOCOL_VERSION;
        msg.rid = (uint64_t) n + 1;
        msg.service_id = "bench-0";
        msg.cmd = GT_CMD_RENEW;
        msg.lease_id = self->ids [n % self->count];
        msgpack_sbuffer_clear (&buf);
        gt_msg_encode (&msg, &buf);
        bool measuring = atomic_load (&self->measuring);
        int64_t sent = bench_now_us ();
        zmq_send (handle, buf.data, buf.size, 0);
        zmq_msg_t reply;
        zmq_msg_init (&reply);
        if (zmq_msg_recv (&reply, handle, 0) < 0) {
            zmq_msg_close (&reply);
            self->errors++;
            break;
        }
        int64_t took = bench_now_us () - sent;
        gt_msg_t *decoded = NULL;
        if (gt_msg_decode (zmq_msg_data (&reply), zmq_msg_size (&reply), GT_MSG_REPLY, &decoded,
                           NULL, NULL, 0) != GT_OK || decoded->code != GT_OK)
            self->errors++;
        gt_msg_destroy (&decoded);
        zmq_msg_close (&reply);
        if (measuring && atomic_load (&self->measuring))
            self->latencies [self->recorded++] = took;
    }
    msgpack_sbuffer_destroy (&buf);
    zsock_destroy (&dealer);
    return NULL;
}

typedef struct {
    s_expiry_t expiry;              //  lateness, events, load rate
    double seen_rate;               //  expiries/s from the first event to the last
    int64_t renew_p50, renew_p99;   //  lock-step RENEW meanwhile (us)
    size_t renews;                  //  how many were measured
    int errors;                     //  failed renews
} s_sustained_t;

static s_sustained_t
s_sustained_phase (int live, int rate)
{
    s_sustained_t result;
    memset (&result, 0, sizeof result);
    bench_broker_t broker = { 0 };
    int connections = 2;
    zsock_t *sub = s_expiry_broker_start (&broker, connections);
    if (!sub)
        return result;
    //  The leases renewed meanwhile (they stay live: 600 s)
    enum { RENEWED = 1000 };
    char (*renew_ids) [GT_LEASE_ID_LEN + 1] = calloc (RENEWED, GT_LEASE_ID_LEN + 1);
    char (**one) [GT_LEASE_ID_LEN + 1] = &renew_ids;
    s_phase (broker.endpoint, NULL, OP_CREATE, 1, RENEWED, 64, 600000, one, NULL, &result.errors);
    //  The load, due from 3 s after its budget (150k creates/s) ends
    int64_t load_start = bench_now_us ();
    s_due_t due = { bench_wall_ms () + 3000 + (int64_t) live / 150, 1000.0 / rate };
    s_phase_paced (broker.endpoint, NULL, OP_CREATE, connections, live, 512, 0, &due, NULL, NULL,
                   &result.errors);
    result.expiry.create_rate = live / ((double) (bench_now_us () - load_start) / 1e6);

    s_renewer_t renewer = { .endpoint = broker.endpoint, .ids = renew_ids, .count = RENEWED,
                            .latencies = (int64_t *) calloc (S_RENEW_SAMPLES, sizeof (int64_t)) };
    atomic_init (&renewer.measuring, false);
    atomic_init (&renewer.stop, false);
    pthread_t thread;
    pthread_create (&thread, NULL, s_renewer_run, &renewer);
    int64_t *lateness = (int64_t *) calloc ((size_t) live, sizeof (int64_t));
    int64_t last_due = due.first_ms + (int64_t) (live * due.step_ms);
    int64_t deadline = bench_now_us () + (last_due - bench_wall_ms () + 20000) * 1000;
    int64_t first_at = 0, last_at = 0;
    zsock_set_rcvtimeo (sub, 1000);
    while (result.expiry.received < live && bench_now_us () < deadline) {
        zmsg_t *msg = zmsg_recv (sub);
        if (!msg)
            continue;
        int64_t received_at = bench_wall_ms ();
        if (!first_at) {
            first_at = bench_now_us ();
            atomic_store (&renewer.measuring, true);
        }
        last_at = bench_now_us ();
        zframe_t *body = zmsg_last (msg);
        gt_msg_t *event = NULL;
        if (body && gt_msg_decode (zframe_data (body), zframe_size (body), GT_MSG_EVENT,
                                   &event, NULL, NULL, 0) == GT_OK) {
            int64_t lease_due = (int64_t) (event->event.lease.renewed_at + event->event.lease.ttl_ms);
            lateness [result.expiry.received++] = received_at - lease_due;
            gt_msg_destroy (&event);
        }
        zmsg_destroy (&msg);
    }
    atomic_store (&renewer.measuring, false);
    atomic_store (&renewer.stop, true);
    pthread_join (thread, NULL);
    result.errors += renewer.errors;
    qsort (lateness, (size_t) result.expiry.received, sizeof (int64_t), bench_cmp_i64);
    result.expiry.p50 = bench_percentile (lateness, (size_t) result.expiry.received, 0.50);
    result.expiry.p99 = bench_percentile (lateness, (size_t) result.expiry.received, 0.99);
    result.expiry.max = result.expiry.received? lateness [result.expiry.received - 1]: 0;
    if (last_at > first_at)
        result.seen_rate = (double) result.expiry.received / ((double) (last_at - first_at) / 1e6);
    qsort (renewer.latencies, renewer.recorded, sizeof (int64_t), bench_cmp_i64);
    result.renews = renewer.recorded;
    result.renew_p50 = bench_percentile (renewer.latencies, renewer.recorded, 0.50);
    result.renew_p99 = bench_percentile (renewer.latencies, renewer.recorded, 0.99);
    free (renewer.latencies);
    free (lateness);
    free (renew_ids);
    zsock_destroy (&sub);
    bench_broker_stop (&broker);
    return result;
}

//  ---------------------------------------------------------------------
//  The yardstick and the broker's throughput and latency phases, in
//  plaintext (curve NULL) or with CURVE.

typedef struct {
    double rate;                    //  pipelined round trips/s
    int64_t p50, p99;               //  lock-step round trip (us)
} s_echo_t;

static s_echo_t
s_echo_phases (const s_options_t *options, const s_curve_t *curve)
{
    s_echo_t result = { 0 };
    zactor_t *echo = zactor_new (s_echo_actor, curve? curve->server: NULL);
    char *echo_port = zstr_recv (echo);
    char endpoint [64];
    snprintf (endpoint, sizeof endpoint, "tcp://127.0.0.1:%s", echo_port);
    zstr_free (&echo_port);
    result.rate = s_phase (endpoint, curve, OP_ECHO, options->connections, options->ops,
                           options->depth, 0, NULL, NULL, NULL);
    int64_t *lat = (int64_t *) calloc ((size_t) options->lockstep_ops, sizeof (int64_t));
    s_phase (endpoint, curve, OP_ECHO, 1, options->lockstep_ops, 1, 0, NULL, lat, NULL);
    qsort (lat, (size_t) options->lockstep_ops, sizeof (int64_t), bench_cmp_i64);
    result.p50 = bench_percentile (lat, (size_t) options->lockstep_ops, 0.5);
    result.p99 = bench_percentile (lat, (size_t) options->lockstep_ops, 0.99);
    free (lat);
    zactor_destroy (&echo);
    return result;
}

typedef struct {
    double create_rate, renew_rate, release_rate;   //  pipelined ops/s
    double pipelined_rate;          //  the three phases' ops over their summed time
    int64_t p50, p99;               //  lock-step RENEW round trip (us)
    int errors;                     //  non-OK replies, all phases
} s_broker_figures_t;

//  A daemon (a CURVE one when curve is not NULL), CREATE / RENEW / lock-step
//  RENEW / RELEASE against it, stopped.  0, or -1 if it did not start.
static int
s_broker_phases (const s_options_t *options, const s_curve_t *curve, s_broker_figures_t *result)
{
    memset (result, 0, sizeof *result);
    char flags [512];
    if (curve)
        snprintf (flags, sizeof flags, "--min-lease 1 --curve-cert %s --curve-clients %s",
                  curve->server_secret, curve->clients_dir);
    else
        snprintf (flags, sizeof flags, "--min-lease 1");
    bench_broker_t broker = { 0 };
    if (bench_broker_start (&broker, "gtbench", flags, NULL, NULL))
        return -1;
    int per = options->ops / options->connections;
    char (**ids) [GT_LEASE_ID_LEN + 1] = calloc ((size_t) options->connections, sizeof *ids);
    for (int i = 0; i < options->connections; i++)
        ids [i] = calloc ((size_t) per, GT_LEASE_ID_LEN + 1);
    result->create_rate = s_phase (broker.endpoint, curve, OP_CREATE, options->connections,
                                   options->ops, options->depth, 600000, ids, NULL,
                                   &result->errors);
    result->renew_rate = s_phase (broker.endpoint, curve, OP_RENEW, options->connections,
                                  options->ops, options->depth, 0, ids, NULL, &result->errors);
    int64_t *lat = (int64_t *) calloc ((size_t) options->lockstep_ops, sizeof (int64_t));
    s_phase (broker.endpoint, curve, OP_RENEW, 1, options->lockstep_ops, 1, 0, ids, lat,
             &result->errors);
    qsort (lat, (size_t) options->lockstep_ops, sizeof (int64_t), bench_cmp_i64);
    result->p50 = bench_percentile (lat, (size_t) options->lockstep_ops, 0.5);
    result->p99 = bench_percentile (lat, (size_t) options->lockstep_ops, 0.99);
    free (lat);
    result->release_rate = s_phase (broker.endpoint, curve, OP_RELEASE, options->connections,
                                    options->ops, options->depth, 0, ids, NULL,
                                    &result->errors);
    bench_broker_stop (&broker);
    for (int i = 0; i < options->connections; i++)
        free (ids [i]);
    free (ids);
    if (result->create_rate > 0 && result->renew_rate > 0 && result->release_rate > 0)
        result->pipelined_rate = 3.0 / (1.0 / result->create_rate + 1.0 / result->renew_rate
                                        + 1.0 / result->release_rate);
    return 0;
}

static double
s_ratio (double value, double base)
{
    return base > 0? value / base: 0;
}

//  ---------------------------------------------------------------------

static void
s_usage (void)
{
    puts ("usage: gtbench [--connections N] [--depth D] [--ops N] [--live N[,N...]] [--quick] [--curve]\n"
          "               [--sustained N[,R]]");
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
        else
        if (streq (argv [i], "--curve"))
            options.curve = true;
        else
        if (streq (argv [i], "--sustained") && i + 1 < argc) {
            char *list = argv [++i];
            char *rate = strchr (list, ',');
            options.sustained = atoi (list);
            options.sustained_rate = rate? atoi (rate + 1): 100000;
            if (options.sustained < 1 || options.sustained_rate < 1) {
                s_usage ();
                return 2;
            }
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
    s_curve_t *curve = NULL;
    if (options.curve && !(curve = s_curve_new (options.connections)))
        return 1;

    //  1. Yardstick: bare ROUTER echo (and with CURVE)
    s_echo_t echo = s_echo_phases (&options, NULL);
    s_echo_t echo_curve = { 0 };
    if (curve)
        echo_curve = s_echo_phases (&options, curve);

    //  2. Broker throughput and latency: plaintext, then CURVE back to back
    s_broker_figures_t plain, secure = { 0 };
    if (s_broker_phases (&options, NULL, &plain)
    ||  (curve && s_broker_phases (&options, curve, &secure))) {
        s_curve_destroy (&curve);
        return 1;
    }
    s_curve_destroy (&curve);

    printf ("\n## gtbench: %d connections, depth %d, %d ops per phase, memory store\n\n",
            options.connections, options.depth, options.ops);
    printf ("| figure | value | ratio to bare ROUTER echo |\n|---|---|---|\n");
    printf ("| echo round trips/s (yardstick) | %.0f | 1.00 |\n", echo.rate);
    printf ("| CREATE pipelined ops/s | %.0f | %.2f |\n", plain.create_rate,
            plain.create_rate / echo.rate);
    printf ("| RENEW pipelined ops/s | %.0f | %.2f |\n", plain.renew_rate,
            plain.renew_rate / echo.rate);
    printf ("| RELEASE pipelined ops/s | %.0f | %.2f |\n", plain.release_rate,
            plain.release_rate / echo.rate);
    printf ("| lock-step echo round trip p50 / p99 (us) | %lld / %lld | 1.00 |\n",
            (long long) echo.p50, (long long) echo.p99);
    printf ("| lock-step RENEW round trip p50 / p99 (us) | %lld / %lld | %.2f / %.2f |\n",
            (long long) plain.p50, (long long) plain.p99,
            echo.p50? (double) plain.p50 / (double) echo.p50: 0,
            echo.p99? (double) plain.p99 / (double) echo.p99: 0);
    printf ("| request errors (should be 0) | %d | |\n", plain.errors);

    if (options.curve) {
        printf ("\n## gtbench --curve: the same phases with CURVE, in the same run "
                "(one client certificate per connection)\n\n");
        printf ("| figure | plaintext | CURVE | CURVE / plaintext |\n|---|---|---|---|\n");
        printf ("| echo round trips/s (bare ROUTER, CURVE without ZAP) | %.0f | %.0f | %.2f |\n",
                echo.rate, echo_curve.rate, s_ratio (echo_curve.rate, echo.rate));
        printf ("| CREATE pipelined ops/s | %.0f | %.0f | %.2f |\n", plain.create_rate,
                secure.create_rate, s_ratio (secure.create_rate, plain.create_rate));
        printf ("| RENEW pipelined ops/s | %.0f | %.0f | %.2f |\n", plain.renew_rate,
                secure.renew_rate, s_ratio (secure.renew_rate, plain.renew_rate));
        printf ("| RELEASE pipelined ops/s | %.0f | %.0f | %.2f |\n", plain.release_rate,
                secure.release_rate, s_ratio (secure.release_rate, plain.release_rate));
        printf ("| pipelined ops/s, CREATE + RENEW + RELEASE (aim: ratio >= 0.70) | %.0f | %.0f | %.2f |\n",
                plain.pipelined_rate, secure.pipelined_rate,
                s_ratio (secure.pipelined_rate, plain.pipelined_rate));
        printf ("| lock-step echo round trip p99 (us) | %lld | %lld | %.2f |\n",
                (long long) echo.p99, (long long) echo_curve.p99,
                s_ratio ((double) echo_curve.p99, (double) echo.p99));
        printf ("| lock-step RENEW round trip p50 (us) | %lld | %lld | %.2f |\n",
                (long long) plain.p50, (long long) secure.p50,
                s_ratio ((double) secure.p50, (double) plain.p50));
        printf ("| lock-step RENEW round trip p99 (us) | %lld | %lld | %.2f |\n",
                (long long) plain.p99, (long long) secure.p99,
                s_ratio ((double) secure.p99, (double) plain.p99));
        printf ("| request errors (should be 0) | %d | %d | |\n", plain.errors, secure.errors);
    }
    fflush (stdout);

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
    if (options.sustained) {
        s_sustained_t sustained = s_sustained_phase (options.sustained, options.sustained_rate);
        printf ("\n| sustained: live leases, due per second | expiries/s seen | expiry lateness p50 / p99 / max (ms) "
                "| events received | lock-step RENEW meanwhile p50 / p99 (us), count | errors |\n");
        printf ("|---|---|---|---|---|---|\n");
        printf ("| %d, %d | %.0f | %lld / %lld / %lld | %ld | %lld / %lld, %zu | %d |\n",
                options.sustained, options.sustained_rate, sustained.seen_rate,
                (long long) sustained.expiry.p50, (long long) sustained.expiry.p99,
                (long long) sustained.expiry.max, sustained.expiry.received,
                (long long) sustained.renew_p50, (long long) sustained.renew_p99, sustained.renews,
                sustained.errors);
    }
    return 0;
}

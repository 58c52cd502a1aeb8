/*  gt_broker_delivery_test.c — selftest of gt_broker_delivery (the
    broker's side of cleanup callbacks), kept out of the production
    library: the parts that need no broker (the integration tests in
    tests/test_delivery.c drive the rest over the wire).

    Beyond gt_broker_delivery.h it reads gt_broker_delivery_private.h (not
    installed): the settings taken from config, the engine started on
    first use, and the indexes of the records by job id and by lease id.

    Forgetting shards is tested here with a real lease engine, a stand-in
    for the broker's batch, a store that only says it keeps an outbox, and
    a real HTTP server (tests/gt_http_server).  */
#include <czmq.h>
#include "gt_config.h"
#include "gt_broker_delivery.h"
#include "gt_broker_delivery_private.h"
#include "gt_http_server.h"
#include "gt_broker_selftest.h"

//  --------------------------------------------------------------------------
//  Forgetting shards, with a lease engine, a store that keeps an outbox,
//  and a real HTTP server (tests/gt_http_server)

#define S_WAIT_MS   10000           //  deadline for anything awaited

//  The stand-in broker: its batch of the turn, the outbox rows written
typedef struct {
    uint64_t batch;                 //  id of the batch of this turn
    size_t puts [GT_SHARD_COUNT];   //  rows put, by shard
    size_t deletes [GT_SHARD_COUNT];    //  rows deleted, by shard
} s_turn_t;

static uint64_t
s_turn (void *ctx, uint64_t *last_seq_p)
{
    if (last_seq_p)
        *last_seq_p = 7;
    return ((s_turn_t *) ctx)->batch;
}

static void
s_put_row (void *ctx, const gt_store_callback_t *row)
{
    assert (row->shard < GT_SHARD_COUNT);
    ((s_turn_t *) ctx)->puts [row->shard]++;
}

static void
s_delete_row (void *ctx, uint64_t job_id, unsigned shard)
{
    (void) job_id;
    assert (shard < GT_SHARD_COUNT);
    ((s_turn_t *) ctx)->deletes [shard]++;
}

//  The store: durable at once, an outbox (what it writes is the turn's)
static gt_store_status_t
s_store_flush (void *impl, uint64_t batch)
{
    (void) impl;
    (void) batch;
    return GT_STORE_DONE;
}

static void
s_store_put (void *impl, const gt_store_callback_t *callback)
{
    (void) impl;
    (void) callback;
}

static void
s_store_delete (void *impl, uint64_t job_id, unsigned shard)
{
    (void) impl;
    (void) job_id;
    (void) shard;
}

//  The lease engine's callback hook goes to the module under test
static void
s_on_callback (void *ctx, const gt_lease_info_t *owner, gt_reason_t reason)
{
    gt_broker_delivery_hook ((gt_broker_delivery_t *) ctx, owner, reason);
}

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

//  A lease with a cleanup to url, released at once (grace 0): its object
//  is reclaimed and the callback hook makes a record in the turn's batch
static void
s_reclaimed (gt_leases_t *leases, const char *object, const char *url, uint32_t retries, char *id_out)
{
    gt_cleanup_t cleanup = { (char *) url, NULL, true, retries, true, 10 };
    gt_lease_spec_t spec = { object, GT_TYPE_CUSTOM, "svc", true, 60000, NULL, &cleanup, NULL };
    gt_lease_t *lease;
    char err [256];
    assert (gt_leases_create (leases, &spec, &lease, err, sizeof (err)) == GT_OK);
    gt_lease_info_t info;
    gt_leases_info (leases, lease, &info);
    strcpy (id_out, info.id);
    assert (gt_leases_release (leases, id_out, "svc", false, &lease, err, sizeof (err)) == GT_OK);
}

static gt_lease_info_t
s_lease (gt_leases_t *leases, const char *id)
{
    gt_lease_t *lease;
    char err [256];
    assert (gt_leases_get (leases, id, &lease, err, sizeof (err)) == GT_OK);
    gt_lease_info_t info;
    gt_leases_info (leases, lease, &info);
    return info;
}

//  Read outcomes until the counter named reaches value
static void
s_outcomes_until (gt_broker_delivery_t *self, const uint64_t *counter, uint64_t value)
{
    int64_t deadline = zclock_mono () + S_WAIT_MS;
    while (*counter != value) {
        assert (zclock_mono () < deadline);
        zsock_t *sock = gt_broker_delivery_sock (self);
        assert (sock);
        zpoller_t *poller = zpoller_new (sock, NULL);
        zpoller_wait (poller, 100);
        zpoller_destroy (&poller);
        gt_broker_delivery_outcomes (self);
    }
}

static void
s_test_forget_shards (void)
{
    gt_http_server_t *server = gt_http_server_new ();
    assert (server);
    //  Shard A's endpoint holds its answer (a 500) until the gate opens
    gt_http_response_t held = { .status = 500, .hold = true };
    gt_http_server_set_default (server, &held);
    gt_http_response_t gone = { .status = 404 };
    gt_http_server_push (server, "/dead", &gone);
    gt_http_response_t ok = { .status = 200 };
    gt_http_server_push (server, "/b", &ok);
    gt_http_server_push (server, "/b", &ok);
    char *url_a = gt_http_server_url (server, "/a");
    char *url_dead = gt_http_server_url (server, "/dead");
    char *url_b = gt_http_server_url (server, "/b");

    gt_config_t *config = gt_config_new ();
    config->grace_ms = 0;
    gt_broker_delivery_t *self = gt_broker_delivery_new (config);
    gt_leases_hooks_t hooks = { .ctx = self, .callback = s_on_callback };
    gt_leases_t *leases = gt_leases_new (config, &hooks, (uint64_t) zclock_mono (), (uint64_t) zclock_time ());
    gt_config_destroy (&config);
    gt_store_ops_t ops = { .name = "outbox", .flush = s_store_flush,
                           .callback_put = s_store_put, .callback_delete = s_store_delete };
    gt_store_t *store = gt_store_new (&ops, NULL);
    static s_turn_t turn;
    memset (&turn, 0, sizeof (turn));
    gt_broker_delivery_batch_t batch = { &turn, s_turn, s_put_row, s_delete_row };
    gt_broker_delivery_attach (self, leases, store, &batch);

    unsigned shard_a = gt_shard_of ("handed-over");
    unsigned shard_b = (shard_a + 1) % GT_SHARD_COUNT;
    char a [3][32], b [2][32];
    for (int i = 0; i < 3; i++)
        s_object_in (shard_a, "a", i, a [i], sizeof (a [i]));
    for (int i = 0; i < 2; i++)
        s_object_in (shard_b, "b", i, b [i], sizeof (b [i]));
    char dead [33], flying [33], waiting [33], delivered [33];
    gt_broker_delivery_counters_t counters;

    //  Batch 1: a dead letter in shard A (404)
    turn.batch = 1;
    s_reclaimed (leases, a [0], url_dead, 0, dead);
    gt_broker_delivery_durable (self, 1);
    s_outcomes_until (self, &self->counters.dead_letters, 1);
    assert (s_lease (leases, dead).cleanup_status == GT_CLEANUP_DEAD);
    //  Batch 2: one callback in flight in shard A (held), one delivered in B
    turn.batch = 2;
    s_reclaimed (leases, a [1], url_a, 3, flying);
    s_reclaimed (leases, b [0], url_b, 3, delivered);
    gt_broker_delivery_durable (self, 2);
    s_outcomes_until (self, &self->counters.delivered, 1);
    assert (gt_http_server_wait_in_flight (server, 1, S_WAIT_MS));
    assert (turn.deletes [shard_b] == 1);
    assert (s_lease (leases, delivered).cleanup_status == GT_CLEANUP_DELIVERED);
    //  Batch 3: one in shard A waits for its batch to be durable
    turn.batch = 3;
    s_reclaimed (leases, a [2], url_a, 3, waiting);
    gt_broker_delivery_counters (self, &counters);
    assert (counters.pending == 2 && counters.dead_letters == 1 && counters.delivered == 1);
    assert (zhashx_size (self->by_job) == 3 && zlistx_size (self->waiting) == 1);

    //  Hand shard A over
    size_t puts_a = turn.puts [shard_a];
    uint8_t shards [GT_SHARD_COUNT / 8] = { 0 };
    shards [shard_a / 8] |= (uint8_t) (1 << (shard_a % 8));
    gt_broker_delivery_forget_shards (self, shards);
    gt_broker_delivery_counters (self, &counters);
    assert (counters.pending == 0 && counters.dead_letters == 0 && counters.delivered == 1);
    assert (zhashx_size (self->by_job) == 0 && zhashx_size (self->by_lease) == 0);
    assert (zlistx_size (self->waiting) == 0);
    char err [256];
    assert (gt_broker_delivery_retry (self, dead, err, sizeof (err)) == GT_ERR_INVALID_ARGUMENT);
    //  Its batch durable now: nothing goes out
    gt_broker_delivery_durable (self, 3);
    assert (gt_delivery_pending (self->engine) <= 1);
    //  The call in flight completes (500); it is not tried again, and what
    //  comes back changes nothing: no row, no lease state
    gt_http_server_gate (server, true);
    int64_t deadline = zclock_mono () + S_WAIT_MS;
    while (gt_delivery_pending (self->engine) > 0) {
        assert (zclock_mono () < deadline);
        gt_broker_delivery_outcomes (self);
        zclock_sleep (1);
    }
    gt_broker_delivery_outcomes (self);
    assert (turn.puts [shard_a] == puts_a && turn.deletes [shard_a] == 0);
    gt_lease_info_t info = s_lease (leases, flying);
    assert (info.cleanup_status == GT_CLEANUP_PENDING && info.cleanup_attempts == 0 && !info.cleanup_error);
    assert (s_lease (leases, waiting).cleanup_status == GT_CLEANUP_PENDING);
    gt_broker_delivery_counters (self, &counters);
    assert (counters.pending == 0 && counters.attempts == 2 && counters.failures == 1);
    //  Shard B goes on
    turn.batch = 4;
    s_reclaimed (leases, b [1], url_b, 3, delivered);
    gt_broker_delivery_durable (self, 4);
    s_outcomes_until (self, &self->counters.delivered, 2);
    assert (turn.deletes [shard_b] == 2);
    //  Only the dead letter, the one in flight and B's were ever called
    size_t calls_a = 0;
    for (size_t index = 0; index < gt_http_server_count (server); index++)
        calls_a += streq (gt_http_server_request (server, index)->path, "/a");
    assert (calls_a == 1 && gt_http_server_count (server) == 4);

    gt_broker_delivery_destroy (&self);
    gt_leases_destroy (&leases);
    gt_store_destroy (&store);
    gt_http_server_destroy (&server);
    free (url_a);
    free (url_dead);
    free (url_b);
}

//  --------------------------------------------------------------------------
//  Selftest

void
gt_broker_delivery_test (bool verbose)
{
    if (verbose)
        printf (" * gt_broker_delivery: ");
    gt_config_t *config = gt_config_new ();
    config->cleanup_timeout_ms = 250;
    config->callback_concurrency = 8;
    config->callback_per_host = 2;
    config->callback_max_pending = 10;
    gt_config_set_callback_secret (config, "s3cret");
    gt_broker_delivery_t *self = gt_broker_delivery_new (config);
    gt_config_destroy (&config);
    assert (self);
    assert (self->settings.timeout_ms == 250 && self->settings.max_concurrent == 8);
    assert (self->settings.max_per_host == 2 && self->settings.max_pending == 10);
    assert (self->settings.max_retries == 3 && self->settings.retry_delay_ms == 5000);
    assert (streq (self->settings.secret, "s3cret"));
    //  The engine starts only when needed
    assert (gt_broker_delivery_sock (self) == NULL);
    assert (gt_broker_delivery_engine (self) && gt_broker_delivery_sock (self) != NULL);
    gt_broker_delivery_counters_t counters;
    gt_broker_delivery_counters (self, &counters);
    assert (counters.pending == 0 && counters.delivered == 0);
    //  Records are found by job id
    s_callback_t *record = (s_callback_t *) zmalloc (sizeof (s_callback_t));
    assert (record);
    record->job_id = 1ULL << 40;
    strcpy (record->lease_id, "0123456789abcdef0123456789abcdef");
    record->url = strdup ("http://127.0.0.1:9/x");
    gt_broker_delivery_index (self, record);
    uint64_t key = 1ULL << 40;
    assert (zhashx_lookup (self->by_job, &key) == record);
    assert (zhashx_lookup (self->by_lease, "0123456789abcdef0123456789abcdef") == record);
    gt_broker_delivery_forget (self, record);
    assert (zhashx_size (self->by_job) == 0 && zhashx_size (self->by_lease) == 0);
    gt_broker_delivery_stop (self);
    assert (gt_broker_delivery_sock (self) == NULL && !gt_broker_delivery_engine (self));
    gt_broker_delivery_destroy (&self);
    assert (self == NULL);
    s_test_forget_shards ();
    if (verbose)
        printf ("OK\n");
}

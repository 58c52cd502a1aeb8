/*  gt_test_store.c — the asynchronous test store; the contract is in
    gt_test_store.h.  */
#include <czmq.h>
#include <limits.h>
#include "gt_test_store.h"

//  --------------------------------------------------------------------------
//  The store: keeps records, completes batches through a socket pair,
//  fails on demand.  Single-threaded.

typedef enum { S_OP_LEASE_PUT, S_OP_LEASE_DELETE, S_OP_OBJECT_PUT, S_OP_OBJECT_DELETE, S_OP_EVENT,
               S_OP_CALLBACK_PUT, S_OP_CALLBACK_DELETE } s_op_type_t;

//  An outbox row: the record with its own strings
typedef struct {
    gt_store_callback_t row;        //  strings point at the fields below
    char *lease_id;                 //  owned copy of the lease id
    char *url;                      //  owned copy of the endpoint
    char *body;                     //  owned copy of the stored body
    char *last_error;               //  owned copy of the last error ("" if none)
} s_stored_callback_t;

//  A recorded operation, until its batch is applied (or failed)
typedef struct {
    s_op_type_t type;               //  what to apply
    gt_lease_info_t lease;          //  LEASE_PUT: deep copy
    char *key;                      //  lease id, object id, idempotency key or topic
    char *extra;                    //  LEASE_PUT: idempotency key; OBJECT_PUT: last lease id
    gt_store_object_t object;       //  OBJECT_PUT (object_id = key, last_lease_id = extra)
    uint64_t seq;                   //  EVENT; CALLBACK_DELETE: the job id
    zchunk_t *body;                 //  EVENT
    s_stored_callback_t *callback;  //  CALLBACK_PUT
} s_op_t;

//  A flushed batch, until its completion is read
typedef struct {
    uint64_t id;                    //  the broker's batch number
    zlistx_t *ops;                  //  s_op_t, in order
    bool fail;                      //  fail this batch
} s_batch_t;

//  A durable lease record
typedef struct {
    gt_lease_info_t lease;          //  deep copy
    char *key;                      //  idempotency key, or NULL
} s_stored_lease_t;

//  The store's state (the impl of its gt_store_t)
typedef struct {
    zlistx_t *ops;                  //  ops of the batch being recorded
    zlistx_t *flight;               //  s_batch_t flushed, not yet completed
    zhashx_t *leases;               //  lease id -> s_stored_lease_t
    zhashx_t *objects;              //  object id -> s_op_t (OBJECT_PUT)
    zlistx_t *events;               //  s_op_t (EVENT), by seq
    zhashx_t *callbacks;            //  job id (decimal) -> s_stored_callback_t
    uint64_t last_seq;              //  newest stored event
    uint64_t fence_counter;         //  largest fence seen
    size_t fail_next;               //  flushes still to fail
    bool hold;                      //  do not signal completions
    zsock_t *signal_out;            //  we write one message per completion
    zsock_t *signal_in;             //  the broker polls this
} s_store_t;

static void
s_stored_callback_destroy (s_stored_callback_t **stored_p)
{
    s_stored_callback_t *stored = *stored_p;
    if (stored) {
        free (stored->lease_id);
        free (stored->url);
        free (stored->body);
        free (stored->last_error);
        free (stored);
        *stored_p = NULL;
    }
}

static void
s_op_destroy (s_op_t **op_p)
{
    s_op_t *op = *op_p;
    if (op) {
        if (op->type == S_OP_LEASE_PUT)
            gt_lease_info_clear (&op->lease);
        free (op->key);
        free (op->extra);
        zchunk_destroy (&op->body);
        s_stored_callback_destroy (&op->callback);
        free (op);
        *op_p = NULL;
    }
}

static void
s_stored_lease_destroy (s_stored_lease_t **stored_p)
{
    s_stored_lease_t *stored = *stored_p;
    if (stored) {
        gt_lease_info_clear (&stored->lease);
        free (stored->key);
        free (stored);
        *stored_p = NULL;
    }
}

static void
s_batch_destroy (s_batch_t **batch_p)
{
    s_batch_t *batch = *batch_p;
    if (batch) {
        zlistx_destroy (&batch->ops);
        free (batch);
        *batch_p = NULL;
    }
}

static zlistx_t *
s_op_list (void)
{
    zlistx_t *list = zlistx_new ();
    zlistx_set_destructor (list, (zlistx_destructor_fn *) s_op_destroy);
    return list;
}

static s_op_t *
s_test_op (s_store_t *self, s_op_type_t type)
{
    s_op_t *op = (s_op_t *) zmalloc (sizeof (s_op_t));
    assert (op);
    op->type = type;
    zlistx_add_end (self->ops, op);
    return op;
}

static void
s_test_lease_put (void *impl, const gt_lease_info_t *lease, const char *key)
{
    s_op_t *op = s_test_op ((s_store_t *) impl, S_OP_LEASE_PUT);
    gt_lease_info_copy (&op->lease, lease);
    op->key = strdup (lease->id);
    op->extra = key ? strdup (key) : NULL;
}

static void
s_test_lease_delete (void *impl, const char *lease_id, unsigned shard)
{
    (void) shard;
    s_test_op ((s_store_t *) impl, S_OP_LEASE_DELETE)->key = strdup (lease_id);
}

static void
s_test_object_put (void *impl, const gt_store_object_t *object)
{
    s_op_t *op = s_test_op ((s_store_t *) impl, S_OP_OBJECT_PUT);
    op->object = *object;
    op->key = strdup (object->object_id);
    op->extra = object->last_lease_id ? strdup (object->last_lease_id) : NULL;
}

static void
s_test_object_delete (void *impl, const char *object_id, uint64_t fence)
{
    s_op_t *op = s_test_op ((s_store_t *) impl, S_OP_OBJECT_DELETE);
    op->key = strdup (object_id);
    op->object.fence = fence;
}

static void
s_test_event (void *impl, unsigned shard, uint64_t seq, gt_event_kind_t kind, uint64_t at,
              const char *topic, const void *body, size_t size)
{
    (void) shard;
    (void) kind;
    (void) at;
    s_op_t *op = s_test_op ((s_store_t *) impl, S_OP_EVENT);
    op->seq = seq;
    op->key = strdup (topic);
    op->body = zchunk_new (body, size);
}

static char *
s_strdup_or_empty (const char *s)
{
    char *copy = strdup (s ? s : "");
    assert (copy);
    return copy;
}

static void
s_test_callback_put (void *impl, const gt_store_callback_t *callback)
{
    s_op_t *op = s_test_op ((s_store_t *) impl, S_OP_CALLBACK_PUT);
    s_stored_callback_t *stored = (s_stored_callback_t *) zmalloc (sizeof (s_stored_callback_t));
    assert (stored);
    stored->row = *callback;
    stored->row.lease_id = stored->lease_id = s_strdup_or_empty (callback->lease_id);
    stored->row.url = stored->url = s_strdup_or_empty (callback->url);
    stored->row.body = stored->body = s_strdup_or_empty (callback->body);
    stored->row.last_error = stored->last_error = s_strdup_or_empty (callback->last_error);
    op->callback = stored;
    op->seq = callback->job_id;
}

static void
s_test_callback_delete (void *impl, uint64_t job_id, unsigned shard)
{
    (void) shard;
    s_test_op ((s_store_t *) impl, S_OP_CALLBACK_DELETE)->seq = job_id;
}

static gt_store_status_t
s_test_flush (void *impl, uint64_t batch_id)
{
    s_store_t *self = (s_store_t *) impl;
    s_batch_t *batch = (s_batch_t *) zmalloc (sizeof (s_batch_t));
    assert (batch);
    batch->id = batch_id;
    batch->ops = self->ops;
    self->ops = s_op_list ();
    if (self->fail_next) {
        batch->fail = true;
        self->fail_next--;
    }
    zlistx_add_end (self->flight, batch);
    if (!self->hold)
        zstr_send (self->signal_out, "done");
    return GT_STORE_PENDING;
}

static zsock_t *
s_test_completion_sock (void *impl)
{
    return ((s_store_t *) impl)->signal_in;
}

//  Apply a durable batch to what the store keeps, op by op, in order.
static void
s_test_apply (s_store_t *self, s_batch_t *batch)
{
    s_op_t *op;
    while ((op = (s_op_t *) zlistx_detach (batch->ops, NULL))) {
        switch (op->type) {
            case S_OP_LEASE_PUT: {
                s_stored_lease_t *stored = (s_stored_lease_t *) zmalloc (sizeof (s_stored_lease_t));
                assert (stored);
                gt_lease_info_copy (&stored->lease, &op->lease);
                stored->key = op->extra ? strdup (op->extra) : NULL;
                zhashx_update (self->leases, op->key, stored);
                if (op->lease.fence > self->fence_counter)
                    self->fence_counter = op->lease.fence;
                break;
            }
            case S_OP_LEASE_DELETE:
                zhashx_delete (self->leases, op->key);
                break;
            case S_OP_OBJECT_PUT:
                //  The op itself is the record (it owns its strings)
                op->object.object_id = op->key;
                op->object.last_lease_id = op->extra;
                if (op->object.fence > self->fence_counter)
                    self->fence_counter = op->object.fence;
                zhashx_update (self->objects, op->key, op);
                op = NULL;
                break;
            case S_OP_OBJECT_DELETE:
                zhashx_delete (self->objects, op->key);
                if (op->object.fence > self->fence_counter)
                    self->fence_counter = op->object.fence;
                break;
            case S_OP_EVENT:
                self->last_seq = op->seq;
                zlistx_add_end (self->events, op);
                op = NULL;
                break;
            case S_OP_CALLBACK_PUT:
            case S_OP_CALLBACK_DELETE: {
                char key [24];
                snprintf (key, sizeof (key), "%" PRIu64, op->seq);
                if (op->type == S_OP_CALLBACK_PUT) {
                    zhashx_update (self->callbacks, key, op->callback);
                    op->callback = NULL;
                }
                else
                    zhashx_delete (self->callbacks, key);
                break;
            }
        }
        s_op_destroy (&op);
    }
}

static int
s_test_completion (void *impl, uint64_t *batch_p, bool *durable_p)
{
    s_store_t *self = (s_store_t *) impl;
    char *signal = zstr_recv_nowait (self->signal_in);
    if (!signal)
        return -1;
    zstr_free (&signal);
    s_batch_t *batch = (s_batch_t *) zlistx_first (self->flight);
    if (!batch)
        return -1;
    zlistx_detach_cur (self->flight);
    bool durable = !batch->fail;
    if (durable)
        s_test_apply (self, batch);
    else
        //  A failure fails every batch flushed before it is reported
        for (s_batch_t *later = (s_batch_t *) zlistx_first (self->flight); later;
             later = (s_batch_t *) zlistx_next (self->flight))
            later->fail = true;
    *batch_p = batch->id;
    *durable_p = durable;
    s_batch_destroy (&batch);
    return 0;
}

static int
s_stored_lease_compare (const void *a, const void *b)
{
    const s_stored_lease_t *x = *(const s_stored_lease_t *const *) a;
    const s_stored_lease_t *y = *(const s_stored_lease_t *const *) b;
    if (x->lease.created_at != y->lease.created_at)
        return x->lease.created_at < y->lease.created_at ? -1 : 1;
    return strcmp (x->lease.id, y->lease.id);
}

static int
s_stored_callback_compare (const void *a, const void *b)
{
    uint64_t x = (*(const s_stored_callback_t *const *) a)->row.job_id;
    uint64_t y = (*(const s_stored_callback_t *const *) b)->row.job_id;
    return x < y ? -1 : x > y;
}

static int
s_test_recover (void *impl, const gt_store_loader_t *loader, char *err, size_t err_size)
{
    (void) err;
    (void) err_size;
    s_store_t *self = (s_store_t *) impl;
    size_t count = zhashx_size (self->leases);
    s_stored_lease_t **leases = (s_stored_lease_t **) calloc (count + 1, sizeof (*leases));
    assert (leases);
    size_t index = 0;
    for (s_stored_lease_t *stored = (s_stored_lease_t *) zhashx_first (self->leases); stored;
         stored = (s_stored_lease_t *) zhashx_next (self->leases))
        leases [index++] = stored;
    //  Newest first: a store may hand leases over in any order, and the
    //  broker must put them right (gt_leases_restore_end)
    qsort (leases, count, sizeof (*leases), s_stored_lease_compare);
    if (loader->lease)
        for (index = count; index-- > 0; )
            loader->lease (loader->ctx, &leases [index]->lease, leases [index]->key);
    free (leases);
    if (loader->object)
        for (s_op_t *op = (s_op_t *) zhashx_first (self->objects); op;
             op = (s_op_t *) zhashx_next (self->objects))
            loader->object (loader->ctx, &op->object);
    if (loader->event)
        for (s_op_t *op = (s_op_t *) zlistx_first (self->events); op;
             op = (s_op_t *) zlistx_next (self->events))
            loader->event (loader->ctx, op->seq, op->key, zchunk_data (op->body), zchunk_size (op->body));
    if (loader->counters)
        loader->counters (loader->ctx, self->last_seq, self->fence_counter);
    if (loader->callback) {
        //  In job id order, as a database would hand them out
        size_t rows = zhashx_size (self->callbacks);
        s_stored_callback_t **sorted = (s_stored_callback_t **) calloc (rows + 1, sizeof (*sorted));
        assert (sorted);
        size_t index = 0;
        for (s_stored_callback_t *stored = (s_stored_callback_t *) zhashx_first (self->callbacks); stored;
             stored = (s_stored_callback_t *) zhashx_next (self->callbacks))
            sorted [index++] = stored;
        qsort (sorted, rows, sizeof (*sorted), s_stored_callback_compare);
        for (index = 0; index < rows; index++)
            loader->callback (loader->ctx, &sorted [index]->row);
        free (sorted);
    }
    return 0;
}

static void
s_test_destroy (void *impl)
{
    s_store_t *self = (s_store_t *) impl;
    zlistx_destroy (&self->ops);
    zlistx_destroy (&self->flight);
    zhashx_destroy (&self->leases);
    zhashx_destroy (&self->objects);
    zlistx_destroy (&self->events);
    zhashx_destroy (&self->callbacks);
    zsock_destroy (&self->signal_out);
    zsock_destroy (&self->signal_in);
    free (self);
}

//  Release: one completion per batch in flight
static void
s_test_hold (s_store_t *self, bool hold)
{
    if (self->hold && !hold)
        for (size_t i = 0; i < zlistx_size (self->flight); i++)
            zstr_send (self->signal_out, "done");
    self->hold = hold;
}

//  STORE FAIL n, STORE HOLD 1|0, STORE COUNT LEASES|EVENTS|CALLBACKS
static int
s_test_control (void *impl, int argc, const char *argv [])
{
    s_store_t *self = (s_store_t *) impl;
    if (argc != 2)
        return -1;
    const char *what = argv [0];
    const char *value = argv [1];
    if (streq (what, "FAIL")) {
        self->fail_next = (size_t) atoi (value);
        return 0;
    }
    if (streq (what, "HOLD")) {
        s_test_hold (self, atoi (value) != 0);
        return 0;
    }
    if (streq (what, "COUNT")) {
        size_t count = streq (value, "LEASES") ? zhashx_size (self->leases)
                     : streq (value, "EVENTS") ? zlistx_size (self->events)
                     : streq (value, "CALLBACKS") ? zhashx_size (self->callbacks)
                     : (size_t) -1;
        return count <= INT_MAX ? (int) count : -1;
    }
    return -1;
}

gt_store_t *
gt_test_store_new (void)
{
    s_store_t *self = (s_store_t *) zmalloc (sizeof (s_store_t));
    assert (self);
    self->ops = s_op_list ();
    self->flight = zlistx_new ();
    zlistx_set_destructor (self->flight, (zlistx_destructor_fn *) s_batch_destroy);
    self->leases = zhashx_new ();
    zhashx_set_destructor (self->leases, (zhashx_destructor_fn *) s_stored_lease_destroy);
    self->objects = zhashx_new ();
    zhashx_set_destructor (self->objects, (zhashx_destructor_fn *) s_op_destroy);
    self->events = s_op_list ();
    self->callbacks = zhashx_new ();
    zhashx_set_destructor (self->callbacks, (zhashx_destructor_fn *) s_stored_callback_destroy);
    char endpoint [64];
    snprintf (endpoint, sizeof (endpoint), "@inproc://gt-test-store-%p", (void *) self);
    self->signal_in = zsock_new_pair (endpoint);
    endpoint [0] = '>';
    self->signal_out = zsock_new_pair (endpoint);
    assert (self->signal_in && self->signal_out);
    gt_store_ops_t ops = {
        .name = "test",
        .destroy = s_test_destroy,
        .recover = s_test_recover,
        .lease_put = s_test_lease_put,
        .lease_delete = s_test_lease_delete,
        .object_put = s_test_object_put,
        .object_delete = s_test_object_delete,
        .event = s_test_event,
        .flush = s_test_flush,
        .completion_sock = s_test_completion_sock,
        .completion = s_test_completion,
        .callback_put = s_test_callback_put,
        .callback_delete = s_test_callback_delete,
        .control = s_test_control,
        .detachable = true,
    };
    return gt_store_new (&ops, self);
}

//  --------------------------------------------------------------------------
//  Driving a store no broker runs on: the same commands as STORE

static int
s_command (gt_store_t *store, const char *what, const char *value)
{
    assert (store && streq (gt_store_name (store), "test"));
    const char *argv [] = { what, value };
    int rc = gt_store_control (store, 2, argv);
    assert (rc >= 0);
    return rc;
}

void
gt_test_store_fail (gt_store_t *store, size_t count)
{
    char value [24];
    snprintf (value, sizeof (value), "%zu", count);
    s_command (store, "FAIL", value);
}

void
gt_test_store_hold (gt_store_t *store, bool hold)
{
    s_command (store, "HOLD", hold ? "1" : "0");
}

size_t
gt_test_store_leases (gt_store_t *store)
{
    return (size_t) s_command (store, "COUNT", "LEASES");
}

size_t
gt_test_store_events (gt_store_t *store)
{
    return (size_t) s_command (store, "COUNT", "EVENTS");
}

size_t
gt_test_store_callbacks (gt_store_t *store)
{
    return (size_t) s_command (store, "COUNT", "CALLBACKS");
}

//  --------------------------------------------------------------------------
//  Self test

//  What a recovery handed to the loader
typedef struct {
    size_t leases;                  //  leases recovered
    size_t objects;                 //  objects recovered
    size_t events;                  //  events recovered
    size_t callbacks;               //  outbox rows recovered
    uint32_t attempts;              //  attempts of the last one
    bool body_ok;                   //  its strings came back
    uint64_t last_seq;              //  newest event seq recovered
    uint64_t fence_counter;         //  largest fence recovered
} s_recovered_t;

static void
s_count_lease (void *ctx, const gt_lease_info_t *lease, const char *key)
{
    (void) lease;
    (void) key;
    ((s_recovered_t *) ctx)->leases++;
}

static void
s_count_object (void *ctx, const gt_store_object_t *object)
{
    (void) object;
    ((s_recovered_t *) ctx)->objects++;
}

static void
s_count_event (void *ctx, uint64_t seq, const char *topic, const void *body, size_t size)
{
    (void) seq;
    (void) topic;
    (void) body;
    (void) size;
    ((s_recovered_t *) ctx)->events++;
}

static void
s_count_callback (void *ctx, const gt_store_callback_t *callback)
{
    s_recovered_t *recovered = (s_recovered_t *) ctx;
    recovered->callbacks++;
    recovered->attempts = callback->attempts;
    recovered->body_ok = callback->job_id == 7 && streq (callback->body, "{}")
                      && streq (callback->url, "http://127.0.0.1:9/x") && streq (callback->last_error, "HTTP 500")
                      && callback->status == GT_CLEANUP_DEAD;
}

static void
s_count_counters (void *ctx, uint64_t last_seq, uint64_t fence_counter)
{
    ((s_recovered_t *) ctx)->last_seq = last_seq;
    ((s_recovered_t *) ctx)->fence_counter = fence_counter;
}

static bool
s_await_completion (gt_store_t *store, uint64_t *batch, bool *durable)
{
    zpoller_t *poller = zpoller_new (gt_store_completion_sock (store), NULL);
    bool got = zpoller_wait (poller, 5000) != NULL;
    zpoller_destroy (&poller);
    return got && gt_store_completion (store, batch, durable) == 0;
}

void
gt_test_store_test (bool verbose)
{
    (void) verbose;
    char err [256];

    //  Asynchronous batches, in order, applied when durable
    gt_store_t *store = gt_test_store_new ();
    assert (streq (gt_store_name (store), "test"));
    assert (gt_store_records (store) && gt_store_async (store));
    //  It may be handed over, and takes its own commands only
    assert (gt_store_detachable (store));
    const char *bad [][2] = { { "FAIL", NULL }, { "COUNT", "OBJECTS" }, { "FLY", "1" } };
    assert (gt_store_control (store, 1, bad [0]) == -1);
    assert (gt_store_control (store, 2, bad [1]) == -1);
    assert (gt_store_control (store, 2, bad [2]) == -1);
    assert (gt_store_control (store, 0, NULL) == -1);
    gt_lease_info_t lease;
    memset (&lease, 0, sizeof (lease));
    strcpy (lease.id, "0123456789abcdef0123456789abcdef");
    lease.object_id = "object-1";
    lease.service_id = "service-1";
    lease.fence = 3;
    gt_store_lease_put (store, &lease, "key-1");
    gt_store_event (store, 0, 1, GT_EVENT_LEASE_CREATED, 1000, "service-1\x1f" "created.UNKNOWN", "\x80", 1);
    gt_store_object_t object = { "object-1", 3, true, 0, GT_REASON_NONE, NULL };
    gt_store_object_put (store, &object);
    assert (gt_store_flush (store, 1) == GT_STORE_PENDING);
    uint64_t batch = 0;
    bool durable = false;
    assert (s_await_completion (store, &batch, &durable));
    assert (batch == 1 && durable);
    assert (gt_test_store_leases (store) == 1);
    assert (gt_test_store_events (store) == 1);

    //  A failed batch fails those flushed after it, and keeps nothing
    gt_test_store_hold (store, true);
    gt_test_store_fail (store, 1);
    gt_store_lease_delete (store, lease.id, 0);
    assert (gt_store_flush (store, 2) == GT_STORE_PENDING);
    gt_store_event (store, 0, 2, GT_EVENT_LEASE_RELEASED, 2000, "service-1\x1f" "released.UNKNOWN", "\x80", 1);
    assert (gt_store_flush (store, 3) == GT_STORE_PENDING);
    gt_test_store_hold (store, false);
    assert (s_await_completion (store, &batch, &durable));
    assert (batch == 2 && !durable);
    assert (s_await_completion (store, &batch, &durable));
    assert (batch == 3 && !durable);
    assert (gt_test_store_leases (store) == 1);
    assert (gt_test_store_events (store) == 1);

    //  After the chain, batches succeed again
    gt_store_object_delete (store, "object-1", 3);
    assert (gt_store_flush (store, 4) == GT_STORE_PENDING);
    assert (s_await_completion (store, &batch, &durable));
    assert (batch == 4 && durable);

    //  Recovery hands everything back
    s_recovered_t recovered = { 0 };
    gt_store_loader_t loader = { &recovered, s_count_lease, s_count_object, s_count_event, s_count_counters,
                                 s_count_callback, NULL, NULL, NULL, NULL };
    assert (gt_store_recover (store, &loader, err, sizeof (err)) == 0);
    assert (recovered.leases == 1 && recovered.objects == 0 && recovered.events == 1);
    assert (recovered.last_seq == 1 && recovered.fence_counter == 3);
    assert (recovered.callbacks == 0);

    //  Outbox rows: put, replace, delete; only durable batches count
    assert (gt_store_outbox (store));
    gt_store_callback_t row = { 7, lease.id, "http://127.0.0.1:9/x", "{}", 3, 100, 0,
                                GT_CLEANUP_PENDING, 0, "", 0 };
    gt_store_callback_put (store, &row);
    row.job_id = 8;
    gt_store_callback_put (store, &row);
    assert (gt_store_flush (store, 5) == GT_STORE_PENDING);
    assert (s_await_completion (store, &batch, &durable) && durable);
    assert (gt_test_store_callbacks (store) == 2);
    row.job_id = 7;
    row.attempts = 4;
    row.status = GT_CLEANUP_DEAD;
    row.last_error = "HTTP 500";
    gt_store_callback_put (store, &row);
    gt_store_callback_delete (store, 8, 0);
    assert (gt_store_flush (store, 6) == GT_STORE_PENDING);
    assert (s_await_completion (store, &batch, &durable) && durable);
    gt_test_store_fail (store, 1);
    gt_store_callback_delete (store, 7, 0);
    assert (gt_store_flush (store, 7) == GT_STORE_PENDING);
    assert (s_await_completion (store, &batch, &durable) && !durable);
    assert (gt_test_store_callbacks (store) == 1);
    memset (&recovered, 0, sizeof (recovered));
    assert (gt_store_recover (store, &loader, err, sizeof (err)) == 0);
    assert (recovered.callbacks == 1 && recovered.attempts == 4 && recovered.body_ok);
    gt_store_destroy (&store);
    assert (store == NULL);
}

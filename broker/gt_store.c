/*  gt_store.c — the store seam, the memory store, and the "test" store.  */
#include <czmq.h>
#include "gt_store.h"
#include "gt_store_pg.h"

struct gt_store_t {
    gt_store_ops_t ops;             //  the implementation's operations
    void *impl;                     //  its state
};

gt_store_t *
gt_store_new (const gt_store_ops_t *ops, void *impl)
{
    assert (ops && ops->name && ops->flush);
    gt_store_t *self = (gt_store_t *) zmalloc (sizeof (gt_store_t));
    assert (self);
    self->ops = *ops;
    self->impl = impl;
    return self;
}

void
gt_store_destroy (gt_store_t **self_p)
{
    assert (self_p);
    gt_store_t *self = *self_p;
    if (self) {
        if (self->ops.destroy)
            self->ops.destroy (self->impl);
        free (self);
        *self_p = NULL;
    }
}

const char *
gt_store_name (gt_store_t *self)
{
    assert (self);
    return self->ops.name;
}

bool
gt_store_records (gt_store_t *self)
{
    assert (self);
    return self->ops.lease_put || self->ops.lease_delete || self->ops.object_put
        || self->ops.object_delete || self->ops.event;
}

bool
gt_store_async (gt_store_t *self)
{
    assert (self);
    return self->ops.completion_sock != NULL;
}

bool
gt_store_healthy (gt_store_t *self)
{
    assert (self);
    return self->ops.healthy ? self->ops.healthy (self->impl) : true;
}

void
gt_store_figures (gt_store_t *self, gt_store_figures_t *figures)
{
    assert (figures);
    gt_histogram_init (&figures->batch_size, gt_histogram_batch_size, gt_histogram_batch_size_count);
    gt_histogram_init (&figures->commit_us, gt_histogram_latency_us, gt_histogram_latency_us_count);
    if (self && self->ops.figures)
        self->ops.figures (self->impl, figures);
}

void
gt_store_lease_put (gt_store_t *self, const gt_lease_info_t *lease, const char *idempotency_key)
{
    if (self->ops.lease_put)
        self->ops.lease_put (self->impl, lease, idempotency_key);
}

void
gt_store_lease_delete (gt_store_t *self, const char *lease_id)
{
    if (self->ops.lease_delete)
        self->ops.lease_delete (self->impl, lease_id);
}

void
gt_store_object_put (gt_store_t *self, const gt_store_object_t *object)
{
    if (self->ops.object_put)
        self->ops.object_put (self->impl, object);
}

void
gt_store_object_delete (gt_store_t *self, const char *object_id, uint64_t fence)
{
    if (self->ops.object_delete)
        self->ops.object_delete (self->impl, object_id, fence);
}

void
gt_store_event (gt_store_t *self, uint64_t seq, gt_event_kind_t kind, uint64_t at,
                const char *topic, const void *body, size_t size)
{
    if (self->ops.event)
        self->ops.event (self->impl, seq, kind, at, topic, body, size);
}

bool
gt_store_outbox (gt_store_t *self)
{
    assert (self);
    return self->ops.callback_put != NULL;
}

void
gt_store_callback_put (gt_store_t *self, const gt_store_callback_t *callback)
{
    if (self->ops.callback_put)
        self->ops.callback_put (self->impl, callback);
}

void
gt_store_callback_delete (gt_store_t *self, uint64_t job_id)
{
    if (self->ops.callback_delete)
        self->ops.callback_delete (self->impl, job_id);
}

gt_store_status_t
gt_store_flush (gt_store_t *self, uint64_t batch)
{
    assert (self);
    return self->ops.flush (self->impl, batch);
}

zsock_t *
gt_store_completion_sock (gt_store_t *self)
{
    assert (self);
    return self->ops.completion_sock ? self->ops.completion_sock (self->impl) : NULL;
}

int
gt_store_completion (gt_store_t *self, uint64_t *batch_p, bool *durable_p)
{
    assert (self);
    return self->ops.completion ? self->ops.completion (self->impl, batch_p, durable_p) : -1;
}

int
gt_store_recover (gt_store_t *self, const gt_store_loader_t *loader, char *err, size_t err_size)
{
    assert (self);
    return self->ops.recover ? self->ops.recover (self->impl, loader, err, err_size) : 0;
}

//  --------------------------------------------------------------------------
//  Memory store: nothing to keep, every batch durable at once

static gt_store_status_t
s_memory_flush (void *impl, uint64_t batch)
{
    (void) impl;
    (void) batch;
    return GT_STORE_DONE;
}

gt_store_t *
gt_store_memory_new (void)
{
    gt_store_ops_t ops = { .name = "memory", .flush = s_memory_flush };
    return gt_store_new (&ops, NULL);
}

bool
gt_store_available (const gt_config_t *config, char *err, size_t err_size)
{
    assert (config);
    const char *name = config->storage ? config->storage : "memory";
    if (streq (name, "memory") || streq (name, "test"))
        return true;
    if (streq (name, "postgres")) {
        if (config->database_url && *config->database_url)
            return true;
        snprintf (err, err_size, "GC_STORAGE_BACKEND=postgres needs DATABASE_URL "
                  "(e.g. postgresql://user:password@127.0.0.1:5432/garbagetruck)");
    }
    else
        snprintf (err, err_size, "GC_STORAGE_BACKEND: unknown store '%s'", name);
    return false;
}

gt_store_t *
gt_store_open (const gt_config_t *config, char *err, size_t err_size)
{
    assert (config);
    const char *name = config->storage ? config->storage : "memory";
    if (streq (name, "memory"))
        return gt_store_memory_new ();
    if (streq (name, "test"))
        return gt_store_test_new ();
    if (!gt_store_available (config, err, err_size))
        return NULL;
    if (streq (name, "postgres"))
        return gt_store_pg_open (config, err, err_size);
    return NULL;
}

//  --------------------------------------------------------------------------
//  Test store: keeps records, completes batches through a socket pair,
//  fails on demand.  Single-threaded: used from the broker's thread.

typedef enum { S_OP_LEASE_PUT, S_OP_LEASE_DELETE, S_OP_OBJECT_PUT, S_OP_OBJECT_DELETE, S_OP_EVENT,
               S_OP_CALLBACK_PUT, S_OP_CALLBACK_DELETE } s_op_type_t;

//  An outbox row: the record with its own strings
typedef struct {
    gt_store_callback_t row;        //  strings point at the fields below
    char *lease_id;                 //  owned copies
    char *url;
    char *body;
    char *last_error;
} s_stored_callback_t;

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

typedef struct {
    uint64_t id;                    //  the broker's batch number
    zlistx_t *ops;                  //  s_op_t, in order
    bool fail;                      //  fail this batch
} s_batch_t;

typedef struct {
    gt_lease_info_t lease;          //  deep copy
    char *key;                      //  idempotency key, or NULL
} s_stored_lease_t;

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
} s_test_store_t;

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
s_test_op (s_test_store_t *self, s_op_type_t type)
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
    s_op_t *op = s_test_op ((s_test_store_t *) impl, S_OP_LEASE_PUT);
    gt_lease_info_copy (&op->lease, lease);
    op->key = strdup (lease->id);
    op->extra = key ? strdup (key) : NULL;
}

static void
s_test_lease_delete (void *impl, const char *lease_id)
{
    s_test_op ((s_test_store_t *) impl, S_OP_LEASE_DELETE)->key = strdup (lease_id);
}

static void
s_test_object_put (void *impl, const gt_store_object_t *object)
{
    s_op_t *op = s_test_op ((s_test_store_t *) impl, S_OP_OBJECT_PUT);
    op->object = *object;
    op->key = strdup (object->object_id);
    op->extra = object->last_lease_id ? strdup (object->last_lease_id) : NULL;
}

static void
s_test_object_delete (void *impl, const char *object_id, uint64_t fence)
{
    s_op_t *op = s_test_op ((s_test_store_t *) impl, S_OP_OBJECT_DELETE);
    op->key = strdup (object_id);
    op->object.fence = fence;
}

static void
s_test_event (void *impl, uint64_t seq, gt_event_kind_t kind, uint64_t at,
              const char *topic, const void *body, size_t size)
{
    (void) kind;
    (void) at;
    s_op_t *op = s_test_op ((s_test_store_t *) impl, S_OP_EVENT);
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
    s_op_t *op = s_test_op ((s_test_store_t *) impl, S_OP_CALLBACK_PUT);
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
s_test_callback_delete (void *impl, uint64_t job_id)
{
    s_test_op ((s_test_store_t *) impl, S_OP_CALLBACK_DELETE)->seq = job_id;
}

static gt_store_status_t
s_test_flush (void *impl, uint64_t batch_id)
{
    s_test_store_t *self = (s_test_store_t *) impl;
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
    return ((s_test_store_t *) impl)->signal_in;
}

//  Apply a durable batch to what the store keeps, op by op, in order.
static void
s_test_apply (s_test_store_t *self, s_batch_t *batch)
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
    s_test_store_t *self = (s_test_store_t *) impl;
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
    s_test_store_t *self = (s_test_store_t *) impl;
    size_t count = zhashx_size (self->leases);
    s_stored_lease_t **leases = (s_stored_lease_t **) calloc (count + 1, sizeof (*leases));
    assert (leases);
    size_t index = 0;
    for (s_stored_lease_t *stored = (s_stored_lease_t *) zhashx_first (self->leases); stored;
         stored = (s_stored_lease_t *) zhashx_next (self->leases))
        leases [index++] = stored;
    qsort (leases, count, sizeof (*leases), s_stored_lease_compare);
    if (loader->lease)
        for (index = 0; index < count; index++)
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
    s_test_store_t *self = (s_test_store_t *) impl;
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

gt_store_t *
gt_store_test_new (void)
{
    s_test_store_t *self = (s_test_store_t *) zmalloc (sizeof (s_test_store_t));
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
    snprintf (endpoint, sizeof (endpoint), "@inproc://gt-store-test-%p", (void *) self);
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
    };
    return gt_store_new (&ops, self);
}

static s_test_store_t *
s_test_impl (gt_store_t *self)
{
    assert (self && streq (self->ops.name, "test"));
    return (s_test_store_t *) self->impl;
}

void
gt_store_test_fail (gt_store_t *self, size_t count)
{
    s_test_impl (self)->fail_next = count;
}

void
gt_store_test_hold (gt_store_t *self, bool hold)
{
    s_test_store_t *impl = s_test_impl (self);
    if (impl->hold && !hold) {
        //  Release: one completion per batch in flight
        for (size_t i = 0; i < zlistx_size (impl->flight); i++)
            zstr_send (impl->signal_out, "done");
    }
    impl->hold = hold;
}

size_t
gt_store_test_leases (gt_store_t *self)
{
    return zhashx_size (s_test_impl (self)->leases);
}

size_t
gt_store_test_events (gt_store_t *self)
{
    return zlistx_size (s_test_impl (self)->events);
}

size_t
gt_store_test_callbacks (gt_store_t *self)
{
    return zhashx_size (s_test_impl (self)->callbacks);
}

//  --------------------------------------------------------------------------
//  Self test

typedef struct {
    size_t leases;                  //  leases recovered
    size_t objects;                 //  objects recovered
    size_t events;                  //  events recovered
    size_t callbacks;               //  outbox rows recovered
    uint32_t attempts;              //  attempts of the last one
    bool body_ok;                   //  its strings came back
    uint64_t last_seq;              //  counters recovered
    uint64_t fence_counter;
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
gt_store_test (bool verbose)
{
    (void) verbose;
    char err [256];

    //  Memory store: synchronous, wants no records
    gt_store_t *store = gt_store_memory_new ();
    assert (streq (gt_store_name (store), "memory"));
    assert (!gt_store_records (store));
    assert (!gt_store_async (store));
    assert (gt_store_healthy (store));
    assert (gt_store_flush (store, 1) == GT_STORE_DONE);
    assert (gt_store_completion_sock (store) == NULL);
    gt_store_destroy (&store);
    assert (store == NULL);

    //  Opening by configuration
    gt_config_t *config = gt_config_new ();
    store = gt_store_open (config, err, sizeof (err));
    assert (store && streq (gt_store_name (store), "memory"));
    gt_store_destroy (&store);
    gt_config_set_storage (config, "postgres");
    assert (!gt_store_available (config, err, sizeof (err)) && strstr (err, "DATABASE_URL"));
    store = gt_store_open (config, err, sizeof (err));
    assert (store == NULL && strstr (err, "needs DATABASE_URL"));
    gt_config_set_database_url (config, "postgresql://127.0.0.1:1/none");
    assert (gt_store_available (config, err, sizeof (err)));
    //  Nothing listens there: a clear message at once (GC_DB_CONNECT_WAIT 0)
    store = gt_store_open (config, err, sizeof (err));
    assert (store == NULL && strstr (err, "cannot connect to PostgreSQL") && strstr (err, "GC_DB_CONNECT_WAIT"));
    gt_config_set_storage (config, "floppy");
    assert (!gt_store_available (config, err, sizeof (err)) && strstr (err, "unknown store"));
    gt_config_destroy (&config);

    //  Test store: asynchronous batches, in order, applied when durable
    store = gt_store_test_new ();
    assert (gt_store_records (store) && gt_store_async (store));
    gt_lease_info_t lease;
    memset (&lease, 0, sizeof (lease));
    strcpy (lease.id, "0123456789abcdef0123456789abcdef");
    lease.object_id = "object-1";
    lease.service_id = "service-1";
    lease.fence = 3;
    gt_store_lease_put (store, &lease, "key-1");
    gt_store_event (store, 1, GT_EVENT_LEASE_CREATED, 1000, "created.UNKNOWN.service-1", "\x80", 1);
    gt_store_object_t object = { "object-1", 3, true, 0, GT_REASON_NONE, NULL };
    gt_store_object_put (store, &object);
    assert (gt_store_flush (store, 1) == GT_STORE_PENDING);
    uint64_t batch = 0;
    bool durable = false;
    assert (s_await_completion (store, &batch, &durable));
    assert (batch == 1 && durable);
    assert (gt_store_test_leases (store) == 1);
    assert (gt_store_test_events (store) == 1);

    //  A failed batch fails those flushed after it, and keeps nothing
    gt_store_test_hold (store, true);
    gt_store_test_fail (store, 1);
    gt_store_lease_delete (store, lease.id);
    assert (gt_store_flush (store, 2) == GT_STORE_PENDING);
    gt_store_event (store, 2, GT_EVENT_LEASE_RELEASED, 2000, "released.UNKNOWN.service-1", "\x80", 1);
    assert (gt_store_flush (store, 3) == GT_STORE_PENDING);
    gt_store_test_hold (store, false);
    assert (s_await_completion (store, &batch, &durable));
    assert (batch == 2 && !durable);
    assert (s_await_completion (store, &batch, &durable));
    assert (batch == 3 && !durable);
    assert (gt_store_test_leases (store) == 1);
    assert (gt_store_test_events (store) == 1);

    //  After the chain, batches succeed again
    gt_store_object_delete (store, "object-1", 3);
    assert (gt_store_flush (store, 4) == GT_STORE_PENDING);
    assert (s_await_completion (store, &batch, &durable));
    assert (batch == 4 && durable);

    //  Recovery hands everything back
    s_recovered_t recovered = { 0 };
    gt_store_loader_t loader = { &recovered, s_count_lease, s_count_object, s_count_event, s_count_counters,
                                 s_count_callback };
    assert (gt_store_recover (store, &loader, err, sizeof (err)) == 0);
    assert (recovered.leases == 1 && recovered.objects == 0 && recovered.events == 1);
    assert (recovered.last_seq == 1 && recovered.fence_counter == 3);
    assert (recovered.callbacks == 0);

    //  Outbox rows: put, replace, delete; only durable batches count
    assert (gt_store_outbox (store));
    gt_store_callback_t row = { 7, lease.id, "http://127.0.0.1:9/x", "{}", 3, 100, 0,
                                GT_CLEANUP_PENDING, 0, "" };
    gt_store_callback_put (store, &row);
    row.job_id = 8;
    gt_store_callback_put (store, &row);
    assert (gt_store_flush (store, 5) == GT_STORE_PENDING);
    assert (s_await_completion (store, &batch, &durable) && durable);
    assert (gt_store_test_callbacks (store) == 2);
    row.job_id = 7;
    row.attempts = 4;
    row.status = GT_CLEANUP_DEAD;
    row.last_error = "HTTP 500";
    gt_store_callback_put (store, &row);
    gt_store_callback_delete (store, 8);
    assert (gt_store_flush (store, 6) == GT_STORE_PENDING);
    assert (s_await_completion (store, &batch, &durable) && durable);
    gt_store_test_fail (store, 1);
    gt_store_callback_delete (store, 7);
    assert (gt_store_flush (store, 7) == GT_STORE_PENDING);
    assert (s_await_completion (store, &batch, &durable) && !durable);
    assert (gt_store_test_callbacks (store) == 1);
    memset (&recovered, 0, sizeof (recovered));
    assert (gt_store_recover (store, &loader, err, sizeof (err)) == 0);
    assert (recovered.callbacks == 1 && recovered.attempts == 4 && recovered.body_ok);
    gt_store_destroy (&store);

    //  The memory store keeps no outbox
    store = gt_store_memory_new ();
    assert (!gt_store_outbox (store));
    gt_store_callback_put (store, &row);        //  ignored
    gt_store_destroy (&store);
}

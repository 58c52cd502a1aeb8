/*  gt_store.c — the store seam and the memory store; the contract is in
    gt_store.h.  */
#include <czmq.h>
#include "gt_store.h"

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
gt_store_lease_create (gt_store_t *self, const gt_lease_info_t *lease, const char *idempotency_key)
{
    if (self->ops.lease_create)
        self->ops.lease_create (self->impl, lease, idempotency_key);
    else
        gt_store_lease_put (self, lease, idempotency_key);
}

void
gt_store_lease_delete (gt_store_t *self, const char *lease_id, unsigned shard)
{
    if (self->ops.lease_delete)
        self->ops.lease_delete (self->impl, lease_id, shard);
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
gt_store_event (gt_store_t *self, unsigned shard, uint64_t seq, gt_event_kind_t kind, uint64_t at,
                const char *topic, const void *body, size_t size)
{
    if (self->ops.event)
        self->ops.event (self->impl, shard, seq, kind, at, topic, body, size);
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
gt_store_callback_delete (gt_store_t *self, uint64_t job_id, unsigned shard)
{
    if (self->ops.callback_delete)
        self->ops.callback_delete (self->impl, job_id, shard);
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

int
gt_store_control (gt_store_t *self, int argc, const char *argv [])
{
    assert (self);
    assert (argc >= 0 && (argc == 0 || argv));
    if (!self->ops.control)
        return -1;
    int rc = self->ops.control (self->impl, argc, argv);
    return rc < 0 ? -1 : rc;
}

bool
gt_store_detachable (gt_store_t *self)
{
    assert (self);
    return self->ops.detachable;
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
gt_store_fenced (gt_store_t *self)
{
    assert (self);
    return self->ops.fenced ? self->ops.fenced (self->impl) : false;
}

zsock_t *
gt_store_ownership_sock (gt_store_t *self)
{
    assert (self);
    return self->ops.ownership_sock ? self->ops.ownership_sock (self->impl) : NULL;
}

bool
gt_store_ownership_read (gt_store_t *self)
{
    assert (self);
    return self->ops.ownership_read ? self->ops.ownership_read (self->impl) : true;
}

const gt_shard_map_t *
gt_store_shard_map (gt_store_t *self)
{
    assert (self);
    return self->ops.shard_map ? self->ops.shard_map (self->impl) : NULL;
}

void
gt_store_advertise (gt_store_t *self, bool events, const char *endpoint)
{
    assert (self);
    assert (endpoint);
    if (self->ops.advertise)
        self->ops.advertise (self->impl, events, endpoint);
}

bool
gt_store_owns (gt_store_t *self, unsigned shard)
{
    assert (self);
    return self->ops.owns ? self->ops.owns (self->impl, shard) : true;
}

bool
gt_store_ownership_pending (gt_store_t *self)
{
    assert (self);
    return self->ops.ownership_pending ? self->ops.ownership_pending (self->impl) : false;
}

int
gt_store_ownership_apply (gt_store_t *self, const gt_store_loader_t *loader, uint8_t *forget,
                          char *err, size_t err_size)
{
    assert (self);
    assert (loader && forget);
    memset (forget, 0, GT_SHARD_COUNT / 8);
    return self->ops.ownership_apply ? self->ops.ownership_apply (self->impl, loader, forget, err, err_size) : 0;
}

void
gt_store_handed_over (gt_store_t *self, const uint8_t *shards)
{
    assert (self);
    if (self->ops.handed_over)
        self->ops.handed_over (self->impl, shards);
}

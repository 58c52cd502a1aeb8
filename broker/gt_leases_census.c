/*  gt_leases_census.c — counts for metrics, read from the engine's tables
    (part of gt_leases; see gt_leases.h).  */
#include <czmq.h>
#include "gt_leases.h"
#include "gt_leases_internal.h"

void
gt_leases_census_services (gt_leases_t *self, gt_leases_service_fn *fn, void *ctx)
{
    assert (self && fn);
    for (size_t index = 0; index < self->service_count; index++) {
        const s_service_t *service = &self->services [index];
        if (service->name && service->active)
            fn (ctx, service->name, service->active);
    }
}

void
gt_leases_census_types (gt_leases_t *self, uint64_t counts [GT_TYPE_COUNT_])
{
    assert (self);
    memset (counts, 0, sizeof (uint64_t) * GT_TYPE_COUNT_);
    for (size_t index = 0; index < self->order_count; index++) {
        uintptr_t entry = self->order [index];
        if (S_IS_HOLE (entry))
            continue;
        const gt_lease_t *lease = (const gt_lease_t *) entry;
        if (lease->state == GT_STATE_ACTIVE && lease->type < GT_TYPE_COUNT_)
            counts [lease->type]++;
    }
}

/*  gt_lease_census.c — figures for metrics; the contract is in
    gt_lease_census.h.  Reads the tables through their own API only.  */
#include <czmq.h>
#include "gt_lease_tables.h"
#include "gt_lease_census.h"

void
gt_lease_census_services (gt_lease_tables_t *tables, gt_lease_census_service_fn *fn, void *ctx)
{
    assert (tables && fn);
    size_t slots = gt_lease_tables_service_slots (tables);
    for (uint32_t index = 0; index < slots; index++) {
        const char *name = gt_lease_tables_service_name (tables, index);
        uint32_t active = name ? gt_lease_tables_service_active (tables, index) : 0;
        if (active)
            fn (ctx, name, active);
    }
}

void
gt_lease_census_types (gt_lease_tables_t *tables, uint64_t counts [GT_TYPE_COUNT_])
{
    assert (tables);
    memset (counts, 0, sizeof (uint64_t) * GT_TYPE_COUNT_);
    size_t index = 0;
    const gt_lease_t *lease;
    while ((lease = gt_lease_tables_order_next (tables, &index)))
        if (lease->state == GT_STATE_ACTIVE && lease->type < GT_TYPE_COUNT_)
            counts [lease->type]++;
}

/*  gt_lease_census.h — figures for metrics, counted from the lease tables:
    ACTIVE leases by service and by object type.

    The broker's metrics keep running counts from the engine's events; a
    census is how they start again after a recovery or a rollback, when
    events did not tell the whole story.  It only reads the tables.  */
#ifndef GT_LEASE_CENSUS_H_INCLUDED
#define GT_LEASE_CENSUS_H_INCLUDED

#include "gt_lease_tables.h"

#ifdef __cplusplus
extern "C" {
#endif

//  Called once per service with ACTIVE leases.
typedef void (gt_lease_census_service_fn) (void *ctx, const char *service_id, uint64_t active);

//  Call fn for each service with ACTIVE leases: O(services).
void gt_lease_census_services (gt_lease_tables_t *tables, gt_lease_census_service_fn *fn, void *ctx);
//  Count the ACTIVE leases by object type into counts: O(leases).
void gt_lease_census_types (gt_lease_tables_t *tables, uint64_t counts [GT_TYPE_COUNT_]);

#ifdef __cplusplus
}
#endif
#endif

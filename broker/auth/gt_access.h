/*  gt_access.h — what a CURVE principal may do (GTLP.md §12): the rules of
    the three roles, applied to one request before the broker acts on it.

    service   CREATE, RENEW, RENEW_BATCH, RELEASE and RETRY of its own
              leases; GET of its own; LIST narrowed to its service; REPLAY
              and events filtered to its service; HEALTH.  Not STATS.
    observer  GET, LIST, STATS, REPLAY, HEALTH and every event; no change.
    admin     everything; it may name any service_id, and a RENEW, RELEASE
              or RETRY without one acts as the lease's owner.

    A request that names a service_id other than its key's gets
    PERMISSION_DENIED; one that names none acts as its key's service.
    The ownership of a lease named by id is the caller's to look up
    (lease_owner: NULL when the lease is unknown, so the command itself
    answers NOT_FOUND).  Without CURVE the broker does not call this: a
    request acts as the service it names.  */
#ifndef GT_ACCESS_H_INCLUDED
#define GT_ACCESS_H_INCLUDED

#include "gt_msg.h"
#include "gt_principals.h"

#ifdef __cplusplus
extern "C" {
#endif

//  Check cmd of caller, naming named_service (or NULL), on a lease owned
//  by lease_owner (or NULL).  GT_OK and *service_p = the service the
//  request acts as (NULL: none; a change then needs one named), *filter_p =
//  true if its reads are limited to that service (LIST, REPLAY); else
//  PERMISSION_DENIED with a message in err.
gt_code_t gt_access_check (const gt_principal_t *caller, gt_cmd_t cmd, const char *named_service,
                           const char *lease_owner, const char **service_p, bool *filter_p,
                           char *err, size_t err_size);

#ifdef __cplusplus
}
#endif
#endif

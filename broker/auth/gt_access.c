/*  gt_access.c — the roles' rules; the contract is in gt_access.h.  */
#include <czmq.h>
#include "gt_access.h"

//  PERMISSION_DENIED, with the message in err
static gt_code_t
s_deny (char *err, size_t err_size, const char *format, ...)
{
    va_list args;
    va_start (args, format);
    vsnprintf (err, err_size, format, args);
    va_end (args);
    return GT_ERR_PERMISSION_DENIED;
}

gt_code_t
gt_access_check (const gt_principal_t *caller, gt_cmd_t cmd, const char *named_service,
                 const char *lease_owner, const char **service_p, bool *filter_p,
                 char *err, size_t err_size)
{
    assert (caller && service_p && filter_p);
    *service_p = named_service;
    *filter_p = false;
    bool change = cmd == GT_CMD_CREATE || cmd == GT_CMD_RENEW || cmd == GT_CMD_RENEW_BATCH
               || cmd == GT_CMD_RELEASE || cmd == GT_CMD_RETRY;
    if (cmd == GT_CMD_HEALTH || cmd == GT_CMD_MAP)
        return GT_OK;               //  anyone who may connect: where to send what
    if (caller->role == GT_ROLE_ADMIN) {
        //  Acting as the owner is what lets an admin release or retry any
        //  lease; its own service (if its key has one) is only a CREATE's
        //  default: its reads stay unfiltered
        if (!named_service)
            *service_p = lease_owner ? lease_owner : cmd == GT_CMD_CREATE ? caller->service : NULL;
        return GT_OK;
    }
    if (caller->role == GT_ROLE_OBSERVER) {
        if (change)
            return s_deny (err, err_size, "%s: an observer's key (%s) may read, not change",
                           gt_cmd_name (cmd), caller->file);
        return GT_OK;
    }
    //  A service: its own, and nothing but its own
    const char *own = caller->service;
    assert (own);                   //  gt_principals refuses a service without one
    if (cmd == GT_CMD_STATS)
        return s_deny (err, err_size, "STATS: a service's key (%s) may not read the broker's figures; "
                       "use an observer's key", own);
    if (named_service && !streq (named_service, own))
        return s_deny (err, err_size, "service_id '%.128s' is not this key's service '%s'",
                       named_service, own);
    if ((cmd == GT_CMD_GET || cmd == GT_CMD_RETRY) && lease_owner && !streq (lease_owner, own))
        return s_deny (err, err_size, "the lease belongs to another service (this key's service is '%s')",
                       own);
    *service_p = own;
    *filter_p = cmd == GT_CMD_LIST || cmd == GT_CMD_REPLAY;
    return GT_OK;
}

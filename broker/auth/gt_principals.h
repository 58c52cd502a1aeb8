/*  gt_principals.h — the clients the broker trusts: one CZMQ public
    certificate per principal in a directory (GC_CURVE_CLIENTS), read again
    whenever the directory changes.

    A certificate (the ZPL text zcert_save writes) gives the principal's
    CURVE public key and, as metadata:
        service          the service_id its requests act as (required for
                         the role service; optional for observer and admin)
        role             service (default) | observer | admin
        callback-allow   comma-separated URL prefixes its cleanup URLs must
                         lie under (GC_CALLBACK_ALLOW's rules; both apply)
        callback-secret  signs the callbacks of its service instead of
                         GC_CALLBACK_SECRET
    Every regular file of the directory is read, except names starting with
    "." and names ending in "_secret" (a secret certificate has no business
    there).  A file that does not parse, or breaks a rule, is skipped with a
    log line naming the file and the rule; so is a file holding a
    callback-secret that group or others may read, a second file with the
    same key, and a second callback-secret for the same service that
    differs from the first (files are read in name order).

    gt_principals_refresh compares the directory's listing (names, sizes,
    modification times, inodes) with the last one and reloads everything
    when it differs: the broker calls it every GT_PRINCIPALS_REFRESH_MS, so
    an added or removed certificate counts within that time, also for
    connections already open (the broker looks the caller up on every
    request).  A principal returned by a lookup is valid until the next
    refresh.  */
#ifndef GT_PRINCIPALS_H_INCLUDED
#define GT_PRINCIPALS_H_INCLUDED

#include <stdbool.h>
#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

//  How often the broker looks at the directory (ms)
#define GT_PRINCIPALS_REFRESH_MS    250

typedef enum {
    GT_ROLE_SERVICE = 0,            //  its own leases and events
    GT_ROLE_OBSERVER,               //  reads everything, changes nothing
    GT_ROLE_ADMIN                   //  everything
} gt_role_t;

//  One trusted client (a borrowed view).
typedef struct {
    const char *public_key;         //  Z85, 40 characters (the ZAP User-Id)
    const char *service;            //  service_id, or NULL (observer/admin without one)
    gt_role_t role;                 //  what it may do (gt_access.h)
    const char *callback_allow;     //  its cleanup URL prefixes, or NULL
    const char *callback_secret;    //  its service's callback signing secret, or NULL
    const char *file;               //  the certificate's file name (for logs)
} gt_principal_t;

typedef struct _gt_principals_t gt_principals_t;

//  Read the directory now.  NULL if it cannot be opened (err says why).
gt_principals_t *gt_principals_new (const char *directory, char *err, size_t err_size);
void gt_principals_destroy (gt_principals_t **self_p);

//  Reload if the directory changed since the last look; true if it did.
bool gt_principals_refresh (gt_principals_t *self);

//  The principal of a Z85 public key, or NULL if none is trusted.
const gt_principal_t *gt_principals_lookup (gt_principals_t *self, const char *public_key);
//  The callback-secret of a service's certificates, or NULL.
const char *gt_principals_callback_secret (gt_principals_t *self, const char *service);
//  Principals loaded now.
size_t gt_principals_size (gt_principals_t *self);

//  The wire name of a role ("service", "observer", "admin").
const char *gt_role_name (gt_role_t role);

#ifdef __cplusplus
}
#endif
#endif

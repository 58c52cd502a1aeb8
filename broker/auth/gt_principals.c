/*  gt_principals.c — the trusted client certificates of a directory; the
    contract is in gt_principals.h.  */
#include <czmq.h>
#include <dirent.h>
#include <sys/stat.h>
#include "gt_proto.h"
#include "gt_callback.h"
#include "gt_log.h"
#include "gt_principals.h"

//  One principal: the public view and the strings it points into.
typedef struct {
    gt_principal_t view;            //  what lookups return
    char *public_key;               //  owned strings of the view
    char *service;
    char *callback_allow;
    char *callback_secret;
    char *file;
} s_principal_t;

struct _gt_principals_t {
    char *directory;                //  GC_CURVE_CLIENTS
    uint64_t listing;               //  fingerprint of the listing last loaded
    zhashx_t *by_key;               //  Z85 public key -> s_principal_t
    zhashx_t *secrets;              //  service -> its callback-secret (borrowed from a principal)
};

static void
s_principal_destroy (void **item)
{
    s_principal_t *self = (s_principal_t *) *item;
    if (self) {
        if (self->callback_secret)
            memset (self->callback_secret, 0, strlen (self->callback_secret));
        free (self->public_key);
        free (self->service);
        free (self->callback_allow);
        free (self->callback_secret);
        free (self->file);
        free (self);
        *item = NULL;
    }
}

static char *
s_dup_or_null (const char *text)
{
    if (!text)
        return NULL;
    char *copy = strdup (text);
    assert (copy);
    return copy;
}

static bool
s_candidate (const char *name)
{
    size_t length = strlen (name);
    return name [0] != '.'
        && !(length >= 7 && streq (name + length - 7, "_secret"));
}

//  The directory's certificate files in name order (NULL if it cannot be
//  read), and the fingerprint of their names, sizes, times and inodes.
static zlistx_t *
s_list (const char *directory, uint64_t *listing_p)
{
    DIR *handle = opendir (directory);
    if (!handle)
        return NULL;
    zlistx_t *names = zlistx_new ();
    assert (names);
    zlistx_set_destructor (names, (zlistx_destructor_fn *) zstr_free);
    zlistx_set_comparator (names, (zlistx_comparator_fn *) strcmp);
    uint64_t listing = 0;
    struct dirent *entry;
    while ((entry = readdir (handle))) {
        if (!s_candidate (entry->d_name))
            continue;
        char *path = zsys_sprintf ("%s/%s", directory, entry->d_name);
        assert (path);
        struct stat info;
        if (stat (path, &info) == 0 && S_ISREG (info.st_mode)) {
            //  Each entry's hash is summed: the order readdir gives does not
            //  matter.  FNV-1a (gt_proto), not security: whoever can write
            //  the directory decides what it trusts anyway
            char *record = zsys_sprintf ("%s/%lld/%lld/%ld/%llu/%o", entry->d_name,
                                         (long long) info.st_size, (long long) info.st_mtim.tv_sec,
                                         (long) info.st_mtim.tv_nsec, (unsigned long long) info.st_ino,
                                         (unsigned) info.st_mode);
            assert (record);
            listing += gt_fnv1a_64 (record, strlen (record));
            zstr_free (&record);
            zlistx_add_end (names, strdup (entry->d_name));
        }
        zstr_free (&path);
    }
    closedir (handle);
    zlistx_sort (names);
    *listing_p = listing + zlistx_size (names);
    return names;
}

//  A service_id as requests must spell it (GTLP.md §8, no control character)
static bool
s_service_valid (const char *service)
{
    size_t length = strlen (service);
    if (length < 1 || length > GT_MAX_SERVICE_ID || !gt_utf8_valid (service, length))
        return false;
    for (const char *c = service; *c; c++)
        if ((unsigned char) *c < 0x20 || *c == 0x7f)
            return false;
    return true;
}

//  Read one certificate; NULL (logged) if it breaks a rule.
static s_principal_t *
s_load (gt_principals_t *self, const char *name)
{
    char *path = zsys_sprintf ("%s/%s", self->directory, name);
    assert (path);
    struct stat info;
    zconfig_t *root = stat (path, &info) == 0 ? zconfig_load (path) : NULL;
    zstr_free (&path);
    const char *why = NULL;
    char reason [300] = "";
    s_principal_t *principal = NULL;
    if (!root) {
        gt_log_warn ("auth", "%s/%s: not a certificate (cannot be read as ZPL): skipped", self->directory, name);
        return NULL;
    }
    const char *key = zconfig_get (root, "curve/public-key", NULL);
    const char *service = zconfig_get (root, "metadata/service", NULL);
    const char *role_name = zconfig_get (root, "metadata/role", "service");
    const char *allow = zconfig_get (root, "metadata/callback-allow", NULL);
    const char *secret = zconfig_get (root, "metadata/callback-secret", NULL);
    uint8_t binary [32];
    gt_role_t role = GT_ROLE_SERVICE;
    if (!key || strlen (key) != 40 || !zmq_z85_decode (binary, key))
        why = "no valid curve/public-key (40 Z85 characters)";
    else
    if (streq (role_name, "service"))
        role = GT_ROLE_SERVICE;
    else
    if (streq (role_name, "observer"))
        role = GT_ROLE_OBSERVER;
    else
    if (streq (role_name, "admin"))
        role = GT_ROLE_ADMIN;
    else
        why = "role must be service, observer or admin";
    if (!why && service && !*service)
        service = NULL;
    if (!why && role == GT_ROLE_SERVICE && !service)
        why = "a service's certificate needs metadata service";
    else
    if (!why && service && !s_service_valid (service))
        why = "service must be 1 .. 128 bytes of UTF-8 without control characters";
    else
    if (!why && allow && !gt_callback_allow_check (allow, reason, sizeof (reason)))
        why = reason;
    else
    if (!why && secret && !*secret)
        why = "callback-secret is empty";
    else
    if (!why && secret && (info.st_mode & 077))
        why = "it holds a callback-secret and group or others may read it (chmod 600)";
    else
    if (!why && zhashx_lookup (self->by_key, key))
        why = "its key is already another file's";
    else
    if (!why && secret && service) {
        const char *known = (const char *) zhashx_lookup (self->secrets, service);
        if (known && !streq (known, secret))
            why = "another certificate of the same service has a different callback-secret";
    }
    if (why)
        gt_log_warn ("auth", "%s/%s: %s: skipped", self->directory, name, why);
    else {
        principal = (s_principal_t *) zmalloc (sizeof (s_principal_t));
        assert (principal);
        principal->public_key = s_dup_or_null (key);
        principal->service = s_dup_or_null (service);
        principal->callback_allow = s_dup_or_null (allow);
        principal->callback_secret = s_dup_or_null (secret);
        principal->file = s_dup_or_null (name);
        principal->view = (gt_principal_t) {
            principal->public_key, principal->service, role,
            principal->callback_allow, principal->callback_secret, principal->file
        };
    }
    zconfig_destroy (&root);
    return principal;
}

//  Load every certificate of the listing (already taken by the caller)
static void
s_reload (gt_principals_t *self, zlistx_t *names)
{
    zhashx_purge (self->secrets);
    zhashx_purge (self->by_key);
    const char *name = (const char *) zlistx_first (names);
    while (name) {
        s_principal_t *principal = s_load (self, name);
        if (principal) {
            zhashx_insert (self->by_key, principal->public_key, principal);
            if (principal->service && principal->callback_secret
            && !zhashx_lookup (self->secrets, principal->service))
                zhashx_insert (self->secrets, principal->service, principal->callback_secret);
        }
        name = (const char *) zlistx_next (names);
    }
}

gt_principals_t *
gt_principals_new (const char *directory, char *err, size_t err_size)
{
    assert (directory);
    uint64_t listing = 0;
    zlistx_t *names = s_list (directory, &listing);
    if (!names) {
        snprintf (err, err_size, "cannot read the client certificates directory %s: %s",
                  directory, strerror (errno));
        return NULL;
    }
    gt_principals_t *self = (gt_principals_t *) zmalloc (sizeof (gt_principals_t));
    assert (self);
    self->directory = strdup (directory);
    self->by_key = zhashx_new ();
    self->secrets = zhashx_new ();
    assert (self->directory && self->by_key && self->secrets);
    zhashx_set_destructor (self->by_key, s_principal_destroy);
    //  secrets borrows its values from by_key's principals
    s_reload (self, names);
    self->listing = listing;
    zlistx_destroy (&names);
    return self;
}

void
gt_principals_destroy (gt_principals_t **self_p)
{
    assert (self_p);
    gt_principals_t *self = *self_p;
    if (self) {
        zhashx_destroy (&self->secrets);
        zhashx_destroy (&self->by_key);
        free (self->directory);
        free (self);
        *self_p = NULL;
    }
}

bool
gt_principals_refresh (gt_principals_t *self)
{
    assert (self);
    uint64_t listing = 0;
    zlistx_t *names = s_list (self->directory, &listing);
    if (!names)
        listing = 0;                //  the directory is gone: trust nobody
    if (listing == self->listing) {
        zlistx_destroy (&names);
        return false;
    }
    size_t before = zhashx_size (self->by_key);
    if (names)
        s_reload (self, names);
    else {
        zhashx_purge (self->secrets);
        zhashx_purge (self->by_key);
        gt_log_warn ("auth", "cannot read %s (%s): no client is trusted until it can be read",
                     self->directory, strerror (errno));
    }
    self->listing = listing;
    zlistx_destroy (&names);
    gt_log_info ("auth", "client certificates reloaded from %s: %zu trusted (were %zu)",
                 self->directory, zhashx_size (self->by_key), before);
    return true;
}

const gt_principal_t *
gt_principals_lookup (gt_principals_t *self, const char *public_key)
{
    assert (self);
    if (!public_key)
        return NULL;
    s_principal_t *principal = (s_principal_t *) zhashx_lookup (self->by_key, public_key);
    return principal ? &principal->view : NULL;
}

const char *
gt_principals_callback_secret (gt_principals_t *self, const char *service)
{
    assert (self);
    return service ? (const char *) zhashx_lookup (self->secrets, service) : NULL;
}

size_t
gt_principals_size (gt_principals_t *self)
{
    assert (self);
    return zhashx_size (self->by_key);
}

const char *
gt_role_name (gt_role_t role)
{
    switch (role) {
        case GT_ROLE_SERVICE:  return "service";
        case GT_ROLE_OBSERVER: return "observer";
        case GT_ROLE_ADMIN:    return "admin";
    }
    return "?";
}

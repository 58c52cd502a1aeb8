/*  gt_storage.c — choosing and opening the store; the contract is in
    gt_storage.h.  */
#include <czmq.h>
#include "gt_storage.h"
#include "gt_store_pg.h"

//  The name config gives (NULL: the default, memory)
static const char *
s_name (const gt_config_t *config)
{
    assert (config);
    return config->storage ? config->storage : "memory";
}

bool
gt_storage_available (const gt_config_t *config, char *err, size_t err_size)
{
    const char *name = s_name (config);
    if (streq (name, "memory"))
        return true;
    if (streq (name, "postgres")) {
        if (config->database_url && *config->database_url)
            return true;
        snprintf (err, err_size, "GC_STORAGE_BACKEND=postgres needs DATABASE_URL "
                  "(e.g. postgresql://user:password@127.0.0.1:5432/garbagetruck)");
    }
    else
        snprintf (err, err_size, "GC_STORAGE_BACKEND: unknown store '%s' (memory or postgres)", name);
    return false;
}

gt_store_t *
gt_storage_open (const gt_config_t *config, char *err, size_t err_size)
{
    if (!gt_storage_available (config, err, err_size))
        return NULL;
    const char *name = s_name (config);
    if (streq (name, "postgres"))
        return gt_store_pg_open (config, err, err_size);
    return gt_store_memory_new ();
}

/*  gt_storage.h — the storage backend GC_STORAGE_BACKEND names: whether
    this build has it, and opening it.

    config->storage (NULL: "memory") names one of:
        memory      gt_store_memory_new (gt_store.h): keeps nothing
        postgres    gt_store_pg_open (gt_store_pg.h): needs DATABASE_URL;
                    opening connects and migrates, blocking
    Any other name is refused with a message, "test" included: test stores
    are made by the tests themselves and handed to the broker
    (gt_broker_actor_on_store), never chosen by a configuration.

    The daemon checks gt_storage_available before anything else (a bad
    name exits 2), then opens the store on its own thread; the actor opens
    it itself when started with gt_broker_actor.  The selftest is in
    tests/pg (gt_storage_test.c).  */
#ifndef GT_STORAGE_H_INCLUDED
#define GT_STORAGE_H_INCLUDED

#include "gt_config.h"
#include "gt_store.h"

#ifdef __cplusplus
extern "C" {
#endif

//  True if this build can open the store config names (without opening
//  it); else false with a message in err.
bool gt_storage_available (const gt_config_t *config, char *err, size_t err_size);
//  Open the store config names.  NULL with a message in err if it cannot
//  (an unknown name, no DATABASE_URL, a database it cannot use).
gt_store_t *gt_storage_open (const gt_config_t *config, char *err, size_t err_size);

#ifdef __cplusplus
}
#endif
#endif

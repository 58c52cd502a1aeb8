/*  gt_storage_test.c — selftest of gt_storage: the names it accepts and
    refuses ("test" among them), and a PostgreSQL that cannot be reached
    (no database needed).  */
#include <czmq.h>
#include "gt_storage.h"
#include "gt_pg_selftest.h"

void
gt_storage_test (bool verbose)
{
    (void) verbose;
    char err [256];

    //  The default, and memory by name
    gt_config_t *config = gt_config_new ();
    assert (gt_storage_available (config, err, sizeof (err)));
    gt_store_t *store = gt_storage_open (config, err, sizeof (err));
    assert (store && streq (gt_store_name (store), "memory"));
    gt_store_destroy (&store);
    gt_config_set_storage (config, "memory");
    store = gt_storage_open (config, err, sizeof (err));
    assert (store && streq (gt_store_name (store), "memory"));
    gt_store_destroy (&store);

    //  postgres needs DATABASE_URL
    gt_config_set_storage (config, "postgres");
    assert (!gt_storage_available (config, err, sizeof (err)) && strstr (err, "DATABASE_URL"));
    store = gt_storage_open (config, err, sizeof (err));
    assert (store == NULL && strstr (err, "needs DATABASE_URL"));
    gt_config_set_database_url (config, "postgresql://127.0.0.1:1/none");
    assert (gt_storage_available (config, err, sizeof (err)));
    //  Nothing listens there: a clear message at once (GC_DB_CONNECT_WAIT 0)
    store = gt_storage_open (config, err, sizeof (err));
    assert (store == NULL && strstr (err, "cannot connect to PostgreSQL") && strstr (err, "GC_DB_CONNECT_WAIT"));

    //  Any other name is refused: "test" too (test stores come from tests)
    gt_config_set_storage (config, "floppy");
    assert (!gt_storage_available (config, err, sizeof (err)) && strstr (err, "unknown store"));
    assert (gt_storage_open (config, err, sizeof (err)) == NULL && strstr (err, "unknown store"));
    gt_config_set_storage (config, "test");
    assert (!gt_storage_available (config, err, sizeof (err)) && strstr (err, "unknown store 'test'"));
    assert (gt_storage_open (config, err, sizeof (err)) == NULL);
    gt_config_destroy (&config);
}

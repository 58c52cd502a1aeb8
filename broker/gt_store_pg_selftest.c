/*  gt_store_pg_selftest.c — runs the selftests of the PostgreSQL store's
    broker side by name (one ctest each).  gt_store_pg needs a database and
    exits 77 (ctest: skipped) when DATABASE_URL is not set.  */
#include <czmq.h>
#include "gt_store_pg.h"
#include "gt_pacer.h"
#include "gt_broker_store.h"
#include "gt_pgtestdb.h"

#define S_SKIPPED 77

typedef struct {
    const char *name;               //  module name, as registered with ctest
    void (*test) (bool verbose);    //  its selftest
    bool needs_database;            //  needs DATABASE_URL
} s_test_t;

static const s_test_t s_tests [] = {
    { "gt_pacer", gt_pacer_test, false },
    { "gt_broker_store", gt_broker_store_test, false },
    { "gt_store_pg", gt_store_pg_test, true },
};

int
main (int argc, char *argv [])
{
    bool verbose = getenv ("GT_VERBOSE") != NULL;
    size_t count = sizeof (s_tests) / sizeof (s_tests [0]);
    bool found = argc < 2;
    int rc = 0;
    for (size_t i = 0; i < count; i++)
        if (argc < 2 || streq (argv [1], s_tests [i].name)) {
            found = true;
            if (s_tests [i].needs_database && !gt_pgtestdb_available ()) {
                printf ("%s selftest skipped: DATABASE_URL is not set\n", s_tests [i].name);
                rc = S_SKIPPED;
                continue;
            }
            printf ("Running %s selftest...\n", s_tests [i].name);
            s_tests [i].test (verbose);
        }
    if (!found) {
        fprintf (stderr, "gt_store_pg_selftest: no module '%s'\n", argv [1]);
        return 1;
    }
    return rc;
}

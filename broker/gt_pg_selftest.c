/*  gt_pg_selftest.c — runs one PostgreSQL-store module's selftest by name
    (one ctest each).  Modules that need a database exit 77 (ctest: skipped)
    when DATABASE_URL is not set.  */
#include <czmq.h>
#include "gt_pgschema.h"
#include "gt_pgbatch.h"
#include "gt_pgwriter.h"
#include "gt_pgload.h"
#include "gt_pgtestdb.h"

#define S_SKIPPED 77

typedef struct {
    const char *name;               //  module name, as registered with ctest
    void (*test) (bool verbose);    //  its selftest
    bool needs_database;            //  needs DATABASE_URL
} s_test_t;

static const s_test_t s_tests [] = {
    { "gt_pgbatch",  gt_pgbatch_test,  false },
    { "gt_pgschema", gt_pgschema_test, true },
    { "gt_pgwriter", gt_pgwriter_test, true },
    { "gt_pgload",   gt_pgload_test,   true },
};

int
main (int argc, char *argv [])
{
    bool verbose = getenv ("GT_VERBOSE") != NULL;
    size_t count = sizeof (s_tests) / sizeof (s_tests [0]);
    int rc = 0;
    for (size_t i = 0; i < count; i++)
        if (argc < 2 || streq (argv [1], s_tests [i].name)) {
            if (s_tests [i].needs_database && !gt_pgtestdb_available ()) {
                printf ("%s selftest skipped: DATABASE_URL is not set\n", s_tests [i].name);
                rc = S_SKIPPED;
                continue;
            }
            printf ("Running %s selftest...\n", s_tests [i].name);
            s_tests [i].test (verbose);
        }
    return rc;
}

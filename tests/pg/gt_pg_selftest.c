/*  gt_pg_selftest.c — runs the selftests of the PostgreSQL store's modules
    (and of gt_storage, which opens it).

    gt_pg_selftest [-v] [-l] [-n] [[-t] MODULE]

    With a module name it runs that module's selftest (one ctest each, see
    tests/pg/CMakeLists.txt); without one it runs them all in order.  The
    name may be given bare, as gt_selftest() in the top-level CMakeLists.txt
    passes it, or after -t / --test.  An unknown name fails, so that a ctest
    registered under a misspelt name cannot pass without running anything.

    A selftest that needs a database is skipped when DATABASE_URL is not
    set: the runner then exits 77, which ctest reports as skipped
    (SKIP_RETURN_CODE), never as passed.  */
#include <czmq.h>
#include "gt_pgbatch.h"
#include "gt_pgtestdb.h"
#include "gt_pg_selftest.h"

//  Exit code of a run that skipped a selftest (ctest SKIP_RETURN_CODE)
#define S_SKIPPED 77

typedef struct {
    const char *name;               //  module name, as registered with ctest
    void (*test) (bool verbose);    //  its selftest
    bool needs_database;            //  needs DATABASE_URL
} s_test_t;

//  In dependency order: a failure low down is reported first by a full run
static const s_test_t s_tests [] = {
    { "gt_pgbatch",  gt_pgbatch_test,  false },
    { "gt_storage",  gt_storage_test,  false },
    { "gt_pgschema", gt_pgschema_test, true },
    { "gt_pgwriter", gt_pgwriter_test, true },
    { "gt_pgload",   gt_pgload_test,   true },
    { "gt_store_pg", gt_store_pg_test, true },
};
#define S_TEST_COUNT (sizeof (s_tests) / sizeof (s_tests [0]))

//  The test called name, or NULL.
static const s_test_t *
s_test_find (const char *name)
{
    for (size_t index = 0; index < S_TEST_COUNT; index++)
        if (streq (s_tests [index].name, name))
            return &s_tests [index];
    return NULL;
}

//  Run one selftest; false if it was skipped (no database).
static bool
s_test_run (const s_test_t *test, bool verbose)
{
    if (test->needs_database && !gt_pgtestdb_available ()) {
        printf ("%s selftest skipped: DATABASE_URL is not set\n", test->name);
        return false;
    }
    printf ("Running %s selftest...\n", test->name);
    test->test (verbose);
    return true;
}

static void
s_usage (void)
{
    puts ("gt_pg_selftest [options] [MODULE]");
    puts ("  --verbose / -v         verbose test output (also: GT_VERBOSE set)");
    puts ("  --list / -l            list the modules");
    puts ("  --number / -n          print the number of modules");
    puts ("  --test / -t MODULE     run one module's selftest");
    puts ("  --help / -h            this help");
    puts ("Without a module, every selftest runs.  Those that need a database");
    puts ("are skipped (exit 77) when DATABASE_URL is not set.");
}

int
main (int argc, char *argv [])
{
    bool verbose = getenv ("GT_VERBOSE") != NULL;
    const char *name = NULL;
    for (int argn = 1; argn < argc; argn++) {
        const char *arg = argv [argn];
        if (streq (arg, "--help") || streq (arg, "-h")) {
            s_usage ();
            return 0;
        }
        else
        if (streq (arg, "--verbose") || streq (arg, "-v"))
            verbose = true;
        else
        if (streq (arg, "--list") || streq (arg, "-l")) {
            for (size_t index = 0; index < S_TEST_COUNT; index++)
                puts (s_tests [index].name);
            return 0;
        }
        else
        if (streq (arg, "--number") || streq (arg, "-n")) {
            printf ("%zu\n", S_TEST_COUNT);
            return 0;
        }
        else
        if ((streq (arg, "--test") || streq (arg, "-t")) && argn + 1 < argc)
            name = argv [++argn];
        else
        if (*arg != '-' && !name)
            name = arg;
        else {
            fprintf (stderr, "gt_pg_selftest: unexpected argument '%s' (--help)\n", arg);
            return 1;
        }
    }
    bool skipped = false;
    if (name) {
        const s_test_t *test = s_test_find (name);
        if (!test) {
            fprintf (stderr, "gt_pg_selftest: no module '%s' (--list)\n", name);
            return 1;
        }
        skipped = !s_test_run (test, verbose);
    }
    else
        for (size_t index = 0; index < S_TEST_COUNT; index++)
            if (!s_test_run (&s_tests [index], verbose))
                skipped = true;
    return skipped ? S_SKIPPED : 0;
}

/*  gt_broker_selftest.c — runs the selftests of the broker's modules in
    the layers core, observe, store and delivery (and of the HTTP test
    server they use, gthttptest).

    gt_broker_selftest [-v] [-l] [-n] [[-t] MODULE]

    With a module name it runs that module's selftest (one ctest each, see
    tests/broker/CMakeLists.txt); without one it runs them all in order.
    The name may be given bare, as gt_selftest() in the top-level
    CMakeLists.txt passes it, or after -t / --test.  An unknown name fails,
    so that a ctest registered under a misspelt name cannot pass without
    running anything.  */
#include <czmq.h>
#include "gt_http_server.h"
#include "gt_broker_selftest.h"

typedef struct {
    const char *name;               //  module name, as registered with ctest
    void (*test) (bool verbose);    //  its selftest
} s_test_t;

//  In dependency order: a failure low down is reported first by a full run
static const s_test_t s_tests [] = {
    //  core
    { "gt_wheel",        gt_wheel_test },
    { "gt_table",        gt_table_test },
    { "gt_config",       gt_config_test },
    { "gt_journal",      gt_journal_test },
    { "gt_leases",       gt_leases_test },
    { "gt_events",       gt_events_test },
    //  observe
    { "gt_log",          gt_log_test },
    { "gt_histogram",    gt_histogram_test },
    { "gt_figures",      gt_figures_test },
    { "gt_metrics",      gt_metrics_test },
    { "gt_metrics_http", gt_metrics_http_test },
    //  store
    { "gt_store",        gt_store_test },
    //  delivery, and the HTTP test server its selftest stands on
    { "gt_callback",     gt_callback_test },
    { "gt_http_server",  gt_http_server_test },
    { "gt_delivery",     gt_delivery_test },
    { "gt_peers",        gt_peers_test },
    { "gt_pacer",        gt_pacer_test },
    { "gt_admission",    gt_admission_test },
    { "gt_broker",       gt_broker_test },
    { "gt_broker_metrics", gt_broker_metrics_test },
    { "gt_broker_delivery", gt_broker_delivery_test },
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

static void
s_test_run (const s_test_t *test, bool verbose)
{
    printf ("Running %s selftest...\n", test->name);
    test->test (verbose);
}

static void
s_usage (void)
{
    puts ("gt_broker_selftest [options] [MODULE]");
    puts ("  --verbose / -v         verbose test output (also: GT_VERBOSE set)");
    puts ("  --list / -l            list the modules");
    puts ("  --number / -n          print the number of modules");
    puts ("  --test / -t MODULE     run one module's selftest");
    puts ("  --help / -h            this help");
    puts ("Without a module, every selftest runs.");
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
            fprintf (stderr, "gt_broker_selftest: unexpected argument '%s' (--help)\n", arg);
            return 1;
        }
    }
    if (name) {
        const s_test_t *test = s_test_find (name);
        if (!test) {
            fprintf (stderr, "gt_broker_selftest: no module '%s' (--list)\n", name);
            return 1;
        }
        s_test_run (test, verbose);
    }
    else
        for (size_t index = 0; index < S_TEST_COUNT; index++)
            s_test_run (&s_tests [index], verbose);
    return 0;
}

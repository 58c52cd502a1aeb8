/*  gt_selftest.c — the one selftest runner of GarbageTruck, in the style of
    czmq_selftest.c: every module's selftest, the codec and SDK's, the
    broker's layers', the PostgreSQL store's and the tests' own fixtures'.

    garbagetruck_selftest [-v] [-l] [-n] [[-t] MODULE]

    With a module name it runs that module's selftest (one ctest each, see
    tests/CMakeLists.txt); without one it runs them all, in dependency
    order.  The name may be given bare, as gt_selftest() in the top-level
    CMakeLists.txt passes it, or after -t / --test.  An unknown name fails,
    so that a ctest registered under a misspelt name cannot pass without
    running anything.  A selftest that needs PostgreSQL is skipped when
    DATABASE_URL is not set, and the run then exits 77, which ctest reports
    as skipped (SKIP_RETURN_CODE), never as passed.

    The selftests live in tests/ (tests/sdk, tests/broker, tests/pg and
    the fixtures here), compiled into test-only libraries: nothing of them
    is in the daemon, gtctl or an installed library.  */
#include <czmq.h>
#include "gt_sdk_selftest.h"
#include "gt_broker_selftest.h"
#include "gt_pg_selftest.h"
#include "gt_pgtestdb.h"
#include "gt_http_server.h"
#include "gt_test_store.h"

//  Exit code of a run that skipped a selftest (ctest SKIP_RETURN_CODE)
#define S_SKIPPED 77

typedef struct {
    const char *name;               //  module name, as registered with ctest
    void (*test) (bool verbose);    //  its selftest
    bool needs_database;            //  needs DATABASE_URL
} s_test_t;

//  In dependency order: a failure low down is reported first by a full run
static const s_test_t s_tests [] = {
    //  sdk/c: the codec and the C SDK
    { "gt_proto",           gt_proto_test,           false },
    { "gt_msg",             gt_msg_test,             false },
    { "gt_client",          gt_client_test,          false },
    { "gt_subscriber",      gt_subscriber_test,      false },
    { "gt_keepalive",       gt_keepalive_test,       false },
    { "gt_jitter",          gt_jitter_test,          false },
    { "gt_webhook",         gt_webhook_test,         false },
    //  broker/core
    { "gt_wheel",           gt_wheel_test,           false },
    { "gt_table",           gt_table_test,           false },
    { "gt_slabs",           gt_slabs_test,           false },
    { "gt_records",         gt_records_test,         false },
    { "gt_config",          gt_config_test,          false },
    { "gt_journal",         gt_journal_test,         false },
    { "gt_leases",          gt_leases_test,          false },
    { "gt_event_ring",      gt_event_ring_test,      false },
    { "gt_events",          gt_events_test,          false },
    //  broker/observe
    { "gt_log",             gt_log_test,             false },
    { "gt_histogram",       gt_histogram_test,       false },
    { "gt_figures",         gt_figures_test,         false },
    { "gt_metrics",         gt_metrics_test,         false },
    { "gt_metrics_http",    gt_metrics_http_test,    false },
    //  broker/store
    { "gt_store",           gt_store_test,           false },
    { "gt_shard_map",       gt_shard_map_test,       false },
    //  broker/store/pg
    { "gt_pgbatch",         gt_pgbatch_test,         false },
    { "gt_pgschema",        gt_pgschema_test,        true },
    { "gt_pgwriter",        gt_pgwriter_test,        true },
    { "gt_pgshards",        gt_pgshards_test,        true },
    { "gt_pgload",          gt_pgload_test,          true },
    { "gt_store_pg",        gt_store_pg_test,        true },
    //  broker/delivery, and the HTTP test server its selftest stands on
    { "gt_callback",        gt_callback_test,        false },
    { "gt_http_server",     gt_http_server_test,     false },
    { "gt_delivery",        gt_delivery_test,        false },
    //  broker/server
    { "gt_storage",         gt_storage_test,         false },
    { "gt_peers",           gt_peers_test,           false },
    { "gt_reply",           gt_reply_test,           false },
    { "gt_subscriptions",   gt_subscriptions_test,   false },
    { "gt_pacer",           gt_pacer_test,           false },
    { "gt_admission",       gt_admission_test,       false },
    { "gt_broker",          gt_broker_test,          false },
    { "gt_broker_metrics",  gt_broker_metrics_test,  false },
    { "gt_broker_delivery", gt_broker_delivery_test, false },
    //  the tests' fixtures
    { "gt_test_store",      gt_test_store_test,      false },
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
    puts ("garbagetruck_selftest [options] [MODULE]");
    puts ("  --verbose / -v         verbose test output (also: GT_VERBOSE set)");
    puts ("  --list / -l            list the modules");
    puts ("  --number / -n          print the number of modules");
    puts ("  --test / -t MODULE     run one module's selftest");
    puts ("  --help / -h            this help");
    puts ("Without a module, every selftest runs; those that need PostgreSQL");
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
            fprintf (stderr, "garbagetruck_selftest: unexpected argument '%s' (--help)\n", arg);
            return 1;
        }
    }
    bool skipped = false;
    if (name) {
        const s_test_t *test = s_test_find (name);
        if (!test) {
            fprintf (stderr, "garbagetruck_selftest: no module '%s' (--list)\n", name);
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

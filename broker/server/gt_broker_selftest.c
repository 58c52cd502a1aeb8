/*  gt_broker_selftest.c — runs one broker module's selftest by name (one ctest each).  */
#include <czmq.h>
#include "gt_wheel.h"
#include "gt_table.h"
#include "gt_config.h"
#include "gt_leases.h"
#include "gt_journal.h"
#include "gt_events.h"
#include "gt_store.h"
#include "gt_peers.h"
#include "gt_figures.h"
#include "gt_broker.h"
#include "gt_log.h"
#include "gt_histogram.h"
#include "gt_metrics_http.h"
#include "gt_broker_metrics.h"
#include "gt_broker_delivery.h"

typedef struct {
    const char *name;               //  module name, as registered with ctest
    void (*test) (bool verbose);    //  its selftest
} s_test_t;

static const s_test_t s_tests [] = {
    { "gt_wheel", gt_wheel_test },
    { "gt_table", gt_table_test },
    { "gt_config", gt_config_test },
    { "gt_journal", gt_journal_test },
    { "gt_leases", gt_leases_test },
    { "gt_events", gt_events_test },
    { "gt_store", gt_store_test },
    { "gt_peers", gt_peers_test },
    { "gt_figures", gt_figures_test },
    { "gt_broker", gt_broker_test },
    { "gt_log", gt_log_test },
    { "gt_histogram", gt_histogram_test },
    { "gt_metrics", gt_metrics_test },
    { "gt_metrics_http", gt_metrics_http_test },
    { "gt_broker_metrics", gt_broker_metrics_test },
    { "gt_broker_delivery", gt_broker_delivery_test },
};

int
main (int argc, char *argv [])
{
    bool verbose = getenv ("GT_VERBOSE") != NULL;
    size_t count = sizeof (s_tests) / sizeof (s_tests [0]);
    bool found = argc < 2;
    for (size_t i = 0; i < count; i++)
        if (argc < 2 || streq (argv [1], s_tests [i].name)) {
            printf ("Running %s selftest...\n", s_tests [i].name);
            s_tests [i].test (verbose);
            found = true;
        }
    if (!found) {
        fprintf (stderr, "gt_broker_selftest: no module '%s'\n", argv [1]);
        return 1;
    }
    return 0;
}

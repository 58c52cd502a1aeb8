/*  gt_broker_delivery_selftest.c — runs gt_broker_delivery's selftest (which still reads
    its private records, so it lives beside the module for now).  */
#include <czmq.h>
#include "gt_broker.h"
#include "gt_broker_delivery.h"

typedef struct {
    const char *name;               //  module name, as registered with ctest
    void (*test) (bool verbose);    //  its selftest
} s_test_t;

static const s_test_t s_tests [] = {
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
        fprintf (stderr, "gt_broker_delivery_selftest: no module '%s'\n", argv [1]);
        return 1;
    }
    return 0;
}

/*  gt_delivery_selftest.c — runs one delivery module's selftest by name (one ctest each).  */
#include <czmq.h>
#include "gt_callback.h"
#include "gt_delivery.h"
#include "gt_http_server.h"

typedef struct {
    const char *name;               //  module name, as registered with ctest
    void (*test) (bool verbose);    //  its selftest
} s_test_t;

static const s_test_t s_tests [] = {
    { "gt_callback",    gt_callback_test },
    { "gt_http_server", gt_http_server_test },
    { "gt_delivery",    gt_delivery_test },
};

int
main (int argc, char *argv [])
{
    bool verbose = getenv ("GT_VERBOSE") != NULL;
    size_t count = sizeof (s_tests) / sizeof (s_tests [0]);
    bool found = false;
    for (size_t i = 0; i < count; i++)
        if (argc < 2 || streq (argv [1], s_tests [i].name)) {
            printf ("Running %s selftest...\n", s_tests [i].name);
            s_tests [i].test (verbose);
            found = true;
        }
    if (!found) {
        fprintf (stderr, "no selftest named %s\n", argv [1]);
        return 1;
    }
    return 0;
}

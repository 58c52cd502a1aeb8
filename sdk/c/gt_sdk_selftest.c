/*  gt_sdk_selftest.c — runs one SDK module's selftest by name (one ctest each).  */
#include "garbagetruck.h"

typedef struct {
    const char *name;               //  module name, as registered with ctest
    void (*test) (bool verbose);    //  its selftest
} s_test_t;

static const s_test_t s_tests [] = {
    { "gt_proto",      gt_proto_test },
    { "gt_msg",        gt_msg_test },
    { "gt_client",     gt_client_test },
    { "gt_subscriber", gt_subscriber_test },
    { "gt_keepalive",  gt_keepalive_test },
};

int
main (int argc, char *argv [])
{
    bool verbose = getenv ("GT_VERBOSE") != NULL;
    size_t count = sizeof (s_tests) / sizeof (s_tests [0]);
    for (size_t i = 0; i < count; i++)
        if (argc < 2 || streq (argv [1], s_tests [i].name)) {
            printf ("Running %s selftest...\n", s_tests [i].name);
            s_tests [i].test (verbose);
        }
    return 0;
}

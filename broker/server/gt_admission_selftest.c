/*  gt_admission_selftest.c — runs the selftests of the broker's side
    of the stores by name (one ctest each): catch-up pacing (gt_pacer),
    refusal and pacing in the broker (gt_admission).  Neither needs a
    database.  The selftests of the PostgreSQL store itself and of
    gt_storage run from tests/pg (gt_pg_selftest).  */
#include <czmq.h>
#include "gt_pacer.h"
#include "gt_admission.h"

typedef struct {
    const char *name;               //  module name, as registered with ctest
    void (*test) (bool verbose);    //  its selftest
} s_test_t;

static const s_test_t s_tests [] = {
    { "gt_pacer", gt_pacer_test },
    { "gt_admission", gt_admission_test },
};

int
main (int argc, char *argv [])
{
    bool verbose = getenv ("GT_VERBOSE") != NULL;
    size_t count = sizeof (s_tests) / sizeof (s_tests [0]);
    bool found = argc < 2;
    for (size_t i = 0; i < count; i++)
        if (argc < 2 || streq (argv [1], s_tests [i].name)) {
            found = true;
            printf ("Running %s selftest...\n", s_tests [i].name);
            s_tests [i].test (verbose);
        }
    if (!found) {
        fprintf (stderr, "gt_admission_selftest: no module '%s'\n", argv [1]);
        return 1;
    }
    return 0;
}

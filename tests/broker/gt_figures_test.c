/*  gt_figures_test.c — selftest of the table of figures: every figure
    named, names unique, Prometheus names well formed.  */
#include <czmq.h>
#include "gt_figures.h"
#include "gt_broker_selftest.h"

void
gt_figures_test (bool verbose)
{
    if (verbose)
        printf (" * gt_figures: ");
    zhashx_t *seen = zhashx_new ();
    for (size_t i = 0; i < GT_FIGURE_COUNT_; i++) {
        const gt_figure_info_t *figure = &gt_figures [i];
        assert (figure->stat && *figure->stat && figure->help && *figure->help && figure->scale >= 1);
        assert (zhashx_insert (seen, figure->stat, (void *) 1) == 0);
        if (figure->prometheus) {
            assert (strncmp (figure->prometheus, "gc_", 3) == 0);
            assert (zhashx_insert (seen, figure->prometheus, (void *) 1) == 0);
            size_t length = strlen (figure->prometheus);
            bool total = length > 6 && streq (figure->prometheus + length - 6, "_total");
            assert (total == (figure->kind == GT_FIGURE_COUNTER));
        }
    }
    for (size_t i = 0; i < GT_FIGURE_FAMILY_COUNT_; i++) {
        const gt_figure_info_t *family = &gt_figure_families [i];
        assert (family->prometheus && family->help);
        assert (zhashx_insert (seen, family->prometheus, (void *) 1) == 0);
    }
    zhashx_destroy (&seen);
    if (verbose)
        printf ("OK\n");
}

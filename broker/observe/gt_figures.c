/*  gt_figures.c — the table of figures (gt_figures.h), expanded once.  */
#include <czmq.h>
#include <ctype.h>
#include "gt_figures.h"

const gt_figure_info_t gt_figures [GT_FIGURE_COUNT_] = {
#define S_ENTRY(id, stat, prometheus, kind, scale, help) \
    [GT_FIGURE_##id] = { stat, prometheus, GT_FIGURE_##kind, scale, help },
    GT_FIGURES (S_ENTRY)
#undef S_ENTRY
};

const gt_figure_info_t gt_figure_families [GT_FIGURE_FAMILY_COUNT_] = {
#define S_FAMILY(id, stat, prometheus, help) \
    [GT_FIGURE_FAMILY_##id] = { stat, prometheus, GT_FIGURE_GAUGE, 1, help },
    GT_FIGURE_FAMILIES (S_FAMILY)
#undef S_FAMILY
};

void
gt_figures_family_name (char *buffer, size_t size, gt_figure_family_t family, const char *wire_name)
{
    assert (buffer && size > 0 && family < GT_FIGURE_FAMILY_COUNT_ && gt_figure_families [family].stat);
    snprintf (buffer, size, "%s%s", gt_figure_families [family].stat, wire_name ? wire_name : "malformed");
    for (char *p = buffer; *p; p++)
        *p = (char) tolower ((unsigned char) *p);
}

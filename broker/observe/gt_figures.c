/*  gt_figures.c — the table of figures (gt_figures.h), expanded once.  */
#include <czmq.h>
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

/*  gt_broker_stats.h — the STATS list (GTLP.md §5.8) from the broker's
    figures: the values come from whoever owns them (the actor), the names
    from the table of figures (gt_figures.h).  */
#ifndef GT_BROKER_STATS_H_INCLUDED
#define GT_BROKER_STATS_H_INCLUDED

#include "gt_msg.h"
#include "gt_figures.h"
#include "gt_broker_metrics.h"

//  The list: every figure of the table, the requests by command and the
//  errors by code, then the metrics figures (metrics may be NULL).  Names
//  are static; the caller frees the array.
gt_stat_t *gt_broker_stats_build (const uint64_t figures [GT_FIGURE_COUNT_], const uint64_t by_cmd [GT_CMD_COUNT_],
                                  const uint64_t by_code [GT_CODE_COUNT_], gt_broker_metrics_t *metrics,
                                  size_t *count_p);

#endif

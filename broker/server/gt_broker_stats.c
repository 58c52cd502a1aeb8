/*  gt_broker_stats.c — the STATS list (GTLP.md §5.8): the broker's figures
    under the names of the table (gt_figures.h), the per-command and
    per-code counters, and the metrics figures.  */
#include <czmq.h>
#include <pthread.h>
#include "gt_broker.h"
#include "gt_broker_metrics.h"
#include "gt_broker_stats.h"
#include "gt_figures.h"

#define S_MAX_STATS     256

static void
s_add (gt_stat_t *stats, size_t *count, const char *name, uint64_t value)
{
    assert (*count < S_MAX_STATS);
    stats [*count].name = (char *) name;
    stats [*count].value = value;
    (*count)++;
}

//  Counter names per command and per error code (the families' prefix and
//  the wire name in lower case), built once: several brokers may run in
//  one process, and the names are static afterwards.
static char s_request_names [GT_CMD_COUNT_][GT_METRICS_STAT_NAME];
static char s_error_names [GT_CODE_COUNT_][GT_METRICS_STAT_NAME];
static pthread_once_t s_names_once = PTHREAD_ONCE_INIT;

static void
s_names_init (void)
{
    for (int cmd = 0; cmd < GT_CMD_COUNT_; cmd++)
        if (cmd != GT_CMD_NONE)
            gt_figures_family_name (s_request_names [cmd], GT_METRICS_STAT_NAME, GT_FIGURE_FAMILY_REQUESTS_BY_COMMAND,
                                    gt_cmd_name ((gt_cmd_t) cmd));
    for (int code = 0; code < GT_CODE_COUNT_; code++)
        if (code != GT_OK)
            gt_figures_family_name (s_error_names [code], GT_METRICS_STAT_NAME, GT_FIGURE_FAMILY_ERRORS_BY_CODE,
                                    gt_code_name ((gt_code_t) code));
}

gt_stat_t *
gt_broker_stats_build (const uint64_t figures [GT_FIGURE_COUNT_], const uint64_t by_cmd [GT_CMD_COUNT_],
                       const uint64_t by_code [GT_CODE_COUNT_], gt_broker_metrics_t *metrics, size_t *count_p)
{
    pthread_once (&s_names_once, s_names_init);
    gt_stat_t *stats = (gt_stat_t *) calloc (S_MAX_STATS, sizeof (gt_stat_t));
    assert (stats);
    size_t count = 0;
    for (size_t figure = 0; figure < GT_FIGURE_COUNT_; figure++)
        s_add (stats, &count, gt_figures [figure].stat, figures [figure]);
    for (int cmd = 0; cmd < GT_CMD_COUNT_; cmd++)
        if (cmd != GT_CMD_NONE)
            s_add (stats, &count, s_request_names [cmd], by_cmd [cmd]);
    for (int code = 0; code < GT_CODE_COUNT_; code++)
        if (code != GT_OK)
            s_add (stats, &count, s_error_names [code], by_code [code]);
    if (metrics)
        gt_broker_metrics_stats (metrics, stats, &count, S_MAX_STATS);
    *count_p = count;
    return stats;
}

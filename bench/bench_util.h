/*  bench_util.h — what the benchmarks share: the daemon as a child process
    (start, ready line, stop), clocks, percentiles, RSS.  Not installed.  */

#ifndef BENCH_UTIL_H_INCLUDED
#define BENCH_UTIL_H_INCLUDED

#include "garbagetruck.h"
#include <sys/types.h>

typedef struct {
    pid_t pid;                      //  broker process
    char endpoint [64];             //  requests
    char events [64];               //  events
} bench_broker_t;

//  Monotonic clock, microseconds.
int64_t
    bench_now_us (void);

//  Wall clock, milliseconds since the epoch.
int64_t
    bench_wall_ms (void);

//  qsort comparator for int64_t, ascending.
int
    bench_cmp_i64 (const void *a, const void *b);

//  The p-quantile (0..1) of count sorted values; 0 when there are none.
int64_t
    bench_percentile (int64_t *sorted, size_t count, double p);

//  Resident set size of process pid in kB, or -1.
long
    bench_rss_kb (pid_t pid);

//  Start the daemon (GT_BROKER_BIN, default GT_DEFAULT_BROKER_BIN) on
//  ephemeral ports with a lifted per-service limit, then flags; env: NULL or
//  NULL-terminated name, value pairs set in the child.  Waits for the ready
//  line and parses its endpoints; *ready_us (if not NULL): process start to
//  ready line.  name prefixes error messages.  0, or -1 after a message.
int
    bench_broker_start (bench_broker_t *broker, const char *name, const char *flags,
                        const char *const *env, int64_t *ready_us);

//  SIGTERM the daemon and reap it.
void
    bench_broker_stop (bench_broker_t *broker);

#endif

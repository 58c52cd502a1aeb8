/*  bench_util.c — what the benchmarks share (see bench_util.h).  */

#include "bench_util.h"
#include <signal.h>
#include <sys/wait.h>

int64_t
bench_now_us (void)
{
    struct timespec ts;
    clock_gettime (CLOCK_MONOTONIC, &ts);
    return (int64_t) ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

int64_t
bench_wall_ms (void)
{
    struct timespec ts;
    clock_gettime (CLOCK_REALTIME, &ts);
    return (int64_t) ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int
bench_cmp_i64 (const void *a, const void *b)
{
    int64_t x = *(const int64_t *) a, y = *(const int64_t *) b;
    return (x > y) - (x < y);
}

int64_t
bench_percentile (int64_t *sorted, size_t count, double p)
{
    if (count == 0)
        return 0;
    size_t index = (size_t) (p * (double) (count - 1) + 0.5);
    return sorted [index];
}

long
bench_rss_kb (pid_t pid)
{
    char path [64];
    snprintf (path, sizeof path, "/proc/%d/status", (int) pid);
    FILE *file = fopen (path, "r");
    if (!file)
        return -1;
    char line [256];
    long kb = -1;
    while (fgets (line, sizeof line, file))
        if (sscanf (line, "VmRSS: %ld kB", &kb) == 1)
            break;
    fclose (file);
    return kb;
}

int
bench_broker_start (bench_broker_t *broker, const char *name, const char *flags,
                    const char *const *env, int64_t *ready_us)
{
    const char *bin = getenv ("GT_BROKER_BIN");
    if (!bin)
        bin = GT_DEFAULT_BROKER_BIN;
    char command [1024];
    snprintf (command, sizeof command,
              "exec %s --port 0 --events-port 0 --max-leases-per-service 100000000 %s",
              bin, flags);
    int out [2];
    if (pipe (out))
        return -1;
    int64_t started = bench_now_us ();
    broker->pid = fork ();
    if (broker->pid == 0) {
        for (size_t index = 0; env && env [index] && env [index + 1]; index += 2)
            setenv (env [index], env [index + 1], 1);
        dup2 (out [1], STDOUT_FILENO);
        close (out [0]);
        close (out [1]);
        execl ("/bin/sh", "sh", "-c", command, (char *) NULL);
        _exit (127);
    }
    close (out [1]);
    FILE *stream = fdopen (out [0], "r");
    char line [512] = "";
    if (!stream || !fgets (line, sizeof line, stream)) {
        fprintf (stderr, "%s: broker did not start (%s)\n", name, command);
        return -1;
    }
    if (ready_us)
        *ready_us = bench_now_us () - started;
    fclose (stream);
    if (sscanf (line, "garbagetruck ready requests=%63s events=%63s",
                broker->endpoint, broker->events) != 2) {
        fprintf (stderr, "%s: unexpected ready line: %s", name, line);
        return -1;
    }
    return 0;
}

void
bench_broker_stop (bench_broker_t *broker)
{
    if (broker->pid > 0) {
        kill (broker->pid, SIGTERM);
        waitpid (broker->pid, NULL, 0);
        broker->pid = 0;
    }
}

/*  delivery_bench.c — cleanup callback delivery: throughput and memory.
    Not a test: prints numbers, asserts nothing about them.

    1. Throughput: N jobs (default 10,000) submitted at once to a local
       libmicrohttpd server answering 200; time until the last DELIVERED.
       Run with the default caps (32 per endpoint) and with 256 per endpoint.
    2. Memory: M jobs (default 100,000) to an endpoint that refuses
       connections, 1 h retry base: RSS once every job has made its first
       attempt and waits in backoff; then one more submit must be refused.

    Usage: delivery_bench [jobs] [pending-jobs]  */

#include "gt_delivery.h"
#include "gt_http_server.h"
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>

static long
s_rss_kb (void)
{
    FILE *file = fopen ("/proc/self/status", "r");
    if (!file)
        return -1;
    char line [256];
    long rss = -1;
    while (fgets (line, sizeof (line), file))
        if (strncmp (line, "VmRSS:", 6) == 0)
            rss = atol (line + 6);
    fclose (file);
    return rss;
}

static gt_callback_job_t *
s_job (uint64_t id, const char *url, uint32_t max_retries, uint32_t retry_delay_ms)
{
    char lease_id [33];
    snprintf (lease_id, sizeof (lease_id), "%032" PRIx64, id);
    char object_id [64];
    snprintf (object_id, sizeof (object_id), "/tmp/upload-%" PRIu64 ".jpg", id);
    gt_meta_entry_t entries [] = { { .key = "path", .value = object_id } };
    gt_meta_t metadata = { .entries = entries, .count = 1 };
    gt_callback_fields_t fields = {
        .lease_id = lease_id, .object_id = object_id, .object_type = "TEMPORARY_FILE",
        .service_id = "upload-service", .metadata = &metadata,
        .payload = "custom-cleanup-data", .reason = "expired", .seq = id, .fence = 1
    };
    gt_callback_job_t *job = gt_callback_job_new (id, url, &fields);
    assert (job);
    gt_callback_job_set_retry (job, max_retries, retry_delay_ms);
    return job;
}

//  Read outcomes until `count` of kind arrived; returns false on a 60 s stall
static bool
s_collect (gt_delivery_t *delivery, gt_delivery_kind_t kind, size_t count, size_t *other_p)
{
    zpoller_t *poller = zpoller_new (gt_delivery_sock (delivery), NULL);
    size_t seen = 0;
    while (seen < count) {
        if (!zpoller_wait (poller, 60000))
            break;
        gt_delivery_outcome_t outcome;
        if (gt_delivery_recv (delivery, &outcome))
            break;
        if (outcome.kind == kind)
            seen++;
        else
        if (other_p && outcome.kind != GT_DELIVERY_ATTEMPT)
            (*other_p)++;
        free (outcome.error);
    }
    zpoller_destroy (&poller);
    return seen == count;
}

static void
s_throughput (size_t jobs, size_t per_host, const char *secret)
{
    gt_http_server_t *server = gt_http_server_new ();
    assert (server);
    gt_http_server_set_recording (server, false);
    char *url = gt_http_server_url (server, "/cleanup");
    gt_delivery_config_t config;
    gt_delivery_config_init (&config);
    config.max_per_host = per_host;
    config.secret = secret;
    gt_delivery_t *delivery = gt_delivery_new (&config);
    assert (delivery);

    int64_t start = zclock_usecs ();
    for (size_t i = 0; i < jobs; i++) {
        gt_callback_job_t *job = s_job (i + 1, url, 3, 10);
        int rc = gt_delivery_submit (delivery, &job);
        assert (rc == 0);
    }
    int64_t submitted = zclock_usecs ();
    size_t dead = 0;
    bool complete = s_collect (delivery, GT_DELIVERY_DELIVERED, jobs, &dead);
    int64_t done = zclock_usecs ();
    double seconds = (double) (done - start) / 1e6;
    printf ("| throughput | %6zu jobs | per-host %3zu | %-8s | %8.0f callbacks/s | %6.3f s (submit %.3f s) | server saw %zu | dead %zu%s |\n",
            jobs, per_host, secret? "signed": "unsigned", jobs / seconds, seconds,
            (double) (submitted - start) / 1e6, gt_http_server_count (server), dead,
            complete? "": " INCOMPLETE");
    gt_delivery_destroy (&delivery);
    free (url);
    gt_http_server_destroy (&server);
}

static void
s_memory (size_t jobs)
{
    //  Bound, never listening: connections are refused at once
    int fd = socket (AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in address = { .sin_family = AF_INET };
    address.sin_addr.s_addr = htonl (INADDR_LOOPBACK);
    socklen_t size = sizeof (address);
    if (fd < 0 || bind (fd, (struct sockaddr *) &address, sizeof (address))
    ||  getsockname (fd, (struct sockaddr *) &address, &size)) {
        printf ("| memory | cannot bind a refusing socket |\n");
        return;
    }
    char url [64];
    snprintf (url, sizeof (url), "http://127.0.0.1:%d/cleanup", ntohs (address.sin_port));

    gt_delivery_config_t config;
    gt_delivery_config_init (&config);
    config.max_pending = jobs;
    gt_delivery_t *delivery = gt_delivery_new (&config);
    assert (delivery);
    long before = s_rss_kb ();
    int64_t start = zclock_usecs ();
    for (size_t i = 0; i < jobs; i++) {
        gt_callback_job_t *job = s_job (i + 1, url, 10, 3600000);
        int rc = gt_delivery_submit (delivery, &job);
        assert (rc == 0);
    }
    long submitted = s_rss_kb ();
    //  Every job makes its first attempt (refused) and goes into backoff
    bool complete = s_collect (delivery, GT_DELIVERY_ATTEMPT, jobs, NULL);
    double seconds = (double) (zclock_usecs () - start) / 1e6;
    long waiting = s_rss_kb ();
    gt_callback_job_t *extra = s_job (jobs + 1, url, 10, 3600000);
    bool refused = gt_delivery_submit (delivery, &extra) == -1;
    gt_callback_job_destroy (&extra);
    printf ("| memory | %6zu pending | RSS before %ld KiB | after submit +%ld KiB | in backoff +%ld KiB (%ld B/job) | first attempts %.1f s (%.0f/s) | extra submit %s%s |\n",
            jobs, before, submitted - before, waiting - before,
            (waiting - before) * 1024 / (long) jobs, seconds, jobs / seconds,
            refused? "refused": "ACCEPTED", complete? "": " INCOMPLETE");
    size_t pending = gt_delivery_pending (delivery);
    int64_t stop = zclock_usecs ();
    gt_delivery_destroy (&delivery);
    printf ("| shutdown | %6zu pending dropped in %.3f s |\n",
            pending, (double) (zclock_usecs () - stop) / 1e6);
    close (fd);
}

int
main (int argc, char *argv [])
{
    size_t jobs = argc > 1? (size_t) atol (argv [1]): 10000;
    size_t pending = argc > 2? (size_t) atol (argv [2]): 100000;
    printf ("delivery_bench: %zu jobs, %zu pending\n", jobs, pending);
    s_throughput (jobs, 32, NULL);
    s_throughput (jobs, 32, "bench-secret");
    s_throughput (jobs, 256, NULL);
    s_memory (pending);
    return 0;
}

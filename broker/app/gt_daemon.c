/*  gt_daemon.c — the broker daemon (garbagetruck): settings, the actor, signals.

    Reads a config file (--config FILE, GC_CONFIG, or
    /etc/garbagetruck/garbagetruck.conf if it exists), then GC_* environment
    variables, then flags (--help lists them; gt_config.h); binds
    requests and events on GC_SERVER_HOST, and the metrics HTTP port on
    GC_METRICS_HOST unless GC_METRICS_PORT is 0; prints one "ready" line
    (with " metrics=http://host:port" at the end when metrics are on); runs
    until SIGINT or SIGTERM.  Exit 0 on a clean stop, 2 on a bad setting,
    1 if it cannot start (a port in use, a database it cannot use), 3
    after stepping down (PostgreSQL: another broker took its shards).  Logs (gt_log: GC_LOG_LEVEL,
    GC_LOG_FORMAT) go to stderr; --verbose means GC_LOG_LEVEL=debug.  */
#include <czmq.h>
#if defined (__GLIBC__)
#   include <malloc.h>
#endif
#include "gt_broker.h"
#include "gt_config.h"
#include "gt_store.h"
#include "gt_storage.h"
#include "gt_callback.h"
#include "gt_log.h"
#include "gt_metrics_http.h"

//  Exit status after stepping down (another broker took the shards): a
//  supervisor restarts the broker, which then waits as a standby
#define S_EXIT_STEPPED_DOWN     3

//  The effective configuration, for the start log line
typedef struct {
    const char *fields [128];       //  key, value pairs
    size_t pairs;                   //  how many
    char values [8192];             //  the values' text
    size_t used;                    //  bytes of values used
} s_described_t;

static void
s_describe (void *ctx, const char *name, const char *value)
{
    s_described_t *described = (s_described_t *) ctx;
    if (!value || described->pairs + 1 >= sizeof (described->fields) / sizeof (described->fields [0]) / 2)
        return;
    size_t length = strlen (value) + 1;
    if (described->used + length > sizeof (described->values))
        return;
    char *copy = described->values + described->used;
    memcpy (copy, value, length);
    described->used += length;
    described->fields [2 * described->pairs] = name;
    described->fields [2 * described->pairs + 1] = copy;
    described->pairs++;
}

//  GC_CALLBACK_ALLOW's entries must parse as URL prefixes (an entry that
//  does not would match nothing): checked where the value is read, so that
//  a config file's error names its file and line
static bool
s_check_callback_allow (const char *value, char *err, size_t err_size)
{
    if (gt_callback_allow_check (value, err, err_size))
        return true;
    //  gt_config puts the setting's name (or flag, or file:line) first
    const char *prefix = "GC_CALLBACK_ALLOW: ";
    size_t length = strlen (prefix);
    if (strncmp (err, prefix, length) == 0)
        memmove (err, err + length, strlen (err + length) + 1);
    return false;
}

//  host as it goes in a URL: IPv6 addresses in brackets
static void
s_url_host (const char *host, char *out, size_t size)
{
    snprintf (out, size, strchr (host, ':') ? "[%s]" : "%s", host);
}

//  Bind one socket of the actor; return the port or -1.
static int
s_bind (zactor_t *broker, const char *command, const char *host, int port)
{
    char endpoint [300];
    if (port == 0)
        snprintf (endpoint, sizeof (endpoint), "tcp://%s:*", host);
    else
        snprintf (endpoint, sizeof (endpoint), "tcp://%s:%d", host, port);
    zstr_sendx (broker, command, endpoint, NULL);
    char *reply = zstr_recv (broker);
    int bound = reply ? atoi (reply) : -1;
    zstr_free (&reply);
    if (bound > 0 || (bound == 0 && port > 0))
        return bound > 0 ? bound : port;
    fprintf (stderr, "garbagetruck: cannot bind %s\n", endpoint);
    return -1;
}

int
main (int argc, char *argv [])
{
#if defined (__GLIBC__)
    //  Blocks of 4 MiB and more are mapped on their own, and unmapped when
    //  freed, always: glibc raises that threshold to the size of the last
    //  such block freed (up to 32 MiB), and then puts the next ones in its
    //  heap, where the arrays a growing index frees (1.5 times smaller
    //  each) stay resident until other allocations happen to fill them.  At
    //  a million leases that was 1 - 7 MB more, from one run to the next.
    //  (Not lower: the PostgreSQL writer's row arrays of a batch, freed
    //  after each, would then be mapped and faulted in for every batch.)
    mallopt (M_MMAP_THRESHOLD, 4 * 1024 * 1024);
#endif
    gt_config_t *config = gt_config_new ();
    char err [1024] = "";
    //  A GC_CALLBACK_ALLOW entry that does not parse would match nothing:
    //  say so at start, not at the first CREATE it unexpectedly refuses
    gt_config_set_check ("GC_CALLBACK_ALLOW", s_check_callback_allow);
    gt_config_result_t result = gt_config_load (config, argc, argv, err, sizeof (err));
    if (result == GT_CONFIG_HELP) {
        gt_config_destroy (&config);
        return 0;
    }
    gt_log_level_t level = GT_LOG_INFO;
    gt_log_format_t format = GT_LOG_TEXT;
    if (result == GT_CONFIG_ERROR || !gt_storage_available (config, err, sizeof (err))) {
        fprintf (stderr, "garbagetruck: %s\n", err);
        gt_config_destroy (&config);
        return 2;
    }
    //  gt_config accepted them: they parse
    gt_log_parse_level (config->log_level, &level);
    gt_log_parse_format (config->log_format, &format);
    gt_log_set_level (config->verbose ? GT_LOG_DEBUG : level);
    gt_log_set_format (format);
    s_described_t *described = (s_described_t *) zmalloc (sizeof (s_described_t));
    assert (described);
    described->fields [0] = "version";
    described->fields [1] = GT_VERSION_STRING;
    described->fields [2] = "log_level";
    described->fields [3] = gt_log_level_name (gt_log_level ());
    described->pairs = 2;
    if (config->config_file) {
        described->fields [4] = "config";
        described->fields [5] = config->config_file;
        described->pairs = 3;
    }
    gt_config_describe (config, s_describe, described);
    gt_log_fields (GT_LOG_INFO, "garbagetruck", "starting", described->fields, described->pairs);
    free (described);
    //  stdout carries the ready line only; logs go to stderr
    zsys_set_logstream (stderr);
    zsys_set_logident ("garbagetruck");
    //  The store first (PostgreSQL: connect, migrate), so that a database
    //  that cannot be used stops the start with its own message
    gt_store_t *store = gt_storage_open (config, err, sizeof (err));
    if (!store) {
        fprintf (stderr, "garbagetruck: cannot open the %s store: %s\n", config->storage, err);
        gt_config_destroy (&config);
        return 1;
    }
    gt_broker_args_t args = { config, store };      //  the actor recovers from it, then owns it
    zactor_t *broker = zactor_new (gt_broker_actor_on_store, &args);
    assert (broker);
    if (zsys_interrupted) {
        //  Stopped while a standby, before it owned anything
        zactor_destroy (&broker);
        gt_config_destroy (&config);
        gt_log_info ("garbagetruck", "stopped");
        return 0;
    }
    if (config->verbose) {
        zstr_send (broker, "VERBOSE");
        char *ok = zstr_recv (broker);
        zstr_free (&ok);
    }
    int port = s_bind (broker, "BIND", config->host, config->port);
    int events_port = port > 0 ? s_bind (broker, "EVENTS", config->host, config->events_port) : -1;
    //  Metrics: GC_METRICS_PORT 0 = off, -1 = auto (the kernel picks)
    char metrics [320] = "";
    int metrics_port = 0;
    if (port > 0 && events_port > 0 && config->metrics_port != 0) {
        char host [256];
        s_url_host (config->metrics_host, host, sizeof (host));
        char endpoint [300];
        if (config->metrics_port < 0)
            snprintf (endpoint, sizeof (endpoint), "http://%s:*", host);
        else
            snprintf (endpoint, sizeof (endpoint), "http://%s:%d", host, config->metrics_port);
        //  The default port is best effort: another broker (or a
        //  Prometheus, whose default it is too) may hold it.  Looked at
        //  first, so that its clash is one WARN (the actor would log an
        //  ERROR); a port that was asked for must be served
        char why [256] = "";
        if (config->metrics_port > 0
        && !gt_metrics_http_port_free (config->metrics_host, config->metrics_port, why, sizeof (why))) {
            if (config->metrics_port_chosen) {
                fprintf (stderr, "garbagetruck: cannot serve metrics on %s: %s (GC_METRICS_PORT)\n",
                         endpoint, why);
                metrics_port = -1;
            }
            else
                gt_log_warn ("garbagetruck", "cannot serve metrics on %s (%s; the default port): "
                             "running without them; set GC_METRICS_PORT to choose a port", endpoint, why);
        }
        else {
            zstr_sendx (broker, "METRICS", endpoint, NULL);
            char *reply = zstr_recv (broker);
            metrics_port = reply ? atoi (reply) : -1;
            zstr_free (&reply);
            if (metrics_port > 0)
                snprintf (metrics, sizeof (metrics), " metrics=http://%s:%d", host, metrics_port);
            else
            if (config->metrics_port_chosen)
                fprintf (stderr, "garbagetruck: cannot serve metrics on %s\n", endpoint);
            else {
                //  Taken between the look and the bind (the actor logged why)
                gt_log_warn ("garbagetruck", "cannot serve metrics on %s (the default port): "
                             "running without them; set GC_METRICS_PORT to choose a port", endpoint);
                metrics_port = 0;
            }
        }
    }
    int rc = 0;
    if (port > 0 && events_port > 0 && metrics_port >= 0) {
        printf ("garbagetruck ready requests=tcp://%s:%d events=tcp://%s:%d%s\n",
                config->host, port, config->host, events_port, metrics);
        fflush (stdout);
        char requests [300], events [300];
        snprintf (requests, sizeof (requests), "tcp://%s:%d", config->host, port);
        snprintf (events, sizeof (events), "tcp://%s:%d", config->host, events_port);
        gt_log_kv (GT_LOG_INFO, "garbagetruck", "ready", "requests", requests, "events", events,
                   "metrics", *metrics ? metrics + 9 : NULL, NULL);
        //  Signals set zsys_interrupted; whichever thread takes the signal,
        //  we notice within the poll period
        zpoller_t *poller = zpoller_new (broker, NULL);
        while (!zsys_interrupted) {
            zsock_t *which = (zsock_t *) zpoller_wait (poller, 100);
            if (which) {
                //  The actor speaks unasked only when it stepped down:
                //  another broker took its shards (docs/CLUSTER.md)
                char *message = zstr_recv (broker);
                bool stopped = message && streq (message, "STOPPED");
                if (!stopped)
                    gt_log_warn ("garbagetruck", "unexpected message from the broker: %s",
                                 message ? message : "(null)");
                zstr_free (&message);
                if (stopped) {
                    rc = S_EXIT_STEPPED_DOWN;
                    break;
                }
            }
        }
        zpoller_destroy (&poller);
        if (rc == 0)
            gt_log_info ("garbagetruck", "stopping (signal received)");
        else
            gt_log_error ("garbagetruck", "stopped: the broker stepped down (another broker owns its "
                          "shards); exit %d, to be restarted as a standby", rc);
    }
    else
        rc = 1;
    zactor_destroy (&broker);
    gt_config_destroy (&config);
    if (rc == 0)
        gt_log_info ("garbagetruck", "stopped");
    return rc;
}

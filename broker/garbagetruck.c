/*  garbagetruck.c — the broker daemon: settings, the actor, signals.

    Reads GC_* environment variables, then flags (--help lists them); binds
    requests and events on GC_SERVER_HOST; prints one "ready" line; runs
    until SIGINT or SIGTERM.  Exit 0 on a clean stop, 2 on a bad setting,
    1 if it cannot start (a port in use).  */
#include <czmq.h>
#include "gt_broker.h"
#include "gt_config.h"
#include "gt_store.h"

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
    gt_config_t *config = gt_config_new ();
    char err [512] = "";
    gt_config_result_t result = gt_config_load (config, argc, argv, err, sizeof (err));
    if (result == GT_CONFIG_HELP) {
        gt_config_destroy (&config);
        return 0;
    }
    if (result == GT_CONFIG_ERROR || !gt_store_available (config, err, sizeof (err))) {
        fprintf (stderr, "garbagetruck: %s\n", err);
        gt_config_destroy (&config);
        return 2;
    }
    //  stdout carries the ready line only; logs go to stderr
    zsys_set_logstream (stderr);
    zsys_set_logident ("garbagetruck");
    zactor_t *broker = zactor_new (gt_broker_actor, config);
    assert (broker);
    if (config->verbose) {
        zstr_send (broker, "VERBOSE");
        char *ok = zstr_recv (broker);
        zstr_free (&ok);
    }
    int port = s_bind (broker, "BIND", config->host, config->port);
    int events_port = port > 0 ? s_bind (broker, "EVENTS", config->host, config->events_port) : -1;
    int rc = 0;
    if (port > 0 && events_port > 0) {
        printf ("garbagetruck ready requests=tcp://%s:%d events=tcp://%s:%d\n",
                config->host, port, config->host, events_port);
        fflush (stdout);
        //  Signals set zsys_interrupted; whichever thread takes the signal,
        //  we notice within the poll period
        zpoller_t *poller = zpoller_new (broker, NULL);
        while (!zsys_interrupted) {
            zsock_t *which = (zsock_t *) zpoller_wait (poller, 100);
            if (which) {
                //  The actor only speaks when asked: anything else is odd
                char *message = zstr_recv (broker);
                zsys_warning ("unexpected message from the broker: %s", message ? message : "(null)");
                zstr_free (&message);
            }
        }
        zpoller_destroy (&poller);
    }
    else
        rc = 1;
    zactor_destroy (&broker);
    gt_config_destroy (&config);
    return rc;
}

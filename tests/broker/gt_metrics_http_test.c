/*  gt_metrics_http_test.c — selftest of gt_metrics_http: endpoints parsed,
    /healthz, /readyz and /metrics served from what a stand-in broker loop
    (gt_metrics_test_broker) publishes, over real HTTP on 127.0.0.1.  */
#include <czmq.h>
#include <jansson.h>
#include "gt_metrics_http.h"
#include "gt_broker_selftest.h"
#include "gt_http_client.h"

static zactor_t *
s_start_broker (gt_metrics_t *metrics)
{
    zactor_t *broker = zactor_new (gt_metrics_test_broker, metrics);
    assert (broker);
    return broker;
}

void
gt_metrics_http_test (bool verbose)
{
    (void) verbose;
    //  Endpoints
    char host [64];
    int port = -1;
    assert (gt_metrics_http_parse_endpoint ("http://127.0.0.1:9090", host, sizeof (host), &port));
    assert (streq (host, "127.0.0.1") && port == 9090);
    assert (gt_metrics_http_parse_endpoint ("http://localhost:*", host, sizeof (host), &port));
    assert (streq (host, "localhost") && port == 0);
    assert (gt_metrics_http_parse_endpoint ("http://[::1]:80", host, sizeof (host), &port));
    assert (streq (host, "::1") && port == 80);
    assert (!gt_metrics_http_parse_endpoint ("tcp://127.0.0.1:80", host, sizeof (host), &port));
    assert (!gt_metrics_http_parse_endpoint ("http://127.0.0.1", host, sizeof (host), &port));
    assert (!gt_metrics_http_parse_endpoint ("http://:80", host, sizeof (host), &port));
    assert (!gt_metrics_http_parse_endpoint ("http://h:70000", host, sizeof (host), &port));
    assert (!gt_metrics_http_parse_endpoint ("http://h:8x", host, sizeof (host), &port));
    assert (!gt_metrics_http_parse_endpoint ("http://[::1]80", host, sizeof (host), &port));

    //  A bad host is an error with a message, not a crash
    char err [256] = "";
    gt_metrics_t *metrics = gt_metrics_new ();
    assert (gt_metrics_http_new (metrics, "no.such.host.invalid", 0, err, sizeof (err)) == NULL);
    assert (*err);

    //  What the stand-in broker will publish: sockets half bound
    gt_metrics_snapshot_t *scratch = gt_metrics_scratch (metrics);
    snprintf (scratch->store_name, sizeof (scratch->store_name), "memory");
    scratch->store_open = scratch->store_up = scratch->requests_bound = true;
    scratch->events_bound = false;
    scratch->stat_count = 1;
    snprintf (scratch->stats [0].name, GT_METRICS_STAT_NAME, "leases_created");
    scratch->stats [0].value = 3;
    gt_metrics_http_t *http = gt_metrics_http_new (metrics, "127.0.0.1", 0, err, sizeof (err));
    assert (http);
    port = gt_metrics_http_port (http);
    assert (port > 0);
    zactor_t *broker = s_start_broker (metrics);

    int status = 0;
    char *type = NULL;
    char *body = gt_http_client_request (port, "GET", "/healthz", &status, &type);
    assert (body && status == 200 && type && streq (type, "application/json"));
    json_error_t error;
    json_t *json = json_loads (body, 0, &error);
    assert (json && streq (json_string_value (json_object_get (json, "status")), "ok"));
    json_decref (json);
    free (body);
    free (type);

    body = gt_http_client_request (port, "GET", "/readyz", &status, NULL);
    assert (body && status == 503);
    json = json_loads (body, 0, &error);
    assert (json && json_is_false (json_object_get (json, "ready")));
    json_t *reasons = json_object_get (json, "reasons");
    assert (json_array_size (reasons) == 1);
    assert (strstr (json_string_value (json_array_get (reasons, 0)), "events socket"));
    json_decref (json);
    free (body);

    body = gt_http_client_request (port, "GET", "/metrics", &status, &type);
    assert (body && status == 200 && streq (type, GT_METRICS_CONTENT_TYPE));
    assert (strstr (body, "\ngc_leases_created_total 3\n"));
    assert (strstr (body, "# TYPE gc_request_duration_seconds histogram\n"));
    free (body);
    free (type);

    body = gt_http_client_request (port, "GET", "/nope", &status, NULL);
    assert (body && status == 404);
    free (body);
    body = gt_http_client_request (port, "POST", "/metrics", &status, NULL);
    assert (body && status == 405);
    free (body);
    //  HEAD: headers only
    body = gt_http_client_request (port, "HEAD", "/healthz", &status, NULL);
    assert (body && status == 200 && *body == 0);
    free (body);

    //  All bound: ready
    zactor_destroy (&broker);
    scratch->events_bound = true;
    broker = s_start_broker (metrics);
    body = gt_http_client_request (port, "GET", "/readyz", &status, NULL);
    assert (body && status == 200);
    json = json_loads (body, 0, &error);
    assert (json && json_is_true (json_object_get (json, "ready")));
    assert (streq (json_string_value (json_object_get (json, "store")), "memory"));
    json_decref (json);
    free (body);

    //  Store degraded: not ready, with the reason
    zactor_destroy (&broker);
    scratch->store_up = false;
    broker = s_start_broker (metrics);
    body = gt_http_client_request (port, "GET", "/readyz", &status, NULL);
    assert (body && status == 503 && strstr (body, "degraded"));
    free (body);
    body = gt_http_client_request (port, "GET", "/metrics", &status, NULL);
    assert (body && status == 200 && strstr (body, "\ngc_store_up 0\n"));
    free (body);

    //  Nobody publishing: /metrics serves the latest after the wait, and
    //  /readyz says the broker is not answering; /healthz is unaffected
    zactor_destroy (&broker);
    body = gt_http_client_request (port, "GET", "/metrics", &status, NULL);
    assert (body && status == 200 && strstr (body, "\ngc_leases_created_total 3\n"));
    free (body);
    body = gt_http_client_request (port, "GET", "/readyz", &status, NULL);
    assert (body && status == 503 && strstr (body, "did not answer"));
    free (body);
    body = gt_http_client_request (port, "GET", "/healthz", &status, NULL);
    assert (body && status == 200);
    free (body);

    gt_metrics_http_destroy (&http);
    assert (http == NULL);
    //  The port is closed with it
    assert (gt_http_client_request (port, "GET", "/healthz", &status, NULL) == NULL);
    gt_metrics_destroy (&metrics);
}

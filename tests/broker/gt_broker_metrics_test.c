/*  gt_broker_metrics_test.c — selftest of gt_broker_metrics (a real broker actor, its HTTP endpoint and STATS), kept out of the
    production library.  */
#include <czmq.h>
#include "gt_broker.h"
#include "gt_msg.h"
#include "gt_metrics.h"
#include "gt_metrics_http.h"
#include "gt_broker_selftest.h"
#include "gt_http_client.h"

//  --------------------------------------------------------------------------
//  Self test: a real broker actor, its HTTP endpoint and STATS

static uint64_t s_rid = 0;

static gt_msg_t *
s_call (zsock_t *dealer, gt_msg_t *request)
{
    request->kind = GT_MSG_REQUEST;
    request->version = GT_PROTOCOL_VERSION;
    request->rid = ++s_rid;
    void *data;
    size_t size;
    int rc = gt_msg_encode_alloc (request, &data, &size);
    assert (rc == 0);
    rc = zmq_send (zsock_resolve (dealer), data, size, 0);
    assert (rc == (int) size);
    free (data);
    zpoller_t *poller = zpoller_new (dealer, NULL);
    gt_msg_t *reply = NULL;
    while (!reply && zpoller_wait (poller, 5000)) {
        zframe_t *frame = zframe_recv (dealer);
        char err [128];
        gt_code_t code = gt_msg_decode (zframe_data (frame), zframe_size (frame), GT_MSG_REPLY,
                                        &reply, NULL, err, sizeof (err));
        assert (code == GT_OK);
        zframe_destroy (&frame);
        if (reply->rid != s_rid)
            gt_msg_destroy (&reply);
    }
    zpoller_destroy (&poller);
    assert (reply);
    return reply;
}

static gt_msg_t *
s_create (zsock_t *dealer, const char *object_id, gt_object_type_t type, const char *service_id,
          uint64_t ttl_ms)
{
    gt_msg_t request;
    memset (&request, 0, sizeof (request));
    request.cmd = GT_CMD_CREATE;
    request.object_id = (char *) object_id;
    request.object_type = type;
    request.has_object_type = true;
    request.service_id = (char *) service_id;
    request.ttl_ms = ttl_ms;
    request.has_ttl = true;
    return s_call (dealer, &request);
}

static uint64_t
s_stat (zsock_t *dealer, const char *name)
{
    gt_msg_t request;
    memset (&request, 0, sizeof (request));
    request.cmd = GT_CMD_STATS;
    gt_msg_t *reply = s_call (dealer, &request);
    uint64_t value = UINT64_MAX;
    for (size_t i = 0; i < reply->stat_count; i++)
        if (streq (reply->stats [i].name, name))
            value = reply->stats [i].value;
    gt_msg_destroy (&reply);
    assert (value != UINT64_MAX);
    return value;
}

//  The value of the sample line "name value" in an exposition, or -1.
static double
s_sample (const char *text, const char *name)
{
    char *pattern = zsys_sprintf ("\n%s ", name);
    const char *found = strstr (text, pattern);
    double value = found ? atof (found + strlen (pattern)) : -1;
    zstr_free (&pattern);
    return value;
}

static char *
s_metrics (int port)
{
    int status = 0;
    char *body = gt_http_client_request (port, "GET", "/metrics", &status, NULL);
    assert (body && status == 200);
    return body;
}

static zactor_t *
s_broker (const char *storage, zsock_t **dealer_p, int *metrics_port_p)
{
    gt_config_t *config = gt_config_new ();
    config->min_lease_ms = 20;
    gt_config_set_storage (config, storage);
    zactor_t *broker = zactor_new (gt_broker_actor, config);
    gt_config_destroy (&config);
    zstr_sendx (broker, "BIND", "tcp://127.0.0.1:*", NULL);
    char *port = zstr_recv (broker);
    assert (port && atoi (port) > 0);
    char endpoint [64];
    snprintf (endpoint, sizeof (endpoint), "tcp://127.0.0.1:%s", port);
    zstr_free (&port);
    zstr_sendx (broker, "EVENTS", "tcp://127.0.0.1:*", NULL);
    port = zstr_recv (broker);
    assert (port && atoi (port) > 0);
    zstr_free (&port);
    zstr_sendx (broker, "METRICS", "http://127.0.0.1:*", NULL);
    port = zstr_recv (broker);
    assert (port && atoi (port) > 0);
    *metrics_port_p = atoi (port);
    zstr_free (&port);
    *dealer_p = zsock_new_dealer (endpoint);
    assert (*dealer_p);
    return broker;
}

void
gt_broker_metrics_test (bool verbose)
{
    (void) verbose;
    zsock_t *dealer;
    int port;
    zactor_t *broker = s_broker ("memory", &dealer, &port);

    //  Serving twice, or a bad endpoint: -1
    zstr_sendx (broker, "METRICS", "http://127.0.0.1:*", NULL);
    char *reply_text = zstr_recv (broker);
    assert (streq (reply_text, "-1"));
    zstr_free (&reply_text);
    zstr_sendx (broker, "METRICS", "127.0.0.1:9", NULL);
    reply_text = zstr_recv (broker);
    assert (streq (reply_text, "-1"));
    zstr_free (&reply_text);

    //  A workload: two temporary files of svc-a (one expires), a blob of
    //  svc-b released, one request that fails
    gt_msg_t *reply = s_create (dealer, "file-1", GT_TYPE_TEMPORARY_FILE, "svc-a", 20);
    assert (reply->code == GT_OK);
    gt_msg_destroy (&reply);
    reply = s_create (dealer, "file-2", GT_TYPE_TEMPORARY_FILE, "svc-a", 60000);
    assert (reply->code == GT_OK);
    gt_msg_destroy (&reply);
    reply = s_create (dealer, "blob-1", GT_TYPE_BLOB_STORAGE, "svc-b", 60000);
    assert (reply->code == GT_OK);
    gt_msg_t request;
    memset (&request, 0, sizeof (request));
    request.cmd = GT_CMD_RELEASE;
    request.lease_id = reply->lease->id;
    request.service_id = (char *) "svc-b";
    gt_msg_t *released = s_call (dealer, &request);
    assert (released->code == GT_OK);
    gt_msg_destroy (&released);
    gt_msg_destroy (&reply);
    memset (&request, 0, sizeof (request));
    request.cmd = GT_CMD_GET;
    request.lease_id = (char *) "0123456789abcdef0123456789abcdef";
    reply = s_call (dealer, &request);
    assert (reply->code == GT_ERR_NOT_FOUND);
    gt_msg_destroy (&reply);
    int64_t deadline = zclock_mono () + 5000;
    while (s_stat (dealer, "leases_expired") < 1)
        assert (zclock_mono () < deadline);

    //  STATS carries the metrics figures
    assert (s_stat (dealer, "request_duration_count_create") == 3);
    assert (s_stat (dealer, "request_duration_count_release") == 1);
    assert (s_stat (dealer, "expiry_lateness_count") == 1);
    assert (s_stat (dealer, "active_leases_temporary_file") == 1);
    assert (s_stat (dealer, "active_leases_blob_storage") == 0);
    assert (s_stat (dealer, "store_up") == 1);

    //  /metrics reflects every reply sent before the scrape
    char *text = s_metrics (port);
    assert (s_sample (text, "gc_leases_created_total") == 3);
    assert (s_sample (text, "gc_leases_expired_total") == 1);
    assert (s_sample (text, "gc_leases_released_total") == 1);
    assert (s_sample (text, "gc_active_leases") == 1);
    assert (s_sample (text, "gc_request_errors_total{code=\"NOT_FOUND\"}") == 1);
    assert (s_sample (text, "gc_requests_total{command=\"CREATE\"}") == 3);
    assert (s_sample (text, "gc_request_duration_seconds_count{command=\"CREATE\"}") == 3);
    assert (s_sample (text, "gc_request_duration_seconds_bucket{command=\"CREATE\",le=\"+Inf\"}") == 3);
    assert (s_sample (text, "gc_expiry_lateness_seconds_count") == 1);
    assert (s_sample (text, "gc_active_leases_by_type{object_type=\"TEMPORARY_FILE\"}") == 1);
    assert (s_sample (text, "gc_active_leases_by_service{service=\"svc-a\"}") == 1);
    assert (s_sample (text, "gc_active_leases_by_service{service=\"_other\"}") == 0);
    assert (s_sample (text, "gc_store_up") == 1);
    //  STATS requests so far were answered before the scrape, too
    assert (s_sample (text, "gc_request_duration_seconds_count{command=\"STATS\"}") >= 7);
    free (text);
    int status = 0;
    text = gt_http_client_request (port, "GET", "/readyz", &status, NULL);
    assert (text && status == 200 && strstr (text, "\"ready\":true"));
    free (text);

    //  Service cardinality: the 50 biggest services by name, the rest summed
    for (int service = 0; service < GT_METRICS_TOP_SERVICES + 10; service++) {
        char object [32], name [32];
        snprintf (object, sizeof (object), "many-%d", service);
        snprintf (name, sizeof (name), "svc-%03d", service);
        reply = s_create (dealer, object, GT_TYPE_CUSTOM, name, 60000);
        assert (reply->code == GT_OK);
        gt_msg_destroy (&reply);
    }
    text = s_metrics (port);
    size_t series = 0;
    for (const char *at = text; (at = strstr (at, "\ngc_active_leases_by_service{")); at++)
        series++;
    assert (series == GT_METRICS_TOP_SERVICES + 1);
    //  All hold one lease: ties go by name, so svc-000 .. svc-049 stay and
    //  svc-050 .. svc-059 and svc-a are summed
    assert (s_sample (text, "gc_active_leases_by_service{service=\"svc-000\"}") == 1);
    assert (s_sample (text, "gc_active_leases_by_service{service=\"svc-049\"}") == 1);
    assert (s_sample (text, "gc_active_leases_by_service{service=\"svc-050\"}") == -1);
    assert (s_sample (text, "gc_active_leases_by_service{service=\"svc-a\"}") == -1);
    assert (s_sample (text, "gc_active_leases_by_service{service=\"_other\"}") == 11);
    free (text);
    zsock_destroy (&dealer);
    zactor_destroy (&broker);
    //  A failed batch (the asynchronous test store): tests/test_broker.c,
    //  area store_metrics
}

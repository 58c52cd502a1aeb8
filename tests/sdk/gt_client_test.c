/*  gt_client_test.c — selftest of gt_client, through its public API (test
    code stays out of the installed library).  Re-includes <assert.h>
    without NDEBUG so the checks run in release builds.  */
#undef NDEBUG
#include <assert.h>
#include "garbagetruck.h"
#include "gt_sdk_selftest.h"
#include "gt_test_router.h"

//  Selftest: no broker here (libgarbagetruck cannot link it).  A plain
//  ROUTER socket plays the broker's side of the wire, scripted by the
//  test, to check rids, stale replies and timeouts; the real broker is
//  exercised by tests/test_client.c.

//  Send an OK HEALTH reply (or an error) with rid to routing.
static void
s_router_reply (zsock_t *router, zframe_t *routing, uint64_t rid, gt_code_t code)
{
    gt_msg_t *reply = gt_msg_new (GT_MSG_REPLY);
    reply->rid = rid;
    reply->code = code;
    if (code == GT_OK) {
        reply->status = strdup ("SERVING");
        reply->server_version = strdup (GT_VERSION_STRING);
        reply->store = strdup ("memory");
        reply->store_status = strdup ("OK");
        reply->uptime_ms = 1000;
        reply->now = 1700000000000;
        reply->active_leases = 7;
    }
    else
        reply->message = strdup ("scripted failure");
    gt_test_router_send (router, routing, reply);
    gt_msg_destroy (&reply);
}

void
gt_client_test (bool verbose)
{
    printf (" * gt_client: ");
    if (verbose)
        printf ("\n");

    //  Invalid construction
    assert (gt_client_new (NULL, "svc") == NULL);
    //  No service: requests name none (a CURVE broker takes the key's)
    gt_client_t *anonymous = gt_client_new ("tcp://127.0.0.1:5", NULL);
    assert (anonymous && gt_client_service_id (anonymous) == NULL);
    gt_client_destroy (&anonymous);
    //  CURVE settings: half a pair, or a key that is not one, is refused
    anonymous = gt_client_new ("tcp://127.0.0.1:5", NULL);
    assert (gt_client_set_curve (anonymous, "short", NULL) == -1);
    assert (strstr (gt_client_error (anonymous), "both"));
    assert (gt_client_set_curve (anonymous, "/nonexistent/broker", "/nonexistent/client_secret") == -1);
    assert (strstr (gt_client_error (anonymous), "neither 40 Z85 characters nor a certificate file"));
    gt_client_destroy (&anonymous);
    assert (gt_client_new ("tcp://127.0.0.1:5", "") == NULL);
    char long_service [GT_MAX_SERVICE_ID + 2];
    memset (long_service, 's', sizeof (long_service) - 1);
    long_service [sizeof (long_service) - 1] = 0;
    assert (gt_client_new ("tcp://127.0.0.1:5", long_service) == NULL);
    assert (gt_client_new ("not-an-endpoint", "svc") == NULL);

    //  A ROUTER that plays the broker's side of the wire
    zsock_t *router = zsock_new (ZMQ_ROUTER);
    assert (router);
    zsock_set_linger (router, 0);
    int port = zsock_bind (router, "tcp://127.0.0.1:*");
    assert (port > 0);
    char endpoint [64];
    snprintf (endpoint, sizeof (endpoint), "tcp://127.0.0.1:%d", port);

    gt_client_t *client = gt_client_new (endpoint, "test-service");
    assert (client);
    assert (streq (gt_client_service_id (client), "test-service"));
    assert (gt_client_timeout (client) == GT_CLIENT_DEFAULT_TIMEOUT_MS);
    assert (streq (gt_client_error (client), ""));

    //  Local argument validation: no request is sent
    gt_lease_info_t lease;
    memset (&lease, 0, sizeof (lease));
    assert (gt_client_renew_lease (client, "xyz", 0, &lease) == GT_ERR_INVALID_ARGUMENT);
    assert (strstr (gt_client_error (client), "xyz"));
    assert (!gt_client_timed_out (client));
    assert (gt_client_get_lease (client, NULL, &lease) == GT_ERR_INVALID_ARGUMENT);
    assert (gt_client_release_lease (client, "0123456789ABCDEF0123456789abcdef", false, NULL)
            == GT_ERR_INVALID_ARGUMENT);
    gt_create_args_t no_object = { .ttl_ms = 1000 };
    assert (gt_client_create_lease (client, &no_object, NULL) == GT_ERR_INVALID_ARGUMENT);
    assert (gt_client_create_lease (client, NULL, NULL) == GT_ERR_INVALID_ARGUMENT);
    gt_msg_t sentinel;
    gt_msg_t *reply = &sentinel;        //  must be reset to NULL
    assert (gt_client_renew_leases (client, NULL, 0, 0, &reply) == GT_ERR_INVALID_ARGUMENT);
    assert (reply == NULL);
    const char *bad_batch [] = { "00000000000000000000000000000001", "nope" };
    assert (gt_client_renew_leases (client, bad_batch, 2, 0, NULL) == GT_ERR_INVALID_ARGUMENT);
    gt_list_args_t big_page = { .limit = GT_MAX_PAGE + 1 };
    assert (gt_client_list_leases (client, &big_page, NULL) == GT_ERR_INVALID_ARGUMENT);
    assert (gt_client_replay (client, 0, GT_MAX_PAGE + 1, NULL) == GT_ERR_INVALID_ARGUMENT);
    assert (gt_client_create_db_row_lease (client, "users", NULL, 0, NULL, NULL)
            == GT_ERR_INVALID_ARGUMENT);
    assert (strstr (gt_client_error (client), "row_id"));
    assert (gt_client_create_blob_lease (client, NULL, "k", 0, NULL, NULL)
            == GT_ERR_INVALID_ARGUMENT);
    assert (gt_client_create_session_lease (client, "s", "", 0, NULL, NULL)
            == GT_ERR_INVALID_ARGUMENT);
    assert (gt_client_create_temp_file_lease (client, "", 0, NULL, NULL)
            == GT_ERR_INVALID_ARGUMENT);
    assert (gt_client_create_cache_lease (client, NULL, 0, NULL, NULL)
            == GT_ERR_INVALID_ARGUMENT);
    assert (!(zsock_events (router) & ZMQ_POLLIN));

    //  Pipelined: rids count from 1, replies match in any order
    gt_msg_t *request = gt_msg_new (GT_MSG_REQUEST);
    request->cmd = GT_CMD_HEALTH;
    uint64_t rid1 = gt_client_send (client, request);
    uint64_t rid2 = gt_client_send (client, request);
    assert (rid1 == 1 && rid2 == 2);
    assert (request->rid == 2 && request->version == GT_PROTOCOL_VERSION);
    gt_msg_destroy (&request);

    zframe_t *routing;
    gt_msg_t *received = gt_test_router_recv (router, -1, &routing);
    assert (received->rid == 1 && received->cmd == GT_CMD_HEALTH);
    gt_msg_destroy (&received);
    zframe_t *routing2;
    received = gt_test_router_recv (router, -1, &routing2);
    assert (received->rid == 2);
    gt_msg_destroy (&received);
    zframe_destroy (&routing2);
    s_router_reply (router, routing, 2, GT_OK);
    s_router_reply (router, routing, 1, GT_ERR_INTERNAL);
    reply = gt_client_recv (client, 5000);
    assert (reply && reply->rid == 2 && reply->code == GT_OK);
    assert (reply->active_leases == 7);
    gt_msg_destroy (&reply);
    reply = gt_client_recv (client, 5000);
    assert (reply && reply->rid == 1 && reply->code == GT_ERR_INTERNAL);
    gt_msg_destroy (&reply);
    assert (gt_client_recv (client, 0) == NULL);

    //  The client's service id is sent when the request has none
    request = gt_msg_new (GT_MSG_REQUEST);
    request->cmd = GT_CMD_RENEW;
    request->lease_id = strdup ("0123456789abcdef0123456789abcdef");
    assert (gt_client_send (client, request) == 3);
    assert (request->service_id == NULL);
    gt_msg_destroy (&request);
    zframe_destroy (&routing);
    received = gt_test_router_recv (router, -1, &routing);
    assert (received->rid == 3 && streq (received->service_id, "test-service"));
    gt_msg_destroy (&received);

    //  An unencodable request is refused with rid 0
    request = gt_msg_new (GT_MSG_REQUEST);
    request->cmd = GT_CMD_GET;              //  lease_id missing
    assert (gt_client_send (client, request) == 0);
    assert (strstr (gt_client_error (client), "GET"));
    gt_msg_destroy (&request);

    //  A blocking call discards stale and undecodable replies, then takes
    //  its own: run the call in this thread with the ROUTER scripted first.
    //  Replies to rid 1 (stale) and garbage are queued before the call's
    //  request (rid 5) is even sent; the call must skip both.
    s_router_reply (router, routing, 1, GT_OK);
    gt_test_router_send_raw (router, routing, "\xc1", 1);
    s_router_reply (router, routing, 5, GT_OK);
    uint64_t discarded = gt_client_discarded (client);
    gt_client_set_timeout (client, 5000);
    //  rid 4 was consumed by the failed send; this call is rid 5
    assert (gt_client_health (client, &reply) == GT_OK);
    assert (reply && reply->rid == 5 && streq (reply->status, "SERVING"));
    assert (streq (reply->store, "memory"));
    gt_msg_destroy (&reply);
    assert (gt_client_discarded (client) == discarded + 2);
    received = gt_test_router_recv (router, -1, &routing2);
    assert (received->rid == 5 && received->cmd == GT_CMD_HEALTH);
    gt_msg_destroy (&received);
    zframe_destroy (&routing2);

    //  A broker error surfaces with its message
    s_router_reply (router, routing, 6, GT_ERR_INTERNAL);
    assert (gt_client_stats (client, &reply) == GT_ERR_INTERNAL);
    assert (reply == NULL);
    assert (streq (gt_client_error (client), "scripted failure"));
    assert (!gt_client_timed_out (client));
    received = gt_test_router_recv (router, -1, &routing2);
    assert (received->rid == 6 && received->cmd == GT_CMD_STATS);
    gt_msg_destroy (&received);
    zframe_destroy (&routing2);

    //  A request nobody answers times out within the timeout, distinctly
    gt_client_set_timeout (client, 100);
    int64_t start = zclock_mono ();
    assert (gt_client_get_lease (client, "0123456789abcdef0123456789abcdef", &lease)
            == GT_ERR_UNAVAILABLE);
    int64_t elapsed = zclock_mono () - start;
    assert (elapsed >= 100);
    assert (gt_client_timed_out (client));
    assert (streq (gt_client_error (client), "broker did not answer within 100 ms"));
    //  The late reply to that call is discarded by the next one
    received = gt_test_router_recv (router, -1, &routing2);
    assert (received->rid == 7 && received->cmd == GT_CMD_GET);
    gt_msg_destroy (&received);
    zframe_destroy (&routing2);
    s_router_reply (router, routing, 7, GT_ERR_NOT_FOUND);
    s_router_reply (router, routing, 8, GT_OK);
    gt_client_set_timeout (client, 5000);
    assert (gt_client_health (client, NULL) == GT_OK);
    assert (!gt_client_timed_out (client));
    assert (streq (gt_client_error (client), ""));

    received = gt_test_router_recv (router, -1, &routing2);
    assert (received->rid == 8);
    gt_msg_destroy (&received);
    zframe_destroy (&routing2);

    //  Cluster (GTLP.md §14): MAP, REPLAY of a shard, the fields of MOVED
    //  and TRY_AGAIN.  A shard past 255 is refused locally (no rid used).
    assert (gt_client_replay_shard (client, 256, 0, 0, NULL) == GT_ERR_INVALID_ARGUMENT);
    assert (gt_client_error_shard (client) == -1);
    gt_msg_t *scripted = gt_msg_new (GT_MSG_REPLY);
    scripted->rid = 9;
    scripted->has_map_version = scripted->has_cluster = scripted->cluster = true;
    scripted->map_version = 514;
    scripted->brokers_present = true;
    scripted->brokers = (gt_broker_info_t *) calloc (1, sizeof (gt_broker_info_t));
    assert (scripted->brokers);
    scripted->broker_count = 1;
    scripted->brokers [0].broker_id = strdup ("broker-a");
    scripted->brokers [0].endpoint = strdup ("tcp://10.0.0.1:50051");
    scripted->brokers [0].events_endpoint = strdup ("tcp://10.0.0.1:50052");
    gt_broker_info_add_shard (&scripted->brokers [0], 200);
    gt_test_router_send (router, routing, scripted);
    gt_msg_destroy (&scripted);
    assert (gt_client_shard_map (client, &reply) == GT_OK);
    assert (reply->cluster && reply->map_version == 514 && reply->broker_count == 1);
    assert (streq (gt_msg_shard_owner (reply, 200)->endpoint, "tcp://10.0.0.1:50051"));
    assert (gt_msg_shard_owner (reply, 201) == NULL);
    gt_msg_destroy (&reply);
    received = gt_test_router_recv (router, -1, &routing2);
    assert (received->rid == 9 && received->cmd == GT_CMD_MAP);
    gt_msg_destroy (&received);
    zframe_destroy (&routing2);

    scripted = gt_msg_new (GT_MSG_REPLY);
    scripted->rid = 10;
    scripted->code = GT_ERR_MOVED;
    scripted->message = strdup ("shard 200 is owned by broker-b");
    scripted->has_shard = true;
    scripted->shard = 200;
    scripted->owner = strdup ("tcp://10.0.0.2:50051");
    scripted->has_map_version = true;
    scripted->map_version = 515;
    gt_test_router_send (router, routing, scripted);
    gt_msg_destroy (&scripted);
    reply = &sentinel;
    assert (gt_client_replay_shard (client, 200, 41, 500, &reply) == GT_ERR_MOVED);
    assert (reply == NULL && streq (gt_client_error (client), "shard 200 is owned by broker-b"));
    assert (gt_client_error_shard (client) == 200 && gt_client_error_map_version (client) == 515);
    assert (streq (gt_client_error_owner (client), "tcp://10.0.0.2:50051"));
    assert (gt_client_error_retry_ms (client) == 0);
    received = gt_test_router_recv (router, -1, &routing2);
    assert (received->rid == 10 && received->cmd == GT_CMD_REPLAY);
    assert (received->has_shard && received->shard == 200 && received->after_seq == 41 && received->limit == 500);
    gt_msg_destroy (&received);
    zframe_destroy (&routing2);

    scripted = gt_msg_new (GT_MSG_REPLY);
    scripted->rid = 11;
    scripted->code = GT_ERR_TRY_AGAIN;
    scripted->message = strdup ("shard 1 has no owner");
    scripted->has_shard = true;
    scripted->shard = 1;
    scripted->has_retry_ms = true;
    scripted->retry_ms = 100;
    gt_test_router_send (router, routing, scripted);
    gt_msg_destroy (&scripted);
    assert (gt_client_get_lease (client, "0123456789abcdef0123456789abcdef", NULL) == GT_ERR_TRY_AGAIN);
    assert (gt_client_error_shard (client) == 1 && gt_client_error_retry_ms (client) == 100);
    assert (gt_client_error_owner (client) == NULL && gt_client_error_map_version (client) == 0);
    received = gt_test_router_recv (router, -1, &routing2);
    assert (received->rid == 11 && received->cmd == GT_CMD_GET);
    gt_msg_destroy (&received);
    zframe_destroy (&routing2);
    //  The next call forgets them
    s_router_reply (router, routing, 12, GT_OK);
    assert (gt_client_health (client, NULL) == GT_OK);
    assert (gt_client_error_shard (client) == -1 && gt_client_error_retry_ms (client) == 0);
    received = gt_test_router_recv (router, -1, &routing2);
    assert (received->rid == 12);
    gt_msg_destroy (&received);
    zframe_destroy (&routing2);
    zframe_destroy (&routing);
    gt_client_destroy (&client);
    assert (client == NULL);
    gt_client_destroy (&client);        //  idempotent on NULL

    //  An endpoint nobody serves: the call times out
    zsock_t *probe = zsock_new (ZMQ_ROUTER);
    int free_port = zsock_bind (probe, "tcp://127.0.0.1:*");
    assert (free_port > 0);
    //  The probe stays bound and silent: a parallel test cannot take the port
    snprintf (endpoint, sizeof (endpoint), "tcp://127.0.0.1:%d", free_port);
    client = gt_client_new (endpoint, "test-service");
    assert (client);
    gt_client_set_timeout (client, 50);
    start = zclock_mono ();
    assert (gt_client_health (client, &reply) == GT_ERR_UNAVAILABLE);
    assert (reply == NULL);
    assert (zclock_mono () - start >= 50);
    assert (gt_client_timed_out (client));
    gt_client_destroy (&client);

    //  Stats lookup helper
    gt_stat_t stats [] = {{ "a", 1 }, { "b", 2 }};
    gt_msg_t stats_reply;
    memset (&stats_reply, 0, sizeof (stats_reply));
    stats_reply.stats = stats;
    stats_reply.stat_count = 2;
    assert (gt_client_stat_value (&stats_reply, "b", 0) == 2);
    assert (gt_client_stat_value (&stats_reply, "c", 42) == 42);
    assert (gt_client_stat_value (NULL, "c", 9) == 9);

    zsock_destroy (&router);
    zsock_destroy (&probe);
    printf ("OK\n");
}

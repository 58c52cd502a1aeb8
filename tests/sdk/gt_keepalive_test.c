/*  gt_keepalive_test.c — selftest of gt_keepalive, through its public API.
    Re-includes <assert.h> without NDEBUG so the checks run in release
    builds.  */
#undef NDEBUG
#include <assert.h>
#include "garbagetruck.h"
#include "gt_sdk_selftest.h"
#include "gt_test_router.h"

//  Selftest: no broker here.  A ROUTER socket of the test answers the
//  agent's RENEW_BATCH requests as scripted; an unserved endpoint shows
//  deadline losses.

//  Receive one RENEW_BATCH on router (5 s at most); keeps the routing id.
static gt_msg_t *
s_expect_batch (zsock_t *router, zframe_t **routing_p)
{
    gt_msg_t *request = gt_test_router_recv (router, 5000, routing_p);
    assert (request->cmd == GT_CMD_RENEW_BATCH);
    return request;
}

//  Answer a batch: lease ids in ended_id get LEASE_ENDED, the rest OK.
static void
s_answer_batch (zsock_t *router, zframe_t *routing, gt_msg_t *request, const char *ended_id)
{
    gt_msg_t *reply = gt_test_router_batch_reply (request);
    for (size_t index = 0; index < request->lease_id_count; index++) {
        gt_renew_result_t *result = &reply->results [index];
        if (ended_id && streq (request->lease_ids [index], ended_id)) {
            result->code = GT_ERR_LEASE_ENDED;
            result->message = strdup ("lease has been released");
        }
        else {
            result->code = GT_OK;
            result->expires_at = 1700000000000;
        }
    }
    gt_test_router_send (router, routing, reply);
    gt_msg_destroy (&reply);
}

void
gt_keepalive_test (bool verbose)
{
    printf (" * gt_keepalive: ");
    if (verbose)
        printf ("\n");

    assert (gt_keepalive_new (NULL, "svc") == NULL);
    assert (gt_keepalive_new ("tcp://127.0.0.1:5", NULL) == NULL);

    const char *lease_a = "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa";
    const char *lease_b = "bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb";
    const char *lease_c = "cccccccccccccccccccccccccccccccc";
    char lost_id [GT_LEASE_ID_LEN + 1];
    gt_code_t lost_code;

    //  Scripted broker: both leases go out in one batch; b has ended
    zsock_t *router = zsock_new (ZMQ_ROUTER);
    assert (router);
    zsock_set_linger (router, 0);
    int port = zsock_bind (router, "tcp://127.0.0.1:*");
    assert (port > 0);
    char endpoint [64];
    snprintf (endpoint, sizeof (endpoint), "tcp://127.0.0.1:%d", port);

    gt_keepalive_t *keepalive = gt_keepalive_new (endpoint, "svc");
    assert (keepalive);
    assert (gt_keepalive_add (keepalive, "short", 300) == -1);
    assert (gt_keepalive_add (keepalive, lease_a, 0) == -1);
    assert (gt_keepalive_remove (keepalive, NULL) == -1);
    //  Same TTL, added together: renewed in one batch.  (1.5 s TTL: the
    //  jitter, ±50 ms, stays well inside the batching window, 150 ms.)
    assert (gt_keepalive_add (keepalive, lease_a, 1500) == 0);
    assert (gt_keepalive_add (keepalive, lease_b, 1500) == 0);

    zframe_t *routing;
    gt_msg_t *request = s_expect_batch (router, &routing);
    assert (streq (request->service_id, "svc"));
    assert (request->has_ttl && request->ttl_ms == 1500);
    assert (request->lease_id_count == 2);
    s_answer_batch (router, routing, request, lease_b);
    gt_msg_destroy (&request);
    assert (gt_keepalive_recv_lost (keepalive, 5000, lost_id, &lost_code) == 0);
    assert (streq (lost_id, lease_b));
    assert (lost_code == GT_ERR_LEASE_ENDED);

    //  a goes on being renewed, alone (a resend of the first batch, if the
    //  test was slow to answer, may still name b: answer it too)
    bool alone = false;
    while (!alone) {
        zframe_destroy (&routing);
        request = s_expect_batch (router, &routing);
        alone = request->lease_id_count == 1;
        bool has_a = false;
        for (size_t index = 0; index < request->lease_id_count; index++)
            has_a |= streq (request->lease_ids [index], lease_a);
        assert (has_a);
        s_answer_batch (router, routing, request, NULL);
        gt_msg_destroy (&request);
    }

    //  Removed: no more renewals and no report
    assert (gt_keepalive_remove (keepalive, lease_a) == 0);
    assert (gt_keepalive_recv_lost (keepalive, 200, lost_id, &lost_code) == -1);
    zframe_destroy (&routing);
    gt_keepalive_destroy (&keepalive);
    assert (keepalive == NULL);
    zsock_destroy (&router);

    //  An unserved endpoint: the lease is lost at its deadline
    zsock_t *probe = zsock_new (ZMQ_ROUTER);
    int free_port = zsock_bind (probe, "tcp://127.0.0.1:*");
    assert (free_port > 0);
    //  The probe stays bound and silent: a parallel test cannot take the port
    snprintf (endpoint, sizeof (endpoint), "tcp://127.0.0.1:%d", free_port);
    keepalive = gt_keepalive_new (endpoint, "svc");
    assert (keepalive);
    int64_t start = zclock_mono ();
    assert (gt_keepalive_add (keepalive, lease_c, 60) == 0);
    assert (gt_keepalive_recv_lost (keepalive, 5000, lost_id, &lost_code) == 0);
    assert (zclock_mono () - start >= 60);
    assert (streq (lost_id, lease_c));
    assert (lost_code == GT_ERR_UNAVAILABLE);
    assert (!(zsock_events (gt_keepalive_sock (keepalive)) & ZMQ_POLLIN));
    gt_keepalive_destroy (&keepalive);

    zsock_destroy (&probe);
    printf ("OK\n");
}

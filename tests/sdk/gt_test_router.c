/*  gt_test_router.c — the SDK selftests' scripted ROUTER (see
    gt_test_router.h).  Re-includes <assert.h> without NDEBUG so the checks
    run in release builds.  */
#undef NDEBUG
#include <assert.h>
#include "gt_test_router.h"

gt_msg_t *
gt_test_router_recv (zsock_t *router, int timeout_ms, zframe_t **routing_p)
{
    zpoller_t *poller = zpoller_new (router, NULL);
    void *which = zpoller_wait (poller, timeout_ms);
    zpoller_destroy (&poller);
    assert (which == router);
    zmsg_t *msg = zmsg_recv (router);
    assert (msg);
    *routing_p = zmsg_pop (msg);
    zframe_t *body = zmsg_last (msg);
    assert (body);
    gt_msg_t *request = NULL;
    char err [256];
    gt_code_t code = gt_msg_decode (zframe_data (body), zframe_size (body),
                                    GT_MSG_REQUEST, &request, NULL, err, sizeof (err));
    assert (code == GT_OK);
    zmsg_destroy (&msg);
    return request;
}

void
gt_test_router_send_raw (zsock_t *router, zframe_t *routing, const void *data, size_t size)
{
    zmsg_t *msg = zmsg_new ();
    zframe_t *copy = zframe_dup (routing);
    zmsg_append (msg, &copy);
    zmsg_addmem (msg, data, size);
    int rc = zmsg_send (&msg, router);
    assert (rc == 0);
}

void
gt_test_router_send (zsock_t *router, zframe_t *routing, gt_msg_t *reply)
{
    void *data;
    size_t size;
    int rc = gt_msg_encode_alloc (reply, &data, &size);
    assert (rc == 0);
    gt_test_router_send_raw (router, routing, data, size);
    free (data);
}

gt_msg_t *
gt_test_router_batch_reply (const gt_msg_t *request)
{
    gt_msg_t *reply = gt_msg_new (GT_MSG_REPLY);
    assert (reply);
    reply->rid = request->rid;
    reply->code = GT_OK;
    reply->results_present = true;
    reply->result_count = request->lease_id_count;
    reply->results = (gt_renew_result_t *) calloc (request->lease_id_count,
                                                   sizeof (gt_renew_result_t));
    assert (reply->results || request->lease_id_count == 0);
    for (size_t index = 0; index < request->lease_id_count; index++)
        snprintf (reply->results [index].lease_id, sizeof (reply->results [index].lease_id),
                  "%s", request->lease_ids [index]);
    return reply;
}

void
gt_test_publish (zsock_t *pub, const gt_msg_t *event)
{
    const gt_lease_info_t *lease = &event->event.lease;
    char topic [256];
    int length = gt_event_topic (topic, sizeof (topic), event->event.kind,
                                 lease->object_type, lease->service_id);
    assert (length > 0);
    void *data;
    size_t size;
    int rc = gt_msg_encode_alloc (event, &data, &size);
    assert (rc == 0);
    zmsg_t *out = zmsg_new ();
    zmsg_addstr (out, topic);
    zmsg_addmem (out, data, size);
    rc = zmsg_send (&out, pub);
    assert (rc == 0);
    free (data);
}

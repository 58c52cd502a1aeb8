/*  gt_reply_test.c — selftest of gt_reply (a reply waiting to be sent, and
    its free list), kept out of the production library.  A real ROUTER and
    DEALER pair on inproc carries the replies.  */
#include <czmq.h>
#include "gt_reply.h"
#include "gt_broker_selftest.h"

void
gt_reply_test (bool verbose)
{
    if (verbose)
        printf (" * gt_reply: ");
    gt_reply_pool_t *pool = gt_reply_pool_new (2);
    zsock_t *router = zsock_new (ZMQ_ROUTER);
    assert (router);
    zsock_set_router_mandatory (router, 1);
    assert (zsock_bind (router, "inproc://gt_reply_test") == 0);
    zsock_t *dealer = zsock_new (ZMQ_DEALER);
    assert (dealer);
    zsock_set_identity (dealer, "peer1");
    assert (zsock_connect (dealer, "inproc://gt_reply_test") == 0);
    //  A request with an envelope of two frames (the client added one)
    zstr_sendm (dealer, "extra");
    zstr_send (dealer, "request");
    zmq_msg_t frames [3];
    for (int index = 0; index < 3; index++) {
        zmq_msg_init (&frames [index]);
        assert (zmq_msg_recv (&frames [index], zsock_resolve (router), 0) >= 0);
    }
    assert (!zmq_msg_more (&frames [2]));

    //  Small: from the pool's size class; the envelope and body kept
    gt_reply_t *reply = gt_reply_new (pool, frames, 2, "body", 4);
    assert (reply->capacity == GT_REPLY_POOLED_BYTES);
    assert (reply->frames == 2 && reply->size == 4 && reply->rid == 0 && !reply->peer);
    size_t id_size;
    const void *id = gt_reply_peer_id (reply, &id_size);
    assert (id_size == 5 && memcmp (id, "peer1", 5) == 0);
    assert (gt_reply_bytes (reply) == 4 + 5 + 4 + 5 + 4);
    reply->rid = 7;
    //  Another body: the same envelope and fields
    reply = gt_reply_rebody (pool, reply, "longer body", 11);
    assert (reply->rid == 7 && reply->size == 11 && reply->frames == 2);
    assert (gt_reply_pool_free_count (pool) == 1);      //  the old block came back
    assert (gt_reply_send (reply, zsock_resolve (router)) == 0);
    char *extra = zstr_recv (dealer);
    char *body = zstr_recv (dealer);
    assert (extra && streq (extra, "extra"));
    assert (body && streq (body, "longer body"));
    zstr_free (&extra);
    zstr_free (&body);
    //  Recycled blocks are reused, up to max_free are kept
    gt_reply_t *again = gt_reply_new (pool, frames, 1, "x", 1);
    assert (gt_reply_pool_free_count (pool) == 0);
    gt_reply_t *third = gt_reply_new (pool, frames, 1, "y", 1);
    gt_reply_recycle (pool, &reply);
    gt_reply_recycle (pool, &again);
    gt_reply_recycle (pool, &third);
    assert (!reply && !again && !third);
    assert (gt_reply_pool_free_count (pool) == 2);

    //  Large: allocated to size and freed, never pooled
    size_t large = GT_REPLY_POOLED_BYTES * 4;
    char *big = (char *) malloc (large);
    assert (big);
    memset (big, 'b', large);
    reply = gt_reply_new (pool, frames, 1, big, large);
    assert (reply->capacity >= large + 9 && reply->capacity != GT_REPLY_POOLED_BYTES);
    assert (gt_reply_send (reply, zsock_resolve (router)) == 0);
    zframe_t *frame = zframe_recv (dealer);
    assert (frame && zframe_size (frame) == large && memcmp (zframe_data (frame), big, large) == 0);
    zframe_destroy (&frame);
    gt_reply_recycle (pool, &reply);
    assert (gt_reply_pool_free_count (pool) == 2);
    free (big);

    //  A peer that is gone: -1
    zmq_msg_t gone;
    zmq_msg_init_size (&gone, 5);
    memcpy (zmq_msg_data (&gone), "nobod", 5);
    reply = gt_reply_new (pool, &gone, 1, "z", 1);
    assert (gt_reply_send (reply, zsock_resolve (router)) == -1);
    gt_reply_destroy (&reply);
    assert (!reply);
    zmq_msg_close (&gone);

    for (int index = 0; index < 3; index++)
        zmq_msg_close (&frames [index]);
    zsock_destroy (&dealer);
    zsock_destroy (&router);
    gt_reply_pool_destroy (&pool);
    assert (!pool);
    if (verbose)
        printf ("OK\n");
}

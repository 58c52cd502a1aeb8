/*  gt_test_router.h — a plain ROUTER socket playing the broker's side of
    the wire in the SDK tests (gt_client_test.c, gt_keepalive_test.c,
    gt_subscriber_test.c, test_client_route.c), and the replies and events
    they script.  Test code, in the test-only library gtsdktest: never
    installed.  Failures are asserts.  */

#ifndef GT_TEST_ROUTER_H_INCLUDED
#define GT_TEST_ROUTER_H_INCLUDED

#include "garbagetruck.h"

//  Receive one request on router within timeout_ms (-1: no limit): returns
//  it decoded (caller destroys) and keeps the routing id in *routing_p.
gt_msg_t *
    gt_test_router_recv (zsock_t *router, int timeout_ms, zframe_t **routing_p);

//  Send raw bytes to routing on router.
void
    gt_test_router_send_raw (zsock_t *router, zframe_t *routing, const void *data, size_t size);

//  Encode reply and send it to routing on router.
void
    gt_test_router_send (zsock_t *router, zframe_t *routing, gt_msg_t *reply);

//  An OK reply to a RENEW_BATCH request: one result a lease id, in its
//  order, each OK with only its lease id set (the caller scripts the rest).
//  Caller destroys.
gt_msg_t *
    gt_test_router_batch_reply (const gt_msg_t *request);

//  Publish event (a GT_MSG_EVENT) on pub as the broker does: its topic
//  frame, then its encoding.
void
    gt_test_publish (zsock_t *pub, const gt_msg_t *event);

#endif

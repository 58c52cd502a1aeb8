/*  gt_subscriber_test.c — selftest of gt_subscriber, through its public
    API.  Re-includes <assert.h> without NDEBUG so the checks run in
    release builds.  */
#undef NDEBUG
#include <assert.h>
#include "garbagetruck.h"
#include "gt_sdk_selftest.h"
#include "gt_test_router.h"

//  Selftest: no broker here.  A PUB socket of the test publishes events
//  made with the codec; the REPLAY endpoint is unserved.

static void
s_publish (zsock_t *pub, uint64_t seq, gt_event_kind_t kind)
{
    gt_msg_t *msg = gt_msg_new (GT_MSG_EVENT);
    msg->event.seq = seq;
    msg->event.kind = kind;
    msg->event.at = 1700000000000 + seq;
    gt_lease_info_t *lease = &msg->event.lease;
    memset (lease->id, 'a', GT_LEASE_ID_LEN);
    lease->id [GT_LEASE_ID_LEN] = 0;
    lease->object_id = strdup ("/tmp/file");
    lease->object_type = GT_TYPE_TEMPORARY_FILE;
    lease->service_id = strdup ("svc");
    lease->state = GT_STATE_ACTIVE;
    lease->fence = 1;
    lease->ttl_ms = 1000;
    lease->created_at = lease->renewed_at = msg->event.at;
    lease->expires_at = msg->event.at + 1000;
    gt_test_publish (pub, msg);
    gt_msg_destroy (&msg);
}

void
gt_subscriber_test (bool verbose)
{
    printf (" * gt_subscriber: ");
    if (verbose)
        printf ("\n");

    assert (gt_subscriber_new (NULL, "tcp://127.0.0.1:5") == NULL);
    assert (gt_subscriber_new ("tcp://127.0.0.1:5", NULL) == NULL);
    assert (gt_subscriber_new ("bogus", "tcp://127.0.0.1:5") == NULL);

    //  An unserved request endpoint
    zsock_t *probe = zsock_new (ZMQ_ROUTER);
    int free_port = zsock_bind (probe, "tcp://127.0.0.1:*");
    assert (free_port > 0);
    //  The probe stays bound and silent: a parallel test cannot take the port
    char request_endpoint [64];
    snprintf (request_endpoint, sizeof (request_endpoint), "tcp://127.0.0.1:%d", free_port);

    zsock_t *pub = zsock_new (ZMQ_PUB);
    assert (pub);
    zsock_set_linger (pub, 0);
    int port = zsock_bind (pub, "tcp://127.0.0.1:*");
    assert (port > 0);
    char events_endpoint [64];
    snprintf (events_endpoint, sizeof (events_endpoint), "tcp://127.0.0.1:%d", port);

    gt_subscriber_t *subscriber = gt_subscriber_new (events_endpoint, request_endpoint);
    assert (subscriber);
    gt_subscriber_subscribe (subscriber, "svc\x1f" "created.");
    gt_subscriber_subscribe (subscriber, "svc\x1f" "expired.TEMPORARY_FILE");
    assert (gt_subscriber_matches (subscriber, "svc\x1f" "created.CUSTOM"));
    assert (gt_subscriber_matches (subscriber, "svc\x1f" "expired.TEMPORARY_FILE"));
    assert (!gt_subscriber_matches (subscriber, "svc\x1f" "expired.CUSTOM"));
    assert (gt_subscriber_last_seq (subscriber) == 0);
    gt_subscriber_set_timeout (subscriber, 50);

    //  Nothing published: a plain timeout
    assert (gt_subscriber_recv (subscriber, 10) == NULL);
    assert (gt_subscriber_code (subscriber) == GT_OK);

    //  The first live event sets the baseline (republish until the
    //  subscription has reached the PUB socket)
    gt_msg_t *event = NULL;
    int64_t give_up = zclock_mono () + 10000;
    while (!event && zclock_mono () < give_up) {
        s_publish (pub, 7, GT_EVENT_LEASE_CREATED);
        event = gt_subscriber_recv (subscriber, 20);
    }
    assert (event);
    assert (event->kind == GT_MSG_EVENT && event->event.seq == 7);
    assert (streq (event->event.lease.service_id, "svc"));
    gt_msg_destroy (&event);
    assert (gt_subscriber_last_seq (subscriber) == 7);

    //  Duplicates are dropped, the next seq is delivered
    s_publish (pub, 7, GT_EVENT_LEASE_CREATED);
    s_publish (pub, 8, GT_EVENT_LEASE_EXPIRED);
    event = gt_subscriber_recv (subscriber, 5000);
    assert (event && event->event.seq == 8);
    assert (event->event.kind == GT_EVENT_LEASE_EXPIRED);
    gt_msg_destroy (&event);

    //  A gap needs REPLAY; nobody answers: UNAVAILABLE, nothing delivered
    s_publish (pub, 10, GT_EVENT_LEASE_CREATED);
    event = gt_subscriber_recv (subscriber, 5000);
    assert (event == NULL);
    assert (gt_subscriber_code (subscriber) == GT_ERR_UNAVAILABLE);
    assert (strstr (gt_subscriber_error (subscriber), "did not answer"));
    assert (gt_subscriber_last_seq (subscriber) == 8);
    assert (gt_subscriber_replayed (subscriber) == 0);
    gt_subscriber_destroy (&subscriber);
    assert (subscriber == NULL);

    //  History first, against an unserved endpoint: the replay fails
    subscriber = gt_subscriber_new (events_endpoint, request_endpoint);
    assert (subscriber);
    gt_subscriber_set_from_seq (subscriber, 1);
    gt_subscriber_set_timeout (subscriber, 50);
    assert (gt_subscriber_recv (subscriber, 0) == NULL);
    assert (gt_subscriber_code (subscriber) == GT_ERR_UNAVAILABLE);
    gt_subscriber_destroy (&subscriber);

    zsock_destroy (&pub);
    zsock_destroy (&probe);
    printf ("OK\n");
}

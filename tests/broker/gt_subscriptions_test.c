/*  gt_subscriptions_test.c — selftest of gt_subscriptions (the event topics
    subscribed to on a plaintext XPUB), on real XPUB, SUB and XSUB sockets
    over inproc.  Subscriptions travel through libzmq's pipes: the test
    polls for them with a deadline.  */
#include <czmq.h>
#include "gt_subscriptions.h"
#include "gt_broker_selftest.h"

//  Read notifications until the set has count prefixes (5 s at most)
static void
s_settle (gt_subscriptions_t *self, zsock_t *xpub, size_t count)
{
    int64_t deadline = zclock_mono () + 5000;
    while (true) {
        gt_subscriptions_read (self, xpub);
        if (gt_subscriptions_count (self) == count)
            return;
        assert (zclock_mono () < deadline);
        zmq_pollitem_t item = { zsock_resolve (xpub), 0, ZMQ_POLLIN, 0 };
        zmq_poll (&item, 1, 10);
    }
}

#define S_TOPIC_A   "svc-a\x1f" "expired.UNKNOWN"
#define S_TOPIC_B   "svc-b\x1f" "created.SESSION"

void
gt_subscriptions_test (bool verbose)
{
    if (verbose)
        printf (" * gt_subscriptions: ");
    gt_subscriptions_t *self = gt_subscriptions_new ();
    zsock_t *xpub = zsock_new (ZMQ_XPUB);
    assert (xpub);
    assert (zsock_bind (xpub, "inproc://gt_subscriptions_test") == 0);
    //  Nobody: nothing wanted
    assert (!gt_subscriptions_wanted (self, S_TOPIC_A, strlen (S_TOPIC_A)));
    assert (gt_subscriptions_none (self));

    //  A prefix: the topics under it, no others
    zsock_t *first = zsock_new_sub ("inproc://gt_subscriptions_test", "svc-a\x1f");
    assert (first);
    s_settle (self, xpub, 1);
    assert (!gt_subscriptions_none (self));
    assert (gt_subscriptions_wanted (self, S_TOPIC_A, strlen (S_TOPIC_A)));
    assert (!gt_subscriptions_wanted (self, S_TOPIC_B, strlen (S_TOPIC_B)));
    assert (!gt_subscriptions_wanted (self, "svc-a", 5));       //  shorter than the prefix
    //  The same prefix from a second subscriber: one entry; it stays while
    //  either holds it
    zsock_t *second = zsock_new_sub ("inproc://gt_subscriptions_test", "svc-a\x1f");
    assert (second);
    zsock_set_subscribe (second, "svc-b\x1f");
    s_settle (self, xpub, 2);
    assert (gt_subscriptions_wanted (self, S_TOPIC_B, strlen (S_TOPIC_B)));
    zsock_set_unsubscribe (first, "svc-a\x1f");
    zsock_set_unsubscribe (second, "svc-b\x1f");
    s_settle (self, xpub, 1);
    assert (gt_subscriptions_wanted (self, S_TOPIC_A, strlen (S_TOPIC_A)));
    assert (!gt_subscriptions_wanted (self, S_TOPIC_B, strlen (S_TOPIC_B)));
    //  A subscriber that goes takes its subscriptions along
    zsock_destroy (&second);
    s_settle (self, xpub, 0);
    assert (!gt_subscriptions_wanted (self, S_TOPIC_A, strlen (S_TOPIC_A)));
    assert (gt_subscriptions_none (self));

    //  An empty prefix: everything
    zsock_set_subscribe (first, "");
    s_settle (self, xpub, 1);
    assert (gt_subscriptions_wanted (self, S_TOPIC_B, strlen (S_TOPIC_B)));
    assert (gt_subscriptions_wanted (self, "", 0));
    zsock_set_unsubscribe (first, "");
    s_settle (self, xpub, 0);

    //  An XSUB's own message (no subscription) is read and ignored; what
    //  was subscribed before and after it holds
    zsock_t *xsub = zsock_new (ZMQ_XSUB);
    assert (xsub);
    assert (zsock_connect (xsub, "inproc://gt_subscriptions_test") == 0);
    zframe_t *frame = zframe_new ("\x01" "svc-c\x1f", 7);
    zframe_send (&frame, xsub, 0);
    zstr_send (xsub, "not a subscription");
    frame = zframe_new ("\x01" "svc-d\x1f", 7);
    zframe_send (&frame, xsub, 0);
    s_settle (self, xpub, 2);
    assert (gt_subscriptions_wanted (self, "svc-c\x1f" "x", 7));
    assert (gt_subscriptions_wanted (self, "svc-d\x1f" "x", 7));
    assert (!gt_subscriptions_wanted (self, "not", 3));
    zsock_destroy (&xsub);
    s_settle (self, xpub, 0);

    //  Past GT_SUBSCRIPTIONS_MAX prefixes: every event is wanted, for good
    for (int index = 0; index <= GT_SUBSCRIPTIONS_MAX; index++) {
        char prefix [32];
        snprintf (prefix, sizeof (prefix), "svc-%d\x1f", index);
        zsock_set_subscribe (first, prefix);
    }
    s_settle (self, xpub, GT_SUBSCRIPTIONS_MAX);
    int64_t deadline = zclock_mono () + 5000;
    while (!gt_subscriptions_wanted (self, S_TOPIC_B, strlen (S_TOPIC_B))) {
        assert (zclock_mono () < deadline);
        zmq_pollitem_t item = { zsock_resolve (xpub), 0, ZMQ_POLLIN, 0 };
        zmq_poll (&item, 1, 10);
        gt_subscriptions_read (self, xpub);
    }
    zsock_destroy (&first);
    gt_subscriptions_read (self, xpub);
    assert (gt_subscriptions_wanted (self, S_TOPIC_B, strlen (S_TOPIC_B)));
    assert (!gt_subscriptions_none (self));     //  unfiltered, even with no prefix left

    zsock_destroy (&xpub);
    gt_subscriptions_destroy (&self);
    assert (!self);
    if (verbose)
        printf ("OK\n");
}

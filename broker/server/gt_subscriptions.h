/*  gt_subscriptions.h — which event topics someone subscribed to, on the
    broker's plaintext events socket, so that an event nobody asked for is
    not sent at all (libzmq would copy it, match it against every
    subscription and drop it).

    The events socket is then an XPUB in its default mode: libzmq applies
    every subscription itself, as a PUB would, and hands the broker a
    notification when a prefix gets its first subscriber and when it loses
    its last one (a subscriber that disconnects loses all of its own).
    This module keeps that set of prefixes.  It may hold a prefix libzmq no
    longer has (then an event is sent and libzmq drops it) but never lacks
    one libzmq has, as long as the notifications are read before each
    publish (gt_subscriptions_read): libzmq applies a subscription at the
    moment it queues the notification, both in the broker's thread.  (A
    subscription that libzmq takes in while a publish is under way may
    miss that publish's events, as it might with a PUB: a subscriber that
    needs every event reads the gap with REPLAY, GTLP.md §7.)

    Past GT_SUBSCRIPTIONS_MAX distinct prefixes it stops filtering (every
    event is sent, as without it) for good.  Messages that are no
    subscription (an XSUB may send any) are read and ignored.  With CURVE
    the events socket is a manual XPUB (gt_curve.h) and this is not used.
    Single-threaded: the broker's thread owns it.  */
#ifndef GT_SUBSCRIPTIONS_H_INCLUDED
#define GT_SUBSCRIPTIONS_H_INCLUDED

#include <czmq.h>

#ifdef __cplusplus
extern "C" {
#endif

//  Distinct prefixes tracked; past this every event is wanted
#define GT_SUBSCRIPTIONS_MAX    256

typedef struct _gt_subscriptions_t gt_subscriptions_t;

gt_subscriptions_t *gt_subscriptions_new (void);
void gt_subscriptions_destroy (gt_subscriptions_t **self_p);
//  Read every notification waiting on xpub, without blocking; returns how
//  many messages were read.
size_t gt_subscriptions_read (gt_subscriptions_t *self, zsock_t *xpub);
//  True if some subscription's prefix starts topic [0 .. size-1], or if
//  the module stopped filtering.
bool gt_subscriptions_wanted (gt_subscriptions_t *self, const char *topic, size_t size);
//  True if no event is wanted at all: no prefix, and still filtering.
bool gt_subscriptions_none (gt_subscriptions_t *self);
//  Distinct prefixes now (for tests).
size_t gt_subscriptions_count (gt_subscriptions_t *self);

#ifdef __cplusplus
}
#endif

#endif

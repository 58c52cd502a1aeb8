/*  gt_subscriptions.c — which event topics someone subscribed to (see
    gt_subscriptions.h).  */
#include "gt_subscriptions.h"

struct _gt_subscriptions_t {
    char *prefixes [GT_SUBSCRIPTIONS_MAX];  //  subscribed prefixes (any bytes)
    size_t sizes [GT_SUBSCRIPTIONS_MAX];    //  their lengths
    size_t count;                   //  how many
    bool unfiltered;                //  too many prefixes: every event is wanted from now on
};

gt_subscriptions_t *
gt_subscriptions_new (void)
{
    gt_subscriptions_t *self = (gt_subscriptions_t *) zmalloc (sizeof (gt_subscriptions_t));
    assert (self);
    return self;
}

void
gt_subscriptions_destroy (gt_subscriptions_t **self_p)
{
    assert (self_p);
    gt_subscriptions_t *self = *self_p;
    if (!self)
        return;
    for (size_t index = 0; index < self->count; index++)
        free (self->prefixes [index]);
    free (self);
    *self_p = NULL;
}

//  Index of prefix, or count if absent
static size_t
s_find (gt_subscriptions_t *self, const uint8_t *prefix, size_t size)
{
    for (size_t index = 0; index < self->count; index++)
        if (self->sizes [index] == size && memcmp (self->prefixes [index], prefix, size) == 0)
            return index;
    return self->count;
}

static void
s_apply (gt_subscriptions_t *self, bool subscribe, const uint8_t *prefix, size_t size)
{
    size_t index = s_find (self, prefix, size);
    if (subscribe) {
        if (index < self->count || self->unfiltered)
            return;
        if (self->count == GT_SUBSCRIPTIONS_MAX) {
            self->unfiltered = true;
            return;
        }
        char *copy = (char *) malloc (size ? size : 1);
        assert (copy);
        if (size)
            memcpy (copy, prefix, size);
        self->prefixes [self->count] = copy;
        self->sizes [self->count] = size;
        self->count++;
    }
    else
    if (index < self->count) {
        free (self->prefixes [index]);
        self->count--;
        self->prefixes [index] = self->prefixes [self->count];
        self->sizes [index] = self->sizes [self->count];
    }
}

size_t
gt_subscriptions_read (gt_subscriptions_t *self, zsock_t *xpub)
{
    assert (self);
    assert (xpub);
    void *handle = zsock_resolve (xpub);
    size_t read = 0;
    while (true) {
        zmq_msg_t msg;
        zmq_msg_init (&msg);
        if (zmq_msg_recv (&msg, handle, ZMQ_DONTWAIT) == -1) {
            zmq_msg_close (&msg);
            break;
        }
        read++;
        //  A notification is one frame: 1 (first subscriber) or 0 (last one
        //  gone), then the prefix.  libzmq takes every frame that starts so
        //  as a subscription, so what else comes up is an XSUB's own message
        const uint8_t *data = (const uint8_t *) zmq_msg_data (&msg);
        size_t size = zmq_msg_size (&msg);
        if (size >= 1 && data [0] <= 1)
            s_apply (self, data [0] == 1, data + 1, size - 1);
        zmq_msg_close (&msg);
    }
    return read;
}

bool
gt_subscriptions_wanted (gt_subscriptions_t *self, const char *topic, size_t size)
{
    assert (self);
    if (self->unfiltered)
        return true;
    for (size_t index = 0; index < self->count; index++)
        if (self->sizes [index] <= size && memcmp (self->prefixes [index], topic, self->sizes [index]) == 0)
            return true;
    return false;
}

bool
gt_subscriptions_none (gt_subscriptions_t *self)
{
    assert (self);
    return self->count == 0 && !self->unfiltered;
}

size_t
gt_subscriptions_count (gt_subscriptions_t *self)
{
    assert (self);
    return self->count;
}

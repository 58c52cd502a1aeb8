/*  gt_reply.c — a reply waiting to be sent, and the free list its blocks
    come from (see gt_reply.h).  */
#include <czmq.h>
#include "gt_reply.h"

struct _gt_reply_pool_t {
    gt_reply_t *free;               //  blocks of GT_REPLY_POOLED_BYTES, linked by next
    size_t free_count;              //  how many
    size_t max_free;                //  kept at most
};

gt_reply_pool_t *
gt_reply_pool_new (size_t max_free)
{
    gt_reply_pool_t *self = (gt_reply_pool_t *) zmalloc (sizeof (gt_reply_pool_t));
    assert (self);
    self->max_free = max_free;
    return self;
}

void
gt_reply_pool_destroy (gt_reply_pool_t **self_p)
{
    assert (self_p);
    gt_reply_pool_t *self = *self_p;
    if (!self)
        return;
    while (self->free) {
        gt_reply_t *block = self->free;
        self->free = block->next;
        free (block);
    }
    free (self);
    *self_p = NULL;
}

size_t
gt_reply_pool_free_count (gt_reply_pool_t *self)
{
    assert (self);
    return self->free_count;
}

//  A block that holds bytes: from the free list when it fits one
static gt_reply_t *
s_block (gt_reply_pool_t *self, size_t bytes)
{
    gt_reply_t *block;
    if (bytes <= GT_REPLY_POOLED_BYTES && self->free) {
        block = self->free;
        self->free = block->next;
        self->free_count--;
    }
    else {
        size_t capacity = bytes <= GT_REPLY_POOLED_BYTES ? GT_REPLY_POOLED_BYTES : bytes;
        block = (gt_reply_t *) malloc (sizeof (gt_reply_t) + capacity);
        assert (block);
        block->capacity = capacity;
    }
    size_t capacity = block->capacity;
    memset (block, 0, offsetof (gt_reply_t, capacity));
    block->capacity = capacity;
    return block;
}

gt_reply_t *
gt_reply_new (gt_reply_pool_t *self, const zmq_msg_t *frames, size_t count,
              const void *body, size_t size)
{
    assert (self);
    assert (frames && count >= 1);
    size_t envelope_size = 0;
    for (size_t index = 0; index < count; index++)
        envelope_size += sizeof (uint32_t) + zmq_msg_size ((zmq_msg_t *) &frames [index]);
    gt_reply_t *reply = s_block (self, envelope_size + size);
    uint8_t *cursor = reply->data;
    for (size_t index = 0; index < count; index++) {
        zmq_msg_t *frame = (zmq_msg_t *) &frames [index];
        uint32_t frame_size = (uint32_t) zmq_msg_size (frame);
        memcpy (cursor, &frame_size, sizeof (frame_size));
        cursor += sizeof (frame_size);
        memcpy (cursor, zmq_msg_data (frame), frame_size);
        cursor += frame_size;
    }
    if (size)
        memcpy (cursor, body, size);
    reply->frames = count;
    reply->envelope_size = envelope_size;
    reply->size = size;
    return reply;
}

gt_reply_t *
gt_reply_rebody (gt_reply_pool_t *self, gt_reply_t *reply, const void *body, size_t size)
{
    assert (self);
    assert (reply);
    gt_reply_t *copy = s_block (self, reply->envelope_size + size);
    size_t capacity = copy->capacity;
    memcpy (copy, reply, sizeof (gt_reply_t) + reply->envelope_size);
    copy->capacity = capacity;
    if (size)
        memcpy (copy->data + copy->envelope_size, body, size);
    copy->size = size;
    gt_reply_recycle (self, &reply);
    return copy;
}

void
gt_reply_recycle (gt_reply_pool_t *self, gt_reply_t **reply_p)
{
    assert (self);
    assert (reply_p);
    gt_reply_t *reply = *reply_p;
    if (!reply)
        return;
    if (reply->capacity == GT_REPLY_POOLED_BYTES && self->free_count < self->max_free) {
        reply->next = self->free;
        self->free = reply;
        self->free_count++;
    }
    else
        free (reply);
    *reply_p = NULL;
}

void
gt_reply_destroy (gt_reply_t **reply_p)
{
    assert (reply_p);
    free (*reply_p);
    *reply_p = NULL;
}

const void *
gt_reply_peer_id (const gt_reply_t *self, size_t *size_p)
{
    assert (self);
    uint32_t size;
    memcpy (&size, self->data, sizeof (size));
    *size_p = size;
    return self->data + sizeof (size);
}

size_t
gt_reply_bytes (const gt_reply_t *self)
{
    assert (self);
    return self->envelope_size + self->size;
}

int
gt_reply_send (const gt_reply_t *self, void *router)
{
    assert (self);
    const uint8_t *frame = self->data;
    for (size_t index = 0; index < self->frames; index++) {
        uint32_t size;
        memcpy (&size, frame, sizeof (size));
        frame += sizeof (size);
        if (zmq_send (router, frame, size, ZMQ_SNDMORE | ZMQ_DONTWAIT) == -1) {
            //  Only the first frame (the routing id) can fail: the router
            //  checks the peer's pipe there and then takes the whole message
            if (errno == EAGAIN)
                return 1;
            return -1;
        }
        frame += size;
    }
    if (zmq_send (router, self->data + self->envelope_size, self->size, ZMQ_DONTWAIT) == -1)
        return -1;
    return 0;
}

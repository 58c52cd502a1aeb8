/*  gt_reply.h — a reply waiting to be sent, and the free list its blocks
    come from.

    A reply is one block: the request's envelope (every frame before the
    body: the routing id, and any the client added; each stored as uint32
    size + bytes) and then the encoded reply body.  The broker builds it
    once the body is encoded, holds it until its batch is durable or its
    peer's pipe has room, sends it, and recycles it.

    Blocks whose envelope and body fit in GT_REPLY_POOLED_BYTES come from
    the pool and go back to it: once the pool has filled, a request's reply
    costs no malloc (a burst of hundreds of held replies would otherwise
    overflow malloc's per-thread caches on every turn).  Larger replies
    (LIST and REPLAY pages, long metadata) are allocated to size and freed.
    The pool keeps at most max_free blocks; the rest are freed.

    The fields above `frames` are the broker's to read and set; the block's
    layout is this module's.  Single-threaded: the broker's thread owns the
    pool and its replies.  */
#ifndef GT_REPLY_H_INCLUDED
#define GT_REPLY_H_INCLUDED

#include <zmq.h>
#include "gt_proto.h"
#include "gt_peers.h"

#ifdef __cplusplus
extern "C" {
#endif

//  Envelope and body bytes a pooled block holds
#define GT_REPLY_POOLED_BYTES   512

typedef struct _gt_reply_pool_t gt_reply_pool_t;

typedef struct gt_reply_t gt_reply_t;
struct gt_reply_t {
    gt_reply_t *next;               //  the holder's list (a batch, the backlog, the pool)
    uint64_t rid;                   //  the request's id (to re-answer UNAVAILABLE)
    gt_cmd_t cmd;                   //  the request's command
    gt_code_t code;                 //  the reply's code
    int64_t received;               //  zclock_usecs when the request was read (metrics)
    gt_peer_t *peer;                //  the peer's record while the reply is owed, else NULL
    size_t queued_bytes;            //  what it counts in its peer's queued bytes in the backlog
    //  The block (this module's)
    size_t frames;                  //  envelope frames
    size_t envelope_size;           //  envelope bytes at data
    size_t size;                    //  body bytes, after the envelope
    size_t capacity;                //  bytes data can hold
    uint8_t data [];                //  envelope, then body
};

//  A pool that keeps up to max_free blocks for reuse.
gt_reply_pool_t *gt_reply_pool_new (size_t max_free);
//  Frees the pool's blocks (not the replies it handed out).
void gt_reply_pool_destroy (gt_reply_pool_t **self_p);
//  Blocks waiting for reuse.
size_t gt_reply_pool_free_count (gt_reply_pool_t *self);

//  A reply to the request whose envelope is frames [0 .. count-1] (at
//  least the routing id), with a copy of body; the other fields zero.
gt_reply_t *gt_reply_new (gt_reply_pool_t *self, const zmq_msg_t *frames, size_t count,
                          const void *body, size_t size);
//  The same reply with another body (a copy); the old block is recycled.
gt_reply_t *gt_reply_rebody (gt_reply_pool_t *self, gt_reply_t *reply, const void *body, size_t size);
//  Back to the pool, or freed; nulls the pointer.
void gt_reply_recycle (gt_reply_pool_t *self, gt_reply_t **reply_p);
//  Freed (no pool at hand: a batch dropped at shutdown); nulls the pointer.
void gt_reply_destroy (gt_reply_t **reply_p);

//  The routing id of its peer (the envelope's first frame).
const void *gt_reply_peer_id (const gt_reply_t *self, size_t *size_p);
//  Bytes it holds (envelope and body).
size_t gt_reply_bytes (const gt_reply_t *self);
//  Hand it to a ROUTER socket: 0 sent, 1 the peer's pipe is full (try
//  again later), -1 the peer is gone.  The reply stays the caller's.
int gt_reply_send (const gt_reply_t *self, void *router);

#ifdef __cplusplus
}
#endif

#endif

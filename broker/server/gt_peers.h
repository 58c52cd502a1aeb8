/*  gt_peers.h — what each connection (ROUTER peer) makes the broker hold.

    A client that sends requests and never reads its replies would
    otherwise make the broker hold every reply: in libzmq's per-peer send
    pipe (bounded in messages, not bytes) and in the broker's own backlog
    of replies for full pipes.  This module keeps, per peer (its routing
    id), two figures the broker can count exactly:

    * pending: requests read whose reply has not been handed to libzmq yet
      (held until their batch is durable, or queued for a full pipe);
    * queued bytes: bytes of its replies waiting in the broker's backlog
      (libzmq's pipe to that peer was full: the peer is not reading).

    gt_peers_admit decides, before a request is applied:
    * ADMIT while both figures are under their bounds
      (GC_CONNECTION_MAX_PENDING, GC_CONNECTION_MAX_QUEUED_BYTES);
    * REFUSE past either bound: answer UNAVAILABLE without applying it;
    * SHED past either bound when the peer's pipe is full as well (it has
      replies in the backlog): even a refusal would only be queued, so the
      request is read and dropped without a reply, as if never read.
    libzmq's own queue holds at most the ROUTER's send high-water mark of
    messages per peer; with LIST and REPLAY pages bounded in bytes that
    bounds the rest (GTLP.md §11).

    Records exist only while a peer has something pending: a peer that is
    answered at once costs one lookup per request and no record.  Routing
    ids may be chosen by clients (ZMQ_ROUTING_ID), so they are hashed with
    keyed SipHash.  Single-threaded: the broker's thread owns it.  */
#ifndef GT_PEERS_H_INCLUDED
#define GT_PEERS_H_INCLUDED

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct gt_peers_t gt_peers_t;
typedef struct gt_peer_t gt_peer_t;

typedef enum {
    GT_PEER_ADMIT = 0,              //  apply the request
    GT_PEER_REFUSE,                 //  answer UNAVAILABLE, apply nothing
    GT_PEER_SHED                    //  drop the request, no reply
} gt_peer_verdict_t;

//  Create with the two bounds (> 0).
gt_peers_t *gt_peers_new (uint64_t max_pending, uint64_t max_queued_bytes);
//  Destroy every record; nulls the pointer.
void gt_peers_destroy (gt_peers_t **self_p);

//  What to do with a request from the peer with this routing id.
gt_peer_verdict_t gt_peers_admit (gt_peers_t *self, const void *id, size_t size);

//  A reply is owed to this peer and will not be sent at once: returns the
//  peer's record (made if needed), with pending counted.
gt_peer_t *gt_peers_owe (gt_peers_t *self, const void *id, size_t size);
//  The reply was queued for a full pipe (size bytes) / left the queue.
void gt_peers_queued (gt_peers_t *self, gt_peer_t *peer, size_t size);
void gt_peers_unqueued (gt_peers_t *self, gt_peer_t *peer, size_t size);
//  The owed reply was handed to libzmq or dropped: pending uncounted; the
//  record goes when nothing is pending any more (peer is then invalid).
void gt_peers_settle (gt_peers_t *self, gt_peer_t *peer);

//  Peers with a record; bytes queued for all of them.
size_t gt_peers_count (gt_peers_t *self);
uint64_t gt_peers_queued_bytes (gt_peers_t *self);

#ifdef __cplusplus
}
#endif
#endif

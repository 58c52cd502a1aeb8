/*  gt_event_ring.h — the events of a broker that stores none (the memory
    store), kept compactly until they are published and then as its REPLAY
    history: each one a record of the event and the lease it carries, in
    one ring of bytes, numbered by consecutive seqs.  A record is encoded
    only when it is sent or replayed, into exactly the bytes gt_msg_encode
    would have made of the event at once.

    A record holds the event's kind, time and reason, and the lease's
    fields: the numbers as varints (times as deltas from the one before),
    the strings NUL-terminated; the topic is made again from the service
    id, the kind and the object type.  A lease without metadata or cleanup
    takes about 55 bytes plus its service and object ids, against about
    280 as a block of its own (record header, a snapshot of fixed fields,
    the topic, malloc's rounding).

    A record never wraps around the end of the bytes: when it does not fit
    there it goes to the start, and the space left at the end is skipped
    until the oldest records move past it.  The bytes grow by half (by an
    eighth from 4 MiB on), copying the records, oldest first, when a record
    fits nowhere; they never shrink.  The start of every record is kept in a power-of-two ring of
    offsets, so that a seq's record is found in O(1).

    Single mode only (one sequence: a cluster's is per shard).  Records
    are dropped from the oldest end (the history is full) or from the
    newest (their batch was rolled back).  */
#ifndef GT_EVENT_RING_H_INCLUDED
#define GT_EVENT_RING_H_INCLUDED

#include <czmq.h>
#include "gt_msg.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct gt_event_ring_t gt_event_ring_t;

//  An empty ring whose first record will have seq 1.
gt_event_ring_t *gt_event_ring_new (void);
void gt_event_ring_destroy (gt_event_ring_t **self_p);

//  Seq of the oldest record kept, and of the record the next append makes
//  (equal when the ring is empty).
uint64_t gt_event_ring_first (gt_event_ring_t *self);
uint64_t gt_event_ring_end (gt_event_ring_t *self);
//  Drop every record; the next one appended gets seq (recovery).
void gt_event_ring_restart (gt_event_ring_t *self, uint64_t seq);

//  Longest topic a record keeps (gt_event_topic's)
#define GT_EVENT_RING_TOPIC_MAX     255

//  Append the event gt_event_ring_end with this kind, lease, reason and
//  wall time.  False, keeping nothing, if its topic would be longer than
//  GT_EVENT_RING_TOPIC_MAX.  The lease is not checked otherwise: the
//  caller does (gt_lease_info_encodable), and what it does not check (the
//  id's characters, duplicate metadata keys) the codec refuses when the
//  record is encoded.
bool gt_event_ring_append (gt_event_ring_t *self, gt_event_kind_t kind, const gt_lease_info_t *lease,
                           gt_reason_t reason, uint64_t at);
//  Append the event gt_event_ring_end of the newest record's lease and
//  wall time, with this kind and reason: the bytes gt_event_ring_append
//  writes for it (a copy of that record's, its kind, reason and topic
//  length changed), without encoding the lease again.  For an expiry's or
//  a release's object.reclaimed.  False, keeping nothing, if the ring is
//  empty or the topic would be longer than GT_EVENT_RING_TOPIC_MAX.
bool gt_event_ring_append_again (gt_event_ring_t *self, gt_event_kind_t kind, gt_reason_t reason);
//  Drop the records before seq (the oldest), or from seq on (the newest).
void gt_event_ring_drop_before (gt_event_ring_t *self, uint64_t seq);
void gt_event_ring_drop_from (gt_event_ring_t *self, uint64_t seq);

//  Of the record with this seq (first <= seq < end): its kind; its topic
//  and its length in *size_p (if not NULL), made in the ring's own buffer,
//  valid until the next gt_event_ring_topic; its EVENT body appended to
//  buf (0, or -1 if the codec refuses it: see gt_event_ring_append).
gt_event_kind_t gt_event_ring_kind (gt_event_ring_t *self, uint64_t seq);
const char *gt_event_ring_topic (gt_event_ring_t *self, uint64_t seq, size_t *size_p);
int gt_event_ring_encode (gt_event_ring_t *self, uint64_t seq, msgpack_sbuffer *buf);

//  Bytes allocated for records, and the bytes the records kept take (for
//  tests and memory accounting).
size_t gt_event_ring_bytes (gt_event_ring_t *self);
size_t gt_event_ring_used (gt_event_ring_t *self);

#ifdef __cplusplus
}
#endif
#endif

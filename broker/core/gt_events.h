/*  gt_events.h — event sequence numbers, encoding, publishing, history.

    Each event gets the next sequence number (1, 2, 3 ... never reused once
    published) and is encoded ONCE into its canonical body (gt_msg_encode);
    the same bytes go to the store, to the PUB socket and into the history
    ring that REPLAY serves.

    Two stages, for durability (GTLP.md §7: publish only what is durable):
    gt_events_make assigns the number and encodes; the event then waits in
    an "unpublished" queue until gt_events_publish (its batch is durable)
    sends it on PUB and moves it into the history.  gt_events_rollback drops
    unpublished events when their batch failed; their numbers are reused,
    so subscribers never see a gap.

    Cluster mode (gt_events_shard, GTLP.md §14.4): the sequence is per
    shard (the shard of the lease's object), the body carries "shard", and
    REPLAY reads one shard's history.  Every event still has an ORDER, its
    position among all the events this broker made (1, 2, 3 ...): batches
    are marked, published and rolled back by order.  In single mode the
    order is the seq.  The history keeps the newest `history` events of all
    shards; each shard's part is its own ring, so a REPLAY of one shard is
    a binary search.

    Deferred encoding (gt_events_defer_encoding, for a broker whose store
    takes no events: the memory store; single mode): an event is then a
    compact record of the lease's fields in a gt_event_ring, and encoded
    only when it is sent to a subscriber that wants it or served by
    REPLAY, into the same bytes it would have had.  A change nobody watches
    costs a record, not an encoding, and the history holds records (a
    fifth of the size of encoded bodies).  */
#ifndef GT_EVENTS_H_INCLUDED
#define GT_EVENTS_H_INCLUDED

#include <czmq.h>
#include "gt_msg.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct gt_events_t gt_events_t;

//  An event (borrowed view: valid until published or rolled back; with
//  deferred encoding, until the next make).  With deferred encoding topic
//  and body are NULL, shard, size and the lease span 0.
typedef struct {
    uint64_t order;                 //  position among all events made (batches use it)
    uint64_t seq;                   //  sequence number on the wire (= order in single mode)
    unsigned shard;                 //  the shard of the lease's object
    gt_event_kind_t kind;           //  what happened
    uint64_t at;                    //  wall ms
    const char *topic;              //  "service_id" U+001F "verb.OBJECT_TYPE" (gt_event_topic)
    const void *body;               //  canonical EVENT map
    size_t size;                    //  body bytes
    size_t lease_offset;            //  where its LEASE map starts in body (0: not known)
    size_t lease_size;              //  its bytes
} gt_event_record_t;

//  Create with room for history published events (GC_EVENT_HISTORY).
gt_events_t *gt_events_new (size_t history);
void gt_events_destroy (gt_events_t **self_p);

//  Number and encode an event; it waits unpublished.  NULL only if the
//  lease cannot be encoded (a bug: logged by the caller).  An
//  object.reclaimed of a lease that compares equal, field for field, to
//  the one the event made last carried, at the same time, reuses that
//  event's encoding: between the two makes, the strings the lease points
//  to must not change in place (the engine passes the same gt_lease_info_t
//  to an expiry's or a release's two events, untouched between them).
const gt_event_record_t *gt_events_make (gt_events_t *self, gt_event_kind_t kind,
                                         const gt_lease_info_t *lease, gt_reason_t reason,
                                         uint64_t at);
//  The LEASE map of the last event made, if that event carried exactly
//  lease (the same fields, the same strings: both filled by the engine's
//  gt_lease_tables_info), so that a reply (and gt_events_make, for the next
//  event of that lease) can reuse its bytes instead of encoding the lease
//  again; false if not, or if it was published or
//  rolled back since.  The bytes are valid until the next make, publish or
//  rollback.
bool gt_events_lease_bytes (gt_events_t *self, const gt_lease_info_t *lease,
                            const void **bytes_p, size_t *size_p);
//  Cluster mode from now on (before any event is made).
void gt_events_shard (gt_events_t *self);
//  Deferred encoding from now on (before any event is made; single mode):
//  events are encoded only to be published or replayed, so gt_events_make's
//  record has no body (its view is valid until the next make) and
//  gt_events_lease_bytes finds none.
void gt_events_defer_encoding (gt_events_t *self);
//  True in cluster mode.
bool gt_events_sharded (gt_events_t *self);
//  Order the next gt_events_make will assign.
uint64_t gt_events_next_order (gt_events_t *self);
//  Publish unpublished events with order <= up_to on pub (may be NULL: no
//  socket bound yet), in order, and move them into the history.  Returns
//  how many, and counts them by kind into by_kind (may be NULL).
size_t gt_events_publish (gt_events_t *self, zsock_t *pub, uint64_t up_to, uint64_t *by_kind);
//  Which events gt_events_publish sends: those whose topic wanted (ctx,
//  topic, size) is true for (NULL, the default: all).  The others are
//  numbered, kept for REPLAY and counted all the same: only the send,
//  which no subscriber asked for, is skipped.
typedef bool (gt_events_wanted_fn) (void *ctx, const char *topic, size_t size);
void gt_events_set_wanted (gt_events_t *self, gt_events_wanted_fn *wanted, void *ctx);
//  Drop unpublished events with order >= from; the next event gets order
//  from again, and each shard the seq of its first dropped event.
void gt_events_rollback (gt_events_t *self, uint64_t from);
//  Newest published order (0 if none); oldest order still in the history
//  (single mode: seqs).
uint64_t gt_events_last_seq (gt_events_t *self);
uint64_t gt_events_oldest_seq (gt_events_t *self);

//  Events one REPLAY examines at most when it filters (GTLP.md §5.9): so a
//  service that owns few of the events costs a bounded scan per request
#define GT_EVENTS_SCAN_MAX  20000

//  REPLAY: build the whole reply body (v, rid, code OK, events, last_seq,
//  scanned_seq) for events after after_seq whose topic starts with
//  topic_prefix (NULL: all), up to limit of them and about byte_budget
//  bytes (at least one), having examined at most GT_EVENTS_SCAN_MAX.
//  scanned_seq is where the examined part ends (<= last_seq): every
//  matching event up to it is in the page.  TOO_OLD if the history no
//  longer reaches after_seq + 1.  On OK *data_p is a malloc'd body the
//  caller frees.
gt_code_t gt_events_replay (gt_events_t *self, uint64_t rid, uint64_t after_seq,
                            const char *topic_prefix, size_t limit, size_t byte_budget,
                            void **data_p, size_t *size_p, char *err, size_t err_size);

//  REPLAY of one shard (cluster mode): as gt_events_replay, counting in
//  that shard's sequence (last_seq and scanned_seq are the shard's).
gt_code_t gt_events_replay_shard (gt_events_t *self, uint64_t rid, unsigned shard, uint64_t after_seq,
                                  const char *topic_prefix, size_t limit, size_t byte_budget,
                                  void **data_p, size_t *size_p, char *err, size_t err_size);

//  Recovery: put a stored (published) event back into the history, and
//  continue numbering after last_seq.  Single mode.
void gt_events_restore (gt_events_t *self, uint64_t seq, const char *topic,
                        const void *body, size_t size);
void gt_events_restore_seq (gt_events_t *self, uint64_t last_seq);
//  The same in cluster mode, per shard: events of one shard in seq order;
//  the shard continues after last_seq.
void gt_events_restore_shard (gt_events_t *self, unsigned shard, uint64_t seq, const char *topic,
                              const void *body, size_t size);
void gt_events_restore_shard_seq (gt_events_t *self, unsigned shard, uint64_t last_seq);
//  The shard went to another broker (cluster mode): drop its history and
//  its numbering (a later owner continues it from the store).  No event of
//  it may be unpublished.
void gt_events_forget_shard (gt_events_t *self, unsigned shard);
//  Newest published seq of a shard (cluster mode; 0 if none).
uint64_t gt_events_shard_last_seq (gt_events_t *self, unsigned shard);

#ifdef __cplusplus
}
#endif
#endif

/*  gt_events.c — event numbering, encoding, publishing and history.  */
#include <czmq.h>
#include <malloc.h>
#include "gt_event_ring.h"
#include "gt_events.h"

//  Records dropped from the history (or rolled back) kept for the next
//  events: in the steady state, with the history full, making an event
//  reuses the block of the one it pushes out instead of a malloc and a
//  free.  A turn makes up to twenty thousand events before it publishes
//  them (and forgets as many), two per expiry of GT_BROKER_TIMERS_PER_TURN.
#define S_SPARES_MAX    20480

//  Record blocks are allocated in multiples of this: the events of one
//  change differ by a few bytes (an expiry's object.reclaimed is ~20 bytes
//  longer than its lease.expired), and with malloc's own 16-byte steps
//  half of a burst's records missed the spare block of the one they
//  pushed out of the history; with 32, one in twenty.  At most 31 bytes
//  more per event kept.
#define S_RECORD_GRAIN  32

//  One event: the public view, then its topic and body in one allocation
//  (a deferred event is a record of the compact ring instead: gt_event_ring).
typedef struct {
    gt_event_record_t view;         //  order, seq, shard, kind, at, topic/body pointers
    uint64_t position;              //  cluster mode: its absolute place in the history ring
    uint32_t block;                 //  usable bytes of its block (reused for a later event when enough)
    _Alignas (8) char data [];      //  topic, NUL, body
} s_record_t;

//  Cluster mode: one shard's numbering and its part of the history, a
//  ring of the records (oldest first) that are also in the global ring.
typedef struct {
    uint64_t next_seq;              //  seq of the shard's next event
    uint64_t last_published;        //  newest published seq of the shard
    s_record_t **items;             //  its history records
    size_t cap;                     //  slots allocated (a power of two, or 0)
    size_t head;                    //  index of the oldest
    size_t count;                   //  how many
} s_shard_t;

struct gt_events_t {
    uint64_t next_seq;              //  order of the next event made (= its seq in single mode)
    uint64_t last_published;        //  newest published order
    s_record_t **waiting;           //  unpublished, oldest first
    size_t waiting_count;           //  how many
    size_t waiting_cap;             //  slots allocated
    s_record_t **ring;              //  history of published events
    size_t ring_cap;                //  GC_EVENT_HISTORY
    size_t ring_head;               //  index of the oldest
    size_t ring_count;              //  how many are kept
    msgpack_sbuffer scratch;        //  reused to encode each event (no malloc per event)
    bool sharded;                   //  cluster mode: seq per shard
    uint64_t ring_start;            //  cluster mode: absolute position of ring [ring_head]
    s_shard_t *shards [GT_SHARD_COUNT];     //  cluster mode: each shard's, made when first used
    s_record_t *last_made;          //  the last event made, while unpublished (gt_events_lease_bytes)
    gt_lease_info_t last_lease;     //  the lease it carried (a shallow copy)
    gt_events_wanted_fn *wanted;    //  which events to send, or NULL: all
    gt_event_ring_t *compact;       //  deferred encoding: every event, published or not, as a compact record
    gt_event_record_t made;         //  deferred: the view of the last event made
    bool made_newest;               //  deferred: made is the ring's newest record, of last_lease
    void *wanted_ctx;               //  its argument
    s_record_t *spares [S_SPARES_MAX];      //  blocks of forgotten records, for reuse
    size_t spare_count;             //  how many
};

//  A record block of at least bytes: a spare one if big enough
static s_record_t *
s_record_alloc (gt_events_t *self, size_t bytes)
{
    s_record_t *record = NULL;
    if (self->spare_count) {
        record = self->spares [--self->spare_count];
        if (record->block < bytes) {
            free (record);
            record = NULL;
        }
    }
    if (!record) {
        record = (s_record_t *) malloc ((bytes + S_RECORD_GRAIN - 1) & ~(size_t) (S_RECORD_GRAIN - 1));
        assert (record);
        //  What malloc gave (a few bytes more than asked), asked once per
        //  block rather than at every reuse
        size_t block = malloc_usable_size (record);
        record->block = block > UINT32_MAX? UINT32_MAX: (uint32_t) block;
    }
    return record;
}

static s_record_t *
s_record_new (gt_events_t *self, uint64_t seq, gt_event_kind_t kind, uint64_t at, const char *topic,
              const void *body, size_t size)
{
    //  (order, shard and position are the caller's to set when they differ)
    size_t topic_len = strlen (topic);
    s_record_t *record = s_record_alloc (self, offsetof (s_record_t, data) + topic_len + 1 + size);
    memcpy (record->data, topic, topic_len + 1);
    memcpy (record->data + topic_len + 1, body, size);
    record->view.order = seq;
    record->view.seq = seq;
    record->view.shard = 0;
    record->position = 0;
    record->view.kind = kind;
    record->view.at = at;
    record->view.topic = record->data;
    record->view.body = record->data + topic_len + 1;
    record->view.size = size;
    record->view.lease_offset = 0;
    record->view.lease_size = 0;
    return record;
}

//  A record leaves the history (or is rolled back): kept as a spare block
static void
s_record_drop (gt_events_t *self, s_record_t *record)
{
    if (record && self->spare_count < S_SPARES_MAX)
        self->spares [self->spare_count++] = record;
    else
        free (record);
}

gt_events_t *
gt_events_new (size_t history)
{
    gt_events_t *self = (gt_events_t *) zmalloc (sizeof (gt_events_t));
    assert (self);
    self->next_seq = 1;
    self->ring_cap = history;
    if (history) {
        self->ring = (s_record_t **) calloc (history, sizeof (s_record_t *));
        assert (self->ring);
    }
    return self;
}

void
gt_events_destroy (gt_events_t **self_p)
{
    assert (self_p);
    gt_events_t *self = *self_p;
    if (self) {
        for (size_t i = 0; i < self->waiting_count; i++)
            free (self->waiting [i]);
        free (self->waiting);
        for (size_t i = 0; i < self->ring_count; i++)
            free (self->ring [(self->ring_head + i) % self->ring_cap]);     //  free (NULL): forgotten
        free (self->ring);
        for (unsigned shard = 0; shard < GT_SHARD_COUNT; shard++)
            if (self->shards [shard]) {
                free (self->shards [shard]->items);
                free (self->shards [shard]);
            }
        msgpack_sbuffer_destroy (&self->scratch);
        gt_event_ring_destroy (&self->compact);
        while (self->spare_count)
            free (self->spares [--self->spare_count]);
        free (self);
        *self_p = NULL;
    }
}

void
gt_events_shard (gt_events_t *self)
{
    assert (self);
    assert (self->next_seq == 1 && self->waiting_count == 0 && !self->compact);
    self->sharded = true;
}

bool
gt_events_sharded (gt_events_t *self)
{
    assert (self);
    return self->sharded;
}

//  A shard's numbering and history (cluster mode), made when first used.
static s_shard_t *
s_shard (gt_events_t *self, unsigned shard)
{
    assert (shard < GT_SHARD_COUNT);
    if (!self->shards [shard]) {
        self->shards [shard] = (s_shard_t *) zmalloc (sizeof (s_shard_t));
        assert (self->shards [shard]);
        self->shards [shard]->next_seq = 1;
    }
    return self->shards [shard];
}

const gt_event_record_t *
gt_events_make (gt_events_t *self, gt_event_kind_t kind, const gt_lease_info_t *lease,
                gt_reason_t reason, uint64_t at)
{
    assert (self);
    assert (lease);
    reason = kind == GT_EVENT_OBJECT_RECLAIMED ? reason : GT_REASON_NONE;
    if (self->compact) {
        //  An event of the lease the last one carried, at the same time
        //  (an expiry's or a release's object.reclaimed), copies its
        //  record; both copies of the lease were zeroed before they were
        //  filled (gt_lease_tables_info), so their padding compares equal.
        //  Any other is refused now if it cannot be encoded, as an eager
        //  event would be.  Not checked: the id's characters (the engine
        //  formats every id it hands out) and duplicate metadata keys (no
        //  request can bring them); the encoder checks both, and an event
        //  it refuses is neither sent nor replayed
        bool again = kind == GT_EVENT_OBJECT_RECLAIMED && self->made_newest && at == self->made.at
                  && memcmp (&self->last_lease, lease, sizeof (*lease)) == 0;
        if (again ? !gt_event_ring_append_again (self->compact, kind, reason)
                  : (!gt_lease_info_encodable (lease)
                  || !gt_event_ring_append (self->compact, kind, lease, reason, at))) {
            self->made_newest = false;
            return NULL;
        }
        assert (gt_event_ring_end (self->compact) == self->next_seq + 1);
        if (!again)
            self->last_lease = *lease;
        self->made_newest = true;
        //  (no shard: deferred encoding is single mode, and its record
        //  goes to no store)
        self->made = (gt_event_record_t) { .order = self->next_seq, .seq = self->next_seq,
                                           .kind = kind, .at = at };
        self->next_seq++;
        return &self->made;
    }
    char topic [256];
    int topic_len = gt_event_topic (topic, sizeof (topic), kind, lease->object_type, lease->service_id);
    if (topic_len < 0)
        return NULL;
    unsigned shard = gt_shard_of (lease->object_id);
    uint64_t seq = self->sharded ? s_shard (self, shard)->next_seq : self->next_seq;
    gt_msg_t msg;
    memset (&msg, 0, sizeof (msg));
    msg.kind = GT_MSG_EVENT;
    msg.version = GT_PROTOCOL_VERSION;
    msg.event.seq = seq;
    msg.event.has_shard = self->sharded;
    msg.event.shard = shard;
    msg.event.kind = kind;
    msg.event.at = at;
    msg.event.lease = *lease;
    msg.event.reason = reason;
    msgpack_sbuffer_clear (&self->scratch);
    size_t lease_offset, lease_size;
    //  An event of the lease the last one carried (an expiry's or a
    //  release's object.reclaimed after lease.ended) copies its LEASE map
    //  instead of packing it again
    const void *lease_bytes;
    if (gt_events_lease_bytes (self, lease, &lease_bytes, &lease_size)) {
        if (gt_msg_encode_event_with_lease (&msg, lease_bytes, lease_size, &self->scratch, &lease_offset))
            return NULL;
    }
    else
    if (gt_msg_encode_event (&msg, &self->scratch, &lease_offset, &lease_size))
        return NULL;
    s_record_t *record = s_record_new (self, seq, kind, at, topic, self->scratch.data, self->scratch.size);
    record->view.lease_offset = lease_offset;
    record->view.lease_size = lease_size;
    self->last_made = record;
    self->last_lease = *lease;
    record->view.order = self->next_seq;
    record->view.shard = shard;
    record->position = 0;
    if (self->waiting_count == self->waiting_cap) {
        self->waiting_cap = self->waiting_cap ? self->waiting_cap * 2 : 64;
        self->waiting = (s_record_t **) realloc (self->waiting, self->waiting_cap * sizeof (s_record_t *));
        assert (self->waiting);
    }
    self->waiting [self->waiting_count++] = record;
    self->next_seq++;
    if (self->sharded)
        s_shard (self, shard)->next_seq++;
    return &record->view;
}

void
gt_events_defer_encoding (gt_events_t *self)
{
    assert (self);
    assert (!self->sharded && self->waiting_count == 0 && self->ring_count == 0);
    if (!self->compact) {
        self->compact = gt_event_ring_new ();
        gt_event_ring_restart (self->compact, self->next_seq);
    }
}

uint64_t
gt_events_next_order (gt_events_t *self)
{
    assert (self);
    return self->next_seq;
}

//  Drop the oldest slot of the history ring (a forgotten shard's slot is
//  already empty; in cluster mode a record is also its shard's oldest).
static void
s_forget_oldest (gt_events_t *self)
{
    s_record_t *oldest = self->ring [self->ring_head];
    if (oldest && self->sharded) {
        s_shard_t *shard = self->shards [oldest->view.shard];
        assert (shard && shard->count && shard->items [shard->head] == oldest);
        shard->head = (shard->head + 1) & (shard->cap - 1);
        shard->count--;
    }
    s_record_drop (self, oldest);
    self->ring [self->ring_head] = NULL;
    self->ring_head = (self->ring_head + 1) % self->ring_cap;
    self->ring_count--;
    self->ring_start++;
}

//  Append a published record to the history (dropping the oldest if full).
static void
s_remember (gt_events_t *self, s_record_t *record)
{
    if (self->ring_cap == 0) {
        s_record_drop (self, record);
        return;
    }
    if (self->ring_count == self->ring_cap)
        s_forget_oldest (self);
    if (self->sharded) {
        s_shard_t *shard = s_shard (self, record->view.shard);
        if (shard->count == shard->cap) {
            //  Grow to the next power of two, unrolling the ring
            size_t cap = shard->cap ? shard->cap * 2 : 16;
            s_record_t **items = (s_record_t **) malloc (cap * sizeof (s_record_t *));
            assert (items);
            for (size_t i = 0; i < shard->count; i++)
                items [i] = shard->items [(shard->head + i) & (shard->cap - 1)];
            free (shard->items);
            shard->items = items;
            shard->cap = cap;
            shard->head = 0;
        }
        shard->items [(shard->head + shard->count) & (shard->cap - 1)] = record;
        shard->count++;
        record->position = self->ring_start + self->ring_count;
    }
    self->ring [(self->ring_head + self->ring_count) % self->ring_cap] = record;
    self->ring_count++;
}

//  Deferred: publish the compact ring's records up to up_to, and keep the
//  newest published ones as the history
static size_t
s_publish_compact (gt_events_t *self, void *handle, uint64_t up_to, uint64_t *by_kind)
{
    gt_event_ring_t *ring = self->compact;
    uint64_t last = gt_event_ring_end (ring) - 1;
    if (up_to > last)
        up_to = last;
    size_t done = 0;
    for (uint64_t seq = self->last_published + 1; seq <= up_to; seq++, done++) {
        gt_event_kind_t kind = gt_event_ring_kind (ring, seq);
        if (handle) {
            size_t topic_size;
            const char *topic = gt_event_ring_topic (ring, seq, &topic_size);
            if (!self->wanted || self->wanted (self->wanted_ctx, topic, topic_size)) {
                //  Encoded now that someone wants it
                msgpack_sbuffer_clear (&self->scratch);
                if (gt_event_ring_encode (ring, seq, &self->scratch) == 0) {
                    //  PUB never blocks: past a subscriber's HWM ZeroMQ drops for it
                    zmq_send (handle, topic, topic_size, ZMQ_SNDMORE | ZMQ_DONTWAIT);
                    zmq_send (handle, self->scratch.data, self->scratch.size, ZMQ_DONTWAIT);
                }
            }
        }
        if (by_kind && kind < GT_EVENT_COUNT_)
            by_kind [kind]++;
        self->last_published = seq;
    }
    if (self->last_published >= self->ring_cap)
        gt_event_ring_drop_before (ring, self->last_published - self->ring_cap + 1);
    return done;
}

size_t
gt_events_publish (gt_events_t *self, zsock_t *pub, uint64_t up_to, uint64_t *by_kind)
{
    assert (self);
    self->last_made = NULL;
    self->made_newest = false;
    void *handle = pub ? zsock_resolve (pub) : NULL;
    if (self->compact)
        return s_publish_compact (self, handle, up_to, by_kind);
    size_t done = 0;
    while (done < self->waiting_count && self->waiting [done]->view.order <= up_to) {
        s_record_t *record = self->waiting [done];
        size_t topic_size = handle ? strlen (record->view.topic) : 0;
        //  PUB never blocks: past a subscriber's HWM ZeroMQ drops for it
        if (handle && (!self->wanted || self->wanted (self->wanted_ctx, record->view.topic, topic_size))) {
            zmq_send (handle, record->view.topic, topic_size, ZMQ_SNDMORE | ZMQ_DONTWAIT);
            zmq_send (handle, record->view.body, record->view.size, ZMQ_DONTWAIT);
        }
        if (by_kind && record->view.kind < GT_EVENT_COUNT_)
            by_kind [record->view.kind]++;
        self->last_published = record->view.order;
        if (self->sharded)
            s_shard (self, record->view.shard)->last_published = record->view.seq;
        s_remember (self, record);
        done++;
    }
    if (done) {
        memmove (self->waiting, self->waiting + done, (self->waiting_count - done) * sizeof (s_record_t *));
        self->waiting_count -= done;
    }
    return done;
}

bool
gt_events_lease_bytes (gt_events_t *self, const gt_lease_info_t *lease, const void **bytes_p, size_t *size_p)
{
    assert (self);
    assert (lease);
    //  Both copies were zeroed before they were filled (gt_lease_tables_info),
    //  so their padding compares equal too
    if (!self->last_made || !self->last_made->view.lease_size
    ||  memcmp (&self->last_lease, lease, sizeof (*lease)) != 0)
        return false;
    *bytes_p = (const uint8_t *) self->last_made->view.body + self->last_made->view.lease_offset;
    *size_p = self->last_made->view.lease_size;
    return true;
}

void
gt_events_set_wanted (gt_events_t *self, gt_events_wanted_fn *wanted, void *ctx)
{
    assert (self);
    self->wanted = wanted;
    self->wanted_ctx = ctx;
}

void
gt_events_rollback (gt_events_t *self, uint64_t from)
{
    assert (self);
    self->last_made = NULL;
    self->made_newest = false;
    assert (from > self->last_published);
    if (self->compact)
        gt_event_ring_drop_from (self->compact, from);
    while (self->waiting_count && self->waiting [self->waiting_count - 1]->view.order >= from) {
        s_record_t *record = self->waiting [--self->waiting_count];
        if (self->sharded)          //  newest first: the last one set is the first dropped
            s_shard (self, record->view.shard)->next_seq = record->view.seq;
        s_record_drop (self, record);
    }
    if (from < self->next_seq)
        self->next_seq = from;
}

uint64_t
gt_events_last_seq (gt_events_t *self)
{
    assert (self);
    return self->last_published;
}

uint64_t
gt_events_oldest_seq (gt_events_t *self)
{
    assert (self);
    if (self->compact)              //  (the ring keeps every unpublished event: its first <= last_published + 1)
        return gt_event_ring_first (self->compact);
    for (size_t i = 0; i < self->ring_count; i++) {
        const s_record_t *record = self->ring [(self->ring_head + i) % self->ring_cap];
        if (record)
            return record->view.order;
    }
    return self->last_published + 1;
}

//  A history to page through: the global ring (single mode), one shard's
//  ring (cluster mode) or the published part of the compact ring
//  (deferred encoding), oldest first, and its newest published seq.
typedef struct {
    gt_event_ring_t *compact;       //  the compact ring, or NULL: items
    uint64_t first_seq;             //  compact: seq of its oldest record
    s_record_t **items;             //  the ring's slots
    size_t cap;                     //  its size
    bool power_of_two;              //  cap is one (a shard's): index with a mask
    size_t head;                    //  index of the oldest
    size_t count;                   //  records
    uint64_t last_seq;              //  newest published seq
} s_span_t;

static const s_record_t *
s_span_at (const s_span_t *span, size_t index)
{
    size_t slot = span->power_of_two ? (span->head + index) & (span->cap - 1) : (span->head + index) % span->cap;
    return span->items [slot];
}

static uint64_t
s_span_seq (const s_span_t *span, size_t index)
{
    return span->compact ? span->first_seq + index : s_span_at (span, index)->view.seq;
}

//  True if the topic of the event at index starts with prefix
static bool
s_span_topic_starts (const s_span_t *span, size_t index, const char *prefix, size_t prefix_len)
{
    const char *topic = span->compact ? gt_event_ring_topic (span->compact, span->first_seq + index, NULL)
                                      : s_span_at (span, index)->view.topic;
    return strncmp (topic, prefix, prefix_len) == 0;
}

//  Append the body of the event at index to buf: its bytes, or encoded
//  from its compact record.  -1 if it cannot be encoded (nothing appended).
static int
s_span_body (const s_span_t *span, size_t index, msgpack_sbuffer *buf)
{
    if (span->compact)
        return gt_event_ring_encode (span->compact, span->first_seq + index, buf);
    const s_record_t *record = s_span_at (span, index);
    return msgpack_sbuffer_write (buf, (const char *) record->view.body, record->view.size);
}

//  Index (0 = oldest) of the first history record with seq > after.
static size_t
s_history_after (const s_span_t *span, uint64_t after)
{
    size_t low = 0, high = span->count;
    while (low < high) {
        size_t middle = low + (high - low) / 2;
        if (s_span_seq (span, middle) <= after)
            low = middle + 1;
        else
            high = middle;
    }
    return low;
}

//  Pack a str (map key or short value).
static void
s_pack_key (msgpack_packer *pk, const char *key)
{
    size_t len = strlen (key);
    msgpack_pack_str (pk, len);
    msgpack_pack_str_body (pk, key, len);
}

static gt_code_t
s_replay (const s_span_t *span, uint64_t rid, uint64_t after_seq, const char *topic_prefix,
          size_t limit, size_t byte_budget, void **data_p, size_t *size_p, char *err, size_t err_size)
{
    *data_p = NULL;
    *size_p = 0;
    size_t prefix_len = topic_prefix ? strlen (topic_prefix) : 0;
    //  The page: the bodies of the events that match among the history
    //  records examined, each a canonical EVENT map (stored bytes, or
    //  encoded from a compact record, as it was published);
    //  scanned is the seq the page ends at
    msgpack_sbuffer page;
    msgpack_sbuffer_init (&page);
    size_t count = 0;
    uint64_t scanned = after_seq < span->last_seq ? after_seq : span->last_seq;
    if (after_seq < span->last_seq) {
        uint64_t oldest = span->count ? s_span_seq (span, 0) : span->last_seq + 1;
        if (after_seq + 1 < oldest) {
            snprintf (err, err_size, "events after %" PRIu64 " are gone: history starts at %" PRIu64,
                      after_seq, oldest);
            return GT_ERR_TOO_OLD;
        }
        size_t first = s_history_after (span, after_seq);
        for (size_t examined = 0; first + examined < span->count && count < limit
                                  && examined < GT_EVENTS_SCAN_MAX; examined++) {
            size_t index = first + examined;
            if (!topic_prefix || s_span_topic_starts (span, index, topic_prefix, prefix_len)) {
                size_t before = page.size;
                if (s_span_body (span, index, &page) != 0) {
                    msgpack_sbuffer_destroy (&page);
                    snprintf (err, err_size, "event %" PRIu64 " cannot be encoded", s_span_seq (span, index));
                    return GT_ERR_INTERNAL;
                }
                if (count > 0 && page.size > byte_budget) {
                    page.size = before;     //  the page is full without it
                    break;
                }
                count++;
            }
            scanned = s_span_seq (span, index);
        }
    }
    //  Pack the reply map directly in canonical order (GTLP.md §5.9: v, rid,
    //  code, events, last_seq, scanned_seq) around the page
    msgpack_sbuffer frame;
    msgpack_sbuffer_init (&frame);
    msgpack_packer pk;
    msgpack_packer_init (&pk, &frame, msgpack_sbuffer_write);
    msgpack_pack_map (&pk, 6);
    s_pack_key (&pk, "v");
    msgpack_pack_uint64 (&pk, GT_PROTOCOL_VERSION);
    s_pack_key (&pk, "rid");
    msgpack_pack_uint64 (&pk, rid);
    s_pack_key (&pk, "code");
    s_pack_key (&pk, gt_code_name (GT_OK));
    s_pack_key (&pk, "events");
    msgpack_pack_array (&pk, count);
    if (page.size)
        msgpack_sbuffer_write (&frame, page.data, page.size);
    msgpack_sbuffer_destroy (&page);
    s_pack_key (&pk, "last_seq");
    msgpack_pack_uint64 (&pk, span->last_seq);
    s_pack_key (&pk, "scanned_seq");
    msgpack_pack_uint64 (&pk, scanned);
    size_t used = frame.size;
    uint8_t *data = (uint8_t *) msgpack_sbuffer_release (&frame);
    msgpack_sbuffer_destroy (&frame);
    *data_p = data;
    *size_p = used;
    return GT_OK;
}

gt_code_t
gt_events_replay (gt_events_t *self, uint64_t rid, uint64_t after_seq, const char *topic_prefix,
                  size_t limit, size_t byte_budget, void **data_p, size_t *size_p,
                  char *err, size_t err_size)
{
    assert (self);
    assert (!self->sharded);        //  cluster mode: by shard (the broker asks for one)
    s_span_t span = { NULL, 0, self->ring, self->ring_cap, false, self->ring_head, self->ring_count,
                      self->last_published };
    if (self->compact) {
        span.compact = self->compact;
        span.first_seq = gt_event_ring_first (self->compact);
        span.count = span.first_seq <= self->last_published ? (size_t) (self->last_published - span.first_seq + 1) : 0;
    }
    return s_replay (&span, rid, after_seq, topic_prefix, limit, byte_budget, data_p, size_p, err, err_size);
}

gt_code_t
gt_events_replay_shard (gt_events_t *self, uint64_t rid, unsigned shard, uint64_t after_seq,
                        const char *topic_prefix, size_t limit, size_t byte_budget,
                        void **data_p, size_t *size_p, char *err, size_t err_size)
{
    assert (self);
    assert (self->sharded);
    s_shard_t *part = s_shard (self, shard);
    s_span_t span = { NULL, 0, part->items, part->cap, true, part->head, part->count, part->last_published };
    return s_replay (&span, rid, after_seq, topic_prefix, limit, byte_budget, data_p, size_p, err, err_size);
}

void
gt_events_restore (gt_events_t *self, uint64_t seq, const char *topic, const void *body, size_t size)
{
    assert (self);
    assert (!self->compact);        //  (deferred: nothing stores event bodies)
    if (seq <= self->last_published)
        return;                     //  out of order or repeated: ignore
    s_remember (self, s_record_new (self, seq, GT_EVENT_COUNT_, 0, topic, body, size));
    gt_events_restore_seq (self, seq);
}

void
gt_events_restore_seq (gt_events_t *self, uint64_t last_seq)
{
    assert (self);
    if (last_seq > self->last_published) {
        self->last_published = last_seq;
        self->next_seq = last_seq + 1;
        if (self->compact) {
            assert (gt_event_ring_first (self->compact) == gt_event_ring_end (self->compact));
            gt_event_ring_restart (self->compact, self->next_seq);
            self->made_newest = false;
        }
    }
}

void
gt_events_restore_shard (gt_events_t *self, unsigned shard, uint64_t seq, const char *topic,
                         const void *body, size_t size)
{
    assert (self);
    assert (self->sharded);
    s_shard_t *part = s_shard (self, shard);
    if (seq <= part->last_published)
        return;                     //  out of order or repeated: ignore
    s_record_t *record = s_record_new (self, seq, GT_EVENT_COUNT_, 0, topic, body, size);
    record->view.order = 0;         //  made by another broker: no order here
    record->view.shard = shard;
    s_remember (self, record);
    gt_events_restore_shard_seq (self, shard, seq);
}

void
gt_events_restore_shard_seq (gt_events_t *self, unsigned shard, uint64_t last_seq)
{
    assert (self);
    assert (self->sharded);
    s_shard_t *part = s_shard (self, shard);
    if (last_seq > part->last_published) {
        part->last_published = last_seq;
        part->next_seq = last_seq + 1;
    }
}

void
gt_events_forget_shard (gt_events_t *self, unsigned shard)
{
    assert (self);
    assert (self->sharded);
    s_shard_t *part = self->shards [shard];
    if (!part)
        return;
    for (size_t i = 0; i < self->waiting_count; i++)
        assert (self->waiting [i]->view.shard != shard);
    //  Empty its slots of the global ring (skipped when they come up)
    for (size_t i = 0; i < part->count; i++) {
        s_record_t *record = part->items [(part->head + i) & (part->cap - 1)];
        assert (record->position >= self->ring_start && record->position < self->ring_start + self->ring_count);
        self->ring [(self->ring_head + (record->position - self->ring_start)) % self->ring_cap] = NULL;
        s_record_drop (self, record);
    }
    free (part->items);
    free (part);
    self->shards [shard] = NULL;
}

uint64_t
gt_events_shard_last_seq (gt_events_t *self, unsigned shard)
{
    assert (self);
    assert (shard < GT_SHARD_COUNT);
    return self->shards [shard] ? self->shards [shard]->last_published : 0;
}

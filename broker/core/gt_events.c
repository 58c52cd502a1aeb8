/*  gt_events.c — event numbering, encoding, publishing and history.  */
#include <czmq.h>
#include <malloc.h>
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

//  One event: the public view, then its topic and body in one allocation;
//  or, deferred (gt_events_defer_encoding), its topic and a snapshot of
//  the lease it carries, from which its body is encoded when wanted.
typedef struct {
    gt_event_record_t view;         //  order, seq, shard, kind, at, topic/body pointers (body NULL: deferred)
    uint64_t position;              //  cluster mode: its absolute place in the history ring
    uint32_t block;                 //  usable bytes of its block (reused for a later event when enough)
    _Alignas (8) char data [];      //  topic, NUL, body; or an s_snapshot_t, topic, NUL, its strings
} s_record_t;

//  Flags of a snapshot: which optional parts the lease had
#define S_HAS_CLEANUP       1       //  a cleanup (its url follows)
#define S_HAS_PAYLOAD       2       //  the cleanup's payload (follows the url)
#define S_HAS_MAX_RETRIES   4       //  cleanup.max_retries is set
#define S_HAS_RETRY_DELAY   8       //  cleanup.retry_delay_ms is set
#define S_HAS_ERROR         16      //  a cleanup_error (follows the object id)

//  A deferred event's lease, all that gt_msg_encode reads of it: the
//  scalars here, then the topic and the strings (object id, then the cleanup error,
//  url and payload when present, then each metadata key and value, each
//  NUL-terminated).  The service id is the topic's first service_len bytes.
typedef struct {
    uint64_t fence;                 //  fencing token
    uint64_t ttl_ms;                //  the lease's own TTL
    uint64_t created_at;            //  wall ms
    uint64_t renewed_at;            //  wall ms
    uint64_t expires_at;            //  wall ms
    uint64_t renewals;              //  successful renewals
    uint64_t cleanup_attempts;      //  attempts made by its callback
    uint64_t retry_delay_ms;        //  cleanup's backoff base (S_HAS_RETRY_DELAY)
    uint32_t max_retries;           //  cleanup's retries (S_HAS_MAX_RETRIES)
    uint32_t meta_count;            //  metadata entries
    char id [GT_LEASE_ID_LEN];      //  lease id, 32 hex chars (no NUL)
    uint8_t object_type;            //  gt_object_type_t
    uint8_t state;                  //  gt_lease_state_t
    uint8_t cleanup_status;         //  gt_cleanup_status_t
    uint8_t reason;                 //  gt_reason_t of an object.reclaimed
    uint8_t service_len;            //  bytes of the service id at the topic's start
    uint8_t topic_len;              //  bytes of the topic (it follows this struct)
    uint8_t flags;                  //  S_HAS_*
} s_snapshot_t;

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
    bool deferred;                  //  events are snapshots, encoded when sent or replayed
    gt_meta_entry_t *meta;          //  deferred: a snapshot's metadata, rebuilt to encode it
    size_t meta_cap;                //  entries allocated
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
        free (self->meta);
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
    assert (self->next_seq == 1 && self->waiting_count == 0);
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

//  Deferred: the record of an event with this topic (of topic_len bytes)
//  and a snapshot of lease (gt_lease_info_encodable)
static s_record_t *
s_record_snapshot (gt_events_t *self, const char *topic, size_t topic_len, const gt_lease_info_t *lease,
                   gt_reason_t reason)
{
    size_t service_len = strlen (lease->service_id);
    size_t object_size = strlen (lease->object_id) + 1;
    size_t error_size = lease->cleanup_error ? strlen (lease->cleanup_error) + 1 : 0;
    size_t url_size = lease->cleanup ? strlen (lease->cleanup->url) + 1 : 0;
    size_t payload_size = lease->cleanup && lease->cleanup->payload ? strlen (lease->cleanup->payload) + 1 : 0;
    size_t strings = topic_len + 1 + object_size + error_size + url_size + payload_size;
    for (size_t i = 0; i < lease->metadata.count; i++)
        strings += strlen (lease->metadata.entries [i].key) + strlen (lease->metadata.entries [i].value) + 2;
    //  (the topic holds the service id: gt_event_topic made it so)
    assert (service_len < topic_len && topic_len <= UINT8_MAX);
    assert (lease->metadata.count <= UINT32_MAX);
    s_record_t *record = s_record_alloc (self, offsetof (s_record_t, data) + sizeof (s_snapshot_t) + strings);
    s_snapshot_t *snapshot = (s_snapshot_t *) record->data;
    snapshot->fence = lease->fence;
    snapshot->ttl_ms = lease->ttl_ms;
    snapshot->created_at = lease->created_at;
    snapshot->renewed_at = lease->renewed_at;
    snapshot->expires_at = lease->expires_at;
    snapshot->renewals = lease->renewals;
    snapshot->cleanup_attempts = lease->cleanup_attempts;
    snapshot->retry_delay_ms = lease->cleanup ? lease->cleanup->retry_delay_ms : 0;
    snapshot->max_retries = lease->cleanup ? lease->cleanup->max_retries : 0;
    snapshot->meta_count = (uint32_t) lease->metadata.count;
    memcpy (snapshot->id, lease->id, GT_LEASE_ID_LEN);
    snapshot->object_type = (uint8_t) lease->object_type;
    snapshot->state = (uint8_t) lease->state;
    snapshot->cleanup_status = (uint8_t) lease->cleanup_status;
    snapshot->reason = (uint8_t) reason;
    snapshot->service_len = (uint8_t) service_len;
    snapshot->topic_len = (uint8_t) topic_len;
    snapshot->flags = (lease->cleanup ? S_HAS_CLEANUP : 0)
                    | (payload_size ? S_HAS_PAYLOAD : 0)
                    | (lease->cleanup && lease->cleanup->has_max_retries ? S_HAS_MAX_RETRIES : 0)
                    | (lease->cleanup && lease->cleanup->has_retry_delay ? S_HAS_RETRY_DELAY : 0)
                    | (lease->cleanup_error ? S_HAS_ERROR : 0);
    char *cursor = record->data + sizeof (s_snapshot_t);
    record->view.topic = cursor;
    memcpy (cursor, topic, topic_len + 1);
    cursor += topic_len + 1;
    memcpy (cursor, lease->object_id, object_size);
    cursor += object_size;
    if (error_size) {
        memcpy (cursor, lease->cleanup_error, error_size);
        cursor += error_size;
    }
    if (url_size) {
        memcpy (cursor, lease->cleanup->url, url_size);
        cursor += url_size;
    }
    if (payload_size) {
        memcpy (cursor, lease->cleanup->payload, payload_size);
        cursor += payload_size;
    }
    for (size_t i = 0; i < lease->metadata.count; i++) {
        size_t key_size = strlen (lease->metadata.entries [i].key) + 1;
        size_t value_size = strlen (lease->metadata.entries [i].value) + 1;
        memcpy (cursor, lease->metadata.entries [i].key, key_size);
        cursor += key_size;
        memcpy (cursor, lease->metadata.entries [i].value, value_size);
        cursor += value_size;
    }
    record->view.body = NULL;
    record->view.size = 0;
    record->view.lease_offset = 0;
    record->view.lease_size = 0;
    return record;
}

//  The next string of a snapshot, moving the cursor past it
static char *
s_snapshot_string (const char **cursor_p)
{
    char *string = (char *) *cursor_p;
    *cursor_p += strlen (string) + 1;
    return string;
}

//  Append a deferred record's event body to buf, exactly as gt_events_make
//  would have encoded it at once.  -1 if the codec refuses it (it took the
//  same lease when made, so only a bug gets there).
static int
s_snapshot_encode (gt_events_t *self, const s_record_t *record, msgpack_sbuffer *buf)
{
    const s_snapshot_t *snapshot = (const s_snapshot_t *) record->data;
    gt_msg_t msg;
    memset (&msg, 0, sizeof (msg));
    msg.kind = GT_MSG_EVENT;
    msg.version = GT_PROTOCOL_VERSION;
    msg.event.seq = record->view.seq;
    msg.event.has_shard = self->sharded;
    msg.event.shard = record->view.shard;
    msg.event.kind = record->view.kind;
    msg.event.at = record->view.at;
    msg.event.reason = (gt_reason_t) snapshot->reason;
    gt_lease_info_t *lease = &msg.event.lease;
    memcpy (lease->id, snapshot->id, GT_LEASE_ID_LEN);
    lease->id [GT_LEASE_ID_LEN] = '\0';
    char service [UINT8_MAX + 1];
    memcpy (service, record->view.topic, snapshot->service_len);
    service [snapshot->service_len] = '\0';
    lease->service_id = service;
    lease->object_type = (gt_object_type_t) snapshot->object_type;
    lease->state = (gt_lease_state_t) snapshot->state;
    lease->fence = snapshot->fence;
    lease->ttl_ms = snapshot->ttl_ms;
    lease->created_at = snapshot->created_at;
    lease->renewed_at = snapshot->renewed_at;
    lease->expires_at = snapshot->expires_at;
    lease->renewals = snapshot->renewals;
    lease->cleanup_status = (gt_cleanup_status_t) snapshot->cleanup_status;
    lease->cleanup_attempts = snapshot->cleanup_attempts;
    const char *cursor = record->view.topic + snapshot->topic_len + 1;
    lease->object_id = s_snapshot_string (&cursor);
    if (snapshot->flags & S_HAS_ERROR)
        lease->cleanup_error = s_snapshot_string (&cursor);
    gt_cleanup_t cleanup;
    memset (&cleanup, 0, sizeof (cleanup));
    if (snapshot->flags & S_HAS_CLEANUP) {
        cleanup.url = s_snapshot_string (&cursor);
        if (snapshot->flags & S_HAS_PAYLOAD)
            cleanup.payload = s_snapshot_string (&cursor);
        cleanup.has_max_retries = (snapshot->flags & S_HAS_MAX_RETRIES) != 0;
        cleanup.max_retries = snapshot->max_retries;
        cleanup.has_retry_delay = (snapshot->flags & S_HAS_RETRY_DELAY) != 0;
        cleanup.retry_delay_ms = snapshot->retry_delay_ms;
        lease->cleanup = &cleanup;
    }
    if (snapshot->meta_count > self->meta_cap) {
        free (self->meta);
        self->meta_cap = snapshot->meta_count;
        self->meta = (gt_meta_entry_t *) malloc (self->meta_cap * sizeof (gt_meta_entry_t));
        assert (self->meta);
    }
    for (size_t i = 0; i < snapshot->meta_count; i++) {
        self->meta [i].key = s_snapshot_string (&cursor);
        self->meta [i].value = s_snapshot_string (&cursor);
    }
    lease->metadata.entries = snapshot->meta_count ? self->meta : NULL;
    lease->metadata.count = snapshot->meta_count;
    return gt_msg_encode (&msg, buf);
}

//  Append a record's event body to buf: its bytes, or encoded from its
//  snapshot.  -1 if it cannot be encoded (nothing appended).
static int
s_record_body (gt_events_t *self, const s_record_t *record, msgpack_sbuffer *buf)
{
    if (record->view.body)
        return msgpack_sbuffer_write (buf, (const char *) record->view.body, record->view.size);
    return s_snapshot_encode (self, record, buf);
}

const gt_event_record_t *
gt_events_make (gt_events_t *self, gt_event_kind_t kind, const gt_lease_info_t *lease,
                gt_reason_t reason, uint64_t at)
{
    assert (self);
    assert (lease);
    char topic [256];
    int topic_len = gt_event_topic (topic, sizeof (topic), kind, lease->object_type, lease->service_id);
    if (topic_len < 0)
        return NULL;
    unsigned shard = gt_shard_of (lease->object_id);
    uint64_t seq = self->sharded ? s_shard (self, shard)->next_seq : self->next_seq;
    reason = kind == GT_EVENT_OBJECT_RECLAIMED ? reason : GT_REASON_NONE;
    s_record_t *record;
    if (self->deferred) {
        //  Refused now, as an eager event would be.  Not checked: the id's
        //  characters (the engine formats every id it hands out) and
        //  duplicate metadata keys (no request can bring them); the encoder
        //  checks both, and an event it refuses is neither sent nor replayed
        if (!gt_lease_info_encodable (lease))
            return NULL;
        record = s_record_snapshot (self, topic, (size_t) topic_len, lease, reason);
        record->view.seq = seq;
        record->view.kind = kind;
        record->view.at = at;
    }
    else {
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
        record = s_record_new (self, seq, kind, at, topic, self->scratch.data, self->scratch.size);
        record->view.lease_offset = lease_offset;
        record->view.lease_size = lease_size;
        self->last_made = record;
        self->last_lease = *lease;
    }
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
    assert (self->waiting_count == 0);
    self->deferred = true;
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

size_t
gt_events_publish (gt_events_t *self, zsock_t *pub, uint64_t up_to, uint64_t *by_kind)
{
    assert (self);
    self->last_made = NULL;
    void *handle = pub ? zsock_resolve (pub) : NULL;
    size_t done = 0;
    while (done < self->waiting_count && self->waiting [done]->view.order <= up_to) {
        s_record_t *record = self->waiting [done];
        size_t topic_size = handle ? strlen (record->view.topic) : 0;
        if (handle && (!self->wanted || self->wanted (self->wanted_ctx, record->view.topic, topic_size))) {
            const void *body = record->view.body;
            size_t size = record->view.size;
            if (!body) {
                //  Deferred: encoded now that someone wants it
                msgpack_sbuffer_clear (&self->scratch);
                if (s_snapshot_encode (self, record, &self->scratch) == 0) {
                    body = self->scratch.data;
                    size = self->scratch.size;
                }
            }
            //  PUB never blocks: past a subscriber's HWM ZeroMQ drops for it
            if (body) {
                zmq_send (handle, record->view.topic, topic_size, ZMQ_SNDMORE | ZMQ_DONTWAIT);
                zmq_send (handle, body, size, ZMQ_DONTWAIT);
            }
        }
        if (by_kind && record->view.kind < GT_EVENT_COUNT_)
            by_kind [record->view.kind]++;
        self->last_published = record->view.order;
        if (self->sharded)
            s_shard (self, record->view.shard)->last_published = record->view.seq;
        s_remember (self, record);
        done++;
    }
    memmove (self->waiting, self->waiting + done, (self->waiting_count - done) * sizeof (s_record_t *));
    self->waiting_count -= done;
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
    assert (from > self->last_published);
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
    for (size_t i = 0; i < self->ring_count; i++) {
        const s_record_t *record = self->ring [(self->ring_head + i) % self->ring_cap];
        if (record)
            return record->view.order;
    }
    return self->last_published + 1;
}

//  A history to page through: the global ring (single mode) or one
//  shard's ring (cluster mode), oldest first, and its newest published seq.
typedef struct {
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

//  Index (0 = oldest) of the first history record with seq > after.
static size_t
s_history_after (const s_span_t *span, uint64_t after)
{
    size_t low = 0, high = span->count;
    while (low < high) {
        size_t middle = low + (high - low) / 2;
        if (s_span_at (span, middle)->view.seq <= after)
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
s_replay (gt_events_t *self, const s_span_t *span, uint64_t rid, uint64_t after_seq, const char *topic_prefix,
          size_t limit, size_t byte_budget, void **data_p, size_t *size_p, char *err, size_t err_size)
{
    *data_p = NULL;
    *size_p = 0;
    size_t prefix_len = topic_prefix ? strlen (topic_prefix) : 0;
    //  The page: the bodies of the events that match among the history
    //  records examined, each a canonical EVENT map (stored bytes, or
    //  encoded from a deferred record's snapshot, as it was published);
    //  scanned is the seq the page ends at
    msgpack_sbuffer page;
    msgpack_sbuffer_init (&page);
    size_t count = 0;
    uint64_t scanned = after_seq < span->last_seq ? after_seq : span->last_seq;
    if (after_seq < span->last_seq) {
        uint64_t oldest = span->count ? s_span_at (span, 0)->view.seq : span->last_seq + 1;
        if (after_seq + 1 < oldest) {
            snprintf (err, err_size, "events after %" PRIu64 " are gone: history starts at %" PRIu64,
                      after_seq, oldest);
            return GT_ERR_TOO_OLD;
        }
        size_t first = s_history_after (span, after_seq);
        for (size_t examined = 0; first + examined < span->count && count < limit
                                  && examined < GT_EVENTS_SCAN_MAX; examined++) {
            const s_record_t *record = s_span_at (span, first + examined);
            if (!topic_prefix || strncmp (record->view.topic, topic_prefix, prefix_len) == 0) {
                size_t before = page.size;
                if (s_record_body (self, record, &page) != 0) {
                    msgpack_sbuffer_destroy (&page);
                    snprintf (err, err_size, "event %" PRIu64 " cannot be encoded", record->view.seq);
                    return GT_ERR_INTERNAL;
                }
                if (count > 0 && page.size > byte_budget) {
                    page.size = before;     //  the page is full without it
                    break;
                }
                count++;
            }
            scanned = record->view.seq;
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
    s_span_t span = { self->ring, self->ring_cap, false, self->ring_head, self->ring_count,
                      self->last_published };
    return s_replay (self, &span, rid, after_seq, topic_prefix, limit, byte_budget, data_p, size_p, err, err_size);
}

gt_code_t
gt_events_replay_shard (gt_events_t *self, uint64_t rid, unsigned shard, uint64_t after_seq,
                        const char *topic_prefix, size_t limit, size_t byte_budget,
                        void **data_p, size_t *size_p, char *err, size_t err_size)
{
    assert (self);
    assert (self->sharded);
    s_shard_t *part = s_shard (self, shard);
    s_span_t span = { part->items, part->cap, true, part->head, part->count, part->last_published };
    return s_replay (self, &span, rid, after_seq, topic_prefix, limit, byte_budget, data_p, size_p, err, err_size);
}

void
gt_events_restore (gt_events_t *self, uint64_t seq, const char *topic, const void *body, size_t size)
{
    assert (self);
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

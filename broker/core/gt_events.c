/*  gt_events.c — event numbering, encoding, publishing and history.  */
#include <czmq.h>
#include "gt_events.h"

//  One event: the public view, then its topic and body in one allocation.
typedef struct {
    gt_event_record_t view;         //  seq, kind, at, topic/body pointers
    char data [];                   //  topic, NUL, body
} s_record_t;

struct gt_events_t {
    uint64_t next_seq;              //  seq of the next event made
    uint64_t last_published;        //  newest published seq
    s_record_t **waiting;           //  unpublished, oldest first
    size_t waiting_count;           //  how many
    size_t waiting_cap;             //  slots allocated
    s_record_t **ring;              //  history of published events
    size_t ring_cap;                //  GC_EVENT_HISTORY
    size_t ring_head;               //  index of the oldest
    size_t ring_count;              //  how many are kept
    msgpack_sbuffer scratch;        //  reused to encode each event (no malloc per event)
};

static s_record_t *
s_record_new (uint64_t seq, gt_event_kind_t kind, uint64_t at, const char *topic,
              const void *body, size_t size)
{
    size_t topic_len = strlen (topic);
    s_record_t *record = (s_record_t *) malloc (sizeof (s_record_t) + topic_len + 1 + size);
    assert (record);
    memcpy (record->data, topic, topic_len + 1);
    memcpy (record->data + topic_len + 1, body, size);
    record->view.seq = seq;
    record->view.kind = kind;
    record->view.at = at;
    record->view.topic = record->data;
    record->view.body = record->data + topic_len + 1;
    record->view.size = size;
    return record;
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
            free (self->ring [(self->ring_head + i) % self->ring_cap]);
        free (self->ring);
        msgpack_sbuffer_destroy (&self->scratch);
        free (self);
        *self_p = NULL;
    }
}

const gt_event_record_t *
gt_events_make (gt_events_t *self, gt_event_kind_t kind, const gt_lease_info_t *lease,
                gt_reason_t reason, uint64_t at)
{
    assert (self);
    assert (lease);
    char topic [256];
    if (gt_event_topic (topic, sizeof (topic), kind, lease->object_type, lease->service_id) < 0)
        return NULL;
    gt_msg_t msg;
    memset (&msg, 0, sizeof (msg));
    msg.kind = GT_MSG_EVENT;
    msg.version = GT_PROTOCOL_VERSION;
    msg.event.seq = self->next_seq;
    msg.event.kind = kind;
    msg.event.at = at;
    msg.event.lease = *lease;
    msg.event.reason = kind == GT_EVENT_OBJECT_RECLAIMED ? reason : GT_REASON_NONE;
    msgpack_sbuffer_clear (&self->scratch);
    if (gt_msg_encode (&msg, &self->scratch))
        return NULL;
    s_record_t *record = s_record_new (self->next_seq, kind, at, topic,
                                       self->scratch.data, self->scratch.size);
    if (self->waiting_count == self->waiting_cap) {
        self->waiting_cap = self->waiting_cap ? self->waiting_cap * 2 : 64;
        self->waiting = (s_record_t **) realloc (self->waiting, self->waiting_cap * sizeof (s_record_t *));
        assert (self->waiting);
    }
    self->waiting [self->waiting_count++] = record;
    self->next_seq++;
    return &record->view;
}

uint64_t
gt_events_next_seq (gt_events_t *self)
{
    assert (self);
    return self->next_seq;
}

//  Append a published record to the history (dropping the oldest if full).
static void
s_remember (gt_events_t *self, s_record_t *record)
{
    if (self->ring_cap == 0) {
        free (record);
        return;
    }
    if (self->ring_count == self->ring_cap) {
        free (self->ring [self->ring_head]);
        self->ring_head = (self->ring_head + 1) % self->ring_cap;
        self->ring_count--;
    }
    self->ring [(self->ring_head + self->ring_count) % self->ring_cap] = record;
    self->ring_count++;
}

size_t
gt_events_publish (gt_events_t *self, zsock_t *pub, uint64_t up_to, uint64_t *by_kind)
{
    assert (self);
    void *handle = pub ? zsock_resolve (pub) : NULL;
    size_t done = 0;
    while (done < self->waiting_count && self->waiting [done]->view.seq <= up_to) {
        s_record_t *record = self->waiting [done];
        if (handle) {
            //  PUB never blocks: past a subscriber's HWM ZeroMQ drops for it
            zmq_send (handle, record->view.topic, strlen (record->view.topic), ZMQ_SNDMORE | ZMQ_DONTWAIT);
            zmq_send (handle, record->view.body, record->view.size, ZMQ_DONTWAIT);
        }
        if (by_kind && record->view.kind < GT_EVENT_COUNT_)
            by_kind [record->view.kind]++;
        self->last_published = record->view.seq;
        s_remember (self, record);
        done++;
    }
    memmove (self->waiting, self->waiting + done, (self->waiting_count - done) * sizeof (s_record_t *));
    self->waiting_count -= done;
    return done;
}

void
gt_events_rollback (gt_events_t *self, uint64_t from)
{
    assert (self);
    assert (from > self->last_published);
    while (self->waiting_count && self->waiting [self->waiting_count - 1]->view.seq >= from)
        free (self->waiting [--self->waiting_count]);
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
    return self->ring_count ? self->ring [self->ring_head]->view.seq : self->last_published + 1;
}

//  Index (0 = oldest) of the first history record with seq > after.
static size_t
s_history_after (gt_events_t *self, uint64_t after)
{
    size_t low = 0, high = self->ring_count;
    while (low < high) {
        size_t middle = low + (high - low) / 2;
        if (self->ring [(self->ring_head + middle) % self->ring_cap]->view.seq <= after)
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

gt_code_t
gt_events_replay (gt_events_t *self, uint64_t rid, uint64_t after_seq, const char *topic_prefix,
                  size_t limit, size_t byte_budget, void **data_p, size_t *size_p,
                  char *err, size_t err_size)
{
    assert (self);
    *data_p = NULL;
    *size_p = 0;
    size_t prefix_len = topic_prefix ? strlen (topic_prefix) : 0;
    //  The page: history records [first, first + examined), of which the
    //  count that match are packed; scanned is the seq the page ends at
    size_t first = 0, examined = 0, count = 0, bytes = 0;
    uint64_t scanned = after_seq < self->last_published ? after_seq : self->last_published;
    if (after_seq < self->last_published) {
        uint64_t oldest = gt_events_oldest_seq (self);
        if (after_seq + 1 < oldest) {
            snprintf (err, err_size, "events after %" PRIu64 " are gone: history starts at %" PRIu64,
                      after_seq, oldest);
            return GT_ERR_TOO_OLD;
        }
        first = s_history_after (self, after_seq);
        while (first + examined < self->ring_count && count < limit && examined < GT_EVENTS_SCAN_MAX) {
            const s_record_t *record = self->ring [(self->ring_head + first + examined) % self->ring_cap];
            bool match = !topic_prefix || strncmp (record->view.topic, topic_prefix, prefix_len) == 0;
            if (match && count > 0 && bytes + record->view.size > byte_budget)
                break;
            if (match) {
                bytes += record->view.size;
                count++;
            }
            scanned = record->view.seq;
            examined++;
        }
    }
    //  Pack the reply map directly in canonical order (GTLP.md §5.9: v, rid,
    //  code, events, last_seq, scanned_seq) and write the stored event
    //  bodies, each already a canonical EVENT map, into the array as they
    //  are: events are never re-encoded.
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
    for (size_t i = 0; i < examined; i++) {
        const s_record_t *record = self->ring [(self->ring_head + first + i) % self->ring_cap];
        if (!topic_prefix || strncmp (record->view.topic, topic_prefix, prefix_len) == 0)
            msgpack_sbuffer_write (&frame, (const char *) record->view.body, record->view.size);
    }
    s_pack_key (&pk, "last_seq");
    msgpack_pack_uint64 (&pk, self->last_published);
    s_pack_key (&pk, "scanned_seq");
    msgpack_pack_uint64 (&pk, scanned);
    size_t used = frame.size;
    uint8_t *data = (uint8_t *) msgpack_sbuffer_release (&frame);
    msgpack_sbuffer_destroy (&frame);
    *data_p = data;
    *size_p = used;
    return GT_OK;
}

void
gt_events_restore (gt_events_t *self, uint64_t seq, const char *topic, const void *body, size_t size)
{
    assert (self);
    if (seq <= self->last_published)
        return;                     //  out of order or repeated: ignore
    s_remember (self, s_record_new (seq, GT_EVENT_COUNT_, 0, topic, body, size));
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

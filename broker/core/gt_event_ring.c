/*  gt_event_ring.c — compact event records in a ring of bytes; the
    contract is in gt_event_ring.h.

    A record, in order:
      8 bytes       kind, object type, state, cleanup status, reason, flags
                    (S_HAS_*), bytes of the service id, bytes of the topic
      32 bytes      the lease id, as the lease had it
      service id    its bytes, no NUL: the topic (gt_event_topic) is made
                    again from it, the kind and the object type
      varints       at; created_at - at, renewed_at - created_at,
                    expires_at - renewed_at (zigzag: any order of the
                    three round-trips); fence, ttl_ms, renewals,
                    cleanup_attempts; with a cleanup its retry_delay_ms and
                    max_retries (a LEASE map carries both, set or not);
                    the number of metadata entries
      strings       object id, then when flagged the cleanup error, url
                    and payload, then each metadata key and value, each
                    NUL-terminated

    The topic is kept as its service alone, ~25 bytes less a record (a
    lease without metadata: ~80 bytes instead of ~105), and made again
    where it is read: for each kind, once per run of events of one service
    and object type (the last one made for each kind is kept), and no
    longer made where a record is appended.  The id is kept as text: as
    16 bytes it would save 16 more, but parsing it for every record cost
    about 2.5 % of a request's instructions.  */
#include <czmq.h>
#include "gt_event_ring.h"

//  Flags of a record: which optional parts the lease had
#define S_HAS_CLEANUP       1       //  a cleanup (its url follows)
#define S_HAS_PAYLOAD       2       //  the cleanup's payload (follows the url)
#define S_HAS_MAX_RETRIES   4       //  cleanup.max_retries is set
#define S_HAS_RETRY_DELAY   8       //  cleanup.retry_delay_ms is set
#define S_HAS_ERROR         16      //  a cleanup_error (follows the object id)

#define S_HEADER_BYTES      8           //  kind ... topic length
#define S_SERVICE_AT        (S_HEADER_BYTES + GT_LEASE_ID_LEN)  //  where the service id starts
#define S_VARINT_MAX        10          //  bytes of the longest varint
#define S_VARINTS_MAX       11          //  varints in a record at most
#define S_FIRST_BYTES       (64 * 1024) //  bytes of a new ring
#define S_GROW_BY_EIGHTHS   (4 * 1024 * 1024)   //  from this size on the ring grows by an eighth, not by half
#define S_FIRST_STARTS      1024        //  record slots of a new ring

//  A topic made from a record, kept for the next record of its kind
typedef struct {
    char text [GT_EVENT_RING_TOPIC_MAX + 1];    //  the topic (it starts with the service id)
    size_t length;                  //  its length (0: none made yet)
    uint8_t type;                   //  the object type it was made for
    uint8_t service_len;            //  the length of its service id
} s_topic_t;

struct gt_event_ring_t {
    uint8_t *bytes;                 //  the records
    size_t size;                    //  bytes allocated
    size_t end;                     //  where the next record goes
    bool wrapped;                   //  the newest records lie at the start of bytes, before the oldest
    size_t wrap_at;                 //  wrapped: where the records before the wrap end
    size_t *starts;                 //  offset of each record: a ring, oldest at head
    size_t starts_cap;              //  slots (a power of two)
    size_t head;                    //  slot of the oldest record
    size_t count;                   //  records kept
    uint64_t first_seq;             //  seq of the oldest record (of the next one, if none)
    gt_meta_entry_t *meta;          //  a record's metadata entries, while it is encoded
    size_t meta_cap;                //  entries allocated
    s_topic_t topics [GT_EVENT_COUNT_];     //  by kind: the topic gt_event_ring_topic made last
};

gt_event_ring_t *
gt_event_ring_new (void)
{
    gt_event_ring_t *self = (gt_event_ring_t *) zmalloc (sizeof (gt_event_ring_t));
    assert (self);
    self->first_seq = 1;
    return self;
}

void
gt_event_ring_destroy (gt_event_ring_t **self_p)
{
    assert (self_p);
    gt_event_ring_t *self = *self_p;
    if (self) {
        free (self->bytes);
        free (self->starts);
        free (self->meta);
        free (self);
        *self_p = NULL;
    }
}

uint64_t
gt_event_ring_first (gt_event_ring_t *self)
{
    assert (self);
    return self->first_seq;
}

uint64_t
gt_event_ring_end (gt_event_ring_t *self)
{
    assert (self);
    return self->first_seq + self->count;
}

size_t
gt_event_ring_bytes (gt_event_ring_t *self)
{
    assert (self);
    return self->size;
}

size_t
gt_event_ring_used (gt_event_ring_t *self)
{
    assert (self);
    if (self->count == 0)
        return 0;
    size_t tail = self->starts [self->head];
    return self->wrapped ? self->wrap_at - tail + self->end : self->end - tail;
}

//  The slot of the record seq's offset
static size_t
s_slot (gt_event_ring_t *self, uint64_t seq)
{
    assert (seq >= self->first_seq && seq - self->first_seq < self->count);
    return (self->head + (size_t) (seq - self->first_seq)) & (self->starts_cap - 1);
}

//  Nothing kept: the next record goes to the start of the bytes
static void
s_empty (gt_event_ring_t *self)
{
    self->count = 0;
    self->head = 0;
    self->end = 0;
    self->wrapped = false;
}

void
gt_event_ring_restart (gt_event_ring_t *self, uint64_t seq)
{
    assert (self);
    s_empty (self);
    self->first_seq = seq;
}

void
gt_event_ring_drop_before (gt_event_ring_t *self, uint64_t seq)
{
    assert (self);
    while (self->count && self->first_seq < seq) {
        size_t tail = self->starts [self->head];
        self->head = (self->head + 1) & (self->starts_cap - 1);
        self->count--;
        self->first_seq++;
        //  The oldest now lies after the wrap: the space skipped at the
        //  end of the bytes is free again
        if (self->count && self->wrapped && self->starts [self->head] < tail)
            self->wrapped = false;
    }
    if (self->count == 0)
        gt_event_ring_restart (self, self->first_seq);
}

void
gt_event_ring_drop_from (gt_event_ring_t *self, uint64_t seq)
{
    assert (self);
    if (seq < self->first_seq)
        seq = self->first_seq;
    if (seq >= gt_event_ring_end (self))
        return;
    size_t from = self->starts [s_slot (self, seq)];
    self->count = (size_t) (seq - self->first_seq);
    if (self->count == 0) {
        s_empty (self);
        return;
    }
    if (self->wrapped && from == 0) {
        //  Every record after the wrap is gone: the end is where the ones
        //  before it end
        self->wrapped = false;
        self->end = self->wrap_at;
    }
    else {
        if (self->wrapped && from >= self->starts [self->head])
            self->wrapped = false;      //  (a record before the wrap went too)
        self->end = from;
    }
}

//  Copy the records into bytes of new_size, oldest first from offset 0
static void
s_grow (gt_event_ring_t *self, size_t new_size)
{
    uint8_t *bytes = (uint8_t *) malloc (new_size);
    assert (bytes);
    size_t used = 0;
    if (self->count) {
        size_t tail = self->starts [self->head];
        size_t first_part = (self->wrapped ? self->wrap_at : self->end) - tail;
        memcpy (bytes, self->bytes + tail, first_part);
        if (self->wrapped)
            memcpy (bytes + first_part, self->bytes, self->end);
        for (size_t i = 0; i < self->count; i++) {
            size_t *start = &self->starts [(self->head + i) & (self->starts_cap - 1)];
            *start = *start >= tail ? *start - tail : *start + first_part;
        }
        used = first_part + (self->wrapped ? self->end : 0);
    }
    free (self->bytes);
    self->bytes = bytes;
    self->size = new_size;
    self->end = used;
    self->wrapped = false;
}

//  Where a record of at most bytes goes (growing the ring if need be)
static size_t
s_reserve (gt_event_ring_t *self, size_t bytes)
{
    if (self->count == self->starts_cap) {
        //  Twice the slots, unrolled so that the oldest is in slot 0
        size_t cap = self->starts_cap ? self->starts_cap * 2 : S_FIRST_STARTS;
        size_t *starts = (size_t *) malloc (cap * sizeof (size_t));
        assert (starts);
        for (size_t i = 0; i < self->count; i++)
            starts [i] = self->starts [(self->head + i) & (self->starts_cap - 1)];
        free (self->starts);
        self->starts = starts;
        self->starts_cap = cap;
        self->head = 0;
    }
    if (self->count == 0)
        s_empty (self);
    size_t tail = self->count ? self->starts [self->head] : 0;
    if (self->wrapped) {
        if (tail - self->end >= bytes)
            return self->end;
    }
    else {
        if (self->size - self->end >= bytes)
            return self->end;
        if (self->count && tail >= bytes) {
            self->wrapped = true;
            self->wrap_at = self->end;
            return 0;
        }
    }
    //  A full history takes what the ring grew to: past a few MiB an eighth
    //  at a time leaves at most an eighth of it unused, where a half could
    //  leave a third (the copies come more often: about 8 times the final
    //  size copied in all instead of 2, at memcpy's speed)
    size_t new_size = self->size == 0 ? S_FIRST_BYTES
                    : self->size + (self->size < S_GROW_BY_EIGHTHS ? self->size / 2 : self->size / 8);
    if (new_size < self->size + bytes)
        new_size = self->size + bytes;
    s_grow (self, new_size);
    return self->end;
}

//  Zigzag: a signed difference as an unsigned varint, small either way
static inline uint64_t
s_zigzag (uint64_t difference)
{
    return (difference << 1) ^ (uint64_t) -(int64_t) (difference >> 63);
}

static inline uint64_t
s_unzigzag (uint64_t value)
{
    return (value >> 1) ^ (uint64_t) -(int64_t) (value & 1);
}

static inline uint8_t *
s_put_varint (uint8_t *cursor, uint64_t value)
{
    while (value >= 0x80) {
        *cursor++ = (uint8_t) (value | 0x80);
        value >>= 7;
    }
    *cursor++ = (uint8_t) value;
    return cursor;
}

static inline uint64_t
s_get_varint (const uint8_t **cursor_p)
{
    const uint8_t *cursor = *cursor_p;
    uint64_t value = 0;
    for (unsigned shift = 0; ; shift += 7) {
        uint8_t byte = *cursor++;
        value |= (uint64_t) (byte & 0x7F) << shift;
        if (!(byte & 0x80))
            break;
    }
    *cursor_p = cursor;
    return value;
}

static inline uint8_t *
s_put_string (uint8_t *cursor, const char *string, size_t size)
{
    memcpy (cursor, string, size);
    return cursor + size;
}

static inline char *
s_get_string (const uint8_t **cursor_p)
{
    char *string = (char *) *cursor_p;
    *cursor_p += strlen (string) + 1;
    return string;
}

bool
gt_event_ring_append (gt_event_ring_t *self, gt_event_kind_t kind, const gt_lease_info_t *lease,
                      gt_reason_t reason, uint64_t at)
{
    assert (self);
    assert (lease && lease->service_id && lease->object_id);
    //  The header, the id, the service and the varints first, to know their size
    uint8_t fixed [S_SERVICE_AT + GT_EVENT_RING_TOPIC_MAX + S_VARINTS_MAX * S_VARINT_MAX];
    size_t service_len = strlen (lease->service_id);
    int topic_len = gt_event_topic_length (kind, lease->object_type, service_len);
    if (topic_len < 0 || topic_len > GT_EVENT_RING_TOPIC_MAX)
        return false;
    const gt_cleanup_t *cleanup = lease->cleanup;
    size_t object_size = strlen (lease->object_id) + 1;
    size_t error_size = lease->cleanup_error ? strlen (lease->cleanup_error) + 1 : 0;
    size_t url_size = cleanup ? strlen (cleanup->url) + 1 : 0;
    size_t payload_size = cleanup && cleanup->payload ? strlen (cleanup->payload) + 1 : 0;
    size_t strings = object_size + error_size + url_size + payload_size;
    for (size_t i = 0; i < lease->metadata.count; i++)
        strings += strlen (lease->metadata.entries [i].key) + strlen (lease->metadata.entries [i].value) + 2;

    uint8_t *cursor = fixed;
    *cursor++ = (uint8_t) kind;
    *cursor++ = (uint8_t) lease->object_type;
    *cursor++ = (uint8_t) lease->state;
    *cursor++ = (uint8_t) lease->cleanup_status;
    *cursor++ = (uint8_t) reason;
    *cursor++ = (uint8_t) ((cleanup ? S_HAS_CLEANUP : 0)
                         | (payload_size ? S_HAS_PAYLOAD : 0)
                         | (cleanup && cleanup->has_max_retries ? S_HAS_MAX_RETRIES : 0)
                         | (cleanup && cleanup->has_retry_delay ? S_HAS_RETRY_DELAY : 0)
                         | (lease->cleanup_error ? S_HAS_ERROR : 0));
    //  (the topic is service, separator, verb, '.', type: the service is shorter)
    assert (service_len < (size_t) topic_len);
    *cursor++ = (uint8_t) service_len;
    *cursor++ = (uint8_t) topic_len;
    memcpy (cursor, lease->id, GT_LEASE_ID_LEN);
    cursor += GT_LEASE_ID_LEN;
    memcpy (cursor, lease->service_id, service_len);
    cursor += service_len;
    cursor = s_put_varint (cursor, at);
    cursor = s_put_varint (cursor, s_zigzag (lease->created_at - at));
    cursor = s_put_varint (cursor, s_zigzag (lease->renewed_at - lease->created_at));
    cursor = s_put_varint (cursor, s_zigzag (lease->expires_at - lease->renewed_at));
    cursor = s_put_varint (cursor, lease->fence);
    cursor = s_put_varint (cursor, lease->ttl_ms);
    cursor = s_put_varint (cursor, lease->renewals);
    cursor = s_put_varint (cursor, lease->cleanup_attempts);
    if (cleanup) {
        cursor = s_put_varint (cursor, cleanup->retry_delay_ms);
        cursor = s_put_varint (cursor, cleanup->max_retries);
    }
    cursor = s_put_varint (cursor, lease->metadata.count);
    size_t fixed_size = (size_t) (cursor - fixed);
    size_t start = s_reserve (self, fixed_size + strings);
    cursor = self->bytes + start;
    memcpy (cursor, fixed, fixed_size);
    cursor += fixed_size;
    cursor = s_put_string (cursor, lease->object_id, object_size);
    if (error_size)
        cursor = s_put_string (cursor, lease->cleanup_error, error_size);
    if (url_size)
        cursor = s_put_string (cursor, cleanup->url, url_size);
    if (payload_size)
        cursor = s_put_string (cursor, cleanup->payload, payload_size);
    for (size_t i = 0; i < lease->metadata.count; i++) {
        const gt_meta_entry_t *entry = &lease->metadata.entries [i];
        cursor = s_put_string (cursor, entry->key, strlen (entry->key) + 1);
        cursor = s_put_string (cursor, entry->value, strlen (entry->value) + 1);
    }
    self->starts [(self->head + self->count) & (self->starts_cap - 1)] = start;
    self->count++;
    self->end = (size_t) (cursor - self->bytes);
    return true;
}

bool
gt_event_ring_append_again (gt_event_ring_t *self, gt_event_kind_t kind, gt_reason_t reason)
{
    assert (self);
    if (self->count == 0)
        return false;
    size_t newest = (self->head + self->count - 1) & (self->starts_cap - 1);
    //  The newest record ends where the next one goes
    size_t size = self->end - self->starts [newest];
    const uint8_t *record = self->bytes + self->starts [newest];
    int topic_len = gt_event_topic_length (kind, (gt_object_type_t) record [1], record [6]);
    if (topic_len < 0 || topic_len > GT_EVENT_RING_TOPIC_MAX)
        return false;
    size_t start = s_reserve (self, size);
    //  (the reserve may have moved the records, and their slots)
    newest = (self->head + self->count - 1) & (self->starts_cap - 1);
    uint8_t *copy = self->bytes + start;
    memcpy (copy, self->bytes + self->starts [newest], size);
    copy [0] = (uint8_t) kind;
    copy [4] = (uint8_t) reason;
    copy [7] = (uint8_t) topic_len;
    self->starts [(self->head + self->count) & (self->starts_cap - 1)] = start;
    self->count++;
    self->end = start + size;
    return true;
}

gt_event_kind_t
gt_event_ring_kind (gt_event_ring_t *self, uint64_t seq)
{
    assert (self);
    return (gt_event_kind_t) self->bytes [self->starts [s_slot (self, seq)]];
}

const char *
gt_event_ring_topic (gt_event_ring_t *self, uint64_t seq, size_t *size_p)
{
    assert (self);
    const uint8_t *record = self->bytes + self->starts [s_slot (self, seq)];
    const char *service = (const char *) record + S_SERVICE_AT;
    //  Events come in runs of one service and object type (a client's
    //  creates, a burst of expiries, each with its object's reclaim): the
    //  topic made last for the record's kind is most often the one
    assert (record [0] < GT_EVENT_COUNT_);
    s_topic_t *topic = &self->topics [record [0]];
    if (!(topic->length && topic->type == record [1] && topic->service_len == record [6]
          && memcmp (topic->text, service, record [6]) == 0)) {
        int length = gt_event_topic_n (topic->text, sizeof (topic->text), (gt_event_kind_t) record [0],
                                       (gt_object_type_t) record [1], service, record [6]);
        assert (length == record [7]);          //  it fitted when the record was made
        topic->length = (size_t) length;
        topic->type = record [1];
        topic->service_len = record [6];
    }
    if (size_p)
        *size_p = topic->length;
    return topic->text;
}

int
gt_event_ring_encode (gt_event_ring_t *self, uint64_t seq, msgpack_sbuffer *buf)
{
    assert (self);
    assert (buf);
    const uint8_t *record = self->bytes + self->starts [s_slot (self, seq)];
    uint8_t flags = record [5];
    //  An event, not a whole message (a gt_msg_t is three times its size)
    gt_event_t event;
    memset (&event, 0, sizeof (event));
    event.seq = seq;
    event.kind = (gt_event_kind_t) record [0];
    event.reason = (gt_reason_t) record [4];
    gt_lease_info_t *lease = &event.lease;
    lease->object_type = (gt_object_type_t) record [1];
    lease->state = (gt_lease_state_t) record [2];
    lease->cleanup_status = (gt_cleanup_status_t) record [3];
    memcpy (lease->id, record + S_HEADER_BYTES, GT_LEASE_ID_LEN);
    lease->id [GT_LEASE_ID_LEN] = '\0';
    char service [GT_EVENT_RING_TOPIC_MAX + 1];
    memcpy (service, record + S_SERVICE_AT, record [6]);
    service [record [6]] = '\0';
    lease->service_id = service;
    const uint8_t *cursor = record + S_SERVICE_AT + record [6];
    event.at = s_get_varint (&cursor);
    lease->created_at = event.at + s_unzigzag (s_get_varint (&cursor));
    lease->renewed_at = lease->created_at + s_unzigzag (s_get_varint (&cursor));
    lease->expires_at = lease->renewed_at + s_unzigzag (s_get_varint (&cursor));
    lease->fence = s_get_varint (&cursor);
    lease->ttl_ms = s_get_varint (&cursor);
    lease->renewals = s_get_varint (&cursor);
    lease->cleanup_attempts = s_get_varint (&cursor);
    gt_cleanup_t cleanup;
    memset (&cleanup, 0, sizeof (cleanup));
    if (flags & S_HAS_CLEANUP) {
        cleanup.retry_delay_ms = s_get_varint (&cursor);
        cleanup.max_retries = (uint32_t) s_get_varint (&cursor);
        cleanup.has_retry_delay = (flags & S_HAS_RETRY_DELAY) != 0;
        cleanup.has_max_retries = (flags & S_HAS_MAX_RETRIES) != 0;
    }
    size_t meta_count = (size_t) s_get_varint (&cursor);
    lease->object_id = s_get_string (&cursor);
    if (flags & S_HAS_ERROR)
        lease->cleanup_error = s_get_string (&cursor);
    if (flags & S_HAS_CLEANUP) {
        cleanup.url = s_get_string (&cursor);
        if (flags & S_HAS_PAYLOAD)
            cleanup.payload = s_get_string (&cursor);
        lease->cleanup = &cleanup;
    }
    if (meta_count > self->meta_cap) {
        free (self->meta);
        self->meta_cap = meta_count;
        self->meta = (gt_meta_entry_t *) malloc (self->meta_cap * sizeof (gt_meta_entry_t));
        assert (self->meta);
    }
    for (size_t i = 0; i < meta_count; i++) {
        self->meta [i].key = s_get_string (&cursor);
        self->meta [i].value = s_get_string (&cursor);
    }
    lease->metadata.entries = meta_count ? self->meta : NULL;
    lease->metadata.count = meta_count;
    return gt_msg_encode_event_body (&event, buf);
}

/*  gt_msg.c — GTLP/1 messages: lifecycle, deep copies and the canonical encoder.

    The decoder is in gt_msg_decode.c; the JSON mirror and the selftest are in
    gt_msg_json.c.  The encoder is on the broker's hot path: it writes straight
    into the caller's sbuffer, never modifies its input, and allocates only to
    sort more than S_STACK_SORT metadata or stats entries that are not sorted
    already.  Key order comes from the tables below, which mirror GTLP.md.  */
#include "gt_msg_private.h"
#include <assert.h>
#include <stdlib.h>
#include <string.h>

//  Sort up to this many map entries with an index array on the stack
#define S_STACK_SORT 64

//  ---------------------------------------------------------------------------
//  Lifecycle

gt_msg_t *
gt_msg_new (gt_msg_kind_t kind)
{
    gt_msg_t *self = (gt_msg_t *) calloc (1, sizeof (gt_msg_t));
    assert (self);
    self->kind = kind;
    self->version = GT_PROTOCOL_VERSION;
    return self;
}

static void
s_meta_clear (gt_meta_t *meta)
{
    for (size_t index = 0; index < meta->count; index++) {
        free (meta->entries [index].key);
        free (meta->entries [index].value);
    }
    free (meta->entries);
    meta->entries = NULL;
    meta->count = 0;
}

static void
s_cleanup_destroy (gt_cleanup_t **cleanup_p)
{
    if (*cleanup_p) {
        free ((*cleanup_p)->url);
        free ((*cleanup_p)->payload);
        free (*cleanup_p);
        *cleanup_p = NULL;
    }
}

void
gt_lease_info_clear (gt_lease_info_t *lease)
{
    if (!lease)
        return;
    free (lease->object_id);
    free (lease->service_id);
    s_meta_clear (&lease->metadata);
    s_cleanup_destroy (&lease->cleanup);
    free (lease->cleanup_error);
    memset (lease, 0, sizeof (*lease));
}

void
gt_msg_destroy (gt_msg_t **self_p)
{
    assert (self_p);
    gt_msg_t *self = *self_p;
    if (!self)
        return;
    free (self->object_id);
    free (self->service_id);
    free (self->lease_id);
    s_meta_clear (&self->metadata);
    s_cleanup_destroy (&self->cleanup);
    free (self->idempotency_key);
    for (size_t index = 0; index < self->lease_id_count && self->lease_ids; index++)
        free (self->lease_ids [index]);
    free (self->lease_ids);
    free (self->cursor);
    free (self->message);
    free (self->versions);
    free (self->owner);
    if (self->lease) {
        gt_lease_info_clear (self->lease);
        free (self->lease);
    }
    for (size_t index = 0; index < self->lease_count && self->leases; index++)
        gt_lease_info_clear (&self->leases [index]);
    free (self->leases);
    for (size_t index = 0; index < self->result_count && self->results; index++)
        free (self->results [index].message);
    free (self->results);
    for (size_t index = 0; index < self->stat_count && self->stats; index++)
        free (self->stats [index].name);
    free (self->stats);
    for (size_t index = 0; index < self->event_count && self->events; index++)
        gt_lease_info_clear (&self->events [index].lease);
    free (self->events);
    free (self->status);
    free (self->server_version);
    free (self->store);
    free (self->store_status);
    for (size_t index = 0; index < self->broker_count && self->brokers; index++) {
        free (self->brokers [index].broker_id);
        free (self->brokers [index].endpoint);
        free (self->brokers [index].events_endpoint);
    }
    free (self->brokers);
    gt_lease_info_clear (&self->event.lease);
    free (self);
    *self_p = NULL;
}

static char *
s_strdup_or_null (const char *s)
{
    if (!s)
        return NULL;
    char *copy = strdup (s);
    assert (copy);
    return copy;
}

void
gt_lease_info_copy (gt_lease_info_t *dest, const gt_lease_info_t *src)
{
    assert (dest);
    assert (src);
    *dest = *src;               //  scalars and the id; pointers replaced below
    dest->object_id = s_strdup_or_null (src->object_id);
    dest->service_id = s_strdup_or_null (src->service_id);
    dest->metadata.entries = NULL;
    dest->metadata.count = 0;
    if (src->metadata.count > 0) {
        dest->metadata.entries = (gt_meta_entry_t *)
            calloc (src->metadata.count, sizeof (gt_meta_entry_t));
        assert (dest->metadata.entries);
        for (size_t index = 0; index < src->metadata.count; index++) {
            dest->metadata.entries [index].key =
                s_strdup_or_null (src->metadata.entries [index].key);
            dest->metadata.entries [index].value =
                s_strdup_or_null (src->metadata.entries [index].value);
        }
        dest->metadata.count = src->metadata.count;
    }
    dest->cleanup = NULL;
    if (src->cleanup) {
        dest->cleanup = (gt_cleanup_t *) malloc (sizeof (gt_cleanup_t));
        assert (dest->cleanup);
        *dest->cleanup = *src->cleanup;
        dest->cleanup->url = s_strdup_or_null (src->cleanup->url);
        dest->cleanup->payload = s_strdup_or_null (src->cleanup->payload);
    }
    dest->cleanup_error = s_strdup_or_null (src->cleanup_error);
}

//  ---------------------------------------------------------------------------
//  Shards of a MAP broker

bool
gt_broker_info_owns (const gt_broker_info_t *broker, unsigned shard)
{
    assert (broker);
    return shard < GT_SHARD_COUNT && (broker->shards [shard / 8] >> (shard % 8)) & 1;
}

void
gt_broker_info_add_shard (gt_broker_info_t *broker, unsigned shard)
{
    assert (broker);
    assert (shard < GT_SHARD_COUNT);
    broker->shards [shard / 8] |= (uint8_t) (1u << (shard % 8));
}

void
gt_broker_info_add_shard_epoch (gt_broker_info_t *broker, unsigned shard, uint64_t epoch)
{
    gt_broker_info_add_shard (broker, shard);
    broker->epochs [shard] = epoch;
    broker->has_epochs = true;
}

size_t
gt_broker_info_shard_count (const gt_broker_info_t *broker)
{
    assert (broker);
    size_t count = 0;
    for (size_t index = 0; index < sizeof (broker->shards); index++)
        count += (size_t) __builtin_popcount (broker->shards [index]);
    return count;
}

const gt_broker_info_t *
gt_msg_shard_owner (const gt_msg_t *self, unsigned shard)
{
    assert (self);
    for (size_t index = 0; index < self->broker_count && self->brokers; index++)
        if (gt_broker_info_owns (&self->brokers [index], shard))
            return &self->brokers [index];
    return NULL;
}

//  ---------------------------------------------------------------------------
//  Primitive packers: shortest forms come from msgpack-c itself
//  (msgpack_pack_uint64 picks fixint/uint8/16/32/64, msgpack_pack_str picks
//  fixstr/str8/16/32); gt_msg_test pins both against the vectors.

//  A map key: always a fixstr, written with one callback call
static inline int
s_pack_key (msgpack_packer *pk, const char *key, size_t len)
{
    char buf [32];
    assert (len < 32);
    buf [0] = (char) (0xa0 | len);
    memcpy (buf + 1, key, len);
    return pk->callback (pk->data, buf, len + 1);
}
#define S_KEY(pk, literal) s_pack_key ((pk), (literal), sizeof (literal) - 1)

static inline void
s_pack_strn (msgpack_packer *pk, const char *s, size_t len)
{
    msgpack_pack_str (pk, len);
    msgpack_pack_str_body (pk, s, len);
}

static inline void
s_pack_str (msgpack_packer *pk, const char *s)
{
    s_pack_strn (pk, s, strlen (s));
}

static inline void
s_pack_kv_str (msgpack_packer *pk, const char *key, size_t key_len, const char *value)
{
    s_pack_key (pk, key, key_len);
    s_pack_str (pk, value);
}
#define S_KV_STR(pk, literal, value) s_pack_kv_str ((pk), (literal), sizeof (literal) - 1, (value))

static inline void
s_pack_kv_uint (msgpack_packer *pk, const char *key, size_t key_len, uint64_t value)
{
    s_pack_key (pk, key, key_len);
    msgpack_pack_uint64 (pk, value);
}
#define S_KV_UINT(pk, literal, value) s_pack_kv_uint ((pk), (literal), sizeof (literal) - 1, (value))

//  ---------------------------------------------------------------------------
//  Sorted string-keyed maps (metadata, stats).  The input is const: we sort
//  an array of pointers to its entries, or nothing at all if already sorted.

typedef const char *(s_key_fn) (const void *entry);

static const char *s_meta_key (const void *entry) { return ((const gt_meta_entry_t *) entry)->key; }
static const char *s_stat_key (const void *entry) { return ((const gt_stat_t *) entry)->name; }

static int
s_compare_meta (const void *a, const void *b)
{
    return strcmp ((*(const gt_meta_entry_t * const *) a)->key,
                   (*(const gt_meta_entry_t * const *) b)->key);
}

static int
s_compare_stat (const void *a, const void *b)
{
    return strcmp ((*(const gt_stat_t * const *) a)->name,
                   (*(const gt_stat_t * const *) b)->name);
}

//  Fill order [] with pointers to the count entries of base, sorted by key.
//  Returns order itself, a heap array (caller frees) or NULL on a NULL or
//  duplicate key.  When the entries are already sorted, *sorted_p is set and
//  order is left unused.
static const void **
s_sorted_order (const void *base, size_t count, size_t entry_size, s_key_fn *key_of,
                int (*compare) (const void *, const void *),
                const void **order, bool *sorted_p)
{
    const char *previous = NULL;
    bool sorted = true;
    for (size_t index = 0; index < count; index++) {
        const char *key = key_of ((const char *) base + index * entry_size);
        if (!key)
            return NULL;
        if (previous) {
            int cmp = strcmp (previous, key);
            if (cmp == 0)
                return NULL;            //  duplicate key: not encodable
            if (cmp > 0)
                sorted = false;
        }
        previous = key;
    }
    *sorted_p = sorted;
    if (sorted)
        return order;
    if (count > S_STACK_SORT) {
        order = (const void **) malloc (count * sizeof (void *));
        assert (order);
    }
    for (size_t index = 0; index < count; index++)
        order [index] = (const char *) base + index * entry_size;
    qsort (order, count, sizeof (void *), compare);
    for (size_t index = 1; index < count; index++)
        if (strcmp (key_of (order [index - 1]), key_of (order [index])) == 0) {
            if (count > S_STACK_SORT)
                free (order);
            return NULL;
        }
    return order;
}

static int
s_pack_meta (msgpack_packer *pk, const gt_meta_t *meta)
{
    const void *stack_order [S_STACK_SORT];
    bool sorted = false;
    if (meta->count > 0 && !meta->entries)
        return -1;
    const void **order = s_sorted_order (meta->entries, meta->count, sizeof (gt_meta_entry_t),
                                         s_meta_key, s_compare_meta, stack_order, &sorted);
    if (!order)
        return -1;
    for (size_t index = 0; index < meta->count; index++)
        if (!meta->entries [index].value)
            goto failed;
    msgpack_pack_map (pk, meta->count);
    for (size_t index = 0; index < meta->count; index++) {
        const gt_meta_entry_t *entry = sorted? &meta->entries [index]
                                             : (const gt_meta_entry_t *) order [index];
        s_pack_str (pk, entry->key);
        s_pack_str (pk, entry->value);
    }
    if (order != stack_order)
        free (order);
    return 0;
failed:
    if (order != stack_order)
        free (order);
    return -1;
}

static int
s_pack_stats (msgpack_packer *pk, const gt_stat_t *stats, size_t count)
{
    const void *stack_order [S_STACK_SORT];
    bool sorted = false;
    if (count > 0 && !stats)
        return -1;
    const void **order = s_sorted_order (stats, count, sizeof (gt_stat_t),
                                         s_stat_key, s_compare_stat, stack_order, &sorted);
    if (!order)
        return -1;
    msgpack_pack_map (pk, count);
    for (size_t index = 0; index < count; index++) {
        const gt_stat_t *stat = sorted? &stats [index]: (const gt_stat_t *) order [index];
        s_pack_str (pk, stat->name);
        msgpack_pack_uint64 (pk, stat->value);
    }
    if (order != stack_order)
        free (order);
    return 0;
}

//  ---------------------------------------------------------------------------
//  LEASE, CLEANUP, RESULT and EVENT maps

//  A CREATE request's cleanup: max_retries and retry_delay_ms only when set
//  (in a LEASE they are always present: s_lease_write)
static int
s_pack_cleanup (msgpack_packer *pk, const gt_cleanup_t *cleanup)
{
    if (!cleanup->url)
        return -1;
    bool retries = cleanup->has_max_retries;
    bool delay = cleanup->has_retry_delay;
    msgpack_pack_map (pk, 1 + (cleanup->payload? 1: 0) + retries + delay);
    S_KV_STR (pk, "url", cleanup->url);
    if (cleanup->payload)
        S_KV_STR (pk, "payload", cleanup->payload);
    if (retries)
        S_KV_UINT (pk, "max_retries", cleanup->max_retries);
    if (delay)
        S_KV_UINT (pk, "retry_delay_ms", cleanup->retry_delay_ms);
    return 0;
}

//  ---------------------------------------------------------------------------
//  The LEASE map, written straight into a msgpack_sbuffer: it is in every
//  reply to CREATE, RENEW, RELEASE and GET and in every event, and packing
//  it item by item through msgpack_packer (a callback per key and per
//  value, some thirty) was most of the cost of a reply.  Its size is
//  bounded once, the room reserved, then each item is stored in place in
//  the same shortest forms msgpack-c picks (s_put_uint, s_put_str_header:
//  the vectors pin them).

//  Room for every item of a LEASE map but its strings' bytes: 20 keys of
//  at most 16 bytes, 18 string headers and numbers of at most 9 bytes,
//  3 map headers of at most 5
static const size_t S_LEASE_FIXED = 20 * 17 + 18 * 9 + 3 * 5;

static int s_sbuffer_append (void *data, const char *bytes, size_t size);

//  Big-endian numbers in one store each (GCC did not merge the byte
//  stores of a loop: 17 instructions for a timestamp's 8 bytes)
static inline void
s_put_be32 (uint8_t *out, uint32_t value)
{
#if __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
    value = __builtin_bswap32 (value);
#endif
    memcpy (out, &value, sizeof value);
}

static inline void
s_put_be64 (uint8_t *out, uint64_t value)
{
#if __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
    value = __builtin_bswap64 (value);
#endif
    memcpy (out, &value, sizeof value);
}

static inline char *
s_put_uint (char *cursor, uint64_t value)
{
    uint8_t *out = (uint8_t *) cursor;
    if (value < 128) {
        out [0] = (uint8_t) value;
        return cursor + 1;
    }
    if (value < 256) {
        out [0] = 0xcc;
        out [1] = (uint8_t) value;
        return cursor + 2;
    }
    if (value < 65536) {
        out [0] = 0xcd;
        out [1] = (uint8_t) (value >> 8);
        out [2] = (uint8_t) value;
        return cursor + 3;
    }
    if (value <= UINT32_MAX) {
        out [0] = 0xce;
        s_put_be32 (out + 1, (uint32_t) value);
        return cursor + 5;
    }
    out [0] = 0xcf;
    s_put_be64 (out + 1, value);
    return cursor + 9;
}

static inline char *
s_put_str (char *cursor, const char *string, size_t len)
{
    uint8_t *out = (uint8_t *) cursor;
    if (len < 32)
        *out++ = (uint8_t) (0xa0 | len);
    else
    if (len < 256) {
        *out++ = 0xd9;
        *out++ = (uint8_t) len;
    }
    else
    if (len < 65536) {
        *out++ = 0xda;
        *out++ = (uint8_t) (len >> 8);
        *out++ = (uint8_t) len;
    }
    else {
        *out++ = 0xdb;
        s_put_be32 (out, (uint32_t) len);
        out += 4;
    }
    memcpy (out, string, len);
    return (char *) out + len;
}

//  A map header of count entries (count < 2^32)
static inline char *
s_put_map (char *cursor, size_t count)
{
    uint8_t *out = (uint8_t *) cursor;
    if (count < 16) {
        out [0] = (uint8_t) (0x80 | count);
        return cursor + 1;
    }
    if (count < 65536) {
        out [0] = 0xde;
        out [1] = (uint8_t) (count >> 8);
        out [2] = (uint8_t) count;
        return cursor + 3;
    }
    out [0] = 0xdf;
    s_put_be32 (out + 1, (uint32_t) count);
    return cursor + 5;
}

//  A map key (a literal: a fixstr)
#define S_PUT_KEY(cursor, literal) \
    ((cursor) [0] = (char) (0xa0 | (sizeof (literal) - 1)), \
     memcpy ((cursor) + 1, (literal), sizeof (literal) - 1), \
     (cursor) + sizeof (literal))

//  Pointer to room for bytes more at the end of buf, or NULL if out of memory
static char *
s_reserve (msgpack_sbuffer *buf, size_t bytes)
{
    if (buf->alloc - buf->size < bytes) {
        if (bytes > SIZE_MAX / 4 - buf->size)
            return NULL;            //  (no doubling below may wrap)
        size_t alloc = buf->alloc ? buf->alloc : 512;
        while (alloc - buf->size < bytes)
            alloc *= 2;
        char *data = (char *) realloc (buf->data, alloc);
        if (!data)
            return NULL;
        buf->data = data;
        buf->alloc = alloc;
    }
    return buf->data + buf->size;
}

//  Append lease's LEASE map to buf; -1 (buf unchanged) if it cannot be
//  encoded.  The one writer of the LEASE layout (GTLP.md §4.1).
bool
gt_lease_info_encodable (const gt_lease_info_t *lease)
{
    assert (lease);
    if (lease->id [GT_LEASE_ID_LEN] != '\0' || !lease->object_id || !lease->service_id
    ||  !gt_object_type_name (lease->object_type) || !gt_state_name (lease->state)
    ||  (lease->cleanup && !lease->cleanup->url)
    ||  (lease->cleanup_status != GT_CLEANUP_NONE && !gt_cleanup_status_name (lease->cleanup_status))
    ||  (lease->metadata.count > 0 && !lease->metadata.entries))
        return false;
    for (size_t index = 0; index < lease->metadata.count; index++)
        if (!lease->metadata.entries [index].key || !lease->metadata.entries [index].value)
            return false;
    return true;
}

static int
s_lease_write (const gt_lease_info_t *lease, msgpack_sbuffer *buf)
{
    if (!gt_lease_id_valid (lease->id) || !gt_lease_info_encodable (lease))
        return -1;
    const char *type_name = gt_object_type_name (lease->object_type);
    const char *state_name = gt_state_name (lease->state);
    const char *status_name = lease->cleanup_status != GT_CLEANUP_NONE
                            ? gt_cleanup_status_name (lease->cleanup_status) : NULL;
    bool error = status_name && lease->cleanup_error && *lease->cleanup_error;
    const gt_meta_t *meta = &lease->metadata;
    const void *stack_order [S_STACK_SORT];
    bool sorted = false;
    const void **order = s_sorted_order (meta->entries, meta->count, sizeof (gt_meta_entry_t),
                                         s_meta_key, s_compare_meta, stack_order, &sorted);
    if (!order)
        return -1;
    int rc = -1;
    //  The strings' bytes, each with at most 5 of header
    size_t object_len = strlen (lease->object_id);
    size_t type_len = strlen (type_name);
    size_t service_len = strlen (lease->service_id);
    size_t state_len = strlen (state_name);
    size_t bound = S_LEASE_FIXED + GT_LEASE_ID_LEN + object_len + type_len + service_len + state_len;
    size_t url_len = 0, payload_len = 0, status_len = 0, error_len = 0;
    for (size_t index = 0; index < meta->count; index++)
        bound += 10 + strlen (meta->entries [index].key) + strlen (meta->entries [index].value);
    if (lease->cleanup) {
        url_len = strlen (lease->cleanup->url);
        payload_len = lease->cleanup->payload ? strlen (lease->cleanup->payload) : 0;
        bound += url_len + payload_len;
    }
    if (status_name) {
        status_len = strlen (status_name);
        error_len = error ? strlen (lease->cleanup_error) : 0;
        bound += status_len + error_len;
    }
    char *start = s_reserve (buf, bound);
    if (!start)
        goto done;
    char *cursor = s_put_map (start, 12 + (lease->cleanup != NULL) + (status_name? 2: 0) + error);
    cursor = S_PUT_KEY (cursor, "id");
    cursor = s_put_str (cursor, lease->id, GT_LEASE_ID_LEN);
    cursor = S_PUT_KEY (cursor, "object_id");
    cursor = s_put_str (cursor, lease->object_id, object_len);
    cursor = S_PUT_KEY (cursor, "object_type");
    cursor = s_put_str (cursor, type_name, type_len);
    cursor = S_PUT_KEY (cursor, "service_id");
    cursor = s_put_str (cursor, lease->service_id, service_len);
    cursor = S_PUT_KEY (cursor, "state");
    cursor = s_put_str (cursor, state_name, state_len);
    cursor = S_PUT_KEY (cursor, "fence");
    cursor = s_put_uint (cursor, lease->fence);
    cursor = S_PUT_KEY (cursor, "ttl_ms");
    cursor = s_put_uint (cursor, lease->ttl_ms);
    cursor = S_PUT_KEY (cursor, "created_at");
    cursor = s_put_uint (cursor, lease->created_at);
    cursor = S_PUT_KEY (cursor, "renewed_at");
    cursor = s_put_uint (cursor, lease->renewed_at);
    cursor = S_PUT_KEY (cursor, "expires_at");
    cursor = s_put_uint (cursor, lease->expires_at);
    cursor = S_PUT_KEY (cursor, "renewals");
    cursor = s_put_uint (cursor, lease->renewals);
    cursor = S_PUT_KEY (cursor, "metadata");
    cursor = s_put_map (cursor, meta->count);
    for (size_t index = 0; index < meta->count; index++) {
        const gt_meta_entry_t *entry = sorted? &meta->entries [index]
                                             : (const gt_meta_entry_t *) order [index];
        cursor = s_put_str (cursor, entry->key, strlen (entry->key));
        cursor = s_put_str (cursor, entry->value, strlen (entry->value));
    }
    if (lease->cleanup) {
        //  In a LEASE max_retries and retry_delay_ms are always present
        cursor = S_PUT_KEY (cursor, "cleanup");
        cursor = s_put_map (cursor, 3 + (lease->cleanup->payload != NULL));
        cursor = S_PUT_KEY (cursor, "url");
        cursor = s_put_str (cursor, lease->cleanup->url, url_len);
        if (lease->cleanup->payload) {
            cursor = S_PUT_KEY (cursor, "payload");
            cursor = s_put_str (cursor, lease->cleanup->payload, payload_len);
        }
        cursor = S_PUT_KEY (cursor, "max_retries");
        cursor = s_put_uint (cursor, lease->cleanup->max_retries);
        cursor = S_PUT_KEY (cursor, "retry_delay_ms");
        cursor = s_put_uint (cursor, lease->cleanup->retry_delay_ms);
    }
    if (status_name) {
        cursor = S_PUT_KEY (cursor, "cleanup_status");
        cursor = s_put_str (cursor, status_name, status_len);
        cursor = S_PUT_KEY (cursor, "cleanup_attempts");
        cursor = s_put_uint (cursor, lease->cleanup_attempts);
        if (error) {
            cursor = S_PUT_KEY (cursor, "cleanup_error");
            cursor = s_put_str (cursor, lease->cleanup_error, error_len);
        }
    }
    assert ((size_t) (cursor - start) <= bound);
    buf->size += (size_t) (cursor - start);
    rc = 0;
done:
    if (order != stack_order)
        free (order);
    return rc;
}

int
gt_lease_info_pack (const gt_lease_info_t *lease, msgpack_packer *pk)
{
    assert (lease);
    assert (pk);
    //  Into this file's own buffers directly; into any other sink through
    //  a buffer of its own, handed over in one call
    if (pk->callback == s_sbuffer_append)
        return s_lease_write (lease, (msgpack_sbuffer *) pk->data);
    msgpack_sbuffer buf;
    msgpack_sbuffer_init (&buf);
    int rc = s_lease_write (lease, &buf);
    if (rc == 0)
        rc = pk->callback (pk->data, buf.data, buf.size);
    msgpack_sbuffer_destroy (&buf);
    return rc;
}

//  The EVENT map, written in place like the LEASE map (it goes to the
//  store and to subscribers for every change).  lease_bytes: NULL, or the
//  event's LEASE map already encoded (lease_size bytes), copied in place of
//  writing event->lease again.  lease_span: NULL, or where the LEASE map
//  lies in buf (offset, bytes).  -1 (buf unchanged) if not encodable.
static int
s_event_write (msgpack_sbuffer *buf, uint64_t version, const gt_event_t *event, size_t *lease_span,
               const void *lease_bytes, size_t lease_size)
{
    const char *kind_name = gt_event_kind_name (event->kind);
    const char *reason_name = gt_reason_name (event->reason);
    if (!kind_name || (event->reason != GT_REASON_NONE && !reason_name)
    ||  (event->has_shard && event->shard >= GT_SHARD_COUNT))
        return -1;
    size_t start = buf->size;
    size_t kind_len = strlen (kind_name);
    //  Keys v, seq, shard, kind, at, lease of at most 5 bytes, three
    //  numbers and a shard of at most 9, the kind's header
    char *cursor = s_reserve (buf, 1 + 6 * 6 + 4 * 9 + 2 + kind_len);
    if (!cursor)
        return -1;
    char *head = cursor;
    cursor = s_put_map (cursor, 5 + (reason_name != NULL) + event->has_shard);
    cursor = S_PUT_KEY (cursor, "v");
    cursor = s_put_uint (cursor, version);
    cursor = S_PUT_KEY (cursor, "seq");
    cursor = s_put_uint (cursor, event->seq);
    if (event->has_shard) {
        cursor = S_PUT_KEY (cursor, "shard");
        cursor = s_put_uint (cursor, event->shard);
    }
    cursor = S_PUT_KEY (cursor, "kind");
    cursor = s_put_str (cursor, kind_name, kind_len);
    cursor = S_PUT_KEY (cursor, "at");
    cursor = s_put_uint (cursor, event->at);
    cursor = S_PUT_KEY (cursor, "lease");
    buf->size += (size_t) (cursor - head);
    size_t lease_start = buf->size;
    if (lease_bytes) {
        char *room = s_reserve (buf, lease_size);
        if (!room) {
            buf->size = start;
            return -1;
        }
        memcpy (room, lease_bytes, lease_size);
        buf->size += lease_size;
    }
    else
    if (s_lease_write (&event->lease, buf)) {
        buf->size = start;
        return -1;
    }
    if (lease_span) {
        lease_span [0] = lease_start;
        lease_span [1] = buf->size - lease_start;
    }
    if (reason_name) {
        size_t reason_len = strlen (reason_name);
        cursor = s_reserve (buf, 7 + 5 + reason_len);
        if (!cursor) {
            buf->size = start;
            return -1;
        }
        head = cursor;
        cursor = S_PUT_KEY (cursor, "reason");
        cursor = s_put_str (cursor, reason_name, reason_len);
        buf->size += (size_t) (cursor - head);
    }
    return 0;
}

//  The EVENT map through one of this file's packers (gt_msg_encode and the
//  events of a REPLAY reply: both write to a msgpack_sbuffer)
static int
s_pack_event (msgpack_packer *pk, uint64_t version, const gt_event_t *event)
{
    assert (pk->callback == s_sbuffer_append);
    return s_event_write ((msgpack_sbuffer *) pk->data, version, event, NULL, NULL, 0);
}

static int
s_pack_result (msgpack_packer *pk, const gt_renew_result_t *result)
{
    const char *code_name = gt_code_name (result->code);
    if (!gt_lease_id_valid (result->lease_id) || !code_name
    || (result->code != GT_OK && !result->message))
        return -1;
    msgpack_pack_map (pk, 3);
    S_KEY (pk, "lease_id");
    s_pack_strn (pk, result->lease_id, GT_LEASE_ID_LEN);
    S_KV_STR (pk, "code", code_name);
    if (result->code == GT_OK)
        S_KV_UINT (pk, "expires_at", result->expires_at);
    else
        S_KV_STR (pk, "message", result->message);
    return 0;
}

//  BROKER map of a MAP reply: shards from the bitmap, hence ascending; their
//  epochs (when has_epochs) in the same order
static int
s_pack_broker (msgpack_packer *pk, const gt_broker_info_t *broker)
{
    if (!broker->broker_id || !broker->endpoint || !broker->events_endpoint)
        return -1;
    msgpack_pack_map (pk, 4 + broker->has_epochs);
    S_KV_STR (pk, "broker_id", broker->broker_id);
    S_KV_STR (pk, "endpoint", broker->endpoint);
    S_KV_STR (pk, "events_endpoint", broker->events_endpoint);
    size_t count = gt_broker_info_shard_count (broker);
    S_KEY (pk, "shards");
    msgpack_pack_array (pk, count);
    for (unsigned shard = 0; shard < GT_SHARD_COUNT; shard++)
        if (gt_broker_info_owns (broker, shard))
            msgpack_pack_uint64 (pk, shard);
    if (broker->has_epochs) {
        S_KEY (pk, "epochs");
        msgpack_pack_array (pk, count);
        for (unsigned shard = 0; shard < GT_SHARD_COUNT; shard++)
            if (gt_broker_info_owns (broker, shard))
                msgpack_pack_uint64 (pk, broker->epochs [shard]);
    }
    return 0;
}

//  ---------------------------------------------------------------------------
//  Requests: one key order per command (GTLP.md §5 tables)

const char *const gt_req_key_names [GT_REQ_END] = {
    "object_id", "object_type", "service_id", "lease_id", "lease_ids", "ttl_ms",
    "metadata", "cleanup", "idempotency_key", "retain", "state", "cleanup_status",
    "cursor", "limit", "after_seq", "shard"
};

const gt_req_key_t gt_req_layout [GT_CMD_COUNT_][GT_REQ_LAYOUT_MAX] = {
    [GT_CMD_NONE]        = { GT_REQ_END },
    [GT_CMD_CREATE]      = { GT_REQ_OBJECT_ID, GT_REQ_OBJECT_TYPE, GT_REQ_SERVICE_ID, GT_REQ_TTL,
                             GT_REQ_METADATA, GT_REQ_CLEANUP, GT_REQ_IDEMPOTENCY, GT_REQ_END },
    [GT_CMD_RENEW]       = { GT_REQ_LEASE_ID, GT_REQ_SERVICE_ID, GT_REQ_TTL, GT_REQ_END },
    [GT_CMD_RENEW_BATCH] = { GT_REQ_SERVICE_ID, GT_REQ_LEASE_IDS, GT_REQ_TTL, GT_REQ_END },
    [GT_CMD_RELEASE]     = { GT_REQ_LEASE_ID, GT_REQ_SERVICE_ID, GT_REQ_RETAIN, GT_REQ_END },
    [GT_CMD_GET]         = { GT_REQ_LEASE_ID, GT_REQ_END },
    [GT_CMD_LIST]        = { GT_REQ_SERVICE_ID, GT_REQ_OBJECT_ID, GT_REQ_OBJECT_TYPE, GT_REQ_STATE,
                             GT_REQ_CLEANUP_STATUS, GT_REQ_CURSOR, GT_REQ_LIMIT, GT_REQ_END },
    [GT_CMD_HEALTH]      = { GT_REQ_END },
    [GT_CMD_STATS]       = { GT_REQ_END },
    [GT_CMD_REPLAY]      = { GT_REQ_AFTER_SEQ, GT_REQ_LIMIT, GT_REQ_SHARD, GT_REQ_END },
    [GT_CMD_RETRY]       = { GT_REQ_LEASE_ID, GT_REQ_END },
    [GT_CMD_MAP]         = { GT_REQ_END },
};

const unsigned gt_req_required [GT_CMD_COUNT_] = {
    //  service_id is optional in the codec: with CURVE the broker takes the
    //  caller's service from its key; without, the broker requires it
    [GT_CMD_CREATE]      = 1u << GT_REQ_OBJECT_ID,
    [GT_CMD_RENEW]       = 1u << GT_REQ_LEASE_ID,
    [GT_CMD_RENEW_BATCH] = 1u << GT_REQ_LEASE_IDS,
    [GT_CMD_RELEASE]     = 1u << GT_REQ_LEASE_ID,
    [GT_CMD_GET]         = 1u << GT_REQ_LEASE_ID,
    [GT_CMD_REPLAY]      = 1u << GT_REQ_AFTER_SEQ,
    [GT_CMD_RETRY]       = 1u << GT_REQ_LEASE_ID,
};

static bool
s_request_has (const gt_msg_t *self, gt_req_key_t key)
{
    switch (key) {
        case GT_REQ_OBJECT_ID:   return self->object_id != NULL;
        case GT_REQ_OBJECT_TYPE: return self->has_object_type;
        case GT_REQ_SERVICE_ID:  return self->service_id != NULL;
        case GT_REQ_LEASE_ID:    return self->lease_id != NULL;
        case GT_REQ_LEASE_IDS:   return self->lease_ids != NULL || self->lease_id_count > 0;
        case GT_REQ_TTL:         return self->has_ttl;
        case GT_REQ_METADATA:    return self->has_metadata;
        case GT_REQ_CLEANUP:     return self->cleanup != NULL;
        case GT_REQ_IDEMPOTENCY: return self->idempotency_key != NULL;
        case GT_REQ_RETAIN:      return self->has_retain;
        case GT_REQ_STATE:       return self->has_state;
        case GT_REQ_CLEANUP_STATUS: return self->has_cleanup_status;
        case GT_REQ_CURSOR:      return self->cursor != NULL;
        case GT_REQ_LIMIT:       return self->has_limit;
        case GT_REQ_AFTER_SEQ:   return self->has_after_seq;
        case GT_REQ_SHARD:       return self->has_shard;
        default:                return false;
    }
}

static int
s_pack_request_field (msgpack_packer *pk, const gt_msg_t *self, gt_req_key_t key)
{
    switch (key) {
        case GT_REQ_OBJECT_ID:
            S_KV_STR (pk, "object_id", self->object_id);
            return 0;
        case GT_REQ_OBJECT_TYPE: {
            const char *name = gt_object_type_name (self->object_type);
            if (!name)
                return -1;
            S_KV_STR (pk, "object_type", name);
            return 0;
        }
        case GT_REQ_SERVICE_ID:
            S_KV_STR (pk, "service_id", self->service_id);
            return 0;
        case GT_REQ_LEASE_ID:
            S_KV_STR (pk, "lease_id", self->lease_id);
            return 0;
        case GT_REQ_LEASE_IDS:
            if (self->lease_id_count > 0 && !self->lease_ids)
                return -1;
            S_KEY (pk, "lease_ids");
            msgpack_pack_array (pk, self->lease_id_count);
            for (size_t index = 0; index < self->lease_id_count; index++) {
                if (!self->lease_ids [index])
                    return -1;
                s_pack_str (pk, self->lease_ids [index]);
            }
            return 0;
        case GT_REQ_TTL:
            S_KV_UINT (pk, "ttl_ms", self->ttl_ms);
            return 0;
        case GT_REQ_METADATA:
            S_KEY (pk, "metadata");
            return s_pack_meta (pk, &self->metadata);
        case GT_REQ_CLEANUP:
            S_KEY (pk, "cleanup");
            return s_pack_cleanup (pk, self->cleanup);
        case GT_REQ_IDEMPOTENCY:
            S_KV_STR (pk, "idempotency_key", self->idempotency_key);
            return 0;
        case GT_REQ_RETAIN:
            S_KEY (pk, "retain");
            return self->retain? msgpack_pack_true (pk): msgpack_pack_false (pk);
        case GT_REQ_STATE: {
            const char *name = gt_state_name (self->state);
            if (!name)
                return -1;
            S_KV_STR (pk, "state", name);
            return 0;
        }
        case GT_REQ_CLEANUP_STATUS: {
            const char *name = gt_cleanup_status_name (self->cleanup_status);
            if (!name)
                return -1;
            S_KV_STR (pk, "cleanup_status", name);
            return 0;
        }
        case GT_REQ_CURSOR:
            S_KV_STR (pk, "cursor", self->cursor);
            return 0;
        case GT_REQ_LIMIT:
            S_KV_UINT (pk, "limit", self->limit);
            return 0;
        case GT_REQ_AFTER_SEQ:
            S_KV_UINT (pk, "after_seq", self->after_seq);
            return 0;
        case GT_REQ_SHARD:
            if (self->shard >= GT_SHARD_COUNT)
                return -1;
            S_KV_UINT (pk, "shard", self->shard);
            return 0;
        default:
            return -1;
    }
}

static int
s_pack_request (msgpack_packer *pk, const gt_msg_t *self)
{
    const char *cmd_name = gt_cmd_name (self->cmd);
    if (!cmd_name)
        return -1;
    const gt_req_key_t *layout = gt_req_layout [self->cmd];
    size_t count = 3;
    for (size_t index = 0; layout [index] != GT_REQ_END; index++) {
        if (s_request_has (self, layout [index]))
            count++;
        else
        if (gt_req_required [self->cmd] & (1u << layout [index]))
            return -1;
    }
    msgpack_pack_map (pk, count);
    S_KV_UINT (pk, "v", self->version);
    S_KV_UINT (pk, "rid", self->rid);
    S_KV_STR (pk, "cmd", cmd_name);
    for (size_t index = 0; layout [index] != GT_REQ_END; index++)
        if (s_request_has (self, layout [index])
        &&  s_pack_request_field (pk, self, layout [index]))
            return -1;
    return 0;
}

//  ---------------------------------------------------------------------------
//  Replies: v, rid, code, then for errors message and those of versions,
//  shard, owner, map_version, retry_ms present (UNSUPPORTED_VERSION has
//  versions, MOVED shard owner map_version, TRY_AGAIN shard retry_ms:
//  GTLP.md §5, §14.3), or for OK the payload keys present, in this order:
//  lease, leases, cursor, results, the HEALTH fields, stats, events,
//  last_seq, scanned_seq, map_version, cluster, brokers.

static int
s_pack_reply (msgpack_packer *pk, const gt_msg_t *self)
{
    const char *code_name = gt_code_name (self->code);
    if (!code_name)
        return -1;
    if (self->code != GT_OK) {
        if (!self->message || (self->version_count > 0 && !self->versions)
        ||  (self->has_shard && self->shard >= GT_SHARD_COUNT)
        ||  (self->code == GT_ERR_MOVED && !(self->has_shard && self->owner && self->has_map_version))
        ||  (self->code == GT_ERR_TRY_AGAIN && !(self->has_shard && self->has_retry_ms)))
            return -1;
        msgpack_pack_map (pk, 4 + (self->version_count > 0) + self->has_shard + (self->owner != NULL)
                            + self->has_map_version + self->has_retry_ms);
        S_KV_UINT (pk, "v", self->version);
        S_KV_UINT (pk, "rid", self->rid);
        S_KV_STR (pk, "code", code_name);
        S_KV_STR (pk, "message", self->message);
        if (self->version_count > 0) {
            S_KEY (pk, "versions");
            msgpack_pack_array (pk, self->version_count);
            for (size_t index = 0; index < self->version_count; index++)
                msgpack_pack_uint64 (pk, self->versions [index]);
        }
        if (self->has_shard)
            S_KV_UINT (pk, "shard", self->shard);
        if (self->owner)
            S_KV_STR (pk, "owner", self->owner);
        if (self->has_map_version)
            S_KV_UINT (pk, "map_version", self->map_version);
        if (self->has_retry_ms)
            S_KV_UINT (pk, "retry_ms", self->retry_ms);
        return 0;
    }
    bool health = self->status != NULL;
    if (health && (!self->server_version || !self->store || !self->store_status))
        return -1;
    if ((self->lease_count > 0 && !self->leases)
    ||  (self->result_count > 0 && !self->results)
    ||  (self->event_count > 0 && !self->events)
    ||  (self->broker_count > 0 && !self->brokers)
    ||  (self->brokers_present && !(self->has_map_version && self->has_cluster)))
        return -1;
    size_t count = 3 + (self->lease != NULL) + self->leases_present + (self->cursor != NULL)
                 + self->results_present + (health? 7: 0) + self->stats_present
                 + self->events_present + self->has_last_seq + self->has_scanned_seq
                 + self->has_map_version + self->has_cluster + self->brokers_present;
    msgpack_pack_map (pk, count);
    S_KV_UINT (pk, "v", self->version);
    S_KV_UINT (pk, "rid", self->rid);
    S_KV_STR (pk, "code", code_name);
    if (self->lease) {
        S_KEY (pk, "lease");
        if (gt_lease_info_pack (self->lease, pk))
            return -1;
    }
    if (self->leases_present) {
        S_KEY (pk, "leases");
        msgpack_pack_array (pk, self->lease_count);
        for (size_t index = 0; index < self->lease_count; index++)
            if (gt_lease_info_pack (&self->leases [index], pk))
                return -1;
    }
    if (self->cursor)
        S_KV_STR (pk, "cursor", self->cursor);
    if (self->results_present) {
        S_KEY (pk, "results");
        msgpack_pack_array (pk, self->result_count);
        for (size_t index = 0; index < self->result_count; index++)
            if (s_pack_result (pk, &self->results [index]))
                return -1;
    }
    if (health) {
        S_KV_STR (pk, "status", self->status);
        S_KV_STR (pk, "version", self->server_version);
        S_KV_STR (pk, "store", self->store);
        S_KV_STR (pk, "store_status", self->store_status);
        S_KV_UINT (pk, "uptime_ms", self->uptime_ms);
        S_KV_UINT (pk, "now", self->now);
        S_KV_UINT (pk, "active_leases", self->active_leases);
    }
    if (self->stats_present) {
        S_KEY (pk, "stats");
        if (s_pack_stats (pk, self->stats, self->stat_count))
            return -1;
    }
    if (self->events_present) {
        S_KEY (pk, "events");
        msgpack_pack_array (pk, self->event_count);
        for (size_t index = 0; index < self->event_count; index++)
            if (s_pack_event (pk, GT_PROTOCOL_VERSION, &self->events [index]))
                return -1;
    }
    if (self->has_last_seq)
        S_KV_UINT (pk, "last_seq", self->last_seq);
    if (self->has_scanned_seq)
        S_KV_UINT (pk, "scanned_seq", self->scanned_seq);
    if (self->has_map_version)
        S_KV_UINT (pk, "map_version", self->map_version);
    if (self->has_cluster) {
        S_KEY (pk, "cluster");
        if (self->cluster)
            msgpack_pack_true (pk);
        else
            msgpack_pack_false (pk);
    }
    if (self->brokers_present) {
        S_KEY (pk, "brokers");
        msgpack_pack_array (pk, self->broker_count);
        for (size_t index = 0; index < self->broker_count; index++)
            if (s_pack_broker (pk, &self->brokers [index]))
                return -1;
    }
    return 0;
}

//  ---------------------------------------------------------------------------
//  Entry points

//  msgpack_packer's write callback: msgpack_sbuffer_write with the copy of
//  the few bytes of a header or a number inlined (the packer calls it once
//  per item, mostly with 1, 2, 3, 5 or 9 bytes: a call to memcpy for each
//  was a tenth of the broker's encoding)
static int
s_sbuffer_append (void *data, const char *bytes, size_t size)
{
    msgpack_sbuffer *buf = (msgpack_sbuffer *) data;
    if (buf->alloc - buf->size < size)
        return msgpack_sbuffer_write (data, bytes, size);
    char *end = buf->data + buf->size;
    switch (size) {
        case 1: end [0] = bytes [0]; break;
        case 2: memcpy (end, bytes, 2); break;
        case 3: memcpy (end, bytes, 3); break;
        case 5: memcpy (end, bytes, 5); break;
        case 9: memcpy (end, bytes, 9); break;
        default: memcpy (end, bytes, size); break;
    }
    buf->size += size;
    return 0;
}

int
gt_msg_encode (const gt_msg_t *self, msgpack_sbuffer *buf)
{
    assert (self);
    assert (buf);
    size_t start = buf->size;
    msgpack_packer pk;
    msgpack_packer_init (&pk, buf, s_sbuffer_append);
    int rc = -1;
    if (self->kind == GT_MSG_REQUEST)
        rc = s_pack_request (&pk, self);
    else
    if (self->kind == GT_MSG_REPLY)
        rc = s_pack_reply (&pk, self);
    else
    if (self->kind == GT_MSG_EVENT)
        rc = s_pack_event (&pk, self->version, &self->event);
    if (rc)
        buf->size = start;      //  leave no partial message behind
    return rc;
}

int
gt_msg_encode_event_body (const gt_event_t *event, msgpack_sbuffer *buf)
{
    assert (event);
    assert (buf);
    return s_event_write (buf, GT_PROTOCOL_VERSION, event, NULL, NULL, 0);
}

//  Both event encoders: lease_bytes NULL writes the lease
static int
s_encode_event (const gt_msg_t *self, const void *lease_bytes, size_t lease_bytes_size,
                msgpack_sbuffer *buf, size_t *lease_offset_p, size_t *lease_size_p)
{
    assert (self);
    assert (buf);
    assert (lease_offset_p && lease_size_p);
    if (self->kind != GT_MSG_EVENT)
        return -1;
    size_t start = buf->size;
    size_t span [2] = { 0, 0 };
    if (s_event_write (buf, self->version, &self->event, span, lease_bytes, lease_bytes_size))
        return -1;
    *lease_offset_p = span [0] - start;
    *lease_size_p = span [1];
    return 0;
}

int
gt_msg_encode_event (const gt_msg_t *self, msgpack_sbuffer *buf, size_t *lease_offset_p, size_t *lease_size_p)
{
    return s_encode_event (self, NULL, 0, buf, lease_offset_p, lease_size_p);
}

int
gt_msg_encode_event_with_lease (const gt_msg_t *self, const void *lease, size_t size,
                                msgpack_sbuffer *buf, size_t *lease_offset_p)
{
    assert (lease && size > 0);
    size_t lease_size;
    return s_encode_event (self, lease, size, buf, lease_offset_p, &lease_size);
}

//  The head of an OK reply that carries a lease and nothing else (the
//  layout of s_pack_reply): v, rid, code, then the key "lease"
static int
s_lease_reply_head (uint64_t rid, msgpack_sbuffer *buf)
{
    const char *ok = gt_code_name (GT_OK);
    size_t ok_len = strlen (ok);
    char *cursor = s_reserve (buf, 1 + 2 + 9 + 4 + 9 + 5 + 5 + ok_len + 6);
    if (!cursor)
        return -1;
    char *head = cursor;
    cursor = s_put_map (cursor, 4);
    cursor = S_PUT_KEY (cursor, "v");
    cursor = s_put_uint (cursor, GT_PROTOCOL_VERSION);
    cursor = S_PUT_KEY (cursor, "rid");
    cursor = s_put_uint (cursor, rid);
    cursor = S_PUT_KEY (cursor, "code");
    cursor = s_put_str (cursor, ok, ok_len);
    cursor = S_PUT_KEY (cursor, "lease");
    buf->size += (size_t) (cursor - head);
    return 0;
}

int
gt_msg_encode_lease_reply (uint64_t rid, const void *lease, size_t size, msgpack_sbuffer *buf)
{
    assert (lease && size > 0);
    assert (buf);
    size_t start = buf->size;
    char *room;
    if (s_lease_reply_head (rid, buf) || !(room = s_reserve (buf, size))) {
        buf->size = start;
        return -1;
    }
    memcpy (room, lease, size);
    buf->size += size;
    return 0;
}

int
gt_msg_encode_lease_info_reply (uint64_t rid, const gt_lease_info_t *lease, msgpack_sbuffer *buf)
{
    assert (lease);
    assert (buf);
    size_t start = buf->size;
    if (s_lease_reply_head (rid, buf) || s_lease_write (lease, buf)) {
        buf->size = start;
        return -1;
    }
    return 0;
}

int
gt_msg_encode_alloc (const gt_msg_t *self, void **data_p, size_t *size_p)
{
    assert (data_p);
    assert (size_p);
    //  msgpack's first allocation is 8 KiB; most bodies are a few hundred
    //  bytes, so start small (the buffer doubles as needed): the result is
    //  held until sent, and small blocks come from malloc's fast caches.
    msgpack_sbuffer buf;
    msgpack_sbuffer_init (&buf);
    buf.data = (char *) malloc (512);
    assert (buf.data);
    buf.alloc = 512;
    if (gt_msg_encode (self, &buf)) {
        msgpack_sbuffer_destroy (&buf);
        *data_p = NULL;
        *size_p = 0;
        return -1;
    }
    *size_p = buf.size;
    *data_p = msgpack_sbuffer_release (&buf);
    return 0;
}

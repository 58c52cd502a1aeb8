/*  gt_msg_decode.c — the strict GTLP/1 decoder (GTLP.md §3 and §8).

    Two passes.  First gt_msg_scan (gt_msg_scan.c) checks the raw bytes
    without recursion and without allocating: it proves the body is one
    well-formed map of string keys, no trailing bytes, nesting at most
    GT_MAX_DEPTH, and no container claiming more elements than there are
    bytes left (msgpack-c allocates a container's element array before
    reading it, so a 6-byte body claiming 2^32 entries would otherwise ask
    for gigabytes).  The scan also picks up the "rid" so that even a broken
    request can be answered with its rid.  Then msgpack_unpack_next builds
    the object tree, and typed getters copy it into a gt_msg_t, naming the
    offending key in any error ("lease.ttl_ms: expected unsigned integer").
    Strings must be valid UTF-8 without NUL bytes (C strings cannot carry
    them).  A body within the scan's bounds and a few more (nearly all of
    them) is read in one pass instead, into the same tree (s_take_body; a
    request's top-level values straight into their slots, s_take_request),
    and anything else falls back to the two passes.  */
#include "gt_msg_private.h"
#include <assert.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

//  ---------------------------------------------------------------------------
//  Pass 2: typed getters over the msgpack-c object tree

//  Where a value sits, for error messages; built on the stack, rendered only
//  on failure.
typedef struct s_path_t {
    const struct s_path_t *parent;  //  enclosing value, or NULL at the top
    const char *key;                //  key in the parent map, or NULL for an array element
    size_t index;                   //  array index when key is NULL
} s_path_t;

//  The path of a map's key by its index in names, for a getter's error
//  message: made where it is passed (a compound literal), so that a map's
//  keys cost nothing for paths until one is wrong
#define S_AT(index) (&(s_path_t) { path, names [index], 0 })

typedef struct {
    char *err;                      //  caller's message buffer, or NULL
    size_t err_size;                //  its size
    bool limits;                    //  apply the §8 limits (requests)
    msgpack_zone *arena;            //  where the message's parts go (a reused decoder), or NULL: malloc
} s_decoder_t;

static size_t
s_render_path (const s_path_t *path, char *buf, size_t size)
{
    if (!path)
        return 0;
    size_t used = s_render_path (path->parent, buf, size);
    int written;
    if (path->key)
        written = snprintf (buf + used, size - used, "%s%s", used? ".": "", path->key);
    else
        written = snprintf (buf + used, size - used, "[%zu]", path->index);
    if (written < 0)
        return used;
    used += (size_t) written;
    return used < size? used: size - 1;
}

//  Write "path: message" into the caller's buffer; always returns false.
static bool
s_fail (s_decoder_t *self, const s_path_t *path, const char *format, ...)
{
    if (self->err && self->err_size > 0) {
        size_t used = s_render_path (path, self->err, self->err_size);
        if (used == 0)
            used = (size_t) snprintf (self->err, self->err_size, "body");
        if (used + 2 < self->err_size) {
            memcpy (self->err + used, ": ", 3);
            va_list args;
            va_start (args, format);
            vsnprintf (self->err + used + 2, self->err_size - used - 2, format, args);
            va_end (args);
        }
    }
    return false;
}

//  True if the key (key_len bytes, NULs allowed) is the name: compared in
//  line, never reading past the name's NUL
static inline bool
s_key_is (const char *name, const char *key, uint32_t key_len)
{
    for (uint32_t index = 0; index < key_len; index++)
        if (name [index] == '\0' || name [index] != key [index])
            return false;
    return name [key_len] == '\0';
}

//  In a key-slot function (s_request_slot, s_lease_slot, s_reply_slot),
//  whose switch has checked the length: the key is this name
#define S_IS(name) (memcmp (key, name, sizeof (name) - 1) == 0)

//  Which of names a key is (its index), or -1: for a name list known in
//  advance, faster than comparing the key with each name in turn
typedef int (s_slot_fn) (const char *key, uint32_t key_len);

//  Find the values of the known keys of a map (slots [i] for names [i], NULL
//  if absent).  Unknown keys are ignored; a known key twice is an error.
//  slot_of (or NULL: a search of names) says which name a key is.
static bool
s_collect_by (s_decoder_t *self, const s_path_t *path, const msgpack_object *object,
              const char *const *names, size_t count, s_slot_fn *slot_of, const msgpack_object **slots)
{
    if (object->type != MSGPACK_OBJECT_MAP)
        return s_fail (self, path, "expected map");
    memset (slots, 0, count * sizeof (*slots));
    //  The search starts after the name found last: keys written in the
    //  canonical order (GTLP.md), as the name lists are, match at once
    size_t next = 0;
    for (uint32_t pair = 0; pair < object->via.map.size; pair++) {
        const msgpack_object_kv *kv = &object->via.map.ptr [pair];
        if (kv->key.type != MSGPACK_OBJECT_STR)
            return s_fail (self, path, "map key is not a string");
        const char *key = kv->key.via.str.ptr;
        uint32_t key_len = kv->key.via.str.size;
        int found = -1;
        if (slot_of)
            found = slot_of (key, key_len);
        else
            for (size_t tried = 0; tried < count && key_len > 0; tried++) {
                size_t index = next + tried < count? next + tried: next + tried - count;
                if (s_key_is (names [index], key, key_len)) {
                    found = (int) index;
                    next = index + 1 < count? index + 1: 0;
                    break;
                }
            }
        if (found < 0)
            continue;
        if (slots [found]) {
            s_path_t at = { path, names [found], 0 };
            return s_fail (self, &at, "duplicate key");
        }
        slots [found] = &kv->val;
    }
    return true;
}

static bool
s_collect (s_decoder_t *self, const s_path_t *path, const msgpack_object *object,
           const char *const *names, size_t count, const msgpack_object **slots)
{
    return s_collect_by (self, path, object, names, count, NULL, slots);
}

static bool
s_get_uint (s_decoder_t *self, const s_path_t *path, const msgpack_object *object,
            uint64_t max, uint64_t *value)
{
    if (object->type != MSGPACK_OBJECT_POSITIVE_INTEGER)
        return s_fail (self, path, "expected unsigned integer");
    if (object->via.u64 > max)
        return s_fail (self, path, "%llu is out of range (at most %llu)",
                       (unsigned long long) object->via.u64, (unsigned long long) max);
    *value = object->via.u64;
    return true;
}

//  A shard number: 0 .. GT_SHARD_COUNT - 1, replies and events included
static bool
s_get_shard (s_decoder_t *self, const s_path_t *path, const msgpack_object *object,
             unsigned *shard)
{
    uint64_t value = 0;
    if (!s_get_uint (self, path, object, GT_SHARD_COUNT - 1, &value))
        return false;
    *shard = (unsigned) value;
    return true;
}

static bool
s_get_bool (s_decoder_t *self, const s_path_t *path, const msgpack_object *object, bool *value)
{
    if (object->type != MSGPACK_OBJECT_BOOLEAN)
        return s_fail (self, path, "expected boolean");
    *value = object->via.boolean;
    return true;
}

//  True if size bytes are all ASCII and none is NUL (then a string is
//  valid UTF-8 without a NUL), eight at a time: a byte that is NUL borrows
//  in word - 0x01..., and one past 0x7F has its high bit set.  A borrow
//  can only flag a byte next to a NUL in the word, which is flagged itself.
static inline bool
s_plain_ascii (const char *text, size_t size)
{
    const uint64_t ones = 0x0101010101010101ULL;
    const uint64_t high = 0x8080808080808080ULL;
    size_t at = 0;
    for (; at + sizeof (uint64_t) <= size; at += sizeof (uint64_t)) {
        uint64_t word;
        memcpy (&word, text + at, sizeof word);
        if (((word - ones) | word) & high)
            return false;
    }
    //  The last bytes, in a word padded with 0x01 (neither NUL nor past 0x7F)
    uint64_t word = ones;
    if (size > at)
        memcpy (&word, text + at, size - at);
    return !(((word - ones) | word) & high);
}

//  Check a str object: type, UTF-8, no NUL, and (with limits) min .. max bytes
static bool
s_check_str (s_decoder_t *self, const s_path_t *path, const msgpack_object *object,
             size_t min, size_t max)
{
    if (object->type != MSGPACK_OBJECT_STR)
        return s_fail (self, path, "expected string");
    size_t size = object->via.str.size;
    if (self->limits && (size < min || size > max)) {
        if (min > 0)
            return s_fail (self, path, "length must be %zu .. %zu bytes", min, max);
        return s_fail (self, path, "longer than %zu bytes", max);
    }
    //  Nearly every string is plain ASCII: checked at once
    if (s_plain_ascii (object->via.str.ptr, size))
        return true;
    if (size > 0 && memchr (object->via.str.ptr, 0, size))
        return s_fail (self, path, "contains a NUL byte");
    if (!gt_utf8_valid (object->via.str.ptr, size))
        return s_fail (self, path, "invalid UTF-8");
    return true;
}

//  Zeroed parts of the message: from the arena (freed all at once at the
//  next decode) or from the heap (freed by gt_msg_destroy)
static void *
s_calloc (s_decoder_t *self, size_t count, size_t size)
{
    if (!self->arena) {
        void *block = calloc (count, size);
        assert (block);
        return block;
    }
    assert (count <= SIZE_MAX / size);      //  counts were bounded by the scan or the one pass
    void *block = msgpack_zone_malloc (self->arena, count * size);
    assert (block);
    memset (block, 0, count * size);
    return block;
}

static char *
s_strndup (s_decoder_t *self, const char *s, size_t size)
{
    char *copy = self->arena ? (char *) msgpack_zone_malloc (self->arena, size + 1) : (char *) malloc (size + 1);
    assert (copy);
    if (size > 0)
        memcpy (copy, s, size);
    copy [size] = '\0';
    return copy;
}

//  Copy a checked string; *value must be NULL (it is replaced)
static bool
s_get_str (s_decoder_t *self, const s_path_t *path, const msgpack_object *object,
           size_t min, size_t max, char **value)
{
    if (!s_check_str (self, path, object, min, max))
        return false;
    if (!self->arena)
        free (*value);
    *value = s_strndup (self, object->via.str.ptr, object->via.str.size);
    return true;
}

//  True if one of the size bytes is a control character (U+0000 - U+001F,
//  U+007F), eight at a time: a byte below 0x20 borrows in word - 0x20...
//  with its high bit clear, and one equal to 0x7F is zero after the xor
static bool
s_has_control (const char *text, size_t size)
{
    const uint64_t ones = 0x0101010101010101ULL;
    const uint64_t high = 0x8080808080808080ULL;
    size_t at = 0;
    for (; at + sizeof (uint64_t) <= size; at += sizeof (uint64_t)) {
        uint64_t word;
        memcpy (&word, text + at, sizeof word);
        uint64_t delete = word ^ (0x7F * ones);
        if ((((word - 0x20 * ones) & ~word) | ((delete - ones) & ~delete)) & high)
            return true;
    }
    for (; at < size; at++)
        if ((unsigned char) text [at] < 0x20 || text [at] == 0x7F)
            return true;
    return false;
}

static bool
s_get_lease_id (s_decoder_t *self, const s_path_t *path, const msgpack_object *object,
                char id [GT_LEASE_ID_LEN + 1])
{
    if (object->type != MSGPACK_OBJECT_STR)
        return s_fail (self, path, "expected string");
    if (object->via.str.size != GT_LEASE_ID_LEN)
        return s_fail (self, path, "expected 32 lowercase hex characters");
    memcpy (id, object->via.str.ptr, GT_LEASE_ID_LEN);
    id [GT_LEASE_ID_LEN] = '\0';
    if (!gt_lease_id_valid (id))
        return s_fail (self, path, "expected 32 lowercase hex characters");
    return true;
}

//  A string naming an enum value; parse is one of the gt_*_parse functions
//  (wrapped to take an int *).  what names the enum in the message.
static bool
s_get_name (s_decoder_t *self, const s_path_t *path, const msgpack_object *object,
            bool (*parse) (const char *, int *), const char *what, int *value)
{
    if (object->type != MSGPACK_OBJECT_STR)
        return s_fail (self, path, "expected string");
    char name [32];
    size_t size = object->via.str.size;
    if (size < sizeof (name)) {
        memcpy (name, object->via.str.ptr, size);
        name [size] = '\0';
        if (strlen (name) == size && parse (name, value))
            return true;
        if (strlen (name) == size && gt_utf8_valid (name, size))
            return s_fail (self, path, "unknown %s '%s'", what, name);
    }
    return s_fail (self, path, "unknown %s", what);
}

#define S_ENUM_PARSER(fn, type) \
    static bool s_##fn (const char *name, int *value) { \
        type parsed; \
        if (!gt_##fn (name, &parsed)) return false; \
        *value = (int) parsed; \
        return true; \
    }
S_ENUM_PARSER (cmd_parse, gt_cmd_t)
S_ENUM_PARSER (code_parse, gt_code_t)
S_ENUM_PARSER (object_type_parse, gt_object_type_t)
S_ENUM_PARSER (state_parse, gt_lease_state_t)
S_ENUM_PARSER (event_kind_parse, gt_event_kind_t)
S_ENUM_PARSER (reason_parse, gt_reason_t)
S_ENUM_PARSER (cleanup_status_parse, gt_cleanup_status_t)

static int
s_compare_meta (const void *a, const void *b)
{
    return strcmp (((const gt_meta_entry_t *) a)->key, ((const gt_meta_entry_t *) b)->key);
}

static int
s_compare_stat (const void *a, const void *b)
{
    return strcmp (((const gt_stat_t *) a)->name, ((const gt_stat_t *) b)->name);
}

//  metadata: map str -> str.  Stored sorted, so that re-encoding is a copy.
static bool
s_get_meta (s_decoder_t *self, const s_path_t *path, const msgpack_object *object,
            gt_meta_t *meta)
{
    if (object->type != MSGPACK_OBJECT_MAP)
        return s_fail (self, path, "expected map");
    uint32_t count = object->via.map.size;
    if (self->limits && count > GT_MAX_META_ENTRIES)
        return s_fail (self, path, "more than %d entries", GT_MAX_META_ENTRIES);
    if (count == 0)
        return true;
    meta->entries = (gt_meta_entry_t *) s_calloc (self, count, sizeof (gt_meta_entry_t));
    assert (meta->entries);
    size_t total = 0;
    for (uint32_t index = 0; index < count; index++) {
        const msgpack_object_kv *kv = &object->via.map.ptr [index];
        s_path_t at = { path, NULL, index };
        s_path_t at_key = { &at, "key", 0 };
        s_path_t at_value = { &at, "value", 0 };
        if (!s_check_str (self, &at_key, &kv->key, 1, GT_MAX_META_KEY)
        ||  !s_check_str (self, &at_value, &kv->val, 0, GT_MAX_META_VALUE))
            return false;
        total += kv->key.via.str.size + kv->val.via.str.size;
        if (self->limits && total > GT_MAX_META_TOTAL)
            return s_fail (self, path, "keys and values exceed %d bytes", GT_MAX_META_TOTAL);
        meta->entries [index].key = s_strndup (self, kv->key.via.str.ptr, kv->key.via.str.size);
        meta->entries [index].value = s_strndup (self, kv->val.via.str.ptr, kv->val.via.str.size);
        meta->count = index + 1;
    }
    qsort (meta->entries, meta->count, sizeof (gt_meta_entry_t), s_compare_meta);
    for (size_t index = 1; index < meta->count; index++)
        if (strcmp (meta->entries [index - 1].key, meta->entries [index].key) == 0)
            return s_fail (self, path, "duplicate key");
    return true;
}

static bool
s_get_stats (s_decoder_t *self, const s_path_t *path, const msgpack_object *object,
             gt_msg_t *msg)
{
    if (object->type != MSGPACK_OBJECT_MAP)
        return s_fail (self, path, "expected map");
    uint32_t count = object->via.map.size;
    msg->stats_present = true;
    if (count == 0)
        return true;
    msg->stats = (gt_stat_t *) s_calloc (self, count, sizeof (gt_stat_t));
    assert (msg->stats);
    for (uint32_t index = 0; index < count; index++) {
        const msgpack_object_kv *kv = &object->via.map.ptr [index];
        s_path_t at = { path, NULL, index };
        s_path_t at_key = { &at, "key", 0 };
        s_path_t at_value = { &at, "value", 0 };
        if (!s_check_str (self, &at_key, &kv->key, 0, SIZE_MAX)
        ||  !s_get_uint (self, &at_value, &kv->val, UINT64_MAX, &msg->stats [index].value))
            return false;
        msg->stats [index].name = s_strndup (self, kv->key.via.str.ptr, kv->key.via.str.size);
        msg->stat_count = index + 1;
    }
    qsort (msg->stats, msg->stat_count, sizeof (gt_stat_t), s_compare_stat);
    for (size_t index = 1; index < msg->stat_count; index++)
        if (strcmp (msg->stats [index - 1].name, msg->stats [index].name) == 0)
            return s_fail (self, path, "duplicate key");
    return true;
}

static bool
s_get_cleanup (s_decoder_t *self, const s_path_t *path, const msgpack_object *object,
               gt_cleanup_t **cleanup_p)
{
    static const char *const names [] = { "url", "payload", "max_retries", "retry_delay_ms" };
    const msgpack_object *slots [4];
    if (!s_collect (self, path, object, names, 4, slots))
        return false;
    gt_cleanup_t *cleanup = (gt_cleanup_t *) s_calloc (self, 1, sizeof (gt_cleanup_t));
    assert (cleanup);
    *cleanup_p = cleanup;
    s_path_t at_url = { path, "url", 0 };
    s_path_t at_payload = { path, "payload", 0 };
    s_path_t at_retries = { path, "max_retries", 0 };
    s_path_t at_delay = { path, "retry_delay_ms", 0 };
    if (!slots [0])
        return s_fail (self, &at_url, "required");
    if (!s_get_str (self, &at_url, slots [0], 0, GT_MAX_URL, &cleanup->url))
        return false;
    if (self->limits) {
        const char *url = cleanup->url;
        //  Schemes are case-insensitive (RFC 3986 3.1): HTTP:// is http://
        size_t prefix = strncasecmp (url, "http://", 7) == 0? 7
                      : strncasecmp (url, "https://", 8) == 0? 8: 0;
        if (prefix == 0 || url [prefix] == '\0')
            return s_fail (self, &at_url, "expected an http:// or https:// URL");
    }
    if (slots [1] && !s_get_str (self, &at_payload, slots [1], 0, GT_MAX_PAYLOAD, &cleanup->payload))
        return false;
    if (slots [2]) {
        uint64_t retries = 0;
        if (!s_get_uint (self, &at_retries, slots [2],
                         self->limits? GT_MAX_RETRIES_LIMIT: UINT32_MAX, &retries))
            return false;
        cleanup->has_max_retries = true;
        cleanup->max_retries = (uint32_t) retries;
    }
    if (slots [3]) {
        if (!s_get_uint (self, &at_delay, slots [3],
                         self->limits? GT_MAX_RETRY_DELAY_MS: UINT64_MAX, &cleanup->retry_delay_ms))
            return false;
        cleanup->has_retry_delay = true;
    }
    return true;
}

//  LEASE map (replies and events): every key from cleanup on is optional
enum { S_LEASE_ID, S_LEASE_OBJECT_ID, S_LEASE_OBJECT_TYPE, S_LEASE_SERVICE_ID, S_LEASE_STATE,
       S_LEASE_FENCE, S_LEASE_TTL, S_LEASE_CREATED, S_LEASE_RENEWED, S_LEASE_EXPIRES, S_LEASE_RENEWALS,
       S_LEASE_METADATA, S_LEASE_CLEANUP, S_LEASE_CLEANUP_STATUS, S_LEASE_CLEANUP_ATTEMPTS,
       S_LEASE_CLEANUP_ERROR, S_LEASE_COUNT };
_Static_assert (S_LEASE_COUNT == GT_LEASE_KEY_COUNT, "one LEASE name per slot");

const char *const gt_lease_key_names [GT_LEASE_KEY_COUNT] = {
    "id", "object_id", "object_type", "service_id", "state", "fence", "ttl_ms",
    "created_at", "renewed_at", "expires_at", "renewals", "metadata", "cleanup",
    "cleanup_status", "cleanup_attempts", "cleanup_error"
};

//  The slot of a LEASE key, by its length first (every reply and event
//  that carries a lease reads one; gt_msg_test checks each name)
static int
s_lease_slot (const char *key, uint32_t key_len)
{
    switch (key_len) {
        case 2:  return S_IS ("id")? S_LEASE_ID: -1;
        case 5:  return S_IS ("state")? S_LEASE_STATE: S_IS ("fence")? S_LEASE_FENCE: -1;
        case 6:  return S_IS ("ttl_ms")? S_LEASE_TTL: -1;
        case 7:  return S_IS ("cleanup")? S_LEASE_CLEANUP: -1;
        case 8:  return S_IS ("renewals")? S_LEASE_RENEWALS: S_IS ("metadata")? S_LEASE_METADATA: -1;
        case 9:  return S_IS ("object_id")? S_LEASE_OBJECT_ID: -1;
        case 10: return S_IS ("service_id")? S_LEASE_SERVICE_ID: S_IS ("created_at")? S_LEASE_CREATED
                      : S_IS ("renewed_at")? S_LEASE_RENEWED: S_IS ("expires_at")? S_LEASE_EXPIRES: -1;
        case 11: return S_IS ("object_type")? S_LEASE_OBJECT_TYPE: -1;
        case 13: return S_IS ("cleanup_error")? S_LEASE_CLEANUP_ERROR: -1;
        case 14: return S_IS ("cleanup_status")? S_LEASE_CLEANUP_STATUS: -1;
        case 16: return S_IS ("cleanup_attempts")? S_LEASE_CLEANUP_ATTEMPTS: -1;
        default: return -1;
    }
}

int
gt_msg_lease_key (const char *key, size_t key_len)
{
    return key_len <= UINT32_MAX? s_lease_slot (key, (uint32_t) key_len): -1;
}

static bool
s_get_lease (s_decoder_t *self, const s_path_t *path, const msgpack_object *object,
             gt_lease_info_t *lease)
{
    //  Short names for the slots of s_lease_slot, each bound to its own
    enum { ID = S_LEASE_ID, OBJECT_ID = S_LEASE_OBJECT_ID, OBJECT_TYPE = S_LEASE_OBJECT_TYPE,
           SERVICE_ID = S_LEASE_SERVICE_ID, STATE = S_LEASE_STATE, FENCE = S_LEASE_FENCE, TTL = S_LEASE_TTL,
           CREATED = S_LEASE_CREATED, RENEWED = S_LEASE_RENEWED, EXPIRES = S_LEASE_EXPIRES,
           RENEWALS = S_LEASE_RENEWALS, METADATA = S_LEASE_METADATA, CLEANUP = S_LEASE_CLEANUP,
           CLEANUP_STATUS = S_LEASE_CLEANUP_STATUS, CLEANUP_ATTEMPTS = S_LEASE_CLEANUP_ATTEMPTS,
           CLEANUP_ERROR = S_LEASE_CLEANUP_ERROR, COUNT = S_LEASE_COUNT };
    const char *const *names = gt_lease_key_names;
    const msgpack_object *slots [COUNT];
    if (!s_collect_by (self, path, object, names, COUNT, s_lease_slot, slots))
        return false;
    for (int index = 0; index < CLEANUP; index++)
        if (!slots [index]) {
            s_path_t at = { path, names [index], 0 };
            return s_fail (self, &at, "required");
        }
    int type = 0, state = 0;
    uint64_t *numbers [] = { &lease->fence, &lease->ttl_ms, &lease->created_at,
                             &lease->renewed_at, &lease->expires_at, &lease->renewals };
    if (!s_get_lease_id (self, S_AT (ID), slots [ID], lease->id)
    ||  !s_get_str (self, S_AT (OBJECT_ID), slots [OBJECT_ID], 1, GT_MAX_OBJECT_ID, &lease->object_id)
    ||  !s_get_name (self, S_AT (OBJECT_TYPE), slots [OBJECT_TYPE], s_object_type_parse, "object type", &type)
    ||  !s_get_str (self, S_AT (SERVICE_ID), slots [SERVICE_ID], 1, GT_MAX_SERVICE_ID, &lease->service_id)
    ||  !s_get_name (self, S_AT (STATE), slots [STATE], s_state_parse, "state", &state))
        return false;
    lease->object_type = (gt_object_type_t) type;
    lease->state = (gt_lease_state_t) state;
    for (int index = FENCE; index <= RENEWALS; index++)
        if (!s_get_uint (self, S_AT (index), slots [index], UINT64_MAX, numbers [index - FENCE]))
            return false;
    if (!s_get_meta (self, S_AT (METADATA), slots [METADATA], &lease->metadata))
        return false;
    if (slots [CLEANUP] && !s_get_cleanup (self, S_AT (CLEANUP), slots [CLEANUP], &lease->cleanup))
        return false;
    int status = GT_CLEANUP_NONE;
    if (slots [CLEANUP_STATUS]
    && !s_get_name (self, S_AT (CLEANUP_STATUS), slots [CLEANUP_STATUS], s_cleanup_status_parse,
                    "cleanup status", &status))
        return false;
    lease->cleanup_status = (gt_cleanup_status_t) status;
    if (slots [CLEANUP_ATTEMPTS]
    && !s_get_uint (self, S_AT (CLEANUP_ATTEMPTS), slots [CLEANUP_ATTEMPTS], UINT64_MAX,
                    &lease->cleanup_attempts))
        return false;
    if (slots [CLEANUP_ERROR]
    && !s_get_str (self, S_AT (CLEANUP_ERROR), slots [CLEANUP_ERROR], 0, SIZE_MAX, &lease->cleanup_error))
        return false;
    return true;
}

//  EVENT map.  At the top (top = true) the caller has checked "v"; nested in
//  a REPLAY reply, "v" must be 1.
static bool
s_get_event (s_decoder_t *self, const s_path_t *path, const msgpack_object *object,
             gt_event_t *event, bool top)
{
    enum { V, SEQ, KIND, AT, LEASE, REASON, SHARD, COUNT };
    static const char *const names [COUNT] = { "v", "seq", "kind", "at", "lease", "reason", "shard" };
    const msgpack_object *slots [COUNT];
    if (!s_collect (self, path, object, names, COUNT, slots))
        return false;
    for (int index = 0; index < COUNT; index++) {
        if (index < REASON && !slots [index])
            return s_fail (self, S_AT (index), "required");
    }
    uint64_t version = GT_PROTOCOL_VERSION;
    int kind = 0, reason = GT_REASON_NONE;
    if (!top && !s_get_uint (self, S_AT (V), slots [V], UINT64_MAX, &version))
        return false;
    if (!top && version != GT_PROTOCOL_VERSION)
        return s_fail (self, S_AT (V), "version %llu not supported", (unsigned long long) version);
    if (!s_get_uint (self, S_AT (SEQ), slots [SEQ], UINT64_MAX, &event->seq)
    ||  (slots [SHARD] && !(event->has_shard = s_get_shard (self, S_AT (SHARD), slots [SHARD], &event->shard)))
    ||  !s_get_name (self, S_AT (KIND), slots [KIND], s_event_kind_parse, "event kind", &kind)
    ||  !s_get_uint (self, S_AT (AT), slots [AT], UINT64_MAX, &event->at)
    ||  !s_get_lease (self, S_AT (LEASE), slots [LEASE], &event->lease))
        return false;
    if (slots [REASON]
    && !s_get_name (self, S_AT (REASON), slots [REASON], s_reason_parse, "reason", &reason))
        return false;
    event->kind = (gt_event_kind_t) kind;
    event->reason = (gt_reason_t) reason;
    return true;
}

static bool
s_get_result (s_decoder_t *self, const s_path_t *path, const msgpack_object *object,
              gt_renew_result_t *result)
{
    enum { LEASE_ID, CODE, EXPIRES, MESSAGE, COUNT };
    static const char *const names [COUNT] = { "lease_id", "code", "expires_at", "message" };
    const msgpack_object *slots [COUNT];
    if (!s_collect (self, path, object, names, COUNT, slots))
        return false;
    s_path_t at [COUNT];
    for (int index = 0; index < COUNT; index++)
        at [index] = (s_path_t) { path, names [index], 0 };
    for (int index = LEASE_ID; index <= CODE; index++)
        if (!slots [index])
            return s_fail (self, &at [index], "required");
    int code = 0;
    if (!s_get_lease_id (self, &at [LEASE_ID], slots [LEASE_ID], result->lease_id)
    ||  !s_get_name (self, &at [CODE], slots [CODE], s_code_parse, "code", &code))
        return false;
    result->code = (gt_code_t) code;
    if (slots [EXPIRES] && !s_get_uint (self, &at [EXPIRES], slots [EXPIRES], UINT64_MAX, &result->expires_at))
        return false;
    if (slots [MESSAGE] && !s_get_str (self, &at [MESSAGE], slots [MESSAGE], 0, SIZE_MAX, &result->message))
        return false;
    if (result->code != GT_OK && !result->message)
        result->message = s_strndup (self, "", 0);
    return true;
}

//  An array, with (under limits) min .. max entries
static bool
s_check_array (s_decoder_t *self, const s_path_t *path, const msgpack_object *object,
               size_t min, size_t max)
{
    if (object->type != MSGPACK_OBJECT_ARRAY)
        return s_fail (self, path, "expected array");
    size_t size = object->via.array.size;
    if (self->limits && (size < min || size > max))
        return s_fail (self, path, "must have %zu .. %zu entries", min, max);
    return true;
}

//  BROKER map of a MAP reply.  Its shards (0 .. 255, strictly ascending)
//  become a bitmap, which gives them their bound.  Its epochs are optional
//  (brokers before them send none) and, when present, one per shard, in
//  the same order; they are stored by shard.
static bool
s_get_broker (s_decoder_t *self, const s_path_t *path, const msgpack_object *object,
              gt_broker_info_t *broker)
{
    enum { BROKER_ID, ENDPOINT, EVENTS_ENDPOINT, SHARDS, EPOCHS, COUNT };
    static const char *const names [COUNT] = {
        "broker_id", "endpoint", "events_endpoint", "shards", "epochs"
    };
    const msgpack_object *slots [COUNT];
    if (!s_collect (self, path, object, names, COUNT, slots))
        return false;
    s_path_t at [COUNT];
    for (int index = 0; index < COUNT; index++) {
        at [index] = (s_path_t) { path, names [index], 0 };
        if (!slots [index] && index != EPOCHS)
            return s_fail (self, &at [index], "required");
    }
    if (!s_get_str (self, &at [BROKER_ID], slots [BROKER_ID], 0, SIZE_MAX, &broker->broker_id)
    ||  !s_get_str (self, &at [ENDPOINT], slots [ENDPOINT], 0, SIZE_MAX, &broker->endpoint)
    ||  !s_get_str (self, &at [EVENTS_ENDPOINT], slots [EVENTS_ENDPOINT], 0, SIZE_MAX,
                    &broker->events_endpoint)
    ||  !s_check_array (self, &at [SHARDS], slots [SHARDS], 0, GT_SHARD_COUNT))
        return false;
    const msgpack_object_array *array = &slots [SHARDS]->via.array;
    for (uint32_t index = 0; index < array->size; index++) {
        s_path_t at_entry = { &at [SHARDS], NULL, index };
        unsigned shard = 0;
        if (!s_get_shard (self, &at_entry, &array->ptr [index], &shard))
            return false;
        if (index > 0 && shard <= array->ptr [index - 1].via.u64)
            return s_fail (self, &at_entry, "%u is not ascending (after %llu)", shard,
                           (unsigned long long) array->ptr [index - 1].via.u64);
        gt_broker_info_add_shard (broker, shard);
    }
    if (slots [EPOCHS]) {
        if (!s_check_array (self, &at [EPOCHS], slots [EPOCHS], 0, GT_SHARD_COUNT))
            return false;
        const msgpack_object_array *epochs = &slots [EPOCHS]->via.array;
        if (epochs->size != array->size)
            return s_fail (self, &at [EPOCHS], "%u %s for %u %s",
                           (unsigned) epochs->size, epochs->size == 1? "entry": "entries",
                           (unsigned) array->size, array->size == 1? "shard": "shards");
        for (uint32_t index = 0; index < epochs->size; index++) {
            s_path_t at_entry = { &at [EPOCHS], NULL, index };
            if (!s_get_uint (self, &at_entry, &epochs->ptr [index], UINT64_MAX,
                             &broker->epochs [array->ptr [index].via.u64]))
                return false;
        }
        broker->has_epochs = true;
    }
    return true;
}

//  The records a reply's array may hold.
typedef enum { S_LEASES, S_RESULTS, S_EVENTS, S_BROKERS } s_records_t;

//  A reply's array of records at path into a new table in *table_p, with
//  one spare entry (so that an empty array is an empty table, not NULL),
//  and its count in *count_p.  Both are set before the entries are
//  decoded, so that on a failure part way gt_msg_destroy frees what was.
static bool
s_get_table (s_decoder_t *self, const s_path_t *path, const msgpack_object *object,
             s_records_t records, void **table_p, size_t *count_p)
{
    if (!s_check_array (self, path, object, 0, SIZE_MAX))
        return false;
    static const size_t sizes [] = {
        sizeof (gt_lease_info_t), sizeof (gt_renew_result_t), sizeof (gt_event_t), sizeof (gt_broker_info_t)
    };
    const msgpack_object_array *array = &object->via.array;
    void *table = s_calloc (self, array->size + 1, sizes [records]);
    assert (table);
    *table_p = table;
    *count_p = array->size;
    bool ok = true;
    for (uint32_t index = 0; ok && index < array->size; index++) {
        s_path_t at = { path, NULL, index };
        const msgpack_object *entry = &array->ptr [index];
        ok = records == S_LEASES?  s_get_lease (self, &at, entry, (gt_lease_info_t *) table + index)
           : records == S_RESULTS? s_get_result (self, &at, entry, (gt_renew_result_t *) table + index)
           : records == S_EVENTS?  s_get_event (self, &at, entry, (gt_event_t *) table + index, false)
           : s_get_broker (self, &at, entry, (gt_broker_info_t *) table + index);
    }
    return ok;
}

//  ---------------------------------------------------------------------------
//  Requests

//  A request's slots: v, rid, cmd, then the gt_req_key_t keys
enum { S_REQ_V, S_REQ_RID, S_REQ_CMD, S_REQ_FIRST, S_REQ_COUNT = S_REQ_FIRST + GT_REQ_END };

//  The slot of a request key, by its length first (gt_msg_test checks that
//  every name of gt_req_key_names comes back as its own slot)
static int
s_request_slot (const char *key, uint32_t key_len)
{
    switch (key_len) {
        case 1:  return key [0] == 'v'? S_REQ_V: -1;
        case 3:  return S_IS ("rid")? S_REQ_RID: S_IS ("cmd")? S_REQ_CMD: -1;
        case 5:  return S_IS ("state")? S_REQ_FIRST + GT_REQ_STATE: S_IS ("limit")? S_REQ_FIRST + GT_REQ_LIMIT
                      : S_IS ("shard")? S_REQ_FIRST + GT_REQ_SHARD: -1;
        case 6:  return S_IS ("ttl_ms")? S_REQ_FIRST + GT_REQ_TTL: S_IS ("retain")? S_REQ_FIRST + GT_REQ_RETAIN
                      : S_IS ("cursor")? S_REQ_FIRST + GT_REQ_CURSOR: -1;
        case 7:  return S_IS ("cleanup")? S_REQ_FIRST + GT_REQ_CLEANUP: -1;
        case 8:  return S_IS ("lease_id")? S_REQ_FIRST + GT_REQ_LEASE_ID
                      : S_IS ("metadata")? S_REQ_FIRST + GT_REQ_METADATA: -1;
        case 9:  return S_IS ("object_id")? S_REQ_FIRST + GT_REQ_OBJECT_ID
                      : S_IS ("lease_ids")? S_REQ_FIRST + GT_REQ_LEASE_IDS
                      : S_IS ("after_seq")? S_REQ_FIRST + GT_REQ_AFTER_SEQ: -1;
        case 10: return S_IS ("service_id")? S_REQ_FIRST + GT_REQ_SERVICE_ID: -1;
        case 11: return S_IS ("object_type")? S_REQ_FIRST + GT_REQ_OBJECT_TYPE: -1;
        case 14: return S_IS ("cleanup_status")? S_REQ_FIRST + GT_REQ_CLEANUP_STATUS: -1;
        case 15: return S_IS ("idempotency_key")? S_REQ_FIRST + GT_REQ_IDEMPOTENCY: -1;
        default: return -1;
    }
}

//  The command a name is, by its length first, without copying it; -1 if
//  none (gt_msg_test checks every gt_cmd_name, and that near misses are none)
static int
s_cmd_of (const char *key, uint32_t key_len)
{
    switch (key_len) {
        case 3:  return S_IS ("GET")? GT_CMD_GET: S_IS ("MAP")? GT_CMD_MAP: -1;
        case 4:  return S_IS ("LIST")? GT_CMD_LIST: -1;
        case 5:  return S_IS ("RENEW")? GT_CMD_RENEW: S_IS ("STATS")? GT_CMD_STATS
                      : S_IS ("RETRY")? GT_CMD_RETRY: -1;
        case 6:  return S_IS ("CREATE")? GT_CMD_CREATE: S_IS ("HEALTH")? GT_CMD_HEALTH
                      : S_IS ("REPLAY")? GT_CMD_REPLAY: -1;
        case 7:  return S_IS ("RELEASE")? GT_CMD_RELEASE: -1;
        case 11: return S_IS ("RENEW_BATCH")? GT_CMD_RENEW_BATCH: -1;
        default: return -1;
    }
}

//  Likewise the object type a name is (gt_object_type_name)
static int
s_object_type_of (const char *key, uint32_t key_len)
{
    switch (key_len) {
        case 6:  return S_IS ("CUSTOM")? GT_TYPE_CUSTOM: -1;
        case 7:  return S_IS ("UNKNOWN")? GT_TYPE_UNKNOWN: -1;
        case 11: return S_IS ("CACHE_ENTRY")? GT_TYPE_CACHE_ENTRY: -1;
        case 12: return S_IS ("DATABASE_ROW")? GT_TYPE_DATABASE_ROW
                      : S_IS ("BLOB_STORAGE")? GT_TYPE_BLOB_STORAGE: -1;
        case 14: return S_IS ("TEMPORARY_FILE")? GT_TYPE_TEMPORARY_FILE: -1;
        case 17: return S_IS ("WEBSOCKET_SESSION")? GT_TYPE_WEBSOCKET_SESSION: -1;
        default: return -1;
    }
}

//  The value a name is (s_cmd_of, s_object_type_of), or -1
typedef int (s_name_of_fn) (const char *name, uint32_t size);

//  s_get_name of the request's hot names: found by name_of, else judged
//  (and any error named) by s_get_name
static bool
s_get_known_name (s_decoder_t *self, const s_path_t *path, const msgpack_object *object,
                  s_name_of_fn *name_of, bool (*parse) (const char *, int *), const char *what, int *value)
{
    int found = object->type == MSGPACK_OBJECT_STR ? name_of (object->via.str.ptr, object->via.str.size) : -1;
    if (found >= 0) {
        *value = found;
        return true;
    }
    return s_get_name (self, path, object, parse, what, value);
}

int
gt_msg_command_of (const char *name, size_t size)
{
    return size <= UINT32_MAX? s_cmd_of (name, (uint32_t) size): -1;
}

int
gt_msg_object_type_of (const char *name, size_t size)
{
    return size <= UINT32_MAX? s_object_type_of (name, (uint32_t) size): -1;
}

int
gt_msg_request_key (const char *key, size_t key_len)
{
    int slot = key_len <= UINT32_MAX? s_request_slot (key, (uint32_t) key_len): -1;
    if (slot < 0)
        return -1;
    return slot >= S_REQ_FIRST? slot - S_REQ_FIRST: GT_REQ_END + slot;
}

//  A request whose top-level values are in slots (NULL: absent)
static gt_code_t
s_decode_request_slots (s_decoder_t *self, const msgpack_object *const *slots, gt_msg_t *msg)
{
    enum { V = S_REQ_V, RID = S_REQ_RID, CMD = S_REQ_CMD, FIRST = S_REQ_FIRST };
    s_path_t at_v = { NULL, "v", 0 }, at_rid = { NULL, "rid", 0 }, at_cmd = { NULL, "cmd", 0 };

    if (!slots [V])
        return s_fail (self, &at_v, "required"), GT_ERR_INVALID_ARGUMENT;
    if (!s_get_uint (self, &at_v, slots [V], UINT64_MAX, &msg->version))
        return GT_ERR_INVALID_ARGUMENT;
    if (msg->version != GT_PROTOCOL_VERSION)
        return s_fail (self, &at_v, "version %llu not supported",
                       (unsigned long long) msg->version), GT_ERR_UNSUPPORTED_VERSION;
    if (!slots [RID])
        return s_fail (self, &at_rid, "required"), GT_ERR_INVALID_ARGUMENT;
    if (!s_get_uint (self, &at_rid, slots [RID], UINT64_MAX, &msg->rid))
        return GT_ERR_INVALID_ARGUMENT;
    if (msg->rid == 0)
        return s_fail (self, &at_rid, "0 is reserved"), GT_ERR_INVALID_ARGUMENT;
    if (!slots [CMD])
        return s_fail (self, &at_cmd, "required"), GT_ERR_INVALID_ARGUMENT;
    int cmd = 0;
    if (!s_get_known_name (self, &at_cmd, slots [CMD], s_cmd_of, s_cmd_parse, "command", &cmd))
        return slots [CMD]->type == MSGPACK_OBJECT_STR? GT_ERR_UNSUPPORTED_COMMAND
                                                       : GT_ERR_INVALID_ARGUMENT;
    msg->cmd = (gt_cmd_t) cmd;

    const gt_req_key_t *layout = gt_req_layout [msg->cmd];
    for (size_t index = 0; layout [index] != GT_REQ_END; index++) {
        gt_req_key_t key = layout [index];
        const msgpack_object *object = slots [FIRST + key];
        s_path_t at = { NULL, gt_req_key_names [key], 0 };
        if (!object) {
            if (gt_req_required [msg->cmd] & (1u << key))
                return s_fail (self, &at, "required"), GT_ERR_INVALID_ARGUMENT;
            continue;
        }
        bool ok = true;
        int value = 0;
        switch (key) {
            case GT_REQ_OBJECT_ID:
                ok = s_get_str (self, &at, object, 1, GT_MAX_OBJECT_ID, &msg->object_id);
                break;
            case GT_REQ_OBJECT_TYPE:
                ok = s_get_known_name (self, &at, object, s_object_type_of, s_object_type_parse,
                                       "object type", &value);
                msg->object_type = ok? (gt_object_type_t) value: GT_TYPE_UNKNOWN;
                msg->has_object_type = ok;
                break;
            case GT_REQ_SERVICE_ID:
                ok = s_get_str (self, &at, object, 1, GT_MAX_SERVICE_ID, &msg->service_id);
                //  Its events' topics end the service id with U+001F
                //  (gt_event_topic), so no control character may hide in it
                if (ok && s_has_control (object->via.str.ptr, object->via.str.size))
                    ok = s_fail (self, &at, "contains a control character");
                break;
            case GT_REQ_LEASE_ID: {
                char id [GT_LEASE_ID_LEN + 1];
                ok = s_get_lease_id (self, &at, object, id);
                if (ok)
                    msg->lease_id = s_strndup (self, id, GT_LEASE_ID_LEN);
                break;
            }
            case GT_REQ_LEASE_IDS:
                ok = s_check_array (self, &at, object, 1, GT_MAX_BATCH);
                if (!ok)
                    break;
                msg->lease_id_count = object->via.array.size;
                msg->lease_ids = (char **) s_calloc (self, msg->lease_id_count + 1, sizeof (char *));
                assert (msg->lease_ids);
                for (size_t entry = 0; ok && entry < msg->lease_id_count; entry++) {
                    s_path_t at_entry = { &at, NULL, entry };
                    char id [GT_LEASE_ID_LEN + 1];
                    ok = s_get_lease_id (self, &at_entry, &object->via.array.ptr [entry], id);
                    if (ok)
                        msg->lease_ids [entry] = s_strndup (self, id, GT_LEASE_ID_LEN);
                }
                break;
            case GT_REQ_TTL:
                ok = msg->has_ttl = s_get_uint (self, &at, object, UINT64_MAX, &msg->ttl_ms);
                break;
            case GT_REQ_METADATA:
                ok = msg->has_metadata = s_get_meta (self, &at, object, &msg->metadata);
                break;
            case GT_REQ_CLEANUP:
                ok = s_get_cleanup (self, &at, object, &msg->cleanup);
                break;
            case GT_REQ_IDEMPOTENCY:
                ok = s_get_str (self, &at, object, 1, GT_MAX_IDEMPOTENCY_KEY, &msg->idempotency_key);
                break;
            case GT_REQ_RETAIN:
                ok = msg->has_retain = s_get_bool (self, &at, object, &msg->retain);
                break;
            case GT_REQ_STATE:
                ok = s_get_name (self, &at, object, s_state_parse, "state", &value);
                msg->state = ok? (gt_lease_state_t) value: GT_STATE_ACTIVE;
                msg->has_state = ok;
                break;
            case GT_REQ_CLEANUP_STATUS:
                ok = s_get_name (self, &at, object, s_cleanup_status_parse, "cleanup status", &value);
                msg->cleanup_status = ok? (gt_cleanup_status_t) value: GT_CLEANUP_NONE;
                msg->has_cleanup_status = ok;
                break;
            case GT_REQ_CURSOR:
                ok = s_get_str (self, &at, object, 0, SIZE_MAX, &msg->cursor);
                break;
            case GT_REQ_LIMIT:
                ok = msg->has_limit = s_get_uint (self, &at, object, UINT64_MAX, &msg->limit);
                if (ok && (msg->limit < 1 || msg->limit > GT_MAX_PAGE))
                    ok = s_fail (self, &at, "must be 1 .. %d", GT_MAX_PAGE);
                break;
            case GT_REQ_AFTER_SEQ:
                ok = msg->has_after_seq = s_get_uint (self, &at, object, UINT64_MAX, &msg->after_seq);
                break;
            case GT_REQ_SHARD:
                ok = msg->has_shard = s_get_shard (self, &at, object, &msg->shard);
                break;
            default:
                break;
        }
        if (!ok)
            return GT_ERR_INVALID_ARGUMENT;
    }
    return GT_OK;
}

//  A request from its tree
static gt_code_t
s_decode_request (s_decoder_t *self, const msgpack_object *root, gt_msg_t *msg)
{
    const char *names [S_REQ_COUNT] = { "v", "rid", "cmd" };
    for (int index = 0; index < GT_REQ_END; index++)
        names [S_REQ_FIRST + index] = gt_req_key_names [index];
    const msgpack_object *slots [S_REQ_COUNT];
    if (!s_collect_by (self, NULL, root, names, S_REQ_COUNT, s_request_slot, slots))
        return GT_ERR_INVALID_ARGUMENT;
    return s_decode_request_slots (self, slots, msg);
}

//  ---------------------------------------------------------------------------
//  Replies

enum { S_REPLY_V, S_REPLY_RID, S_REPLY_CODE, S_REPLY_MESSAGE, S_REPLY_VERSIONS, S_REPLY_SHARD, S_REPLY_OWNER,
       S_REPLY_MAP_VERSION, S_REPLY_RETRY_MS, S_REPLY_LEASE, S_REPLY_LEASES, S_REPLY_CURSOR, S_REPLY_RESULTS,
       S_REPLY_STATUS, S_REPLY_VERSION, S_REPLY_STORE, S_REPLY_STORE_STATUS, S_REPLY_UPTIME, S_REPLY_NOW,
       S_REPLY_ACTIVE, S_REPLY_STATS, S_REPLY_EVENTS, S_REPLY_LAST_SEQ, S_REPLY_SCANNED_SEQ, S_REPLY_CLUSTER,
       S_REPLY_BROKERS, S_REPLY_COUNT };
_Static_assert (S_REPLY_COUNT == GT_REPLY_KEY_COUNT, "one reply name per slot");

const char *const gt_reply_key_names [GT_REPLY_KEY_COUNT] = {
    "v", "rid", "code", "message", "versions", "shard", "owner", "map_version", "retry_ms",
    "lease", "leases", "cursor", "results", "status", "version", "store", "store_status",
    "uptime_ms", "now", "active_leases", "stats", "events", "last_seq", "scanned_seq",
    "cluster", "brokers"
};

//  The slot of a reply key (its index in gt_reply_key_names), by its length
//  first (gt_msg_test checks each name)
static int
s_reply_slot (const char *key, uint32_t key_len)
{
    switch (key_len) {
        case 1:  return key [0] == 'v'? S_REPLY_V: -1;
        case 3:  return S_IS ("rid")? S_REPLY_RID: S_IS ("now")? S_REPLY_NOW: -1;
        case 4:  return S_IS ("code")? S_REPLY_CODE: -1;
        case 5:  return S_IS ("lease")? S_REPLY_LEASE: S_IS ("shard")? S_REPLY_SHARD: S_IS ("owner")? S_REPLY_OWNER
                      : S_IS ("store")? S_REPLY_STORE: S_IS ("stats")? S_REPLY_STATS: -1;
        case 6:  return S_IS ("leases")? S_REPLY_LEASES: S_IS ("cursor")? S_REPLY_CURSOR
                      : S_IS ("status")? S_REPLY_STATUS: S_IS ("events")? S_REPLY_EVENTS: -1;
        case 7:  return S_IS ("message")? S_REPLY_MESSAGE: S_IS ("results")? S_REPLY_RESULTS
                      : S_IS ("version")? S_REPLY_VERSION: S_IS ("cluster")? S_REPLY_CLUSTER
                      : S_IS ("brokers")? S_REPLY_BROKERS: -1;
        case 8:  return S_IS ("versions")? S_REPLY_VERSIONS: S_IS ("retry_ms")? S_REPLY_RETRY_MS
                      : S_IS ("last_seq")? S_REPLY_LAST_SEQ: -1;
        case 9:  return S_IS ("uptime_ms")? S_REPLY_UPTIME: -1;
        case 11: return S_IS ("map_version")? S_REPLY_MAP_VERSION: S_IS ("scanned_seq")? S_REPLY_SCANNED_SEQ: -1;
        case 12: return S_IS ("store_status")? S_REPLY_STORE_STATUS: -1;
        case 13: return S_IS ("active_leases")? S_REPLY_ACTIVE: -1;
        default: return -1;
    }
}

int
gt_msg_reply_key (const char *key, size_t key_len)
{
    return key_len <= UINT32_MAX? s_reply_slot (key, (uint32_t) key_len): -1;
}

static gt_code_t
s_decode_reply (s_decoder_t *self, const msgpack_object *root, gt_msg_t *msg)
{
    //  Short names for the slots of s_reply_slot, each bound to its own
    enum { V = S_REPLY_V, RID = S_REPLY_RID, CODE = S_REPLY_CODE, MESSAGE = S_REPLY_MESSAGE,
           VERSIONS = S_REPLY_VERSIONS, SHARD = S_REPLY_SHARD, OWNER = S_REPLY_OWNER,
           MAP_VERSION = S_REPLY_MAP_VERSION, RETRY_MS = S_REPLY_RETRY_MS, LEASE = S_REPLY_LEASE,
           LEASES = S_REPLY_LEASES, CURSOR = S_REPLY_CURSOR, RESULTS = S_REPLY_RESULTS, STATUS = S_REPLY_STATUS,
           VERSION = S_REPLY_VERSION, STORE = S_REPLY_STORE, STORE_STATUS = S_REPLY_STORE_STATUS,
           UPTIME = S_REPLY_UPTIME, NOW = S_REPLY_NOW, ACTIVE = S_REPLY_ACTIVE, STATS = S_REPLY_STATS,
           EVENTS = S_REPLY_EVENTS, LAST_SEQ = S_REPLY_LAST_SEQ, SCANNED_SEQ = S_REPLY_SCANNED_SEQ,
           CLUSTER = S_REPLY_CLUSTER, BROKERS = S_REPLY_BROKERS, COUNT = S_REPLY_COUNT };
    const char *const *names = gt_reply_key_names;
    const s_path_t *path = NULL;        //  (the reply's keys are at the top)
    const msgpack_object *slots [COUNT];
    if (!s_collect_by (self, NULL, root, names, COUNT, s_reply_slot, slots))
        return GT_ERR_INVALID_ARGUMENT;
    for (int index = 0; index < COUNT; index++) {
        if (index <= CODE && !slots [index])
            return s_fail (self, S_AT (index), "required"), GT_ERR_INVALID_ARGUMENT;
    }
    if (!s_get_uint (self, S_AT (V), slots [V], UINT64_MAX, &msg->version))
        return GT_ERR_INVALID_ARGUMENT;
    if (msg->version != GT_PROTOCOL_VERSION)
        return s_fail (self, S_AT (V), "version %llu not supported",
                       (unsigned long long) msg->version), GT_ERR_UNSUPPORTED_VERSION;
    int code = 0;
    if (!s_get_uint (self, S_AT (RID), slots [RID], UINT64_MAX, &msg->rid)
    ||  !s_get_name (self, S_AT (CODE), slots [CODE], s_code_parse, "code", &code))
        return GT_ERR_INVALID_ARGUMENT;
    msg->code = (gt_code_t) code;
    //  Keys that come together (GTLP.md §14): MOVED carries shard, owner and
    //  map_version, TRY_AGAIN shard and retry_ms; a MAP reply has
    //  map_version, cluster and brokers
    unsigned required = msg->code == GT_ERR_MOVED? (1u << SHARD) | (1u << OWNER) | (1u << MAP_VERSION)
                      : msg->code == GT_ERR_TRY_AGAIN? (1u << SHARD) | (1u << RETRY_MS)
                      : msg->code == GT_OK && slots [BROKERS]? (1u << MAP_VERSION) | (1u << CLUSTER): 0;
    for (int index = 0; index < COUNT; index++)
        if ((required & (1u << index)) && !slots [index])
            return s_fail (self, S_AT (index), "required"), GT_ERR_INVALID_ARGUMENT;
    bool ok = true;
    if (slots [MESSAGE])
        ok = s_get_str (self, S_AT (MESSAGE), slots [MESSAGE], 0, SIZE_MAX, &msg->message);
    if (ok && msg->code != GT_OK && !msg->message)
        msg->message = s_strndup (self, "", 0);
    if (ok && slots [VERSIONS] && (ok = s_check_array (self, S_AT (VERSIONS), slots [VERSIONS], 0, SIZE_MAX))) {
        const msgpack_object_array *array = &slots [VERSIONS]->via.array;
        msg->versions = (uint64_t *) s_calloc (self, array->size + 1, sizeof (uint64_t));
        assert (msg->versions);
        msg->version_count = array->size;
        for (uint32_t index = 0; ok && index < array->size; index++) {
            s_path_t at_entry = { S_AT (VERSIONS), NULL, index };
            ok = s_get_uint (self, &at_entry, &array->ptr [index], UINT64_MAX, &msg->versions [index]);
        }
    }
    if (ok && slots [SHARD])
        ok = msg->has_shard = s_get_shard (self, S_AT (SHARD), slots [SHARD], &msg->shard);
    if (ok && slots [OWNER])
        ok = s_get_str (self, S_AT (OWNER), slots [OWNER], 0, SIZE_MAX, &msg->owner);
    if (ok && slots [MAP_VERSION])
        ok = msg->has_map_version = s_get_uint (self, S_AT (MAP_VERSION), slots [MAP_VERSION], UINT64_MAX,
                                                &msg->map_version);
    if (ok && slots [RETRY_MS])
        ok = msg->has_retry_ms = s_get_uint (self, S_AT (RETRY_MS), slots [RETRY_MS], UINT64_MAX,
                                             &msg->retry_ms);
    if (ok && slots [LEASE]) {
        msg->lease = (gt_lease_info_t *) s_calloc (self, 1, sizeof (gt_lease_info_t));
        assert (msg->lease);
        ok = s_get_lease (self, S_AT (LEASE), slots [LEASE], msg->lease);
    }
    if (ok && slots [LEASES]) {
        void *leases = NULL;
        ok = s_get_table (self, S_AT (LEASES), slots [LEASES], S_LEASES, &leases, &msg->lease_count);
        msg->leases = (gt_lease_info_t *) leases;
        msg->leases_present = leases != NULL;
    }
    if (ok && slots [CURSOR])
        ok = s_get_str (self, S_AT (CURSOR), slots [CURSOR], 0, SIZE_MAX, &msg->cursor);
    if (ok && slots [RESULTS]) {
        void *results = NULL;
        ok = s_get_table (self, S_AT (RESULTS), slots [RESULTS], S_RESULTS, &results, &msg->result_count);
        msg->results = (gt_renew_result_t *) results;
        msg->results_present = results != NULL;
    }
    if (ok && slots [STATUS]) {
        //  HEALTH: the four strings come together; the numbers default to 0
        char **strings [] = { &msg->status, &msg->server_version, &msg->store, &msg->store_status };
        for (int index = STATUS; ok && index <= STORE_STATUS; index++)
            ok = slots [index]? s_get_str (self, S_AT (index), slots [index], 0, SIZE_MAX, strings [index - STATUS])
                              : s_fail (self, S_AT (index), "required");
        uint64_t *numbers [] = { &msg->uptime_ms, &msg->now, &msg->active_leases };
        for (int index = UPTIME; ok && index <= ACTIVE; index++)
            if (slots [index])
                ok = s_get_uint (self, S_AT (index), slots [index], UINT64_MAX, numbers [index - UPTIME]);
    }
    if (ok && slots [STATS])
        ok = s_get_stats (self, S_AT (STATS), slots [STATS], msg);
    if (ok && slots [EVENTS]) {
        void *events = NULL;
        ok = s_get_table (self, S_AT (EVENTS), slots [EVENTS], S_EVENTS, &events, &msg->event_count);
        msg->events = (gt_event_t *) events;
        msg->events_present = events != NULL;
    }
    if (ok && slots [LAST_SEQ])
        ok = msg->has_last_seq = s_get_uint (self, S_AT (LAST_SEQ), slots [LAST_SEQ], UINT64_MAX, &msg->last_seq);
    if (ok && slots [SCANNED_SEQ])
        ok = msg->has_scanned_seq = s_get_uint (self, S_AT (SCANNED_SEQ), slots [SCANNED_SEQ], UINT64_MAX,
                                                &msg->scanned_seq);
    if (ok && slots [CLUSTER])
        ok = msg->has_cluster = s_get_bool (self, S_AT (CLUSTER), slots [CLUSTER], &msg->cluster);
    if (ok && slots [BROKERS]) {
        void *brokers = NULL;
        ok = s_get_table (self, S_AT (BROKERS), slots [BROKERS], S_BROKERS, &brokers, &msg->broker_count);
        msg->brokers = (gt_broker_info_t *) brokers;
        msg->brokers_present = brokers != NULL;
    }
    return ok? GT_OK: GT_ERR_INVALID_ARGUMENT;
}

//  ---------------------------------------------------------------------------
//  Events

static gt_code_t
s_decode_event (s_decoder_t *self, const msgpack_object *root, gt_msg_t *msg)
{
    static const char *const names [] = { "v" };
    const msgpack_object *slots [1] = { NULL };
    s_path_t at_v = { NULL, "v", 0 };
    if (!s_collect (self, NULL, root, names, 1, slots))
        return GT_ERR_INVALID_ARGUMENT;
    if (!slots [0])
        return s_fail (self, &at_v, "required"), GT_ERR_INVALID_ARGUMENT;
    if (!s_get_uint (self, &at_v, slots [0], UINT64_MAX, &msg->version))
        return GT_ERR_INVALID_ARGUMENT;
    if (msg->version != GT_PROTOCOL_VERSION)
        return s_fail (self, &at_v, "version %llu not supported",
                       (unsigned long long) msg->version), GT_ERR_UNSUPPORTED_VERSION;
    return s_get_event (self, NULL, root, &msg->event, true)? GT_OK: GT_ERR_INVALID_ARGUMENT;
}

//  ---------------------------------------------------------------------------
//  A body in one pass.  Nearly every body is small and well formed: a
//  request, a reply carrying one lease, an event.  Such a body is read here
//  straight into the object tree msgpack_unpack would build (the same
//  types: a signed form holding a value >= 0 is a POSITIVE_INTEGER, a
//  float32 is FLOAT32 with its value in f64; strings, bins and exts point
//  into the body), with the scan's bounds (nesting at most GT_MAX_DEPTH, no
//  container claiming more elements than bytes are left, checked before
//  anything is allocated), and the rid is picked up as the scan picks it
//  up; the typed getters then run on it as on any tree.  Anything else (a
//  map key that is not a string, a container of more than
//  S_TREE_MAX_ELEMENTS, bytes the scan would refuse, trailing bytes)
//  returns false and the body goes through both passes, which give the
//  errors: so a body gets the same verdict, message and rid either way
//  (fuzz_codec and gt_msg_test check it against gt_msg_decode_two_pass, for
//  requests, replies and events).  The two passes cost about twice this.

//  One object that is no container; false for a container, 0xc1 or a
//  truncated body
static bool
s_take_leaf (gt_msg_reader_t *in, msgpack_object *object)
{
    if (in->pos >= in->end)
        return false;
    uint8_t byte = *in->pos++;
    uint64_t length = 0;
    if (byte <= 0x7f) {
        object->type = MSGPACK_OBJECT_POSITIVE_INTEGER;
        object->via.u64 = byte;
        return true;
    }
    if (byte >= 0xe0) {
        object->type = MSGPACK_OBJECT_NEGATIVE_INTEGER;
        object->via.i64 = (int8_t) byte;
        return true;
    }
    if (byte >= 0xa0 && byte <= 0xbf) {
        object->type = MSGPACK_OBJECT_STR;
        length = byte & 0x1f;
    }
    else
    switch (byte) {
        case 0xc0:
            object->type = MSGPACK_OBJECT_NIL;
            return true;
        case 0xc2: case 0xc3:
            object->type = MSGPACK_OBJECT_BOOLEAN;
            object->via.boolean = byte == 0xc3;
            return true;
        case 0xd9: case 0xda: case 0xdb:
            object->type = MSGPACK_OBJECT_STR;
            if (!gt_msg_reader_be (in, (size_t) 1 << (byte - 0xd9), &length))
                return false;
            break;
        case 0xc4: case 0xc5: case 0xc6:
            object->type = MSGPACK_OBJECT_BIN;
            if (!gt_msg_reader_be (in, (size_t) 1 << (byte - 0xc4), &length))
                return false;
            break;
        case 0xc7: case 0xc8: case 0xc9:
            object->type = MSGPACK_OBJECT_EXT;
            //  (msgpack-c adds the type byte in 32 bits: an ext32 of
            //  2^32 - 1 bytes is left to it, and refused there)
            if (!gt_msg_reader_be (in, (size_t) 1 << (byte - 0xc7), &length) || length == UINT32_MAX)
                return false;
            length += 1;            //  its type byte
            break;
        case 0xd4: case 0xd5: case 0xd6: case 0xd7: case 0xd8:
            object->type = MSGPACK_OBJECT_EXT;
            length = 1 + ((uint64_t) 1 << (byte - 0xd4));
            break;
        case 0xca: case 0xcb: {
            uint64_t bits;
            if (!gt_msg_reader_be (in, byte == 0xca ? 4 : 8, &bits))
                return false;
            if (byte == 0xca) {
                uint32_t narrow = (uint32_t) bits;
                float value;
                memcpy (&value, &narrow, sizeof (value));
                object->type = MSGPACK_OBJECT_FLOAT32;
                object->via.f64 = value;
            }
            else {
                double value;
                memcpy (&value, &bits, sizeof (value));
                object->type = MSGPACK_OBJECT_FLOAT64;
                object->via.f64 = value;
            }
            return true;
        }
        case 0xcc: case 0xcd: case 0xce: case 0xcf:
            object->type = MSGPACK_OBJECT_POSITIVE_INTEGER;
            return gt_msg_reader_be (in, (size_t) 1 << (byte - 0xcc), &object->via.u64);
        case 0xd0: case 0xd1: case 0xd2: case 0xd3: {
            size_t width = (size_t) 1 << (byte - 0xd0);
            uint64_t bits;
            if (!gt_msg_reader_be (in, width, &bits))
                return false;
            int64_t value = width == 1 ? (int8_t) bits : width == 2 ? (int16_t) bits
                          : width == 4 ? (int32_t) bits : (int64_t) bits;
            if (value < 0) {
                object->type = MSGPACK_OBJECT_NEGATIVE_INTEGER;
                object->via.i64 = value;
            }
            else {
                object->type = MSGPACK_OBJECT_POSITIVE_INTEGER;
                object->via.u64 = (uint64_t) value;
            }
            return true;
        }
        default:
            return false;           //  a container, or 0xc1
    }
    if (length > (uint64_t) (in->end - in->pos))
        return false;
    const char *bytes = (const char *) in->pos;
    in->pos += length;
    if (object->type == MSGPACK_OBJECT_STR) {
        object->via.str.size = (uint32_t) length;
        object->via.str.ptr = bytes;
    }
    else
    if (object->type == MSGPACK_OBJECT_BIN) {
        object->via.bin.size = (uint32_t) length;
        object->via.bin.ptr = bytes;
    }
    else {
        object->via.ext.type = (int8_t) bytes [0];
        object->via.ext.size = (uint32_t) (length - 1);
        object->via.ext.ptr = bytes + 1;
    }
    return true;
}

//  Elements of one container read in one pass at most: a bigger one (a
//  long LIST page, or unknown keys, which are ignored) is left to the two
//  passes, so that what is allocated here before a byte of it is read
//  stays small
#define S_TREE_MAX_ELEMENTS  1024

static inline bool
s_take_object (gt_msg_reader_t *in, msgpack_zone *zone, int depth, msgpack_object *object);

//  A fixstr (the form nearly every key and string takes) at the reader's
//  position, which holds a byte: 1 read, 0 not a fixstr, -1 truncated
static inline int
s_take_fixstr (gt_msg_reader_t *in, msgpack_object *object)
{
    uint8_t byte = *in->pos;
    if (byte < 0xa0 || byte > 0xbf)
        return 0;
    uint32_t length = byte & 0x1f;
    if (length >= (size_t) (in->end - in->pos))
        return -1;
    object->type = MSGPACK_OBJECT_STR;
    object->via.str.size = length;
    object->via.str.ptr = (const char *) in->pos + 1;
    in->pos += 1 + length;
    return 1;
}

//  A map key: a string, read in line when a fixstr
static inline bool
s_take_key (gt_msg_reader_t *in, msgpack_object *key)
{
    int taken = in->pos < in->end ? s_take_fixstr (in, key) : 0;
    if (taken)
        return taken > 0;
    return s_take_leaf (in, key) && key->type == MSGPACK_OBJECT_STR;
}

//  The count of a container's header (byte already read), or false for
//  anything that is no container
static inline bool
s_take_count (gt_msg_reader_t *in, uint8_t byte, bool *is_map, uint64_t *count)
{
    if (byte >= 0x80 && byte <= 0x9f) {
        *is_map = byte <= 0x8f;
        *count = byte & 0x0f;
        return true;
    }
    if (byte >= 0xdc && byte <= 0xdf) {
        *is_map = byte >= 0xde;
        return gt_msg_reader_be (in, (byte & 1) ? 4 : 2, count);
    }
    return false;
}

//  The elements of a container whose header said count, at the given depth
//  (the body's map is 1).  Map keys must be strings: a map with any other
//  key goes to the two passes, which name the error.
static bool
s_take_elements (gt_msg_reader_t *in, msgpack_zone *zone, int depth, bool is_map, uint64_t count,
                 msgpack_object *object)
{
    //  The scan's bounds: never deeper than GT_MAX_DEPTH, and each element
    //  takes a byte at least, so no count beyond the bytes left
    size_t left = (size_t) (in->end - in->pos);
    if (depth > GT_MAX_DEPTH || count > S_TREE_MAX_ELEMENTS || count * (is_map ? 2 : 1) > left)
        return false;
    //  An empty container points at a block of no elements, as msgpack-c's
    //  does, never NULL (a NULL base with a size of 0 upsets qsort and memcpy)
    if (!is_map) {
        static msgpack_object no_items [1];
        msgpack_object *items = no_items;
        if (count > 0 && !(items = (msgpack_object *) msgpack_zone_malloc (zone, count * sizeof (*items))))
            return false;
        for (uint64_t index = 0; index < count; index++)
            if (!s_take_object (in, zone, depth + 1, &items [index]))
                return false;
        object->type = MSGPACK_OBJECT_ARRAY;
        object->via.array.size = (uint32_t) count;
        object->via.array.ptr = items;
        return true;
    }
    static msgpack_object_kv no_entries [1];
    msgpack_object_kv *entries = no_entries;
    if (count > 0 && !(entries = (msgpack_object_kv *) msgpack_zone_malloc (zone, count * sizeof (*entries))))
        return false;
    for (uint64_t pair = 0; pair < count; pair++)
        if (!s_take_key (in, &entries [pair].key)
        ||  !s_take_object (in, zone, depth + 1, &entries [pair].val))
            return false;
    object->type = MSGPACK_OBJECT_MAP;
    object->via.map.size = (uint32_t) count;
    object->via.map.ptr = entries;
    return true;
}

//  One object of any kind, nested at depth (a container there is at that
//  depth itself).  The forms nearly every value takes (fixstr, positive
//  fixint) are read here in line.
static inline bool
s_take_object (gt_msg_reader_t *in, msgpack_zone *zone, int depth, msgpack_object *object)
{
    if (in->pos >= in->end)
        return false;
    uint8_t byte = *in->pos;
    if (byte <= 0x7f) {
        in->pos++;
        object->type = MSGPACK_OBJECT_POSITIVE_INTEGER;
        object->via.u64 = byte;
        return true;
    }
    int taken = s_take_fixstr (in, object);
    if (taken)
        return taken > 0;
    bool is_map;
    uint64_t count;
    in->pos++;
    if (s_take_count (in, byte, &is_map, &count))
        return s_take_elements (in, zone, depth, is_map, count, object);
    in->pos--;
    return s_take_leaf (in, object);
}

//  The tree of a body in zone, and its rid as the scan finds it; false
//  (nothing to use) if the body is anything the two passes should judge
static bool
s_take_body (const void *data, size_t size, msgpack_zone *zone, msgpack_object *root,
             bool *have_rid, uint64_t *rid)
{
    *have_rid = false;
    if (size == 0)
        return false;
    gt_msg_reader_t in = { (const uint8_t *) data, (const uint8_t *) data + size };
    uint8_t byte = *in.pos++;
    bool is_map;
    uint64_t count;
    if (!s_take_count (&in, byte, &is_map, &count) || !is_map
    ||  !s_take_elements (&in, zone, 1, true, count, root)
    ||  in.pos != in.end)
        return false;
    //  The first "rid" whose value is an integer >= 0, as the scan takes it
    for (uint32_t pair = 0; pair < root->via.map.size; pair++) {
        const msgpack_object_kv *kv = &root->via.map.ptr [pair];
        if (kv->val.type == MSGPACK_OBJECT_POSITIVE_INTEGER
        &&  kv->key.via.str.size == 3 && memcmp (kv->key.via.str.ptr, "rid", 3) == 0) {
            *have_rid = true;
            *rid = kv->val.via.u64;
            break;
        }
    }
    return true;
}

//  What s_take_request made of a body
typedef enum {
    S_REQUEST_UNREADABLE = -1,      //  s_take_body would fail too: for the two passes
    S_REQUEST_TWICE = 0,            //  a known key came twice: for the tree's path, which names it
    S_REQUEST_READ = 1              //  the slots are filled
} s_request_read_t;

//  A request body's top-level values read straight into their slots
//  (values [i] for slot i, slots [i] pointing at it, else NULL): no tree
//  of the root map, and no pass over it to find the slots.
static s_request_read_t
s_take_request (const void *data, size_t size, msgpack_zone *zone,
                msgpack_object values [S_REQ_COUNT], const msgpack_object *slots [S_REQ_COUNT])
{
    if (size == 0)
        return S_REQUEST_UNREADABLE;
    gt_msg_reader_t in = { (const uint8_t *) data, (const uint8_t *) data + size };
    uint8_t byte = *in.pos++;
    bool is_map;
    uint64_t count;
    //  The bounds s_take_elements applies to the body's map (depth 1)
    if (!s_take_count (&in, byte, &is_map, &count) || !is_map
    ||  count > S_TREE_MAX_ELEMENTS || count * 2 > (size_t) (in.end - in.pos))
        return S_REQUEST_UNREADABLE;
    memset (slots, 0, S_REQ_COUNT * sizeof (*slots));
    for (uint64_t pair = 0; pair < count; pair++) {
        msgpack_object key, ignored;
        if (!s_take_key (&in, &key))
            return S_REQUEST_UNREADABLE;
        int slot = s_request_slot (key.via.str.ptr, key.via.str.size);
        if (slot >= 0 && slots [slot])
            return S_REQUEST_TWICE;
        msgpack_object *value = slot >= 0 ? &values [slot] : &ignored;
        if (!s_take_object (&in, zone, 2, value))
            return S_REQUEST_UNREADABLE;
        if (slot >= 0)
            slots [slot] = value;
    }
    return in.pos == in.end ? S_REQUEST_READ : S_REQUEST_UNREADABLE;
}

int
gt_msg_request_slots_read (const void *data, size_t size)
{
    msgpack_zone zone;
    if (!msgpack_zone_init (&zone, 1024))
        return S_REQUEST_UNREADABLE;
    msgpack_object values [S_REQ_COUNT];
    const msgpack_object *slots [S_REQ_COUNT];
    s_request_read_t read = s_take_request (data, size, &zone, values, slots);
    msgpack_zone_destroy (&zone);
    return read;
}

bool
gt_msg_one_pass_reads (const void *data, size_t size)
{
    msgpack_zone zone;
    if (!msgpack_zone_init (&zone, 1024))
        return false;
    msgpack_object root;
    bool have_rid = false;
    uint64_t rid = 0;
    bool reads = s_take_body (data, size, &zone, &root, &have_rid, &rid);
    msgpack_zone_destroy (&zone);
    return reads;
}

//  ---------------------------------------------------------------------------

//  One body into msg (zeroed, kind set): in one pass, else (or with
//  two_pass) both.  zone holds the object tree; with arena set the
//  message's parts go there too.
static gt_code_t
s_decode_body (const void *data, size_t size, gt_msg_kind_t kind, gt_msg_t *msg,
               msgpack_zone *zone, bool arena, bool two_pass, uint64_t *rid_p, char *err, size_t err_size)
{
    if (rid_p)
        *rid_p = 0;
    if (err && err_size > 0)
        err [0] = '\0';
    s_decoder_t decoder = { err, err_size, kind == GT_MSG_REQUEST, arena ? zone : NULL };

    //  A request in one pass, its top-level map read into slots; one that
    //  cannot be read so goes to the two passes at once
    msgpack_object values [S_REQ_COUNT];
    const msgpack_object *slots [S_REQ_COUNT];
    s_request_read_t request_read = kind == GT_MSG_REQUEST && !two_pass
                                  ? s_take_request (data, size, zone, values, slots) : S_REQUEST_TWICE;
    if (request_read == S_REQUEST_READ) {
        if (rid_p && slots [S_REQ_RID] && slots [S_REQ_RID]->type == MSGPACK_OBJECT_POSITIVE_INTEGER)
            *rid_p = slots [S_REQ_RID]->via.u64;
        gt_code_t code = s_decode_request_slots (&decoder, slots, msg);
        if (code == GT_OK && rid_p)
            *rid_p = msg->rid;
        return code;
    }
    msgpack_object root;
    bool have_rid = false;
    uint64_t rid = 0;
    if (!two_pass && request_read != S_REQUEST_UNREADABLE
    &&  s_take_body (data, size, zone, &root, &have_rid, &rid)) {
        if (rid_p && have_rid && kind != GT_MSG_EVENT)
            *rid_p = rid;
    }
    else {
        gt_msg_scan_t scan;
        gt_msg_scan ((const uint8_t *) data, size, &scan);
        if (rid_p && scan.have_rid && kind != GT_MSG_EVENT)
            *rid_p = scan.rid;
        if (scan.error) {
            if (err && err_size > 0)
                snprintf (err, err_size, "%s", scan.error);
            return GT_ERR_INVALID_ARGUMENT;
        }
        size_t offset = 0;
        if (msgpack_unpack ((const char *) data, size, &offset, zone, &root) != MSGPACK_UNPACK_SUCCESS
        ||  offset != size) {
            //  The scan accepted it, so only an allocation failure gets here
            s_fail (&decoder, NULL, "cannot unpack");
            return GT_ERR_INVALID_ARGUMENT;
        }
    }
    gt_code_t code = GT_ERR_INVALID_ARGUMENT;
    if (kind == GT_MSG_REQUEST)
        code = s_decode_request (&decoder, &root, msg);
    else
    if (kind == GT_MSG_REPLY)
        code = s_decode_reply (&decoder, &root, msg);
    else
    if (kind == GT_MSG_EVENT)
        code = s_decode_event (&decoder, &root, msg);
    else
        s_fail (&decoder, NULL, "unknown message kind");
    if (code == GT_OK && rid_p)
        *rid_p = msg->rid;
    return code;
}

//  gt_msg_decode, or with two_pass always both passes (no one pass)
static gt_code_t
s_decode (const void *data, size_t size, gt_msg_kind_t kind, bool two_pass,
          gt_msg_t **msg_p, uint64_t *rid_p, char *err, size_t err_size)
{
    assert (msg_p);
    assert (data || size == 0);
    *msg_p = NULL;
    //  One zone per body, its first chunk sized to the body: a small request
    //  costs one small allocation rather than msgpack-c's default 8 KiB.
    msgpack_zone zone;
    size_t chunk = size < 256? 1024: size < 64 * 1024? 4 * size: 256 * 1024;
    if (!msgpack_zone_init (&zone, chunk)) {
        if (rid_p)
            *rid_p = 0;
        if (err && err_size > 0)
            snprintf (err, err_size, "out of memory");
        return GT_ERR_INTERNAL;
    }
    gt_msg_t *msg = gt_msg_new (kind);
    gt_code_t code = s_decode_body (data, size, kind, msg, &zone, false, two_pass, rid_p, err, err_size);
    msgpack_zone_destroy (&zone);
    if (code != GT_OK) {
        gt_msg_destroy (&msg);
        return code;
    }
    *msg_p = msg;
    return GT_OK;
}

gt_code_t
gt_msg_decode (const void *data, size_t size, gt_msg_kind_t kind,
               gt_msg_t **msg_p, uint64_t *rid_p, char *err, size_t err_size)
{
    return s_decode (data, size, kind, false, msg_p, rid_p, err, err_size);
}

gt_code_t
gt_msg_decode_two_pass (const void *data, size_t size, gt_msg_kind_t kind,
                        gt_msg_t **msg_p, uint64_t *rid_p, char *err, size_t err_size)
{
    return s_decode (data, size, kind, true, msg_p, rid_p, err, err_size);
}

//  ---------------------------------------------------------------------------
//  The reusable decoder: one message and one zone for every body

//  The zone's first chunk, kept between bodies (msgpack_zone_clear frees
//  the others): a request and its parts fit it.
#define S_DECODER_CHUNK     (8 * 1024)

struct _gt_msg_decoder_t {
    msgpack_zone zone;              //  the object tree and the message's parts
    gt_msg_t msg;                   //  the last message decoded
};

gt_msg_decoder_t *
gt_msg_decoder_new (void)
{
    gt_msg_decoder_t *self = (gt_msg_decoder_t *) calloc (1, sizeof (gt_msg_decoder_t));
    assert (self);
    bool ready = msgpack_zone_init (&self->zone, S_DECODER_CHUNK);
    assert (ready);
    (void) ready;
    return self;
}

void
gt_msg_decoder_destroy (gt_msg_decoder_t **self_p)
{
    assert (self_p);
    gt_msg_decoder_t *self = *self_p;
    if (!self)
        return;
    msgpack_zone_destroy (&self->zone);
    free (self);
    *self_p = NULL;
}

gt_code_t
gt_msg_decoder_decode (gt_msg_decoder_t *self, const void *data, size_t size, gt_msg_kind_t kind,
                       const gt_msg_t **msg_p, uint64_t *rid_p, char *err, size_t err_size)
{
    assert (self);
    assert (msg_p);
    assert (data || size == 0);
    *msg_p = NULL;
    msgpack_zone_clear (&self->zone);
    memset (&self->msg, 0, sizeof (self->msg));
    self->msg.kind = kind;
    self->msg.version = GT_PROTOCOL_VERSION;
    gt_code_t code = s_decode_body (data, size, kind, &self->msg, &self->zone, true, false, rid_p, err, err_size);
    if (code == GT_OK)
        *msg_p = &self->msg;
    return code;
}

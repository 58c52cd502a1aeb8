/*  gt_proto.c — GTLP/1 names, topics and the small validators the codec uses.
    Every table is indexed by its enum; the names are the wire names of GTLP.md.  */
#include "gt_proto.h"
#include <limits.h>
#include <assert.h>
#include <stdio.h>
#include <string.h>
#if defined (__SSE2__)
#include <emmintrin.h>
#endif

static const char *s_cmd_names [GT_CMD_COUNT_] = {
    NULL, "CREATE", "RENEW", "RENEW_BATCH", "RELEASE", "GET", "LIST",
    "HEALTH", "STATS", "REPLAY", "RETRY", "MAP"
};

static const char *s_code_names [GT_CODE_COUNT_] = {
    "OK", "INVALID_ARGUMENT", "NOT_FOUND", "LEASE_ENDED", "PERMISSION_DENIED",
    "CONFLICT", "QUOTA_EXCEEDED", "UNAVAILABLE", "UNSUPPORTED_VERSION",
    "UNSUPPORTED_COMMAND", "TOO_OLD", "INTERNAL", "MOVED", "TRY_AGAIN"
};

//  The object types' and the verbs' names, each listed once, and their
//  lengths (an event's topic and its length are made for every event the
//  broker keeps or sends)
#define S_NAME(text)    text,
#define S_LENGTH(text)  sizeof (text) - 1,
#define S_TYPES(X) \
    X ("UNKNOWN") X ("DATABASE_ROW") X ("BLOB_STORAGE") X ("TEMPORARY_FILE") \
    X ("WEBSOCKET_SESSION") X ("CACHE_ENTRY") X ("CUSTOM")
#define S_VERBS(X) \
    X ("created") X ("renewed") X ("released") X ("expired") X ("reclaimed")

static const char *s_type_names [] = { S_TYPES (S_NAME) };
static const uint8_t s_type_lengths [] = { S_TYPES (S_LENGTH) };
_Static_assert (sizeof (s_type_names) / sizeof (s_type_names [0]) == GT_TYPE_COUNT_, "a name per object type");

static const char *s_state_names [GT_STATE_COUNT_] = {
    "ACTIVE", "RELEASED", "EXPIRED"
};

static const char *s_kind_names [GT_EVENT_COUNT_] = {
    "lease.created", "lease.renewed", "lease.released", "lease.expired",
    "object.reclaimed"
};

static const char *s_verb_names [] = { S_VERBS (S_NAME) };
static const uint8_t s_verb_lengths [] = { S_VERBS (S_LENGTH) };
_Static_assert (sizeof (s_verb_names) / sizeof (s_verb_names [0]) == GT_EVENT_COUNT_, "a verb per event kind");
#undef S_NAME
#undef S_LENGTH
#undef S_TYPES
#undef S_VERBS

static const char *s_reason_names [GT_REASON_COUNT_] = {
    NULL, "expired", "released"
};

static const char *s_cleanup_status_names [GT_CLEANUP_STATUS_COUNT_] = {
    NULL, "PENDING", "DELIVERED", "DEAD"
};

//  Look a value up in a name table; NULL when out of range.
static const char *
s_name (const char **table, int count, int value)
{
    return value >= 0 && value < count? table [value]: NULL;
}

//  Find a name in a table; -1 when absent.  Tables are tiny: a scan is fine.
static int
s_parse (const char **table, int count, const char *name)
{
    if (!name)
        return -1;
    for (int index = 0; index < count; index++)
        if (table [index] && strcmp (table [index], name) == 0)
            return index;
    return -1;
}

const char *gt_cmd_name (gt_cmd_t cmd)
{ return s_name (s_cmd_names, GT_CMD_COUNT_, (int) cmd); }
const char *gt_code_name (gt_code_t code)
{ return s_name (s_code_names, GT_CODE_COUNT_, (int) code); }
const char *gt_object_type_name (gt_object_type_t type)
{ return s_name (s_type_names, GT_TYPE_COUNT_, (int) type); }
const char *gt_state_name (gt_lease_state_t state)
{ return s_name (s_state_names, GT_STATE_COUNT_, (int) state); }
const char *gt_event_kind_name (gt_event_kind_t kind)
{ return s_name (s_kind_names, GT_EVENT_COUNT_, (int) kind); }
const char *gt_reason_name (gt_reason_t reason)
{ return s_name (s_reason_names, GT_REASON_COUNT_, (int) reason); }
const char *gt_cleanup_status_name (gt_cleanup_status_t status)
{ return s_name (s_cleanup_status_names, GT_CLEANUP_STATUS_COUNT_, (int) status); }
const char *gt_event_verb (gt_event_kind_t kind)
{ return s_name (s_verb_names, GT_EVENT_COUNT_, (int) kind); }

#define S_PARSE_INTO(table, count, name, out, type) \
    do { \
        int index_ = s_parse (table, count, name); \
        if (index_ < 0) \
            return false; \
        *(out) = (type) index_; \
        return true; \
    } while (0)

bool gt_cmd_parse (const char *name, gt_cmd_t *cmd)
{ S_PARSE_INTO (s_cmd_names, GT_CMD_COUNT_, name, cmd, gt_cmd_t); }
bool gt_code_parse (const char *name, gt_code_t *code)
{ S_PARSE_INTO (s_code_names, GT_CODE_COUNT_, name, code, gt_code_t); }
bool gt_object_type_parse (const char *name, gt_object_type_t *type)
{ S_PARSE_INTO (s_type_names, GT_TYPE_COUNT_, name, type, gt_object_type_t); }
bool gt_state_parse (const char *name, gt_lease_state_t *state)
{ S_PARSE_INTO (s_state_names, GT_STATE_COUNT_, name, state, gt_lease_state_t); }
bool gt_event_kind_parse (const char *name, gt_event_kind_t *kind)
{ S_PARSE_INTO (s_kind_names, GT_EVENT_COUNT_, name, kind, gt_event_kind_t); }
bool gt_reason_parse (const char *name, gt_reason_t *reason)
{ S_PARSE_INTO (s_reason_names, GT_REASON_COUNT_, name, reason, gt_reason_t); }
bool gt_cleanup_status_parse (const char *name, gt_cleanup_status_t *status)
{ S_PARSE_INTO (s_cleanup_status_names, GT_CLEANUP_STATUS_COUNT_, name, status, gt_cleanup_status_t); }

int
gt_event_topic (char *buf, size_t size, gt_event_kind_t kind,
                gt_object_type_t type, const char *service_id)
{
    if (!service_id)
        return -1;
    return gt_event_topic_n (buf, size, kind, type, service_id, strlen (service_id));
}

int
gt_event_topic_n (char *buf, size_t size, gt_event_kind_t kind,
                  gt_object_type_t type, const char *service_id, size_t service_len)
{
    const char *verb = gt_event_verb (kind);
    const char *type_name = gt_object_type_name (type);
    if (!buf || !verb || !type_name || !service_id)
        return -1;
    //  Built by hand: it is made for every event (snprintf was a tenth of
    //  the expiry path)
    size_t verb_len = s_verb_lengths [kind];
    size_t type_len = s_type_lengths [type];
    size_t length = service_len + 1 + verb_len + 1 + type_len;
    if (length >= size || length > INT_MAX)
        return -1;
    char *cursor = buf;
    memcpy (cursor, service_id, service_len);
    cursor += service_len;
    *cursor++ = GT_TOPIC_SEPARATOR;
    memcpy (cursor, verb, verb_len);
    cursor += verb_len;
    *cursor++ = '.';
    memcpy (cursor, type_name, type_len);
    cursor [type_len] = '\0';
    return (int) length;
}

int
gt_event_topic_length (gt_event_kind_t kind, gt_object_type_t type, size_t service_len)
{
    if ((unsigned) kind >= GT_EVENT_COUNT_ || (unsigned) type >= GT_TYPE_COUNT_)
        return -1;
    size_t length = service_len + 1 + s_verb_lengths [kind] + 1 + s_type_lengths [type];
    return length > INT_MAX ? -1 : (int) length;
}

int
gt_service_topic (char *buf, size_t size, const char *service_id)
{
    if (!buf || !service_id)
        return -1;
    int length = snprintf (buf, size, "%s%c", service_id, GT_TOPIC_SEPARATOR);
    if (length < 0 || (size_t) length >= size)
        return -1;
    return length;
}

#if defined (__SSE2__)
//  A lease id checked, and converted to its bytes if bytes is not NULL:
//  32 characters, then the NUL (memchr reads no further than the NUL), in
//  two loads of 16 (x86-64 always has SSE2).  A character is good if it is
//  '0'..'9' or 'a'..'f' (a byte past 0x7F compares as negative: neither);
//  its value is its low nibble, plus 9 for a letter; two values make a
//  byte, the first one high.  It runs on every id the codec reads or writes.
static inline bool
s_lease_id_scan (const char *text, uint8_t *bytes)
{
    if (!text || memchr (text, '\0', GT_LEASE_ID_LEN + 1) != text + GT_LEASE_ID_LEN)
        return false;
    __m128i values [2];
    for (int half = 0; half < 2; half++) {
        __m128i chars = _mm_loadu_si128 ((const __m128i *) (text + 16 * half));
        __m128i digit = _mm_and_si128 (_mm_cmpgt_epi8 (chars, _mm_set1_epi8 ('0' - 1)),
                                       _mm_cmpgt_epi8 (_mm_set1_epi8 ('9' + 1), chars));
        __m128i letter = _mm_and_si128 (_mm_cmpgt_epi8 (chars, _mm_set1_epi8 ('a' - 1)),
                                        _mm_cmpgt_epi8 (_mm_set1_epi8 ('f' + 1), chars));
        if (_mm_movemask_epi8 (_mm_or_si128 (digit, letter)) != 0xFFFF)
            return false;
        __m128i nibbles = _mm_add_epi8 (_mm_and_si128 (chars, _mm_set1_epi8 (0x0F)),
                                        _mm_and_si128 (letter, _mm_set1_epi8 (9)));
        //  In each 16-bit lane the first character's value is the low
        //  byte; a lane's byte value is at most 0xFF, so packus keeps it
        values [half] = _mm_or_si128 (_mm_slli_epi16 (_mm_and_si128 (nibbles, _mm_set1_epi16 (0x00FF)), 4),
                                      _mm_srli_epi16 (nibbles, 8));
    }
    if (bytes)
        _mm_storeu_si128 ((__m128i *) bytes, _mm_packus_epi16 (values [0], values [1]));
    return true;
}
#else
//  Eight bytes at once: each is '0'..'9' or 'a'..'f'.  With the high bit
//  of every byte set first, subtracting a constant below 0x80 from each
//  byte never borrows from the next, and the high bit that survives says
//  byte >= constant.
static bool
s_lower_hex_word (uint64_t word)
{
    const uint64_t high = 0x8080808080808080ULL;
    const uint64_t ones = 0x0101010101010101ULL;
    if (word & high)
        return false;
    uint64_t biased = word | high;
    uint64_t at_least_0 = (biased - 0x30 * ones) & high;
    uint64_t above_9 = (biased - 0x3a * ones) & high;
    uint64_t at_least_a = (biased - 0x61 * ones) & high;
    uint64_t above_f = (biased - 0x67 * ones) & high;
    return ((at_least_0 & ~above_9) | (at_least_a & ~above_f)) == high;
}

//  A lease id checked, and converted to its bytes if bytes is not NULL:
//  32 characters, then the NUL (memchr reads no further than the NUL),
//  each word of 8 checked (s_lower_hex_word) and converted without a
//  branch: a digit's low nibble is its value, a letter's ('a'..'f', bit 6
//  set) its low nibble + 9.  It runs on every id the codec reads or writes.
static inline bool
s_lease_id_scan (const char *text, uint8_t *bytes)
{
    if (!text || memchr (text, '\0', GT_LEASE_ID_LEN + 1) != text + GT_LEASE_ID_LEN)
        return false;
    for (int word = 0; word < 4; word++) {
        uint64_t chars;
        memcpy (&chars, text + 8 * word, sizeof chars);
        if (!s_lower_hex_word (chars))
            return false;
        if (!bytes)
            continue;
#if __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
        uint64_t nibbles = (chars & 0x0F0F0F0F0F0F0F0FULL) + ((chars >> 6) & 0x0101010101010101ULL) * 9;
        //  Byte 2k: its nibble high, byte 2k + 1's low; then the even bytes together
        uint64_t pairs = ((nibbles << 4) | (nibbles >> 8)) & 0x00FF00FF00FF00FFULL;
        pairs = (pairs | (pairs >> 8)) & 0x0000FFFF0000FFFFULL;
        uint32_t four = (uint32_t) (pairs | (pairs >> 16));
        memcpy (bytes + 4 * word, &four, sizeof four);
#else
        for (int index = 0; index < 8; index++) {
            char c = text [8 * word + index];
            int nibble = (c & 0x0F) + ((c >> 6) & 1) * 9;
            if (index % 2 == 0)
                bytes [4 * word + index / 2] = (uint8_t) (nibble << 4);
            else
                bytes [4 * word + index / 2] |= (uint8_t) nibble;
        }
#endif
    }
    return true;
}

#endif

bool
gt_lease_id_valid (const char *s)
{
    return s_lease_id_scan (s, NULL);
}

#if !defined (__SSE2__)
//  The two hex digits of every byte value, in order: byte b is at 2 * b
static const char s_hex_pairs [513] =
    "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f"
    "202122232425262728292a2b2c2d2e2f303132333435363738393a3b3c3d3e3f"
    "404142434445464748494a4b4c4d4e4f505152535455565758595a5b5c5d5e5f"
    "606162636465666768696a6b6c6d6e6f707172737475767778797a7b7c7d7e7f"
    "808182838485868788898a8b8c8d8e8f909192939495969798999a9b9c9d9e9f"
    "a0a1a2a3a4a5a6a7a8a9aaabacadaeafb0b1b2b3b4b5b6b7b8b9babbbcbdbebf"
    "c0c1c2c3c4c5c6c7c8c9cacbcccdcecfd0d1d2d3d4d5d6d7d8d9dadbdcdddedf"
    "e0e1e2e3e4e5e6e7e8e9eaebecedeeeff0f1f2f3f4f5f6f7f8f9fafbfcfdfeff";
#endif

void
gt_lease_id_format (const uint8_t id [16], char out [GT_LEASE_ID_LEN + 1])
{
    //  The id is formatted for every reply and event (and every lease a
    //  PostgreSQL broker loads at its start)
#if defined (__SSE2__)
    //  All 16 bytes at once (x86-64 always has SSE2): the high and the low
    //  nibbles interleaved, a byte's high one first, then '0' added to
    //  each, and 'a' - '0' - 10 more to those above 9 (about 25
    //  instructions against 127 for the table loop under #else)
    __m128i bytes = _mm_loadu_si128 ((const __m128i *) id);
    __m128i nibble = _mm_set1_epi8 (0x0F);
    __m128i high = _mm_and_si128 (_mm_srli_epi16 (bytes, 4), nibble);
    __m128i low = _mm_and_si128 (bytes, nibble);
    __m128i halves [2] = { _mm_unpacklo_epi8 (high, low), _mm_unpackhi_epi8 (high, low) };
    for (int half = 0; half < 2; half++) {
        __m128i letters = _mm_and_si128 (_mm_cmpgt_epi8 (halves [half], _mm_set1_epi8 (9)),
                                         _mm_set1_epi8 ('a' - '0' - 10));
        __m128i chars = _mm_add_epi8 (_mm_add_epi8 (halves [half], _mm_set1_epi8 ('0')), letters);
        _mm_storeu_si128 ((__m128i *) (out + 16 * half), chars);
    }
#else
    //  A pair of digits per byte from a table
    for (int i = 0; i < 16; i++)
        memcpy (out + 2 * i, s_hex_pairs + 2 * id [i], 2);
#endif
    out [GT_LEASE_ID_LEN] = '\0';
}

bool
gt_lease_id_parse (const char *text, uint8_t id [16])
{
    //  Written only once every word is good
    uint8_t bytes [16];
    if (!s_lease_id_scan (text, bytes))
        return false;
    memcpy (id, bytes, sizeof bytes);
    return true;
}

uint64_t
gt_fnv1a_64 (const void *data, size_t size)
{
    const uint8_t *bytes = (const uint8_t *) data;
    uint64_t hash = 14695981039346656037ULL;
    for (size_t index = 0; index < size; index++) {
        hash ^= bytes [index];
        hash *= 1099511628211ULL;
    }
    return hash;
}

unsigned
gt_shard_of (const char *object_id)
{
    assert (object_id);
    return (unsigned) (gt_fnv1a_64 (object_id, strlen (object_id)) % GT_SHARD_COUNT);
}

unsigned
gt_lease_id_shard (const char *lease_id)
{
    assert (gt_lease_id_valid (lease_id));
    unsigned high = (unsigned) (lease_id [0] <= '9' ? lease_id [0] - '0' : lease_id [0] - 'a' + 10);
    unsigned low = (unsigned) (lease_id [1] <= '9' ? lease_id [1] - '0' : lease_id [1] - 'a' + 10);
    return high * 16 + low;
}

bool
gt_utf8_valid (const char *s, size_t len)
{
    const unsigned char *bytes = (const unsigned char *) s;
    size_t pos = 0;
    while (pos < len) {
        //  Fast path: runs of ASCII, the common case for ids and names,
        //  eight bytes at a time while no high bit is set, then one by one
        uint64_t word;
        if (len - pos >= sizeof word) {
            memcpy (&word, bytes + pos, sizeof word);
            if ((word & 0x8080808080808080ULL) == 0) {
                pos += sizeof word;
                continue;
            }
        }
        if (bytes [pos] < 0x80) {
            pos++;
            continue;
        }
        unsigned char lead = bytes [pos];
        size_t extra;
        uint32_t min_cp, cp;
        if (lead >= 0xc2 && lead <= 0xdf) {
            extra = 1; min_cp = 0x80; cp = lead & 0x1f;
        }
        else
        if (lead >= 0xe0 && lead <= 0xef) {
            extra = 2; min_cp = 0x800; cp = lead & 0x0f;
        }
        else
        if (lead >= 0xf0 && lead <= 0xf4) {
            extra = 3; min_cp = 0x10000; cp = lead & 0x07;
        }
        else
            return false;       //  continuation byte, 0xc0/0xc1 overlong, or > U+10FFFF lead
        if (len - pos - 1 < extra)
            return false;       //  truncated sequence
        for (size_t index = 1; index <= extra; index++) {
            unsigned char next = bytes [pos + index];
            if ((next & 0xc0) != 0x80)
                return false;
            cp = (cp << 6) | (next & 0x3f);
        }
        if (cp < min_cp                             //  overlong
        ||  cp > 0x10ffff                           //  past Unicode
        || (cp >= 0xd800 && cp <= 0xdfff))          //  surrogate
            return false;
        pos += extra + 1;
    }
    return true;
}

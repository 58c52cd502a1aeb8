/*  gt_table.c — compact open-addressing hash table of pointers or record
    indexes; the contract is in gt_table.h.  */
#include <czmq.h>
#include "gt_table.h"

//  A slot holds an entry pointer (below bit 48: user-space addresses on
//  x86-64 and AArch64; checked on insert) with 16 bits of its hash above
//  it, or in an indexed table 32 bits: the entry's record index + 1 below
//  bit 28 and 4 bits of its hash above; 0 when empty.  A probe compares
//  those bits first and reads the entry (a cache miss at a million
//  entries) only when they agree: a lookup of an absent key, as every
//  CREATE makes, almost never reads an entry in a table of pointers, and
//  about half of one in an indexed table 3/4 full (seven or eight slots
//  probed, one in 16 agreeing by chance).
#define S_POINTER_BITS  48
#define S_INDEX_BITS    28

struct gt_table_t {
    void *slots;                    //  tagged values (uint64_t, or uint32_t when indexed), 0 = empty
    size_t capacity;                //  number of slots (0 until first insert)
    size_t size;                    //  number of entries
    gt_table_hash_fn *hash_fn;      //  rehash of a stored entry
    void *ctx;                      //  argument of hash_fn
    gt_records_t *records;          //  indexed: where the entries live; NULL: slots hold pointers
};

//  Grow when more than 3/4 full; shrink when under 1/8 full (and big).
#define S_MIN_CAPACITY  16

//  The functions below take narrow (indexed) as a constant argument and
//  are always inlined: each operation is compiled once for each kind of
//  slot, without a test of the kind at every probe.
#define S_INLINE    static inline __attribute__ ((always_inline))

static inline size_t
s_home (uint64_t hash, size_t capacity)
{
    //  Multiply-shift maps a 64-bit hash uniformly onto [0, capacity)
    return (size_t) (((unsigned __int128) hash * capacity) >> 64);
}

//  A slot's bits below its hash bits: the pointer, or the index + 1
S_INLINE uint64_t
s_value_mask (bool narrow)
{
    return narrow ? (UINT64_C (1) << S_INDEX_BITS) - 1 : (UINT64_C (1) << S_POINTER_BITS) - 1;
}

//  The hash bits a slot keeps: the low ones (the home slot comes from the
//  high ones, s_home)
S_INLINE uint64_t
s_tag (bool narrow, uint64_t hash)
{
    return narrow ? (uint32_t) (hash << S_INDEX_BITS) : hash << S_POINTER_BITS;
}

S_INLINE uint64_t
s_slot (bool narrow, const void *slots, size_t index)
{
    return narrow ? ((const uint32_t *) slots) [index] : ((const uint64_t *) slots) [index];
}

S_INLINE void
s_slot_set (bool narrow, void *slots, size_t index, uint64_t slot)
{
    if (narrow)
        ((uint32_t *) slots) [index] = (uint32_t) slot;
    else
        ((uint64_t *) slots) [index] = slot;
}

//  The entry a slot holds, and what a slot holds of an entry (untagged)
S_INLINE void *
s_entry (const gt_table_t *self, bool narrow, uint64_t slot)
{
    uint64_t value = slot & s_value_mask (narrow);
    if (narrow)
        return gt_records_at (self->records, (uint32_t) value - 1);
    return (void *) (uintptr_t) value;
}

S_INLINE uint64_t
s_value (const gt_table_t *self, bool narrow, const void *entry)
{
    if (narrow) {
        uint32_t index = gt_records_index (self->records, entry);
        assert (index < GT_TABLE_INDEX_MAX);
        return (uint64_t) index + 1;
    }
    assert (((uintptr_t) entry & ~(uintptr_t) s_value_mask (false)) == 0);
    return (uint64_t) (uintptr_t) entry;
}

static gt_table_t *
s_new (gt_table_hash_fn *hash_fn, void *ctx, gt_records_t *records)
{
    assert (hash_fn);
    gt_table_t *self = (gt_table_t *) zmalloc (sizeof (gt_table_t));
    assert (self);
    self->hash_fn = hash_fn;
    self->ctx = ctx;
    self->records = records;
    return self;
}

gt_table_t *
gt_table_new (gt_table_hash_fn *hash_fn, void *ctx)
{
    return s_new (hash_fn, ctx, NULL);
}

gt_table_t *
gt_table_new_indexed (gt_table_hash_fn *hash_fn, void *ctx, gt_records_t *records)
{
    assert (records);
    return s_new (hash_fn, ctx, records);
}

void
gt_table_destroy (gt_table_t **self_p)
{
    assert (self_p);
    gt_table_t *self = *self_p;
    if (self) {
        free (self->slots);
        free (self);
        *self_p = NULL;
    }
}

//  Put a tagged slot value in the first free slot from hash's home.
S_INLINE void
s_place (bool narrow, void *slots, size_t capacity, uint64_t hash, uint64_t slot)
{
    size_t index = s_home (hash, capacity);
    while (s_slot (narrow, slots, index))
        index = index + 1 == capacity ? 0 : index + 1;
    s_slot_set (narrow, slots, index, slot);
}

//  How many slots ahead a resize asks for the entry it will rehash: each
//  rehash reads its entry (a cache miss at a million entries, scattered),
//  so the reads are started early enough to overlap
#define S_PREFETCH_AHEAD    16

S_INLINE void
s_resize_as (gt_table_t *self, bool narrow, size_t capacity)
{
    void *slots = calloc (capacity, narrow ? sizeof (uint32_t) : sizeof (uint64_t));
    assert (slots);
    for (size_t index = 0; index < self->capacity; index++) {
        uint64_t ahead = index + S_PREFETCH_AHEAD < self->capacity
                       ? s_slot (narrow, self->slots, index + S_PREFETCH_AHEAD) : 0;
        if (ahead) {
            //  The entry's first two lines: a key a few dozen bytes in
            const char *entry = (const char *) s_entry (self, narrow, ahead);
            __builtin_prefetch (entry);
            __builtin_prefetch (entry + 64);
        }
        uint64_t slot = s_slot (narrow, self->slots, index);
        if (slot)
            s_place (narrow, slots, capacity, self->hash_fn (s_entry (self, narrow, slot), self->ctx), slot);
    }
    free (self->slots);
    self->slots = slots;
    self->capacity = capacity;
}

static void
s_resize (gt_table_t *self, size_t capacity)
{
    if (self->records)
        s_resize_as (self, true, capacity);
    else
        s_resize_as (self, false, capacity);
}

S_INLINE void *
s_lookup (gt_table_t *self, bool narrow, uint64_t hash, gt_table_match_fn *match, const void *key)
{
    size_t index = s_home (hash, self->capacity);
    uint64_t tag = s_tag (narrow, hash);
    for (uint64_t slot; (slot = s_slot (narrow, self->slots, index)) != 0; ) {
        if ((slot & ~s_value_mask (narrow)) == tag) {
            void *entry = s_entry (self, narrow, slot);
            if (match (entry, key))
                return entry;
        }
        index = index + 1 == self->capacity ? 0 : index + 1;
    }
    return NULL;
}

void *
gt_table_lookup (gt_table_t *self, uint64_t hash, gt_table_match_fn *match, const void *key)
{
    assert (self);
    if (self->size == 0)
        return NULL;
    return self->records ? s_lookup (self, true, hash, match, key)
                         : s_lookup (self, false, hash, match, key);
}

void
gt_table_prefetch (gt_table_t *self, uint64_t hash)
{
    assert (self);
    if (self->capacity) {
        size_t home = s_home (hash, self->capacity);
        __builtin_prefetch (self->records ? (void *) ((uint32_t *) self->slots + home)
                                          : (void *) ((uint64_t *) self->slots + home));
    }
}

void
gt_table_reserve (gt_table_t *self, size_t count)
{
    assert (self);
    size_t wanted = self->size + count;
    //  The smallest capacity at which wanted entries stay within 3/4
    size_t capacity = wanted + wanted / 3 + 1;
    if (wanted * 4 > self->capacity * 3)
        s_resize (self, capacity < S_MIN_CAPACITY ? S_MIN_CAPACITY : capacity);
}

S_INLINE void
s_insert (gt_table_t *self, bool narrow, uint64_t hash, void *entry)
{
    uint64_t value = s_value (self, narrow, entry);
    if ((self->size + 1) * 4 > self->capacity * 3) {
        size_t capacity = self->capacity * 3 / 2;
        s_resize_as (self, narrow, capacity < S_MIN_CAPACITY ? S_MIN_CAPACITY : capacity);
    }
    s_place (narrow, self->slots, self->capacity, hash, s_tag (narrow, hash) | value);
    self->size++;
}

void
gt_table_insert (gt_table_t *self, uint64_t hash, void *entry)
{
    assert (self);
    assert (entry);
    if (self->records)
        s_insert (self, true, hash, entry);
    else
        s_insert (self, false, hash, entry);
}

S_INLINE bool
s_remove (gt_table_t *self, bool narrow, uint64_t hash, const void *entry)
{
    uint64_t value = s_value (self, narrow, entry);
    uint64_t mask = s_value_mask (narrow);
    size_t hole = s_home (hash, self->capacity);
    for (uint64_t slot; ((slot = s_slot (narrow, self->slots, hole)) & mask) != value; ) {
        if (!slot)
            return false;
        hole = hole + 1 == self->capacity ? 0 : hole + 1;
    }
    //  Backward-shift: pull later entries of the cluster into the hole
    //  when the hole lies cyclically between their home and their slot.
    size_t next = hole;
    while (true) {
        next = next + 1 == self->capacity ? 0 : next + 1;
        uint64_t candidate = s_slot (narrow, self->slots, next);
        if (!candidate)
            break;
        size_t home = s_home (self->hash_fn (s_entry (self, narrow, candidate), self->ctx), self->capacity);
        bool movable = hole <= next
                     ? (home <= hole || home > next)
                     : (home <= hole && home > next);
        if (movable) {
            s_slot_set (narrow, self->slots, hole, candidate);
            hole = next;
        }
    }
    s_slot_set (narrow, self->slots, hole, 0);
    self->size--;
    if (self->capacity > 1024 && self->size * 8 < self->capacity)
        s_resize_as (self, narrow, self->capacity / 2);
    return true;
}

bool
gt_table_remove (gt_table_t *self, uint64_t hash, const void *entry)
{
    assert (self);
    if (self->size == 0)
        return false;
    return self->records ? s_remove (self, true, hash, entry) : s_remove (self, false, hash, entry);
}

size_t
gt_table_size (gt_table_t *self)
{
    assert (self);
    return self->size;
}

size_t
gt_table_capacity (gt_table_t *self)
{
    assert (self);
    return self->capacity;
}

void
gt_table_foreach (gt_table_t *self, void (*fn) (void *entry, void *arg), void *arg)
{
    assert (self);
    bool narrow = self->records != NULL;
    for (size_t index = 0; index < self->capacity; index++) {
        uint64_t slot = s_slot (narrow, self->slots, index);
        if (slot)
            fn (s_entry (self, narrow, slot), arg);
    }
}

//  --------------------------------------------------------------------------
//  SipHash-1-3 (Aumasson & Bernstein: SipHash with one compression round
//  and three finalisation rounds), written from the paper's description.

#define S_ROTL(x, b) (uint64_t) (((x) << (b)) | ((x) >> (64 - (b))))
#define S_SIPROUND \
    do { \
        v0 += v1; v1 = S_ROTL (v1, 13); v1 ^= v0; v0 = S_ROTL (v0, 32); \
        v2 += v3; v3 = S_ROTL (v3, 16); v3 ^= v2; \
        v0 += v3; v3 = S_ROTL (v3, 21); v3 ^= v0; \
        v2 += v1; v1 = S_ROTL (v1, 17); v1 ^= v2; v2 = S_ROTL (v2, 32); \
    } while (0)

//  Eight bytes as a little-endian number: one load (the byte loop it
//  replaces was not merged by the compiler: a tenth of SipHash's time)
static inline uint64_t
s_load64 (const uint8_t *p)
{
    uint64_t value;
    memcpy (&value, p, sizeof (value));
#if defined (__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_BIG_ENDIAN__
    value = __builtin_bswap64 (value);
#endif
    return value;
}

uint64_t
gt_siphash (const uint8_t key [16], const void *data, size_t size)
{
    const uint8_t *in = (const uint8_t *) data;
    uint64_t k0 = s_load64 (key), k1 = s_load64 (key + 8);
    uint64_t v0 = 0x736f6d6570736575ULL ^ k0;
    uint64_t v1 = 0x646f72616e646f6dULL ^ k1;
    uint64_t v2 = 0x6c7967656e657261ULL ^ k0;
    uint64_t v3 = 0x7465646279746573ULL ^ k1;
    size_t tail = size & 7;
    const uint8_t *end = in + size - tail;
    for (; in != end; in += 8) {
        uint64_t m = s_load64 (in);
        v3 ^= m;
        S_SIPROUND;
        v0 ^= m;
    }
    uint64_t b = ((uint64_t) size) << 56;
    for (size_t i = 0; i < tail; i++)
        b |= ((uint64_t) in [i]) << (8 * i);
    v3 ^= b;
    S_SIPROUND;
    v0 ^= b;
    v2 ^= 0xff;
    S_SIPROUND;
    S_SIPROUND;
    S_SIPROUND;
    return v0 ^ v1 ^ v2 ^ v3;
}

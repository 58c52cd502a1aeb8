/*  gt_table.c — compact open-addressing hash table of pointers.  */
#include <czmq.h>
#include "gt_table.h"

//  A slot holds an entry pointer (below bit 48: user-space addresses on
//  x86-64 and AArch64; checked on insert) with 16 bits of its hash above
//  it, 0 when empty.  A probe compares those bits first and reads the
//  entry (a cache miss at a million entries) only when they agree: a
//  lookup of an absent key, as every CREATE makes, reads no entry at all.
#define S_POINTER_BITS  48
#define S_POINTER_MASK  ((UINT64_C (1) << S_POINTER_BITS) - 1)

static inline uint64_t
s_tag (uint64_t hash)
{
    //  The low bits: the home slot comes from the high ones (s_home)
    return (hash & 0xFFFF) << S_POINTER_BITS;
}

static inline void *
s_entry (uint64_t slot)
{
    return (void *) (uintptr_t) (slot & S_POINTER_MASK);
}

struct gt_table_t {
    uint64_t *slots;                //  tagged entry pointers, 0 = empty
    size_t capacity;                //  number of slots (0 until first insert)
    size_t size;                    //  number of entries
    gt_table_hash_fn *hash_fn;      //  rehash of a stored entry
    void *ctx;                      //  argument of hash_fn
};

//  Grow when more than 3/4 full; shrink when under 1/8 full (and big).
#define S_MIN_CAPACITY  16

static inline size_t
s_home (uint64_t hash, size_t capacity)
{
    //  Multiply-shift maps a 64-bit hash uniformly onto [0, capacity)
    return (size_t) (((unsigned __int128) hash * capacity) >> 64);
}

gt_table_t *
gt_table_new (gt_table_hash_fn *hash_fn, void *ctx)
{
    assert (hash_fn);
    gt_table_t *self = (gt_table_t *) zmalloc (sizeof (gt_table_t));
    assert (self);
    self->hash_fn = hash_fn;
    self->ctx = ctx;
    return self;
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
static void
s_place (uint64_t *slots, size_t capacity, uint64_t hash, uint64_t slot)
{
    size_t index = s_home (hash, capacity);
    while (slots [index])
        index = index + 1 == capacity ? 0 : index + 1;
    slots [index] = slot;
}

//  How many slots ahead a resize asks for the entry it will rehash: each
//  rehash reads its entry (a cache miss at a million entries, scattered),
//  so the reads are started early enough to overlap
#define S_PREFETCH_AHEAD    16

static void
s_resize (gt_table_t *self, size_t capacity)
{
    uint64_t *slots = (uint64_t *) calloc (capacity, sizeof (uint64_t));
    assert (slots);
    for (size_t index = 0; index < self->capacity; index++) {
        if (index + S_PREFETCH_AHEAD < self->capacity && self->slots [index + S_PREFETCH_AHEAD]) {
            //  The entry's first two lines: a key a few dozen bytes in
            const char *ahead = (const char *) s_entry (self->slots [index + S_PREFETCH_AHEAD]);
            __builtin_prefetch (ahead);
            __builtin_prefetch (ahead + 64);
        }
        if (self->slots [index])
            s_place (slots, capacity, self->hash_fn (s_entry (self->slots [index]), self->ctx),
                     self->slots [index]);
    }
    free (self->slots);
    self->slots = slots;
    self->capacity = capacity;
}

void *
gt_table_lookup (gt_table_t *self, uint64_t hash, gt_table_match_fn *match, const void *key)
{
    assert (self);
    if (self->size == 0)
        return NULL;
    size_t index = s_home (hash, self->capacity);
    uint64_t tag = s_tag (hash);
    for (uint64_t slot; (slot = self->slots [index]) != 0; ) {
        if ((slot & ~S_POINTER_MASK) == tag && match (s_entry (slot), key))
            return s_entry (slot);
        index = index + 1 == self->capacity ? 0 : index + 1;
    }
    return NULL;
}

void
gt_table_prefetch (gt_table_t *self, uint64_t hash)
{
    assert (self);
    if (self->capacity)
        __builtin_prefetch (&self->slots [s_home (hash, self->capacity)]);
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

void
gt_table_insert (gt_table_t *self, uint64_t hash, void *entry)
{
    assert (self);
    assert (entry);
    assert (((uintptr_t) entry & ~(uintptr_t) S_POINTER_MASK) == 0);
    if ((self->size + 1) * 4 > self->capacity * 3) {
        size_t capacity = self->capacity * 3 / 2;
        s_resize (self, capacity < S_MIN_CAPACITY ? S_MIN_CAPACITY : capacity);
    }
    s_place (self->slots, self->capacity, hash, s_tag (hash) | (uint64_t) (uintptr_t) entry);
    self->size++;
}

bool
gt_table_remove (gt_table_t *self, uint64_t hash, const void *entry)
{
    assert (self);
    if (self->size == 0)
        return false;
    size_t hole = s_home (hash, self->capacity);
    while (s_entry (self->slots [hole]) != entry) {
        if (!self->slots [hole])
            return false;
        hole = hole + 1 == self->capacity ? 0 : hole + 1;
    }
    //  Backward-shift: pull later entries of the cluster into the hole
    //  when the hole lies cyclically between their home and their slot.
    size_t next = hole;
    while (true) {
        next = next + 1 == self->capacity ? 0 : next + 1;
        uint64_t candidate = self->slots [next];
        if (!candidate)
            break;
        size_t home = s_home (self->hash_fn (s_entry (candidate), self->ctx), self->capacity);
        bool movable = hole <= next
                     ? (home <= hole || home > next)
                     : (home <= hole && home > next);
        if (movable) {
            self->slots [hole] = candidate;
            hole = next;
        }
    }
    self->slots [hole] = 0;
    self->size--;
    if (self->capacity > 1024 && self->size * 8 < self->capacity)
        s_resize (self, self->capacity / 2);
    return true;
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
    for (size_t index = 0; index < self->capacity; index++)
        if (self->slots [index])
            fn (s_entry (self->slots [index]), arg);
}

//  --------------------------------------------------------------------------
//  SipHash-2-4 (Aumasson & Bernstein), written from the paper's description.

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
        S_SIPROUND;
        v0 ^= m;
    }
    uint64_t b = ((uint64_t) size) << 56;
    for (size_t i = 0; i < tail; i++)
        b |= ((uint64_t) in [i]) << (8 * i);
    v3 ^= b;
    S_SIPROUND;
    S_SIPROUND;
    v0 ^= b;
    v2 ^= 0xff;
    S_SIPROUND;
    S_SIPROUND;
    S_SIPROUND;
    S_SIPROUND;
    return v0 ^ v1 ^ v2 ^ v3;
}

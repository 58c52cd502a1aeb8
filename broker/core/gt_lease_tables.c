/*  gt_lease_tables.c — the lease engine's records and indexes; the contract
    is in gt_lease_tables.h.

    Indexes:
      ids        gt_table of leases by their 128-bit id, holding each
                 lease record's index (gt_records), 4 bytes a slot; the
                 hash is the id's bytes 1 .. 8 (random; byte 0 is the shard)
      objects    gt_table of object records by object id
      services   array of interned service ids (a lease keeps a 24-bit
                 index), with a gt_table of index + 1 by name and a list
                 of free slots
      keys       gt_table of the leases that have an idempotency key, by
                 (service index, key)
      order      array of leases in creation order (for LIST), each by its
                 32-bit index among the lease records (gt_records); a
                 removed lease leaves a "hole" that remembers its serial
                 (in hole_serials), so the array stays sorted by serial and
                 a cursor resumes with a binary search; holes are squeezed
                 out when they are many
      exts       gt_table of the extensions of leases and objects, by the
                 address of the record they extend (their first field);
                 a record's has_ext bit says whether to look
    Object ids, service ids and idempotency keys are hashed with SipHash
    under hash_key, drawn at _new: a client cannot aim them at one slot.

    Journal entries (s_entry_t) say what happened and hold the before-image;
    commit frees what the change left for undo, undo puts it back.  */
#include <czmq.h>
#include <sys/random.h>
#include "gt_table.h"
#include "gt_journal.h"
#include "gt_slabs.h"
#include "gt_records.h"
#include "gt_lease_tables.h"

_Static_assert (sizeof (struct gt_lease_t) == 88, "a lease record must stay 88 bytes");
_Static_assert (sizeof (struct gt_lease_object_t) == 14, "an object record's header must stay 14 bytes");
_Static_assert (offsetof (gt_lease_ext_t, lease) == 0 && offsetof (gt_lease_object_ext_t, object) == 0,
                "an extension starts with the address of its record");

//  The part of a lease a before-image keeps (everything after the timer)
#define S_LEASE_IMAGE_OFFSET    offsetof (struct gt_lease_t, id)
#define S_LEASE_IMAGE_SIZE      (sizeof (struct gt_lease_t) - S_LEASE_IMAGE_OFFSET)

//  What a lease keeps of a created_at (its 48-bit field)
#define S_CREATED_MASK      ((UINT64_C (1) << 48) - 1)

//  An order entry is a lease record's index, or a hole: S_HOLE_BIT and the
//  hole's number, its serial's place in hole_serials
#define S_HOLE_BIT          UINT32_C (0x80000000)
#define S_IS_HOLE(entry)    ((entry) & S_HOLE_BIT)
_Static_assert (GT_LEASE_MAX <= GT_TABLE_INDEX_MAX, "every lease record's index fits the id table");
_Static_assert (GT_RECORDS_MAX <= S_HOLE_BIT, "a lease record's index never looks like a hole");

typedef struct {
    char *name;                     //  service id; NULL = free slot
    uint32_t active;                //  ACTIVE leases (quota)
    uint32_t refs;                  //  leases of any state
} s_service_t;

typedef enum {
    J_LEASE_NEW,                    //  lease created: undo unlinks and frees it
    J_LEASE_OLD,                    //  lease before-image: undo restores it
    J_LEASE_GONE,                   //  lease removed: undo relinks; commit frees
    J_OBJECT_NEW,                   //  object record created: undo frees it
    J_OBJECT_OLD,                   //  object before-image
    J_OBJECT_GONE,                  //  object record forgotten: undo relinks; commit frees
    J_SERVICE_NEW,                  //  service interned: undo frees it
    J_SERVICE_COUNTS,               //  service counts changed: undo takes the change back
    J_SERVICE_GONE,                 //  service forgotten: undo relinks; commit frees
    J_CLEANUP_NEW,                  //  cleanup added to a life: undo frees the node
    J_CLEANUPS_DROPPED,             //  a life's cleanups dropped: commit frees them
    J_PENDING_NEW,                  //  reclaim pending: undo cancels and frees it
    J_PENDING_GONE,                 //  pending reclaim fired/cancelled: undo re-arms; commit frees
    J_CLEANUP_OLD                   //  lease's callback state before-image: undo restores; commit frees the old error
} s_entry_type_t;

typedef struct {
    s_entry_type_t type;            //  what happened
    void *ptr;                      //  the lease, object, node or pending reclaim
    bool armed;                     //  J_LEASE_OLD: timer was armed
    uint64_t deadline;              //  timer deadline before the change
    union {
        uint8_t lease_image [S_LEASE_IMAGE_SIZE];   //  J_LEASE_OLD: the lease's fields
        struct {
            uint32_t refs, active;  //  object counts
            uint64_t fence;         //  object fence
            gt_lease_cleanup_node_t *cleanups;  //  object's cleanup list head
            gt_lease_pending_t *pending;        //  object's pending reclaim
        } object;                   //  J_OBJECT_OLD
        struct {
            uint32_t index;         //  service slot
            int32_t active, refs;   //  J_SERVICE_COUNTS: how its counts changed
        } service;                  //  J_SERVICE_*
        struct {
            uint8_t status;         //  gt_cleanup_status_t
            uint32_t attempts;      //  attempts
            char *error;            //  owned by the entry
        } cleanup;                  //  J_CLEANUP_OLD
    } u;
} s_entry_t;

struct gt_lease_tables_t {
    gt_wheel_t *lease_wheel;        //  where lease timers are armed (borrowed)
    gt_wheel_t *object_wheel;       //  where pending reclaim timers are armed (borrowed)
    uint8_t hash_key [16];          //  SipHash key for client-chosen strings
    gt_table_t *ids;                //  leases by id
    gt_table_t *objects;            //  objects by id
    gt_table_t *keys;               //  leases by (service, idempotency key)
    gt_table_t *exts;               //  lease and object extensions by their record's address
    uint32_t *order;                //  leases' record indexes (or holes) by creation serial
    size_t order_count;             //  entries used, holes included
    size_t order_cap;               //  entries allocated
    size_t order_holes;             //  holes among them
    uint64_t *hole_serials;         //  a hole's serial, by its number
    size_t hole_count;              //  numbers given (some no longer in the order)
    size_t hole_cap;                //  entries allocated
    uint64_t next_serial;           //  serial of the next lease
    uint64_t fence_floor;           //  first fence of an object id we do not know
    s_service_t *services;          //  interned service ids
    size_t service_count;           //  slots used (free ones included)
    size_t service_cap;             //  slots allocated
    uint32_t *service_free;         //  free slot indexes
    size_t service_free_count;      //  how many
    gt_table_t *service_index;      //  service index + 1 by name
    uint32_t service_found;         //  index + 1 of the service found last, while in the index; 0: none
    uint8_t random [4096];          //  CSPRNG bytes not yet used
    size_t random_used;             //  bytes used from random
    gt_records_t *leases;           //  where lease records live (each known by its index: the order's entries)
    gt_slabs_t *slabs;              //  where object records live (no malloc header each)
    gt_journal_t *journal;          //  undo entries (s_entry_t)
    bool journaling;                //  record before-images, defer frees
    uint32_t *sweep;                //  services a rollback left with no lease (see s_sweep)
    size_t sweep_count;             //  how many
    size_t sweep_cap;               //  allocated
};

//  --------------------------------------------------------------------------
//  Random bytes (lease ids, the hash key): read in blocks, never reused

static void
s_random_fill (gt_lease_tables_t *self)
{
    size_t filled = 0;
    while (filled < sizeof (self->random)) {
        ssize_t rc = getrandom (self->random + filled, sizeof (self->random) - filled, 0);
        if (rc < 0 && errno == EINTR)
            continue;
        assert (rc > 0);            //  no CSPRNG is an environment error
        filled += (size_t) rc;
    }
    self->random_used = 0;
}

static void
s_random_bytes (gt_lease_tables_t *self, uint8_t *out, size_t size)
{
    assert (size <= sizeof (self->random));
    if (self->random_used + size > sizeof (self->random))
        s_random_fill (self);
    memcpy (out, self->random + self->random_used, size);
    //  Never hand the same bytes out twice
    memset (self->random + self->random_used, 0, size);
    self->random_used += size;
}

//  --------------------------------------------------------------------------
//  Hashing: each gt_table needs the hash of a stored entry, and a match

//  A lease id's bytes 1 .. 8, all random (byte 0 is the shard, the same
//  for most leases of a broker): the id table keeps a hash's low bits in
//  its slots and finds the home slot from its high ones
static uint64_t
s_id_hash (const uint8_t *id)
{
    uint64_t hash;
    memcpy (&hash, id + 1, sizeof (hash));
    return hash;
}

static uint64_t
s_lease_hash (const void *entry, void *ctx)
{
    (void) ctx;
    return s_id_hash (((const gt_lease_t *) entry)->id);
}

static bool
s_lease_match (const void *entry, const void *key)
{
    return memcmp (((const gt_lease_t *) entry)->id, key, 16) == 0;
}

//  Extensions, by the address of the record they extend (their first
//  field): no client chooses an address, so a mix of its bits will do
static uint64_t
s_record_hash (const void *record)
{
    uint64_t hash = (uint64_t) (uintptr_t) record;
    hash ^= hash >> 33;
    hash *= UINT64_C (0xff51afd7ed558ccd);
    hash ^= hash >> 33;
    hash *= UINT64_C (0xc4ceb9fe1a85ec53);
    return hash ^ (hash >> 33);
}

static const void *
s_ext_record (const void *ext)
{
    const void *record;
    memcpy (&record, ext, sizeof (record));
    return record;
}

static uint64_t
s_ext_hash (const void *entry, void *ctx)
{
    (void) ctx;
    return s_record_hash (s_ext_record (entry));
}

static bool
s_ext_match (const void *entry, const void *key)
{
    return s_ext_record (entry) == key;
}

static void *
s_ext_find (gt_lease_tables_t *self, const void *record)
{
    void *ext = gt_table_lookup (self->exts, s_record_hash (record), s_ext_match, record);
    assert (ext);                   //  the record's has_ext said so
    return ext;
}

static void
s_ext_forget (gt_lease_tables_t *self, const void *ext)
{
    bool removed = gt_table_remove (self->exts, s_record_hash (s_ext_record (ext)), ext);
    assert (removed);
}

//  The hash of a client-chosen string of size bytes (NUL not needed)
static uint64_t
s_bytes_hash (gt_lease_tables_t *self, const char *text, size_t size)
{
    return gt_siphash (self->hash_key, text, size);
}

static uint64_t
s_string_hash (gt_lease_tables_t *self, const char *text)
{
    return s_bytes_hash (self, text, strlen (text));
}

static uint64_t
s_object_hash (const void *entry, void *ctx)
{
    return s_string_hash ((gt_lease_tables_t *) ctx, ((const gt_lease_object_t *) entry)->id);
}

static bool
s_object_match (const void *entry, const void *key)
{
    return streq (((const gt_lease_object_t *) entry)->id, (const char *) key);
}

//  Service index entries are index + 1 (never NULL); a lookup key carries
//  the array the names are in
typedef struct {
    const s_service_t *services;    //  the service array
    const char *name;               //  the name looked for
} s_service_lookup_t;

static uint64_t
s_service_hash (const void *entry, void *ctx)
{
    gt_lease_tables_t *self = (gt_lease_tables_t *) ctx;
    return s_string_hash (self, self->services [(uintptr_t) entry - 1].name);
}

static bool
s_service_match (const void *entry, const void *key)
{
    const s_service_lookup_t *wanted = (const s_service_lookup_t *) key;
    return streq (wanted->services [(uintptr_t) entry - 1].name, wanted->name);
}

//  Idempotency keys are per service: the service index is mixed into the
//  key's SipHash (an odd multiplier spreads small indexes)
typedef struct {
    gt_lease_tables_t *tables;      //  where the leases' extensions are
    uint32_t service;               //  service index
    const char *key;                //  idempotency key
} s_key_lookup_t;

static uint64_t
s_key_hash_of (gt_lease_tables_t *self, uint32_t service, const char *key)
{
    return s_string_hash (self, key) ^ ((uint64_t) service * 0x9e3779b97f4a7c15ull);
}

static uint64_t
s_key_hash (const void *entry, void *ctx)
{
    gt_lease_tables_t *self = (gt_lease_tables_t *) ctx;
    const gt_lease_t *lease = (const gt_lease_t *) entry;
    return s_key_hash_of (self, gt_lease_tables_service_of (lease),
                          gt_lease_tables_ext_lookup (self, lease)->idempotency_key);
}

static bool
s_key_match (const void *entry, const void *key)
{
    const gt_lease_t *lease = (const gt_lease_t *) entry;
    const s_key_lookup_t *wanted = (const s_key_lookup_t *) key;
    return gt_lease_tables_service_of (lease) == wanted->service
        && streq (gt_lease_tables_ext_lookup (wanted->tables, lease)->idempotency_key, wanted->key);
}

//  --------------------------------------------------------------------------
//  Freeing

static void
s_cleanup_list_free (gt_lease_cleanup_node_t *node)
{
    while (node) {
        gt_lease_cleanup_node_t *next = node->next;
        free (node);                //  its strings with it (s_cleanup_node_new)
        node = next;
    }
}

//  A lease's extension is one allocation (gt_lease_tables_lease_ext) but
//  for its cleanup error
static void
s_lease_ext_free (gt_lease_ext_t *ext)
{
    free (ext->cleanup_error);
    free (ext);
}

//  Lease records come from gt_records (no allocator header each: malloc
//  would take 96 bytes for each 88-byte lease; and an index of 4 bytes for
//  the order), object records from gt_slabs
static void
s_lease_free (gt_lease_tables_t *self, gt_lease_t *lease)
{
    if (lease->has_ext) {
        gt_lease_ext_t *ext = gt_lease_tables_ext_lookup (self, lease);
        s_ext_forget (self, ext);
        s_lease_ext_free (ext);
    }
    gt_records_free (self->leases, lease);
}

//  An object record's bytes: its header and its id
static size_t
s_object_size (size_t id_length)
{
    return sizeof (gt_lease_object_t) + id_length + 1;
}

static void
s_object_free (gt_lease_tables_t *self, gt_lease_object_t *object)
{
    if (object->has_ext) {
        gt_lease_object_ext_t *ext = gt_lease_tables_object_ext (self, object);
        assert (ext->cleanups == NULL);
        assert (ext->pending == NULL);
        s_ext_forget (self, ext);
        free (ext);
    }
    gt_slabs_free (self->slabs, object, s_object_size (strlen (object->id)));
}

static void
s_pending_free (gt_lease_pending_t *pending)
{
    gt_lease_info_clear (&pending->last);
    free (pending);
}

static void
s_service_free_slot (gt_lease_tables_t *self, uint32_t index)
{
    free (self->services [index].name);
    self->services [index].name = NULL;
    self->service_free [self->service_free_count++] = index;
}

//  True if the lease was created with an idempotency key (its extension,
//  which never changes, holds it)
static bool
s_has_key (const gt_lease_t *lease)
{
    return lease->has_key;
}

//  --------------------------------------------------------------------------
//  Creation order (LIST)

static gt_lease_t *
s_order_lease (gt_lease_tables_t *self, uint32_t entry)
{
    assert (!S_IS_HOLE (entry));
    return (gt_lease_t *) gt_records_at (self->leases, entry);
}

static uint64_t
s_order_serial (gt_lease_tables_t *self, uint32_t entry)
{
    return S_IS_HOLE (entry) ? self->hole_serials [entry & ~S_HOLE_BIT] : s_order_lease (self, entry)->serial;
}

//  A hole's entry, its serial kept
static uint32_t
s_hole_new (gt_lease_tables_t *self, uint64_t serial)
{
    if (self->hole_count == self->hole_cap) {
        self->hole_cap = self->hole_cap < 64 ? 64 : self->hole_cap + self->hole_cap / 2;
        self->hole_serials = (uint64_t *) realloc (self->hole_serials, self->hole_cap * sizeof (uint64_t));
        assert (self->hole_serials);
    }
    assert (self->hole_count < S_HOLE_BIT);     //  (bounded: see s_order_squeeze)
    self->hole_serials [self->hole_count] = serial;
    return S_HOLE_BIT | (uint32_t) self->hole_count++;
}

//  No hole left: the serials' array starts again, and gives back what a
//  time of many holes made it take
static void
s_holes_reset (gt_lease_tables_t *self)
{
    self->hole_count = 0;
    if (self->hole_cap > 1024) {
        free (self->hole_serials);
        self->hole_serials = NULL;
        self->hole_cap = 0;
    }
}

size_t
gt_lease_tables_order_seek (gt_lease_tables_t *self, uint64_t serial)
{
    assert (self);
    size_t low = 0, high = self->order_count;
    while (low < high) {
        size_t middle = low + (high - low) / 2;
        if (s_order_serial (self, self->order [middle]) < serial)
            low = middle + 1;
        else
            high = middle;
    }
    return low;
}

gt_lease_t *
gt_lease_tables_order_next (gt_lease_tables_t *self, size_t *index_p)
{
    assert (self);
    size_t index = *index_p;
    while (index < self->order_count && S_IS_HOLE (self->order [index]))
        index++;
    if (index == self->order_count) {
        *index_p = index;
        return NULL;
    }
    *index_p = index + 1;
    return s_order_lease (self, self->order [index]);
}

uint64_t
gt_lease_tables_next_serial (gt_lease_tables_t *self)
{
    assert (self);
    return self->next_serial;
}

static void
s_order_grow (gt_lease_tables_t *self)
{
    if (self->order_count < self->order_cap)
        return;
    size_t cap = self->order_cap < 64 ? 64 : self->order_cap + self->order_cap / 2;
    self->order = (uint32_t *) realloc (self->order, cap * sizeof (uint32_t));
    assert (self->order);
    self->order_cap = cap;
}

static void
s_order_insert (gt_lease_tables_t *self, gt_lease_t *lease)
{
    uint32_t entry = gt_records_index (self->leases, lease);
    //  The common case: a new lease, newest of all
    if (self->order_count == 0
    || s_order_serial (self, self->order [self->order_count - 1]) < lease->serial) {
        s_order_grow (self);
        self->order [self->order_count++] = entry;
        return;
    }
    size_t index = gt_lease_tables_order_seek (self, lease->serial);
    if (index < self->order_count && S_IS_HOLE (self->order [index])
    &&  s_order_serial (self, self->order [index]) == lease->serial) {
        self->order [index] = entry;            //  fill its own hole
        self->order_holes--;
        return;
    }
    s_order_grow (self);
    memmove (self->order + index + 1, self->order + index,
             (self->order_count - index) * sizeof (uint32_t));
    self->order [index] = entry;
    self->order_count++;
}

//  Trailing holes go at once; others when they are half the array.  The
//  holes' serials go when the last hole does, or are renumbered when most
//  of them belong to holes no longer in the array (trimmed from the newest
//  end out of turn, or taken by a settle), so that they stay fewer than
//  twice the holes, plus 1024
static void
s_order_squeeze (gt_lease_tables_t *self)
{
    while (self->order_count && S_IS_HOLE (self->order [self->order_count - 1])) {
        //  (the newest hole's serial goes with it: removals at the newest
        //  end renumber nothing)
        if ((self->order [self->order_count - 1] & ~S_HOLE_BIT) == self->hole_count - 1)
            self->hole_count--;
        self->order_count--;
        self->order_holes--;
    }
    if (self->order_holes > 64 && self->order_holes * 2 > self->order_count) {
        size_t kept = 0;
        for (size_t i = 0; i < self->order_count; i++)
            if (!S_IS_HOLE (self->order [i]))
                self->order [kept++] = self->order [i];
        self->order_count = kept;
        self->order_holes = 0;
        if (self->order_cap > 1024 && kept * 4 < self->order_cap) {
            self->order_cap = kept * 2;
            self->order = (uint32_t *) realloc (self->order, self->order_cap * sizeof (uint32_t));
            assert (self->order);
        }
    }
    if (self->order_holes == 0)
        s_holes_reset (self);
    else
    if (self->hole_count > 2 * self->order_holes + 1024) {
        size_t cap = self->order_holes * 2 + 64;
        uint64_t *serials = (uint64_t *) malloc (cap * sizeof (uint64_t));
        assert (serials);
        size_t number = 0;
        for (size_t i = 0; i < self->order_count; i++)
            if (S_IS_HOLE (self->order [i])) {
                serials [number] = s_order_serial (self, self->order [i]);
                self->order [i] = S_HOLE_BIT | (uint32_t) number++;
            }
        assert (number == self->order_holes);
        free (self->hole_serials);
        self->hole_serials = serials;
        self->hole_cap = cap;
        self->hole_count = number;
    }
}

static void
s_order_remove (gt_lease_tables_t *self, gt_lease_t *lease)
{
    size_t index = gt_lease_tables_order_seek (self, lease->serial);
    assert (index < self->order_count && self->order [index] == gt_records_index (self->leases, lease));
    self->order [index] = s_hole_new (self, lease->serial);
    self->order_holes++;
    s_order_squeeze (self);
}

size_t
gt_lease_tables_order_mark (gt_lease_tables_t *self)
{
    assert (self);
    return self->order_count;
}

//  One order entry while settling: the lease and its sort key
typedef struct {
    uint64_t created_at;            //  wall ms (48 bits)
    gt_lease_t *lease;              //  the lease
} s_settle_t;

bool
gt_lease_tables_order_settle (gt_lease_tables_t *self, size_t from)
{
    assert (self);
    assert (from <= self->order_count);
    assert (!self->journaling);     //  serials change: no undo entry may hold one
    //  The common case costs one pass: the store's physical order is
    //  mostly insertion order already
    bool sorted = true;
    uint64_t previous = 0;
    size_t leases = 0, keyed = 0;
    for (size_t index = from; index < self->order_count; index++) {
        if (S_IS_HOLE (self->order [index]))
            continue;
        const gt_lease_t *lease = s_order_lease (self, self->order [index]);
        sorted = sorted && lease->created_at >= previous;
        previous = lease->created_at;
        leases++;
        keyed += s_has_key (lease);
    }
    if (sorted)
        return false;
    //  Stable LSD radix sort on the 48-bit created_at, 16 bits a pass:
    //  ties keep the order they came in
    s_settle_t *items = (s_settle_t *) malloc (2 * leases * sizeof (s_settle_t));
    size_t *counts = (size_t *) malloc (65536 * sizeof (size_t));
    assert (items && counts);
    s_settle_t *spare = items + leases;
    size_t count = 0;
    for (size_t index = from; index < self->order_count; index++)
        if (!S_IS_HOLE (self->order [index])) {
            gt_lease_t *lease = s_order_lease (self, self->order [index]);
            items [count++] = (s_settle_t) { lease->created_at, lease };
        }
    for (unsigned shift = 0; shift < 48; shift += 16) {
        memset (counts, 0, 65536 * sizeof (size_t));
        for (size_t i = 0; i < count; i++)
            counts [(items [i].created_at >> shift) & 0xffff]++;
        size_t at = 0;
        for (size_t digit = 0; digit < 65536; digit++) {
            size_t here = counts [digit];
            counts [digit] = at;
            at += here;
        }
        for (size_t i = 0; i < count; i++)
            spare [counts [(items [i].created_at >> shift) & 0xffff]++] = items [i];
        s_settle_t *swap = items;
        items = spare;
        spare = swap;
    }
    //  Three passes: the sorted run is in the upper half; serials are
    //  renumbered from the first of the range, holes (none in a load)
    //  squeezed out
    uint64_t serial = s_order_serial (self, self->order [from]);
    for (size_t i = 0; i < count; i++) {
        items [i].lease->serial = serial + i;
        self->order [from + i] = gt_records_index (self->leases, items [i].lease);
    }
    self->order_holes -= (self->order_count - from) - count;
    self->order_count = from + count;
    if (self->order_holes == 0)
        s_holes_reset (self);
    free (items < spare ? items : spare);
    free (counts);
    //  Two leases with one idempotency key (cluster mode, after a shard
    //  moved): a lookup finds the one linked first, which was the older
    //  when leases came sorted.  Linking each again, oldest first, puts
    //  them back in that order along their probe chain.
    for (size_t index = from; keyed && index < self->order_count; index++) {
        gt_lease_t *lease = s_order_lease (self, self->order [index]);
        if (s_has_key (lease)) {
            uint64_t hash = s_key_hash (lease, self);
            bool removed = gt_table_remove (self->keys, hash, lease);
            assert (removed);
            gt_table_insert (self->keys, hash, lease);
            keyed--;
        }
    }
    return true;
}

//  --------------------------------------------------------------------------
//  Linking: a record into its indexes and out again

//  Put a lease into the id table, the order, and the key table.
static void
s_lease_link (gt_lease_tables_t *self, gt_lease_t *lease)
{
    gt_table_insert (self->ids, s_id_hash (lease->id), lease);
    s_order_insert (self, lease);
    if (s_has_key (lease))
        gt_table_insert (self->keys, s_key_hash (lease, self), lease);
}

static void
s_lease_unlink (gt_lease_tables_t *self, gt_lease_t *lease)
{
    bool removed = gt_table_remove (self->ids, s_id_hash (lease->id), lease);
    assert (removed);
    s_order_remove (self, lease);
    if (s_has_key (lease))
        gt_table_remove (self->keys, s_key_hash (lease, self), lease);
    gt_wheel_cancel (self->lease_wheel, &lease->timer);
}

static void
s_service_index_insert (gt_lease_tables_t *self, uint32_t index)
{
    gt_table_insert (self->service_index, s_string_hash (self, self->services [index].name),
                     (void *) (uintptr_t) (index + 1));
}

static void
s_service_index_remove (gt_lease_tables_t *self, uint32_t index)
{
    if (self->service_found == index + 1)
        self->service_found = 0;
    bool removed = gt_table_remove (self->service_index, s_string_hash (self, self->services [index].name),
                                    (void *) (uintptr_t) (index + 1));
    assert (removed);
}

//  --------------------------------------------------------------------------
//  Lifecycle

gt_lease_tables_t *
gt_lease_tables_new (gt_wheel_t *lease_wheel, gt_wheel_t *object_wheel)
{
    assert (lease_wheel && object_wheel);
    gt_lease_tables_t *self = (gt_lease_tables_t *) zmalloc (sizeof (gt_lease_tables_t));
    assert (self);
    self->lease_wheel = lease_wheel;
    self->object_wheel = object_wheel;
    s_random_fill (self);
    s_random_bytes (self, self->hash_key, sizeof (self->hash_key));
    self->leases = gt_records_new (sizeof (gt_lease_t));
    self->ids = gt_table_new_indexed (s_lease_hash, self, self->leases);
    self->objects = gt_table_new (s_object_hash, self);
    self->keys = gt_table_new (s_key_hash, self);
    self->exts = gt_table_new (s_ext_hash, self);
    self->service_index = gt_table_new (s_service_hash, self);
    self->next_serial = 1;
    self->fence_floor = 1;
    self->journal = gt_journal_new (sizeof (s_entry_t));
    self->slabs = gt_slabs_new ();
    return self;
}

static void
s_free_object_entry (void *entry, void *arg)
{
    gt_lease_tables_t *self = (gt_lease_tables_t *) arg;
    gt_lease_object_t *object = (gt_lease_object_t *) entry;
    gt_lease_object_ext_t *ext = gt_lease_tables_object_ext (self, object);
    if (ext) {
        s_cleanup_list_free (ext->cleanups);
        ext->cleanups = NULL;
        if (ext->pending) {
            s_pending_free (ext->pending);
            ext->pending = NULL;
        }
    }
    s_object_free (self, object);
}

void
gt_lease_tables_reserve (gt_lease_tables_t *self, size_t leases)
{
    assert (self);
    gt_table_reserve (self->ids, leases);
    gt_table_reserve (self->objects, leases);
}

void
gt_lease_tables_prefetch (gt_lease_tables_t *self, const uint8_t id [16],
                          const char *object_id, size_t object_id_len)
{
    assert (self);
    gt_table_prefetch (self->ids, s_id_hash (id));
    gt_table_prefetch (self->objects, s_bytes_hash (self, object_id, object_id_len));
}

void
gt_lease_tables_destroy (gt_lease_tables_t **self_p)
{
    assert (self_p);
    gt_lease_tables_t *self = *self_p;
    if (!self)
        return;
    gt_lease_tables_journal (self, false);  //  frees what was deferred
    for (size_t i = 0; i < self->order_count; i++)
        if (!S_IS_HOLE (self->order [i]))
            s_lease_free (self, s_order_lease (self, self->order [i]));
    free (self->order);
    free (self->hole_serials);
    gt_table_foreach (self->objects, s_free_object_entry, self);
    gt_table_destroy (&self->objects);
    gt_slabs_destroy (&self->slabs);
    gt_table_destroy (&self->ids);
    gt_records_destroy (&self->leases);
    gt_table_destroy (&self->keys);
    assert (gt_table_size (self->exts) == 0);       //  each went with its record
    gt_table_destroy (&self->exts);
    gt_table_destroy (&self->service_index);
    for (size_t i = 0; i < self->service_count; i++)
        free (self->services [i].name);
    free (self->services);
    free (self->service_free);
    free (self->sweep);
    gt_journal_destroy (&self->journal);
    free (self);
    *self_p = NULL;
}

//  --------------------------------------------------------------------------
//  Journal

static s_entry_t *
s_push (gt_lease_tables_t *self, s_entry_type_t type, void *ptr)
{
    s_entry_t *entry = (s_entry_t *) gt_journal_push (self->journal);
    entry->type = type;
    entry->ptr = ptr;
    return entry;
}

//  A service has no lease left: it leaves the index at once, its slot is
//  freed now or, while undo may still need it, when the journal commits
//  that.  deferred: keep the slot while the journal holds entries.
static void
s_service_drop (gt_lease_tables_t *self, uint32_t index, bool deferred)
{
    assert (self->services [index].refs == 0 && self->services [index].active == 0);
    s_service_index_remove (self, index);
    if (deferred)
        s_push (self, J_SERVICE_GONE, NULL)->u.service.index = index;
    else
        s_service_free_slot (self, index);
}

//  True while the journal holds entries: undo may still name any service
//  slot in use, so a service dropped outside a change keeps its slot
static bool
s_journal_holds (gt_lease_tables_t *self)
{
    return self->journaling && gt_journal_size (self->journal) > 0;
}

//  A rollback may leave a service with no lease although none of the
//  undone entries forgot it: after gt_lease_tables_forget_shards took its
//  other leases (then the service had outlived them only through the
//  changes undone now).  Undo notes the services it leaves at no lease;
//  after it, those still indexed go as they would with their last lease.
static void
s_sweep_add (gt_lease_tables_t *self, uint32_t index)
{
    if (self->sweep_count == self->sweep_cap) {
        self->sweep_cap = self->sweep_cap ? self->sweep_cap * 2 : 16;
        self->sweep = (uint32_t *) realloc (self->sweep, self->sweep_cap * sizeof (uint32_t));
        assert (self->sweep);
    }
    self->sweep [self->sweep_count++] = index;
}

static void
s_sweep (gt_lease_tables_t *self)
{
    for (size_t i = 0; i < self->sweep_count; i++) {
        uint32_t index = self->sweep [i], found;
        const char *name = self->services [index].name;
        if (name && self->services [index].refs == 0
        &&  gt_lease_tables_service_find (self, name, &found) && found == index)
            s_service_drop (self, index, s_journal_holds (self));
    }
    self->sweep_count = 0;
}

static void
s_commit_entry (gt_lease_tables_t *self, s_entry_t *entry)
{
    switch (entry->type) {
        case J_LEASE_GONE:
            s_lease_free (self, (gt_lease_t *) entry->ptr);
            break;
        case J_OBJECT_GONE:
            s_object_free (self, (gt_lease_object_t *) entry->ptr);
            break;
        case J_SERVICE_GONE:
            s_service_free_slot (self, entry->u.service.index);
            break;
        case J_CLEANUPS_DROPPED:
            s_cleanup_list_free ((gt_lease_cleanup_node_t *) entry->ptr);
            break;
        case J_PENDING_GONE:
            s_pending_free ((gt_lease_pending_t *) entry->ptr);
            break;
        case J_CLEANUP_OLD:
            free (entry->u.cleanup.error);
            entry->u.cleanup.error = NULL;
            break;
        default:
            break;                  //  nothing was deferred
    }
}

static void
s_undo_entry (gt_lease_tables_t *self, s_entry_t *entry)
{
    switch (entry->type) {
        case J_LEASE_NEW: {
            gt_lease_t *lease = (gt_lease_t *) entry->ptr;
            s_lease_unlink (self, lease);
            s_lease_free (self, lease);
            break;
        }
        case J_LEASE_OLD: {
            gt_lease_t *lease = (gt_lease_t *) entry->ptr;
            gt_wheel_cancel (self->lease_wheel, &lease->timer);
            memcpy ((uint8_t *) lease + S_LEASE_IMAGE_OFFSET, entry->u.lease_image, S_LEASE_IMAGE_SIZE);
            if (entry->armed)
                gt_wheel_arm (self->lease_wheel, &lease->timer, entry->deadline);
            break;
        }
        case J_LEASE_GONE: {
            gt_lease_t *lease = (gt_lease_t *) entry->ptr;
            s_lease_link (self, lease);
            gt_wheel_arm (self->lease_wheel, &lease->timer, entry->deadline);
            break;
        }
        case J_OBJECT_NEW: {
            gt_lease_object_t *object = (gt_lease_object_t *) entry->ptr;
            gt_table_remove (self->objects, s_string_hash (self, object->id), object);
            s_object_free (self, object);
            break;
        }
        case J_OBJECT_OLD: {
            gt_lease_object_t *object = (gt_lease_object_t *) entry->ptr;
            object->refs = entry->u.object.refs;
            object->active = entry->u.object.active;
            object->fence = entry->u.object.fence;
            gt_lease_object_ext_t *ext = gt_lease_tables_object_ext (self, object);
            if (ext) {
                ext->cleanups = entry->u.object.cleanups;
                ext->pending = entry->u.object.pending;
            }
            else
                assert (!entry->u.object.cleanups && !entry->u.object.pending);
            break;
        }
        case J_OBJECT_GONE: {
            gt_lease_object_t *object = (gt_lease_object_t *) entry->ptr;
            gt_table_insert (self->objects, s_string_hash (self, object->id), object);
            break;
        }
        case J_SERVICE_NEW: {
            uint32_t index = entry->u.service.index;
            s_service_index_remove (self, index);
            s_service_free_slot (self, index);
            break;
        }
        case J_SERVICE_COUNTS: {
            //  A change, not a before-image: leases forgotten since
            //  (gt_lease_tables_forget_shards) stay out of the counts
            s_service_t *service = &self->services [entry->u.service.index];
            service->active -= (uint32_t) entry->u.service.active;
            service->refs -= (uint32_t) entry->u.service.refs;
            if (service->refs == 0)
                s_sweep_add (self, entry->u.service.index);
            break;
        }
        case J_SERVICE_GONE:
            s_service_index_insert (self, entry->u.service.index);
            s_sweep_add (self, entry->u.service.index);
            break;
        case J_CLEANUP_NEW: {
            gt_lease_cleanup_node_t *node = (gt_lease_cleanup_node_t *) entry->ptr;
            node->next = NULL;
            s_cleanup_list_free (node);
            break;
        }
        case J_CLEANUPS_DROPPED:
            break;                  //  the object's before-image restores the list
        case J_PENDING_NEW: {
            gt_lease_pending_t *pending = (gt_lease_pending_t *) entry->ptr;
            gt_wheel_cancel (self->object_wheel, &pending->timer);
            s_pending_free (pending);
            break;
        }
        case J_PENDING_GONE: {
            gt_lease_pending_t *pending = (gt_lease_pending_t *) entry->ptr;
            gt_wheel_arm (self->object_wheel, &pending->timer, entry->deadline);
            break;
        }
        case J_CLEANUP_OLD: {
            gt_lease_ext_t *ext = gt_lease_tables_ext_lookup (self, (gt_lease_t *) entry->ptr);
            free (ext->cleanup_error);
            ext->cleanup_status = entry->u.cleanup.status;
            ext->cleanup_attempts = entry->u.cleanup.attempts;
            ext->cleanup_error = entry->u.cleanup.error;
            entry->u.cleanup.error = NULL;
            break;
        }
    }
}

void
gt_lease_tables_journal (gt_lease_tables_t *self, bool enabled)
{
    assert (self);
    if (!enabled)
        gt_lease_tables_commit (self, gt_lease_tables_position (self));
    self->journaling = enabled;
}

bool
gt_lease_tables_journaling (gt_lease_tables_t *self)
{
    assert (self);
    return self->journaling;
}

size_t
gt_lease_tables_position (gt_lease_tables_t *self)
{
    assert (self);
    return gt_journal_position (self->journal);
}

void
gt_lease_tables_commit (gt_lease_tables_t *self, size_t position)
{
    assert (self);
    s_entry_t *entry;
    while ((entry = (s_entry_t *) gt_journal_commit_next (self->journal, position)))
        s_commit_entry (self, entry);
}

void
gt_lease_tables_rollback (gt_lease_tables_t *self, size_t position)
{
    assert (self);
    s_entry_t *entry;
    while ((entry = (s_entry_t *) gt_journal_undo_next (self->journal, position)))
        s_undo_entry (self, entry);
    s_sweep (self);
}

//  --------------------------------------------------------------------------
//  Leases

size_t
gt_lease_tables_lease_count (gt_lease_tables_t *self)
{
    assert (self);
    return gt_records_out (self->leases);
}

gt_lease_t *
gt_lease_tables_lease_alloc (gt_lease_tables_t *self)
{
    assert (self);
    assert (gt_records_out (self->leases) < GT_LEASE_MAX);
    gt_lease_t *lease = (gt_lease_t *) gt_records_alloc (self->leases);
    memset (lease, 0, sizeof (gt_lease_t));
    gt_timer_init (&lease->timer);
    return lease;
}

//  Copy a string to *next, inside an extension's allocation; returns the
//  copy (stpcpy: one pass, its length was taken when the block was sized)
static char *
s_ext_string (char **next, const char *string)
{
    char *copy = *next;
    *next = stpcpy (copy, string) + 1;
    return copy;
}

gt_lease_ext_t *
gt_lease_tables_lease_ext (gt_lease_tables_t *self, gt_lease_t *lease, const gt_meta_t *metadata,
                           const gt_cleanup_t *cleanup, const char *idempotency_key)
{
    assert (self);
    assert (!lease->has_ext);
    bool has_meta = metadata && metadata->count > 0;
    if (!has_meta && !cleanup && !idempotency_key)
        return NULL;
    //  One allocation: the record, then the metadata entries, the cleanup,
    //  and the strings they point to (none of which changes after this;
    //  cleanup_error, which does, has its own)
    size_t entries = has_meta ? metadata->count : 0;
    size_t size = sizeof (gt_lease_ext_t) + entries * sizeof (gt_meta_entry_t)
                + (cleanup ? sizeof (gt_cleanup_t) : 0);
    size_t strings = 0;
    for (size_t i = 0; i < entries; i++)
        strings += strlen (metadata->entries [i].key) + strlen (metadata->entries [i].value) + 2;
    if (cleanup)
        strings += strlen (cleanup->url) + 1 + (cleanup->payload ? strlen (cleanup->payload) + 1 : 0);
    if (idempotency_key)
        strings += strlen (idempotency_key) + 1;
    gt_lease_ext_t *ext = (gt_lease_ext_t *) malloc (size + strings);
    assert (ext);
    memset (ext, 0, sizeof (gt_lease_ext_t));
    ext->lease = lease;
    char *next = (char *) ext + size;
    if (has_meta) {
        ext->metadata.entries = (gt_meta_entry_t *) (ext + 1);
        for (size_t i = 0; i < entries; i++) {
            ext->metadata.entries [i].key = s_ext_string (&next, metadata->entries [i].key);
            ext->metadata.entries [i].value = s_ext_string (&next, metadata->entries [i].value);
        }
        ext->metadata.count = entries;
    }
    if (cleanup) {
        ext->cleanup = (gt_cleanup_t *) ((gt_meta_entry_t *) (ext + 1) + entries);
        *ext->cleanup = *cleanup;
        ext->cleanup->url = s_ext_string (&next, cleanup->url);
        ext->cleanup->payload = cleanup->payload ? s_ext_string (&next, cleanup->payload) : NULL;
    }
    if (idempotency_key)
        ext->idempotency_key = s_ext_string (&next, idempotency_key);
    assert (next == (char *) ext + size + strings);
    lease->has_ext = 1;
    lease->has_key = idempotency_key != NULL;
    gt_table_insert (self->exts, s_record_hash (lease), ext);
    return ext;
}

gt_lease_ext_t *
gt_lease_tables_ext_lookup (gt_lease_tables_t *self, const gt_lease_t *lease)
{
    assert (self);
    return lease->has_ext ? (gt_lease_ext_t *) s_ext_find (self, lease) : NULL;
}

void
gt_lease_tables_lease_add (gt_lease_tables_t *self, gt_lease_t *lease)
{
    assert (self);
    lease->serial = self->next_serial++;
    s_lease_link (self, lease);
    if (self->journaling)
        s_push (self, J_LEASE_NEW, lease);
}

void
gt_lease_tables_lease_remove (gt_lease_tables_t *self, gt_lease_t *lease)
{
    assert (self);
    uint64_t deadline = gt_timer_deadline (&lease->timer);
    s_lease_unlink (self, lease);
    if (self->journaling)
        s_push (self, J_LEASE_GONE, lease)->deadline = deadline;
    else
        s_lease_free (self, lease);
}

void
gt_lease_tables_lease_touch (gt_lease_tables_t *self, gt_lease_t *lease, bool fired)
{
    if (!self->journaling)
        return;
    s_entry_t *entry = s_push (self, J_LEASE_OLD, lease);
    memcpy (entry->u.lease_image, (uint8_t *) lease + S_LEASE_IMAGE_OFFSET, S_LEASE_IMAGE_SIZE);
    entry->armed = fired || gt_timer_armed (&lease->timer);
    entry->deadline = gt_timer_deadline (&lease->timer);
}

void
gt_lease_tables_cleanup_touch (gt_lease_tables_t *self, gt_lease_t *lease)
{
    if (!self->journaling)
        return;
    gt_lease_ext_t *ext = gt_lease_tables_ext_lookup (self, lease);
    s_entry_t *entry = s_push (self, J_CLEANUP_OLD, lease);
    entry->u.cleanup.status = ext->cleanup_status;
    entry->u.cleanup.attempts = ext->cleanup_attempts;
    entry->u.cleanup.error = ext->cleanup_error;        //  the entry owns it now
    ext->cleanup_error = NULL;
}

gt_lease_t *
gt_lease_tables_lease_find (gt_lease_tables_t *self, const uint8_t id [16])
{
    return (gt_lease_t *) gt_table_lookup (self->ids, s_id_hash (id), s_lease_match, id);
}

void
gt_lease_tables_new_id (gt_lease_tables_t *self, unsigned shard, uint8_t id [16])
{
    assert (shard < GT_SHARD_COUNT);
    do {
        s_random_bytes (self, id, 16);
        id [0] = (uint8_t) shard;       //  120 random bits remain
    }
    while (gt_lease_tables_lease_find (self, id));
}

gt_lease_t *
gt_lease_tables_key_find (gt_lease_tables_t *self, uint32_t service, const char *key)
{
    s_key_lookup_t wanted = { self, service, key };
    return (gt_lease_t *) gt_table_lookup (self->keys, s_key_hash_of (self, service, key),
                                           s_key_match, &wanted);
}

uint32_t
gt_lease_tables_service_of (const gt_lease_t *lease)
{
    return (uint32_t) lease->service_hi << 16 | (uint32_t) lease->service_lo;
}

void
gt_lease_tables_set_service (gt_lease_t *lease, uint32_t index)
{
    lease->service_hi = (index >> 16) & 0xff;
    lease->service_lo = index & 0xffff;
}

uint64_t
gt_lease_tables_expires_at (const gt_lease_t *lease)
{
    if (lease->state == GT_STATE_ACTIVE)
        return (uint64_t) lease->renewed_at + lease->ttl_ms;
    return (uint64_t) lease->renewed_at + ((uint64_t) lease->end_hi << 16 | lease->end_lo);
}

void
gt_lease_tables_set_ended_at (gt_lease_t *lease, uint64_t ended_at)
{
    uint64_t delta = ended_at > lease->renewed_at ? ended_at - lease->renewed_at : 0;
    if (delta > UINT32_MAX)
        delta = UINT32_MAX;
    lease->end_hi = (delta >> 16) & 0xffff;
    lease->end_lo = delta & 0xffff;
}

void
gt_lease_tables_info (gt_lease_tables_t *self, const gt_lease_t *lease, gt_lease_info_t *info)
{
    assert (self);
    assert (lease);
    memset (info, 0, sizeof (*info));
    gt_lease_id_format (lease->id, info->id);
    info->object_id = (char *) lease->object->id;
    info->object_type = (gt_object_type_t) lease->type;
    info->service_id = self->services [gt_lease_tables_service_of (lease)].name;
    info->state = (gt_lease_state_t) lease->state;
    info->fence = lease->fence;
    info->ttl_ms = lease->ttl_ms;
    info->created_at = lease->created_at;
    info->renewed_at = lease->renewed_at;
    info->expires_at = gt_lease_tables_expires_at (lease);
    info->renewals = lease->renewals;
    const gt_lease_ext_t *ext = gt_lease_tables_ext (self, lease);
    if (ext) {
        info->metadata = ext->metadata;
        info->cleanup = ext->cleanup;
        info->cleanup_status = (gt_cleanup_status_t) ext->cleanup_status;
        info->cleanup_attempts = ext->cleanup_attempts;
        info->cleanup_error = ext->cleanup_error;
    }
}

size_t
gt_lease_tables_info_size (gt_lease_tables_t *self, const gt_lease_t *lease)
{
    //  Keys, numbers and enums take well under 300 bytes; add the strings
    size_t size = 300 + strlen (lease->object->id) + GT_MAX_SERVICE_ID;
    const gt_lease_ext_t *ext = gt_lease_tables_ext (self, lease);
    if (ext) {
        for (size_t i = 0; i < ext->metadata.count; i++)
            size += strlen (ext->metadata.entries [i].key)
                  + strlen (ext->metadata.entries [i].value) + 10;
        if (ext->cleanup) {
            size += strlen (ext->cleanup->url) + 60;
            if (ext->cleanup->payload)
                size += strlen (ext->cleanup->payload) + 10;
        }
        if (ext->cleanup_error)
            size += strlen (ext->cleanup_error) + 60;
    }
    return size;
}

//  --------------------------------------------------------------------------
//  Objects

gt_lease_object_t *
gt_lease_tables_object_find (gt_lease_tables_t *self, const char *object_id)
{
    return (gt_lease_object_t *) gt_table_lookup (self->objects, s_string_hash (self, object_id),
                                                  s_object_match, object_id);
}

gt_lease_object_t *
gt_lease_tables_object_acquire (gt_lease_tables_t *self, const char *object_id)
{
    uint64_t hash = s_string_hash (self, object_id);        //  once, for the lookup and the insert
    gt_lease_object_t *object = (gt_lease_object_t *) gt_table_lookup (self->objects, hash, s_object_match,
                                                                       object_id);
    if (object)
        return object;
    size_t size = strlen (object_id);
    object = (gt_lease_object_t *) gt_slabs_alloc (self->slabs, s_object_size (size));
    assert (object);
    object->refs = 0;
    object->has_ext = 0;
    object->active = 0;
    object->fence = 0;
    memcpy (object->id, object_id, size + 1);
    gt_table_insert (self->objects, hash, object);
    if (self->journaling)
        s_push (self, J_OBJECT_NEW, object);
    return object;
}

void
gt_lease_tables_object_touch (gt_lease_tables_t *self, gt_lease_object_t *object)
{
    if (!self->journaling)
        return;
    s_entry_t *entry = s_push (self, J_OBJECT_OLD, object);
    entry->u.object.refs = object->refs;
    entry->u.object.active = object->active;
    entry->u.object.fence = object->fence;
    gt_lease_object_ext_t *ext = gt_lease_tables_object_ext (self, object);
    entry->u.object.cleanups = ext ? ext->cleanups : NULL;
    entry->u.object.pending = ext ? ext->pending : NULL;
}

gt_lease_object_ext_t *
gt_lease_tables_object_ext (gt_lease_tables_t *self, const gt_lease_object_t *object)
{
    return object->has_ext ? (gt_lease_object_ext_t *) s_ext_find (self, object) : NULL;
}

//  The object's extension, made if it has none (it stays with the record)
static gt_lease_object_ext_t *
s_object_ext (gt_lease_tables_t *self, gt_lease_object_t *object)
{
    if (object->has_ext)
        return (gt_lease_object_ext_t *) s_ext_find (self, object);
    gt_lease_object_ext_t *ext = (gt_lease_object_ext_t *) zmalloc (sizeof (gt_lease_object_ext_t));
    assert (ext);
    ext->object = object;
    object->has_ext = 1;
    gt_table_insert (self->exts, s_record_hash (object), ext);
    return ext;
}

gt_lease_pending_t *
gt_lease_tables_object_pending (gt_lease_tables_t *self, const gt_lease_object_t *object)
{
    gt_lease_object_ext_t *ext = gt_lease_tables_object_ext (self, object);
    return ext ? ext->pending : NULL;
}

void
gt_lease_tables_object_forget (gt_lease_tables_t *self, gt_lease_object_t *object)
{
    assert (object->refs == 0 && object->active == 0 && !gt_lease_tables_object_pending (self, object));
    //  Cleanups of a life that ended without a reclaim (restored from a
    //  store after the reclaim) belong to no one now
    gt_lease_tables_object_drop_cleanups (self, object);
    gt_table_remove (self->objects, s_string_hash (self, object->id), object);
    //  A later lease on this id starts above every fence it had
    if (object->fence >= self->fence_floor)
        self->fence_floor = (uint64_t) object->fence + 1;
    if (self->journaling)
        s_push (self, J_OBJECT_GONE, object);
    else
        s_object_free (self, object);
}

void
gt_lease_tables_object_drop_cleanups (gt_lease_tables_t *self, gt_lease_object_t *object)
{
    gt_lease_object_ext_t *ext = gt_lease_tables_object_ext (self, object);
    if (!ext || !ext->cleanups)
        return;
    gt_lease_cleanup_node_t *list = ext->cleanups;
    ext->cleanups = NULL;
    if (self->journaling)
        s_push (self, J_CLEANUPS_DROPPED, list);
    else
        s_cleanup_list_free (list);
}

//  The object's cleanup node for url, or NULL
static gt_lease_cleanup_node_t *
s_cleanup_find (gt_lease_tables_t *self, gt_lease_object_t *object, const char *url)
{
    gt_lease_object_ext_t *ext = gt_lease_tables_object_ext (self, object);
    for (gt_lease_cleanup_node_t *node = ext ? ext->cleanups : NULL; node; node = node->next)
        if (streq (node->cleanup.url, url))
            return node;
    return NULL;
}

//  A node with its own copy of cleanup, owned by owner: one allocation,
//  the strings after the node (they never change)
static gt_lease_cleanup_node_t *
s_cleanup_node_new (const gt_cleanup_t *cleanup, const uint8_t owner [16])
{
    size_t url = strlen (cleanup->url) + 1;
    size_t payload = cleanup->payload ? strlen (cleanup->payload) + 1 : 0;
    gt_lease_cleanup_node_t *node = (gt_lease_cleanup_node_t *) malloc (sizeof (gt_lease_cleanup_node_t)
                                                                        + url + payload);
    assert (node);
    node->next = NULL;
    node->cleanup = *cleanup;
    node->cleanup.url = (char *) memcpy (node + 1, cleanup->url, url);
    node->cleanup.payload = payload ? (char *) memcpy ((char *) (node + 1) + url, cleanup->payload, payload)
                                    : NULL;
    memcpy (node->owner, owner, sizeof (node->owner));
    return node;
}

void
gt_lease_tables_object_add_cleanup (gt_lease_tables_t *self, gt_lease_object_t *object,
                                    const gt_cleanup_t *cleanup, const uint8_t owner [16])
{
    if (s_cleanup_find (self, object, cleanup->url))
        return;
    gt_lease_cleanup_node_t *node = s_cleanup_node_new (cleanup, owner);
    gt_lease_object_ext_t *ext = s_object_ext (self, object);
    node->next = ext->cleanups;
    ext->cleanups = node;
    if (self->journaling)
        s_push (self, J_CLEANUP_NEW, node);
}

//  Recovery: link node into its object's list (newest registration first)
//  by the age of its owner; an owner not here counts as the oldest
static void
s_cleanup_link_by_age (gt_lease_tables_t *self, gt_lease_object_t *object, gt_lease_cleanup_node_t *node,
                       uint64_t created_at)
{
    gt_lease_cleanup_node_t **link = &s_object_ext (self, object)->cleanups;
    while (*link) {
        const gt_lease_t *owner = gt_lease_tables_lease_find (self, (*link)->owner);
        if (!owner || owner->created_at <= (created_at & S_CREATED_MASK))
            break;
        link = &(*link)->next;
    }
    node->next = *link;
    *link = node;
}

void
gt_lease_tables_object_restore_cleanup (gt_lease_tables_t *self, gt_lease_object_t *object,
                                        const gt_cleanup_t *cleanup, const uint8_t owner [16],
                                        uint64_t created_at)
{
    assert (!self->journaling);
    gt_lease_cleanup_node_t *node = s_cleanup_find (self, object, cleanup->url);
    if (node) {
        //  Registered already: this lease owns it instead if created first
        const gt_lease_t *current = gt_lease_tables_lease_find (self, node->owner);
        if (!current || current->created_at <= (created_at & S_CREATED_MASK))
            return;
        gt_lease_cleanup_node_t **link = &gt_lease_tables_object_ext (self, object)->cleanups;
        while (*link != node)
            link = &(*link)->next;
        *link = node->next;
        free (node);
    }
    s_cleanup_link_by_age (self, object, s_cleanup_node_new (cleanup, owner), created_at);
}

uint64_t
gt_lease_tables_fence_floor (gt_lease_tables_t *self)
{
    return self->fence_floor;
}

void
gt_lease_tables_raise_fence_floor (gt_lease_tables_t *self, uint64_t floor)
{
    if (floor > self->fence_floor)
        self->fence_floor = floor;
}

gt_lease_pending_t *
gt_lease_tables_pending_add (gt_lease_tables_t *self, gt_lease_object_t *object,
                             gt_reason_t reason, uint64_t at, const gt_lease_info_t *last)
{
    gt_lease_pending_t *pending = (gt_lease_pending_t *) zmalloc (sizeof (gt_lease_pending_t));
    assert (pending);
    gt_timer_init (&pending->timer);
    pending->object = object;
    pending->reason = reason;
    pending->at = at;
    gt_lease_info_copy (&pending->last, last);
    s_object_ext (self, object)->pending = pending;
    object->refs++;
    if (self->journaling)
        s_push (self, J_PENDING_NEW, pending);
    return pending;
}

gt_lease_pending_t *
gt_lease_tables_pending_detach (gt_lease_tables_t *self, gt_lease_object_t *object)
{
    gt_lease_object_ext_t *ext = gt_lease_tables_object_ext (self, object);
    gt_lease_pending_t *pending = ext ? ext->pending : NULL;
    assert (pending);
    uint64_t deadline = gt_timer_deadline (&pending->timer);
    gt_wheel_cancel (self->object_wheel, &pending->timer);
    ext->pending = NULL;
    if (self->journaling)
        s_push (self, J_PENDING_GONE, pending)->deadline = deadline;
    return pending;
}

void
gt_lease_tables_pending_release (gt_lease_tables_t *self, gt_lease_pending_t *pending)
{
    //  Journaling: the J_PENDING_GONE entry owns it (undo re-arms it)
    if (!self->journaling)
        s_pending_free (pending);
}

//  --------------------------------------------------------------------------
//  Forgetting shards (handed over to another broker)

//  True if the object id's shard is in the bitmap
static bool
s_shard_in (const uint8_t *shards, const char *object_id)
{
    unsigned shard = gt_shard_of (object_id);
    return (shards [shard / 8] >> (shard % 8)) & 1;
}

//  The objects of the shards, gathered by a walk of the object table
typedef struct {
    const uint8_t *shards;          //  the bitmap
    gt_lease_object_t **objects;    //  objects found
    size_t count;                   //  how many
    size_t cap;                     //  allocated
} s_forget_walk_t;

static void
s_forget_collect (void *entry, void *arg)
{
    s_forget_walk_t *walk = (s_forget_walk_t *) arg;
    gt_lease_object_t *object = (gt_lease_object_t *) entry;
    if (!s_shard_in (walk->shards, object->id))
        return;
    if (walk->count == walk->cap) {
        walk->cap = walk->cap ? walk->cap * 2 : 64;
        walk->objects = (gt_lease_object_t **) realloc (walk->objects, walk->cap * sizeof (*walk->objects));
        assert (walk->objects);
    }
    walk->objects [walk->count++] = object;
}

void
gt_lease_tables_forget_shards (gt_lease_tables_t *self, const uint8_t shards [GT_SHARD_COUNT / 8],
                               gt_lease_tables_forgotten_t *forgotten)
{
    assert (self);
    assert (shards && forgotten);
    //  Every lease has its object in the table: no object, no lease
    s_forget_walk_t walk = { shards, NULL, 0, 0 };
    gt_table_foreach (self->objects, s_forget_collect, &walk);
    if (walk.count == 0)
        return;
    for (size_t index = 0; index < walk.count; index++)
        if (walk.objects [index]->active > 0)
            forgotten->active_objects++;
    //  Undo may name a service slot while the journal holds entries (of
    //  other shards: none of these records, by contract)
    bool deferred = s_journal_holds (self);

    //  Leases, in one pass over the creation order: each leaves a hole
    for (size_t index = 0; index < self->order_count; index++) {
        if (S_IS_HOLE (self->order [index]))
            continue;
        gt_lease_t *lease = s_order_lease (self, self->order [index]);
        gt_lease_object_t *object = lease->object;
        if (!s_shard_in (shards, object->id))
            continue;
        bool removed = gt_table_remove (self->ids, s_id_hash (lease->id), lease);
        assert (removed);
        if (s_has_key (lease)) {
            removed = gt_table_remove (self->keys, s_key_hash (lease, self), lease);
            assert (removed);
        }
        gt_wheel_cancel (self->lease_wheel, &lease->timer);
        self->order [index] = s_hole_new (self, lease->serial);
        self->order_holes++;
        bool active = lease->state == GT_STATE_ACTIVE;
        uint32_t service = gt_lease_tables_service_of (lease);
        s_service_t *slot = &self->services [service];
        assert (slot->refs > 0 && (!active || slot->active > 0));
        if (active)
            slot->active--;
        if (--slot->refs == 0)
            s_service_drop (self, service, deferred);
        assert (object->refs > 0 && (!active || object->active > 0));
        object->refs--;
        if (active) {
            object->active--;
            forgotten->active_leases++;
        }
        else
            forgotten->retained_leases++;
        s_lease_free (self, lease);
    }
    s_order_squeeze (self);

    //  Objects: what is left of them is a pending reclaim and cleanups
    for (size_t index = 0; index < walk.count; index++) {
        gt_lease_object_t *object = walk.objects [index];
        assert (object->active == 0);
        gt_lease_object_ext_t *ext = gt_lease_tables_object_ext (self, object);
        if (ext && ext->pending) {
            gt_lease_pending_t *pending = ext->pending;
            gt_wheel_cancel (self->object_wheel, &pending->timer);
            ext->pending = NULL;
            s_pending_free (pending);
            assert (object->refs > 0);
            object->refs--;
            forgotten->pending_reclaims++;
        }
        assert (object->refs == 0);
        if (ext) {
            s_cleanup_list_free (ext->cleanups);
            ext->cleanups = NULL;
        }
        bool removed = gt_table_remove (self->objects, s_string_hash (self, object->id), object);
        assert (removed);
        //  Its fences are never handed out again here
        if (object->fence >= self->fence_floor)
            self->fence_floor = (uint64_t) object->fence + 1;
        s_object_free (self, object);
    }
    free (walk.objects);
}

//  --------------------------------------------------------------------------
//  Services

//  Change a service's counts (journaled as the change itself, see
//  J_SERVICE_COUNTS)
static void
s_service_change (gt_lease_tables_t *self, uint32_t index, int32_t active, int32_t refs)
{
    if (self->journaling) {
        s_entry_t *entry = s_push (self, J_SERVICE_COUNTS, NULL);
        entry->u.service.index = index;
        entry->u.service.active = active;
        entry->u.service.refs = refs;
    }
    self->services [index].active += (uint32_t) active;
    self->services [index].refs += (uint32_t) refs;
}

bool
gt_lease_tables_service_find (gt_lease_tables_t *self, const char *name, uint32_t *index_p)
{
    //  A client's requests name one service, mostly: the one found last is
    //  compared first, before hashing the name
    if (self->service_found && streq (self->services [self->service_found - 1].name, name)) {
        *index_p = self->service_found - 1;
        return true;
    }
    s_service_lookup_t wanted = { self->services, name };
    void *entry = gt_table_lookup (self->service_index, s_string_hash (self, name), s_service_match, &wanted);
    if (!entry)
        return false;
    *index_p = (uint32_t) ((uintptr_t) entry - 1);
    self->service_found = *index_p + 1;
    return true;
}

bool
gt_lease_tables_service_room (gt_lease_tables_t *self)
{
    return self->service_free_count > 0 || self->service_count < GT_LEASE_MAX_SERVICES;
}

uint32_t
gt_lease_tables_service_acquire (gt_lease_tables_t *self, const char *name)
{
    uint32_t index;
    if (gt_lease_tables_service_find (self, name, &index))
        return index;
    if (self->service_free_count)
        index = self->service_free [--self->service_free_count];
    else {
        if (self->service_count == self->service_cap) {
            self->service_cap = self->service_cap ? self->service_cap * 2 : 16;
            assert (self->service_cap <= GT_LEASE_MAX_SERVICES);
            self->services = (s_service_t *) realloc (self->services, self->service_cap * sizeof (s_service_t));
            self->service_free = (uint32_t *) realloc (self->service_free, self->service_cap * sizeof (uint32_t));
            assert (self->services && self->service_free);
        }
        index = (uint32_t) self->service_count++;
    }
    self->services [index].name = strdup (name);
    self->services [index].active = 0;
    self->services [index].refs = 0;
    s_service_index_insert (self, index);
    if (self->journaling)
        s_push (self, J_SERVICE_NEW, NULL)->u.service.index = index;
    return index;
}

void
gt_lease_tables_service_hold (gt_lease_tables_t *self, uint32_t index, bool active)
{
    s_service_change (self, index, active ? 1 : 0, 1);
}

void
gt_lease_tables_service_end (gt_lease_tables_t *self, uint32_t index)
{
    assert (self->services [index].active > 0);
    s_service_change (self, index, -1, 0);
}

void
gt_lease_tables_service_unref (gt_lease_tables_t *self, uint32_t index)
{
    assert (self->services [index].refs > 0);
    s_service_change (self, index, 0, -1);
    if (self->services [index].refs == 0)
        s_service_drop (self, index, self->journaling);
}

const char *
gt_lease_tables_service_name (gt_lease_tables_t *self, uint32_t index)
{
    assert (index < self->service_count);
    return self->services [index].name;
}

uint32_t
gt_lease_tables_service_active (gt_lease_tables_t *self, uint32_t index)
{
    assert (index < self->service_count);
    return self->services [index].active;
}

size_t
gt_lease_tables_service_slots (gt_lease_tables_t *self)
{
    return self->service_count;
}

size_t
gt_lease_tables_service_count (gt_lease_tables_t *self)
{
    return gt_table_size (self->service_index);
}

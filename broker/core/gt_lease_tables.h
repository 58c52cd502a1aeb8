/*  gt_lease_tables.h — where the lease engine's records live: leases (by
    id, by creation order, by idempotency key), objects (by id) and
    interned services, with their memory, and the undo journal of every
    change made to them.

    The engine (gt_leases) decides what happens to a lease; this module
    keeps the records and indexes consistent and undoable.  The record
    structs below are public so that the engine reads and writes their
    fields directly on the hot path; the indexes and allocators are not.

    Undo contract: with the journal on, before the engine changes a field
    of a record it calls the record's _touch (a before-image is kept), and
    every function here that adds, removes or frees something records how
    to unmake it instead of freeing at once.  gt_lease_tables_rollback
    restores every record and index as it was at a position, including
    which timers were armed and when (one thing stays: an extension an
    object got meanwhile, emptied, as it keeps one while its record
    lives); gt_lease_tables_commit frees what was
    kept for undo.  With the journal off nothing is recorded and memory is
    freed at once.  Forgetting shards (gt_lease_tables_forget_shards) is
    the exception: never journaled, never undone, it leaves the records of
    other shards and their journal entries as they are.

    Timers: a lease's node and a pending reclaim's node are armed by the
    engine on the two wheels it passes to gt_lease_tables_new (borrowed).
    The tables cancel a node when they unlink its record, and put it back
    on its wheel when they undo.

    Memory: a lease is 88 bytes (fields bit-packed, a 24-byte timer node)
    from gt_records, where each is also known by a 32-bit index; an object
    is a 14-byte packed header plus its id, from gt_slabs in 4-byte steps
    (no allocator header for either).  What only some records have lives in an
    extension found by the record's address in one more table (exts): a
    lease's metadata, cleanup and idempotency key, an object's cleanups
    and pending reclaim.  A record carries one bit saying it has one, so a
    record without (most, under load) costs no lookup and no pointer; one
    with costs a lookup where its extension is read.  A lease carries a
    second bit saying its extension holds an idempotency key, so that
    linking it into the key index, or out, needs no lookup to ask.  Id, object, service
    and idempotency-key indexes are open-addressing tables (gt_table): the
    id table holds lease records' indexes (4 bytes a slot) hashed by the
    ids' own random bits; the others hold pointers, hashed with SipHash
    under this object's own random key, since clients choose those strings.  */
#ifndef GT_LEASE_TABLES_H_INCLUDED
#define GT_LEASE_TABLES_H_INCLUDED

#include "gt_msg.h"
#include "gt_wheel.h"

#ifdef __cplusplus
extern "C" {
#endif

//  Service indexes are 24 bits inside a lease
#define GT_LEASE_MAX_SERVICES   (1u << 24)

typedef struct gt_lease_tables_t gt_lease_tables_t;
typedef struct gt_lease_t gt_lease_t;
typedef struct gt_lease_object_t gt_lease_object_t;

//  What a lease has only when the client gave it
typedef struct {
    const gt_lease_t *lease;        //  the lease it extends (its key among the extensions); first
    gt_meta_t metadata;             //  owned entries (count 0 = none)
    gt_cleanup_t *cleanup;          //  owned, or NULL; retries and delay always present
    char *idempotency_key;          //  owned, or NULL
    uint8_t cleanup_status;         //  gt_cleanup_status_t of its callback (NONE until a reclaim)
    uint32_t cleanup_attempts;      //  attempts made by that callback
    char *cleanup_error;            //  its last error, owned, or NULL
} gt_lease_ext_t;

//  A lease: 88 bytes.  Wall times are 48-bit ms (good for 8,000 years);
//  the end time of an ended lease is kept as 32 bits after renewed_at
//  (gt_lease_tables_expires_at reads it back).
struct gt_lease_t {
    gt_timer_t timer;               //  expiry (ACTIVE) or purge (ended); must be first
    uint8_t id [16];                //  128 bits from the CSPRNG
    gt_lease_object_t *object;      //  shared object record
    uint64_t created_at : 48;       //  wall ms
    uint64_t state : 2;             //  gt_lease_state_t
    uint64_t type : 3;              //  gt_object_type_t
    uint64_t service_hi : 8;        //  service index, bits 16..23
    uint64_t has_ext : 1;           //  it has a gt_lease_ext_t (gt_lease_tables_ext)
    uint64_t has_key : 1;           //  that extension holds an idempotency key (known without finding it)
    uint64_t spare : 1;             //  unused
    uint64_t renewed_at : 48;       //  wall ms
    uint64_t end_hi : 16;           //  ended_at - renewed_at, bits 16..31
    uint64_t serial : 48;           //  creation order, for LIST cursors
    uint64_t end_lo : 16;           //  ended_at - renewed_at, bits 0..15
    uint64_t fence : 48;            //  fence of the object life it belongs to
    uint64_t service_lo : 16;       //  service index, bits 0..15
    uint32_t ttl_ms;                //  the lease's own TTL
    uint32_t renewals;              //  successful renewals (saturates)
};

//  A cleanup registered with an object's life, once per URL
typedef struct gt_lease_cleanup_node_t gt_lease_cleanup_node_t;
struct gt_lease_cleanup_node_t {
    gt_lease_cleanup_node_t *next;  //  next (older) cleanup of the object's life
    gt_cleanup_t cleanup;           //  own copy, as the client gave it (strings after the node, one allocation)
    uint8_t owner [16];             //  id of the lease that registered the URL first
};

//  An object's reclaim waiting out the grace period
typedef struct {
    gt_timer_t timer;               //  reclaim deadline; must be first
    gt_lease_object_t *object;      //  the object waiting out its grace
    gt_reason_t reason;             //  why its last lease ended
    uint64_t at;                    //  wall ms of the reclaim deadline
    gt_lease_info_t last;           //  deep copy of the lease that ended last
} gt_lease_pending_t;

//  What an object has only while cleanups or a reclaim need it
typedef struct {
    const gt_lease_object_t *object;    //  the object it extends (its key among the extensions); first
    gt_lease_cleanup_node_t *cleanups;  //  cleanups of the current life, newest first
    gt_lease_pending_t *pending;    //  reclaim waiting out the grace period, or NULL
} gt_lease_object_ext_t;

//  The largest fence a lease or an object record keeps (48 bits), one
//  below the top so that the floor above it fits too.  Counting up from 1
//  never gets there (2^48 object lives); a store's fence beyond it is
//  refused at recovery (gt_leases_restore_*).
#define GT_LEASE_FENCE_MAX  ((UINT64_C (1) << 48) - 2)

//  An object: shared by the leases on one object id.  Packed, a 14-byte
//  header and the id, from a slab class of 4-byte steps (gt_slabs): an
//  object record of a 10-character id takes 28 bytes (32 with a 16-byte
//  header in 8-byte steps), and on average 4 bytes less.  The fence has
//  48 bits, as a lease's: do arithmetic on it as a uint64_t ((uint64_t)
//  object->fence + 1), since GCC computes in a bit-field's own width.
struct __attribute__ ((packed)) gt_lease_object_t {
    uint32_t refs : 31;             //  leases of any state, plus a pending reclaim
    uint32_t has_ext : 1;           //  it has a gt_lease_object_ext_t (gt_lease_tables_object_ext)
    uint32_t active;                //  ACTIVE leases
    uint64_t fence : 48;            //  fence of the current or last life; 0 = none yet
    char id [];                     //  object id, NUL-terminated
};

//  Create empty tables whose records' timers live on lease_wheel (leases)
//  and object_wheel (pending reclaims), both borrowed.
gt_lease_tables_t *gt_lease_tables_new (gt_wheel_t *lease_wheel, gt_wheel_t *object_wheel);
//  Commit everything, free every record; nulls the pointer.
void gt_lease_tables_destroy (gt_lease_tables_t **self_p);
//  Room for leases more leases, each on an object of its own at most,
//  without growing the id and object tables on the way (a bulk restore).
void gt_lease_tables_reserve (gt_lease_tables_t *self, size_t leases);
//  A bulk restore's hint: the lease with this id, on the object with this
//  id (object_id_len bytes, no NUL needed), comes soon; starts fetching the
//  slots of the id and object tables it will read.
void gt_lease_tables_prefetch (gt_lease_tables_t *self, const uint8_t id [16],
                               const char *object_id, size_t object_id_len);

//  --------------------------------------------------------------------------
//  Journal

//  Turn recording on or off; turning it off commits everything.
void gt_lease_tables_journal (gt_lease_tables_t *self, bool enabled);
//  True while recording.
bool gt_lease_tables_journaling (gt_lease_tables_t *self);
//  Where the journal stands now (for a later commit or rollback).
size_t gt_lease_tables_position (gt_lease_tables_t *self);
//  Free what was kept for undo before position.
void gt_lease_tables_commit (gt_lease_tables_t *self, size_t position);
//  Undo every change since position, newest first.
void gt_lease_tables_rollback (gt_lease_tables_t *self, size_t position);

//  --------------------------------------------------------------------------
//  Leases

//  The most lease records the tables hold at once, active leases and
//  ended ones alike (2^28 - 1, about 268 million: the id table keeps
//  28-bit record indexes, gt_table).  The engine refuses a lease past it.
#define GT_LEASE_MAX        ((UINT32_C (1) << 28) - 1)

//  Lease records out: the leases held, and ended ones the journal still
//  keeps for undo.
size_t gt_lease_tables_lease_count (gt_lease_tables_t *self);
//  A new lease record, zeroed, its timer idle (asserts fewer than
//  GT_LEASE_MAX are out).
//  Fill it, then _add it.
gt_lease_t *gt_lease_tables_lease_alloc (gt_lease_tables_t *self);
//  Give a new lease (not yet added) its extension: copies of metadata
//  (NULL or empty = none), cleanup (taken as given) and idempotency key,
//  all in one allocation with the record (they never change; only the
//  cleanup error, set later, is allocated on its own); none of them, no
//  extension.  It lives as long as the lease record.
//  Returns the extension, or NULL when none was needed.
gt_lease_ext_t *gt_lease_tables_lease_ext (gt_lease_tables_t *self, gt_lease_t *lease,
                                           const gt_meta_t *metadata, const gt_cleanup_t *cleanup,
                                           const char *idempotency_key);
//  The lease's extension, or NULL if it has none.
gt_lease_ext_t *gt_lease_tables_ext_lookup (gt_lease_tables_t *self, const gt_lease_t *lease);
static inline gt_lease_ext_t *
gt_lease_tables_ext (gt_lease_tables_t *self, const gt_lease_t *lease)
{
    return lease->has_ext ? gt_lease_tables_ext_lookup (self, lease) : NULL;
}
//  Give a filled lease the next creation serial and index it (id, order,
//  idempotency key).
void gt_lease_tables_lease_add (gt_lease_tables_t *self, gt_lease_t *lease);
//  Unindex a lease, cancel its timer and free it (kept for undo when
//  journaling).  Its object and service are the caller's to unref.
void gt_lease_tables_lease_remove (gt_lease_tables_t *self, gt_lease_t *lease);
//  Before changing a lease's fields or timer.  fired: its timer was just
//  popped (undo re-arms it at its old deadline).
void gt_lease_tables_lease_touch (gt_lease_tables_t *self, gt_lease_t *lease, bool fired);
//  Before changing a lease's callback state (its extension's
//  cleanup_status, _attempts, _error): with the journal on, the entry
//  takes the old error (cleanup_error becomes NULL).
void gt_lease_tables_cleanup_touch (gt_lease_tables_t *self, gt_lease_t *lease);
//  The lease with this id, or NULL.
gt_lease_t *gt_lease_tables_lease_find (gt_lease_tables_t *self, const uint8_t id [16]);
//  Draw a fresh lease id that no lease has: its first byte is shard (the
//  object's, gt_shard_of), the other 120 bits random.
void gt_lease_tables_new_id (gt_lease_tables_t *self, unsigned shard, uint8_t id [16]);
//  The lease created with this idempotency key by this service, or NULL.
gt_lease_t *gt_lease_tables_key_find (gt_lease_tables_t *self, uint32_t service, const char *key);

//  Packed fields of a lease.
uint32_t gt_lease_tables_service_of (const gt_lease_t *lease);
void gt_lease_tables_set_service (gt_lease_t *lease, uint32_t index);
//  Expiry (ACTIVE) or end (ended) wall time.
uint64_t gt_lease_tables_expires_at (const gt_lease_t *lease);
void gt_lease_tables_set_ended_at (gt_lease_t *lease, uint64_t ended_at);

//  A borrowed view of a lease (strings point into the records).
void gt_lease_tables_info (gt_lease_tables_t *self, const gt_lease_t *lease, gt_lease_info_t *info);
//  Upper estimate of a lease's encoded size in bytes.
size_t gt_lease_tables_info_size (gt_lease_tables_t *self, const gt_lease_t *lease);

//  Creation order: leases oldest first.  Serial of the next lease added.
uint64_t gt_lease_tables_next_serial (gt_lease_tables_t *self);
//  Index of the first lease whose serial is >= serial, to pass to _next.
size_t gt_lease_tables_order_seek (gt_lease_tables_t *self, uint64_t serial);
//  The lease at *index_p or after (*index_p moves past it), or NULL at the end.
gt_lease_t *gt_lease_tables_order_next (gt_lease_tables_t *self, size_t *index_p);

//  Recovery: a store hands a load's leases over in any order.  _mark is
//  the order's end before the load; _settle puts the leases added since
//  (from that mark) in creation order: by created_at, ties as they came,
//  their serials renumbered within the range they had (no cursor points
//  into it: the range is new), and their idempotency keys linked again
//  in that order.  True when it had to reorder; not while journaling.
size_t gt_lease_tables_order_mark (gt_lease_tables_t *self);
bool gt_lease_tables_order_settle (gt_lease_tables_t *self, size_t from);

//  --------------------------------------------------------------------------
//  Objects

//  The object with this id, or NULL.
gt_lease_object_t *gt_lease_tables_object_find (gt_lease_tables_t *self, const char *object_id);
//  The object with this id, created (no life yet) if unknown.
gt_lease_object_t *gt_lease_tables_object_acquire (gt_lease_tables_t *self, const char *object_id);
//  Before changing an object's counts, fence, cleanups or pending reclaim.
void gt_lease_tables_object_touch (gt_lease_tables_t *self, gt_lease_object_t *object);
//  Forget an object nothing refers to any more; a later object with its id
//  starts above its fence (see _fence_floor).
void gt_lease_tables_object_forget (gt_lease_tables_t *self, gt_lease_object_t *object);
//  The object's extension (cleanups, pending reclaim), or NULL if it has
//  none: an object gets one with its first cleanup or pending reclaim and
//  keeps it while its record lives.
gt_lease_object_ext_t *gt_lease_tables_object_ext (gt_lease_tables_t *self, const gt_lease_object_t *object);
//  The object's pending reclaim, or NULL.
gt_lease_pending_t *gt_lease_tables_object_pending (gt_lease_tables_t *self, const gt_lease_object_t *object);
//  Register a cleanup with the object's current life, once per URL: the
//  first lease to register a URL in a life (owner) is the one its callback names.
void gt_lease_tables_object_add_cleanup (gt_lease_tables_t *self, gt_lease_object_t *object,
                                         const gt_cleanup_t *cleanup, const uint8_t owner [16]);
//  Recovery, where leases come in any order: as _add_cleanup, but of the
//  leases here that registered the URL, the one created first owns it,
//  and the life's URLs keep the order their owners were created in (as
//  when they registered).  Not journaled (a load is no change).
void gt_lease_tables_object_restore_cleanup (gt_lease_tables_t *self, gt_lease_object_t *object,
                                             const gt_cleanup_t *cleanup, const uint8_t owner [16],
                                             uint64_t created_at);
//  Drop the cleanups of the object's life (handed over, or not wanted).
void gt_lease_tables_object_drop_cleanups (gt_lease_tables_t *self, gt_lease_object_t *object);
//  First fence for an object id the tables do not know.
uint64_t gt_lease_tables_fence_floor (gt_lease_tables_t *self);
//  Raise it (recovery: fences handed out before).
void gt_lease_tables_raise_fence_floor (gt_lease_tables_t *self, uint64_t floor);

//  A pending reclaim for an object (it takes a reference on the object);
//  last is copied.  The caller arms its timer.
gt_lease_pending_t *gt_lease_tables_pending_add (gt_lease_tables_t *self, gt_lease_object_t *object,
                                                 gt_reason_t reason, uint64_t at,
                                                 const gt_lease_info_t *last);
//  Take the object's pending reclaim off it (cancelled or fired): its timer
//  is cancelled; the caller drops the object's reference and, when done
//  with it, calls _pending_release.
gt_lease_pending_t *gt_lease_tables_pending_detach (gt_lease_tables_t *self, gt_lease_object_t *object);
//  Free a detached pending reclaim (kept for undo when journaling).
void gt_lease_tables_pending_release (gt_lease_tables_t *self, gt_lease_pending_t *pending);

//  --------------------------------------------------------------------------
//  Forgetting shards

//  What gt_lease_tables_forget_shards took away (for the engine's gauges)
typedef struct {
    size_t active_leases;           //  leases in state ACTIVE
    size_t retained_leases;         //  ended leases still kept
    size_t active_objects;          //  objects that had ACTIVE leases
    size_t pending_reclaims;        //  reclaims waiting out the grace period
} gt_lease_tables_forgotten_t;

//  Forget every lease and object of the shards in the bitmap (bit s % 8 of
//  byte s / 8; an object's shard is gt_shard_of of its id), with their
//  cleanups and pending reclaims, as if never added: their timers are
//  cancelled, their services lose their counts (a service goes with its
//  last lease), and nothing is journaled, so no rollback brings them back.
//  The fence floor rises above the forgotten objects' fences (as with
//  _object_forget).  The journal may hold entries of other records: a
//  service's counts are journaled as changes, not before-images, and a
//  rollback drops a service it leaves with no lease.  It must not hold
//  entries of these records.  Adds what went to *forgotten.
void gt_lease_tables_forget_shards (gt_lease_tables_t *self, const uint8_t shards [GT_SHARD_COUNT / 8],
                                    gt_lease_tables_forgotten_t *forgotten);

//  --------------------------------------------------------------------------
//  Services (interned ids; a lease keeps a 24-bit index)

//  The index of an interned service; false if unknown.
bool gt_lease_tables_service_find (gt_lease_tables_t *self, const char *name, uint32_t *index_p);
//  True if one more service can be interned.
bool gt_lease_tables_service_room (gt_lease_tables_t *self);
//  The index of a service, interned if unknown (with no leases).
uint32_t gt_lease_tables_service_acquire (gt_lease_tables_t *self, const char *name);
//  A lease of the service was added (active: in state ACTIVE).
void gt_lease_tables_service_hold (gt_lease_tables_t *self, uint32_t index, bool active);
//  An ACTIVE lease of the service ended.
void gt_lease_tables_service_end (gt_lease_tables_t *self, uint32_t index);
//  A lease of the service was removed; the service is forgotten with its last.
void gt_lease_tables_service_unref (gt_lease_tables_t *self, uint32_t index);
//  Name (NULL for a free slot) and ACTIVE leases of the service at index.
const char *gt_lease_tables_service_name (gt_lease_tables_t *self, uint32_t index);
uint32_t gt_lease_tables_service_active (gt_lease_tables_t *self, uint32_t index);
//  Service slots in use or free (indexes run below this).
size_t gt_lease_tables_service_slots (gt_lease_tables_t *self);
//  Interned services.
size_t gt_lease_tables_service_count (gt_lease_tables_t *self);

#ifdef __cplusplus
}
#endif
#endif

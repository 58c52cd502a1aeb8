/*  gt_leases_internal.h — the engine's private structures, shared only
    between gt_leases.c and its selftest (gt_leases_test.c).  */
#ifndef GT_LEASES_INTERNAL_H_INCLUDED
#define GT_LEASES_INTERNAL_H_INCLUDED

#include "gt_wheel.h"
#include "gt_table.h"

//  Service indexes are 24 bits inside a lease
#define S_MAX_SERVICES      (1u << 24)
//  "service-index:idempotency-key" fits in this
#define S_KEY_BUFFER        (16 + GT_MAX_IDEMPOTENCY_KEY + 1)

typedef struct s_object_t s_object_t;

typedef struct {
    gt_meta_t metadata;             //  owned entries (count 0 = none)
    gt_cleanup_t *cleanup;          //  owned, or NULL
    char *idempotency_key;          //  owned, or NULL
    uint8_t cleanup_status;         //  gt_cleanup_status_t of its callback (NONE until a reclaim)
    uint32_t cleanup_attempts;      //  attempts made by that callback
    char *cleanup_error;            //  its last error, owned, or NULL
} s_lease_ext_t;

//  A lease: 104 bytes.  Wall times are 48-bit ms (good for 8,000 years);
//  the end time of an ended lease is kept as 32 bits after renewed_at.
struct gt_lease_t {
    gt_timer_t timer;               //  expiry (ACTIVE) or purge (ended); must be first
    uint8_t id [16];                //  128 bits from the CSPRNG
    s_object_t *object;             //  shared object record
    s_lease_ext_t *ext;             //  metadata, cleanup, idempotency key; NULL if none
    uint64_t created_at : 48;       //  wall ms
    uint64_t state : 2;             //  gt_lease_state_t
    uint64_t type : 3;              //  gt_object_type_t
    uint64_t service_hi : 8;        //  service index, bits 16..23
    uint64_t spare : 3;             //  unused
    uint64_t renewed_at : 48;       //  wall ms
    uint64_t end_hi : 16;           //  ended_at - renewed_at, bits 16..31
    uint64_t serial : 48;           //  creation order, for LIST cursors
    uint64_t end_lo : 16;           //  ended_at - renewed_at, bits 0..15
    uint64_t fence : 48;            //  fence of the object life it belongs to
    uint64_t service_lo : 16;       //  service index, bits 0..15
    uint32_t ttl_ms;                //  the lease's own TTL
    uint32_t renewals;              //  successful renewals (saturates)
};

//  The part of a lease a before-image keeps (everything after the timer)
#define S_LEASE_IMAGE_OFFSET    offsetof (struct gt_lease_t, id)
#define S_LEASE_IMAGE_SIZE      (sizeof (struct gt_lease_t) - S_LEASE_IMAGE_OFFSET)

//  Leases per slab (see s_lease_alloc)
#define S_SLAB_LEASES       1024

typedef struct s_slab_t s_slab_t;
struct s_slab_t {
    s_slab_t *next;                 //  next slab
    struct gt_lease_t leases [S_SLAB_LEASES];
};

typedef struct s_cleanup_node_t s_cleanup_node_t;
struct s_cleanup_node_t {
    s_cleanup_node_t *next;         //  next cleanup of the object's life
    gt_cleanup_t cleanup;           //  own copy
    uint8_t owner [16];             //  id of the lease that registered the URL first
};

typedef struct {
    gt_timer_t timer;               //  reclaim deadline; must be first
    s_object_t *object;             //  the object waiting out its grace
    gt_reason_t reason;             //  why its last lease ended
    uint64_t at;                    //  wall ms of the reclaim deadline
    gt_lease_info_t last;           //  deep copy of the lease that ended last
} s_pending_t;

typedef struct {
    s_cleanup_node_t *cleanups;     //  cleanups registered in the current life
    s_pending_t *pending;           //  reclaim waiting out the grace period
} s_object_ext_t;

struct s_object_t {
    uint32_t refs;                  //  leases of any state, plus a pending reclaim
    uint32_t active;                //  ACTIVE leases
    uint64_t fence;                 //  fence of the current or last life; 0 = none yet
    s_object_ext_t *ext;            //  NULL until a cleanup or reclaim needs it
    char id [];                     //  object id, NUL-terminated
};

typedef struct {
    char *name;                     //  service id; NULL = free slot
    uint32_t active;                //  ACTIVE leases (quota)
    uint32_t refs;                  //  leases of any state
} s_service_t;

typedef enum {
    J_LEASE_NEW,                    //  lease created: undo unlinks and frees it
    J_LEASE_OLD,                    //  lease before-image: undo restores it
    J_LEASE_GONE,                   //  lease purged: undo relinks; commit frees
    J_OBJECT_NEW,                   //  object record created: undo frees it
    J_OBJECT_OLD,                   //  object before-image
    J_OBJECT_GONE,                  //  object record forgotten: undo relinks; commit frees
    J_SERVICE_NEW,                  //  service interned: undo frees it
    J_SERVICE_OLD,                  //  service counts before-image
    J_SERVICE_GONE,                 //  service forgotten: undo relinks; commit frees
    J_CLEANUP_NEW,                  //  cleanup added to a life: undo frees the node
    J_CLEANUPS_DROPPED,             //  a life's cleanups dropped: commit frees them
    J_PENDING_NEW,                  //  reclaim pending: undo cancels and frees it
    J_PENDING_GONE,                 //  pending reclaim fired/cancelled: undo re-arms; commit frees
    J_CLEANUP_OLD                   //  lease's callback state before-image: undo restores; commit frees the old error
} s_journal_type_t;

typedef struct {
    s_journal_type_t type;          //  what happened
    void *ptr;                      //  the lease, object, node or pending reclaim
    bool armed;                     //  J_LEASE_OLD: timer was armed
    uint64_t deadline;              //  timer deadline before the change
    union {
        uint8_t lease_image [S_LEASE_IMAGE_SIZE];
        struct {
            uint32_t refs, active;  //  object counts
            uint64_t fence;         //  object fence
            s_cleanup_node_t *cleanups;     //  object's cleanup list head
            s_pending_t *pending;   //  object's pending reclaim
        } object;
        struct {
            uint32_t index, active, refs;   //  service slot and counts
        } service;
        struct {
            uint8_t status;         //  gt_cleanup_status_t
            uint32_t attempts;      //  attempts
            char *error;            //  owned by the entry
        } cleanup;
    } u;
} s_journal_t;

struct gt_leases_t {
    uint64_t default_ttl;           //  GC_DEFAULT_LEASE_DURATION, ms
    uint64_t min_ttl;               //  GC_MIN_LEASE_DURATION, ms
    uint64_t max_ttl;               //  GC_MAX_LEASE_DURATION, ms
    uint64_t max_per_service;       //  GC_MAX_LEASES_PER_SERVICE
    uint64_t grace_ms;              //  GC_CLEANUP_GRACE_PERIOD, ms
    uint64_t retention_ms;          //  GC_LEASE_RETENTION, ms
    uint64_t default_retries;       //  GC_CLEANUP_MAX_RETRIES
    uint64_t default_retry_delay;   //  GC_CLEANUP_RETRY_DELAY, ms
    char *allow;                    //  GC_CALLBACK_ALLOW (comma-separated URL prefixes), or NULL
    gt_leases_hooks_t hooks;        //  where outputs go
    uint64_t mono;                  //  current monotonic ms
    uint64_t wall;                  //  current wall ms
    gt_wheel_t *lease_wheel;        //  lease expiry and purge timers
    gt_wheel_t *object_wheel;       //  pending reclaim timers
    gt_table_t *ids;                //  leases by id
    gt_table_t *objects;            //  objects by id
    uint8_t hash_key [16];          //  SipHash key for object ids
    uintptr_t *order;               //  leases (or holes) by creation serial
    size_t order_count;             //  entries used, holes included
    size_t order_cap;               //  entries allocated
    size_t order_holes;             //  holes among them
    uint64_t next_serial;           //  serial of the next lease
    uint64_t fence_floor;           //  first fence of an object id we do not know
    s_service_t *services;          //  interned service ids
    size_t service_count;           //  slots used (free ones included)
    size_t service_cap;             //  slots allocated
    uint32_t *service_free;         //  free slot indexes
    size_t service_free_count;      //  how many
    zhashx_t *service_index;        //  service id -> index + 1
    zhashx_t *keys;                 //  "index:key" -> lease (idempotency)
    uint8_t random [4096];          //  CSPRNG bytes not yet used
    size_t random_used;             //  bytes used from random
    s_slab_t *slabs;                //  lease slabs (not under ASan)
    gt_lease_t *free_leases;        //  free list through the slabs
    gt_leases_stats_t stats;        //  gauges and counters
    bool journaling;                //  record before-images, defer frees
    s_journal_t *journal;           //  entries [head, tail) are live
    size_t journal_head;            //  oldest live entry
    size_t journal_tail;            //  one past the newest
    size_t journal_cap;             //  entries allocated
    size_t journal_base;            //  absolute position of journal [0]
};

//  Shared between gt_leases.c, gt_leases_tables.c and gt_leases_journal.c

#define S_HOLE(serial)      (((uintptr_t) (serial) << 1) | 1)
#define S_IS_HOLE(entry)    ((entry) & 1)

//  gt_leases_tables.c
void gt_leases_random_fill (gt_leases_t *self);
void gt_leases_random_bytes (gt_leases_t *self, uint8_t *out, size_t size);
void gt_leases_id_format (const uint8_t id [16], char *out);
bool gt_leases_id_parse (const char *text, uint8_t id [16]);
uint64_t gt_leases_lease_hash (const void *entry, void *ctx);
uint64_t gt_leases_object_hash_of (gt_leases_t *self, const char *object_id);
uint64_t gt_leases_object_hash (const void *entry, void *ctx);
uint32_t gt_leases_service_of (const gt_lease_t *lease);
void gt_leases_set_service (gt_lease_t *lease, uint32_t index);
uint64_t gt_leases_expires_at (const gt_lease_t *lease);
void gt_leases_set_ended_at (gt_lease_t *lease, uint64_t ended_at);
size_t gt_leases_order_lower_bound (gt_leases_t *self, uint64_t serial);
void gt_leases_cleanup_list_free (s_cleanup_node_t *node);
gt_lease_t *gt_leases_lease_alloc (gt_leases_t *self);
void gt_leases_lease_free (gt_leases_t *self, gt_lease_t *lease);
void gt_leases_object_free (s_object_t *object);
void gt_leases_pending_free (s_pending_t *pending);
void gt_leases_service_free_slot (gt_leases_t *self, uint32_t index);
s_journal_t *gt_leases_journal_push (gt_leases_t *self, s_journal_type_t type, void *ptr);
void gt_leases_lease_touch (gt_leases_t *self, gt_lease_t *lease, bool fired);
void gt_leases_object_touch (gt_leases_t *self, s_object_t *object);
void gt_leases_service_touch (gt_leases_t *self, uint32_t index);
bool gt_leases_service_find (gt_leases_t *self, const char *name, uint32_t *index_p);
uint32_t gt_leases_service_acquire (gt_leases_t *self, const char *name);
void gt_leases_service_unref (gt_leases_t *self, uint32_t index);
s_object_t *gt_leases_object_find (gt_leases_t *self, const char *object_id);
s_object_t *gt_leases_object_acquire (gt_leases_t *self, const char *object_id);
s_object_ext_t *gt_leases_object_ext (s_object_t *object);
s_pending_t *gt_leases_object_pending (const s_object_t *object);
void gt_leases_object_maybe_forget (gt_leases_t *self, s_object_t *object);
void gt_leases_object_unref (gt_leases_t *self, s_object_t *object);
void gt_leases_object_put (gt_leases_t *self, s_object_t *object);
void gt_leases_object_drop_cleanups (gt_leases_t *self, s_object_t *object);
void gt_leases_object_add_cleanup (gt_leases_t *self, s_object_t *object, const gt_cleanup_t *cleanup,
                                   const uint8_t owner [16]);
void gt_leases_idempotency_key (gt_leases_t *self, uint32_t service, const char *key, char *buffer, size_t size);
void gt_leases_lease_link (gt_leases_t *self, gt_lease_t *lease);
void gt_leases_lease_unlink (gt_leases_t *self, gt_lease_t *lease);
gt_lease_t *gt_leases_lease_find (gt_leases_t *self, const uint8_t id [16]);
void gt_leases_emit (gt_leases_t *self, gt_event_kind_t kind, const gt_lease_t *lease, uint64_t at);
void gt_leases_put (gt_leases_t *self, const gt_lease_t *lease);

//  gt_leases_journal.c
void gt_leases_cleanup_set (gt_leases_t *self, gt_lease_t *lease, gt_cleanup_status_t status,
                            uint32_t attempts, const char *error, bool journaled);

//  gt_leases.c
s_lease_ext_t *gt_leases_ext_new (gt_leases_t *self, const gt_meta_t *metadata, const gt_cleanup_t *cleanup, const char *idempotency_key);

#endif

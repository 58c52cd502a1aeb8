/*  gt_leases.h — the lease engine: leases, objects, services, timers.

    Pure state: no sockets, no clock reads.  The owner (the broker actor)
    sets the time with gt_leases_clock before each request and each expiry
    pass, so tests can drive it with a fake clock.  Deadlines are monotonic
    ms (in the embedded timer-wheel nodes); what is reported is wall ms.

    Requests take plain values (gt_lease_spec_t for CREATE), never a
    decoded message: the request layer maps the wire onto them, and checks
    what belongs to other components first (the cleanup URL policy is
    delivery's).

    Outputs go through hooks (gt_leases_hooks_t): events, store writes and
    reclaims, all called synchronously inside the mutating call.

    Durability (GTLP.md §11): the broker applies a request in memory at once
    and holds its reply and events until the store says the batch is
    durable.  If the store fails a batch, every mutation since that batch's
    mark is undone with gt_leases_rollback.  For that, when the journal is
    on, every mutation first records a before-image (or, for creations, how
    to unmake it), and nothing is freed until gt_leases_commit passes its
    mark.  With the journal off (the memory store: synchronous, cannot
    fail) nothing is recorded and memory is freed at once.

    Inside: this module is the engine's operations (what a request, an
    expiry or a reclaim does); the records, their indexes and the undo
    journal are gt_lease_tables (over gt_journal); the figures for metrics
    are gt_lease_census.  Calls go down only.

    Memory: a lease is 88 bytes (fields bit-packed), its id slot ~11
    bytes, its creation-order slot ~4.3 bytes (a 32-bit record index;
    a removed lease's hole 12 until squeezed out); objects are shared
    records (a 14-byte header + the id, rounded to 4); service ids are
    interned; a lease's
    metadata, cleanup and idempotency key, and an object's cleanups and
    pending reclaim, live in an extension allocated only when present
    (gt_lease_tables.h).  */
#ifndef GT_LEASES_H_INCLUDED
#define GT_LEASES_H_INCLUDED

#include "gt_msg.h"
#include "gt_config.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct gt_leases_t gt_leases_t;
typedef struct gt_lease_t gt_lease_t;

//  What the engine tells its owner.  Every hook may be NULL.  Lease infos
//  passed to hooks are borrowed views, valid only during the call.
typedef struct {
    void *ctx;                      //  passed back to every hook
    //  Something happened to a lease (kind, its record now, reason for
    //  object.reclaimed — the lease that ended last — and the wall time)
    void (*event) (void *ctx, gt_event_kind_t kind, const gt_lease_info_t *lease,
                   gt_reason_t reason, uint64_t at);
    //  A lease record was created or changed / was forgotten (store writes);
    //  idempotency_key is the key it was created with, or NULL; created:
    //  the lease was just created (no put of it came before)
    void (*lease_put) (void *ctx, const gt_lease_info_t *lease, const char *idempotency_key, bool created);
    void (*lease_delete) (void *ctx, const char *lease_id, const char *object_id);
    //  An object's life state changed: fence of its current (or last) life,
    //  and when a reclaim is pending (grace period), its wall deadline,
    //  reason and last lease id; pending_at == 0 when none.
    void (*object_put) (void *ctx, const char *object_id, uint64_t fence, bool live,
                        uint64_t pending_at, gt_reason_t reason, const char *last_lease_id);
    //  An object record was forgotten (no lease refers to it any more);
    //  its fence must never be handed out again for that object id
    void (*object_delete) (void *ctx, const char *object_id, uint64_t fence);
    //  An object was reclaimed: hand these cleanups (deduplicated by URL)
    //  to the delivery component
    void (*reclaim) (void *ctx, const char *object_id, uint64_t fence,
                     const gt_cleanup_t *const *cleanups, size_t count);
    //  At a reclaim, right after its object.reclaimed event, once per
    //  distinct cleanup URL of the object's life, in registration order:
    //  the lease that registered the URL first (its cleanup_status is now
    //  PENDING), and why the object was reclaimed.  The lease's cleanup has
    //  explicit max_retries and retry_delay_ms.  Should that lease be gone
    //  (it cannot be while its URL is registered, see gt_leases_set_cleanup),
    //  the view is of the lease that ended last with the URL's cleanup, and
    //  its cleanup_status is GT_CLEANUP_NONE.
    void (*callback) (void *ctx, const gt_lease_info_t *owner, gt_reason_t reason);
} gt_leases_hooks_t;

//  What CREATE asks for.  Strings are borrowed for the call (the engine
//  copies what it keeps).
typedef struct {
    const char *object_id;          //  the object to hold (1 .. GT_MAX_OBJECT_ID bytes)
    gt_object_type_t object_type;   //  its type; GT_TYPE_UNKNOWN when the client named none
    const char *service_id;         //  the service that holds it (1 .. GT_MAX_SERVICE_ID bytes)
    bool has_ttl;                   //  false: the configured default TTL
    uint64_t ttl_ms;                //  the TTL, when has_ttl
    const gt_meta_t *metadata;      //  string map, or NULL
    const gt_cleanup_t *cleanup;    //  cleanup callback, or NULL: its URL must already have
                                    //  passed the caller's URL policy (gt_callback_url_allowed);
                                    //  retries and delay absent = the configured defaults
    const char *idempotency_key;    //  1 .. GT_MAX_IDEMPOTENCY_KEY bytes, or NULL
} gt_lease_spec_t;

//  LIST filters (NULL / has_ false = no filter).
typedef struct {
    const char *service_id;         //  only this service's leases
    const char *object_id;          //  only leases on this object
    bool has_object_type;           //  filter by object type
    gt_object_type_t object_type;   //  the type
    bool has_state;                 //  filter by state
    gt_lease_state_t state;         //  the state
    bool has_cleanup_status;        //  filter by the state of the lease's cleanup callback
    gt_cleanup_status_t cleanup_status;     //  the state
} gt_leases_filter_t;

//  Gauges and counters the engine keeps (the broker adds its own).
typedef struct {
    uint64_t active_leases;         //  leases in state ACTIVE
    uint64_t retained_leases;       //  ended leases still visible
    uint64_t active_objects;        //  objects with >= 1 active lease
    uint64_t pending_reclaims;      //  objects waiting out the grace period
    uint64_t services;              //  interned service ids
    uint64_t last_fence;            //  highest fence handed out
    uint64_t expiry_late_max_ms;    //  worst expiry lateness seen
    uint64_t expiry_late [6];       //  lateness histogram: 0, 1, <=2, <=5, <=10, >10 ms
} gt_leases_stats_t;

//  Where the journal stood: a batch remembers its start and end marks.
typedef struct {
    size_t position;                //  journal entries before this mark
    gt_leases_stats_t stats;        //  gauges at the mark (restored on rollback)
    gt_leases_stats_t forgotten;    //  gauges' share forgotten by then (gt_leases_forget_shards):
                                    //  what was forgotten after the mark stays gone on rollback
} gt_leases_mark_t;

//  Create an engine with the limits of config (copied), the hooks (copied)
//  and the current monotonic / wall time in ms.
gt_leases_t *gt_leases_new (const gt_config_t *config, const gt_leases_hooks_t *hooks,
                            uint64_t mono_ms, uint64_t wall_ms);
//  Destroy the engine and every lease; nulls the pointer.
void gt_leases_destroy (gt_leases_t **self_p);

//  Set the clock for the calls that follow (monotonic and wall ms).
void gt_leases_clock (gt_leases_t *self, uint64_t mono_ms, uint64_t wall_ms);

//  Requests.  Each returns GT_OK and the lease, or an error code with a
//  human message in err.  The lease pointer stays valid until the next
//  call that may purge (gt_leases_advance) — use it at once.
gt_code_t gt_leases_create (gt_leases_t *self, const gt_lease_spec_t *spec,
                            gt_lease_t **lease_p, char *err, size_t err_size);
gt_code_t gt_leases_renew (gt_leases_t *self, const char *lease_id, const char *service_id,
                           bool has_ttl, uint64_t ttl_ms,
                           gt_lease_t **lease_p, char *err, size_t err_size);
gt_code_t gt_leases_release (gt_leases_t *self, const char *lease_id, const char *service_id,
                             bool retain, gt_lease_t **lease_p, char *err, size_t err_size);
gt_code_t gt_leases_get (gt_leases_t *self, const char *lease_id,
                         gt_lease_t **lease_p, char *err, size_t err_size);
//  Check a TTL against the configured bounds (RENEW_BATCH checks once).
gt_code_t gt_leases_check_ttl (gt_leases_t *self, uint64_t ttl_ms, char *err, size_t err_size);
//  The checks CREATE makes first, in its order, on the lease's own values
//  (object id, service id, type, TTL, idempotency key), with the message
//  CREATE would give.  A caller that refuses a CREATE for a reason of its
//  own (its cleanup URL, checked after these) asks this before replying,
//  so that when both are wrong the reply is the one CREATE would give.
gt_code_t gt_leases_check_spec (gt_leases_t *self, const gt_lease_spec_t *spec,
                                char *err, size_t err_size);

//  LIST: up to limit leases matching filter, oldest first, starting after
//  cursor (NULL = from the start), stopping early once their estimated
//  encoded size passes byte_budget or after scanning a bounded number of
//  leases.  Writes the cursor for the next page into next_cursor (at least
//  32 bytes), or "" when this was the last page.  Bad cursor -> INVALID_ARGUMENT.
gt_code_t gt_leases_list (gt_leases_t *self, const gt_leases_filter_t *filter,
                          const char *cursor, size_t limit, size_t byte_budget,
                          gt_lease_t **leases, size_t *count_p, char *next_cursor,
                          char *err, size_t err_size);

//  Cleanup callbacks.  Set the state of lease_id's callback (the one the
//  callback hook announced).  journaled: a change a request makes (RETRY),
//  undone with its batch; otherwise a fact the delivery component reported
//  (an attempt, DELIVERED, DEAD), never undone.  error NULL or "" = none.
//  Retention (GTLP.md §10.5): an ended lease whose callback is PENDING or
//  DEAD is not purged, nor one whose URL is registered for its object's
//  still open life; once DELIVERED, it is kept GC_LEASE_RETENTION more.
//  Returns false if the lease is unknown or has no cleanup.
bool gt_leases_set_cleanup (gt_leases_t *self, const char *lease_id, gt_cleanup_status_t status,
                            uint32_t attempts, const char *error, bool journaled);
//  Record a lease again (its lease_put hook), e.g. after its callback
//  state changed.  Returns false if the lease is unknown.
bool gt_leases_record (gt_leases_t *self, const char *lease_id);

//  Fill a borrowed view of a lease (strings point into the engine; valid
//  until the lease changes).  Do not gt_lease_info_clear it.
void gt_leases_info (gt_leases_t *self, const gt_lease_t *lease, gt_lease_info_t *info);

//  Timers: process up to max due timers (expiries, purges of ended leases,
//  reclaims after grace) at the current clock.  Returns how many ran.
size_t gt_leases_advance (gt_leases_t *self, size_t max);
//  Ms until gt_leases_advance has work (0 = now), or -1 if no timers.
int64_t gt_leases_timeout (gt_leases_t *self);

//  Counters and gauges.
void gt_leases_stats (gt_leases_t *self, gt_leases_stats_t *stats);

//  Census for metrics (gt_lease_census): fn is called for each service
//  with ACTIVE leases (O(services)); the ACTIVE leases by object type are
//  counted by walking every lease (O(leases): after rollbacks and recovery only).
typedef void (gt_leases_service_fn) (void *ctx, const char *service_id, uint64_t active);
void gt_leases_census_services (gt_leases_t *self, gt_leases_service_fn *fn, void *ctx);
void gt_leases_census_types (gt_leases_t *self, uint64_t counts [GT_TYPE_COUNT_]);

//  Journal for rollback (see top).  Turning it off commits everything.
void gt_leases_journal (gt_leases_t *self, bool enabled);
gt_leases_mark_t gt_leases_mark (gt_leases_t *self);
//  The store made everything before mark durable: free what was deferred.
void gt_leases_commit (gt_leases_t *self, gt_leases_mark_t mark);
//  The store failed at mark: undo every mutation since, newest first.
void gt_leases_rollback (gt_leases_t *self, gt_leases_mark_t mark);

//  Recovery: a load (a store's recovery or its loading of acquired shards)
//  runs between _begin and _end.  Its leases may come in any order; _end
//  puts them in creation order (LIST, idempotency keys: see
//  gt_lease_tables_order_settle) and the overdue ones' expiries too, as
//  if they had come oldest first.
void gt_leases_restore_begin (gt_leases_t *self);
void gt_leases_restore_end (gt_leases_t *self);

//  Recovery: this many more leases are about to be restored (the store's
//  count), so that the tables are sized once instead of growing
//  step by step; a hint, any number is safe.
void gt_leases_restore_expect (gt_leases_t *self, size_t leases);
//  Recovery: a hint that the lease with this id (16 bytes), on the object
//  with this id (object_id_len bytes), will be restored soon; a store that
//  reads ahead calls it a few leases early, so that the memory the restore
//  will touch is fetched meanwhile.  Any id is safe (nothing is checked).
void gt_leases_restore_ahead (gt_leases_t *self, const uint8_t id [16],
                              const char *object_id, size_t object_id_len);
//  Recovery at start (before any request): re-create a lease from its
//  stored record, keeping its id, state, times, fence and callback state.  Deadlines are
//  mapped from wall to the monotonic clock; a deadline already past fires
//  on the next advance.  Hooks are not called for restored state.
gt_code_t gt_leases_restore_lease (gt_leases_t *self, const gt_lease_info_t *lease,
                                   const char *idempotency_key, char *err, size_t err_size);
//  Re-create an object's pending reclaim or its fence floor from the store.
//  INVALID_ARGUMENT, changing nothing, for a fence beyond GT_LEASE_FENCE_MAX
//  (as gt_leases_restore_lease for a lease's).
gt_code_t gt_leases_restore_object (gt_leases_t *self, const char *object_id, uint64_t fence,
                                    uint64_t pending_at, gt_reason_t reason, const char *last_lease_id,
                                    char *err, size_t err_size);
//  Fences handed out to objects no longer known start above this.
//  INVALID_ARGUMENT, changing nothing, beyond GT_LEASE_FENCE_MAX + 1.
gt_code_t gt_leases_restore_fence_floor (gt_leases_t *self, uint64_t floor, char *err, size_t err_size);

//  Handing shards over (docs/CLUSTER.md): another broker loads them from
//  the store.
//  Forget every lease, object, pending reclaim and cleanup of the shards in the bitmap
//  (bit s % 8 of byte s / 8): as if never loaded.  No hook is called, nothing is journaled;
//  timers are cancelled, figures (active leases/objects, per-service counts for quotas, the
//  census by type and service) go down as if they had never been there.  The fence floor stays
//  (it rises above the forgotten objects' fences: a fence is never handed out twice here).
//  Returns the number of leases forgotten.  Must not be called while journaling has unmarked
//  changes of those shards pending (the caller makes sure their batches are durable); changes
//  of other shards may be pending: a rollback of them brings nothing forgotten back.
size_t gt_leases_forget_shards (gt_leases_t *self, const uint8_t shards [GT_SHARD_COUNT / 8]);

#ifdef __cplusplus
}
#endif
#endif

/*  gt_pgload.h — recovery: read the PostgreSQL store back at start-up.

    One REPEATABLE READ snapshot, four binary COPY ... TO STDOUT streams
    (leases in the table's physical order, then objects, then the newest
    events by seq, then the outbox by job id) parsed as they arrive: no
    per-row round trips, no per-row PGresult.  Leases are not sorted by
    the server: an ORDER BY created_at sorted every row before sending the
    first (0.7 s of the server at a million, and the broker idle
    meanwhile); the broker orders them itself, once, in memory.  Each row is handed to a callback as
    the structs the broker already uses; their strings are only valid during
    the call (copy what you keep, e.g. with gt_lease_info_copy).  Lease rows
    are read GT_PGLOAD_AHEAD ahead of the one handed over, and each is
    announced (on_lease_ahead) as it is read: at a million leases, restoring
    one waited mostly for two cache misses (its slots in the id and object
    tables), which the announcement lets the broker start early.

    Deadlines come back as stored: absolute wall-clock ms.  The broker turns
    each ACTIVE lease's expires_at into a monotonic deadline
    (now_mono + expires_at - now_wall); a lease already past its deadline is
    due at once, and is expired by the broker's normal path (so its
    lease.expired event is written and published like any other).  */
#ifndef GT_PGLOAD_H_INCLUDED
#define GT_PGLOAD_H_INCLUDED

#include "gt_pgbatch.h"

#ifdef __cplusplus
extern "C" {
#endif

//  Rows read ahead of the one handed over (see on_lease_ahead)
#define GT_PGLOAD_AHEAD     8

typedef struct {
    bool ended_leases;              //  also load RELEASED/EXPIRED leases (still retained)
    uint64_t event_history;         //  load up to this many newest events (0: none)
    //  Callbacks (each may be NULL); return 0 to go on, -1 to stop the load
    int (*on_lease) (void *arg, const gt_lease_info_t *lease, const char *idempotency_key);
    //  Before the first on_lease: how many leases will come (counted in
    //  the load's snapshot, so exact)
    int (*on_lease_count) (void *arg, uint64_t leases);
    //  A hint, GT_PGLOAD_AHEAD rows before the lease's on_lease: its id
    //  (16 bytes) and object id (object_id_len bytes, not NUL-terminated),
    //  as stored (not yet checked: on_lease may still refuse the row)
    void (*on_lease_ahead) (void *arg, const uint8_t id [16], const char *object_id, size_t object_id_len);
    int (*on_object) (void *arg, const gt_pgobject_t *object);
    int (*on_event) (void *arg, uint64_t seq, gt_event_kind_t kind, uint64_t at,
                     const char *topic, const void *body, size_t body_len);
    void *arg;                      //  passed to every callback
    //  Outbox rows (gt_callbacks), after every lease; may be NULL
    int (*on_callback) (void *arg, const gt_pgcallback_t *callback);
    //  Cluster mode (GTLP.md §14.1): load only these shards (a bitmap of
    //  GT_SHARD_COUNT bits), their events from gt_shard_events (the newest
    //  event_history / 256, at least 100, of each) to on_shard_event, and
    //  each shard's newest seq to on_shard_seq; fence_counter is then the
    //  largest of every shard's.  NULL: single mode, everything.
    const uint8_t *shards;
    int (*on_shard_event) (void *arg, unsigned shard, uint64_t seq, const char *topic,
                           const void *body, size_t body_len);
    int (*on_shard_seq) (void *arg, unsigned shard, uint64_t last_seq);
} gt_pgload_options_t;

typedef struct {
    uint64_t last_seq;              //  newest event seq ever written (continue after it)
    uint64_t fence_counter;         //  largest fence ever handed out (continue after it)
    uint64_t leases;                //  leases delivered
    uint64_t objects;               //  objects delivered
    uint64_t events;                //  events delivered, by ascending seq
    uint64_t callbacks;             //  outbox rows delivered, by ascending job id
} gt_pgload_result_t;

//  Load the store (the schema must be migrated).  Returns 0, or -1 with a
//  message in err (a callback stopped it, the server failed, or a stored
//  row is not a valid lease; the transaction is then rolled back).
int gt_pgload (PGconn *conn, const gt_pgload_options_t *options,
               gt_pgload_result_t *result, char *err, size_t err_size);

//  The loader's decoder of the metadata column alone (for the selftest):
//  value as binary COPY sends it (jsonb: a version byte, then the JSON text
//  of an object of strings).  True with its entries in metadata, in one
//  block the caller frees (free (metadata->entries); NULL when empty), or
//  false when it is not such an object.
bool gt_pgload_metadata (const char *value, size_t length, gt_meta_t *metadata);

#ifdef __cplusplus
}
#endif
#endif

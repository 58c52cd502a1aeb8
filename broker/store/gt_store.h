/*  gt_store.h — where the broker makes its changes durable (the seam for
    the PostgreSQL store).

    The broker records every mutation of a loop turn into the store (lease
    put/delete, object put/delete, event append), then calls
    gt_store_flush to close that batch.  A synchronous store (memory)
    answers GT_STORE_DONE at once.  An asynchronous store (PostgreSQL: a
    writer actor) answers GT_STORE_PENDING and later makes its completion
    socket readable; the broker then calls gt_store_completion to learn
    which batch finished and whether it is durable.

    What the broker does with it (gt_broker.c):
    * Replies and events of a batch are held until the batch is durable;
      then the events are published (and enter the REPLAY history) and the
      replies sent, batch after batch in flush order.
    * Requests keep being served meanwhile, on top of the in-memory state
      (which already includes the pending batches: pipelining).
    * If a batch fails, the broker undoes in memory every mutation since
      that batch began (gt_leases_rollback), answers all requests of that
      batch and of every later pending batch UNAVAILABLE, drops their events
      (their sequence numbers are reused), and expiries re-fire.

    Contract for asynchronous stores:
    * Batches complete in flush order (completion of N implies N-1 was
      reported before).
    * A failure of batch N fails every later batch already flushed: the
      store writes none of them (the broker has undone them).
    * Records passed to the put/event calls are borrowed: copy what you keep.

    Recovery: gt_store_recover hands what the store holds to a loader
    before the broker serves anything.

    Which store a configuration names, and opening it, is gt_storage.h's
    business (memory, postgres); this seam knows no implementation but the
    memory store.  Tests bring stores of their own (tests/gt_test_store.h)
    and drive them through two optional ops the broker passes on without
    knowing the store: control (the words of the STORE pipe command) and
    detachable (DETACH may hand the store over).  Production stores have
    neither.

    Cleanup callbacks (the outbox, optional ops): a reclaim records one
    callback_put per callback in the same batch as the reclaim itself, so a
    durable reclaim implies a durable outbox row (one transaction).  Each
    attempt's outcome updates the row (callback_put again, same job_id); a
    DEAD callback stays; a delivered one is deleted (callback_delete), and
    its lease record, put in the same batch, carries cleanup_status
    DELIVERED.  On recovery the loader's callback gets every row: PENDING
    rows are delivered again (same Idempotency-Key), DEAD ones restored as
    dead letters.  Delivery is at least once: a failed batch may lose an
    update, and a row may be resent after a restart.  */
#ifndef GT_STORE_H_INCLUDED
#define GT_STORE_H_INCLUDED

#include <czmq.h>
#include "gt_msg.h"
#include "gt_histogram.h"
#include "gt_shard_map.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct gt_store_t gt_store_t;

//  An object's record: the fence of its current (or last) life, whether
//  that life is open, and a reclaim waiting out the grace period.
typedef struct {
    const char *object_id;          //  the object
    uint64_t fence;                 //  fencing token of its current or last life
    bool live;                      //  life open: >= 1 active lease, or reclaim pending
    uint64_t pending_at;            //  wall ms of a pending reclaim, 0 if none
    gt_reason_t reason;             //  why its last lease ended (pending reclaim)
    const char *last_lease_id;      //  the lease that ended last (pending reclaim), or NULL
} gt_store_object_t;

//  One cleanup callback of the outbox.  Strings are borrowed.
typedef struct {
    uint64_t job_id;                //  the broker's id of the callback (> 0, unique in the store)
    const char *lease_id;           //  the lease whose cleanup URL is called
    const char *url;                //  the endpoint
    const char *body;               //  stored body (gt_callback_job_body): compact JSON without "attempt"
    uint32_t max_retries;           //  retries after the first attempt
    uint32_t retry_delay_ms;        //  backoff base
    uint32_t attempts;              //  attempts made so far
    gt_cleanup_status_t status;     //  GT_CLEANUP_PENDING or GT_CLEANUP_DEAD
    uint64_t next_at;               //  PENDING: wall ms of the next attempt, 0 = at once
    const char *last_error;         //  last attempt's error, "" if none
    unsigned shard;                 //  its object's shard (gt_shard_of)
} gt_store_callback_t;

typedef enum {
    GT_STORE_DONE = 0,              //  the batch is durable
    GT_STORE_PENDING,               //  completion comes later (completion socket)
    GT_STORE_FAILED                 //  the batch could not be made durable
} gt_store_status_t;

//  What a store measures of its own commits (each store its own: two
//  brokers in one process do not mix their figures).
typedef struct {
    gt_histogram_t batch_size;      //  records per commit
    gt_histogram_t commit_us;       //  us from submission to the commit's completion
} gt_store_figures_t;

//  Receives what a store recovers.  Leases come in any order (a store
//  reads them as they lie; the broker sorts its creation order once,
//  gt_leases_restore_end), objects after every lease.
typedef struct {
    void *ctx;                      //  passed back
    void (*lease) (void *ctx, const gt_lease_info_t *lease, const char *idempotency_key);
    void (*object) (void *ctx, const gt_store_object_t *object);
    void (*event) (void *ctx, uint64_t seq, const char *topic, const void *body, size_t size);
    //  The newest event seq and the largest fence ever handed out
    void (*counters) (void *ctx, uint64_t last_seq, uint64_t fence_counter);
    //  An outbox row (after every lease); may be NULL
    void (*callback) (void *ctx, const gt_store_callback_t *callback);
    //  Cluster mode (GTLP.md §14.4), instead of event and of counters'
    //  last_seq: a stored event of a shard (in seq order within it), and a
    //  shard's newest seq; may be NULL
    void (*shard_event) (void *ctx, unsigned shard, uint64_t seq, const char *topic,
                         const void *body, size_t size);
    void (*shard_seq) (void *ctx, unsigned shard, uint64_t last_seq);
    //  Before the leases: how many will come (a hint, to size the tables
    //  once); may be NULL, and a store may not call it
    void (*expect) (void *ctx, uint64_t leases);
    //  A hint, a few leases before lease () gets it: the lease with this
    //  id (16 bytes), on the object with this id (object_id_len bytes, not
    //  NUL-terminated), comes soon; may be NULL, and a store may not call it
    void (*lease_ahead) (void *ctx, const uint8_t id [16], const char *object_id, size_t object_id_len);
} gt_store_loader_t;

//  An implementation.  Any recording op may be NULL when the store keeps
//  nothing (then the broker does not even build the records).
typedef struct {
    const char *name;               //  "memory", "postgres": HEALTH's "store"
    void (*destroy) (void *impl);
    int (*recover) (void *impl, const gt_store_loader_t *loader, char *err, size_t err_size);
    void (*lease_put) (void *impl, const gt_lease_info_t *lease, const char *idempotency_key);
    //  A lease just created: no put of it came before (optional: else
    //  lease_put; a store may write it more cheaply, without looking for it)
    void (*lease_create) (void *impl, const gt_lease_info_t *lease, const char *idempotency_key);
    void (*lease_delete) (void *impl, const char *lease_id, unsigned shard);
    void (*object_put) (void *impl, const gt_store_object_t *object);
    void (*object_delete) (void *impl, const char *object_id, uint64_t fence);
    void (*event) (void *impl, unsigned shard, uint64_t seq, gt_event_kind_t kind, uint64_t at,
                   const char *topic, const void *body, size_t size);
    //  Close the batch recorded since the previous flush, as number batch
    gt_store_status_t (*flush) (void *impl, uint64_t batch);
    //  Asynchronous stores: socket that becomes readable on completions
    zsock_t *(*completion_sock) (void *impl);
    //  Read one completion (after the socket was readable): 0, or -1 if none
    int (*completion) (void *impl, uint64_t *batch_p, bool *durable_p);
    //  False while the store cannot write (HEALTH store_status DEGRADED)
    bool (*healthy) (void *impl);
    //  Outbox (optional, both or neither): insert or replace the row of
    //  callback->job_id / delete it
    void (*callback_put) (void *impl, const gt_store_callback_t *callback);
    void (*callback_delete) (void *impl, uint64_t job_id, unsigned shard);
    //  Copy the store's figures (optional: a store that measures nothing)
    void (*figures) (void *impl, gt_store_figures_t *figures);
    //  A command for the store (optional; test stores): argv [0 .. argc-1]
    //  are the words after STORE of the broker's pipe command.  Returns a
    //  value >= 0 when done, -1 when refused.  Runs on the broker's thread.
    int (*control) (void *impl, int argc, const char *argv []);
    //  True if the broker may hand the store over (DETACH; test stores):
    //  the store keeps what it made durable, for another broker to recover
    bool detachable;
    //  Ownership (a store several brokers share: PostgreSQL; optional, all
    //  three or none; docs/CLUSTER.md).  fenced: true while the broker must
    //  not act on what it holds (its ownership may have run out: it is
    //  renewed, or lost); healthy is then false too.  ownership_sock: a
    //  socket readable when ownership news arrive; ownership_read reads
    //  them and returns false once the broker lost its shards to another
    //  broker, which serves them now: the broker must stop at once.
    //  shard_map (optional, with the three): the latest view of who owns
    //  which shard (GTLP.md §14.2), owned by the store and valid until the
    //  next ownership_read; NULL while it has none yet.
    bool (*fenced) (void *impl);
    zsock_t *(*ownership_sock) (void *impl);
    bool (*ownership_read) (void *impl);
    const gt_shard_map_t *(*shard_map) (void *impl);
    //  advertise (optional): where this broker now takes requests (events:
    //  false) or publishes (events: true), to record for the shard map;
    //  the broker calls it after each bind.  A store told the endpoints by
    //  its settings (GC_ADVERTISE_*) keeps those.
    void (*advertise) (void *impl, bool events, const char *endpoint);
    //  Cluster mode (optional, all four or none; GTLP.md §14.1).  owns:
    //  true while the broker serves shard (loaded, not being handed over).
    //  ownership_pending: shards were acquired and wait to be loaded, or
    //  are to be handed over.  The broker then takes no request and fires
    //  no timer until nothing is in flight, and calls ownership_apply at
    //  that quiet point: the store loads the acquired shards through loader
    //  (the broker journals nothing meanwhile) and names in forget (a
    //  bitmap, GT_SHARD_COUNT bits) the shards to hand over; 0, or -1 with
    //  err (try again later).  The broker forgets those shards and calls
    //  handed_over, which gives them up in the store.
    bool (*owns) (void *impl, unsigned shard);
    bool (*ownership_pending) (void *impl);
    int (*ownership_apply) (void *impl, const gt_store_loader_t *loader, uint8_t *forget,
                            char *err, size_t err_size);
    void (*handed_over) (void *impl, const uint8_t *shards);
} gt_store_ops_t;

//  Wrap an implementation (ops copied; impl owned: destroyed with the store).
gt_store_t *gt_store_new (const gt_store_ops_t *ops, void *impl);
//  The memory store: keeps nothing, every batch durable at once.
gt_store_t *gt_store_memory_new (void);
void gt_store_destroy (gt_store_t **self_p);

const char *gt_store_name (gt_store_t *self);
//  True if the store wants records (lease/object/event ops present).
bool gt_store_records (gt_store_t *self);
//  True if flushes may complete later or fail (the broker then journals).
bool gt_store_async (gt_store_t *self);
bool gt_store_healthy (gt_store_t *self);
//  The store's figures; empty histograms if it measures nothing.
void gt_store_figures (gt_store_t *self, gt_store_figures_t *figures);

void gt_store_lease_put (gt_store_t *self, const gt_lease_info_t *lease, const char *idempotency_key);
//  The lease was just created (CREATE): never put before.
void gt_store_lease_create (gt_store_t *self, const gt_lease_info_t *lease, const char *idempotency_key);
//  shard: the lease's object's (gt_shard_of), for stores that fence by shard
void gt_store_lease_delete (gt_store_t *self, const char *lease_id, unsigned shard);
void gt_store_object_put (gt_store_t *self, const gt_store_object_t *object);
void gt_store_object_delete (gt_store_t *self, const char *object_id, uint64_t fence);
void gt_store_event (gt_store_t *self, unsigned shard, uint64_t seq, gt_event_kind_t kind, uint64_t at,
                     const char *topic, const void *body, size_t size);
//  True if the store keeps an outbox (callback ops present)
bool gt_store_outbox (gt_store_t *self);
void gt_store_callback_put (gt_store_t *self, const gt_store_callback_t *callback);
void gt_store_callback_delete (gt_store_t *self, uint64_t job_id, unsigned shard);
gt_store_status_t gt_store_flush (gt_store_t *self, uint64_t batch);
zsock_t *gt_store_completion_sock (gt_store_t *self);
int gt_store_completion (gt_store_t *self, uint64_t *batch_p, bool *durable_p);
int gt_store_recover (gt_store_t *self, const gt_store_loader_t *loader, char *err, size_t err_size);
//  Pass a command to the store (the control op); -1 if it has none or
//  refuses, else what the store answered (>= 0).
int gt_store_control (gt_store_t *self, int argc, const char *argv []);
//  True if the store may be handed over (DETACH).
bool gt_store_detachable (gt_store_t *self);
//  Ownership (see the ops): false / NULL / true for stores without it.
bool gt_store_fenced (gt_store_t *self);
zsock_t *gt_store_ownership_sock (gt_store_t *self);
bool gt_store_ownership_read (gt_store_t *self);
//  The store's shard map (see the ops), or NULL: a store without
//  ownership, or none read yet (the broker then answers MAP for itself).
const gt_shard_map_t *gt_store_shard_map (gt_store_t *self);
//  Tell the store a bound endpoint (see the ops); nothing without the op.
void gt_store_advertise (gt_store_t *self, bool events, const char *endpoint);
//  Cluster mode (see the ops): a store without them owns every shard and
//  has nothing pending.
bool gt_store_owns (gt_store_t *self, unsigned shard);
bool gt_store_ownership_pending (gt_store_t *self);
int gt_store_ownership_apply (gt_store_t *self, const gt_store_loader_t *loader, uint8_t *forget,
                              char *err, size_t err_size);
void gt_store_handed_over (gt_store_t *self, const uint8_t *shards);

#ifdef __cplusplus
}
#endif
#endif

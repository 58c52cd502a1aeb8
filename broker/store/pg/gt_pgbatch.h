/*  gt_pgbatch.h — one group of changes for the PostgreSQL store.

    The broker records what a loop turn changed into a batch and hands it
    to the writer (gt_pgwriter_submit), which commits it, possibly together
    with other batches, as ONE transaction of a handful of multi-row
    statements.  Recording is cheap and happens on the broker thread: each
    call encodes its row at once (nothing the caller passes is kept), so the
    caller may change or free its data right after.

    Collapsing: per lease id (and per object id) only the LAST operation of a
    batch is written — three puts of a lease write the third; put then
    delete deletes; delete then put writes the put.  Merging batches keeps
    the same rule across them, in submission order.  Writes are idempotent
    when sent with upsert (upserts, deletes, events upserted by seq so a
    seq written again after a rollback keeps the later body, meta counters
    only move forward), so re-applying a batch is harmless.  Without it,
    which is the common case, new leases (gt_pgbatch_lease_create, and any
    later put of them in the same transaction) and events go in by plain
    INSERT: about a third cheaper a row than ON CONFLICT, and right as long
    as no earlier transaction could have written those keys (the writer
    knows when one might have: gt_pgwriter.h).

    Fencing (several brokers, docs/CLUSTER.md): every row is written with
    its shard (gt_shard_of of its object id), and the batch remembers which
    shards it writes.  A batch given the epochs it was recorded under
    (gt_pgbatch_fence) starts its transaction with gt_prove_epochs over
    those shards (in single mode gt_prove_epoch_single over shard 0's row,
    which every acquisition there raises with the others:
    007_single_mode_proof.sql): it commits only if the broker still owns
    each of them at that epoch.  Merged batches recorded under different
    epochs prove none.  A batch never fenced proves nothing (the writer's own
    selftests).

    Tables and columns: broker/store/pg/migrations/001_initial.sql and
    002_callbacks.sql, 004_shards.sql.  */
#ifndef GT_PGBATCH_H_INCLUDED
#define GT_PGBATCH_H_INCLUDED

#include "gt_msg.h"
#include "gt_proto.h"
#include <libpq-fe.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct gt_pgbatch_t gt_pgbatch_t;

//  An epoch no shard ever has: a shard claimed under it never proves
#define GT_PGBATCH_EPOCH_NONE   UINT64_MAX

//  An object row (gt_objects): the same fields as the broker's
//  gt_store_object_t.  Strings are borrowed by the calls that take one; the
//  loader hands out ones valid during its callback.
typedef struct {
    const char *object_id;          //  the object
    uint64_t fence;                 //  fencing token of its current or last life (GTLP.md §10.3)
    bool live;                      //  life open: >= 1 active lease, or reclaim pending
    uint64_t pending_at;            //  wall ms of a pending reclaim, 0 if none (stored NULL)
    gt_reason_t reason;             //  why its last lease ended; GT_REASON_NONE: stored NULL
    const char *last_lease_id;      //  the lease that ended last (pending reclaim), or NULL
} gt_pgobject_t;

//  An outbox row (gt_callbacks, migration 002): the same fields as the
//  broker's gt_store_callback_t.  Strings are borrowed.
typedef struct {
    uint64_t job_id;                //  the broker's id of the callback (> 0)
    const char *lease_id;           //  32 lowercase hex, or NULL / "" when unknown (stored NULL)
    const char *url;                //  the endpoint
    const char *body;               //  stored request body
    uint32_t max_retries;           //  retries after the first attempt
    uint32_t retry_delay_ms;        //  backoff base
    uint32_t attempts;              //  attempts made so far
    gt_cleanup_status_t status;     //  GT_CLEANUP_PENDING or GT_CLEANUP_DEAD
    uint64_t next_at;               //  wall ms of the next attempt; 0 = at once (stored NULL)
    const char *last_error;         //  last attempt's error, "" or NULL if none
    unsigned shard;                 //  its object's shard (gt_shard_of)
} gt_pgcallback_t;

//  Create an empty batch.
gt_pgbatch_t *gt_pgbatch_new (void);
//  Create an empty batch with room for as many operations and bytes as
//  other holds (rounded up to powers of two): a store that records about
//  as much in each batch as in the last then grows nothing while recording.
gt_pgbatch_t *gt_pgbatch_new_like (const gt_pgbatch_t *other);
//  Destroy; nulls the pointer.
void gt_pgbatch_destroy (gt_pgbatch_t **self_p);

//  Insert or replace the whole lease row (the state after the change),
//  its callback state (cleanup_status, _attempts, _error) included.
//  idempotency_key is the CREATE key, or NULL.
void gt_pgbatch_lease_put (gt_pgbatch_t *self, const gt_lease_info_t *lease,
                           const char *idempotency_key);
//  The same for a lease just created: no transaction wrote its id before,
//  so (unless sent with upsert) it goes in by plain INSERT.
void gt_pgbatch_lease_create (gt_pgbatch_t *self, const gt_lease_info_t *lease,
                              const char *idempotency_key);
//  Forget a lease (retention over).  lease_id: 32 lowercase hex; shard:
//  its object's.
void gt_pgbatch_lease_delete (gt_pgbatch_t *self, const char *lease_id, unsigned shard);
//  Insert or replace an object row.
void gt_pgbatch_object_put (gt_pgbatch_t *self, const gt_pgobject_t *object);
//  Forget an object.
void gt_pgbatch_object_delete (gt_pgbatch_t *self, const char *object_id);
//  Append a published event: its lease's shard, its seq, kind, time, topic
//  frame and the encoded EVENT body (GTLP.md §6), stored as is for REPLAY
//  after a restart.
void gt_pgbatch_event (gt_pgbatch_t *self, unsigned shard, uint64_t seq, gt_event_kind_t kind,
                       uint64_t at, const char *topic, const void *body, size_t body_len);
//  Insert or replace an outbox row (keyed by job_id; collapsed like leases).
void gt_pgbatch_callback_put (gt_pgbatch_t *self, const gt_pgcallback_t *callback);
//  Forget an outbox row (delivered); shard: its object's.
void gt_pgbatch_callback_delete (gt_pgbatch_t *self, uint64_t job_id, unsigned shard);
//  Forget events with from_seq <= seq < below_seq (history past
//  GC_EVENT_HISTORY).  Several calls keep the widest range.  The range
//  starts where the previous prune ended (0 after a restart) so that the
//  delete walks only the rows it removes: an open-ended `seq < below` made
//  PostgreSQL's generic plan visit every dead row of earlier prunes until
//  a vacuum, a cost that grew with each prune.
void gt_pgbatch_events_prune (gt_pgbatch_t *self, uint64_t from_seq, uint64_t below_seq);
//  Cluster mode: keep the newest `keep` events of each shard the batch
//  writes, delete the older ones.
void gt_pgbatch_events_prune_shards (gt_pgbatch_t *self, uint64_t keep);
//  Record the counters: newest event seq and largest fence handed out.
//  The stored values never go backwards.
void gt_pgbatch_meta (gt_pgbatch_t *self, uint64_t last_seq, uint64_t fence_counter);

//  The epochs (one per shard) the broker held when it recorded the batch:
//  the transaction proves those of the shards it writes.  Copied.
void gt_pgbatch_fence (gt_pgbatch_t *self, const uint64_t *epochs);

//  Rows the batch will write after collapsing (puts + deletes + events +
//  outbox rows, plus one each for a prune and the meta row).
size_t gt_pgbatch_size (gt_pgbatch_t *self);
//  Bytes of its encoded rows (what its statements' parameters are cut
//  from): the writer bounds a merged transaction by them too.
size_t gt_pgbatch_bytes (gt_pgbatch_t *self);
//  True when the batch writes nothing.
bool gt_pgbatch_empty (gt_pgbatch_t *self);

//  For the writer ----------------------------------------------------------

//  Append other's operations to self, as if recorded after self's own
//  (collapsing across both); destroys other.
void gt_pgbatch_merge (gt_pgbatch_t *self, gt_pgbatch_t **other_p);
//  The OIDs of the row types (008_row_types.sql) in one database: a put
//  statement's parameter is a binary array of records, which names its
//  element type.  0: not known.
typedef struct {
    Oid lease;                      //  gt_lease_row
    Oid object;                     //  gt_object_row
    Oid event;                      //  gt_event_row
    Oid callback;                   //  gt_callback_row
} gt_pgbatch_row_types_t;

//  Prepare the batch statements on a fresh connection in pipeline mode
//  (queued, not synced), and queue the query of the row types, whose
//  result the caller passes to gt_pgbatch_row_types_read.  Returns the
//  number of results to expect, -1 if libpq refused (connection broken).
int gt_pgbatch_prepare (PGconn *conn);
//  If result is the answer to gt_pgbatch_prepare's query of the row types,
//  fill types from it and return true; else false (any other result).
bool gt_pgbatch_row_types_read (const PGresult *result, gt_pgbatch_row_types_t *types);
//  Queue the batch's statements on a connection in pipeline mode on which
//  gt_pgbatch_prepare ran, with the row types read there (not synced: the
//  caller adds PQpipelineSync, so they commit as one implicit transaction).  The last statement stores
//  token in gt_meta.commit_token (reading it back after a lost answer says
//  whether the transaction committed).  after_token, if not 0, is the
//  token of the transaction sent just before on the same connection: a
//  first statement then fails this one unless that one committed.  A
//  fenced batch then proves, as broker_id, the epochs of the shards it
//  writes (gt_prove_epochs; unless cluster, gt_prove_epoch_single:
//  SQLSTATE GTF01 if one is lost); broker_id NULL
//  proves nothing.  cluster (GTLP.md §14.1; 005_cluster.sql): the token
//  is the broker's (gt_commit_tokens, broker_id required), events go to
//  gt_shard_events and the counters to the touched shards'
//  gt_shard_counters rows; else gt_events and gt_meta.  upsert: every row
//  by upsert (a key may exist: see the top); else new leases and events by
//  plain INSERT, which fails the transaction (SQLSTATE 23505) if one does.
//  Returns the number of statements queued, -1 if libpq refused.
int gt_pgbatch_send (gt_pgbatch_t *self, PGconn *conn, const gt_pgbatch_row_types_t *row_types,
                     uint64_t token, uint64_t after_token, const char *broker_id, bool cluster,
                     bool upsert);

#ifdef __cplusplus
}
#endif
#endif

/*  gt_broker_delivery.h — the broker's side of cleanup callbacks: from a
    reclaim to the delivery engine (gt_delivery.h) and back, dead letters,
    RETRY, and the store's outbox.  Runs in the broker actor's thread with
    the lease engine and the store it is attached to, and writes into the
    broker's batch of the turn through the turn function it was given; the
    HTTP work happens in the engine's own thread, so the broker loop never
    blocks.

    Life of a callback (GTLP.md §10.2, CALLBACKS.md):
    * The lease engine's callback hook (once per distinct URL of a reclaimed
      object) makes a job with gt_callback_job_from_lease (seq = that of the
      object.reclaimed event just made), marks the lease PENDING and records
      the outbox row (gt_store_callback_put) in the reclaim's batch.
    * When that batch is durable, the job is submitted.  A full engine
      (GC_CALLBACK_MAX_PENDING) dead-letters it at once: "delivery queue full".
    * Outcomes are read from the engine's socket every loop turn: each
      ATTEMPT updates the lease's cleanup_attempts / cleanup_error and the
      row; DELIVERED deletes the row; DEAD keeps it as a dead letter.
    * RETRY resubmits a dead letter (attempts from 0, same Idempotency-Key)
      once the RETRY's batch is durable.
    * A failed batch drops the callbacks it created, puts RETRYs back to
      DEAD, and records again the outcome updates it lost.
    * Recovery: PENDING rows are submitted again with their attempts and
      remaining backoff; DEAD rows become dead letters again.
    * Handing shards over: their callbacks are forgotten here and cancelled
      in the engine; their next owner delivers them from the outbox.  */
#ifndef GT_BROKER_DELIVERY_H_INCLUDED
#define GT_BROKER_DELIVERY_H_INCLUDED

#include <czmq.h>
#include "gt_config.h"
#include "gt_store.h"
#include "gt_leases.h"

typedef struct _gt_broker_delivery_t gt_broker_delivery_t;

//  Counters for STATS (GTLP.md §5.8)
typedef struct {
    uint64_t pending;               //  callbacks waiting or in delivery (gauge)
    uint64_t dead_letters;          //  callbacks dead-lettered now (gauge)
    uint64_t delivered;             //  callbacks delivered
    uint64_t dead;                  //  callbacks that went dead (each time)
    uint64_t attempts;              //  HTTP attempts made
    uint64_t failures;              //  attempts that failed
    uint64_t queue_full;            //  dead-lettered because the engine was full
    uint64_t retried;               //  dead letters resubmitted by RETRY
    uint64_t recovered;             //  pending callbacks resubmitted after a restart
} gt_broker_delivery_counters_t;

//  Settings come from config (copied); the engine starts on first use.
gt_broker_delivery_t *gt_broker_delivery_new (const gt_config_t *config);
void gt_broker_delivery_destroy (gt_broker_delivery_t **self_p);

//  The broker's batch of this turn (opened if needed) marked as holding
//  something to make durable: returns its id, and the seq of its newest
//  event in *last_seq_p (may be NULL).
typedef uint64_t (gt_broker_delivery_turn_fn) (void *ctx, uint64_t *last_seq_p);

//  Record an outbox row (insert or replace the row of row->job_id) / delete
//  one, in the broker's batch of this turn: the broker decides what goes
//  into a store batch, this module only asks.
typedef void (gt_broker_delivery_put_fn) (void *ctx, const gt_store_callback_t *row);
typedef void (gt_broker_delivery_delete_fn) (void *ctx, uint64_t job_id, unsigned shard);

//  What the broker lends: its batch of the turn and the outbox rows in it.
typedef struct {
    void *ctx;                              //  passed back
    gt_broker_delivery_turn_fn *turn;       //  the batch of this turn
    gt_broker_delivery_put_fn *put_row;     //  an outbox row into it
    gt_broker_delivery_delete_fn *delete_row;   //  an outbox row deleted in it
} gt_broker_delivery_batch_t;

//  Work with this lease engine and store (borrowed; store may be NULL: it
//  is only asked whether it keeps an outbox) and write through batch.
//  Before anything else.
//  The signing secret of a service's callbacks, or NULL for GC_CALLBACK_SECRET
//  (CURVE: the callback-secret of the service's certificate).
typedef const char *(gt_broker_delivery_secret_fn) (void *ctx, const char *service_id);
//  Ask fn for each callback's secret when it is handed to the engine (the
//  first time, after a RETRY, after a restart): the certificate of that
//  moment signs it.
void gt_broker_delivery_set_secrets (gt_broker_delivery_t *self, gt_broker_delivery_secret_fn *fn, void *ctx);

void gt_broker_delivery_attach (gt_broker_delivery_t *self, gt_leases_t *leases, gt_store_t *store,
                                const gt_broker_delivery_batch_t *batch);
//  The store changed (NULL: handed over, or lost at the start).
void gt_broker_delivery_set_store (gt_broker_delivery_t *self, gt_store_t *store);

//  The lease engine's callback hook: one callback of a reclaimed object.
void gt_broker_delivery_hook (gt_broker_delivery_t *self, const gt_lease_info_t *owner, gt_reason_t reason);
//  Recovery: one outbox row (after every lease was loaded).
void gt_broker_delivery_load (gt_broker_delivery_t *self, const gt_store_callback_t *row);
//  The callers below set the lease engine's clock to now first (the
//  broker's loop does): this module changes leases, never the clock.

//  Batches up to batch_id are durable: submit their callbacks.
void gt_broker_delivery_durable (gt_broker_delivery_t *self, uint64_t batch_id);
//  Batches from failed_id on were undone.
void gt_broker_delivery_failed (gt_broker_delivery_t *self, uint64_t failed_id);
//  Read the delivery engine's outcomes (never blocks).
void gt_broker_delivery_outcomes (gt_broker_delivery_t *self);
//  RETRY lease_id: GT_OK, or an error with a message.
gt_code_t gt_broker_delivery_retry (gt_broker_delivery_t *self, const char *lease_id, char *err, size_t err_size);

//  Stop the engine (requests in flight abandoned): the broker is handing
//  its store to another broker.
void gt_broker_delivery_stop (gt_broker_delivery_t *self);

//  Forget the callbacks of these shards: their records go, outcomes that arrive later for
//  them are ignored (no store row, no lease update), and nothing is retried for them.  An HTTP
//  call already under way may still complete (delivery is at least once; the next owner sends it again).
//  Shards are a bitmap (bit s % 8 of byte s / 8); the gauges (pending, dead letters) go down
//  as if the records had never been here; the engine drops their jobs (gt_delivery_cancel).
void gt_broker_delivery_forget_shards (gt_broker_delivery_t *self, const uint8_t shards [GT_SHARD_COUNT / 8]);

//  The engine's outcome socket to poll, or NULL while it is not running.
zsock_t *gt_broker_delivery_sock (gt_broker_delivery_t *self);

void gt_broker_delivery_counters (gt_broker_delivery_t *self, gt_broker_delivery_counters_t *counters);

#endif

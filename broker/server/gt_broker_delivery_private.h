/*  gt_broker_delivery_private.h — what gt_broker_delivery's selftest
    (tests/broker) reads beyond gt_broker_delivery.h.  Not installed, not
    for the broker.

    The module's records and its own state (the engine's settings, the
    indexes by job id and by lease id), and the functions that start the
    engine and add / forget a record, so that the test can check the
    settings taken from config, the engine started on first use, and the
    indexes without a broker.  */
#ifndef GT_BROKER_DELIVERY_PRIVATE_H_INCLUDED
#define GT_BROKER_DELIVERY_PRIVATE_H_INCLUDED

#include <czmq.h>
#include "gt_delivery.h"
#include "gt_broker_delivery.h"

#ifdef __cplusplus
extern "C" {
#endif

//  One callback the broker knows
typedef struct {
    uint64_t job_id;                //  the engine's handle, and the outbox row's key
    char lease_id [GT_LEASE_ID_LEN + 1];    //  the lease whose URL is called ("" if unknown)
    unsigned shard;                 //  its object's shard (what the store fences by)
    char *url;                      //  the endpoint
    char *body;                     //  stored body (without "attempt")
    uint32_t max_retries;           //  retries after the first attempt
    uint32_t retry_delay_ms;        //  backoff base
    uint32_t attempts;              //  attempts made
    uint32_t resume_delay_ms;       //  recovered: wait before the next attempt
    gt_cleanup_status_t status;     //  PENDING, or DEAD
    char *error;                    //  last error, or NULL
    gt_callback_job_t *job;         //  built, not yet submitted, or NULL
    uint64_t batch;                 //  batch that must be durable before submission; 0 = none
    bool fresh;                     //  made by that batch (a reclaim), not a RETRY
    uint32_t prev_attempts;         //  RETRY: attempts before it (restored if it fails)
    char *prev_error;               //  RETRY: error before it
    uint64_t written;               //  last batch an outcome update was recorded in
} s_callback_t;

struct _gt_broker_delivery_t {
    gt_delivery_config_t settings;  //  for the engine (secret points at our copy)
    char *secret;                   //  GC_CALLBACK_SECRET, or NULL
    gt_delivery_t *engine;          //  started on first submission
    bool engine_failed;             //  could not be started (logged once)
    bool stopped;                   //  the store is being handed over: submit nothing
    zhashx_t *by_job;               //  &job_id -> s_callback_t (owns the records)
    zhashx_t *by_lease;             //  lease id -> s_callback_t (borrowed)
    zlistx_t *waiting;              //  s_callback_t waiting for their batch, in batch order
    uint64_t job_counter;           //  last job id handed out, without its shard byte (id = counter << 8 | shard)
    gt_broker_delivery_counters_t counters;     //  for STATS
    gt_leases_t *leases;            //  the lease engine (borrowed), whose leases show the callbacks' state
    gt_store_t *store;              //  the store (borrowed), asked whether it keeps an outbox; or NULL
    gt_broker_delivery_batch_t batch;   //  the broker's batch of the turn, and the outbox rows in it
    gt_broker_delivery_secret_fn *secret_of;    //  a service's own signing secret, or NULL
    void *secret_ctx;               //  passed to secret_of
};

//  Start the engine if it is not running (and neither failed to start nor
//  was stopped): true if it runs.
bool gt_broker_delivery_engine (gt_broker_delivery_t *self);
//  Add a record to the indexes (it must have its job id and lease id).
void gt_broker_delivery_index (gt_broker_delivery_t *self, s_callback_t *record);
//  Forget a record (and free it).
void gt_broker_delivery_forget (gt_broker_delivery_t *self, s_callback_t *record);

#ifdef __cplusplus
}
#endif
#endif

/*  gt_delivery.h — the cleanup callback delivery engine (CALLBACKS.md).

    A zactor that owns a libcurl multi handle in its own thread, so the
    broker's loop never blocks on HTTP.  The broker submits jobs
    (gt_callback.h) and polls gt_delivery_sock for outcomes.

    Submission does not go through the actor pipe: jobs are appended to a
    mutex-guarded inbox and the actor is woken with curl_multi_wakeup.  So
    gt_delivery_submit never blocks, and the actor blocking on a full
    outcome pipe (the broker reading slowly) can never deadlock with the
    broker submitting.  The broker must read outcomes promptly: while the
    outcome pipe is full (1,000 messages) the actor stalls, and requests in
    flight may time out.

    Delivery, per job:
    * POST url, Content-Type: application/json, Idempotency-Key,
      X-GarbageTruck-Attempt, and with a secret X-GarbageTruck-Timestamp and
      X-GarbageTruck-Signature (v1=hex HMAC-SHA256(secret, ts "." body):
      gt_webhook_sign of the C SDK, the one the receivers verify with).
      The body is rendered per attempt ("attempt" changes); signed per attempt.
    * http and https only, redirects not followed (a 3xx fails at once),
      timeout_ms covers connect + request + response.
    * 2xx: DELIVERED.  5xx, 408, 429, timeouts and transport errors: retried
      after a random wait in [0, retry_delay_ms * 2^(n-1)] (n = attempt just
      made), capped at 5 minutes; for 429/503 a Retry-After (delta-seconds
      or HTTP-date, capped at 1 hour) is the minimum wait.  Any other status,
      or a URL curl cannot use (bad syntax, other scheme): DEAD at once.
    * A job always gets at least one attempt; it is retried while its total
      attempts (including those made before a restart, see
      gt_callback_job_set_attempts) are <= max_retries.  So a fresh job is
      DEAD after max_retries + 1 attempts.
    * Concurrency: at most max_concurrent requests in flight overall and
      max_per_host per endpoint (scheme-default-resolved host:port, host
      lowercased); an endpoint at its cap does not hold up other endpoints.
      Ready jobs of one endpoint go first in, first out.

    Outcomes, read from gt_delivery_sock (use gt_delivery_recv, or
    zsock_recv (sock, "s84i4s", ...)); every message has six frames:
        kind         string  "ATTEMPT", "DELIVERED" or "DEAD"
        job_id       uint64  (8 bytes, host order) the job's id
        attempt      uint32  ATTEMPT: the attempt number just made;
                             DELIVERED/DEAD: total attempts made
        http_status  int     decimal string; 0 when no HTTP response
                             (timeout, connection error)
        retry_in_ms  uint32  ATTEMPT that will be retried: wait before the
                             next attempt; else 0
        error        string  "" on success, else e.g. "HTTP 500" or curl's
                             message ("Connection refused ...")
    Each attempt yields one ATTEMPT; the last ATTEMPT of a job is followed
    by exactly one DELIVERED or DEAD, which repeats its status and error.
    After DELIVERED/DEAD the job is gone from the engine.  A cancelled job
    (gt_delivery_cancel) yields nothing more.

    Manual retry of a dead letter (gtctl retry): submit a new job for the
    same callback (gt_callback_job_load from the stored body, or rebuilt),
    attempts left at 0: it gets a fresh max_retries budget and attempt
    numbers restart at 1; the Idempotency-Key is unchanged.

    Durability: jobs live only in memory here.  On destroy, pending jobs are
    dropped without outcomes; a persistent broker re-submits them from its
    outbox after a restart (gt_callback_job_load + set_attempts).  */
#ifndef GT_DELIVERY_H_INCLUDED
#define GT_DELIVERY_H_INCLUDED

#include <czmq.h>
#include "gt_callback.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct _gt_delivery_t gt_delivery_t;

typedef struct {
    size_t max_concurrent;          //  requests in flight overall (256)
    size_t max_per_host;            //  requests in flight per endpoint (32)
    uint32_t timeout_ms;            //  per request, all included (GC_CLEANUP_TIMEOUT, 30 s)
    uint32_t max_retries;           //  default for jobs (GC_CLEANUP_MAX_RETRIES, 3)
    uint32_t retry_delay_ms;        //  default backoff base (GC_CLEANUP_RETRY_DELAY, 5 s)
    const char *secret;             //  GC_CALLBACK_SECRET; NULL or "" = unsigned (copied)
    size_t max_pending;             //  jobs accepted and not finished (100,000)
} gt_delivery_config_t;

typedef enum {
    GT_DELIVERY_ATTEMPT = 0,        //  one attempt was made
    GT_DELIVERY_DELIVERED,          //  the job succeeded
    GT_DELIVERY_DEAD                //  the job failed for good
} gt_delivery_kind_t;

//  One outcome message, decoded
typedef struct {
    gt_delivery_kind_t kind;        //  what happened
    uint64_t job_id;                //  the job
    uint32_t attempt;               //  attempt number / total attempts
    int http_status;                //  0 when no HTTP response
    uint32_t retry_in_ms;           //  ATTEMPT to be retried: wait before the next
    char *error;                    //  "" on success; owned, free with free()
} gt_delivery_outcome_t;

//  Fill config with the defaults above.
void
    gt_delivery_config_init (gt_delivery_config_t *config);

//  Start the engine; config NULL = defaults.  Values of 0 in max_concurrent,
//  max_per_host, timeout_ms or max_pending are taken as the defaults.
//  Returns NULL on failure (libcurl could not be initialised).
gt_delivery_t *
    gt_delivery_new (const gt_delivery_config_t *config);

//  Stop the engine: requests in flight are aborted, pending jobs dropped
//  (no outcomes).  Nulls the pointer.
void
    gt_delivery_destroy (gt_delivery_t **self_p);

//  The socket outcomes arrive on (poll it for ZMQ_POLLIN / add to a zloop).
zsock_t *
    gt_delivery_sock (gt_delivery_t *self);

//  Receive one outcome (blocks until one is there; poll first).  Returns 0,
//  or -1 if interrupted or the message is malformed.  Free outcome->error.
int
    gt_delivery_recv (gt_delivery_t *self, gt_delivery_outcome_t *outcome);

//  Hand a job over.  Returns 0 and nulls *job_p; or -1 when max_pending jobs
//  are already pending, leaving *job_p with the caller (refuse or retry later).
//  Never blocks.  Retry settings left at GT_CALLBACK_DEFAULT take the config's.
int
    gt_delivery_submit (gt_delivery_t *self, gt_callback_job_t **job_p);

//  Cancel jobs (their owner handed them over): a job waiting (not taken
//  yet, ready, or waiting out its backoff) is dropped, a job in flight ends
//  with that attempt, whatever its result; none is tried again and none
//  yields an outcome from now on (outcomes already sent are still to be
//  read).  Ids of jobs unknown or finished are ignored.  Never blocks; a
//  job submitted later with one of these ids is not affected.
void
    gt_delivery_cancel (gt_delivery_t *self, const uint64_t *job_ids, size_t count);

//  Jobs submitted and not yet DELIVERED, DEAD or cancelled (a cancelled job
//  in flight counts until its attempt ends).
size_t
    gt_delivery_pending (gt_delivery_t *self);

#ifdef __cplusplus
}
#endif
#endif

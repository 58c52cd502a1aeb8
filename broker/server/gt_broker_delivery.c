/*  gt_broker_delivery.c — the broker's side of cleanup callbacks (see
    gt_broker_delivery.h): the callback hook, submission once durable,
    outcomes, dead letters, RETRY, outbox rows and recovery.

    Every callback the broker knows is a record here, indexed by job id
    (outcomes) and by lease id (RETRY).  A delivered callback's record is
    dropped: the lease keeps its final state (cleanup_status DELIVERED).  */
#include <czmq.h>
#include "gt_broker.h"
#include "gt_leases.h"
#include "gt_events.h"
#include "gt_store.h"
#include "gt_delivery.h"
#include "gt_broker_delivery.h"
#include "gt_broker_delivery_private.h"
#include "gt_log.h"

//  Outcomes read per loop turn at most (the poller brings us back for more)
#define S_OUTCOMES_PER_TURN     2000

//  libcurl (with OpenSSL) and libsodium are initialised once per process.
//  Do it when the program loads, in the main thread: the thread that runs
//  curl_global_init keeps OpenSSL state for its lifetime, and a broker
//  actor's thread ends with the broker (LeakSanitizer reports it).
__attribute__ ((constructor)) static void
s_global_init (void)
{
    gt_callback_global_init ();
}

//  --------------------------------------------------------------------------
//  Records

static size_t
s_job_hash (const void *key)
{
    uint64_t value = *(const uint64_t *) key;
    value ^= value >> 33;
    value *= 0xff51afd7ed558ccdULL;
    value ^= value >> 33;
    return (size_t) value;
}

static int
s_job_compare (const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *) a, y = *(const uint64_t *) b;
    return x < y ? -1 : x > y;
}

static void
s_callback_destroy (s_callback_t **record_p)
{
    s_callback_t *record = *record_p;
    if (record) {
        gt_callback_job_destroy (&record->job);
        free (record->url);
        free (record->body);
        free (record->error);
        free (record->prev_error);
        free (record);
        *record_p = NULL;
    }
}

static void
s_set_error (char **field, const char *error)
{
    free (*field);
    *field = error && *error ? strdup (error) : NULL;
}

gt_broker_delivery_t *
gt_broker_delivery_new (const gt_config_t *config)
{
    assert (config);
    gt_broker_delivery_t *self = (gt_broker_delivery_t *) zmalloc (sizeof (gt_broker_delivery_t));
    assert (self);
    gt_delivery_config_init (&self->settings);
    self->settings.max_concurrent = (size_t) config->callback_concurrency;
    self->settings.max_per_host = (size_t) config->callback_per_host;
    self->settings.timeout_ms = config->cleanup_timeout_ms > UINT32_MAX ? UINT32_MAX
                              : (uint32_t) config->cleanup_timeout_ms;
    self->settings.max_retries = (uint32_t) config->cleanup_max_retries;
    self->settings.retry_delay_ms = (uint32_t) config->cleanup_retry_delay_ms;
    self->settings.max_pending = (size_t) config->callback_max_pending;
    if (config->callback_secret && *config->callback_secret)
        self->secret = strdup (config->callback_secret);
    self->settings.secret = self->secret;
    self->by_job = zhashx_new ();
    zhashx_set_key_hasher (self->by_job, s_job_hash);
    zhashx_set_key_comparator (self->by_job, s_job_compare);
    zhashx_set_key_duplicator (self->by_job, NULL);
    zhashx_set_key_destructor (self->by_job, NULL);
    zhashx_set_destructor (self->by_job, (zhashx_destructor_fn *) s_callback_destroy);
    self->by_lease = zhashx_new ();
    self->waiting = zlistx_new ();
    return self;
}

void
gt_broker_delivery_destroy (gt_broker_delivery_t **self_p)
{
    assert (self_p);
    gt_broker_delivery_t *self = *self_p;
    if (self) {
        gt_delivery_destroy (&self->engine);
        zlistx_destroy (&self->waiting);
        zhashx_destroy (&self->by_lease);
        zhashx_destroy (&self->by_job);
        if (self->secret)
            memset (self->secret, 0, strlen (self->secret));
        free (self->secret);
        free (self);
        *self_p = NULL;
    }
}

void
gt_broker_delivery_attach (gt_broker_delivery_t *self, gt_leases_t *leases, gt_store_t *store,
                           const gt_broker_delivery_batch_t *batch)
{
    assert (self && leases && batch && batch->turn && batch->put_row && batch->delete_row);
    self->leases = leases;
    self->store = store;
    self->batch = *batch;
}

void
gt_broker_delivery_set_store (gt_broker_delivery_t *self, gt_store_t *store)
{
    assert (self);
    self->store = store;
}

void
gt_broker_delivery_stop (gt_broker_delivery_t *self)
{
    assert (self);
    gt_delivery_destroy (&self->engine);
    self->stopped = true;           //  callbacks stay PENDING in the outbox
}

zsock_t *
gt_broker_delivery_sock (gt_broker_delivery_t *self)
{
    return self && self->engine ? gt_delivery_sock (self->engine) : NULL;
}

void
gt_broker_delivery_counters (gt_broker_delivery_t *self, gt_broker_delivery_counters_t *counters)
{
    assert (self && counters);
    *counters = self->counters;
}

//  Add a record to the indexes (it must have its job id and lease id).
void
gt_broker_delivery_index (gt_broker_delivery_t *self, s_callback_t *record)
{
    zhashx_insert (self->by_job, &record->job_id, record);
    if (*record->lease_id)
        zhashx_update (self->by_lease, record->lease_id, record);
}

//  Forget a record (and free it).
void
gt_broker_delivery_forget (gt_broker_delivery_t *self, s_callback_t *record)
{
    if (*record->lease_id && zhashx_lookup (self->by_lease, record->lease_id) == record)
        zhashx_delete (self->by_lease, record->lease_id);
    zhashx_delete (self->by_job, &record->job_id);
}

//  --------------------------------------------------------------------------
//  Outbox rows and lease state

//  Record the row's current state in the batch being built.
static void
s_put_row (gt_broker_delivery_t *self, s_callback_t *record, uint64_t next_at)
{
    if (!self->store || !gt_store_outbox (self->store))
        return;
    gt_store_callback_t row = {
        record->job_id, record->lease_id, record->url, record->body, record->max_retries,
        record->retry_delay_ms, record->attempts, record->status, next_at,
        record->error ? record->error : "", record->shard
    };
    record->written = self->batch.turn (self->batch.ctx, NULL);
    self->batch.put_row (self->batch.ctx, &row);
}

//  A fact from delivery: the lease shows it, and its record is rewritten
//  when the status changes (so that the store's lease record has it).
static void
s_lease_state (gt_broker_delivery_t *self, s_callback_t *record, gt_cleanup_status_t status, bool changed)
{
    if (!*record->lease_id)
        return;
    if (gt_leases_set_cleanup (self->leases, record->lease_id, status, record->attempts,
                               record->error, false)
    &&  changed)
        gt_leases_record (self->leases, record->lease_id);
}

//  The callback failed for good: keep it as a dead letter.
static void
s_dead_letter (gt_broker_delivery_t *self, s_callback_t *record, const char *error)
{
    if (record->status == GT_CLEANUP_PENDING && self->counters.pending > 0)
        self->counters.pending--;
    record->status = GT_CLEANUP_DEAD;
    s_set_error (&record->error, error);
    self->counters.dead++;
    self->counters.dead_letters++;
    s_lease_state (self, record, GT_CLEANUP_DEAD, true);
    s_put_row (self, record, 0);
    //  A full queue can dead-letter thousands at once: log the first few, then every 1000th
    if (self->counters.dead <= 10 || self->counters.dead % 1000 == 0)
        gt_log_warn ("broker", "cleanup callback of lease %s to %s dead-lettered after %u attempt(s): %s"
                     " (%" PRIu64 " so far)", *record->lease_id ? record->lease_id : "?", record->url,
                     record->attempts, error && *error ? error : "failed", self->counters.dead);
}

//  --------------------------------------------------------------------------
//  Submission

//  Start the engine if needed: true if it runs.
bool
gt_broker_delivery_engine (gt_broker_delivery_t *self)
{
    if (!self->engine && !self->engine_failed && !self->stopped) {
        self->engine = gt_delivery_new (&self->settings);
        if (!self->engine) {
            self->engine_failed = true;
            gt_log_error ("broker", "the cleanup delivery engine could not start (libcurl)");
        }
    }
    return self->engine != NULL;
}

//  Hand a record's job to the engine, or dead-letter it.
static void
s_submit (gt_broker_delivery_t *self, s_callback_t *record)
{
    if (self->stopped)
        return;                     //  another broker delivers it from the outbox
    gt_callback_job_t *job = record->job;
    record->job = NULL;
    if (!job) {
        job = gt_callback_job_load (record->job_id, record->url, record->body);
        if (job) {
            gt_callback_job_set_retry (job, record->max_retries, record->retry_delay_ms);
            gt_callback_job_set_attempts (job, record->attempts, record->resume_delay_ms);
        }
    }
    record->resume_delay_ms = 0;
    if (!job) {
        s_dead_letter (self, record, "stored callback body is not valid");
        return;
    }
    if (!gt_broker_delivery_engine (self)) {
        gt_callback_job_destroy (&job);
        s_dead_letter (self, record, "delivery engine unavailable");
        return;
    }
    if (self->secret_of) {
        char *service = gt_callback_job_service_id (job);
        gt_callback_job_set_secret (job, service ? self->secret_of (self->secret_ctx, service) : NULL);
        free (service);
    }
    if (gt_delivery_submit (self->engine, &job) != 0) {
        gt_callback_job_destroy (&job);
        self->counters.queue_full++;
        s_dead_letter (self, record, "delivery queue full");
    }
}

void
gt_broker_delivery_set_secrets (gt_broker_delivery_t *self, gt_broker_delivery_secret_fn *fn, void *ctx)
{
    assert (self);
    self->secret_of = fn;
    self->secret_ctx = ctx;
}

void
gt_broker_delivery_durable (gt_broker_delivery_t *self, uint64_t batch_id)
{
    s_callback_t *record;
    while ((record = (s_callback_t *) zlistx_first (self->waiting)) && record->batch <= batch_id) {
        zlistx_detach_cur (self->waiting);
        record->batch = 0;
        free (record->prev_error);
        record->prev_error = NULL;
        s_submit (self, record);
    }
}

void
gt_broker_delivery_failed (gt_broker_delivery_t *self, uint64_t failed_id)
{
    //  Callbacks of the undone batches: reclaims are gone, RETRYs undone
    //  (the lease engine has restored the leases' state itself)
    s_callback_t *record = (s_callback_t *) zlistx_last (self->waiting);
    while (record && record->batch >= failed_id) {
        zlistx_detach_cur (self->waiting);
        record->batch = 0;
        if (self->counters.pending > 0)
            self->counters.pending--;
        if (record->fresh)
            gt_broker_delivery_forget (self, record);
        else {
            self->counters.retried--;
            record->status = GT_CLEANUP_DEAD;
            record->attempts = record->prev_attempts;
            free (record->error);
            record->error = record->prev_error;
            record->prev_error = NULL;
            self->counters.dead_letters++;
        }
        record = (s_callback_t *) zlistx_last (self->waiting);
    }
    //  Outcome updates recorded in those batches were lost with them
    zlistx_t *rewrite = zlistx_new ();
    for (record = (s_callback_t *) zhashx_first (self->by_job); record;
         record = (s_callback_t *) zhashx_next (self->by_job))
        if (record->written >= failed_id && record->batch == 0)
            zlistx_add_end (rewrite, record);
    for (record = (s_callback_t *) zlistx_first (rewrite); record;
         record = (s_callback_t *) zlistx_next (rewrite))
        s_put_row (self, record, 0);
    zlistx_destroy (&rewrite);
}

//  --------------------------------------------------------------------------
//  The lease engine's callback hook: one callback of a reclaim

void
gt_broker_delivery_hook (gt_broker_delivery_t *self, const gt_lease_info_t *owner, gt_reason_t reason)
{
    //  The object.reclaimed event was made just before this call
    uint64_t seq = 0;
    uint64_t batch_id = self->batch.turn (self->batch.ctx, &seq);
    //  The shard in the low byte: brokers sharing a database (cluster
    //  mode) each write only their own shards' rows, so ids never collide
    unsigned shard = gt_shard_of (owner->object_id);
    uint64_t job_id = (++self->job_counter << 8) | shard;
    gt_callback_job_t *job = gt_callback_job_from_lease (job_id, owner, reason, seq);
    if (!job) {
        gt_log_error ("broker", "cannot build the cleanup callback of lease %s", owner->id);
        return;
    }
    gt_callback_job_apply_defaults (job, self->settings.max_retries, self->settings.retry_delay_ms);
    s_callback_t *record = (s_callback_t *) zmalloc (sizeof (s_callback_t));
    assert (record);
    record->job_id = job_id;
    record->shard = shard;
    if (owner->cleanup_status == GT_CLEANUP_PENDING)
        memcpy (record->lease_id, owner->id, sizeof (record->lease_id));
    record->url = strdup (gt_callback_job_url (job));
    record->body = strdup (gt_callback_job_body (job));
    record->max_retries = gt_callback_job_max_retries (job);
    record->retry_delay_ms = gt_callback_job_retry_delay (job);
    record->status = GT_CLEANUP_PENDING;
    record->job = job;
    record->batch = batch_id;
    record->fresh = true;
    gt_broker_delivery_index (self, record);
    zlistx_add_end (self->waiting, record);
    self->counters.pending++;
    s_put_row (self, record, 0);
    record->written = 0;            //  part of the reclaim: undone with it
}

//  --------------------------------------------------------------------------
//  RETRY

gt_code_t
gt_broker_delivery_retry (gt_broker_delivery_t *self, const char *lease_id, char *err, size_t err_size)
{
    s_callback_t *record = lease_id ? (s_callback_t *) zhashx_lookup (self->by_lease, lease_id) : NULL;
    if (!record || record->status != GT_CLEANUP_DEAD) {
        snprintf (err, err_size, "lease %s has no dead-lettered cleanup callback%s", lease_id,
                  record ? " (its callback is pending)" : "");
        return GT_ERR_INVALID_ARGUMENT;
    }
    uint64_t batch_id = self->batch.turn (self->batch.ctx, NULL);
    //  The lease shows the new attempt at once; undone with the batch
    if (!gt_leases_set_cleanup (self->leases, lease_id, GT_CLEANUP_PENDING, 0, NULL, true)) {
        snprintf (err, err_size, "lease %s has no cleanup", lease_id);
        return GT_ERR_INVALID_ARGUMENT;
    }
    gt_leases_record (self->leases, lease_id);
    record->prev_attempts = record->attempts;
    free (record->prev_error);
    record->prev_error = record->error;
    record->error = NULL;
    record->attempts = 0;
    record->status = GT_CLEANUP_PENDING;
    record->batch = batch_id;
    record->fresh = false;
    zlistx_add_end (self->waiting, record);
    self->counters.pending++;
    if (self->counters.dead_letters > 0)
        self->counters.dead_letters--;
    self->counters.retried++;
    s_put_row (self, record, 0);
    return GT_OK;
}

//  --------------------------------------------------------------------------
//  Outcomes

static void
s_outcome (gt_broker_delivery_t *self, const gt_delivery_outcome_t *outcome)
{
    uint64_t job_id = outcome->job_id;
    s_callback_t *record = (s_callback_t *) zhashx_lookup (self->by_job, &job_id);
    if (!record)
        return;                     //  not ours any more
    switch (outcome->kind) {
        case GT_DELIVERY_ATTEMPT: {
            bool failed = outcome->error && *outcome->error;
            self->counters.attempts++;
            record->attempts = outcome->attempt;
            s_set_error (&record->error, outcome->error);
            if (!failed)
                break;              //  DELIVERED follows at once
            self->counters.failures++;
            s_lease_state (self, record, GT_CLEANUP_PENDING, false);
            uint64_t next_at = (uint64_t) zclock_time () + outcome->retry_in_ms;
            s_put_row (self, record, next_at);
            break;
        }
        case GT_DELIVERY_DELIVERED:
            record->attempts = outcome->attempt;
            s_set_error (&record->error, NULL);
            record->status = GT_CLEANUP_DELIVERED;
            if (self->counters.pending > 0)
                self->counters.pending--;
            self->counters.delivered++;
            s_lease_state (self, record, GT_CLEANUP_DELIVERED, true);
            if (self->store && gt_store_outbox (self->store)) {
                self->batch.delete_row (self->batch.ctx, record->job_id, record->shard);
            }
            gt_broker_delivery_forget (self, record);
            break;
        case GT_DELIVERY_DEAD:
            record->attempts = outcome->attempt;
            s_dead_letter (self, record, outcome->error);
            break;
    }
}

void
gt_broker_delivery_outcomes (gt_broker_delivery_t *self)
{
    if (!self->engine || !self->store)
        return;
    zsock_t *sock = gt_delivery_sock (self->engine);
    for (size_t count = 0; count < S_OUTCOMES_PER_TURN && (zsock_events (sock) & ZMQ_POLLIN); count++) {
        gt_delivery_outcome_t outcome;
        if (gt_delivery_recv (self->engine, &outcome) != 0)
            break;
        s_outcome (self, &outcome);
        free (outcome.error);
    }
}

//  --------------------------------------------------------------------------
//  Handing shards over

static bool
s_shard_listed (const uint8_t *shards, unsigned shard)
{
    return shard < GT_SHARD_COUNT && ((shards [shard / 8] >> (shard % 8)) & 1);
}

void
gt_broker_delivery_forget_shards (gt_broker_delivery_t *self, const uint8_t shards [GT_SHARD_COUNT / 8])
{
    assert (self);
    assert (shards);
    //  Not submitted yet: their batch will find nothing to submit
    s_callback_t *record;
    for (record = (s_callback_t *) zlistx_first (self->waiting); record;
         record = (s_callback_t *) zlistx_next (self->waiting))
        if (s_shard_listed (shards, record->shard)) {
            zlistx_detach_cur (self->waiting);
            record->batch = 0;
        }
    //  Gathered first: forgetting a record changes the index being walked
    zlistx_t *gone = zlistx_new ();
    for (record = (s_callback_t *) zhashx_first (self->by_job); record;
         record = (s_callback_t *) zhashx_next (self->by_job))
        if (s_shard_listed (shards, record->shard))
            zlistx_add_end (gone, record);
    size_t count = zlistx_size (gone);
    uint64_t *jobs = count ? (uint64_t *) malloc (count * sizeof (uint64_t)) : NULL;
    assert (jobs || count == 0);
    size_t index = 0;
    for (record = (s_callback_t *) zlistx_first (gone); record;
         record = (s_callback_t *) zlistx_next (gone)) {
        //  The gauges go down as if the record had never been here
        if (record->status == GT_CLEANUP_PENDING && self->counters.pending > 0)
            self->counters.pending--;
        else
        if (record->status == GT_CLEANUP_DEAD && self->counters.dead_letters > 0)
            self->counters.dead_letters--;
        jobs [index++] = record->job_id;
        gt_broker_delivery_forget (self, record);
    }
    zlistx_destroy (&gone);
    //  The engine tries none of them again; later outcomes find no record
    if (self->engine && count)
        gt_delivery_cancel (self->engine, jobs, count);
    free (jobs);
}

//  --------------------------------------------------------------------------
//  Recovery: an outbox row

void
gt_broker_delivery_load (gt_broker_delivery_t *self, const gt_store_callback_t *row)
{
    if (!row->url || !row->body || (row->status != GT_CLEANUP_PENDING && row->status != GT_CLEANUP_DEAD)) {
        gt_log_warn ("broker", "recovery skipped outbox row %" PRIu64, row->job_id);
        return;
    }
    if (zhashx_lookup (self->by_job, &row->job_id)) {
        gt_log_warn ("broker", "outbox row %" PRIu64 " appears twice", row->job_id);
        return;
    }
    if ((row->job_id >> 8) > self->job_counter)
        self->job_counter = row->job_id >> 8;
    s_callback_t *record = (s_callback_t *) zmalloc (sizeof (s_callback_t));
    assert (record);
    record->job_id = row->job_id;
    record->shard = row->shard;
    if (row->lease_id && gt_lease_id_valid (row->lease_id))
        memcpy (record->lease_id, row->lease_id, sizeof (record->lease_id));
    record->url = strdup (row->url);
    record->body = strdup (row->body);
    record->max_retries = row->max_retries;
    record->retry_delay_ms = row->retry_delay_ms;
    record->attempts = row->attempts;
    record->status = row->status;
    s_set_error (&record->error, row->last_error);
    gt_broker_delivery_index (self, record);
    //  The lease shows the row's state (it may be newer than the lease record)
    if (*record->lease_id)
        gt_leases_set_cleanup (self->leases, record->lease_id, record->status, record->attempts,
                               record->error, false);
    if (record->status == GT_CLEANUP_DEAD) {
        self->counters.dead_letters++;
        return;
    }
    uint64_t now = (uint64_t) zclock_time ();
    uint64_t wait = row->next_at > now ? row->next_at - now : 0;
    record->resume_delay_ms = wait > UINT32_MAX ? UINT32_MAX : (uint32_t) wait;
    self->counters.pending++;
    self->counters.recovered++;
    s_submit (self, record);      //  durable already
}

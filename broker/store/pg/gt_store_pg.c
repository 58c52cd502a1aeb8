/*  gt_store_pg.c — the PostgreSQL store; the contract is in gt_store_pg.h.  */
#include <czmq.h>
#include "gt_store_pg.h"
#include "gt_pgschema.h"
#include "gt_pgbatch.h"
#include "gt_pgwriter.h"
#include "gt_pgload.h"
#include "gt_pgshards.h"
#include "gt_histogram.h"
#include "gt_log.h"

//  At most one log line about failed batches per this many ms
#define S_FAIL_LOG_MS       1000
//  A start-up connection idle this long while the broker waited for the
//  shards is made again before the load (s_reconnect_for_load)
#define S_IDLE_RECONNECT_MS 1000

//  A batch handed to the writer, until its COMMIT notice.
typedef struct {
    uint64_t number;                //  the writer's number
    uint64_t batch;                 //  the broker's batch id
    int64_t submitted_us;           //  zclock_usecs at submission (commit latency)
    size_t records;                 //  rows it writes
    zlistx_t *deleted;              //  object ids whose row it deletes (re-noted if it fails)
    uint64_t pruned_from;           //  its event prune starts here (UINT64_MAX: no prune)
} s_flight_t;

typedef struct {
    char *conninfo;                 //  DATABASE_URL as key=value, synchronous_commit forced on
    uint64_t event_history;         //  GC_EVENT_HISTORY: events kept (0: none stored)
    bool group_commit;              //  GC_DB_GROUP_COMMIT
    PGconn *conn;                   //  start-up connection, until the writer takes it
    gt_pgwriter_t *writer;          //  started after recovery (or at the first flush)
    gt_pgbatch_t *batch;            //  the batch being recorded
    zlistx_t *deleted;              //  object ids whose row the batch being recorded deletes
    zhashx_t *stored;               //  object ids that (may) have a row: a superset
    zlistx_t *flight;               //  s_flight_t, in submission order
    uint64_t batch_seq;             //  newest event seq recorded in this batch (0: none)
    uint64_t batch_fence;           //  largest fence recorded in this batch (0: none)
    uint64_t pruned_below;          //  events below this seq were (or are being) pruned;
                                    //  the next prune starts here (a failed one moves it back)
    bool healthy;                   //  the writer is connected
    int64_t failure_logged_at;      //  zclock_mono of the last failure line
    size_t failures_unlogged;       //  failed batches since that line
    gt_store_figures_t figures;     //  this store's commits (read by the broker's thread, which feeds them)
    gt_pgshards_options_t ownership;    //  shard ownership settings (strings below)
    char *broker_id;                //  GC_BROKER_ID, or the default (gt_store_pg.h)
    char *endpoint;                 //  advertised requests endpoint
    char *events_endpoint;          //  advertised events endpoint
    bool endpoint_advertised;       //  endpoint set by GC_ADVERTISE_ENDPOINT (binds do not change it)
    bool endpoint_pending;          //  endpoint not known until the bind (port 0, not advertised)
    bool events_advertised;         //  events_endpoint set by GC_ADVERTISE_EVENTS
    gt_pgshards_t *shards;          //  ownership thread, from recovery on (NULL after a loss)
    bool owning;                    //  the shards were acquired: batches are fenced
    bool lost;                      //  another broker took them: act on nothing again
    gt_shard_map_t *map;            //  the latest MAP notice's map (GTLP.md §14.2), or NULL
    uint64_t epochs [GT_SHARD_COUNT];   //  the epoch of each shard, as acquired
    bool cluster;                   //  GC_CLUSTER: a share of the shards (GTLP.md §14.1)
    uint8_t owned [GT_SHARD_COUNT / 8];     //  cluster mode: loaded and served
    uint8_t acquired [GT_SHARD_COUNT / 8];  //  cluster mode: acquired, waiting to be loaded
    uint8_t leaving [GT_SHARD_COUNT / 8];   //  cluster mode: to hand over (SHED), still owned
    uint64_t flushes;               //  batches flushed (the cluster mode's prune cadence)
} s_pg_t;

//  Shards of a bitmap, any at all
static bool
s_any (const uint8_t *bitmap)
{
    for (unsigned index = 0; index < GT_SHARD_COUNT / 8; index++)
        if (bitmap [index])
            return true;
    return false;
}

//  --------------------------------------------------------------------------
//  Connection string

//  Append key='value' (libpq conninfo quoting) to *buffer.
static void
s_append_option (char **buffer, const char *key, const char *value)
{
    size_t length = strlen (*buffer);
    size_t need = length + strlen (key) + 2 * strlen (value) + 5;
    *buffer = (char *) realloc (*buffer, need);
    assert (*buffer);
    char *out = *buffer + length;
    out += sprintf (out, "%s%s='", length ? " " : "", key);
    for (const char *in = value; *in; in++) {
        if (*in == '\'' || *in == '\\')
            *out++ = '\\';
        *out++ = *in;
    }
    *out++ = '\'';
    *out = 0;
}

//  Every connection, reconnections included, commits durably whatever the
//  server's default (gt_store_pg.h).
char *
gt_store_pg_conninfo (const char *url, char *err, size_t err_size)
{
    char *error = NULL;
    PQconninfoOption *options = PQconninfoParse (url, &error);
    if (!options) {
        snprintf (err, err_size, "DATABASE_URL is not a valid PostgreSQL connection string: %s",
                  error ? error : "");
        size_t length = strlen (err);
        while (length > 0 && err [length - 1] == '\n')
            err [--length] = 0;
        PQfreemem (error);
        return NULL;
    }
    char *conninfo = strdup ("");
    assert (conninfo);
    bool had_options = false;
    for (PQconninfoOption *option = options; option->keyword; option++) {
        if (!option->val)
            continue;
        if (streq (option->keyword, "options")) {
            char *both = zsys_sprintf ("%s -c synchronous_commit=on", option->val);
            s_append_option (&conninfo, "options", both);
            zstr_free (&both);
            had_options = true;
        }
        else
            s_append_option (&conninfo, option->keyword, option->val);
    }
    if (!had_options)
        s_append_option (&conninfo, "options", "-c synchronous_commit=on");
    PQconninfoFree (options);
    return conninfo;
}

//  --------------------------------------------------------------------------
//  Recording

static s_pg_t *
s_pg (void *impl)
{
    return (s_pg_t *) impl;
}

static void
s_note_fence (s_pg_t *self, uint64_t fence)
{
    if (fence > self->batch_fence)
        self->batch_fence = fence;
}

static void
s_lease_put (void *impl, const gt_lease_info_t *lease, const char *idempotency_key)
{
    s_pg_t *self = s_pg (impl);
    gt_pgbatch_lease_put (self->batch, lease, idempotency_key);
    s_note_fence (self, lease->fence);
}

static void
s_lease_create (void *impl, const gt_lease_info_t *lease, const char *idempotency_key)
{
    s_pg_t *self = s_pg (impl);
    gt_pgbatch_lease_create (self->batch, lease, idempotency_key);
    s_note_fence (self, lease->fence);
}

static void
s_lease_delete (void *impl, const char *lease_id, unsigned shard)
{
    gt_pgbatch_lease_delete (s_pg (impl)->batch, lease_id, shard);
}

//  The object's row goes (if it may exist).
static void
s_object_forget (s_pg_t *self, const char *object_id)
{
    if (!zhashx_lookup (self->stored, object_id))
        return;
    zhashx_delete (self->stored, object_id);
    gt_pgbatch_object_delete (self->batch, object_id);
    zlistx_add_end (self->deleted, (void *) object_id);     //  the list copies it
}

static void
s_object_put (void *impl, const gt_store_object_t *object)
{
    s_pg_t *self = s_pg (impl);
    s_note_fence (self, object->fence);
    if (object->pending_at == 0) {
        //  Rebuilt from its leases at recovery: no row needed
        s_object_forget (self, object->object_id);
        return;
    }
    gt_pgobject_t row = { object->object_id, object->fence, object->live, object->pending_at,
                          object->reason, object->last_lease_id };
    gt_pgbatch_object_put (self->batch, &row);
    zhashx_update (self->stored, object->object_id, (void *) 1);
}

static void
s_object_delete (void *impl, const char *object_id, uint64_t fence)
{
    s_pg_t *self = s_pg (impl);
    s_note_fence (self, fence);
    s_object_forget (self, object_id);
}

static void
s_event (void *impl, unsigned shard, uint64_t seq, gt_event_kind_t kind, uint64_t at,
         const char *topic, const void *body, size_t size)
{
    s_pg_t *self = s_pg (impl);
    //  Numbers are reused after a rollback: the newest recorded is the one
    self->batch_seq = seq;
    if (self->event_history > 0)
        gt_pgbatch_event (self->batch, shard, seq, kind, at, topic, body, size);
}

static void
s_callback_put (void *impl, const gt_store_callback_t *callback)
{
    gt_pgcallback_t row = {
        callback->job_id, callback->lease_id, callback->url, callback->body, callback->max_retries,
        callback->retry_delay_ms, callback->attempts, callback->status, callback->next_at,
        callback->last_error, callback->shard
    };
    gt_pgbatch_callback_put (s_pg (impl)->batch, &row);
}

static void
s_callback_delete (void *impl, uint64_t job_id, unsigned shard)
{
    gt_pgbatch_callback_delete (s_pg (impl)->batch, job_id, shard);
}

//  --------------------------------------------------------------------------
//  Writing

static void
s_flight_destroy (s_flight_t **flight_p)
{
    s_flight_t *flight = *flight_p;
    if (flight) {
        zlistx_destroy (&flight->deleted);
        free (flight);
        *flight_p = NULL;
    }
}

static zlistx_t *
s_id_list (void)
{
    zlistx_t *list = zlistx_new ();
    assert (list);
    zlistx_set_duplicator (list, (zlistx_duplicator_fn *) strdup);
    zlistx_set_destructor (list, (zlistx_destructor_fn *) zstr_free);
    return list;
}

static void
s_start_writer (s_pg_t *self)
{
    gt_pgwriter_options_t options;
    gt_pgwriter_options_init (&options);
    if (!self->group_commit) {
        //  For comparison: one broker batch per transaction, one at a time
        options.max_rows = 1;
        options.pipeline_depth = 1;
    }
    options.broker_id = self->broker_id;
    options.cluster = self->cluster;
    self->writer = gt_pgwriter_new (self->conninfo, &self->conn, &options);
    self->healthy = gt_pgwriter_connected (self->writer);
}

static gt_store_status_t
s_flush (void *impl, uint64_t batch)
{
    s_pg_t *self = s_pg (impl);
    if (!self->writer)
        s_start_writer (self);
    uint64_t last_seq = self->batch_seq;
    if (self->batch_seq || self->batch_fence)
        gt_pgbatch_meta (self->batch, self->batch_seq, self->batch_fence);
    self->batch_seq = 0;
    self->batch_fence = 0;
    if (gt_pgbatch_empty (self->batch))
        return GT_STORE_DONE;       //  nothing to write: only reads in this turn
    if (self->owning)
        gt_pgbatch_fence (self->batch, self->epochs);
    //  Cluster mode: each shard keeps its newest events (as many as the
    //  loader reads back); pruned now and then, in the shards written
    if (self->cluster && self->event_history > 0 && ++self->flushes % 256 == 0) {
        uint64_t keep = self->event_history / GT_SHARD_COUNT;
        gt_pgbatch_events_prune_shards (self->batch, keep < 100? 100: keep);
    }
    s_flight_t *flight = (s_flight_t *) zmalloc (sizeof (s_flight_t));
    assert (flight);
    flight->pruned_from = UINT64_MAX;
    if (!self->cluster && self->event_history > 0 && last_seq > self->event_history) {
        uint64_t below = last_seq - self->event_history + 1;
        if (below >= self->pruned_below + GT_STORE_PG_PRUNE_STEP) {
            gt_pgbatch_events_prune (self->batch, self->pruned_below, below);
            flight->pruned_from = self->pruned_below;
            self->pruned_below = below;
        }
    }
    flight->batch = batch;
    flight->records = gt_pgbatch_size (self->batch);
    flight->submitted_us = zclock_usecs ();
    flight->deleted = self->deleted;
    self->deleted = s_id_list ();
    //  The next batch starts with the room this one took (sized before the
    //  writer owns it): no growing, and no copying, while it is recorded
    gt_pgbatch_t *next = gt_pgbatch_new_like (self->batch);
    flight->number = gt_pgwriter_submit (self->writer, &self->batch);
    self->batch = next;
    zlistx_add_end (self->flight, flight);
    return GT_STORE_PENDING;
}

static zsock_t *
s_completion_sock (void *impl)
{
    s_pg_t *self = s_pg (impl);
    if (!self->writer)
        s_start_writer (self);
    return gt_pgwriter_sock (self->writer);
}

//  A batch failed: say why (at most one line a second).
static void
s_log_failure (s_pg_t *self, const s_flight_t *flight, const char *text)
{
    self->failures_unlogged++;
    int64_t now = zclock_mono ();
    if (self->failure_logged_at && now - self->failure_logged_at < S_FAIL_LOG_MS)
        return;
    gt_log_warn ("store", "PostgreSQL did not commit batch %" PRIu64 " (%zu failed since the last "
                 "such line): %s", flight->batch, self->failures_unlogged, text);
    self->failure_logged_at = now;
    self->failures_unlogged = 0;
}

static int
s_completion (void *impl, uint64_t *batch_p, bool *durable_p)
{
    s_pg_t *self = s_pg (impl);
    if (!self->writer)
        return -1;
    zsock_t *sock = gt_pgwriter_sock (self->writer);
    while (zsock_events (sock) & ZMQ_POLLIN) {
        gt_pgnotice_t notice;
        if (gt_pgwriter_recv (self->writer, &notice) != 0)
            return -1;
        if (notice.kind == GT_PGNOTICE_STATE) {
            self->healthy = notice.ok;
            if (notice.ok)
                gt_log_info ("store", "PostgreSQL writer connected: %s", notice.text);
            else
                gt_log_warn ("store", "PostgreSQL writer disconnected: %s", notice.text);
            continue;
        }
        s_flight_t *flight = (s_flight_t *) zlistx_detach (self->flight, NULL);
        //  The writer reports every batch, in submission order
        assert (flight && flight->number == notice.batch);
        if (notice.ok)
        {
            gt_histogram_observe (&self->figures.batch_size, flight->records);
            gt_histogram_observe (&self->figures.commit_us, (uint64_t) (zclock_usecs () - flight->submitted_us));
        }
        else {
            //  Its row deletions may not have happened: the rows may still be there
            for (const char *object_id = (const char *) zlistx_first (flight->deleted); object_id;
                 object_id = (const char *) zlistx_next (flight->deleted))
                zhashx_update (self->stored, object_id, (void *) 1);
            //  Nor its prune: the next one starts where this one did
            if (flight->pruned_from < self->pruned_below)
                self->pruned_below = flight->pruned_from;
            s_log_failure (self, flight, notice.text);
        }
        *batch_p = flight->batch;
        *durable_p = notice.ok;
        s_flight_destroy (&flight);
        return 0;
    }
    return -1;
}

static bool
s_fenced (void *impl)
{
    s_pg_t *self = s_pg (impl);
    if (!self->owning)
        return false;               //  never recovered (selftests): nothing to fence
    if (self->lost || !self->shards)
        return true;
    //  Cluster mode: a broker holding no shard has nothing to fence
    if (self->cluster && !s_any (self->owned) && !s_any (self->acquired))
        return false;
    return zclock_mono () >= gt_pgshards_valid_until (self->shards);
}

static bool
s_healthy (void *impl)
{
    return s_pg (impl)->healthy && !s_fenced (impl);
}

//  --------------------------------------------------------------------------
//  Ownership (gt_pgshards.h)

static void
s_ownership_start (s_pg_t *self)
{
    self->ownership.broker_id = self->broker_id;
    self->ownership.endpoint = self->endpoint;
    self->ownership.events_endpoint = self->events_endpoint;
    self->ownership.endpoint_pending = self->endpoint_pending;
    self->ownership.cluster = self->cluster;
    self->shards = gt_pgshards_new (self->conninfo, &self->ownership);
    assert (self->shards);          //  options were checked with the config
}

//  Apply one notice; false once the shards are lost.
static bool
s_ownership_notice (s_pg_t *self, gt_pgshards_notice_t *notice)
{
    if (notice->kind == GT_PGSHARDS_MAP) {
        gt_shard_map_destroy (&self->map);
        self->map = notice->map;            //  ours now
        notice->map = NULL;
    }
    else
    if (notice->kind == GT_PGSHARDS_ACQUIRED) {
        if (self->lost)
            return false;
        for (unsigned shard = 0; shard < GT_SHARD_COUNT; shard++)
            if (gt_pgshards_has (notice->shards, shard)) {
                self->epochs [shard] = notice->epochs [shard];
                if (self->cluster)
                    gt_pgshards_set (self->acquired, shard);    //  served once loaded
            }
        self->owning = true;
    }
    else
    if (notice->kind == GT_PGSHARDS_SHED) {
        for (unsigned index = 0; index < GT_SHARD_COUNT / 8; index++)
            self->leaving [index] |= notice->shards [index];
        gt_log_info ("store", "handing shards over: %s", notice->text);
    }
    else
    if (notice->kind == GT_PGSHARDS_LOST) {
        gt_log_error ("store", "lost the shards to another broker (%s): this broker (%s) stops; it commits "
                      "and publishes nothing more", notice->text, self->broker_id);
        self->lost = true;
        //  No release (they are not ours) and no more acquisitions: a
        //  broker that stepped down holds nothing
        gt_pgshards_destroy (&self->shards);
        return false;
    }
    return true;
}

static zsock_t *
s_ownership_sock (void *impl)
{
    s_pg_t *self = s_pg (impl);
    return self->shards ? gt_pgshards_sock (self->shards) : NULL;
}

static void
s_advertise (void *impl, bool events, const char *endpoint)
{
    s_pg_t *self = s_pg (impl);
    if (events? self->events_advertised: self->endpoint_advertised)
        return;                             //  GC_ADVERTISE_* said it
    char **field = events? &self->events_endpoint: &self->endpoint;
    free (*field);
    *field = strdup (endpoint);
    assert (*field);
    if (!events)
        self->endpoint_pending = false;     //  (an ownership thread started later knows it)
    if (self->shards)
        gt_pgshards_advertise (self->shards, events, endpoint);
}

static const gt_shard_map_t *
s_shard_map (void *impl)
{
    return s_pg (impl)->map;
}

static bool
s_ownership_read (void *impl)
{
    s_pg_t *self = s_pg (impl);
    while (self->shards && (zsock_events (gt_pgshards_sock (self->shards)) & ZMQ_POLLIN)) {
        gt_pgshards_notice_t notice;
        if (gt_pgshards_recv (self->shards, &notice) != 0)
            break;
        if (!s_ownership_notice (self, &notice))
            return false;
    }
    return !self->lost;
}

//  Who holds the shards now (for the standby's log line), or "".
static void
s_shard_holder (s_pg_t *self, char *holder, size_t size)
{
    *holder = 0;
    PGresult *result = PQexec (self->conn, "SELECT owner, to_char (owned_until, 'HH24:MI:SS.MS TZ')"
                                           " FROM gt_shards WHERE owner IS NOT NULL AND owned_until > now ()"
                                           " ORDER BY shard LIMIT 1");
    if (PQresultStatus (result) == PGRES_TUPLES_OK && PQntuples (result) == 1)
        snprintf (holder, size, "%s until %s", PQgetvalue (result, 0, 0), PQgetvalue (result, 0, 1));
    PQclear (result);
}

//  Start the ownership thread and wait: in single mode until it holds the
//  shards (a broker that cannot is a standby, and waits here); in cluster
//  mode for its first look at them (the first MAP notice comes after it),
//  applying what it acquired meanwhile.  -1 if interrupted.
static int
s_acquire (s_pg_t *self, char *err, size_t err_size)
{
    s_ownership_start (self);
    zpoller_t *poller = zpoller_new (gt_pgshards_sock (self->shards), NULL);
    assert (poller);
    int64_t started = zclock_mono ();
    bool said = false;
    int rc = -1;
    while (!zsys_interrupted) {
        if (!zpoller_wait (poller, 250)) {
            if (!self->cluster && !said && zclock_mono () - started >= 1000) {
                char holder [300];
                s_shard_holder (self, holder, sizeof holder);
                gt_log_info ("store", "standby: the shards are held by %s; broker %s takes them when they "
                             "are released or run out", *holder ? holder : "another broker", self->broker_id);
                said = true;
            }
            continue;
        }
        gt_pgshards_notice_t notice;
        if (gt_pgshards_recv (self->shards, &notice) != 0)
            break;
        if (notice.kind == GT_PGSHARDS_STATE && !notice.connected)
            gt_log_warn ("store", "shard ownership: %s", notice.text);
        gt_pgshards_notice_kind_t kind = notice.kind;
        if (!s_ownership_notice (self, &notice))
            break;
        if (self->cluster && kind == GT_PGSHARDS_MAP) {
            rc = 0;
            break;
        }
        if (!self->cluster && kind == GT_PGSHARDS_ACQUIRED) {
            gt_log_info ("store", "broker %s owns the %d shards (epoch %" PRIu64 ") after %d ms",
                         self->broker_id, GT_SHARD_COUNT, self->epochs [0],
                         (int) (zclock_mono () - started));
            rc = 0;
            break;
        }
    }
    zpoller_destroy (&poller);
    if (rc)
        snprintf (err, err_size, "interrupted while waiting for the shards");
    return rc;
}

//  --------------------------------------------------------------------------
//  Recovery

typedef struct {
    s_pg_t *self;                   //  the store
    const gt_store_loader_t *loader;    //  the broker's
} s_load_t;

static int
s_on_lease (void *arg, const gt_lease_info_t *lease, const char *idempotency_key)
{
    s_load_t *load = (s_load_t *) arg;
    if (load->loader->lease)
        load->loader->lease (load->loader->ctx, lease, idempotency_key);
    return 0;
}

static int
s_on_lease_count (void *arg, uint64_t leases)
{
    s_load_t *load = (s_load_t *) arg;
    load->loader->expect (load->loader->ctx, leases);
    return 0;
}

static void
s_on_lease_ahead (void *arg, const uint8_t id [16], const char *object_id, size_t object_id_len)
{
    s_load_t *load = (s_load_t *) arg;
    load->loader->lease_ahead (load->loader->ctx, id, object_id, object_id_len);
}

static int
s_on_object (void *arg, const gt_pgobject_t *object)
{
    s_load_t *load = (s_load_t *) arg;
    zhashx_update (load->self->stored, object->object_id, (void *) 1);
    if (load->loader->object) {
        gt_store_object_t record = { object->object_id, object->fence, object->live, object->pending_at,
                                     object->reason, object->last_lease_id };
        load->loader->object (load->loader->ctx, &record);
    }
    return 0;
}

static int
s_on_event (void *arg, uint64_t seq, gt_event_kind_t kind, uint64_t at,
            const char *topic, const void *body, size_t body_len)
{
    (void) kind;
    (void) at;
    s_load_t *load = (s_load_t *) arg;
    if (load->loader->event)
        load->loader->event (load->loader->ctx, seq, topic, body, body_len);
    return 0;
}

static int
s_on_shard_event (void *arg, unsigned shard, uint64_t seq, const char *topic, const void *body, size_t body_len)
{
    s_load_t *load = (s_load_t *) arg;
    if (load->loader->shard_event)
        load->loader->shard_event (load->loader->ctx, shard, seq, topic, body, body_len);
    return 0;
}

static int
s_on_shard_seq (void *arg, unsigned shard, uint64_t last_seq)
{
    s_load_t *load = (s_load_t *) arg;
    if (load->loader->shard_seq)
        load->loader->shard_seq (load->loader->ctx, shard, last_seq);
    return 0;
}

static int
s_on_callback (void *arg, const gt_pgcallback_t *callback)
{
    s_load_t *load = (s_load_t *) arg;
    gt_store_callback_t row = {
        callback->job_id, callback->lease_id, callback->url, callback->body, callback->max_retries,
        callback->retry_delay_ms, callback->attempts, callback->status, callback->next_at,
        callback->last_error ? callback->last_error : "", callback->shard
    };
    load->loader->callback (load->loader->ctx, &row);
    return 0;
}

//  The database's mode (005_cluster.sql): set by the first broker, the
//  same for every later one.  Cluster mode: this broker's token row.
static int
s_check_mode (s_pg_t *self, char *err, size_t err_size)
{
    const char *mode = self->cluster? "cluster": "single";
    const char *values [] = { mode, self->broker_id };
    PGresult *result = PQexecParams (self->conn,
        "WITH decided AS (UPDATE gt_meta SET mode = $1 WHERE mode IS NULL RETURNING mode)"
        " SELECT coalesce ((SELECT mode FROM decided), (SELECT mode FROM gt_meta))",
        1, NULL, values, NULL, NULL, 0);
    int rc = 0;
    if (PQresultStatus (result) != PGRES_TUPLES_OK || PQntuples (result) != 1) {
        snprintf (err, err_size, "cannot read the database's mode: %s", PQerrorMessage (self->conn));
        rc = -1;
    }
    else
    if (!streq (PQgetvalue (result, 0, 0), mode)) {
        snprintf (err, err_size, "the database runs in %s mode (the first broker on it decided), this broker "
                  "in %s mode: every broker of one database needs the same GC_CLUSTER (docs/CLUSTER.md)",
                  PQgetvalue (result, 0, 0), mode);
        rc = -1;
    }
    PQclear (result);
    if (rc == 0 && self->cluster) {
        result = PQexecParams (self->conn, "INSERT INTO gt_commit_tokens (broker_id) VALUES ($1)"
                                           " ON CONFLICT (broker_id) DO NOTHING", 1, NULL, values + 1,
                                           NULL, NULL, 0);
        if (PQresultStatus (result) != PGRES_COMMAND_OK) {
            snprintf (err, err_size, "cannot register the broker's commit token: %s", PQerrorMessage (self->conn));
            rc = -1;
        }
        PQclear (result);
    }
    return rc;
}

//  Load what the loader needs (cluster mode: the shards in filter).
static int
s_load (s_pg_t *self, PGconn *conn, const gt_store_loader_t *loader, const uint8_t *filter,
        char *err, size_t err_size)
{
    s_load_t load = { self, loader };
    gt_pgload_options_t options = {
        .ended_leases = true,
        .event_history = self->event_history,
        .on_lease = s_on_lease,
        .on_lease_count = loader->expect ? s_on_lease_count : NULL,
        .on_lease_ahead = loader->lease_ahead ? s_on_lease_ahead : NULL,
        .on_object = s_on_object,
        .on_event = s_on_event,
        .arg = &load,
        .on_callback = loader->callback ? s_on_callback : NULL,
        .shards = filter,
        .on_shard_event = s_on_shard_event,
        .on_shard_seq = s_on_shard_seq,
    };
    gt_pgload_result_t result;
    int64_t started = zclock_mono ();
    if (gt_pgload (conn, &options, &result, err, err_size) != 0)
        return -1;
    if (loader->counters)
        loader->counters (loader->ctx, filter? 0: result.last_seq, result.fence_counter);
    unsigned shards = 0;
    for (unsigned shard = 0; filter && shard < GT_SHARD_COUNT; shard++)
        shards += gt_pgshards_has (filter, shard);
    char what [32] = "everything";
    if (filter)
        snprintf (what, sizeof what, "%u shards", shards);
    gt_log_info ("store", "loaded %s from PostgreSQL in %d ms: %" PRIu64 " leases, %" PRIu64
                 " pending reclaims, %" PRIu64 " events, %" PRIu64 " callbacks; last event seq %" PRIu64
                 ", last fence %" PRIu64, what,
                 (int) (zclock_mono () - started), result.leases, result.objects,
                 result.events, result.callbacks, result.last_seq, result.fence_counter);
    return 0;
}

static void s_connect_reason_once (char *reason);

//  A standby's start-up connection sat idle while it waited for the
//  shards, for minutes or days: PostgreSQL may have restarted meanwhile,
//  or something on the way dropped the idle flow, which libpq would learn
//  only when used (a probe could then block until TCP gives up).  So the
//  load gets a fresh connection (same parameters), not a probe; the load
//  is not retried instead, since it hands rows to the broker as they come.
static int
s_reconnect_for_load (s_pg_t *self, int64_t idle_ms, char *err, size_t err_size)
{
    gt_log_info ("store", "standby for %.1f s: connecting again for the load", idle_ms / 1000.0);
    PQreset (self->conn);
    if (PQstatus (self->conn) != CONNECTION_OK) {
        char reason [512];
        snprintf (reason, sizeof (reason), "%s", PQerrorMessage (self->conn));
        s_connect_reason_once (reason);
        snprintf (err, err_size, "cannot connect again to load the shards: %s", reason);
        return -1;
    }
    return 0;
}

static int
s_recover (void *impl, const gt_store_loader_t *loader, char *err, size_t err_size)
{
    s_pg_t *self = s_pg (impl);
    if (!self->conn) {
        snprintf (err, err_size, "the PostgreSQL store was recovered already");
        return -1;
    }
    if (s_check_mode (self, err, err_size) != 0)
        return -1;
    //  Own the shards first: the snapshot below then holds everything the
    //  previous owner committed (its transactions finished before the
    //  acquisition could lock the shard rows)
    int64_t waiting_since = zclock_mono ();
    if (s_acquire (self, err, err_size) != 0)
        return -1;
    int64_t waited = zclock_mono () - waiting_since;
    if (waited >= S_IDLE_RECONNECT_MS && s_reconnect_for_load (self, waited, err, err_size) != 0)
        return -1;
    if (self->cluster) {
        uint8_t filter [GT_SHARD_COUNT / 8];
        for (unsigned index = 0; index < GT_SHARD_COUNT / 8; index++)
            filter [index] = self->acquired [index] & (uint8_t) ~self->leaving [index];
        if (s_load (self, self->conn, loader, filter, err, err_size) != 0)
            return -1;
        for (unsigned index = 0; index < GT_SHARD_COUNT / 8; index++) {
            self->owned [index] |= self->acquired [index];  //  leaving ones too: handed over at once
            self->acquired [index] = 0;
        }
    }
    else
    if (s_load (self, self->conn, loader, NULL, err, err_size) != 0)
        return -1;
    self->pruned_below = 0;
    s_start_writer (self);
    return 0;
}

//  --------------------------------------------------------------------------
//  Cluster mode (gt_store.h): what is served, loading and handing over

static bool
s_owns (void *impl, unsigned shard)
{
    s_pg_t *self = s_pg (impl);
    return !self->cluster
        || (gt_pgshards_has (self->owned, shard) && !gt_pgshards_has (self->leaving, shard));
}

static bool
s_ownership_pending (void *impl)
{
    s_pg_t *self = s_pg (impl);
    return self->cluster && !self->lost && (s_any (self->acquired) || s_any (self->leaving));
}

static int
s_ownership_apply (void *impl, const gt_store_loader_t *loader, uint8_t *forget, char *err, size_t err_size)
{
    s_pg_t *self = s_pg (impl);
    if (!self->cluster)
        return 0;
    uint8_t filter [GT_SHARD_COUNT / 8];
    for (unsigned index = 0; index < GT_SHARD_COUNT / 8; index++)
        filter [index] = self->acquired [index] & (uint8_t) ~self->leaving [index];
    if (s_any (filter)) {
        //  A connection of its own, for the load alone: the writer keeps
        //  its own (the load is a consistent snapshot taken after the
        //  acquisition: everything the previous owners committed)
        PGconn *conn = PQconnectdb (self->conninfo);
        if (PQstatus (conn) != CONNECTION_OK) {
            snprintf (err, err_size, "cannot connect to load shards: %s", PQerrorMessage (conn));
            PQfinish (conn);
            return -1;
        }
        int rc = s_load (self, conn, loader, filter, err, err_size);
        PQfinish (conn);
        if (rc != 0)
            return -1;
    }
    for (unsigned index = 0; index < GT_SHARD_COUNT / 8; index++) {
        self->owned [index] |= self->acquired [index];
        self->acquired [index] = 0;
        forget [index] = self->leaving [index];
    }
    return 0;
}

static void
s_handed_over (void *impl, const uint8_t *shards)
{
    s_pg_t *self = s_pg (impl);
    if (!self->cluster || !s_any (shards))
        return;
    for (unsigned shard = 0; shard < GT_SHARD_COUNT; shard++)
        if (gt_pgshards_has (shards, shard))
            self->epochs [shard] = 0;
    for (unsigned index = 0; index < GT_SHARD_COUNT / 8; index++) {
        self->owned [index] &= (uint8_t) ~shards [index];
        self->leaving [index] &= (uint8_t) ~shards [index];
    }
    int released = self->shards? gt_pgshards_release_shards (self->shards, shards, 2000): -1;
    if (released < 0)
        gt_log_warn ("store", "could not hand the shards over: they run out after GC_SHARD_LEASE");
}

//  --------------------------------------------------------------------------
//  Life cycle

static void
s_destroy (void *impl)
{
    s_pg_t *self = s_pg (impl);
    //  The writer commits what is queued first (bounded wait); then the
    //  shards go to a standby at once (NOTIFY)
    gt_pgwriter_destroy (&self->writer);
    if (self->shards && !self->lost) {
        int released = gt_pgshards_release (self->shards, 2000);
        if (released >= 0)
            gt_log_info ("store", "released %d shards", released);
    }
    gt_pgshards_destroy (&self->shards);
    gt_shard_map_destroy (&self->map);
    free (self->broker_id);
    free (self->endpoint);
    free (self->events_endpoint);
    if (self->conn)
        PQfinish (self->conn);
    gt_pgbatch_destroy (&self->batch);
    zlistx_destroy (&self->deleted);
    zlistx_destroy (&self->flight);
    zhashx_destroy (&self->stored);
    free (self->conninfo);
    free (self);
}

//  Warn about server settings that make commits less durable than we ask.
static void
s_check_server (PGconn *conn)
{
    PGresult *result = PQexec (conn, "SELECT current_setting ('fsync'), current_setting ('synchronous_commit')");
    if (PQresultStatus (result) == PGRES_TUPLES_OK && PQntuples (result) == 1) {
        if (!streq (PQgetvalue (result, 0, 0), "on"))
            gt_log_warn ("store", "PostgreSQL runs with fsync = %s: commits do not survive a crash "
                         "of the database server", PQgetvalue (result, 0, 0));
        if (!streq (PQgetvalue (result, 0, 1), "on"))
            gt_log_warn ("store", "synchronous_commit is %s on this session (expected on)",
                         PQgetvalue (result, 0, 1));
    }
    PQclear (result);
}

static void
s_figures (void *impl, gt_store_figures_t *figures)
{
    *figures = ((s_pg_t *) impl)->figures;
}

//  Who this broker is among those on the database, and what clients are
//  told (gt_store_pg.h)
static void
s_identity (s_pg_t *self, const gt_config_t *config)
{
    char host [256] = "localhost";
    if (gethostname (host, sizeof host) != 0)
        snprintf (host, sizeof host, "localhost");
    host [sizeof host - 1] = 0;
    if (config->broker_id)
        self->broker_id = strdup (config->broker_id);
    else
    if (config->port > 0)
        self->broker_id = zsys_sprintf ("%s:%d", host, config->port);
    else
        self->broker_id = zsys_sprintf ("%s:pid%d", host, (int) getpid ());
    self->endpoint_advertised = config->advertise_endpoint != NULL;
    self->endpoint_pending = !self->endpoint_advertised && config->port == 0;
    self->events_advertised = config->advertise_events != NULL;
    self->endpoint = config->advertise_endpoint ? strdup (config->advertise_endpoint)
                   : zsys_sprintf ("tcp://%s:%d", config->host, config->port);
    self->events_endpoint = config->advertise_events ? strdup (config->advertise_events)
                          : zsys_sprintf ("tcp://%s:%d", config->host, config->events_port);
}

//  libpq's message of a failed connection, once: it tries again (without
//  SSL, or at the host's next address) and appends each attempt's text, so
//  "A A" says A twice.  Keeps each distinct attempt once, blanks squeezed.
static void
s_connect_reason_once (char *reason)
{
    static const char marker [] = "connection to server ";
    //  Squeeze runs of blanks ("FATAL:  password")
    char *to = reason;
    for (const char *from = reason; *from; from++)
        if (!(*from == ' ' && to > reason && to [-1] == ' '))
            *to++ = *from;
    *to = 0;
    //  libpq's own hint ("Is the server running on that host and accepting
    //  TCP/IP connections?"): the advice after the message replaces it
    for (char *hint = strstr (reason, " Is the server running"); hint; hint = strstr (hint, " Is the server running")) {
        char *end = strchr (hint, '?');
        if (!end)
            break;
        memmove (hint, end + 1, strlen (end + 1) + 1);
    }
    char *first = strstr (reason, marker);
    if (!first)
        return;
    char out [512] = "";
    size_t used = 0;
    snprintf (out, sizeof (out), "%.*s", (int) (first - reason), reason);
    used = strlen (out);
    const char *seen [16];
    size_t seen_lengths [16];
    size_t seen_count = 0;
    for (char *segment = first; segment && seen_count < 16; ) {
        char *next = strstr (segment + 1, marker);
        size_t length = next ? (size_t) (next - segment) : strlen (segment);
        while (length > 0 && segment [length - 1] == ' ')
            length--;
        bool repeated = false;
        for (size_t i = 0; i < seen_count && !repeated; i++)
            repeated = seen_lengths [i] == length && memcmp (seen [i], segment, length) == 0;
        if (!repeated) {
            seen [seen_count] = segment;
            seen_lengths [seen_count++] = length;
            if (used < sizeof (out))
                used += (size_t) snprintf (out + used, sizeof (out) - used, "%s%.*s",
                                           seen_count > 1 ? "; " : "", (int) length, segment);
        }
        segment = next;
    }
    snprintf (reason, 512, "%s", out);
}

//  What to do about a failed start-up connection: waiting helps only when
//  the server does not answer (yet)
static const char *
s_connect_advice (const char *conninfo, const char *reason, int64_t wait_ms)
{
    const char *keys [] = { "connect_timeout", "dbname", NULL };
    const char *values [] = { "10", conninfo, NULL };
    PGPing ping = PQpingParams (keys, values, 1);
    if (ping == PQPING_NO_RESPONSE)
        return wait_ms == 0
            ? "the server does not answer (not running there?); set GC_DB_CONNECT_WAIT to wait for it"
            : "the server does not answer (not running there?) and GC_DB_CONNECT_WAIT ran out";
    if (ping == PQPING_REJECT)
        return wait_ms == 0
            ? "the server does not accept connections yet; set GC_DB_CONNECT_WAIT to wait for it"
            : "the server does not accept connections and GC_DB_CONNECT_WAIT ran out";
    if (ping == PQPING_NO_ATTEMPT)
        return "fix DATABASE_URL";
    //  The server answered and refused: waiting will not change that
    if (strstr (reason, "password") || strstr (reason, "authentication"))
        return "check the user name and password in DATABASE_URL";
    if (strstr (reason, "does not exist"))
        return "create it, or fix DATABASE_URL";
    if (strstr (reason, "pg_hba.conf"))
        return "allow this client in the server's pg_hba.conf, or fix DATABASE_URL";
    return "the server answered and refused the connection: check DATABASE_URL and the server's settings";
}

gt_store_t *
gt_store_pg_open (const gt_config_t *config, char *err, size_t err_size)
{
    assert (config);
    if (!config->database_url || !*config->database_url) {
        snprintf (err, err_size, "GC_STORAGE_BACKEND=postgres needs DATABASE_URL "
                  "(e.g. postgresql://user:password@127.0.0.1:5432/garbagetruck)");
        return NULL;
    }
    char *conninfo = gt_store_pg_conninfo (config->database_url, err, err_size);
    if (!conninfo)
        return NULL;
    char reason [512] = "";
    PGconn *conn = gt_pgschema_connect (conninfo, config->db_connect_wait_ms, reason, sizeof (reason));
    if (!conn) {
        char masked [512];
        gt_config_mask_url (config->database_url, masked, sizeof (masked));
        s_connect_reason_once (reason);
        //  The advice before the URL: a short err keeps it
        snprintf (err, err_size, "%s: %s (DATABASE_URL %s)", reason,
                  s_connect_advice (conninfo, reason, config->db_connect_wait_ms), masked);
        free (conninfo);
        return NULL;
    }
    int version = gt_pgschema_migrate (conn, reason, sizeof (reason));
    if (version < 0) {
        snprintf (err, err_size, "%s", reason);
        PQfinish (conn);
        free (conninfo);
        return NULL;
    }
    s_check_server (conn);
    gt_log_info ("store", "PostgreSQL schema at version %d", version);

    s_pg_t *self = (s_pg_t *) zmalloc (sizeof (s_pg_t));
    assert (self);
    self->conninfo = conninfo;
    self->conn = conn;
    self->event_history = config->event_history;
    self->group_commit = config->db_group_commit != 0;
    self->batch = gt_pgbatch_new ();
    self->deleted = s_id_list ();
    self->stored = zhashx_new ();
    assert (self->stored);
    self->flight = zlistx_new ();
    assert (self->flight);
    zlistx_set_destructor (self->flight, (zlistx_destructor_fn *) s_flight_destroy);
    self->healthy = true;
    gt_pgshards_options_init (&self->ownership);
    self->ownership.lease_ms = (int64_t) config->shard_lease_ms;
    self->ownership.renew_ms = (int64_t) config->shard_renew_ms;
    self->ownership.margin_ms = (int64_t) gt_config_shard_margin_ms (config);
    self->ownership.acquire_ms = (int64_t) config->shard_renew_ms / 2;
    self->cluster = config->cluster != 0;
    s_identity (self, config);
    gt_histogram_init (&self->figures.batch_size, gt_histogram_batch_size, gt_histogram_batch_size_count);
    gt_histogram_init (&self->figures.commit_us, gt_histogram_latency_us, gt_histogram_latency_us_count);
    gt_store_ops_t ops = {
        .name = "postgres",
        .destroy = s_destroy,
        .recover = s_recover,
        .lease_put = s_lease_put,
        .lease_create = s_lease_create,
        .lease_delete = s_lease_delete,
        .object_put = s_object_put,
        .object_delete = s_object_delete,
        .event = s_event,
        .flush = s_flush,
        .completion_sock = s_completion_sock,
        .completion = s_completion,
        .healthy = s_healthy,
        .callback_put = s_callback_put,
        .callback_delete = s_callback_delete,
        .figures = s_figures,
        .fenced = s_fenced,
        .ownership_sock = s_ownership_sock,
        .ownership_read = s_ownership_read,
        .shard_map = s_shard_map,
        .advertise = s_advertise,
        .owns = s_owns,
        .ownership_pending = s_ownership_pending,
        .ownership_apply = s_ownership_apply,
        .handed_over = s_handed_over,
    };
    return gt_store_new (&ops, self);
}

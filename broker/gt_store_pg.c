/*  gt_store_pg.c — the PostgreSQL store; the contract is in gt_store_pg.h.  */
#include <czmq.h>
#include "gt_store_pg.h"
#include "gt_pgschema.h"
#include "gt_pgbatch.h"
#include "gt_pgwriter.h"
#include "gt_pgload.h"
#include "gt_histogram.h"
#include "gt_log.h"

//  Prune stored events in steps of this many (a DELETE now and then, not
//  one per transaction); the loader reads only the newest history anyway.
#define S_PRUNE_STEP        1024
//  At most one log line about failed batches per this many ms
#define S_FAIL_LOG_MS       1000

//  A batch handed to the writer, until its COMMIT notice.
typedef struct {
    uint64_t number;                //  the writer's number
    uint64_t batch;                 //  the broker's batch id
    int64_t submitted_us;           //  zclock_usecs at submission (commit latency)
    size_t records;                 //  rows it writes
    zlistx_t *deleted;              //  object ids whose row it deletes (re-noted if it fails)
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
    uint64_t pruned_below;          //  events below this seq were (or are being) pruned
    bool healthy;                   //  the writer is connected
    int64_t failure_logged_at;      //  zclock_mono of the last failure line
    size_t failures_unlogged;       //  failed batches since that line
    gt_store_figures_t figures;     //  this store's commits (read by the broker's thread, which feeds them)
} s_pg_t;

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

//  The URL (postgresql:// or key=value) as key=value with
//  "-c synchronous_commit=on" added to its options: every connection,
//  reconnections included, commits durably whatever the server's default.
static char *
s_conninfo (const char *url, char *err, size_t err_size)
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
s_lease_delete (void *impl, const char *lease_id)
{
    gt_pgbatch_lease_delete (s_pg (impl)->batch, lease_id);
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
s_event (void *impl, uint64_t seq, gt_event_kind_t kind, uint64_t at,
         const char *topic, const void *body, size_t size)
{
    s_pg_t *self = s_pg (impl);
    //  Numbers are reused after a rollback: the newest recorded is the one
    self->batch_seq = seq;
    if (self->event_history > 0)
        gt_pgbatch_event (self->batch, seq, kind, at, topic, body, size);
}

static void
s_callback_put (void *impl, const gt_store_callback_t *callback)
{
    gt_pgcallback_t row = {
        callback->job_id, callback->lease_id, callback->url, callback->body, callback->max_retries,
        callback->retry_delay_ms, callback->attempts, callback->status, callback->next_at,
        callback->last_error
    };
    gt_pgbatch_callback_put (s_pg (impl)->batch, &row);
}

static void
s_callback_delete (void *impl, uint64_t job_id)
{
    gt_pgbatch_callback_delete (s_pg (impl)->batch, job_id);
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
    if (self->event_history > 0 && last_seq > self->event_history) {
        uint64_t below = last_seq - self->event_history + 1;
        if (below >= self->pruned_below + S_PRUNE_STEP) {
            gt_pgbatch_events_prune (self->batch, below);
            self->pruned_below = below;
        }
    }
    s_flight_t *flight = (s_flight_t *) zmalloc (sizeof (s_flight_t));
    assert (flight);
    flight->batch = batch;
    flight->records = gt_pgbatch_size (self->batch);
    flight->submitted_us = zclock_usecs ();
    flight->deleted = self->deleted;
    self->deleted = s_id_list ();
    flight->number = gt_pgwriter_submit (self->writer, &self->batch);
    self->batch = gt_pgbatch_new ();
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
s_healthy (void *impl)
{
    return s_pg (impl)->healthy;
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
s_on_callback (void *arg, const gt_pgcallback_t *callback)
{
    s_load_t *load = (s_load_t *) arg;
    gt_store_callback_t row = {
        callback->job_id, callback->lease_id, callback->url, callback->body, callback->max_retries,
        callback->retry_delay_ms, callback->attempts, callback->status, callback->next_at,
        callback->last_error ? callback->last_error : ""
    };
    load->loader->callback (load->loader->ctx, &row);
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
    s_load_t load = { self, loader };
    gt_pgload_options_t options = {
        .ended_leases = true,
        .event_history = self->event_history,
        .on_lease = s_on_lease,
        .on_object = s_on_object,
        .on_event = s_on_event,
        .arg = &load,
        .on_callback = loader->callback ? s_on_callback : NULL,
    };
    gt_pgload_result_t result;
    int64_t started = zclock_mono ();
    if (gt_pgload (self->conn, &options, &result, err, err_size) != 0)
        return -1;
    if (loader->counters)
        loader->counters (loader->ctx, result.last_seq, result.fence_counter);
    self->pruned_below = 0;
    gt_log_info ("store", "recovered from PostgreSQL in %d ms: %" PRIu64 " leases, %" PRIu64
                 " pending reclaims, %" PRIu64 " events, %" PRIu64 " callbacks; last event seq %" PRIu64
                 ", last fence %" PRIu64, (int) (zclock_mono () - started), result.leases, result.objects,
                 result.events, result.callbacks, result.last_seq, result.fence_counter);
    s_start_writer (self);
    return 0;
}

//  --------------------------------------------------------------------------
//  Life cycle

static void
s_destroy (void *impl)
{
    s_pg_t *self = s_pg (impl);
    //  The writer commits what is queued first (bounded wait)
    gt_pgwriter_destroy (&self->writer);
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

gt_store_t *
gt_store_pg_open (const gt_config_t *config, char *err, size_t err_size)
{
    assert (config);
    if (!config->database_url || !*config->database_url) {
        snprintf (err, err_size, "GC_STORAGE_BACKEND=postgres needs DATABASE_URL "
                  "(e.g. postgresql://user:password@127.0.0.1:5432/garbagetruck)");
        return NULL;
    }
    char *conninfo = s_conninfo (config->database_url, err, err_size);
    if (!conninfo)
        return NULL;
    char reason [512] = "";
    PGconn *conn = gt_pgschema_connect (conninfo, config->db_connect_wait_ms, reason, sizeof (reason));
    if (!conn) {
        char masked [512];
        gt_config_mask_url (config->database_url, masked, sizeof (masked));
        snprintf (err, err_size, "%s (DATABASE_URL %s%s)", reason, masked,
                  config->db_connect_wait_ms == 0 ? "; set GC_DB_CONNECT_WAIT to wait for it" : "");
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
    gt_histogram_init (&self->figures.batch_size, gt_histogram_batch_size, gt_histogram_batch_size_count);
    gt_histogram_init (&self->figures.commit_us, gt_histogram_latency_us, gt_histogram_latency_us_count);
    gt_store_ops_t ops = {
        .name = "postgres",
        .destroy = s_destroy,
        .recover = s_recover,
        .lease_put = s_lease_put,
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
    };
    return gt_store_new (&ops, self);
}

//  --------------------------------------------------------------------------
//  Self test, against the PostgreSQL server in DATABASE_URL (a fresh
//  database of its own)

#include "gt_pgtestdb.h"

typedef struct {
    size_t leases;                  //  leases recovered
    size_t objects;                 //  objects recovered
    size_t events;                  //  events recovered
    size_t callbacks;               //  outbox rows recovered
    uint64_t last_seq;              //  counters recovered
    uint64_t fence_counter;
    bool lease_ok;                  //  the lease came back field by field
    bool object_ok;                 //  the pending reclaim came back
    bool callback_ok;               //  the outbox row came back
    bool counters_last;             //  counters came after everything else
} s_test_recovered_t;

static const char *s_test_lease_id = "0123456789abcdef0123456789abcdef";

static void
s_test_on_lease (void *ctx, const gt_lease_info_t *lease, const char *key)
{
    s_test_recovered_t *recovered = (s_test_recovered_t *) ctx;
    recovered->leases++;
    recovered->lease_ok = streq (lease->id, s_test_lease_id) && streq (lease->object_id, "object-1")
                       && lease->fence == 41 && lease->expires_at == 1700000030000
                       && lease->cleanup_status == GT_CLEANUP_PENDING && key && streq (key, "key-1");
}

static void
s_test_on_object (void *ctx, const gt_store_object_t *object)
{
    s_test_recovered_t *recovered = (s_test_recovered_t *) ctx;
    recovered->objects++;
    recovered->object_ok = streq (object->object_id, "object-pending") && object->pending_at == 1700000040000
                        && object->reason == GT_REASON_EXPIRED && object->live;
}

static void
s_test_on_event (void *ctx, uint64_t seq, const char *topic, const void *body, size_t size)
{
    (void) seq;
    (void) topic;
    (void) body;
    (void) size;
    ((s_test_recovered_t *) ctx)->events++;
}

static void
s_test_on_counters (void *ctx, uint64_t last_seq, uint64_t fence_counter)
{
    s_test_recovered_t *recovered = (s_test_recovered_t *) ctx;
    recovered->last_seq = last_seq;
    recovered->fence_counter = fence_counter;
    recovered->counters_last = recovered->leases && recovered->callbacks;
}

static void
s_test_on_callback (void *ctx, const gt_store_callback_t *callback)
{
    s_test_recovered_t *recovered = (s_test_recovered_t *) ctx;
    recovered->callbacks++;
    recovered->callback_ok = callback->job_id == 7 && streq (callback->lease_id, s_test_lease_id)
                          && streq (callback->body, "{}") && callback->status == GT_CLEANUP_PENDING
                          && callback->attempts == 1 && streq (callback->last_error, "HTTP 503");
}

//  Wait for the next completion (STATE notices are taken on the way).
static bool
s_test_complete (gt_store_t *store, uint64_t *batch_p, bool *durable_p)
{
    zpoller_t *poller = zpoller_new (gt_store_completion_sock (store), NULL);
    int64_t deadline = zclock_mono () + 20000;
    bool done = false;
    while (!done && zclock_mono () < deadline)
        if (zpoller_wait (poller, 1000))
            done = gt_store_completion (store, batch_p, durable_p) == 0;
    zpoller_destroy (&poller);
    return done;
}

//  Wait until the store's health is as wanted (notices read as they come).
static bool
s_test_health (gt_store_t *store, bool healthy)
{
    zpoller_t *poller = zpoller_new (gt_store_completion_sock (store), NULL);
    int64_t deadline = zclock_mono () + 20000;
    while (gt_store_healthy (store) != healthy && zclock_mono () < deadline)
        if (zpoller_wait (poller, 1000)) {
            uint64_t batch;
            bool durable;
            gt_store_completion (store, &batch, &durable);
        }
    zpoller_destroy (&poller);
    return gt_store_healthy (store) == healthy;
}

static gt_store_t *
s_test_open (gt_pgtestdb_t *testdb, int history)
{
    gt_config_t *config = gt_config_new ();
    gt_config_set_storage (config, "postgres");
    gt_config_set_database_url (config, gt_pgtestdb_conninfo (testdb));
    config->event_history = (uint64_t) history;
    char err [512];
    gt_store_t *store = gt_store_open (config, err, sizeof (err));
    if (!store)
        fprintf (stderr, "gt_store_pg: %s\n", err);
    gt_config_destroy (&config);
    return store;
}

static void
s_test_allow (gt_pgtestdb_t *testdb, bool allow)
{
    char sql [160];
    snprintf (sql, sizeof sql, "ALTER DATABASE %s ALLOW_CONNECTIONS %s", gt_pgtestdb_name (testdb),
              allow ? "true" : "false");
    gt_pgtestdb_exec (gt_pgtestdb_admin (testdb), sql);
    if (!allow) {
        snprintf (sql, sizeof sql, "SELECT pg_terminate_backend (pid) FROM pg_stat_activity"
                  " WHERE datname = '%s'", gt_pgtestdb_name (testdb));
        gt_pgtestdb_exec (gt_pgtestdb_admin (testdb), sql);
    }
}

void
gt_store_pg_test (bool verbose)
{
    printf (" * gt_store_pg: ");
    char err [512];
    //  Every connection commits durably: synchronous_commit joins the options
    char *conninfo = s_conninfo ("postgresql://gt:pw@127.0.0.1:5433/db?options=-c%20work_mem%3D1MB",
                                 err, sizeof (err));
    assert (conninfo && strstr (conninfo, "options='-c work_mem=1MB -c synchronous_commit=on'"));
    assert (strstr (conninfo, "port='5433'") && strstr (conninfo, "dbname='db'"));
    free (conninfo);
    conninfo = s_conninfo ("host=127.0.0.1 dbname='it\\'s'", err, sizeof (err));
    assert (conninfo && strstr (conninfo, "options='-c synchronous_commit=on'"));
    assert (strstr (conninfo, "dbname='it\\'s'"));
    free (conninfo);
    gt_pgtestdb_t *testdb = gt_pgtestdb_new ();
    assert (testdb);

    //  Opening migrates; the store wants every record and an outbox
    gt_store_t *store = s_test_open (testdb, 3);
    assert (store);
    assert (streq (gt_store_name (store), "postgres"));
    assert (gt_store_records (store) && gt_store_async (store) && gt_store_outbox (store));
    PGconn *check = gt_pgtestdb_connect (testdb);
    assert (gt_pgschema_version (check, err, sizeof (err)) == gt_pgschema_latest ());
    s_test_recovered_t recovered;
    memset (&recovered, 0, sizeof (recovered));
    gt_store_loader_t loader = { &recovered, s_test_on_lease, s_test_on_object, s_test_on_event,
                                 s_test_on_counters, s_test_on_callback };
    assert (gt_store_recover (store, &loader, err, sizeof (err)) == 0);
    assert (recovered.leases == 0 && recovered.last_seq == 0);
    assert (gt_store_healthy (store));

    //  A turn of reads writes nothing: durable at once
    assert (gt_store_flush (store, 1) == GT_STORE_DONE);

    //  A turn of changes: written in one transaction, reported by batch id
    gt_lease_info_t lease;
    memset (&lease, 0, sizeof (lease));
    strcpy (lease.id, s_test_lease_id);
    lease.object_id = "object-1";
    lease.service_id = "svc";
    lease.fence = 41;
    lease.created_at = lease.renewed_at = 1700000000000;
    lease.expires_at = 1700000030000;
    lease.ttl_ms = 30000;
    gt_cleanup_t cleanup = { (char *) "http://127.0.0.1:9/c", NULL, true, 3, true, 100 };
    lease.cleanup = &cleanup;
    lease.cleanup_status = GT_CLEANUP_PENDING;
    lease.cleanup_attempts = 1;
    gt_store_lease_put (store, &lease, "key-1");
    //  An object without a pending reclaim gets no row; one with, does
    gt_store_object_t object = { "object-1", 41, true, 0, GT_REASON_NONE, NULL };
    gt_store_object_put (store, &object);
    gt_store_object_t pending = { "object-pending", 42, true, 1700000040000, GT_REASON_EXPIRED, s_test_lease_id };
    gt_store_object_put (store, &pending);
    for (uint64_t seq = 1; seq <= 5; seq++)
        gt_store_event (store, seq, GT_EVENT_LEASE_CREATED, 1700000000000 + seq, "created.UNKNOWN.svc", "\x80", 1);
    gt_store_callback_t row = { 7, s_test_lease_id, "http://127.0.0.1:9/c", "{}", 3, 100, 1,
                                GT_CLEANUP_PENDING, 1700000050000, "HTTP 503" };
    gt_store_callback_put (store, &row);
    row.job_id = 8;
    gt_store_callback_put (store, &row);
    assert (gt_store_flush (store, 2) == GT_STORE_PENDING);
    //  Another batch behind it: removes one row
    gt_store_callback_delete (store, 8);
    assert (gt_store_flush (store, 3) == GT_STORE_PENDING);
    uint64_t batch = 0;
    bool durable = false;
    assert (s_test_complete (store, &batch, &durable) && batch == 2 && durable);
    assert (s_test_complete (store, &batch, &durable) && batch == 3 && durable);
    //  Each commit is measured, in this store's own figures
    gt_store_figures_t figures;
    gt_store_figures (store, &figures);
    assert (figures.batch_size.count == 2 && figures.commit_us.count == 2);
    assert (gt_pgtestdb_int (check, "SELECT count (*) FROM gt_objects") == 1);
    assert (gt_pgtestdb_int (check, "SELECT count (*) FROM gt_callbacks") == 1);
    assert (gt_pgtestdb_int (check, "SELECT last_seq FROM gt_meta") == 5);
    assert (gt_pgtestdb_int (check, "SELECT fence_counter FROM gt_meta") == 42);
    //  One connection: the start-up one, now the writer's
    assert (gt_pgtestdb_int (check, "SELECT count (*) FROM pg_stat_activity WHERE datname = current_database ()"
                                    " AND pid <> pg_backend_pid ()") == 1);

    //  Restart: everything comes back, counters last; then the reclaim
    //  ends and its row goes
    gt_store_destroy (&store);
    store = s_test_open (testdb, 3);
    assert (store);
    memset (&recovered, 0, sizeof (recovered));
    assert (gt_store_recover (store, &loader, err, sizeof (err)) == 0);
    assert (recovered.leases == 1 && recovered.lease_ok);
    assert (recovered.objects == 1 && recovered.object_ok);
    assert (recovered.events == 3);                         //  GC_EVENT_HISTORY 3
    assert (recovered.callbacks == 1 && recovered.callback_ok);
    assert (recovered.last_seq == 5 && recovered.fence_counter == 42 && recovered.counters_last);
    pending.pending_at = 0;
    pending.live = false;
    gt_store_object_put (store, &pending);
    assert (gt_store_flush (store, 1) == GT_STORE_PENDING);
    assert (s_test_complete (store, &batch, &durable) && batch == 1 && durable);
    assert (gt_pgtestdb_int (check, "SELECT count (*) FROM gt_objects") == 0);

    //  Outage: the writer reports it, batches fail (their row deletions are
    //  taken as not done), it reconnects by itself
    pending.pending_at = 1700000060000;
    pending.live = true;
    gt_store_object_put (store, &pending);
    assert (gt_store_flush (store, 2) == GT_STORE_PENDING);
    assert (s_test_complete (store, &batch, &durable) && batch == 2 && durable);
    PQfinish (check);
    s_test_allow (testdb, false);
    assert (s_test_health (store, false));
    gt_store_object_delete (store, "object-pending", 42);
    assert (gt_store_flush (store, 3) == GT_STORE_PENDING);
    assert (s_test_complete (store, &batch, &durable) && batch == 3 && !durable);
    s_test_allow (testdb, true);
    assert (s_test_health (store, true));
    check = gt_pgtestdb_connect (testdb);
    assert (gt_pgtestdb_int (check, "SELECT count (*) FROM gt_objects") == 1);
    gt_store_object_delete (store, "object-pending", 42);   //  again: the row may exist
    assert (gt_store_flush (store, 4) == GT_STORE_PENDING);
    assert (s_test_complete (store, &batch, &durable) && batch == 4 && durable);
    assert (gt_pgtestdb_int (check, "SELECT count (*) FROM gt_objects") == 0);
    gt_store_destroy (&store);

    //  Events beyond the history are pruned, in steps
    store = s_test_open (testdb, 10);
    memset (&recovered, 0, sizeof (recovered));
    assert (gt_store_recover (store, &loader, err, sizeof (err)) == 0);
    for (uint64_t seq = 6; seq <= 6 + S_PRUNE_STEP + 10; seq++)
        gt_store_event (store, seq, GT_EVENT_LEASE_CREATED, 1700000000000 + seq, "created.UNKNOWN.svc", "\x80", 1);
    assert (gt_store_flush (store, 1) == GT_STORE_PENDING);
    assert (s_test_complete (store, &batch, &durable) && durable);
    assert (gt_pgtestdb_int (check, "SELECT count (*) FROM gt_events") == 10);
    gt_store_destroy (&store);

    //  A newer schema is refused with a clear message, untouched
    gt_pgtestdb_exec (check, "INSERT INTO gt_schema_migrations (version, name) VALUES (999, 'future')");
    gt_config_t *config = gt_config_new ();
    gt_config_set_storage (config, "postgres");
    gt_config_set_database_url (config, gt_pgtestdb_conninfo (testdb));
    store = gt_store_open (config, err, sizeof (err));
    assert (store == NULL && strstr (err, "newer than this garbagetruck knows"));
    if (verbose)
        printf ("\n   %s\n   ", err);
    //  Nothing listens: a clear message; waiting a little still fails
    gt_config_set_database_url (config, "postgresql://gt:secret@127.0.0.1:1/none");
    config->db_connect_wait_ms = 300;
    int64_t started = zclock_mono ();
    store = gt_store_open (config, err, sizeof (err));
    assert (store == NULL && strstr (err, "cannot connect") && !strstr (err, "secret"));
    assert (zclock_mono () - started >= 300);
    if (verbose)
        printf ("%s\n   ", err);
    gt_config_set_database_url (config, "postgresql://[broken");
    store = gt_store_open (config, err, sizeof (err));
    assert (store == NULL && strstr (err, "DATABASE_URL"));
    gt_config_destroy (&config);

    PQfinish (check);
    gt_pgtestdb_destroy (&testdb);
    printf ("OK\n");
}

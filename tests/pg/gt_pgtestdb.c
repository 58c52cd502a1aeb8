/*  gt_pgtestdb.c — throw-away test databases; the contract is in gt_pgtestdb.h.  */

#include "gt_pgtestdb.h"
#include <czmq.h>

struct gt_pgtestdb_t {
    char name [64];                 //  gt_test_<pid>_<n>
    char *conninfo;                 //  key=value conninfo of the test database
    PGconn *admin;                  //  connection to DATABASE_URL's database
};

//  "database does not exist, skipping" and the like: not worth printing
static void
s_ignore_notice (void *arg, const char *message)
{
    (void) arg;
    (void) message;
}

static void
s_fail (const char *what, PGconn *conn)
{
    fprintf (stderr, "gt_pgtestdb: %s: %s\n", what, conn? PQerrorMessage (conn): "");
    abort ();
}

//  Append key='value' to buf, quoting as libpq's conninfo parser expects.
static void
s_append_option (char **buf, const char *key, const char *value)
{
    size_t length = strlen (*buf);
    size_t need = length + strlen (key) + 2 * strlen (value) + 5;
    *buf = (char *) realloc (*buf, need);
    assert (*buf);
    char *out = *buf + length;
    out += sprintf (out, "%s%s='", length? " ": "", key);
    for (const char *in = value; *in; in++) {
        if (*in == '\'' || *in == '\\')
            *out++ = '\\';
        *out++ = *in;
    }
    *out++ = '\'';
    *out = 0;
}

bool
gt_pgtestdb_available (void)
{
    const char *url = getenv ("DATABASE_URL");
    return url && *url;
}

gt_pgtestdb_t *
gt_pgtestdb_new (void)
{
    if (!gt_pgtestdb_available ())
        return NULL;
    const char *url = getenv ("DATABASE_URL");
    static int s_counter = 0;           //  databases made by this process
    gt_pgtestdb_t *self = (gt_pgtestdb_t *) zmalloc (sizeof (gt_pgtestdb_t));
    assert (self);
    snprintf (self->name, sizeof self->name, "gt_test_%d_%d", (int) getpid (), ++s_counter);

    self->admin = PQconnectdb (url);
    if (PQstatus (self->admin) != CONNECTION_OK)
        s_fail ("cannot connect to DATABASE_URL", self->admin);
    PQsetNoticeProcessor (self->admin, s_ignore_notice, NULL);
    char sql [160];
    snprintf (sql, sizeof sql, "DROP DATABASE IF EXISTS %s WITH (FORCE)", self->name);
    gt_pgtestdb_exec (self->admin, sql);
    snprintf (sql, sizeof sql, "CREATE DATABASE %s", self->name);
    gt_pgtestdb_exec (self->admin, sql);

    //  Same server and credentials, other database
    char *error = NULL;
    PQconninfoOption *options = PQconninfoParse (url, &error);
    if (!options) {
        fprintf (stderr, "gt_pgtestdb: bad DATABASE_URL: %s\n", error? error: "");
        abort ();
    }
    self->conninfo = strdup ("");
    for (PQconninfoOption *option = options; option->keyword; option++)
        if (option->val && strneq (option->keyword, "dbname"))
            s_append_option (&self->conninfo, option->keyword, option->val);
    s_append_option (&self->conninfo, "dbname", self->name);
    PQconninfoFree (options);
    return self;
}

void
gt_pgtestdb_destroy (gt_pgtestdb_t **self_p)
{
    assert (self_p);
    gt_pgtestdb_t *self = *self_p;
    if (self) {
        char sql [160];
        snprintf (sql, sizeof sql, "DROP DATABASE IF EXISTS %s WITH (FORCE)", self->name);
        gt_pgtestdb_exec (self->admin, sql);
        PQfinish (self->admin);
        free (self->conninfo);
        free (self);
        *self_p = NULL;
    }
}

const char *
gt_pgtestdb_name (gt_pgtestdb_t *self)
{
    assert (self);
    return self->name;
}

const char *
gt_pgtestdb_conninfo (gt_pgtestdb_t *self)
{
    assert (self);
    return self->conninfo;
}

PGconn *
gt_pgtestdb_connect (gt_pgtestdb_t *self)
{
    assert (self);
    PGconn *conn = PQconnectdb (self->conninfo);
    if (PQstatus (conn) != CONNECTION_OK)
        s_fail ("cannot connect to the test database", conn);
    PQsetNoticeProcessor (conn, s_ignore_notice, NULL);
    return conn;
}

PGconn *
gt_pgtestdb_admin (gt_pgtestdb_t *self)
{
    assert (self);
    return self->admin;
}

void
gt_pgtestdb_exec (PGconn *conn, const char *sql)
{
    PGresult *result = PQexec (conn, sql);
    ExecStatusType status = PQresultStatus (result);
    if (status != PGRES_COMMAND_OK && status != PGRES_TUPLES_OK) {
        fprintf (stderr, "gt_pgtestdb: %s\n", sql);
        s_fail ("statement failed", conn);
    }
    PQclear (result);
}

char *
gt_pgtestdb_value (PGconn *conn, const char *sql)
{
    PGresult *result = PQexec (conn, sql);
    if (PQresultStatus (result) != PGRES_TUPLES_OK) {
        fprintf (stderr, "gt_pgtestdb: %s\n", sql);
        s_fail ("query failed", conn);
    }
    char *value = NULL;
    if (PQntuples (result) > 0 && !PQgetisnull (result, 0, 0))
        value = strdup (PQgetvalue (result, 0, 0));
    PQclear (result);
    return value;
}

long long
gt_pgtestdb_int (PGconn *conn, const char *sql)
{
    char *value = gt_pgtestdb_value (conn, sql);
    long long number = value? atoll (value): 0;
    free (value);
    return number;
}

void
gt_pgtestdb_wait_blocked (PGconn *conn, int pid, int64_t timeout_ms)
{
    char sql [128];
    snprintf (sql, sizeof sql,
              "SELECT count (*) FROM pg_stat_activity WHERE pid = %d AND wait_event_type = 'Lock'", pid);
    int64_t deadline = zclock_mono () + timeout_ms;
    while (gt_pgtestdb_int (conn, sql) == 0) {
        assert (zclock_mono () < deadline);
        //  Polling the server with a deadline: there is no event to wait on
        zclock_sleep (5);
    }
}

const char *
gt_pgtestdb_lease (gt_lease_info_t *lease, gt_pgtestdb_lease_t *storage,
                   uint32_t index, uint32_t variant)
{
    memset (lease, 0, sizeof *lease);
    memset (storage, 0, sizeof *storage);
    snprintf (lease->id, sizeof lease->id, "%08x%024" PRIx64, index,
              (uint64_t) ((uint64_t) index * UINT64_C (0x9E3779B97F4A7C15) >> 8));
    snprintf (storage->object_id, sizeof storage->object_id, "object-%u", index / 2);
    snprintf (storage->service_id, sizeof storage->service_id, "svc-%u", index % 7);
    lease->object_id = storage->object_id;
    lease->service_id = storage->service_id;
    lease->object_type = (gt_object_type_t) (index % GT_TYPE_COUNT_);
    lease->state = index % 10 == 9? (index % 20 == 9? GT_STATE_RELEASED: GT_STATE_EXPIRED): GT_STATE_ACTIVE;
    lease->fence = index / 2 + 1;
    lease->ttl_ms = 30000 + index;
    lease->created_at = 1700000000000ULL + index;
    lease->renewed_at = lease->created_at + (uint64_t) variant * 1000;
    lease->expires_at = lease->renewed_at + lease->ttl_ms;
    lease->renewals = variant;
    snprintf (storage->index_text, sizeof storage->index_text, "%u", index);
    storage->entries [0].key = (char *) "index";
    storage->entries [0].value = storage->index_text;
    storage->entries [1].key = (char *) "quote";
    storage->entries [1].value = (char *) "a\"b\\c\nd \xc3\xa9\t";
    lease->metadata.entries = storage->entries;
    lease->metadata.count = index % 3 == 0? 2: index % 3 == 1? 1: 0;
    if (index % 4 == 0) {
        snprintf (storage->url, sizeof storage->url, "http://127.0.0.1:9/cleanup/%u", index);
        storage->cleanup.url = storage->url;
        if (index % 8 == 0) {
            snprintf (storage->payload, sizeof storage->payload, "p%u", index);
            storage->cleanup.payload = storage->payload;
        }
        storage->cleanup.has_max_retries = true;
        storage->cleanup.max_retries = 3;
        storage->cleanup.has_retry_delay = true;
        storage->cleanup.retry_delay_ms = 500;
        lease->cleanup = &storage->cleanup;
        //  Some carry their callback's state (migration 002)
        if (index % 12 == 0) {
            lease->cleanup_status = (gt_cleanup_status_t) (GT_CLEANUP_PENDING + index / 12 % 3);
            lease->cleanup_attempts = index % 5;
            if (lease->cleanup_status == GT_CLEANUP_DEAD)
                lease->cleanup_error = (char *) "HTTP 500 \"x\"";
        }
    }
    if (index % 5 != 0)
        return NULL;
    snprintf (storage->idempotency_key, sizeof storage->idempotency_key, "key-%u", index);
    return storage->idempotency_key;
}

uint32_t
gt_pgtestdb_lease_index (const char *lease_id)
{
    char head [9];
    memcpy (head, lease_id, 8);
    head [8] = 0;
    return (uint32_t) strtoul (head, NULL, 16);
}

static bool
s_string_equal (const char *a, const char *b)
{
    return (a == NULL && b == NULL) || (a && b && streq (a, b));
}

static const char *
s_meta_lookup (const gt_meta_t *metadata, const char *key)
{
    for (size_t index = 0; index < metadata->count; index++)
        if (streq (metadata->entries [index].key, key))
            return metadata->entries [index].value;
    return NULL;
}

bool
gt_pgtestdb_lease_equal (const gt_lease_info_t *a, const gt_lease_info_t *b)
{
    if (strneq (a->id, b->id) || strneq (a->object_id, b->object_id)
    ||  a->object_type != b->object_type || strneq (a->service_id, b->service_id)
    ||  a->state != b->state || a->fence != b->fence || a->ttl_ms != b->ttl_ms
    ||  a->created_at != b->created_at || a->renewed_at != b->renewed_at
    ||  a->expires_at != b->expires_at || a->renewals != b->renewals
    ||  a->metadata.count != b->metadata.count
    ||  a->cleanup_status != b->cleanup_status || a->cleanup_attempts != b->cleanup_attempts
    ||  !s_string_equal (a->cleanup_error, b->cleanup_error))
        return false;
    for (size_t index = 0; index < a->metadata.count; index++)
        if (!s_string_equal (a->metadata.entries [index].value,
                             s_meta_lookup (&b->metadata, a->metadata.entries [index].key)))
            return false;
    if (!a->cleanup || !b->cleanup)
        return a->cleanup == b->cleanup;
    return s_string_equal (a->cleanup->url, b->cleanup->url)
        && s_string_equal (a->cleanup->payload, b->cleanup->payload)
        && a->cleanup->has_max_retries == b->cleanup->has_max_retries
        && a->cleanup->max_retries == b->cleanup->max_retries
        && a->cleanup->has_retry_delay == b->cleanup->has_retry_delay
        && a->cleanup->retry_delay_ms == b->cleanup->retry_delay_ms;
}

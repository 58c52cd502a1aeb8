/*  gt_pgschema.c — connect and migrate at start-up; the contract is in gt_pgschema.h.

    Each migration runs as:
        BEGIN; SELECT pg_advisory_xact_lock (K);
        CREATE TABLE IF NOT EXISTS gt_schema_migrations (...);
        current := max (version)          -- read under the lock
        newer than we know -> ROLLBACK, refuse
        up to date         -> COMMIT, done
        else run migration current + 1, record it, COMMIT; repeat
    so two brokers starting together apply each migration once, and a
    failing migration leaves no trace of itself.  */

#include "gt_pgschema.h"
#include "gt_pgmigrations.h"
#include <czmq.h>

#define S_BACKOFF_MIN_MS    100
#define S_BACKOFF_MAX_MS    5000

//  Copy libpq's message without its trailing newline.
static void
s_set_error (char *err, size_t err_size, const char *prefix, const char *message)
{
    snprintf (err, err_size, "%s%s", prefix, message? message: "");
    size_t length = strlen (err);
    while (length > 0 && (err [length - 1] == '\n' || err [length - 1] == ' '))
        err [--length] = 0;
    for (char *at = err; *at; at++)
        if (*at == '\n' || *at == '\t')
            *at = ' ';
}

static PGconn *
s_connect_once (const char *url)
{
    //  Defaults first: the URL's own settings override them
    const char *keys [] = { "connect_timeout", "fallback_application_name", "dbname", NULL };
    const char *values [] = { "10", "garbagetruck", url, NULL };
    return PQconnectdbParams (keys, values, 1);
}

PGconn *
gt_pgschema_connect (const char *url, int64_t wait_ms, char *err, size_t err_size)
{
    assert (url);
    int64_t deadline = wait_ms < 0? INT64_MAX: zclock_mono () + wait_ms;
    int64_t backoff = S_BACKOFF_MIN_MS;
    while (true) {
        PGconn *conn = s_connect_once (url);
        if (PQstatus (conn) == CONNECTION_OK)
            return conn;
        s_set_error (err, err_size, "cannot connect to PostgreSQL: ", PQerrorMessage (conn));
        PQfinish (conn);
        int64_t now = zclock_mono ();
        if (wait_ms == 0 || now >= deadline || zsys_interrupted)
            return NULL;            //  (a SIGINT/SIGTERM ends a wait, even "forever")
        zsys_warning ("%s (retrying in %d ms)", err, (int) backoff);
        //  Backoff between attempts (not synchronisation): nothing to wait on
        zclock_sleep ((int) (deadline - now < backoff? deadline - now: backoff));
        backoff = backoff * 2 > S_BACKOFF_MAX_MS? S_BACKOFF_MAX_MS: backoff * 2;
    }
}

//  Run one statement; on failure store "prefix: server message" in err.
static int
s_exec (PGconn *conn, const char *sql, const char *prefix, char *err, size_t err_size)
{
    PGresult *result = PQexec (conn, sql);
    ExecStatusType status = PQresultStatus (result);
    int rc = 0;
    if (status != PGRES_COMMAND_OK && status != PGRES_TUPLES_OK) {
        char message [160];
        snprintf (message, sizeof message, "%s: ", prefix);
        s_set_error (err, err_size, message, PQerrorMessage (conn));
        rc = -1;
    }
    PQclear (result);
    return rc;
}

static void
s_rollback (PGconn *conn)
{
    PQclear (PQexec (conn, "ROLLBACK"));
}

//  Highest recorded version, 0 when none; -1 on error.
static int
s_current_version (PGconn *conn, char *err, size_t err_size)
{
    PGresult *result = PQexec (conn,
        "SELECT coalesce (max (version), 0) FROM gt_schema_migrations");
    int version = -1;
    if (PQresultStatus (result) == PGRES_TUPLES_OK && PQntuples (result) == 1)
        version = atoi (PQgetvalue (result, 0, 0));
    else
        s_set_error (err, err_size, "cannot read gt_schema_migrations: ", PQerrorMessage (conn));
    PQclear (result);
    return version;
}

//  One transaction: lock, look, and apply the next migration if any.
//  Returns 1 if a migration was applied, 0 if up to date, -1 on error;
//  *version_p receives the version in place afterwards.
static int
s_migrate_step (PGconn *conn, const gt_pgmigration_t *list, size_t count,
                int *version_p, char *err, size_t err_size)
{
    char lock [96];
    snprintf (lock, sizeof lock, "SELECT pg_advisory_xact_lock (%lld)", (long long) GT_PGSCHEMA_LOCK_KEY);
    if (s_exec (conn, "BEGIN", "cannot begin", err, err_size)
    ||  s_exec (conn, "SET LOCAL client_min_messages = warning", "cannot set up", err, err_size)
    ||  s_exec (conn, lock, "cannot take the migration lock", err, err_size)
    ||  s_exec (conn,
            "CREATE TABLE IF NOT EXISTS gt_schema_migrations ("
            " version integer PRIMARY KEY,"
            " name text NOT NULL,"
            " applied_at timestamptz NOT NULL DEFAULT now ())",
            "cannot create gt_schema_migrations", err, err_size)) {
        s_rollback (conn);
        return -1;
    }
    int current = s_current_version (conn, err, err_size);
    int latest = count? list [count - 1].version: 0;
    if (current < 0) {
        s_rollback (conn);
        return -1;
    }
    if (current > latest) {
        s_rollback (conn);
        snprintf (err, err_size,
            "the database schema is at version %d, newer than this garbagetruck knows "
            "(%d): upgrade garbagetruck, or point DATABASE_URL at another database", current, latest);
        return -1;
    }
    *version_p = current;
    if (current == latest)
        return s_exec (conn, "COMMIT", "cannot commit", err, err_size);

    const gt_pgmigration_t *migration = &list [current];
    assert (migration->version == current + 1);   //  the build guarantees 1..n
    char label [128];
    snprintf (label, sizeof label, "migration %03d_%s failed", migration->version, migration->name);
    if (s_exec (conn, migration->sql, label, err, err_size)) {
        s_rollback (conn);
        return -1;
    }
    char version_text [16];
    snprintf (version_text, sizeof version_text, "%d", migration->version);
    const char *params [] = { version_text, migration->name };
    PGresult *result = PQexecParams (conn,
        "INSERT INTO gt_schema_migrations (version, name) VALUES ($1, $2)",
        2, NULL, params, NULL, NULL, 0);
    bool recorded = PQresultStatus (result) == PGRES_COMMAND_OK;
    PQclear (result);
    if (!recorded) {
        s_set_error (err, err_size, "cannot record the migration: ", PQerrorMessage (conn));
        s_rollback (conn);
        return -1;
    }
    if (s_exec (conn, "COMMIT", label, err, err_size))
        return -1;
    *version_p = migration->version;
    return 1;
}

static int
s_migrate (PGconn *conn, const gt_pgmigration_t *list, size_t count, char *err, size_t err_size)
{
    assert (conn);
    int version = 0;
    int rc;
    while ((rc = s_migrate_step (conn, list, count, &version, err, err_size)) == 1)
        ;
    return rc < 0? -1: version;
}

int
gt_pgschema_migrate (PGconn *conn, char *err, size_t err_size)
{
    return s_migrate (conn, gt_pgmigrations, gt_pgmigration_count, err, err_size);
}

int
gt_pgschema_version (PGconn *conn, char *err, size_t err_size)
{
    PGresult *result = PQexec (conn, "SELECT to_regclass ('gt_schema_migrations') IS NULL");
    bool ok = PQresultStatus (result) == PGRES_TUPLES_OK && PQntuples (result) == 1;
    bool missing = ok && streq (PQgetvalue (result, 0, 0), "t");
    if (!ok)
        s_set_error (err, err_size, "cannot read the schema version: ", PQerrorMessage (conn));
    PQclear (result);
    if (!ok)
        return -1;
    return missing? 0: s_current_version (conn, err, err_size);
}

int
gt_pgschema_latest (void)
{
    return gt_pgmigration_count? gt_pgmigrations [gt_pgmigration_count - 1].version: 0;
}

//  --------------------------------------------------------------------------
//  For the selftest (tests/pg/gt_pgschema_test.c): a migration list of its own

int
gt_pgschema_migrate_list (PGconn *conn, const gt_pgmigration_t *list, size_t count,
                          char *err, size_t err_size)
{
    return s_migrate (conn, list, count, err, err_size);
}

/*  gt_pgschema.h — start-up side of the PostgreSQL store: connect, migrate.

    The broker calls these once, on its own thread, before its loop starts
    (they block; nothing here runs while requests are served):

        char err [512];
        PGconn *conn = gt_pgschema_connect (url, wait_ms, err, sizeof err);
        if (!conn || gt_pgschema_migrate (conn, err, sizeof err) < 0)
            -> print err, exit
        gt_pgload (conn, ...);                 //  recovery, see gt_pgload.h
        gt_pgwriter_new (url, &conn, NULL);   //  the writer takes the connection over

    Migrations are the files broker/store/pg/migrations/NNN_name.sql, embedded at build
    time (gt_pgmigrations.h).  Each is applied in its own transaction that
    first takes pg_advisory_xact_lock (GT_PGSCHEMA_LOCK_KEY), so brokers
    starting together serialise, and is recorded in gt_schema_migrations
    (version, name, applied_at).  Applying is idempotent.  A database whose
    schema is newer than this binary knows is refused with a clear message
    and left untouched.  */
#ifndef GT_PGSCHEMA_H_INCLUDED
#define GT_PGSCHEMA_H_INCLUDED

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <libpq-fe.h>
#include "gt_pgmigrations.h"

#ifdef __cplusplus
extern "C" {
#endif

//  Key of the advisory lock that serialises migrations ("GTSCHEMA").
#define GT_PGSCHEMA_LOCK_KEY    0x4754534348454D41LL

//  Connect (blocking).  url is a postgresql:// URL or a key=value conninfo.
//  wait_ms = 0: one attempt; > 0: keep trying with exponential backoff
//  (100 ms doubling to 5 s) for up to that long; < 0: forever.  Returns the
//  connection, or NULL with the reason (libpq's, plus the host) in err.
PGconn *gt_pgschema_connect (const char *url, int64_t wait_ms, char *err, size_t err_size);

//  Bring the schema up to the newest embedded migration.  Returns the
//  schema version now in place (>= 1), or -1 with a message in err: the
//  database is newer than this binary, or a migration failed (that
//  migration is rolled back; earlier ones stay).
int gt_pgschema_migrate (PGconn *conn, char *err, size_t err_size);

//  The schema version recorded in the database: 0 when none (not yet
//  migrated), or -1 with a message in err.
int gt_pgschema_version (PGconn *conn, char *err, size_t err_size);

//  The newest migration this binary knows.
int gt_pgschema_latest (void);

//  gt_pgschema_migrate with another list than the embedded one, versions
//  1..count in order (for the selftest: migrations that fail).
int gt_pgschema_migrate_list (PGconn *conn, const gt_pgmigration_t *list, size_t count,
                              char *err, size_t err_size);

#ifdef __cplusplus
}
#endif
#endif

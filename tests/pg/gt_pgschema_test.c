/*  gt_pgschema_test.c — selftest of gt_pgschema, against the PostgreSQL
    server in DATABASE_URL (in databases of its own, gt_pgtestdb).  */
#include <czmq.h>
#include "gt_pgschema.h"
#include "gt_pgmigrations.h"
#include "gt_pgtestdb.h"
#include "gt_pg_selftest.h"

//  Migrates a database from its own connection, concurrently with the test.
static void
s_migrate_actor (zsock_t *pipe, void *args)
{
    PGconn *conn = gt_pgtestdb_connect ((gt_pgtestdb_t *) args);
    zsock_signal (pipe, 0);
    char err [256] = "";
    int version = gt_pgschema_migrate (conn, err, sizeof err);
    PQfinish (conn);
    zsock_send (pipe, "is", version, err);
    free (zstr_recv (pipe));        //  $TERM
}

void
gt_pgschema_test (bool verbose)
{
    printf (" * gt_pgschema: ");
    char err [512];

    //  The embedded list is 1..n, each with text
    assert (gt_pgmigration_count >= 1);
    for (size_t index = 0; index < gt_pgmigration_count; index++) {
        assert (gt_pgmigrations [index].version == (int) index + 1);
        assert (strlen (gt_pgmigrations [index].sql) > 0);
    }
    assert (gt_pgschema_latest () == (int) gt_pgmigration_count);
    assert (strstr (gt_pgmigrations [0].sql, "CREATE TABLE gt_leases"));

    //  Unreachable server: clear message at once
    PGconn *conn = gt_pgschema_connect ("postgresql://nobody@127.0.0.1:1/none", 0, err, sizeof err);
    assert (conn == NULL);
    assert (strstr (err, "cannot connect to PostgreSQL"));
    assert (strstr (err, "127.0.0.1"));
    if (verbose)
        printf ("\n   unreachable: %s\n", err);

    gt_pgtestdb_t *testdb = gt_pgtestdb_new ();
    assert (testdb);
    conn = gt_pgschema_connect (gt_pgtestdb_conninfo (testdb), 0, err, sizeof err);
    assert (conn);
    assert (gt_pgschema_version (conn, err, sizeof err) == 0);

    //  First run creates everything, second run is a no-op
    int latest = gt_pgschema_latest ();
    assert (gt_pgschema_migrate (conn, err, sizeof err) == latest);
    assert (gt_pgschema_version (conn, err, sizeof err) == latest);
    char *applied = gt_pgtestdb_value (conn,
        "SELECT string_agg (version || name || applied_at, ',' ORDER BY version) FROM gt_schema_migrations");
    assert (applied);
    assert (gt_pgtestdb_int (conn, "SELECT count (*) FROM gt_meta") == 1);
    //  Only the primary key (002 and 006 drop the indexes nothing reads)
    assert (gt_pgtestdb_int (conn, "SELECT count (*) FROM pg_indexes WHERE tablename = 'gt_leases'") == 1);
    assert (gt_pgtestdb_int (conn, "SELECT count (*) FROM pg_indexes WHERE indexname = 'gt_leases_pkey'") == 1);
    assert (gt_pgtestdb_int (conn, "SELECT count (*) FROM pg_tables WHERE tablename = 'gt_callbacks'") == 1);
    assert (gt_pgschema_migrate (conn, err, sizeof err) == latest);
    char *again = gt_pgtestdb_value (conn,
        "SELECT string_agg (version || name || applied_at, ',' ORDER BY version) FROM gt_schema_migrations");
    assert (streq (applied, again));
    free (applied);
    free (again);
    assert (gt_pgtestdb_int (conn, "SELECT count (*) FROM gt_meta") == 1);

    //  A newer schema is refused, with both versions named, and left alone
    char sql [160];
    snprintf (sql, sizeof sql,
        "INSERT INTO gt_schema_migrations (version, name) VALUES (%d, 'from_the_future')", latest + 1);
    gt_pgtestdb_exec (conn, sql);
    assert (gt_pgschema_migrate (conn, err, sizeof err) == -1);
    char expected [64];
    snprintf (expected, sizeof expected, "version %d, newer", latest + 1);
    assert (strstr (err, expected));
    snprintf (expected, sizeof expected, "(%d)", latest);
    assert (strstr (err, expected));
    if (verbose)
        printf ("   newer: %s\n", err);
    assert (gt_pgschema_version (conn, err, sizeof err) == latest + 1);
    PQfinish (conn);
    gt_pgtestdb_destroy (&testdb);

    //  A failing migration rolls back entirely; the ones before it stay
    gt_pgmigration_t list [] = {
        { 1, "first", "CREATE TABLE t_first (a int); INSERT INTO t_first VALUES (1);" },
        { 2, "broken", "CREATE TABLE t_broken (a int); SELECT 1 / 0;" },
    };
    testdb = gt_pgtestdb_new ();
    conn = gt_pgtestdb_connect (testdb);
    assert (gt_pgschema_migrate_list (conn, list, 2, err, sizeof err) == -1);
    assert (strstr (err, "migration 002_broken failed"));
    assert (strstr (err, "division by zero"));
    assert (gt_pgschema_version (conn, err, sizeof err) == 1);
    assert (gt_pgtestdb_int (conn, "SELECT count (*) FROM t_first") == 1);
    assert (gt_pgtestdb_int (conn, "SELECT count (*) FROM pg_tables WHERE tablename = 't_broken'") == 0);
    //  Fixed, it applies from where it stopped
    list [1].sql = "CREATE TABLE t_broken (a int);";
    assert (gt_pgschema_migrate_list (conn, list, 2, err, sizeof err) == 2);
    assert (gt_pgtestdb_int (conn, "SELECT count (*) FROM t_first") == 1);
    PQfinish (conn);
    gt_pgtestdb_destroy (&testdb);

    //  Brokers starting together: each migration applied exactly once
    testdb = gt_pgtestdb_new ();
    zactor_t *racers [3];
    for (int index = 0; index < 3; index++)
        racers [index] = zactor_new (s_migrate_actor, testdb);
    for (int index = 0; index < 3; index++) {
        int version;
        char *message;
        assert (zsock_recv (racers [index], "is", &version, &message) == 0);
        if (version != latest)
            fprintf (stderr, "racer %d: %s\n", index, message);
        assert (version == latest);
        zstr_free (&message);
        zactor_destroy (&racers [index]);
    }
    conn = gt_pgtestdb_connect (testdb);
    assert (gt_pgtestdb_int (conn, "SELECT count (*) FROM gt_schema_migrations") == latest);
    assert (gt_pgtestdb_int (conn, "SELECT count (*) FROM gt_meta") == 1);
    PQfinish (conn);
    gt_pgtestdb_destroy (&testdb);
    printf ("OK\n");
}

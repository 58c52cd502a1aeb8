/*  gt_pgtestdb.h — a throw-away database for PostgreSQL selftests and benches.

    gt_pgtestdb_new creates an empty database gt_test_<pid>_<n> on the server
    DATABASE_URL names (its role needs CREATEDB), so tests running in
    parallel never share tables; destroy drops it again (WITH (FORCE), which
    also ends connections still open to it).  Test tooling: failures print the
    server's message and abort.  */
#ifndef GT_PGTESTDB_H_INCLUDED
#define GT_PGTESTDB_H_INCLUDED

#include "gt_msg.h"
#include <libpq-fe.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct gt_pgtestdb_t gt_pgtestdb_t;

//  True when DATABASE_URL is set (tests skip otherwise).
bool gt_pgtestdb_available (void);

//  Create a fresh empty database; NULL when DATABASE_URL is not set.
gt_pgtestdb_t *gt_pgtestdb_new (void);
//  Drop the database; nulls the pointer.
void gt_pgtestdb_destroy (gt_pgtestdb_t **self_p);

//  Its name, and a key=value conninfo that connects to it.
const char *gt_pgtestdb_name (gt_pgtestdb_t *self);
const char *gt_pgtestdb_conninfo (gt_pgtestdb_t *self);

//  A new connection to the test database (caller PQfinish-es it).
PGconn *gt_pgtestdb_connect (gt_pgtestdb_t *self);
//  The connection to DATABASE_URL's own database (owned by self), for
//  statements about the test database itself (ALTER DATABASE ...).
PGconn *gt_pgtestdb_admin (gt_pgtestdb_t *self);

//  Run sql on conn; abort with the server's message if it fails.
void gt_pgtestdb_exec (PGconn *conn, const char *sql);
//  First column of the first row of sql as a new string (caller frees),
//  or NULL when there is no row or the value is NULL.
char *gt_pgtestdb_value (PGconn *conn, const char *sql);
//  The same as an integer (0 when NULL or no row).
long long gt_pgtestdb_int (PGconn *conn, const char *sql);
//  Wait (polling pg_stat_activity on conn) until backend pid waits for a
//  lock; abort after timeout_ms.
void gt_pgtestdb_wait_blocked (PGconn *conn, int pid, int64_t timeout_ms);

//  Deterministic test leases: lease number index (any uint32) with all
//  fields exercised: metadata with characters JSON must escape on some,
//  cleanup with and without payload on some (and a callback state on
//  every twelfth), ended states on every tenth.
//  variant changes what a renewal changes (renewals, renewed_at,
//  expires_at).  The strings live in storage.
typedef struct {
    char object_id [32];            //  "object-<index / 2>": two leases per object
    char service_id [16];           //  "svc-<index % 7>"
    char index_text [16];           //  metadata value
    gt_meta_entry_t entries [2];    //  metadata
    char url [64];                  //  cleanup url
    char payload [16];              //  cleanup payload
    gt_cleanup_t cleanup;           //  cleanup
    char idempotency_key [24];      //  "key-<index>"
} gt_pgtestdb_lease_t;

//  Fill lease; returns its idempotency key (every fifth lease) or NULL.
const char *gt_pgtestdb_lease (gt_lease_info_t *lease, gt_pgtestdb_lease_t *storage,
                               uint32_t index, uint32_t variant);
//  The lease number encoded in a test lease id.
uint32_t gt_pgtestdb_lease_index (const char *lease_id);
//  True when both leases are equal field by field (metadata as a set).
bool gt_pgtestdb_lease_equal (const gt_lease_info_t *a, const gt_lease_info_t *b);

#ifdef __cplusplus
}
#endif
#endif

/*  gt_store_pg.h — the PostgreSQL store (GC_STORAGE_BACKEND=postgres):
    gt_store_ops_t over the finished PostgreSQL modules.

    Opening (on the caller's thread, blocking): gt_pgschema_connect (waits
    up to GC_DB_CONNECT_WAIT: 0 = one attempt, negative = forever with
    backoff), then gt_pgschema_migrate (a database newer than this binary is
    refused).  Recovery (gt_store_recover, on the broker's thread): one
    gt_pgload snapshot mapped onto the broker's loader (leases as they
    lie, objects, the newest GC_EVENT_HISTORY events, outbox rows, then
    the counters once), after which the same connection is handed to a
    gt_pgwriter: ONE connection in all (GC_MAX_DB_CONNECTIONS only needs to
    allow it); reads are served from the broker's memory.  Every session
    runs with synchronous_commit = on, whatever the server's default.

    Each broker batch (one loop turn) becomes one gt_pgbatch: lease, object,
    event and outbox rows, the counters (newest event seq, largest fence),
    and now and then a prune of events older than GC_EVENT_HISTORY.  flush
    submits it and answers PENDING; an empty batch (a turn of reads) is
    DONE at once.  The writer group-commits what queued meanwhile
    (GC_DB_GROUP_COMMIT=0: one batch per transaction, one at a time) and
    reports, in order, on the completion socket: completion returns at the
    first COMMIT notice and applies STATE notices on the way (healthy).
    Commit sizes and times are this store's own figures (gt_store_figures).

    Object rows: only an object with a pending reclaim (grace period) needs
    one to be recovered; every other object is rebuilt from its leases, and
    fences never go back because the largest fence handed out is stored with
    every batch.  So object rows are written only for pending reclaims and
    deleted when they end (the store remembers which objects have a row; a
    failed batch's deletions are assumed not to have happened).

    While the writer is disconnected, healthy is false: the broker refuses
    mutations (UNAVAILABLE) and does not run timers; batches caught by the
    outage fail (the broker rolls them back; expiries re-fire later).  The
    writer reconnects with backoff.  */
#ifndef GT_STORE_PG_H_INCLUDED
#define GT_STORE_PG_H_INCLUDED

#include "gt_config.h"
#include "gt_store.h"

#ifdef __cplusplus
extern "C" {
#endif

//  Stored events beyond GC_EVENT_HISTORY are deleted once this many more
//  have accumulated (one DELETE now and then, not one per transaction).
#define GT_STORE_PG_PRUNE_STEP  1024

//  Open the store config names (config->database_url): connect, migrate.
//  NULL with a message in err if it cannot.
gt_store_t *gt_store_pg_open (const gt_config_t *config, char *err, size_t err_size);

//  The conninfo the store connects with: url (postgresql:// or key=value)
//  as key=value, with "-c synchronous_commit=on" added to its options.
//  A new string (caller frees), or NULL with a message in err if url is
//  not a connection string.
char *gt_store_pg_conninfo (const char *url, char *err, size_t err_size);

#ifdef __cplusplus
}
#endif
#endif

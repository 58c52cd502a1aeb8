/*  gt_pgwriter.h — the PostgreSQL store's writer: group commit, off the broker loop.

    A writer is a thread (zactor) that owns one libpq connection in pipeline
    mode.  The broker records each loop turn's changes into a gt_pgbatch_t
    and submits it; submitting never blocks (an unbounded inproc pipe) and
    returns the batch's number (1, 2, 3, ...).  While transactions are in
    flight (pipeline_depth of them), submitted batches queue; as soon as
    one completes, everything queued (up to max_rows and max_bytes) is
    merged and sent as the next single transaction (a handful of multi-row
    statements, one fsync).  That is the group commit: the busier the
    broker, the larger the transactions.  A transaction sent behind another commits only if
    that one did (a guard statement checks it first).

    Completions come back, IN SUBMISSION ORDER, as notices on the socket
    gt_pgwriter_sock returns (the broker adds it to its poller and calls
    gt_pgwriter_recv when it is readable):
        COMMIT  batch N  OK           durable: acknowledge its requests, publish its events
        COMMIT  batch N  FAIL text    not acknowledged (see below)
        STATE   CONNECTED text        connection (re)established: text names the backend pid
        STATE   DEGRADED text         connection lost or unusable: text says why
    A STATE notice is sent on each change only (none for the initial state).

    In-order failure: the broker undoes a failed batch AND every batch it
    submitted after it (gt_store.h's contract).  So after a FAIL the writer
    commits nothing submitted before the broker received that FAIL: it
    FAILs ("an earlier batch failed: ...") every batch it holds or gets
    until gt_pgwriter_recv, on returning that FAIL, sends it a RESUME
    behind the doomed batches.  The broker need do nothing for it but read
    its notices; notices for batches it already undid can be ignored.

    Losing the database (connection refused, backend killed, no answer for
    commit_timeout_ms): the writer reports DEGRADED and reconnects with
    exponential backoff (the first attempt at once, then backoff_min_ms
    doubling up to backoff_max_ms), then reports CONNECTED.  Transactions
    known not to have committed are treated as below at once, without
    waiting for a reconnect: when the server ended the session with an
    error (a FATAL: a fast or smart shutdown, pg_terminate_backend, an
    idle-session timeout), every transaction whose commit it had not
    confirmed before that error (the backend aborts its transaction as it
    exits, and confirms a commit before it acts on a termination request);
    and a transaction the server answered with an error before its end,
    with every one sent behind it.  That holds however the end of the
    connection is seen (the error is often read together with it).  A
    transaction whose answer was lost with the connection WITHOUT such an
    error (the network; an immediate shutdown or a crash, whose WARNING
    may come after a commit; a PANIC) is NOT guessed at: every
    transaction writes its own token into gt_meta.commit_token, and after
    the reconnect the writer first ends the old session if the server
    still has it (pg_terminate_backend, waiting for it to go: it could
    otherwise commit later), then reads the token back, so the batches
    report OK if it committed.  Otherwise, by options.outage:
      GT_PGWRITER_FAIL (default): the batches FAIL: at once when known
        not committed ("PostgreSQL unavailable: PostgreSQL ended the
        session: <its message>" after such an error), else after the check
        ("not committed: ...").  Batches queued at the loss or submitted while DEGRADED FAIL at once
        ("PostgreSQL unavailable: ..."), except behind a transaction still
        being checked.  If the database stays away for commit_timeout_ms
        after losing an answer, that transaction FAILs with "outcome
        unknown": the one case where a FAILed batch may nevertheless be in
        the database (rows the broker writes again are corrected; a lease
        created only in that batch would reappear after a restart).
      GT_PGWRITER_HOLD: nothing FAILs for an outage: batches wait, and an
        uncommitted transaction is sent again after the reconnect; their
        notices come late, still in order.  The broker then only refuses
        NEW client mutations (UNAVAILABLE) while DEGRADED.
    A statement the server refuses FAILs its transaction's batches under
    both policies, with the server's message; nothing of it is committed.

    Plain inserts (gt_pgbatch.h): new leases and events go in without ON
    CONFLICT, since no earlier transaction wrote their keys, except once an
    answer was lost with the connection (the transaction may have
    committed, or commit late; after an "outcome unknown" the broker writes
    the keys of the batches it undid again) or after a unique violation
    (SQLSTATE 23505: a key was there after all; that transaction FAILs
    like any refused one): from then on the writer upserts every row, as
    long as it lives.

    Typical broker use:
        gt_pgwriter_t *writer = gt_pgwriter_new (url, &conn, NULL);
        zpoller_add (poller, gt_pgwriter_sock (writer));
        ... each loop turn: if (!gt_pgbatch_empty (batch)) n = gt_pgwriter_submit (writer, &batch);
        ... when gt_pgwriter_sock is readable:
            gt_pgnotice_t notice;
            gt_pgwriter_recv (writer, &notice);
        gt_pgwriter_destroy (&writer);   //  commits what is queued first (bounded wait)  */
#ifndef GT_PGWRITER_H_INCLUDED
#define GT_PGWRITER_H_INCLUDED

#include "gt_pgbatch.h"
#include <czmq.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct gt_pgwriter_t gt_pgwriter_t;

typedef enum {
    GT_PGWRITER_FAIL = 0,           //  batches caught by an outage FAIL (once known uncommitted)
    GT_PGWRITER_HOLD                //  they wait for the reconnect
} gt_pgwriter_outage_t;

typedef struct {
    gt_pgwriter_outage_t outage;    //  see above; default GT_PGWRITER_FAIL
    int64_t backoff_min_ms;         //  first reconnect delay after a failed attempt; default 100
    int64_t backoff_max_ms;         //  reconnect delay cap; default 5000
    int64_t commit_timeout_ms;      //  a transaction (or connect) unanswered this long: connection lost; default 10000
    size_t max_rows;                //  merge queued batches up to this many rows per transaction; default 50000
    size_t max_bytes;               //  ... and up to this many encoded bytes (a statement's parameter is one
                                    //  message, which PostgreSQL caps at 1 GB); default 64 MiB
    size_t pipeline_depth;          //  transactions in flight at once, 1 .. 8; default 2
    const char *application_name;   //  pg_stat_activity name; NULL: the URL's, else "garbagetruck-writer"
    const char *broker_id;          //  who proves fenced batches' epochs (gt_pgbatch_send); NULL: none
    bool cluster;                   //  cluster mode: the broker's own token and per-shard counters (needs broker_id)
} gt_pgwriter_options_t;

typedef enum {
    GT_PGNOTICE_COMMIT = 0,         //  a batch completed
    GT_PGNOTICE_STATE               //  the connection state changed
} gt_pgnotice_kind_t;

typedef struct {
    gt_pgnotice_kind_t kind;        //  COMMIT or STATE
    uint64_t batch;                 //  COMMIT: the batch number; STATE: 0
    bool ok;                        //  COMMIT: committed (else FAIL); STATE: connected (else degraded)
    char text [512];                //  FAIL: why; STATE: detail; else empty
} gt_pgnotice_t;

//  Fill options with the defaults.
void gt_pgwriter_options_init (gt_pgwriter_options_t *options);

//  Start a writer.  url (postgresql:// or key=value) is kept for reconnects.
//  conn_p: an open connection the writer takes over (nulled), typically the
//  one start-up migrated and loaded with; NULL or *conn_p NULL: the writer
//  connects itself and reports CONNECTED (or DEGRADED).  options NULL:
//  defaults.  The schema must be migrated (gt_pgschema_migrate) first.
//  The writer sets its own notice receiver on its connections (to see the
//  error that ends a session) and hands every message on to libpq's
//  default one, so the connection's notice processor still gets them: a
//  connection handed over must have libpq's default notice receiver.
gt_pgwriter_t *gt_pgwriter_new (const char *url, PGconn **conn_p,
                                const gt_pgwriter_options_t *options);
//  Stop: waits (up to commit_timeout_ms) for the queued batches to commit
//  while connected, then closes; nulls the pointer.  Notices not received
//  are dropped.
void gt_pgwriter_destroy (gt_pgwriter_t **self_p);

//  Hand a batch over (ownership passes; *batch_p is nulled).  Never blocks.
//  Returns its number: 1 for the first batch, then +1 each time.
uint64_t gt_pgwriter_submit (gt_pgwriter_t *self, gt_pgbatch_t **batch_p);

//  The socket notices arrive on: poll it for input.
zsock_t *gt_pgwriter_sock (gt_pgwriter_t *self);
//  Receive one notice (blocks until one is there: poll first).  Returns 0,
//  or -1 if interrupted.
int gt_pgwriter_recv (gt_pgwriter_t *self, gt_pgnotice_t *notice);

//  Connection state as of the last STATE notice received (initially: true
//  when a connection was handed over, false otherwise).
bool gt_pgwriter_connected (gt_pgwriter_t *self);
//  Batches submitted whose COMMIT notice has not been received yet.
uint64_t gt_pgwriter_pending (gt_pgwriter_t *self);

#ifdef __cplusplus
}
#endif
#endif

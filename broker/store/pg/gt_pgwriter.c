/*  gt_pgwriter.c — group-commit writer thread; the contract is in gt_pgwriter.h.

    The thread polls three things: the actor pipe ($TERM), the batch pipe
    (batches and RESUME in, notices out) and the libpq socket.  The
    connection runs in non-blocking pipeline mode:

      DOWN --(retry time)--> CONNECTING --(PQconnectPoll OK)--> PREPARING
        ^                       |                                  |
        +----(failure)----------+----------------(prepared)-----> READY

    A transaction is its statements plus one PQpipelineSync: the statements
    between two syncs form one implicit transaction that commits at the
    sync, and its sync result after no error means committed.  Up to
    pipeline_depth transactions are in flight at once, so the server starts
    the next one while the answer to the previous one travels back and the
    writer merges what queued meanwhile.  Each transaction stores its own
    token in gt_meta.commit_token, and each one sent behind another starts
    with a guard statement that fails unless the stored token is the
    previous one's: a transaction never commits after one that failed.

    After a lost connection, PREPARING reads the stored token back: the
    transactions in flight up to the one whose token it is did commit, the
    later ones did not.  That check is skipped when the server ended the
    session with an error (a FATAL: a fast shutdown, pg_terminate_backend):
    nothing unanswered then committed.  The FATAL comes just before the end
    of the stream, often read by the same libpq call that finds the end, so
    whenever libpq reports the connection broken the writer first takes
    every result and message libpq still holds (s_connection_broken).  Some
    libpq versions (15 does) also drop the pipeline's queue with the
    connection and then hand that last ErrorResponse to the notice receiver
    instead of returning it as a result, so the writer installs its own
    receiver.  What libpq had read before the FATAL goes the same way: a
    ReadyForQuery among it ended a transaction that committed (a fast stop
    that found the backend idle, right after a commit, with the answer and
    the FATAL read at once).  The receiver keeps those syncs and errors, and
    they settle their transactions first (s_settle_swallowed); only what
    follows is known uncommitted.

    Rejecting: the broker undoes a failed batch and every batch it submitted
    after it, so once the writer FAILs a batch it must not commit any batch
    submitted before the broker heard of it.  From its first FAIL on, the
    writer FAILs everything until the RESUME the broker side sends when it
    receives that FAIL (the pipe keeps order, so RESUME follows exactly the
    doomed batches).  */

#include "gt_pgwriter.h"

#define S_TEXT      512             //  size of every message buffer
#define S_MAX_DEPTH 8               //  transactions in flight at most
//  Answers kept that libpq parsed outside any query (s_notice_receiver):
//  a sync and an error at most per transaction in flight
#define S_SWALLOWED_MAX     (4 * S_MAX_DEPTH)

typedef enum {
    S_DOWN,                         //  no connection; next attempt at retry_at
    S_CONNECTING,                   //  PQconnectPoll in progress
    S_PREPARING,                    //  statements being prepared, commit token read
    S_READY                         //  usable
} s_state_t;

typedef enum {
    S_UNANNOUNCED,                  //  nothing said yet: the first attempt is under way
    S_ANNOUNCED_UP,                 //  CONNECTED said (or a connection was handed over)
    S_ANNOUNCED_DOWN                //  DEGRADED said
} s_announced_t;

typedef struct {
    uint64_t number;                //  batch number
    gt_pgbatch_t *batch;            //  its changes
} s_item_t;

typedef struct {
    gt_pgbatch_t *batch;            //  merged batches
    uint64_t first;                 //  first batch number in it
    uint64_t last;                  //  last batch number in it
    uint64_t token;                 //  commit token of its last sending
    bool sent;                      //  sent on the current connection, answer awaited
    bool doomed;                    //  FAIL already reported: its answer is discarded
    bool guarded;                   //  sent behind another: starts with the guard statement
    int64_t sent_at;                //  when it was sent (mono ms)
    char error [S_TEXT];            //  first error in its answer, or empty
    bool refused;                   //  that error came from the server (SQLSTATE), not a PANIC: not committed
} s_flight_t;

typedef struct {
    zsock_t *pipe;                  //  actor pipe: $TERM
    zsock_t *data;                  //  batches in, notices out
    char *url;                      //  conninfo for reconnects
    gt_pgwriter_options_t options;  //  settings (application_name: see below)
    char *application_name;         //  owned copy, or NULL
    char *broker_id;                //  owned copy of options.broker_id (the epoch proof), or NULL
    PGconn *conn;                   //  the connection, or NULL when DOWN
    s_state_t state;                //  connection state
    PostgresPollingStatusType polling;  //  CONNECTING: what PQconnectPoll waits for
    s_announced_t announced;        //  state the broker last heard
    char down_reason [S_TEXT];      //  why the connection was last lost
    int64_t retry_at;               //  DOWN: next attempt (mono ms)
    int64_t backoff;                //  delay after the next failed attempt
    int64_t started_at;             //  CONNECTING/PREPARING: since when (mono ms)
    char prepare_error [S_TEXT];    //  PREPARING: first error, or empty
    zlistx_t *queue;                //  s_item_t waiting, in order
    s_flight_t flights [S_MAX_DEPTH];   //  transactions, oldest first
    size_t flight_count;            //  transactions in flights
    PQnoticeReceiver passed_on;     //  the connection's receiver before ours: libpq's default
    bool ended_by_server;           //  the server sent a FATAL on this connection: it ends the session
    char ended_text [S_TEXT];       //  that FATAL's message
    bool answers_lost;              //  connection lost with some in flight: check tokens
    int lost_pid;                   //  backend pid of that connection (ended before the check)
    int session_pid;                //  backend pid of the current connection, once READY
    int64_t lost_at;                //  when (mono ms)
    uint64_t token_base;            //  this writer's tokens: token_base + transactions
    uint64_t transactions;          //  transactions sent
    uint64_t stored_token;          //  commit token read at the last connect
    gt_pgbatch_row_types_t row_types;   //  the database's row types, read at the last connect
    uint64_t committed_token;       //  token of the last transaction known committed
    bool flushing;                  //  output left to flush
    bool rejecting;                 //  FAIL everything until RESUME
    char reject_reason [S_TEXT];    //  the first failure of the rejecting spell
    bool terminating;               //  $TERM received: drain, then exit
    int64_t terminate_by;           //  give up draining at (mono ms)
    bool upsert;                    //  rows may exist already (an outcome unknown, a 23505): upsert all, from now on
    char swallowed [S_SWALLOWED_MAX];   //  answers parsed after libpq dropped its queue: 'E' error, 'Z' sync
    size_t swallowed_count;         //  how many (more are not kept: see s_notice_receiver)
    char swallowed_error [S_TEXT];  //  the first such error's message
} s_writer_t;

static void
s_notice (s_writer_t *self, const char *kind, uint64_t batch, const char *status, const char *text)
{
    zsock_send (self->data, "s8ss", kind, batch, status, text? text: "");
}

//  libpq's last message without trailing newlines, folded onto one line.
static void
s_conn_error (PGconn *conn, const char *prefix, char *buffer, size_t size)
{
    snprintf (buffer, size, "%s%s", prefix, conn? PQerrorMessage (conn): "");
    size_t length = strlen (buffer);
    while (length > 0 && (buffer [length - 1] == '\n' || buffer [length - 1] == ' '))
        buffer [--length] = 0;
    for (char *at = buffer; *at; at++)
        if (*at == '\n' || *at == '\t')
            *at = ' ';
}

//  Is this error the server ending the session?  A FATAL ErrorResponse
//  (57P01 admin_shutdown from a fast shutdown or pg_terminate_backend,
//  57P03, 57P05, ...): the backend exits right after sending it, which
//  aborts its open transaction, and it reports a commit (ReadyForQuery)
//  before it reads on or acts on a termination request (interrupts are held
//  while it commits).  So a transaction whose sync result had not come
//  before that FATAL did not commit.  Severity, not SQLSTATE: an immediate
//  shutdown sends its 57P01 (and a crash its 57P02) as a WARNING at any
//  moment, even after the commit record is durable, and so may a PANIC
//  come; neither says anything about the outcome.
static bool
s_ends_session (const PGresult *result)
{
    const char *severity = PQresultErrorField (result, PG_DIAG_SEVERITY_NONLOCALIZED);
    return severity && streq (severity, "FATAL");
}

//  Note an error or notice from the server: is it the end of the session?
static void
s_note_server_message (s_writer_t *self, const PGresult *result)
{
    if (self->ended_by_server || !s_ends_session (result))
        return;
    self->ended_by_server = true;
    const char *message = PQresultErrorField (result, PG_DIAG_MESSAGE_PRIMARY);
    const char *sqlstate = PQresultErrorField (result, PG_DIAG_SQLSTATE);
    snprintf (self->ended_text, sizeof self->ended_text, "%.400s (%s)",
              message? message: "FATAL", sqlstate? sqlstate: "no SQLSTATE");
}

//  libpq's receiver for what the server says outside a query's results:
//  notices, and an ErrorResponse that arrived when no query was pending in
//  libpq's eyes (a session ended while idle, or, with libpq versions that
//  drop the pipeline's queue with the connection, such as 15, the FATAL
//  parsed after that).  Noted, then passed on: libpq's default receiver
//  hands the message to the connection's notice processor (it takes that
//  from the result, not from its argument)
static void
s_notice_receiver (void *arg, const PGresult *result)
{
    s_writer_t *self = (s_writer_t *) arg;
    s_note_server_message (self, result);
    //  With its queue dropped, libpq still parses what it had read, in
    //  order, but matches none of it to a transaction: an ERROR comes here
    //  as such, a ReadyForQuery (the end of a transaction: committed
    //  unless an error came before it) as libpq's own "message type 0x5a
    //  arrived from server while idle".  Kept, to settle the transactions
    //  they answer (s_settle_swallowed) instead of taking them as lost
    const char *severity = PQresultErrorField (result, PG_DIAG_SEVERITY_NONLOCALIZED);
    const char *message = PQresultErrorField (result, PG_DIAG_MESSAGE_PRIMARY);
    char kind = 0;
    if (severity && streq (severity, "ERROR"))
        kind = 'E';
    else
    if (severity && streq (severity, "NOTICE") && !PQresultErrorField (result, PG_DIAG_SQLSTATE)
    &&  message && strstr (message, "0x5a"))
        kind = 'Z';                         //  libpq's own notice (no SQLSTATE), in any language
    if (kind && self->state == S_READY && self->conn && PQstatus (self->conn) == CONNECTION_BAD
    &&  self->swallowed_count < S_SWALLOWED_MAX) {
        if (kind == 'E' && !*self->swallowed_error)
            snprintf (self->swallowed_error, sizeof self->swallowed_error, "%s", message? message: "error");
        const char *sqlstate = PQresultErrorField (result, PG_DIAG_SQLSTATE);
        if (kind == 'E' && sqlstate && streq (sqlstate, "23505"))
            self->upsert = true;            //  as in s_take_results
        self->swallowed [self->swallowed_count++] = kind;
    }
    if (self->passed_on)
        self->passed_on (NULL, result);
}

//  Take a connection over: our notice receiver on it.
static void
s_adopt (s_writer_t *self, PGconn *conn)
{
    self->conn = conn;
    self->ended_by_server = false;
    self->passed_on = PQsetNoticeReceiver (conn, s_notice_receiver, self);
}

static void
s_item_destroy (void **item_p)
{
    s_item_t *item = (s_item_t *) *item_p;
    if (item) {
        gt_pgbatch_destroy (&item->batch);
        free (item);
        *item_p = NULL;
    }
}

//  FAIL one batch; the first FAIL starts a rejecting spell.
static void
s_fail_batch (s_writer_t *self, uint64_t number, const char *text)
{
    s_notice (self, "COMMIT", number, "FAIL", text);
    if (!self->rejecting) {
        self->rejecting = true;
        snprintf (self->reject_reason, sizeof self->reject_reason, "%s", text);
    }
}

static void
s_fail_flight (s_writer_t *self, s_flight_t *flight, const char *text)
{
    for (uint64_t number = flight->first; number <= flight->last; number++)
        s_fail_batch (self, number, text);
    flight->doomed = true;
}

//  Drop the oldest transaction.
static void
s_flight_pop (s_writer_t *self)
{
    assert (self->flight_count > 0);
    gt_pgbatch_destroy (&self->flights [0].batch);
    memmove (&self->flights [0], &self->flights [1], (self->flight_count - 1) * sizeof (s_flight_t));
    self->flight_count--;
}

//  Drop the doomed transactions no answer will come for.
static void
s_flights_drop_unsent_doomed (s_writer_t *self)
{
    size_t kept = 0;
    for (size_t index = 0; index < self->flight_count; index++) {
        s_flight_t *flight = &self->flights [index];
        if (flight->doomed && !flight->sent)
            gt_pgbatch_destroy (&flight->batch);
        else
            self->flights [kept++] = *flight;
    }
    self->flight_count = kept;
}

//  FAIL every transaction from index on (text for the first, "an earlier
//  batch failed" for the rest) and every queued batch (queue_text, or the
//  same "earlier" text when NULL).  Transactions still to be answered stay
//  (doomed) until their answer is read.
static void
s_fail_from (s_writer_t *self, size_t index, const char *text, const char *queue_text)
{
    for (; index < self->flight_count; index++) {
        s_flight_t *flight = &self->flights [index];
        if (flight->doomed)
            continue;
        char earlier [S_TEXT];
        snprintf (earlier, sizeof earlier, "an earlier batch failed: %.400s",
                  self->rejecting? self->reject_reason: text);
        s_fail_flight (self, flight, self->rejecting? earlier: text);
    }
    s_flights_drop_unsent_doomed (self);
    s_item_t *item;
    while ((item = (s_item_t *) zlistx_detach (self->queue, NULL))) {
        char earlier [S_TEXT];
        snprintf (earlier, sizeof earlier, "an earlier batch failed: %.400s",
                  self->rejecting? self->reject_reason: text);
        s_fail_batch (self, item->number, queue_text? queue_text: earlier);
        void *pointer = item;
        s_item_destroy (&pointer);
    }
}

//  The oldest transaction committed.
static void
s_flight_committed (s_writer_t *self)
{
    s_flight_t *flight = &self->flights [0];
    self->committed_token = flight->token;
    for (uint64_t number = flight->first; number <= flight->last; number++)
        s_notice (self, "COMMIT", number, "OK", "");
    s_flight_pop (self);
}

static void s_sync_done (s_writer_t *self);

//  Settle the transactions whose answers libpq parsed after dropping its
//  queue, in order, as s_take_results would have: an error marks the
//  oldest one refused, a sync ends it (committed if nothing failed it).
//  Without this, a commit whose ReadyForQuery came in the same read as a
//  FATAL (a fast shutdown while the backend was idle) would be taken for
//  uncommitted.
static void
s_settle_swallowed (s_writer_t *self)
{
    for (size_t index = 0; index < self->swallowed_count; index++) {
        if (self->flight_count == 0 || !self->flights [0].sent)
            break;
        s_flight_t *flight = &self->flights [0];
        if (self->swallowed [index] == 'E') {
            if (!*flight->error) {
                snprintf (flight->error, sizeof flight->error, "%s", self->swallowed_error);
                flight->refused = true;
            }
        }
        else
            s_sync_done (self);
    }
    self->swallowed_count = 0;
    self->swallowed_error [0] = 0;
}

//  The connection is gone or unusable: close it, tell the broker, decide
//  the fate of the batches, schedule the reconnect.
static void
s_connection_lost (s_writer_t *self, const char *reason)
{
    if (self->state == S_READY)
        s_settle_swallowed (self);
    //  The server's own word says more than libpq's about the closed socket
    char ended [S_TEXT];
    if (self->ended_by_server) {
        snprintf (ended, sizeof ended, "PostgreSQL ended the session: %.440s", self->ended_text);
        reason = ended;
    }
    snprintf (self->down_reason, sizeof self->down_reason, "%s", reason);
    //  (PQbackendPID says 0 once the connection is bad: use the one noted)
    int pid = self->state == S_READY? self->session_pid: 0;
    if (self->conn)
        PQfinish (self->conn);
    self->conn = NULL;
    bool was_ready = self->state == S_READY;
    self->state = S_DOWN;
    self->flushing = false;
    if (was_ready)
        self->retry_at = zclock_mono ();       //  first attempt at once
    else {
        self->retry_at = zclock_mono () + self->backoff;
        self->backoff *= 2;
        if (self->backoff > self->options.backoff_max_ms)
            self->backoff = self->options.backoff_max_ms;
    }
    if (self->announced != S_ANNOUNCED_DOWN) {
        self->announced = S_ANNOUNCED_DOWN;
        s_notice (self, "STATE", 0, "DEGRADED", reason);
    }
    //  No answer will come on this connection.  But if the server ended
    //  the session with a FATAL (s_ends_session), no transaction still
    //  unanswered committed.  Nor did any if the server answered the oldest
    //  live one with an error before its sync: each sent behind it is
    //  guarded by it.  Either way: nothing to check
    bool known_uncommitted = self->ended_by_server;
    self->ended_by_server = false;
    for (size_t index = 0; index < self->flight_count && !known_uncommitted; index++) {
        s_flight_t *flight = &self->flights [index];
        if (flight->sent && !flight->doomed) {
            known_uncommitted = flight->refused;
            break;
        }
    }
    for (size_t index = 0; index < self->flight_count; index++) {
        s_flight_t *flight = &self->flights [index];
        if (flight->sent && !flight->doomed && !self->answers_lost && !known_uncommitted) {
            self->answers_lost = true;          //  may have committed: check after the reconnect
            //  The check trusts that the old session is gone; if it
            //  commits late after all, a resent batch meets its rows
            self->upsert = true;
            self->lost_at = zclock_mono ();
            self->lost_pid = pid;
        }
        if (flight->doomed)
            flight->sent = false;
    }
    s_flights_drop_unsent_doomed (self);
    for (size_t index = 0; index < self->flight_count; index++)
        self->flights [index].sent = false;
    if (self->options.outage == GT_PGWRITER_FAIL && !self->answers_lost) {
        char text [S_TEXT];
        snprintf (text, sizeof text, "PostgreSQL unavailable: %.400s", reason);
        s_fail_from (self, 0, text, text);
    }
}

//  Queue statement preparation and the commit token read on a fresh
//  connection.
static void
s_start_preparing (s_writer_t *self)
{
    self->swallowed_count = 0;
    self->swallowed_error [0] = 0;
    self->state = S_PREPARING;
    self->started_at = zclock_mono ();
    self->prepare_error [0] = 0;
    self->stored_token = 0;
    memset (&self->row_types, 0, sizeof self->row_types);
    //  Answers were lost: the old session may still be alive (a network
    //  failure the server has not noticed) and could commit later; end it
    //  first (waiting for it to go), so the token read back is final
    //  (the waiting form needs PostgreSQL 14; before it, the signal alone)
    char wait [32] = "";
    if (PQserverVersion (self->conn) >= 140000)
        snprintf (wait, sizeof wait, ", %d", (int) (self->options.commit_timeout_ms / 2));
    char terminate [256];
    snprintf (terminate, sizeof terminate,
              "SELECT pg_terminate_backend (pid%s) FROM pg_stat_activity WHERE pid = %d"
              " AND datname = current_database () AND usename = current_user AND pid <> pg_backend_pid ()",
              wait, self->lost_pid);
    if (PQsetnonblocking (self->conn, 1) != 0
    ||  PQenterPipelineMode (self->conn) != 1
    ||  gt_pgbatch_prepare (self->conn) < 0
    ||  (self->answers_lost && self->lost_pid
         && PQsendQueryParams (self->conn, terminate, 0, NULL, NULL, NULL, NULL, 0) != 1)
    ||  (self->options.cluster
         ? PQsendQueryParams (self->conn, "SELECT token AS commit_token FROM gt_commit_tokens WHERE broker_id = $1",
                              1, NULL, (const char *const *) &self->broker_id, NULL, NULL, 0) != 1
         : PQsendQueryParams (self->conn, "SELECT commit_token FROM gt_meta",
                              0, NULL, NULL, NULL, NULL, 0) != 1)
    ||  PQpipelineSync (self->conn) != 1) {
        char reason [S_TEXT];
        s_conn_error (self->conn, "cannot set up the connection: ", reason, sizeof reason);
        s_connection_lost (self, reason);
        return;
    }
    self->flushing = true;
}

static void s_connection_broken (s_writer_t *self, const char *prefix);

static void
s_start_connecting (s_writer_t *self)
{
    //  Defaults first: the URL's own settings override them; then ours
    const char *keys [] = { "fallback_application_name", "keepalives_idle", "keepalives_interval",
                            "keepalives_count", "dbname", "application_name", NULL };
    const char *values [] = { "garbagetruck-writer", "10", "5", "3", self->url,
                              self->application_name, NULL };
    if (!self->application_name)
        keys [5] = NULL;
    PGconn *conn = PQconnectStartParams (keys, values, 1);
    self->conn = NULL;
    if (conn)
        s_adopt (self, conn);
    self->started_at = zclock_mono ();
    if (!self->conn || PQstatus (self->conn) == CONNECTION_BAD) {
        char reason [S_TEXT];
        s_conn_error (self->conn, "cannot connect to PostgreSQL: ", reason, sizeof reason);
        s_connection_lost (self, reason);
        return;
    }
    self->state = S_CONNECTING;
    self->polling = PGRES_POLLING_WRITING;
}

//  Send one transaction: the first unsent one, else a new one merged from
//  the queue (up to max_rows and max_bytes).  Returns false when there was
//  nothing to send.
static bool
s_send_next (s_writer_t *self)
{
    size_t index = 0;
    while (index < self->flight_count && self->flights [index].sent)
        index++;
    if (index == self->flight_count) {
        if (self->flight_count == self->options.pipeline_depth)
            return false;
        s_item_t *item = (s_item_t *) zlistx_detach (self->queue, NULL);
        if (!item)
            return false;
        s_flight_t *flight = &self->flights [self->flight_count++];
        memset (flight, 0, sizeof *flight);
        flight->batch = item->batch;
        flight->first = flight->last = item->number;
        free (item);
        s_item_t *next;
        while ((next = (s_item_t *) zlistx_first (self->queue))
           &&  gt_pgbatch_size (flight->batch) + gt_pgbatch_size (next->batch) <= self->options.max_rows
           &&  gt_pgbatch_bytes (flight->batch) + gt_pgbatch_bytes (next->batch) <= self->options.max_bytes) {
            zlistx_detach (self->queue, NULL);
            gt_pgbatch_merge (flight->batch, &next->batch);
            flight->last = next->number;
            free (next);
        }
    }
    //  Guard: behind the nearest live transaction, or (when all before are
    //  doomed) behind the last one that committed
    s_flight_t *flight = &self->flights [index];
    uint64_t after = 0;
    if (index > 0) {
        after = self->committed_token;
        for (size_t before = 0; before < index; before++)
            if (!self->flights [before].doomed)
                after = self->flights [before].token;
    }
    flight->guarded = after != 0;
    flight->token = self->token_base + ++self->transactions;
    flight->error [0] = 0;
    flight->refused = false;
    flight->sent = true;                    //  from the sync on it may commit
    flight->sent_at = zclock_mono ();
    if (gt_pgbatch_send (flight->batch, self->conn, &self->row_types, flight->token, after,
                         self->broker_id, self->options.cluster, self->upsert) < 0
    ||  PQpipelineSync (self->conn) != 1) {
        s_connection_broken (self, "cannot send to PostgreSQL: ");
        return false;
    }
    self->flushing = true;
    return true;
}

//  Connected and prepared: settle the transactions whose answer was lost.
static void
s_ready (s_writer_t *self)
{
    self->state = S_READY;
    self->session_pid = PQbackendPID (self->conn);
    self->backoff = self->options.backoff_min_ms;
    if (self->announced != S_ANNOUNCED_UP) {
        self->announced = S_ANNOUNCED_UP;
        char text [64];
        snprintf (text, sizeof text, "connected (backend pid %d)", PQbackendPID (self->conn));
        s_notice (self, "STATE", 0, "CONNECTED", text);
    }
    self->committed_token = self->stored_token;
    if (self->answers_lost) {
        self->answers_lost = false;
        //  Committed: everything up to the transaction whose token is stored
        size_t committed = 0;
        for (size_t index = 0; index < self->flight_count; index++)
            if (self->flights [index].token == self->stored_token)
                committed = index + 1;
        while (committed--)
            s_flight_committed (self);
        if (self->options.outage == GT_PGWRITER_FAIL && self->flight_count) {
            char text [S_TEXT];
            snprintf (text, sizeof text, "not committed: %.400s", self->down_reason);
            s_fail_from (self, 0, text, NULL);
        }
        //  HOLD: the rest is sent again
    }
}

//  A sync result arrived: the preparation or the oldest transaction is over.
static void
s_sync_done (s_writer_t *self)
{
    if (self->state == S_PREPARING) {
        if (*self->prepare_error || !self->row_types.lease) {
            char reason [S_TEXT];
            snprintf (reason, sizeof reason, "cannot prepare statements: %.400s",
                      *self->prepare_error? self->prepare_error: "the row types were not read");
            s_connection_lost (self, reason);
        }
        else
            s_ready (self);
        return;
    }
    assert (self->flight_count > 0 && self->flights [0].sent);
    s_flight_t *flight = &self->flights [0];
    if (flight->doomed)
        s_flight_pop (self);
    else
    if (*flight->error) {
        if (flight->guarded && strstr (flight->error, "division by zero"))
            snprintf (flight->error, sizeof flight->error, "%s",
                      "the previous transaction did not commit (is another broker writing to this database?)");
        s_fail_from (self, 0, flight->error, NULL);
        s_flight_pop (self);
    }
    else
        s_flight_committed (self);
}

//  Is an answer still expected on the connection?
static bool
s_awaiting (s_writer_t *self)
{
    return self->state == S_PREPARING || (self->flight_count && self->flights [0].sent);
}

//  Act on the complete results libpq holds (read already: no reading).
static void
s_take_results (s_writer_t *self)
{
    while (s_awaiting (self) && !PQisBusy (self->conn)) {
        PGresult *result = PQgetResult (self->conn);
        if (!result) {
            if (PQstatus (self->conn) == CONNECTION_BAD)
                break;
            continue;                           //  end of one statement's results
        }
        ExecStatusType status = PQresultStatus (result);
        char *error = self->state == S_PREPARING? self->prepare_error: self->flights [0].error;
        if (status == PGRES_FATAL_ERROR)
            s_note_server_message (self, result);
        if (status == PGRES_FATAL_ERROR && !*error) {
            //  The server's own errors carry a SQLSTATE; libpq's (connection
            //  lost) do not.  A PANIC proves nothing: it may come after the
            //  commit record is durable
            const char *severity = PQresultErrorField (result, PG_DIAG_SEVERITY_NONLOCALIZED);
            const char *sqlstate = PQresultErrorField (result, PG_DIAG_SQLSTATE);
            if (self->state != S_PREPARING)
                self->flights [0].refused = sqlstate != NULL && !(severity && streq (severity, "PANIC"));
            //  A plain INSERT met a row: some transaction wrote that key
            //  after all.  This transaction FAILs (the broker undoes its
            //  batches and answers their requests UNAVAILABLE); every row
            //  is upserted from now on, so it cannot happen again
            if (sqlstate && streq (sqlstate, "23505"))
                self->upsert = true;
            const char *message = PQresultErrorMessage (result);
            snprintf (error, S_TEXT, "%s", message? message: "error");
            size_t length = strlen (error);
            while (length > 0 && error [length - 1] == '\n')
                error [--length] = 0;
        }
        if (status == PGRES_TUPLES_OK && self->state == S_PREPARING && PQntuples (result) == 1
        &&  streq (PQfname (result, 0), "commit_token"))
            self->stored_token = strtoull (PQgetvalue (result, 0, 0), NULL, 10);
        if (self->state == S_PREPARING)
            gt_pgbatch_row_types_read (result, &self->row_types);
        PQclear (result);
        if (status == PGRES_PIPELINE_SYNC) {
            s_sync_done (self);
            if (self->state == S_DOWN)
                return;
        }
    }
}

//  libpq found the connection broken, reading or sending (it reads while
//  it sends).  What it read before stays in its buffer and may settle the
//  transactions in flight: their results, and the server's last words, the
//  FATAL with which it ends a session just before the stream ends (often
//  read by the very call that then finds the end).  So act on all of it
//  before giving the connection up.
static void
s_connection_broken (s_writer_t *self, const char *prefix)
{
    char reason [S_TEXT];
    s_conn_error (self->conn, prefix, reason, sizeof reason);
    s_take_results (self);
    if (self->state == S_DOWN)
        return;                         //  settled while taking them (preparation failed)
    //  Some libpq versions (15 does) drop the pipeline's queue with the
    //  connection: what follows the last result libpq could still match is
    //  parsed only now (PQisBusy parses), outside any query, and goes to
    //  s_notice_receiver, the FATAL with it
    PQisBusy (self->conn);
    s_connection_lost (self, reason);
}

//  Read what the server sent and act on complete results.
static void
s_read_results (s_writer_t *self)
{
    if (PQconsumeInput (self->conn) != 1)
        s_connection_broken (self, "PostgreSQL connection lost: ");
    else {
        s_take_results (self);
        if (self->state != S_DOWN && PQstatus (self->conn) == CONNECTION_BAD)
            s_connection_broken (self, "PostgreSQL connection lost: ");
    }
}

//  Take every batch (and RESUME) waiting on the pipe.
static void
s_receive (s_writer_t *self)
{
    while (zsock_events (self->data) & ZMQ_POLLIN) {
        char *command = NULL;
        uint64_t number = 0;
        void *pointer = NULL;
        if (zsock_recv (self->data, "s8p", &command, &number, &pointer) != 0)
            return;
        bool resume = command && streq (command, "RESUME");
        zstr_free (&command);
        if (resume) {
            self->rejecting = false;
            continue;
        }
        gt_pgbatch_t *batch = (gt_pgbatch_t *) pointer;
        if (self->rejecting) {
            char text [S_TEXT];
            snprintf (text, sizeof text, "an earlier batch failed: %.400s", self->reject_reason);
            s_fail_batch (self, number, text);
            gt_pgbatch_destroy (&batch);
        }
        else
        if (self->options.outage == GT_PGWRITER_FAIL && self->announced == S_ANNOUNCED_DOWN
        &&  !self->answers_lost) {
            char text [S_TEXT];
            snprintf (text, sizeof text, "PostgreSQL unavailable: %.400s", self->down_reason);
            s_fail_batch (self, number, text);
            gt_pgbatch_destroy (&batch);
        }
        else {
            s_item_t *item = (s_item_t *) malloc (sizeof (s_item_t));
            assert (item);
            item->number = number;
            item->batch = batch;
            zlistx_add_end (self->queue, item);
        }
    }
}

static void
s_flush (s_writer_t *self)
{
    int rc = PQflush (self->conn);
    if (rc < 0)
        s_connection_broken (self, "PostgreSQL connection lost: ");
    else
        self->flushing = rc == 1;
}

//  When the current wait on the server times out (mono ms), or INT64_MAX.
static int64_t
s_answer_due (s_writer_t *self)
{
    if (self->state == S_CONNECTING || self->state == S_PREPARING)
        return self->started_at + self->options.commit_timeout_ms;
    if (self->state == S_READY && self->flight_count && self->flights [0].sent)
        return self->flights [0].sent_at + self->options.commit_timeout_ms;
    return INT64_MAX;
}

//  Advance the connection after its socket was ready or a timer fired.
static void
s_service_connection (s_writer_t *self, short revents)
{
    int64_t now = zclock_mono ();
    if (self->state == S_DOWN) {
        if (self->options.outage == GT_PGWRITER_FAIL && self->answers_lost
        &&  now - self->lost_at >= self->options.commit_timeout_ms) {
            self->answers_lost = false;
            char text [S_TEXT];
            snprintf (text, sizeof text, "PostgreSQL connection lost, outcome unknown: %.400s",
                      self->down_reason);
            //  Its rows may be in the database: the broker undoes the
            //  batches and writes those keys again
            self->upsert = true;
            s_fail_from (self, 0, text, NULL);
        }
        if (now >= self->retry_at)
            s_start_connecting (self);
        return;
    }
    if (self->state == S_CONNECTING) {
        if (revents) {
            self->polling = PQconnectPoll (self->conn);
            if (self->polling == PGRES_POLLING_OK)
                s_start_preparing (self);
            else
            if (self->polling == PGRES_POLLING_FAILED) {
                char reason [S_TEXT];
                s_conn_error (self->conn, "cannot connect to PostgreSQL: ", reason, sizeof reason);
                s_connection_lost (self, reason);
            }
        }
        else
        if (now >= s_answer_due (self))
            s_connection_lost (self, "cannot connect to PostgreSQL: timed out");
        return;
    }
    //  PREPARING or READY
    if (self->flushing)
        s_flush (self);
    //  Read even without POLLIN: a flush may have pulled answers into
    //  libpq's buffer, leaving nothing on the socket to wake us
    if (self->state != S_DOWN && (revents & ZMQ_POLLIN || s_awaiting (self)))
        s_read_results (self);
    if (self->state != S_DOWN && zclock_mono () >= s_answer_due (self)) {
        char reason [128];
        snprintf (reason, sizeof reason, "no answer from PostgreSQL for %d ms",
                  (int) self->options.commit_timeout_ms);
        s_connection_lost (self, reason);
    }
}

//  Poll timeout: the nearest deadline, -1 when none.
static long
s_poll_timeout (s_writer_t *self)
{
    int64_t now = zclock_mono ();
    int64_t due = s_answer_due (self);
    if (self->state == S_DOWN) {
        due = self->retry_at;
        if (self->answers_lost && self->lost_at + self->options.commit_timeout_ms < due)
            due = self->lost_at + self->options.commit_timeout_ms;
    }
    if (self->terminating && self->terminate_by < due)
        due = self->terminate_by;
    if (due == INT64_MAX)
        return -1;
    return due <= now? 0: (long) (due - now);
}

static bool
s_finished (s_writer_t *self)
{
    if (!self->terminating)
        return false;
    if (zclock_mono () >= self->terminate_by || self->state != S_READY)
        return true;
    return self->flight_count == 0 && zlistx_size (self->queue) == 0;
}

typedef struct {
    char *url;                      //  conninfo (owned by the thread once started)
    PGconn *conn;                   //  connection handed over, or NULL
    gt_pgwriter_options_t options;  //  settings
    zsock_t *data;                  //  the writer's end of the batch pipe
} s_args_t;

static void
s_writer_actor (zsock_t *pipe, void *pointer)
{
    s_args_t *args = (s_args_t *) pointer;
    s_writer_t self_struct;
    s_writer_t *self = &self_struct;
    memset (self, 0, sizeof *self);
    self->pipe = pipe;
    self->data = args->data;
    self->url = args->url;
    self->options = args->options;
    self->application_name = args->options.application_name? strdup (args->options.application_name): NULL;
    self->options.application_name = NULL;
    self->broker_id = args->options.broker_id? strdup (args->options.broker_id): NULL;
    self->options.broker_id = NULL;
    self->queue = zlistx_new ();
    zlistx_set_destructor (self->queue, s_item_destroy);
    self->backoff = self->options.backoff_min_ms;
    //  Tokens unique across writers: start time and pid, then a counter
    self->token_base = ((uint64_t) zclock_time () << 20 ^ (uint64_t) getpid () << 40) & INT64_MAX;
    snprintf (self->down_reason, sizeof self->down_reason, "not connected yet");
    if (args->conn && PQstatus (args->conn) == CONNECTION_OK) {
        s_adopt (self, args->conn);
        self->announced = S_ANNOUNCED_UP;   //  the broker starts out connected
        s_start_preparing (self);
    }
    else {
        if (args->conn)
            PQfinish (args->conn);
        self->state = S_DOWN;
        self->retry_at = zclock_mono ();
    }
    free (args);
    zsock_signal (pipe, 0);

    while (!s_finished (self)) {
        zmq_pollitem_t items [3] = {
            { zsock_resolve (self->pipe), 0, ZMQ_POLLIN, 0 },
            { zsock_resolve (self->data), 0, ZMQ_POLLIN, 0 },
            { NULL, -1, 0, 0 }
        };
        int count = 2;
        if (self->conn && self->state != S_DOWN && PQsocket (self->conn) >= 0) {
            items [2].fd = PQsocket (self->conn);
            if (self->state == S_CONNECTING)
                items [2].events = self->polling == PGRES_POLLING_READING? ZMQ_POLLIN: ZMQ_POLLOUT;
            else
                items [2].events = ZMQ_POLLIN | (self->flushing? ZMQ_POLLOUT: 0);
            count = 3;
        }
        bool buffered = count == 3 && s_awaiting (self) && !PQisBusy (self->conn);
        if (zmq_poll (items, count, buffered? 0: s_poll_timeout (self)) < 0 && errno != EINTR)
            break;
        if (items [0].revents & ZMQ_POLLIN) {
            char *command = zstr_recv (self->pipe);
            if (!command)
                break;                      //  interrupted
            if (streq (command, "$TERM") && !self->terminating) {
                self->terminating = true;
                self->terminate_by = zclock_mono () + self->options.commit_timeout_ms;
            }
            zstr_free (&command);
        }
        if (items [1].revents & ZMQ_POLLIN)
            s_receive (self);
        s_service_connection (self, count == 3? items [2].revents: 0);
        while (self->state == S_READY && s_send_next (self))
            ;
        if (self->state == S_READY && self->flushing)
            s_flush (self);
    }
    //  Batches still on the pipe were never taken: free them
    while (zsock_events (self->data) & ZMQ_POLLIN) {
        char *command = NULL;
        uint64_t number;
        void *batch = NULL;
        if (zsock_recv (self->data, "s8p", &command, &number, &batch) != 0)
            break;
        zstr_free (&command);
        gt_pgbatch_t *pending = (gt_pgbatch_t *) batch;
        gt_pgbatch_destroy (&pending);
    }
    while (self->flight_count)
        s_flight_pop (self);
    zlistx_destroy (&self->queue);
    if (self->conn)
        PQfinish (self->conn);
    free (self->application_name);
    free (self->broker_id);
    free (self->url);
    zsock_destroy (&self->data);
    //  zactor_destroy waits for $TERM to be read: if we left early, read it now
    if (!self->terminating) {
        char *command = zstr_recv (self->pipe);
        zstr_free (&command);
    }
}

//  --------------------------------------------------------------------------
//  The broker's side

struct gt_pgwriter_t {
    zactor_t *actor;                //  the writer thread
    zsock_t *data;                  //  our end of the batch pipe
    uint64_t submitted;             //  number of the last batch submitted
    uint64_t completed;             //  COMMIT notices received
    uint64_t failed_through;        //  batches up to this one were doomed by a FAIL
    bool connected;                 //  as of the last STATE notice
};

void
gt_pgwriter_options_init (gt_pgwriter_options_t *options)
{
    assert (options);
    memset (options, 0, sizeof *options);
    options->outage = GT_PGWRITER_FAIL;
    options->backoff_min_ms = 100;
    options->backoff_max_ms = 5000;
    options->commit_timeout_ms = 10000;
    options->max_rows = 50000;
    options->max_bytes = 64 * 1024 * 1024;
    options->pipeline_depth = 2;
}

gt_pgwriter_t *
gt_pgwriter_new (const char *url, PGconn **conn_p, const gt_pgwriter_options_t *options)
{
    assert (url);
    gt_pgwriter_t *self = (gt_pgwriter_t *) zmalloc (sizeof (gt_pgwriter_t));
    assert (self);
    s_args_t *args = (s_args_t *) zmalloc (sizeof (s_args_t));
    assert (args);
    args->url = strdup (url);
    if (options)
        args->options = *options;
    else
        gt_pgwriter_options_init (&args->options);
    assert (args->options.backoff_min_ms > 0 && args->options.backoff_max_ms >= args->options.backoff_min_ms);
    assert (args->options.commit_timeout_ms > 0 && args->options.max_rows > 0
            && args->options.max_bytes > 0);
    assert (args->options.pipeline_depth >= 1 && args->options.pipeline_depth <= S_MAX_DEPTH);
    if (conn_p && *conn_p) {
        args->conn = *conn_p;
        *conn_p = NULL;
        self->connected = PQstatus (args->conn) == CONNECTION_OK;
    }
    //  Unbounded both ways: submitting never blocks, notices never drop
    static uint32_t s_writers = 0;      //  writers created: endpoint names stay unique
    char endpoint [64];
    snprintf (endpoint, sizeof endpoint, "inproc://gt-pgwriter-%d-%u", (int) getpid (),
              __atomic_add_fetch (&s_writers, 1, __ATOMIC_RELAXED));
    self->data = zsock_new (ZMQ_PAIR);
    args->data = zsock_new (ZMQ_PAIR);
    assert (self->data && args->data);
    zsock_set_sndhwm (self->data, 0);
    zsock_set_rcvhwm (self->data, 0);
    zsock_set_sndhwm (args->data, 0);
    zsock_set_rcvhwm (args->data, 0);
    int rc = zsock_bind (self->data, "%s", endpoint);
    assert (rc == 0);
    rc = zsock_connect (args->data, "%s", endpoint);
    assert (rc == 0);
    self->actor = zactor_new (s_writer_actor, args);
    assert (self->actor);
    return self;
}

void
gt_pgwriter_destroy (gt_pgwriter_t **self_p)
{
    assert (self_p);
    gt_pgwriter_t *self = *self_p;
    if (self) {
        zactor_destroy (&self->actor);
        zsock_destroy (&self->data);
        free (self);
        *self_p = NULL;
    }
}

uint64_t
gt_pgwriter_submit (gt_pgwriter_t *self, gt_pgbatch_t **batch_p)
{
    assert (self);
    assert (batch_p && *batch_p);
    uint64_t number = ++self->submitted;
    int rc = zsock_send (self->data, "s8p", "BATCH", number, *batch_p);
    assert (rc == 0);
    *batch_p = NULL;
    return number;
}

zsock_t *
gt_pgwriter_sock (gt_pgwriter_t *self)
{
    assert (self);
    return self->data;
}

int
gt_pgwriter_recv (gt_pgwriter_t *self, gt_pgnotice_t *notice)
{
    assert (self);
    assert (notice);
    char *kind = NULL, *status = NULL, *text = NULL;
    uint64_t batch = 0;
    if (zsock_recv (self->data, "s8ss", &kind, &batch, &status, &text) != 0)
        return -1;
    memset (notice, 0, sizeof *notice);
    notice->batch = batch;
    snprintf (notice->text, sizeof notice->text, "%s", text? text: "");
    if (streq (kind, "COMMIT")) {
        notice->kind = GT_PGNOTICE_COMMIT;
        notice->ok = streq (status, "OK");
        self->completed++;
        if (!notice->ok && batch > self->failed_through) {
            //  The caller undoes this batch and all it submitted since: the
            //  writer must drop those too, and may take new ones after this
            self->failed_through = self->submitted;
            zsock_send (self->data, "s8p", "RESUME", (uint64_t) 0, NULL);
        }
    }
    else {
        notice->kind = GT_PGNOTICE_STATE;
        notice->ok = streq (status, "CONNECTED");
        self->connected = notice->ok;
    }
    zstr_free (&kind);
    zstr_free (&status);
    zstr_free (&text);
    return 0;
}

bool
gt_pgwriter_connected (gt_pgwriter_t *self)
{
    assert (self);
    return self->connected;
}

uint64_t
gt_pgwriter_pending (gt_pgwriter_t *self)
{
    assert (self);
    return self->submitted - self->completed;
}

/*  gt_pgshards.c — shard ownership thread; the contract is in gt_pgshards.h.

    The thread (s_shards_actor) owns one libpq connection and runs one
    loop.  Each turn it polls the actor pipe ($TERM, RELEASE) and, when
    connected, the connection's socket (NOTIFY gt_shards, or the end of the
    connection), with a timeout up to the next thing due:

      DOWN       (no connection): connect at retry_at.  The first attempt
                 after losing a working connection is at once, then the
                 delay goes 100 ms doubling to renew_ms (at most 2 s), so
                 that an owner is back within about a renewal period of the
                 database (s_others_expired_ok and s_own_doing_from count
                 on it).  A connection is set up
                 with lock_timeout and statement_timeout = renew_ms and
                 LISTEN gt_shards before it counts as up (STATE notice).
      STANDBY    (connected, holding nothing): at next_due, or at once on a
                 NOTIFY, try to acquire (s_acquire): first a cheap look
                 without locks (which also heartbeats gt_brokers) for a
                 live owner other than this broker; only when there is
                 none, the locking transaction: every row FOR UPDATE in
                 shard order, each checked free, expired or ours, then
                 every epoch raised by one.  Success: ACQUIRED.
      OWNER      (connected, holding shards): at next_due (renew_ms after
                 the last renewal was sent) renew them (s_renew), in one
                 statement with the gt_brokers heartbeat.  A held shard
                 the renewal does not find is LOST; after a loss nothing
                 more is acquired (a broker that lost its shards steps
                 down, and two brokers with one id would otherwise take
                 the shards from each other in turn).
      FINISHED   (released, or lost everything): the connection is closed
                 and nothing more is done until $TERM.

    valid_until (the owner's field, atomic) is written here only: the
    monotonic time read before the successful acquire or renew was sent,
    plus lease_ms - margin_ms; 0 while nothing is held.

    libpq is used synchronously (this thread does nothing else meanwhile),
    but every wait for the server has a deadline (s_exec): the statement
    timeout plus S_ANSWER_SLACK_MS, after which the connection is dropped
    as lost.  A connection attempt waits at most S_CONNECT_TIMEOUT_S.  So
    $TERM and RELEASE are served within a few seconds at worst.

    RELEASE (from gt_pgshards_release) carries a number and a timeout; the
    answer (number, count) goes back on the pipe, and the caller discards
    answers whose number is not the one it waits for (late ones).  */

#include "gt_pgshards.h"
#include "gt_log.h"
#include <libpq-fe.h>
#include <poll.h>
#include <stdatomic.h>

#define S_BACKOFF_MIN_MS    100     //  first reconnect delay after a failed attempt
#define S_BACKOFF_MAX_MS    2000    //  reconnect delay cap (lower when renew_ms is: s_backoff_max)
#define S_CONNECT_TIMEOUT_S "2"     //  libpq connect_timeout (seconds)
#define S_ANSWER_SLACK_MS   1000    //  wait for an answer this long past the statement timeout
#define S_LOG_EVERY_MS      10000   //  a repeated warning is logged at most this often
#define S_TEXT              256     //  size of message buffers (= the notice's text)
#define S_COMPONENT         "shards"    //  gt_log component

//  The gt_brokers heartbeat, a common table expression for the acquire and
//  renew statements.  $1 broker_id, $2 endpoint, $3 events_endpoint,
//  $4 lease_ms, $5 true when this instance has not registered yet (its
//  started_at is then reset)
#define S_SQL_SEEN \
    "seen AS (INSERT INTO gt_brokers (broker_id, endpoint, events_endpoint, started_at, seen_until)" \
    "         VALUES ($1, $2, $3, now (), now () + $4::bigint * interval '1 millisecond')" \
    "         ON CONFLICT (broker_id) DO UPDATE SET endpoint = EXCLUDED.endpoint," \
    "            events_endpoint = EXCLUDED.events_endpoint, seen_until = EXCLUDED.seen_until," \
    "            started_at = CASE WHEN $5::boolean THEN EXCLUDED.started_at" \
    "                              ELSE gt_brokers.started_at END)"

typedef enum {
    S_UNANNOUNCED,                  //  nothing said yet: the first attempt is under way
    S_ANNOUNCED_UP,                 //  STATE connected said
    S_ANNOUNCED_DOWN                //  STATE not connected said
} s_announced_t;

typedef struct {
    zsock_t *pipe;                  //  actor pipe: $TERM, RELEASE in, its answer out
    zsock_t *notices;               //  our end of the notice pair
    _Atomic int64_t *valid_until;   //  the owner's field (gt_pgshards_valid_until)
    char *conninfo;                 //  for (re)connects
    char *broker_id;                //  owned copy of options.broker_id
    char *endpoint;                 //  owned copy of options.endpoint ("" for NULL)
    char *events_endpoint;          //  owned copy of options.events_endpoint ("" for NULL)
    gt_pgshards_options_t options;  //  settings (strings: the copies above)
    char lease_text [24];           //  lease_ms as a statement parameter
    PGconn *conn;                   //  the connection, or NULL when down
    bool ready;                     //  conn is set up (timeouts, LISTEN)
    s_announced_t announced;        //  connection state the owner last heard
    int64_t retry_at;               //  down: next connection attempt (mono ms)
    int64_t backoff;                //  delay after the next failed attempt
    uint8_t held [GT_PGSHARDS_BITMAP];  //  shards held
    uint64_t epochs [GT_SHARD_COUNT];   //  the epoch each held shard was acquired at
    unsigned held_count;            //  shards held
    int64_t next_due;               //  connected: next acquire attempt or renewal (mono ms)
    bool notified;                  //  a NOTIFY gt_shards came: try to acquire at once
    bool registered;                //  our gt_brokers row got this instance's started_at
    bool stepped_down;              //  lost shards or released: acquire nothing more
    bool released;                  //  released: renew nothing either
    char holder [S_TEXT];           //  who held the shards at the last attempt (logged on change)
    char warned [S_TEXT];           //  the last warning logged (rate limit)
    int64_t warned_at;              //  when (mono ms)
    unsigned warnings_suppressed;   //  repeats not logged since
    gt_shard_map_t *map;            //  the last map sent in a MAP notice, or NULL
    int64_t acquire_due;            //  cluster mode: next look for a share (mono ms)
    int64_t pending_since;          //  cluster mode: since when the endpoint is awaited (mono ms; 0: not yet looked)
    bool pending_warned;            //  that wait was logged
    int64_t connected_at;           //  when the connection came up (mono ms): see s_others_expired_ok
    int64_t connected_db_ms;        //  the same moment on PostgreSQL's clock (epoch ms): see s_own_doing_from
    uint8_t shedding [GT_PGSHARDS_BITMAP];  //  cluster mode: named in a SHED, not released yet
    bool shed_pending;              //  cluster mode: a SHED waits for its release
} s_shards_t;

//  --------------------------------------------------------------------------
//  Small helpers

//  Copy text onto one line (newlines and tabs become spaces, no trailing
//  blanks), after prefix.
static void
s_one_line (char *buffer, size_t size, const char *prefix, const char *text)
{
    snprintf (buffer, size, "%s%s", prefix, text? text: "");
    size_t length = strlen (buffer);
    while (length > 0 && (buffer [length - 1] == '\n' || buffer [length - 1] == ' '))
        buffer [--length] = 0;
    for (char *at = buffer; *at; at++)
        if (*at == '\n' || *at == '\t' || *at == '\r')
            *at = ' ';
}

//  A failed result's SQLSTATE and message, on one line.
static void
s_result_error (const PGresult *result, const char *prefix, char *buffer, size_t size)
{
    const char *sqlstate = PQresultErrorField (result, PG_DIAG_SQLSTATE);
    const char *message = PQresultErrorField (result, PG_DIAG_MESSAGE_PRIMARY);
    char text [S_TEXT];
    if (message)
        snprintf (text, sizeof text, "%s (%s)", message, sqlstate? sqlstate: "no SQLSTATE");
    else
        snprintf (text, sizeof text, "%s", PQresultErrorMessage (result));
    s_one_line (buffer, size, prefix, text);
}

//  Parse a whole decimal integer in [min, max]; false if it is not one.
static bool
s_parse (const char *text, long long min, long long max, long long *value_p)
{
    if (!text || !*text)
        return false;
    char *end = NULL;
    errno = 0;
    long long value = strtoll (text, &end, 10);
    if (errno || *end || value < min || value > max)
        return false;
    *value_p = value;
    return true;
}

//  A warning, logged at most every S_LOG_EVERY_MS while it repeats.
static void
s_warn (s_shards_t *self, const char *text)
{
    int64_t now = zclock_mono ();
    if (streq (text, self->warned) && now - self->warned_at < S_LOG_EVERY_MS) {
        self->warnings_suppressed++;
        return;
    }
    if (streq (text, self->warned) && self->warnings_suppressed)
        gt_log_warn (S_COMPONENT, "%s (%u times more since %d s)", text, self->warnings_suppressed,
                     (int) ((now - self->warned_at) / 1000));
    else
        gt_log_warn (S_COMPONENT, "%s", text);
    snprintf (self->warned, sizeof self->warned, "%s", text);
    self->warned_at = now;
    self->warnings_suppressed = 0;
}

static void
s_notice (s_shards_t *self, const gt_pgshards_notice_t *notice)
{
    zframe_t *frame = zframe_new (notice, sizeof *notice);
    assert (frame);
    if (zframe_send (&frame, self->notices, 0) != 0)
        zframe_destroy (&frame);    //  only when the context is being terminated
}

static void
s_notice_state (s_shards_t *self, bool connected, const char *text)
{
    gt_pgshards_notice_t notice;
    memset (&notice, 0, sizeof notice);
    notice.kind = GT_PGSHARDS_STATE;
    notice.connected = connected;
    snprintf (notice.text, sizeof notice.text, "%s", text);
    s_notice (self, &notice);
}

static void
s_set_valid_until (s_shards_t *self, int64_t value)
{
    atomic_store (self->valid_until, value);
}

//  The held shards and their epochs as array literals ({1,2}, {7,7}).
static void
s_held_arrays (s_shards_t *self, char *shards, size_t shards_size, char *epochs, size_t epochs_size)
{
    size_t shards_at = 0, epochs_at = 0;
    shards [shards_at++] = '{';
    epochs [epochs_at++] = '{';
    for (unsigned shard = 0; shard < GT_SHARD_COUNT; shard++) {
        if (!gt_pgshards_has (self->held, shard))
            continue;
        const char *comma = shards_at > 1? ",": "";
        shards_at += snprintf (shards + shards_at, shards_size - shards_at, "%s%u", comma, shard);
        epochs_at += snprintf (epochs + epochs_at, epochs_size - epochs_at, "%s%" PRIu64,
                               comma, self->epochs [shard]);
        assert (shards_at < shards_size - 1 && epochs_at < epochs_size - 1);
    }
    shards [shards_at++] = '}';
    epochs [epochs_at++] = '}';
    shards [shards_at] = 0;
    epochs [epochs_at] = 0;
}

//  Buffer sizes for s_held_arrays: "255," per shard, 20 digits and a comma per epoch
#define S_SHARDS_TEXT   (GT_SHARD_COUNT * 4 + 3)
#define S_EPOCHS_TEXT   (GT_SHARD_COUNT * 21 + 3)

//  --------------------------------------------------------------------------
//  The connection

//  Tell the owner (once per change) and the log.
static void
s_announce (s_shards_t *self, bool connected, const char *text)
{
    if (connected) {
        if (self->announced != S_ANNOUNCED_UP) {
            gt_log_info (S_COMPONENT, "broker %s: shard ownership %s", self->broker_id, text);
            self->warned [0] = 0;
            self->announced = S_ANNOUNCED_UP;
            s_notice_state (self, true, text);
        }
    }
    else {
        if (self->announced != S_ANNOUNCED_DOWN) {
            self->warned [0] = 0;       //  a change: always logged
            self->announced = S_ANNOUNCED_DOWN;
            s_notice_state (self, false, text);
        }
        s_warn (self, text);
    }
}

//  The longest wait between two connection attempts: a renewal period,
//  at most S_BACKOFF_MAX_MS.
static int64_t
s_backoff_max (s_shards_t *self)
{
    return self->options.renew_ms < S_BACKOFF_MAX_MS? self->options.renew_ms: S_BACKOFF_MAX_MS;
}

//  The connection is gone or unusable: close it, tell, schedule the
//  reconnect.
static void
s_connection_lost (s_shards_t *self, const char *reason)
{
    if (self->conn)
        PQfinish (self->conn);
    self->conn = NULL;
    int64_t now = zclock_mono ();
    if (self->ready)
        self->retry_at = now;           //  it worked: the first attempt at once
    else {
        self->retry_at = now + self->backoff;
        self->backoff *= 2;
        if (self->backoff > s_backoff_max (self))
            self->backoff = s_backoff_max (self);
    }
    self->ready = false;
    s_announce (self, false, reason);
}

static void
s_connection_broken (s_shards_t *self, const char *prefix)
{
    char reason [S_TEXT];
    s_one_line (reason, sizeof reason, prefix, self->conn? PQerrorMessage (self->conn): "");
    s_connection_lost (self, reason);
}

//  Take the notifications libpq received: a release somewhere.
static void
s_take_notifies (s_shards_t *self)
{
    PGnotify *notify;
    while (self->conn && (notify = PQnotifies (self->conn))) {
        self->notified = true;
        PQfreemem (notify);
    }
}

//  Wait until the socket is ready for events or deadline (mono ms) passes:
//  the poll revents, 0 on time-out, -1 on failure.
static int
s_wait_socket (PGconn *conn, short events, int64_t deadline)
{
    int fd = PQsocket (conn);
    if (fd < 0)
        return -1;
    while (true) {
        int64_t wait = deadline - zclock_mono ();
        if (wait <= 0)
            return 0;
        struct pollfd item = { fd, events, 0 };
        int rc = poll (&item, 1, wait > INT_MAX? INT_MAX: (int) wait);
        if (rc > 0)
            return item.revents? item.revents: events;
        if (rc == 0)
            return 0;
        if (errno != EINTR)
            return -1;
    }
}

//  The usual deadline for an answer.
static int64_t
s_deadline (s_shards_t *self)
{
    return zclock_mono () + self->options.renew_ms + S_ANSWER_SLACK_MS;
}

//  May another broker's expired shards be taken?  An expired lease
//  need not mean a dead owner: after PostgreSQL itself was away, every
//  lease ran out on its clock while the owners, alive, could not renew.
//  They try again at most s_backoff_max after the database is back and
//  renew at once when they get in; taking their shards before would fail
//  them over for nothing (they would step down).  So a shard is taken
//  when its lease ran out late enough to be its owner's own doing
//  (s_own_doing_from, checked in SQL row by row), or else once this
//  connection is a lease and a reconnect delay old, when any owner alive
//  has renewed.  This holds when the owners' attempts fail fast (refused,
//  or answered by a server starting up); an attempt that hangs (a host
//  that drops packets) takes up to S_CONNECT_TIMEOUT_S, longer than the
//  slack of either rule with short settings, and the owner may then still
//  be failed over.
static bool
s_others_expired_ok (s_shards_t *self)
{
    return zclock_mono () - self->connected_at >= self->options.lease_ms + s_backoff_max (self);
}

//  PostgreSQL's time (epoch ms) from which an expired lease is its
//  owner's own doing: this connection, and so the database, had been up
//  for a reconnect delay, a renewal period and the margin when it ran
//  out, time for any owner alive to get in and renew.  A broker that has
//  (re)started, with the database up all along, thus takes a dead
//  broker's shards as soon as their lease runs out, unless it connected
//  less than that long before; then a lease and a reconnect delay after
//  it connected.
static int64_t
s_own_doing_from (s_shards_t *self)
{
    return self->connected_db_ms + s_backoff_max (self) + self->options.renew_ms + self->options.margin_ms;
}

//  Run sql (count text parameters; none: the simple protocol, which allows
//  several statements) and wait for its answer until deadline (mono ms).
//  Returns the first failed result, else the last one (the caller clears
//  it), or NULL when the connection was lost or did not answer in time
//  (it is then closed: s_connection_lost).
static PGresult *
s_exec (s_shards_t *self, int64_t deadline, const char *sql, int count, const char *const *values)
{
    assert (self->conn);
    int sent = count? PQsendQueryParams (self->conn, sql, count, NULL, values, NULL, NULL, 0)
                    : PQsendQuery (self->conn, sql);
    if (!sent) {
        s_connection_broken (self, "cannot send to PostgreSQL: ");
        return NULL;
    }
    char timed_out [64];
    snprintf (timed_out, sizeof timed_out, "no answer from PostgreSQL within %d ms",
              (int) (deadline - zclock_mono ()));
    int flushed;
    while ((flushed = PQflush (self->conn)) == 1) {
        int revents = s_wait_socket (self->conn, POLLIN | POLLOUT, deadline);
        if (revents == 0) {
            s_connection_lost (self, timed_out);
            return NULL;
        }
        if (revents < 0 || ((revents & POLLIN) && !PQconsumeInput (self->conn))) {
            s_connection_broken (self, "PostgreSQL connection lost: ");
            return NULL;
        }
    }
    if (flushed < 0) {
        s_connection_broken (self, "PostgreSQL connection lost: ");
        return NULL;
    }
    PGresult *kept = NULL;
    while (true) {
        while (PQisBusy (self->conn)) {
            int revents = s_wait_socket (self->conn, POLLIN, deadline);
            if (revents == 0) {
                PQclear (kept);
                s_connection_lost (self, timed_out);
                return NULL;
            }
            if (revents < 0 || !PQconsumeInput (self->conn)) {
                PQclear (kept);
                s_connection_broken (self, "PostgreSQL connection lost: ");
                return NULL;
            }
        }
        PGresult *result = PQgetResult (self->conn);
        if (!result)
            break;
        if (kept && PQresultStatus (kept) == PGRES_FATAL_ERROR)
            PQclear (result);           //  the first error says why
        else {
            PQclear (kept);
            kept = result;
        }
    }
    s_take_notifies (self);
    if (!kept || PQstatus (self->conn) == CONNECTION_BAD) {
        char reason [S_TEXT];
        if (kept && PQresultStatus (kept) == PGRES_FATAL_ERROR)
            s_result_error (kept, "PostgreSQL connection lost: ", reason, sizeof reason);
        else
            s_one_line (reason, sizeof reason, "PostgreSQL connection lost: ", PQerrorMessage (self->conn));
        PQclear (kept);
        s_connection_lost (self, reason);
        return NULL;
    }
    return kept;
}

//  End the open transaction, if any (after an error or a refusal).
static void
s_rollback (s_shards_t *self)
{
    if (self->conn && PQtransactionStatus (self->conn) != PQTRANS_IDLE) {
        PGresult *result = s_exec (self, s_deadline (self), "ROLLBACK", 0, NULL);
        if (result && PQresultStatus (result) != PGRES_COMMAND_OK) {
            char reason [S_TEXT];
            s_result_error (result, "cannot roll back: ", reason, sizeof reason);
            PQclear (result);
            s_connection_lost (self, reason);   //  a fresh session is the safe way on
            return;
        }
        PQclear (result);
    }
}

//  libpq's notice processor: what the server says outside results (a
//  WARNING, the FATAL that ends a session) goes to the log, not to stderr.
static void
s_notice_processor (void *arg, const char *message)
{
    char text [S_TEXT];
    s_one_line (text, sizeof text, "PostgreSQL: ", message);
    gt_log_debug (S_COMPONENT, "broker %s: %s", (const char *) arg, text);
}

//  Connect (blocking, bounded by connect_timeout) and set the connection
//  up.  On success the next acquisition or renewal is due at once.
static void
s_connect (s_shards_t *self)
{
    //  Defaults first: the URL's own settings override them; then ours
    const char *keys [] = { "fallback_application_name", "keepalives_idle", "keepalives_interval",
                            "keepalives_count", "dbname", "connect_timeout", NULL };
    const char *values [] = { "garbagetruck-shards", "10", "5", "3", self->conninfo,
                              S_CONNECT_TIMEOUT_S, NULL };
    self->ready = false;
    self->conn = PQconnectdbParams (keys, values, 1);
    if (!self->conn || PQstatus (self->conn) != CONNECTION_OK) {
        s_connection_broken (self, "cannot connect to PostgreSQL: ");
        return;
    }
    PQsetNoticeProcessor (self->conn, s_notice_processor, self->broker_id);
    if (PQsetnonblocking (self->conn, 1) != 0) {
        s_connection_broken (self, "cannot set up the connection: ");
        return;
    }
    //  The set-up ends with PostgreSQL's clock: when this connection began
    //  to see the database (s_own_doing_from)
    char sql [240];
    snprintf (sql, sizeof sql, "SET lock_timeout = %" PRId64 "; SET statement_timeout = %" PRId64
              "; LISTEN gt_shards; SELECT (extract (epoch FROM clock_timestamp ()) * 1000)::bigint",
              self->options.renew_ms, self->options.renew_ms);
    PGresult *result = s_exec (self, s_deadline (self), sql, 0, NULL);
    if (!result)
        return;                         //  lost (said)
    long long connected_db_ms;
    if (PQresultStatus (result) != PGRES_TUPLES_OK || PQntuples (result) != 1 || PQnfields (result) != 1
    ||  !s_parse (PQgetvalue (result, 0, 0), 0, INT64_MAX / 2, &connected_db_ms)) {
        char reason [S_TEXT];
        if (PQresultStatus (result) == PGRES_TUPLES_OK)
            snprintf (reason, sizeof reason, "cannot set up the connection: PostgreSQL's clock read as '%.40s'",
                      PQntuples (result) == 1 && PQnfields (result) == 1? PQgetvalue (result, 0, 0): "");
        else
            s_result_error (result, "cannot set up the connection: ", reason, sizeof reason);
        PQclear (result);
        s_connection_lost (self, reason);
        return;
    }
    PQclear (result);
    self->connected_db_ms = connected_db_ms;
    self->ready = true;
    self->connected_at = zclock_mono ();
    self->backoff = S_BACKOFF_MIN_MS;
    self->next_due = zclock_mono ();
    self->notified = false;
    char text [S_TEXT];
    snprintf (text, sizeof text, "connected to PostgreSQL (backend pid %d)", PQbackendPID (self->conn));
    s_announce (self, true, text);
}

//  --------------------------------------------------------------------------
//  Acquire, renew, release

//  The lock-free look: who holds a shard we could not take, if anybody;
//  heartbeats our gt_brokers row on the way.  -1: failed (said), 0: the
//  shards are free for us, 1: held (holder and until filled).
static int
s_look (s_shards_t *self, char *holder, size_t size, char *until, size_t until_size)
{
    const char *values [] = { self->broker_id, self->endpoint, self->events_endpoint,
                              self->lease_text, self->registered? "f": "t" };
    PGresult *result = s_exec (self, s_deadline (self),
        "WITH " S_SQL_SEEN
        " SELECT owner, to_char (owned_until, 'YYYY-MM-DD HH24:MI:SS.MS TZ') FROM gt_shards"
        "  WHERE owner IS NOT NULL AND owner <> $1 AND owned_until >= now ()"
        "  ORDER BY shard LIMIT 1", 5, values);
    if (!result)
        return -1;
    int rc = -1;
    if (PQresultStatus (result) != PGRES_TUPLES_OK) {
        char reason [S_TEXT];
        s_result_error (result, "cannot read the shards' owners: ", reason, sizeof reason);
        s_warn (self, reason);
    }
    else {
        self->registered = true;
        if (PQntuples (result) == 0)
            rc = 0;
        else {
            snprintf (holder, size, "%.100s", PQgetvalue (result, 0, 0));
            snprintf (until, until_size, " until %.40s", PQgetvalue (result, 0, 1));
            rc = 1;
        }
    }
    PQclear (result);
    return rc;
}

//  The locking transaction's check: every row there, each free, expired
//  or ours.  Returns 0 when all can be taken, 1 when one cannot (holder
//  filled), -1 when the table is not as it should be (said).
static int
s_check_rows (s_shards_t *self, PGresult *result, char *holder, size_t size)
{
    if (PQntuples (result) != GT_SHARD_COUNT || PQnfields (result) != 4) {
        char reason [S_TEXT];
        snprintf (reason, sizeof reason, "gt_shards holds %d rows, not the %d shards: cannot acquire",
                  PQntuples (result), GT_SHARD_COUNT);
        s_warn (self, reason);
        return -1;
    }
    for (int row = 0; row < GT_SHARD_COUNT; row++) {
        long long shard;
        if (!s_parse (PQgetvalue (result, row, 0), 0, GT_SHARD_COUNT - 1, &shard) || shard != row) {
            s_warn (self, "gt_shards does not hold shards 0 to 255 once each: cannot acquire");
            return -1;
        }
        if (PQgetisnull (result, row, 1))
            continue;                   //  free
        const char *owner = PQgetvalue (result, row, 1);
        bool expired = streq (PQgetvalue (result, row, 2), "t");
        bool own_doing = streq (PQgetvalue (result, row, 3), "t");
        if (streq (owner, self->broker_id) || (expired && (own_doing || s_others_expired_ok (self))))
            continue;                   //  ours (a restart), or expired by its owner's doing or long enough ago
        snprintf (holder, size, "%.100s", owner);
        return 1;
    }
    return 0;
}

//  The acquiring UPDATE's answer: all 256 shards with their new epochs
//  into the held set.  False (said) when it is not that.
static bool
s_take_rows (s_shards_t *self, PGresult *result, uint8_t *shards, uint64_t *epochs)
{
    memset (shards, 0, GT_PGSHARDS_BITMAP);
    if (PQntuples (result) != GT_SHARD_COUNT || PQnfields (result) != 2) {
        s_warn (self, "the acquiring UPDATE did not return the 256 shards: rolled back");
        return false;
    }
    for (int row = 0; row < GT_SHARD_COUNT; row++) {
        long long shard, epoch;
        if (!s_parse (PQgetvalue (result, row, 0), 0, GT_SHARD_COUNT - 1, &shard)
        ||  !s_parse (PQgetvalue (result, row, 1), 1, INT64_MAX, &epoch)
        ||  gt_pgshards_has (shards, (unsigned) shard)) {
            s_warn (self, "the acquiring UPDATE returned a malformed row: rolled back");
            return false;
        }
        gt_pgshards_set (shards, (unsigned) shard);
        epochs [shard] = (uint64_t) epoch;
    }
    return true;
}

//  Standby: take every shard if each is free, expired or ours.
static void
s_acquire (s_shards_t *self)
{
    self->notified = false;
    self->next_due = zclock_mono () + self->options.acquire_ms;
    char holder [S_TEXT] = "", until [64] = "";
    int looked = s_look (self, holder, sizeof holder, until, sizeof until);
    if (looked < 0)
        return;
    if (looked == 0) {
        //  The clock is read before the transaction starts: its now () and
        //  so owned_until = now () + lease come later
        int64_t sent_at = zclock_mono ();
        char sql [240];                 //  several statements: no parameters, the number is ours
        snprintf (sql, sizeof sql, "BEGIN; SELECT shard, owner, coalesce (owned_until < now (), true),"
                  " coalesce (owned_until >= to_timestamp (%" PRId64 " / 1000.0), false) FROM gt_shards"
                  " ORDER BY shard FOR UPDATE", s_own_doing_from (self));
        PGresult *result = s_exec (self, s_deadline (self), sql, 0, NULL);
        if (!result)
            return;
        if (PQresultStatus (result) != PGRES_TUPLES_OK) {
            char reason [S_TEXT];
            s_result_error (result, "cannot lock the shards: ", reason, sizeof reason);
            s_warn (self, reason);
            PQclear (result);
            s_rollback (self);
            return;
        }
        looked = s_check_rows (self, result, holder, sizeof holder);
        PQclear (result);
        if (looked != 0) {
            s_rollback (self);
            if (looked < 0)
                return;
        }
        else {
            const char *values [] = { self->broker_id, self->lease_text };
            result = s_exec (self, s_deadline (self),
                "UPDATE gt_shards SET owner = $1, epoch = epoch + 1,"
                " owned_until = now () + $2::bigint * interval '1 millisecond'"
                " RETURNING shard, epoch", 2, values);
            if (!result)
                return;
            uint8_t shards [GT_PGSHARDS_BITMAP];
            uint64_t epochs [GT_SHARD_COUNT] = { 0 };
            bool taken = false;
            if (PQresultStatus (result) != PGRES_TUPLES_OK) {
                char reason [S_TEXT];
                s_result_error (result, "cannot acquire the shards: ", reason, sizeof reason);
                s_warn (self, reason);
            }
            else
                taken = s_take_rows (self, result, shards, epochs);
            PQclear (result);
            if (!taken) {
                s_rollback (self);
                return;
            }
            result = s_exec (self, s_deadline (self), "COMMIT", 0, NULL);
            if (!result)
                return;                 //  outcome unknown: the rows run out, or a restart takes them
            bool committed = PQresultStatus (result) == PGRES_COMMAND_OK
                          && streq (PQcmdStatus (result), "COMMIT");
            if (!committed) {
                char reason [S_TEXT];
                s_result_error (result, "cannot commit the acquisition: ", reason, sizeof reason);
                s_warn (self, reason);
            }
            PQclear (result);
            if (!committed)
                return;
            memcpy (self->held, shards, sizeof self->held);
            memcpy (self->epochs, epochs, sizeof self->epochs);
            self->held_count = GT_SHARD_COUNT;
            s_set_valid_until (self, sent_at + self->options.lease_ms - self->options.margin_ms);
            self->next_due = sent_at + self->options.renew_ms;
            self->holder [0] = 0;

            gt_pgshards_notice_t notice;
            memset (&notice, 0, sizeof notice);
            notice.kind = GT_PGSHARDS_ACQUIRED;
            memcpy (notice.shards, shards, sizeof notice.shards);
            memcpy (notice.epochs, epochs, sizeof notice.epochs);
            s_notice (self, &notice);
            uint64_t lowest = UINT64_MAX, highest = 0;
            for (unsigned shard = 0; shard < GT_SHARD_COUNT; shard++) {
                lowest = epochs [shard] < lowest? epochs [shard]: lowest;
                highest = epochs [shard] > highest? epochs [shard]: highest;
            }
            if (lowest == highest)
                gt_log_info (S_COMPONENT, "broker %s acquired the %d shards at epoch %" PRIu64,
                             self->broker_id, GT_SHARD_COUNT, lowest);
            else
                gt_log_info (S_COMPONENT, "broker %s acquired the %d shards at epochs %" PRIu64
                             " to %" PRIu64, self->broker_id, GT_SHARD_COUNT, lowest, highest);
            return;
        }
    }
    //  Held by another: say so when that changes
    if (!streq (holder, self->holder)) {
        gt_log_info (S_COMPONENT, "broker %s is standby: the shards are held by broker %s%s",
                     self->broker_id, holder, until);
        snprintf (self->holder, sizeof self->holder, "%s", holder);
    }
}

//  Owner NULL on the shards given (as s_held_arrays texts) at their
//  epochs, and NOTIFY gt_shards, waiting at most timeout_ms; leaving: also
//  end this broker's heartbeat (it is gone).  Returns how many rows were
//  released, -1 (said, with what) if PostgreSQL did not answer so.
static int
s_release_rows (s_shards_t *self, const char *shards_text, const char *epochs_text, int64_t timeout_ms,
                bool leaving, const char *what)
{
    const char *values [] = { self->broker_id, shards_text, epochs_text };
    int64_t deadline = zclock_mono () + timeout_ms;
    if (deadline > s_deadline (self))
        deadline = s_deadline (self);
    PGresult *result = s_exec (self, deadline, leaving?
        "WITH released AS (UPDATE gt_shards s SET owner = NULL, owned_until = NULL"
        "                    FROM unnest ($2::smallint [], $3::bigint []) AS held (shard, epoch)"
        "                   WHERE s.shard = held.shard AND s.epoch = held.epoch AND s.owner = $1"
        "               RETURNING s.shard),"
        "      gone AS (UPDATE gt_brokers SET seen_until = now () WHERE broker_id = $1)"
        " SELECT (SELECT count (*) FROM released), pg_notify ('gt_shards', $1)":
        "WITH released AS (UPDATE gt_shards s SET owner = NULL, owned_until = NULL"
        "                    FROM unnest ($2::smallint [], $3::bigint []) AS held (shard, epoch)"
        "                   WHERE s.shard = held.shard AND s.epoch = held.epoch AND s.owner = $1"
        "               RETURNING s.shard)"
        " SELECT (SELECT count (*) FROM released), pg_notify ('gt_shards', $1)", 3, values);
    int released = -1;
    long long count;
    if (result && PQresultStatus (result) == PGRES_TUPLES_OK && PQntuples (result) == 1
    &&  s_parse (PQgetvalue (result, 0, 0), 0, GT_SHARD_COUNT, &count))
        released = (int) count;
    else
    if (result) {
        char prefix [64], reason [S_TEXT];
        snprintf (prefix, sizeof prefix, "cannot %s the shards: ", what);
        s_result_error (result, prefix, reason, sizeof reason);
        s_warn (self, reason);
    }
    PQclear (result);
    return released;
}

//  Cluster mode: heartbeat, count the live brokers, take free, expired or
//  own shards up to the share, and name the surplus when above it.
static void
s_acquire_share (s_shards_t *self)
{
    self->notified = false;
    self->acquire_due = zclock_mono () + self->options.acquire_ms;
    char shards_text [S_SHARDS_TEXT], epochs_text [S_EPOCHS_TEXT], held_text [16];
    s_held_arrays (self, shards_text, sizeof shards_text, epochs_text, sizeof epochs_text);
    snprintf (held_text, sizeof held_text, "%u", self->held_count);
    char own_doing_text [24];
    snprintf (own_doing_text, sizeof own_doing_text, "%" PRId64, s_own_doing_from (self));
    const char *values [] = { self->broker_id, self->endpoint, self->events_endpoint,
                              self->lease_text, self->registered? "f": "t", shards_text, held_text,
                              s_others_expired_ok (self)? "t": "f", own_doing_text };
    int64_t sent_at = zclock_mono ();
    PGresult *result = s_exec (self, s_deadline (self),
        "WITH " S_SQL_SEEN ","
        " target AS (SELECT ceil (256.0 / (1 + count (*)))::int AS n FROM gt_brokers"
        "             WHERE seen_until >= now () AND broker_id <> $1),"
        " pick AS (SELECT shard FROM gt_shards"
        "           WHERE (owner IS NULL OR owner = $1 OR (owned_until < now ()"
        "                  AND ($8::boolean OR owned_until >= to_timestamp ($9::bigint / 1000.0))))"
        "             AND NOT (shard = ANY ($6::smallint []))"
        "           ORDER BY shard LIMIT greatest (0, (SELECT n FROM target) - $7::int)"
        "             FOR UPDATE SKIP LOCKED),"
        " taken AS (UPDATE gt_shards s SET owner = $1, epoch = s.epoch + 1,"
        "                  owned_until = now () + $4::bigint * interval '1 millisecond'"
        "             FROM pick WHERE s.shard = pick.shard RETURNING s.shard, s.epoch)"
        " SELECT t.n, taken.shard, taken.epoch FROM target t LEFT JOIN taken ON true", 9, values);
    if (!result)
        return;
    if (PQresultStatus (result) != PGRES_TUPLES_OK || PQnfields (result) != 3 || PQntuples (result) < 1) {
        char reason [S_TEXT];
        s_result_error (result, "cannot acquire a share of the shards: ", reason, sizeof reason);
        s_warn (self, reason);
        PQclear (result);
        return;
    }
    self->registered = true;
    long long target = 0;
    gt_pgshards_notice_t notice;
    memset (&notice, 0, sizeof notice);
    notice.kind = GT_PGSHARDS_ACQUIRED;
    unsigned taken = 0;
    bool malformed = !s_parse (PQgetvalue (result, 0, 0), 1, GT_SHARD_COUNT, &target);
    for (int row = 0; row < PQntuples (result) && !malformed; row++) {
        if (PQgetisnull (result, row, 1))
            continue;                   //  nothing taken
        long long shard, epoch;
        if (!s_parse (PQgetvalue (result, row, 1), 0, GT_SHARD_COUNT - 1, &shard)
        ||  !s_parse (PQgetvalue (result, row, 2), 1, INT64_MAX, &epoch)
        ||  gt_pgshards_has (notice.shards, (unsigned) shard) || gt_pgshards_has (self->held, (unsigned) shard))
            malformed = true;
        else {
            gt_pgshards_set (notice.shards, (unsigned) shard);
            notice.epochs [shard] = (uint64_t) epoch;
            taken++;
        }
    }
    PQclear (result);
    if (malformed) {
        //  Committed already: what we cannot read runs out (and is fenced)
        s_warn (self, "the share acquisition returned a malformed row: ignored");
        return;
    }
    if (taken) {
        bool first = self->held_count == 0;
        for (unsigned shard = 0; shard < GT_SHARD_COUNT; shard++)
            if (gt_pgshards_has (notice.shards, shard)) {
                gt_pgshards_set (self->held, shard);
                self->epochs [shard] = notice.epochs [shard];
            }
        self->held_count += taken;
        if (first) {
            //  The others' renewal times are older: only a first share sets it
            s_set_valid_until (self, sent_at + self->options.lease_ms - self->options.margin_ms);
            self->next_due = sent_at + self->options.renew_ms;
        }
        s_notice (self, &notice);
        gt_log_info (S_COMPONENT, "broker %s acquired %u shards (now %u, its share %lld)",
                     self->broker_id, taken, self->held_count, target);
    }
    //  Above the share: name the surplus, highest shards first, one SHED
    //  at a time
    if (!self->shed_pending && self->held_count > (unsigned) target) {
        gt_pgshards_notice_t shed;
        memset (&shed, 0, sizeof shed);
        shed.kind = GT_PGSHARDS_SHED;
        unsigned surplus = self->held_count - (unsigned) target;
        for (int shard = GT_SHARD_COUNT - 1; shard >= 0 && surplus; shard--)
            if (gt_pgshards_has (self->held, (unsigned) shard)) {
                gt_pgshards_set (shed.shards, (unsigned) shard);
                surplus--;
            }
        snprintf (shed.text, sizeof shed.text, "%u shards are above this broker's share of %lld",
                  self->held_count - (unsigned) target, target);
        memcpy (self->shedding, shed.shards, sizeof self->shedding);
        self->shed_pending = true;
        s_notice (self, &shed);
        gt_log_info (S_COMPONENT, "broker %s hands over %s", self->broker_id, shed.text);
    }
}

//  RELEASE_SHARDS: owner NULL on the named held shards at their epochs,
//  NOTIFY.  Returns the number released, -1 if it could not.
static int
s_release_shards (s_shards_t *self, const uint8_t *shards, int64_t timeout_ms)
{
    //  Single mode gives all its shards up or none: its epoch proof reads
    //  shard 0's row alone (007_single_mode_proof.sql)
    assert (self->options.cluster);
    uint8_t kept [GT_PGSHARDS_BITMAP];
    memcpy (kept, self->held, sizeof kept);
    unsigned kept_count = self->held_count;
    //  s_held_arrays reads held: point it at the ones to release
    for (unsigned index = 0; index < GT_PGSHARDS_BITMAP; index++)
        self->held [index] = kept [index] & shards [index];
    unsigned releasing = 0;
    for (unsigned shard = 0; shard < GT_SHARD_COUNT; shard++)
        releasing += gt_pgshards_has (self->held, shard);
    char shards_text [S_SHARDS_TEXT], epochs_text [S_EPOCHS_TEXT];
    s_held_arrays (self, shards_text, sizeof shards_text, epochs_text, sizeof epochs_text);
    //  From here on they are not ours, whatever PostgreSQL answers: the
    //  broker forgot them, and if the release is lost they run out
    for (unsigned index = 0; index < GT_PGSHARDS_BITMAP; index++) {
        self->held [index] = kept [index] & (uint8_t) ~shards [index];
        self->shedding [index] &= (uint8_t) ~shards [index];
    }
    self->held_count = kept_count - releasing;
    self->shed_pending = false;
    for (unsigned shard = 0; shard < GT_SHARD_COUNT; shard++)
        if (gt_pgshards_has (shards, shard))
            self->epochs [shard] = 0;
    if (self->held_count == 0)
        s_set_valid_until (self, 0);
    if (releasing == 0)
        return 0;
    if (!self->conn)
        return -1;
    int released = s_release_rows (self, shards_text, epochs_text, timeout_ms, false, "hand over");
    gt_log_info (S_COMPONENT, "broker %s handed %d shards over (%u still held)", self->broker_id,
                 released, self->held_count);
    //  Look for the share again soon: the next surplus, if any
    self->acquire_due = zclock_mono ();
    return released;
}

//  RELEASE_SHARDS number timeout (then the bitmap frame): answer number
//  and the count on the pipe.
static void
s_on_release_shards (s_shards_t *self, zmsg_t *msg)
{
    char *number = zmsg_popstr (msg);
    char *timeout = zmsg_popstr (msg);
    zframe_t *bitmap = zmsg_pop (msg);
    long long timeout_ms;
    assert (number && timeout && s_parse (timeout, 0, INT64_MAX, &timeout_ms));
    assert (bitmap && zframe_size (bitmap) == GT_PGSHARDS_BITMAP);
    int released = s_release_shards (self, zframe_data (bitmap), timeout_ms);
    zsock_send (self->pipe, "si", number, released);
    zframe_destroy (&bitmap);
    zstr_free (&number);
    zstr_free (&timeout);
}

//  Who holds shard now, for a LOST notice's text.
static void
s_who_took (s_shards_t *self, unsigned shard, char *text, size_t size)
{
    char shard_text [12];
    snprintf (shard_text, sizeof shard_text, "%u", shard);
    const char *values [] = { shard_text };
    PGresult *result = s_exec (self, s_deadline (self),
        "SELECT owner, epoch FROM gt_shards WHERE shard = $1::smallint", 1, values);
    if (!result || PQresultStatus (result) != PGRES_TUPLES_OK || PQntuples (result) != 1
    ||  PQnfields (result) != 2)
        snprintf (text, size, "taken by another broker (shard %u's row could not be read)", shard);
    else
    if (PQgetisnull (result, 0, 0))
        snprintf (text, size, "freed (shard %u has no owner, epoch %.20s)", shard, PQgetvalue (result, 0, 1));
    else {
        const char *owner = PQgetvalue (result, 0, 0);
        if (streq (owner, self->broker_id))
            snprintf (text, size, "taken by another broker with the same id %.60s (shard %u at epoch %.20s,"
                      " not %" PRIu64 "): is GC_BROKER_ID unique?", owner, shard, PQgetvalue (result, 0, 1),
                      self->epochs [shard]);
        else
            snprintf (text, size, "taken by broker %.100s (shard %u at epoch %.20s)",
                      owner, shard, PQgetvalue (result, 0, 1));
    }
    PQclear (result);
}

//  Owner: extend the held shards' lease; LOST for those not found.
static void
s_renew (s_shards_t *self)
{
    char shards_text [S_SHARDS_TEXT], epochs_text [S_EPOCHS_TEXT];
    s_held_arrays (self, shards_text, sizeof shards_text, epochs_text, sizeof epochs_text);
    const char *values [] = { self->broker_id, self->endpoint, self->events_endpoint,
                              self->lease_text, self->registered? "f": "t", shards_text, epochs_text };
    int64_t sent_at = zclock_mono ();
    PGresult *result = s_exec (self, s_deadline (self),
        "WITH " S_SQL_SEEN ","
        " renewed AS (UPDATE gt_shards s SET owned_until = now () + $4::bigint * interval '1 millisecond'"
        "               FROM unnest ($6::smallint [], $7::bigint []) AS held (shard, epoch)"
        "              WHERE s.shard = held.shard AND s.epoch = held.epoch AND s.owner = $1"
        "          RETURNING s.shard)"
        " SELECT shard FROM renewed", 7, values);
    if (!result)
        return;                         //  lost: renewed after the reconnect (at once)
    if (PQresultStatus (result) != PGRES_TUPLES_OK) {
        char reason [S_TEXT];
        s_result_error (result, "cannot renew the shards: ", reason, sizeof reason);
        s_warn (self, reason);
        PQclear (result);
        //  A lock or statement timeout already took renew_ms: try again soon
        self->next_due = zclock_mono () + self->options.renew_ms / 4;
        return;
    }
    uint8_t renewed [GT_PGSHARDS_BITMAP] = { 0 };
    bool malformed = false;
    for (int row = 0; row < PQntuples (result); row++) {
        long long shard;
        if (PQnfields (result) != 1
        ||  !s_parse (PQgetvalue (result, row, 0), 0, GT_SHARD_COUNT - 1, &shard)
        ||  !gt_pgshards_has (self->held, (unsigned) shard))
            malformed = true;
        else
            gt_pgshards_set (renewed, (unsigned) shard);
    }
    PQclear (result);
    self->registered = true;
    if (malformed) {
        //  Nothing is concluded from an answer we do not understand: the
        //  lease runs out unless a later renewal is clear
        s_warn (self, "the renewal returned a malformed row: ignored");
        self->next_due = zclock_mono () + self->options.renew_ms / 4;
        return;
    }
    gt_pgshards_notice_t notice;
    memset (&notice, 0, sizeof notice);
    notice.kind = GT_PGSHARDS_LOST;
    unsigned lost = 0, first_lost = 0;
    for (unsigned shard = 0; shard < GT_SHARD_COUNT; shard++)
        if (gt_pgshards_has (self->held, shard) && !gt_pgshards_has (renewed, shard)) {
            if (lost++ == 0)
                first_lost = shard;
            gt_pgshards_set (notice.shards, shard);
        }
    if (lost < self->held_count)
        s_set_valid_until (self, sent_at + self->options.lease_ms - self->options.margin_ms);
    self->next_due = sent_at + self->options.renew_ms;
    if (lost) {
        if (self->conn)
            s_who_took (self, first_lost, notice.text, sizeof notice.text);
        else
            snprintf (notice.text, sizeof notice.text, "taken by another broker");
        memcpy (self->held, renewed, sizeof self->held);
        self->held_count -= lost;
        for (unsigned shard = 0; shard < GT_SHARD_COUNT; shard++)
            if (gt_pgshards_has (notice.shards, shard))
                self->epochs [shard] = 0;
        if (self->held_count == 0)
            s_set_valid_until (self, 0);
        self->stepped_down = true;
        s_notice (self, &notice);
        gt_log_warn (S_COMPONENT, "broker %s lost %u shards (%u still held): %s",
                     self->broker_id, lost, self->held_count, notice.text);
    }
}

//  Give the held shards up (owner NULL, NOTIFY) and step down.  Returns
//  the number released, or -1.
static int
s_release (s_shards_t *self, int64_t timeout_ms)
{
    //  The broker is leaving: it acts on nothing from here on
    s_set_valid_until (self, 0);
    bool held = self->held_count > 0;
    self->stepped_down = true;
    self->released = true;
    int released = held? -1: 0;
    if (!self->conn && held)
        s_connect (self);           //  one attempt (bounded): else they run out
    if (self->conn) {
        char shards_text [S_SHARDS_TEXT], epochs_text [S_EPOCHS_TEXT];
        s_held_arrays (self, shards_text, sizeof shards_text, epochs_text, sizeof epochs_text);
        released = s_release_rows (self, shards_text, epochs_text, timeout_ms, true, "release");
    }
    if (released >= 0)
        gt_log_info (S_COMPONENT, "broker %s released %d shards", self->broker_id, released);
    else
        gt_log_warn (S_COMPONENT, "broker %s could not release its shards: they run out in %d ms",
                     self->broker_id, (int) self->options.lease_ms);
    memset (self->held, 0, sizeof self->held);
    self->held_count = 0;
    return released;
}

//  --------------------------------------------------------------------------
//  The thread

typedef struct {
    char *conninfo;                 //  conninfo (the thread takes it)
    gt_pgshards_options_t options;  //  settings (strings: the caller's, copied by the thread)
    zsock_t *notices;               //  the thread's end of the notice pair (the thread takes it)
    _Atomic int64_t *valid_until;   //  the owner's field
} s_args_t;

//  Nothing more to do: released, or lost everything.
static bool
s_finished (s_shards_t *self)
{
    return self->released || (self->stepped_down && self->held_count == 0);
}

//  Poll timeout: up to the next thing due, -1 when none.
static long
s_poll_timeout (s_shards_t *self)
{
    if (s_finished (self))
        return -1;
    int64_t due = self->conn? self->next_due: self->retry_at;
    if (self->conn && self->options.cluster && !self->stepped_down && self->options.endpoint_pending)
        due = self->acquire_due;    //  (no share before ADVERTISE, which wakes the actor)
    else
    if (self->conn && self->options.cluster && !self->stepped_down) {
        if (self->held_count == 0 || self->acquire_due < due)
            due = self->acquire_due;
        if (self->notified)
            due = 0;
    }
    else
    if (self->conn && self->held_count == 0 && self->notified)
        due = 0;
    int64_t now = zclock_mono ();
    return due <= now? 0: (long) (due - now);
}

//  Read who owns what (gt_shards, the live gt_brokers) and send a MAP
//  notice when it changed.  A failure is only logged: the next turn reads
//  it again.
static void
s_read_map (s_shards_t *self)
{
    PGresult *result = s_exec (self, s_deadline (self),
        "SELECT (SELECT coalesce (sum (epoch), 0) FROM gt_shards)::text, b.broker_id, b.endpoint,"
        "       b.events_endpoint,"
        "       coalesce ((SELECT string_agg (s.shard || ':' || s.epoch, ',' ORDER BY s.shard) FROM gt_shards s"
        "                   WHERE s.owner = b.broker_id AND s.owned_until >= now ()), '')"
        "  FROM gt_brokers b WHERE b.seen_until >= now () ORDER BY b.broker_id", 0, NULL);
    if (!result)
        return;
    if (PQresultStatus (result) != PGRES_TUPLES_OK || PQnfields (result) != 5) {
        char reason [S_TEXT];
        s_result_error (result, "cannot read the shard map: ", reason, sizeof reason);
        s_warn (self, reason);
        PQclear (result);
        return;
    }
    long long version = 0;
    if (PQntuples (result) > 0 && !s_parse (PQgetvalue (result, 0, 0), 0, INT64_MAX, &version)) {
        s_warn (self, "the shard map's version is malformed: ignored");
        PQclear (result);
        return;
    }
    gt_shard_map_t *map = gt_shard_map_new ((uint64_t) version, self->options.cluster);
    for (int row = 0; row < PQntuples (result); row++) {
        size_t broker = gt_shard_map_add_broker (map, PQgetvalue (result, row, 1),
                                                 PQgetvalue (result, row, 2), PQgetvalue (result, row, 3));
        const char *shards = PQgetvalue (result, row, 4);
        //  shard:epoch,shard:epoch,...
        while (*shards) {
            char *end;
            unsigned long shard = strtoul (shards, &end, 10);
            if (end == shards || shard >= GT_SHARD_COUNT || *end != ':')
                break;              //  PostgreSQL wrote it from its own columns: cannot happen
            const char *epoch_text = end + 1;
            unsigned long long epoch = strtoull (epoch_text, &end, 10);
            if (end == epoch_text)
                break;
            gt_shard_map_assign (map, broker, (unsigned) shard);
            gt_shard_map_set_epoch (map, (unsigned) shard, (uint64_t) epoch);
            shards = *end == ','? end + 1: end;
        }
    }
    PQclear (result);
    if (self->map && gt_shard_map_equal (self->map, map)) {
        gt_shard_map_destroy (&map);
        return;
    }
    gt_shard_map_destroy (&self->map);
    self->map = map;
    gt_pgshards_notice_t notice;
    memset (&notice, 0, sizeof notice);
    notice.kind = GT_PGSHARDS_MAP;
    notice.map = gt_shard_map_dup (map);
    s_notice (self, &notice);
}

//  Do what is due.
static void
s_service (s_shards_t *self)
{
    if (!s_finished (self)) {
        if (!self->conn && zclock_mono () >= self->retry_at)
            s_connect (self);
        bool looked = false;
        if (self->conn && self->held_count) {
            if (zclock_mono () >= self->next_due) {
                s_renew (self);
                looked = true;
            }
        }
        else
        if (self->conn && !self->options.cluster && (self->notified || zclock_mono () >= self->next_due)) {
            s_acquire (self);       //  (holding nothing, not finished: a standby)
            looked = true;
        }
        if (self->conn && self->options.cluster && !self->stepped_down && self->options.endpoint_pending) {
            //  Its endpoint is not known yet (bound after the store opens):
            //  no share before it is, or the others would send clients to
            //  an address nobody listens on (MOVED, the MAP); one look at
            //  the map all the same, which the store waits for.  Paced by
            //  acquire_ms (a NOTIFY waits too), said once it is long
            int64_t now = zclock_mono ();
            if (now >= self->acquire_due) {
                if (!self->map)
                    looked = true;
                if (!self->pending_since)
                    self->pending_since = now;
                else
                if (!self->pending_warned && now - self->pending_since > self->options.lease_ms) {
                    gt_log_warn (S_COMPONENT, "broker %s takes no shards yet: its requests endpoint is "
                                 "not bound (set GC_ADVERTISE_ENDPOINT, or bind it)", self->broker_id);
                    self->pending_warned = true;
                }
                self->acquire_due = now + self->options.acquire_ms;
            }
        }
        else
        if (self->conn && self->options.cluster && !self->stepped_down
        &&  (self->notified || zclock_mono () >= self->acquire_due)) {
            s_acquire_share (self);
            looked = true;
        }
        if (looked && self->conn && !s_finished (self))
            s_read_map (self);
    }
    if (s_finished (self) && self->conn) {
        PQfinish (self->conn);      //  nothing more to say to PostgreSQL
        self->conn = NULL;
    }
}

//  RELEASE number timeout: answer number and the count on the pipe.
static void
s_on_release (s_shards_t *self, zmsg_t *msg)
{
    char *number = zmsg_popstr (msg);
    char *timeout = zmsg_popstr (msg);
    long long timeout_ms;
    assert (number && timeout && s_parse (timeout, 0, INT64_MAX, &timeout_ms));
    int released = s_release (self, timeout_ms);
    zsock_send (self->pipe, "si", number, released);
    zstr_free (&number);
    zstr_free (&timeout);
}

//  ADVERTISE kind endpoint: heartbeat the new endpoint now (an owner
//  renews early, which is harmless; a standby looks again).
static void
s_on_advertise (s_shards_t *self, zmsg_t *msg)
{
    char *kind = zmsg_popstr (msg);
    char *endpoint = zmsg_popstr (msg);
    if (kind && endpoint && *endpoint) {
        char **field = streq (kind, "events")? &self->events_endpoint: &self->endpoint;
        free (*field);
        *field = endpoint;
        endpoint = NULL;
        self->options.endpoint = self->endpoint;
        self->options.events_endpoint = self->events_endpoint;
        self->next_due = zclock_mono ();
        if (!streq (kind, "events") && self->options.endpoint_pending) {
            self->options.endpoint_pending = false;
            self->acquire_due = zclock_mono ();     //  its share, now that clients can reach it
        }
    }
    zstr_free (&kind);
    zstr_free (&endpoint);
}

static void
s_shards_actor (zsock_t *pipe, void *pointer)
{
    s_args_t *args = (s_args_t *) pointer;
    s_shards_t self_struct;
    s_shards_t *self = &self_struct;
    memset (self, 0, sizeof *self);
    self->pipe = pipe;
    self->notices = args->notices;
    self->valid_until = args->valid_until;
    self->conninfo = args->conninfo;
    self->options = args->options;
    self->broker_id = strdup (args->options.broker_id);
    self->endpoint = strdup (args->options.endpoint? args->options.endpoint: "");
    self->events_endpoint = strdup (args->options.events_endpoint? args->options.events_endpoint: "");
    assert (self->broker_id && self->endpoint && self->events_endpoint);
    self->options.broker_id = self->broker_id;
    self->options.endpoint = self->endpoint;
    self->options.events_endpoint = self->events_endpoint;
    snprintf (self->lease_text, sizeof self->lease_text, "%" PRId64, self->options.lease_ms);
    self->backoff = S_BACKOFF_MIN_MS;
    self->retry_at = zclock_mono ();
    free (args);
    zsock_signal (pipe, 0);

    bool terminated = false;
    while (!terminated) {
        zmq_pollitem_t items [2] = {
            { zsock_resolve (self->pipe), 0, ZMQ_POLLIN, 0 },
            { NULL, -1, ZMQ_POLLIN, 0 }
        };
        int count = 1;
        if (self->conn && PQsocket (self->conn) >= 0) {
            items [1].fd = PQsocket (self->conn);
            count = 2;
        }
        if (zmq_poll (items, count, s_poll_timeout (self)) < 0 && errno != EINTR)
            break;
        if (items [0].revents & ZMQ_POLLIN) {
            zmsg_t *msg = zmsg_recv (self->pipe);
            if (!msg)
                break;                  //  interrupted
            char *command = zmsg_popstr (msg);
            if (command && streq (command, "$TERM"))
                terminated = true;
            else
            if (command && streq (command, "RELEASE"))
                s_on_release (self, msg);
            else
            if (command && streq (command, "ADVERTISE"))
                s_on_advertise (self, msg);
            else
            if (command && streq (command, "RELEASE_SHARDS"))
                s_on_release_shards (self, msg);
            zstr_free (&command);
            zmsg_destroy (&msg);
            if (terminated)
                break;
        }
        if (count == 2 && items [1].revents && self->conn) {
            if (!PQconsumeInput (self->conn))
                s_connection_broken (self, "PostgreSQL connection lost: ");
            else
                s_take_notifies (self);
        }
        s_service (self);
    }
    s_set_valid_until (self, 0);
    if (self->conn)
        PQfinish (self->conn);
    gt_shard_map_destroy (&self->map);
    zsock_destroy (&self->notices);
    free (self->conninfo);
    free (self->broker_id);
    free (self->endpoint);
    free (self->events_endpoint);
    //  zactor_destroy waits for $TERM to be read: if we left early, read it now
    if (!terminated) {
        char *command = zstr_recv (self->pipe);
        zstr_free (&command);
    }
}

//  --------------------------------------------------------------------------
//  The owner's side

struct gt_pgshards_t {
    zactor_t *actor;                //  the ownership thread
    zsock_t *notices;               //  our end of the notice pair
    _Atomic int64_t valid_until;    //  written by the thread, read by any
    uint64_t releases;              //  RELEASE requests sent (numbers their answers)
};

static int s_await_release (gt_pgshards_t *self, const char *number, int64_t timeout_ms);

void
gt_pgshards_options_init (gt_pgshards_options_t *options)
{
    assert (options);
    memset (options, 0, sizeof *options);
    options->lease_ms = 3000;
    options->renew_ms = 1000;
    options->margin_ms = 500;
    options->acquire_ms = 500;
}

gt_pgshards_t *
gt_pgshards_new (const char *conninfo, const gt_pgshards_options_t *options)
{
    assert (conninfo);
    if (!options || !options->broker_id || !*options->broker_id
    ||  options->lease_ms <= 0 || options->renew_ms <= 0 || options->margin_ms < 0
    ||  options->acquire_ms <= 0 || options->renew_ms + options->margin_ms >= options->lease_ms)
        return NULL;
    gt_pgshards_t *self = (gt_pgshards_t *) zmalloc (sizeof (gt_pgshards_t));
    assert (self);
    atomic_init (&self->valid_until, 0);
    s_args_t *args = (s_args_t *) zmalloc (sizeof (s_args_t));
    assert (args);
    args->conninfo = strdup (conninfo);
    assert (args->conninfo);
    args->options = *options;
    args->valid_until = &self->valid_until;
    //  Unbounded: notices are never dropped, the thread never blocks on them
    //  A fresh name each time: an inproc name is freed asynchronously, so
    //  one made from our address could still be bound by the previous self
    zuuid_t *uuid = zuuid_new ();
    assert (uuid);
    char endpoint [64];
    snprintf (endpoint, sizeof endpoint, "inproc://gt-pgshards-%s", zuuid_str (uuid));
    zuuid_destroy (&uuid);
    self->notices = zsock_new (ZMQ_PAIR);
    args->notices = zsock_new (ZMQ_PAIR);
    assert (self->notices && args->notices);
    zsock_set_sndhwm (self->notices, 0);
    zsock_set_rcvhwm (self->notices, 0);
    zsock_set_sndhwm (args->notices, 0);
    zsock_set_rcvhwm (args->notices, 0);
    int rc = zsock_bind (self->notices, "%s", endpoint);
    assert (rc == 0);
    rc = zsock_connect (args->notices, "%s", endpoint);
    assert (rc == 0);
    self->actor = zactor_new (s_shards_actor, args);
    assert (self->actor);
    return self;
}

void
gt_pgshards_destroy (gt_pgshards_t **self_p)
{
    assert (self_p);
    gt_pgshards_t *self = *self_p;
    if (self) {
        zactor_destroy (&self->actor);
        //  Unread MAP notices own their maps
        zsock_set_rcvtimeo (self->notices, 0);
        gt_pgshards_notice_t notice;
        while (gt_pgshards_recv (self, &notice) == 0)
            if (notice.kind == GT_PGSHARDS_MAP)
                gt_shard_map_destroy (&notice.map);
        zsock_destroy (&self->notices);
        free (self);
        *self_p = NULL;
    }
}

int
gt_pgshards_release_shards (gt_pgshards_t *self, const uint8_t *shards, int64_t timeout_ms)
{
    assert (self);
    assert (shards);
    assert (timeout_ms >= 0);
    char number [24], timeout [24];
    snprintf (number, sizeof number, "%" PRIu64, ++self->releases);
    snprintf (timeout, sizeof timeout, "%" PRId64, timeout_ms);
    zmsg_t *msg = zmsg_new ();
    zmsg_addstr (msg, "RELEASE_SHARDS");
    zmsg_addstr (msg, number);
    zmsg_addstr (msg, timeout);
    zmsg_addmem (msg, shards, GT_PGSHARDS_BITMAP);
    if (zmsg_send (&msg, self->actor) != 0) {
        zmsg_destroy (&msg);
        return -1;
    }
    return s_await_release (self, number, timeout_ms);
}

void
gt_pgshards_advertise (gt_pgshards_t *self, bool events, const char *endpoint)
{
    assert (self);
    if (endpoint && *endpoint)
        zstr_sendx (self->actor, "ADVERTISE", events? "events": "requests", endpoint, NULL);
}

zsock_t *
gt_pgshards_sock (gt_pgshards_t *self)
{
    assert (self);
    return self->notices;
}

int
gt_pgshards_recv (gt_pgshards_t *self, gt_pgshards_notice_t *notice)
{
    assert (self);
    assert (notice);
    zframe_t *frame = zframe_recv (self->notices);
    if (!frame)
        return -1;
    //  Our own thread wrote it: any other size is a bug
    assert (zframe_size (frame) == sizeof *notice);
    memcpy (notice, zframe_data (frame), sizeof *notice);
    zframe_destroy (&frame);
    return 0;
}

int64_t
gt_pgshards_valid_until (gt_pgshards_t *self)
{
    assert (self);
    return atomic_load (&self->valid_until);
}

int
gt_pgshards_release (gt_pgshards_t *self, int64_t timeout_ms)
{
    assert (self);
    assert (timeout_ms >= 0);
    char number [24], timeout [24];
    snprintf (number, sizeof number, "%" PRIu64, ++self->releases);
    snprintf (timeout, sizeof timeout, "%" PRId64, timeout_ms);
    if (zstr_sendx (self->actor, "RELEASE", number, timeout, NULL) != 0)
        return -1;
    return s_await_release (self, number, timeout_ms);
}

//  Wait for the answer numbered number, up to timeout_ms (plus the
//  thread's own statement deadline, which bounds it anyway).
static int
s_await_release (gt_pgshards_t *self, const char *number, int64_t timeout_ms)
{
    zpoller_t *poller = zpoller_new (self->actor, NULL);
    assert (poller);
    int64_t deadline = zclock_mono () + timeout_ms;
    int released = -1;
    while (true) {
        int64_t wait = deadline - zclock_mono ();
        if (wait < 0 || !zpoller_wait (poller, wait > INT_MAX? INT_MAX: (int) wait))
            break;                      //  timed out or interrupted
        char *answer = NULL;
        int count = -1;
        if (zsock_recv (self->actor, "si", &answer, &count) != 0)
            break;
        bool ours = answer && streq (answer, number);
        zstr_free (&answer);
        if (ours) {
            released = count;
            break;
        }
        //  else: the late answer to an earlier release that timed out
    }
    zpoller_destroy (&poller);
    return released;
}

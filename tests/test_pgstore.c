/*  test_pgstore.c — the broker on the PostgreSQL store: restarts, the
    catch-up after a start, a database outage, the callback outbox.

    Usage: test_pgstore AREA    (one ctest per area; "all" runs them all)
    Each area has a fresh database of its own (gt_test_config with
    GT_TEST_STORE=postgres) on the server DATABASE_URL names; without it the
    test exits 77 (skipped).  An outage is made by refusing connections to
    that database (ALTER DATABASE ... ALLOW_CONNECTIONS false) and ending its
    sessions: other databases on the server are not disturbed.  Waits are on
    sockets or on conditions polled with a deadline; where a test needs wall
    time to pass (a deadline falling due while the broker is down), it waits
    for the clock itself.  */
#include "gt_test_util.h"
#include "gt_http_server.h"
#include <libpq-fe.h>

//  Fail with what was expected.
static void
s_expect (gt_msg_t *reply, gt_code_t code)
{
    assert (reply);
    if (reply->code != code)
        fprintf (stderr, "expected %s, got %s: %s\n", gt_code_name (code), gt_code_name (reply->code),
                 reply->message ? reply->message : "");
    assert (reply->code == code);
}

static void
s_expect_and_free (gt_msg_t *reply, gt_code_t code)
{
    s_expect (reply, code);
    gt_msg_destroy (&reply);
}

//  The lease of an OK reply, copied; destroys the reply.
static gt_lease_info_t
s_lease (gt_msg_t *reply)
{
    s_expect (reply, GT_OK);
    assert (reply->lease);
    gt_lease_info_t lease;
    gt_lease_info_copy (&lease, reply->lease);
    gt_msg_destroy (&reply);
    return lease;
}

//  Wait until the wall clock has passed wall_ms (time itself must pass).
static void
s_wait_wall (uint64_t wall_ms)
{
    while (gt_test_now () <= wall_ms)
        zclock_sleep ((int) (wall_ms + 1 - gt_test_now ()));
}

//  --------------------------------------------------------------------------
//  The test database, from the outside

//  The database name in the config's conninfo (gt_pgtestdb: dbname='...').
static void
s_database_name (const gt_config_t *config, char *name, size_t size)
{
    const char *at = strstr (config->database_url, "dbname='");
    assert (at);
    at += strlen ("dbname='");
    size_t length = strcspn (at, "'");
    assert (length < size);
    memcpy (name, at, length);
    name [length] = 0;
}

static void
s_admin (const char *sql)
{
    PGconn *conn = PQconnectdb (getenv ("DATABASE_URL"));
    assert (PQstatus (conn) == CONNECTION_OK);
    PGresult *result = PQexec (conn, sql);
    if (PQresultStatus (result) != PGRES_COMMAND_OK && PQresultStatus (result) != PGRES_TUPLES_OK)
        fprintf (stderr, "%s: %s\n", sql, PQerrorMessage (conn));
    assert (PQresultStatus (result) == PGRES_COMMAND_OK || PQresultStatus (result) == PGRES_TUPLES_OK);
    PQclear (result);
    PQfinish (conn);
}

//  Let the broker reach its database, or not (and end its sessions).
static void
s_database_allow (const gt_config_t *config, bool allow)
{
    char name [64], sql [256];
    s_database_name (config, name, sizeof (name));
    snprintf (sql, sizeof (sql), "ALTER DATABASE %s ALLOW_CONNECTIONS %s", name, allow ? "true" : "false");
    s_admin (sql);
    if (!allow) {
        snprintf (sql, sizeof (sql), "SELECT pg_terminate_backend (pid) FROM pg_stat_activity"
                  " WHERE datname = '%s'", name);
        s_admin (sql);
    }
}

//  Poll HEALTH until store_status is the one wanted; returns the last reply.
static gt_msg_t *
s_await_health (gt_test_broker_t *broker, zsock_t *dealer, const char *store_status)
{
    int64_t deadline = zclock_mono () + 20000;     //  the writer's backoff reaches 5 s
    while (true) {
        gt_msg_t *reply = gt_test_simple (broker, dealer, GT_CMD_HEALTH);
        s_expect (reply, GT_OK);
        if (streq (reply->store_status, store_status) || zclock_mono () > deadline)
            return reply;
        gt_msg_destroy (&reply);
        //  Ask again when the store may have changed: a short poll on nothing
        zclock_sleep (20);
    }
}

//  Every event after after_seq, through REPLAY pages.  Returns the count
//  and calls fn for each.
typedef void (s_event_fn) (void *ctx, const gt_event_t *event);

static uint64_t
s_replay (gt_test_broker_t *broker, zsock_t *dealer, uint64_t after_seq, s_event_fn *fn, void *ctx)
{
    uint64_t count = 0;
    while (true) {
        gt_msg_t request = gt_test_request (GT_CMD_REPLAY);
        request.has_after_seq = true;
        request.after_seq = after_seq;
        request.has_limit = true;
        request.limit = GT_MAX_PAGE;
        gt_msg_t *reply = gt_test_call (broker, dealer, &request);
        s_expect (reply, GT_OK);
        for (size_t index = 0; index < reply->event_count; index++) {
            assert (reply->events [index].seq == after_seq + 1);   //  no gap
            after_seq = reply->events [index].seq;
            if (fn)
                fn (ctx, &reply->events [index]);
            count++;
        }
        bool done = reply->event_count == 0;
        gt_msg_destroy (&reply);
        if (done)
            return count;
    }
}

//  The newest published seq.
static uint64_t
s_last_seq (gt_test_broker_t *broker, zsock_t *dealer)
{
    gt_msg_t request = gt_test_request (GT_CMD_REPLAY);
    request.has_after_seq = true;
    request.after_seq = 0;
    request.has_limit = true;
    request.limit = 1;
    gt_msg_t *reply = gt_test_call (broker, dealer, &request);
    s_expect (reply, GT_OK);
    assert (reply->has_last_seq);
    uint64_t last_seq = reply->last_seq;
    gt_msg_destroy (&reply);
    return last_seq;
}

//  Create count leases (objects prefix-0 ..), pipelined; fill ids.
static void
s_create_many (zsock_t *dealer, const char *prefix, size_t count, uint64_t ttl_ms,
               char (*ids) [GT_LEASE_ID_LEN + 1], uint64_t *deadlines)
{
    for (size_t index = 0; index < count; index++) {
        char object [64];
        snprintf (object, sizeof (object), "%s-%zu", prefix, index);
        gt_msg_t request = gt_test_request (GT_CMD_CREATE);
        request.rid = 100000 + index;
        request.object_id = object;
        request.service_id = "pgstore";
        request.has_ttl = true;
        request.ttl_ms = ttl_ms;
        void *data;
        size_t size;
        assert (gt_msg_encode_alloc (&request, &data, &size) == 0);
        const void *frames [] = { data };
        size_t sizes [] = { size };
        gt_test_send_frames (dealer, frames, sizes, 1);
        free (data);
    }
    for (size_t received = 0; received < count; received++) {
        zmsg_t *msg = gt_test_recv (dealer, 30000);
        assert (msg);
        gt_msg_t *reply = gt_test_decode_reply (msg);
        zmsg_destroy (&msg);
        s_expect (reply, GT_OK);
        size_t index = (size_t) (reply->rid - 100000);
        assert (index < count);
        strcpy (ids [index], reply->lease->id);
        deadlines [index] = reply->lease->expires_at;
        gt_msg_destroy (&reply);
    }
}

//  --------------------------------------------------------------------------
//  Restart: the acknowledged leases come back, on their deadlines; the
//  event sequence goes on; a deadline that passed meanwhile expires once

typedef struct {
    const char *lease_id;           //  the lease watched
    size_t expired;                 //  its lease.expired events
    size_t reclaimed;               //  object.reclaimed events of its object
    size_t created;                 //  lease.created events (any)
    uint64_t first_seq;             //  seq of the first event seen
} s_watch_t;

static void
s_watch (void *ctx, const gt_event_t *event)
{
    s_watch_t *watch = (s_watch_t *) ctx;
    if (!watch->first_seq)
        watch->first_seq = event->seq;
    if (event->kind == GT_EVENT_LEASE_EXPIRED && streq (event->lease.id, watch->lease_id))
        watch->expired++;
    if (event->kind == GT_EVENT_OBJECT_RECLAIMED && streq (event->lease.id, watch->lease_id))
        watch->reclaimed++;
    if (event->kind == GT_EVENT_LEASE_CREATED)
        watch->created++;
}

static void
s_test_restart (void)
{
    gt_config_t *config = gt_test_config ();
    gt_test_broker_t *broker = gt_test_broker_start (config);
    zsock_t *dealer = gt_test_dealer (broker);

    //  Created first (a millisecond before the others), renewed last: its
    //  row then lies after theirs in the table (the renewal's new version)
    gt_lease_info_t first = s_lease (gt_test_create (broker, dealer, "first-object", "svc-e", 60000));
    s_wait_wall (first.created_at + 2);
    gt_lease_info_t created = s_lease (gt_test_create (broker, dealer, "kept-object", "svc-a", 60000));
    gt_lease_info_t kept = s_lease (gt_test_renew (broker, dealer, created.id, "svc-a", 45000));
    assert (streq (kept.id, created.id) && kept.renewals == 1);
    gt_lease_info_clear (&created);
    gt_lease_info_t released = s_lease (gt_test_create (broker, dealer, "released-object", "svc-a", 60000));
    s_expect_and_free (gt_test_release (broker, dealer, released.id, "svc-a", true), GT_OK);
    gt_lease_info_t due = s_lease (gt_test_create (broker, dealer, "due-object", "svc-c", 100));
    s_expect_and_free (gt_test_renew (broker, dealer, first.id, "svc-e", 60000), GT_OK);
    uint64_t last_seq = s_last_seq (broker, dealer);
    assert (last_seq >= 5);
    zsock_destroy (&dealer);
    gt_test_broker_stop (&broker);

    //  Down past the short lease's deadline; a new broker on the same database
    s_wait_wall (due.expires_at + 50);
    broker = gt_test_broker_start (config);
    dealer = gt_test_dealer (broker);
    gt_lease_info_t back = s_lease (gt_test_get (broker, dealer, kept.id));
    assert (streq (back.object_id, kept.object_id) && streq (back.service_id, kept.service_id));
    assert (back.state == kept.state && back.expires_at == kept.expires_at);   //  no TTL reset
    assert (back.fence == kept.fence && back.renewals == kept.renewals && back.created_at == kept.created_at);
    gt_lease_info_clear (&back);
    back = s_lease (gt_test_get (broker, dealer, released.id));
    assert (back.state == GT_STATE_RELEASED && back.fence == released.fence);
    gt_lease_info_clear (&back);
    //  LIST is in creation order again, though the rows came in the
    //  table's order (gt_leases_restore_end)
    gt_msg_t list = gt_test_request (GT_CMD_LIST);
    gt_msg_t *page = gt_test_call (broker, dealer, &list);
    s_expect (page, GT_OK);
    assert (page->lease_count >= 2);
    assert (streq (page->leases [0].id, first.id) && streq (page->leases [1].id, kept.id));
    gt_msg_destroy (&page);
    gt_lease_info_clear (&first);

    //  The due lease expires after the start, once, with its reclaim;
    //  numbering goes on after the last event of the first broker
    s_watch_t watch = { due.id, 0, 0, 0, 0 };
    int64_t deadline = zclock_mono () + GT_TEST_TIMEOUT;
    while (watch.reclaimed == 0 && zclock_mono () < deadline) {
        memset (&watch, 0, sizeof (watch));
        watch.lease_id = due.id;
        s_replay (broker, dealer, last_seq, s_watch, &watch);
    }
    assert (watch.expired == 1 && watch.reclaimed == 1);
    assert (watch.first_seq == last_seq + 1);
    back = s_lease (gt_test_get (broker, dealer, due.id));
    assert (back.state == GT_STATE_EXPIRED);
    gt_lease_info_clear (&back);

    //  A new life of the due object gets a larger fence
    gt_lease_info_t again = s_lease (gt_test_create (broker, dealer, "due-object", "svc-c", 60000));
    assert (again.fence > due.fence);
    gt_lease_info_clear (&again);

    //  Once more: stop and start, nothing expires twice
    uint64_t seq = s_last_seq (broker, dealer);
    zsock_destroy (&dealer);
    gt_test_broker_stop (&broker);
    broker = gt_test_broker_start (config);
    dealer = gt_test_dealer (broker);
    assert (s_last_seq (broker, dealer) == seq);
    gt_lease_info_t fresh = s_lease (gt_test_create (broker, dealer, "fresh-object", "svc-d", 60000));
    memset (&watch, 0, sizeof (watch));
    watch.lease_id = due.id;
    assert (s_replay (broker, dealer, seq, s_watch, &watch) == 1);
    assert (watch.first_seq == seq + 1 && watch.created == 1 && watch.expired == 0);
    gt_lease_info_clear (&fresh);

    gt_lease_info_clear (&kept);
    gt_lease_info_clear (&released);
    gt_lease_info_clear (&due);
    zsock_destroy (&dealer);
    gt_test_broker_stop (&broker);
    gt_config_destroy (&config);
}

//  --------------------------------------------------------------------------
//  Catch-up: leases that fell due while the broker was down expire after
//  the start, each exactly once, paced at GC_RECOVERY_EXPIRY_RATE

#define S_OVERDUE   600

typedef struct {
    char (*ids) [GT_LEASE_ID_LEN + 1];  //  the overdue leases
    uint8_t expired [S_OVERDUE];    //  lease.expired events of each
    uint8_t reclaimed [S_OVERDUE];  //  object.reclaimed events of each
    uint64_t first_at;              //  wall ms of the first expiry
    uint64_t last_at;               //  and of the last
} s_catchup_t;

static void
s_catchup_event (void *ctx, const gt_event_t *event)
{
    s_catchup_t *catchup = (s_catchup_t *) ctx;
    if (event->kind != GT_EVENT_LEASE_EXPIRED && event->kind != GT_EVENT_OBJECT_RECLAIMED)
        return;
    for (size_t index = 0; index < S_OVERDUE; index++)
        if (streq (catchup->ids [index], event->lease.id)) {
            if (event->kind == GT_EVENT_LEASE_EXPIRED) {
                catchup->expired [index]++;
                if (!catchup->first_at || event->at < catchup->first_at)
                    catchup->first_at = event->at;
                if (event->at > catchup->last_at)
                    catchup->last_at = event->at;
            }
            else
                catchup->reclaimed [index]++;
            return;
        }
}

static void
s_test_catchup (void)
{
    gt_config_t *config = gt_test_config ();
    config->recovery_expiry_rate = 200;         //  bursts of 20
    gt_test_broker_t *broker = gt_test_broker_start (config);
    zsock_t *dealer = gt_test_dealer (broker);
    s_catchup_t *catchup = (s_catchup_t *) zmalloc (sizeof (s_catchup_t));
    catchup->ids = calloc (S_OVERDUE, GT_LEASE_ID_LEN + 1);
    uint64_t *deadlines = (uint64_t *) calloc (S_OVERDUE, sizeof (uint64_t));
    assert (catchup->ids && deadlines);
    //  Long enough to be stored before they fall due, short enough to fall
    //  due while the broker is down
    uint64_t started = gt_test_now ();
    s_create_many (dealer, "overdue", S_OVERDUE, 1500, catchup->ids, deadlines);
    bool all_ahead = true;
    uint64_t latest = 0;
    for (size_t index = 0; index < S_OVERDUE; index++) {
        all_ahead = all_ahead && deadlines [index] > gt_test_now ();
        if (deadlines [index] > latest)
            latest = deadlines [index];
    }
    if (!all_ahead)
        printf ("(creating %d leases took %d ms: some fell due before the stop)\n", S_OVERDUE,
                (int) (gt_test_now () - started));
    uint64_t last_seq = s_last_seq (broker, dealer);
    zsock_destroy (&dealer);
    gt_test_broker_stop (&broker);
    s_wait_wall (latest + 10);

    //  The new broker answers requests while it catches up
    broker = gt_test_broker_start (config);
    dealer = gt_test_dealer (broker);
    gt_msg_t *health = gt_test_simple (broker, dealer, GT_CMD_HEALTH);
    s_expect (health, GT_OK);
    assert (streq (health->status, "SERVING"));
    gt_msg_destroy (&health);
    gt_lease_info_t probe = s_lease (gt_test_create (broker, dealer, "during-catchup", "pgstore", 60000));
    gt_lease_info_clear (&probe);
    size_t done = 0;
    int64_t deadline = zclock_mono () + 60000;
    while (done < S_OVERDUE && zclock_mono () < deadline) {
        memset (catchup->expired, 0, sizeof (catchup->expired));
        memset (catchup->reclaimed, 0, sizeof (catchup->reclaimed));
        catchup->first_at = catchup->last_at = 0;
        s_replay (broker, dealer, last_seq, s_catchup_event, catchup);
        done = 0;
        for (size_t index = 0; index < S_OVERDUE; index++)
            done += catchup->reclaimed [index] > 0;
    }
    for (size_t index = 0; index < S_OVERDUE; index++)
        assert (catchup->expired [index] == 1 && catchup->reclaimed [index] == 1);
    //  Paced: 600 expiries at 200/s (20 at once) take about 2.9 s; the
    //  bound only says they were spread out at all
    printf ("catch-up: %d expiries over %d ms\n", S_OVERDUE, (int) (catchup->last_at - catchup->first_at));
    assert (catchup->last_at - catchup->first_at >= 2000);
    free (catchup->ids);
    free (catchup);
    free (deadlines);
    zsock_destroy (&dealer);
    gt_test_broker_stop (&broker);
    gt_config_destroy (&config);
}

//  --------------------------------------------------------------------------
//  Outage: mutations refused before they are applied, reads served,
//  HEALTH DEGRADED; nothing expires early; the broker recovers by itself

static void
s_test_outage (void)
{
    gt_config_t *config = gt_test_config ();
    gt_test_broker_t *broker = gt_test_broker_start (config);
    zsock_t *dealer = gt_test_dealer (broker);
    zsock_t *sub = gt_test_sub (broker, "");

    //  An acknowledged renewal, a lease that falls due during the outage,
    //  and a lease to release later
    gt_lease_info_t first = s_lease (gt_test_create (broker, dealer, "renewed", "svc", 60000));
    gt_lease_info_t created = s_lease (gt_test_create (broker, dealer, "short", "svc", 300));
    gt_lease_info_t other = s_lease (gt_test_create (broker, dealer, "other", "svc", 60000));
    gt_lease_info_t renewed = s_lease (gt_test_renew (broker, dealer, first.id, "svc", 1500));
    assert (renewed.renewals == 1 && renewed.expires_at < first.expires_at);
    gt_lease_info_clear (&first);
    gt_msg_t list = gt_test_request (GT_CMD_LIST);
    list.service_id = "svc";

    //  Events so far are taken: the renewal's is the last
    gt_msg_t *event = gt_test_await_event (sub, GT_EVENT_LEASE_RENEWED, renewed.id, GT_TEST_TIMEOUT);
    assert (event);
    gt_msg_destroy (&event);

    s_database_allow (config, false);
    gt_msg_t *reply = s_await_health (broker, dealer, "DEGRADED");
    assert (streq (reply->store_status, "DEGRADED") && streq (reply->status, "DEGRADED"));
    assert (streq (reply->store, "postgres"));
    gt_msg_destroy (&reply);

    //  Mutations: UNAVAILABLE, nothing applied
    reply = gt_test_create (broker, dealer, "refused", "svc", 60000);
    s_expect (reply, GT_ERR_UNAVAILABLE);
    assert (reply->message && strstr (reply->message, "nothing was changed"));
    gt_msg_destroy (&reply);
    s_expect_and_free (gt_test_renew (broker, dealer, other.id, "svc", 60000), GT_ERR_UNAVAILABLE);
    s_expect_and_free (gt_test_release (broker, dealer, other.id, "svc", false), GT_ERR_UNAVAILABLE);
    //  Reads: served from memory
    gt_lease_info_t read = s_lease (gt_test_get (broker, dealer, other.id));
    assert (read.state == GT_STATE_ACTIVE && read.renewals == 0 && read.expires_at == other.expires_at);
    gt_lease_info_clear (&read);
    reply = gt_test_call (broker, dealer, &list);
    s_expect (reply, GT_OK);
    assert (reply->lease_count == 3);
    gt_msg_destroy (&reply);
    //  Nothing expires while the store cannot write (it would be undone)
    uint64_t quiet_until = created.expires_at + 300;
    char *topic = NULL;
    event = gt_test_event (sub, (int) (quiet_until - gt_test_now ()), &topic);
    if (event)
        fprintf (stderr, "unexpected event %s (lease %s) during the outage, %d ms after the short lease was created\n",
                 topic, event->event.lease.id, (int) (event->event.at - created.created_at));
    assert (event == NULL);
    read = s_lease (gt_test_get (broker, dealer, created.id));
    assert (read.state == GT_STATE_ACTIVE);
    gt_lease_info_clear (&read);

    //  Back: served again without a restart; what fell due expires once,
    //  never before its acknowledged deadline
    s_database_allow (config, true);
    reply = s_await_health (broker, dealer, "OK");
    assert (streq (reply->status, "SERVING"));
    gt_msg_destroy (&reply);
    event = gt_test_await_event (sub, GT_EVENT_LEASE_EXPIRED, created.id, GT_TEST_TIMEOUT);
    assert (event && event->event.at >= created.expires_at);
    gt_msg_destroy (&event);
    event = gt_test_await_event (sub, GT_EVENT_LEASE_EXPIRED, renewed.id, GT_TEST_TIMEOUT);
    assert (event && event->event.at >= renewed.expires_at);
    gt_msg_destroy (&event);
    gt_lease_info_t again = s_lease (gt_test_create (broker, dealer, "after", "svc", 60000));
    gt_lease_info_clear (&again);
    s_expect_and_free (gt_test_release (broker, dealer, other.id, "svc", false), GT_OK);
    //  No second expiry of the short lease
    s_watch_t watch = { created.id, 0, 0, 0, 0 };
    s_replay (broker, dealer, 0, s_watch, &watch);
    assert (watch.expired == 1 && watch.reclaimed == 1);

    gt_lease_info_clear (&renewed);
    gt_lease_info_clear (&created);
    gt_lease_info_clear (&other);
    zsock_destroy (&sub);
    zsock_destroy (&dealer);
    gt_test_broker_stop (&broker);
    gt_config_destroy (&config);
}

//  --------------------------------------------------------------------------
//  Outbox: a callback in flight when the broker stops is delivered again
//  by the next one (same Idempotency-Key); a dead letter comes back

//  A number from the broker's database.
static long long
s_query (const gt_config_t *config, const char *sql)
{
    PGconn *conn = PQconnectdb (config->database_url);
    assert (PQstatus (conn) == CONNECTION_OK);
    PGresult *result = PQexec (conn, sql);
    assert (PQresultStatus (result) == PGRES_TUPLES_OK && PQntuples (result) == 1);
    long long value = atoll (PQgetvalue (result, 0, 0));
    PQclear (result);
    PQfinish (conn);
    return value;
}

//  CREATE with a cleanup URL; the lease.
static gt_lease_info_t
s_create_cleanup (gt_test_broker_t *broker, zsock_t *dealer, const char *object, const char *url)
{
    gt_msg_t request = gt_test_request (GT_CMD_CREATE);
    request.object_id = (char *) object;
    request.service_id = "uploads";
    request.has_ttl = true;
    request.ttl_ms = 60000;
    gt_cleanup_t cleanup = { (char *) url, (char *) "rm", true, 3, true, 10 };
    request.cleanup = &cleanup;
    return s_lease (gt_test_call (broker, dealer, &request));
}

//  GET until the lease's callback has this status.
static gt_lease_info_t
s_await_status (gt_test_broker_t *broker, zsock_t *dealer, const char *lease_id, gt_cleanup_status_t status)
{
    int64_t deadline = zclock_mono () + 4 * GT_TEST_TIMEOUT;
    while (true) {
        gt_lease_info_t lease = s_lease (gt_test_get (broker, dealer, lease_id));
        if (lease.cleanup_status == status || zclock_mono () > deadline) {
            assert (lease.cleanup_status == status);
            return lease;
        }
        gt_lease_info_clear (&lease);
        zclock_sleep (2);           //  polling interval, not synchronisation
    }
}

static void
s_test_outbox (void)
{
    gt_http_server_t *server = gt_http_server_new ();
    assert (server);
    char *held_url = gt_http_server_url (server, "/held");
    char *gone_url = gt_http_server_url (server, "/gone");
    gt_http_response_t held = { 200, 0, true, NULL, NULL };
    gt_http_server_push (server, "/held", &held);
    gt_http_response_t missing = { 404, 0, false, NULL, NULL };
    gt_http_server_push (server, "/gone", &missing);

    gt_config_t *config = gt_test_config ();
    config->cleanup_timeout_ms = 5000;
    gt_test_broker_t *broker = gt_test_broker_start (config);
    zsock_t *dealer = gt_test_dealer (broker);
    gt_lease_info_t pending = s_create_cleanup (broker, dealer, "upload-1", held_url);
    gt_lease_info_t dead = s_create_cleanup (broker, dealer, "upload-2", gone_url);
    s_expect_and_free (gt_test_release (broker, dealer, pending.id, "uploads", false), GT_OK);
    s_expect_and_free (gt_test_release (broker, dealer, dead.id, "uploads", false), GT_OK);
    gt_lease_info_t lease = s_await_status (broker, dealer, dead.id, GT_CLEANUP_DEAD);
    gt_lease_info_clear (&lease);
    assert (gt_http_server_wait_in_flight (server, 1, 4 * GT_TEST_TIMEOUT));
    //  Both rows are in the outbox (the reclaim's transaction wrote them)
    assert (s_query (config, "SELECT count (*) FROM gt_callbacks") == 2);
    assert (s_query (config, "SELECT count (*) FROM gt_callbacks WHERE status = 'DEAD'") == 1);

    //  Stop with the first request unanswered; the next broker sends it again
    zsock_destroy (&dealer);
    gt_test_broker_stop (&broker);
    broker = gt_test_broker_start (config);
    dealer = gt_test_dealer (broker);
    //  /gone once, /held once per broker
    assert (gt_http_server_wait (server, 3, 4 * GT_TEST_TIMEOUT));
    gt_http_server_gate (server, true);
    lease = s_await_status (broker, dealer, pending.id, GT_CLEANUP_DELIVERED);
    assert (lease.state == GT_STATE_RELEASED);
    gt_lease_info_clear (&lease);
    const gt_http_request_t *first = NULL, *second = NULL;
    for (size_t index = 0; index < gt_http_server_count (server); index++) {
        const gt_http_request_t *request = gt_http_server_request (server, index);
        if (request && streq (request->path, "/held")) {
            if (!first)
                first = request;
            else
                second = request;
        }
    }
    assert (first && second);
    assert (streq (gt_http_request_header (first, "Idempotency-Key"),
                   gt_http_request_header (second, "Idempotency-Key")));
    //  The dead letter came back as it was
    lease = s_lease (gt_test_get (broker, dealer, dead.id));
    assert (lease.cleanup_status == GT_CLEANUP_DEAD && lease.cleanup_attempts == 1);
    assert (lease.cleanup_error && strstr (lease.cleanup_error, "404"));
    gt_lease_info_clear (&lease);
    //  Delivered: its row left the outbox; the lease row says so
    int64_t deadline = zclock_mono () + GT_TEST_TIMEOUT;
    while (s_query (config, "SELECT count (*) FROM gt_callbacks") != 1 && zclock_mono () < deadline)
        zclock_sleep (5);           //  polling interval: the broker commits in the background
    assert (s_query (config, "SELECT count (*) FROM gt_callbacks") == 1);
    char sql [200];
    snprintf (sql, sizeof (sql), "SELECT count (*) FROM gt_leases WHERE id = '%s' AND cleanup_status = 'DELIVERED'",
              pending.id);
    assert (s_query (config, sql) == 1);

    gt_lease_info_clear (&pending);
    gt_lease_info_clear (&dead);
    zsock_destroy (&dealer);
    gt_test_broker_stop (&broker);
    gt_config_destroy (&config);
    free (held_url);
    free (gone_url);
    gt_http_server_destroy (&server);
}

//  --------------------------------------------------------------------------

typedef struct {
    const char *name;               //  area, as registered with ctest
    void (*run) (void);             //  the test
} s_area_t;

static const s_area_t s_areas [] = {
    { "restart", s_test_restart },
    { "catchup", s_test_catchup },
    { "outage", s_test_outage },
    { "outbox", s_test_outbox },
};

int
main (int argc, char *argv [])
{
    if (argc < 2) {
        fprintf (stderr, "usage: test_pgstore AREA|all\n");
        return 2;
    }
    setenv ("GT_TEST_STORE", "postgres", 1);
    bool found = false;
    for (size_t i = 0; i < sizeof (s_areas) / sizeof (s_areas [0]); i++)
        if (streq (argv [1], "all") || streq (argv [1], s_areas [i].name)) {
            printf ("test_pgstore %s\n", s_areas [i].name);
            s_areas [i].run ();
            found = true;
        }
    if (!found) {
        fprintf (stderr, "test_pgstore: no area '%s'\n", argv [1]);
        return 2;
    }
    return 0;
}

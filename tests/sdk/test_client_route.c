/*  test_client_route.c — the C SDK's client routing (docs/CLUSTER.md,
    "Client routing"): gt_client, gt_keepalive and gt_subscriber with
    several endpoints.

    Scripted brokers: each is an actor with a ROUTER socket (on an IPC
    path of this process) that answers
    requests through the case's answer function (in the actor's thread),
    which sees a state shared by the case's brokers; every request is
    logged.  Real brokers: the embedded broker (gt_broker_actor) on TCP
    loopback.

    Usage: test_client_route [CASE]   (no CASE: all of them)  */
#undef NDEBUG
#include <assert.h>
#include <pthread.h>
#include <stdatomic.h>
#include "garbagetruck.h"
#include "gt_test_router.h"
#include "gt_test_util.h"

#define S_ROUTERS   3

//  ---------------------------------------------------------------------
//  Scripted brokers

typedef struct _s_script_t s_script_t;

//  Lease ids and object ids of this process: the last 29 hex digits of
//  every lease id it makes, and the prefix of its CREATEs' object ids.  A
//  router ignores requests that name others (a client of a parallel test
//  that lost its broker may reconnect to a port a router here took).
static char s_suffix [GT_LEASE_ID_LEN - 3 + 1];
static char s_object_prefix [32];

//  The answer of router (0 ..) to request, or NULL: stay silent.
typedef gt_msg_t *(s_answer_fn) (s_script_t *script, int router, const gt_msg_t *request);

//  One logged request.
typedef struct {
    int router;                     //  which router got it
    gt_cmd_t cmd;                   //  its command
    uint64_t rid;                   //  its rid
    char key [GT_MAX_IDEMPOTENCY_KEY + 1];  //  CREATE's idempotency key, "" if none
    bool has_key;                   //  the key was present
    char lease_id [GT_LEASE_ID_LEN + 1];    //  RENEW, RELEASE, GET; first of a batch
    size_t batch;                   //  RENEW_BATCH: how many ids
    bool has_shard;                 //  REPLAY's shard present
    unsigned shard;                 //  REPLAY's shard
    uint64_t after_seq;             //  REPLAY's after_seq
} s_logged_t;

struct _s_script_t {
    s_answer_fn *answer;            //  the case's answers
    char endpoints [S_ROUTERS][64]; //  where each router is bound
    char events [64];               //  an events endpoint for MAP replies
    atomic_int phase;               //  the case's own state
    atomic_int counter;             //  the case's own counter
    pthread_mutex_t lock;           //  guards the log
    s_logged_t log [256];           //  requests received
    size_t logged;                  //  how many
    zactor_t *routers [S_ROUTERS];  //  the routers, or NULL
};

//  True if request may come from this process (see s_suffix).
static bool
s_ours (const gt_msg_t *request)
{
    const char *lease_id = request->lease_id? request->lease_id
                         : request->lease_id_count? request->lease_ids [0]: NULL;
    if (lease_id)
        return strlen (lease_id) == GT_LEASE_ID_LEN && streq (lease_id + 3, s_suffix);
    if (request->cmd == GT_CMD_CREATE)
        return request->object_id
            && strncmp (request->object_id, s_object_prefix, strlen (s_object_prefix)) == 0;
    return true;
}

//  Arguments of a router actor.
typedef struct {
    s_script_t *script;
    int index;
} s_router_args_t;

static void
s_router_actor (zsock_t *pipe, void *args)
{
    s_router_args_t *router_args = (s_router_args_t *) args;
    s_script_t *script = router_args->script;
    int index = router_args->index;
    zsock_t *router = zsock_new (ZMQ_ROUTER);
    assert (router);
    zsock_set_linger (router, 0);
    //  An IPC path of this process: a client of a parallel test can never
    //  reach it (a TCP port, once freed by s_script_kill, could be taken)
    static atomic_int routers = 0;
    snprintf (script->endpoints [index], sizeof (script->endpoints [index]),
              "ipc:///tmp/gt-route-%d-%d", (int) getpid (), atomic_fetch_add (&routers, 1));
    int rc = zsock_bind (router, "%s", script->endpoints [index]);
    assert (rc == 0);
    zsock_signal (pipe, 0);
    zpoller_t *poller = zpoller_new (pipe, router, NULL);
    while (true) {
        void *which = zpoller_wait (poller, -1);
        if (which != router)
            break;                      //  $TERM or interrupted
        zframe_t *routing;
        gt_msg_t *request = gt_test_router_recv (router, 0, &routing);
        if (!s_ours (request)) {
            gt_msg_destroy (&request);
            zframe_destroy (&routing);
            continue;
        }
        pthread_mutex_lock (&script->lock);
        if (script->logged < 256) {
            s_logged_t *entry = &script->log [script->logged++];
            memset (entry, 0, sizeof (*entry));
            entry->router = index;
            entry->cmd = request->cmd;
            entry->rid = request->rid;
            entry->has_key = request->idempotency_key != NULL;
            if (request->idempotency_key)
                snprintf (entry->key, sizeof (entry->key), "%s", request->idempotency_key);
            if (request->lease_id)
                snprintf (entry->lease_id, sizeof (entry->lease_id), "%s", request->lease_id);
            if (request->lease_id_count) {
                snprintf (entry->lease_id, sizeof (entry->lease_id), "%s", request->lease_ids [0]);
                entry->batch = request->lease_id_count;
            }
            entry->has_shard = request->has_shard;
            entry->shard = request->shard;
            entry->after_seq = request->after_seq;
        }
        pthread_mutex_unlock (&script->lock);
        gt_msg_t *reply = script->answer (script, index, request);
        if (reply) {
            gt_test_router_send (router, routing, reply);
            gt_msg_destroy (&reply);
        }
        gt_msg_destroy (&request);
        zframe_destroy (&routing);
    }
    zpoller_destroy (&poller);
    zsock_destroy (&router);
    unlink (script->endpoints [index] + strlen ("ipc://"));
    free (router_args);
}

//  Start count routers answering with answer.
static s_script_t *
s_script_new (s_answer_fn *answer, int count)
{
    s_script_t *script = (s_script_t *) zmalloc (sizeof (s_script_t));
    assert (script);
    script->answer = answer;
    pthread_mutex_init (&script->lock, NULL);
    snprintf (script->events, sizeof (script->events), "tcp://127.0.0.1:9");
    for (int index = 0; index < count; index++) {
        s_router_args_t *args = (s_router_args_t *) zmalloc (sizeof (s_router_args_t));
        args->script = script;
        args->index = index;
        script->routers [index] = zactor_new (s_router_actor, args);
        assert (script->routers [index]);
    }
    return script;
}

//  Stop one router: its socket closes (as a broker killed).
static void
s_script_kill (s_script_t *script, int index)
{
    zactor_destroy (&script->routers [index]);
}

static void
s_script_destroy (s_script_t **script_p)
{
    s_script_t *script = *script_p;
    for (int index = 0; index < S_ROUTERS; index++)
        zactor_destroy (&script->routers [index]);
    pthread_mutex_destroy (&script->lock);
    free (script);
    *script_p = NULL;
}

//  Requests logged so far of cmd (GT_CMD_NONE: any) at router (-1: any).
static size_t
s_count (s_script_t *script, int router, gt_cmd_t cmd)
{
    pthread_mutex_lock (&script->lock);
    size_t count = 0;
    for (size_t index = 0; index < script->logged; index++)
        if ((router < 0 || script->log [index].router == router)
        &&  (cmd == GT_CMD_NONE || script->log [index].cmd == cmd))
            count++;
    pthread_mutex_unlock (&script->lock);
    return count;
}

//  The nth (0 ..) logged request of cmd, copied into entry; false if none.
static bool
s_logged (s_script_t *script, gt_cmd_t cmd, size_t nth, s_logged_t *entry)
{
    pthread_mutex_lock (&script->lock);
    bool found = false;
    for (size_t index = 0; index < script->logged && !found; index++)
        if (script->log [index].cmd == cmd && nth-- == 0) {
            *entry = script->log [index];
            found = true;
        }
    pthread_mutex_unlock (&script->lock);
    return found;
}

//  Replies

//  A lease id of shard: its first two hex digits, fill, then this
//  process's suffix.
static void
s_lease_id (char id [GT_LEASE_ID_LEN + 1], unsigned shard, char fill)
{
    snprintf (id, GT_LEASE_ID_LEN + 1, "%02x%c%s", shard, fill, s_suffix);
}

static gt_msg_t *
s_reply (const gt_msg_t *request, gt_code_t code)
{
    gt_msg_t *reply = gt_msg_new (GT_MSG_REPLY);
    assert (reply);
    reply->rid = request->rid;
    reply->code = code;
    if (code != GT_OK)
        reply->message = strdup (gt_code_name (code));
    return reply;
}

//  OK with a lease (its id the request's, or made up for CREATE).
static gt_msg_t *
s_lease_reply (const gt_msg_t *request, gt_lease_state_t state)
{
    gt_msg_t *reply = s_reply (request, GT_OK);
    gt_lease_info_t *lease = (gt_lease_info_t *) calloc (1, sizeof (gt_lease_info_t));
    assert (lease);
    if (request->lease_id)
        snprintf (lease->id, sizeof (lease->id), "%s", request->lease_id);
    else
        s_lease_id (lease->id, request->object_id? gt_shard_of (request->object_id): 0, 'c');
    lease->object_id = strdup (request->object_id? request->object_id: "object");
    lease->service_id = strdup ("svc");
    lease->object_type = GT_TYPE_CUSTOM;
    lease->state = state;
    lease->fence = 1;
    lease->ttl_ms = 1000;
    lease->created_at = lease->renewed_at = 1700000000000;
    lease->expires_at = 1700000001000;
    reply->lease = lease;
    return reply;
}

//  A MAP reply: brokers 0 .. count-1 of the script, broker b owning the
//  shards whose owner [shard] is b (-1: nobody).
static gt_msg_t *
s_map_reply (s_script_t *script, const gt_msg_t *request, uint64_t version, bool cluster,
             int count, const int *owner)
{
    gt_msg_t *reply = s_reply (request, GT_OK);
    reply->has_map_version = reply->has_cluster = reply->brokers_present = true;
    reply->map_version = version;
    reply->cluster = cluster;
    reply->brokers = (gt_broker_info_t *) calloc ((size_t) count, sizeof (gt_broker_info_t));
    assert (reply->brokers);
    reply->broker_count = (size_t) count;
    for (int index = 0; index < count; index++) {
        gt_broker_info_t *broker = &reply->brokers [index];
        char name [32];
        snprintf (name, sizeof (name), "broker-%d", index);
        broker->broker_id = strdup (name);
        broker->endpoint = strdup (script->endpoints [index]);
        broker->events_endpoint = strdup (script->events);
        for (unsigned shard = 0; shard < GT_SHARD_COUNT; shard++)
            if (owner [shard] == index)
                gt_broker_info_add_shard (broker, shard);
    }
    return reply;
}

//  A MAP where router `all` owns every shard.
static gt_msg_t *
s_map_all (s_script_t *script, const gt_msg_t *request, int count, int all, uint64_t version)
{
    int owner [GT_SHARD_COUNT];
    for (unsigned shard = 0; shard < GT_SHARD_COUNT; shard++)
        owner [shard] = all;
    return s_map_reply (script, request, version, false, count, owner);
}

//  Shards of two routers: even ones router 0's, odd ones router 1's.
static void
s_alternate_owners (int *owner)
{
    for (unsigned shard = 0; shard < GT_SHARD_COUNT; shard++)
        owner [shard] = shard % 2;
}

//  MOVED for shard: router `to` owns it as of map version.
static gt_msg_t *
s_moved_reply (s_script_t *script, const gt_msg_t *request, unsigned shard, int to,
               uint64_t version)
{
    gt_msg_t *reply = s_reply (request, GT_ERR_MOVED);
    reply->has_shard = true;
    reply->shard = shard;
    reply->owner = strdup (script->endpoints [to]);
    reply->has_map_version = true;
    reply->map_version = version;
    return reply;
}

//  A LEASE_CREATED event of shard with seq (its lease in shard too).
static void
s_event_fill (gt_event_t *event, uint64_t seq, bool has_shard, unsigned shard)
{
    event->seq = seq;
    event->has_shard = has_shard;
    event->shard = shard;
    event->kind = GT_EVENT_LEASE_CREATED;
    event->at = 1700000000000 + seq;
    s_lease_id (event->lease.id, shard, 'a');
    event->lease.object_id = strdup ("o");
    event->lease.object_type = GT_TYPE_CUSTOM;
    event->lease.service_id = strdup ("svc");
    event->lease.ttl_ms = 1000;
}

//  An endpoint nobody listens on: an IPC path of this process that does
//  not exist (a free TCP port could be taken by a parallel test meanwhile).
static void
s_dead_endpoint (char *buf, size_t size)
{
    static int count = 0;
    snprintf (buf, size, "ipc:///tmp/gt-route-dead-%d-%d", (int) getpid (), ++count);
}

//  The endpoints of routers 0 .. count-1, comma-separated, into buf.
static void
s_endpoints_of (s_script_t *script, int count, char *buf, size_t size)
{
    *buf = 0;
    for (int index = 0; index < count; index++)
        snprintf (buf + strlen (buf), size - strlen (buf),
                  "%s%s", index? ",": "", script->endpoints [index]);
}

static gt_client_t *
s_client_of (s_script_t *script, int count)
{
    char endpoints [256];
    s_endpoints_of (script, count, endpoints, sizeof (endpoints));
    gt_client_t *client = gt_client_new (endpoints, "svc");
    assert (client);
    return client;
}

//  Wait up to 10 s until router has logged at least count requests of cmd
//  (asserts they came).
static void
s_wait_count (s_script_t *script, int router, gt_cmd_t cmd, size_t count)
{
    int64_t give_up = zclock_mono () + 10000;
    while (s_count (script, router, cmd) < count && zclock_mono () < give_up)
        zclock_sleep (20);
    assert (s_count (script, router, cmd) >= count);
}

//  Asserts keepalive has lost no lease.
static void
s_assert_none_lost (gt_keepalive_t *keepalive)
{
    char lost_id [GT_LEASE_ID_LEN + 1];
    gt_code_t lost_code;
    assert (gt_keepalive_recv_lost (keepalive, 0, lost_id, &lost_code) == -1);
}

//  ---------------------------------------------------------------------
//  MOVED: to the owner at once, at most 5 redirects

static gt_msg_t *
s_answer_moved (s_script_t *script, int router, const gt_msg_t *request)
{
    if (request->cmd == GT_CMD_MAP)
        return s_map_all (script, request, 1, 0, 1);   //  router 0 owns all
    int phase = atomic_load (&script->phase);
    if (router == 1 && phase == 0)
        return s_lease_reply (request, GT_STATE_ACTIVE);
    //  Phase 0: router 0 sends to router 1; phase 1: they send to each other
    return s_moved_reply (script, request, gt_lease_id_shard (request->lease_id),
                          router == 0? 1: 0, 2);
}

static void
s_test_moved (void)
{
    printf (" * MOVED to a second broker: ");
    s_script_t *script = s_script_new (s_answer_moved, 2);
    //  One endpoint with routing on: the second broker is learned
    gt_client_t *client = gt_client_new (script->endpoints [0], "svc");
    assert (!gt_client_routed (client));
    gt_client_set_routed (client, true);
    assert (gt_client_routed (client) && gt_client_endpoint_count (client) == 1);
    char lease_id [GT_LEASE_ID_LEN + 1];
    s_lease_id (lease_id, 7, 'a');
    gt_lease_info_t lease;
    memset (&lease, 0, sizeof (lease));
    int64_t start = zclock_mono ();
    assert (gt_client_get_lease (client, lease_id, &lease) == GT_OK);
    assert (zclock_mono () - start < 1000);                 //  at once, no backoff
    assert (streq (lease.id, lease_id));
    gt_lease_info_clear (&lease);
    assert (gt_client_endpoint_count (client) == 2);
    assert (streq (gt_client_endpoint (client), script->endpoints [1]));
    assert (s_count (script, 0, GT_CMD_MAP) == 1);
    assert (s_count (script, 0, GT_CMD_GET) == 1 && s_count (script, 1, GT_CMD_GET) == 1);
    const gt_msg_t *map = gt_client_cached_map (client);
    assert (map && map->map_version == 1 && map->broker_count == 1);

    //  The map is refreshed before the next call; redirects end after 5
    atomic_store (&script->phase, 1);
    assert (gt_client_get_lease (client, lease_id, NULL) == GT_ERR_MOVED);
    assert (gt_client_error_shard (client) == 7);
    assert (gt_client_error_map_version (client) == 2);
    assert (s_count (script, -1, GT_CMD_MAP) == 2);
    assert (s_count (script, -1, GT_CMD_GET) == 2 + 6);     //  the first, then 5 redirects
    gt_client_destroy (&client);

    //  With one endpoint and routing off (the default), MOVED is the answer
    client = gt_client_new (script->endpoints [0], "svc");
    assert (gt_client_get_lease (client, lease_id, NULL) == GT_ERR_MOVED);
    assert (streq (gt_client_error_owner (client), script->endpoints [1]));
    assert (gt_client_endpoint_count (client) == 1);
    assert (s_count (script, -1, GT_CMD_MAP) == 2);         //  no MAP
    gt_client_destroy (&client);
    s_script_destroy (&script);
    printf ("OK\n");
}

//  ---------------------------------------------------------------------
//  TRY_AGAIN and UNAVAILABLE: wait, refresh the map, send again

static gt_msg_t *
s_answer_try_again (s_script_t *script, int router, const gt_msg_t *request)
{
    (void) router;
    if (request->cmd == GT_CMD_MAP)
        return s_map_all (script, request, 2, 0, 1);
    //  Phase 0: two TRY_AGAIN with a 150 ms hint; phase 1: TRY_AGAIN and
    //  UNAVAILABLE without one (0); phase 2: TRY_AGAIN for ever
    int phase = atomic_load (&script->phase);
    int count = atomic_fetch_add (&script->counter, 1);
    if (phase == 2 || count < 2) {
        gt_msg_t *reply = s_reply (request, phase == 1 && count == 1? GT_ERR_UNAVAILABLE
                                                                  : GT_ERR_TRY_AGAIN);
        if (reply->code == GT_ERR_TRY_AGAIN) {
            reply->has_shard = true;
            reply->shard = gt_lease_id_shard (request->lease_id);
            //  A hint of 0 is no hint: the client's backoff
            reply->has_retry_ms = true;
            reply->retry_ms = phase == 0? 150: 0;
        }
        return reply;
    }
    return s_lease_reply (request, GT_STATE_ACTIVE);
}

static void
s_test_try_again (void)
{
    printf (" * TRY_AGAIN with backoff: ");
    s_script_t *script = s_script_new (s_answer_try_again, 2);
    gt_client_t *client = s_client_of (script, 2);
    assert (gt_client_routed (client));
    char lease_id [GT_LEASE_ID_LEN + 1];
    s_lease_id (lease_id, 200, 'b');
    //  The retry_ms hint: 150 ms, twice
    int64_t start = zclock_mono ();
    assert (gt_client_renew_lease (client, lease_id, 0, NULL) == GT_OK);
    int64_t elapsed = zclock_mono () - start;
    assert (elapsed >= 300);
    assert (s_count (script, 0, GT_CMD_RENEW) == 3 && s_count (script, 1, GT_CMD_RENEW) == 0);
    assert (s_count (script, -1, GT_CMD_MAP) == 3);         //  the first, then one per retry

    //  No hint: 100 ms, then 200 ms; UNAVAILABLE is retried the same way
    atomic_store (&script->phase, 1);
    atomic_store (&script->counter, 0);
    start = zclock_mono ();
    assert (gt_client_renew_lease (client, lease_id, 0, NULL) == GT_OK);
    elapsed = zclock_mono () - start;
    assert (elapsed >= 300 && elapsed < 2000);
    assert (s_count (script, 0, GT_CMD_RENEW) == 6);

    //  Out of time: the last TRY_AGAIN is the answer
    atomic_store (&script->phase, 2);
    gt_client_set_timeout (client, 700);
    start = zclock_mono ();
    assert (gt_client_renew_lease (client, lease_id, 0, NULL) == GT_ERR_TRY_AGAIN);
    elapsed = zclock_mono () - start;
    assert (elapsed >= 600 && elapsed < 1500);
    assert (gt_client_error_shard (client) == 200);
    assert (!gt_client_timed_out (client));
    gt_client_destroy (&client);
    s_script_destroy (&script);
    printf ("OK\n");
}

//  ---------------------------------------------------------------------
//  A first endpoint that never answers

static gt_msg_t *
s_answer_second (s_script_t *script, int router, const gt_msg_t *request)
{
    if (router == 0)
        return NULL;                    //  connected, silent
    if (request->cmd == GT_CMD_MAP)
        return s_map_all (script, request, 2, 1, 1);    //  router 1 owns all
    if (request->cmd == GT_CMD_HEALTH) {
        gt_msg_t *reply = s_reply (request, GT_OK);
        reply->status = strdup ("SERVING");
        reply->server_version = strdup (GT_VERSION_STRING);
        reply->store = strdup ("memory");
        reply->store_status = strdup ("OK");
        return reply;
    }
    if (request->cmd == GT_CMD_RETRY) {
        //  Not safe to repeat: the one attempt waits to the end
        zclock_sleep (1500);
        return s_lease_reply (request, GT_STATE_RELEASED);
    }
    return s_lease_reply (request, GT_STATE_ACTIVE);
}

static void
s_test_silent_first (void)
{
    printf (" * a first endpoint that never answers: ");
    s_script_t *script = s_script_new (s_answer_second, 2);
    gt_client_t *client = s_client_of (script, 2);
    //  Connected to the first endpoint before the first call: the MAP is
    //  asked there first
    gt_client_sock (client);
    zclock_sleep (200);
    char lease_id [GT_LEASE_ID_LEN + 1];
    s_lease_id (lease_id, 3, 'd');
    int64_t start = zclock_mono ();
    assert (gt_client_get_lease (client, lease_id, NULL) == GT_OK);
    int64_t elapsed = zclock_mono () - start;
    assert (elapsed >= 1000 && elapsed < 3000);             //  one MAP attempt of 1 s lost
    assert (s_count (script, 0, GT_CMD_MAP) == 1 && s_count (script, 1, GT_CMD_MAP) == 1);
    assert (s_count (script, 1, GT_CMD_GET) == 1 && s_count (script, 0, GT_CMD_GET) == 0);
    //  From then on, at once (HEALTH: the owner of shard 0)
    start = zclock_mono ();
    assert (gt_client_health (client, NULL) == GT_OK);
    assert (zclock_mono () - start < 500);
    //  A RETRY is not sent again: its attempt waits past 1 s
    assert (gt_client_retry_cleanup (client, lease_id, NULL) == GT_OK);
    assert (s_count (script, -1, GT_CMD_RETRY) == 1);
    gt_client_destroy (&client);

    //  A dead endpoint first: the MAP comes from the live one at once
    char dead [64], endpoints [160];
    s_dead_endpoint (dead, sizeof (dead));
    snprintf (endpoints, sizeof (endpoints), "%s, %s", dead, script->endpoints [1]);
    client = gt_client_new (endpoints, "svc");
    assert (client && gt_client_endpoint_count (client) == 2);
    start = zclock_mono ();
    assert (gt_client_get_lease (client, lease_id, NULL) == GT_OK);
    assert (zclock_mono () - start < 1000);
    gt_client_destroy (&client);

    //  Nobody reachable at all: no broker could be reached
    char dead2 [64];
    s_dead_endpoint (dead2, sizeof (dead2));
    snprintf (endpoints, sizeof (endpoints), "%s,%s", dead, dead2);
    client = gt_client_new (endpoints, "svc");
    gt_client_set_timeout (client, 1500);
    start = zclock_mono ();
    assert (gt_client_get_lease (client, lease_id, NULL) == GT_ERR_UNAVAILABLE);
    assert (gt_client_timed_out (client));
    assert (strstr (gt_client_error (client), "within 1500 ms"));
    elapsed = zclock_mono () - start;
    assert (elapsed >= 1400 && elapsed < 3000);
    gt_client_destroy (&client);
    s_script_destroy (&script);
    printf ("OK\n");
}

//  ---------------------------------------------------------------------
//  CREATE's idempotency key

static gt_msg_t *
s_answer_create (s_script_t *script, int router, const gt_msg_t *request)
{
    (void) router;
    if (request->cmd == GT_CMD_MAP)
        return s_map_all (script, request, 2, 0, 1);
    //  Phase 1: the first CREATE gets no reply
    if (atomic_load (&script->phase) == 1 && atomic_fetch_add (&script->counter, 1) == 0)
        return NULL;
    return s_lease_reply (request, GT_STATE_ACTIVE);
}

//  True if key is 32 lowercase hex characters.
static bool
s_hex32 (const char *key)
{
    return gt_lease_id_valid (key);
}

static void
s_test_idempotency (void)
{
    printf (" * CREATE's idempotency key: ");
    s_script_t *script = s_script_new (s_answer_create, 2);
    char object_id [64];
    snprintf (object_id, sizeof (object_id), "%supload-1", s_object_prefix);
    gt_create_args_t args = { .object_id = object_id };

    //  One endpoint: as given (none)
    gt_client_t *client = gt_client_new (script->endpoints [0], "svc");
    assert (gt_client_create_lease (client, &args, NULL) == GT_OK);
    s_logged_t entry;
    assert (s_logged (script, GT_CMD_CREATE, 0, &entry) && !entry.has_key);
    gt_client_destroy (&client);

    //  Two endpoints: a random key; the caller's is kept
    client = s_client_of (script, 2);
    assert (gt_client_create_lease (client, &args, NULL) == GT_OK);
    assert (s_logged (script, GT_CMD_CREATE, 1, &entry) && entry.has_key && s_hex32 (entry.key));
    char first [GT_MAX_IDEMPOTENCY_KEY + 1];
    snprintf (first, sizeof (first), "%s", entry.key);
    assert (gt_client_create_lease (client, &args, NULL) == GT_OK);
    assert (s_logged (script, GT_CMD_CREATE, 2, &entry) && s_hex32 (entry.key));
    assert (!streq (entry.key, first));                     //  one per CREATE
    args.idempotency_key = "mine";
    assert (gt_client_create_lease (client, &args, NULL) == GT_OK);
    assert (s_logged (script, GT_CMD_CREATE, 3, &entry) && streq (entry.key, "mine"));

    //  No reply to the first attempt: sent again after 1 s, same key
    args.idempotency_key = NULL;
    atomic_store (&script->phase, 1);
    int64_t start = zclock_mono ();
    gt_lease_info_t lease;
    memset (&lease, 0, sizeof (lease));
    assert (gt_client_create_lease (client, &args, &lease) == GT_OK);
    assert (zclock_mono () - start >= 1000);
    gt_lease_info_clear (&lease);
    s_logged_t second;
    assert (s_logged (script, GT_CMD_CREATE, 4, &entry) && s_logged (script, GT_CMD_CREATE, 5, &second));
    assert (s_hex32 (entry.key) && streq (entry.key, second.key) && entry.rid != second.rid);
    gt_client_destroy (&client);
    s_script_destroy (&script);
    printf ("OK\n");
}

//  ---------------------------------------------------------------------
//  RELEASE: NOT_FOUND / LEASE_ENDED on a repeat is done

static gt_msg_t *
s_answer_release (s_script_t *script, int router, const gt_msg_t *request)
{
    (void) router;
    if (request->cmd == GT_CMD_MAP)
        return s_map_all (script, request, 2, 0, 1);
    if (request->cmd == GT_CMD_GET)
        return s_lease_reply (request, GT_STATE_RELEASED);
    //  Phase 0: the first RELEASE gets no reply, the repeat LEASE_ENDED;
    //  phase 1: LEASE_ENDED at once
    if (atomic_load (&script->phase) == 0 && atomic_fetch_add (&script->counter, 1) == 0)
        return NULL;
    return s_reply (request, GT_ERR_LEASE_ENDED);
}

static void
s_test_release_repeat (void)
{
    printf (" * RELEASE answered LEASE_ENDED on a repeat: ");
    s_script_t *script = s_script_new (s_answer_release, 2);
    gt_client_t *client = s_client_of (script, 2);
    char lease_id [GT_LEASE_ID_LEN + 1];
    s_lease_id (lease_id, 99, 'e');
    gt_lease_info_t lease;
    memset (&lease, 0, sizeof (lease));
    assert (gt_client_release_lease (client, lease_id, false, &lease) == GT_OK);
    assert (streq (lease.id, lease_id) && lease.state == GT_STATE_RELEASED);
    gt_lease_info_clear (&lease);
    assert (s_count (script, 0, GT_CMD_RELEASE) == 2 && s_count (script, 0, GT_CMD_GET) == 1);

    //  On the first attempt it is the answer
    atomic_store (&script->phase, 1);
    assert (gt_client_release_lease (client, lease_id, false, &lease) == GT_ERR_LEASE_ENDED);
    assert (s_count (script, 0, GT_CMD_RELEASE) == 3 && s_count (script, 0, GT_CMD_GET) == 1);
    gt_client_destroy (&client);
    s_script_destroy (&script);
    printf ("OK\n");
}

//  ---------------------------------------------------------------------
//  RENEW_BATCH: one batch per owner; per-lease MOVED / TRY_AGAIN again

//  Owners: router 0 has shards 0-127, router 1 the rest; from phase 1
//  on, shard 0x10 moves to router 1.
static void
s_batch_owners (s_script_t *script, int *owner)
{
    for (unsigned shard = 0; shard < GT_SHARD_COUNT; shard++)
        owner [shard] = shard < 128? 0: 1;
    if (atomic_load (&script->phase) >= 1)
        owner [0x10] = 1;
}

static gt_msg_t *
s_answer_batch (s_script_t *script, int router, const gt_msg_t *request)
{
    int owner [GT_SHARD_COUNT];
    s_batch_owners (script, owner);
    if (request->cmd == GT_CMD_MAP)
        return s_map_reply (script, request, 1 + (uint64_t) atomic_load (&script->phase),
                            true, 2, owner);
    gt_msg_t *reply = gt_test_router_batch_reply (request);
    for (size_t index = 0; index < request->lease_id_count; index++) {
        gt_renew_result_t *result = &reply->results [index];
        unsigned shard = gt_lease_id_shard (request->lease_ids [index]);
        if (owner [shard] != router) {
            //  Shard 0x10 after the move: MOVED; the first time, the map
            //  changes with it
            result->code = GT_ERR_MOVED;
            result->message = strdup ("shard moved");
        }
        else
        if (shard == 0x20 && atomic_fetch_add (&script->counter, 1) == 0) {
            result->code = GT_ERR_TRY_AGAIN;
            result->message = strdup ("loading");
        }
        else
        if (shard == 0x30) {
            result->code = GT_ERR_LEASE_ENDED;
            result->message = strdup ("ended");
        }
        else
            result->expires_at = 1700000000000 + shard;
    }
    //  The first batch that names shard 0x10 on router 0 moves it
    for (size_t index = 0; index < request->lease_id_count; index++)
        if (router == 0 && gt_lease_id_shard (request->lease_ids [index]) == 0x10
        &&  atomic_load (&script->phase) == 0) {
            reply->results [index].code = GT_ERR_MOVED;
            free (reply->results [index].message);
            reply->results [index].message = strdup ("shard moved");
            atomic_store (&script->phase, 1);
        }
    return reply;
}

static void
s_test_renew_batch (void)
{
    printf (" * RENEW_BATCH split by owner: ");
    s_script_t *script = s_script_new (s_answer_batch, 2);
    gt_client_t *client = s_client_of (script, 2);
    unsigned shards [] = { 0x01, 0xf0, 0x10, 0x81, 0x20, 0x30, 0x02 };
    size_t count = sizeof (shards) / sizeof (shards [0]);
    char ids [8][GT_LEASE_ID_LEN + 1];
    const char *id_list [8];
    for (size_t index = 0; index < count; index++) {
        s_lease_id (ids [index], shards [index], 'f');
        id_list [index] = ids [index];
    }
    gt_msg_t *reply;
    int64_t start = zclock_mono ();
    assert (gt_client_renew_leases (client, id_list, count, 5000, &reply) == GT_OK);
    assert (zclock_mono () - start < 2000);
    assert (reply->result_count == count);
    for (size_t index = 0; index < count; index++) {
        gt_renew_result_t *result = &reply->results [index];
        assert (streq (result->lease_id, ids [index]));
        if (shards [index] == 0x30)
            assert (result->code == GT_ERR_LEASE_ENDED && streq (result->message, "ended"));
        else {
            assert (result->code == GT_OK);
            assert (result->expires_at == 1700000000000 + (uint64_t) shards [index]);
        }
    }
    gt_msg_destroy (&reply);
    //  First round: router 0 got 5 (0x01 0x10 0x20 0x30 0x02), router 1
    //  2 (0xf0 0x81); then 0x10 went to router 1 and 0x20 to router 0 again
    s_logged_t entry;
    assert (s_logged (script, GT_CMD_RENEW_BATCH, 0, &entry));
    assert (entry.router == 0 && entry.batch == 5);
    assert (s_logged (script, GT_CMD_RENEW_BATCH, 1, &entry));
    assert (entry.router == 1 && entry.batch == 2);
    assert (s_count (script, -1, GT_CMD_RENEW_BATCH) == 4);
    assert (s_count (script, 0, GT_CMD_RENEW_BATCH) == 2 && s_count (script, 1, GT_CMD_RENEW_BATCH) == 2);
    assert (s_count (script, -1, GT_CMD_MAP) == 2);
    gt_client_destroy (&client);
    s_script_destroy (&script);
    printf ("OK\n");
}

//  ---------------------------------------------------------------------
//  LIST in cluster mode: every broker in turn, the cursor names the broker

static gt_msg_t *
s_answer_list (s_script_t *script, int router, const gt_msg_t *request)
{
    if (request->cmd == GT_CMD_MAP) {
        int owner [GT_SHARD_COUNT];
        s_alternate_owners (owner);
        return s_map_reply (script, request, 5, true, 2, owner);
    }
    //  Router 0 has 3 leases, router 1 has 2; pages of at most 2 with a
    //  cursor "n" (the next index)
    size_t total = router == 0? 3: 2;
    size_t from = request->cursor? (size_t) atoi (request->cursor): 0;
    size_t limit = request->has_limit? request->limit: 100;
    gt_msg_t *reply = s_reply (request, GT_OK);
    reply->leases_present = true;
    reply->leases = (gt_lease_info_t *) calloc (4, sizeof (gt_lease_info_t));
    for (size_t index = from; index < total && reply->lease_count < limit && reply->lease_count < 2; index++) {
        gt_lease_info_t *lease = &reply->leases [reply->lease_count++];
        s_lease_id (lease->id, (unsigned) router, (char) ('0' + index));
        lease->object_id = strdup ("o");
        lease->service_id = strdup ("svc");
        lease->ttl_ms = 1000;
    }
    if (from + reply->lease_count < total)
        reply->cursor = zsys_sprintf ("%zu", from + reply->lease_count);
    return reply;
}

static void
s_test_list_cluster (void)
{
    printf (" * LIST of a cluster: ");
    s_script_t *script = s_script_new (s_answer_list, 2);
    gt_client_t *client = s_client_of (script, 2);
    //  Pages of 3: router 0's first page (2), then ... every lease once
    size_t seen = 0;
    char *cursor = NULL;
    int pages = 0;
    do {
        gt_list_args_t args = { .limit = 3, .cursor = cursor };
        gt_msg_t *reply;
        assert (gt_client_list_leases (client, &args, &reply) == GT_OK);
        seen += reply->lease_count;
        free (cursor);
        cursor = reply->cursor? strdup (reply->cursor): NULL;
        gt_msg_destroy (&reply);
        pages++;
    } while (cursor && pages < 10);
    assert (seen == 5);
    assert (s_count (script, 0, GT_CMD_LIST) >= 2 && s_count (script, 1, GT_CMD_LIST) >= 1);
    //  One page of 100: all five
    gt_msg_t *reply;
    assert (gt_client_list_leases (client, NULL, &reply) == GT_OK);
    assert (reply->lease_count == 2 && reply->cursor);      //  router 0's page had a cursor
    gt_msg_destroy (&reply);
    gt_list_args_t bad = { .cursor = "not-ours" };
    assert (gt_client_list_leases (client, &bad, NULL) == GT_ERR_INVALID_ARGUMENT);
    gt_client_destroy (&client);
    s_script_destroy (&script);
    printf ("OK\n");
}

//  ---------------------------------------------------------------------
//  Keepalive across a failover: the first broker dies, the second owns

static gt_msg_t *
s_answer_failover (s_script_t *script, int router, const gt_msg_t *request)
{
    //  Before the failover router 0 owns everything; after it router 1
    int owner = atomic_load (&script->phase) == 0? 0: 1;
    if (request->cmd == GT_CMD_MAP)
        return s_map_all (script, request, 2, owner, 1 + (uint64_t) owner);
    if (router != owner)
        return NULL;                    //  a standby serves nothing
    if (request->cmd == GT_CMD_RENEW_BATCH) {
        gt_msg_t *reply = gt_test_router_batch_reply (request);
        for (size_t index = 0; index < request->lease_id_count; index++)
            reply->results [index].expires_at = 1700000000000;
        return reply;
    }
    return s_lease_reply (request, GT_STATE_ACTIVE);
}

static void
s_test_keepalive_failover (void)
{
    printf (" * keepalive across a failover: ");
    s_script_t *script = s_script_new (s_answer_failover, 2);
    char endpoints [160];
    s_endpoints_of (script, 2, endpoints, sizeof (endpoints));
    gt_keepalive_t *keepalive = gt_keepalive_new (endpoints, "svc");
    assert (keepalive);
    char lease_id [GT_LEASE_ID_LEN + 1];
    s_lease_id (lease_id, 0x42, 'a');
    assert (gt_keepalive_add (keepalive, lease_id, 3000) == 0);
    //  Renewed by router 0
    s_wait_count (script, 0, GT_CMD_RENEW_BATCH, 2);
    //  Router 0 dies (its socket closes) and router 1 takes over
    atomic_store (&script->phase, 1);
    s_script_kill (script, 0);
    s_wait_count (script, 1, GT_CMD_RENEW_BATCH, s_count (script, 1, GT_CMD_RENEW_BATCH) + 3);
    s_assert_none_lost (keepalive);
    gt_keepalive_destroy (&keepalive);

    //  Nobody at all: lost at its deadline, as UNAVAILABLE
    s_script_kill (script, 1);
    keepalive = gt_keepalive_new (endpoints, "svc");
    int64_t start = zclock_mono ();
    assert (gt_keepalive_add (keepalive, lease_id, 600) == 0);
    char lost_id [GT_LEASE_ID_LEN + 1];
    gt_code_t lost_code;
    assert (gt_keepalive_recv_lost (keepalive, 10000, lost_id, &lost_code) == 0);
    assert (zclock_mono () - start >= 600);
    assert (streq (lost_id, lease_id) && lost_code == GT_ERR_UNAVAILABLE);
    gt_keepalive_destroy (&keepalive);
    s_script_destroy (&script);
    printf ("OK\n");
}

//  A one-endpoint keepalive that meets a MOVED in its results goes routed.
static gt_msg_t *
s_answer_keepalive_moved (s_script_t *script, int router, const gt_msg_t *request)
{
    if (request->cmd == GT_CMD_MAP)
        return s_map_all (script, request, 2, 1, 2);
    if (request->cmd != GT_CMD_RENEW_BATCH)
        return NULL;
    gt_msg_t *reply = gt_test_router_batch_reply (request);
    for (size_t index = 0; index < request->lease_id_count; index++) {
        gt_renew_result_t *result = &reply->results [index];
        if (router == 0) {
            result->code = GT_ERR_MOVED;
            result->message = strdup ("moved");
        }
        else
            result->expires_at = 1700000000000;
    }
    return reply;
}

static void
s_test_keepalive_moved (void)
{
    printf (" * keepalive with one endpoint follows a MOVED: ");
    s_script_t *script = s_script_new (s_answer_keepalive_moved, 2);
    gt_keepalive_t *keepalive = gt_keepalive_new (script->endpoints [0], "svc");
    char lease_id [GT_LEASE_ID_LEN + 1];
    s_lease_id (lease_id, 0x90, 'b');
    assert (gt_keepalive_add (keepalive, lease_id, 1500) == 0);
    s_wait_count (script, 1, GT_CMD_RENEW_BATCH, 2);
    assert (s_count (script, 0, GT_CMD_MAP) >= 1);
    s_assert_none_lost (keepalive);
    gt_keepalive_destroy (&keepalive);
    s_script_destroy (&script);
    printf ("OK\n");
}

//  ---------------------------------------------------------------------
//  Subscriber of a cluster: events endpoints from the map, one sequence
//  per shard, REPLAY of a shard from its owner

static void
s_publish (zsock_t *pub, uint64_t seq, bool has_shard, unsigned shard)
{
    gt_msg_t *msg = gt_msg_new (GT_MSG_EVENT);
    s_event_fill (&msg->event, seq, has_shard, shard);
    gt_test_publish (pub, msg);
    gt_msg_destroy (&msg);
}

static gt_msg_t *
s_answer_events (s_script_t *script, int router, const gt_msg_t *request)
{
    int owner [GT_SHARD_COUNT];
    s_alternate_owners (owner);
    if (request->cmd == GT_CMD_MAP)
        return s_map_reply (script, request, 9, true, 2, owner);
    if (request->cmd != GT_CMD_REPLAY)
        return NULL;
    if (!request->has_shard || owner [request->shard] != router)
        return s_moved_reply (script, request, request->has_shard? request->shard: 0,
                              request->has_shard? owner [request->shard]: 0, 9);
    //  The shard's history is seq 1 .. 3
    gt_msg_t *reply = s_reply (request, GT_OK);
    reply->events_present = true;
    reply->has_last_seq = true;
    reply->last_seq = 3;
    reply->events = (gt_event_t *) calloc (3, sizeof (gt_event_t));
    for (uint64_t seq = request->after_seq + 1; seq <= 3; seq++)
        s_event_fill (&reply->events [reply->event_count++], seq, true, request->shard);
    return reply;
}

//  The next event within 5 s (asserts one comes).
static gt_msg_t *
s_next_event (gt_subscriber_t *subscriber)
{
    gt_msg_t *event = gt_subscriber_recv (subscriber, 5000);
    if (!event)
        zsys_error ("no event: %s %s", gt_code_name (gt_subscriber_code (subscriber)),
                    gt_subscriber_error (subscriber));
    assert (event && event->kind == GT_MSG_EVENT);
    return event;
}

static void
s_test_subscriber_shards (void)
{
    printf (" * subscriber of a cluster: ");
    zsock_t *pub = zsock_new (ZMQ_PUB);
    zsock_set_linger (pub, 0);
    int port = zsock_bind (pub, "tcp://127.0.0.1:*");
    assert (port > 0);
    s_script_t *script = s_script_new (s_answer_events, 2);
    snprintf (script->events, sizeof (script->events), "tcp://127.0.0.1:%d", port);
    char endpoints [160];
    s_endpoints_of (script, 2, endpoints, sizeof (endpoints));
    //  No events endpoint: the map's
    gt_subscriber_t *subscriber = gt_subscriber_new (NULL, endpoints);
    assert (subscriber);
    assert (gt_subscriber_new (NULL, script->endpoints [0]) == NULL);
    //  The first live event of shard 5 sets its baseline (republish until
    //  the subscription is through)
    gt_msg_t *event = NULL;
    int64_t give_up = zclock_mono () + 10000;
    while (!event && zclock_mono () < give_up) {
        s_publish (pub, 1, true, 5);
        event = gt_subscriber_recv (subscriber, 50);
    }
    assert (event && event->event.has_shard && event->event.shard == 5 && event->event.seq == 1);
    gt_msg_destroy (&event);
    assert (gt_subscriber_events_endpoint_count (subscriber) == 1);
    while ((event = gt_subscriber_recv (subscriber, 100)))
        gt_msg_destroy (&event);        //  republished copies: none (duplicates)
    assert (gt_subscriber_last_seq_shard (subscriber, 5) == 1);

    //  Shard 6 has its own sequence; a duplicate of shard 5 is dropped;
    //  a jump in shard 5 is filled from its owner (router 1)
    s_publish (pub, 1, true, 6);
    s_publish (pub, 1, true, 5);
    s_publish (pub, 3, true, 5);
    event = s_next_event (subscriber);
    assert (event->event.shard == 6 && event->event.seq == 1);
    gt_msg_destroy (&event);
    event = s_next_event (subscriber);
    assert (event->event.shard == 5 && event->event.seq == 2);
    gt_msg_destroy (&event);
    event = s_next_event (subscriber);
    assert (event->event.shard == 5 && event->event.seq == 3);
    gt_msg_destroy (&event);
    assert (gt_subscriber_last_seq_shard (subscriber, 5) == 3);
    assert (gt_subscriber_last_seq_shard (subscriber, 6) == 1);
    assert (gt_subscriber_replayed (subscriber) == 1);
    s_logged_t entry;
    assert (s_logged (script, GT_CMD_REPLAY, 0, &entry));
    assert (entry.router == 1 && entry.has_shard && entry.shard == 5 && entry.after_seq == 1);
    assert (gt_subscriber_recv (subscriber, 100) == NULL);
    assert (gt_subscriber_code (subscriber) == GT_OK);
    gt_subscriber_destroy (&subscriber);
    s_script_destroy (&script);
    zsock_destroy (&pub);
    printf ("OK\n");
}

//  ---------------------------------------------------------------------
//  Real brokers

//  One embedded broker (the integration tests' gt_test_broker_start) on
//  the memory store, with short leases allowed.
static gt_test_broker_t *
s_broker_start (void)
{
    gt_config_t *config = gt_config_new ();
    assert (config);
    config->min_lease_ms = 50;
    config->default_lease_ms = 60000;
    gt_test_broker_t *broker = gt_test_broker_start (config);
    gt_config_destroy (&config);
    return broker;
}

static void
s_test_broker (void)
{
    printf (" * a dead endpoint and a real broker: ");
    gt_test_broker_t *broker = s_broker_start ();
    char dead [64], endpoints [160];
    s_dead_endpoint (dead, sizeof (dead));
    snprintf (endpoints, sizeof (endpoints), "%s,%s", dead, broker->requests);

    //  The broker's MAP: itself, every shard, single mode
    gt_client_t *client = gt_client_new (endpoints, "route-service");
    assert (client && gt_client_routed (client));
    gt_msg_t *map;
    assert (gt_client_shard_map (client, &map) == GT_OK);
    assert (!map->cluster && map->broker_count == 1);
    assert (streq (map->brokers [0].endpoint, broker->requests));
    assert (streq (map->brokers [0].events_endpoint, broker->events));
    assert (gt_broker_info_shard_count (&map->brokers [0]) == GT_SHARD_COUNT);
    gt_msg_destroy (&map);
    assert (gt_client_cached_map (client) != NULL);

    //  Every call works through it
    gt_lease_info_t lease;
    memset (&lease, 0, sizeof (lease));
    gt_create_args_t args = { .object_id = "routed-object", .ttl_ms = 60000 };
    assert (gt_client_create_lease (client, &args, &lease) == GT_OK);
    char lease_id [GT_LEASE_ID_LEN + 1];
    memcpy (lease_id, lease.id, sizeof (lease_id));
    gt_lease_info_clear (&lease);
    //  The auto key makes CREATE idempotent only per call: a second CREATE
    //  is another lease
    assert (gt_client_create_lease (client, &args, &lease) == GT_OK);
    assert (!streq (lease.id, lease_id));
    char second_id [GT_LEASE_ID_LEN + 1];
    memcpy (second_id, lease.id, sizeof (second_id));
    gt_lease_info_clear (&lease);
    assert (gt_client_renew_lease (client, lease_id, 30000, &lease) == GT_OK);
    assert (lease.renewals == 1);
    gt_lease_info_clear (&lease);
    const char *ids [] = { lease_id, second_id };
    gt_msg_t *reply;
    assert (gt_client_renew_leases (client, ids, 2, 0, &reply) == GT_OK);
    assert (reply->result_count == 2);
    assert (reply->results [0].code == GT_OK && reply->results [1].code == GT_OK);
    gt_msg_destroy (&reply);
    gt_list_args_t list = { .service_id = "route-service" };
    assert (gt_client_list_leases (client, &list, &reply) == GT_OK);
    assert (reply->lease_count == 2);
    gt_msg_destroy (&reply);
    assert (gt_client_health (client, NULL) == GT_OK);
    assert (gt_client_stats (client, NULL) == GT_OK);
    assert (gt_client_replay (client, 0, 10, &reply) == GT_OK);
    assert (reply->event_count >= 2);
    gt_msg_destroy (&reply);
    assert (gt_client_release_lease (client, second_id, false, NULL) == GT_OK);
    //  A real LEASE_ENDED on the first attempt is the answer
    assert (gt_client_release_lease (client, second_id, false, NULL) == GT_ERR_LEASE_ENDED);
    assert (gt_client_get_lease (client, "0123456789abcdef0123456789abcdef", NULL) == GT_ERR_NOT_FOUND);

    //  A keepalive through the same endpoints holds a short lease
    gt_keepalive_t *keepalive = gt_keepalive_new (endpoints, "route-service");
    args.object_id = "kept";
    args.ttl_ms = 300;
    assert (gt_client_create_lease (client, &args, &lease) == GT_OK);
    char kept_id [GT_LEASE_ID_LEN + 1];
    memcpy (kept_id, lease.id, sizeof (kept_id));
    gt_lease_info_clear (&lease);
    assert (gt_keepalive_add (keepalive, kept_id, 300) == 0);

    //  A subscriber with the map's events endpoint sees the lease renewed
    gt_subscriber_t *subscriber = gt_subscriber_new (NULL, endpoints);
    assert (subscriber);
    gt_subscriber_subscribe (subscriber, "route-service\x1f" "renewed.");
    int renewals = 0;
    int64_t give_up = zclock_mono () + 10000;
    while (renewals < 3 && zclock_mono () < give_up) {
        gt_msg_t *event = gt_subscriber_recv (subscriber, 500);
        if (event) {
            assert (streq (event->event.lease.id, kept_id));
            renewals++;
            gt_msg_destroy (&event);
        }
    }
    assert (renewals == 3);
    assert (gt_subscriber_events_endpoint_count (subscriber) == 1);
    assert (gt_client_get_lease (client, kept_id, &lease) == GT_OK);
    assert (lease.state == GT_STATE_ACTIVE);
    gt_lease_info_clear (&lease);
    s_assert_none_lost (keepalive);
    gt_subscriber_destroy (&subscriber);
    gt_keepalive_destroy (&keepalive);

    //  Events, and a REPLAY of the history, through the routed subscriber
    subscriber = gt_subscriber_new (broker->events, endpoints);
    gt_subscriber_set_from_seq (subscriber, 1);
    gt_msg_t *event = gt_subscriber_recv (subscriber, 5000);
    assert (event && event->event.seq == 1);
    gt_msg_destroy (&event);
    gt_subscriber_destroy (&subscriber);
    gt_client_destroy (&client);
    gt_test_broker_stop (&broker);
    printf ("OK\n");
}

//  ---------------------------------------------------------------------

typedef struct {
    const char *name;
    void (*run) (void);
} s_case_t;

static const s_case_t s_cases [] = {
    { "moved", s_test_moved },
    { "try_again", s_test_try_again },
    { "silent_first", s_test_silent_first },
    { "idempotency", s_test_idempotency },
    { "release_repeat", s_test_release_repeat },
    { "renew_batch", s_test_renew_batch },
    { "list_cluster", s_test_list_cluster },
    { "keepalive_failover", s_test_keepalive_failover },
    { "keepalive_moved", s_test_keepalive_moved },
    { "subscriber_shards", s_test_subscriber_shards },
    { "broker", s_test_broker },
};

int
main (int argc, char *argv [])
{
    zsys_init ();
    srandom ((unsigned) (getpid () ^ zclock_usecs ()));
    for (size_t index = 0; index < sizeof (s_suffix) - 1; index++)
        s_suffix [index] = "0123456789abcdef" [random () % 16];
    snprintf (s_object_prefix, sizeof (s_object_prefix), "p%d-", (int) getpid ());
    printf ("Running the C SDK's routing tests...\n");
    bool found = false;
    for (size_t index = 0; index < sizeof (s_cases) / sizeof (s_cases [0]); index++)
        if (argc < 2 || streq (argv [1], s_cases [index].name)) {
            s_cases [index].run ();
            found = true;
        }
    if (!found) {
        fprintf (stderr, "no case '%s'\n", argv [1]);
        return 2;
    }
    return 0;
}

/*  gt_test_util.c — helpers for the integration tests.  */
#include "gt_test_util.h"
#include "gt_test_store.h"
#include "gt_pgtestdb.h"

#define S_PROBE_SERVICE "gt-test-probe"

//  Test databases made by this process (GT_TEST_STORE=postgres), dropped at exit
static zlistx_t *s_databases = NULL;

static void
s_drop_databases (void)
{
    gt_pgtestdb_t *testdb;
    while ((testdb = (gt_pgtestdb_t *) zlistx_detach (s_databases, NULL)))
        gt_pgtestdb_destroy (&testdb);
    zlistx_destroy (&s_databases);
}

//  A fresh database for a config of its own; exit 77 (skipped) without DATABASE_URL.
static const char *
s_fresh_database (void)
{
    if (!gt_pgtestdb_available ()) {
        printf ("skipped: GT_TEST_STORE=postgres needs DATABASE_URL\n");
        exit (GT_TEST_SKIPPED);
    }
    if (!s_databases) {
        s_databases = zlistx_new ();
        assert (s_databases);
        atexit (s_drop_databases);
    }
    gt_pgtestdb_t *testdb = gt_pgtestdb_new ();
    assert (testdb);
    zlistx_add_end (s_databases, testdb);
    return gt_pgtestdb_conninfo (testdb);
}

gt_config_t *
gt_test_config (void)
{
    gt_config_t *config = gt_config_new ();
    config->min_lease_ms = 50;
    config->default_lease_ms = 30000;
    config->max_lease_ms = 60000;
    config->lease_retention_ms = 10000;
    const char *store = getenv ("GT_TEST_STORE");
    gt_config_set_storage (config, store && *store ? store : "memory");
    if (streq (config->storage, "postgres"))
        gt_config_set_database_url (config, s_fresh_database ());
    return config;
}

char *
gt_test_broker_command (gt_test_broker_t *self, const char *command, const char *arg1, const char *arg2)
{
    zstr_sendx (self->actor, command, arg1, arg2, NULL);
    return zstr_recv (self->actor);
}

//  Bind the new broker's sockets.
static gt_test_broker_t *s_broker_bind (gt_test_broker_t *self);

gt_test_broker_t *
gt_test_broker_start (const gt_config_t *config)
{
    //  "test" names no store the broker knows: the test makes it
    if (config->storage && streq (config->storage, "test"))
        return gt_test_broker_start_on_store (config, gt_test_store_new ());
    gt_test_broker_t *self = (gt_test_broker_t *) zmalloc (sizeof (gt_test_broker_t));
    assert (self);
    self->actor = zactor_new (gt_broker_actor, (void *) config);
    assert (self->actor);
    return s_broker_bind (self);
}

gt_test_broker_t *
gt_test_broker_start_on_store (const gt_config_t *config, gt_store_t *store)
{
    gt_test_broker_t *self = (gt_test_broker_t *) zmalloc (sizeof (gt_test_broker_t));
    assert (self);
    gt_broker_args_t args = { config, store };
    self->actor = zactor_new (gt_broker_actor_on_store, &args);
    assert (self->actor);
    return s_broker_bind (self);
}

gt_store_t *
gt_test_broker_detach (gt_test_broker_t *self)
{
    zstr_send (self->actor, "DETACH");
    void *store = NULL;
    int rc = zsock_recv (self->actor, "p", &store);
    assert (rc == 0);
    return (gt_store_t *) store;
}

static gt_test_broker_t *
s_broker_bind (gt_test_broker_t *self)
{
    if (getenv ("GT_VERBOSE")) {
        char *ok = gt_test_broker_command (self, "VERBOSE", NULL, NULL);
        zstr_free (&ok);
    }
    char *port = gt_test_broker_command (self, "BIND", "tcp://127.0.0.1:*", NULL);
    assert (port && atoi (port) > 0);
    snprintf (self->requests, sizeof (self->requests), "tcp://127.0.0.1:%s", port);
    zstr_free (&port);
    port = gt_test_broker_command (self, "EVENTS", "tcp://127.0.0.1:*", NULL);
    assert (port && atoi (port) > 0);
    snprintf (self->events, sizeof (self->events), "tcp://127.0.0.1:%s", port);
    zstr_free (&port);
    self->next_rid = 1;
    return self;
}

void
gt_test_broker_stop (gt_test_broker_t **self_p)
{
    gt_test_broker_t *self = *self_p;
    if (self) {
        zactor_destroy (&self->actor);
        free (self);
        *self_p = NULL;
    }
}

zsock_t *
gt_test_dealer (gt_test_broker_t *self)
{
    zsock_t *dealer = zsock_new (ZMQ_DEALER);
    assert (dealer);
    zsock_set_linger (dealer, 0);
    zsock_set_rcvhwm (dealer, 0);
    zsock_set_sndhwm (dealer, 0);
    int rc = zsock_connect (dealer, "%s", self->requests);
    assert (rc == 0);
    return dealer;
}

gt_msg_t
gt_test_request (gt_cmd_t cmd)
{
    gt_msg_t request;
    memset (&request, 0, sizeof (request));
    request.kind = GT_MSG_REQUEST;
    request.version = GT_PROTOCOL_VERSION;
    request.cmd = cmd;
    return request;
}

zmsg_t *
gt_test_recv (zsock_t *sock, int timeout_ms)
{
    zpoller_t *poller = zpoller_new (sock, NULL);
    int64_t deadline = zclock_mono () + timeout_ms;
    zmsg_t *msg = NULL;
    while (!msg) {
        int64_t left = deadline - zclock_mono ();
        if (left < 0)
            break;
        if (zpoller_wait (poller, (int) left) == sock)
            msg = zmsg_recv (sock);
        else
        if (zpoller_terminated (poller))
            break;
    }
    zpoller_destroy (&poller);
    return msg;
}

gt_msg_t *
gt_test_decode_reply (zmsg_t *msg)
{
    assert (msg && zmsg_size (msg) > 0);
    zframe_t *body = zmsg_last (msg);
    gt_msg_t *reply = NULL;
    char err [256];
    gt_code_t code = gt_msg_decode (zframe_data (body), zframe_size (body), GT_MSG_REPLY,
                                    &reply, NULL, err, sizeof (err));
    if (code != GT_OK)
        fprintf (stderr, "reply does not decode: %s\n", err);
    assert (code == GT_OK);
    return reply;
}

gt_msg_t *
gt_test_call (gt_test_broker_t *self, zsock_t *dealer, gt_msg_t *request)
{
    if (request->rid == 0)
        request->rid = self->next_rid++;
    void *data;
    size_t size;
    int rc = gt_msg_encode_alloc (request, &data, &size);
    assert (rc == 0);
    zframe_t *frame = zframe_new (data, size);
    free (data);
    rc = zframe_send (&frame, dealer, 0);
    assert (rc == 0);
    int64_t deadline = zclock_mono () + GT_TEST_TIMEOUT;
    while (zclock_mono () < deadline) {
        zmsg_t *msg = gt_test_recv (dealer, (int) (deadline - zclock_mono ()));
        if (!msg)
            break;
        gt_msg_t *reply = gt_test_decode_reply (msg);
        zmsg_destroy (&msg);
        if (reply->rid == request->rid)
            return reply;
        gt_msg_destroy (&reply);
    }
    return NULL;
}

gt_msg_t *
gt_test_create (gt_test_broker_t *self, zsock_t *dealer, const char *object_id,
                const char *service_id, uint64_t ttl_ms)
{
    gt_msg_t request = gt_test_request (GT_CMD_CREATE);
    request.object_id = (char *) object_id;
    request.service_id = (char *) service_id;
    request.has_ttl = ttl_ms > 0;
    request.ttl_ms = ttl_ms;
    gt_msg_t *reply = gt_test_call (self, dealer, &request);
    assert (reply);
    return reply;
}

gt_msg_t *
gt_test_renew (gt_test_broker_t *self, zsock_t *dealer, const char *lease_id,
               const char *service_id, uint64_t ttl_ms)
{
    gt_msg_t request = gt_test_request (GT_CMD_RENEW);
    request.lease_id = (char *) lease_id;
    request.service_id = (char *) service_id;
    request.has_ttl = ttl_ms > 0;
    request.ttl_ms = ttl_ms;
    gt_msg_t *reply = gt_test_call (self, dealer, &request);
    assert (reply);
    return reply;
}

gt_msg_t *
gt_test_release (gt_test_broker_t *self, zsock_t *dealer, const char *lease_id,
                 const char *service_id, bool retain)
{
    gt_msg_t request = gt_test_request (GT_CMD_RELEASE);
    request.lease_id = (char *) lease_id;
    request.service_id = (char *) service_id;
    request.has_retain = retain;
    request.retain = retain;
    gt_msg_t *reply = gt_test_call (self, dealer, &request);
    assert (reply);
    return reply;
}

gt_msg_t *
gt_test_get (gt_test_broker_t *self, zsock_t *dealer, const char *lease_id)
{
    gt_msg_t request = gt_test_request (GT_CMD_GET);
    request.lease_id = (char *) lease_id;
    gt_msg_t *reply = gt_test_call (self, dealer, &request);
    assert (reply);
    return reply;
}

gt_msg_t *
gt_test_simple (gt_test_broker_t *self, zsock_t *dealer, gt_cmd_t cmd)
{
    gt_msg_t request = gt_test_request (cmd);
    gt_msg_t *reply = gt_test_call (self, dealer, &request);
    assert (reply);
    return reply;
}

uint64_t
gt_test_stat (gt_test_broker_t *self, zsock_t *dealer, const char *name)
{
    gt_msg_t *reply = gt_test_simple (self, dealer, GT_CMD_STATS);
    assert (reply->code == GT_OK && reply->stats_present);
    bool found = false;
    uint64_t value = 0;
    for (size_t i = 0; i < reply->stat_count; i++)
        if (streq (reply->stats [i].name, name)) {
            value = reply->stats [i].value;
            found = true;
        }
    gt_msg_destroy (&reply);
    if (!found)
        fprintf (stderr, "no stat '%s'\n", name);
    assert (found);
    return value;
}

//  Receive and decode one event; NULL at the deadline.
static gt_msg_t *
s_next_event (zsock_t *sub, int64_t deadline, char **topic_p)
{
    while (true) {
        int64_t left = deadline - zclock_mono ();
        if (left < 0)
            return NULL;
        zmsg_t *msg = gt_test_recv (sub, (int) left);
        if (!msg)
            return NULL;
        assert (zmsg_size (msg) == 2);
        char *topic = zmsg_popstr (msg);
        zframe_t *body = zmsg_first (msg);
        gt_msg_t *event = NULL;
        char err [256];
        gt_code_t code = gt_msg_decode (zframe_data (body), zframe_size (body), GT_MSG_EVENT,
                                        &event, NULL, err, sizeof (err));
        if (code != GT_OK)
            fprintf (stderr, "event does not decode: %s\n", err);
        assert (code == GT_OK);
        zmsg_destroy (&msg);
        if (topic_p)
            *topic_p = topic;
        else
            zstr_free (&topic);
        return event;
    }
}

gt_msg_t *
gt_test_event_all (zsock_t *sub, int timeout_ms, char **topic_p)
{
    return s_next_event (sub, zclock_mono () + timeout_ms, topic_p);
}

gt_msg_t *
gt_test_event (zsock_t *sub, int timeout_ms, char **topic_p)
{
    int64_t deadline = zclock_mono () + timeout_ms;
    while (true) {
        char *topic = NULL;
        gt_msg_t *event = s_next_event (sub, deadline, &topic);
        if (!event)
            return NULL;
        if (!streq (event->event.lease.service_id, S_PROBE_SERVICE)) {
            if (topic_p)
                *topic_p = topic;
            else
                zstr_free (&topic);
            return event;
        }
        zstr_free (&topic);
        gt_msg_destroy (&event);
    }
}

gt_msg_t *
gt_test_await_event (zsock_t *sub, gt_event_kind_t kind, const char *lease_id, int timeout_ms)
{
    int64_t deadline = zclock_mono () + timeout_ms;
    while (true) {
        int64_t left = deadline - zclock_mono ();
        gt_msg_t *event = gt_test_event (sub, left > 0 ? (int) left : 0, NULL);
        if (!event)
            return NULL;
        if (event->event.kind == kind && (!lease_id || streq (event->event.lease.id, lease_id)))
            return event;
        gt_msg_destroy (&event);
    }
}

bool
gt_test_no_event (zsock_t *sub, int quiet_ms)
{
    gt_msg_t *event = gt_test_event (sub, quiet_ms, NULL);
    if (!event)
        return true;
    gt_msg_destroy (&event);
    return false;
}

zsock_t *
gt_test_sub (gt_test_broker_t *self, const char *prefix)
{
    zsock_t *sub = zsock_new (ZMQ_SUB);
    assert (sub);
    zsock_set_linger (sub, 0);
    zsock_set_rcvhwm (sub, 0);
    zsock_set_subscribe (sub, prefix);
    zsock_set_subscribe (sub, S_PROBE_SERVICE "\x1f" "created.UNKNOWN");
    int rc = zsock_connect (sub, "%s", self->events);
    assert (rc == 0);
    //  A SUB joins late (ZeroMQ's slow joiner): create probe leases until
    //  one's event arrives, so nothing the test does later is missed
    zsock_t *dealer = gt_test_dealer (self);
    int64_t deadline = zclock_mono () + GT_TEST_TIMEOUT;
    bool joined = false;
    int probe = 0;
    while (!joined && zclock_mono () < deadline) {
        char object [64];
        snprintf (object, sizeof (object), "probe-%p-%d", (void *) sub, probe++);
        gt_msg_t *reply = gt_test_create (self, dealer, object, S_PROBE_SERVICE, 60000);
        assert (reply->code == GT_OK);
        char lease_id [GT_LEASE_ID_LEN + 1];
        strcpy (lease_id, reply->lease->id);
        gt_msg_destroy (&reply);
        int64_t until = zclock_mono () + 100;
        gt_msg_t *event;
        while ((event = s_next_event (sub, until, NULL))) {
            joined = joined || streq (event->event.lease.id, lease_id);
            gt_msg_destroy (&event);
            if (joined)
                break;
        }
        //  Probes leave no active lease behind (retain: no reclaim)
        reply = gt_test_release (self, dealer, lease_id, S_PROBE_SERVICE, true);
        assert (reply->code == GT_OK);
        gt_msg_destroy (&reply);
    }
    assert (joined);
    zsock_destroy (&dealer);
    return sub;
}

void
gt_test_send_frames (zsock_t *dealer, const void **data, const size_t *sizes, size_t count)
{
    void *handle = zsock_resolve (dealer);
    for (size_t i = 0; i < count; i++) {
        int rc = zmq_send (handle, data [i], sizes [i], i + 1 < count ? ZMQ_SNDMORE : 0);
        assert (rc >= 0);
    }
}

uint64_t
gt_test_now (void)
{
    return (uint64_t) zclock_time ();
}

/*  test_client.c — the C SDK (gt_client, gt_subscriber, gt_keepalive)
    against the real broker, embedded as an actor on TCP loopback.

    Each section starts its own broker with small lease bounds (min lease
    50 ms) so that expiries happen within the test.  No sleeps: every wait
    is a receive with a deadline.  */
#undef NDEBUG
#include <assert.h>
#include "garbagetruck.h"
#include "gt_broker.h"

//  One embedded broker and its endpoints.
typedef struct {
    zactor_t *actor;                //  the broker
    char endpoint [64];             //  requests (ROUTER)
    char events [64];               //  events (PUB)
} s_broker_t;

static void
s_broker_start (s_broker_t *broker, uint64_t event_history)
{
    gt_config_t *config = gt_config_new ();
    assert (config);
    config->min_lease_ms = 50;
    config->default_lease_ms = 60000;
    if (event_history)
        config->event_history = event_history;
    broker->actor = zactor_new (gt_broker_actor, config);
    assert (broker->actor);
    gt_config_destroy (&config);

    zstr_sendx (broker->actor, "BIND", "tcp://127.0.0.1:*", NULL);
    char *port = zstr_recv (broker->actor);
    assert (port && atoi (port) > 0);
    snprintf (broker->endpoint, sizeof (broker->endpoint), "tcp://127.0.0.1:%s", port);
    zstr_free (&port);
    zstr_sendx (broker->actor, "EVENTS", "tcp://127.0.0.1:*", NULL);
    port = zstr_recv (broker->actor);
    assert (port && atoi (port) > 0);
    snprintf (broker->events, sizeof (broker->events), "tcp://127.0.0.1:%s", port);
    zstr_free (&port);
}

static void
s_broker_stop (s_broker_t *broker)
{
    zactor_destroy (&broker->actor);
}

//  Value of a metadata key, or NULL.
static const char *
s_meta (const gt_lease_info_t *lease, const char *key)
{
    for (size_t index = 0; index < lease->metadata.count; index++)
        if (streq (lease->metadata.entries [index].key, key))
            return lease->metadata.entries [index].value;
    return NULL;
}

static gt_client_t *
s_client (s_broker_t *broker, const char *service_id)
{
    gt_client_t *client = gt_client_new (broker->endpoint, service_id);
    assert (client);
    return client;
}

//  Create a lease on object_id with ttl_ms; returns its id in lease_id.
static void
s_create (gt_client_t *client, const char *object_id, gt_object_type_t type,
          uint64_t ttl_ms, char lease_id [GT_LEASE_ID_LEN + 1])
{
    gt_create_args_t args = { .object_id = object_id, .object_type = type, .ttl_ms = ttl_ms };
    gt_lease_info_t lease;
    memset (&lease, 0, sizeof (lease));
    gt_code_t code = gt_client_create_lease (client, &args, &lease);
    if (code != GT_OK)
        zsys_error ("create %s: %s", object_id, gt_client_error (client));
    assert (code == GT_OK);
    memcpy (lease_id, lease.id, GT_LEASE_ID_LEN + 1);
    gt_lease_info_clear (&lease);
}

//  ---------------------------------------------------------------------
//  Every blocking call

static void
s_test_blocking_calls (void)
{
    printf (" * blocking calls: ");
    s_broker_t broker;
    s_broker_start (&broker, 0);
    gt_client_t *client = s_client (&broker, "upload-service");
    gt_client_t *intruder = s_client (&broker, "other-service");

    //  HEALTH
    gt_msg_t *reply;
    assert (gt_client_health (client, &reply) == GT_OK);
    assert (streq (reply->status, "SERVING"));
    assert (streq (reply->store, "memory"));
    assert (streq (reply->server_version, GT_VERSION_STRING));
    assert (reply->now > 0);
    gt_msg_destroy (&reply);

    //  CREATE with everything
    gt_meta_entry_t entries [] = {{ "owner", "alice" }, { "bucket", "uploads" }};
    gt_meta_t metadata = { entries, 2 };
    gt_cleanup_t cleanup = {
        .url = "http://127.0.0.1:9/cleanup", .payload = "rm -f /tmp/a",
        .has_max_retries = true, .max_retries = 2,
        .has_retry_delay = true, .retry_delay_ms = 500
    };
    gt_create_args_t args = {
        .object_id = "/tmp/a", .object_type = GT_TYPE_TEMPORARY_FILE, .ttl_ms = 30000,
        .metadata = &metadata, .cleanup = &cleanup, .idempotency_key = "upload-a"
    };
    gt_lease_info_t lease;
    memset (&lease, 0, sizeof (lease));
    assert (gt_client_create_lease (client, &args, &lease) == GT_OK);
    assert (streq (gt_client_error (client), ""));
    assert (gt_lease_id_valid (lease.id));
    assert (streq (lease.object_id, "/tmp/a"));
    assert (lease.object_type == GT_TYPE_TEMPORARY_FILE);
    assert (streq (lease.service_id, "upload-service"));
    assert (lease.state == GT_STATE_ACTIVE);
    assert (lease.ttl_ms == 30000);
    assert (lease.fence >= 1);
    assert (lease.renewals == 0);
    assert (lease.expires_at == lease.created_at + 30000);
    assert (streq (s_meta (&lease, "owner"), "alice"));
    assert (streq (s_meta (&lease, "bucket"), "uploads"));
    assert (lease.cleanup && streq (lease.cleanup->url, "http://127.0.0.1:9/cleanup"));
    assert (streq (lease.cleanup->payload, "rm -f /tmp/a"));
    assert (lease.cleanup->max_retries == 2 && lease.cleanup->retry_delay_ms == 500);
    char lease_a [GT_LEASE_ID_LEN + 1];
    memcpy (lease_a, lease.id, sizeof (lease_a));
    gt_lease_info_clear (&lease);

    //  CREATE again with the same idempotency key: the same lease
    assert (gt_client_create_lease (client, &args, &lease) == GT_OK);
    assert (streq (lease.id, lease_a));
    gt_lease_info_clear (&lease);

    //  CREATE out of bounds: the broker's message comes through
    gt_create_args_t too_short = { .object_id = "/tmp/b", .ttl_ms = 10 };
    assert (gt_client_create_lease (client, &too_short, NULL) == GT_ERR_INVALID_ARGUMENT);
    assert (strlen (gt_client_error (client)) > 0);
    assert (!gt_client_timed_out (client));

    //  GET
    assert (gt_client_get_lease (client, lease_a, &lease) == GT_OK);
    assert (streq (lease.id, lease_a) && lease.state == GT_STATE_ACTIVE);
    gt_lease_info_clear (&lease);
    assert (gt_client_get_lease (client, "0123456789abcdef0123456789abcdef", NULL)
            == GT_ERR_NOT_FOUND);

    //  RENEW: own TTL, then a new one
    assert (gt_client_renew_lease (client, lease_a, 0, &lease) == GT_OK);
    assert (lease.renewals == 1 && lease.ttl_ms == 30000);
    gt_lease_info_clear (&lease);
    assert (gt_client_renew_lease (client, lease_a, 2000, &lease) == GT_OK);
    assert (lease.renewals == 2 && lease.ttl_ms == 2000);
    assert (lease.expires_at == lease.renewed_at + 2000);
    gt_lease_info_clear (&lease);
    assert (gt_client_renew_lease (intruder, lease_a, 0, NULL) == GT_ERR_PERMISSION_DENIED);

    //  RENEW_BATCH: per-lease outcomes in order
    char lease_b [GT_LEASE_ID_LEN + 1];
    s_create (client, "/tmp/b", GT_TYPE_TEMPORARY_FILE, 30000, lease_b);
    const char *batch [] = { lease_a, "0123456789abcdef0123456789abcdef", lease_b };
    assert (gt_client_renew_leases (client, batch, 3, 0, &reply) == GT_OK);
    assert (reply->result_count == 3);
    assert (streq (reply->results [0].lease_id, lease_a));
    assert (reply->results [0].code == GT_OK && reply->results [0].expires_at > 0);
    assert (reply->results [1].code == GT_ERR_NOT_FOUND && reply->results [1].message);
    assert (reply->results [2].code == GT_OK);
    gt_msg_destroy (&reply);

    //  LIST: filters and paging
    gt_list_args_t filter = { .service_id = "upload-service" };
    assert (gt_client_list_leases (client, &filter, &reply) == GT_OK);
    assert (reply->lease_count == 2);
    assert (streq (reply->leases [0].id, lease_a));   //  oldest first
    assert (reply->cursor == NULL);
    gt_msg_destroy (&reply);
    gt_list_args_t page = { .service_id = "upload-service", .limit = 1 };
    assert (gt_client_list_leases (client, &page, &reply) == GT_OK);
    assert (reply->lease_count == 1 && reply->cursor);
    char *cursor = strdup (reply->cursor);
    gt_msg_destroy (&reply);
    page.cursor = cursor;
    assert (gt_client_list_leases (client, &page, &reply) == GT_OK);
    assert (reply->lease_count == 1 && streq (reply->leases [0].id, lease_b));
    gt_msg_destroy (&reply);
    free (cursor);
    gt_list_args_t by_state = { .has_state = true, .state = GT_STATE_RELEASED };
    assert (gt_client_list_leases (client, &by_state, &reply) == GT_OK);
    assert (reply->lease_count == 0);
    gt_msg_destroy (&reply);
    assert (gt_client_list_leases (client, NULL, NULL) == GT_OK);

    //  RELEASE: not by another service; retain keeps the object
    assert (gt_client_release_lease (intruder, lease_a, false, NULL) == GT_ERR_PERMISSION_DENIED);
    assert (strlen (gt_client_error (intruder)) > 0);
    assert (gt_client_release_lease (client, lease_a, false, &lease) == GT_OK);
    assert (lease.state == GT_STATE_RELEASED);
    gt_lease_info_clear (&lease);
    assert (gt_client_release_lease (client, lease_a, false, NULL) == GT_ERR_LEASE_ENDED);
    assert (gt_client_release_lease (client, lease_b, true, &lease) == GT_OK);
    assert (lease.state == GT_STATE_RELEASED);
    gt_lease_info_clear (&lease);

    //  STATS
    assert (gt_client_stats (client, &reply) == GT_OK);
    assert (gt_client_stat_value (reply, "leases_created", 0) == 2);
    assert (gt_client_stat_value (reply, "leases_released", 0) == 2);
    assert (gt_client_stat_value (reply, "active_leases", 99) == 0);
    gt_msg_destroy (&reply);

    //  REPLAY: the whole story, in order; /tmp/a was reclaimed, /tmp/b retained
    assert (gt_client_replay (client, 0, 0, &reply) == GT_OK);
    assert (reply->event_count >= 6);
    assert (reply->last_seq == reply->events [reply->event_count - 1].seq);
    bool reclaimed_a = false, reclaimed_b = false;
    for (size_t index = 0; index < reply->event_count; index++) {
        gt_event_t *event = &reply->events [index];
        assert (event->seq == index + 1);
        if (event->kind == GT_EVENT_OBJECT_RECLAIMED) {
            reclaimed_a |= streq (event->lease.object_id, "/tmp/a");
            reclaimed_b |= streq (event->lease.object_id, "/tmp/b");
        }
    }
    assert (reclaimed_a && !reclaimed_b);
    assert (reply->events [0].kind == GT_EVENT_LEASE_CREATED);
    gt_msg_destroy (&reply);
    assert (gt_client_replay (client, 2, 1, &reply) == GT_OK);
    assert (reply->event_count == 1 && reply->events [0].seq == 3);
    gt_msg_destroy (&reply);

    gt_client_destroy (&intruder);
    gt_client_destroy (&client);
    s_broker_stop (&broker);
    printf ("OK\n");
}

//  ---------------------------------------------------------------------
//  Convenience calls of the original GarbageTruck

static void
s_test_convenience (void)
{
    printf (" * convenience calls: ");
    s_broker_t broker;
    s_broker_start (&broker, 0);
    gt_client_t *client = s_client (&broker, "storage-service");
    gt_lease_info_t lease;
    memset (&lease, 0, sizeof (lease));

    assert (gt_client_create_temp_file_lease (client, "/tmp/upload-123.jpg", 3600000,
            "http://127.0.0.1:9/cleanup-file", &lease) == GT_OK);
    assert (lease.object_type == GT_TYPE_TEMPORARY_FILE);
    assert (streq (lease.object_id, "/tmp/upload-123.jpg"));
    assert (streq (s_meta (&lease, "path"), "/tmp/upload-123.jpg"));
    assert (lease.cleanup && streq (lease.cleanup->url, "http://127.0.0.1:9/cleanup-file"));
    assert (lease.ttl_ms == 3600000);
    gt_lease_info_clear (&lease);

    assert (gt_client_create_db_row_lease (client, "user_sessions", "42", 0, NULL, &lease)
            == GT_OK);
    assert (lease.object_type == GT_TYPE_DATABASE_ROW);
    assert (streq (lease.object_id, "user_sessions:42"));
    assert (streq (s_meta (&lease, "table"), "user_sessions"));
    assert (streq (s_meta (&lease, "row_id"), "42"));
    assert (lease.cleanup == NULL);
    assert (lease.ttl_ms == 60000);         //  the broker's default
    gt_lease_info_clear (&lease);

    assert (gt_client_create_blob_lease (client, "temp-uploads", "a/b.bin", 1800000, NULL,
            &lease) == GT_OK);
    assert (lease.object_type == GT_TYPE_BLOB_STORAGE);
    assert (streq (lease.object_id, "temp-uploads/a/b.bin"));
    assert (streq (s_meta (&lease, "bucket"), "temp-uploads"));
    assert (streq (s_meta (&lease, "key"), "a/b.bin"));
    gt_lease_info_clear (&lease);

    assert (gt_client_create_session_lease (client, "sess-9", "user-7", 300000,
            "http://127.0.0.1:9/force-disconnect", &lease) == GT_OK);
    assert (lease.object_type == GT_TYPE_WEBSOCKET_SESSION);
    assert (streq (lease.object_id, "sess-9"));
    assert (streq (s_meta (&lease, "user_id"), "user-7"));
    gt_lease_info_clear (&lease);

    assert (gt_client_create_cache_lease (client, "page:/home", 1000, NULL, &lease) == GT_OK);
    assert (lease.object_type == GT_TYPE_CACHE_ENTRY);
    assert (streq (lease.object_id, "page:/home"));
    assert (streq (s_meta (&lease, "cache_key"), "page:/home"));
    gt_lease_info_clear (&lease);

    gt_client_destroy (&client);
    s_broker_stop (&broker);
    printf ("OK\n");
}

//  ---------------------------------------------------------------------
//  10,000 pipelined requests on one connection

#define S_PIPELINED 10000

static void
s_test_pipelined (void)
{
    printf (" * pipelined requests: ");
    s_broker_t broker;
    s_broker_start (&broker, 0);
    gt_client_t *client = s_client (&broker, "bulk-service");
    char lease_id [GT_LEASE_ID_LEN + 1];
    s_create (client, "bulk-object", GT_TYPE_CUSTOM, 60000, lease_id);

    //  Alternate RENEW (service filled in by the client) and GET
    gt_msg_t *request = gt_msg_new (GT_MSG_REQUEST);
    request->lease_id = strdup (lease_id);
    uint64_t first_rid = 0, last_rid = 0;
    for (int index = 0; index < S_PIPELINED; index++) {
        request->cmd = index % 2? GT_CMD_GET: GT_CMD_RENEW;
        uint64_t rid = gt_client_send (client, request);
        assert (rid > 0);
        if (!first_rid)
            first_rid = rid;
        assert (rid == first_rid + (uint64_t) index);
        last_rid = rid;
    }
    gt_msg_destroy (&request);

    //  Every reply arrives once, OK
    bool *seen = (bool *) calloc (S_PIPELINED, sizeof (bool));
    assert (seen);
    for (int index = 0; index < S_PIPELINED; index++) {
        gt_msg_t *reply = gt_client_recv (client, 10000);
        assert (reply);
        assert (reply->rid >= first_rid && reply->rid <= last_rid);
        assert (!seen [reply->rid - first_rid]);
        seen [reply->rid - first_rid] = true;
        assert (reply->code == GT_OK);
        assert (reply->lease && streq (reply->lease->id, lease_id));
        gt_msg_destroy (&reply);
    }
    free (seen);
    assert (gt_client_recv (client, 0) == NULL);

    gt_lease_info_t lease;
    memset (&lease, 0, sizeof (lease));
    assert (gt_client_get_lease (client, lease_id, &lease) == GT_OK);
    assert (lease.renewals == S_PIPELINED / 2);
    gt_lease_info_clear (&lease);
    gt_client_destroy (&client);
    s_broker_stop (&broker);
    printf ("OK\n");
}

//  ---------------------------------------------------------------------
//  Subscriber: gap fill via REPLAY, history first, TOO_OLD

//  Receive the next event within 10 s (asserts one comes).
static gt_msg_t *
s_next_event (gt_subscriber_t *subscriber)
{
    gt_msg_t *event = gt_subscriber_recv (subscriber, 10000);
    if (!event)
        zsys_error ("no event: %s %s", gt_code_name (gt_subscriber_code (subscriber)),
                    gt_subscriber_error (subscriber));
    assert (event && event->kind == GT_MSG_EVENT);
    return event;
}

static void
s_test_subscriber (void)
{
    printf (" * subscriber: ");
    s_broker_t broker;
    s_broker_start (&broker, 0);
    gt_client_t *client = s_client (&broker, "sub-service");
    char lease_id [GT_LEASE_ID_LEN + 1];

    //  Only expiries: the events in between look like gaps
    gt_subscriber_t *expiries = gt_subscriber_new (broker.events, broker.endpoint);
    assert (expiries);
    gt_subscriber_subscribe (expiries, "sub-service\x1f" "expired.");
    //  Baseline: expire short leases until one is seen live (the
    //  subscription reaches the broker asynchronously)
    gt_msg_t *event = NULL;
    int64_t give_up = zclock_mono () + 20000;
    while (!event && zclock_mono () < give_up) {
        s_create (client, "warmup", GT_TYPE_CUSTOM, 50, lease_id);
        event = gt_subscriber_recv (expiries, 1000);
    }
    assert (event);
    assert (event->event.kind == GT_EVENT_LEASE_EXPIRED);
    uint64_t baseline = event->event.seq;
    gt_msg_destroy (&event);
    //  Drain expiries of other warm-up leases, if any
    while ((event = gt_subscriber_recv (expiries, 0)))
        gt_msg_destroy (&event);
    baseline = gt_subscriber_last_seq (expiries) > baseline
             ? gt_subscriber_last_seq (expiries): baseline;

    //  A long lease (created: filtered), then a short one whose expiry
    //  arrives after a gap of non-matching events
    char long_id [GT_LEASE_ID_LEN + 1], short_id [GT_LEASE_ID_LEN + 1];
    s_create (client, "keeper", GT_TYPE_CUSTOM, 60000, long_id);
    s_create (client, "brief", GT_TYPE_TEMPORARY_FILE, 50, short_id);
    uint64_t replayed = gt_subscriber_replayed (expiries);
    event = s_next_event (expiries);
    assert (event->event.kind == GT_EVENT_LEASE_EXPIRED);
    assert (streq (event->event.lease.id, short_id));
    assert (event->event.seq > baseline + 1);
    gt_msg_destroy (&event);
    assert (gt_subscriber_replayed (expiries) > replayed);
    gt_subscriber_destroy (&expiries);

    //  Everything from seq 1, then live: consecutive, no duplicates
    gt_msg_t *reply;
    assert (gt_client_stats (client, &reply) == GT_OK);
    uint64_t last_seq = gt_client_stat_value (reply, "last_seq", 0);
    gt_msg_destroy (&reply);
    assert (last_seq >= 4);
    gt_subscriber_t *everything = gt_subscriber_new (broker.events, broker.endpoint);
    assert (everything);
    gt_subscriber_set_from_seq (everything, 1);
    uint64_t expected = 1;
    while (expected <= last_seq) {
        event = s_next_event (everything);
        assert (event->event.seq == expected);
        expected++;
        gt_msg_destroy (&event);
    }
    //  Live events continue the sequence
    s_create (client, "live-1", GT_TYPE_CUSTOM, 60000, lease_id);
    s_create (client, "live-2", GT_TYPE_CUSTOM, 60000, lease_id);
    for (int count = 0; count < 2; count++) {
        event = s_next_event (everything);
        assert (event->event.seq == expected);
        assert (event->event.kind == GT_EVENT_LEASE_CREATED);
        expected++;
        gt_msg_destroy (&event);
    }
    assert (gt_subscriber_recv (everything, 0) == NULL);
    assert (gt_subscriber_code (everything) == GT_OK);
    gt_subscriber_destroy (&everything);

    //  From a seq in the middle, filtered by prefix
    gt_subscriber_t *created = gt_subscriber_new (broker.events, broker.endpoint);
    gt_subscriber_subscribe (created, "sub-service\x1f" "created.CUSTOM");
    gt_subscriber_set_from_seq (created, 2);
    event = s_next_event (created);
    assert (event->event.seq >= 2);
    assert (event->event.kind == GT_EVENT_LEASE_CREATED);
    assert (event->event.lease.object_type == GT_TYPE_CUSTOM);
    gt_msg_destroy (&event);
    gt_subscriber_destroy (&created);

    gt_client_destroy (&client);
    s_broker_stop (&broker);

    //  A broker that keeps only 5 events: old history is TOO_OLD
    s_broker_start (&broker, 5);
    client = s_client (&broker, "sub-service");
    for (int index = 0; index < 12; index++) {
        char object [32];
        snprintf (object, sizeof (object), "object-%d", index);
        s_create (client, object, GT_TYPE_CUSTOM, 60000, lease_id);
    }
    assert (gt_client_replay (client, 0, 0, NULL) == GT_ERR_TOO_OLD);
    assert (strlen (gt_client_error (client)) > 0);
    gt_subscriber_t *late = gt_subscriber_new (broker.events, broker.endpoint);
    gt_subscriber_set_from_seq (late, 1);
    assert (gt_subscriber_recv (late, 1000) == NULL);
    assert (gt_subscriber_code (late) == GT_ERR_TOO_OLD);
    //  It carries on live
    event = NULL;
    give_up = zclock_mono () + 20000;
    while (!event && zclock_mono () < give_up) {
        s_create (client, "after-too-old", GT_TYPE_CUSTOM, 60000, lease_id);
        event = gt_subscriber_recv (late, 500);
        assert (event || gt_subscriber_code (late) == GT_OK);
    }
    assert (event && event->event.seq > 12);
    gt_msg_destroy (&event);
    gt_subscriber_destroy (&late);
    gt_client_destroy (&client);
    s_broker_stop (&broker);
    printf ("OK\n");
}

//  ---------------------------------------------------------------------
//  Keepalive

static void
s_test_keepalive (void)
{
    printf (" * keepalive: ");
    s_broker_t broker;
    s_broker_start (&broker, 0);
    gt_client_t *client = s_client (&broker, "worker");
    gt_subscriber_t *renewals = gt_subscriber_new (broker.events, broker.endpoint);
    gt_subscriber_subscribe (renewals, "worker\x1f" "renewed.");
    gt_keepalive_t *keepalive = gt_keepalive_new (broker.endpoint, "worker");
    assert (keepalive);

    gt_lease_info_t lease;
    memset (&lease, 0, sizeof (lease));
    gt_create_args_t args = { .object_id = "job-1", .ttl_ms = 150 };
    assert (gt_client_create_lease (client, &args, &lease) == GT_OK);
    char lease_id [GT_LEASE_ID_LEN + 1];
    memcpy (lease_id, lease.id, sizeof (lease_id));
    uint64_t created_at = lease.created_at;
    gt_lease_info_clear (&lease);
    assert (gt_keepalive_add (keepalive, lease_id, 150) == 0);

    //  Renewed again and again, until its renewals carry it past two TTLs
    //  (a renewal after the original deadline would have been refused)
    int seen = 0;
    uint64_t renewed_at = 0;
    while (seen < 3 || renewed_at < created_at + 2 * 150) {
        gt_msg_t *event = s_next_event (renewals);
        assert (event->event.kind == GT_EVENT_LEASE_RENEWED);
        assert (streq (event->event.lease.id, lease_id));
        assert (event->event.lease.state == GT_STATE_ACTIVE);
        renewed_at = event->event.lease.renewed_at;
        seen++;
        gt_msg_destroy (&event);
    }
    assert (gt_client_get_lease (client, lease_id, &lease) == GT_OK);
    assert (lease.state == GT_STATE_ACTIVE);
    assert (lease.renewals >= 3);
    gt_lease_info_clear (&lease);
    char lost_id [GT_LEASE_ID_LEN + 1];
    gt_code_t lost_code;
    assert (gt_keepalive_recv_lost (keepalive, 0, lost_id, &lost_code) == -1);

    //  Released by another path: the keepalive reports it LOST
    assert (gt_client_release_lease (client, lease_id, false, NULL) == GT_OK);
    assert (gt_keepalive_recv_lost (keepalive, 10000, lost_id, &lost_code) == 0);
    assert (streq (lost_id, lease_id));
    assert (lost_code == GT_ERR_LEASE_ENDED);

    gt_keepalive_destroy (&keepalive);
    gt_subscriber_destroy (&renewals);
    gt_client_destroy (&client);
    s_broker_stop (&broker);
    printf ("OK\n");
}

int
main (void)
{
    zsys_init ();
    printf ("Running C SDK tests against the embedded broker...\n");
    s_test_blocking_calls ();
    s_test_convenience ();
    s_test_pipelined ();
    s_test_subscriber ();
    s_test_keepalive ();
    return 0;
}

/*  test_broker.c — integration tests of the broker over TCP loopback.

    Usage: test_broker AREA     (one ctest per area; "all" runs them all)
    Each area starts its own embedded broker (store from GT_TEST_STORE),
    talks GTLP/1 with raw DEALER/SUB sockets and the shared codec, and
    asserts outcomes on the wire.  Waits are on sockets with deadlines.  */
#include "gt_test_util.h"
#include "gt_metrics_http.h"
#include "gt_http_client.h"

//  Expiry lateness we accept on the wire: the wheel's 1 ms slot plus loop
//  processing, plus the scheduling noise of a loaded CI machine under
//  sanitizers.  Generous on purpose: this is a bound, not a benchmark.
#define S_EXPIRY_BOUND_MS   1000

//  The id of the lease in a reply; destroys the reply.
static char *
s_lease_id (gt_msg_t *reply)
{
    assert (reply && reply->code == GT_OK && reply->lease);
    char *id = strdup (reply->lease->id);
    gt_msg_destroy (&reply);
    return id;
}

static void
s_expect (gt_msg_t *reply, gt_code_t code)
{
    assert (reply);
    if (reply->code != code)
        fprintf (stderr, "expected %s, got %s: %s\n", gt_code_name (code), gt_code_name (reply->code),
                 reply->message ? reply->message : "");
    assert (reply->code == code);
    if (code != GT_OK)
        assert (reply->message && *reply->message);
}

static void
s_expect_and_free (gt_msg_t *reply, gt_code_t code)
{
    s_expect (reply, code);
    gt_msg_destroy (&reply);
}

//  --------------------------------------------------------------------------
//  Full lifecycle: create, get, renew, list, release, get

static void
s_test_lifecycle (void)
{
    gt_config_t *config = gt_test_config ();
    gt_test_broker_t *broker = gt_test_broker_start (config);
    zsock_t *dealer = gt_test_dealer (broker);
    zsock_t *sub = gt_test_sub (broker, "");

    gt_msg_t *health = gt_test_simple (broker, dealer, GT_CMD_HEALTH);
    s_expect (health, GT_OK);
    assert (streq (health->status, "SERVING") && streq (health->store_status, "OK"));
    assert (streq (health->store, config->storage) && streq (health->server_version, GT_VERSION_STRING));
    assert (health->now > 0);
    gt_msg_destroy (&health);

    gt_msg_t request = gt_test_request (GT_CMD_CREATE);
    request.object_id = "/tmp/upload-42";
    request.has_object_type = true;
    request.object_type = GT_TYPE_TEMPORARY_FILE;
    request.service_id = "upload-service";
    request.has_ttl = true;
    request.ttl_ms = 30000;
    gt_meta_entry_t entries [] = { { "user", "alice" }, { "size", "42" } };
    request.has_metadata = true;
    request.metadata.entries = entries;
    request.metadata.count = 2;
    gt_cleanup_t cleanup = { "http://127.0.0.1:9/cleanup", "rm", false, 0, false, 0 };
    request.cleanup = &cleanup;
    uint64_t before = gt_test_now ();
    gt_msg_t *reply = gt_test_call (broker, dealer, &request);
    s_expect (reply, GT_OK);
    gt_lease_info_t *lease = reply->lease;
    char *id = strdup (lease->id);
    assert (gt_lease_id_valid (id));
    //  Its first byte names the object's shard (docs/CLUSTER.md)
    assert (gt_lease_id_shard (id) == gt_shard_of ("/tmp/upload-42"));
    assert (streq (lease->object_id, "/tmp/upload-42") && lease->object_type == GT_TYPE_TEMPORARY_FILE);
    assert (streq (lease->service_id, "upload-service") && lease->state == GT_STATE_ACTIVE);
    assert (lease->fence == 1 && lease->ttl_ms == 30000 && lease->renewals == 0);
    assert (lease->created_at >= before && lease->renewed_at == lease->created_at);
    assert (lease->expires_at == lease->created_at + 30000);
    assert (lease->metadata.count == 2);
    assert (lease->cleanup && streq (lease->cleanup->url, cleanup.url) && streq (lease->cleanup->payload, "rm"));
    assert (lease->cleanup->has_max_retries && lease->cleanup->has_retry_delay);
    uint64_t created_at = lease->created_at;
    gt_msg_destroy (&reply);

    char *topic = NULL;
    gt_msg_t *event = gt_test_event (sub, GT_TEST_TIMEOUT, &topic);
    assert (event && event->event.kind == GT_EVENT_LEASE_CREATED);
    assert (streq (topic, "upload-service\x1f" "created.TEMPORARY_FILE"));
    assert (streq (event->event.lease.id, id) && event->event.at == created_at);
    zstr_free (&topic);
    gt_msg_destroy (&event);

    reply = gt_test_get (broker, dealer, id);
    s_expect (reply, GT_OK);
    assert (streq (reply->lease->id, id) && reply->lease->state == GT_STATE_ACTIVE);
    assert (reply->lease->metadata.count == 2);
    gt_msg_destroy (&reply);

    reply = gt_test_renew (broker, dealer, id, "upload-service", 40000);
    s_expect (reply, GT_OK);
    assert (reply->lease->renewals == 1 && reply->lease->ttl_ms == 40000);
    assert (reply->lease->renewed_at >= created_at);
    assert (reply->lease->expires_at == reply->lease->renewed_at + 40000);
    assert (reply->lease->created_at == created_at);
    gt_msg_destroy (&reply);
    //  RENEW without ttl_ms uses the lease's own (now 40 s)
    reply = gt_test_renew (broker, dealer, id, "upload-service", 0);
    s_expect (reply, GT_OK);
    assert (reply->lease->renewals == 2 && reply->lease->ttl_ms == 40000);
    gt_msg_destroy (&reply);
    event = gt_test_await_event (sub, GT_EVENT_LEASE_RENEWED, id, GT_TEST_TIMEOUT);
    assert (event && event->event.lease.renewals == 1);
    gt_msg_destroy (&event);

    gt_msg_t list = gt_test_request (GT_CMD_LIST);
    list.service_id = "upload-service";
    reply = gt_test_call (broker, dealer, &list);
    s_expect (reply, GT_OK);
    assert (reply->leases_present && reply->lease_count == 1 && streq (reply->leases [0].id, id));
    assert (reply->cursor == NULL);
    gt_msg_destroy (&reply);

    reply = gt_test_release (broker, dealer, id, "upload-service", false);
    s_expect (reply, GT_OK);
    assert (reply->lease->state == GT_STATE_RELEASED);
    gt_msg_destroy (&reply);
    event = gt_test_await_event (sub, GT_EVENT_LEASE_RELEASED, id, GT_TEST_TIMEOUT);
    assert (event);
    uint64_t seq = event->event.seq;
    gt_msg_destroy (&event);
    event = gt_test_event (sub, GT_TEST_TIMEOUT, &topic);
    assert (event && event->event.kind == GT_EVENT_OBJECT_RECLAIMED);
    assert (event->event.reason == GT_REASON_RELEASED && streq (event->event.lease.id, id));
    assert (event->event.seq == seq + 1);
    assert (streq (topic, "upload-service\x1f" "reclaimed.TEMPORARY_FILE"));
    zstr_free (&topic);
    gt_msg_destroy (&event);

    reply = gt_test_get (broker, dealer, id);
    s_expect (reply, GT_OK);
    assert (reply->lease->state == GT_STATE_RELEASED);
    gt_msg_destroy (&reply);
    s_expect_and_free (gt_test_release (broker, dealer, id, "upload-service", false), GT_ERR_LEASE_ENDED);

    //  Counters moved
    assert (gt_test_stat (broker, dealer, "leases_created") >= 1);
    assert (gt_test_stat (broker, dealer, "leases_renewed") == 2);
    assert (gt_test_stat (broker, dealer, "objects_reclaimed") == 1);
    assert (gt_test_stat (broker, dealer, "errors_lease_ended") == 1);
    assert (gt_test_stat (broker, dealer, "active_leases") == 0);
    free (id);
    zsock_destroy (&sub);
    zsock_destroy (&dealer);
    gt_test_broker_stop (&broker);
    gt_config_destroy (&config);
}

//  --------------------------------------------------------------------------
//  Ownership, ended vs unknown

static void
s_test_ownership (void)
{
    gt_config_t *config = gt_test_config ();
    gt_test_broker_t *broker = gt_test_broker_start (config);
    zsock_t *dealer = gt_test_dealer (broker);

    char *id = s_lease_id (gt_test_create (broker, dealer, "row-7", "orders", 5000));
    s_expect_and_free (gt_test_renew (broker, dealer, id, "billing", 0), GT_ERR_PERMISSION_DENIED);
    s_expect_and_free (gt_test_release (broker, dealer, id, "billing", false), GT_ERR_PERMISSION_DENIED);
    gt_msg_t batch = gt_test_request (GT_CMD_RENEW_BATCH);
    batch.service_id = "billing";
    char *ids [] = { id, "0123456789abcdef0123456789abcdef" };
    batch.lease_ids = ids;
    batch.lease_id_count = 2;
    gt_msg_t *reply = gt_test_call (broker, dealer, &batch);
    s_expect (reply, GT_OK);
    assert (reply->result_count == 2);
    assert (reply->results [0].code == GT_ERR_PERMISSION_DENIED && reply->results [0].message);
    assert (reply->results [1].code == GT_ERR_NOT_FOUND);
    assert (streq (reply->results [0].lease_id, id));
    gt_msg_destroy (&reply);
    reply = gt_test_get (broker, dealer, id);
    assert (reply->lease->state == GT_STATE_ACTIVE && reply->lease->renewals == 0);
    gt_msg_destroy (&reply);

    //  The owner may; RENEW_BATCH renews its own
    batch.service_id = "orders";
    reply = gt_test_call (broker, dealer, &batch);
    s_expect (reply, GT_OK);
    assert (reply->results [0].code == GT_OK && reply->results [0].expires_at > 0);
    assert (reply->results [1].code == GT_ERR_NOT_FOUND);
    gt_msg_destroy (&reply);
    s_expect_and_free (gt_test_release (broker, dealer, id, "orders", false), GT_OK);

    //  Ended vs unknown
    s_expect_and_free (gt_test_renew (broker, dealer, id, "orders", 0), GT_ERR_LEASE_ENDED);
    s_expect_and_free (gt_test_renew (broker, dealer, "00000000000000000000000000000000", "orders", 0),
                       GT_ERR_NOT_FOUND);
    s_expect_and_free (gt_test_get (broker, dealer, "00000000000000000000000000000000"), GT_ERR_NOT_FOUND);
    reply = gt_test_call (broker, dealer, &batch);
    assert (reply->results [0].code == GT_ERR_LEASE_ENDED);
    gt_msg_destroy (&reply);
    free (id);
    zsock_destroy (&dealer);
    gt_test_broker_stop (&broker);
    gt_config_destroy (&config);
}

//  --------------------------------------------------------------------------
//  Bounds and quota

static void
s_test_bounds (void)
{
    gt_config_t *config = gt_test_config ();
    config->max_leases_per_service = 3;
    gt_test_broker_t *broker = gt_test_broker_start (config);
    zsock_t *dealer = gt_test_dealer (broker);

    s_expect_and_free (gt_test_create (broker, dealer, "x", "svc", 49), GT_ERR_INVALID_ARGUMENT);
    s_expect_and_free (gt_test_create (broker, dealer, "x", "svc", 60001), GT_ERR_INVALID_ARGUMENT);
    s_expect_and_free (gt_test_create (broker, dealer, "", "svc", 100), GT_ERR_INVALID_ARGUMENT);
    s_expect_and_free (gt_test_create (broker, dealer, "x", "", 100), GT_ERR_INVALID_ARGUMENT);
    char long_object [514], long_service [130];
    memset (long_object, 'o', 513);
    long_object [513] = 0;
    memset (long_service, 's', 129);
    long_service [129] = 0;
    s_expect_and_free (gt_test_create (broker, dealer, long_object, "svc", 100), GT_ERR_INVALID_ARGUMENT);
    s_expect_and_free (gt_test_create (broker, dealer, "x", long_service, 100), GT_ERR_INVALID_ARGUMENT);
    long_object [512] = 0;
    long_service [128] = 0;
    s_expect_and_free (gt_test_create (broker, dealer, long_object, long_service, 100), GT_OK);
    gt_msg_t request = gt_test_request (GT_CMD_CREATE);
    request.object_id = "x";
    request.service_id = "svc";
    gt_cleanup_t cleanup = { "ftp://127.0.0.1/x", NULL, false, 0, false, 0 };
    request.cleanup = &cleanup;
    s_expect_and_free (gt_test_call (broker, dealer, &request), GT_ERR_INVALID_ARGUMENT);

    //  Renew bounds; RENEW_BATCH fails as a whole
    char *id = s_lease_id (gt_test_create (broker, dealer, "x", "svc", 30000));
    s_expect_and_free (gt_test_renew (broker, dealer, id, "svc", 10), GT_ERR_INVALID_ARGUMENT);
    s_expect_and_free (gt_test_renew (broker, dealer, id, "svc", 100000), GT_ERR_INVALID_ARGUMENT);
    gt_msg_t batch = gt_test_request (GT_CMD_RENEW_BATCH);
    batch.service_id = "svc";
    char *ids [] = { id };
    batch.lease_ids = ids;
    batch.lease_id_count = 1;
    batch.has_ttl = true;
    batch.ttl_ms = 10;
    s_expect_and_free (gt_test_call (broker, dealer, &batch), GT_ERR_INVALID_ARGUMENT);
    //  LIST and REPLAY limits
    gt_msg_t list = gt_test_request (GT_CMD_LIST);
    list.has_limit = true;
    list.limit = 0;
    s_expect_and_free (gt_test_call (broker, dealer, &list), GT_ERR_INVALID_ARGUMENT);
    list.limit = 1001;
    s_expect_and_free (gt_test_call (broker, dealer, &list), GT_ERR_INVALID_ARGUMENT);
    gt_msg_t replay = gt_test_request (GT_CMD_REPLAY);
    replay.has_after_seq = true;
    replay.has_limit = true;
    replay.limit = 1001;
    s_expect_and_free (gt_test_call (broker, dealer, &replay), GT_ERR_INVALID_ARGUMENT);

    //  Quota (3): svc holds x; the long names' lease is another service's
    char *second = s_lease_id (gt_test_create (broker, dealer, "y", "svc", 30000));
    char *third = s_lease_id (gt_test_create (broker, dealer, "z", "svc", 30000));
    s_expect_and_free (gt_test_create (broker, dealer, "w", "svc", 30000), GT_ERR_QUOTA_EXCEEDED);
    s_expect_and_free (gt_test_create (broker, dealer, "w", "other", 30000), GT_OK);
    s_expect_and_free (gt_test_release (broker, dealer, third, "svc", false), GT_OK);
    s_expect_and_free (gt_test_create (broker, dealer, "w", "svc", 30000), GT_OK);
    assert (gt_test_stat (broker, dealer, "errors_quota_exceeded") == 1);
    free (id);
    free (second);
    free (third);
    zsock_destroy (&dealer);
    gt_test_broker_stop (&broker);
    gt_config_destroy (&config);
}

//  GC_MAX_LEASES: the broker's leases, of every service, ended ones kept
//  for retention included
static void
s_test_broker_cap (void)
{
    gt_config_t *config = gt_test_config ();
    config->max_leases = 2;
    gt_test_broker_t *broker = gt_test_broker_start (config);
    zsock_t *dealer = gt_test_dealer (broker);
    char *first = s_lease_id (gt_test_create (broker, dealer, "a", "svc-1", 30000));
    s_expect_and_free (gt_test_create (broker, dealer, "b", "svc-2", 30000), GT_OK);
    gt_msg_t *reply = gt_test_create (broker, dealer, "c", "svc-3", 30000);
    s_expect (reply, GT_ERR_QUOTA_EXCEEDED);
    assert (strstr (reply->message, "GC_MAX_LEASES"));
    gt_msg_destroy (&reply);
    s_expect_and_free (gt_test_release (broker, dealer, first, "svc-1", false), GT_OK);
    s_expect_and_free (gt_test_create (broker, dealer, "c", "svc-1", 30000), GT_ERR_QUOTA_EXCEEDED);
    assert (gt_test_stat (broker, dealer, "errors_quota_exceeded") == 2);
    free (first);
    zsock_destroy (&dealer);
    gt_test_broker_stop (&broker);
    gt_config_destroy (&config);
}

//  --------------------------------------------------------------------------
//  Idempotent CREATE

static void
s_test_idempotent (void)
{
    gt_config_t *config = gt_test_config ();
    gt_test_broker_t *broker = gt_test_broker_start (config);
    zsock_t *dealer = gt_test_dealer (broker);

    gt_msg_t request = gt_test_request (GT_CMD_CREATE);
    request.object_id = "blob-1";
    request.service_id = "uploader";
    request.idempotency_key = "upload-1";
    char *first = s_lease_id (gt_test_call (broker, dealer, &request));
    request.rid = 0;
    char *again = s_lease_id (gt_test_call (broker, dealer, &request));
    assert (streq (first, again));
    assert (gt_test_stat (broker, dealer, "leases_created") == 1);
    //  Still the same lease after it ended
    s_expect_and_free (gt_test_release (broker, dealer, first, "uploader", false), GT_OK);
    request.rid = 0;
    gt_msg_t *reply = gt_test_call (broker, dealer, &request);
    s_expect (reply, GT_OK);
    assert (streq (reply->lease->id, first) && reply->lease->state == GT_STATE_RELEASED);
    gt_msg_destroy (&reply);
    //  Same key, other object: CONFLICT; same key, other service: new lease
    request.rid = 0;
    request.object_id = "blob-2";
    s_expect_and_free (gt_test_call (broker, dealer, &request), GT_ERR_CONFLICT);
    request.rid = 0;
    request.service_id = "someone-else";
    char *other = s_lease_id (gt_test_call (broker, dealer, &request));
    assert (!streq (other, first));
    assert (gt_test_stat (broker, dealer, "leases_created") == 2);
    free (first);
    free (again);
    free (other);
    zsock_destroy (&dealer);
    gt_test_broker_stop (&broker);
    gt_config_destroy (&config);
}

//  --------------------------------------------------------------------------
//  Several references to one object; retain

//  Create a marker lease and wait for its event: every event published
//  before it has arrived by then.  Returns the marker's lease id.
static char *
s_marker (gt_test_broker_t *broker, zsock_t *dealer, zsock_t *sub, gt_msg_t **seen, size_t *seen_count)
{
    static int counter = 0;
    char object [32];
    snprintf (object, sizeof (object), "marker-%d", counter++);
    char *id = s_lease_id (gt_test_create (broker, dealer, object, "marker", 60000));
    while (true) {
        gt_msg_t *event = gt_test_event (sub, GT_TEST_TIMEOUT, NULL);
        assert (event);
        if (event->event.kind == GT_EVENT_LEASE_CREATED && streq (event->event.lease.id, id)) {
            gt_msg_destroy (&event);
            return id;
        }
        assert (*seen_count < 64);
        seen [(*seen_count)++] = event;
    }
}

static size_t
s_count_seen (gt_msg_t **seen, size_t count, gt_event_kind_t kind, const char *object_id)
{
    size_t found = 0;
    for (size_t i = 0; i < count; i++)
        found += seen [i]->event.kind == kind && streq (seen [i]->event.lease.object_id, object_id);
    return found;
}

static void
s_free_seen (gt_msg_t **seen, size_t *count)
{
    for (size_t i = 0; i < *count; i++)
        gt_msg_destroy (&seen [i]);
    *count = 0;
}

static void
s_test_references (void)
{
    gt_config_t *config = gt_test_config ();
    gt_test_broker_t *broker = gt_test_broker_start (config);
    zsock_t *dealer = gt_test_dealer (broker);
    zsock_t *sub = gt_test_sub (broker, "");
    gt_msg_t *seen [64];
    size_t seen_count = 0;

    char *a = s_lease_id (gt_test_create (broker, dealer, "shared-blob", "service-a", 30000));
    char *b = s_lease_id (gt_test_create (broker, dealer, "shared-blob", "service-b", 30000));
    //  The first reference ends: its own event, nothing else
    s_expect_and_free (gt_test_release (broker, dealer, a, "service-a", false), GT_OK);
    free (s_marker (broker, dealer, sub, seen, &seen_count));
    assert (s_count_seen (seen, seen_count, GT_EVENT_LEASE_RELEASED, "shared-blob") == 1);
    assert (s_count_seen (seen, seen_count, GT_EVENT_OBJECT_RECLAIMED, "shared-blob") == 0);
    s_free_seen (seen, &seen_count);
    //  The last one ends: reclaimed exactly once, after its lease event
    s_expect_and_free (gt_test_release (broker, dealer, b, "service-b", false), GT_OK);
    free (s_marker (broker, dealer, sub, seen, &seen_count));
    assert (seen_count == 2);
    assert (seen [0]->event.kind == GT_EVENT_LEASE_RELEASED && streq (seen [0]->event.lease.id, b));
    assert (seen [1]->event.kind == GT_EVENT_OBJECT_RECLAIMED && streq (seen [1]->event.lease.id, b));
    assert (seen [1]->event.reason == GT_REASON_RELEASED && seen [1]->event.lease.fence == 1);
    s_free_seen (seen, &seen_count);

    //  Retain: the last reference goes without a reclaim; a new life follows
    char *c = s_lease_id (gt_test_create (broker, dealer, "shared-blob", "service-a", 30000));
    gt_msg_t *reply = gt_test_get (broker, dealer, c);
    assert (reply->lease->fence == 2);
    gt_msg_destroy (&reply);
    char *d = s_lease_id (gt_test_create (broker, dealer, "shared-blob", "service-b", 30000));
    s_expect_and_free (gt_test_release (broker, dealer, c, "service-a", true), GT_OK);
    s_expect_and_free (gt_test_release (broker, dealer, d, "service-b", true), GT_OK);
    free (s_marker (broker, dealer, sub, seen, &seen_count));
    assert (s_count_seen (seen, seen_count, GT_EVENT_LEASE_RELEASED, "shared-blob") == 2);
    assert (s_count_seen (seen, seen_count, GT_EVENT_OBJECT_RECLAIMED, "shared-blob") == 0);
    s_free_seen (seen, &seen_count);
    char *e = s_lease_id (gt_test_create (broker, dealer, "shared-blob", "service-a", 30000));
    reply = gt_test_get (broker, dealer, e);
    assert (reply->lease->fence == 3);
    gt_msg_destroy (&reply);
    assert (gt_test_stat (broker, dealer, "objects_reclaimed") == 1);
    free (a);
    free (b);
    free (c);
    free (d);
    free (e);
    zsock_destroy (&sub);
    zsock_destroy (&dealer);
    gt_test_broker_stop (&broker);
    gt_config_destroy (&config);
}

//  --------------------------------------------------------------------------
//  Grace period

static void
s_test_grace (void)
{
    gt_config_t *config = gt_test_config ();
    config->grace_ms = 1000;
    gt_test_broker_t *broker = gt_test_broker_start (config);
    zsock_t *dealer = gt_test_dealer (broker);
    zsock_t *sub = gt_test_sub (broker, "");

    //  The reclaim waits out the grace period
    char *a = s_lease_id (gt_test_create (broker, dealer, "session-1", "ws", 50));
    gt_msg_t *expired = gt_test_await_event (sub, GT_EVENT_LEASE_EXPIRED, a, GT_TEST_TIMEOUT);
    assert (expired);
    gt_msg_t *reclaimed = gt_test_await_event (sub, GT_EVENT_OBJECT_RECLAIMED, a, GT_TEST_TIMEOUT);
    assert (reclaimed);
    assert (reclaimed->event.at >= expired->event.at + config->grace_ms);
    assert (reclaimed->event.reason == GT_REASON_EXPIRED);
    gt_msg_destroy (&expired);
    gt_msg_destroy (&reclaimed);

    //  A new lease during the grace period cancels the reclaim: same life
    char *b = s_lease_id (gt_test_create (broker, dealer, "session-2", "ws", 50));
    expired = gt_test_await_event (sub, GT_EVENT_LEASE_EXPIRED, b, GT_TEST_TIMEOUT);
    assert (expired);
    uint64_t fence = expired->event.lease.fence;
    gt_msg_destroy (&expired);
    gt_msg_t *reply = gt_test_create (broker, dealer, "session-2", "ws", 30000);
    s_expect (reply, GT_OK);
    assert (reply->lease->fence == fence);
    char *c = strdup (reply->lease->id);
    gt_msg_destroy (&reply);
    assert (gt_test_stat (broker, dealer, "pending_reclaims") == 0);
    //  When c ends, the object is reclaimed once, reporting c
    s_expect_and_free (gt_test_release (broker, dealer, c, "ws", false), GT_OK);
    reclaimed = gt_test_event (sub, GT_TEST_TIMEOUT, NULL);
    while (reclaimed && reclaimed->event.kind != GT_EVENT_OBJECT_RECLAIMED) {
        gt_msg_destroy (&reclaimed);
        reclaimed = gt_test_event (sub, GT_TEST_TIMEOUT, NULL);
    }
    assert (reclaimed);
    assert (streq (reclaimed->event.lease.id, c));
    assert (reclaimed->event.reason == GT_REASON_RELEASED);
    assert (reclaimed->event.at >= reclaimed->event.lease.expires_at + config->grace_ms);
    gt_msg_destroy (&reclaimed);
    assert (gt_test_stat (broker, dealer, "objects_reclaimed") == 2);
    free (a);
    free (b);
    free (c);
    zsock_destroy (&sub);
    zsock_destroy (&dealer);
    gt_test_broker_stop (&broker);
    gt_config_destroy (&config);
}

//  --------------------------------------------------------------------------
//  Expiry timing

static void
s_test_expiry (void)
{
    gt_config_t *config = gt_test_config ();
    gt_test_broker_t *broker = gt_test_broker_start (config);
    zsock_t *dealer = gt_test_dealer (broker);
    zsock_t *sub = gt_test_sub (broker, "cache\x1f" "expired.");
    enum { COUNT = 30 };
    char *ids [COUNT];
    for (int i = 0; i < COUNT; i++) {
        char object [32];
        snprintf (object, sizeof (object), "cache-%d", i);
        gt_msg_t *reply = gt_test_create (broker, dealer, object, "cache", 50 + (uint64_t) i * 7);
        assert (reply->lease->expires_at == reply->lease->created_at + 50 + (uint64_t) i * 7);
        ids [i] = s_lease_id (reply);
    }
    for (int received = 0; received < COUNT; received++) {
        gt_msg_t *event = gt_test_event (sub, GT_TEST_TIMEOUT, NULL);
        assert (event && event->event.kind == GT_EVENT_LEASE_EXPIRED);
        uint64_t arrived = gt_test_now ();
        const gt_lease_info_t *lease = &event->event.lease;
        //  Never before the deadline; within the bound after it
        assert (event->event.at >= lease->expires_at);
        assert (arrived + 1 >= lease->expires_at);     //  +1: clocks read apart
        assert (event->event.at - lease->expires_at <= S_EXPIRY_BOUND_MS);
        assert (lease->state == GT_STATE_EXPIRED);
        gt_msg_destroy (&event);
    }
    //  Every one was on time by the broker's own measure
    assert (gt_test_stat (broker, dealer, "leases_expired") == COUNT);
    assert (gt_test_stat (broker, dealer, "expiry_late_max_ms") <= S_EXPIRY_BOUND_MS);
    for (int i = 0; i < COUNT; i++)
        free (ids [i]);
    zsock_destroy (&sub);
    zsock_destroy (&dealer);
    gt_test_broker_stop (&broker);
    gt_config_destroy (&config);
}

//  --------------------------------------------------------------------------
//  RENEW racing expiry: exactly one outcome

static void
s_test_race (void)
{
    gt_config_t *config = gt_test_config ();
    gt_test_broker_t *broker = gt_test_broker_start (config);
    zsock_t *dealer = gt_test_dealer (broker);
    zsock_t *sub = gt_test_sub (broker, "");
    int renewed = 0, ended = 0;
    for (int round = 0; round < 24; round++) {
        char object [32];
        snprintf (object, sizeof (object), "racer-%d", round);
        gt_msg_t *reply = gt_test_create (broker, dealer, object, "racer", 50);
        uint64_t expires_at = reply->lease->expires_at;
        char *id = s_lease_id (reply);
        gt_msg_t *created = gt_test_await_event (sub, GT_EVENT_LEASE_CREATED, id, GT_TEST_TIMEOUT);
        assert (created);
        gt_msg_destroy (&created);
        //  Aim the RENEW around the deadline (-6 .. +5 ms): wait on the
        //  event socket until then (an event of this lease may come first)
        int64_t aim = (int64_t) expires_at - 6 + round % 12;
        gt_msg_t *early = NULL;
        int64_t wait = aim - (int64_t) gt_test_now ();
        if (wait > 0)
            early = gt_test_event (sub, (int) wait, NULL);
        reply = gt_test_renew (broker, dealer, id, "racer", 60000);
        //  Collect this lease's events up to a marker
        gt_msg_t *seen [64];
        size_t seen_count = 0;
        if (early)
            seen [seen_count++] = early;
        free (s_marker (broker, dealer, sub, seen, &seen_count));
        size_t expiries = 0, renewals = 0;
        for (size_t i = 0; i < seen_count; i++)
            if (streq (seen [i]->event.lease.id, id)) {
                expiries += seen [i]->event.kind == GT_EVENT_LEASE_EXPIRED;
                renewals += seen [i]->event.kind == GT_EVENT_LEASE_RENEWED;
            }
        if (reply->code == GT_OK) {
            assert (expiries == 0 && renewals == 1);
            assert (reply->lease->state == GT_STATE_ACTIVE);
            renewed++;
        }
        else {
            s_expect (reply, GT_ERR_LEASE_ENDED);
            assert (expiries == 1 && renewals == 0);
            ended++;
        }
        gt_msg_destroy (&reply);
        s_free_seen (seen, &seen_count);
        free (id);
    }
    //  Both outcomes are legal; the assertions above check each is whole
    printf ("race: %d renewed, %d ended\n", renewed, ended);
    zsock_destroy (&sub);
    zsock_destroy (&dealer);
    gt_test_broker_stop (&broker);
    gt_config_destroy (&config);
}

//  --------------------------------------------------------------------------
//  Malformed input

static void
s_send_raw (zsock_t *dealer, const void *data, size_t size)
{
    const void *frames [] = { data };
    size_t sizes [] = { size };
    gt_test_send_frames (dealer, frames, sizes, 1);
}

static gt_msg_t *
s_recv_reply (zsock_t *dealer)
{
    zmsg_t *msg = gt_test_recv (dealer, GT_TEST_TIMEOUT);
    assert (msg);
    gt_msg_t *reply = gt_test_decode_reply (msg);
    zmsg_destroy (&msg);
    return reply;
}

//  After each bad request, a good one on the same socket still works.
static void
s_still_serving (gt_test_broker_t *broker, zsock_t *dealer)
{
    s_expect_and_free (gt_test_simple (broker, dealer, GT_CMD_HEALTH), GT_OK);
}

static void
s_pack_header (msgpack_packer *pk, size_t entries, uint64_t version, uint64_t rid, const char *cmd)
{
    msgpack_pack_map (pk, entries);
    msgpack_pack_str (pk, 1);
    msgpack_pack_str_body (pk, "v", 1);
    msgpack_pack_uint64 (pk, version);
    msgpack_pack_str (pk, 3);
    msgpack_pack_str_body (pk, "rid", 3);
    msgpack_pack_uint64 (pk, rid);
    msgpack_pack_str (pk, 3);
    msgpack_pack_str_body (pk, "cmd", 3);
    msgpack_pack_str (pk, strlen (cmd));
    msgpack_pack_str_body (pk, cmd, strlen (cmd));
}

static void
s_test_malformed (void)
{
    gt_config_t *config = gt_test_config ();
    gt_test_broker_t *broker = gt_test_broker_start (config);
    zsock_t *dealer = gt_test_dealer (broker);
    msgpack_sbuffer buffer;
    msgpack_packer pk;
    gt_msg_t *reply;

    //  Garbage bytes
    s_send_raw (dealer, "\xc1\xff\x00garbage", 10);
    reply = s_recv_reply (dealer);
    assert (reply->rid == 0);
    s_expect_and_free (reply, GT_ERR_INVALID_ARGUMENT);
    s_still_serving (broker, dealer);

    //  Not a map
    msgpack_sbuffer_init (&buffer);
    msgpack_packer_init (&pk, &buffer, msgpack_sbuffer_write);
    msgpack_pack_array (&pk, 2);
    msgpack_pack_uint64 (&pk, 1);
    msgpack_pack_uint64 (&pk, 2);
    s_send_raw (dealer, buffer.data, buffer.size);
    msgpack_sbuffer_destroy (&buffer);
    reply = s_recv_reply (dealer);
    assert (reply->rid == 0);
    s_expect_and_free (reply, GT_ERR_INVALID_ARGUMENT);
    s_still_serving (broker, dealer);

    //  A map with trailing bytes
    msgpack_sbuffer_init (&buffer);
    msgpack_packer_init (&pk, &buffer, msgpack_sbuffer_write);
    s_pack_header (&pk, 3, 1, 41, "HEALTH");
    msgpack_pack_nil (&pk);
    s_send_raw (dealer, buffer.data, buffer.size);
    msgpack_sbuffer_destroy (&buffer);
    s_expect_and_free (s_recv_reply (dealer), GT_ERR_INVALID_ARGUMENT);
    s_still_serving (broker, dealer);

    //  Wrong type: lease_id as an integer
    msgpack_sbuffer_init (&buffer);
    msgpack_packer_init (&pk, &buffer, msgpack_sbuffer_write);
    s_pack_header (&pk, 4, 1, 42, "GET");
    msgpack_pack_str (&pk, 8);
    msgpack_pack_str_body (&pk, "lease_id", 8);
    msgpack_pack_uint64 (&pk, 123);
    s_send_raw (dealer, buffer.data, buffer.size);
    msgpack_sbuffer_destroy (&buffer);
    reply = s_recv_reply (dealer);
    assert (reply->rid == 42);
    s_expect_and_free (reply, GT_ERR_INVALID_ARGUMENT);
    s_still_serving (broker, dealer);

    //  Unknown command
    msgpack_sbuffer_init (&buffer);
    msgpack_packer_init (&pk, &buffer, msgpack_sbuffer_write);
    s_pack_header (&pk, 3, 1, 43, "FROBNICATE");
    s_send_raw (dealer, buffer.data, buffer.size);
    msgpack_sbuffer_destroy (&buffer);
    reply = s_recv_reply (dealer);
    assert (reply->rid == 43);
    s_expect_and_free (reply, GT_ERR_UNSUPPORTED_COMMAND);
    s_still_serving (broker, dealer);

    //  Missing required field
    msgpack_sbuffer_init (&buffer);
    msgpack_packer_init (&pk, &buffer, msgpack_sbuffer_write);
    s_pack_header (&pk, 3, 1, 44, "GET");
    s_send_raw (dealer, buffer.data, buffer.size);
    msgpack_sbuffer_destroy (&buffer);
    reply = s_recv_reply (dealer);
    assert (reply->rid == 44);
    s_expect_and_free (reply, GT_ERR_INVALID_ARGUMENT);
    s_still_serving (broker, dealer);

    //  Version 2
    msgpack_sbuffer_init (&buffer);
    msgpack_packer_init (&pk, &buffer, msgpack_sbuffer_write);
    s_pack_header (&pk, 3, 2, 45, "HEALTH");
    s_send_raw (dealer, buffer.data, buffer.size);
    msgpack_sbuffer_destroy (&buffer);
    reply = s_recv_reply (dealer);
    s_expect (reply, GT_ERR_UNSUPPORTED_VERSION);
    assert (reply->version_count == 1 && reply->versions [0] == 1);
    gt_msg_destroy (&reply);
    s_still_serving (broker, dealer);

    //  Empty frame
    s_send_raw (dealer, "", 0);
    reply = s_recv_reply (dealer);
    assert (reply->rid == 0);
    s_expect_and_free (reply, GT_ERR_INVALID_ARGUMENT);
    s_still_serving (broker, dealer);

    //  Extra frames: an envelope, echoed in front of the reply
    gt_msg_t health = gt_test_request (GT_CMD_HEALTH);
    health.rid = 46;
    void *body;
    size_t body_size;
    assert (gt_msg_encode_alloc (&health, &body, &body_size) == 0);
    const void *frames [] = { "hop-1", "", body };
    size_t sizes [] = { 5, 0, body_size };
    gt_test_send_frames (dealer, frames, sizes, 3);
    free (body);
    zmsg_t *msg = gt_test_recv (dealer, GT_TEST_TIMEOUT);
    assert (msg && zmsg_size (msg) == 3);
    char *hop = zmsg_popstr (msg);
    assert (streq (hop, "hop-1"));
    zstr_free (&hop);
    zframe_t *empty = zmsg_pop (msg);
    assert (zframe_size (empty) == 0);
    zframe_destroy (&empty);
    reply = gt_test_decode_reply (msg);
    zmsg_destroy (&msg);
    assert (reply->rid == 46);
    s_expect_and_free (reply, GT_OK);
    //  Several frames of garbage
    const void *junk [] = { "a", "\xff\xfe", "", "\x93\x01\x02\x03" };
    size_t junk_sizes [] = { 1, 2, 0, 4 };
    gt_test_send_frames (dealer, junk, junk_sizes, 4);
    msg = gt_test_recv (dealer, GT_TEST_TIMEOUT);
    assert (msg && zmsg_size (msg) == 4);
    reply = gt_test_decode_reply (msg);
    zmsg_destroy (&msg);
    s_expect_and_free (reply, GT_ERR_INVALID_ARGUMENT);
    s_still_serving (broker, dealer);

    //  Oversize frame (> 1 MiB): ZeroMQ drops that connection; nothing
    //  reaches the broker's loop; a new socket is served
    uint64_t requests = gt_test_stat (broker, dealer, "requests");
    zsock_t *big = gt_test_dealer (broker);
    size_t huge = GT_MAX_BODY_SIZE + 64 * 1024;
    char *payload = (char *) calloc (1, huge);
    s_send_raw (big, payload, huge);
    free (payload);
    zsock_t *fresh = gt_test_dealer (broker);
    s_still_serving (broker, fresh);
    //  Only the STATS and HEALTH calls were counted, not the oversize one
    assert (gt_test_stat (broker, dealer, "requests") == requests + 2);
    zsock_destroy (&big);
    zsock_destroy (&fresh);
    assert (gt_test_stat (broker, dealer, "requests_malformed") == 9);
    zsock_destroy (&dealer);
    gt_test_broker_stop (&broker);
    gt_config_destroy (&config);
}

//  --------------------------------------------------------------------------
//  10,000 pipelined requests on one connection

static void
s_test_pipeline (void)
{
    gt_config_t *config = gt_test_config ();
    config->max_leases_per_service = 20000;
    gt_test_broker_t *broker = gt_test_broker_start (config);
    zsock_t *dealer = gt_test_dealer (broker);
    enum { COUNT = 10000 };
    //  Send them all first: CREATEs and GETs of unknown ids, alternating
    for (uint64_t rid = 1; rid <= COUNT; rid++) {
        gt_msg_t request;
        char object [32];
        if (rid % 2) {
            request = gt_test_request (GT_CMD_CREATE);
            snprintf (object, sizeof (object), "pipelined-%" PRIu64, rid);
            request.object_id = object;
            request.service_id = "pipeline";
            request.has_ttl = true;
            request.ttl_ms = 60000;     //  none expires during the test
        }
        else {
            request = gt_test_request (GT_CMD_GET);
            request.lease_id = "ffffffffffffffffffffffffffffffff";
        }
        request.rid = rid;
        void *data;
        size_t size;
        assert (gt_msg_encode_alloc (&request, &data, &size) == 0);
        s_send_raw (dealer, data, size);
        free (data);
    }
    //  Then every reply, each rid exactly once
    static bool answered [COUNT + 1];
    memset (answered, 0, sizeof (answered));
    for (size_t received = 0; received < COUNT; received++) {
        gt_msg_t *reply = s_recv_reply (dealer);
        assert (reply->rid >= 1 && reply->rid <= COUNT && !answered [reply->rid]);
        answered [reply->rid] = true;
        s_expect (reply, reply->rid % 2 ? GT_OK : GT_ERR_NOT_FOUND);
        gt_msg_destroy (&reply);
    }
    assert (gt_test_stat (broker, dealer, "active_leases") == COUNT / 2);
    assert (gt_test_stat (broker, dealer, "replies_dropped") == 0);
    zsock_destroy (&dealer);
    gt_test_broker_stop (&broker);
    gt_config_destroy (&config);
}

//  --------------------------------------------------------------------------
//  Events: sequence numbers without gaps; REPLAY and TOO_OLD

static void
s_test_events (void)
{
    gt_config_t *config = gt_test_config ();
    config->event_history = 8;
    gt_test_broker_t *broker = gt_test_broker_start (config);
    zsock_t *dealer = gt_test_dealer (broker);
    zsock_t *sub = gt_test_sub (broker, "");
    //  Leases that make every kind of event
    char *ids [10];
    for (int i = 0; i < 10; i++) {
        char object [32];
        snprintf (object, sizeof (object), "evented-%d", i);
        ids [i] = s_lease_id (gt_test_create (broker, dealer, object, "events", i < 5 ? 50 : 30000));
    }
    for (int i = 5; i < 10; i++) {
        s_expect_and_free (gt_test_renew (broker, dealer, ids [i], "events", 0), GT_OK);
        s_expect_and_free (gt_test_release (broker, dealer, ids [i], "events", false), GT_OK);
    }
    //  10 created, 5 renewed, 5 released + 5 reclaimed, 5 expired + 5 reclaimed
    size_t expected = 35, counted = 0;
    uint64_t previous = 0;
    while (counted < expected) {
        gt_msg_t *event = gt_test_event_all (sub, GT_TEST_TIMEOUT, NULL);
        assert (event);
        if (previous)
            assert (event->event.seq == previous + 1);
        previous = event->event.seq;
        if (streq (event->event.lease.service_id, "events"))
            counted++;
        gt_msg_destroy (&event);
    }
    uint64_t last_seq = previous;

    //  REPLAY within the history (8 events)
    gt_msg_t replay = gt_test_request (GT_CMD_REPLAY);
    replay.has_after_seq = true;
    replay.after_seq = last_seq - 3;
    gt_msg_t *reply = gt_test_call (broker, dealer, &replay);
    s_expect (reply, GT_OK);
    assert (reply->event_count == 3 && reply->last_seq == last_seq);
    for (size_t i = 0; i < 3; i++)
        assert (reply->events [i].seq == last_seq - 2 + i);
    gt_msg_destroy (&reply);
    replay.rid = 0;
    replay.after_seq = last_seq - 8;
    replay.has_limit = true;
    replay.limit = 2;
    reply = gt_test_call (broker, dealer, &replay);
    s_expect (reply, GT_OK);
    assert (reply->event_count == 2 && reply->events [0].seq == last_seq - 7);
    gt_msg_destroy (&reply);
    //  Past the history: TOO_OLD
    replay.rid = 0;
    replay.after_seq = last_seq - 9;
    s_expect_and_free (gt_test_call (broker, dealer, &replay), GT_ERR_TOO_OLD);
    replay.rid = 0;
    replay.after_seq = 0;
    s_expect_and_free (gt_test_call (broker, dealer, &replay), GT_ERR_TOO_OLD);
    //  At or past the newest: empty
    replay.rid = 0;
    replay.after_seq = last_seq;
    reply = gt_test_call (broker, dealer, &replay);
    s_expect (reply, GT_OK);
    assert (reply->events_present && reply->event_count == 0 && reply->last_seq == last_seq);
    gt_msg_destroy (&reply);
    replay.rid = 0;
    replay.after_seq = last_seq + 100;
    reply = gt_test_call (broker, dealer, &replay);
    s_expect (reply, GT_OK);
    assert (reply->event_count == 0);
    gt_msg_destroy (&reply);
    assert (gt_test_stat (broker, dealer, "last_seq") == last_seq);
    for (int i = 0; i < 10; i++)
        free (ids [i]);
    zsock_destroy (&sub);
    zsock_destroy (&dealer);
    gt_test_broker_stop (&broker);
    gt_config_destroy (&config);
}

//  --------------------------------------------------------------------------
//  LIST pagination

static void
s_test_list (void)
{
    gt_config_t *config = gt_test_config ();
    gt_test_broker_t *broker = gt_test_broker_start (config);
    zsock_t *dealer = gt_test_dealer (broker);
    enum { COUNT = 25 };
    char *ids [COUNT];
    for (int i = 0; i < COUNT; i++) {
        gt_msg_t request = gt_test_request (GT_CMD_CREATE);
        char object [32];
        snprintf (object, sizeof (object), "listed-%d", i);
        request.object_id = object;
        request.service_id = i % 5 ? "lister" : "someone-else";
        request.has_object_type = true;
        request.object_type = i % 2 ? GT_TYPE_CACHE_ENTRY : GT_TYPE_BLOB_STORAGE;
        ids [i] = s_lease_id (gt_test_call (broker, dealer, &request));
    }
    s_expect_and_free (gt_test_release (broker, dealer, ids [1], "lister", false), GT_OK);

    //  Everything, 4 per page, oldest first, each exactly once
    bool seen [COUNT] = { false };
    char *cursor = NULL;
    size_t total = 0, pages = 0;
    uint64_t last_created = 0;
    do {
        gt_msg_t list = gt_test_request (GT_CMD_LIST);
        list.has_limit = true;
        list.limit = 4;
        list.cursor = cursor;
        gt_msg_t *reply = gt_test_call (broker, dealer, &list);
        s_expect (reply, GT_OK);
        assert (reply->lease_count <= 4);
        for (size_t i = 0; i < reply->lease_count; i++) {
            assert (reply->leases [i].created_at >= last_created);
            last_created = reply->leases [i].created_at;
            int found = -1;
            for (int j = 0; j < COUNT; j++)
                if (streq (ids [j], reply->leases [i].id))
                    found = j;
            assert (found >= 0 && !seen [found]);
            seen [found] = true;
            total++;
        }
        zstr_free (&cursor);
        cursor = reply->cursor ? strdup (reply->cursor) : NULL;
        gt_msg_destroy (&reply);
        pages++;
    } while (cursor);
    assert (total == COUNT && pages >= 7);

    //  Filters combine
    gt_msg_t list = gt_test_request (GT_CMD_LIST);
    list.service_id = "lister";
    list.has_state = true;
    list.state = GT_STATE_ACTIVE;
    list.has_object_type = true;
    list.object_type = GT_TYPE_CACHE_ENTRY;
    gt_msg_t *reply = gt_test_call (broker, dealer, &list);
    s_expect (reply, GT_OK);
    //  odd i, not a multiple of 5, not the released #1: 3 7 9 11 13 17 19 21 23
    assert (reply->lease_count == 9);
    for (size_t i = 0; i < reply->lease_count; i++)
        assert (reply->leases [i].object_type == GT_TYPE_CACHE_ENTRY
             && streq (reply->leases [i].service_id, "lister"));
    gt_msg_destroy (&reply);
    list = gt_test_request (GT_CMD_LIST);
    list.object_id = "listed-3";
    reply = gt_test_call (broker, dealer, &list);
    s_expect (reply, GT_OK);
    assert (reply->lease_count == 1 && streq (reply->leases [0].id, ids [3]));
    gt_msg_destroy (&reply);
    list = gt_test_request (GT_CMD_LIST);
    list.has_state = true;
    list.state = GT_STATE_RELEASED;
    reply = gt_test_call (broker, dealer, &list);
    assert (reply->lease_count == 1 && streq (reply->leases [0].id, ids [1]));
    gt_msg_destroy (&reply);
    //  A cursor the broker cannot resume
    list = gt_test_request (GT_CMD_LIST);
    list.cursor = "not-a-cursor";
    s_expect_and_free (gt_test_call (broker, dealer, &list), GT_ERR_INVALID_ARGUMENT);
    for (int i = 0; i < COUNT; i++)
        free (ids [i]);
    zsock_destroy (&dealer);
    gt_test_broker_stop (&broker);
    gt_config_destroy (&config);
}

//  --------------------------------------------------------------------------
//  Durability seam: a failing store (always the "test" store here)

static void
s_test_store (void)
{
    gt_config_t *config = gt_test_config ();
    gt_config_set_storage (config, "test");
    gt_test_broker_t *broker = gt_test_broker_start (config);
    zsock_t *dealer = gt_test_dealer (broker);
    zsock_t *sub = gt_test_sub (broker, "");

    char *kept = s_lease_id (gt_test_create (broker, dealer, "kept", "durable", 30000));
    gt_msg_t *event = gt_test_await_event (sub, GT_EVENT_LEASE_CREATED, kept, GT_TEST_TIMEOUT);
    uint64_t seq = event->event.seq;
    gt_msg_destroy (&event);

    //  The store fails the next batch: UNAVAILABLE, nothing changed
    char *ok = gt_test_broker_command (broker, "STORE", "FAIL", "1");
    assert (streq (ok, "0"));
    zstr_free (&ok);
    gt_msg_t *reply = gt_test_create (broker, dealer, "lost", "durable", 30000);
    s_expect (reply, GT_ERR_UNAVAILABLE);
    gt_msg_destroy (&reply);
    gt_msg_t list = gt_test_request (GT_CMD_LIST);
    list.service_id = "durable";
    reply = gt_test_call (broker, dealer, &list);
    s_expect (reply, GT_OK);
    assert (reply->lease_count == 1 && streq (reply->leases [0].id, kept));
    gt_msg_destroy (&reply);
    assert (gt_test_stat (broker, dealer, "active_leases") == 1);
    assert (gt_test_stat (broker, dealer, "store_batches_failed") == 1);

    //  Served again; the failed batch's event number is reused: no gap
    char *next = s_lease_id (gt_test_create (broker, dealer, "next", "durable", 30000));
    event = gt_test_event (sub, GT_TEST_TIMEOUT, NULL);
    assert (event && event->event.kind == GT_EVENT_LEASE_CREATED);
    assert (streq (event->event.lease.id, next) && event->event.seq == seq + 1);
    gt_msg_destroy (&event);

    //  Held completions hold replies (STATS is answered at once)
    ok = gt_test_broker_command (broker, "STORE", "HOLD", "1");
    zstr_free (&ok);
    gt_msg_t create = gt_test_request (GT_CMD_CREATE);
    create.rid = 9001;
    create.object_id = "held";
    create.service_id = "durable";
    void *data;
    size_t size;
    assert (gt_msg_encode_alloc (&create, &data, &size) == 0);
    s_send_raw (dealer, data, size);
    free (data);
    //  Ask STATS until the CREATE's batch shows as in flight; its reply
    //  must not come meanwhile
    uint64_t in_flight = 0;
    int64_t deadline = zclock_mono () + GT_TEST_TIMEOUT;
    for (uint64_t rid = 9002; in_flight == 0 && zclock_mono () < deadline; rid++) {
        gt_msg_t stats = gt_test_request (GT_CMD_STATS);
        stats.rid = rid;
        assert (gt_msg_encode_alloc (&stats, &data, &size) == 0);
        s_send_raw (dealer, data, size);
        free (data);
        reply = s_recv_reply (dealer);
        assert (reply->rid == rid);
        for (size_t i = 0; i < reply->stat_count; i++)
            if (streq (reply->stats [i].name, "store_batches_in_flight"))
                in_flight = reply->stats [i].value;
        gt_msg_destroy (&reply);
    }
    assert (in_flight >= 1);
    ok = gt_test_broker_command (broker, "STORE", "HOLD", "0");
    zstr_free (&ok);
    reply = s_recv_reply (dealer);
    assert (reply->rid == 9001);
    s_expect_and_free (reply, GT_OK);

    //  The memory store refuses test commands
    free (kept);
    free (next);
    zsock_destroy (&sub);
    zsock_destroy (&dealer);
    gt_test_broker_stop (&broker);
    gt_config_set_storage (config, "memory");
    broker = gt_test_broker_start (config);
    ok = gt_test_broker_command (broker, "STORE", "FAIL", "1");
    assert (streq (ok, "-1"));
    zstr_free (&ok);
    gt_test_broker_stop (&broker);
    gt_config_destroy (&config);
}

//  --------------------------------------------------------------------------
//  Metrics after a failed batch (the test store): the batch is rolled back,
//  the by-type gauges are recounted, and /metrics shows the failure

//  The value of the sample line "name value" in an exposition, or -1.
static double
s_sample (const char *text, const char *name)
{
    char *pattern = zsys_sprintf ("\n%s ", name);
    const char *found = strstr (text, pattern);
    double value = found ? atof (found + strlen (pattern)) : -1;
    zstr_free (&pattern);
    return value;
}

static void
s_test_store_metrics (void)
{
    gt_config_t *config = gt_test_config ();
    gt_config_set_storage (config, "test");
    gt_test_broker_t *broker = gt_test_broker_start (config);
    char *reply_text = gt_test_broker_command (broker, "METRICS", "http://127.0.0.1:*", NULL);
    int port = reply_text ? atoi (reply_text) : -1;
    assert (port > 0);
    zstr_free (&reply_text);
    zsock_t *dealer = gt_test_dealer (broker);

    gt_msg_t create = gt_test_request (GT_CMD_CREATE);
    create.object_id = "row-1";
    create.object_type = GT_TYPE_DATABASE_ROW;
    create.has_object_type = true;
    create.service_id = "svc";
    create.ttl_ms = 60000;
    create.has_ttl = true;
    s_expect_and_free (gt_test_call (broker, dealer, &create), GT_OK);
    reply_text = gt_test_broker_command (broker, "STORE", "FAIL", "1");
    assert (streq (reply_text, "0"));
    zstr_free (&reply_text);
    create.rid = 0;
    create.object_id = "row-2";
    s_expect_and_free (gt_test_call (broker, dealer, &create), GT_ERR_UNAVAILABLE);
    assert (gt_test_stat (broker, dealer, "active_leases_database_row") == 1);
    int status = 0;
    char *text = gt_http_client_request (port, "GET", "/metrics", &status, NULL);
    assert (text && status == 200);
    assert (s_sample (text, "gc_active_leases_by_type{object_type=\"DATABASE_ROW\"}") == 1);
    assert (s_sample (text, "gc_store_batches_failed_total") == 1);
    assert (s_sample (text, "gc_request_errors_total{code=\"UNAVAILABLE\"}") == 1);
    free (text);
    zsock_destroy (&dealer);
    gt_test_broker_stop (&broker);
    gt_config_destroy (&config);
}

//  --------------------------------------------------------------------------
//  Per connection: requests waiting for their reply are bounded; reads are
//  answered while a batch is held (on the test store, holding completions)

static void
s_send_create (zsock_t *dealer, uint64_t rid, char *object)
{
    gt_msg_t create = gt_test_request (GT_CMD_CREATE);
    create.rid = rid;
    create.object_id = object;
    create.service_id = "peers";
    void *data;
    size_t size;
    assert (gt_msg_encode_alloc (&create, &data, &size) == 0);
    s_send_raw (dealer, data, size);
    free (data);
}

static void
s_test_peers (void)
{
    gt_config_t *config = gt_test_config ();
    gt_config_set_storage (config, "test");
    config->connection_max_pending = 5;
    gt_test_broker_t *broker = gt_test_broker_start (config);
    zsock_t *greedy = gt_test_dealer (broker);
    zsock_t *other = gt_test_dealer (broker);
    char *known = s_lease_id (gt_test_create (broker, other, "known", "peers", 30000));

    char *ok = gt_test_broker_command (broker, "STORE", "HOLD", "1");
    assert (streq (ok, "0"));
    zstr_free (&ok);
    //  Five CREATEs wait for their batch; the next three are refused unapplied
    enum { SENT = 8, LIMIT = 5 };
    for (uint64_t rid = 1; rid <= SENT; rid++) {
        char object [32];
        snprintf (object, sizeof (object), "greedy-%" PRIu64, rid);
        s_send_create (greedy, rid, object);
    }
    bool refused [SENT + 1] = { false };
    for (int count = 0; count < SENT - LIMIT; count++) {
        gt_msg_t *reply = s_recv_reply (greedy);
        assert (reply->rid > LIMIT && reply->rid <= SENT && !refused [reply->rid]);
        s_expect (reply, GT_ERR_UNAVAILABLE);
        assert (strstr (reply->message, "too many unread replies"));
        refused [reply->rid] = true;
        gt_msg_destroy (&reply);
    }
    //  Another connection is not limited, and a read is answered while
    //  the batches are held
    gt_msg_t *reply = gt_test_get (broker, other, known);
    s_expect_and_free (reply, GT_OK);
    s_send_create (other, 77, "other-held");
    assert (gt_test_stat (broker, other, "requests_refused_unread") == SENT - LIMIT);
    assert (gt_test_stat (broker, other, "active_leases") == 1 + LIMIT + 1);

    //  Released: the five and the other's are answered OK
    ok = gt_test_broker_command (broker, "STORE", "HOLD", "0");
    zstr_free (&ok);
    for (int count = 0; count < LIMIT; count++) {
        reply = s_recv_reply (greedy);
        assert (reply->rid >= 1 && reply->rid <= LIMIT);
        s_expect_and_free (reply, GT_OK);
    }
    reply = s_recv_reply (other);
    assert (reply->rid == 77);
    s_expect_and_free (reply, GT_OK);
    //  And the greedy connection is served again
    s_expect_and_free (gt_test_create (broker, greedy, "greedy-again", "peers", 30000), GT_OK);
    free (known);
    zsock_destroy (&greedy);
    zsock_destroy (&other);
    gt_test_broker_stop (&broker);
    gt_config_destroy (&config);
}

//  --------------------------------------------------------------------------

typedef struct {
    const char *name;               //  area, as registered with ctest
    void (*run) (void);             //  the test
} s_area_t;

static const s_area_t s_areas [] = {
    { "lifecycle", s_test_lifecycle },
    { "ownership", s_test_ownership },
    { "bounds", s_test_bounds },
    { "cap", s_test_broker_cap },
    { "idempotent", s_test_idempotent },
    { "references", s_test_references },
    { "grace", s_test_grace },
    { "expiry", s_test_expiry },
    { "race", s_test_race },
    { "malformed", s_test_malformed },
    { "pipeline", s_test_pipeline },
    { "events", s_test_events },
    { "list", s_test_list },
    { "store", s_test_store },
    { "store_metrics", s_test_store_metrics },
    { "peers", s_test_peers },
};

int
main (int argc, char *argv [])
{
    if (argc < 2) {
        fprintf (stderr, "usage: test_broker AREA|all\n");
        return 2;
    }
    bool found = false;
    for (size_t i = 0; i < sizeof (s_areas) / sizeof (s_areas [0]); i++)
        if (streq (argv [1], "all") || streq (argv [1], s_areas [i].name)) {
            printf ("test_broker %s (store %s)\n", s_areas [i].name,
                    getenv ("GT_TEST_STORE") ? getenv ("GT_TEST_STORE") : "memory");
            s_areas [i].run ();
            found = true;
        }
    if (!found) {
        fprintf (stderr, "test_broker: no area '%s'\n", argv [1]);
        return 2;
    }
    return 0;
}

/*  test_delivery.c — cleanup callbacks end to end: an embedded broker
    (store from GT_TEST_STORE), raw GTLP/1 over TCP loopback, and a real
    HTTP server (tests/gt_http_server, libmicrohttpd) as the cleanup
    endpoint.  Nothing is mocked: the broker's delivery engine makes real
    HTTP requests with libcurl.

    Usage: test_delivery CASE     (one ctest per case; "all" runs them all)

    Waits are on the HTTP server's records (condition variable with a
    deadline) or on GET polled until a deadline; never a sleep as
    synchronisation.  */
#include "gt_test_util.h"
#include "gt_webhook.h"
#include "gt_http_server.h"
#include "gt_store.h"
#include "gt_test_store.h"

#define S_SECRET    "test-secret-\xe2\x98\x95"

//  --------------------------------------------------------------------------
//  Helpers

static gt_config_t *
s_config (void)
{
    gt_config_t *config = gt_test_config ();
    config->cleanup_timeout_ms = 5000;
    config->cleanup_retry_delay_ms = 10;     //  retries come fast
    return config;
}

static void
s_expect (gt_msg_t *reply, gt_code_t code)
{
    assert (reply);
    if (reply->code != code)
        fprintf (stderr, "expected %s, got %s: %s\n", gt_code_name (code), gt_code_name (reply->code),
                 reply->message ? reply->message : "");
    assert (reply->code == code);
}

//  CREATE a lease with a cleanup; returns its id (caller frees).
static char *
s_create (gt_test_broker_t *broker, zsock_t *dealer, const char *object, const char *service,
          const char *url, const char *payload, int max_retries)
{
    gt_msg_t request = gt_test_request (GT_CMD_CREATE);
    request.object_id = (char *) object;
    request.object_type = GT_TYPE_TEMPORARY_FILE;
    request.has_object_type = true;
    request.service_id = (char *) service;
    request.has_ttl = true;
    request.ttl_ms = 60000;
    gt_meta_entry_t entries [] = { { "path", "/tmp/x" }, { "owner", "alice" } };
    request.has_metadata = true;
    request.metadata.entries = entries;
    request.metadata.count = 2;
    gt_cleanup_t cleanup = { (char *) url, (char *) payload, max_retries >= 0,
                             max_retries >= 0 ? (uint32_t) max_retries : 0, false, 0 };
    request.cleanup = &cleanup;
    gt_msg_t *reply = gt_test_call (broker, dealer, &request);
    s_expect (reply, GT_OK);
    //  Every LEASE shows explicit retry settings; no callback state yet
    assert (reply->lease->cleanup && reply->lease->cleanup->has_max_retries);
    assert (reply->lease->cleanup->has_retry_delay);
    assert (reply->lease->cleanup_status == GT_CLEANUP_NONE);
    char *id = strdup (reply->lease->id);
    gt_msg_destroy (&reply);
    return id;
}

static void
s_release (gt_test_broker_t *broker, zsock_t *dealer, const char *lease_id, const char *service)
{
    gt_msg_t *reply = gt_test_release (broker, dealer, lease_id, service, false);
    s_expect (reply, GT_OK);
    gt_msg_destroy (&reply);
}

//  GET until the lease's callback has this status; returns the reply.
static gt_msg_t *
s_await_status (gt_test_broker_t *broker, zsock_t *dealer, const char *lease_id,
                gt_cleanup_status_t status)
{
    int64_t deadline = zclock_mono () + 4 * GT_TEST_TIMEOUT;
    gt_msg_t *reply = NULL;
    while (zclock_mono () < deadline) {
        reply = gt_test_get (broker, dealer, lease_id);
        s_expect (reply, GT_OK);
        if (reply->lease->cleanup_status == status)
            return reply;
        gt_msg_destroy (&reply);
        zclock_sleep (2);           //  polling interval, not synchronisation
    }
    fprintf (stderr, "lease %s never reached cleanup_status %s\n", lease_id,
             gt_cleanup_status_name (status));
    assert (false);
    return NULL;
}

//  GET until the lease is forgotten (NOT_FOUND).
static void
s_await_purged (gt_test_broker_t *broker, zsock_t *dealer, const char *lease_id)
{
    int64_t deadline = zclock_mono () + 4 * GT_TEST_TIMEOUT;
    while (zclock_mono () < deadline) {
        gt_msg_t *reply = gt_test_get (broker, dealer, lease_id);
        gt_code_t code = reply->code;
        gt_msg_destroy (&reply);
        if (code == GT_ERR_NOT_FOUND)
            return;
        zclock_sleep (2);
    }
    assert (false);
}

static gt_msg_t *
s_retry (gt_test_broker_t *broker, zsock_t *dealer, const char *lease_id)
{
    gt_msg_t request = gt_test_request (GT_CMD_RETRY);
    request.lease_id = (char *) lease_id;
    gt_msg_t *reply = gt_test_call (broker, dealer, &request);
    assert (reply);
    return reply;
}

//  The seq of the object.reclaimed event of a lease.
static uint64_t
s_reclaimed_seq (zsock_t *sub, const char *lease_id)
{
    gt_msg_t *event = gt_test_await_event (sub, GT_EVENT_OBJECT_RECLAIMED, lease_id, GT_TEST_TIMEOUT);
    assert (event);
    uint64_t seq = event->event.seq;
    gt_msg_destroy (&event);
    return seq;
}

//  Records of the server for one path, in arrival order
static size_t
s_requests (gt_http_server_t *server, const char *path, const gt_http_request_t **out, size_t max)
{
    size_t count = 0;
    for (size_t index = 0; index < gt_http_server_count (server); index++) {
        const gt_http_request_t *request = gt_http_server_request (server, index);
        if (request && streq (request->path, path) && count < max)
            out [count++] = request;
    }
    return count;
}

//  Wait until path got count requests; returns the last one.
static const gt_http_request_t *
s_await_requests (gt_http_server_t *server, const char *path, size_t count)
{
    int64_t deadline = zclock_mono () + 4 * GT_TEST_TIMEOUT;
    const gt_http_request_t *requests [32];
    size_t total = gt_http_server_count (server);
    while (zclock_mono () < deadline) {
        size_t got = s_requests (server, path, requests, 32);
        if (got >= count)
            return requests [count - 1];
        gt_http_server_wait (server, ++total, (int) (deadline - zclock_mono ()));
    }
    fprintf (stderr, "path %s never got %zu requests\n", path, count);
    assert (false);
    return NULL;
}

static uint64_t
s_stat (gt_test_broker_t *broker, zsock_t *dealer, const char *name)
{
    return gt_test_stat (broker, dealer, name);
}

//  --------------------------------------------------------------------------
//  The body and headers, exactly as CALLBACKS.md says

static void
s_test_body (void)
{
    gt_http_server_t *server = gt_http_server_new ();
    char *url = gt_http_server_url (server, "/cleanup");
    gt_config_t *config = s_config ();
    gt_test_broker_t *broker = gt_test_broker_start (config);
    zsock_t *dealer = gt_test_dealer (broker);
    zsock_t *sub = gt_test_sub (broker, "upload-service\x1f" "reclaimed.");
    zsock_set_subscribe (sub, "orders\x1f" "reclaimed.");

    char *id = s_create (broker, dealer, "/tmp/user-upload-123.jpg", "upload-service", url,
                         "custom-cleanup-data", -1);
    gt_msg_t *reply = gt_test_get (broker, dealer, id);
    assert (reply->lease->cleanup->max_retries == 3);             //  GC_CLEANUP_MAX_RETRIES
    assert (reply->lease->cleanup->retry_delay_ms == 10);         //  GC_CLEANUP_RETRY_DELAY
    uint64_t fence = reply->lease->fence;
    gt_msg_destroy (&reply);
    s_release (broker, dealer, id, "upload-service");
    uint64_t seq = s_reclaimed_seq (sub, id);
    const gt_http_request_t *request = s_await_requests (server, "/cleanup", 1);

    assert (streq (request->method, "POST"));
    assert (streq (gt_http_request_header (request, "Content-Type"), "application/json"));
    char key [128];
    snprintf (key, sizeof (key), "%" PRIu64 "-%s", seq, id);
    assert (streq (gt_http_request_header (request, "Idempotency-Key"), key));
    assert (streq (gt_http_request_header (request, "X-GarbageTruck-Attempt"), "1"));
    //  Unsigned without GC_CALLBACK_SECRET
    assert (gt_http_request_header (request, "X-GarbageTruck-Signature") == NULL);
    assert (gt_http_request_header (request, "X-GarbageTruck-Timestamp") == NULL);

    //  Every field, in the documented order
    json_error_t error;
    json_t *body = json_loadb (request->body, request->body_size, 0, &error);
    assert (body && json_is_object (body));
    const char *order [] = { "lease_id", "object_id", "object_type", "service_id", "metadata",
                             "payload", "reason", "seq", "fence", "attempt" };
    size_t index = 0;
    const char *name;
    json_t *value;
    json_object_foreach (body, name, value)
        assert (index < 10 && streq (name, order [index++]));
    assert (index == 10);
    assert (streq (json_string_value (json_object_get (body, "lease_id")), id));
    assert (streq (json_string_value (json_object_get (body, "object_id")), "/tmp/user-upload-123.jpg"));
    assert (streq (json_string_value (json_object_get (body, "object_type")), "TEMPORARY_FILE"));
    assert (streq (json_string_value (json_object_get (body, "service_id")), "upload-service"));
    json_t *metadata = json_object_get (body, "metadata");
    assert (json_object_size (metadata) == 2);
    assert (streq (json_string_value (json_object_get (metadata, "path")), "/tmp/x"));
    assert (streq (json_string_value (json_object_get (metadata, "owner")), "alice"));
    assert (streq (json_string_value (json_object_get (body, "payload")), "custom-cleanup-data"));
    assert (streq (json_string_value (json_object_get (body, "reason")), "released"));
    assert ((uint64_t) json_integer_value (json_object_get (body, "seq")) == seq);
    assert ((uint64_t) json_integer_value (json_object_get (body, "fence")) == fence);
    assert (json_integer_value (json_object_get (body, "attempt")) == 1);
    json_decref (body);

    reply = s_await_status (broker, dealer, id, GT_CLEANUP_DELIVERED);
    assert (reply->lease->cleanup_attempts == 1 && reply->lease->cleanup_error == NULL);
    gt_msg_destroy (&reply);

    //  An expiry says so; a lease without payload sends ""
    char *expiring;
    {
        gt_msg_t request2 = gt_test_request (GT_CMD_CREATE);
        request2.object_id = "row-1";
        request2.service_id = "orders";
        request2.has_ttl = true;
        request2.ttl_ms = 50;
        gt_cleanup_t cleanup = { url, NULL, false, 0, false, 0 };
        request2.cleanup = &cleanup;
        reply = gt_test_call (broker, dealer, &request2);
        s_expect (reply, GT_OK);
        expiring = strdup (reply->lease->id);
        gt_msg_destroy (&reply);
    }
    seq = s_reclaimed_seq (sub, expiring);
    request = s_await_requests (server, "/cleanup", 2);
    body = json_loadb (request->body, request->body_size, 0, &error);
    assert (streq (json_string_value (json_object_get (body, "lease_id")), expiring));
    assert (streq (json_string_value (json_object_get (body, "object_type")), "UNKNOWN"));
    assert (streq (json_string_value (json_object_get (body, "reason")), "expired"));
    assert (streq (json_string_value (json_object_get (body, "payload")), ""));
    assert (json_object_size (json_object_get (body, "metadata")) == 0);
    assert ((uint64_t) json_integer_value (json_object_get (body, "seq")) == seq);
    json_decref (body);

    free (expiring);
    free (id);
    zsock_destroy (&sub);
    zsock_destroy (&dealer);
    gt_test_broker_stop (&broker);
    gt_config_destroy (&config);
    free (url);
    gt_http_server_destroy (&server);
}

//  --------------------------------------------------------------------------
//  The broker's signature verifies; a tampered body does not

static void
s_test_signature (void)
{
    gt_http_server_t *server = gt_http_server_new ();
    char *url = gt_http_server_url (server, "/signed");
    gt_config_t *config = s_config ();
    gt_config_set_callback_secret (config, S_SECRET);
    gt_test_broker_t *broker = gt_test_broker_start (config);
    zsock_t *dealer = gt_test_dealer (broker);

    //  A first failure: each attempt is signed anew (its body differs)
    gt_http_response_t failure = { 503, 0, false, NULL, NULL };
    gt_http_server_push (server, "/signed", &failure);
    char *id = s_create (broker, dealer, "blob-1", "blob-service", url, "p", -1);
    int64_t before = zclock_time () / 1000;
    s_release (broker, dealer, id, "blob-service");
    s_await_requests (server, "/signed", 2);
    int64_t after = zclock_time () / 1000;
    const gt_http_request_t *requests [2];
    assert (s_requests (server, "/signed", requests, 2) == 2);
    for (size_t index = 0; index < 2; index++) {
        const gt_http_request_t *request = requests [index];
        const char *timestamp = gt_http_request_header (request, "X-GarbageTruck-Timestamp");
        const char *signature = gt_http_request_header (request, "X-GarbageTruck-Signature");
        assert (timestamp && signature && strncmp (signature, "v1=", 3) == 0 && strlen (signature) == 67);
        int64_t seconds = atoll (timestamp);
        assert (seconds >= before && seconds <= after);
        assert (gt_webhook_verify_signature (request->body, request->body_size, timestamp, signature,
                                             S_SECRET, GT_WEBHOOK_DEFAULT_TOLERANCE_S));
        //  Tampered: one byte of the body, the timestamp, the secret
        char *tampered = strdup (request->body);
        char *attempt = strstr (tampered, "\"attempt\":");
        assert (attempt);
        attempt [10] = attempt [10] == '1' ? '2' : '1';
        assert (!gt_webhook_verify_signature (tampered, request->body_size, timestamp, signature,
                                              S_SECRET, GT_WEBHOOK_DEFAULT_TOLERANCE_S));
        free (tampered);
        char later [32];
        snprintf (later, sizeof (later), "%" PRId64, seconds + 1);
        assert (!gt_webhook_verify_signature (request->body, request->body_size, later, signature,
                                              S_SECRET, GT_WEBHOOK_DEFAULT_TOLERANCE_S));
        assert (!gt_webhook_verify_signature (request->body, request->body_size, timestamp, signature,
                                              "other", GT_WEBHOOK_DEFAULT_TOLERANCE_S));
        char expected [8];
        snprintf (expected, sizeof (expected), "%zu", index + 1);
        assert (streq (gt_http_request_header (request, "X-GarbageTruck-Attempt"), expected));
    }
    assert (!streq (gt_http_request_header (requests [0], "X-GarbageTruck-Signature"),
                    gt_http_request_header (requests [1], "X-GarbageTruck-Signature")));
    gt_msg_t *reply = s_await_status (broker, dealer, id, GT_CLEANUP_DELIVERED);
    assert (reply->lease->cleanup_attempts == 2);
    gt_msg_destroy (&reply);

    free (id);
    zsock_destroy (&dealer);
    gt_test_broker_stop (&broker);
    gt_config_destroy (&config);
    free (url);
    gt_http_server_destroy (&server);
}

//  --------------------------------------------------------------------------
//  500 then 200: retried, delivered; the key stays, the attempt counts

static void
s_test_retry (void)
{
    gt_http_server_t *server = gt_http_server_new ();
    char *url = gt_http_server_url (server, "/flaky");
    gt_config_t *config = s_config ();
    gt_test_broker_t *broker = gt_test_broker_start (config);
    zsock_t *dealer = gt_test_dealer (broker);

    gt_http_response_t failure = { 500, 0, false, NULL, NULL };
    gt_http_server_push (server, "/flaky", &failure);
    char *id = s_create (broker, dealer, "row:1", "orders", url, NULL, 3);
    s_release (broker, dealer, id, "orders");
    gt_msg_t *reply = s_await_status (broker, dealer, id, GT_CLEANUP_DELIVERED);
    assert (reply->lease->cleanup_attempts == 2 && reply->lease->cleanup_error == NULL);
    gt_msg_destroy (&reply);
    const gt_http_request_t *requests [4];
    assert (s_requests (server, "/flaky", requests, 4) == 2);
    assert (requests [0]->status == 500 && requests [1]->status == 200);
    assert (streq (gt_http_request_header (requests [0], "Idempotency-Key"),
                   gt_http_request_header (requests [1], "Idempotency-Key")));
    assert (streq (gt_http_request_header (requests [1], "X-GarbageTruck-Attempt"), "2"));
    assert (strstr (requests [1]->body, "\"attempt\":2"));

    free (id);
    zsock_destroy (&dealer);
    gt_test_broker_stop (&broker);
    gt_config_destroy (&config);
    free (url);
    gt_http_server_destroy (&server);
}

//  --------------------------------------------------------------------------
//  A response slower than GC_CLEANUP_TIMEOUT is a failed attempt, retried

static void
s_test_timeout (void)
{
    gt_http_server_t *server = gt_http_server_new ();
    char *url = gt_http_server_url (server, "/slow");
    gt_config_t *config = s_config ();
    config->cleanup_timeout_ms = 200;
    gt_test_broker_t *broker = gt_test_broker_start (config);
    zsock_t *dealer = gt_test_dealer (broker);

    gt_http_response_t slow = { 200, 3000, false, NULL, NULL };
    gt_http_server_push (server, "/slow", &slow);
    char *id = s_create (broker, dealer, "sess-1", "chat", url, NULL, 2);
    s_release (broker, dealer, id, "chat");
    //  While the first attempt waits, the lease says PENDING
    s_await_requests (server, "/slow", 1);
    gt_msg_t *reply = gt_test_get (broker, dealer, id);
    assert (reply->lease->cleanup_status == GT_CLEANUP_PENDING);
    gt_msg_destroy (&reply);
    reply = s_await_status (broker, dealer, id, GT_CLEANUP_DELIVERED);
    assert (reply->lease->cleanup_attempts == 2);
    gt_msg_destroy (&reply);
    const gt_http_request_t *requests [4];
    assert (s_requests (server, "/slow", requests, 4) == 2);
    //  The second attempt started after the timeout (200 ms from the client's
    //  start, a little before the server saw the headers), not after the answer
    assert (requests [1]->received_ms - requests [0]->received_ms >= 150);
    assert (requests [1]->received_ms - requests [0]->received_ms < 3000);

    free (id);
    zsock_destroy (&dealer);
    gt_test_broker_stop (&broker);
    gt_config_destroy (&config);
    free (url);
    gt_http_server_destroy (&server);
}

//  --------------------------------------------------------------------------
//  404 fails at once: DEAD, visible through GET

static void
s_test_dead (void)
{
    gt_http_server_t *server = gt_http_server_new ();
    char *url = gt_http_server_url (server, "/gone");
    gt_config_t *config = s_config ();
    gt_test_broker_t *broker = gt_test_broker_start (config);
    zsock_t *dealer = gt_test_dealer (broker);

    gt_http_response_t missing = { 404, 0, false, NULL, NULL };
    gt_http_server_push (server, "/gone", &missing);
    char *id = s_create (broker, dealer, "cache:1", "cache", url, NULL, 5);
    s_release (broker, dealer, id, "cache");
    gt_msg_t *reply = s_await_status (broker, dealer, id, GT_CLEANUP_DEAD);
    assert (reply->lease->cleanup_attempts == 1);
    assert (reply->lease->cleanup_error && strstr (reply->lease->cleanup_error, "404"));
    gt_msg_destroy (&reply);
    const gt_http_request_t *requests [4];
    assert (s_requests (server, "/gone", requests, 4) == 1);

    free (id);
    zsock_destroy (&dealer);
    gt_test_broker_stop (&broker);
    gt_config_destroy (&config);
    free (url);
    gt_http_server_destroy (&server);
}

//  --------------------------------------------------------------------------
//  Retries exhausted: dead letter, listed, kept past retention; RETRY
//  delivers it with the same key, then retention applies again

static void
s_test_exhaustion (void)
{
    gt_http_server_t *server = gt_http_server_new ();
    char *url = gt_http_server_url (server, "/down");
    gt_config_t *config = s_config ();
    config->lease_retention_ms = 300;
    gt_test_broker_t *broker = gt_test_broker_start (config);
    zsock_t *dealer = gt_test_dealer (broker);

    gt_http_response_t failure = { 500, 0, false, NULL, NULL };
    for (int index = 0; index < 3; index++)
        gt_http_server_push (server, "/down", &failure);
    char *id = s_create (broker, dealer, "file-9", "files", url, NULL, 2);
    s_release (broker, dealer, id, "files");
    //  A marker lease without cleanup ends now too: once it is purged, the
    //  dead letter is past its own retention
    gt_msg_t *reply = gt_test_create (broker, dealer, "marker", "files", 60000);
    char *marker = strdup (reply->lease->id);
    gt_msg_destroy (&reply);
    reply = s_await_status (broker, dealer, id, GT_CLEANUP_DEAD);
    assert (reply->lease->cleanup_attempts == 3);           //  1 + max_retries
    assert (reply->lease->cleanup_error && strstr (reply->lease->cleanup_error, "500"));
    gt_msg_destroy (&reply);
    s_release (broker, dealer, marker, "files");
    s_await_purged (broker, dealer, marker);
    reply = gt_test_get (broker, dealer, id);
    s_expect (reply, GT_OK);
    assert (reply->lease->cleanup_status == GT_CLEANUP_DEAD);
    gt_msg_destroy (&reply);

    //  LIST by cleanup status finds it
    gt_msg_t list = gt_test_request (GT_CMD_LIST);
    list.has_cleanup_status = true;
    list.cleanup_status = GT_CLEANUP_DEAD;
    reply = gt_test_call (broker, dealer, &list);
    s_expect (reply, GT_OK);
    assert (reply->lease_count == 1 && streq (reply->leases [0].id, id));
    gt_msg_destroy (&reply);
    list.rid = 0;
    list.cleanup_status = GT_CLEANUP_PENDING;
    reply = gt_test_call (broker, dealer, &list);
    assert (reply->code == GT_OK && reply->lease_count == 0);
    gt_msg_destroy (&reply);

    //  RETRY: errors first
    reply = s_retry (broker, dealer, "0123456789abcdef0123456789abcdef");
    s_expect (reply, GT_ERR_NOT_FOUND);
    gt_msg_destroy (&reply);
    char *active = s_create (broker, dealer, "file-10", "files", url, NULL, 0);
    reply = s_retry (broker, dealer, active);
    s_expect (reply, GT_ERR_INVALID_ARGUMENT);
    assert (strstr (reply->message, "no dead-lettered cleanup callback"));
    gt_msg_destroy (&reply);
    //  Then the dead letter: attempts start again, same Idempotency-Key
    reply = s_retry (broker, dealer, id);
    s_expect (reply, GT_OK);
    assert (streq (reply->lease->id, id));
    assert (reply->lease->cleanup_status == GT_CLEANUP_PENDING || reply->lease->cleanup_status == GT_CLEANUP_DELIVERED);
    gt_msg_destroy (&reply);
    reply = s_retry (broker, dealer, id);
    s_expect (reply, GT_ERR_INVALID_ARGUMENT);              //  not dead any more
    gt_msg_destroy (&reply);
    reply = s_await_status (broker, dealer, id, GT_CLEANUP_DELIVERED);
    assert (reply->lease->cleanup_attempts == 1 && reply->lease->cleanup_error == NULL);
    gt_msg_destroy (&reply);
    const gt_http_request_t *requests [8];
    assert (s_requests (server, "/down", requests, 8) == 4);
    assert (requests [3]->status == 200);
    assert (streq (gt_http_request_header (requests [0], "Idempotency-Key"),
                   gt_http_request_header (requests [3], "Idempotency-Key")));
    assert (streq (gt_http_request_header (requests [2], "X-GarbageTruck-Attempt"), "3"));
    assert (streq (gt_http_request_header (requests [3], "X-GarbageTruck-Attempt"), "1"));
    //  Delivered: normal retention again
    s_await_purged (broker, dealer, id);

    free (active);
    free (marker);
    free (id);
    zsock_destroy (&dealer);
    gt_test_broker_stop (&broker);
    gt_config_destroy (&config);
    free (url);
    gt_http_server_destroy (&server);
}

//  --------------------------------------------------------------------------
//  Leases on one object: one callback per URL, after the last one ends,
//  naming the lease that registered the URL first

static void
s_test_dedup (void)
{
    gt_http_server_t *server = gt_http_server_new ();
    char *url = gt_http_server_url (server, "/shared");
    char *other = gt_http_server_url (server, "/other");
    char *marker_url = gt_http_server_url (server, "/marker");
    gt_config_t *config = s_config ();
    gt_test_broker_t *broker = gt_test_broker_start (config);
    zsock_t *dealer = gt_test_dealer (broker);

    char *first = s_create (broker, dealer, "blob-7", "svc-a", url, "from-a", -1);
    char *second = s_create (broker, dealer, "blob-7", "svc-b", url, "from-b", -1);
    char *third = s_create (broker, dealer, "blob-7", "svc-c", other, NULL, -1);
    s_release (broker, dealer, first, "svc-a");
    s_release (broker, dealer, second, "svc-b");
    //  Still held by the third: nothing called
    gt_msg_t *reply = gt_test_get (broker, dealer, first);
    assert (reply->lease->cleanup_status == GT_CLEANUP_NONE);
    gt_msg_destroy (&reply);
    assert (s_stat (broker, dealer, "callbacks_pending") == 0);
    assert (s_stat (broker, dealer, "callback_attempts") == 0);
    s_release (broker, dealer, third, "svc-c");
    reply = s_await_status (broker, dealer, first, GT_CLEANUP_DELIVERED);
    gt_msg_destroy (&reply);
    reply = s_await_status (broker, dealer, third, GT_CLEANUP_DELIVERED);
    gt_msg_destroy (&reply);
    reply = gt_test_get (broker, dealer, second);
    assert (reply->lease->cleanup_status == GT_CLEANUP_NONE);
    gt_msg_destroy (&reply);
    //  A later callback through the same broker: no stray request came before it
    char *marker = s_create (broker, dealer, "marker", "svc-a", marker_url, NULL, -1);
    s_release (broker, dealer, marker, "svc-a");
    reply = s_await_status (broker, dealer, marker, GT_CLEANUP_DELIVERED);
    gt_msg_destroy (&reply);
    const gt_http_request_t *requests [4];
    assert (s_requests (server, "/shared", requests, 4) == 1);
    assert (strstr (requests [0]->body, first) && strstr (requests [0]->body, "\"payload\":\"from-a\""));
    assert (strstr (requests [0]->body, "\"service_id\":\"svc-a\""));
    assert (s_requests (server, "/other", requests, 4) == 1);
    assert (strstr (requests [0]->body, third));
    assert (gt_http_server_count (server) == 3);
    assert (s_stat (broker, dealer, "callbacks_delivered") == 3);

    free (marker);
    free (first);
    free (second);
    free (third);
    zsock_destroy (&dealer);
    gt_test_broker_stop (&broker);
    gt_config_destroy (&config);
    free (url);
    free (other);
    free (marker_url);
    gt_http_server_destroy (&server);
}

//  --------------------------------------------------------------------------
//  GC_CALLBACK_ALLOW: endpoints outside it are refused at CREATE

static void
s_test_allow (void)
{
    gt_http_server_t *server = gt_http_server_new ();
    char *allowed = gt_http_server_url (server, "/ok/");
    char allow [256];
    snprintf (allow, sizeof (allow), " %s , https://cleanup.example.com", allowed);
    gt_config_t *config = s_config ();
    gt_config_set_callback_allow (config, allow);
    gt_test_broker_t *broker = gt_test_broker_start (config);
    zsock_t *dealer = gt_test_dealer (broker);

    char *good = gt_http_server_url (server, "/ok/files");
    char *id = s_create (broker, dealer, "f1", "svc", good, NULL, -1);
    free (id);
    id = s_create (broker, dealer, "f2", "svc", "https://cleanup.example.com/x", NULL, -1);
    free (id);
    char *outside = gt_http_server_url (server, "/admin");
    char *no_slash = gt_http_server_url (server, "/ok");
    char evil [256];
    snprintf (evil, sizeof (evil), "https://cleanup.example.com.evil.org/x");
    const char *refused [] = { outside, no_slash, evil, "http://169.254.169.254/latest" };
    for (size_t index = 0; index < 4; index++) {
        gt_msg_t request = gt_test_request (GT_CMD_CREATE);
        request.object_id = "f3";
        request.service_id = "svc";
        gt_cleanup_t cleanup = { (char *) refused [index], NULL, false, 0, false, 0 };
        request.cleanup = &cleanup;
        gt_msg_t *reply = gt_test_call (broker, dealer, &request);
        s_expect (reply, GT_ERR_INVALID_ARGUMENT);
        assert (strstr (reply->message, "not allowed") && strstr (reply->message, "GC_CALLBACK_ALLOW"));
        gt_msg_destroy (&reply);
    }
    //  Not a usable URL at all (the codec lets these through)
    gt_msg_t request = gt_test_request (GT_CMD_CREATE);
    request.object_id = "f4";
    request.service_id = "svc";
    gt_cleanup_t cleanup = { "http://has space/x", NULL, false, 0, false, 0 };
    request.cleanup = &cleanup;
    gt_msg_t *reply = gt_test_call (broker, dealer, &request);
    s_expect (reply, GT_ERR_INVALID_ARGUMENT);
    assert (strstr (reply->message, "http:// or https://"));
    gt_msg_destroy (&reply);
    assert (s_stat (broker, dealer, "active_leases") == 2);

    free (outside);
    free (no_slash);
    free (good);
    free (allowed);
    zsock_destroy (&dealer);
    gt_test_broker_stop (&broker);
    gt_config_destroy (&config);
    gt_http_server_destroy (&server);
}

//  --------------------------------------------------------------------------
//  Recovery: a broker stops with a callback in flight and a dead letter; a
//  broker recovered from its store delivers the first with the original
//  Idempotency-Key and still has the dead letter.  On the PostgreSQL store
//  the second broker starts on the same database; otherwise on the test
//  store, taken over from the first (the memory store forgets at a stop).

static void
s_test_recovery (void)
{
    gt_http_server_t *server = gt_http_server_new ();
    char *slow = gt_http_server_url (server, "/held");
    char *gone = gt_http_server_url (server, "/gone");
    gt_config_t *config = s_config ();
    bool postgres = streq (config->storage, "postgres");
    if (!postgres)
        gt_config_set_storage (config, "test");
    gt_test_broker_t *broker = gt_test_broker_start (config);
    zsock_t *dealer = gt_test_dealer (broker);
    zsock_t *sub = gt_test_sub (broker, "uploads\x1f" "reclaimed.");

    gt_http_response_t held = { 200, 0, true, NULL, NULL };
    gt_http_server_push (server, "/held", &held);
    gt_http_response_t missing = { 404, 0, false, NULL, NULL };
    gt_http_server_push (server, "/gone", &missing);
    char *pending = s_create (broker, dealer, "upload-1", "uploads", slow, "rm", 3);
    char *dead = s_create (broker, dealer, "upload-2", "uploads", gone, NULL, 3);
    s_release (broker, dealer, pending, "uploads");
    uint64_t seq = s_reclaimed_seq (sub, pending);
    s_release (broker, dealer, dead, "uploads");
    gt_msg_t *reply = s_await_status (broker, dealer, dead, GT_CLEANUP_DEAD);
    gt_msg_destroy (&reply);
    assert (gt_http_server_wait_in_flight (server, 1, 4 * GT_TEST_TIMEOUT));

    //  Stop: the first request is still unanswered
    gt_store_t *store = NULL;
    if (!postgres) {
        store = gt_test_broker_detach (broker);
        assert (store);
        assert (gt_test_store_callbacks (store) == 2);
    }
    zsock_destroy (&sub);
    zsock_destroy (&dealer);
    gt_test_broker_stop (&broker);

    broker = postgres ? gt_test_broker_start (config) : gt_test_broker_start_on_store (config, store);
    dealer = gt_test_dealer (broker);
    reply = s_await_status (broker, dealer, pending, GT_CLEANUP_DELIVERED);
    assert (reply->lease->state == GT_STATE_RELEASED);
    gt_msg_destroy (&reply);
    const gt_http_request_t *requests [4];
    assert (s_requests (server, "/held", requests, 4) == 2);
    char key [128];
    snprintf (key, sizeof (key), "%" PRIu64 "-%s", seq, pending);
    assert (streq (gt_http_request_header (requests [0], "Idempotency-Key"), key));
    assert (streq (gt_http_request_header (requests [1], "Idempotency-Key"), key));
    //  Same body but the attempt number
    assert (strstr (requests [1]->body, "\"payload\":\"rm\"") && strstr (requests [1]->body, pending));
    assert (s_stat (broker, dealer, "callbacks_recovered") == 1);
    //  The dead letter came back, and can be retried
    reply = gt_test_get (broker, dealer, dead);
    s_expect (reply, GT_OK);
    assert (reply->lease->cleanup_status == GT_CLEANUP_DEAD && reply->lease->cleanup_attempts == 1);
    assert (reply->lease->cleanup_error && strstr (reply->lease->cleanup_error, "404"));
    gt_msg_destroy (&reply);
    assert (s_stat (broker, dealer, "callbacks_dead_letters") == 1);
    reply = s_retry (broker, dealer, dead);
    s_expect (reply, GT_OK);
    gt_msg_destroy (&reply);
    reply = s_await_status (broker, dealer, dead, GT_CLEANUP_DELIVERED);
    gt_msg_destroy (&reply);
    assert (s_requests (server, "/gone", requests, 4) == 2);
    assert (streq (gt_http_request_header (requests [0], "Idempotency-Key"),
                   gt_http_request_header (requests [1], "Idempotency-Key")));
    //  Delivered callbacks leave the outbox (PostgreSQL: test_pgstore_outbox checks the table)
    if (!postgres) {
        store = gt_test_broker_detach (broker);
        assert (store && gt_test_store_callbacks (store) == 0);
        gt_store_destroy (&store);
    }

    gt_http_server_gate (server, true);
    free (pending);
    free (dead);
    zsock_destroy (&dealer);
    gt_test_broker_stop (&broker);
    gt_config_destroy (&config);
    free (slow);
    free (gone);
    gt_http_server_destroy (&server);
}

//  --------------------------------------------------------------------------
//  STATS counters move

static void
s_test_stats (void)
{
    gt_http_server_t *server = gt_http_server_new ();
    char *flaky = gt_http_server_url (server, "/flaky");
    char *gone = gt_http_server_url (server, "/gone");
    gt_config_t *config = s_config ();
    gt_test_broker_t *broker = gt_test_broker_start (config);
    zsock_t *dealer = gt_test_dealer (broker);

    const char *names [] = { "callbacks_pending", "callbacks_delivered", "callbacks_dead",
                             "callback_attempts", "callback_failures", "callbacks_dead_letters",
                             "callbacks_retried", "requests_retry" };
    for (size_t index = 0; index < sizeof (names) / sizeof (names [0]); index++)
        assert (s_stat (broker, dealer, names [index]) == 0);
    gt_http_response_t failure = { 500, 0, false, NULL, NULL };
    gt_http_server_push (server, "/flaky", &failure);
    char *id = s_create (broker, dealer, "o1", "s", flaky, NULL, 3);
    s_release (broker, dealer, id, "s");
    gt_msg_t *reply = s_await_status (broker, dealer, id, GT_CLEANUP_DELIVERED);
    gt_msg_destroy (&reply);
    assert (s_stat (broker, dealer, "callbacks_delivered") == 1);
    assert (s_stat (broker, dealer, "callback_attempts") == 2);
    assert (s_stat (broker, dealer, "callback_failures") == 1);
    assert (s_stat (broker, dealer, "callbacks_pending") == 0);
    free (id);

    gt_http_response_t missing = { 404, 0, false, NULL, NULL };
    gt_http_server_push (server, "/gone", &missing);
    id = s_create (broker, dealer, "o2", "s", gone, NULL, 3);
    s_release (broker, dealer, id, "s");
    reply = s_await_status (broker, dealer, id, GT_CLEANUP_DEAD);
    gt_msg_destroy (&reply);
    assert (s_stat (broker, dealer, "callbacks_dead") == 1);
    assert (s_stat (broker, dealer, "callbacks_dead_letters") == 1);
    assert (s_stat (broker, dealer, "callback_attempts") == 3);
    assert (s_stat (broker, dealer, "callback_failures") == 2);
    reply = s_retry (broker, dealer, id);
    s_expect (reply, GT_OK);
    gt_msg_destroy (&reply);
    reply = s_await_status (broker, dealer, id, GT_CLEANUP_DELIVERED);
    gt_msg_destroy (&reply);
    assert (s_stat (broker, dealer, "callbacks_retried") == 1);
    assert (s_stat (broker, dealer, "requests_retry") == 1);
    assert (s_stat (broker, dealer, "callbacks_dead_letters") == 0);
    assert (s_stat (broker, dealer, "callbacks_delivered") == 2);
    assert (s_stat (broker, dealer, "callbacks_dead") == 1);
    free (id);

    zsock_destroy (&dealer);
    gt_test_broker_stop (&broker);
    gt_config_destroy (&config);
    free (flaky);
    free (gone);
    gt_http_server_destroy (&server);
}

//  --------------------------------------------------------------------------
//  GC_CALLBACK_MAX_PENDING reached: the callback is dead-lettered at once

static void
s_test_queue_full (void)
{
    gt_http_server_t *server = gt_http_server_new ();
    char *held_url = gt_http_server_url (server, "/held");
    char *next_url = gt_http_server_url (server, "/next");
    gt_config_t *config = s_config ();
    config->callback_max_pending = 1;
    gt_test_broker_t *broker = gt_test_broker_start (config);
    zsock_t *dealer = gt_test_dealer (broker);

    gt_http_response_t held = { 200, 0, true, NULL, NULL };
    gt_http_server_push (server, "/held", &held);
    char *first = s_create (broker, dealer, "q1", "s", held_url, NULL, 0);
    s_release (broker, dealer, first, "s");
    assert (gt_http_server_wait_in_flight (server, 1, 4 * GT_TEST_TIMEOUT));
    char *second = s_create (broker, dealer, "q2", "s", next_url, NULL, 0);
    s_release (broker, dealer, second, "s");
    gt_msg_t *reply = s_await_status (broker, dealer, second, GT_CLEANUP_DEAD);
    assert (reply->lease->cleanup_attempts == 0);
    assert (streq (reply->lease->cleanup_error, "delivery queue full"));
    gt_msg_destroy (&reply);
    assert (s_stat (broker, dealer, "callbacks_queue_full") == 1);
    gt_http_server_gate (server, true);
    reply = s_await_status (broker, dealer, first, GT_CLEANUP_DELIVERED);
    gt_msg_destroy (&reply);
    //  Room again: the dead letter goes through on RETRY
    reply = s_retry (broker, dealer, second);
    s_expect (reply, GT_OK);
    gt_msg_destroy (&reply);
    reply = s_await_status (broker, dealer, second, GT_CLEANUP_DELIVERED);
    gt_msg_destroy (&reply);

    free (first);
    free (second);
    zsock_destroy (&dealer);
    gt_test_broker_stop (&broker);
    gt_config_destroy (&config);
    free (held_url);
    free (next_url);
    gt_http_server_destroy (&server);
}

//  --------------------------------------------------------------------------
//  A batch the store fails: its reclaim calls nothing, its RETRY leaves the
//  dead letter as it was (test store: it can fail on demand)

static void
s_test_rollback (void)
{
    gt_http_server_t *server = gt_http_server_new ();
    char *url = gt_http_server_url (server, "/rb");
    char *gone = gt_http_server_url (server, "/gone");
    gt_config_t *config = s_config ();
    gt_config_set_storage (config, "test");
    gt_test_broker_t *broker = gt_test_broker_start (config);
    zsock_t *dealer = gt_test_dealer (broker);

    char *id = s_create (broker, dealer, "rb-1", "svc", url, NULL, 0);
    char *rc = gt_test_broker_command (broker, "STORE", "FAIL", "1");
    assert (streq (rc, "0"));
    zstr_free (&rc);
    gt_msg_t *reply = gt_test_release (broker, dealer, id, "svc", false);
    s_expect (reply, GT_ERR_UNAVAILABLE);
    gt_msg_destroy (&reply);
    reply = gt_test_get (broker, dealer, id);
    assert (reply->lease->state == GT_STATE_ACTIVE && reply->lease->cleanup_status == GT_CLEANUP_NONE);
    gt_msg_destroy (&reply);
    assert (s_stat (broker, dealer, "callbacks_pending") == 0);
    s_release (broker, dealer, id, "svc");
    reply = s_await_status (broker, dealer, id, GT_CLEANUP_DELIVERED);
    gt_msg_destroy (&reply);

    gt_http_response_t missing = { 404, 0, false, NULL, NULL };
    gt_http_server_push (server, "/gone", &missing);
    char *dead = s_create (broker, dealer, "rb-2", "svc", gone, NULL, 0);
    s_release (broker, dealer, dead, "svc");
    reply = s_await_status (broker, dealer, dead, GT_CLEANUP_DEAD);
    gt_msg_destroy (&reply);
    rc = gt_test_broker_command (broker, "STORE", "FAIL", "1");
    zstr_free (&rc);
    reply = s_retry (broker, dealer, dead);
    s_expect (reply, GT_ERR_UNAVAILABLE);
    gt_msg_destroy (&reply);
    reply = gt_test_get (broker, dealer, dead);
    assert (reply->lease->cleanup_status == GT_CLEANUP_DEAD && reply->lease->cleanup_attempts == 1);
    assert (reply->lease->cleanup_error && strstr (reply->lease->cleanup_error, "404"));
    gt_msg_destroy (&reply);
    assert (s_stat (broker, dealer, "callbacks_dead_letters") == 1);
    assert (s_stat (broker, dealer, "callbacks_retried") == 0);
    reply = s_retry (broker, dealer, dead);
    s_expect (reply, GT_OK);
    gt_msg_destroy (&reply);
    reply = s_await_status (broker, dealer, dead, GT_CLEANUP_DELIVERED);
    gt_msg_destroy (&reply);
    //  One call per reclaim, one per successful RETRY: nothing from the failed batches
    const gt_http_request_t *requests [4];
    assert (s_requests (server, "/rb", requests, 4) == 1);
    assert (s_requests (server, "/gone", requests, 4) == 2);
    //  The outbox is empty again
    gt_store_t *store = gt_test_broker_detach (broker);
    assert (store && gt_test_store_callbacks (store) == 0);
    gt_store_destroy (&store);

    free (id);
    free (dead);
    zsock_destroy (&dealer);
    gt_test_broker_stop (&broker);
    gt_config_destroy (&config);
    free (url);
    free (gone);
    gt_http_server_destroy (&server);
}

//  --------------------------------------------------------------------------

typedef struct {
    const char *name;               //  case name (ctest test_delivery_<name>)
    void (*run) (void);             //  the case
} s_case_t;

static const s_case_t s_cases [] = {
    { "body", s_test_body },
    { "signature", s_test_signature },
    { "retry", s_test_retry },
    { "timeout", s_test_timeout },
    { "dead", s_test_dead },
    { "exhaustion", s_test_exhaustion },
    { "dedup", s_test_dedup },
    { "allow", s_test_allow },
    { "recovery", s_test_recovery },
    { "stats", s_test_stats },
    { "queue_full", s_test_queue_full },
    { "rollback", s_test_rollback },
};

int
main (int argc, char *argv [])
{
    if (argc < 2) {
        fprintf (stderr, "usage: test_delivery CASE|all\n");
        return 2;
    }
    zsys_init ();
    bool found = false;
    for (size_t index = 0; index < sizeof (s_cases) / sizeof (s_cases [0]); index++)
        if (streq (argv [1], "all") || streq (argv [1], s_cases [index].name)) {
            printf ("test_delivery %s (%s store)...\n", s_cases [index].name,
                    getenv ("GT_TEST_STORE") ? getenv ("GT_TEST_STORE") : "memory");
            s_cases [index].run ();
            found = true;
        }
    if (!found) {
        fprintf (stderr, "test_delivery: no case '%s'\n", argv [1]);
        return 2;
    }
    printf ("OK\n");
    return 0;
}

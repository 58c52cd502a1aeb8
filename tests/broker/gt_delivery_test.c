/*  gt_delivery_test.c — selftest of gt_delivery against a real HTTP server
    (tests/gt_http_server, libmicrohttpd on 127.0.0.1).

    No fake clock and no sleeps: every wait is for an outcome message or a
    server record, with a deadline.  Retry delays are 10 ms so the backoff
    paths run quickly; the only long waits are the 1 s Retry-After check and
    the request-timeout case, which are what they test.  */

#include "gt_delivery.h"
#include "gt_webhook.h"
#include "gt_http_server.h"
#include "gt_broker_selftest.h"
#include <sodium.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>

#define S_WAIT_MS   10000           //  deadline for any single expected event
#define S_LEASE_ID  "9f0c5b8e1d2a4c6b8e0f1a2b3c4d5e6f"
#define S_SECRET    "0123456789abcdef0123456789abcdef"  //  32 bytes: one-shot HMAC key size

static gt_delivery_t *
s_delivery_new (const char *secret, uint32_t timeout_ms, size_t max_concurrent,
                size_t max_per_host, size_t max_pending)
{
    gt_delivery_config_t config;
    gt_delivery_config_init (&config);
    config.secret = secret;
    config.timeout_ms = timeout_ms;
    config.max_concurrent = max_concurrent;
    config.max_per_host = max_per_host;
    config.max_pending = max_pending;
    config.retry_delay_ms = 10;
    gt_delivery_t *delivery = gt_delivery_new (&config);
    assert (delivery);
    return delivery;
}

//  A job for the callback of lease S_LEASE_ID at seq, 10 ms retry base
static gt_callback_job_t *
s_job (uint64_t job_id, const char *url, uint64_t seq, uint32_t max_retries)
{
    gt_meta_entry_t entries [] = {
        { .key = "path", .value = "/tmp/user-upload-123.jpg" },
        { .key = "bucket", .value = "b1" },
    };
    gt_meta_t metadata = { .entries = entries, .count = 2 };
    gt_callback_fields_t fields = {
        .lease_id = S_LEASE_ID,
        .object_id = "/tmp/user-upload-123.jpg",
        .object_type = "TEMPORARY_FILE",
        .service_id = "upload-service",
        .metadata = &metadata,
        .payload = "custom-cleanup-data",
        .reason = "expired",
        .seq = seq,
        .fence = 7
    };
    gt_callback_job_t *job = gt_callback_job_new (job_id, url, &fields);
    assert (job);
    gt_callback_job_set_retry (job, max_retries, 10);
    return job;
}

static void
s_submit (gt_delivery_t *delivery, gt_callback_job_t *job)
{
    int rc = gt_delivery_submit (delivery, &job);
    assert (rc == 0 && job == NULL);
}

//  Next outcome within S_WAIT_MS; asserts one comes
static void
s_next (gt_delivery_t *delivery, gt_delivery_outcome_t *outcome)
{
    zpoller_t *poller = zpoller_new (gt_delivery_sock (delivery), NULL);
    void *which = zpoller_wait (poller, S_WAIT_MS);
    zpoller_destroy (&poller);
    assert (which);
    int rc = gt_delivery_recv (delivery, outcome);
    assert (rc == 0);
}

//  Next outcome must be kind for job_id with this attempt and status;
//  returns retry_in_ms (error text checked by callers that care)
static uint32_t
s_expect (gt_delivery_t *delivery, gt_delivery_kind_t kind, uint64_t job_id,
          uint32_t attempt, int http_status, char **error_p)
{
    gt_delivery_outcome_t outcome;
    s_next (delivery, &outcome);
    if (outcome.kind != kind || outcome.job_id != job_id
    ||  outcome.attempt != attempt || outcome.http_status != http_status) {
        fprintf (stderr, "\nunexpected outcome: kind=%d job=%" PRIu64 " attempt=%" PRIu32
                " status=%d error=%s (wanted kind=%d job=%" PRIu64
                " attempt=%" PRIu32 " status=%d)\n",
                outcome.kind, outcome.job_id, outcome.attempt, outcome.http_status,
                outcome.error, kind, job_id, attempt, http_status);
        assert (false);
    }
    if (kind != GT_DELIVERY_ATTEMPT)
        assert (outcome.retry_in_ms == 0);
    if (error_p)
        *error_p = outcome.error;
    else
        free (outcome.error);
    return outcome.retry_in_ms;
}

//  Read outcomes until `count` jobs have finished; returns how many were DELIVERED
static size_t
s_drain (gt_delivery_t *delivery, size_t count)
{
    size_t finished = 0, delivered = 0;
    while (finished < count) {
        gt_delivery_outcome_t outcome;
        s_next (delivery, &outcome);
        if (outcome.kind != GT_DELIVERY_ATTEMPT)
            finished++;
        if (outcome.kind == GT_DELIVERY_DELIVERED)
            delivered++;
        free (outcome.error);
    }
    return delivered;
}

//  Independent signature check: one-shot libsodium HMAC (32-byte key)
static void
s_assert_signed (const gt_http_request_t *request)
{
    const char *timestamp = gt_http_request_header (request, "X-GarbageTruck-Timestamp");
    const char *signature = gt_http_request_header (request, "X-GarbageTruck-Signature");
    assert (timestamp && signature);
    long long when = atoll (timestamp);
    assert (llabs (when - (long long) time (NULL)) < 60);
    size_t size = strlen (timestamp) + 1 + request->body_size;
    unsigned char *message = malloc (size);
    assert (message);
    memcpy (message, timestamp, strlen (timestamp));
    message [strlen (timestamp)] = '.';
    memcpy (message + strlen (timestamp) + 1, request->body, request->body_size);
    unsigned char mac [crypto_auth_hmacsha256_BYTES];
    assert (strlen (S_SECRET) == crypto_auth_hmacsha256_KEYBYTES);
    crypto_auth_hmacsha256 (mac, message, size, (const unsigned char *) S_SECRET);
    free (message);
    char hex [2 * sizeof (mac) + 1];
    sodium_bin2hex (hex, sizeof (hex), mac, sizeof (mac));
    assert (strncmp (signature, "v1=", 3) == 0);
    assert (streq (signature + 3, hex));
    assert (gt_webhook_verify_signature (request->body, request->body_size, timestamp, signature,
                                         S_SECRET, GT_WEBHOOK_DEFAULT_TOLERANCE_S));
}

//  Parse the body and check every field and their order
static void
s_assert_body (const gt_http_request_t *request, uint64_t seq, uint32_t attempt)
{
    json_error_t error;
    json_t *body = json_loadb (request->body, request->body_size, JSON_REJECT_DUPLICATES, &error);
    assert (json_is_object (body));
    const char *order [] = { "lease_id", "object_id", "object_type", "service_id",
        "metadata", "payload", "reason", "seq", "fence", "attempt" };
    size_t index = 0;
    for (void *iter = json_object_iter (body); iter;
         iter = json_object_iter_next (body, iter), index++) {
        assert (index < 10);
        assert (streq (json_object_iter_key (iter), order [index]));
    }
    assert (index == 10);
    assert (streq (json_string_value (json_object_get (body, "lease_id")), S_LEASE_ID));
    assert (streq (json_string_value (json_object_get (body, "object_id")), "/tmp/user-upload-123.jpg"));
    assert (streq (json_string_value (json_object_get (body, "object_type")), "TEMPORARY_FILE"));
    assert (streq (json_string_value (json_object_get (body, "service_id")), "upload-service"));
    json_t *metadata = json_object_get (body, "metadata");
    assert (json_is_object (metadata) && json_object_size (metadata) == 2);
    assert (streq (json_string_value (json_object_get (metadata, "path")), "/tmp/user-upload-123.jpg"));
    assert (streq (json_string_value (json_object_get (metadata, "bucket")), "b1"));
    assert (streq (json_string_value (json_object_get (body, "payload")), "custom-cleanup-data"));
    assert (streq (json_string_value (json_object_get (body, "reason")), "expired"));
    assert (json_integer_value (json_object_get (body, "seq")) == (json_int_t) seq);
    assert (json_integer_value (json_object_get (body, "fence")) == 7);
    assert (json_integer_value (json_object_get (body, "attempt")) == (json_int_t) attempt);
    json_decref (body);
}

static void
s_assert_headers (const gt_http_request_t *request, uint64_t seq, uint32_t attempt)
{
    assert (streq (request->method, "POST"));
    assert (streq (gt_http_request_header (request, "Content-Type"), "application/json"));
    char expected [64];
    snprintf (expected, sizeof (expected), "%" PRIu64 "-%s", seq, S_LEASE_ID);
    assert (streq (gt_http_request_header (request, "Idempotency-Key"), expected));
    snprintf (expected, sizeof (expected), "%" PRIu32, attempt);
    assert (streq (gt_http_request_header (request, "X-GarbageTruck-Attempt"), expected));
}

//  Body, headers and signature of a first-time success
static void
s_test_delivered (gt_http_server_t *server)
{
    gt_delivery_t *delivery = s_delivery_new (S_SECRET, 5000, 0, 0, 0);
    char *url = gt_http_server_url (server, "/ok");
    s_submit (delivery, s_job (1, url, 42, 3));
    s_expect (delivery, GT_DELIVERY_ATTEMPT, 1, 1, 200, NULL);
    s_expect (delivery, GT_DELIVERY_DELIVERED, 1, 1, 200, NULL);
    assert (gt_delivery_pending (delivery) == 0);
    assert (gt_http_server_count (server) == 1);
    const gt_http_request_t *request = gt_http_server_request (server, 0);
    assert (streq (request->path, "/ok"));
    s_assert_headers (request, 42, 1);
    s_assert_body (request, 42, 1);
    s_assert_signed (request);
    free (url);
    gt_delivery_destroy (&delivery);
    assert (delivery == NULL);

    //  No secret: no signature headers
    delivery = s_delivery_new (NULL, 5000, 0, 0, 0);
    url = gt_http_server_url (server, "/unsigned");
    s_submit (delivery, s_job (2, url, 43, 3));
    s_expect (delivery, GT_DELIVERY_ATTEMPT, 2, 1, 200, NULL);
    s_expect (delivery, GT_DELIVERY_DELIVERED, 2, 1, 200, NULL);
    request = gt_http_server_request (server, 1);
    assert (request && streq (request->path, "/unsigned"));
    assert (!gt_http_request_header (request, "X-GarbageTruck-Signature"));
    assert (!gt_http_request_header (request, "X-GarbageTruck-Timestamp"));
    free (url);
    gt_delivery_destroy (&delivery);
}

//  500 then 200: retried with the same key, a new attempt number and signature;
//  a Retry-After on a 500 is not honoured (only 429 and 503)
static void
s_test_retried (gt_http_server_t *server)
{
    gt_delivery_t *delivery = s_delivery_new (S_SECRET, 5000, 0, 0, 0);
    char *url = gt_http_server_url (server, "/flaky");
    gt_http_response_t failure = { .status = 500, .retry_after = "30" };
    gt_http_server_push (server, "/flaky", &failure);
    size_t base = gt_http_server_count (server);
    s_submit (delivery, s_job (3, url, 44, 3));
    char *error = NULL;
    uint32_t retry_in = s_expect (delivery, GT_DELIVERY_ATTEMPT, 3, 1, 500, &error);
    assert (streq (error, "HTTP 500"));
    free (error);
    assert (retry_in <= 10);                //  [0, 10 * 2^0]
    s_expect (delivery, GT_DELIVERY_ATTEMPT, 3, 2, 200, NULL);
    s_expect (delivery, GT_DELIVERY_DELIVERED, 3, 2, 200, NULL);
    const gt_http_request_t *first = gt_http_server_request (server, base);
    const gt_http_request_t *second = gt_http_server_request (server, base + 1);
    assert (first && second);
    s_assert_headers (first, 44, 1);
    s_assert_headers (second, 44, 2);
    s_assert_body (first, 44, 1);
    s_assert_body (second, 44, 2);
    s_assert_signed (first);
    s_assert_signed (second);
    free (url);
    gt_delivery_destroy (&delivery);
}

//  The server answers later than the request timeout: retried, then delivered
static void
s_test_timeout (gt_http_server_t *server)
{
    gt_delivery_t *delivery = s_delivery_new (NULL, 300, 0, 0, 0);
    char *url = gt_http_server_url (server, "/slow");
    //  Fault injection: answer after 20 s (the server releases it at destroy)
    gt_http_response_t slow = { .status = 200, .delay_ms = 20000 };
    gt_http_server_push (server, "/slow", &slow);
    s_submit (delivery, s_job (4, url, 45, 3));
    char *error = NULL;
    s_expect (delivery, GT_DELIVERY_ATTEMPT, 4, 1, 0, &error);
    assert (strstr (error, "imed out"));    //  "Operation timed out after ..."
    free (error);
    s_expect (delivery, GT_DELIVERY_ATTEMPT, 4, 2, 200, NULL);
    s_expect (delivery, GT_DELIVERY_DELIVERED, 4, 2, 200, NULL);
    free (url);
    gt_delivery_destroy (&delivery);
}

//  404 fails at once; so does a scheme curl may not use
static void
s_test_permanent (gt_http_server_t *server)
{
    gt_delivery_t *delivery = s_delivery_new (NULL, 5000, 0, 0, 0);
    char *url = gt_http_server_url (server, "/gone");
    gt_http_response_t gone = { .status = 404 };
    gt_http_server_set_default (server, &gone);
    size_t base = gt_http_server_count (server);
    s_submit (delivery, s_job (5, url, 46, 3));
    assert (s_expect (delivery, GT_DELIVERY_ATTEMPT, 5, 1, 404, NULL) == 0);
    char *error = NULL;
    s_expect (delivery, GT_DELIVERY_DEAD, 5, 1, 404, &error);
    assert (streq (error, "HTTP 404"));
    free (error);
    //  The job is gone from the engine, so no request can follow
    assert (gt_http_server_count (server) == base + 1);
    gt_http_response_t ok = { .status = 200 };
    gt_http_server_set_default (server, &ok);

    //  A redirect is not followed: it fails like any other non-2xx
    gt_http_response_t moved = { .status = 302 };
    gt_http_server_push (server, "/gone", &moved);
    s_submit (delivery, s_job (6, url, 47, 3));
    s_expect (delivery, GT_DELIVERY_ATTEMPT, 6, 1, 302, NULL);
    s_expect (delivery, GT_DELIVERY_DEAD, 6, 1, 302, NULL);

    s_submit (delivery, s_job (7, "ftp://127.0.0.1/x", 48, 3));
    s_expect (delivery, GT_DELIVERY_ATTEMPT, 7, 1, 0, NULL);
    s_expect (delivery, GT_DELIVERY_DEAD, 7, 1, 0, NULL);
    free (url);
    gt_delivery_destroy (&delivery);
}

//  429 with Retry-After: 1 -> the retry waits at least a second
static void
s_test_retry_after (gt_http_server_t *server)
{
    gt_delivery_t *delivery = s_delivery_new (NULL, 5000, 0, 0, 0);
    char *url = gt_http_server_url (server, "/busy");
    gt_http_response_t busy = { .status = 429, .retry_after = "1" };
    gt_http_server_push (server, "/busy", &busy);
    size_t base = gt_http_server_count (server);
    s_submit (delivery, s_job (8, url, 49, 3));
    uint32_t retry_in = s_expect (delivery, GT_DELIVERY_ATTEMPT, 8, 1, 429, NULL);
    assert (retry_in >= 1000);
    s_expect (delivery, GT_DELIVERY_ATTEMPT, 8, 2, 200, NULL);
    s_expect (delivery, GT_DELIVERY_DELIVERED, 8, 2, 200, NULL);
    const gt_http_request_t *first = gt_http_server_request (server, base);
    const gt_http_request_t *second = gt_http_server_request (server, base + 1);
    //  Correctness, not speed: the retry must not come early (2 ms for
    //  the server's millisecond truncation)
    assert (second->received_ms >= first->received_ms + 1000 - 2);
    free (url);
    gt_delivery_destroy (&delivery);
}

//  A TCP port that refuses connections: bound, never listening
static int
s_refusing_socket (int *port_p)
{
    int fd = socket (AF_INET, SOCK_STREAM, 0);
    assert (fd >= 0);
    struct sockaddr_in address = { .sin_family = AF_INET };
    address.sin_addr.s_addr = htonl (INADDR_LOOPBACK);
    int rc = bind (fd, (struct sockaddr *) &address, sizeof (address));
    assert (rc == 0);
    socklen_t size = sizeof (address);
    rc = getsockname (fd, (struct sockaddr *) &address, &size);
    assert (rc == 0);
    *port_p = ntohs (address.sin_port);
    return fd;
}

//  Retries run out -> DEAD after max_retries + 1 attempts; a resubmission
//  (manual retry) then delivers; a resumed job continues its count
static void
s_test_exhausted (gt_http_server_t *server)
{
    gt_delivery_t *delivery = s_delivery_new (NULL, 5000, 0, 0, 0);
    char *url = gt_http_server_url (server, "/down");
    gt_http_response_t failure = { .status = 503 };
    for (int i = 0; i < 3; i++)
        gt_http_server_push (server, "/down", &failure);
    gt_callback_job_t *job = s_job (9, url, 50, 2);
    char *stored = strdup (gt_callback_job_body (job));
    s_submit (delivery, job);
    assert (s_expect (delivery, GT_DELIVERY_ATTEMPT, 9, 1, 503, NULL) <= 10);
    assert (s_expect (delivery, GT_DELIVERY_ATTEMPT, 9, 2, 503, NULL) <= 20);
    assert (s_expect (delivery, GT_DELIVERY_ATTEMPT, 9, 3, 503, NULL) == 0);
    char *error = NULL;
    s_expect (delivery, GT_DELIVERY_DEAD, 9, 3, 503, &error);
    assert (streq (error, "HTTP 503"));
    free (error);

    //  gtctl retry: the same callback again, from its stored form
    size_t base = gt_http_server_count (server);
    job = gt_callback_job_load (10, url, stored);
    assert (job);
    s_submit (delivery, job);
    s_expect (delivery, GT_DELIVERY_ATTEMPT, 10, 1, 200, NULL);
    s_expect (delivery, GT_DELIVERY_DELIVERED, 10, 1, 200, NULL);
    const gt_http_request_t *request = gt_http_server_request (server, base);
    s_assert_headers (request, 50, 1);      //  same Idempotency-Key
    s_assert_body (request, 50, 1);

    //  Resumed after a restart with 2 attempts made and max_retries 2: one
    //  attempt left, numbered 3
    gt_http_server_push (server, "/down", &failure);
    job = s_job (11, url, 51, 2);
    gt_callback_job_set_attempts (job, 2, 0);
    s_submit (delivery, job);
    s_expect (delivery, GT_DELIVERY_ATTEMPT, 11, 3, 503, NULL);
    s_expect (delivery, GT_DELIVERY_DEAD, 11, 3, 503, NULL);
    request = gt_http_server_request (server, base + 1);
    s_assert_headers (request, 51, 3);

    //  Connection refused is retried, then dead with status 0
    int port;
    int fd = s_refusing_socket (&port);
    char refused [64];
    snprintf (refused, sizeof (refused), "http://127.0.0.1:%d/x", port);
    s_submit (delivery, s_job (12, refused, 52, 1));
    s_expect (delivery, GT_DELIVERY_ATTEMPT, 12, 1, 0, NULL);
    s_expect (delivery, GT_DELIVERY_ATTEMPT, 12, 2, 0, &error);
    assert (*error);
    free (error);
    s_expect (delivery, GT_DELIVERY_DEAD, 12, 2, 0, NULL);
    close (fd);
    free (stored);
    free (url);
    gt_delivery_destroy (&delivery);
}

//  Caps: per endpoint (others keep going) and overall
static void
s_test_concurrency (void)
{
    gt_http_server_t *saturated = gt_http_server_new ();
    gt_http_server_t *other = gt_http_server_new ();
    assert (saturated && other);
    gt_http_response_t held = { .status = 200, .hold = true };
    gt_http_server_set_default (saturated, &held);

    gt_delivery_t *delivery = s_delivery_new (NULL, 30000, 8, 3, 0);
    char *url = gt_http_server_url (saturated, "/cap");
    for (uint64_t id = 100; id < 110; id++)
        s_submit (delivery, s_job (id, url, id, 0));
    assert (gt_http_server_wait_in_flight (saturated, 3, S_WAIT_MS));
    //  The saturated endpoint does not hold up another one
    char *other_url = gt_http_server_url (other, "/free");
    s_submit (delivery, s_job (200, other_url, 200, 0));
    s_expect (delivery, GT_DELIVERY_ATTEMPT, 200, 1, 200, NULL);
    s_expect (delivery, GT_DELIVERY_DELIVERED, 200, 1, 200, NULL);
    assert (gt_http_server_in_flight (saturated) == 3);
    assert (gt_delivery_pending (delivery) == 10);
    gt_http_server_gate (saturated, true);
    assert (s_drain (delivery, 10) == 10);
    assert (gt_http_server_count (saturated) == 10);
    assert (gt_http_server_max_in_flight (saturated) == 3);
    free (url);
    gt_delivery_destroy (&delivery);

    //  Overall cap 4, endpoint cap 32: the overall cap binds
    gt_http_server_gate (saturated, false);
    size_t base = gt_http_server_count (saturated);
    delivery = s_delivery_new (NULL, 30000, 4, 32, 0);
    url = gt_http_server_url (saturated, "/total");
    for (uint64_t id = 300; id < 310; id++)
        s_submit (delivery, s_job (id, url, id, 0));
    assert (gt_http_server_wait_in_flight (saturated, 4, S_WAIT_MS));
    assert (gt_http_server_max_in_flight (saturated) == 4);
    gt_http_server_gate (saturated, true);
    assert (s_drain (delivery, 10) == 10);
    assert (gt_http_server_count (saturated) == base + 10);
    assert (gt_http_server_max_in_flight (saturated) == 4);
    free (url);
    free (other_url);
    gt_delivery_destroy (&delivery);
    gt_http_server_destroy (&other);
    gt_http_server_destroy (&saturated);
}

//  max_pending refuses, the refused job stays with the caller, and room
//  comes back as jobs finish; destroy with work in flight and in backoff
static void
s_test_max_pending (void)
{
    gt_http_server_t *server = gt_http_server_new ();
    assert (server);
    gt_http_response_t held = { .status = 200, .hold = true };
    gt_http_server_set_default (server, &held);
    gt_delivery_t *delivery = s_delivery_new (NULL, 30000, 0, 0, 3);
    char *url = gt_http_server_url (server, "/p");
    for (uint64_t id = 1; id <= 3; id++)
        s_submit (delivery, s_job (id, url, id, 0));
    gt_callback_job_t *job = s_job (4, url, 4, 0);
    assert (gt_delivery_submit (delivery, &job) == -1);
    assert (job);                           //  still ours
    assert (gt_delivery_pending (delivery) == 3);
    gt_http_server_gate (server, true);
    assert (s_drain (delivery, 3) == 3);
    assert (gt_delivery_pending (delivery) == 0);
    assert (gt_delivery_submit (delivery, &job) == 0);
    assert (job == NULL);
    assert (s_drain (delivery, 1) == 1);

    //  Leave one held in flight and one waiting out a long backoff
    gt_http_server_gate (server, false);
    s_submit (delivery, s_job (5, url, 5, 0));
    assert (gt_http_server_wait_in_flight (server, 1, S_WAIT_MS));
    gt_http_response_t failure = { .status = 500 };
    gt_http_server_push (server, "/retry", &failure);
    char *retry_url = gt_http_server_url (server, "/retry");
    job = s_job (6, retry_url, 6, 3);
    gt_callback_job_set_retry (job, 3, 3600000);
    s_submit (delivery, job);
    s_expect (delivery, GT_DELIVERY_ATTEMPT, 6, 1, 500, NULL);
    //  And one delayed before its first attempt
    job = s_job (7, url, 7, 0);
    gt_callback_job_set_attempts (job, 0, 3600000);
    s_submit (delivery, job);
    gt_delivery_destroy (&delivery);        //  no outcomes, no leaks
    free (retry_url);
    free (url);
    gt_http_server_destroy (&server);
}

//  Wait (with a deadline) until the engine counts this many jobs pending
static void
s_wait_pending (gt_delivery_t *delivery, size_t count)
{
    int64_t deadline = zclock_mono () + S_WAIT_MS;
    while (gt_delivery_pending (delivery) != count) {
        assert (zclock_mono () < deadline);
        zclock_sleep (1);
    }
}

//  Cancelled jobs (their owner handed them over): the waiting ones go at
//  once (ready behind a busy endpoint, delayed, in backoff), the one in
//  flight ends with its attempt and is not retried; none yields an outcome;
//  the others go on, and an id cancelled before may be used again
static void
s_test_cancel (void)
{
    gt_http_server_t *server = gt_http_server_new ();
    gt_http_server_t *other = gt_http_server_new ();
    assert (server && other);
    gt_http_response_t held = { .status = 500, .hold = true };
    gt_http_server_set_default (server, &held);
    gt_http_response_t failure = { .status = 500 };
    gt_http_server_set_default (other, &failure);
    gt_delivery_t *delivery = s_delivery_new (NULL, 30000, 8, 1, 0);
    char *url = gt_http_server_url (server, "/c");
    char *other_url = gt_http_server_url (other, "/c");
    //  1 in flight (held), 2 and 3 ready behind it (one request per endpoint)
    s_submit (delivery, s_job (1, url, 1, 3));
    assert (gt_http_server_wait_in_flight (server, 1, S_WAIT_MS));
    s_submit (delivery, s_job (2, url, 2, 3));
    s_submit (delivery, s_job (3, url, 3, 0));
    //  4 delayed before its first attempt, 5 waiting out a long backoff
    gt_callback_job_t *job = s_job (4, url, 4, 3);
    gt_callback_job_set_attempts (job, 0, 3600000);
    s_submit (delivery, job);
    job = s_job (5, other_url, 5, 3);
    gt_callback_job_set_retry (job, 3, 3600000);
    s_submit (delivery, job);
    s_expect (delivery, GT_DELIVERY_ATTEMPT, 5, 1, 500, NULL);
    assert (gt_delivery_pending (delivery) == 5);
    uint64_t ids [] = { 5, 99, 1, 4, 2 };   //  99: unknown, ignored
    gt_delivery_cancel (delivery, ids, 5);
    gt_delivery_cancel (delivery, ids, 0);
    s_wait_pending (delivery, 2);           //  1 (in flight) and 3
    //  1's attempt ends (500): no outcome, no retry; 3 goes next (2 is gone)
    gt_http_server_gate (server, true);
    s_expect (delivery, GT_DELIVERY_ATTEMPT, 3, 1, 500, NULL);
    s_expect (delivery, GT_DELIVERY_DEAD, 3, 1, 500, NULL);
    assert (gt_delivery_pending (delivery) == 0);
    assert (gt_http_server_count (server) == 2 && gt_http_server_count (other) == 1);
    //  A cancelled id used again is a job like any other; a job cancelled
    //  at once yields nothing, wherever the cancel finds it
    gt_http_response_t ok = { .status = 200 };
    gt_http_server_set_default (server, &ok);
    s_submit (delivery, s_job (1, url, 1, 0));
    s_expect (delivery, GT_DELIVERY_ATTEMPT, 1, 1, 200, NULL);
    s_expect (delivery, GT_DELIVERY_DELIVERED, 1, 1, 200, NULL);
    gt_http_server_gate (server, false);
    gt_http_response_t held_ok = { .status = 200, .hold = true };
    gt_http_server_push (server, "/held", &held_ok);
    char *held_url = gt_http_server_url (server, "/held");
    s_submit (delivery, s_job (20, held_url, 20, 3));
    uint64_t at_once [] = { 20 };
    gt_delivery_cancel (delivery, at_once, 1);
    s_submit (delivery, s_job (21, url, 21, 3));
    gt_http_server_gate (server, true);
    s_expect (delivery, GT_DELIVERY_ATTEMPT, 21, 1, 200, NULL);
    s_expect (delivery, GT_DELIVERY_DELIVERED, 21, 1, 200, NULL);
    s_wait_pending (delivery, 0);
    free (held_url);
    free (url);
    free (other_url);
    gt_delivery_destroy (&delivery);
    gt_http_server_destroy (&other);
    gt_http_server_destroy (&server);
}

void
gt_delivery_test (bool verbose)
{
    (void) verbose;
    printf (" * gt_delivery: ");
    fflush (stdout);
    gt_http_server_t *server = gt_http_server_new ();
    assert (server);
    s_test_delivered (server);
    s_test_retried (server);
    s_test_timeout (server);
    s_test_permanent (server);
    s_test_retry_after (server);
    s_test_exhausted (server);
    gt_http_server_destroy (&server);
    s_test_concurrency ();
    s_test_max_pending ();
    s_test_cancel ();
    printf ("OK\n");
}

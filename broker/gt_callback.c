/*  gt_callback.c — one cleanup callback job: body, key, signature.
    The contract is in gt_callback.h and proto-spec/CALLBACKS.md.  */

#include "gt_callback.h"
#include <czmq.h>
#include <sodium.h>
#include <inttypes.h>
#include <curl/curl.h>
#include <pthread.h>

struct _gt_callback_job_t {
    uint64_t id;                    //  caller's handle, echoed in outcomes
    char *url;                      //  cleanup endpoint
    char *key;                      //  Idempotency-Key "<seq>-<lease_id>"
    char *body;                     //  compact JSON body without "attempt"
    uint32_t max_retries;           //  retries after the first attempt
    uint32_t retry_delay_ms;        //  backoff base
    uint32_t attempts;              //  attempts made so far
    uint32_t delay_ms;              //  wait before the next (first submitted) attempt
};

static int
s_meta_compare (const void *a, const void *b)
{
    const gt_meta_entry_t *left = *(const gt_meta_entry_t * const *) a;
    const gt_meta_entry_t *right = *(const gt_meta_entry_t * const *) b;
    return strcmp (left->key, right->key);
}

//  Metadata as a JSON object with keys sorted (stable bodies, like LEASE)
static json_t *
s_metadata_json (const gt_meta_t *metadata)
{
    json_t *object = json_object ();
    if (!object || !metadata || metadata->count == 0)
        return object;
    const gt_meta_entry_t **sorted = calloc (metadata->count, sizeof (*sorted));
    if (!sorted) {
        json_decref (object);
        return NULL;
    }
    for (size_t i = 0; i < metadata->count; i++)
        sorted [i] = &metadata->entries [i];
    qsort (sorted, metadata->count, sizeof (*sorted), s_meta_compare);
    for (size_t i = 0; i < metadata->count; i++)
        if (!sorted [i]->key || !sorted [i]->value
        ||  json_object_set_new (object, sorted [i]->key,
                                 json_string (sorted [i]->value))) {
            json_decref (object);
            object = NULL;
            break;
        }
    free (sorted);
    return object;
}

static gt_callback_job_t *
s_job_new (uint64_t job_id, const char *url, const char *lease_id, uint64_t seq)
{
    gt_callback_job_t *self = calloc (1, sizeof (*self));
    if (!self)
        return NULL;
    self->id = job_id;
    self->url = strdup (url);
    self->key = zsys_sprintf ("%" PRIu64 "-%s", seq, lease_id);
    self->max_retries = GT_CALLBACK_DEFAULT;
    self->retry_delay_ms = GT_CALLBACK_DEFAULT;
    if (!self->url || !self->key)
        gt_callback_job_destroy (&self);
    return self;
}

gt_callback_job_t *
gt_callback_job_new (uint64_t job_id, const char *url,
                     const gt_callback_fields_t *fields)
{
    assert (fields);
    if (!url || !*url || !fields->lease_id || !fields->object_id
    ||  !fields->object_type || !fields->service_id || !fields->reason
    ||  fields->seq > INT64_MAX || fields->fence > INT64_MAX)
        return NULL;

    json_t *body = json_object ();
    json_t *metadata = s_metadata_json (fields->metadata);
    if (!body || !metadata) {
        json_decref (body);
        json_decref (metadata);
        return NULL;
    }
    //  Insertion order is the documented key order (jansson keeps it)
    int rc = json_object_set_new (body, "lease_id", json_string (fields->lease_id))
           | json_object_set_new (body, "object_id", json_string (fields->object_id))
           | json_object_set_new (body, "object_type", json_string (fields->object_type))
           | json_object_set_new (body, "service_id", json_string (fields->service_id))
           | json_object_set_new (body, "metadata", metadata)
           | json_object_set_new (body, "payload",
                                  json_string (fields->payload? fields->payload: ""))
           | json_object_set_new (body, "reason", json_string (fields->reason))
           | json_object_set_new (body, "seq", json_integer ((json_int_t) fields->seq))
           | json_object_set_new (body, "fence", json_integer ((json_int_t) fields->fence));
    //  json_string returns NULL for invalid UTF-8, which makes set_new fail
    gt_callback_job_t *self = NULL;
    if (rc == 0)
        self = s_job_new (job_id, url, fields->lease_id, fields->seq);
    if (self) {
        self->body = json_dumps (body, JSON_COMPACT);
        if (!self->body)
            gt_callback_job_destroy (&self);
    }
    json_decref (body);
    return self;
}

gt_callback_job_t *
gt_callback_job_from_lease (uint64_t job_id, const gt_lease_info_t *lease,
                            gt_reason_t reason, uint64_t seq)
{
    assert (lease);
    const char *object_type = gt_object_type_name (lease->object_type);
    const char *reason_name = gt_reason_name (reason);
    if (!lease->cleanup || !object_type || !reason_name || reason == GT_REASON_NONE)
        return NULL;
    gt_callback_fields_t fields = {
        .lease_id = lease->id,
        .object_id = lease->object_id,
        .object_type = object_type,
        .service_id = lease->service_id,
        .metadata = &lease->metadata,
        .payload = lease->cleanup->payload,
        .reason = reason_name,
        .seq = seq,
        .fence = lease->fence
    };
    gt_callback_job_t *self = gt_callback_job_new (job_id, lease->cleanup->url, &fields);
    if (self) {
        if (lease->cleanup->has_max_retries)
            self->max_retries = lease->cleanup->max_retries;
        if (lease->cleanup->has_retry_delay)
            self->retry_delay_ms = lease->cleanup->retry_delay_ms > UINT32_MAX - 1
                                 ? UINT32_MAX - 1
                                 : (uint32_t) lease->cleanup->retry_delay_ms;
    }
    return self;
}

gt_callback_job_t *
gt_callback_job_load (uint64_t job_id, const char *url, const char *body)
{
    if (!url || !*url || !body)
        return NULL;
    json_t *object = json_loads (body, JSON_REJECT_DUPLICATES, NULL);
    json_t *lease_id = json_object_get (object, "lease_id");
    json_t *seq = json_object_get (object, "seq");
    gt_callback_job_t *self = NULL;
    if (json_is_object (object) && json_is_string (lease_id)
    &&  json_is_integer (seq) && json_integer_value (seq) >= 0) {
        //  Re-dump: the stored form never carries "attempt"
        json_object_del (object, "attempt");
        self = s_job_new (job_id, url, json_string_value (lease_id),
                          (uint64_t) json_integer_value (seq));
        if (self) {
            self->body = json_dumps (object, JSON_COMPACT);
            if (!self->body)
                gt_callback_job_destroy (&self);
        }
    }
    json_decref (object);
    return self;
}

void
gt_callback_job_destroy (gt_callback_job_t **self_p)
{
    assert (self_p);
    gt_callback_job_t *self = *self_p;
    if (self) {
        free (self->url);
        free (self->key);
        free (self->body);
        free (self);
        *self_p = NULL;
    }
}

void
gt_callback_job_set_retry (gt_callback_job_t *self, uint32_t max_retries,
                           uint32_t retry_delay_ms)
{
    assert (self);
    self->max_retries = max_retries;
    self->retry_delay_ms = retry_delay_ms;
}

void
gt_callback_job_set_attempts (gt_callback_job_t *self, uint32_t attempts,
                              uint32_t delay_ms)
{
    assert (self);
    self->attempts = attempts;
    self->delay_ms = delay_ms;
}

void
gt_callback_job_apply_defaults (gt_callback_job_t *self, uint32_t max_retries,
                                uint32_t retry_delay_ms)
{
    assert (self);
    if (self->max_retries == GT_CALLBACK_DEFAULT)
        self->max_retries = max_retries;
    if (self->retry_delay_ms == GT_CALLBACK_DEFAULT)
        self->retry_delay_ms = retry_delay_ms;
}

uint64_t gt_callback_job_id (const gt_callback_job_t *self) { return self->id; }
const char *gt_callback_job_url (const gt_callback_job_t *self) { return self->url; }
const char *gt_callback_job_idempotency_key (const gt_callback_job_t *self) { return self->key; }
const char *gt_callback_job_body (const gt_callback_job_t *self) { return self->body; }
uint32_t gt_callback_job_attempts (const gt_callback_job_t *self) { return self->attempts; }
uint32_t gt_callback_job_max_retries (const gt_callback_job_t *self) { return self->max_retries; }
uint32_t gt_callback_job_retry_delay (const gt_callback_job_t *self) { return self->retry_delay_ms; }
uint32_t gt_callback_job_delay (const gt_callback_job_t *self) { return self->delay_ms; }

char *
gt_callback_job_next_attempt (gt_callback_job_t *self, uint32_t *attempt_p)
{
    assert (self);
    json_t *body = json_loads (self->body, 0, NULL);
    //  The stored body came from json_dumps, so only memory can fail here
    if (!body)
        return NULL;
    uint32_t attempt = self->attempts + 1;
    char *text = NULL;
    if (json_object_set_new (body, "attempt", json_integer (attempt)) == 0)
        text = json_dumps (body, JSON_COMPACT);
    json_decref (body);
    if (text) {
        self->attempts = attempt;
        self->delay_ms = 0;
        if (attempt_p)
            *attempt_p = attempt;
    }
    return text;
}

int
gt_callback_sign (const char *secret, const char *timestamp,
                  const void *body, size_t body_size,
                  char signature [GT_CALLBACK_SIGNATURE_SIZE])
{
    assert (secret && timestamp && signature);
    assert (body || body_size == 0);
    if (sodium_init () < 0)
        return -1;
    crypto_auth_hmacsha256_state state;
    unsigned char mac [crypto_auth_hmacsha256_BYTES];
    crypto_auth_hmacsha256_init (&state, (const unsigned char *) secret, strlen (secret));
    crypto_auth_hmacsha256_update (&state, (const unsigned char *) timestamp, strlen (timestamp));
    crypto_auth_hmacsha256_update (&state, (const unsigned char *) ".", 1);
    crypto_auth_hmacsha256_update (&state, (const unsigned char *) body, body_size);
    crypto_auth_hmacsha256_final (&state, mac);
    memcpy (signature, "v1=", 3);
    sodium_bin2hex (signature + 3, GT_CALLBACK_SIGNATURE_SIZE - 3, mac, sizeof (mac));
    sodium_memzero (&state, sizeof (state));
    return 0;
}

bool
gt_callback_verify (const char *secret, const char *timestamp,
                    const void *body, size_t body_size, const char *signature)
{
    if (!secret || !timestamp || !signature || (!body && body_size)
    ||  strlen (signature) != GT_CALLBACK_SIGNATURE_SIZE - 1)
        return false;
    char expected [GT_CALLBACK_SIGNATURE_SIZE];
    if (gt_callback_sign (secret, timestamp, body, body_size, expected))
        return false;
    return sodium_memcmp (expected, signature, GT_CALLBACK_SIGNATURE_SIZE - 1) == 0;
}

//  --------------------------------------------------------------------------
//  Process-wide library set-up

static pthread_once_t s_global_once = PTHREAD_ONCE_INIT;
static bool s_global_ready = false;

static void
s_global_init (void)
{
    //  Never cleaned up: other modules in the process may use libcurl too
    s_global_ready = sodium_init () >= 0
                  && curl_global_init (CURL_GLOBAL_DEFAULT) == CURLE_OK;
}

bool
gt_callback_global_init (void)
{
    pthread_once (&s_global_once, s_global_init);
    return s_global_ready;
}

//  --------------------------------------------------------------------------
//  Cleanup URL policy

//  Length of scheme + "://" + authority at the start of s
static size_t
s_authority_end (const char *s, size_t length)
{
    const char *separator = strstr (s, "://");
    if (!separator || (size_t) (separator - s) >= length)
        return length;
    size_t index = (size_t) (separator - s) + 3;
    while (index < length && s [index] != '/' && s [index] != '?' && s [index] != '#')
        index++;
    return index;
}

static bool
s_prefix_matches (const char *prefix, size_t length, const char *url)
{
    if (strlen (url) < length)
        return false;
    size_t authority = s_authority_end (prefix, length);
    if (strncasecmp (prefix, url, authority) != 0
    ||  memcmp (prefix + authority, url + authority, length - authority) != 0)
        return false;
    if (authority == length) {
        //  A bare origin only matches at the end of the URL's authority
        char next = url [length];
        return next == 0 || next == '/' || next == '?' || next == '#';
    }
    return true;
}

bool
gt_callback_url_allowed (const char *allow_list, const char *url)
{
    if (!url || !gt_callback_global_init ())
        return false;
    size_t length = strlen (url);
    if (length == 0 || length > GT_MAX_URL)
        return false;
    for (size_t i = 0; i < length; i++)
        if ((unsigned char) url [i] <= ' ' || url [i] == 0x7f)
            return false;
    size_t scheme = strncasecmp (url, "http://", 7) == 0? 7
                  : strncasecmp (url, "https://", 8) == 0? 8: 0;
    //  An authority right after "://" (curl would read "http:///x" as host "x")
    if (scheme == 0 || s_authority_end (url, length) == scheme)
        return false;
    CURLU *handle = curl_url ();
    char *host = NULL;
    bool valid = handle
              && curl_url_set (handle, CURLUPART_URL, url, 0) == CURLUE_OK
              && curl_url_get (handle, CURLUPART_HOST, &host, 0) == CURLUE_OK
              && host && *host;
    curl_free (host);
    curl_url_cleanup (handle);
    if (!valid)
        return false;
    if (!allow_list)
        return true;

    bool any_entry = false;
    const char *cursor = allow_list;
    while (*cursor) {
        const char *end = strchr (cursor, ',');
        if (!end)
            end = cursor + strlen (cursor);
        const char *start = cursor;
        while (start < end && isspace ((unsigned char) *start))
            start++;
        const char *stop = end;
        while (stop > start && isspace ((unsigned char) stop [-1]))
            stop--;
        if (stop > start) {
            any_entry = true;
            //  Bounded copy so the entry is a C string for s_authority_end
            char entry [GT_MAX_URL + 1];
            size_t entry_length = (size_t) (stop - start);
            if (entry_length <= GT_MAX_URL) {
                memcpy (entry, start, entry_length);
                entry [entry_length] = 0;
                if (s_prefix_matches (entry, entry_length, url))
                    return true;
            }
        }
        cursor = *end? end + 1: end;
    }
    return !any_entry;
}

//  --------------------------------------------------------------------------
//  Selftest

static void
s_test_body (bool verbose)
{
    gt_meta_entry_t entries [] = {
        { .key = "zeta", .value = "last" },
        { .key = "path", .value = "/tmp/user-upload-123.jpg" },
    };
    gt_meta_t metadata = { .entries = entries, .count = 2 };
    gt_callback_fields_t fields = {
        .lease_id = "9f0c5b8e1d2a4c6b8e0f1a2b3c4d5e6f",
        .object_id = "/tmp/user-upload-123.jpg",
        .object_type = "TEMPORARY_FILE",
        .service_id = "upload-service",
        .metadata = &metadata,
        .payload = "custom-cleanup-data",
        .reason = "expired",
        .seq = 42,
        .fence = 7
    };
    gt_callback_job_t *job = gt_callback_job_new (5, "http://127.0.0.1:1/x", &fields);
    assert (job);
    assert (gt_callback_job_id (job) == 5);
    assert (streq (gt_callback_job_url (job), "http://127.0.0.1:1/x"));
    assert (streq (gt_callback_job_idempotency_key (job),
                   "42-9f0c5b8e1d2a4c6b8e0f1a2b3c4d5e6f"));
    assert (gt_callback_job_max_retries (job) == GT_CALLBACK_DEFAULT);
    gt_callback_job_apply_defaults (job, 3, 5000);
    assert (gt_callback_job_max_retries (job) == 3);
    assert (gt_callback_job_retry_delay (job) == 5000);

    const char *expected_stored =
        "{\"lease_id\":\"9f0c5b8e1d2a4c6b8e0f1a2b3c4d5e6f\","
        "\"object_id\":\"/tmp/user-upload-123.jpg\",\"object_type\":\"TEMPORARY_FILE\","
        "\"service_id\":\"upload-service\","
        "\"metadata\":{\"path\":\"/tmp/user-upload-123.jpg\",\"zeta\":\"last\"},"
        "\"payload\":\"custom-cleanup-data\",\"reason\":\"expired\",\"seq\":42,\"fence\":7}";
    if (verbose)
        printf ("\n   stored body: %s\n", gt_callback_job_body (job));
    assert (streq (gt_callback_job_body (job), expected_stored));

    uint32_t attempt = 0;
    char *body = gt_callback_job_next_attempt (job, &attempt);
    assert (body && attempt == 1 && gt_callback_job_attempts (job) == 1);
    //  Same text plus "attempt" last
    char *expected = zsys_sprintf ("%.*s,\"attempt\":1}",
                                   (int) strlen (expected_stored) - 1, expected_stored);
    assert (streq (body, expected));
    freen (expected);
    freen (body);
    body = gt_callback_job_next_attempt (job, &attempt);
    assert (attempt == 2 && strstr (body, ",\"attempt\":2}"));
    freen (body);

    //  Stored form round-trips through load, key and all; an "attempt" in
    //  the stored text is dropped
    gt_callback_job_t *copy = gt_callback_job_load (6, "http://h/", expected_stored);
    assert (copy);
    assert (streq (gt_callback_job_body (copy), expected_stored));
    assert (streq (gt_callback_job_idempotency_key (copy), gt_callback_job_idempotency_key (job)));
    assert (gt_callback_job_attempts (copy) == 0);
    gt_callback_job_destroy (&copy);
    copy = gt_callback_job_load (6, "http://h/", "{\"lease_id\":\"a\",\"seq\":3,\"attempt\":9}");
    assert (copy && streq (gt_callback_job_body (copy), "{\"lease_id\":\"a\",\"seq\":3}"));
    assert (streq (gt_callback_job_idempotency_key (copy), "3-a"));
    gt_callback_job_destroy (&copy);
    gt_callback_job_destroy (&job);
    assert (job == NULL);

    //  Bad stored forms and fields are refused, not crashed on
    assert (!gt_callback_job_load (1, "http://h/", "not json"));
    assert (!gt_callback_job_load (1, "http://h/", "[1]"));
    assert (!gt_callback_job_load (1, "http://h/", "{\"lease_id\":\"a\",\"seq\":-1}"));
    assert (!gt_callback_job_load (1, "http://h/", "{\"lease_id\":1,\"seq\":1}"));
    assert (!gt_callback_job_load (1, "", "{\"lease_id\":\"a\",\"seq\":1}"));
    gt_callback_fields_t bad = fields;
    bad.seq = (uint64_t) INT64_MAX + 1;
    assert (!gt_callback_job_new (1, "http://h/", &bad));
    bad = fields;
    bad.reason = NULL;
    assert (!gt_callback_job_new (1, "http://h/", &bad));
    bad = fields;
    bad.object_id = "\xff\xfe";           //  not UTF-8
    assert (!gt_callback_job_new (1, "http://h/", &bad));

    //  No metadata, no payload: {} and ""
    bad = fields;
    bad.metadata = NULL;
    bad.payload = NULL;
    job = gt_callback_job_new (1, "http://h/", &bad);
    assert (job && strstr (gt_callback_job_body (job), "\"metadata\":{},\"payload\":\"\","));
    gt_callback_job_destroy (&job);
}

static void
s_test_from_lease (void)
{
    gt_cleanup_t cleanup = {
        .url = "http://127.0.0.1:9/cleanup", .payload = NULL,
        .has_max_retries = true, .max_retries = 7,
        .has_retry_delay = true, .retry_delay_ms = 250
    };
    gt_lease_info_t lease = {
        .id = "00112233445566778899aabbccddeeff",
        .object_id = "row-1", .object_type = GT_TYPE_DATABASE_ROW,
        .service_id = "svc", .fence = 3, .cleanup = &cleanup
    };
    gt_callback_job_t *job = gt_callback_job_from_lease (9, &lease, GT_REASON_RELEASED, 11);
    assert (job);
    assert (streq (gt_callback_job_url (job), "http://127.0.0.1:9/cleanup"));
    assert (gt_callback_job_max_retries (job) == 7);
    assert (gt_callback_job_retry_delay (job) == 250);
    assert (streq (gt_callback_job_body (job),
        "{\"lease_id\":\"00112233445566778899aabbccddeeff\",\"object_id\":\"row-1\","
        "\"object_type\":\"DATABASE_ROW\",\"service_id\":\"svc\",\"metadata\":{},"
        "\"payload\":\"\",\"reason\":\"released\",\"seq\":11,\"fence\":3}"));
    gt_callback_job_destroy (&job);
    lease.cleanup = NULL;
    assert (!gt_callback_job_from_lease (9, &lease, GT_REASON_RELEASED, 11));
}

static void
s_test_signature (void)
{
    //  Known answers computed independently (Python hmac/hashlib)
    const char *body = "{\"seq\":1}";
    char signature [GT_CALLBACK_SIGNATURE_SIZE];
    assert (gt_callback_sign ("s3cret", "1700000000", body, strlen (body), signature) == 0);
    assert (streq (signature,
        "v1=cbdcfdffb94ac16f20fc7dff420aed60e8abb875b1394e892e008fdba0124439"));
    //  A secret longer than the HMAC block (64 bytes) is hashed first
    char long_secret [101];
    memset (long_secret, 'k', 100);
    long_secret [100] = 0;
    assert (gt_callback_sign (long_secret, "1700000000", body, strlen (body), signature) == 0);
    assert (streq (signature,
        "v1=f9288c808cf4669b372387fb974a68438f9fe57eb2e1071c38e5201bbba65cd4"));

    assert (gt_callback_verify (long_secret, "1700000000", body, strlen (body), signature));
    assert (!gt_callback_verify ("other", "1700000000", body, strlen (body), signature));
    assert (!gt_callback_verify (long_secret, "1700000001", body, strlen (body), signature));
    assert (!gt_callback_verify (long_secret, "1700000000", "{\"seq\":2}", 9, signature));
    assert (!gt_callback_verify (long_secret, "1700000000", body, strlen (body), "v1=00"));
    assert (!gt_callback_verify (long_secret, "1700000000", body, strlen (body), NULL));
}

static void
s_test_url_allowed (void)
{
    //  No list: any well-formed http(s) URL
    assert (gt_callback_url_allowed (NULL, "http://127.0.0.1:8080/cleanup"));
    assert (gt_callback_url_allowed (NULL, "HTTPS://Example.com/x?y=1"));
    assert (gt_callback_url_allowed ("", "https://example.com"));
    assert (gt_callback_url_allowed (" , ", "https://example.com"));
    assert (!gt_callback_url_allowed (NULL, "ftp://example.com/x"));
    assert (!gt_callback_url_allowed (NULL, "file:///etc/passwd"));
    assert (!gt_callback_url_allowed (NULL, "gopher://x"));
    assert (!gt_callback_url_allowed (NULL, "example.com/x"));
    assert (!gt_callback_url_allowed (NULL, "http://"));
    assert (!gt_callback_url_allowed (NULL, "http:///path"));
    assert (!gt_callback_url_allowed (NULL, "http://exa mple.com/"));
    assert (!gt_callback_url_allowed (NULL, "http://example.com/\n"));
    assert (!gt_callback_url_allowed (NULL, ""));
    assert (!gt_callback_url_allowed (NULL, NULL));
    char long_url [GT_MAX_URL + 2];
    memset (long_url, 'a', sizeof (long_url) - 1);
    memcpy (long_url, "http://h/", 9);
    long_url [GT_MAX_URL + 1] = 0;
    assert (!gt_callback_url_allowed (NULL, long_url));
    long_url [GT_MAX_URL] = 0;
    assert (gt_callback_url_allowed (NULL, long_url));

    //  With a list
    const char *allow = " https://cleanup.internal/hooks/ , http://127.0.0.1:9000,http://Svc.Local";
    assert (gt_callback_url_allowed (allow, "https://cleanup.internal/hooks/files"));
    assert (gt_callback_url_allowed (allow, "HTTPS://CLEANUP.internal/hooks/x"));
    assert (!gt_callback_url_allowed (allow, "https://cleanup.internal/HOOKS/x"));
    assert (!gt_callback_url_allowed (allow, "https://cleanup.internal/other"));
    assert (!gt_callback_url_allowed (allow, "http://cleanup.internal/hooks/x"));
    assert (gt_callback_url_allowed (allow, "http://127.0.0.1:9000/x"));
    assert (gt_callback_url_allowed (allow, "http://127.0.0.1:9000"));
    assert (gt_callback_url_allowed (allow, "http://127.0.0.1:9000?a=b"));
    assert (!gt_callback_url_allowed (allow, "http://127.0.0.1:90001/x"));
    assert (!gt_callback_url_allowed (allow, "http://127.0.0.1:9000@evil.org/x"));
    assert (!gt_callback_url_allowed (allow, "http://127.0.0.1:8080/x"));
    assert (gt_callback_url_allowed (allow, "http://svc.local/cleanup"));
    assert (!gt_callback_url_allowed (allow, "http://svc.local.evil.org/cleanup"));
    assert (!gt_callback_url_allowed (allow, "http://svc.local:81/cleanup"));
    assert (!gt_callback_url_allowed (allow, "ftp://svc.local/cleanup"));
    assert (!gt_callback_url_allowed ("ftp://svc.local/", "ftp://svc.local/x"));
}

void
gt_callback_test (bool verbose)
{
    printf (" * gt_callback: ");
    s_test_body (verbose);
    s_test_from_lease ();
    s_test_signature ();
    s_test_url_allowed ();
    printf ("OK\n");
}

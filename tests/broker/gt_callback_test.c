/*  gt_callback_test.c — selftest of gt_callback: the stored body and the
    body of each attempt, jobs from leases, the cleanup URL policy and the
    check of GC_CALLBACK_ALLOW.  (The signature is gt_webhook's, in the C
    SDK: tests/sdk/gt_webhook_test.c.)  */
#include <czmq.h>
#include "gt_callback.h"
#include "gt_broker_selftest.h"

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

    //  Parsed, not compared as strings: what libcurl sends is what was checked
    allow = "http://127.0.0.1:8080/hooks/,https://cleanup.internal";
    assert (gt_callback_url_allowed (allow, "http://127.0.0.1:8080/hooks/x"));
    assert (gt_callback_url_allowed (allow, "http://127.0.0.1:8080/hooks/"));
    assert (gt_callback_url_allowed (allow, "http://127.0.0.1:8080/hooks/a..b/...x"));
    //  Dot segments: libcurl would POST "/hooks/../admin" to /admin
    assert (!gt_callback_url_allowed (allow, "http://127.0.0.1:8080/hooks/../admin"));
    assert (!gt_callback_url_allowed (allow, "http://127.0.0.1:8080/hooks/./x"));
    assert (!gt_callback_url_allowed (allow, "http://127.0.0.1:8080/hooks/x/.."));
    assert (!gt_callback_url_allowed (allow, "http://127.0.0.1:8080/hooks/..;x/admin"));
    //  Encoded dots, slashes, backslashes, NUL: a receiver may decode them
    assert (!gt_callback_url_allowed (allow, "http://127.0.0.1:8080/hooks/%2e%2e/admin"));
    assert (!gt_callback_url_allowed (allow, "http://127.0.0.1:8080/hooks/%2E%2E/admin"));
    assert (!gt_callback_url_allowed (allow, "http://127.0.0.1:8080/hooks/%2fadmin"));
    assert (!gt_callback_url_allowed (allow, "http://127.0.0.1:8080/hooks/%2Fadmin"));
    assert (!gt_callback_url_allowed (allow, "http://127.0.0.1:8080/hooks/%5cadmin"));
    assert (!gt_callback_url_allowed (allow, "http://127.0.0.1:8080/hooks/x%00"));
    assert (!gt_callback_url_allowed (allow, "http://127.0.0.1:8080/hooks/%zz"));
    assert (!gt_callback_url_allowed (allow, "http://127.0.0.1:8080/hooks/%2"));
    assert (!gt_callback_url_allowed (allow, "http://127.0.0.1:8080/hooks/..\\admin"));
    assert (gt_callback_url_allowed (allow, "http://127.0.0.1:8080/hooks/a%20b"));
    //  The path is a prefix on a '/' boundary; "/hooks/" does not cover "/hooks"
    assert (!gt_callback_url_allowed (allow, "http://127.0.0.1:8080/hooksevil"));
    assert (!gt_callback_url_allowed (allow, "http://127.0.0.1:8080/hooks"));
    assert (gt_callback_url_allowed ("http://h/hooks", "http://h/hooks"));
    assert (gt_callback_url_allowed ("http://h/hooks", "http://h/hooks/x"));
    assert (!gt_callback_url_allowed ("http://h/hooks", "http://h/hooksevil"));
    assert (!gt_callback_url_allowed ("http://h/hooks", "http://h/hooks;x"));
    //  The query and fragment are not paths (libcurl sends no fragment)
    assert (gt_callback_url_allowed (allow, "http://127.0.0.1:8080/hooks/x?a=/../b"));
    assert (gt_callback_url_allowed (allow, "http://127.0.0.1:8080/hooks/x#/../../admin"));
    //  No user info, even on an allowed authority
    assert (!gt_callback_url_allowed (allow, "http://user:pw@127.0.0.1:8080/hooks/x"));
    assert (!gt_callback_url_allowed (allow, "http://user@127.0.0.1:8080/hooks/x"));
    assert (!gt_callback_url_allowed (allow, "http://@127.0.0.1:8080/hooks/x"));
    //  Scheme and host ignore case; the port has the scheme's default
    assert (gt_callback_url_allowed (allow, "HTTP://127.0.0.1:8080/hooks/x"));
    assert (gt_callback_url_allowed (allow, "https://cleanup.internal:443/x"));
    assert (gt_callback_url_allowed (allow, "https://CLEANUP.Internal/x"));
    assert (gt_callback_url_allowed (allow, "https://cleanup.internal"));
    assert (!gt_callback_url_allowed (allow, "https://cleanup.internal:444/x"));
    assert (!gt_callback_url_allowed (allow, "http://cleanup.internal/x"));
    assert (!gt_callback_url_allowed (allow, "http://cleanup.internal:443/x"));
    assert (!gt_callback_url_allowed (allow, "http://127.0.0.1/hooks/x"));
    assert (!gt_callback_url_allowed ("http://h:80/", "http://h:8080/x"));
    assert (gt_callback_url_allowed ("http://h:80/", "http://h/x"));
    //  The host as libcurl connects to it: 2130706433 is 127.0.0.1
    assert (gt_callback_url_allowed (allow, "http://2130706433:8080/hooks/x"));
    //  A trailing dot is refused, not normalised: not a way around, nor in
    assert (!gt_callback_url_allowed (allow, "https://cleanup.internal./x"));
    assert (!gt_callback_url_allowed ("https://cleanup.internal./", "https://cleanup.internal./x"));
    assert (!gt_callback_url_allowed ("https://cleanup.internal./", "https://cleanup.internal/x"));
    //  libcurl decodes %XX in a host: refused
    assert (!gt_callback_url_allowed (allow, "https://cleanup%2einternal/x"));
    assert (!gt_callback_url_allowed (allow, "https://cleanup.internal%2e/x"));
    //  Entries that do not parse match nothing, and do not open the list
    const char *broken = "http://u:p@h/,ftp://h/,http://h/a/../b,http://h/?q,http://h./,http:///x";
    assert (!gt_callback_url_allowed (broken, "http://h/x"));
    assert (!gt_callback_url_allowed (broken, "http://h/b/x"));
    assert (!gt_callback_url_allowed (broken, "http://u:p@h/x"));
    assert (gt_callback_url_allowed ("not a url, http://h/", "http://h/x"));

    //  The same rules for entries at start-up, with a message saying why
    char err [256] = "";
    assert (gt_callback_allow_check (NULL, err, sizeof (err)));
    assert (gt_callback_allow_check (" , ", err, sizeof (err)));
    assert (gt_callback_allow_check (allow, err, sizeof (err)));
    assert (gt_callback_allow_check (" https://cleanup.internal/hooks/ , http://127.0.0.1:9000",
                                     err, sizeof (err)));
    assert (!gt_callback_allow_check ("http://h/, http://u:p@h/", err, sizeof (err)));
    assert (strstr (err, "GC_CALLBACK_ALLOW") && strstr (err, "'http://u:p@h/'")
         && strstr (err, "user info"));
    assert (!gt_callback_allow_check ("ftp://h/", err, sizeof (err)));
    assert (strstr (err, "not an http:// or https:// URL"));
    assert (!gt_callback_allow_check ("http://h/a/../b", err, sizeof (err)));
    assert (strstr (err, "dot segment"));
    assert (!gt_callback_allow_check ("http://h/a%2Fb", err, sizeof (err)));
    assert (strstr (err, "percent-encoded"));
    assert (!gt_callback_allow_check ("http://h/?x=1", err, sizeof (err)));
    assert (strstr (err, "query or fragment"));
    assert (!gt_callback_allow_check ("https://cleanup.internal./", err, sizeof (err)));
    assert (strstr (err, "ending with a dot"));
    assert (!gt_callback_allow_check ("http://h:99999/", err, sizeof (err)));
    assert (!gt_callback_allow_check ("http://", NULL, 0));
    char long_entry [GT_MAX_URL + 10];
    memset (long_entry, 'a', sizeof (long_entry) - 1);
    memcpy (long_entry, "http://h/", 9);
    long_entry [sizeof (long_entry) - 1] = 0;
    assert (!gt_callback_allow_check (long_entry, err, sizeof (err)));
    assert (strstr (err, "longer than 2048 bytes") && strstr (err, "...'"));
}

void
gt_callback_test (bool verbose)
{
    printf (" * gt_callback: ");
    s_test_body (verbose);
    s_test_from_lease ();
    s_test_url_allowed ();
    printf ("OK\n");
}

/*  gt_webhook_test.c — selftest of gt_webhook: known signatures, the
    shared callback vectors (proto-spec/vectors/callbacks), what
    verification refuses, and the timestamp's age.  Re-includes <assert.h> without NDEBUG so the
    checks run in release builds.  */
#undef NDEBUG
#include <assert.h>
#include <dirent.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include "gt_webhook.h"
#include "gt_sdk_selftest.h"

//  Sign body with secret at timestamp, check the signature and that it
//  verifies (the timestamps are fixed, of the past: their age is not
//  judged, tolerance -1)
static void
s_assert_signs (const char *secret, const char *timestamp,
                const char *body, size_t body_size, const char *expected)
{
    char signature [GT_WEBHOOK_SIGNATURE_SIZE];
    assert (gt_webhook_sign (body, body_size, secret, timestamp, signature) == 0);
    assert (strcmp (signature, expected) == 0);
    assert (gt_webhook_verify_signature (body, body_size, timestamp, expected, secret, -1));
}

//  Known answers
static void
s_test_known (void)
{
    //  Computed with the Python SDK, sdk/python/garbagetruck/webhook.py at
    //  commit 2d201d2:
    //    sign(b'{"lease_id":"0123456789abcdef0123456789abcdef",'
    //         b'"object_id":"/tmp/caf\xc3\xa9.txt","reason":"released","attempt":2}',
    //         "c-sdk known vector", 1735689600)
    //    sign(b"", "c-sdk known vector", 1735689600)
    const char *body = "{\"lease_id\":\"0123456789abcdef0123456789abcdef\","
                       "\"object_id\":\"/tmp/caf\xc3\xa9.txt\",\"reason\":\"released\",\"attempt\":2}";
    s_assert_signs ("c-sdk known vector", "1735689600", body, strlen (body),
        "v1=ad124a998e008c835b550434642c8b0fe2acbcafc6113580541a9e7cfe0989ed");
    //  An empty body, also given as NULL
    s_assert_signs ("c-sdk known vector", "1735689600", "", 0,
        "v1=f27565fa3b9f27f82814b5c3dca5e88dcc77abf912957086023ba45c5cb01747");
    s_assert_signs ("c-sdk known vector", "1735689600", NULL, 0,
        "v1=f27565fa3b9f27f82814b5c3dca5e88dcc77abf912957086023ba45c5cb01747");
    //  A secret longer than the HMAC block (64 bytes) is hashed first
    //  (Python's hmac/hashlib: sign(b'{"seq":1}', "k" * 100, 1700000000))
    char long_secret [101];
    memset (long_secret, 'k', 100);
    long_secret [100] = 0;
    s_assert_signs (long_secret, "1700000000", "{\"seq\":1}", 9,
        "v1=f9288c808cf4669b372387fb974a68438f9fe57eb2e1071c38e5201bbba65cd4");
}

//  Every vector of proto-spec/vectors/callbacks (GT_VECTORS_DIR, else the
//  source tree), which the Python and Go SDKs check too; returns how many
static size_t
s_test_vectors (void)
{
    const char *root = getenv ("GT_VECTORS_DIR");
    char dir [1024];
    snprintf (dir, sizeof (dir), "%s/callbacks", root && *root ? root : GT_VECTORS_SOURCE_DIR);
    DIR *handle = opendir (dir);
    if (!handle)
        fprintf (stderr, "gt_webhook: cannot open %s\n", dir);
    assert (handle);
    size_t count = 0;
    struct dirent *entry;
    while ((entry = readdir (handle))) {
        size_t length = strlen (entry->d_name);
        if (length <= 5 || strcmp (entry->d_name + length - 5, ".json") != 0)
            continue;
        char path [2048];
        snprintf (path, sizeof (path), "%s/%s", dir, entry->d_name);
        json_error_t error;
        json_t *doc = json_load_file (path, 0, &error);
        assert (doc);
        const char *secret = json_string_value (json_object_get (doc, "secret"));
        const char *timestamp = json_string_value (json_object_get (doc, "timestamp"));
        json_t *body = json_object_get (doc, "body");
        const char *signature = json_string_value (json_object_get (doc, "signature"));
        assert (secret && timestamp && json_is_string (body) && signature);
        s_assert_signs (secret, timestamp, json_string_value (body), json_string_length (body),
                        signature);
        json_decref (doc);
        count++;
    }
    closedir (handle);
    assert (count >= 2);
    return count;
}

//  What verification refuses: another secret, timestamp or body, a
//  signature altered, cut, lengthened or in upper case, and NULL anywhere
//  (the timestamp is fixed, of 2023: its age is not judged, tolerance -1)
static void
s_test_refusals (void)
{
    const char *secret = "s3cret";
    const char *timestamp = "1700000000";
    const char *body = "{\"seq\":1}";
    const char *good = "v1=cbdcfdffb94ac16f20fc7dff420aed60e8abb875b1394e892e008fdba0124439";
    assert (gt_webhook_verify_signature (body, 9, timestamp, good, secret, -1));
    assert (gt_webhook_verify_signature (body, 9, timestamp, good, secret, -300));
    assert (!gt_webhook_verify_signature (body, 9, timestamp, good, "other", -1));
    assert (!gt_webhook_verify_signature (body, 9, "1700000001", good, secret, -1));
    assert (!gt_webhook_verify_signature ("{\"seq\":2}", 9, timestamp, good, secret, -1));
    assert (!gt_webhook_verify_signature (body, 8, timestamp, good, secret, -1));

    char altered [GT_WEBHOOK_SIGNATURE_SIZE + 1];
    snprintf (altered, sizeof (altered), "%s", good);
    altered [GT_WEBHOOK_SIGNATURE_SIZE - 2] = '0';                  //  last digit 9 -> 0
    assert (!gt_webhook_verify_signature (body, 9, timestamp, altered, secret, -1));
    snprintf (altered, sizeof (altered), "v2=%s", good + 3);        //  another scheme
    assert (!gt_webhook_verify_signature (body, 9, timestamp, altered, secret, -1));
    snprintf (altered, sizeof (altered), "%s", good);
    for (char *digit = altered + 3; *digit; digit++)                //  upper case hex
        if (*digit >= 'a' && *digit <= 'f')
            *digit = (char) (*digit - 'a' + 'A');
    assert (!gt_webhook_verify_signature (body, 9, timestamp, altered, secret, -1));
    snprintf (altered, sizeof (altered), "%s0", good);              //  one digit more
    assert (!gt_webhook_verify_signature (body, 9, timestamp, altered, secret, -1));
    snprintf (altered, sizeof (altered), "%.66s", good);            //  one digit less
    assert (!gt_webhook_verify_signature (body, 9, timestamp, altered, secret, -1));
    assert (!gt_webhook_verify_signature (body, 9, timestamp, "v1=00", secret, -1));
    assert (!gt_webhook_verify_signature (body, 9, timestamp, "", secret, -1));

    assert (!gt_webhook_verify_signature (body, 9, timestamp, good, NULL, -1));
    assert (!gt_webhook_verify_signature (body, 9, NULL, good, secret, -1));
    assert (!gt_webhook_verify_signature (NULL, 9, timestamp, good, secret, -1));
    assert (!gt_webhook_verify_signature (body, 9, timestamp, NULL, secret, -1));
    char signature [GT_WEBHOOK_SIGNATURE_SIZE];
    assert (gt_webhook_sign (body, 9, NULL, timestamp, signature) == -1);
    assert (gt_webhook_sign (body, 9, secret, NULL, signature) == -1);
    assert (gt_webhook_sign (NULL, 9, secret, timestamp, signature) == -1);
    assert (gt_webhook_sign (body, 9, secret, timestamp, NULL) == -1);
}

//  Whether body signed with secret at now + offset seconds verifies with
//  tolerance_s; the timestamp is "<decimal><suffix>", signed as written
static bool
s_verifies_at (time_t now, long long offset, const char *suffix, int tolerance_s)
{
    const char *secret = "s3cret";
    const char *body = "{\"seq\":1}";
    char timestamp [48], signature [GT_WEBHOOK_SIGNATURE_SIZE];
    snprintf (timestamp, sizeof (timestamp), "%lld%s", (long long) now + offset, suffix);
    assert (gt_webhook_sign (body, 9, secret, timestamp, signature) == 0);
    return gt_webhook_verify_signature (body, 9, timestamp, signature, secret, tolerance_s);
}

//  The timestamp's age, as the Python and Go SDKs judge it: up to the
//  tolerance either way; a negative tolerance does not judge it; a
//  timestamp that is not a plain decimal number fails, signed or not
static void
s_test_age (void)
{
    assert (GT_WEBHOOK_DEFAULT_TOLERANCE_S == 300);
    //  time () moves on while a check runs: a check that depends on the
    //  exact second is retried (at most a few times) if the second changed
    for (int tries = 0; ; tries++) {
        time_t now = time (NULL);
        bool fresh = s_verifies_at (now, 0, "", GT_WEBHOOK_DEFAULT_TOLERANCE_S)
                  && s_verifies_at (now, -300, "", 300)        //  300 s old: within
                  && s_verifies_at (now, 300, "", 300)         //  300 s ahead: within
                  && s_verifies_at (now, -5, "", 5)
                  && s_verifies_at (now, 0, "", 0)
                  && !s_verifies_at (now, -301, "", 300)       //  301 s old: too old
                  && !s_verifies_at (now, 301, "", 300)        //  301 s ahead: too far
                  && !s_verifies_at (now, -2, "", 0);
        if (time (NULL) == now) {
            assert (fresh);
            break;
        }
        assert (tries < 5);
    }
    time_t now = time (NULL);
    //  Far from now, either way: fails with a tolerance, passes without
    assert (!s_verifies_at (now, -301, "", GT_WEBHOOK_DEFAULT_TOLERANCE_S));
    assert (s_verifies_at (now, -301, "", -1));
    assert (!s_verifies_at (now, 3600, "", GT_WEBHOOK_DEFAULT_TOLERANCE_S));
    assert (s_verifies_at (now, 3600, "", -1));
    assert (!s_verifies_at (now, -(long long) now, "", GT_WEBHOOK_DEFAULT_TOLERANCE_S));   //  "0"
    assert (s_verifies_at (now, -(long long) now, "", -1));

    //  Not a plain decimal number, though signed as written: fails, also
    //  without judging the age
    const char *garbage [] = { "x", " ", "\n", ".5", "e3", "s", "\t1" };
    for (size_t index = 0; index < sizeof (garbage) / sizeof (garbage [0]); index++) {
        assert (!s_verifies_at (now, 0, garbage [index], GT_WEBHOOK_DEFAULT_TOLERANCE_S));
        assert (!s_verifies_at (now, 0, garbage [index], -1));
    }
    const char *secret = "s3cret";
    const char *body = "{\"seq\":1}";
    char timestamp [48], signature [GT_WEBHOOK_SIGNATURE_SIZE];
    const char *malformed [] = {
        "", "+1700000000", "-1700000000", " 1700000000", "1700000000 ", "0x6553f100",
        "1.7e9", "1700000000.5", "99999999999999999999"       //  beyond INT64_MAX
    };
    for (size_t index = 0; index < sizeof (malformed) / sizeof (malformed [0]); index++) {
        assert (gt_webhook_sign (body, 9, secret, malformed [index], signature) == 0);
        assert (!gt_webhook_verify_signature (body, 9, malformed [index], signature, secret, -1));
        assert (!gt_webhook_verify_signature (body, 9, malformed [index], signature, secret,
                                              GT_WEBHOOK_DEFAULT_TOLERANCE_S));
    }
    //  The largest int64 parses (and is far in the future)
    snprintf (timestamp, sizeof (timestamp), "%s", "9223372036854775807");
    assert (gt_webhook_sign (body, 9, secret, timestamp, signature) == 0);
    assert (gt_webhook_verify_signature (body, 9, timestamp, signature, secret, -1));
    assert (!gt_webhook_verify_signature (body, 9, timestamp, signature, secret,
                                          GT_WEBHOOK_DEFAULT_TOLERANCE_S));
    snprintf (timestamp, sizeof (timestamp), "%s", "9223372036854775808");
    assert (gt_webhook_sign (body, 9, secret, timestamp, signature) == 0);
    assert (!gt_webhook_verify_signature (body, 9, timestamp, signature, secret, -1));
}

void
gt_webhook_test (bool verbose)
{
    printf (" * gt_webhook: ");
    s_test_known ();
    size_t vectors = s_test_vectors ();
    s_test_refusals ();
    s_test_age ();
    if (verbose)
        printf ("%zu shared vectors ", vectors);
    printf ("OK\n");
}

/*  gt_webhook.h — the signature of a cleanup callback (proto-spec/CALLBACKS.md,
    "Verifying a callback"), for the service that receives it and for the
    broker that sends it: one implementation of the HMAC for both.

    Scheme v1: the broker sends two headers with each callback,

        X-GarbageTruck-Timestamp: <Unix seconds, decimal>
        X-GarbageTruck-Signature: v1=<lowercase hex HMAC-SHA256(secret, timestamp "." body)>

    where timestamp is the header's text as sent and body the raw request
    body (the bytes, before any JSON parsing).  A receiver recomputes the
    MAC with the shared secret (GC_CALLBACK_SECRET, or with CURVE the
    callback-secret of the service's certificate), compares in constant
    time, and refuses a timestamp further than a tolerance from its own
    clock (replay protection; GT_WEBHOOK_DEFAULT_TOLERANCE_S, 300 s either
    way, as the Python and Go SDKs): gt_webhook_verify_signature does all
    three.  The signature covers the timestamp, so a fresh one cannot be
    forged.

    The arguments come in the order of the Python and Go SDKs (issue 15):
    the body, then the secret, then the timestamp (Python's
    webhook.sign (body, secret, timestamp), Go's Sign (body, secret, ts));
    to verify, the body, the two headers' values (Python's headers
    mapping, Go's http.Header), the secret and the tolerance (Python's
    verify_signature (body, headers, secret, tolerance), Go's
    VerifySignature (body, header, secret, tolerance)).  sodium_init is
    called on the way (thread safe).  */
#ifndef GT_WEBHOOK_H_INCLUDED
#define GT_WEBHOOK_H_INCLUDED

#include <stdbool.h>
#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

//  The two headers' names (HTTP header names: compare ignoring case)
#define GT_WEBHOOK_TIMESTAMP_HEADER "X-GarbageTruck-Timestamp"
#define GT_WEBHOOK_SIGNATURE_HEADER "X-GarbageTruck-Signature"

//  A signature's size: "v1=" + 64 lowercase hex digits + NUL
#define GT_WEBHOOK_SIGNATURE_SIZE   68

//  How far a callback's timestamp may be from the receiver's clock, either
//  way, in seconds: Python's verify_signature (tolerance=300) and
//  webhook.DEFAULT_TOLERANCE, Go's DefaultTolerance
#define GT_WEBHOOK_DEFAULT_TOLERANCE_S  300

//  The X-GarbageTruck-Signature value of body (body_size bytes; body may
//  be NULL when body_size is 0) sent at timestamp (decimal Unix seconds):
//  "v1=" + lowercase hex HMAC-SHA256(secret, timestamp + "." + body), into
//  signature.  Any secret length (a secret longer than 64 bytes is hashed
//  first, as HMAC says).  Returns 0, or -1 if an argument is NULL or
//  libsodium cannot be initialised.
int
    gt_webhook_sign (const void *body, size_t body_size,
                     const char *secret, const char *timestamp,
                     char signature [GT_WEBHOOK_SIGNATURE_SIZE]);

//  True if a callback of body (body_size bytes; NULL when body_size is 0)
//  is genuine and fresh: timestamp and signature are the values of its
//  X-GarbageTruck-Timestamp and X-GarbageTruck-Signature headers (NULL if
//  absent); timestamp must be a plain decimal number (digits only) no
//  more than tolerance_s seconds from time (NULL), either way, and
//  signature the v1 signature of body at timestamp with secret, compared
//  in constant time.  Pass GT_WEBHOOK_DEFAULT_TOLERANCE_S unless you have
//  a reason; a negative tolerance_s does not judge the timestamp's age
//  (for tests with fixed timestamps, and for replaying recorded callbacks
//  deliberately; never for callbacks off the network).  False for
//  anything else, a NULL argument included.
bool
    gt_webhook_verify_signature (const void *body, size_t body_size,
                                 const char *timestamp, const char *signature,
                                 const char *secret, int tolerance_s);

#ifdef __cplusplus
}
#endif
#endif

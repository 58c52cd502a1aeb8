/*  gt_webhook.c — the v1 signature of a cleanup callback: HMAC-SHA256
    with libsodium's streaming HMAC.  The contract is in gt_webhook.h.  */

#include "gt_webhook.h"
#include <sodium.h>
#include <stdint.h>
#include <string.h>
#include <time.h>

int
gt_webhook_sign (const void *body, size_t body_size,
                 const char *secret, const char *timestamp,
                 char signature [GT_WEBHOOK_SIGNATURE_SIZE])
{
    if (!secret || !timestamp || !signature || (!body && body_size))
        return -1;
    if (sodium_init () < 0)
        return -1;
    crypto_auth_hmacsha256_state state;
    unsigned char mac [crypto_auth_hmacsha256_BYTES];
    crypto_auth_hmacsha256_init (&state, (const unsigned char *) secret, strlen (secret));
    crypto_auth_hmacsha256_update (&state, (const unsigned char *) timestamp, strlen (timestamp));
    crypto_auth_hmacsha256_update (&state, (const unsigned char *) ".", 1);
    if (body_size)
        crypto_auth_hmacsha256_update (&state, (const unsigned char *) body, body_size);
    crypto_auth_hmacsha256_final (&state, mac);
    memcpy (signature, "v1=", 3);
    sodium_bin2hex (signature + 3, GT_WEBHOOK_SIGNATURE_SIZE - 3, mac, sizeof (mac));
    sodium_memzero (&state, sizeof (state));
    sodium_memzero (mac, sizeof (mac));
    return 0;
}

//  The value of timestamp into *seconds if it is a plain decimal number:
//  one or more ASCII digits and nothing else (no sign, no space, as
//  Python's verify_signature), not beyond INT64_MAX
static bool
s_parse_timestamp (const char *timestamp, int64_t *seconds)
{
    if (!*timestamp)
        return false;
    int64_t value = 0;
    for (const char *digit = timestamp; *digit; digit++) {
        if (*digit < '0' || *digit > '9')
            return false;
        if (value > (INT64_MAX - (*digit - '0')) / 10)
            return false;
        value = value * 10 + (*digit - '0');
    }
    *seconds = value;
    return true;
}

bool
gt_webhook_verify_signature (const void *body, size_t body_size,
                             const char *timestamp, const char *signature,
                             const char *secret, int tolerance_s)
{
    //  The signature comes off the network: its length is checked before
    //  any comparison, and only the expected length is compared
    if (!timestamp || !signature
    ||  strnlen (signature, GT_WEBHOOK_SIGNATURE_SIZE) != GT_WEBHOOK_SIGNATURE_SIZE - 1)
        return false;
    int64_t sent;
    if (!s_parse_timestamp (timestamp, &sent))
        return false;
    if (tolerance_s >= 0) {
        //  Both are non-negative (time () is -1 on failure), so neither
        //  difference overflows
        int64_t now = (int64_t) time (NULL);
        if (now < 0)
            return false;
        int64_t distance = now > sent ? now - sent : sent - now;
        if (distance > (int64_t) tolerance_s)
            return false;
    }
    char expected [GT_WEBHOOK_SIGNATURE_SIZE];
    if (gt_webhook_sign (body, body_size, secret, timestamp, expected))
        return false;
    return sodium_memcmp (expected, signature, GT_WEBHOOK_SIGNATURE_SIZE - 1) == 0;
}

/*  gt_callback.h — one HTTP cleanup callback (a "job"), its body, the
    secret that signs it and the cleanup URL policy (GC_CALLBACK_ALLOW), as
    specified by proto-spec/CALLBACKS.md.  The signature itself is the C
    SDK's (gt_webhook_sign, sdk/c/gt_webhook.h: one implementation for the
    broker and the services that verify it); gt_delivery signs each attempt.

    A job is compact on purpose (100,000 may wait in memory): its id, URL,
    Idempotency-Key, the request body WITHOUT the "attempt" key (the stored
    form, built with jansson) and four integers.  The body of attempt n is
    rendered from the stored form when the attempt starts, so the signature
    covers the attempt number.

    Body key order (CALLBACKS.md): lease_id, object_id, object_type,
    service_id, metadata (keys sorted), payload, reason, seq, fence, attempt.

    Ownership: a job belongs to its creator until gt_delivery_submit takes it.
    seq and fence must be <= INT64_MAX (JSON integers are signed here); a
    larger value makes the constructors return NULL.  */
#ifndef GT_CALLBACK_H_INCLUDED
#define GT_CALLBACK_H_INCLUDED

#include "gt_msg.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct _gt_callback_job_t gt_callback_job_t;

//  max_retries / retry_delay_ms value meaning "the delivery's configured
//  default" (GC_CLEANUP_MAX_RETRIES / GC_CLEANUP_RETRY_DELAY).
#define GT_CALLBACK_DEFAULT     UINT32_MAX

//  The fields of the body (CALLBACKS.md "Request").  Strings are borrowed.
typedef struct {
    const char *lease_id;           //  lease that registered the URL (required)
    const char *object_id;          //  the reclaimed object (required)
    const char *object_type;        //  wire name, e.g. "TEMPORARY_FILE" (required)
    const char *service_id;         //  the lease's service (required)
    const gt_meta_t *metadata;      //  the lease's metadata, or NULL for {}
    const char *payload;            //  cleanup payload, or NULL for ""
    const char *reason;             //  "expired" or "released" (required)
    uint64_t seq;                   //  seq of the object.reclaimed event
    uint64_t fence;                 //  the object's fencing token
} gt_callback_fields_t;

//  Create a job.  job_id is the caller's handle (outcomes carry it back).
//  Returns NULL if a required field is missing, url is NULL or empty, or
//  seq/fence exceed INT64_MAX.  Retries default to GT_CALLBACK_DEFAULT.
gt_callback_job_t *
    gt_callback_job_new (uint64_t job_id, const char *url,
                         const gt_callback_fields_t *fields);

//  Create the job for one lease's cleanup: url, payload, max_retries and
//  retry_delay_ms come from lease->cleanup (absent retry settings mean the
//  delivery's defaults).  Returns NULL if the lease has no cleanup.
gt_callback_job_t *
    gt_callback_job_from_lease (uint64_t job_id, const gt_lease_info_t *lease,
                                gt_reason_t reason, uint64_t seq);

//  Re-create a job from its stored form (gt_callback_job_body), e.g. from a
//  durable outbox after a restart.  The Idempotency-Key is derived from the
//  body's seq and lease_id, so it is the same as before.  Returns NULL if
//  body is not an object with a string lease_id and an integer seq >= 0.
gt_callback_job_t *
    gt_callback_job_load (uint64_t job_id, const char *url, const char *body);

//  Destroy a job; nulls the pointer.
void
    gt_callback_job_destroy (gt_callback_job_t **self_p);

//  Retry policy of this job: retries after the first attempt (CLEANUP
//  max_retries) and backoff base in ms.  GT_CALLBACK_DEFAULT = config default.
void
    gt_callback_job_set_retry (gt_callback_job_t *self, uint32_t max_retries,
                               uint32_t retry_delay_ms);

//  Attempts already made (resume after a restart): the next attempt is
//  number attempts + 1, and counts against max_retries as usual.  Also the
//  wait before that next attempt (0 = at once), e.g. what remains of the
//  backoff that was running when the broker stopped.
void
    gt_callback_job_set_attempts (gt_callback_job_t *self, uint32_t attempts,
                                  uint32_t delay_ms);

uint64_t     gt_callback_job_id (const gt_callback_job_t *self);
const char * gt_callback_job_url (const gt_callback_job_t *self);
//  "<seq>-<lease_id>"
const char * gt_callback_job_idempotency_key (const gt_callback_job_t *self);
//  Stored form of the body: compact JSON without "attempt" (persist this).
const char * gt_callback_job_body (const gt_callback_job_t *self);
//  The service_id of the body (a malloc'd copy the caller frees), or NULL.
char * gt_callback_job_service_id (const gt_callback_job_t *self);
//  Sign this job's attempts with secret (copied; NULL or "": the delivery's
//  GC_CALLBACK_SECRET): a CURVE principal's callback-secret (GTLP.md §12).
void gt_callback_job_set_secret (gt_callback_job_t *self, const char *secret);
//  The job's own secret, or NULL.
const char * gt_callback_job_secret (const gt_callback_job_t *self);
uint32_t     gt_callback_job_attempts (const gt_callback_job_t *self);
uint32_t     gt_callback_job_max_retries (const gt_callback_job_t *self);
uint32_t     gt_callback_job_retry_delay (const gt_callback_job_t *self);
uint32_t     gt_callback_job_delay (const gt_callback_job_t *self);

//  Record one more attempt and render its body (attempt = attempts after
//  the increment); caller frees.  NULL only on out-of-memory.
char *
    gt_callback_job_next_attempt (gt_callback_job_t *self, uint32_t *attempt_p);

//  Fill in retry settings left at GT_CALLBACK_DEFAULT.
void
    gt_callback_job_apply_defaults (gt_callback_job_t *self, uint32_t max_retries,
                                    uint32_t retry_delay_ms);

//  True if url may be used as a cleanup URL under allow_list (otherwise the
//  broker answers CREATE with INVALID_ARGUMENT).  allow_list is
//  GC_CALLBACK_ALLOW: a comma-separated list of URL prefixes, blanks
//  around entries ignored; NULL or no entries = any http/https URL.
//  Always required: scheme http:// or https:// (case-insensitive), a host,
//  a URL libcurl parses, at most GT_MAX_URL bytes, no blanks or control
//  characters.
//  With entries, the URL and each entry are parsed by libcurl's URL API
//  and the URL is refused if it has user info (user:password@), a '%' or
//  '\\' in the authority, a host ending with '.', or a path not in normal
//  form: a "." or ".." segment (also "..;x"), a backslash, %2e, %2f, %5c,
//  %00 (any case) or a malformed %-escape.  Nothing is rewritten, so the
//  URL libcurl sends is the URL checked.  It is allowed if, for one entry,
//  the scheme and the host are equal ignoring case, the ports are equal
//  (the scheme's default when absent: "https://h" = "https://h:443"), and
//  the path lies under the entry's path on a '/' boundary, byte for byte:
//  "/hooks/" allows "/hooks/x" (not "/hooks"), "/hooks" allows "/hooks"
//  and "/hooks/x", neither allows "/hooksevil"; no path = any path.  The
//  query is not compared.  An entry that breaks these rules, or has a
//  query or fragment, matches nothing (gt_callback_allow_check refuses it).
bool
    gt_callback_url_allowed (const char *allow_list, const char *url);

//  Check every entry of allow_list at start-up (gt_config_check): true if
//  each is a usable prefix under the rules of gt_callback_url_allowed;
//  else false and err (if not NULL) names the first bad entry and why.
//  NULL or an empty list is fine.
bool
    gt_callback_allow_check (const char *allow_list, char *err, size_t err_size);

//  Initialise libsodium and libcurl once per process (thread-safe, never
//  cleaned up).  gt_delivery_new calls it; false if either library failed.
bool
    gt_callback_global_init (void);

#ifdef __cplusplus
}
#endif
#endif

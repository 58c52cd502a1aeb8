/*  gt_callback.c — one cleanup callback job: body, key; the URL policy.
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
    char *secret;                   //  signing secret of its own, or NULL (the delivery's)
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
        gt_callback_job_set_secret (self, NULL);
        free (self);
        *self_p = NULL;
    }
}

char *
gt_callback_job_service_id (const gt_callback_job_t *self)
{
    assert (self);
    json_t *body = json_loads (self->body, 0, NULL);
    const char *service = json_string_value (json_object_get (body, "service_id"));
    char *copy = service ? strdup (service) : NULL;
    json_decref (body);
    return copy;
}

void
gt_callback_job_set_secret (gt_callback_job_t *self, const char *secret)
{
    assert (self);
    if (self->secret) {
        memset (self->secret, 0, strlen (self->secret));
        free (self->secret);
        self->secret = NULL;
    }
    if (secret && *secret) {
        self->secret = strdup (secret);
        assert (self->secret);
    }
}

const char *
gt_callback_job_secret (const gt_callback_job_t *self)
{
    assert (self);
    return self->secret;
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
//
//  With GC_CALLBACK_ALLOW set, the URL and every entry are taken apart by
//  libcurl's URL API, the parser that later sends the request, and compared
//  part by part.  Comparing the raw strings let "/hooks/../admin" through
//  (libcurl removes the dot segments after the check), and "%2e%2e" or
//  "%2f" reach a receiver that may decode them.  Such URLs are refused,
//  never rewritten: the URL sent is byte for byte the URL checked.

#define S_STRINGIFY(x)  #x
#define S_TO_STRING(x)  S_STRINGIFY (x)

//  One URL or allow-list entry, taken apart (strings from curl_url_get)
typedef struct {
    char *scheme;                   //  "http" or "https" (libcurl lowercases it)
    char *host;                     //  as libcurl reads it: IPv4 normalised, IPv6 in []
    char *path;                     //  "/" at least
    long port;                      //  explicit, else the scheme's default
} s_url_t;

static void
s_url_reset (s_url_t *self)
{
    curl_free (self->scheme);
    curl_free (self->host);
    curl_free (self->path);
    memset (self, 0, sizeof (*self));
}

static int
s_hex_value (char c)
{
    return c >= '0' && c <= '9'? c - '0'
         : c >= 'a' && c <= 'f'? c - 'a' + 10
         : c >= 'A' && c <= 'F'? c - 'A' + 10: -1;
}

//  Why path is not in normal form, or NULL if it is.  Each of these is
//  resolved after the check, by libcurl or by the receiver, into a path the
//  check never saw; refusing them keeps "what was checked" = "what is sent".
static const char *
s_path_problem (const char *path)
{
    for (const char *c = path; *c; c++) {
        if (*c == '\\')
            return "a backslash in the path";
        if (*c == '%') {
            int high = s_hex_value (c [1]);
            int low = high < 0? -1: s_hex_value (c [2]);
            if (low < 0)
                return "a malformed percent-encoding in the path";
            int value = high * 16 + low;
            if (value == '.' || value == '/' || value == '\\' || value == 0)
                return "a percent-encoded dot, slash, backslash or NUL in the path";
        }
    }
    //  "." and ".." segments; "..;x" too (servlet containers drop ";x")
    for (const char *segment = path; segment; segment = strchr (segment, '/')) {
        if (*segment == '/')
            segment++;
        size_t length = strcspn (segment, "/;");
        if ((length == 1 && segment [0] == '.')
        ||  (length == 2 && segment [0] == '.' && segment [1] == '.'))
            return "a dot segment (. or ..) in the path";
    }
    return NULL;
}

//  Why text is not a usable cleanup URL, or NULL if it is (then url holds
//  its parts; the caller resets url either way).  strict adds the rules of
//  a URL checked against GC_CALLBACK_ALLOW, and of an allow-list entry.
static const char *
s_url_parse (const char *text, bool strict, s_url_t *url)
{
    memset (url, 0, sizeof (*url));
    size_t length = strlen (text);
    if (length == 0)
        return "empty";
    if (length > GT_MAX_URL)
        return "longer than " S_TO_STRING (GT_MAX_URL) " bytes";
    for (size_t i = 0; i < length; i++)
        if ((unsigned char) text [i] <= ' ' || text [i] == 0x7f)
            return "a blank or control character";
    //  Checked here, not left to libcurl, which would guess a scheme
    size_t scheme = strncasecmp (text, "http://", 7) == 0? 7
                  : strncasecmp (text, "https://", 8) == 0? 8: 0;
    if (scheme == 0)
        return "not an http:// or https:// URL";
    //  An authority right after "://" (libcurl reads "http:///x" as host "x")
    size_t authority = strcspn (text + scheme, "/?#");
    if (authority == 0)
        return "no host";
    if (strict) {
        //  user:password@ would be a credential shown in every LEASE, and
        //  is how "http://allowed.host@evil.org/" fools a string check
        if (memchr (text + scheme, '@', authority))
            return "user info (user:password@)";
        //  libcurl decodes %XX in a host name and drops an IPv6 zone id
        if (memchr (text + scheme, '%', authority))
            return "a percent-encoding in the host";
        if (memchr (text + scheme, '\\', authority))
            return "a backslash in the host";
    }
    if (!gt_callback_global_init ())
        return "libcurl is not available";
    CURLU *handle = curl_url ();
    if (!handle)
        return "out of memory";
    //  As is: libcurl must not remove the dot segments we look for
    const char *why = NULL;
    char *port = NULL;
    if (curl_url_set (handle, CURLUPART_URL, text, CURLU_PATH_AS_IS) != CURLUE_OK
    ||  curl_url_get (handle, CURLUPART_SCHEME, &url->scheme, 0) != CURLUE_OK
    ||  curl_url_get (handle, CURLUPART_PORT, &port, CURLU_DEFAULT_PORT) != CURLUE_OK
    ||  curl_url_get (handle, CURLUPART_PATH, &url->path, 0) != CURLUE_OK)
        why = "a URL libcurl cannot parse";
    else
    if (curl_url_get (handle, CURLUPART_HOST, &url->host, 0) != CURLUE_OK
    ||  !url->host || !*url->host)
        why = "no host";
    if (!why && strict) {
        char *user = NULL, *password = NULL;
        if (curl_url_get (handle, CURLUPART_USER, &user, 0) != CURLUE_NO_USER
        ||  curl_url_get (handle, CURLUPART_PASSWORD, &password, 0) != CURLUE_NO_PASSWORD)
            why = "user info (user:password@)";
        else
        //  "cleanup.internal." names the same host as "cleanup.internal"
        //  for DNS, but not for a comparison or a TLS certificate: refused
        //  on both sides rather than normalised
        if (url->host [strlen (url->host) - 1] == '.')
            why = "a host name ending with a dot";
        else
            why = s_path_problem (url->path);
        curl_free (user);
        curl_free (password);
    }
    if (!why) {
        char *end = NULL;
        url->port = strtol (port, &end, 10);
        if (end == port || *end || url->port <= 0 || url->port > 65535)
            why = "a URL libcurl cannot parse";
    }
    curl_free (port);
    curl_url_cleanup (handle);
    return why;
}

//  Why the entry of allow_list at start (length bytes, not terminated) is
//  not a usable prefix, or NULL (then prefix holds its parts; the caller
//  resets prefix either way).
static const char *
s_entry_parse (const char *start, size_t length, s_url_t *prefix)
{
    memset (prefix, 0, sizeof (*prefix));
    if (length > GT_MAX_URL)
        return "longer than " S_TO_STRING (GT_MAX_URL) " bytes";
    char entry [GT_MAX_URL + 1];
    memcpy (entry, start, length);
    entry [length] = 0;
    //  A prefix is an origin and a path; a query would be silently ignored
    if (strpbrk (entry, "?#"))
        return "a query or fragment (a prefix is scheme://host[:port][/path])";
    return s_url_parse (entry, true, prefix);
}

//  The next entry of the comma-separated list at *cursor_p, blanks around
//  it trimmed and empty entries skipped; false at the end of the list.
static bool
s_next_entry (const char **cursor_p, const char **start_p, size_t *length_p)
{
    const char *cursor = *cursor_p;
    while (*cursor) {
        const char *end = cursor + strcspn (cursor, ",");
        const char *start = cursor;
        while (start < end && isspace ((unsigned char) *start))
            start++;
        const char *stop = end;
        while (stop > start && isspace ((unsigned char) stop [-1]))
            stop--;
        cursor = *end? end + 1: end;
        if (stop > start) {
            *cursor_p = cursor;
            *start_p = start;
            *length_p = (size_t) (stop - start);
            return true;
        }
    }
    *cursor_p = cursor;
    return false;
}

//  True if url lies under prefix: same scheme, host and port, and the path
//  under the prefix's path on a '/' boundary.  Both paths are in normal
//  form, so a byte comparison is a comparison of what the receiver sees.
static bool
s_prefix_matches (const s_url_t *prefix, const s_url_t *url)
{
    if (strcasecmp (prefix->scheme, url->scheme) != 0
    ||  strcasecmp (prefix->host, url->host) != 0
    ||  prefix->port != url->port)
        return false;
    size_t length = strlen (prefix->path);
    if (strncmp (url->path, prefix->path, length) != 0)
        return false;
    //  "/hooks/" covers what lies under it, not "/hooks" (an entry written
    //  with the slash names a directory, as the allow-list always did);
    //  "/hooks" covers itself and what lies under it; neither "/hooksevil"
    return length == 0 || prefix->path [length - 1] == '/'
        || url->path [length] == 0 || url->path [length] == '/';
}

bool
gt_callback_url_allowed (const char *allow_list, const char *url)
{
    if (!url)
        return false;
    const char *cursor = allow_list? allow_list: "";
    const char *start = NULL;
    size_t length = 0;
    bool more = s_next_entry (&cursor, &start, &length);
    //  No entries: any well-formed http(s) URL; else the strict rules
    s_url_t parsed;
    bool valid = s_url_parse (url, more, &parsed) == NULL;
    bool allowed = valid && !more;
    while (valid && more && !allowed) {
        s_url_t prefix;
        //  An entry that does not parse matches nothing (the daemon refuses
        //  to start with one: gt_callback_allow_check)
        allowed = s_entry_parse (start, length, &prefix) == NULL
               && s_prefix_matches (&prefix, &parsed);
        s_url_reset (&prefix);
        more = s_next_entry (&cursor, &start, &length);
    }
    s_url_reset (&parsed);
    return allowed;
}

bool
gt_callback_allow_check (const char *allow_list, char *err, size_t err_size)
{
    const char *cursor = allow_list? allow_list: "";
    const char *start = NULL;
    size_t length = 0;
    while (s_next_entry (&cursor, &start, &length)) {
        s_url_t prefix;
        const char *why = s_entry_parse (start, length, &prefix);
        s_url_reset (&prefix);
        if (why) {
            if (err && err_size)
                snprintf (err, err_size, "GC_CALLBACK_ALLOW: entry '%.*s%s' is not a usable "
                          "URL prefix: %s", length > 120? 120: (int) length, start,
                          length > 120? "...": "", why);
            return false;
        }
    }
    return true;
}

/*  gt_delivery.c — cleanup callback delivery engine; the contract is in
    gt_delivery.h.

    Design: the actor thread runs one loop around curl_multi_poll, with the
    actor pipe's ZMQ_FD as an extra descriptor and curl_multi_wakeup as the
    doorbell for submissions.  ZMQ_FD is edge-like (it only says "state may
    have changed"), so the loop drains the pipe while ZMQ_EVENTS says
    POLLIN, and checks ZMQ_EVENTS again right before waiting, because our
    own sends may have consumed the edge.

    Inside the actor a job is a task, which is in exactly one place:
    * the ready FIFO of its endpoint (host), waiting for a free slot;
    * in flight (an easy handle in the multi, and a slot in `running`);
    * the retry heap (a binary min-heap by due time), waiting for backoff.
    An endpoint is on the runnable list while it has ready tasks and free
    slots; dispatch takes endpoints round-robin from that list, so a
    saturated endpoint never blocks others and no scan is ever needed.
    Cancellations (rare: shards handed over) are the exception: they come
    through a second mutex-guarded list, taken with the inbox and applied
    before its jobs, by one scan of the heap and the ready FIFOs; a task in
    flight is only flagged, and ends silently with its attempt.  */

#include "gt_delivery.h"
#include "gt_webhook.h"
#include <curl/curl.h>
#include <sodium.h>
#include <pthread.h>
#include <inttypes.h>

#define S_BACKOFF_CAP_MS        300000      //  5 minutes (CALLBACKS.md)
#define S_RETRY_AFTER_CAP_MS    3600000     //  a Retry-After past 1 hour counts as 1 hour
#define S_POLL_MAX_MS           10000       //  longest idle wait (nothing depends on it)

struct _gt_delivery_t {
    zactor_t *actor;                //  the engine thread
    CURLM *multi;                   //  owned here, used only by the actor (wakeup: any thread)
    gt_delivery_config_t config;    //  copy; config.secret points at secret
    char *secret;                   //  HMAC key, or NULL
    pthread_mutex_t mutex;          //  guards inbox, cancels and pending
    gt_callback_job_t **inbox;      //  submitted, not yet taken by the actor
    size_t inbox_count;             //  jobs in inbox
    size_t inbox_capacity;          //  allocated slots in inbox
    uint64_t *cancels;              //  ids of jobs cancelled, not yet taken by the actor
    size_t cancel_count;            //  ids in cancels
    size_t cancel_capacity;         //  allocated slots in cancels
    size_t pending;                 //  jobs submitted and not finished
    void *engine;                   //  s_engine_t, made by new, owned by the actor thread
};

typedef struct _s_host_t s_host_t;
typedef struct _s_task_t s_task_t;

//  One attempt in flight
typedef struct {
    CURL *easy;                     //  the transfer
    struct curl_slist *headers;     //  its request headers
    char *body;                     //  its body (curl reads it in place)
    size_t slot;                    //  index in engine->running
    char error [CURL_ERROR_SIZE];   //  curl's detailed error text
} s_request_t;

struct _s_task_t {
    gt_callback_job_t *job;         //  the callback
    s_host_t *host;                 //  its endpoint
    s_task_t *next;                 //  next in the endpoint's ready FIFO
    uint64_t due;                   //  monotonic ms of the next attempt (retry heap)
    s_request_t *request;           //  attempt in flight, or NULL
    bool cancelled;                 //  in flight when cancelled: ends with this attempt, silently
};

struct _s_host_t {
    char *key;                      //  "host:port", hash key
    size_t active;                  //  requests in flight to it
    size_t tasks;                   //  tasks that point at it (frees it at 0)
    s_task_t *head;                 //  ready FIFO head
    s_task_t *tail;                 //  ready FIFO tail
    s_host_t *next_runnable;        //  next on the runnable list
    bool runnable;                  //  on the runnable list
};

typedef struct {
    gt_delivery_t *shared;          //  config, inbox, pending
    zsock_t *pipe;                  //  actor pipe: commands in, outcomes out
    CURLM *multi;                   //  = shared->multi
    zhashx_t *hosts;                //  key -> s_host_t
    s_host_t *runnable_head;        //  endpoints with ready tasks and free slots
    s_host_t *runnable_tail;        //  end of that list
    s_task_t **heap;                //  retry heap, min due first
    size_t heap_size;               //  tasks in heap
    size_t heap_capacity;           //  allocated slots
    s_task_t **running;             //  tasks in flight (max_concurrent slots)
    size_t active;                  //  tasks in flight
    gt_callback_job_t **intake;     //  swapped with the inbox each round
    size_t intake_capacity;         //  allocated slots in intake
    bool terminated;                //  $TERM received
} s_engine_t;

//  --------------------------------------------------------------------------
//  Retry heap

static bool
s_heap_push (s_engine_t *self, s_task_t *task)
{
    if (self->heap_size == self->heap_capacity) {
        size_t capacity = self->heap_capacity? self->heap_capacity * 2: 256;
        s_task_t **heap = realloc (self->heap, capacity * sizeof (*heap));
        if (!heap)
            return false;
        self->heap = heap;
        self->heap_capacity = capacity;
    }
    size_t index = self->heap_size++;
    while (index > 0) {
        size_t parent = (index - 1) / 2;
        if (self->heap [parent]->due <= task->due)
            break;
        self->heap [index] = self->heap [parent];
        index = parent;
    }
    self->heap [index] = task;
    return true;
}

static s_task_t *
s_heap_pop (s_engine_t *self)
{
    assert (self->heap_size > 0);
    s_task_t *top = self->heap [0];
    s_task_t *last = self->heap [--self->heap_size];
    size_t index = 0;
    while (true) {
        size_t child = 2 * index + 1;
        if (child >= self->heap_size)
            break;
        if (child + 1 < self->heap_size
        &&  self->heap [child + 1]->due < self->heap [child]->due)
            child++;
        if (last->due <= self->heap [child]->due)
            break;
        self->heap [index] = self->heap [child];
        index = child;
    }
    if (self->heap_size > 0)
        self->heap [index] = last;
    return top;
}

//  --------------------------------------------------------------------------
//  Endpoints

//  "host:port" of url, host lowercased; "" if curl cannot parse it (such
//  jobs share one bucket and fail at their first attempt)
static char *
s_endpoint_key (const char *url)
{
    char *key = NULL;
    CURLU *handle = curl_url ();
    char *host = NULL, *port = NULL;
    if (handle
    &&  curl_url_set (handle, CURLUPART_URL, url, 0) == CURLUE_OK
    &&  curl_url_get (handle, CURLUPART_HOST, &host, 0) == CURLUE_OK
    &&  curl_url_get (handle, CURLUPART_PORT, &port, CURLU_DEFAULT_PORT) == CURLUE_OK) {
        key = zsys_sprintf ("%s:%s", host, port);
        for (char *c = key; c && *c; c++)
            *c = (char) tolower ((unsigned char) *c);
    }
    curl_free (host);
    curl_free (port);
    curl_url_cleanup (handle);
    return key? key: strdup ("");
}

static s_host_t *
s_host_acquire (s_engine_t *self, const char *url)
{
    char *key = s_endpoint_key (url);
    if (!key)
        return NULL;
    s_host_t *host = (s_host_t *) zhashx_lookup (self->hosts, key);
    if (!host) {
        host = calloc (1, sizeof (*host));
        if (!host || zhashx_insert (self->hosts, key, host)) {
            free (host);
            free (key);
            return NULL;
        }
        host->key = (char *) zhashx_cursor (self->hosts);   //  the hash's own copy
    }
    free (key);
    host->tasks++;
    return host;
}

static void
s_host_release (s_engine_t *self, s_host_t *host)
{
    assert (host->tasks > 0);
    if (--host->tasks == 0) {
        assert (!host->runnable && !host->head && host->active == 0);
        zhashx_delete (self->hosts, host->key);
        free (host);
    }
}

//  Put host on the runnable list if it has ready tasks and a free slot
static void
s_host_check (s_engine_t *self, s_host_t *host)
{
    if (host->runnable || !host->head
    ||  host->active >= self->shared->config.max_per_host)
        return;
    host->runnable = true;
    host->next_runnable = NULL;
    if (self->runnable_tail)
        self->runnable_tail->next_runnable = host;
    else
        self->runnable_head = host;
    self->runnable_tail = host;
}

static void
s_ready (s_engine_t *self, s_task_t *task)
{
    s_host_t *host = task->host;
    task->next = NULL;
    if (host->tail)
        host->tail->next = task;
    else
        host->head = task;
    host->tail = task;
    s_host_check (self, host);
}

//  --------------------------------------------------------------------------
//  Outcomes and task lifecycle

static void
s_emit (s_engine_t *self, const char *kind, gt_callback_job_t *job, int status,
        uint32_t retry_in_ms, const char *error)
{
    //  Blocks if the broker stops reading: back-pressure, by design
    zsock_send (self->pipe, "s84i4s", kind, gt_callback_job_id (job),
                gt_callback_job_attempts (job), status, retry_in_ms, error);
}

//  A job ended (DELIVERED or DEAD): it no longer counts as pending
static void
s_pending_done (s_engine_t *self)
{
    pthread_mutex_lock (&self->shared->mutex);
    assert (self->shared->pending > 0);
    self->shared->pending--;
    pthread_mutex_unlock (&self->shared->mutex);
}

static void
s_task_destroy (s_engine_t *self, s_task_t **task_p)
{
    s_task_t *task = *task_p;
    if (task->host)
        s_host_release (self, task->host);
    gt_callback_job_destroy (&task->job);
    free (task);
    *task_p = NULL;
}

//  The job ends: report DELIVERED or DEAD and forget it.  Pending drops
//  first, so whoever reads the outcome sees the room it made.
static void
s_task_finish (s_engine_t *self, s_task_t **task_p, const char *kind,
               int status, const char *error)
{
    s_pending_done (self);
    s_emit (self, kind, (*task_p)->job, status, 0, error);
    s_task_destroy (self, task_p);
}

static void
s_request_destroy (s_engine_t *self, s_task_t *task)
{
    s_request_t *request = task->request;
    if (!request)
        return;
    if (request->easy) {
        curl_multi_remove_handle (self->multi, request->easy);
        curl_easy_cleanup (request->easy);
    }
    curl_slist_free_all (request->headers);
    free (request->body);
    //  Swap-remove from the running slots
    assert (self->running [request->slot] == task);
    s_task_t *last = self->running [--self->active];
    self->running [request->slot] = last;
    last->request->slot = request->slot;
    task->host->active--;
    free (request);
    task->request = NULL;
}

static uint32_t
s_backoff (uint32_t base_ms, uint32_t attempt)
{
    uint64_t ceiling = base_ms;
    for (uint32_t n = 1; n < attempt && ceiling < S_BACKOFF_CAP_MS; n++)
        ceiling *= 2;
    if (ceiling > S_BACKOFF_CAP_MS)
        ceiling = S_BACKOFF_CAP_MS;
    //  Full jitter: uniform in [0, ceiling]
    return randombytes_uniform ((uint32_t) ceiling + 1);
}

static bool
s_transport_error_is_final (CURLcode rc)
{
    //  The request can never work as given; everything else (timeouts,
    //  refused or reset connections, DNS, TLS) may heal and is retried
    return rc == CURLE_UNSUPPORTED_PROTOCOL || rc == CURLE_URL_MALFORMAT
        || rc == CURLE_NOT_BUILT_IN || rc == CURLE_BAD_FUNCTION_ARGUMENT;
}

//  An attempt ended: classify, report, then retry or finish the task
static void
s_complete (s_engine_t *self, s_task_t *task, CURLcode rc)
{
    long status = 0;
    curl_off_t retry_after = 0;
    char error [CURL_ERROR_SIZE + 32] = "";
    if (task->request && task->request->easy) {
        if (rc == CURLE_OK)
            curl_easy_getinfo (task->request->easy, CURLINFO_RESPONSE_CODE, &status);
        curl_easy_getinfo (task->request->easy, CURLINFO_RETRY_AFTER, &retry_after);
    }
    bool delivered = false, retriable;
    if (rc == CURLE_OK) {
        delivered = status >= 200 && status <= 299;
        retriable = (status >= 500 && status <= 599) || status == 408 || status == 429;
        if (!delivered)
            snprintf (error, sizeof (error), "HTTP %ld", status);
    }
    else {
        retriable = !s_transport_error_is_final (rc);
        const char *detail = task->request && task->request->error [0]
                           ? task->request->error: curl_easy_strerror (rc);
        snprintf (error, sizeof (error), "%s", detail);
    }
    s_request_destroy (self, task);
    //  A slot is free again: the endpoint may be runnable (before the task
    //  can finish, since finishing may free the endpoint)
    s_host_check (self, task->host);
    if (task->cancelled) {
        //  Its owner no longer wants to hear of it
        s_pending_done (self);
        s_task_destroy (self, &task);
        return;
    }

    gt_callback_job_t *job = task->job;
    uint32_t attempts = gt_callback_job_attempts (job);
    uint32_t retry_in = 0;
    bool retry = !delivered && retriable
              && attempts <= gt_callback_job_max_retries (job);
    if (retry) {
        retry_in = s_backoff (gt_callback_job_retry_delay (job), attempts);
        if ((status == 429 || status == 503) && retry_after > 0) {
            uint64_t minimum = (uint64_t) retry_after * 1000;
            if (minimum > S_RETRY_AFTER_CAP_MS)
                minimum = S_RETRY_AFTER_CAP_MS;
            if (retry_in < minimum)
                retry_in = (uint32_t) minimum;
        }
    }
    s_emit (self, "ATTEMPT", job, (int) status, retry_in, error);
    if (delivered)
        s_task_finish (self, &task, "DELIVERED", (int) status, "");
    else
    if (retry) {
        task->due = zclock_mono () + retry_in;
        if (!s_heap_push (self, task))
            s_task_finish (self, &task, "DEAD", (int) status, "out of memory");
    }
    else
        s_task_finish (self, &task, "DEAD", (int) status, error);
}

//  --------------------------------------------------------------------------
//  Starting attempts

//  Append a formatted header line; false on out-of-memory
static bool
s_header (struct curl_slist **headers, const char *format, ...)
{
    va_list args;
    va_start (args, format);
    char *line = zsys_vprintf (format, args);
    va_end (args);
    struct curl_slist *list = line? curl_slist_append (*headers, line): NULL;
    free (line);
    if (list)
        *headers = list;
    return list != NULL;
}

static size_t
s_discard (char *data, size_t size, size_t count, void *user)
{
    (void) data;
    (void) user;
    return size * count;
}

static bool
s_prepare (s_engine_t *self, s_task_t *task, uint32_t attempt)
{
    s_request_t *request = task->request;
    const gt_delivery_config_t *config = &self->shared->config;
    if (!s_header (&request->headers, "Content-Type: application/json")
    ||  !s_header (&request->headers, "Expect:")     //  no 100-continue round trip
    ||  !s_header (&request->headers, "Idempotency-Key: %s",
                   gt_callback_job_idempotency_key (task->job))
    ||  !s_header (&request->headers, "X-GarbageTruck-Attempt: %" PRIu32, attempt))
        return false;
    //  A job may carry its own secret (its principal's callback-secret)
    const char *secret = gt_callback_job_secret (task->job) ? gt_callback_job_secret (task->job) : config->secret;
    if (secret) {
        char timestamp [24];
        //  zclock_time (precise CLOCK_REALTIME), as for every other broker
        //  timestamp: glibc serves time () from the coarse clock, a few ms
        //  behind, so the two could disagree on the second
        snprintf (timestamp, sizeof (timestamp), "%lld", (long long) (zclock_time () / 1000));
        char signature [GT_WEBHOOK_SIGNATURE_SIZE];
        if (gt_webhook_sign (request->body, strlen (request->body),
                             secret, timestamp, signature)
        ||  !s_header (&request->headers, GT_WEBHOOK_TIMESTAMP_HEADER ": %s", timestamp)
        ||  !s_header (&request->headers, GT_WEBHOOK_SIGNATURE_HEADER ": %s", signature))
            return false;
    }
    CURL *easy = request->easy;
    return curl_easy_setopt (easy, CURLOPT_URL, gt_callback_job_url (task->job)) == CURLE_OK
        && curl_easy_setopt (easy, CURLOPT_PROTOCOLS_STR, "http,https") == CURLE_OK
        && curl_easy_setopt (easy, CURLOPT_FOLLOWLOCATION, 0L) == CURLE_OK
        && curl_easy_setopt (easy, CURLOPT_NOSIGNAL, 1L) == CURLE_OK
        && curl_easy_setopt (easy, CURLOPT_TIMEOUT_MS, (long) config->timeout_ms) == CURLE_OK
        && curl_easy_setopt (easy, CURLOPT_CONNECTTIMEOUT_MS, (long) config->timeout_ms) == CURLE_OK
        && curl_easy_setopt (easy, CURLOPT_POSTFIELDSIZE_LARGE,
                             (curl_off_t) strlen (request->body)) == CURLE_OK
        && curl_easy_setopt (easy, CURLOPT_POSTFIELDS, request->body) == CURLE_OK
        && curl_easy_setopt (easy, CURLOPT_HTTPHEADER, request->headers) == CURLE_OK
        && curl_easy_setopt (easy, CURLOPT_USERAGENT, "garbagetruck/" GT_VERSION_STRING) == CURLE_OK
        && curl_easy_setopt (easy, CURLOPT_WRITEFUNCTION, s_discard) == CURLE_OK
        && curl_easy_setopt (easy, CURLOPT_ERRORBUFFER, request->error) == CURLE_OK
        && curl_easy_setopt (easy, CURLOPT_PRIVATE, task) == CURLE_OK;
}

//  Start the next attempt of task (it holds a slot from now on)
static void
s_start (s_engine_t *self, s_task_t *task)
{
    s_request_t *request = calloc (1, sizeof (*request));
    if (!request) {
        //  Not even a slot: try again in a second, without counting an attempt
        task->due = zclock_mono () + 1000;
        if (!s_heap_push (self, task))
            s_task_finish (self, &task, "DEAD", 0, "out of memory");
        return;
    }
    request->slot = self->active;
    self->running [self->active++] = task;
    task->host->active++;
    task->request = request;

    uint32_t attempt = 0;
    request->body = gt_callback_job_next_attempt (task->job, &attempt);
    request->easy = curl_easy_init ();
    if (!request->body || !request->easy || !s_prepare (self, task, attempt)) {
        s_complete (self, task, CURLE_OUT_OF_MEMORY);
        return;
    }
    CURLMcode rc = curl_multi_add_handle (self->multi, request->easy);
    if (rc != CURLM_OK) {
        snprintf (request->error, sizeof (request->error), "%s", curl_multi_strerror (rc));
        //  Not added: nothing to remove
        curl_easy_cleanup (request->easy);
        request->easy = NULL;
        s_complete (self, task, CURLE_FAILED_INIT);
    }
}

//  Start ready tasks while slots are free; returns how many started
static size_t
s_dispatch (s_engine_t *self)
{
    size_t started = 0;
    while (self->active < self->shared->config.max_concurrent && self->runnable_head) {
        s_host_t *host = self->runnable_head;
        self->runnable_head = host->next_runnable;
        if (!self->runnable_head)
            self->runnable_tail = NULL;
        host->runnable = false;
        s_task_t *task = host->head;
        host->head = task->next;
        if (!host->head)
            host->tail = NULL;
        task->next = NULL;
        //  Hold the endpoint: a task that fails at once may free it
        host->tasks++;
        s_start (self, task);
        s_host_check (self, host);      //  round robin: back to the tail if still runnable
        s_host_release (self, host);
        started++;
    }
    return started;
}

//  --------------------------------------------------------------------------
//  The actor loop

static void
s_accept (s_engine_t *self, gt_callback_job_t *job)
{
    const gt_delivery_config_t *config = &self->shared->config;
    gt_callback_job_apply_defaults (job, config->max_retries, config->retry_delay_ms);
    s_task_t *task = calloc (1, sizeof (*task));
    if (task) {
        task->job = job;
        task->host = s_host_acquire (self, gt_callback_job_url (job));
    }
    if (!task || !task->host) {
        s_pending_done (self);
        s_emit (self, "DEAD", job, 0, 0, "out of memory");
        if (task)
            s_task_destroy (self, &task);
        else
            gt_callback_job_destroy (&job);
        return;
    }
    uint32_t delay = gt_callback_job_delay (job);
    if (delay > 0) {
        task->due = zclock_mono () + delay;
        if (s_heap_push (self, task))
            return;
    }
    s_ready (self, task);
}

//  Cancellations: job ids sorted, looked up by binary search
static int
s_id_compare (const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *) a, y = *(const uint64_t *) b;
    return x < y ? -1 : x > y;
}

static bool
s_id_listed (const uint64_t *ids, size_t count, uint64_t id)
{
    return count > 0 && bsearch (&id, ids, count, sizeof (uint64_t), s_id_compare) != NULL;
}

static bool
s_task_listed (s_task_t *task, const uint64_t *ids, size_t count)
{
    return s_id_listed (ids, count, gt_callback_job_id (task->job));
}

//  Cancel the tasks of these jobs (ids sorted): waiting ones go now, one in
//  flight when its attempt ends.  No outcome for any of them.
static void
s_cancel (s_engine_t *self, const uint64_t *ids, size_t count)
{
    for (size_t i = 0; i < self->active; i++)
        if (s_task_listed (self->running [i], ids, count))
            self->running [i]->cancelled = true;
    //  Tasks to drop are gathered first: dropping may free their endpoint
    s_task_t **dropped = NULL;
    size_t dropped_count = 0, dropped_capacity = 0;
    //  The retry heap, rebuilt from the tasks it keeps (it does not grow)
    size_t kept = 0;
    for (size_t i = 0; i < self->heap_size; i++) {
        s_task_t *task = self->heap [i];
        if (s_task_listed (task, ids, count)) {
            if (dropped_count == dropped_capacity) {
                dropped_capacity = dropped_capacity ? dropped_capacity * 2 : 64;
                dropped = (s_task_t **) realloc (dropped, dropped_capacity * sizeof (*dropped));
                assert (dropped);
            }
            dropped [dropped_count++] = task;
        }
        else
            self->heap [kept++] = task;
    }
    size_t heap_count = kept;
    self->heap_size = 0;
    for (size_t i = 0; i < heap_count; i++) {
        bool pushed = s_heap_push (self, self->heap [i]);
        assert (pushed);            //  within its capacity
    }
    //  Ready FIFOs of every endpoint
    for (s_host_t *host = (s_host_t *) zhashx_first (self->hosts); host;
         host = (s_host_t *) zhashx_next (self->hosts)) {
        s_task_t **link = &host->head;
        host->tail = NULL;
        while (*link) {
            s_task_t *task = *link;
            if (s_task_listed (task, ids, count)) {
                *link = task->next;
                task->next = NULL;
                if (dropped_count == dropped_capacity) {
                    dropped_capacity = dropped_capacity ? dropped_capacity * 2 : 64;
                    dropped = (s_task_t **) realloc (dropped, dropped_capacity * sizeof (*dropped));
                    assert (dropped);
                }
                dropped [dropped_count++] = task;
            }
            else {
                host->tail = task;
                link = &task->next;
            }
        }
    }
    //  Endpoints left without ready tasks leave the runnable list (in order)
    s_host_t *host = self->runnable_head;
    self->runnable_head = self->runnable_tail = NULL;
    while (host) {
        s_host_t *next = host->next_runnable;
        host->runnable = false;
        s_host_check (self, host);
        host = next;
    }
    for (size_t i = 0; i < dropped_count; i++) {
        s_pending_done (self);
        s_task_destroy (self, &dropped [i]);
    }
    free (dropped);
}

static void
s_take_inbox (s_engine_t *self)
{
    gt_delivery_t *shared = self->shared;
    pthread_mutex_lock (&shared->mutex);
    gt_callback_job_t **jobs = shared->inbox;
    size_t count = shared->inbox_count;
    size_t capacity = shared->inbox_capacity;
    shared->inbox = self->intake;
    shared->inbox_capacity = self->intake_capacity;
    shared->inbox_count = 0;
    uint64_t *cancels = shared->cancels;
    size_t cancel_count = shared->cancel_count;
    shared->cancels = NULL;
    shared->cancel_count = shared->cancel_capacity = 0;
    pthread_mutex_unlock (&shared->mutex);
    self->intake = jobs;
    self->intake_capacity = capacity;
    //  Cancellations first: the jobs cancelled while in the inbox were
    //  taken out of it, so these jobs came after
    if (cancel_count) {
        qsort (cancels, cancel_count, sizeof (uint64_t), s_id_compare);
        s_cancel (self, cancels, cancel_count);
    }
    free (cancels);
    for (size_t i = 0; i < count; i++)
        s_accept (self, jobs [i]);
}

static void
s_fire_due (s_engine_t *self)
{
    uint64_t now = zclock_mono ();
    while (self->heap_size > 0 && self->heap [0]->due <= now)
        s_ready (self, s_heap_pop (self));
}

static void
s_read_completions (s_engine_t *self)
{
    CURLMsg *message;
    int left;
    while ((message = curl_multi_info_read (self->multi, &left))) {
        if (message->msg != CURLMSG_DONE)
            continue;
        //  Copy out: the message dies with the handle
        CURLcode result = message->data.result;
        s_task_t *task = NULL;
        curl_easy_getinfo (message->easy_handle, CURLINFO_PRIVATE, (char **) &task);
        assert (task);
        s_complete (self, task, result);
    }
}

static void
s_handle_pipe (s_engine_t *self)
{
    while (!self->terminated && (zsock_events (self->pipe) & ZMQ_POLLIN)) {
        zmsg_t *message = zmsg_recv (self->pipe);
        if (!message) {
            self->terminated = true;        //  interrupted
            break;
        }
        char *command = zmsg_popstr (message);
        if (command && streq (command, "$TERM"))
            self->terminated = true;
        //  Nothing else is sent to this actor; anything else is ignored
        free (command);
        zmsg_destroy (&message);
    }
}

static int
s_poll_timeout (s_engine_t *self)
{
    if (self->heap_size == 0)
        return S_POLL_MAX_MS;
    uint64_t now = zclock_mono ();
    uint64_t due = self->heap [0]->due;
    if (due <= now)
        return 0;
    return due - now > S_POLL_MAX_MS? S_POLL_MAX_MS: (int) (due - now);
}

static void
s_engine_destroy (s_engine_t **self_p)
{
    s_engine_t *self = *self_p;
    if (!self)
        return;
    //  Tasks go without releasing endpoints; endpoints are freed at the end
    while (self->active > 0) {
        s_task_t *task = self->running [self->active - 1];
        s_request_destroy (self, task);
        task->host = NULL;
        s_task_destroy (self, &task);
    }
    while (self->heap_size > 0) {
        s_task_t *task = s_heap_pop (self);
        task->host = NULL;
        s_task_destroy (self, &task);
    }
    if (self->hosts) {
        for (s_host_t *host = (s_host_t *) zhashx_first (self->hosts); host;
             host = (s_host_t *) zhashx_next (self->hosts)) {
            while (host->head) {
                s_task_t *task = host->head;
                host->head = task->next;
                task->host = NULL;
                s_task_destroy (self, &task);
            }
            free (host);
        }
        zhashx_destroy (&self->hosts);
    }
    free (self->heap);
    free (self->running);
    free (self->intake);
    free (self);
    *self_p = NULL;
}

static void
s_actor (zsock_t *pipe, void *args)
{
    gt_delivery_t *shared = (gt_delivery_t *) args;
    s_engine_t *self = (s_engine_t *) shared->engine;
    self->pipe = pipe;
    struct curl_waitfd pipe_fd = {
        .fd = zsock_fd (pipe), .events = CURL_WAIT_POLLIN, .revents = 0
    };
    zsock_signal (pipe, 0);

    while (true) {
        s_handle_pipe (self);
        if (self->terminated)
            break;
        s_take_inbox (self);
        s_fire_due (self);
        s_dispatch (self);
        int still_running = 0;
        curl_multi_perform (self->multi, &still_running);
        s_read_completions (self);
        if (s_dispatch (self) > 0)
            continue;                   //  new transfers: perform before waiting
        //  Our sends may have eaten the pipe's edge: look before waiting
        if (zsock_events (pipe) & ZMQ_POLLIN)
            continue;
        curl_multi_poll (self->multi, &pipe_fd, 1, s_poll_timeout (self), NULL);
    }
    s_engine_destroy (&self);
    shared->engine = NULL;
}

//  --------------------------------------------------------------------------
//  Public API

void
gt_delivery_config_init (gt_delivery_config_t *config)
{
    assert (config);
    memset (config, 0, sizeof (*config));
    config->max_concurrent = 256;
    config->max_per_host = 32;
    config->timeout_ms = 30000;
    config->max_retries = 3;
    config->retry_delay_ms = 5000;
    config->secret = NULL;
    config->max_pending = 100000;
}

gt_delivery_t *
gt_delivery_new (const gt_delivery_config_t *config)
{
    gt_delivery_config_t defaults;
    gt_delivery_config_init (&defaults);
    if (!config)
        config = &defaults;
    if (!gt_callback_global_init ())
        return NULL;

    gt_delivery_t *self = calloc (1, sizeof (*self));
    if (!self)
        return NULL;
    self->config = *config;
    if (!self->config.max_concurrent)
        self->config.max_concurrent = defaults.max_concurrent;
    if (!self->config.max_per_host)
        self->config.max_per_host = defaults.max_per_host;
    if (!self->config.timeout_ms)
        self->config.timeout_ms = defaults.timeout_ms;
    if (!self->config.max_pending)
        self->config.max_pending = defaults.max_pending;
    if (config->secret && *config->secret)
        self->secret = strdup (config->secret);
    self->config.secret = self->secret;
    pthread_mutex_init (&self->mutex, NULL);

    s_engine_t *engine = calloc (1, sizeof (*engine));
    self->multi = curl_multi_init ();
    if (engine) {
        self->engine = engine;
        engine->shared = self;
        engine->multi = self->multi;
        engine->hosts = zhashx_new ();
        engine->running = calloc (self->config.max_concurrent, sizeof (s_task_t *));
    }
    if (!engine || !engine->hosts || !engine->running || !self->multi
    ||  (config->secret && *config->secret && !self->secret)) {
        gt_delivery_destroy (&self);
        return NULL;
    }
    //  Keep one idle connection per possible transfer for reuse
    curl_multi_setopt (self->multi, CURLMOPT_MAXCONNECTS, (long) self->config.max_concurrent);
    self->actor = zactor_new (s_actor, self);
    if (!self->actor)
        gt_delivery_destroy (&self);
    return self;
}

void
gt_delivery_destroy (gt_delivery_t **self_p)
{
    assert (self_p);
    gt_delivery_t *self = *self_p;
    if (!self)
        return;
    zactor_destroy (&self->actor);          //  the engine frees itself on $TERM
    s_engine_t *engine = (s_engine_t *) self->engine;
    s_engine_destroy (&engine);             //  only if the actor never ran
    for (size_t i = 0; i < self->inbox_count; i++)
        gt_callback_job_destroy (&self->inbox [i]);
    free (self->inbox);
    free (self->cancels);
    if (self->multi)
        curl_multi_cleanup (self->multi);
    free (self->secret);
    pthread_mutex_destroy (&self->mutex);
    free (self);
    *self_p = NULL;
}

zsock_t *
gt_delivery_sock (gt_delivery_t *self)
{
    assert (self);
    return zactor_sock (self->actor);
}

int
gt_delivery_recv (gt_delivery_t *self, gt_delivery_outcome_t *outcome)
{
    assert (self && outcome);
    memset (outcome, 0, sizeof (*outcome));
    char *kind = NULL;
    char *error = NULL;
    if (zsock_recv (self->actor, "s84i4s", &kind, &outcome->job_id, &outcome->attempt,
                    &outcome->http_status, &outcome->retry_in_ms, &error) == -1
    ||  !kind || !error) {
        free (kind);
        free (error);
        return -1;
    }
    int rc = 0;
    if (streq (kind, "ATTEMPT"))
        outcome->kind = GT_DELIVERY_ATTEMPT;
    else
    if (streq (kind, "DELIVERED"))
        outcome->kind = GT_DELIVERY_DELIVERED;
    else
    if (streq (kind, "DEAD"))
        outcome->kind = GT_DELIVERY_DEAD;
    else
        rc = -1;
    free (kind);
    if (rc == 0)
        outcome->error = error;
    else
        free (error);
    return rc;
}

int
gt_delivery_submit (gt_delivery_t *self, gt_callback_job_t **job_p)
{
    assert (self && job_p && *job_p);
    pthread_mutex_lock (&self->mutex);
    if (self->pending >= self->config.max_pending) {
        pthread_mutex_unlock (&self->mutex);
        return -1;
    }
    if (self->inbox_count == self->inbox_capacity) {
        size_t capacity = self->inbox_capacity? self->inbox_capacity * 2: 64;
        gt_callback_job_t **inbox = realloc (self->inbox, capacity * sizeof (*inbox));
        if (!inbox) {
            pthread_mutex_unlock (&self->mutex);
            return -1;
        }
        self->inbox = inbox;
        self->inbox_capacity = capacity;
    }
    bool was_empty = self->inbox_count == 0;
    self->inbox [self->inbox_count++] = *job_p;
    self->pending++;
    pthread_mutex_unlock (&self->mutex);
    *job_p = NULL;
    //  Ring only on empty -> non-empty: the actor takes the whole inbox
    if (was_empty)
        curl_multi_wakeup (self->multi);
    return 0;
}

void
gt_delivery_cancel (gt_delivery_t *self, const uint64_t *job_ids, size_t count)
{
    assert (self);
    assert (job_ids || count == 0);
    if (count == 0)
        return;
    uint64_t *sorted = (uint64_t *) malloc (count * sizeof (uint64_t));
    assert (sorted);
    memcpy (sorted, job_ids, count * sizeof (uint64_t));
    qsort (sorted, count, sizeof (uint64_t), s_id_compare);
    pthread_mutex_lock (&self->mutex);
    //  Jobs the actor has not taken yet go at once
    size_t kept = 0;
    for (size_t i = 0; i < self->inbox_count; i++) {
        if (s_id_listed (sorted, count, gt_callback_job_id (self->inbox [i]))) {
            gt_callback_job_destroy (&self->inbox [i]);
            assert (self->pending > 0);
            self->pending--;
        }
        else
            self->inbox [kept++] = self->inbox [i];
    }
    self->inbox_count = kept;
    //  The others when the actor takes its inbox
    if (self->cancel_count + count > self->cancel_capacity) {
        size_t capacity = self->cancel_capacity ? self->cancel_capacity : 64;
        while (capacity < self->cancel_count + count)
            capacity *= 2;
        self->cancels = (uint64_t *) realloc (self->cancels, capacity * sizeof (uint64_t));
        assert (self->cancels);
        self->cancel_capacity = capacity;
    }
    memcpy (self->cancels + self->cancel_count, sorted, count * sizeof (uint64_t));
    self->cancel_count += count;
    pthread_mutex_unlock (&self->mutex);
    free (sorted);
    curl_multi_wakeup (self->multi);
}

size_t
gt_delivery_pending (gt_delivery_t *self)
{
    assert (self);
    pthread_mutex_lock (&self->mutex);
    size_t pending = self->pending;
    pthread_mutex_unlock (&self->mutex);
    return pending;
}

/*  gt_http_server.c — scripted HTTP test server on libmicrohttpd; the
    contract is in gt_http_server.h.

    Thread-per-connection mode: a delayed or held response simply waits on
    the server's condition variable in the connection's own thread, so the
    other connections keep going.  One mutex guards scripts, records and
    counters; the condition variable (CLOCK_MONOTONIC) serves the gate,
    delays, shutdown and the waits of tests.  */

#include "gt_http_server.h"
#include <microhttpd.h>
#include <arpa/inet.h>
#include <assert.h>
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#define S_MAX_BODY  (16 * 1024 * 1024)  //  larger bodies are answered 413

typedef struct _s_script_t s_script_t;
struct _s_script_t {
    char *path;                     //  path it answers
    gt_http_response_t response;    //  the answer (owns its strings)
    s_script_t *next;               //  next in FIFO
};

struct _gt_http_server_t {
    struct MHD_Daemon *daemon;      //  libmicrohttpd daemon
    int port;                       //  bound port
    pthread_mutex_t mutex;          //  guards everything below
    pthread_cond_t changed;         //  signalled on every state change
    s_script_t *scripts;            //  FIFO of scripted answers, all paths
    gt_http_response_t fallback;    //  default answer (owns its strings)
    bool gate_open;                 //  held answers may go
    bool stopping;                  //  destroy under way: answer at once
    bool recording;                 //  keep records
    gt_http_request_t **records;    //  received requests, arrival order
    size_t record_count;            //  records kept
    size_t record_capacity;         //  allocated slots in records
    size_t count;                   //  requests received (recorded or not)
    size_t in_flight;               //  received, not yet answered
    size_t max_in_flight;           //  most in flight at once
};

//  Per-request state while MHD processes it
typedef struct {
    gt_http_request_t *record;      //  being filled; handed to the server when complete
    bool too_large;                 //  body went past S_MAX_BODY
} s_context_t;

static int64_t
s_now_ms (void)
{
    struct timespec ts;
    clock_gettime (CLOCK_MONOTONIC, &ts);
    return (int64_t) ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static char *
s_strdup_or_null (const char *s)
{
    return s? strdup (s): NULL;
}

static void
s_response_copy (gt_http_response_t *dest, const gt_http_response_t *src)
{
    *dest = *src;
    dest->retry_after = s_strdup_or_null (src->retry_after);
    dest->body = s_strdup_or_null (src->body);
}

static void
s_response_clear (gt_http_response_t *response)
{
    free ((char *) response->retry_after);
    free ((char *) response->body);
    memset (response, 0, sizeof (*response));
}

static void
s_record_destroy (gt_http_request_t **record_p)
{
    gt_http_request_t *record = *record_p;
    if (!record)
        return;
    for (size_t i = 0; i < record->header_count; i++) {
        free (record->header_names [i]);
        free (record->header_values [i]);
    }
    free (record->header_names);
    free (record->header_values);
    free (record->method);
    free (record->path);
    free (record->body);
    free (record);
    *record_p = NULL;
}

static enum MHD_Result
s_collect_header (void *cls, enum MHD_ValueKind kind, const char *key, const char *value)
{
    (void) kind;
    gt_http_request_t *record = (gt_http_request_t *) cls;
    size_t n = record->header_count;
    char **names = realloc (record->header_names, (n + 1) * sizeof (char *));
    if (names)
        record->header_names = names;
    char **values = realloc (record->header_values, (n + 1) * sizeof (char *));
    if (values)
        record->header_values = values;
    if (!names || !values)
        return MHD_NO;
    names [n] = strdup (key);
    values [n] = strdup (value? value: "");
    record->header_count = n + 1;
    return MHD_YES;
}

//  Wait on the condition variable until deadline_ms (monotonic); caller holds mutex
static void
s_wait_until (gt_http_server_t *self, int64_t deadline_ms)
{
    struct timespec ts = {
        .tv_sec = deadline_ms / 1000,
        .tv_nsec = (deadline_ms % 1000) * 1000000
    };
    pthread_cond_timedwait (&self->changed, &self->mutex, &ts);
}

//  Pick the answer for path: first script for it, else the default (copied)
static void
s_choose (gt_http_server_t *self, const char *path, gt_http_response_t *response)
{
    s_script_t **link = &self->scripts;
    while (*link && strcmp ((*link)->path, path) != 0)
        link = &(*link)->next;
    if (*link) {
        s_script_t *script = *link;
        *link = script->next;
        *response = script->response;           //  takes its strings
        free (script->path);
        free (script);
    }
    else
        s_response_copy (response, &self->fallback);
    if (response->status == 0)
        response->status = 200;
}

//  Record a complete request and decide its answer; caller holds mutex
static void
s_publish (gt_http_server_t *self, s_context_t *context, gt_http_response_t *response)
{
    gt_http_request_t *record = context->record;
    s_choose (self, record->path, response);
    if (context->too_large)
        response->status = 413;
    record->status = response->status;
    self->count++;
    self->in_flight++;
    if (self->in_flight > self->max_in_flight)
        self->max_in_flight = self->in_flight;
    if (self->recording) {
        if (self->record_count == self->record_capacity) {
            size_t capacity = self->record_capacity? self->record_capacity * 2: 64;
            gt_http_request_t **records = realloc (self->records, capacity * sizeof (*records));
            if (records) {
                self->records = records;
                self->record_capacity = capacity;
            }
        }
        if (self->record_count < self->record_capacity) {
            self->records [self->record_count++] = record;
            context->record = NULL;             //  the server owns it now
        }
    }
    pthread_cond_broadcast (&self->changed);
}

static enum MHD_Result
s_handle (void *cls, struct MHD_Connection *connection, const char *url,
          const char *method, const char *version, const char *upload_data,
          size_t *upload_data_size, void **con_cls)
{
    (void) version;
    gt_http_server_t *self = (gt_http_server_t *) cls;
    s_context_t *context = (s_context_t *) *con_cls;

    if (!context) {
        //  First call: headers are in
        context = calloc (1, sizeof (*context));
        if (!context)
            return MHD_NO;
        *con_cls = context;
        context->record = calloc (1, sizeof (gt_http_request_t));
        if (!context->record)
            return MHD_NO;
        context->record->received_ms = s_now_ms ();
        context->record->method = strdup (method);
        context->record->path = strdup (url);
        context->record->body = calloc (1, 1);
        if (!context->record->method || !context->record->path || !context->record->body)
            return MHD_NO;
        MHD_get_connection_values (connection, MHD_HEADER_KIND,
                                   s_collect_header, context->record);
        return MHD_YES;
    }
    if (*upload_data_size > 0) {
        gt_http_request_t *record = context->record;
        size_t size = *upload_data_size;
        if (record->body_size + size > S_MAX_BODY)
            context->too_large = true;
        else {
            char *body = realloc (record->body, record->body_size + size + 1);
            if (!body)
                return MHD_NO;
            memcpy (body + record->body_size, upload_data, size);
            record->body_size += size;
            body [record->body_size] = 0;
            record->body = body;
        }
        *upload_data_size = 0;
        return MHD_YES;
    }
    //  Body complete: record, then answer as scripted
    gt_http_response_t answer;
    pthread_mutex_lock (&self->mutex);
    s_publish (self, context, &answer);
    int64_t deadline = s_now_ms () + answer.delay_ms;
    while (!self->stopping) {
        if (answer.hold && !self->gate_open)
            s_wait_until (self, s_now_ms () + 1000);
        else
        if (s_now_ms () < deadline)
            s_wait_until (self, deadline);
        else
            break;
    }
    //  Out of flight before the answer leaves: the client still counts the
    //  request as in flight now, so the server's count never exceeds it
    self->in_flight--;
    pthread_cond_broadcast (&self->changed);
    pthread_mutex_unlock (&self->mutex);

    const char *text = answer.body? answer.body: "";
    struct MHD_Response *response = MHD_create_response_from_buffer (
        strlen (text), (void *) text, MHD_RESPMEM_MUST_COPY);
    enum MHD_Result rc = MHD_NO;
    if (response) {
        if (answer.retry_after)
            MHD_add_response_header (response, "Retry-After", answer.retry_after);
        rc = MHD_queue_response (connection, (unsigned int) answer.status, response);
        MHD_destroy_response (response);
    }
    s_response_clear (&answer);
    return rc;
}

static void
s_completed (void *cls, struct MHD_Connection *connection, void **con_cls,
             enum MHD_RequestTerminationCode toe)
{
    (void) cls;
    (void) connection;
    (void) toe;
    s_context_t *context = (s_context_t *) *con_cls;
    if (!context)
        return;
    s_record_destroy (&context->record);       //  only if not handed over
    free (context);
    *con_cls = NULL;
}

gt_http_server_t *
gt_http_server_new (void)
{
    gt_http_server_t *self = calloc (1, sizeof (*self));
    if (!self)
        return NULL;
    pthread_mutex_init (&self->mutex, NULL);
    pthread_condattr_t attr;
    pthread_condattr_init (&attr);
    pthread_condattr_setclock (&attr, CLOCK_MONOTONIC);
    pthread_cond_init (&self->changed, &attr);
    pthread_condattr_destroy (&attr);
    self->fallback.status = 200;
    self->recording = true;

    struct sockaddr_in address;
    memset (&address, 0, sizeof (address));
    address.sin_family = AF_INET;
    address.sin_port = 0;
    address.sin_addr.s_addr = htonl (INADDR_LOOPBACK);
    self->daemon = MHD_start_daemon (
        MHD_USE_THREAD_PER_CONNECTION | MHD_USE_POLL_INTERNAL_THREAD,
        0, NULL, NULL, s_handle, self,
        MHD_OPTION_SOCK_ADDR, (struct sockaddr *) &address,
        MHD_OPTION_NOTIFY_COMPLETED, s_completed, self,
        MHD_OPTION_CONNECTION_LIMIT, (unsigned int) 4096,
        MHD_OPTION_LISTEN_BACKLOG_SIZE, (unsigned int) 1024,
        MHD_OPTION_END);
    const union MHD_DaemonInfo *info = self->daemon
        ? MHD_get_daemon_info (self->daemon, MHD_DAEMON_INFO_BIND_PORT): NULL;
    if (!info || info->port == 0) {
        gt_http_server_destroy (&self);
        return NULL;
    }
    self->port = info->port;
    return self;
}

void
gt_http_server_destroy (gt_http_server_t **self_p)
{
    assert (self_p);
    gt_http_server_t *self = *self_p;
    if (!self)
        return;
    pthread_mutex_lock (&self->mutex);
    self->stopping = true;
    pthread_cond_broadcast (&self->changed);
    pthread_mutex_unlock (&self->mutex);
    if (self->daemon)
        MHD_stop_daemon (self->daemon);     //  joins the connection threads
    while (self->scripts) {
        s_script_t *script = self->scripts;
        self->scripts = script->next;
        free (script->path);
        s_response_clear (&script->response);
        free (script);
    }
    s_response_clear (&self->fallback);
    for (size_t i = 0; i < self->record_count; i++)
        s_record_destroy (&self->records [i]);
    free (self->records);
    pthread_cond_destroy (&self->changed);
    pthread_mutex_destroy (&self->mutex);
    free (self);
    *self_p = NULL;
}

int
gt_http_server_port (gt_http_server_t *self)
{
    assert (self);
    return self->port;
}

char *
gt_http_server_url (gt_http_server_t *self, const char *path)
{
    assert (self && path);
    size_t size = strlen (path) + 32;
    char *url = malloc (size);
    if (url)
        snprintf (url, size, "http://127.0.0.1:%d%s", self->port, path);
    return url;
}

void
gt_http_server_push (gt_http_server_t *self, const char *path,
                     const gt_http_response_t *response)
{
    assert (self && path && response);
    s_script_t *script = calloc (1, sizeof (*script));
    assert (script);
    script->path = strdup (path);
    s_response_copy (&script->response, response);
    pthread_mutex_lock (&self->mutex);
    s_script_t **link = &self->scripts;
    while (*link)
        link = &(*link)->next;
    *link = script;
    pthread_mutex_unlock (&self->mutex);
}

void
gt_http_server_set_default (gt_http_server_t *self, const gt_http_response_t *response)
{
    assert (self && response);
    pthread_mutex_lock (&self->mutex);
    s_response_clear (&self->fallback);
    s_response_copy (&self->fallback, response);
    pthread_mutex_unlock (&self->mutex);
}

void
gt_http_server_gate (gt_http_server_t *self, bool open)
{
    assert (self);
    pthread_mutex_lock (&self->mutex);
    self->gate_open = open;
    pthread_cond_broadcast (&self->changed);
    pthread_mutex_unlock (&self->mutex);
}

void
gt_http_server_set_recording (gt_http_server_t *self, bool recording)
{
    assert (self);
    pthread_mutex_lock (&self->mutex);
    self->recording = recording;
    pthread_mutex_unlock (&self->mutex);
}

size_t
gt_http_server_count (gt_http_server_t *self)
{
    assert (self);
    pthread_mutex_lock (&self->mutex);
    size_t count = self->count;
    pthread_mutex_unlock (&self->mutex);
    return count;
}

const gt_http_request_t *
gt_http_server_request (gt_http_server_t *self, size_t index)
{
    assert (self);
    pthread_mutex_lock (&self->mutex);
    const gt_http_request_t *record = index < self->record_count? self->records [index]: NULL;
    pthread_mutex_unlock (&self->mutex);
    return record;
}

//  Wait until *counter >= count or timeout; generic over the two counters
static bool
s_wait_for (gt_http_server_t *self, const size_t *counter, size_t count, int timeout_ms)
{
    int64_t deadline = s_now_ms () + timeout_ms;
    pthread_mutex_lock (&self->mutex);
    while (*counter < count && s_now_ms () < deadline)
        s_wait_until (self, deadline);
    bool reached = *counter >= count;
    pthread_mutex_unlock (&self->mutex);
    return reached;
}

bool
gt_http_server_wait (gt_http_server_t *self, size_t count, int timeout_ms)
{
    assert (self);
    return s_wait_for (self, &self->count, count, timeout_ms);
}

size_t
gt_http_server_in_flight (gt_http_server_t *self)
{
    assert (self);
    pthread_mutex_lock (&self->mutex);
    size_t in_flight = self->in_flight;
    pthread_mutex_unlock (&self->mutex);
    return in_flight;
}

size_t
gt_http_server_max_in_flight (gt_http_server_t *self)
{
    assert (self);
    pthread_mutex_lock (&self->mutex);
    size_t max_in_flight = self->max_in_flight;
    pthread_mutex_unlock (&self->mutex);
    return max_in_flight;
}

bool
gt_http_server_wait_in_flight (gt_http_server_t *self, size_t count, int timeout_ms)
{
    assert (self);
    return s_wait_for (self, &self->in_flight, count, timeout_ms);
}

const char *
gt_http_request_header (const gt_http_request_t *request, const char *name)
{
    assert (request && name);
    for (size_t i = 0; i < request->header_count; i++)
        if (strcasecmp (request->header_names [i], name) == 0)
            return request->header_values [i];
    return NULL;
}

//  --------------------------------------------------------------------------
//  Selftest: a libcurl client against the server

#include <curl/curl.h>

static size_t
s_capture (char *data, size_t size, size_t count, void *user)
{
    char *buffer = (char *) user;          //  64 bytes, enough for the test bodies
    size_t have = strlen (buffer);
    size_t take = size * count;
    if (have + take < 64) {
        memcpy (buffer + have, data, take);
        buffer [have + take] = 0;
    }
    return size * count;
}

//  POST body to url; returns the status, fills retry_after (0 if none) and reply
static long
s_post (const char *url, const char *body, long timeout_ms, curl_off_t *retry_after,
        char reply [64])
{
    CURL *easy = curl_easy_init ();
    assert (easy);
    struct curl_slist *headers = curl_slist_append (NULL, "X-Test: yes");
    reply [0] = 0;
    curl_easy_setopt (easy, CURLOPT_URL, url);
    curl_easy_setopt (easy, CURLOPT_POSTFIELDS, body);
    curl_easy_setopt (easy, CURLOPT_HTTPHEADER, headers);
    curl_easy_setopt (easy, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt (easy, CURLOPT_TIMEOUT_MS, timeout_ms);
    curl_easy_setopt (easy, CURLOPT_WRITEFUNCTION, s_capture);
    curl_easy_setopt (easy, CURLOPT_WRITEDATA, reply);
    long status = 0;
    if (curl_easy_perform (easy) == CURLE_OK)
        curl_easy_getinfo (easy, CURLINFO_RESPONSE_CODE, &status);
    if (retry_after)
        curl_easy_getinfo (easy, CURLINFO_RETRY_AFTER, retry_after);
    curl_slist_free_all (headers);
    curl_easy_cleanup (easy);
    return status;
}

typedef struct {
    const char *url;                //  where to post
    long status;                    //  result
} s_poster_t;

static void *
s_poster (void *arg)
{
    s_poster_t *poster = (s_poster_t *) arg;
    char reply [64];
    poster->status = s_post (poster->url, "held", 10000, NULL, reply);
    return NULL;
}

void
gt_http_server_test (bool verbose)
{
    (void) verbose;
    printf (" * gt_http_server: ");
    //  Global init is reference counted; never cleaned up here because
    //  other selftests in the same process may still use libcurl
    curl_global_init (CURL_GLOBAL_DEFAULT);
    gt_http_server_t *server = gt_http_server_new ();
    assert (server);
    assert (gt_http_server_port (server) > 0);
    char *url = gt_http_server_url (server, "/a");
    char reply [64];

    //  Default answer, and the record of the request
    assert (s_post (url, "hello", 5000, NULL, reply) == 200);
    assert (gt_http_server_wait (server, 1, 5000));
    const gt_http_request_t *request = gt_http_server_request (server, 0);
    assert (request);
    assert (strcmp (request->method, "POST") == 0);
    assert (strcmp (request->path, "/a") == 0);
    assert (request->body_size == 5 && strcmp (request->body, "hello") == 0);
    assert (strcmp (gt_http_request_header (request, "x-test"), "yes") == 0);
    assert (gt_http_request_header (request, "X-Absent") == NULL);
    assert (request->status == 200);

    //  Scripts are per path, FIFO, then the default
    gt_http_response_t busy = { .status = 503, .retry_after = "7", .body = "busy" };
    gt_http_response_t gone = { .status = 410 };
    gt_http_server_push (server, "/a", &busy);
    gt_http_server_push (server, "/a", &gone);
    curl_off_t retry_after = 0;
    char *other = gt_http_server_url (server, "/b");
    assert (s_post (other, "", 5000, NULL, reply) == 200);
    assert (s_post (url, "", 5000, &retry_after, reply) == 503);
    assert (retry_after == 7 && strcmp (reply, "busy") == 0);
    assert (s_post (url, "", 5000, NULL, reply) == 410);
    gt_http_response_t teapot = { .status = 418 };
    gt_http_server_set_default (server, &teapot);
    assert (s_post (url, "", 5000, NULL, reply) == 418);
    assert (gt_http_server_count (server) == 5);
    assert (gt_http_server_request (server, 4)->status == 418);
    assert (gt_http_server_request (server, 5) == NULL);

    //  A delayed answer outlasts a short client timeout
    gt_http_response_t slow = { .status = 200, .delay_ms = 2000 };
    gt_http_server_push (server, "/a", &slow);
    assert (s_post (url, "", 100, NULL, reply) == 0);

    //  Held answers stay in flight until the gate opens
    gt_http_response_t held = { .status = 202, .hold = true };
    gt_http_server_push (server, "/a", &held);
    gt_http_server_push (server, "/a", &held);
    s_poster_t posters [2] = { { .url = url }, { .url = url } };
    pthread_t threads [2];
    for (int i = 0; i < 2; i++)
        pthread_create (&threads [i], NULL, s_poster, &posters [i]);
    assert (gt_http_server_wait_in_flight (server, 2, 5000));
    assert (gt_http_server_max_in_flight (server) >= 2);
    gt_http_server_gate (server, true);
    for (int i = 0; i < 2; i++) {
        pthread_join (threads [i], NULL);
        assert (posters [i].status == 202);
    }
    assert (!gt_http_server_wait (server, 1000, 50));      //  times out, says so

    free (other);
    free (url);
    gt_http_server_destroy (&server);
    assert (server == NULL);
    printf ("OK\n");
}

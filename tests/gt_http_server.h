/*  gt_http_server.h — a real HTTP/1.1 server for tests (libmicrohttpd).

    Binds 127.0.0.1 on an ephemeral port, one thread per connection.  Every
    request is answered from a script: a FIFO of responses per path (exact
    match, query excluded), else the default response (200, empty body).
    Every request is recorded (method, path, headers, body, arrival time),
    and tests wait for records with a deadline (condition variable).

    Fault injection (server side only, never as synchronisation in tests):
    a response may be delayed by delay_ms (to provoke client timeouts), or
    held until the test opens the gate (gt_http_server_gate), which lets a
    test keep requests in flight for as long as it needs.  Held and delayed
    requests end early when the server is destroyed.

    Thread-safety: all calls may be made from any thread.  A record returned
    by gt_http_server_request is immutable and lives until destroy.  */
#ifndef GT_HTTP_SERVER_H_INCLUDED
#define GT_HTTP_SERVER_H_INCLUDED

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct _gt_http_server_t gt_http_server_t;

//  One scripted answer.  Strings are copied.
typedef struct {
    int status;                     //  HTTP status (0 means 200)
    uint32_t delay_ms;              //  wait this long before answering
    bool hold;                      //  wait for the gate to open before answering
    const char *retry_after;        //  Retry-After header value, or NULL
    const char *body;               //  response body, or NULL for empty
} gt_http_response_t;

//  One received request.
typedef struct {
    char *method;                   //  "POST", ...
    char *path;                     //  path without query
    size_t header_count;            //  number of headers
    char **header_names;            //  as received
    char **header_values;           //  as received
    char *body;                     //  NUL-terminated copy of the body
    size_t body_size;               //  body bytes (without the NUL)
    int64_t received_ms;            //  CLOCK_MONOTONIC ms when its headers arrived
    int status;                     //  status the script chose for it
} gt_http_request_t;

//  Start a server on 127.0.0.1:0.  NULL on failure.
gt_http_server_t *
    gt_http_server_new (void);

//  Stop (releasing held and delayed requests) and free; nulls the pointer.
void
    gt_http_server_destroy (gt_http_server_t **self_p);

//  The bound port.
int
    gt_http_server_port (gt_http_server_t *self);

//  "http://127.0.0.1:<port><path>"; caller frees.
char *
    gt_http_server_url (gt_http_server_t *self, const char *path);

//  Append a scripted response for path.
void
    gt_http_server_push (gt_http_server_t *self, const char *path,
                         const gt_http_response_t *response);

//  Set the response used when a path has no script left.
void
    gt_http_server_set_default (gt_http_server_t *self,
                                const gt_http_response_t *response);

//  Open (true) or close (false) the gate that held responses wait for.
//  The gate starts closed.
void
    gt_http_server_gate (gt_http_server_t *self, bool open);

//  Keep records (default true).  Off, requests are only counted (benches).
void
    gt_http_server_set_recording (gt_http_server_t *self, bool recording);

//  Requests received so far (recorded or not), completed bodies only.
size_t
    gt_http_server_count (gt_http_server_t *self);

//  Record number index (0-based, arrival order), or NULL if none yet.
const gt_http_request_t *
    gt_http_server_request (gt_http_server_t *self, size_t index);

//  Wait until at least count requests have been received; false when
//  timeout_ms passes first.
bool
    gt_http_server_wait (gt_http_server_t *self, size_t count, int timeout_ms);

//  Requests received and not yet answered (held, delayed or being decided),
//  and the most seen at once.  Never more than the client has in flight.
size_t
    gt_http_server_in_flight (gt_http_server_t *self);
size_t
    gt_http_server_max_in_flight (gt_http_server_t *self);

//  Wait until at least count requests are in flight at once; false on timeout.
bool
    gt_http_server_wait_in_flight (gt_http_server_t *self, size_t count, int timeout_ms);

//  Value of header name (case-insensitive) in a record, or NULL.
const char *
    gt_http_request_header (const gt_http_request_t *request, const char *name);

void
    gt_http_server_test (bool verbose);

#ifdef __cplusplus
}
#endif
#endif

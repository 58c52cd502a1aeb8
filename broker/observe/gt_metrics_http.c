/*  gt_metrics_http.c — /metrics, /healthz, /readyz over libmicrohttpd
    (see gt_metrics_http.h).  */
#include <czmq.h>
#include <jansson.h>
#include <microhttpd.h>
#include <netdb.h>
#include <poll.h>
#include "gt_metrics_http.h"
#include "gt_log.h"

struct gt_metrics_http_t {
    gt_metrics_t *metrics;          //  where snapshots come from
    struct MHD_Daemon *daemon;      //  the server and its threads
    int port;                       //  the port it listens on
};

//  --------------------------------------------------------------------------
//  Answers

static enum MHD_Result
s_respond (struct MHD_Connection *connection, unsigned int status, const char *content_type,
           char *body, size_t size)
{
    //  body is malloc'd; the response owns it
    struct MHD_Response *response = MHD_create_response_from_buffer (size, body, MHD_RESPMEM_MUST_FREE);
    if (!response) {
        free (body);
        return MHD_NO;
    }
    MHD_add_response_header (response, MHD_HTTP_HEADER_CONTENT_TYPE, content_type);
    MHD_add_response_header (response, MHD_HTTP_HEADER_CACHE_CONTROL, "no-store");
    if (status == MHD_HTTP_METHOD_NOT_ALLOWED)
        MHD_add_response_header (response, MHD_HTTP_HEADER_ALLOW, "GET, HEAD");
    enum MHD_Result rc = MHD_queue_response (connection, status, response);
    MHD_destroy_response (response);
    return rc;
}

static enum MHD_Result
s_respond_text (struct MHD_Connection *connection, unsigned int status, const char *text)
{
    char *body = strdup (text);
    assert (body);
    return s_respond (connection, status, "text/plain; charset=utf-8", body, strlen (body));
}

static enum MHD_Result
s_respond_json (struct MHD_Connection *connection, unsigned int status, json_t *json)
{
    char *body = json_dumps (json, JSON_COMPACT | JSON_PRESERVE_ORDER);
    json_decref (json);
    assert (body);
    size_t size = strlen (body);
    //  One line, newline-terminated, for curl users
    char *line = (char *) realloc (body, size + 2);
    assert (line);
    line [size++] = '\n';
    line [size] = 0;
    return s_respond (connection, status, "application/json", line, size);
}

static enum MHD_Result
s_metrics (gt_metrics_http_t *self, struct MHD_Connection *connection)
{
    gt_metrics_snapshot_t *snapshot = (gt_metrics_snapshot_t *) malloc (sizeof (gt_metrics_snapshot_t));
    assert (snapshot);
    gt_metrics_read (self->metrics, snapshot, GT_METRICS_WAIT_MS);
    enum MHD_Result rc;
    if (snapshot->generation == 0)
        rc = s_respond_text (connection, MHD_HTTP_SERVICE_UNAVAILABLE, "no metrics yet: the broker has not answered\n");
    else {
        size_t size = 0;
        char *text = gt_metrics_render (snapshot, &size);
        rc = s_respond (connection, MHD_HTTP_OK, GT_METRICS_CONTENT_TYPE, text, size);
    }
    free (snapshot);
    return rc;
}

static enum MHD_Result
s_readyz (gt_metrics_http_t *self, struct MHD_Connection *connection)
{
    gt_metrics_snapshot_t *snapshot = (gt_metrics_snapshot_t *) malloc (sizeof (gt_metrics_snapshot_t));
    assert (snapshot);
    bool fresh = gt_metrics_read (self->metrics, snapshot, GT_METRICS_WAIT_MS);
    json_t *reasons = json_array ();
    if (!fresh) {
        char reason [96];
        snprintf (reason, sizeof (reason), "the broker did not answer within %d ms", GT_METRICS_WAIT_MS);
        json_array_append_new (reasons, json_string (reason));
    }
    if (snapshot->generation) {
        if (!snapshot->store_open)
            json_array_append_new (reasons, json_string ("the store could not be opened"));
        else
        if (!snapshot->store_up)
            json_array_append_new (reasons, json_string ("the store is degraded: changes cannot be made durable"));
        if (!snapshot->requests_bound)
            json_array_append_new (reasons, json_string ("the requests socket is not bound"));
        if (!snapshot->events_bound)
            json_array_append_new (reasons, json_string ("the events socket is not bound"));
    }
    json_t *json;
    unsigned int status;
    if (json_array_size (reasons) == 0) {
        json = json_pack ("{s:b, s:s, s:s}", "ready", 1, "store", snapshot->store_name,
                          "store_status", "OK");
        json_decref (reasons);
        status = MHD_HTTP_OK;
    }
    else {
        json = json_pack ("{s:b, s:o}", "ready", 0, "reasons", reasons);
        status = MHD_HTTP_SERVICE_UNAVAILABLE;
    }
    assert (json);
    free (snapshot);
    return s_respond_json (connection, status, json);
}

static enum MHD_Result
s_handle (void *cls, struct MHD_Connection *connection, const char *url, const char *method,
          const char *version, const char *upload_data, size_t *upload_data_size, void **con_cls)
{
    (void) version;
    (void) upload_data;
    (void) con_cls;
    gt_metrics_http_t *self = (gt_metrics_http_t *) cls;
    if (*upload_data_size) {
        *upload_data_size = 0;      //  a body we do not want: swallow it
        return MHD_YES;
    }
    if (strcmp (method, MHD_HTTP_METHOD_GET) && strcmp (method, MHD_HTTP_METHOD_HEAD))
        return s_respond_text (connection, MHD_HTTP_METHOD_NOT_ALLOWED, "only GET and HEAD\n");
    if (streq (url, "/metrics"))
        return s_metrics (self, connection);
    if (streq (url, "/healthz"))
        return s_respond_json (connection, MHD_HTTP_OK, json_pack ("{s:s}", "status", "ok"));
    if (streq (url, "/readyz"))
        return s_readyz (self, connection);
    return s_respond_text (connection, MHD_HTTP_NOT_FOUND,
                           "not found: try /metrics, /healthz or /readyz\n");
}

//  --------------------------------------------------------------------------
//  Server

bool
gt_metrics_http_parse_endpoint (const char *endpoint, char *host, size_t size, int *port_p)
{
    if (!endpoint || strncmp (endpoint, "http://", 7) != 0)
        return false;
    const char *start = endpoint + 7;
    const char *host_end, *colon;
    if (*start == '[') {
        host_end = strchr (start, ']');
        if (!host_end || host_end [1] != ':')
            return false;
        colon = host_end + 1;
        start++;
    }
    else {
        colon = strrchr (start, ':');
        if (!colon)
            return false;
        host_end = colon;
    }
    size_t length = (size_t) (host_end - start);
    if (length == 0 || length >= size)
        return false;
    const char *port_text = colon + 1;
    int port = 0;
    if (streq (port_text, "*"))
        port = 0;
    else {
        if (!*port_text || strlen (port_text) > 5)
            return false;
        for (const char *p = port_text; *p; p++)
            if (*p < '0' || *p > '9')
                return false;
        port = atoi (port_text);
        if (port > 65535)
            return false;
    }
    memcpy (host, start, length);
    host [length] = 0;
    *port_p = port;
    return true;
}

//  A listening TCP socket on host:port (SO_REUSEADDR, the first address
//  that binds); -1 with the reason alone in why, and *resolved false when
//  the host did not resolve.
static int
s_listen_socket (const char *host, int port, int backlog, int *family_p, bool *resolved,
                 char *why, size_t why_size)
{
    struct addrinfo hints;
    memset (&hints, 0, sizeof (hints));
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV;
    char service [16];
    snprintf (service, sizeof (service), "%d", port);
    struct addrinfo *addresses = NULL;
    int rc = getaddrinfo (host, service, &hints, &addresses);
    *resolved = rc == 0;
    if (rc != 0) {
        snprintf (why, why_size, "%s", gai_strerror (rc));
        return -1;
    }
    int fd = -1;
    int error = 0;
    for (struct addrinfo *address = addresses; address && fd == -1; address = address->ai_next) {
        fd = socket (address->ai_family, address->ai_socktype | SOCK_CLOEXEC, address->ai_protocol);
        if (fd == -1) {
            error = errno;
            continue;
        }
        int on = 1;
        setsockopt (fd, SOL_SOCKET, SO_REUSEADDR, &on, sizeof (on));
        if (bind (fd, address->ai_addr, address->ai_addrlen) == -1 || listen (fd, backlog) == -1) {
            error = errno;
            close (fd);
            fd = -1;
            continue;
        }
        *family_p = address->ai_family;
    }
    freeaddrinfo (addresses);
    if (fd == -1)
        snprintf (why, why_size, "%s", strerror (error));
    return fd;
}

//  A listening TCP socket on host:port; -1 with a message.
static int
s_listen (const char *host, int port, int *family_p, char *err, size_t err_size)
{
    char why [256];
    bool resolved;
    int fd = s_listen_socket (host, port, 64, family_p, &resolved, why, sizeof (why));
    if (fd == -1 && !resolved)
        snprintf (err, err_size, "metrics host '%s': %s", host, why);
    else
    if (fd == -1)
        snprintf (err, err_size, "cannot listen on %s:%d for metrics: %s", host, port, why);
    return fd;
}

bool
gt_metrics_http_port_free (const char *host, int port, char *why, size_t why_size)
{
    assert (host);
    int family;
    bool resolved;
    int fd = s_listen_socket (host, port, 1, &family, &resolved, why, why_size);
    if (fd == -1)
        return false;
    close (fd);
    return true;
}

gt_metrics_http_t *
gt_metrics_http_new (gt_metrics_t *metrics, const char *host, int port, char *err, size_t err_size)
{
    assert (metrics && host);
    if (gt_metrics_readers_open (metrics, err, err_size) != 0)
        return NULL;
    int family = AF_INET;
    int fd = s_listen (host, port, &family, err, err_size);
    if (fd == -1)
        return NULL;
    struct sockaddr_storage bound;
    socklen_t bound_size = sizeof (bound);
    getsockname (fd, (struct sockaddr *) &bound, &bound_size);
    int bound_port = family == AF_INET6
                   ? ntohs (((struct sockaddr_in6 *) &bound)->sin6_port)
                   : ntohs (((struct sockaddr_in *) &bound)->sin_port);

    gt_metrics_http_t *self = (gt_metrics_http_t *) zmalloc (sizeof (gt_metrics_http_t));
    assert (self);
    self->metrics = metrics;
    self->port = bound_port;
    unsigned int flags = MHD_USE_AUTO | MHD_USE_INTERNAL_POLLING_THREAD;
    if (family == AF_INET6)
        flags |= MHD_USE_IPv6;
    self->daemon = MHD_start_daemon (flags, 0, NULL, NULL, s_handle, self,
        MHD_OPTION_LISTEN_SOCKET, fd,
        MHD_OPTION_THREAD_POOL_SIZE, (unsigned int) GT_METRICS_HTTP_THREADS,
        MHD_OPTION_CONNECTION_LIMIT, (unsigned int) 64,
        MHD_OPTION_CONNECTION_TIMEOUT, (unsigned int) 30,
        MHD_OPTION_END);
    if (!self->daemon) {
        snprintf (err, err_size, "cannot start the metrics HTTP server on %s:%d", host, bound_port);
        close (fd);
        free (self);
        return NULL;
    }
    return self;
}

int
gt_metrics_http_port (gt_metrics_http_t *self)
{
    assert (self);
    return self->port;
}

void
gt_metrics_http_destroy (gt_metrics_http_t **self_p)
{
    assert (self_p);
    gt_metrics_http_t *self = *self_p;
    if (self) {
        gt_metrics_stop (self->metrics);    //  a scrape waiting for the broker returns now
        MHD_stop_daemon (self->daemon);     //  joins its threads, closes the socket
        free (self);
        *self_p = NULL;
    }
}


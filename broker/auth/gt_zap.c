/*  gt_zap.c — ZAP handler and handshake watch; the contract is in gt_zap.h.  */
#include <czmq.h>
#include "gt_log.h"
#include "gt_zap.h"

#define S_ZAP_ENDPOINT      "inproc://zeromq.zap.01"
#define S_LOG_INTERVAL_MS   1000

//  Log lines of one kind, at most one per S_LOG_INTERVAL_MS.
typedef struct {
    int64_t last;                   //  zclock_mono of the last line, 0 = none yet
    uint64_t quiet;                 //  refusals not logged since
} s_limit_t;

//  A watched socket: its monitor's events arrive on a PAIR.
typedef struct {
    zsock_t *events;                //  PAIR connected to the monitor
    void *watched;                  //  the libzmq socket (to stop its monitor)
    char name [16];                 //  "requests", "events"
} s_watch_t;

struct _gt_zap_t {
    zsock_t *handler;               //  REP bound at inproc://zeromq.zap.01
    gt_principals_t *principals;    //  who is trusted (borrowed)
    s_watch_t watches [GT_ZAP_MAX_SOCKS - 1];   //  handshake watches
    size_t watch_count;             //  in use
    uint64_t accepted;              //  handshakes that succeeded
    uint64_t failed;                //  handshakes that failed, every kind
    uint64_t refused;               //  keys the handler refused
    s_limit_t refused_log;          //  lines about refused keys
    s_limit_t failed_log;           //  lines about other failed handshakes
};

gt_zap_t *
gt_zap_new (gt_principals_t *principals, char *err, size_t err_size)
{
    assert (principals);
    zsock_t *handler = zsock_new (ZMQ_REP);
    assert (handler);
    zsock_set_linger (handler, 0);
    if (zmq_bind (zsock_resolve (handler), S_ZAP_ENDPOINT) == -1) {
        snprintf (err, err_size, "cannot bind the ZAP handler (%s): %s; ZeroMQ allows one per "
                  "process, so a process runs at most one CURVE broker", S_ZAP_ENDPOINT,
                  zmq_strerror (zmq_errno ()));
        zsock_destroy (&handler);
        return NULL;
    }
    gt_zap_t *self = (gt_zap_t *) zmalloc (sizeof (gt_zap_t));
    assert (self);
    self->handler = handler;
    self->principals = principals;
    return self;
}

void
gt_zap_destroy (gt_zap_t **self_p)
{
    assert (self_p);
    gt_zap_t *self = *self_p;
    if (self) {
        //  The watched sockets are closed by now, which ended their monitors
        for (size_t index = 0; index < self->watch_count; index++)
            zsock_destroy (&self->watches [index].events);
        zsock_destroy (&self->handler);
        free (self);
        *self_p = NULL;
    }
}

int
gt_zap_watch (gt_zap_t *self, zsock_t *sock, const char *name)
{
    assert (self && sock && name);
    if (self->watch_count == GT_ZAP_MAX_SOCKS - 1)
        return -1;
    s_watch_t *watch = &self->watches [self->watch_count];
    char endpoint [64];
    snprintf (endpoint, sizeof (endpoint), "inproc://gt-zap-watch-%p-%zu", (void *) self, self->watch_count);
    int events = ZMQ_EVENT_HANDSHAKE_SUCCEEDED | ZMQ_EVENT_HANDSHAKE_FAILED_NO_DETAIL
               | ZMQ_EVENT_HANDSHAKE_FAILED_PROTOCOL | ZMQ_EVENT_HANDSHAKE_FAILED_AUTH;
    if (zmq_socket_monitor (zsock_resolve (sock), endpoint, events) == -1)
        return -1;
    watch->events = zsock_new (ZMQ_PAIR);
    assert (watch->events);
    if (zsock_connect (watch->events, "%s", endpoint) == -1) {
        zmq_socket_monitor (zsock_resolve (sock), NULL, 0);
        zsock_destroy (&watch->events);
        return -1;
    }
    watch->watched = zsock_resolve (sock);
    snprintf (watch->name, sizeof (watch->name), "%s", name);
    self->watch_count++;
    return 0;
}

size_t
gt_zap_socks (gt_zap_t *self, zsock_t **socks)
{
    assert (self);
    size_t count = 0;
    socks [count++] = self->handler;
    for (size_t index = 0; index < self->watch_count; index++)
        socks [count++] = self->watches [index].events;
    return count;
}

//  True if a line may be written now; else counts it as quiet
static bool
s_may_log (s_limit_t *limit, uint64_t *quiet_p)
{
    int64_t now = zclock_mono ();
    if (limit->last && now - limit->last < S_LOG_INTERVAL_MS) {
        limit->quiet++;
        return false;
    }
    limit->last = now;
    *quiet_p = limit->quiet;
    limit->quiet = 0;
    return true;
}

static bool
s_readable (zsock_t *sock)
{
    return (zsock_events (sock) & ZMQ_POLLIN) != 0;
}

//  One ZAP request: 200 with User-Id = the Z85 key if trusted, else 400.
static void
s_answer (gt_zap_t *self, zmsg_t *request)
{
    char *version = zmsg_popstr (request);
    char *request_id = zmsg_popstr (request);
    char *domain = zmsg_popstr (request);
    char *address = zmsg_popstr (request);
    char *identity = zmsg_popstr (request);
    char *mechanism = zmsg_popstr (request);
    zframe_t *key = zmsg_pop (request);
    char public_key [41] = "";
    const char *status = "400", *text = "not trusted";
    if (!version || !streq (version, "1.0"))
        text = "unsupported ZAP version";
    else
    if (!domain || !streq (domain, GT_ZAP_DOMAIN))
        text = "unknown ZAP domain";
    else
    if (!mechanism || !streq (mechanism, "CURVE"))
        text = "CURVE required";
    else
    if (!key || zframe_size (key) != 32 || !zmq_z85_encode (public_key, zframe_data (key), 32))
        text = "malformed CURVE credentials";
    else
    if (!gt_principals_lookup (self->principals, public_key))
        text = "unknown key";
    else {
        status = "200";
        text = "OK";
    }
    if (streq (status, "400")) {
        self->refused++;
        uint64_t quiet;
        if (s_may_log (&self->refused_log, &quiet))
            gt_log_warn ("auth", "refused a CURVE handshake from %s: %s%s%s (%" PRIu64 " refused in all, "
                         "%" PRIu64 " not logged since the last line)", address ? address : "?", text,
                         *public_key ? " " : "", public_key, self->refused, quiet);
    }
    zmsg_t *reply = zmsg_new ();
    zmsg_addstr (reply, "1.0");
    zmsg_addstr (reply, request_id ? request_id : "");
    zmsg_addstr (reply, status);
    zmsg_addstr (reply, text);
    zmsg_addstr (reply, streq (status, "200") ? public_key : "");
    zmsg_addmem (reply, NULL, 0);           //  no metadata: the broker looks the key up itself
    zmsg_send (&reply, self->handler);
    zframe_destroy (&key);
    zstr_free (&version);
    zstr_free (&request_id);
    zstr_free (&domain);
    zstr_free (&address);
    zstr_free (&identity);
    zstr_free (&mechanism);
}

//  One monitor event of a watched socket
static void
s_event (gt_zap_t *self, s_watch_t *watch, zmsg_t *msg)
{
    zframe_t *head = zmsg_first (msg);
    zframe_t *where = zmsg_next (msg);
    if (!head || zframe_size (head) != 6)
        return;
    uint16_t event;
    uint32_t value;
    memcpy (&event, zframe_data (head), sizeof (event));
    memcpy (&value, zframe_data (head) + 2, sizeof (value));
    if (event == ZMQ_EVENT_HANDSHAKE_SUCCEEDED) {
        self->accepted++;
        return;
    }
    self->failed++;
    if (event == ZMQ_EVENT_HANDSHAKE_FAILED_AUTH)
        return;                     //  the handler logged it, with the key
    char *address = where ? zframe_strdup (where) : NULL;
    uint64_t quiet;
    if (s_may_log (&self->failed_log, &quiet)) {
        const char *why = event == ZMQ_EVENT_HANDSHAKE_FAILED_PROTOCOL
                        ? (value == ZMQ_PROTOCOL_ERROR_ZMTP_MECHANISM_MISMATCH
                           ? "the client does not use CURVE" : "protocol error")
                        : "the connection ended during the handshake";
        gt_log_warn ("auth", "a handshake on the %s socket (%s) failed: %s (code %u; %" PRIu64 " failed "
                     "in all, %" PRIu64 " not logged since the last line)", watch->name,
                     address ? address : "?", why, value, self->failed, quiet);
    }
    zstr_free (&address);
}

void
gt_zap_handle (gt_zap_t *self)
{
    assert (self);
    while (s_readable (self->handler)) {
        zmsg_t *request = zmsg_recv (self->handler);
        if (!request)
            break;
        s_answer (self, request);
        zmsg_destroy (&request);
    }
    for (size_t index = 0; index < self->watch_count; index++) {
        s_watch_t *watch = &self->watches [index];
        while (s_readable (watch->events)) {
            zmsg_t *msg = zmsg_recv (watch->events);
            if (!msg)
                break;
            s_event (self, watch, msg);
            zmsg_destroy (&msg);
        }
    }
}

uint64_t
gt_zap_accepted (gt_zap_t *self)
{
    assert (self);
    return self->accepted;
}

uint64_t
gt_zap_failed (gt_zap_t *self)
{
    assert (self);
    return self->failed;
}

uint64_t
gt_zap_refused (gt_zap_t *self)
{
    assert (self);
    return self->refused;
}

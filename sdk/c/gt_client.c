/*  gt_client.c — GTLP/1 client: one DEALER per broker endpoint.

    Requests are encoded with the shared codec (gt_msg_encode_alloc) and
    sent as one frame; replies are the last frame of what arrives.

    With one endpoint (and routing off, the default then) a blocking call
    is a pipelined send plus a receive loop that waits for the matching rid
    until the deadline, exactly as before clusters existed.

    Routed (several endpoints, or gt_client_set_routed): the client follows
    docs/CLUSTER.md, "Client routing".  It keeps a MAP (GTLP.md §14.2),
    sends each request to the owner of its shard over that broker's own
    DEALER (ZMQ_IMMEDIATE: a request never waits in a queue for a broker
    that is not connected), and makes attempts of at most S_ATTEMPT_MS each
    until the call's timeout: MOVED goes to the owner at once, TRY_AGAIN,
    UNAVAILABLE, a send that cannot go out and an attempt without a reply
    wait (backoff), refresh the map and send again when that is safe.  A
    reply to any attempt of the call is its answer, whichever broker sends
    it and however late.  */
#include "gt_client.h"
#include "gt_client_keys.h"
#include <sys/random.h>

//  Socket high-water marks: deep enough for thousands of pipelined requests.
#define GT_CLIENT_HWM   100000

#define S_ATTEMPT_MS        1000    //  an attempt's wait, routed with several endpoints
#define S_BACKOFF_MS        100     //  first wait before sending again
#define S_BACKOFF_MAX_MS    1000    //  the wait doubles up to this
#define S_MAX_REDIRECTS     5       //  MOVED followed per call
#define S_MAX_ATTEMPTS      256     //  attempts (rids) of one call

//  One broker endpoint and its DEALER.
typedef struct {
    char *endpoint;                 //  where the dealer connects
    zsock_t *dealer;                //  NULL until first used
    bool connected;                 //  connected (at the first use, after any CURVE settings)
} s_peer_t;

struct _gt_client_t {
    s_peer_t *peers;                //  the endpoints: those given, then those learned
    size_t peer_count;              //  how many
    size_t peer_max;                //  allocated
    size_t configured;              //  the first ones, given to gt_client_new
    bool routed;                    //  MAP, routing by shard, retries (docs/CLUSTER.md)
    size_t current;                 //  the peer that answered last (else the first)
    gt_msg_t *map;                  //  the MAP routed calls follow, or NULL
    bool map_stale;                 //  refresh it before the next routed call
    bool map_unsupported;           //  a broker answered MAP with UNSUPPORTED_COMMAND
    gt_client_keys_t *keys;         //  CURVE settings of every dealer, or NULL
    char *service_id;               //  the service we act as, or NULL (CURVE: the key's)
    int timeout;                    //  blocking call timeout, ms
    uint64_t next_rid;              //  next request id (never 0)
    char *error;                    //  text of the last failure, "" if none
    bool timed_out;                 //  last call failed by timeout
    int error_shard;                //  MOVED / TRY_AGAIN: the shard, else -1
    char *error_owner;              //  MOVED: the owner's endpoint, or NULL
    uint64_t error_map_version;     //  MOVED: the map version, else 0
    uint64_t error_retry_ms;        //  TRY_AGAIN: the retry hint, else 0
    gt_code_t send_code;            //  why the last gt_client_send failed
    uint64_t discarded;             //  stale or undecodable replies dropped
};

//  Set the error text (printf style) and return code, for one-line returns.
static gt_code_t
s_fail (gt_client_t *self, gt_code_t code, const char *format, ...)
{
    va_list args;
    va_start (args, format);
    char *text = zsys_vprintf (format, args);
    va_end (args);
    free (self->error);
    self->error = text? text: strdup ("out of memory");
    return code;
}

static void
s_clear_error (gt_client_t *self)
{
    if (self->error [0]) {
        free (self->error);
        self->error = strdup ("");
    }
    self->timed_out = false;
    self->error_shard = -1;
    free (self->error_owner);
    self->error_owner = NULL;
    self->error_map_version = 0;
    self->error_retry_ms = 0;
}

//  An error reply becomes the call's error: its message and, for MOVED
//  and TRY_AGAIN, where to go or how long to wait.  Returns its code.
static gt_code_t
s_take_error (gt_client_t *self, const gt_msg_t *reply)
{
    s_clear_error (self);
    gt_code_t code = reply->code;
    s_fail (self, code, "%s", reply->message? reply->message: gt_code_name (code));
    if (reply->has_shard)
        self->error_shard = (int) reply->shard;
    if (reply->owner) {
        self->error_owner = strdup (reply->owner);
        assert (self->error_owner);
    }
    if (reply->has_map_version)
        self->error_map_version = reply->map_version;
    if (reply->has_retry_ms)
        self->error_retry_ms = reply->retry_ms;
    return code;
}

//  transport://address, the transports a client connects with
static bool
s_endpoint_valid (const char *endpoint)
{
    const char *prefixes [] = { "tcp://", "ipc://", "inproc://", "ws://", "wss://", "tipc://", "vmci://" };
    for (size_t index = 0; index < sizeof (prefixes) / sizeof (prefixes [0]); index++) {
        size_t length = strlen (prefixes [index]);
        if (strncmp (endpoint, prefixes [index], length) == 0 && endpoint [length] != '\0')
            return true;
    }
    return false;
}

//  The peer of endpoint, added if it is new; its index.
static size_t
s_peer_for (gt_client_t *self, const char *endpoint)
{
    for (size_t index = 0; index < self->peer_count; index++)
        if (streq (self->peers [index].endpoint, endpoint))
            return index;
    if (self->peer_count == self->peer_max) {
        size_t max = self->peer_max? self->peer_max * 2: 4;
        s_peer_t *peers = (s_peer_t *) realloc (self->peers, max * sizeof (s_peer_t));
        assert (peers);
        self->peers = peers;
        self->peer_max = max;
    }
    s_peer_t *peer = &self->peers [self->peer_count];
    memset (peer, 0, sizeof (*peer));
    peer->endpoint = strdup (endpoint);
    assert (peer->endpoint);
    return self->peer_count++;
}

//  The peer's dealer, made with the client's settings if it is not yet.
static zsock_t *
s_dealer (gt_client_t *self, size_t index)
{
    s_peer_t *peer = &self->peers [index];
    if (!peer->dealer) {
        peer->dealer = zsock_new (ZMQ_DEALER);
        assert (peer->dealer);
        zsock_set_maxmsgsize (peer->dealer, -1);
        zsock_set_sndhwm (peer->dealer, GT_CLIENT_HWM);
        zsock_set_rcvhwm (peer->dealer, GT_CLIENT_HWM);
        zsock_set_linger (peer->dealer, 0);
        zsock_set_sndtimeo (peer->dealer, self->timeout);
        zsock_set_immediate (peer->dealer, self->routed);
        if (self->keys)
            gt_client_keys_apply (self->keys, peer->dealer);
    }
    return peer->dealer;
}

//  Connect the peer's dealer if it is not yet; false if libzmq refuses
//  the endpoint
static bool
s_connect (gt_client_t *self, size_t index)
{
    zsock_t *dealer = s_dealer (self, index);
    s_peer_t *peer = &self->peers [index];
    if (!peer->connected)
        peer->connected = zsock_connect (dealer, "%s", peer->endpoint) == 0;
    return peer->connected;
}

//  Split "a,b,c" into the client's first peers; false if one is not an
//  endpoint (blanks around the commas are ignored, repeats dropped).
static bool
s_parse_endpoints (gt_client_t *self, const char *list)
{
    char *copy = strdup (list);
    assert (copy);
    bool valid = true;
    char *saveptr = NULL;
    for (char *item = strtok_r (copy, ",", &saveptr); item && valid;
         item = strtok_r (NULL, ",", &saveptr)) {
        while (isspace ((unsigned char) *item))
            item++;
        char *end = item + strlen (item);
        while (end > item && isspace ((unsigned char) end [-1]))
            *--end = '\0';
        valid = s_endpoint_valid (item);
        if (valid)
            s_peer_for (self, item);
    }
    free (copy);
    return valid && self->peer_count > 0;
}

static void
s_destroy_peers (gt_client_t *self)
{
    for (size_t index = 0; index < self->peer_count; index++) {
        zsock_destroy (&self->peers [index].dealer);
        free (self->peers [index].endpoint);
    }
    free (self->peers);
    self->peers = NULL;
    self->peer_count = self->peer_max = 0;
}

gt_client_t *
gt_client_new (const char *endpoint, const char *service_id)
{
    if (!endpoint
    ||  (service_id && (strlen (service_id) == 0 || strlen (service_id) > GT_MAX_SERVICE_ID)))
        return NULL;

    gt_client_t *self = (gt_client_t *) zmalloc (sizeof (gt_client_t));
    assert (self);
    self->timeout = GT_CLIENT_DEFAULT_TIMEOUT_MS;
    //  The connections are made at the first use, so that CURVE settings
    //  (gt_client_set_curve) apply to the first handshake; the endpoints'
    //  form is checked now
    if (!s_parse_endpoints (self, endpoint)) {
        s_destroy_peers (self);
        free (self);
        return NULL;
    }
    self->configured = self->peer_count;
    self->routed = self->peer_count > 1;
    s_dealer (self, 0);
    self->service_id = service_id ? strdup (service_id) : NULL;
    self->next_rid = 1;
    self->error = strdup ("");
    self->error_shard = -1;
    assert ((self->service_id || !service_id) && self->error);
    return self;
}

void
gt_client_destroy (gt_client_t **self_p)
{
    assert (self_p);
    gt_client_t *self = *self_p;
    if (self) {
        s_destroy_peers (self);
        gt_msg_destroy (&self->map);
        gt_client_keys_destroy (&self->keys);
        free (self->service_id);
        free (self->error);
        free (self->error_owner);
        free (self);
        *self_p = NULL;
    }
}

//  Disconnect every dealer: options that count from the next connect
//  (CURVE, ZMQ_IMMEDIATE) then apply.
static void
s_disconnect_all (gt_client_t *self)
{
    for (size_t index = 0; index < self->peer_count; index++) {
        s_peer_t *peer = &self->peers [index];
        if (peer->dealer && peer->connected)
            zsock_disconnect (peer->dealer, "%s", peer->endpoint);
        peer->connected = false;
    }
}

int
gt_client_set_curve (gt_client_t *self, const char *server_key, const char *client_cert)
{
    assert (self);
    char err [512];
    gt_client_keys_t *keys = gt_client_keys_new (server_key, client_cert, err, sizeof (err));
    if (!keys) {
        if (!*err)
            return 0;               //  neither set: plaintext
        s_fail (self, GT_ERR_INVALID_ARGUMENT, "%s", err);
        return -1;
    }
    //  Security options count from the next connect; dealers made later
    //  get them too
    s_disconnect_all (self);
    for (size_t index = 0; index < self->peer_count; index++)
        if (self->peers [index].dealer)
            gt_client_keys_apply (keys, self->peers [index].dealer);
    gt_client_keys_destroy (&self->keys);
    self->keys = keys;
    return 0;
}

void
gt_client_set_timeout (gt_client_t *self, int timeout_ms)
{
    assert (self);
    assert (timeout_ms > 0);
    self->timeout = timeout_ms;
    for (size_t index = 0; index < self->peer_count; index++)
        if (self->peers [index].dealer)
            zsock_set_sndtimeo (self->peers [index].dealer, timeout_ms);
}

int
gt_client_timeout (gt_client_t *self)
{
    assert (self);
    return self->timeout;
}

void
gt_client_set_routed (gt_client_t *self, bool routed)
{
    assert (self);
    if (self->routed == routed)
        return;
    self->routed = routed;
    s_disconnect_all (self);
    for (size_t index = 0; index < self->peer_count; index++)
        if (self->peers [index].dealer)
            zsock_set_immediate (self->peers [index].dealer, routed);
    if (!routed)
        self->current = 0;
}

bool
gt_client_routed (gt_client_t *self)
{
    assert (self);
    return self->routed;
}

size_t
gt_client_endpoint_count (gt_client_t *self)
{
    assert (self);
    return self->peer_count;
}

const char *
gt_client_endpoint (gt_client_t *self)
{
    assert (self);
    return self->peers [self->current].endpoint;
}

const gt_msg_t *
gt_client_cached_map (gt_client_t *self)
{
    assert (self);
    return self->map;
}

const char *
gt_client_service_id (gt_client_t *self)
{
    assert (self);
    return self->service_id;
}

const char *
gt_client_error (gt_client_t *self)
{
    assert (self);
    return self->error;
}

bool
gt_client_timed_out (gt_client_t *self)
{
    assert (self);
    return self->timed_out;
}

int
gt_client_error_shard (gt_client_t *self)
{
    assert (self);
    return self->error_shard;
}

const char *
gt_client_error_owner (gt_client_t *self)
{
    assert (self);
    return self->error_owner;
}

uint64_t
gt_client_error_map_version (gt_client_t *self)
{
    assert (self);
    return self->error_map_version;
}

uint64_t
gt_client_error_retry_ms (gt_client_t *self)
{
    assert (self);
    return self->error_retry_ms;
}

uint64_t
gt_client_discarded (gt_client_t *self)
{
    assert (self);
    return self->discarded;
}

zsock_t *
gt_client_sock (gt_client_t *self)
{
    assert (self);
    s_connect (self, self->current);
    return self->peers [self->current].dealer;
}

//  Commands whose owner is the sending service.
static bool
s_cmd_needs_service (gt_cmd_t cmd)
{
    return cmd == GT_CMD_CREATE || cmd == GT_CMD_RENEW
        || cmd == GT_CMD_RENEW_BATCH || cmd == GT_CMD_RELEASE;
}

//  Give request a fresh rid and encode it into *data_p (the caller frees
//  it).  Returns 0, or -1 with the error set (a required field is missing).
static int
s_encode (gt_client_t *self, gt_msg_t *request, void **data_p, size_t *size_p)
{
    request->version = GT_PROTOCOL_VERSION;
    request->rid = self->next_rid++;
    if (self->next_rid == 0)
        self->next_rid = 1;             //  0 is reserved; wrap past it

    //  Lend our service id for the encoding only; the caller's message
    //  must not end up pointing at our string.
    bool lent = false;
    if (!request->service_id && s_cmd_needs_service (request->cmd)) {
        request->service_id = self->service_id;
        lent = true;
    }
    *data_p = NULL;
    *size_p = 0;
    int rc = gt_msg_encode_alloc (request, data_p, size_p);
    if (lent)
        request->service_id = NULL;
    if (rc != 0) {
        free (*data_p);
        *data_p = NULL;
        self->send_code = s_fail (self, GT_ERR_INVALID_ARGUMENT,
            "%s request cannot be encoded (a required field is missing)",
            gt_cmd_name (request->cmd)? gt_cmd_name (request->cmd): "unknown");
        return -1;
    }
    return 0;
}

uint64_t
gt_client_send (gt_client_t *self, gt_msg_t *request)
{
    assert (self);
    assert (request);
    assert (request->kind == GT_MSG_REQUEST);

    void *data;
    size_t size;
    if (s_encode (self, request, &data, &size))
        return 0;
    size_t peer = self->current;
    if (!s_connect (self, peer)) {
        free (data);
        self->send_code = s_fail (self, GT_ERR_INVALID_ARGUMENT, "cannot connect to '%s': %s",
                                  self->peers [peer].endpoint, zmq_strerror (zmq_errno ()));
        return 0;
    }
    int rc = zmq_send (zsock_resolve (self->peers [peer].dealer), data, size, 0);
    free (data);
    if (rc == -1) {
        self->send_code = s_fail (self, GT_ERR_UNAVAILABLE,
            "could not queue the request within %d ms", self->timeout);
        self->timed_out = true;
        return 0;
    }
    return request->rid;
}

//  Wait up to timeout_ms (-1: forever) until a dealer has input; returns
//  how many, filling ready [] (peer indexes), 0 on timeout, -1 when
//  interrupted.
static int
s_poll_input (gt_client_t *self, int timeout_ms, size_t *ready, size_t ready_max)
{
    if (zsys_interrupted)
        return -1;
    zmq_pollitem_t items [64];
    size_t peers [64];
    size_t count = 0;
    //  Every dealer there is (the first always is; one not connected yet
    //  is simply never readable)
    for (size_t index = 0; index < self->peer_count && count < 64; index++)
        if (self->peers [index].dealer) {
            items [count].socket = zsock_resolve (self->peers [index].dealer);
            items [count].fd = 0;
            items [count].events = ZMQ_POLLIN;
            items [count].revents = 0;
            peers [count++] = index;
        }
    int rc = zmq_poll (items, (int) count, timeout_ms);
    if (rc < 0)
        return -1;                      //  interrupted, or the context is gone
    int found = 0;
    for (size_t index = 0; index < count && (size_t) found < ready_max; index++)
        if (items [index].revents & ZMQ_POLLIN)
            ready [found++] = peers [index];
    return found;
}

//  Read one message from the peer's dealer, if one is waiting, and decode
//  its last frame as a reply; NULL (counted as discarded) if it is not
//  one.  *read_p says whether anything was read at all.
static gt_msg_t *
s_read_reply (gt_client_t *self, size_t peer, bool *read_p)
{
    *read_p = false;
    void *handle = zsock_resolve (self->peers [peer].dealer);
    zmq_msg_t body;
    zmq_msg_init (&body);
    if (zmq_msg_recv (&body, handle, ZMQ_DONTWAIT) == -1) {
        zmq_msg_close (&body);
        return NULL;
    }
    *read_p = true;
    while (zmq_msg_more (&body)) {
        zmq_msg_t next;
        zmq_msg_init (&next);
        if (zmq_msg_recv (&next, handle, 0) == -1) {
            zmq_msg_close (&next);
            break;
        }
        zmq_msg_move (&body, &next);
        zmq_msg_close (&next);
    }
    gt_msg_t *reply = NULL;
    char err [256];
    gt_msg_decode (zmq_msg_data (&body), zmq_msg_size (&body),
                   GT_MSG_REPLY, &reply, NULL, err, sizeof (err));
    zmq_msg_close (&body);
    if (!reply)
        self->discarded++;              //  not a GTLP reply: skip it
    return reply;
}

gt_msg_t *
gt_client_recv (gt_client_t *self, int timeout_ms)
{
    assert (self);
    int64_t deadline = zclock_mono () + timeout_ms;
    while (true) {
        int wait = timeout_ms;
        if (timeout_ms > 0) {
            int64_t remaining = deadline - zclock_mono ();
            wait = remaining > 0? (int) remaining: 0;
        }
        size_t ready [64];
        int count = s_poll_input (self, wait, ready, 64);
        if (count <= 0)
            return NULL;                //  timeout or interrupted
        for (int index = 0; index < count; index++) {
            bool read;
            gt_msg_t *reply = s_read_reply (self, ready [index], &read);
            if (reply)
                return reply;
        }
        if (timeout_ms == 0 || (timeout_ms > 0 && zclock_mono () >= deadline))
            return NULL;
    }
}

//  The fields a successful reply must carry, per command.
static bool
s_reply_complete (gt_cmd_t cmd, const gt_msg_t *reply)
{
    switch (cmd) {
        case GT_CMD_CREATE:
        case GT_CMD_RENEW:
        case GT_CMD_RELEASE:
        case GT_CMD_GET:
            return reply->lease != NULL;
        case GT_CMD_RENEW_BATCH:
            return reply->results_present;
        case GT_CMD_LIST:
            return reply->leases_present;
        case GT_CMD_HEALTH:
            return reply->status != NULL;
        case GT_CMD_STATS:
            return reply->stats_present;
        case GT_CMD_REPLAY:
            return reply->events_present;
        case GT_CMD_MAP:
            return reply->brokers_present;  //  the codec checks map_version and cluster come with it
        default:
            return true;
    }
}

//  The call's answer: GT_OK with the reply in *reply_p, or its error.
static gt_code_t
s_answer (gt_client_t *self, gt_cmd_t cmd, gt_msg_t *reply, gt_msg_t **reply_p)
{
    if (reply->code != GT_OK) {
        gt_code_t code = s_take_error (self, reply);
        gt_msg_destroy (&reply);
        return code;
    }
    if (!s_reply_complete (cmd, reply)) {
        gt_msg_destroy (&reply);
        return s_fail (self, GT_ERR_INTERNAL, "the broker's %s reply lacks its result",
                       gt_cmd_name (cmd));
    }
    *reply_p = reply;
    return GT_OK;
}

//  One endpoint, not routed: send request and wait for its reply, as the
//  client always did.  On GT_OK stores the reply in *reply_p (owned by
//  the caller); on error sets the error text.
static gt_code_t
s_call_single (gt_client_t *self, gt_msg_t *request, gt_msg_t **reply_p)
{
    *reply_p = NULL;
    s_clear_error (self);
    uint64_t rid = gt_client_send (self, request);
    if (rid == 0)
        return self->send_code;

    int64_t deadline = zclock_mono () + self->timeout;
    gt_msg_t *reply = NULL;
    while (!reply) {
        int64_t remaining = deadline - zclock_mono ();
        if (remaining <= 0)
            break;
        reply = gt_client_recv (self, (int) remaining);
        if (!reply) {
            if (zsys_interrupted)
                return s_fail (self, GT_ERR_UNAVAILABLE, "interrupted");
            break;
        }
        //  A reply with rid 0 is the broker's answer to a body it could
        //  not read; only our one outstanding request can have caused it.
        bool ours = reply->rid == rid
                 || (reply->rid == 0 && reply->code != GT_OK);
        if (!ours) {
            self->discarded++;
            gt_msg_destroy (&reply);
        }
    }
    if (!reply) {
        s_fail (self, GT_ERR_UNAVAILABLE,
                "broker did not answer within %d ms", self->timeout);
        self->timed_out = true;
        return GT_ERR_UNAVAILABLE;
    }
    return s_answer (self, request->cmd, reply, reply_p);
}

//  ---------------------------------------------------------------------
//  Routing (docs/CLUSTER.md, "Client routing")

//  Milliseconds from now until deadline, at least 0, at most INT_MAX.
static int
s_until (int64_t deadline)
{
    int64_t left = deadline - zclock_mono ();
    return left <= 0? 0: left > INT_MAX? INT_MAX: (int) left;
}

//  Requests that may be sent again after an attempt without a reply.
static bool
s_safe_to_repeat (const gt_msg_t *request)
{
    switch (request->cmd) {
        case GT_CMD_GET:
        case GT_CMD_LIST:
        case GT_CMD_RENEW:
        case GT_CMD_RENEW_BATCH:
        case GT_CMD_REPLAY:
        case GT_CMD_MAP:
        case GT_CMD_HEALTH:
        case GT_CMD_STATS:
        case GT_CMD_RELEASE:
            return true;
        case GT_CMD_CREATE:
            return request->idempotency_key != NULL;
        default:
            return false;
    }
}

//  The shard a request belongs to, or -1 for none (GTLP.md §14.3).
static int
s_request_shard (const gt_msg_t *request)
{
    switch (request->cmd) {
        case GT_CMD_CREATE:
            return request->object_id? (int) gt_shard_of (request->object_id): -1;
        case GT_CMD_RENEW:
        case GT_CMD_RELEASE:
        case GT_CMD_GET:
        case GT_CMD_RETRY:
            return request->lease_id && gt_lease_id_valid (request->lease_id)
                 ? (int) gt_lease_id_shard (request->lease_id): -1;
        case GT_CMD_RENEW_BATCH:
            return request->lease_id_count && gt_lease_id_valid (request->lease_ids [0])
                 ? (int) gt_lease_id_shard (request->lease_ids [0]): -1;
        case GT_CMD_REPLAY:
            return request->has_shard? (int) request->shard: -1;
        default:
            return -1;
    }
}

//  The peer that owns shard in the map, or -1 when none is known.
static int
s_owner_of (gt_client_t *self, unsigned shard)
{
    if (!self->map)
        return -1;
    const gt_broker_info_t *owner = gt_msg_shard_owner (self->map, shard);
    if (!owner || !owner->endpoint || !s_endpoint_valid (owner->endpoint))
        return -1;
    return (int) s_peer_for (self, owner->endpoint);
}

//  Where a request goes: the owner of its shard (anything else: of shard
//  0); with no owner known, the endpoint that answered last, else the first.
static size_t
s_route (gt_client_t *self, const gt_msg_t *request)
{
    int shard = s_request_shard (request);
    int owner = s_owner_of (self, shard < 0? 0: (unsigned) shard);
    return owner >= 0? (size_t) owner: self->current;
}

//  Wait until the peer can take a message (ZMQ_IMMEDIATE: it is
//  connected) or deadline; true if it can.
static bool
s_wait_writable (gt_client_t *self, size_t peer, int64_t deadline)
{
    if (!s_connect (self, peer))
        return false;
    zmq_pollitem_t item = { zsock_resolve (self->peers [peer].dealer), 0, ZMQ_POLLOUT, 0 };
    while (!zsys_interrupted) {
        int wait = s_until (deadline);
        int rc = zmq_poll (&item, 1, wait);
        if (rc > 0)
            return true;
        if (wait == 0 || (rc < 0 && errno != EINTR))
            return false;
    }
    return false;
}

//  Outcome of sending one attempt.
typedef enum {
    S_SENT,                         //  on its way
    S_NOT_SENT,                     //  could not go out (no connection): retry
    S_REFUSED                       //  cannot be encoded or connected: the call fails
} s_sent_t;

//  Send request to peer, waiting until deadline for a connection.  Sets
//  *rid_p on S_SENT; the error on S_REFUSED.
static s_sent_t
s_send_to (gt_client_t *self, size_t peer, gt_msg_t *request, int64_t deadline, uint64_t *rid_p)
{
    *rid_p = 0;
    if (!s_connect (self, peer)) {
        s_fail (self, GT_ERR_INVALID_ARGUMENT, "cannot connect to '%s': %s",
                self->peers [peer].endpoint, zmq_strerror (zmq_errno ()));
        return S_REFUSED;
    }
    if (!s_wait_writable (self, peer, deadline))
        return S_NOT_SENT;
    void *data;
    size_t size;
    if (s_encode (self, request, &data, &size))
        return S_REFUSED;
    int rc = zmq_send (zsock_resolve (self->peers [peer].dealer), data, size, ZMQ_DONTWAIT);
    free (data);
    if (rc == -1)
        return S_NOT_SENT;
    *rid_p = request->rid;
    return S_SENT;
}

//  Wait until deadline for a reply to one of rids [0 .. count-1] (or an
//  error with rid 0, the answer to a body a broker could not read) from
//  any peer; discards others.  Returns it, or NULL on timeout or interrupt.
static gt_msg_t *
s_await (gt_client_t *self, const uint64_t *rids, size_t count, int64_t deadline)
{
    while (true) {
        size_t ready [64];
        int found = s_poll_input (self, s_until (deadline), ready, 64);
        if (found <= 0)
            return NULL;
        for (int index = 0; index < found; index++) {
            bool read = true;
            while (read) {
                gt_msg_t *reply = s_read_reply (self, ready [index], &read);
                if (!reply)
                    continue;
                bool ours = reply->rid == 0 && reply->code != GT_OK;
                for (size_t attempt = 0; attempt < count && !ours; attempt++)
                    ours = reply->rid == rids [attempt];
                if (ours) {
                    self->current = ready [index];
                    return reply;
                }
                self->discarded++;
                gt_msg_destroy (&reply);
            }
        }
        if (s_until (deadline) == 0)
            return NULL;
    }
}

//  A deep copy of a MAP reply (its map fields only).
static gt_msg_t *
s_map_copy (const gt_msg_t *map)
{
    gt_msg_t *copy = gt_msg_new (GT_MSG_REPLY);
    assert (copy);
    copy->rid = map->rid;
    copy->code = GT_OK;
    copy->has_map_version = map->has_map_version;
    copy->map_version = map->map_version;
    copy->has_cluster = map->has_cluster;
    copy->cluster = map->cluster;
    copy->brokers_present = map->brokers_present;
    if (map->broker_count) {
        copy->brokers = (gt_broker_info_t *) calloc (map->broker_count, sizeof (gt_broker_info_t));
        assert (copy->brokers);
        copy->broker_count = map->broker_count;
        for (size_t index = 0; index < map->broker_count; index++) {
            const gt_broker_info_t *from = &map->brokers [index];
            gt_broker_info_t *to = &copy->brokers [index];
            to->broker_id = strdup (from->broker_id? from->broker_id: "");
            to->endpoint = strdup (from->endpoint? from->endpoint: "");
            to->events_endpoint = strdup (from->events_endpoint? from->events_endpoint: "");
            assert (to->broker_id && to->endpoint && to->events_endpoint);
            memcpy (to->shards, from->shards, sizeof (to->shards));
            to->has_epochs = from->has_epochs;
            memcpy (to->epochs, from->epochs, sizeof (to->epochs));
        }
    }
    return copy;
}

//  A routed call needs a (fresh) map first: none yet (unless the brokers
//  do not know MAP: a broker before GTLP.md §14), or one a MOVED made stale.
static bool
s_map_wanted (gt_client_t *self)
{
    return self->map_stale || (!self->map && !self->map_unsupported);
}

//  Keep map (taken over) as the one to route by; its brokers become peers.
static void
s_set_map (gt_client_t *self, gt_msg_t *map)
{
    gt_msg_destroy (&self->map);
    self->map = map;
    self->map_stale = false;
    for (size_t index = 0; index < map->broker_count; index++) {
        const char *endpoint = map->brokers [index].endpoint;
        if (endpoint && s_endpoint_valid (endpoint))
            s_peer_for (self, endpoint);
    }
}

//  Ask for the MAP, each endpoint in turn (the one that answered last
//  first, then any that can take a request), at most S_ATTEMPT_MS each,
//  until deadline.  GT_OK: the client routes by it (and *reply_p, if
//  given, is a copy); else the error of the last answer, or UNAVAILABLE.
//  Nothing else is touched on failure: the old map stays.
static gt_code_t
s_fetch_map (gt_client_t *self, int64_t deadline, gt_msg_t **reply_p)
{
    if (reply_p)
        *reply_p = NULL;
    size_t count = self->peer_count;
    bool *tried = (bool *) calloc (count, sizeof (bool));
    assert (tried);
    gt_msg_t *answer = NULL;            //  the last error reply
    bool sent_any = false;
    while (true) {
        int64_t now = zclock_mono ();
        if (now >= deadline || zsys_interrupted)
            break;
        int64_t attempt_deadline = now + S_ATTEMPT_MS < deadline? now + S_ATTEMPT_MS: deadline;
        //  The next endpoint: the first untried one that can take a
        //  request (the last to answer first), waiting for a connection
        zmq_pollitem_t items [64];
        size_t peers [64];
        size_t polled = 0;
        for (size_t step = 0; step < count && polled < 64; step++) {
            size_t index = (self->current + step) % count;
            if (tried [index] || !s_connect (self, index))
                continue;
            items [polled].socket = zsock_resolve (self->peers [index].dealer);
            items [polled].fd = 0;
            items [polled].events = ZMQ_POLLOUT;
            items [polled].revents = 0;
            peers [polled++] = index;
        }
        if (polled == 0)
            break;                      //  every endpoint tried
        if (zmq_poll (items, (int) polled, s_until (attempt_deadline)) <= 0)
            break;                      //  none can be reached
        size_t peer = SIZE_MAX;
        for (size_t index = 0; index < polled && peer == SIZE_MAX; index++)
            if (items [index].revents & ZMQ_POLLOUT)
                peer = peers [index];
        assert (peer != SIZE_MAX);
        tried [peer] = true;
        gt_msg_t request;
        memset (&request, 0, sizeof (request));
        request.kind = GT_MSG_REQUEST;
        request.cmd = GT_CMD_MAP;
        uint64_t rid;
        if (s_send_to (self, peer, &request, attempt_deadline, &rid) != S_SENT)
            continue;
        sent_any = true;
        gt_msg_t *reply = s_await (self, &rid, 1, attempt_deadline);
        if (!reply)
            continue;
        if (reply->code == GT_OK && s_reply_complete (GT_CMD_MAP, reply)) {
            gt_msg_destroy (&answer);
            free (tried);
            if (reply_p)
                *reply_p = s_map_copy (reply);
            s_set_map (self, reply);
            return GT_OK;
        }
        if (reply->code == GT_ERR_UNSUPPORTED_COMMAND)
            self->map_unsupported = true;
        gt_msg_destroy (&answer);
        answer = reply;
    }
    free (tried);
    self->map_stale = false;            //  asked: the next call goes on without
    if (answer) {
        gt_code_t code = answer->code == GT_OK
                       ? s_fail (self, GT_ERR_INTERNAL, "the broker's MAP reply lacks its result")
                       : s_take_error (self, answer);
        gt_msg_destroy (&answer);
        return code;
    }
    if (zsys_interrupted)
        return s_fail (self, GT_ERR_UNAVAILABLE, "interrupted");
    self->timed_out = true;
    return s_fail (self, GT_ERR_UNAVAILABLE, sent_any? "no broker answered the MAP request"
                                                       : "no broker could be reached");
}

//  Wait before sending again: ms (a TRY_AGAIN's hint, else the backoff,
//  which doubles), collecting a late reply to the call meanwhile.
static gt_msg_t *
s_backoff (gt_client_t *self, uint64_t hint_ms, int *backoff, const uint64_t *rids,
           size_t rid_count, int64_t deadline)
{
    int64_t wait = hint_ms? (int64_t) hint_ms: *backoff;
    if (!hint_ms)
        *backoff = *backoff * 2 < S_BACKOFF_MAX_MS? *backoff * 2: S_BACKOFF_MAX_MS;
    int64_t until = zclock_mono () + wait;
    if (until > deadline)
        until = deadline;
    if (rid_count)
        return s_await (self, rids, rid_count, until);
    while (!zsys_interrupted && s_until (until) > 0)
        zclock_sleep (s_until (until));
    return NULL;
}

static gt_code_t s_call_routed (gt_client_t *self, gt_msg_t *request, int fixed_peer,
                                int64_t deadline, gt_msg_t **reply_p);

//  A RELEASE answered NOT_FOUND or LEASE_ENDED on a repeat: an earlier
//  attempt released it.  GET it and return it as the call's result.
static gt_code_t
s_release_done (gt_client_t *self, const gt_msg_t *request, int64_t deadline,
                gt_msg_t **reply_p)
{
    gt_msg_t get;
    memset (&get, 0, sizeof (get));
    get.kind = GT_MSG_REQUEST;
    get.cmd = GT_CMD_GET;
    get.lease_id = request->lease_id;
    int64_t at_least = zclock_mono () + S_ATTEMPT_MS;
    return s_call_routed (self, &get, -1, deadline > at_least? deadline: at_least, reply_p);
}

//  A routed call: attempts until deadline, as docs/CLUSTER.md says.
//  fixed_peer >= 0 sends every attempt there (LIST of one broker), else
//  each goes to the owner of the request's shard.
static gt_code_t
s_call_routed (gt_client_t *self, gt_msg_t *request, int fixed_peer, int64_t deadline,
               gt_msg_t **reply_p)
{
    *reply_p = NULL;
    s_clear_error (self);
    if (s_map_wanted (self) && fixed_peer < 0)
        s_fetch_map (self, deadline, NULL);
    s_clear_error (self);

    bool safe = s_safe_to_repeat (request);
    uint64_t rids [S_MAX_ATTEMPTS];
    size_t rid_count = 0;
    int redirects = 0;
    int backoff = S_BACKOFF_MS;
    bool maybe_applied = false;     //  an attempt went out and got no reply
    size_t target = fixed_peer >= 0? (size_t) fixed_peer: s_route (self, request);
    gt_msg_t *last_error = NULL;    //  the last TRY_AGAIN / UNAVAILABLE
    enum { S_NOTHING, S_UNSENT, S_SILENT, S_ERROR } last = S_NOTHING;

    while (!zsys_interrupted && zclock_mono () < deadline && rid_count < S_MAX_ATTEMPTS) {
        //  An attempt waits S_ATTEMPT_MS with several endpoints; a request
        //  that cannot be sent again waits for its reply to the end
        int64_t now = zclock_mono ();
        int64_t attempt_deadline = deadline;
        if (self->peer_count > 1 && safe && now + S_ATTEMPT_MS < deadline)
            attempt_deadline = now + S_ATTEMPT_MS;
        uint64_t rid;
        s_sent_t sent = s_send_to (self, target, request, attempt_deadline, &rid);
        if (sent == S_REFUSED) {
            gt_msg_destroy (&last_error);
            return GT_ERR_INVALID_ARGUMENT;
        }
        gt_msg_t *reply = NULL;
        if (sent == S_SENT) {
            rids [rid_count++] = rid;
            reply = s_await (self, rids, rid_count, attempt_deadline);
            if (!reply) {
                last = S_SILENT;
                maybe_applied = true;
                if (!safe)
                    break;              //  it may not go again
            }
        }
        else
            last = S_UNSENT;
        //  Judge the answer (or its absence) until it is time to send again
        bool send_again = false;
        while (!send_again) {
            uint64_t hint_ms = 0;
            if (reply) {
                if (reply->code == GT_ERR_MOVED && redirects < S_MAX_REDIRECTS
                &&  reply->owner && s_endpoint_valid (reply->owner)) {
                    //  At once to the owner; the map is refreshed before
                    //  the next call
                    redirects++;
                    target = s_peer_for (self, reply->owner);
                    self->map_stale = true;
                    gt_msg_destroy (&reply);
                    send_again = true;
                    continue;
                }
                if (reply->code != GT_ERR_TRY_AGAIN && reply->code != GT_ERR_UNAVAILABLE) {
                    //  Any other answer is the call's answer
                    gt_msg_destroy (&last_error);
                    bool repeat = rid_count > 1 && reply->rid != rids [0];
                    if (request->cmd == GT_CMD_RELEASE && repeat && maybe_applied
                    &&  (reply->code == GT_ERR_NOT_FOUND || reply->code == GT_ERR_LEASE_ENDED)) {
                        gt_msg_destroy (&reply);
                        return s_release_done (self, request, deadline, reply_p);
                    }
                    return s_answer (self, request->cmd, reply, reply_p);
                }
                hint_ms = reply->has_retry_ms? reply->retry_ms: 0;
                gt_msg_destroy (&last_error);
                last_error = reply;
                reply = NULL;
                last = S_ERROR;
            }
            //  Wait (a late reply to the call may come meanwhile), refresh
            //  the map, send again
            if (zclock_mono () >= deadline || zsys_interrupted)
                break;
            reply = s_backoff (self, hint_ms, &backoff, rids, rid_count, deadline);
            if (reply)
                continue;               //  a late answer: judge it
            if (zclock_mono () >= deadline)
                break;
            if (fixed_peer < 0) {
                s_fetch_map (self, deadline, NULL);
                s_clear_error (self);
                target = s_route (self, request);
            }
            send_again = true;
        }
        if (!send_again)
            break;
    }
    //  Out of time (or attempts): the last outcome
    if (zsys_interrupted) {
        gt_msg_destroy (&last_error);
        return s_fail (self, GT_ERR_UNAVAILABLE, "interrupted");
    }
    if (last == S_ERROR && last_error) {
        gt_code_t code = s_take_error (self, last_error);
        gt_msg_destroy (&last_error);
        return code;
    }
    gt_msg_destroy (&last_error);
    s_clear_error (self);
    self->timed_out = true;
    if (last == S_UNSENT && rid_count == 0)
        return s_fail (self, GT_ERR_UNAVAILABLE, "no broker could be reached within %d ms",
                       self->timeout);
    return s_fail (self, GT_ERR_UNAVAILABLE, "broker did not answer within %d ms", self->timeout);
}

//  Send request and wait for its reply: routed or not.  On GT_OK stores
//  the reply in *reply_p (owned by the caller); on error sets the error.
static gt_code_t
s_call (gt_client_t *self, gt_msg_t *request, gt_msg_t **reply_p)
{
    if (!self->routed)
        return s_call_single (self, request, reply_p);
    return s_call_routed (self, request, -1, zclock_mono () + self->timeout, reply_p);
}

//  A call whose result is the reply's lease.
static gt_code_t
s_call_lease (gt_client_t *self, gt_msg_t *request, gt_lease_info_t *lease_out)
{
    gt_msg_t *reply;
    gt_code_t code = s_call (self, request, &reply);
    if (code == GT_OK) {
        if (lease_out)
            gt_lease_info_copy (lease_out, reply->lease);
        gt_msg_destroy (&reply);
    }
    return code;
}

//  Hand a whole reply to the caller (or drop it).
static gt_code_t
s_give_reply (gt_code_t code, gt_msg_t *reply, gt_msg_t **reply_p)
{
    if (reply_p)
        *reply_p = reply;
    else
        gt_msg_destroy (&reply);
    return code;
}

//  A call whose result is the whole reply.
static gt_code_t
s_call_reply (gt_client_t *self, gt_msg_t *request, gt_msg_t **reply_p)
{
    gt_msg_t *reply;
    gt_code_t code = s_call (self, request, &reply);
    return s_give_reply (code, reply, reply_p);
}

//  A request on the stack: it only borrows the caller's strings.
static gt_msg_t
s_request (gt_cmd_t cmd)
{
    gt_msg_t request;
    memset (&request, 0, sizeof (request));
    request.kind = GT_MSG_REQUEST;
    request.version = GT_PROTOCOL_VERSION;
    request.cmd = cmd;
    return request;
}

static gt_code_t
s_check_lease_id (gt_client_t *self, const char *lease_id)
{
    s_clear_error (self);
    if (!lease_id || !gt_lease_id_valid (lease_id))
        return s_fail (self, GT_ERR_INVALID_ARGUMENT,
                       "lease id '%s' is not 32 lowercase hex characters",
                       lease_id? lease_id: "(null)");
    return GT_OK;
}

//  32 random lowercase hex characters (128 bits) and a NUL.
static void
s_random_key (char key [33])
{
    uint8_t bytes [16];
    size_t filled = 0;
    while (filled < sizeof (bytes)) {
        ssize_t rc = getrandom (bytes + filled, sizeof (bytes) - filled, 0);
        if (rc <= 0)
            break;
        filled += (size_t) rc;
    }
    for (; filled < sizeof (bytes); filled++)
        bytes [filled] = (uint8_t) randof (256);
    for (size_t index = 0; index < sizeof (bytes); index++)
        snprintf (key + 2 * index, 3, "%02x", bytes [index]);
}

gt_code_t
gt_client_create_lease (gt_client_t *self, const gt_create_args_t *args,
                        gt_lease_info_t *lease_out)
{
    assert (self);
    s_clear_error (self);
    if (!args || !args->object_id || !*args->object_id)
        return s_fail (self, GT_ERR_INVALID_ARGUMENT, "object_id is required");
    if (args->object_type >= GT_TYPE_COUNT_)
        return s_fail (self, GT_ERR_INVALID_ARGUMENT, "object_type out of range");

    gt_msg_t request = s_request (GT_CMD_CREATE);
    request.object_id = (char *) args->object_id;
    request.has_object_type = args->object_type != GT_TYPE_UNKNOWN;
    request.object_type = args->object_type;
    request.service_id = self->service_id;
    request.has_ttl = args->ttl_ms > 0;
    request.ttl_ms = args->ttl_ms;
    if (args->metadata && args->metadata->count > 0) {
        request.has_metadata = true;
        request.metadata = *args->metadata;
    }
    request.cleanup = (gt_cleanup_t *) args->cleanup;
    request.idempotency_key = (char *) args->idempotency_key;
    //  Routed, every CREATE is safe to send again: it gets a key
    char key [33];
    if (self->routed && !request.idempotency_key) {
        s_random_key (key);
        request.idempotency_key = key;
    }
    return s_call_lease (self, &request, lease_out);
}

gt_code_t
gt_client_renew_lease (gt_client_t *self, const char *lease_id, uint64_t ttl_ms,
                       gt_lease_info_t *lease_out)
{
    assert (self);
    gt_code_t code = s_check_lease_id (self, lease_id);
    if (code != GT_OK)
        return code;
    gt_msg_t request = s_request (GT_CMD_RENEW);
    request.lease_id = (char *) lease_id;
    request.service_id = self->service_id;
    request.has_ttl = ttl_ms > 0;
    request.ttl_ms = ttl_ms;
    return s_call_lease (self, &request, lease_out);
}

//  One lease of a routed RENEW_BATCH.
typedef struct {
    gt_renew_result_t result;       //  its outcome so far
    bool done;                      //  final (or the last word at the deadline)
} s_batch_item_t;

//  Routed RENEW_BATCH: one batch per owner; leases answered MOVED or
//  TRY_AGAIN go again (to the owner a fresh map names) until deadline.
static gt_code_t
s_renew_batch_routed (gt_client_t *self, gt_msg_t *request, gt_msg_t **reply_p)
{
    int64_t deadline = zclock_mono () + self->timeout;
    if (s_map_wanted (self))
        s_fetch_map (self, deadline, NULL);
    size_t count = request->lease_id_count;
    s_batch_item_t *items = (s_batch_item_t *) calloc (count, sizeof (s_batch_item_t));
    size_t *group = (size_t *) calloc (count, sizeof (size_t));
    char **ids = (char **) calloc (count, sizeof (char *));
    int *owners = (int *) calloc (count, sizeof (int));
    assert (items && group && ids && owners);
    for (size_t index = 0; index < count; index++) {
        snprintf (items [index].result.lease_id, sizeof (items [index].result.lease_id),
                  "%s", request->lease_ids [index]);
        items [index].result.code = GT_ERR_UNAVAILABLE;
    }
    bool answered = false;          //  some broker answered a batch
    gt_code_t failure = GT_OK;      //  the last whole-batch failure
    char *failure_text = NULL;
    bool failure_timed_out = false;
    int backoff = S_BACKOFF_MS;
    int round = 0;
    while (true) {
        round++;
        //  The pending leases by owner (-1: no owner known)
        size_t pending = 0;
        for (size_t index = 0; index < count; index++)
            if (!items [index].done) {
                owners [index] = s_owner_of (self, gt_lease_id_shard (items [index].result.lease_id));
                pending++;
            }
        if (pending == 0)
            break;
        bool try_again = false;
        for (size_t first = 0; first < count; first++) {
            if (items [first].done || owners [first] == INT_MIN)
                continue;
            //  One batch: every pending lease of this owner
            int owner = owners [first];
            size_t members = 0;
            for (size_t index = first; index < count; index++)
                if (!items [index].done && owners [index] == owner) {
                    group [members] = index;
                    ids [members++] = items [index].result.lease_id;
                    owners [index] = INT_MIN;   //  taken
                }
            gt_msg_t batch = *request;
            batch.lease_ids = ids;
            batch.lease_id_count = members;
            gt_msg_t *reply;
            //  Routed by its first lease: to that owner, and after a
            //  failure to the owner a fresh map names
            gt_code_t code = s_call_routed (self, &batch, -1, deadline, &reply);
            if (code != GT_OK) {
                failure = code;
                failure_timed_out = self->timed_out;
                free (failure_text);
                failure_text = strdup (self->error);
                for (size_t member = 0; member < members; member++) {
                    s_batch_item_t *item = &items [group [member]];
                    item->result.code = code;
                    free (item->result.message);
                    item->result.message = strdup (self->error);
                    //  UNAVAILABLE and TRY_AGAIN go again, within the time
                    item->done = code != GT_ERR_TRY_AGAIN && code != GT_ERR_UNAVAILABLE;
                    try_again |= !item->done;
                }
                continue;
            }
            answered = true;
            for (size_t result = 0; result < reply->result_count; result++) {
                gt_renew_result_t *from = &reply->results [result];
                for (size_t member = 0; member < members; member++) {
                    s_batch_item_t *item = &items [group [member]];
                    if (item->done || !streq (item->result.lease_id, from->lease_id))
                        continue;
                    free (item->result.message);
                    item->result = *from;
                    from->message = NULL;   //  taken over
                    item->done = from->code != GT_ERR_MOVED && from->code != GT_ERR_TRY_AGAIN;
                    try_again |= from->code == GT_ERR_TRY_AGAIN;
                    group [member] = group [--members];     //  one result per lease
                    break;
                }
            }
            //  A lease the broker did not answer for: done as it stands
            for (size_t member = 0; member < members; member++)
                items [group [member]].done = true;
            gt_msg_destroy (&reply);
        }
        bool left = false;
        for (size_t index = 0; index < count; index++)
            left |= !items [index].done;
        if (!left || zclock_mono () >= deadline || zsys_interrupted)
            break;
        //  MOVED: at once with a fresh map (the first time); TRY_AGAIN,
        //  and MOVED again: after a wait
        if (try_again || round > 1)
            s_backoff (self, 0, &backoff, NULL, 0, deadline);
        s_fetch_map (self, deadline, NULL);
    }
    s_clear_error (self);
    gt_code_t code = GT_OK;
    if (!answered && failure != GT_OK) {
        //  No broker took any of it: the call failed as its last batch did
        code = s_fail (self, failure, "%s", failure_text? failure_text: gt_code_name (failure));
        self->timed_out = failure_timed_out;
        for (size_t index = 0; index < count; index++)
            free (items [index].result.message);
    }
    else {
        gt_msg_t *reply = gt_msg_new (GT_MSG_REPLY);
        assert (reply);
        reply->rid = request->rid;
        reply->code = GT_OK;
        reply->results_present = true;
        reply->results = (gt_renew_result_t *) calloc (count, sizeof (gt_renew_result_t));
        assert (reply->results);
        reply->result_count = count;
        for (size_t index = 0; index < count; index++)
            reply->results [index] = items [index].result;
        *reply_p = reply;
    }
    free (failure_text);
    free (owners);
    free (ids);
    free (group);
    free (items);
    return code;
}

gt_code_t
gt_client_renew_leases (gt_client_t *self, const char *const *lease_ids,
                        size_t count, uint64_t ttl_ms, gt_msg_t **reply_p)
{
    assert (self);
    if (reply_p)
        *reply_p = NULL;
    s_clear_error (self);
    if (!lease_ids || count == 0 || count > GT_MAX_BATCH)
        return s_fail (self, GT_ERR_INVALID_ARGUMENT,
                       "a batch holds 1 to %d lease ids, not %zu",
                       GT_MAX_BATCH, lease_ids? count: 0);
    for (size_t index = 0; index < count; index++) {
        gt_code_t code = s_check_lease_id (self, lease_ids [index]);
        if (code != GT_OK)
            return code;
    }
    gt_msg_t request = s_request (GT_CMD_RENEW_BATCH);
    request.service_id = self->service_id;
    request.lease_ids = (char **) lease_ids;
    request.lease_id_count = count;
    request.has_ttl = ttl_ms > 0;
    request.ttl_ms = ttl_ms;
    if (!self->routed)
        return s_call_reply (self, &request, reply_p);
    gt_msg_t *reply = NULL;
    gt_code_t code = s_renew_batch_routed (self, &request, &reply);
    return s_give_reply (code, reply, reply_p);
}

gt_code_t
gt_client_release_lease (gt_client_t *self, const char *lease_id, bool retain,
                         gt_lease_info_t *lease_out)
{
    assert (self);
    gt_code_t code = s_check_lease_id (self, lease_id);
    if (code != GT_OK)
        return code;
    gt_msg_t request = s_request (GT_CMD_RELEASE);
    request.lease_id = (char *) lease_id;
    request.service_id = self->service_id;
    request.has_retain = retain;        //  omitted when false (the default)
    request.retain = retain;
    return s_call_lease (self, &request, lease_out);
}

gt_code_t
gt_client_get_lease (gt_client_t *self, const char *lease_id, gt_lease_info_t *lease_out)
{
    assert (self);
    gt_code_t code = s_check_lease_id (self, lease_id);
    if (code != GT_OK)
        return code;
    gt_msg_t request = s_request (GT_CMD_GET);
    request.lease_id = (char *) lease_id;
    return s_call_lease (self, &request, lease_out);
}

gt_code_t
gt_client_retry_cleanup (gt_client_t *self, const char *lease_id, gt_lease_info_t *lease_out)
{
    assert (self);
    gt_code_t code = s_check_lease_id (self, lease_id);
    if (code != GT_OK)
        return code;
    gt_msg_t request = s_request (GT_CMD_RETRY);
    request.lease_id = (char *) lease_id;
    return s_call_lease (self, &request, lease_out);
}

//  LIST in cluster mode: the cursor names the broker to go on with:
//  "gtc:<length of broker_id>:<broker_id><that broker's cursor>".
#define S_CURSOR_PREFIX "gtc:"

static char *
s_cursor_make (const char *broker_id, const char *inner)
{
    char *cursor = zsys_sprintf (S_CURSOR_PREFIX "%zu:%s%s", strlen (broker_id), broker_id,
                                 inner? inner: "");
    assert (cursor);
    return cursor;
}

//  Parse a cluster cursor into the broker id and its inner cursor (both
//  allocated; inner NULL for "from its start").  False if it is not one.
static bool
s_cursor_parse (const char *cursor, char **broker_id_p, char **inner_p)
{
    if (strncmp (cursor, S_CURSOR_PREFIX, strlen (S_CURSOR_PREFIX)) != 0)
        return false;
    const char *text = cursor + strlen (S_CURSOR_PREFIX);
    char *end;
    errno = 0;
    unsigned long length = strtoul (text, &end, 10);
    if (errno || end == text || *end != ':' || strlen (end + 1) < length)
        return false;
    *broker_id_p = strndup (end + 1, length);
    const char *inner = end + 1 + length;
    *inner_p = *inner? strdup (inner): NULL;
    assert (*broker_id_p && (!*inner || *inner_p));
    return true;
}

//  LIST on every broker of a cluster map in turn, pages concatenated.
static gt_code_t
s_list_cluster (gt_client_t *self, gt_msg_t *request, gt_msg_t **reply_p)
{
    int64_t deadline = zclock_mono () + self->timeout;
    gt_msg_t *map = s_map_copy (self->map);     //  a fetch may replace self->map
    size_t start = 0;
    char *inner = NULL;
    if (request->cursor) {
        char *broker_id;
        if (!s_cursor_parse (request->cursor, &broker_id, &inner)) {
            gt_msg_destroy (&map);
            return s_fail (self, GT_ERR_INVALID_ARGUMENT, "cursor '%s' is not one of this client",
                           request->cursor);
        }
        //  That broker, or the next one in broker_id order if it is gone
        start = map->broker_count;
        for (size_t index = 0; index < map->broker_count; index++)
            if (strcmp (map->brokers [index].broker_id, broker_id) >= 0) {
                if (!streq (map->brokers [index].broker_id, broker_id)) {
                    free (inner);
                    inner = NULL;
                }
                start = index;
                break;
            }
        free (broker_id);
    }
    uint64_t limit = request->has_limit? request->limit: GT_DEFAULT_PAGE;
    gt_msg_t *result = gt_msg_new (GT_MSG_REPLY);
    assert (result);
    result->code = GT_OK;
    result->leases_present = true;
    gt_code_t code = GT_OK;
    for (size_t index = start; index < map->broker_count; index++) {
        const gt_broker_info_t *broker = &map->brokers [index];
        if (!s_endpoint_valid (broker->endpoint))
            continue;
        gt_msg_t page_request = *request;
        page_request.cursor = inner;
        page_request.has_limit = true;
        page_request.limit = limit - result->lease_count;
        gt_msg_t *page;
        code = s_call_routed (self, &page_request, (int) s_peer_for (self, broker->endpoint),
                              deadline, &page);
        free (inner);
        inner = NULL;
        if (code != GT_OK)
            break;
        if (page->lease_count) {
            gt_lease_info_t *leases = (gt_lease_info_t *) realloc (result->leases,
                (result->lease_count + page->lease_count) * sizeof (gt_lease_info_t));
            assert (leases);
            result->leases = leases;
            memset (result->leases + result->lease_count, 0, page->lease_count * sizeof (gt_lease_info_t));
            for (size_t lease = 0; lease < page->lease_count; lease++)
                gt_lease_info_copy (&result->leases [result->lease_count++], &page->leases [lease]);
        }
        bool more_here = page->cursor != NULL;
        if (more_here || result->lease_count >= limit) {
            //  Go on with this broker's next page, or the next broker
            if (more_here)
                result->cursor = s_cursor_make (broker->broker_id, page->cursor);
            else
            if (index + 1 < map->broker_count)
                result->cursor = s_cursor_make (map->brokers [index + 1].broker_id, NULL);
            gt_msg_destroy (&page);
            break;
        }
        gt_msg_destroy (&page);
    }
    free (inner);
    gt_msg_destroy (&map);
    if (code != GT_OK) {
        gt_msg_destroy (&result);
        return code;
    }
    *reply_p = result;
    return GT_OK;
}

gt_code_t
gt_client_list_leases (gt_client_t *self, const gt_list_args_t *args, gt_msg_t **reply_p)
{
    assert (self);
    if (reply_p)
        *reply_p = NULL;
    s_clear_error (self);
    gt_msg_t request = s_request (GT_CMD_LIST);
    if (args) {
        if (args->limit > GT_MAX_PAGE)
            return s_fail (self, GT_ERR_INVALID_ARGUMENT,
                           "limit must be 1 to %d", GT_MAX_PAGE);
        if ((args->has_object_type && args->object_type >= GT_TYPE_COUNT_)
        ||  (args->has_state && args->state >= GT_STATE_COUNT_)
        ||  (args->has_cleanup_status && !gt_cleanup_status_name (args->cleanup_status)))
            return s_fail (self, GT_ERR_INVALID_ARGUMENT, "filter out of range");
        request.service_id = (char *) args->service_id;
        request.object_id = (char *) args->object_id;
        request.has_object_type = args->has_object_type;
        request.object_type = args->object_type;
        request.has_state = args->has_state;
        request.state = args->state;
        request.has_cleanup_status = args->has_cleanup_status;
        request.cleanup_status = args->cleanup_status;
        request.cursor = (char *) args->cursor;
        request.has_limit = args->limit > 0;
        request.limit = args->limit;
    }
    if (self->routed) {
        if (s_map_wanted (self))
            s_fetch_map (self, zclock_mono () + self->timeout, NULL);
        s_clear_error (self);
        if (self->map && self->map->cluster) {
            gt_msg_t *reply = NULL;
            gt_code_t code = s_list_cluster (self, &request, &reply);
            return s_give_reply (code, reply, reply_p);
        }
    }
    return s_call_reply (self, &request, reply_p);
}

gt_code_t
gt_client_health (gt_client_t *self, gt_msg_t **reply_p)
{
    assert (self);
    gt_msg_t request = s_request (GT_CMD_HEALTH);
    return s_call_reply (self, &request, reply_p);
}

gt_code_t
gt_client_stats (gt_client_t *self, gt_msg_t **reply_p)
{
    assert (self);
    gt_msg_t request = s_request (GT_CMD_STATS);
    return s_call_reply (self, &request, reply_p);
}

//  REPLAY, of one shard when has_shard
static gt_code_t
s_replay (gt_client_t *self, bool has_shard, unsigned shard, uint64_t after_seq,
          uint64_t limit, gt_msg_t **reply_p)
{
    assert (self);
    if (reply_p)
        *reply_p = NULL;
    s_clear_error (self);
    if (limit > GT_MAX_PAGE)
        return s_fail (self, GT_ERR_INVALID_ARGUMENT, "limit must be 1 to %d", GT_MAX_PAGE);
    if (has_shard && shard >= GT_SHARD_COUNT)
        return s_fail (self, GT_ERR_INVALID_ARGUMENT, "shard must be 0 to %d, not %u",
                       GT_SHARD_COUNT - 1, shard);
    gt_msg_t request = s_request (GT_CMD_REPLAY);
    request.has_after_seq = true;
    request.after_seq = after_seq;
    request.has_limit = limit > 0;
    request.limit = limit;
    request.has_shard = has_shard;
    request.shard = shard;
    return s_call_reply (self, &request, reply_p);
}

gt_code_t
gt_client_replay (gt_client_t *self, uint64_t after_seq, uint64_t limit,
                  gt_msg_t **reply_p)
{
    return s_replay (self, false, 0, after_seq, limit, reply_p);
}

gt_code_t
gt_client_replay_shard (gt_client_t *self, unsigned shard, uint64_t after_seq,
                        uint64_t limit, gt_msg_t **reply_p)
{
    return s_replay (self, true, shard, after_seq, limit, reply_p);
}

gt_code_t
gt_client_shard_map (gt_client_t *self, gt_msg_t **reply_p)
{
    assert (self);
    if (!self->routed) {
        gt_msg_t request = s_request (GT_CMD_MAP);
        return s_call_reply (self, &request, reply_p);
    }
    s_clear_error (self);
    gt_msg_t *reply = NULL;
    gt_code_t code = s_fetch_map (self, zclock_mono () + self->timeout, &reply);
    return s_give_reply (code, reply, reply_p);
}

uint64_t
gt_client_stat_value (const gt_msg_t *reply, const char *name, uint64_t default_value)
{
    assert (name);
    if (reply && reply->stats)
        for (size_t index = 0; index < reply->stat_count; index++)
            if (reply->stats [index].name && streq (reply->stats [index].name, name))
                return reply->stats [index].value;
    return default_value;
}

//  ---------------------------------------------------------------------
//  Convenience calls

//  CREATE object_id of type with the given metadata pairs and cleanup url.
static gt_code_t
s_create_typed (gt_client_t *self, const char *object_id, gt_object_type_t type,
                gt_meta_entry_t *entries, size_t entry_count, uint64_t ttl_ms,
                const char *cleanup_url, gt_lease_info_t *lease_out)
{
    gt_meta_t metadata = { entries, entry_count };
    gt_cleanup_t cleanup;
    memset (&cleanup, 0, sizeof (cleanup));
    cleanup.url = (char *) cleanup_url;
    gt_create_args_t args = {
        .object_id = object_id,
        .object_type = type,
        .ttl_ms = ttl_ms,
        .metadata = &metadata,
        .cleanup = cleanup_url? &cleanup: NULL
    };
    return gt_client_create_lease (self, &args, lease_out);
}

//  Report a missing convenience argument.
static gt_code_t
s_missing (gt_client_t *self, const char *name)
{
    s_clear_error (self);
    return s_fail (self, GT_ERR_INVALID_ARGUMENT, "%s is required", name);
}

gt_code_t
gt_client_create_temp_file_lease (gt_client_t *self, const char *path,
                                  uint64_t ttl_ms, const char *cleanup_url,
                                  gt_lease_info_t *lease_out)
{
    assert (self);
    if (!path || !*path)
        return s_missing (self, "path");
    gt_meta_entry_t entries [] = {{ "path", (char *) path }};
    return s_create_typed (self, path, GT_TYPE_TEMPORARY_FILE, entries, 1,
                           ttl_ms, cleanup_url, lease_out);
}

gt_code_t
gt_client_create_db_row_lease (gt_client_t *self, const char *table,
                               const char *row_id, uint64_t ttl_ms,
                               const char *cleanup_url, gt_lease_info_t *lease_out)
{
    assert (self);
    if (!table || !*table)
        return s_missing (self, "table");
    if (!row_id || !*row_id)
        return s_missing (self, "row_id");
    char *object_id = zsys_sprintf ("%s:%s", table, row_id);
    assert (object_id);
    gt_meta_entry_t entries [] = {{ "row_id", (char *) row_id },
                                  { "table", (char *) table }};
    gt_code_t code = s_create_typed (self, object_id, GT_TYPE_DATABASE_ROW,
                                     entries, 2, ttl_ms, cleanup_url, lease_out);
    zstr_free (&object_id);
    return code;
}

gt_code_t
gt_client_create_blob_lease (gt_client_t *self, const char *bucket,
                             const char *key, uint64_t ttl_ms,
                             const char *cleanup_url, gt_lease_info_t *lease_out)
{
    assert (self);
    if (!bucket || !*bucket)
        return s_missing (self, "bucket");
    if (!key || !*key)
        return s_missing (self, "key");
    char *object_id = zsys_sprintf ("%s/%s", bucket, key);
    assert (object_id);
    gt_meta_entry_t entries [] = {{ "bucket", (char *) bucket },
                                  { "key", (char *) key }};
    gt_code_t code = s_create_typed (self, object_id, GT_TYPE_BLOB_STORAGE,
                                     entries, 2, ttl_ms, cleanup_url, lease_out);
    zstr_free (&object_id);
    return code;
}

gt_code_t
gt_client_create_session_lease (gt_client_t *self, const char *session_id,
                                const char *user_id, uint64_t ttl_ms,
                                const char *cleanup_url, gt_lease_info_t *lease_out)
{
    assert (self);
    if (!session_id || !*session_id)
        return s_missing (self, "session_id");
    if (!user_id || !*user_id)
        return s_missing (self, "user_id");
    gt_meta_entry_t entries [] = {{ "user_id", (char *) user_id }};
    return s_create_typed (self, session_id, GT_TYPE_WEBSOCKET_SESSION,
                           entries, 1, ttl_ms, cleanup_url, lease_out);
}

gt_code_t
gt_client_create_cache_lease (gt_client_t *self, const char *cache_key,
                              uint64_t ttl_ms, const char *cleanup_url,
                              gt_lease_info_t *lease_out)
{
    assert (self);
    if (!cache_key || !*cache_key)
        return s_missing (self, "cache_key");
    gt_meta_entry_t entries [] = {{ "cache_key", (char *) cache_key }};
    return s_create_typed (self, cache_key, GT_TYPE_CACHE_ENTRY,
                           entries, 1, ttl_ms, cleanup_url, lease_out);
}

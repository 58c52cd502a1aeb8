/*  gt_client.c — GTLP/1 client over one DEALER socket.

    Requests are encoded with the shared codec (gt_msg_encode_alloc) and
    sent as one frame; replies are the last frame of what arrives.  Blocking
    calls are a pipelined send plus a receive loop that waits for the
    matching rid until the deadline.  */
#include "gt_client.h"
#include "gt_client_keys.h"

//  Socket high-water marks: deep enough for thousands of pipelined requests.
#define GT_CLIENT_HWM   100000

struct _gt_client_t {
    zsock_t *dealer;                //  DEALER connected to the broker
    zpoller_t *poller;              //  waits for replies on the dealer
    char *service_id;               //  the service we act as, or NULL (CURVE: the key's)
    char *endpoint;                 //  where the dealer connects
    bool connected;                 //  the dealer connected (at the first use, after any CURVE settings)
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

//  Connect the dealer if it is not yet; false if libzmq refuses the endpoint
static bool
s_connect (gt_client_t *self)
{
    if (!self->connected)
        self->connected = zsock_connect (self->dealer, "%s", self->endpoint) == 0;
    return self->connected;
}

gt_client_t *
gt_client_new (const char *endpoint, const char *service_id)
{
    if (!endpoint
    ||  (service_id && (strlen (service_id) == 0 || strlen (service_id) > GT_MAX_SERVICE_ID)))
        return NULL;

    gt_client_t *self = (gt_client_t *) zmalloc (sizeof (gt_client_t));
    assert (self);
    self->dealer = zsock_new (ZMQ_DEALER);
    assert (self->dealer);
    zsock_set_maxmsgsize (self->dealer, -1);
    zsock_set_sndhwm (self->dealer, GT_CLIENT_HWM);
    zsock_set_rcvhwm (self->dealer, GT_CLIENT_HWM);
    zsock_set_linger (self->dealer, 0);
    //  The connection is made at the first use, so that CURVE settings
    //  (gt_client_set_curve) apply to the first handshake; the endpoint's
    //  form is checked now
    if (!s_endpoint_valid (endpoint)) {
        zsock_destroy (&self->dealer);
        free (self);
        return NULL;
    }
    self->poller = zpoller_new (self->dealer, NULL);
    assert (self->poller);
    self->service_id = service_id ? strdup (service_id) : NULL;
    self->endpoint = strdup (endpoint);
    self->timeout = GT_CLIENT_DEFAULT_TIMEOUT;
    zsock_set_sndtimeo (self->dealer, self->timeout);
    self->next_rid = 1;
    self->error = strdup ("");
    self->error_shard = -1;
    assert ((self->service_id || !service_id) && self->endpoint && self->error);
    return self;
}

void
gt_client_destroy (gt_client_t **self_p)
{
    assert (self_p);
    gt_client_t *self = *self_p;
    if (self) {
        zpoller_destroy (&self->poller);
        zsock_destroy (&self->dealer);
        free (self->service_id);
        free (self->endpoint);
        free (self->error);
        free (self->error_owner);
        free (self);
        *self_p = NULL;
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
    //  Security options count from the next connect
    if (self->connected)
        zsock_disconnect (self->dealer, "%s", self->endpoint);
    self->connected = false;
    gt_client_keys_apply (keys, self->dealer);
    gt_client_keys_destroy (&keys);
    return 0;
}

void
gt_client_set_timeout (gt_client_t *self, int timeout_ms)
{
    assert (self);
    assert (timeout_ms > 0);
    self->timeout = timeout_ms;
    zsock_set_sndtimeo (self->dealer, timeout_ms);
}

int
gt_client_timeout (gt_client_t *self)
{
    assert (self);
    return self->timeout;
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
    s_connect (self);
    return self->dealer;
}

//  Commands whose owner is the sending service.
static bool
s_cmd_needs_service (gt_cmd_t cmd)
{
    return cmd == GT_CMD_CREATE || cmd == GT_CMD_RENEW
        || cmd == GT_CMD_RENEW_BATCH || cmd == GT_CMD_RELEASE;
}

uint64_t
gt_client_send (gt_client_t *self, gt_msg_t *request)
{
    assert (self);
    assert (request);
    assert (request->kind == GT_MSG_REQUEST);

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
    void *data = NULL;
    size_t size = 0;
    int rc = gt_msg_encode_alloc (request, &data, &size);
    if (lent)
        request->service_id = NULL;
    if (rc != 0) {
        free (data);
        self->send_code = s_fail (self, GT_ERR_INVALID_ARGUMENT,
            "%s request cannot be encoded (a required field is missing)",
            gt_cmd_name (request->cmd)? gt_cmd_name (request->cmd): "unknown");
        return 0;
    }
    if (!s_connect (self)) {
        free (data);
        self->send_code = s_fail (self, GT_ERR_INVALID_ARGUMENT, "cannot connect to '%s': %s",
                                  self->endpoint, zmq_strerror (zmq_errno ()));
        return 0;
    }
    rc = zmq_send (zsock_resolve (self->dealer), data, size, 0);
    free (data);
    if (rc == -1) {
        self->send_code = s_fail (self, GT_ERR_UNAVAILABLE,
            "could not queue the request within %d ms", self->timeout);
        self->timed_out = true;
        return 0;
    }
    return request->rid;
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
        if (!zpoller_wait (self->poller, wait))
            return NULL;                //  timeout or interrupted
        zmsg_t *msg = zmsg_recv (self->dealer);
        if (!msg)
            return NULL;                //  interrupted
        zframe_t *body = zmsg_last (msg);
        gt_msg_t *reply = NULL;
        char err [256];
        if (body)
            gt_msg_decode (zframe_data (body), zframe_size (body),
                           GT_MSG_REPLY, &reply, NULL, err, sizeof (err));
        zmsg_destroy (&msg);
        if (reply)
            return reply;
        self->discarded++;              //  not a GTLP reply: skip it
        if (timeout_ms == 0)
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

//  Send request and wait for its reply.  On GT_OK stores the reply in
//  *reply_p (owned by the caller); on error sets the error text.
static gt_code_t
s_call (gt_client_t *self, gt_msg_t *request, gt_msg_t **reply_p)
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
    gt_code_t code = reply->code;
    if (code != GT_OK) {
        s_fail (self, code, "%s", reply->message? reply->message: gt_code_name (code));
        //  MOVED and TRY_AGAIN say where to go or how long to wait
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
        gt_msg_destroy (&reply);
        return code;
    }
    if (!s_reply_complete (request->cmd, reply)) {
        gt_msg_destroy (&reply);
        return s_fail (self, GT_ERR_INTERNAL, "the broker's %s reply lacks its result",
                       gt_cmd_name (request->cmd));
    }
    *reply_p = reply;
    return GT_OK;
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

//  A call whose result is the whole reply.
static gt_code_t
s_call_reply (gt_client_t *self, gt_msg_t *request, gt_msg_t **reply_p)
{
    gt_msg_t *reply;
    gt_code_t code = s_call (self, request, &reply);
    if (reply_p)
        *reply_p = reply;
    else
        gt_msg_destroy (&reply);
    return code;
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

gt_code_t
gt_client_create (gt_client_t *self, const gt_create_args_t *args,
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
    return s_call_lease (self, &request, lease_out);
}

gt_code_t
gt_client_renew (gt_client_t *self, const char *lease_id, uint64_t ttl_ms,
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

gt_code_t
gt_client_renew_batch (gt_client_t *self, const char *const *lease_ids,
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
    return s_call_reply (self, &request, reply_p);
}

gt_code_t
gt_client_release (gt_client_t *self, const char *lease_id, bool retain,
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
gt_client_get (gt_client_t *self, const char *lease_id, gt_lease_info_t *lease_out)
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
gt_client_retry (gt_client_t *self, const char *lease_id, gt_lease_info_t *lease_out)
{
    assert (self);
    gt_code_t code = s_check_lease_id (self, lease_id);
    if (code != GT_OK)
        return code;
    gt_msg_t request = s_request (GT_CMD_RETRY);
    request.lease_id = (char *) lease_id;
    return s_call_lease (self, &request, lease_out);
}

gt_code_t
gt_client_list (gt_client_t *self, const gt_list_args_t *args, gt_msg_t **reply_p)
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
gt_client_map (gt_client_t *self, gt_msg_t **reply_p)
{
    assert (self);
    gt_msg_t request = s_request (GT_CMD_MAP);
    return s_call_reply (self, &request, reply_p);
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
    return gt_client_create (self, &args, lease_out);
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

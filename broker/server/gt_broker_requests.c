/*  gt_broker_requests.c — one decoded request applied to the broker's
    tables, and the encoded reply body; the contract is in
    gt_broker_requests.h.  */

#include <czmq.h>
#include <ctype.h>
#include "gt_broker.h"
#include "gt_leases.h"
#include "gt_events.h"
#include "gt_store.h"
#include "gt_broker_delivery.h"
#include "gt_callback.h"
#include "gt_broker_requests.h"
#include "gt_log.h"
#include "gt_admission.h"
#include "gt_access.h"

struct _gt_broker_requests_t {
    char *callback_allow;           //  GC_CALLBACK_ALLOW, or NULL
    int64_t started;                //  zclock_mono of the broker's start (HEALTH uptime)
    gt_leases_t *leases;            //  the lease engine (borrowed)
    gt_events_t *events;            //  numbering and history (borrowed), for REPLAY
    gt_store_t *store;              //  the store (borrowed), for HEALTH; may be NULL
    gt_admission_t *admission;      //  what may be changed now (borrowed)
    gt_broker_delivery_t *delivery; //  cleanup callbacks (borrowed), for RETRY
    gt_broker_requests_stats_fn *stats;     //  the STATS list of the broker
    void *stats_ctx;                //  passed to stats
    const gt_shard_map_t *own_map;  //  MAP without the store's view (borrowed), or NULL
};

gt_broker_requests_t *
gt_broker_requests_new (const gt_config_t *config, int64_t started, const gt_broker_requests_parts_t *parts)
{
    assert (config && parts && parts->leases && parts->events && parts->admission && parts->delivery
            && parts->stats);
    gt_broker_requests_t *self = (gt_broker_requests_t *) zmalloc (sizeof (gt_broker_requests_t));
    assert (self);
    self->callback_allow = config->callback_allow ? strdup (config->callback_allow) : NULL;
    self->started = started;
    self->leases = parts->leases;
    self->events = parts->events;
    self->store = parts->store;
    self->admission = parts->admission;
    self->delivery = parts->delivery;
    self->stats = parts->stats;
    self->stats_ctx = parts->stats_ctx;
    return self;
}

void
gt_broker_requests_destroy (gt_broker_requests_t **self_p)
{
    assert (self_p);
    gt_broker_requests_t *self = *self_p;
    if (self) {
        free (self->callback_allow);
        free (self);
        *self_p = NULL;
    }
}

void
gt_broker_requests_set_store (gt_broker_requests_t *self, gt_store_t *store)
{
    assert (self);
    self->store = store;
}

void
gt_broker_requests_set_own_map (gt_broker_requests_t *self, const gt_shard_map_t *map)
{
    assert (self);
    self->own_map = map;
}

//  The MAP reply's brokers from a shard map (GTLP.md §14.2); strings
//  borrowed from the map.  Returns the array (caller frees), NULL if none.
static gt_broker_info_t *
s_map_brokers (const gt_shard_map_t *map, size_t *count_p)
{
    size_t count = gt_shard_map_brokers (map);
    *count_p = count;
    if (count == 0)
        return NULL;
    gt_broker_info_t *brokers = (gt_broker_info_t *) calloc (count, sizeof (gt_broker_info_t));
    assert (brokers);
    for (size_t index = 0; index < count; index++) {
        brokers [index].broker_id = (char *) gt_shard_map_broker_id (map, index);
        brokers [index].endpoint = (char *) gt_shard_map_endpoint (map, index);
        brokers [index].events_endpoint = (char *) gt_shard_map_events_endpoint (map, index);
    }
    for (size_t index = 0; index < count; index++)
        brokers [index].has_epochs = true;  //  an empty list for a broker without shards
    for (unsigned shard = 0; shard < GT_SHARD_COUNT; shard++) {
        int owner = gt_shard_map_owner (map, shard);
        if (owner >= 0)
            gt_broker_info_add_shard_epoch (&brokers [owner], shard, gt_shard_map_epoch (map, shard));
    }
    return brokers;
}

//  Encode an error reply body.
void
gt_broker_error_body (uint64_t rid, gt_code_t code, const char *message, msgpack_sbuffer *body)
{
    gt_msg_t reply;
    memset (&reply, 0, sizeof (reply));
    reply.kind = GT_MSG_REPLY;
    reply.version = GT_PROTOCOL_VERSION;
    reply.rid = rid;
    reply.code = code;
    //  Messages are built with snprintf into fixed buffers and may quote
    //  client strings: a cut can split a UTF-8 sequence, so trim to the
    //  longest valid prefix (the wire carries only valid UTF-8).
    if (!message || !*message)
        message = gt_code_name (code);
    size_t length = strlen (message);
    while (length > 0 && !gt_utf8_valid (message, length))
        length--;
    char *text = strndup (message, length);
    assert (text);
    reply.message = text;
    uint64_t versions [] = { GT_PROTOCOL_VERSION };
    if (code == GT_ERR_UNSUPPORTED_VERSION) {
        reply.versions = versions;
        reply.version_count = 1;
    }
    int rc = gt_msg_encode (&reply, body);
    assert (rc == 0);               //  an error reply always encodes
    free (text);
}

//  The lease a reply of one lease carries: its info, filled
static gt_lease_info_t *
s_reply_lease (gt_broker_requests_t *self, gt_lease_info_t *info, const gt_lease_t *lease)
{
    gt_leases_info (self->leases, lease, info);
    return info;
}

//  The owner of the lease a request names, or NULL if it names none or an
//  unknown one (borrowed from the engine)
static const char *
s_lease_owner (gt_broker_requests_t *self, const gt_msg_t *request, gt_lease_info_t *info)
{
    gt_lease_t *lease = NULL;
    char err [64];
    if (!request->lease_id
    ||  gt_leases_get (self->leases, request->lease_id, &lease, err, sizeof (err)) != GT_OK)
        return NULL;
    gt_leases_info (self->leases, lease, info);
    return info->service_id;
}

//  The shard a lease id names (its first two hex digits, GTLP.md §4.1),
//  or -1 if it is not a lease id (the engine answers that one).
static int
s_lease_shard (const char *lease_id)
{
    if (!lease_id || !isxdigit ((unsigned char) lease_id [0]) || !isxdigit ((unsigned char) lease_id [1]))
        return -1;
    char hex [3] = { lease_id [0], lease_id [1], 0 };
    return (int) strtoul (hex, NULL, 16);
}

//  The shard a request is for (cluster mode routing, GTLP.md §14.3), or -1
//  when it names none (LIST, HEALTH, STATS, MAP, RENEW_BATCH: per lease).
static int
s_request_shard (const gt_msg_t *request)
{
    switch (request->cmd) {
        case GT_CMD_CREATE:
            return request->object_id ? (int) gt_shard_of (request->object_id) : -1;
        case GT_CMD_RENEW:
        case GT_CMD_RELEASE:
        case GT_CMD_GET:
        case GT_CMD_RETRY:
            return s_lease_shard (request->lease_id);
        case GT_CMD_REPLAY:
            return request->has_shard ? (int) request->shard : -1;
        default:
            return -1;
    }
}

//  Not ours: MOVED to the owner the map names, or TRY_AGAIN when it names
//  none or this broker (acquired and not loaded yet, or being handed over).
//  Fills the error reply's fields; returns the code.
static gt_code_t
s_not_owned (gt_broker_requests_t *self, unsigned shard, gt_msg_t *reply, char *err, size_t err_size)
{
    const gt_shard_map_t *map = self->store ? gt_store_shard_map (self->store) : NULL;
    int owner = map ? gt_shard_map_owner (map, shard) : -1;
    const char *endpoint = owner >= 0 ? gt_shard_map_endpoint (map, (size_t) owner) : NULL;
    const char *mine = self->own_map && gt_shard_map_brokers (self->own_map)
                     ? gt_shard_map_endpoint (self->own_map, 0) : NULL;
    reply->has_shard = true;
    reply->shard = shard;
    if (endpoint && *endpoint && !(mine && streq (endpoint, mine))) {
        snprintf (err, err_size, "shard %u is owned by %s", shard, gt_shard_map_broker_id (map, (size_t) owner));
        reply->owner = (char *) endpoint;
        reply->has_map_version = true;
        reply->map_version = gt_shard_map_version (map);
        return GT_ERR_MOVED;
    }
    snprintf (err, err_size, "shard %u %s", shard, owner >= 0 ? "is being handed over or loaded" : "has no owner");
    reply->has_retry_ms = true;
    reply->retry_ms = 100;
    return GT_ERR_TRY_AGAIN;
}

gt_code_t
gt_broker_requests_handle (gt_broker_requests_t *self, const gt_msg_t *request,
                           const gt_principal_t *caller, msgpack_sbuffer *body)
{
    //  Only its first byte set: zeroing all 512 took 68 instructions a request
    char err [512];
    err [0] = '\0';
    //  A command answered with one lease has it written from reply_lease
    //  alone; any other fills reply, zeroed only then (a whole gt_msg_t,
    //  about 700 bytes, was a tenth of this function's own instructions)
    bool one_lease = request->cmd == GT_CMD_CREATE || request->cmd == GT_CMD_RENEW
                  || request->cmd == GT_CMD_RELEASE || request->cmd == GT_CMD_GET
                  || request->cmd == GT_CMD_RETRY;
    gt_lease_info_t *reply_lease = NULL;
    gt_msg_t reply;
    if (!one_lease) {
        memset (&reply, 0, sizeof (reply));
        reply.kind = GT_MSG_REPLY;
        reply.version = GT_PROTOCOL_VERSION;
        reply.rid = request->rid;
    }
    gt_code_t code = GT_OK;
    gt_lease_t *lease = NULL;
    gt_lease_info_t info;
    //  Storage that outlives the switch, freed after encoding
    gt_lease_info_t *infos = NULL;
    gt_lease_t **leases = NULL;
    gt_renew_result_t *results = NULL;
    gt_stat_t *stats = NULL;
    gt_broker_info_t *brokers = NULL;
    char cursor [32] = "";

    gt_leases_clock (self->leases, (uint64_t) zclock_mono (), (uint64_t) zclock_time ());
    //  Events this request makes come after this one (the reply may reuse
    //  the lease bytes of its own last event)
    uint64_t first_event = gt_events_next_order (self->events);
    //  The store cannot write: refuse a change before applying it
    //  The service the request acts as: the one it names, or with CURVE
    //  the one its caller's key allows (gt_access.h); filtered: its reads
    //  see that service only
    const char *service = request->service_id;
    bool filtered = false;
    gt_lease_info_t owner_info;
    if (caller) {
        //  The owner matters to the rules only for GET and RETRY, and for an
        //  admin naming no service; RENEW and RELEASE check it in the engine
        bool owner_needed = request->cmd == GT_CMD_GET || request->cmd == GT_CMD_RETRY
                         || (caller->role == GT_ROLE_ADMIN && !request->service_id);
        code = gt_access_check (caller, request->cmd, request->service_id,
                                owner_needed ? s_lease_owner (self, request, &owner_info) : NULL,
                                &service, &filtered, err, sizeof (err));
    }
    bool changes = request->cmd == GT_CMD_CREATE || request->cmd == GT_CMD_RENEW
                || request->cmd == GT_CMD_RENEW_BATCH || request->cmd == GT_CMD_RELEASE;
    //  Cluster mode: a request for a shard this broker does not serve is
    //  redirected, unapplied (GTLP.md §14.3)
    bool cluster = self->store && gt_events_sharded (self->events);
    int shard = cluster ? s_request_shard (request) : -1;
    gt_msg_t routed;                //  zeroed where it is filled (MOVED, TRY_AGAIN)
    bool routed_filled = false;
    if (code != GT_OK)
        ;                           //  refused by the caller's role
    else
    if (changes && !service) {
        //  The codec lets it out for CURVE callers, whose key names it
        snprintf (err, sizeof (err), "service_id: required");
        code = GT_ERR_INVALID_ARGUMENT;
    }
    else
    if (cluster && request->cmd == GT_CMD_REPLAY && !request->has_shard) {
        snprintf (err, sizeof (err), "shard: required in a cluster (GTLP.md §14.4): events are numbered per shard");
        code = GT_ERR_INVALID_ARGUMENT;
    }
    else
    if (cluster && shard >= 0 && !gt_store_owns (self->store, (unsigned) shard)) {
        memset (&routed, 0, sizeof (routed));
        code = s_not_owned (self, (unsigned) shard, &routed, err, sizeof (err));
        routed_filled = true;
    }
    else
    if (gt_admission_refuses (self->admission, request->cmd, err, sizeof (err)))
        code = GT_ERR_UNAVAILABLE;
    else
    switch (request->cmd) {
        case GT_CMD_CREATE: {
            gt_lease_spec_t spec = {
                request->object_id,
                request->has_object_type ? request->object_type : GT_TYPE_UNKNOWN,
                service,
                request->has_ttl, request->ttl_ms,
                request->has_metadata ? &request->metadata : NULL,
                request->cleanup,
                request->idempotency_key
            };
            //  The cleanup URL policy is delivery's (libcurl parses the URL
            //  against GC_CALLBACK_ALLOW): checked here, before the engine
            //  sees the CREATE, with the texts clients have always had
            const char *url = spec.cleanup ? spec.cleanup->url : NULL;
            const char *allow = self->callback_allow;
            bool refused = true;
            if (url && !gt_callback_url_allowed (NULL, url))
                snprintf (err, sizeof (err), "cleanup.url must be an http:// or https:// URL with a host, "
                          "at most %d bytes, without blanks", GT_MAX_URL);
            else
            if (url && allow && !gt_callback_url_allowed (allow, url)) {
                //  A long URL and list fill err: the text is cut at its end,
                //  as it always was (the error body trims to valid UTF-8)
                int length = snprintf (err, sizeof (err), "cleanup.url '%.200s%s' is not allowed: it must start "
                                       "with one of the broker's GC_CALLBACK_ALLOW prefixes (%.300s)",
                                       url, strlen (url) > 200 ? "..." : "", allow);
                assert (length > 0);
            }
            else
            if (url && caller && caller->callback_allow
            && !gt_callback_url_allowed (caller->callback_allow, url)) {
                //  The key's own prefixes apply as well (GTLP.md §12)
                int length = snprintf (err, sizeof (err), "cleanup.url '%.200s%s' is not allowed: it must start "
                                       "with one of the callback-allow prefixes of this key's certificate "
                                       "(%s: %.300s)", url, strlen (url) > 200 ? "..." : "", caller->file,
                                       caller->callback_allow);
                assert (length > 0);
            }
            else
                refused = false;
            if (refused) {
                //  The lease's own values were always checked before the
                //  URL: when one of them is wrong too, its message wins
                code = gt_leases_check_spec (self->leases, &spec, err, sizeof (err));
                if (code == GT_OK)
                    code = GT_ERR_INVALID_ARGUMENT;     //  the URL's message stands
                break;
            }
            code = gt_leases_create (self->leases, &spec, &lease, err, sizeof (err));
            if (code == GT_OK)
                reply_lease = s_reply_lease (self, &info, lease);
            break;
        }
        case GT_CMD_RENEW:
            code = gt_leases_renew (self->leases, request->lease_id, service,
                                    request->has_ttl, request->ttl_ms, &lease, err, sizeof (err));
            if (code == GT_OK)
                reply_lease = s_reply_lease (self, &info, lease);
            break;
        case GT_CMD_RELEASE:
            code = gt_leases_release (self->leases, request->lease_id, service,
                                      request->has_retain && request->retain, &lease, err, sizeof (err));
            if (code == GT_OK)
                reply_lease = s_reply_lease (self, &info, lease);
            break;
        case GT_CMD_GET:
            code = gt_leases_get (self->leases, request->lease_id, &lease, err, sizeof (err));
            if (code == GT_OK)
                reply_lease = s_reply_lease (self, &info, lease);
            break;
        case GT_CMD_RETRY:
            code = gt_leases_get (self->leases, request->lease_id, &lease, err, sizeof (err));
            if (code == GT_OK)
                code = gt_broker_delivery_retry (self->delivery, request->lease_id, err, sizeof (err));
            if (code == GT_OK)
                reply_lease = s_reply_lease (self, &info, lease);
            break;
        case GT_CMD_RENEW_BATCH: {
            if (request->lease_id_count == 0 || request->lease_id_count > GT_MAX_BATCH) {
                snprintf (err, sizeof (err), "lease_ids must have 1 .. %d entries", GT_MAX_BATCH);
                code = GT_ERR_INVALID_ARGUMENT;
                break;
            }
            if (request->has_ttl
            && (code = gt_leases_check_ttl (self->leases, request->ttl_ms, err, sizeof (err))) != GT_OK)
                break;
            results = (gt_renew_result_t *) calloc (request->lease_id_count, sizeof (gt_renew_result_t));
            assert (results);
            for (size_t i = 0; i < request->lease_id_count; i++) {
                gt_renew_result_t *result = &results [i];
                const char *id = request->lease_ids [i];
                snprintf (result->lease_id, sizeof (result->lease_id), "%s", id ? id : "");
                char item_err [256];
                int lease_shard = cluster ? s_lease_shard (id) : -1;
                if (lease_shard >= 0 && !gt_store_owns (self->store, (unsigned) lease_shard)) {
                    gt_msg_t unused;
                    memset (&unused, 0, sizeof (unused));
                    result->code = s_not_owned (self, (unsigned) lease_shard, &unused, item_err, sizeof (item_err));
                    result->message = (char *) (result->code == GT_ERR_MOVED ? "shard owned by another broker"
                                                                             : "shard being handed over");
                    continue;
                }
                result->code = gt_leases_renew (self->leases, id, service, request->has_ttl,
                                                request->ttl_ms, &lease, item_err, sizeof (item_err));
                if (result->code == GT_OK) {
                    gt_leases_info (self->leases, lease, &info);
                    result->expires_at = info.expires_at;
                }
                else
                    //  Short fixed texts keep 10,000 results under 1 MiB
                    result->message = (char *) (result->code == GT_ERR_NOT_FOUND ? "no such lease"
                                    : result->code == GT_ERR_LEASE_ENDED ? "lease has ended"
                                    : result->code == GT_ERR_PERMISSION_DENIED ? "another service's lease"
                                    : "invalid lease");
            }
            reply.results = results;
            reply.result_count = request->lease_id_count;
            reply.results_present = true;
            break;
        }
        case GT_CMD_LIST: {
            size_t limit = request->has_limit ? request->limit : GT_DEFAULT_PAGE;
            if (limit < 1 || limit > GT_MAX_PAGE) {
                snprintf (err, sizeof (err), "limit must be 1 .. %d", GT_MAX_PAGE);
                code = GT_ERR_INVALID_ARGUMENT;
                break;
            }
            gt_leases_filter_t filter = {
                service, request->object_id,
                request->has_object_type, request->object_type,
                request->has_state, request->state,
                request->has_cleanup_status, request->cleanup_status
            };
            leases = (gt_lease_t **) calloc (limit, sizeof (gt_lease_t *));
            assert (leases);
            size_t count = 0;
            code = gt_leases_list (self->leases, &filter, request->cursor, limit,
                                   GT_BROKER_PAGE_BYTES, leases, &count, cursor,
                                   err, sizeof (err));
            if (code != GT_OK)
                break;
            infos = (gt_lease_info_t *) calloc (count ? count : 1, sizeof (gt_lease_info_t));
            assert (infos);
            for (size_t i = 0; i < count; i++)
                gt_leases_info (self->leases, leases [i], &infos [i]);
            reply.leases = infos;
            reply.lease_count = count;
            reply.leases_present = true;
            if (*cursor)
                reply.cursor = cursor;
            break;
        }
        case GT_CMD_HEALTH: {
            gt_leases_stats_t engine;
            gt_leases_stats (self->leases, &engine);
            bool healthy = gt_store_healthy (self->store);
            reply.status = (char *) (healthy ? "SERVING" : "DEGRADED");
            reply.server_version = (char *) GT_VERSION_STRING;
            reply.store = (char *) gt_store_name (self->store);
            reply.store_status = (char *) (healthy ? "OK" : "DEGRADED");
            reply.uptime_ms = (uint64_t) (zclock_mono () - self->started);
            reply.now = (uint64_t) zclock_time ();
            reply.active_leases = engine.active_leases;
            break;
        }
        case GT_CMD_STATS: {
            size_t count = 0;
            stats = self->stats (self->stats_ctx, &count);
            reply.stats = stats;
            reply.stat_count = count;
            reply.stats_present = true;
            break;
        }
        case GT_CMD_REPLAY: {
            void *page = NULL;
            size_t page_size = 0;
            size_t limit = request->has_limit ? request->limit : GT_DEFAULT_PAGE;
            if (limit < 1 || limit > GT_MAX_PAGE) {
                snprintf (err, sizeof (err), "limit must be 1 .. %d", GT_MAX_PAGE);
                code = GT_ERR_INVALID_ARGUMENT;
                break;
            }
            //  A service's key reads its own events only (the topics that
            //  start with its service, as on the events socket)
            char own [GT_MAX_SERVICE_ID + 2];
            if (filtered && gt_service_topic (own, sizeof (own), service) < 0) {
                snprintf (err, sizeof (err), "service_id too long");
                code = GT_ERR_INVALID_ARGUMENT;
                break;
            }
            if (cluster)
                code = gt_events_replay_shard (self->events, request->rid, request->shard, request->after_seq,
                                               filtered ? own : NULL, limit, GT_BROKER_PAGE_BYTES,
                                               &page, &page_size, err, sizeof (err));
            else
                code = gt_events_replay (self->events, request->rid, request->after_seq, filtered ? own : NULL,
                                         limit, GT_BROKER_PAGE_BYTES, &page, &page_size, err, sizeof (err));
            if (code == GT_OK) {
                //  The events module built the whole body
                msgpack_sbuffer_write (body, (const char *) page, page_size);
                free (page);
                return GT_OK;
            }
            break;
        }
        case GT_CMD_MAP: {
            //  The store's view of the database, else this broker alone
            const gt_shard_map_t *map = self->store ? gt_store_shard_map (self->store) : NULL;
            if (!map)
                map = self->own_map;
            if (!map) {
                snprintf (err, sizeof (err), "the shard map is not known yet");
                code = GT_ERR_UNAVAILABLE;
                break;
            }
            brokers = s_map_brokers (map, &reply.broker_count);
            reply.brokers = brokers;
            reply.brokers_present = true;
            reply.has_map_version = true;
            reply.map_version = gt_shard_map_version (map);
            reply.has_cluster = true;
            reply.cluster = gt_shard_map_cluster (map);
            break;
        }
        default:
            snprintf (err, sizeof (err), "unknown command");
            code = GT_ERR_UNSUPPORTED_COMMAND;
            break;
    }
    //  A reply of one lease (and nothing else) is written straight from
    //  it; a change answered with the lease its own event just carried
    //  (an event encoded at once) takes the event's LEASE map as it is
    bool lease_only = code == GT_OK && reply_lease;
    const void *lease_bytes = NULL;
    size_t lease_size = 0;
    bool reuse = lease_only && gt_events_next_order (self->events) > first_event
              && gt_events_lease_bytes (self->events, reply_lease, &lease_bytes, &lease_size);
    if (reuse) {
        int rc = gt_msg_encode_lease_reply (request->rid, lease_bytes, lease_size, body);
        assert (rc == 0);           //  appending to a buffer does not fail
    }
    else
    if (code == GT_OK) {
        //  Every one-lease command that succeeds has its lease
        assert (lease_only || !one_lease);
        int rc = lease_only ? gt_msg_encode_lease_info_reply (request->rid, reply_lease, body)
                            : gt_msg_encode (&reply, body);
        if (rc != 0) {
            gt_log_error ("broker", "cannot encode the reply to %s rid=%" PRIu64,
                          gt_cmd_name (request->cmd), request->rid);
            code = GT_ERR_INTERNAL;
            snprintf (err, sizeof (err), "the broker could not encode its reply");
        }
    }
    if (routed_filled) {
        //  With the fields the client routes by (GTLP.md §14.3); only
        //  s_not_owned makes these codes
        assert (code == GT_ERR_MOVED || code == GT_ERR_TRY_AGAIN);
        routed.kind = GT_MSG_REPLY;
        routed.version = GT_PROTOCOL_VERSION;
        routed.rid = request->rid;
        routed.code = code;
        routed.message = err;
        int rc = gt_msg_encode (&routed, body);
        assert (rc == 0);           //  its fields were set together above
    }
    else
    if (code != GT_OK)
        gt_broker_error_body (request->rid, code, err, body);
    free (infos);
    free (leases);
    free (results);
    free (stats);
    free (brokers);
    return code;
}

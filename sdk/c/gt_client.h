/*  gt_client.h — GTLP/1 client: a DEALER connection to each broker.

    Two ways to talk to the broker, over the same socket:

    *  Blocking calls (gt_client_create_lease, _renew_lease, ... _replay):
       send one request and wait up to the client's timeout (default 5000
       ms, GT_CLIENT_DEFAULT_TIMEOUT_MS) for the reply with the same
       request id.  They return GT_OK or the broker's error code; the
       broker's message is then gt_client_error().
       Replies to other request ids that arrive meanwhile (late replies of
       an earlier call that timed out, or of pipelined requests) are
       discarded, so do not mix blocking calls with pipelined requests
       still in flight.

       A TIMEOUT is reported as GT_ERR_UNAVAILABLE with gt_client_timed_out()
       true and gt_client_error() "broker did not answer within N ms".  The
       broker itself never answers UNAVAILABLE with timed_out set, so the two
       can be told apart.  After a timeout the change may or may not have
       been applied (GTLP.md §11).  Invalid arguments detected locally
       return GT_ERR_INVALID_ARGUMENT without contacting the broker.

    *  Pipelined: gt_client_send a request (the client fills "v" and "rid"
       and returns the rid), later gt_client_recv replies in any order and
       match them by rid.  Thousands of requests may be in flight.

    Leases returned through a gt_lease_info_t *lease_out are deep copies
    the caller owns: free their contents with gt_lease_info_clear().  Calls
    returning a whole reply (list_leases, renew_leases, health, stats,
    replay, shard_map) store it in *reply_p (caller destroys with
    gt_msg_destroy); reply_p may be NULL.  On failure *reply_p is NULL and
    lease_out is left untouched.

    Request ids come from a per-client counter starting at 1.

    Several brokers (docs/CLUSTER.md, "Client routing"; GTLP.md §14.3).
    The endpoint may be a list, "tcp://a:50051,tcp://b:50051".  With one
    endpoint nothing of this happens: one DEALER, no MAP, and MOVED or
    TRY_AGAIN are returned to the caller with their fields (unless
    gt_client_set_routed turns routing on).  With several the client is
    ROUTED:
    *  one DEALER per endpoint, opened when first used, with ZMQ_IMMEDIATE
       (a request never waits in a queue for a broker that is not
       connected); the brokers a MAP names become endpoints too;
    *  it asks for the MAP before its first request (each endpoint in
       turn, at most 1 s each), and sends each request to the owner of its
       shard (CREATE: gt_shard_of (object_id); a lease id: its first two
       hex digits; anything else: shard 0); with no owner known, to the
       endpoint that answered last, else the first;
    *  each attempt waits at most 1 s for its reply (a request that is not
       safe to send again, i.e. RETRY, waits to the end of the timeout);
       then, within the timeout: MOVED is sent to its owner at once (at
       most 5 redirects; the map is refreshed before the next call);
       TRY_AGAIN, UNAVAILABLE, a send that cannot go out and an attempt
       without a reply wait (retry_ms, else 100 ms doubling to 1 s),
       refresh the map and send again.  A reply to any attempt of the call
       is its answer.  Out of time, the call returns the last TRY_AGAIN or
       UNAVAILABLE, or the timeout;
    *  a CREATE without an idempotency key gets one (32 random hex
       characters), so it is always safe to send again;
    *  a RELEASE answered NOT_FOUND or LEASE_ENDED on a repeat, after an
       attempt without a reply, is done: the client GETs the lease and
       returns it (GT_OK);
    *  RENEW_BATCH goes out as one batch per owner; leases answered MOVED
       or TRY_AGAIN in the results go again, within the timeout; one reply
       holds every lease's result, in the order given.  The call fails
       only if no batch got an answer;
    *  LIST against a cluster-mode map asks each broker in turn (broker_id
       order) and concatenates their pages; its cursor names the broker.
    The pipelined API then uses one broker: the one that answered last
    (else the first endpoint); gt_client_recv reads from every DEALER.

    A client is not thread safe (it owns ZeroMQ sockets): use one per thread.  */
#ifndef GT_CLIENT_H_INCLUDED
#define GT_CLIENT_H_INCLUDED

#include <czmq.h>
#include "gt_msg.h"

#ifdef __cplusplus
extern "C" {
#endif

//  The timeout of blocking calls until gt_client_set_timeout, in ms (the
//  Python and Go SDKs have the same default)
#define GT_CLIENT_DEFAULT_TIMEOUT_MS    5000

typedef struct _gt_client_t gt_client_t;

//  Arguments of CREATE.  Zero-initialise, then set what you need; the
//  client's service id is the owner.  Strings are borrowed for the call.
typedef struct {
    const char *object_id;          //  required: the leased object
    gt_object_type_t object_type;   //  default GT_TYPE_UNKNOWN
    uint64_t ttl_ms;                //  0: the broker's default lease duration
    const gt_meta_t *metadata;      //  string map, or NULL
    const gt_cleanup_t *cleanup;    //  cleanup registration, or NULL
    const char *idempotency_key;    //  makes CREATE safe to retry, or NULL
} gt_create_args_t;

//  Filters and paging of LIST.  Zero-initialise; NULL / false = no filter.
typedef struct {
    const char *service_id;         //  only leases of this service, or NULL
    const char *object_id;          //  only leases of this object, or NULL
    bool has_object_type;           //  filter on object_type
    gt_object_type_t object_type;   //  the type to match
    bool has_state;                 //  filter on state
    gt_lease_state_t state;         //  the state to match
    const char *cursor;             //  cursor of the previous page, or NULL
    uint64_t limit;                 //  0: broker default (100); else 1..1000
    bool has_cleanup_status;        //  filter on the cleanup callback's state
    gt_cleanup_status_t cleanup_status;     //  PENDING, DELIVERED or DEAD
} gt_list_args_t;

//  Create a client connected to endpoint (e.g. "tcp://127.0.0.1:50051",
//  or several separated by commas: routed, see above), acting as
//  service_id (1..128 bytes; owner of the leases it creates), or NULL: its
//  requests name no service (a CURVE broker then takes the one its key is
//  bound to; GTLP.md §12).  Returns NULL if an argument is invalid or an
//  endpoint cannot be used.
gt_client_t *gt_client_new (const char *endpoint, const char *service_id);

//  Routing (see above): on by default with several endpoints.  On with
//  one endpoint, the client fetches the MAP and follows MOVED (its
//  DEALERs reconnect with ZMQ_IMMEDIATE).
void gt_client_set_routed (gt_client_t *self, bool routed);
bool gt_client_routed (gt_client_t *self);

//  Number of endpoints the client knows: those given, then those a MAP
//  or a MOVED named.
size_t gt_client_endpoint_count (gt_client_t *self);

//  The endpoint that answered last (before any answer: the first given);
//  the pipelined API uses it.
const char *gt_client_endpoint (gt_client_t *self);

//  The MAP a routed client routes by (borrowed: valid until the next
//  call), or NULL: none yet, or not routed.
const gt_msg_t *gt_client_cached_map (gt_client_t *self);

//  Talk CURVE (GTLP.md §12): server_key is the broker's public key (40 Z85
//  characters or a certificate file), client_cert the path of the client's
//  secret certificate; NULL takes GT_SERVER_KEY / GT_CLIENT_CERT.  The
//  client reconnects with them.  Returns 0 (also when neither is set:
//  plaintext), or -1 with gt_client_error saying why.
int gt_client_set_curve (gt_client_t *self, const char *server_key, const char *client_cert);

//  Destroy the client (pending requests are dropped); nulls the pointer.
void gt_client_destroy (gt_client_t **self_p);

//  Set the timeout of blocking calls in ms (> 0); default
//  GT_CLIENT_DEFAULT_TIMEOUT_MS (5000).
void gt_client_set_timeout (gt_client_t *self, int timeout_ms);
int gt_client_timeout (gt_client_t *self);

//  The service id the client acts as.
const char *gt_client_service_id (gt_client_t *self);

//  Human text of the last failed call: the broker's message, a local
//  validation error, or the timeout text.  "" after a successful call.
const char *gt_client_error (gt_client_t *self);

//  True if the last call failed because no reply came within the timeout.
bool gt_client_timed_out (gt_client_t *self);

//  The cluster fields of the last failed call's error reply (GTLP.md §14.3),
//  like gt_client_error its message.  MOVED carries shard, owner (the
//  owning broker's endpoint) and map_version; TRY_AGAIN shard and retry_ms
//  (wait about that long, then retry with a fresh map).  A field the reply
//  did not carry reads -1 (shard), NULL (owner) or 0; so after a
//  successful call.
int gt_client_error_shard (gt_client_t *self);
const char *gt_client_error_owner (gt_client_t *self);
uint64_t gt_client_error_map_version (gt_client_t *self);
uint64_t gt_client_error_retry_ms (gt_client_t *self);

//  Number of replies discarded since creation because nobody was waiting
//  for them (stale rid) or they could not be decoded.
uint64_t gt_client_discarded (gt_client_t *self);

//  ---------------------------------------------------------------------
//  Blocking calls

//  CREATE a lease owned by the client's service.
gt_code_t gt_client_create_lease (gt_client_t *self, const gt_create_args_t *args,
                                  gt_lease_info_t *lease_out);

//  RENEW a lease for ttl_ms, or for its own TTL when ttl_ms is 0.
gt_code_t gt_client_renew_lease (gt_client_t *self, const char *lease_id,
                                 uint64_t ttl_ms, gt_lease_info_t *lease_out);

//  RENEW_BATCH count leases (1..10,000); ttl_ms 0 = each lease's own TTL.
//  The per-lease outcomes are (*reply_p)->results [0 .. result_count-1].
gt_code_t gt_client_renew_leases (gt_client_t *self, const char *const *lease_ids,
                                  size_t count, uint64_t ttl_ms, gt_msg_t **reply_p);

//  RELEASE a lease; with retain, the object is kept (no reclaim/cleanup)
//  if this was its last lease.
gt_code_t gt_client_release_lease (gt_client_t *self, const char *lease_id,
                                   bool retain, gt_lease_info_t *lease_out);

//  GET a lease by id.
gt_code_t gt_client_get_lease (gt_client_t *self, const char *lease_id,
                               gt_lease_info_t *lease_out);

//  RETRY the dead-lettered cleanup callback of a lease (any service may):
//  it is delivered again, attempts counted from 1, same Idempotency-Key.
//  GT_ERR_INVALID_ARGUMENT if the lease has no dead callback.
gt_code_t gt_client_retry_cleanup (gt_client_t *self, const char *lease_id,
                                   gt_lease_info_t *lease_out);

//  LIST one page of leases; args may be NULL (everything, default page).
//  Leases are (*reply_p)->leases [0 .. lease_count-1]; (*reply_p)->cursor
//  is the next page's cursor, NULL on the last page.
gt_code_t gt_client_list_leases (gt_client_t *self, const gt_list_args_t *args,
                                 gt_msg_t **reply_p);

//  HEALTH: status, server_version, store, store_status, uptime_ms, now,
//  active_leases in the reply.
gt_code_t gt_client_health (gt_client_t *self, gt_msg_t **reply_p);

//  STATS: reply->stats [0 .. stat_count-1], sorted by name.
gt_code_t gt_client_stats (gt_client_t *self, gt_msg_t **reply_p);

//  REPLAY events with seq > after_seq; limit 0 = broker default (100).
//  Events are reply->events [0 .. event_count-1]; reply->last_seq is the
//  newest seq published.  GT_ERR_TOO_OLD if that history is gone.
gt_code_t gt_client_replay (gt_client_t *self, uint64_t after_seq,
                            uint64_t limit, gt_msg_t **reply_p);

//  REPLAY one shard's events (cluster mode, GTLP.md §14.4: the sequence is
//  per shard, and the shard's owner answers; MOVED otherwise).  shard is
//  0 .. 255; otherwise as gt_client_replay.
gt_code_t gt_client_replay_shard (gt_client_t *self, unsigned shard, uint64_t after_seq,
                                  uint64_t limit, gt_msg_t **reply_p);

//  MAP: who owns which shard (GTLP.md §14.2).  The reply has map_version,
//  cluster and brokers [0 .. broker_count-1] (each with its endpoints and
//  a bitmap of its shards); gt_msg_shard_owner (reply, shard) finds the
//  owner of a shard.  Any broker answers, in either mode.  Routed: each
//  endpoint in turn, at most 1 s each (within the timeout), and the client
//  routes by the answer from then on.
gt_code_t gt_client_shard_map (gt_client_t *self, gt_msg_t **reply_p);

//  Look up a named counter in a STATS reply; returns default_value if absent.
uint64_t gt_client_stat_value (const gt_msg_t *reply, const char *name,
                               uint64_t default_value);

//  ---------------------------------------------------------------------
//  Convenience calls of the original GarbageTruck.  Each creates a lease
//  with the client's service id; ttl_ms 0 = broker default; cleanup_url may
//  be NULL (no cleanup).  Object ids and metadata:
//
//    create_temp_file_lease (path)       TEMPORARY_FILE     object path
//                                        metadata {path}
//    create_db_row_lease (table, row_id) DATABASE_ROW       object "table:row_id"
//                                        metadata {table, row_id}
//    create_blob_lease (bucket, key)     BLOB_STORAGE       object "bucket/key"
//                                        metadata {bucket, key}
//    create_session_lease (session_id,   WEBSOCKET_SESSION  object session_id
//                          user_id)      metadata {user_id}
//    create_cache_lease (cache_key)      CACHE_ENTRY        object cache_key
//                                        metadata {cache_key}

gt_code_t gt_client_create_temp_file_lease (gt_client_t *self, const char *path,
                                            uint64_t ttl_ms, const char *cleanup_url,
                                            gt_lease_info_t *lease_out);
gt_code_t gt_client_create_db_row_lease (gt_client_t *self, const char *table,
                                         const char *row_id, uint64_t ttl_ms,
                                         const char *cleanup_url,
                                         gt_lease_info_t *lease_out);
gt_code_t gt_client_create_blob_lease (gt_client_t *self, const char *bucket,
                                       const char *key, uint64_t ttl_ms,
                                       const char *cleanup_url,
                                       gt_lease_info_t *lease_out);
gt_code_t gt_client_create_session_lease (gt_client_t *self, const char *session_id,
                                          const char *user_id, uint64_t ttl_ms,
                                          const char *cleanup_url,
                                          gt_lease_info_t *lease_out);
gt_code_t gt_client_create_cache_lease (gt_client_t *self, const char *cache_key,
                                        uint64_t ttl_ms, const char *cleanup_url,
                                        gt_lease_info_t *lease_out);

//  ---------------------------------------------------------------------
//  Pipelined API

//  Send a request without waiting.  Sets request->version to 1 and
//  request->rid to a fresh id, and returns that rid.  If service_id is NULL
//  the client's service id is sent (the message is not changed for that).
//  The caller keeps ownership of request.  Returns 0 (and sets
//  gt_client_error) if the request cannot be encoded or could not be
//  queued within the timeout.
uint64_t gt_client_send (gt_client_t *self, gt_msg_t *request);

//  Receive the next reply, waiting up to timeout_ms (-1: forever, 0: just
//  check).  Returns a reply the caller owns (gt_msg_destroy), or NULL on
//  timeout or interrupt.  Undecodable replies are discarded and counted.
gt_msg_t *gt_client_recv (gt_client_t *self, int timeout_ms);

//  The DEALER socket, to poll for replies alongside other sockets.
//  Routed: the DEALER of gt_client_endpoint (which may change).
zsock_t *gt_client_sock (gt_client_t *self);

#ifdef __cplusplus
}
#endif
#endif

/*  gt_msg.h — the GTLP/1 codec, shared by the broker and the C SDK.

    A gt_msg_t is plain data: one struct for requests, replies and events,
    with a field per wire key (GTLP.md §4-§6).  Presence of optional keys is
    a non-NULL pointer (strings, cleanup) or a has_ flag (numbers, enums).

    Ownership: a message from gt_msg_decode or gt_msg_new owns everything it
    points to, and gt_msg_destroy frees it all (strings with free()).  A
    message built on the stack may point at borrowed data: gt_msg_encode only
    reads it; never pass such a message to gt_msg_destroy.

    Encoding is canonical (GTLP.md §3): keys in table order, metadata and
    stats sorted by key (the encoder sorts; callers need not), shortest ints.
    The vectors in proto-spec/vectors/ are checked against this codec byte
    for byte by its selftest (tests/sdk/gt_msg_test.c).  */
#ifndef GT_MSG_H_INCLUDED
#define GT_MSG_H_INCLUDED

#include "gt_proto.h"
#include <msgpack.h>
#include <jansson.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef enum {
    GT_MSG_REQUEST = 0,
    GT_MSG_REPLY,
    GT_MSG_EVENT
} gt_msg_kind_t;

typedef struct {
    char *key;                      //  metadata key
    char *value;                    //  metadata value
} gt_meta_entry_t;

typedef struct {
    gt_meta_entry_t *entries;       //  array of entries (any order)
    size_t count;                   //  number of entries
} gt_meta_t;

typedef struct {
    char *url;                      //  cleanup endpoint
    char *payload;                  //  opaque payload, or NULL
    bool has_max_retries;           //  max_retries present
    uint32_t max_retries;           //  retries after the first attempt
    bool has_retry_delay;           //  retry_delay_ms present
    uint64_t retry_delay_ms;        //  base of the exponential backoff
} gt_cleanup_t;

typedef struct {
    char id [GT_LEASE_ID_LEN + 1];  //  lease id, 32 hex chars + NUL
    char *object_id;                //  leased object
    gt_object_type_t object_type;   //  kind of object
    char *service_id;               //  owning service
    gt_lease_state_t state;         //  ACTIVE, RELEASED or EXPIRED
    uint64_t fence;                 //  fencing token of the object's life
    uint64_t ttl_ms;                //  the lease's own TTL
    uint64_t created_at;            //  wall ms
    uint64_t renewed_at;            //  wall ms
    uint64_t expires_at;            //  wall ms: deadline, or end time
    uint64_t renewals;              //  successful renewals
    gt_meta_t metadata;             //  string map
    gt_cleanup_t *cleanup;          //  cleanup config, or NULL
    gt_cleanup_status_t cleanup_status;     //  its callback; GT_CLEANUP_NONE = absent
    uint64_t cleanup_attempts;      //  attempts made (with cleanup_status)
    char *cleanup_error;            //  last error, or NULL (sent only when non-empty)
} gt_lease_info_t;

typedef struct {
    char lease_id [GT_LEASE_ID_LEN + 1];    //  which lease
    gt_code_t code;                 //  per-lease outcome
    uint64_t expires_at;            //  new deadline when code == GT_OK
    char *message;                  //  error text when code != GT_OK
} gt_renew_result_t;

typedef struct {
    uint64_t seq;                   //  event sequence number (per shard in cluster mode)
    bool has_shard;                 //  shard present (cluster mode, GTLP.md §14.4)
    unsigned shard;                 //  the lease's shard, 0 .. 255
    gt_event_kind_t kind;           //  what happened
    uint64_t at;                    //  wall ms
    gt_lease_info_t lease;          //  the lease (last lease for reclaims)
    gt_reason_t reason;             //  object.reclaimed only, else NONE
} gt_event_t;

typedef struct {
    char *name;                     //  counter name
    uint64_t value;                 //  counter value
} gt_stat_t;

//  One broker of a MAP reply (GTLP.md §14.2).  Its shards are a bitmap of
//  GT_SHARD_COUNT bits, so the list is bounded and comes out ascending on
//  the wire; use gt_broker_info_owns / _add_shard / _shard_count.  Its
//  epochs are indexed by shard (only the owned shards' entries mean
//  anything): with has_epochs the encoder writes "epochs" in the order of
//  the shards, and the decoder fills them in; a broker that predates them
//  sends no "epochs" (has_epochs false), which clients accept.
typedef struct {
    char *broker_id;                //  the broker's name
    char *endpoint;                 //  where it takes requests (GC_ADVERTISE_ENDPOINT)
    char *events_endpoint;          //  where it publishes events (GC_ADVERTISE_EVENTS)
    uint8_t shards [GT_SHARD_COUNT / 8];    //  owned shards: bit (shard % 8) of byte (shard / 8)
    bool has_epochs;                //  "epochs" present
    uint64_t epochs [GT_SHARD_COUNT];       //  epoch at which it holds each owned shard
} gt_broker_info_t;

typedef struct {
    gt_msg_kind_t kind;             //  request, reply or event
    uint64_t version;               //  "v"
    uint64_t rid;                   //  request id (requests and replies)

    //  Requests
    gt_cmd_t cmd;                   //  command
    char *object_id;                //  CREATE, LIST filter
    bool has_object_type;           //  object_type present
    gt_object_type_t object_type;   //  CREATE, LIST filter
    char *service_id;               //  CREATE, RENEW*, RELEASE, LIST filter
    char *lease_id;                 //  RENEW, RELEASE, GET, RETRY
    bool has_ttl;                   //  ttl_ms present
    uint64_t ttl_ms;                //  CREATE, RENEW, RENEW_BATCH
    bool has_metadata;              //  metadata present in CREATE
    gt_meta_t metadata;             //  CREATE
    gt_cleanup_t *cleanup;          //  CREATE, or NULL
    char *idempotency_key;          //  CREATE, or NULL
    char **lease_ids;               //  RENEW_BATCH
    size_t lease_id_count;          //  RENEW_BATCH
    bool has_retain;                //  retain present
    bool retain;                    //  RELEASE
    bool has_state;                 //  state filter present
    gt_lease_state_t state;         //  LIST filter
    bool has_cleanup_status;        //  cleanup_status filter present
    gt_cleanup_status_t cleanup_status;     //  LIST filter
    char *cursor;                   //  LIST request and reply, or NULL
    bool has_limit;                 //  limit present
    uint64_t limit;                 //  LIST, REPLAY
    bool has_after_seq;             //  after_seq present
    uint64_t after_seq;             //  REPLAY
    bool has_shard;                 //  shard present
    unsigned shard;                 //  REPLAY request (0 .. 255); MOVED and TRY_AGAIN replies

    //  Replies
    gt_code_t code;                 //  GT_OK or an error
    char *message;                  //  error text, or NULL
    uint64_t *versions;             //  UNSUPPORTED_VERSION: spoken versions
    size_t version_count;           //  number of versions
    char *owner;                    //  MOVED: endpoint of the shard's owner, or NULL
    bool has_map_version;           //  map_version present
    uint64_t map_version;           //  MAP and MOVED: version of the shard map
    bool has_retry_ms;              //  retry_ms present
    uint64_t retry_ms;              //  TRY_AGAIN: retry after about this many ms
    gt_lease_info_t *lease;         //  CREATE/RENEW/RELEASE/GET, or NULL
    gt_lease_info_t *leases;        //  LIST (array; a present empty list has leases_present)
    size_t lease_count;             //  LIST
    bool leases_present;            //  "leases" key present
    gt_renew_result_t *results;     //  RENEW_BATCH
    size_t result_count;            //  RENEW_BATCH
    bool results_present;           //  "results" key present
    gt_stat_t *stats;               //  STATS
    size_t stat_count;              //  STATS
    bool stats_present;             //  "stats" key present
    gt_event_t *events;             //  REPLAY
    size_t event_count;             //  REPLAY
    bool events_present;            //  "events" key present
    bool has_last_seq;              //  last_seq present
    uint64_t last_seq;              //  REPLAY
    bool has_scanned_seq;           //  scanned_seq present
    uint64_t scanned_seq;           //  REPLAY: the history was read up to here (resume after it)
    char *status;                   //  HEALTH: SERVING or DEGRADED, or NULL
    char *server_version;           //  HEALTH "version"
    char *store;                    //  HEALTH: memory or postgres
    char *store_status;             //  HEALTH: OK or DEGRADED
    uint64_t uptime_ms;             //  HEALTH
    uint64_t now;                   //  HEALTH
    uint64_t active_leases;         //  HEALTH
    bool has_cluster;               //  cluster present
    bool cluster;                   //  MAP: true in cluster mode
    gt_broker_info_t *brokers;      //  MAP: the live brokers, in broker_id order
    size_t broker_count;            //  MAP
    bool brokers_present;           //  "brokers" key present

    //  Events
    gt_event_t event;               //  the event (kind == GT_MSG_EVENT)
} gt_msg_t;

//  Create an empty message of the given kind with version 1 (calloc'd).
gt_msg_t *gt_msg_new (gt_msg_kind_t kind);

//  Free a message and everything it owns; nulls the pointer.
void gt_msg_destroy (gt_msg_t **self_p);

//  Encode a message in canonical form, appending to buf.  Returns 0, or -1
//  if the message is not encodable (a programmer error: required field unset).
int gt_msg_encode (const gt_msg_t *self, msgpack_sbuffer *buf);

//  Encode an event like gt_msg_encode, and say where its LEASE map lies in
//  what was appended (offset from the start of the event, bytes), so that
//  the same bytes can go into a reply (gt_msg_encode_lease_reply).
int gt_msg_encode_event (const gt_msg_t *self, msgpack_sbuffer *buf, size_t *lease_offset_p,
                         size_t *lease_size_p);
//  Encode an event like gt_msg_encode_event whose LEASE map is already
//  encoded: lease [0 .. size-1], the bytes of self->event.lease as
//  gt_msg_encode_event located them in an earlier event (the caller vouches
//  that they are).  Writes the same bytes as gt_msg_encode, without packing
//  the lease again; *lease_offset_p as gt_msg_encode_event.
int gt_msg_encode_event_with_lease (const gt_msg_t *self, const void *lease, size_t size,
                                    msgpack_sbuffer *buf, size_t *lease_offset_p);
//  Append the OK reply to request rid that carries the lease whose LEASE
//  map is lease [0 .. size-1] (already encoded, by gt_msg_encode_event):
//  the same bytes gt_msg_encode writes for that reply.
int gt_msg_encode_lease_reply (uint64_t rid, const void *lease, size_t size, msgpack_sbuffer *buf);
//  Append the OK reply to request rid that carries lease and nothing else
//  (CREATE, RENEW, RELEASE, GET, RETRY): the bytes gt_msg_encode writes for
//  that reply, without going through a gt_msg_t.  -1 (buf unchanged) if
//  the lease is not encodable.
int gt_msg_encode_lease_info_reply (uint64_t rid, const gt_lease_info_t *lease, msgpack_sbuffer *buf);

//  Append the EVENT body of event (GTLP/1, the bytes gt_msg_encode writes
//  for a message of that event), without going through a gt_msg_t.  -1
//  (buf unchanged) if the event is not encodable.
int gt_msg_encode_event_body (const gt_event_t *event, msgpack_sbuffer *buf);

//  Encode into a new zframe-compatible heap buffer; caller frees *data_p.
int gt_msg_encode_alloc (const gt_msg_t *self, void **data_p, size_t *size_p);

//  Decode one body of the given kind.  On success returns GT_OK and stores
//  a new message in *msg_p.  On failure returns the error code (typically
//  GT_ERR_INVALID_ARGUMENT, GT_ERR_UNSUPPORTED_VERSION or
//  GT_ERR_UNSUPPORTED_COMMAND), writes a human message naming the offending
//  key into err, sets *msg_p to NULL, and still stores the request id into
//  *rid_p if it could be read (else 0).  rid_p may be NULL.  For requests it
//  also checks required fields and the limits of GTLP.md §8.
gt_code_t gt_msg_decode (const void *data, size_t size, gt_msg_kind_t kind,
                         gt_msg_t **msg_p, uint64_t *rid_p,
                         char *err, size_t err_size);

//  A reusable decoder, for a loop that decodes one body after another (the
//  broker's requests): the same checks and results as gt_msg_decode, but
//  the message and all its parts live in the decoder, in one msgpack zone
//  that is cleared at the next decode, so a warm decoder allocates nothing
//  for a request.  The message is borrowed: valid until the next decode or
//  the destroy, never passed to gt_msg_destroy.  Not thread-safe.
typedef struct _gt_msg_decoder_t gt_msg_decoder_t;
gt_msg_decoder_t *gt_msg_decoder_new (void);
void gt_msg_decoder_destroy (gt_msg_decoder_t **self_p);
gt_code_t gt_msg_decoder_decode (gt_msg_decoder_t *self, const void *data, size_t size,
                                 gt_msg_kind_t kind, const gt_msg_t **msg_p, uint64_t *rid_p,
                                 char *err, size_t err_size);

//  Encode a single LEASE map (used by stores and tools).
int gt_lease_info_pack (const gt_lease_info_t *lease, msgpack_packer *pk);
//  True if gt_lease_info_pack would take lease, two checks aside: the
//  id's characters (gt_lease_id_valid; its length is checked here) and
//  duplicate metadata keys (found only when the keys are sorted).  For a
//  caller that keeps a lease to encode later (the broker's events) and
//  formats its ids itself.
bool gt_lease_info_encodable (const gt_lease_info_t *lease);

//  JSON mirror of the wire map: same keys, same order, same values.
json_t *gt_msg_to_json (const gt_msg_t *self);
json_t *gt_lease_info_to_json (const gt_lease_info_t *lease);
json_t *gt_event_to_json (const gt_event_t *event);

//  Shards of a MAP broker (shard < GT_SHARD_COUNT; add asserts it).
bool gt_broker_info_owns (const gt_broker_info_t *broker, unsigned shard);
void gt_broker_info_add_shard (gt_broker_info_t *broker, unsigned shard);
size_t gt_broker_info_shard_count (const gt_broker_info_t *broker);
//  Add a shard held at epoch, and set has_epochs.
void gt_broker_info_add_shard_epoch (gt_broker_info_t *broker, unsigned shard, uint64_t epoch);

//  The broker of a MAP reply that owns shard (the first one listing it), or
//  NULL when no broker does (GTLP.md §14.2: being handed over, or unowned).
const gt_broker_info_t *gt_msg_shard_owner (const gt_msg_t *self, unsigned shard);

//  Deep-copy helpers (results own their strings).
void gt_lease_info_copy (gt_lease_info_t *dest, const gt_lease_info_t *src);
void gt_lease_info_clear (gt_lease_info_t *lease);

#ifdef __cplusplus
}
#endif
#endif

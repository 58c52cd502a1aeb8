/*  gt_proto.h — GTLP/1 constants: versions, enums, codes, limits.
    The normative text is proto-spec/GTLP.md; every name here mirrors it.  */
#ifndef GT_PROTO_H_INCLUDED
#define GT_PROTO_H_INCLUDED

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define GT_PROTOCOL_VERSION     1
#define GT_VERSION_STRING       "0.1.0"

//  Limits (GTLP.md §8)
#define GT_MAX_BODY_SIZE        (1024 * 1024)
#define GT_MAX_OBJECT_ID        512
#define GT_MAX_SERVICE_ID       128
#define GT_MAX_IDEMPOTENCY_KEY  128
#define GT_LEASE_ID_LEN         32
#define GT_MAX_META_ENTRIES     64
#define GT_MAX_META_KEY         128
#define GT_MAX_META_VALUE       1024
#define GT_MAX_META_TOTAL       16384
#define GT_MAX_URL              2048
#define GT_MAX_PAYLOAD          16384
#define GT_MAX_RETRIES_LIMIT    100
#define GT_MAX_RETRY_DELAY_MS   3600000
#define GT_MAX_BATCH            10000
#define GT_MAX_PAGE             1000
#define GT_DEFAULT_PAGE         100
#define GT_MAX_DEPTH            8

typedef enum {
    GT_CMD_NONE = 0,
    GT_CMD_CREATE,
    GT_CMD_RENEW,
    GT_CMD_RENEW_BATCH,
    GT_CMD_RELEASE,
    GT_CMD_GET,
    GT_CMD_LIST,
    GT_CMD_HEALTH,
    GT_CMD_STATS,
    GT_CMD_REPLAY,
    GT_CMD_RETRY,
    GT_CMD_MAP,                     //  cluster: who owns which shard (GTLP.md §14.2)
    GT_CMD_COUNT_
} gt_cmd_t;

typedef enum {
    GT_OK = 0,
    GT_ERR_INVALID_ARGUMENT,
    GT_ERR_NOT_FOUND,
    GT_ERR_LEASE_ENDED,
    GT_ERR_PERMISSION_DENIED,
    GT_ERR_CONFLICT,
    GT_ERR_QUOTA_EXCEEDED,
    GT_ERR_UNAVAILABLE,
    GT_ERR_UNSUPPORTED_VERSION,
    GT_ERR_UNSUPPORTED_COMMAND,
    GT_ERR_TOO_OLD,
    GT_ERR_INTERNAL,
    GT_ERR_MOVED,                   //  cluster: another broker owns the shard (GTLP.md §14.3)
    GT_ERR_TRY_AGAIN,               //  cluster: the shard has no owner now; retry later
    GT_CODE_COUNT_
} gt_code_t;

typedef enum {
    GT_TYPE_UNKNOWN = 0,
    GT_TYPE_DATABASE_ROW,
    GT_TYPE_BLOB_STORAGE,
    GT_TYPE_TEMPORARY_FILE,
    GT_TYPE_WEBSOCKET_SESSION,
    GT_TYPE_CACHE_ENTRY,
    GT_TYPE_CUSTOM,
    GT_TYPE_COUNT_
} gt_object_type_t;

typedef enum {
    GT_STATE_ACTIVE = 0,
    GT_STATE_RELEASED,
    GT_STATE_EXPIRED,
    GT_STATE_COUNT_
} gt_lease_state_t;

typedef enum {
    GT_EVENT_LEASE_CREATED = 0,
    GT_EVENT_LEASE_RENEWED,
    GT_EVENT_LEASE_RELEASED,
    GT_EVENT_LEASE_EXPIRED,
    GT_EVENT_OBJECT_RECLAIMED,
    GT_EVENT_COUNT_
} gt_event_kind_t;

typedef enum {
    GT_REASON_NONE = 0,
    GT_REASON_EXPIRED,
    GT_REASON_RELEASED,
    GT_REASON_COUNT_
} gt_reason_t;

//  Cleanup callback of a lease (LEASE cleanup_status, LIST filter).
//  NONE means the key is absent: the lease's URL was not called (yet).
typedef enum {
    GT_CLEANUP_NONE = 0,
    GT_CLEANUP_PENDING,
    GT_CLEANUP_DELIVERED,
    GT_CLEANUP_DEAD,
    GT_CLEANUP_STATUS_COUNT_
} gt_cleanup_status_t;

//  Names as on the wire ("CREATE", "NOT_FOUND", "TEMPORARY_FILE", "ACTIVE",
//  "lease.expired", "expired"); NULL for an out-of-range value.
const char *gt_cmd_name (gt_cmd_t cmd);
const char *gt_code_name (gt_code_t code);
const char *gt_object_type_name (gt_object_type_t type);
const char *gt_state_name (gt_lease_state_t state);
const char *gt_event_kind_name (gt_event_kind_t kind);
const char *gt_reason_name (gt_reason_t reason);
//  "PENDING", "DELIVERED", "DEAD"; NULL for GT_CLEANUP_NONE (not a wire name)
const char *gt_cleanup_status_name (gt_cleanup_status_t status);
//  Topic verb of an event kind: "created", "renewed", "released", "expired", "reclaimed"
const char *gt_event_verb (gt_event_kind_t kind);

//  Parse a wire name; return false when the name is unknown (output untouched).
bool gt_cmd_parse (const char *name, gt_cmd_t *cmd);
bool gt_code_parse (const char *name, gt_code_t *code);
bool gt_object_type_parse (const char *name, gt_object_type_t *type);
bool gt_state_parse (const char *name, gt_lease_state_t *state);
bool gt_event_kind_parse (const char *name, gt_event_kind_t *kind);
bool gt_reason_parse (const char *name, gt_reason_t *reason);
bool gt_cleanup_status_parse (const char *name, gt_cleanup_status_t *status);

//  Event topics start with the service, ended by U+001F (the ASCII unit
//  separator, which a service_id cannot contain), then "verb.OBJECT_TYPE":
//  "upload-service\x1fexpired.TEMPORARY_FILE".  So the prefix
//  "upload-service\x1f" reaches that service's events and no other's.
#define GT_TOPIC_SEPARATOR '\x1f'

//  Write the event topic into buf; return its length, or -1 if it does not fit.
int gt_event_topic (char *buf, size_t size, gt_event_kind_t kind,
                    gt_object_type_t type, const char *service_id);
//  Write the topic prefix of all of a service's events ("service_id\x1f");
//  return its length, or -1 if it does not fit.
int gt_service_topic (char *buf, size_t size, const char *service_id);

//  True if s is exactly 32 lowercase hex characters.
bool gt_lease_id_valid (const char *s);

//  Shards (docs/CLUSTER.md): an object's shard is FNV-1a (64 bits) of its
//  id's bytes, mod GT_SHARD_COUNT, so that every lease of an object lives
//  in one shard; a lease id's first byte (two hex digits) is its shard.
//  Vectors: proto-spec/vectors/shards/shards.json.
#define GT_SHARD_COUNT  256
uint64_t gt_fnv1a_64 (const void *data, size_t size);
unsigned gt_shard_of (const char *object_id);
//  The shard a valid lease id names.
unsigned gt_lease_id_shard (const char *lease_id);

//  True if the len bytes at s are valid UTF-8.
bool gt_utf8_valid (const char *s, size_t len);

#ifdef __cplusplus
}
#endif
#endif

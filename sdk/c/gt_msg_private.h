/*  gt_msg_private.h — tables shared by the encoder (gt_msg.c) and the decoder
    (gt_msg_decode.c) so that each request layout is written down once.
    Internal to libgarbagetruck: not installed.  */
#ifndef GT_MSG_PRIVATE_H_INCLUDED
#define GT_MSG_PRIVATE_H_INCLUDED

#include "gt_msg.h"

//  Request keys after v, rid, cmd (GTLP.md §5)
typedef enum {
    GT_REQ_OBJECT_ID = 0, GT_REQ_OBJECT_TYPE, GT_REQ_SERVICE_ID, GT_REQ_LEASE_ID,
    GT_REQ_LEASE_IDS, GT_REQ_TTL, GT_REQ_METADATA, GT_REQ_CLEANUP, GT_REQ_IDEMPOTENCY,
    GT_REQ_RETAIN, GT_REQ_STATE, GT_REQ_CLEANUP_STATUS, GT_REQ_CURSOR, GT_REQ_LIMIT,
    GT_REQ_AFTER_SEQ, GT_REQ_SHARD,
    GT_REQ_END                      //  terminates a layout; also the number of keys
} gt_req_key_t;

#define GT_REQ_LAYOUT_MAX 8

//  Wire name of each request key
extern const char *const gt_req_key_names [GT_REQ_END];
//  The decoder's lookup of a request key (for gt_msg_test): its
//  gt_req_key_t, GT_REQ_END + 0, 1, 2 for "v", "rid", "cmd", or -1
int gt_msg_request_key (const char *key, size_t key_len);
//  The decoder's lookup of a command and of an object type by name (for
//  gt_msg_test): its gt_cmd_t / gt_object_type_t, or -1
int gt_msg_command_of (const char *name, size_t size);
int gt_msg_object_type_of (const char *name, size_t size);
//  Keys of a LEASE map and of a reply, in canonical order (GTLP.md), and the
//  decoder's lookup of each (for gt_msg_test): the index of the name, or -1
#define GT_LEASE_KEY_COUNT 16
#define GT_REPLY_KEY_COUNT 26
extern const char *const gt_lease_key_names [GT_LEASE_KEY_COUNT];
extern const char *const gt_reply_key_names [GT_REPLY_KEY_COUNT];
int gt_msg_lease_key (const char *key, size_t key_len);
int gt_msg_reply_key (const char *key, size_t key_len);
//  Keys of each command in canonical order, GT_REQ_END-terminated
extern const gt_req_key_t gt_req_layout [GT_CMD_COUNT_][GT_REQ_LAYOUT_MAX];
//  Bit (1 << key) set for each key a command requires
extern const unsigned gt_req_required [GT_CMD_COUNT_];

//  A bounded reader of raw msgpack bytes, shared by the scan (gt_msg_scan.c)
//  and the one-pass reading of bodies (gt_msg_decode.c)
typedef struct {
    const uint8_t *pos;             //  next byte to read
    const uint8_t *end;             //  one past the last byte
} gt_msg_reader_t;

//  An unsigned big-endian number of width bytes; false if fewer are left
static inline bool
gt_msg_reader_be (gt_msg_reader_t *reader, size_t width, uint64_t *value)
{
    if ((size_t) (reader->end - reader->pos) < width)
        return false;
    uint64_t result = 0;
    for (size_t index = 0; index < width; index++)
        result = (result << 8) | reader->pos [index];
    reader->pos += width;
    *value = result;
    return true;
}

//  Pass 1 of the decoder (gt_msg_scan.c): a check of the raw bytes without
//  recursion or allocation; see gt_msg_decode.c.
typedef struct {
    const char *error;              //  first structural problem, or NULL
    bool have_rid;                  //  a readable non-negative "rid" was found
    uint64_t rid;                   //  its value
} gt_msg_scan_t;

void gt_msg_scan (const uint8_t *data, size_t size, gt_msg_scan_t *scan);

//  True if the decoder reads the body in one pass (for gt_msg_test: the
//  vectors and the nested cases must not all fall back to the two passes)
bool gt_msg_one_pass_reads (const void *data, size_t size);
//  What the one pass makes of a request's top-level map (for gt_msg_test):
//  1 read straight into its slots, 0 a known key twice (the tree's path
//  judges it), -1 unreadable in one pass (the two passes judge it)
int gt_msg_request_slots_read (const void *data, size_t size);

//  gt_msg_decode without its one-pass reading: both passes
//  for every body, the reference the one-pass reading must agree with
//  (fuzz_codec, gt_msg_test)
gt_code_t gt_msg_decode_two_pass (const void *data, size_t size, gt_msg_kind_t kind,
                                  gt_msg_t **msg_p, uint64_t *rid_p, char *err, size_t err_size);

#endif

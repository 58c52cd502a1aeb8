/*  gt_msg_test_reject.c — part of gt_msg_test: what the decoder must refuse
    (with the right code, the rid still reported, and an error naming the key)
    and the non-canonical input it must accept.  Bodies are made by taking a
    valid encoding and replacing one key's value (s_mutate).  */
#undef NDEBUG                       //  the checks run in release builds too
#include "gt_msg_test.h"
#include <assert.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define LEASE_A "0123456789abcdef0123456789abcdef"

//  A new buffer holding src with the value at path ("key" or "key.sub")
//  replaced by what write packs (or added, if the key is absent; removed
//  when write is NULL).
typedef void (s_writer_fn) (msgpack_packer *pk);

static void
s_pack_replaced (msgpack_packer *pk, const msgpack_object *map, const char *path, s_writer_fn *write)
{
    const char *dot = strchr (path, '.');
    size_t key_len = dot? (size_t) (dot - path): strlen (path);
    bool found = false;
    uint32_t count = map->via.map.size;
    for (uint32_t index = 0; index < map->via.map.size; index++) {
        const msgpack_object *key = &map->via.map.ptr [index].key;
        if (key->via.str.size == key_len && memcmp (key->via.str.ptr, path, key_len) == 0)
            found = true;
    }
    if (!found && write)
        count++;
    if (found && !write && !dot)
        count--;
    msgpack_pack_map (pk, count);
    for (uint32_t index = 0; index < map->via.map.size; index++) {
        const msgpack_object_kv *kv = &map->via.map.ptr [index];
        bool match = kv->key.via.str.size == key_len
                  && memcmp (kv->key.via.str.ptr, path, key_len) == 0;
        if (match && !write && !dot)
            continue;
        msgpack_pack_object (pk, kv->key);
        if (match && dot)
            s_pack_replaced (pk, &kv->val, dot + 1, write);
        else
        if (match)
            write (pk);
        else
            msgpack_pack_object (pk, kv->val);
    }
    if (!found && write) {
        msgpack_pack_str (pk, key_len);
        msgpack_pack_str_body (pk, path, key_len);
        write (pk);
    }
}

static msgpack_sbuffer
s_mutate (const msgpack_sbuffer *src, const char *path, s_writer_fn *write)
{
    msgpack_unpacked unpacked;
    msgpack_unpacked_init (&unpacked);
    size_t offset = 0;
    int rc = msgpack_unpack_next (&unpacked, src->data, src->size, &offset);
    assert (rc == MSGPACK_UNPACK_SUCCESS);
    msgpack_sbuffer buf;
    msgpack_sbuffer_init (&buf);
    msgpack_packer pk;
    msgpack_packer_init (&pk, &buf, msgpack_sbuffer_write);
    s_pack_replaced (&pk, &unpacked.data, path, write);
    msgpack_unpacked_destroy (&unpacked);
    return buf;
}

static void s_write_nil (msgpack_packer *pk) { msgpack_pack_nil (pk); }
static void s_write_str (msgpack_packer *pk) { msgpack_pack_str (pk, 1); msgpack_pack_str_body (pk, "x", 1); }
static void s_write_int (msgpack_packer *pk) { msgpack_pack_uint64 (pk, 5); }
static void s_write_negative (msgpack_packer *pk) { msgpack_pack_int64 (pk, -5); }
static void s_write_float (msgpack_packer *pk) { msgpack_pack_double (pk, 5.0); }
static void s_write_true (msgpack_packer *pk) { msgpack_pack_true (pk); }
static void s_write_map (msgpack_packer *pk) { msgpack_pack_map (pk, 0); }
static void s_write_array (msgpack_packer *pk) { msgpack_pack_array (pk, 0); }
static void s_write_bin (msgpack_packer *pk) { msgpack_pack_bin (pk, 1); msgpack_pack_bin_body (pk, "x", 1); }
static void s_write_v2 (msgpack_packer *pk) { msgpack_pack_uint64 (pk, 2); }
static void s_write_256 (msgpack_packer *pk) { msgpack_pack_uint64 (pk, 256); }
static void s_write_zero (msgpack_packer *pk) { msgpack_pack_uint64 (pk, 0); }
static void s_write_bad_utf8 (msgpack_packer *pk) { msgpack_pack_str (pk, 2); msgpack_pack_str_body (pk, "\xc0\xaf", 2); }
static void s_write_nul (msgpack_packer *pk) { msgpack_pack_str (pk, 3); msgpack_pack_str_body (pk, "a\0b", 3); }
static void s_write_unit_sep (msgpack_packer *pk) { msgpack_pack_str (pk, 3); msgpack_pack_str_body (pk, "a\x1f" "b", 3); }
static void s_write_newline (msgpack_packer *pk) { msgpack_pack_str (pk, 3); msgpack_pack_str_body (pk, "a\nb", 3); }
//  Control characters the decoder reads eight bytes at a time: U+007F in
//  the first eight bytes, U+0001 in the second eight, U+001B after them
static void s_write_delete (msgpack_packer *pk) { msgpack_pack_str (pk, 15); msgpack_pack_str_body (pk, "servic\x7f-service", 15); }
static void s_write_second_word (msgpack_packer *pk) { msgpack_pack_str (pk, 17); msgpack_pack_str_body (pk, "service-serv\x01" "ce-x", 17); }
static void s_write_tail (msgpack_packer *pk) { msgpack_pack_str (pk, 17); msgpack_pack_str_body (pk, "service-service-\x1b", 17); }
static void s_write_unknown_cmd (msgpack_packer *pk) { msgpack_pack_str (pk, 7); msgpack_pack_str_body (pk, "COMPACT", 7); }
static void s_write_ftp (msgpack_packer *pk) { msgpack_pack_str (pk, 12); msgpack_pack_str_body (pk, "ftp://h/path", 12); }
static void s_write_ids_bad (msgpack_packer *pk)
{
    msgpack_pack_array (pk, 2);
    msgpack_pack_str (pk, 32); msgpack_pack_str_body (pk, LEASE_A, 32);
    msgpack_pack_str (pk, 32); msgpack_pack_str_body (pk, "0123456789ABCDEF0123456789abcdef", 32);
}
static void s_write_meta_int (msgpack_packer *pk)
{
    msgpack_pack_map (pk, 1);
    msgpack_pack_str (pk, 1); msgpack_pack_str_body (pk, "k", 1);
    msgpack_pack_uint64 (pk, 1);
}
static void s_write_meta_dup (msgpack_packer *pk)
{
    msgpack_pack_map (pk, 2);
    for (int index = 0; index < 2; index++) {
        msgpack_pack_str (pk, 1); msgpack_pack_str_body (pk, "k", 1);
        msgpack_pack_str (pk, 1); msgpack_pack_str_body (pk, "v", 1);
    }
}
//  brokers of a MAP reply, the second one's shards wrong in various ways
static void s_pack_broker (msgpack_packer *pk, const char *id, int keys)
{
    msgpack_pack_map (pk, (size_t) keys);
    const char *names [] = { "broker_id", "endpoint", "events_endpoint" };
    for (int index = 0; index < 3 && index < keys; index++) {
        msgpack_pack_str (pk, strlen (names [index])); msgpack_pack_str_body (pk, names [index], strlen (names [index]));
        msgpack_pack_str (pk, strlen (id)); msgpack_pack_str_body (pk, id, strlen (id));
    }
    if (keys >= 4) {
        msgpack_pack_str (pk, 6); msgpack_pack_str_body (pk, "shards", 6);
    }
}
static void s_write_brokers (msgpack_packer *pk, const uint64_t *shards, size_t count)
{
    msgpack_pack_array (pk, 2);
    s_pack_broker (pk, "a", 4);
    msgpack_pack_array (pk, 1);
    msgpack_pack_uint64 (pk, 0);
    s_pack_broker (pk, "b", 4);
    msgpack_pack_array (pk, count);
    for (size_t index = 0; index < count; index++)
        msgpack_pack_uint64 (pk, shards [index]);
}
static void s_write_brokers_256 (msgpack_packer *pk) { s_write_brokers (pk, (uint64_t []) { 256 }, 1); }
static void s_write_brokers_unsorted (msgpack_packer *pk) { s_write_brokers (pk, (uint64_t []) { 1, 9, 4 }, 3); }
static void s_write_brokers_twice (msgpack_packer *pk) { s_write_brokers (pk, (uint64_t []) { 1, 1 }, 2); }
static void s_write_brokers_str (msgpack_packer *pk)
{
    msgpack_pack_array (pk, 1);
    s_pack_broker (pk, "a", 4);
    msgpack_pack_str (pk, 1); msgpack_pack_str_body (pk, "x", 1);
}
//  One broker with shards 0 .. shard_count - 1 and the given epochs value
static void s_write_broker_epochs (msgpack_packer *pk, size_t shard_count, void (*epochs) (msgpack_packer *))
{
    msgpack_pack_array (pk, 1);
    s_pack_broker (pk, "a", 5);
    msgpack_pack_array (pk, shard_count);
    for (size_t index = 0; index < shard_count; index++)
        msgpack_pack_uint64 (pk, index);
    msgpack_pack_str (pk, 6); msgpack_pack_str_body (pk, "epochs", 6);
    epochs (pk);
}
static void s_pack_epochs_3 (msgpack_packer *pk)
{
    msgpack_pack_array (pk, 3);
    for (int index = 0; index < 3; index++)
        msgpack_pack_uint64 (pk, 7);
}
static void s_pack_epochs_negative (msgpack_packer *pk)
{
    msgpack_pack_array (pk, 2);
    msgpack_pack_uint64 (pk, 1);
    msgpack_pack_int64 (pk, -1);
}
static void s_pack_epochs_str (msgpack_packer *pk) { msgpack_pack_str (pk, 1); msgpack_pack_str_body (pk, "x", 1); }
static void s_write_epochs_short (msgpack_packer *pk) { s_write_broker_epochs (pk, 4, s_pack_epochs_3); }
static void s_write_epochs_long (msgpack_packer *pk) { s_write_broker_epochs (pk, 1, s_pack_epochs_3); }
static void s_write_epochs_none (msgpack_packer *pk) { s_write_broker_epochs (pk, 0, s_pack_epochs_3); }
static void s_write_epochs_negative (msgpack_packer *pk) { s_write_broker_epochs (pk, 2, s_pack_epochs_negative); }
static void s_write_epochs_str (msgpack_packer *pk) { s_write_broker_epochs (pk, 2, s_pack_epochs_str); }
static void s_write_brokers_short (msgpack_packer *pk)
{
    msgpack_pack_array (pk, 1);
    s_pack_broker (pk, "a", 2);     //  no events_endpoint, no shards
}
//  Unknown-key values of every msgpack type: all must be ignored
static void s_write_anything (msgpack_packer *pk)
{
    msgpack_pack_array (pk, 9);
    msgpack_pack_nil (pk);
    msgpack_pack_int64 (pk, -1);
    msgpack_pack_double (pk, 1.5);
    msgpack_pack_float (pk, 2.5f);
    msgpack_pack_bin (pk, 2); msgpack_pack_bin_body (pk, "\x00\xff", 2);
    msgpack_pack_ext (pk, 3, 7); msgpack_pack_ext_body (pk, "abc", 3);
    msgpack_pack_ext (pk, 1, 7); msgpack_pack_ext_body (pk, "a", 1);
    msgpack_pack_map (pk, 1); msgpack_pack_uint64 (pk, 1); msgpack_pack_nil (pk);  //  int key: not ours
    msgpack_pack_str (pk, 2); msgpack_pack_str_body (pk, "\xc0\xaf", 2);         //  bad UTF-8: not ours
}


//  ---------------------------------------------------------------------------

typedef struct {
    int base;                       //  index into the valid bodies
    const char *path;               //  key to replace ("cleanup.url")
    s_writer_fn *write;             //  new value, NULL to remove the key
    gt_code_t code;                 //  expected code
    uint64_t rid;                   //  expected reported rid
    const char *err;                //  expected part of the message
} s_mutation_t;

enum { B_CREATE, B_RENEW, B_BATCH, B_RELEASE, B_LIST, B_REPLAY, B_GET, B_COUNT };

static void
s_test_rejections (void)
{
    //  Valid bodies to break, rid = index + 1
    gt_meta_entry_t meta [] = { { "a", "1" } };
    gt_cleanup_t cleanup = { "http://127.0.0.1/c", "p", true, 1, true, 10 };
    char *ids [] = { LEASE_A };
    msgpack_sbuffer bases [B_COUNT];
    gt_cmd_t cmds [B_COUNT] = { GT_CMD_CREATE, GT_CMD_RENEW, GT_CMD_RENEW_BATCH, GT_CMD_RELEASE,
                                GT_CMD_LIST, GT_CMD_REPLAY, GT_CMD_GET };
    for (int index = 0; index < B_COUNT; index++) {
        gt_msg_t msg;
        gt_msg_test_init (&msg, GT_MSG_REQUEST, (uint64_t) index + 1);
        msg.cmd = cmds [index];
        msg.object_id = "o";
        msg.service_id = "s";
        msg.lease_id = LEASE_A;
        msg.lease_ids = ids;
        msg.lease_id_count = 1;
        msg.has_metadata = true;
        msg.metadata.entries = meta;
        msg.metadata.count = 1;
        msg.cleanup = &cleanup;
        msg.has_retain = msg.has_state = msg.has_limit = msg.has_after_seq = true;
        msg.limit = 10;
        bases [index] = gt_msg_test_encode (&msg);
        gt_msg_t *decoded = gt_msg_test_expect (bases [index].data, bases [index].size,
                                      GT_MSG_REQUEST, GT_OK, msg.rid, NULL);
        gt_msg_destroy (&decoded);
    }
    const s_mutation_t mutations [] = {
        { B_CREATE, "ttl_ms", s_write_str, GT_ERR_INVALID_ARGUMENT, 1, "ttl_ms: expected unsigned integer" },
        { B_CREATE, "ttl_ms", s_write_negative, GT_ERR_INVALID_ARGUMENT, 1, "ttl_ms: expected unsigned integer" },
        { B_CREATE, "ttl_ms", s_write_float, GT_ERR_INVALID_ARGUMENT, 1, "ttl_ms: expected unsigned integer" },
        { B_CREATE, "object_id", s_write_int, GT_ERR_INVALID_ARGUMENT, 1, "object_id: expected string" },
        { B_CREATE, "object_id", s_write_bin, GT_ERR_INVALID_ARGUMENT, 1, "object_id: expected string" },
        { B_CREATE, "object_id", s_write_bad_utf8, GT_ERR_INVALID_ARGUMENT, 1, "object_id: invalid UTF-8" },
        { B_CREATE, "object_id", s_write_nul, GT_ERR_INVALID_ARGUMENT, 1, "object_id: contains a NUL" },
        { B_CREATE, "object_id", NULL, GT_ERR_INVALID_ARGUMENT, 1, "object_id: required" },
        //  service_id may be left out (CURVE: the caller's key names it);
        //  a broker without CURVE requires it (GTLP.md §12)
        { B_CREATE, "service_id", NULL, GT_OK, 1, NULL },
        { B_CREATE, "service_id", s_write_unit_sep, GT_ERR_INVALID_ARGUMENT, 1, "service_id: contains a control character" },
        { B_CREATE, "service_id", s_write_newline, GT_ERR_INVALID_ARGUMENT, 1, "service_id: contains a control character" },
        { B_CREATE, "service_id", s_write_nul, GT_ERR_INVALID_ARGUMENT, 1, "service_id: contains a NUL" },
        { B_CREATE, "service_id", s_write_delete, GT_ERR_INVALID_ARGUMENT, 1, "service_id: contains a control character" },
        { B_CREATE, "service_id", s_write_second_word, GT_ERR_INVALID_ARGUMENT, 1, "service_id: contains a control character" },
        { B_CREATE, "service_id", s_write_tail, GT_ERR_INVALID_ARGUMENT, 1, "service_id: contains a control character" },
        { B_CREATE, "service_id", s_write_nil, GT_ERR_INVALID_ARGUMENT, 1, "service_id: expected string" },
        { B_CREATE, "object_type", s_write_str, GT_ERR_INVALID_ARGUMENT, 1, "object_type: unknown object type 'x'" },
        { B_CREATE, "object_type", s_write_int, GT_ERR_INVALID_ARGUMENT, 1, "object_type: expected string" },
        { B_CREATE, "metadata", s_write_array, GT_ERR_INVALID_ARGUMENT, 1, "metadata: expected map" },
        { B_CREATE, "metadata", s_write_meta_int, GT_ERR_INVALID_ARGUMENT, 1, "metadata[0].value: expected string" },
        { B_CREATE, "metadata", s_write_meta_dup, GT_ERR_INVALID_ARGUMENT, 1, "metadata: duplicate key" },
        { B_CREATE, "cleanup", s_write_str, GT_ERR_INVALID_ARGUMENT, 1, "cleanup: expected map" },
        { B_CREATE, "cleanup.url", s_write_ftp, GT_ERR_INVALID_ARGUMENT, 1, "cleanup.url: expected an http" },
        { B_CREATE, "cleanup.url", NULL, GT_ERR_INVALID_ARGUMENT, 1, "cleanup.url: required" },
        { B_CREATE, "cleanup.url", s_write_bad_utf8, GT_ERR_INVALID_ARGUMENT, 1, "cleanup.url: invalid UTF-8" },
        { B_CREATE, "cleanup.max_retries", s_write_str, GT_ERR_INVALID_ARGUMENT, 1, "cleanup.max_retries: expected unsigned" },
        { B_CREATE, "cleanup.payload", s_write_map, GT_ERR_INVALID_ARGUMENT, 1, "cleanup.payload: expected string" },
        { B_CREATE, "idempotency_key", s_write_true, GT_ERR_INVALID_ARGUMENT, 1, "idempotency_key: expected string" },
        { B_CREATE, "v", s_write_v2, GT_ERR_UNSUPPORTED_VERSION, 1, "v: version 2 not supported" },
        { B_CREATE, "v", s_write_str, GT_ERR_INVALID_ARGUMENT, 1, "v: expected unsigned integer" },
        { B_CREATE, "v", NULL, GT_ERR_INVALID_ARGUMENT, 1, "v: required" },
        { B_CREATE, "rid", s_write_zero, GT_ERR_INVALID_ARGUMENT, 0, "rid: 0 is reserved" },
        { B_CREATE, "rid", s_write_str, GT_ERR_INVALID_ARGUMENT, 0, "rid: expected unsigned integer" },
        { B_CREATE, "rid", NULL, GT_ERR_INVALID_ARGUMENT, 0, "rid: required" },
        { B_CREATE, "cmd", s_write_unknown_cmd, GT_ERR_UNSUPPORTED_COMMAND, 1, "cmd: unknown command 'COMPACT'" },
        { B_CREATE, "cmd", s_write_int, GT_ERR_INVALID_ARGUMENT, 1, "cmd: expected string" },
        { B_CREATE, "cmd", NULL, GT_ERR_INVALID_ARGUMENT, 1, "cmd: required" },
        { B_RENEW, "lease_id", s_write_str, GT_ERR_INVALID_ARGUMENT, 2, "lease_id: expected 32 lowercase hex" },
        { B_RENEW, "lease_id", s_write_nil, GT_ERR_INVALID_ARGUMENT, 2, "lease_id: expected string" },
        { B_RENEW, "service_id", NULL, GT_OK, 2, NULL },
        { B_BATCH, "lease_ids", s_write_ids_bad, GT_ERR_INVALID_ARGUMENT, 3, "lease_ids[1]: expected 32 lowercase hex" },
        { B_BATCH, "lease_ids", s_write_array, GT_ERR_INVALID_ARGUMENT, 3, "lease_ids: must have 1 .. 10000 entries" },
        { B_BATCH, "lease_ids", s_write_map, GT_ERR_INVALID_ARGUMENT, 3, "lease_ids: expected array" },
        { B_BATCH, "lease_ids", NULL, GT_ERR_INVALID_ARGUMENT, 3, "lease_ids: required" },
        { B_RELEASE, "retain", s_write_str, GT_ERR_INVALID_ARGUMENT, 4, "retain: expected boolean" },
        { B_LIST, "limit", s_write_zero, GT_ERR_INVALID_ARGUMENT, 5, "limit: must be 1 .. 1000" },
        { B_LIST, "state", s_write_int, GT_ERR_INVALID_ARGUMENT, 5, "state: expected string" },
        { B_LIST, "state", s_write_str, GT_ERR_INVALID_ARGUMENT, 5, "state: unknown state 'x'" },
        { B_LIST, "cursor", s_write_map, GT_ERR_INVALID_ARGUMENT, 5, "cursor: expected string" },
        { B_REPLAY, "after_seq", NULL, GT_ERR_INVALID_ARGUMENT, 6, "after_seq: required" },
        { B_REPLAY, "after_seq", s_write_true, GT_ERR_INVALID_ARGUMENT, 6, "after_seq: expected unsigned" },
        { B_REPLAY, "limit", s_write_negative, GT_ERR_INVALID_ARGUMENT, 6, "limit: expected unsigned" },
        { B_REPLAY, "shard", s_write_256, GT_ERR_INVALID_ARGUMENT, 6, "shard: 256 is out of range (at most 255)" },
        { B_REPLAY, "shard", s_write_str, GT_ERR_INVALID_ARGUMENT, 6, "shard: expected unsigned" },
        { B_LIST, "shard", s_write_256, GT_OK, 5, NULL },
        //  Keys a command does not use are unknown to it, hence ignored
        { B_GET, "ttl_ms", s_write_str, GT_OK, 7, NULL },
        { B_GET, "service_id", s_write_anything, GT_OK, 7, NULL },
        { B_CREATE, "future_key", s_write_anything, GT_OK, 1, NULL },
        { B_CREATE, "cleanup.future_key", s_write_anything, GT_OK, 1, NULL },
    };
    for (size_t index = 0; index < sizeof (mutations) / sizeof (mutations [0]); index++) {
        const s_mutation_t *mutation = &mutations [index];
        msgpack_sbuffer buf = s_mutate (&bases [mutation->base], mutation->path, mutation->write);
        gt_msg_t *msg = gt_msg_test_expect (buf.data, buf.size, GT_MSG_REQUEST, mutation->code,
                                  mutation->rid, mutation->err);
        if (msg && !mutation->write) {
            //  An optional key left out stays out
            assert (!msg->service_id);
            gt_msg_destroy (&msg);
        }
        if (msg) {
            //  Unknown keys vanish on re-encoding: back to the canonical base
            msgpack_sbuffer again = gt_msg_test_encode (msg);
            const msgpack_sbuffer *base = &bases [mutation->base];
            assert (again.size == base->size && memcmp (again.data, base->data, base->size) == 0);
            msgpack_sbuffer_destroy (&again);
            gt_msg_destroy (&msg);
        }
        msgpack_sbuffer_destroy (&buf);
    }

    //  Structure
    gt_msg_test_expect ("", 0, GT_MSG_REQUEST, GT_ERR_INVALID_ARGUMENT, 0, "body: empty");
    gt_msg_test_expect ("\xc1", 1, GT_MSG_REQUEST, GT_ERR_INVALID_ARGUMENT, 0, "body:");
    gt_msg_test_expect ("garbage!", 8, GT_MSG_REQUEST, GT_ERR_INVALID_ARGUMENT, 0, "not a msgpack map");
    gt_msg_test_expect ("\x93\x01\x02\x03", 4, GT_MSG_REQUEST, GT_ERR_INVALID_ARGUMENT, 0, "not a msgpack map");
    gt_msg_test_expect ("\x93\x01\x02\x03", 4, GT_MSG_REPLY, GT_ERR_INVALID_ARGUMENT, 0, "not a msgpack map");
    const msgpack_sbuffer *create = &bases [B_CREATE];
    gt_msg_test_expect (create->data, create->size - 1, GT_MSG_REQUEST, GT_ERR_INVALID_ARGUMENT, 1, "truncated");
    gt_msg_test_expect (create->data, 3, GT_MSG_REQUEST, GT_ERR_INVALID_ARGUMENT, 0, "truncated");
    char trailing [512];
    memcpy (trailing, create->data, create->size);
    trailing [create->size] = (char) 0xc0;
    gt_msg_test_expect (trailing, create->size + 1, GT_MSG_REQUEST, GT_ERR_INVALID_ARGUMENT, 1, "trailing bytes");
    //  A 17-byte body claiming 4 billion entries: rejected before anything is allocated
    gt_msg_test_expect ("\x83\xa1v\x01\xa3rid\x05\xa1x\xdd\xff\xff\xff\xff", 15,
              GT_MSG_REQUEST, GT_ERR_INVALID_ARGUMENT, 5, "truncated");
    gt_msg_test_expect ("\xdf\xff\xff\xff\xff", 5, GT_MSG_REQUEST, GT_ERR_INVALID_ARGUMENT, 0, "truncated");
    //  Non-string key; duplicate key
    gt_msg_test_expect ("\x84\x01\x02\xa1v\x01\xa3rid\x09\xa3""cmd\xa6HEALTH", 22,
              GT_MSG_REQUEST, GT_ERR_INVALID_ARGUMENT, 9, "map key is not a string");
    gt_msg_test_expect ("\x84\xa1v\x01\xa3rid\x03\xa3""cmd\xa6HEALTH\xa3rid\x04", 25,
              GT_MSG_REQUEST, GT_ERR_INVALID_ARGUMENT, 3, "rid: duplicate key");

    //  Depth: the top map is level 1, so 7 nested arrays are fine and 8 are not
    for (int nested = 7; nested <= 8; nested++) {
        char body [64] = "\x84\xa1v\x01\xa3rid\x0b\xa3""cmd\xa6HEALTH\xa1x";
        size_t size = 22;
        for (int level = 0; level < nested; level++)
            body [size++] = (char) 0x91;
        body [size++] = (char) 0xc0;
        gt_msg_t *msg = gt_msg_test_expect (body, size, GT_MSG_REQUEST,
                                  nested == 7? GT_OK: GT_ERR_INVALID_ARGUMENT, 11,
                                  nested == 7? NULL: "nested deeper than 8");
        gt_msg_destroy (&msg);
    }
    //  A depth bomb of 100,000 levels before the rid: no recursion, rid found
    size_t bomb_size = 100000;
    char *bomb = (char *) malloc (bomb_size + 32);
    assert (bomb);
    memcpy (bomb, "\x84\xa1x", 3);
    memset (bomb + 3, 0x91, bomb_size);
    size_t size = 3 + bomb_size;
    bomb [size++] = (char) 0xc0;
    memcpy (bomb + size, "\xa1v\x01\xa3rid\x4d\xa3""cmd\xa6HEALTH", 19);
    size += 19;
    gt_msg_test_expect (bomb, size, GT_MSG_REQUEST, GT_ERR_INVALID_ARGUMENT, 77, "nested deeper than 8");
    free (bomb);

    for (int index = 0; index < B_COUNT; index++)
        msgpack_sbuffer_destroy (&bases [index]);
}

//  Values past the §8 limits, built with the (permissive) encoder
static void
s_expect_request (const gt_msg_t *msg, gt_code_t code, const char *err)
{
    msgpack_sbuffer buf = gt_msg_test_encode (msg);
    gt_msg_t *decoded = gt_msg_test_expect (buf.data, buf.size, GT_MSG_REQUEST, code, msg->rid, err);
    gt_msg_destroy (&decoded);
    msgpack_sbuffer_destroy (&buf);
}

static void
s_test_limits (void)
{
    char *text = (char *) malloc (20000);
    assert (text);
    memset (text, 'a', 19999);
    text [19999] = '\0';
#define S_TEXT(n) (text + 19999 - (n))     //  a string of exactly n chars

    gt_msg_t msg;
    gt_msg_test_init (&msg, GT_MSG_REQUEST, 9);
    msg.cmd = GT_CMD_CREATE;
    msg.object_id = S_TEXT (512);
    msg.service_id = S_TEXT (128);
    msg.idempotency_key = S_TEXT (128);
    s_expect_request (&msg, GT_OK, NULL);
    msg.object_id = S_TEXT (513);
    s_expect_request (&msg, GT_ERR_INVALID_ARGUMENT, "object_id: length must be 1 .. 512 bytes");
    msg.object_id = "";
    s_expect_request (&msg, GT_ERR_INVALID_ARGUMENT, "object_id: length must be 1 .. 512 bytes");
    msg.object_id = "o";
    msg.service_id = S_TEXT (129);
    s_expect_request (&msg, GT_ERR_INVALID_ARGUMENT, "service_id: length must be 1 .. 128 bytes");
    msg.service_id = "s";
    msg.idempotency_key = S_TEXT (129);
    s_expect_request (&msg, GT_ERR_INVALID_ARGUMENT, "idempotency_key: length");
    msg.idempotency_key = NULL;
    msg.object_id = "caf\xc3";      //  truncated UTF-8
    s_expect_request (&msg, GT_ERR_INVALID_ARGUMENT, "object_id: invalid UTF-8");
    msg.object_id = "o";

    //  Metadata: 64 entries fine, 65 not; key and value sizes; total size
    gt_meta_entry_t entries [65];
    char keys [65][8];
    for (int index = 0; index < 65; index++) {
        snprintf (keys [index], sizeof (keys [index]), "k%02d", 64 - index);   //  unsorted
        entries [index].key = keys [index];
        entries [index].value = "v";
    }
    msg.has_metadata = true;
    msg.metadata.entries = entries;
    msg.metadata.count = 64;
    s_expect_request (&msg, GT_OK, NULL);
    msg.metadata.count = 65;        //  also exercises sorting on the heap
    s_expect_request (&msg, GT_ERR_INVALID_ARGUMENT, "metadata: more than 64 entries");
    msg.metadata.count = 1;
    entries [0].key = S_TEXT (129);
    s_expect_request (&msg, GT_ERR_INVALID_ARGUMENT, "metadata[0].key: length must be 1 .. 128");
    entries [0].key = "";
    s_expect_request (&msg, GT_ERR_INVALID_ARGUMENT, "metadata[0].key: length must be 1 .. 128");
    entries [0].key = "k";
    entries [0].value = S_TEXT (1025);
    s_expect_request (&msg, GT_ERR_INVALID_ARGUMENT, "metadata[0].value: longer than 1024 bytes");
    for (int index = 0; index < 17; index++)
        entries [index].value = S_TEXT (1000);
    entries [0].key = keys [0];
    msg.metadata.count = 16;
    s_expect_request (&msg, GT_OK, NULL);
    msg.metadata.count = 17;
    s_expect_request (&msg, GT_ERR_INVALID_ARGUMENT, "metadata: keys and values exceed 16384 bytes");
    msg.has_metadata = false;

    //  Cleanup
    char url [2100];
    memcpy (url, "http://", 7);
    memset (url + 7, 'h', sizeof (url) - 7);
    url [2048] = '\0';
    gt_cleanup_t cleanup = { url, S_TEXT (16384), true, 100, true, 3600000 };
    msg.cleanup = &cleanup;
    s_expect_request (&msg, GT_OK, NULL);
    url [2048] = 'h';
    url [2049] = '\0';
    s_expect_request (&msg, GT_ERR_INVALID_ARGUMENT, "cleanup.url: longer than 2048 bytes");
    cleanup.url = "http://";
    s_expect_request (&msg, GT_ERR_INVALID_ARGUMENT, "cleanup.url: expected an http");
    cleanup.url = "https://h";
    cleanup.payload = S_TEXT (16385);
    s_expect_request (&msg, GT_ERR_INVALID_ARGUMENT, "cleanup.payload: longer than 16384 bytes");
    cleanup.payload = NULL;
    cleanup.max_retries = 101;
    s_expect_request (&msg, GT_ERR_INVALID_ARGUMENT, "cleanup.max_retries: 101 is out of range");
    cleanup.max_retries = 0;
    cleanup.retry_delay_ms = 3600001;
    s_expect_request (&msg, GT_ERR_INVALID_ARGUMENT, "cleanup.retry_delay_ms: 3600001 is out of range");
    msg.cleanup = NULL;

    //  Batches: 10,000 ids fine, 10,001 not
    char **ids = (char **) malloc (10001 * sizeof (char *));
    assert (ids);
    for (int index = 0; index < 10001; index++)
        ids [index] = LEASE_A;
    msg.cmd = GT_CMD_RENEW_BATCH;
    msg.lease_ids = ids;
    msg.lease_id_count = 10000;
    s_expect_request (&msg, GT_OK, NULL);
    msg.lease_id_count = 10001;
    s_expect_request (&msg, GT_ERR_INVALID_ARGUMENT, "lease_ids: must have 1 .. 10000 entries");
    free (ids);

    //  Page limits
    msg.cmd = GT_CMD_LIST;
    msg.has_limit = true;
    msg.limit = 1000;
    s_expect_request (&msg, GT_OK, NULL);
    msg.limit = 1001;
    s_expect_request (&msg, GT_ERR_INVALID_ARGUMENT, "limit: must be 1 .. 1000");
    msg.cmd = GT_CMD_REPLAY;
    msg.has_after_seq = true;
    msg.limit = 0;
    s_expect_request (&msg, GT_ERR_INVALID_ARGUMENT, "limit: must be 1 .. 1000");
    msg.cmd = GT_CMD_GET;
    msg.lease_id = "0123456789abcdef0123456789ABCDEF";
    s_expect_request (&msg, GT_ERR_INVALID_ARGUMENT, "lease_id: expected 32 lowercase hex");
    msg.lease_id = LEASE_A "0";
    s_expect_request (&msg, GT_ERR_INVALID_ARGUMENT, "lease_id: expected 32 lowercase hex");
    free (text);
}

//  Replies and events from a peer: types and required keys are checked too
static void
s_test_reply_rejections (void)
{
    gt_lease_info_t lease;
    gt_msg_test_fill_lease (&lease, NULL, 0, NULL);
    lease.cleanup_status = GT_CLEANUP_DEAD;
    lease.cleanup_attempts = 4;
    gt_msg_t msg;
    gt_msg_test_init (&msg, GT_MSG_REPLY, 31);
    msg.lease = &lease;
    msgpack_sbuffer reply = gt_msg_test_encode (&msg);
    gt_msg_test_init (&msg, GT_MSG_EVENT, 0);
    msg.event.seq = 5;
    msg.event.lease = lease;
    msgpack_sbuffer event = gt_msg_test_encode (&msg);
    //  The cluster's replies (GTLP.md §14)
    gt_broker_info_t broker;
    memset (&broker, 0, sizeof (broker));
    broker.broker_id = "a";
    broker.endpoint = "tcp://a:1";
    broker.events_endpoint = "tcp://a:2";
    gt_msg_test_init (&msg, GT_MSG_REPLY, 32);
    msg.has_map_version = msg.has_cluster = msg.brokers_present = true;
    msg.brokers = &broker;
    msg.broker_count = 1;
    msgpack_sbuffer map = gt_msg_test_encode (&msg);
    gt_msg_test_init (&msg, GT_MSG_REPLY, 33);
    msg.code = GT_ERR_MOVED;
    msg.message = "moved";
    msg.has_shard = msg.has_map_version = true;
    msg.owner = "tcp://b:1";
    msgpack_sbuffer moved = gt_msg_test_encode (&msg);
    msg.rid = 34;
    msg.code = GT_ERR_TRY_AGAIN;
    msg.owner = NULL;
    msg.has_map_version = false;
    msg.has_retry_ms = true;
    msgpack_sbuffer try_again = gt_msg_test_encode (&msg);
    const struct {
        const msgpack_sbuffer *base;    //  valid body
        gt_msg_kind_t kind;             //  its kind
        const char *path;               //  key to replace
        s_writer_fn *write;             //  new value or NULL
        gt_code_t code;                 //  expected code
        uint64_t rid;                   //  expected rid
        const char *err;                //  expected part of the message
    } cases [] = {
        { &reply, GT_MSG_REPLY, "code", s_write_str, GT_ERR_INVALID_ARGUMENT, 31, "code: unknown code 'x'" },
        { &reply, GT_MSG_REPLY, "code", NULL, GT_ERR_INVALID_ARGUMENT, 31, "code: required" },
        { &reply, GT_MSG_REPLY, "rid", NULL, GT_ERR_INVALID_ARGUMENT, 0, "rid: required" },
        { &reply, GT_MSG_REPLY, "v", s_write_v2, GT_ERR_UNSUPPORTED_VERSION, 31, "v: version 2" },
        { &reply, GT_MSG_REPLY, "lease.id", NULL, GT_ERR_INVALID_ARGUMENT, 31, "lease.id: required" },
        { &reply, GT_MSG_REPLY, "lease.ttl_ms", s_write_str, GT_ERR_INVALID_ARGUMENT, 31, "lease.ttl_ms: expected unsigned integer" },
        { &reply, GT_MSG_REPLY, "lease.metadata", s_write_meta_dup, GT_ERR_INVALID_ARGUMENT, 31, "lease.metadata: duplicate key" },
        { &reply, GT_MSG_REPLY, "lease.state", s_write_str, GT_ERR_INVALID_ARGUMENT, 31, "lease.state: unknown state" },
        { &reply, GT_MSG_REPLY, "lease.cleanup_status", s_write_str, GT_ERR_INVALID_ARGUMENT, 31, "lease.cleanup_status: unknown cleanup status 'x'" },
        { &reply, GT_MSG_REPLY, "lease.cleanup_attempts", s_write_str, GT_ERR_INVALID_ARGUMENT, 31, "lease.cleanup_attempts: expected unsigned integer" },
        { &reply, GT_MSG_REPLY, "leases", s_write_map, GT_ERR_INVALID_ARGUMENT, 31, "leases: expected array" },
        { &reply, GT_MSG_REPLY, "events", s_write_ids_bad, GT_ERR_INVALID_ARGUMENT, 31, "events[0]: expected map" },
        { &reply, GT_MSG_REPLY, "stats", s_write_meta_dup, GT_ERR_INVALID_ARGUMENT, 31, "stats[0].value: expected unsigned" },
        { &reply, GT_MSG_REPLY, "status", s_write_str, GT_ERR_INVALID_ARGUMENT, 31, "version: required" },
        { &reply, GT_MSG_REPLY, "future", s_write_anything, GT_OK, 31, NULL },
        { &event, GT_MSG_EVENT, "v", s_write_v2, GT_ERR_UNSUPPORTED_VERSION, 0, "v: version 2" },
        { &event, GT_MSG_EVENT, "kind", s_write_str, GT_ERR_INVALID_ARGUMENT, 0, "kind: unknown event kind 'x'" },
        { &event, GT_MSG_EVENT, "seq", NULL, GT_ERR_INVALID_ARGUMENT, 0, "seq: required" },
        { &event, GT_MSG_EVENT, "reason", s_write_str, GT_ERR_INVALID_ARGUMENT, 0, "reason: unknown reason 'x'" },
        { &event, GT_MSG_EVENT, "lease.object_id", s_write_bad_utf8, GT_ERR_INVALID_ARGUMENT, 0, "lease.object_id: invalid UTF-8" },
        { &event, GT_MSG_EVENT, "lease", s_write_array, GT_ERR_INVALID_ARGUMENT, 0, "lease: expected map" },
        { &event, GT_MSG_EVENT, "future", s_write_anything, GT_OK, 0, NULL },
        { &event, GT_MSG_EVENT, "shard", s_write_256, GT_ERR_INVALID_ARGUMENT, 0, "shard: 256 is out of range (at most 255)" },
        { &event, GT_MSG_EVENT, "shard", s_write_negative, GT_ERR_INVALID_ARGUMENT, 0, "shard: expected unsigned" },
        { &map, GT_MSG_REPLY, "brokers", s_write_brokers_256, GT_ERR_INVALID_ARGUMENT, 32, "brokers[1].shards[0]: 256 is out of range" },
        { &map, GT_MSG_REPLY, "brokers", s_write_brokers_unsorted, GT_ERR_INVALID_ARGUMENT, 32, "brokers[1].shards[2]: 4 is not ascending" },
        { &map, GT_MSG_REPLY, "brokers", s_write_brokers_twice, GT_ERR_INVALID_ARGUMENT, 32, "brokers[1].shards[1]: 1 is not ascending" },
        { &map, GT_MSG_REPLY, "brokers", s_write_brokers_str, GT_ERR_INVALID_ARGUMENT, 32, "brokers[0].shards: expected array" },
        { &map, GT_MSG_REPLY, "brokers", s_write_brokers_short, GT_ERR_INVALID_ARGUMENT, 32, "brokers[0].events_endpoint: required" },
        { &map, GT_MSG_REPLY, "brokers", s_write_map, GT_ERR_INVALID_ARGUMENT, 32, "brokers: expected array" },
        { &map, GT_MSG_REPLY, "brokers", s_write_epochs_short, GT_ERR_INVALID_ARGUMENT, 32, "brokers[0].epochs: 3 entries for 4 shards" },
        { &map, GT_MSG_REPLY, "brokers", s_write_epochs_long, GT_ERR_INVALID_ARGUMENT, 32, "brokers[0].epochs: 3 entries for 1 shard" },
        { &map, GT_MSG_REPLY, "brokers", s_write_epochs_none, GT_ERR_INVALID_ARGUMENT, 32, "brokers[0].epochs: 3 entries for 0 shards" },
        { &map, GT_MSG_REPLY, "brokers", s_write_epochs_negative, GT_ERR_INVALID_ARGUMENT, 32, "brokers[0].epochs[1]: expected unsigned integer" },
        { &map, GT_MSG_REPLY, "brokers", s_write_epochs_str, GT_ERR_INVALID_ARGUMENT, 32, "brokers[0].epochs: expected array" },
        { &map, GT_MSG_REPLY, "cluster", NULL, GT_ERR_INVALID_ARGUMENT, 32, "cluster: required" },
        { &map, GT_MSG_REPLY, "cluster", s_write_int, GT_ERR_INVALID_ARGUMENT, 32, "cluster: expected boolean" },
        { &map, GT_MSG_REPLY, "map_version", NULL, GT_ERR_INVALID_ARGUMENT, 32, "map_version: required" },
        { &map, GT_MSG_REPLY, "future", s_write_anything, GT_OK, 32, NULL },
        { &moved, GT_MSG_REPLY, "owner", NULL, GT_ERR_INVALID_ARGUMENT, 33, "owner: required" },
        { &moved, GT_MSG_REPLY, "owner", s_write_int, GT_ERR_INVALID_ARGUMENT, 33, "owner: expected string" },
        { &moved, GT_MSG_REPLY, "shard", NULL, GT_ERR_INVALID_ARGUMENT, 33, "shard: required" },
        { &moved, GT_MSG_REPLY, "shard", s_write_256, GT_ERR_INVALID_ARGUMENT, 33, "shard: 256 is out of range" },
        { &moved, GT_MSG_REPLY, "map_version", NULL, GT_ERR_INVALID_ARGUMENT, 33, "map_version: required" },
        { &try_again, GT_MSG_REPLY, "retry_ms", NULL, GT_ERR_INVALID_ARGUMENT, 34, "retry_ms: required" },
        { &try_again, GT_MSG_REPLY, "retry_ms", s_write_str, GT_ERR_INVALID_ARGUMENT, 34, "retry_ms: expected unsigned" },
        { &try_again, GT_MSG_REPLY, "shard", NULL, GT_ERR_INVALID_ARGUMENT, 34, "shard: required" },
        { &try_again, GT_MSG_REPLY, "owner", s_write_str, GT_OK, 34, NULL },
    };
    for (size_t index = 0; index < sizeof (cases) / sizeof (cases [0]); index++) {
        msgpack_sbuffer buf = s_mutate (cases [index].base, cases [index].path, cases [index].write);
        gt_msg_t *decoded = gt_msg_test_expect (buf.data, buf.size, cases [index].kind, cases [index].code,
                                      cases [index].rid, cases [index].err);
        gt_msg_destroy (&decoded);
        msgpack_sbuffer_destroy (&buf);
    }
    msgpack_sbuffer_destroy (&reply);
    msgpack_sbuffer_destroy (&event);
    msgpack_sbuffer_destroy (&map);
    msgpack_sbuffer_destroy (&moved);
    msgpack_sbuffer_destroy (&try_again);
}

//  Any key order, any int width, signed forms of non-negative values, str32
static void
s_test_non_canonical (void)
{
    const uint8_t body [] = {
        0x86,
        0xa6, 't', 't', 'l', '_', 'm', 's', 0xd2, 0x00, 0x00, 0x75, 0x30,          //  int32 30000
        0xaa, 's', 'e', 'r', 'v', 'i', 'c', 'e', '_', 'i', 'd',
            0xdb, 0x00, 0x00, 0x00, 0x01, 's',                                     //  str32 "s"
        0xa9, 'o', 'b', 'j', 'e', 'c', 't', '_', 'i', 'd', 0xd9, 0x01, 'o',        //  str8 "o"
        0xa3, 'c', 'm', 'd', 0xa6, 'C', 'R', 'E', 'A', 'T', 'E',
        0xa3, 'r', 'i', 'd', 0xcf, 0, 0, 0, 0, 0, 0, 0, 0x07,                      //  uint64 7
        0xa1, 'v', 0xd0, 0x01                                                      //  int8 1
    };
    gt_msg_t *msg = gt_msg_test_expect (body, sizeof (body), GT_MSG_REQUEST, GT_OK, 7, NULL);
    assert (msg->cmd == GT_CMD_CREATE && msg->has_ttl && msg->ttl_ms == 30000);
    assert (strcmp (msg->object_id, "o") == 0 && strcmp (msg->service_id, "s") == 0);
    msgpack_sbuffer buf = gt_msg_test_encode (msg);
    const char canonical [] = "\x86\xa1v\x01\xa3rid\x07\xa3""cmd\xa6""CREATE"
                              "\xa9object_id\xa1o\xaaservice_id\xa1s\xa6ttl_ms\xcd\x75\x30";
    assert (buf.size == sizeof (canonical) - 1 && memcmp (buf.data, canonical, buf.size) == 0);
    msgpack_sbuffer_destroy (&buf);
    gt_msg_destroy (&msg);
}

void
gt_msg_test_rejections (void)
{
    s_test_rejections ();
    s_test_limits ();
    s_test_reply_rejections ();
    s_test_non_canonical ();
}

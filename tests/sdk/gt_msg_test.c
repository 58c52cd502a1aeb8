/*  gt_msg_test.c — gt_msg_test: the codec's selftest.

    1. msgpack-c really emits the shortest int and str forms we rely on.
    2. Round trips of every message type built in code.
    3. Every vector in proto-spec/vectors: decode, re-encode byte for byte,
       JSON mirror equal to "value" (key order included), event topics.
    4. Strict rejection of bad bodies (right code, rid still reported), and
       acceptance of non-canonical but valid ones: in gt_msg_test_reject.c.
    5. Robustness: every truncation and random bit flips of every vector,
       and random garbage, never crash (run under ASan/UBSan).  */
#define _GNU_SOURCE                 //  memmem
#undef NDEBUG                       //  the checks run in release builds too
#include "gt_msg_test.h"
#include "gt_msg_private.h"
#include "gt_sdk_selftest.h"
#include <assert.h>
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define LEASE_A "0123456789abcdef0123456789abcdef"
#define LEASE_B "fedcba9876543210fedcba9876543210"

//  ---------------------------------------------------------------------------
//  Helpers

void
gt_msg_test_init (gt_msg_t *msg, gt_msg_kind_t kind, uint64_t rid)
{
    memset (msg, 0, sizeof (*msg));
    msg->kind = kind;
    msg->version = 1;
    msg->rid = rid;
}

msgpack_sbuffer
gt_msg_test_encode (const gt_msg_t *msg)
{
    msgpack_sbuffer buf;
    msgpack_sbuffer_init (&buf);
    int rc = gt_msg_encode (msg, &buf);
    assert (rc == 0);
    return buf;
}

//  Two messages encode to the same bytes
static void
s_test_same_encoding (const gt_msg_t *one, const gt_msg_t *two)
{
    msgpack_sbuffer a = gt_msg_test_encode (one);
    msgpack_sbuffer b = gt_msg_test_encode (two);
    assert (a.size == b.size && memcmp (a.data, b.data, a.size) == 0);
    msgpack_sbuffer_destroy (&a);
    msgpack_sbuffer_destroy (&b);
}

//  A body gets the same verdict, message, rid and (accepted) the same
//  message from gt_msg_decode, which reads most bodies in one pass, from
//  the reusable decoder, and from both passes (gt_msg_decode_two_pass)
static void
s_one_pass_agrees (const void *data, size_t size, gt_msg_kind_t kind)
{
    gt_msg_t *one = NULL, *two = NULL;
    uint64_t rid_one = 1, rid_two = 2, rid_reused = 3;
    char err_one [256], err_two [256], err_reused [256];
    gt_code_t code_one = gt_msg_decode (data, size, kind, &one, &rid_one, err_one, sizeof (err_one));
    gt_code_t code_two = gt_msg_decode_two_pass (data, size, kind, &two, &rid_two, err_two, sizeof (err_two));
    assert (code_one == code_two && rid_one == rid_two && strcmp (err_one, err_two) == 0);
    gt_msg_decoder_t *decoder = gt_msg_decoder_new ();
    const gt_msg_t *reused = NULL;
    gt_code_t code_reused = gt_msg_decoder_decode (decoder, data, size, kind, &reused, &rid_reused,
                                                   err_reused, sizeof (err_reused));
    assert (code_reused == code_two && rid_reused == rid_two && strcmp (err_reused, err_two) == 0);
    if (code_one == GT_OK) {
        s_test_same_encoding (one, two);
        s_test_same_encoding (reused, two);
    }
    gt_msg_decoder_destroy (&decoder);
    gt_msg_destroy (&one);
    gt_msg_destroy (&two);
}

//  Decode and expect the code, the reported rid and (if given) a substring of
//  the error message.  Returns the message on success (caller destroys).
gt_msg_t *
gt_msg_test_expect (const void *data, size_t size, gt_msg_kind_t kind,
          gt_code_t code, uint64_t rid, const char *err_part)
{
    gt_msg_t *msg = (gt_msg_t *) 1;
    uint64_t got_rid = 12345;
    char err [256];
    gt_code_t got = gt_msg_decode (data, size, kind, &msg, &got_rid, err, sizeof (err));
    if (got != code || got_rid != rid || (err_part && !strstr (err, err_part))) {
        fprintf (stderr, "expected %s rid %llu '%s', got %s rid %llu '%s'\n",
                 gt_code_name (code), (unsigned long long) rid, err_part? err_part: "",
                 gt_code_name (got), (unsigned long long) got_rid, err);
        assert (false);
    }
    if (code != GT_OK)
        assert (msg == NULL && err [0]);
    else
        assert (msg != NULL && err [0] == '\0');
    //  The reusable decoder (parts in its zone) gives the same verdict, rid
    //  and message, and what it decoded encodes to the same bytes; a second
    //  body through the same decoder as well (the zone is cleared between)
    gt_msg_decoder_t *decoder = gt_msg_decoder_new ();
    for (int pass = 0; pass < 2; pass++) {
        const gt_msg_t *borrowed = (const gt_msg_t *) 1;
        uint64_t reused_rid = 54321;
        char reused_err [256];
        gt_code_t reused = gt_msg_decoder_decode (decoder, data, size, kind, &borrowed, &reused_rid,
                                                  reused_err, sizeof (reused_err));
        assert (reused == got && reused_rid == got_rid && strcmp (reused_err, err) == 0);
        if (code != GT_OK)
            assert (borrowed == NULL);
        else {
            assert (borrowed != NULL);
            s_test_same_encoding (msg, borrowed);
        }
    }
    gt_msg_decoder_destroy (&decoder);
    assert (decoder == NULL);
    return msg;
}

gt_msg_t *
gt_msg_test_decoded (const gt_msg_t *msg)
{
    msgpack_sbuffer buf = gt_msg_test_encode (msg);
    gt_msg_t *decoded = gt_msg_test_expect (buf.data, buf.size, msg->kind, GT_OK, msg->rid, NULL);
    msgpack_sbuffer_destroy (&buf);
    return decoded;
}

//  Encode, decode, re-encode: the bytes must not change
static void
s_round_trip (const gt_msg_t *msg)
{
    msgpack_sbuffer first = gt_msg_test_encode (msg);
    gt_msg_t *decoded = gt_msg_test_expect (first.data, first.size, msg->kind, GT_OK,
                                  msg->kind == GT_MSG_EVENT? 0: msg->rid, NULL);
    msgpack_sbuffer second = gt_msg_test_encode (decoded);
    assert (first.size == second.size && memcmp (first.data, second.data, first.size) == 0);
    json_t *json = gt_msg_to_json (decoded);
    assert (json && json_is_object (json));
    json_decref (json);
    gt_msg_destroy (&decoded);
    assert (decoded == NULL);
    msgpack_sbuffer_destroy (&first);
    msgpack_sbuffer_destroy (&second);
}

void
gt_msg_test_fill_lease (gt_lease_info_t *lease, gt_meta_entry_t *meta, size_t meta_count,
              gt_cleanup_t *cleanup)
{
    memset (lease, 0, sizeof (*lease));
    strcpy (lease->id, LEASE_A);
    lease->object_id = "tmp/upload-7f3a.bin";
    lease->object_type = GT_TYPE_TEMPORARY_FILE;
    lease->service_id = "upload-service";
    lease->state = GT_STATE_ACTIVE;
    lease->fence = 1;
    lease->ttl_ms = 300000;
    lease->created_at = 1700000000000ULL;
    lease->renewed_at = 1700000000000ULL;
    lease->expires_at = 1700000300000ULL;
    lease->metadata.entries = meta;
    lease->metadata.count = meta_count;
    lease->cleanup = cleanup;
}

//  ---------------------------------------------------------------------------
//  1. Widths

static void
s_test_widths (void)
{
    struct { uint64_t value; size_t size; uint8_t first; } ints [] = {
        { 0, 1, 0x00 }, { 127, 1, 0x7f }, { 128, 2, 0xcc }, { 255, 2, 0xcc },
        { 256, 3, 0xcd }, { 65535, 3, 0xcd }, { 65536, 5, 0xce },
        { 4294967295ULL, 5, 0xce }, { 4294967296ULL, 9, 0xcf }, { UINT64_MAX, 9, 0xcf }
    };
    for (size_t index = 0; index < sizeof (ints) / sizeof (ints [0]); index++) {
        msgpack_sbuffer buf;
        msgpack_sbuffer_init (&buf);
        msgpack_packer pk;
        msgpack_packer_init (&pk, &buf, msgpack_sbuffer_write);
        msgpack_pack_uint64 (&pk, ints [index].value);
        assert (buf.size == ints [index].size);
        assert ((uint8_t) buf.data [0] == ints [index].first);
        msgpack_sbuffer_destroy (&buf);
    }
    struct { size_t length; size_t header; uint8_t first; } strs [] = {
        { 0, 1, 0xa0 }, { 31, 1, 0xbf }, { 32, 2, 0xd9 }, { 255, 2, 0xd9 },
        { 256, 3, 0xda }, { 65535, 3, 0xda }, { 65536, 5, 0xdb }
    };
    char *text = (char *) calloc (1, 65537);
    assert (text);
    memset (text, 'a', 65536);
    for (size_t index = 0; index < sizeof (strs) / sizeof (strs [0]); index++) {
        msgpack_sbuffer buf;
        msgpack_sbuffer_init (&buf);
        msgpack_packer pk;
        msgpack_packer_init (&pk, &buf, msgpack_sbuffer_write);
        msgpack_pack_str (&pk, strs [index].length);
        msgpack_pack_str_body (&pk, text, strs [index].length);
        assert (buf.size == strs [index].header + strs [index].length);
        assert ((uint8_t) buf.data [0] == strs [index].first);
        msgpack_sbuffer_destroy (&buf);
    }
    free (text);
}

//  ---------------------------------------------------------------------------
//  2. Round trips of messages built in code (stack messages, borrowed data)

static void
s_test_round_trips (void)
{
    //  Metadata deliberately unsorted: the encoder sorts a copy of the order
    gt_meta_entry_t meta [] = { { "purpose", "thumbnail" }, { "Region", "eu" }, { "owner", "alice" } };
    gt_cleanup_t cleanup = { "http://127.0.0.1:8080/cleanup", "{}", true, 3, true, 1000 };
    gt_cleanup_t cleanup_url_only = { "https://x/y", NULL, false, 0, false, 0 };
    char *ids [] = { LEASE_A, LEASE_B };

    gt_msg_t msg;
    for (int cmd = GT_CMD_CREATE; cmd < GT_CMD_COUNT_; cmd++) {
        gt_msg_test_init (&msg, GT_MSG_REQUEST, 1000 + cmd);
        msg.cmd = (gt_cmd_t) cmd;
        msg.object_id = "obj";
        msg.service_id = "svc";
        msg.lease_id = LEASE_A;
        msg.lease_ids = ids;
        msg.lease_id_count = 2;
        msg.has_after_seq = true;
        msg.after_seq = 7;
        s_round_trip (&msg);                //  minimal (plus fields other commands ignore)
        msg.has_object_type = true;
        msg.object_type = GT_TYPE_CACHE_ENTRY;
        msg.has_ttl = true;
        msg.ttl_ms = 45000;
        msg.has_metadata = true;
        msg.metadata.entries = meta;
        msg.metadata.count = 3;
        msg.cleanup = cmd == GT_CMD_RENEW? &cleanup_url_only: &cleanup;
        msg.idempotency_key = "key-1";
        msg.has_retain = true;
        msg.retain = true;
        msg.has_state = true;
        msg.state = GT_STATE_RELEASED;
        msg.has_cleanup_status = true;
        msg.cleanup_status = GT_CLEANUP_DEAD;
        msg.cursor = "cursor-1";
        msg.has_limit = true;
        msg.limit = 1000;
        s_round_trip (&msg);                //  every optional field
    }
    //  The encoder left the caller's metadata order alone
    assert (strcmp (meta [0].key, "purpose") == 0 && strcmp (meta [1].key, "Region") == 0);

    //  A CREATE with cleanup url only stays url only; in a LEASE both retry keys appear
    gt_msg_test_init (&msg, GT_MSG_REQUEST, 1);
    msg.cmd = GT_CMD_CREATE;
    msg.object_id = "o";
    msg.service_id = "s";
    msg.cleanup = &cleanup_url_only;
    msgpack_sbuffer buf = gt_msg_test_encode (&msg);
    assert (memmem (buf.data, buf.size, "max_retries", 11) == NULL);
    gt_msg_t *decoded = gt_msg_test_expect (buf.data, buf.size, GT_MSG_REQUEST, GT_OK, 1, NULL);
    assert (decoded->cleanup && !decoded->cleanup->has_max_retries && !decoded->cleanup->payload);
    assert (strcmp (decoded->cleanup->url, "https://x/y") == 0);
    assert (!decoded->has_metadata && decoded->metadata.count == 0);
    gt_msg_destroy (&decoded);
    msgpack_sbuffer_destroy (&buf);

    //  A LIST filter by cleanup status, and a RETRY, decode to what was sent
    gt_msg_test_init (&msg, GT_MSG_REQUEST, 2);
    msg.cmd = GT_CMD_LIST;
    msg.has_cleanup_status = true;
    msg.cleanup_status = GT_CLEANUP_PENDING;
    decoded = gt_msg_test_decoded (&msg);
    assert (decoded->has_cleanup_status && decoded->cleanup_status == GT_CLEANUP_PENDING);
    gt_msg_destroy (&decoded);
    msg.cleanup_status = GT_CLEANUP_NONE;         //  not a wire name: not encodable
    msgpack_sbuffer_init (&buf);
    assert (gt_msg_encode (&msg, &buf) == -1 && buf.size == 0);
    msgpack_sbuffer_destroy (&buf);
    gt_msg_test_init (&msg, GT_MSG_REQUEST, 3);
    msg.cmd = GT_CMD_RETRY;
    msgpack_sbuffer_init (&buf);
    assert (gt_msg_encode (&msg, &buf) == -1);    //  lease_id is required
    msgpack_sbuffer_destroy (&buf);
    msg.lease_id = LEASE_A;
    decoded = gt_msg_test_decoded (&msg);
    assert (decoded->cmd == GT_CMD_RETRY && strcmp (decoded->lease_id, LEASE_A) == 0);
    gt_msg_destroy (&decoded);

    //  Replies
    gt_lease_info_t leases [2];
    gt_msg_test_fill_lease (&leases [0], meta, 3, &cleanup_url_only);
    leases [0].cleanup_status = GT_CLEANUP_DEAD;
    leases [0].cleanup_attempts = 4;
    leases [0].cleanup_error = "HTTP 500";
    gt_msg_test_fill_lease (&leases [1], NULL, 0, NULL);
    strcpy (leases [1].id, LEASE_B);
    leases [1].state = GT_STATE_EXPIRED;
    gt_renew_result_t results [] = {
        { LEASE_A, GT_OK, 1700000000000ULL, NULL },
        { LEASE_B, GT_ERR_PERMISSION_DENIED, 0, "not yours" }
    };
    gt_stat_t stats [] = { { "requests", 5000000000ULL }, { "errors", 1 }, { "active_leases", 2 } };
    gt_event_t events [2];
    memset (events, 0, sizeof (events));
    events [0].seq = 1;
    events [0].kind = GT_EVENT_LEASE_EXPIRED;
    events [0].at = 1700000300000ULL;
    events [0].lease = leases [1];
    events [1].seq = 2;
    events [1].kind = GT_EVENT_OBJECT_RECLAIMED;
    events [1].at = 1700000300001ULL;
    events [1].lease = leases [0];
    events [1].reason = GT_REASON_EXPIRED;
    uint64_t versions [] = { 1 };

    gt_msg_test_init (&msg, GT_MSG_REPLY, 42);
    msg.lease = &leases [0];
    s_round_trip (&msg);
    buf = gt_msg_test_encode (&msg);
    const char *order [] = { "cleanup", "cleanup_status", "cleanup_attempts", "cleanup_error" };
    const char *previous = NULL;
    for (size_t index = 0; index < 4; index++) {
        const char *at = (const char *) memmem (buf.data, buf.size, order [index], strlen (order [index]));
        assert (at && (!previous || at > previous));
        previous = at;
    }
    decoded = gt_msg_test_expect (buf.data, buf.size, GT_MSG_REPLY, GT_OK, 42, NULL);
    assert (decoded->lease->cleanup_status == GT_CLEANUP_DEAD && decoded->lease->cleanup_attempts == 4);
    assert (strcmp (decoded->lease->cleanup_error, "HTTP 500") == 0);
    gt_lease_info_t lease_copy;
    gt_lease_info_copy (&lease_copy, decoded->lease);
    assert (lease_copy.cleanup_error != decoded->lease->cleanup_error);
    assert (strcmp (lease_copy.cleanup_error, "HTTP 500") == 0);
    gt_lease_info_clear (&lease_copy);
    gt_msg_destroy (&decoded);
    msgpack_sbuffer_destroy (&buf);
    leases [0].cleanup_error = "";                //  an empty error is not sent
    buf = gt_msg_test_encode (&msg);
    assert (memmem (buf.data, buf.size, "cleanup_attempts", 16) && !memmem (buf.data, buf.size, "cleanup_error", 13));
    msgpack_sbuffer_destroy (&buf);
    leases [0].cleanup_status = GT_CLEANUP_NONE;  //  no status: no cleanup_* keys at all
    buf = gt_msg_test_encode (&msg);
    assert (!memmem (buf.data, buf.size, "cleanup_", 8));
    msgpack_sbuffer_destroy (&buf);
    leases [0].cleanup_status = GT_CLEANUP_DEAD;
    leases [0].cleanup_error = "HTTP 500";
    msg.lease = NULL;
    msg.leases = leases;
    msg.lease_count = 2;
    msg.leases_present = true;
    msg.cursor = "next";
    s_round_trip (&msg);
    msg.lease_count = 0;
    msg.cursor = NULL;
    s_round_trip (&msg);                    //  empty page, no cursor
    msg.leases_present = false;
    msg.results = results;
    msg.result_count = 2;
    msg.results_present = true;
    s_round_trip (&msg);
    msg.results_present = false;
    msg.status = "SERVING";
    msg.server_version = GT_VERSION_STRING;
    msg.store = "memory";
    msg.store_status = "OK";
    msg.uptime_ms = 1;
    msg.now = 1700000000000ULL;
    msg.active_leases = 70000;
    s_round_trip (&msg);
    msg.status = NULL;
    msg.stats = stats;
    msg.stat_count = 3;
    msg.stats_present = true;
    buf = gt_msg_test_encode (&msg);
    //  stats come out sorted: active_leases < errors < requests
    char *first = memmem (buf.data, buf.size, "active_leases", 13);
    char *second = memmem (buf.data, buf.size, "errors", 6);
    char *third = memmem (buf.data, buf.size, "requests", 8);
    assert (first && second && third && first < second && second < third);
    assert (strcmp (stats [0].name, "requests") == 0);      //  input untouched
    msgpack_sbuffer_destroy (&buf);
    s_round_trip (&msg);
    msg.stats_present = false;
    msg.events = events;
    msg.event_count = 2;
    msg.events_present = true;
    msg.has_last_seq = true;
    msg.last_seq = 2;
    s_round_trip (&msg);
    for (int code = GT_ERR_INVALID_ARGUMENT; code < GT_CODE_COUNT_; code++) {
        gt_msg_test_init (&msg, GT_MSG_REPLY, (uint64_t) code);
        msg.code = (gt_code_t) code;
        msg.message = "it went wrong";
        if (code == GT_ERR_UNSUPPORTED_VERSION) {
            msg.versions = versions;
            msg.version_count = 1;
        }
        if (code == GT_ERR_MOVED || code == GT_ERR_TRY_AGAIN) {
            msg.has_shard = true;
            msg.shard = 255;
        }
        if (code == GT_ERR_MOVED) {
            msg.owner = "tcp://10.0.0.2:50051";
            msg.has_map_version = true;
            msg.map_version = 514;
        }
        if (code == GT_ERR_TRY_AGAIN) {
            msg.has_retry_ms = true;
            msg.retry_ms = 100;
        }
        s_round_trip (&msg);
    }

    //  Events, every kind
    for (int kind = 0; kind < GT_EVENT_COUNT_; kind++) {
        gt_msg_test_init (&msg, GT_MSG_EVENT, 0);
        msg.event = events [0];
        msg.event.kind = (gt_event_kind_t) kind;
        msg.event.reason = kind == GT_EVENT_OBJECT_RECLAIMED? GT_REASON_RELEASED: GT_REASON_NONE;
        s_round_trip (&msg);
        json_t *json = gt_event_to_json (&msg.event);
        assert (json && json_integer_value (json_object_get (json, "v")) == 1);
        assert (strcmp (json_string_value (json_object_get (json, "kind")),
                        gt_event_kind_name ((gt_event_kind_t) kind)) == 0);
        assert ((json_object_get (json, "reason") != NULL) == (kind == GT_EVENT_OBJECT_RECLAIMED));
        json_decref (json);
    }

    //  Lease JSON, deep copy and clear
    json_t *json = gt_lease_info_to_json (&leases [0]);
    assert (json);
    const char *key;
    json_t *value;
    const char *expected [] = { "id", "object_id", "object_type", "service_id", "state", "fence",
                                "ttl_ms", "created_at", "renewed_at", "expires_at", "renewals",
                                "metadata", "cleanup", "cleanup_status", "cleanup_attempts",
                                "cleanup_error" };
    size_t index = 0;
    json_object_foreach (json, key, value)
        assert (index < 16 && strcmp (key, expected [index++]) == 0);
    assert (index == 16);
    assert (strcmp (json_string_value (json_object_get (json, "cleanup_status")), "DEAD") == 0);
    assert (json_integer_value (json_object_get (json, "created_at")) == 1700000000000LL);
    json_t *cleanup_json = json_object_get (json, "cleanup");
    assert (json_integer_value (json_object_get (cleanup_json, "max_retries")) == 0);
    json_decref (json);
    gt_lease_info_t copy;
    gt_lease_info_copy (&copy, &leases [0]);
    assert (copy.object_id != leases [0].object_id && strcmp (copy.object_id, leases [0].object_id) == 0);
    assert (copy.metadata.count == 3 && copy.metadata.entries != meta);
    assert (strcmp (copy.metadata.entries [1].key, "Region") == 0);
    assert (copy.cleanup && copy.cleanup != leases [0].cleanup && strcmp (copy.cleanup->url, "https://x/y") == 0);
    assert (strcmp (copy.id, LEASE_A) == 0);
    gt_lease_info_clear (&copy);
    assert (copy.object_id == NULL && copy.cleanup == NULL && copy.metadata.count == 0);

    //  A heap message from gt_msg_new owns its strings
    gt_msg_t *owned = gt_msg_new (GT_MSG_REQUEST);
    assert (owned->version == 1 && owned->kind == GT_MSG_REQUEST);
    owned->rid = UINT64_MAX;
    owned->cmd = GT_CMD_GET;
    owned->lease_id = strdup (LEASE_A);
    s_round_trip (owned);
    json = gt_msg_to_json (owned);
    assert (json_is_real (json_object_get (json, "rid")));   //  past INT64_MAX: a real
    json_decref (json);
    void *data;
    size_t size;
    assert (gt_msg_encode_alloc (owned, &data, &size) == 0 && size > 0);
    gt_msg_t *again = gt_msg_test_expect (data, size, GT_MSG_REQUEST, GT_OK, UINT64_MAX, NULL);
    assert (strcmp (again->lease_id, LEASE_A) == 0);
    gt_msg_destroy (&again);
    free (data);
    gt_msg_destroy (&owned);
    gt_msg_destroy (&owned);                //  a NULL pointer is fine
}

//  The cluster additions (GTLP.md §14): MAP, REPLAY of a shard, MOVED and
//  TRY_AGAIN, events with a shard
static void
s_test_cluster (void)
{
    //  Shard bitmaps
    gt_broker_info_t brokers [2];
    memset (brokers, 0, sizeof (brokers));
    brokers [0].broker_id = "broker-a";
    brokers [0].endpoint = "tcp://a:50051";
    brokers [0].events_endpoint = "tcp://a:50052";
    brokers [1].broker_id = "broker-b";
    brokers [1].endpoint = "tcp://b:50051";
    brokers [1].events_endpoint = "tcp://b:50052";
    gt_broker_info_add_shard (&brokers [0], 255);
    gt_broker_info_add_shard (&brokers [0], 0);
    gt_broker_info_add_shard (&brokers [0], 0);       //  twice is once
    gt_broker_info_add_shard (&brokers [1], 7);
    assert (!brokers [0].has_epochs && !brokers [1].has_epochs);
    assert (gt_broker_info_shard_count (&brokers [0]) == 2 && gt_broker_info_shard_count (&brokers [1]) == 1);
    assert (gt_broker_info_owns (&brokers [0], 255) && !gt_broker_info_owns (&brokers [0], 7));
    assert (!gt_broker_info_owns (&brokers [0], 256) && !gt_broker_info_owns (&brokers [0], 100000));

    //  MAP request and reply; shards come out ascending whatever the order they were added in
    gt_msg_t msg;
    gt_msg_test_init (&msg, GT_MSG_REQUEST, 18);
    msg.cmd = GT_CMD_MAP;
    msgpack_sbuffer buf = gt_msg_test_encode (&msg);
    assert (buf.size == 17 && memcmp (buf.data, "\x83\xa1v\x01\xa3rid\x12\xa3" "cmd\xa3MAP", 17) == 0);
    msgpack_sbuffer_destroy (&buf);
    gt_msg_test_init (&msg, GT_MSG_REPLY, 18);
    msg.has_map_version = true;
    msg.map_version = 514;
    msg.has_cluster = true;
    msg.cluster = true;
    msg.brokers = brokers;
    msg.broker_count = 2;
    msg.brokers_present = true;
    s_round_trip (&msg);
    assert (gt_msg_shard_owner (&msg, 7) == &brokers [1] && gt_msg_shard_owner (&msg, 0) == &brokers [0]);
    assert (gt_msg_shard_owner (&msg, 3) == NULL && gt_msg_shard_owner (&msg, 256) == NULL);
    gt_msg_t *decoded = gt_msg_test_decoded (&msg);
    assert (decoded->cluster && decoded->map_version == 514 && decoded->broker_count == 2);
    assert (strcmp (decoded->brokers [1].events_endpoint, "tcp://b:50052") == 0);
    assert (memcmp (decoded->brokers [0].shards, brokers [0].shards, sizeof (brokers [0].shards)) == 0);
    assert (strcmp (gt_msg_shard_owner (decoded, 255)->broker_id, "broker-a") == 0);
    json_t *json = gt_msg_to_json (decoded);
    json_t *shards = json_object_get (json_array_get (json_object_get (json, "brokers"), 0), "shards");
    assert (json_array_size (shards) == 2 && json_integer_value (json_array_get (shards, 1)) == 255);
    assert (json_is_true (json_object_get (json, "cluster")));
    json_decref (json);
    gt_msg_destroy (&decoded);

    //  Epochs: written in the order of the shards, read back by shard; a
    //  broker without them (from before them) next to one with them
    gt_broker_info_add_shard_epoch (&brokers [0], 255, 300);
    gt_broker_info_add_shard_epoch (&brokers [0], 0, 70000);
    gt_broker_info_add_shard_epoch (&brokers [0], 9, 0);
    assert (brokers [0].has_epochs && gt_broker_info_shard_count (&brokers [0]) == 3);
    s_round_trip (&msg);
    decoded = gt_msg_test_decoded (&msg);
    assert (decoded->brokers [0].has_epochs && !decoded->brokers [1].has_epochs);
    assert (decoded->brokers [0].epochs [0] == 70000 && decoded->brokers [0].epochs [9] == 0
        &&  decoded->brokers [0].epochs [255] == 300);
    json = gt_msg_to_json (decoded);
    json_t *first = json_array_get (json_object_get (json, "brokers"), 0);
    json_t *epochs = json_object_get (first, "epochs");
    assert (json_array_size (epochs) == 3);
    assert (json_integer_value (json_array_get (epochs, 0)) == 70000
        &&  json_integer_value (json_array_get (epochs, 1)) == 0
        &&  json_integer_value (json_array_get (epochs, 2)) == 300);
    const char *keys [5] = { "broker_id", "endpoint", "events_endpoint", "shards", "epochs" };
    size_t key_index = 0;
    const char *key;
    json_t *value;
    json_object_foreach (first, key, value)
        assert (key_index < 5 && strcmp (key, keys [key_index++]) == 0);
    assert (key_index == 5);
    assert (json_object_get (json_array_get (json_object_get (json, "brokers"), 1), "epochs") == NULL);
    json_decref (json);
    gt_msg_destroy (&decoded);
    //  A broker with epochs and no shard: two empty lists
    gt_broker_info_t empty;
    memset (&empty, 0, sizeof (empty));
    empty.broker_id = empty.endpoint = empty.events_endpoint = "";
    empty.has_epochs = true;
    msg.brokers = &empty;
    msg.broker_count = 1;
    s_round_trip (&msg);
    buf = gt_msg_test_encode (&msg);
    assert (buf.size > 16 && memcmp (buf.data + buf.size - 16, "\xa6shards\x90\xa6" "epochs\x90", 16) == 0);
    msgpack_sbuffer_destroy (&buf);
    msg.brokers = brokers;

    msg.cluster = false;
    msg.broker_count = 0;                   //  no live broker: an empty list
    s_round_trip (&msg);

    //  REPLAY of a shard: after limit; the other commands ignore shard
    gt_msg_test_init (&msg, GT_MSG_REQUEST, 19);
    msg.cmd = GT_CMD_REPLAY;
    msg.has_after_seq = true;
    msg.after_seq = 41;
    msg.has_shard = true;
    msg.shard = 0;
    decoded = gt_msg_test_decoded (&msg);
    assert (decoded->has_shard && decoded->shard == 0 && !decoded->has_limit);
    gt_msg_destroy (&decoded);
    msg.cmd = GT_CMD_LIST;
    buf = gt_msg_test_encode (&msg);
    assert (!memmem (buf.data, buf.size, "shard", 5));
    msgpack_sbuffer_destroy (&buf);

    //  MOVED and TRY_AGAIN
    gt_msg_test_init (&msg, GT_MSG_REPLY, 130);
    msg.code = GT_ERR_MOVED;
    msg.message = "moved";
    msg.has_shard = true;
    msg.shard = 200;
    msg.owner = "tcp://b:50051";
    msg.has_map_version = true;
    msg.map_version = 514;
    decoded = gt_msg_test_decoded (&msg);
    assert (decoded->code == GT_ERR_MOVED && decoded->shard == 200 && decoded->map_version == 514);
    assert (strcmp (decoded->owner, "tcp://b:50051") == 0 && !decoded->has_retry_ms);
    gt_msg_destroy (&decoded);
    msg.code = GT_ERR_TRY_AGAIN;
    msg.owner = NULL;
    msg.has_map_version = false;
    msg.has_retry_ms = true;
    msg.retry_ms = 100;
    s_round_trip (&msg);

    //  An event with a shard: between seq and kind
    gt_lease_info_t lease;
    gt_msg_test_fill_lease (&lease, NULL, 0, NULL);
    gt_msg_test_init (&msg, GT_MSG_EVENT, 0);
    msg.event.seq = 7;
    msg.event.has_shard = true;
    msg.event.shard = 255;
    msg.event.lease = lease;
    s_round_trip (&msg);
    buf = gt_msg_test_encode (&msg);
    assert (memmem (buf.data, buf.size, "\xa5shard\xcc\xff\xa4kind", 13));
    msgpack_sbuffer_destroy (&buf);

    //  Not encodable: a shard past 255, MOVED or TRY_AGAIN or MAP without its fields
    msgpack_sbuffer_init (&buf);
    msg.event.shard = 256;
    assert (gt_msg_encode (&msg, &buf) == -1);
    gt_msg_test_init (&msg, GT_MSG_REQUEST, 1);
    msg.cmd = GT_CMD_REPLAY;
    msg.has_after_seq = true;
    msg.has_shard = true;
    msg.shard = 256;
    assert (gt_msg_encode (&msg, &buf) == -1);
    msg.kind = GT_MSG_REPLY;
    msg.message = "m";
    msg.code = GT_ERR_TRY_AGAIN;
    msg.shard = 3;
    assert (gt_msg_encode (&msg, &buf) == -1);          //  no retry_ms
    msg.code = GT_ERR_MOVED;
    msg.has_map_version = true;
    assert (gt_msg_encode (&msg, &buf) == -1);          //  no owner
    msg.code = GT_OK;
    msg.brokers_present = true;
    assert (gt_msg_encode (&msg, &buf) == -1);          //  no cluster
    msg.has_cluster = true;
    msg.brokers = brokers;
    msg.broker_count = 1;
    brokers [0].events_endpoint = NULL;
    assert (gt_msg_encode (&msg, &buf) == -1);          //  a broker without events_endpoint
    assert (buf.size == 0);
    msgpack_sbuffer_destroy (&buf);
}

//  An event's LEASE map, as gt_msg_encode_event locates it, makes the
//  same reply bytes as gt_msg_encode of that reply, and the same bytes of
//  a next event of that lease (the broker's shortcuts)
static void
s_test_lease_reuse (void)
{
    gt_meta_entry_t meta [] = { { "owner", "alice" }, { "Region", "eu" } };
    gt_cleanup_t cleanup = { "http://127.0.0.1:8080/cleanup", "{}", true, 3, true, 1000 };
    for (int variant = 0; variant < 4; variant++) {
        gt_msg_t event;
        gt_msg_test_init (&event, GT_MSG_EVENT, 0);
        event.event.seq = 41;
        event.event.kind = variant == 3 ? GT_EVENT_OBJECT_RECLAIMED : GT_EVENT_LEASE_CREATED;
        event.event.reason = variant == 3 ? GT_REASON_EXPIRED : GT_REASON_NONE;
        event.event.has_shard = variant == 2;
        event.event.shard = 200;
        event.event.at = 1700000000123ULL;
        gt_msg_test_fill_lease (&event.event.lease, variant ? meta : NULL, variant ? 2 : 0,
                                variant ? &cleanup : NULL);
        msgpack_sbuffer whole = gt_msg_test_encode (&event);
        msgpack_sbuffer spanned;
        msgpack_sbuffer_init (&spanned);
        msgpack_sbuffer_write (&spanned, "xyz", 3);             //  appended after what is there
        size_t offset = 0, size = 0;
        assert (gt_msg_encode_event (&event, &spanned, &offset, &size) == 0);
        assert (spanned.size == 3 + whole.size && memcmp (spanned.data + 3, whole.data, whole.size) == 0);
        msgpack_sbuffer lease_alone;
        msgpack_sbuffer_init (&lease_alone);
        msgpack_packer pk;
        msgpack_packer_init (&pk, &lease_alone, msgpack_sbuffer_write);
        assert (gt_lease_info_pack (&event.event.lease, &pk) == 0);
        assert (size == lease_alone.size && memcmp (whole.data + offset, lease_alone.data, size) == 0);
        //  The body written from the event alone is the message's
        msgpack_sbuffer body;
        msgpack_sbuffer_init (&body);
        msgpack_sbuffer_write (&body, "xyz", 3);
        assert (gt_msg_encode_event_body (&event.event, &body) == 0);
        assert (body.size == 3 + whole.size && memcmp (body.data + 3, whole.data, whole.size) == 0);
        gt_event_t unencodable = event.event;
        unencodable.kind = GT_EVENT_COUNT_;
        assert (gt_msg_encode_event_body (&unencodable, &body) == -1 && body.size == 3 + whole.size);
        unencodable = event.event;
        unencodable.lease.id [0] = 'X';
        assert (gt_msg_encode_event_body (&unencodable, &body) == -1 && body.size == 3 + whole.size);
        msgpack_sbuffer_destroy (&body);

        gt_msg_t reply;
        gt_msg_test_init (&reply, GT_MSG_REPLY, 77);
        reply.code = GT_OK;
        reply.lease = &event.event.lease;
        msgpack_sbuffer expected = gt_msg_test_encode (&reply);
        msgpack_sbuffer shortcut;
        msgpack_sbuffer_init (&shortcut);
        assert (gt_msg_encode_lease_reply (77, whole.data + offset, size, &shortcut) == 0);
        assert (shortcut.size == expected.size && memcmp (shortcut.data, expected.data, expected.size) == 0);
        //  ... and so does the reply written from the lease itself, after
        //  what the buffer holds
        msgpack_sbuffer from_info;
        msgpack_sbuffer_init (&from_info);
        msgpack_sbuffer_write (&from_info, "q", 1);
        assert (gt_msg_encode_lease_info_reply (77, &event.event.lease, &from_info) == 0);
        assert (from_info.size == 1 + expected.size && memcmp (from_info.data + 1, expected.data, expected.size) == 0);
        //  A lease that cannot be encoded appends nothing
        gt_lease_info_t broken = event.event.lease;
        broken.id [0] = 'X';
        assert (gt_msg_encode_lease_info_reply (77, &broken, &from_info) == -1);
        //  gt_lease_info_encodable leaves the id's characters to gt_lease_id_valid
        assert (gt_lease_info_encodable (&event.event.lease) && gt_lease_info_encodable (&broken));
        broken = event.event.lease;
        broken.object_id = NULL;
        assert (!gt_lease_info_encodable (&broken));
        assert (gt_msg_encode_lease_info_reply (77, &broken, &from_info) == -1);
        assert (from_info.size == 1 + expected.size);
        msgpack_sbuffer_destroy (&from_info);

        //  The next event of the same lease (an expiry's object.reclaimed)
        gt_msg_t next = event;
        next.event.seq = 42;
        next.event.kind = GT_EVENT_OBJECT_RECLAIMED;
        next.event.reason = GT_REASON_RELEASED;
        msgpack_sbuffer next_expected = gt_msg_test_encode (&next);
        msgpack_sbuffer next_reused;
        msgpack_sbuffer_init (&next_reused);
        msgpack_sbuffer_write (&next_reused, "ab", 2);
        size_t next_offset = 0;
        assert (gt_msg_encode_event_with_lease (&next, whole.data + offset, size, &next_reused, &next_offset) == 0);
        assert (next_reused.size == 2 + next_expected.size
                && memcmp (next_reused.data + 2, next_expected.data, next_expected.size) == 0);
        assert (memcmp (next_reused.data + 2 + next_offset, lease_alone.data, size) == 0);
        msgpack_sbuffer_destroy (&next_expected);
        msgpack_sbuffer_destroy (&next_reused);
        msgpack_sbuffer_destroy (&whole);
        msgpack_sbuffer_destroy (&spanned);
        msgpack_sbuffer_destroy (&lease_alone);
        msgpack_sbuffer_destroy (&expected);
        msgpack_sbuffer_destroy (&shortcut);
    }
    //  Not an event: refused, nothing appended
    gt_msg_t request;
    gt_msg_test_init (&request, GT_MSG_REQUEST, 5);
    msgpack_sbuffer buf;
    msgpack_sbuffer_init (&buf);
    size_t offset = 0, size = 0;
    assert (gt_msg_encode_event (&request, &buf, &offset, &size) == -1 && buf.size == 0);
    assert (gt_msg_encode_event_with_lease (&request, "\x80", 1, &buf, &offset) == -1 && buf.size == 0);
    msgpack_sbuffer_destroy (&buf);
}

//  Programmer errors: the encoder refuses and leaves the buffer as it was
static void
s_test_unencodable (void)
{
    msgpack_sbuffer buf;
    msgpack_sbuffer_init (&buf);
    msgpack_sbuffer_write (&buf, "xy", 2);
    gt_msg_t msg;
    gt_msg_test_init (&msg, GT_MSG_REQUEST, 1);
    msg.cmd = GT_CMD_CREATE;
    msg.object_id = "o";
    msg.service_id = "s";
    gt_meta_entry_t dup [] = { { "k", "1" }, { "k", "2" } };
    msg.has_metadata = true;
    msg.metadata.entries = dup;
    msg.metadata.count = 2;
    assert (gt_msg_encode (&msg, &buf) == -1);          //  duplicate metadata key
    msg.has_metadata = false;
    msg.cmd = GT_CMD_REPLAY;
    assert (gt_msg_encode (&msg, &buf) == -1);          //  no after_seq
    msg.cmd = GT_CMD_NONE;
    assert (gt_msg_encode (&msg, &buf) == -1);
    msg.kind = GT_MSG_REPLY;
    msg.code = GT_ERR_NOT_FOUND;
    assert (gt_msg_encode (&msg, &buf) == -1);          //  error without message
    msg.code = GT_OK;
    gt_lease_info_t lease;
    gt_msg_test_fill_lease (&lease, NULL, 0, NULL);
    strcpy (lease.id, "not-a-lease-id");
    msg.lease = &lease;
    assert (gt_msg_encode (&msg, &buf) == -1);
    assert (buf.size == 2 && memcmp (buf.data, "xy", 2) == 0);
    msgpack_sbuffer_destroy (&buf);
    assert (gt_msg_to_json (&msg) == NULL);
    void *data = (void *) 1;
    size_t size = 1;
    assert (gt_msg_encode_alloc (&msg, &data, &size) == -1 && data == NULL && size == 0);
}

//  ---------------------------------------------------------------------------
//  3. The shared vectors

static uint8_t *
s_hex_decode (const char *hex, size_t *size_p)
{
    size_t length = strlen (hex);
    assert (length % 2 == 0);
    uint8_t *bytes = (uint8_t *) malloc (length / 2 + 1);
    assert (bytes);
    for (size_t index = 0; index < length / 2; index++) {
        unsigned int byte;
        int rc = sscanf (hex + 2 * index, "%2x", &byte);
        assert (rc == 1);
        bytes [index] = (uint8_t) byte;
    }
    *size_p = length / 2;
    return bytes;
}

static int
s_compare_names (const void *a, const void *b)
{
    return strcmp (*(char * const *) a, *(char * const *) b);
}

//  Visit every vector: fn (name, kind, doc, bytes, size)
typedef void (s_vector_fn) (const char *name, gt_msg_kind_t kind, json_t *doc,
                            const uint8_t *bytes, size_t size, void *arg);

static size_t
s_each_vector (s_vector_fn *fn, void *arg)
{
    const char *dir = getenv ("GT_VECTORS_DIR");
    if (!dir || !*dir)
        dir = GT_VECTORS_SOURCE_DIR;
    DIR *handle = opendir (dir);
    if (!handle)
        fprintf (stderr, "gt_msg: cannot open vectors directory %s\n", dir);
    assert (handle);
    char *names [512];
    size_t count = 0;
    struct dirent *entry;
    while ((entry = readdir (handle))) {
        size_t length = strlen (entry->d_name);
        if (length > 5 && strcmp (entry->d_name + length - 5, ".json") == 0) {
            assert (count < 512);
            names [count++] = strdup (entry->d_name);
        }
    }
    closedir (handle);
    qsort (names, count, sizeof (char *), s_compare_names);
    for (size_t index = 0; index < count; index++) {
        char path [1024];
        snprintf (path, sizeof (path), "%s/%s", dir, names [index]);
        json_error_t error;
        json_t *doc = json_load_file (path, 0, &error);
        if (!doc)
            fprintf (stderr, "%s: %s\n", path, error.text);
        assert (doc);
        const char *kind_name = json_string_value (json_object_get (doc, "kind"));
        const char *hex = json_string_value (json_object_get (doc, "msgpack"));
        const char *name = json_string_value (json_object_get (doc, "name"));
        assert (kind_name && hex && name && json_is_object (json_object_get (doc, "value")));
        assert (strncmp (names [index], name, strlen (name)) == 0);
        gt_msg_kind_t kind = strcmp (kind_name, "request") == 0? GT_MSG_REQUEST
                           : strcmp (kind_name, "reply") == 0? GT_MSG_REPLY: GT_MSG_EVENT;
        assert (kind != GT_MSG_EVENT || strcmp (kind_name, "event") == 0);
        size_t size;
        uint8_t *bytes = s_hex_decode (hex, &size);
        fn (name, kind, doc, bytes, size, arg);
        free (bytes);
        json_decref (doc);
        free (names [index]);
    }
    return count;
}

typedef struct {
    bool verbose;                   //  print each vector
    bool commands [GT_CMD_COUNT_];  //  request commands seen
    bool codes [GT_CODE_COUNT_];    //  reply codes seen
    bool kinds [GT_EVENT_COUNT_];   //  event kinds seen
} s_coverage_t;

static void
s_check_vector (const char *name, gt_msg_kind_t kind, json_t *doc,
                const uint8_t *bytes, size_t size, void *arg)
{
    s_coverage_t *coverage = (s_coverage_t *) arg;
    if (coverage->verbose)
        printf ("   vector %s\n", name);
    json_t *value = json_object_get (doc, "value");
    uint64_t rid = kind == GT_MSG_EVENT? 0
                 : (uint64_t) json_integer_value (json_object_get (value, "rid"));
    gt_msg_t *msg = gt_msg_test_expect (bytes, size, kind, GT_OK, rid, NULL);
    s_one_pass_agrees (bytes, size, kind);
    //  (the one pass reads every vector: they are all within its bounds;
    //  a request's top-level map straight into its slots)
    assert (gt_msg_one_pass_reads (bytes, size));
    if (kind == GT_MSG_REQUEST)
        assert (gt_msg_request_slots_read (bytes, size) == 1);

    //  Re-encode byte for byte
    msgpack_sbuffer buf = gt_msg_test_encode (msg);
    if (buf.size != size || memcmp (buf.data, bytes, size) != 0)
        fprintf (stderr, "vector %s: re-encoding differs\n", name);
    assert (buf.size == size && memcmp (buf.data, bytes, size) == 0);
    msgpack_sbuffer_destroy (&buf);

    //  JSON mirror: same keys, same order, same values
    json_t *json = gt_msg_to_json (msg);
    assert (json);
    char *expected = json_dumps (value, JSON_PRESERVE_ORDER | JSON_COMPACT);
    char *actual = json_dumps (json, JSON_PRESERVE_ORDER | JSON_COMPACT);
    if (strcmp (expected, actual) != 0)
        fprintf (stderr, "vector %s:\n  expected %s\n  actual   %s\n", name, expected, actual);
    assert (strcmp (expected, actual) == 0);
    free (expected);
    free (actual);
    json_decref (json);

    json_t *topic = json_object_get (doc, "topic");
    if (kind == GT_MSG_EVENT) {
        char computed [256];
        int length = gt_event_topic (computed, sizeof (computed), msg->event.kind,
                                     msg->event.lease.object_type, msg->event.lease.service_id);
        assert (length > 0 && json_is_string (topic));
        assert (strcmp (computed, json_string_value (topic)) == 0);
        coverage->kinds [msg->event.kind] = true;
        if (msg->event.kind == GT_EVENT_OBJECT_RECLAIMED)
            assert (msg->event.reason != GT_REASON_NONE);
    }
    else {
        assert (topic == NULL);
        if (kind == GT_MSG_REQUEST)
            coverage->commands [msg->cmd] = true;
        else
            coverage->codes [msg->code] = true;
    }
    gt_msg_destroy (&msg);
}

static void
s_test_vectors (bool verbose)
{
    s_coverage_t coverage;
    memset (&coverage, 0, sizeof (coverage));
    coverage.verbose = verbose;
    size_t count = s_each_vector (s_check_vector, &coverage);
    assert (count >= 40);
    for (int cmd = GT_CMD_CREATE; cmd < GT_CMD_COUNT_; cmd++)
        assert (coverage.commands [cmd]);
    for (int code = 0; code < GT_CODE_COUNT_; code++)
        assert (coverage.codes [code]);
    for (int kind = 0; kind < GT_EVENT_COUNT_; kind++)
        assert (coverage.kinds [kind]);
}

//  ---------------------------------------------------------------------------
//  5. Robustness

static uint64_t s_random_state = 0x9e3779b97f4a7c15ULL;
static uint64_t
s_random (void)
{
    //  xorshift64*: deterministic, so a failure reproduces
    s_random_state ^= s_random_state >> 12;
    s_random_state ^= s_random_state << 25;
    s_random_state ^= s_random_state >> 27;
    return s_random_state * 0x2545f4914f6cdd1dULL;
}

//  A key, then a value written by the caller
static void
s_key (msgpack_packer *pk, const char *key)
{
    msgpack_pack_str (pk, strlen (key));
    msgpack_pack_str_body (pk, key, strlen (key));
}

//  Flat requests and near-flat ones, each read both ways: every leaf type
//  as a value, the rid as the scan finds it (repeated, not unsigned, in a
//  signed form), a container value, a key that is no string, trailing
//  bytes, a map16 header, truncation
static void
s_test_one_pass (void)
{
    for (int variant = 0; variant < 40; variant++) {
        msgpack_sbuffer buf;
        msgpack_sbuffer_init (&buf);
        msgpack_packer pk;
        msgpack_packer_init (&pk, &buf, msgpack_sbuffer_write);
        bool extra = variant >= 4;          //  one key more than RENEW's four
        if (variant == 30)
            msgpack_sbuffer_write (&buf, "\xde\x00\x05", 3);         //  map16 header, 5 entries
        else
            msgpack_pack_map (&pk, 4 + extra);
        s_key (&pk, "v");
        msgpack_pack_uint64 (&pk, 1);
        s_key (&pk, "rid");
        if (variant == 1) {
            const char int8 [] = { (char) 0xd0, 9 };         //  9 as an int8
            msgpack_sbuffer_write (&buf, int8, 2);
        }
        else
        if (variant == 2)
            msgpack_pack_int64 (&pk, -3);
        else
        if (variant == 3)
            s_key (&pk, "x");
        else
            msgpack_pack_uint64 (&pk, 40 + (uint64_t) variant);
        s_key (&pk, "cmd");
        s_key (&pk, variant == 5 ? "CREATE" : "RENEW");
        s_key (&pk, "lease_id");
        s_key (&pk, "0123456789abcdef0123456789abcdef");
        if (extra) {
            int value = variant % 13;
            if (variant == 31)
                msgpack_pack_uint64 (&pk, 7);           //  a key that is no string
            else
                s_key (&pk, value % 2 ? "rid" : value % 3 ? "service_id" : "ttl_ms");
            switch (value) {
                case 0: msgpack_pack_nil (&pk); break;
                case 1: msgpack_pack_uint64 (&pk, 77); break;
                case 2: msgpack_pack_true (&pk); break;
                case 3: msgpack_pack_double (&pk, 1.5); break;
                case 4: msgpack_pack_float (&pk, 2.5f); break;
                case 5: msgpack_pack_int64 (&pk, -70000); break;
                case 6: msgpack_pack_bin (&pk, 2); msgpack_pack_bin_body (&pk, "ab", 2); break;
                case 7: msgpack_pack_ext (&pk, 1, 5); msgpack_pack_ext_body (&pk, "e", 1); break;
                case 8: msgpack_pack_array (&pk, 1); msgpack_pack_uint64 (&pk, 1); break;
                case 9: msgpack_pack_map (&pk, 0); break;
                case 10: s_key (&pk, "svc"); break;
                case 11: msgpack_pack_uint64 (&pk, 1ULL << 40); break;
                default: msgpack_pack_ext (&pk, 4, -1); msgpack_pack_ext_body (&pk, "abcd", 4); break;
            }
        }
        if (variant == 32)
            msgpack_sbuffer_write (&buf, "\xc0", 1);                 //  trailing bytes
        if (variant == 33)
            msgpack_sbuffer_write (&buf, "\xc1", 1);
        if (variant == 34) {
            //  A map of 40 entries (more than are read in one pass), the
            //  extra ones unknown keys: valid, read by the two passes
            msgpack_sbuffer_clear (&buf);
            msgpack_pack_map (&pk, 44);
            s_key (&pk, "v");
            msgpack_pack_uint64 (&pk, 1);
            s_key (&pk, "rid");
            msgpack_pack_uint64 (&pk, 8);
            s_key (&pk, "cmd");
            s_key (&pk, "GET");
            s_key (&pk, "lease_id");
            s_key (&pk, "0123456789abcdef0123456789abcdef");
            for (int index = 0; index < 40; index++) {
                char key [16];
                snprintf (key, sizeof (key), "x%d", index);
                s_key (&pk, key);
                msgpack_pack_uint64 (&pk, (uint64_t) index);
            }
            gt_msg_t *msg = NULL;
            assert (gt_msg_decode (buf.data, buf.size, GT_MSG_REQUEST, &msg, NULL, NULL, 0) == GT_OK);
            assert (msg->cmd == GT_CMD_GET && msg->rid == 8);
            gt_msg_destroy (&msg);
        }
        if (variant == 35) {
            //  str16 and str32 keys, bin16, ext16 and fixext values
            const char body [] =
                "\x86" "\xda\x00\x01" "v" "\x01" "\xdb\x00\x00\x00\x03" "rid" "\x05"
                "\xa3" "cmd" "\xa3" "GET" "\xa8" "lease_id" "\xd9\x20" "0123456789abcdef0123456789abcdef"
                "\xa1" "b" "\xc5\x00\x02" "ab"
                "\xa1" "e" "\xc8\x00\x01\x07" "z";
            msgpack_sbuffer_clear (&buf);
            msgpack_sbuffer_write (&buf, body, sizeof (body) - 1);
            gt_msg_t *msg = NULL;
            uint64_t rid = 0;
            assert (gt_msg_decode (buf.data, buf.size, GT_MSG_REQUEST, &msg, &rid, NULL, 0) == GT_OK);
            assert (rid == 5 && msg->cmd == GT_CMD_GET);
            gt_msg_destroy (&msg);
        }
        s_one_pass_agrees (buf.data, buf.size, GT_MSG_REQUEST);
        //  Every prefix (truncations) too
        for (size_t length = 0; length < buf.size; length += 3)
            s_one_pass_agrees (length ? buf.data : NULL, length, GT_MSG_REQUEST);
        msgpack_sbuffer_destroy (&buf);
    }
}

//  Destroy a message that a test has no further use for
static void
s_destroy (gt_msg_t *msg)
{
    gt_msg_destroy (&msg);
}

//  A request map of keys entries, starting with v 1, rid and cmd (its
//  bytes: NULs allowed); the caller writes the other keys
static void
s_request_start (msgpack_packer *pk, size_t keys, uint64_t rid, const char *cmd, size_t cmd_size)
{
    msgpack_pack_map (pk, keys);
    s_key (pk, "v");
    msgpack_pack_uint64 (pk, 1);
    s_key (pk, "rid");
    msgpack_pack_uint64 (pk, rid);
    s_key (pk, "cmd");
    msgpack_pack_str (pk, cmd_size);
    msgpack_pack_str_body (pk, cmd, cmd_size);
}

//  A GET request with one more key, "x", whose value the caller writes:
//  unknown keys are ignored, so only the shape of x decides the verdict
static void
s_get_with_x (msgpack_packer *pk)
{
    s_request_start (pk, 5, 9, "GET", 3);
    s_key (pk, "lease_id");
    s_key (pk, "0123456789abcdef0123456789abcdef");
    s_key (pk, "x");
}

//  Nested bodies at the one pass's edges, each read both ways: nesting at
//  GT_MAX_DEPTH and one deeper, containers at the one pass's element bound
//  and one more, a nested map key that is no string, a count beyond the
//  bytes, and a reply and an event with everything nested that they can
//  carry
static void
s_test_one_pass_nested (void)
{
    msgpack_sbuffer buf;
    msgpack_sbuffer_init (&buf);
    msgpack_packer pk;
    msgpack_packer_init (&pk, &buf, msgpack_sbuffer_write);
    //  x at depth 2, then 6 or 7 arrays inside it: 8 levels, then 9
    for (int arrays = 7; arrays <= 8; arrays++) {
        msgpack_sbuffer_clear (&buf);
        s_get_with_x (&pk);
        for (int level = 0; level < arrays; level++)
            msgpack_pack_array (&pk, level + 1 < arrays ? 1 : 0);
        gt_msg_t *msg = gt_msg_test_expect (buf.data, buf.size, GT_MSG_REQUEST,
                                            arrays == 7 ? GT_OK : GT_ERR_INVALID_ARGUMENT, 9,
                                            arrays == 7 ? NULL : "nested deeper than 8 levels");
        assert (gt_msg_one_pass_reads (buf.data, buf.size) == (arrays == 7));
        gt_msg_destroy (&msg);
        s_one_pass_agrees (buf.data, buf.size, GT_MSG_REQUEST);
    }
    //  1,024 elements, then 1,025, as an array and as a map
    for (int elements = 1024; elements <= 1025; elements++)
        for (int map = 0; map <= 1; map++) {
            msgpack_sbuffer_clear (&buf);
            s_get_with_x (&pk);
            if (map)
                msgpack_pack_map (&pk, (size_t) elements);
            else
                msgpack_pack_array (&pk, (size_t) elements);
            for (int index = 0; index < elements; index++) {
                if (map) {
                    char key [16];
                    snprintf (key, sizeof key, "k%d", index);
                    s_key (&pk, key);
                }
                msgpack_pack_uint64 (&pk, (uint64_t) index);
            }
            gt_msg_t *msg = gt_msg_test_expect (buf.data, buf.size, GT_MSG_REQUEST, GT_OK, 9, NULL);
            assert (msg->cmd == GT_CMD_GET);
            assert (gt_msg_one_pass_reads (buf.data, buf.size) == (elements == 1024));
            gt_msg_destroy (&msg);
            s_one_pass_agrees (buf.data, buf.size, GT_MSG_REQUEST);
        }
    //  A map in x with an integer key: ignored, so valid; in metadata, named
    msgpack_sbuffer_clear (&buf);
    s_get_with_x (&pk);
    msgpack_pack_map (&pk, 1);
    msgpack_pack_uint64 (&pk, 5);
    msgpack_pack_nil (&pk);
    s_one_pass_agrees (buf.data, buf.size, GT_MSG_REQUEST);
    s_destroy (gt_msg_test_expect (buf.data, buf.size, GT_MSG_REQUEST, GT_OK, 9, NULL));
    assert (!gt_msg_one_pass_reads (buf.data, buf.size));
    msgpack_sbuffer_clear (&buf);
    s_request_start (&pk, 5, 10, "CREATE", 6);
    s_key (&pk, "object_id");
    s_key (&pk, "o");
    s_key (&pk, "metadata");
    msgpack_pack_map (&pk, 1);
    msgpack_pack_uint64 (&pk, 5);
    s_key (&pk, "v");
    s_destroy (gt_msg_test_expect (buf.data, buf.size, GT_MSG_REQUEST, GT_ERR_INVALID_ARGUMENT, 10,
                                   "metadata[0].key: expected string"));
    s_one_pass_agrees (buf.data, buf.size, GT_MSG_REQUEST);
    //  An array claiming 2^32 - 1 elements, and one claiming one more than
    //  the bytes after it
    static const char beyond [][80] = {
        "\x85\xa1v\x01\xa3rid\x0b\xa3" "cmd\xa3GET\xa8lease_id\xd9\x20" "0123456789abcdef0123456789abcdef"
        "\xa1x\xdd\xff\xff\xff\xff\x01",
        "\x85\xa1v\x01\xa3rid\x0b\xa3" "cmd\xa3GET\xa8lease_id\xd9\x20" "0123456789abcdef0123456789abcdef"
        "\xa1x\x93\x01\x02"
    };
    for (int index = 0; index < 2; index++) {
        size_t size = strlen (beyond [index]);     //  (no NUL inside)
        s_destroy (gt_msg_test_expect (beyond [index], size, GT_MSG_REQUEST, GT_ERR_INVALID_ARGUMENT, 11,
                                       "truncated or malformed"));
        s_one_pass_agrees (beyond [index], size, GT_MSG_REQUEST);
    }

    //  Every container and string in its widest form (map32, array32,
    //  str32): read in one pass, as the narrow forms are
    const char wide [] = "\xdf\x00\x00\x00\x05"
                         "\xdb\x00\x00\x00\x01" "v" "\x01"
                         "\xdb\x00\x00\x00\x03" "rid" "\xcf\x00\x00\x00\x00\x00\x00\x00\x0c"
                         "\xdb\x00\x00\x00\x04" "code" "\xdb\x00\x00\x00\x02" "OK"
                         "\xdb\x00\x00\x00\x06" "leases" "\xdd\x00\x00\x00\x00"
                         "\xdb\x00\x00\x00\x06" "cursor" "\xdb\x00\x00\x00\x00";
    gt_msg_t *listed = gt_msg_test_expect (wide, sizeof wide - 1, GT_MSG_REPLY, GT_OK, 12, NULL);
    assert (listed->leases_present && listed->lease_count == 0 && strcmp (listed->cursor, "") == 0);
    s_destroy (listed);
    assert (gt_msg_one_pass_reads (wide, sizeof wide - 1));
    s_one_pass_agrees (wide, sizeof wide - 1, GT_MSG_REPLY);
    //  A top-level key that is no string: the scan names it
    const char int_key [] = "\x84\x07\x01\xa1v\x01\xa3rid\x0d\xa4" "code" "\xa2OK";
    s_destroy (gt_msg_test_expect (int_key, sizeof int_key - 1, GT_MSG_REPLY, GT_ERR_INVALID_ARGUMENT, 13,
                                   "body: map key is not a string"));
    assert (!gt_msg_one_pass_reads (int_key, sizeof int_key - 1));
    s_one_pass_agrees (int_key, sizeof int_key - 1, GT_MSG_REPLY);

    //  A reply and an event carrying a lease with metadata and cleanup, and
    //  a LIST reply of three such leases; each prefix too
    gt_meta_entry_t entries [] = { { (char *) "a", (char *) "1" }, { (char *) "b", (char *) "2" } };
    gt_cleanup_t cleanup = { (char *) "http://127.0.0.1:9/c", (char *) "{}", true, 4, true, 250 };
    gt_lease_info_t lease;
    memset (&lease, 0, sizeof lease);
    memcpy (lease.id, "00112233445566778899aabbccddeeff", GT_LEASE_ID_LEN + 1);
    lease.object_id = (char *) "object";
    lease.service_id = (char *) "service";
    lease.object_type = GT_TYPE_BLOB_STORAGE;
    lease.state = GT_STATE_ACTIVE;
    lease.ttl_ms = lease.expires_at = 1000;
    lease.metadata.entries = entries;
    lease.metadata.count = 2;
    lease.cleanup = &cleanup;
    gt_lease_info_t leases [3] = { lease, lease, lease };
    gt_msg_t messages [3];
    memset (messages, 0, sizeof messages);
    messages [0] = (gt_msg_t) { .kind = GT_MSG_REPLY, .version = 1, .rid = 12, .code = GT_OK, .lease = &lease };
    messages [1] = (gt_msg_t) { .kind = GT_MSG_REPLY, .version = 1, .rid = 13, .code = GT_OK,
                                .leases = leases, .lease_count = 3, .leases_present = true };
    messages [2] = (gt_msg_t) { .kind = GT_MSG_EVENT, .version = 1 };
    messages [2].event.kind = GT_EVENT_LEASE_CREATED;
    messages [2].event.seq = 1;
    messages [2].event.lease = lease;
    for (int index = 0; index < 3; index++) {
        msgpack_sbuffer_clear (&buf);
        assert (gt_msg_encode (&messages [index], &buf) == 0);
        assert (gt_msg_one_pass_reads (buf.data, buf.size));
        gt_msg_t *msg = gt_msg_test_expect (buf.data, buf.size, messages [index].kind, GT_OK,
                                            messages [index].rid, NULL);
        s_test_same_encoding (msg, &messages [index]);
        gt_msg_destroy (&msg);
        for (size_t length = 0; length <= buf.size; length++)
            s_one_pass_agrees (length ? buf.data : NULL, length, messages [index].kind);
    }
    //  An event with a "rid" (not one of its keys): ignored, and no rid is
    //  reported for an event either way
    msgpack_sbuffer_clear (&buf);
    assert (gt_msg_encode (&messages [2], &buf) == 0);
    assert ((uint8_t) buf.data [0] >= 0x80 && (uint8_t) buf.data [0] < 0x8f);
    buf.data [0]++;
    msgpack_sbuffer_write (&buf, "\xa3rid\x05", 5);
    s_destroy (gt_msg_test_expect (buf.data, buf.size, GT_MSG_EVENT, GT_OK, 0, NULL));
    assert (gt_msg_one_pass_reads (buf.data, buf.size));
    s_one_pass_agrees (buf.data, buf.size, GT_MSG_EVENT);
    //  ... nor when the event is refused (here a second "kind")
    buf.data [0]++;
    msgpack_sbuffer_write (&buf, "\xa4kind\xa1x", 7);
    s_destroy (gt_msg_test_expect (buf.data, buf.size, GT_MSG_EVENT, GT_ERR_INVALID_ARGUMENT, 0,
                                   "kind: duplicate key"));
    assert (gt_msg_one_pass_reads (buf.data, buf.size));
    s_one_pass_agrees (buf.data, buf.size, GT_MSG_EVENT);
    msgpack_sbuffer_destroy (&buf);
}

//  Whatever decodes must encode again and have a JSON mirror
static void
s_decode_anything (const void *data, size_t size, gt_msg_kind_t kind)
{
    s_one_pass_agrees (data, size, kind);
    gt_msg_t *msg;
    uint64_t rid;
    char err [128];
    if (gt_msg_decode (data, size, kind, &msg, &rid, err, sizeof (err)) == GT_OK) {
        msgpack_sbuffer buf = gt_msg_test_encode (msg);
        msgpack_sbuffer_destroy (&buf);
        json_t *json = gt_msg_to_json (msg);
        assert (json);
        json_decref (json);
        gt_msg_destroy (&msg);
    }
    else
        assert (msg == NULL && err [0]);
}

static void
s_fuzz_vector (const char *name, gt_msg_kind_t kind, json_t *doc,
               const uint8_t *bytes, size_t size, void *arg)
{
    (void) name; (void) doc; (void) arg;
    //  Every proper prefix of a map is incomplete, hence rejected
    for (size_t length = 0; length < size; length++) {
        gt_msg_t *msg;
        gt_code_t code = gt_msg_decode (bytes, length, kind, &msg, NULL, NULL, 0);
        assert (code == GT_ERR_INVALID_ARGUMENT && msg == NULL);
    }
    uint8_t *copy = (uint8_t *) malloc (size);
    assert (copy);
    for (int round = 0; round < 100; round++) {
        memcpy (copy, bytes, size);
        int flips = 1 + (int) (s_random () % 3);
        for (int flip = 0; flip < flips; flip++)
            copy [s_random () % size] ^= (uint8_t) (1u << (s_random () % 8));
        s_decode_anything (copy, size, kind);
    }
    free (copy);
}

static void
s_test_robustness (void)
{
    s_each_vector (s_fuzz_vector, NULL);
    static const uint8_t alphabet [] = {
        0x80, 0x81, 0x85, 0x90, 0x91, 0xa1, 0xa3, 0xc0, 0xc1, 0xc2, 0xc3, 0xcc, 0xcf,
        0xd0, 0xd9, 0xdc, 0xdd, 0xde, 0xdf, 0xc7, 0xd4, 0xff, 0x00, 0x01, 'v', 'r', 'i', 'd'
    };
    uint8_t garbage [64];
    for (int round = 0; round < 3000; round++) {
        size_t size = (size_t) (s_random () % sizeof (garbage));
        for (size_t index = 0; index < size; index++)
            garbage [index] = (s_random () & 1)? (uint8_t) s_random ()
                            : alphabet [s_random () % sizeof (alphabet)];
        s_decode_anything (garbage, size, (gt_msg_kind_t) (round % 3));
    }
}

//  The decoder finds request keys by length first: every key name is its
//  own key, and nothing else is one (prefixes, longer, other case, a NUL)
static void
s_test_request_keys (void)
{
    for (int key = 0; key < GT_REQ_END; key++) {
        const char *name = gt_req_key_names [key];
        assert (gt_msg_request_key (name, strlen (name)) == key);
        //  A prefix is no key, unless it is another one ("lease_ids")
        int prefix = gt_msg_request_key (name, strlen (name) - 1);
        assert (prefix == -1 || (key == GT_REQ_LEASE_IDS && prefix == GT_REQ_LEASE_ID));
        char longer [40];
        snprintf (longer, sizeof longer, "%sx", name);
        assert (gt_msg_request_key (longer, strlen (longer)) == -1);
        char upper [40];
        snprintf (upper, sizeof upper, "%s", name);
        upper [0] = (char) (upper [0] - 'a' + 'A');
        assert (gt_msg_request_key (upper, strlen (upper)) == -1);
    }
    assert (gt_msg_request_key ("v", 1) == GT_REQ_END + 0);
    assert (gt_msg_request_key ("rid", 3) == GT_REQ_END + 1);
    assert (gt_msg_request_key ("cmd", 3) == GT_REQ_END + 2);
    assert (gt_msg_request_key ("ri\0", 3) == -1);
    assert (gt_msg_request_key ("", 0) == -1);
    assert (gt_msg_request_key ("w", 1) == -1);
}

//  Strings are checked eight bytes at a time when plain ASCII, else byte
//  by byte: a NUL, a byte past 0x7F or a bad UTF-8 sequence at any place
//  of strings of every length up to 24 is found (and named) as before,
//  and good UTF-8 passes
static void
s_test_plain_strings (void)
{
    struct { const char *bytes; size_t size; const char *err; } bad [] = {
        { "\0", 1, "object_id: contains a NUL byte" },
        { "\x80", 1, "object_id: invalid UTF-8" },
        { "\xff", 1, "object_id: invalid UTF-8" },
        { "\xc3\xa9", 2, NULL },                   //  é: good
        { "\x7f", 1, NULL },                        //  DEL is ASCII (only service ids refuse it)
        { "\x80\0", 2, "object_id: contains a NUL byte" },     //  a NUL is named first
        { "\0\x01", 2, "object_id: contains a NUL byte" },     //  the byte after it borrows
    };
    for (size_t length = 1; length <= 24; length++)
        for (size_t at = 0; at + 1 <= length; at++)
            for (size_t which = 0; which < sizeof bad / sizeof bad [0]; which++) {
                char text [32];
                memset (text, 'o', sizeof text);
                if (at + bad [which].size > length)
                    continue;
                memcpy (text + at, bad [which].bytes, bad [which].size);
                msgpack_sbuffer buf;
                msgpack_sbuffer_init (&buf);
                msgpack_packer pk;
                msgpack_packer_init (&pk, &buf, msgpack_sbuffer_write);
                msgpack_pack_map (&pk, 5);
                s_key (&pk, "v");
                msgpack_pack_uint64 (&pk, 1);
                s_key (&pk, "rid");
                msgpack_pack_uint64 (&pk, 7);
                s_key (&pk, "cmd");
                s_key (&pk, "CREATE");
                s_key (&pk, "service_id");
                s_key (&pk, "svc");
                s_key (&pk, "object_id");
                msgpack_pack_str (&pk, length);
                msgpack_pack_str_body (&pk, text, length);
                gt_msg_t *msg = gt_msg_test_expect (buf.data, buf.size, GT_MSG_REQUEST,
                                                    bad [which].err ? GT_ERR_INVALID_ARGUMENT : GT_OK, 7,
                                                    bad [which].err);
                if (msg)
                    assert (memcmp (msg->object_id, text, length) == 0 && msg->object_id [length] == '\0');
                gt_msg_destroy (&msg);
                s_one_pass_agrees (buf.data, buf.size, GT_MSG_REQUEST);
                msgpack_sbuffer_destroy (&buf);
            }
}

//  A request's top-level map is read straight into its slots, an unknown
//  key as often as it comes; a known key twice is left to the tree's path
//  (which names it), and what the one pass cannot read to the two passes
static void
s_test_request_slots (void)
{
    msgpack_sbuffer buf;
    msgpack_sbuffer_init (&buf);
    msgpack_packer pk;
    msgpack_packer_init (&pk, &buf, msgpack_sbuffer_write);
    for (int variant = 0; variant < 4; variant++) {
        msgpack_sbuffer_clear (&buf);
        msgpack_pack_map (&pk, variant == 0 ? 4 : 6);
        s_key (&pk, "v");
        msgpack_pack_uint64 (&pk, 1);
        s_key (&pk, "rid");
        msgpack_pack_uint64 (&pk, 300);
        s_key (&pk, "cmd");
        s_key (&pk, "GET");
        s_key (&pk, "lease_id");
        s_key (&pk, "0123456789abcdef0123456789abcdef");
        if (variant > 0) {
            //  1, 2: an unknown key twice (2: its value a map); 3: "rid" again
            const char *again = variant == 3 ? "rid" : "x";
            for (int twice = 0; twice < 2; twice++) {
                s_key (&pk, twice ? again : "x");
                if (variant == 2)
                    msgpack_pack_map (&pk, 0);
                else
                    msgpack_pack_uint64 (&pk, 7);
            }
        }
        int read = gt_msg_request_slots_read (buf.data, buf.size);
        assert (read == (variant == 3 ? 0 : 1));
        gt_msg_t *msg = gt_msg_test_expect (buf.data, buf.size, GT_MSG_REQUEST,
                                            variant == 3 ? GT_ERR_INVALID_ARGUMENT : GT_OK, 300,
                                            variant == 3 ? "rid: duplicate key" : NULL);
        if (msg)
            assert (msg->cmd == GT_CMD_GET && msg->rid == 300);
        gt_msg_destroy (&msg);
        s_one_pass_agrees (buf.data, buf.size, GT_MSG_REQUEST);
        //  Cut short, or with a byte after it: unreadable in one pass
        //  (unless a known key came twice before)
        assert (gt_msg_request_slots_read (buf.data, buf.size - 1) == (variant == 3 ? 0 : -1));
        s_one_pass_agrees (buf.data, buf.size - 1, GT_MSG_REQUEST);
        msgpack_sbuffer_write (&buf, "\x01", 1);
        assert (gt_msg_request_slots_read (buf.data, buf.size) == (variant == 3 ? 0 : -1));
        s_one_pass_agrees (buf.data, buf.size, GT_MSG_REQUEST);
    }
    assert (gt_msg_request_slots_read ("", 0) == -1);
    assert (gt_msg_request_slots_read ("\x90", 1) == -1);    //  an array, not a map
    msgpack_sbuffer_destroy (&buf);
}

//  The decoder finds a command and an object type by length first: each
//  name is its own value, and a prefix, a longer name, another case or an
//  empty one is none
typedef int (s_name_of_fn) (const char *name, size_t size);

static void
s_check_names_of (s_name_of_fn *name_of, const char *(*name) (int), int count, int first)
{
    for (int value = first; value < count; value++) {
        const char *text = name (value);
        assert (text);
        size_t size = strlen (text);
        assert (name_of (text, size) == value);
        assert (name_of (text, size - 1) == -1);
        char longer [40];
        snprintf (longer, sizeof longer, "%sX", text);
        assert (name_of (longer, size + 1) == -1);
        char lower [40];
        snprintf (lower, sizeof lower, "%s", text);
        lower [0] = (char) (lower [0] - 'A' + 'a');
        assert (name_of (lower, size) == -1);
        char last [40];
        snprintf (last, sizeof last, "%s", text);
        last [size - 1] = '\0';
        assert (name_of (last, size) == -1);
    }
    assert (name_of ("", 0) == -1);
    assert (name_of ("NONE", 4) == -1);
}

static const char *s_cmd_name_of (int value) { return gt_cmd_name ((gt_cmd_t) value); }
static const char *s_type_name_of (int value) { return gt_object_type_name ((gt_object_type_t) value); }

static void
s_test_name_lookups (void)
{
    s_check_names_of (gt_msg_command_of, s_cmd_name_of, GT_CMD_COUNT_, GT_CMD_NONE + 1);
    s_check_names_of (gt_msg_object_type_of, s_type_name_of, GT_TYPE_COUNT_, 0);
}

//  Likewise the keys of a LEASE map and of a reply: each name is its own
//  slot, and a prefix, a longer key or another case is none (or another
//  name's)
typedef int (s_key_fn) (const char *key, size_t key_len);

static void
s_test_key_list (const char *const *names, int count, s_key_fn *key_of)
{
    for (int key = 0; key < count; key++) {
        const char *name = names [key];
        size_t length = strlen (name);
        assert (key_of (name, length) == key);
        int prefix = key_of (name, length - 1);
        assert (prefix == -1 || (prefix < count && strlen (names [prefix]) == length - 1
                                 && memcmp (names [prefix], name, length - 1) == 0));
        char longer [40];
        snprintf (longer, sizeof longer, "%sx", name);
        int longer_key = key_of (longer, length + 1);
        assert (longer_key == -1 || (longer_key < count && strcmp (names [longer_key], longer) == 0));
        char upper [40];
        snprintf (upper, sizeof upper, "%s", name);
        upper [0] = (char) (upper [0] - 'a' + 'A');
        assert (key_of (upper, length) == -1);
        char with_nul [40];
        memcpy (with_nul, name, length);
        with_nul [length - 1] = '\0';
        assert (key_of (with_nul, length) == -1);
    }
    assert (key_of ("", 0) == -1);
    assert (key_of ("zz", 2) == -1);
}

//  An enum's name is matched whole: a prefix, a longer string, another
//  case or a NUL inside names nothing
static void
s_test_enum_names (void)
{
    static const struct { const char *bytes; size_t size; const char *err; } cases [] = {
        { "CREAT", 5, "cmd: unknown command 'CREAT'" },
        { "CREATEX", 7, "cmd: unknown command 'CREATEX'" },
        { "create", 6, "cmd: unknown command 'create'" },
        { "CREATE\0", 7, "cmd: unknown command" },
        { "RENEW_BATCHES", 13, "cmd: unknown command 'RENEW_BATCHES'" },
    };
    for (size_t index = 0; index < sizeof cases / sizeof cases [0]; index++) {
        msgpack_sbuffer buf;
        msgpack_sbuffer_init (&buf);
        msgpack_packer pk;
        msgpack_packer_init (&pk, &buf, msgpack_sbuffer_write);
        s_request_start (&pk, 3, 4, cases [index].bytes, cases [index].size);
        s_destroy (gt_msg_test_expect (buf.data, buf.size, GT_MSG_REQUEST, GT_ERR_UNSUPPORTED_COMMAND, 4,
                                       cases [index].err));
        msgpack_sbuffer_destroy (&buf);
    }
    //  Every name of every command is its command
    for (int cmd = GT_CMD_CREATE; cmd < GT_CMD_COUNT_; cmd++) {
        msgpack_sbuffer buf;
        msgpack_sbuffer_init (&buf);
        msgpack_packer pk;
        msgpack_packer_init (&pk, &buf, msgpack_sbuffer_write);
        const char *name = gt_cmd_name ((gt_cmd_t) cmd);
        s_request_start (&pk, 3, 4, name, strlen (name));
        gt_msg_t *msg = NULL;
        //  (most fail for want of their own keys; the command is known)
        char err [256] = "";
        gt_code_t code = gt_msg_decode (buf.data, buf.size, GT_MSG_REQUEST, &msg, NULL, err, sizeof err);
        assert (code != GT_ERR_UNSUPPORTED_COMMAND);
        assert (code != GT_OK || msg->cmd == (gt_cmd_t) cmd);
        gt_msg_destroy (&msg);
        msgpack_sbuffer_destroy (&buf);
    }
}

static void
s_test_lease_and_reply_keys (void)
{
    s_test_key_list (gt_lease_key_names, GT_LEASE_KEY_COUNT, gt_msg_lease_key);
    s_test_key_list (gt_reply_key_names, GT_REPLY_KEY_COUNT, gt_msg_reply_key);
    //  "lease" and "leases", "version" and "versions": each its own
    assert (gt_msg_reply_key ("lease", 5) == 9 && gt_msg_reply_key ("leases", 6) == 10);
    assert (gt_msg_reply_key ("version", 7) == 14 && gt_msg_reply_key ("versions", 8) == 4);
}

void
gt_msg_test (bool verbose)
{
    if (verbose)
        printf (" * gt_msg:\n");
    s_test_widths ();
    s_test_request_keys ();
    s_test_name_lookups ();
    s_test_plain_strings ();
    s_test_request_slots ();
    s_test_lease_and_reply_keys ();
    s_test_enum_names ();
    s_test_round_trips ();
    s_test_cluster ();
    s_test_unencodable ();
    s_test_lease_reuse ();
    s_test_vectors (verbose);
    gt_msg_test_rejections ();
    s_test_one_pass ();
    s_test_one_pass_nested ();
    s_test_robustness ();
    if (verbose)
        printf (" * gt_msg: OK\n");
}

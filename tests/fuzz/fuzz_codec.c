/*  fuzz_codec.c — libFuzzer harness of the GTLP/1 decoder (sdk/c/gt_msg.h).

    The broker decodes every request body it receives, from anyone who can
    reach its port: gt_msg_decode (..., GT_MSG_REQUEST, ...) is the first
    code that reads untrusted bytes.  The clients decode replies and events
    (gt_client, gt_subscriber).  Each input is decoded the three ways.

    Invariants checked (an abort is a finding):
      - the sanitizers' (ASan, UBSan, LeakSanitizer): no overflow, no UB,
        everything freed;
      - the documented contract of gt_msg_decode: GT_OK with a message, or
        an error code with *msg_p NULL and a message in err (terminated);
        on success *rid_p is the message's rid;
      - a decoded request is valid (v 1, a rid > 0), so it encodes
        (gt_msg_encode_alloc), and its canonical encoding decodes again and
        re-encodes to the same bytes: encode (decode (x)) is a fixed point;
      - a decoded reply or event likewise: whatever the decoder accepts the
        encoder can write, and the canonical bytes round-trip;
      - the JSON mirror (gt_msg_to_json) of any decoded message exists;
      - a body decodes alike through the one-pass reading (gt_msg_decode,
        the reusable decoder) and through both passes
        (gt_msg_decode_two_pass), as a request, a reply and an event: the
        same verdict, error text, rid and message.

    Built twice (tests/fuzz/CMakeLists.txt): with clang's libFuzzer
    (GT_FUZZ=ON, tests/run-all), and with fuzz_driver.c as a plain program
    that the ordinary ctest runs over the seeds and the regressions.  */
#include "gt_msg.h"
#include "gt_msg_private.h"
#include "fuzz_check.h"
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

static const char *const s_kind_names [] = { "request", "reply", "event" };

//  Encode msg; the bytes (caller frees) or NULL if the encoder refused
static uint8_t *
s_encode (const gt_msg_t *msg, size_t *size_p)
{
    void *data = NULL;
    size_t size = 0;
    if (gt_msg_encode_alloc (msg, &data, &size) != 0) {
        FUZZ_CHECK (data == NULL && size == 0, "a refused encoding left data behind");
        return NULL;
    }
    FUZZ_CHECK (data != NULL && size > 0, "an encoding of 0 bytes");
    *size_p = size;
    return (uint8_t *) data;
}

//  Decode data as kind and check the contract; the message or NULL
static gt_msg_t *
s_decode (const uint8_t *data, size_t size, gt_msg_kind_t kind)
{
    gt_msg_t *msg = (gt_msg_t *) (uintptr_t) 1;     //  must be overwritten
    uint64_t rid = UINT64_MAX - 1;
    char err [512];
    memset (err, 'x', sizeof (err));
    gt_code_t code = gt_msg_decode (size? data: NULL, size, kind, &msg, &rid, err, sizeof (err));
    FUZZ_CHECK (memchr (err, 0, sizeof (err)) != NULL, "%s: err not terminated", s_kind_names [kind]);
    if (code != GT_OK) {
        FUZZ_CHECK (msg == NULL, "%s: decode failed (%d) but returned a message", s_kind_names [kind], code);
        FUZZ_CHECK (err [0] != '\0', "%s: decode failed (%d) without a message", s_kind_names [kind], code);
        return NULL;
    }
    FUZZ_CHECK (msg != NULL, "%s: GT_OK without a message", s_kind_names [kind]);
    FUZZ_CHECK (msg->kind == kind, "%s: decoded as kind %d", s_kind_names [kind], (int) msg->kind);
    FUZZ_CHECK (msg->version == GT_PROTOCOL_VERSION, "%s: accepted version %llu",
                s_kind_names [kind], (unsigned long long) msg->version);
    FUZZ_CHECK (rid == msg->rid, "%s: *rid_p %llu, message rid %llu", s_kind_names [kind],
                (unsigned long long) rid, (unsigned long long) msg->rid);
    if (kind == GT_MSG_REQUEST)
        FUZZ_CHECK (msg->rid != 0, "request: accepted rid 0 (reserved)");
    //  The decoder's own parameter checks never fail on a valid call: a
    //  smaller buffer and no rid_p must give the same verdict
    gt_msg_t *again = NULL;
    char small [8];
    FUZZ_CHECK (gt_msg_decode (data, size, kind, &again, NULL, small, sizeof (small)) == GT_OK,
                "%s: verdict depends on err_size or rid_p", s_kind_names [kind]);
    gt_msg_destroy (&again);
    //  The reusable decoder (parts in its zone) accepts it too, and what it
    //  decoded encodes to the same bytes as the heap message
    gt_msg_decoder_t *decoder = gt_msg_decoder_new ();
    const gt_msg_t *borrowed = NULL;
    FUZZ_CHECK (gt_msg_decoder_decode (decoder, data, size, kind, &borrowed, NULL, small, sizeof (small)) == GT_OK
                && borrowed, "%s: the reusable decoder refuses what gt_msg_decode accepts", s_kind_names [kind]);
    size_t mine_size = 0, theirs_size = 0;
    uint8_t *mine = s_encode (msg, &mine_size);
    uint8_t *theirs = s_encode (borrowed, &theirs_size);
    FUZZ_CHECK ((mine == NULL) == (theirs == NULL)
                && (!mine || (mine_size == theirs_size && memcmp (mine, theirs, mine_size) == 0)),
                "%s: the reusable decoder's message encodes differently", s_kind_names [kind]);
    free (mine);
    free (theirs);
    gt_msg_decoder_destroy (&decoder);
    return msg;
}

static void
s_round_trip (const uint8_t *data, size_t size, gt_msg_kind_t kind)
{
    gt_msg_t *msg = s_decode (data, size, kind);
    if (!msg)
        return;
    const char *name = s_kind_names [kind];
    size_t first_size = 0;
    uint8_t *first = s_encode (msg, &first_size);
    //  Whatever the decoder accepted, the encoder can write (gt_msg_encode
    //  refuses only a message missing a required field: a decoded one has
    //  them all)
    FUZZ_CHECK (first != NULL, "%s: decoded, but the encoder refuses it", name);
    json_t *json = gt_msg_to_json (msg);
    FUZZ_CHECK (json != NULL, "%s: decoded, but no JSON mirror", name);
    char *text = json_dumps (json, JSON_COMPACT | JSON_ENCODE_ANY);
    FUZZ_CHECK (text != NULL, "%s: JSON mirror does not serialise", name);
    free (text);
    json_decref (json);
    gt_msg_destroy (&msg);
    FUZZ_CHECK (msg == NULL, "gt_msg_destroy did not null the pointer");

    //  The canonical bytes decode, and encode to themselves
    gt_msg_t *decoded = s_decode (first, first_size, kind);
    FUZZ_CHECK (decoded != NULL, "%s: its own canonical encoding (%zu bytes) does not decode",
                name, first_size);
    size_t second_size = 0;
    uint8_t *second = s_encode (decoded, &second_size);
    FUZZ_CHECK (second != NULL, "%s: canonical encoding decoded, but does not encode", name);
    FUZZ_CHECK (second_size == first_size && memcmp (first, second, first_size) == 0,
                "%s: encode (decode (x)) is not a fixed point (%zu then %zu bytes)",
                name, first_size, second_size);
    free (second);
    //  An event's LEASE map, located by gt_msg_encode_event, makes the same
    //  reply as gt_msg_encode of an OK reply with that lease (the broker
    //  answers changes so), and the same event
    if (kind == GT_MSG_EVENT) {
        msgpack_sbuffer event;
        msgpack_sbuffer_init (&event);
        size_t offset = 0, lease_size = 0;
        FUZZ_CHECK (gt_msg_encode_event (decoded, &event, &offset, &lease_size) == 0
                    && event.size == first_size && memcmp (event.data, first, first_size) == 0
                    && lease_size > 0 && offset + lease_size <= first_size,
                    "event: gt_msg_encode_event differs from gt_msg_encode");
        gt_msg_t reply;
        memset (&reply, 0, sizeof (reply));
        reply.kind = GT_MSG_REPLY;
        reply.version = GT_PROTOCOL_VERSION;
        reply.rid = 99;
        reply.code = GT_OK;
        reply.lease = &decoded->event.lease;
        size_t expected_size = 0;
        uint8_t *expected = s_encode (&reply, &expected_size);
        msgpack_sbuffer shortcut;
        msgpack_sbuffer_init (&shortcut);
        FUZZ_CHECK (expected && gt_msg_encode_lease_reply (99, event.data + offset, lease_size, &shortcut) == 0
                    && shortcut.size == expected_size && memcmp (shortcut.data, expected, expected_size) == 0,
                    "event: the reply made from its LEASE bytes differs from the encoded reply");
        free (expected);
        //  ... and the same event again from those bytes (an end's reclaim)
        msgpack_sbuffer again;
        msgpack_sbuffer_init (&again);
        size_t again_offset = 0;
        FUZZ_CHECK (gt_msg_encode_event_with_lease (decoded, event.data + offset, lease_size, &again,
                                                    &again_offset) == 0
                    && again.size == first_size && memcmp (again.data, first, first_size) == 0
                    && again_offset == offset,
                    "event: gt_msg_encode_event_with_lease differs from gt_msg_encode");
        msgpack_sbuffer_destroy (&again);
        msgpack_sbuffer_destroy (&shortcut);
        msgpack_sbuffer_destroy (&event);
    }
    free (first);
    gt_msg_destroy (&decoded);
}

//  A body gets the same verdict, error message and rid from gt_msg_decode
//  (which reads most bodies in one pass) as from both passes
//  (gt_msg_decode_two_pass), and, accepted, the same message; so does the
//  reusable decoder (the broker's)
static void
s_one_pass_agrees (const uint8_t *data, size_t size, gt_msg_kind_t kind)
{
    const char *name = s_kind_names [kind];
    gt_msg_t *one = NULL, *two = NULL;
    uint64_t rid_one = 1, rid_two = 2;
    char err_one [512], err_two [512];
    gt_code_t code_one = gt_msg_decode (size? data: NULL, size, kind, &one, &rid_one,
                                        err_one, sizeof (err_one));
    gt_code_t code_two = gt_msg_decode_two_pass (size? data: NULL, size, kind, &two, &rid_two,
                                                 err_two, sizeof (err_two));
    FUZZ_CHECK (code_one == code_two, "%s: one pass says %d, two passes %d", name, code_one, code_two);
    FUZZ_CHECK (rid_one == rid_two, "%s: one pass finds rid %llu, two passes %llu", name,
                (unsigned long long) rid_one, (unsigned long long) rid_two);
    FUZZ_CHECK (strcmp (err_one, err_two) == 0, "%s: one pass says '%s', two passes '%s'",
                name, err_one, err_two);
    gt_msg_decoder_t *decoder = gt_msg_decoder_new ();
    const gt_msg_t *borrowed = NULL;
    uint64_t rid_reused = 3;
    char err_reused [512];
    gt_code_t code_reused = gt_msg_decoder_decode (decoder, size? data: NULL, size, kind, &borrowed,
                                                   &rid_reused, err_reused, sizeof (err_reused));
    FUZZ_CHECK (code_reused == code_two && rid_reused == rid_two && strcmp (err_reused, err_two) == 0,
                "%s: the reusable decoder says %d '%s' (rid %llu), two passes %d '%s'", name, code_reused,
                err_reused, (unsigned long long) rid_reused, code_two, err_two);
    if (code_one == GT_OK) {
        size_t one_size = 0, two_size = 0, reused_size = 0;
        uint8_t *one_bytes = s_encode (one, &one_size);
        uint8_t *two_bytes = s_encode (two, &two_size);
        uint8_t *reused_bytes = s_encode (borrowed, &reused_size);
        FUZZ_CHECK (one_bytes && two_bytes && one_size == two_size
                    && memcmp (one_bytes, two_bytes, one_size) == 0,
                    "%s: one pass and two passes decode different messages", name);
        FUZZ_CHECK (reused_bytes && reused_size == two_size && memcmp (reused_bytes, two_bytes, two_size) == 0,
                    "%s: the reusable decoder and two passes decode different messages", name);
        free (one_bytes);
        free (two_bytes);
        free (reused_bytes);
    }
    gt_msg_decoder_destroy (&decoder);
    gt_msg_destroy (&one);
    gt_msg_destroy (&two);
}

int LLVMFuzzerTestOneInput (const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput (const uint8_t *data, size_t size)
{
    //  The broker's inbound path first, then what the SDK reads
    s_round_trip (data, size, GT_MSG_REQUEST);
    s_one_pass_agrees (data, size, GT_MSG_REQUEST);
    s_round_trip (data, size, GT_MSG_REPLY);
    s_one_pass_agrees (data, size, GT_MSG_REPLY);
    s_round_trip (data, size, GT_MSG_EVENT);
    s_one_pass_agrees (data, size, GT_MSG_EVENT);
    return 0;
}

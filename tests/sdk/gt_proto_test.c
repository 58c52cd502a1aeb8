/*  gt_proto_test.c — selftest of gt_proto: every name parses back to its
    value, the wire spellings, topics, lease ids and UTF-8 validation.
    Re-includes <assert.h> without NDEBUG so the checks run in release
    builds.  */
#undef NDEBUG
#include <assert.h>
#include <stdio.h>
#include <string.h>
#include <jansson.h>
#include <stdlib.h>
#include "gt_proto.h"
#include "gt_sdk_selftest.h"

//  Lease ids as text and back (gt_lease_id_format / gt_lease_id_parse):
//  every byte value round-trips; anything but 32 lowercase hex characters
//  is refused.
static void
s_test_id_text (void)
{
    uint8_t id [16], back [16];
    char text [33];
    for (int round = 0; round < 64; round++) {
        for (int index = 0; index < 16; index++)
            id [index] = (uint8_t) (round * 16 + index * 17 + (round >> 2));
        if (round == 0)
            memset (id, 0xff, sizeof id);
        gt_lease_id_format (id, text);
        assert (strlen (text) == 32);
        memset (back, 0, sizeof back);
        assert (gt_lease_id_parse (text, back));
        assert (memcmp (id, back, sizeof id) == 0);
    }
    //  Every byte value, in every position of a word, as printf writes it
    for (int first = 0; first < 256 + 16; first += 4) {
        char expected [33];
        for (int index = 0; index < 16; index++) {
            id [index] = (uint8_t) (first + index * 13);
            snprintf (expected + 2 * index, 3, "%02x", id [index]);
        }
        gt_lease_id_format (id, text);
        assert (strcmp (text, expected) == 0);
    }
    assert (gt_lease_id_parse ("0123456789abcdef0123456789abcdef", back));
    assert (back [0] == 0x01 && back [7] == 0xef && back [8] == 0x01 && back [15] == 0xef);
    assert (!gt_lease_id_parse (NULL, back));
    assert (!gt_lease_id_parse ("", back));
    assert (!gt_lease_id_parse ("0123456789abcdef0123456789abcde", back));
    assert (!gt_lease_id_parse ("0123456789abcdef0123456789abcdef0", back));
    assert (!gt_lease_id_parse ("0123456789ABCDEF0123456789abcdef", back));
    assert (!gt_lease_id_parse ("0123456789abcdeg0123456789abcdef", back));
    //  A refused id writes nothing, even when its first words were good
    uint8_t untouched [16];
    memset (back, 0xa5, sizeof back);
    memcpy (untouched, back, sizeof back);
    assert (!gt_lease_id_parse ("0123456789abcdef0123456789abcdeG", back));
    assert (memcmp (back, untouched, sizeof back) == 0);
    assert (!gt_lease_id_parse ("0123456789abcdef0123456789abcde`", back));
    assert (!gt_lease_id_parse ("0123456789abcdef012345678/abcdef", back));
    assert (!gt_lease_id_parse ("0123456789abcdef0123456789abcd\xc3\xa9", back));
    //  Every character value at every position: only '0'..'9' and 'a'..'f'
    //  pass, with their value in the right half of the right byte
    for (int position = 0; position < 32; position++)
        for (int c = 1; c < 256; c++) {
            char candidate [33];
            memset (candidate, '0', 32);
            candidate [32] = '\0';
            candidate [position] = (char) c;
            bool good = (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f');
            assert (gt_lease_id_valid (candidate) == good);
            assert (gt_lease_id_parse (candidate, back) == good);
            if (good) {
                int value = c <= '9' ? c - '0' : c - 'a' + 10;
                for (int index = 0; index < 16; index++)
                    assert (back [index] == (index == position / 2 ? value << (position % 2 ? 0 : 4) : 0));
            }
        }
}

//  The shard vectors (proto-spec/vectors/shards/shards.json), which the
//  Python and Go SDKs check too
static void
s_test_shards (void)
{
    const char *dir = getenv ("GT_VECTORS_DIR");
    char path [1024];
    snprintf (path, sizeof (path), "%s/shards/shards.json", dir && *dir ? dir : GT_VECTORS_SOURCE_DIR);
    json_error_t error;
    json_t *doc = json_load_file (path, 0, &error);
    assert (doc);
    assert (json_integer_value (json_object_get (doc, "shard_count")) == GT_SHARD_COUNT);
    json_t *cases = json_object_get (doc, "cases");
    assert (json_array_size (cases) >= 5);
    for (size_t index = 0; index < json_array_size (cases); index++) {
        json_t *entry = json_array_get (cases, index);
        const char *object_id = json_string_value (json_object_get (entry, "object_id"));
        char hash [17];
        snprintf (hash, sizeof (hash), "%016llx",
                  (unsigned long long) gt_fnv1a_64 (object_id, strlen (object_id)));
        assert (strcmp (hash, json_string_value (json_object_get (entry, "fnv1a_64"))) == 0);
        assert (gt_shard_of (object_id) == (unsigned) json_integer_value (json_object_get (entry, "shard")));
    }
    json_decref (doc);
    assert (gt_lease_id_shard ("ff000000000000000000000000000000") == 255);
    assert (gt_lease_id_shard ("1b000000000000000000000000000000") == 27);
}

void
gt_proto_test (bool verbose)
{
    if (verbose)
        printf (" * gt_proto: ");

    //  Every enum value has a name that parses back to it
    for (int cmd = GT_CMD_CREATE; cmd < GT_CMD_COUNT_; cmd++) {
        gt_cmd_t parsed = GT_CMD_NONE;
        assert (gt_cmd_parse (gt_cmd_name ((gt_cmd_t) cmd), &parsed));
        assert ((int) parsed == cmd);
    }
    for (int code = 0; code < GT_CODE_COUNT_; code++) {
        gt_code_t parsed = GT_CODE_COUNT_;
        assert (gt_code_parse (gt_code_name ((gt_code_t) code), &parsed));
        assert ((int) parsed == code);
    }
    for (int type = 0; type < GT_TYPE_COUNT_; type++) {
        gt_object_type_t parsed = GT_TYPE_COUNT_;
        assert (gt_object_type_parse (gt_object_type_name ((gt_object_type_t) type), &parsed));
        assert ((int) parsed == type);
    }
    for (int state = 0; state < GT_STATE_COUNT_; state++) {
        gt_lease_state_t parsed = GT_STATE_COUNT_;
        assert (gt_state_parse (gt_state_name ((gt_lease_state_t) state), &parsed));
        assert ((int) parsed == state);
    }
    for (int kind = 0; kind < GT_EVENT_COUNT_; kind++) {
        gt_event_kind_t parsed = GT_EVENT_COUNT_;
        assert (gt_event_kind_parse (gt_event_kind_name ((gt_event_kind_t) kind), &parsed));
        assert ((int) parsed == kind);
    }
    for (int reason = GT_REASON_EXPIRED; reason < GT_REASON_COUNT_; reason++) {
        gt_reason_t parsed = GT_REASON_NONE;
        assert (gt_reason_parse (gt_reason_name ((gt_reason_t) reason), &parsed));
        assert ((int) parsed == reason);
    }
    for (int status = GT_CLEANUP_PENDING; status < GT_CLEANUP_STATUS_COUNT_; status++) {
        gt_cleanup_status_t parsed = GT_CLEANUP_NONE;
        assert (gt_cleanup_status_parse (gt_cleanup_status_name ((gt_cleanup_status_t) status), &parsed));
        assert ((int) parsed == status);
    }
    //  Spot-check the wire spelling
    assert (strcmp (gt_cmd_name (GT_CMD_RENEW_BATCH), "RENEW_BATCH") == 0);
    assert (strcmp (gt_code_name (GT_ERR_UNSUPPORTED_VERSION), "UNSUPPORTED_VERSION") == 0);
    assert (strcmp (gt_object_type_name (GT_TYPE_WEBSOCKET_SESSION), "WEBSOCKET_SESSION") == 0);
    assert (strcmp (gt_event_kind_name (GT_EVENT_OBJECT_RECLAIMED), "object.reclaimed") == 0);
    assert (strcmp (gt_event_verb (GT_EVENT_LEASE_EXPIRED), "expired") == 0);
    assert (strcmp (gt_reason_name (GT_REASON_RELEASED), "released") == 0);

    //  Out of range and unknown names
    assert (gt_cmd_name (GT_CMD_NONE) == NULL);
    assert (gt_cmd_name (GT_CMD_COUNT_) == NULL);
    assert (gt_code_name ((gt_code_t) -1) == NULL);
    assert (gt_reason_name (GT_REASON_NONE) == NULL);
    assert (gt_event_verb (GT_EVENT_COUNT_) == NULL);
    gt_cmd_t cmd = GT_CMD_GET;
    assert (!gt_cmd_parse ("create", &cmd));        //  case matters
    assert (!gt_cmd_parse ("", &cmd));
    assert (!gt_cmd_parse (NULL, &cmd));
    assert (cmd == GT_CMD_GET);                     //  untouched on failure
    gt_reason_t reason = GT_REASON_EXPIRED;
    assert (!gt_reason_parse ("none", &reason));
    assert (reason == GT_REASON_EXPIRED);
    assert (gt_cleanup_status_name (GT_CLEANUP_NONE) == NULL);
    assert (strcmp (gt_cleanup_status_name (GT_CLEANUP_DEAD), "DEAD") == 0);
    assert (strcmp (gt_cmd_name (GT_CMD_RETRY), "RETRY") == 0);
    gt_cleanup_status_t status = GT_CLEANUP_DEAD;
    assert (!gt_cleanup_status_parse ("NONE", &status));
    assert (!gt_cleanup_status_parse ("dead", &status));
    assert (status == GT_CLEANUP_DEAD);

    //  Topics
    char topic [64];
    int length = gt_event_topic (topic, sizeof (topic), GT_EVENT_LEASE_EXPIRED,
                                 GT_TYPE_TEMPORARY_FILE, "upload-service");
    assert (length == (int) strlen ("upload-service\x1f" "expired.TEMPORARY_FILE"));
    assert (strcmp (topic, "upload-service\x1f" "expired.TEMPORARY_FILE") == 0);
    //  A service's prefix does not reach a service whose id starts the same
    char prefix [64];
    assert (gt_service_topic (prefix, sizeof (prefix), "upload") == 7);
    assert (strncmp (topic, prefix, strlen (prefix)) != 0);
    assert (gt_service_topic (prefix, sizeof (prefix), "upload-service") == 15);
    assert (strncmp (topic, prefix, strlen (prefix)) == 0);
    assert (gt_service_topic (prefix, 15, "upload-service") == -1);
    length = gt_event_topic (topic, sizeof (topic), GT_EVENT_OBJECT_RECLAIMED, GT_TYPE_CUSTOM, "");
    assert (length == 17 && strcmp (topic, "\x1f" "reclaimed.CUSTOM") == 0);
    assert (gt_event_topic (topic, 17, GT_EVENT_OBJECT_RECLAIMED, GT_TYPE_CUSTOM, "") == -1);
    assert (gt_event_topic (topic, 18, GT_EVENT_OBJECT_RECLAIMED, GT_TYPE_CUSTOM, "") == 17);
    assert (gt_event_topic (topic, sizeof (topic), GT_EVENT_COUNT_, GT_TYPE_CUSTOM, "x") == -1);
    assert (gt_event_topic (topic, sizeof (topic), GT_EVENT_LEASE_CREATED, GT_TYPE_COUNT_, "x") == -1);
    assert (gt_event_topic (topic, sizeof (topic), GT_EVENT_LEASE_CREATED, GT_TYPE_CUSTOM, NULL) == -1);
    //  From a service id given by its length (no NUL after it), and the
    //  length alone: the same topic, the same refusals
    length = gt_event_topic_n (topic, sizeof (topic), GT_EVENT_LEASE_EXPIRED, GT_TYPE_TEMPORARY_FILE,
                               "upload-service-and-more", 14);
    assert (length == 37 && strcmp (topic, "upload-service\x1f" "expired.TEMPORARY_FILE") == 0);
    assert (gt_event_topic_length (GT_EVENT_LEASE_EXPIRED, GT_TYPE_TEMPORARY_FILE, 14) == 37);
    assert (gt_event_topic_length (GT_EVENT_OBJECT_RECLAIMED, GT_TYPE_CUSTOM, 0) == 17);
    assert (gt_event_topic_n (topic, 17, GT_EVENT_OBJECT_RECLAIMED, GT_TYPE_CUSTOM, "x", 0) == -1);
    assert (gt_event_topic_length (GT_EVENT_COUNT_, GT_TYPE_CUSTOM, 1) == -1);
    assert (gt_event_topic_length (GT_EVENT_LEASE_CREATED, GT_TYPE_COUNT_, 1) == -1);
    //  The length (from tables of the names' lengths) is the topic's, for
    //  every kind and type
    for (int kind = 0; kind < GT_EVENT_COUNT_; kind++)
        for (int type = 0; type < GT_TYPE_COUNT_; type++) {
            length = gt_event_topic (topic, sizeof (topic), (gt_event_kind_t) kind, (gt_object_type_t) type, "svc");
            assert (length > 0 && (size_t) length == strlen (topic));
            assert (gt_event_topic_length ((gt_event_kind_t) kind, (gt_object_type_t) type, 3) == length);
        }

    //  Lease ids
    assert (gt_lease_id_valid ("0123456789abcdef0123456789abcdef"));
    assert (!gt_lease_id_valid ("0123456789ABCDEF0123456789abcdef"));    //  uppercase
    assert (!gt_lease_id_valid ("0123456789abcdef0123456789abcde"));     //  31
    assert (!gt_lease_id_valid ("0123456789abcdef0123456789abcdef0"));   //  33
    assert (!gt_lease_id_valid ("0123456789abcdef0123456789abcdeg"));    //  not hex
    assert (!gt_lease_id_valid (""));
    assert (!gt_lease_id_valid (NULL));
    //  Every byte value at every position (the check runs eight bytes at a
    //  time): valid exactly for 0-9 and a-f; a NUL anywhere before 32
    //  characters makes it too short
    char id [GT_LEASE_ID_LEN + 1];
    for (int position = 0; position < GT_LEASE_ID_LEN; position++)
        for (int byte = 0; byte < 256; byte++) {
            memcpy (id, "0123456789abcdef0123456789abcdef", sizeof (id));
            id [position] = (char) byte;
            bool hex = (byte >= '0' && byte <= '9') || (byte >= 'a' && byte <= 'f');
            assert (gt_lease_id_valid (id) == hex);
        }

    //  UTF-8
    assert (gt_utf8_valid ("", 0));
    assert (gt_utf8_valid ("plain ascii", 11));
    assert (gt_utf8_valid ("na\xc3\xafve caf\xc3\xa9 \xe2\x98\x95", 16));
    assert (gt_utf8_valid ("\xf0\x9f\x97\x91", 4));             //  U+1F5D1
    assert (gt_utf8_valid ("\xf4\x8f\xbf\xbf", 4));             //  U+10FFFF
    assert (gt_utf8_valid ("\xed\x9f\xbf", 3));                 //  U+D7FF
    assert (gt_utf8_valid ("\xee\x80\x80", 3));                 //  U+E000
    assert (gt_utf8_valid ("a\0b", 3));                         //  NUL is valid UTF-8
    assert (!gt_utf8_valid ("\xc0\xaf", 2));                    //  overlong '/'
    assert (!gt_utf8_valid ("\xc1\xbf", 2));                    //  overlong
    assert (!gt_utf8_valid ("\xe0\x80\xaf", 3));                //  overlong 3-byte
    assert (!gt_utf8_valid ("\xf0\x80\x80\xaf", 4));            //  overlong 4-byte
    assert (!gt_utf8_valid ("\xed\xa0\x80", 3));                //  U+D800 surrogate
    assert (!gt_utf8_valid ("\xed\xbf\xbf", 3));                //  U+DFFF surrogate
    assert (!gt_utf8_valid ("\xf4\x90\x80\x80", 4));            //  U+110000
    assert (!gt_utf8_valid ("\xf5\x80\x80\x80", 4));            //  lead past U+10FFFF
    assert (!gt_utf8_valid ("\xff", 1));
    assert (!gt_utf8_valid ("\x80", 1));                        //  lone continuation
    assert (!gt_utf8_valid ("\xe2\x98", 2));                    //  truncated
    assert (!gt_utf8_valid ("\xe2\x28\xa1", 3));                //  bad continuation
    assert (!gt_utf8_valid ("ok\xc3", 3));                      //  truncated at end
    //  In a run of ASCII (read eight bytes at a time) at every offset: a
    //  lone continuation byte is refused, a whole sequence passes, one cut
    //  by the end of the string is refused
    for (size_t at = 0; at < 21; at++) {
        char text [24];
        memset (text, 'x', sizeof (text));
        text [at] = (char) 0x80;
        assert (!gt_utf8_valid (text, 21));
        assert (gt_utf8_valid (text, at));
        memcpy (text + at, "\xe2\x98\x95", 3);
        assert (gt_utf8_valid (text, 24));
        assert (!gt_utf8_valid (text, at + 2));
    }

    s_test_shards ();
    s_test_id_text ();

    if (verbose)
        printf ("OK\n");
}

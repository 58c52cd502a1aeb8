/*  gt_msg_json.c — the JSON mirror of GTLP/1 messages (gtctl --json, tests).

    The mirror is derived from the canonical encoding itself: encode, then
    convert the msgpack map to JSON.  So it has the same keys in the same
    order as the wire, by construction.  Integers become JSON integers;
    jansson's are signed 64-bit, so a value above INT64_MAX (possible only for
    a client-chosen rid; no timestamp, counter or sequence gets there) becomes
    a JSON real, losing precision rather than turning negative.  */
#include "gt_msg.h"
#include <assert.h>
#include <stdint.h>
#include <string.h>

static json_t *
s_json_from_object (const msgpack_object *object)
{
    switch (object->type) {
        case MSGPACK_OBJECT_POSITIVE_INTEGER:
            if (object->via.u64 > (uint64_t) INT64_MAX)
                return json_real ((double) object->via.u64);
            return json_integer ((json_int_t) object->via.u64);
        case MSGPACK_OBJECT_STR:
            return json_stringn (object->via.str.ptr, object->via.str.size);
        case MSGPACK_OBJECT_BOOLEAN:
            return json_boolean (object->via.boolean);
        case MSGPACK_OBJECT_ARRAY: {
            json_t *array = json_array ();
            for (uint32_t index = 0; index < object->via.array.size; index++)
                json_array_append_new (array, s_json_from_object (&object->via.array.ptr [index]));
            return array;
        }
        case MSGPACK_OBJECT_MAP: {
            json_t *map = json_object ();
            for (uint32_t index = 0; index < object->via.map.size; index++) {
                const msgpack_object_kv *kv = &object->via.map.ptr [index];
                assert (kv->key.type == MSGPACK_OBJECT_STR);     //  our own encoding
                json_object_setn_new (map, kv->key.via.str.ptr, kv->key.via.str.size,
                                      s_json_from_object (&kv->val));
            }
            return map;
        }
        default:
            return json_null ();    //  the encoder never emits other types
    }
}

//  Convert one encoded body; NULL if it is not one msgpack object
static json_t *
s_json_from_buffer (const msgpack_sbuffer *buf)
{
    msgpack_unpacked unpacked;
    msgpack_unpacked_init (&unpacked);
    size_t offset = 0;
    json_t *json = NULL;
    if (msgpack_unpack_next (&unpacked, buf->data, buf->size, &offset) == MSGPACK_UNPACK_SUCCESS)
        json = s_json_from_object (&unpacked.data);
    msgpack_unpacked_destroy (&unpacked);
    return json;
}

json_t *
gt_msg_to_json (const gt_msg_t *self)
{
    assert (self);
    msgpack_sbuffer buf;
    msgpack_sbuffer_init (&buf);
    json_t *json = gt_msg_encode (self, &buf) == 0? s_json_from_buffer (&buf): NULL;
    msgpack_sbuffer_destroy (&buf);
    return json;
}

json_t *
gt_lease_info_to_json (const gt_lease_info_t *lease)
{
    assert (lease);
    msgpack_sbuffer buf;
    msgpack_sbuffer_init (&buf);
    msgpack_packer pk;
    msgpack_packer_init (&pk, &buf, msgpack_sbuffer_write);
    json_t *json = gt_lease_info_pack (lease, &pk) == 0? s_json_from_buffer (&buf): NULL;
    msgpack_sbuffer_destroy (&buf);
    return json;
}

json_t *
gt_event_to_json (const gt_event_t *event)
{
    assert (event);
    //  A borrowed stack message: gt_msg_encode only reads it
    gt_msg_t msg;
    memset (&msg, 0, sizeof (msg));
    msg.kind = GT_MSG_EVENT;
    msg.version = GT_PROTOCOL_VERSION;
    msg.event = *event;
    return gt_msg_to_json (&msg);
}

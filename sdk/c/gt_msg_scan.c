/*  gt_msg_scan.c — pass 1 of the GTLP/1 decoder: check the raw bytes of a
    body before msgpack-c sees them.  Iterative, bounded and allocation-free:
    one well-formed map of string keys, no trailing bytes, nesting at most
    GT_MAX_DEPTH, no container claiming more elements than bytes remain.  It
    also finds the "rid" so that a broken request still gets its rid back.  */
#include "gt_msg_private.h"
#include <string.h>

typedef struct {
    bool container;                 //  array or map
    bool is_map;                    //  map (children are key, value, ...)
    bool is_str;                    //  str family
    bool is_uint;                   //  an integer with a non-negative value
    size_t children;                //  objects nested directly (map: 2 per entry)
    const uint8_t *str;             //  str bytes
    size_t str_len;                 //  str length
    uint64_t uint;                  //  integer value when is_uint
} s_item_t;

//  Read one object's header and skip a leaf's payload.  False when the body
//  is truncated, uses the reserved byte 0xc1, or a container claims more
//  children than there are bytes left (each child takes at least one byte).
static bool
s_read_header (gt_msg_reader_t *r, s_item_t *item)
{
    memset (item, 0, sizeof (*item));
    if (r->pos >= r->end)
        return false;
    uint8_t byte = *r->pos++;
    uint64_t length = 0;            //  payload bytes of a leaf, or element count
    if (byte <= 0x7f) {
        item->is_uint = true;
        item->uint = byte;
        return true;
    }
    if (byte >= 0xe0)
        return true;                //  negative fixint
    if (byte <= 0x8f || (byte >= 0x90 && byte <= 0x9f)) {
        item->container = true;
        item->is_map = byte <= 0x8f;
        length = byte & 0x0f;
    }
    else
    if (byte <= 0xbf) {
        item->is_str = true;
        length = byte & 0x1f;
    }
    else
    switch (byte) {
        case 0xc0: case 0xc2: case 0xc3:
            return true;            //  nil, false, true
        case 0xc4: case 0xd9:
            if (!gt_msg_reader_be (r, 1, &length)) return false;
            item->is_str = byte == 0xd9;
            break;
        case 0xc5: case 0xda:
            if (!gt_msg_reader_be (r, 2, &length)) return false;
            item->is_str = byte == 0xda;
            break;
        case 0xc6: case 0xdb:
            if (!gt_msg_reader_be (r, 4, &length)) return false;
            item->is_str = byte == 0xdb;
            break;
        case 0xc7: case 0xc8: case 0xc9:        //  ext 8/16/32: length, type, data
            if (!gt_msg_reader_be (r, (size_t) 1 << (byte - 0xc7), &length)) return false;
            length += 1;
            break;
        case 0xca: length = 4; break;           //  float32
        case 0xcb: length = 8; break;           //  float64
        case 0xcc: case 0xcd: case 0xce: case 0xcf:
        case 0xd0: case 0xd1: case 0xd2: case 0xd3: {
            size_t width = (size_t) 1 << ((byte - 0xcc) & 3);
            uint64_t value;
            if (!gt_msg_reader_be (r, width, &value))
                return false;
            bool is_signed = byte >= 0xd0;
            //  A signed form is fine as long as the value is not negative
            if (!is_signed || !(value >> (width * 8 - 1))) {
                item->is_uint = true;
                item->uint = value;
            }
            return true;
        }
        case 0xd4: case 0xd5: case 0xd6: case 0xd7: case 0xd8:   //  fixext: type + 1..16
            length = 1 + ((uint64_t) 1 << (byte - 0xd4));
            break;
        case 0xdc: case 0xdd:
            if (!gt_msg_reader_be (r, byte == 0xdc? 2: 4, &length)) return false;
            item->container = true;
            break;
        case 0xde: case 0xdf:
            if (!gt_msg_reader_be (r, byte == 0xde? 2: 4, &length)) return false;
            item->container = item->is_map = true;
            break;
        default:
            return false;           //  0xc1, never used
    }
    size_t left = (size_t) (r->end - r->pos);
    if (item->container) {
        item->children = (size_t) length * (item->is_map? 2: 1);
        return item->children <= left;
    }
    if (length > left)
        return false;
    item->str = r->pos;
    item->str_len = (size_t) length;
    r->pos += length;
    return true;
}

//  Skip one object of any depth: a counter of objects still to read, no stack.
static bool
s_skip_flat (gt_msg_reader_t *r)
{
    size_t pending = 1;
    while (pending > 0) {
        s_item_t item;
        if (!s_read_header (r, &item))
            return false;
        pending = pending - 1 + item.children;
    }
    return true;
}

//  Skip one object that sits at the given nesting depth; a container deeper
//  than GT_MAX_DEPTH sets *too_deep and is skipped flat.
static bool
s_skip (gt_msg_reader_t *r, int depth, bool *too_deep)
{
    size_t remaining [GT_MAX_DEPTH + 1];    //  objects left at each level
    int level = 0;
    remaining [0] = 1;
    while (true) {
        if (remaining [level] == 0) {
            if (level == 0)
                return true;
            level--;
            continue;
        }
        remaining [level]--;
        const uint8_t *start = r->pos;
        s_item_t item;
        if (!s_read_header (r, &item))
            return false;
        if (item.container) {
            if (depth + level > GT_MAX_DEPTH) {
                *too_deep = true;
                r->pos = start;
                if (!s_skip_flat (r))
                    return false;
            }
            else
                remaining [++level] = item.children;
        }
    }
}

void
gt_msg_scan (const uint8_t *data, size_t size, gt_msg_scan_t *scan)
{
    memset (scan, 0, sizeof (*scan));
    //  Before the reader: data may be NULL when size is 0, and NULL + 0 is
    //  undefined (found by tests/fuzz, regressions/codec/empty-body-null-data)
    if (size == 0) {
        scan->error = "body: empty";
        return;
    }
    gt_msg_reader_t reader = { data, data + size };
    s_item_t item;
    if (!s_read_header (&reader, &item)) {
        scan->error = "body: truncated or malformed msgpack";
        return;
    }
    if (!item.is_map) {
        scan->error = "body: not a msgpack map";
        return;
    }
    bool too_deep = false;
    size_t pairs = item.children / 2;
    for (size_t pair = 0; pair < pairs; pair++) {
        s_item_t key;
        const uint8_t *key_start = reader.pos;
        if (!s_read_header (&reader, &key)) {
            scan->error = "body: truncated or malformed msgpack";
            return;
        }
        bool is_rid = false;
        if (!key.is_str) {
            if (!scan->error)
                scan->error = "body: map key is not a string";
            reader.pos = key_start;
            if (!s_skip (&reader, 2, &too_deep)) {
                scan->error = "body: truncated or malformed msgpack";
                return;
            }
        }
        else
            is_rid = key.str_len == 3 && memcmp (key.str, "rid", 3) == 0;
        //  A value that is no container (most are) is read by its header
        //  alone; a container is read again by s_skip
        const uint8_t *value_start = reader.pos;
        s_item_t value;
        if (!s_read_header (&reader, &value)) {
            scan->error = "body: truncated or malformed msgpack";
            return;
        }
        if (is_rid && !scan->have_rid && value.is_uint) {
            scan->have_rid = true;
            scan->rid = value.uint;
        }
        if (value.container) {
            reader.pos = value_start;
            if (!s_skip (&reader, 2, &too_deep)) {
                scan->error = "body: truncated or malformed msgpack";
                return;
            }
        }
    }
    if (too_deep && !scan->error)
        scan->error = "body: nested deeper than 8 levels";
    if (reader.pos != reader.end && !scan->error)
        scan->error = "body: trailing bytes after the map";
}


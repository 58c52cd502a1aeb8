/*  gt_pgload.c — recovery loader; the contract is in gt_pgload.h.

    Binary COPY format: an 11-byte signature, int32 flags, int32 header
    extension length and the extension; then per row an int16 field count
    and per field an int32 length (-1 = NULL) and the value in binary send
    format; an int16 -1 ends the data.  The server sends every row in its
    own CopyData message, the header in the first one; rows are parsed from
    whatever each message holds, and a row cut short is an error.  */

#include "gt_pgload.h"
#include <czmq.h>

#define S_MAX_COLUMNS   17
static const char s_signature [11] = "PGCOPY\n\377\r\n";

typedef struct {
    char *data;                     //  bytes
    size_t size;                    //  used
    size_t capacity;                //  allocated
} s_scratch_t;

typedef struct {
    const gt_pgload_options_t *options;     //  callbacks
    gt_pgload_result_t *result;     //  counts and counters
    char *err;                      //  message buffer
    size_t err_size;                //  its size
    s_scratch_t strings;            //  NUL-terminated copies of a row's strings
    gt_meta_entry_t *entries;       //  metadata entries of a row
    size_t entries_capacity;        //  entries allocated
} s_loader_t;

typedef int (s_row_fn) (s_loader_t *self, const char **values, const int32_t *lengths);

static int32_t
s_be32 (const char *at)
{
    const unsigned char *bytes = (const unsigned char *) at;
    return (int32_t) ((uint32_t) bytes [0] << 24 | (uint32_t) bytes [1] << 16
                    | (uint32_t) bytes [2] << 8 | bytes [3]);
}

static uint64_t
s_be64 (const char *at)
{
    const unsigned char *bytes = (const unsigned char *) at;
    uint64_t value = 0;
    for (int index = 0; index < 8; index++)
        value = value << 8 | bytes [index];
    return value;
}

//  Make room for size more bytes, so pointers into the space stay valid
//  while a row is decoded.
static void
s_scratch_reserve (s_scratch_t *scratch, size_t size)
{
    if (scratch->size + size > scratch->capacity) {
        size_t capacity = scratch->capacity? scratch->capacity: 4096;
        while (capacity < scratch->size + size)
            capacity *= 2;
        scratch->data = (char *) realloc (scratch->data, capacity);
        assert (scratch->data);
        scratch->capacity = capacity;
    }
}

//  Copy length bytes into the row's scratch space as a C string; returns
//  its offset (the caller reserved room, so no move happens mid-row).
static size_t
s_scratch_add (s_scratch_t *scratch, const char *bytes, size_t length)
{
    s_scratch_reserve (scratch, length + 1);
    size_t offset = scratch->size;
    memcpy (scratch->data + offset, bytes, length);
    scratch->data [offset + length] = 0;
    scratch->size += length + 1;
    return offset;
}

static int
s_hex_value (char c)
{
    return c >= '0' && c <= '9'? c - '0': c >= 'a' && c <= 'f'? c - 'a' + 10:
           c >= 'A' && c <= 'F'? c - 'A' + 10: -1;
}

static bool
s_hex4 (const char *at, const char *end, unsigned *code)
{
    if (end - at < 4)
        return false;
    *code = 0;
    for (int index = 0; index < 4; index++) {
        int digit = s_hex_value (at [index]);
        if (digit < 0)
            return false;
        *code = *code << 4 | (unsigned) digit;
    }
    return true;
}

//  Decode a JSON string whose opening quote is before *at_p, appending it
//  and a NUL to scratch (room reserved: the decoded text is never longer).
static bool
s_json_string_decode (const char **at_p, const char *end, s_scratch_t *scratch)
{
    const char *at = *at_p;
    char *out = scratch->data + scratch->size;
    while (at < end && *at != '"') {
        if (*at != '\\') {
            *out++ = *at++;
            continue;
        }
        if (++at >= end)
            return false;
        char c = *at++;
        unsigned code;
        switch (c) {
            case '"': case '\\': case '/': *out++ = c; break;
            case 'b': *out++ = '\b'; break;
            case 'f': *out++ = '\f'; break;
            case 'n': *out++ = '\n'; break;
            case 'r': *out++ = '\r'; break;
            case 't': *out++ = '\t'; break;
            case 'u':
                if (!s_hex4 (at, end, &code) || code == 0)
                    return false;               //  no NUL in a C string
                at += 4;
                if (code >= 0xD800 && code <= 0xDBFF) {
                    unsigned low;
                    if (end - at < 6 || at [0] != '\\' || at [1] != 'u'
                    ||  !s_hex4 (at + 2, end, &low) || low < 0xDC00 || low > 0xDFFF)
                        return false;
                    at += 6;
                    code = 0x10000 + ((code - 0xD800) << 10) + (low - 0xDC00);
                }
                else
                if (code >= 0xDC00 && code <= 0xDFFF)
                    return false;
                if (code < 0x80)
                    *out++ = (char) code;
                else
                if (code < 0x800) {
                    *out++ = (char) (0xC0 | code >> 6);
                    *out++ = (char) (0x80 | (code & 0x3F));
                }
                else
                if (code < 0x10000) {
                    *out++ = (char) (0xE0 | code >> 12);
                    *out++ = (char) (0x80 | (code >> 6 & 0x3F));
                    *out++ = (char) (0x80 | (code & 0x3F));
                }
                else {
                    *out++ = (char) (0xF0 | code >> 18);
                    *out++ = (char) (0x80 | (code >> 12 & 0x3F));
                    *out++ = (char) (0x80 | (code >> 6 & 0x3F));
                    *out++ = (char) (0x80 | (code & 0x3F));
                }
                break;
            default:
                return false;
        }
    }
    if (at >= end)
        return false;
    *out++ = 0;
    scratch->size = (size_t) (out - scratch->data);
    *at_p = at + 1;
    return true;
}

static const char *
s_skip_space (const char *at, const char *end)
{
    while (at < end && (*at == ' ' || *at == '\n' || *at == '\t' || *at == '\r'))
        at++;
    return at;
}

static int
s_fail (s_loader_t *self, const char *format, const char *detail)
{
    snprintf (self->err, self->err_size, format, detail);
    size_t length = strlen (self->err);
    while (length > 0 && self->err [length - 1] == '\n')
        self->err [--length] = 0;
    return -1;
}

//  A row parsed, waiting to be handed over: its fields point into the
//  CopyData message it came in, kept until its last row is handed over.
typedef struct {
    const char *values [S_MAX_COLUMNS];     //  each field's bytes
    int32_t lengths [S_MAX_COLUMNS];        //  each field's length (-1: NULL)
    char *message;                  //  freed after this row (its message's last), or NULL
} s_row_t;

//  Rows read ahead, oldest first: a copy hands each row over only once
//  GT_PGLOAD_AHEAD later ones are parsed, so a hint about a row (s_ahead_fn)
//  comes that many rows before the row itself.
typedef struct {
    s_row_t rows [GT_PGLOAD_AHEAD]; //  the ring
    size_t head;                    //  index of the oldest
    size_t count;                   //  rows held
} s_ahead_t;

typedef void (s_ahead_fn) (s_loader_t *self, const char **values, const int32_t *lengths);
_Static_assert (GT_PGLOAD_AHEAD >= 1, "the ring holds at least the row being parsed");

//  Hand the oldest row over to fn (unless an error stopped the copy) and
//  free its message if it was that message's last row.
static int
s_ahead_pop (s_loader_t *self, s_ahead_t *ahead, s_row_fn *fn, int rc)
{
    s_row_t *row = &ahead->rows [ahead->head];
    if (rc == 0)
        rc = fn (self, row->values, row->lengths);
    if (row->message)
        PQfreemem (row->message);
    row->message = NULL;
    ahead->head = (ahead->head + 1) % GT_PGLOAD_AHEAD;
    ahead->count--;
    return rc;
}

//  Run one COPY ... TO STDOUT (FORMAT binary) and feed its rows to fn;
//  hint (may be NULL) sees each row GT_PGLOAD_AHEAD rows before fn does.
static int
s_copy (s_loader_t *self, PGconn *conn, const char *sql, int columns, s_row_fn *fn, s_ahead_fn *hint)
{
    PGresult *result = PQexec (conn, sql);
    if (PQresultStatus (result) != PGRES_COPY_OUT) {
        PQclear (result);
        return s_fail (self, "cannot read the store: %s", PQerrorMessage (conn));
    }
    PQclear (result);
    s_ahead_t *ahead = (s_ahead_t *) zmalloc (sizeof (s_ahead_t));
    assert (ahead);
    bool header = false;            //  header seen
    bool trailer = false;           //  end marker seen
    int rc = 0;
    char *message;
    int length;
    while ((length = PQgetCopyData (conn, &message, 0)) > 0) {
        const char *at = message;
        const char *end = message + length;
        if (rc == 0 && !header) {
            if (length < 19 || memcmp (at, s_signature, 11) != 0
            ||  s_be32 (at + 15) < 0 || length < 19 + s_be32 (at + 15))
                rc = s_fail (self, "cannot read the store: %s", "bad COPY header");
            else {
                at += 19 + s_be32 (at + 15);
                header = true;
            }
        }
        s_row_t *last = NULL;       //  this message's last row, while held
        while (rc == 0 && !trailer && at + 2 <= end) {
            int16_t fields = (int16_t) ((unsigned char) at [0] << 8 | (unsigned char) at [1]);
            at += 2;
            if (fields == -1) {
                trailer = true;
                break;
            }
            if (fields != columns) {
                rc = s_fail (self, "cannot read the store: %s", "unexpected column count");
                break;
            }
            if (ahead->count == GT_PGLOAD_AHEAD) {
                //  last is never the oldest here: the ring holds more than it
                rc = s_ahead_pop (self, ahead, fn, rc);
                if (rc)
                    break;
            }
            s_row_t *row = &ahead->rows [(ahead->head + ahead->count) % GT_PGLOAD_AHEAD];
            row->message = NULL;
            for (int column = 0; column < columns && rc == 0; column++) {
                if (at + 4 > end)
                    rc = s_fail (self, "cannot read the store: %s", "row cut short");
                else {
                    row->lengths [column] = s_be32 (at);
                    row->values [column] = at + 4;
                    at += 4 + (row->lengths [column] > 0? row->lengths [column]: 0);
                    if (at > end)
                        rc = s_fail (self, "cannot read the store: %s", "row cut short");
                }
            }
            if (rc == 0) {
                ahead->count++;
                last = row;
                if (hint)
                    hint (self, row->values, row->lengths);
            }
        }
        if (last && rc == 0)
            last->message = message;        //  freed once its last row is handed over
        else
            PQfreemem (message);
        //  After an error keep reading: the COPY must run to its end
        if (rc) {
            while (ahead->count)            //  drop what is held (messages included)
                s_ahead_pop (self, ahead, fn, rc);
        }
    }
    while (ahead->count)
        rc = s_ahead_pop (self, ahead, fn, rc);
    free (ahead);
    result = PQgetResult (conn);
    if (PQresultStatus (result) != PGRES_COMMAND_OK && rc == 0)
        rc = s_fail (self, "cannot read the store: %s", PQerrorMessage (conn));
    PQclear (result);
    while ((result = PQgetResult (conn)))
        PQclear (result);
    return rc;
}

//  Checks an int8 column (NULL allowed when nullable: value 0).
static bool
s_int8 (const char *value, int32_t length, bool nullable, uint64_t *number)
{
    if (length == -1 && nullable) {
        *number = 0;
        return true;
    }
    if (length != 8)
        return false;
    *number = s_be64 (value);
    return true;
}

static void
s_note_fence (s_loader_t *self, uint64_t fence)
{
    if (fence > self->result->fence_counter)
        self->result->fence_counter = fence;
}

static void
s_entries_reserve (s_loader_t *self, size_t count)
{
    if (count > self->entries_capacity) {
        size_t capacity = self->entries_capacity? self->entries_capacity * 2: 16;
        while (capacity < count)
            capacity *= 2;
        self->entries = (gt_meta_entry_t *) realloc (self->entries, capacity * sizeof (gt_meta_entry_t));
        assert (self->entries);
        self->entries_capacity = capacity;
    }
}

//  Metadata from jsonb: a version byte, then the JSON text of an object of
//  strings, decoded into the row's scratch space (room reserved by the
//  caller).  Returns false when it is not such an object.
static bool
s_metadata (s_loader_t *self, const char *value, int32_t length, gt_meta_t *metadata)
{
    metadata->entries = self->entries;
    metadata->count = 0;
    if (length < 1 || value [0] != 1)
        return false;
    const char *end = value + length;
    const char *at = s_skip_space (value + 1, end);
    if (at >= end || *at++ != '{')
        return false;
    at = s_skip_space (at, end);
    if (at < end && *at == '}')
        return s_skip_space (at + 1, end) == end;
    while (true) {
        s_entries_reserve (self, metadata->count + 1);
        metadata->entries = self->entries;
        gt_meta_entry_t *entry = &self->entries [metadata->count];
        if (at >= end || *at++ != '"')
            return false;
        entry->key = self->strings.data + self->strings.size;
        if (!s_json_string_decode (&at, end, &self->strings))
            return false;
        at = s_skip_space (at, end);
        if (at >= end || *at++ != ':')
            return false;
        at = s_skip_space (at, end);
        if (at >= end || *at++ != '"')
            return false;
        entry->value = self->strings.data + self->strings.size;
        if (!s_json_string_decode (&at, end, &self->strings))
            return false;
        metadata->count++;
        at = s_skip_space (at, end);
        if (at < end && *at == ',') {
            at = s_skip_space (at + 1, end);
            continue;
        }
        if (at < end && *at == '}')
            return s_skip_space (at + 1, end) == end;
        return false;
    }
}

static bool
s_cleanup (const char *value, int32_t length, gt_cleanup_t *cleanup, json_t **json_p)
{
    if (length < 1 || value [0] != 1)
        return false;
    json_t *json = json_loadb (value + 1, (size_t) length - 1, 0, NULL);
    *json_p = json;
    json_t *url = json_object_get (json, "url");
    json_t *payload = json_object_get (json, "payload");
    json_t *retries = json_object_get (json, "max_retries");
    json_t *delay = json_object_get (json, "retry_delay_ms");
    if (!json_is_string (url) || (payload && !json_is_string (payload))
    ||  (retries && !json_is_integer (retries)) || (delay && !json_is_integer (delay)))
        return false;
    memset (cleanup, 0, sizeof *cleanup);
    cleanup->url = (char *) json_string_value (url);
    cleanup->payload = payload? (char *) json_string_value (payload): NULL;
    cleanup->has_max_retries = retries != NULL;
    cleanup->max_retries = retries? (uint32_t) json_integer_value (retries): 0;
    cleanup->has_retry_delay = delay != NULL;
    cleanup->retry_delay_ms = delay? (uint64_t) json_integer_value (delay): 0;
    return true;
}

//  A lease row read ahead: its id and object id to the caller's hint
//  (unchecked beyond their lengths; s_lease_row checks the row)
static void
s_lease_ahead (s_loader_t *self, const char **values, const int32_t *lengths)
{
    if (lengths [0] == 16 && lengths [1] >= 0)
        self->options->on_lease_ahead (self->options->arg, (const uint8_t *) values [0],
                                       values [1], (size_t) lengths [1]);
}

//  Columns: id, object_id, object_type, service_id, state, fence, ttl_ms,
//  created_at, renewed_at, expires_at, renewals, metadata, cleanup, idempotency_key,
//  cleanup_status, cleanup_attempts, cleanup_error
static int
s_lease_row (s_loader_t *self, const char **values, const int32_t *lengths)
{
    gt_lease_info_t lease;
    memset (&lease, 0, sizeof lease);
    if (lengths [0] != 16)
        return s_fail (self, "bad lease row in gt_leases: %s", "id is not 16 bytes");
    gt_lease_id_format ((const uint8_t *) values [0], lease.id);

    //  Room for every string of the row: pointers into it stay valid
    self->strings.size = 0;
    size_t room = 64;
    for (int column = 1; column < 17; column++)
        room += lengths [column] > 0? (size_t) lengths [column] + 1: 1;
    s_scratch_reserve (&self->strings, room);
    for (int column = 1; column <= 4; column++)
        if (lengths [column] < 0)
            return s_fail (self, "bad lease row %s in gt_leases: NULL text", lease.id);
    size_t object_id = s_scratch_add (&self->strings, values [1], (size_t) lengths [1]);
    size_t object_type = s_scratch_add (&self->strings, values [2], (size_t) lengths [2]);
    size_t service_id = s_scratch_add (&self->strings, values [3], (size_t) lengths [3]);
    size_t state = s_scratch_add (&self->strings, values [4], (size_t) lengths [4]);
    size_t key = 0;
    if (lengths [13] >= 0)
        key = s_scratch_add (&self->strings, values [13], (size_t) lengths [13]);
    size_t cleanup_status = 0, cleanup_error = 0;
    if (lengths [14] >= 0)
        cleanup_status = s_scratch_add (&self->strings, values [14], (size_t) lengths [14]);
    if (lengths [16] >= 0)
        cleanup_error = s_scratch_add (&self->strings, values [16], (size_t) lengths [16]);
    lease.object_id = self->strings.data + object_id;
    lease.service_id = self->strings.data + service_id;
    if (!gt_object_type_parse (self->strings.data + object_type, &lease.object_type)
    ||  !gt_state_parse (self->strings.data + state, &lease.state))
        return s_fail (self, "bad lease row %s in gt_leases: unknown object_type or state", lease.id);
    uint64_t *numbers [6] = { &lease.fence, &lease.ttl_ms, &lease.created_at,
                              &lease.renewed_at, &lease.expires_at, &lease.renewals };
    for (int column = 5; column <= 10; column++)
        if (!s_int8 (values [column], lengths [column], false, numbers [column - 5]))
            return s_fail (self, "bad lease row %s in gt_leases: bad number", lease.id);
    if (lengths [14] >= 0) {
        if (!gt_cleanup_status_parse (self->strings.data + cleanup_status, &lease.cleanup_status)
        ||  !s_int8 (values [15], lengths [15], false, &lease.cleanup_attempts))
            return s_fail (self, "bad lease row %s in gt_leases: bad cleanup state", lease.id);
        if (lengths [16] >= 0)
            lease.cleanup_error = self->strings.data + cleanup_error;
    }
    s_note_fence (self, lease.fence);

    json_t *cleanup_json = NULL;
    gt_cleanup_t cleanup;
    int rc = 0;
    if (!s_metadata (self, values [11], lengths [11], &lease.metadata))
        rc = s_fail (self, "bad lease row %s in gt_leases: bad metadata", lease.id);
    else
    if (lengths [12] >= 0 && !s_cleanup (values [12], lengths [12], &cleanup, &cleanup_json))
        rc = s_fail (self, "bad lease row %s in gt_leases: bad cleanup", lease.id);
    else {
        lease.cleanup = lengths [12] >= 0? &cleanup: NULL;
        self->result->leases++;
        if (self->options->on_lease
        &&  self->options->on_lease (self->options->arg, &lease,
                                     lengths [13] >= 0? self->strings.data + key: NULL) != 0)
            rc = s_fail (self, "%s", "the load was stopped by its caller");
    }
    json_decref (cleanup_json);
    return rc;
}

//  Columns: object_id, fence, live, pending_at, reason, last_lease_id
static int
s_object_row (s_loader_t *self, const char **values, const int32_t *lengths)
{
    if (lengths [0] < 0)
        return s_fail (self, "bad object row in gt_objects: %s", "NULL object_id");
    self->strings.size = 0;
    size_t object_id = s_scratch_add (&self->strings, values [0], (size_t) lengths [0]);
    char last_lease_id [GT_LEASE_ID_LEN + 1];
    gt_pgobject_t object = { self->strings.data + object_id, 0, false, 0, GT_REASON_NONE, NULL };
    if (!s_int8 (values [1], lengths [1], false, &object.fence)
    ||  !s_int8 (values [3], lengths [3], true, &object.pending_at)
    ||  lengths [2] != 1)
        return s_fail (self, "bad object row %s in gt_objects: bad number", object.object_id);
    object.live = values [2][0] != 0;
    if (lengths [4] >= 0) {
        char reason [16];
        if (lengths [4] >= (int32_t) sizeof reason)
            return s_fail (self, "bad object row %s in gt_objects: bad reason", object.object_id);
        memcpy (reason, values [4], (size_t) lengths [4]);
        reason [lengths [4]] = 0;
        if (!gt_reason_parse (reason, &object.reason))
            return s_fail (self, "bad object row %s in gt_objects: bad reason", object.object_id);
    }
    if (lengths [5] >= 0) {
        if (lengths [5] != 16)
            return s_fail (self, "bad object row %s in gt_objects: bad last_lease_id", object.object_id);
        gt_lease_id_format ((const uint8_t *) values [5], last_lease_id);
        object.last_lease_id = last_lease_id;
    }
    s_note_fence (self, object.fence);
    self->result->objects++;
    if (self->options->on_object && self->options->on_object (self->options->arg, &object) != 0)
        return s_fail (self, "%s", "the load was stopped by its caller");
    return 0;
}

//  Columns: seq, kind, at, topic, body
static int
s_event_row (s_loader_t *self, const char **values, const int32_t *lengths)
{
    uint64_t seq, at;
    if (!s_int8 (values [0], lengths [0], false, &seq) || !s_int8 (values [2], lengths [2], false, &at)
    ||  lengths [1] < 0 || lengths [3] < 0 || lengths [4] < 0)
        return s_fail (self, "bad event row in gt_events: %s", "bad column");
    self->strings.size = 0;
    size_t kind_text = s_scratch_add (&self->strings, values [1], (size_t) lengths [1]);
    size_t topic = s_scratch_add (&self->strings, values [3], (size_t) lengths [3]);
    gt_event_kind_t kind;
    if (!gt_event_kind_parse (self->strings.data + kind_text, &kind))
        return s_fail (self, "bad event row in gt_events: unknown kind %s", self->strings.data + kind_text);
    self->result->events++;
    if (self->options->shards) {
        //  Cluster mode: a sixth column, the shard
        uint64_t shard;
        if (!s_int8 (values [5], lengths [5], false, &shard) || shard >= GT_SHARD_COUNT)
            return s_fail (self, "bad event row in gt_shard_events: %s", "bad shard");
        if (self->options->on_shard_event
        &&  self->options->on_shard_event (self->options->arg, (unsigned) shard, seq, self->strings.data + topic,
                                           values [4], (size_t) lengths [4]) != 0)
            return s_fail (self, "%s", "the load was stopped by its caller");
        return 0;
    }
    if (self->options->on_event
    &&  self->options->on_event (self->options->arg, seq, kind, at, self->strings.data + topic,
                                 values [4], (size_t) lengths [4]) != 0)
        return s_fail (self, "%s", "the load was stopped by its caller");
    return 0;
}

//  Columns: job_id, lease_id, url, body, max_retries, retry_delay_ms,
//  attempts, status, next_at, last_error, shard (NULL in a row no broker
//  wrote since 004 that had no object id: read as 0)
static int
s_callback_row (s_loader_t *self, const char **values, const int32_t *lengths)
{
    gt_pgcallback_t callback;
    memset (&callback, 0, sizeof callback);
    uint64_t max_retries, retry_delay_ms, attempts;
    if (!s_int8 (values [0], lengths [0], false, &callback.job_id)
    ||  !s_int8 (values [4], lengths [4], false, &max_retries)
    ||  !s_int8 (values [5], lengths [5], false, &retry_delay_ms)
    ||  !s_int8 (values [6], lengths [6], false, &attempts)
    ||  !s_int8 (values [8], lengths [8], true, &callback.next_at)
    ||  lengths [2] < 0 || lengths [3] < 0 || lengths [7] < 0 || lengths [9] < 0
    ||  (lengths [1] >= 0 && lengths [1] != 16)
    ||  max_retries > UINT32_MAX || retry_delay_ms > UINT32_MAX || attempts > UINT32_MAX
    ||  lengths [10] != 2)
        return s_fail (self, "bad outbox row in gt_callbacks: %s", "bad column");
    callback.shard = ((unsigned) (unsigned char) values [10][0] << 8 | (unsigned char) values [10][1])
                   % GT_SHARD_COUNT;
    callback.max_retries = (uint32_t) max_retries;
    callback.retry_delay_ms = (uint32_t) retry_delay_ms;
    callback.attempts = (uint32_t) attempts;
    self->strings.size = 0;
    s_scratch_reserve (&self->strings, (size_t) lengths [2] + (size_t) lengths [3]
                                     + (size_t) lengths [7] + (size_t) lengths [9] + 4);
    size_t url = s_scratch_add (&self->strings, values [2], (size_t) lengths [2]);
    size_t body = s_scratch_add (&self->strings, values [3], (size_t) lengths [3]);
    size_t status = s_scratch_add (&self->strings, values [7], (size_t) lengths [7]);
    size_t error = s_scratch_add (&self->strings, values [9], (size_t) lengths [9]);
    char lease_id [GT_LEASE_ID_LEN + 1];
    if (lengths [1] == 16) {
        gt_lease_id_format ((const uint8_t *) values [1], lease_id);
        callback.lease_id = lease_id;
    }
    callback.url = self->strings.data + url;
    callback.body = self->strings.data + body;
    callback.last_error = self->strings.data + error;
    if (!gt_cleanup_status_parse (self->strings.data + status, &callback.status)
    ||  (callback.status != GT_CLEANUP_PENDING && callback.status != GT_CLEANUP_DEAD))
        return s_fail (self, "bad outbox row in gt_callbacks: status %s", self->strings.data + status);
    self->result->callbacks++;
    if (self->options->on_callback (self->options->arg, &callback) != 0)
        return s_fail (self, "%s", "the load was stopped by its caller");
    return 0;
}

static int
s_exec (s_loader_t *self, PGconn *conn, const char *sql)
{
    PGresult *result = PQexec (conn, sql);
    int rc = PQresultStatus (result) == PGRES_COMMAND_OK? 0: -1;
    PQclear (result);
    if (rc)
        s_fail (self, "cannot read the store: %s", PQerrorMessage (conn));
    return rc;
}

//  Cluster mode: the shards' newest seqs (to on_shard_seq) and the largest
//  fence of any shard.
static int
s_load_shard_counters (s_loader_t *self, PGconn *conn, const char *shards)
{
    char sql [2048];
    snprintf (sql, sizeof sql,
        "SELECT shard, last_seq, (SELECT greatest (max (c.fence_counter), (SELECT fence_counter FROM gt_meta))"
        "                          FROM gt_shard_counters c)"
        "  FROM gt_shard_counters WHERE shard = ANY ('%s'::smallint []) ORDER BY shard", shards);
    PGresult *result = PQexec (conn, sql);
    if (PQresultStatus (result) != PGRES_TUPLES_OK || PQnfields (result) != 3) {
        s_fail (self, "cannot read gt_shard_counters: %s", PQerrorMessage (conn));
        PQclear (result);
        return -1;
    }
    for (int row = 0; row < PQntuples (result); row++) {
        unsigned shard = (unsigned) strtoul (PQgetvalue (result, row, 0), NULL, 10);
        uint64_t last_seq = strtoull (PQgetvalue (result, row, 1), NULL, 10);
        if (row == 0)
            self->result->fence_counter = strtoull (PQgetvalue (result, row, 2), NULL, 10);
        if (last_seq > self->result->last_seq)
            self->result->last_seq = last_seq;
        if (shard < GT_SHARD_COUNT && self->options->on_shard_seq
        &&  self->options->on_shard_seq (self->options->arg, shard, last_seq) != 0) {
            PQclear (result);
            return s_fail (self, "%s", "the load was stopped by its caller");
        }
    }
    PQclear (result);
    return 0;
}

static int
s_load (s_loader_t *self, PGconn *conn)
{
    const gt_pgload_options_t *options = self->options;
    //  Cluster mode: a filter on the shards, as an array literal
    char shards [GT_SHARD_COUNT * 4 + 3] = "";
    char where [GT_SHARD_COUNT * 4 + 64] = "";
    if (options->shards) {
        size_t at = 0;
        shards [at++] = '{';
        for (unsigned shard = 0; shard < GT_SHARD_COUNT; shard++)
            if ((options->shards [shard / 8] >> (shard % 8)) & 1)
                at += (size_t) snprintf (shards + at, sizeof shards - at, "%s%u", at > 1? ",": "", shard);
        shards [at++] = '}';
        shards [at] = 0;
        snprintf (where, sizeof where, "shard = ANY ('%s'::smallint [])", shards);
        if (s_load_shard_counters (self, conn, shards))
            return -1;
    }
    else {
        PGresult *result = PQexec (conn,
            "SELECT last_seq, fence_counter, (SELECT coalesce (max (seq), 0) FROM gt_events) FROM gt_meta");
        if (PQresultStatus (result) != PGRES_TUPLES_OK || PQntuples (result) != 1) {
            s_fail (self, "cannot read gt_meta: %s", PQntuples (result) == 0 && PQresultStatus (result)
                    == PGRES_TUPLES_OK? "no row": PQerrorMessage (conn));
            PQclear (result);
            return -1;
        }
        uint64_t last_seq = strtoull (PQgetvalue (result, 0, 0), NULL, 10);
        uint64_t max_seq = strtoull (PQgetvalue (result, 0, 2), NULL, 10);
        self->result->last_seq = last_seq > max_seq? last_seq: max_seq;
        self->result->fence_counter = strtoull (PQgetvalue (result, 0, 1), NULL, 10);
        PQclear (result);
    }

    char sql [4096];
    char leases [sizeof where + 64];        //  the table and the filter of the leases loaded
    snprintf (leases, sizeof leases, "gt_leases%s%s%s",
              options->ended_leases? (*where? " WHERE ": ""): " WHERE state = 'ACTIVE'",
              *where && !options->ended_leases? " AND ": "", where);
    if (options->on_lease_count) {
        //  One scan (~50 ms at a million rows) saves growing the caller's
        //  tables step by step
        snprintf (sql, sizeof sql, "SELECT count (*) FROM %s", leases);
        PGresult *result = PQexec (conn, sql);
        if (PQresultStatus (result) != PGRES_TUPLES_OK || PQntuples (result) != 1) {
            s_fail (self, "cannot count the leases: %s", PQerrorMessage (conn));
            PQclear (result);
            return -1;
        }
        uint64_t count = strtoull (PQgetvalue (result, 0, 0), NULL, 10);
        PQclear (result);
        if (options->on_lease_count (options->arg, count) != 0)
            return s_fail (self, "%s", "the load was stopped by its caller");
    }
    snprintf (sql, sizeof sql,
        "COPY (SELECT id, object_id, object_type, service_id, state, fence, ttl_ms,"
        " created_at, renewed_at, expires_at, renewals, metadata, cleanup, idempotency_key,"
        " cleanup_status, cleanup_attempts, cleanup_error"
        " FROM %s) TO STDOUT (FORMAT binary)", leases);
    if (s_copy (self, conn, sql, 17, s_lease_row, options->on_lease_ahead? s_lease_ahead: NULL))
        return -1;
    snprintf (sql, sizeof sql, "COPY (SELECT object_id, fence, live, pending_at, reason, last_lease_id"
                               " FROM gt_objects%s%s) TO STDOUT (FORMAT binary)", *where? " WHERE ": "", where);
    if (s_copy (self, conn, sql, 6, s_object_row, NULL))
        return -1;
    if (options->event_history && options->shards) {
        uint64_t keep = options->event_history / GT_SHARD_COUNT;
        if (keep < 100)
            keep = 100;
        snprintf (sql, sizeof sql,
            "COPY (SELECT e.seq, e.kind, e.at, e.topic, e.body, e.shard::int8 FROM gt_shard_events e"
            " JOIN gt_shard_counters c ON c.shard = e.shard"
            " WHERE e.%s AND e.seq > c.last_seq - %" PRIu64 " ORDER BY e.shard, e.seq) TO STDOUT (FORMAT binary)",
            where, keep);
        if (s_copy (self, conn, sql, 6, s_event_row, NULL))
            return -1;
    }
    else
    if (options->event_history) {
        uint64_t after = self->result->last_seq > options->event_history?
                         self->result->last_seq - options->event_history: 0;
        snprintf (sql, sizeof sql,
            "COPY (SELECT seq, kind, at, topic, body FROM gt_events WHERE seq > %" PRIu64
            " ORDER BY seq) TO STDOUT (FORMAT binary)", after);
        if (s_copy (self, conn, sql, 5, s_event_row, NULL))
            return -1;
    }
    snprintf (sql, sizeof sql, "COPY (SELECT job_id, lease_id, url, body, max_retries, retry_delay_ms,"
                               " attempts, status, next_at, last_error, coalesce (shard, 0::smallint)"
                               " FROM gt_callbacks%s%s ORDER BY job_id) TO STDOUT (FORMAT binary)",
                               *where? " WHERE ": "", where);
    if (options->on_callback && s_copy (self, conn, sql, 11, s_callback_row, NULL))
        return -1;
    return 0;
}

int
gt_pgload (PGconn *conn, const gt_pgload_options_t *options,
           gt_pgload_result_t *result, char *err, size_t err_size)
{
    assert (conn);
    assert (options);
    assert (result);
    memset (result, 0, sizeof *result);
    s_loader_t self;
    memset (&self, 0, sizeof self);
    self.options = options;
    self.result = result;
    self.err = err;
    self.err_size = err_size;
    int rc = s_exec (&self, conn, "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY");
    if (rc == 0)
        rc = s_load (&self, conn);
    if (rc == 0)
        rc = s_exec (&self, conn, "COMMIT");
    else
        PQclear (PQexec (conn, "ROLLBACK"));
    free (self.strings.data);
    free (self.entries);
    return rc;
}

//  --------------------------------------------------------------------------
//  For the selftest (tests/pg/gt_pgload_test.c): the metadata decoder alone

bool
gt_pgload_metadata (const char *value, size_t length, gt_meta_t *metadata)
{
    assert (value && metadata);
    assert (length <= INT32_MAX);
    s_loader_t loader;
    memset (&loader, 0, sizeof loader);
    //  As a row does: room for every string before decoding starts
    s_scratch_reserve (&loader.strings, length + 1);
    gt_meta_t decoded;
    bool valid = s_metadata (&loader, value, (int32_t) length, &decoded);
    metadata->entries = NULL;
    metadata->count = 0;
    if (valid && decoded.count > 0) {
        //  One block: the entries, then their strings
        size_t entries_size = decoded.count * sizeof (gt_meta_entry_t);
        char *block = (char *) malloc (entries_size + loader.strings.size);
        assert (block);
        char *strings = block + entries_size;
        memcpy (strings, loader.strings.data, loader.strings.size);
        metadata->entries = (gt_meta_entry_t *) block;
        for (size_t index = 0; index < decoded.count; index++) {
            metadata->entries [index].key = strings + (decoded.entries [index].key - loader.strings.data);
            metadata->entries [index].value = strings + (decoded.entries [index].value - loader.strings.data);
        }
        metadata->count = decoded.count;
    }
    free (loader.strings.data);
    free (loader.entries);
    return valid;
}

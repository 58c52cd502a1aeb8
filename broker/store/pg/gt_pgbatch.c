/*  gt_pgbatch.c — batches of store changes; the contract is in gt_pgbatch.h.

    Each recorded operation is encoded at once into its table's arena as a
    PostgreSQL binary record, just as an element of a record array: an
    int32 big-endian length of what follows, the column count, then per
    column the column's type OID, an int32 length (-1 for NULL) and the
    value in binary send format.  Sending puts copies the live rows whole
    behind the header of one binary array of records (the table's row type,
    008_row_types.sql), for statements of the form

        INSERT INTO t (...) SELECT * FROM unnest ($1::t_row [])
        ON CONFLICT (key) DO UPDATE SET ...

    (one function scan: the server runs an unnest of one array per column
    as one scan per array, zipped, about twice the cost); deletes slice the
    key column into one array.  So a batch of any size is at most eight
    statements.  Binary parameters need no quoting and no parsing of
    numbers on either side.  A put and a
    delete of the same key are never both live, so one statement never
    touches a row twice (which ON CONFLICT DO UPDATE refuses).  */

#include "gt_pgbatch_private.h"
#include "gt_table.h"
#include <czmq.h>
#include <pthread.h>
#include <endian.h>
#include <sys/random.h>

//  The types of gt_pgbatch_private.h, by their short names here
typedef gt_pgbatch_buffer_t s_buffer_t;
typedef gt_pgbatch_table_t s_table_t;

struct gt_pgbatch_row_t {
    size_t offset;                  //  where its record starts in the arena
    size_t size;                    //  the record's length (its own length field included)
    bool live;                      //  false once a later operation on the key replaced it
    bool is_delete;                 //  a delete (key column only), else a put (all columns)
    bool is_new;                    //  a put of a key no transaction wrote before: a plain INSERT will do
};
typedef gt_pgbatch_row_t s_row_t;

//  Statement names, SQL and element types of their array parameters
typedef struct {
    const char *name;               //  prepared statement name
    const char *sql;                //  its text
} s_statement_t;

//  The columns' element types, declared in gt_pgbatch_private.h
const Oid gt_pgbatch_lease_types [GT_PGBATCH_LEASE_COLUMNS] = {
    GT_PGBATCH_OID_UUID, GT_PGBATCH_OID_TEXT, GT_PGBATCH_OID_TEXT, GT_PGBATCH_OID_TEXT,
    GT_PGBATCH_OID_TEXT, GT_PGBATCH_OID_INT8, GT_PGBATCH_OID_INT8, GT_PGBATCH_OID_INT8,
    GT_PGBATCH_OID_INT8, GT_PGBATCH_OID_INT8, GT_PGBATCH_OID_INT8, GT_PGBATCH_OID_JSONB,
    GT_PGBATCH_OID_JSONB, GT_PGBATCH_OID_TEXT, GT_PGBATCH_OID_TEXT, GT_PGBATCH_OID_INT8,
    GT_PGBATCH_OID_TEXT, GT_PGBATCH_OID_INT2
};
const Oid gt_pgbatch_object_types [GT_PGBATCH_OBJECT_COLUMNS] = {
    GT_PGBATCH_OID_TEXT, GT_PGBATCH_OID_INT8, GT_PGBATCH_OID_BOOL, GT_PGBATCH_OID_INT8,
    GT_PGBATCH_OID_TEXT, GT_PGBATCH_OID_UUID, GT_PGBATCH_OID_INT2
};
const Oid gt_pgbatch_event_types [GT_PGBATCH_EVENT_COLUMNS] = {
    GT_PGBATCH_OID_INT8, GT_PGBATCH_OID_TEXT, GT_PGBATCH_OID_INT8, GT_PGBATCH_OID_TEXT,
    GT_PGBATCH_OID_BYTEA, GT_PGBATCH_OID_INT2
};
const Oid gt_pgbatch_callback_types [GT_PGBATCH_CALLBACK_COLUMNS] = {
    GT_PGBATCH_OID_INT8, GT_PGBATCH_OID_UUID, GT_PGBATCH_OID_TEXT, GT_PGBATCH_OID_TEXT,
    GT_PGBATCH_OID_INT8, GT_PGBATCH_OID_INT8, GT_PGBATCH_OID_INT8, GT_PGBATCH_OID_TEXT,
    GT_PGBATCH_OID_INT8, GT_PGBATCH_OID_TEXT, GT_PGBATCH_OID_INT2
};

enum { S_GUARD, S_PROVE, S_LEASE_DELETE, S_LEASE_UPSERT, S_OBJECT_DELETE, S_OBJECT_UPSERT,
       S_EVENT_INSERT, S_EVENT_PRUNE, S_META_UPDATE, S_CALLBACK_DELETE, S_CALLBACK_UPSERT,
       S_GUARD_CLUSTER, S_EVENT_INSERT_CLUSTER, S_EVENT_PRUNE_CLUSTER, S_META_UPDATE_CLUSTER, S_PROVE_SINGLE,
       S_LEASE_INSERT, S_EVENT_UPSERT,
       S_STATEMENTS };

//  The rows of a batch into gt_leases / gt_events: plain, or with ON
//  CONFLICT appended (the upserts)
#define S_LEASE_INSERT_SQL \
    "INSERT INTO gt_leases (id, object_id, object_type, service_id, state, fence, ttl_ms," \
    " created_at, renewed_at, expires_at, renewals, metadata, cleanup, idempotency_key," \
    " cleanup_status, cleanup_attempts, cleanup_error, shard)" \
    " SELECT * FROM unnest ($1::gt_lease_row [])"
#define S_EVENT_INSERT_SQL \
    "INSERT INTO gt_events (seq, kind, at, topic, body, shard)" \
    " SELECT * FROM unnest ($1::gt_event_row [])"

static const s_statement_t s_statements [S_STATEMENTS] = {
    //  Fails (division by zero) unless the previous transaction committed
    { "gt_guard", "SELECT 1 / (commit_token = $1::int8)::int FROM gt_meta" },
    //  Fails (SQLSTATE GTF01) unless the broker still owns the shards
    //  written, at the epochs it claims (004_shards.sql)
    { "gt_prove", "SELECT gt_prove_epochs ($1::text, $2::int2[], $3::int8[])" },
    { "gt_lease_delete", "DELETE FROM gt_leases WHERE id = ANY ($1::uuid[])" },
    { "gt_lease_upsert",
      S_LEASE_INSERT_SQL
      " ON CONFLICT (id) DO UPDATE SET object_id = EXCLUDED.object_id,"
      " object_type = EXCLUDED.object_type, service_id = EXCLUDED.service_id,"
      " state = EXCLUDED.state, fence = EXCLUDED.fence, ttl_ms = EXCLUDED.ttl_ms,"
      " created_at = EXCLUDED.created_at, renewed_at = EXCLUDED.renewed_at,"
      " expires_at = EXCLUDED.expires_at, renewals = EXCLUDED.renewals,"
      " metadata = EXCLUDED.metadata, cleanup = EXCLUDED.cleanup,"
      " idempotency_key = EXCLUDED.idempotency_key, cleanup_status = EXCLUDED.cleanup_status,"
      " cleanup_attempts = EXCLUDED.cleanup_attempts, cleanup_error = EXCLUDED.cleanup_error,"
      " shard = EXCLUDED.shard" },
    { "gt_object_delete", "DELETE FROM gt_objects WHERE object_id = ANY ($1::text[])" },
    { "gt_object_upsert",
      "INSERT INTO gt_objects (object_id, fence, live, pending_at, reason, last_lease_id, shard)"
      " SELECT * FROM unnest ($1::gt_object_row [])"
      " ON CONFLICT (object_id) DO UPDATE SET fence = EXCLUDED.fence, live = EXCLUDED.live,"
      " pending_at = EXCLUDED.pending_at, reason = EXCLUDED.reason,"
      " last_lease_id = EXCLUDED.last_lease_id" },
    //  A plain INSERT: a seq is written again only after a transaction
    //  whose answer was lost, or once a 23505 showed one was (the writer
    //  then asks gt_pgbatch_send for upserts)
    { "gt_event_insert",
      S_EVENT_INSERT_SQL },
    { "gt_event_prune", "DELETE FROM gt_events WHERE seq >= $1::int8 AND seq < $2::int8" },
    { "gt_meta_update",
      "UPDATE gt_meta SET last_seq = GREATEST (last_seq, $1::int8),"
      " fence_counter = GREATEST (fence_counter, $2::int8), commit_token = $3::int8" },
    { "gt_callback_delete", "DELETE FROM gt_callbacks WHERE job_id = ANY ($1::int8[])" },
    { "gt_callback_upsert",
      "INSERT INTO gt_callbacks (job_id, lease_id, url, body, max_retries, retry_delay_ms,"
      " attempts, status, next_at, last_error, shard)"
      " SELECT * FROM unnest ($1::gt_callback_row [])"
      " ON CONFLICT (job_id) DO UPDATE SET lease_id = EXCLUDED.lease_id, url = EXCLUDED.url,"
      " body = EXCLUDED.body, max_retries = EXCLUDED.max_retries,"
      " retry_delay_ms = EXCLUDED.retry_delay_ms, attempts = EXCLUDED.attempts,"
      " status = EXCLUDED.status, next_at = EXCLUDED.next_at, last_error = EXCLUDED.last_error,"
      " shard = EXCLUDED.shard" },
    //  Cluster mode (005_cluster.sql): the broker's own commit token, events
    //  numbered per shard, counters per shard.  The guard fails (division
    //  by zero) unless the previous transaction committed, or if the
    //  broker's token row is missing
    { "gt_guard_cluster",
      "SELECT 1 / coalesce ((SELECT (token = $1::int8)::int FROM gt_commit_tokens"
      " WHERE broker_id = $2::text), 0)" },
    { "gt_event_insert_cluster",
      "INSERT INTO gt_shard_events (shard, seq, kind, at, topic, body)"
      " SELECT shard, seq, kind, at, topic, body FROM unnest ($1::gt_event_row [])"
      " ON CONFLICT (shard, seq) DO UPDATE SET kind = EXCLUDED.kind, at = EXCLUDED.at,"
      " topic = EXCLUDED.topic, body = EXCLUDED.body" },
    { "gt_event_prune_cluster",
      "DELETE FROM gt_shard_events e USING gt_shard_counters c"
      " WHERE e.shard = c.shard AND e.shard = ANY ($1::int2[]) AND e.seq <= c.last_seq - $2::int8" },
    { "gt_meta_update_cluster",
      "WITH token AS (UPDATE gt_commit_tokens SET token = $3::int8 WHERE broker_id = $4::text)"
      " UPDATE gt_shard_counters c SET last_seq = GREATEST (c.last_seq, x.seq),"
      " fence_counter = GREATEST (c.fence_counter, $2::int8)"
      " FROM unnest ($1::int2[], $5::int8[]) AS x (shard, seq) WHERE c.shard = x.shard" },
    //  Single mode's proof (007_single_mode_proof.sql): shard 0's row
    //  locked and compared, since every acquisition there takes all shards
    { "gt_prove_single", "SELECT gt_prove_epoch_single ($1::text, $2::int8)" },
    //  New leases (CREATE): no earlier transaction wrote their ids, so no
    //  ON CONFLICT, which costs a third of a row's insert
    { "gt_lease_insert",
      S_LEASE_INSERT_SQL },
    { "gt_event_upsert",
      S_EVENT_INSERT_SQL
      " ON CONFLICT (seq) DO UPDATE SET kind = EXCLUDED.kind, at = EXCLUDED.at,"
      " topic = EXCLUDED.topic, body = EXCLUDED.body, shard = EXCLUDED.shard" },
};

//  --------------------------------------------------------------------------
//  Encoding

__attribute__ ((noinline)) static void
s_buffer_grow (s_buffer_t *buffer, size_t more)
{
    size_t capacity = buffer->capacity? buffer->capacity * 2: 4096;
    while (capacity < buffer->size + more)
        capacity *= 2;
    buffer->data = (char *) realloc (buffer->data, capacity);
    assert (buffer->data);
    buffer->capacity = capacity;
}

//  Room for more bytes (the test is inline: it is made for every column)
static inline void
s_buffer_reserve (s_buffer_t *buffer, size_t more)
{
    if (buffer->size + more > buffer->capacity)
        s_buffer_grow (buffer, more);
}

static void
s_buffer_append (s_buffer_t *buffer, const void *data, size_t size)
{
    s_buffer_reserve (buffer, size);
    if (size)
        memcpy (buffer->data + buffer->size, data, size);
    buffer->size += size;
}

//  Big-endian stores: a byte swap and a copy each (a loop of shifts per
//  byte cost several times as much, on every column of every row)
static inline void
s_write_be32 (char *at, int32_t value)
{
    uint32_t bits = htobe32 ((uint32_t) value);
    memcpy (at, &bits, 4);
}

static inline void
s_write_be64 (char *at, uint64_t value)
{
    uint64_t bits = htobe64 (value);
    memcpy (at, &bits, 8);
}

static int32_t
s_read_be32 (const char *at)
{
    const unsigned char *bytes = (const unsigned char *) at;
    return (int32_t) ((uint32_t) bytes [0] << 24 | (uint32_t) bytes [1] << 16
                    | (uint32_t) bytes [2] << 8 | bytes [3]);
}

static void
s_put_be32 (s_buffer_t *buffer, int32_t value)
{
    s_buffer_reserve (buffer, 4);
    s_write_be32 (buffer->data + buffer->size, value);
    buffer->size += 4;
}

//  A one-dimensional binary array's header (GT_PGBATCH_ARRAY_HEADER bytes):
//  the element type, the element count; no NULLs (a caller that puts one
//  patches the flag at offset 4)
static void
s_put_array_header (s_buffer_t *buffer, Oid type, size_t count)
{
    assert (count <= INT32_MAX);
    s_put_be32 (buffer, 1);                     //  one dimension
    s_put_be32 (buffer, 0);                     //  no NULLs
    s_put_be32 (buffer, (int32_t) type);
    s_put_be32 (buffer, (int32_t) count);
    s_put_be32 (buffer, 1);                     //  lower bound
}

//  The 8 bytes of an int8 in binary format (big-endian)
static void
s_put_raw_int8 (s_buffer_t *buffer, uint64_t value)
{
    s_buffer_reserve (buffer, 8);
    s_write_be64 (buffer->data + buffer->size, value);
    buffer->size += 8;
}

static void
s_put_int8 (s_buffer_t *buffer, uint64_t value)
{
    s_put_be32 (buffer, 8);
    s_put_raw_int8 (buffer, value);
}

static void
s_put_int2 (s_buffer_t *buffer, unsigned value)
{
    assert (value <= INT16_MAX);
    s_put_be32 (buffer, 2);
    char bytes [2] = { (char) (value >> 8), (char) value };
    s_buffer_append (buffer, bytes, 2);
}

static int
s_hex_digit (char c)
{
    return c >= '0' && c <= '9'? c - '0': c >= 'a' && c <= 'f'? c - 'a' + 10: -1;
}


//  JSON string literal; input is UTF-8 (the codec checked it), so only
//  quotes, backslashes and control characters need escaping.
static void
s_json_string (s_buffer_t *buffer, const char *text)
{
    s_buffer_append (buffer, "\"", 1);
    const char *run = text;
    for (const char *at = text; *at; at++) {
        unsigned char c = (unsigned char) *at;
        if (c == '"' || c == '\\' || c < 0x20) {
            s_buffer_append (buffer, run, (size_t) (at - run));
            char escape [8];
            if (c == '"' || c == '\\')
                snprintf (escape, sizeof escape, "\\%c", c);
            else
                snprintf (escape, sizeof escape, "\\u%04x", c);
            s_buffer_append (buffer, escape, strlen (escape));
            run = at + 1;
        }
    }
    s_buffer_append (buffer, run, strlen (run));
    s_buffer_append (buffer, "\"", 1);
}

static void
s_json_number (s_buffer_t *buffer, uint64_t value)
{
    char digits [24];
    int length = snprintf (digits, sizeof digits, "%" PRIu64, value);
    s_buffer_append (buffer, digits, (size_t) length);
}

//  Starts a jsonb element: its length is patched by s_jsonb_end.
static size_t
s_jsonb_begin (s_buffer_t *buffer)
{
    size_t start = buffer->size;
    s_put_be32 (buffer, 0);
    s_buffer_append (buffer, "\x01", 1);    //  jsonb binary format version
    return start;
}

static void
s_jsonb_end (s_buffer_t *buffer, size_t start)
{
    s_write_be32 (buffer->data + start, (int32_t) (buffer->size - start - 4));
}

//  Columns of a row, as a record holds them: the column's type OID, the
//  value's length (-1 for NULL), the value.  s_col_begin reserves room,
//  writes the first two and returns where the value goes.
static char *
s_col_begin (s_buffer_t *arena, Oid type, int32_t length)
{
    size_t value = length > 0? (size_t) length: 0;
    s_buffer_reserve (arena, 8 + value);
    char *at = arena->data + arena->size;
    s_write_be32 (at, (int32_t) type);
    s_write_be32 (at + 4, length);
    arena->size += 8 + value;
    return at + 8;
}

static void
s_col_null (s_buffer_t *arena, Oid type)
{
    s_col_begin (arena, type, -1);
}

static void
s_col_int8 (s_buffer_t *arena, uint64_t value)
{
    s_write_be64 (s_col_begin (arena, GT_PGBATCH_OID_INT8, 8), value);
}

static void
s_col_int2 (s_buffer_t *arena, unsigned value)
{
    assert (value <= INT16_MAX);
    char *at = s_col_begin (arena, GT_PGBATCH_OID_INT2, 2);
    at [0] = (char) (value >> 8);
    at [1] = (char) value;
}

static void
s_col_bool (s_buffer_t *arena, bool value)
{
    *s_col_begin (arena, GT_PGBATCH_OID_BOOL, 1) = value? 1: 0;
}

static void
s_col_bytes (s_buffer_t *arena, Oid type, const void *data, size_t size)
{
    assert (size <= INT32_MAX);
    char *at = s_col_begin (arena, type, (int32_t) size);
    if (size)
        memcpy (at, data, size);
}

static void
s_col_text (s_buffer_t *arena, const char *text)
{
    assert (text);
    s_col_bytes (arena, GT_PGBATCH_OID_TEXT, text, strlen (text));
}

static void
s_col_uuid (s_buffer_t *arena, const char *hex)
{
    assert (gt_lease_id_valid (hex));
    unsigned char bytes [16];
    for (int index = 0; index < 16; index++)
        bytes [index] = (unsigned char) (s_hex_digit (hex [2 * index]) << 4
                                       | s_hex_digit (hex [2 * index + 1]));
    s_col_bytes (arena, GT_PGBATCH_OID_UUID, bytes, 16);
}

//  A jsonb column of the metadata (never NULL: {} when empty)
static void
s_col_metadata (s_buffer_t *buffer, const gt_meta_t *metadata)
{
    s_put_be32 (buffer, GT_PGBATCH_OID_JSONB);
    size_t start = s_jsonb_begin (buffer);
    s_buffer_append (buffer, "{", 1);
    for (size_t index = 0; index < metadata->count; index++) {
        if (index)
            s_buffer_append (buffer, ",", 1);
        s_json_string (buffer, metadata->entries [index].key);
        s_buffer_append (buffer, ":", 1);
        s_json_string (buffer, metadata->entries [index].value);
    }
    s_buffer_append (buffer, "}", 1);
    s_jsonb_end (buffer, start);
}

//  A jsonb column of the cleanup, NULL if none
static void
s_col_cleanup (s_buffer_t *buffer, const gt_cleanup_t *cleanup)
{
    if (!cleanup) {
        s_col_null (buffer, GT_PGBATCH_OID_JSONB);
        return;
    }
    s_put_be32 (buffer, GT_PGBATCH_OID_JSONB);
    size_t start = s_jsonb_begin (buffer);
    s_buffer_append (buffer, "{\"url\":", 7);
    s_json_string (buffer, cleanup->url);
    if (cleanup->payload) {
        s_buffer_append (buffer, ",\"payload\":", 11);
        s_json_string (buffer, cleanup->payload);
    }
    if (cleanup->has_max_retries) {
        s_buffer_append (buffer, ",\"max_retries\":", 15);
        s_json_number (buffer, cleanup->max_retries);
    }
    if (cleanup->has_retry_delay) {
        s_buffer_append (buffer, ",\"retry_delay_ms\":", 18);
        s_json_number (buffer, cleanup->retry_delay_ms);
    }
    s_buffer_append (buffer, "}", 1);
    s_jsonb_end (buffer, start);
}

//  --------------------------------------------------------------------------
//  Tables of operations

static void
s_table_init (s_table_t *table, bool collapse, int columns)
{
    memset (table, 0, sizeof *table);
    table->collapse = collapse;
    table->columns = columns;
}

static void
s_table_clear (s_table_t *table)
{
    free (table->index);
    free (table->rows);
    free (table->arena.data);
}

//  Starts a row.  The caller then appends its record to table->arena
//  (s_row_begin does both for a new operation, s_table_merge copies one)
//  and calls s_table_end.
static void
s_table_begin (s_table_t *table, bool is_delete, bool is_new)
{
    if (table->count == table->capacity) {
        table->capacity = table->capacity? table->capacity * 2: 64;
        table->rows = (s_row_t *) realloc (table->rows, table->capacity * sizeof (s_row_t));
        assert (table->rows);
    }
    s_row_t *row = &table->rows [table->count++];
    row->offset = table->arena.size;
    row->size = 0;
    row->live = true;
    row->is_delete = is_delete;
    row->is_new = is_new && !is_delete;
    if (is_delete)
        table->live_deletes++;
    else
        table->live_puts++;
    if (row->is_new)
        table->live_new_puts++;
}

//  Starts a recorded operation: its row, and its record's length (patched
//  by s_table_end) and column count (every column for a put, the key for a
//  delete).  The caller then writes its columns, the key first.
static void
s_row_begin (s_table_t *table, bool is_delete, bool is_new)
{
    s_table_begin (table, is_delete, is_new);
    s_put_be32 (&table->arena, 0);
    s_put_be32 (&table->arena, is_delete? 1: table->columns);
}

//  The key index of a collapsing table: open addressing over the rows'
//  keys, which are their first columns as encoded in the arena (a uuid's 16
//  bytes, an int8's 8, a text's bytes: one per database row, as the old
//  texts were).  Hashed with SipHash under a key drawn once per process,
//  since object ids are the clients'.
static uint8_t s_index_key [16];
static pthread_once_t s_index_key_once = PTHREAD_ONCE_INIT;

static void
s_index_key_draw (void)
{
    size_t filled = 0;
    while (filled < sizeof s_index_key) {
        ssize_t rc = getrandom (s_index_key + filled, sizeof s_index_key - filled, 0);
        assert (rc > 0 || errno == EINTR);      //  no CSPRNG is an environment error
        if (rc > 0)
            filled += (size_t) rc;
    }
}

//  A row's key: its first column's bytes (after the record's length and
//  column count, the column's type and length)
static const char *
s_row_key (const s_table_t *table, const s_row_t *row, size_t *size)
{
    const char *at = table->arena.data + row->offset + 12;
    int32_t length = s_read_be32 (at);
    assert (length >= 0 && (size_t) length + 16 <= row->size);
    *size = (size_t) length;
    return at + 4;
}

static uint64_t
s_row_hash (const s_table_t *table, const s_row_t *row)
{
    size_t size;
    const char *key = s_row_key (table, row, &size);
    return gt_siphash (s_index_key, key, size);
}

//  The index slot holding row's key, or the empty slot where it goes
static size_t
s_index_slot (const s_table_t *table, const s_row_t *row, uint64_t hash)
{
    size_t size;
    const char *key = s_row_key (table, row, &size);
    size_t mask = table->index_cap - 1;
    size_t slot = (size_t) hash & mask;
    while (table->index [slot]) {
        size_t other_size;
        const char *other = s_row_key (table, &table->rows [table->index [slot] - 1], &other_size);
        if (other_size == size && memcmp (other, key, size) == 0)
            break;
        slot = (slot + 1) & mask;
    }
    return slot;
}

//  Room for count rows at most half the slots (the live rows' keys are
//  placed again: retired rows are in no slot)
static void
s_index_grow (s_table_t *table, size_t count)
{
    if (table->index && count * 2 <= table->index_cap)
        return;
    size_t capacity = table->index_cap? table->index_cap: 64;
    while (count * 2 > capacity)
        capacity *= 2;
    free (table->index);
    table->index = (uint32_t *) calloc (capacity, sizeof (uint32_t));
    assert (table->index);
    table->index_cap = capacity;
    for (size_t index = 0; index < table->count; index++) {
        s_row_t *row = &table->rows [index];
        if (row->live && row != &table->rows [table->count - 1])
            table->index [s_index_slot (table, row, s_row_hash (table, row))] = (uint32_t) index + 1;
    }
}

//  Ends the row begun last.  In a collapsing table it retires the earlier
//  row of the same key, if any.
static void
s_table_end (s_table_t *table)
{
    s_row_t *row = &table->rows [table->count - 1];
    row->size = table->arena.size - row->offset;
    assert (row->size <= INT32_MAX);
    s_write_be32 (table->arena.data + row->offset, (int32_t) (row->size - 4));
    if (!table->collapse)
        return;
    assert (table->count < UINT32_MAX);
    s_index_grow (table, table->count);
    size_t slot = s_index_slot (table, row, s_row_hash (table, row));
    if (table->index [slot]) {
        s_row_t *old = &table->rows [table->index [slot] - 1];
        old->live = false;
        if (old->is_delete)
            table->live_deletes--;
        else
            table->live_puts--;
        if (old->is_new)
            table->live_new_puts--;
        //  A put after a new put of the key: still never written
        if (!old->is_delete && old->is_new && !row->is_delete && !row->is_new) {
            row->is_new = true;
            table->live_new_puts++;
        }
    }
    table->index [slot] = (uint32_t) table->count;
}

//  Append other's live rows to table, collapsing.
static void
s_table_merge (s_table_t *table, s_table_t *other)
{
    for (size_t index = 0; index < other->count; index++) {
        s_row_t *row = &other->rows [index];
        if (!row->live)
            continue;
        s_table_begin (table, row->is_delete, row->is_new);
        s_buffer_append (&table->arena, other->arena.data + row->offset, row->size);
        s_table_end (table);
    }
}

//  Which live rows a statement takes
typedef enum {
    S_ROWS_DELETES,                 //  deletes (key column only)
    S_ROWS_PUTS,                    //  every put
    S_ROWS_NEW_PUTS,                //  puts of keys never written before
    S_ROWS_OLD_PUTS                 //  the other puts
} s_rows_t;

static size_t
s_rows_count (s_table_t *table, s_rows_t rows)
{
    switch (rows) {
        case S_ROWS_DELETES:  return table->live_deletes;
        case S_ROWS_PUTS:     return table->live_puts;
        case S_ROWS_NEW_PUTS: return table->live_new_puts;
        case S_ROWS_OLD_PUTS: return table->live_puts - table->live_new_puts;
    }
    return 0;
}

static bool
s_rows_take (s_row_t *row, s_rows_t rows)
{
    if (!row->live || row->is_delete != (rows == S_ROWS_DELETES))
        return false;
    return rows == S_ROWS_NEW_PUTS? row->is_new: rows == S_ROWS_OLD_PUTS? !row->is_new: true;
}

//  Binary arrays, one per column, of the live rows selected.  Caller frees
//  each buffer's data.
static void
s_table_arrays (s_table_t *table, s_rows_t selected, const Oid *types, int columns, s_buffer_t *arrays)
{
    size_t rows = s_rows_count (table, selected);
    for (int column = 0; column < columns; column++) {
        memset (&arrays [column], 0, sizeof (s_buffer_t));
        s_buffer_reserve (&arrays [column], GT_PGBATCH_ARRAY_HEADER + rows * 12);
        s_put_array_header (&arrays [column], types [column], rows);    //  NULLs patched below
    }
    for (size_t index = 0; index < table->count; index++) {
        s_row_t *row = &table->rows [index];
        if (!s_rows_take (row, selected))
            continue;
        const char *at = table->arena.data + row->offset + 8;
        for (int column = 0; column < columns; column++) {
            at += 4;                                //  the column's type
            int32_t length = s_read_be32 (at);
            size_t size = 4 + (length > 0? (size_t) length: 0);
            s_buffer_append (&arrays [column], at, size);
            if (length < 0)
                s_write_be32 (arrays [column].data + 4, 1);
            at += size;
        }
        assert (at <= table->arena.data + row->offset + row->size);
    }
}

void
gt_pgbatch_table_arrays (s_table_t *table, bool deletes, const Oid *types, int columns,
                         s_buffer_t *arrays)
{
    s_table_arrays (table, deletes? S_ROWS_DELETES: S_ROWS_PUTS, types, columns, arrays);
}

//  One binary array of records of type row_type (columns columns), one
//  per live row selected: the put statements' parameter.
//  Caller frees array's data.
static void
s_table_records (s_table_t *table, s_rows_t selected, Oid row_type, int columns, s_buffer_t *array)
{
    size_t rows = s_rows_count (table, selected);
    size_t bytes = 0;
    for (size_t index = 0; index < table->count; index++)
        if (s_rows_take (&table->rows [index], selected))
            bytes += table->rows [index].size;
    memset (array, 0, sizeof (s_buffer_t));
    s_buffer_reserve (array, GT_PGBATCH_ARRAY_HEADER + bytes);     //  one allocation
    s_put_array_header (array, row_type, rows);
    for (size_t index = 0; index < table->count; index++) {
        s_row_t *row = &table->rows [index];
        if (!s_rows_take (row, selected))
            continue;
        //  The row is the record as the array holds it
        assert (s_read_be32 (table->arena.data + row->offset + 4) == columns);
        s_buffer_append (array, table->arena.data + row->offset, row->size);
    }
}

void
gt_pgbatch_table_records (s_table_t *table, Oid row_type, int columns, s_buffer_t *array)
{
    s_table_records (table, S_ROWS_PUTS, row_type, columns, array);
}

//  Queue one prepared statement whose parameters are all binary.
static int
s_send (PGconn *conn, int statement, int count, s_buffer_t *params)
{
    const char *values [GT_PGBATCH_LEASE_COLUMNS] = { NULL };
    int lengths [GT_PGBATCH_LEASE_COLUMNS] = { 0 };
    int formats [GT_PGBATCH_LEASE_COLUMNS] = { 0 };
    assert (count <= GT_PGBATCH_LEASE_COLUMNS);
    for (int index = 0; index < count; index++) {
        values [index] = params [index].data;
        lengths [index] = (int) params [index].size;
        formats [index] = 1;
    }
    int rc = PQsendQueryPrepared (conn, s_statements [statement].name, count,
                                  values, lengths, formats, 0);
    for (int index = 0; index < count; index++)
        free (params [index].data);
    return rc == 1? 0: -1;
}

//  Queue a statement over the table's rows selected, if there are any:
//  deletes take an array of keys, puts an array of records of row_type.
//  Returns 1 if queued, 0 if nothing to do, -1 on error.
static int
s_send_table (PGconn *conn, s_table_t *table, s_rows_t rows, int statement,
              Oid row_type, const Oid *types, int columns)
{
    if (s_rows_count (table, rows) == 0)
        return 0;
    s_buffer_t array;
    if (rows == S_ROWS_DELETES)
        s_table_arrays (table, rows, types, 1, &array);
    else
        s_table_records (table, rows, row_type, columns, &array);
    return s_send (conn, statement, 1, &array) == 0? 1: -1;
}

//  --------------------------------------------------------------------------
//  Public API

gt_pgbatch_t *
gt_pgbatch_new (void)
{
    gt_pgbatch_t *self = (gt_pgbatch_t *) zmalloc (sizeof (gt_pgbatch_t));
    assert (self);
    pthread_once (&s_index_key_once, s_index_key_draw);     //  (once a process, not once a row)
    s_table_init (&self->leases, true, GT_PGBATCH_LEASE_COLUMNS);
    s_table_init (&self->objects, true, GT_PGBATCH_OBJECT_COLUMNS);
    s_table_init (&self->events, false, GT_PGBATCH_EVENT_COLUMNS);
    s_table_init (&self->callbacks, true, GT_PGBATCH_CALLBACK_COLUMNS);
    return self;
}

//  Room in an empty table for as many rows and bytes as other holds,
//  rounded up to powers of two (so a merge or two fits as well)
static void
s_table_size_like (s_table_t *table, const s_table_t *other)
{
    size_t rows = 64, bytes = 4096;
    while (rows < other->count)
        rows *= 2;
    while (bytes < other->arena.size)
        bytes *= 2;
    table->rows = (s_row_t *) malloc (rows * sizeof (s_row_t));
    table->arena.data = (char *) malloc (bytes);
    assert (table->rows && table->arena.data);
    table->capacity = rows;
    table->arena.capacity = bytes;
    //  The index as s_index_grow would size it for as many rows (from the
    //  count, not other's capacity, so that it shrinks after a big batch)
    if (table->collapse && other->count > 0) {
        size_t slots = 64;
        while (slots < 2 * other->count)
            slots *= 2;
        table->index = (uint32_t *) calloc (slots, sizeof (uint32_t));
        assert (table->index);
        table->index_cap = slots;
    }
}

gt_pgbatch_t *
gt_pgbatch_new_like (const gt_pgbatch_t *other)
{
    assert (other);
    gt_pgbatch_t *self = gt_pgbatch_new ();
    s_table_size_like (&self->leases, &other->leases);
    s_table_size_like (&self->objects, &other->objects);
    s_table_size_like (&self->events, &other->events);
    s_table_size_like (&self->callbacks, &other->callbacks);
    return self;
}

void
gt_pgbatch_destroy (gt_pgbatch_t **self_p)
{
    assert (self_p);
    gt_pgbatch_t *self = *self_p;
    if (self) {
        s_table_clear (&self->leases);
        s_table_clear (&self->objects);
        s_table_clear (&self->events);
        s_table_clear (&self->callbacks);
        free (self);
        *self_p = NULL;
    }
}

//  Mark a shard as written by the batch
static void
s_touch (gt_pgbatch_t *self, unsigned shard)
{
    assert (shard < GT_SHARD_COUNT);
    self->touched [shard / 8] |= (uint8_t) (1u << (shard % 8));
}

static bool
s_touches_any (const gt_pgbatch_t *self)
{
    for (unsigned byte = 0; byte < sizeof self->touched; byte++)
        if (self->touched [byte])
            return true;
    return false;
}

static bool
s_touches (const gt_pgbatch_t *self, unsigned shard)
{
    return (self->touched [shard / 8] >> (shard % 8)) & 1;
}

static void
s_lease_put (gt_pgbatch_t *self, const gt_lease_info_t *lease, const char *idempotency_key, bool is_new)
{
    assert (self);
    assert (lease);
    const char *object_type = gt_object_type_name (lease->object_type);
    const char *state = gt_state_name (lease->state);
    assert (object_type && state);
    s_buffer_t *arena = &self->leases.arena;
    s_row_begin (&self->leases, false, is_new);
    s_col_uuid (arena, lease->id);
    s_col_text (arena, lease->object_id);
    s_col_text (arena, object_type);
    s_col_text (arena, lease->service_id);
    s_col_text (arena, state);
    s_col_int8 (arena, lease->fence);
    s_col_int8 (arena, lease->ttl_ms);
    s_col_int8 (arena, lease->created_at);
    s_col_int8 (arena, lease->renewed_at);
    s_col_int8 (arena, lease->expires_at);
    s_col_int8 (arena, lease->renewals);
    s_col_metadata (arena, &lease->metadata);
    s_col_cleanup (arena, lease->cleanup);
    if (idempotency_key)
        s_col_text (arena, idempotency_key);
    else
        s_col_null (arena, GT_PGBATCH_OID_TEXT);
    const char *cleanup_status = gt_cleanup_status_name (lease->cleanup_status);
    if (cleanup_status)
        s_col_text (arena, cleanup_status);
    else
        s_col_null (arena, GT_PGBATCH_OID_TEXT);
    s_col_int8 (arena, cleanup_status? lease->cleanup_attempts: 0);
    if (cleanup_status && lease->cleanup_error && *lease->cleanup_error)
        s_col_text (arena, lease->cleanup_error);
    else
        s_col_null (arena, GT_PGBATCH_OID_TEXT);
    unsigned shard = gt_shard_of (lease->object_id);
    s_col_int2 (arena, shard);
    s_table_end (&self->leases);
    s_touch (self, shard);
}

void
gt_pgbatch_lease_put (gt_pgbatch_t *self, const gt_lease_info_t *lease,
                      const char *idempotency_key)
{
    s_lease_put (self, lease, idempotency_key, false);
}

void
gt_pgbatch_lease_create (gt_pgbatch_t *self, const gt_lease_info_t *lease,
                         const char *idempotency_key)
{
    s_lease_put (self, lease, idempotency_key, true);
}

void
gt_pgbatch_lease_delete (gt_pgbatch_t *self, const char *lease_id, unsigned shard)
{
    assert (self);
    s_touch (self, shard);
    s_row_begin (&self->leases, true, false);
    s_col_uuid (&self->leases.arena, lease_id);
    s_table_end (&self->leases);
}

void
gt_pgbatch_object_put (gt_pgbatch_t *self, const gt_pgobject_t *object)
{
    assert (self);
    assert (object && object->object_id);
    s_buffer_t *arena = &self->objects.arena;
    s_row_begin (&self->objects, false, false);
    s_col_text (arena, object->object_id);
    s_col_int8 (arena, object->fence);
    s_col_bool (arena, object->live);
    if (object->pending_at)
        s_col_int8 (arena, object->pending_at);
    else
        s_col_null (arena, GT_PGBATCH_OID_INT8);
    const char *reason = object->reason == GT_REASON_NONE? NULL: gt_reason_name (object->reason);
    if (reason)
        s_col_text (arena, reason);
    else
        s_col_null (arena, GT_PGBATCH_OID_TEXT);
    if (object->last_lease_id)
        s_col_uuid (arena, object->last_lease_id);
    else
        s_col_null (arena, GT_PGBATCH_OID_UUID);
    unsigned shard = gt_shard_of (object->object_id);
    s_col_int2 (arena, shard);
    s_table_end (&self->objects);
    s_touch (self, shard);
}

void
gt_pgbatch_object_delete (gt_pgbatch_t *self, const char *object_id)
{
    assert (self);
    assert (object_id);
    s_touch (self, gt_shard_of (object_id));
    s_row_begin (&self->objects, true, false);
    s_col_text (&self->objects.arena, object_id);
    s_table_end (&self->objects);
}

void
gt_pgbatch_event (gt_pgbatch_t *self, unsigned shard, uint64_t seq, gt_event_kind_t kind,
                  uint64_t at, const char *topic, const void *body, size_t body_len)
{
    assert (self);
    assert (seq > 0);
    const char *kind_name = gt_event_kind_name (kind);
    assert (kind_name && topic && (body || body_len == 0));
    s_buffer_t *arena = &self->events.arena;
    s_row_begin (&self->events, false, false);
    s_col_int8 (arena, seq);
    s_col_text (arena, kind_name);
    s_col_int8 (arena, at);
    s_col_text (arena, topic);
    s_col_bytes (arena, GT_PGBATCH_OID_BYTEA, body, body_len);
    s_col_int2 (arena, shard);
    s_table_end (&self->events);
    s_touch (self, shard);
    if (seq > self->shard_seq [shard])
        self->shard_seq [shard] = seq;
}

void
gt_pgbatch_callback_put (gt_pgbatch_t *self, const gt_pgcallback_t *callback)
{
    assert (self);
    assert (callback && callback->job_id > 0 && callback->job_id <= INT64_MAX);
    assert (callback->url && callback->body);
    const char *status = gt_cleanup_status_name (callback->status);
    assert (status);
    s_buffer_t *arena = &self->callbacks.arena;
    s_row_begin (&self->callbacks, false, false);
    s_col_int8 (arena, callback->job_id);
    if (callback->lease_id && gt_lease_id_valid (callback->lease_id))
        s_col_uuid (arena, callback->lease_id);
    else
        s_col_null (arena, GT_PGBATCH_OID_UUID);
    s_col_text (arena, callback->url);
    s_col_text (arena, callback->body);
    s_col_int8 (arena, callback->max_retries);
    s_col_int8 (arena, callback->retry_delay_ms);
    s_col_int8 (arena, callback->attempts);
    s_col_text (arena, status);
    if (callback->next_at)
        s_col_int8 (arena, callback->next_at);
    else
        s_col_null (arena, GT_PGBATCH_OID_INT8);
    s_col_text (arena, callback->last_error? callback->last_error: "");
    s_col_int2 (arena, callback->shard);
    s_table_end (&self->callbacks);
    s_touch (self, callback->shard);
}

void
gt_pgbatch_callback_delete (gt_pgbatch_t *self, uint64_t job_id, unsigned shard)
{
    assert (self);
    assert (job_id > 0 && job_id <= INT64_MAX);
    s_touch (self, shard);
    s_row_begin (&self->callbacks, true, false);
    s_col_int8 (&self->callbacks.arena, job_id);
    s_table_end (&self->callbacks);
}

void
gt_pgbatch_fence (gt_pgbatch_t *self, const uint64_t *epochs)
{
    assert (self);
    assert (epochs);
    memcpy (self->epochs, epochs, sizeof self->epochs);
    self->whole_epoch = epochs [0];
    self->fenced = true;
}

void
gt_pgbatch_events_prune (gt_pgbatch_t *self, uint64_t from_seq, uint64_t below_seq)
{
    assert (self);
    if (below_seq <= from_seq)
        return;                     //  an empty range
    if (!self->prune_below || from_seq < self->prune_from)
        self->prune_from = from_seq;
    if (below_seq > self->prune_below)
        self->prune_below = below_seq;
}

void
gt_pgbatch_events_prune_shards (gt_pgbatch_t *self, uint64_t keep)
{
    assert (self);
    assert (keep > 0);
    self->prune_keep = keep;
}

void
gt_pgbatch_meta (gt_pgbatch_t *self, uint64_t last_seq, uint64_t fence_counter)
{
    assert (self);
    if (!self->has_meta || last_seq > self->last_seq)
        self->last_seq = last_seq;
    if (!self->has_meta || fence_counter > self->fence_counter)
        self->fence_counter = fence_counter;
    self->has_meta = true;
}

size_t
gt_pgbatch_size (gt_pgbatch_t *self)
{
    assert (self);
    return self->leases.live_puts + self->leases.live_deletes
         + self->objects.live_puts + self->objects.live_deletes
         + self->events.live_puts + self->callbacks.live_puts + self->callbacks.live_deletes
         + (self->prune_below? 1: 0) + (self->has_meta? 1: 0);
}

size_t
gt_pgbatch_bytes (gt_pgbatch_t *self)
{
    assert (self);
    return self->leases.arena.size + self->objects.arena.size + self->events.arena.size
         + self->callbacks.arena.size;
}

bool
gt_pgbatch_empty (gt_pgbatch_t *self)
{
    return gt_pgbatch_size (self) == 0;
}

void
gt_pgbatch_merge (gt_pgbatch_t *self, gt_pgbatch_t **other_p)
{
    assert (self);
    assert (other_p && *other_p);
    gt_pgbatch_t *other = *other_p;
    s_table_merge (&self->leases, &other->leases);
    s_table_merge (&self->objects, &other->objects);
    s_table_merge (&self->events, &other->events);
    s_table_merge (&self->callbacks, &other->callbacks);
    gt_pgbatch_events_prune (self, other->prune_from, other->prune_below);
    if (other->prune_keep)
        self->prune_keep = other->prune_keep;
    for (unsigned shard = 0; shard < GT_SHARD_COUNT; shard++)
        if (other->shard_seq [shard] > self->shard_seq [shard])
            self->shard_seq [shard] = other->shard_seq [shard];
    //  One proof covers both: a shard recorded under two epochs cannot be
    //  proved (GT_PGBATCH_EPOCH_NONE never matches), so the transaction
    //  fails, as the earlier batch alone would have
    if (!self->fenced && other->fenced)
        for (unsigned shard = 0; shard < GT_SHARD_COUNT; shard++)
            self->epochs [shard] = GT_PGBATCH_EPOCH_NONE;
    //  The same for single mode's one epoch: rows recorded unfenced or
    //  under another epoch cannot be proved with it
    if (!other->fenced) {
        if (self->fenced && s_touches_any (other))
            self->whole_epoch = GT_PGBATCH_EPOCH_NONE;
    }
    else
    if (!self->fenced)
        self->whole_epoch = s_touches_any (self)? GT_PGBATCH_EPOCH_NONE: other->whole_epoch;
    else
    if (self->whole_epoch != other->whole_epoch)
        self->whole_epoch = GT_PGBATCH_EPOCH_NONE;
    for (unsigned shard = 0; shard < GT_SHARD_COUNT; shard++) {
        if (!s_touches (other, shard))
            continue;
        uint64_t epoch = other->fenced? other->epochs [shard]: GT_PGBATCH_EPOCH_NONE;
        if (s_touches (self, shard)) {
            uint64_t mine = self->fenced? self->epochs [shard]: GT_PGBATCH_EPOCH_NONE;
            if (mine != epoch)
                epoch = GT_PGBATCH_EPOCH_NONE;
        }
        s_touch (self, shard);
        self->epochs [shard] = epoch;
    }
    self->fenced = self->fenced || other->fenced;
    if (other->has_meta)
        gt_pgbatch_meta (self, other->last_seq, other->fence_counter);
    gt_pgbatch_destroy (other_p);
}

//  The row types' OIDs, read on every connection (008_row_types.sql); the
//  first column's name marks the result for gt_pgbatch_row_types_read
#define S_ROW_TYPES_SQL \
    "SELECT 'gt_lease_row'::regtype::oid AS gt_pgbatch_row_types," \
    " 'gt_object_row'::regtype::oid, 'gt_event_row'::regtype::oid," \
    " 'gt_callback_row'::regtype::oid"

int
gt_pgbatch_prepare (PGconn *conn)
{
    for (int index = 0; index < S_STATEMENTS; index++)
        if (PQsendPrepare (conn, s_statements [index].name, s_statements [index].sql,
                           0, NULL) != 1)
            return -1;
    if (PQsendQueryParams (conn, S_ROW_TYPES_SQL, 0, NULL, NULL, NULL, NULL, 0) != 1)
        return -1;
    return S_STATEMENTS + 1;
}

bool
gt_pgbatch_row_types_read (const PGresult *result, gt_pgbatch_row_types_t *types)
{
    assert (types);
    if (PQresultStatus (result) != PGRES_TUPLES_OK || PQntuples (result) != 1
    ||  PQnfields (result) != 4 || !streq (PQfname (result, 0), "gt_pgbatch_row_types"))
        return false;
    Oid *oids [4] = { &types->lease, &types->object, &types->event, &types->callback };
    for (int field = 0; field < 4; field++)
        *oids [field] = (Oid) strtoul (PQgetvalue (result, 0, field), NULL, 10);
    return true;
}

//  The proof's parameters: broker_id, then the touched shards (int2[]) and
//  their epochs (int8[]) as binary arrays.  False if it touches none.
static bool
s_proof_params (gt_pgbatch_t *self, const char *broker_id, s_buffer_t *params)
{
    int32_t count = 0;
    for (unsigned shard = 0; shard < GT_SHARD_COUNT; shard++)
        count += s_touches (self, shard);
    if (count == 0)
        return false;
    s_buffer_append (&params [0], broker_id, strlen (broker_id));
    Oid types [2] = { GT_PGBATCH_OID_INT2, GT_PGBATCH_OID_INT8 };
    for (int array = 1; array <= 2; array++) {
        s_put_array_header (&params [array], types [array - 1], (size_t) count);
    }
    for (unsigned shard = 0; shard < GT_SHARD_COUNT; shard++)
        if (s_touches (self, shard)) {
            s_put_int2 (&params [1], shard);
            //  EPOCH_NONE goes out as -1: never an epoch
            s_put_int8 (&params [2], self->epochs [shard]);
        }
    return true;
}

//  The touched shards as an int2[] parameter, and with values (may be
//  NULL) a parallel int8[] of values [shard].  False when none is touched.
static bool
s_shard_arrays (gt_pgbatch_t *self, s_buffer_t *shards, s_buffer_t *values, const uint64_t *source)
{
    int32_t count = 0;
    for (unsigned shard = 0; shard < GT_SHARD_COUNT; shard++)
        count += s_touches (self, shard);
    s_buffer_t *arrays [2] = { shards, values };
    Oid types [2] = { GT_PGBATCH_OID_INT2, GT_PGBATCH_OID_INT8 };
    for (int array = 0; array < (values? 2: 1); array++) {
        s_put_array_header (arrays [array], types [array], (size_t) count);
    }
    for (unsigned shard = 0; shard < GT_SHARD_COUNT; shard++)
        if (s_touches (self, shard)) {
            s_put_int2 (shards, shard);
            if (values)
                s_put_int8 (values, source [shard]);
        }
    return count > 0;
}

int
gt_pgbatch_send (gt_pgbatch_t *self, PGconn *conn, const gt_pgbatch_row_types_t *row_types,
                 uint64_t token, uint64_t after_token, const char *broker_id, bool cluster,
                 bool upsert)
{
    assert (self);
    assert (row_types && row_types->lease && row_types->object && row_types->event
            && row_types->callback);
    assert (!cluster || broker_id);
    int sent = 0;
    if (after_token && cluster) {
        s_buffer_t params [2] = { { NULL, 0, 0 }, { NULL, 0, 0 } };
        s_put_raw_int8 (&params [0], after_token);
        s_buffer_append (&params [1], broker_id, strlen (broker_id));
        if (s_send (conn, S_GUARD_CLUSTER, 2, params))
            return -1;
        sent++;
    }
    else
    if (after_token) {
        s_buffer_t param = { NULL, 0, 0 };
        s_put_raw_int8 (&param, after_token);
        if (s_send (conn, S_GUARD, 1, &param))
            return -1;
        sent++;
    }
    if (broker_id && self->fenced && !cluster) {
        //  Whatever the batch writes (its meta row and prune too): the
        //  proof does not depend on the shards written
        s_buffer_t params [2] = { { NULL, 0, 0 }, { NULL, 0, 0 } };
        s_buffer_append (&params [0], broker_id, strlen (broker_id));
        //  EPOCH_NONE goes out as -1: never an epoch
        s_put_raw_int8 (&params [1], self->whole_epoch);
        if (s_send (conn, S_PROVE_SINGLE, 2, params))
            return -1;
        sent++;
    }
    else
    if (broker_id && self->fenced) {
        s_buffer_t params [3] = { { NULL, 0, 0 }, { NULL, 0, 0 }, { NULL, 0, 0 } };
        if (s_proof_params (self, broker_id, params)) {
            //  text parameters go binary as their bytes: s_send sets every
            //  format to binary, which for text is the same encoding
            if (s_send (conn, S_PROVE, 3, params))
                return -1;
            sent++;
        }
        else
            for (int index = 0; index < 3; index++)
                free (params [index].data);
    }
    //  Deletes first, so a key freed and reused never meets itself
    //  New leases and events by plain INSERT, unless upsert (every row
    //  may have been written before); cluster mode's events always upsert
    int event_statement = cluster? S_EVENT_INSERT_CLUSTER: upsert? S_EVENT_UPSERT: S_EVENT_INSERT;
    //  One statement after another (the order of an initializer list's
    //  calls is unspecified, and deletes must go first)
    const gt_pgbatch_row_types_t *row = row_types;
    int results [8];
    results [0] = s_send_table (conn, &self->leases, S_ROWS_DELETES, S_LEASE_DELETE,
                                row->lease, gt_pgbatch_lease_types, GT_PGBATCH_LEASE_COLUMNS);
    results [1] = s_send_table (conn, &self->leases, upsert? S_ROWS_PUTS: S_ROWS_OLD_PUTS,
                                S_LEASE_UPSERT, row->lease, gt_pgbatch_lease_types,
                                GT_PGBATCH_LEASE_COLUMNS);
    results [2] = upsert? 0: s_send_table (conn, &self->leases, S_ROWS_NEW_PUTS, S_LEASE_INSERT,
                                           row->lease, gt_pgbatch_lease_types,
                                           GT_PGBATCH_LEASE_COLUMNS);
    results [3] = s_send_table (conn, &self->objects, S_ROWS_DELETES, S_OBJECT_DELETE,
                                row->object, gt_pgbatch_object_types, GT_PGBATCH_OBJECT_COLUMNS);
    results [4] = s_send_table (conn, &self->objects, S_ROWS_PUTS, S_OBJECT_UPSERT,
                                row->object, gt_pgbatch_object_types, GT_PGBATCH_OBJECT_COLUMNS);
    results [5] = s_send_table (conn, &self->events, S_ROWS_PUTS, event_statement,
                                row->event, gt_pgbatch_event_types, GT_PGBATCH_EVENT_COLUMNS);
    results [6] = s_send_table (conn, &self->callbacks, S_ROWS_DELETES, S_CALLBACK_DELETE,
                                row->callback, gt_pgbatch_callback_types,
                                GT_PGBATCH_CALLBACK_COLUMNS);
    results [7] = s_send_table (conn, &self->callbacks, S_ROWS_PUTS, S_CALLBACK_UPSERT,
                                row->callback, gt_pgbatch_callback_types,
                                GT_PGBATCH_CALLBACK_COLUMNS);
    for (int index = 0; index < 8; index++) {
        if (results [index] < 0)
            return -1;
        sent += results [index];
    }
    if (cluster && self->prune_keep) {
        s_buffer_t params [2] = { { NULL, 0, 0 }, { NULL, 0, 0 } };
        if (s_shard_arrays (self, &params [0], NULL, NULL)) {
            s_put_raw_int8 (&params [1], self->prune_keep);
            if (s_send (conn, S_EVENT_PRUNE_CLUSTER, 2, params))
                return -1;
            sent++;
        }
        else
            free (params [0].data);
    }
    else
    if (!cluster && self->prune_below) {
        s_buffer_t params [2] = { { NULL, 0, 0 }, { NULL, 0, 0 } };
        s_put_raw_int8 (&params [0], self->prune_from);
        s_put_raw_int8 (&params [1], self->prune_below);
        if (s_send (conn, S_EVENT_PRUNE, 2, params))
            return -1;
        sent++;
    }
    //  Always: the token marks the transaction as committed
    if (cluster) {
        //  The touched shards' counters (each raised to the newest seq the
        //  batch gave it, and to the fence floor), and the broker's token
        s_buffer_t params [5] = { { NULL, 0, 0 }, { NULL, 0, 0 }, { NULL, 0, 0 }, { NULL, 0, 0 },
                                  { NULL, 0, 0 } };
        s_shard_arrays (self, &params [0], &params [4], self->shard_seq);
        s_put_raw_int8 (&params [1], self->has_meta? self->fence_counter: 0);
        s_put_raw_int8 (&params [2], token);
        s_buffer_append (&params [3], broker_id, strlen (broker_id));
        if (s_send (conn, S_META_UPDATE_CLUSTER, 5, params))
            return -1;
        sent++;
        return sent;
    }
    s_buffer_t params [3] = { { NULL, 0, 0 }, { NULL, 0, 0 }, { NULL, 0, 0 } };
    s_put_raw_int8 (&params [0], self->has_meta? self->last_seq: 0);
    s_put_raw_int8 (&params [1], self->has_meta? self->fence_counter: 0);
    s_put_raw_int8 (&params [2], token);
    if (s_send (conn, S_META_UPDATE, 3, params))
        return -1;
    sent++;
    return sent;
}

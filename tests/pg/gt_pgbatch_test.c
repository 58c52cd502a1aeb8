/*  gt_pgbatch_test.c — selftest of gt_pgbatch, without a database
    (gt_pgwriter's test writes batches to a real one): collapsing, merging
    and the binary arrays sent, read through gt_pgbatch_private.h.  */
#include <czmq.h>
#include "gt_pgbatch.h"
#include "gt_pgbatch_private.h"
#include "gt_pg_selftest.h"

//  An int32 in network order, as in the arrays' header and elements
static int32_t
s_read_be32 (const char *at)
{
    const unsigned char *bytes = (const unsigned char *) at;
    return (int32_t) ((uint32_t) bytes [0] << 24 | (uint32_t) bytes [1] << 16
                    | (uint32_t) bytes [2] << 8 | bytes [3]);
}

//  Element index of a binary array: its bytes and length (-1 = NULL).
static const char *
s_test_element (gt_pgbatch_buffer_t *array, size_t index, int32_t *length_p)
{
    assert (s_read_be32 (array->data) == 1);
    assert ((size_t) s_read_be32 (array->data + 12) > index);
    const char *at = array->data + GT_PGBATCH_ARRAY_HEADER;
    while (true) {
        int32_t length = s_read_be32 (at);
        if (index-- == 0) {
            *length_p = length;
            return at + 4;
        }
        at += 4 + (length > 0? length: 0);
    }
}

static uint64_t
s_test_int8 (gt_pgbatch_buffer_t *array, size_t index)
{
    int32_t length;
    const unsigned char *at = (const unsigned char *) s_test_element (array, index, &length);
    assert (length == 8);
    uint64_t value = 0;
    for (int byte = 0; byte < 8; byte++)
        value = value << 8 | at [byte];
    return value;
}

static void
s_test_arrays_free (gt_pgbatch_buffer_t *arrays, int columns)
{
    for (int column = 0; column < columns; column++)
        free (arrays [column].data);
}

//  The array of records a put statement is sent holds, row by row, what
//  the column arrays hold: the header names row_type and the row count;
//  a record is its length, the column count, then per column its type (as
//  the table's column types say: the encoder writes them on its own) and
//  the very element of that column's array (NULLs included).
static void
s_test_records_match (gt_pgbatch_table_t *table, const Oid *types, int columns)
{
    const Oid row_type = 123456;            //  any: the database's, read at connect
    gt_pgbatch_buffer_t records;
    gt_pgbatch_table_records (table, row_type, columns, &records);
    gt_pgbatch_buffer_t arrays [GT_PGBATCH_LEASE_COLUMNS];
    gt_pgbatch_table_arrays (table, false, types, columns, arrays);
    size_t rows = (size_t) s_read_be32 (arrays [0].data + 12);
    assert (s_read_be32 (records.data) == 1);
    assert (s_read_be32 (records.data + 4) == 0);           //  no NULL record
    assert (s_read_be32 (records.data + 8) == (int32_t) row_type);
    assert ((size_t) s_read_be32 (records.data + 12) == rows);
    assert (s_read_be32 (records.data + 16) == 1);
    const char *at = records.data + GT_PGBATCH_ARRAY_HEADER;
    for (size_t row = 0; row < rows; row++) {
        const char *record = at + 4;
        int32_t record_length = s_read_be32 (at);
        assert (s_read_be32 (record) == columns);
        const char *field = record + 4;
        for (int column = 0; column < columns; column++) {
            assert (s_read_be32 (field) == (int32_t) types [column]);
            int32_t length, expected_length;
            const char *expected = s_test_element (&arrays [column], row, &expected_length);
            length = s_read_be32 (field + 4);
            assert (length == expected_length);
            if (length > 0)
                assert (memcmp (field + 8, expected, (size_t) length) == 0);
            field += 8 + (length > 0? length: 0);
        }
        assert (field == record + record_length);
        at = field;
    }
    assert (at == records.data + records.size);
    free (records.data);
    s_test_arrays_free (arrays, columns);
}

static void
s_test_lease (gt_lease_info_t *lease, const char *id, uint64_t renewals)
{
    memset (lease, 0, sizeof *lease);
    strcpy (lease->id, id);
    lease->object_id = (char *) "object-1";
    lease->object_type = GT_TYPE_TEMPORARY_FILE;
    lease->service_id = (char *) "svc";
    lease->fence = 3;
    lease->ttl_ms = 30000;
    lease->created_at = lease->renewed_at = 1700000000000;
    lease->expires_at = 1700000030000;
    lease->renewals = renewals;
}

//  A batch that writes shard 1 (touched) or nothing, fenced at epoch
//  (every shard) unless epoch is 0.
static gt_pgbatch_t *
s_test_fenced (uint64_t epoch, bool touched)
{
    gt_pgbatch_t *batch = gt_pgbatch_new ();
    if (touched)
        gt_pgbatch_lease_delete (batch, "00000000000000000000000000000009", 1);
    if (epoch) {
        uint64_t epochs [GT_SHARD_COUNT];
        for (unsigned shard = 0; shard < GT_SHARD_COUNT; shard++)
            epochs [shard] = epoch;
        gt_pgbatch_fence (batch, epochs);
    }
    return batch;
}

//  Single mode's one epoch after merging into (first) the batch other:
//  what both were fenced at, else NONE, unless one side wrote nothing.
static uint64_t
s_test_merged_epoch (uint64_t first, bool first_touched, uint64_t second, bool second_touched)
{
    gt_pgbatch_t *batch = s_test_fenced (first, first_touched);
    gt_pgbatch_t *other = s_test_fenced (second, second_touched);
    gt_pgbatch_merge (batch, &other);
    uint64_t epoch = batch->fenced? batch->whole_epoch: 0;
    gt_pgbatch_destroy (&batch);
    return epoch;
}

void
gt_pgbatch_test (bool verbose)
{
    printf (" * gt_pgbatch: ");
    const char *id1 = "0123456789abcdef0123456789abcdef";
    const char *id2 = "fedcba9876543210fedcba9876543210";
    const char *id3 = "00000000000000000000000000000003";
    gt_lease_info_t lease;
    gt_pgbatch_buffer_t arrays [GT_PGBATCH_LEASE_COLUMNS];

    gt_pgbatch_t *batch = gt_pgbatch_new ();
    assert (gt_pgbatch_empty (batch));
    assert (gt_pgbatch_size (batch) == 0);

    //  Three puts of one lease write the last
    for (uint64_t renewals = 0; renewals < 3; renewals++) {
        s_test_lease (&lease, id1, renewals);
        gt_pgbatch_lease_put (batch, &lease, renewals == 2? "key-1": NULL);
    }
    assert (gt_pgbatch_size (batch) == 1);
    gt_pgbatch_table_arrays (&batch->leases, false, gt_pgbatch_lease_types,
                             GT_PGBATCH_LEASE_COLUMNS, arrays);
    assert (s_read_be32 (arrays [0].data + 8) == GT_PGBATCH_OID_UUID);
    assert (s_read_be32 (arrays [0].data + 12) == 1);
    int32_t length;
    const char *value = s_test_element (&arrays [0], 0, &length);
    assert (length == 16 && (unsigned char) value [0] == 0x01 && (unsigned char) value [15] == 0xef);
    assert (s_test_int8 (&arrays [10], 0) == 2);            //  renewals of the third put
    assert (s_test_int8 (&arrays [9], 0) == 1700000030000); //  expires_at
    value = s_test_element (&arrays [13], 0, &length);
    assert (length == 5 && memcmp (value, "key-1", 5) == 0);
    value = s_test_element (&arrays [12], 0, &length);      //  no cleanup: NULL
    assert (length == -1);
    assert (s_read_be32 (arrays [12].data + 4) == 1);       //  array says it has NULLs
    assert (s_read_be32 (arrays [11].data + 4) == 0);
    value = s_test_element (&arrays [11], 0, &length);
    assert (length == 3 && memcmp (value, "\x01{}", 3) == 0);
    s_test_arrays_free (arrays, GT_PGBATCH_LEASE_COLUMNS);
    s_test_records_match (&batch->leases, gt_pgbatch_lease_types, GT_PGBATCH_LEASE_COLUMNS);

    //  Put then delete deletes; delete then put puts
    s_test_lease (&lease, id2, 0);
    gt_pgbatch_lease_put (batch, &lease, NULL);
    gt_pgbatch_lease_delete (batch, id2, 0);
    gt_pgbatch_lease_delete (batch, id3, 0);
    s_test_lease (&lease, id3, 9);
    gt_pgbatch_lease_put (batch, &lease, NULL);
    assert (batch->leases.live_puts == 2);
    assert (batch->leases.live_deletes == 1);
    assert (gt_pgbatch_size (batch) == 3);
    gt_pgbatch_table_arrays (&batch->leases, true, gt_pgbatch_lease_types, 1, arrays);
    value = s_test_element (&arrays [0], 0, &length);
    assert (length == 16 && (unsigned char) value [0] == 0xfe);
    s_test_arrays_free (arrays, 1);

    //  JSON of metadata and cleanup, escaped
    gt_meta_entry_t entries [2] = { { (char *) "a\"b", (char *) "x\ny" }, { (char *) "k", (char *) "\\" } };
    gt_cleanup_t cleanup = { (char *) "http://127.0.0.1/c", NULL, true, 5, true, 1000 };
    gt_pgbatch_t *other = gt_pgbatch_new ();
    s_test_lease (&lease, id1, 4);
    lease.metadata.entries = entries;
    lease.metadata.count = 2;
    lease.cleanup = &cleanup;
    gt_pgbatch_lease_put (other, &lease, NULL);
    gt_pgbatch_table_arrays (&other->leases, false, gt_pgbatch_lease_types,
                             GT_PGBATCH_LEASE_COLUMNS, arrays);
    value = s_test_element (&arrays [11], 0, &length);
    const char *metadata = "\x01{\"a\\\"b\":\"x\\u000ay\",\"k\":\"\\\\\"}";
    assert (length == (int32_t) strlen (metadata) && memcmp (value, metadata, (size_t) length) == 0);
    value = s_test_element (&arrays [12], 0, &length);
    const char *cleanup_json = "\x01{\"url\":\"http://127.0.0.1/c\",\"max_retries\":5,\"retry_delay_ms\":1000}";
    assert (length == (int32_t) strlen (cleanup_json) && memcmp (value, cleanup_json, (size_t) length) == 0);
    s_test_arrays_free (arrays, GT_PGBATCH_LEASE_COLUMNS);
    s_test_records_match (&other->leases, gt_pgbatch_lease_types, GT_PGBATCH_LEASE_COLUMNS);

    //  Objects, events, prune and meta
    gt_pgobject_t object = { "object-1", 3, true, 0, GT_REASON_NONE, NULL };
    gt_pgbatch_object_put (batch, &object);
    gt_pgbatch_event (batch, 0, 1, GT_EVENT_LEASE_CREATED, 1700000000000, "created.TEMPORARY_FILE.svc", "\x81", 1);
    gt_pgbatch_event (batch, 0, 2, GT_EVENT_LEASE_RENEWED, 1700000000001, "renewed.TEMPORARY_FILE.svc", "\x82", 1);
    gt_pgbatch_events_prune (batch, 2, 5);
    gt_pgbatch_events_prune (batch, 1, 3);
    gt_pgbatch_events_prune (batch, 0, 0);      //  empty: ignored
    gt_pgbatch_meta (batch, 10, 3);
    gt_pgbatch_meta (batch, 8, 4);
    assert (batch->prune_from == 1 && batch->prune_below == 5);
    assert (batch->last_seq == 10 && batch->fence_counter == 4);
    assert (gt_pgbatch_size (batch) == 3 + 1 + 2 + 1 + 1);
    gt_pgbatch_table_arrays (&batch->objects, false, gt_pgbatch_object_types,
                             GT_PGBATCH_OBJECT_COLUMNS, arrays);
    value = s_test_element (&arrays [3], 0, &length);       //  no pending reclaim: NULL
    assert (length == -1);
    value = s_test_element (&arrays [2], 0, &length);
    assert (length == 1 && value [0] == 1);
    value = s_test_element (&arrays [5], 0, &length);
    assert (length == -1);
    s_test_arrays_free (arrays, GT_PGBATCH_OBJECT_COLUMNS);
    s_test_records_match (&batch->objects, gt_pgbatch_object_types, GT_PGBATCH_OBJECT_COLUMNS);

    //  Merge: other's operations come after batch's
    object.live = true;
    object.pending_at = 1700000001000;
    object.reason = GT_REASON_RELEASED;
    object.last_lease_id = id1;
    gt_pgbatch_object_put (other, &object);
    gt_pgbatch_object_delete (other, "object-2");
    gt_pgbatch_lease_delete (other, id3, 0);
    gt_pgbatch_event (other, 0, 3, GT_EVENT_LEASE_RELEASED, 1700000001000, "released.TEMPORARY_FILE.svc", "\x83", 1);
    gt_pgbatch_meta (other, 12, 2);
    gt_pgbatch_events_prune (other, 5, 9);
    gt_pgbatch_merge (batch, &other);
    assert (other == NULL);
    assert (batch->prune_from == 1 && batch->prune_below == 9);     //  the union
    assert (batch->leases.live_puts == 1);                  //  id1 (from other)
    assert (batch->leases.live_deletes == 2);               //  id2, id3
    assert (batch->objects.live_puts == 1 && batch->objects.live_deletes == 1);
    assert (batch->events.live_puts == 3);
    assert (batch->last_seq == 12 && batch->fence_counter == 4);
    gt_pgbatch_table_arrays (&batch->leases, false, gt_pgbatch_lease_types,
                             GT_PGBATCH_LEASE_COLUMNS, arrays);
    assert (s_test_int8 (&arrays [10], 0) == 4);
    s_test_arrays_free (arrays, GT_PGBATCH_LEASE_COLUMNS);
    gt_pgbatch_table_arrays (&batch->objects, false, gt_pgbatch_object_types,
                             GT_PGBATCH_OBJECT_COLUMNS, arrays);
    value = s_test_element (&arrays [5], 0, &length);
    assert (length == 16 && (unsigned char) value [1] == 0x23);
    value = s_test_element (&arrays [4], 0, &length);
    assert (length == 8 && memcmp (value, "released", 8) == 0);
    assert (s_test_int8 (&arrays [3], 0) == 1700000001000);
    s_test_arrays_free (arrays, GT_PGBATCH_OBJECT_COLUMNS);
    gt_pgbatch_table_arrays (&batch->events, false, gt_pgbatch_event_types,
                             GT_PGBATCH_EVENT_COLUMNS, arrays);
    assert (s_test_int8 (&arrays [0], 2) == 3);
    value = s_test_element (&arrays [4], 1, &length);
    assert (length == 1 && (unsigned char) value [0] == 0x82);
    s_test_arrays_free (arrays, GT_PGBATCH_EVENT_COLUMNS);
    s_test_records_match (&batch->leases, gt_pgbatch_lease_types, GT_PGBATCH_LEASE_COLUMNS);
    s_test_records_match (&batch->objects, gt_pgbatch_object_types, GT_PGBATCH_OBJECT_COLUMNS);
    s_test_records_match (&batch->events, gt_pgbatch_event_types, GT_PGBATCH_EVENT_COLUMNS);
    gt_pgbatch_destroy (&batch);
    assert (batch == NULL);

    //  Outbox rows collapse by job id, also across a merge; a lease's
    //  callback state goes in its own columns
    batch = gt_pgbatch_new ();
    gt_pgcallback_t callback = { 7, id1, "http://127.0.0.1/c", "{}", 3, 500, 0,
                                 GT_CLEANUP_PENDING, 0, "", 0 };
    gt_pgbatch_callback_put (batch, &callback);
    s_test_records_match (&batch->callbacks, gt_pgbatch_callback_types, GT_PGBATCH_CALLBACK_COLUMNS);
    callback.attempts = 1;
    callback.next_at = 1700000002000;
    callback.last_error = "HTTP 500";
    gt_pgbatch_callback_put (batch, &callback);
    callback.job_id = 8;
    callback.lease_id = NULL;
    gt_pgbatch_callback_put (batch, &callback);
    assert (gt_pgbatch_size (batch) == 2);
    other = gt_pgbatch_new ();
    gt_pgbatch_callback_delete (other, 8, 0);
    callback.job_id = 7;
    callback.status = GT_CLEANUP_DEAD;
    callback.attempts = 4;
    gt_pgbatch_callback_put (other, &callback);
    gt_pgbatch_merge (batch, &other);
    assert (batch->callbacks.live_puts == 1 && batch->callbacks.live_deletes == 1);
    gt_pgbatch_table_arrays (&batch->callbacks, false, gt_pgbatch_callback_types,
                             GT_PGBATCH_CALLBACK_COLUMNS, arrays);
    assert (s_test_int8 (&arrays [0], 0) == 7 && s_test_int8 (&arrays [6], 0) == 4);
    value = s_test_element (&arrays [1], 0, &length);
    assert (length == -1);                                  //  lease id unknown: NULL
    value = s_test_element (&arrays [7], 0, &length);
    assert (length == 4 && memcmp (value, "DEAD", 4) == 0);
    s_test_arrays_free (arrays, GT_PGBATCH_CALLBACK_COLUMNS);
    gt_pgbatch_table_arrays (&batch->callbacks, true, gt_pgbatch_callback_types, 1, arrays);
    assert (s_test_int8 (&arrays [0], 0) == 8);
    s_test_arrays_free (arrays, 1);
    s_test_lease (&lease, id1, 0);
    lease.cleanup = &cleanup;
    lease.cleanup_status = GT_CLEANUP_DELIVERED;
    lease.cleanup_attempts = 2;
    gt_pgbatch_lease_put (batch, &lease, NULL);
    gt_pgbatch_table_arrays (&batch->leases, false, gt_pgbatch_lease_types,
                             GT_PGBATCH_LEASE_COLUMNS, arrays);
    value = s_test_element (&arrays [14], 0, &length);
    assert (length == 9 && memcmp (value, "DELIVERED", 9) == 0);
    assert (s_test_int8 (&arrays [15], 0) == 2);
    value = s_test_element (&arrays [16], 0, &length);
    assert (length == -1);                                  //  no error
    s_test_arrays_free (arrays, GT_PGBATCH_LEASE_COLUMNS);
    s_test_records_match (&batch->callbacks, gt_pgbatch_callback_types, GT_PGBATCH_CALLBACK_COLUMNS);
    s_test_records_match (&batch->leases, gt_pgbatch_lease_types, GT_PGBATCH_LEASE_COLUMNS);
    gt_pgbatch_destroy (&batch);

    //  Many keys: the collapse index keeps up
    batch = gt_pgbatch_new ();
    char id [33];
    for (int round = 0; round < 2; round++)
        for (int index = 0; index < 10000; index++) {
            snprintf (id, sizeof id, "%032x", index);
            s_test_lease (&lease, id, (uint64_t) round);
            gt_pgbatch_lease_put (batch, &lease, NULL);
        }
    assert (gt_pgbatch_size (batch) == 10000);
    if (verbose)
        printf ("(arena %zu bytes for 20,000 puts) ", batch->leases.arena.size);
    //  The second round's puts are the live ones, each key once, in order
    gt_pgbatch_table_arrays (&batch->leases, false, gt_pgbatch_lease_types,
                             GT_PGBATCH_LEASE_COLUMNS, arrays);
    for (int index = 0; index < 10000; index++) {
        value = s_test_element (&arrays [0], (size_t) index, &length);
        assert (length == 16 && (unsigned char) value [15] == (index & 0xFF)
                             && (unsigned char) value [14] == (index >> 8));
        assert (s_test_int8 (&arrays [10], (size_t) index) == 1);
    }
    s_test_arrays_free (arrays, GT_PGBATCH_LEASE_COLUMNS);
    //  Merged into a batch holding half of the keys: one row per key
    other = gt_pgbatch_new ();
    for (int index = 0; index < 5000; index++) {
        snprintf (id, sizeof id, "%032x", index * 2);
        s_test_lease (&lease, id, 7);
        gt_pgbatch_lease_put (other, &lease, NULL);
    }
    gt_pgbatch_merge (other, &batch);
    assert (gt_pgbatch_size (other) == 10000);
    assert (other->leases.live_puts == 10000);
    //  A batch made like it: empty, with the room it took, and recording
    //  the same operations as a new batch does, without growing
    {
        gt_pgbatch_t *like = gt_pgbatch_new_like (other);
        gt_pgbatch_t *fresh = gt_pgbatch_new ();
        assert (gt_pgbatch_empty (like) && gt_pgbatch_size (like) == 0);
        assert (like->leases.capacity >= other->leases.count);
        assert (like->leases.arena.capacity >= other->leases.arena.size);
        assert (like->leases.index_cap >= 2 * other->leases.count);
        size_t capacity = like->leases.capacity, bytes = like->leases.arena.capacity;
        //  (as many rows as it holds: 5,000 puts, then 10,000)
        for (int round = 0; round < 2; round++)
            for (int index = 0; index < (round ? 10000 : 5000); index++) {
                snprintf (id, sizeof id, "%032x", round ? (index * 7) % 10000 : index * 2);
                s_test_lease (&lease, id, (uint64_t) round);
                gt_pgbatch_lease_put (like, &lease, NULL);
                gt_pgbatch_lease_put (fresh, &lease, NULL);
            }
        assert (like->leases.capacity == capacity && like->leases.arena.capacity == bytes);
        assert (gt_pgbatch_size (like) == 10000 && gt_pgbatch_size (fresh) == 10000);
        gt_pgbatch_buffer_t like_arrays [GT_PGBATCH_LEASE_COLUMNS];
        gt_pgbatch_table_arrays (&like->leases, false, gt_pgbatch_lease_types,
                                 GT_PGBATCH_LEASE_COLUMNS, like_arrays);
        gt_pgbatch_table_arrays (&fresh->leases, false, gt_pgbatch_lease_types,
                                 GT_PGBATCH_LEASE_COLUMNS, arrays);
        for (int column = 0; column < GT_PGBATCH_LEASE_COLUMNS; column++)
            assert (like_arrays [column].size == arrays [column].size
                    && memcmp (like_arrays [column].data, arrays [column].data, arrays [column].size) == 0);
        s_test_arrays_free (like_arrays, GT_PGBATCH_LEASE_COLUMNS);
        s_test_arrays_free (arrays, GT_PGBATCH_LEASE_COLUMNS);
        gt_pgbatch_destroy (&fresh);
        //  ... made like an empty batch: the smallest room, no index
        gt_pgbatch_t *small = gt_pgbatch_new_like (fresh = gt_pgbatch_new ());
        assert (small->leases.capacity == 64 && small->leases.arena.capacity == 4096);
        assert (small->leases.index == NULL && small->leases.index_cap == 0);
        gt_pgbatch_destroy (&fresh);
        //  ... and after a big batch, batches of ten leases come back to the
        //  smallest room within one batch, index included
        fresh = gt_pgbatch_new_like (like);
        for (int turn = 0; turn < 3; turn++) {
            for (int index = 0; index < 10; index++) {
                snprintf (id, sizeof id, "%032x", index);
                s_test_lease (&lease, id, (uint64_t) turn);
                gt_pgbatch_lease_put (fresh, &lease, NULL);
            }
            gt_pgbatch_destroy (&small);
            small = gt_pgbatch_new_like (fresh);
            assert (small->leases.capacity == 64 && small->leases.arena.capacity == 4096);
            assert (small->leases.index_cap == 64);
            gt_pgbatch_destroy (&fresh);
            fresh = small;
            small = NULL;
        }
        gt_pgbatch_destroy (&fresh);
        gt_pgbatch_destroy (&like);
    }
    batch = other;
    gt_pgbatch_destroy (&batch);
    //  New leases (plain INSERT): a put after a create stays new, also
    //  across a merge; a delete ends it; other puts are not new
    {
        gt_lease_info_t fresh;
        gt_pgbatch_t *created = gt_pgbatch_new ();
        s_test_lease (&fresh, id1, 0);
        gt_pgbatch_lease_create (created, &fresh, NULL);
        s_test_lease (&fresh, id1, 1);
        gt_pgbatch_lease_put (created, &fresh, NULL);
        s_test_lease (&fresh, id2, 0);
        gt_pgbatch_lease_put (created, &fresh, NULL);
        assert (created->leases.live_puts == 2 && created->leases.live_new_puts == 1);
        gt_pgbatch_t *later = gt_pgbatch_new ();
        s_test_lease (&fresh, id1, 2);
        gt_pgbatch_lease_put (later, &fresh, NULL);
        s_test_lease (&fresh, id3, 0);
        gt_pgbatch_lease_create (later, &fresh, NULL);
        gt_pgbatch_merge (created, &later);
        assert (created->leases.live_puts == 3 && created->leases.live_new_puts == 2);
        gt_pgbatch_lease_delete (created, id3, 0);
        assert (created->leases.live_puts == 2 && created->leases.live_new_puts == 1);
        gt_pgbatch_destroy (&created);
    }

    //  Single mode's one epoch (007_single_mode_proof.sql) across merges
    assert (s_test_merged_epoch (7, true, 7, true) == 7);
    assert (s_test_merged_epoch (7, true, 9, true) == GT_PGBATCH_EPOCH_NONE);
    assert (s_test_merged_epoch (9, true, 7, true) == GT_PGBATCH_EPOCH_NONE);
    assert (s_test_merged_epoch (7, false, 9, true) == GT_PGBATCH_EPOCH_NONE);
    assert (s_test_merged_epoch (0, false, 9, true) == 9);      //  nothing unfenced to prove
    assert (s_test_merged_epoch (0, true, 9, true) == GT_PGBATCH_EPOCH_NONE);
    assert (s_test_merged_epoch (7, true, 0, true) == GT_PGBATCH_EPOCH_NONE);
    assert (s_test_merged_epoch (7, true, 0, false) == 7);
    assert (s_test_merged_epoch (0, true, 0, true) == 0);       //  never fenced

    printf ("OK\n");
}
